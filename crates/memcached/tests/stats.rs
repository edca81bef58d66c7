//! `CacheBackend::stats` on memcached: `stats` of every server, summed, and typed errors, never
//! a hang, when servers are gone.
//!
//! The shared servers are used by concurrent tests, so counts are lower bounds and counters
//! are checked to move, not to equal. Elapsed-time bounds are correctness bounds (the command
//! timeout plus generous slack, so a hang fails the test), not performance measurements.

mod common;

use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, ErrorKind};
use lexicache_memcached::MemcachedBackend;
use lexicache_testkit::process::{assert_stats_fail_within, MemcachedProcess};

use common::{connect, free_port, servers, unique_prefix};

const N: u64 = 40;
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a loaded two-core machine; a hang would blow far past it.
const SLACK: Duration = Duration::from_secs(2);

#[tokio::test]
async fn stats_sum_every_server_and_count_written_items_and_move_hits_and_misses() {
    let cache = connect(&unique_prefix("stats")).await;
    let before = cache.stats().await.unwrap();
    for i in 0..N {
        cache
            .set(
                &format!("k{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_secs(60)),
            )
            .await
            .unwrap();
    }
    assert!(cache.get("k0").await.unwrap().is_some());
    assert!(cache.get("absent").await.unwrap().is_none());
    let after = cache.stats().await.unwrap();

    assert_eq!(after.entries_scope, Some("server"));
    assert!(after.entries.unwrap() >= N, "{after:?}");
    assert!(after.memory_bytes.unwrap() > 0, "{after:?}");
    assert!(after.evictions.is_some(), "{after:?}");
    assert!(
        after.hits.unwrap() > before.hits.unwrap(),
        "a hit moves get_hits"
    );
    assert!(
        after.misses.unwrap() > before.misses.unwrap(),
        "a miss moves get_misses"
    );
    let addresses: Vec<String> = after.servers.iter().map(|s| s.address.clone()).collect();
    assert_eq!(addresses, servers(), "every server, in configuration order");
    for server in &after.servers {
        assert!(
            server.version.as_deref().is_some_and(|v| !v.is_empty()),
            "{server:?}"
        );
        assert!(server.uptime.is_some(), "{server:?}");
        assert!(server.connections.unwrap() >= 1, "{server:?}");
    }
    let per_server: u64 = after.servers.iter().map(|s| s.entries.unwrap()).sum();
    assert_eq!(
        after.entries,
        Some(per_server),
        "the total is the servers' sum"
    );
    assert!(after.extra.contains_key("limit_maxbytes"), "{after:?}");
    assert!(!after.extra.contains_key("unreachable"), "{after:?}");
}

#[tokio::test]
async fn stats_with_one_dead_server_report_the_live_one_and_name_the_dead_one() {
    let live = servers()[0].clone();
    let dead = format!("127.0.0.1:{}", free_port());
    let cache = MemcachedBackend::builder()
        .servers([live.clone(), dead.clone()])
        .prefix(unique_prefix("stats-dead"))
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .unwrap();
    let stats = cache.stats().await.expect("one server answers");
    assert_eq!(stats.servers.len(), 2);
    assert_eq!(stats.servers[0].address, live);
    assert!(stats.servers[0].version.is_some(), "{stats:?}");
    assert_eq!(stats.servers[1].address, dead);
    assert_eq!(stats.servers[1].version, None, "{stats:?}");
    assert_eq!(
        stats.entries, stats.servers[0].entries,
        "only the live server counts"
    );
    assert!(
        stats.extra["unreachable"].contains(&dead),
        "{:?}",
        stats.extra
    );
}

async fn stats_fail_in_time(cache: &MemcachedBackend, kinds: &[ErrorKind]) {
    // The command timeout plus slack.
    assert_stats_fail_within(cache, kinds, COMMAND_TIMEOUT + SLACK).await;
}

#[tokio::test]
async fn stats_when_every_server_is_dead_fail_with_a_connection_error() {
    let dead = format!("127.0.0.1:{}", free_port());
    let cache = MemcachedBackend::builder()
        .server(&dead)
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .unwrap();
    stats_fail_in_time(&cache, &[ErrorKind::Connection]).await;
    // Marked down now: the next call fails fast, still typed.
    stats_fail_in_time(&cache, &[ErrorKind::Connection]).await;
}

#[tokio::test]
async fn stats_of_a_frozen_then_killed_server_fail_typed_within_the_command_timeout() {
    let mut server = MemcachedProcess::start();
    let cache = MemcachedBackend::builder()
        .server(server.addr())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .connect()
        .await
        .unwrap();
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.servers[0].address, server.addr());
    assert_eq!(stats.entries, Some(0), "a fresh server holds nothing");

    server.stop();
    stats_fail_in_time(&cache, &[ErrorKind::Timeout]).await;
    server.cont();

    server.kill();
    stats_fail_in_time(&cache, &[ErrorKind::Connection, ErrorKind::Timeout]).await;
}
