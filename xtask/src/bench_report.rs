//! `cargo xtask bench-report [--quick] [--with-slow] [--only SECTION,...]`: runs the project's
//! benchmarks on this machine and regenerates docs/benchmarks.md and the charts in docs/bench/.
//!
//! Every figure of the document lives between `<!-- bench-report:begin NAME -->` and
//! `<!-- bench-report:end NAME -->`; the prose around the blocks is kept as written. A section
//! that is not run (`--only`, or the slow semantic index without `--with-slow`) keeps its old
//! block, and so does a section whose benchmark fails: the failures are listed at the end and
//! make the command exit nonzero after the document is written.

mod chart;
mod markers;
mod parse;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::{cargo, services, target_dir, workspace_root, Failure, Result};

use parse::{BenchRun, Paired, StampedeRun};

/// The backends of the throughput section, with the target flags that select them.
const BACKENDS: [&str; 4] = ["memory", "redis", "memcached", "tiered"];
/// Concurrent tasks of the throughput and redis-benchmark sections.
const CONCURRENCY: [u64; 4] = [1, 4, 16, 64];
/// The concurrency the latency chart shows.
const LATENCY_CHART_AT: u64 = 16;
/// The workload of the throughput section (besides concurrency and duration).
const WORKLOAD: [&str; 8] = [
    "--keys",
    "100000",
    "--zipf",
    "1.0",
    "--read-ratio",
    "0.9",
    "--value-size",
    "100",
];
/// Keys of the throughput section live under this prefix on the shared servers.
const PREFIX: &str = "lexicache-bench-report:";
/// The Redis database redis-benchmark writes its `key:*` keys to (and empties of them after),
/// away from the database the tests share.
const REDIS_BENCHMARK_DB: &str = "9";
/// The standalone Redis of `cargo xtask services up`.
const REDIS_HOST: &str = "127.0.0.1";
const REDIS_PORT: &str = "6390";

/// A section of the report: one block of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Throughput,
    RedisBenchmark,
    CliStampede,
    HotPath,
    Redis,
    Memcached,
    Codecs,
    Stampede,
    Breaker,
    SemanticStore,
    SemanticIndex,
    TieredHotKey,
    TieredInvalidation,
}

impl Section {
    const ALL: [Section; 13] = [
        Section::Throughput,
        Section::RedisBenchmark,
        Section::CliStampede,
        Section::HotPath,
        Section::Redis,
        Section::Memcached,
        Section::Codecs,
        Section::Stampede,
        Section::Breaker,
        Section::SemanticStore,
        Section::SemanticIndex,
        Section::TieredHotKey,
        Section::TieredInvalidation,
    ];

    /// The name of its block, and of its `--only` value.
    fn name(self) -> &'static str {
        match self {
            Section::Throughput => "throughput",
            Section::RedisBenchmark => "redis-benchmark",
            Section::CliStampede => "cli-stampede",
            Section::HotPath => "hot-path",
            Section::Redis => "redis",
            Section::Memcached => "memcached",
            Section::Codecs => "codecs",
            Section::Stampede => "stampede",
            Section::Breaker => "breaker",
            Section::SemanticStore => "semantic-store",
            Section::SemanticIndex => "semantic-index",
            Section::TieredHotKey => "tiered-hot-key",
            Section::TieredInvalidation => "tiered-invalidation",
        }
    }

    /// The package whose criterion or custom bench the section runs, if any.
    fn package(self) -> Option<&'static str> {
        match self {
            Section::Throughput | Section::RedisBenchmark | Section::CliStampede => None,
            Section::HotPath | Section::Stampede | Section::Breaker => Some("lexicache-service"),
            Section::Redis => Some("lexicache-redis"),
            Section::Memcached => Some("lexicache-memcached"),
            Section::Codecs => Some("lexicache-serde"),
            Section::SemanticStore | Section::SemanticIndex => Some("lexicache-semantic"),
            Section::TieredHotKey | Section::TieredInvalidation => Some("lexicache-tiered"),
        }
    }

    fn parse(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The command line of `bench-report`.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    quick: bool,
    with_slow: bool,
    /// The sections to run, in report order.
    sections: Vec<Section>,
}

fn section_names() -> String {
    Section::ALL.map(Section::name).join(", ")
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut quick = false;
    let mut with_slow = false;
    let mut only: Option<Vec<Section>> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let list = match arg.as_str() {
            "--quick" => {
                quick = true;
                continue;
            }
            "--with-slow" => {
                with_slow = true;
                continue;
            }
            "--only" => args
                .next()
                .ok_or_else(|| format!("--only needs a list of sections: {}", section_names()))?
                .as_str(),
            other => match other.strip_prefix("--only=") {
                Some(list) => list,
                None => {
                    return Err(format!(
                        "bench-report: unknown argument `{other}` (takes --quick, --with-slow, --only SECTION,...)"
                    ))
                }
            },
        };
        let mut chosen = only.take().unwrap_or_default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            chosen.push(Section::parse(name).ok_or_else(|| {
                format!(
                    "--only: unknown section `{name}`; the sections are: {}",
                    section_names()
                )
            })?);
        }
        only = Some(chosen);
    }
    let mut sections: Vec<Section> = match only {
        // Named explicitly, the slow section runs without --with-slow too.
        Some(list) => list,
        None => Section::ALL
            .into_iter()
            .filter(|s| *s != Section::SemanticIndex || with_slow)
            .collect(),
    };
    sections.sort();
    sections.dedup();
    if sections.is_empty() {
        return Err(format!("--only needs at least one of: {}", section_names()));
    }
    Ok(Options {
        quick,
        with_slow,
        sections,
    })
}

