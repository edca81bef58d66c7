//! How soon another process's L1 lets go of an old value, on loopback Redis.
//!
//! Two independent [`TieredBackend`]s, A and B, each over its own [`RedisBackend`] connection
//! and its own `RedisPubSub` subscription, share one key prefix (unique per run) on the local
//! Redis (`LEXICACHE_TEST_REDIS_URL`). Once both serve L1:
//!
//! - **Delay**: `LEXICACHE_BENCH_SAMPLES` times (2000 by default), B reads a key (so its L1
//!   holds the old value), A writes a new value, and the bench polls B's L1 in a tight loop
//!   (yielding to the runtime between polls, at most 1 s) until the old value is gone. The
//!   delay is measured from the moment A's `set` returned, and from the moment it started.
//! - **Burst**: A writes 100 000 distinct keys as fast as 64 concurrent tasks can, then one
//!   more key whose invalidation B must see (which proves B has applied the whole burst); then
//!   the same twice more over the same keys. B's counters, both L1s' entry counts and the
//!   process's resident memory before and after each burst show that B keeps up and that
//!   memory stays bounded: the first burst grows the process by A's own L1 (its 100 000
//!   writes), the later ones by little.
//!
//! A and B live in one process (the runtime has two workers), so the resident memory is the
//! whole process's. Run with `cargo bench -p lexicache-tiered --bench invalidation`; it prints
//! markdown tables for docs/benchmarks.md.

// The bench prints its figures.
#![allow(missing_docs, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lexicache_core::{Bytes, CacheBackend, SharedBackend};
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_testkit::bench;
use lexicache_tiered::{TieredBackend, TieredStats};

/// Delay samples unless `LEXICACHE_BENCH_SAMPLES` says otherwise.
const DEFAULT_SAMPLES: usize = 2000;
/// How long B's L1 may keep an old value before the sample counts as missed.
const POLL_LIMIT: Duration = Duration::from_secs(1);
/// Keys A writes in the burst.
const BURST_KEYS: u64 = 100_000;
/// Concurrent writers in the burst.
const BURST_TASKS: u64 = 64;
/// Bursts over the same keys: the first grows A's own L1, the others show what is left.
const BURSTS: usize = 3;
/// How long to let B's counters settle (a key's eviction lands before its counter does).
const SETTLE: Duration = Duration::from_millis(50);

/// One process's view: a tiered backend over its own Redis connection.
struct Node {
    tiered: TieredBackend,
    redis: RedisBackend,
}

async fn node(url: &str, prefix: &str, label: &str) -> Node {
    let redis = RedisBackend::builder()
        .url(url)
        .prefix(prefix)
        // A busy two-core machine can stall a task past the 500 ms default; the burst must not
        // fail on it.
        .command_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the local redis; run `cargo xtask services up`");
    let tiered = TieredBackend::builder(
        MemoryBackend::new(),
        Arc::new(redis.clone()) as SharedBackend,
    )
    .name(format!("tiered-{label}"))
    .invalidation(Arc::new(
        redis
            .pubsub()
            .with_client_name(&format!("lexicache-bench-{label}")),
    ))
    .build()
    .await
    .expect("a tiered backend over redis");
    assert!(
        tiered.wait_until_serving(Duration::from_secs(5)).await,
        "{label} did not serve L1 within 5 s: {:?}",
        tiered.stats()
    );
    Node { tiered, redis }
}

/// Percentiles of a set of durations, in microseconds.
struct Summary {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    fn row(&self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {:.0} | {:.0} | {:.0} |",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

/// What one delay sample measured.
struct Sample {
    /// A's `set`, start to return.
    set: Duration,
    /// From A's `set` returning until B's L1 no longer held the old value.
    after_return: Duration,
    /// From A's `set` starting until then.
    after_start: Duration,
}

/// Makes B's L1 hold `old` for `key`, which A wrote: B reads it through (retrying while an
/// invalidation of A's write is still in flight, which refuses or drops the fill).
async fn fill_b(b: &TieredBackend, key: &str, old: &Bytes) {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        assert_eq!(b.get(key).await.expect("B reads").as_ref(), Some(old));
        if b.l1().get(key).await.expect("B's L1").as_ref() == Some(old) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "B's L1 did not keep {key} within {POLL_LIMIT:?}: {:?}",
            b.stats()
        );
        tokio::task::yield_now().await;
    }
}

