//! Async caching for Rust: one typed API over an in-process cache, Redis and Memcached, with
//! single-flight loads, graceful degradation, layers, metrics, health and events.
//!
//! This is the umbrella crate: it re-exports the contracts of `lexicache-core`, the typed
//! [`CacheService`] of `lexicache-service` and, behind features, the backends. Depend on it
//! rather than on the individual crates.
//!
//! ```
//! # #[tokio::main] async fn main() -> lexicache::Result<()> {
//! // Cargo.toml: lexicache = "0.1", tokio = { version = "1", features = ["full"] },
//! //             serde = { version = "1", features = ["derive"] }
//! use std::time::Duration;
//! use lexicache::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct User { id: u64, name: String }
//!
//! // The embedded moka backend, with every key under "app:".
//! let cache = CacheService::memory().namespace("app:").build();
//!
//! let alice = User { id: 42, name: "Alice".into() };
//! cache.set("user:42", &alice, Some(Duration::from_secs(300))).await;
//! let hit: Option<User> = cache.get("user:42").await;
//! assert_eq!(hit, Some(alice));
//!
//! // Concurrent callers of a cold key share one loader run; the result is cached.
//! let report: String = cache
//!     .get_or_set("report:today", Some(Duration::from_secs(60)), || async {
//!         Ok::<_, std::io::Error>("42 active users".to_owned())
//!     })
//!     .await?;
//! assert_eq!(report, "42 active users");
//! assert_eq!(cache.metrics().hits, 1);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `memory` | yes | `MemoryBackend` (moka, in-process) and `CacheService::memory` |
//! | `macros` | yes | the attribute macros `#[cached]`, `#[cache_in_request]` and `#[invalidate]` |
//! | `redis` | no | `RedisBackend` (fred: standalone, cluster, sentinel) in `redis` |
//! | `memcached` | no | `MemcachedBackend` (async-memcached, many servers) in `memcached` |
//! | `compression` | no | zstd `Compressing` in [`serializers`] |
//! | `crypto` | no | HMAC `Signed`, AEAD `Encrypted` and the secret store in [`serializers`] |
//! | `config` | no | `config`: configuration from env/YAML/JSON/TOML and the `CacheProvider` (brings every backend and serializer) |
//! | `semantic` | no | `semantic`: the semantic cache for LLM answers (exact hash, HNSW/flat vector search, guards, scopes) |
//! | `semantic-candle` | no | `semantic` plus `MiniLmEmbedder`, all-MiniLM-L6-v2 in pure Rust (candle) |
//! | `full` | no | every backend and feature |
//!
//! Locks and stampede protection ([`lock`]), tags, memoization ([`memo`]), request scope
//! ([`scope`]), the circuit breaker ([`layers`]) and event handlers ([`events`]) need no
//! feature. The guide (`docs/guide.md`, run as doctests of this crate) walks through each.
//!
//! # Where things are
//!
//! - [`CacheBackend`] is the contract every backend implements: bytes under string keys.
//! - [`layers`] wrap a backend in a backend: namespace, circuit breaker, timeout, metrics,
//!   events.
//! - [`single_flight`] coalesces concurrent loads of one key; `get_or_set` is built on it.
//! - [`lock`] holds the lock manager, the auto-renewing lock with its lost signal and fencing
//!   tokens, and the stampede-protection settings; [`LockStore`] is the contract of lock stores.
//! - [`CacheService`] is the typed facade on top: serializer, `get_or_set`, tags
//!   (`set_with_tags`, `invalidate_tags`; [`tags`]), degradation.
//! - [`memo`] and [`scope`] memoize function calls, across processes or within one request.
//! - [`metrics`], [`events`], [`glob`] and [`key`] are the shared building blocks.
#![deny(missing_docs)]

pub use lexicache_core::*;
pub use lexicache_serde::{Json, Postcard};
pub use lexicache_service::{
    inspect, layers, single_flight, CacheService, CacheServiceBuilder, LoadOptions,
};

/// Memoization: [`CacheService::memo`] and its [`Memo`](memo::Memo) calls (`remember`,
/// `cacheable`, `conditional`), [`CacheService::invalidate_after`], and the process-wide cache
/// the `#[cached]` macro uses when it is given none.
pub mod memo {
    pub use lexicache_service::memo::*;
}

/// Tags: per-tag version tokens checked on read (the design, the frame, the bounds).
pub mod tags {
    pub use lexicache_service::tags::*;
}

/// Configuration from env, YAML, JSON and TOML (figment), validated, and the
/// [`CacheProvider`](config::CacheProvider) that builds named services from it: the whole
/// `lexicache-config` crate.
#[cfg(feature = "config")]
pub mod config {
    pub use lexicache_config::*;
}

/// The semantic cache for LLM answers: exact hash, then vector similarity, then miss, with
/// mandatory scopes and false-hit guards; the whole `lexicache-semantic` crate
/// (docs/semantic.md).
#[cfg(feature = "semantic")]
pub mod semantic {
    pub use lexicache_semantic::*;
}

/// Request scope: memoized calls and request-scoped keys that live as long as one request.
pub mod scope {
    pub use lexicache_service::scope::*;
}

#[cfg(feature = "macros")]
pub use lexicache_macros::{cache_in_request, cached, invalidate};

/// Locks and stampede protection: the whole `lexicache-lock` crate.
pub mod lock {
    pub use lexicache_core::lock::*;
    pub use lexicache_lock::*;
}

/// Serializers and the value envelope: the whole `lexicache-serde` crate. [`Json`] (the
/// default) and [`Postcard`] are always here; `Compressing` comes with feature `compression`,
/// and `Signed`, `Encrypted` and the secret store with feature `crypto`.
pub mod serializers {
    pub use lexicache_serde::*;
}

#[cfg(feature = "memory")]
pub use lexicache_memory::{MemoryBackend, MemoryBackendBuilder};

/// The in-process backend on moka (feature `memory`): the whole `lexicache-memory` crate.
#[cfg(feature = "memory")]
pub mod memory {
    pub use lexicache_memory::*;
}

#[cfg(feature = "redis")]
pub use lexicache_redis::{RedisBackend, RedisBackendBuilder};

/// The Redis backend on fred (feature `redis`): the whole `lexicache-redis` crate, including its
/// re-export of `fred`.
#[cfg(feature = "redis")]
pub mod redis {
    pub use lexicache_redis::*;
}

#[cfg(feature = "memcached")]
pub use lexicache_memcached::{MemcachedBackend, MemcachedBackendBuilder};

/// The Memcached backend on async-memcached (feature `memcached`): the whole
/// `lexicache-memcached` crate, including its re-export of `async_memcached`.
#[cfg(feature = "memcached")]
pub mod memcached {
    pub use lexicache_memcached::*;
}

#[cfg(feature = "tiered")]
pub use lexicache_tiered::{TieredBackend, TieredBackendBuilder};

/// The two-level cache (feature `tiered`): the whole `lexicache-tiered` crate.
#[cfg(feature = "tiered")]
pub mod tiered {
    pub use lexicache_tiered::*;
}

/// The names most programs need: `use lexicache::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CacheBackend, CacheService, CacheServiceBuilder, Error, ErrorKind, Json, Postcard, Result,
        Serializer, SharedBackend,
    };

    #[cfg(feature = "memory")]
    pub use crate::MemoryBackend;

    #[cfg(feature = "memcached")]
    pub use crate::MemcachedBackend;

    #[cfg(feature = "redis")]
    pub use crate::RedisBackend;
}

/// The examples of `docs/guide.md`, run as doctests so the guide cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct Guide;
