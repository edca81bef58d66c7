//! `cargo xtask fuzz [--seconds N] [TARGET ...]`: every cargo-fuzz target in `fuzz/` (or the
//! ones named) for a bounded time each, then a summary table; fails when any target finds a
//! crash, a hang or a memory blow-up, printing the input it saved and the command that
//! replays it.
//!
//! Only the stable toolchain is needed: cargo-fuzz runs with `RUSTC_BOOTSTRAP=1` and no
//! sanitizer (`-s none`). cargo-fuzz itself is installed with `cargo install cargo-fuzz
//! --locked` when `cargo fuzz --version` fails. The targets build into `<target>/fuzz`
//! (`CARGO_TARGET_DIR` when set), once, before the first run. Each run seeds from and adds
//! to `fuzz/corpus/<target>`, and saves failing inputs in `fuzz/artifacts/<target>`; both
//! are ignored by git (`fuzz/.gitignore`), so a run leaves the tree clean.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, run_step, target_dir, workspace_root, Failure, Result};

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 30;

/// libFuzzer options of every run besides the time: an input taking longer than
/// `-timeout` seconds is a hang and fails the run, and the process may not pass
/// `-rss_limit_mb` (how a decompression bomb or an unbounded read shows up).
const LIBFUZZER_OPTIONS: [&str; 3] = ["-rss_limit_mb=1024", "-timeout=10", "-print_final_stats=1"];

/// What one target's run came to.
#[derive(Debug)]
struct Outcome {
    target: String,
    seconds: u64,
    runs: Option<u64>,
    peak_rss_mb: Option<u64>,
    slowest_unit_secs: Option<u64>,
    result: String,
    artifact: Option<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.result == "ok"
    }
}

/// `cargo xtask fuzz [--seconds N] [TARGET ...]`.
pub(crate) fn fuzz(args: &[String]) -> Result {
    let (seconds, named) = parse_args(args)?;
    let fuzz_dir = workspace_root().join("fuzz");
    let out_dir = target_dir().join("fuzz");
    ensure_cargo_fuzz()?;

    let available = list_targets(&fuzz_dir)?;
    let targets = if named.is_empty() {
        available
    } else {
        if let Some(unknown) = named.iter().find(|t| !available.contains(t)) {
            return Err(Failure::with_code(
                format!(
                    "no fuzz target `{unknown}`; the targets are: {}",
                    available.join(", ")
                ),
                2,
            ));
        }
        named
    };

    let started = Instant::now();
    run_step(
        &format!(
            "RUSTC_BOOTSTRAP=1 cargo fuzz build -s none --target-dir {}",
            out_dir.display()
        ),
        cargo_fuzz(&fuzz_dir, &out_dir, "build").args(targets_if_one(&targets)),
    )?;
    eprintln!(
        "xtask: fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|t| run_target(&fuzz_dir, &out_dir, t, seconds))
        .collect::<Result<_>>()?;

    print_summary(&outcomes);
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for o in &failed {
        eprintln!("\nxtask: fuzz target `{}`: {}", o.target, o.result);
        match &o.artifact {
            Some(path) => {
                eprintln!("  input saved to {path}");
                eprintln!(
                    "  reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --target-dir {} {} {path})",
                    out_dir.display(),
                    o.target
                );
            }
            None => eprintln!("  (libFuzzer saved no input; see its output above)"),
        }
    }
    Err(Failure::new(format!(
        "{} of {} fuzz targets failed: {}",
        failed.len(),
        outcomes.len(),
        failed
            .iter()
            .map(|o| o.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<String>)> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--seconds" => Some(args.next().map(String::as_str).unwrap_or_default()),
            other => other.strip_prefix("--seconds="),
        };
        if let Some(value) = value {
            seconds = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                Failure::with_code(
                    format!("--seconds takes a whole number of seconds above 0, not `{value}`"),
                    2,
                )
            })?;
        } else if arg.starts_with('-') {
            return Err(Failure::with_code(
                format!("fuzz: unknown option `{arg}`; usage: cargo xtask fuzz [--seconds N] [TARGET ...]"),
                2,
            ));
        } else {
            targets.push(arg.clone());
        }
    }
    Ok((seconds, targets))
}

