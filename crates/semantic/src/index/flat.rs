//! [`FlatIndex`]: exact brute-force search, for small caches and as ground truth.

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use parking_lot::RwLock;

use super::{
    file::{self, EntryRecord, IndexKind, Snapshot},
    Clock, Hit, SystemClock, VectorIndex,
};
use crate::{vector, Error, Result, Scope, ScopeId};

/// The default bound on live entries.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// An exact vector index: every search compares the query with every entry of its scope.
///
/// Vectors are L2-normalized on insert and kept in one contiguous buffer; a search costs
/// one dot product per stored entry, so it suits up to some tens of thousands of entries,
/// and serves as the ground truth that approximate indexes are measured against.
///
/// - **Scopes**: a search only sees entries of its own [`Scope`].
/// - **Bound**: at most `max_entries` live entries; inserting into a full index reclaims
///   expired entries, then evicts the least recently hit one (an insert counts as a hit).
/// - **TTL**: expired entries are never returned; their space is reclaimed by
///   [`compact`](VectorIndex::compact) or by an insert into a full index.
/// - **Soft delete**: [`remove`](VectorIndex::remove) leaves a tombstone; `compact` (or an
///   insert, once tombstones outnumber live slots) reclaims it.
/// - **Persistence**: [`persist`](VectorIndex::persist) and [`FlatIndex::load`].
///
/// ```
/// # fn main() -> lexicache_semantic::Result<()> {
/// use lexicache_semantic::{FlatIndex, Scope, VectorIndex};
///
/// let index = FlatIndex::builder(3).max_entries(1_000).build()?;
/// let scope = Scope::new("acme", "gpt-4o", "");
/// index.insert("q1", &[1.0, 0.0, 0.0], &scope, None)?;
/// index.insert("q2", &[0.0, 1.0, 0.0], &scope, None)?;
/// let hits = index.search(&[1.0, 0.0, 0.0], &scope, 1)?;
/// assert_eq!(hits[0].id, "q1");
/// assert_eq!(hits[0].similarity, 1.0);
/// // Another tenant sees nothing, even for the same vector.
/// assert!(index.search(&[1.0, 0.0, 0.0], &Scope::new("globex", "gpt-4o", ""), 1)?.is_empty());
/// # Ok(()) }
/// ```
pub struct FlatIndex {
    dim: usize,
    max_entries: usize,
    clock: Arc<dyn Clock>,
    /// Source of recency stamps; higher is more recent.
    tick: AtomicU64,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Slot `i`'s vector is `vectors[i * dim..(i + 1) * dim]`.
    vectors: Vec<f32>,
    slots: Vec<Slot>,
    /// Ids of slots that are not removed (they may have expired).
    ids: HashMap<String, usize>,
    tombstones: usize,
}

struct Slot {
    id: String,
    scope: ScopeId,
    expires_at: Option<u64>,
    /// Atomic so that searches, which hold only the read lock, can mark their hits.
    last_hit: AtomicU64,
    deleted: bool,
}

impl Slot {
    fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    fn live(&self, now: u64) -> bool {
        !self.deleted && !self.expired(now)
    }
}

/// Builds a [`FlatIndex`]; from [`FlatIndex::builder`].
#[must_use]
pub struct FlatIndexBuilder {
    dim: usize,
    max_entries: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FlatIndexBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatIndexBuilder")
            .field("dim", &self.dim)
            .field("max_entries", &self.max_entries)
            .field("clock", &self.clock)
            .finish()
    }
}

