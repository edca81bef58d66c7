//! The distributed stampede test: four OS processes, 250 concurrent `get_or_set` calls each, one
//! cold key on the shared Redis (`LEXICACHE_TEST_REDIS_URL`). The loader counts its runs with
//! `INCR` in Redis and takes 150 ms; when every worker has exited cleanly, the count must be
//! exactly 1.
//!
//! This binary has no libtest harness (`harness = false`): run without the worker variable it is
//! the test and re-executes itself four times with [`WORKER`] set, which makes it a worker. A
//! unique key prefix per run keeps concurrent runs apart; everything under it is removed at the
//! end. The workers wait for a common start time after connecting, so their first calls land
//! together.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lexicache_core::CacheBackend;
use lexicache_redis::fred::interfaces::KeysInterface;
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use lexicache_testkit::servers;

/// Set in workers to `<prefix>|<start at, Unix ms>`.
const WORKER: &str = "LEXICACHE_STAMPEDE_WORKER";
const PROCESSES: usize = 4;
const CALLERS: usize = 250;
const LOADER_TIME: Duration = Duration::from_millis(150);
/// Long enough for every worker to start and connect before the common start time.
const START_DELAY: Duration = Duration::from_millis(2000);
const WORKER_DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        println!("stampede_processes: test");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match std::env::var(WORKER) {
        Ok(spec) => runtime.block_on(worker(&spec)),
        Err(_) => {
            runtime.block_on(four_processes_stampeding_one_cold_key_run_the_loader_once());
            println!("test four_processes_stampeding_one_cold_key_run_the_loader_once ... ok");
            ExitCode::SUCCESS
        }
    }
}

async fn connect(prefix: &str) -> RedisBackend {
    let url = servers::redis_url();
    RedisBackend::builder()
        .url(&url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START))
}

fn unix_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_millis()).unwrap()
}

async fn four_processes_stampeding_one_cold_key_run_the_loader_once() {
    let prefix = format!(
        "lexicache-test:stampede:{}-{}:",
        std::process::id(),
        unix_ms()
    );
    let backend = connect(&prefix).await;
    let start_at = unix_ms() + u64::try_from(START_DELAY.as_millis()).unwrap();
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut workers: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .env(WORKER, format!("{prefix}|{start_at}"))
                .spawn()
                .expect("a worker process")
        })
        .collect();

    let deadline = std::time::Instant::now() + WORKER_DEADLINE;
    let mut failures = Vec::new();
    for (i, worker) in workers.iter_mut().enumerate() {
        let status = loop {
            if let Some(status) = worker.try_wait().expect("a worker's status") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = worker.kill();
                let _ = worker.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match status {
            Some(status) if status.success() => {}
            Some(status) => failures.push(format!("worker {i} exited with {status}")),
            None => failures.push(format!("worker {i} ran past {WORKER_DEADLINE:?}")),
        }
    }

    let loads: Option<i64> = backend
        .client()
        .get(format!("{prefix}loads"))
        .await
        .expect("reading the load counter");
    let cache = CacheService::builder(backend.clone()).build();
    let stored = cache.get::<i64>("report").await;
    backend.clear().await.expect("removing the run's keys");

    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        loads,
        Some(1),
        "the loader ran once across {PROCESSES} processes"
    );
    assert_eq!(stored, Some(1));
}

/// One process: `CALLERS` concurrent loads of one cold key through its own client.
async fn worker(spec: &str) -> ExitCode {
    let (prefix, start_at) = spec.rsplit_once('|').expect("prefix|start");
    let start_at: u64 = start_at.parse().expect("a start time");
    let backend = connect(prefix).await;
    let cache = CacheService::builder(backend.clone()).build();
    let counter = Arc::new(format!("{prefix}loads"));

    let wait = start_at.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, backend, counter) = (cache.clone(), backend.clone(), counter.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("report", Some(Duration::from_secs(60)), || async move {
                        let n: i64 = backend.client().incr(counter.as_str()).await?;
                        tokio::time::sleep(LOADER_TIME).await;
                        Ok::<_, lexicache_redis::fred::error::Error>(n)
                    })
                    .await
            })
        })
        .collect();
    let mut bad = 0;
    for call in calls {
        match call.await {
            Ok(Ok(1)) => {}
            Ok(Ok(n)) => {
                eprintln!("worker {}: got load #{n}", std::process::id());
                bad += 1;
            }
            Ok(Err(e)) => {
                eprintln!("worker {}: {e}", std::process::id());
                bad += 1;
            }
            Err(e) => {
                eprintln!("worker {}: task failed: {e}", std::process::id());
                bad += 1;
            }
        }
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
