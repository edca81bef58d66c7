//! Every validation rule, checked for its message: which field, from which source, what is
//! wrong.

use lexicache_config::{CacheConfig, ConfigError, ConfigLoader, Location};

fn yaml_err(yaml: &str) -> ConfigError {
    CacheConfig::from_yaml_str(yaml).expect_err("the config should be refused")
}

/// Asserts the whole message.
fn assert_message(err: &ConfigError, want: &str) {
    assert_eq!(err.to_string(), want, "{err:?}");
}

const YAML_SRC: &str = "YAML source string";

fn at(field: &str) -> Location {
    Location {
        field: field.to_owned(),
        source: YAML_SRC.to_owned(),
    }
}

#[test]
fn a_field_of_another_backend_type_is_rejected_by_name() {
    let err = yaml_err("backends:\n  - type: memory\n    url: redis://127.0.0.1\n");
    assert_message(
        &err,
        "`backends.0.url` (from YAML source string): `url` is not a setting of memory backends; \
         it belongs to redis backends (check `type`, or remove it)",
    );
    let err = yaml_err("backends:\n  - type: memcached\n    max_entries: 10\n");
    assert!(matches!(&err, ConfigError::ForeignField { field, .. } if field == "max_entries"));
    let err = yaml_err("backends:\n  - type: memory\n    pool_size: 2\n");
    assert!(
        err.to_string().contains("it belongs to memcached backends"),
        "{err}"
    );
    let err = yaml_err("backends:\n  - type: memory\n    connect_timeout: 2s\n");
    assert!(
        err.to_string()
            .contains("it belongs to redis and memcached backends"),
        "{err}"
    );
}

