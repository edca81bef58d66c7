//! Contracts of lexicache: the [`CacheBackend`] trait, [`Error`], [`Capabilities`], health,
//! metrics, events, the [`Serializer`] and [`LockStore`] traits and the key rules.
//!
//! Backends (`lexicache-memory`, `lexicache-redis`, ...) implement [`CacheBackend`]; layers and
//! the typed `CacheService` build on it. Applications usually depend on the `lexicache` umbrella
//! crate instead of this one.
//!
//! ```
//! use std::sync::Arc;
//! use lexicache_core::{CacheBackend, Error, ErrorKind, KeyRules, SharedBackend};
//!
//! // Keys are checked in one place, so every backend rejects the same keys the same way.
//! let err: Error = KeyRules::new().validate("").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::KeyInvalid);
//!
//! // Backends are chosen at run time and shared as trait objects.
//! fn describe(backend: &SharedBackend) -> String {
//!     format!("{} (clear: {})", backend.name(), backend.capabilities().clear)
//! }
//! # let _ = describe;
//! ```
#![deny(missing_docs)]

mod backend;
mod capabilities;
mod error;
pub mod events;
pub mod glob;
mod health;
pub mod key;
pub mod lock;
pub mod metrics;
pub mod pubsub;
mod serializer;
mod stats;
mod value;

pub use async_trait::async_trait;
pub use backend::{CacheBackend, Expiry, SharedBackend};
pub use bytes::Bytes;
pub use capabilities::Capabilities;
pub use error::{BoxError, Error, ErrorKind, Operation, Result};
pub use events::{
    AsyncEventHandler, CacheEvent, CircuitState, EventBus, EventHandler, EvictionCause, HandlerId,
    HandlerStats,
};
pub use health::{HealthCheckResult, HealthStatus};
pub use key::{key_hash, KeyRules, DEFAULT_MAX_KEY_LEN};
pub use lock::{FencingToken, LockOwner, LockStore, SharedLockStore};
pub use metrics::{CacheMetrics, MetricsSnapshot, Outcome};
pub use pubsub::{PubSub, SharedPubSub, Subscription, SubscriptionEvent};
pub use serializer::Serializer;
pub use stats::{BackendStats, ServerStats};
pub use value::{CacheValue, Object};
