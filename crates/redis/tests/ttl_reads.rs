//! `get_with_ttl` / `get_many_with_ttl`: each value with the time its entry has left to live,
//! read with `GET` and `PTTL` in one round trip, on a standalone server and on the cluster.

mod common;

use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, ErrorKind, Expiry, KeyRules};
use lexicache_redis::RedisBackend;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn remaining(expiry: Expiry) -> Duration {
    match expiry {
        Expiry::In(d) => d,
        other => panic!("expected a remaining time, got {other:?}"),
    }
}

async fn a_key_with_a_ttl_reports_its_remaining_time(cache: RedisBackend) {
    let ttl = Duration::from_secs(60);
    cache.set("ttl", b("v"), Some(ttl)).await.unwrap();
    let (value, expiry) = cache.get_with_ttl("ttl").await.unwrap().expect("a hit");
    assert_eq!(value, b("v"));
    let left = remaining(expiry);
    assert!(left <= ttl && left > Duration::ZERO, "{left:?}");
    // Nothing close to a minute can pass in this test.
    assert!(left > Duration::from_secs(30), "{left:?}");
}

async fn a_key_without_ttl_never_expires_and_a_miss_is_none(cache: RedisBackend) {
    cache.set("forever", b("f"), None).await.unwrap();
    assert_eq!(
        cache.get_with_ttl("forever").await.unwrap(),
        Some((b("f"), Expiry::Never))
    );
    assert_eq!(cache.get_with_ttl("absent").await.unwrap(), None);
}

async fn many_keys_answer_in_order_with_duplicates(cache: RedisBackend) {
    cache
        .set_many(&[("a", b("1")), ("c", b("3"))], None)
        .await
        .unwrap();
    // Spread over slots in a cluster.
    let names: Vec<String> = (0..20).map(|i| format!("user:{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        cache
            .set(name, b(&i.to_string()), Some(Duration::from_secs(120)))
            .await
            .unwrap();
    }
    let mut keys = vec!["a", "missing", "c", "a"];
    keys.extend(names.iter().map(String::as_str));
    let read = cache.get_many_with_ttl(&keys).await.unwrap();
    assert_eq!(read.len(), keys.len());
    assert_eq!(read[0], Some((b("1"), Expiry::Never)));
    assert_eq!(read[1], None);
    assert_eq!(read[2], Some((b("3"), Expiry::Never)));
    assert_eq!(read[3], read[0], "a duplicate answers the same");
    for (i, entry) in read[4..].iter().enumerate() {
        let (value, expiry) = entry.clone().expect("a hit");
        assert_eq!(value, b(&i.to_string()));
        let left = remaining(expiry);
        assert!(left <= Duration::from_secs(120) && left > Duration::from_secs(60));
    }
    assert!(cache.get_many_with_ttl(&[]).await.unwrap().is_empty());
}

async fn an_invalid_key_is_key_invalid(cache: RedisBackend) {
    let err = cache.get_with_ttl("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    let long = "x".repeat(65);
    let err = cache.get_many_with_ttl(&["ok", &long]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyInvalid);
}

async fn standalone(test: &str) -> RedisBackend {
    common::connect(
        common::standalone_builder()
            .prefix(common::unique(test))
            .key_rules(KeyRules::new().max_len(64)),
        "standalone redis",
    )
    .await
}

async fn cluster(test: &str) -> RedisBackend {
    common::connect(
        common::cluster_builder()
            .prefix(common::unique(test))
            .key_rules(KeyRules::new().max_len(64)),
        "redis cluster",
    )
    .await
}

#[tokio::test]
async fn standalone_key_with_a_ttl_reports_its_remaining_time() {
    a_key_with_a_ttl_reports_its_remaining_time(standalone("ttl-in").await).await;
}

#[tokio::test]
async fn standalone_key_without_ttl_never_expires_and_a_miss_is_none() {
    a_key_without_ttl_never_expires_and_a_miss_is_none(standalone("ttl-never").await).await;
}

#[tokio::test]
async fn standalone_many_keys_answer_in_order_with_duplicates() {
    many_keys_answer_in_order_with_duplicates(standalone("ttl-many").await).await;
}

#[tokio::test]
async fn standalone_invalid_key_is_key_invalid() {
    an_invalid_key_is_key_invalid(standalone("ttl-invalid").await).await;
}

#[tokio::test]
async fn cluster_key_with_a_ttl_reports_its_remaining_time() {
    a_key_with_a_ttl_reports_its_remaining_time(cluster("ttl-in").await).await;
}

#[tokio::test]
async fn cluster_key_without_ttl_never_expires_and_a_miss_is_none() {
    a_key_without_ttl_never_expires_and_a_miss_is_none(cluster("ttl-never").await).await;
}

#[tokio::test]
async fn cluster_many_keys_answer_in_order_with_duplicates() {
    many_keys_answer_in_order_with_duplicates(cluster("ttl-many").await).await;
}

#[tokio::test]
async fn cluster_invalid_key_is_key_invalid() {
    an_invalid_key_is_key_invalid(cluster("ttl-invalid").await).await;
}

#[tokio::test]
async fn an_entry_that_expired_is_a_miss() {
    let cache = standalone("ttl-expired").await;
    cache
        .set("short", b("s"), Some(Duration::from_millis(50)))
        .await
        .unwrap();
    // The server's clock decides expiry: a short real wait.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(cache.get_with_ttl("short").await.unwrap(), None);
}
