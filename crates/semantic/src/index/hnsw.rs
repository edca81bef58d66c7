//! [`HnswIndex`]: approximate nearest-neighbour search on hnsw_rs graphs, one per scope.
//!
//! # Persisted layout
//!
//! The file uses the container of [`super::file`] (magic, version, kind 2, length, SHA-256)
//! around this payload:
//!
//! ```text
//! 8 bytes   metadata length M, u64 little-endian
//! M bytes   postcard-encoded `Meta`: parameters, recency counter, the slot table (id, scope,
//!           deadline, last hit, removed flag; `None` for a free slot) and, per scope graph,
//!           its scope, point count and the lengths of its two hnsw_rs dump files
//! then      per graph, in order: the hnsw_rs `.hnsw.graph` file, then its `.hnsw.data` file
//! ```
//!
//! The graph and data blobs are hnsw_rs's own dump (`file_dump`), so loading reads the graph
//! back instead of re-inserting every vector. hnsw_rs only reloads from files, so `load`
//! writes each verified blob to a private temporary directory, reloads it and deletes it.
//! hnsw_rs writes integers in native byte order: a file moves between machines of the same
//! architecture (64-bit little-endian in practice), not across them.

use std::{
    collections::{HashMap, HashSet},
    fmt, fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use hnsw_rs::{
    anndists::dist::distances::{DistDot, Distance},
    api::AnnT,
    hnsw::Hnsw,
    hnswio::HnswIo,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{
    file::{self, IndexKind},
    Clock, Hit, SystemClock, VectorIndex, DEFAULT_MAX_ENTRIES,
};
use crate::{vector, Error, Result, Scope, ScopeId};

/// The default number of connections per node (hnsw_rs's `max_nb_connection`).
pub const DEFAULT_M: usize = 16;

/// The default candidate list size while inserting.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;

/// The default candidate list size while searching.
///
/// Measured with the `index` criterion bench on 100 000 uniformly random 384-dimensional
/// unit vectors (the hardest case for a graph: no cluster structure to navigate by) and
/// near-duplicate queries (cosine about 0.95 with a stored vector): recall@1 against
/// [`FlatIndex`](super::FlatIndex) was 0.78 at 32, 0.93 at 64, 0.96 at 80, 0.98 at 96 and
/// 0.99 at 128, with a search p99 of 4.3 ms at 96 (docs/benchmarks.md). 96 keeps recall@1
/// clear of the 0.95 target at the lower latency.
pub const DEFAULT_EF_SEARCH: usize = 96;

/// hnsw_rs's layer bound (`NB_LAYER_MAX`).
const MAX_LAYERS: usize = 16;

/// Batches at least this large are inserted into a graph from several threads.
const PARALLEL_INSERT_MIN: usize = 256;

/// The distance hnsw_rs orders by: `1 - dot` of the graph's copies of two unit vectors, in
/// [0, 2], computed by hnsw_rs's SIMD `DistDot` (AVX2 or SSE2, chosen at run time).
///
/// `DistDot` asserts on rounding: `dot >= 0.` in its scalar build (so `1 - dot` of an exact
/// repeat, a hair below zero, panics) and `dot <= 1.000002` in its SIMD build. The graph
/// therefore holds every vector (and gets every query) scaled by [`GRAPH_SCALE`], one half:
/// the dot of two scaled unit vectors is at most a quarter (plus rounding), so neither
/// assertion can fire, and distances become `0.75 + d / 4`, which keeps their order. Halving
/// is exact in floating point, so a reloaded index recovers its vectors bit for bit.
/// Similarities are never read from the graph: they are recomputed from the index's own
/// unscaled copy. Inserted vectors are validated (finite, non-zero), so
/// no NaN reaches a graph through `insert`; a persisted graph is trusted once its file's
/// checksum matches. A length mismatch maps to the largest distance rather than a panic. The type name is written into persisted graphs, so
/// it must not be renamed or moved without a format version bump.
#[derive(Debug, Default, Clone, Copy)]
struct CosineDistance;

/// The factor applied to vectors before they enter a graph (see [`CosineDistance`]).
const GRAPH_SCALE: f32 = 0.5;

impl Distance<f32> for CosineDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        if va.len() != vb.len() {
            return 2.0;
        }
        let d = DistDot.eval(va, vb);
        if d.is_nan() {
            2.0
        } else {
            d.clamp(0.0, 2.0)
        }
    }
}

/// `v` as the graph holds it: scaled by [`GRAPH_SCALE`].
fn graph_vector(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x * GRAPH_SCALE).collect()
}

type Graph = Hnsw<'static, f32, CosineDistance>;

