//! The crate's error type: what can go wrong embedding, indexing and persisting.

use std::{io, path::PathBuf};

use lexicache_core::ErrorKind;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from an embedder or a vector index.
///
/// Bad input (a vector of the wrong dimension, a zero or non-finite vector, text with no
/// words) and damaged index files are typed errors, never panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector's length differs from the index's (or embedder's) dimension.
    #[error("vector has {actual} dimensions, expected {expected}")]
    DimensionMismatch {
        /// The dimension the index was built with.
        expected: usize,
        /// The length of the vector given.
        actual: usize,
    },
    /// Input that can never be valid: a zero or non-finite vector, text with no words, a
    /// zero dimension or capacity.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading or writing an index file failed.
    #[error("index file {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// An index file is truncated, damaged (checksum mismatch) or not an index file.
    #[error("index file is corrupt: {0}")]
    Corrupt(String),
    /// An index file was written by a format version this build cannot read.
    #[error(
        "index file format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// An embedding model or service failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// An embedding service stayed unreachable, timed out or overloaded through every
    /// attempt. Transient: trying again later may succeed.
    #[error("embedding service unavailable after {}: {message}", attempts_text(*attempts))]
    EmbeddingUnavailable {
        /// How many requests were made.
        attempts: u32,
        /// Whether the last attempt timed out (rather than failed to connect or was refused
        /// with 429/5xx).
        timed_out: bool,
        /// What the last attempt ran into.
        message: String,
    },
    /// An embedding service refused the request with a client error status (400, 401, 403,
    /// 404, 422, ...). Asking again gets the same answer.
    #[error("embedding service rejected the request (HTTP {status}): {message}")]
    EmbeddingRejected {
        /// The HTTP status.
        status: u16,
        /// The endpoint and the server's message, truncated, with any API key scrubbed.
        message: String,
    },
    /// The tier-1 cache backend failed (connection, timeout, bad key, ...).
    #[error("cache backend: {0}")]
    Backend(#[from] lexicache_core::Error),
}

impl From<Error> for lexicache_core::Error {
    fn from(e: Error) -> Self {
        if let Error::Backend(inner) = e {
            return inner;
        }
        let (kind, retryable) = match &e {
            Error::EmbeddingUnavailable { timed_out, .. } => (
                if *timed_out {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Connection
                },
                true,
            ),
            other => (kind_of(other), false),
        };
        lexicache_core::Error::new(kind, "semantic")
            .with_message(e.to_string())
            .retryable(retryable)
            .with_source(e)
    }
}

fn kind_of(e: &Error) -> ErrorKind {
    match e {
        Error::DimensionMismatch { .. } | Error::InvalidInput(_) => ErrorKind::Config,
        Error::Corrupt(_) | Error::UnsupportedVersion { .. } => ErrorKind::Serialization,
        Error::EmbeddingUnavailable { .. } => ErrorKind::Connection,
        Error::Io { .. }
        | Error::Embedding(_)
        | Error::EmbeddingRejected { .. }
        | Error::Backend(_) => ErrorKind::Backend,
    }
}

fn attempts_text(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_embedding_services_map_to_retryable_connection_or_timeout() {
        let timed_out: lexicache_core::Error = Error::EmbeddingUnavailable {
            attempts: 3,
            timed_out: true,
            message: "timed out after 200ms".into(),
        }
        .into();
        assert_eq!(timed_out.kind(), ErrorKind::Timeout);
        assert!(timed_out.is_retryable());
        assert!(timed_out.message().contains("after 3 attempts"));

        let refused: lexicache_core::Error = Error::EmbeddingUnavailable {
            attempts: 1,
            timed_out: false,
            message: "could not connect".into(),
        }
        .into();
        assert_eq!(refused.kind(), ErrorKind::Connection);
        assert!(refused.message().contains("after 1 attempt:"));

        let rejected: lexicache_core::Error = Error::EmbeddingRejected {
            status: 401,
            message: "bad key".into(),
        }
        .into();
        assert_eq!(rejected.kind(), ErrorKind::Backend);
        assert!(!rejected.is_retryable());
    }

    #[test]
    fn a_backend_error_converts_back_unchanged() {
        let inner = lexicache_core::Error::new(ErrorKind::Connection, "redis");
        let back: lexicache_core::Error = Error::Backend(inner).into();
        assert_eq!(back.kind(), ErrorKind::Connection);
        assert_eq!(back.backend(), "redis");
    }
}
