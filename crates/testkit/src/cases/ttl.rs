//! Cases for time to live: expiry, overwrites resetting it, no TTL, and the zero TTL.
//!
//! Backends following tokio's clock are checked with a paused, advanced clock. Others are
//! checked only by [`entries_expire_after_their_ttl`], which really waits (about two seconds,
//! since memcached counts in whole seconds); the zero-TTL cases need no waiting at all.

use std::time::Duration;

use lexicache_core::Bytes;

use lexicache_core::CacheBackend;

use crate::ctx::{bytes, some, Ctx, Factory, Must};

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

pub(crate) async fn entries_expire_after_their_ttl<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    let ttl = if cx.caps().tokio_clock {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    b.set("short", bytes("s"), Some(ttl))
        .await
        .must("set short");
    b.set_many(
        &[("batch:1", bytes("b1")), ("batch:2", bytes("b2"))],
        Some(ttl),
    )
    .await
    .must("set_many with ttl");
    b.set("forever", bytes("f"), None).await.must("set forever");
    b.set("long", bytes("l"), Some(HOUR)).await.must("set long");

    assert_eq!(b.get("short").await.must("get short before ttl"), some("s"));
    assert_eq!(
        b.get_many(&["batch:1", "batch:2"])
            .await
            .must("get_many before ttl"),
        vec![some("b1"), some("b2")]
    );

    if cx.caps().tokio_clock {
        cx.elapse(ttl - MS).await;
        assert_eq!(
            b.get("short").await.must("get short just before ttl"),
            some("s"),
            "an entry must live for its whole ttl"
        );
        assert!(b
            .exists("batch:1")
            .await
            .must("exists batch:1 just before ttl"));
        cx.elapse(2 * MS).await;
    } else {
        cx.elapse(Duration::from_millis(2100)).await;
    }

    assert_eq!(b.get("short").await.must("get short after ttl"), None);
    assert!(!b.exists("short").await.must("exists short after ttl"));
    assert_eq!(
        b.get_many(&["batch:1", "batch:2", "forever", "long"])
            .await
            .must("get_many after ttl"),
        vec![None, None, some("f"), some("l")],
        "entries written with set_many expire like those written with set; others stay"
    );
}

pub(crate) async fn expired_entry_is_gone_for_every_operation<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("gone", bytes("v"), Some(Duration::from_secs(5)))
        .await
        .must("set");
    cx.elapse(Duration::from_secs(6)).await;
    assert!(!b.exists("gone").await.must("exists"));
    assert_eq!(b.get_many(&["gone"]).await.must("get_many"), vec![None]);
    assert!(
        !b.delete("gone").await.must("delete"),
        "deleting an expired entry reports that it did not exist"
    );
    assert_eq!(
        b.delete_many(&["gone"]).await.must("delete_many"),
        0,
        "an expired entry is not counted by delete_many"
    );
    assert_eq!(
        b.get_entry("gone")
            .await
            .must("get_entry")
            .map(|v| v.into_bytes()),
        None
    );
}

pub(crate) async fn expired_key_can_be_written_again<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("old"), Some(Duration::from_secs(5)))
        .await
        .must("set");
    cx.elapse(Duration::from_secs(6)).await;
    b.set("k", bytes("new"), None).await.must("set again");
    cx.elapse(HOUR).await;
    assert_eq!(b.get("k").await.must("get"), some("new"));
}

pub(crate) async fn overwrite_resets_ttl<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    let ttl = Duration::from_secs(10);
    b.set("k", bytes("first"), Some(ttl)).await.must("set");
    cx.elapse(Duration::from_secs(6)).await;
    b.set("k", bytes("second"), Some(ttl))
        .await
        .must("overwrite");
    // Twelve seconds after the first write, past its ttl but within the overwrite's.
    cx.elapse(Duration::from_secs(6)).await;
    assert_eq!(
        b.get("k").await.must("get after the first ttl"),
        some("second"),
        "the overwrite's ttl counts from the overwrite"
    );
    cx.elapse(Duration::from_secs(5)).await;
    assert_eq!(b.get("k").await.must("get after the second ttl"), None);
}

pub(crate) async fn overwrite_without_ttl_removes_expiry<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("temporary"), Some(Duration::from_secs(10)))
        .await
        .must("set with ttl");
    b.set("k", bytes("permanent"), None)
        .await
        .must("overwrite without ttl");
    cx.elapse(24 * HOUR).await;
    assert_eq!(b.get("k").await.must("get"), some("permanent"));
}

pub(crate) async fn overwrite_with_ttl_adds_expiry<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("permanent"), None).await.must("set");
    b.set("k", bytes("temporary"), Some(Duration::from_secs(10)))
        .await
        .must("overwrite with ttl");
    cx.elapse(Duration::from_secs(11)).await;
    assert_eq!(b.get("k").await.must("get"), None);
}

pub(crate) async fn entry_without_ttl_is_kept<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("kept"), None).await.must("set");
    b.set_many(&[("m", bytes("kept too"))], None)
        .await
        .must("set_many");
    cx.elapse(30 * 24 * HOUR).await;
    assert_eq!(b.get("k").await.must("get"), some("kept"));
    assert_eq!(b.get("m").await.must("get m"), some("kept too"));
}

pub(crate) async fn fractional_ttl_is_not_truncated<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("v"), Some(Duration::from_millis(1500)))
        .await
        .must("set");
    cx.elapse(Duration::from_millis(1400)).await;
    assert_eq!(
        b.get("k").await.must("get at 1.4s"),
        some("v"),
        "a 1.5s ttl must not be cut down to 1s"
    );
    // TTLs may be rounded up to the backend's resolution, but by less than a second.
    cx.elapse(Duration::from_millis(1100)).await;
    assert_eq!(b.get("k").await.must("get at 2.5s"), None);
}

pub(crate) async fn tiny_ttl_is_readable_until_it_passes<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("v"), Some(MS)).await.must("set");
    assert_eq!(
        b.get("k").await.must("get at once"),
        some("v"),
        "a 1ms ttl is not zero: the entry is written"
    );
    cx.elapse(Duration::from_secs(2)).await;
    assert_eq!(b.get("k").await.must("get after"), None);
}

pub(crate) async fn zero_ttl_removes_existing_key<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("old"), None).await.must("set");
    b.set("k", bytes("new"), Some(Duration::ZERO))
        .await
        .must("set with zero ttl");
    assert_eq!(b.get("k").await.must("get"), None);
    assert!(!b.exists("k").await.must("exists"));
}

pub(crate) async fn zero_ttl_write_of_new_key_is_a_miss<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("k", bytes("v"), Some(Duration::ZERO))
        .await
        .must("set with zero ttl");
    assert_eq!(b.get("k").await.must("get"), None);
    assert!(!b.exists("k").await.must("exists"));
    assert!(!b.delete("k").await.must("delete"));
}

pub(crate) async fn set_many_with_zero_ttl_removes_entries<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("old", bytes("o"), None).await.must("set old");
    b.set("keep", bytes("k"), None).await.must("set keep");
    let items: [(&str, Bytes); 2] = [("old", bytes("x")), ("fresh", bytes("y"))];
    b.set_many(&items, Some(Duration::ZERO))
        .await
        .must("set_many with zero ttl");
    assert_eq!(
        b.get_many(&["old", "fresh", "keep"]).await.must("get_many"),
        vec![None, None, some("k")]
    );
}
