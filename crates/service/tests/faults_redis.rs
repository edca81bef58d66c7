//! Redis under server faults, through the service stack and the raw backend: a killed server, a
//! frozen one, a network that swallows, delays, resets or cuts replies (the testkit's
//! [`FaultProxy`]), and cancelled calls (the connection desync behind redis-py's
//! CVE-2023-28858).
//!
//! Each test states its bounds as named consts and asserts them. Time bounds are correctness
//! bounds (a hang or a lost connection fails the test), not performance measurements; each test
//! prints what it measured on one `figures:` line, which docs/reliability.md quotes. The killed
//! and frozen servers are private `redis-server`s ([`RedisProcess`], never the shared ones); the
//! proxy and cancellation tests run against the shared Redis (`LEXICACHE_TEST_REDIS_URL`) in
//! namespaces of their own.
//!
//! The tests run one at a time ([`serial`]): each measures latencies on a two-core machine, and
//! two at once would measure each other.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use lexicache_core::{Bytes, CacheBackend, Error, ErrorKind};
use lexicache_lock::protection::{Protection, StampedeLock};
use lexicache_redis::fred::interfaces::MetricsInterface;
use lexicache_redis::fred::types::config::ReconnectPolicy;
use lexicache_redis::{RedisBackend, RedisConfig};
use lexicache_service::layers::CircuitBreakerConfig;
use lexicache_service::CacheService;
use lexicache_testkit::process::RedisProcess;
use lexicache_testkit::proxy::{Fault, FaultProxy};
use lexicache_testkit::servers::{redis_url, unique_namespace};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

// ----- shared helpers --------------------------------------------------------------------------

/// One test of this file at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The concurrent callers of the server-fault scenarios.
const TASKS: usize = 200;

/// A reconnect policy: exponential backoff from 20 ms up to `max_delay`, forever, with 20 ms of
/// jitter (so the longest wait between two attempts is `max_delay` + 20 ms).
fn reconnect(max_delay: Duration) -> ReconnectPolicy {
    let max = u32::try_from(max_delay.as_millis()).unwrap_or(u32::MAX);
    let mut policy = ReconnectPolicy::new_exponential(0, 20, max, 2);
    policy.set_jitter(20);
    policy
}

/// The jitter `reconnect` adds to each delay.
const RECONNECT_JITTER: Duration = Duration::from_millis(20);

/// This process's resident set size, in bytes.
fn rss() -> u64 {
    lexicache_testkit::process::memory().rss
}

const MIB: u64 = 1024 * 1024;

/// Prints what a test measured, on one line docs/reliability.md quotes from.
#[allow(clippy::print_stderr)]
fn figures(line: &str) {
    eprintln!("figures: {line}");
}

/// Samples this process's RSS and the client's command queue every few milliseconds until
/// stopped, and reports the peaks.
///
/// fred's `command_queue_len` counts a command refused with a full queue (`Backpressure`) as
/// queued forever (fred 10.1 increments its counter and never decrements it on that path), so
/// the queue is read as that counter minus the refusals the test saw: an upper bound on the
/// real length, over it by at most the refusals not yet counted (one per task).
struct Sampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(u64, usize)>,
}

impl Sampler {
    fn start(backend: &RedisBackend, refused: Arc<AtomicUsize>) -> Self {
        let client = backend.client().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let task = tokio::spawn(async move {
            let (mut peak_rss, mut peak_queue) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                peak_rss = peak_rss.max(rss());
                let queued = client
                    .command_queue_len()
                    .saturating_sub(refused.load(Ordering::SeqCst));
                peak_queue = peak_queue.max(queued);
                sleep(Duration::from_millis(5)).await;
            }
            (peak_rss, peak_queue)
        });
        Self { stop, task }
    }

    /// The peak RSS (bytes) and the peak command queue length.
    async fn finish(self) -> (u64, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the sampler does not panic")
    }
}

