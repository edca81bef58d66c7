//! `CacheBackend::stats` of a tiered backend: L2's figures, with L1's and the invalidation
//! counters in `extra`; L2's errors as they are. The inherent `TieredBackend::stats` (the
//! counters alone) keeps its meaning.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lexicache_core::{Bytes, CacheBackend, ErrorKind, Operation};
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_tiered::TieredBackend;
use tokio::net::TcpListener;

const N: u64 = 20;

fn v() -> Bytes {
    Bytes::from_static(b"value")
}

#[tokio::test]
async fn tiered_stats_are_l2s_with_l1_figures_in_extra() {
    let l2 = MemoryBackend::new().with_prefix("l2:");
    let tiered = TieredBackend::builder(MemoryBackend::new(), Arc::new(l2.clone()))
        .build()
        .await
        .unwrap();
    for i in 0..N {
        tiered.set(&format!("k{i}"), v(), None).await.unwrap();
    }
    // Only in L2: read through once, then in both.
    l2.set("only-l2", v(), None).await.unwrap();

    let stats = CacheBackend::stats(&tiered).await.unwrap();
    assert_eq!(stats.entries, Some(N + 1), "L2's count: {stats:?}");
    assert_eq!(stats.entries_scope, Some("namespace"));
    assert_eq!(
        stats.extra["l1_entries"],
        N.to_string(),
        "writes land in L1"
    );
    assert_eq!(stats.extra["l1_served"], "true");
    assert!(stats.extra.contains_key("l1_bytes"));
    assert!(
        !stats.extra.contains_key("invalidation_published"),
        "no channel, no counters: {stats:?}"
    );

    assert!(tiered.get("only-l2").await.unwrap().is_some());
    assert!(tiered.delete("k0").await.unwrap());
    let stats = CacheBackend::stats(&tiered).await.unwrap();
    assert_eq!(stats.entries, Some(N));
    assert_eq!(
        stats.extra["l1_entries"],
        N.to_string(),
        "one filled, one deleted"
    );

    // The inherent method still returns the invalidation counters.
    assert!(tiered.stats().serving_l1);
}

#[tokio::test]
async fn tiered_stats_over_redis_report_the_servers_and_the_invalidation_counters() {
    let redis = common::redis()
        .await
        .with_prefix(common::unique("tiered-stats"));
    let tiered = common::tiered_over(redis).await;
    let before = CacheBackend::stats(&tiered).await.unwrap();
    for i in 0..N {
        tiered
            .set(&format!("k{i}"), v(), Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    tiered.l1().clear().await.unwrap();
    assert!(tiered.get("k1").await.unwrap().is_some(), "an L2 hit");
    assert!(tiered.get("absent").await.unwrap().is_none(), "an L2 miss");
    let after = CacheBackend::stats(&tiered).await.unwrap();

    assert_eq!(after.entries_scope, Some("server"));
    assert!(after.entries.unwrap() >= N, "{after:?}");
    assert_eq!(after.servers.len(), 1);
    assert!(after.hits.unwrap() > before.hits.unwrap(), "{after:?}");
    assert!(after.misses.unwrap() > before.misses.unwrap(), "{after:?}");
    assert_eq!(
        after.extra["l1_entries"], "1",
        "the L2 hit was copied into L1"
    );
    assert_eq!(after.extra["invalidation_subscribed"], "true");
    let published: u64 = after.extra["invalidation_published"].parse().unwrap();
    assert!(published >= N, "every write publishes: {:?}", after.extra);
}

#[tokio::test]
async fn tiered_stats_with_a_dead_l2_fail_with_its_typed_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let l2 = RedisBackend::builder()
        .standalone("127.0.0.1", port)
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect_lazy()
        .unwrap();
    let tiered = TieredBackend::builder(MemoryBackend::new(), Arc::new(l2))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let err = CacheBackend::stats(&tiered).await.expect_err("L2 is gone");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(err.operation(), Some(Operation::Stats));
    // A correctness bound (a hang would blow far past it), not a performance figure.
    assert!(started.elapsed() < Duration::from_secs(3));
}
