//! Backend settings: the flattened [`CacheBackendConfig`] (`type: memory | redis | memcached |
//! tiered`) and the typed [`MemoryBackendConfig`], [`RedisBackendConfig`],
//! [`MemcachedBackendConfig`] and [`TieredBackendConfig`].
//!
//! Every backend has `name`, `enabled`, `default` and `clear_on_start`; memory, Redis and
//! memcached backends also have `prefix`, `default_ttl` and `max_value_size`; the rest belongs
//! to one type. A field of another type (`servers` on a Redis backend, say) is an error naming
//! the field and the type it belongs to, never ignored. A tiered backend nests the settings of
//! its two levels: `l1` (memory bounds) and `l2` (a whole memory, Redis or memcached section).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::de;
use crate::secret::Secret;

pub use lexicache_tiered::{DEFAULT_L1_TTL, DEFAULT_MAX_STALENESS};

/// The memory backend's default entry bound (`lexicache_memory::DEFAULT_MAX_ENTRIES`).
pub const DEFAULT_MEMORY_MAX_ENTRIES: u64 = 100_000;
/// The Redis port used when none is given.
pub const DEFAULT_REDIS_PORT: u16 = 6379;
/// The sentinel port used when a sentinel address has none.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// The Redis host used when neither `url` nor `host` is given.
pub const DEFAULT_REDIS_HOST: &str = "127.0.0.1";
/// The memcached server used when `servers` is not given.
pub const DEFAULT_MEMCACHED_SERVER: &str = "127.0.0.1:11211";

/// The kind of a backend: the `type` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendType {
    /// In process (`lexicache-memory`).
    Memory,
    /// Redis standalone, cluster or sentinel (`lexicache-redis`).
    Redis,
    /// One or more memcached servers (`lexicache-memcached`).
    Memcached,
    /// An in-process L1 in front of a memory, Redis or memcached L2 (`lexicache-tiered`).
    Tiered,
}

impl BackendType {
    /// Every type.
    pub const ALL: [BackendType; 4] = [Self::Memory, Self::Redis, Self::Memcached, Self::Tiered];

    /// The name written in `type`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Memcached => "memcached",
            Self::Tiered => "tiered",
        }
    }

    /// The fields a backend of this type accepts, `type` included.
    #[must_use]
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Memory => MEMORY_FIELDS,
            Self::Redis => REDIS_FIELDS,
            Self::Memcached => MEMCACHED_FIELDS,
            Self::Tiered => TIERED_FIELDS,
        }
    }
}

impl fmt::Display for BackendType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const MEMORY_FIELDS: &[&str] = &[
    "type",
    "name",
    "enabled",
    "default",
    "prefix",
    "default_ttl",
    "max_value_size",
    "clear_on_start",
    "max_entries",
    "max_bytes",
];

const REDIS_FIELDS: &[&str] = &[
    "type",
    "name",
    "enabled",
    "default",
    "prefix",
    "default_ttl",
    "max_value_size",
    "clear_on_start",
    "url",
    "mode",
    "host",
    "port",
    "nodes",
    "sentinel_master",
    "sentinel_username",
    "sentinel_password",
    "sentinel_password_file",
    "username",
    "password",
    "password_file",
    "tls",
    "db",
    "command_timeout",
    "connect_timeout",
    "max_command_buffer",
    "fail_fast",
];

const MEMCACHED_FIELDS: &[&str] = &[
    "type",
    "name",
    "enabled",
    "default",
    "prefix",
    "default_ttl",
    "max_value_size",
    "clear_on_start",
    "servers",
    "pool_size",
    "connect_timeout",
    "command_timeout",
    "backoff_initial",
    "backoff_max",
];

const TIERED_FIELDS: &[&str] = &[
    "type",
    "name",
    "enabled",
    "default",
    "clear_on_start",
    "l1_ttl",
    "max_staleness",
    "heartbeat_interval",
    "invalidation",
    "l1",
    "l2",
];

/// The fields every backend has that a tiered backend's `l2` section does not take: the
/// tiered backend's own count.
pub(crate) const TIERED_L2_REFUSED: &[&str] = &["name", "enabled", "default", "clear_on_start"];

