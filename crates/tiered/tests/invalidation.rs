//! Cross-process invalidation against real Redis servers: two independent clients (each its
//! own connections, L1 and subscription) stand for two processes.
//!
//! Waits here are real (Redis's clock and sockets are involved) and bounded; the bounds are the
//! protocol's own (`max_staleness`), never a performance expectation.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{redis, tiered_with, unique, READY};
use lexicache_core::{Bytes, CacheBackend, PubSub};
use lexicache_redis::fred::interfaces::ClientLike;
use lexicache_redis::fred::types::{ClusterHash, CustomCommand};
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use lexicache_testkit::process::RedisProcess;
use lexicache_tiered::{TieredBackend, TieredBackendBuilder};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A short bound, so tests that rely on it run quickly.
const BOUND: Duration = Duration::from_millis(200);

fn short(builder: TieredBackendBuilder) -> TieredBackendBuilder {
    builder.max_staleness(BOUND)
}

/// A bound far beyond the test's duration: whatever B gets right, it gets right without the
/// lease, through loss detection alone.
fn long(builder: TieredBackendBuilder) -> TieredBackendBuilder {
    builder.max_staleness(Duration::from_secs(120))
}

/// Polls `probe` until it holds, failing the test after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !probe().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_process_is_never_read_stale_from_another_after_the_bound() {
    let ns = unique("tiered-bound");
    let a = tiered_with(redis().await.with_prefix(ns.clone()), short).await;
    let b_ = tiered_with(redis().await.with_prefix(ns), short).await;
    const WRITES: u64 = 300;
    a.set("k", b("0"), None).await.unwrap();

    let reader = tokio::spawn({
        let b_ = b_.clone();
        async move {
            let mut reads = Vec::new();
            loop {
                let started = Instant::now();
                let v: u64 = match b_.get("k").await.unwrap() {
                    Some(v) => std::str::from_utf8(&v).unwrap().parse().unwrap(),
                    None => panic!("k is always present"),
                };
                reads.push((started, v));
                if v == WRITES {
                    return reads;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut returned = Vec::with_capacity(WRITES as usize);
    for version in 1..=WRITES {
        a.set("k", b(&version.to_string()), None).await.unwrap();
        returned.push((version, Instant::now()));
    }
    let reads = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("B saw the last write")
        .unwrap();
    for (started, seen) in &reads {
        // The newest write that returned more than BOUND before this read started.
        let owed = returned
            .iter()
            .filter(|(_, at)| *at + BOUND <= *started)
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0);
        assert!(
            *seen >= owed,
            "read {seen}, but write {owed} had returned more than {BOUND:?} before"
        );
    }
    // After the bound, B reads the last value, from L1 again.
    tokio::time::sleep(BOUND).await;
    assert_eq!(b_.get("k").await.unwrap(), Some(b(&WRITES.to_string())));
    let stats = b_.stats();
    assert!(stats.serving_l1, "{stats:?}");
    assert_eq!(
        (stats.gaps, stats.losses, stats.lags),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.keys_invalidated > 0, "{stats:?}");
}

#[tokio::test]
async fn own_invalidations_do_not_evict_own_writes() {
    let a = tiered_with(redis().await.with_prefix(unique("tiered-own")), short).await;
    a.set("k", b("mine"), None).await.unwrap();
    // Wait for the message to come back to its sender.
    eventually(
        Duration::from_secs(5),
        "A receives its own message",
        || async { a.stats().received >= 1 },
    )
    .await;
    assert_eq!(a.l1().get("k").await.unwrap(), Some(b("mine")));
    assert_eq!(a.stats().keys_invalidated, 0);
}

#[tokio::test]
async fn deletes_patterns_clears_and_batches_in_one_process_reach_the_others_l1() {
    let ns = unique("tiered-ops");
    let a = tiered_with(redis().await.with_prefix(ns.clone()), long).await;
    let b_ = tiered_with(redis().await.with_prefix(ns), long).await;
    let keys = ["d", "p:1", "p:2", "m:1", "m:2", "c"];
    for k in keys {
        a.set(k, b("v1"), None).await.unwrap();
    }
    // A read racing the invalidation of its own key may rightly not be kept: let B apply
    // A's messages first.
    eventually(Duration::from_secs(5), "B applies A's writes", || async {
        b_.stats().keys_invalidated >= keys.len() as u64
    })
    .await;
    for k in keys {
        assert_eq!(b_.get(k).await.unwrap(), Some(b("v1")));
        assert!(b_.l1().get(k).await.unwrap().is_some(), "{k} is in B's L1");
    }
    let gone = |k: &'static str| {
        let b_ = b_.clone();
        move || {
            let b_ = b_.clone();
            async move { b_.l1().get(k).await.unwrap().is_none() }
        }
    };
    a.delete("d").await.unwrap();
    eventually(Duration::from_secs(5), "delete reaches B", gone("d")).await;
    a.delete_pattern("p:*").await.unwrap();
    eventually(
        Duration::from_secs(5),
        "pattern delete reaches B",
        gone("p:2"),
    )
    .await;
    assert!(b_.l1().get("p:1").await.unwrap().is_none());
    a.set_many(&[("m:1", b("v2")), ("m:2", b("v2"))], None)
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "set_many reaches B", gone("m:2")).await;
    assert_eq!(b_.get("m:1").await.unwrap(), Some(b("v2")));
    a.clear().await.unwrap();
    eventually(Duration::from_secs(5), "clear reaches B", gone("c")).await;
    assert_eq!(b_.get("c").await.unwrap(), None);
}

#[tokio::test]
async fn a_tag_invalidation_in_one_process_reaches_the_other() {
    let ns = unique("tiered-tags");
    let a = CacheService::builder(tiered_with(redis().await.with_prefix(ns.clone()), long).await)
        .build();
    let tiered_b = tiered_with(redis().await.with_prefix(ns), long).await;
    let b_ = CacheService::builder(tiered_b.clone()).build();
    a.try_set_with_tags("user:1", &"alice".to_owned(), None, &["users"])
        .await
        .unwrap();
    assert_eq!(b_.get::<String>("user:1").await.as_deref(), Some("alice"));
    assert_eq!(b_.get::<String>("user:1").await.as_deref(), Some("alice"));
    a.invalidate_tags(&["users"]).await.unwrap();
    // B's lease alone would keep its copies for two minutes: the message must do it.
    eventually(
        Duration::from_secs(5),
        "the invalidated entry is a miss in B",
        || async { b_.get::<String>("user:1").await.is_none() },
    )
    .await;
}

/// The ids of the connections named `name` in `raw`'s server's `CLIENT LIST`.
async fn connections_named(raw: &RedisBackend, name: &str) -> Vec<String> {
    let list: String = raw
        .client()
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["LIST"],
        )
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter(|line| line.split(' ').any(|f| f == format!("name={name}")))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// B over `redis` whose subscriber connection is named `name`, with the long bound.
async fn named(redis: RedisBackend, name: &str) -> TieredBackend {
    let pubsub = Arc::new(redis.pubsub().with_client_name(name));
    let b_ = long(
        TieredBackend::builder(lexicache_memory::MemoryBackend::new(), redis).invalidation(pubsub),
    )
    .build()
    .await
    .unwrap();
    assert!(b_.wait_until_serving(READY).await, "B serves L1: {b_:?}");
    b_
}

#[tokio::test]
async fn killing_the_subscriber_connection_clears_l1_and_the_reader_stays_correct() {
    let ns = unique("tiered-kill");
    let name = format!("lexicache-test-kill-{}", std::process::id());
    let a = tiered_with(redis().await.with_prefix(ns.clone()), long).await;
    let raw = redis().await;
    let b_ = named(redis().await.with_prefix(ns), &name).await;
    a.set("k", b("v1"), None).await.unwrap();
    assert_eq!(b_.get("k").await.unwrap(), Some(b("v1")));

    let ids = connections_named(&raw, &name).await;
    assert_eq!(
        ids.len(),
        1,
        "one subscriber connection named {name}: {ids:?}"
    );
    let _: i64 = raw
        .client()
        .custom(
            CustomCommand::new_static("CLIENT", ClusterHash::Random, false),
            vec!["KILL", "ID", &ids[0]],
        )
        .await
        .expect("CLIENT KILL");
    // Written while B may have no subscription: its message may never reach B.
    a.set("k", b("v2"), None).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "B reads v2 (its lease lasts two minutes)",
        || async { b_.get("k").await.unwrap() == Some(b("v2")) },
    )
    .await;
    assert!(b_.stats().losses >= 1, "{:?}", b_.stats());
    assert!(b_.wait_until_serving(READY).await, "B serves L1 again");
    // And invalidation works on the new subscription.
    assert_eq!(b_.get("k").await.unwrap(), Some(b("v2")));
    a.set("k", b("v3"), None).await.unwrap();
    eventually(Duration::from_secs(5), "B reads v3", || async {
        b_.get("k").await.unwrap() == Some(b("v3"))
    })
    .await;
}

