//! The Memcached lexicache backend, on [async-memcached](https://docs.rs/async-memcached).
//!
//! [`MemcachedBackend`] spreads keys over one or more servers and keeps a small connection pool
//! per server:
//!
//! - **Servers.** Keys go to servers by ketama-style consistent hashing ([`HashRing`], SHA-256,
//!   160 points per server), so adding or removing one of `N` servers moves only about `1/N`
//!   of the keys. Every client must list the same servers, spelled the same way.
//! - **Keys.** Memcached keys cannot hold spaces or control characters, nor exceed 250 bytes.
//!   Every key (namespace prefix included) goes through [`wire_key`]: a safe key (printable
//!   ASCII, at most 250 bytes) is sent unchanged, any other becomes [`HASHED_KEY_MARKER`] plus
//!   its SHA-256 in hex. No key can inject a command.
//! - **TTLs** ([`exptime`]). Rounded up to whole seconds (never to 0, which means "no expiry");
//!   over 30 days, sent as an absolute Unix time as memcached requires. `Some(Duration::ZERO)`
//!   deletes the key; `None` means the default TTL, or no expiry.
//! - **Values** over `max_value_size` are rejected with
//!   [`ErrorKind::ValueTooLarge`](lexicache_core::ErrorKind::ValueTooLarge) before anything is
//!   sent, and so is a value over it that another client stored, when it is read. The default
//!   follows the servers' `item_size_max` (1 MiB unless memcached runs with `-I`) minus
//!   [`ITEM_OVERHEAD`].
//! - **Batches.** `get_many` sends one multi-key `get` per server; `set_many` pipelines its
//!   `set`s over one connection per server; `delete_many` deletes one key after another on one
//!   connection per server (memcached's `delete` has no multi-key form that reports which keys
//!   existed). Servers are worked on concurrently.
//! - **Failures.** Per-command and connect timeouts ([`DEFAULT_COMMAND_TIMEOUT`],
//!   [`DEFAULT_CONNECT_TIMEOUT`]). A server that cannot be reached is marked down and retried
//!   with backoff; meanwhile its keys fail at once with a retryable
//!   [`ErrorKind::Connection`](lexicache_core::ErrorKind::Connection) error, while the other
//!   servers' keys keep working. A timed-out or cancelled exchange drops its connection, so no
//!   reply is ever read by the wrong caller.
//! - **Unsupported.** `clear` and `delete_pattern` return
//!   [`ErrorKind::Unsupported`](lexicache_core::ErrorKind::Unsupported) and
//!   [`Capabilities`](lexicache_core::Capabilities) says so: memcached cannot list keys, and
//!   `flush_all` would empty every namespace.
//! - **Locks.** [`MemcachedLockStore`] (also what
//!   [`CacheBackend::lock_store`](lexicache_core::CacheBackend::lock_store) returns) takes locks
//!   with `add`, hands out fencing tokens from a per-resource counter and releases or extends
//!   only by compare-and-swap. Memcached neither replicates nor persists and may evict, so read
//!   its limits before relying on it.
//!
//! The key mapping and the ring need no server:
//!
//! ```
//! use lexicache_memcached::{wire_key, HashRing, HASHED_KEY_MARKER};
//!
//! assert_eq!(wire_key("app:user:42"), "app:user:42");
//! assert!(wire_key("app:a key with spaces").starts_with(HASHED_KEY_MARKER));
//!
//! let ring = HashRing::new(&["10.0.0.1:11211", "10.0.0.2:11211"]);
//! assert!(ring.server_for("app:user:42").is_some());
//! ```
//!
//! Connecting (the test suite runs the same calls against real servers):
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::time::Duration;
//! use lexicache_core::{Bytes, CacheBackend};
//! use lexicache_memcached::MemcachedBackend;
//!
//! let cache = MemcachedBackend::builder()
//!     .servers(["127.0.0.1:11211", "127.0.0.1:11212"])
//!     .prefix("app:")
//!     .connect()
//!     .await?;
//! cache.set("user:1", Bytes::from_static(b"alice"), Some(Duration::from_secs(300))).await?;
//! assert_eq!(cache.get("user:1").await?.as_deref(), Some(&b"alice"[..]));
//! assert!(cache.delete("user:1").await?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod backend;
mod builder;
mod keys;
mod lock;
mod pool;
mod ring;
mod stats;
mod ttl;

/// The driver, re-exported so its types can be named without a separate dependency.
pub use async_memcached;
pub use backend::MemcachedBackend;
pub use builder::{
    MemcachedBackendBuilder, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_ITEM_SIZE_MAX, DEFAULT_MAX_VALUE_SIZE, DEFAULT_POOL_SIZE,
    ITEM_OVERHEAD,
};
pub use keys::{is_safe_key, wire_key, HASHED_KEY_MARKER, MAX_WIRE_KEY_LEN};
pub use lock::{MemcachedLockStore, DEFAULT_FENCE_TTL, FENCE_KEY_PREFIX, LOCK_KEY_PREFIX};
pub use ring::{HashRing, DEFAULT_POINTS_PER_SERVER};
pub use ttl::{exptime, MAX_RELATIVE_TTL};
