//! `type: tiered`: parsing, defaults, the rules of its `l1` and `l2` sections, and the provider
//! building tiered services against the local Redis and memcached servers.

use std::time::Duration;

use lexicache_config::{
    BackendType, CacheBackendConfig, CacheConfig, CacheProvider, ConfigError, ConfigLoader,
    Location, MemcachedBackendConfig, RedisBackendConfig, TieredBackendConfig, TieredInvalidation,
    TieredL1Config, DEFAULT_L1_TTL, DEFAULT_MAX_STALENESS,
};
use lexicache_core::{CacheBackend, HealthStatus};
use lexicache_testkit::servers;

fn yaml_err(yaml: &str) -> ConfigError {
    CacheConfig::from_yaml_str(yaml).expect_err("the config should be refused")
}

fn at(field: &str) -> Location {
    Location {
        field: field.to_owned(),
        source: "YAML source string".to_owned(),
    }
}

fn tiered(config: &CacheConfig, i: usize) -> &TieredBackendConfig {
    match &config.backends[i] {
        CacheBackendConfig::Tiered(t) => t,
        other => panic!("backend {i} is not tiered: {other:?}"),
    }
}

const FULL: &str = r#"
backends:
  - type: tiered
    name: hot
    default: true
    clear_on_start: true
    l1_ttl: 45s
    max_staleness: 250ms
    heartbeat_interval: 50ms
    invalidation: auto
    l1:
      max_entries: 10000
      max_value_size: 4096
    l2:
      type: redis
      url: redis://127.0.0.1:6390
      prefix: "app:"
      default_ttl: 1h
      command_timeout: 250ms
"#;

#[test]
fn a_full_tiered_section_parses_every_field() {
    let config = CacheConfig::from_yaml_str(FULL).unwrap();
    let t = tiered(&config, 0);
    assert_eq!(t.name, "hot");
    assert!(t.enabled && t.default && t.clear_on_start);
    assert_eq!(t.l1_ttl, Duration::from_secs(45));
    assert_eq!(t.max_staleness, Some(Duration::from_millis(250)));
    assert_eq!(t.heartbeat_interval, Some(Duration::from_millis(50)));
    assert_eq!(t.invalidation, TieredInvalidation::Auto);
    assert!(t.invalidates());
    assert_eq!(
        t.l1,
        TieredL1Config {
            max_entries: Some(10_000),
            max_bytes: None,
            max_value_size: Some(4096),
        }
    );
    let CacheBackendConfig::Redis(l2) = &*t.l2 else {
        panic!("l2 is redis: {:?}", t.l2);
    };
    assert_eq!(l2.url.as_deref(), Some("redis://127.0.0.1:6390"));
    assert_eq!(l2.command_timeout, Duration::from_millis(250));

    let backend = &config.backends[0];
    assert_eq!(backend.kind(), BackendType::Tiered);
    assert_eq!(backend.name(), "hot");
    assert_eq!(backend.prefix(), "app:", "the L2's prefix");
    assert_eq!(backend.default_ttl(), Some(Duration::from_secs(3600)));
    assert_eq!(config.default_backend().map(|b| b.name()), Some("hot"));
}

#[test]
fn omitted_tiered_fields_take_the_tiered_crates_defaults() {
    let config =
        CacheConfig::from_yaml_str("backends:\n  - type: tiered\n    l2: { type: redis }\n")
            .unwrap();
    let t = tiered(&config, 0);
    assert_eq!(t.name, "tiered");
    assert!(t.enabled && !t.default && !t.clear_on_start);
    assert_eq!(t.l1_ttl, DEFAULT_L1_TTL);
    assert_eq!(t.l1_ttl, lexicache_tiered::DEFAULT_L1_TTL);
    assert_eq!(t.max_staleness, None);
    assert_eq!(t.max_staleness(), DEFAULT_MAX_STALENESS);
    assert_eq!(t.max_staleness(), lexicache_tiered::DEFAULT_MAX_STALENESS);
    assert_eq!(t.heartbeat_interval, None);
    assert_eq!(t.invalidation, TieredInvalidation::Auto);
    assert_eq!(t.l1, TieredL1Config::default());
    assert_eq!(
        *t.l2,
        CacheBackendConfig::Redis(RedisBackendConfig::default())
    );
    assert_eq!(
        *t,
        TieredBackendConfig::new(CacheBackendConfig::Redis(RedisBackendConfig::default()))
    );
}

