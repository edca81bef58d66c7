//! The auto-renewing lock: [`RenewingLock`], its [`LostSignal`] and the [`Lease`] handed to
//! scoped work.
//!
//! A background task (the watchdog) extends the lock every [`RenewOptions::interval`] until
//! the lock is released, dropped, lost or has reached its maximum lease. The watchdog never
//! re-acquires a lock: once a renewal finds it gone or taken, renewal stops for good and the
//! [`LostSignal`] fires with the reason.
//!
//! Releasing and renewing are ordered by an async mutex: the watchdog holds it for the whole
//! of each `extend` call, and `release` (or drop) takes it, marks renewal stopped and only
//! then releases. So no renewal can start after a release began, and none is ever interrupted
//! halfway by one.
//!
//! The one call the watchdog itself abandons is an `extend` still pending when the lock's last
//! known deadline passes (a hung connection): the lock may have expired by then, so the lost
//! signal fires [`LostReason::Unreachable`]. Stores extend by compare-and-expire, so if the
//! abandoned command still lands it can only extend this owner's own lock, never another's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::lock::{FencingToken, LockOwner};
use lexicache_core::{key_hash, Error, ErrorKind, Operation, Result};
use tokio::runtime::Handle;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::guard::{after, Held};

/// The shortest renewal interval and retry backoff, so a zero setting cannot spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How a [`RenewingLock`] renews: how often, and for how long at most.
///
/// ```
/// use std::time::Duration;
/// use lexicache_lock::RenewOptions;
///
/// let ttl = Duration::from_secs(30);
/// let defaults = RenewOptions::default();
/// assert_eq!(defaults.interval_for(ttl), Duration::from_secs(10));
/// assert_eq!(defaults.max_lease_for(ttl), Duration::from_secs(300));
///
/// let custom = RenewOptions::new()
///     .interval(Duration::from_secs(5))
///     .max_lease(Duration::from_secs(60));
/// assert_eq!(custom.interval_for(ttl), Duration::from_secs(5));
/// assert_eq!(custom.max_lease_for(ttl), Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RenewOptions {
    interval: Option<Duration>,
    max_lease: Option<Duration>,
}

impl RenewOptions {
    /// The defaults: renew every third of the TTL, for at most ten TTLs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Renews every `interval` instead of every third of the TTL.
    ///
    /// Keep it well below the TTL: each renewal must land before the lock expires, and a
    /// failed one is retried only until then. An interval of at least the TTL lets the lock
    /// lapse between renewals. Zero is treated as one millisecond.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Stops renewing once the lock has been held for `max_lease` since its acquisition
    /// (default: ten TTLs), so a forgotten lock cannot be held forever.
    ///
    /// The last renewal is shortened so that the lock expires `max_lease` after its
    /// acquisition (rounded up to the store's resolution); the lost signal then fires with
    /// [`LostReason::MaxLease`].
    #[must_use]
    pub fn max_lease(mut self, max_lease: Duration) -> Self {
        self.max_lease = Some(max_lease);
        self
    }

    /// The renewal interval for a lock of `ttl`.
    #[must_use]
    pub fn interval_for(&self, ttl: Duration) -> Duration {
        self.interval.unwrap_or(ttl / 3).max(MIN_INTERVAL)
    }

    /// The maximum lease for a lock of `ttl`.
    #[must_use]
    pub fn max_lease_for(&self, ttl: Duration) -> Duration {
        self.max_lease.unwrap_or_else(|| ttl.saturating_mul(10))
    }
}

/// Why a [`RenewingLock`] stopped protecting its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// A renewal found no lock: it expired (or was removed) before it could be extended.
    NotHeld,
    /// A renewal found the lock held by another owner: it expired and was taken.
    TakenByOther,
    /// Renewals failed (the store was unreachable or too slow, or answered with an error that
    /// retrying cannot fix) until the lock's last known deadline passed, so it may have
    /// expired.
    Unreachable,
    /// The maximum lease ran out: renewal stopped and the lock's last deadline passed.
    MaxLease,
    /// The holder released the lock or dropped its [`RenewingLock`].
    Released,
}

