//! Secrets never appear in `Debug` or `Display` of any config type.

use lexicache_config::{
    CacheBackendConfig, CacheConfig, ConfigLoader, KeyConfig, RedisBackendConfig, Secret,
    SerializerConfig, ServiceConfig,
};

const PASSWORD: &str = "pw-Zq81x";
const SENTINEL_PASSWORD: &str = "spw-Kd02y";
const URL_PASSWORD: &str = "urlpw-Mn33z";
const URL_SENTINEL_PASSWORD: &str = "urlspw-Tt44w";
const KEY: &str = "key-material-Rr55v-0123456789abcdef";

fn assert_redacted(shown: &str) {
    for secret in [
        PASSWORD,
        SENTINEL_PASSWORD,
        URL_PASSWORD,
        URL_SENTINEL_PASSWORD,
        KEY,
    ] {
        assert!(!shown.contains(secret), "{secret} leaked in: {shown}");
    }
}

#[test]
fn debug_and_display_of_every_config_redact_secrets() {
    let yaml = format!(
        r#"
backends:
  - type: redis
    name: a
    default: true
    password: {PASSWORD}
    mode: sentinel
    nodes: [127.0.0.1:26390]
    sentinel_master: lexicache
    sentinel_password: {SENTINEL_PASSWORD}
  - type: redis
    name: b
    url: "redis://app:{URL_PASSWORD}@127.0.0.1:6390/0"
  - type: redis
    name: c
    url: "redis-sentinel://127.0.0.1:26390?sentinelServiceName=m&sentinelPassword={URL_SENTINEL_PASSWORD}"
service:
  serializer:
    type: signed
    keys:
      - id: 1
        key: {KEY}
"#
    );
    let loader = ConfigLoader::new().yaml(&yaml);
    let shown = format!("{loader:?}");
    assert_redacted(&shown);
    assert!(shown.contains("YAML source string"), "{shown}");
    let config = loader.load().unwrap();
    assert_redacted(&format!("{config:?}"));
    assert_redacted(&format!("{config:#?}"));
    for backend in &config.backends {
        assert_redacted(&format!("{backend:?}"));
        if let CacheBackendConfig::Redis(r) = backend {
            assert_redacted(&format!("{r:?}"));
        }
    }
    let service: &ServiceConfig = &config.service;
    let serializer: &SerializerConfig = &service.serializer;
    let key: &KeyConfig = &serializer.keys[0];
    assert_redacted(&format!("{service:?} {serializer:?} {key:?}"));
    let secret: &Secret = key.key.as_ref().unwrap();
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    // The redacted URL still says where Redis is.
    let CacheBackendConfig::Redis(b) = &config.backends[1] else {
        panic!("redis");
    };
    assert!(format!("{b:?}").contains("redis://app:***@127.0.0.1:6390/0"));
}

#[test]
fn errors_about_secrets_do_not_repeat_them() {
    let bad_key = format!(
        "service:\n  serializer:\n    type: encrypted\n    keys:\n      - id: 1\n        key: {PASSWORD}\n"
    );
    let err = CacheConfig::from_yaml_str(&bad_key).unwrap_err();
    assert_redacted(&format!("{err} {err:?}"));

    let bad_url = format!("backends:\n  - type: redis\n    url: \"redis://u:{URL_PASSWORD}@:x\"\n");
    let err = CacheConfig::from_yaml_str(&bad_url).unwrap_err();
    assert_redacted(&format!("{err} {err:?}"));

    let code = RedisBackendConfig {
        password: Some(Secret::new(PASSWORD)),
        ..RedisBackendConfig::default()
    };
    assert_redacted(&format!("{code:?}"));
}

#[test]
fn a_redis_password_inside_a_tiered_l2_is_redacted() {
    let yaml = format!(
        r#"
backends:
  - type: tiered
    name: near
    default: true
    l2:
      type: redis
      password: {PASSWORD}
      mode: sentinel
      nodes: [127.0.0.1:26390]
      sentinel_master: lexicache
      sentinel_password: {SENTINEL_PASSWORD}
  - type: tiered
    name: far
    l2:
      type: redis
      url: "redis://app:{URL_PASSWORD}@127.0.0.1:6390/0"
"#
    );
    let loader = ConfigLoader::new().yaml(&yaml);
    assert_redacted(&format!("{loader:?}"));
    let config = loader.load().unwrap();
    assert_redacted(&format!("{config:?}"));
    assert_redacted(&format!("{config:#?}"));
    for backend in &config.backends {
        assert_redacted(&format!("{backend:?}"));
        let CacheBackendConfig::Tiered(t) = backend else {
            panic!("tiered: {backend:?}");
        };
        assert_redacted(&format!("{t:?} {:?}", t.l2));
    }
    // The secrets are there, only hidden.
    let CacheBackendConfig::Tiered(near) = &config.backends[0] else {
        panic!("tiered");
    };
    let CacheBackendConfig::Redis(l2) = &*near.l2 else {
        panic!("redis l2");
    };
    assert_eq!(l2.password.as_ref().map(Secret::expose), Some(PASSWORD));
    assert!(format!("{config:?}").contains("redis://app:***@127.0.0.1:6390/0"));

    // Nor do errors about an l2 repeat them.
    let bad_url = format!(
        "backends:\n  - type: tiered\n    l2:\n      type: redis\n      url: \"redis://u:{URL_PASSWORD}@:x\"\n"
    );
    let err = CacheConfig::from_yaml_str(&bad_url).unwrap_err();
    assert_redacted(&format!("{err} {err:?}"));
    assert_eq!(
        err.location().map(|l| l.field.as_str()),
        Some("backends.0.l2.url")
    );
}
