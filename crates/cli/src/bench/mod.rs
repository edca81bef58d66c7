//! `lexicache bench`: a Zipf workload against any backend, with the raw driver beside it.
//!
//! # What it runs
//!
//! The backend is the one the global flags choose, like every command: the embedded memory
//! backend by default, `--redis URL`, `--memcached HOST:PORT,...`, either with `--tiered`, or
//! `--config FILE [--backend NAME]`. The service is the one the configuration builds (its
//! serializer, protection, layers), so the figures are what an application with that
//! configuration gets.
//!
//! `--concurrency` tasks run the workload. Each operation draws a key `lexicache-bench:{i}`,
//! `i` from Zipf(`--keys`, `--zipf`) (uniform for `--zipf 0`), and is a read with probability
//! `--read-ratio`, otherwise a write:
//!
//! - a read is a typed `try_get::<String>`; on a miss the task writes the value (cache-aside)
//!   and the read counts as a miss, its latency including the fill;
//! - a write is a `try_set` of the value, a string of `--value-size` bytes, with `--ttl`.
//!
//! Every operation's latency goes into the task's HDR histogram (nanoseconds, three
//! significant figures); the histograms merge when the phase ends. Failed operations count as
//! `errors`, not as misses, and are not timed; the first error is printed on stderr. The run
//! is timed (`--duration`, default 10 s) or counted (`--ops`), after an unrecorded warm-up of
//! the same workload (`--warmup`, default 2 s). `--seed` fixes the key and operation draws
//! (otherwise a random seed is drawn and reported).
//!
//! # `--compare-raw`
//!
//! The same workload, with the same seeds and warm-up, runs on the driver under the backend,
//! in the same process:
//!
//! | backend | raw driver |
//! |---|---|
//! | memory | `moka::future::Cache<String, Bytes>` bounded like the memory backend |
//! | redis | one fred client (RESP2, pipelined) from the same URL or fields; `GET`, `SET .. PX` |
//! | memcached | async-memcached: one client per task per server, keys routed by FNV-1a hash (the backend uses a consistent-hash ring) |
//! | tiered | the raw driver of its L2, without an L1: what you would use without lexicache |
//!
//! The raw side encodes and decodes with the service's configured serializer, so it stores the
//! same payload bytes: the ratio measures what the library adds around them. Its keys are
//! `lexicache-bench-raw:{i}` under the backend's prefix, so the two sides never read each
//! other's entries. The sides alternate in rounds (three rounds each when the run is at least 1.5 s
//! or 3,000 operations, otherwise one), since the machine drifts; `ratio` is the median of
//! the per-round lexicache/raw throughput ratios.
//!
//! # `--stampede N`
//!
//! N concurrent callers of one cold key whose loader sleeps `--loader-ms` (default 50), over
//! `--rounds` (default 3) fresh keys; protected through `get_or_set` (single-flight, plus the
//! distributed lock where the configuration enables it), unprotected with each caller
//! reading, missing, loading and writing on its own. It reports the loader calls and the
//! callers' latency in milliseconds. With `--stampede` alone the throughput workload is
//! skipped; give `--duration` or `--ops` to run both.
//!
//! # Output and clean-up
//!
//! A table, or with `--format json` one [`report::BenchReport`] on stdout. The progress bar
//! goes to stderr, and only when stderr is a terminal.
//!
//! At the end the bench deletes its keys: `delete_pattern("lexicache-bench:*")` through the
//! service (under the backend's prefix: give `--prefix` to keep clear of an application's
//! keys), and
//! the raw side's keys with `DEL`. Memcached cannot delete by pattern, so on memcached (and
//! a tiered backend over it) entries get a 5-minute TTL when neither `--ttl` nor the
//! backend's `default_ttl` sets one, and expire on their own.
//!
//! Errors: bad option values are usage errors (exit 2); a backend that cannot be reached
//! fails the run before it starts (exit 3).

