//! [`RedisConfig`]: where Redis is and how lexicache talks to it, with defaults chosen for a
//! cache (bounded waits, bounded buffers, reconnects, fast failure while disconnected).

use std::fmt;
use std::time::Duration;

use fred::types::config::{
    Config as FredConfig, ConnectionConfig, PerformanceConfig, ReconnectPolicy, Server,
    ServerConfig, TlsConfig, TlsConnector, UnresponsiveConfig,
};
use fred::types::{Builder, RespVersion};
use lexicache_core::{Error, ErrorKind, Operation, Result};

/// The default per-command timeout: 500 ms.
///
/// fred applies none by default, so a command to a stalled server would wait forever. A cache
/// read that takes longer than this is worth less than a miss.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// The default timeout to open a connection (TCP, TLS and the handshake commands): 2 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default bound of fred's in-memory command queue: 10 000 commands.
///
/// fred's default is unbounded, so a dead or slow server would let queued commands (and their
/// values) grow without limit; past the bound a command fails at once with a `Connection` error.
pub const DEFAULT_MAX_COMMAND_BUFFER: usize = 10_000;

/// The default first reconnect delay: 100 ms, doubling up to [`DEFAULT_RECONNECT_MAX_DELAY`].
pub const DEFAULT_RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);

/// The default longest reconnect delay: 5 s.
pub const DEFAULT_RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// The default time a connection may leave a command unanswered before it is considered dead
/// and replaced: 5 s.
pub const DEFAULT_UNRESPONSIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default port of a Redis server.
pub const DEFAULT_PORT: u16 = 6379;

/// The default port of a Redis Sentinel.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Where the Redis servers are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deployment {
    /// One server (possibly with replicas lexicache does not use).
    Standalone {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Redis Cluster. One reachable node is enough; the others are discovered.
    Cluster {
        /// Known nodes, as `(host, port)`.
        nodes: Vec<(String, u16)>,
    },
    /// A primary found through Redis Sentinel.
    Sentinel {
        /// Known sentinels, as `(host, port)`.
        sentinels: Vec<(String, u16)>,
        /// The name the sentinels monitor the primary under.
        master: String,
    },
}

impl Default for Deployment {
    fn default() -> Self {
        Self::Standalone {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
        }
    }
}

/// How to reach Redis and how patiently to talk to it.
///
/// Start from [`RedisConfig::default`] (standalone on `127.0.0.1:6379`) or
/// [`RedisConfig::from_url`], then change fields. `Debug` never shows passwords:
///
/// ```
/// use lexicache_redis::RedisConfig;
///
/// let config = RedisConfig::from_url("redis://app:s3cret@127.0.0.1:6390/2")?;
/// assert_eq!(config.database, Some(2));
/// assert_eq!(config.username.as_deref(), Some("app"));
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("s3cret"));
/// assert!(shown.contains("<redacted>"));
/// # Ok::<(), lexicache_core::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Standalone, cluster or sentinel, with the addresses.
    pub deployment: Deployment,
    /// The ACL user name, if any.
    pub username: Option<String>,
    /// The password, if any. Never shown by `Debug`.
    pub password: Option<String>,
    /// The ACL user name for the sentinels, if they need one.
    pub sentinel_username: Option<String>,
    /// The password for the sentinels, if they need one. Never shown by `Debug`.
    pub sentinel_password: Option<String>,
    /// The logical database to `SELECT` (not available in a cluster).
    pub database: Option<u8>,
    /// TLS settings; `None` for plain TCP.
    pub tls: Option<TlsConfig>,
    /// How long one command may take, from being queued to its reply
    /// ([`DEFAULT_COMMAND_TIMEOUT`]). Zero means no timeout, which a cache should not use.
    pub command_timeout: Duration,
    /// How long opening a connection may take ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// How to reconnect after the connection drops. Default: exponential backoff from
    /// [`DEFAULT_RECONNECT_MIN_DELAY`] to [`DEFAULT_RECONNECT_MAX_DELAY`], forever.
    pub reconnect: ReconnectPolicy,
    /// The bound of the command queue ([`DEFAULT_MAX_COMMAND_BUFFER`]); `0` means unbounded.
    pub max_command_buffer: usize,
    /// Whether commands fail at once while the client is not connected, instead of waiting
    /// for a reconnect (default `true`). Either way they never wait past `command_timeout`.
    pub fail_fast: bool,
    /// How long a connection may leave a command unanswered before it is dropped and
    /// reconnected ([`DEFAULT_UNRESPONSIVE_TIMEOUT`]); `None` to never check.
    pub unresponsive_timeout: Option<Duration>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        let mut reconnect = ReconnectPolicy::new_exponential(
            0,
            millis(DEFAULT_RECONNECT_MIN_DELAY),
            millis(DEFAULT_RECONNECT_MAX_DELAY),
            2,
        );
        reconnect.set_jitter(100);
        Self {
            deployment: Deployment::default(),
            username: None,
            password: None,
            sentinel_username: None,
            sentinel_password: None,
            database: None,
            tls: None,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect,
            max_command_buffer: DEFAULT_MAX_COMMAND_BUFFER,
            fail_fast: true,
            unresponsive_timeout: Some(DEFAULT_UNRESPONSIVE_TIMEOUT),
        }
    }
}

