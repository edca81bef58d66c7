//! What a bench task talks to: lexicache's service, or the raw driver under it (moka, fred,
//! async-memcached), behind one enum so that both sides run the very same task loop.
//!
//! The raw side encodes and decodes with the same serializer the service is configured with, so
//! it stores the same payload bytes and the ratio measures what the library adds around them
//! (key checks, layers, metrics, the envelope, the backend's own bookkeeping).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{
    Builder, ClientLike, Config as FredConfig, Expiration, KeysInterface, ServerConfig,
};
use fred::types::RespVersion;
use futures::StreamExt;
use lexicache::config::{
    CacheBackendConfig, ConfiguredSerializer, ConfiguredService, MemcachedBackendConfig,
    MemoryBackendConfig, RedisBackendConfig, RedisMode,
};
use lexicache::{Error, ErrorKind, Operation, Serializer};

use crate::{CliError, Target};

/// The value type of the workload: a string of `--value-size` bytes, cheap to encode and decode
/// with every serializer.
pub(super) type Value = String;

/// A shared handle the tasks of one phase make their [`Worker`]s from.
#[derive(Clone)]
pub(super) enum Driver {
    /// Through `CacheService`.
    Lexicache(ConfiguredService),
    /// `moka::future::Cache`, sized like the memory backend.
    Moka(moka::future::Cache<String, Bytes>, Codec),
    /// One fred client, shared by the tasks (fred pipelines, like the Redis backend's client).
    Fred(fred::clients::Client, Codec),
    /// Memcached servers; each task opens one async-memcached client per server.
    Memcached(Arc<MemcachedTarget>, Codec),
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lexicache(_) => "Driver::Lexicache",
            Self::Moka(..) => "Driver::Moka",
            Self::Fred(..) => "Driver::Fred",
            Self::Memcached(..) => "Driver::Memcached",
        })
    }
}

/// The servers and timeouts of the raw memcached side.
#[derive(Debug)]
pub(super) struct MemcachedTarget {
    servers: Vec<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

/// The service's serializer, applied by the raw side around the driver's bytes.
#[derive(Clone, Debug)]
pub(super) struct Codec(ConfiguredSerializer);

impl Codec {
    fn encode(&self, key: &str, value: &Value) -> Result<Bytes, Error> {
        self.0.encode(key, value)
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        self.0.decode::<Value>(key, bytes).map(drop)
    }
}

/// A raw driver with its label for the report and a sentence on how it was set up.
#[derive(Debug)]
pub(super) struct Raw {
    pub(super) driver: Driver,
    pub(super) label: String,
    pub(super) note: String,
}

impl Driver {
    /// A task's own handle: memcached connects its clients here, outside the measured time.
    pub(super) async fn worker(&self) -> Result<Worker, Error> {
        Ok(match self {
            Self::Lexicache(s) => Worker::Lexicache(s.clone()),
            Self::Moka(c, codec) => Worker::Moka(c.clone(), codec.clone()),
            Self::Fred(c, codec) => Worker::Fred(c.clone(), codec.clone()),
            Self::Memcached(target, codec) => {
                let mut clients = Vec::with_capacity(target.servers.len());
                for server in &target.servers {
                    clients.push(memcached_connect(target, server).await?);
                }
                Worker::Memcached(Arc::clone(target), clients, codec.clone())
            }
        })
    }