/// `cargo xtask bench-report ARGS`.
pub(crate) fn bench_report(args: &[String]) -> Result {
    let options = parse_options(args).map_err(|e| Failure::with_code(e, 2))?;
    let command = std::iter::once("cargo xtask bench-report".to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let doc_path = workspace_root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&doc_path)
        .map_err(|e| Failure::new(format!("reading {}: {e}", doc_path.display())))?;
    // Fail on broken markers before spending minutes on benchmarks.
    let names = markers::block_names(&doc)
        .map_err(|e| Failure::new(format!("{}: {e}", doc_path.display())))?;
    for block in ["summary", "machine"]
        .into_iter()
        .chain(options.sections.iter().map(|s| s.name()))
    {
        if !names.iter().any(|n| n == block) {
            return Err(Failure::new(format!(
                "{}: {}",
                doc_path.display(),
                markers::MarkerError::Missing {
                    name: block.to_owned()
                }
            )));
        }
    }

    let started = Instant::now();
    let load_start = load_average();
    progress("services up");
    let env = services::up()?;
    let mut run = Run {
        options: options.clone(),
        env,
        blocks: BTreeMap::new(),
        failures: Vec::new(),
        throughput: Vec::new(),
        packages: Vec::new(),
    };
    // Everything is built first, in one cargo run per profile, so the sections time
    // benchmarks rather than compilers and the summary can say which is which.
    let building = Instant::now();
    progress("cargo build --release -p lexicache-cli");
    let mut build = cargo();
    build.args(["build", "--release", "-p", "lexicache-cli"]);
    run.status("cargo build --release -p lexicache-cli", &mut build)?;
    let mut packages: Vec<&str> = options
        .sections
        .iter()
        .filter_map(|s| s.package())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    run.packages = packages.iter().map(|p| (*p).to_owned()).collect();
    if !packages.is_empty() {
        let title = format!(
            "cargo bench --no-run --benches -p {}",
            packages.join(" -p ")
        );
        progress(&title);
        let mut build = cargo();
        build.args(["bench", "--no-run", "--benches"]);
        for p in &packages {
            build.args(["-p", p]);
        }
        run.status(&title, &mut build)?;
    }
    let build_time = building.elapsed();

    for section in &options.sections {
        progress(section.name());
        let section_started = Instant::now();
        match run.section(*section) {
            Ok(block) => {
                let took = format_duration(section_started.elapsed());
                eprintln!("    {} done in {took}", section.name());
                run.blocks.insert(section.name().to_owned(), block);
            }
            Err(e) => {
                eprintln!("xtask: section {} failed: {e}", section.name());
                run.failures.push(format!("{}: {e}", section.name()));
            }
        }
    }

    progress("machine");
    let machine = machine_block(&load_start, &load_average());
    run.blocks.insert("machine".to_owned(), machine);
    let runtime = started.elapsed();
    run.blocks.insert(
        "summary".to_owned(),
        summary_block(&command, &options, runtime, build_time),
    );

    let new_doc = markers::replace_blocks(&doc, &run.blocks)
        .map_err(|e| Failure::new(format!("{}: {e}", doc_path.display())))?;
    std::fs::write(&doc_path, new_doc)
        .map_err(|e| Failure::new(format!("writing {}: {e}", doc_path.display())))?;
    eprintln!(
        "\n==> wrote {} in {}",
        doc_path.display(),
        format_duration(runtime)
    );
    if run.failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{} section(s) failed and kept their old blocks:\n  {}",
            run.failures.len(),
            run.failures.join("\n  ")
        )))
    }
}

fn progress(what: &str) {
    eprintln!("\n==> {what}");
}

/// The state of one report run.
struct Run {
    options: Options,
    /// The servers' variables, passed to every child.
    env: Vec<(&'static str, String)>,
    /// The regenerated blocks by name.
    blocks: BTreeMap<String, String>,
    failures: Vec<String>,
    /// The throughput section's runs, which the redis-benchmark section compares with.
    throughput: Vec<BenchRun>,
    /// The packages built up front. Every `cargo bench` names all of them, so cargo resolves
    /// the same features as the up-front build and reuses it instead of rebuilding shared
    /// crates with another feature set for each section.
    packages: Vec<String>,
}

impl Run {
    fn section(&mut self, section: Section) -> Result<String, String> {
        match section {
            Section::Throughput => self.throughput_section(),
            Section::RedisBenchmark => self.redis_benchmark_section(),
            Section::CliStampede => self.cli_stampede_section(),
            Section::HotPath => self.hot_path_section(),
            Section::Redis => {
                self.paired_section("lexicache-redis", "redis", "service", "raw fred")
            }
            Section::Memcached => self.paired_section(
                "lexicache-memcached",
                "memcached",
                "lexicache",
                "raw async-memcached",
            ),
            Section::Codecs => self.codecs_section(),
            Section::Stampede => self.stdout_section("lexicache-service", "stampede"),
            Section::Breaker => self.breaker_section(),
            Section::SemanticStore => self.semantic_store_section(),
            Section::SemanticIndex => self.semantic_index_section(),
            Section::TieredHotKey => self.tiered_hot_key_section(),
            Section::TieredInvalidation => self.stdout_section("lexicache-tiered", "invalidation"),
        }
    }

    /// Runs `cmd` with the servers' environment, output inherited.
    fn status(&self, title: &str, cmd: &mut Command) -> Result {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        crate::run_status(title, cmd)
    }

