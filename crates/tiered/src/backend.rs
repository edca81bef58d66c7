//! [`TieredBackend`]: an in-process L1 over any L2.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheValue, Capabilities, Expiry,
    HealthCheckResult, HealthStatus, Object, Result, SharedBackend, SharedLockStore,
};
use lexicache_memory::MemoryBackend;
use tokio::task::JoinHandle;

use crate::builder::TieredBackendBuilder;
use crate::gate::{Gate, Snapshot};
use crate::message::Op;
use crate::sync::Sync;

/// What the tasks and the backend share.
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) l1: MemoryBackend,
    pub(crate) l2: SharedBackend,
    pub(crate) l1_ttl: Duration,
    pub(crate) gate: Gate,
    pub(crate) sync: Option<Sync>,
}

impl Shared {
    /// Whether L1 may be served now.
    #[inline]
    fn serving(&self) -> bool {
        self.sync.as_ref().is_none_or(Sync::serving)
    }

    /// Drops every L1 entry, and any fill in flight.
    pub(crate) async fn clear_l1(&self) {
        if let Some(sync) = &self.sync {
            sync.counters.full_clears.fetch_add(1, Ordering::Relaxed);
        }
        self.gate
            .invalidate_all(async {
                let _ = self.l1.clear().await;
            })
            .await;
    }

    /// Drops `key` from L1, and any fill of it in flight.
    pub(crate) async fn evict(&self, key: &str) {
        self.gate
            .invalidate_key(key, async {
                let _ = self.l1.delete(key).await;
            })
            .await;
    }

    /// Drops every L1 key matching `glob` (all of L1 if L1 cannot match it), and every fill
    /// in flight.
    pub(crate) async fn evict_pattern(&self, glob: &str) {
        self.gate
            .invalidate_all(async {
                if self.l1.delete_pattern(glob).await.is_err() {
                    let _ = self.l1.clear().await;
                }
            })
            .await;
    }

    /// Copies an L2 read into L1 for `ttl`, unless an invalidation or a local write of `key`
    /// came after `snap` (the read may then be older than either), or L1 may not be filled.
    async fn fill(&self, key: &str, snap: Snapshot, value: CacheValue, ttl: Duration) {
        if ttl.is_zero() || !self.sync.as_ref().is_none_or(Sync::may_fill) {
            return;
        }
        self.gate
            .fill(snap, async {
                // Too large for L1, say: then it is simply not kept.
                let _ = self.l1.set_entry(key, value, Some(ttl)).await;
            })
            .await;
    }

    /// Lands a local write's value in L1 for `ttl`, or drops the key from L1 when an
    /// invalidation or another local write came after `snap` (taken before the L2 write).
    async fn land(&self, key: &str, snap: Snapshot, value: CacheValue, ttl: Duration) {
        let keep = !ttl.is_zero() && self.sync.as_ref().is_none_or(Sync::may_fill);
        self.gate
            .write(
                snap,
                async {
                    let stored = if keep {
                        self.l1.set_entry(key, value, Some(ttl)).await.is_ok()
                    } else {
                        false
                    };
                    if !stored {
                        // Whatever L1 held is older than this write.
                        let _ = self.l1.delete(key).await;
                    }
                },
                async {
                    let _ = self.l1.delete(key).await;
                },
            )
            .await;
    }

    /// The L1 TTL of a copy of an entry that has `expiry` left in L2.
    fn ttl_for(&self, expiry: Expiry) -> Duration {
        match expiry {
            Expiry::In(left) => left.min(self.l1_ttl),
            Expiry::Never | Expiry::Unknown => self.l1_ttl,
        }
    }

    /// The L1 TTL of a value just written to L2 with `ttl`.
    fn write_ttl(&self, ttl: Option<Duration>) -> Duration {
        ttl.map_or(self.l1_ttl, |t| t.min(self.l1_ttl))
    }

    /// Publishes `op` to the other processes (nothing to do without an invalidation channel).
    async fn publish(&self, op: Op) -> Result<()> {
        match &self.sync {
            Some(sync) => sync.publish(op, &self.name).await,
            None => Ok(()),
        }
    }

    /// After a failed write to L2, which may still have landed: drop the local copies and tell
    /// the others, without waiting.
    async fn after_failed_write(&self, keys: &[&str]) {
        for key in keys {
            self.evict(key).await;
        }
        if let Some(sync) = &self.sync {
            sync.publish_detached(Op::Keys(keys.iter().map(|k| (*k).to_owned()).collect()));
        }
    }

