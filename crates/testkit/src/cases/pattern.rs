//! Cases for `delete_pattern`: the glob language of [`lexicache_core::glob`], exact deletes of
//! keys holding metacharacters, the count returned, and `Unsupported` where it cannot be done.

use lexicache_core::glob::escape;
use lexicache_core::{CacheBackend, ErrorKind};

use crate::ctx::{bytes, expect_kind, Ctx, Factory, Must};

/// Writes `keys`, deletes `pattern`, and checks the count and exactly which keys survive.
async fn check_pattern<B: CacheBackend>(b: &B, keys: &[&str], pattern: &str, deleted: &[&str]) {
    for k in keys {
        b.set(k, bytes(k), None).await.must("set");
    }
    let n = b
        .delete_pattern(pattern)
        .await
        .must(&format!("delete_pattern({pattern:?})"));
    for k in keys {
        let expected = if deleted.contains(k) {
            None
        } else {
            Some(bytes(k))
        };
        assert_eq!(
            b.get(k).await.must("get"),
            expected,
            "key {k:?} after delete_pattern({pattern:?})"
        );
    }
    assert_eq!(
        n,
        deleted.len() as u64,
        "count returned by delete_pattern({pattern:?})"
    );
}

pub(crate) async fn delete_pattern_star_matches_any_run<F: Factory>(cx: &Ctx<'_, F>) {
    check_pattern(
        cx.b(),
        &[
            "user:1",
            "user:2",
            "user:10",
            "user:",
            "users",
            "admin:user:1",
        ],
        "user:*",
        &["user:1", "user:2", "user:10", "user:"],
    )
    .await;
}

pub(crate) async fn delete_pattern_star_in_the_middle<F: Factory>(cx: &Ctx<'_, F>) {
    check_pattern(
        cx.b(),
        &["s:a:e", "s:abc:e", "s::e", "s:a:f", "t:a:e"],
        "s:*:e",
        &["s:a:e", "s:abc:e", "s::e"],
    )
    .await;
}

pub(crate) async fn delete_pattern_question_mark_matches_one_character<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    check_pattern(
        cx.b(),
        &["user:1", "user:2", "user:10", "user:"],
        "user:?",
        &["user:1", "user:2"],
    )
    .await;
}

pub(crate) async fn delete_pattern_question_mark_matches_one_multibyte_character<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    // `?` matches one character, not one byte: "é" is two bytes and "🦀" four.
    check_pattern(
        cx.b(),
        &["h-é", "h-🦀", "h-e", "h-ée"],
        "h-?",
        &["h-é", "h-🦀", "h-e"],
    )
    .await;
}

pub(crate) async fn delete_pattern_character_class_and_range<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    check_pattern(
        b,
        &["v:a", "v:b", "v:c", "v:d", "v:ab"],
        "v:[ac]",
        &["v:a", "v:c"],
    )
    .await;
    check_pattern(
        b,
        &["n:0", "n:5", "n:9", "n:x", "n:55"],
        "n:[0-5]",
        &["n:0", "n:5"],
    )
    .await;
}

pub(crate) async fn delete_pattern_caret_negated_class<F: Factory>(cx: &Ctx<'_, F>) {
    check_pattern(
        cx.b(),
        &["c:a", "c:b", "c:z", "c:", "c:bb"],
        "c:[^a]",
        &["c:b", "c:z"],
    )
    .await;
}

pub(crate) async fn delete_pattern_bang_negated_class<F: Factory>(cx: &Ctx<'_, F>) {
    check_pattern(
        cx.b(),
        &["c:a", "c:b", "c:z", "c:", "c:bb"],
        "c:[!a-b]",
        &["c:z"],
    )
    .await;
}

pub(crate) async fn delete_pattern_escaped_metacharacters_match_exactly<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    let b = cx.b();
    let keys = [
        "a*b",
        "aXb",
        "ab",
        "q?",
        "qq",
        "[x]",
        "x",
        "back\\slash",
        "backslash",
        "^!-",
    ];
    for literal in ["a*b", "q?", "[x]", "back\\slash", "^!-"] {
        for k in keys {
            b.set(k, bytes(k), None).await.must("set");
        }
        let pattern = escape(literal);
        let n = b
            .delete_pattern(&pattern)
            .await
            .must(&format!("delete_pattern({pattern:?})"));
        assert_eq!(
            n, 1,
            "escaped pattern {pattern:?} deletes exactly {literal:?}"
        );
        for k in keys {
            let expected = if k == literal { None } else { Some(bytes(k)) };
            assert_eq!(
                b.get(k).await.must("get"),
                expected,
                "key {k:?} after delete_pattern({pattern:?})"
            );
        }
    }
}

pub(crate) async fn delete_pattern_prefix_with_escaped_metacharacters<F: Factory>(cx: &Ctx<'_, F>) {
    let prefix = format!("{}*", escape("tag[1]*:"));
    check_pattern(
        cx.b(),
        &["tag[1]*:a", "tag[1]*:b", "tag1:a", "tag[1]x:a", "tag[2]*:a"],
        &prefix,
        &["tag[1]*:a", "tag[1]*:b"],
    )
    .await;
}

pub(crate) async fn delete_pattern_without_match_returns_zero<F: Factory>(cx: &Ctx<'_, F>) {
    check_pattern(cx.b(), &["alpha", "beta"], "gamma*", &[]).await;
    assert_eq!(
        cx.b().delete_pattern("*").await.must("delete_pattern(*)"),
        2
    );
    assert_eq!(
        cx.b()
            .delete_pattern("*")
            .await
            .must("delete_pattern(*) on an empty namespace"),
        0
    );
}

pub(crate) async fn delete_pattern_counts_many_keys<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let keys: Vec<String> = (0..600)
        .map(|i| {
            if i % 3 == 0 {
                format!("odd:{i}")
            } else {
                format!("keep:{i}")
            }
        })
        .collect();
    let items: Vec<(&str, lexicache_core::Bytes)> =
        keys.iter().map(|k| (k.as_str(), bytes(k))).collect();
    b.set_many(&items, None).await.must("set_many");
    assert_eq!(b.delete_pattern("odd:*").await.must("delete_pattern"), 200);
    assert_eq!(
        b.get("keep:1").await.must("get keep:1"),
        Some(bytes("keep:1"))
    );
    assert_eq!(b.get("odd:3").await.must("get odd:3"), None);
    assert_eq!(
        b.delete_pattern("keep:*")
            .await
            .must("second delete_pattern"),
        400
    );
}

pub(crate) async fn delete_pattern_does_not_touch_expired_or_deleted_keys<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    let b = cx.b();
    b.set("p:live", bytes("1"), None).await.must("set live");
    b.set("p:deleted", bytes("2"), None)
        .await
        .must("set deleted");
    b.delete("p:deleted").await.must("delete");
    b.set(
        "p:expired",
        bytes("3"),
        Some(std::time::Duration::from_secs(5)),
    )
    .await
    .must("set expiring");
    cx.elapse(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        b.delete_pattern("p:*").await.must("delete_pattern"),
        1,
        "only the live key is counted"
    );
}

pub(crate) async fn delete_pattern_is_unsupported_when_not_capable<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("v"), None).await.must("set");
    expect_kind(
        b.delete_pattern("*").await,
        ErrorKind::Unsupported,
        "delete_pattern without the pattern_delete capability",
    );
    assert_eq!(
        b.get("k").await.must("get"),
        Some(bytes("v")),
        "an unsupported delete_pattern deletes nothing"
    );
}