/// Polls B's L1 until it no longer holds `old` for `key`; `None` past [`POLL_LIMIT`].
async fn wait_dropped(
    b: &TieredBackend,
    key: &str,
    old: &Bytes,
    since: Instant,
) -> Option<Instant> {
    loop {
        let held = b.l1().get(key).await.expect("B's L1");
        let now = Instant::now();
        if held.as_ref() != Some(old) {
            return Some(now);
        }
        if now.duration_since(since) > POLL_LIMIT {
            return None;
        }
        tokio::task::yield_now().await;
    }
}

/// One delay sample on `key`; `None` when B's L1 kept the old value past [`POLL_LIMIT`].
async fn sample(a: &TieredBackend, b: &TieredBackend, key: &str) -> Option<Sample> {
    let old = Bytes::from_static(b"old value");
    let new = Bytes::from_static(b"new value");
    a.set(key, old.clone(), None)
        .await
        .expect("A writes the old value");
    fill_b(b, key, &old).await;
    let started = Instant::now();
    a.set(key, new, None).await.expect("A writes the new value");
    let returned = Instant::now();
    let dropped = wait_dropped(b, key, &old, returned).await?;
    Some(Sample {
        set: returned - started,
        after_return: dropped - returned,
        after_start: dropped - started,
    })
}

/// The process's resident memory and its peak, in KiB, from /proc/self/status.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn stats_rows(label: &str, s: &TieredStats) -> String {
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s.published,
        s.received,
        s.keys_invalidated,
        s.full_clears,
        s.gaps,
        s.losses,
        s.lags,
        s.publish_failures,
        s.serving_l1
    )
}

const STATS_HEADER: &str =
    "| B's counters | published | received | keys invalidated | full clears | \
     gaps | losses | lags | publish failures | serving L1 |\n\
     |---|---|---|---|---|---|---|---|---|---|";

fn samples_wanted() -> usize {
    match std::env::var("LEXICACHE_BENCH_SAMPLES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("LEXICACHE_BENCH_SAMPLES must be a count, got {v:?}")),
        Err(_) => DEFAULT_SAMPLES,
    }
}

/// What one burst measured.
struct Burst {
    elapsed: Duration,
    messages: u64,
    /// How long after the last write of the burst B's L1 dropped a key A wrote next.
    caught_up: Option<Duration>,
    rss_before: u64,
    rss_after: u64,
    rss_peak: u64,
    a_entries: u64,
    b_entries: u64,
}

impl Burst {
    fn row(&self, label: &str) -> String {
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        format!(
            "| {label} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            BURST_KEYS as f64 / self.elapsed.as_secs_f64(),
            self.messages,
            self.caught_up.map_or_else(
                || format!("not within {POLL_LIMIT:?}"),
                |d| format!("{:.0} µs", d.as_secs_f64() * 1e6)
            ),
            mib(self.rss_before),
            mib(self.rss_after),
            mib(self.rss_peak),
            self.a_entries,
            self.b_entries,
        )
    }
}

/// A writes [`BURST_KEYS`] keys as fast as [`BURST_TASKS`] tasks can, then one more key whose
/// invalidation B must see: every invalidation of the burst left before it, so B has applied
/// them all once it drops that key.
async fn burst(a: &TieredBackend, b: &TieredBackend) -> Burst {
    let (rss_before, _) = rss_kib();
    let published_before = a.stats().published;
    let writer = a.clone();
    let value = Bytes::from(vec![b'x'; 100]);
    let elapsed = bench::fan_out(BURST_TASKS, BURST_KEYS, move |t, j| {
        let writer = writer.clone();
        let value = value.clone();
        async move {
            writer
                .set(&format!("burst:{t}:{j}"), value, None)
                .await
                .expect("A writes in the burst");
        }
    })
    .await;
    let caught_up = sample(a, b, "burst:last").await.map(|s| s.after_return);
    let (rss_after, rss_peak) = rss_kib();
    a.l1().run_pending_tasks();
    b.l1().run_pending_tasks();
    Burst {
        elapsed,
        messages: a.stats().published - published_before,
        caught_up,
        rss_before,
        rss_after,
        rss_peak,
        a_entries: a.l1().entry_count(),
        b_entries: b.l1().entry_count(),
    }
}