/// `cargo fuzz build` takes one target or all: name it only when there is one.
fn targets_if_one(targets: &[String]) -> Vec<String> {
    if targets.len() == 1 {
        targets.to_vec()
    } else {
        Vec::new()
    }
}

/// `RUSTC_BOOTSTRAP=1 cargo fuzz <sub> -s none --target-dir <out_dir>`, run in `fuzz/`.
///
/// Without the variables `cargo run` set for xtask itself: build scripts that watch one
/// (ring's watches `CARGO_MANIFEST_DIR`) would otherwise rebuild ring, rustls and fred on
/// every switch between `cargo xtask fuzz` and a plain `cargo fuzz`.
fn cargo_fuzz(fuzz_dir: &Path, out_dir: &Path, sub: &str) -> Command {
    let mut cmd = cargo();
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("CARGO_PKG_")
            || matches!(
                &*name_str,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
            )
        {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", sub, "-s", "none", "--target-dir"])
        .arg(out_dir);
    cmd
}

fn ensure_cargo_fuzz() -> Result {
    let present = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    run_step(
        "cargo install cargo-fuzz --locked",
        cargo().args(["install", "cargo-fuzz", "--locked"]),
    )
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let output = cargo()
        .current_dir(fuzz_dir)
        .args(["fuzz", "list"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("cargo fuzz list: could not start: {e}")))?;
    if !output.status.success() {
        return Err(Failure::with_code(
            "cargo fuzz list failed",
            output.status.code().unwrap_or(1),
        ));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err(Failure::new(format!(
            "cargo fuzz list found no targets in {}",
            fuzz_dir.display()
        )));
    }
    Ok(targets)
}

/// Runs one target for `seconds`, echoing libFuzzer's output and reading its verdict.
fn run_target(fuzz_dir: &Path, out_dir: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let title = format!(
        "RUSTC_BOOTSTRAP=1 cargo fuzz run -s none {target} -- -max_total_time={seconds} {}",
        LIBFUZZER_OPTIONS.join(" ")
    );
    eprintln!("\n==> {title}");
    let mut cmd = cargo_fuzz(fuzz_dir, out_dir, "run");
    cmd.arg(target)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(LIBFUZZER_OPTIONS)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(format!("{title}: could not start: {e}")))?;
    let mut log = Log::default();
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        let mut echo = std::io::stderr().lock();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = echo.write_all(&line);
                    log.read(&String::from_utf8_lossy(&line));
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("{title}: {e}")))?;
    let elapsed = started.elapsed().as_secs();
    let result = if status.success() {
        "ok".to_owned()
    } else {
        log.verdict
            .clone()
            .unwrap_or_else(|| format!("failed (exit {})", status.code().unwrap_or(-1)))
    };
    Ok(Outcome {
        target: target.to_owned(),
        seconds: log.done_seconds.unwrap_or(elapsed),
        runs: log.done_runs.or(log.executed_units),
        peak_rss_mb: log.peak_rss_mb,
        slowest_unit_secs: log.slowest_unit_secs,
        result,
        artifact: log
            .artifact
            .map(|a| absolute(fuzz_dir, &a).display().to_string()),
    })
}

/// libFuzzer's output paths are relative to where it ran (`fuzz/`).
fn absolute(fuzz_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        fuzz_dir.join(path)
    }
}

/// What libFuzzer's stderr said.
#[derive(Debug, Default)]
struct Log {
    done_runs: Option<u64>,
    done_seconds: Option<u64>,
    executed_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    slowest_unit_secs: Option<u64>,
    verdict: Option<String>,
    artifact: Option<String>,
}

impl Log {
    fn read(&mut self, line: &str) {
        let line = line.trim_end();
        // `Done 123456 runs in 31 second(s)`
        if let Some(rest) = line.strip_prefix("Done ") {
            let mut words = rest.split_whitespace();
            self.done_runs = words.next().and_then(|n| n.parse().ok());
            self.done_seconds = words.nth(2).and_then(|n| n.parse().ok());
        } else if let Some(stat) = line.strip_prefix("stat::") {
            let (name, value) = stat.split_once(':').unwrap_or((stat, ""));
            let value = value.trim().parse().ok();
            match name {
                "number_of_executed_units" => self.executed_units = value,
                "peak_rss_mb" => self.peak_rss_mb = value,
                "slowest_unit_time_sec" => self.slowest_unit_secs = value,
                _ => {}
            }
        } else if let Some(path) = line
            .split_once("Test unit written to ")
            .map(|(_, p)| p.trim())
        {
            self.artifact = Some(path.to_owned());
        } else if self.verdict.is_none() {
            self.verdict = verdict(line).map(str::to_owned);
        }
    }
}