    /// Reads `key` from L2 and copies it into L1.
    async fn read_through(&self, key: &str) -> Result<Option<Bytes>> {
        let snap = self.gate.snapshot(key);
        let Some((value, expiry)) = self.l2.get_with_ttl(key).await? else {
            return Ok(None);
        };
        self.fill(
            key,
            snap,
            CacheValue::from_bytes(value.clone()),
            self.ttl_for(expiry),
        )
        .await;
        Ok(Some(value))
    }

    async fn write(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        let snap = self.gate.snapshot(key);
        if let Err(e) = self.l2.set(key, value.bytes().clone(), ttl).await {
            self.after_failed_write(&[key]).await;
            return Err(e);
        }
        self.land(key, snap, value, self.write_ttl(ttl)).await;
        self.publish(Op::Keys(vec![key.to_owned()])).await
    }
}

/// Stops the background tasks when the last clone of a backend goes.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A two-level cache: an in-process [`MemoryBackend`] (L1) in front of any backend (L2).
///
/// - Reads go to L1, then L2; an L2 hit is copied into L1 for at most the
///   [L1 TTL](TieredBackendBuilder::l1_ttl), and never longer than the entry has left in L2
///   (where L2 can tell: memory and Redis).
/// - Writes and deletes go to L2 first, then L1, and, with an
///   [invalidation channel](TieredBackendBuilder::invalidation), are published to the other
///   processes before the call returns. See the [crate docs](crate) for the guarantee.
///
/// Cheap to clone: clones share L1, the tasks and the subscription, which stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct TieredBackend {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

impl fmt::Debug for TieredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TieredBackend");
        d.field("name", &self.shared.name)
            .field("l1", &self.shared.l1)
            .field("l2", &self.shared.l2)
            .field("l1_ttl", &self.shared.l1_ttl);
        if let Some(sync) = &self.shared.sync {
            d.field("invalidation", &sync.pubsub)
                .field("max_staleness", &sync.max_staleness)
                .field("serving_l1", &sync.serving());
        }
        d.finish_non_exhaustive()
    }
}

/// Counters of a [`TieredBackend`]'s invalidation machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TieredStats {
    /// Whether L1 is served right now (always, without an invalidation channel).
    pub serving_l1: bool,
    /// Whether the invalidation subscription is in place.
    pub subscribed: bool,
    /// Invalidation messages published (each may carry many changes).
    pub published: u64,
    /// Invalidation messages that could not be published.
    pub publish_failures: u64,
    /// Invalidation messages received, own ones included.
    pub received: u64,
    /// Keys dropped from L1 on others' invalidations.
    pub keys_invalidated: u64,
    /// Times the whole L1 was dropped: a `clear` (this process's or another's), a gap, an
    /// unreadable message, a lag, a lost subscription, or a subscription becoming active (the
    /// first one included). Pattern deletes are not counted.
    pub full_clears: u64,
    /// Sequence gaps seen.
    pub gaps: u64,
    /// Times the subscription was lost.
    pub losses: u64,
    /// Times the transport reported dropped messages.
    pub lags: u64,
    /// Own heartbeats received (each renews the lease).
    pub heartbeats: u64,
}

impl TieredBackend {
    /// A builder over `l1` and `l2` (any backend; an `Arc<dyn CacheBackend>` too).
    pub fn builder(l1: MemoryBackend, l2: impl CacheBackend) -> TieredBackendBuilder {
        TieredBackendBuilder::new(l1, Arc::new(l2))
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, tasks: Vec<JoinHandle<()>>) -> Self {
        Self {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        }
    }

    /// The in-process level.
    pub fn l1(&self) -> &MemoryBackend {
        &self.shared.l1
    }

    /// The shared level.
    pub fn l2(&self) -> &SharedBackend {
        &self.shared.l2
    }

    /// Whether reads are served from L1 right now. Without an invalidation channel, always;
    /// with one, only while the subscription's lease holds.
    pub fn is_serving_l1(&self) -> bool {
        self.shared.serving()
    }

