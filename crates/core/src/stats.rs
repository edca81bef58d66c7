//! [`BackendStats`]: what a store reports about itself, for operators.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What a backend's store reports about itself: [`CacheBackend::stats`](crate::CacheBackend::stats).
///
/// Every figure is optional: a store reports what it knows. Totals cover the whole store a
/// backend talks to (a Redis server's keyspace, every memcached server), which may be more
/// than this backend's namespace; [`entries_scope`](Self::entries_scope) says which.
///
/// ```
/// use lexicache_core::{BackendStats, ServerStats};
///
/// let stats = BackendStats {
///     entries: Some(3),
///     hits: Some(9),
///     misses: Some(1),
///     servers: vec![ServerStats { address: "127.0.0.1:6390".into(), ..ServerStats::default() }],
///     ..BackendStats::default()
/// };
/// assert_eq!(stats.hit_rate(), Some(0.9));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackendStats {
    /// Live entries.
    pub entries: Option<u64>,
    /// What [`entries`](Self::entries) counts: `"namespace"` (this backend's keys only) or
    /// `"server"` (everything on the servers).
    pub entries_scope: Option<&'static str>,
    /// Bytes of memory the store uses (or, in process, the weighted size of the entries).
    pub memory_bytes: Option<u64>,
    /// Reads that found their key, since the store started.
    pub hits: Option<u64>,
    /// Reads that did not, since the store started.
    pub misses: Option<u64>,
    /// Entries evicted for room (not expired).
    pub evictions: Option<u64>,
    /// Per server, in configuration order; empty in process.
    pub servers: Vec<ServerStats>,
    /// Anything else worth showing, by name (a tiered backend's invalidation counters).
    pub extra: BTreeMap<String, String>,
}

impl BackendStats {
    /// `hits / (hits + misses)`, when both are known and not both zero.
    #[must_use]
    pub fn hit_rate(&self) -> Option<f64> {
        let (hits, misses) = (self.hits?, self.misses?);
        let total = hits.checked_add(misses)?;
        #[allow(clippy::cast_precision_loss)] // a ratio: precision loss is irrelevant
        (total > 0).then(|| hits as f64 / total as f64)
    }

    /// Lists a server that did not answer: its row, without figures, in
    /// [`servers`](Self::servers), and `reason` in `extra["unreachable"]` (`; `-separated), so
    /// the totals plainly cover only the servers that answered.
    pub fn push_unreachable(&mut self, address: String, reason: &str) {
        self.servers.push(ServerStats {
            address,
            ..ServerStats::default()
        });
        let list = self.extra.entry("unreachable".to_owned()).or_default();
        if !list.is_empty() {
            list.push_str("; ");
        }
        list.push_str(reason);
    }
}

/// One server of a remote backend, as [`BackendStats::servers`] lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerStats {
    /// `host:port`.
    pub address: String,
    /// The server's version string.
    pub version: Option<String>,
    /// How long the server has run.
    #[serde(with = "secs_opt")]
    pub uptime: Option<Duration>,
    /// Client connections open on the server.
    pub connections: Option<u64>,
    /// Entries on this server.
    pub entries: Option<u64>,
    /// Bytes of memory this server uses.
    pub memory_bytes: Option<u64>,
}

mod secs_opt {
    use std::time::Duration;

    use serde::Serializer;

    #[allow(clippy::ref_option)] // serde's `with` hands the field by reference
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
}
