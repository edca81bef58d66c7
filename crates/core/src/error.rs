//! The one error type of lexicache: a [`Error`] with a classified [`ErrorKind`].
//!
//! Errors are cheap to clone (the source is shared behind an `Arc`), so every waiter of a
//! coalesced load receives the same error.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A shared, thread-safe error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type used throughout lexicache.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of which backend reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backend could not be reached or the connection broke.
    Connection,
    /// The operation did not finish within its deadline.
    Timeout,
    /// The key is empty, too long, or otherwise not accepted.
    KeyInvalid,
    /// The value is larger than the backend accepts.
    ValueTooLarge,
    /// A value could not be encoded or decoded.
    Serialization,
    /// The backend cannot perform this operation (for example `clear` on memcached).
    Unsupported,
    /// The circuit breaker is open; the call was not attempted.
    CircuitOpen,
    /// A lock that the caller expected to hold does not exist.
    LockNotHeld,
    /// A lock exists but is owned by someone else.
    LockOwnership,
    /// A lock could not be acquired in time.
    LockTimeout,
    /// Configuration is invalid.
    Config,
    /// A loader passed to `get_or_set` returned an error.
    LoaderFailed,
    /// A loader passed to `get_or_set` panicked.
    LoaderPanicked,
    /// The backend reported an error that fits no other kind.
    Backend,
    /// A request-scoped operation ran outside any request scope, or after its scope ended.
    NoRequestScope,
}

impl ErrorKind {
    /// Whether errors of this kind are usually transient, so that retrying may succeed.
    #[must_use]
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Connection | Self::Timeout | Self::CircuitOpen | Self::LockTimeout
        )
    }

    /// A short, stable, snake_case name, used as a metrics label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::KeyInvalid => "key_invalid",
            Self::ValueTooLarge => "value_too_large",
            Self::Serialization => "serialization",
            Self::Unsupported => "unsupported",
            Self::CircuitOpen => "circuit_open",
            Self::LockNotHeld => "lock_not_held",
            Self::LockOwnership => "lock_ownership",
            Self::LockTimeout => "lock_timeout",
            Self::Config => "config",
            Self::LoaderFailed => "loader_failed",
            Self::LoaderPanicked => "loader_panicked",
            Self::Backend => "backend",
            Self::NoRequestScope => "no_request_scope",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation during which an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`CacheBackend::get`](crate::CacheBackend::get).
    Get,
    /// [`CacheBackend::set`](crate::CacheBackend::set).
    Set,
    /// [`CacheBackend::delete`](crate::CacheBackend::delete).
    Delete,
    /// [`CacheBackend::exists`](crate::CacheBackend::exists).
    Exists,
    /// [`CacheBackend::get_many`](crate::CacheBackend::get_many).
    GetMany,
    /// [`CacheBackend::set_many`](crate::CacheBackend::set_many).
    SetMany,
    /// [`CacheBackend::delete_many`](crate::CacheBackend::delete_many).
    DeleteMany,
    /// [`CacheBackend::delete_pattern`](crate::CacheBackend::delete_pattern).
    DeletePattern,
    /// [`CacheBackend::clear`](crate::CacheBackend::clear).
    Clear,
    /// [`CacheBackend::keys`](crate::CacheBackend::keys).
    Keys,
    /// [`CacheBackend::health_check`](crate::CacheBackend::health_check).
    Health,
    /// [`CacheBackend::stats`](crate::CacheBackend::stats).
    Stats,
    /// Connecting to a backend.
    Connect,
    /// Encoding a value.
    Serialize,
    /// Decoding a value.
    Deserialize,
    /// Running a loader for `get_or_set`.
    Load,
    /// Acquiring, extending or releasing a lock.
    Lock,
}

impl Operation {
    /// All operations, in declaration order.
    pub const ALL: [Operation; 17] = [
        Self::Get,
        Self::Set,
        Self::Delete,
        Self::Exists,
        Self::GetMany,
        Self::SetMany,
        Self::DeleteMany,
        Self::DeletePattern,
        Self::Clear,
        Self::Keys,
        Self::Health,
        Self::Stats,
        Self::Connect,
        Self::Serialize,
        Self::Deserialize,
        Self::Load,
        Self::Lock,
    ];

    /// A short, stable, snake_case name, used as a metrics label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Exists => "exists",
            Self::GetMany => "get_many",
            Self::SetMany => "set_many",
            Self::DeleteMany => "delete_many",
            Self::DeletePattern => "delete_pattern",
            Self::Clear => "clear",
            Self::Keys => "keys",
            Self::Health => "health",
            Self::Stats => "stats",
            Self::Connect => "connect",
            Self::Serialize => "serialize",
            Self::Deserialize => "deserialize",
            Self::Load => "load",
            Self::Lock => "lock",
        }
    }

    /// Whether this operation reads entries, so that its hits and misses count toward the
    /// hit rate.
    #[must_use]
    pub const fn is_read(self) -> bool {
        matches!(self, Self::Get | Self::GetMany | Self::Exists)
    }

    /// The position of this operation in [`Operation::ALL`], for table lookups.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from any part of lexicache.
