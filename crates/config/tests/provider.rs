//! `CacheProvider` against the local servers: memory, Redis and memcached from one YAML
//! string; lookup, health, metrics, shutdown; the stub.

use std::time::Duration;

use lexicache_config::{BackendType, CacheConfig, CacheProvider, ConfigError};
use lexicache_core::{ErrorKind, HealthStatus};
use lexicache_testkit::servers;

/// One YAML string for all three kinds, each namespaced for this test, and a disabled
/// backend pointing at a port where nothing listens.
fn three_backends_yaml(label: &str) -> String {
    let redis = servers::redis_url();
    let memcached = servers::memcached_servers().join(",");
    let ns = servers::unique_namespace(label);
    format!(
        r#"
backends:
  - type: memory
    name: hot
    default: true
    max_entries: 1000
  - type: redis
    name: shared
    url: "{redis}"
    prefix: "{ns}redis:"
  - type: memcached
    name: sessions
    servers: "{memcached}"
    prefix: "{ns}mc:"
  - type: redis
    name: offline
    enabled: false
    host: 127.0.0.1
    port: 1
service:
  timeout: 2s
  circuit_breaker:
    enabled: true
"#
    )
}

#[tokio::test]
async fn memory_redis_and_memcached_from_one_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.yaml");
    std::fs::write(&path, three_backends_yaml("provider-three")).unwrap();
    let config = CacheConfig::from_yaml(&path).unwrap();
    let provider = CacheProvider::from_config(&config).await.unwrap();

    assert_eq!(
        provider.names().collect::<Vec<_>>(),
        ["hot", "shared", "sessions"],
        "the disabled backend is skipped"
    );
    assert_eq!(provider.default_name(), Some("hot"));
    assert_eq!(provider.kind("shared"), Some(BackendType::Redis));
    assert_eq!(provider.kind("sessions"), Some(BackendType::Memcached));

    for name in ["hot", "shared", "sessions"] {
        let service = provider.service(name).unwrap();
        service
            .try_set("user:1", &format!("alice@{name}"), None)
            .await
            .unwrap();
        assert_eq!(
            service.try_get::<String>("user:1").await.unwrap(),
            Some(format!("alice@{name}")),
            "{name}"
        );
        assert_eq!(service.try_get::<String>("user:2").await.unwrap(), None);
    }

    let metrics = provider.metrics();
    assert_eq!(metrics.services.len(), 3);
    assert_eq!(metrics.total.sets, 3);
    assert_eq!(metrics.total.hits, 3);
    assert_eq!(metrics.total.misses, 3);
    assert!((metrics.total.hit_rate - 0.5).abs() < 1e-9);

    // Each service has its own store.
    provider
        .service("shared")
        .unwrap()
        .try_delete("user:1")
        .await
        .unwrap();
    assert!(provider.service("sessions").unwrap().exists("user:1").await);

    let health = provider.health(Duration::from_secs(2)).await;
    assert_eq!(health.backends.len(), 3);
    assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
    assert_eq!(
        health
            .backends
            .iter()
            .map(|h| h.backend.as_str())
            .collect::<Vec<_>>(),
        ["hot", "shared", "sessions"]
    );

    for name in ["shared", "sessions"] {
        provider
            .service(name)
            .unwrap()
            .try_delete("user:1")
            .await
            .unwrap();
    }
    provider.shutdown().await;
}

#[tokio::test]
async fn an_unknown_backend_name_is_a_typed_error() {
    let provider = CacheProvider::stub();
    let err = provider.service("nope").unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownBackend {
            name: "nope".into(),
            known: "`memory`".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "no backend named `nope`; the enabled backends are: `memory`"
    );
}

#[tokio::test]
async fn the_stub_is_one_in_memory_default_service() {
    let provider = CacheProvider::stub();
    let cache = provider.default_service().unwrap();
    assert!(cache.set("k", &7u32, None).await);
    assert_eq!(cache.get::<u32>("k").await, Some(7));
    assert_eq!(provider.kind("memory"), Some(BackendType::Memory));
    assert!(provider.health(Duration::from_secs(1)).await.is_healthy());
    provider.shutdown().await;
}

#[tokio::test]
async fn a_disabled_config_builds_no_services() {
    let config = CacheConfig::from_yaml_str("enabled: false\n").unwrap();
    let provider = CacheProvider::from_config(&config).await.unwrap();
    assert!(provider.default_service().is_none());
    assert_eq!(provider.names().count(), 0);
    assert!(provider.service("memory").is_err());
}

#[tokio::test]
async fn an_unreachable_backend_fails_from_config_with_a_connection_error() {
    let config = CacheConfig::from_yaml_str(
        "backends:\n  - type: memory\n    name: hot\n    default: true\n  - type: redis\n    \
         name: down\n    port: 1\n    connect_timeout: 300ms\n",
    )
    .unwrap();
    let err = CacheProvider::from_config(&config).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{err:?}"
    );
    assert_eq!(err.backend(), "down");
}