/// A small xorshift generator: workers' pacing and the cancellation timeouts need variety,
/// not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `pace` jittered to ½–1½ ×, so 200 workers do not move in step.
fn jittered(rng: &mut Rng, pace: Duration) -> Duration {
    let ms = u64::try_from(pace.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(ms / 2 + rng.below(ms + 1))
}

/// The `q`-quantile (0 to 1) of `samples`, or zero when there are none.
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    // Rounded to the nearest rank; the casts are of small, non-negative numbers.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

/// Where a fault run is: before the fault, during it, while the server is being brought back
/// (it may answer already), and after it is back. A call that starts and ends in `DOWN` ran
/// wholly while the server was dead or frozen.
const UP: u8 = 0;
const DOWN: u8 = 1;
const THAWING: u8 = 3;
const BACK: u8 = 2;

/// What the workers of a fault run share: the phase, the stop flag, when the server came back,
/// and what they saw.
struct Run {
    phase: AtomicU8,
    stop: AtomicBool,
    back_at: Mutex<Option<Instant>>,
    seen: Mutex<Seen>,
}

/// What the workers of a fault run saw.
#[derive(Default)]
struct Seen {
    /// Broken promises, the first few in full.
    violations: Vec<String>,
    violation_count: usize,
    /// Calls made wholly during the fault, and the slowest of them.
    calls_down: u64,
    worst_down: Duration,
    /// The slowest call of the whole run.
    worst: Duration,
    /// Errors by kind, all phases.
    errors: BTreeMap<String, u64>,
    /// How long each call wholly during the fault took to be refused by the open circuit.
    rejected_down: Vec<Duration>,
    /// Calls wholly during the fault that took at least the command timeout.
    slow_down: u64,
    /// When each worker first saw the server back (a hit after the fault), from `back_at`.
    recovered: Vec<Duration>,
}

impl Run {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: AtomicU8::new(UP),
            stop: AtomicBool::new(false),
            back_at: Mutex::new(None),
            seen: Mutex::new(Seen::default()),
        })
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    fn set_phase(&self, phase: u8) {
        if phase == BACK {
            *self.back_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        self.phase.store(phase, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn violation(&self, what: String) {
        let mut seen = self.seen();
        seen.violation_count += 1;
        if seen.violations.len() < 10 {
            seen.violations.push(what);
        }
    }

    /// Records one call: how long it took, in which phases it started and ended, and its error.
    fn call(&self, phases: (u8, u8), took: Duration, error: Option<&Error>, timeout: Duration) {
        let mut seen = self.seen();
        seen.worst = seen.worst.max(took);
        if let Some(e) = error {
            *seen.errors.entry(format!("{:?}", e.kind())).or_default() += 1;
        }
        if phases == (DOWN, DOWN) {
            seen.calls_down += 1;
            seen.worst_down = seen.worst_down.max(took);
            if error.is_some_and(|e| e.kind() == ErrorKind::CircuitOpen) {
                seen.rejected_down.push(took);
            }
            if took >= timeout {
                seen.slow_down += 1;
            }
        }
    }

    /// Notes that a worker sees the server back, once per worker.
    fn recovered(&self, done: &mut bool) {
        if *done {
            return;
        }
        *done = true;
        let back_at = *self.back_at.lock().unwrap_or_else(PoisonError::into_inner);
        let since = back_at.map_or(Duration::ZERO, |at| at.elapsed());
        self.seen().recovered.push(since);
    }

    fn assert_no_violations(&self) {
        let seen = self.seen();
        assert!(
            seen.violation_count == 0,
            "{} broken promises, the first ones: {:#?}",
            seen.violation_count,
            seen.violations
        );
    }
}

/// Waits, at most `limit` after the server came back, until all `TASKS` workers saw it back;
/// then stops them and joins every one (a panicked worker fails the test). Returns the last
/// worker's recovery time, if all recovered.
async fn finish(run: &Arc<Run>, workers: Vec<JoinHandle<()>>, limit: Duration) -> Option<Duration> {
    let deadline = Instant::now() + limit;
    while run.seen().recovered.len() < TASKS && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    run.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        if let Err(e) = worker.await {
            assert!(!e.is_panic(), "a worker panicked: {e}");
            panic!("a worker did not finish: {e}");
        }
    }
    let seen = run.seen();
    (seen.recovered.len() == TASKS)
        .then(|| seen.recovered.iter().copied().max().unwrap_or_default())
}

/// The shared Redis's address, from `LEXICACHE_TEST_REDIS_URL` (checked to be reachable).
fn shared_redis() -> SocketAddr {
    let url = redis_url();
    let rest = url
        .strip_prefix("redis://")
        .expect("redis_url is a redis:// URL");
    let addr = rest.split('/').next().unwrap_or(rest);
    addr.parse()
        .unwrap_or_else(|e| panic!("LEXICACHE_TEST_REDIS_URL: bad address {addr}: {e}"))
}

/// The lock keys (see [`lexicache_redis::RedisLockStore`]) and fencing counters on a private
/// server, found by `SCAN`.
async fn lock_and_fence_keys(redis: &RedisProcess) -> (Vec<String>, Vec<String>) {
    let raw = RedisBackend::builder()
        .url(&redis.url())
        .connect()
        .await
        .expect("connect to the private redis");
    // Load locks are on `lexicache-load:` resources (from crates/lock); the Redis lock store
    // keeps a lock on `r` under `lock:{<hash>}r` and its fencing counter under `fence:{..}r`.
    let load = StampedeLock::resource("");
    let scan = |kind: &'static str| {
        let raw = raw.clone();
        let load = load.clone();
        async move {
            raw.keys(&format!("{kind}*{load}*"), 100_000)
                .await
                .expect("SCAN the private redis")
        }
    };
    (scan("lock:").await, scan("fence:").await)
}

// ----- 1. SIGKILL -------------------------------------------------------------------------------