mod driver;
pub mod report;
mod stampede;
mod workload;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use comfy_table::{presets, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lexicache::config::{parse_duration, BackendType, CacheBackendConfig};
use lexicache::ErrorKind;

use self::driver::{Driver, Raw};
use self::report::{BenchReport, RunResult, StampedeReport, Workload};
use self::workload::{Plan, Progress, Span, Tally};
use crate::{CliError, Format, Target, TargetArgs};

/// The prefix of the keys the service side writes.
const KEY_PREFIX: &str = "lexicache-bench:";
/// The prefix of the raw side's keys, under the backend's prefix.
const RAW_KEY_PREFIX: &str = "lexicache-bench-raw:";
/// The TTL of entries on memcached when nothing else sets one: it cannot delete by pattern.
const MEMCACHED_TTL: Duration = Duration::from_secs(300);
/// The measured time without `--duration` or `--ops`.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
Examples:
  lexicache bench --duration 5s
  lexicache bench --keys 1000000 --zipf 0.8 --read-ratio 0.5 --value-size 1024
  lexicache --redis redis://127.0.0.1:6390 bench --compare-raw --concurrency 64
  lexicache --memcached 127.0.0.1:11290,127.0.0.1:11291 bench --compare-raw --format json
  lexicache --redis redis://127.0.0.1:6390 --tiered bench --ops 200000
  lexicache bench --stampede 1000
  cargo run --release -p lexicache-cli -- bench --compare-raw --duration 5s

Keys are lexicache-bench:{i} (lexicache-bench-raw:{i} for --compare-raw) under the backend's prefix, deleted at
the end; on memcached they expire after 5 minutes unless --ttl says otherwise.";

/// Options of `lexicache bench`.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct BenchArgs {
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub keys: u64,
    /// The Zipf exponent s of key popularity; 0 draws keys uniformly.
    #[arg(long, value_name = "S", default_value_t = 1.0, value_parser = parse_zipf)]
    pub zipf: f64,
    /// The share of operations that are reads, 0 to 1.
    #[arg(long, value_name = "RATIO", default_value_t = 0.9, value_parser = parse_ratio)]
    pub read_ratio: f64,
    /// Bytes per value.
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = parse_value_size)]
    pub value_size: usize,
    /// Concurrent tasks.
    #[arg(long, value_name = "TASKS", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// How long to measure ("500ms", "5s", "1m"; default 10s).
    #[arg(long, value_parser = parse_positive_duration, conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// How many operations to measure, instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// The TTL of written entries (default: none, or the backend's default TTL).
    #[arg(long, value_parser = parse_positive_duration)]
    pub ttl: Option<Duration>,
    /// The unrecorded warm-up before measuring; 0 for none.
    #[arg(long, default_value = "2s", value_parser = parse_duration_arg)]
    pub warmup: Duration,
    /// The seed of the key and operation draws (default: random, and reported).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also run the workload on the raw driver (moka, fred, async-memcached) and print the
    /// lexicache/raw throughput ratio.
    #[arg(long)]
    pub compare_raw: bool,
    /// Run the cold-key stampede scenario with this many concurrent callers.
    #[arg(long, value_name = "CALLERS", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub stampede: Option<u32>,
    /// How long the stampede loader takes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=60_000), requires = "stampede")]
    pub loader_ms: u64,
    /// Stampede rounds, each on a fresh cold key.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100), requires = "stampede")]
    pub rounds: u32,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d => Ok(d),
    }
}

fn parse_float(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("`{text}` is not a number"))
}

fn parse_zipf(text: &str) -> Result<f64, String> {
    match parse_float(text)? {
        s if s >= 0.0 => Ok(s),
        _ => Err("the Zipf exponent must be 0 (uniform) or more".into()),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match parse_float(text)? {
        r if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("the read ratio must be between 0 and 1".into()),
    }
}

fn parse_value_size(text: &str) -> Result<usize, String> {
    const MAX: usize = 64 << 20;
    match text.trim().parse::<usize>() {
        Ok(n) if n <= MAX => Ok(n),
        Ok(_) => Err(format!("at most {MAX} bytes (64 MiB)")),
        Err(_) => Err(format!("`{text}` is not a byte count")),
    }
}

/// Runs the benchmark on the backend `target` describes and prints the report.
///
/// # Errors
///
/// [`CliError::Config`] or [`CliError::Usage`] (exit 2) for a configuration that does not
/// load, [`CliError::Cache`] when the backend cannot be reached (exit 3) or refuses the value
/// (exit 2), [`CliError::Check`] when a task panics.
///
/// # Cancel safety
///
/// Dropping the future stops the run where it is and leaves the keys written so far (their
/// TTL, if any, still applies).
pub async fn run(target: &TargetArgs, format: Format, args: &BenchArgs) -> Result<(), CliError> {
    let target = Target::connect(target).await?;
    let outcome = bench(&target, args).await;
    target.close().await;
    let report = outcome?;
    match format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::Check(format!("the report does not serialize: {e}")))?;
            println!("{json}");
        }
        Format::Table => print_table(&report),
    }
    Ok(())
}

