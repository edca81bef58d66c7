//! The soak run behind `cargo xtask soak`: a mixed workload with network faults against Redis
//! and memcached, watching this process's memory.
//!
//! Two services, each built as production would build one (command timeouts, a circuit breaker
//! and distributed stampede protection), run 64 tasks each of `get` / `set` / `get_or_set` /
//! `get_many` / `set_many` / `delete` / tagged `set` / `invalidate_tags` over 20,000 Zipf-ish
//! keys (renamed every 20 s) with short TTLs, plus calls cancelled by tiny deadlines. Each
//! service talks to its servers through [`FaultProxy`]s (one per memcached server, so one server
//! fails while the other works) that cycle through every [`Fault`]; the run ends with a
//! blackhole on every proxy, lifted with the workload still running. Every second it samples
//! `VmRSS` and `VmHWM`, the operations done, the errors and the breakers' states; at the end it
//! prints a table and fails (exit 1) when the RSS grew after warm-up by more than
//! `--max-growth-mib`, a value came back under the wrong key, a service still failed 30 s after
//! the final blackhole, the proxies hold more connections than the pools allow, or a task hung.
//!
//! ```text
//! cargo run --release -p lexicache-service --example soak -- \
//!     --seconds 120 --redis redis://127.0.0.1:6390 \
//!     --memcached 127.0.0.1:11290,127.0.0.1:11291 [--json FILE] [--max-growth-mib M] \
//!     [--no-faults] [--inject-leak BYTES]
//! ```
//!
//! `--no-faults` runs the workload alone (a baseline); `--inject-leak BYTES` keeps that many
//! bytes per successful call, to check that the growth limit catches a leak.
//!
//! Without `--redis` / `--memcached` it reads `LEXICACHE_TEST_REDIS_URL` and
//! `LEXICACHE_TEST_MEMCACHED`. Only loopback servers are accepted.
// A command-line program: printing the report is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use lexicache_core::{CacheBackend, CircuitState, Error, ErrorKind};
use lexicache_memcached::MemcachedBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::layers::CircuitBreakerConfig;
use lexicache_service::{CacheService, Protection};
use lexicache_testkit::proxy::{Fault, FaultProxy};
use lexicache_testkit::servers::unique_namespace;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant, MissedTickBehavior};

// ----- the workload ----------------------------------------------------------------------------

/// Worker tasks per service.
const TASKS: usize = 64;
/// Keys per service at any moment.
const KEYS: u64 = 20_000;
/// Key names change every this many microseconds (20 s): the live key set stays at [`KEYS`],
/// but new names keep coming as old ones expire, as sessions and request ids do. So anything
/// kept per key name that should have been dropped (a leak that would plateau at 20,000 keys)
/// grows for the whole run.
const KEY_GENERATION_US: u64 = 20_000_000;
/// Distinct tags per service.
const TAGS: u64 = 32;
/// Value sizes, log-uniform between these (so most values are small, some large).
const MIN_VALUE: f64 = 64.0;
const MAX_VALUE: usize = 64 * 1024;
/// Entry TTLs, uniform in whole seconds (short: entries churn, and memcached's keys are gone
/// soon after the run, which cannot clear them).
const TTL_SECS: (u64, u64) = (1, 10);
/// The TTL of tag version keys (the default is 7 days; memcached could not clear them).
const TAG_TTL: Duration = Duration::from_secs(60);
/// A failed call's caller waits this long before its next call: a client that retries in a
/// tight loop would measure the speed of refusals, not the library.
const ERROR_PAUSE: Duration = Duration::from_millis(5);
/// Cancelled calls get a deadline up to this long.
const CANCEL_DEADLINE_MAX_US: u64 = 2_000;

// ----- the production-like configuration -------------------------------------------------------

/// The backends' own bound on one command (fred's per-command timeout; memcached's per
/// exchange and per wait for a pooled connection).
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The service's outer bound on every backend call (the `Timeout` layer).
const SERVICE_TIMEOUT: Duration = Duration::from_millis(300);
/// Memcached connections per server.
const MEMCACHED_POOL: usize = 16;

/// The circuit breaker: open after 20 failures within 2 s, probe after 1 s, close after 2
/// successful probes.
fn breaker() -> CircuitBreakerConfig {
    CircuitBreakerConfig::new()
        .failure_threshold(20)
        .window(Duration::from_secs(2))
        .open_duration(Duration::from_secs(1))
        .half_open_probes(2)
        .success_threshold(2)
}

// ----- the fault schedule ----------------------------------------------------------------------

/// How long each fault lasts, and the pass-through before each.
const FAULT_FOR: Duration = Duration::from_secs(3);
const CLEAR_FOR: Duration = Duration::from_secs(2);
/// Latency under the command timeout (slow but working) and over the service timeout (every
/// call times out).
const LATENCY_BELOW: Duration = Duration::from_millis(50);
const LATENCY_ABOVE: Duration = Duration::from_millis(600);

/// Every fault, the heaviest first, so the warm-up window has seen them before growth is
/// measured.
const SCHEDULE: [(&str, Fault); 5] = [
    ("blackhole", Fault::Blackhole),
    ("latency-600ms", Fault::Latency(LATENCY_ABOVE)),
    ("reset", Fault::Reset),
    ("close-after-1000", Fault::CloseAfter(1000)),
    ("latency-50ms", Fault::Latency(LATENCY_BELOW)),
];

