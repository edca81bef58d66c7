//! [`Namespaced`]: prefixes every key, so tenants and applications never see each other's keys.

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, glob, BackendStats, Bytes, CacheBackend, CacheValue, Capabilities, Error, Expiry,
    FencingToken, HealthCheckResult, KeyRules, LockOwner, LockStore, Object, Operation, Result,
    SharedLockStore,
};

/// Full keys up to this many bytes are built on the stack instead of the heap.
const INLINE_KEY: usize = 128;

/// Prefixes every key with a namespace, so tenants and applications never see each other's keys.
///
/// The prefix is used literally: `"tenant-a:"` turns `user:1` into `tenant-a:user:1`. User keys
/// are checked with [`KeyRules`] whose maximum is the inner backend's minus the prefix, and the
/// inner backend checks the full key. Globs given to
/// [`delete_pattern`](CacheBackend::delete_pattern) are joined to the
/// [escaped](lexicache_core::glob::escape) prefix, so a tenant's pattern (even `*`) can only
/// match keys of its own namespace; [`clear`](CacheBackend::clear) deletes `prefix*` the same
/// way, and is [`Unsupported`](lexicache_core::ErrorKind::Unsupported) when the inner backend
/// cannot delete by pattern. The inner backend's [lock store](CacheBackend::lock_store) is
/// namespaced the same way: every lock resource gets the prefix.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_core::{Bytes, CacheBackend};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::Namespaced;
///
/// let store = MemoryBackend::new();
/// let a = Namespaced::new(store.clone(), "tenant-a:");
/// let b = Namespaced::new(store.clone(), "tenant-b:");
/// a.set("user:1", Bytes::from_static(b"alice"), None).await?;
/// b.set("user:1", Bytes::from_static(b"bob"), None).await?;
/// assert_eq!(b.delete_pattern("*").await?, 1);
/// assert_eq!(a.get("user:1").await?.as_deref(), Some(&b"alice"[..]));
/// assert_eq!(store.get("tenant-a:user:1").await?.as_deref(), Some(&b"alice"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Namespaced<B> {
    inner: B,
    prefix: String,
    /// The prefix with glob metacharacters escaped, ready to join to a user's pattern.
    glob_prefix: String,
    rules: KeyRules,
}

/// The key prefix of the namespace called `name`: `name` with at most one trailing `:` removed,
/// percent-encoded, then `:`.
///
/// The encoding makes namespaces prefix-free, so no two (namespace, key) pairs share a storage
/// key: the encoded name holds no `:`, so the first `:` of a full key ends its namespace.
/// Percent-encoded are `%`, the separator `:`, glob metacharacters (`* ? [ ] \`), Redis
/// Cluster hash-tag braces (`{ }`, so a tenant cannot pin every key to one slot), space and
/// control characters. Plain names keep their look: `app` and `app:` both give `app:`.
///
/// ```
/// use lexicache_service::layers::namespace_prefix;
///
/// assert_eq!(namespace_prefix("tenant-a"), "tenant-a:");
/// assert_eq!(namespace_prefix("tenant-a:"), "tenant-a:");
/// // ("a:b", "c") and ("a", "b:c") no longer meet at "a:b:c".
/// assert_eq!(format!("{}c", namespace_prefix("a:b")), "a%3Ab:c");
/// assert_eq!(format!("{}b:c", namespace_prefix("a")), "a:b:c");
/// assert_eq!(namespace_prefix("{t}*"), "%7Bt%7D%2A:");
/// ```
#[must_use]
pub fn namespace_prefix(name: &str) -> String {
    let name = name.strip_suffix(':').unwrap_or(name);
    let mut prefix = String::with_capacity(name.len() + 1);
    for c in name.chars() {
        match c {
            '%' | ':' | '*' | '?' | '[' | ']' | '\\' | '{' | '}' | ' ' => {
                prefix.push_str(&format!("%{:02X}", u32::from(c)));
            }
            c if c.is_control() => {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    prefix.push_str(&format!("%{b:02X}"));
                }
            }
            c => prefix.push(c),
        }
    }
    prefix.push(':');
    prefix
}

impl<B: CacheBackend> Namespaced<B> {
    /// Wraps `inner`, prefixing every key with the prefix of the namespace called `name`
    /// ([`namespace_prefix`]), as [`CacheServiceBuilder::namespace`](crate::CacheServiceBuilder::namespace)
    /// does: no two namespaces' keys can meet.
    pub fn named(inner: B, name: &str) -> Self {
        Self::new(inner, namespace_prefix(name))
    }

