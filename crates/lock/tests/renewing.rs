//! The auto-renewing lock on the memory store, on a paused clock: when it renews, when and why
//! its lost signal fires, and that release and drop stop renewal before releasing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{ErrorKind, LockStore, SharedLockStore};
use lexicache_lock::{LockManager, LostReason, RenewOptions, RenewingLock};
use lexicache_memory::MemoryLockStore;
use support::{Call, Phase, Recording};
use tokio::time::{sleep, timeout, Instant};

const TTL: Duration = Duration::from_secs(30);

struct Fixture {
    memory: MemoryLockStore,
    recording: Recording,
    locks: LockManager,
}

fn fixture() -> Fixture {
    let memory = MemoryLockStore::new();
    let recording = Recording::new(Arc::new(memory.clone()));
    let locks = LockManager::from_shared(recording.shared());
    Fixture {
        memory,
        recording,
        locks,
    }
}

async fn hold(f: &Fixture, options: RenewOptions) -> RenewingLock {
    f.locks
        .try_lock_renewing("r", TTL, options)
        .await
        .unwrap()
        .expect("the resource is free")
}

/// Offsets of `times` from `start`, for readable assertions.
fn offsets(start: Instant, times: &[Instant]) -> Vec<Duration> {
    times.iter().map(|t| *t - start).collect()
}

fn secs(list: &[f64]) -> Vec<Duration> {
    list.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn renews_every_third_of_the_ttl_by_default() {
    let f = fixture();
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::default()).await;
    assert_eq!(lock.interval(), TTL / 3);
    sleep(Duration::from_secs(95)).await;
    let extends = f.recording.starts(Call::Extend);
    assert_eq!(
        offsets(start, &extends),
        secs(&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])
    );
    assert!(f
        .recording
        .log()
        .iter()
        .all(|e| e.ttl.is_none_or(|t| t == TTL)));
    assert!(f.memory.is_locked("r").await.unwrap());
    assert_eq!(lock.lost_reason(), None);
    lock.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn renewal_interval_is_configurable() {
    let f = fixture();
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::new().interval(Duration::from_secs(4))).await;
    sleep(Duration::from_secs(21)).await;
    let extends = f.recording.starts(Call::Extend);
    assert_eq!(
        offsets(start, &extends),
        secs(&[4.0, 8.0, 12.0, 16.0, 20.0])
    );
    lock.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn renewal_finding_the_lock_expired_fires_not_held_and_never_reacquires() {
    let f = fixture();
    let lock = hold(&f, RenewOptions::new().interval(TTL * 2)).await;
    let lost = lock.lost();
    let start = Instant::now();
    assert_eq!(lost.lost().await, LostReason::NotHeld);
    assert_eq!(start.elapsed(), TTL * 2);
    sleep(TTL * 10).await;
    assert_eq!(f.recording.count(Call::Extend), 1);
    assert_eq!(f.recording.count(Call::Acquire), 1);
    assert!(!f.memory.is_locked("r").await.unwrap());
    assert_eq!(
        lock.release().await.unwrap_err().kind(),
        ErrorKind::LockNotHeld
    );
    assert_eq!(lost.reason(), Some(LostReason::NotHeld));
}

#[tokio::test(start_paused = true)]
async fn lost_fires_once_for_every_clone_with_the_first_reason() {
    let f = fixture();
    let lock = hold(&f, RenewOptions::new().interval(TTL * 2)).await;
    let (a, b) = (lock.lost(), lock.lease().lost_signal());
    sleep(TTL + Duration::from_secs(1)).await;
    let thief = LockManager::new(f.memory.clone());
    let stolen = thief
        .try_lock("r", TTL * 10)
        .await
        .unwrap()
        .expect("expired");
    let (ra, rb) = tokio::join!(a.lost(), b.lost());
    assert_eq!(
        (ra, rb),
        (LostReason::TakenByOther, LostReason::TakenByOther)
    );
    assert_eq!(
        lock.release().await.unwrap_err().kind(),
        ErrorKind::LockOwnership
    );
    // Released after being lost: the reason stays the first one.
    assert_eq!(a.reason(), Some(LostReason::TakenByOther));
    assert_eq!(b.lost().await, LostReason::TakenByOther);
    assert!(f.memory.is_locked("r").await.unwrap());
    stolen.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transient_renewal_errors_are_retried_until_the_deadline_then_unreachable() {
    let f = fixture();
    f.recording.fail_extends(usize::MAX, ErrorKind::Connection);
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::default()).await;
    let reason = lock.lost().lost().await;
    assert_eq!(reason, LostReason::Unreachable);
    assert_eq!(
        start.elapsed(),
        TTL,
        "fires when the lock's deadline passes"
    );
    // First try at 10 s, then every 2.5 s while a retry can still land before 30 s.
    assert_eq!(
        offsets(start, &f.recording.starts(Call::Extend)),
        secs(&[10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0, 27.5])
    );
    sleep(TTL * 3).await;
    assert_eq!(f.recording.count(Call::Extend), 8, "renewal stopped");
    assert_eq!(f.recording.count(Call::Acquire), 1);
    drop(lock);
}