// ----- arguments -------------------------------------------------------------------------------

#[derive(Debug)]
struct Args {
    seconds: u64,
    redis: String,
    memcached: Vec<String>,
    json: Option<PathBuf>,
    max_growth_mib: Option<f64>,
    /// Pass-through only: the baseline to compare a faulty run with.
    no_faults: bool,
    /// Bytes to keep forever per successful call: a deliberate leak, to check that the growth
    /// limit catches one.
    inject_leak: usize,
}

const USAGE: &str = "usage: soak [--seconds N] [--redis URL] [--memcached HOST:PORT,...] \
                     [--json FILE] [--max-growth-mib M] [--no-faults] \
                     [--inject-leak BYTES]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 120,
        redis: std::env::var("LEXICACHE_TEST_REDIS_URL").unwrap_or_default(),
        memcached: split_servers(&std::env::var("LEXICACHE_TEST_MEMCACHED").unwrap_or_default()),
        json: None,
        max_growth_mib: None,
        no_faults: false,
        inject_leak: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
            }
            "--redis" => args.redis = value()?,
            "--memcached" => args.memcached = split_servers(&value()?),
            "--json" => args.json = Some(value()?.into()),
            "--max-growth-mib" => {
                let m: f64 = value()?
                    .parse()
                    .map_err(|e| format!("--max-growth-mib: {e}"))?;
                args.max_growth_mib = Some(m);
            }
            "--no-faults" => args.no_faults = true,
            "--inject-leak" => {
                args.inject_leak = value()?
                    .parse()
                    .map_err(|e| format!("--inject-leak: {e}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.seconds == 0 {
        return Err("--seconds must be at least 1".into());
    }
    if args.redis.is_empty() {
        return Err("no Redis: pass --redis URL or set LEXICACHE_TEST_REDIS_URL".into());
    }
    if args.memcached.is_empty() {
        return Err(
            "no memcached: pass --memcached HOST:PORT,... or set LEXICACHE_TEST_MEMCACHED".into(),
        );
    }
    Ok(args)
}

fn split_servers(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Resolves `host:port` and refuses anything but loopback: the soak run floods its servers
/// and cuts their connections, which is for local servers only.
fn loopback(addr: &str) -> Result<SocketAddr, String> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .collect();
    match resolved.first() {
        Some(first) if resolved.iter().all(|a| a.ip().is_loopback()) => Ok(*first),
        Some(_) => Err(format!(
            "{addr} is not a loopback address; the soak run only uses local servers"
        )),
        None => Err(format!("{addr} does not resolve")),
    }
}

/// A `redis://[user:pass@]host:port[/db]` URL split into its loopback server and a template
/// that puts another `host:port` in its place.
struct RedisTarget {
    server: SocketAddr,
    userinfo: String,
    path: String,
}

impl RedisTarget {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("--redis: expected redis://host:port[/db], got {url}"))?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (userinfo, hostport) = authority
            .rfind('@')
            .map_or(("", authority), |i| (&authority[..=i], &authority[i + 1..]));
        Ok(Self {
            server: loopback(hostport)?,
            userinfo: userinfo.to_owned(),
            path: path.to_owned(),
        })
    }

    fn url_via(&self, proxy: SocketAddr) -> String {
        format!("redis://{}{proxy}{}", self.userinfo, self.path)
    }
}

// ----- the breaker's state, read from its metrics ----------------------------------------------

/// A `metrics` recorder that keeps only the circuit breakers' state gauges and transition
/// counters (every other metric is a no-op), so the run can show each breaker's state without
/// an event subscriber on the hot path.
#[derive(Debug, Default)]
struct BreakerWatch {
    /// `lexicache_circuit_state` by backend label: f64 bits (0 closed, 1 open, 2 half-open).
    states: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// `lexicache_circuit_transitions_total{to="open"}` by backend label.
    opens: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl BreakerWatch {
    fn slot(map: &Mutex<HashMap<String, Arc<AtomicU64>>>, backend: &str) -> Arc<AtomicU64> {
        map.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(backend.to_owned())
            .or_default()
            .clone()
    }

    fn state(&self, backend: &str) -> &'static str {
        let gauge = f64::from_bits(Self::slot(&self.states, backend).load(Ordering::Relaxed));
        [CircuitState::Open, CircuitState::HalfOpen]
            .into_iter()
            .find(|s| s.gauge() == gauge)
            .map_or("closed", CircuitState::as_str)
    }

    fn opens(&self, backend: &str) -> u64 {
        Self::slot(&self.opens, backend).load(Ordering::Relaxed)
    }
}

fn label<'k>(key: &'k Key, name: &str) -> Option<&'k str> {
    key.labels().find(|l| l.key() == name).map(|l| l.value())
}

