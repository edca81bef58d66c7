//! The annotated example in docs/configuration.md loads, and says what the docs say.

use std::time::Duration;

use lexicache_config::{
    CacheBackendConfig, CacheConfig, ConfigLoader, SerializerKind, TieredBackendConfig,
    TieredInvalidation,
};

const DOC: &str = include_str!("../../../docs/configuration.md");

/// The first ```yaml block of the document.
fn yaml_block() -> &'static str {
    let start = DOC.find("```yaml\n").expect("a ```yaml block") + "```yaml\n".len();
    let len = DOC[start..].find("```").expect("the block ends");
    &DOC[start..start + len]
}

#[test]
fn the_documented_example_loads_and_validates() {
    let config = CacheConfig::from_yaml_str(yaml_block()).unwrap();
    assert_eq!(config.name, "app-cache");
    assert_eq!(config.backends.len(), 4);
    assert_eq!(config.default_backend().unwrap().name(), "hot");
    let CacheBackendConfig::Redis(redis) = &config.backends[1] else {
        panic!("the second backend is redis");
    };
    assert_eq!(redis.port, Some(6390));
    assert_eq!(redis.command_timeout, Duration::from_millis(500));
    let CacheBackendConfig::Memcached(mc) = &config.backends[2] else {
        panic!("the third backend is memcached");
    };
    assert_eq!(mc.servers, ["127.0.0.1:11290", "127.0.0.1:11291"]);
    let CacheBackendConfig::Tiered(tiered) = &config.backends[3] else {
        panic!("the fourth backend is tiered");
    };
    assert_eq!(tiered.invalidation, TieredInvalidation::Auto);
    assert!(tiered.invalidates(), "over Redis");
    assert_eq!(tiered.l1.max_entries, Some(10_000));
    assert_eq!(config.backends[3].prefix(), "near:");
    assert_eq!(config.service.serializer.kind, SerializerKind::Signed);
    assert_eq!(config.service.tag_ttl, Duration::from_secs(7 * 86_400));
}

#[test]
fn the_documented_defaults_match_the_code() {
    // Every default the comments give for fields the example sets to that default.
    let example = CacheConfig::from_yaml_str(yaml_block()).unwrap();
    let defaults = ConfigLoader::new().load().unwrap();
    assert_eq!(example.enabled, defaults.enabled);
    let mut service = example.service.clone();
    service.timeout = defaults.service.timeout;
    service.namespace = defaults.service.namespace.clone();
    service.serializer = defaults.service.serializer.clone();
    assert_eq!(service, defaults.service);

    // The tiered backend's documented defaults.
    let CacheBackendConfig::Tiered(tiered) = &example.backends[3] else {
        panic!("the fourth backend is tiered");
    };
    let default = TieredBackendConfig::new((*tiered.l2).clone());
    assert_eq!(tiered.l1_ttl, default.l1_ttl);
    assert_eq!(tiered.max_staleness(), default.max_staleness());
    assert_eq!(tiered.invalidation, default.invalidation);
    assert_eq!(
        (tiered.enabled, tiered.default, tiered.clear_on_start),
        (default.enabled, default.default, default.clear_on_start)
    );
}