impl FlatIndexBuilder {
    /// The bound on live entries (default [`DEFAULT_MAX_ENTRIES`]).
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The clock for entry TTLs (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// An empty index. A zero dimension or `max_entries` is [`Error::InvalidInput`].
    pub fn build(self) -> Result<FlatIndex> {
        if self.dim == 0 {
            return Err(Error::InvalidInput(
                "index dimension must be at least 1".into(),
            ));
        }
        if self.max_entries == 0 {
            return Err(Error::InvalidInput("max_entries must be at least 1".into()));
        }
        Ok(FlatIndex {
            dim: self.dim,
            max_entries: self.max_entries,
            clock: self.clock,
            tick: AtomicU64::new(0),
            inner: RwLock::new(Inner::default()),
        })
    }

    /// An index holding the entries persisted at `path`.
    ///
    /// The file's dimension must equal this builder's ([`Error::DimensionMismatch`]).
    /// Entries that expired meanwhile are dropped; if the file holds more than
    /// `max_entries`, the most recently hit ones are kept. A truncated, damaged or foreign
    /// file is [`Error::Corrupt`], never a panic.
    pub fn load(self, path: impl AsRef<Path>) -> Result<FlatIndex> {
        let snapshot = file::read(path.as_ref(), IndexKind::Flat)?;
        self.build_from_snapshot(snapshot)
    }

    fn build_from_snapshot(self, snapshot: Snapshot) -> Result<FlatIndex> {
        let file_dim = snapshot.dimension as usize;
        if file_dim != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                actual: file_dim,
            });
        }
        let index = self.build()?;
        let now = index.clock.now_millis();
        let mut entries = snapshot.entries;
        entries.retain(|e| e.expires_at_millis.is_none_or(|at| at > now));
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_hit));
        entries.truncate(index.max_entries);
        entries.reverse();
        {
            let mut guard = index.inner.write();
            let inner = &mut *guard;
            inner.vectors.reserve(entries.len() * index.dim);
            for e in entries {
                if e.vector.len() != index.dim {
                    return Err(Error::Corrupt(format!(
                        "entry {:?} has {} dimensions, file says {}",
                        e.id,
                        e.vector.len(),
                        index.dim
                    )));
                }
                let mut v = e.vector;
                vector::normalize(&mut v).map_err(|_| {
                    Error::Corrupt(format!("entry {:?} has an invalid vector", e.id))
                })?;
                if inner.ids.insert(e.id.clone(), inner.slots.len()).is_some() {
                    return Err(Error::Corrupt(format!("duplicate entry id {:?}", e.id)));
                }
                inner.vectors.extend_from_slice(&v);
                inner.slots.push(Slot {
                    id: e.id,
                    scope: e.scope,
                    expires_at: e.expires_at_millis,
                    last_hit: AtomicU64::new(e.last_hit),
                    deleted: false,
                });
            }
        }
        index.tick.store(snapshot.tick, Ordering::Relaxed);
        Ok(index)
    }
}

impl FlatIndex {
    /// A builder for an index of `dim`-dimensional vectors.
    pub fn builder(dim: usize) -> FlatIndexBuilder {
        FlatIndexBuilder {
            dim,
            max_entries: DEFAULT_MAX_ENTRIES,
            clock: Arc::new(SystemClock),
        }
    }

    /// An index holding the entries persisted at `path`, with the file's dimension, the
    /// system clock and a bound of at least [`DEFAULT_MAX_ENTRIES`]. See
    /// [`FlatIndexBuilder::load`] for the checks.
    pub fn load(path: impl AsRef<Path>) -> Result<FlatIndex> {
        let snapshot = file::read(path.as_ref(), IndexKind::Flat)?;
        let max = snapshot.entries.len().max(DEFAULT_MAX_ENTRIES);
        Self::builder(snapshot.dimension as usize)
            .max_entries(max)
            .build_from_snapshot(snapshot)
    }

    /// The bound on live entries.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Removed entries whose space has not been reclaimed yet.
    pub fn tombstones(&self) -> usize {
        self.inner.read().tombstones
    }

    fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn prepare(&self, v: &[f32]) -> Result<Vec<f32>> {
        if v.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                actual: v.len(),
            });
        }
        let mut v = v.to_vec();
        vector::normalize(&mut v)?;
        Ok(v)
    }

    fn tombstone(inner: &mut Inner, slot: usize) {
        let s = &mut inner.slots[slot];
        if !s.deleted {
            s.deleted = true;
            inner.tombstones += 1;
            inner.ids.remove(&s.id);
        }
    }

    /// Makes room for one more entry: expired entries go first, then the least recently hit.
    fn make_room(&self, inner: &mut Inner, now: u64) {
        if inner.ids.len() < self.max_entries {
            return;
        }
        let expired: Vec<usize> = (0..inner.slots.len())
            .filter(|&i| !inner.slots[i].deleted && inner.slots[i].expired(now))
            .collect();
        for i in expired {
            Self::tombstone(inner, i);
        }
        while inner.ids.len() >= self.max_entries {
            let victim = inner
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.deleted)
                .min_by_key(|(_, s)| s.last_hit.load(Ordering::Relaxed))
                .map(|(i, _)| i)
                .expect("a full index has live slots");
            Self::tombstone(inner, victim);
        }
    }

    /// Drops removed and expired slots; returns how many.
    fn compact_locked(&self, inner: &mut Inner, now: u64) -> usize {
        let before = inner.slots.len();
        let old_vectors = std::mem::take(&mut inner.vectors);
        let old_slots = std::mem::take(&mut inner.slots);
        inner.ids.clear();
        for (i, slot) in old_slots.into_iter().enumerate() {
            if slot.live(now) {
                inner.ids.insert(slot.id.clone(), inner.slots.len());
                inner
                    .vectors
                    .extend_from_slice(&old_vectors[i * self.dim..(i + 1) * self.dim]);
                inner.slots.push(slot);
            }
        }
        inner.tombstones = 0;
        inner.vectors.shrink_to_fit();
        inner.slots.shrink_to_fit();
        before - inner.slots.len()
    }
}

