//! Test helpers: a fault-injecting backend, a backend that never answers,
//! and a serializer that counts its calls.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, ErrorKind, HealthCheckResult, Operation,
    Result, Serializer,
};
use lexicache_serde::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A small record, about what an application caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
}

pub fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
    }
}

/// Fault injection: every operation fails with a retryable `Connection` error.
#[derive(Debug, Default)]
pub struct Failing {
    pub calls: AtomicUsize,
}

impl Failing {
    fn fail<T>(&self, op: Operation) -> Result<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Error::new(ErrorKind::Connection, "failing")
            .with_operation(op)
            .with_message("connection refused (injected)"))
    }
}

#[async_trait]
impl CacheBackend for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn get(&self, _key: &str) -> Result<Option<Bytes>> {
        self.fail(Operation::Get)
    }
    async fn set(&self, _key: &str, _value: Bytes, _ttl: Option<Duration>) -> Result<()> {
        self.fail(Operation::Set)
    }
    async fn delete(&self, _key: &str) -> Result<bool> {
        self.fail(Operation::Delete)
    }
    async fn exists(&self, _key: &str) -> Result<bool> {
        self.fail(Operation::Exists)
    }
    async fn get_many(&self, _keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.fail(Operation::GetMany)
    }
    async fn set_many(&self, _items: &[(&str, Bytes)], _ttl: Option<Duration>) -> Result<()> {
        self.fail(Operation::SetMany)
    }
    async fn delete_many(&self, _keys: &[&str]) -> Result<u64> {
        self.fail(Operation::DeleteMany)
    }
    async fn delete_pattern(&self, _glob: &str) -> Result<u64> {
        self.fail(Operation::DeletePattern)
    }
    async fn clear(&self) -> Result<()> {
        self.fail(Operation::Clear)
    }
    async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
        HealthCheckResult::unhealthy("failing", Duration::ZERO, "injected")
    }
}

/// A backend whose every call waits forever, like a server that stopped answering.
#[derive(Debug, Default)]
pub struct Hanging;

#[async_trait]
impl CacheBackend for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn get(&self, _key: &str) -> Result<Option<Bytes>> {
        std::future::pending().await
    }
    async fn set(&self, _key: &str, _value: Bytes, _ttl: Option<Duration>) -> Result<()> {
        std::future::pending().await
    }
    async fn delete(&self, _key: &str) -> Result<bool> {
        std::future::pending().await
    }
    async fn exists(&self, _key: &str) -> Result<bool> {
        std::future::pending().await
    }
    async fn get_many(&self, _keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        std::future::pending().await
    }
    async fn set_many(&self, _items: &[(&str, Bytes)], _ttl: Option<Duration>) -> Result<()> {
        std::future::pending().await
    }
    async fn delete_many(&self, _keys: &[&str]) -> Result<u64> {
        std::future::pending().await
    }
    async fn delete_pattern(&self, _glob: &str) -> Result<u64> {
        std::future::pending().await
    }
    async fn clear(&self) -> Result<()> {
        std::future::pending().await
    }
    async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
        std::future::pending().await
    }
}

/// JSON that counts how often it encodes and decodes.
#[derive(Debug, Clone, Default)]
pub struct CountingJson {
    pub encodes: Arc<AtomicUsize>,
    pub decodes: Arc<AtomicUsize>,
}

impl CountingJson {
    pub fn decodes(&self) -> usize {
        self.decodes.load(Ordering::SeqCst)
    }
    pub fn encodes(&self) -> usize {
        self.encodes.load(Ordering::SeqCst)
    }
}

impl Serializer for CountingJson {
    fn name(&self) -> &str {
        "counting-json"
    }
    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        self.encodes.fetch_add(1, Ordering::SeqCst);
        Json.encode(key, value)
    }
    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        self.decodes.fetch_add(1, Ordering::SeqCst);
        Json.decode(key, bytes)
    }
}

/// A memory backend that offers a lock store, as remote backends do, so layers and the service
/// can be tested for forwarding and using it in-process.
#[derive(Debug, Clone)]
pub struct WithLocks {
    pub inner: lexicache_memory::MemoryBackend,
    pub locks: lexicache_core::SharedLockStore,
}

impl WithLocks {
    /// A fresh memory backend with a fresh in-process lock store.
    pub fn new() -> Self {
        Self::with_store(Arc::new(lexicache_memory::MemoryLockStore::new()))
    }

    /// A fresh memory backend offering `locks`.
    pub fn with_store(locks: lexicache_core::SharedLockStore) -> Self {
        Self {
            inner: lexicache_memory::MemoryBackend::new(),
            locks,
        }
    }
}

#[async_trait]
impl CacheBackend for WithLocks {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.inner.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.inner.set_many(items, ttl).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.inner.delete_many(keys).await
    }
    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.inner.delete_pattern(glob).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.health_check(timeout).await
    }
    async fn get_entry(&self, key: &str) -> Result<Option<lexicache_core::CacheValue>> {
        self.inner.get_entry(key).await
    }
    async fn set_entry(
        &self,
        key: &str,
        value: lexicache_core::CacheValue,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.inner.set_entry(key, value, ttl).await
    }
    fn lock_store(&self) -> Option<lexicache_core::SharedLockStore> {
        Some(self.locks.clone())
    }
}

/// Fault injection for locks: every call fails with a retryable `Connection` error.
#[derive(Debug, Default)]
pub struct FailingLocks {
    pub calls: AtomicUsize,
}

impl FailingLocks {
    fn fail<T>(&self) -> Result<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Error::new(ErrorKind::Connection, "failing-locks")
            .with_operation(Operation::Lock)
            .with_message("connection refused (injected)"))
    }
}

#[async_trait]
impl lexicache_core::LockStore for FailingLocks {
    fn name(&self) -> &str {
        "failing-locks"
    }
    async fn acquire(
        &self,
        _resource: &str,
        _owner: &lexicache_core::LockOwner,
        _ttl: Duration,
    ) -> Result<Option<lexicache_core::FencingToken>> {
        self.fail()
    }
    async fn release(&self, _resource: &str, _owner: &lexicache_core::LockOwner) -> Result<()> {
        self.fail()
    }
    async fn extend(
        &self,
        _resource: &str,
        _owner: &lexicache_core::LockOwner,
        _ttl: Duration,
    ) -> Result<()> {
        self.fail()
    }
    async fn is_locked(&self, _resource: &str) -> Result<bool> {
        self.fail()
    }
}

/// A lock store whose every call waits forever, like a lock server that stopped answering.
#[derive(Debug, Default)]
pub struct HangingLocks;

#[async_trait]
impl lexicache_core::LockStore for HangingLocks {
    fn name(&self) -> &str {
        "hanging-locks"
    }
    async fn acquire(
        &self,
        _resource: &str,
        _owner: &lexicache_core::LockOwner,
        _ttl: Duration,
    ) -> Result<Option<lexicache_core::FencingToken>> {
        std::future::pending().await
    }
    async fn release(&self, _resource: &str, _owner: &lexicache_core::LockOwner) -> Result<()> {
        std::future::pending().await
    }
    async fn extend(
        &self,
        _resource: &str,
        _owner: &lexicache_core::LockOwner,
        _ttl: Duration,
    ) -> Result<()> {
        std::future::pending().await
    }
    async fn is_locked(&self, _resource: &str) -> Result<bool> {
        std::future::pending().await
    }
}
