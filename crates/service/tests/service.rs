//! `CacheService` behaviours: typed round trips, the object fast path, degradation, key rules,
//! namespaces, metrics and events.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    CacheBackend, CacheEvent, ErrorKind, EventBus, HealthStatus, KeyRules, Operation, SharedBackend,
};
use lexicache_memory::MemoryBackend;
use lexicache_service::layers::Namespaced;
use lexicache_service::CacheService;
use lexicache_testkit::BytesOnly;
use support::{user, CountingJson, Failing, Hanging, User};

#[tokio::test]
async fn typed_value_round_trips_through_memory() {
    let cache = CacheService::memory().build();
    assert!(cache.set("user:1", &user(1), None).await);
    assert_eq!(cache.get::<User>("user:1").await, Some(user(1)));
    assert_eq!(cache.get::<User>("user:2").await, None);
    assert!(cache.exists("user:1").await);
    assert!(cache.delete("user:1").await);
    assert!(!cache.delete("user:1").await);
    assert_eq!(cache.get::<User>("user:1").await, None);
}

#[tokio::test]
async fn in_process_hit_returns_the_kept_object_without_decoding() {
    let json = CountingJson::default();
    let cache = CacheService::builder(MemoryBackend::new())
        .serializer(json.clone())
        .build();
    assert!(cache.set("user:1", &user(1), None).await);
    assert_eq!(json.encodes(), 1, "the bytes are still written");

    let a = cache.get_arc::<User>("user:1").await.expect("a hit");
    let b = cache.get_arc::<User>("user:1").await.expect("a hit");
    assert_eq!(*a, user(1));
    assert!(Arc::ptr_eq(&a, &b), "hits share the kept object");
    assert_eq!(cache.get::<User>("user:1").await, Some(user(1)));
    assert_eq!(json.decodes(), 0);
}

#[tokio::test]
async fn hit_of_another_type_decodes_the_bytes() {
    let json = CountingJson::default();
    let cache = CacheService::builder(MemoryBackend::new())
        .serializer(json.clone())
        .build();
    assert!(cache.set("n", &42u32, None).await);
    assert_eq!(cache.get::<u64>("n").await, Some(42));
    assert_eq!(json.decodes(), 1);
}

#[tokio::test]
async fn bytes_only_backend_decodes_every_hit() {
    let json = CountingJson::default();
    let cache = CacheService::builder(BytesOnly(MemoryBackend::new()))
        .serializer(json.clone())
        .build();
    assert!(cache.set("user:1", &user(1), None).await);
    assert_eq!(cache.get::<User>("user:1").await, Some(user(1)));
    assert_eq!(cache.get::<User>("user:1").await, Some(user(1)));
    assert_eq!(json.decodes(), 2);
}

#[tokio::test]
async fn typed_get_of_a_wrong_type_is_a_serialization_error_or_a_counted_none() {
    let cache = CacheService::memory().build();
    assert!(cache.set("list", &vec![1u8, 2, 3], None).await);

    let err = cache.try_get::<User>("list").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    assert_eq!(err.operation(), Some(Operation::Deserialize));
    assert_eq!(cache.metrics().errors, 1);

    assert_eq!(cache.get::<User>("list").await, None);
    assert_eq!(cache.metrics().errors, 2);
    // The entry is left alone: it is still readable as what it is.
    assert_eq!(cache.get::<Vec<u8>>("list").await, Some(vec![1, 2, 3]));
}

#[tokio::test]
async fn many_operations_round_trip_on_in_process_and_bytes_only_stacks() {
    for cache in [
        CacheService::memory().build(),
        CacheService::builder(BytesOnly(MemoryBackend::new())).build(),
    ] {
        let items = [("a", user(1)), ("b", user(2)), ("c", user(3))];
        assert!(cache.set_many(&items, None).await);
        assert_eq!(
            cache.get_many::<User>(&["c", "missing", "a", "a"]).await,
            vec![Some(user(3)), None, Some(user(1)), Some(user(1))]
        );
        assert_eq!(cache.delete_many(&["a", "b", "missing"]).await, 2);
        assert_eq!(
            cache.get_many::<User>(&["a", "b", "c"]).await,
            vec![None, None, Some(user(3))]
        );
    }
}

