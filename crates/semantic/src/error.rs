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
    /// The tier-1 cache backend failed (connection, timeout, bad key, ...).
    #[error("cache backend: {0}")]
    Backend(#[from] lexicache_core::Error),
}

impl From<Error> for lexicache_core::Error {
    fn from(e: Error) -> Self {
        if let Error::Backend(inner) = e {
            return inner;
        }
        let kind = match &e {
            Error::DimensionMismatch { .. } | Error::InvalidInput(_) => ErrorKind::Config,
            Error::Corrupt(_) | Error::UnsupportedVersion { .. } => ErrorKind::Serialization,
            Error::Io { .. } | Error::Embedding(_) | Error::Backend(_) => ErrorKind::Backend,
        };
        lexicache_core::Error::new(kind, "semantic")
            .with_message(e.to_string())
            .with_source(e)
    }
}
