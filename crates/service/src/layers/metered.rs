//! [`Metered`]: counts outcomes and times every call into a shared [`CacheMetrics`].

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheMetrics, CacheValue, Capabilities, Expiry,
    HealthCheckResult, Object, Operation, Outcome, Result, SharedLockStore,
};

/// Counts the outcome and records the latency of every call into a shared [`CacheMetrics`]
/// (which also feeds the `metrics` facade).
///
/// What is counted:
///
/// - `get`, `get_with_ttl` and `get_entry`: a hit or a miss; `exists`: a hit when the key
///   exists, else a miss; `get_many` and `get_many_with_ttl`: one hit or miss per key;
/// - `sets`: one per successful `set`, one per item of a successful `set_many`;
/// - `deletes`: one per entry actually removed by `delete`, `delete_many` or `delete_pattern`;
///   a key that was absent counts as a `miss` outcome in the facade only (not toward the hit
///   rate);
/// - `errors`: one per failed call, of any operation;
/// - latency: one call in [`DEFAULT_LATENCY_SAMPLING`] (per thread) is timed, so the latency
///   histogram (and `lexicache_operation_duration_seconds`) holds a uniform sample of the calls;
///   [`latency_sampling`](Self::latency_sampling)`(1)` times every call. Count rates with
///   `lexicache_operations_total`, which sees every call.
///
/// Timing is sampled because a pair of clock readings costs about 40 ns on this project's
/// machines (with [`quanta`]'s TSC clock; 65 ns with `std::time::Instant`), several percent of an
/// in-process hit. The per-call cost of an untimed call is a thread-local increment and a few
/// relaxed atomic adds; nothing allocates.
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
    /// `one_in - 1` for a power-of-two `one_in`; 0 times every call.
    sample_mask: u32,
}

/// The default share of calls whose latency is timed: one in this many.
pub const DEFAULT_LATENCY_SAMPLING: u32 = 8;

thread_local! {
    /// Calls seen on this thread, to pick the sampled ones without a shared counter.
    static CALLS: Cell<u32> = const { Cell::new(0) };
}

