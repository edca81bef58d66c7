//! Distributed stampede protection, in-process: services sharing one backend and one lock store
//! behave like processes sharing a server. Covers the lock's waits and fallbacks, degradation on
//! lock-store failures, cancellation, and layers forwarding the lock store.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheBackend, CacheMetrics, ErrorKind, EventBus, LockOwner, SharedLockStore};
use lexicache_memory::{MemoryBackend, MemoryLockStore};
use lexicache_service::layers::{Evented, Metered, Namespaced, Timeout};
use lexicache_service::{CacheService, Fallback, Protection};
use support::{user, FailingLocks, HangingLocks, User, WithLocks};
use tokio::time::Instant;

/// The resource `get_or_set` locks for `key` (without a namespace).
fn resource(key: &str) -> String {
    format!("lexicache-load:{key}")
}

/// Holds the load lock of `key` in `store` as another process would, for `ttl`.
async fn hold(store: &SharedLockStore, key: &str, ttl: Duration) -> LockOwner {
    let owner = LockOwner::new("other-process");
    store
        .acquire(&resource(key), &owner, ttl)
        .await
        .unwrap()
        .expect("the lock is free");
    owner
}

/// `n` services over one memory backend and one lock store: separate single-flight tables,
/// like separate processes, sharing the cache and the locks.
fn services(n: usize, protection: Protection) -> (Vec<CacheService>, SharedLockStore) {
    let backend = MemoryBackend::new();
    let locks: SharedLockStore = Arc::new(MemoryLockStore::new());
    let services = (0..n)
        .map(|i| {
            CacheService::builder(backend.clone())
                .name(format!("instance-{i}"))
                .lock_store(locks.clone())
                .protection(protection.clone())
                .build()
        })
        .collect();
    (services, locks)
}

