//! The circuit breaker layer: opening on failures within a window, failing fast while open,
//! half-open probes, cancellation, the service's degradation, events and metrics.
//!
//! Time is tokio's paused clock, advanced by hand; the backend is a memory backend behind a
//! switch that makes every call fail (or hang), counting the calls that reach it. One test
//! runs against a real Redis client pointed at a closed loopback port.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::metrics::{CIRCUIT_STATE, CIRCUIT_TRANSITIONS_TOTAL};
use lexicache_core::{
    async_trait, Bytes, CacheBackend, CacheEvent, CacheValue, Capabilities, CircuitState, Error,
    ErrorKind, EventBus, HealthCheckResult, LockOwner, LockStore, Operation, Result,
    SharedLockStore,
};
use lexicache_memory::{MemoryBackend, MemoryLockStore};
use lexicache_service::layers::{CircuitBreaker, CircuitBreakerConfig};
use lexicache_service::CacheService;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::Semaphore;
use tokio::time::advance;

/// A memory backend behind switches: `failing` makes every call a `Connection` error, `hang`
/// makes every call wait for a permit of `gate`. Counts the calls that reach it.
#[derive(Debug)]
struct Switch {
    inner: MemoryBackend,
    locks: Arc<MemoryLockStore>,
    calls: AtomicUsize,
    failing: AtomicBool,
    hang: AtomicBool,
    gate: Semaphore,
}

impl Switch {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryBackend::builder().max_value_size(1024).build(),
            locks: Arc::new(MemoryLockStore::new()),
            calls: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            gate: Semaphore::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn hang(&self, on: bool) {
        self.hang.store(on, Ordering::SeqCst);
    }

    async fn enter(&self, op: Operation) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            self.gate.acquire().await.expect("gate open").forget();
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Connection, "switch")
                .with_operation(op)
                .with_message("connection refused (switched off)"));
        }
        Ok(())
    }
}

#[async_trait]
impl CacheBackend for Switch {
    fn name(&self) -> &str {
        "switch"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.enter(Operation::Get).await?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.enter(Operation::Set).await?;
        self.inner.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.enter(Operation::Delete).await?;
        self.inner.delete(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.enter(Operation::Set).await?;
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.enter(Operation::Exists).await?;
        self.inner.exists(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.enter(Operation::GetMany).await?;
        self.inner.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.enter(Operation::SetMany).await?;
        self.inner.set_many(items, ttl).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.enter(Operation::DeleteMany).await?;
        self.inner.delete_many(keys).await
    }
    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.enter(Operation::DeletePattern).await?;
        self.inner.delete_pattern(glob).await
    }
    async fn clear(&self) -> Result<()> {
        self.enter(Operation::Clear).await?;
        self.inner.clear().await
    }
    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.enter(Operation::Keys).await?;
        self.inner.keys(glob, limit).await
    }
    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.health_check(timeout).await
    }
    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        self.enter(Operation::Get).await?;
        self.inner.get_entry(key).await
    }
    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.enter(Operation::Set).await?;
        self.inner.set_entry(key, value, ttl).await
    }
    fn lock_store(&self) -> Option<SharedLockStore> {
        Some(self.locks.clone())
    }
}

const OPEN_FOR: Duration = Duration::from_secs(30);

fn config() -> CircuitBreakerConfig {
    CircuitBreakerConfig::new()
        .failure_threshold(3)
        .window(Duration::from_secs(10))
        .open_duration(OPEN_FOR)
}

fn breaker(config: CircuitBreakerConfig) -> (Arc<Switch>, CircuitBreaker<Arc<Switch>>) {
    let switch = Switch::new();
    (switch.clone(), CircuitBreaker::new(switch, config))
}

/// Fails `n` gets through `cache` with the switch off, one second apart.
async fn fail_gets(switch: &Switch, cache: &impl CacheBackend, n: usize) {
    switch.fail(true);
    for _ in 0..n {
        let err = cache.get("k").await.expect_err("the switch is off");
        assert_eq!(err.kind(), ErrorKind::Connection);
        advance(Duration::from_secs(1)).await;
    }
    switch.fail(false);
}

