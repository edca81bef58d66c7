//! `lexicache bench`: a Zipf workload against any backend, with the raw driver beside it.

pub mod report;

use clap::Args;

use crate::{CliError, Format, TargetArgs};

/// Options of `lexicache bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {}

/// Runs the benchmark.
///
/// # Errors
///
/// A [`CliError`] for bad settings or a failing backend.
pub async fn run(target: &TargetArgs, format: Format, args: &BenchArgs) -> Result<(), CliError> {
    let _ = (target, format, args);
    Err(CliError::Usage("not yet".into()))
}
