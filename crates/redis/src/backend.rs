//! [`RedisBackend`]: the [`CacheBackend`] implementation over one shared, pipelining fred
//! client.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::{Client, WithOptions};
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, ClusterInterface, KeysInterface};
use fred::types::config::{Options, Server};
use fred::types::scan::{ScanResult, Scanner};
use fred::types::{Expiration, InfoKind, Key, SetOptions, Value};
use futures::future::{join_all, try_join_all};
use futures::{Stream, StreamExt};
use lexicache_core::glob::Pattern;
use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheValue, Capabilities, Error, ErrorKind,
    EventBus, Expiry, HealthCheckResult, KeyRules, Operation, Result, SharedLockStore,
};

use crate::builder::RedisBackendBuilder;
use crate::config::{Deployment, RedisConfig};
use crate::error::map_error;
use crate::lock::RedisLockStore;
use crate::pattern::scan_match;
use crate::pubsub::RedisPubSub;
use crate::stats::summarize;

/// Keys asked for per `SCAN` page.
const SCAN_COUNT: u32 = 1000;

/// The client and settings shared by every namespace made with [`RedisBackend::with_prefix`].
pub(crate) struct Shared {
    /// The one connection (or one per cluster primary) every call goes through.
    pub(crate) client: Client,
    /// The same client with the per-command options applied (fail-fast, timeout).
    pub(crate) cmd: WithOptions<Client>,
    pub(crate) options: Options,
    pub(crate) name: Arc<str>,
    pub(crate) events: EventBus,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) key_rules: KeyRules,
    pub(crate) max_value_size: usize,
    pub(crate) config: RedisConfig,
    /// A stall check of the connection is running (see [`stall`](crate::stall)).
    pub(crate) stall_watch: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The connection task holds its own handle to the client, so without `QUIT` the
        // connection (and its reconnect loop) would outlive the last backend.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            handle.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// A Redis cache backend on [fred](https://docs.rs/fred): standalone, cluster or sentinel.
