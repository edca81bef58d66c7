//! [`MemcachedBackendBuilder`]: servers, pool, timeouts, backoff, namespace and limits of a
//! [`MemcachedBackend`].

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Error, ErrorKind, EventBus, KeyRules, Operation, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::backend::{MemcachedBackend, Shared};
use crate::pool::{PoolConfig, Pools};
use crate::ring::{HashRing, DEFAULT_POINTS_PER_SERVER};

/// Connections per server: 16.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a connect may take: 500 ms.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one exchange (a command and its complete reply) may take, and how long a caller
/// may wait for a free pooled connection: 1 s.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// The wait after a server's first failed connect before the next try: 500 ms. It doubles with
/// each failure in a row.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between connect attempts to a down server: 10 s.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// memcached's default item size limit (`-I`, `item_size_max`): 1 MiB.
pub const DEFAULT_ITEM_SIZE_MAX: usize = 1024 * 1024;
/// What an item costs beyond its value, kept free below `item_size_max`: 512 bytes.
///
/// Memcached 1.6 stores the item header (about 48 bytes), the CAS (8), the key (up to 250) and
/// the value's trailing `\r\n` (2) inside the `item_size_max` bound. With a 250-byte key,
/// memcached 1.6.18 at the default 1 MiB accepts values up to 1 MiB − 309 bytes and no larger,
/// so 512 bytes leaves room for every key and a little for other versions.
pub const ITEM_OVERHEAD: usize = 512;
/// The default largest value: [`DEFAULT_ITEM_SIZE_MAX`] − [`ITEM_OVERHEAD`] = 1,048,064 bytes.
pub const DEFAULT_MAX_VALUE_SIZE: usize = DEFAULT_ITEM_SIZE_MAX - ITEM_OVERHEAD;

/// Builds a [`MemcachedBackend`].
///
/// [`build`](Self::build) returns at once and connects lazily; [`connect`](Self::connect) also
/// asks every server for its item size limit (`stats settings`), so the value limit follows the
/// servers' `-I` setting, and marks unreachable servers down from the start.
///
/// ```
/// use std::time::Duration;
/// use lexicache_memcached::MemcachedBackend;
///
/// let backend = MemcachedBackend::builder()
///     .servers(["10.0.0.1:11211", "10.0.0.2:11211"])
///     .prefix("app:")
///     .pool_size(32)
///     .command_timeout(Duration::from_millis(250))
///     .build()?;
/// assert_eq!(backend.servers().len(), 2);
/// # Ok::<(), lexicache_core::Error>(())
/// ```
#[must_use]
pub struct MemcachedBackendBuilder {
    name: String,
    servers: Vec<String>,
    prefix: String,
    default_ttl: Option<Duration>,
    key_rules: KeyRules,
    max_value_size: Option<usize>,
    pool: PoolConfig,
    points_per_server: usize,
    events: Option<EventBus>,
}

impl fmt::Debug for MemcachedBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Server strings are shown only once validated, because a rejected one may carry
        // credentials (`user:password@host`) that must not be printed.
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| parse_server(s).unwrap_or_else(|_| "<invalid>".to_owned()))
            .collect();
        f.debug_struct("MemcachedBackendBuilder")
            .field("name", &self.name)
            .field("servers", &servers)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("key_rules", &self.key_rules)
            .field("max_value_size", &self.max_value_size)
            .field("pool", &self.pool)
            .field("points_per_server", &self.points_per_server)
            .finish_non_exhaustive()
    }
}

impl Default for MemcachedBackendBuilder {
    fn default() -> Self {
        Self {
            name: "memcached".to_owned(),
            servers: Vec::new(),
            prefix: String::new(),
            default_ttl: None,
            key_rules: KeyRules::new(),
            max_value_size: None,
            pool: PoolConfig {
                pool_size: DEFAULT_POOL_SIZE,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                command_timeout: DEFAULT_COMMAND_TIMEOUT,
                backoff_initial: DEFAULT_BACKOFF_INITIAL,
                backoff_max: DEFAULT_BACKOFF_MAX,
            },
            points_per_server: DEFAULT_POINTS_PER_SERVER,
            events: None,
        }
    }
}

