//! Private server processes for tests that kill, freeze or restart a server, without touching
//! the shared servers other tests use.
//!
//! [`RedisProcess`] and [`MemcachedProcess`] each run one server on a free loopback port, with
//! its data (if any) in a directory of its own. Dropping the handle kills the server and
//! removes the directory.
//!
//! ```no_run
//! use lexicache_testkit::process::RedisProcess;
//!
//! let mut redis = RedisProcess::start();
//! assert!(redis.url().starts_with("redis://127.0.0.1:"));
//! redis.kill(); // the server is gone
//! redis.restart(); // back on the same port, empty
//! redis.stop(); // frozen (SIGSTOP): connections stay open, nothing answers
//! redis.cont(); // answering again
//! ```
//!
//! Starting waits (at most [`START_TIMEOUT`]) until the server answers, and panics with
//! directions when the binary is missing or the server does not come up. These functions
//! block the calling thread for that long; in an async test that is a short, bounded stall.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long starting a server may take before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How many free ports are tried when another process grabs the one picked.
const PORT_ATTEMPTS: usize = 5;

/// A `redis-server` of the test's own, on `127.0.0.1` and a free port, persisting nothing.
#[derive(Debug)]
pub struct RedisProcess {
    server: Server,
}

impl RedisProcess {
    /// Starts `redis-server` on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not on `PATH` or does not answer within [`START_TIMEOUT`].
    #[must_use]
    pub fn start() -> Self {
        Self {
            server: Server::start(Kind::Redis),
        }
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.server.port)
    }

    /// The port it listens on (kept across [`restart`](Self::restart)).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The process id, or `None` after [`kill`](Self::kill).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Kills the server (SIGKILL) and waits until it has exited.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Kills the server if it runs, starts it again on the same port (empty: nothing is
    /// persisted), and waits until it answers.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    ///
    /// # Panics
    ///
    /// When the server is not running or the signal cannot be sent.
    pub fn stop(&self) {
        self.server.signal("STOP");
    }

    /// Resumes a server frozen by [`stop`](Self::stop) (SIGCONT).
    ///
    /// # Panics
    ///
    /// As [`stop`](Self::stop).
    pub fn cont(&self) {
        self.server.signal("CONT");
    }
}

/// A `memcached` of the test's own, on `127.0.0.1` and a free TCP port (UDP off).
#[derive(Debug)]
pub struct MemcachedProcess {
    server: Server,
}

impl MemcachedProcess {
    /// Starts `memcached` on a free port and waits until it answers `version`.
    ///
    /// # Panics
    ///
    /// When `memcached` is not on `PATH` or does not answer within [`START_TIMEOUT`].
    #[must_use]
    pub fn start() -> Self {
        Self {
            server: Server::start(Kind::Memcached),
        }
    }

