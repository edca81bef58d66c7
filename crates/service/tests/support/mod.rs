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
