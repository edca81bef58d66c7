//! Stampede protection: the settings ([`Protection`], [`Fallback`]) and the distributed half of
//! it ([`StampedeLock`]), which lets one process at a time load a cold key.
//!
//! A stampede (a "thundering herd") is what happens when a popular key expires: every caller
//! misses at once and every one of them runs the expensive loader. Protection has two halves:
//!
//! 1. **Local single-flight** ([`SingleFlight`](crate::SingleFlight)): in one process, one caller
//!    (the leader) loads and the others wait for its value.
//! 2. **A distributed lock** ([`StampedeLock`]): across processes sharing a backend, the local
//!    leaders race for a lock on the key's [resource](StampedeLock::resource). The winner
//!    re-checks the cache, loads, stores and releases; the others poll the cache every
//!    [`retry_interval`](Protection::retry_interval) (jittered) until the value appears, the
//!    lock frees up (then they try to take it), or [`max_wait`](Protection::max_wait) passes
//!    (then the [`Fallback`] decides).
//!
//! Lock-store failures never turn into outages: they degrade to running the loader without the
//! lock ([`Protected::Degraded`]), which is what an unprotected cache would do anyway.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lexicache_lock::protection::{Fallback, Protected, Protection, StampedeLock};
//! use lexicache_memory::MemoryLockStore;
//!
//! let settings = Protection::new()
//!     .max_wait(Duration::from_secs(2))
//!     .on_timeout(Fallback::Fail);
//! let lock = StampedeLock::new(Arc::new(MemoryLockStore::new()), settings);
//!
//! // Nothing is cached, so this caller takes the lock and loads.
//! let outcome = lock
//!     .run("report", || async { None::<u32> }, || async { Ok(42u32) })
//!     .await?;
//! assert!(matches!(outcome, Protected::Loaded(42)));
//! assert_eq!(StampedeLock::resource("report"), "lexicache-load:report");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use lexicache_core::lock::{FencingToken, SharedLockStore};
use lexicache_core::{key_hash, Error, ErrorKind, Operation, Result};
use tokio::time::Instant;

use crate::manager::LockManager;
use crate::renew::{LostSignal, RenewOptions, RenewingLock};

/// The default time a load lock lives before it must be renewed: 30 s.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);

/// The default longest wait for another process's load: 10 s.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);

/// The default pause between two looks at the cache while waiting: 50 ms (jittered).
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// What a caller does when another process has held the load lock for
/// [`max_wait`](Protection::max_wait) and the value has still not appeared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// Run the loader without the lock and store its value (the default): a slow or stuck
    /// holder costs one extra load, never an error.
    #[default]
    Load,
    /// Give up with [`ErrorKind::LockTimeout`] (retryable): for loaders that must never run
    /// twice at once.
    Fail,
}

/// Stampede protection settings for `CacheService::get_or_set` and friends.
///
/// A plain settings struct: public fields, [`Default`], and builder-style setters. Durations
/// are used as given; a zero [`retry_interval`](Self::retry_interval) is raised to 1 ms so
/// waiting never spins.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | `false` turns off all protection, single-flight included: every caller that misses runs its own loader |
/// | `distributed` | `true` | take a distributed lock when the backend (or the builder) gives a lock store |
/// | `lock_ttl` | 30 s | lifetime of the load lock; renewed every third of it while the loader runs |
/// | `max_wait` | 10 s | how long a caller waits for another process's load |
/// | `retry_interval` | 50 ms | pause between looks at the cache while waiting, jittered to ½–1½ × |
/// | `on_timeout` | [`Fallback::Load`] | what to do after `max_wait` |
///
/// ```
/// use std::time::Duration;
/// use lexicache_lock::protection::{Fallback, Protection};
///
/// let p = Protection::new().max_wait(Duration::from_secs(2)).on_timeout(Fallback::Fail);
/// assert!(p.enabled && p.distributed);
/// assert_eq!(p.lock_ttl, Duration::from_secs(30));
/// assert!(!Protection::disabled().enabled);
/// assert!(!Protection::local().distributed);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Protection {
    /// Whether loads are protected at all. `false` also skips local single-flight.
    pub enabled: bool,
    /// Whether a distributed lock is taken when a lock store is available.
    pub distributed: bool,
    /// Lifetime of the load lock, renewed every third of it while the loader runs, so a
    /// crashed holder blocks others for at most this long.
    pub lock_ttl: Duration,
    /// How long a caller waits for another process's load before the [`Fallback`].
    pub max_wait: Duration,
    /// The pause between two looks at the cache while waiting (jittered to ½–1½ × so that
    /// waiting processes do not poll in step).
    pub retry_interval: Duration,
    /// What to do when `max_wait` has passed.
    pub on_timeout: Fallback,
}

