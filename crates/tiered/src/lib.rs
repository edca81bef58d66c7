//! A two-level cache for lexicache: an in-process L1 ([`MemoryBackend`]) in front of any L2
//! (Redis, memcached, ...), with cross-process invalidation that survives lost messages and
//! reconnects.
//!
//! [`TieredBackend`] is itself a [`CacheBackend`], so a `CacheService` (and its layers, tags,
//! stampede protection) sits on top of it unchanged.
//!
//! - **Reads** go to L1, then L2; an L2 hit is copied into L1.
//! - **Writes and deletes** go to L2 first, then L1.
//! - **L1 TTL**: a copy lives at most [`l1_ttl`](TieredBackendBuilder::l1_ttl), never longer
//!   than the TTL it was written with, and never longer than the entry has left in L2 (which
//!   the memory and Redis backends report).
//!
//! # Invalidation across processes
//!
//! With an [invalidation channel](TieredBackendBuilder::invalidation) (for Redis:
//! `RedisBackend::pubsub()`), every write, delete, batch, pattern delete, clear and tag
//! invalidation publishes a numbered message before it returns; other processes drop the
//! affected L1 entries. A subscriber that sees a sequence gap, an unreadable message, dropped
//! messages, or a lost subscription clears its L1, and while the subscription is down it
//! bypasses L1 altogether. A heartbeat lease bounds what nothing reports (a hung connection, a
//! subscriber that fell behind):
//!
//! **A write that returned more than [`max_staleness`](TieredBackendBuilder::max_staleness)
//! ago (500 ms by default) is never read from another process's L1.** Typically the old copy
//! is gone well under a millisecond after the write returns; see docs/tiered.md for the
//! argument and the measured delays.
//!
//! Without a channel, each process sees its own changes at once and others' when its L1 copy
//! expires: the L1 TTL is then the bound.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lexicache_core::{Bytes, CacheBackend};
//! use lexicache_memory::MemoryBackend;
//! use lexicache_tiered::TieredBackend;
//!
//! // A memory "L2" keeps the example self-contained; in production it is Redis, with
//! // `.invalidation(Arc::new(redis.pubsub()))`.
//! let l2 = MemoryBackend::new();
//! let cache = TieredBackend::builder(MemoryBackend::new(), Arc::new(l2.clone()))
//!     .l1_ttl(Duration::from_secs(5))
//!     .build()
//!     .await?;
//!
//! cache.set("user:1", Bytes::from_static(b"alice"), Some(Duration::from_secs(60))).await?;
//! assert_eq!(l2.get("user:1").await?.as_deref(), Some(&b"alice"[..])); // written through
//! assert!(cache.l1().get("user:1").await?.is_some()); // and kept in L1
//!
//! l2.set("user:2", Bytes::from_static(b"bob"), None).await?;
//! assert_eq!(cache.get("user:2").await?.as_deref(), Some(&b"bob"[..])); // L2 hit ...
//! assert!(cache.l1().get("user:2").await?.is_some()); // ... copied into L1
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod backend;
mod builder;
mod gate;
mod message;
mod sync;

pub use backend::{TieredBackend, TieredStats};
pub use builder::{TieredBackendBuilder, DEFAULT_L1_TTL, DEFAULT_MAX_STALENESS};

#[doc(no_inline)]
pub use lexicache_core::CacheBackend;
#[doc(no_inline)]
pub use lexicache_memory::MemoryBackend;
