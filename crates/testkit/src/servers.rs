//! Where the local test servers are, for tests and benches of every crate.
//!
//! `cargo xtask services up` starts Redis and Memcached on loopback and prints the variables
//! these functions read; `cargo xtask test` exports them. A test that needs a server and finds
//! the variable unset, pointing off loopback, or the server unreachable panics with a message
//! that says how to start it: a backend test never passes silently without its server.
//!
//! ```no_run
//! let url = lexicache_testkit::servers::redis_url();
//! assert!(url.starts_with("redis://127.0.0.1:"));
//! let servers = lexicache_testkit::servers::memcached_servers();
//! assert!(!servers.is_empty());
//! ```

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What to do when a server is missing.
pub const HOW_TO_START: &str = "run `cargo xtask services up` and export the variables it \
     prints (LEXICACHE_TEST_REDIS_URL=redis://127.0.0.1:6390, \
     LEXICACHE_TEST_MEMCACHED=127.0.0.1:11290,127.0.0.1:11291), or run `cargo xtask test`";

/// How long a reachability probe waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The standalone Redis URL from `LEXICACHE_TEST_REDIS_URL`, checked to be a reachable
/// `redis://127.0.0.1:<port>` server.
///
/// # Panics
///
/// When the variable is unset, names another host, or nothing listens there; the message says
/// how to start the server.
#[must_use]
pub fn redis_url() -> String {
    let url = var("LEXICACHE_TEST_REDIS_URL");
    let Some(addr) = url.strip_prefix("redis://127.0.0.1:") else {
        panic!("LEXICACHE_TEST_REDIS_URL: tests only talk to redis://127.0.0.1:<port>, got {url}");
    };
    let port = addr.split('/').next().unwrap_or(addr);
    require_reachable("Redis", &format!("127.0.0.1:{port}"));
    url
}

/// The Memcached servers (`host:port`) from `LEXICACHE_TEST_MEMCACHED`, each checked to be a
/// reachable loopback server.
///
/// # Panics
///
/// As [`redis_url`].
#[must_use]
pub fn memcached_servers() -> Vec<String> {
    let list = var("LEXICACHE_TEST_MEMCACHED");
    let servers: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        !servers.is_empty(),
        "LEXICACHE_TEST_MEMCACHED is empty: {HOW_TO_START}"
    );
    for server in &servers {
        assert!(
            server.starts_with("127.0.0.1:"),
            "LEXICACHE_TEST_MEMCACHED: tests only talk to 127.0.0.1, got {server}"
        );
        require_reachable("Memcached", server);
    }
    servers
}

/// A unique key namespace for one test run: `lexicache-test:{label}:{pid}-{nanos}:`, so tests
/// sharing a server never see each other's keys.
#[must_use]
pub fn unique_namespace(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("lexicache-test:{label}:{}-{nanos}:", std::process::id())
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW_TO_START}"))
}

fn require_reachable(what: &str, addr: &str) {
    let parsed: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("{what} address {addr} does not parse ({e})"));
    if let Err(e) = TcpStream::connect_timeout(&parsed, PROBE_TIMEOUT) {
        panic!("{what} at {addr} is unreachable ({e}): {HOW_TO_START}");
    }
}