#[tokio::test(start_paused = true)]
async fn services_sharing_a_lock_store_run_the_loader_once_in_total() {
    let (services, locks) = services(4, Protection::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for service in &services {
        for _ in 0..250 {
            let (service, runs) = (service.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                service
                    .get_or_set("report", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        Ok::<_, std::io::Error>(user(1))
                    })
                    .await
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), user(1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!locks.is_locked(&resource("report")).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn waiter_returns_the_value_another_process_stored_without_loading() {
    let (services, locks) = services(2, Protection::new());
    let owner = hold(&locks, "k", Duration::from_secs(30)).await;
    let other = services[1].clone();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(other.set("k", &user(7), None).await);
        locks.release(&resource("k"), &owner).await.unwrap();
    });
    let value = services[0]
        .get_or_set("k", None, || async {
            Err::<User, _>(std::io::Error::other("must not run"))
        })
        .await
        .unwrap();
    holder.await.unwrap();
    assert_eq!(value, user(7));
}

#[tokio::test(start_paused = true)]
async fn waiter_loads_when_the_lock_frees_without_a_value() {
    let (services, locks) = services(1, Protection::new());
    let owner = hold(&locks, "k", Duration::from_secs(30)).await;
    let releaser = {
        let locks = locks.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            locks.release(&resource("k"), &owner).await.unwrap();
        })
    };
    let started = Instant::now();
    let value = services[0]
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(5u32) })
        .await
        .unwrap();
    releaser.await.unwrap();
    assert_eq!(value, 5);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not wait for max_wait"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_past_max_wait_falls_back_to_running_the_loader() {
    let protection = Protection::new().max_wait(Duration::from_secs(2));
    let (services, locks) = services(1, protection);
    let _owner = hold(&locks, "k", Duration::from_secs(60)).await;
    let started = Instant::now();
    let value = services[0]
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(3u32) })
        .await
        .unwrap();
    assert_eq!(value, 3);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        services[0].get::<u32>("k").await,
        Some(3),
        "the fallback stores its value"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_past_max_wait_fails_with_lock_timeout_when_configured() {
    let protection = Protection::new()
        .max_wait(Duration::from_secs(2))
        .on_timeout(Fallback::Fail);
    let (services, locks) = services(1, protection);
    let _owner = hold(&locks, "k", Duration::from_secs(60)).await;
    let runs = AtomicUsize::new(0);
    let err = services[0]
        .get_or_set("k", None, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(3u32)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    assert!(err.is_retryable());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn lock_timeout_reaches_every_local_waiter() {
    let protection = Protection::new()
        .max_wait(Duration::from_secs(1))
        .on_timeout(Fallback::Fail);
    let (services, locks) = services(1, protection);
    let _owner = hold(&locks, "k", Duration::from_secs(60)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let service = services[0].clone();
            tokio::spawn(async move {
                service
                    .get_or_set("k", None, || async { Ok::<_, std::io::Error>(1u8) })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap_err().kind(),
            ErrorKind::LockTimeout
        );
    }
}

#[tokio::test]
async fn failing_lock_store_degrades_to_running_the_loader() {
    let failing = Arc::new(FailingLocks::default());
    let cache = CacheService::memory().lock_store(failing.clone()).build();
    let value = cache
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(user(4)) })
        .await
        .unwrap();
    assert_eq!(value, user(4));
    assert_eq!(cache.get::<User>("k").await, Some(user(4)));
    assert_eq!(failing.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.metrics().errors, 1, "the lock failure is counted");
}

#[tokio::test(start_paused = true)]
async fn hung_lock_store_is_cut_off_by_the_timeout_layer() {
    let cache = CacheService::builder(WithLocks::with_store(Arc::new(HangingLocks)))
        .timeout(Duration::from_millis(100))
        .build();
    let value = tokio::time::timeout(
        Duration::from_secs(5),
        cache.get_or_set("k", None, || async { Ok::<_, std::io::Error>(9u8) }),
    )
    .await
    .expect("a hung lock store does not hang the load")
    .unwrap();
    assert_eq!(value, 9);
}

#[tokio::test(start_paused = true)]
async fn cancelled_leader_releases_its_lock() {
    let (services, locks) = services(1, Protection::new());
    let outcome = tokio::time::timeout(
        Duration::from_secs(1),
        services[0].get_or_set(
            "k",
            None,
            std::future::pending::<Result<u8, std::io::Error>>,
        ),
    )
    .await;
    assert!(outcome.is_err());
    // The release runs in a spawned task; let it.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!locks.is_locked(&resource("k")).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn panicking_loader_releases_its_lock() {
    let (services, locks) = services(1, Protection::new());
    let service = services[0].clone();
    let leader = tokio::spawn(async move {
        service
            .get_or_set("k", None, || async {
                if true {
                    panic!("loader bug");
                }
                Ok::<_, std::io::Error>(0u8)
            })
            .await
    });
    assert!(leader.await.unwrap_err().is_panic());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!locks.is_locked(&resource("k")).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn lock_is_renewed_while_a_slow_loader_runs() {
    let protection = Protection::new().lock_ttl(Duration::from_secs(3));
    let (services, locks) = services(2, protection);
    let (a, b) = (services[0].clone(), services[1].clone());
    let b_runs = Arc::new(AtomicUsize::new(0));
    let slow = tokio::spawn(async move {
        a.get_or_set("k", None, || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::io::Error>(1u8)
        })
        .await
    });
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        locks.is_locked(&resource("k")).await.unwrap(),
        "renewed past its TTL"
    );
    let value = b
        .get_or_set("k", None, || {
            b_runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::io::Error>(2u8) }
        })
        .await
        .unwrap();
    assert_eq!(
        value, 1,
        "the second instance waited for the first one's value"
    );
    assert_eq!(b_runs.load(Ordering::SeqCst), 0);
    assert_eq!(slow.await.unwrap().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn disabled_protection_runs_every_callers_loader() {
    let cache = CacheService::memory()
        .protection(Protection::disabled())
        .build();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok::<_, std::io::Error>(1u8)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn local_protection_coalesces_without_taking_a_lock() {
    let locks = MemoryLockStore::new();
    let cache = CacheService::memory()
        .lock_store(Arc::new(locks.clone()))
        .protection(Protection::local())
        .build();
    let observed = locks.clone();
    let held_during_load = cache
        .get_or_set("k", None, || async move {
            Ok::<_, std::io::Error>(!observed.is_empty())
        })
        .await
        .unwrap();
    assert!(!held_during_load);
}

#[tokio::test]
async fn service_takes_the_backends_lock_store_under_its_namespace() {
    let backend = WithLocks::new();
    let locks = backend.locks.clone();
    let cache = CacheService::builder(backend)
        .namespace("tenant-a:")
        .timeout(Duration::from_secs(5))
        .build();
    let store = cache
        .backend()
        .lock_store()
        .expect("forwarded through every layer");
    let probe = locks.clone();
    let locked_during_load = cache
        .get_or_set("k", None, || async move {
            Ok::<_, std::io::Error>(probe.is_locked("tenant-a:lexicache-load:k").await.unwrap())
        })
        .await
        .unwrap();
    assert!(locked_during_load);
    assert!(!locks.is_locked("tenant-a:lexicache-load:k").await.unwrap());
    // The stack's store prefixes the namespace.
    let owner = LockOwner::new("t");
    store
        .acquire("r", &owner, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(locks.is_locked("tenant-a:r").await.unwrap());
}

#[tokio::test]
async fn builder_lock_store_gets_the_namespace_prefix() {
    let locks: SharedLockStore = Arc::new(MemoryLockStore::new());
    let probe = locks.clone();
    let cache = CacheService::memory()
        .namespace("ns:")
        .lock_store(locks.clone())
        .build();
    let locked_during_load = cache
        .get_or_set("k", None, || async move {
            Ok::<_, std::io::Error>(probe.is_locked("ns:lexicache-load:k").await.unwrap())
        })
        .await
        .unwrap();
    assert!(locked_during_load);
}

#[tokio::test]
async fn every_layer_forwards_the_lock_store() {
    let backend = WithLocks::new();
    let locks = backend.locks.clone();
    let metrics = Arc::new(CacheMetrics::new("layers"));
    let owner = LockOwner::new("t");
    let ttl = Duration::from_secs(5);

    let evented = Evented::new(backend.clone(), EventBus::new());
    evented
        .lock_store()
        .unwrap()
        .acquire("e", &owner, ttl)
        .await
        .unwrap()
        .unwrap();
    let metered = Metered::new(backend.clone(), metrics);
    metered
        .lock_store()
        .unwrap()
        .acquire("m", &owner, ttl)
        .await
        .unwrap()
        .unwrap();
    let timeout = Timeout::new(backend.clone(), Duration::from_secs(1));
    timeout
        .lock_store()
        .unwrap()
        .acquire("t", &owner, ttl)
        .await
        .unwrap()
        .unwrap();
    let namespaced = Namespaced::new(backend.clone(), "ns:");
    let store = namespaced.lock_store().unwrap();
    store.acquire("n", &owner, ttl).await.unwrap().unwrap();

    for resource in ["e", "m", "t", "ns:n"] {
        assert!(locks.is_locked(resource).await.unwrap(), "{resource}");
    }
    assert!(!locks.is_locked("n").await.unwrap());
    // Release and is_locked go through the prefix too.
    assert!(store.is_locked("n").await.unwrap());
    store.release("n", &owner).await.unwrap();
    assert!(!locks.is_locked("ns:n").await.unwrap());
    // A backend without a store stays without one under layers.
    assert!(Namespaced::new(MemoryBackend::new(), "ns:")
        .lock_store()
        .is_none());
}
