//! Helpers shared by the memcached integration tests: the servers from the environment, unique
//! namespaces, a raw text-protocol connection, free ports and memcached processes of our own.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lexicache_core::{CacheBackend, HealthStatus};
use lexicache_memcached::MemcachedBackend;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const ENV: &str = "LEXICACHE_TEST_MEMCACHED";

fn how_to_start() -> String {
    format!(
        "run `cargo xtask services up`, then export {ENV}=127.0.0.1:11290,127.0.0.1:11291 \
         (or run the whole suite with `cargo xtask test`)"
    )
}

/// The shared test servers from `LEXICACHE_TEST_MEMCACHED`; panics with how to start them.
pub fn servers() -> Vec<String> {
    let raw = std::env::var(ENV).unwrap_or_else(|_| panic!("{ENV} is not set: {}", how_to_start()));
    let servers: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(
        !servers.is_empty(),
        "{ENV} lists no server: {}",
        how_to_start()
    );
    for s in &servers {
        assert!(
            s.starts_with("127.0.0.1:"),
            "{ENV} must list loopback servers only (127.0.0.1:port), got {s}"
        );
    }
    servers
}

/// The two shared servers; panics if fewer are configured.
pub fn two_servers() -> [String; 2] {
    let s = servers();
    assert!(
        s.len() >= 2,
        "these tests need two memcached servers in {ENV}: {}",
        how_to_start()
    );
    [s[0].clone(), s[1].clone()]
}

/// A namespace no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "lexicache-test:mc:{test}:{nanos}:{}:",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A backend over the shared servers, checked to be healthy (panics with how to start them).
pub async fn connect(prefix: &str) -> MemcachedBackend {
    let backend = MemcachedBackend::builder()
        .servers(servers())
        .prefix(prefix)
        .connect()
        .await
        .expect("a valid configuration");
    assert_reachable(&backend).await;
    backend
}

/// Panics with how to start the servers unless every server answers.
pub async fn assert_reachable(backend: &MemcachedBackend) {
    let health = backend.health_check(Duration::from_secs(5)).await;
    assert_eq!(
        health.status,
        HealthStatus::Healthy,
        "the memcached test servers are not reachable ({:?}): {}",
        health.reason,
        how_to_start()
    );
}

/// A port on 127.0.0.1 with nothing listening (it was free a moment ago).
pub fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A raw text-protocol connection, to look at what the servers really hold.
pub struct Raw {
    stream: BufReader<TcpStream>,
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("raw connect to {addr}: {e}: {}", how_to_start()));
        Raw {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .get_mut()
            .write_all(bytes)
            .await
            .expect("raw write");
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("raw read");
        assert!(line.ends_with("\r\n"), "incomplete line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// `set` with a key that must already be safe.
    pub async fn set(&mut self, key: &str, value: &[u8], exptime: i64) {
        let mut cmd = format!("set {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
        cmd.extend_from_slice(value);
        cmd.extend_from_slice(b"\r\n");
        self.send(&cmd).await;
        assert_eq!(self.line().await, "STORED");
    }

    /// `get` of one safe key.
    pub async fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes()).await;
        let header = self.line().await;
        if header == "END" {
            return None;
        }
        let len: usize = header
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply {header:?}"));
        let mut data = vec![0; len + 2];
        self.stream.read_exact(&mut data).await.expect("raw value");
        data.truncate(len);
        assert_eq!(self.line().await, "END");
        Some(data)
    }

    /// The remaining TTL the server holds for a safe key: `Some(-1)` for none, `None` for a miss.
    pub async fn ttl(&mut self, key: &str) -> Option<i64> {
        self.send(format!("mg {key} t\r\n").as_bytes()).await;
        let reply = self.line().await;
        if reply == "EN" {
            return None;
        }
        let t = reply
            .strip_prefix("HD t")
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
        Some(t.parse().expect("a number"))
    }

    pub async fn delete(&mut self, key: &str) {
        self.send(format!("delete {key}\r\n").as_bytes()).await;
        let reply = self.line().await;
        assert!(reply == "DELETED" || reply == "NOT_FOUND", "{reply}");
    }
}

/// A memcached process of our own on 127.0.0.1, stopped (by its own handle) when dropped.
pub struct OwnMemcached {
    child: Child,
    pub addr: String,
}

impl OwnMemcached {
    /// Starts `memcached` on `port` with extra arguments, and waits until it accepts
    /// connections.
    pub async fn start(port: u16, extra: &[&str]) -> OwnMemcached {
        let bin = ["/usr/bin/memcached", "/usr/local/bin/memcached"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "this test starts its own memcached, but no memcached binary was found in \
                     /usr/bin or /usr/local/bin: install it (apt-get install memcached), or \
                     run `cargo xtask services up`, which installs it"
                )
            });
        let port_arg = port.to_string();
        let mut cmd = Command::new(bin);
        cmd.args(["-l", "127.0.0.1", "-p", &port_arg, "-U", "0", "-m", "16"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            // memcached refuses to run as root unless told which user to be.
            cmd.args(["-u", "root"]);
        }
        let child = cmd.spawn().expect("start memcached");
        let addr = format!("127.0.0.1:{port}");
        let mut me = OwnMemcached { child, addr };
        for _ in 0..200 {
            if TcpStream::connect(&me.addr).await.is_ok() {
                return me;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("memcached on port {port} exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("memcached on port {port} did not accept connections within 2 s");
    }
}

impl Drop for OwnMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
