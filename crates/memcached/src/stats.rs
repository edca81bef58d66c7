//! [`BackendStats`] from memcached `stats` replies: one reply per server, summed.

use std::collections::HashMap;
use std::time::Duration;

use lexicache_core::{BackendStats, Error, ServerStats};

/// One server's `stats` reply, by name.
pub(crate) type Reply = HashMap<String, String>;

fn number(reply: &Reply, name: &str) -> Option<u64> {
    reply.get(name)?.trim().parse().ok()
}

/// Adds `value` to a total that stays `None` until some server reports a figure.
fn add(total: &mut Option<u64>, value: Option<u64>) {
    if let Some(v) = value {
        *total = Some(total.unwrap_or(0).saturating_add(v));
    }
}

/// This server's entry of [`BackendStats::servers`].
fn server(address: String, reply: &Reply) -> ServerStats {
    ServerStats {
        address,
        version: reply.get("version").map(|v| v.trim().to_owned()),
        uptime: number(reply, "uptime").map(Duration::from_secs),
        connections: number(reply, "curr_connections"),
        entries: number(reply, "curr_items"),
        memory_bytes: number(reply, "bytes"),
    }
}

/// Sums the replies of every server (in ring order) into one [`BackendStats`].
///
/// A server that failed is listed with its address only, and its error (which names it) goes
/// in the `unreachable` extra; the totals cover the servers that answered.
pub(crate) fn summarize(replies: Vec<(String, Result<Reply, Error>)>) -> BackendStats {
    let mut stats = BackendStats {
        entries_scope: Some("server"),
        ..BackendStats::default()
    };
    let mut capacity = None;
    for (address, reply) in replies {
        match reply {
            Ok(reply) => {
                let entry = server(address, &reply);
                add(&mut stats.entries, entry.entries);
                add(&mut stats.memory_bytes, entry.memory_bytes);
                add(&mut stats.hits, number(&reply, "get_hits"));
                add(&mut stats.misses, number(&reply, "get_misses"));
                add(&mut stats.evictions, number(&reply, "evictions"));
                add(&mut capacity, number(&reply, "limit_maxbytes"));
                stats.servers.push(entry);
            }
            // The message names the server already.
            Err(e) => stats.push_unreachable(address, e.message()),
        }
    }
    if let Some(capacity) = capacity {
        stats
            .extra
            .insert("limit_maxbytes".into(), capacity.to_string());
    }
    stats
}

#[cfg(test)]
mod tests {
    use lexicache_core::{ErrorKind, Operation};

    use super::*;

    fn reply(items: u64) -> Reply {
        [
            ("pid", "7"),
            ("uptime", "3600"),
            ("version", "1.6.21"),
            ("curr_connections", "4"),
            ("bytes", "2048"),
            ("get_hits", "30"),
            ("get_misses", "10"),
            ("evictions", "1"),
            ("limit_maxbytes", "67108864"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("curr_items".to_owned(), items.to_string())])
        .collect()
    }

    #[test]
    fn replies_are_summed_per_server_and_in_total() {
        let stats = summarize(vec![
            ("127.0.0.1:11290".into(), Ok(reply(5))),
            ("127.0.0.1:11291".into(), Ok(reply(7))),
        ]);
        assert_eq!(stats.entries, Some(12));
        assert_eq!(stats.entries_scope, Some("server"));
        assert_eq!(stats.memory_bytes, Some(4096));
        assert_eq!((stats.hits, stats.misses), (Some(60), Some(20)));
        assert_eq!(stats.hit_rate(), Some(0.75));
        assert_eq!(stats.evictions, Some(2));
        assert_eq!(
            stats.servers[1],
            ServerStats {
                address: "127.0.0.1:11291".into(),
                version: Some("1.6.21".into()),
                uptime: Some(Duration::from_secs(3600)),
                connections: Some(4),
                entries: Some(7),
                memory_bytes: Some(2048),
            }
        );
        assert_eq!(stats.extra["limit_maxbytes"], (2 * 67_108_864).to_string());
        assert!(!stats.extra.contains_key("unreachable"));
    }

    #[test]
    fn a_failed_server_is_named_and_left_out_of_the_totals() {
        let err = Error::new(ErrorKind::Connection, "memcached")
            .with_operation(Operation::Stats)
            .with_message("server 127.0.0.1:1: connect failed");
        let stats = summarize(vec![
            ("127.0.0.1:1".into(), Err(err)),
            ("127.0.0.1:11291".into(), Ok(reply(7))),
        ]);
        assert_eq!(stats.entries, Some(7));
        assert_eq!(stats.servers.len(), 2);
        assert_eq!(stats.servers[0].address, "127.0.0.1:1");
        assert_eq!(stats.servers[0].version, None);
        assert_eq!(
            stats.extra["unreachable"],
            "server 127.0.0.1:1: connect failed"
        );
    }
}
