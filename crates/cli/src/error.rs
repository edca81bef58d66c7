//! [`CliError`] and the exit codes it maps to.

use std::fmt;

use lexicache::{Error, ErrorKind};

/// Exit code of an internal failure, such as a demo check that did not hold.
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a backend error.
pub const EXIT_BACKEND: u8 = 3;

/// Why a command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// The cache reported an error.
    Cache(Error),
    /// A step did not observe what it promises: a bug in lexicache, not in the environment.
    Check(String),
}

impl CliError {
    /// The process exit code for this error: configuration errors are usage errors (2), other
    /// cache errors are backend errors (3), failed checks are internal failures (1).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Cache(e) if e.kind() == ErrorKind::Config => EXIT_USAGE,
            Self::Cache(_) => EXIT_BACKEND,
            Self::Check(_) => EXIT_INTERNAL,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cache(e) => write!(f, "{e}"),
            Self::Check(what) => write!(f, "demo check failed: {what}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Cache(e) => Some(e),
            Self::Check(_) => None,
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        Self::Cache(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error_class() {
        let backend = CliError::from(Error::new(ErrorKind::Connection, "redis"));
        let config = CliError::from(Error::new(ErrorKind::Config, "redis"));
        let check = CliError::Check("loader ran twice".into());
        assert_eq!(
            (backend.exit_code(), config.exit_code(), check.exit_code()),
            (EXIT_BACKEND, EXIT_USAGE, EXIT_INTERNAL)
        );
    }
}
