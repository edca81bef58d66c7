//! [`LockGuard`]: one held lock, released explicitly or, best effort, when dropped.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lexicache_core::lock::{FencingToken, LockOwner, SharedLockStore};
use lexicache_core::{key_hash, Result};
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::renew::{RenewOptions, RenewingLock};

/// What identifies one acquisition: the store, the resource, its owner and fencing token.
pub(crate) struct Held {
    pub(crate) store: SharedLockStore,
    pub(crate) resource: Arc<str>,
    pub(crate) owner: LockOwner,
    pub(crate) fence: FencingToken,
    pub(crate) ttl: Duration,
}

impl Held {
    /// Releases the lock in a task on `runtime` (or the current runtime), ignoring the outcome.
    ///
    /// Used by drops, which cannot wait. Without a runtime nothing is spawned and the lock
    /// expires after its TTL, which is the store's contract for any lock nobody releases.
    pub(crate) fn release_in_background(self: Arc<Self>, runtime: Option<&Handle>) {
        let Some(runtime) = runtime.cloned().or_else(|| Handle::try_current().ok()) else {
            tracing::debug!(
                resource = %key_hash(&self.resource),
                "lock dropped outside a tokio runtime; it expires after its ttl"
            );
            return;
        };
        drop(runtime.spawn(async move {
            if let Err(e) = self.release().await {
                tracing::debug!(
                    resource = %key_hash(&self.resource),
                    error = %e,
                    "releasing a dropped lock failed; it expires after its ttl"
                );
            }
        }));
    }

    pub(crate) async fn release(&self) -> Result<()> {
        self.store.release(&self.resource, &self.owner).await
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("store", &self.store.name())
            .field("resource", &self.resource)
            .field("owner", &self.owner)
            .field("fence", &self.fence)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// `instant + d`, saturating far in the future instead of overflowing.
pub(crate) fn after(instant: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    instant
        .checked_add(d)
        .unwrap_or_else(|| instant + FAR.min(d))
}

/// A lock held on one resource, from [`LockManager::try_lock`](crate::LockManager::try_lock)
/// or [`LockManager::lock`](crate::LockManager::lock).
///
/// The lock lasts its TTL unless [`extend`](Self::extend)ed; it is not renewed in the
/// background (see [`RenewingLock`] for that). [`release`](Self::release) gives it up and
/// reports whether it was still held. Dropping the guard without releasing releases it best
/// effort in a task spawned on the tokio runtime it was acquired on; if there is none, the lock
/// expires after its TTL. Dropping never panics.
///
/// Work protected by the lock should pass [`fence`](Self::fence) to the resource it changes,
/// so a holder that lost the lock without noticing (a long pause) is refused there.
#[must_use = "dropping a LockGuard releases the lock at once"]
pub struct LockGuard {
    held: Arc<Held>,
    /// When the acquisition started: the lock's lifetime is measured from here.
    acquired: Instant,
    /// The lock's last known deadline: the start of its last successful acquisition or
    /// extension plus that TTL.
    deadline: Mutex<Instant>,
    runtime: Option<Handle>,
    /// Whether dropping the guard still has to release the lock.
    armed: bool,
}

impl LockGuard {
    pub(crate) fn new(held: Held, acquired: Instant) -> Self {
        let deadline = after(acquired, held.ttl);
        Self {
            held: Arc::new(held),
            acquired,
            deadline: Mutex::new(deadline),
            runtime: Handle::try_current().ok(),
            armed: true,
        }
    }

    /// The fencing token of this acquisition: larger than that of every earlier acquisition
    /// of the resource.
    #[must_use]
    pub fn fence(&self) -> FencingToken {
        self.held.fence
    }

    /// The owner the store knows this acquisition by.
    #[must_use]
    pub fn owner(&self) -> &LockOwner {
        &self.held.owner
    }

    /// The locked resource.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.held.resource
    }

    /// The TTL the lock was acquired with.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.held.ttl
    }

    /// When the lock would expire at the latest, as far as this guard knows: the start of the
    /// last successful acquisition or [`extend`](Self::extend) plus its TTL.
    ///
    /// The store may keep the lock a little longer (it starts counting when the command
    /// arrives); it never keeps it for less.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resets the lock's expiry to `ttl` from now.
    ///
    /// # Errors
    ///
    /// The store's errors: [`ErrorKind::LockNotHeld`](lexicache_core::ErrorKind::LockNotHeld)
    /// if the lock expired, [`ErrorKind::LockOwnership`](lexicache_core::ErrorKind::LockOwnership)
    /// if another owner took it since, or a connection error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped call leaves the lock extended or not.
    pub async fn extend(&self, ttl: Duration) -> Result<()> {
        let start = Instant::now();
        self.held
            .store
            .extend(&self.held.resource, &self.held.owner, ttl)
            .await?;
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = after(start, ttl);
        Ok(())
    }

    /// Releases the lock.
    ///
    /// # Errors
    ///
    /// The store's errors: [`ErrorKind::LockNotHeld`](lexicache_core::ErrorKind::LockNotHeld)
    /// if the lock already expired, [`ErrorKind::LockOwnership`](lexicache_core::ErrorKind::LockOwnership)
    /// if another owner holds it now (that owner's lock is left alone), or a connection error.
    ///
    /// # Cancel safety
    ///
    /// If the returned future is dropped before the store answers, the guard's drop releases
    /// the lock again in the background; releasing twice is harmless.
    pub async fn release(mut self) -> Result<()> {
        let result = self.held.release().await;
        self.armed = false;
        result
    }

    /// Turns the guard into a [`RenewingLock`] that extends the lock in the background.
    ///
    /// The maximum lease in `options` is measured from this guard's acquisition.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) if called outside a tokio
    /// runtime (renewal runs in a tokio task); the lock is then released in the background
    /// if possible, or expires after its TTL.
    pub fn into_renewing(mut self, options: RenewOptions) -> Result<RenewingLock> {
        let deadline = self.deadline();
        let renewing = RenewingLock::start(
            self.held.clone(),
            self.acquired,
            deadline,
            self.runtime.clone(),
            &options,
        )?;
        self.armed = false;
        Ok(renewing)
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            self.held
                .clone()
                .release_in_background(self.runtime.as_ref());
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("store", &self.held.store.name())
            .field("resource", &self.held.resource)
            .field("owner", &self.held.owner)
            .field("fence", &self.held.fence)
            .field("ttl", &self.held.ttl)
            .field("released", &!self.armed)
            .finish()
    }
}
