//! The store scenarios of `support` on the memory store, on a paused clock.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::SharedLockStore;
use lexicache_memory::MemoryLockStore;
use support::Timing;

const TIMING: Timing = Timing {
    ttl: Duration::from_secs(30),
    expiry_slack: Duration::ZERO,
};

fn store() -> (MemoryLockStore, SharedLockStore) {
    let store = MemoryLockStore::new();
    (store.clone(), Arc::new(store))
}

#[tokio::test(start_paused = true)]
async fn paused_holder_loses_the_lock_to_a_second_owner() {
    let (_, shared) = store();
    support::paused_holder_loses_the_lock_to_a_second_owner(shared, "r", TIMING).await;
}

#[tokio::test(start_paused = true)]
async fn late_renewal_finds_the_lock_taken() {
    let (_, shared) = store();
    support::late_renewal_finds_the_lock_taken(shared, "r", TIMING).await;
}

#[tokio::test(start_paused = true)]
async fn max_lease_ends_renewal() {
    let (_, shared) = store();
    support::max_lease_ends_renewal(shared, "r", TIMING).await;
}

#[tokio::test(start_paused = true)]
async fn many_cycles_leave_the_store_empty() {
    let (memory, shared) = store();
    support::many_cycles_leave_no_locks(shared, "cycle", TIMING).await;
    assert!(memory.is_empty(), "{} locks left", memory.len());
}

/// On a multi-threaded runtime, with renewals every millisecond that take up to two, no
/// renewal starts or finishes after a release began, whether the lock is released or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_renewal_runs_after_release_on_a_multi_threaded_runtime() {
    use lexicache_lock::{LockManager, RenewOptions};
    use support::{Call, Phase, Recording};

    let memory = MemoryLockStore::new();
    let runs = (0..200u64).map(|i| {
        let recording = Recording::new(Arc::new(memory.clone()));
        let locks = LockManager::from_shared(recording.shared());
        async move {
            recording.delay_extends(Duration::from_micros(i % 3 * 700));
            let options = RenewOptions::new().interval(Duration::from_millis(1));
            let resource = format!("r{i}");
            let lock = locks
                .try_lock_renewing(&resource, Duration::from_millis(50), options)
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(Duration::from_micros(i * 37 % 5_000)).await;
            if i % 2 == 0 {
                lock.release().await.unwrap();
            } else {
                drop(lock);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let log = recording.log();
            let release = log
                .iter()
                .position(|e| e.call == Call::Release && e.phase == Phase::Start)
                .expect("released");
            assert!(
                log[release..].iter().all(|e| e.call != Call::Extend),
                "{resource}: {log:?}"
            );
            let ends = log[..release]
                .iter()
                .filter(|e| e.call == Call::Extend && e.phase == Phase::End)
                .count();
            let starts = log[..release]
                .iter()
                .filter(|e| e.call == Call::Extend && e.phase == Phase::Start)
                .count();
            assert_eq!(starts, ends, "{resource}: a renewal overlapped the release");
        }
    });
    let handles: Vec<_> = runs.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
    assert!(memory.is_empty(), "{} locks left", memory.len());
}