    /// Runs `cmd` with the servers' environment and returns its stdout and stderr, echoing
    /// both to our stderr as they come (criterion's progress, the bench's own lines).
    fn capture(&self, title: &str, cmd: &mut Command, echo_stdout: bool) -> Result<Output, String> {
        eprintln!("    $ {title}");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{title}: could not start: {e}"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let err_thread = std::thread::spawn(move || tee(stderr, true));
        let stdout = tee(child.stdout.take().expect("stdout is piped"), echo_stdout);
        let stderr = err_thread.join().unwrap_or_default();
        let status = child.wait().map_err(|e| format!("{title}: {e}"))?;
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(format!(
                "`{title}` failed ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        Ok(Output { stdout, stderr })
    }

    /// Criterion's flags for this run.
    fn criterion_args(&self) -> [&'static str; 4] {
        if self.options.quick {
            ["--warm-up-time", "1", "--measurement-time", "2"]
        } else {
            ["--warm-up-time", "2", "--measurement-time", "3"]
        }
    }

    /// `cargo bench -p PACKAGE --bench BENCH -- ARGS` with `env`, captured; returns the output
    /// and the command line to show.
    fn cargo_bench(
        &self,
        package: &str,
        bench: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Output, String), String> {
        let mut cmd = cargo();
        cmd.arg("bench");
        if self.packages.iter().any(|p| p == package) {
            for p in &self.packages {
                cmd.args(["-p", p]);
            }
        } else {
            cmd.args(["-p", package]);
        }
        cmd.args(["--bench", bench]);
        if !args.is_empty() {
            cmd.arg("--").args(args);
        }
        cmd.envs(env.iter().copied());
        let mut shown = String::new();
        for (k, v) in env {
            let _ = write!(shown, "{k}={v} ");
        }
        let _ = write!(shown, "cargo bench -p {package} --bench {bench}");
        if !args.is_empty() {
            let _ = write!(shown, " -- {}", args.join(" "));
        }
        let output = self.capture(&shown, &mut cmd, true)?;
        Ok((output, shown))
    }

    /// The release `lexicache` binary with `target` flags, then `bench ARGS`, captured.
    fn lexicache_bench(&self, target: &[String], args: &[&str]) -> Result<String, String> {
        let bin = target_dir().join("release").join("lexicache");
        let mut cmd = Command::new(&bin);
        cmd.current_dir(workspace_root())
            .args(target)
            .arg("bench")
            .args(args);
        let shown = format!("lexicache {} bench {}", target.join(" "), args.join(" "));
        Ok(self.capture(&shown, &mut cmd, false)?.stdout)
    }

    /// The target flags of `backend` (the memory backend has none).
    fn target(&self, backend: &str) -> Vec<String> {
        let var = |name: &str| {
            self.env
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let redis = var("LEXICACHE_TEST_REDIS_URL");
        let mut flags: Vec<String> = match backend {
            "redis" => vec!["--redis".into(), redis],
            "tiered" => vec!["--redis".into(), redis, "--tiered".into()],
            "memcached" => vec!["--memcached".into(), var("LEXICACHE_TEST_MEMCACHED")],
            _ => Vec::new(),
        };
        if backend != "memory" {
            flags.extend(["--prefix".into(), format!("{PREFIX}{backend}:")]);
        }
        flags
    }

    fn timing(&self) -> (&'static str, &'static str) {
        if self.options.quick {
            ("2s", "1s")
        } else {
            ("5s", "2s")
        }
    }

    /// One throughput run of `backend` at `concurrency`.
    fn throughput_run(&self, backend: &str, concurrency: u64) -> Result<BenchRun, String> {
        let (duration, warmup) = self.timing();
        let concurrency_arg = concurrency.to_string();
        let mut args = vec!["--format", "json", "--compare-raw"];
        args.extend(WORKLOAD);
        args.extend([
            "--concurrency",
            &concurrency_arg,
            "--duration",
            duration,
            "--warmup",
            warmup,
        ]);
        let json = self.lexicache_bench(&self.target(backend), &args)?;
        let run = parse::bench_run(&json)?;
        eprintln!(
            "    {backend} x{concurrency}: {:.0} ops/s lexicache, {} raw",
            run.lexicache.throughput,
            run.raw
                .as_ref()
                .map_or("-".to_owned(), |r| format!("{:.0} ops/s", r.throughput))
        );
        Ok(run)
    }

    fn throughput_command(&self) -> String {
        let (duration, warmup) = self.timing();
        format!(
            "lexicache [TARGET] bench --format json --compare-raw {} --concurrency C --duration {duration} --warmup {warmup}",
            WORKLOAD.join(" ")
        )
    }

    fn throughput_section(&mut self) -> Result<String, String> {
        let mut runs = Vec::new();
        for backend in BACKENDS {
            for concurrency in CONCURRENCY {
                runs.push(self.throughput_run(backend, concurrency)?);
            }
        }
        self.throughput = runs;
        let mut out = self.header(&[
            self.throughput_command(),
            "TARGET: none (memory), `--redis redis://127.0.0.1:6390`, `--memcached 127.0.0.1:11290,127.0.0.1:11291`, `--redis redis://127.0.0.1:6390 --tiered`; each with `--prefix lexicache-bench-report:BACKEND:` except memory".to_owned(),
        ]);
        out.push_str(&throughput_tables(&self.throughput));
        let dir = workspace_root().join("docs/bench");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let (through, latency) = chart_series(&self.throughput, LATENCY_CHART_AT);
        chart::throughput_by_concurrency(
            &dir.join("throughput-by-concurrency.svg"),
            "Throughput by concurrency (solid: lexicache, dashed: raw driver)",
            &through,
        )?;
        chart::latency_percentiles(
            &dir.join("latency-percentiles.svg"),
            &format!(
                "Latency percentiles at {LATENCY_CHART_AT} tasks (solid: lexicache, dashed: raw driver)"
            ),
            &latency,
        )?;
        out.push_str(
            "\n![Throughput by concurrency](bench/throughput-by-concurrency.svg)\n\n\
             ![Latency percentiles](bench/latency-percentiles.svg)\n",
        );
        Ok(out)
    }

    fn redis_benchmark_section(&mut self) -> Result<String, String> {
        let requests = if self.options.quick {
            "40000"
        } else {
            "100000"
        };
        let mut rows = Vec::new();
        for concurrency in CONCURRENCY {
            let c = concurrency.to_string();
            let args = [
                "-h",
                REDIS_HOST,
                "-p",
                REDIS_PORT,
                "--dbnum",
                REDIS_BENCHMARK_DB,
                "-t",
                "get,set",
                "-n",
                requests,
                "-c",
                &c,
                "-d",
                "100",
                "-r",
                "100000",
                "--csv",
            ];
            let mut cmd = Command::new("redis-benchmark");
            cmd.args(args);
            let out = self.capture(
                &format!("redis-benchmark {}", args.join(" ")),
                &mut cmd,
                true,
            );
            let cleaned = self.clean_redis_benchmark_keys();
            let csv = parse::redis_benchmark_csv(&out?.stdout)?;
            cleaned?;
            let rps = |test: &str| csv.iter().find(|r| r.test == test).map(|r| r.rps);
            let lexicache = match self
                .throughput
                .iter()
                .find(|r| r.backend == "redis" && r.concurrency == concurrency)
            {
                Some(run) => run.clone(),
                None => self.throughput_run("redis", concurrency)?,
            };
            rows.push((
                concurrency,
                rps("GET").unwrap_or(f64::NAN),
                rps("SET").unwrap_or(f64::NAN),
                lexicache,
            ));
        }
        let mut out = self.header(&[
            format!(
                "redis-benchmark -h {REDIS_HOST} -p {REDIS_PORT} --dbnum {REDIS_BENCHMARK_DB} -t get,set -n {requests} -c C -d 100 -r 100000 --csv"
            ),
            format!("{} (TARGET `--redis redis://127.0.0.1:6390`)", self.throughput_command()),
        ]);
        out.push_str(
            "| tasks | redis-benchmark GET | redis-benchmark SET | 90/10 blend | lexicache | raw fred | lexicache ÷ blend | raw fred ÷ blend |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (c, get, set, run) in rows {
            // The rate of a 90% GET, 10% SET mix at redis-benchmark's per-command rates.
            let blend = 1.0 / (0.9 / get + 0.1 / set);
            let ours = run.lexicache.throughput;
            let raw = run.raw.as_ref().map_or(f64::NAN, |r| r.throughput);
            let _ = writeln!(
                out,
                "| {c} | {} | {} | {} | {} | {} | {} | {} |",
                ops(get),
                ops(set),
                ops(blend),
                ops(ours),
                ops(raw),
                ratio(ours / blend),
                ratio(raw / blend)
            );
        }
        Ok(out)
    }

    /// Deletes the `key:*` keys redis-benchmark left in its database.
    fn clean_redis_benchmark_keys(&self) -> Result<(), String> {
        let redis_cli = |args: &[&str]| -> Result<String, String> {
            let out = Command::new("redis-cli")
                .args(["-h", REDIS_HOST, "-p", REDIS_PORT, "-n", REDIS_BENCHMARK_DB])
                .args(args)
                .output()
                .map_err(|e| format!("redis-cli: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "redis-cli {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let keys = redis_cli(&["--scan", "--pattern", "key:*"])?;
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        for chunk in keys.chunks(1000) {
            let mut args = vec!["UNLINK"];
            args.extend(chunk);
            redis_cli(&args)?;
        }
        Ok(())
    }

    fn cli_stampede_section(&mut self) -> Result<String, String> {
        let args = ["--stampede", "1000", "--format", "json"];
        let mut runs: Vec<StampedeRun> = Vec::new();
        for backend in ["memory", "redis"] {
            let json = self.lexicache_bench(&self.target(backend), &args)?;
            runs.push(parse::stampede_run(&json)?);
        }
        let mut out = self.header(&[
            "lexicache bench --stampede 1000 --format json".to_owned(),
            "lexicache --redis redis://127.0.0.1:6390 --prefix lexicache-bench-report:redis: bench --stampede 1000 --format json".to_owned(),
        ]);
        if let Some(first) = runs.first() {
            let _ = writeln!(
                out,
                "{} concurrent callers of one cold key, a {} ms loader, {} rounds (totals):\n",
                first.callers, first.loader_ms, first.rounds
            );
        }
        out.push_str(
            "| backend | protection | loader calls | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for run in &runs {
            for (name, side) in [("none", &run.unprotected), ("`get_or_set`", &run.protected)] {
                let l = side.latency_ms;
                let _ = writeln!(
                    out,
                    "| {} | {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                    run.backend, side.loader_calls, l.p50, l.p90, l.p99, l.p999, side.max_ms
                );
            }
        }
        Ok(out)
    }

    /// The mean of a criterion row measured by this run (older estimates do not count).
    fn mean(&self, since: SystemTime, group: &str, id: &str) -> Option<f64> {
        let dir = target_dir().join("criterion").join(group).join(id);
        let modified = std::fs::metadata(dir.join("new").join("estimates.json"))
            .and_then(|m| m.modified())
            .ok()?;
        if modified < since {
            return None;
        }
        parse::criterion_mean_ns(&dir)
    }

    fn hot_path_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let args = self.criterion_args();
        let (_, shown) = self.cargo_bench("lexicache-service", "hot_path", &args, &[])?;
        let rows = [
            "a_raw_moka_future_get",
            "b_service_get_arc",
            "c_service_get_clone",
            "d_bytes_decode_json",
            "e_bytes_decode_json_no_metrics",
            "f_service_get_arc_no_metrics",
            "g_memory_get_entry_dyn",
            "h_raw_moka_sync_get",
            "i_raw_moka_future_get_owned",
        ];
        let base = self
            .mean(since, "hot_path", rows[0])
            .ok_or("no fresh criterion estimate for hot_path/a_raw_moka_future_get")?;
        let mut out = self.header(&[shown]);
        out.push_str("| row | mean | throughput vs a |\n|---|---:|---:|\n");
        for row in rows {
            if let Some(ns) = self.mean(since, "hot_path", row) {
                let _ = writeln!(
                    out,
                    "| `{row}` | {} | {:.0}% |",
                    nanos(ns),
                    100.0 * base / ns
                );
            }
        }
        let mut ratios: Vec<f64> = (1..)
            .map_while(|round| {
                let a = self.mean(
                    since,
                    "hot_path_pairs",
                    &format!("a_raw_moka_future_get_{round}"),
                )?;
                let b = self.mean(
                    since,
                    "hot_path_pairs",
                    &format!("b_service_get_arc_{round}"),
                )?;
                Some(a / b)
            })
            .collect();
        if !ratios.is_empty() {
            let shown: Vec<String> = ratios
                .iter()
                .map(|r| format!("{:.0}%", r * 100.0))
                .collect();
            ratios.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "\nInterleaved pairs (`hot_path_pairs`), row b's throughput against row a's: {} \
                 (median **{:.0}%**).",
                shown.join(", "),
                median(&ratios) * 100.0
            );
        }
        Ok(out)
    }

    /// A backend bench's paired lines as a table (`LEXICACHE_BENCH_PAIRED_ONLY=1`: the criterion
    /// rows are not read by the report).
    fn paired_section(
        &mut self,
        package: &str,
        bench: &str,
        ours: &str,
        raw: &str,
    ) -> Result<String, String> {
        let (output, shown) =
            self.cargo_bench(package, bench, &[], &[("LEXICACHE_BENCH_PAIRED_ONLY", "1")])?;
        let pairs = parse::paired_lines(&output.stdout);
        if pairs.is_empty() {
            return Err(format!("`{shown}` printed no `paired` lines"));
        }
        let mut out = self.header(&[shown]);
        out.push_str(&paired_table(&pairs, ours, raw));
        Ok(out)
    }

    fn codecs_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let args = self.criterion_args();
        let (output, shown) = self.cargo_bench("lexicache-serde", "codecs", &args, &[])?;
        let stacks = [
            "bare_json_no_envelope",
            "core_json_no_envelope",
            "json",
            "postcard",
            "zstd_json",
            "zstd_postcard",
            "signed_json",
            "signed_postcard",
            "signed_zstd_json",
            "signed_zstd_postcard",
            "aesgcm_json",
            "aesgcm_postcard",
            "aesgcm_zstd_json",
            "aesgcm_zstd_postcard",
            "chacha_postcard",
        ];
        let mut out = self.header(&[shown]);
        for line in output.stderr.lines() {
            if line.contains("bytes as JSON") {
                let _ = writeln!(out, "- {}", line.trim());
            }
        }
        out.push_str("\nMean time of one encode + decode round trip:\n\n");
        out.push_str("| stack | `record_1k` | `document_10k` |\n|---|---:|---:|\n");
        let mut any = false;
        for stack in stacks {
            let record = self.mean(since, "record_1k", stack);
            let document = self.mean(since, "document_10k", stack);
            if record.is_none() && document.is_none() {
                continue;
            }
            any = true;
            let show = |v: Option<f64>| v.map_or("–".to_owned(), nanos);
            let _ = writeln!(out, "| `{stack}` | {} | {} |", show(record), show(document));
        }
        if !any {
            return Err("no fresh criterion estimates under record_1k or document_10k".into());
        }
        // zstd by input size: the compressed sizes the bench prints, then the round trips.
        let compressed: BTreeMap<u64, String> = output
            .stderr
            .lines()
            .filter_map(|l| {
                let (size, rest) = l.trim().split_once(" -> ")?;
                Some((size.trim().parse().ok()?, rest.trim().to_owned()))
            })
            .collect();
        out.push_str(
            "\nzstd level 3 on JSON text by input size (`zstd_by_size`): compressed size, and the \
             mean round trip with the reused per-thread context `Compressing` keeps, with a \
             fresh context, and a plain copy:\n\n\
             | input bytes | compressed to | reused context | fresh context | memcpy |\n\
             |---:|---:|---:|---:|---:|\n",
        );
        for (size, packed) in &compressed {
            let cell = |kind: &str| {
                self.mean(since, "zstd_by_size", &format!("{kind}/{size}"))
                    .map_or("–".to_owned(), nanos)
            };
            let _ = writeln!(
                out,
                "| {size} | {packed} | {} | {} | {} |",
                cell("reused_ctx"),
                cell("fresh_ctx"),
                cell("memcpy")
            );
        }
        Ok(out)
    }

    fn breaker_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let args = self.criterion_args();
        let (_, shown) = self.cargo_bench("lexicache-service", "breaker", &args, &[])?;
        let mut out = self.header(&[shown]);
        out.push_str(
            "Mean ns per get, without / with a closed breaker, per round; the ratio is the median \
             over rounds of with ÷ without:\n\n\
             | pair | rounds | ratio with / without |\n|---|---|---:|\n",
        );
        let pairs = [
            (
                "backend `get_entry`",
                "a_backend_get_entry",
                "b_backend_get_entry_breaker",
            ),
            (
                "service `get_arc`",
                "c_service_get_arc",
                "d_service_get_arc_breaker",
            ),
        ];
        for (name, without, with) in pairs {
            let rounds: Vec<(f64, f64)> = (1..)
                .map_while(|r| {
                    Some((
                        self.mean(since, "breaker", &format!("{without}_{r}"))?,
                        self.mean(since, "breaker", &format!("{with}_{r}"))?,
                    ))
                })
                .collect();
            if rounds.is_empty() {
                return Err(format!(
                    "no fresh criterion estimates for breaker/{without}_1"
                ));
            }
            let cells: Vec<String> = rounds
                .iter()
                .map(|(a, b)| format!("{a:.0} / {b:.0}"))
                .collect();
            let mut ratios: Vec<f64> = rounds.iter().map(|(a, b)| b / a).collect();
            ratios.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "| {name} | {} | {:.2} |",
                cells.join("; "),
                median(&ratios)
            );
        }
        Ok(out)
    }

    fn semantic_store_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let args = self.criterion_args();
        let (_, shown) = self.cargo_bench("lexicache-semantic", "store", &args, &[])?;
        let raw = self
            .mean(since, "semantic_tier1", "raw memory backend get")
            .ok_or("no fresh estimate for semantic_tier1/raw memory backend get")?;
        let exact = self.mean(since, "semantic_tier1", "SemanticCache exact hit (memory)");
        let similar = self.mean(since, "semantic_tier2_10k", "FlatIndex similar hit");
        let mut out = self.header(&[shown]);
        out.push_str("| row | mean | vs raw backend get |\n|---|---:|---:|\n");
        let _ = writeln!(
            out,
            "| raw memory backend `get` of the tier-1 key | {} | 1 |",
            nanos(raw)
        );
        if let Some(ns) = exact {
            let _ = writeln!(
                out,
                "| `SemanticCache::lookup`, exact hit (tier 1) | {} | {:.1}x |",
                nanos(ns),
                ns / raw
            );
        }
        if let Some(ns) = similar {
            let _ = writeln!(
                out,
                "| `SemanticCache::lookup`, similar hit through `FlatIndex` at 10k (tier 2, embedding included) | {} | |",
                nanos(ns)
            );
        }
        Ok(out)
    }

    fn semantic_index_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let (output, shown) = self.cargo_bench("lexicache-semantic", "index", &[], &[])?;
        let lines: Vec<&str> = output
            .stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('['))
            .collect();
        if lines.is_empty() {
            return Err(format!("`{shown}` printed no `[10k]`/`[100k]` lines"));
        }
        let mut out = self.header(&[shown]);
        out.push_str("The bench's summary lines, verbatim:\n\n```text\n");
        for line in lines {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str("```\n");
        let rows = ["hnsw_10k", "flat_10k", "hnsw_100k", "flat_100k"];
        let means: Vec<(&str, f64)> = rows
            .iter()
            .filter_map(|r| Some((*r, self.mean(since, "index_search", r)?)))
            .collect();
        if !means.is_empty() {
            out.push_str("\nCriterion's `index_search` group, mean per search:\n\n| row | mean |\n|---|---:|\n");
            for (row, ns) in means {
                let _ = writeln!(out, "| `{row}` | {} |", nanos(ns));
            }
        }
        Ok(out)
    }

