//! Memcached under server faults, network faults and cancellation (issue 12).
//!
//! - **A dead server** (SIGKILL) and **a frozen one** (SIGSTOP), one of two private
//!   memcacheds, under 200 concurrent tasks calling `get`, `set` and `get_or_set` through a
//!   [`CacheService`]: only the failed server's keys fail, within a stated bound, and they work
//!   again after the server comes back.
//! - **The service-wide circuit breaker** turns one dead server into an outage of every key:
//!   "only its keys fail" is the behaviour of a service *without* a breaker (the default), where
//!   the backend's per-server down marking is the only breaker.
//! - **Network faults** through [`FaultProxy`]: a blackhole and a slow link time out within the
//!   command timeout and their connections are replaced; resets and replies cut short are typed
//!   errors, never a value.
//! - **Cancellation safety** (the connection desync behind redis-py's CVE-2023-28858 and a
//!   Dalli bug): calls cancelled mid-exchange through a slow proxy never make a later call read
//!   another key's value, on the raw backend and through the service.
//!
//! Each bound is a named constant; each test prints what it measured on one `figures:` line.
//! Real servers and sockets mean real waits: each test takes a few seconds. The tests run one
//! at a time (they hold [`SERIAL`]), so that one test's 200 tasks do not distort another's time
//! bounds or memory reading on a two-core machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use lexicache_core::{Bytes, CacheBackend, ErrorKind};
use lexicache_lock::protection::StampedeLock;
use lexicache_memcached::MemcachedBackend;
use lexicache_service::layers::CircuitBreakerConfig;
use lexicache_service::CacheService;
use lexicache_testkit::process::MemcachedProcess;
use lexicache_testkit::proxy::{Fault, FaultProxy};
use lexicache_testkit::servers;

/// One test at a time: the tests measure latency and the process's memory, which another
/// test's load in the same process would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Entries outlive every test.
const TTL: Option<Duration> = Some(Duration::from_secs(300));

#[allow(clippy::print_stderr)]
fn figures(line: &str) {
    eprintln!("figures: {line}");
}