/// The measured part of a run: what the report is built from.
struct Measured {
    lexicache: Option<RunResult>,
    raw: Option<(RunResult, Raw)>,
    ratios: Vec<f64>,
    stampede: Option<StampedeReport>,
}

async fn bench(target: &Target, args: &BenchArgs) -> Result<BenchReport, CliError> {
    let config = target.backend_config();
    let ttl = args.ttl.or_else(|| {
        (config.default_ttl().is_none() && on_memcached(config)).then_some(MEMCACHED_TTL)
    });
    let seed = args.seed.unwrap_or_else(rand::random);
    let run_workload = args.stampede.is_none() || args.duration.is_some() || args.ops.is_some();
    let span = match args.ops {
        Some(n) => Span::Ops(n),
        None => Span::Time(args.duration.unwrap_or(DEFAULT_DURATION)),
    };
    let plan = Arc::new(Plan {
        keys: args.keys,
        zipf: args.zipf,
        read_ratio: args.read_ratio,
        value: "x".repeat(args.value_size),
        concurrency: usize::from(args.concurrency),
        ttl,
    });
    let service = target.service();
    // One write first: a dead backend or a value it refuses fails the run here, clearly.
    service
        .try_set(&format!("{KEY_PREFIX}0"), &plan.value, ttl)
        .await?;

    let raw = if args.compare_raw && run_workload {
        Some(driver::raw(target, ttl).await?)
    } else {
        None
    };
    let raw_prefix: Arc<str> = format!(
        "{}{}{RAW_KEY_PREFIX}",
        config.prefix(),
        target
            .config()
            .service
            .namespace
            .as_deref()
            .map(lexicache::layers::namespace_prefix)
            .unwrap_or_default()
    )
    .into();
    let progress = Progress::new(progress_bar());
    let outcome = measure(
        target,
        args,
        &plan,
        span,
        seed,
        run_workload,
        raw,
        &raw_prefix,
        ttl,
        &progress,
    )
    .await;
    progress.finish();

    // Clean up whatever happened, then report.
    let mut cleanup = Vec::new();
    match service.delete_pattern(&format!("{KEY_PREFIX}*")).await {
        Err(e) if e.kind() != ErrorKind::Unsupported => cleanup.push(e),
        _ => {}
    }
    let measured = match outcome {
        Ok(measured) => measured,
        Err((e, raw)) => {
            if let Some(raw) = raw {
                let _ = raw.driver.cleanup(&raw_prefix, args.keys).await;
                raw.driver.close().await;
            }
            return Err(e);
        }
    };
    let (raw_result, raw_note) = match measured.raw {
        Some((result, raw)) => {
            if let Err(e) = raw.driver.cleanup(&raw_prefix, args.keys).await {
                cleanup.push(e);
            }
            raw.driver.close().await;
            (Some(result), Some(raw.note))
        }
        None => (None, None),
    };
    if let Some(e) = cleanup.first() {
        eprintln!("lexicache: warning: the bench keys were not all deleted: {e}");
    }
    Ok(BenchReport {
        backend: backend_name(target.kind()).to_owned(),
        workload: Workload {
            keys: args.keys,
            zipf_s: args.zipf,
            read_ratio: args.read_ratio,
            value_size: args.value_size,
            concurrency: usize::from(args.concurrency),
            duration_secs: match span {
                Span::Time(d) if run_workload => Some(d.as_secs_f64()),
                _ => None,
            },
            ops: match span {
                Span::Ops(n) if run_workload => Some(n),
                _ => None,
            },
            ttl_secs: ttl.map(|t| t.as_secs_f64()),
            warmup_secs: if run_workload {
                args.warmup.as_secs_f64()
            } else {
                0.0
            },
            seed: run_workload.then_some(seed),
        },
        ratio: median(&measured.ratios),
        ratios: measured.ratios,
        lexicache: measured.lexicache,
        raw: raw_result,
        raw_note,
        stampede: measured.stampede,
    })
}