impl Recorder for &'static BreakerWatch {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match (key.name(), label(key, "backend"), label(key, "to")) {
            (lexicache_core::metrics::CIRCUIT_TRANSITIONS_TOTAL, Some(backend), Some("open")) => {
                Counter::from_arc(BreakerWatch::slot(&self.opens, backend))
            }
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match (key.name(), label(key, "backend")) {
            (lexicache_core::metrics::CIRCUIT_STATE, Some(backend)) => {
                Gauge::from_arc(BreakerWatch::slot(&self.states, backend))
            }
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

// ----- memory ----------------------------------------------------------------------------------

#[allow(clippy::cast_precision_loss)] // a figure for people: MiB with one decimal
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- one service under test ------------------------------------------------------------------

/// What a service's workers did.
#[derive(Debug, Default)]
struct Stats {
    ops: AtomicU64,
    cancelled: AtomicU64,
    /// Values that came back under another key: a connection out of step.
    wrong: AtomicU64,
    wrong_examples: Mutex<Vec<String>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    error_total: AtomicU64,
    /// The slowest call that was not cancelled, in microseconds.
    worst_us: AtomicU64,
    /// When the last call failed, in [`now_us`] time.
    last_error_us: AtomicU64,
    /// For each fault lifted: its name, and how long errors went on after (`None`: still
    /// failing when the pass-through ended).
    recoveries: Mutex<Vec<(&'static str, Option<Duration>)>>,
}

impl Stats {
    fn error(&self, kind: ErrorKind) {
        self.error_total.fetch_add(1, Ordering::Relaxed);
        self.last_error_us.fetch_max(now_us(), Ordering::Relaxed);
        *self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind.as_str())
            .or_default() += 1;
    }

    fn wrong(&self, key: &str, value: &str) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let mut examples = self
            .wrong_examples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if examples.len() < 5 {
            let head: String = value.chars().take(40).collect();
            examples.push(format!("{key} -> {head:?}"));
        }
    }
}

/// Microseconds since the run's clock started.
fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// How long `stats`' calls went on failing after `lifted_us` (zero if none failed since), or
/// `None` if one failed within the last `quiet`: the service is still failing.
fn errors_stopped(stats: &Stats, lifted_us: u64, quiet: Duration) -> Option<Duration> {
    let last = stats.last_error_us.load(Ordering::Relaxed);
    if last < lifted_us {
        return Some(Duration::ZERO);
    }
    let quiet_us = u64::try_from(quiet.as_micros()).unwrap_or(u64::MAX);
    (now_us().saturating_sub(last) >= quiet_us).then(|| Duration::from_micros(last - lifted_us))
}

/// A service, its proxies and what its workers saw.
#[derive(Debug)]
struct Target {
    /// The service's label, also the backend's name (the breaker's metrics label).
    name: &'static str,
    service: CacheService,
    proxies: Vec<FaultProxy>,
    /// The most connections its proxies may hold at rest: the pools' sizes.
    connection_bound: usize,
    stats: Stats,
}

async fn redis_target(redis: &RedisTarget) -> Result<Target, String> {
    let proxy = FaultProxy::start(redis.server)
        .await
        .map_err(|e| format!("fault proxy for redis: {e}"))?;
    let backend = RedisBackend::builder()
        .url(&redis.url_via(proxy.addr()))
        .name("redis")
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("redis at {}: {e}", redis.server))?;
    let service = service(backend, "redis");
    Ok(Target {
        name: "redis",
        service,
        proxies: vec![proxy],
        // One multiplexed connection.
        connection_bound: 1,
        stats: Stats::default(),
    })
}

/// The service every target runs: both backends get the same production configuration.
fn service(backend: impl CacheBackend, name: &str) -> CacheService {
    CacheService::builder(backend)
        .name(name)
        .namespace(unique_namespace("soak"))
        .timeout(SERVICE_TIMEOUT)
        .circuit_breaker(breaker())
        .protection(Protection::default())
        .tag_ttl(TAG_TTL)
        .build()
}

async fn memcached_target(servers: &[SocketAddr]) -> Result<Target, String> {
    let mut proxies = Vec::new();
    for server in servers {
        proxies.push(
            FaultProxy::start(*server)
                .await
                .map_err(|e| format!("fault proxy for memcached {server}: {e}"))?,
        );
    }
    let backend = MemcachedBackend::builder()
        .servers(proxies.iter().map(|p| p.addr().to_string()))
        .name("memcached")
        .pool_size(MEMCACHED_POOL)
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("memcached: {e}"))?;
    let service = service(backend, "memcached");
    Ok(Target {
        name: "memcached",
        service,
        connection_bound: MEMCACHED_POOL * proxies.len(),
        proxies,
        stats: Stats::default(),
    })
}

// ----- workers ---------------------------------------------------------------------------------

/// A small xorshift generator: the workload needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    #[allow(clippy::cast_precision_loss)] // 53 random bits
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A key, Zipf-like (s = 1): key `i` of the current generation (see [`KEY_GENERATION`])
    /// is drawn with probability proportional to `1/(i+1)`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    fn key(&mut self) -> String {
        let i = ((KEYS as f64 + 1.0).powf(self.unit()) - 1.0) as u64;
        let generation = now_us() / KEY_GENERATION_US;
        format!("k{generation}-{}", i.min(KEYS - 1))
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn value_size(&mut self) -> usize {
        let size = MIN_VALUE * (MAX_VALUE as f64 / MIN_VALUE).powf(self.unit());
        (size as usize).min(MAX_VALUE)
    }

    fn ttl(&mut self) -> Option<Duration> {
        let (lo, hi) = TTL_SECS;
        Some(Duration::from_secs(lo + self.below(hi - lo + 1)))
    }

    fn tag(&mut self) -> String {
        format!("t{}", self.below(TAGS))
    }
}

