//! [`CacheConfig`]: the top of a configuration.

use serde::Deserialize;

use crate::backend::{CacheBackendConfig, MemoryBackendConfig};
use crate::de;
use crate::service::ServiceConfig;

/// A whole lexicache configuration: named backends and the settings of the services over
/// them.
///
/// ```
/// use lexicache_config::CacheConfig;
///
/// let config = CacheConfig::from_yaml_str(
///     "
/// environment: staging
/// backends:
///   - type: memory
///     name: hot
///     max_entries: 10000
///   - type: redis
///     name: shared
///     url: redis://127.0.0.1:6390/0
///     default: true
/// service:
///   protection_max_wait: 2s
/// ",
/// )?;
/// assert_eq!(config.default_backend().map(|b| b.name()), Some("shared"));
/// assert_eq!(config.service.protection_max_wait.as_secs(), 2);
/// # Ok::<(), lexicache_config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// The configuration's name. Default `"cache"`.
    pub name: String,
    /// Whether caching is on; a disabled configuration gives a provider with no services.
    /// Default `true`.
    pub enabled: bool,
    /// The environment; `production` (or `prod`) turns on the production rules (see
    /// [`CacheConfig::validate`]). Default `"development"`.
    pub environment: String,
    /// The backends, in order. Default: one memory backend named `memory`.
    #[serde(deserialize_with = "de::list")]
    pub backends: Vec<CacheBackendConfig>,
    /// Settings of every service. Default: [`ServiceConfig::default`].
    pub service: ServiceConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            name: "cache".to_owned(),
            enabled: true,
            environment: "development".to_owned(),
            backends: vec![CacheBackendConfig::Memory(MemoryBackendConfig::default())],
            service: ServiceConfig::default(),
        }
    }
}

impl CacheConfig {
    /// Whether `environment` is `production` or `prod` (any case).
    #[must_use]
    pub fn is_production(&self) -> bool {
        let env = self.environment.trim();
        env.eq_ignore_ascii_case("production") || env.eq_ignore_ascii_case("prod")
    }

    /// The default backend: the enabled one marked `default: true`, or the only enabled
    /// backend.
    #[must_use]
    pub fn default_backend(&self) -> Option<&CacheBackendConfig> {
        let mut enabled = self.backends.iter().filter(|b| b.enabled());
        let marked = self.backends.iter().find(|b| b.enabled() && b.is_default());
        marked.or_else(|| match (enabled.next(), enabled.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        })
    }

    /// The backend called `name`, enabled or not.
    #[must_use]
    pub fn backend(&self, name: &str) -> Option<&CacheBackendConfig> {
        self.backends.iter().find(|b| b.name() == name)
    }
}