/// Warm-up, then rounds alternating lexicache and raw, then the stampede. On an error, hands
/// the raw driver back for clean-up.
#[allow(clippy::too_many_arguments)]
async fn measure(
    target: &Target,
    args: &BenchArgs,
    plan: &Arc<Plan>,
    span: Span,
    seed: u64,
    run_workload: bool,
    raw: Option<Raw>,
    raw_prefix: &Arc<str>,
    ttl: Option<Duration>,
    progress: &Progress,
) -> Result<Measured, (CliError, Option<Raw>)> {
    let mut measured = Measured {
        lexicache: None,
        raw: None,
        ratios: Vec::new(),
        stampede: None,
    };
    if run_workload {
        let lexicache = Driver::Lexicache(target.service().clone());
        let prefix: Arc<str> = KEY_PREFIX.into();
        let mut sides = vec![("lexicache".to_owned(), &lexicache, &prefix)];
        if let Some(raw) = &raw {
            sides.push((raw.label.clone(), &raw.driver, raw_prefix));
        }
        let rounds = if raw.is_some() { rounds(span) } else { 1 };
        let result = async {
            if !args.warmup.is_zero() {
                for (label, driver, prefix) in &sides {
                    progress.phase(format!("{label}: warm-up"), Some(Span::Time(args.warmup)));
                    let warm = workload::run_phase(
                        driver,
                        plan,
                        prefix,
                        Span::Time(args.warmup),
                        seed,
                        progress,
                    )
                    .await?;
                    check_alive(&warm)?;
                }
            }
            let mut totals: Vec<Tally> = sides.iter().map(|_| Tally::new()).collect();
            let mut ratios = Vec::new();
            let per_round = split(span, rounds);
            for round in 0..rounds {
                let round_seed = seed.wrapping_add(u64::from(round) + 1);
                let mut throughputs = Vec::new();
                for ((label, driver, prefix), total) in sides.iter().zip(&mut totals) {
                    let what = if rounds > 1 {
                        format!("{label}: round {}/{rounds}", round + 1)
                    } else {
                        label.clone()
                    };
                    progress.phase(what, Some(per_round));
                    let tally =
                        workload::run_phase(driver, plan, prefix, per_round, round_seed, progress)
                            .await?;
                    check_alive(&tally)?;
                    throughputs.push(tally.throughput());
                    total.absorb(tally);
                }
                if let [ours, theirs] = throughputs[..] {
                    if theirs > 0.0 {
                        ratios.push(ours / theirs);
                    }
                }
            }
            for ((label, ..), total) in sides.iter().zip(&totals) {
                if let Some(e) = &total.first_error {
                    eprintln!(
                        "lexicache: warning: {} of {label}'s operations failed; the first: {e}",
                        total.errors
                    );
                }
            }
            Ok::<_, CliError>((totals, ratios))
        }
        .await;
        let (mut totals, ratios) = match result {
            Ok(done) => done,
            Err(e) => return Err((e, raw)),
        };
        measured.ratios = ratios;
        let ours = totals.remove(0);
        measured.lexicache = Some(ours.result("lexicache"));
        if let (Some(raw), Some(theirs)) = (raw, totals.pop()) {
            let result = theirs.result(&raw.label);
            measured.raw = Some((result, raw));
        }
    }
    if let Some(callers) = args.stampede {
        let plan = stampede::Stampede {
            callers,
            loader: Duration::from_millis(args.loader_ms),
            rounds: args.rounds,
            ttl,
            prefix: format!("{KEY_PREFIX}stampede:{:016x}:", rand::random::<u64>()),
        };
        let raw_back = measured.raw.take();
        match stampede::run(target.service(), &plan, &String::from("stampede"), progress).await {
            Ok(report) => {
                measured.stampede = Some(report);
                measured.raw = raw_back;
            }
            Err(e) => return Err((e, raw_back.map(|(_, raw)| raw))),
        }
    }
    Ok(measured)
}

/// A phase where every operation failed ends the run with the first error.
fn check_alive(tally: &Tally) -> Result<(), CliError> {
    match &tally.first_error {
        Some(e) if tally.ops == 0 => Err(CliError::Cache(e.clone())),
        _ => Ok(()),
    }
}

/// Three rounds per side when each gets at least 500 ms or 1,000 operations, else one.
fn rounds(span: Span) -> u32 {
    let enough = match span {
        Span::Time(d) => d >= Duration::from_millis(1500),
        Span::Ops(n) => n >= 3000,
    };
    if enough {
        3
    } else {
        1
    }
}

