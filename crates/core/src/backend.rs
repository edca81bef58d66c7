//! The central contract: [`CacheBackend`] stores bytes under string keys.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::capabilities::Capabilities;
use crate::error::{Error, Operation, Result};
use crate::health::HealthCheckResult;
use crate::lock::SharedLockStore;
use crate::stats::BackendStats;
use crate::value::{CacheValue, Object};

/// A shared, dynamically chosen backend.
pub type SharedBackend = Arc<dyn CacheBackend>;

/// How long an entry read with [`CacheBackend::get_with_ttl`] has left to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The entry never expires.
    Never,
    /// The entry expires after this long (rounded to the backend's resolution).
    In(Duration),
    /// The backend cannot tell (memcached keeps expiries to itself).
    Unknown,
}

/// A store of bytes under string keys. It knows nothing of types, tags or stampedes.
///
/// The trait is object safe (through [`async_trait`](mod@async_trait)), so backends are chosen at run time and
/// held as [`SharedBackend`] (`Arc<dyn CacheBackend>`). Layers (namespace, timeout, metrics ...)
/// are backends that wrap a backend.
///
/// # Semantics every backend follows
///
/// - A miss is `Ok(None)`, never an error.
/// - `ttl: None` means the backend's default TTL, or no expiry if it has none.
///   `ttl: Some(Duration::ZERO)` means the entry expires at once: the write removes the key.
///   TTLs are rounded up to the backend's resolution, never down to zero.
/// - Keys are validated with [`KeyRules`](crate::KeyRules); invalid ones are
///   [`ErrorKind::KeyInvalid`](crate::ErrorKind::KeyInvalid).
/// - Batch operations accept duplicate keys; `get_many` answers in the order asked.
/// - `delete_pattern` takes a [glob](crate::glob) relative to the backend's namespace and
///   returns how many keys it removed; where it cannot be done it returns
///   [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported), never a silent 0.
/// - `clear` removes this backend's namespace only, never other tenants' keys.
///
/// # Cancel safety
///
/// Dropping any returned future before it completes leaves the entry either written or not;
/// never half-written, and never another key's value.
#[async_trait]
pub trait CacheBackend: Send + Sync + fmt::Debug + 'static {
    /// A short name used in errors, metrics and logs (for example `"memory"`).
    fn name(&self) -> &str;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Reads the bytes under `key`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Reads the bytes under `key` with the time the entry has left to live.
    ///
    /// A two-level cache uses it to never keep a copy longer than the entry lives. The
    /// default reads with [`get`](Self::get) and answers [`Expiry::Unknown`]; the memory and
    /// Redis backends (one round trip: `GET` and `PTTL` pipelined) know, and layers forward it.
    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        Ok(self.get(key).await?.map(|v| (v, Expiry::Unknown)))
    }

    /// [`get_many`](Self::get_many) with each entry's remaining time, as
    /// [`get_with_ttl`](Self::get_with_ttl).
    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        Ok(self
            .get_many(keys)
            .await?
            .into_iter()
            .map(|v| v.map(|v| (v, Expiry::Unknown)))
            .collect())
    }

    /// Writes `value` under `key`.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()>;

    /// Removes `key`, returning whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Writes `value` under `key` only if `key` holds no live entry, returning whether it wrote.
    ///
    /// Atomic on the backend's server: of any number of concurrent callers, in any process
    /// sharing the backend, at most one sees `true` for a key that was absent, and an entry
    /// that exists is never overwritten. Tag versions are created with it, so a creation can
    /// never undo a concurrent invalidation. Errors, metrics and events count it as a
    /// [`Operation::Set`].
    ///
    /// The default returns [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported); every
    /// shipped backend implements it (memory: moka's entry API; Redis: `SET NX PX`; Memcached:
    /// `add`), and layers forward it.
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let _ = (key, value, ttl);
        Err(Error::unsupported(self.name().to_owned(), Operation::Set))
    }

    /// Whether `key` holds a live entry.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Reads many keys at once, answering in the order asked.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>>;

    /// Writes many entries at once with one TTL.
    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()>;

    /// Removes many keys at once, returning how many existed.
    async fn delete_many(&self, keys: &[&str]) -> Result<u64>;

    /// Removes every key of this namespace matching `glob`, returning how many were removed.
    async fn delete_pattern(&self, glob: &str) -> Result<u64>;

    /// Removes every key of this namespace, and only those.
    async fn clear(&self) -> Result<()>;

    /// Lists at most `limit` live keys of this namespace matching `glob`, relative to the
    /// namespace, in no particular order.
    ///
    /// This is an operator's tool (the CLI's `keys`, a secret store's listing), not a hot-path
    /// call: on a remote backend it scans. The default, for backends whose
    /// [`Capabilities::list_keys`] is false, returns
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        let _ = (glob, limit);
        Err(Error::unsupported(self.name().to_owned(), Operation::Keys))
    }

    /// Checks the backend within `timeout`. Never fails: problems are reported in the result.
    async fn health_check(&self, timeout: Duration) -> HealthCheckResult;

    /// What the store itself reports: entries, memory, hits and misses, evictions, and per
    /// server its version, uptime and connections. An operator's tool (the CLI's `stats`),
    /// not a hot-path call: on a remote backend it asks every server (`INFO`, `stats`).
    ///
    /// The default returns [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported);
    /// backends implement it and layers forward it.
    async fn stats(&self) -> Result<BackendStats> {
        Err(Error::unsupported(self.name().to_owned(), Operation::Stats))
    }

    /// Reads the entry under `key`, with its decoded value where the backend keeps one.
    ///
    /// The default wraps [`get`](Self::get). In-process backends override it, and layers
    /// forward it, so typed hits skip decoding.
    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        Ok(self.get(key).await?.map(CacheValue::from_bytes))
    }

    /// Writes an entry, keeping its decoded value where the backend can.
    ///
    /// The default writes the bytes with [`set`](Self::set).
    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.set(key, value.into_bytes(), ttl).await
    }

    /// Attaches `object`, the decoded value of `bytes`, to the entry under `key`, if that entry
    /// still holds exactly `bytes`; its TTL is kept. Nothing is written anywhere else.
    ///
    /// A backend that [keeps objects](Capabilities::keeps_objects) but was filled with bytes
    /// (a two-level cache's L1 copy of an L2 entry) would otherwise decode on every typed hit:
    /// `CacheService` calls this after decoding such an entry, so only the first hit decodes.
    /// The default does nothing; the memory backend implements it, the tiered backend passes
    /// it to its L1, and layers forward it.
    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        let _ = (key, bytes, object);
    }

    /// The lock store that shares this backend's server and namespace, if it has one.
    ///
    /// Stampede protection takes its distributed locks from here, so every process sharing a
    /// backend also shares its locks. In-process backends return `None` (one process needs no
    /// distributed lock; single-flight covers it); layers forward the inner backend's store,
    /// namespaced where they namespace keys.
    fn lock_store(&self) -> Option<SharedLockStore> {
        None
    }
}

