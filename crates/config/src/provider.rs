//! [`CacheProvider`]: connects every enabled backend of a [`CacheConfig`] and builds one named
//! [`CacheService`] over each; health, metrics and shutdown for all of them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    Error, ErrorKind, HealthCheckResult, HealthStatus, MetricsSnapshot, Operation, Result,
    SharedBackend,
};
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::{Deployment, RedisBackend, RedisConfig};
use lexicache_service::layers::CircuitBreakerConfig;
use lexicache_service::{CacheService, Fallback, Protection};
use lexicache_tiered::TieredBackend;

use crate::backend::{
    BackendType, CacheBackendConfig, MemcachedBackendConfig, MemoryBackendConfig,
    RedisBackendConfig, RedisMode, TieredBackendConfig, DEFAULT_REDIS_HOST, DEFAULT_REDIS_PORT,
    DEFAULT_SENTINEL_PORT,
};
use crate::config::CacheConfig;
use crate::error::ConfigError;
use crate::serializer::ConfiguredSerializer;
use crate::service::{OnTimeout, ServiceConfig};
use crate::validate::parse_address;

/// The services a provider builds: typed facades over a configured serializer.
pub type ConfiguredService = CacheService<ConfiguredSerializer>;

/// The concrete backend under a service, kept so that shutdown can close it.
#[derive(Debug)]
enum Handle {
    Memory,
    Redis(RedisBackend),
    Memcached,
    Tiered {
        backend: TieredBackend,
        /// The L2, when it is Redis.
        redis: Option<RedisBackend>,
    },
}

impl Handle {
    /// Closes the backend's connections: stops a tiered backend's tasks (and with them its
    /// subscription), then `QUIT`s Redis.
    async fn close(self, name: &str) {
        let redis = match self {
            Handle::Redis(redis) => Some(redis),
            Handle::Tiered { backend, redis } => {
                drop(backend);
                redis
            }
            Handle::Memory | Handle::Memcached => None,
        };
        if let Some(redis) = redis {
            if let Err(e) = redis.quit().await {
                tracing::debug!(backend = %name, error = %e, "redis quit failed");
            }
        }
    }
}

struct Entry {
    name: String,
    kind: BackendType,
    service: ConfiguredService,
    handle: Handle,
}

/// Named [`CacheService`]s built from a [`CacheConfig`]: the reference's `CacheProvider`.
///
/// - [`from_config`](Self::from_config) connects every enabled backend (disabled ones are
///   skipped) and builds a service over each, with the [`ServiceConfig`] settings: protection,
///   serializer, circuit breaker, metrics, timeout, namespace, tag TTL.
/// - [`service`](Self::service) by name (an unknown name is
///   [`ConfigError::UnknownBackend`]), [`default_service`](Self::default_service).
/// - [`health`](Self::health) checks every backend; [`metrics`](Self::metrics) adds them up.
/// - [`tiered`](Self::tiered) gives a `type: tiered` backend itself (its L1, its invalidation
///   counters); the provider builds it over its L2 with the L2's pub/sub as the invalidation
///   channel (`invalidation: auto` over Redis) and waits, up to the L2's `connect_timeout`,
///   for the subscription before serving.
/// - [`shutdown`](Self::shutdown) closes connections; no task of the provider outlives it.
/// - [`stub`](Self::stub): one in-memory service, for tests.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_config::{CacheConfig, CacheProvider};
///
/// let config = CacheConfig::from_yaml_str(
///     "
/// backends:
///   - { type: memory, name: hot, default: true }
///   - { type: memory, name: cold, max_bytes: 1048576 }
///   - { type: memory, name: off, enabled: false }
/// ",
/// )?;
/// let provider = CacheProvider::from_config(&config).await?;
/// let hot = provider.default_service().expect("a default");
/// hot.try_set("greeting", &"hello", None).await?;
/// assert_eq!(hot.try_get::<String>("greeting").await?.as_deref(), Some("hello"));
/// assert!(provider.service("cold").is_ok());
/// assert!(provider.service("off").is_err()); // disabled: not built
/// assert_eq!(provider.metrics().total.sets, 1);
/// provider.shutdown().await;
/// # Ok(()) }
/// ```
pub struct CacheProvider {
    entries: Vec<Entry>,
    default: Option<usize>,
}

