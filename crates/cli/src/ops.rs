//! The operator commands: `get`, `set`, `del`, `del-pattern`, `invalidate-tags`, `exists`,
//! `ttl`, `stats`, `health`, `keys`.

use clap::{Args, Subcommand};

use crate::{CliError, Format, Target};

/// The operator commands.
#[derive(Debug, Clone, Subcommand)]
pub enum OpCommand {
    /// Read a key.
    Get(GetArgs),
}

/// Options of `lexicache get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
}

/// Runs an operator command against a connected backend.
///
/// # Errors
///
/// A [`CliError`] whose exit code says how it failed.
pub async fn run(target: &Target, format: Format, cmd: &OpCommand) -> Result<(), CliError> {
    let _ = (target, format, cmd);
    Err(CliError::Usage("not yet".into()))
}
