//! Cases for `set_if_absent`: it writes an absent (or expired) key and reports `true`, leaves a
//! present key untouched and reports `false`, honours its TTL, has exactly one winner among
//! racing callers, and rejects bad keys and oversized values without writing anything.

use std::sync::mpsc;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, ErrorKind};

use crate::ctx::{bytes, expect_kind, some, Ctx, Factory, Must};

const HOUR: Duration = Duration::from_secs(3600);

/// Racing callers per contended key.
const RACERS: usize = 32;

pub(crate) async fn set_if_absent_writes_an_absent_key<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert!(
        b.set_if_absent("fresh", bytes("first"), None)
            .await
            .must("set_if_absent of an absent key"),
        "set_if_absent of an absent key reports that it wrote"
    );
    assert_eq!(b.get("fresh").await.must("get"), some("first"));
    assert!(b
        .set_if_absent("with-ttl", bytes("t"), Some(HOUR))
        .await
        .must("set_if_absent with a ttl"));
    assert_eq!(b.get("with-ttl").await.must("get with-ttl"), some("t"));
    // An empty value is a value: the key is present afterwards.
    assert!(b
        .set_if_absent("empty", Bytes::new(), None)
        .await
        .must("set_if_absent of an empty value"));
    assert_eq!(
        b.get("empty").await.must("get empty"),
        Some(Bytes::new()),
        "an empty value written by set_if_absent is a hit"
    );
}

pub(crate) async fn set_if_absent_leaves_a_present_key_untouched<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    b.set("taken", bytes("original"), None).await.must("set");
    assert!(
        !b.set_if_absent("taken", bytes("intruder"), None)
            .await
            .must("set_if_absent of a present key"),
        "set_if_absent of a present key reports that it did not write"
    );
    assert_eq!(
        b.get("taken").await.must("get"),
        some("original"),
        "set_if_absent never overwrites"
    );
    // A second add of a key the first add wrote loses as well.
    assert!(b
        .set_if_absent("once", bytes("1"), None)
        .await
        .must("first set_if_absent"));
    assert!(!b
        .set_if_absent("once", bytes("2"), Some(HOUR))
        .await
        .must("second set_if_absent"));
    assert_eq!(b.get("once").await.must("get once"), some("1"));
    // A zero TTL against a present key is refused too, and removes nothing.
    assert!(!b
        .set_if_absent("taken", bytes("gone"), Some(Duration::ZERO))
        .await
        .must("set_if_absent with a zero ttl of a present key"));
    assert_eq!(
        b.get("taken").await.must("get after zero ttl"),
        some("original")
    );
}

pub(crate) async fn set_if_absent_keeps_the_present_entrys_ttl<F: Factory>(cx: &Ctx<'_, F>) {
    cx.freeze_clock();
    let b = cx.b();
    b.set("k", bytes("short-lived"), Some(Duration::from_secs(10)))
        .await
        .must("set with ttl");
    assert!(!b
        .set_if_absent("k", bytes("forever"), None)
        .await
        .must("set_if_absent of a present key"));
    cx.elapse(Duration::from_secs(11)).await;
    assert_eq!(
        b.get("k").await.must("get after the original ttl"),
        None,
        "a refused set_if_absent must not extend the present entry's ttl"
    );
}

pub(crate) async fn set_if_absent_honours_its_ttl_and_expired_keys_are_absent<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    cx.freeze_clock();
    let b = cx.b();
    let ttl = if cx.caps().tokio_clock {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    b.set("expiring", bytes("old"), Some(ttl))
        .await
        .must("set with ttl");
    assert!(b
        .set_if_absent("added", bytes("a"), Some(ttl))
        .await
        .must("set_if_absent with ttl"));
    assert_eq!(b.get("added").await.must("get before ttl"), some("a"));
    if cx.caps().tokio_clock {
        cx.elapse(ttl + Duration::from_millis(1)).await;
    } else {
        // Memcached counts whole seconds: wait past the next second boundary.
        cx.elapse(Duration::from_millis(2100)).await;
    }
    assert_eq!(
        b.get("added").await.must("get after ttl"),
        None,
        "an entry written by set_if_absent expires with its ttl"
    );
    assert!(
        b.set_if_absent("expiring", bytes("new"), None)
            .await
            .must("set_if_absent over an expired entry"),
        "an expired entry counts as absent"
    );
    assert_eq!(b.get("expiring").await.must("get"), some("new"));
    assert!(b
        .set_if_absent("added", bytes("again"), None)
        .await
        .must("set_if_absent after its own entry expired"));
    assert_eq!(b.get("added").await.must("get again"), some("again"));
}