/// One backend: `type` selects the variant, whose fields sit beside it (the flattened form of
/// the reference's `CacheBackendConfig`).
///
/// ```
/// use lexicache_config::{BackendType, CacheBackendConfig};
///
/// let backend: CacheBackendConfig =
///     serde_json::from_str(r#"{"type": "redis", "name": "shared", "port": 6390}"#).unwrap();
/// assert_eq!(backend.kind(), BackendType::Redis);
/// assert_eq!(backend.name(), "shared");
///
/// // A memcached field on a Redis backend is rejected, by name.
/// let err = serde_json::from_str::<CacheBackendConfig>(r#"{"type": "redis", "servers": []}"#)
///     .unwrap_err();
/// assert!(err.to_string().contains("unknown field `servers`"));
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CacheBackendConfig {
    /// `type: memory`.
    Memory(MemoryBackendConfig),
    /// `type: redis`.
    Redis(RedisBackendConfig),
    /// `type: memcached`.
    Memcached(MemcachedBackendConfig),
    /// `type: tiered`.
    Tiered(TieredBackendConfig),
}

macro_rules! common {
    ($self:ident, $field:ident) => {
        match $self {
            CacheBackendConfig::Memory(c) => &c.$field,
            CacheBackendConfig::Redis(c) => &c.$field,
            CacheBackendConfig::Memcached(c) => &c.$field,
            CacheBackendConfig::Tiered(c) => &c.$field,
        }
    };
}

impl CacheBackendConfig {
    /// The backend's type.
    #[must_use]
    pub fn kind(&self) -> BackendType {
        match self {
            Self::Memory(_) => BackendType::Memory,
            Self::Redis(_) => BackendType::Redis,
            Self::Memcached(_) => BackendType::Memcached,
            Self::Tiered(_) => BackendType::Tiered,
        }
    }

    /// The backend's unique name.
    #[must_use]
    pub fn name(&self) -> &str {
        common!(self, name)
    }

    /// Whether the backend is built (`enabled`).
    #[must_use]
    pub fn enabled(&self) -> bool {
        *common!(self, enabled)
    }

    /// Whether this is the default backend (`default`).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *common!(self, default)
    }

    /// The key prefix (`prefix`; a tiered backend's is its L2's).
    #[must_use]
    pub fn prefix(&self) -> &str {
        match self {
            Self::Memory(c) => &c.prefix,
            Self::Redis(c) => &c.prefix,
            Self::Memcached(c) => &c.prefix,
            Self::Tiered(c) => c.l2.prefix(),
        }
    }

    /// The TTL of entries written without one (`default_ttl`; a tiered backend's is its
    /// L2's).
    #[must_use]
    pub fn default_ttl(&self) -> Option<Duration> {
        match self {
            Self::Memory(c) => c.default_ttl,
            Self::Redis(c) => c.default_ttl,
            Self::Memcached(c) => c.default_ttl,
            Self::Tiered(c) => c.l2.default_ttl(),
        }
    }

    /// The largest value accepted (`max_value_size`; a tiered backend's is its L2's), or
    /// `None` for the backend's default.
    #[must_use]
    pub fn max_value_size(&self) -> Option<usize> {
        match self {
            Self::Memory(c) => c.max_value_size,
            Self::Redis(c) => c.max_value_size,
            Self::Memcached(c) => c.max_value_size,
            Self::Tiered(c) => c.l2.max_value_size(),
        }
    }

    /// Whether the provider clears the backend's namespace when it starts (`clear_on_start`).
    #[must_use]
    pub fn clear_on_start(&self) -> bool {
        *common!(self, clear_on_start)
    }
}

/// Where to find the Redis servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server at `host:port` (the default).
    #[default]
    Standalone,
    /// A Redis Cluster reached through any of `nodes`.
    Cluster,
    /// The primary `sentinel_master`, found through the sentinels in `nodes`.
    Sentinel,
}

