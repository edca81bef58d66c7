//! What the lock test binaries share: a store wrapper that records calls and injects faults
//! into `extend`, and the scenarios every store runs (memory with paused time, Redis and
//! memcached with real time).
//!
//! The scenarios use only tokio's clock, so they run unchanged on a paused clock (memory) and
//! on the real one (servers, whose clocks tokio cannot pause).
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lexicache_core::lock::{FencingToken, LockOwner, LockStore, SharedLockStore};
use lexicache_core::{async_trait, Error, ErrorKind, Result};
use lexicache_lock::{LockManager, LostReason, RenewOptions};
use tokio::sync::watch;
use tokio::time::{sleep, timeout, Instant};

/// A store method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Acquire,
    Extend,
    Release,
    IsLocked,
}

/// Whether an event marks the start or the end of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    End,
}

/// One entry of the call log.
#[derive(Clone, Debug)]
pub struct Event {
    pub call: Call,
    pub phase: Phase,
    pub at: Instant,
    /// The TTL passed to `acquire` or `extend`.
    pub ttl: Option<Duration>,
    /// For `End`: whether the call succeeded.
    pub ok: Option<bool>,
}

/// A [`LockStore`] that forwards to another, logging every call, and can make `extend` hang
/// (a paused holder), fail with a retryable error, or take a while.
#[derive(Clone, Debug)]
pub struct Recording {
    inner: SharedLockStore,
    log: Arc<Mutex<Vec<Event>>>,
    /// `true` while extends hang.
    hang: Arc<watch::Sender<bool>>,
    /// How many of the next extends fail with a connection error.
    failures: Arc<AtomicUsize>,
    /// The kind of the injected failures.
    failure_kind: Arc<Mutex<ErrorKind>>,
    /// How long each extend takes before it reaches the store.
    delay: Arc<Mutex<Duration>>,
}

impl Recording {
    pub fn new(inner: SharedLockStore) -> Self {
        Self {
            inner,
            log: Arc::default(),
            hang: Arc::new(watch::channel(false).0),
            failures: Arc::default(),
            failure_kind: Arc::new(Mutex::new(ErrorKind::Connection)),
            delay: Arc::default(),
        }
    }

    pub fn shared(&self) -> SharedLockStore {
        Arc::new(self.clone())
    }

    /// Makes every extend from now on hang until [`resume`](Self::resume) (`true`).
    pub fn set_hang(&self, hang: bool) {
        self.hang.send_replace(hang);
    }

    /// Makes the next `n` extends fail with `kind` (retryable as the kind is transient).
    pub fn fail_extends(&self, n: usize, kind: ErrorKind) {
        *self.failure_kind.lock().unwrap() = kind;
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Makes every extend take `delay` before it reaches the store.
    pub fn delay_extends(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn log(&self) -> Vec<Event> {
        self.log.lock().unwrap().clone()
    }

    /// The start times of the calls of `call`.
    pub fn starts(&self, call: Call) -> Vec<Instant> {
        self.log()
            .into_iter()
            .filter(|e| e.call == call && e.phase == Phase::Start)
            .map(|e| e.at)
            .collect()
    }

    pub fn count(&self, call: Call) -> usize {
        self.starts(call).len()
    }

    fn record(&self, call: Call, phase: Phase, ttl: Option<Duration>, ok: Option<bool>) {
        self.log.lock().unwrap().push(Event {
            call,
            phase,
            at: Instant::now(),
            ttl,
            ok,
        });
    }

    async fn extend_inner(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        let mut hang = self.hang.subscribe();
        let _ = hang.wait_for(|h| !h).await;
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            sleep(delay).await;
        }
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            let kind = *self.failure_kind.lock().unwrap();
            return Err(Error::new(kind, "recording").with_message("injected failure"));
        }
        self.inner.extend(resource, owner, ttl).await
    }
}

#[async_trait]
impl LockStore for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.record(Call::Acquire, Phase::Start, Some(ttl), None);
        let r = self.inner.acquire(resource, owner, ttl).await;
        self.record(Call::Acquire, Phase::End, Some(ttl), Some(r.is_ok()));
        r
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.record(Call::Release, Phase::Start, None, None);
        let r = self.inner.release(resource, owner).await;
        self.record(Call::Release, Phase::End, None, Some(r.is_ok()));
        r
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.record(Call::Extend, Phase::Start, Some(ttl), None);
        let r = self.extend_inner(resource, owner, ttl).await;
        self.record(Call::Extend, Phase::End, Some(ttl), Some(r.is_ok()));
        r
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.inner.is_locked(resource).await
    }
}

