//! Redis Cluster behaviour beyond the shared suite: batches whose keys live on different
//! primaries, and `delete_pattern` / `clear` reaching every primary, checked with a raw client.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, HealthStatus};
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::{ClusterInterface, KeysInterface};
use lexicache_redis::fred::util::redis_keyslot;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The primary (`host:port`) that owns each full key.
fn owners(raw: &Client, keys: &[String]) -> BTreeSet<String> {
    let routing = raw
        .cached_cluster_state()
        .expect("the cluster routing table");
    keys.iter()
        .map(|k| {
            let server = routing
                .get_server(redis_keyslot(k.as_bytes()))
                .expect("every slot is served");
            format!("{}:{}", server.host, server.port)
        })
        .collect()
}

#[tokio::test]
async fn batches_span_slots_and_primaries() {
    let backend = common::cluster()
        .await
        .with_prefix(common::unique("cross-slot"));
    let raw = common::raw_cluster().await;
    let names: Vec<String> = (0..30).map(|i| format!("user:{i}")).collect();
    let full: Vec<String> = names
        .iter()
        .map(|n| format!("{}{n}", backend.prefix()))
        .collect();
    assert_eq!(
        owners(&raw, &full).len(),
        3,
        "the keys must live on all three primaries for this test to mean anything"
    );

    let items: Vec<(&str, Bytes)> = names.iter().map(|n| (n.as_str(), b(n))).collect();
    backend.set_many(&items, None).await.expect("set_many");
    for (n, k) in names.iter().zip(&full) {
        let v: Option<String> = raw.get(k.as_str()).await.expect("raw GET");
        assert_eq!(v.as_deref(), Some(n.as_str()), "{k} written by set_many");
    }

    let mut ask: Vec<&str> = names.iter().map(String::as_str).collect();
    ask.push("missing");
    ask.push(&names[3]);
    let mut expected: Vec<Option<Bytes>> = names.iter().map(|n| Some(b(n))).collect();
    expected.push(None);
    expected.push(Some(b(&names[3])));
    assert_eq!(
        backend.get_many(&ask).await.expect("get_many"),
        expected,
        "get_many answers in order across slots, with misses and duplicates"
    );

    let mut del: Vec<&str> = names[..20].iter().map(String::as_str).collect();
    del.push(&names[0]);
    del.push("missing");
    assert_eq!(backend.delete_many(&del).await.expect("delete_many"), 20);
    for (i, k) in full.iter().enumerate() {
        let exists: u64 = raw.exists(k.as_str()).await.expect("raw EXISTS");
        assert_eq!(exists == 1, i >= 20, "{k} after delete_many");
    }

    backend
        .set_many(&items[..5], Some(Duration::ZERO))
        .await
        .expect("set_many with a zero ttl");
    assert_eq!(
        backend.get_many(&ask[..6]).await.expect("get_many"),
        vec![None; 6],
        "a zero ttl removes keys on every primary"
    );
    backend.clear().await.expect("clear");
}

#[tokio::test]
async fn delete_pattern_removes_matching_keys_on_every_primary() {
    let backend = common::cluster()
        .await
        .with_prefix(common::unique("pattern-all-primaries"));
    let raw = common::raw_cluster().await;
    let doomed: Vec<String> = (0..60).map(|i| format!("p:{i}")).collect();
    let kept: Vec<String> = (0..30).map(|i| format!("q:{i}")).collect();
    let full = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .map(|n| format!("{}{n}", backend.prefix()))
            .collect()
    };
    assert_eq!(owners(&raw, &full(&doomed)).len(), 3);
    let items: Vec<(&str, Bytes)> = doomed
        .iter()
        .chain(&kept)
        .map(|n| (n.as_str(), b(n)))
        .collect();
    backend.set_many(&items, None).await.expect("set_many");

    assert_eq!(
        backend.delete_pattern("p:*").await.expect("delete_pattern"),
        60
    );
    for k in full(&doomed) {
        let exists: u64 = raw.exists(k.as_str()).await.expect("raw EXISTS");
        assert_eq!(exists, 0, "{k} survived delete_pattern");
    }
    for k in full(&kept) {
        let exists: u64 = raw.exists(k.as_str()).await.expect("raw EXISTS");
        assert_eq!(exists, 1, "{k} was deleted by a pattern it does not match");
    }

    // A look-alike tenant on the same cluster keeps its keys through both operations.
    let lookalike = format!("{}*:", backend.prefix().trim_end_matches(':'));
    let other = backend.with_prefix(lookalike);
    other.set("p:1", b("x"), None).await.expect("set other");
    backend.clear().await.expect("clear");
    for k in full(&kept) {
        let exists: u64 = raw.exists(k.as_str()).await.expect("raw EXISTS");
        assert_eq!(exists, 0, "{k} survived clear");
    }
    assert_eq!(other.get("p:1").await.expect("get other"), Some(b("x")));
    other.clear().await.expect("clear other");
}

#[tokio::test]
async fn health_checks_every_primary() {
    let backend = common::cluster().await;
    let health = backend.health_check(Duration::from_secs(5)).await;
    assert_eq!(health.status, HealthStatus::Healthy, "{:?}", health.reason);
    assert_eq!(health.details["mode"], "cluster");
    assert_eq!(health.details["primaries"], "3");
    for (_, port) in common::cluster_nodes() {
        assert_eq!(
            health.details[&format!("127.0.0.1:{port}.role")],
            "master",
            "{:?}",
            health.details
        );
    }
}