async fn connect_retrying(url: &str) -> RedisBackend {
    RedisBackend::builder()
        .url(url)
        .reconnect_policy(
            lexicache_redis::fred::types::config::ReconnectPolicy::new_constant(0, 50),
        )
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

#[tokio::test]
async fn restarting_redis_clears_l1_and_the_reader_stays_correct() {
    let mut server = RedisProcess::start();
    let url = server.url();
    let a = tiered_with(connect_retrying(&url).await, long).await;
    let b_ = tiered_with(connect_retrying(&url).await, long).await;
    a.set("k", b("v1"), None).await.unwrap();
    assert_eq!(b_.get("k").await.unwrap(), Some(b("v1")));

    server.kill();
    server.restart();
    // The restarted server is empty; A writes v2 as soon as it is reconnected.
    eventually(
        Duration::from_secs(10),
        "A writes after the restart",
        || async { a.set("k", b("v2"), None).await.is_ok() },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "B reads v2, never its v1 copy",
        || async {
            match b_.get("k").await {
                Ok(Some(v)) => {
                    assert_ne!(v, b("v1"), "B served its pre-restart copy");
                    v == b("v2")
                }
                _ => false,
            }
        },
    )
    .await;
    assert!(b_.stats().losses >= 1, "{:?}", b_.stats());
    assert!(b_.wait_until_serving(READY).await, "B serves L1 again");
    assert_eq!(b_.get("k").await.unwrap(), Some(b("v2")));
}

#[tokio::test]
async fn a_hung_redis_makes_l1_bypassed_until_it_answers_again() {
    let server = RedisProcess::start();
    let b_ = tiered_with(connect_retrying(&server.url()).await, short).await;
    b_.set("k", b("v"), None).await.unwrap();
    server.stop();
    // No heartbeat comes back: after the bound, L1 is no longer served.
    eventually(
        Duration::from_secs(5),
        "L1 bypassed while the server hangs",
        || async { !b_.is_serving_l1() },
    )
    .await;
    server.cont();
    assert!(
        b_.wait_until_serving(Duration::from_secs(15)).await,
        "L1 served again: {:?}",
        b_.stats()
    );
}

/// An invalidation frame as documented in the crate (`message.rs`): `LXI1`, publisher,
/// sequence, op count, then one keys op.
fn frame(publisher: u64, seq: u64, key: &str) -> Bytes {
    let mut out = b"LXI1".to_vec();
    out.extend_from_slice(&publisher.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.push(1);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&u32::try_from(key.len()).unwrap().to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    Bytes::from(out)
}

#[tokio::test]
async fn a_sequence_gap_clears_l1() {
    let ns = unique("tiered-gap");
    let redis_b = redis().await.with_prefix(ns.clone());
    let b_ = tiered_with(redis_b.clone(), long).await;
    b_.set("k", b("v"), None).await.unwrap();
    let other = redis().await.with_prefix(ns).pubsub();
    other
        .publish("inv", frame(7, 1, "unrelated"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "B applies the first message",
        || async { b_.stats().keys_invalidated >= 1 },
    )
    .await;
    assert_eq!(
        b_.l1().get("k").await.unwrap(),
        Some(b("v")),
        "an unrelated key leaves k alone"
    );
    // Message 2 was lost.
    other
        .publish("inv", frame(7, 3, "unrelated"))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "B sees the gap", || async {
        b_.stats().gaps == 1
    })
    .await;
    assert_eq!(b_.l1().get("k").await.unwrap(), None, "L1 was cleared");
}

#[tokio::test]
async fn an_unreadable_invalidation_clears_l1() {
    let ns = unique("tiered-junk");
    let b_ = tiered_with(redis().await.with_prefix(ns.clone()), long).await;
    b_.set("k", b("v"), None).await.unwrap();
    let clears = b_.stats().full_clears;
    let other = redis().await.with_prefix(ns).pubsub();
    other
        .publish("inv", Bytes::from_static(b"LXI1 not a frame"))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "B clears L1", || async {
        b_.stats().full_clears > clears
    })
    .await;
    assert_eq!(b_.l1().get("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100k_invalidations_leaves_the_reader_bounded_and_correct() {
    let ns = unique("tiered-burst");
    let a = tiered_with(redis().await.with_prefix(ns.clone()), short).await;
    let b_ = tiered_with(redis().await.with_prefix(ns), short).await;
    // B holds 1,000 of the keys A is about to change.
    let held: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    for chunk in held.chunks(100) {
        let items: Vec<(&str, Bytes)> = chunk.iter().map(|k| (k.as_str(), b("old"))).collect();
        a.set_many(&items, None).await.unwrap();
    }
    for k in &held {
        assert_eq!(b_.get(k).await.unwrap(), Some(b("old")));
    }
    let before = b_.l1().entry_count();

    const KEYS: usize = 100_000;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let a = a.clone();
            tokio::spawn(async move {
                for i in (t..KEYS).step_by(64) {
                    a.set(&format!("k{i}"), b("new"), None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(BOUND).await;
    // Invalidations only ever remove: B's L1 did not grow, and every key it held reads "new".
    b_.l1().run_pending_tasks();
    assert!(
        b_.l1().entry_count() <= before,
        "{} > {before}",
        b_.l1().entry_count()
    );
    for k in &held {
        assert_eq!(b_.get(k).await.unwrap(), Some(b("new")), "{k}");
    }
    let stats = b_.stats();
    assert!(
        stats.keys_invalidated >= KEYS as u64 || stats.full_clears > 0,
        "{stats:?}"
    );
    assert!(b_.wait_until_serving(READY).await, "{stats:?}");
}

#[tokio::test]
async fn invalidation_works_over_the_cluster_with_sharded_pub_sub() {
    let nodes = common::cluster_nodes();
    let ns = unique("tiered-cluster");
    let connect = || async {
        RedisBackend::builder()
            .cluster(nodes.clone())
            .connect()
            .await
            .expect("the local cluster")
            .with_prefix(ns.clone())
    };
    let a = tiered_with(connect().await, long).await;
    let b_ = tiered_with(connect().await, long).await;
    for i in 0..20 {
        a.set(&format!("k{i}"), b("v1"), None).await.unwrap();
    }
    for i in 0..20 {
        assert_eq!(b_.get(&format!("k{i}")).await.unwrap(), Some(b("v1")));
    }
    for i in 0..20 {
        a.set(&format!("k{i}"), b("v2"), None).await.unwrap();
    }
    eventually(
        Duration::from_secs(5),
        "every key reads v2 in B",
        || async {
            for i in 0..20 {
                if b_.get(&format!("k{i}")).await.unwrap() != Some(b("v2")) {
                    return false;
                }
            }
            true
        },
    )
    .await;
}