#[test]
fn tiered_durations_take_every_duration_form() {
    let config = CacheConfig::from_yaml_str(
        "backends:\n  - type: tiered\n    l1_ttl: 1m30s\n    max_staleness: 0.25\n    \
         heartbeat_interval: 100ms\n    l2: { type: redis }\n",
    )
    .unwrap();
    let t = tiered(&config, 0);
    assert_eq!(t.l1_ttl, Duration::from_secs(90));
    assert_eq!(t.max_staleness(), Duration::from_millis(250));
    assert_eq!(t.heartbeat_interval, Some(Duration::from_millis(100)));
    let err = yaml_err("backends:\n  - type: tiered\n    l1_ttl: soon\n    l2: { type: redis }\n");
    assert_eq!(
        err.to_string(),
        "`backends.0.l1_ttl` (from YAML source string): `soon` is not a duration; write e.g. \
         \"30s\" or \"500ms\""
    );
}

#[test]
fn an_unknown_field_in_l1_l2_or_the_tiered_section_is_rejected_by_name() {
    let err =
        yaml_err("backends:\n  - type: tiered\n    l1: { bogus: 1 }\n    l2: { type: redis }\n");
    assert_eq!(
        err,
        ConfigError::UnknownField {
            at: at("backends.0.l1.bogus"),
            field: "bogus".into(),
            expected: "`max_entries`, `max_bytes`, `max_value_size`".into(),
        }
    );

    // The fields l2 does not take (`name`, `enabled`, ...) are not offered.
    let err = yaml_err("backends:\n  - type: tiered\n    l2: { type: redis, bogus: 1 }\n");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "`backends.0.l2.bogus` (from YAML source string): unknown field `bogus`; expected one \
             of `prefix`, `default_ttl`, `max_value_size`, `url`,"
        ),
        "{text}"
    );

    let err = yaml_err("backends:\n  - type: tiered\n    bogus: 1\n    l2: { type: redis }\n");
    assert_eq!(
        err.to_string(),
        "`backends.0.bogus` (from YAML source string): unknown field `bogus`; expected one of \
         `name`, `enabled`, `default`, `clear_on_start`, `l1_ttl`, `max_staleness`, \
         `heartbeat_interval`, `invalidation`, `l1`, `l2`"
    );

    // A field of another backend type inside l2 says so, at its nested path.
    let err = yaml_err("backends:\n  - type: tiered\n    l2: { type: redis, servers: [a:1] }\n");
    assert!(
        matches!(&err, ConfigError::ForeignField { at: loc, .. } if *loc == at("backends.0.l2.servers")),
        "{err:?}"
    );
    // And a tiered field on another type names the tiered type.
    let err = yaml_err("backends:\n  - type: redis\n    l1_ttl: 1s\n");
    assert!(
        err.to_string().contains("it belongs to tiered backends"),
        "{err}"
    );
}