/// A small deterministic generator (xorshift64): which key, which operation, which timeout.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// This process's resident set size, in KiB.
fn rss_kib() -> u64 {
    lexicache_testkit::process::memory().rss / 1024
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs a blocking process control call (start, kill, restart, stop, cont) without stalling
/// the runtime's other worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ----- the load of the server-fault scenarios ---------------------------------------------

/// Before the fault: every key must work.
const HEALTHY: u8 = 0;
/// The fault is being applied (kill or stop under way): the failing server's keys may go
/// either way.
const CHANGING: u8 = 1;
/// The fault is in force: the failing server's keys must return the default.
const FAULT: u8 = 2;
/// The server is being brought back and has not been seen working: either way.
const RECOVERING: u8 = 3;
/// The server was seen working again: every key must work.
const RECOVERED: u8 = 4;

/// 200 tasks calling `get` / `set` / `get_or_set` on keys spread over two servers, one of
/// which the test makes fail. Values are the key names, so any wrong value is visible.
struct Load {
    cache: CacheService,
    keys: Vec<String>,
    /// Whether each key lives on the server that fails.
    on_failing: Vec<bool>,
    phase: AtomicU8,
    stop: AtomicBool,
    /// The bound on every `get` of a failing-server key.
    get_bound: Duration,
    ops: AtomicU64,
    /// Worst `get` of a failing-server key, in any phase (µs).
    failing_get_worst: AtomicU64,
    /// Worst `set` of a failing-server key (µs).
    failing_set_worst: AtomicU64,
    /// Worst call of any kind on a healthy-server key (µs).
    healthy_worst: AtomicU64,
    /// Calls on failing-server keys during the fault that returned the default (or `false`).
    defaults_during_fault: AtomicU64,
    /// Loader runs for healthy-server keys: they are all hits, so none.
    healthy_loads: AtomicU64,
    violations: Mutex<Vec<String>>,
    violation_count: AtomicU64,
}

impl Load {
    fn new(
        cache: CacheService,
        backend: &MemcachedBackend,
        failing: &str,
        keys: usize,
        get_bound: Duration,
    ) -> Arc<Self> {
        let keys: Vec<String> = (0..keys).map(|i| format!("user:{i}")).collect();
        let on_failing: Vec<bool> = keys
            .iter()
            .map(|k| backend.server_for(k) == failing)
            .collect();
        let failing_count = on_failing.iter().filter(|f| **f).count();
        assert!(
            failing_count > 0 && failing_count < keys.len(),
            "keys must land on both servers ({failing_count} of {} on {failing})",
            keys.len()
        );
        Arc::new(Self {
            cache,
            keys,
            on_failing,
            phase: AtomicU8::new(HEALTHY),
            stop: AtomicBool::new(false),
            get_bound,
            ops: AtomicU64::new(0),
            failing_get_worst: AtomicU64::new(0),
            failing_set_worst: AtomicU64::new(0),
            healthy_worst: AtomicU64::new(0),
            defaults_during_fault: AtomicU64::new(0),
            healthy_loads: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
            violation_count: AtomicU64::new(0),
        })
    }

    fn key_on(&self, failing: bool) -> &str {
        let i = self
            .on_failing
            .iter()
            .position(|f| *f == failing)
            .expect("keys on both servers");
        &self.keys[i]
    }

    async fn populate(&self) {
        for key in &self.keys {
            self.cache
                .try_set(key, key, TTL)
                .await
                .unwrap_or_else(|e| panic!("populating {key}: {e}"));
        }
    }

    fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    fn violation(&self, what: String) {
        self.violation_count.fetch_add(1, Ordering::Relaxed);
        let mut list = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() < 20 {
            list.push(what);
        }
    }

    fn assert_clean(&self) {
        let n = self.violation_count.load(Ordering::SeqCst);
        let list = self.violations.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(n, 0, "{n} violations, the first ones: {list:#?}");
    }

    fn spawn(self: &Arc<Self>, tasks: usize, pace: Duration) -> Vec<tokio::task::JoinHandle<()>> {
        (0..tasks)
            .map(|t| {
                let load = self.clone();
                tokio::spawn(async move { load.run(t as u64 + 1, pace).await })
            })
            .collect()
    }

    async fn run(&self, seed: u64, pace: Duration) {
        let mut rng = Rng::new(seed);
        // Spread the tasks' starts over one pace.
        tokio::time::sleep(pace.mul_f64((seed % 16) as f64 / 16.0)).await;
        while !self.stop.load(Ordering::SeqCst) {
            let i = rng.below(self.keys.len());
            let op = rng.below(3);
            self.call(i, op).await;
            self.ops.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pace).await;
        }
    }

    /// One call, judged by the phase it started and ended in: strictly only when both agree.
    async fn call(&self, i: usize, op: usize) {
        let key = &self.keys[i];
        let failing = self.on_failing[i];
        let before = self.phase.load(Ordering::SeqCst);
        let started = Instant::now();
        // `Ok(found)`: the call worked (`found`: it returned the value); `Err(why)`: it
        // returned the default or an error.
        let outcome: Result<bool, String> = match op {
            0 if failing => {
                // What applications call: the default on failure.
                Ok(self.check_value(key, self.cache.get::<String>(key).await))
            }
            0 => self
                .cache
                .try_get::<String>(key)
                .await
                .map(|v| self.check_value(key, v))
                .map_err(|e| e.to_string()),
            1 => self
                .cache
                .try_set(key, key, TTL)
                .await
                .map(|()| true)
                .map_err(|e| e.to_string()),
            _ => {
                let loaded = self
                    .cache
                    .get_or_set(key, TTL, || async {
                        if !failing {
                            self.healthy_loads.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok::<_, std::io::Error>(key.clone())
                    })
                    .await;
                match loaded {
                    Ok(v) if v == *key => Ok(true),
                    Ok(v) => {
                        self.violation(format!("get_or_set({key}) returned {v:?}"));
                        Ok(true)
                    }
                    // get_or_set degrades to the loader: it must not fail even on a dead server.
                    Err(e) => {
                        self.violation(format!("get_or_set({key}) failed: {e}"));
                        Err(e.to_string())
                    }
                }
            }
        };
        let took = started.elapsed();
        let after = self.phase.load(Ordering::SeqCst);
        let phase = if before == after { before } else { CHANGING };

        if !failing {
            self.healthy_worst
                .fetch_max(micros(took), Ordering::Relaxed);
            match (op, &outcome) {
                (_, Err(e)) => self.violation(format!("healthy key {key}, op {op}: {e}")),
                (0, Ok(false)) => self.violation(format!("healthy key {key}: a miss")),
                _ => {}
            }
            return;
        }
        match op {
            0 => {
                self.failing_get_worst
                    .fetch_max(micros(took), Ordering::Relaxed);
                if took > self.get_bound {
                    self.violation(format!(
                        "get({key}) of the failing server took {took:?} (bound {:?})",
                        self.get_bound
                    ));
                }
            }
            1 => {
                self.failing_set_worst
                    .fetch_max(micros(took), Ordering::Relaxed);
            }
            _ => {}
        }
        match phase {
            FAULT => match (op, &outcome) {
                (0, Ok(true)) => self.violation(format!("get({key}) hit a failed server")),
                (1, Ok(_)) => self.violation(format!("set({key}) worked on a failed server")),
                (0 | 1, _) => {
                    self.defaults_during_fault.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            },
            HEALTHY | RECOVERED => {
                if let Err(e) = &outcome {
                    self.violation(format!(
                        "failing-server key {key}, op {op}, phase {phase}: {e}"
                    ));
                }
                // Before the fault every key is stored; after a restart the server is empty.
                if (op, phase, &outcome) == (0, HEALTHY, &Ok(false)) {
                    self.violation(format!("get({key}) missed before the fault"));
                }
            }
            _ => {}
        }
    }

    /// `true` for a hit, `false` for a miss; a wrong value is a violation.
    fn check_value(&self, key: &str, value: Option<String>) -> bool {
        match value {
            Some(v) if v == key => true,
            Some(v) => {
                self.violation(format!("get({key}) returned another value: {v:?}"));
                true
            }
            None => false,
        }
    }

    /// Polls a failing-server key until a call works; how long that took.
    async fn until_working(&self, bound: Duration) -> Duration {
        let key = self.key_on(true).to_owned();
        let started = Instant::now();
        loop {
            if self.cache.try_get::<String>(&key).await.is_ok()
                && self.cache.try_set(&key, &key, TTL).await.is_ok()
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() <= bound,
                "the failing server's keys did not work again within {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn finish(&self, tasks: Vec<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("a load task panicked");
        }
    }

    fn worst(counter: &AtomicU64) -> Duration {
        Duration::from_micros(counter.load(Ordering::SeqCst))
    }
}

/// Concurrent tasks of the server-fault scenarios.
const TASKS: usize = 200;
/// Each task's pause between calls; keeps 200 tasks from saturating the machine's 2 cores.
const PACE: Duration = Duration::from_millis(10);
/// Keys, spread over both servers by the ring.
const KEYS: usize = 64;
/// Load before the fault, so pools are warm and steady.
const WARMUP: Duration = Duration::from_millis(500);
/// Load after recovery, during which every key must work.
const AFTER_RECOVERY: Duration = Duration::from_secs(1);

// ----- 1. one of two servers killed ----------------------------------------------------------

mod killed {
    use super::*;

    /// The backend's command timeout: ample for the live server's calls on two loaded cores.
    pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
    pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
    /// The backoff of a down server: 100 ms, doubling to at most 500 ms.
    pub(super) const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
    pub(super) const BACKOFF_MAX: Duration = Duration::from_millis(500);
    /// How long the server stays dead.
    pub(super) const OUTAGE: Duration = Duration::from_secs(3);
    /// Every `get` of the dead server's keys returns the default within the command timeout
    /// plus 50 ms (the bound; it fails fast once marked down).
    pub(super) const GET_BOUND: Duration =
        COMMAND_TIMEOUT.saturating_add(Duration::from_millis(50));
    /// After `restart()`, its keys work again within the longest backoff plus 1 s.
    pub(super) const RECOVERY_BOUND: Duration = BACKOFF_MAX.saturating_add(Duration::from_secs(1));

    pub(super) fn backend(servers: [String; 2], label: &str) -> MemcachedBackend {
        MemcachedBackend::builder()
            .servers(servers)
            .prefix(servers::unique_namespace(label))
            .command_timeout(COMMAND_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .backoff(BACKOFF_INITIAL, BACKOFF_MAX)
            .build()
            .expect("a valid configuration")
    }
}

/// One of two servers SIGKILLed for 3 s under 200 tasks: nothing panics, the live server's keys
/// keep hitting with no error, the dead server's `get`s return the default within
/// [`killed::GET_BOUND`], and after the restart its keys work within [`killed::RECOVERY_BOUND`].
///
/// This holds for a service **without** a circuit breaker (the default): the backend marks the
/// dead server down on its own and fails its keys fast, which is a per-server breaker. A
/// service-wide [`CircuitBreakerConfig`] would fail every key instead: see
/// `a_service_wide_circuit_breaker_fails_every_key_when_one_of_two_servers_dies`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_servers_killed_fails_only_its_keys_which_work_again_after_restart() {
    let _serial = SERIAL.lock().await;
    let live = blocking(MemcachedProcess::start);
    let mut dead = blocking(MemcachedProcess::start);
    let backend = killed::backend([live.addr(), dead.addr()], "faults-mc-kill");
    let cache = CacheService::builder(backend.clone()).build();
    let load = Load::new(cache, &backend, &dead.addr(), KEYS, killed::GET_BOUND);
    load.populate().await;
    let tasks = load.spawn(TASKS, PACE);
    tokio::time::sleep(WARMUP).await;

    load.set_phase(CHANGING);
    blocking(|| dead.kill());
    load.set_phase(FAULT);
    tokio::time::sleep(killed::OUTAGE).await;

    load.set_phase(RECOVERING);
    blocking(|| dead.restart());
    let recovered_in = load.until_working(killed::RECOVERY_BOUND).await;
    load.set_phase(RECOVERED);
    tokio::time::sleep(AFTER_RECOVERY).await;
    load.finish(tasks).await;
    load.assert_clean();

    let defaults = load.defaults_during_fault.load(Ordering::SeqCst);
    assert!(defaults > 100, "only {defaults} calls met the dead server");
    assert_eq!(load.healthy_loads.load(Ordering::SeqCst), 0);
    // Loads of the dead server's keys took locks (some on the live server) and gave them back.
    let locks_left = no_load_locks_left(&backend, &load.keys).await;
    assert!(
        locks_left.is_empty(),
        "load locks left behind: {locks_left:?}"
    );
    figures(&format!(
        "memcached kill 3s, 200 tasks: {} calls, {defaults} defaults from the dead server; \
         worst dead-server get {:.1} ms (bound {:.0} ms), worst dead-server set {:.1} ms, \
         worst live-server call {:.1} ms, live-server errors 0; recovered {:.0} ms after \
         restart (bound {:.0} ms)",
        load.ops.load(Ordering::SeqCst),
        ms(Load::worst(&load.failing_get_worst)),
        ms(killed::GET_BOUND),
        ms(Load::worst(&load.failing_set_worst)),
        ms(Load::worst(&load.healthy_worst)),
        ms(recovered_in),
        ms(killed::RECOVERY_BOUND),
    ));
}

/// The resources whose load lock is still held after the releases had a moment to finish.
async fn no_load_locks_left(backend: &MemcachedBackend, keys: &[String]) -> Vec<String> {
    let locks = backend.lock_store().expect("memcached has a lock store");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut left = Vec::new();
        for key in keys {
            let resource = StampedeLock::resource(key);
            if locks
                .is_locked(&resource)
                .await
                .unwrap_or_else(|e| panic!("is_locked({resource}): {e}"))
            {
                left.push(resource);
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service's circuit breaker is one per service, not per server: when one of two servers
/// dies, its keys' failures open the circuit and the live server's keys fail fast too
/// (`CircuitOpen`, and `get` returns the default for a stored value) until it closes. The
/// backend itself still serves them. So "only its keys fail" needs a service without a
/// breaker; the backend's per-server down marking already fails the dead server's keys fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_wide_circuit_breaker_fails_every_key_when_one_of_two_servers_dies() {
    /// Failures within the window that open the circuit.
    const THRESHOLD: u32 = 5;
    let _serial = SERIAL.lock().await;
    let live = blocking(MemcachedProcess::start);
    let mut dead = blocking(MemcachedProcess::start);
    let backend = killed::backend([live.addr(), dead.addr()], "faults-mc-breaker");
    let cache = CacheService::builder(backend.clone())
        .circuit_breaker(
            CircuitBreakerConfig::new()
                .failure_threshold(THRESHOLD)
                .window(Duration::from_secs(10))
                .open_duration(Duration::from_secs(30)),
        )
        .build();
    let load = Load::new(
        cache.clone(),
        &backend,
        &dead.addr(),
        KEYS,
        killed::GET_BOUND,
    );
    load.populate().await;
    let (live_key, dead_key) = (load.key_on(false), load.key_on(true));
    assert_eq!(
        cache.try_get::<String>(dead_key).await.unwrap().as_deref(),
        Some(dead_key)
    );

    blocking(|| dead.kill());
    let mut kinds = Vec::new();
    for _ in 0..THRESHOLD * 2 {
        let err = cache.try_get::<String>(dead_key).await.unwrap_err();
        kinds.push(err.kind());
        if err.kind() == ErrorKind::CircuitOpen {
            break;
        }
    }
    assert_eq!(kinds.last(), Some(&ErrorKind::CircuitOpen), "{kinds:?}");
    assert!(kinds[..kinds.len() - 1]
        .iter()
        .all(|k| *k == ErrorKind::Connection));

    // The live server's key now fails too, although its server answers.
    let err = cache.try_get::<String>(live_key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
    assert_eq!(cache.get::<String>(live_key).await, None);
    assert!(!cache.set(live_key, &live_key.to_owned(), TTL).await);
    // The backend, under the breaker, still serves it.
    assert!(backend.get(live_key).await.unwrap().is_some());
    figures(&format!(
        "memcached breaker: one of two servers dead opened the service-wide circuit after \
         {} failures; live-server keys then failed with CircuitOpen",
        kinds.len() - 1
    ));
}

// ----- 2. one of two servers frozen ----------------------------------------------------------

mod frozen {
    use super::*;

    /// The backend's command timeout: ample for the live server's calls on two loaded cores.
    pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
    pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
    /// How long the server stays frozen.
    pub(super) const FREEZE: Duration = Duration::from_secs(5);
    /// A frozen server still completes TCP handshakes (the kernel does, while its listen
    /// backlog has room), so it is not marked down: each call waits. The backend bounds a
    /// caller's wait for a pooled connection and its exchange by the command timeout each (one
    /// shared deadline would churn connections and slow recovery: see `exchange!` in the
    /// memcached backend), and a connect by the connect timeout, so a call on a frozen
    /// server's key returns within their sum (plus 100 ms of scheduling slack on two loaded
    /// cores). Wrap the service in `.timeout(..)` for a single bound.
    pub(super) const GET_BOUND: Duration = COMMAND_TIMEOUT
        .saturating_add(CONNECT_TIMEOUT)
        .saturating_add(COMMAND_TIMEOUT)
        .saturating_add(Duration::from_millis(100));
    /// After `cont()`, its keys work again within this.
    pub(super) const RECOVERY_BOUND: Duration = GET_BOUND.saturating_add(Duration::from_secs(1));
    /// The test process's resident memory may grow at most this much during the freeze (KiB):
    /// timed-out connections are dropped, nothing queues without bound.
    pub(super) const RSS_GROWTH_CAP_KIB: u64 = 16 * 1024;
}

/// One of two servers SIGSTOPped for 5 s under 200 tasks: its keys fail within
/// [`frozen::GET_BOUND`], the other server's keys keep hitting, the process's memory grows by
/// less than [`frozen::RSS_GROWTH_CAP_KIB`], and everything works again after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_servers_frozen_fails_only_its_keys_in_bounded_time_and_memory() {
    let _serial = SERIAL.lock().await;
    let live = blocking(MemcachedProcess::start);
    let frozen = blocking(MemcachedProcess::start);
    let backend = MemcachedBackend::builder()
        .servers([live.addr(), frozen.addr()])
        .prefix(servers::unique_namespace("faults-mc-stop"))
        .command_timeout(frozen::COMMAND_TIMEOUT)
        .connect_timeout(frozen::CONNECT_TIMEOUT)
        .build()
        .expect("a valid configuration");
    let cache = CacheService::builder(backend.clone()).build();
    let load = Load::new(cache, &backend, &frozen.addr(), KEYS, frozen::GET_BOUND);
    load.populate().await;
    let tasks = load.spawn(TASKS, PACE);
    tokio::time::sleep(WARMUP).await;
    let rss_before = rss_kib();

    load.set_phase(CHANGING);
    blocking(|| frozen.stop());
    load.set_phase(FAULT);
    let mut rss_peak = rss_before;
    let frozen_at = Instant::now();
    while frozen_at.elapsed() < frozen::FREEZE {
        rss_peak = rss_peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    load.set_phase(RECOVERING);
    blocking(|| frozen.cont());
    let recovered_in = load.until_working(frozen::RECOVERY_BOUND).await;
    load.set_phase(RECOVERED);
    tokio::time::sleep(AFTER_RECOVERY).await;
    rss_peak = rss_peak.max(rss_kib());
    load.finish(tasks).await;
    load.assert_clean();

    let defaults = load.defaults_during_fault.load(Ordering::SeqCst);
    assert!(
        defaults > 100,
        "only {defaults} calls met the frozen server"
    );
    assert_eq!(load.healthy_loads.load(Ordering::SeqCst), 0);
    let growth = rss_peak.saturating_sub(rss_before);
    assert!(
        growth < frozen::RSS_GROWTH_CAP_KIB,
        "RSS grew by {growth} KiB during the freeze (cap {} KiB)",
        frozen::RSS_GROWTH_CAP_KIB
    );
    // The values survived the freeze: every key hits again.
    for key in &load.keys {
        assert_eq!(
            load.cache.try_get::<String>(key).await.unwrap().as_deref(),
            Some(key.as_str())
        );
    }
    figures(&format!(
        "memcached SIGSTOP 5s, 200 tasks: {} calls, {defaults} defaults from the frozen \
         server; worst frozen-server get {:.1} ms (bound {:.0} ms), worst frozen-server set \
         {:.1} ms, worst live-server call {:.1} ms, live-server errors 0; RSS {} -> peak {} KiB \
         (+{growth} KiB, cap {} KiB); recovered {:.0} ms after SIGCONT (bound {:.0} ms)",
        load.ops.load(Ordering::SeqCst),
        ms(Load::worst(&load.failing_get_worst)),
        ms(frozen::GET_BOUND),
        ms(Load::worst(&load.failing_set_worst)),
        ms(Load::worst(&load.healthy_worst)),
        rss_before,
        rss_peak,
        frozen::RSS_GROWTH_CAP_KIB,
        ms(recovered_in),
        ms(frozen::RECOVERY_BOUND),
    ));
}

// ----- 3. blackhole, slow link, reset, cut replies -----------------------------------------

/// The command timeout of the proxied backends.
const PROXIED_TIMEOUT: Duration = Duration::from_millis(200);
/// Scheduling slack on top of the command timeout: generous for two busy cores, small next to
/// a hang.
const PROXIED_SLACK: Duration = Duration::from_millis(150);
/// A timed-out call returns within this.
const PROXIED_BOUND: Duration = PROXIED_TIMEOUT.saturating_add(PROXIED_SLACK);
/// Connections per server of the proxied backends.
const PROXIED_POOL: usize = 4;
/// The backoff of the proxied backends: a reset during connect marks the server down (as any
/// failed connect does), for this long.
const PROXIED_BACKOFF: Duration = Duration::from_millis(100);
/// Once a fault is lifted, calls work again within the backoff plus [`PROXIED_BOUND`].
const PROXIED_RECOVERY: Duration = PROXIED_BACKOFF.saturating_add(PROXIED_BOUND);

/// A proxy in front of the first shared memcached, and a one-server backend through it.
async fn proxied(label: &str, pool: usize, timeout: Duration) -> (FaultProxy, MemcachedBackend) {
    let upstream = servers::memcached_servers()[0].clone();
    let proxy = FaultProxy::start(upstream.as_str())
        .await
        .expect("a fault proxy");
    let backend = MemcachedBackend::builder()
        .server(proxy.addr().to_string())
        .prefix(servers::unique_namespace(label))
        .pool_size(pool)
        .command_timeout(timeout)
        .connect_timeout(timeout)
        .backoff(PROXIED_BACKOFF, PROXIED_BACKOFF)
        .build()
        .expect("a valid configuration");
    (proxy, backend)
}

fn name_value(key: &str) -> Bytes {
    Bytes::copy_from_slice(key.as_bytes())
}

/// Runs `call` and checks it failed with `kind` within [`PROXIED_BOUND`]; returns how long it
/// took.
async fn fails_in_time<T: std::fmt::Debug>(
    what: &str,
    kind: ErrorKind,
    call: impl std::future::Future<Output = lexicache_core::Result<T>>,
) -> Duration {
    let started = Instant::now();
    let outcome = call.await;
    let took = started.elapsed();
    match outcome {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        Ok(v) => panic!("{what} succeeded through the fault: {v:?}"),
    }
    assert!(
        took <= PROXIED_BOUND,
        "{what} took {took:?} (bound {PROXIED_BOUND:?})"
    );
    took
}

/// A blackhole (connections accepted, nothing ever answered): calls on pooled and on new
/// connections fail with `Timeout` within the command timeout plus [`PROXIED_SLACK`]; the dead
/// connections are dropped, so once the blackhole lifts the next call opens a new connection
/// and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_times_out_within_the_command_timeout_and_its_connections_are_replaced() {
    let _serial = SERIAL.lock().await;
    let (proxy, backend) = proxied("faults-mc-blackhole", PROXIED_POOL, PROXIED_TIMEOUT).await;
    let keys: Vec<String> = (0..PROXIED_POOL).map(|i| format!("bh:{i}")).collect();
    for key in &keys {
        backend.set(key, name_value(key), TTL).await.unwrap();
    }
    // Fill the pool: as many concurrent calls as connections.
    let warm = futures::future::join_all(keys.iter().map(|k| backend.get(k))).await;
    assert!(warm.iter().all(|r| matches!(r, Ok(Some(_)))), "{warm:?}");
    let pooled = proxy.connections_accepted();

    proxy.set_fault(Fault::Blackhole);
    // Every pooled connection is taken by one of these and times out.
    let started = Instant::now();
    let pooled_calls = futures::future::join_all(keys.iter().map(|k| backend.get(k))).await;
    let pooled_took = started.elapsed();
    for r in &pooled_calls {
        assert!(
            matches!(r, Err(e) if e.kind() == ErrorKind::Timeout),
            "{r:?}"
        );
    }
    assert!(pooled_took <= PROXIED_BOUND, "took {pooled_took:?}");
    // New connections are accepted and swallowed the same way.
    let mut worst = pooled_took;
    worst = worst.max(fails_in_time("get", ErrorKind::Timeout, backend.get(&keys[0])).await);
    worst = worst.max(
        fails_in_time(
            "set",
            ErrorKind::Timeout,
            backend.set(&keys[1], name_value(&keys[1]), TTL),
        )
        .await,
    );
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    worst = worst.max(fails_in_time("get_many", ErrorKind::Timeout, backend.get_many(&refs)).await);
    let service = CacheService::builder(backend.clone()).build();
    let started = Instant::now();
    assert_eq!(service.get::<String>(&keys[2]).await, None);
    worst = worst.max(started.elapsed());
    assert!(worst <= PROXIED_BOUND, "took {worst:?}");
    let during = proxy.connections_accepted();
    assert!(
        during > pooled,
        "calls in the blackhole opened no new connection"
    );

    proxy.set_fault(Fault::PassThrough);
    let started = Instant::now();
    for key in &keys {
        assert_eq!(backend.get(key).await.unwrap(), Some(name_value(key)));
    }
    assert_eq!(backend.get_many(&refs).await.unwrap().len(), keys.len());
    let recovered = started.elapsed();
    assert!(
        proxy.connections_accepted() > during,
        "no connection was replaced after the blackhole"
    );
    // The swallowed connections were closed by the client, not kept.
    let open = wait_for_open_at_most(&proxy, PROXIED_POOL).await;
    figures(&format!(
        "memcached blackhole: worst timed-out call {:.1} ms (timeout {:.0} ms, bound {:.0} ms); \
         connections accepted {pooled} before, {during} during, {} after; first {} calls after \
         the blackhole all worked in {:.1} ms; {open} connections open afterwards",
        ms(worst),
        ms(PROXIED_TIMEOUT),
        ms(PROXIED_BOUND),
        proxy.connections_accepted(),
        keys.len() + 1,
        ms(recovered),
    ));
}

/// After a fault is lifted: polls `key` until it reads `value`, within [`PROXIED_RECOVERY`];
/// how long that took. Every failure meanwhile must be a typed error, never another value.
async fn works_again(backend: &MemcachedBackend, key: &str, value: &Bytes) -> Duration {
    let started = Instant::now();
    loop {
        match backend.get(key).await {
            Ok(Some(v)) if v == *value => return started.elapsed(),
            Ok(other) => panic!("get({key}) after a fault returned {other:?}"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                "{e}"
            ),
        }
        assert!(
            started.elapsed() <= PROXIED_RECOVERY,
            "{key} did not work again within {PROXIED_RECOVERY:?} of the fault being lifted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (at most 2 s) until the proxy holds at most `n` open connections; returns the count.
async fn wait_for_open_at_most(proxy: &FaultProxy, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let open = proxy.open_connections();
        if open <= n {
            return open;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections still open through the proxy (pool {n})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A link slower than the command timeout gives `Timeout` errors within the bound; a link
/// slower than usual but within the timeout gives correct values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_above_the_command_timeout_times_out_and_below_it_succeeds() {
    /// Reply delay above the command timeout.
    const SLOW: Duration = PROXIED_TIMEOUT.saturating_add(Duration::from_millis(100));
    /// Reply delay well within the command timeout.
    const SLUGGISH: Duration = Duration::from_millis(50);
    let _serial = SERIAL.lock().await;
    let (proxy, backend) = proxied("faults-mc-latency", PROXIED_POOL, PROXIED_TIMEOUT).await;
    let keys: Vec<String> = (0..8).map(|i| format!("slow:{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    for key in &keys {
        backend.set(key, name_value(key), TTL).await.unwrap();
    }

    proxy.set_fault(Fault::Latency(SLOW));
    let mut worst_timeout = Duration::ZERO;
    for key in &keys[..3] {
        worst_timeout =
            worst_timeout.max(fails_in_time("get", ErrorKind::Timeout, backend.get(key)).await);
    }
    worst_timeout = worst_timeout.max(
        fails_in_time(
            "set",
            ErrorKind::Timeout,
            backend.set(&keys[0], name_value(&keys[0]), TTL),
        )
        .await,
    );
    worst_timeout = worst_timeout
        .max(fails_in_time("get_many", ErrorKind::Timeout, backend.get_many(&refs)).await);

    proxy.set_fault(Fault::Latency(SLUGGISH));
    let mut worst_ok = Duration::ZERO;
    for key in &keys {
        let started = Instant::now();
        assert_eq!(backend.get(key).await.unwrap(), Some(name_value(key)));
        worst_ok = worst_ok.max(started.elapsed());
    }
    let many = backend.get_many(&refs).await.unwrap();
    assert_eq!(
        many,
        keys.iter().map(|k| Some(name_value(k))).collect::<Vec<_>>()
    );
    // Every reply came through the slow link.
    assert!(worst_ok >= SLUGGISH, "took {worst_ok:?}");
    proxy.set_fault(Fault::PassThrough);
    figures(&format!(
        "memcached latency: {:.0} ms replies (timeout {:.0} ms) -> Timeout in at most {:.1} ms \
         (bound {:.0} ms); {:.0} ms replies -> correct values, worst get {:.1} ms",
        ms(SLOW),
        ms(PROXIED_TIMEOUT),
        ms(worst_timeout),
        ms(PROXIED_BOUND),
        ms(SLUGGISH),
        ms(worst_ok),
    ));
}

/// Resets and replies cut short at many points give typed errors (`Connection`, or `Backend`
/// for an unparsable fragment), never a value, let alone another one; after each, the next
/// calls work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_replies_cut_short_are_typed_errors_never_a_wrong_value() {
    /// Bytes of the reply let through before the proxy closes: all less than any reply here.
    const CUTS: [usize; 8] = [0, 1, 5, 6, 20, 100, 1_000, 3_000];
    let _serial = SERIAL.lock().await;
    let (proxy, backend) = proxied("faults-mc-cut", PROXIED_POOL, PROXIED_TIMEOUT).await;
    let keys: Vec<String> = (0..4).map(|i| format!("cut:{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Long values, so replies can be cut in their middle.
    let value = |key: &str| Bytes::from(format!("{key}:{}", "v".repeat(4_000)));
    let store = || async {
        for key in &keys {
            backend.set(key, value(key), TTL).await.unwrap();
        }
    };
    let typed = |what: &str, kind: ErrorKind| {
        assert!(
            matches!(kind, ErrorKind::Connection | ErrorKind::Backend),
            "{what}: {kind:?}"
        );
    };
    store().await;
    let mut kinds: HashMap<String, usize> = HashMap::new();

    // Reset: open and new connections.
    proxy.set_fault(Fault::Reset);
    for key in &keys {
        let err = backend.get(key).await.expect_err("a get through a reset");
        typed("get", err.kind());
        *kinds.entry(format!("reset:{:?}", err.kind())).or_default() += 1;
    }
    let err = backend
        .set(&keys[0], value(&keys[0]), TTL)
        .await
        .unwrap_err();
    typed("set", err.kind());
    let err = backend.get_many(&refs).await.unwrap_err();
    typed("get_many", err.kind());
    proxy.set_fault(Fault::PassThrough);
    let mut worst_recovery = works_again(&backend, &keys[0], &value(&keys[0])).await;
    for key in &keys {
        assert_eq!(backend.get(key).await.unwrap(), Some(value(key)));
    }

    // Replies cut at every point in `CUTS`: gets, batches and sets.
    for cut in CUTS {
        proxy.set_fault(Fault::CloseAfter(cut));
        for (i, key) in keys.iter().enumerate() {
            match backend.get(key).await {
                Err(e) => {
                    typed("get", e.kind());
                    *kinds.entry(format!("cut:{:?}", e.kind())).or_default() += 1;
                }
                Ok(v) => panic!("get({key}) through a reply cut at {cut} bytes: {v:?}"),
            }
            let many = [key.as_str(), refs[(i + 1) % refs.len()]];
            match backend.get_many(&many).await {
                Err(e) => typed("get_many", e.kind()),
                Ok(v) => panic!("get_many through a reply cut at {cut} bytes: {v:?}"),
            }
        }
        // A set's reply (`STORED`) is 8 bytes; cuts within it fail, longer ones may not.
        if cut < 8 {
            match backend.set(&keys[0], value(&keys[0]), TTL).await {
                Err(e) => typed("set", e.kind()),
                Ok(()) => panic!("set through a reply cut at {cut} bytes succeeded"),
            }
        }
        proxy.set_fault(Fault::PassThrough);
        worst_recovery =
            worst_recovery.max(works_again(&backend, &keys[0], &value(&keys[0])).await);
        for key in &keys {
            assert_eq!(
                backend.get(key).await.unwrap(),
                Some(value(key)),
                "after a cut at {cut}"
            );
        }
        assert_eq!(
            backend.get_many(&refs).await.unwrap(),
            keys.iter().map(|k| Some(value(k))).collect::<Vec<_>>()
        );
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    figures(&format!(
        "memcached reset/cut replies: error kinds {kinds:?}; no value returned through a \
         fault; calls worked again at most {:.1} ms after it was lifted (bound {:.0} ms)",
        ms(worst_recovery),
        ms(PROXIED_RECOVERY),
    ));
}

// ----- 4. cancellation safety ------------------------------------------------------------------

/// The proxy's reply delay in the cancellation tests: longer than the 1 ms timeouts, so they
/// cancel calls mid-exchange.
const CANCEL_LATENCY: Duration = Duration::from_millis(3);
/// Gets of other keys after the cancelled one.
const GETS_AFTER: usize = 10_000;
/// Concurrent callers for those gets (and the pool size), so the test stays a few seconds.
const CANCEL_WORKERS: usize = 16;

/// A `get` of key A cancelled by a 1 ms timeout through a slow proxy drops its connection (the
/// next call opens a new one, as `MemcachedBackend` documents), and none of the 10,000 gets of
/// other keys that follow returns A's value or any other key's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_cancelled_by_a_1ms_timeout_drops_its_connection_and_no_later_get_sees_its_value() {
    let _serial = SERIAL.lock().await;
    let (proxy, backend) = proxied(
        "faults-mc-cancel-one",
        CANCEL_WORKERS,
        Duration::from_secs(2),
    )
    .await;
    let keys: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    let values: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), name_value(k))).collect();
    backend.set_many(&values, TTL).await.unwrap();
    let a = "key:A";
    backend.set(a, name_value(a), TTL).await.unwrap();
    proxy.set_fault(Fault::Latency(CANCEL_LATENCY));
    // One pooled connection, used by the get that will be cancelled.
    assert_eq!(
        backend.get(&keys[0]).await.unwrap(),
        Some(name_value(&keys[0]))
    );
    assert_eq!(proxy.connections_accepted(), 1);

    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 20, "a 1 ms timeout never cancelled a 3 ms get");
        let before = proxy.connections_accepted();
        match tokio::time::timeout(Duration::from_millis(1), backend.get(a)).await {
            Err(_) => {
                // The next get may not reuse the cancelled connection.
                assert_eq!(
                    backend.get(&keys[1]).await.unwrap(),
                    Some(name_value(&keys[1]))
                );
                assert_eq!(
                    proxy.connections_accepted(),
                    before + 1,
                    "the cancelled get's connection was reused"
                );
                break;
            }
            // The reply beat the timer (a busy machine): keep the connection, try again.
            Ok(got) => assert_eq!(got.unwrap(), Some(name_value(a))),
        }
    }

    let started = Instant::now();
    let wrong = Arc::new(AtomicU64::new(0));
    let workers = (0..CANCEL_WORKERS).map(|w| {
        let (backend, keys, wrong) = (backend.clone(), keys.clone(), wrong.clone());
        tokio::spawn(async move {
            for n in (w..GETS_AFTER).step_by(CANCEL_WORKERS) {
                let key = &keys[n % keys.len()];
                let got = backend
                    .get(key)
                    .await
                    .expect("a get through the slow proxy");
                if got != Some(name_value(key)) {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.expect("a worker panicked");
    }
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "gets returned another key's value"
    );
    figures(&format!(
        "memcached cancel: a get cancelled by a 1 ms timeout ({attempts} attempt(s)) through a \
         {:.0} ms proxy replaced its connection; {GETS_AFTER} later gets: 0 wrong values, {:.1} s",
        ms(CANCEL_LATENCY),
        started.elapsed().as_secs_f64(),
    ));
}

/// Calls made on the backend or the service by the random cancellation test.
#[derive(Clone)]
enum Target {
    Raw(MemcachedBackend),
    Service(CacheService),
}

impl Target {
    async fn get(&self, key: &str) -> Option<String> {
        match self {
            Target::Raw(b) => b
                .get(key)
                .await
                .unwrap_or_else(|e| panic!("get({key}): {e}"))
                .map(|v| String::from_utf8(v.to_vec()).expect("utf-8")),
            Target::Service(s) => s
                .try_get::<String>(key)
                .await
                .unwrap_or_else(|e| panic!("get({key}): {e}")),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Vec<Option<String>> {
        match self {
            Target::Raw(b) => b
                .get_many(keys)
                .await
                .unwrap_or_else(|e| panic!("get_many: {e}"))
                .into_iter()
                .map(|v| v.map(|v| String::from_utf8(v.to_vec()).expect("utf-8")))
                .collect(),
            Target::Service(s) => s
                .try_get_many::<String>(keys)
                .await
                .unwrap_or_else(|e| panic!("get_many: {e}")),
        }
    }

    async fn set(&self, key: &str) {
        match self {
            Target::Raw(b) => b.set(key, name_value(key), TTL).await,
            Target::Service(s) => s.try_set(key, &key.to_owned(), TTL).await,
        }
        .unwrap_or_else(|e| panic!("set({key}): {e}"));
    }
}

/// Cancelled `get`, `get_many` and `set` calls, at random short timeouts and interleaved from
/// many tasks through a slow proxy, on the raw backend and through the service: every call that
/// completes returns its own keys' values (each value is its key's name), and the connections
/// the cancellations dropped are closed, not leaked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cancellations_of_get_get_many_and_set_never_return_another_keys_value() {
    /// Calls per worker, per target.
    const CALLS: usize = 300;
    /// Connections per server: fewer than workers, so calls also wait for (and are cancelled
    /// waiting for) a connection.
    const POOL: usize = 8;
    /// Random timeouts run from zero (cancelled at the first poll) to this many times the
    /// measured round trip, so that some calls are cut off before their request is sent, some
    /// mid-exchange, and some complete.
    const TIMEOUT_SPREAD: u32 = 4;
    let _serial = SERIAL.lock().await;
    let (proxy, backend) = proxied("faults-mc-cancel-many", POOL, Duration::from_secs(2)).await;
    let service = CacheService::builder(backend.clone()).build();
    let mut report = Vec::new();
    for (label, target) in [
        ("raw", Target::Raw(backend.clone())),
        ("service", Target::Service(service)),
    ] {
        // Written through the target itself: the service stores enveloped values.
        proxy.set_fault(Fault::PassThrough);
        let keys: Vec<String> = (0..200).map(|i| format!("{label}:{i}")).collect();
        for key in &keys {
            target.set(key).await;
        }
        proxy.set_fault(Fault::Latency(CANCEL_LATENCY));
        // The median round trip of a get through the slow proxy, on this machine and build.
        let mut trips: Vec<Duration> = Vec::new();
        for key in &keys[..21] {
            let started = Instant::now();
            assert_eq!(target.get(key).await.as_deref(), Some(key.as_str()));
            trips.push(started.elapsed());
        }
        trips.sort();
        let round_trip = trips[trips.len() / 2];
        let max_timeout_us = micros(round_trip * TIMEOUT_SPREAD);
        let started = Instant::now();
        let accepted_before = proxy.connections_accepted();
        let cancelled = Arc::new(AtomicU64::new(0));
        let completed = Arc::new(AtomicU64::new(0));
        let workers = (0..CANCEL_WORKERS).map(|w| {
            let (target, keys) = (target.clone(), keys.clone());
            let (cancelled, completed) = (cancelled.clone(), completed.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(w as u64 * 7919 + 17);
                for _ in 0..CALLS {
                    let k = &keys[rng.below(keys.len())];
                    let other = &keys[rng.below(keys.len())];
                    let timeout = Duration::from_micros(rng.next() % (max_timeout_us + 1));
                    let op = rng.below(3);
                    let many = [k.as_str(), other.as_str()];
                    let call = async {
                        match op {
                            0 => {
                                let got = target.get(k).await;
                                assert_eq!(got.as_deref(), Some(k.as_str()), "get({k})");
                            }
                            1 => {
                                let got = target.get_many(&many).await;
                                assert_eq!(
                                    got,
                                    vec![Some(k.clone()), Some(other.clone())],
                                    "get_many({many:?})"
                                );
                            }
                            _ => target.set(k).await,
                        }
                    };
                    // One call in eight is polled once and dropped; the others get a timeout.
                    let finished = if rng.below(8) == 0 {
                        call.now_or_never().is_some()
                    } else {
                        tokio::time::timeout(timeout, call).await.is_ok()
                    };
                    if finished {
                        completed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        cancelled.fetch_add(1, Ordering::Relaxed);
                        // Right after a cancellation, an uncancelled read of another key.
                        assert_eq!(
                            target.get(other).await.as_deref(),
                            Some(other.as_str()),
                            "after a cancelled call"
                        );
                    }
                }
            })
        });
        for worker in futures::future::join_all(workers).await {
            worker.expect("a worker saw another key's value or an error");
        }
        let cancelled = cancelled.load(Ordering::SeqCst);
        let completed = completed.load(Ordering::SeqCst);
        let total = (CANCEL_WORKERS * CALLS) as u64;
        assert!(
            cancelled >= total / 10 && completed >= total / 10,
            "{label}: {cancelled} cancelled and {completed} completed of {total}: the timeouts \
             no longer straddle the round trip"
        );
        let opened = proxy.connections_accepted() - accepted_before;
        assert!(
            opened > POOL as u64,
            "{label}: {opened} connections for {cancelled} cancellations: cancelled exchanges' \
             connections were reused"
        );
        // Connections of cancelled exchanges were closed: at most the pool stays open.
        let open = wait_for_open_at_most(&proxy, POOL).await;
        report.push(format!(
            "{label}: round trip {:.1} ms, timeouts 0..{:.1} ms, {cancelled} cancelled / \
             {completed} completed, {opened} connections opened, {open} open after, {:.1} s",
            ms(round_trip),
            ms(round_trip * TIMEOUT_SPREAD),
            started.elapsed().as_secs_f64()
        ));
    }
    figures(&format!(
        "memcached random cancellations through a {:.0} ms proxy, 0 wrong values: {}",
        ms(CANCEL_LATENCY),
        report.join("; ")
    ));
}
