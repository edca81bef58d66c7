//! [`CliError`] and the exit codes it maps to.

use std::fmt;

use lexicache::config::ConfigError;
use lexicache::{Error, ErrorKind};

/// Exit code when the answer is "not found" (`get`, `exists`, `ttl` of a missing key, `del`
/// of keys that were not there), and of an internal failure such as a demo check that did
/// not hold.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code of an internal failure: the same as [`EXIT_NOT_FOUND`].
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code of a usage or configuration error, including a command the backend cannot run.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a backend error.
pub const EXIT_BACKEND: u8 = 3;

/// Why a command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// The cache reported an error.
    Cache(Error),
    /// The configuration did not load or validate.
    Config(ConfigError),
    /// The command line asks for something that cannot be done; the text says what to do.
    Usage(String),
    /// The key (or keys) the command is about do not exist: exit 1, nothing on stderr but this.
    NotFound(String),
    /// A step did not observe what it promises: a bug in lexicache, not in the environment.
    Check(String),
}

impl CliError {
    /// The process exit code for this error: configuration, usage and input errors and
    /// unsupported commands are 2, other cache errors 3, not found and failed checks 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Cache(e) => match e.kind() {
                ErrorKind::Config
                | ErrorKind::Unsupported
                | ErrorKind::KeyInvalid
                | ErrorKind::ValueTooLarge => EXIT_USAGE,
                _ => EXIT_BACKEND,
            },
            Self::Config(_) | Self::Usage(_) => EXIT_USAGE,
            Self::NotFound(_) | Self::Check(_) => EXIT_NOT_FOUND,
        }
    }

    /// What to do about it, where the error itself does not say.
    fn hint(&self) -> Option<&'static str> {
        let Self::Cache(e) = self else {
            return match self {
                Self::Config(_) => {
                    Some("fix the configuration (docs/configuration.md lists every field)")
                }
                _ => None,
            };
        };
        Some(match e.kind() {
            ErrorKind::Connection | ErrorKind::Timeout => {
                "check that the server is running and reachable at the address given \
                 (--redis, --memcached or --config); `cargo xtask services up` starts local ones"
            }
            ErrorKind::CircuitOpen => "the backend has been failing; retry once it recovers",
            ErrorKind::Unsupported => "this backend cannot do that; run it against one that can",
            ErrorKind::KeyInvalid => "fix the key: the backend's key rules are in docs/backends.md",
            ErrorKind::ValueTooLarge => {
                "store a smaller value, or raise the backend's max_value_size"
            }
            ErrorKind::Serialization => {
                "the stored bytes do not decode with the configured serializer; check the \
                 serializer and its keys in --config"
            }
            ErrorKind::Config => "fix the configuration (docs/configuration.md lists every field)",
            _ => return None,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cache(e) => write!(f, "{e}")?,
            Self::Config(e) => write!(f, "configuration: {e}")?,
            Self::Usage(what) | Self::NotFound(what) => f.write_str(what)?,
            Self::Check(what) => write!(f, "check failed: {what}")?,
        }
        match self.hint() {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Cache(e) => Some(e),
            Self::Config(e) => Some(e),
            Self::Usage(_) | Self::NotFound(_) | Self::Check(_) => None,
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        Self::Cache(e)
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error_class() {
        let backend = CliError::from(Error::new(ErrorKind::Connection, "redis"));
        let config = CliError::from(Error::new(ErrorKind::Config, "redis"));
        let unsupported = CliError::from(Error::new(ErrorKind::Unsupported, "memcached"));
        let check = CliError::Check("loader ran twice".into());
        let missing = CliError::NotFound("key `a` not found".into());
        assert_eq!(
            [
                backend.exit_code(),
                config.exit_code(),
                unsupported.exit_code()
            ],
            [EXIT_BACKEND, EXIT_USAGE, EXIT_USAGE]
        );
        assert_eq!(
            [check.exit_code(), missing.exit_code()],
            [EXIT_INTERNAL, EXIT_NOT_FOUND]
        );
    }

    #[test]
    fn connection_errors_say_what_to_do_on_one_line() {
        let e = CliError::from(Error::new(ErrorKind::Connection, "connection refused"));
        let text = e.to_string();
        assert!(text.contains("check that the server is running"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}