/// redis-server SIGKILLed for 3 s under 200 concurrent tasks calling `get`, `set` and
/// `get_or_set` through the service.
///
/// The configuration is what production would use: a command timeout, fail-fast while
/// disconnected, a reconnect policy with backoff, the circuit breaker (its open period kept
/// under the recovery slack), and distributed stampede protection (the default), so
/// `get_or_set` takes Redis locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_degrades_to_defaults_in_time_and_recovers_without_leaking_locks() {
    /// The backend's command timeout.
    const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
    /// Every `get` returns within the command timeout plus 50 ms (the bound).
    const GET_BOUND: Duration = COMMAND_TIMEOUT.saturating_add(Duration::from_millis(50));
    /// How long the server stays dead.
    const OUTAGE: Duration = Duration::from_secs(3);
    /// The longest reconnect delay of the backoff.
    const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
    /// After the restart, every worker reads a key set after the restart within the reconnect
    /// delay plus 1 s (the bound; the second covers the circuit's open period and a
    /// probe).
    const RECOVERY_BOUND: Duration = RECONNECT_MAX_DELAY
        .saturating_add(RECONNECT_JITTER)
        .saturating_add(Duration::from_secs(1));
    /// The circuit breaker's open period: well inside the recovery slack.
    const OPEN_DURATION: Duration = Duration::from_millis(300);
    /// Hot keys every worker reads; keys loaded by `get_or_set` (short-lived, so locks keep
    /// being taken); pause between two calls of a worker.
    const HOT_KEYS: usize = 16;
    const LOADED_KEYS: usize = 8;
    const LOADED_TTL: Duration = Duration::from_millis(100);
    const PACE: Duration = Duration::from_millis(20);

    let _serial = serial().await;
    let mut redis = RedisProcess::start();
    let backend = RedisBackend::builder()
        .url(&redis.url())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .reconnect_policy(reconnect(RECONNECT_MAX_DELAY))
        .connect()
        .await
        .expect("connect to the private redis");
    let cache = CacheService::builder(backend.clone())
        .namespace("app:")
        .circuit_breaker(
            CircuitBreakerConfig::new()
                .failure_threshold(5)
                .window(Duration::from_secs(5))
                .open_duration(OPEN_DURATION),
        )
        .protection(Protection::default())
        .build();
    for i in 0..HOT_KEYS {
        let key = format!("hot:{i}");
        assert!(cache.set(&key, &key, None).await, "seed {key}");
    }

    let run = Run::new();
    let workers: Vec<_> = (0..TASKS)
        .map(|i| {
            let (cache, run) = (cache.clone(), run.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64 + 1);
                let mut back = false;
                let mut n = 0usize;
                while !run.stopped() {
                    let start = run.phase();
                    let began = Instant::now();
                    match n % 3 {
                        0 => {
                            let key = format!("hot:{}", (i + n) % HOT_KEYS);
                            let got = cache.try_get::<String>(&key).await;
                            let took = began.elapsed();
                            let phases = (start, run.phase());
                            run.call(phases, took, got.as_ref().err(), COMMAND_TIMEOUT);
                            // What `get` returns: the default (`None`) on any failure.
                            let got = got.unwrap_or_default();
                            if took > GET_BOUND {
                                run.violation(format!(
                                    "get {key} took {took:?} (phases {phases:?})"
                                ));
                            }
                            if got.as_ref().is_some_and(|v| *v != key) {
                                run.violation(format!("get {key} returned {got:?}"));
                            }
                            if phases == (DOWN, DOWN) && got.is_some() {
                                run.violation(format!("get {key} hit a dead server: {got:?}"));
                            }
                        }
                        1 => {
                            let set = cache.try_set(&format!("own:{i}"), &n, None).await;
                            let took = began.elapsed();
                            let phases = (start, run.phase());
                            run.call(phases, took, set.as_ref().err(), COMMAND_TIMEOUT);
                            if set.is_ok() && phases == (DOWN, DOWN) {
                                run.violation(format!("set own:{i} succeeded on a dead server"));
                            }
                        }
                        _ => {
                            let key = format!("loaded:{}", i % LOADED_KEYS);
                            let want = key.clone();
                            let got = cache
                                .get_or_set(&key, Some(LOADED_TTL), || async move {
                                    Ok::<_, Infallible>(want)
                                })
                                .await;
                            match got {
                                Ok(v) if v == key => {}
                                other => run.violation(format!("get_or_set {key}: {other:?}")),
                            }
                        }
                    }
                    if run.phase() == BACK && !back {
                        // A key set after the restart reads back: the cache serves again.
                        if cache.get::<String>("marker").await.as_deref() == Some("after") {
                            run.recovered(&mut back);
                        }
                    }
                    n += 1;
                    sleep(jittered(&mut rng, PACE)).await;
                }
            })
        })
        .collect();

    sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| redis.kill());
    run.set_phase(DOWN);
    sleep(OUTAGE).await;
    run.set_phase(THAWING);
    tokio::task::block_in_place(|| redis.restart());
    run.set_phase(BACK);
    let restarted = Instant::now();
    // Written as soon as the service admits a write again.
    let marker_written = loop {
        if cache.try_set("marker", &"after", None).await.is_ok() {
            break restarted.elapsed();
        }
        if restarted.elapsed() > RECOVERY_BOUND + Duration::from_secs(5) {
            panic!(
                "no write succeeded within {:?} of the restart",
                restarted.elapsed()
            );
        }
        sleep(Duration::from_millis(10)).await;
    };
    let recovery = finish(&run, workers, RECOVERY_BOUND + Duration::from_secs(2)).await;

    // Releases of the last loads run inline; a short wait covers any spawned one.
    sleep(Duration::from_millis(200)).await;
    let (locks, fences) = lock_and_fence_keys(&redis).await;

    let seen = run.seen();
    figures(&format!(
        "kill {OUTAGE:?} under {TASKS} tasks: worst get during the outage {:?} \
         ({} calls, {} refused by the open circuit), worst call of the run {:?}, errors {:?}, \
         first write after restart {marker_written:?}, all tasks hit again after {recovery:?} \
         (bound {RECOVERY_BOUND:?}), lock keys left {}, fencing counters {}",
        seen.worst_down,
        seen.calls_down,
        seen.rejected_down.len(),
        seen.worst,
        seen.errors,
        locks.len(),
        fences.len(),
    ));
    drop(seen);
    run.assert_no_violations();
    let seen = run.seen();
    assert!(seen.calls_down > 0, "calls were made during the outage");
    assert!(
        seen.worst_down <= GET_BOUND,
        "worst get during the outage {:?}",
        seen.worst_down
    );
    let recovery = recovery.unwrap_or_else(|| {
        panic!(
            "only {} of {TASKS} tasks read the cache again after the restart",
            seen.recovered.len()
        )
    });
    assert!(
        recovery <= RECOVERY_BOUND,
        "recovered after {recovery:?}, over {RECOVERY_BOUND:?}"
    );
    assert!(locks.is_empty(), "lock keys left behind: {locks:?}");
    assert!(
        !fences.is_empty(),
        "get_or_set took no distributed lock after the restart: the test would prove nothing"
    );
}

// ----- 2. SIGSTOP -------------------------------------------------------------------------------