/// An approximate vector index: a hierarchical navigable small world (HNSW) graph per scope,
/// built with [hnsw_rs](https://crates.io/crates/hnsw_rs).
///
/// A search walks part of the graph instead of comparing the query with every entry: at
/// 100 000 entries of 384 dimensions it took 2.6 ms (p50) where [`FlatIndex`] took 13 ms
/// (the `index` bench, two cores). In exchange it may miss the exact nearest entry:
/// recall@1 against `FlatIndex` was 0.98 there at the default
/// [`ef_search`](HnswIndexBuilder::ef_search). For a few thousand entries per scope,
/// `FlatIndex` is as fast and exact. It follows the same contract as `FlatIndex`:
///
/// - **Similarity**: cosine clamped to [0, 1], computed exactly from the stored vector for
///   each candidate the graph returns; an exact repeat of a stored vector scores 1.0.
/// - **Scopes**: every [`Scope`] has its own graph, so a search can only ever reach entries
///   of its own scope, and a small scope inside a large index is searched as a small graph
///   (no filtered search that could miss it among other scopes' entries).
/// - **Bound**: at most `max_entries` live entries over all scopes; inserting into a full
///   index reclaims expired entries, then evicts the least recently hit one (an insert counts
///   as a hit).
/// - **TTL**: expired entries are never returned. They stay graph nodes until reclaimed (by
///   `compact` or by an insert into a full index); a search whose best candidates are dead
///   widens until it has `k` live hits, so call `compact` now and then if many entries
///   expire without the index filling up.
/// - **Soft delete**: hnsw_rs cannot delete a node, so [`remove`](VectorIndex::remove),
///   eviction, expiry and replacing an id leave a *dead* node in the graph that searches skip.
///   [`compact`](VectorIndex::compact) rebuilds every graph that has dead nodes from its live
///   vectors. An insert rebuilds its scope's graph automatically once dead nodes make up
///   half of it, so memory stays within twice the live entries and the amortized cost is at
///   most one extra graph insertion per removed entry; the insert that triggers it waits for
///   the rebuild (all the scope's live vectors re-inserted, in parallel: minutes for
///   100 000 vectors of 384 dimensions on two cores, where the bench measured 3 to 11
///   minutes depending on load), while searches and other inserts go on against the old
///   graph meanwhile.
/// - **Persistence**: [`persist`](VectorIndex::persist) writes the graphs themselves (not
///   just the vectors) with the entries' metadata into one checksummed file;
///   [`HnswIndex::load`] reads them back without re-inserting anything.
///
/// Memory: each vector is held twice, once by its graph node and once by the index (to
/// rebuild graphs and score candidates exactly), plus about `2 * m` links per node.
///
/// Inserts take a write lock for the graph insertion (several milliseconds at the default
/// `ef_construction` of 200, more as the graph grows); searches take a read lock and run
/// concurrently with each other. Use [`insert_batch`](HnswIndex::insert_batch) to fill a
/// large index: it inserts from all cores.
///
/// ```
/// # fn main() -> lexicache_semantic::Result<()> {
/// use lexicache_semantic::{HnswIndex, Scope, VectorIndex};
///
/// let index = HnswIndex::builder(3).max_entries(1_000).build()?;
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
///
/// [`FlatIndex`]: super::FlatIndex
pub struct HnswIndex {
    dim: usize,
    max_entries: usize,
    params: Params,
    ef_search: usize,
    clock: Arc<dyn Clock>,
    /// Source of recency stamps; higher is more recent.
    tick: AtomicU64,
    graph_inserts: AtomicU64,
    rebuilds: AtomicU64,
    inner: RwLock<Inner>,
}

/// Graph construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Params {
    m: usize,
    ef_construction: usize,
}

#[derive(Default)]
struct Inner {
    /// Slot `i`'s vector is `vectors[i * dim..(i + 1) * dim]`; a slot's number is its node's
    /// id in its scope's graph.
    vectors: Vec<f32>,
    /// `None` is a free slot, reused by the next insert.
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Ids of slots that are not removed (they may have expired).
    ids: HashMap<String, usize>,
    graphs: HashMap<ScopeId, ScopeGraph>,
    /// Slots that are removed but still nodes of a graph.
    tombstones: usize,
}

struct Slot {
    id: String,
    scope: ScopeId,
    expires_at: Option<u64>,
    /// Atomic so that searches, which hold only the read lock, can mark their hits.
    last_hit: AtomicU64,
    removed: bool,
}

impl Slot {
    fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    fn live(&self, now: u64) -> bool {
        !self.removed && !self.expired(now)
    }
}

/// One scope's graph. Every used slot is a node of exactly its scope's graph.
struct ScopeGraph {
    graph: Arc<Graph>,
    /// Nodes in the graph (live or not).
    nodes: usize,
    /// Nodes whose slot is removed.
    removed: usize,
    /// While a rebuild runs: the slots inserted meanwhile, to add to the new graph.
    pending: Option<Vec<usize>>,
}

