//! The store scenarios of `support` on the memcached lock store, against the two test servers
//! (`LEXICACHE_TEST_MEMCACHED`), on the real clock: memcached keeps time, tokio cannot pause it.
//!
//! Memcached counts time in whole seconds and keeps a lock up to a second past its TTL, so TTLs
//! are 1 s and the scenarios allow 1.5 s of slack. An unset variable or a server that does not
//! answer fails the tests with how to start it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheBackend, HealthStatus, SharedLockStore};
use lexicache_memcached::{MemcachedBackend, MemcachedLockStore};
use lexicache_testkit::servers;
use support::Timing;

const TIMING: Timing = Timing {
    ttl: Duration::from_secs(1),
    expiry_slack: Duration::from_millis(1500),
};

/// A lock store in a namespace of its own on both shared servers.
async fn store(test: &str) -> SharedLockStore {
    let backend = MemcachedBackend::builder()
        .servers(servers::memcached_servers())
        .prefix(servers::unique_namespace(&format!("lock:{test}")))
        .connect()
        .await
        .expect("a valid configuration");
    let health = backend.health_check(Duration::from_secs(5)).await;
    assert_eq!(
        health.status,
        HealthStatus::Healthy,
        "the memcached test servers are not healthy ({:?}): {}",
        health.reason,
        servers::HOW_TO_START
    );
    Arc::new(MemcachedLockStore::new(&backend))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_holder_loses_the_lock_to_a_second_owner() {
    let store = store("paused").await;
    support::paused_holder_loses_the_lock_to_a_second_owner(store, "r", TIMING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_renewal_finds_the_lock_taken() {
    let store = store("late").await;
    support::late_renewal_finds_the_lock_taken(store, "r", TIMING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lease_ends_renewal() {
    let store = store("max-lease").await;
    support::max_lease_ends_renewal(store, "r", TIMING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_cycles_leave_no_locks() {
    let store = store("cycles").await;
    support::many_cycles_leave_no_locks(store, "cycle", TIMING).await;
}
