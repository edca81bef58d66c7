//! Every loader gives the same `CacheConfig` for the same settings; sources compose with the
//! later one winning; durations, lists and secrets in all their forms.

use std::collections::BTreeMap;
use std::time::Duration;

use lexicache_config::{
    CacheBackendConfig, CacheConfig, ConfigError, ConfigLoader, MemcachedBackendConfig,
    MemoryBackendConfig, RedisBackendConfig, Secret, SerializerKind,
};

const YAML: &str = r#"
name: app-cache
environment: staging
backends:
  - type: memory
    name: hot
    default: true
    max_entries: 5000
    default_ttl: 30s
  - type: redis
    name: shared
    host: 10.0.0.5
    port: 6390
    db: 2
    password: s3cr3t-pw
    command_timeout: 250ms
  - type: memcached
    name: sessions
    servers: [127.0.0.1:11290, 127.0.0.1:11291]
    pool_size: 8
    default_ttl: 2m
service:
  protection_max_wait: 2s
  protection_lock_ttl: 15
  timeout: 500ms
  namespace: "app:"
  serializer:
    type: signed
    keys:
      - id: 1
        key: 0123456789abcdef0123456789abcdef
  circuit_breaker:
    enabled: true
    failure_threshold: 3
    open_duration: 1m
"#;

const JSON: &str = r#"{
  "name": "app-cache",
  "environment": "staging",
  "backends": [
    {"type": "memory", "name": "hot", "default": true, "max_entries": 5000, "default_ttl": "30s"},
    {"type": "redis", "name": "shared", "host": "10.0.0.5", "port": 6390, "db": 2,
     "password": "s3cr3t-pw", "command_timeout": "250ms"},
    {"type": "memcached", "name": "sessions", "servers": ["127.0.0.1:11290", "127.0.0.1:11291"],
     "pool_size": 8, "default_ttl": "2m"}
  ],
  "service": {
    "protection_max_wait": "2s",
    "protection_lock_ttl": 15,
    "timeout": "500ms",
    "namespace": "app:",
    "serializer": {"type": "signed", "keys": [{"id": 1, "key": "0123456789abcdef0123456789abcdef"}]},
    "circuit_breaker": {"enabled": true, "failure_threshold": 3, "open_duration": "1m"}
  }
}"#;

const TOML: &str = r#"
name = "app-cache"
environment = "staging"

[[backends]]
type = "memory"
name = "hot"
default = true
max_entries = 5000
default_ttl = "30s"

[[backends]]
type = "redis"
name = "shared"
host = "10.0.0.5"
port = 6390
db = 2
password = "s3cr3t-pw"
command_timeout = "250ms"

[[backends]]
type = "memcached"
name = "sessions"
servers = ["127.0.0.1:11290", "127.0.0.1:11291"]
pool_size = 8
default_ttl = "2m"

[service]
protection_max_wait = "2s"
protection_lock_ttl = 15
timeout = "500ms"
namespace = "app:"

[service.serializer]
type = "signed"
keys = [{ id = 1, key = "0123456789abcdef0123456789abcdef" }]

[service.circuit_breaker]
enabled = true
failure_threshold = 3
open_duration = "1m"
"#;

/// The same settings as environment variables (without the prefix).
const ENV: &[(&str, &str)] = &[
    ("NAME", "app-cache"),
    ("ENVIRONMENT", "staging"),
    ("BACKENDS__0__TYPE", "memory"),
    ("BACKENDS__0__NAME", "hot"),
    ("BACKENDS__0__DEFAULT", "true"),
    ("BACKENDS__0__MAX_ENTRIES", "5000"),
    ("BACKENDS__0__DEFAULT_TTL", "30s"),
    ("BACKENDS__1__TYPE", "redis"),
    ("BACKENDS__1__NAME", "shared"),
    ("BACKENDS__1__HOST", "10.0.0.5"),
    ("BACKENDS__1__PORT", "6390"),
    ("BACKENDS__1__DB", "2"),
    ("BACKENDS__1__PASSWORD", "s3cr3t-pw"),
    ("BACKENDS__1__COMMAND_TIMEOUT", "250ms"),
    ("BACKENDS__2__TYPE", "memcached"),
    ("BACKENDS__2__NAME", "sessions"),
    ("BACKENDS__2__SERVERS", "127.0.0.1:11290,127.0.0.1:11291"),
    ("BACKENDS__2__POOL_SIZE", "8"),
    ("BACKENDS__2__DEFAULT_TTL", "2m"),
    ("SERVICE__PROTECTION_MAX_WAIT", "2s"),
    ("SERVICE__PROTECTION_LOCK_TTL", "15"),
    ("SERVICE__TIMEOUT", "500ms"),
    ("SERVICE__NAMESPACE", "app:"),
    ("SERVICE__SERIALIZER__TYPE", "signed"),
    ("SERVICE__SERIALIZER__KEYS__0__ID", "1"),
    (
        "SERVICE__SERIALIZER__KEYS__0__KEY",
        "0123456789abcdef0123456789abcdef",
    ),
    ("SERVICE__CIRCUIT_BREAKER__ENABLED", "true"),
    ("SERVICE__CIRCUIT_BREAKER__FAILURE_THRESHOLD", "3"),
    ("SERVICE__CIRCUIT_BREAKER__OPEN_DURATION", "1m"),
];

