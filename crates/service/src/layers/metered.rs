//! [`Metered`]: counts outcomes and times every call into a shared [`CacheMetrics`].

use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

use lexicache_core::{
    async_trait, Bytes, CacheBackend, CacheMetrics, CacheValue, Capabilities, HealthCheckResult,
    Operation, Outcome, Result,
};

/// Counts the outcome and records the latency of every call into a shared [`CacheMetrics`]
/// (which also feeds the `metrics` facade).
///
/// What is counted:
///
/// - `get` and `get_entry`: a hit or a miss; `exists`: a hit when the key exists, else a miss;
///   `get_many`: one hit or miss per key;
/// - `sets`: one per successful `set`, one per item of a successful `set_many`;
/// - `deletes`: one per key passed to a successful `delete` or `delete_many` (whether it existed
///   or not), and one per successful `delete_pattern`;
/// - `errors`: one per failed call, of any operation;
/// - latency: one sample per call (an empty batch still counts as one call).
///
/// The per-call cost is one pair of clock readings and a few relaxed atomic adds; nothing
/// allocates. The clock is [`quanta`]'s TSC clock, several times cheaper than
/// `std::time::Instant` on the hot path (see docs/benchmarks.md).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::sync::Arc;
/// use lexicache_core::{Bytes, CacheBackend, CacheMetrics};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::Metered;
///
/// let metrics = Arc::new(CacheMetrics::new("memory"));
/// let cache = Metered::new(MemoryBackend::new(), metrics.clone());
/// cache.set("k", Bytes::from_static(b"v"), None).await?;
/// cache.get("k").await?;
/// cache.get("absent").await?;
/// let s = metrics.snapshot();
/// assert_eq!((s.sets, s.hits, s.misses), (1, 1, 1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Metered<B> {
    inner: B,
    metrics: Arc<CacheMetrics>,
}

impl<B: CacheBackend> Metered<B> {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: B, metrics: Arc<CacheMetrics>) -> Self {
        // The first reading calibrates the TSC clock (once per process, about a millisecond);
        // doing it here keeps that out of the first cache call.
        let _ = Instant::now();
        Self { inner, metrics }
    }

    /// The metrics recorded into.
    #[must_use]
    pub fn metrics(&self) -> &Arc<CacheMetrics> {
        &self.metrics
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Records a call that produced `result`; `ok` gives the outcome of a success.
    #[inline]
    fn record<T>(
        &self,
        op: Operation,
        started: Instant,
        result: &Result<T>,
        ok: impl FnOnce(&T) -> Outcome,
    ) {
        let outcome = match result {
            Ok(v) => ok(v),
            Err(_) => Outcome::Error,
        };
        self.metrics.record(op, outcome, started.elapsed());
    }

    /// Records a batch call of `members` items: the call itself, then on success one more `Ok`
    /// per item beyond the first.
    fn record_batch<T>(&self, op: Operation, started: Instant, result: &Result<T>, members: usize) {
        self.record(op, started, result, |_| Outcome::Ok);
        if result.is_ok() {
            self.metrics
                .count(op, Outcome::Ok, members.saturating_sub(1) as u64);
        }
    }
}

fn found<T>(value: &Option<T>) -> Outcome {
    if value.is_some() {
        Outcome::Hit
    } else {
        Outcome::Miss
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for Metered<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        self.record(Operation::Get, started, &result, found);
        result
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.set(key, value, ttl).await;
        self.record(Operation::Set, started, &result, |()| Outcome::Ok);
        result
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let started = Instant::now();
        let result = self.inner.delete(key).await;
        self.record(Operation::Delete, started, &result, |_| Outcome::Ok);
        result
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let started = Instant::now();
        let result = self.inner.exists(key).await;
        self.record(Operation::Exists, started, &result, |&e| {
            if e {
                Outcome::Hit
            } else {
                Outcome::Miss
            }
        });
        result
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let started = Instant::now();
        let result = self.inner.get_many(keys).await;
        self.record(Operation::GetMany, started, &result, |_| Outcome::Ok);
        if let Ok(values) = &result {
            let hits = values.iter().filter(|v| v.is_some()).count() as u64;
            self.metrics.count(Operation::GetMany, Outcome::Hit, hits);
            self.metrics.count(
                Operation::GetMany,
                Outcome::Miss,
                values.len() as u64 - hits,
            );
        }
        result
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.set_many(items, ttl).await;
        self.record_batch(Operation::SetMany, started, &result, items.len());
        result
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let started = Instant::now();
        let result = self.inner.delete_many(keys).await;
        self.record_batch(Operation::DeleteMany, started, &result, keys.len());
        result
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let started = Instant::now();
        let result = self.inner.delete_pattern(glob).await;
        self.record(Operation::DeletePattern, started, &result, |_| Outcome::Ok);
        result
    }

    async fn clear(&self) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.clear().await;
        self.record(Operation::Clear, started, &result, |()| Outcome::Ok);
        result
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.health_check(timeout).await
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        let started = Instant::now();
        let result = self.inner.get_entry(key).await;
        self.record(Operation::Get, started, &result, found);
        result
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.set_entry(key, value, ttl).await;
        self.record(Operation::Set, started, &result, |()| Outcome::Ok);
        result
    }
}
