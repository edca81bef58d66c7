//! `lexicache bench` end to end, as a user runs it: short runs on every backend, the JSON
//! report, `--compare-raw`, `--stampede`, and the error paths with their exit codes.
//!
//! Redis and memcached runs use the local servers (`cargo xtask services up`), each test under
//! its own `--prefix`; the bench deletes its keys, and on memcached they expire.

use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use lexicache_cli::bench::report::{BenchReport, Percentiles, RunResult};

/// A short workload: fast to run, enough operations to measure.
const SHORT: &[&str] = &["--duration", "300ms", "--warmup", "0", "--keys", "1000"];

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `cargo xtask services up`, then export {var} (or run \
             `cargo xtask test`, which exports it)"
        )
    })
}

fn redis_url() -> String {
    env("LEXICACHE_TEST_REDIS_URL")
}

fn memcached_servers() -> String {
    env("LEXICACHE_TEST_MEMCACHED")
}

/// A key prefix no other test (or run) shares.
fn prefix(test: &str) -> String {
    format!("lexicache-test:bench:{}:{test}:", std::process::id())
}

fn lexicache(args: &[&str]) -> Output {
    Command::cargo_bin("lexicache")
        .expect("the lexicache binary is built")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("the lexicache binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `lexicache {target} bench --format json {args}`, expects exit 0 and parses the report.
fn bench_json(target: &[&str], args: &[&str]) -> BenchReport {
    let mut all: Vec<&str> = target.to_vec();
    all.extend(["bench", "--format", "json"]);
    all.extend(args);
    let out = lexicache(&all);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "lexicache {all:?}\nstdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not a BenchReport ({e}):\n{stdout}"))
}

fn assert_ordered(p: &Percentiles, what: &str) {
    assert!(
        0.0 < p.p50 && p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max,
        "{what}: percentiles out of order: {p:?}"
    );
    assert!(p.mean > 0.0 && p.mean <= p.max, "{what}: mean {p:?}");
}

fn assert_sane(run: &RunResult) {
    assert!(run.ops > 0, "{run:?}");
    assert!(run.throughput > 0.0 && run.elapsed_secs > 0.0, "{run:?}");
    assert!((0.0..=1.0).contains(&run.hit_rate), "{run:?}");
    assert!(run.hits <= run.reads && run.reads <= run.ops, "{run:?}");
    assert_eq!(run.errors, 0, "{run:?}");
    assert_ordered(&run.latency_us, &run.label);
}

/// A short run with `--compare-raw` on `target`: both sides measured, the ratio present.
fn assert_compares_with(target: &[&str], backend: &str, raw_label: &str) {
    let report = bench_json(target, &[SHORT, &["--compare-raw", "--seed", "7"]].concat());
    assert_eq!(report.backend, backend);
    assert_eq!(report.workload.keys, 1000);
    assert_eq!(report.workload.duration_secs, Some(0.3));
    assert_eq!(report.workload.seed, Some(7));
    let ours = report.lexicache.as_ref().expect("the lexicache run");
    assert_eq!(ours.label, "lexicache");
    assert_sane(ours);
    let raw = report.raw.as_ref().expect("the raw run");
    assert!(raw.label.starts_with(raw_label), "{raw:?}");
    assert_sane(raw);
    let ratio = report.ratio.expect("a ratio with --compare-raw");
    assert!(ratio > 0.0 && ratio.is_finite(), "{ratio}");
    assert_eq!(report.ratios.len(), 1, "a 300 ms run compares in one round");
    assert!(report.raw_note.is_some());
    assert!(report.stampede.is_none());
}

#[test]
fn memory_run_reports_throughput_hit_rate_and_ordered_percentiles() {
    let report = bench_json(&[], SHORT);
    assert_eq!(report.backend, "memory");
    assert_sane(report.lexicache.as_ref().expect("the lexicache run"));
    // A Zipf workload over 1,000 keys with cache-aside fills is mostly hits.
    assert!(report.lexicache.as_ref().unwrap().hit_rate > 0.5);
    assert!(report.raw.is_none() && report.ratio.is_none());
}

