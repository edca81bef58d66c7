//! Cases for values: every byte value, the empty value, protocol-looking bytes, a large value,
//! and values over the backend's size limit.

use lexicache_core::{Bytes, ErrorKind};

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, expect_kind, some, Ctx, Factory, Must};

const MIB: usize = 1024 * 1024;

/// Deterministic bytes that differ from position to position, so a truncated, shifted or
/// reordered value never compares equal.
fn noise(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // xorshift64: fast, and every byte value occurs.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

pub(crate) async fn every_byte_value_round_trips<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let all: Vec<u8> = (0..=255).collect();
    let reversed: Vec<u8> = (0..=255).rev().collect();
    b.set("all", Bytes::from(all.clone()), None)
        .await
        .must("set all");
    b.set("rev", Bytes::from(reversed.clone()), None)
        .await
        .must("set rev");
    b.set("nul", Bytes::from_static(&[0, 0, 0]), None)
        .await
        .must("set nul");
    assert_eq!(
        b.get("all").await.must("get all").as_deref(),
        Some(&all[..])
    );
    assert_eq!(
        b.get("rev").await.must("get rev").as_deref(),
        Some(&reversed[..])
    );
    assert_eq!(
        b.get("nul").await.must("get nul").as_deref(),
        Some(&[0u8, 0, 0][..])
    );
}

pub(crate) async fn protocol_lookalike_values_round_trip<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    // Values that a text protocol could mistake for framing must come back as written.
    let values: [&[u8]; 5] = [
        b"\r\nEND\r\n",
        b"VALUE other 0 1\r\nx\r\nEND\r\n",
        b"$-1\r\n",
        b"*2\r\n$3\r\nfoo\r\n",
        b"\r\n",
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("proto:{i}");
        b.set(&key, Bytes::copy_from_slice(v), None)
            .await
            .must("set");
        assert_eq!(
            b.get(&key).await.must("get").as_deref(),
            Some(*v),
            "value {i}"
        );
    }
    assert_eq!(b.get("other").await.must("get other"), None);
}

pub(crate) async fn empty_value_is_a_hit_not_a_miss<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("empty", Bytes::new(), None).await.must("set empty");
    assert_eq!(
        b.get("empty").await.must("get"),
        Some(Bytes::new()),
        "an empty value is a hit"
    );
    assert!(b.exists("empty").await.must("exists"));
    b.set_many(&[("empty2", Bytes::new())], None)
        .await
        .must("set_many empty");
    assert_eq!(
        b.get_many(&["empty", "empty2", "none"])
            .await
            .must("get_many"),
        vec![Some(Bytes::new()), Some(Bytes::new()), None]
    );
}

pub(crate) async fn large_value_round_trips_intact<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let len = cx.caps().max_value_size.map_or(MIB, |max| max.min(MIB));
    let big = noise(len, 0x5eed);
    b.set("big", big.clone(), None).await.must("set big");
    let got = b
        .get("big")
        .await
        .must("get big")
        .expect("a large value is a hit");
    assert_eq!(got.len(), len, "length of the large value read back");
    assert!(got == big, "the large value came back with different bytes");
    b.set_many(&[("big2", big.clone())], None)
        .await
        .must("set_many big");
    let got = b.get_many(&["big2"]).await.must("get_many big");
    assert!(
        got[0].as_ref() == Some(&big),
        "the large value written with set_many differs"
    );
}

pub(crate) async fn oversized_value_is_rejected_and_keeps_old_value<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let max = cx
        .caps()
        .max_value_size
        .expect("only run when max_value_size is set");
    b.set("k", bytes("old"), None).await.must("set old");
    let at_limit = noise(max, 7);
    b.set("limit", at_limit.clone(), None)
        .await
        .must("set a value of exactly max_value_size");
    assert!(
        b.get("limit").await.must("get limit").as_ref() == Some(&at_limit),
        "a value of exactly max_value_size round trips"
    );
    let over = noise(max + 1, 9);
    expect_kind(
        b.set("k", over.clone(), None).await,
        ErrorKind::ValueTooLarge,
        "set of max_value_size + 1 bytes",
    );
    assert_eq!(
        b.get("k").await.must("get after rejected set"),
        some("old"),
        "a rejected write leaves the old value"
    );
    expect_kind(
        b.set_many(&[("fresh", bytes("small")), ("k", over)], None)
            .await,
        ErrorKind::ValueTooLarge,
        "set_many with one oversized value",
    );
    assert_eq!(
        b.get_many(&["fresh", "k"])
            .await
            .must("get_many after rejected set_many"),
        vec![None, some("old")],
        "a batch with an oversized value writes nothing"
    );
}
