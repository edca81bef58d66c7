//! `cargo xtask services up|down|status`: the Redis and Memcached servers the behaviour suites
//! run against, all on 127.0.0.1 and all under `<target>/services/`.
//!
//! - Redis standalone on 6390;
//! - a Redis cluster of three primaries on 7000, 7001 and 7002;
//! - a Redis Sentinel on 26390 that monitors the standalone server as master `lexicache`;
//! - Memcached on 11290 and 11291.
//!
//! Each server runs in its own process group (so a Ctrl-C in the terminal does not take it down
//! half-way through a step) with its pid in `<target>/services/<name>/server.pid` and its
//! output in `server.log` beside it. `down` stops exactly the processes named by those pid
//! files, after checking that the pid still belongs to the expected program, and removes
//! everything but the logs, cluster state included, so the next `up` starts clean.
//! Nothing is persisted: Redis runs with `save ""` and `appendonly no`. Sentinel rewrites its
//! own config file, so each start writes a fresh one.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{target_dir, Failure, Result};

/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the cluster may take to reach `cluster_state:ok` once its slots are assigned.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect and read deadline of one probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

const CLUSTER_PORTS: [u16; 3] = [7000, 7001, 7002];

/// The port of the standalone server, which the sentinel monitors.
const STANDALONE_PORT: u16 = 6390;
/// The port of the sentinel.
const SENTINEL_PORT: u16 = 26390;
/// The name under which the sentinel knows the standalone server.
const SENTINEL_MASTER: &str = "lexicache";

/// What kind of server a [`Service`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    RedisClusterNode,
    /// `redis-server --sentinel`, monitoring the standalone server.
    RedisSentinel,
    Memcached,
}

impl Kind {
    /// The program, as `/proc/<pid>/comm` names it.
    fn program(self) -> &'static str {
        match self {
            // Sentinel is redis-server started with `--sentinel`.
            Kind::Redis | Kind::RedisClusterNode | Kind::RedisSentinel => "redis-server",
            Kind::Memcached => "memcached",
        }
    }
}

/// One server process.
#[derive(Debug, Clone, Copy)]
struct Service {
    name: &'static str,
    kind: Kind,
    port: u16,
}

const SERVICES: [Service; 7] = [
    Service {
        name: "redis-6390",
        kind: Kind::Redis,
        port: STANDALONE_PORT,
    },
    Service {
        name: "redis-cluster-7000",
        kind: Kind::RedisClusterNode,
        port: 7000,
    },
    Service {
        name: "redis-cluster-7001",
        kind: Kind::RedisClusterNode,
        port: 7001,
    },
    Service {
        name: "redis-cluster-7002",
        kind: Kind::RedisClusterNode,
        port: 7002,
    },
    Service {
        name: "memcached-11290",
        kind: Kind::Memcached,
        port: 11290,
    },
    Service {
        name: "memcached-11291",
        kind: Kind::Memcached,
        port: 11291,
    },
    // Last, so the master it monitors already answers when it starts.
    Service {
        name: "redis-sentinel-26390",
        kind: Kind::RedisSentinel,
        port: SENTINEL_PORT,
    },
];

/// The variables the backend test suites read, with the values for these servers.
pub(crate) fn test_env() -> Vec<(&'static str, String)> {
    let cluster: Vec<String> = CLUSTER_PORTS
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    vec![
        (
            "LEXICACHE_TEST_REDIS_URL",
            format!("redis://127.0.0.1:{STANDALONE_PORT}"),
        ),
        ("LEXICACHE_TEST_REDIS_CLUSTER", cluster.join(",")),
        (
            "LEXICACHE_TEST_REDIS_SENTINEL",
            format!("127.0.0.1:{SENTINEL_PORT}"),
        ),
        (
            "LEXICACHE_TEST_REDIS_SENTINEL_MASTER",
            SENTINEL_MASTER.to_owned(),
        ),
        (
            "LEXICACHE_TEST_MEMCACHED",
            "127.0.0.1:11290,127.0.0.1:11291".to_owned(),
        ),
    ]
}

/// Prints `export` lines on stdout (progress goes to stderr), so
/// `eval "$(cargo xtask services up)"` sets them in a shell.
pub(crate) fn print_env(env: &[(&str, String)]) {
    for (k, v) in env {
        println!("export {k}={v}");
    }
}

