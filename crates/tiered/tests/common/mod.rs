//! What the tiered test binaries share: Redis connections to the local server (from
//! `LEXICACHE_TEST_REDIS_URL`, set by `cargo xtask services up` / `cargo xtask test`) and
//! tiered backends over them.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_tiered::TieredBackend;

/// How long a backend may take to start serving L1 before a test fails.
pub const READY: Duration = Duration::from_secs(10);

/// A new connection to the local standalone Redis; fails with how to start it.
pub async fn redis() -> RedisBackend {
    let url = lexicache_testkit::servers::redis_url();
    RedisBackend::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "redis at {url}: {e}; {}",
            lexicache_testkit::servers::HOW_TO_START
        )
    })
}

/// A tiered backend over `redis` with invalidation by its pub/sub, serving L1.
pub async fn tiered_over(redis: RedisBackend) -> TieredBackend {
    tiered_with(redis, |b| b).await
}

/// As [`tiered_over`], with extra builder settings.
pub async fn tiered_with(
    redis: RedisBackend,
    settings: impl FnOnce(
        lexicache_tiered::TieredBackendBuilder,
    ) -> lexicache_tiered::TieredBackendBuilder,
) -> TieredBackend {
    let pubsub = Arc::new(redis.pubsub());
    let tiered = settings(
        TieredBackend::builder(MemoryBackend::new(), Arc::new(redis)).invalidation(pubsub),
    )
    .build()
    .await
    .expect("a tiered backend over redis builds");
    assert!(
        tiered.wait_until_serving(READY).await,
        "the tiered backend did not start serving L1 within {READY:?}: {tiered:?}"
    );
    tiered
}

/// A namespace no other test uses.
pub fn unique(name: &str) -> String {
    lexicache_testkit::servers::unique_namespace(name)
}

/// The local cluster's nodes (`LEXICACHE_TEST_REDIS_CLUSTER`), all on loopback.
pub fn cluster_nodes() -> Vec<(String, u16)> {
    let list = std::env::var("LEXICACHE_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        panic!(
            "LEXICACHE_TEST_REDIS_CLUSTER is not set: {}",
            lexicache_testkit::servers::HOW_TO_START
        )
    });
    list.split(',')
        .map(|a| {
            let (host, port) = a.trim().rsplit_once(':').expect("host:port");
            assert_eq!(host, "127.0.0.1", "tests only talk to 127.0.0.1");
            (host.to_owned(), port.parse().expect("a port"))
        })
        .collect()
}
