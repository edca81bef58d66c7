//! Redis Sentinel: the backend finds the primary through the sentinel on 26390 and works on it.

mod common;

use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, HealthStatus};
use lexicache_redis::fred::interfaces::KeysInterface;
use lexicache_redis::RedisBackend;

#[tokio::test]
async fn set_get_delete_and_health_through_the_sentinel() {
    let backend = common::sentinel_backend()
        .await
        .with_prefix(common::unique("sentinel"));
    backend
        .set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(30)))
        .await
        .expect("set");
    assert_eq!(
        backend.get("k").await.expect("get"),
        Some(Bytes::from_static(b"v"))
    );

    // The sentinel names the standalone server as the primary, so the key is there.
    let raw = common::raw_standalone().await;
    let seen: Option<String> = raw
        .get(format!("{}k", backend.prefix()))
        .await
        .expect("raw GET");
    assert_eq!(seen.as_deref(), Some("v"));

    assert!(backend.delete("k").await.expect("delete"));
    assert_eq!(backend.get("k").await.expect("get after delete"), None);

    let health = backend.health_check(Duration::from_secs(5)).await;
    assert_eq!(health.status, HealthStatus::Healthy, "{:?}", health.reason);
    assert_eq!(health.details["mode"], "sentinel");
    assert_eq!(health.details["role"], "master");
}

#[tokio::test]
async fn sentinel_url_connects_like_the_builder() {
    let (sentinels, master) = common::sentinel();
    let (host, port) = &sentinels[0];
    let url = format!("redis-sentinel://{host}:{port}?sentinelServiceName={master}");
    let backend = RedisBackend::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect through {url}: {e}"))
        .with_prefix(common::unique("sentinel-url"));
    backend
        .set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(30)))
        .await
        .expect("set");
    assert!(backend.exists("k").await.expect("exists"));
    backend.clear().await.expect("clear");
}