/// redis-server SIGSTOPped for 5 s (hung, sockets open) under 200 tasks calling `get` and
/// `set` through the service, with the production configuration of the SIGKILL test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_opens_the_circuit_fails_fast_and_recovers_after_sigcont() {
    /// The backend's command timeout.
    const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
    /// How long the server stays frozen.
    const FREEZE: Duration = Duration::from_secs(5);
    /// The circuit breaker's open period.
    const OPEN_DURATION: Duration = Duration::from_millis(500);
    /// Calls the open circuit refuses return fast: 99 % of them within this, a small fraction
    /// of the command timeout (the rest is two cores scheduling 200 tasks) ...
    const FAIL_FAST_P99_BOUND: Duration = Duration::from_millis(20);
    /// ... and every one well within the command timeout: none waits for the frozen server.
    const FAIL_FAST_MAX_BOUND: Duration = Duration::from_millis(150);
    /// While frozen, at most this many calls wait for the command timeout: the ones in flight
    /// when it froze, the ones before the circuit opened, and one probe per open period.
    /// Without the breaker every call would (some 3,000 here).
    const SLOW_CALLS_BOUND: u64 = 2 * TASKS as u64;
    /// The bound of fred's command queue.
    const MAX_COMMAND_BUFFER: usize = 1_000;
    /// The RSS of the test process grows by at most this much while the server is frozen.
    const RSS_GROWTH_CAP: u64 = 64 * MIB;
    /// The longest reconnect delay, should the frozen connection be dropped.
    const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
    /// After SIGCONT, every task hits again within the open period, a reconnect and 1 s.
    const RECOVERY_BOUND: Duration = OPEN_DURATION
        .saturating_add(RECONNECT_MAX_DELAY)
        .saturating_add(RECONNECT_JITTER)
        .saturating_add(Duration::from_secs(1));
    const HOT_KEYS: usize = 16;
    const VALUE_SIZE: usize = 1024;
    const PACE: Duration = Duration::from_millis(20);

    let _serial = serial().await;
    let redis = RedisProcess::start();
    let backend = RedisBackend::builder()
        .url(&redis.url())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .reconnect_policy(reconnect(RECONNECT_MAX_DELAY))
        .max_command_buffer(MAX_COMMAND_BUFFER)
        .connect()
        .await
        .expect("connect to the private redis");
    let cache = CacheService::builder(backend.clone())
        .namespace("app:")
        .circuit_breaker(
            CircuitBreakerConfig::new()
                .failure_threshold(5)
                .window(Duration::from_secs(5))
                .open_duration(OPEN_DURATION),
        )
        .build();
    for i in 0..HOT_KEYS {
        let key = format!("hot:{i}");
        assert!(cache.set(&key, &key, None).await, "seed {key}");
    }

    let run = Run::new();
    let workers: Vec<_> = (0..TASKS)
        .map(|i| {
            let (cache, run) = (cache.clone(), run.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64 + 1);
                let mut back = false;
                let mut n = 0usize;
                let value = "v".repeat(VALUE_SIZE);
                while !run.stopped() {
                    let start = run.phase();
                    let began = Instant::now();
                    let key = format!("hot:{}", (i + n) % HOT_KEYS);
                    if n % 2 == 0 {
                        let got = cache.try_get::<String>(&key).await;
                        let phases = (start, run.phase());
                        run.call(phases, began.elapsed(), got.as_ref().err(), COMMAND_TIMEOUT);
                        match got {
                            Ok(Some(v)) if v != key => {
                                run.violation(format!("get {key} returned {v:?}"));
                            }
                            Ok(Some(_)) if phases == (DOWN, DOWN) => {
                                run.violation(format!("get {key} answered by a frozen server"));
                            }
                            Ok(None) => run.violation(format!("get {key} missed")),
                            Ok(Some(_)) if start == BACK => run.recovered(&mut back),
                            _ => {}
                        }
                    } else {
                        let set = cache.try_set(&format!("own:{i}"), &value, None).await;
                        let phases = (start, run.phase());
                        run.call(phases, began.elapsed(), set.as_ref().err(), COMMAND_TIMEOUT);
                    }
                    n += 1;
                    sleep(jittered(&mut rng, PACE)).await;
                }
            })
        })
        .collect();

    sleep(Duration::from_millis(500)).await;
    let baseline = rss();
    let sampler = Sampler::start(&backend, Arc::default());
    tokio::task::block_in_place(|| redis.stop());
    run.set_phase(DOWN);
    sleep(FREEZE).await;
    run.set_phase(THAWING);
    tokio::task::block_in_place(|| redis.cont());
    let (peak_rss, peak_queue) = sampler.finish().await;
    run.set_phase(BACK);
    let recovery = finish(&run, workers, RECOVERY_BOUND + Duration::from_secs(2)).await;
    let health = cache.health_check(Duration::from_secs(1)).await;

    let growth = peak_rss.saturating_sub(baseline);
    let seen = run.seen();
    let (refused, refusal_p50, refusal_p99, refusal_max) = (
        seen.rejected_down.len(),
        quantile(&seen.rejected_down, 0.5),
        quantile(&seen.rejected_down, 0.99),
        quantile(&seen.rejected_down, 1.0),
    );
    figures(&format!(
        "SIGSTOP {FREEZE:?} under {TASKS} tasks: {} calls while frozen, {refused} \
         refused by the open circuit (p50 {refusal_p50:?}, p99 {refusal_p99:?}, max \
         {refusal_max:?}), {} waited the command timeout \
         {COMMAND_TIMEOUT:?}, slowest call {:?}; peak command queue {peak_queue} (bound \
         {MAX_COMMAND_BUFFER}); RSS {} KiB -> peak {} KiB (growth {} KiB, cap {} KiB); all \
         tasks hit again {recovery:?} after SIGCONT (bound {RECOVERY_BOUND:?}); errors {:?}",
        seen.calls_down,
        seen.slow_down,
        seen.worst,
        baseline / 1024,
        peak_rss / 1024,
        growth / 1024,
        RSS_GROWTH_CAP / 1024,
        seen.errors,
    ));
    drop(seen);
    run.assert_no_violations();
    let seen = run.seen();
    assert!(refused > 0, "the circuit never opened");
    assert!(
        refusal_p99 <= FAIL_FAST_P99_BOUND,
        "refusals are slow: p99 {refusal_p99:?}"
    );
    assert!(
        refusal_max <= FAIL_FAST_MAX_BOUND,
        "a refused call took {refusal_max:?}"
    );
    assert!(
        seen.slow_down <= SLOW_CALLS_BOUND,
        "{} calls waited the command timeout while the circuit should have been open",
        seen.slow_down
    );
    assert!(
        peak_queue <= MAX_COMMAND_BUFFER,
        "the command queue reached {peak_queue}"
    );
    assert!(
        growth <= RSS_GROWTH_CAP,
        "RSS grew by {} KiB",
        growth / 1024
    );
    let recovery = recovery.unwrap_or_else(|| {
        panic!(
            "only {} of {TASKS} tasks hit again after SIGCONT",
            seen.recovered.len()
        )
    });
    assert!(
        recovery <= RECOVERY_BOUND,
        "recovered after {recovery:?}, over {RECOVERY_BOUND:?}"
    );
    assert_eq!(
        health.details.get("circuit").map(String::as_str),
        Some("closed"),
        "{health:?}"
    );
}