/// Sets `vars` under a prefix no other test uses (the process environment is shared).
fn set_env(prefix: &str, vars: &[(&str, &str)]) {
    for (k, v) in vars {
        std::env::set_var(format!("{prefix}{k}"), v);
    }
}

fn expected() -> CacheConfig {
    let mut config = CacheConfig {
        name: "app-cache".into(),
        environment: "staging".into(),
        backends: vec![
            CacheBackendConfig::Memory(MemoryBackendConfig {
                name: "hot".into(),
                default: true,
                max_entries: Some(5000),
                default_ttl: Some(Duration::from_secs(30)),
                ..MemoryBackendConfig::default()
            }),
            CacheBackendConfig::Redis(RedisBackendConfig {
                name: "shared".into(),
                host: Some("10.0.0.5".into()),
                port: Some(6390),
                db: Some(2),
                password: Some(Secret::new("s3cr3t-pw")),
                command_timeout: Duration::from_millis(250),
                ..RedisBackendConfig::default()
            }),
            CacheBackendConfig::Memcached(MemcachedBackendConfig {
                name: "sessions".into(),
                servers: vec!["127.0.0.1:11290".into(), "127.0.0.1:11291".into()],
                pool_size: 8,
                default_ttl: Some(Duration::from_secs(120)),
                ..MemcachedBackendConfig::default()
            }),
        ],
        ..CacheConfig::default()
    };
    let s = &mut config.service;
    s.protection_max_wait = Duration::from_secs(2);
    s.protection_lock_ttl = Duration::from_secs(15);
    s.timeout = Some(Duration::from_millis(500));
    s.namespace = Some("app:".into());
    s.serializer.kind = SerializerKind::Signed;
    s.serializer.keys = vec![lexicache_config::KeyConfig {
        id: 1,
        key: Some(Secret::new("0123456789abcdef0123456789abcdef")),
        key_file: None,
    }];
    s.circuit_breaker.enabled = true;
    s.circuit_breaker.failure_threshold = 3;
    s.circuit_breaker.open_duration = Duration::from_secs(60);
    config
}

#[test]
fn yaml_json_toml_env_and_map_load_to_the_same_config() {
    let want = expected();
    assert_eq!(CacheConfig::from_yaml_str(YAML).unwrap(), want, "yaml");
    assert_eq!(CacheConfig::from_json_str(JSON).unwrap(), want, "json");
    assert_eq!(CacheConfig::from_toml_str(TOML).unwrap(), want, "toml");
    let map: serde_json::Value = serde_json::from_str(JSON).unwrap();
    assert_eq!(CacheConfig::from_map(&map).unwrap(), want, "map");

    set_env("LXC_SAME_", ENV);
    assert_eq!(CacheConfig::from_env("LXC_SAME_").unwrap(), want, "env");
}

#[test]
fn files_load_like_text() {
    let dir = tempfile::tempdir().unwrap();
    let want = expected();
    for (name, text) in [("c.yaml", YAML), ("c.json", JSON), ("c.toml", TOML)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let got = match name {
            "c.yaml" => CacheConfig::from_yaml(&path),
            "c.json" => CacheConfig::from_json(&path),
            _ => CacheConfig::from_toml(&path),
        };
        assert_eq!(got.unwrap(), want, "{name}");
    }
}

#[test]
fn a_missing_file_is_a_typed_error_naming_it() {
    let err = CacheConfig::from_yaml("/nonexistent/lexicache.yaml").unwrap_err();
    assert_eq!(
        err,
        ConfigError::FileNotFound {
            path: "/nonexistent/lexicache.yaml".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "config file `/nonexistent/lexicache.yaml` does not exist"
    );
}

#[test]
fn environment_overrides_one_field_of_a_file_backend_and_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.yaml");
    std::fs::write(&path, YAML).unwrap();
    set_env(
        "LXC_OVERRIDE_",
        &[
            ("BACKENDS__1__PORT", "7777"),
            ("BACKENDS__1__PASSWORD", "from-env"),
            ("SERVICE__PROTECTION_MAX_WAIT", "750ms"),
        ],
    );
    let config = ConfigLoader::new()
        .yaml_file(&path)
        .env_prefixed("LXC_OVERRIDE_")
        .load()
        .unwrap();
    let CacheBackendConfig::Redis(redis) = &config.backends[1] else {
        panic!("backend 1 is redis");
    };
    assert_eq!(redis.port, Some(7777));
    assert_eq!(
        redis.password.as_ref().map(Secret::expose),
        Some("from-env")
    );
    // The rest of that backend, and the other backends, still come from the file.
    assert_eq!(redis.host.as_deref(), Some("10.0.0.5"));
    assert_eq!(redis.command_timeout, Duration::from_millis(250));
    assert_eq!(config.backends.len(), 3);
    assert_eq!(config.backends[2].name(), "sessions");
    assert_eq!(
        config.service.protection_max_wait,
        Duration::from_millis(750)
    );

    // The file after the environment: the file wins instead.
    let config = ConfigLoader::new()
        .env_prefixed("LXC_OVERRIDE_")
        .yaml_file(&path)
        .load()
        .unwrap();
    assert_eq!(config.service.protection_max_wait, Duration::from_secs(2));
}