/// The kind of failure a libFuzzer line reports, if it reports one.
fn verdict(line: &str) -> Option<&'static str> {
    if line.contains("ERROR: libFuzzer: timeout") {
        Some("hang (an input ran past -timeout)")
    } else if line.contains("ERROR: libFuzzer: out-of-memory") {
        Some("out of memory (past -rss_limit_mb)")
    } else if line.contains("ERROR: libFuzzer: deadly signal") || line.contains("panicked at") {
        Some("crash")
    } else if line.contains("ERROR: libFuzzer:") {
        Some("libFuzzer error")
    } else {
        None
    }
}

fn print_summary(outcomes: &[Outcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.target.len())
        .max()
        .unwrap_or(0)
        .max("target".len());
    let num = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    println!("\nfuzz summary");
    println!(
        "{:<width$}  {:>7}  {:>12}  {:>11}  {:>12}  result",
        "target", "seconds", "runs", "peak RSS MB", "slowest in s"
    );
    for o in outcomes {
        println!(
            "{:<width$}  {:>7}  {:>12}  {:>11}  {:>12}  {}",
            o.target,
            o.seconds,
            num(o.runs),
            num(o.peak_rss_mb),
            num(o.slowest_unit_secs),
            o.result
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &str) -> Log {
        let mut log = Log::default();
        lines.lines().for_each(|l| log.read(l));
        log
    }

    #[test]
    fn a_clean_run_reports_its_runs_and_seconds() {
        let log = read(
            "#1048576\tpulse  cov: 1 ft: 2 corp: 3/4b exec/s: 5 rss: 60Mb\n\
             Done 2117043 runs in 31 second(s)\n\
             stat::number_of_executed_units: 2117043\n\
             stat::slowest_unit_time_sec: 0\n\
             stat::peak_rss_mb: 61\n",
        );
        assert_eq!(log.done_runs, Some(2_117_043));
        assert_eq!(log.done_seconds, Some(31));
        assert_eq!(log.peak_rss_mb, Some(61));
        assert_eq!(log.slowest_unit_secs, Some(0));
        assert_eq!(log.verdict, None);
    }

    #[test]
    fn a_crash_reports_its_kind_and_saved_input() {
        let log = read(
            "thread '<unnamed>' panicked at fuzz_targets/glob.rs:3:5:\n\
             ==123== ERROR: libFuzzer: deadly signal\n\
             artifact_prefix='/w/fuzz/artifacts/glob/'; Test unit written to /w/fuzz/artifacts/glob/crash-da39a3\n\
             stat::number_of_executed_units: 77\n",
        );
        assert_eq!(log.verdict.as_deref(), Some("crash"));
        assert_eq!(
            log.artifact.as_deref(),
            Some("/w/fuzz/artifacts/glob/crash-da39a3")
        );
        assert_eq!(log.executed_units, Some(77));
    }

    #[test]
    fn a_hang_is_reported_as_one() {
        let log = read("==9== ERROR: libFuzzer: timeout after 10 seconds\n");
        assert_eq!(
            log.verdict.as_deref(),
            Some("hang (an input ran past -timeout)")
        );
    }

    #[test]
    fn seconds_and_targets_parse() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&args(&["--seconds", "10", "glob"])).unwrap(),
            (10, vec!["glob".to_owned()])
        );
        assert_eq!(
            parse_args(&args(&["--seconds=5"])).unwrap(),
            (5, Vec::new())
        );
        assert_eq!(parse_args(&[]).unwrap(), (DEFAULT_SECONDS, Vec::new()));
        assert!(parse_args(&args(&["--seconds", "0"])).is_err());
        assert!(parse_args(&args(&["--seconds"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }
}
