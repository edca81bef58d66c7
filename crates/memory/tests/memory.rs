//! Memory-backend specific behaviour: bounds, default TTL, eviction events and namespaces.

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, CacheEvent, CacheValue, ErrorKind, EvictionCause};
use lexicache_memory::MemoryBackend;
use tokio::sync::broadcast::error::TryRecvError;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn evictions(
    rx: &mut tokio::sync::broadcast::Receiver<CacheEvent>,
) -> Vec<(String, EvictionCause)> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(CacheEvent::Evicted { key, cause, .. }) => out.push((key.to_string(), cause)),
            Ok(_) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return out,
            Err(TryRecvError::Lagged(_)) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn default_ttl_applies_when_none_is_given() {
    let cache = MemoryBackend::builder()
        .default_ttl(Duration::from_secs(60))
        .build();
    cache.set("k", b("v"), None).await.unwrap();
    cache
        .set("long", b("v"), Some(Duration::from_secs(600)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(cache.exists("k").await.unwrap());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.get("long").await.unwrap(), Some(b("v")));
}

#[tokio::test(start_paused = true)]
async fn deleting_an_expired_entry_reports_false() {
    let cache = MemoryBackend::new();
    cache
        .set("k", b("v"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!cache.delete("k").await.unwrap());
}

#[tokio::test]
async fn entry_bound_evicts_with_size_cause() {
    let cache = MemoryBackend::builder().max_entries(10).build();
    let mut rx = cache.events().subscribe();
    for i in 0..200 {
        cache.set(&format!("k{i}"), b("v"), None).await.unwrap();
    }
    cache.run_pending_tasks();
    assert!(
        cache.entry_count() <= 10,
        "entries = {}",
        cache.entry_count()
    );
    let ev = evictions(&mut rx);
    assert!(ev.len() >= 190, "only {} evictions", ev.len());
    assert!(ev.iter().all(|(_, c)| *c == EvictionCause::Size));
}

#[tokio::test]
async fn byte_bound_limits_weighted_size() {
    let cache = MemoryBackend::builder().max_bytes(64 * 1024).build();
    let value = Bytes::from(vec![7u8; 1024]);
    for i in 0..500 {
        cache
            .set(&format!("k{i}"), value.clone(), None)
            .await
            .unwrap();
    }
    cache.run_pending_tasks();
    assert!(
        cache.weighted_size() <= 64 * 1024,
        "size = {}",
        cache.weighted_size()
    );
    assert!(cache.entry_count() < 100);
}

#[tokio::test]
async fn explicit_delete_emits_explicit_eviction_and_overwrite_emits_none() {
    let cache = MemoryBackend::new();
    let mut rx = cache.events().subscribe();
    cache.set("a", b("1"), None).await.unwrap();
    cache.set("a", b("2"), None).await.unwrap();
    cache.delete("a").await.unwrap();
    cache.run_pending_tasks();
    assert_eq!(
        evictions(&mut rx),
        vec![("a".to_owned(), EvictionCause::Explicit)]
    );
}

#[tokio::test(start_paused = true)]
async fn removing_a_lazily_expired_entry_reports_expired_cause() {
    let cache = MemoryBackend::builder().prefix("ns:").build();
    let mut rx = cache.events().subscribe();
    cache
        .set("a", b("1"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    cache.clear().await.unwrap();
    cache.run_pending_tasks();
    assert_eq!(
        evictions(&mut rx),
        vec![("ns:a".to_owned(), EvictionCause::Expired)]
    );
}

#[tokio::test]
async fn prefixes_sharing_a_store_are_isolated() {
    let store = MemoryBackend::new();
    let a = store.with_prefix("a:");
    let bb = store.with_prefix("b:");
    a.set("k", b("from a"), None).await.unwrap();
    bb.set("k", b("from b"), None).await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(b("from a")));
    assert_eq!(store.get("b:k").await.unwrap(), Some(b("from b")));
    assert_eq!(a.delete_pattern("*").await.unwrap(), 1);
    bb.clear().await.unwrap();
    assert_eq!(store.get("a:k").await.unwrap(), None);
    assert_eq!(store.get("b:k").await.unwrap(), None);
}

#[tokio::test]
async fn oversized_value_is_rejected_and_keeps_the_old_value() {
    let cache = MemoryBackend::builder().max_value_size(8).build();
    cache.set("k", b("small"), None).await.unwrap();
    let err = cache.set("k", b("far too large"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(err.backend(), "memory");
    assert_eq!(cache.get("k").await.unwrap(), Some(b("small")));
}

#[tokio::test]
async fn kept_objects_come_back_without_decoding() {
    let cache = MemoryBackend::new();
    let obj = Arc::new(vec![1u32, 2, 3]);
    cache
        .set_entry(
            "k",
            CacheValue::with_object(b("[1,2,3]"), obj.clone()),
            None,
        )
        .await
        .unwrap();
    let got = cache.get_entry("k").await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&got.object_as::<Vec<u32>>().unwrap(), &obj));
    cache.set("k", b("[4]"), None).await.unwrap();
    let got = cache.get_entry("k").await.unwrap().unwrap();
    assert!(
        got.object().is_none(),
        "stale object survived a bytes overwrite"
    );
}

#[tokio::test]
async fn health_reports_entries() {
    let cache = MemoryBackend::new();
    cache.set("k", b("v"), None).await.unwrap();
    cache.run_pending_tasks();
    let h = cache.health_check(Duration::from_secs(1)).await;
    assert!(h.is_healthy());
    assert_eq!(h.details["entries"], "1");
}

#[tokio::test(start_paused = true)]
async fn keep_object_attaches_the_decoded_value_to_the_entry_read_and_keeps_its_ttl() {
    let cache = MemoryBackend::new();
    let bytes = Bytes::from_static(b"\"forty-two\"");
    cache
        .set("k", bytes.clone(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    cache.keep_object("k", &bytes, Arc::new("forty-two".to_owned()));
    let entry = cache.get_entry("k").await.unwrap().expect("a hit");
    assert_eq!(
        entry.object_as::<String>().as_deref().map(String::as_str),
        Some("forty-two")
    );
    assert_eq!(entry.bytes(), &bytes);
    tokio::time::advance(Duration::from_millis(4001)).await;
    assert!(
        cache.get_entry("k").await.unwrap().is_none(),
        "the TTL was kept"
    );
}

#[tokio::test]
async fn keep_object_leaves_a_newer_value_and_an_absent_key_alone() {
    let cache = MemoryBackend::new();
    cache
        .set("k", Bytes::from_static(b"new"), None)
        .await
        .unwrap();
    cache.keep_object("k", &Bytes::from_static(b"old"), Arc::new("old".to_owned()));
    let entry = cache.get_entry("k").await.unwrap().expect("a hit");
    assert!(
        entry.object().is_none(),
        "an object of other bytes is never attached"
    );
    cache.keep_object("absent", &Bytes::from_static(b"x"), Arc::new(1u8));
    assert!(
        cache.get_entry("absent").await.unwrap().is_none(),
        "nothing is created"
    );
}