#[test]
fn fields_in_the_wrong_tiered_section_say_where_they_go() {
    let cases = [
        (
            "backends:\n  - type: tiered\n    prefix: a\n    l2: { type: redis }\n",
            "backends.0.prefix",
            "`prefix` of a tiered backend goes in its `l2` section (L1 holds copies of L2's \
             entries, under L2's keys and TTLs)",
        ),
        (
            "backends:\n  - type: tiered\n    default_ttl: 1m\n    l2: { type: redis }\n",
            "backends.0.default_ttl",
            "`default_ttl` of a tiered backend goes in its `l2` section (L1 holds copies of \
             L2's entries, under L2's keys and TTLs)",
        ),
        (
            "backends:\n  - type: tiered\n    max_entries: 5\n    l2: { type: redis }\n",
            "backends.0.max_entries",
            "`max_entries` bounds a tiered backend's L1: put it in its `l1` section",
        ),
        (
            "backends:\n  - type: tiered\n    url: redis://127.0.0.1:6390\n    l2: { type: redis }\n",
            "backends.0.url",
            "`url` is a setting of the shared level: put it in the tiered backend's `l2` \
             section, beside `type`",
        ),
        (
            "backends:\n  - type: tiered\n    l2: { type: redis, name: shared }\n",
            "backends.0.l2.name",
            "`name` is not a setting of `l2`: the tiered backend's own `name` (beside `l2`) \
             counts; remove it from `l2`",
        ),
        (
            "backends:\n  - type: tiered\n    l2: { type: memory, default: true }\n",
            "backends.0.l2.default",
            "`default` is not a setting of `l2`: the tiered backend's own `default` (beside \
             `l2`) counts; remove it from `l2`",
        ),
        (
            "backends:\n  - type: tiered\n    l2: { type: redis, enabled: false }\n",
            "backends.0.l2.enabled",
            "`enabled` is not a setting of `l2`: the tiered backend's own `enabled` (beside \
             `l2`) counts; remove it from `l2`",
        ),
        (
            "backends:\n  - type: tiered\n    l1: { name: x }\n    l2: { type: redis }\n",
            "backends.0.l1.name",
            "`name` is not a setting of `l1`: set it on the tiered backend itself, beside `l1`",
        ),
        (
            "backends:\n  - type: tiered\n    l1: { prefix: x }\n    l2: { type: redis }\n",
            "backends.0.l1.prefix",
            "`prefix` is not a setting of `l1` (L1 holds L2's keys and TTLs): set it in `l2`",
        ),
    ];
    for (yaml, field, hint) in cases {
        let err = yaml_err(yaml);
        let ConfigError::Misplaced {
            at: loc, hint: h, ..
        } = &err
        else {
            panic!("{yaml}: {err:?}");
        };
        assert_eq!(*loc, at(field), "{yaml}");
        assert_eq!(h, hint, "{yaml}");
    }
}

#[test]
fn an_l2_of_type_tiered_is_refused() {
    let err = yaml_err(
        "backends:\n  - type: tiered\n    l2:\n      type: tiered\n      l2: { type: redis }\n",
    );
    assert_eq!(
        err.to_string(),
        "`backends.0.l2.type` (from YAML source string): `l2` cannot be a tiered backend; give \
         it `type: redis`, `memcached` or `memory`"
    );
    let err = yaml_err("backends:\n  - type: tiered\n    l2: { prefix: x }\n");
    assert_eq!(
        err.to_string(),
        "`backends.0.l2.type` (from the defaults): missing; `l2` needs `type`: redis, \
         memcached or memory"
    );
    let err = yaml_err("backends:\n  - type: tiered\n    l1_ttl: 5s\n");
    assert_eq!(
        err.to_string(),
        "`backends.0.l2` (from the defaults): missing; a tiered backend needs `l2`, the shared \
         level: a redis, memcached or memory section with its `type`"
    );
}

#[test]
fn a_memcached_l2_without_invalidation_none_is_refused_with_what_none_means() {
    let yaml = |invalidation: &str| {
        format!(
            "backends:\n  - type: tiered\n    l1_ttl: 10s\n{invalidation}    l2:\n      type: \
             memcached\n      servers: [127.0.0.1:11290]\n"
        )
    };
    let err = yaml_err(&yaml(""));
    assert_eq!(
        err.to_string(),
        "`backends.0.invalidation` (from the defaults): a tiered backend over memcached has no \
         invalidation channel (only a Redis `l2` can tell other processes what changed); write \
         `invalidation: none` to accept that other processes' changes reach this process's L1 \
         only when its copy expires (after at most `l1_ttl`, 10s here), or use a Redis `l2`"
    );
    let err = yaml_err(&yaml("    invalidation: auto\n"));
    assert!(
        matches!(&err, ConfigError::NoInvalidationChannel { at: loc, .. } if *loc == at("backends.0.invalidation")),
        "{err:?}"
    );
    let config = CacheConfig::from_yaml_str(&yaml("    invalidation: none\n")).unwrap();
    assert!(!tiered(&config, 0).invalidates());

    // A memory L2 cannot publish either.
    let err = yaml_err("backends:\n  - type: tiered\n    l2: { type: memory }\n");
    assert!(
        matches!(&err, ConfigError::NoInvalidationChannel { l2_type, .. } if l2_type == "memory"),
        "{err:?}"
    );
}