#[test]
fn environment_variables_outside_the_config_fields_are_ignored() {
    // The test servers' variables share the default prefix: they are not configuration.
    set_env(
        "LXC_IGNORE_",
        &[
            ("TEST_REDIS_URL", "redis://127.0.0.1:6390"),
            ("SERVICE__METRICS", "false"),
        ],
    );
    let config = CacheConfig::from_env("LXC_IGNORE_").unwrap();
    assert!(!config.service.metrics);
    assert_eq!(config.backends, CacheConfig::default().backends);
}

#[test]
fn durations_take_units_or_plain_seconds() {
    let config = CacheConfig::from_yaml_str(
        "service:\n  protection_max_wait: 500ms\n  protection_lock_ttl: 2m\n  timeout: 1.5\n  \
         protection_retry_interval: 0.25\n  tag_ttl: 1h30m\n",
    )
    .unwrap();
    let s = &config.service;
    assert_eq!(s.protection_max_wait, Duration::from_millis(500));
    assert_eq!(s.protection_lock_ttl, Duration::from_secs(120));
    assert_eq!(s.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(s.protection_retry_interval, Duration::from_millis(250));
    assert_eq!(s.tag_ttl, Duration::from_secs(5400));

    let plain = CacheConfig::from_json_str(r#"{"service": {"protection_lock_ttl": 30}}"#).unwrap();
    assert_eq!(plain.service.protection_lock_ttl, Duration::from_secs(30));
}

#[test]
fn a_bad_duration_names_the_field_source_and_problem() {
    let err = CacheConfig::from_yaml_str("service:\n  protection_max_wait: soon\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("`service.protection_max_wait` (from YAML source string):"),
        "{text}"
    );
    assert!(text.contains("`soon` is not a duration"), "{text}");
    let err = CacheConfig::from_yaml_str("service:\n  timeout: -3\n").unwrap_err();
    assert!(
        err.to_string().contains("durations are not negative"),
        "{err}"
    );
}

#[test]
fn password_file_is_read_and_its_trailing_newline_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("redis.pw");
    std::fs::write(&pw, "file-secret\n").unwrap();
    let key = dir.path().join("signing.key");
    std::fs::write(&key, "k".repeat(40) + "\r\n").unwrap();
    let yaml = format!(
        "backends:\n  - type: redis\n    password_file: {}\nservice:\n  serializer:\n    type: \
         signed\n    keys:\n      - id: 7\n        key_file: {}\n",
        pw.display(),
        key.display()
    );
    let config = CacheConfig::from_yaml_str(&yaml).unwrap();
    let CacheBackendConfig::Redis(redis) = &config.backends[0] else {
        panic!("redis");
    };
    assert_eq!(redis.password.as_ref().unwrap().expose(), "file-secret");
    let k = &config.service.serializer.keys[0];
    assert_eq!(k.key.as_ref().unwrap().expose(), "k".repeat(40));
}

#[test]
fn a_missing_password_file_is_an_error_naming_the_field_and_path() {
    let err = CacheConfig::from_yaml_str(
        "backends:\n  - type: redis\n    password_file: /nonexistent/redis.pw\n",
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::SecretFile { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "`backends.0.password_file` (from YAML source string): cannot read the secret file \
             `/nonexistent/redis.pw`:"
        ),
        "{text}"
    );
}

#[test]
fn a_password_file_that_is_a_device_or_huge_is_refused_not_read() {
    let refused = |path: &str, why: &str| {
        let err = CacheConfig::from_yaml_str(&format!(
            "backends:\n  - type: redis\n    password_file: {path}\n"
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::SecretFile { .. }), "{err:?}");
        assert!(err.to_string().contains(why), "{err}");
    };
    // Endless: reading it would exhaust memory.
    refused("/dev/zero", "not a regular file");
    let dir = std::env::temp_dir().join(format!("lexicache-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.pw");
    std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
    refused(big.to_str().unwrap(), "larger than 65536 bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn string_lists_accept_lists_and_comma_separated_text() {
    let a = CacheConfig::from_yaml_str(
        "backends:\n  - type: memcached\n    servers: 127.0.0.1:1, 127.0.0.1:2\n",
    )
    .unwrap();
    let b = CacheConfig::from_yaml_str(
        "backends:\n  - type: memcached\n    servers: [127.0.0.1:1, 127.0.0.1:2]\n",
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn no_source_gives_the_documented_defaults() {
    let config = ConfigLoader::new().load().unwrap();
    assert_eq!(config, CacheConfig::default());
    assert_eq!(config.default_backend().unwrap().name(), "memory");
    let mut map = BTreeMap::new();
    map.insert("name", "x");
    assert_eq!(CacheConfig::from_map(map).unwrap().name, "x");
}
