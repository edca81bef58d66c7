//! Typed access: a stored value read as another type is a `Serialization` error through the
//! `try_` forms and the default through the plain ones, on every backend. Nothing panics and
//! nothing else is returned in its place.

use std::time::Duration;

use lexicache_core::ErrorKind;
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use lexicache_testkit::servers;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    order_id: u64,
    total_cents: u64,
}

/// Every typed-access expectation, on one service.
async fn a_value_read_as_the_wrong_type_is_a_serialization_error(cache: CacheService) {
    let alice = User {
        id: 1,
        name: "alice".into(),
    };
    let ttl = Some(Duration::from_secs(60));
    assert!(cache.set("user", &alice, ttl).await);
    assert!(cache.set("number", &42u64, ttl).await);

    // The right type reads back, through every form.
    assert_eq!(cache.get::<User>("user").await, Some(alice.clone()));
    assert_eq!(cache.try_get::<User>("user").await.unwrap(), Some(alice));
    assert_eq!(cache.get::<u64>("number").await, Some(42));

    let errors_before = cache.metrics().errors;
    // A struct of another shape, a number, a string: each a Serialization error...
    let err = cache.try_get::<Order>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    let err = cache.try_get::<u64>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    let err = cache.try_get::<User>("number").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    let err = cache.try_get_arc::<String>("number").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    // ...and the default through the plain forms, counted as errors.
    assert_eq!(cache.get::<Order>("user").await, None);
    assert_eq!(cache.get_arc::<u64>("user").await, None);
    assert_eq!(
        cache.get_many::<u64>(&["number", "user", "absent"]).await,
        vec![None, None, None],
        "one mistyped value fails the whole typed batch, which degrades to misses"
    );
    assert!(cache.metrics().errors >= errors_before + 7);

    // A miss is still a miss, not an error, whatever the type.
    assert_eq!(cache.try_get::<Order>("absent").await.unwrap(), None);
    // The mistyped read left the entry alone.
    assert_eq!(cache.get::<u64>("number").await, Some(42));
}

#[tokio::test]
async fn memory_mistyped_reads_are_serialization_errors() {
    let cache = CacheService::builder(MemoryBackend::new()).build();
    a_value_read_as_the_wrong_type_is_a_serialization_error(cache).await;
}

#[tokio::test]
async fn redis_mistyped_reads_are_serialization_errors() {
    let url = servers::redis_url();
    let backend = RedisBackend::builder()
        .url(&url)
        .prefix(servers::unique_namespace("typed"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    let cache = CacheService::builder(backend.clone()).build();
    a_value_read_as_the_wrong_type_is_a_serialization_error(cache.clone()).await;
    cache.clear().await.unwrap();
}

#[tokio::test]
async fn memcached_mistyped_reads_are_serialization_errors() {
    let backend = MemcachedBackend::builder()
        .servers(servers::memcached_servers())
        .prefix(servers::unique_namespace("typed"))
        .connect()
        .await
        .expect("a valid configuration");
    let cache = CacheService::builder(backend).build();
    a_value_read_as_the_wrong_type_is_a_serialization_error(cache).await;
}