impl ScopeGraph {
    fn new(params: Params, capacity: usize) -> Self {
        Self {
            graph: Arc::new(new_graph(params, capacity)),
            nodes: 0,
            removed: 0,
            pending: None,
        }
    }
}

fn new_graph(params: Params, capacity: usize) -> Graph {
    Hnsw::new(
        params.m,
        capacity.max(16),
        MAX_LAYERS,
        params.ef_construction,
        CosineDistance,
    )
}

/// Inserts `nodes` into `graph`, from several threads for large batches.
fn insert_nodes(graph: &Graph, nodes: &[(Vec<f32>, usize)]) {
    let nodes: Vec<(Vec<f32>, usize)> = nodes
        .iter()
        .map(|(v, slot)| (graph_vector(v), *slot))
        .collect();
    if nodes.len() >= PARALLEL_INSERT_MIN {
        let refs: Vec<(&Vec<f32>, usize)> = nodes.iter().map(|(v, s)| (v, *s)).collect();
        graph.parallel_insert(&refs);
    } else {
        for (v, slot) in &nodes {
            graph.insert((v.as_slice(), *slot));
        }
    }
}

/// Counters describing an [`HnswIndex`]; from [`HnswIndex::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HnswStats {
    /// Scopes that have a graph.
    pub scopes: usize,
    /// Nodes over all graphs, including dead ones.
    pub nodes: usize,
    /// Removed entries whose node is still in a graph (see [`HnswIndex::tombstones`]).
    pub tombstones: usize,
    /// Vectors this instance has inserted into graphs, by inserts and rebuilds. An index
    /// fresh from [`HnswIndex::load`] reports 0: loading reads the graphs, it does not
    /// rebuild them.
    pub graph_inserts: u64,
    /// Graph rebuilds this instance has run (by [`compact`](VectorIndex::compact) or
    /// automatically).
    pub rebuilds: u64,
}

/// Builds an [`HnswIndex`]; from [`HnswIndex::builder`].
#[must_use]
pub struct HnswIndexBuilder {
    dim: usize,
    max_entries: usize,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HnswIndexBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswIndexBuilder")
            .field("dim", &self.dim)
            .field("max_entries", &self.max_entries)
            .field("m", &self.m)
            .field("ef_construction", &self.ef_construction)
            .field("ef_search", &self.ef_search)
            .field("clock", &self.clock)
            .finish()
    }
}

impl HnswIndexBuilder {
    /// The bound on live entries (default [`DEFAULT_MAX_ENTRIES`]).
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The number of links per graph node (default [`DEFAULT_M`], 2 to 255). More links raise
    /// recall and memory use.
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// The candidate list size while inserting (default [`DEFAULT_EF_CONSTRUCTION`], at
    /// least 1). Larger builds a better graph, more slowly.
    pub fn ef_construction(mut self, ef_construction: usize) -> Self {
        self.ef_construction = ef_construction;
        self
    }

    /// The candidate list size while searching (default [`DEFAULT_EF_SEARCH`], at least 1;
    /// a search for `k` hits uses at least `k`). Larger raises recall and latency.
    pub fn ef_search(mut self, ef_search: usize) -> Self {
        self.ef_search = ef_search;
        self
    }

    /// The clock for entry TTLs (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// An empty index. A zero dimension or `max_entries`, `m` outside 2..=255, or a zero
    /// `ef_construction` or `ef_search` is [`Error::InvalidInput`].
    pub fn build(self) -> Result<HnswIndex> {
        if self.dim == 0 {
            return Err(Error::InvalidInput(
                "index dimension must be at least 1".into(),
            ));
        }
        if self.max_entries == 0 {
            return Err(Error::InvalidInput("max_entries must be at least 1".into()));
        }
        if !(2..=255).contains(&self.m) {
            return Err(Error::InvalidInput(format!(
                "m (links per node) must be between 2 and 255, got {}",
                self.m
            )));
        }
        if self.ef_construction == 0 {
            return Err(Error::InvalidInput(
                "ef_construction must be at least 1".into(),
            ));
        }
        if self.ef_search == 0 {
            return Err(Error::InvalidInput("ef_search must be at least 1".into()));
        }
        Ok(HnswIndex {
            dim: self.dim,
            max_entries: self.max_entries,
            params: Params {
                m: self.m,
                ef_construction: self.ef_construction,
            },
            ef_search: self.ef_search,
            clock: self.clock,
            tick: AtomicU64::new(0),
            graph_inserts: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
            inner: RwLock::new(Inner::default()),
        })
    }