/// Shows `Some("<redacted>")` for a set secret and `None` otherwise.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("deployment", &self.deployment)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &redacted(&self.sentinel_password))
            .field("database", &self.database)
            .field("tls", &self.tls.is_some())
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect", &self.reconnect)
            .field("max_command_buffer", &self.max_command_buffer)
            .field("fail_fast", &self.fail_fast)
            .field("unresponsive_timeout", &self.unresponsive_timeout)
            .finish()
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, "redis")
        .with_operation(Operation::Connect)
        .with_message(message)
}

fn hosts(servers: &[Server]) -> Vec<(String, u16)> {
    servers
        .iter()
        .map(|s| (s.host.to_string(), s.port))
        .collect()
}

/// `text` with the userinfo of every `user:password@host` in it replaced by `***`: fred's URL
/// errors quote parts of the URL (`Invalid host:port for cluster node: u:pw@host:1`), and
/// those may carry credentials.
fn redact_userinfo(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl RedisConfig {
    /// Parses a URL, keeping the defaults for everything a URL does not say.
    ///
    /// - `redis://[[user:]password@]host[:port][/db]`: standalone (`rediss://` for TLS);
    /// - `redis-cluster://host:port?node=host2:port2&node=...`: a cluster;
    /// - `redis-sentinel://[[user:]password@]host[:port][/db]?sentinelServiceName=name&node=...`:
    ///   the primary `name` found through the listed sentinels (also `sentinelUsername` and
    ///   `sentinelPassword`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the URL is malformed. The message never repeats the URL, which
    /// may hold a password.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = FredConfig::from_url(url).map_err(|e| {
            config_error(format!(
                "invalid redis URL: {}",
                redact_userinfo(e.details())
            ))
        })?;
        let mut config = Self {
            username: parsed.username,
            password: parsed.password,
            database: parsed.database,
            tls: parsed.tls,
            ..Self::default()
        };
        config.deployment = match parsed.server {
            ServerConfig::Centralized { server } => Deployment::Standalone {
                host: server.host.to_string(),
                port: server.port,
            },
            ServerConfig::Clustered { hosts: nodes, .. } => {
                // fred puts the URL's own host last; keep the order the user wrote.
                let mut nodes = hosts(&nodes);
                nodes.rotate_right(1);
                Deployment::Cluster { nodes }
            }
            ServerConfig::Sentinel {
                hosts: sentinels,
                service_name,
                username,
                password,
            } => {
                config.sentinel_username = username;
                config.sentinel_password = password;
                let mut sentinels = hosts(&sentinels);
                sentinels.rotate_right(1);
                Deployment::Sentinel {
                    sentinels,
                    master: service_name,
                }
            }
            #[allow(unreachable_patterns)]
            _ => return Err(config_error("unsupported redis URL scheme")),
        };
        Ok(config)
    }

    /// Uses TLS with the platform's root certificates (rustls), or plain TCP.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the TLS connector cannot be built.
    pub fn set_tls(&mut self, enabled: bool) -> Result<()> {
        self.tls = if enabled {
            let connector = TlsConnector::default_rustls()
                .map_err(|e| config_error(format!("cannot set up TLS: {}", e.details())))?;
            Some(connector.into())
        } else {
            None
        };
        Ok(())
    }

    /// Checks the settings that would otherwise fail later, or silently.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.deployment {
            Deployment::Standalone { host, .. } if host.is_empty() => {
                Err(config_error("the redis host is empty"))
            }
            Deployment::Cluster { nodes } if nodes.is_empty() => {
                Err(config_error("a redis cluster needs at least one node"))
            }
            Deployment::Cluster { .. } if self.database.is_some_and(|db| db != 0) => Err(
                config_error("a redis cluster has only database 0; remove the database setting"),
            ),
            Deployment::Sentinel { sentinels, .. } if sentinels.is_empty() => Err(config_error(
                "redis sentinel needs at least one sentinel address",
            )),
            Deployment::Sentinel { master, .. } if master.is_empty() => Err(config_error(
                "redis sentinel needs the name of the monitored primary",
            )),
            _ => Ok(()),
        }
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.deployment, Deployment::Cluster { .. })
    }

    /// The fred client builder for this configuration.
    pub(crate) fn fred_builder(&self, lazy: bool) -> Builder {
        let server = match &self.deployment {
            Deployment::Standalone { host, port } => {
                ServerConfig::new_centralized(host.as_str(), *port)
            }
            Deployment::Cluster { nodes } => {
                ServerConfig::new_clustered(nodes.iter().map(|(h, p)| (h.as_str(), *p)).collect())
            }
            Deployment::Sentinel { sentinels, master } => ServerConfig::Sentinel {
                hosts: sentinels
                    .iter()
                    .map(|(h, p)| Server::new(h.as_str(), *p))
                    .collect(),
                service_name: master.clone(),
                username: self.sentinel_username.clone(),
                password: self.sentinel_password.clone(),
            },
        };
        let config = FredConfig {
            // With `fail_fast` (fred's meaning: report the first connection's failure) the first
            // connection is not retried; a lazy backend wants the reconnect policy instead.
            fail_fast: !lazy,
            username: self.username.clone(),
            password: self.password.clone(),
            server,
            version: RespVersion::RESP2,
            database: self.database.filter(|_| !self.is_cluster()),
            tls: self.tls.clone(),
            ..FredConfig::default()
        };
        let mut builder = Builder::from_config(config);
        builder.set_policy(self.reconnect.clone());
        builder.with_performance_config(|perf: &mut PerformanceConfig| {
            perf.default_command_timeout = self.command_timeout;
        });
        builder.with_connection_config(|conn: &mut ConnectionConfig| {
            conn.connection_timeout = self.connect_timeout;
            // The handshake (AUTH, SELECT, INFO, CLUSTER SLOTS) is part of connecting.
            conn.internal_command_timeout = self.connect_timeout;
            conn.max_command_buffer_len = self.max_command_buffer;
            conn.tcp.nodelay = Some(true);
            conn.unresponsive = UnresponsiveConfig {
                max_timeout: self.unresponsive_timeout,
                interval: self
                    .unresponsive_timeout
                    .map_or(Duration::from_secs(2), |t| {
                        (t / 4).max(Duration::from_millis(10))
                    }),
            };
        });
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_url_keeps_host_port_database_and_credentials() {
        let c = RedisConfig::from_url("redis://user:pw@10.0.0.1:6390/3").unwrap();
        assert_eq!(
            c.deployment,
            Deployment::Standalone {
                host: "10.0.0.1".into(),
                port: 6390
            }
        );
        assert_eq!(c.database, Some(3));
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert!(c.tls.is_none());
    }

    #[test]
    fn url_errors_quoting_a_node_hide_its_credentials() {
        let err = RedisConfig::from_url(
            "redis-cluster://127.0.0.1:7000?node=user:hunter2@127.0.0.1:7001",
        )
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        assert!(err.message().contains("***@127.0.0.1:7001"), "{err}");
    }

    #[test]
    fn cluster_url_lists_every_node_in_order() {
        let c = RedisConfig::from_url(
            "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002",
        )
        .unwrap();
        assert_eq!(
            c.deployment,
            Deployment::Cluster {
                nodes: vec![
                    ("127.0.0.1".into(), 7000),
                    ("127.0.0.1".into(), 7001),
                    ("127.0.0.1".into(), 7002)
                ]
            }
        );
    }

    #[test]
    fn sentinel_url_names_the_master_and_sentinel_credentials() {
        let c = RedisConfig::from_url(
            "redis-sentinel://127.0.0.1:26390/1?sentinelServiceName=lexicache&sentinelPassword=spw",
        )
        .unwrap();
        assert_eq!(
            c.deployment,
            Deployment::Sentinel {
                sentinels: vec![("127.0.0.1".into(), 26390)],
                master: "lexicache".into()
            }
        );
        assert_eq!(c.database, Some(1));
        assert_eq!(c.sentinel_password.as_deref(), Some("spw"));
        assert!(!format!("{c:?}").contains("spw"));
    }

    #[test]
    fn malformed_url_is_a_config_error_without_the_password() {
        let err = RedisConfig::from_url("redis://user:hunter2@:notaport").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn defaults_bound_every_wait() {
        let c = RedisConfig::default();
        assert_eq!(c.command_timeout, DEFAULT_COMMAND_TIMEOUT);
        assert_eq!(c.max_command_buffer, DEFAULT_MAX_COMMAND_BUFFER);
        assert!(c.fail_fast);
        assert_eq!(c.reconnect.max_attempts(), 0, "reconnects forever");
    }

    #[test]
    fn cluster_with_a_database_is_rejected() {
        let c = RedisConfig {
            deployment: Deployment::Cluster {
                nodes: vec![("127.0.0.1".into(), 7000)],
            },
            database: Some(2),
            ..RedisConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().kind(), ErrorKind::Config);
    }
}
