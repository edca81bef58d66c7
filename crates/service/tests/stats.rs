//! `CacheBackend::stats` through the layers: every layer forwards it; the timeout layer bounds
//! it; the circuit breaker passes it through whatever its state and never counts it; the
//! metrics and events layers do not record it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, Capabilities, CircuitState, Error, ErrorKind,
    EventBus, HealthCheckResult, Operation, Result,
};
use lexicache_memory::MemoryBackend;
use lexicache_service::layers::{CircuitBreaker, CircuitBreakerConfig, Timeout};
use lexicache_service::CacheService;

#[tokio::test]
async fn service_backend_stats_forward_through_every_layer_to_memory() {
    let bus = EventBus::new();
    let mut events = bus.subscribe();
    let cache = CacheService::builder(MemoryBackend::new())
        .namespace("app:")
        .timeout(Duration::from_secs(5))
        .circuit_breaker(CircuitBreakerConfig::new())
        .events(bus)
        .build();
    for i in 0..12u32 {
        assert!(cache.set(&format!("n:{i}"), &i, None).await);
    }
    assert_eq!(cache.get::<u32>("n:3").await, Some(3));
    assert_eq!(cache.get::<u32>("absent").await, None);
    while events.try_recv().is_ok() {}
    let before = cache.metrics();

    let stats = cache.backend().stats().await.expect("memory reports stats");
    assert_eq!(stats.entries, Some(12), "{stats:?}");
    assert_eq!(stats.entries_scope, Some("namespace"));
    assert!(stats.memory_bytes.is_some_and(|b| b > 0), "{stats:?}");
    assert_eq!(
        stats.extra.get("circuit").map(String::as_str),
        Some("closed"),
        "the breaker adds its state: {stats:?}"
    );

    let after = cache.metrics();
    assert_eq!(
        (after.hits, after.misses, after.errors),
        (before.hits, before.misses, before.errors),
        "stats are not cache traffic"
    );
    assert!(
        events.try_recv().is_err(),
        "stats emit no event onto the bus"
    );
}

/// A backend whose gets fail (to open a circuit) and whose `stats` answers, fails or never
/// returns, counting the calls that reach it.
#[derive(Debug, Default)]
struct Probe {
    stats_calls: AtomicUsize,
    stats_fail: AtomicBool,
    stats_hang: AtomicBool,
}

#[async_trait]
impl CacheBackend for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn get(&self, _key: &str) -> Result<Option<Bytes>> {
        Err(Error::new(ErrorKind::Connection, "probe").with_operation(Operation::Get))
    }
    async fn set(&self, _key: &str, _value: Bytes, _ttl: Option<Duration>) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    async fn exists(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(vec![None; keys.len()])
    }
    async fn set_many(&self, _items: &[(&str, Bytes)], _ttl: Option<Duration>) -> Result<()> {
        Ok(())
    }
    async fn delete_many(&self, _keys: &[&str]) -> Result<u64> {
        Ok(0)
    }
    async fn delete_pattern(&self, _glob: &str) -> Result<u64> {
        Ok(0)
    }
    async fn clear(&self) -> Result<()> {
        Ok(())
    }
    async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
        HealthCheckResult::healthy("probe", Duration::ZERO)
    }
    async fn stats(&self) -> Result<BackendStats> {
        self.stats_calls.fetch_add(1, Ordering::SeqCst);
        if self.stats_hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.stats_fail.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Connection, "probe").with_operation(Operation::Stats));
        }
        Ok(BackendStats {
            entries: Some(1),
            ..BackendStats::default()
        })
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_bounds_a_stats_call_that_never_returns() {
    let probe = Probe::default();
    probe.stats_hang.store(true, Ordering::SeqCst);
    let layer = Timeout::new(probe, Duration::from_millis(50));
    let started = tokio::time::Instant::now();
    let err = layer.stats().await.expect_err("the deadline passes");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.operation(), Some(Operation::Stats));
    assert_eq!(started.elapsed(), Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn breaker_never_counts_failing_stats_toward_opening() {
    let probe = Probe::default();
    probe.stats_fail.store(true, Ordering::SeqCst);
    let breaker = CircuitBreaker::new(probe, CircuitBreakerConfig::new().failure_threshold(1));
    for _ in 0..5 {
        let err = CacheBackend::stats(&breaker).await.expect_err("failing");
        assert_eq!(err.kind(), ErrorKind::Connection);
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.inner().stats_calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn breaker_passes_stats_through_while_open_and_names_its_state() {
    let breaker = CircuitBreaker::new(
        Probe::default(),
        CircuitBreakerConfig::new().failure_threshold(1),
    );
    assert!(breaker.get("k").await.is_err());
    assert_eq!(breaker.state(), CircuitState::Open);
    let err = breaker.get("k").await.expect_err("open");
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);

    let stats = CacheBackend::stats(&breaker)
        .await
        .expect("stats reach the backend while the circuit is open");
    assert_eq!(stats.entries, Some(1));
    assert_eq!(stats.extra.get("circuit").map(String::as_str), Some("open"));
    assert_eq!(breaker.inner().stats_calls.load(Ordering::SeqCst), 1);
}
