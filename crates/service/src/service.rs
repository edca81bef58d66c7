//! [`CacheService`]: the typed facade over a layer stack, with graceful degradation. Loads
//! (`get_or_set` and its forms) live in `load.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    key_hash, CacheBackend, CacheEvent, CacheMetrics, CacheValue, Capabilities, Error, EventBus,
    HealthCheckResult, KeyRules, MetricsSnapshot, Object, Operation, Outcome, Result, Serializer,
    SharedBackend,
};
use lexicache_serde::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::builder::CacheServiceBuilder;
use crate::tags::{self, TagSnapshot};
// Named only in documentation, since loads (which make these errors) moved to `load.rs`.
use dashmap::DashMap;
#[cfg(doc)]
use lexicache_core::ErrorKind;
use lexicache_core::SharedLockStore;
use lexicache_lock::protection::{Protection, StampedeLock};
use lexicache_lock::refresh::{self, EarlyRefresh, FrameMeta, LogicalClock};
use lexicache_lock::SingleFlight;

/// What the builder hands over.
pub(crate) struct Parts<S> {
    pub(crate) backend: SharedBackend,
    pub(crate) serializer: S,
    pub(crate) name: String,
    pub(crate) metrics: Arc<CacheMetrics>,
    pub(crate) events: Option<EventBus>,
    pub(crate) key_rules: KeyRules,
    pub(crate) caps: Capabilities,
    pub(crate) protection: Protection,
    pub(crate) lock_store: Option<SharedLockStore>,
    pub(crate) early_refresh: EarlyRefresh,
    pub(crate) tag_ttl: Duration,
}

pub(crate) struct Inner<S> {
    pub(crate) backend: SharedBackend,
    serializer: S,
    pub(crate) name: String,
    pub(crate) metrics: Arc<CacheMetrics>,
    events: Option<EventBus>,
    key_rules: KeyRules,
    /// The stack lives in this process: batches go key by key, so typed hits skip decoding.
    pub(crate) in_process: bool,
    /// The stack keeps decoded objects, so writes attach them and typed hits skip decoding.
    keeps_objects: bool,
    max_value_size: Option<usize>,
    pub(crate) flights: SingleFlight,
    pub(crate) protection: Protection,
    /// The lock store protection takes its locks from (the stack's, or the builder's).
    pub(crate) lock_store: Option<SharedLockStore>,
    /// The distributed half of protection: `Some` when protection is on and distributed, and
    /// a lock store exists.
    pub(crate) stampede: Option<StampedeLock>,
    /// The early refresh `get_or_set` applies, and `get_or_set_with` by default.
    pub(crate) early_refresh: EarlyRefresh,
    /// Reads logical expiries of early-refresh frames.
    pub(crate) clock: LogicalClock,
    /// Keys this process is refreshing early (XFetch or stale-while-revalidate), so at most one
    /// caller per process refreshes a key at a time.
    pub(crate) refreshing: DashMap<String, ()>,
    /// The TTL of tag version keys, and the cap on tagged entries' TTLs.
    pub(crate) tag_ttl: Duration,
}