impl VectorIndex for FlatIndex {
    fn dimension(&self) -> usize {
        self.dim
    }

    fn insert(&self, id: &str, vector: &[f32], scope: &Scope, ttl: Option<Duration>) -> Result<()> {
        let v = self.prepare(vector)?;
        let scope = scope.id();
        let now = self.clock.now_millis();
        let expires_at =
            ttl.map(|t| now.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        let tick = self.next_tick();
        let mut inner = self.inner.write();
        if let Some(&slot) = inner.ids.get(id) {
            inner.vectors[slot * self.dim..(slot + 1) * self.dim].copy_from_slice(&v);
            let s = &mut inner.slots[slot];
            s.scope = scope;
            s.expires_at = expires_at;
            s.last_hit.store(tick, Ordering::Relaxed);
            return Ok(());
        }
        self.make_room(&mut inner, now);
        // Tombstones are reclaimed once they outnumber live slots, so memory stays within
        // twice the bound and the amortized cost per insert stays constant.
        if inner.tombstones > 0 && inner.tombstones * 2 >= inner.slots.len() {
            self.compact_locked(&mut inner, now);
        }
        let slot = inner.slots.len();
        inner.vectors.extend_from_slice(&v);
        inner.slots.push(Slot {
            id: id.to_owned(),
            scope,
            expires_at,
            last_hit: AtomicU64::new(tick),
            deleted: false,
        });
        inner.ids.insert(id.to_owned(), slot);
        Ok(())
    }

    fn search(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<Hit>> {
        let q = self.prepare(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let scope = scope.id();
        let now = self.clock.now_millis();
        let inner = self.inner.read();
        let mut scored: Vec<(usize, f32)> = inner
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.scope == scope && s.live(now))
            .map(|(i, _)| {
                let stored = &inner.vectors[i * self.dim..(i + 1) * self.dim];
                let cos = vector::dot(&q, stored);
                // Rounding can leave an exact repeat a hair under 1; the bitwise comparison
                // only runs for near-1 candidates.
                let sim = if cos > 1.0 - 1e-4 && stored == q.as_slice() {
                    1.0
                } else {
                    vector::similarity(cos)
                };
                (i, sim)
            })
            .collect();
        let by_rank = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_rank);
            scored.truncate(k);
        }
        scored.sort_unstable_by(by_rank);
        Ok(scored
            .into_iter()
            .map(|(i, similarity)| {
                let slot = &inner.slots[i];
                slot.last_hit.store(self.next_tick(), Ordering::Relaxed);
                Hit {
                    id: slot.id.clone(),
                    similarity,
                }
            })
            .collect())
    }

    fn remove(&self, id: &str) -> bool {
        let now = self.clock.now_millis();
        let mut inner = self.inner.write();
        let Some(&slot) = inner.ids.get(id) else {
            return false;
        };
        let was_live = !inner.slots[slot].expired(now);
        Self::tombstone(&mut inner, slot);
        was_live
    }

    fn compact(&self) -> usize {
        let now = self.clock.now_millis();
        self.compact_locked(&mut self.inner.write(), now)
    }

    fn len(&self) -> usize {
        let now = self.clock.now_millis();
        self.inner
            .read()
            .slots
            .iter()
            .filter(|s| s.live(now))
            .count()
    }

    fn persist(&self, path: &Path) -> Result<()> {
        let now = self.clock.now_millis();
        let snapshot = {
            let inner = self.inner.read();
            Snapshot {
                dimension: self.dim as u32,
                tick: self.tick.load(Ordering::Relaxed),
                entries: inner
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.live(now))
                    .map(|(i, s)| EntryRecord {
                        id: s.id.clone(),
                        scope: s.scope,
                        expires_at_millis: s.expires_at,
                        last_hit: s.last_hit.load(Ordering::Relaxed),
                        vector: inner.vectors[i * self.dim..(i + 1) * self.dim].to_vec(),
                    })
                    .collect(),
            }
        };
        file::write(path, IndexKind::Flat, &snapshot)
    }
}

impl fmt::Debug for FlatIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("FlatIndex")
            .field("dim", &self.dim)
            .field("max_entries", &self.max_entries)
            .field("slots", &inner.slots.len())
            .field("tombstones", &inner.tombstones)
            .field("clock", &self.clock)
            .finish()
    }
}