///
/// Cheap to clone: clones, and namespaces made with [`with_prefix`](Self::with_prefix), share
/// one pipelining client. Keys are stored as `prefix + key`.
///
/// # Cancel safety
///
/// Dropping a future after its command was written cannot take the command back: the write
/// (or delete) may still happen, entirely. Batch writes are pipelined, not transactions, so a
/// dropped `set_many` may have written some of its entries; each entry is whole.
#[derive(Clone)]
pub struct RedisBackend {
    shared: Arc<Shared>,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("name", &self.shared.name)
            .field("prefix", &self.prefix)
            .field("connected", &self.shared.client.is_connected())
            .field("default_ttl", &self.shared.default_ttl)
            .field("max_value_size", &self.shared.max_value_size)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// What a write with a TTL does.
enum Write {
    /// Store, with this expiry (or none).
    Store(Option<Expiration>),
    /// A zero TTL: the entry expires at once, so the key is removed.
    Remove,
}

/// The expiry for `ttl` in whole milliseconds, rounded up and never zero.
fn px(ttl: Duration) -> Expiration {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    Expiration::PX(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// An entry from a `GET` reply and a `PTTL` reply read in one pipeline.
///
/// `PTTL` is `-1` for a key without expiry and `-2` for a missing key: a value whose key
/// expired between the two commands is a miss.
fn with_expiry(value: Option<Bytes>, pttl: i64) -> Option<(Bytes, Expiry)> {
    let value = value?;
    match pttl {
        -1 => Some((value, Expiry::Never)),
        ms if ms >= 0 => Some((value, Expiry::In(Duration::from_millis(ms.unsigned_abs())))),
        _ => None,
    }
}

/// The server a cluster slot lives on, for grouping keys per round trip.
fn slot_of(key: &Key) -> u16 {
    fred::util::redis_keyslot(key.as_bytes())
}

/// Keys grouped by hash slot, each with the positions it came from.
fn group_by_slot(keys: Vec<Key>) -> Vec<(Vec<Key>, Vec<usize>)> {
    let mut groups: HashMap<u16, (Vec<Key>, Vec<usize>)> = HashMap::new();
    for (i, key) in keys.into_iter().enumerate() {
        let group = groups.entry(slot_of(&key)).or_default();
        group.0.push(key);
        group.1.push(i);
    }
    groups.into_values().collect()
}

type ScanStream = Pin<Box<dyn Stream<Item = Result<ScanResult, FredError>> + Send>>;

impl RedisBackend {
    /// A builder for the connection, its limits, the namespace and events.
    pub fn builder() -> RedisBackendBuilder {
        RedisBackendBuilder::default()
    }

    /// Connects to the server at `url` with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisBackendBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, prefix: String) -> Self {
        Self {
            shared,
            prefix: Arc::from(prefix),
        }
    }

    /// Another namespace over the same client: its keys are prefixed with `prefix` (instead of
    /// this backend's prefix), and its `clear` and `delete_pattern` touch only them.
    ///
    /// End the prefix with a separator such as `:`: namespaces are plain prefixes, so
    /// `tenant1` would otherwise also cover `tenant10`'s keys.
    #[must_use]
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self::from_parts(self.shared.clone(), prefix.into())
    }

    /// The prefix of this namespace.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bus that `Connected` and `Disconnected` events go to.
    #[must_use]
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// The connection settings (passwords stay redacted in `Debug`).
    #[must_use]
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    /// The underlying fred client, for commands lexicache does not wrap. It is shared: do not
    /// `quit` it while backends still use it, and keep a backend handle alive while you use
    /// it, since dropping the last handle closes the client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// A [`RedisLockStore`] over this backend's client, in its namespace, with its key rules.
    ///
    /// [`CacheBackend::lock_store`] returns the same store, shared and type-erased.
    #[must_use]
    pub fn lock_store(&self) -> RedisLockStore {
        RedisLockStore::from_parts(self.clone(), self.shared.cmd.clone(), self.shared.key_rules)
    }

    /// Publish/subscribe on this backend's server, with channels inside this namespace's
    /// prefix (see [`RedisPubSub`]). Cheap: publishing shares this backend's client; each
    /// subscription opens a connection of its own.
    #[must_use]
    pub fn pubsub(&self) -> RedisPubSub {
        RedisPubSub::from_parts(self.shared.clone(), self.prefix.clone())
    }

    /// Whether every connection of the client is up.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.client.is_connected()
    }

    /// Closes the connection for every namespace sharing this client. Later calls fail with
    /// [`ErrorKind::Connection`](lexicache_core::ErrorKind::Connection). Dropping the last handle does the same in the background.
    ///
    /// # Errors
    ///
    /// When `QUIT` cannot be sent; the connection closes anyway.
    pub async fn quit(&self) -> Result<()> {
        self.shared
            .client
            .quit()
            .await
            .map_err(|e| self.error(e, Operation::Connect))
    }

    fn error(&self, err: FredError, op: Operation) -> Error {
        if *err.kind() == fred::error::ErrorKind::Timeout {
            crate::stall::watch(&self.shared);
        }
        map_error(err, &self.shared.name, op)
    }

    fn check_key(&self, key: &str, op: Operation) -> Result<()> {
        self.shared.key_rules.check(key, &self.shared.name, op)
    }

    fn check_value(&self, len: usize, op: Operation) -> Result<()> {
        if len > self.shared.max_value_size {
            return Err(Error::value_too_large(
                self.shared.name.to_string(),
                len,
                self.shared.max_value_size,
            )
            .with_operation(op));
        }
        Ok(())
    }

    /// Refuses a value read back that is over the largest value this backend writes: another
    /// client (or a backend configured with a larger limit) put it there, and handing it on
    /// would break the limit callers size their buffers and decoders by. The whole reply has
    /// been read by then, so this bounds what callers see, not what the client read.
    fn check_read(&self, value: Option<&Bytes>, op: Operation) -> Result<()> {
        let max = self.shared.max_value_size;
        match value {
            Some(v) if v.len() > max => {
                Err(
                    Error::stored_value_too_large(self.shared.name.to_string(), v.len(), max)
                        .with_operation(op),
                )
            }
            _ => Ok(()),
        }
    }

    /// The full key, built in one allocation that fred then sends without copying.
    #[inline]
    fn key(&self, key: &str) -> Key {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        Key::from(full)
    }