/// Polls `is_locked` until the lock is gone, for at most `within`.
pub async fn wait_unlocked(store: &SharedLockStore, resource: &str, within: Duration) {
    let give_up = Instant::now() + within;
    while store.is_locked(resource).await.unwrap() {
        assert!(
            Instant::now() < give_up,
            "{resource}: still locked after {within:?}"
        );
        sleep(Duration::from_millis(10).min(within)).await;
    }
}

/// How a store's clock behaves, for the scenarios.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The TTL the scenarios lock with.
    pub ttl: Duration,
    /// How much later than asked the store may expire a lock (its resolution).
    pub expiry_slack: Duration,
}

/// A holder whose renewals stop reaching the store (a paused process: here its `extend` hangs)
/// loses the lock past its TTL: a second owner acquires it, the first learns it lost the lock
/// no later than one renewal interval after that, and its release leaves the second's lock
/// intact.
pub async fn paused_holder_loses_the_lock_to_a_second_owner(
    store: SharedLockStore,
    resource: &str,
    timing: Timing,
) {
    let ttl = timing.ttl;
    let recording = Recording::new(store.clone());
    let first = LockManager::from_shared(recording.shared()).with_label("first");
    let second = LockManager::from_shared(store.clone()).with_label("second");
    let holder = first
        .try_lock_renewing(resource, ttl, RenewOptions::default())
        .await
        .unwrap()
        .expect("the resource is free");
    let interval = holder.interval();
    let lost = holder.lost();

    // Renewal keeps the lock past its TTL while the holder runs.
    sleep(ttl + ttl / 2).await;
    assert!(recording.count(Call::Extend) >= 3, "{:?}", recording.log());
    assert!(store.is_locked(resource).await.unwrap());
    assert_eq!(lost.reason(), None);

    recording.set_hang(true);
    let taken = second
        .lock(resource, ttl, ttl * 3 + timing.expiry_slack, ttl / 10)
        .await
        .expect("the second owner acquires once the first's lock expires");
    assert!(taken.fence() > holder.fence());
    let reason = timeout(interval, lost.lost())
        .await
        .expect("the first holder learns within one renewal interval");
    assert_eq!(reason, LostReason::Unreachable);
    recording.set_hang(false);

    let err = holder.release().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockOwnership);
    assert!(store.is_locked(resource).await.unwrap());
    assert_eq!(lost.reason(), Some(LostReason::Unreachable));
    assert_eq!(
        recording.count(Call::Acquire),
        1,
        "renewal never re-acquires"
    );
    taken.release().await.unwrap();
}

/// A holder whose renewal comes too late (its interval is longer than the TTL, as when its
/// renewal task was not scheduled) finds the lock taken: the lost signal fires
/// `TakenByOther` within one interval of the second owner acquiring, renewal stops, and the
/// first holder's release leaves the second's lock intact.
pub async fn late_renewal_finds_the_lock_taken(
    store: SharedLockStore,
    resource: &str,
    timing: Timing,
) {
    let ttl = timing.ttl;
    let interval = ttl * 2 + timing.expiry_slack;
    let recording = Recording::new(store.clone());
    let first = LockManager::from_shared(recording.shared()).with_label("first");
    let second = LockManager::from_shared(store.clone()).with_label("second");
    let holder = first
        .try_lock_renewing(resource, ttl, RenewOptions::new().interval(interval))
        .await
        .unwrap()
        .expect("the resource is free");
    let lost = holder.lost();

    // The second owner's own lock outlasts the first's late renewal.
    let taken = second
        .lock(
            resource,
            interval * 2,
            ttl * 2 + timing.expiry_slack,
            ttl / 10,
        )
        .await
        .expect("the second owner acquires once the first's lock expires");
    let reason = timeout(interval, lost.lost())
        .await
        .expect("the first holder learns within one renewal interval");
    assert_eq!(reason, LostReason::TakenByOther);
    assert_eq!(recording.count(Call::Extend), 1);

    let err = holder.release().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockOwnership);
    assert!(store.is_locked(resource).await.unwrap());
    assert_eq!(
        lost.reason(),
        Some(LostReason::TakenByOther),
        "the first reason stays"
    );
    sleep(interval).await;
    assert_eq!(recording.count(Call::Extend), 1, "renewal stopped for good");
    assert_eq!(
        recording.count(Call::Acquire),
        1,
        "renewal never re-acquires"
    );
    taken.release().await.unwrap();
}