impl fmt::Debug for CacheProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheProvider")
            .field("services", &self.names().collect::<Vec<_>>())
            .field("default", &self.default_name())
            .finish()
    }
}

/// The health of every backend of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderHealth {
    /// One result per service, in configuration order.
    pub backends: Vec<HealthCheckResult>,
}

impl ProviderHealth {
    /// The worst status of all backends (`Healthy` when there are none).
    #[must_use]
    pub fn status(&self) -> HealthStatus {
        self.backends
            .iter()
            .map(|b| b.status)
            .max()
            .unwrap_or(HealthStatus::Healthy)
    }

    /// Whether every backend is healthy.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.status() == HealthStatus::Healthy
    }
}

/// The metrics of every service of a provider, and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMetrics {
    /// `(service name, snapshot)`, in configuration order.
    pub services: Vec<(String, MetricsSnapshot)>,
    /// Counts summed over services; `hit_rate` recomputed from the sums; the latencies are the
    /// highest of the services' (percentiles do not add up).
    pub total: MetricsSnapshot,
}

impl CacheProvider {
    /// Connects every enabled backend of `config` and builds a service over each. The config
    /// is [validated](CacheConfig::validate) first. Backends with `clear_on_start` are
    /// cleared. A disabled config (`enabled: false`) gives a provider with no services.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the config breaks a rule; the backend's error when one
    /// cannot be connected or cleared (connections already opened are closed first).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the backends connected so far, which close their
    /// connections in the background.
    pub async fn from_config(config: &CacheConfig) -> Result<Self> {
        config.validate()?;
        let mut provider = Self {
            entries: Vec::new(),
            default: None,
        };
        if !config.enabled {
            return Ok(provider);
        }
        let serializer = ConfiguredSerializer::from_config(&config.service.serializer)?;
        let default_name = config.default_backend().map(|b| b.name().to_owned());
        for backend in config.backends.iter().filter(|b| b.enabled()) {
            match build(backend, &config.service, &serializer).await {
                Ok(entry) => {
                    if Some(&entry.name) == default_name.as_ref() {
                        provider.default = Some(provider.entries.len());
                    }
                    provider.entries.push(entry);
                }
                Err(e) => {
                    provider.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(provider)
    }

    /// An in-memory provider for tests (the reference's `CacheModule.stub()`): one memory
    /// backend named `memory`, the default, with the default service settings.
    #[must_use]
    pub fn stub() -> Self {
        let config = MemoryBackendConfig::default();
        let entry = Entry {
            name: config.name.clone(),
            kind: BackendType::Memory,
            service: service(
                memory_backend(&config),
                &config.name,
                &ServiceConfig::default(),
                &ConfiguredSerializer::default(),
            ),
            handle: Handle::Memory,
        };
        Self {
            entries: vec![entry],
            default: Some(0),
        }
    }

    /// The service over the backend called `name`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownBackend`] when there is no enabled backend of that name.
    pub fn service(&self, name: &str) -> std::result::Result<&ConfiguredService, ConfigError> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.service)
            .ok_or_else(|| ConfigError::UnknownBackend {
                name: name.to_owned(),
                known: self
                    .names()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The service over the default backend; `None` only for a disabled config.
    #[must_use]
    pub fn default_service(&self) -> Option<&ConfiguredService> {
        self.default.map(|i| &self.entries[i].service)
    }

    /// The default backend's name.
    #[must_use]
    pub fn default_name(&self) -> Option<&str> {
        self.default.map(|i| self.entries[i].name.as_str())
    }

    /// The names of the services, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The type of the backend called `name`.
    #[must_use]
    pub fn kind(&self, name: &str) -> Option<BackendType> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.kind)
    }

    /// The tiered backend called `name` (the one its service's layers wrap), for its
    /// [`stats`](TieredBackend::stats), its [`l1`](TieredBackend::l1) and whether it
    /// [serves L1](TieredBackend::is_serving_l1); `None` when there is no tiered backend of
    /// that name.
    #[must_use]
    pub fn tiered(&self, name: &str) -> Option<&TieredBackend> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| match &e.handle {
                Handle::Tiered { backend, .. } => Some(backend),
                _ => None,
            })
    }