/// The worst case for memory: no circuit breaker, and 200 tasks writing fresh 64 KiB values
/// to a frozen server. The socket buffers fill, fred's writer blocks, and its command queue
/// fills up to `max_command_buffer`; past it writes fail at once (`Connection`, "buffer is
/// full") instead of piling up values in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_without_a_breaker_keeps_the_command_queue_and_memory_bounded() {
    /// The backend's command timeout.
    const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
    /// How long the server stays frozen.
    const FREEZE: Duration = Duration::from_secs(5);
    /// The bound of fred's command queue under test.
    const MAX_COMMAND_BUFFER: usize = 256;
    /// What the sampled queue length may read: the bound, plus one refusal per task not yet
    /// subtracted (see [`Sampler`]).
    const QUEUE_BOUND: usize = MAX_COMMAND_BUFFER + TASKS;
    /// Each write carries a fresh value of this size.
    const VALUE_SIZE: usize = 64 * 1024;
    /// The RSS of the test process grows by at most this much while the server is frozen:
    /// the queue's values (16 MiB), what fits in the sockets, and allocator slack. Without
    /// the bound, the values of every write in the freeze stay queued (195 MiB measured).
    const RSS_GROWTH_CAP: u64 = 64 * MIB;
    /// Every call ends within the command timeout plus scheduling slack.
    const CALL_BOUND: Duration = COMMAND_TIMEOUT.saturating_add(Duration::from_millis(200));
    /// The longest reconnect delay, should the frozen connection be dropped.
    const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
    /// After SIGCONT, every task writes and reads back again within a reconnect and 1 s.
    const RECOVERY_BOUND: Duration = RECONNECT_MAX_DELAY
        .saturating_add(RECONNECT_JITTER)
        .saturating_add(Duration::from_secs(1));
    const PACE: Duration = Duration::from_millis(5);

    let _serial = serial().await;
    let redis = RedisProcess::start();
    let backend = RedisBackend::builder()
        .url(&redis.url())
        .prefix("raw:")
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .reconnect_policy(reconnect(RECONNECT_MAX_DELAY))
        .max_command_buffer(MAX_COMMAND_BUFFER)
        .connect()
        .await
        .expect("connect to the private redis");

    let run = Run::new();
    let full = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..TASKS)
        .map(|i| {
            let (backend, run, full) = (backend.clone(), run.clone(), full.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64 + 1);
                let mut back = false;
                let key = format!("w:{i}");
                let mut n = 0u8;
                while !run.stopped() {
                    let start = run.phase();
                    let began = Instant::now();
                    n = n.wrapping_add(1);
                    let value = Bytes::from(vec![n; VALUE_SIZE]);
                    let set = backend.set(&key, value, None).await;
                    let took = began.elapsed();
                    let phases = (start, run.phase());
                    run.call(phases, took, set.as_ref().err(), COMMAND_TIMEOUT);
                    if took > CALL_BOUND {
                        run.violation(format!("set {key} took {took:?} (phases {phases:?})"));
                    }
                    match set {
                        Err(e) if e.message().contains("buffer is full") => {
                            assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
                            full.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert!(
                            matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
                            "{e}"
                        ),
                        Ok(()) if phases == (DOWN, DOWN) => {
                            run.violation(format!("set {key} answered by a frozen server"));
                        }
                        Ok(()) if start == BACK => {
                            let got = backend.get(&key).await;
                            match got {
                                Ok(Some(v))
                                    if v.len() == VALUE_SIZE && v.iter().all(|b| *b == n) =>
                                {
                                    run.recovered(&mut back);
                                }
                                Ok(other) => run.violation(format!(
                                    "{key} read back {:?} bytes, not its last write",
                                    other.map(|v| v.len())
                                )),
                                Err(_) => {}
                            }
                        }
                        Ok(()) => {}
                    }
                    sleep(jittered(&mut rng, PACE)).await;
                }
            })
        })
        .collect();

    sleep(Duration::from_millis(500)).await;
    let baseline = rss();
    let sampler = Sampler::start(&backend, full.clone());
    tokio::task::block_in_place(|| redis.stop());
    run.set_phase(DOWN);
    sleep(FREEZE).await;
    run.set_phase(THAWING);
    tokio::task::block_in_place(|| redis.cont());
    let (peak_rss, peak_queue) = sampler.finish().await;
    run.set_phase(BACK);
    let recovery = finish(&run, workers, RECOVERY_BOUND + Duration::from_secs(3)).await;

    let growth = peak_rss.saturating_sub(baseline);
    let full = full.load(Ordering::SeqCst);
    let seen = run.seen();
    figures(&format!(
        "SIGSTOP {FREEZE:?}, no breaker, {TASKS} tasks writing {} KiB values: peak \
         command queue {peak_queue} (bound {MAX_COMMAND_BUFFER}, read as at most \
         {QUEUE_BOUND}), {full} writes refused with \
         a full buffer, {} calls while frozen, slowest call {:?}; RSS {} KiB -> peak {} KiB \
         (growth {} KiB, cap {} KiB); all tasks write and read back {recovery:?} after SIGCONT \
         (bound {RECOVERY_BOUND:?}); errors {:?}",
        VALUE_SIZE / 1024,
        seen.calls_down,
        seen.worst,
        baseline / 1024,
        peak_rss / 1024,
        growth / 1024,
        RSS_GROWTH_CAP / 1024,
        seen.errors,
    ));
    drop(seen);
    run.assert_no_violations();
    assert!(
        full > 0,
        "the command queue never filled: the bound was not exercised"
    );
    assert!(
        peak_queue <= QUEUE_BOUND,
        "the command queue reached {peak_queue}"
    );
    assert!(
        growth <= RSS_GROWTH_CAP,
        "RSS grew by {} KiB",
        growth / 1024
    );
    let recovery = recovery.unwrap_or_else(|| {
        panic!(
            "only {} of {TASKS} tasks wrote and read back after SIGCONT",
            run.seen().recovered.len()
        )
    });
    assert!(
        recovery <= RECOVERY_BOUND,
        "recovered after {recovery:?}, over {RECOVERY_BOUND:?}"
    );
}

