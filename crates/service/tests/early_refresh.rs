//! Early refresh: XFetch, stale-while-revalidate, TTL jitter, and the frame that carries their
//! metadata. Time is paused: the memory backend and the logical clock both follow tokio's clock.
//! XFetch is made deterministic with beta extremes (the unit tests in `lexicache-lock` pin the
//! formula with chosen random draws).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, ErrorKind, LockOwner, SharedLockStore};
use lexicache_memory::{MemoryBackend, MemoryLockStore};
use lexicache_service::{CacheService, EarlyRefresh, LoadOptions};
use lexicache_testkit::BytesOnly;
use support::CountingJson;

const TTL: Duration = Duration::from_secs(10);

/// A loader that counts its runs, takes 100 ms, and returns its run number.
fn counted(
    runs: &Arc<AtomicUsize>,
) -> impl FnOnce() -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<usize, std::io::Error>> + Send>,
> + Send
       + 'static {
    let runs = runs.clone();
    move || {
        Box::pin(async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(n)
        })
    }
}

fn xfetch(beta: f64) -> LoadOptions {
    LoadOptions::new().ttl(TTL).xfetch(beta)
}

#[tokio::test(start_paused = true)]
async fn xfetch_with_a_large_beta_refreshes_an_entry_near_expiry() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        cache
            .get_or_set_with("k", xfetch(1e6), counted(&runs))
            .await
            .unwrap(),
        1
    );
    tokio::time::advance(Duration::from_secs(9)).await;
    // The refreshing caller gets the new value.
    assert_eq!(
        cache
            .get_or_set_with("k", xfetch(1e6), counted(&runs))
            .await
            .unwrap(),
        2
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get::<usize>("k").await, Some(2));
    // The refresh wrote a new expiry: ten seconds from now, not from the first load.
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(cache.get::<usize>("k").await, Some(2));
}

#[tokio::test(start_paused = true)]
async fn xfetch_with_a_small_beta_leaves_a_fresh_entry_alone() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("k", xfetch(1e-9), counted(&runs))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    for _ in 0..100 {
        let v = cache
            .get_or_set_with("k", xfetch(1e-9), counted(&runs))
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn xfetch_refreshes_once_among_concurrent_callers_who_keep_the_current_value() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("k", xfetch(1e6), counted(&runs))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set_with("k", xfetch(1e6), counted(&runs))
                    .await
            })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap().unwrap());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one early refresh");
    assert_eq!(
        values.iter().filter(|v| **v == 2).count(),
        1,
        "the refresher got the new value"
    );
    assert_eq!(
        values.iter().filter(|v| **v == 1).count(),
        99,
        "the rest were served at once"
    );
}

