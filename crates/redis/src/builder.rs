//! [`RedisBackendBuilder`]: connection settings, limits, namespace and events of a
//! [`RedisBackend`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::config::{Options, ReconnectPolicy, TlsConfig};
use lexicache_core::{Error, ErrorKind, EventBus, KeyRules, Operation, Result};

use crate::backend::{RedisBackend, Shared};
use crate::config::{Deployment, RedisConfig};
use crate::error::map_error;
use crate::events::spawn_listener;

/// The default largest value: 16 MiB.
///
/// Redis accepts up to 512 MiB, but one large value holds up every other command on its
/// connection (and Redis's single thread) while it moves; a cache entry that large is usually
/// a mistake. Raise it with [`RedisBackendBuilder::max_value_size`].
pub const DEFAULT_MAX_VALUE_SIZE: usize = 16 * 1024 * 1024;

/// Builds a [`RedisBackend`].
///
/// Connection settings go to a [`RedisConfig`] (see its fields for the defaults); the rest
/// describes the backend: its name, key prefix, default TTL, key rules, value limit and event
/// bus. `Debug` never shows passwords.
///
/// ```
/// use std::time::Duration;
/// use lexicache_redis::RedisBackend;
///
/// let builder = RedisBackend::builder()
///     .url("redis://:hunter2@127.0.0.1:6390/0")
///     .command_timeout(Duration::from_millis(200))
///     .prefix("app:");
/// assert!(!format!("{builder:?}").contains("hunter2"));
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisBackendBuilder {
    config: RedisConfig,
    /// The first invalid setting (a bad URL ...), reported by `connect`.
    invalid: Option<Error>,
    name: String,
    prefix: String,
    default_ttl: Option<Duration>,
    key_rules: KeyRules,
    max_value_size: usize,
    events: Option<EventBus>,
}

impl Default for RedisBackendBuilder {
    fn default() -> Self {
        Self {
            config: RedisConfig::default(),
            invalid: None,
            name: "redis".to_owned(),
            prefix: String::new(),
            default_ttl: None,
            key_rules: KeyRules::new(),
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            events: None,
        }
    }
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackendBuilder")
            .field("config", &self.config)
            .field("invalid", &self.invalid)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("key_rules", &self.key_rules)
            .field("max_value_size", &self.max_value_size)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl RedisBackendBuilder {
    fn invalid(&mut self, err: Error) {
        self.invalid.get_or_insert(err);
    }

    /// Where Redis is and how to log in, from a URL (see [`RedisConfig::from_url`] for the
    /// forms). Timeouts and limits set on this builder are kept. A malformed URL is reported
    /// by [`connect`](Self::connect).
    pub fn url(mut self, url: &str) -> Self {
        match RedisConfig::from_url(url) {
            Ok(parsed) => {
                self.config.deployment = parsed.deployment;
                self.config.username = parsed.username;
                self.config.password = parsed.password;
                self.config.sentinel_username = parsed.sentinel_username;
                self.config.sentinel_password = parsed.sentinel_password;
                self.config.database = parsed.database;
                self.config.tls = parsed.tls;
            }
            Err(e) => self.invalid(e),
        }
        self
    }

    /// Replaces every connection setting with `config`.
    pub fn config(mut self, config: RedisConfig) -> Self {
        self.config = config;
        self
    }

    /// One standalone server.
    pub fn standalone(mut self, host: impl Into<String>, port: u16) -> Self {
        self.config.deployment = Deployment::Standalone {
            host: host.into(),
            port,
        };
        self
    }

    /// A Redis Cluster reached through any of `nodes`.
    pub fn cluster<H: Into<String>>(mut self, nodes: impl IntoIterator<Item = (H, u16)>) -> Self {
        self.config.deployment = Deployment::Cluster {
            nodes: nodes.into_iter().map(|(h, p)| (h.into(), p)).collect(),
        };
        self
    }

    /// The primary named `master`, found through any of `sentinels`.
    pub fn sentinel<H: Into<String>>(
        mut self,
        sentinels: impl IntoIterator<Item = (H, u16)>,
        master: impl Into<String>,
    ) -> Self {
        self.config.deployment = Deployment::Sentinel {
            sentinels: sentinels.into_iter().map(|(h, p)| (h.into(), p)).collect(),
            master: master.into(),
        };
        self
    }

    /// The logical database to `SELECT` (standalone and sentinel only).
    pub fn database(mut self, db: u8) -> Self {
        self.config.database = Some(db);
        self
    }

    /// The ACL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self
    }