/// With a maximum lease of two TTLs the lock is renewed past its TTL, then renewal stops, the
/// lock expires and the lost signal fires `MaxLease` no earlier than the lease's end.
pub async fn max_lease_ends_renewal(store: SharedLockStore, resource: &str, timing: Timing) {
    let ttl = timing.ttl;
    let max_lease = ttl * 2;
    let recording = Recording::new(store.clone());
    let locks = LockManager::from_shared(recording.shared());
    let start = Instant::now();
    let holder = locks
        .try_lock_renewing(resource, ttl, RenewOptions::new().max_lease(max_lease))
        .await
        .unwrap()
        .expect("the resource is free");
    let lost = holder.lost();

    sleep(ttl + ttl / 2).await;
    assert!(
        store.is_locked(resource).await.unwrap(),
        "renewed past its ttl"
    );
    assert_eq!(lost.reason(), None);

    let reason = timeout(max_lease + ttl, lost.lost())
        .await
        .expect("the lease ends");
    assert_eq!(reason, LostReason::MaxLease);
    assert!(
        start.elapsed() >= max_lease,
        "fired after {:?}",
        start.elapsed()
    );
    let extends = recording.count(Call::Extend);
    wait_unlocked(&store, resource, timing.expiry_slack + ttl / 10).await;
    sleep(ttl).await;
    assert_eq!(
        recording.count(Call::Extend),
        extends,
        "no renewal after the lease"
    );
    assert!(!store.is_locked(resource).await.unwrap());
    let err = holder.release().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockNotHeld);
}

/// 10,000 acquire/release cycles over 100 resources, by 25 concurrent workers with 4
/// resources each, released every way there is (release, drop, renewing release and drop,
/// `locked`), leave no lock behind once 3 TTLs have passed. Each resource's fencing tokens grow.
pub async fn many_cycles_leave_no_locks(store: SharedLockStore, prefix: &str, timing: Timing) {
    const CYCLES: usize = 10_000;
    const WORKERS: usize = 25;
    const RESOURCES_PER_WORKER: usize = 4;
    let ttl = timing.ttl;
    let locks = LockManager::from_shared(store.clone())
        .with_wait(ttl * 3)
        .with_retry(Duration::from_millis(1));
    let workers = (0..WORKERS).map(|w| {
        let locks = locks.clone();
        let resources: Vec<String> = (0..RESOURCES_PER_WORKER)
            .map(|i| format!("{prefix}:{w}:{i}"))
            .collect();
        async move {
            let mut fences = vec![FencingToken::new(0); resources.len()];
            for i in 0..CYCLES / WORKERS {
                let slot = i % resources.len();
                let fence = cycle(&locks, &resources[slot], ttl, i % 5).await;
                let previous = std::mem::replace(&mut fences[slot], fence);
                assert!(
                    fence > previous,
                    "{}: token {fence} after {previous}",
                    resources[slot]
                );
            }
            resources
        }
    });
    let resources: Vec<String> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(resources.len(), WORKERS * RESOURCES_PER_WORKER);
    sleep(ttl * 3 + timing.expiry_slack).await;
    for resource in &resources {
        assert!(
            !store.is_locked(resource).await.unwrap(),
            "{resource} is still locked"
        );
    }
}

/// One acquisition and release of `resource`, released the way `how` (0 to 4) says.
async fn cycle(locks: &LockManager, resource: &str, ttl: Duration, how: usize) -> FencingToken {
    let wait = ttl * 3;
    let retry = Duration::from_millis(1);
    match how {
        0 => {
            let guard = locks.lock(resource, ttl, wait, retry).await.unwrap();
            let fence = guard.fence();
            guard.release().await.unwrap();
            fence
        }
        1 => locks
            .lock(resource, ttl, wait, retry)
            .await
            .unwrap()
            .fence(),
        2 => {
            let lock = locks
                .lock_renewing(resource, ttl, wait, retry, RenewOptions::default())
                .await
                .unwrap();
            let fence = lock.fence();
            lock.release().await.unwrap();
            fence
        }
        3 => locks
            .lock_renewing(resource, ttl, wait, retry, RenewOptions::default())
            .await
            .unwrap()
            .fence(),
        _ => locks
            .locked(resource, ttl, |lease| async move { Ok(lease.fence()) })
            .await
            .unwrap(),
    }
}