    /// An index holding the entries and graphs persisted at `path`, without re-inserting
    /// anything.
    ///
    /// The file's dimension must equal this builder's ([`Error::DimensionMismatch`]). The
    /// graphs keep the `m` and `ef_construction` they were built with; this builder's apply
    /// to graphs built from now on. Entries that expired meanwhile become dead nodes; if the
    /// file holds more than `max_entries` live entries, the least recently hit ones are
    /// evicted. A truncated, damaged or foreign file is [`Error::Corrupt`], never a panic.
    pub fn load(self, path: impl AsRef<Path>) -> Result<HnswIndex> {
        let file = PersistedFile::read(path.as_ref())?;
        self.build_from_file(file)
    }

    fn build_from_file(self, file: PersistedFile) -> Result<HnswIndex> {
        let file_dim = file.meta.dimension as usize;
        if file_dim != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                actual: file_dim,
            });
        }
        let index = self.build()?;
        let tick = file.meta.tick;
        let inner = file.into_inner(index.dim)?;
        *index.inner.write() = inner;
        index.tick.store(tick, Ordering::Relaxed);
        let now = index.clock.now_millis();
        let mut inner = index.inner.write();
        index.reclaim_expired(&mut inner, now);
        while inner.ids.len() > index.max_entries {
            index.evict_one(&mut inner);
        }
        drop(inner);
        Ok(index)
    }
}

impl HnswIndex {
    /// A builder for an index of `dim`-dimensional vectors.
    pub fn builder(dim: usize) -> HnswIndexBuilder {
        HnswIndexBuilder {
            dim,
            max_entries: DEFAULT_MAX_ENTRIES,
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            clock: Arc::new(SystemClock),
        }
    }

    /// An index holding the entries persisted at `path`, with the file's dimension and graph
    /// parameters, the default `ef_search`, the system clock and a bound of at least
    /// [`DEFAULT_MAX_ENTRIES`]. See [`HnswIndexBuilder::load`] for the checks.
    pub fn load(path: impl AsRef<Path>) -> Result<HnswIndex> {
        let file = PersistedFile::read(path.as_ref())?;
        let live = file
            .meta
            .slots
            .iter()
            .flatten()
            .filter(|s| !s.removed)
            .count();
        let params = file.meta.params;
        Self::builder(file.meta.dimension as usize)
            .max_entries(live.max(DEFAULT_MAX_ENTRIES))
            .m(params.m)
            .ef_construction(params.ef_construction)
            .build_from_file(file)
    }

    /// The bound on live entries.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The candidate list size of searches.
    pub fn ef_search(&self) -> usize {
        self.ef_search
    }

    /// Removed (or evicted, or replaced) entries whose node is still in a graph; a rebuild
    /// reclaims them.
    pub fn tombstones(&self) -> usize {
        self.inner.read().tombstones
    }

    /// Counters: graphs, nodes, tombstones, graph insertions and rebuilds.
    pub fn stats(&self) -> HnswStats {
        let inner = self.inner.read();
        HnswStats {
            scopes: inner.graphs.len(),
            nodes: inner.graphs.values().map(|g| g.nodes).sum(),
            tombstones: inner.tombstones,
            graph_inserts: self.graph_inserts.load(Ordering::Relaxed),
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
        }
    }