    /// Wraps `inner`, prefixing every key with `prefix`, used literally.
    ///
    /// Literal prefixes can overlap: `"a:"` with key `b:c` and `"a:b:"` with key `c` are both
    /// `a:b:c`. Use [`named`](Self::named) for tenants or any name that comes from data.
    pub fn new(inner: B, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let max = inner
            .capabilities()
            .max_key_len
            .saturating_sub(prefix.len());
        Self {
            glob_prefix: glob::escape(&prefix),
            rules: KeyRules::new().max_len(max),
            prefix,
            inner,
        }
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn check(&self, key: &str, op: Operation) -> Result<()> {
        self.rules.validate(key).map_err(|e| self.key_error(e, op))
    }

    fn key_error(&self, err: Error, op: Operation) -> Error {
        err.with_backend(self.inner.name().to_owned())
            .with_operation(op)
    }

    fn full(&self, key: &str, op: Operation) -> Result<FullKey> {
        self.check(key, op)?;
        Ok(FullKey::new(&self.prefix, key))
    }

    fn full_all<'a>(
        &self,
        keys: impl Iterator<Item = &'a str>,
        op: Operation,
    ) -> Result<Vec<String>> {
        keys.map(|k| {
            self.check(k, op)?;
            let mut full = String::with_capacity(self.prefix.len() + k.len());
            full.push_str(&self.prefix);
            full.push_str(k);
            Ok(full)
        })
        .collect()
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for Namespaced<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        caps.max_key_len = caps.max_key_len.saturating_sub(self.prefix.len());
        // `clear` is a pattern delete of the prefix, so it works exactly when patterns do.
        caps.clear = caps.pattern_delete;
        caps
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let full = self.full(key, Operation::Get)?;
        self.inner.get(full.as_str()).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        let full = self.full(key, Operation::Get)?;
        self.inner.get_with_ttl(full.as_str()).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let full = self.full(key, Operation::Set)?;
        self.inner.set(full.as_str(), value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let full = self.full(key, Operation::Delete)?;
        self.inner.delete(full.as_str()).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let full = self.full(key, Operation::Set)?;
        self.inner.set_if_absent(full.as_str(), value, ttl).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let full = self.full(key, Operation::Exists)?;
        self.inner.exists(full.as_str()).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let full = self.full_all(keys.iter().copied(), Operation::GetMany)?;
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        self.inner.get_many(&refs).await
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        let full = self.full_all(keys.iter().copied(), Operation::GetMany)?;
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        self.inner.get_many_with_ttl(&refs).await
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let full = self.full_all(items.iter().map(|(k, _)| *k), Operation::SetMany)?;
        let prefixed: Vec<(&str, Bytes)> = full
            .iter()
            .zip(items)
            .map(|(k, (_, v))| (k.as_str(), v.clone()))
            .collect();
        self.inner.set_many(&prefixed, ttl).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let full = self.full_all(keys.iter().copied(), Operation::DeleteMany)?;
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        self.inner.delete_many(&refs).await
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let scoped = format!("{}{pattern}", self.glob_prefix);
        self.inner.delete_pattern(&scoped).await
    }

    async fn clear(&self) -> Result<()> {
        if !self.inner.capabilities().pattern_delete {
            return Err(
                Error::unsupported(self.inner.name().to_owned(), Operation::Clear).with_message(
                    "clearing a namespace needs a backend that can delete by pattern",
                ),
            );
        }
        let scoped = format!("{}*", self.glob_prefix);
        self.inner.delete_pattern(&scoped).await.map(|_| ())
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        let scoped = format!("{}{glob}", self.glob_prefix);
        let mut keys = self.inner.keys(&scoped, limit).await?;
        // The scoped glob only matches keys under the prefix, so every key has it.
        for key in &mut keys {
            key.drain(..self.prefix.len());
        }
        Ok(keys)
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner.health_check(timeout).await
    }

    /// The inner backend's figures, unchanged: they cover its whole store or namespace (see
    /// [`BackendStats::entries_scope`]), of which this namespace is a part.
    async fn stats(&self) -> Result<BackendStats> {
        self.inner.stats().await
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        let full = self.full(key, Operation::Get)?;
        self.inner.get_entry(full.as_str()).await
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        let full = self.full(key, Operation::Set)?;
        self.inner.set_entry(full.as_str(), value, ttl).await
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        if let Ok(full) = self.full(key, Operation::Get) {
            self.inner.keep_object(full.as_str(), bytes, object);
        }
    }

    fn lock_store(&self) -> Option<SharedLockStore> {
        let inner = self.inner.lock_store()?;
        Some(namespaced_lock_store(inner, &self.prefix))
    }
}

/// `inner` with every resource prefixed by `prefix`, as [`Namespaced`] prefixes keys, so two
/// namespaces never contend for (or release) each other's locks.
pub(crate) fn namespaced_lock_store(inner: SharedLockStore, prefix: &str) -> SharedLockStore {
    if prefix.is_empty() {
        return inner;
    }
    Arc::new(NamespacedLockStore {
        inner,
        prefix: prefix.to_owned(),
    })
}

#[derive(Debug)]
struct NamespacedLockStore {
    inner: SharedLockStore,
    prefix: String,
}

impl NamespacedLockStore {
    fn full(&self, resource: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + resource.len());
        full.push_str(&self.prefix);
        full.push_str(resource);
        full
    }
}