#[tokio::test]
async fn set_many_with_an_invalid_key_writes_nothing() {
    let cache = CacheService::memory().build();
    let err = cache
        .try_set_many(&[("ok", 1u8), ("", 2u8)], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    assert_eq!(cache.get::<u8>("ok").await, None);
}

#[tokio::test]
async fn degrading_forms_return_defaults_and_count_errors_on_a_failing_backend() {
    let failing = Arc::new(Failing::default());
    let shared: SharedBackend = failing.clone();
    let cache = CacheService::builder(shared).build();

    assert_eq!(cache.get::<User>("k").await, None);
    assert_eq!(cache.get_arc::<User>("k").await, None);
    assert!(!cache.set("k", &user(1), None).await);
    assert!(!cache.exists("k").await);
    assert!(!cache.delete("k").await);
    assert_eq!(cache.get_many::<User>(&["a", "b"]).await, vec![None, None]);
    assert!(!cache.set_many(&[("a", 1u8)], None).await);
    assert_eq!(cache.delete_many(&["a", "b"]).await, 0);

    assert_eq!(failing.calls.load(std::sync::atomic::Ordering::SeqCst), 8);
    // Each backend failure is counted once, by the metrics layer.
    assert_eq!(cache.metrics().errors, 8);
}

#[tokio::test]
async fn try_forms_return_the_backend_error() {
    let cache = CacheService::builder(Failing::default()).build();

    let err = cache.try_get::<User>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(err.is_retryable());
    assert_eq!(err.operation(), Some(Operation::Get));
    assert_eq!(
        cache.try_set("k", &1u8, None).await.unwrap_err().kind(),
        ErrorKind::Connection
    );
    assert_eq!(
        cache.try_exists("k").await.unwrap_err().operation(),
        Some(Operation::Exists)
    );
    assert_eq!(
        cache.try_delete("k").await.unwrap_err().operation(),
        Some(Operation::Delete)
    );
    assert!(cache.try_get_many::<u8>(&["a"]).await.is_err());
    assert!(cache.try_set_many(&[("a", 1u8)], None).await.is_err());
    assert!(cache.try_delete_many(&["a"]).await.is_err());
    assert_eq!(cache.metrics().errors, 7);
}

#[tokio::test]
async fn admin_operations_report_errors_instead_of_degrading() {
    let cache = CacheService::builder(Failing::default()).build();
    assert_eq!(
        cache.delete_pattern("*").await.unwrap_err().kind(),
        ErrorKind::Connection
    );
    assert_eq!(
        cache.clear().await.unwrap_err().kind(),
        ErrorKind::Connection
    );
}

#[tokio::test]
async fn invalid_keys_are_key_invalid_errors_before_any_backend_call() {
    let failing = Arc::new(Failing::default());
    let shared: SharedBackend = failing.clone();
    let cache = CacheService::builder(shared)
        .key_rules(KeyRules::new().max_len(8))
        .build();

    for key in ["", "nine-char"] {
        let err = cache.try_get::<u8>(key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyInvalid);
        assert_eq!(err.backend(), "failing");
    }
    assert_eq!(cache.get::<u8>("").await, None);
    assert!(!cache.set("", &1u8, None).await);
    assert_eq!(
        cache.try_delete_many(&["ok", ""]).await.unwrap_err().kind(),
        ErrorKind::KeyInvalid
    );
    assert_eq!(failing.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(cache.metrics().errors, 5);
}

#[tokio::test]
async fn default_key_rules_follow_the_stack_limit() {
    let store = MemoryBackend::builder()
        .key_rules(KeyRules::new().max_len(16))
        .build();
    let cache = CacheService::builder(store).namespace("tenant:").build();
    // 16 bytes minus the 7-byte prefix leaves 9 for the user's key.
    assert!(cache.try_set("123456789", &1u8, None).await.is_ok());
    assert_eq!(
        cache
            .try_set("1234567890", &1u8, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::KeyInvalid
    );
}

#[tokio::test]
async fn oversized_value_is_value_too_large_and_keeps_the_old_value() {
    let store = MemoryBackend::builder().max_value_size(16).build();
    let cache = CacheService::builder(store).build();
    assert!(cache.set("k", &"small", None).await);
    let err = cache.try_set("k", &"x".repeat(64), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("small"));
}

#[tokio::test]
async fn namespaces_isolate_services_sharing_one_store() {
    let store = MemoryBackend::new();
    let a = CacheService::builder(store.clone()).namespace("a:").build();
    let b = CacheService::builder(store.clone()).namespace("b:").build();
    assert!(a.set("k", &1u32, None).await);
    assert!(b.set("k", &2u32, None).await);
    assert!(b.set("other", &3u32, None).await);

    assert_eq!(a.get::<u32>("k").await, Some(1));
    assert_eq!(b.get::<u32>("k").await, Some(2));
    // The stored bytes are the default serializer's: the five-byte envelope, then JSON.
    let stored = store.get("a:k").await.unwrap().unwrap();
    let (header, body) = lexicache_serde::Header::split(&stored).unwrap();
    assert_eq!(header.codec(), lexicache_serde::Codec::Json);
    assert_eq!(body, b"1");

    assert_eq!(b.delete_pattern("*").await.unwrap(), 2);
    assert_eq!(a.get::<u32>("k").await, Some(1));
    assert!(b.set("k", &2u32, None).await);
    b.clear().await.unwrap();
    assert_eq!(b.get::<u32>("k").await, None);
    assert_eq!(a.get::<u32>("k").await, Some(1));
}

#[tokio::test]
async fn a_tenant_glob_cannot_reach_keys_outside_its_namespace() {
    let store = MemoryBackend::new();
    // Glob metacharacters in the prefix are escaped: `t*` must not match `tx:`.
    let star = Namespaced::new(store.clone(), "t*:");
    let other = Namespaced::new(store.clone(), "tx:");
    other.set("k", "v".into(), None).await.unwrap();
    star.set("k", "v".into(), None).await.unwrap();

    assert_eq!(star.delete_pattern("*").await.unwrap(), 1);
    star.clear().await.unwrap();
    assert!(other.exists("k").await.unwrap());
    assert!(!star.exists("k").await.unwrap());
}

#[tokio::test]
async fn keys_of_a_namespaced_service_are_listed_without_the_prefix() {
    let store = MemoryBackend::new();
    let star = CacheService::builder(store.clone())
        .namespace("t*:")
        .build();
    let other = CacheService::builder(store.clone())
        .namespace("tx:")
        .build();
    assert!(star.set("user:1", &1u32, None).await);
    assert!(star.set("user:2", &2u32, None).await);
    assert!(other.set("user:3", &3u32, None).await);

    let mut keys = star.keys("user:*", 10).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["user:1", "user:2"]);
    assert_eq!(other.keys("*", 10).await.unwrap(), ["user:3"]);
    assert_eq!(
        CacheService::builder(Failing::default())
            .build()
            .keys("*", 10)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn clear_of_a_namespace_without_pattern_delete_is_unsupported() {
    let cache = CacheService::builder(Failing::default())
        .namespace("ns:")
        .build();
    let err = cache.clear().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), Some(Operation::Clear));
    assert!(!cache.backend().capabilities().clear);
}

#[tokio::test]
async fn default_latency_sampling_times_one_call_in_eight_and_counts_every_call() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &1u8, None).await);
    cache.reset_metrics();
    // Any 64 consecutive calls on one thread hold exactly 8 sampled ones.
    for _ in 0..64 {
        assert_eq!(cache.get::<u8>("k").await, Some(1));
    }
    let s = cache.metrics();
    assert_eq!(s.hits, 64);
    assert_eq!(s.operations, 8);
    assert!(s.latency_p50 > std::time::Duration::ZERO);
}

