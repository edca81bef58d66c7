//! The typed lexicache facade: [`CacheService`] over any backend, with layers, graceful
//! degradation and single-flight [`get_or_set`](CacheService::get_or_set).
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
//! - [`layers`]: namespace, timeout, metrics and events, each a backend wrapping a backend;
//! - [`single_flight`]: the coalescing behind `get_or_set`, usable on its own.
#![deny(missing_docs)]

mod builder;
pub mod layers;
mod service;
pub use lexicache_lock::single_flight;

pub use builder::CacheServiceBuilder;
pub use service::CacheService;
