//! Operation metrics: an in-process [`MetricsSnapshot`] and the [`metrics`] facade, fed together.
//!
//! [`CacheMetrics`] counts hits, misses, sets, deletes and errors with atomics and keeps a
//! lock-free latency histogram, so [`CacheMetrics::snapshot`] can answer `stats` and health
//! without an exporter. The same events go to the `metrics` facade under these names, so any
//! exporter (Prometheus, StatsD, OpenTelemetry) sees them:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `lexicache_operations_total` | counter | `backend`, `operation`, `outcome` (`hit`, `miss`, `ok`, `error`) |
//! | `lexicache_operation_duration_seconds` | histogram | `backend`, `operation` |
//! | `lexicache_circuit_state` | gauge | `backend`: 0 closed, 1 open, 2 half-open |
//! | `lexicache_circuit_transitions_total` | counter | `backend`, `to` (`closed`, `open`, `half_open`) |
//! | `lexicache_events_dropped_total` | counter | `handler`: events dropped because a handler's queue was full |
//! | `lexicache_event_handler_panics_total` | counter | `handler` |
//!
//! Facade handles are registered once, when the [`CacheMetrics`] is built: install the exporter's
//! recorder before building caches. The service's metrics layer times a uniform sample of calls
//! (one in eight by default) and counts every call, so the histogram's count is a fraction of
//! the operations: take rates from `lexicache_operations_total`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Operation;

/// Counter name in the `metrics` facade.
pub const OPERATIONS_TOTAL: &str = "lexicache_operations_total";
/// Histogram name in the `metrics` facade.
pub const OPERATION_DURATION_SECONDS: &str = "lexicache_operation_duration_seconds";
/// Gauge of a circuit breaker's state (0 closed, 1 open, 2 half-open), labelled by `backend`.
pub const CIRCUIT_STATE: &str = "lexicache_circuit_state";
/// Counter of a circuit breaker's state changes, labelled by `backend` and `to`.
pub const CIRCUIT_TRANSITIONS_TOTAL: &str = "lexicache_circuit_transitions_total";
/// Counter of events dropped for a handler whose queue was full, labelled by `handler`.
pub const EVENTS_DROPPED_TOTAL: &str = "lexicache_events_dropped_total";
/// Counter of events during which a handler panicked, labelled by `handler`.
pub const EVENT_HANDLER_PANICS_TOTAL: &str = "lexicache_event_handler_panics_total";

/// The outcome of one operation, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A read found the key.
    Hit,
    /// A read did not find the key.
    Miss,
    /// A write or other operation succeeded.
    Ok,
    /// The operation failed.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 4] = [Self::Hit, Self::Miss, Self::Ok, Self::Error];

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// Sub-buckets per power of two: 8 gives at most 12.5% relative error on quantiles.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values are nanoseconds; 2^40 ns is about 18 minutes, far beyond any cache call.
const MAX_EXP: usize = 40;
const BUCKETS: usize = SUB + (MAX_EXP - SUB_BITS as usize) * SUB;

/// A lock-free log-linear histogram of durations (nanosecond resolution, 12.5% precision).
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(nanos: u64) -> usize {
        if nanos < SUB as u64 {
            return nanos as usize;
        }
        let exp = 63 - nanos.leading_zeros();
        let sub = ((nanos >> (exp - SUB_BITS)) as usize) & (SUB - 1);
        let idx = SUB + (exp - SUB_BITS) as usize * SUB + sub;
        idx.min(BUCKETS - 1)
    }

    /// The midpoint of bucket `idx`, in nanoseconds.
    fn value_of(idx: usize) -> u64 {
        if idx < SUB {
            return idx as u64;
        }
        let exp = (idx - SUB) / SUB + SUB_BITS as usize;
        let sub = ((idx - SUB) % SUB) as u64;
        let lo = (1u64 << exp) + (sub << (exp - SUB_BITS as usize));
        let width = 1u64 << (exp - SUB_BITS as usize);
        lo + width / 2
    }

    /// Records one duration.
    #[inline]
    pub fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0.0 ..= 1.0), or zero when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let q = q.clamp(0.0, 1.0);
        // The rank of the wanted sample, 1-based; ceil so p100 is the largest sample.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (idx, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::value_of(idx));
            }
        }
        Duration::from_nanos(Self::value_of(BUCKETS - 1))
    }

    /// Forgets every recorded duration.
    pub fn reset(&self) {
        for b in &*self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }
}

/// A point-in-time copy of a backend's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricsSnapshot {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Successful writes.
    pub sets: u64,
    /// Entries removed by `delete`, `delete_many` and `delete_pattern` (keys that were absent
    /// are not counted).
    pub deletes: u64,
    /// Failed operations.
    pub errors: u64,
    /// `hits / (hits + misses)`, or 0 when there were no reads.
    pub hit_rate: f64,
    /// Median operation latency.
    pub latency_p50: Duration,
    /// 99th percentile operation latency.
    pub latency_p99: Duration,
    /// Operations timed.
    pub operations: u64,
}

/// Facade handles, one per (operation, outcome) and one histogram per operation.
struct FacadeHandles {
    counters: Vec<metrics::Counter>,
    histograms: Vec<metrics::Histogram>,
}