    fn keys(&self, keys: &[&str], op: Operation) -> Result<Vec<Key>> {
        // Every key is checked before any is sent, so a bad key means nothing happens.
        for k in keys {
            self.check_key(k, op)?;
        }
        Ok(keys.iter().map(|k| self.key(k)).collect())
    }

    fn write_plan(&self, ttl: Option<Duration>) -> Write {
        match ttl.or(self.shared.default_ttl) {
            Some(ttl) if ttl.is_zero() => Write::Remove,
            Some(ttl) => Write::Store(Some(px(ttl))),
            None => Write::Store(None),
        }
    }

    fn is_cluster(&self) -> bool {
        self.shared.config.is_cluster()
    }

    /// `GET`, shared by `get` and `get_entry` so neither boxes a second future.
    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        self.check_key(key, Operation::Get)?;
        let value = self
            .shared
            .cmd
            .get::<Option<Bytes>, _>(self.key(key))
            .await
            .map_err(|e| self.error(e, Operation::Get))?;
        self.check_read(value.as_ref(), Operation::Get)?;
        Ok(value)
    }

    /// `GET` and `PTTL` of each full key, pipelined in one round trip, in order.
    async fn read_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<(Bytes, Expiry)>>, FredError> {
        let pipeline = self
            .shared
            .client
            .pipeline()
            .with_options(&self.shared.options);
        for key in keys {
            pipeline.get::<(), _>(key.clone()).await?;
            pipeline.pttl::<(), _>(key.clone()).await?;
        }
        let replies: Vec<Value> = pipeline.all().await?;
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(keys.len());
        while let (Some(value), Some(pttl)) = (replies.next(), replies.next()) {
            out.push(with_expiry(value.convert()?, pttl.convert()?));
        }
        if out.len() != keys.len() {
            return Err(FredError::new(
                fred::error::ErrorKind::Parse,
                "a GET/PTTL pipeline answered with the wrong number of replies",
            ));
        }
        Ok(out)
    }

    /// `SET .. PX` (or `DEL` for a zero TTL), shared by `set` and `set_entry`.
    async fn write(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.len(), Operation::Set)?;
        let result = match self.write_plan(ttl) {
            Write::Store(expire) => {
                self.shared
                    .cmd
                    .set::<(), _, _>(self.key(key), Value::Bytes(value), expire, None, false)
                    .await
            }
            Write::Remove => self.shared.cmd.del::<(), _>(self.key(key)).await,
        };
        result.map_err(|e| self.error(e, Operation::Set))
    }

    /// `DEL` (or `UNLINK`) of full keys: one command, or one per hash slot in a cluster.
    async fn remove_keys(&self, keys: Vec<Key>, unlink: bool, op: Operation) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let cmd = &self.shared.cmd;
        let run = |keys: Vec<Key>| async move {
            if unlink {
                cmd.unlink::<u64, _>(keys).await
            } else {
                cmd.del::<u64, _>(keys).await
            }
        };
        if !self.is_cluster() {
            return run(keys).await.map_err(|e| self.error(e, op));
        }
        let counts = try_join_all(group_by_slot(keys).into_iter().map(|(keys, _)| run(keys)))
            .await
            .map_err(|e| self.error(e, op))?;
        Ok(counts.into_iter().sum())
    }

    /// The pages of a `SCAN` for `pattern`: on every primary of a cluster, else on the server.
    fn scan(&self, pattern: String) -> ScanStream {
        let client = &self.shared.client;
        if self.is_cluster() {
            Box::pin(client.scan_cluster(pattern, Some(SCAN_COUNT), None))
        } else {
            Box::pin(client.scan(pattern, Some(SCAN_COUNT), None))
        }
    }

    /// `SCAN`s every primary for `pattern`, keeps the keys `keep` accepts, and unlinks them in
    /// page-sized batches. Returns how many keys were removed.
    async fn scan_unlink(
        &self,
        pattern: String,
        keep: impl Fn(&str) -> bool,
        op: Operation,
    ) -> Result<u64> {
        let mut pages = self.scan(pattern);
        let mut removed = 0;
        while let Some(page) = pages.next().await {
            let mut page = page.map_err(|e| self.error(e, op))?;
            let batch: Vec<Key> = page
                .take_results()
                .unwrap_or_default()
                .into_iter()
                // Keys that are not UTF-8 were not written by lexicache.
                .filter(|k| k.as_str().is_some_and(&keep))
                .collect();
            // UNLINK counts only keys that still existed, so keys that expired or were deleted
            // meanwhile (or that SCAN returned twice) are not counted.
            removed += self.remove_keys(batch, true, op).await?;
            page.next();
        }
        Ok(removed)
    }

    /// `SCAN`s every primary for `pattern` and collects, without duplicates, at most `limit`
    /// keys that `keep` maps to a name.
    async fn scan_collect(
        &self,
        pattern: String,
        keep: impl Fn(&str) -> Option<String>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut pages = self.scan(pattern);
        // SCAN may return a key more than once while the keyspace is rehashed.
        let mut seen = HashSet::new();
        while seen.len() < limit {
            let Some(page) = pages.next().await else {
                break;
            };
            let mut page = page.map_err(|e| self.error(e, Operation::Keys))?;
            for key in page.take_results().unwrap_or_default() {
                if let Some(name) = key.as_str().and_then(&keep) {
                    if seen.len() < limit {
                        seen.insert(name);
                    }
                }
            }
            page.next();
        }
        Ok(seen.into_iter().collect())
    }

    /// Pings one server (or the default route) and reads its replication role.
    async fn probe(&self, server: Option<Server>, timeout: Duration) -> Result<(Duration, String)> {
        let options = Options {
            timeout: Some(timeout),
            fail_fast: true,
            cluster_node: server,
            ..Options::default()
        };
        let client = self.shared.client.with_options(&options);
        let started = Instant::now();
        client
            .ping::<String>(None)
            .await
            .map_err(|e| self.error(e, Operation::Health))?;
        let ping = started.elapsed();
        let info: String = client
            .info(Some(InfoKind::Replication))
            .await
            .map_err(|e| self.error(e, Operation::Health))?;
        let role = info
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("role:"))
            .unwrap_or("unknown")
            .to_owned();
        Ok((ping, role))
    }

    fn mode(&self) -> &'static str {
        match self.shared.config.deployment {
            Deployment::Standalone { .. } => "standalone",
            Deployment::Cluster { .. } => "cluster",
            Deployment::Sentinel { .. } => "sentinel",
        }
    }

    fn no_primaries(&self) -> Error {
        Error::new(ErrorKind::Connection, self.shared.name.to_string())
            .with_operation(Operation::Stats)
            .with_message("no cluster primaries known: the client never connected")
    }

    /// The servers `stats` asks, as `(address, route)`: each cluster primary, or the one
    /// server (a sentinel deployment's primary) on the default route.
    fn stats_targets(&self) -> Result<Vec<(String, Option<Server>)>> {
        let client = &self.shared.client;
        if self.is_cluster() {
            let primaries = client
                .cached_cluster_state()
                .map(|s| s.unique_primary_nodes())
                .unwrap_or_default();
            if primaries.is_empty() {
                return Err(self.no_primaries());
            }
            return Ok(primaries
                .into_iter()
                .map(|s| (s.to_string(), Some(s)))
                .collect());
        }
        let address = match (
            client.active_connections().first(),
            &self.shared.config.deployment,
        ) {
            (Some(server), _) => server.to_string(),
            (None, Deployment::Standalone { host, port }) => format!("{host}:{port}"),
            (None, Deployment::Sentinel { master, .. }) => format!("{master} (via sentinel)"),
            (None, Deployment::Cluster { .. }) => String::new(),
        };
        Ok(vec![(address, None)])
    }

    /// One server's `INFO` (the default sections), within the command timeout.
    async fn info(&self, server: Option<Server>) -> Result<String> {
        let options = Options {
            cluster_node: server,
            ..self.shared.options.clone()
        };
        self.shared
            .client
            .with_options(&options)
            .info::<String>(None)
            .await
            .map_err(|e| self.error(e, Operation::Stats))
    }

    async fn check(&self, timeout: Duration, started: Instant) -> HealthCheckResult {
        let name = self.shared.name.to_string();
        let mode = self.mode();
        let connected = self.shared.client.is_connected();
        let servers: Vec<Option<Server>> = if self.is_cluster() {
            let primaries = self
                .shared
                .client
                .cached_cluster_state()
                .map(|s| s.unique_primary_nodes())
                .unwrap_or_default();
            if primaries.is_empty() {
                return HealthCheckResult::unhealthy(
                    name,
                    started.elapsed(),
                    "no cluster primaries known: the client never connected",
                )
                .with_detail("mode", mode)
                .with_detail("connected", connected.to_string());
            }
            primaries.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        let probes = join_all(servers.iter().map(|s| self.probe(s.clone(), timeout))).await;

        let mut details = Vec::new();
        let mut failures = Vec::new();
        let mut replicas = Vec::new();
        let mut slowest = Duration::ZERO;
        for (server, probe) in servers.iter().zip(probes) {
            let label = server
                .as_ref()
                .map_or_else(String::new, |s| format!("{}:{}.", s.host, s.port));
            match probe {
                Ok((ping, role)) => {
                    slowest = slowest.max(ping);
                    details.push((format!("{label}ping_us"), ping.as_micros().to_string()));
                    if role != "master" {
                        replicas.push(format!("{}{role}", label));
                    }
                    details.push((format!("{label}role"), role));
                }
                Err(e) => {
                    details.push((format!("{label}error"), e.kind().to_string()));
                    failures.push(format!("{label}{e}"));
                }
            }
        }
        let latency = started.elapsed();
        let mut result = if failures.len() == servers.len() {
            HealthCheckResult::unhealthy(name, latency, failures.join("; "))
        } else if !failures.is_empty() {
            HealthCheckResult::degraded(
                name,
                latency,
                format!(
                    "{} of {} primaries failed: {}",
                    failures.len(),
                    servers.len(),
                    failures.join("; ")
                ),
            )
        } else if !replicas.is_empty() {
            HealthCheckResult::degraded(
                name,
                latency,
                format!("connected to a non-primary ({})", replicas.join(", ")),
            )
        } else {
            HealthCheckResult::healthy(name, latency)
        };
        for (k, v) in details {
            result = result.with_detail(k, v);
        }
        result
            .with_detail("mode", mode)
            .with_detail("connected", connected.to_string())
            .with_detail("primaries", servers.len().to_string())
            .with_detail("ping_us", slowest.as_micros().to_string())
            .with_detail("prefix", self.prefix.to_string())
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.pattern_delete = true;
        caps.clear = true;
        caps.list_keys = true;
        caps.native_ttl = true;
        caps.native_batch = true;
        caps.in_process = false;
        caps.tokio_clock = false;
        caps.distributed = true;
        caps.max_key_len = self.shared.key_rules.max_key_len();
        caps.max_value_size = Some(self.shared.max_value_size);
        caps
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.read(key).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.write(key, value, ttl).await
    }

    /// `GET` and `PTTL` pipelined: one round trip.
    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        self.check_key(key, Operation::Get)?;
        let mut read = self
            .read_with_ttl(&[self.key(key)])
            .await
            .map_err(|e| self.error(e, Operation::Get))?;
        let entry = read.pop().flatten();
        self.check_read(entry.as_ref().map(|(v, _)| v), Operation::Get)?;
        Ok(entry)
    }

    /// `GET` and `PTTL` of every key in one pipeline (one per hash slot in a cluster, all in
    /// flight at once), answered in order.
    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        let full = self.keys(keys, Operation::GetMany)?;
        if full.is_empty() {
            return Ok(Vec::new());
        }
        let err = |e| self.error(e, Operation::GetMany);
        let out = if self.is_cluster() {
            let groups = group_by_slot(full);
            let replies = try_join_all(groups.iter().map(|(keys, _)| self.read_with_ttl(keys)))
                .await
                .map_err(err)?;
            let mut out = vec![None; keys.len()];
            for ((_, positions), entries) in groups.into_iter().zip(replies) {
                for (pos, entry) in positions.into_iter().zip(entries) {
                    out[pos] = entry;
                }
            }
            out
        } else {
            self.read_with_ttl(&full).await.map_err(err)?
        };
        for entry in &out {
            self.check_read(entry.as_ref().map(|(v, _)| v), Operation::GetMany)?;
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Delete)?;
        self.shared
            .cmd
            .del::<u64, _>(self.key(key))
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e, Operation::Delete))
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.len(), Operation::Set)?;
        let err = |e| self.error(e, Operation::Set);
        match self.write_plan(ttl) {
            // `SET NX PX`: one atomic command; the reply is `OK` when it wrote, nil when the key
            // was there.
            Write::Store(expire) => self
                .shared
                .cmd
                .set::<Option<String>, _, _>(
                    self.key(key),
                    Value::Bytes(value),
                    expire,
                    Some(SetOptions::NX),
                    false,
                )
                .await
                .map(|reply| reply.is_some())
                .map_err(err),
            // A zero TTL writes an entry that is gone at once: "written" exactly when nothing
            // live was there.
            Write::Remove => self
                .shared
                .cmd
                .exists::<u64, _>(self.key(key))
                .await
                .map(|n| n == 0)
                .map_err(err),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Exists)?;
        self.shared
            .cmd
            .exists::<u64, _>(self.key(key))
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e, Operation::Exists))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let full = self.keys(keys, Operation::GetMany)?;
        if full.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = &self.shared.cmd;
        let err = |e| self.error(e, Operation::GetMany);
        let out = if self.is_cluster() {
            // MGET needs one hash slot, so a cluster gets one MGET per slot, all in flight at
            // once.
            let groups = group_by_slot(full);
            let replies = try_join_all(
                groups
                    .iter()
                    .map(|(keys, _)| cmd.mget::<Vec<Option<Bytes>>, _>(keys.clone())),
            )
            .await
            .map_err(err)?;
            let mut out = vec![None; keys.len()];
            for ((_, positions), values) in groups.into_iter().zip(replies) {
                for (pos, value) in positions.into_iter().zip(values) {
                    out[pos] = value;
                }
            }
            out
        } else {
            cmd.mget::<Vec<Option<Bytes>>, _>(full).await.map_err(err)?
        };
        for value in &out {
            self.check_read(value.as_ref(), Operation::GetMany)?;
        }
        Ok(out)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        // Everything is checked first, so an invalid item means nothing is sent.
        for (k, v) in items {
            self.check_key(k, Operation::SetMany)?;
            self.check_value(v.len(), Operation::SetMany)?;
        }
        if items.is_empty() {
            return Ok(());
        }
        let err = |e| self.error(e, Operation::SetMany);
        let expire = match self.write_plan(ttl) {
            Write::Remove => {
                let keys = items.iter().map(|(k, _)| self.key(k)).collect();
                return self
                    .remove_keys(keys, false, Operation::SetMany)
                    .await
                    .map(|_| ());
            }
            Write::Store(expire) => expire,
        };
        // One pipeline, in item order: a cluster routes each SET to its slot's primary, and a
        // duplicated key's writes reach the same server in order, so the last one wins.
        let pipeline = self
            .shared
            .client
            .pipeline()
            .with_options(&self.shared.options);
        for (k, v) in items {
            pipeline
                .set::<(), _, _>(
                    self.key(k),
                    Value::Bytes(v.clone()),
                    expire.clone(),
                    None,
                    false,
                )
                .await
                .map_err(err)?;
        }
        pipeline.all::<Value>().await.map(|_| ()).map_err(err)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let full = self.keys(keys, Operation::DeleteMany)?;
        // DEL counts each existing key once, however often it is named, as the suite expects.
        self.remove_keys(full, false, Operation::DeleteMany).await
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        let pattern = Pattern::new(glob);
        let prefix = self.prefix.clone();
        self.scan_unlink(
            scan_match(&prefix, glob),
            |k| {
                k.strip_prefix(&*prefix)
                    .is_some_and(|rest| pattern.matches(rest))
            },
            Operation::DeletePattern,
        )
        .await
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pattern = Pattern::new(glob);
        let prefix = &*self.prefix;
        self.scan_collect(
            scan_match(prefix, glob),
            |k| {
                k.strip_prefix(prefix)
                    .filter(|rest| pattern.matches(rest))
                    .map(str::to_owned)
            },
            limit,
        )
        .await
    }

    async fn clear(&self) -> Result<()> {
        let prefix = self.prefix.clone();
        self.scan_unlink(
            scan_match(&prefix, "*"),
            |k| k.starts_with(&*prefix),
            Operation::Clear,
        )
        .await
        .map(|_| ())
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.check(timeout, started)).await {
            Ok(result) => result,
            Err(_) => HealthCheckResult::unhealthy(
                self.shared.name.to_string(),
                started.elapsed().min(timeout),
                format!("redis did not answer within {timeout:?}"),
            )
            .with_detail("connected", self.shared.client.is_connected().to_string()),
        }
    }

    /// `INFO` on every server, in parallel, each within the command timeout: the primary
    /// (standalone, or found through sentinel) or each cluster primary.
    ///
    /// - `entries` (scope `"server"`): keys in the configured database of every server, every
    ///   namespace's and application's keys included;
    /// - `memory_bytes`, `hits`, `misses`, `evictions`: `used_memory`, `keyspace_hits`,
    ///   `keyspace_misses` and `evicted_keys`, summed;
    /// - per server: version, uptime, `connected_clients`, keys and `used_memory`;
    /// - `extra`: `mode`, `expired_keys`, and `unreachable` naming the servers that failed.
    ///
    /// When some cluster primaries fail, the others' figures are returned (the failed ones
    /// listed without figures); when every server fails, the first error:
    /// [`ErrorKind::Connection`](lexicache_core::ErrorKind::Connection) or
    /// [`ErrorKind::Timeout`](lexicache_core::ErrorKind::Timeout).
    async fn stats(&self) -> Result<BackendStats> {
        let targets = self.stats_targets()?;
        let replies = join_all(targets.iter().map(|(_, s)| self.info(s.clone()))).await;
        if replies.iter().all(Result::is_err) {
            return Err(replies
                .into_iter()
                .find_map(Result::err)
                .unwrap_or_else(|| self.no_primaries()));
        }
        let db = self.shared.config.database.unwrap_or(0);
        let replies = targets.into_iter().map(|(a, _)| a).zip(replies).collect();
        Ok(summarize(self.mode(), db, replies))
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        Ok(self.read(key).await?.map(CacheValue::from_bytes))
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.write(key, value.into_bytes(), ttl).await
    }

    /// Redis locks in this namespace, so stampede protection coordinates every process that
    /// shares the server.
    fn lock_store(&self) -> Option<SharedLockStore> {
        Some(Arc::new(RedisBackend::lock_store(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_milliseconds_and_never_to_zero() {
        assert_eq!(px(Duration::from_nanos(1)), Expiration::PX(1));
        assert_eq!(px(Duration::from_micros(1500)), Expiration::PX(2));
        assert_eq!(px(Duration::from_millis(250)), Expiration::PX(250));
        assert_eq!(px(Duration::from_secs(2)), Expiration::PX(2000));
    }

    #[test]
    fn pttl_replies_map_to_expiries_and_an_expired_key_is_a_miss() {
        let v = Bytes::from_static(b"v");
        assert_eq!(
            with_expiry(Some(v.clone()), -1),
            Some((v.clone(), Expiry::Never))
        );
        assert_eq!(
            with_expiry(Some(v.clone()), 1500),
            Some((v.clone(), Expiry::In(Duration::from_millis(1500))))
        );
        assert_eq!(
            with_expiry(Some(v.clone()), 0),
            Some((v.clone(), Expiry::In(Duration::ZERO)))
        );
        assert_eq!(with_expiry(Some(v), -2), None);
        assert_eq!(with_expiry(None, -2), None);
    }

    #[test]
    fn keys_are_grouped_by_hash_slot_keeping_their_positions() {
        let keys: Vec<Key> = ["{a}1", "b", "{a}2", "c"]
            .iter()
            .map(|k| Key::from(*k))
            .collect();
        let groups = group_by_slot(keys);
        let tagged = groups
            .iter()
            .find(|(keys, _)| keys[0].as_str() == Some("{a}1"))
            .expect("the {a} group");
        assert_eq!(tagged.1, vec![0, 2], "hash-tagged keys share a slot");
        assert_eq!(groups.iter().map(|g| g.1.len()).sum::<usize>(), 4);
    }
}
