//! [`BackendStats`] from Redis `INFO` replies: one reply per server, summed.

use std::collections::HashMap;
use std::time::Duration;

use lexicache_core::{BackendStats, Error, ServerStats};

/// The fields of one `INFO` reply that stats read, by name.
#[derive(Debug, Default)]
pub(crate) struct Info<'a> {
    fields: HashMap<&'a str, &'a str>,
    /// Whether the reply had a `# Keyspace` section (absent `dbN` lines then mean no keys).
    has_keyspace: bool,
}

impl<'a> Info<'a> {
    /// Parses `name:value` lines; `# Section` headers and blank lines are skipped.
    pub(crate) fn parse(reply: &'a str) -> Self {
        let mut info = Self::default();
        for line in reply.lines().map(str::trim) {
            if let Some(section) = line.strip_prefix('#') {
                info.has_keyspace |= section.trim().eq_ignore_ascii_case("keyspace");
            } else if let Some((name, value)) = line.split_once(':') {
                info.fields.insert(name, value);
            }
        }
        info
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.get(name).copied()
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// Keys in database `db`: the `keys=` of its `dbN:keys=..,expires=..` line, or 0 when the
    /// keyspace section lists no such line (an empty database is not listed).
    fn keys(&self, db: u8) -> Option<u64> {
        match self.get(&format!("db{db}")) {
            Some(line) => line
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))
                .and_then(|n| n.parse().ok()),
            None => self.has_keyspace.then_some(0),
        }
    }

    /// This server's entry of [`BackendStats::servers`].
    pub(crate) fn server(&self, address: String, db: u8) -> ServerStats {
        ServerStats {
            address,
            version: self.get("redis_version").map(str::to_owned),
            uptime: self.number("uptime_in_seconds").map(Duration::from_secs),
            connections: self.number("connected_clients"),
            entries: self.keys(db),
            memory_bytes: self.number("used_memory"),
        }
    }
}

/// Adds `value` to a total that stays `None` until some server reports a figure.
fn add(total: &mut Option<u64>, value: Option<u64>) {
    if let Some(v) = value {
        *total = Some(total.unwrap_or(0).saturating_add(v));
    }
}

/// Sums the replies of every server (in order) into one [`BackendStats`].
///
/// A server that failed is listed with its address only, and named with its error in the
/// `unreachable` extra; the totals cover the servers that answered. `replies` holds at least
/// one answer.
pub(crate) fn summarize(
    mode: &str,
    db: u8,
    replies: Vec<(String, Result<String, Error>)>,
) -> BackendStats {
    let mut stats = BackendStats {
        entries_scope: Some("server"),
        ..BackendStats::default()
    };
    let mut expired = None;
    for (address, reply) in replies {
        match reply {
            Ok(text) => {
                let info = Info::parse(&text);
                let server = info.server(address, db);
                add(&mut stats.entries, server.entries);
                add(&mut stats.memory_bytes, server.memory_bytes);
                add(&mut stats.hits, info.number("keyspace_hits"));
                add(&mut stats.misses, info.number("keyspace_misses"));
                add(&mut stats.evictions, info.number("evicted_keys"));
                add(&mut expired, info.number("expired_keys"));
                stats.servers.push(server);
            }
            Err(e) => {
                let reason = format!("{address}: {}", e.message());
                stats.push_unreachable(address, &reason);
            }
        }
    }
    stats.extra.insert("mode".into(), mode.to_owned());
    if let Some(expired) = expired {
        stats
            .extra
            .insert("expired_keys".into(), expired.to_string());
    }
    stats
}

#[cfg(test)]
mod tests {
    use lexicache_core::{ErrorKind, Operation};

    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:480\r\n\r\n\
        # Clients\r\nconnected_clients:3\r\n\r\n# Memory\r\nused_memory:1048576\r\n\r\n\
        # Stats\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\nevicted_keys:2\r\n\
        expired_keys:5\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=4,avg_ttl=0\r\n\
        db2:keys=7,expires=0,avg_ttl=0\r\n";

    #[test]
    fn an_info_reply_maps_to_a_server_entry_for_the_configured_database() {
        let info = Info::parse(INFO);
        let server = info.server("127.0.0.1:6390".into(), 2);
        assert_eq!(
            server,
            ServerStats {
                address: "127.0.0.1:6390".into(),
                version: Some("7.0.15".into()),
                uptime: Some(Duration::from_secs(480)),
                connections: Some(3),
                entries: Some(7),
                memory_bytes: Some(1_048_576),
            }
        );
        assert_eq!(info.server(String::new(), 0).entries, Some(12));
        assert_eq!(
            info.server(String::new(), 5).entries,
            Some(0),
            "an unlisted database is empty"
        );
        assert_eq!(
            Info::parse("# Server\r\nredis_version:7\r\n")
                .server(String::new(), 0)
                .entries,
            None,
            "without a keyspace section the count is unknown"
        );
    }

    #[test]
    fn replies_are_summed_and_a_failed_server_is_named_not_counted() {
        let err = Error::new(ErrorKind::Connection, "redis")
            .with_operation(Operation::Stats)
            .with_message("connection refused");
        let stats = summarize(
            "cluster",
            0,
            vec![
                ("a:1".into(), Ok(INFO.to_owned())),
                ("b:2".into(), Err(err)),
                ("c:3".into(), Ok(INFO.to_owned())),
            ],
        );
        assert_eq!(stats.entries, Some(24));
        assert_eq!(stats.entries_scope, Some("server"));
        assert_eq!(stats.memory_bytes, Some(2 * 1_048_576));
        assert_eq!((stats.hits, stats.misses), (Some(180), Some(20)));
        assert_eq!(stats.evictions, Some(4));
        assert_eq!(stats.hit_rate(), Some(0.9));
        let addresses: Vec<&str> = stats.servers.iter().map(|s| &*s.address).collect();
        assert_eq!(addresses, ["a:1", "b:2", "c:3"]);
        assert_eq!(stats.servers[1].version, None);
        assert_eq!(stats.extra["mode"], "cluster");
        assert_eq!(stats.extra["expired_keys"], "10");
        assert_eq!(stats.extra["unreachable"], "b:2: connection refused");
    }
}
