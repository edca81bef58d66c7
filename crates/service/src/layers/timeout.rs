//! [`Timeout`]: bounds every call, so a hung backend costs at most the deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheMetrics, CacheValue, Capabilities, Error,
    ErrorKind, Expiry, FencingToken, HealthCheckResult, LockOwner, LockStore, Object, Operation,
    Outcome, Result, SharedLockStore,
};

/// Bounds every call to the inner backend by a deadline.
///
/// A call that does not finish in time is dropped and returns a retryable
/// [`ErrorKind::Timeout`] naming the operation. Backends are cancel safe (see
/// [`CacheBackend`]), so a dropped write is either done or not, never half done. Layers below
/// never see the dropped call finish, so with [`with_metrics`](Self::with_metrics) this layer
/// counts each timeout as an error itself. `health_check`
/// is bounded by the timeout the caller passes to it, and reports unhealthy when that passes.
/// The backend's [lock store](CacheBackend::lock_store) is bounded by the same deadline.
///
/// It needs a tokio runtime with the time driver enabled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::time::Duration;
/// use lexicache_core::{Bytes, CacheBackend};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::Timeout;
///
/// let cache = Timeout::new(MemoryBackend::new(), Duration::from_millis(50));
/// cache.set("k", Bytes::from_static(b"v"), None).await?;
/// assert!(cache.exists("k").await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Timeout<B> {
    inner: B,
    timeout: Duration,
    metrics: Option<Arc<CacheMetrics>>,
}

impl<B: CacheBackend> Timeout<B> {
    /// Wraps `inner`, bounding each call by `timeout`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            metrics: None,
        }
    }

    /// Counts every timed-out call as an error of its operation in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<CacheMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The deadline of each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn bound<T>(&self, op: Operation, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                if let Some(metrics) = &self.metrics {
                    metrics.count(op, Outcome::Error, 1);
                }
                Err(Error::new(ErrorKind::Timeout, self.inner.name().to_owned())
                    .with_operation(op)
                    .with_message(format!("no reply within {:?}", self.timeout)))
            }
        }
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for Timeout<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.bound(Operation::Get, self.inner.get(key)).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        self.bound(Operation::Get, self.inner.get_with_ttl(key))
            .await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.bound(Operation::Set, self.inner.set(key, value, ttl))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.bound(Operation::Delete, self.inner.delete(key)).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.bound(Operation::Set, self.inner.set_if_absent(key, value, ttl))
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.bound(Operation::Exists, self.inner.exists(key)).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.bound(Operation::GetMany, self.inner.get_many(keys))
            .await
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        self.bound(Operation::GetMany, self.inner.get_many_with_ttl(keys))
            .await
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.bound(Operation::SetMany, self.inner.set_many(items, ttl))
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.bound(Operation::DeleteMany, self.inner.delete_many(keys))
            .await
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.bound(Operation::DeletePattern, self.inner.delete_pattern(glob))
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.bound(Operation::Clear, self.inner.clear()).await
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.bound(Operation::Keys, self.inner.keys(glob, limit))
            .await
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        match tokio::time::timeout(timeout, self.inner.health_check(timeout)).await {
            Ok(result) => result,
            Err(_) => HealthCheckResult::unhealthy(
                self.inner.name(),
                timeout,
                format!("no health reply within {timeout:?}"),
            ),
        }
    }

    /// Bounded by this layer's deadline, like every other call.
    async fn stats(&self) -> Result<BackendStats> {
        self.bound(Operation::Stats, self.inner.stats()).await
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        self.bound(Operation::Get, self.inner.get_entry(key)).await
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.bound(Operation::Set, self.inner.set_entry(key, value, ttl))
            .await
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        self.inner.keep_object(key, bytes, object);
    }

    fn lock_store(&self) -> Option<SharedLockStore> {
        let inner = self.inner.lock_store()?;
        Some(Arc::new(TimeoutLockStore {
            inner,
            timeout: self.timeout,
        }))
    }
}

/// The inner backend's lock store with every call bounded by the layer's deadline, so a hung
/// lock server cannot hang a protected load.
#[derive(Debug)]
struct TimeoutLockStore {
    inner: SharedLockStore,
    timeout: Duration,
}

impl TimeoutLockStore {
    async fn bound<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(ErrorKind::Timeout, self.inner.name().to_owned())
                .with_operation(Operation::Lock)
                .with_message(format!("no reply within {:?}", self.timeout))),
        }
    }
}

#[async_trait]
impl LockStore for TimeoutLockStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.bound(self.inner.acquire(resource, owner, ttl)).await
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.bound(self.inner.release(resource, owner)).await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.bound(self.inner.extend(resource, owner, ttl)).await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.bound(self.inner.is_locked(resource)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lexicache_memory::MemoryBackend;

    use super::super::namespaced::ttl_reads;
    use super::Timeout;

    #[tokio::test(start_paused = true)]
    async fn ttl_reads_pass_through_with_the_inner_expiry() {
        let cache = Timeout::new(MemoryBackend::new(), Duration::from_millis(50));
        ttl_reads::assert_forwarded(&cache).await;
    }
}