#[tokio::test]
async fn metrics_snapshot_counts_a_known_sequence() {
    let cache = CacheService::memory().latency_sampling(1).build();
    assert!(cache.set("a", &1u8, None).await);
    assert!(cache.set("b", &2u8, None).await);
    assert_eq!(cache.get::<u8>("a").await, Some(1));
    assert_eq!(cache.get::<u8>("b").await, Some(2));
    assert_eq!(cache.get::<u8>("c").await, None);
    assert!(cache.delete("a").await);
    assert_eq!(cache.delete_many(&["b", "missing"]).await, 1);

    let s = cache.metrics();
    assert_eq!(
        (s.hits, s.misses, s.sets, s.deletes, s.errors),
        (2, 1, 2, 2, 0)
    );
    assert!((s.hit_rate - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(s.operations, 7);

    cache.reset_metrics();
    let s = cache.metrics();
    assert_eq!(
        (s.hits, s.misses, s.sets, s.deletes, s.operations),
        (0, 0, 0, 0, 0)
    );
}

#[tokio::test]
async fn metrics_off_counts_only_the_services_own_errors() {
    let cache = CacheService::memory().metrics(false).build();
    assert!(cache.set("a", &1u8, None).await);
    assert_eq!(cache.get::<u8>("a").await, Some(1));
    assert_eq!(cache.get::<String>("a").await, None);
    let s = cache.metrics();
    assert_eq!((s.hits, s.sets, s.errors), (0, 0, 1));
}

#[tokio::test]
async fn events_are_delivered_when_subscribed() {
    let cache = CacheService::memory()
        .namespace("app:")
        .events(EventBus::new())
        .build();
    let mut rx = cache.subscribe().expect("built with events");

    assert_eq!(cache.get::<u8>("k").await, None);
    assert!(cache.set("k", &1u8, None).await);
    assert_eq!(cache.get::<u8>("k").await, Some(1));

    match rx.recv().await.unwrap() {
        CacheEvent::Miss { backend, key } => {
            assert_eq!((&*backend, &*key), ("memory", "app:k"));
        }
        other => panic!("expected a miss, got {other:?}"),
    }
    assert!(matches!(rx.recv().await.unwrap(), CacheEvent::Set { key, .. } if &*key == "app:k"));
    assert!(matches!(rx.recv().await.unwrap(), CacheEvent::Hit { key, .. } if &*key == "app:k"));
}

#[tokio::test]
async fn error_events_name_the_operation_and_kind() {
    let cache = CacheService::builder(Failing::default())
        .events(EventBus::new())
        .build();
    let mut rx = cache.subscribe().expect("built with events");
    assert!(!cache.delete("k").await);
    assert_eq!(
        rx.recv().await.unwrap(),
        CacheEvent::Error {
            backend: "failing".into(),
            operation: Operation::Delete,
            kind: ErrorKind::Connection,
        }
    );
}

#[tokio::test]
async fn subscribe_is_none_without_events() {
    assert!(CacheService::memory().build().subscribe().is_none());
}

#[tokio::test(start_paused = true)]
async fn timeout_turns_a_hung_backend_into_a_counted_timeout_error() {
    let cache = CacheService::builder(Hanging)
        .timeout(Duration::from_millis(50))
        .build();
    let err = cache.try_get::<u8>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert_eq!(err.operation(), Some(Operation::Get));

    assert!(!cache.set("k", &1u8, None).await);
    assert_eq!(cache.metrics().errors, 2);
}

#[tokio::test(start_paused = true)]
async fn health_check_of_a_hung_backend_is_unhealthy_within_its_timeout() {
    let cache = CacheService::builder(Hanging)
        .timeout(Duration::from_millis(50))
        .build();
    let report = cache.health_check(Duration::from_secs(1)).await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.backend, "hanging");
}

#[tokio::test]
async fn health_check_reaches_the_backend() {
    let report = CacheService::memory()
        .namespace("ns:")
        .timeout(Duration::from_secs(1))
        .build()
        .health_check(Duration::from_secs(1))
        .await;
    assert!(report.is_healthy());
}

#[tokio::test(start_paused = true)]
async fn ttl_is_honoured_through_the_service() {
    let cache = CacheService::memory().build();
    assert!(cache.set("k", &1u8, Some(Duration::from_secs(10))).await);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(cache.get::<u8>("k").await, Some(1));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.get::<u8>("k").await, None);
}

#[tokio::test]
async fn a_shared_backend_is_used_as_is_not_wrapped_again() {
    let shared: SharedBackend = Arc::new(MemoryBackend::new());
    let cache = CacheService::builder(shared.clone()).metrics(false).build();
    assert!(Arc::ptr_eq(cache.backend(), &shared));
    assert_eq!(cache.name(), "memory");
}

#[tokio::test]
async fn name_labels_the_service() {
    let cache = CacheService::memory().name("sessions").build();
    assert_eq!(cache.name(), "sessions");
    assert_eq!(cache.backend().name(), "memory");
}

#[test]
fn service_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let cache = CacheService::memory().build();
    send_sync(&cache);
    send(cache.get::<User>("k"));
    send(cache.set("k", &user(1), None));
    send(cache.get_many::<User>(&["k"]));
    send(cache.get_or_set("k", None, || async { Ok::<_, std::io::Error>(user(1)) }));
}