    /// Checks every backend at once, each within `timeout`.
    pub async fn health(&self, timeout: Duration) -> ProviderHealth {
        let checks = self.entries.iter().map(|e| async move {
            let mut result = e.service.health_check(timeout).await;
            result.backend.clone_from(&e.name);
            result
        });
        ProviderHealth {
            backends: futures::future::join_all(checks).await,
        }
    }

    /// Every service's metrics, and their sum.
    #[must_use]
    pub fn metrics(&self) -> ProviderMetrics {
        let services: Vec<(String, MetricsSnapshot)> = self
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.service.metrics()))
            .collect();
        let mut total = MetricsSnapshot::default();
        for (_, m) in &services {
            total.hits += m.hits;
            total.misses += m.misses;
            total.sets += m.sets;
            total.deletes += m.deletes;
            total.errors += m.errors;
            total.operations += m.operations;
            total.latency_p50 = total.latency_p50.max(m.latency_p50);
            total.latency_p99 = total.latency_p99.max(m.latency_p99);
        }
        let reads = total.hits + total.misses;
        if reads > 0 {
            total.hit_rate = total.hits as f64 / reads as f64;
        }
        ProviderMetrics { services, total }
    }

    /// Closes every connection (Redis `QUIT`; memcached pools and memory caches are dropped)
    /// and drops the services, which ends the backends' background tasks (Redis connection
    /// and event listener tasks; a tiered backend's subscriber, publisher and heartbeat
    /// tasks).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future part way still drops every backend, whose connections then close
    /// in the background.
    pub async fn shutdown(mut self) {
        for entry in self.entries.drain(..) {
            // The service holds the backend too: drop it first, so that a tiered backend's
            // tasks stop before its L2 closes.
            drop(entry.service);
            entry.handle.close(&entry.name).await;
        }
    }
}

fn service(
    backend: impl lexicache_core::CacheBackend,
    name: &str,
    settings: &ServiceConfig,
    serializer: &ConfiguredSerializer,
) -> ConfiguredService {
    let protection = Protection::new()
        .enabled(settings.enable_protection)
        .distributed(settings.protection_distributed)
        .lock_ttl(settings.protection_lock_ttl)
        .max_wait(settings.protection_max_wait)
        .retry_interval(settings.protection_retry_interval)
        .on_timeout(match settings.protection_on_timeout {
            OnTimeout::Load => Fallback::Load,
            OnTimeout::Fail => Fallback::Fail,
        });
    let mut builder = CacheService::builder(backend)
        .serializer(serializer.clone())
        .name(name)
        .protection(protection)
        .metrics(settings.metrics)
        .tag_ttl(settings.tag_ttl);
    if let Some(timeout) = settings.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(namespace) = &settings.namespace {
        builder = builder.namespace(namespace.clone());
    }
    let cb = &settings.circuit_breaker;
    if cb.enabled {
        builder = builder.circuit_breaker(
            CircuitBreakerConfig::new()
                .failure_threshold(cb.failure_threshold)
                .window(cb.window)
                .open_duration(cb.open_duration)
                .half_open_probes(cb.half_open_probes)
                .success_threshold(cb.success_threshold),
        );
    }
    builder.build()
}

