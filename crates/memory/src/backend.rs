//! [`MemoryBackend`]: the [`CacheBackend`] implementation over a shared moka store.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexicache_core::glob::Pattern;
use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheValue, Capabilities, Error, EventBus,
    Expiry, HealthCheckResult, KeyRules, Object, Operation, Result,
};

use crate::builder::MemoryBackendBuilder;
use moka::ops::compute::Op;

use crate::entry::Entry;

/// The store shared by every namespace made with [`MemoryBackend::with_prefix`].
pub(crate) struct Shared {
    pub(crate) cache: moka::sync::Cache<String, Entry>,
    pub(crate) name: Arc<str>,
    pub(crate) events: EventBus,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) key_rules: KeyRules,
    pub(crate) max_value_size: usize,
    /// Entries evicted for room (moka's `Size` cause), counted by the eviction listener.
    pub(crate) evictions: Arc<AtomicU64>,
    /// Whether the bound is in bytes (a weigher) rather than entries.
    pub(crate) bounded_by_bytes: bool,
}

/// An in-process cache backend on moka. Cheap to clone; clones share the store.
///
/// It uses moka's synchronous cache: every operation completes without awaiting, so the async
/// methods never yield, and a hit costs no more than a moka lookup plus an expiry check.
///
/// # Cancel safety
///
/// Every method does its work in one poll, so dropping a future either runs the operation
/// completely (if it was polled) or not at all.
#[derive(Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
    prefix: Arc<str>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("name", &self.shared.name)
            .field("prefix", &self.prefix)
            .field("entries", &self.shared.cache.entry_count())
            .field("default_ttl", &self.shared.default_ttl)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

thread_local! {
    /// Reused buffer for prefixed lookup keys, so reads through a namespace do not allocate.
    static KEY_BUF: RefCell<String> = RefCell::new(String::with_capacity(128));
}