fn split(span: Span, rounds: u32) -> Span {
    match span {
        Span::Time(d) => Span::Time(d / rounds),
        Span::Ops(n) => Span::Ops(n.div_ceil(u64::from(rounds))),
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn on_memcached(config: &CacheBackendConfig) -> bool {
    match config {
        CacheBackendConfig::Memcached(_) => true,
        CacheBackendConfig::Tiered(t) => t.l2.kind() == BackendType::Memcached,
        _ => false,
    }
}

fn backend_name(kind: BackendType) -> &'static str {
    match kind {
        BackendType::Memory => "memory",
        BackendType::Redis => "redis",
        BackendType::Memcached => "memcached",
        BackendType::Tiered => "tiered",
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:32} [{bar:40}] {percent:>3}%") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn print_table(report: &BenchReport) {
    let w = &report.workload;
    let mut how = match (w.duration_secs, w.ops) {
        (Some(secs), _) => format!("{secs} s"),
        (None, Some(ops)) => format!("{ops} ops"),
        (None, None) => String::new(),
    };
    if report.ratios.len() > 1 {
        how.push_str(&format!(" per side in {} rounds", report.ratios.len()));
    }
    println!("lexicache bench: {} backend", report.backend);
    if let Some(ours) = &report.lexicache {
        println!(
            "workload: {} keys, Zipf s = {}, {:.0} % reads, {} B values, {} tasks, {how}, \
             warm-up {} s, TTL {}, seed {}",
            w.keys,
            w.zipf_s,
            w.read_ratio * 100.0,
            w.value_size,
            w.concurrency,
            w.warmup_secs,
            w.ttl_secs.map_or("none".to_owned(), |t| format!("{t} s")),
            w.seed.map_or("-".to_owned(), |s| s.to_string()),
        );
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "run",
            "ops",
            "ops/s",
            "hit rate",
            "errors",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "mean µs",
        ]);
        for run in std::iter::once(ours).chain(&report.raw) {
            let l = &run.latency_us;
            table.add_row([
                run.label.clone(),
                run.ops.to_string(),
                format!("{:.0}", run.throughput),
                format!("{:.1} %", run.hit_rate * 100.0),
                run.errors.to_string(),
                micros(l.p50),
                micros(l.p90),
                micros(l.p99),
                micros(l.p999),
                micros(l.max),
                micros(l.mean),
            ]);
        }
        right_align(&mut table, 1..11);
        println!("{table}");
        if let Some(ratio) = report.ratio {
            let each: Vec<String> = report.ratios.iter().map(|r| format!("{r:.3}")).collect();
            println!(
                "lexicache/raw throughput: {ratio:.3} (median of rounds: {})",
                each.join(", ")
            );
        }
        if let Some(note) = &report.raw_note {
            println!("raw: {note}");
        }
    }
    if let Some(s) = &report.stampede {
        println!(
            "stampede: {} concurrent callers of one cold key, loader {} ms, {} round{}",
            s.callers,
            s.loader_ms,
            s.rounds,
            if s.rounds == 1 { "" } else { "s" }
        );
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "callers",
            "loader calls",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "mean ms",
        ]);
        for (name, side) in [
            ("protected (get_or_set)", &s.protected),
            ("unprotected (get, load, set)", &s.unprotected),
        ] {
            let l = &side.latency_ms;
            table.add_row([
                name.to_owned(),
                side.loader_calls.to_string(),
                format!("{:.1}", l.p50),
                format!("{:.1}", l.p90),
                format!("{:.1}", l.p99),
                format!("{:.1}", l.max),
                format!("{:.1}", l.mean),
            ]);
        }
        right_align(&mut table, 1..7);
        println!("{table}");
    }
}

fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.0}")
    }
}

fn right_align(table: &mut Table, columns: std::ops::Range<usize>) {
    for i in columns {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn short_runs_compare_in_one_round_long_ones_in_three() {
        assert_eq!(rounds(Span::Time(Duration::from_millis(300))), 1);
        assert_eq!(rounds(Span::Time(Duration::from_secs(5))), 3);
        assert_eq!(rounds(Span::Ops(1000)), 1);
        assert_eq!(rounds(Span::Ops(30_000)), 3);
        assert!(matches!(split(Span::Ops(10), 3), Span::Ops(4)));
    }

    #[test]
    fn option_values_out_of_range_are_refused() {
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("nan").is_err());
        assert!(parse_zipf("-1").is_err());
        assert_eq!(parse_zipf("0"), Ok(0.0));
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(
            parse_positive_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert!(parse_value_size("100000000").is_err());
    }
}
