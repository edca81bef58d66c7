//! Request scope: `cache_in_request` runs a call once per scope, scopes are isolated (also
//! across concurrent tasks), a scope holds nothing past its end, and request-scoped keys live
//! in the backend only while their scope does.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lexicache_core::ErrorKind;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::{cache_in_request, request_scope, CacheService, RequestScope};
use lexicache_testkit::servers;
use support::{user, User};

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

/// A memoized-per-request lookup that counts its runs and takes a while.
async fn lookup(runs: &Runs, id: u64) -> User {
    let runs = runs.clone();
    cache_in_request("app::lookup", &(id,), || async move {
        runs.hit();
        tokio::time::sleep(Duration::from_millis(50)).await;
        user(id)
    })
    .await
}

// ----- cache_in_request -----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn same_call_with_same_args_runs_once_per_scope() {
    let runs = Runs::default();
    request_scope(async {
        assert_eq!(lookup(&runs, 1).await, user(1));
        assert_eq!(lookup(&runs, 1).await, user(1));
        assert_eq!(runs.count(), 1);
        // Other args, another call.
        assert_eq!(lookup(&runs, 2).await, user(2));
        assert_eq!(runs.count(), 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_identical_calls_in_one_scope_run_once() {
    let runs = Runs::default();
    request_scope(async {
        let (a, b, c) = tokio::join!(lookup(&runs, 1), lookup(&runs, 1), lookup(&runs, 1));
        assert_eq!((a, b, c), (user(1), user(1), user(1)));
    })
    .await;
    assert_eq!(runs.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn outside_a_scope_the_call_runs_every_time() {
    let runs = Runs::default();
    assert_eq!(lookup(&runs, 1).await, user(1));
    assert_eq!(lookup(&runs, 1).await, user(1));
    assert_eq!(runs.count(), 2);
    assert!(RequestScope::current().is_none());
}

#[tokio::test(start_paused = true)]
async fn each_new_scope_runs_the_call_again() {
    let runs = Runs::default();
    request_scope(lookup(&runs, 1)).await;
    request_scope(lookup(&runs, 1)).await;
    assert_eq!(runs.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_tasks_each_in_its_own_scope_each_run_the_call_once() {
    let runs = Runs::default();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let runs = runs.clone();
            tokio::spawn(request_scope(async move {
                let (a, b) = tokio::join!(lookup(&runs, 7), lookup(&runs, 7));
                assert_eq!(a, b);
                lookup(&runs, 7).await
            }))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), user(7));
    }
    assert_eq!(runs.count(), 50);
}

#[tokio::test(start_paused = true)]
async fn spawned_task_does_not_inherit_the_scope_unless_propagated() {
    let runs = Runs::default();
    request_scope(async {
        lookup(&runs, 1).await;
        let r = runs.clone();
        tokio::spawn(async move { lookup(&r, 1).await })
            .await
            .unwrap();
        assert_eq!(
            runs.count(),
            2,
            "a plain spawned task runs outside the scope"
        );

        let r = runs.clone();
        tokio::spawn(RequestScope::propagate(async move { lookup(&r, 1).await }))
            .await
            .unwrap();
        let r = runs.clone();
        let scope = RequestScope::current().unwrap();
        tokio::spawn(scope.run(async move { lookup(&r, 1).await }))
            .await
            .unwrap();
        assert_eq!(runs.count(), 2, "propagated tasks share the scope's memo");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn propagated_handle_does_not_end_the_scope() {
    let runs = Runs::default();
    request_scope(async {
        let scope = RequestScope::current().unwrap();
        scope.run(lookup(&runs, 1)).await;
        assert!(!RequestScope::current().unwrap().has_ended());
        lookup(&runs, 1).await;
    })
    .await;
    assert_eq!(runs.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn clear_forgets_memoized_calls() {
    let runs = Runs::default();
    request_scope(async {
        lookup(&runs, 1).await;
        RequestScope::current().unwrap().clear();
        lookup(&runs, 1).await;
    })
    .await;
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn unserializable_args_run_the_call_unmemoized() {
    let runs = Runs::default();
    let args: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    request_scope(async {
        for _ in 0..2 {
            let r = runs.clone();
            cache_in_request("f", &args, || async move { r.hit() }).await;
        }
    })
    .await;
    assert_eq!(runs.count(), 2);
}

// ----- the scope ends -------------------------------------------------------------------------

/// A value whose drop flips a flag.
struct Tracked(Arc<AtomicBool>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn nothing_memoized_outlives_the_scope() {
    let dropped = Arc::new(AtomicBool::new(false));
    let scope = RequestScope::new();
    // A handle that outlives `run`, as one carried into a spawned task would: the scope must
    // still let go of what it memoized.
    let handle = scope.clone();
    let weak: Weak<Tracked> = scope
        .run(async {
            let flag = dropped.clone();
            let value: Arc<Tracked> =
                cache_in_request(
                    "app::tracked",
                    &(),
                    || async move { Arc::new(Tracked(flag)) },
                )
                .await;
            let again: Arc<Tracked> =
                cache_in_request("app::tracked", &(), || async { unreachable!("memoized") }).await;
            assert!(Arc::ptr_eq(&value, &again));
            Arc::downgrade(&value)
        })
        .await;
    assert!(handle.has_ended());
    assert!(
        dropped.load(Ordering::SeqCst),
        "the scope dropped its value"
    );
    assert!(weak.upgrade().is_none());
}

#[tokio::test]
async fn dropping_the_run_future_ends_the_scope() {
    let dropped = Arc::new(AtomicBool::new(false));
    let scope = RequestScope::new();
    let handle = scope.clone();
    let flag = dropped.clone();
    let run = scope.run(async move {
        let _: Arc<Tracked> =
            cache_in_request(
                "app::tracked",
                &(),
                || async move { Arc::new(Tracked(flag)) },
            )
            .await;
        std::future::pending::<()>().await;
    });
    // Polls the run until it parks on `pending`, then drops it.
    let mut run = Box::pin(run);
    assert!(futures::poll!(&mut run).is_pending());
    drop(run);
    assert!(handle.has_ended());
    assert!(dropped.load(Ordering::SeqCst));
    // A handle kept past the end behaves as no scope.
    let runs = Runs::default();
    handle.clone().run(lookup(&runs, 1)).await;
    handle.run(lookup(&runs, 1)).await;
    assert_eq!(runs.count(), 2);
}

// ----- request-scoped keys ------------------------------------------------------------------------

#[tokio::test]
async fn scoped_keys_are_deleted_when_the_scope_ends() {
    let cache = CacheService::memory().build();
    let scope = RequestScope::new();
    let id = scope.id().to_owned();
    let backend_key = format!("__lexicache:req:{id}:cart");
    scope
        .run(async {
            let scoped = cache.request_scoped();
            assert_eq!(scoped.key("cart").as_deref(), Some(backend_key.as_str()));
            assert!(scoped.set("cart", &vec![1u32, 2], None).await);
            assert_eq!(scoped.get::<Vec<u32>>("cart").await, Some(vec![1, 2]));
            assert!(cache.exists(&backend_key).await, "stored in the backend");
            // Not the same key as an unscoped "cart".
            assert_eq!(cache.get::<Vec<u32>>("cart").await, None);
        })
        .await;
    assert!(!cache.exists(&backend_key).await);
}

#[tokio::test]
async fn two_scopes_never_see_each_others_keys() {
    let cache = CacheService::memory().build();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let a = {
        let (cache, barrier) = (cache.clone(), barrier.clone());
        tokio::spawn(request_scope(async move {
            assert!(cache.request_scoped().set("who", &"a", None).await);
            barrier.wait().await;
            barrier.wait().await;
            cache.request_scoped().get::<String>("who").await
        }))
    };
    let b = {
        let (cache, barrier) = (cache.clone(), barrier.clone());
        tokio::spawn(request_scope(async move {
            barrier.wait().await;
            // `a` wrote "who" in its scope; this scope has none.
            let before = cache.request_scoped().get::<String>("who").await;
            assert!(cache.request_scoped().set("who", &"b", None).await);
            barrier.wait().await;
            (before, cache.request_scoped().get::<String>("who").await)
        }))
    };
    assert_eq!(a.await.unwrap().as_deref(), Some("a"));
    assert_eq!(b.await.unwrap(), (None, Some("b".to_owned())));
}

#[tokio::test]
async fn outside_a_scope_scoped_keys_are_a_typed_error_or_the_default() {
    let cache = CacheService::memory().build();
    let scoped = cache.request_scoped();
    assert_eq!(
        scoped.try_set("k", &1u8, None).await.unwrap_err().kind(),
        ErrorKind::NoRequestScope
    );
    assert_eq!(
        scoped.try_get::<u8>("k").await.unwrap_err().kind(),
        ErrorKind::NoRequestScope
    );
    assert_eq!(
        scoped.try_delete("k").await.unwrap_err().kind(),
        ErrorKind::NoRequestScope
    );
    assert!(!scoped.set("k", &1u8, None).await);
    assert_eq!(scoped.get::<u8>("k").await, None);
    assert!(!scoped.delete("k").await);
    assert!(scoped.key("k").is_none());
    assert_eq!(cache.metrics().errors, 6);
}

#[tokio::test(start_paused = true)]
async fn scoped_key_ttl_is_capped_by_the_scope() {
    let backend = MemoryBackend::new();
    let cache = CacheService::builder(backend).build();
    RequestScope::new()
        .max_ttl(Duration::from_secs(10))
        .run(async {
            let scoped = cache.request_scoped();
            assert!(
                scoped
                    .set("long", &1u8, Some(Duration::from_secs(3600)))
                    .await
            );
            assert!(scoped.set("default", &1u8, None).await);
            assert!(
                scoped
                    .set("short", &1u8, Some(Duration::from_secs(2)))
                    .await
            );
            tokio::time::advance(Duration::from_secs(3)).await;
            assert_eq!(scoped.get::<u8>("short").await, None);
            assert_eq!(scoped.get::<u8>("long").await, Some(1));
            tokio::time::advance(Duration::from_secs(8)).await;
            assert_eq!(scoped.get::<u8>("long").await, None, "capped at 10s");
            assert_eq!(
                scoped.get::<u8>("default").await,
                None,
                "the cap is the default"
            );
        })
        .await;
}

#[tokio::test]
async fn dropped_scope_deletes_its_keys_in_a_spawned_task() {
    let cache = CacheService::memory().build();
    let scope = RequestScope::new();
    let key = format!("__lexicache:req:{}:k", scope.id());
    let run = scope.run(async {
        assert!(cache.request_scoped().set("k", &1u8, None).await);
        std::future::pending::<()>().await;
    });
    let mut run = Box::pin(run);
    assert!(futures::poll!(&mut run).is_pending());
    assert!(cache.exists(&key).await);
    drop(run);
    // The cleanup runs on the runtime; give it a turn or a few.
    for _ in 0..100 {
        if !cache.exists(&key).await {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the dropped scope's key is still there");
}

#[tokio::test]
async fn ended_scope_rejects_new_scoped_keys() {
    let cache = CacheService::memory().build();
    let scope = RequestScope::new();
    let handle = scope.clone();
    scope.run(async {}).await;
    let err = handle
        .run(async { cache.request_scoped().try_set("k", &1u8, None).await })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRequestScope);
}

#[tokio::test]
async fn scope_ids_are_unique_hex() {
    let ids: std::collections::HashSet<String> = (0..1000)
        .map(|_| RequestScope::new().id().to_owned())
        .collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids
        .iter()
        .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[test]
fn scope_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = CacheService::memory().build();
    assert_send(&request_scope(async {
        cache_in_request("f", &(1,), || async { 1u8 }).await
    }));
    assert_send(&RequestScope::propagate(async {}));
    assert_send(&async { cache.request_scoped().set("k", &1u8, None).await });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_keys_on_redis_are_isolated_and_deleted_at_the_end() {
    let url = servers::redis_url();
    let backend = RedisBackend::builder()
        .url(&url)
        .prefix(servers::unique_namespace("scope"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    let cache = CacheService::builder(backend).build();
    let scope = RequestScope::new();
    let key = format!("__lexicache:req:{}:draft", scope.id());
    scope
        .run(async {
            assert!(cache.request_scoped().set("draft", &user(1), None).await);
            assert_eq!(cache.get::<User>(&key).await, Some(user(1)));
            let other = request_scope(async { cache.request_scoped().get::<User>("draft").await });
            assert_eq!(other.await, None);
        })
        .await;
    assert!(!cache.exists(&key).await);
}
