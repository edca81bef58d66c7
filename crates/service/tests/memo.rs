//! Memoization: `remember`, `cacheable`, `conditional`, `invalidate_after`, the key
//! derivation, degradation on cache failures, and the process-wide cache. Memory unless a test
//! says otherwise; `remember` also runs on the shared Redis, and invalidation by pattern on
//! the shared Memcached (which cannot).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{ErrorKind, KeyRules};
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::{memo, CacheService, Invalidation};
use lexicache_testkit::servers;
use support::{user, Failing, User};

/// A counter of a function's runs.
#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An error that is neither `Clone` nor `std::error::Error`: `cacheable` must hand it back as
/// it is.
#[derive(Debug, PartialEq)]
struct NotFound(usize);

// ----- keys ------------------------------------------------------------------------------

#[test]
fn call_key_is_the_function_and_sha256_of_the_json_args_pinned() {
    // SHA-256 of the JSON `[42,"x"]`, first 16 bytes in hex: the same in every run, process
    // and release. Changing this breaks every memo in every deployed cache.
    assert_eq!(
        memo::call_key("app::user", &(42u64, "x")).unwrap(),
        "app::user:d5f343ce19755ee582a36154f99120a4"
    );
    // No arguments hash as `()`, whose JSON is `null`.
    assert_eq!(
        memo::call_key("app::now", &()).unwrap(),
        "app::now:74234e98afe7498fb5daf1f36ac2d78a"
    );
}

#[tokio::test]
async fn remember_stores_under_prefix_function_and_args_digest() {
    let cache = CacheService::memory().build();
    let value = cache
        .memo("app::user")
        .prefix("v1:")
        .args(&(42u64, "x"))
        .remember(|| async { user(42) })
        .await;
    assert_eq!(value, user(42));
    let key = "v1:app::user:d5f343ce19755ee582a36154f99120a4";
    assert_eq!(cache.get::<User>(key).await, Some(user(42)));
    // Without args: the digest of `()`.
    cache.memo("app::now").remember(|| async { 5u32 }).await;
    assert_eq!(
        cache
            .get::<u32>("app::now:74234e98afe7498fb5daf1f36ac2d78a")
            .await,
        Some(5)
    );
}

#[tokio::test]
async fn explicit_key_is_the_prefix_then_the_key_without_function_or_hash() {
    let cache = CacheService::memory().build();
    let memo = cache.memo("app::user").prefix("users:").key("user:7");
    assert_eq!(memo.cache_key().as_deref(), Some("users:user:7"));
    memo.remember(|| async { user(7) }).await;
    assert_eq!(cache.get::<User>("users:user:7").await, Some(user(7)));
}

#[tokio::test]
async fn different_args_are_different_entries_and_equal_btreemaps_share_one() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = |id: u64| {
        let runs = runs.clone();
        let cache = &cache;
        async move {
            cache
                .memo("app::user")
                .args(&(id,))
                .remember(|| async move {
                    runs.hit();
                    user(id)
                })
                .await
        }
    };
    assert_eq!(call(1).await, user(1));
    assert_eq!(call(2).await, user(2));
    assert_eq!(call(1).await, user(1));
    assert_eq!(runs.count(), 2);

    // Maps built in different orders serialize alike as BTreeMaps.
    let a: BTreeMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    let b: BTreeMap<&str, u32> = [("b", 2), ("a", 1)].into_iter().collect();
    let key_a = cache.memo("f").args(&a).cache_key();
    assert_eq!(key_a, cache.memo("f").args(&b).cache_key());
    assert_ne!(key_a, cache.memo("g").args(&a).cache_key());
}

#[tokio::test]
async fn unserializable_args_run_f_uncached_and_count_a_serialize_error() {
    let cache = CacheService::memory().build();
    // JSON map keys must be strings: a tuple key does not serialize.
    let args: HashMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    let runs = Runs::default();
    for _ in 0..2 {
        let runs = runs.clone();
        let value = cache
            .memo("app::f")
            .args(&args)
            .remember(|| async move { runs.hit() })
            .await;
        assert!(value > 0);
    }
    assert_eq!(runs.count(), 2, "nothing cached, so f ran each time");
    assert_eq!(cache.metrics().errors, 2);
    assert!(cache.memo("app::f").args(&args).cache_key().is_none());
}

// ----- remember ----------------------------------------------------------------------------