impl Service {
    fn dir(&self) -> PathBuf {
        target_dir().join("services").join(self.name)
    }
    fn pid_file(&self) -> PathBuf {
        self.dir().join("server.pid")
    }
    fn log_file(&self) -> PathBuf {
        self.dir().join("server.log")
    }
    fn label(&self) -> String {
        let what = match self.kind {
            Kind::Redis => "redis standalone",
            Kind::RedisClusterNode => "redis cluster node",
            Kind::RedisSentinel => "redis sentinel",
            Kind::Memcached => "memcached",
        };
        format!("{what:<18} 127.0.0.1:{:<5}", self.port)
    }

    /// The pid in our pid file, if that process is alive and still runs our program.
    fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_our_process(pid, self.kind.program()).then_some(pid)
    }

    /// Whether the server answers its protocol's liveness probe.
    fn answers(&self) -> bool {
        match self.kind {
            Kind::Redis | Kind::RedisClusterNode | Kind::RedisSentinel => {
                matches!(redis_command(self.port, "PING").as_deref(), Ok("PONG"))
            }
            Kind::Memcached => memcached_version(self.port).is_ok(),
        }
    }

    /// Starts the server in the background, returning its handle so `up` can notice an early
    /// exit instead of waiting out the whole timeout.
    fn start(&self, bins: &Binaries) -> Result<Child> {
        let dir = self.dir();
        fs::create_dir_all(&dir)
            .map_err(|e| Failure::new(format!("creating {}: {e}", dir.display())))?;
        let mut cmd = match self.kind {
            Kind::Redis | Kind::RedisClusterNode => {
                let conf = dir.join("redis.conf");
                fs::write(&conf, self.redis_conf(&dir))
                    .map_err(|e| Failure::new(format!("writing {}: {e}", conf.display())))?;
                let mut cmd = Command::new(&bins.redis_server);
                cmd.arg(&conf);
                cmd
            }
            Kind::RedisSentinel => {
                // Sentinel rewrites its config as it learns the topology, so a fresh one is
                // written at every start and a stale one never carries over.
                let conf = dir.join("sentinel.conf");
                fs::write(&conf, self.sentinel_conf(&dir))
                    .map_err(|e| Failure::new(format!("writing {}: {e}", conf.display())))?;
                let mut cmd = Command::new(&bins.redis_server);
                cmd.arg(&conf).arg("--sentinel");
                cmd
            }
            Kind::Memcached => {
                let mut cmd = Command::new(&bins.memcached);
                let port = self.port.to_string();
                // -U 0 turns UDP off: the suites speak TCP, and an open UDP port invites
                // amplification.
                cmd.args([
                    "-l",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "0",
                    "-m",
                    "64",
                    "-c",
                    "1024",
                ]);
                if is_root() {
                    // memcached refuses to run as root unless told which user to become.
                    cmd.args(["-u", memcached_user()]);
                }
                cmd
            }
        };
        let log = File::create(self.log_file())
            .map_err(|e| Failure::new(format!("creating {}: {e}", self.log_file().display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Failure::new(format!("opening log: {e}")))?;
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Failure::new(format!("starting {}: {e}", self.name)))?;
        fs::write(self.pid_file(), format!("{}\n", child.id()))
            .map_err(|e| Failure::new(format!("writing {}: {e}", self.pid_file().display())))?;
        Ok(child)
    }

    fn redis_conf(&self, dir: &Path) -> String {
        let mut conf = format!(
            "# Written by `cargo xtask services up`; removed by `down`.\n\
             bind 127.0.0.1\n\
             port {port}\n\
             protected-mode yes\n\
             daemonize no\n\
             dir \"{dir}\"\n\
             logfile \"\"\n\
             save \"\"\n\
             appendonly no\n",
            port = self.port,
            dir = dir.display(),
        );
        if self.kind == Kind::RedisClusterNode {
            conf.push_str(
                "cluster-enabled yes\n\
                 cluster-config-file nodes.conf\n\
                 cluster-node-timeout 5000\n",
            );
        }
        conf
    }

    fn sentinel_conf(&self, dir: &Path) -> String {
        format!(
            "# Written by `cargo xtask services up`; removed by `down`. Sentinel rewrites it.\n\
             bind 127.0.0.1\n\
             port {port}\n\
             protected-mode yes\n\
             daemonize no\n\
             dir \"{dir}\"\n\
             logfile \"\"\n\
             sentinel monitor {master} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {master} 5000\n\
             sentinel failover-timeout {master} 60000\n",
            port = self.port,
            dir = dir.display(),
            master = SENTINEL_MASTER,
            master_port = STANDALONE_PORT,
        )
    }

    /// Removes everything in the service directory except the log.
    fn clean(&self) -> Result {
        let dir = self.dir();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if entry.file_name() == "server.log" {
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| Failure::new(format!("removing {}: {e}", path.display())))?;
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
        format!("last lines of {}:\n    {tail}", self.log_file().display())
    }
}

