//! The measured workload: `--concurrency` tasks, each drawing keys from Zipf(keys, s) and
//! reading (cache-aside: a miss writes the value) or writing, timing every operation into its
//! own HDR histogram; the histograms are merged when the phase ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use lexicache::Error;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use super::driver::{Driver, Value, Worker};
use super::report::{Percentiles, RunResult};
use crate::CliError;

/// The largest latency a histogram holds, in nanoseconds (larger ones count as this).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// The workload's fixed settings.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) keys: u64,
    pub(super) zipf: f64,
    pub(super) read_ratio: f64,
    pub(super) value: Value,
    pub(super) concurrency: usize,
    pub(super) ttl: Option<Duration>,
}

/// How long a phase runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Span {
    /// For this long.
    Time(Duration),
    /// Until this many operations have started.
    Ops(u64),
}

impl Span {
    /// The phase's length in progress-bar units: milliseconds or operations.
    pub(super) fn units(self) -> u64 {
        match self {
            Self::Time(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Self::Ops(n) => n,
        }
    }
}

/// What a phase counted.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) ops: u64,
    pub(super) reads: u64,
    pub(super) hits: u64,
    pub(super) errors: u64,
    pub(super) elapsed: Duration,
    pub(super) latency_ns: Histogram<u64>,
    pub(super) first_error: Option<Error>,
}

impl Tally {
    pub(super) fn new() -> Self {
        Self {
            ops: 0,
            reads: 0,
            hits: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency_ns: histogram(),
            first_error: None,
        }
    }

    /// Adds another phase's counts (rounds of one side add up).
    pub(super) fn absorb(&mut self, other: Tally) {
        self.ops += other.ops;
        self.reads += other.reads;
        self.hits += other.hits;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_ns.add(&other.latency_ns);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Operations per second.
    pub(super) fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    pub(super) fn result(&self, label: &str) -> RunResult {
        RunResult {
            label: label.to_owned(),
            ops: self.ops,
            elapsed_secs: self.elapsed.as_secs_f64(),
            throughput: self.throughput(),
            reads: self.reads,
            hits: self.hits,
            hit_rate: if self.reads == 0 {
                0.0
            } else {
                self.hits as f64 / self.reads as f64
            },
            errors: self.errors,
            latency_us: percentiles(&self.latency_ns, 1e3),
        }
    }
}

/// A histogram of nanoseconds, 1 ns to 60 s, three significant figures.
pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant, valid bounds")
}

/// The percentiles of a histogram of nanoseconds, divided by `per_unit` (1e3: µs, 1e6: ms).
pub(super) fn percentiles(h: &Histogram<u64>, per_unit: f64) -> Percentiles {
    let at = |q: f64| h.value_at_quantile(q) as f64 / per_unit;
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: h.max() as f64 / per_unit,
        mean: if h.is_empty() {
            0.0
        } else {
            h.mean() / per_unit
        },
    }
}

/// Key popularity: Zipf(keys, s), or uniform for s = 0.
#[derive(Debug, Clone, Copy)]
enum Keys {
    Uniform(u64),
    Zipf(Zipf<f64>),
}

impl Keys {
    fn new(keys: u64, s: f64) -> Self {
        if s == 0.0 {
            return Self::Uniform(keys);
        }
        // `keys >= 1` and `s > 0` are checked when the options parse.
        Zipf::new(keys as f64, s).map_or(Self::Uniform(keys), Self::Zipf)
    }

    fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            Self::Uniform(n) => rng.random_range(0..*n),
            // Zipf draws whole numbers 1..=n as floats.
            Self::Zipf(z) => (z.sample(rng) as u64).saturating_sub(1),
        }
    }
}

/// Runs one phase: `plan.concurrency` tasks on `driver` for `span`, keys `{prefix}{i}`.
/// Task `t` seeds its generator from `seed` and `t`, so both sides of a comparison draw the
/// same keys and operations. A task that cannot start (a memcached client that does not
/// connect) fails the phase.
pub(super) async fn run_phase(
    driver: &Driver,
    plan: &Arc<Plan>,
    prefix: &Arc<str>,
    span: Span,
    seed: u64,
    progress: &Progress,
) -> Result<Tally, CliError> {
    let mut workers = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        workers.push(driver.worker().await?);
    }
    let started = Arc::new(tokio::sync::Barrier::new(plan.concurrency + 1));
    let issued = Arc::new(AtomicU64::new(0));
    // One deadline for all: a task polled late (an in-process backend never yields) must not
    // run past the others.
    let deadline = Arc::new(std::sync::OnceLock::new());
    let keys = Keys::new(plan.keys, plan.zipf);
    let tasks: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(t, worker)| {
            let task = Task {
                worker,
                plan: Arc::clone(plan),
                prefix: Arc::clone(prefix),
                keys,
                rng: SmallRng::seed_from_u64(mix(seed, t as u64)),
                span,
                issued: Arc::clone(&issued),
                deadline: Arc::clone(&deadline),
            };
            let started = Arc::clone(&started);
            tokio::spawn(async move {
                started.wait().await;
                task.run().await
            })
        })
        .collect();
    let begin = Instant::now();
    if let Span::Time(d) = span {
        let _ = deadline.set(begin + d);
    }
    started.wait().await;
    let ticker = progress.tick(begin, span, Arc::clone(&issued));
    let mut tally = Tally::new();
    for task in tasks {
        let done = task
            .await
            .map_err(|e| CliError::Check(format!("a bench task panicked: {e}")))?;
        tally.absorb(done);
    }
    tally.elapsed = begin.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    Ok(tally)
}