/// `type: memory`: the in-process moka backend. Maps onto `MemoryBackend::builder()`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryBackendConfig {
    /// The backend's unique name. Default `"memory"`.
    pub name: String,
    /// Whether the provider builds it. Default `true`.
    pub enabled: bool,
    /// Whether this is the default backend. Default `false` (a lone backend is the default
    /// anyway).
    pub default: bool,
    /// A prefix put before every key. Default `""`.
    pub prefix: String,
    /// TTL of entries written without one. Default: none.
    #[serde(deserialize_with = "de::option_duration")]
    pub default_ttl: Option<Duration>,
    /// The largest value accepted, in bytes. Default 64 MiB.
    pub max_value_size: Option<usize>,
    /// Clear the namespace when the provider starts. Default `false`; refused in production.
    pub clear_on_start: bool,
    /// Bound by entry count. Default 100,000 when `max_bytes` is not set.
    pub max_entries: Option<u64>,
    /// Bound by bytes (key + value + 64 bytes per entry) instead of entries. Default: none.
    pub max_bytes: Option<u64>,
}

impl Default for MemoryBackendConfig {
    fn default() -> Self {
        Self {
            name: "memory".to_owned(),
            enabled: true,
            default: false,
            prefix: String::new(),
            default_ttl: None,
            max_value_size: None,
            clear_on_start: false,
            max_entries: None,
            max_bytes: None,
        }
    }
}

/// `type: redis`: the fred-backed Redis backend. Maps onto `RedisBackend::builder()`.
///
/// Say where Redis is either with `url` (`redis://`, `rediss://`, `redis-cluster://`,
/// `redis-sentinel://`; see `lexicache_redis::RedisConfig::from_url`) or with `mode`, `host`,
/// `port` and `nodes`, not both. `Debug` shows neither passwords nor the password inside the
/// URL.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisBackendConfig {
    /// The backend's unique name. Default `"redis"`.
    pub name: String,
    /// Whether the provider builds it. Default `true`.
    pub enabled: bool,
    /// Whether this is the default backend. Default `false`.
    pub default: bool,
    /// A prefix put before every key. Default `""` (the whole logical database).
    pub prefix: String,
    /// TTL of entries written without one. Default: none.
    #[serde(deserialize_with = "de::option_duration")]
    pub default_ttl: Option<Duration>,
    /// The largest value accepted, in bytes. Default 16 MiB.
    pub max_value_size: Option<usize>,
    /// Clear the namespace (by `SCAN` + `UNLINK`) when the provider starts. Default `false`;
    /// refused in production.
    pub clear_on_start: bool,
    /// A Redis URL; excludes `mode`, `host`, `port`, `nodes` and `sentinel_master`. Default:
    /// none. May carry the password, but `password`/`password_file` keep it out of the URL.
    pub url: Option<String>,
    /// Standalone, cluster or sentinel. Default `standalone`.
    pub mode: Option<RedisMode>,
    /// The standalone server's host. Default `127.0.0.1`.
    pub host: Option<String>,
    /// The standalone server's port. Default 6379.
    pub port: Option<u16>,
    /// Cluster nodes or sentinel addresses, as `host:port` (a list, or one comma-separated
    /// string). Default: none.
    #[serde(deserialize_with = "de::string_list")]
    pub nodes: Vec<String>,
    /// The name the sentinels monitor the primary under (sentinel mode). Default: none.
    pub sentinel_master: Option<String>,
    /// The sentinels' ACL user. Default: none.
    pub sentinel_username: Option<String>,
    /// The sentinels' password. Default: none.
    pub sentinel_password: Option<Secret>,
    /// A file holding the sentinels' password (read at load time). Default: none.
    pub sentinel_password_file: Option<PathBuf>,
    /// The ACL user. Default: none.
    pub username: Option<String>,
    /// The password. Default: none.
    pub password: Option<Secret>,
    /// A file holding the password, read at load time with its trailing newline trimmed.
    /// Default: none.
    pub password_file: Option<PathBuf>,
    /// TLS with the platform's root certificates. Default `false` (`rediss://` also turns it
    /// on).
    pub tls: bool,
    /// The logical database (not in a cluster). Default: none (database 0).
    pub db: Option<u8>,
    /// How long one command may take, queueing included. Default 500 ms.
    #[serde(deserialize_with = "de::duration")]
    pub command_timeout: Duration,
    /// How long opening a connection may take. Default 2 s.
    #[serde(deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// The bound of the command queue (`0`: unbounded). Default 10,000.
    pub max_command_buffer: usize,
    /// Whether commands fail at once while disconnected. Default `true`.
    pub fail_fast: bool,
}

