//! The typed lexicache facade: [`CacheService`] over any backend, with layers, graceful
//! degradation and stampede-protected [`get_or_set`](CacheService::get_or_set).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use lexicache_service::CacheService;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct User {
//!     id: u64,
//!     name: String,
//! }
//!
//! let cache = CacheService::memory().namespace("app:").build();
//! let alice = User { id: 42, name: "alice".into() };
//!
//! assert!(cache.set("user:42", &alice, Some(Duration::from_secs(300))).await);
//! assert_eq!(cache.get::<User>("user:42").await, Some(alice.clone()));
//!
//! // One loader for many concurrent callers; a hit does not call it.
//! let bob = cache
//!     .get_or_set("user:7", None, || async {
//!         Ok::<_, std::io::Error>(User { id: 7, name: "bob".into() })
//!     })
//!     .await?;
//! assert_eq!(bob.name, "bob");
//! assert_eq!(cache.metrics().sets, 2);
//! # Ok(()) }
//! ```
//!
//! Stampede protection and early refresh, with one service per process over a shared backend:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lexicache_memory::{MemoryBackend, MemoryLockStore};
//! use lexicache_service::{CacheService, Fallback, LoadOptions, Protection};
//!
//! // Remote backends bring their own lock store (`CacheBackend::lock_store`); here two
//! // "processes" share an in-process one.
//! let (backend, locks) = (MemoryBackend::new(), Arc::new(MemoryLockStore::new()));
//! let protection = Protection::new()
//!     .max_wait(Duration::from_secs(5))
//!     .on_timeout(Fallback::Load);
//! let a = CacheService::builder(backend.clone())
//!     .lock_store(locks.clone())
//!     .protection(protection.clone())
//!     .build();
//! let b = CacheService::builder(backend).lock_store(locks).protection(protection).build();
//!
//! let load = || async { Ok::<_, std::io::Error>(String::from("expensive")) };
//! let (x, y) = tokio::join!(a.get_or_set("report", None, load), b.get_or_set("report", None, load));
//! assert_eq!((x?, y?), ("expensive".to_owned(), "expensive".to_owned()));
//!
//! // Early refresh: XFetch and stale-while-revalidate need a 'static loader.
//! let options = LoadOptions::new()
//!     .ttl(Duration::from_secs(60))
//!     .xfetch(1.0)
//!     .stale_while_revalidate(Duration::from_secs(30))
//!     .ttl_jitter(0.1);
//! let n = a.get_or_set_with("count", options, || async { Ok::<_, std::io::Error>(3u32) }).await?;
//! assert_eq!(n, 3);
//! # Ok(()) }
//! ```
//!
//! - [`layers`]: namespace, circuit breaker, timeout, metrics and events, each a backend
//!   wrapping a backend (and forwarding its lock store);
//! - [`tags`]: `set_with_tags` and `invalidate_tags`, per-tag version tokens checked on read;
//! - [`memo`]: memoized function calls ([`CacheService::memo`]), the target of the `#[cached]`
//!   macro, and [`CacheService::invalidate_after`];
//! - [`scope`]: request scope, `cache_in_request` and request-scoped keys;
//! - [`single_flight`]: the coalescing behind `get_or_set`, usable on its own;
//! - [`Protection`], [`Fallback`]: stampede-protection settings
//!   ([`CacheServiceBuilder::protection`]); the mechanism is in
//!   [`lexicache_lock::protection`];
//! - [`LoadOptions`], [`EarlyRefresh`]: per-call and default early refresh (XFetch,
//!   stale-while-revalidate, TTL jitter); the frame format is in [`lexicache_lock::refresh`];
//! - [`inspect`]: what a stored entry is made of (tags and whether they are current, early
//!   refresh, the envelope's bytes, its TTL) without decoding it: the CLI's `get`.
#![deny(missing_docs)]

mod builder;
pub mod inspect;
pub mod layers;
mod load;
pub mod memo;
pub mod scope;
mod service;
pub mod tags;
pub use lexicache_lock::single_flight;

pub use builder::CacheServiceBuilder;
pub use lexicache_lock::protection::{Fallback, Protection};
pub use lexicache_lock::refresh::EarlyRefresh;
pub use load::LoadOptions;
pub use memo::{Invalidation, Memo};
pub use scope::{cache_in_request, request_scope, RequestScope, RequestScoped};
pub use service::CacheService;
pub use tags::TagSnapshot;