#[test]
fn channel_settings_are_refused_without_a_channel() {
    for field in ["max_staleness: 1s", "heartbeat_interval: 10ms"] {
        let err = yaml_err(&format!(
            "backends:\n  - type: tiered\n    invalidation: none\n    {field}\n    l2: {{ type: \
             memory }}\n"
        ));
        let name = field.split(':').next().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "`backends.0.{name}` (from YAML source string): cannot be set together with \
                 `backends.0.invalidation`; `{name}` tunes the invalidation channel; with \
                 `invalidation: none` other processes' changes show after at most `l1_ttl`: \
                 remove `{name}`"
            )
        );
    }
}

#[test]
fn tiered_numbers_out_of_range_are_refused_at_their_nested_path() {
    let cases = [
        ("l1_ttl: 0s\n    l2: { type: redis }", "backends.0.l1_ttl"),
        (
            "max_staleness: 0s\n    l2: { type: redis }",
            "backends.0.max_staleness",
        ),
        (
            "max_staleness: 100ms\n    heartbeat_interval: 100ms\n    l2: { type: redis }",
            "backends.0.heartbeat_interval",
        ),
        (
            "l1: { max_entries: 0 }\n    l2: { type: redis }",
            "backends.0.l1.max_entries",
        ),
        (
            "l1: { max_value_size: 0 }\n    l2: { type: redis }",
            "backends.0.l1.max_value_size",
        ),
        ("l2: { type: redis, port: 0 }", "backends.0.l2.port"),
        (
            "l2: { type: redis, default_ttl: 0s }",
            "backends.0.l2.default_ttl",
        ),
    ];
    for (body, field) in cases {
        let err = yaml_err(&format!("backends:\n  - type: tiered\n    {body}\n"));
        assert!(
            matches!(&err, ConfigError::OutOfRange { at: loc, .. } if *loc == at(field)),
            "{body}: {err:?}"
        );
    }
    let err = yaml_err(
        "backends:\n  - type: tiered\n    l1: { max_entries: 1, max_bytes: 1 }\n    l2: { type: \
         redis }\n",
    );
    assert!(
        matches!(&err, ConfigError::Conflict { at: loc, .. } if *loc == at("backends.0.l1.max_bytes")),
        "{err:?}"
    );
    let err =
        yaml_err("backends:\n  - type: tiered\n    l2: { type: redis, url: \"redis://u@:x\" }\n");
    assert!(
        matches!(&err, ConfigError::InvalidUrl { at: loc, .. } if *loc == at("backends.0.l2.url")),
        "{err:?}"
    );
}

#[test]
fn clear_on_start_over_memcached_and_in_production_is_refused() {
    let err = yaml_err(
        "backends:\n  - type: tiered\n    clear_on_start: true\n    invalidation: none\n    l2: { \
         type: memcached, servers: [127.0.0.1:11290] }\n",
    );
    assert!(
        matches!(&err, ConfigError::Conflict { at: loc, .. } if *loc == at("backends.0.clear_on_start")),
        "{err:?}"
    );
    let err = yaml_err(
        "environment: production\nbackends:\n  - type: tiered\n    clear_on_start: true\n    \
         l2: { type: redis, password: pw }\n",
    );
    assert_eq!(
        err,
        ConfigError::ClearOnStart {
            at: at("backends.0.clear_on_start")
        }
    );
}

#[test]
fn production_refuses_an_unauthenticated_remote_redis_l2() {
    let err = yaml_err(
        "environment: production\nbackends:\n  - type: tiered\n    l2: { type: redis, host: \
         redis.internal }\n",
    );
    assert_eq!(
        err,
        ConfigError::InsecureRedis {
            at: at("backends.0.l2.host"),
            host: "redis.internal".into(),
        }
    );
}