    /// `127.0.0.1:<port>`.
    #[must_use]
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// The port it listens on (kept across [`restart`](Self::restart)).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The process id, or `None` after [`kill`](Self::kill).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Kills the server (SIGKILL) and waits until it has exited.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Kills the server if it runs and starts it again, empty, on the same port.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// Freezes the server (SIGSTOP).
    ///
    /// # Panics
    ///
    /// When the server is not running or the signal cannot be sent.
    pub fn stop(&self) {
        self.server.signal("STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    ///
    /// # Panics
    ///
    /// As [`stop`](Self::stop).
    pub fn cont(&self) {
        self.server.signal("CONT");
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Redis,
    Memcached,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Kind::Redis => "redis-server",
            Kind::Memcached => "memcached",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Kind::Redis => "redis-server",
            Kind::Memcached => "memcached",
        }
    }

    fn command(self, port: u16, dir: &Path) -> Command {
        let mut cmd = Command::new(self.binary());
        let port = port.to_string();
        match self {
            Kind::Redis => {
                cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--dir"])
                    .arg(dir);
            }
            Kind::Memcached => {
                cmd.args(["-l", "127.0.0.1", "-p", &port, "-U", "0"]);
                // memcached refuses to run as root unless told whom to run as.
                if is_root() {
                    cmd.args(["-u", "root"]);
                }
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// The request and the start of the reply that prove the server serves.
    fn probe(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Redis => (b"PING\r\n", b"+PONG"),
            Kind::Memcached => (b"version\r\n", b"VERSION"),
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// One running server process and its directory.
#[derive(Debug)]
struct Server {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(kind: Kind) -> Self {
        let dir = private_dir(kind);
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut server = Self {
                kind,
                port,
                dir: dir.clone(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                // Another process took the port between picking and binding: try another.
                Err(e) => last = e,
            }
        }
        panic!("could not start a private {} ({last})", kind.binary());
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process on `self.port` and waits until it answers.
    fn spawn(&mut self) -> Result<(), String> {
        let binary = self.kind.binary();
        let mut child = match self.kind.command(self.port, &self.dir).spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{binary}` is not on PATH: install it (apt-get install {}) or run \
                 `cargo xtask services up`, which installs it",
                self.kind.package()
            ),
            Err(e) => panic!("cannot run `{binary}`: {e}"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{binary} exited at start with {status}"));
            }
            if self.answers() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{binary} did not answer on port {} within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let (request, reply) = self.kind.probe();
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(request).is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        let mut read = 0;
        while read < reply.len() {
            match stream.read(&mut buf[read..]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => read += n,
            }
        }
        buf.starts_with(reply)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process still dies of SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // The old socket may linger for a moment; the same port is the point of a restart.
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "could not restart {} on port {}: {e}",
                        self.kind.binary(),
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.kind.binary()));
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run `kill -{signal} {pid}`: {e}"));
        assert!(status.success(), "`kill -{signal} {pid}` failed: {status}");
        // A signal is delivered asynchronously: a server can still answer a request for a
        // moment after `kill -STOP` returns. Wait until every thread shows the new state.
        let stopped = signal == "STOP";
        if stopped || signal == "CONT" {
            let deadline = Instant::now() + Duration::from_secs(5);
            while all_threads_stopped(pid) != Some(stopped) {
                assert!(
                    Instant::now() < deadline,
                    "{} (pid {pid}) did not {} within 5 s",
                    self.kind.binary(),
                    if stopped { "stop" } else { "resume" }
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Some(true)` when every thread of `pid` is stopped (state `T` in `/proc/PID/task/*/stat`),
/// `Some(false)` when none is; `None` while some are and some are not, or when the process is
/// gone or `/proc` cannot be read.
fn all_threads_stopped(pid: u32) -> Option<bool> {
    let (mut stopped, mut running) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        // `pid (comm) S ...`: the state follows the last `)`, as comm may hold one.
        match stat.rsplit_once(')')?.1.trim_start().chars().next()? {
            'T' => stopped += 1,
            _ => running += 1,
        }
    }
    match (stopped, running) {
        (0, 0) => None,
        (_, 0) => Some(true),
        (0, _) => Some(false),
        _ => None,
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

/// A new, empty directory for one server.
fn private_dir(kind: Kind) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "lexicache-{}-{}-{nanos:x}-{}",
        kind.binary(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Asserts that `backend.stats()` against a dead or frozen server fails as it must: with one
/// of `kinds`, retryable, naming [`Operation::Stats`](lexicache_core::Operation::Stats), and
/// within `limit` (the command timeout plus slack).
///
/// # Panics
///
/// When any of that does not hold.
pub async fn assert_stats_fail_within(
    backend: &dyn lexicache_core::CacheBackend,
    kinds: &[lexicache_core::ErrorKind],
    limit: Duration,
) {
    let started = Instant::now();
    let err = backend
        .stats()
        .await
        .expect_err("stats of a dead or frozen server");
    let took = started.elapsed();
    assert!(kinds.contains(&err.kind()), "{:?}: {err}", err.kind());
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.operation(), Some(lexicache_core::Operation::Stats));
    assert!(took < limit, "stats took {took:?}, over {limit:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_ping(port: u16) -> bool {
        Server {
            kind: Kind::Redis,
            port,
            dir: PathBuf::new(),
            child: None,
        }
        .answers()
    }

    #[test]
    fn redis_starts_on_a_free_port_and_restarts_on_the_same_one() {
        let mut redis = RedisProcess::start();
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert!(redis_ping(port));
        let first = redis.pid().expect("a running server");

        redis.kill();
        assert_eq!(redis.pid(), None);
        assert!(!redis_ping(port), "a killed server does not answer");

        redis.restart();
        assert_eq!(redis.port(), port);
        assert_ne!(redis.pid(), Some(first), "a new process");
        assert!(redis_ping(port));
    }

    #[test]
    fn a_stopped_redis_does_not_answer_until_continued() {
        let redis = RedisProcess::start();
        redis.stop();
        assert!(!redis_ping(redis.port()), "a frozen server answers nothing");
        redis.cont();
        assert!(redis_ping(redis.port()));
    }

    #[test]
    fn dropping_a_redis_kills_it_and_removes_its_directory() {
        let redis = RedisProcess::start();
        let port = redis.port();
        let dir = redis.server.dir.clone();
        assert!(dir.is_dir());
        drop(redis);
        assert!(!dir.exists());
        assert!(!redis_ping(port));
    }

    #[test]
    fn memcached_starts_restarts_and_stops() {
        let mut memcached = MemcachedProcess::start();
        let port = memcached.port();
        assert_eq!(memcached.addr(), format!("127.0.0.1:{port}"));
        assert!(memcached.server.answers());
        memcached.restart();
        assert_eq!(memcached.port(), port);
        assert!(memcached.server.answers());
        memcached.stop();
        assert!(!memcached.server.answers());
        memcached.cont();
        assert!(memcached.server.answers());
        memcached.kill();
        assert!(!memcached.server.answers());
    }
}

/// This process's memory, from `/proc/self/status`: what fault and soak tests watch for growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// The resident set now (`VmRSS`), in bytes.
    pub rss: u64,
    /// The highest resident set so far (`VmHWM`), in bytes.
    pub peak: u64,
}

/// Reads this process's [`Memory`].
///
/// # Panics
///
/// When `/proc/self/status` cannot be read or lacks the fields (not Linux).
#[must_use]
pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("no {name} line in /proc/self/status"))
    };
    Memory {
        rss: field("VmRSS"),
        peak: field("VmHWM"),
    }
}