async fn build(
    backend: &CacheBackendConfig,
    settings: &ServiceConfig,
    serializer: &ConfiguredSerializer,
) -> Result<Entry> {
    let name = backend.name().to_owned();
    let (service, handle) = match backend {
        CacheBackendConfig::Memory(m) => (
            service(memory_backend(m), &name, settings, serializer),
            Handle::Memory,
        ),
        CacheBackendConfig::Redis(r) => {
            let redis = redis_backend(r).await?;
            (
                service(redis.clone(), &name, settings, serializer),
                Handle::Redis(redis),
            )
        }
        CacheBackendConfig::Memcached(m) => (
            service(memcached_backend(m).await?, &name, settings, serializer),
            Handle::Memcached,
        ),
        CacheBackendConfig::Tiered(t) => {
            let (backend, redis) = tiered_backend(&name, t).await?;
            (
                service(backend.clone(), &name, settings, serializer),
                Handle::Tiered { backend, redis },
            )
        }
    };
    let entry = Entry {
        name,
        kind: backend.kind(),
        service,
        handle,
    };
    if backend.clear_on_start() {
        if let Err(e) = entry.service.clear().await {
            drop(entry.service);
            entry.handle.close(&entry.name).await;
            return Err(e);
        }
    }
    Ok(entry)
}

fn memory_backend(m: &MemoryBackendConfig) -> MemoryBackend {
    let mut b = MemoryBackend::builder().name(&m.name).prefix(&m.prefix);
    if let Some(ttl) = m.default_ttl {
        b = b.default_ttl(ttl);
    }
    if let Some(n) = m.max_entries {
        b = b.max_entries(n);
    }
    if let Some(n) = m.max_bytes {
        b = b.max_bytes(n);
    }
    if let Some(n) = m.max_value_size {
        b = b.max_value_size(n);
    }
    b.build()
}

/// Builds a tiered backend: L1 from `l1`, L2 with the builders of its type (named after the
/// tiered backend, so errors and health name what the configuration names), and, with
/// `invalidation: auto` over Redis, the L2's pub/sub as the invalidation channel. Returns the
/// L2 when it is Redis, for shutdown.
async fn tiered_backend(
    name: &str,
    t: &TieredBackendConfig,
) -> Result<(TieredBackend, Option<RedisBackend>)> {
    let mut l1 = MemoryBackend::builder().name(format!("{name}.l1"));
    if let Some(n) = t.l1.max_entries {
        l1 = l1.max_entries(n);
    }
    if let Some(n) = t.l1.max_bytes {
        l1 = l1.max_bytes(n);
    }
    if let Some(n) = t.l1.max_value_size {
        l1 = l1.max_value_size(n);
    }
    let (l2, redis, wait): (SharedBackend, Option<RedisBackend>, Duration) = match &*t.l2 {
        CacheBackendConfig::Memory(m) => {
            let mut m = m.clone();
            m.name = name.to_owned();
            (Arc::new(memory_backend(&m)), None, Duration::ZERO)
        }
        CacheBackendConfig::Redis(r) => {
            let mut r = r.clone();
            r.name = name.to_owned();
            let redis = redis_backend(&r).await?;
            (Arc::new(redis.clone()), Some(redis), r.connect_timeout)
        }
        CacheBackendConfig::Memcached(m) => {
            let mut m = m.clone();
            m.name = name.to_owned();
            (Arc::new(memcached_backend(&m).await?), None, Duration::ZERO)
        }
        CacheBackendConfig::Tiered(_) => {
            return Err(Error::new(ErrorKind::Config, name.to_owned())
                .with_operation(Operation::Connect)
                .with_message("the l2 of a tiered backend cannot be tiered"));
        }
    };
    // The tiered backend cannot see the default TTL L2 gives entries written without one, so
    // L1 copies never live longer than it.
    let l1_ttl = t.l2.default_ttl().map_or(t.l1_ttl, |ttl| ttl.min(t.l1_ttl));
    let mut builder = TieredBackend::builder(l1.build(), l2)
        .name(name)
        .l1_ttl(l1_ttl);
    let channel = redis.as_ref().filter(|_| t.invalidates());
    if let Some(redis) = channel {
        builder = builder
            .invalidation(Arc::new(redis.pubsub()))
            .max_staleness(t.max_staleness());
        if let Some(every) = t.heartbeat_interval {
            builder = builder.heartbeat_interval(every);
        }
    }
    let backend = match builder.build().await {
        Ok(backend) => backend,
        Err(e) => {
            if let Some(redis) = &redis {
                let _ = redis.quit().await;
            }
            return Err(e);
        }
    };
    // L1 is bypassed (never stale) until the subscription is up: give it the time a connection
    // may take, so that the service serves L1 from its first call in the usual case.
    if channel.is_some() && !backend.wait_until_serving(wait).await {
        tracing::warn!(
            backend = %name,
            "the invalidation subscription is not up yet; L1 is bypassed until it is"
        );
    }
    Ok((backend, redis))
}