impl Default for RedisBackendConfig {
    fn default() -> Self {
        Self {
            name: "redis".to_owned(),
            enabled: true,
            default: false,
            prefix: String::new(),
            default_ttl: None,
            max_value_size: None,
            clear_on_start: false,
            url: None,
            mode: None,
            host: None,
            port: None,
            nodes: Vec::new(),
            sentinel_master: None,
            sentinel_username: None,
            sentinel_password: None,
            sentinel_password_file: None,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            db: None,
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            max_command_buffer: 10_000,
            fail_fast: true,
        }
    }
}

/// Replaces the password in a URL (`redis://user:pw@host`) with `***`, without parsing it
/// (a malformed URL must not print either).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let redacted_tail = redact_query(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{redacted_tail}")
        }
        None => format!("{scheme}://{authority}{redacted_tail}"),
    }
}

/// Replaces the userinfo of a `user:password@host:port` address with `***` (an address is
/// no place for credentials, but one written there must not print).
pub(crate) fn redact_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => address.to_owned(),
    }
}

/// Hides `sentinelPassword=` in a URL's query.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Debug for RedisBackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackendConfig")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("default", &self.default)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("max_value_size", &self.max_value_size)
            .field("clear_on_start", &self.clear_on_start)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("mode", &self.mode)
            .field("host", &self.host.as_deref().map(redact_address))
            .field("port", &self.port)
            .field(
                "nodes",
                &self
                    .nodes
                    .iter()
                    .map(|n| redact_address(n))
                    .collect::<Vec<_>>(),
            )
            .field("sentinel_master", &self.sentinel_master)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &self.sentinel_password)
            .field("sentinel_password_file", &self.sentinel_password_file)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_command_buffer", &self.max_command_buffer)
            .field("fail_fast", &self.fail_fast)
            .finish()
    }
}

/// `type: memcached`: one or more memcached servers by consistent hashing. Maps onto
/// `MemcachedBackend::builder()`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemcachedBackendConfig {
    /// The backend's unique name. Default `"memcached"`.
    pub name: String,
    /// Whether the provider builds it. Default `true`.
    pub enabled: bool,
    /// Whether this is the default backend. Default `false`.
    pub default: bool,
    /// A prefix put before every key. Default `""`.
    pub prefix: String,
    /// TTL of entries written without one. Default: none.
    #[serde(deserialize_with = "de::option_duration")]
    pub default_ttl: Option<Duration>,
    /// The largest value accepted, in bytes. Default: the servers' `item_size_max` less 512
    /// bytes (1,048,064 at memcached's default).
    pub max_value_size: Option<usize>,
    /// Default `false`, and `true` is refused: memcached cannot clear one namespace (the
    /// field exists so that every backend type has the same common fields).
    pub clear_on_start: bool,
    /// Servers as `host:port` (a list, or one comma-separated string). Default
    /// `["127.0.0.1:11211"]`.
    #[serde(deserialize_with = "de::string_list")]
    pub servers: Vec<String>,
    /// Connections per server. Default 16.
    pub pool_size: usize,
    /// How long a connect may take. Default 500 ms.
    #[serde(deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// How long one exchange may take. Default 1 s.
    #[serde(deserialize_with = "de::duration")]
    pub command_timeout: Duration,
    /// The first wait before reconnecting to a down server; doubles per failure. Default
    /// 500 ms.
    #[serde(deserialize_with = "de::duration")]
    pub backoff_initial: Duration,
    /// The longest wait between reconnects. Default 10 s.
    #[serde(deserialize_with = "de::duration")]
    pub backoff_max: Duration,
}

