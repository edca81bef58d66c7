//! Single-flight `get_or_set`: one loader per cold key, shared errors, and no caller wedged by
//! a loader that panics or is cancelled.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::ErrorKind;
use lexicache_service::CacheService;
use support::{user, Failing, User};
use tokio::sync::Notify;

type Loaded = lexicache_core::Result<User>;

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_callers_of_a_cold_key_run_the_loader_once() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set("user:1", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Slow enough that every caller arrives while it runs.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok::<_, std::io::Error>(user(1))
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), user(1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<User>("user:1").await, Some(user(1)));
}

/// Spawns `n` callers of `get_or_set("k")` whose loader counts its runs and takes a second.
fn spawn_callers(
    cache: &CacheService,
    runs: &Arc<AtomicUsize>,
    n: usize,
) -> Vec<tokio::task::JoinHandle<lexicache_core::Result<u32>>> {
    (0..n)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok::<_, std::io::Error>(9u32)
                    })
                    .await
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn thousand_callers_behind_a_panicking_leader_share_its_error_and_run_no_loader() {
    let cache = CacheService::memory().build();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("k", None, || async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if true {
                        panic!("loader bug");
                    }
                    Ok::<_, std::io::Error>(0u32)
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let waiters = spawn_callers(&cache, &runs, 999);
    assert!(leader.await.unwrap_err().is_panic());
    for waiter in waiters {
        assert_eq!(
            waiter.await.unwrap().unwrap_err().kind(),
            ErrorKind::LoaderPanicked
        );
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "only the panicking loader ran"
    );
    // Nothing is wedged: the next thousand callers run one loader.
    for caller in spawn_callers(&cache, &runs, 1000) {
        assert_eq!(caller.await.unwrap().unwrap(), 9);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn thousand_callers_behind_a_cancelled_leader_run_one_loader() {
    let cache = CacheService::memory().build();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set(
                    "k",
                    None,
                    std::future::pending::<Result<u32, std::io::Error>>,
                )
                .await
        })
    };
    tokio::task::yield_now().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let waiters = spawn_callers(&cache, &runs, 999);
    tokio::time::sleep(Duration::from_millis(10)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), 9);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one waiter took the lead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_worker_threads_share_one_load() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (cache, runs, gate) = (cache.clone(), runs.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set_arc("k", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok::<_, std::io::Error>(7u64)
                    })
                    .await
            })
        })
        .collect();
    // Open the gate once the loader runs; late callers then find the value cached.
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    for task in tasks {
        assert_eq!(*task.await.unwrap().unwrap(), 7);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn loader_error_reaches_every_waiter_and_is_not_cached() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Err::<User, _>(std::io::Error::other("database is down"))
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LoaderFailed);
        let source = std::error::Error::source(&err).expect("the loader's error is kept");
        assert_eq!(source.to_string(), "database is down");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<User>("k").await, None);

    // Nothing was cached, so the next call loads again.
    let value: Loaded = cache
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(user(2)) })
        .await;
    assert_eq!(value.unwrap(), user(2));
    assert_eq!(cache.get::<User>("k").await, Some(user(2)));
}

#[tokio::test(start_paused = true)]
async fn panicking_loader_does_not_wedge_waiters() {
    let cache = CacheService::memory().build();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("k", None, || async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if true {
                        panic!("loader bug");
                    }
                    Ok::<_, std::io::Error>(0u32)
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async { Ok::<_, std::io::Error>(1u32) })
                    .await
            })
        })
        .collect();

    let joined = leader.await.unwrap_err();
    assert!(joined.is_panic(), "the leader's own call resumes the panic");
    for waiter in waiters {
        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LoaderPanicked);
    }
    // Nothing was cached and nothing is stuck: the next call loads.
    let value = cache
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(2u32) })
        .await
        .unwrap();
    assert_eq!(value, 2);
}

#[tokio::test(start_paused = true)]
async fn aborted_leader_does_not_wedge_waiters() {
    let cache = CacheService::memory().build();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set(
                    "k",
                    None,
                    std::future::pending::<Result<u32, std::io::Error>>,
                )
                .await
        })
    };
    tokio::task::yield_now().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(9u32)
                    })
                    .await
            })
        })
        .collect();
    // Let every waiter join the leader's flight before the leader goes away.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "waiters wait for the leader"
    );
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), 9);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one waiter took the lead");
}