    fn tiered_hot_key_section(&mut self) -> Result<String, String> {
        let since = SystemTime::now();
        let args = self.criterion_args();
        let (output, shown) = self.cargo_bench("lexicache-tiered", "hot_key", &args, &[])?;
        let mut out = self.header(std::slice::from_ref(&shown));
        out.push_str("| row | backend `get` | `CacheService::get::<String>` |\n|---|---:|---:|\n");
        let setups = [
            ("memory", "memory, key without TTL"),
            ("memory_ttl", "memory, key with a 600 s TTL"),
            ("tiered_local", "tiered, memory L2, no invalidation channel"),
            (
                "tiered_redis",
                "tiered, Redis L2 + pub/sub invalidation, serving L1",
            ),
        ];
        for (setup, name) in setups {
            let cell = |via: &str| {
                self.mean(since, "hot_key", &format!("{setup}_{via}"))
                    .map_or("–".to_owned(), nanos)
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} |",
                cell("get"),
                cell("service_get")
            );
        }
        let pairs = parse::paired_lines(&output.stdout);
        if pairs.is_empty() {
            return Err(format!("`{shown}` printed no `paired` lines"));
        }
        out.push_str(
            "\nPaired, tiered ÷ memory throughput (median of the alternations; min–max):\n\n\
             | tiered row | memory row | median | min–max |\n|---|---|---:|---|\n",
        );
        for p in &pairs {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | **{:.2}** | {:.2}–{:.2} |",
                p.ours, p.raw, p.median, p.min, p.max
            );
        }
        Ok(out)
    }

    /// A bench whose stdout is already markdown (tables with their titles), kept verbatim.
    fn stdout_section(&mut self, package: &str, bench: &str) -> Result<String, String> {
        let (output, shown) = self.cargo_bench(package, bench, &[], &[])?;
        let text = output.stdout.trim();
        if text.is_empty() {
            return Err(format!("`{shown}` printed nothing on stdout"));
        }
        let mut out = self.header(&[shown]);
        out.push_str(text);
        out.push('\n');
        Ok(out)
    }

    /// The first lines of a block: its commands and when it ran.
    fn header(&self, commands: &[String]) -> String {
        let mut out = String::from("```sh\n");
        for c in commands {
            out.push_str(c);
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "```\n\nGenerated {} by `cargo xtask bench-report{}`; load average then: {}.\n",
            now_utc(),
            if self.options.quick { " --quick" } else { "" },
            load_average()
        );
        out
    }
}