fn main() {
    let url = lexicache_testkit::servers::redis_url();
    let samples_wanted = samples_wanted();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    rt.block_on(async {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!("lexicache-bench:tiered:{}-{nanos}:", std::process::id());
        let a = node(&url, &prefix, "a").await;
        let b = node(&url, &prefix, "b").await;
        // The subscription's first `Active` clears L1 once: count from here.
        let b_start = b.tiered.stats();

        // Delay.
        let mut sets = Vec::with_capacity(samples_wanted);
        let mut after_return = Vec::with_capacity(samples_wanted);
        let mut after_start = Vec::with_capacity(samples_wanted);
        let mut missed = 0usize;
        for i in 0..samples_wanted {
            match sample(&a.tiered, &b.tiered, &format!("delay:{i}")).await {
                Some(s) => {
                    sets.push(s.set);
                    after_return.push(s.after_return);
                    after_start.push(s.after_start);
                }
                None => missed += 1,
            }
        }
        tokio::time::sleep(SETTLE).await;
        let b_delay = b.tiered.stats();

        // Burst, twice over the same keys: the first fills A's own L1 with its 100 000 writes;
        // the second writes them again, so any growth left is B's (or the transport's).
        let mut bursts = Vec::with_capacity(BURSTS);
        for _ in 0..BURSTS {
            bursts.push(burst(&a.tiered, &b.tiered).await);
        }
        tokio::time::sleep(SETTLE).await;
        let b_end = b.tiered.stats();

        let diff = |to: &TieredStats, from: &TieredStats| {
            let mut d = *to;
            d.published -= from.published;
            d.received -= from.received;
            d.keys_invalidated -= from.keys_invalidated;
            d.full_clears -= from.full_clears;
            d.gaps -= from.gaps;
            d.losses -= from.losses;
            d.lags -= from.lags;
            d.publish_failures -= from.publish_failures;
            d.heartbeats -= from.heartbeats;
            d
        };

        let n = after_return.len();
        println!();
        println!(
            "Invalidation delay, two TieredBackends on loopback Redis ({n} samples, {missed} \
             missed the {POLL_LIMIT:?} bound), microseconds:"
        );
        println!();
        println!("| measure | p50 | p90 | p99 | max |");
        println!("|---|---|---|---|---|");
        if n > 0 {
            println!(
                "{}",
                Summary::of(&mut after_return)
                    .row("B's L1 drops the old value, after A's `set` returned")
            );
            println!(
                "{}",
                Summary::of(&mut after_start)
                    .row("B's L1 drops the old value, after A's `set` started")
            );
            println!(
                "{}",
                Summary::of(&mut sets).row("A's `set` (L2 write + publish)")
            );
        }
        println!();
        println!(
            "Burst: A writes {BURST_KEYS} distinct keys (100-byte values) with {BURST_TASKS} \
             tasks, then one more key whose invalidation B must see; later bursts rewrite the \
             same keys. RSS is the whole process's (A and B).",
        );
        println!();
        println!(
            "| burst | writes/s | messages | B caught up after the last write | RSS before | \
             RSS after | peak RSS | A's L1 entries | B's L1 entries |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (i, burst) in bursts.iter().enumerate() {
            let label = if i == 0 {
                "1 (new keys)".to_owned()
            } else {
                format!("{} (same keys)", i + 1)
            };
            println!("{}", burst.row(&label));
        }
        println!();
        println!("{STATS_HEADER}");
        println!("{}", stats_rows("delay run", &diff(&b_delay, &b_start)));
        println!("{}", stats_rows("all bursts", &diff(&b_end, &b_delay)));
        println!();

        // Leave nothing behind on the shared server.
        a.redis.clear().await.expect("remove the bench keys");
        drop(b);

        let delay = diff(&b_delay, &b_start);
        assert!(
            missed == 0 && delay.gaps == 0 && delay.losses == 0 && delay.full_clears == 0,
            "B missed invalidations during the delay run: {missed} samples past the bound, \
             {delay:?}"
        );
        assert!(
            bursts.iter().all(|b| b.caught_up.is_some()),
            "B did not catch up after a burst: {b_end:?}"
        );
    });
}