impl Default for Protection {
    fn default() -> Self {
        Self {
            enabled: true,
            distributed: true,
            lock_ttl: DEFAULT_LOCK_TTL,
            max_wait: DEFAULT_MAX_WAIT,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            on_timeout: Fallback::Load,
        }
    }
}

impl Protection {
    /// The defaults: local single-flight plus a distributed lock where a store exists.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// No protection at all, not even local single-flight: every caller that misses runs its
    /// own loader. For measuring what protection saves, and for loaders that are cheaper
    /// than coordination.
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Local single-flight only: one loader per process, no distributed lock.
    #[must_use]
    pub fn local() -> Self {
        Self {
            distributed: false,
            ..Self::default()
        }
    }

    /// Sets [`enabled`](Self::enabled).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets [`distributed`](Self::distributed).
    #[must_use]
    pub fn distributed(mut self, distributed: bool) -> Self {
        self.distributed = distributed;
        self
    }

    /// Sets [`lock_ttl`](Self::lock_ttl).
    #[must_use]
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// Sets [`max_wait`](Self::max_wait) (`protection_max_wait` in configuration).
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets [`retry_interval`](Self::retry_interval) (`protection_retry_interval` in
    /// configuration).
    #[must_use]
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets [`on_timeout`](Self::on_timeout).
    #[must_use]
    pub fn on_timeout(mut self, fallback: Fallback) -> Self {
        self.on_timeout = fallback;
        self
    }

    /// One jittered pause: `retry_interval` times a random factor in [½, 1½), at least 1 ms.
    #[must_use]
    pub fn retry_delay(&self) -> Duration {
        let base = self.retry_interval.max(Duration::from_millis(1));
        base.mul_f64(0.5 + fastrand::f64())
    }
}

/// How a protected load produced its value.
#[derive(Debug, Clone)]
pub enum Protected<V> {
    /// The value was found in the cache: another process stored it while this one waited, or
    /// just before this one took the lock.
    Cached(V),
    /// This caller held the lock and ran the loader.
    Loaded(V),
    /// Another process held the lock for `max_wait`; [`Fallback::Load`] ran the loader without it.
    FellBack(V),
    /// The lock store failed (the error is kept); the loader ran without the lock.
    Degraded(V, Error),
}

impl<V> Protected<V> {
    /// The value, however it was produced.
    pub fn into_value(self) -> V {
        match self {
            Self::Cached(v) | Self::Loaded(v) | Self::FellBack(v) | Self::Degraded(v, _) => v,
        }
    }
}

/// The distributed half of stampede protection: a lock per key on a shared [`LockStore`],
/// polled while another process loads. Locks come from a [`LockManager`] and are renewed while
/// held.
///
/// Cheap to clone (the store is shared).
///
/// [`LockStore`]: lexicache_core::lock::LockStore
#[derive(Clone)]
pub struct StampedeLock {
    locks: LockManager,
    settings: Protection,
}

impl fmt::Debug for StampedeLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StampedeLock")
            .field("store", &self.store().name())
            .field("settings", &self.settings)
            .finish()
    }
}

impl StampedeLock {
    /// Protects loads with locks from `store`, as `settings` say.
    #[must_use]
    pub fn new(store: SharedLockStore, settings: Protection) -> Self {
        Self {
            locks: LockManager::from_shared(store),
            settings,
        }
    }