#[test]
fn tiered_configs_built_in_code_are_checked_too() {
    let memcached = CacheBackendConfig::Memcached(MemcachedBackendConfig::default());
    let mut t = TieredBackendConfig::new(memcached);
    t.invalidation = TieredInvalidation::None;
    let config = |t: &TieredBackendConfig| CacheConfig {
        backends: vec![CacheBackendConfig::Tiered(t.clone())],
        ..CacheConfig::default()
    };
    config(&t).validate().unwrap();

    let mut nested = t.clone();
    *nested.l2 = CacheBackendConfig::Tiered(t.clone());
    let err = config(&nested).validate().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Misplaced { at, .. } if at.field == "backends.0.l2.type"),
        "{err:?}"
    );

    let mut owned = t.clone();
    if let CacheBackendConfig::Memcached(m) = &mut *owned.l2 {
        m.enabled = false;
    }
    let err = config(&owned).validate().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Misplaced { at, .. } if at.field == "backends.0.l2.enabled"),
        "{err:?}"
    );
}

#[test]
fn tiered_settings_load_alike_from_yaml_json_toml_and_the_environment() {
    let yaml = "backends:\n  - type: tiered\n    name: near\n    l1_ttl: 20s\n    \
                max_staleness: 300ms\n    l1: { max_entries: 500 }\n    l2:\n      type: redis\n      \
                port: 6390\n      prefix: \"app:\"\n";
    let json = r#"{"backends": [{"type": "tiered", "name": "near", "l1_ttl": "20s",
        "max_staleness": "300ms", "l1": {"max_entries": 500},
        "l2": {"type": "redis", "port": 6390, "prefix": "app:"}}]}"#;
    let toml = "[[backends]]\ntype = \"tiered\"\nname = \"near\"\nl1_ttl = \"20s\"\n\
                max_staleness = \"300ms\"\n[backends.l1]\nmax_entries = 500\n[backends.l2]\n\
                type = \"redis\"\nport = 6390\nprefix = \"app:\"\n";
    let prefix = "LEXICACHE_TIERED_LOAD_TEST_";
    for (k, v) in [
        ("BACKENDS__0__TYPE", "tiered"),
        ("BACKENDS__0__NAME", "near"),
        ("BACKENDS__0__L1_TTL", "20s"),
        ("BACKENDS__0__MAX_STALENESS", "300ms"),
        ("BACKENDS__0__L1__MAX_ENTRIES", "500"),
        ("BACKENDS__0__L2__TYPE", "redis"),
        ("BACKENDS__0__L2__PORT", "6390"),
        ("BACKENDS__0__L2__PREFIX", "app:"),
    ] {
        std::env::set_var(format!("{prefix}{k}"), v);
    }
    let from_yaml = CacheConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(tiered(&from_yaml, 0).l1.max_entries, Some(500));
    assert_eq!(from_yaml.backends[0].prefix(), "app:");
    assert_eq!(CacheConfig::from_json_str(json).unwrap(), from_yaml);
    assert_eq!(CacheConfig::from_toml_str(toml).unwrap(), from_yaml);
    assert_eq!(CacheConfig::from_env(prefix).unwrap(), from_yaml);

    // An environment variable overrides one field of a file's l2, leaving the others alone.
    std::env::set_var(
        "LEXICACHE_TIERED_OVERRIDE_TEST_BACKENDS__0__L2__PORT",
        "6391",
    );
    let merged = ConfigLoader::new()
        .yaml(yaml)
        .env_prefixed("LEXICACHE_TIERED_OVERRIDE_TEST_")
        .load()
        .unwrap();
    let CacheBackendConfig::Redis(l2) = &*tiered(&merged, 0).l2 else {
        panic!("l2 is redis");
    };
    assert_eq!((l2.port, l2.prefix.as_str()), (Some(6391), "app:"));
}

#[test]
fn an_l2_password_file_is_read_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis-password");
    std::fs::write(&path, "from-a-file\n").unwrap();
    let config = CacheConfig::from_yaml_str(&format!(
        "backends:\n  - type: tiered\n    l2:\n      type: redis\n      password_file: \"{}\"\n",
        path.display()
    ))
    .unwrap();
    let CacheBackendConfig::Redis(l2) = &*tiered(&config, 0).l2 else {
        panic!("l2 is redis");
    };
    assert_eq!(
        l2.password.as_ref().map(|p| p.expose()),
        Some("from-a-file")
    );
}

// ---- The provider, against the local servers. ----

