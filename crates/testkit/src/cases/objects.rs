//! Cases for entries carrying a decoded object ([`CacheValue`]): in-process backends return the
//! very object written, never a stale one after a plain write; every backend returns the bytes.

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheValue, Object};

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, some, Ctx, Factory, Must};

fn entry(text: &str) -> (CacheValue, Object) {
    let object: Object = Arc::new(text.to_owned());
    (
        CacheValue::with_object(bytes(text), Arc::clone(&object)),
        object,
    )
}

pub(crate) async fn set_entry_object_is_returned_by_get_entry<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let (value, object) = entry("decoded");
    b.set_entry("obj", value, None).await.must("set_entry");
    let got = b.get_entry("obj").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("decoded"));
    let kept = got
        .object()
        .expect("an in-process backend keeps the object");
    assert!(
        Arc::ptr_eq(kept, &object),
        "get_entry returns the very object written"
    );
    assert_eq!(
        got.object_as::<String>().as_deref().map(String::as_str),
        Some("decoded")
    );
}

pub(crate) async fn plain_set_replaces_the_stored_object<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let (value, _object) = entry("old");
    b.set_entry("obj", value, None).await.must("set_entry");
    b.set("obj", bytes("new"), None).await.must("plain set");
    let got = b.get_entry("obj").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("new"));
    assert!(
        got.object_as::<String>().is_none(),
        "after a plain set of bytes, get_entry must not return the stale object"
    );
}

pub(crate) async fn set_many_replaces_the_stored_object<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let (value, _object) = entry("old");
    b.set_entry("obj", value, None).await.must("set_entry");
    b.set_many(&[("obj", bytes("new"))], None)
        .await
        .must("set_many");
    let got = b.get_entry("obj").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("new"));
    assert!(
        got.object_as::<String>().is_none(),
        "after set_many, get_entry must not return the stale object"
    );
}

pub(crate) async fn set_entry_replaces_the_stored_object<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let (first, _first_object) = entry("first");
    let (second, second_object) = entry("second");
    b.set_entry("obj", first, None)
        .await
        .must("first set_entry");
    b.set_entry("obj", second, None)
        .await
        .must("second set_entry");
    let got = b.get_entry("obj").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("second"));
    let kept = got
        .object()
        .expect("an in-process backend keeps the object");
    assert!(
        Arc::ptr_eq(kept, &second_object),
        "the newest object is returned"
    );
}

pub(crate) async fn deleted_or_expired_entry_returns_no_object<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    let (value, _object) = entry("deleted");
    b.set_entry("del", value, None).await.must("set_entry del");
    b.delete("del").await.must("delete");
    assert!(b.get_entry("del").await.must("get_entry del").is_none());
    let (value, _object) = entry("expiring");
    b.set_entry("exp", value, Some(Duration::from_secs(5)))
        .await
        .must("set_entry exp");
    cx.elapse(Duration::from_secs(6)).await;
    assert!(b.get_entry("exp").await.must("get_entry exp").is_none());
    let (value, _object) = entry("zero");
    b.set_entry("zero", value, Some(Duration::ZERO))
        .await
        .must("set_entry with zero ttl");
    assert!(b.get_entry("zero").await.must("get_entry zero").is_none());
}

pub(crate) async fn entry_written_with_object_reads_back_as_bytes<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let (value, _object) = entry("payload");
    b.set_entry("obj", value, None).await.must("set_entry");
    assert_eq!(b.get("obj").await.must("get"), some("payload"));
    assert_eq!(
        b.get_many(&["obj"]).await.must("get_many"),
        vec![some("payload")]
    );
    let got = b.get_entry("obj").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("payload"));
    if !cx.caps().keeps_objects {
        assert!(
            got.object().is_none(),
            "a backend that does not keep objects cannot hand back one"
        );
    }
}

pub(crate) async fn get_entry_of_plain_bytes_has_no_object<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("plain", bytes("bytes only"), None).await.must("set");
    let got = b.get_entry("plain").await.must("get_entry").expect("a hit");
    assert_eq!(got.bytes(), &bytes("bytes only"));
    assert!(
        got.object().is_none(),
        "no object was ever written for this key"
    );
    assert!(b
        .get_entry("absent")
        .await
        .must("get_entry of a miss")
        .is_none());
}