    /// Deletes the keys `{prefix}0 .. {prefix}{keys-1}` the raw side wrote. Memcached keys
    /// are left to their TTL; moka goes away with the process.
    pub(super) async fn cleanup(&self, prefix: &str, keys: u64) -> Result<(), Error> {
        let Self::Fred(client, _) = self else {
            return Ok(());
        };
        if client.is_clustered() {
            // Keys of one DEL must share a slot in a cluster: one key per DEL, pipelined.
            let results: Vec<Result<i64, fred::error::Error>> = futures::stream::iter(0..keys)
                .map(|i| {
                    let client = client.clone();
                    let key = format!("{prefix}{i}");
                    async move { client.del::<i64, _>(key).await }
                })
                .buffer_unordered(256)
                .collect()
                .await;
            results.into_iter().try_for_each(|r| r.map(drop))
        } else {
            let chunks: Vec<Vec<String>> = (0..keys)
                .collect::<Vec<_>>()
                .chunks(1000)
                .map(|c| c.iter().map(|i| format!("{prefix}{i}")).collect())
                .collect();
            let results: Vec<Result<i64, fred::error::Error>> = futures::stream::iter(chunks)
                .map(|chunk| {
                    let client = client.clone();
                    async move { client.del::<i64, _>(chunk).await }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            results.into_iter().try_for_each(|r| r.map(drop))
        }
        .map_err(fred_error)
    }

    /// Closes the raw driver's connections.
    pub(super) async fn close(self) {
        if let Self::Fred(client, _) = self {
            let _ = client.quit().await;
        }
    }
}

/// One task's handle on the driver.
pub(super) enum Worker {
    Lexicache(ConfiguredService),
    Moka(moka::future::Cache<String, Bytes>, Codec),
    Fred(fred::clients::Client, Codec),
    Memcached(Arc<MemcachedTarget>, Vec<async_memcached::Client>, Codec),
}

impl Worker {
    /// A typed read: `Ok(true)` on a hit.
    pub(super) async fn read(&mut self, key: &str) -> Result<bool, Error> {
        match self {
            Self::Lexicache(s) => Ok(s.try_get::<Value>(key).await?.is_some()),
            Self::Moka(c, codec) => match c.get(key).await {
                Some(bytes) => codec.decode(key, &bytes).map(|()| true),
                None => Ok(false),
            },
            Self::Fred(c, codec) => match c.get::<Option<Bytes>, _>(key).await {
                Ok(Some(bytes)) => codec.decode(key, &bytes).map(|()| true),
                Ok(None) => Ok(false),
                Err(e) => Err(fred_error(e)),
            },
            Self::Memcached(target, clients, codec) => {
                let index = route(key, clients.len());
                let timeout = target.command_timeout;
                let outcome = {
                    use async_memcached::AsciiProtocol;
                    tokio::time::timeout(timeout, clients[index].get(key)).await
                };
                match outcome {
                    Ok(Ok(Some(value))) => match value.data {
                        Some(data) => codec.decode(key, &data).map(|()| true),
                        None => Ok(false),
                    },
                    Ok(Ok(None)) => Ok(false),
                    Ok(Err(e)) => Err(reconnect(target, clients, index, memcached_error(&e)).await),
                    Err(_) => Err(reconnect(target, clients, index, timeout_error(timeout)).await),
                }
            }
        }
    }

    /// A write of `value` under `key` (`ttl: None` = no expiry, or the backend's default
    /// through lexicache).
    pub(super) async fn write(
        &mut self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        match self {
            Self::Lexicache(s) => s.try_set(key, value, ttl).await,
            Self::Moka(c, codec) => {
                let bytes = codec.encode(key, value)?;
                c.insert(key.to_owned(), bytes).await;
                Ok(())
            }
            Self::Fred(c, codec) => {
                let bytes = codec.encode(key, value)?;
                let expire = ttl.map(|t| {
                    Expiration::PX(i64::try_from(t.as_millis().max(1)).unwrap_or(i64::MAX))
                });
                c.set::<(), _, _>(key, bytes, expire, None, false)
                    .await
                    .map_err(fred_error)
            }
            Self::Memcached(target, clients, codec) => {
                let bytes = codec.encode(key, value)?;
                let index = route(key, clients.len());
                let timeout = target.command_timeout;
                let exptime = ttl.map(memcached_exptime);
                let outcome = {
                    use async_memcached::AsciiProtocol;
                    tokio::time::timeout(
                        timeout,
                        clients[index].set(key, bytes.as_ref(), exptime, None),
                    )
                    .await
                };
                match outcome {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(reconnect(target, clients, index, memcached_error(&e)).await),
                    Err(_) => Err(reconnect(target, clients, index, timeout_error(timeout)).await),
                }
            }
        }
    }
}

/// The raw driver under the target's backend, with the service's serializer.
pub(super) async fn raw(target: &Target, ttl: Option<Duration>) -> Result<Raw, CliError> {
    let codec = Codec(ConfiguredSerializer::from_config(
        &target.config().service.serializer,
    )?);
    let config = target.backend_config();
    let (under, tiered) = match config {
        CacheBackendConfig::Tiered(t) => (&*t.l2, true),
        other => (other, false),
    };
    let mut raw = match under {
        CacheBackendConfig::Memory(m) => moka(m, ttl, codec),
        CacheBackendConfig::Redis(r) => fred(r, codec).await?,
        CacheBackendConfig::Memcached(m) => memcached(m, codec),
        CacheBackendConfig::Tiered(_) => {
            return Err(CliError::Usage(
                "the l2 of a tiered backend cannot be tiered".into(),
            ))
        }
    };
    if tiered {
        raw.note = format!(
            "{} This is the tiered backend's L2 alone, with no L1: what you would use without \
             lexicache.",
            raw.note
        );
        raw.label = format!("{} (L2, no L1)", raw.label);
    }
    Ok(raw)
}

fn moka(m: &MemoryBackendConfig, ttl: Option<Duration>, codec: Codec) -> Raw {
    let mut builder = moka::future::Cache::builder();
    builder = match m.max_bytes {
        // The memory backend weighs an entry as key + value + 64 bytes.
        Some(max) => builder.max_capacity(max).weigher(|k: &String, v: &Bytes| {
            u32::try_from(k.len() + v.len() + 64).unwrap_or(u32::MAX)
        }),
        None => builder.max_capacity(m.max_entries.unwrap_or(100_000)),
    };
    if let Some(ttl) = ttl.or(m.default_ttl) {
        builder = builder.time_to_live(ttl);
    }
    Raw {
        driver: Driver::Moka(builder.build(), codec),
        label: "moka".into(),
        note: "moka::future::Cache<String, Bytes> with the memory backend's bound; the bench's \
               single TTL is the cache's time_to_live."
            .into(),
    }
}

async fn fred(r: &RedisBackendConfig, codec: Codec) -> Result<Raw, CliError> {
    let mut config = match &r.url {
        Some(url) => FredConfig::from_url(url).map_err(|e| {
            CliError::Usage(format!(
                "--compare-raw: fred cannot read the Redis URL ({e}); use a redis:// URL"
            ))
        })?,
        None => {
            let server = match r.mode.unwrap_or_default() {
                RedisMode::Standalone => ServerConfig::new_centralized(
                    r.host.as_deref().unwrap_or("127.0.0.1"),
                    r.port.unwrap_or(6379),
                ),
                RedisMode::Cluster => ServerConfig::new_clustered(nodes(&r.nodes, 6379)?),
                RedisMode::Sentinel => ServerConfig::new_sentinel(
                    nodes(&r.nodes, 26379)?,
                    r.sentinel_master.clone().unwrap_or_default(),
                ),
            };
            FredConfig {
                server,
                ..FredConfig::default()
            }
        }
    };
    if r.username.is_some() {
        config.username.clone_from(&r.username);
    }
    if let Some(pw) = &r.password {
        config.password = Some(pw.expose().to_owned());
    }
    if r.db.is_some() {
        config.database = r.db;
    }
    config.version = RespVersion::RESP2;
    config.fail_fast = true;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = r.connect_timeout;
            c.internal_command_timeout = r.connect_timeout;
            c.tcp.nodelay = Some(true);
        })
        .with_performance_config(|p| p.default_command_timeout = r.command_timeout)
        .build()
        .map_err(fred_error)?;
    if let Err(e) = tokio::time::timeout(r.connect_timeout, client.init())
        .await
        .map_err(|_| timeout_error(r.connect_timeout))
        .and_then(|r| r.map(drop).map_err(fred_error))
    {
        let _ = client.quit().await;
        return Err(e.into());
    }
    Ok(Raw {
        driver: Driver::Fred(client, codec),
        label: "fred".into(),
        note: "one fred client (RESP2, pipelined) shared by the tasks, as the Redis backend's; \
               GET, and SET with PX for a TTL."
            .into(),
    })
}

fn nodes(nodes: &[String], default_port: u16) -> Result<Vec<(String, u16)>, CliError> {
    nodes
        .iter()
        .map(|n| match n.rsplit_once(':') {
            Some((host, port)) => port
                .parse()
                .map(|p| (host.to_owned(), p))
                .map_err(|_| CliError::Usage(format!("invalid redis node address `{n}`"))),
            None => Ok((n.clone(), default_port)),
        })
        .collect()
}

fn memcached(m: &MemcachedBackendConfig, codec: Codec) -> Raw {
    Raw {
        driver: Driver::Memcached(
            Arc::new(MemcachedTarget {
                servers: m.servers.clone(),
                connect_timeout: m.connect_timeout,
                command_timeout: m.command_timeout,
            }),
            codec,
        ),
        label: "async-memcached".into(),
        note: "async-memcached: one client per task per server, each key routed by FNV-1a \
               hash modulo the server count (the backend uses a consistent-hash ring); same \
               command timeout as the backend."
            .into(),
    }
}

/// FNV-1a: the raw memcached side's key routing.
fn route(key: &str, servers: usize) -> usize {
    if servers <= 1 {
        return 0;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // The remainder is below `servers`, a usize.
    usize::try_from(hash % servers as u64).unwrap_or(0)
}

/// Memcached's expiry in whole seconds, rounded up (values over 30 days would read as a date).
fn memcached_exptime(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.clamp(1, 30 * 24 * 3600)).unwrap_or(1)
}

async fn memcached_connect(
    target: &MemcachedTarget,
    server: &str,
) -> Result<async_memcached::Client, Error> {
    // async-memcached reads a bare `host:port` as a URL, which fails for IP addresses.
    let dsn = format!("tcp://{server}");
    match tokio::time::timeout(target.connect_timeout, async_memcached::Client::new(&dsn)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Connection, "async-memcached")
            .with_operation(Operation::Connect)
            .with_message(format!("server {server}: {e}"))),
        Err(_) => Err(timeout_error(target.connect_timeout).with_operation(Operation::Connect)),
    }
}