pub(crate) async fn set_if_absent_with_zero_ttl_stores_nothing<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert!(
        b.set_if_absent("instant", bytes("v"), Some(Duration::ZERO))
            .await
            .must("set_if_absent with a zero ttl"),
        "a zero-ttl add of an absent key is a write (of an entry that expires at once)"
    );
    assert_eq!(b.get("instant").await.must("get"), None);
    assert!(!b.exists("instant").await.must("exists"));
}

pub(crate) async fn concurrent_set_if_absent_has_exactly_one_winner<F: Factory>(cx: &Ctx<'_, F>) {
    let backend = cx.shared();
    for round in 0..4 {
        let key = format!("contended:{round}");
        let mut tasks = Vec::with_capacity(RACERS);
        for i in 0..RACERS {
            let (b, key) = (backend.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let won = b
                    .set_if_absent(&key, bytes(&format!("racer-{i}")), Some(HOUR))
                    .await?;
                Ok::<_, lexicache_core::Error>((i, won))
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (i, won) = t
                .await
                .unwrap_or_else(|e| panic!("a racer panicked: {e}"))
                .must("set_if_absent");
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            backend.get(&key).await.must("get"),
            some(&format!("racer-{}", winners[0])),
            "round {round}: the winner's value is the one stored"
        );
    }
    if cx.caps().in_process {
        threads_race(cx).await;
    }
}

/// The race again on real threads, since tasks on the test's current-thread runtime never
/// truly overlap on an in-process backend.
async fn threads_race<F: Factory>(cx: &Ctx<'_, F>) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 100;
    let backend = cx.shared();
    let handle = tokio::runtime::Handle::current();
    let (done, results) = mpsc::channel::<Result<Vec<usize>, String>>();
    for t in 0..THREADS {
        let (b, handle, done) = (backend.clone(), handle.clone(), done.clone());
        std::thread::spawn(move || {
            let result = (0..ROUNDS)
                .map(|r| {
                    handle
                        .block_on(b.set_if_absent(
                            &format!("threaded:{r}"),
                            bytes(&t.to_string()),
                            None,
                        ))
                        .map(usize::from)
                        .map_err(|e| format!("set_if_absent: {e}"))
                })
                .collect();
            let _ = done.send(result);
        });
    }
    drop(done);
    let mut wins = vec![0usize; ROUNDS];
    for _ in 0..THREADS {
        match results.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(per_round)) => {
                for (r, w) in per_round.into_iter().enumerate() {
                    wins[r] += w;
                }
            }
            Ok(Err(e)) => panic!("a racing thread failed: {e}"),
            Err(e) => panic!("racing threads did not finish ({e})"),
        }
    }
    for (r, w) in wins.iter().enumerate() {
        assert_eq!(*w, 1, "threaded round {r}: {w} threads won set_if_absent");
    }
}

pub(crate) async fn set_if_absent_with_an_invalid_key_is_key_invalid<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    expect_kind(
        b.set_if_absent("", bytes("v"), None).await,
        ErrorKind::KeyInvalid,
        "set_if_absent of the empty key",
    );
    let overlong = "k".repeat(cx.caps().max_key_len + 1);
    expect_kind(
        b.set_if_absent(&overlong, bytes("v"), None).await,
        ErrorKind::KeyInvalid,
        "set_if_absent of a key one byte over max_key_len",
    );
}

pub(crate) async fn set_if_absent_of_an_oversized_value_writes_nothing<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    let b = cx.b();
    let max = cx
        .caps()
        .max_value_size
        .expect("only run when max_value_size is set");
    let over = Bytes::from(vec![b'x'; max + 1]);
    expect_kind(
        b.set_if_absent("big", over, None).await,
        ErrorKind::ValueTooLarge,
        "set_if_absent of max_value_size + 1 bytes",
    );
    assert_eq!(
        b.get("big").await.must("get after the rejected add"),
        None,
        "a rejected set_if_absent writes nothing"
    );
    assert!(
        b.set_if_absent("big", bytes("small"), None)
            .await
            .must("set_if_absent after the rejected one"),
        "the key is still absent after a rejected set_if_absent"
    );
}