impl MemoryBackend {
    /// A backend with the defaults: name `"memory"`, no prefix, at most
    /// [`DEFAULT_MAX_ENTRIES`](crate::DEFAULT_MAX_ENTRIES) entries, no default TTL.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for bounds, TTLs, namespace and events.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::default()
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, prefix: String) -> Self {
        Self {
            shared,
            prefix: Arc::from(prefix),
        }
    }

    /// Another namespace over the same store: its keys are prefixed with `prefix` (instead of
    /// this backend's prefix), and its `clear` and `delete_pattern` touch only them.
    ///
    /// End the prefix with a separator such as `:`: namespaces are plain prefixes, so
    /// `tenant1` would otherwise also cover `tenant10`'s keys.
    #[must_use]
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self::from_parts(self.shared.clone(), prefix.into())
    }

    /// The prefix of this namespace.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bus that eviction events go to.
    #[must_use]
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// Entries in the whole store (every namespace). Approximate until pending moka
    /// housekeeping runs; see [`run_pending_tasks`](Self::run_pending_tasks).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.shared.cache.entry_count()
    }

    /// The weighted size of the whole store: bytes when bounded by bytes, else entries.
    #[must_use]
    pub fn weighted_size(&self) -> u64 {
        self.shared.cache.weighted_size()
    }

    /// [`get_entry`](CacheBackend::get_entry) without a future: the memory backend never
    /// waits, so a caller that already runs in a future (a two-level cache's L1 hit) saves the
    /// boxed future of the trait call.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`](lexicache_core::ErrorKind::KeyInvalid), as `get_entry`.
    #[inline]
    pub fn get_entry_now(&self, key: &str) -> Result<Option<CacheValue>> {
        self.check_key(key, Operation::Get)?;
        Ok(self.lookup(key))
    }

    /// Runs moka's pending housekeeping now: evictions, expirations and their events.
    pub fn run_pending_tasks(&self) {
        self.shared.cache.run_pending_tasks();
    }

    fn check_key(&self, key: &str, op: Operation) -> Result<()> {
        self.shared.key_rules.check(key, &self.shared.name, op)
    }

    fn check_value(&self, len: usize, op: Operation) -> Result<()> {
        if len > self.shared.max_value_size {
            return Err(Error::value_too_large(
                self.shared.name.to_string(),
                len,
                self.shared.max_value_size,
            )
            .with_operation(op));
        }
        Ok(())
    }

    /// Runs `f` with the full (prefixed) key, without allocating.
    #[inline]
    fn with_key<R>(&self, key: &str, f: impl FnOnce(&str) -> R) -> R {
        if self.prefix.is_empty() {
            return f(key);
        }
        KEY_BUF.with(|buf| {
            // `try_borrow_mut` keeps a re-entrant call (which moka never makes) from panicking.
            match buf.try_borrow_mut() {
                Ok(mut b) => {
                    b.clear();
                    b.push_str(&self.prefix);
                    b.push_str(key);
                    f(&b)
                }
                Err(_) => f(&self.full_key(key)),
            }
        })
    }

    fn full_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    fn lookup(&self, key: &str) -> Option<CacheValue> {
        self.with_key(key, |k| self.shared.cache.get(k))
            .filter(Entry::is_live)
            .map(|e| e.value)
    }

    /// The live entry's bytes and remaining time on tokio's clock.
    fn lookup_with_ttl(&self, key: &str) -> Option<(Bytes, Expiry)> {
        let entry = self
            .with_key(key, |k| self.shared.cache.get(k))
            .filter(Entry::is_live)?;
        let expiry = match entry.expires_at {
            None => Expiry::Never,
            Some(at) => Expiry::In(at.saturating_duration_since(tokio::time::Instant::now())),
        };
        Some((entry.value.into_bytes(), expiry))
    }

    /// Removes `key`, returning whether a live entry was there.
    fn remove(&self, key: &str) -> bool {
        self.with_key(key, |k| self.shared.cache.remove(k))
            .is_some_and(|e| e.is_live())
    }

    fn store(&self, key: &str, value: CacheValue, ttl: Option<Duration>) {
        match ttl.or(self.shared.default_ttl) {
            Some(ttl) if ttl.is_zero() => {
                self.with_key(key, |k| self.shared.cache.invalidate(k));
            }
            ttl => self
                .shared
                .cache
                .insert(self.full_key(key), Entry::new(value, ttl)),
        }
    }

    /// Writes `value` unless a live entry is there, returning whether it wrote.
    ///
    /// moka's `and_compute_with` runs the closure under the key's lock, so of racing callers
    /// exactly one sees the key absent. An entry past its TTL on tokio's clock that moka has
    /// not evicted yet counts as absent and is replaced.
    fn insert_if_absent(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> bool {
        let ttl = ttl.or(self.shared.default_ttl);
        let mut wrote = false;
        let _ = self
            .shared
            .cache
            .entry(self.full_key(key))
            .and_compute_with(|current| {
                if current.is_some_and(|e| e.value().is_live()) {
                    return Op::Nop;
                }
                wrote = true;
                match ttl {
                    // Written and expired at once: nothing to keep, and a dead entry goes.
                    Some(ttl) if ttl.is_zero() => Op::Remove,
                    ttl => Op::Put(Entry::new(value, ttl)),
                }
            });
        wrote
    }

    /// Full keys of this namespace whose unprefixed part matches `pattern`.
    fn matching_keys(&self, pattern: Option<&Pattern>) -> Vec<Arc<String>> {
        self.shared
            .cache
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(&*self.prefix)?;
                match pattern {
                    Some(p) if !p.matches(rest) => None,
                    _ => Some(k),
                }
            })
            .collect()
    }

    /// Live entries of this namespace and the sum of their weights (key, value and overhead).
    fn namespace_usage(&self) -> (u64, u64) {
        self.shared
            .cache
            .iter()
            .filter(|(k, e)| k.starts_with(&*self.prefix) && e.is_live())
            .fold((0, 0), |(n, bytes), (k, e)| {
                (n + 1, bytes + u64::from(Entry::weight(&k, &e.value)))
            })
    }

    fn remove_full(&self, keys: &[Arc<String>]) -> u64 {
        keys.iter()
            .filter(|k| {
                self.shared
                    .cache
                    .remove(k.as_str())
                    .is_some_and(|e| e.is_live())
            })
            .count() as u64
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.pattern_delete = true;
        caps.clear = true;
        caps.list_keys = true;
        caps.native_ttl = true;
        caps.native_batch = true;
        caps.in_process = true;
        caps.keeps_objects = true;
        caps.tokio_clock = true;
        caps.max_key_len = self.shared.key_rules.max_key_len();
        caps.max_value_size = Some(self.shared.max_value_size);
        caps
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.check_key(key, Operation::Get)?;
        Ok(self.lookup(key).map(CacheValue::into_bytes))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        self.check_key(key, Operation::Get)?;
        Ok(self.lookup_with_ttl(key))
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        for k in keys {
            self.check_key(k, Operation::GetMany)?;
        }
        Ok(keys.iter().map(|k| self.lookup_with_ttl(k)).collect())
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.set_entry(key, CacheValue::from_bytes(value), ttl)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Delete)?;
        Ok(self.remove(key))
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.len(), Operation::Set)?;
        Ok(self.insert_if_absent(key, CacheValue::from_bytes(value), ttl))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Exists)?;
        Ok(self.lookup(key).is_some())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        for k in keys {
            self.check_key(k, Operation::GetMany)?;
        }
        Ok(keys
            .iter()
            .map(|k| self.lookup(k).map(CacheValue::into_bytes))
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        // Check everything first, so an invalid item means nothing is written.
        for (k, v) in items {
            self.check_key(k, Operation::SetMany)?;
            self.check_value(v.len(), Operation::SetMany)?;
        }
        for (k, v) in items {
            self.store(k, CacheValue::from_bytes(v.clone()), ttl);
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        for k in keys {
            self.check_key(k, Operation::DeleteMany)?;
        }
        // A duplicate key finds nothing the second time, so each existing key counts once.
        Ok(keys.iter().filter(|k| self.remove(k)).count() as u64)
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let pattern = Pattern::new(glob);
        Ok(self.remove_full(&self.matching_keys(Some(&pattern))))
    }

    async fn clear(&self) -> Result<()> {
        if self.prefix.is_empty() {
            self.shared.cache.invalidate_all();
        } else {
            self.remove_full(&self.matching_keys(None));
        }
        Ok(())
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        let pattern = Pattern::new(glob);
        Ok(self
            .shared
            .cache
            .iter()
            .filter(|(_, entry)| entry.is_live())
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(&*self.prefix)?;
                pattern.matches(rest).then(|| rest.to_owned())
            })
            .take(limit)
            .collect())
    }

    async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
        let started = Instant::now();
        // A real lookup through the store, so a wedged store would show in the latency.
        let _ = self.shared.cache.contains_key("lexicache:health-probe");
        HealthCheckResult::healthy(self.shared.name.to_string(), started.elapsed())
            .with_detail("entries", self.shared.cache.entry_count().to_string())
            .with_detail(
                "weighted_size",
                self.shared.cache.weighted_size().to_string(),
            )
            .with_detail("prefix", self.prefix.to_string())
    }

    /// Counts this namespace's live entries and their bytes by walking the store (an operator's
    /// call, linear in the store's size), after running moka's pending housekeeping.
    ///
    /// - `entries` (scope `"namespace"`): live entries under this backend's prefix; the whole
    ///   store when the prefix is empty;
    /// - `memory_bytes`: their weight: key, value and a 64-byte overhead each;
    /// - `evictions`: entries the whole store evicted for room (not expired, not deleted);
    /// - `hits`, `misses`: `None` (the store does not count them; `CacheService` metrics do);
    /// - `extra`: `store_entries` (every namespace) and the bound (`max_entries` or
    ///   `max_bytes`).
    async fn stats(&self) -> Result<BackendStats> {
        let cache = &self.shared.cache;
        cache.run_pending_tasks();
        let (entries, bytes) = self.namespace_usage();
        let mut stats = BackendStats {
            entries: Some(entries),
            entries_scope: Some("namespace"),
            memory_bytes: Some(bytes),
            evictions: Some(self.shared.evictions.load(Ordering::Relaxed)),
            ..BackendStats::default()
        };
        stats
            .extra
            .insert("store_entries".into(), cache.entry_count().to_string());
        if let Some(max) = cache.policy().max_capacity() {
            let bound = if self.shared.bounded_by_bytes {
                "max_bytes"
            } else {
                "max_entries"
            };
            stats.extra.insert(bound.into(), max.to_string());
        }
        Ok(stats)
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        self.check_key(key, Operation::Get)?;
        Ok(self.lookup(key))
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        if self.check_key(key, Operation::Get).is_err() {
            return;
        }
        let _ = self
            .shared
            .cache
            .entry(self.full_key(key))
            .and_compute_with(|current| match current {
                // Only the very entry that was read: a newer write keeps its own value.
                Some(e) if e.value().is_live() && e.value().value.bytes() == bytes => {
                    let entry = e.into_value();
                    Op::Put(Entry {
                        value: CacheValue::with_object(entry.value.into_bytes(), object),
                        expires_at: entry.expires_at,
                    })
                }
                _ => Op::Nop,
            });
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.bytes().len(), Operation::Set)?;
        self.store(key, value, ttl);
        Ok(())
    }
}