/// SplitMix64 of `seed + t`: well-spread, distinct per-task seeds.
fn mix(seed: u64, t: u64) -> u64 {
    let mut z = seed.wrapping_add(t.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Task {
    worker: Worker,
    plan: Arc<Plan>,
    prefix: Arc<str>,
    keys: Keys,
    rng: SmallRng,
    span: Span,
    issued: Arc<AtomicU64>,
    /// Set before the tasks start, for a timed span.
    deadline: Arc<std::sync::OnceLock<Instant>>,
}

impl Task {
    async fn run(mut self) -> Tally {
        use std::fmt::Write;

        let mut tally = Tally::new();
        let deadline = self.deadline.get().copied();
        let mut key = String::with_capacity(self.prefix.len() + 20);
        loop {
            match (deadline, self.span) {
                (Some(deadline), _) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                (None, Span::Ops(total)) => {
                    if self.issued.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                }
                (None, Span::Time(_)) => unreachable!("a timed span has a deadline"),
            }
            let i = self.keys.sample(&mut self.rng);
            let read = self.rng.random::<f64>() < self.plan.read_ratio;
            key.clear();
            let _ = write!(key, "{}{i}", self.prefix);

            let begin = Instant::now();
            let outcome = if read {
                match self.worker.read(&key).await {
                    Ok(true) => Ok(true),
                    // Cache-aside: a miss fills the key; the read's latency includes it.
                    Ok(false) => self
                        .worker
                        .write(&key, &self.plan.value, self.plan.ttl)
                        .await
                        .map(|()| false),
                    Err(e) => Err(e),
                }
            } else {
                self.worker
                    .write(&key, &self.plan.value, self.plan.ttl)
                    .await
                    .map(|()| false)
            };
            let took = u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // An in-process backend never yields: spend tokio's budget so that every task
            // gets its turn, as in an application, instead of two running to the deadline.
            tokio::task::consume_budget().await;
            match outcome {
                Ok(hit) => {
                    tally.ops += 1;
                    tally.latency_ns.saturating_record(took.max(1));
                    if read {
                        tally.reads += 1;
                        tally.hits += u64::from(hit);
                    }
                }
                Err(e) => {
                    tally.errors += 1;
                    if tally.first_error.is_none() {
                        tally.first_error = Some(e);
                    }
                    // A dead backend fails fast; do not spin on it.
                    if tally.errors > 1000 && tally.ops == 0 {
                        break;
                    }
                }
            }
        }
        tally
    }
}

/// The progress bar of the phase that runs: milliseconds of a timed phase, operations of a
/// counted one. Hidden unless stderr is a terminal.
#[derive(Debug)]
pub(super) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(super) fn new(bar: ProgressBar) -> Self {
        Self { bar }
    }

    /// Names the phase that starts, and how long it is.
    pub(super) fn phase(&self, what: String, span: Option<Span>) {
        self.bar.set_message(what);
        self.bar.set_length(span.map_or(0, Span::units));
        self.bar.set_position(0);
    }

    /// Moves the bar while a phase runs; `None` when the bar is hidden.
    fn tick(
        &self,
        begin: Instant,
        span: Span,
        issued: Arc<AtomicU64>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.bar.is_hidden() {
            return None;
        }
        let bar = self.bar.clone();
        Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                bar.set_position(match span {
                    Span::Time(d) => u64::try_from(begin.elapsed().min(d).as_millis()).unwrap_or(0),
                    Span::Ops(n) => issued.load(Ordering::Relaxed).min(n),
                });
            }
        }))
    }

    /// Removes the bar.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_keys_stay_in_range_and_favour_the_first() {
        let keys = Keys::new(1000, 1.0);
        let mut rng = SmallRng::seed_from_u64(7);
        let draws: Vec<u64> = (0..10_000).map(|_| keys.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&k| k < 1000));
        let first = draws.iter().filter(|&&k| k == 0).count();
        let last = draws.iter().filter(|&&k| k == 999).count();
        assert!(first > 10 * last.max(1), "first {first}, last {last}");
    }

    #[test]
    fn zero_exponent_draws_uniformly() {
        let keys = Keys::new(10, 0.0);
        assert!(matches!(keys, Keys::Uniform(10)));
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = [0_u32; 10];
        for _ in 0..10_000 {
            seen[usize::try_from(keys.sample(&mut rng)).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn percentiles_are_ordered_and_scaled() {
        let mut h = histogram();
        for ns in 1..=10_000_u64 {
            h.record(ns * 1000).unwrap();
        }
        let p = percentiles(&h, 1e3);
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max);
        assert!((p.p50 - 5000.0).abs() < 10.0, "{p:?}");
        assert!((p.mean - 5000.5).abs() < 10.0, "{p:?}");
    }
}