/// The typed cache: values in, values out, over any backend and its layers.
///
/// Values are encoded with the serializer (JSON by default) and stored as bytes, the contract
/// every backend shares. Where the stack is in-process (the memory backend), the value written
/// is also kept as an object, so a typed hit is an `Arc` clone and a downcast, with no decoding;
/// remote backends store and return bytes only.
///
/// # Degradation
///
/// A cache should not take an application down with it. The plain forms (`get`, `set`,
/// `delete` ...) never fail: when the backend or the serializer fails, they log a warning (the
/// key only as [`key_hash`], never values), count an error in [`metrics`](Self::metrics), and
/// return the default (`None`, `false`, `0`). The `try_` forms return the [`Error`] instead.
/// Admin operations ([`delete_pattern`](Self::delete_pattern), [`clear`](Self::clear)) only
/// come as `Result`, since a silent `0` would hide [`ErrorKind::Unsupported`].
///
/// Keys are checked with the service's [`KeyRules`] before any backend call; an invalid key is
/// an [`ErrorKind::KeyInvalid`] error (or a counted, logged default), never a panic.
///
/// # Loads and stampedes
///
/// [`get_or_set`](Self::get_or_set) loads a missing value once for all concurrent callers:
/// local single-flight within the process, plus a distributed lock across processes when the
/// stack has a [lock store](CacheBackend::lock_store) (Redis and Memcached do; memory does not)
/// or the builder was given one. [`get_or_set_with`](Self::get_or_set_with) adds early refresh:
/// XFetch, stale-while-revalidate and TTL jitter. Entries written with early refresh carry a
/// small frame (see [`lexicache_lock::refresh`]); every read understands it, and a plain
/// [`get`](Self::get) of an entry past its logical TTL is a miss.
///
/// # Cancel safety
///
/// Every method is cancel safe: dropping its future leaves each entry written or not, never
/// half written (backends guarantee this per call; batches may be partly done). See
/// [`get_or_set`](Self::get_or_set) for how a dropped load affects other callers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use lexicache_service::CacheService;
///
/// let cache = CacheService::memory().build();
/// assert!(cache.set("answer", &42u32, None).await);
/// assert_eq!(cache.get::<u32>("answer").await, Some(42));
/// assert_eq!(cache.get::<u32>("").await, None); // an invalid key degrades to the default...
/// assert!(cache.try_get::<u32>("").await.is_err()); // ...or is an error in the try_ form
/// assert_eq!(cache.metrics().errors, 2);
/// # }
/// ```
pub struct CacheService<S: Serializer = Json> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: Serializer> Clone for CacheService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Serializer> fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("name", &self.inner.name)
            .field("backend", &self.inner.backend)
            .field("serializer", &self.inner.serializer.name())
            .field("key_rules", &self.inner.key_rules)
            .field("events", &self.inner.events.is_some())
            .field("protection", &self.inner.protection)
            .field(
                "lock_store",
                &self.inner.lock_store.as_ref().map(|s| s.name().to_owned()),
            )
            .field("early_refresh", &self.inner.early_refresh)
            .field("tag_ttl", &self.inner.tag_ttl)
            .finish_non_exhaustive()
    }
}

impl CacheService<Json> {
    /// A builder over `backend`: any backend, a layer stack, or a
    /// [`SharedBackend`](lexicache_core::SharedBackend) chosen at run time.
    pub fn builder(backend: impl CacheBackend) -> CacheServiceBuilder<Json> {
        CacheServiceBuilder::new(backend)
    }

    /// A builder over a new in-process [`MemoryBackend`](lexicache_memory::MemoryBackend) with
    /// its defaults. With [`events`](CacheServiceBuilder::events), the backend emits its
    /// evictions on the service's bus too.
    #[cfg(feature = "memory")]
    pub fn memory() -> CacheServiceBuilder<Json> {
        Self::builder(lexicache_memory::MemoryBackend::new()).default_memory()
    }
}

