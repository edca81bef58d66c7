//! The store scenarios of `support` on the Redis lock store, against the standalone test server
//! (`LEXICACHE_TEST_REDIS_URL`), on the real clock: Redis keeps time, tokio cannot pause it.
//!
//! TTLs are 300 ms, so the file runs in a few seconds. An unset variable or a server that does
//! not answer fails the tests with how to start it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::SharedLockStore;
use lexicache_redis::{RedisBackend, RedisLockStore};
use lexicache_testkit::servers;
use support::Timing;

const TIMING: Timing = Timing {
    ttl: Duration::from_millis(300),
    // Redis counts a TTL from the command's arrival, a little after the client's start.
    expiry_slack: Duration::from_millis(100),
};

/// A lock store in a namespace of its own on the standalone server.
async fn store(test: &str) -> SharedLockStore {
    let url = servers::redis_url();
    let backend = RedisBackend::builder()
        .url(&url)
        .prefix(servers::unique_namespace(&format!("lock:{test}")))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    Arc::new(RedisLockStore::new(&backend))
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
