//! `cargo xtask semantic-eval [--pairs FILE] [--dump FILE]`: the semantic cache's evaluation
//! on the public `fow-cache` pairs (issue 9).
//!
//! Fetches the MiniLM model and the pairs first (`cargo xtask fetch-models`) when they are
//! missing, then runs
//! `cargo run --release -p lexicache-semantic --features candle --example semantic_eval -- ARGS`
//! with `LEXICACHE_MODEL_DIR` set, and leaves with the example's exit code. The example
//! prints the tables; its last line is `default: should-hit served X% traps served Y%`.

use std::path::{Path, PathBuf};

use crate::models::{self, MODEL_DIR_VAR};
use crate::{cargo, run_step, target_dir, Failure, Result};

/// The files below the model directory the evaluation reads.
const MODEL_FILES: [&str; 3] = [
    "all-MiniLM-L6-v2/model.safetensors",
    "all-MiniLM-L6-v2/tokenizer.json",
    "all-MiniLM-L6-v2/config.json",
];
const PAIRS_FILE: &str = "fow-cache/pairs.jsonl";

/// The parsed command line.
#[derive(Debug, Default, PartialEq)]
struct Args {
    pairs: Option<PathBuf>,
    dump: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let usage = "usage: cargo xtask semantic-eval [--pairs FILE] [--dump FILE]";
    let mut parsed = Args::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let slot = match flag {
            "--pairs" => &mut parsed.pairs,
            "--dump" => &mut parsed.dump,
            _ => {
                return Err(Failure::with_code(
                    format!("semantic-eval: unknown argument `{arg}` ({usage})"),
                    2,
                ))
            }
        };
        let value = match inline {
            Some(value) => value,
            None => iter.next().cloned().unwrap_or_default(),
        };
        if value.is_empty() {
            return Err(Failure::with_code(
                format!("semantic-eval: {flag} needs a file ({usage})"),
                2,
            ));
        }
        *slot = Some(PathBuf::from(value));
    }
    Ok(parsed)
}

/// `$LEXICACHE_MODEL_DIR` when set, else `<target>/models` (where fetch-models puts them).
fn model_dir() -> PathBuf {
    std::env::var_os(MODEL_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| target_dir().join("models"), PathBuf::from)
}

/// The files of `needed` missing (or empty) below `dir`.
fn missing(dir: &Path, needed: &[&str]) -> Vec<String> {
    needed
        .iter()
        .filter(|f| !std::fs::metadata(dir.join(f)).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|f| (*f).to_owned())
        .collect()
}

/// `path` made absolute against the current directory (cargo runs the example from the
/// workspace root).
fn absolute(path: PathBuf) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))
}

/// `cargo xtask semantic-eval`.
pub(crate) fn semantic_eval(args: &[String]) -> Result {
    let args = parse_args(args)?;
    let dir = absolute(model_dir())?;
    let mut needed: Vec<&str> = MODEL_FILES.to_vec();
    if args.pairs.is_none() {
        needed.push(PAIRS_FILE);
    }
    let absent = missing(&dir, &needed);
    if !absent.is_empty() {
        eprintln!(
            "semantic-eval: {} missing in {}; fetching the models first",
            absent.join(", "),
            dir.display()
        );
        models::fetch_models(&["--dir".to_owned(), dir.display().to_string()])?;
    }

    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        "lexicache-semantic",
        "--features",
        "candle",
        "--example",
        "semantic_eval",
        "--",
    ])
    .env(MODEL_DIR_VAR, &dir);
    let mut title = String::from(
        "cargo run --release -p lexicache-semantic --features candle --example semantic_eval --",
    );
    for (flag, value) in [("--pairs", args.pairs), ("--dump", args.dump)] {
        if let Some(value) = value {
            let value = absolute(value)?;
            title.push_str(&format!(" {flag} {}", value.display()));
            cmd.arg(flag).arg(value);
        }
    }
    run_step(&title, &mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_take_pairs_and_dump_in_both_spellings() {
        assert_eq!(parse_args(&[]).expect("none"), Args::default());
        let parsed = parse_args(&args(&["--pairs", "p.jsonl", "--dump=d.tsv"])).expect("both");
        assert_eq!(parsed.pairs, Some(PathBuf::from("p.jsonl")));
        assert_eq!(parsed.dump, Some(PathBuf::from("d.tsv")));
    }

    #[test]
    fn arguments_refuse_unknown_flags_and_missing_values_with_code_2() {
        for bad in [&["--pairs"][..], &["--pairs="], &["--fast"], &["p.jsonl"]] {
            let err = parse_args(&args(bad)).expect_err("refused");
            assert_eq!(err.code, 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn missing_lists_absent_and_empty_files() {
        let dir = std::env::temp_dir().join(format!("xtask-semantic-eval-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("all-MiniLM-L6-v2")).expect("mkdir");
        std::fs::write(dir.join("all-MiniLM-L6-v2/config.json"), b"{}").expect("write");
        std::fs::write(dir.join("all-MiniLM-L6-v2/tokenizer.json"), b"").expect("write");
        let absent = missing(&dir, &MODEL_FILES);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            absent,
            [
                "all-MiniLM-L6-v2/model.safetensors",
                "all-MiniLM-L6-v2/tokenizer.json"
            ]
        );
    }
}