/// After a failed exchange the connection may hold a late reply: replace it, and return `err`.
async fn reconnect(
    target: &MemcachedTarget,
    clients: &mut [async_memcached::Client],
    index: usize,
    err: Error,
) -> Error {
    if let Ok(client) = memcached_connect(target, &target.servers[index]).await {
        clients[index] = client;
    }
    err
}

fn memcached_error(e: &async_memcached::Error) -> Error {
    let kind = match e {
        async_memcached::Error::Io(_) | async_memcached::Error::ConnectionClosed => {
            ErrorKind::Connection
        }
        _ => ErrorKind::Backend,
    };
    Error::new(kind, "async-memcached").with_message(e.to_string())
}

fn timeout_error(after: Duration) -> Error {
    Error::new(ErrorKind::Timeout, "raw driver")
        .with_message(format!("no answer within {} ms", after.as_millis()))
}

fn fred_error(e: fred::error::Error) -> Error {
    use fred::error::ErrorKind as K;
    let kind = match e.kind() {
        K::Timeout => ErrorKind::Timeout,
        K::IO | K::Canceled => ErrorKind::Connection,
        K::Auth | K::Config => ErrorKind::Config,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, "fred").with_message(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_routing_spreads_keys_over_every_server() {
        let mut seen = [0_u32; 2];
        for i in 0..1000 {
            seen[route(&format!("lexicache-bench-raw:{i}"), 2)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 300), "{seen:?}");
        assert_eq!(route("anything", 1), 0);
    }

    #[test]
    fn memcached_ttls_round_up_to_whole_seconds() {
        assert_eq!(memcached_exptime(Duration::from_millis(1500)), 2);
        assert_eq!(memcached_exptime(Duration::from_millis(1)), 1);
        assert_eq!(memcached_exptime(Duration::from_secs(300)), 300);
    }
}