    /// The password. It never appears in `Debug` output, errors or logs.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config.password = Some(password.into());
        self
    }

    /// The password of the sentinels, when they need one of their own.
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.config.sentinel_password = Some(password.into());
        self
    }

    /// TLS with the platform's root certificates, or plain TCP (the default).
    pub fn tls(mut self, enabled: bool) -> Self {
        if let Err(e) = self.config.set_tls(enabled) {
            self.invalid(e);
        }
        self
    }

    /// TLS with a connector of your own (client certificates, private roots ...).
    pub fn tls_config(mut self, tls: TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// How long one command may take, queueing included. Default
    /// [`DEFAULT_COMMAND_TIMEOUT`](crate::DEFAULT_COMMAND_TIMEOUT).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.config.command_timeout = timeout;
        self
    }

    /// How long opening a connection may take. Default
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How to reconnect after the connection drops. Default: exponential backoff, forever.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// The bound of the command queue (`0`: unbounded). Default
    /// [`DEFAULT_MAX_COMMAND_BUFFER`](crate::DEFAULT_MAX_COMMAND_BUFFER).
    pub fn max_command_buffer(mut self, commands: usize) -> Self {
        self.config.max_command_buffer = commands;
        self
    }

    /// Whether commands fail at once while disconnected (default `true`), rather than wait for
    /// a reconnect within their timeout.
    pub fn fail_fast(mut self, enabled: bool) -> Self {
        self.config.fail_fast = enabled;
        self
    }

    /// The name used in errors, metrics and events. Default `"redis"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A prefix put before every key. Default: none.
    ///
    /// End it with a separator such as `:`: namespaces are plain prefixes, so `tenant1`'s
    /// `clear` would also reach `tenant10`'s keys. With no prefix, this backend's namespace is
    /// the whole logical database: `clear` and `delete_pattern` then reach every key in it
    /// (still by `SCAN` and `UNLINK`, never `FLUSHDB`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of entries written with `ttl: None`. Default: none (entries never expire).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// The key rules (maximum length). They apply to keys as given, before the prefix.
    pub fn key_rules(mut self, rules: KeyRules) -> Self {
        self.key_rules = rules;
        self
    }

    /// The largest value accepted, in bytes. Default [`DEFAULT_MAX_VALUE_SIZE`]; larger values
    /// are [`ErrorKind::ValueTooLarge`] errors, caught before anything is sent. A larger value
    /// another client stored is read in full, then refused with the same error rather than
    /// returned. Redis itself accepts at most 512 MiB.
    pub fn max_value_size(mut self, max: usize) -> Self {
        self.max_value_size = max;
        self
    }

    /// The bus `Connected` and `Disconnected` events go to. Default: a new bus, reachable with
    /// [`RedisBackend::events`].
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    fn prepare(mut self, lazy: bool) -> Result<(Arc<Shared>, String)> {
        if let Some(err) = self.invalid.take() {
            return Err(err.with_backend(self.name.clone()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(ErrorKind::Config, self.name.clone())
                .with_operation(Operation::Connect)
                .with_message("the redis backend must be created within a tokio runtime"));
        }
        if self.max_value_size > 512 * 1024 * 1024 {
            return Err(Error::new(ErrorKind::Config, self.name.clone())
                .with_operation(Operation::Connect)
                .with_message("max_value_size is over 512 MiB, the most redis accepts"));
        }
        self.config
            .validate()
            .map_err(|e| e.with_backend(self.name.clone()))?;
        let client = self
            .config
            .fred_builder(lazy)
            .build()
            .map_err(|e| map_error(e, &self.name, Operation::Connect))?;
        let name: Arc<str> = Arc::from(self.name.as_str());
        let events = self.events.unwrap_or_default();
        // Subscribed before connecting, so the first `Connected` is seen.
        spawn_listener(&client, events.clone(), name.clone());
        let options = Options {
            fail_fast: self.config.fail_fast,
            timeout: Some(self.config.command_timeout).filter(|t| !t.is_zero()),
            ..Options::default()
        };
        let shared = Arc::new(Shared {
            cmd: client.with_options(&options),
            client,
            options,
            name,
            events,
            default_ttl: self.default_ttl,
            key_rules: self.key_rules,
            max_value_size: self.max_value_size,
            config: self.config,
            stall_watch: Arc::default(),
        });
        Ok((shared, self.prefix))
    }

    /// Connects, waiting until the connection is up.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Config`] for invalid settings or credentials Redis rejects (the message
    ///   names the reply, such as `WRONGPASS`, never the password);
    /// - [`ErrorKind::Connection`] or [`ErrorKind::Timeout`] when Redis cannot be reached
    ///   within the connect timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the half-open connection.
    pub async fn connect(self) -> Result<RedisBackend> {
        let connect_timeout = self.config.connect_timeout;
        let (shared, prefix) = self.prepare(false)?;
        let client = shared.client.clone();
        // fred bounds each connection attempt; the outer bound covers a cluster's or
        // sentinel's several connections in a row.
        let bound = connect_timeout.saturating_mul(4) + Duration::from_millis(100);
        match tokio::time::timeout(bound, client.init()).await {
            Ok(Ok(_task)) => Ok(RedisBackend::from_parts(shared, prefix)),
            Ok(Err(e)) => Err(map_error(e, &shared.name, Operation::Connect)),
            Err(_) => Err(Error::new(ErrorKind::Timeout, shared.name.to_string())
                .with_operation(Operation::Connect)
                .with_message(format!("could not connect to redis within {bound:?}"))),
        }
    }

    /// Returns at once and connects in the background, retrying with the reconnect policy.
    ///
    /// Until the connection is up, commands fail fast with [`ErrorKind::Connection`] (or wait
    /// at most the command timeout, without fail-fast), so a service over this backend starts
    /// even while Redis is down and degrades to its defaults. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for invalid settings.
    pub fn connect_lazy(self) -> Result<RedisBackend> {
        let (shared, prefix) = self.prepare(true)?;
        drop(shared.client.connect());
        Ok(RedisBackend::from_parts(shared, prefix))
    }
}
