//! Cases for single-key reads, writes, overwrites, deletes and `exists`.

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, some, Ctx, Factory, Must};

pub(crate) async fn get_after_set_returns_value<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("greeting", bytes("hello"), None).await.must("set");
    assert_eq!(b.get("greeting").await.must("get"), some("hello"));
}

pub(crate) async fn missing_key_is_a_miss_not_an_error<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert_eq!(b.get("never-written").await.must("get"), None);
    assert!(!b.exists("never-written").await.must("exists"));
    assert!(!b.delete("never-written").await.must("delete"));
}

pub(crate) async fn set_overwrites_previous_value<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("a much longer first value"), None)
        .await
        .must("first set");
    b.set("k", bytes("short"), None).await.must("second set");
    // A shorter overwrite must not leave the tail of the longer value behind.
    assert_eq!(b.get("k").await.must("get"), some("short"));
    b.set("k", bytes("third and longest value of them all"), None)
        .await
        .must("third set");
    assert_eq!(
        b.get("k").await.must("get"),
        some("third and longest value of them all")
    );
}

pub(crate) async fn delete_reports_whether_key_existed<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("doomed", bytes("v"), None).await.must("set");
    assert!(
        b.delete("doomed").await.must("first delete"),
        "first delete of a present key"
    );
    assert_eq!(b.get("doomed").await.must("get after delete"), None);
    assert!(
        !b.delete("doomed").await.must("second delete"),
        "second delete of the same key"
    );
}

pub(crate) async fn delete_leaves_other_keys_alone<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("a", bytes("1"), None).await.must("set a");
    b.set("ab", bytes("2"), None).await.must("set ab");
    b.set("b", bytes("3"), None).await.must("set b");
    assert!(b.delete("a").await.must("delete a"));
    assert_eq!(b.get("ab").await.must("get ab"), some("2"));
    assert_eq!(b.get("b").await.must("get b"), some("3"));
}

pub(crate) async fn exists_tracks_set_and_delete<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert!(!b.exists("e").await.must("exists before set"));
    b.set("e", bytes("v"), None).await.must("set");
    assert!(b.exists("e").await.must("exists after set"));
    // Exists must not consume or change the entry.
    assert!(b.exists("e").await.must("exists again"));
    assert_eq!(b.get("e").await.must("get"), some("v"));
    b.delete("e").await.must("delete");
    assert!(!b.exists("e").await.must("exists after delete"));
}

pub(crate) async fn keys_differing_in_case_or_suffix_are_distinct<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let keys = ["user", "User", "USER", "user:", "user:1", "user:10", "use"];
    for (i, k) in keys.iter().enumerate() {
        b.set(k, bytes(&format!("value-{i}")), None)
            .await
            .must("set");
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            b.get(k).await.must("get"),
            some(&format!("value-{i}")),
            "key {k:?}"
        );
    }
}

pub(crate) async fn deleted_key_can_be_written_again<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("phoenix", bytes("first"), None).await.must("set");
    b.delete("phoenix").await.must("delete");
    b.set("phoenix", bytes("second"), None)
        .await
        .must("set again");
    assert_eq!(b.get("phoenix").await.must("get"), some("second"));
    assert!(b.exists("phoenix").await.must("exists"));
}