impl LostReason {
    /// A short, stable, snake_case name, for logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotHeld => "not_held",
            Self::TakenByOther => "taken_by_other",
            Self::Unreachable => "unreachable",
            Self::MaxLease => "max_lease",
            Self::Released => "released",
        }
    }
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tells when a [`RenewingLock`] stopped protecting its resource, and why.
///
/// Clones watch the same lock. Protected work should stop (or at least stop writing) once
/// [`lost`](Self::lost) resolves. It resolves exactly once per lock, with the first reason:
/// a lock that was lost and later released still reports why it was lost.
#[derive(Clone)]
pub struct LostSignal {
    rx: watch::Receiver<Option<LostReason>>,
}

impl LostSignal {
    /// Waits until the lock is no longer protected and returns why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches.
    pub async fn lost(&self) -> LostReason {
        let mut rx = self.rx.clone();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(LostReason::Released),
            // The sender lives as long as the lock or its watchdog; both gone without a
            // reason means the lock was dropped while no runtime could release it.
            Err(_) => LostReason::Released,
        };
        reason
    }

    /// Why the lock stopped being protected, or `None` while it still is.
    #[must_use]
    pub fn reason(&self) -> Option<LostReason> {
        *self.rx.borrow()
    }

    /// Whether the lock stopped being protected.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.reason().is_some()
    }
}

impl fmt::Debug for LostSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LostSignal")
            .field("reason", &self.reason())
            .finish()
    }
}

/// What scoped work under [`LockManager::locked`](crate::LockManager::locked) knows of its
/// lock: the fencing token to pass on, and the signal that says when protection ends.
///
/// Cheap to clone (to hand to spawned subtasks).
#[derive(Clone)]
pub struct Lease {
    resource: Arc<str>,
    owner: LockOwner,
    fence: FencingToken,
    signal: LostSignal,
}

impl Lease {
    /// The fencing token of this acquisition.
    #[must_use]
    pub fn fence(&self) -> FencingToken {
        self.fence
    }

    /// The owner the store knows this acquisition by.
    #[must_use]
    pub fn owner(&self) -> &LockOwner {
        &self.owner
    }

    /// The locked resource.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// A signal that fires when the lock stops being protected.
    #[must_use]
    pub fn lost_signal(&self) -> LostSignal {
        self.signal.clone()
    }

    /// Waits until the lock is no longer protected; see [`LostSignal::lost`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches.
    pub async fn lost(&self) -> LostReason {
        self.signal.lost().await
    }

    /// Whether the lock stopped being protected.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.signal.is_lost()
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("resource", &self.resource)
            .field("owner", &self.owner)
            .field("fence", &self.fence)
            .field("lost", &self.signal.reason())
            .finish()
    }
}

/// The state the holder and the watchdog share.
struct Renewal {
    held: Arc<Held>,
    interval: Duration,
    /// When renewal ends for good: acquisition plus the maximum lease.
    max_end: Instant,
    /// `true` once renewal is stopped. The watchdog holds this mutex for the whole of each
    /// `extend` and checks the flag first, so after a release sets it no `extend` starts.
    stopped: Mutex<bool>,
    lost: watch::Sender<Option<LostReason>>,
}

impl Renewal {
    /// Records why protection ended, unless a reason was recorded already.
    fn fire(&self, reason: LostReason) {
        let fired = self.lost.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
        if fired && reason != LostReason::Released {
            tracing::warn!(
                store = self.held.store.name(),
                resource = %key_hash(&self.held.resource),
                reason = reason.as_str(),
                "lock lost"
            );
        }
    }

    /// Stops renewal for good: waits for a renewal in progress to finish, so none runs after.
    async fn stop(&self) {
        *self.stopped.lock().await = true;
    }

