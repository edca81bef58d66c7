//! Cases for keys: unicode, glob metacharacters, whitespace and control characters, the longest
//! valid key, and invalid keys on every operation (including in batches, which then write
//! nothing).

use lexicache_core::{Bytes, ErrorKind};

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, expect_kind, some, Ctx, Factory, Must};

/// Writes each key with a distinct value, then reads every one back.
async fn round_trip_keys<F: Factory>(cx: &Ctx<'_, F>, keys: &[&str]) {
    let b = cx.b();
    for (i, k) in keys.iter().enumerate() {
        b.set(k, bytes(&format!("v{i}")), None).await.must("set");
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            b.get(k).await.must("get"),
            some(&format!("v{i}")),
            "key {k:?}"
        );
        assert!(b.exists(k).await.must("exists"), "key {k:?}");
    }
    let got = b.get_many(keys).await.must("get_many");
    for (i, (k, v)) in keys.iter().zip(got).enumerate() {
        assert_eq!(v, some(&format!("v{i}")), "get_many slot for key {k:?}");
    }
    for k in keys {
        assert!(b.delete(k).await.must("delete"), "key {k:?}");
    }
}

pub(crate) async fn unicode_keys_round_trip<F: Factory>(cx: &Ctx<'_, F>) {
    // The precomposed "é" and "e" plus a combining acute accent are different keys: keys are
    // compared as bytes, never normalised.
    round_trip_keys(
        cx,
        &[
            "🦀",
            "crab:🦀:🦀",
            "缓存键",
            "キャッシュ",
            "caf\u{e9}",
            "cafe\u{301}",
            "Ωmega",
            "שלום",
            "👩‍👩‍👧",
        ],
    )
    .await;
}

pub(crate) async fn keys_with_punctuation_and_glob_characters_round_trip<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    round_trip_keys(
        cx,
        &[
            "a*b",
            "q?",
            "[x]",
            "a:b:c",
            "with/slash",
            "back\\slash",
            "{tag}:1",
            "100%",
            "a=b&c",
            "\"quoted\"",
            "semi;colon",
            "#hash",
            "-dash",
            "...",
            "^!",
        ],
    )
    .await;
}

pub(crate) async fn keys_with_whitespace_and_control_characters_round_trip<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    // The key rules accept these, so every backend must store them, escaping or encoding
    // them for its wire protocol rather than letting them split a command.
    round_trip_keys(
        cx,
        &[
            "with space",
            " leading",
            "trailing ",
            "tab\there",
            "line\nbreak",
            "carriage\rreturn",
            "crlf\r\nset x 0 0 1",
            "nul\0byte",
            "\u{7f}del",
        ],
    )
    .await;
}

pub(crate) async fn longest_valid_key_round_trips<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let max = cx.caps().max_key_len;
    let longest = "k".repeat(max);
    let other = format!("{}j", "k".repeat(max - 1));
    b.set(&longest, bytes("longest"), None)
        .await
        .must("set the longest key");
    b.set(&other, bytes("other"), None)
        .await
        .must("set another long key");
    assert_eq!(b.get(&longest).await.must("get"), some("longest"));
    assert_eq!(
        b.get(&other).await.must("get other"),
        some("other"),
        "long keys differing in their last byte are distinct"
    );
    assert!(b.delete(&longest).await.must("delete"));
}

/// Checks that `key` is rejected as `KeyInvalid` by every single-key and batch operation, and
/// that a batch holding it alongside valid keys changes nothing.
async fn check_invalid_key<F: Factory>(cx: &Ctx<'_, F>, key: &str, why: &str) {
    let b = cx.b();
    b.set("valid", bytes("old"), None).await.must("set valid");
    let kind = ErrorKind::KeyInvalid;
    expect_kind(b.get(key).await, kind, &format!("get of {why}"));
    expect_kind(
        b.set(key, bytes("v"), None).await,
        kind,
        &format!("set of {why}"),
    );
    expect_kind(b.delete(key).await, kind, &format!("delete of {why}"));
    expect_kind(b.exists(key).await, kind, &format!("exists of {why}"));
    expect_kind(
        b.get_many(&["valid", key]).await,
        kind,
        &format!("get_many with {why}"),
    );
    expect_kind(
        b.set_many(
            &[
                ("valid", bytes("new")),
                ("fresh", bytes("f")),
                (key, bytes("v")),
            ],
            None,
        )
        .await,
        kind,
        &format!("set_many with {why}"),
    );
    expect_kind(
        b.delete_many(&["valid", key]).await,
        kind,
        &format!("delete_many with {why}"),
    );
    expect_kind(
        b.set_entry(key, Bytes::from_static(b"v").into(), None)
            .await,
        kind,
        &format!("set_entry of {why}"),
    );
    expect_kind(
        b.get_entry(key)
            .await
            .map(|v| v.map(lexicache_core::CacheValue::into_bytes)),
        kind,
        &format!("get_entry of {why}"),
    );
    assert_eq!(
        b.get_many(&["valid", "fresh"])
            .await
            .must("get_many after rejected batches"),
        vec![some("old"), None],
        "a batch with an invalid key writes and deletes nothing"
    );
}

pub(crate) async fn empty_key_is_invalid_for_every_operation<F: Factory>(cx: &Ctx<'_, F>) {
    check_invalid_key(cx, "", "the empty key").await;
}

pub(crate) async fn overlong_key_is_invalid_for_every_operation<F: Factory>(cx: &Ctx<'_, F>) {
    let max = cx.caps().max_key_len;
    check_invalid_key(cx, &"k".repeat(max + 1), "a key one byte over max_key_len").await;
    // Length is counted in bytes: this key has fewer characters than the limit but more bytes.
    let chars = max / 2 + 1;
    check_invalid_key(
        cx,
        &"é".repeat(chars),
        "a multibyte key over max_key_len in bytes",
    )
    .await;
}
