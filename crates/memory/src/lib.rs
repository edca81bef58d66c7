//! The in-process lexicache backend, on [moka](https://docs.rs/moka).
//!
//! [`MemoryBackend`] keeps entries in a bounded, concurrent moka cache:
//!
//! - per-entry TTL plus a default TTL, following tokio's clock (so tests can pause and advance
//!   time);
//! - a bound by entry count or by bytes (a weigher of key plus value);
//! - eviction events with their cause (expired, size, explicit);
//! - a key prefix (namespace), with `clear` and glob `delete_pattern` limited to it;
//! - decoded values kept beside the bytes, so typed hits through `CacheService` skip decoding;
//! - [`MemoryLockStore`], a lock store for the tasks of one process.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::time::Duration;
//! use lexicache_core::{Bytes, CacheBackend};
//! use lexicache_memory::MemoryBackend;
//!
//! let cache = MemoryBackend::builder()
//!     .max_entries(10_000)
//!     .default_ttl(Duration::from_secs(300))
//!     .prefix("app:")
//!     .build();
//! cache.set("user:1", Bytes::from_static(b"alice"), None).await?;
//! cache.set("user:2", Bytes::from_static(b"bob"), None).await?;
//! assert_eq!(cache.get("user:1").await?.as_deref(), Some(&b"alice"[..]));
//! assert_eq!(cache.delete_pattern("user:*").await?, 2);
//! assert_eq!(cache.get("user:2").await?, None);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod backend;
mod builder;
mod entry;
mod lock;

pub use backend::MemoryBackend;
pub use builder::{MemoryBackendBuilder, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_VALUE_SIZE};
pub use lock::MemoryLockStore;