/// 64 KiB of filler, sliced for values.
fn filler() -> &'static str {
    static FILLER: OnceLock<String> = OnceLock::new();
    FILLER.get_or_init(|| {
        "abcdefghijklmnopqrstuvwxyz0123456789"
            .chars()
            .cycle()
            .take(MAX_VALUE)
            .collect()
    })
}

/// A value of about `size` bytes that names its key, so a value read under another key is
/// caught.
fn value_for(key: &str, size: usize) -> String {
    let mut value = String::with_capacity(size.max(key.len() + 1));
    value.push_str(key);
    value.push('|');
    let rest = size.saturating_sub(value.len());
    value.push_str(&filler()[..rest]);
    value
}

fn check(stats: &Stats, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        let ok = value
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('|'));
        if !ok {
            stats.wrong(key, value);
        }
    }
}

/// One call of the mix, by weight (out of 100).
async fn one_call(t: &Target, rng: &mut Rng) -> Result<(), Error> {
    let svc = &t.service;
    let roll = rng.below(100);
    match roll {
        // get: 36%
        0..=35 => {
            let key = rng.key();
            let value = svc.try_get::<String>(&key).await?;
            check(&t.stats, &key, value.as_ref());
        }
        // set: 18%
        36..=53 => {
            let key = rng.key();
            let value = value_for(&key, rng.value_size());
            svc.try_set(&key, &value, rng.ttl()).await?;
        }
        // get_or_set: 16%
        54..=69 => {
            let key = rng.key();
            let size = rng.value_size();
            let loaded = svc
                .get_or_set(&key, rng.ttl(), || {
                    let value = value_for(&key, size);
                    async move { Ok::<_, Infallible>(value) }
                })
                .await?;
            check(&t.stats, &key, Some(&loaded));
        }
        // get_many of 8: 8%
        70..=77 => {
            let keys: Vec<String> = (0..8).map(|_| rng.key()).collect();
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let values = svc.try_get_many::<String>(&refs).await?;
            for (key, value) in keys.iter().zip(&values) {
                check(&t.stats, key, value.as_ref());
            }
        }
        // set_many of 4: 5%
        78..=82 => {
            let items: Vec<(String, String)> = (0..4)
                .map(|_| {
                    let key = rng.key();
                    let value = value_for(&key, rng.value_size());
                    (key, value)
                })
                .collect();
            let refs: Vec<(&str, String)> =
                items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            svc.try_set_many(&refs, rng.ttl()).await?;
        }
        // delete: 5%
        83..=87 => {
            svc.try_delete(&rng.key()).await?;
        }
        // tagged set: 5%
        88..=92 => {
            let key = rng.key();
            let value = value_for(&key, rng.value_size());
            let (a, b) = (rng.tag(), rng.tag());
            svc.try_set_with_tags(&key, &value, rng.ttl(), &[&a, &b])
                .await?;
        }
        // invalidate a tag: 1%
        93 => {
            svc.invalidate_tags(&[&rng.tag()]).await?;
        }
        // a call cancelled (or not) by a deadline of at most 2 ms: 6%
        _ => {
            let deadline = Duration::from_micros(1 + rng.below(CANCEL_DEADLINE_MAX_US));
            let key = rng.key();
            let finished = match roll % 3 {
                0 => timeout(deadline, svc.try_get::<String>(&key))
                    .await
                    .map(|r| r.map(|v| check(&t.stats, &key, v.as_ref()))),
                1 => {
                    let value = value_for(&key, rng.value_size());
                    timeout(deadline, svc.try_set(&key, &value, rng.ttl())).await
                }
                _ => {
                    let size = rng.value_size();
                    let load = svc.get_or_set(&key, rng.ttl(), || {
                        let value = value_for(&key, size);
                        async move { Ok::<_, Infallible>(value) }
                    });
                    timeout(deadline, load)
                        .await
                        .map(|r| r.map(|v| check(&t.stats, &key, Some(&v))))
                }
            };
            match finished {
                Ok(result) => result?,
                Err(_elapsed) => {
                    t.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}

/// What `--inject-leak` keeps.
static LEAKED: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

async fn worker(t: Arc<Target>, seed: u64, stop: Arc<AtomicBool>, leak: usize) {
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = one_call(&t, &mut rng).await;
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        t.stats.worst_us.fetch_max(took, Ordering::Relaxed);
        t.stats.ops.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) if leak > 0 => {
                // Written, so the pages are resident.
                let kept = vec![1u8; leak].into_boxed_slice();
                LEAKED
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(kept);
            }
            Ok(()) => {}
            Err(e) => {
                t.stats.error(e.kind());
                sleep(ERROR_PAUSE).await;
            }
        }
    }
}

// ----- faults ----------------------------------------------------------------------------------

/// What the fault schedule is doing now, for the samples.
#[derive(Debug, Default)]
struct FaultNow(Mutex<String>);

impl FaultNow {
    fn set(&self, what: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = what;
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Errors must have stopped this long before the end of a pass-through for the service to
/// count as recovered from the fault before it.
const QUIET: Duration = Duration::from_millis(250);

/// Cycles through [`SCHEDULE`] until stopped: each fault on the Redis proxy and on one of the
/// memcached proxies (alternating servers), with pass-through in between, at the end of which
/// each service's recovery is recorded.
async fn fault_schedule(targets: Vec<Arc<Target>>, now: Arc<FaultNow>) {
    let mut round = 0usize;
    sleep(CLEAR_FOR).await;
    loop {
        for (name, fault) in SCHEDULE {
            let mut on = Vec::new();
            for t in &targets {
                let i = round % t.proxies.len();
                t.proxies[i].set_fault(fault);
                on.push(if t.proxies.len() > 1 {
                    format!("{}[{i}]", t.name)
                } else {
                    t.name.to_owned()
                });
            }
            now.set(format!("{name} on {}", on.join(",")));
            sleep(FAULT_FOR).await;
            lift(&targets);
            let lifted = now_us();
            now.set("none".into());
            sleep(CLEAR_FOR).await;
            for t in &targets {
                let after = errors_stopped(&t.stats, lifted, QUIET);
                t.stats
                    .recoveries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((name, after));
            }
            round += 1;
        }
    }
}

fn lift(targets: &[Arc<Target>]) {
    for t in targets {
        for p in &t.proxies {
            p.set_fault(Fault::PassThrough);
        }
    }
}

/// After the timed run, every proxy blackholes for [`FAULT_FOR`] with the workload still
/// running; once lifted, each service's errors must stop within this long. A connection
/// caught by a blackhole stays dead, so this needs the clients to notice and replace it.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);
/// The errors must have stopped this long for the final check.
const FINAL_QUIET: Duration = Duration::from_secs(1);

/// The final blackhole (see [`RECOVER_WITHIN`]): how long each service's errors went on after
/// it was lifted, or `None` if they did not stop.
async fn final_blackhole(targets: &[Arc<Target>], now: &FaultNow) -> Vec<Option<Duration>> {
    for t in targets {
        for p in &t.proxies {
            p.set_fault(Fault::Blackhole);
        }
    }
    now.set("final blackhole on every proxy".into());
    sleep(FAULT_FOR).await;
    lift(targets);
    now.set("none".into());
    let lifted = now_us();
    let mut recovered = vec![None; targets.len()];
    let deadline = Instant::now() + RECOVER_WITHIN + FINAL_QUIET;
    while Instant::now() < deadline && recovered.iter().any(Option::is_none) {
        sleep(Duration::from_millis(100)).await;
        for (t, r) in targets.iter().zip(&mut recovered) {
            if r.is_none() {
                *r = errors_stopped(&t.stats, lifted, FINAL_QUIET).filter(|d| *d <= RECOVER_WITHIN);
            }
        }
    }
    recovered
}

// ----- samples and the report ------------------------------------------------------------------

/// One second of the run.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    rss: u64,
    hwm: u64,
    ops: Vec<u64>,
    errors: Vec<u64>,
    breakers: Vec<&'static str>,
    connections: Vec<usize>,
    fault: String,
}

fn sample(
    started: Instant,
    targets: &[Arc<Target>],
    watch: &BreakerWatch,
    fault: &FaultNow,
) -> Sample {
    let lexicache_testkit::process::Memory { rss, peak: hwm } =
        lexicache_testkit::process::memory();
    Sample {
        at: started.elapsed(),
        rss,
        hwm,
        ops: targets
            .iter()
            .map(|t| t.stats.ops.load(Ordering::Relaxed))
            .collect(),
        errors: targets
            .iter()
            .map(|t| t.stats.error_total.load(Ordering::Relaxed))
            .collect(),
        breakers: targets.iter().map(|t| watch.state(t.name)).collect(),
        connections: targets
            .iter()
            .map(|t| t.proxies.iter().map(FaultProxy::open_connections).sum())
            .collect(),
        fault: fault.get(),
    }
}

/// The memory verdict: the warm-up's highest RSS against the last 20%'s.
#[derive(Debug)]
struct Growth {
    warmup: Duration,
    warmup_max: u64,
    tail_from: Duration,
    tail_max: u64,
    growth: i64,
}

fn growth(samples: &[Sample], run: Duration) -> Growth {
    // The first 20% (at least 10 s, at most half a short run) warms up; the last 20% is compared.
    let warmup = run.mul_f64(0.2).max(Duration::from_secs(10)).min(run / 2);
    let tail_from = run.saturating_sub(run.mul_f64(0.2));
    let max_rss = |pick: &dyn Fn(&Sample) -> bool| {
        samples
            .iter()
            .filter(|s| pick(s))
            .map(|s| s.rss)
            .max()
            .unwrap_or(0)
    };
    let warmup_max = max_rss(&|s| s.at <= warmup);
    let tail_max = max_rss(&|s| s.at >= tail_from);
    Growth {
        warmup,
        warmup_max,
        tail_from,
        tail_max,
        growth: i64::try_from(tail_max).unwrap_or(i64::MAX)
            - i64::try_from(warmup_max).unwrap_or(i64::MAX),
    }
}

#[allow(clippy::cast_precision_loss)] // figures for people
fn per_second(n: u64, over: Duration) -> f64 {
    n as f64 / over.as_secs_f64().max(1e-9)
}

#[allow(clippy::cast_precision_loss)]
fn signed_mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- main ------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("soak: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("soak: {message}");
            ExitCode::from(2)
        }
    }
}

