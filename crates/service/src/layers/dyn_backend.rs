//! [`DynBackend`]: a [`SharedBackend`] that layers can wrap at the cost of one dynamic call.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lexicache_core::{
    Bytes, CacheBackend, CacheValue, Capabilities, HealthCheckResult, Result, SharedBackend,
};

/// The boxed future every [`CacheBackend`] method returns.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`SharedBackend`] as a sized backend that a layer can own.
///
/// `Arc<dyn CacheBackend>` is itself a backend, but its impl is an `async fn` that boxes a
/// future which awaits the inner boxed future: two allocations per call. `DynBackend` hands the
/// inner backend's boxed future straight back, so wrapping a shared backend in a layer costs
/// one virtual call and no extra allocation.
///
/// ```
/// use std::sync::Arc;
/// use lexicache_core::{CacheBackend, SharedBackend};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::{DynBackend, Namespaced};
///
/// let shared: SharedBackend = Arc::new(MemoryBackend::new());
/// let tenant = Namespaced::new(DynBackend::new(shared), "tenant-a:");
/// assert_eq!(tenant.name(), "memory");
/// ```
#[derive(Debug, Clone)]
pub struct DynBackend(SharedBackend);

impl DynBackend {
    /// Wraps a shared backend.
    #[must_use]
    pub fn new(backend: SharedBackend) -> Self {
        Self(backend)
    }

    /// The wrapped backend.
    #[must_use]
    pub fn shared(&self) -> &SharedBackend {
        &self.0
    }

    /// Unwraps the shared backend.
    #[must_use]
    pub fn into_shared(self) -> SharedBackend {
        self.0
    }
}

impl From<SharedBackend> for DynBackend {
    fn from(backend: SharedBackend) -> Self {
        Self(backend)
    }
}

// The methods are written in the expanded form of `#[async_trait]` so that each can return the
// inner backend's future as is. Every call goes through `&*self.0`, the `dyn CacheBackend`,
// never through the forwarding impl on `Arc`.
impl CacheBackend for DynBackend {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<Option<Bytes>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).get(key)
    }

    fn set<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).set(key, value, ttl)
    }

    fn delete<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<bool>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).delete(key)
    }

    fn exists<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<bool>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).exists(key)
    }

    fn get_many<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        keys: &'life1 [&'life2 str],
    ) -> BoxFuture<'async_trait, Result<Vec<Option<Bytes>>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).get_many(keys)
    }

    fn set_many<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        items: &'life1 [(&'life2 str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).set_many(items, ttl)
    }

    fn delete_many<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        keys: &'life1 [&'life2 str],
    ) -> BoxFuture<'async_trait, Result<u64>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).delete_many(keys)
    }

    fn delete_pattern<'life0, 'life1, 'async_trait>(
        &'life0 self,
        glob: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<u64>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).delete_pattern(glob)
    }

    fn clear<'life0, 'async_trait>(&'life0 self) -> BoxFuture<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).clear()
    }

    fn health_check<'life0, 'async_trait>(
        &'life0 self,
        timeout: Duration,
    ) -> BoxFuture<'async_trait, HealthCheckResult>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).health_check(timeout)
    }

    fn get_entry<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<Option<CacheValue>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).get_entry(key)
    }

    fn set_entry<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
        value: CacheValue,
        ttl: Option<Duration>,
    ) -> BoxFuture<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (*self.0).set_entry(key, value, ttl)
    }
}