#[tokio::test(start_paused = true)]
async fn renewal_recovers_from_transient_errors_within_the_deadline() {
    let f = fixture();
    f.recording.fail_extends(3, ErrorKind::Timeout);
    let lock = hold(&f, RenewOptions::default()).await;
    sleep(TTL * 3).await;
    assert_eq!(lock.lost_reason(), None);
    assert!(f.memory.is_locked("r").await.unwrap());
    lock.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_renewal_error_is_not_retried_and_fires_unreachable_at_the_deadline() {
    let f = fixture();
    f.recording.fail_extends(usize::MAX, ErrorKind::Backend);
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::default()).await;
    assert_eq!(lock.lost().lost().await, LostReason::Unreachable);
    assert_eq!(start.elapsed(), TTL);
    assert_eq!(f.recording.count(Call::Extend), 1);
    drop(lock);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_renewal_is_abandoned_at_the_deadline() {
    let f = fixture();
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::default()).await;
    f.recording.set_hang(true);
    assert_eq!(lock.lost().lost().await, LostReason::Unreachable);
    assert_eq!(start.elapsed(), TTL);
    f.recording.set_hang(false);
    assert_eq!(
        lock.release().await.unwrap_err().kind(),
        ErrorKind::LockNotHeld
    );
}

#[tokio::test(start_paused = true)]
async fn max_lease_shortens_the_last_renewal_and_the_lock_expires_at_the_lease_end() {
    let f = fixture();
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::new().max_lease(Duration::from_secs(95))).await;
    let lost = lock.lost();
    sleep(Duration::from_secs(94)).await;
    assert!(f.memory.is_locked("r").await.unwrap());
    assert_eq!(lost.reason(), None);
    assert_eq!(lost.lost().await, LostReason::MaxLease);
    assert_eq!(start.elapsed(), Duration::from_secs(95));
    assert!(!f.memory.is_locked("r").await.unwrap());
    let extends: Vec<_> = f
        .recording
        .log()
        .into_iter()
        .filter(|e| e.call == Call::Extend && e.phase == Phase::Start)
        .map(|e| (e.at - start, e.ttl.unwrap()))
        .collect();
    let expected: Vec<_> = [10, 20, 30, 40, 50, 60]
        .into_iter()
        .map(|s| (Duration::from_secs(s), TTL))
        .chain([(Duration::from_secs(70), Duration::from_secs(25))])
        .collect();
    assert_eq!(extends, expected);
    drop(lock);
}

#[tokio::test(start_paused = true)]
async fn default_max_lease_is_ten_ttls() {
    let f = fixture();
    let start = Instant::now();
    let lock = hold(&f, RenewOptions::default()).await;
    assert_eq!(lock.lost().lost().await, LostReason::MaxLease);
    assert_eq!(start.elapsed(), TTL * 10);
    assert!(!f.memory.is_locked("r").await.unwrap());
}

/// The calls of the log as `(call, phase)`, ignoring times.
fn calls(recording: &Recording) -> Vec<(Call, Phase)> {
    recording.log().iter().map(|e| (e.call, e.phase)).collect()
}

