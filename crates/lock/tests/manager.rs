//! `LockManager` and `LockGuard` on the memory store: acquiring, waiting, guards, and the scoped
//! `locked` form on every exit path.

mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use lexicache_core::{Error, ErrorKind, LockStore};
use lexicache_lock::{LockGuard, LockManager, LostReason, RenewOptions, RenewingLock};
use lexicache_memory::MemoryLockStore;
use support::{Call, Recording};
use tokio::time::{sleep, timeout, Instant};

const TTL: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_secs(1);

fn manager() -> (MemoryLockStore, LockManager) {
    let store = MemoryLockStore::new();
    (store.clone(), LockManager::new(store))
}

#[tokio::test(start_paused = true)]
async fn try_lock_returns_none_while_another_owner_holds_the_lock() {
    let (_, locks) = manager();
    let guard = locks.try_lock("r", TTL).await.unwrap().unwrap();
    assert!(locks.try_lock("r", TTL).await.unwrap().is_none());
    assert!(locks.clone().try_lock("r", TTL).await.unwrap().is_none());
    guard.release().await.unwrap();
    assert!(locks.try_lock("r", TTL).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn every_acquisition_has_a_fresh_labelled_owner_and_a_larger_fence() {
    let (_, locks) = manager();
    let locks = locks.with_label("worker-7");
    let a = locks.try_lock("r", TTL).await.unwrap().unwrap();
    let (fa, oa) = (a.fence(), a.owner().clone());
    a.release().await.unwrap();
    let b = locks.try_lock("r", TTL).await.unwrap().unwrap();
    assert!(b.fence() > fa);
    assert_ne!(b.owner(), &oa);
    assert!(b.owner().as_str().starts_with("worker-7:"));
    assert_eq!((b.resource(), b.ttl()), ("r", TTL));
    b.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lock_times_out_with_lock_timeout_after_wait() {
    let (_, locks) = manager();
    let _held = locks.try_lock("r", TTL).await.unwrap().unwrap();
    let start = Instant::now();
    let err = locks
        .lock("r", TTL, Duration::from_secs(5), RETRY)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    assert_eq!(err.backend(), "memory");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "the last try is at the wait's end"
    );
}

#[tokio::test(start_paused = true)]
async fn lock_with_zero_wait_is_one_attempt() {
    let (_, locks) = manager();
    let recording = Recording::new(locks.store().clone());
    let locks = LockManager::from_shared(recording.shared());
    let _held = locks.try_lock("r", TTL).await.unwrap().unwrap();
    let err = locks
        .lock("r", TTL, Duration::ZERO, RETRY)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    assert_eq!(recording.count(Call::Acquire), 2);
}

#[tokio::test(start_paused = true)]
async fn lock_retries_with_jitter_and_acquires_once_the_holder_releases() {
    let (store, locks) = manager();
    let recording = Recording::new(Arc::new(store));
    let waiter = LockManager::from_shared(recording.shared());
    let held = locks.try_lock("r", TTL).await.unwrap().unwrap();
    let release = async {
        sleep(Duration::from_secs(10)).await;
        held.release().await.unwrap();
    };
    let start = Instant::now();
    let (guard, ()) = tokio::join!(waiter.lock("r", TTL, TTL, RETRY), release);
    let guard = guard.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_millis(11_250),
        "{waited:?}"
    );
    let tries = recording.starts(Call::Acquire);
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .all(|g| *g >= Duration::from_millis(750) && *g < Duration::from_millis(1250)),
        "{gaps:?}"
    );
    assert!(
        gaps.windows(2).any(|w| w[0] != w[1]),
        "retries are jittered: {gaps:?}"
    );
    guard.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn store_errors_propagate_from_every_way_to_acquire() {
    let (_, locks) = manager();
    let kinds = [
        locks.try_lock("", TTL).await.unwrap_err().kind(),
        locks.lock("", TTL, TTL, RETRY).await.unwrap_err().kind(),
        locks
            .try_lock_renewing("", TTL, RenewOptions::default())
            .await
            .unwrap_err()
            .kind(),
        locks
            .locked("", TTL, |_| async { Ok(()) })
            .await
            .unwrap_err()
            .kind(),
    ];
    assert_eq!(kinds, [ErrorKind::KeyInvalid; 4]);
}

#[tokio::test(start_paused = true)]
async fn a_guard_that_lost_its_lock_gets_the_stores_errors_and_leaves_the_new_lock_alone() {
    let (store, locks) = manager();
    let first = locks.try_lock("r", TTL).await.unwrap().unwrap();
    sleep(TTL).await;
    let second = locks.try_lock("r", TTL).await.unwrap().expect("expired");
    assert_eq!(
        first.extend(TTL).await.unwrap_err().kind(),
        ErrorKind::LockOwnership
    );
    let deadline = first.deadline();
    let err = first.release().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockOwnership);
    assert!(deadline <= Instant::now());
    assert!(store.is_locked("r").await.unwrap());
    second.release().await.unwrap();
    let third = locks.try_lock("r", TTL).await.unwrap().unwrap();
    third.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn extend_moves_the_guards_deadline_and_keeps_the_lock() {
    let (store, locks) = manager();
    let guard = locks.try_lock("r", TTL).await.unwrap().unwrap();
    let acquired = Instant::now();
    assert_eq!(guard.deadline(), acquired + TTL);
    sleep(Duration::from_secs(20)).await;
    guard.extend(TTL).await.unwrap();
    assert_eq!(guard.deadline(), acquired + Duration::from_secs(50));
    sleep(Duration::from_secs(20)).await;
    assert!(store.is_locked("r").await.unwrap());
    guard.release().await.unwrap();
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_guard_releases_the_lock_in_the_background() {
    let (store, locks) = manager();
    drop(locks.try_lock("r", TTL).await.unwrap().unwrap());
    tokio::task::yield_now().await;
    assert!(store.is_empty());
}

#[test]
fn dropping_locks_after_their_runtime_is_gone_does_not_panic() {
    let (store, locks) = manager();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (guard, renewing): (LockGuard, RenewingLock) = runtime.block_on(async {
        let guard = locks.try_lock("a", TTL).await.unwrap().unwrap();
        let renewing = locks
            .try_lock_renewing("b", TTL, RenewOptions::default())
            .await
            .unwrap()
            .unwrap();
        (guard, renewing)
    });
    drop(runtime);
    drop(guard);
    drop(renewing);
    // Nobody could release them: they expire after their TTL, as the store promises.
    assert_eq!(store.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn locked_releases_after_ok() {
    let (store, locks) = manager();
    let value = locks
        .locked("r", TTL, |lease| {
            let store = store.clone();
            async move {
                assert!(store.is_locked(lease.resource()).await?);
                assert!(!lease.is_lost());
                Ok(lease.fence().get())
            }
        })
        .await
        .unwrap();
    assert!(value > 0);
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn locked_releases_after_err_and_returns_it() {
    let (store, locks) = manager();
    let err = locks
        .locked("r", TTL, |_| async {
            Err::<(), _>(Error::new(ErrorKind::LoaderFailed, "work"))
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.backend()),
        (ErrorKind::LoaderFailed, "work")
    );
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn locked_releases_after_a_panic_and_resumes_it() {
    let (store, locks) = manager();
    let work = locks.locked("r", TTL, |_| async {
        if store.len() == 1 {
            panic!("work failed hard");
        }
        Ok(())
    });
    let outcome = AssertUnwindSafe(work).catch_unwind().await;
    let panic = outcome.expect_err("the panic is resumed");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"work failed hard"));
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn locked_releases_when_cancelled() {
    let (store, locks) = manager();
    let work = locks.locked("r", TTL, |_| async {
        sleep(TTL * 100).await;
        Ok(())
    });
    assert!(timeout(TTL * 2, work).await.is_err());
    tokio::task::yield_now().await;
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn locked_renews_long_work_and_waits_for_a_taken_lock() {
    let (store, locks) = manager();
    let locks = locks.with_wait(Duration::from_secs(5)).with_retry(RETRY);
    let recording = Recording::new(Arc::new(store.clone()));
    let watched = LockManager::from_shared(recording.shared());
    let long = watched.locked("r", TTL, |lease| async move {
        sleep(TTL * 3).await;
        Ok(lease.is_lost())
    });
    let contender = async {
        sleep(Duration::from_secs(1)).await;
        locks.locked("r", TTL, |_| async { Ok(()) }).await
    };
    let (long, contender) = tokio::join!(long, contender);
    assert!(!long.unwrap(), "the lock was never lost");
    assert_eq!(contender.unwrap_err().kind(), ErrorKind::LockTimeout);
    assert!(recording.count(Call::Extend) >= 8);
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn locked_work_sees_the_lost_signal_and_the_release_error_is_returned() {
    let (store, locks) = manager();
    let locks = locks.with_renew_options(RenewOptions::new().max_lease(TTL));
    let thief = LockManager::new(store.clone());
    let seen = Arc::new(std::sync::Mutex::new(None));
    let result = locks
        .locked("r", TTL, |lease| {
            let seen = seen.clone();
            async move {
                let reason = lease.lost().await;
                let stolen = thief.try_lock("r", TTL * 10).await?.expect("expired");
                *seen.lock().unwrap() = Some((reason, stolen));
                Ok(())
            }
        })
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockOwnership);
    let (reason, stolen) = seen.lock().unwrap().take().unwrap();
    assert_eq!(reason, LostReason::MaxLease);
    assert!(
        store.is_locked("r").await.unwrap(),
        "the thief's lock stays"
    );
    stolen.release().await.unwrap();
}

/// Futures of the manager can move between threads (spawned on a multi-threaded runtime).
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn check<F: Future + Send>(f: F) -> F {
        f
    }
    let (_, locks) = manager();
    send(&locks);
    let _try_lock = check(locks.try_lock("r", TTL));
    let _lock = check(locks.lock("r", TTL, TTL, RETRY));
    let _lock_renewing = check(locks.lock_renewing("r", TTL, TTL, RETRY, RenewOptions::default()));
    let _locked = check(locks.locked("r", TTL, |lease| async move { Ok(lease.fence()) }));
    fn sync<T: Send + Sync>() {}
    sync::<LockGuard>();
    sync::<RenewingLock>();
    sync::<lexicache_lock::Lease>();
    sync::<lexicache_lock::LostSignal>();
    sync::<LockManager>();
}

#[tokio::test(start_paused = true)]
async fn extreme_durations_do_not_panic() {
    // The store's own limit; the manager's durations go to the maximum.
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    let (_, locks) = manager();
    let held = locks.try_lock("r", CENTURY).await.unwrap().unwrap();
    let err = locks
        .lock("r", CENTURY, Duration::from_secs(1), Duration::MAX)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    let renewing = locks
        .try_lock_renewing(
            "s",
            CENTURY,
            RenewOptions::new()
                .interval(Duration::MAX)
                .max_lease(Duration::MAX),
        )
        .await
        .unwrap()
        .unwrap();
    let zero = locks
        .try_lock_renewing("t", Duration::ZERO, RenewOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zero.lost().lost().await, LostReason::MaxLease);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(renewing.lost_reason(), None);
    renewing.release().await.unwrap();
    held.release().await.unwrap();
}