/// Opens the breaker: threshold failures.
async fn open(switch: &Switch, cache: &CircuitBreaker<Arc<Switch>>) {
    let threshold = cache.config().get_failure_threshold() as usize;
    fail_gets(switch, cache, threshold).await;
    assert_eq!(cache.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_failures_within_window() {
    let (switch, cache) = breaker(config());
    fail_gets(&switch, &cache, 2).await;
    assert_eq!(cache.state(), CircuitState::Closed);
    assert_eq!(cache.stats().recent_failures, 2);
    fail_gets(&switch, &cache, 1).await;
    assert_eq!(cache.state(), CircuitState::Open);
    assert_eq!(cache.stats().opened, 1);
}

#[tokio::test(start_paused = true)]
async fn failures_outside_the_window_do_not_open() {
    let (switch, cache) = breaker(config());
    fail_gets(&switch, &cache, 2).await;
    advance(Duration::from_secs(11)).await;
    fail_gets(&switch, &cache, 1).await;
    assert_eq!(cache.state(), CircuitState::Closed);
    assert_eq!(cache.stats().recent_failures, 1);
    // Two more within the window of the last one do open it.
    fail_gets(&switch, &cache, 2).await;
    assert_eq!(cache.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn misses_and_the_callers_mistakes_do_not_count_as_failures() {
    let (_switch, cache) = breaker(config().failure_threshold(1));
    for _ in 0..10 {
        assert_eq!(cache.get("absent").await.unwrap(), None);
        let invalid = cache.get("").await.expect_err("an empty key is invalid");
        assert_eq!(invalid.kind(), ErrorKind::KeyInvalid);
        let big = Bytes::from(vec![0u8; 2048]);
        let too_large = cache.set("big", big, None).await.expect_err("too large");
        assert_eq!(too_large.kind(), ErrorKind::ValueTooLarge);
    }
    assert_eq!(cache.state(), CircuitState::Closed);
    assert_eq!(cache.stats().recent_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn open_circuit_fails_fast_without_calling_backend() {
    let (switch, cache) = breaker(config());
    open(&switch, &cache).await;
    let before = switch.calls();
    let v = || Bytes::from_static(b"v");
    let entry = || CacheValue::from_bytes(Bytes::from_static(b"v"));
    let results: Vec<Result<()>> = vec![
        cache.get("k").await.map(drop),
        cache.set("k", v(), None).await,
        cache.delete("k").await.map(drop),
        cache.set_if_absent("k", v(), None).await.map(drop),
        cache.exists("k").await.map(drop),
        cache.get_many(&["k", "j"]).await.map(drop),
        cache.set_many(&[("k", v())], None).await,
        cache.delete_many(&["k"]).await.map(drop),
        cache.delete_pattern("*").await.map(drop),
        cache.clear().await,
        cache.keys("*", 10).await.map(drop),
        cache.get_entry("k").await.map(drop),
        cache.set_entry("k", entry(), None).await,
    ];
    for result in &results {
        let err = result.as_ref().expect_err("the circuit is open");
        assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.backend(), "switch");
    }
    assert_eq!(
        results[0].as_ref().unwrap_err().operation(),
        Some(Operation::Get)
    );
    assert_eq!(
        switch.calls(),
        before,
        "an open circuit never calls the backend"
    );
    assert_eq!(cache.stats().rejected, results.len() as u64);

    // Health checks pass through and show the circuit.
    let health = cache.health_check(Duration::from_secs(1)).await;
    assert!(health.is_healthy());
    assert_eq!(health.details["circuit"], "open");
    assert_eq!(switch.calls(), before + 1);
}

#[tokio::test(start_paused = true)]
async fn get_returns_default_while_open() {
    let switch = Switch::new();
    let cache = CacheService::builder(switch.clone())
        .circuit_breaker(config())
        .build();
    assert!(cache.set("user:1", &"alice", None).await);
    switch.fail(true);
    for _ in 0..3 {
        assert_eq!(cache.get::<String>("user:1").await, None);
    }
    // The backend is back, but the circuit is open: no call reaches it.
    switch.fail(false);
    let before = switch.calls();
    assert_eq!(cache.get::<String>("user:1").await, None);
    let err = cache.try_get::<String>("user:1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(switch.calls(), before);
    // Refused calls are counted as errors: three failures and two refusals.
    assert_eq!(cache.metrics().errors, 5);

    // After the open period, the first get is a probe; it succeeds and closes the circuit.
    advance(OPEN_FOR).await;
    assert_eq!(
        cache.get::<String>("user:1").await.as_deref(),
        Some("alice")
    );
    assert_eq!(switch.calls(), before + 1);
    let health = cache.health_check(Duration::from_secs(1)).await;
    assert_eq!(health.details["circuit"], "closed");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_counts_as_a_failure() {
    let switch = Switch::new();
    let cache = CacheService::builder(switch.clone())
        .timeout(Duration::from_millis(100))
        .circuit_breaker(config())
        .build();
    switch.hang(true);
    for _ in 0..3 {
        let err = cache.try_get::<String>("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }
    let err = cache.try_get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(switch.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_configured_probes() {
    let (switch, cache) = breaker(config().half_open_probes(2).success_threshold(2));
    let cache = Arc::new(cache);
    open(&switch, &cache).await;
    advance(OPEN_FOR).await;

    switch.hang(true);
    let probes: Vec<_> = (0..2)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("k").await })
        })
        .collect();
    while switch.calls() < 5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.state(), CircuitState::HalfOpen);
    // `(*cache)`: on the `Arc`, `stats` would be `CacheBackend::stats` (the `Arc` forwards it).
    assert_eq!((*cache).stats().probes_in_flight, 2);
    // Every slot is taken: a third call fails fast.
    let err = cache.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(switch.calls(), 5);

    switch.gate.add_permits(2);
    for probe in probes {
        assert_eq!(probe.await.unwrap().unwrap(), None);
    }
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn probe_success_closes() {
    let (switch, cache) = breaker(config().success_threshold(2));
    open(&switch, &cache).await;
    advance(OPEN_FOR).await;
    cache
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    assert_eq!(cache.state(), CircuitState::HalfOpen);
    assert_eq!(cache.stats().probe_successes, 1);
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(cache.state(), CircuitState::Closed);
    // Closed afresh: the old failures are forgotten.
    fail_gets(&switch, &cache, 2).await;
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn probe_failure_reopens() {
    let (switch, cache) = breaker(config());
    open(&switch, &cache).await;
    advance(OPEN_FOR).await;
    fail_gets(&switch, &cache, 1).await;
    assert_eq!(cache.state(), CircuitState::Open);
    assert_eq!(cache.stats().opened, 2);
    // Open for the full period again, counted from the failed probe (one second ago).
    let before = switch.calls();
    advance(OPEN_FOR - Duration::from_secs(2)).await;
    let err = cache.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(switch.calls(), before);
    advance(Duration::from_secs(1)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_probe_frees_its_slot() {
    let (switch, cache) = breaker(config());
    open(&switch, &cache).await;
    advance(OPEN_FOR).await;
    switch.hang(true);
    // The probe starts, waits on the backend, and is dropped by its caller's timeout.
    let cut = tokio::time::timeout(Duration::from_millis(10), cache.get("k")).await;
    assert!(cut.is_err(), "the probe was still waiting");
    assert_eq!(cache.state(), CircuitState::HalfOpen);
    assert_eq!(cache.stats().probes_in_flight, 0);
    // The slot is free: the next call is admitted as a probe and closes the circuit.
    switch.hang(false);
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_makes_a_callers_mistake_frees_its_slot_without_deciding() {
    let (switch, cache) = breaker(config());
    open(&switch, &cache).await;
    advance(OPEN_FOR).await;
    let err = cache.get("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    assert_eq!(cache.state(), CircuitState::HalfOpen);
    assert_eq!(cache.stats().probes_in_flight, 0);
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn lock_calls_go_through_the_circuit() {
    let (switch, cache) = breaker(config());
    let locks = cache.lock_store().expect("the switch has a lock store");
    let owner = LockOwner::new("test");
    assert!(locks
        .acquire("job", &owner, Duration::from_secs(600))
        .await
        .unwrap()
        .is_some());
    open(&switch, &cache).await;
    let err = locks.is_locked("job").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.operation(), Some(Operation::Lock));
    advance(OPEN_FOR).await;
    assert!(locks.is_locked("job").await.unwrap());
    assert_eq!(cache.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn state_changes_are_events_and_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let switch = Switch::new();
    let cache = metrics::with_local_recorder(&recorder, || {
        CircuitBreaker::new(switch.clone(), config()).with_events(bus.clone())
    });
    // A debugging snapshot drains what it reads, so counters are summed across snapshots.
    let transitions = RefCell::new(BTreeMap::<(String, String), u64>::new());
    let gauge = || {
        let mut state = None;
        for (k, _, _, v) in snapshotter.snapshot().into_vec() {
            let label = |name: &str| {
                k.key()
                    .labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            match v {
                DebugValue::Gauge(g) if k.key().name() == CIRCUIT_STATE => state = Some(g.0),
                DebugValue::Counter(n) if k.key().name() == CIRCUIT_TRANSITIONS_TOTAL => {
                    *transitions
                        .borrow_mut()
                        .entry((label("backend"), label("to")))
                        .or_default() += n;
                }
                _ => {}
            }
        }
        state
    };
    assert_eq!(gauge(), Some(0.0));

    open(&switch, &cache).await;
    assert_eq!(gauge(), Some(1.0));
    advance(OPEN_FOR).await;
    switch.hang(true);
    let cut = tokio::time::timeout(Duration::from_millis(10), cache.get("k")).await;
    assert!(cut.is_err());
    assert_eq!(gauge(), Some(2.0));
    switch.hang(false);
    cache.get("k").await.unwrap();
    assert_eq!(gauge(), Some(0.0));

    let changes: Vec<(CircuitState, CircuitState)> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| match e {
            CacheEvent::CircuitStateChanged { backend, from, to } => {
                assert_eq!(&*backend, "switch");
                (from, to)
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            (CircuitState::Closed, CircuitState::Open),
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );

    let _ = gauge();
    let transitions: Vec<(String, String, u64)> = transitions
        .into_inner()
        .into_iter()
        .map(|((backend, to), n)| (backend, to, n))
        .collect();
    assert_eq!(
        transitions,
        [
            ("switch".into(), "closed".into(), 1),
            ("switch".into(), "half_open".into(), 1),
            ("switch".into(), "open".into(), 1),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn builder_passes_the_service_bus_to_the_breaker() {
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let switch = Switch::new();
    let cache = CacheService::builder(switch.clone())
        .events(bus)
        .circuit_breaker(config().failure_threshold(1))
        .build();
    switch.fail(true);
    assert_eq!(cache.get::<String>("k").await, None);
    let seen: Vec<CacheEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(
        seen.iter().any(|e| matches!(
            e,
            CacheEvent::CircuitStateChanged {
                to: CircuitState::Open,
                ..
            }
        )),
        "{seen:?}"
    );
    assert!(seen.iter().any(|e| matches!(
        e,
        CacheEvent::Error {
            kind: ErrorKind::Connection,
            ..
        }
    )));
}

/// A real client against a closed loopback port: its connection errors open the circuit, and
/// then calls stop reaching the client at all.
#[tokio::test]
async fn a_dead_redis_opens_the_circuit() {
    let redis = lexicache_redis::RedisBackend::builder()
        .url("redis://127.0.0.1:1/0")
        .connect_timeout(Duration::from_millis(200))
        .connect_lazy()
        .expect("a lazy backend");
    let cache = CircuitBreaker::new(redis, config());
    for _ in 0..3 {
        let err = cache.get("k").await.expect_err("nothing listens on port 1");
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{err}"
        );
    }
    assert_eq!(cache.state(), CircuitState::Open);
    let err = cache.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.backend(), cache.inner().name());
}

#[test]
fn config_values_below_one_are_raised_to_one() {
    let config = CircuitBreakerConfig::new()
        .failure_threshold(0)
        .half_open_probes(0)
        .success_threshold(0);
    assert_eq!(
        (
            config.get_failure_threshold(),
            config.get_half_open_probes(),
            config.get_success_threshold()
        ),
        (1, 1, 1)
    );
}

/// The breaker is transparent while closed: the whole behaviour suite through it (and through
/// the service's layer order: namespace, breaker, timeout, metrics, events).
mod behaviour {
    use std::sync::Arc;
    use std::time::Duration;

    use lexicache_core::{CacheMetrics, EventBus};
    use lexicache_memory::MemoryBackend;
    use lexicache_service::layers::{
        CircuitBreaker, CircuitBreakerConfig, Evented, Metered, Namespaced, Timeout,
    };

    lexicache_testkit::behaviour_suite!({
        let store = MemoryBackend::new();
        let metrics = Arc::new(CacheMetrics::new("breaker"));
        let bus = EventBus::new();
        // A live subscriber and handler, so events are really built and delivered.
        let events = bus.subscribe();
        bus.register(|_: &lexicache_core::CacheEvent| {})
            .expect("a handler thread");
        move |ns: String| {
            let _ = &events;
            let evented = Evented::new(store.clone(), bus.clone());
            let metered = Metered::new(evented, metrics.clone());
            let bounded =
                Timeout::new(metered, Duration::from_secs(5)).with_metrics(metrics.clone());
            let breaker = CircuitBreaker::new(bounded, CircuitBreakerConfig::new())
                .with_metrics(metrics.clone())
                .with_events(bus.clone());
            let backend = Namespaced::new(breaker, ns);
            async move { backend }
        }
    });
}