#[tokio::test(start_paused = true)]
async fn release_waits_for_a_renewal_in_progress_and_no_renewal_runs_after() {
    let f = fixture();
    f.recording.delay_extends(Duration::from_secs(5));
    let lock = hold(&f, RenewOptions::default()).await;
    // The first renewal starts at 10 s and reaches the store at 15 s.
    sleep(Duration::from_secs(12)).await;
    let start = Instant::now();
    lock.release().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "waited for the renewal"
    );
    sleep(TTL * 5).await;
    assert_eq!(
        calls(&f.recording),
        [
            (Call::Acquire, Phase::Start),
            (Call::Acquire, Phase::End),
            (Call::Extend, Phase::Start),
            (Call::Extend, Phase::End),
            (Call::Release, Phase::Start),
            (Call::Release, Phase::End),
        ]
    );
    assert!(f.memory.is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_during_a_renewal_releases_after_it_and_no_renewal_runs_after() {
    let f = fixture();
    f.recording.delay_extends(Duration::from_secs(5));
    let lock = hold(&f, RenewOptions::default()).await;
    let lost = lock.lost();
    sleep(Duration::from_secs(12)).await;
    drop(lock);
    assert_eq!(lost.lost().await, LostReason::Released);
    sleep(TTL * 5).await;
    assert_eq!(
        calls(&f.recording),
        [
            (Call::Acquire, Phase::Start),
            (Call::Acquire, Phase::End),
            (Call::Extend, Phase::Start),
            (Call::Extend, Phase::End),
            (Call::Release, Phase::Start),
            (Call::Release, Phase::End),
        ]
    );
    assert!(f.memory.is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_between_renewals_stops_renewal_at_once() {
    let f = fixture();
    let lock = hold(&f, RenewOptions::default()).await;
    let lost = lock.lost();
    sleep(Duration::from_secs(15)).await;
    drop(lock);
    assert_eq!(
        lost.reason(),
        Some(LostReason::Released),
        "set synchronously"
    );
    sleep(TTL * 5).await;
    assert_eq!(f.recording.count(Call::Extend), 1);
    assert_eq!(f.recording.count(Call::Release), 1);
    assert!(f.memory.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_release_still_releases() {
    let f = fixture();
    f.recording.delay_extends(Duration::from_secs(5));
    let lock = hold(&f, RenewOptions::default()).await;
    sleep(Duration::from_secs(12)).await;
    // Cancelled while waiting for the renewal in progress.
    assert!(timeout(Duration::from_secs(1), lock.release())
        .await
        .is_err());
    sleep(TTL * 5).await;
    assert_eq!(f.recording.count(Call::Extend), 1);
    assert!(f.memory.is_empty());
}

#[tokio::test(start_paused = true)]
async fn guard_into_renewing_keeps_the_lock_and_its_fence() {
    let f = fixture();
    let guard = f.locks.try_lock("r", TTL).await.unwrap().unwrap();
    let fence = guard.fence();
    sleep(Duration::from_secs(20)).await;
    guard.extend(TTL).await.unwrap();
    let lock = guard.into_renewing(RenewOptions::default()).unwrap();
    assert_eq!(lock.fence(), fence);
    sleep(TTL * 3).await;
    assert!(f.memory.is_locked("r").await.unwrap());
    // Renewal continues from the last extension (20 s): 30 s, 40 s, ...
    let first_renewal = f.recording.starts(Call::Extend)[1];
    let acquired = f.recording.starts(Call::Acquire)[0];
    assert_eq!(first_renewal - acquired, Duration::from_secs(30));
    lock.release().await.unwrap();
}

#[test]
fn renewal_needs_a_tokio_runtime_and_says_so_without_taking_the_lock() {
    use futures::executor::block_on;
    let store: SharedLockStore = Arc::new(MemoryLockStore::new());
    let locks = LockManager::from_shared(store.clone());
    let kinds = [
        block_on(locks.try_lock_renewing("r", TTL, RenewOptions::default()))
            .unwrap_err()
            .kind(),
        block_on(locks.lock_renewing("r", TTL, TTL, TTL, RenewOptions::default()))
            .unwrap_err()
            .kind(),
    ];
    assert_eq!(kinds, [ErrorKind::Config; 2]);
    assert!(!block_on(store.is_locked("r")).unwrap());
    // A guard taken outside a runtime cannot be renewed either; converting it drops it
    // without panicking, and the lock then expires after its TTL.
    let guard = block_on(locks.try_lock("r", TTL)).unwrap().unwrap();
    let err = guard.into_renewing(RenewOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(block_on(store.is_locked("r")).unwrap());
}

#[tokio::test(start_paused = true)]
async fn debug_shows_the_lock_but_not_the_owner_token() {
    let f = fixture();
    let lock = hold(&f, RenewOptions::default()).await;
    let token = lock.owner().as_str().to_owned();
    for text in [
        format!("{lock:?}"),
        format!("{:?}", lock.lease()),
        format!("{:?}", lock.lost()),
        format!("{:?}", f.locks),
    ] {
        assert!(!text.contains(&token), "{text}");
    }
    assert!(format!("{lock:?}").contains("RenewingLock"));
    assert!(format!("{:?}", lock.lost()).contains("None"));
    lock.release().await.unwrap();
}