#[test]
fn an_unknown_field_is_rejected_with_the_fields_expected() {
    let err = yaml_err("backends:\n  - type: redis\n    passwrd: x\n");
    let ConfigError::UnknownField {
        at: loc,
        field,
        expected,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*loc, at("backends.0.passwrd"));
    assert_eq!(field, "passwrd");
    assert!(expected.contains("`password`"), "{expected}");
    assert!(!err.to_string().contains(" x"), "never the value: {err}");

    let err = yaml_err("servce:\n  metrics: false\n");
    assert!(
        err.to_string()
            .starts_with("`servce` (from YAML source string): unknown field `servce`"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_inside_a_backend_names_the_field() {
    let err = yaml_err("backends:\n  - type: redis\n    port: lots\n");
    let text = err.to_string();
    assert!(
        text.starts_with("`backends.0.port` (from YAML source string): invalid type"),
        "{text}"
    );
}

#[test]
fn a_port_above_65535_names_the_field_and_source() {
    let err = yaml_err("backends:\n  - type: redis\n    port: 70000\n");
    let text = err.to_string();
    assert!(
        text.starts_with("`backends.0.port` (from YAML source string):"),
        "{text}"
    );
    assert!(text.contains("70000"), "{text}");
}

#[test]
fn a_backend_without_type_or_with_an_unknown_type_is_refused() {
    assert_message(
        &yaml_err("backends:\n  - name: x\n"),
        "`backends.0.type` (from the defaults): missing; every backend needs `type`: memory, \
         redis, memcached or tiered",
    );
    assert_message(
        &yaml_err("backends:\n  - type: redsi\n"),
        "`backends.0.type` (from YAML source string): unknown backend type; expected memory, \
         redis, memcached or tiered",
    );
}

#[test]
fn several_backends_need_exactly_one_default() {
    let two = "backends:\n  - type: memory\n    name: a\n  - type: memory\n    name: b\n";
    assert_message(
        &yaml_err(two),
        "`backends`: 2 backends are enabled (`a`, `b`) and none has `default: true`; mark \
         exactly one as the default",
    );
    let both =
        "backends:\n  - type: memory\n    name: a\n    default: true\n  - type: memory\n    \
                name: b\n    default: true\n";
    assert_message(
        &yaml_err(both),
        "`backends.1.default` (from YAML source string): `b` is a second default backend after \
         `a`; mark exactly one",
    );
    // A lone enabled backend is the default; a disabled one does not count.
    let lone = "backends:\n  - type: memory\n    name: a\n  - type: memory\n    name: b\n    \
                enabled: false\n";
    let config = CacheConfig::from_yaml_str(lone).unwrap();
    assert_eq!(config.default_backend().unwrap().name(), "a");
}

#[test]
fn an_enabled_config_needs_an_enabled_backend() {
    assert_eq!(yaml_err("backends: []\n"), ConfigError::NoBackends);
    assert!(CacheConfig::from_yaml_str("enabled: false\nbackends: []\n").is_ok());
}

#[test]
fn backend_names_are_unique() {
    let err = yaml_err(
        "backends:\n  - type: memory\n    name: a\n    default: true\n  - type: redis\n    name: a\n",
    );
    assert_message(
        &err,
        "`backends.1.name` (from YAML source string): the backend name `a` is used twice; names \
         must be unique",
    );
}

#[test]
fn sizes_and_durations_out_of_range_are_refused() {
    assert_message(
        &yaml_err("backends:\n  - type: redis\n    port: 0\n"),
        "`backends.0.port` (from YAML source string): 0 is out of range; a port is 1 to 65535",
    );
    assert_message(
        &yaml_err("backends:\n  - type: memcached\n    pool_size: 0\n"),
        "`backends.0.pool_size` (from YAML source string): 0 is out of range; it must be 1 to 1024",
    );
    assert_message(
        &yaml_err("backends:\n  - type: memory\n    max_entries: 0\n"),
        "`backends.0.max_entries` (from YAML source string): 0 is out of range; it must be at \
         least 1",
    );
    assert_message(
        &yaml_err("backends:\n  - type: memory\n    max_value_size: 0\n"),
        "`backends.0.max_value_size` (from YAML source string): 0 is out of range; it must be \
         at least 1 byte",
    );
    assert_message(
        &yaml_err("service:\n  protection_retry_interval: 0s\n"),
        "`service.protection_retry_interval` (from YAML source string): 0s is out of range; it \
         must be above zero",
    );
    assert_message(
        &yaml_err("service:\n  circuit_breaker:\n    failure_threshold: 0\n"),
        "`service.circuit_breaker.failure_threshold` (from YAML source string): 0 is out of \
         range; it must be at least 1",
    );
    assert_message(
        &yaml_err(
            "backends:\n  - type: redis\n    mode: cluster\n    nodes: [a:7000]\n    db: 3\n",
        ),
        "`backends.0.db` (from YAML source string): 3 is out of range; a Redis Cluster has only \
         database 0",
    );
}

#[test]
fn a_redis_url_that_does_not_parse_is_refused_without_repeating_it() {
    let err = yaml_err("backends:\n  - type: redis\n    url: \"redis://user:hunter2@:notaport\"\n");
    let ConfigError::InvalidUrl { at: loc, reason } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*loc, at("backends.0.url"));
    assert!(!reason.is_empty());
    assert!(err
        .to_string()
        .starts_with("`backends.0.url` (from YAML source string): invalid URL:"));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn addresses_must_be_host_and_port() {
    assert_message(
        &yaml_err("backends:\n  - type: memcached\n    servers: [\"127.0.0.1\"]\n"),
        "`backends.0.servers.0` (from YAML source string): invalid address `127.0.0.1`: \
         expected host:port (the port is required)",
    );
    let err = yaml_err("backends:\n  - type: memcached\n    servers: [\"u:pw@h:1\"]\n");
    assert!(!err.to_string().contains("pw"), "{err}");
    assert_message(
        &yaml_err("backends:\n  - type: redis\n    mode: cluster\n    nodes: [\"a:99999\"]\n"),
        "`backends.0.nodes.0` (from YAML source string): invalid address `a:99999`: the port \
         must be a number from 1 to 65535",
    );
}

#[test]
fn settings_that_exclude_each_other_are_refused() {
    assert_message(
        &yaml_err("backends:\n  - type: redis\n    url: redis://127.0.0.1:6390\n    port: 1\n"),
        "`backends.0.port` (from YAML source string): cannot be set together with \
         `backends.0.url`; say where Redis is with `url`, or with mode/host/port/nodes, not both",
    );
    assert_message(
        &yaml_err("backends:\n  - type: memory\n    max_entries: 1\n    max_bytes: 1\n"),
        "`backends.0.max_bytes` (from YAML source string): cannot be set together with \
         `backends.0.max_entries`; bound the store by entries or by bytes, not both",
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x").unwrap();
    let err = yaml_err(&format!(
        "backends:\n  - type: redis\n    password: a\n    password_file: {}\n",
        pw.display()
    ));
    assert_message(
        &err,
        "`backends.0.password_file` (from YAML source string): cannot be set together with \
         `backends.0.password`; give the secret inline (`password`) or as a file \
         (`password_file`), not both",
    );
    assert_message(
        &yaml_err("backends:\n  - type: memcached\n    clear_on_start: true\n"),
        "`backends.0.clear_on_start` (from YAML source string): cannot be set together with \
         `backends.0.type`; memcached cannot clear one namespace (flush_all would empty the \
         whole server); remove `clear_on_start`",
    );
    assert!(matches!(
        yaml_err("service:\n  serializer:\n    type: json\n    format: postcard\n"),
        ConfigError::Conflict { .. }
    ));
}

#[test]
fn sentinel_and_cluster_modes_need_their_settings() {
    assert_message(
        &yaml_err("backends:\n  - type: redis\n    mode: cluster\n"),
        "`backends.0.nodes` (from the defaults): missing; cluster and sentinel mode need at \
         least one `host:port` in `nodes`",
    );
    assert_message(
        &yaml_err("backends:\n  - type: redis\n    mode: sentinel\n    nodes: [a:26379]\n"),
        "`backends.0.sentinel_master` (from the defaults): missing; sentinel mode needs the name \
         the sentinels monitor the primary under",
    );
}

#[test]
fn serializer_keys_need_32_bytes() {
    let short =
        "service:\n  serializer:\n    type: signed\n    keys:\n      - id: 1\n        key: \
                 too-short\n";
    let err = yaml_err(short);
    assert_message(
        &err,
        "`service.serializer.keys.0.key` (from YAML source string): the key is 9 bytes; signing \
         keys need at least 32 bytes",
    );
    assert!(!err.to_string().contains("too-short"));
    let enc = "service:\n  serializer:\n    type: encrypted\n    keys:\n      - id: 1\n        \
               key: \"0123456789abcdef0123456789abcdef0\"\n";
    assert_message(
        &yaml_err(enc),
        "`service.serializer.keys.0.key` (from YAML source string): the key is 33 bytes; \
         encryption keys are exactly 32 bytes",
    );
    let hex = format!(
        "service:\n  serializer:\n    type: encrypted\n    keys:\n      - id: 1\n        key: \
         \"hex:{}\"\n",
        "ab".repeat(32)
    );
    assert!(CacheConfig::from_yaml_str(&hex).is_ok());
}

#[test]
fn an_error_from_the_environment_names_the_variable() {
    std::env::set_var("LXC_VALIDATE_BACKENDS__0__TYPE", "memcached");
    std::env::set_var("LXC_VALIDATE_BACKENDS__0__POOL_SIZE", "5000");
    let err = CacheConfig::from_env("LXC_VALIDATE_").unwrap_err();
    assert_message(
        &err,
        "`backends.0.pool_size` (from environment variable `LXC_VALIDATE_BACKENDS__0__POOL_SIZE`): \
         5000 is out of range; it must be 1 to 1024",
    );
}

#[test]
fn an_error_from_a_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.toml");
    std::fs::write(&path, "[[backends]]\ntype = \"redis\"\nport = 0\n").unwrap();
    let err = ConfigLoader::new().toml_file(&path).load().unwrap_err();
    assert_eq!(
        err.location().unwrap().source,
        format!("TOML file `{}`", path.display())
    );
}

#[test]
fn production_refuses_redis_without_auth_or_tls_off_loopback() {
    let open = "environment: production\nbackends:\n  - type: redis\n    host: 10.0.0.5\n";
    assert_message(
        &yaml_err(open),
        "`backends.0.host` (from YAML source string): refused in production: Redis at \
         `10.0.0.5` has neither a password nor TLS; set `password` (or `password_file`) or \
         `tls: true`",
    );
    let url = "environment: production\nbackends:\n  - type: redis\n    url: redis://cache.internal:6379\n";
    assert!(
        matches!(yaml_err(url), ConfigError::InsecureRedis { host, .. } if host == "cache.internal")
    );
    // Auth, TLS or loopback each make it acceptable; outside production it is allowed.
    for ok in [
        "environment: production\nbackends:\n  - type: redis\n    host: 10.0.0.5\n    password: pw\n",
        "environment: production\nbackends:\n  - type: redis\n    host: 10.0.0.5\n    tls: true\n",
        "environment: production\nbackends:\n  - type: redis\n    url: rediss://10.0.0.5:6379\n",
        "environment: production\nbackends:\n  - type: redis\n    url: redis://:pw@10.0.0.5:6379\n",
        "environment: production\nbackends:\n  - type: redis\n    host: 127.0.0.1\n",
        "environment: staging\nbackends:\n  - type: redis\n    host: 10.0.0.5\n",
    ] {
        CacheConfig::from_yaml_str(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn production_refuses_a_signed_or_encrypted_serializer_without_keys() {
    for kind in ["signed", "encrypted"] {
        let yaml = format!("environment: production\nservice:\n  serializer:\n    type: {kind}\n");
        assert_message(
            &yaml_err(&yaml),
            &format!(
                "`service.serializer.keys` (from the defaults): refused in production: the \
                 {kind} serializer has no keys; set `service.serializer.keys` (key material \
                 from the environment or `key_file`)"
            ),
        );
        let dev = format!("service:\n  serializer:\n    type: {kind}\n");
        assert!(
            CacheConfig::from_yaml_str(&dev).is_ok(),
            "{kind} outside production"
        );
    }
}

#[test]
fn production_refuses_clear_on_start() {
    let yaml = "environment: production\nbackends:\n  - type: memory\n    clear_on_start: true\n";
    assert_message(
        &yaml_err(yaml),
        "`backends.0.clear_on_start` (from YAML source string): refused in production: \
         `clear_on_start` would wipe the cache on every start",
    );
}

#[test]
fn validate_checks_configs_built_in_code() {
    let mut config = CacheConfig::default();
    assert!(config.validate().is_ok());
    config.backends.clear();
    assert_eq!(config.validate().unwrap_err(), ConfigError::NoBackends);
}

#[test]
fn config_errors_convert_to_core_config_errors() {
    let err: lexicache_core::Error = ConfigError::NoBackends.into();
    assert_eq!(err.kind(), lexicache_core::ErrorKind::Config);
    assert!(err.message().contains("`backends`"), "{err}");
}