impl Default for MemcachedBackendConfig {
    fn default() -> Self {
        Self {
            name: "memcached".to_owned(),
            enabled: true,
            default: false,
            prefix: String::new(),
            default_ttl: None,
            max_value_size: None,
            clear_on_start: false,
            servers: vec![DEFAULT_MEMCACHED_SERVER.to_owned()],
            pool_size: 16,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// How a tiered backend tells other processes what it changed: the `invalidation` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TieredInvalidation {
    /// Redis pub/sub over the L2's own server and prefix (the default). Only a Redis L2 can
    /// carry it: with another L2 the configuration is refused, asking for `none`.
    #[default]
    Auto,
    /// No channel: each process sees its own changes at once, and other processes' changes
    /// when its L1 copy expires, after at most `l1_ttl`.
    None,
}

impl TieredInvalidation {
    /// The name written in `invalidation`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::None => "none",
        }
    }
}

/// The `l1` section of a tiered backend: the bounds of its in-process memory level. Its name
/// and prefix are the tiered backend's business, so only the bounds are settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TieredL1Config {
    /// Bound by entry count. Default 100,000 when `max_bytes` is not set.
    pub max_entries: Option<u64>,
    /// Bound by bytes (key + value + 64 bytes per entry) instead of entries. Default: none.
    pub max_bytes: Option<u64>,
    /// The largest value kept in L1, in bytes; larger values are served from L2 only.
    /// Default 64 MiB.
    pub max_value_size: Option<usize>,
}

/// `type: tiered`: an in-process memory L1 in front of a memory, Redis or memcached L2, with
/// invalidation across processes over Redis pub/sub. Maps onto
/// `lexicache_tiered::TieredBackend::builder()`.
///
/// `prefix`, `default_ttl` and `max_value_size` belong to the L2 section (L1 is private to the
/// process and holds copies of L2's entries); `name`, `enabled`, `default` and
/// `clear_on_start` belong to the tiered backend, not to `l2`. A copy lives in L1 for at most
/// `l1_ttl`, and never longer than the L2's `default_ttl` when it has one. `Debug` redacts
/// the L2's secrets as the L2's own `Debug` does.
///
/// ```
/// use std::time::Duration;
/// use lexicache_config::{BackendType, CacheBackendConfig, TieredInvalidation, DEFAULT_L1_TTL};
///
/// let backend: CacheBackendConfig = serde_json::from_str(
///     r#"{"type": "tiered", "l1": {"max_entries": 1000},
///         "l2": {"type": "redis", "url": "redis://127.0.0.1:6390", "prefix": "app:"}}"#,
/// )
/// .unwrap();
/// let CacheBackendConfig::Tiered(tiered) = &backend else { unreachable!() };
/// assert_eq!(backend.name(), "tiered");
/// assert_eq!(backend.prefix(), "app:"); // the L2's
/// assert_eq!(tiered.l2.kind(), BackendType::Redis);
/// assert_eq!(tiered.l1_ttl, DEFAULT_L1_TTL);
/// assert_eq!(tiered.invalidation, TieredInvalidation::Auto);
///
/// // The outer name counts: `l2` takes none of its own.
/// let err = serde_json::from_str::<CacheBackendConfig>(
///     r#"{"type": "tiered", "l2": {"type": "memory", "name": "x"}}"#,
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("`name` is not a setting of `l2`"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TieredBackendConfig {
    /// The backend's unique name. Default `"tiered"`.
    #[serde(default = "tiered_name")]
    pub name: String,
    /// Whether the provider builds it. Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whether this is the default backend. Default `false`.
    #[serde(default)]
    pub default: bool,
    /// Clear the L2 namespace (and L1) when the provider starts. Default `false`; refused in
    /// production and with a memcached L2.
    #[serde(default)]
    pub clear_on_start: bool,
    /// How long an L1 copy lives at most. Default [`DEFAULT_L1_TTL`] (30 s).
    #[serde(default = "default_l1_ttl", deserialize_with = "de::duration")]
    pub l1_ttl: Duration,
    /// With invalidation: how long after a write returns another process may still read the
    /// old value from its L1, at most. Default: [`DEFAULT_MAX_STALENESS`] (500 ms). Refused
    /// with `invalidation: none`.
    #[serde(default, deserialize_with = "de::option_duration")]
    pub max_staleness: Option<Duration>,
    /// With invalidation: how often the subscription's lease is renewed; less than
    /// `max_staleness`. Default: a fifth of `max_staleness`. Refused with `invalidation: none`.
    #[serde(default, deserialize_with = "de::option_duration")]
    pub heartbeat_interval: Option<Duration>,
    /// `auto` (Redis pub/sub over a Redis L2) or `none`. Default `auto`.
    #[serde(default)]
    pub invalidation: TieredInvalidation,
    /// The L1 bounds. Default: the memory backend's defaults.
    #[serde(default)]
    pub l1: TieredL1Config,
    /// The L2: a whole memory, Redis or memcached section, `type` included, without `name`,
    /// `enabled`, `default` and `clear_on_start`. Required.
    #[serde(deserialize_with = "tiered_l2")]
    pub l2: Box<CacheBackendConfig>,
}

fn tiered_name() -> String {
    "tiered".to_owned()
}

fn yes() -> bool {
    true
}

fn default_l1_ttl() -> Duration {
    DEFAULT_L1_TTL
}

impl TieredBackendConfig {
    /// A tiered backend over `l2` with every other setting at its default.
    #[must_use]
    pub fn new(l2: CacheBackendConfig) -> Self {
        Self {
            name: tiered_name(),
            enabled: true,
            default: false,
            clear_on_start: false,
            l1_ttl: DEFAULT_L1_TTL,
            max_staleness: None,
            heartbeat_interval: None,
            invalidation: TieredInvalidation::Auto,
            l1: TieredL1Config::default(),
            l2: Box::new(l2),
        }
    }

    /// `max_staleness`, or [`DEFAULT_MAX_STALENESS`] when it is not set.
    #[must_use]
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness.unwrap_or(DEFAULT_MAX_STALENESS)
    }

    /// Whether the backend publishes invalidations: `invalidation: auto` over a Redis L2.
    #[must_use]
    pub fn invalidates(&self) -> bool {
        self.invalidation == TieredInvalidation::Auto && self.l2.kind() == BackendType::Redis
    }
}