/// What a captured child printed.
#[derive(Debug, Default)]
struct Output {
    stdout: String,
    stderr: String,
}

/// Reads `from` to the end, echoing each line to our stderr when `echo`.
fn tee(from: impl Read, echo: bool) -> String {
    let mut all = String::new();
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let text = String::from_utf8_lossy(&line);
        if echo {
            eprint!("{text}");
        }
        all.push_str(&text);
        line.clear();
    }
    all
}

/// One table per backend of the throughput runs.
fn throughput_tables(runs: &[BenchRun]) -> String {
    let mut out = String::new();
    for backend in BACKENDS {
        let rows: Vec<&BenchRun> = runs.iter().filter(|r| r.backend == backend).collect();
        let Some(first) = rows.first() else { continue };
        let raw_label = first.raw.as_ref().map_or("raw", |r| r.label.as_str());
        let note = first
            .raw_note
            .as_deref()
            .map_or(String::new(), |n| format!(": {}", n.trim_end_matches('.')));
        let _ = writeln!(
            out,
            "\n**{backend}** (raw driver: {raw_label}{note}); latencies in µs, lexicache / raw:\n\n\
             | tasks | lexicache ops/s | raw ops/s | ratio | hit rate | p50 | p90 | p99 | p99.9 |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in rows {
            let l = &run.lexicache;
            let pair = |ours: f64, raw: Option<f64>| match raw {
                Some(raw) => format!("{} / {}", micros(ours), micros(raw)),
                None => micros(ours),
            };
            let r = run.raw.as_ref();
            let errors = l.errors + r.map_or(0, |r| r.errors);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1}% | {} | {} | {} | {} |{}",
                run.concurrency,
                ops(l.throughput),
                r.map_or("–".to_owned(), |r| ops(r.throughput)),
                run.ratio.map_or("–".to_owned(), ratio),
                100.0 * l.hit_rate,
                pair(l.latency_us.p50, r.map(|r| r.latency_us.p50)),
                pair(l.latency_us.p90, r.map(|r| r.latency_us.p90)),
                pair(l.latency_us.p99, r.map(|r| r.latency_us.p99)),
                pair(l.latency_us.p999, r.map(|r| r.latency_us.p999)),
                if errors > 0 {
                    format!(" {errors} errors")
                } else {
                    String::new()
                }
            );
        }
    }
    out
}