impl FacadeHandles {
    fn register(backend: &str) -> Self {
        let mut counters = Vec::with_capacity(Operation::ALL.len() * Outcome::ALL.len());
        let mut histograms = Vec::with_capacity(Operation::ALL.len());
        for op in Operation::ALL {
            for outcome in Outcome::ALL {
                counters.push(metrics::counter!(
                    OPERATIONS_TOTAL,
                    "backend" => backend.to_owned(),
                    "operation" => op.as_str(),
                    "outcome" => outcome.as_str()
                ));
            }
            histograms.push(metrics::histogram!(
                OPERATION_DURATION_SECONDS,
                "backend" => backend.to_owned(),
                "operation" => op.as_str()
            ));
        }
        Self {
            counters,
            histograms,
        }
    }

    fn counter(&self, op: Operation, outcome: Outcome) -> &metrics::Counter {
        &self.counters[op.index() * Outcome::ALL.len() + outcome as usize]
    }
}

/// Shared metrics of one backend or service: atomics for the snapshot plus facade handles.
///
/// ```
/// use std::time::Duration;
/// use lexicache_core::metrics::{CacheMetrics, Outcome};
/// use lexicache_core::Operation;
///
/// let m = CacheMetrics::new("memory");
/// m.record(Operation::Get, Outcome::Hit, Duration::from_micros(2));
/// m.record(Operation::Get, Outcome::Miss, Duration::from_micros(3));
/// let s = m.snapshot();
/// assert_eq!((s.hits, s.misses), (1, 1));
/// assert!((s.hit_rate - 0.5).abs() < 1e-9);
/// ```
pub struct CacheMetrics {
    backend: String,
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    errors: AtomicU64,
    latency: LatencyHistogram,
    facade: FacadeHandles,
}

impl fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheMetrics")
            .field("backend", &self.backend)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl CacheMetrics {
    /// New metrics labelled with `backend`.
    #[must_use]
    pub fn new(backend: impl Into<String>) -> Self {
        let backend = backend.into();
        let facade = FacadeHandles::register(&backend);
        Self {
            backend,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
            facade,
        }
    }

    /// The `backend` label.
    #[must_use]
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Records one operation with its outcome and latency.
    #[inline]
    pub fn record(&self, op: Operation, outcome: Outcome, elapsed: Duration) {
        self.count(op, outcome, 1);
        self.time(op, elapsed);
    }

    /// Records the latency of one operation whose outcomes are counted separately (a batch).
    #[inline]
    pub fn time(&self, op: Operation, elapsed: Duration) {
        self.latency.record(elapsed);
        self.facade.histograms[op.index()].record(elapsed.as_secs_f64());
    }

    /// Counts `n` outcomes of `op` without timing them (for batch members and service-level
    /// events such as a degraded `get`).
    #[inline]
    pub fn count(&self, op: Operation, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        let slot = match outcome {
            // Only reads count toward the hit rate; a delete of an absent key is a `miss` in
            // the facade and nothing in the snapshot.
            Outcome::Hit | Outcome::Miss if !op.is_read() => {
                self.facade.counter(op, outcome).increment(n);
                return;
            }
            Outcome::Hit => &self.hits,
            Outcome::Miss => &self.misses,
            Outcome::Error => &self.errors,
            Outcome::Ok => match op {
                Operation::Set | Operation::SetMany => &self.sets,
                Operation::Delete | Operation::DeleteMany | Operation::DeletePattern => {
                    &self.deletes
                }
                _ => {
                    self.facade.counter(op, outcome).increment(n);
                    return;
                }
            },
        };
        slot.fetch_add(n, Ordering::Relaxed);
        self.facade.counter(op, outcome).increment(n);
    }

    /// A point-in-time copy.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let reads = hits + misses;
        #[allow(clippy::cast_precision_loss)]
        let hit_rate = if reads == 0 {
            0.0
        } else {
            hits as f64 / reads as f64
        };
        MetricsSnapshot {
            hits,
            misses,
            sets: self.sets.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            hit_rate,
            latency_p50: self.latency.quantile(0.50),
            latency_p99: self.latency.quantile(0.99),
            operations: self.latency.count(),
        }
    }

    /// Resets the in-process counters (facade counters are monotonic and left alone).
    pub fn reset(&self) {
        for a in [
            &self.hits,
            &self.misses,
            &self.sets,
            &self.deletes,
            &self.errors,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_bucket_precision() {
        let h = LatencyHistogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = h.quantile(0.99).as_secs_f64() * 1e6;
        assert!((p50 - 500.0).abs() / 500.0 < 0.13, "p50 = {p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.13, "p99 = {p99}");
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        assert_eq!(LatencyHistogram::new().quantile(0.99), Duration::ZERO);
    }

    #[test]
    fn huge_durations_land_in_the_last_bucket() {
        let h = LatencyHistogram::new();
        h.record(Duration::from_secs(1_000_000));
        assert!(h.quantile(1.0) > Duration::from_secs(60));
    }

    #[test]
    fn counts_go_to_the_right_totals() {
        let m = CacheMetrics::new("t");
        m.count(Operation::Set, Outcome::Ok, 3);
        m.count(Operation::DeleteMany, Outcome::Ok, 2);
        m.count(Operation::Exists, Outcome::Ok, 5);
        m.count(Operation::Get, Outcome::Error, 1);
        m.count(Operation::Delete, Outcome::Miss, 4);
        let s = m.snapshot();
        assert_eq!(
            (s.sets, s.deletes, s.errors, s.hits, s.misses),
            (3, 2, 1, 0, 0)
        );
        m.reset();
        assert_eq!(m.snapshot(), MetricsSnapshot::default());
    }
}