    /// The lock store.
    #[must_use]
    pub fn store(&self) -> &SharedLockStore {
        self.locks.store()
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &Protection {
        &self.settings
    }

    /// The lock resource guarding loads of `key`: `lexicache-load:{key}`.
    ///
    /// The prefix keeps load locks apart from any other lock on the key, and a store reached
    /// through a namespaced stack prefixes the namespace in front, as it does for keys. The
    /// resource is checked by the store's key rules, so a key within 15 bytes of the maximum
    /// length gives a resource that is too long: that is a lock-store error, and the load
    /// degrades to running unlocked.
    #[must_use]
    pub fn resource(key: &str) -> String {
        let mut resource = String::with_capacity(LOAD_PREFIX.len() + key.len());
        resource.push_str(LOAD_PREFIX);
        resource.push_str(key);
        resource
    }

    /// Tries once, without waiting, to take the load lock of `key`. `Ok(None)` means another
    /// owner holds it. The lock is a [`RenewingLock`]: renewed every third of
    /// [`lock_ttl`](Protection::lock_ttl) until it is released or dropped (for at most ten
    /// TTLs; a loader still running after that loses the lock).
    ///
    /// # Errors
    ///
    /// The lock store's error, or [`ErrorKind::Config`] outside a tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped call may have taken the lock without returning it; it then
    /// expires after [`lock_ttl`](Protection::lock_ttl).
    pub async fn try_acquire(&self, key: &str) -> Result<Option<LoadLock>> {
        let ttl = self.settings.lock_ttl.max(Duration::from_millis(3));
        let lock = self
            .locks
            .try_lock_renewing(&Self::resource(key), ttl, RenewOptions::default())
            .await?;
        Ok(lock.map(|lock| LoadLock { lock }))
    }

    /// Runs a protected load of `key`.
    ///
    /// Takes the key's lock; on success re-checks the cache with `cached` (another process may
    /// just have stored the value), and if it is still missing runs `load` (which should store
    /// the value), then releases the lock. While another owner holds the lock, looks at the
    /// cache every jittered [`retry_interval`](Protection::retry_interval) and tries the lock
    /// again, until the value appears, the lock is won, or [`max_wait`](Protection::max_wait)
    /// passes and the [`Fallback`] applies. A failing lock store degrades to running `load`
    /// unlocked ([`Protected::Degraded`], logged at `warn`).
    ///
    /// # Errors
    ///
    /// The error of `load`, or [`ErrorKind::LockTimeout`] after `max_wait` with
    /// [`Fallback::Fail`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping the future while it holds the lock stops the renewal and releases
    /// the lock in a spawned task (or, with no runtime left, lets it expire).
    pub async fn run<V, C, CF, L, LF>(
        &self,
        key: &str,
        mut cached: C,
        load: L,
    ) -> Result<Protected<V>>
    where
        C: FnMut() -> CF,
        CF: Future<Output = Option<V>>,
        L: FnOnce() -> LF,
        LF: Future<Output = Result<V>>,
    {
        let deadline = Instant::now() + self.settings.max_wait;
        loop {
            match self.try_acquire(key).await {
                Ok(Some(lock)) => {
                    if let Some(value) = cached().await {
                        lock.release().await;
                        return Ok(Protected::Cached(value));
                    }
                    let value = load().await;
                    lock.release().await;
                    return value.map(Protected::Loaded);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(
                        store = %self.store().name(),
                        key = %key_hash(key),
                        kind = %e.kind(),
                        error = %e,
                        "load lock unavailable; loading without it"
                    );
                    return load().await.map(|v| Protected::Degraded(v, e));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return match self.settings.on_timeout {
                    Fallback::Load => {
                        tracing::warn!(
                            store = %self.store().name(),
                            key = %key_hash(key),
                            waited = ?self.settings.max_wait,
                            "another process held the load lock too long; loading without it"
                        );
                        load().await.map(Protected::FellBack)
                    }
                    Fallback::Fail => Err(Error::new(
                        ErrorKind::LockTimeout,
                        self.store().name().to_owned(),
                    )
                    .with_operation(Operation::Lock)
                    .with_message(format!(
                        "another process held the load lock for more than {:?}",
                        self.settings.max_wait
                    ))),
                };
            }
            tokio::time::sleep_until((now + self.settings.retry_delay()).min(deadline)).await;
            if let Some(value) = cached().await {
                return Ok(Protected::Cached(value));
            }
        }
    }
}

/// The prefix of load-lock resources.
const LOAD_PREFIX: &str = "lexicache-load:";

/// A held load lock, renewed in the background until released or dropped.
///
/// Dropping it (for example when the load is cancelled) stops the renewal and releases the lock
/// in a spawned task; [`release`](Self::release) does it in place.
#[derive(Debug)]
pub struct LoadLock {
    lock: RenewingLock,
}

impl LoadLock {
    /// The fencing token of this acquisition.
    #[must_use]
    pub fn fence(&self) -> FencingToken {
        self.lock.fence()
    }

    /// Fires if the lock is lost while held (it expired, was taken over, or renewals failed).
    #[must_use]
    pub fn lost(&self) -> LostSignal {
        self.lock.lost()
    }

    /// Stops the renewal and releases the lock. A lock that was lost meanwhile (expired, taken
    /// over) is logged at `debug` and otherwise ignored: the load is done either way.
    pub async fn release(self) {
        let resource = key_hash(self.lock.resource());
        if let Err(e) = self.lock.release().await {
            tracing::debug!(
                resource = %resource,
                kind = %e.kind(),
                "load lock was not released cleanly"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lexicache_memory::MemoryLockStore;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn retry_delays_are_jittered_within_half_to_one_and_a_half_intervals() {
        let p = Protection::new().retry_interval(Duration::from_millis(100));
        for _ in 0..1000 {
            let d = p.retry_delay();
            assert!(
                d >= Duration::from_millis(50) && d < Duration::from_millis(150),
                "{d:?}"
            );
        }
        let zero = Protection::new().retry_interval(Duration::ZERO);
        assert!(zero.retry_delay() >= Duration::from_micros(500));
    }

    #[tokio::test(start_paused = true)]
    async fn held_lock_is_renewed_while_the_load_runs() {
        let store = MemoryLockStore::new();
        let lock = StampedeLock::new(
            Arc::new(store.clone()),
            Protection::new().lock_ttl(Duration::from_secs(3)),
        );
        let held = lock.try_acquire("k").await.unwrap().expect("free");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            lexicache_core::LockStore::is_locked(&store, "lexicache-load:k")
                .await
                .unwrap()
        );
        held.release().await;
        assert!(
            !lexicache_core::LockStore::is_locked(&store, "lexicache-load:k")
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_lock_is_released() {
        let store = MemoryLockStore::new();
        let lock = StampedeLock::new(Arc::new(store.clone()), Protection::new());
        drop(lock.try_acquire("k").await.unwrap().expect("free"));
        tokio::task::yield_now().await;
        assert!(lock.try_acquire("k").await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_returns_the_value_stored_by_the_holder() {
        let store: SharedLockStore = Arc::new(MemoryLockStore::new());
        let lock = StampedeLock::new(store, Protection::new());
        let held = lock.try_acquire("k").await.unwrap().expect("free");
        let stored = Arc::new(AtomicUsize::new(0));
        let holder = {
            let stored = stored.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                stored.store(7, Ordering::SeqCst);
                held.release().await;
            })
        };
        let loads = AtomicUsize::new(0);
        let outcome = lock
            .run(
                "k",
                || {
                    let v = stored.load(Ordering::SeqCst);
                    async move { (v != 0).then_some(v) }
                },
                || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(1)
                },
            )
            .await
            .unwrap();
        holder.await.unwrap();
        assert!(matches!(outcome, Protected::Cached(7)));
        assert_eq!(loads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_takes_a_lock_that_frees_without_a_value() {
        let store: SharedLockStore = Arc::new(MemoryLockStore::new());
        let lock = StampedeLock::new(store, Protection::new());
        let held = lock.try_acquire("k").await.unwrap().expect("free");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            held.release().await;
        });
        let outcome = lock
            .run("k", || async { None }, || async { Ok(5) })
            .await
            .unwrap();
        assert!(matches!(outcome, Protected::Loaded(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_falls_back_as_configured() {
        let store: SharedLockStore = Arc::new(MemoryLockStore::new());
        let holder = StampedeLock::new(store.clone(), Protection::new());
        let _held = holder.try_acquire("k").await.unwrap().expect("free");

        let load = StampedeLock::new(
            store.clone(),
            Protection::new().max_wait(Duration::from_secs(1)),
        );
        let started = Instant::now();
        let outcome = load
            .run("k", || async { None }, || async { Ok(3) })
            .await
            .unwrap();
        assert!(matches!(outcome, Protected::FellBack(3)));
        assert!(started.elapsed() >= Duration::from_secs(1));

        let fail = StampedeLock::new(
            store,
            Protection::new()
                .max_wait(Duration::from_secs(1))
                .on_timeout(Fallback::Fail),
        );
        let err = fail
            .run("k", || async { None::<u8> }, || async { Ok(3) })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockTimeout);
        assert!(err.is_retryable());
    }
}