/// The charts' series: throughput by concurrency, and the percentiles at `at` tasks.
fn chart_series(runs: &[BenchRun], at: u64) -> (Vec<chart::Series>, Vec<chart::Series>) {
    let mut through = Vec::new();
    let mut latency = Vec::new();
    for backend in BACKENDS {
        let rows: Vec<&BenchRun> = runs.iter().filter(|r| r.backend == backend).collect();
        if rows.is_empty() {
            continue;
        }
        through.push(chart::Series {
            backend: backend.to_owned(),
            lexicache: rows
                .iter()
                .map(|r| (r.concurrency as f64, r.lexicache.throughput))
                .collect(),
            raw: rows
                .iter()
                .filter_map(|r| Some((r.concurrency as f64, r.raw.as_ref()?.throughput)))
                .collect(),
        });
        if let Some(run) = rows.iter().find(|r| r.concurrency == at) {
            let points = |p: parse::Percentiles| {
                vec![(0.0, p.p50), (1.0, p.p90), (2.0, p.p99), (3.0, p.p999)]
            };
            latency.push(chart::Series {
                backend: backend.to_owned(),
                lexicache: points(run.lexicache.latency_us),
                raw: run
                    .raw
                    .as_ref()
                    .map_or(Vec::new(), |r| points(r.latency_us)),
            });
        }
    }
    (through, latency)
}