    /// The watchdog: extends the lock until it is stopped, lost, or out of lease.
    ///
    /// `base` is when the last successful acquisition or extension started and `deadline`
    /// when that lock expires at the latest.
    async fn watch(self: Arc<Self>, base: Instant, mut deadline: Instant) {
        let backoff = (self.interval / 4).max(MIN_INTERVAL);
        let mut next = after(base, self.interval);
        loop {
            if deadline >= self.max_end {
                return self.wait_out(deadline, LostReason::MaxLease).await;
            }
            sleep_until(next).await;
            let mut stopped = self.stopped.lock().await;
            if *stopped {
                return;
            }
            let start = Instant::now();
            let Some(ttl) = self
                .max_end
                .checked_duration_since(start)
                .filter(|left| !left.is_zero())
                .map(|left| left.min(self.held.ttl))
            else {
                // Past the maximum lease without having shortened a renewal to it (the task
                // was not scheduled for a while): stop here.
                *stopped = true;
                drop(stopped);
                return self.wait_out(deadline, LostReason::MaxLease).await;
            };
            // A call that hangs is abandoned when the lock may have expired; one that starts
            // late (the process was paused) still gets an interval to learn what happened.
            let bound = if start < deadline {
                deadline
            } else {
                after(start, self.interval)
            };
            let held = &self.held;
            let outcome = timeout_at(bound, held.store.extend(&held.resource, &held.owner, ttl));
            let error = match outcome.await {
                Ok(Ok(())) => {
                    deadline = after(start, ttl);
                    next = after(start, self.interval);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => Error::new(ErrorKind::Timeout, held.store.name().to_owned())
                    .with_operation(Operation::Lock)
                    .with_message("renewal did not finish before the lock's deadline"),
            };
            let reason = match error.kind() {
                ErrorKind::LockNotHeld => Some(LostReason::NotHeld),
                ErrorKind::LockOwnership => Some(LostReason::TakenByOther),
                _ => None,
            };
            if let Some(reason) = reason {
                *stopped = true;
                return self.fire(reason);
            }
            let now = Instant::now();
            let retry_at = after(now, backoff);
            tracing::debug!(
                store = held.store.name(),
                resource = %key_hash(&held.resource),
                error = %error,
                "lock renewal failed"
            );
            if error.is_retryable() && retry_at < deadline {
                next = retry_at;
                continue;
            }
            // Retrying cannot help (or cannot land in time): the lock is protected only until
            // its last deadline.
            *stopped = true;
            drop(stopped);
            return self.wait_out(deadline, LostReason::Unreachable).await;
        }
    }

    /// Waits until `deadline`, after which the lock is no longer protected, and fires.
    async fn wait_out(&self, deadline: Instant, reason: LostReason) {
        sleep_until(deadline).await;
        self.fire(reason);
    }
}

/// A lock that a background task keeps extending: from
/// [`LockManager::try_lock_renewing`](crate::LockManager::try_lock_renewing),
/// [`LockManager::lock_renewing`](crate::LockManager::lock_renewing) or
/// [`LockGuard::into_renewing`](crate::LockGuard::into_renewing).
///
/// - It renews every [`RenewOptions::interval_for`] (a third of the TTL by default).
/// - When a renewal finds the lock expired ([`LostReason::NotHeld`]) or taken
///   ([`LostReason::TakenByOther`]), renewal stops for good and [`lost`](Self::lost) fires.
///   It never re-acquires the lock.
/// - Renewals that fail with retryable errors are retried at a quarter of the interval while
///   the lock's last known deadline (the start of the last successful extension plus the TTL)
///   lies ahead; when it passes, [`LostReason::Unreachable`] fires.
/// - After the maximum lease (ten TTLs by default, from acquisition) renewal stops; the lock
///   expires and [`LostReason::MaxLease`] fires.
/// - [`release`](Self::release) and drop stop renewal before releasing, so no renewal ever
///   runs after the release. Drop releases in a task spawned on the runtime the lock was made
///   on, and never panics.
///
/// Renewal runs on tokio's clock (so tests can pause time) in a task on the runtime that was
/// current when the lock was acquired.
#[must_use = "dropping a RenewingLock releases the lock at once"]
pub struct RenewingLock {
    renewal: Arc<Renewal>,
    task: Option<JoinHandle<()>>,
    runtime: Handle,
    /// Whether dropping the lock still has to stop renewal and release.
    armed: bool,
}

impl RenewingLock {
    /// Starts renewing a lock acquired at `acquired` whose last known deadline is `deadline`.
    pub(crate) fn start(
        held: Arc<Held>,
        acquired: Instant,
        deadline: Instant,
        runtime: Option<Handle>,
        options: &RenewOptions,
    ) -> Result<Self> {
        let Some(runtime) = runtime.or_else(|| Handle::try_current().ok()) else {
            return Err(Error::new(ErrorKind::Config, held.store.name().to_owned())
                .with_operation(Operation::Lock)
                .with_message("lock renewal runs in a tokio task and needs a tokio runtime"));
        };
        let (lost, _) = watch::channel(None);
        let renewal = Arc::new(Renewal {
            interval: options.interval_for(held.ttl),
            max_end: after(acquired, options.max_lease_for(held.ttl)),
            held,
            stopped: Mutex::new(false),
            lost,
        });
        let base = deadline.checked_sub(renewal.held.ttl).unwrap_or(acquired);
        let task = runtime.spawn(renewal.clone().watch(base, deadline));
        Ok(Self {
            renewal,
            task: Some(task),
            runtime,
            armed: true,
        })
    }