#[test]
fn memory_compare_raw_runs_moka_beside_lexicache() {
    assert_compares_with(&[], "memory", "moka");
}

#[test]
fn redis_compare_raw_runs_fred_beside_lexicache() {
    let url = redis_url();
    let prefix = prefix("redis");
    assert_compares_with(&["--redis", &url, "--prefix", &prefix], "redis", "fred");
}

#[test]
fn memcached_compare_raw_runs_async_memcached_beside_lexicache() {
    let servers = memcached_servers();
    let prefix = prefix("memcached");
    let target = ["--memcached", &servers, "--prefix", &prefix];
    assert_compares_with(&target, "memcached", "async-memcached");
}

#[test]
fn memcached_entries_get_a_five_minute_ttl_when_none_is_given() {
    let servers = memcached_servers();
    let prefix = prefix("memcached-ttl");
    let target = ["--memcached", &servers, "--prefix", &prefix];
    let report = bench_json(&target, SHORT);
    assert_eq!(report.workload.ttl_secs, Some(300.0));
    let report = bench_json(&target, &[SHORT, &["--ttl", "30s"]].concat());
    assert_eq!(report.workload.ttl_secs, Some(30.0));
}

#[test]
fn tiered_compare_raw_runs_the_l2_driver_without_l1() {
    let url = redis_url();
    let prefix = prefix("tiered");
    let target = ["--redis", &url, "--tiered", "--prefix", &prefix];
    assert_compares_with(&target, "tiered", "fred (L2, no L1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_run_deletes_its_keys_and_only_its_keys() {
    use fred::prelude::{ClientLike, Config, KeysInterface};

    let url = redis_url();
    let prefix = prefix("cleanup");
    let client = fred::clients::Client::new(
        Config::from_url(&url).expect("a redis URL"),
        None,
        None,
        None,
    );
    client.init().await.unwrap_or_else(|e| {
        panic!("redis at {url} is unreachable ({e}): run `cargo xtask services up`")
    });
    // A stray key under the bench's pattern goes; a neighbour outside it stays.
    let stray = format!("{prefix}lexicache-bench:stray");
    let neighbour = format!("{prefix}app:1");
    client
        .set::<(), _, _>(&stray, "x", None, None, false)
        .await
        .unwrap();
    client
        .set::<(), _, _>(&neighbour, "x", None, None, false)
        .await
        .unwrap();

    let target = [
        "--redis".to_owned(),
        url.clone(),
        "--prefix".to_owned(),
        prefix.clone(),
    ];
    let report = tokio::task::spawn_blocking(move || {
        let target: Vec<&str> = target.iter().map(String::as_str).collect();
        bench_json(&target, &[SHORT, &["--compare-raw"]].concat())
    })
    .await
    .unwrap();
    assert!(report.lexicache.unwrap().ops > 0);

    let ours: Vec<String> = (0..1000)
        .map(|i| format!("{prefix}lexicache-bench:{i}"))
        .collect();
    let raw: Vec<String> = (0..1000)
        .map(|i| format!("{prefix}lexicache-bench-raw:{i}"))
        .collect();
    assert_eq!(client.exists::<u64, _>(ours).await.unwrap(), 0);
    assert_eq!(client.exists::<u64, _>(raw).await.unwrap(), 0);
    assert_eq!(client.exists::<u64, _>(&stray).await.unwrap(), 0);
    assert_eq!(client.exists::<u64, _>(&neighbour).await.unwrap(), 1);
    client.del::<u64, _>(&neighbour).await.unwrap();
    client.quit().await.unwrap();
}

#[test]
fn ops_counted_run_measures_that_many_operations() {
    let report = bench_json(
        &[],
        &[
            "--ops",
            "2000",
            "--warmup",
            "0",
            "--keys",
            "100",
            "--concurrency",
            "4",
        ],
    );
    let ours = report.lexicache.expect("the lexicache run");
    assert_eq!(ours.ops, 2000);
    assert_eq!(report.workload.ops, Some(2000));
    assert_eq!(report.workload.duration_secs, None);
}

#[test]
fn write_only_workload_has_no_reads_and_a_zero_hit_rate() {
    let report = bench_json(
        &[],
        &[SHORT, &["--read-ratio", "0", "--zipf", "0"]].concat(),
    );
    let ours = report.lexicache.expect("the lexicache run");
    assert_eq!((ours.reads, ours.hits, ours.hit_rate), (0, 0, 0.0));
    assert!(ours.ops > 0);
}

#[test]
fn stampede_protection_loads_once_per_round_and_unprotected_callers_each_load() {
    let report = bench_json(&[], &["--stampede", "200", "--loader-ms", "50"]);
    assert!(
        report.lexicache.is_none(),
        "--stampede alone skips the workload"
    );
    let s = report.stampede.expect("the stampede report");
    assert_eq!((s.callers, s.rounds, s.loader_ms), (200, 3, 50));
    assert_eq!(s.protected.loader_calls, 3);
    assert!(
        s.unprotected.loader_calls > 3,
        "unprotected: {}",
        s.unprotected.loader_calls
    );
    assert_ordered(&s.protected.latency_ms, "protected");
    assert_ordered(&s.unprotected.latency_ms, "unprotected");
    // Every caller waits for a 50 ms load, its own or the shared one.
    assert!(s.protected.latency_ms.p50 >= 50.0, "{:?}", s.protected);
}

#[test]
fn stampede_on_redis_with_a_workload_reports_both() {
    let url = redis_url();
    let prefix = prefix("stampede");
    let report = bench_json(
        &["--redis", &url, "--prefix", &prefix],
        &[
            SHORT,
            &["--stampede", "50", "--rounds", "2", "--loader-ms", "20"],
        ]
        .concat(),
    );
    assert_sane(
        report
            .lexicache
            .as_ref()
            .expect("--duration runs the workload too"),
    );
    let s = report.stampede.expect("the stampede report");
    // Single-flight within the process, plus the Redis lock: one load per round.
    assert_eq!(s.protected.loader_calls, 2);
    assert!(s.unprotected.loader_calls > 2);
}

#[test]
fn table_output_shows_both_runs_and_the_ratio() {
    let out = lexicache(&[&["bench"], SHORT, &["--compare-raw"]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for expected in [
        "lexicache",
        "moka",
        "ops/s",
        "p99.9 µs",
        "lexicache/raw throughput:",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    // The progress bar never reaches stdout, and stderr is not a terminal here.
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn bad_option_values_are_usage_errors_with_code_2() {
    let cases: &[&[&str]] = &[
        &["--read-ratio", "1.5"],
        &["--read-ratio", "x"],
        &["--zipf=-1"],
        &["--keys", "0"],
        &["--concurrency", "0"],
        &["--duration", "0s"],
        &["--duration", "soon"],
        &["--ops", "0"],
        &["--duration", "1s", "--ops", "10"],
        &["--ttl", "0"],
        &["--value-size", "100000000"],
        &["--stampede", "0"],
        &["--loader-ms", "10"],
        &["--rounds", "2"],
    ];
    for args in cases {
        let out = lexicache(&[&["bench"], *args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "bench {args:?}: {stderr}");
        let option = args[0].split('=').next().unwrap_or_default();
        assert!(stderr.contains(option), "bench {args:?}: {stderr}");
    }
}

#[test]
fn dead_redis_port_fails_fast_with_code_3() {
    let started = Instant::now();
    let out = lexicache(&[
        "--redis",
        "redis://127.0.0.1:1",
        "bench",
        "--duration",
        "5s",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("check that the server is running"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
    // Not a performance assert: a run that did not fail fast would take its 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn help_shows_examples() {
    let out = lexicache(&["bench", "--help"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("lexicache bench --stampede 1000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--compare-raw --concurrency 64"),
        "{stdout}"
    );
}