    /// Waits until L1 is served (the subscription is active and its first heartbeat came
    /// back), at most `timeout`; returns whether it is.
    pub async fn wait_until_serving(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_serving_l1() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The invalidation counters, read without a call to L2.
    ///
    /// For what the stores report as well (L2's servers, L1's entries), call the trait method
    /// [`CacheBackend::stats`] as `CacheBackend::stats(&tiered)`; it includes these counters.
    pub fn stats(&self) -> TieredStats {
        let serving_l1 = self.is_serving_l1();
        let Some(sync) = &self.shared.sync else {
            return TieredStats {
                serving_l1,
                ..TieredStats::default()
            };
        };
        let c = &sync.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        TieredStats {
            serving_l1,
            subscribed: sync.is_up(),
            published: get(&c.published),
            publish_failures: get(&c.publish_failures),
            received: get(&c.received),
            keys_invalidated: get(&c.keys_invalidated),
            full_clears: get(&c.full_clears),
            gaps: get(&c.gaps),
            losses: get(&c.losses),
            lags: get(&c.lags),
            heartbeats: get(&c.heartbeats),
        }
    }
}

#[async_trait]
impl CacheBackend for TieredBackend {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.shared.l2.capabilities();
        // Batches must reach L2 as batches; decoded objects are kept in L1 all the same.
        caps.in_process = false;
        caps.keeps_objects = true;
        caps
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let s = &*self.shared;
        if s.serving() {
            if let Ok(Some(hit)) = s.l1.get_entry_now(key) {
                return Ok(Some(hit.into_bytes()));
            }
        }
        s.read_through(key).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        // Only L2 knows how long the entry has left.
        self.shared.l2.get_with_ttl(key).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.shared
            .write(key, CacheValue::from_bytes(value), ttl)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let s = &*self.shared;
        let existed = match s.l2.delete(key).await {
            Ok(existed) => existed,
            Err(e) => {
                s.after_failed_write(&[key]).await;
                return Err(e);
            }
        };
        s.evict(key).await;
        s.publish(Op::Keys(vec![key.to_owned()])).await?;
        Ok(existed)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let s = &*self.shared;
        let snap = s.gate.snapshot(key);
        let wrote = match s.l2.set_if_absent(key, value.clone(), ttl).await {
            Ok(wrote) => wrote,
            Err(e) => {
                s.after_failed_write(&[key]).await;
                return Err(e);
            }
        };
        if wrote {
            s.land(key, snap, CacheValue::from_bytes(value), s.write_ttl(ttl))
                .await;
            s.publish(Op::Keys(vec![key.to_owned()])).await?;
        }
        Ok(wrote)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let s = &*self.shared;
        if s.serving() && matches!(s.l1.exists(key).await, Ok(true)) {
            return Ok(true);
        }
        s.l2.exists(key).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let s = &*self.shared;
        let mut out: Vec<Option<Bytes>> = if s.serving() {
            s.l1.get_many(keys)
                .await
                .unwrap_or_else(|_| vec![None; keys.len()])
        } else {
            vec![None; keys.len()]
        };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let wanted: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let snaps: Vec<Snapshot> = wanted.iter().map(|k| s.gate.snapshot(k)).collect();
        let found = s.l2.get_many_with_ttl(&wanted).await?;
        for ((&i, snap), entry) in missing.iter().zip(snaps).zip(found) {
            if let Some((value, expiry)) = entry {
                s.fill(
                    keys[i],
                    snap,
                    CacheValue::from_bytes(value.clone()),
                    s.ttl_for(expiry),
                )
                .await;
                out[i] = Some(value);
            }
        }
        Ok(out)
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        self.shared.l2.get_many_with_ttl(keys).await
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let s = &*self.shared;
        let snaps: Vec<Snapshot> = items.iter().map(|(k, _)| s.gate.snapshot(k)).collect();
        if let Err(e) = s.l2.set_many(items, ttl).await {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            s.after_failed_write(&keys).await;
            return Err(e);
        }
        for ((key, value), snap) in items.iter().zip(snaps) {
            s.land(
                key,
                snap,
                CacheValue::from_bytes(value.clone()),
                s.write_ttl(ttl),
            )
            .await;
        }
        s.publish(Op::Keys(
            items.iter().map(|(k, _)| (*k).to_owned()).collect(),
        ))
        .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let s = &*self.shared;
        let removed = match s.l2.delete_many(keys).await {
            Ok(n) => n,
            Err(e) => {
                s.after_failed_write(keys).await;
                return Err(e);
            }
        };
        for key in keys {
            s.evict(key).await;
        }
        s.publish(Op::Keys(keys.iter().map(|k| (*k).to_owned()).collect()))
            .await?;
        Ok(removed)
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let s = &*self.shared;
        let result = s.l2.delete_pattern(glob).await;
        // Even a failed pattern delete may have removed some keys.
        s.evict_pattern(glob).await;
        let removed = match result {
            Ok(n) => n,
            Err(e) => {
                if let Some(sync) = &s.sync {
                    sync.publish_detached(Op::Pattern(glob.to_owned()));
                }
                return Err(e);
            }
        };
        s.publish(Op::Pattern(glob.to_owned())).await?;
        Ok(removed)
    }

