//! Cases for `keys`: listing a namespace's live keys by glob, relative to the namespace, within a
//! limit, and `Unsupported` where the backend cannot list.

use std::time::Duration;

use lexicache_core::{CacheBackend, ErrorKind};

use crate::ctx::{bytes, expect_kind, Ctx, Factory, Must};

async fn sorted_keys<B: CacheBackend>(b: &B, glob: &str, limit: usize) -> Vec<String> {
    let mut keys = b
        .keys(glob, limit)
        .await
        .must(&format!("keys({glob:?}, {limit})"));
    keys.sort();
    keys
}

pub(crate) async fn keys_lists_matching_keys_relative_to_namespace<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    for k in ["user:1", "user:2", "user:10", "users", "session:1"] {
        b.set(k, bytes(k), None).await.must("set");
    }
    let other = cx.other_namespace().await;
    other
        .set("user:3", bytes("x"), None)
        .await
        .must("set other");
    assert_eq!(
        sorted_keys(b, "user:*", 100).await,
        ["user:1", "user:10", "user:2"],
        "keys(\"user:*\") lists this namespace's matching keys without the prefix"
    );
    assert_eq!(
        sorted_keys(b, "user:?", 100).await,
        ["user:1", "user:2"],
        "`?` matches one character"
    );
    assert_eq!(
        sorted_keys(&*other, "*", 100).await,
        ["user:3"],
        "the other namespace lists only its own key"
    );
}

pub(crate) async fn keys_stops_at_the_limit<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let written: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for k in &written {
        b.set(k, bytes(k), None).await.must("set");
    }
    let listed = sorted_keys(b, "*", 5).await;
    assert_eq!(
        listed.len(),
        5,
        "keys(\"*\", 5) returns exactly 5 of 20 keys"
    );
    for k in &listed {
        assert!(
            written.contains(k),
            "keys listed {k:?}, which was never written"
        );
    }
    assert_eq!(
        sorted_keys(b, "*", 100).await.len(),
        20,
        "all 20 within a larger limit"
    );
}

pub(crate) async fn keys_omits_deleted_and_expired_keys<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("live", bytes("1"), None).await.must("set live");
    b.set("deleted", bytes("2"), None).await.must("set deleted");
    b.delete("deleted").await.must("delete");
    b.set("expired", bytes("3"), Some(Duration::from_secs(5)))
        .await
        .must("set expiring");
    cx.elapse(Duration::from_secs(6)).await;
    assert_eq!(
        sorted_keys(b, "*", 100).await,
        ["live"],
        "only the live key is listed"
    );
}

pub(crate) async fn keys_is_unsupported_when_not_capable<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("v"), None).await.must("set");
    expect_kind(
        b.keys("*", 10).await,
        ErrorKind::Unsupported,
        "keys without the list_keys capability",
    );
}
