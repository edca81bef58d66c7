//! `CacheBackend::stats` of the memory backend: this namespace's live entries and their bytes,
//! and the store's size evictions.

use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend};
use lexicache_memory::MemoryBackend;

/// What one entry weighs in the store: key, value and the fixed 64-byte overhead.
fn weight(full_key: &str, value: &[u8]) -> u64 {
    64 + full_key.len() as u64 + value.len() as u64
}

#[tokio::test]
async fn stats_counts_exactly_this_namespaces_entries_and_their_bytes() {
    let store = MemoryBackend::new();
    let a = store.with_prefix("a:");
    let b = store.with_prefix("b:");
    let value = Bytes::from_static(b"value");
    for i in 0..25 {
        a.set(&format!("k{i}"), value.clone(), None).await.unwrap();
    }
    for i in 0..7 {
        b.set(&format!("k{i}"), value.clone(), None).await.unwrap();
    }
    // Overwrites do not add entries.
    a.set("k0", value.clone(), None).await.unwrap();

    let stats = a.stats().await.unwrap();
    assert_eq!(stats.entries, Some(25), "{stats:?}");
    assert_eq!(stats.entries_scope, Some("namespace"));
    let expected: u64 = (0..25).map(|i| weight(&format!("a:k{i}"), b"value")).sum();
    assert_eq!(stats.memory_bytes, Some(expected), "{stats:?}");
    assert_eq!(stats.evictions, Some(0));
    assert!(stats.servers.is_empty(), "in process: no servers");
    assert_eq!(
        stats.extra.get("store_entries").map(String::as_str),
        Some("32"),
        "the whole store: {stats:?}"
    );
    assert_eq!(
        stats.extra.get("max_entries").map(String::as_str),
        Some("100000")
    );

    assert_eq!(b.stats().await.unwrap().entries, Some(7));
    assert_eq!(
        store.stats().await.unwrap().entries,
        Some(32),
        "the empty prefix is the whole store"
    );
}

#[tokio::test]
async fn stats_leaves_hits_and_misses_unknown_as_the_store_does_not_count_them() {
    let cache = MemoryBackend::new();
    cache
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    assert!(cache.get("k").await.unwrap().is_some());
    assert!(cache.get("absent").await.unwrap().is_none());
    let stats = cache.stats().await.unwrap();
    assert_eq!((stats.hits, stats.misses), (None, None), "{stats:?}");
    assert_eq!(stats.hit_rate(), None);
}

#[tokio::test(start_paused = true)]
async fn stats_skips_expired_and_deleted_entries_and_counts_neither_as_evictions() {
    let cache = MemoryBackend::new();
    for i in 0..10 {
        cache
            .set(
                &format!("short{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_secs(5)),
            )
            .await
            .unwrap();
        cache
            .set(&format!("long{i}"), Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    assert!(cache.delete("long0").await.unwrap());
    assert_eq!(cache.stats().await.unwrap().entries, Some(19));

    tokio::time::advance(Duration::from_secs(6)).await;
    let stats = cache.stats().await.unwrap();
    assert_eq!(
        stats.entries,
        Some(9),
        "expired entries are gone: {stats:?}"
    );
    assert_eq!(
        stats.memory_bytes,
        Some((1..10).map(|i| weight(&format!("long{i}"), b"v")).sum()),
    );
    assert_eq!(
        stats.evictions,
        Some(0),
        "neither a delete nor an expiry is an eviction"
    );
}

#[tokio::test]
async fn stats_counts_size_evictions_of_a_bounded_store() {
    let cache = MemoryBackend::builder().max_entries(10).build();
    for i in 0..200 {
        cache
            .set(&format!("k{i}"), Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    let stats = cache.stats().await.unwrap();
    let entries = stats.entries.unwrap();
    let evictions = stats.evictions.unwrap();
    assert!(entries <= 10, "the bound holds: {stats:?}");
    assert!(evictions > 0, "200 writes into 10 slots evict: {stats:?}");
    // moka reports a new entry it refuses at admission as a size eviction too, so every
    // write is either kept or counted, once.
    assert_eq!(entries + evictions, 200, "{stats:?}");
}

#[tokio::test]
async fn stats_of_a_store_bounded_by_bytes_names_its_bound() {
    let cache = MemoryBackend::builder().max_bytes(1 << 20).build();
    cache
        .set("k", Bytes::from_static(b"twelve bytes"), None)
        .await
        .unwrap();
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.memory_bytes, Some(weight("k", b"twelve bytes")));
    assert_eq!(
        stats.extra.get("max_bytes").map(String::as_str),
        Some("1048576"),
        "{stats:?}"
    );
    assert!(!stats.extra.contains_key("max_entries"));
}