fn paired_table(pairs: &[Paired], ours: &str, raw: &str) -> String {
    let mut out =
        format!("| pair | {ours} | {raw} | median ratio | min–max |\n|---|---:|---:|---:|---|\n");
    for p in pairs {
        let _ = writeln!(
            out,
            "| `{}` vs `{}` | {} | {} | **{:.2}** | {:.2}–{:.2} |",
            p.ours,
            p.raw,
            ops(p.ours_ops),
            ops(p.raw_ops),
            p.median,
            p.min,
            p.max
        );
    }
    out
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// Operations per second, in thousands above 10 000.
fn ops(v: f64) -> String {
    if !v.is_finite() {
        "–".to_owned()
    } else if v >= 10_000.0 {
        format!("{:.1} k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".to_owned()
    }
}

/// A time given in nanoseconds, in the unit that reads best.
fn nanos(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A latency given in microseconds.
fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 10.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{} min {:02} s", s / 60, s % 60)
}

/// The output of a command, trimmed; `unknown` when it cannot run.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn now_utc() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model and the logical CPU count, from /proc/cpuinfo.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    let hypervisor = if info.contains(" hypervisor") {
        ", virtual machine"
    } else {
        ""
    };
    format!("{model}, {cores} logical CPUs{hypervisor}")
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: f64 = m
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine_block(load_start: &str, load_end: &str) -> String {
    let commit = command_line("git", &["rev-parse", "--short=12", "HEAD"]);
    // Tracked files only: a build's stray output does not make the tree dirty.
    let changed = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(workspace_root())
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    let dirty = if changed {
        " (with uncommitted changes)"
    } else {
        ""
    };
    let rows = [
        ("date", now_utc()),
        ("commit", format!("{commit}{dirty}")),
        ("CPU", cpu()),
        ("memory", memory()),
        ("kernel", command_line("uname", &["-sr"])),
        ("rustc", command_line("rustc", &["-V"])),
        ("redis-server", command_line("redis-server", &["--version"])),
        (
            "redis-benchmark",
            command_line("redis-benchmark", &["--version"]),
        ),
        ("memcached", command_line("memcached", &["-V"])),
        (
            "load average (1, 5, 15 min) at start",
            load_start.to_owned(),
        ),
        ("load average at end", load_end.to_owned()),
    ];
    let mut out = String::from("| | |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {} |", v.replace('|', "\\|"));
    }
    out
}

