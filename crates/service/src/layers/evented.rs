//! [`Evented`]: emits hit, miss, set, delete and error events onto an [`EventBus`].

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheEvent, CacheValue, Capabilities, Error,
    EventBus, Expiry, HealthCheckResult, Object, Operation, Result, SharedLockStore,
};

/// Emits what the backend did onto an [`EventBus`], for its subscribers and handlers.
///
/// | call | event |
/// |---|---|
/// | `get`, `get_with_ttl`, `get_entry`, `get_many`, `get_many_with_ttl` | [`CacheEvent::Hit`] or [`CacheEvent::Miss`] per key |
/// | `set`, `set_entry`, `set_many` | [`CacheEvent::Set`] per key written |
/// | `set_if_absent` | [`CacheEvent::Set`] when it wrote |
/// | `delete` | [`CacheEvent::Delete`] with whether the key existed |
/// | `delete_many` | one [`CacheEvent::DeleteMany`] (backends report how many keys existed, not which) |
/// | `delete_pattern` | [`CacheEvent::DeletePattern`] with how many keys went |
/// | `clear` | [`CacheEvent::Cleared`] |
/// | any failed call | [`CacheEvent::Error`] with its operation and kind |
///
/// Evictions ([`CacheEvent::Evicted`]) come from the backend itself: give the memory backend
/// the same bus (`MemoryBackend::builder().events(bus.clone())`). Events are built only while
/// someone listens, so an unobserved bus costs one atomic load per call. Keys in events are the keys this layer
/// sees (with the namespace prefix when [`Namespaced`](super::Namespaced) sits above it);
/// values never appear.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_core::{CacheBackend, CacheEvent, EventBus};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::Evented;
///
/// let bus = EventBus::new();
/// let mut events = bus.subscribe();
/// let cache = Evented::new(MemoryBackend::new(), bus);
/// assert_eq!(cache.get("absent").await?, None);
/// assert!(matches!(events.recv().await, Ok(CacheEvent::Miss { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Evented<B> {
    inner: B,
    bus: EventBus,
    name: Arc<str>,
}

impl<B: CacheBackend> Evented<B> {
    /// Wraps `inner`, emitting onto `bus`.
    pub fn new(inner: B, bus: EventBus) -> Self {
        let name = Arc::from(inner.name());
        Self { inner, bus, name }
    }

    /// The bus events go to.
    #[must_use]
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn read(&self, key: &str, found: bool) {
        self.bus.emit_with(|| {
            let backend = self.name.clone();
            let key = Arc::from(key);
            if found {
                CacheEvent::Hit { backend, key }
            } else {
                CacheEvent::Miss { backend, key }
            }
        });
    }

    /// Emits a hit or a miss per key of a successful `get_many`-like call.
    fn read_many<T>(&self, keys: &[&str], result: &Result<Vec<Option<T>>>) {
        if let Ok(values) = result {
            if self.bus.has_subscribers() {
                for (key, value) in keys.iter().zip(values) {
                    self.read(key, value.is_some());
                }
            }
        }
    }

    fn written(&self, key: &str) {
        self.bus.emit_with(|| CacheEvent::Set {
            backend: self.name.clone(),
            key: Arc::from(key),
        });
    }

    fn error(&self, op: Operation, err: &Error) {
        self.bus.emit_with(|| CacheEvent::Error {
            backend: self.name.clone(),
            operation: err.operation().unwrap_or(op),
            kind: err.kind(),
        });
    }

    /// Emits an error event if `result` failed, and hands it back.
    fn observe<T>(&self, op: Operation, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.error(op, e);
        }
        result
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for Evented<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let result = self.inner.get(key).await;
        if let Ok(found) = &result {
            self.read(key, found.is_some());
        }
        self.observe(Operation::Get, result)
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        let result = self.inner.get_with_ttl(key).await;
        if let Ok(found) = &result {
            self.read(key, found.is_some());
        }
        self.observe(Operation::Get, result)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let result = self.inner.set(key, value, ttl).await;
        if result.is_ok() {
            self.written(key);
        }
        self.observe(Operation::Set, result)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let result = self.inner.delete(key).await;
        if let Ok(existed) = result {
            self.bus.emit_with(|| CacheEvent::Delete {
                backend: self.name.clone(),
                key: Arc::from(key),
                existed,
            });
        }
        self.observe(Operation::Delete, result)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let result = self.inner.set_if_absent(key, value, ttl).await;
        if let Ok(true) = result {
            self.written(key);
        }
        self.observe(Operation::Set, result)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let result = self.inner.exists(key).await;
        self.observe(Operation::Exists, result)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let result = self.inner.get_many(keys).await;
        self.read_many(keys, &result);
        self.observe(Operation::GetMany, result)
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        let result = self.inner.get_many_with_ttl(keys).await;
        self.read_many(keys, &result);
        self.observe(Operation::GetMany, result)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let result = self.inner.set_many(items, ttl).await;
        if result.is_ok() && self.bus.has_subscribers() {
            for (key, _) in items {
                self.written(key);
            }
        }
        self.observe(Operation::SetMany, result)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let result = self.inner.delete_many(keys).await;
        if let Ok(removed) = result {
            self.bus.emit_with(|| CacheEvent::DeleteMany {
                backend: self.name.clone(),
                keys: keys.iter().map(|k| Arc::from(*k)).collect(),
                removed,
            });
        }
        self.observe(Operation::DeleteMany, result)
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let result = self.inner.delete_pattern(glob).await;
        if let Ok(removed) = result {
            self.bus.emit_with(|| CacheEvent::DeletePattern {
                backend: self.name.clone(),
                pattern: Arc::from(glob),
                removed,
            });
        }
        self.observe(Operation::DeletePattern, result)
    }

    async fn clear(&self) -> Result<()> {
        let result = self.inner.clear().await;
        if result.is_ok() {
            self.bus.emit_with(|| CacheEvent::Cleared {
                backend: self.name.clone(),
            });
        }
        self.observe(Operation::Clear, result)
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        let result = self.inner.keys(glob, limit).await;
        self.observe(Operation::Keys, result)
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.health_check(timeout).await
    }

    /// Forwarded without an event: statistics are not cache traffic.
    async fn stats(&self) -> Result<BackendStats> {
        self.inner.stats().await
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        let result = self.inner.get_entry(key).await;
        if let Ok(found) = &result {
            self.read(key, found.is_some());
        }
        self.observe(Operation::Get, result)
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        let result = self.inner.set_entry(key, value, ttl).await;
        if result.is_ok() {
            self.written(key);
        }
        self.observe(Operation::Set, result)
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
    use lexicache_core::{CacheEvent, EventBus};
    use lexicache_memory::MemoryBackend;

    use super::super::namespaced::ttl_reads;
    use super::Evented;

    #[tokio::test(start_paused = true)]
    async fn ttl_reads_return_the_inner_expiry_and_emit_hits_and_misses() {
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        let cache = Evented::new(MemoryBackend::new(), bus);
        ttl_reads::assert_forwarded(&cache).await;
        let mut reads = Vec::new();
        while let Ok(event) = events.try_recv() {
            match event {
                CacheEvent::Hit { key, .. } => reads.push(format!("hit {key}")),
                CacheEvent::Miss { key, .. } => reads.push(format!("miss {key}")),
                _ => {}
            }
        }
        assert_eq!(reads, ["hit ttl", "hit ttl", "miss absent", "hit forever"]);
    }
}