    /// Stores many vectors in `scope` at once, as if by [`insert`](VectorIndex::insert) in
    /// order, but inserting them into the graph from several threads. The fast way to fill
    /// a large index.
    ///
    /// Every vector is checked before anything is stored: one bad vector stores nothing.
    pub fn insert_batch<I, V>(
        &self,
        entries: &[(I, V)],
        scope: &Scope,
        ttl: Option<Duration>,
    ) -> Result<()>
    where
        I: AsRef<str>,
        V: AsRef<[f32]>,
    {
        let vectors = entries
            .iter()
            .map(|(_, v)| self.prepare(v.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let items: Vec<(&str, Vec<f32>)> = entries
            .iter()
            .map(|(id, _)| id.as_ref())
            .zip(vectors)
            .collect();
        self.insert_prepared(items, scope.id(), ttl)
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

    fn vector<'a>(&self, inner: &'a Inner, slot: usize) -> &'a [f32] {
        &inner.vectors[slot * self.dim..(slot + 1) * self.dim]
    }

    /// Marks `slot` removed; its node stays in the graph until a rebuild.
    fn tombstone(inner: &mut Inner, slot: usize) {
        let Some(s) = inner.slots[slot].as_mut() else {
            return;
        };
        if !s.removed {
            s.removed = true;
            inner.tombstones += 1;
            inner.ids.remove(&s.id);
            if let Some(g) = inner.graphs.get_mut(&s.scope) {
                g.removed += 1;
            }
        }
    }

    fn reclaim_expired(&self, inner: &mut Inner, now: u64) {
        let expired: Vec<usize> = inner
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| !s.removed && s.expired(now)))
            .map(|(i, _)| i)
            .collect();
        for i in expired {
            Self::tombstone(inner, i);
        }
    }

    fn evict_one(&self, inner: &mut Inner) {
        let victim = inner
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| !s.removed).map(|s| (i, s)))
            .min_by_key(|(_, s)| s.last_hit.load(Ordering::Relaxed))
            .map(|(i, _)| i);
        if let Some(victim) = victim {
            Self::tombstone(inner, victim);
        }
    }

    /// Makes room for one more entry: expired entries go first, then the least recently hit.
    fn make_room(&self, inner: &mut Inner, now: u64) {
        if inner.ids.len() < self.max_entries {
            return;
        }
        self.reclaim_expired(inner, now);
        while inner.ids.len() >= self.max_entries {
            self.evict_one(inner);
        }
    }

    fn insert_prepared(
        &self,
        items: Vec<(&str, Vec<f32>)>,
        scope: ScopeId,
        ttl: Option<Duration>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_millis();
        let expires_at =
            ttl.map(|t| now.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        {
            let mut guard = self.inner.write();
            let inner = &mut *guard;
            // The graph exists before the loop so that tombstones of this batch's own
            // entries (a repeated id, an eviction) are counted against it.
            let params = self.params;
            let count = items.len();
            inner
                .graphs
                .entry(scope)
                .or_insert_with(|| ScopeGraph::new(params, count));
            let mut nodes = Vec::with_capacity(count);
            for (id, v) in items {
                if let Some(&old) = inner.ids.get(id) {
                    // The old node keeps its vector in the graph: replace by a new node.
                    Self::tombstone(inner, old);
                }
                self.make_room(inner, now);
                let slot = Slot {
                    id: id.to_owned(),
                    scope,
                    expires_at,
                    last_hit: AtomicU64::new(self.next_tick()),
                    removed: false,
                };
                let index = match inner.free.pop() {
                    Some(i) => {
                        inner.vectors[i * self.dim..(i + 1) * self.dim].copy_from_slice(&v);
                        inner.slots[i] = Some(slot);
                        i
                    }
                    None => {
                        inner.vectors.extend_from_slice(&v);
                        inner.slots.push(Some(slot));
                        inner.slots.len() - 1
                    }
                };
                inner.ids.insert(id.to_owned(), index);
                nodes.push((v, index));
            }
            let g = inner
                .graphs
                .get_mut(&scope)
                .expect("created above, and only removed under this lock");
            insert_nodes(&g.graph, &nodes);
            g.nodes += count;
            if let Some(pending) = g.pending.as_mut() {
                pending.extend(nodes.iter().map(|(_, s)| *s));
            }
            self.graph_inserts
                .fetch_add(count as u64, Ordering::Relaxed);
        }
        // Rebuild the graphs where dead nodes have come to make up half the nodes.
        let due: Vec<ScopeId> = {
            let inner = self.inner.read();
            inner
                .graphs
                .iter()
                .filter(|(_, g)| g.pending.is_none() && g.removed > 0 && g.removed * 2 >= g.nodes)
                .map(|(s, _)| *s)
                .collect()
        };
        for scope in due {
            self.rebuild(scope);
        }
        Ok(())
    }

    /// Rebuilds `scope`'s graph from its live vectors and frees the slots of its dead nodes;
    /// returns how many slots were freed. The new graph is built without holding the lock.
    fn rebuild(&self, scope: ScopeId) -> usize {
        let now = self.clock.now_millis();
        let (live, capacity) = {
            let mut guard = self.inner.write();
            let inner = &mut *guard;
            let Some(g) = inner.graphs.get_mut(&scope) else {
                return 0;
            };
            if g.pending.is_some() {
                return 0; // another thread is rebuilding it
            }
            g.pending = Some(Vec::new());
            let live: Vec<(Vec<f32>, usize)> = inner
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.as_ref()
                        .filter(|s| s.scope == scope && s.live(now))
                        .map(|_| (self.vector(inner, i).to_vec(), i))
                })
                .collect();
            let capacity = live.len();
            (live, capacity)
        };
        let graph = new_graph(self.params, capacity);
        insert_nodes(&graph, &live);
        let mut members: HashSet<usize> = live.into_iter().map(|(_, s)| s).collect();
        self.rebuilds.fetch_add(1, Ordering::Relaxed);

        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let pending = inner
            .graphs
            .get_mut(&scope)
            .and_then(|g| g.pending.take())
            .unwrap_or_default();
        let late: Vec<(Vec<f32>, usize)> = pending
            .into_iter()
            .filter(|&i| {
                inner.slots[i]
                    .as_ref()
                    .is_some_and(|s| s.scope == scope && !s.removed)
            })
            .map(|i| (self.vector(inner, i).to_vec(), i))
            .collect();
        insert_nodes(&graph, &late);
        members.extend(late.iter().map(|(_, s)| *s));
        self.graph_inserts
            .fetch_add((members.len()) as u64, Ordering::Relaxed);

        let mut freed = 0;
        let mut removed = 0;
        for i in 0..inner.slots.len() {
            let Some(s) = inner.slots[i].as_ref() else {
                continue;
            };
            if s.scope != scope {
                continue;
            }
            if members.contains(&i) {
                removed += usize::from(s.removed);
            } else {
                // Not in the new graph, so dead (removed, or expired before the snapshot).
                if !s.removed {
                    if inner.ids.get(&s.id) == Some(&i) {
                        inner.ids.remove(&s.id);
                    }
                } else {
                    inner.tombstones -= 1;
                }
                inner.slots[i] = None;
                inner.free.push(i);
                freed += 1;
            }
        }
        if members.is_empty() {
            inner.graphs.remove(&scope);
        } else if let Some(g) = inner.graphs.get_mut(&scope) {
            g.graph = Arc::new(graph);
            g.nodes = members.len();
            g.removed = removed;
        }
        freed
    }
}