fn addresses(nodes: &[String], default_port: u16) -> Result<Vec<(String, u16)>> {
    nodes
        .iter()
        .map(|n| {
            parse_address(n)
                .or_else(|_| {
                    // A bare host takes the mode's default port.
                    if n.contains(':') {
                        Err(())
                    } else {
                        Ok((n.trim().to_owned(), default_port))
                    }
                })
                .map_err(|()| {
                    Error::new(ErrorKind::Config, "config")
                        .with_operation(Operation::Connect)
                        .with_message(format!("invalid redis node address `{n}`"))
                })
        })
        .collect()
}

fn redis_config(r: &RedisBackendConfig) -> Result<RedisConfig> {
    let mut c = match &r.url {
        Some(url) => RedisConfig::from_url(url)?,
        None => {
            let mut c = RedisConfig::default();
            c.deployment = match r.mode.unwrap_or_default() {
                RedisMode::Standalone => Deployment::Standalone {
                    host: r
                        .host
                        .clone()
                        .unwrap_or_else(|| DEFAULT_REDIS_HOST.to_owned()),
                    port: r.port.unwrap_or(DEFAULT_REDIS_PORT),
                },
                RedisMode::Cluster => Deployment::Cluster {
                    nodes: addresses(&r.nodes, DEFAULT_REDIS_PORT)?,
                },
                RedisMode::Sentinel => Deployment::Sentinel {
                    sentinels: addresses(&r.nodes, DEFAULT_SENTINEL_PORT)?,
                    master: r.sentinel_master.clone().unwrap_or_default(),
                },
            };
            c
        }
    };
    if r.username.is_some() {
        c.username.clone_from(&r.username);
    }
    if let Some(pw) = &r.password {
        c.password = Some(pw.expose().to_owned());
    }
    if r.sentinel_username.is_some() {
        c.sentinel_username.clone_from(&r.sentinel_username);
    }
    if let Some(pw) = &r.sentinel_password {
        c.sentinel_password = Some(pw.expose().to_owned());
    }
    if r.db.is_some() {
        c.database = r.db;
    }
    if r.tls && c.tls.is_none() {
        c.set_tls(true)?;
    }
    c.command_timeout = r.command_timeout;
    c.connect_timeout = r.connect_timeout;
    c.max_command_buffer = r.max_command_buffer;
    c.fail_fast = r.fail_fast;
    Ok(c)
}

async fn redis_backend(r: &RedisBackendConfig) -> Result<RedisBackend> {
    let mut b = RedisBackend::builder()
        .config(redis_config(r).map_err(|e| e.with_backend(r.name.clone()))?)
        .name(&r.name)
        .prefix(&r.prefix);
    if let Some(ttl) = r.default_ttl {
        b = b.default_ttl(ttl);
    }
    if let Some(n) = r.max_value_size {
        b = b.max_value_size(n);
    }
    b.connect().await
}

async fn memcached_backend(m: &MemcachedBackendConfig) -> Result<MemcachedBackend> {
    let mut b = MemcachedBackend::builder()
        .name(&m.name)
        .servers(m.servers.iter().cloned())
        .prefix(&m.prefix)
        .pool_size(m.pool_size)
        .connect_timeout(m.connect_timeout)
        .command_timeout(m.command_timeout)
        .backoff(m.backoff_initial, m.backoff_max);
    if let Some(ttl) = m.default_ttl {
        b = b.default_ttl(ttl);
    }
    if let Some(n) = m.max_value_size {
        b = b.max_value_size(n);
    }
    b.connect().await
}