#[tokio::test(start_paused = true)]
async fn xfetch_serves_the_current_value_while_another_process_holds_the_load_lock() {
    let locks: SharedLockStore = Arc::new(MemoryLockStore::new());
    let cache = CacheService::memory().lock_store(locks.clone()).build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("k", xfetch(1e6), counted(&runs))
        .await
        .unwrap();
    let owner = LockOwner::new("other-process");
    locks
        .acquire("lexicache-load:k", &owner, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(
        cache
            .get_or_set_with("k", xfetch(1e6), counted(&runs))
            .await
            .unwrap(),
        1
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_early_refresh_keeps_serving_the_current_value() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("k", xfetch(1e6), counted(&runs))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    let v = cache
        .get_or_set_with("k", xfetch(1e6), || async {
            Err::<usize, _>(std::io::Error::other("database is down"))
        })
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(cache.get::<usize>("k").await, Some(1));
}

#[tokio::test(start_paused = true)]
async fn get_or_set_applies_the_services_default_xfetch() {
    let cache = CacheService::memory()
        .early_refresh(EarlyRefresh::new().xfetch(1e6))
        .build();
    let runs = AtomicUsize::new(0);
    let load = || async {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(n)
    };
    assert_eq!(cache.get_or_set("k", Some(TTL), load).await.unwrap(), 1);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(cache.get_or_set("k", Some(TTL), load).await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_value_is_served_while_one_background_refresh_replaces_it() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let swr = || {
        LoadOptions::new()
            .ttl(TTL)
            .stale_while_revalidate(Duration::from_secs(30))
    };
    assert_eq!(
        cache
            .get_or_set_with("k", swr(), counted(&runs))
            .await
            .unwrap(),
        1
    );

    tokio::time::advance(Duration::from_secs(11)).await;
    // Past the TTL a plain read is an honest miss...
    assert_eq!(cache.get::<usize>("k").await, None);
    // ...while loads within the grace get the stale value at once.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move { cache.get_or_set_with("k", swr(), counted(&runs)).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    // The refresh runs in the background (its loader takes 100 ms); let it finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one background refresh");
    assert_eq!(cache.get::<usize>("k").await, Some(2));
    assert_eq!(
        cache
            .get_or_set_with("k", swr(), counted(&runs))
            .await
            .unwrap(),
        2
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn past_the_grace_a_stale_value_is_a_miss() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let swr = || {
        LoadOptions::new()
            .ttl(TTL)
            .stale_while_revalidate(Duration::from_secs(30))
    };
    cache
        .get_or_set_with("k", swr(), counted(&runs))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(41)).await;
    // Loaded in the call, not served stale.
    assert_eq!(
        cache
            .get_or_set_with("k", swr(), counted(&runs))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn stale_entry_is_a_miss_for_get_or_set_without_a_background_loader() {
    let cache = CacheService::memory().build();
    let runs = Arc::new(AtomicUsize::new(0));
    let swr = LoadOptions::new()
        .ttl(TTL)
        .stale_while_revalidate(Duration::from_secs(30));
    cache
        .get_or_set_with("k", swr, counted(&runs))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    let v = cache
        .get_or_set("k", Some(TTL), || async { Ok::<_, std::io::Error>(9usize) })
        .await
        .unwrap();
    assert_eq!(v, 9);
}

#[tokio::test(start_paused = true)]
async fn ttl_jitter_keeps_ttls_within_bounds() {
    let cache = CacheService::memory().build();
    let ttl = Duration::from_secs(100);
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cache
            .get_or_set_with(key, LoadOptions::new().ttl(ttl).ttl_jitter(0.5), || async {
                Ok::<_, std::io::Error>(1u8)
            })
            .await
            .unwrap();
    }
    let live = |cache: CacheService, keys: Vec<String>| async move {
        let mut n = 0;
        for key in &keys {
            n += usize::from(cache.get::<u8>(key).await.is_some());
        }
        n
    };
    tokio::time::advance(Duration::from_millis(49_900)).await;
    assert_eq!(
        live(cache.clone(), keys.clone()).await,
        200,
        "none shorter than 50%"
    );
    tokio::time::advance(Duration::from_secs(25)).await;
    let midway = live(cache.clone(), keys.clone()).await;
    assert!(
        midway > 0 && midway < 200,
        "expiries are spread: {midway} of 200 live at 75 s"
    );
    tokio::time::advance(Duration::from_millis(25_200)).await;
    assert_eq!(live(cache, keys).await, 0, "none longer than the TTL");
}

#[tokio::test(start_paused = true)]
async fn framed_values_read_back_from_a_bytes_only_backend() {
    let cache = CacheService::builder(BytesOnly(MemoryBackend::new())).build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("a", xfetch(1e-9), counted(&runs))
        .await
        .unwrap();
    assert!(cache.set("b", &7usize, None).await);
    assert_eq!(cache.get::<usize>("a").await, Some(1));
    assert_eq!(
        cache.get_many::<usize>(&["a", "b", "c"]).await,
        vec![Some(1), Some(7), None]
    );
    let raw = cache.backend().get("a").await.unwrap().unwrap();
    assert_eq!(&raw[..3], &[0xC1, 0x46, 1], "the frame's magic and version");
    tokio::time::advance(TTL).await;
    assert_eq!(
        cache.get_many::<usize>(&["a", "b"]).await,
        vec![None, Some(7)]
    );
}

#[tokio::test]
async fn unframed_values_are_hits_that_never_refresh_early() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &5usize, Some(TTL)).await);
    let v = cache
        .get_or_set_with("k", xfetch(1e9), || async {
            Err::<usize, _>(std::io::Error::other("must not run"))
        })
        .await
        .unwrap();
    assert_eq!(v, 5);
}

#[tokio::test]
async fn garbled_frame_is_a_serialization_error_and_a_load_replaces_it() {
    let backend = MemoryBackend::new();
    let cache = CacheService::builder(backend.clone()).build();
    backend
        .set("k", Bytes::from_static(&[0xC1, 0x46, 1, 0, 9]), None)
        .await
        .unwrap();
    assert_eq!(
        cache.try_get::<u8>("k").await.unwrap_err().kind(),
        ErrorKind::Serialization
    );
    assert_eq!(cache.get::<u8>("k").await, None);
    let v = cache
        .get_or_set_with("k", xfetch(1.0), || async { Ok::<_, std::io::Error>(3u8) })
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert_eq!(cache.get::<u8>("k").await, Some(3));
}

#[tokio::test(start_paused = true)]
async fn in_process_stack_keeps_objects_for_framed_values() {
    let json = CountingJson::default();
    let cache = CacheService::memory().serializer(json.clone()).build();
    let runs = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_set_with("k", xfetch(1e-9), counted(&runs))
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(cache.get::<usize>("k").await, Some(1));
        assert_eq!(
            cache
                .get_or_set_with("k", xfetch(1e-9), counted(&runs))
                .await
                .unwrap(),
            1
        );
    }
    assert_eq!(json.decodes(), 0);
}