/// What one service looked like once the run was over.
#[derive(Debug)]
struct Ended {
    /// How long its errors went on after the final blackhole was lifted (`None`: longer than
    /// [`RECOVER_WITHIN`]).
    recovered: Option<Duration>,
    /// Connections its proxies held at rest, and accepted in all.
    open: usize,
    accepted: u64,
    hit_rate: f64,
}

/// Everything the report needs.
#[derive(Debug)]
struct Outcome {
    elapsed: Duration,
    samples: Vec<Sample>,
    final_sample: Sample,
    ended: Vec<Ended>,
    hung: usize,
    cleared: String,
}

/// How long the workers may take to stop: a `get_or_set` may wait out its lock's
/// `max_wait` (10 s by default).
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The run: `Ok(true)` when every check passed, `Ok(false)` when one failed, `Err` when it
/// could not start.
async fn run(args: Args) -> Result<bool, String> {
    let redis = RedisTarget::parse(&args.redis)?;
    let memcached: Vec<SocketAddr> = args
        .memcached
        .iter()
        .map(|s| loopback(s))
        .collect::<Result<_, _>>()?;

    // Before any service is built: the breakers register their gauges on construction.
    let watch: &'static BreakerWatch = Box::leak(Box::default());
    metrics::set_global_recorder(watch)
        .map_err(|_| "a metrics recorder is already set".to_owned())?;

    let targets = vec![
        Arc::new(redis_target(&redis).await?),
        Arc::new(memcached_target(&memcached).await?),
    ];
    eprintln!(
        "soak: {}s, {TASKS} tasks per service, redis {} (1 proxy), memcached {} ({} proxies){}",
        args.seconds,
        redis.server,
        args.memcached.join(","),
        memcached.len(),
        if args.no_faults { ", no faults" } else { "" }
    );
    let outcome = drive(&args, &targets, watch).await;
    let failures = report(&args, &targets, watch, &outcome);
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&json_report(&args, &targets, watch, &outcome, &failures))
                .unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("soak: could not write {}: {e}", path.display());
        }
    }
    Ok(failures.is_empty())
}

