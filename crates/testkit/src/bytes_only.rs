//! [`BytesOnly`]: any backend made to behave like a remote one, where only bytes cross.

use std::time::Duration;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, Capabilities, HealthCheckResult, Result,
};

/// Wraps a backend so that no decoded object crosses it, as with Redis or memcached: it reports
/// `in_process: false`, and `get_entry`/`set_entry` carry bytes only (the trait's defaults).
///
/// Tests and benchmarks use it to exercise the decode path of `CacheService` on an in-process
/// store, without a server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::sync::Arc;
/// use lexicache_core::{Bytes, CacheBackend, CacheValue};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_testkit::BytesOnly;
///
/// let remote_like = BytesOnly(MemoryBackend::new());
/// assert!(!remote_like.capabilities().in_process);
/// let value = CacheValue::with_object(Bytes::from_static(b"7"), Arc::new(7u8));
/// remote_like.set_entry("k", value, None).await?;
/// let back = remote_like.get_entry("k").await?.unwrap();
/// assert!(back.object().is_none());
/// assert_eq!(back.bytes().as_ref(), b"7");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BytesOnly<B>(pub B);

#[async_trait]
impl<B: CacheBackend> CacheBackend for BytesOnly<B> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        let mut caps = self.0.capabilities();
        caps.in_process = false;
        caps.keeps_objects = false;
        caps
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.0.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.0.set_if_absent(key, value, ttl).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.0.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.0.set_many(items, ttl).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.0.delete_many(keys).await
    }
    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.0.delete_pattern(glob).await
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.0.keys(glob, limit).await
    }
    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }
    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.0.health_check(timeout).await
    }
    async fn stats(&self) -> Result<BackendStats> {
        self.0.stats().await
    }
}
