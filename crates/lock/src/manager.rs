//! [`LockManager`]: acquires locks from a [`LockStore`] as guards, renewing locks or scoped work.

use std::fmt;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use lexicache_core::lock::{LockOwner, LockStore, SharedLockStore};
use lexicache_core::{key_hash, Error, ErrorKind, Operation, Result};
use tokio::time::{sleep_until, Instant};

use crate::guard::{after, Held, LockGuard};
use crate::renew::{Lease, RenewOptions, RenewingLock};

/// How long [`LockManager::locked`] waits for a lock by default (as `protection_max_wait` in
/// the Python original).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// How often [`LockManager::locked`] retries a taken lock by default.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(50);

/// Acquires locks from one [`LockStore`].
///
/// Cheap to clone: clones share the store. Every acquisition gets a fresh [`LockOwner`]
/// labelled with the manager's label (by default `pid-<process id>`), so two acquisitions never
/// share an owner, even in one task.
///
/// - [`try_lock`](Self::try_lock) and [`lock`](Self::lock) return a [`LockGuard`]: the lock
///   lasts its TTL unless extended.
/// - [`try_lock_renewing`](Self::try_lock_renewing) and [`lock_renewing`](Self::lock_renewing)
///   return a [`RenewingLock`], extended in the background until released.
/// - [`locked`](Self::locked) runs a closure under a renewing lock and releases it on every
///   exit path.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::time::Duration;
/// use lexicache_lock::LockManager;
/// use lexicache_memory::MemoryLockStore;
///
/// let locks = LockManager::new(MemoryLockStore::new()).with_label("worker-1");
/// let ttl = Duration::from_secs(30);
/// let guard = locks.try_lock("invoice:7", ttl).await?.expect("free");
/// assert!(locks.try_lock("invoice:7", ttl).await?.is_none());
/// guard.release().await?;
/// assert!(locks.try_lock("invoice:7", ttl).await?.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockManager {
    store: SharedLockStore,
    label: Arc<str>,
    wait: Duration,
    retry: Duration,
    renew: RenewOptions,
}

impl fmt::Debug for LockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManager")
            .field("store", &self.store.name())
            .field("label", &self.label)
            .field("wait", &self.wait)
            .field("retry", &self.retry)
            .field("renew", &self.renew)
            .finish()
    }
}

impl LockManager {
    /// A manager over `store`.
    #[must_use]
    pub fn new(store: impl LockStore) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A manager over a shared store (for example from
    /// [`CacheBackend::lock_store`](lexicache_core::CacheBackend::lock_store)).
    #[must_use]
    pub fn from_shared(store: SharedLockStore) -> Self {
        Self {
            store,
            label: format!("pid-{}", std::process::id()).into(),
            wait: DEFAULT_WAIT,
            retry: DEFAULT_RETRY,
            renew: RenewOptions::default(),
        }
    }

    /// Labels this manager's owners with `label` (a host or worker name), to tell them apart
    /// when reading a store. The label is not a secret; a random part is added to each owner.
    #[must_use]
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }

    /// How long [`locked`](Self::locked) waits for a taken lock (default [`DEFAULT_WAIT`]).
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// How often [`locked`](Self::locked) retries a taken lock (default [`DEFAULT_RETRY`]).
    #[must_use]
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// How [`locked`](Self::locked) renews its lock (default [`RenewOptions::default`]).
    #[must_use]
    pub fn with_renew_options(mut self, options: RenewOptions) -> Self {
        self.renew = options;
        self
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &SharedLockStore {
        &self.store
    }

    /// The label of this manager's owners.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Takes the lock on `resource` for `ttl` if no one holds it: `Ok(None)` when another
    /// owner does. One attempt; it never waits.
    ///
    /// # Errors
    ///
    /// The store's errors, for example [`ErrorKind::KeyInvalid`] for a resource the store
    /// does not accept or [`ErrorKind::Connection`].
    ///
    /// # Cancel safety
    ///
    /// A dropped call may have taken the lock without returning its guard; the lock then
    /// expires after `ttl`.
    pub async fn try_lock(&self, resource: &str, ttl: Duration) -> Result<Option<LockGuard>> {
        let owner = LockOwner::new(&self.label);
        let start = Instant::now();
        let Some(fence) = self.store.acquire(resource, &owner, ttl).await? else {
            return Ok(None);
        };
        let held = Held {
            store: self.store.clone(),
            resource: resource.into(),
            owner,
            fence,
            ttl,
        };
        Ok(Some(LockGuard::new(held, start)))
    }

    /// Takes the lock on `resource` for `ttl`, retrying every `retry` (give or take a quarter,
    /// so waiters spread out) while another owner holds it, for up to `wait`.
    ///
    /// The last attempt is made when `wait` runs out, so `wait: Duration::ZERO` is one attempt
    /// that fails with [`ErrorKind::LockTimeout`] rather than returning `None`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LockTimeout`] if the lock stayed taken for `wait`; the store's errors
    /// (returned at once, not retried).
    ///
    /// # Cancel safety
    ///
    /// As [`try_lock`](Self::try_lock).
    pub async fn lock(
        &self,
        resource: &str,
        ttl: Duration,
        wait: Duration,
        retry: Duration,
    ) -> Result<LockGuard> {
        let give_up = after(Instant::now(), wait);
        let retry = retry.max(Duration::from_millis(1));
        loop {
            if let Some(guard) = self.try_lock(resource, ttl).await? {
                return Ok(guard);
            }
            let now = Instant::now();
            if now >= give_up {
                tracing::debug!(
                    store = self.store.name(),
                    resource = %key_hash(resource),
                    "timed out waiting for a lock"
                );
                return Err(
                    Error::new(ErrorKind::LockTimeout, self.store.name().to_owned())
                        .with_operation(Operation::Lock)
                        .with_message(format!(
                            "the lock stayed held by another owner for {wait:?}"
                        )),
                );
            }
            sleep_until(after(now, jitter(retry)).min(give_up)).await;
        }
    }

    /// As [`try_lock`](Self::try_lock), with the lock renewed in the background until released.
    ///
    /// # Errors
    ///
    /// As [`try_lock`](Self::try_lock); [`ErrorKind::Config`], without taking the lock, outside
    /// a tokio runtime (renewal runs in a tokio task).
    ///
    /// # Cancel safety
    ///
    /// As [`try_lock`](Self::try_lock).
    pub async fn try_lock_renewing(
        &self,
        resource: &str,
        ttl: Duration,
        options: RenewOptions,
    ) -> Result<Option<RenewingLock>> {
        self.check_runtime()?;
        match self.try_lock(resource, ttl).await? {
            Some(guard) => guard.into_renewing(options).map(Some),
            None => Ok(None),
        }
    }

    /// As [`lock`](Self::lock), with the lock renewed in the background until released.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock); [`ErrorKind::Config`], without taking the lock, outside a tokio
    /// runtime (renewal runs in a tokio task).
    ///
    /// # Cancel safety
    ///
    /// As [`try_lock`](Self::try_lock).
    pub async fn lock_renewing(
        &self,
        resource: &str,
        ttl: Duration,
        wait: Duration,
        retry: Duration,
        options: RenewOptions,
    ) -> Result<RenewingLock> {
        self.check_runtime()?;
        self.lock(resource, ttl, wait, retry)
            .await?
            .into_renewing(options)
    }

    /// Runs `f` while holding the lock on `resource`, and releases it however `f` ends.
    ///
    /// The lock is acquired as [`lock_renewing`](Self::lock_renewing) with the manager's wait,
    /// retry and renew options ([`with_wait`](Self::with_wait) and friends), and renewed while
    /// `f` runs. `f` receives a [`Lease`]: pass its fencing token to the resource it changes,
    /// and watch [`Lease::lost`] to stop when the lock is lost.
    ///
    /// The lock is released when `f`'s future returns `Ok` or `Err`, when it panics (the panic
    /// is resumed after the release), and when the future returned here is dropped (the
    /// release then runs in a spawned task).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
    /// use std::time::Duration;
    /// use lexicache_lock::LockManager;
    /// use lexicache_memory::MemoryLockStore;
    ///
    /// let locks = LockManager::new(MemoryLockStore::new());
    /// let fence = locks
    ///     .locked("nightly-report", Duration::from_secs(30), |lease| async move {
    ///         // ... write the report, tagging the write with lease.fence() ...
    ///         Ok(lease.fence())
    ///     })
    ///     .await?;
    /// assert!(fence.get() > 0);
    /// assert!(!locks.store().is_locked("nightly-report").await?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LockTimeout`] if the lock stayed taken for the manager's wait; the store's
    /// errors from acquiring; `f`'s own error. If `f` succeeded but the release failed — most
    /// often because the lock was lost while `f` ran, so `f` may not have run alone — the
    /// release's error ([`ErrorKind::LockOwnership`], [`ErrorKind::LockNotHeld`], ...).
    ///
    /// # Panics
    ///
    /// Resumes a panic of `f`, after releasing the lock.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `f`'s future midway and releases the lock in the
    /// background.
    pub async fn locked<T, F, Fut>(&self, resource: &str, ttl: Duration, f: F) -> Result<T>
    where
        F: FnOnce(Lease) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let lock = self
            .lock_renewing(resource, ttl, self.wait, self.retry, self.renew.clone())
            .await?;
        let outcome = AssertUnwindSafe(f(lock.lease())).catch_unwind().await;
        let released = lock.release().await;
        match outcome {
            Err(panic) => resume_unwind(panic),
            Ok(Err(e)) => {
                if let Err(release) = released {
                    tracing::debug!(error = %release, "releasing after failed locked work");
                }
                Err(e)
            }
            Ok(Ok(value)) => released.map(|()| value),
        }
    }
}

impl LockManager {
    /// Renewal runs in a tokio task: refuse before taking a lock that could not be renewed.
    fn check_runtime(&self) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Config, self.store.name().to_owned())
            .with_operation(Operation::Lock)
            .with_message("lock renewal runs in a tokio task and needs a tokio runtime"))
    }
}

/// `retry` scaled by a random factor in [0.75, 1.25), so waiters do not retry in lockstep.
fn jitter(retry: Duration) -> Duration {
    // `try_from`, because `mul_f64` panics on overflow and `retry` may be any duration.
    Duration::try_from_secs_f64(retry.as_secs_f64() * (0.75 + fastrand::f64() / 2.0))
        .unwrap_or(retry)
}