impl<B: CacheBackend> Metered<B> {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: B, metrics: Arc<CacheMetrics>) -> Self {
        // The first reading calibrates the TSC clock (once per process, about a millisecond);
        // doing it here keeps that out of the first cache call.
        let _ = Instant::now();
        Self {
            inner,
            metrics,
            sample_mask: DEFAULT_LATENCY_SAMPLING - 1,
        }
    }

    /// Times one call in `one_in` (rounded up to a power of two; 1 times every call). Default
    /// [`DEFAULT_LATENCY_SAMPLING`]. Outcomes are counted for every call either way.
    #[must_use]
    pub fn latency_sampling(mut self, one_in: u32) -> Self {
        self.sample_mask = one_in.max(1).next_power_of_two() - 1;
        self
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
        started: Option<Instant>,
        result: &Result<T>,
        ok: impl FnOnce(&T) -> Outcome,
    ) {
        let outcome = match result {
            Ok(v) => ok(v),
            Err(_) => Outcome::Error,
        };
        match started {
            Some(started) => self.metrics.record(op, outcome, started.elapsed()),
            None => self.metrics.count(op, outcome, 1),
        }
    }

    /// Starts the clock for this call if it is one of the sampled calls.
    #[inline]
    fn start(&self) -> Option<Instant> {
        if self.sample_mask == 0 {
            return Some(Instant::now());
        }
        let tick = CALLS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        (tick & self.sample_mask == 0).then(Instant::now)
    }

    /// Records a batch call of `members` items: the call itself, then on success one more `Ok`
    /// per item beyond the first.
    /// Records a call that removed `Ok(n)` entries out of `asked` keys: `n` deletes, and the
    /// keys that were absent as misses in the facade (they are not reads, so the hit rate is
    /// untouched).
    fn record_removals(
        &self,
        op: Operation,
        started: Option<Instant>,
        result: &Result<u64>,
        asked: usize,
    ) {
        if let Some(started) = started {
            self.metrics.time(op, started.elapsed());
        }
        match result {
            Ok(removed) => {
                self.metrics.count(op, Outcome::Ok, *removed);
                let absent = (asked as u64).saturating_sub(*removed);
                self.metrics.count(op, Outcome::Miss, absent);
            }
            Err(_) => self.metrics.count(op, Outcome::Error, 1),
        }
    }

    fn record_batch<T>(
        &self,
        op: Operation,
        started: Option<Instant>,
        result: &Result<T>,
        members: usize,
    ) {
        self.record(op, started, result, |_| Outcome::Ok);
        if result.is_ok() {
            self.metrics
                .count(op, Outcome::Ok, members.saturating_sub(1) as u64);
        }
    }

    /// Records a `get_many`-like call: the call itself, then one hit or miss per key.
    fn record_many<T>(&self, started: Option<Instant>, result: &Result<Vec<Option<T>>>) {
        self.record(Operation::GetMany, started, result, |_| Outcome::Ok);
        if let Ok(values) = result {
            let hits = values.iter().filter(|v| v.is_some()).count() as u64;
            self.metrics.count(Operation::GetMany, Outcome::Hit, hits);
            self.metrics.count(
                Operation::GetMany,
                Outcome::Miss,
                values.len() as u64 - hits,
            );
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
        let started = self.start();
        let result = self.inner.get(key).await;
        self.record(Operation::Get, started, &result, found);
        result
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        let started = self.start();
        let result = self.inner.get_with_ttl(key).await;
        self.record(Operation::Get, started, &result, found);
        result
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let started = self.start();
        let result = self.inner.set(key, value, ttl).await;
        self.record(Operation::Set, started, &result, |()| Outcome::Ok);
        result
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let started = self.start();
        let result = self.inner.delete(key).await;
        self.record(Operation::Delete, started, &result, |&existed| {
            if existed {
                Outcome::Ok
            } else {
                Outcome::Miss
            }
        });
        result
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let started = self.start();
        let result = self.inner.set_if_absent(key, value, ttl).await;
        self.record(Operation::Set, started, &result, |_| Outcome::Ok);
        result
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let started = self.start();
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
        let started = self.start();
        let result = self.inner.get_many(keys).await;
        self.record_many(started, &result);
        result
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        let started = self.start();
        let result = self.inner.get_many_with_ttl(keys).await;
        self.record_many(started, &result);
        result
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let started = self.start();
        let result = self.inner.set_many(items, ttl).await;
        self.record_batch(Operation::SetMany, started, &result, items.len());
        result
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let started = self.start();
        let result = self.inner.delete_many(keys).await;
        self.record_removals(Operation::DeleteMany, started, &result, keys.len());
        result
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let started = self.start();
        let result = self.inner.delete_pattern(glob).await;
        self.record_removals(Operation::DeletePattern, started, &result, 0);
        result
    }

    async fn clear(&self) -> Result<()> {
        let started = self.start();
        let result = self.inner.clear().await;
        self.record(Operation::Clear, started, &result, |()| Outcome::Ok);
        result
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        let started = self.start();
        let result = self.inner.keys(glob, limit).await;
        self.record(Operation::Keys, started, &result, |_| Outcome::Ok);
        result
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.health_check(timeout).await
    }

    /// Forwarded without being recorded: statistics are not cache traffic, and counting them
    /// would skew the latency and error figures they are read beside.
    async fn stats(&self) -> Result<BackendStats> {
        self.inner.stats().await
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        let started = self.start();
        let result = self.inner.get_entry(key).await;
        self.record(Operation::Get, started, &result, found);
        result
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        let started = self.start();
        let result = self.inner.set_entry(key, value, ttl).await;
        self.record(Operation::Set, started, &result, |()| Outcome::Ok);
        result
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        self.inner.keep_object(key, bytes, object);
    }

    fn lock_store(&self) -> Option<SharedLockStore> {
        self.inner.lock_store()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lexicache_core::{CacheBackend, CacheMetrics};
    use lexicache_memory::MemoryBackend;

    use super::super::namespaced::ttl_reads;
    use super::Metered;

    #[tokio::test(start_paused = true)]
    async fn ttl_reads_return_the_inner_expiry_and_count_hits_and_misses() {
        let metrics = Arc::new(CacheMetrics::new("memory"));
        let cache = Metered::new(MemoryBackend::new(), metrics.clone());
        ttl_reads::assert_forwarded(&cache).await;
        assert_eq!(cache.get_with_ttl("absent").await.unwrap(), None);
        let s = metrics.snapshot();
        assert_eq!((s.hits, s.misses, s.errors), (3, 2, 0));
    }
}
