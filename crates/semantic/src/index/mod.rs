//! [`VectorIndex`], the vector index contract, and its implementations.
//!
//! # Similarity convention
//!
//! Every index reports the **cosine similarity of the two vectors, clamped to [0, 1]**:
//! vectors pointing the same way score 1.0, orthogonal or opposite vectors score 0.0.
//! Clamping was chosen over `(1 + cos) / 2` so that a threshold means the same number as the
//! raw cosine published for an embedding model (0.90 here is cosine 0.90, not 0.80); the
//! lost negative range carries no useful "how similar" information for text. An exact
//! repeat of a stored vector always scores exactly 1.0. Tests pin all of this.
//!
//! # Entries
//!
//! An entry is an id, a vector, a [`Scope`] and an optional TTL. A search only returns entries
//! of the query's scope that have not expired. Removal is a soft delete (a tombstone) until
//! [`VectorIndex::compact`] reclaims the space; expired entries are reclaimed the same way,
//! and by an insert that finds the index full.

mod file;
mod flat;
mod hnsw;

use std::{
    fmt::Debug,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use flat::{FlatIndex, FlatIndexBuilder, DEFAULT_MAX_ENTRIES};
pub use hnsw::{
    HnswIndex, HnswIndexBuilder, HnswStats, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M,
};

use crate::{Result, Scope};

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The id the entry was inserted with.
    pub id: String,
    /// Cosine similarity clamped to [0, 1] (see the [module docs](self)).
    pub similarity: f32,
}

/// A store of vectors searched by similarity, partitioned by [`Scope`].
///
/// Methods are synchronous: they are CPU work on memory (and file I/O for
/// [`persist`](Self::persist)). Large indexes should be searched from
/// `tokio::task::spawn_blocking` rather than on an async worker.
pub trait VectorIndex: Send + Sync + Debug {
    /// The length every vector must have.
    fn dimension(&self) -> usize;

    /// Stores `vector` under `id` in `scope`, replacing any entry with the same id. With a
    /// `ttl`, the entry stops being returned once it has elapsed.
    ///
    /// When the index is at its `max_entries` bound, expired entries are reclaimed first,
    /// then the least recently hit entry is evicted. A wrong dimension is
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch); a zero or non-finite
    /// vector is [`Error::InvalidInput`](crate::Error::InvalidInput).
    fn insert(&self, id: &str, vector: &[f32], scope: &Scope, ttl: Option<Duration>) -> Result<()>;

    /// The up to `k` live entries of `scope` most similar to `query`, best first. Returned
    /// entries count as hit, which protects them from eviction.
    fn search(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<Hit>>;

    /// Soft-deletes the entry `id`; it is never returned again. Returns whether it existed
    /// (expired entries count as absent).
    fn remove(&self, id: &str) -> bool;

    /// Reclaims the space of removed and expired entries; returns how many were reclaimed.
    fn compact(&self) -> usize;

    /// The number of live (not removed, not expired) entries.
    fn len(&self) -> usize;

    /// Whether [`len`](Self::len) is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the live entries to `path` (atomically: a temporary file, then a rename), so
    /// a restart reloads instead of re-embedding.
    fn persist(&self, path: &Path) -> Result<()>;
}

/// The time source of entry TTLs, in milliseconds since the Unix epoch.
///
/// Wall-clock time (not a monotonic clock) because deadlines are persisted with the index
/// and must keep their meaning after a restart. Tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use lexicache_semantic::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_millis(), 3_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `start_millis`.
    pub fn new(start_millis: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_millis)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