    async fn clear(&self) -> Result<()> {
        let s = &*self.shared;
        let result = s.l2.clear().await;
        s.clear_l1().await;
        if let Err(e) = result {
            if let Some(sync) = &s.sync {
                sync.publish_detached(Op::Clear);
            }
            return Err(e);
        }
        s.publish(Op::Clear).await
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.shared.l2.keys(glob, limit).await
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        let s = &*self.shared;
        let mut result = s.l2.health_check(timeout).await;
        result.backend = s.name.to_string();
        let l1 = match &s.sync {
            None => "served (no invalidation channel: staleness bounded by the L1 TTL)",
            Some(sync) if sync.serving() => "served",
            Some(sync) if sync.is_up() => "bypassed (waiting for a heartbeat)",
            Some(_) => "bypassed (invalidation subscription down)",
        };
        if result.status == HealthStatus::Healthy && !s.serving() {
            result.status = HealthStatus::Degraded;
            result.reason = Some(format!("L1 {l1}"));
        }
        result
            .with_detail("l1", l1)
            .with_detail("l1_entries", s.l1.entry_count().to_string())
    }

    /// L2's statistics, with L1's figures and the invalidation counters added to `extra`:
    ///
    /// - `l1_entries`, `l1_bytes`, `l1_evictions`: L1's live entries, their weight in bytes,
    ///   and its size evictions (see `MemoryBackend`'s `stats`);
    /// - `l1_served`: whether reads are served from L1 right now;
    /// - with an invalidation channel, each [`TieredStats`] counter as `invalidation_<name>`
    ///   (`invalidation_subscribed`, `invalidation_published`, ...).
    ///
    /// An error of L2 (a dead server) is returned as is.
    ///
    /// This is the trait's method: [`TieredBackend::stats`], the inherent method of the same
    /// name, returns the counters alone, without asking L2. Call this one as
    /// `CacheBackend::stats(&tiered)`.
    async fn stats(&self) -> Result<BackendStats> {
        let s = &*self.shared;
        let mut stats = s.l2.stats().await?;
        // The in-process level answers at once and never fails.
        let l1 = CacheBackend::stats(&s.l1).await?;
        // The inherent method: the invalidation counters.
        let counters = TieredBackend::stats(self);
        let extra = &mut stats.extra;
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                extra.insert(name.to_owned(), value);
            }
        };
        put("l1_entries", l1.entries.map(|n| n.to_string()));
        put("l1_bytes", l1.memory_bytes.map(|n| n.to_string()));
        put("l1_evictions", l1.evictions.map(|n| n.to_string()));
        put("l1_served", Some(counters.serving_l1.to_string()));
        if s.sync.is_some() {
            let TieredStats {
                serving_l1: _,
                subscribed,
                published,
                publish_failures,
                received,
                keys_invalidated,
                full_clears,
                gaps,
                losses,
                lags,
                heartbeats,
            } = counters;
            put("invalidation_subscribed", Some(subscribed.to_string()));
            for (name, n) in [
                ("published", published),
                ("publish_failures", publish_failures),
                ("received", received),
                ("keys_invalidated", keys_invalidated),
                ("full_clears", full_clears),
                ("gaps", gaps),
                ("losses", losses),
                ("lags", lags),
                ("heartbeats", heartbeats),
            ] {
                put(&format!("invalidation_{name}"), Some(n.to_string()));
            }
        }
        Ok(stats)
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        let s = &*self.shared;
        if s.serving() {
            if let Ok(Some(hit)) = s.l1.get_entry_now(key) {
                return Ok(Some(hit));
            }
        }
        Ok(s.read_through(key).await?.map(CacheValue::from_bytes))
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.shared.write(key, value, ttl).await
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        // The decoded form of bytes L1 already holds: L2 and other processes are unaffected.
        self.shared.l1.keep_object(key, bytes, object);
    }

    fn lock_store(&self) -> Option<SharedLockStore> {
        self.shared.l2.lock_store()
    }
}
