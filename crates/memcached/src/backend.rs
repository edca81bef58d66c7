//! [`MemcachedBackend`]: the [`CacheBackend`] implementation over pooled connections to one or
//! more memcached servers.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_memcached::{AsciiProtocol, MetaProtocol, Status};
use futures::future::try_join_all;
use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheValue, Capabilities, Error, ErrorKind,
    EventBus, HealthCheckResult, KeyRules, Operation, Result, SharedLockStore,
};
use tokio::time::Instant;

use crate::builder::MemcachedBackendBuilder;
use crate::keys::wire_key_with_prefix;
use crate::lock::MemcachedLockStore;
use crate::pool::{Failure, Pools};
use crate::ring::HashRing;
use crate::stats::{summarize, Reply};
use crate::ttl::{exptime, now_unix};

/// Keys per `get` command and items per pipelined `set` round trip. Bounding a round trip keeps
/// the requests of a large batch from filling the socket buffers while replies wait unread.
const BATCH_CHUNK: usize = 128;

/// What every namespace made with [`MemcachedBackend::with_prefix`] shares.
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) ring: HashRing,
    pub(crate) pools: Pools,
    pub(crate) events: EventBus,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) key_rules: KeyRules,
    pub(crate) max_value_size: usize,
}

/// A memcached backend: pooled connections to one or more servers, keys spread by consistent
/// hashing. Cheap to clone; clones share the pools.
///
/// See the [crate documentation](crate) for the key mapping, the TTL rule and the failure
/// behaviour.
///
/// # Cancel safety
///
/// Dropping a future mid-exchange drops its connection (it is never returned to the pool), so
/// a late reply is never read by another caller. A write may or may not have reached the
/// server; a batch may be partly applied.
#[derive(Clone)]
pub struct MemcachedBackend {
    pub(crate) shared: Arc<Shared>,
    prefix: Arc<str>,
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<&Arc<str>> = self.shared.ring.servers().iter().collect();
        let down: Vec<&Arc<str>> = (0..servers.len())
            .filter(|&i| self.shared.pools.is_down(i))
            .map(|i| servers[i])
            .collect();
        f.debug_struct("MemcachedBackend")
            .field("name", &self.shared.name)
            .field("prefix", &self.prefix)
            .field("servers", &servers)
            .field("down", &down)
            .field("pool", &self.shared.pools.config)
            .field("max_value_size", &self.shared.max_value_size)
            .field("default_ttl", &self.shared.default_ttl)
            .finish_non_exhaustive()
    }
}

/// Runs one exchange with server `$index`: checks out a connection, runs `$call` (which may use
/// the connection as `$client`) within `$timeout`, and gives the connection back or drops it.
/// Evaluates to `Result<Result<T, async_memcached::Error>>`: the outer error is the pool's or
/// the timeout's.
///
/// The wait for a pooled connection and the exchange each have `$timeout`, not one deadline
/// together: against a frozen server (which still completes TCP handshakes) a shared deadline
/// leaves late callers a sliver of time for their exchange, so they churn through connections
/// the server will have to work through when it wakes, and recovery takes seconds instead of
/// milliseconds (`faults_memcached.rs` measures both).
macro_rules! exchange {
    ($self:ident, $index:expr, $op:expr, $timeout:expr, |$client:ident| $call:expr) => {{
        let index = $index;
        let timeout = $timeout;
        let (lease, mut $client) = $self
            .shared
            .pools
            .checkout(index, false)
            .await
            .map_err(|f| $self.failure(f, $op, index))?;
        let outcome = tokio::time::timeout(timeout, $call).await;
        lease.settle($client, &outcome);
        outcome
            .map_err(|_| $self.failure($crate::pool::Failure::CommandTimeout(timeout), $op, index))
    }};
}
// The lock store runs its exchanges through the same pools, timeouts and error mapping.
pub(crate) use exchange;

impl MemcachedBackend {
    /// A builder for servers, pool, timeouts and namespace.
    pub fn builder() -> MemcachedBackendBuilder {
        MemcachedBackendBuilder::default()
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, prefix: String) -> Self {
        Self {
            shared,
            prefix: Arc::from(prefix),
        }
    }