#[tokio::test]
async fn remember_hit_returns_the_cached_value_without_running_f() {
    let cache = CacheService::memory().build();
    let first = cache.memo("f").key("k").remember(|| async { 1u32 }).await;
    let second = cache.memo("f").key("k").remember(|| async { 2u32 }).await;
    assert_eq!((first, second), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_callers_of_remember_run_f_once() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .memo("app::report")
                    .args(&("today",))
                    .remember(|| async move {
                        runs.hit();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        user(1)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), user(1));
    }
    assert_eq!(runs.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn protect_off_lets_every_concurrent_miss_run_f() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache
            .memo("f")
            .key("k")
            .protect(false)
            .remember(|| async move {
                runs.hit();
                tokio::time::sleep(Duration::from_secs(1)).await;
                7u32
            })
    };
    let (a, b, c) = tokio::join!(call(), call(), call());
    assert_eq!((a, b, c), (7, 7, 7));
    assert_eq!(runs.count(), 3);
    // ...and the result is cached all the same.
    assert_eq!(
        cache
            .memo("f")
            .key("k")
            .protect(false)
            .remember(|| async { 0u32 })
            .await,
        7
    );
}

#[tokio::test]
async fn two_services_on_one_backend_share_the_memo() {
    let backend = MemoryBackend::new();
    let a = CacheService::builder(backend.clone()).name("a").build();
    let b = CacheService::builder(backend).name("b").build();
    let computed = a
        .memo("app::f")
        .args(&(1,))
        .remember(|| async { user(1) })
        .await;
    let shared = b
        .memo("app::f")
        .args(&(1,))
        .remember(|| async { user(2) })
        .await;
    assert_eq!((computed, shared), (user(1), user(1)));
}

#[tokio::test(start_paused = true)]
async fn remembered_result_expires_after_its_ttl() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache
            .memo("f")
            .key("k")
            .ttl(Duration::from_secs(10))
            .remember(|| async move { runs.hit() })
    };
    assert_eq!(call().await, 1);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(call().await, 1, "still cached a second before its TTL");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(call().await, 2, "expired, so f ran again");
}

#[tokio::test]
async fn remember_on_a_dead_backend_runs_f_and_returns_its_result() {
    let failing = Arc::new(Failing::default());
    let cache = CacheService::builder(failing.clone()).build();
    let runs = Runs::default();
    for expected in 1..=2 {
        let runs = runs.clone();
        let v = cache
            .memo("f")
            .key("k")
            .remember(|| async move { runs.hit() })
            .await;
        assert_eq!(v, expected);
    }
    assert!(
        failing.calls.load(Ordering::SeqCst) > 0,
        "the backend was tried"
    );
    let e: Result<u32, NotFound> = cache.memo("f").key("k").cacheable(|| async { Ok(3) }).await;
    assert_eq!(e, Ok(3));
    let c = cache
        .memo("f")
        .key("k")
        .conditional(|_| true, || async { 4u32 })
        .await;
    assert_eq!(c, 4);
}

#[tokio::test]
async fn entry_that_does_not_decode_runs_f_and_is_overwritten() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &"not a number", None).await);
    let v = cache.memo("f").key("k").remember(|| async { 9u32 }).await;
    assert_eq!(v, 9);
    assert_eq!(cache.get::<u32>("k").await, Some(9));
}

#[tokio::test]
async fn invalid_key_runs_f_uncached() {
    let cache = CacheService::memory()
        .key_rules(KeyRules::new().max_len(16))
        .build();
    let runs = Runs::default();
    for _ in 0..2 {
        let runs = runs.clone();
        // `f:` plus 32 hex digits is longer than 16.
        let v = cache
            .memo("f")
            .args(&(1,))
            .remember(|| async move { runs.hit() })
            .await;
        assert!(v > 0);
    }
    assert_eq!(runs.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn waiters_of_a_panicking_run_each_run_their_own_f() {
    let cache = CacheService::memory().build();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .memo("f")
                .key("k")
                .remember(|| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if true {
                        panic!("f bug");
                    }
                    0u32
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let waiter = cache.memo("f").key("k").remember(|| async { 5u32 }).await;
    assert_eq!(waiter, 5);
    assert!(leader.await.unwrap_err().is_panic());
}

// ----- cacheable ---------------------------------------------------------------------------

#[tokio::test]
async fn cacheable_err_is_not_cached_so_the_next_call_runs_f_again() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    for expected in 1..=2 {
        let runs = runs.clone();
        let out: Result<User, NotFound> = cache
            .memo("app::find")
            .args(&(9,))
            .cacheable(|| async move { Err(NotFound(runs.hit())) })
            .await;
        assert_eq!(out, Err(NotFound(expected)));
    }
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn cacheable_ok_after_err_is_cached() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = |ok: bool| {
        let runs = runs.clone();
        cache
            .memo("app::find")
            .key("k")
            .cacheable(move || async move {
                runs.hit();
                if ok {
                    Ok(user(1))
                } else {
                    Err(NotFound(0))
                }
            })
    };
    assert_eq!(call(false).await, Err(NotFound(0)));
    assert_eq!(call(true).await, Ok(user(1)));
    assert_eq!(call(false).await, Ok(user(1)), "a hit: f does not run");
    assert_eq!(runs.count(), 2);
    assert_eq!(cache.get::<User>("k").await, Some(user(1)));
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_of_a_failing_cacheable_each_get_an_err_of_their_own() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .memo("app::find")
                    .key("k")
                    .cacheable(|| async move {
                        let n = runs.hit();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Err::<User, _>(NotFound(n))
                    })
                    .await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Err(NotFound(n)) => seen.push(n),
            Ok(v) => panic!("a failing f returned {v:?}"),
        }
    }
    seen.sort_unstable();
    // Each caller got an error its own f made: no error was shared or invented.
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    assert!(!cache.exists("k").await);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_of_a_succeeding_cacheable_share_one_run() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache.memo("f").key("k").cacheable(|| async move {
            runs.hit();
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, NotFound>(3u32)
        })
    };
    let (a, b, c) = tokio::join!(call(), call(), call());
    assert_eq!((a, b, c), (Ok(3), Ok(3), Ok(3)));
    assert_eq!(runs.count(), 1);
}