/// Runs the workload and the faults for `args.seconds`, sampling every second; then stops
/// them, waits for the services to work again and cleans up.
async fn drive(args: &Args, targets: &[Arc<Target>], watch: &BreakerWatch) -> Outcome {
    let run_for = Duration::from_secs(args.seconds);
    now_us();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for (ti, t) in targets.iter().enumerate() {
        for i in 0..TASKS {
            let seed = (ti * TASKS + i) as u64 + 1;
            let leak = args.inject_leak;
            workers.push(tokio::spawn(worker(t.clone(), seed, stop.clone(), leak)));
        }
    }
    let fault_now = Arc::new(FaultNow::default());
    fault_now.set("none".into());
    let faults = (!args.no_faults)
        .then(|| tokio::spawn(fault_schedule(targets.to_vec(), fault_now.clone())));

    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = sample(started, targets, watch, &fault_now);
        let done = s.at >= run_for;
        let ops: Vec<String> = targets
            .iter()
            .zip(&s.ops)
            .zip(&s.breakers)
            .map(|((t, ops), b)| format!("{} {ops} ops ({b})", t.name))
            .collect();
        eprintln!(
            "t={:>4}s rss {:>6.1} MiB  {}  fault: {}",
            s.at.as_secs(),
            mib(s.rss),
            ops.join(", "),
            s.fault
        );
        samples.push(s);
        if done {
            break;
        }
    }
    let elapsed = started.elapsed();

    // The final blackhole, then every worker must end within its calls' bounds.
    if let Some(faults) = faults {
        faults.abort();
    }
    lift(targets);
    let recovered = if args.no_faults {
        vec![Some(Duration::ZERO); targets.len()]
    } else {
        final_blackhole(targets, &fault_now).await
    };
    stop.store(true, Ordering::Relaxed);
    let mut hung = 0;
    let deadline = Instant::now() + STOP_WITHIN;
    for w in workers {
        let abort = w.abort_handle();
        if timeout(deadline.saturating_duration_since(Instant::now()), w)
            .await
            .is_err()
        {
            hung += 1;
            abort.abort();
        }
    }

    // Idle connections settle: broken ones are noticed and closed by the clients.
    sleep(Duration::from_secs(1)).await;
    let ended = targets
        .iter()
        .zip(recovered)
        .map(|(t, recovered)| Ended {
            recovered,
            open: t.proxies.iter().map(FaultProxy::open_connections).sum(),
            accepted: t.proxies.iter().map(FaultProxy::connections_accepted).sum(),
            hit_rate: t.service.metrics().hit_rate,
        })
        .collect();
    let final_sample = sample(started, targets, watch, &fault_now);

    // Clean up: the Redis namespace; memcached's keys expire by their TTLs.
    let cleared = match timeout(Duration::from_secs(30), targets[0].service.clear()).await {
        Ok(Ok(())) => "cleared".to_owned(),
        Ok(Err(e)) => format!("clear failed: {e}"),
        Err(_) => "clear timed out".to_owned(),
    };
    Outcome {
        elapsed,
        samples,
        final_sample,
        ended,
        hung,
        cleared,
    }
}