/// Where the server programs are.
#[derive(Debug)]
struct Binaries {
    redis_server: PathBuf,
    redis_cli: PathBuf,
    memcached: PathBuf,
}

impl Binaries {
    fn find() -> Option<Self> {
        Some(Self {
            redis_server: find_in_path("redis-server")?,
            redis_cli: find_in_path("redis-cli")?,
            memcached: find_in_path("memcached")?,
        })
    }
}

/// Starts every server that is not running, waits until all answer and the cluster is formed,
/// and returns the test environment. Already running servers are left alone.
pub(crate) fn up() -> Result<Vec<(&'static str, String)>> {
    let bins = ensure_installed()?;

    // A cluster with no live node is started from scratch: stale node tables from a crashed
    // run would otherwise make the nodes refuse to form a new cluster.
    let cluster_nodes = || SERVICES.iter().filter(|s| s.kind == Kind::RedisClusterNode);
    if cluster_nodes().all(|s| s.running_pid().is_none()) {
        for s in cluster_nodes() {
            s.clean()?;
        }
    }

    let mut starting: Vec<(Service, Option<Child>)> = Vec::new();
    for s in SERVICES {
        if let Some(pid) = s.running_pid() {
            eprintln!("{}  already running (pid {pid})", s.label());
            starting.push((s, None));
            continue;
        }
        if s.answers() {
            return Err(Failure::new(format!(
                "127.0.0.1:{} already answers, but not from a server xtask started \
                 (no live pid in {}); stop whatever listens there and retry",
                s.port,
                s.pid_file().display()
            )));
        }
        let child = s.start(&bins)?;
        eprintln!("{}  started (pid {})", s.label(), child.id());
        starting.push((s, Some(child)));
    }

    let deadline = Instant::now() + START_TIMEOUT;
    for (s, child) in &mut starting {
        loop {
            if s.answers() {
                break;
            }
            if let Some(child) = child {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Failure::new(format!(
                        "{} exited during start-up ({status}); {}",
                        s.name,
                        s.log_tail()
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "{} did not answer on 127.0.0.1:{} within {}s; {}",
                    s.name,
                    s.port,
                    START_TIMEOUT.as_secs(),
                    s.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("all servers answer");

    form_cluster(&bins)?;
    Ok(test_env())
}

/// Assigns the slots of a fresh cluster, then waits until every node reports
/// `cluster_state:ok`.
fn form_cluster(bins: &Binaries) -> Result {
    let infos: Vec<String> = CLUSTER_PORTS
        .iter()
        .map(|p| redis_command(*p, "CLUSTER INFO").unwrap_or_default())
        .collect();
    if infos
        .iter()
        .all(|i| info_field(i, "cluster_state") == Some("ok"))
    {
        eprintln!("redis cluster      7000-7002        already formed");
        return Ok(());
    }
    if infos
        .iter()
        .all(|i| info_field(i, "cluster_slots_assigned") == Some("0"))
    {
        let nodes: Vec<String> = CLUSTER_PORTS
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new(&bins.redis_cli)
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failure::new(format!("running redis-cli --cluster create: {e}")))?;
        if !out.status.success() {
            return Err(Failure::new(format!(
                "redis-cli --cluster create failed ({}):\n{}{}\n\
                 run `cargo xtask services down` for a clean start",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }

    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    loop {
        let states: Vec<String> = CLUSTER_PORTS
            .iter()
            .map(|p| {
                let info = redis_command(*p, "CLUSTER INFO").unwrap_or_default();
                info_field(&info, "cluster_state")
                    .unwrap_or("unknown")
                    .to_owned()
            })
            .collect();
        if states.iter().all(|s| s == "ok") {
            eprintln!("redis cluster      7000-7002        cluster_state:ok");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "the redis cluster did not reach cluster_state:ok within {}s (states: {}); \
                 run `cargo xtask services down` for a clean start",
                CLUSTER_TIMEOUT.as_secs(),
                states.join(", ")
            )));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Stops every server named by a pid file (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]) and
/// removes their state, keeping the logs.
pub(crate) fn down() -> Result {
    let mut stopping = Vec::new();
    for s in SERVICES {
        match s.running_pid() {
            Some(pid) => {
                signal(pid, "TERM");
                stopping.push((s, pid));
            }
            None => eprintln!("{}  not running", s.label()),
        }
    }

    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline
        && stopping
            .iter()
            .any(|(s, pid)| is_our_process(*pid, s.kind.program()))
    {
        thread::sleep(Duration::from_millis(50));
    }
    let mut failed = Vec::new();
    for (s, pid) in &stopping {
        if is_our_process(*pid, s.kind.program()) {
            eprintln!("{}  did not stop on SIGTERM; sending SIGKILL", s.label());
            signal(*pid, "KILL");
            let deadline = Instant::now() + Duration::from_secs(2);
            while is_our_process(*pid, s.kind.program()) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            if is_our_process(*pid, s.kind.program()) {
                failed.push(format!("{} (pid {pid})", s.name));
                continue;
            }
        }
        eprintln!("{}  stopped (pid {pid})", s.label());
    }

    for s in SERVICES {
        s.clean()?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "could not stop: {}",
            failed.join(", ")
        )))
    }
}

/// Prints every server and whether it answers; fails if any does not.
pub(crate) fn status() -> Result {
    let mut down = 0;
    for s in SERVICES {
        let pid = s
            .running_pid()
            .map_or_else(|| "no pid".to_owned(), |p| format!("pid {p}"));
        let answers = s.answers();
        let mut line = format!(
            "{}  {:<10} {}",
            s.label(),
            pid,
            if answers { "answers" } else { "not answering" }
        );
        if answers && s.kind == Kind::RedisClusterNode {
            let info = redis_command(s.port, "CLUSTER INFO").unwrap_or_default();
            let state = info_field(&info, "cluster_state").unwrap_or("unknown");
            line.push_str(&format!(" (cluster_state:{state})"));
        }
        if answers && s.kind == Kind::RedisSentinel {
            let info = redis_command(s.port, "INFO sentinel").unwrap_or_default();
            let master = info_field(&info, "master0").unwrap_or("no master");
            line.push_str(&format!(" ({master})"));
        }
        if !answers {
            down += 1;
        }
        println!("{line}");
    }
    if down == 0 {
        print_env(&test_env());
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{down} of {} servers are not answering; run `cargo xtask services up`",
            SERVICES.len()
        )))
    }
}

/// Finds the server programs, installing them with apt-get when they are missing and we are
/// root; otherwise says exactly what to install.
fn ensure_installed() -> Result<Binaries> {
    if let Some(bins) = Binaries::find() {
        return Ok(bins);
    }
    let missing: Vec<&str> = ["redis-server", "redis-cli", "memcached"]
        .into_iter()
        .filter(|p| find_in_path(p).is_none())
        .collect();
    let packages = ["redis-server", "redis-tools", "memcached"];
    if !is_root() {
        return Err(Failure::new(format!(
            "{} not found on PATH; install them with:\n    \
             sudo apt-get update && sudo apt-get install -y {}\n\
             (macOS: brew install redis memcached)",
            missing.join(", "),
            packages.join(" ")
        )));
    }
    if find_in_path("apt-get").is_none() {
        return Err(Failure::new(format!(
            "{} not found on PATH and apt-get is not available; install Redis (with redis-cli) \
             and Memcached with this system's package manager",
            missing.join(", ")
        )));
    }
    eprintln!(
        "{} not found; installing with apt-get (running as root)",
        missing.join(", ")
    );
    let apt = |args: &[&str]| -> Result {
        eprintln!("==> apt-get {}", args.join(" "));
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            // stdout carries only the `export` lines, so `eval "$(cargo xtask services up)"` works.
            .stdout(std::io::stderr())
            .status()
            .map_err(|e| Failure::new(format!("running apt-get: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Failure::new(format!(
                "apt-get {} failed ({status})",
                args.join(" ")
            )))
        }
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(packages);
    apt(&install)?;
    Binaries::find().ok_or_else(|| {
        Failure::new(
            "apt-get succeeded but redis-server, redis-cli or memcached is still not on PATH",
        )
    })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    // Debian puts daemons in /usr/sbin, which a non-login PATH may lack.
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The unprivileged user memcached drops to when started as root, falling back to root where
/// the system has no `nobody`.
fn memcached_user() -> &'static str {
    let has_nobody = fs::read_to_string("/etc/passwd")
        .is_ok_and(|p| p.lines().any(|l| l.starts_with("nobody:")));
    if has_nobody {
        "nobody"
    } else {
        "root"
    }
}

/// Whether `pid` is alive (not a zombie) and runs `program`. A pid whose process has exited may
/// be reused by an unrelated process; checking the program keeps `down` from signalling it.
fn is_our_process(pid: u32, program: &str) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if Path::new("/proc/self").exists() {
        let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
            return false;
        };
        // The state follows the parenthesised command name, which may itself contain spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(state, Some("Z" | "X") | None) {
            return false;
        }
        let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
        comm.trim() == program
    } else {
        // Without /proc (macOS), fall back to asking ps.
        Command::new("ps")
            .args(["-p", &pid.to_string(), "-o", "comm="])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim().ends_with(program))
    }
}

