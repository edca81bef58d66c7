//! The `lexicache` command-line tool.
//!
//! - `lexicache demo` tours the library on the embedded memory backend with no setup.
//! - The operator commands (`get`, `set`, `del`, `del-pattern`, `invalidate-tags`, `exists`,
//!   `ttl`, `stats`, `health`, `keys`) work on any backend: the embedded memory backend by
//!   default, `--redis URL`, `--memcached HOST:PORT,...`, or `--config FILE [--backend NAME]`.
//! - `lexicache bench` runs a Zipf workload and reports throughput, hit rate and latency
//!   percentiles, beside the raw driver with `--compare-raw`.
//! - `lexicache completions SHELL` prints a shell completion script.
//!
//! ```text
//! cargo run --release -p lexicache-cli -- demo
//! cargo run --release -p lexicache-cli -- --redis redis://127.0.0.1:6390 set user:1 '{"id":1}' --ttl 60s
//! ```
//!
//! Exit codes: `0` success, `1` not found (or a failed internal check), `2` usage or
//! configuration error, `3` backend error. Errors go to stderr on one line that says what to
//! do.
//!
//! The command line is a plain clap parser, usable from code and tests:
//!
//! ```
//! use clap::Parser;
//! use lexicache_cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["lexicache", "demo", "--callers", "10"]).unwrap();
//! let Command::Demo(args) = cli.command else { unreachable!() };
//! assert_eq!(args.callers, 10);
//!
//! // Out-of-range values are usage errors, which exit with code 2.
//! let err = Cli::try_parse_from(["lexicache", "demo", "--callers", "0"]).unwrap_err();
//! assert_eq!(err.exit_code(), i32::from(lexicache_cli::EXIT_USAGE));
//! ```
#![deny(missing_docs)]
// This crate is the CLI: writing to the terminal is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod bench;
pub mod demo;
mod error;
pub mod ops;
mod target;

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use error::{CliError, EXIT_BACKEND, EXIT_INTERNAL, EXIT_NOT_FOUND, EXIT_USAGE};
pub use target::{Target, TargetArgs};

const AFTER_HELP: &str = "\
Examples:
  lexicache demo                                       tour the library in memory
  lexicache --redis redis://127.0.0.1:6390 set user:1 '{\"id\":1}' --ttl 5m --tags users
  lexicache --redis redis://127.0.0.1:6390 get user:1
  lexicache --memcached 127.0.0.1:11290,127.0.0.1:11291 stats --format json
  lexicache --config cache.yaml --backend shared keys 'user:*'
  lexicache --redis redis://127.0.0.1:6390 bench --compare-raw --concurrency 64
  lexicache completions bash > /usr/share/bash-completion/completions/lexicache

With no backend flag, commands run on the embedded memory backend (which lives only as long
as the command).

Exit codes: 0 ok, 1 not found, 2 usage or configuration error, 3 backend error.";

const DEMO_AFTER_HELP: &str = "\
Example:
  lexicache demo
  cargo run --release -p lexicache-cli -- demo

Runs in about half a second: the TTL step really waits for its 300 ms entry to expire.";

/// The `lexicache` command line.
#[derive(Debug, Parser)]
#[command(
    name = "lexicache",
    version,
    about = "Async caching for Rust: demo and tools for lexicache.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Which backend to talk to.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tour lexicache on the embedded memory backend, printing measured results.
    #[command(after_help = DEMO_AFTER_HELP)]
    Demo(DemoArgs),
    /// Run a workload and report throughput, hit rate and latency percentiles.
    Bench(bench::BenchArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// The operator commands.
    #[command(flatten)]
    Op(ops::OpCommand),
}

const COMPLETIONS_AFTER_HELP: &str = "\
Example:
  lexicache completions bash > ~/.local/share/bash-completion/completions/lexicache
  lexicache completions zsh > \"${fpath[1]}/_lexicache\"";

/// Options of `lexicache completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `lexicache demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Concurrent `get_or_set` callers in the stampede step.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub callers: u32,
}

/// Runs a parsed command line.
///
/// # Errors
///
/// A [`CliError`] whose [`exit_code`](CliError::exit_code) says how the process should end.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(&cli.target, cli.format, args).await,
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "lexicache",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Op(op) => {
            let target = Target::connect(&cli.target).await?;
            let result = ops::run(&target, cli.format, op).await;
            target.close().await;
            result
        }
    }
}

/// Folds clap's multi-line usage error into one line: the error and its details, then what
/// to do (clap's own "try '--help'" line, kept as the hint).
fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    let mut hint = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(usage) = line.strip_prefix("Usage:") {
            parts.push(format!("usage:{usage}"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("For more information, ") {
            hint = Some(rest.trim_end_matches('.').to_owned());
            continue;
        }
        parts.push(line.trim_end_matches(':').to_owned());
    }
    let mut text = parts.join(": ");
    if let Some(hint) = hint {
        text.push_str("; ");
        text.push_str(&hint);
    }
    text
}

/// Parses the process arguments, runs the command on a multi-thread runtime and returns the
/// exit code: what `main` of the `lexicache` binary does.
#[must_use]
pub fn run_cli() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout as clap writes them (exit 0); usage errors go to
            // stderr on one line, like every other error (exit 2).
            if e.use_stderr() {
                eprintln!("lexicache: {}", one_line(&e.render().to_string()));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lexicache: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lexicache: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fold_into_one_line_that_keeps_the_details_and_the_hint() {
        let err = Cli::try_parse_from(["lexicache", "get"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("<KEY>"), "{line}");
        assert!(line.contains("try '--help'"), "{line}");
        assert!(line.contains("usage: lexicache get <KEY>"), "{line}");
    }
}