fn summary_block(command: &str, options: &Options, runtime: Duration, build: Duration) -> String {
    let ran: Vec<&str> = options.sections.iter().map(|s| s.name()).collect();
    let mut out = format!(
        "Regenerated by `{command}` on {}; the run took **{}**, of which {} building the CLI and \
         the benches (most of it when the sources changed since the last build).\n",
        now_utc(),
        format_duration(runtime),
        format_duration(build)
    );
    let kept: Vec<&str> = Section::ALL
        .iter()
        .filter(|s| !options.sections.contains(s))
        .map(|s| s.name())
        .collect();
    let _ = write!(out, "Sections regenerated: {}.", ran.join(", "));
    if !kept.is_empty() {
        let _ = write!(
            out,
            " Kept from an earlier run (each block says when it ran): {}{}.",
            kept.join(", "),
            if options.with_slow || kept != ["semantic-index"] {
                ""
            } else {
                " (the semantic index bench takes about 10 minutes: `--with-slow` runs it)"
            }
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_default_report_runs_every_section_but_the_slow_one() {
        let o = parse_options(&[]).expect("valid");
        assert!(!o.quick);
        assert!(!o.sections.contains(&Section::SemanticIndex));
        assert_eq!(o.sections.len(), Section::ALL.len() - 1);
        let slow = parse_options(&args(&["--with-slow", "--quick"])).expect("valid");
        assert!(slow.quick);
        assert_eq!(slow.sections, Section::ALL);
    }

    #[test]
    fn only_selects_sections_in_report_order() {
        let o =
            parse_options(&args(&["--only", "codecs,hot-path", "--only=codecs"])).expect("valid");
        assert_eq!(o.sections, [Section::HotPath, Section::Codecs]);
        let slow = parse_options(&args(&["--only", "semantic-index"])).expect("valid");
        assert_eq!(slow.sections, [Section::SemanticIndex]);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_valid_names() {
        let err = parse_options(&args(&["--only", "hotpath"])).unwrap_err();
        assert!(
            err.contains("unknown section `hotpath`") && err.contains("hot-path"),
            "{err}"
        );
        assert!(parse_options(&args(&["--only"]))
            .unwrap_err()
            .contains("throughput"));
        assert!(parse_options(&args(&["--fast"]))
            .unwrap_err()
            .contains("--fast"));
        assert!(parse_options(&args(&["--only", ","])).is_err());
    }

    #[test]
    fn the_committed_document_has_a_block_for_every_section() {
        let doc = std::fs::read_to_string(workspace_root().join("docs/benchmarks.md"))
            .expect("docs/benchmarks.md");
        let names = markers::block_names(&doc).expect("balanced markers");
        for name in ["summary", "machine"]
            .into_iter()
            .chain(Section::ALL.map(Section::name))
        {
            assert!(names.iter().any(|n| n == name), "no block `{name}`");
        }
    }

    fn phase(throughput: f64) -> parse::Phase {
        parse::Phase {
            label: "fred".into(),
            throughput,
            hit_rate: 0.9,
            errors: 0,
            latency_us: parse::Percentiles {
                p50: 10.0,
                p90: 20.0,
                p99: 40.0,
                p999: 80.0,
            },
        }
    }

    #[test]
    fn throughput_tables_and_chart_series_follow_the_runs() {
        let runs: Vec<BenchRun> = [1, 16]
            .into_iter()
            .map(|c| BenchRun {
                backend: "redis".into(),
                concurrency: c,
                lexicache: phase(1000.0 * c as f64),
                raw: Some(phase(1250.0 * c as f64)),
                ratio: Some(0.8),
                raw_note: None,
            })
            .collect();
        let tables = throughput_tables(&runs);
        assert!(tables.contains("**redis** (raw driver: fred)"));
        assert!(
            tables.contains("| 16 | 16.0 k | 20.0 k | 0.80 | 90.0% | 10 / 10 |"),
            "{tables}"
        );
        assert!(!tables.contains("**memory**"));
        let (through, latency) = chart_series(&runs, 16);
        assert_eq!(through[0].lexicache, [(1.0, 1000.0), (16.0, 16000.0)]);
        assert_eq!(latency[0].raw[3], (3.0, 80.0));
    }

    #[test]
    fn figures_are_shown_in_readable_units() {
        assert_eq!(nanos(866.4), "866 ns");
        assert_eq!(nanos(4_900.0), "4.90 µs");
        assert_eq!(nanos(53_600.0), "53.6 µs");
        assert_eq!(nanos(1_600_000.0), "1.60 ms");
        assert_eq!(ops(91_634.0), "91.6 k");
        assert_eq!(ops(f64::NAN), "–");
        assert_eq!(micros(2500.0), "2.50 ms");
        assert_eq!(format_duration(Duration::from_secs(754)), "12 min 34 s");
    }
}
