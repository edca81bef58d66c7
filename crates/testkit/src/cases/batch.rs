//! Cases for `get_many`, `set_many` and `delete_many`: order, duplicates, misses, empty batches
//! and large batches.
//!
//! The rules checked: `get_many` answers one slot per key asked, in order, duplicates included;
//! in `set_many` the last item for a key wins; `delete_many` returns the number of *distinct*
//! keys that existed (a duplicate of a deleted key finds it already gone, as with Redis `DEL`).

use lexicache_core::Bytes;

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, some, Ctx, Factory, Must};

pub(crate) async fn get_many_answers_in_order_with_misses_and_duplicates<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    let b = cx.b();
    b.set("a", bytes("1"), None).await.must("set a");
    b.set("b", bytes("2"), None).await.must("set b");
    b.set("c", bytes("3"), None).await.must("set c");
    let got = b
        .get_many(&["c", "missing", "a", "b", "a", "missing", "c"])
        .await
        .must("get_many");
    assert_eq!(
        got,
        vec![
            some("3"),
            None,
            some("1"),
            some("2"),
            some("1"),
            None,
            some("3")
        ]
    );
}

pub(crate) async fn set_many_then_get_many_round_trips<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let items: Vec<(String, Bytes)> = (0..20)
        .map(|i| (format!("item:{i}"), bytes(&format!("value {i}"))))
        .collect();
    let refs: Vec<(&str, Bytes)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    b.set_many(&refs, None).await.must("set_many");
    let keys: Vec<&str> = items.iter().rev().map(|(k, _)| k.as_str()).collect();
    let got = b.get_many(&keys).await.must("get_many");
    let expected: Vec<Option<Bytes>> = items.iter().rev().map(|(_, v)| Some(v.clone())).collect();
    assert_eq!(got, expected);
    assert_eq!(b.get("item:7").await.must("get"), some("value 7"));
}

pub(crate) async fn set_many_overwrites_and_last_duplicate_wins<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("x", bytes("before"), None).await.must("set");
    b.set_many(
        &[
            ("x", bytes("first")),
            ("y", bytes("only")),
            ("x", bytes("last")),
        ],
        None,
    )
    .await
    .must("set_many");
    assert_eq!(
        b.get_many(&["x", "y"]).await.must("get_many"),
        vec![some("last"), some("only")]
    );
}

pub(crate) async fn delete_many_counts_distinct_existing_keys<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set_many(
        &[("a", bytes("1")), ("b", bytes("2")), ("c", bytes("3"))],
        None,
    )
    .await
    .must("set_many");
    let n = b
        .delete_many(&["a", "a", "b", "missing", "b", "missing"])
        .await
        .must("delete_many");
    assert_eq!(
        n, 2,
        "two distinct keys existed; duplicates and missing keys are not counted"
    );
    assert_eq!(
        b.get_many(&["a", "b", "c"]).await.must("get_many"),
        vec![None, None, some("3")]
    );
    assert_eq!(
        b.delete_many(&["a", "b"]).await.must("second delete_many"),
        0
    );
}

pub(crate) async fn empty_batches_are_ok<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert_eq!(
        b.get_many(&[]).await.must("empty get_many"),
        Vec::<Option<Bytes>>::new()
    );
    b.set_many(&[], None).await.must("empty set_many");
    assert_eq!(b.delete_many(&[]).await.must("empty delete_many"), 0);
}

pub(crate) async fn large_batches_round_trip<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let n = 1000;
    let keys: Vec<String> = (0..n).map(|i| format!("bulk:{i:04}")).collect();
    let items: Vec<(&str, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), Bytes::from(format!("{i}").repeat(1 + i % 7))))
        .collect();
    b.set_many(&items, None).await.must("set_many of 1000");
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = b.get_many(&key_refs).await.must("get_many of 1000");
    assert_eq!(got.len(), n);
    for (i, (slot, (_, v))) in got.iter().zip(&items).enumerate() {
        assert_eq!(slot.as_ref(), Some(v), "slot {i}");
    }
    let evens: Vec<&str> = key_refs.iter().copied().step_by(2).collect();
    assert_eq!(b.delete_many(&evens).await.must("delete_many of 500"), 500);
    let got = b.get_many(&key_refs).await.must("get_many after delete");
    let present = got.iter().filter(|v| v.is_some()).count();
    assert_eq!(present, 500);
    assert!(
        got.iter().step_by(2).all(Option::is_none),
        "every even key was deleted"
    );
}