fn redis_tiered_yaml(ns: &str) -> String {
    format!(
        r#"
backends:
  - type: tiered
    name: near
    l1_ttl: 30s
    l1:
      max_entries: 1000
    l2:
      type: redis
      url: "{}"
      prefix: "{ns}"
"#,
        servers::redis_url()
    )
}

fn memcached_tiered_yaml(ns: &str) -> String {
    format!(
        r#"
backends:
  - type: tiered
    name: local
    invalidation: none
    l2:
      type: memcached
      servers: "{}"
      prefix: "{ns}"
"#,
        servers::memcached_servers().join(",")
    )
}

async fn provider(yaml: &str) -> CacheProvider {
    CacheProvider::from_config(&CacheConfig::from_yaml_str(yaml).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tiered_redis_service_keeps_values_in_l1_and_sees_another_providers_writes() {
    let yaml = redis_tiered_yaml(&servers::unique_namespace("tiered-provider"));
    let first = provider(&yaml).await;
    let second = provider(&yaml).await;
    assert_eq!(first.kind("near"), Some(BackendType::Tiered));
    let near = first.tiered("near").expect("a tiered backend");
    assert!(
        near.is_serving_l1(),
        "the provider waits for the subscription"
    );

    let cache = first.service("near").unwrap();
    cache.try_set("user:1", &"alice", None).await.unwrap();
    assert_eq!(
        cache.try_get::<String>("user:1").await.unwrap().as_deref(),
        Some("alice")
    );
    assert!(near.l1().exists("user:1").await.unwrap(), "L1 holds it");
    assert!(near.l2().exists("user:1").await.unwrap(), "and L2 too");

    // A write by another process (here, another provider with its own connections) reaches
    // the first one's L1 through the invalidation channel, well before its 30 s L1 TTL.
    let other = second.service("near").unwrap();
    other.try_set("user:1", &"bob", None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = cache.try_get::<String>("user:1").await.unwrap();
        if seen.as_deref() == Some("bob") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first provider still reads {seen:?} 5 s after the second wrote: {:?}",
            near.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = near.stats();
    assert!(stats.subscribed && stats.keys_invalidated >= 1, "{stats:?}");

    let health = first.health(Duration::from_secs(2)).await;
    assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
    assert_eq!(health.backends[0].backend, "near");
    assert!(first.metrics().total.sets >= 1);

    other.try_delete("user:1").await.unwrap();
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn a_tiered_memcached_service_without_invalidation_serves_from_both_levels() {
    let ns = servers::unique_namespace("tiered-memcached");
    let provider = provider(&memcached_tiered_yaml(&ns)).await;
    assert_eq!(provider.kind("local"), Some(BackendType::Tiered));
    let local = provider.tiered("local").unwrap();
    assert!(local.is_serving_l1());
    assert!(!local.stats().subscribed, "no channel");

    let cache = provider.service("local").unwrap();
    cache.try_set("k", &42u32, None).await.unwrap();
    assert!(local.l1().exists("k").await.unwrap());
    assert!(local.l2().exists("k").await.unwrap());
    // A value only L2 has is read through and copied into L1.
    local.l1().clear().await.unwrap();
    assert_eq!(cache.try_get::<u32>("k").await.unwrap(), Some(42));
    assert!(local.l1().exists("k").await.unwrap());
    assert!(provider.health(Duration::from_secs(2)).await.is_healthy());

    cache.try_delete("k").await.unwrap();
    assert!(!local.l2().exists("k").await.unwrap());
    provider.shutdown().await;
}

#[tokio::test]
async fn clear_on_start_clears_the_tiered_l2_namespace() {
    let ns = servers::unique_namespace("tiered-clear");
    let yaml = redis_tiered_yaml(&ns);
    let first = provider(&yaml).await;
    first
        .default_service()
        .unwrap()
        .try_set("k", &1u8, None)
        .await
        .unwrap();
    first.shutdown().await;

    let cleared =
        provider(&yaml.replace("name: near", "name: near\n    clear_on_start: true")).await;
    let near = cleared.tiered("near").unwrap();
    assert!(!near.l2().exists("k").await.unwrap());
    cleared.shutdown().await;
}