impl MemcachedBackendBuilder {
    /// The name used in errors, metrics and events. Default `"memcached"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds one server, as `host:port` (or `tcp://host:port`).
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.servers.push(server.into());
        self
    }

    /// Adds servers, as `host:port` (or `tcp://host:port`).
    ///
    /// Keys are spread over them by [consistent hashing](crate::HashRing) of the address as
    /// written (after dropping `tcp://`), so every client sharing the servers must list the
    /// same addresses, spelled the same way. The order does not matter.
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.servers.extend(servers.into_iter().map(Into::into));
        self
    }

    /// A prefix put before every key, so namespaces sharing servers never see each other's
    /// keys. Default: none. End it with a separator such as `:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of entries written with `ttl: None`. Default: none (entries live until evicted).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// The key rules (maximum length, before the prefix). Keys of any length are mapped to
    /// memcached's 250 bytes (see [`wire_key`](crate::wire_key)), so the limit is lexicache's,
    /// not memcached's.
    pub fn key_rules(mut self, rules: KeyRules) -> Self {
        self.key_rules = rules;
        self
    }

    /// The largest value accepted, in bytes; larger values are
    /// [`ErrorKind::ValueTooLarge`] errors, raised before anything is sent; a larger value
    /// another client stored is refused with the same error when read.
    ///
    /// Default: with [`connect`](Self::connect), the smallest `item_size_max` of the reachable
    /// servers minus [`ITEM_OVERHEAD`]; otherwise [`DEFAULT_MAX_VALUE_SIZE`]. Setting it above
    /// what the servers accept turns oversized writes into server errors instead.
    pub fn max_value_size(mut self, max: usize) -> Self {
        self.max_value_size = Some(max);
        self
    }

    /// Connections per server (at least 1). Default [`DEFAULT_POOL_SIZE`].
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool.pool_size = size;
        self
    }

    /// How long a connect may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connect_timeout = timeout;
        self
    }

    /// How long one exchange may take, and how long a caller may wait for a free connection.
    /// Default [`DEFAULT_COMMAND_TIMEOUT`]. A batch gets this much per round trip.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.pool.command_timeout = timeout;
        self
    }

    /// The backoff of a down server: `initial` after the first failed connect, doubling with
    /// each failure in a row, at most `max`. Defaults [`DEFAULT_BACKOFF_INITIAL`] and
    /// [`DEFAULT_BACKOFF_MAX`].
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.pool.backoff_initial = initial;
        self.pool.backoff_max = max;
        self
    }

    /// Points (virtual nodes) per server on the hash ring. Default
    /// [`DEFAULT_POINTS_PER_SERVER`]; every client sharing the servers must use the same value.
    pub fn points_per_server(mut self, points: usize) -> Self {
        self.points_per_server = points;
        self
    }

    /// The bus that `Connected` / `Disconnected` events go to when a server goes down or comes
    /// back. Default: a new bus, reachable with [`MemcachedBackend::events`].
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Builds the backend without contacting any server; connections open on first use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when no server is given, an address is not `host:port`, carries
    /// credentials or is listed twice, or the pool size or a timeout is zero.
    pub fn build(self) -> Result<MemcachedBackend> {
        let max = self.max_value_size.unwrap_or(DEFAULT_MAX_VALUE_SIZE);
        self.finish(max)
    }

    /// Builds the backend and probes every server (within the connect timeout): the value
    /// limit is read from their `item_size_max` unless set, and unreachable servers start
    /// marked down. Unreachable servers are not an error: their keys fail fast until they
    /// come back.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub async fn connect(self) -> Result<MemcachedBackend> {
        let addrs = self.validated_servers()?;
        let timeout = self.pool.connect_timeout;
        let probes =
            futures::future::join_all(addrs.iter().map(|a| item_size_max(a, timeout))).await;
        let limit = probes
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .min()
            .map_or(DEFAULT_MAX_VALUE_SIZE, |item| {
                item.saturating_sub(ITEM_OVERHEAD).max(1)
            });
        let max = self.max_value_size.unwrap_or(limit);
        let backend = self.finish(max)?;
        for (index, probe) in probes.into_iter().enumerate() {
            if let Err(e) = probe {
                backend.shared.pools.report_unreachable(index, e);
            }
        }
        Ok(backend)
    }

    fn config_error(&self, message: String) -> Error {
        Error::new(ErrorKind::Config, self.name.clone())
            .with_operation(Operation::Connect)
            .with_message(message)
    }

    fn validated_servers(&self) -> Result<Vec<Arc<str>>> {
        if self.servers.is_empty() {
            return Err(self.config_error("no memcached server given".to_owned()));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(self.servers.len());
        for (i, raw) in self.servers.iter().enumerate() {
            let addr = parse_server(raw)
                .map_err(|why| self.config_error(format!("server #{}: {why}", i + 1)))?;
            if !seen.insert(addr.clone()) {
                return Err(self.config_error(format!("server {addr} is listed twice")));
            }
            out.push(Arc::from(addr));
        }
        Ok(out)
    }

    fn finish(self, max_value_size: usize) -> Result<MemcachedBackend> {
        let addrs = self.validated_servers()?;
        if self.pool.pool_size == 0 {
            return Err(self.config_error("pool_size must be at least 1".to_owned()));
        }
        for (what, d) in [
            ("connect_timeout", self.pool.connect_timeout),
            ("command_timeout", self.pool.command_timeout),
        ] {
            if d.is_zero() {
                return Err(self.config_error(format!("{what} must be above zero")));
            }
        }
        let name: Arc<str> = Arc::from(self.name.as_str());
        let events = self.events.unwrap_or_default();
        let ring = HashRing::with_points(&addrs, self.points_per_server);
        let pools = Pools::new(&addrs, self.pool, name.clone(), events.clone());
        Ok(MemcachedBackend::from_parts(
            Arc::new(Shared {
                name,
                ring,
                pools,
                events,
                default_ttl: self.default_ttl,
                key_rules: self.key_rules,
                max_value_size,
            }),
            self.prefix,
        ))
    }
}