// ----- 3. blackhole, latency, reset, cut replies -----------------------------------------------

/// The command timeout of the proxy tests.
const PROXY_COMMAND_TIMEOUT: Duration = Duration::from_millis(200);
/// A failing call through the proxy ends within the command timeout plus this.
const PROXY_SLACK: Duration = Duration::from_millis(200);
/// How long a connection may leave a command unanswered before fred replaces it (shortened
/// from the 5 s default to keep the test short).
const UNRESPONSIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest reconnect delay of the proxy tests.
const PROXY_RECONNECT_MAX_DELAY: Duration = Duration::from_millis(250);

/// A proxy in front of the shared Redis, and a backend through it in a namespace of its own.
async fn proxied(label: &str) -> (FaultProxy, RedisBackend) {
    let proxy = FaultProxy::start(shared_redis())
        .await
        .expect("start the fault proxy");
    let mut config = RedisConfig::from_url(&format!("redis://{}", proxy.addr()))
        .expect("the proxy's URL parses");
    config.command_timeout = PROXY_COMMAND_TIMEOUT;
    config.connect_timeout = PROXY_COMMAND_TIMEOUT;
    config.reconnect = reconnect(PROXY_RECONNECT_MAX_DELAY);
    config.unresponsive_timeout = Some(UNRESPONSIVE_TIMEOUT);
    let backend = RedisBackend::builder()
        .config(config)
        .prefix(unique_namespace(label))
        .connect()
        .await
        .expect("connect to the shared redis through the proxy");
    (proxy, backend)
}