fn signal(pid: u32, sig: &str) {
    // A failure here means the process already exited, which is what we want anyway.
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    Ok(stream)
}

/// Sends one inline Redis command and returns a simple-string or bulk-string reply.
fn redis_command(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = connect(port)?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let first = first.trim_end();
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    match first.as_bytes().first() {
        Some(b'+') => Ok(first[1..].to_owned()),
        Some(b'$') => {
            let len: usize = first[1..]
                .parse()
                .map_err(|_| invalid(format!("bad bulk length: {first}")))?;
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        _ => Err(invalid(format!("unexpected reply: {first}"))),
    }
}

/// Asks memcached for its version.
fn memcached_version(port: u16) -> std::io::Result<String> {
    let mut stream = connect(port)?;
    stream.write_all(b"version\r\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    line.trim_end()
        .strip_prefix("VERSION ")
        .map(str::to_owned)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, line.clone()))
}

/// The value of `field` in a `CLUSTER INFO` reply.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_fields_are_read() {
        let info = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:3\r\n";
        assert_eq!(info_field(info, "cluster_state"), Some("ok"));
        assert_eq!(info_field(info, "cluster_slots_assigned"), Some("16384"));
        assert_eq!(info_field(info, "cluster_slots"), None);
    }

    #[test]
    fn redis_conf_disables_persistence_and_binds_loopback() {
        let conf = SERVICES[1].redis_conf(Path::new("/tmp/x"));
        for line in [
            "bind 127.0.0.1",
            "port 7000",
            "save \"\"",
            "appendonly no",
            "cluster-enabled yes",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing `{line}` in:\n{conf}"
            );
        }
        assert!(!SERVICES[0]
            .redis_conf(Path::new("/tmp/x"))
            .contains("cluster"));
    }

    #[test]
    fn sentinel_conf_monitors_the_standalone_server_on_loopback() {
        let sentinel = SERVICES
            .iter()
            .find(|s| s.kind == Kind::RedisSentinel)
            .expect("a sentinel service");
        let conf = sentinel.sentinel_conf(Path::new("/tmp/x"));
        for line in [
            "bind 127.0.0.1",
            "port 26390",
            "sentinel monitor lexicache 127.0.0.1 6390 1",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing `{line}` in:\n{conf}"
            );
        }
    }

    #[test]
    fn test_env_names_every_server() {
        let env = test_env();
        assert_eq!(env[1].1, "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002");
        assert_eq!(
            env[2],
            ("LEXICACHE_TEST_REDIS_SENTINEL", "127.0.0.1:26390".into())
        );
        assert_eq!(
            env[3],
            ("LEXICACHE_TEST_REDIS_SENTINEL_MASTER", "lexicache".into())
        );
        assert_eq!(env.len(), 5);
    }
}
