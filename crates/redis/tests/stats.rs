//! `CacheBackend::stats` on Redis: `INFO` of every server (standalone, each cluster primary,
//! the primary behind sentinel), and typed errors, never a hang, when the server is gone.
//!
//! The shared servers are used by concurrent tests, so counts are lower bounds and counters
//! are checked to move, not to equal. Elapsed-time bounds are correctness bounds (the command
//! timeout plus generous slack, so a hang fails the test), not performance measurements.

mod common;

use std::time::Duration;

use lexicache_core::{BackendStats, Bytes, CacheBackend, ErrorKind};
use lexicache_redis::RedisBackend;
use lexicache_testkit::process::{assert_stats_fail_within, RedisProcess};
use tokio::net::TcpListener;

const N: u64 = 30;
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a loaded two-core machine; a hang would blow far past it.
const SLACK: Duration = Duration::from_secs(2);

/// Writes `N` keys, then reads one that exists and one that does not.
async fn write_and_read(backend: &RedisBackend) {
    for i in 0..N {
        backend
            .set(
                &format!("k{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_secs(60)),
            )
            .await
            .unwrap();
    }
    assert!(backend.get("k0").await.unwrap().is_some());
    assert!(backend.get("absent").await.unwrap().is_none());
}

/// Checks what every deployment reports, given the stats before and after
/// [`write_and_read`].
fn check_common(before: &BackendStats, after: &BackendStats, servers: usize) {
    assert_eq!(after.entries_scope, Some("server"));
    assert!(after.entries.unwrap() >= N, "{after:?}");
    assert!(after.memory_bytes.unwrap() > 0, "{after:?}");
    assert!(after.evictions.is_some(), "{after:?}");
    // Counters of the whole server only grow; other tests may move them too.
    assert!(
        after.hits.unwrap() > before.hits.unwrap(),
        "a hit moves keyspace_hits"
    );
    assert!(
        after.misses.unwrap() > before.misses.unwrap(),
        "a miss moves keyspace_misses"
    );
    assert_eq!(after.servers.len(), servers, "{after:?}");
    for server in &after.servers {
        assert!(server.address.starts_with("127.0.0.1:"), "{server:?}");
        assert!(
            server.version.as_deref().is_some_and(|v| !v.is_empty()),
            "{server:?}"
        );
        assert!(server.uptime.is_some(), "{server:?}");
        assert!(server.connections.unwrap() >= 1, "{server:?}");
        assert!(server.memory_bytes.unwrap() > 0, "{server:?}");
    }
    let per_server: u64 = after.servers.iter().map(|s| s.entries.unwrap()).sum();
    assert_eq!(
        after.entries,
        Some(per_server),
        "the total is the servers' sum"
    );
    assert!(!after.extra.contains_key("unreachable"), "{after:?}");
}

#[tokio::test]
async fn standalone_stats_count_written_keys_and_move_hits_and_misses() {
    let backend = common::standalone()
        .await
        .with_prefix(common::unique("stats-standalone"));
    let before = backend.stats().await.unwrap();
    write_and_read(&backend).await;
    let after = backend.stats().await.unwrap();
    check_common(&before, &after, 1);
    let url = common::standalone_url();
    let port = url
        .trim_start_matches("redis://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    assert_eq!(after.servers[0].address, format!("127.0.0.1:{port}"));
    assert_eq!(after.extra["mode"], "standalone");
}

#[tokio::test]
async fn cluster_stats_ask_every_primary() {
    let backend = common::cluster()
        .await
        .with_prefix(common::unique("stats-cluster"));
    let before = backend.stats().await.unwrap();
    write_and_read(&backend).await;
    let after = backend.stats().await.unwrap();
    check_common(&before, &after, 3);
    let mut addresses: Vec<&str> = after.servers.iter().map(|s| &*s.address).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(
        addresses.len(),
        3,
        "three distinct primaries: {addresses:?}"
    );
    assert_eq!(after.extra["mode"], "cluster");
}

#[tokio::test]
async fn sentinel_stats_report_the_primary_not_the_sentinel() {
    let backend = common::sentinel_backend()
        .await
        .with_prefix(common::unique("stats-sentinel"));
    let before = backend.stats().await.unwrap();
    write_and_read(&backend).await;
    let after = backend.stats().await.unwrap();
    check_common(&before, &after, 1);
    let (sentinels, _) = common::sentinel();
    for (host, port) in sentinels {
        assert_ne!(after.servers[0].address, format!("{host}:{port}"));
    }
    assert_eq!(after.extra["mode"], "sentinel");
}

fn builder(port: u16) -> lexicache_redis::RedisBackendBuilder {
    RedisBackend::builder()
        .standalone("127.0.0.1", port)
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
}

async fn stats_fail_in_time(backend: &RedisBackend, kinds: &[ErrorKind]) {
    // The command timeout plus slack.
    assert_stats_fail_within(backend, kinds, COMMAND_TIMEOUT + SLACK).await;
}

#[tokio::test]
async fn stats_on_a_closed_port_fail_with_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let backend = builder(port).connect_lazy().unwrap();
    stats_fail_in_time(&backend, &[ErrorKind::Connection]).await;
}

#[tokio::test]
async fn stats_of_a_frozen_then_killed_server_fail_typed_within_the_command_timeout() {
    let mut server = RedisProcess::start();
    let backend = builder(server.port()).connect().await.unwrap();
    let stats = backend.stats().await.unwrap();
    assert_eq!(
        stats.servers[0].address,
        format!("127.0.0.1:{}", server.port())
    );

    server.stop();
    stats_fail_in_time(&backend, &[ErrorKind::Timeout]).await;
    server.cont();

    server.kill();
    stats_fail_in_time(&backend, &[ErrorKind::Connection, ErrorKind::Timeout]).await;
}
