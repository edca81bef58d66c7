//! The Redis backend of lexicache, on [fred](https://docs.rs/fred): standalone, Redis Cluster
//! and Sentinel.
//!
//! [`RedisBackend`] implements [`CacheBackend`](lexicache_core::CacheBackend) over one shared,
//! pipelining fred client (never a client per task):
//!
//! - TTLs in milliseconds (`SET .. PX`), rounded up and never to zero;
//! - batches in one round trip (`MGET`, pipelined `SET`, `DEL`), split by hash slot in a cluster;
//! - `delete_pattern` and `clear` by `SCAN` + `UNLINK` on every primary, limited to the
//!   backend's key prefix (never `KEYS`, `FLUSHDB` or `FLUSHALL`);
//! - values over `max_value_size` are [`ValueTooLarge`](lexicache_core::ErrorKind::ValueTooLarge)
//!   errors, on writes before anything is sent, and on reads (a value another client stored)
//!   instead of a hit;
//! - health from `PING` and the replication role of every primary;
//! - `Connected` / `Disconnected` [events](lexicache_core::events) on an [`EventBus`](lexicache_core::EventBus);
//! - distributed locks with fencing tokens ([`RedisLockStore`], atomic Lua scripts), which
//!   `CacheBackend::lock_store` hands to stampede protection.
//!
//! fred's own defaults suit a database client, not a cache: it never reconnects, never times
//! out a command and queues without bound. lexicache sets a reconnect policy with backoff, a
//! [command timeout](DEFAULT_COMMAND_TIMEOUT), a [bounded buffer](DEFAULT_MAX_COMMAND_BUFFER)
//! and fail-fast while disconnected, so a dead Redis becomes fast
//! [`Connection`](lexicache_core::ErrorKind::Connection) or
//! [`Timeout`](lexicache_core::ErrorKind::Timeout) errors, which `CacheService` turns into
//! defaults. Every setting can be changed on the [`RedisBackendBuilder`].
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> lexicache_core::Result<()> {
//! use std::time::Duration;
//! use lexicache_core::{Bytes, CacheBackend};
//! use lexicache_redis::RedisBackend;
//!
//! let cache = RedisBackend::builder()
//!     .url("redis://127.0.0.1:6390")
//!     .prefix("app:")
//!     .command_timeout(Duration::from_millis(250))
//!     .connect()
//!     .await?;
//! cache.set("user:1", Bytes::from_static(b"alice"), Some(Duration::from_secs(60))).await?;
//! assert_eq!(cache.get("user:1").await?.as_deref(), Some(&b"alice"[..]));
//! assert_eq!(cache.delete_pattern("user:*").await?, 1);
//! # Ok(()) }
//! ```
//!
//! Settings can be built and checked without a server; passwords never show in `Debug`:
//!
//! ```
//! use std::time::Duration;
//! use lexicache_redis::{Deployment, RedisConfig, DEFAULT_COMMAND_TIMEOUT};
//!
//! let config = RedisConfig::from_url(
//!     "redis-sentinel://:s3cret@127.0.0.1:26390/0?sentinelServiceName=lexicache",
//! )?;
//! assert!(matches!(config.deployment, Deployment::Sentinel { ref master, .. } if master == "lexicache"));
//! assert_eq!(config.command_timeout, DEFAULT_COMMAND_TIMEOUT);
//! assert!(!format!("{config:?}").contains("s3cret"));
//! # Ok::<(), lexicache_core::Error>(())
//! ```
//!
//! The driver is re-exported as [`fred`], so its types (reconnect policies, TLS settings, the
//! [`client`](RedisBackend::client) for other commands) need no separate dependency.
#![deny(missing_docs)]

mod backend;
mod builder;
mod config;
mod error;
mod events;
mod lock;
mod pattern;
mod pubsub;
mod stall;
mod stats;

pub use backend::RedisBackend;
pub use builder::{RedisBackendBuilder, DEFAULT_MAX_VALUE_SIZE};
pub use config::{
    Deployment, RedisConfig, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_COMMAND_BUFFER, DEFAULT_PORT, DEFAULT_RECONNECT_MAX_DELAY,
    DEFAULT_RECONNECT_MIN_DELAY, DEFAULT_SENTINEL_PORT, DEFAULT_UNRESPONSIVE_TIMEOUT,
};
pub use fred;
pub use lock::{RedisLockStore, DEFAULT_FENCE_TTL};
pub use pubsub::{
    RedisPubSub, DEFAULT_SUBSCRIBER_NAME, EVENT_QUEUE, SUBSCRIBER_BROADCAST_CAPACITY,
};