// ----- conditional -------------------------------------------------------------------------

#[tokio::test]
async fn conditional_caches_only_when_the_predicate_holds() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache.memo("app::scores").key("scores").conditional(
            |v: &Vec<u32>| !v.is_empty(),
            || async move {
                match runs.hit() {
                    1 => Vec::new(),
                    n => vec![u32::try_from(n).unwrap()],
                }
            },
        )
    };
    assert_eq!(call().await, Vec::<u32>::new());
    assert!(
        !cache.exists("scores").await,
        "an empty result is not cached"
    );
    assert_eq!(call().await, vec![2]);
    assert_eq!(call().await, vec![2], "a hit");
    assert_eq!(runs.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn callers_coalesced_with_an_uncached_run_get_its_result() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .memo("f")
                    .key("k")
                    .conditional(
                        |_: &User| false,
                        || async move {
                            runs.hit();
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            user(4)
                        },
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), user(4));
    }
    assert_eq!(runs.count(), 1);
    assert!(!cache.exists("k").await);
}

// ----- invalidate_after ----------------------------------------------------------------------

#[tokio::test]
async fn invalidate_after_runs_f_then_deletes_keys_and_patterns() {
    let cache = CacheService::memory().build();
    for key in [
        "user:1",
        "user:2",
        "session:1:a",
        "session:1:b",
        "session:2:a",
    ] {
        assert!(cache.set(key, &1u8, None).await);
    }
    let what = Invalidation::keys(["user:1", "user:2"]).and_pattern("session:1:*");
    let out = cache
        .invalidate_after(&what, || async {
            // f runs first: the entries are still there.
            assert!(cache.exists("user:1").await);
            "updated"
        })
        .await;
    assert_eq!(out, "updated");
    for gone in ["user:1", "user:2", "session:1:a", "session:1:b"] {
        assert!(!cache.exists(gone).await, "{gone} should be gone");
    }
    assert!(cache.exists("session:2:a").await);
}

#[tokio::test]
async fn invalidate_after_ok_invalidates_only_when_f_succeeds() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &1u8, None).await);
    let what = Invalidation::keys(["k"]);
    let failed: Result<(), NotFound> = cache
        .invalidate_after_ok(&what, || async { Err(NotFound(1)) })
        .await;
    assert_eq!(failed, Err(NotFound(1)));
    assert!(cache.exists("k").await);
    let ok: Result<u8, NotFound> = cache.invalidate_after_ok(&what, || async { Ok(2) }).await;
    assert_eq!(ok, Ok(2));
    assert!(!cache.exists("k").await);
}

#[tokio::test]
async fn invalidation_failures_leave_the_result_of_f_and_are_counted() {
    let cache = CacheService::builder(Failing::default()).build();
    let what = Invalidation::keys(["k"]).and_pattern("p:*");
    let out = cache.invalidate_after(&what, || async { 42 }).await;
    assert_eq!(out, 42);
    assert_eq!(cache.metrics().errors, 2);
    assert!(!cache.invalidate(&what).await);
}

