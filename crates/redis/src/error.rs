//! Classifies fred's errors into lexicache's [`ErrorKind`]s, so callers can tell a dead server
//! (retry, or degrade to a default) from bad credentials (fix the configuration).

use std::borrow::Cow;

use fred::error::{Error as FredError, ErrorKind as FredKind};
use lexicache_core::{Error, ErrorKind, Operation};

/// The message of an authentication failure. It names the server's reply code (never the
/// credentials), so the fix is obvious from the log line alone.
fn auth_message(details: &str) -> Cow<'static, str> {
    if details.contains("WRONGPASS") {
        Cow::Borrowed("redis rejected the credentials (WRONGPASS): check the password/username")
    } else if details.contains("NOAUTH") {
        Cow::Borrowed("redis requires a password (NOAUTH): configure the password/username")
    } else {
        Cow::Borrowed("redis rejected the authentication: check the password/username")
    }
}

/// Maps a fred error to a lexicache error of `backend` during `operation`.
///
/// - IO, cancelled (fail-fast while disconnected), buffer full, cluster and sentinel trouble:
///   [`ErrorKind::Connection`], retryable;
/// - timeouts: [`ErrorKind::Timeout`], retryable;
/// - authentication, configuration and URL errors: [`ErrorKind::Config`], with a clear message;
/// - replies that do not parse: [`ErrorKind::Serialization`];
/// - everything else (protocol errors, server error replies): [`ErrorKind::Backend`].
pub(crate) fn map_error(err: FredError, backend: &str, operation: Operation) -> Error {
    let details = err.details();
    let (kind, message): (ErrorKind, Cow<'static, str>) = match err.kind() {
        FredKind::IO => (
            ErrorKind::Connection,
            Cow::Owned(format!("connection to redis failed: {details}")),
        ),
        FredKind::Canceled => (
            ErrorKind::Connection,
            Cow::Borrowed("not connected to redis (the command failed fast while disconnected)"),
        ),
        FredKind::Backpressure => (
            ErrorKind::Connection,
            Cow::Borrowed("the redis command buffer is full; the server is slow or unreachable"),
        ),
        FredKind::Cluster | FredKind::Routing | FredKind::Sentinel => (
            ErrorKind::Connection,
            Cow::Owned(format!("redis topology error: {details}")),
        ),
        FredKind::Tls => (
            ErrorKind::Connection,
            Cow::Owned(format!("TLS error talking to redis: {details}")),
        ),
        FredKind::Timeout => (
            ErrorKind::Timeout,
            Cow::Borrowed("redis did not answer within the command timeout"),
        ),
        FredKind::Auth => (ErrorKind::Config, auth_message(details)),
        FredKind::Config | FredKind::Url => (
            ErrorKind::Config,
            Cow::Owned(format!("invalid redis configuration: {details}")),
        ),
        FredKind::Parse => (
            ErrorKind::Serialization,
            Cow::Owned(format!("unexpected reply from redis: {details}")),
        ),
        _ if details.contains("WRONGPASS") || details.contains("NOAUTH") => {
            (ErrorKind::Config, auth_message(details))
        }
        _ => (
            ErrorKind::Backend,
            Cow::Owned(format!("redis error: {details}")),
        ),
    };
    Error::new(kind, backend.to_owned())
        .with_operation(operation)
        .with_message(message)
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(kind: FredKind, details: &'static str) -> Error {
        map_error(FredError::new(kind, details), "redis", Operation::Get)
    }

    #[test]
    fn connection_troubles_are_retryable_connection_errors() {
        for kind in [
            FredKind::IO,
            FredKind::Canceled,
            FredKind::Backpressure,
            FredKind::Cluster,
        ] {
            let err = kind_of(kind.clone(), "x");
            assert_eq!(err.kind(), ErrorKind::Connection, "{kind:?}");
            assert!(err.is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn timeout_is_a_timeout() {
        let err = kind_of(FredKind::Timeout, "Request timed out.");
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.is_retryable());
    }

    #[test]
    fn wrong_password_is_a_config_error_naming_the_reply() {
        let err = kind_of(
            FredKind::Auth,
            "WRONGPASS invalid username-password pair or user is disabled.",
        );
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.is_retryable());
        assert!(err.message().contains("WRONGPASS"), "{err}");
        assert!(err.message().contains("check the password"), "{err}");
    }

    #[test]
    fn parse_errors_are_serialization_errors_and_replies_are_backend_errors() {
        assert_eq!(
            kind_of(FredKind::Parse, "x").kind(),
            ErrorKind::Serialization
        );
        assert_eq!(
            kind_of(FredKind::InvalidArgument, "WRONGTYPE").kind(),
            ErrorKind::Backend
        );
    }

    #[test]
    fn the_operation_and_backend_are_recorded() {
        let err = map_error(
            FredError::new(FredKind::IO, "reset"),
            "sessions",
            Operation::SetMany,
        );
        assert_eq!(err.backend(), "sessions");
        assert_eq!(err.operation(), Some(Operation::SetMany));
    }
}