impl VectorIndex for HnswIndex {
    fn dimension(&self) -> usize {
        self.dim
    }

    fn insert(&self, id: &str, vector: &[f32], scope: &Scope, ttl: Option<Duration>) -> Result<()> {
        let v = self.prepare(vector)?;
        self.insert_prepared(vec![(id, v)], scope.id(), ttl)
    }

    fn search(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<Hit>> {
        let q = self.prepare(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let scope = scope.id();
        let now = self.clock.now_millis();
        let inner = self.inner.read();
        let Some(g) = inner.graphs.get(&scope) else {
            return Ok(Vec::new());
        };
        // Dead nodes take places in the graph's answer: ask for more until k live ones come
        // back or the whole graph has been asked for.
        let graph_query = graph_vector(&q);
        let mut want = k;
        let mut scored: Vec<(usize, f32)> = loop {
            let ef = self.ef_search.max(want);
            let found = g.graph.search(&graph_query, want, ef);
            let asked = found.len();
            let live: Vec<(usize, f32)> = found
                .into_iter()
                .map(|n| n.get_origin_id())
                .filter(|&i| {
                    inner
                        .slots
                        .get(i)
                        .and_then(Option::as_ref)
                        .is_some_and(|s| s.scope == scope && s.live(now))
                })
                .map(|i| {
                    let stored = self.vector(&inner, i);
                    let cos = vector::dot(&q, stored);
                    // Rounding can leave an exact repeat a hair under 1; the bitwise
                    // comparison only runs for near-1 candidates.
                    let sim = if cos > 1.0 - 1e-4 && stored == q.as_slice() {
                        1.0
                    } else {
                        vector::similarity(cos)
                    };
                    (i, sim)
                })
                .collect();
            if live.len() >= k || asked < want || want >= g.nodes {
                break live;
            }
            want = (want * 4).min(g.nodes);
        };
        scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        Ok(scored
            .into_iter()
            .filter_map(|(i, similarity)| {
                let slot = inner.slots[i].as_ref()?;
                slot.last_hit.store(self.next_tick(), Ordering::Relaxed);
                Some(Hit {
                    id: slot.id.clone(),
                    similarity,
                })
            })
            .collect())
    }

    fn remove(&self, id: &str) -> bool {
        let now = self.clock.now_millis();
        let mut inner = self.inner.write();
        let Some(&slot) = inner.ids.get(id) else {
            return false;
        };
        let was_live = inner.slots[slot].as_ref().is_some_and(|s| !s.expired(now));
        Self::tombstone(&mut inner, slot);
        was_live
    }

    fn compact(&self) -> usize {
        let now = self.clock.now_millis();
        let scopes: Vec<ScopeId> = {
            let mut inner = self.inner.write();
            self.reclaim_expired(&mut inner, now);
            inner
                .graphs
                .iter()
                .filter(|(_, g)| g.removed > 0)
                .map(|(s, _)| *s)
                .collect()
        };
        scopes.into_iter().map(|s| self.rebuild(s)).sum()
    }

    fn len(&self) -> usize {
        let now = self.clock.now_millis();
        self.inner
            .read()
            .slots
            .iter()
            .flatten()
            .filter(|s| s.live(now))
            .count()
    }

    fn persist(&self, path: &Path) -> Result<()> {
        let dump_dir = TempDir::create(temp_sibling(path, "dump"))?;
        let inner = self.inner.read();
        let mut graphs = Vec::with_capacity(inner.graphs.len());
        let mut blobs = Vec::with_capacity(inner.graphs.len() * 2);
        for (n, (scope, g)) in inner.graphs.iter().enumerate() {
            let base = format!("g{n}");
            let dumped = catch_unwind(AssertUnwindSafe(|| g.graph.file_dump(&dump_dir.0, &base)));
            match dumped {
                Ok(Ok(name)) if name == base => {}
                Ok(Ok(name)) => {
                    return Err(io_failure(
                        &dump_dir.0,
                        format!("hnsw_rs dumped to {name:?}, expected {base:?}"),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(io_failure(&dump_dir.0, format!("hnsw_rs dump failed: {e}")))
                }
                Err(_) => return Err(io_failure(&dump_dir.0, "hnsw_rs dump panicked".into())),
            }
            let graph = read_file(&dump_dir.0.join(format!("{base}.hnsw.graph")))?;
            let data = read_file(&dump_dir.0.join(format!("{base}.hnsw.data")))?;
            graphs.push(GraphRecord {
                scope: *scope,
                nodes: g.nodes as u64,
                graph_len: graph.len() as u64,
                data_len: data.len() as u64,
            });
            blobs.push(graph);
            blobs.push(data);
        }
        let meta = Meta {
            dimension: self.dim as u32,
            params: self.params,
            tick: self.tick.load(Ordering::Relaxed),
            slots: inner
                .slots
                .iter()
                .map(|s| {
                    s.as_ref().map(|s| SlotRecord {
                        id: s.id.clone(),
                        scope: s.scope,
                        expires_at_millis: s.expires_at,
                        last_hit: s.last_hit.load(Ordering::Relaxed),
                        removed: s.removed,
                    })
                })
                .collect(),
            graphs,
        };
        drop(inner);
        drop(dump_dir);
        let meta = postcard::to_stdvec(&meta)
            .map_err(|e| Error::InvalidInput(format!("cannot encode index: {e}")))?;
        let meta_len = (meta.len() as u64).to_le_bytes();
        let mut parts: Vec<&[u8]> = vec![&meta_len, &meta];
        parts.extend(blobs.iter().map(Vec::as_slice));
        file::write_parts(path, IndexKind::Hnsw, &parts)
    }
}

impl fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("max_entries", &self.max_entries)
            .field("m", &self.params.m)
            .field("ef_construction", &self.params.ef_construction)
            .field("ef_search", &self.ef_search)
            .field("slots", &inner.slots.len())
            .field("scopes", &inner.graphs.len())
            .field("tombstones", &inner.tombstones)
            .field("clock", &self.clock)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Persistence

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    dimension: u32,
    params: Params,
    tick: u64,
    slots: Vec<Option<SlotRecord>>,
    graphs: Vec<GraphRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SlotRecord {
    id: String,
    scope: ScopeId,
    expires_at_millis: Option<u64>,
    last_hit: u64,
    removed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct GraphRecord {
    scope: ScopeId,
    nodes: u64,
    graph_len: u64,
    data_len: u64,
}

/// A verified file: its metadata and the bytes its graph blobs are sliced from.
struct PersistedFile {
    meta: Meta,
    bytes: Vec<u8>,
    /// Where the blobs start in `bytes`, and where the payload ends.
    blobs: std::ops::Range<usize>,
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

impl PersistedFile {
    fn read(path: &Path) -> Result<Self> {
        let (bytes, payload) = file::read_verified(path, IndexKind::Hnsw)?;
        let body = &bytes[payload.clone()];
        if body.len() < 8 {
            return Err(corrupt("payload too short for its metadata length"));
        }
        let meta_len = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let meta_end = usize::try_from(meta_len)
            .ok()
            .and_then(|l| l.checked_add(8))
            .filter(|&end| end <= body.len())
            .ok_or_else(|| corrupt(format!("impossible metadata length {meta_len}")))?;
        let meta: Meta = postcard::from_bytes(&body[8..meta_end])
            .map_err(|e| corrupt(format!("cannot decode metadata: {e}")))?;
        let blobs_len: u64 = meta
            .graphs
            .iter()
            .try_fold(0u64, |acc, g| {
                acc.checked_add(g.graph_len)?.checked_add(g.data_len)
            })
            .ok_or_else(|| corrupt("impossible graph lengths"))?;
        if blobs_len != (body.len() - meta_end) as u64 {
            return Err(corrupt(format!(
                "graphs take {blobs_len} bytes, file holds {}",
                body.len() - meta_end
            )));
        }
        Ok(Self {
            meta,
            blobs: payload.start + meta_end..payload.end,
            bytes,
        })
    }

    /// Reloads the graphs and checks them against the slot table.
    fn into_inner(self, dim: usize) -> Result<Inner> {
        let Self { meta, bytes, blobs } = self;
        let mut inner = Inner {
            vectors: vec![0.0; meta.slots.len() * dim],
            ..Inner::default()
        };
        let mut filled = vec![false; meta.slots.len()];
        let mut at = blobs.start;
        for record in &meta.graphs {
            let graph_bytes = &bytes[at..at + record.graph_len as usize];
            at += record.graph_len as usize;
            let data_bytes = &bytes[at..at + record.data_len as usize];
            at += record.data_len as usize;
            let graph = reload_graph(graph_bytes, data_bytes)?;
            if graph.get_nb_point() as u64 != record.nodes || record.nodes == 0 {
                return Err(corrupt(format!(
                    "a graph holds {} nodes, metadata says {}",
                    graph.get_nb_point(),
                    record.nodes
                )));
            }
            let mut removed = 0;
            for point in graph.get_point_indexation() {
                let slot = point.get_origin_id();
                let Some(Some(s)) = meta.slots.get(slot) else {
                    return Err(corrupt(format!("graph node {slot} has no entry")));
                };
                if s.scope != record.scope || filled[slot] {
                    return Err(corrupt(format!("graph node {slot} is in the wrong graph")));
                }
                let v = point.get_v();
                if v.len() != dim || v.iter().any(|x| !x.is_finite()) {
                    return Err(corrupt(format!("graph node {slot} has an invalid vector")));
                }
                // The graph holds the vector scaled by a power of two: undoing it is exact.
                for (own, x) in inner.vectors[slot * dim..(slot + 1) * dim]
                    .iter_mut()
                    .zip(v)
                {
                    *own = x / GRAPH_SCALE;
                }
                filled[slot] = true;
                removed += usize::from(s.removed);
            }
            let previous = inner.graphs.insert(
                record.scope,
                ScopeGraph {
                    graph: Arc::new(graph),
                    nodes: record.nodes as usize,
                    removed,
                    pending: None,
                },
            );
            if previous.is_some() {
                return Err(corrupt("two graphs for one scope"));
            }
        }
        for (i, s) in meta.slots.into_iter().enumerate() {
            match s {
                None => {
                    inner.free.push(i);
                    inner.slots.push(None);
                }
                Some(s) => {
                    if !filled[i] {
                        return Err(corrupt(format!("entry {:?} has no graph node", s.id)));
                    }
                    if s.removed {
                        inner.tombstones += 1;
                    } else if inner.ids.insert(s.id.clone(), i).is_some() {
                        return Err(corrupt(format!("duplicate entry id {:?}", s.id)));
                    }
                    inner.slots.push(Some(Slot {
                        id: s.id,
                        scope: s.scope,
                        expires_at: s.expires_at_millis,
                        last_hit: AtomicU64::new(s.last_hit),
                        removed: s.removed,
                    }));
                }
            }
        }
        // Reuse low slots first.
        inner.free.reverse();
        Ok(inner)
    }
}

/// The one reloader of this process. hnsw_rs ties a reloaded graph's lifetime to the
/// `HnswIo` that read it (for memory-mapped data, which is not used here), so a graph that
/// outlives the load needs a `'static` reloader. It reads `graph.hnsw.{graph,data}` from a
/// private directory; the mutex serializes loads through it.
fn reloader() -> &'static (Mutex<()>, HnswIo, PathBuf) {
    static RELOADER: OnceLock<(Mutex<()>, HnswIo, PathBuf)> = OnceLock::new();
    RELOADER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lexicache-hnsw-load-{}", std::process::id()));
        (Mutex::new(()), HnswIo::new(&dir, "graph"), dir)
    })
}

/// Reloads one graph dumped by hnsw_rs from its two files' bytes (already checksummed).
fn reload_graph(graph: &[u8], data: &[u8]) -> Result<Graph> {
    let (lock, io, dir) = reloader();
    let _serialized = lock.lock().unwrap_or_else(|e| e.into_inner());
    let _dir = TempDir::create(dir.clone())?;
    write_file(&dir.join("graph.hnsw.graph"), graph)?;
    write_file(&dir.join("graph.hnsw.data"), data)?;
    match catch_unwind(AssertUnwindSafe(|| io.load_hnsw_with_dist(CosineDistance))) {
        Ok(Ok(graph)) => Ok(graph),
        Ok(Err(e)) => Err(corrupt(format!("cannot reload graph: {e}"))),
        Err(_) => Err(corrupt("cannot reload graph: hnsw_rs panicked")),
    }
}

/// A directory removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(dir: PathBuf) -> Result<Self> {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A path next to `path`, unique to this process and call.
fn temp_sibling(path: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut p = PathBuf::from(path);
    p.as_mut_os_string()
        .push(format!(".{what}-{}-{n}", std::process::id()));
    p
}

fn io_failure(path: &Path, msg: String) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(msg),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