    /// The fencing token of this acquisition.
    #[must_use]
    pub fn fence(&self) -> FencingToken {
        self.renewal.held.fence
    }

    /// The owner the store knows this acquisition by.
    #[must_use]
    pub fn owner(&self) -> &LockOwner {
        &self.renewal.held.owner
    }

    /// The locked resource.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.renewal.held.resource
    }

    /// The TTL each renewal sets.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.renewal.held.ttl
    }

    /// The renewal interval.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.renewal.interval
    }

    /// A signal that fires when the lock stops being protected.
    #[must_use]
    pub fn lost(&self) -> LostSignal {
        LostSignal {
            rx: self.renewal.lost.subscribe(),
        }
    }

    /// Why the lock stopped being protected, or `None` while it still is.
    #[must_use]
    pub fn lost_reason(&self) -> Option<LostReason> {
        *self.renewal.lost.borrow()
    }

    /// The fencing token, owner and lost signal, as one cloneable value.
    #[must_use]
    pub fn lease(&self) -> Lease {
        Lease {
            resource: self.renewal.held.resource.clone(),
            owner: self.renewal.held.owner.clone(),
            fence: self.renewal.held.fence,
            signal: self.lost(),
        }
    }

    /// Stops renewal, waiting for a renewal in progress to finish, then releases the lock.
    ///
    /// The lost signal fires with [`LostReason::Released`] unless the lock was lost before.
    ///
    /// # Errors
    ///
    /// The store's errors: [`ErrorKind::LockNotHeld`] if the lock expired,
    /// [`ErrorKind::LockOwnership`] if another owner took it since (that owner's lock is left
    /// alone), or a connection error.
    ///
    /// # Cancel safety
    ///
    /// If the returned future is dropped before the store answers, drop finishes the job in
    /// the background (renewal is stopped either way); releasing twice is harmless.
    pub async fn release(mut self) -> Result<()> {
        self.renewal.stop().await;
        if let Some(task) = self.task.take() {
            // The watchdog is not inside an extend (we held the mutex), so aborting it only
            // cuts a sleep or a wait for the mutex.
            task.abort();
        }
        self.renewal.fire(LostReason::Released);
        let result = self.renewal.held.release().await;
        self.armed = false;
        result
    }
}

impl Drop for RenewingLock {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let renewal = self.renewal.clone();
        let task = self.task.take();
        if let Ok(mut stopped) = renewal.stopped.try_lock() {
            // No renewal in progress: stop it here, so nothing depends on the spawned task.
            *stopped = true;
            drop(stopped);
            if let Some(task) = task {
                task.abort();
            }
            renewal.fire(LostReason::Released);
            renewal
                .held
                .clone()
                .release_in_background(Some(&self.runtime));
            return;
        }
        // A renewal is in progress: wait for it in a task, then stop and release.
        drop(self.runtime.spawn(async move {
            renewal.stop().await;
            if let Some(task) = task {
                task.abort();
            }
            renewal.fire(LostReason::Released);
            if let Err(e) = renewal.held.release().await {
                tracing::debug!(
                    resource = %key_hash(&renewal.held.resource),
                    error = %e,
                    "releasing a dropped lock failed; it expires after its ttl"
                );
            }
        }));
    }
}

impl fmt::Debug for RenewingLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = &self.renewal.held;
        f.debug_struct("RenewingLock")
            .field("store", &held.store.name())
            .field("resource", &held.resource)
            .field("owner", &held.owner)
            .field("fence", &held.fence)
            .field("ttl", &held.ttl)
            .field("interval", &self.renewal.interval)
            .field("lost", &self.lost_reason())
            .finish()
    }
}
