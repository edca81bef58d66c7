//! Stampede bench: what protection saves, in loader calls and caller latency.
//!
//! 1. A cold-key stampede: 1,000 concurrent `get_or_set` calls on one cold key whose loader
//!    takes 50 ms, (a) without any protection (`Protection::disabled()`: no single-flight
//!    either), (b) with local single-flight on memory, and on Redis across four service
//!    instances with separate clients (250 callers each), (c) with local single-flight only
//!    and (d) with distributed protection.
//! 2. A hot key expiring under steady load, on Redis: 64 tasks each read it every 5 ms for
//!    5 s; the TTL is 1 s and the loader takes 100 ms. With and without XFetch (beta 1).
//!
//! The last column counts calls that took 20 ms or more: calls that waited for a loader.
//! Each stampede row is the sum (loader calls) and the pooled latencies of 3 rounds. Run with
//! `LEXICACHE_TEST_REDIS_URL=redis://127.0.0.1:6390 cargo bench -p lexicache-service --bench stampede`
//! (after `cargo xtask services up`); docs/benchmarks.md holds the figures.
#![allow(missing_docs, clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lexicache_core::CacheBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::{CacheService, LoadOptions, Protection};
use lexicache_testkit::servers;

const CALLERS: usize = 1000;
const INSTANCES: usize = 4;
const ROUNDS: usize = 3;
const COLD_LOADER: Duration = Duration::from_millis(50);

const HOT_TASKS: usize = 64;
const HOT_EVERY: Duration = Duration::from_millis(5);
const HOT_FOR: Duration = Duration::from_secs(5);
const HOT_TTL: Duration = Duration::from_secs(1);
const HOT_LOADER: Duration = Duration::from_millis(100);

/// Calls at least this slow waited for a loader.
const SLOW: Duration = Duration::from_millis(20);

struct Row {
    name: &'static str,
    calls: usize,
    loads: usize,
    latencies: Vec<Duration>,
}

impl Row {
    fn print(mut self) {
        self.latencies.sort_unstable();
        let q = |q: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        let slow = self.latencies.iter().filter(|l| **l >= SLOW).count();
        println!(
            "| {:<44} | {:>7} | {:>6} | {:>8.2} | {:>8.2} | {:>8.2} | {:>7} |",
            self.name,
            self.calls,
            self.loads,
            q(0.5),
            q(0.99),
            q(1.0),
            slow
        );
    }
}

fn header(title: &str) {
    println!("\n{title}\n");
    println!(
        "| {:<44} | {:>7} | {:>6} | {:>8} | {:>8} | {:>8} | {:>7} |",
        "scenario", "calls", "loads", "p50 ms", "p99 ms", "max ms", "≥ 20 ms"
    );
    println!(
        "|{:-<46}|{:->9}|{:->8}|{:->10}|{:->10}|{:->10}|{:->9}|",
        "", "", "", "", "", "", ""
    );
}

async fn redis(prefix: &str) -> RedisBackend {
    let url = servers::redis_url();
    RedisBackend::builder()
        .url(&url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START))
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("lexicache-bench:stampede:{}-{nanos}:", std::process::id())
}

/// `CALLERS` concurrent cold loads of `key`, spread over `services`, timing each call.
async fn stampede(services: &[CacheService], key: &str, loads: &Arc<AtomicUsize>) -> Vec<Duration> {
    let per = CALLERS / services.len();
    let mut tasks = Vec::with_capacity(CALLERS);
    for service in services {
        for _ in 0..per {
            let (service, loads, key) = (service.clone(), loads.clone(), key.to_owned());
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let v = service
                    .get_or_set(&key, Some(Duration::from_secs(60)), || async move {
                        loads.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(COLD_LOADER).await;
                        Ok::<_, std::io::Error>(42u64)
                    })
                    .await
                    .expect("a load");
                assert_eq!(v, 42);
                started.elapsed()
            }));
        }
    }
    let mut latencies = Vec::with_capacity(CALLERS);
    for task in tasks {
        latencies.push(task.await.expect("a caller"));
    }
    latencies
}

async fn cold_row<F, Fut>(name: &'static str, mut services: F) -> Row
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<CacheService>>,
{
    let loads = Arc::new(AtomicUsize::new(0));
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let services = services(round).await;
        latencies.extend(stampede(&services, "report", &loads).await);
        services[0].delete("report").await;
    }
    Row {
        name,
        calls: CALLERS * ROUNDS,
        loads: loads.load(Ordering::Relaxed),
        latencies,
    }
}

async fn redis_instances(prefix: &str, protection: Protection) -> Vec<CacheService> {
    let mut services = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let backend = redis(prefix).await;
        services.push(
            CacheService::builder(backend)
                .name(format!("instance-{i}"))
                .protection(protection.clone())
                .build(),
        );
    }
    services
}

/// A hot key under steady load for `HOT_FOR`, its loader 100 ms, its TTL 1 s.
async fn hot_row(name: &'static str, service: CacheService, options: LoadOptions) -> Row {
    let loads = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + HOT_FOR;
    let tasks: Vec<_> = (0..HOT_TASKS)
        .map(|_| {
            let (service, loads, options) = (service.clone(), loads.clone(), options.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut tick = tokio::time::interval(HOT_EVERY);
                while Instant::now() < until {
                    tick.tick().await;
                    let loads = loads.clone();
                    let started = Instant::now();
                    service
                        .get_or_set_with("hot", options.clone(), move || async move {
                            loads.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(HOT_LOADER).await;
                            Ok::<_, std::io::Error>(7u64)
                        })
                        .await
                        .expect("a load");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a reader"));
    }
    Row {
        name,
        calls: latencies.len(),
        loads: loads.load(Ordering::Relaxed),
        latencies,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let prefix = run_id();
        header(&format!(
            "Cold-key stampede: {CALLERS} concurrent get_or_set, loader {COLD_LOADER:?}, {ROUNDS} rounds"
        ));
        cold_row("(a) memory, no protection", |_| async {
            vec![CacheService::memory().protection(Protection::disabled()).build()]
        })
        .await
        .print();
        cold_row("(b) memory, local single-flight", |_| async {
            vec![CacheService::memory().build()]
        })
        .await
        .print();
        cold_row("(a') redis x4 instances, no protection", |_| {
            redis_instances(&prefix, Protection::disabled())
        })
        .await
        .print();
        cold_row("(b') redis x4 instances, local single-flight", |_| {
            redis_instances(&prefix, Protection::local())
        })
        .await
        .print();
        cold_row("(c) redis x4 instances, distributed lock", |_| {
            redis_instances(&prefix, Protection::new())
        })
        .await
        .print();

        header(&format!(
            "Hot key under steady load on Redis: {HOT_TASKS} readers every {HOT_EVERY:?} for {HOT_FOR:?}, TTL {HOT_TTL:?}, loader {HOT_LOADER:?}"
        ));
        let plain = CacheService::builder(redis(&format!("{prefix}plain:")).await).build();
        hot_row("(d) without XFetch", plain, LoadOptions::new().ttl(HOT_TTL))
            .await
            .print();
        let xfetch = CacheService::builder(redis(&format!("{prefix}xfetch:")).await).build();
        hot_row(
            "(d) with XFetch, beta 1",
            xfetch,
            LoadOptions::new().ttl(HOT_TTL).xfetch(1.0),
        )
        .await
        .print();

        redis(&prefix).await.clear().await.expect("removing the bench's keys");
    });
}
