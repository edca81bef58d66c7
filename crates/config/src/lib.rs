//! lexicache configuration: [`CacheConfig`] and friends, loaded from YAML, JSON, TOML, maps
//! and environment variables with [figment](https://docs.rs/figment), then validated.
//!
//! ```
//! use std::time::Duration;
//! use lexicache_config::{BackendType, CacheConfig, ConfigLoader};
//!
//! let yaml = r#"
//! environment: staging
//! backends:
//!   - type: memory
//!     name: hot
//!     max_entries: 10000
//!     default: true
//!   - type: redis
//!     name: shared
//!     host: 127.0.0.1
//!     port: 6390
//!     command_timeout: 250ms
//! service:
//!   protection_max_wait: 2s
//!   circuit_breaker: { enabled: true, failure_threshold: 3 }
//! "#;
//! // A file (here, text) with overrides on top: later sources win, field by field.
//! let config = ConfigLoader::new()
//!     .yaml(yaml)
//!     .map(serde_json::json!({ "backends": [{}, { "password": "hunter2" }] }))
//!     .load()?;
//! assert_eq!(config.default_backend().map(|b| b.name()), Some("hot"));
//! assert_eq!(config.backend("shared").map(|b| b.kind()), Some(BackendType::Redis));
//! assert_eq!(config.service.protection_max_wait, Duration::from_secs(2));
//! // Secrets never print.
//! assert!(!format!("{config:?}").contains("hunter2"));
//!
//! // Errors say which field, from which source, and what is wrong.
//! let err = CacheConfig::from_yaml_str("backends:\n  - type: redis\n    servers: [a:1]\n")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "`backends.0.servers` (from YAML source string): `servers` is not a setting of redis \
//!      backends; it belongs to memcached backends (check `type`, or remove it)"
//! );
//! # Ok::<(), lexicache_config::ConfigError>(())
//! ```
//!
//! # Sources
//!
//! [`ConfigLoader`] merges sources in the order given, later ones winning field by field:
//! typically a file, then the environment (`LEXICACHE_SERVICE__TIMEOUT=1s`,
//! `LEXICACHE_BACKENDS__1__PASSWORD=...`: `__` nests, list entries go by index). Durations
//! are `"500ms"`, `"30s"`, `"2m"`, `"1h"`, or a number of seconds. Secrets come inline or
//! from a file (`password_file`, `sentinel_password_file`, `key_file`) read at load time, and
//! live in [`Secret`], whose `Debug` and `Display` print `***`.
//!
//! # Rules
//!
//! [`ConfigLoader::load`] (and [`CacheConfig::validate`]) refuse, with a [`ConfigError`]
//! naming the field and its source:
//!
//! - unknown fields, and fields of another backend type ([`ConfigError::ForeignField`]);
//! - in a tiered backend, fields in the wrong section ([`ConfigError::Misplaced`]: `prefix`
//!   beside `l2` rather than in it, `name` inside `l2`, a tiered `l2`), and an L2 that cannot
//!   carry invalidations without `invalidation: none`
//!   ([`ConfigError::NoInvalidationChannel`]);
//! - no enabled backend, two default backends, or several enabled backends with no default
//!   (a lone backend is the default);
//! - two backends with one name;
//! - ports, pool sizes, value sizes, counts and durations out of range;
//! - a Redis URL that does not parse, addresses that are not `host:port`, settings that
//!   exclude each other (`url` with `host`, `password` with `password_file`, ...);
//! - serializer keys shorter than 32 bytes (encryption keys are exactly 32);
//! - with `environment: production`: Redis on a non-loopback host with neither a password
//!   nor TLS, a `signed` or `encrypted` serializer without keys, and `clear_on_start`.
//!
//! Every field's default is in its documentation and in `docs/configuration.md`.
#![deny(missing_docs)]

mod backend;
mod config;
mod de;
mod error;
mod loader;
pub mod provider;
mod secret;
mod serializer;
mod service;
mod validate;

pub use backend::{
    BackendType, CacheBackendConfig, MemcachedBackendConfig, MemoryBackendConfig,
    RedisBackendConfig, RedisMode, TieredBackendConfig, TieredInvalidation, TieredL1Config,
    DEFAULT_L1_TTL, DEFAULT_MAX_STALENESS, DEFAULT_MEMCACHED_SERVER, DEFAULT_MEMORY_MAX_ENTRIES,
    DEFAULT_REDIS_HOST, DEFAULT_REDIS_PORT, DEFAULT_SENTINEL_PORT,
};
pub use config::CacheConfig;
pub use de::parse_duration;
pub use error::{ConfigError, Location};
pub use figment;
pub use loader::{ConfigLoader, DEFAULT_ENV_PREFIX};
pub use provider::{CacheProvider, ConfiguredService, ProviderHealth, ProviderMetrics};
pub use secret::Secret;
pub use serializer::ConfiguredSerializer;
pub use service::{
    Algorithm, CircuitBreakerSettings, KeyConfig, OnTimeout, PayloadFormat, SerializerConfig,
    SerializerKind, ServiceConfig,
};
pub use validate::{ENCRYPTION_KEY_LEN, MAX_POOL_SIZE, MIN_SIGNING_KEY_LEN};