/// Why an `l2` section is refused before its own type reads it: a field the tiered backend
/// owns, or a nested tiered backend. `None` when the fields are fine for `l2`.
pub(crate) fn l2_refusal(field: &str) -> Option<String> {
    TIERED_L2_REFUSED.contains(&field).then(|| {
        format!(
            "`{field}` is not a setting of `l2`: the tiered backend's own `{field}` (beside \
             `l2`) counts; remove it from `l2`"
        )
    })
}

/// The message refusing a tiered `l2`.
pub(crate) const NESTED_TIERED: &str =
    "`l2` cannot be a tiered backend; give it `type: redis`, `memcached` or `memory`";

/// Deserializes `l2`: any backend section but a tiered one, without the fields the tiered
/// backend owns.
fn tiered_l2<'de, D: Deserializer<'de>>(d: D) -> Result<Box<CacheBackendConfig>, D::Error> {
    use figment::value::Value;
    use serde::de::Error;

    let value = <Value as Deserialize>::deserialize(d)?;
    if let Value::Dict(_, dict) = &value {
        if let Some(problem) = dict.keys().find_map(|k| l2_refusal(k)) {
            return Err(D::Error::custom(problem));
        }
        let kind = dict.get("type").and_then(Value::as_str);
        if kind.is_some_and(|k| k.eq_ignore_ascii_case("tiered")) {
            return Err(D::Error::custom(NESTED_TIERED));
        }
    }
    CacheBackendConfig::deserialize(&value)
        .map(Box::new)
        .map_err(|e| D::Error::custom(format!("in `l2`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://app:hunter2@10.0.0.1:6379/2"),
            "redis://app:***@10.0.0.1:6379/2"
        );
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(
            redact_url("redis-sentinel://h:26379?sentinelServiceName=m&sentinelPassword=spw"),
            "redis-sentinel://h:26379?sentinelServiceName=m&sentinelPassword=***"
        );
        assert_eq!(redact_url("not a url hunter2"), "***");
    }
}