#[tokio::test]
async fn memcached_pattern_invalidation_is_unsupported_counted_and_keys_still_go() {
    let backend = MemcachedBackend::builder()
        .servers(servers::memcached_servers())
        .prefix(servers::unique_namespace("memo-invalidate"))
        .build()
        .unwrap_or_else(|e| panic!("Memcached: {e}; {}", servers::HOW_TO_START));
    let cache = CacheService::builder(backend).build();
    assert!(
        cache.set("user:1", &1u8, None).await,
        "Memcached unreachable: {}",
        servers::HOW_TO_START
    );
    let what = Invalidation::pattern("user:*").and_keys(["user:1"]);
    let before = cache.metrics().errors;
    let out = cache.invalidate_after(&what, || async { "done" }).await;
    assert_eq!(out, "done");
    assert!(
        !cache.exists("user:1").await,
        "exact keys are deleted all the same"
    );
    assert_eq!(
        cache.metrics().errors,
        before + 1,
        "the unsupported pattern is counted"
    );
    assert_eq!(
        cache.delete_pattern("user:*").await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

// ----- tags ----------------------------------------------------------------------------------

#[tokio::test]
async fn tagged_memo_is_a_miss_after_its_tag_is_invalidated() {
    let cache = CacheService::memory().build();
    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache
            .memo("app::user")
            .args(&(1,))
            .tags(["users"])
            .remember(|| async move { runs.hit() })
    };
    assert_eq!(call().await, 1);
    assert_eq!(call().await, 1);
    let out = cache
        .invalidate_after(&Invalidation::tags(["users"]), || async { "renamed" })
        .await;
    assert_eq!(out, "renamed");
    assert_eq!(call().await, 2);
}

#[tokio::test(start_paused = true)]
async fn tagged_cacheable_and_conditional_cache_only_what_they_should() {
    let cache = CacheService::memory().build();
    let failed: Result<u32, NotFound> = cache
        .memo("f")
        .key("a")
        .tags(["t"])
        .cacheable(|| async { Err(NotFound(1)) })
        .await;
    assert_eq!(failed, Err(NotFound(1)));
    assert!(!cache.exists("a").await);

    let runs = Runs::default();
    let call = || {
        let runs = runs.clone();
        cache.memo("f").key("b").tags(["t"]).conditional(
            |_: &u32| false,
            || async move {
                runs.hit();
                tokio::time::sleep(Duration::from_secs(1)).await;
                8u32
            },
        )
    };
    let (x, y) = tokio::join!(call(), call());
    assert_eq!((x, y), (8, 8));
    assert_eq!(runs.count(), 1, "coalesced callers share the uncached run");
    assert!(!cache.exists("b").await);
}

// ----- global and Send -------------------------------------------------------------------------

#[tokio::test]
async fn global_cache_is_installed_once_and_then_shared() {
    assert!(memo::set_global(
        CacheService::memory().name("global").build()
    ));
    assert!(!memo::set_global(
        CacheService::memory().name("second").build()
    ));
    let cache = memo::global().expect("installed");
    assert_eq!(cache.name(), "global");
    let v = cache.memo("app::g").remember(|| async { 1u8 }).await;
    assert_eq!(
        memo::global()
            .unwrap()
            .memo("app::g")
            .remember(|| async { 2u8 })
            .await,
        v
    );
}

#[test]
fn memo_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = CacheService::memory().build();
    assert_send(&cache.memo("f").remember(|| async { 1u8 }));
    assert_send(
        &cache
            .memo("f")
            .cacheable(|| async { Ok::<u8, NotFound>(1) }),
    );
    assert_send(&cache.memo("f").conditional(|_| true, || async { 1u8 }));
    assert_send(&cache.invalidate_after(&Invalidation::new(), || async { 1u8 }));
}

// ----- Redis ---------------------------------------------------------------------------------

/// A service on its own connection to the shared Redis, under `prefix`.
async fn redis(prefix: &str) -> CacheService {
    let url = servers::redis_url();
    let backend = RedisBackend::builder()
        .url(&url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    CacheService::builder(backend).build()
}

#[tokio::test]
async fn two_services_on_one_redis_share_the_memo() {
    let prefix = servers::unique_namespace("memo-shared");
    let (a, b) = (redis(&prefix).await, redis(&prefix).await);
    let first = a
        .memo("app::f")
        .args(&(1,))
        .ttl(Duration::from_secs(60))
        .remember(|| async { user(1) })
        .await;
    let second = b
        .memo("app::f")
        .args(&(1,))
        .ttl(Duration::from_secs(60))
        .remember(|| async { user(2) })
        .await;
    assert_eq!((first, second), (user(1), user(1)));
    assert!(a.delete(&memo::call_key("app::f", &(1,)).unwrap()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_of_remember_on_redis_run_f_once() {
    let cache = redis(&servers::unique_namespace("memo-remember")).await;
    let runs = Runs::default();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .memo("app::report")
                    .args(&("today",))
                    .ttl(Duration::from_secs(60))
                    .remember(|| async move {
                        runs.hit();
                        // Long enough that every caller arrives while it runs.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        user(1)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), user(1));
    }
    assert_eq!(runs.count(), 1);
    let key = memo::call_key("app::report", &("today",)).unwrap();
    assert_eq!(cache.get::<User>(&key).await, Some(user(1)));
    let again = cache
        .memo("app::report")
        .args(&("today",))
        .remember(|| async { user(2) })
        .await;
    assert_eq!(again, user(1));
    cache.delete(&key).await;
}