/// `get`s `key` until it returns `want`, every 20 ms; returns how long that took, or fails
/// after `limit`. Any other value is a failure at once.
async fn until_read_back(
    backend: &RedisBackend,
    key: &str,
    want: &[u8],
    limit: Duration,
) -> Duration {
    let began = Instant::now();
    loop {
        match backend.get(key).await {
            Ok(Some(v)) if v == want => return began.elapsed(),
            Ok(other) => panic!(
                "{key} read back {:?} bytes, not its value",
                other.map(|v| v.len())
            ),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                "{e}"
            ),
        }
        assert!(
            began.elapsed() <= limit,
            "{key} did not read back within {limit:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// A call through a faulty proxy: it fails with a connection or timeout error within the
/// command timeout plus slack, or returns exactly `want`.
async fn typed_or_right(backend: &RedisBackend, key: &str, want: &[u8]) -> Option<Error> {
    let began = Instant::now();
    let got = backend.get(key).await;
    let took = began.elapsed();
    assert!(
        took <= PROXY_COMMAND_TIMEOUT + PROXY_SLACK,
        "get {key} took {took:?}"
    );
    match got {
        Ok(Some(v)) if v == want => None,
        Ok(other) => panic!(
            "{key} read {:?} bytes through the fault, not its value",
            other.map(|v| v.len())
        ),
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                "{e}"
            );
            assert!(e.is_retryable(), "{e}");
            Some(e)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_connection_times_out_and_is_replaced_once_the_fault_lifts() {
    /// Calls made into the blackhole.
    const BLACKHOLED_CALLS: usize = 5;
    /// The backend finds the dead connection within a command timeout (the first call that
    /// times out) plus the unresponsive timeout (a `PING` that goes unanswered too), replaces it
    /// within the reconnect delay, and 1 s covers the rest.
    const RECOVERY_BOUND: Duration = PROXY_COMMAND_TIMEOUT
        .saturating_add(UNRESPONSIVE_TIMEOUT)
        .saturating_add(PROXY_RECONNECT_MAX_DELAY)
        .saturating_add(RECONNECT_JITTER)
        .saturating_add(Duration::from_secs(1));

    let _serial = serial().await;
    let (proxy, backend) = proxied("faults-blackhole").await;
    backend
        .set("k", Bytes::from_static(b"k"), Some(Duration::from_secs(60)))
        .await
        .expect("set through the proxy");
    let accepted = proxy.connections_accepted();

    proxy.set_fault(Fault::Blackhole);
    let mut kinds = Vec::new();
    let mut worst = Duration::ZERO;
    for _ in 0..BLACKHOLED_CALLS {
        let began = Instant::now();
        let err = typed_or_right(&backend, "k", b"k")
            .await
            .expect("a blackhole answers nothing");
        worst = worst.max(began.elapsed());
        kinds.push(err.kind());
    }
    assert_eq!(kinds[0], ErrorKind::Timeout, "{kinds:?}");

    proxy.set_fault(Fault::PassThrough);
    let recovered = until_read_back(&backend, "k", b"k", RECOVERY_BOUND).await;
    let replaced = proxy.connections_accepted() - accepted;
    figures(&format!(
        "blackhole: {BLACKHOLED_CALLS} calls failed with {kinds:?}, slowest {worst:?} \
         (command timeout {PROXY_COMMAND_TIMEOUT:?}); reads back {recovered:?} after the fault \
         lifted (bound {RECOVERY_BOUND:?}) on {replaced} new connection(s)"
    ));
    assert!(
        replaced > 0,
        "the blackholed connection was not replaced: {proxy:?}"
    );
    // The new connection is in step: each key reads its own value.
    for i in 0..20 {
        let key = format!("after:{i}");
        backend
            .set(
                &key,
                Bytes::from(key.clone()),
                Some(Duration::from_secs(60)),
            )
            .await
            .expect("set after recovery");
        assert_eq!(
            backend.get(&key).await.expect("get").as_deref(),
            Some(key.as_bytes())
        );
    }
    backend.clear().await.expect("clear the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_over_the_command_timeout_times_out_and_under_it_succeeds() {
    /// Replies later than the command timeout ...
    const SLOW: Duration = Duration::from_millis(400);
    /// ... and well within it.
    const FAST: Duration = Duration::from_millis(50);
    const KEYS: usize = 10;

    let _serial = serial().await;
    let (proxy, backend) = proxied("faults-latency").await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("l:{i}")).collect();
    for key in &keys {
        backend
            .set(key, Bytes::from(key.clone()), Some(Duration::from_secs(60)))
            .await
            .expect("set through the proxy");
    }

    proxy.set_fault(Fault::Latency(SLOW));
    let mut slow_worst = Duration::ZERO;
    for key in &keys[..3] {
        let began = Instant::now();
        let err = backend.get(key).await.expect_err("replies come too late");
        let took = began.elapsed();
        slow_worst = slow_worst.max(took);
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(took <= PROXY_COMMAND_TIMEOUT + PROXY_SLACK, "took {took:?}");
    }

    proxy.set_fault(Fault::Latency(FAST));
    // The late replies of the timed-out gets are still on their way, ahead of new ones.
    sleep(SLOW + Duration::from_millis(100)).await;
    let mut fast_worst = Duration::ZERO;
    // Every key, the timed-out ones included: each reads its own value, so the late replies
    // went to the calls that had given up on them, not to the next ones.
    for key in &keys {
        let began = Instant::now();
        let got = backend.get(key).await.expect("replies come in time");
        fast_worst = fast_worst.max(began.elapsed());
        assert_eq!(got.as_deref(), Some(key.as_bytes()));
    }
    figures(&format!(
        "latency {SLOW:?} over the command timeout {PROXY_COMMAND_TIMEOUT:?}: gets \
         time out after at most {slow_worst:?}; latency {FAST:?}: gets succeed in at most \
         {fast_worst:?}"
    ));
    proxy.set_fault(Fault::PassThrough);
    backend.clear().await.expect("clear the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_cut_replies_give_typed_errors_never_wrong_values_and_recover() {
    /// Calls made under each fault.
    const CALLS: usize = 5;
    /// Bytes of a reply the proxy forwards before it closes a connection: the small value's
    /// reply fits, the big one's is cut midway.
    const CUT_AFTER: usize = 1000;
    const BIG_SIZE: usize = 16 * 1024;
    /// After the fault lifts, keys read back within the reconnect delay plus 1 s.
    const RECOVERY_BOUND: Duration = PROXY_RECONNECT_MAX_DELAY
        .saturating_add(RECONNECT_JITTER)
        .saturating_add(Duration::from_secs(1));

    let _serial = serial().await;
    let (proxy, backend) = proxied("faults-reset").await;
    let small = b"small".to_vec();
    let big: Vec<u8> = b"big:".iter().copied().cycle().take(BIG_SIZE).collect();
    let ttl = Some(Duration::from_secs(60));
    backend
        .set("small", Bytes::from(small.clone()), ttl)
        .await
        .expect("set");
    backend
        .set("big", Bytes::from(big.clone()), ttl)
        .await
        .expect("set");

    proxy.set_fault(Fault::Reset);
    let mut reset_errors = BTreeMap::<String, usize>::new();
    for _ in 0..CALLS {
        let err = typed_or_right(&backend, "small", &small)
            .await
            .expect("every connection is reset");
        *reset_errors.entry(format!("{:?}", err.kind())).or_default() += 1;
    }
    proxy.set_fault(Fault::PassThrough);
    let after_reset = until_read_back(&backend, "small", &small, RECOVERY_BOUND).await;

    let accepted = proxy.connections_accepted();
    proxy.set_fault(Fault::CloseAfter(CUT_AFTER));
    let (mut cut, mut whole) = (BTreeMap::<String, usize>::new(), 0);
    for _ in 0..CALLS {
        match typed_or_right(&backend, "big", &big).await {
            Some(err) => *cut.entry(format!("{:?}", err.kind())).or_default() += 1,
            None => panic!("the big reply cannot pass whole"),
        }
        // A small reply fits in a fresh connection's budget: it may pass, but only whole.
        if typed_or_right(&backend, "small", &small).await.is_none() {
            whole += 1;
        }
    }
    proxy.set_fault(Fault::PassThrough);
    let after_cut = until_read_back(&backend, "big", &big, RECOVERY_BOUND).await;
    until_read_back(&backend, "small", &small, RECOVERY_BOUND).await;
    let reconnects = proxy.connections_accepted() - accepted;
    figures(&format!(
        "reset: errors {reset_errors:?}, reads back after {after_reset:?}; replies cut \
         after {CUT_AFTER} bytes: big gets failed with {cut:?}, {whole}/{CALLS} small gets \
         passed whole, {reconnects} reconnections; reads back after {after_cut:?} (bound \
         {RECOVERY_BOUND:?})"
    ));
    backend.clear().await.expect("clear the namespace");
}

// ----- 4. cancellation safety ------------------------------------------------------------------

/// How many keys the cancellation tests read; each key's value is its own name.
const CANCEL_KEYS: usize = 500;
/// The proxy's added latency: longer than the 1 ms timeout of the first cancelled get.
const CANCEL_LATENCY: Duration = Duration::from_millis(3);
/// The `get`s after the first cancelled one ...
const CANCEL_GETS: usize = 10_000;
/// ... of which these run one after another (each right behind the previous, on the same
/// connection), the rest `CANCEL_CONCURRENCY` at a time ...
const CANCEL_SEQUENTIAL: usize = 300;
const CANCEL_CONCURRENCY: usize = 32;
/// ... and every this many is cancelled by a timeout of 0 to 2 × the latency.
const CANCEL_EVERY: usize = 10;

/// A `get` to stress: returns the value read as a string.
type Get = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, lexicache_core::Result<Option<String>>>
        + Send
        + Sync,
>;

/// What one `get` of the stress did.
enum Outcome {
    Cancelled,
    Read,
}

/// One `get` of `key`, cancelled by a timeout of `cancel_after` if given. Whatever completes
/// must be `key`'s own value.
async fn checked_get(get: &Get, key: String, cancel_after: Option<Duration>) -> Outcome {
    let call = get(key.clone());
    let got = match cancel_after {
        Some(limit) => match timeout(limit, call).await {
            Ok(got) => got,
            Err(_) => return Outcome::Cancelled,
        },
        None => call.await,
    };
    match got {
        Ok(Some(value)) => assert_eq!(value, key, "get {key} returned another key's value"),
        other => panic!("get {key}: {other:?}"),
    }
    Outcome::Read
}

/// The CVE-2023-28858 scenario: a `get` of one key cancelled by a 1 ms timeout through a slow
/// proxy, then 10,000 `get`s of other keys, every tenth of them cancelled at a random moment.
/// None may return another key's value. Returns how many were cancelled.
async fn cancelled_gets_stay_in_step(proxy: &FaultProxy, get: Get) -> usize {
    proxy.set_fault(Fault::Latency(CANCEL_LATENCY));
    let first = timeout(Duration::from_millis(1), get("k0".to_owned())).await;
    assert!(
        first.is_err(),
        "the 1 ms timeout did not cancel a get slowed by {CANCEL_LATENCY:?}"
    );

    let mut rng = Rng::new(28858);
    let max_ms = u64::try_from(2 * CANCEL_LATENCY.as_millis()).unwrap_or(u64::MAX);
    let plan: Vec<(String, Option<Duration>)> = (0..CANCEL_GETS)
        .map(|n| {
            let key = format!("k{}", 1 + rng.below(CANCEL_KEYS as u64 - 1));
            let cancel =
                (n % CANCEL_EVERY == 0).then(|| Duration::from_millis(rng.below(max_ms + 1)));
            (key, cancel)
        })
        .collect();
    let mut cancelled = 0;
    let (sequential, concurrent) = plan.split_at(CANCEL_SEQUENTIAL);
    for (key, cancel) in sequential {
        if let Outcome::Cancelled = checked_get(&get, key.clone(), *cancel).await {
            cancelled += 1;
        }
    }
    let outcomes: Vec<Outcome> = futures::stream::iter(concurrent.iter().cloned())
        .map(|(key, cancel)| {
            let get = get.clone();
            async move { checked_get(&get, key, cancel).await }
        })
        .buffer_unordered(CANCEL_CONCURRENCY)
        .collect()
        .await;
    cancelled += outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Cancelled))
        .count();
    // The key of the first cancelled get reads its own value too.
    assert!(matches!(
        checked_get(&get, "k0".to_owned(), None).await,
        Outcome::Read
    ));
    proxy.set_fault(Fault::PassThrough);
    assert!(
        cancelled >= CANCEL_GETS / CANCEL_EVERY / 4,
        "only {cancelled} gets were cancelled: the stress did not stress"
    );
    cancelled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_gets_never_return_another_keys_value_through_the_service() {
    let _serial = serial().await;
    let (proxy, backend) = proxied("faults-cancel-service").await;
    let cache = CacheService::builder(backend.clone()).build();
    let items: Vec<(String, String)> = (0..CANCEL_KEYS)
        .map(|i| (format!("k{i}"), format!("k{i}")))
        .collect();
    let refs: Vec<(&str, String)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    cache
        .try_set_many(&refs, Some(Duration::from_secs(120)))
        .await
        .expect("seed the keys");

    let reader = cache.clone();
    let get: Get = Arc::new(move |key: String| {
        let cache = reader.clone();
        Box::pin(async move { cache.try_get::<String>(&key).await })
    });
    let began = Instant::now();
    let cancelled = cancelled_gets_stay_in_step(&proxy, get).await;
    figures(&format!(
        "cancellation through the service: 1 + {CANCEL_GETS} gets via a \
         {CANCEL_LATENCY:?} proxy, {cancelled} cancelled mid-flight, 0 wrong values, in {:?}",
        began.elapsed()
    ));
    backend.clear().await.expect("clear the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_gets_never_return_another_keys_value_through_the_backend() {
    let _serial = serial().await;
    let (proxy, backend) = proxied("faults-cancel-backend").await;
    let items: Vec<(String, Bytes)> = (0..CANCEL_KEYS)
        .map(|i| (format!("k{i}"), Bytes::from(format!("k{i}"))))
        .collect();
    let refs: Vec<(&str, Bytes)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    backend
        .set_many(&refs, Some(Duration::from_secs(120)))
        .await
        .expect("seed the keys");

    let reader = backend.clone();
    let get: Get = Arc::new(move |key: String| {
        let backend = reader.clone();
        Box::pin(async move {
            let got = backend.get(&key).await?;
            Ok(got.map(|v| String::from_utf8_lossy(&v).into_owned()))
        })
    });
    let began = Instant::now();
    let cancelled = cancelled_gets_stay_in_step(&proxy, get).await;
    figures(&format!(
        "cancellation through RedisBackend: 1 + {CANCEL_GETS} gets via a \
         {CANCEL_LATENCY:?} proxy, {cancelled} cancelled mid-flight, 0 wrong values, in {:?}",
        began.elapsed()
    ));
    backend.clear().await.expect("clear the namespace");
}