/// Checks a server address and returns its canonical form (`host:port`). The reason given for
/// a rejected address never repeats the address, since it may hold credentials.
fn parse_server(raw: &str) -> std::result::Result<String, &'static str> {
    let addr = raw.trim();
    let addr = addr.strip_prefix("tcp://").unwrap_or(addr);
    if addr.contains('@') {
        return Err(
            "credentials are not supported (memcached's text protocol has no \
                    authentication); give host:port only",
        );
    }
    if addr.contains("://") {
        return Err("only host:port or tcp://host:port addresses are supported");
    }
    if addr.is_empty() || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected host:port");
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("expected host:port (the port is required)");
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err("expected host:port with a port from 1 to 65535");
    }
    Ok(addr.to_owned())
}

/// Reads `item_size_max` from `stats settings` on a short-lived connection.
async fn item_size_max(addr: &str, timeout: Duration) -> std::result::Result<usize, String> {
    let probe = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(b"stats settings\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let mut found = None;
        loop {
            line.clear();
            let n = stream
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            let text = line.trim_end();
            if n == 0 || text == "END" || text.ends_with("ERROR") {
                break;
            }
            if let Some(v) = text.strip_prefix("STAT item_size_max ") {
                found = v.parse::<usize>().ok();
            }
        }
        Ok(found.unwrap_or(DEFAULT_ITEM_SIZE_MAX))
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Err(format!("no connection within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_checked_and_normalised() {
        assert_eq!(
            parse_server("127.0.0.1:11211").as_deref(),
            Ok("127.0.0.1:11211")
        );
        assert_eq!(
            parse_server("tcp://cache-1:11211").as_deref(),
            Ok("cache-1:11211")
        );
        assert_eq!(parse_server(" [::1]:11211 ").as_deref(), Ok("[::1]:11211"));
        for bad in [
            "",
            "host",
            "host:",
            ":11211",
            "host:0",
            "host:99999",
            "unix:///tmp/mc.sock",
            "a b:1",
            "user:pw@host:1",
        ] {
            assert!(parse_server(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bad_configurations_are_config_errors() {
        let cases = [
            MemcachedBackendBuilder::default(),
            MemcachedBackendBuilder::default().server("nope"),
            MemcachedBackendBuilder::default().servers(["a:1", "tcp://a:1"]),
            MemcachedBackendBuilder::default()
                .server("a:1")
                .pool_size(0),
            MemcachedBackendBuilder::default()
                .server("a:1")
                .command_timeout(Duration::ZERO),
        ];
        for builder in cases {
            let err = builder.build().expect_err("a bad configuration");
            assert_eq!(err.kind(), ErrorKind::Config, "{err}");
            assert_eq!(err.operation(), Some(Operation::Connect));
        }
    }

    #[test]
    fn credentials_in_a_server_address_never_print() {
        let builder = MemcachedBackendBuilder::default().server("tcp://admin:hunter2@db:11211");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let err = builder.build().expect_err("credentials are rejected");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("credentials"), "{err}");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("admin"), "{text}");
        }
    }
}