/// Prints the report on stdout and returns the failed checks.
fn report(args: &Args, targets: &[Arc<Target>], watch: &BreakerWatch, o: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let g = growth(&o.samples, o.elapsed);
    println!();
    println!(
        "soak: {:.0} s, {TASKS} tasks per service, {KEYS} keys (Zipf s=1, renamed every {} s), values 64 B-64 KiB \
         (log-uniform), TTL {}-{} s",
        o.elapsed.as_secs_f64(),
        KEY_GENERATION_US / 1_000_000,
        TTL_SECS.0,
        TTL_SECS.1
    );
    println!(
        "config: command timeout {COMMAND_TIMEOUT:?}, service timeout {SERVICE_TIMEOUT:?}, \
         breaker {}, protection default (local single-flight + distributed lock), \
         memcached pool {MEMCACHED_POOL}/server",
        breaker_summary()
    );
    if args.no_faults {
        println!("faults: none (--no-faults)");
    } else {
        println!(
            "faults: {} ({FAULT_FOR:?} each after {CLEAR_FOR:?} of pass-through) on the redis \
             proxy and one memcached proxy (alternating)",
            SCHEDULE.map(|(n, _)| n).join(", ")
        );
    }
    println!();
    println!(
        "{:<10} {:>9} {:>7} {:>8} {:>9} {:>9} {:>5} {:>5} {:>8} {:>6} {:>11} {:>8}",
        "service",
        "ops",
        "ok/s",
        "errors",
        "cancelled",
        "hit-rate",
        "wrong",
        "opens",
        "worst",
        "back",
        "conns/bound",
        "accepted"
    );
    for (t, e) in targets.iter().zip(&o.ended) {
        let ops = t.stats.ops.load(Ordering::Relaxed);
        let errors = t.stats.error_total.load(Ordering::Relaxed);
        let wrong = t.stats.wrong.load(Ordering::Relaxed);
        println!(
            "{:<10} {:>9} {:>7.0} {:>8} {:>9} {:>8.0}% {:>5} {:>5} {:>6}ms {:>6} {:>11} {:>8}",
            t.name,
            ops,
            per_second(ops.saturating_sub(errors), o.elapsed),
            errors,
            t.stats.cancelled.load(Ordering::Relaxed),
            e.hit_rate * 100.0,
            wrong,
            watch.opens(t.name),
            t.stats.worst_us.load(Ordering::Relaxed) / 1000,
            e.recovered.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.2}s", d.as_secs_f64())
            ),
            format!("{}/{}", e.open, t.connection_bound),
            e.accepted
        );
        if wrong > 0 {
            failures.push(format!(
                "{}: {wrong} values came back under another key: {:?}",
                t.name,
                t.stats
                    .wrong_examples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            ));
        }
        if e.recovered.is_none() {
            failures.push(format!(
                "{}: still failing {RECOVER_WITHIN:?} after the final blackhole was lifted",
                t.name
            ));
        }
        if e.open > t.connection_bound {
            failures.push(format!(
                "{}: {} connections open at rest, over the pools' {}",
                t.name, e.open, t.connection_bound
            ));
        }
    }
    for t in targets {
        let errors = t
            .stats
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "errors {:<10} {}",
            t.name,
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        );
    }
    println!(
        "errors went on after each fault was lifted (worst; \"still failing\": at the end of its \
         {CLEAR_FOR:?} pass-through):"
    );
    for t in targets {
        println!("  {:<10} {}", t.name, recovery_summary(t));
    }
    if o.hung > 0 {
        failures.push(format!(
            "{} worker tasks did not stop within {STOP_WITHIN:?}",
            o.hung
        ));
    }
    println!("redis namespace: {}", o.cleared);
    println!();
    println!(
        "memory: warm-up (0-{}s) max RSS {:.1} MiB, last 20% ({}s-) max {:.1} MiB, final {:.1} MiB, \
         peak (VmHWM) {:.1} MiB",
        g.warmup.as_secs(),
        mib(g.warmup_max),
        g.tail_from.as_secs(),
        mib(g.tail_max),
        mib(o.final_sample.rss),
        mib(o.final_sample.hwm),
    );
    let growth_mib = signed_mib(g.growth);
    match args.max_growth_mib {
        Some(max) => {
            let pass = growth_mib <= max;
            println!(
                "growth after warm-up: {growth_mib:+.1} MiB (limit {max} MiB): {}",
                if pass { "ok" } else { "FAIL" }
            );
            if !pass {
                failures.push(format!(
                    "RSS grew {growth_mib:.1} MiB after warm-up, over the {max} MiB limit"
                ));
            }
        }
        None => println!("growth after warm-up: {growth_mib:+.1} MiB (no limit set)"),
    }
    let step = (o.samples.len() / 10).max(1);
    let timeline: Vec<String> = o
        .samples
        .iter()
        .skip(step - 1)
        .step_by(step)
        .map(|s| format!("{}s {:.1}", s.at.as_secs(), mib(s.rss)))
        .collect();
    println!("RSS timeline (MiB): {}", timeline.join(" | "));
    for f in &failures {
        println!("FAIL: {f}");
    }
    println!(
        "{}",
        if failures.is_empty() {
            "soak: ok"
        } else {
            "soak: FAILED"
        }
    );
    failures
}