#[async_trait]
impl LockStore for NamespacedLockStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.inner.acquire(&self.full(resource), owner, ttl).await
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.inner.release(&self.full(resource), owner).await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.inner.extend(&self.full(resource), owner, ttl).await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.inner.is_locked(&self.full(resource)).await
    }
}

/// A prefixed key, on the stack when it is short: most namespaced calls then allocate nothing
/// beyond the boxed future they already need.
enum FullKey {
    Inline { buf: [u8; INLINE_KEY], len: usize },
    Heap(String),
}

impl FullKey {
    fn new(prefix: &str, key: &str) -> Self {
        let len = prefix.len() + key.len();
        if len > INLINE_KEY {
            let mut full = String::with_capacity(len);
            full.push_str(prefix);
            full.push_str(key);
            return Self::Heap(full);
        }
        let mut buf = [0u8; INLINE_KEY];
        buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
        buf[prefix.len()..len].copy_from_slice(key.as_bytes());
        Self::Inline { buf, len }
    }

    fn as_str(&self) -> &str {
        match self {
            // Two `str`s joined end to end are valid UTF-8, so the check cannot fail; it is a
            // few nanoseconds on a short key, cheaper than an allocation.
            Self::Inline { buf, len } => match std::str::from_utf8(&buf[..*len]) {
                Ok(s) => s,
                Err(_) => unreachable!("two str slices joined are valid UTF-8"),
            },
            Self::Heap(s) => s,
        }
    }
}

/// What every layer's test of the TTL reads checks, written once.
#[cfg(test)]
pub(super) mod ttl_reads {
    use std::time::Duration;

    use lexicache_core::{Bytes, CacheBackend, Expiry};

    /// Writes `ttl` (for 10 s) and `forever` (no TTL) through `cache` over a memory backend,
    /// lets 4 s of tokio's paused clock pass, and asserts that `get_with_ttl` and
    /// `get_many_with_ttl` through `cache` report the memory backend's expiries: 6 s left and
    /// never.
    pub(in crate::layers) async fn assert_forwarded(cache: &impl CacheBackend) {
        let v = Bytes::from_static(b"v");
        cache
            .set("ttl", v.clone(), Some(Duration::from_secs(10)))
            .await
            .unwrap();
        cache.set("forever", v.clone(), None).await.unwrap();
        tokio::time::advance(Duration::from_secs(4)).await;

        let six = Expiry::In(Duration::from_secs(6));
        assert_eq!(
            cache.get_with_ttl("ttl").await.unwrap(),
            Some((v.clone(), six))
        );
        assert_eq!(
            cache
                .get_many_with_ttl(&["ttl", "absent", "forever"])
                .await
                .unwrap(),
            vec![Some((v.clone(), six)), None, Some((v, Expiry::Never))]
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lexicache_core::{Bytes, CacheBackend, Expiry};
    use lexicache_memory::MemoryBackend;

    use super::{ttl_reads, FullKey, Namespaced};

    #[test]
    fn short_full_keys_are_inline_and_long_ones_on_the_heap() {
        let short = FullKey::new("ns:", "user:1");
        assert!(matches!(short, FullKey::Inline { .. }));
        assert_eq!(short.as_str(), "ns:user:1");
        let long_key = "k".repeat(200);
        let long = FullKey::new("ns:", &long_key);
        assert!(matches!(long, FullKey::Heap(_)));
        assert_eq!(long.as_str(), format!("ns:{long_key}"));
    }

    #[test]
    fn multibyte_keys_join_intact() {
        assert_eq!(FullKey::new("é:", "日本").as_str(), "é:日本");
    }

    #[tokio::test(start_paused = true)]
    async fn ttl_reads_map_keys_into_the_namespace_and_report_the_inner_expiry() {
        let store = MemoryBackend::new();
        let ns = Namespaced::new(store.clone(), "ns:");
        // A key of the same name outside the namespace is not what the layer reads.
        store
            .set("ttl", Bytes::from_static(b"outside"), None)
            .await
            .unwrap();
        ttl_reads::assert_forwarded(&ns).await;
        assert_eq!(
            store.get_with_ttl("ns:ttl").await.unwrap(),
            Some((Bytes::from_static(b"v"), Expiry::In(Duration::from_secs(6))))
        );

        let too_long = "k".repeat(store.capabilities().max_key_len);
        assert!(ns.get_with_ttl(&too_long).await.is_err());
        assert!(ns.get_many_with_ttl(&["ok", &too_long]).await.is_err());
    }
}
