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
  lexicache demo                 tour the library on the embedded memory backend
  lexicache demo --callers 5000  the same, with a bigger stampede

Exit codes: 0 ok, 1 internal failure, 2 usage or configuration error, 3 backend error.";

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

/// Parses the process arguments, runs the command on a multi-thread runtime and returns the
/// exit code: what `main` of the `lexicache` binary does.
#[must_use]
pub fn run_cli() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version on stdout (exit 0) and usage errors on stderr (2).
            let _ = e.print();
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