/// The boxed future every [`CacheBackend`] method returns.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// The forwarding impls are written in the expanded form of `#[async_trait]` so that each method
// hands back the inner backend's boxed future as is. Written with `async fn`, every call through
// an `Arc<dyn CacheBackend>` would box a second future that only awaits the first.
macro_rules! forward_backend {
    ($ty:ty) => {
        impl<B: CacheBackend + ?Sized> CacheBackend for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }

            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }

            fn get<'l0, 'l1, 'a>(&'l0 self, key: &'l1 str) -> BoxFuture<'a, Result<Option<Bytes>>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).get(key)
            }

            fn get_with_ttl<'l0, 'l1, 'a>(
                &'l0 self,
                key: &'l1 str,
            ) -> BoxFuture<'a, Result<Option<(Bytes, Expiry)>>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).get_with_ttl(key)
            }

            fn get_many_with_ttl<'l0, 'l1, 'l2, 'a>(
                &'l0 self,
                keys: &'l1 [&'l2 str],
            ) -> BoxFuture<'a, Result<Vec<Option<(Bytes, Expiry)>>>>
            where
                'l0: 'a,
                'l1: 'a,
                'l2: 'a,
                Self: 'a,
            {
                (**self).get_many_with_ttl(keys)
            }

            fn set<'l0, 'l1, 'a>(
                &'l0 self,
                key: &'l1 str,
                value: Bytes,
                ttl: Option<Duration>,
            ) -> BoxFuture<'a, Result<()>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).set(key, value, ttl)
            }

            fn delete<'l0, 'l1, 'a>(&'l0 self, key: &'l1 str) -> BoxFuture<'a, Result<bool>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).delete(key)
            }

            fn set_if_absent<'l0, 'l1, 'a>(
                &'l0 self,
                key: &'l1 str,
                value: Bytes,
                ttl: Option<Duration>,
            ) -> BoxFuture<'a, Result<bool>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).set_if_absent(key, value, ttl)
            }

            fn exists<'l0, 'l1, 'a>(&'l0 self, key: &'l1 str) -> BoxFuture<'a, Result<bool>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).exists(key)
            }

            fn get_many<'l0, 'l1, 'l2, 'a>(
                &'l0 self,
                keys: &'l1 [&'l2 str],
            ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>
            where
                'l0: 'a,
                'l1: 'a,
                'l2: 'a,
                Self: 'a,
            {
                (**self).get_many(keys)
            }

            fn set_many<'l0, 'l1, 'l2, 'a>(
                &'l0 self,
                items: &'l1 [(&'l2 str, Bytes)],
                ttl: Option<Duration>,
            ) -> BoxFuture<'a, Result<()>>
            where
                'l0: 'a,
                'l1: 'a,
                'l2: 'a,
                Self: 'a,
            {
                (**self).set_many(items, ttl)
            }

            fn delete_many<'l0, 'l1, 'l2, 'a>(
                &'l0 self,
                keys: &'l1 [&'l2 str],
            ) -> BoxFuture<'a, Result<u64>>
            where
                'l0: 'a,
                'l1: 'a,
                'l2: 'a,
                Self: 'a,
            {
                (**self).delete_many(keys)
            }

            fn delete_pattern<'l0, 'l1, 'a>(&'l0 self, glob: &'l1 str) -> BoxFuture<'a, Result<u64>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).delete_pattern(glob)
            }

            fn clear<'l0, 'a>(&'l0 self) -> BoxFuture<'a, Result<()>>
            where
                'l0: 'a,
                Self: 'a,
            {
                (**self).clear()
            }

            fn keys<'l0, 'l1, 'a>(
                &'l0 self,
                glob: &'l1 str,
                limit: usize,
            ) -> BoxFuture<'a, Result<Vec<String>>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).keys(glob, limit)
            }

            fn health_check<'l0, 'a>(
                &'l0 self,
                timeout: Duration,
            ) -> BoxFuture<'a, HealthCheckResult>
            where
                'l0: 'a,
                Self: 'a,
            {
                (**self).health_check(timeout)
            }

            fn stats<'l0, 'a>(&'l0 self) -> BoxFuture<'a, Result<BackendStats>>
            where
                'l0: 'a,
                Self: 'a,
            {
                (**self).stats()
            }

            fn get_entry<'l0, 'l1, 'a>(
                &'l0 self,
                key: &'l1 str,
            ) -> BoxFuture<'a, Result<Option<CacheValue>>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).get_entry(key)
            }

            fn set_entry<'l0, 'l1, 'a>(
                &'l0 self,
                key: &'l1 str,
                value: CacheValue,
                ttl: Option<Duration>,
            ) -> BoxFuture<'a, Result<()>>
            where
                'l0: 'a,
                'l1: 'a,
                Self: 'a,
            {
                (**self).set_entry(key, value, ttl)
            }

            fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
                (**self).keep_object(key, bytes, object)
            }

            fn lock_store(&self) -> Option<SharedLockStore> {
                (**self).lock_store()
            }
        }
    };
}

forward_backend!(Arc<B>);
forward_backend!(Box<B>);
