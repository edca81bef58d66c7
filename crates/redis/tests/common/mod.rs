//! What the Redis test binaries share: the server addresses from the environment (set by
//! `cargo xtask services up` / `cargo xtask test`), connected backends and raw fred clients.
//!
//! A variable that is unset, or a server that does not answer, fails the test with a message
//! saying how to start the servers; nothing is skipped.
#![allow(dead_code, unreachable_pub)]

use std::time::{SystemTime, UNIX_EPOCH};

use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::ClientLike;
use lexicache_redis::fred::types::config::Config;
use lexicache_redis::fred::types::Builder;
use lexicache_redis::{RedisBackend, RedisBackendBuilder};

const HOW: &str = "run `cargo xtask services up`, then export the variables it prints \
                   (or run the whole suite with `cargo xtask test`)";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW}"))
}

/// `host:port` pairs from a comma-separated list, all required to be on loopback.
fn addresses(name: &str, list: &str) -> Vec<(String, u16)> {
    list.split(',')
        .map(|a| {
            let (host, port) = a
                .trim()
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{name}: {a:?} is not host:port"));
            assert_eq!(host, "127.0.0.1", "{name}: tests only talk to 127.0.0.1");
            let port = port
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad port in {a:?}"));
            (host.to_owned(), port)
        })
        .collect()
}

/// The standalone server's URL (`LEXICACHE_TEST_REDIS_URL`).
pub fn standalone_url() -> String {
    lexicache_testkit::servers::redis_url()
}

/// The cluster's nodes (`LEXICACHE_TEST_REDIS_CLUSTER`).
pub fn cluster_nodes() -> Vec<(String, u16)> {
    let name = "LEXICACHE_TEST_REDIS_CLUSTER";
    addresses(name, &var(name))
}

/// The sentinels and the master name (`LEXICACHE_TEST_REDIS_SENTINEL`, and
/// `LEXICACHE_TEST_REDIS_SENTINEL_MASTER`, default `lexicache`).
pub fn sentinel() -> (Vec<(String, u16)>, String) {
    let name = "LEXICACHE_TEST_REDIS_SENTINEL";
    let master = std::env::var("LEXICACHE_TEST_REDIS_SENTINEL_MASTER")
        .unwrap_or_else(|_| "lexicache".to_owned());
    (addresses(name, &var(name)), master)
}

/// A builder for the standalone server.
pub fn standalone_builder() -> RedisBackendBuilder {
    RedisBackend::builder().url(&standalone_url())
}

/// A builder for the cluster.
pub fn cluster_builder() -> RedisBackendBuilder {
    RedisBackend::builder().cluster(cluster_nodes())
}

/// A builder for the primary behind the sentinel.
pub fn sentinel_builder() -> RedisBackendBuilder {
    let (sentinels, master) = sentinel();
    RedisBackend::builder().sentinel(sentinels, master)
}

/// Connects `builder`, failing the test with directions when the server does not answer.
pub async fn connect(builder: RedisBackendBuilder, what: &str) -> RedisBackend {
    builder
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the {what}: {e}; {HOW}"))
}

pub async fn standalone() -> RedisBackend {
    connect(standalone_builder(), "standalone redis").await
}

pub async fn cluster() -> RedisBackend {
    connect(cluster_builder(), "redis cluster").await
}

pub async fn sentinel_backend() -> RedisBackend {
    connect(sentinel_builder(), "redis sentinel").await
}

async fn raw(config: Config, what: &str) -> Client {
    let client = Builder::from_config(config)
        .build()
        .expect("a raw fred client");
    client
        .init()
        .await
        .unwrap_or_else(|e| panic!("cannot connect a raw client to the {what}: {e}; {HOW}"));
    client
}

/// A plain fred client on the standalone server, to check what the backend really wrote.
pub async fn raw_standalone() -> Client {
    raw(
        Config::from_url(&standalone_url()).expect("a valid URL"),
        "standalone redis",
    )
    .await
}

/// A plain fred client on the cluster.
pub async fn raw_cluster() -> Client {
    let nodes = cluster_nodes();
    let (first, rest) = nodes.split_first().expect("at least one cluster node");
    let mut url = format!("redis-cluster://{}:{}", first.0, first.1);
    for (i, (h, p)) in rest.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&format!("node={h}:{p}"));
    }
    raw(
        Config::from_url(&url).expect("a valid URL"),
        "redis cluster",
    )
    .await
}

/// A key prefix no other test, run or process uses.
pub fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "lexicache-redis-test:{:x}-{nanos:x}:{test}:",
        std::process::id()
    )
}