#[tokio::test(start_paused = true)]
async fn dropped_leader_future_does_not_wedge_waiters() {
    let cache = CacheService::memory().build();
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            // Arrive after the leader has started.
            tokio::time::sleep(Duration::from_millis(1)).await;
            cache
                .get_or_set("k", None, || async { Ok::<_, std::io::Error>(3u32) })
                .await
        })
    };
    let leading = cache.get_or_set(
        "k",
        None,
        std::future::pending::<Result<u32, std::io::Error>>,
    );
    // The leader's caller gives up after a while, dropping its future mid-load.
    let outcome = tokio::time::timeout(Duration::from_secs(1), leading).await;
    assert!(outcome.is_err());
    assert_eq!(waiter.await.unwrap().unwrap(), 3);
    assert_eq!(cache.get::<u32>("k").await, Some(3));
}

#[tokio::test(start_paused = true)]
async fn different_keys_load_independently() {
    let cache = CacheService::memory().build();
    let b_ran = Arc::new(Notify::new());
    let a = {
        let (cache, b_ran) = (cache.clone(), b_ran.clone());
        tokio::spawn(async move {
            cache
                .get_or_set("a", None, || async move {
                    // Completes only if key b's load runs meanwhile.
                    b_ran.notified().await;
                    Ok::<_, std::io::Error>(1u32)
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let b = cache
        .get_or_set("b", None, || async {
            b_ran.notify_one();
            Ok::<_, std::io::Error>(2u32)
        })
        .await
        .unwrap();
    assert_eq!(b, 2);
    let a = tokio::time::timeout(Duration::from_secs(5), a)
        .await
        .expect("key a is not blocked by key b")
        .unwrap()
        .unwrap();
    assert_eq!(a, 1);
}

#[tokio::test(start_paused = true)]
async fn callers_of_one_key_as_different_types_load_separately() {
    let cache = CacheService::memory().build();
    let (n, s) = tokio::join!(
        cache.get_or_set("k", None, || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>(5u32)
        }),
        cache.get_or_set("k", None, || async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, std::io::Error>("five".to_owned())
        }),
    );
    assert_eq!(n.unwrap(), 5);
    assert_eq!(s.unwrap(), "five");
}

#[tokio::test]
async fn hit_returns_the_cached_value_without_running_the_loader() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &user(1), None).await);
    let value = cache
        .get_or_set("k", None, || async {
            Err::<User, _>(std::io::Error::other("must not run"))
        })
        .await
        .unwrap();
    assert_eq!(value, user(1));
}

#[tokio::test(start_paused = true)]
async fn loaded_value_is_stored_with_its_ttl() {
    let cache = CacheService::memory().build();
    let runs = AtomicUsize::new(0);
    let load = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(1u8)
    };
    let ttl = Some(Duration::from_secs(10));
    cache.get_or_set("k", ttl, load).await.unwrap();
    cache.get_or_set("k", ttl, load).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    cache.get_or_set("k", ttl, load).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn backend_failure_degrades_to_running_the_loader() {
    let cache = CacheService::builder(Failing::default()).build();
    let value = cache
        .get_or_set("k", None, || async { Ok::<_, std::io::Error>(user(4)) })
        .await
        .unwrap();
    assert_eq!(value, user(4));
    // Two reads (before and after taking the lead) and the store failed; each counted once.
    assert_eq!(cache.metrics().errors, 3);
}

#[tokio::test]
async fn invalid_key_is_an_error_and_runs_no_loader() {
    let cache = CacheService::memory().build();
    let err = cache
        .get_or_set("", None, || async {
            Err::<u8, _>(std::io::Error::other("must not run"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
}

#[tokio::test(start_paused = true)]
async fn waiters_share_the_leaders_arc() {
    let cache = CacheService::memory().build();
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, std::io::Error>(user(1))
    };
    let (a, b) = tokio::join!(
        cache.get_or_set_arc("k", None, slow),
        cache.get_or_set_arc("k", None, slow),
    );
    assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
}
