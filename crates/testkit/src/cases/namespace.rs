//! Cases for namespaces: keys, deletes, `clear` and `delete_pattern("*")` stay inside their own
//! namespace; `clear` is `Unsupported` where it cannot be done.

use lexicache_core::ErrorKind;

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, expect_kind, some, Ctx, Factory, Must};

pub(crate) async fn namespaces_do_not_share_keys<F: Factory>(cx: &Ctx<'_, F>) {
    let a = cx.b();
    let other = cx.other_namespace().await;
    a.set("shared-name", bytes("in a"), None)
        .await
        .must("set in a");
    assert_eq!(
        other.get("shared-name").await.must("get in b before set"),
        None,
        "a key written in one namespace is not visible in another"
    );
    other
        .set("shared-name", bytes("in b"), None)
        .await
        .must("set in b");
    assert_eq!(a.get("shared-name").await.must("get in a"), some("in a"));
    assert_eq!(
        other.get("shared-name").await.must("get in b"),
        some("in b")
    );
    assert!(a.delete("shared-name").await.must("delete in a"));
    assert!(other.exists("shared-name").await.must("exists in b"));
    assert_eq!(
        other
            .delete_many(&["shared-name"])
            .await
            .must("delete_many in b"),
        1
    );
}

pub(crate) async fn clear_removes_every_key_of_the_namespace<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    for k in &keys {
        b.set(k, bytes(k), None).await.must("set");
    }
    b.set("a*b", bytes("meta"), None).await.must("set a*b");
    b.clear().await.must("clear");
    for k in &keys {
        assert_eq!(b.get(k).await.must("get"), None, "key {k:?} after clear");
    }
    assert!(!b.exists("a*b").await.must("exists a*b"));
    // A cleared namespace stays usable.
    b.set("after", bytes("v"), None)
        .await
        .must("set after clear");
    assert_eq!(b.get("after").await.must("get after clear"), some("v"));
    b.clear().await.must("second clear");
    b.clear().await.must("clear of an empty namespace");
    assert_eq!(b.get("after").await.must("get"), None);
}

pub(crate) async fn clear_leaves_other_namespace_intact<F: Factory>(cx: &Ctx<'_, F>) {
    let a = cx.b();
    let other = cx.other_namespace().await;
    a.set("k", bytes("a"), None).await.must("set in a");
    a.set("only-a", bytes("a"), None).await.must("set only-a");
    other.set("k", bytes("b"), None).await.must("set in b");
    other
        .set("only-b", bytes("b"), None)
        .await
        .must("set only-b");
    a.clear().await.must("clear a");
    assert_eq!(
        a.get_many(&["k", "only-a"]).await.must("get_many a"),
        vec![None, None]
    );
    assert_eq!(
        other.get_many(&["k", "only-b"]).await.must("get_many b"),
        vec![some("b"), some("b")],
        "clearing one namespace must leave another's keys intact"
    );
}

pub(crate) async fn delete_pattern_star_leaves_other_namespace_intact<F: Factory>(cx: &Ctx<'_, F>) {
    let a = cx.b();
    let other = cx.other_namespace().await;
    a.set("x:1", bytes("a"), None).await.must("set in a");
    a.set("y", bytes("a"), None).await.must("set y in a");
    other.set("x:1", bytes("b"), None).await.must("set in b");
    other.set("z", bytes("b"), None).await.must("set z in b");
    assert_eq!(
        a.delete_pattern("*").await.must("delete_pattern(*) in a"),
        2
    );
    assert_eq!(
        a.get_many(&["x:1", "y"]).await.must("get_many a"),
        vec![None, None]
    );
    assert_eq!(
        other.get_many(&["x:1", "z"]).await.must("get_many b"),
        vec![some("b"), some("b")],
        "delete_pattern(*) in one namespace must leave another's keys intact"
    );
    assert_eq!(
        other
            .delete_pattern("x:*")
            .await
            .must("delete_pattern in b"),
        1
    );
}

pub(crate) async fn clear_is_unsupported_when_not_capable<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("v"), None).await.must("set");
    expect_kind(
        b.clear().await,
        ErrorKind::Unsupported,
        "clear without the clear capability",
    );
    assert_eq!(
        b.get("k").await.must("get"),
        some("v"),
        "an unsupported clear removes nothing"
    );
}
