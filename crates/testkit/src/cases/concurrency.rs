//! Cases for concurrent use: racing writers leave one intact value, writers to distinct keys
//! all land, and concurrent readers each get their own key's value (never another request's
//! reply).

use std::sync::mpsc;
use std::time::Duration;

use lexicache_core::Bytes;

use lexicache_core::CacheBackend;

use crate::ctx::{Ctx, Factory, Must};

const WRITERS: usize = 50;

/// Value `i` of a family: distinct content and a distinct length for every `i`, so a torn or
/// mixed-up value never equals any of them.
fn tagged(i: usize) -> Bytes {
    let fill = b'a' + u8::try_from(i % 26).unwrap_or(0);
    let mut v = format!("writer-{i:03}:").into_bytes();
    v.extend(std::iter::repeat_n(fill, 16 + 37 * i));
    Bytes::from(v)
}

/// Fails unless `value` is exactly one of the first `n` tagged values.
#[track_caller]
fn assert_one_of(value: Option<&Bytes>, n: usize, what: &str) {
    let value = value.unwrap_or_else(|| panic!("{what}: the key is missing"));
    assert!(
        (0..n).any(|i| tagged(i) == *value),
        "{what}: the value ({} bytes) is none of the values written: torn or mixed up",
        value.len()
    );
}

pub(crate) async fn concurrent_writers_to_one_key_leave_one_intact_value<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    let backend = cx.shared();
    let mut tasks = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let b = backend.clone();
        tasks.push(tokio::spawn(async move {
            b.set("contended", tagged(i), None).await?;
            // A read racing the other writers must still see a whole value.
            b.get("contended").await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let read = t
            .await
            .unwrap_or_else(|e| panic!("writer {i} panicked: {e}"))
            .must("write then read");
        assert_one_of(read.as_ref(), WRITERS, &format!("read by writer {i}"));
    }
    let last = backend.get("contended").await.must("final get");
    assert_one_of(last.as_ref(), WRITERS, "final value");
}

pub(crate) async fn concurrent_writers_to_distinct_keys_all_land<F: Factory>(cx: &Ctx<'_, F>) {
    let backend = cx.shared();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let b = backend.clone();
            tokio::spawn(async move { b.set(&format!("w:{i}"), tagged(i % WRITERS), None).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        t.await
            .unwrap_or_else(|e| panic!("writer {i} panicked: {e}"))
            .must("concurrent set");
    }
    let keys: Vec<String> = (0..100).map(|i| format!("w:{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = backend.get_many(&refs).await.must("get_many");
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.as_ref(), Some(&tagged(i % WRITERS)), "key w:{i}");
    }
}

pub(crate) async fn concurrent_readers_get_their_own_values<F: Factory>(cx: &Ctx<'_, F>) {
    let backend = cx.shared();
    for i in 0..WRITERS {
        backend
            .set(&format!("r:{i}"), tagged(i), None)
            .await
            .must("set");
    }
    // Many requests in flight at once: a backend that multiplexes one connection must match
    // every reply to its own request.
    let tasks: Vec<_> = (0..WRITERS * 4)
        .map(|n| {
            let b = backend.clone();
            tokio::spawn(async move {
                let i = (n * 7) % WRITERS;
                let got = if n % 2 == 0 {
                    b.get(&format!("r:{i}")).await?
                } else {
                    let k = format!("r:{i}");
                    let missing = format!("absent:{n}");
                    let mut many = b.get_many(&[k.as_str(), missing.as_str()]).await?;
                    assert_eq!(many.pop(), Some(None), "absent key in get_many");
                    many.pop().flatten()
                };
                Ok::<_, lexicache_core::Error>((i, got))
            })
        })
        .collect();
    for t in tasks {
        let (i, got) = t
            .await
            .unwrap_or_else(|e| panic!("reader panicked: {e}"))
            .must("concurrent read");
        assert_eq!(got, Some(tagged(i)), "reader of r:{i} got another value");
    }
}

pub(crate) async fn parallel_threads_writing_one_key_leave_one_intact_value<F: Factory>(
    cx: &Ctx<'_, F>,
) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    let backend = cx.shared();
    let handle = tokio::runtime::Handle::current();
    let (done, results) = mpsc::channel::<Result<(), String>>();
    for t in 0..THREADS {
        let (b, handle, done) = (backend.clone(), handle.clone(), done.clone());
        // Real threads, because tasks on the test's single-threaded runtime never truly
        // overlap. An in-process backend's operations finish without the runtime's drivers,
        // so blocking on them from another thread is sound.
        std::thread::spawn(move || {
            let result = (0..ROUNDS).try_for_each(|r| {
                let i = (t * ROUNDS + r) % WRITERS;
                handle
                    .block_on(b.set("hot", tagged(i), None))
                    .map_err(|e| format!("set: {e}"))?;
                let got = handle
                    .block_on(b.get("hot"))
                    .map_err(|e| format!("get: {e}"))?;
                match got {
                    Some(v) if (0..WRITERS).any(|j| tagged(j) == v) => Ok(()),
                    Some(v) => Err(format!("read a torn value of {} bytes", v.len())),
                    None => Err("the key vanished".to_owned()),
                }
            });
            let _ = done.send(result);
        });
    }
    drop(done);
    for _ in 0..THREADS {
        match results.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("a writer thread failed: {e}"),
            Err(e) => panic!(
                "writer threads did not finish ({e}); an in-process backend must not wait on \
                 tokio timers or I/O"
            ),
        }
    }
    let last = backend.get("hot").await.must("final get");
    assert_one_of(last.as_ref(), WRITERS, "final value");
}