/// Per fault of the schedule: the worst time errors went on after it was lifted, and how
/// often the service was still failing when the pass-through ended.
fn recovery_summary(t: &Target) -> String {
    let recoveries = t
        .stats
        .recoveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let parts: Vec<String> = SCHEDULE
        .iter()
        .filter_map(|(name, _)| {
            let of: Vec<Option<Duration>> = recoveries
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, r)| *r)
                .collect();
            if of.is_empty() {
                return None;
            }
            let failing = of.iter().filter(|r| r.is_none()).count();
            let worst = of
                .iter()
                .flatten()
                .max()
                .map_or_else(|| "-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
            Some(if failing > 0 {
                format!("{name} {worst} (still failing {failing}/{})", of.len())
            } else {
                format!("{name} {worst}")
            })
        })
        .collect();
    if parts.is_empty() {
        "no fault lifted".to_owned()
    } else {
        parts.join(", ")
    }
}

fn breaker_summary() -> String {
    let b = breaker();
    format!(
        "{} failures/{:?} -> open {:?}, {} probes, {} to close",
        b.get_failure_threshold(),
        b.get_window(),
        b.get_open_duration(),
        b.get_half_open_probes(),
        b.get_success_threshold()
    )
}

/// The report as JSON, with the whole per-second timeline.
fn json_report(
    args: &Args,
    targets: &[Arc<Target>],
    watch: &BreakerWatch,
    o: &Outcome,
    failures: &[String],
) -> serde_json::Value {
    let g = growth(&o.samples, o.elapsed);
    let services: Vec<serde_json::Value> = targets
        .iter()
        .zip(&o.ended)
        .map(|(t, e)| {
            let ops = t.stats.ops.load(Ordering::Relaxed);
            let errors = t.stats.error_total.load(Ordering::Relaxed);
            json!({
                "name": t.name,
                "ops": ops,
                "ok_per_second": per_second(ops.saturating_sub(errors), o.elapsed),
                "errors": *t.stats.errors.lock().unwrap_or_else(PoisonError::into_inner),
                "cancelled": t.stats.cancelled.load(Ordering::Relaxed),
                "hit_rate": e.hit_rate,
                "wrong_values": t.stats.wrong.load(Ordering::Relaxed),
                "breaker_opens": watch.opens(t.name),
                "worst_call_ms": t.stats.worst_us.load(Ordering::Relaxed) / 1000,
                "final_blackhole_recovered_seconds": e.recovered.map(|d| d.as_secs_f64()),
                "recoveries": t.stats.recoveries.lock().unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(|(fault, after)| json!({
                        "fault": fault,
                        "errors_stopped_after_seconds": after.map(|d| d.as_secs_f64()),
                    }))
                    .collect::<Vec<_>>(),
                "open_connections": e.open,
                "connection_bound": t.connection_bound,
                "connections_accepted": e.accepted,
            })
        })
        .collect();
    let timeline: Vec<serde_json::Value> = o
        .samples
        .iter()
        .map(|s| {
            json!({
                "t": s.at.as_secs_f64(),
                "rss_mib": mib(s.rss),
                "hwm_mib": mib(s.hwm),
                "ops": s.ops,
                "errors": s.errors,
                "breakers": s.breakers,
                "connections": s.connections,
                "fault": s.fault,
            })
        })
        .collect();
    json!({
        "seconds": o.elapsed.as_secs_f64(),
        "tasks_per_service": TASKS,
        "keys": KEYS,
        "config": {
            "command_timeout_ms": COMMAND_TIMEOUT.as_millis(),
            "service_timeout_ms": SERVICE_TIMEOUT.as_millis(),
            "breaker": breaker_summary(),
            "protection": "default: local single-flight + distributed lock",
            "memcached_pool_per_server": MEMCACHED_POOL,
            "faults": if args.no_faults { Vec::new() } else { SCHEDULE.map(|(n, _)| n).to_vec() },
            "fault_seconds": FAULT_FOR.as_secs_f64(),
            "pass_through_seconds": CLEAR_FOR.as_secs_f64(),
            "inject_leak_bytes_per_call": args.inject_leak,
        },
        "services": services,
        "memory": {
            "warmup_seconds": g.warmup.as_secs_f64(),
            "warmup_max_rss_mib": mib(g.warmup_max),
            "tail_from_seconds": g.tail_from.as_secs_f64(),
            "tail_max_rss_mib": mib(g.tail_max),
            "final_rss_mib": mib(o.final_sample.rss),
            "peak_hwm_mib": mib(o.final_sample.hwm),
            "growth_mib": signed_mib(g.growth),
            "max_growth_mib": args.max_growth_mib,
        },
        "hung_workers": o.hung,
        "redis_namespace": o.cleared,
        "failures": failures,
        "ok": failures.is_empty(),
        "timeline": timeline,
    })
}