///
/// It carries a classified [`ErrorKind`], the backend that reported it, the operation, whether a
/// retry may succeed, a message, and optionally the underlying driver error. It is `Clone`.
///
/// ```
/// use lexicache_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::Timeout, "redis")
///     .with_operation(Operation::Get)
///     .with_message("no reply within 250ms");
/// assert!(err.is_retryable());
/// assert_eq!(err.to_string(), "redis get: timeout: no reply within 250ms");
/// ```
#[derive(Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    kind: ErrorKind,
    backend: Cow<'static, str>,
    operation: Option<Operation>,
    retryable: bool,
    message: Cow<'static, str>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` reported by `backend`. Retryable defaults to
    /// [`ErrorKind::is_transient`].
    #[must_use]
    pub fn new(kind: ErrorKind, backend: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            backend: backend.into(),
            operation: None,
            retryable: kind.is_transient(),
            message: Cow::Borrowed(""),
            source: None,
        }
    }

    /// A [`ErrorKind::KeyInvalid`] error with an explanation.
    #[must_use]
    pub fn key_invalid(
        backend: impl Into<Cow<'static, str>>,
        why: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(ErrorKind::KeyInvalid, backend).with_message(why)
    }

    /// A [`ErrorKind::ValueTooLarge`] error for a value of `len` bytes over the `max` allowed.
    #[must_use]
    pub fn value_too_large(backend: impl Into<Cow<'static, str>>, len: usize, max: usize) -> Self {
        Self::new(ErrorKind::ValueTooLarge, backend).with_message(format!(
            "value is {len} bytes, over the maximum of {max} bytes"
        ))
    }

    /// A [`ErrorKind::ValueTooLarge`] error for a value of `len` bytes *read back* from
    /// `backend`, over its maximum of `max`: another client (or a backend configured with a
    /// larger limit) stored it, and it is refused rather than handed to callers and decoders
    /// sized by the limit.
    #[must_use]
    pub fn stored_value_too_large(
        backend: impl Into<Cow<'static, str>>,
        len: usize,
        max: usize,
    ) -> Self {
        Self::new(ErrorKind::ValueTooLarge, backend).with_message(format!(
            "stored value is {len} bytes, over the maximum of {max} bytes: refused on read"
        ))
    }

    /// A [`ErrorKind::Unsupported`] error for `operation`.
    #[must_use]
    pub fn unsupported(backend: impl Into<Cow<'static, str>>, operation: Operation) -> Self {
        Self::new(ErrorKind::Unsupported, backend)
            .with_operation(operation)
            .with_message(format!("this backend cannot perform {operation}"))
    }

    /// A [`ErrorKind::CircuitOpen`] error: `backend`'s circuit breaker refused the call without
    /// attempting it. Retryable, since the circuit closes again once the backend recovers.
    #[must_use]
    pub fn circuit_open(backend: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::CircuitOpen, backend)
            .with_message("circuit open: the call was not attempted")
    }

    /// Sets the operation.
    #[must_use]
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Sets the operation only if none is set yet (layers use this so the innermost wins).
    #[must_use]
    pub fn or_operation(mut self, operation: Operation) -> Self {
        self.operation.get_or_insert(operation);
        self
    }

    /// Sets the human-readable message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// Overrides whether a retry may succeed.
    #[must_use]
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Replaces the backend name.
    #[must_use]
    pub fn with_backend(mut self, backend: impl Into<Cow<'static, str>>) -> Self {
        self.backend = backend.into();
        self
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend that reported the error.
    #[must_use]
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The operation during which it happened, if known.
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// Whether a retry may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message, possibly empty.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = String::with_capacity(32 + self.message.len());
        out.push_str(&self.backend);
        if let Some(op) = self.operation {
            out.push(' ');
            out.push_str(op.as_str());
        }
        out.push_str(": ");
        out.push_str(self.kind.as_str());
        if !self.message.is_empty() {
            out.push_str(": ");
            out.push_str(&self.message);
        }
        out
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("backend", &self.backend)
            .field("operation", &self.operation)
            .field("retryable", &self.retryable)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_shares_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let err = Error::new(ErrorKind::Connection, "redis").with_source(io);
        let copy = err.clone();
        assert_eq!(copy.kind(), ErrorKind::Connection);
        let src = std::error::Error::source(&copy).expect("source kept");
        assert_eq!(src.to_string(), "reset by peer");
    }

    #[test]
    fn transient_kinds_default_to_retryable() {
        assert!(Error::new(ErrorKind::Connection, "x").is_retryable());
        assert!(!Error::new(ErrorKind::KeyInvalid, "x").is_retryable());
        assert!(Error::new(ErrorKind::KeyInvalid, "x")
            .retryable(true)
            .is_retryable());
    }

    #[test]
    fn display_without_operation_or_message() {
        assert_eq!(
            Error::new(ErrorKind::Backend, "memory").to_string(),
            "memory: backend"
        );
    }

    #[test]
    fn operation_table_indexes_match() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
    }
}