#[tokio::test]
async fn an_invalid_config_is_a_config_error() {
    let mut config = CacheConfig::default();
    config.backends.clear();
    let err = CacheProvider::from_config(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn clear_on_start_clears_the_backend_namespace() {
    let ns = servers::unique_namespace("provider-clear");
    let yaml = |clear: bool| {
        format!(
            "backends:\n  - type: redis\n    url: \"{}\"\n    prefix: \"{ns}\"\n    \
             clear_on_start: {clear}\n",
            servers::redis_url()
        )
    };
    let first = CacheProvider::from_config(&CacheConfig::from_yaml_str(&yaml(false)).unwrap())
        .await
        .unwrap();
    first
        .default_service()
        .unwrap()
        .try_set("k", &1u8, None)
        .await
        .unwrap();
    first.shutdown().await;

    let kept = CacheProvider::from_config(&CacheConfig::from_yaml_str(&yaml(false)).unwrap())
        .await
        .unwrap();
    assert!(kept.default_service().unwrap().exists("k").await);
    kept.shutdown().await;

    let cleared = CacheProvider::from_config(&CacheConfig::from_yaml_str(&yaml(true)).unwrap())
        .await
        .unwrap();
    assert!(!cleared.default_service().unwrap().exists("k").await);
    cleared.shutdown().await;
}

#[tokio::test]
async fn the_configured_serializer_signs_values() {
    let ns = servers::unique_namespace("provider-signed");
    let yaml = format!(
        "backends:\n  - type: redis\n    url: \"{}\"\n    prefix: \"{ns}\"\nservice:\n  \
         serializer:\n    type: signed\n    format: postcard\n    compression: true\n    keys:\n      \
         - id: 3\n        key: \"{}\"\n",
        servers::redis_url(),
        "s".repeat(32)
    );
    let provider = CacheProvider::from_config(&CacheConfig::from_yaml_str(&yaml).unwrap())
        .await
        .unwrap();
    let cache = provider.default_service().unwrap();
    let value: Vec<u64> = (0..2000).collect();
    cache.try_set("v", &value, None).await.unwrap();
    assert_eq!(cache.try_get::<Vec<u64>>("v").await.unwrap(), Some(value));
    // The stored bytes are not plain: a value planted without the key is a miss.
    cache
        .backend()
        .set("v", lexicache_core::Bytes::from_static(b"[1,2,3]"), None)
        .await
        .unwrap();
    assert_eq!(cache.get::<Vec<u64>>("v").await, None);
    cache.try_delete("v").await.unwrap();
    provider.shutdown().await;
}

#[test]
fn shutdown_leaves_no_task_running() {
    assert_shutdown_leaves_no_task(
        &three_backends_yaml("provider-shutdown"),
        &["hot", "shared", "sessions"],
    );
}

#[test]
fn shutdown_stops_tiered_backends_tasks_and_subscriptions() {
    let redis = servers::redis_url();
    let memcached = servers::memcached_servers().join(",");
    let ns = servers::unique_namespace("provider-shutdown-tiered");
    let yaml = format!(
        r#"
backends:
  - type: tiered
    name: near
    default: true
    l2: {{ type: redis, url: "{redis}", prefix: "{ns}" }}
  - type: tiered
    name: local
    invalidation: none
    l2: {{ type: memcached, servers: "{memcached}", prefix: "{ns}" }}
"#
    );
    assert_shutdown_leaves_no_task(&yaml, &["near", "local"]);
}

/// Builds a provider from `yaml` on a runtime of its own, writes through each of `names`,
/// shuts it down, and asserts that no task is left on the runtime within 5 s.
fn assert_shutdown_leaves_no_task(yaml: &str, names: &[&str]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = CacheConfig::from_yaml_str(yaml).unwrap();
        let provider = CacheProvider::from_config(&config).await.unwrap();
        for name in names {
            let cache = provider.service(name).unwrap();
            cache.try_set("k", &1u8, None).await.unwrap();
            cache.try_delete("k").await.unwrap();
        }
        assert!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                > 0,
            "Redis runs connection and event tasks while connected"
        );
        provider.shutdown().await;
    });
    // Closing connections is asynchronous: give the tasks a bounded moment to see it.
    let metrics = runtime.metrics();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > 0 && std::time::Instant::now() < deadline {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    }
    assert_eq!(metrics.num_alive_tasks(), 0, "tasks left after shutdown");
}

/// A test server variable: a loopback address list, or a panic saying how to start it.
fn loopback_var(name: &str) -> String {
    let value = std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: {}", servers::HOW_TO_START);
    });
    for addr in value.split(',') {
        assert!(
            addr.trim().starts_with("127.0.0.1:"),
            "{name}: tests only talk to 127.0.0.1, got {addr}"
        );
    }
    value
}

#[tokio::test]
async fn cluster_and_sentinel_modes_connect_from_nodes() {
    let cluster = loopback_var("LEXICACHE_TEST_REDIS_CLUSTER");
    let sentinel = loopback_var("LEXICACHE_TEST_REDIS_SENTINEL");
    let master = std::env::var("LEXICACHE_TEST_REDIS_SENTINEL_MASTER")
        .unwrap_or_else(|_| "lexicache".to_owned());
    let ns = servers::unique_namespace("provider-modes");
    let yaml = format!(
        r#"
backends:
  - type: redis
    name: cluster
    default: true
    mode: cluster
    nodes: "{cluster}"
    prefix: "{ns}"
  - type: redis
    name: sentinel
    mode: sentinel
    nodes: "{sentinel}"
    sentinel_master: {master}
    prefix: "{ns}"
"#
    );
    let provider = CacheProvider::from_config(&CacheConfig::from_yaml_str(&yaml).unwrap())
        .await
        .unwrap();
    for name in ["cluster", "sentinel"] {
        let cache = provider.service(name).unwrap();
        for i in 0..10 {
            cache.try_set(&format!("k{i}"), &i, None).await.unwrap();
        }
        for i in 0..10 {
            assert_eq!(
                cache.try_get::<u32>(&format!("k{i}")).await.unwrap(),
                Some(i),
                "{name}"
            );
        }
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(cache.try_delete_many(&keys).await.unwrap(), 10, "{name}");
    }
    assert!(provider.health(Duration::from_secs(2)).await.is_healthy());
    provider.shutdown().await;
}
