//! Locks and stampede protection for lexicache.
//!
//! The pieces, from the bottom up:
//!
//! - A [`LockStore`](lexicache_core::LockStore) (in `lexicache-core`, implemented by
//!   `lexicache-memory`, `lexicache-redis` and `lexicache-memcached`) grants expiring, owned
//!   locks with compare-and-delete and compare-and-expire semantics.
//! - [`LockManager`] acquires from a store: [`try_lock`](LockManager::try_lock) (one attempt)
//!   and [`lock`](LockManager::lock) (retry with jitter until a deadline, then
//!   [`ErrorKind::LockTimeout`](lexicache_core::ErrorKind::LockTimeout)) return a
//!   [`LockGuard`] that lasts its TTL unless extended, and releases when dropped.
//! - A [`RenewingLock`] is a lock that a background task extends every third of its TTL (see
//!   [`RenewOptions`]) up to a maximum lease. Its [`LostSignal`] fires, with a [`LostReason`],
//!   when a renewal finds the lock expired or taken, when renewals keep failing until the lock's
//!   deadline, or when the maximum lease ran out. Renewal never re-acquires a lock and never
//!   runs after a release.
//! - [`LockManager::locked`] runs scoped work under a renewing lock and releases it on every
//!   exit path (`Ok`, `Err`, panic, cancellation). The work gets a [`Lease`].
//! - Every acquisition carries a [`FencingToken`](lexicache_core::FencingToken) larger than all
//!   earlier ones for the resource. A lock can be lost without its holder noticing in time (a
//!   long pause, a partition), so a resource that must never see two writers should reject
//!   writes carrying a token older than the newest it has seen.
//! - [`SingleFlight`] coalesces concurrent loads of one key within a process;
//!   [`protection`] combines it with a distributed lock against cache stampedes; [`refresh`]
//!   holds early refresh (XFetch, stale-while-revalidate, TTL jitter).
//!
//! Everything runs on tokio's clock, so tests can pause time and step through expiry and
//! renewal.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::time::Duration;
//! use lexicache_core::ErrorKind;
//! use lexicache_lock::{LockManager, LostReason, RenewOptions};
//! use lexicache_memory::MemoryLockStore;
//!
//! let locks = LockManager::new(MemoryLockStore::new());
//! let ttl = Duration::from_secs(30);
//!
//! // A plain guard: one owner at a time, fencing tokens grow.
//! let first = locks.try_lock("report", ttl).await?.expect("free");
//! assert!(locks.try_lock("report", ttl).await?.is_none());
//! let fence = first.fence();
//! first.release().await?;
//!
//! // Waiting for a taken lock gives up with LockTimeout.
//! let held = locks.lock("report", ttl, Duration::ZERO, Duration::from_millis(10)).await?;
//! assert!(held.fence() > fence);
//! let err = locks
//!     .lock("report", ttl, Duration::from_millis(30), Duration::from_millis(10))
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::LockTimeout);
//! drop(held); // released in the background
//!
//! // A renewing lock outlives its TTL until released; its lost signal says why it ended.
//! let renewing = locks
//!     .lock_renewing("report", ttl, ttl, Duration::from_millis(10), RenewOptions::default())
//!     .await?;
//! let lost = renewing.lost();
//! assert_eq!(lost.reason(), None);
//! renewing.release().await?;
//! assert_eq!(lost.lost().await, LostReason::Released);
//!
//! // Scoped work: released however the closure ends.
//! let n = locks.locked("report", ttl, |lease| async move { Ok(lease.fence().get()) }).await?;
//! assert!(n > fence.get());
//! assert!(!locks.store().is_locked("report").await?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod guard;
mod manager;
mod renew;

pub mod protection;
pub mod refresh;
pub mod single_flight;

pub use guard::LockGuard;
pub use manager::{LockManager, DEFAULT_RETRY, DEFAULT_WAIT};
pub use renew::{Lease, LostReason, LostSignal, RenewOptions, RenewingLock};
pub use single_flight::SingleFlight;
