//! A dead or silent Redis: every call ends quickly with a `Connection` or `Timeout` error, and
//! `CacheService` turns it into its default. Nothing hangs.
//!
//! The elapsed-time bounds are correctness bounds (the command timeout plus generous slack, so
//! a hang fails the test), not performance measurements.

use std::time::{Duration, Instant};

use lexicache_core::{Bytes, CacheBackend, ErrorKind};
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use tokio::net::TcpListener;

const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a loaded two-core machine; a hang would blow far past it.
const SLACK: Duration = Duration::from_secs(2);

/// A loopback port nothing listens on: bound, read, and released.
async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// A loopback port that accepts connections and never answers on them.
async fn blackhole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

fn builder(port: u16) -> lexicache_redis::RedisBackendBuilder {
    RedisBackend::builder()
        .standalone("127.0.0.1", port)
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
}

/// Runs `get` through a `CacheService` and checks it returns the default within the bound.
async fn service_get_returns_default_in_time(backend: RedisBackend) {
    let cache = CacheService::builder(backend).build();
    for _ in 0..3 {
        let started = Instant::now();
        let got: Option<String> = cache.get("user:1").await;
        let took = started.elapsed();
        assert_eq!(got, None, "a dead server reads as the default");
        assert!(
            took < COMMAND_TIMEOUT + SLACK,
            "get took {took:?}, over the command timeout {COMMAND_TIMEOUT:?} plus slack"
        );
        let started = Instant::now();
        assert!(!cache.set("user:1", &"alice".to_owned(), None).await);
        assert!(started.elapsed() < COMMAND_TIMEOUT + SLACK);
    }
    assert!(
        cache.metrics().errors > 0,
        "the failures are counted: {:?}",
        cache.metrics()
    );
}

#[tokio::test]
async fn unreachable_port_makes_service_get_return_the_default_in_time() {
    let backend = builder(dead_port().await)
        .connect_lazy()
        .expect("a lazy backend");
    let err = backend.get("k").await.expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.is_retryable());
    service_get_returns_default_in_time(backend).await;
}

#[tokio::test]
async fn silent_server_makes_service_get_return_the_default_in_time() {
    let backend = builder(blackhole().await)
        .connect_lazy()
        .expect("a lazy backend");
    let started = Instant::now();
    let err = backend
        .get("k")
        .await
        .expect_err("the server never answers");
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{err}"
    );
    assert!(started.elapsed() < COMMAND_TIMEOUT + SLACK);
    service_get_returns_default_in_time(backend).await;
}

#[tokio::test]
async fn without_fail_fast_a_dead_server_costs_at_most_the_command_timeout() {
    let backend = builder(dead_port().await)
        .fail_fast(false)
        .connect_lazy()
        .expect("a lazy backend");
    let started = Instant::now();
    let err = backend
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .expect_err("nothing listens");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(took < COMMAND_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test]
async fn connect_to_an_unreachable_or_silent_server_fails_in_time() {
    for port in [dead_port().await, blackhole().await] {
        let started = Instant::now();
        let err = builder(port)
            .connect()
            .await
            .expect_err("no redis answers there");
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{err}"
        );
        assert!(
            started.elapsed() < 4 * CONNECT_TIMEOUT + SLACK,
            "connect took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn health_of_an_unreachable_server_is_unhealthy_within_its_timeout() {
    let backend = builder(dead_port().await)
        .connect_lazy()
        .expect("a lazy backend");
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let health = backend.health_check(timeout).await;
    assert_eq!(health.status, lexicache_core::HealthStatus::Unhealthy);
    assert!(health.reason.is_some());
    assert!(health.latency <= timeout);
    assert_eq!(health.details["connected"], "false");
    assert!(started.elapsed() < timeout + SLACK);
}

#[tokio::test]
async fn bad_settings_are_config_errors() {
    let err = RedisBackend::builder()
        .url("redis://127.0.0.1:notaport")
        .connect_lazy()
        .expect_err("a malformed URL");
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = RedisBackend::builder()
        .cluster(Vec::<(String, u16)>::new())
        .connect_lazy()
        .expect_err("a cluster without nodes");
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = RedisBackend::builder()
        .max_value_size(600 * 1024 * 1024)
        .connect_lazy()
        .expect_err("a value limit redis cannot honour");
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn building_outside_a_tokio_runtime_is_a_config_error() {
    let err = RedisBackend::builder()
        .connect_lazy()
        .expect_err("no runtime to run the connection on");
    assert_eq!(err.kind(), ErrorKind::Config);
}