    /// Another namespace over the same servers and pools: its keys are prefixed with `prefix`
    /// instead of this backend's prefix.
    #[must_use]
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Self::from_parts(self.shared.clone(), prefix.into())
    }

    /// The prefix of this namespace.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The servers, as `host:port`, in the order configured.
    #[must_use]
    pub fn servers(&self) -> &[Arc<str>] {
        self.shared.ring.servers()
    }

    /// The bus that `Connected` / `Disconnected` events go to.
    #[must_use]
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// The key memcached stores for `key` in this namespace: see [`wire_key`](crate::wire_key).
    #[must_use]
    pub fn wire_key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        wire_key_with_prefix(&self.prefix, key)
    }

    /// The server (`host:port`) that holds `key` in this namespace.
    #[must_use]
    pub fn server_for(&self, key: &str) -> &str {
        &self.shared.ring.servers()[self.index_of(&self.wire_key(key))]
    }

    pub(crate) fn index_of(&self, wire_key: &str) -> usize {
        // The builder refuses an empty server list, so the ring always answers.
        self.shared.ring.server_index(wire_key).unwrap_or(0)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.shared.pools.config.command_timeout
    }

    /// The command timeout for a batch of `n` items: one timeout per round trip.
    fn batch_timeout(&self, n: usize) -> Duration {
        let trips = u32::try_from(n.div_ceil(BATCH_CHUNK).max(1)).unwrap_or(u32::MAX);
        self.timeout().saturating_mul(trips)
    }

    pub(crate) fn check_key(&self, key: &str, op: Operation) -> Result<()> {
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
    /// would break the limit callers size their buffers and decoders by. The server's item
    /// limit bounds what the client read to get here.
    fn check_read(&self, value: Option<&[u8]>, op: Operation) -> Result<()> {
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

    /// The `exptime` for `ttl`, or `None` when the write must delete the key instead.
    fn exptime_for(&self, ttl: Option<Duration>) -> Option<i64> {
        match ttl.or(self.shared.default_ttl) {
            None => Some(0),
            Some(t) if t.is_zero() => None,
            Some(t) => Some(exptime(t, now_unix())),
        }
    }

    pub(crate) fn failure(&self, failure: Failure, op: Operation, index: usize) -> Error {
        let kind = match failure {
            Failure::CommandTimeout(_) | Failure::PoolExhausted(_) => ErrorKind::Timeout,
            Failure::Down { .. } | Failure::Connect(_) => ErrorKind::Connection,
        };
        Error::new(kind, self.shared.name.to_string())
            .with_operation(op)
            .with_message(format!(
                "server {}: {failure}",
                self.shared.ring.servers()[index]
            ))
    }

    pub(crate) fn driver_error(
        &self,
        e: async_memcached::Error,
        op: Operation,
        index: usize,
    ) -> Error {
        use async_memcached::{Error as E, ErrorKind as K};
        let kind = match &e {
            E::Connect(_) | E::Io(_) | E::ConnectionClosed => ErrorKind::Connection,
            E::Protocol(Status::Error(K::Server(m))) if m.contains("too large") => {
                ErrorKind::ValueTooLarge
            }
            _ => ErrorKind::Backend,
        };
        Error::new(kind, self.shared.name.to_string())
            .with_operation(op)
            .with_message(format!("server {}: {e}", self.shared.ring.servers()[index]))
            .with_source(e)
    }

    /// Wire keys grouped by server: for each server, its index and the positions (into `keys`)
    /// of the keys it holds.
    fn group(&self, wire_keys: &[Cow<'_, str>]) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (pos, k) in wire_keys.iter().enumerate() {
            let server = self.index_of(k);
            match groups.iter_mut().find(|(s, _)| *s == server) {
                Some((_, positions)) => positions.push(pos),
                None => groups.push((server, vec![pos])),
            }
        }
        groups
    }

    async fn delete_one(&self, key: &str, op: Operation) -> Result<bool> {
        let wk = self.wire_key(key);
        let index = self.index_of(&wk);
        match exchange!(self, index, op, self.timeout(), |client| client
            .delete(wk.as_bytes()))?
        {
            Ok(()) => Ok(true),
            Err(async_memcached::Error::Protocol(Status::NotFound)) => Ok(false),
            Err(e) => Err(self.driver_error(e, op, index)),
        }
    }

    /// Deletes distinct wire keys, sequentially on one connection per server and concurrently
    /// across servers, returning how many existed.
    async fn delete_wire_keys(&self, wire_keys: &[Cow<'_, str>], op: Operation) -> Result<u64> {
        let groups = self.group(wire_keys);
        let per_server = groups.iter().map(|(index, positions)| async move {
            let index = *index;
            let deleted = exchange!(
                self,
                index,
                op,
                self.timeout()
                    .saturating_mul(u32::try_from(positions.len()).unwrap_or(u32::MAX)),
                |client| async {
                    let mut deleted = 0u64;
                    for &pos in positions {
                        match client.delete(wire_keys[pos].as_bytes()).await {
                            Ok(()) => deleted += 1,
                            Err(async_memcached::Error::Protocol(Status::NotFound)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(deleted)
                }
            )?;
            deleted.map_err(|e| self.driver_error(e, op, index))
        });
        Ok(try_join_all(per_server).await?.into_iter().sum())
    }

    /// `get`, as an inherent (unboxed) future shared by `get` and `get_entry`.
    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        self.check_key(key, Operation::Get)?;
        let wk = self.wire_key(key);
        let index = self.index_of(&wk);
        match exchange!(self, index, Operation::Get, self.timeout(), |client| client
            .get(wk.as_bytes()))?
        {
            Ok(value) => {
                let data = value.and_then(|v| v.data);
                self.check_read(data.as_deref(), Operation::Get)?;
                Ok(data.map(Bytes::from))
            }
            Err(e) => Err(self.driver_error(e, Operation::Get, index)),
        }
    }

    /// `set`, as an inherent (unboxed) future shared by `set` and `set_entry`.
    async fn write(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.len(), Operation::Set)?;
        let Some(exptime) = self.exptime_for(ttl) else {
            return self.delete_one(key, Operation::Set).await.map(drop);
        };
        let wk = self.wire_key(key);
        let index = self.index_of(&wk);
        exchange!(self, index, Operation::Set, self.timeout(), |client| client
            .set(wk.as_bytes(), &value[..], Some(exptime), None))?
        .map_err(|e| self.driver_error(e, Operation::Set, index))
    }

    /// One server's `stats` reply, within the command timeout.
    async fn server_stats(&self, index: usize) -> Result<Reply> {
        let reply = exchange!(self, index, Operation::Stats, self.timeout(), |client| {
            client.stats()
        })?
        .map_err(|e| self.driver_error(e, Operation::Stats, index))?;
        Ok(reply.into_iter().collect())
    }

    async fn probe(&self, index: usize) -> std::result::Result<String, String> {
        let (lease, mut client) = self
            .shared
            .pools
            .checkout(index, true)
            .await
            .map_err(|f| f.to_string())?;
        let outcome = tokio::time::timeout(self.timeout(), client.version()).await;
        let answer = match &outcome {
            Ok(Ok(version)) => Ok(version.trim().to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(Failure::CommandTimeout(self.timeout()).to_string()),
        };
        lease.settle(client, &outcome);
        answer
    }
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.native_ttl = true;
        caps.native_batch = true;
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

    async fn delete(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Delete)?;
        self.delete_one(key, Operation::Delete).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.check_key(key, Operation::Set)?;
        self.check_value(value.len(), Operation::Set)?;
        let Some(exptime) = self.exptime_for(ttl) else {
            // A zero TTL writes an entry that is gone at once: "written" exactly when nothing
            // live was there.
            return self.exists(key).await.map(|found| !found);
        };
        let wk = self.wire_key(key);
        let index = self.index_of(&wk);
        // `add` stores only when the server holds no live item under the key, atomically.
        match exchange!(self, index, Operation::Set, self.timeout(), |client| client
            .add(wk.as_bytes(), &value[..], Some(exptime), None))?
        {
            Ok(()) => Ok(true),
            Err(async_memcached::Error::Protocol(Status::NotStored | Status::Exists)) => Ok(false),
            Err(e) => Err(self.driver_error(e, Operation::Set, index)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.check_key(key, Operation::Exists)?;
        let wk = self.wire_key(key);
        let index = self.index_of(&wk);
        // `mg <key> s` answers with the size only: no value crosses the wire.
        match exchange!(self, index, Operation::Exists, self.timeout(), |client| {
            client.meta_get(wk.as_bytes(), false, None, Some(&["s"]))
        })? {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(self.driver_error(e, Operation::Exists, index)),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let op = Operation::GetMany;
        for k in keys {
            self.check_key(k, op)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wire_keys: Vec<Cow<'_, str>> = keys.iter().map(|k| self.wire_key(k)).collect();
        let groups = self.group(&wire_keys);
        let per_server = groups.iter().map(|(index, positions)| {
            let wire_keys = &wire_keys;
            async move {
                let index = *index;
                // One multi-get per server (per chunk of keys), duplicates asked once.
                let mut seen = HashSet::with_capacity(positions.len());
                let distinct: Vec<&str> = positions
                    .iter()
                    .map(|&p| wire_keys[p].as_ref())
                    .filter(|k| seen.insert(*k))
                    .collect();
                let values = exchange!(
                    self,
                    index,
                    op,
                    self.batch_timeout(distinct.len()),
                    |client| async {
                        let mut found = Vec::new();
                        for chunk in distinct.chunks(BATCH_CHUNK) {
                            match client.get_multi(chunk).await {
                                Ok(values) => found.extend(values),
                                // async-memcached reports "no key found" as NotFound.
                                Err(async_memcached::Error::Protocol(Status::NotFound)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok(found)
                    }
                )?;
                values.map_err(|e| self.driver_error(e, op, index))
            }
        });
        let mut found: HashMap<Vec<u8>, Bytes> = HashMap::with_capacity(keys.len());
        for values in try_join_all(per_server).await? {
            for v in values {
                if let Some(data) = v.data {
                    self.check_read(Some(&data), op)?;
                    found.insert(v.key, Bytes::from(data));
                }
            }
        }
        Ok(wire_keys
            .iter()
            .map(|k| found.get(k.as_bytes()).cloned())
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let op = Operation::SetMany;
        // Check everything first, so an invalid item means nothing is written.
        for (k, v) in items {
            self.check_key(k, op)?;
            self.check_value(v.len(), op)?;
        }
        if items.is_empty() {
            return Ok(());
        }
        let wire_keys: Vec<Cow<'_, str>> = items.iter().map(|(k, _)| self.wire_key(k)).collect();
        let Some(exptime) = self.exptime_for(ttl) else {
            let mut seen = HashSet::with_capacity(wire_keys.len());
            let distinct: Vec<Cow<'_, str>> = wire_keys
                .iter()
                .filter(|k| seen.insert(&***k))
                .cloned()
                .collect();
            return self.delete_wire_keys(&distinct, op).await.map(drop);
        };
        let groups = self.group(&wire_keys);
        let per_server = groups.iter().map(|(index, positions)| {
            let wire_keys = &wire_keys;
            async move {
                let index = *index;
                // In item order, so the last of duplicated keys wins.
                let batch: Vec<(&str, &[u8])> = positions
                    .iter()
                    .map(|&p| (wire_keys[p].as_ref(), &items[p].1[..]))
                    .collect();
                let stored = exchange!(
                    self,
                    index,
                    op,
                    self.batch_timeout(batch.len()),
                    |client| async {
                        for chunk in batch.chunks(BATCH_CHUNK) {
                            // Pipelined: every `set` of the chunk is written, then the replies
                            // are read.
                            let replies = client.set_multi(chunk, Some(exptime), None).await?;
                            if let Some(e) = replies.into_values().find_map(|r| r.err()) {
                                return Err(e);
                            }
                        }
                        Ok(())
                    }
                )?;
                stored.map_err(|e| self.driver_error(e, op, index))
            }
        });
        try_join_all(per_server).await.map(drop)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let op = Operation::DeleteMany;
        for k in keys {
            self.check_key(k, op)?;
        }
        // A duplicate finds nothing the second time, so asking once gives the same count.
        let mut seen = HashSet::with_capacity(keys.len());
        let distinct: Vec<Cow<'_, str>> = keys
            .iter()
            .filter(|k| seen.insert(**k))
            .map(|k| self.wire_key(k))
            .collect();
        if distinct.is_empty() {
            return Ok(0);
        }
        self.delete_wire_keys(&distinct, op).await
    }

    async fn delete_pattern(&self, _glob: &str) -> Result<u64> {
        // Memcached cannot list or match keys, so a count would be a guess.
        Err(
            Error::unsupported(self.shared.name.to_string(), Operation::DeletePattern)
                .with_message(
                    "memcached cannot list or match keys, so it cannot delete by pattern",
                ),
        )
    }

    async fn clear(&self) -> Result<()> {
        // `flush_all` would empty the whole server, every namespace and tenant with it.
        Err(
            Error::unsupported(self.shared.name.to_string(), Operation::Clear).with_message(
                "memcached cannot list a namespace's keys, and flush_all would remove every \
                 namespace's keys",
            ),
        )
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        let started = Instant::now();
        let servers = self.shared.ring.servers();
        let probes = futures::future::join_all((0..servers.len()).map(|index| async move {
            match tokio::time::timeout(timeout, self.probe(index)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            }
        }))
        .await;
        let latency = started.elapsed();
        let name = self.shared.name.to_string();
        let up = probes.iter().filter(|p| p.is_ok()).count();
        let down: Vec<&str> = servers
            .iter()
            .zip(&probes)
            .filter(|(_, p)| p.is_err())
            .map(|(s, _)| &**s)
            .collect();
        let mut result = if down.is_empty() {
            HealthCheckResult::healthy(name, latency)
        } else if up == 0 {
            HealthCheckResult::unhealthy(
                name,
                latency,
                format!("no memcached server is reachable ({})", down.join(", ")),
            )
        } else {
            HealthCheckResult::degraded(
                name,
                latency,
                format!(
                    "{} of {} memcached servers unreachable: {}",
                    down.len(),
                    servers.len(),
                    down.join(", ")
                ),
            )
        };
        for (server, probe) in servers.iter().zip(probes) {
            let detail = match probe {
                Ok(version) => format!("up, version {version}"),
                Err(e) => format!("down: {e}"),
            };
            result = result.with_detail(format!("server.{server}"), detail);
        }
        result
            .with_detail("servers", servers.len().to_string())
            .with_detail("servers_up", up.to_string())
            .with_detail("prefix", self.prefix.to_string())
    }

    /// `stats` on every server, in parallel, each within the command timeout.
    ///
    /// - `entries` (scope `"server"`): `curr_items` of every server, every namespace's and
    ///   application's items included;
    /// - `memory_bytes`, `hits`, `misses`, `evictions`: `bytes`, `get_hits`, `get_misses` and
    ///   `evictions`, summed;
    /// - per server: version, uptime, `curr_connections`, `curr_items` and `bytes`;
    /// - `extra`: `limit_maxbytes` (summed), and `unreachable` naming the servers that failed.
    ///
    /// When some servers fail, the others' figures are returned (the failed ones listed without
    /// figures); when every server fails, the first error:
    /// [`ErrorKind::Connection`] (refused, or marked down) or [`ErrorKind::Timeout`].
    async fn stats(&self) -> Result<BackendStats> {
        let servers = self.shared.ring.servers();
        let replies =
            futures::future::join_all((0..servers.len()).map(|i| self.server_stats(i))).await;
        if !replies.iter().any(Result::is_ok) {
            if let Some(e) = replies.into_iter().find_map(Result::err) {
                return Err(e);
            }
            // No servers at all (the builder refuses that): nothing to report.
            return Ok(summarize(Vec::new()));
        }
        let replies = servers.iter().map(|s| s.to_string()).zip(replies).collect();
        Ok(summarize(replies))
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        Ok(self.read(key).await?.map(CacheValue::from_bytes))
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.write(key, value.into_bytes(), ttl).await
    }

    /// A [`MemcachedLockStore`] over this backend's servers, pools and namespace.
    fn lock_store(&self) -> Option<SharedLockStore> {
        Some(Arc::new(MemcachedLockStore::new(self)))
    }
}