impl<S: Serializer> CacheService<S> {
    pub(crate) fn from_parts(parts: Parts<S>) -> Self {
        let flights = SingleFlight::new(parts.name.clone());
        let stampede = match &parts.lock_store {
            Some(store) if parts.protection.enabled && parts.protection.distributed => {
                Some(StampedeLock::new(store.clone(), parts.protection.clone()))
            }
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                backend: parts.backend,
                serializer: parts.serializer,
                name: parts.name,
                metrics: parts.metrics,
                events: parts.events,
                key_rules: parts.key_rules,
                in_process: parts.caps.in_process,
                keeps_objects: parts.caps.keeps_objects || parts.caps.in_process,
                max_value_size: parts.caps.max_value_size,
                flights,
                protection: parts.protection,
                lock_store: parts.lock_store,
                stampede,
                early_refresh: parts.early_refresh,
                tag_ttl: parts.tag_ttl,
                clock: LogicalClock::new(),
                refreshing: DashMap::new(),
            }),
        }
    }

    // ----- reads -------------------------------------------------------------------------

    /// The value under `key`, or `None` on a miss or a failure (logged and counted).
    ///
    /// Reads are typed (the reference's `get_typed`): a stored value that is not a `T` is a
    /// failure like any other, so this returns `None` and [`try_get`](Self::try_get) returns
    /// the [`ErrorKind::Serialization`] error.
    #[doc(alias = "get_typed")]
    pub async fn get<T>(&self, key: &str) -> Option<T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.try_get(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Get, key, &e))
    }

    /// The value under `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`], the backend's error, or [`ErrorKind::Serialization`] when the
    /// stored value is not a `T`.
    #[doc(alias = "try_get_typed")]
    pub async fn try_get<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Ok(self.try_get_arc(key).await?.map(Arc::unwrap_or_clone))
    }

    /// The value under `key` as a shared `Arc`: on in-process stacks a hit clones no value.
    /// `None` on a miss or a failure (logged and counted).
    pub async fn get_arc<T>(&self, key: &str) -> Option<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.try_get_arc(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Get, key, &e))
    }

    /// The value under `key` as a shared `Arc`.
    ///
    /// # Errors
    ///
    /// As [`try_get`](Self::try_get).
    pub async fn try_get_arc<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.check_key(key, Operation::Get)?;
        self.lookup(key).await
    }

    /// The values under `keys`, in order; all `None` on a failure (logged and counted).
    pub async fn get_many<T>(&self, keys: &[&str]) -> Vec<Option<T>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match self.try_get_many(keys).await {
            Ok(values) => values,
            Err(e) => {
                self.degrade_batch::<()>(Operation::GetMany, keys.len(), &e);
                keys.iter().map(|_| None).collect()
            }
        }
    }

    /// The values under `keys`, in order. On in-process stacks each key is read with its
    /// object, so hits skip decoding (and the metrics layer counts single reads); elsewhere one
    /// batch call fetches the bytes.
    ///
    /// # Errors
    ///
    /// The first invalid key, the backend's error, or the first value that is not a `T`.
    pub async fn try_get_many<T>(&self, keys: &[&str]) -> Result<Vec<Option<T>>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        for key in keys {
            self.check_key(key, Operation::GetMany)?;
        }
        if self.inner.in_process {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.lookup::<T>(key).await?.map(Arc::unwrap_or_clone));
            }
            return Ok(values);
        }
        let raw = self.inner.backend.get_many(keys).await?;
        // Tagged entries' versions, all in one more round trip (none if nothing is tagged).
        let live = self.tags_current_batch(&raw).await?;
        keys.iter()
            .zip(raw)
            .zip(live)
            .map(|((key, bytes), live)| match bytes {
                Some(b) if live => self.decode_live::<T>(key, &b, Operation::GetMany),
                _ => Ok(None),
            })
            .collect()
    }

    /// Whether `key` holds a live entry; `false` on a failure (logged and counted).
    pub async fn exists(&self, key: &str) -> bool {
        self.try_exists(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Exists, key, &e))
    }

    /// Whether `key` holds a live entry.
    ///
    /// An entry [tagged](Self::try_set_with_tags) with an invalidated tag, or past the logical
    /// expiry of its early-refresh frame, is not live: so this reads the entry (without
    /// decoding it), and for a tagged entry its tags' versions, as [`get`](Self::get) does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`] or the backend's error.
    pub async fn try_exists(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Exists)?;
        let op = Operation::Exists;
        let Some(entry) = self
            .inner
            .backend
            .get_entry(key)
            .await
            .map_err(|e| e.with_operation(op))?
        else {
            return Ok(false);
        };
        let mut bytes = entry.bytes().as_ref();
        if let Some((frame, rest)) =
            tags::unframe(&self.inner.name, bytes).map_err(|e| self.local_error(op, e))?
        {
            if !self
                .tags_current(&frame)
                .await
                .map_err(|e| e.with_operation(op))?
            {
                return Ok(false);
            }
            bytes = rest;
        }
        match refresh::unframe(&self.inner.name, bytes).map_err(|e| self.local_error(op, e))? {
            Some((meta, _)) => Ok(!meta.is_expired(self.inner.clock.now_ms())),
            None => Ok(true),
        }
    }

    // ----- writes ------------------------------------------------------------------------

    /// Writes `value` under `key` (`ttl: None` = the backend's default). Returns whether it was
    /// written; `false` on a failure (logged and counted).
    pub async fn set<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> bool
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        match self.try_set(key, value, ttl).await {
            Ok(()) => true,
            Err(e) => self.degrade(Operation::Set, key, &e),
        }
    }

    /// Writes `value` under `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`], [`ErrorKind::Serialization`], [`ErrorKind::ValueTooLarge`] or
    /// the backend's error.
    pub async fn try_set<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        self.check_key(key, Operation::Set)?;
        let entry = self.entry(key, value, Operation::Set, None, || {
            Arc::new(value.clone()) as Object
        })?;
        self.inner.backend.set_entry(key, entry, ttl).await
    }

    /// Writes every item with one TTL. Returns whether all were written; `false` on a failure
    /// (logged and counted).
    pub async fn set_many<T>(&self, items: &[(&str, T)], ttl: Option<Duration>) -> bool
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        match self.try_set_many(items, ttl).await {
            Ok(()) => true,
            Err(e) => self.degrade_batch(Operation::SetMany, items.len(), &e),
        }
    }

    /// Writes every item with one TTL. Every key is checked and every value encoded before
    /// anything is written, so bad input writes nothing. On in-process stacks items are written
    /// one by one with their objects; elsewhere in one batch call.
    ///
    /// # Errors
    ///
    /// As [`try_set`](Self::try_set), for the first item that fails.
    ///
    /// # Cancel safety
    ///
    /// On an in-process stack, dropping the future midway may leave the first items written
    /// and the rest not; each item is whole either way.
    pub async fn try_set_many<T>(&self, items: &[(&str, T)], ttl: Option<Duration>) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let mut encoded = Vec::with_capacity(items.len());
        for (key, value) in items {
            self.check_key(key, Operation::SetMany)?;
            let entry = self.entry(key, value, Operation::SetMany, None, || {
                Arc::new(value.clone()) as Object
            })?;
            encoded.push((*key, entry));
        }
        if self.inner.in_process {
            for (key, entry) in encoded {
                self.inner.backend.set_entry(key, entry, ttl).await?;
            }
            return Ok(());
        }
        let raw: Vec<(&str, lexicache_core::Bytes)> = encoded
            .into_iter()
            .map(|(k, e)| (k, e.into_bytes()))
            .collect();
        self.inner.backend.set_many(&raw, ttl).await
    }

    /// Removes `key`, returning whether it existed; `false` on a failure (logged and counted).
    pub async fn delete(&self, key: &str) -> bool {
        self.try_delete(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Delete, key, &e))
    }

    /// Removes `key`, returning whether it existed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`] or the backend's error.
    pub async fn try_delete(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Delete)?;
        self.inner.backend.delete(key).await
    }

    /// Removes `keys`, returning how many existed; `0` on a failure (logged and counted).
    pub async fn delete_many(&self, keys: &[&str]) -> u64 {
        match self.try_delete_many(keys).await {
            Ok(n) => n,
            Err(e) => self.degrade_batch(Operation::DeleteMany, keys.len(), &e),
        }
    }

    /// Removes `keys`, returning how many existed.
    ///
    /// # Errors
    ///
    /// The first invalid key or the backend's error.
    pub async fn try_delete_many(&self, keys: &[&str]) -> Result<u64> {
        for key in keys {
            self.check_key(key, Operation::DeleteMany)?;
        }
        self.inner.backend.delete_many(keys).await
    }

    /// Removes every key of this service's namespace matching `glob`, returning how many.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] where the backend cannot delete by pattern, or its error.
    pub async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.inner.backend.delete_pattern(glob).await
    }

    /// Lists at most `limit` keys of this service's namespace matching `glob`, relative to the
    /// namespace. An operator's tool: remote backends scan to answer it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] where the backend cannot list keys, or its error.
    pub async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.inner.backend.keys(glob, limit).await
    }

    /// Removes every key of this service's namespace, and only those.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] where the backend cannot clear, or its error.
    pub async fn clear(&self) -> Result<()> {
        self.inner.backend.clear().await
    }

    // ----- observability -------------------------------------------------------------------

    /// A snapshot of this service's metrics: what the metrics layer recorded (if on) plus the
    /// service's own errors.
    #[must_use]
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Resets the snapshot's counters (the `metrics` facade's counters are monotonic).
    pub fn reset_metrics(&self) {
        self.inner.metrics.reset();
    }

    /// Checks the backend within `timeout`.
    pub async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.backend.health_check(timeout).await
    }

    /// A receiver of this service's hit, miss and error events, or `None` when the service was
    /// built without [`events`](CacheServiceBuilder::events).
    #[must_use]
    pub fn subscribe(&self) -> Option<broadcast::Receiver<CacheEvent>> {
        self.inner.events.as_ref().map(EventBus::subscribe)
    }

    /// The layer stack this service calls.
    #[must_use]
    pub fn backend(&self) -> &SharedBackend {
        &self.inner.backend
    }

    /// The service's name (its label in metrics and logs).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    // ----- internals -----------------------------------------------------------------------

    #[inline]
    pub(crate) fn check_key(&self, key: &str, op: Operation) -> Result<()> {
        self.inner
            .key_rules
            .check(key, &self.inner.name, op)
            .map_err(|e| self.local_error(op, e))
    }

    /// Counts an error the service found itself (the metrics layer counts backend errors).
    pub(crate) fn local_error(&self, op: Operation, err: Error) -> Error {
        self.inner.metrics.count(op, Outcome::Error, 1);
        err
    }

    /// Reads `key` as a `T`: the kept object when it is a `T`, else the decoded bytes. An entry
    /// past the logical expiry of its early-refresh frame is a miss.
    #[inline]
    pub(crate) async fn lookup<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        match self.lookup_framed(key).await? {
            Some((_, Some(meta))) if meta.is_expired(self.inner.clock.now_ms()) => Ok(None),
            found => Ok(found.map(|(value, _)| value)),
        }
    }

    /// Reads `key` as a `T` with the metadata of its early-refresh frame, if it has one,
    /// whether or not it is logically expired.
    #[inline]
    pub(crate) async fn lookup_framed<T>(
        &self,
        key: &str,
    ) -> Result<Option<(Arc<T>, Option<FrameMeta>)>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let Some(entry) = self.inner.backend.get_entry(key).await? else {
            return Ok(None);
        };
        // Most entries have no frame: two byte comparisons for each kind and on to the object
        // or decoder. A tagged entry is live only while every tag holds its token.
        let mut body = 0;
        if let Some((frame, rest)) = tags::unframe(&self.inner.name, entry.bytes())
            .map_err(|e| self.local_error(Operation::Get, e))?
        {
            if !self.tags_current(&frame).await? {
                return Ok(None);
            }
            body = entry.bytes().len() - rest.len();
        }
        let (meta, body) = match refresh::unframe(&self.inner.name, &entry.bytes()[body..])
            .map_err(|e| self.local_error(Operation::Get, e))?
        {
            Some((meta, _)) => (Some(meta), body + refresh::FRAME_LEN),
            None => (None, body),
        };
        match entry.into_object_as::<T>() {
            Ok(object) => Ok(Some((object, meta))),
            Err(entry) => {
                let value: Arc<T> =
                    Arc::new(self.decode(key, &entry.bytes()[body..], Operation::Get)?);
                if self.inner.keeps_objects {
                    // Bytes in a store that keeps objects (a two-level cache's copy of an L2
                    // entry): keep the decoded value, so the next hits do not decode.
                    self.inner
                        .backend
                        .keep_object(key, entry.bytes(), value.clone() as Object);
                }
                Ok(Some((value, meta)))
            }
        }
    }

    /// Decodes bytes read in a batch: framed or not, `None` when logically expired. Tags must
    /// have been checked already ([`tags_current_batch`](Self::tags_current_batch)).
    fn decode_live<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        op: Operation,
    ) -> Result<Option<T>> {
        let bytes =
            match tags::unframe(&self.inner.name, bytes).map_err(|e| self.local_error(op, e))? {
                Some((_, rest)) => rest,
                None => bytes,
            };
        match refresh::unframe(&self.inner.name, bytes).map_err(|e| self.local_error(op, e))? {
            Some((meta, _)) if meta.is_expired(self.inner.clock.now_ms()) => Ok(None),
            Some((_, payload)) => self.decode(key, payload, op).map(Some),
            None => self.decode(key, bytes, op).map(Some),
        }
    }

    pub(crate) async fn lookup_or_degrade<T>(&self, key: &str) -> Option<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.lookup(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Get, key, &e))
    }

    /// Stores a loaded value, behind an early-refresh frame when `meta` is given.
    pub(crate) async fn store<T>(
        &self,
        key: &str,
        value: &Arc<T>,
        ttl: Option<Duration>,
        meta: Option<&FrameMeta>,
    ) -> Result<()>
    where
        T: Serialize + Send + Sync + 'static,
    {
        self.store_tagged(key, value, ttl, meta, None).await
    }

    /// [`store`](Self::store), behind a tag frame when `tags` is given (and not empty), with
    /// the TTL then capped at the tag TTL.
    pub(crate) async fn store_tagged<T>(
        &self,
        key: &str,
        value: &Arc<T>,
        ttl: Option<Duration>,
        meta: Option<&FrameMeta>,
        tags: Option<&TagSnapshot>,
    ) -> Result<()>
    where
        T: Serialize + Send + Sync + 'static,
    {
        let tags = tags.filter(|t| !t.is_empty());
        let payload = self.encode_payload(key, &**value, Operation::Set)?;
        let entry = self.assemble(payload, meta, tags, Operation::Set, || {
            value.clone() as Object
        })?;
        let ttl = if tags.is_some() {
            self.tagged_ttl(ttl)
        } else {
            ttl
        };
        self.inner.backend.set_entry(key, entry, ttl).await
    }

    /// Encodes `value` into an entry (behind a frame holding `meta`, if given), with its object
    /// when the stack keeps objects.
    fn entry<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        op: Operation,
        meta: Option<&FrameMeta>,
        object: impl FnOnce() -> Object,
    ) -> Result<CacheValue> {
        let payload = self.encode_payload(key, value, op)?;
        self.assemble(payload, meta, None, op, object)
    }

    /// The serializer's bytes for `value`.
    pub(crate) fn encode_payload<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        op: Operation,
    ) -> Result<lexicache_core::Bytes> {
        self.inner
            .serializer
            .encode(key, value)
            .map_err(|e| self.local_error(op, e.or_operation(Operation::Serialize)))
    }

    /// Fails when an entry of `len` bytes is over the stack's largest value.
    pub(crate) fn check_size(&self, len: usize, op: Operation) -> Result<()> {
        match self.inner.max_value_size {
            Some(max) if len > max => {
                let err =
                    Error::value_too_large(self.inner.name.clone(), len, max).with_operation(op);
                Err(self.local_error(op, err))
            }
            _ => Ok(()),
        }
    }

    /// An entry from the serializer's bytes: behind the early-refresh frame holding `meta` and
    /// the tag frame holding `tags` (outermost), each if given, with its object when the stack
    /// keeps objects.
    pub(crate) fn assemble(
        &self,
        payload: lexicache_core::Bytes,
        meta: Option<&FrameMeta>,
        tags: Option<&TagSnapshot>,
        op: Operation,
        object: impl FnOnce() -> Object,
    ) -> Result<CacheValue> {
        let mut bytes = payload;
        if let Some(meta) = meta {
            bytes = refresh::frame(meta, &bytes).into();
        }
        if let Some(tags) = tags {
            let mut framed = tags.frame();
            framed.extend_from_slice(&bytes);
            bytes = framed.into();
        }
        self.check_size(bytes.len(), op)?;
        Ok(if self.inner.keeps_objects {
            // `Bytes` made from a `Vec` allocates its shared reference count lazily, on its first
            // clone. Left alone, that is the first cache hit, which puts the count far from the
            // entry's other allocations, and every later hit pays a cache miss on it. Cloning
            // now allocates it beside them.
            drop(bytes.clone());
            CacheValue::with_object(bytes, object())
        } else {
            CacheValue::from_bytes(bytes)
        })
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8], op: Operation) -> Result<T> {
        self.inner
            .serializer
            .decode(key, bytes)
            .map_err(|e| self.local_error(op, e.or_operation(Operation::Deserialize)))
    }

    /// Logs a failure of a degrading call and returns the call's default.
    #[cold]
    pub(crate) fn degrade<D: Default>(&self, op: Operation, key: &str, err: &Error) -> D {
        tracing::warn!(
            service = %self.inner.name,
            operation = %op,
            key = %key_hash(key),
            kind = %err.kind(),
            error = %err,
            "cache call failed; returning the default"
        );
        D::default()
    }

    #[cold]
    fn degrade_batch<D: Default>(&self, op: Operation, keys: usize, err: &Error) -> D {
        tracing::warn!(
            service = %self.inner.name,
            operation = %op,
            keys,
            kind = %err.kind(),
            error = %err,
            "cache call failed; returning the default"
        );
        D::default()
    }
}
