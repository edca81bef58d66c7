//! [`ConfigError`]: one variant per rule, each saying which field, from which source, and what
//! is wrong.

use std::fmt;
use std::path::PathBuf;

use lexicache_core::{Error, ErrorKind, Operation};

/// Where a setting is: its path (`backends.1.port`) and the source it came from
/// (`YAML file `/etc/app/cache.yaml``, `environment variable `LEXICACHE_BACKENDS__1__PORT``,
/// or `the defaults` for a value nobody set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The dotted path of the field, e.g. `backends.1.port` or `service.serializer.keys.0.key`.
    pub field: String,
    /// Where its value came from.
    pub source: String,
}

impl Location {
    /// A location with no known source (a config built in code).
    #[must_use]
    pub fn new(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            source: "the configuration".to_owned(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (from {})", self.field, self.source)
    }
}

/// Why a configuration was refused. Messages name the field, its source and the problem, and
/// never repeat a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A configuration file that was asked for does not exist.
    #[error("config file `{}` does not exist", path.display())]
    FileNotFound {
        /// The path.
        path: PathBuf,
    },
    /// A value could not be read (wrong type, bad duration, bad syntax ...).
    #[error("{at}: {problem}")]
    Parse {
        /// The field and source.
        at: Location,
        /// What is wrong.
        problem: String,
    },
    /// A field that does not exist anywhere.
    #[error("{at}: unknown field `{field}`; expected one of {expected}")]
    UnknownField {
        /// Where it was found.
        at: Location,
        /// The field's name.
        field: String,
        /// The fields accepted there.
        expected: String,
    },
    /// A field of another backend type (`servers` on a Redis backend).
    #[error(
        "{at}: `{field}` is not a setting of {backend_type} backends; it belongs to {belongs_to} \
         backends (check `type`, or remove it)"
    )]
    ForeignField {
        /// Where it was found.
        at: Location,
        /// The field's name.
        field: String,
        /// The backend's `type`.
        backend_type: String,
        /// The types that have this field.
        belongs_to: String,
    },
    /// A field in the wrong section of a tiered backend (`prefix` beside `l2` instead of in
    /// it, `name` inside `l2`, ...).
    #[error("{at}: {hint}")]
    Misplaced {
        /// Where it was found.
        at: Location,
        /// The field's name.
        field: String,
        /// Where it goes instead.
        hint: String,
    },
    /// A tiered backend whose L2 cannot carry invalidations, without `invalidation: none`.
    #[error(
        "{at}: a tiered backend over {l2_type} has no invalidation channel (only a Redis `l2` \
         can tell other processes what changed); write `invalidation: none` to accept that \
         other processes' changes reach this process's L1 only when its copy expires (after at \
         most `l1_ttl`, {l1_ttl} here), or use a Redis `l2`"
    )]
    NoInvalidationChannel {
        /// The `invalidation` field and its source.
        at: Location,
        /// The L2's `type`.
        l2_type: String,
        /// The L1 TTL, as written (`30s`).
        l1_ttl: String,
    },
    /// A `*_file` secret could not be read.
    #[error("{at}: cannot read the secret file `{}`: {reason}", path.display())]
    SecretFile {
        /// The `*_file` field and source.
        at: Location,
        /// The file.
        path: PathBuf,
        /// Why (not found, permission denied, not UTF-8 ...).
        reason: String,
    },
    /// Two settings that exclude each other are both set.
    #[error("{at}: cannot be set together with `{other}`; {hint}")]
    Conflict {
        /// The second of the two.
        at: Location,
        /// The other field.
        other: String,
        /// Which one to keep.
        hint: String,
    },
    /// A required setting is missing.
    #[error("{at}: missing; {problem}")]
    Missing {
        /// Where it should be.
        at: Location,
        /// What it is needed for.
        problem: String,
    },
    /// No backend is configured while the configuration is enabled.
    #[error("`backends` is empty: configure at least one backend (or set `enabled: false`)")]
    NoBackends,
    /// Several enabled backends and none is `default: true`.
    #[error(
        "`backends`: {count} backends are enabled ({names}) and none has `default: true`; mark \
         exactly one as the default"
    )]
    NoDefaultBackend {
        /// How many are enabled.
        count: usize,
        /// Their names.
        names: String,
    },
    /// More than one enabled backend has `default: true`.
    #[error("{at}: `{second}` is a second default backend after `{first}`; mark exactly one")]
    MultipleDefaults {
        /// The second `default` field and its source.
        at: Location,
        /// The first default backend.
        first: String,
        /// The second.
        second: String,
    },
    /// Two backends share a name.
    #[error("{at}: the backend name `{name}` is used twice; names must be unique")]
    DuplicateName {
        /// The second `name` field and its source.
        at: Location,
        /// The name.
        name: String,
    },
    /// A number or duration outside what the field accepts.
    #[error("{at}: {value} is out of range; {expected}")]
    OutOfRange {
        /// The field and source.
        at: Location,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A URL that does not parse.
    #[error("{at}: invalid URL: {reason}")]
    InvalidUrl {
        /// The field and source.
        at: Location,
        /// Why (never the URL itself, which may hold a password).
        reason: String,
    },
    /// A `host:port` address that does not parse.
    #[error("{at}: invalid address `{address}`: {reason}")]
    InvalidAddress {
        /// The field and source.
        at: Location,
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// A serializer key of the wrong length.
    #[error("{at}: the key is {len} bytes; {required}")]
    KeyLength {
        /// The key's field and source.
        at: Location,
        /// Its length in bytes.
        len: usize,
        /// What is required.
        required: String,
    },
    /// Production: Redis on a non-loopback host with neither a password nor TLS.
    #[error(
        "{at}: refused in production: Redis at `{host}` has neither a password nor TLS; set \
         `password` (or `password_file`) or `tls: true`"
    )]
    InsecureRedis {
        /// The backend and source.
        at: Location,
        /// The non-loopback host.
        host: String,
    },
    /// Production: a signed or encrypted serializer with no keys.
    #[error(
        "{at}: refused in production: the {kind} serializer has no keys; set \
         `service.serializer.keys` (key material from the environment or `key_file`)"
    )]
    MissingKeys {
        /// The `keys` field and source.
        at: Location,
        /// `signed` or `encrypted`.
        kind: String,
    },
    /// Production: `clear_on_start: true`.
    #[error("{at}: refused in production: `clear_on_start` would wipe the cache on every start")]
    ClearOnStart {
        /// The field and source.
        at: Location,
    },
    /// The provider was asked for a backend it does not have.
    #[error("no backend named `{name}`; the enabled backends are: {known}")]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
}

impl ConfigError {
    /// The location the error is about, where it has one.
    #[must_use]
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Parse { at, .. }
            | Self::UnknownField { at, .. }
            | Self::ForeignField { at, .. }
            | Self::Misplaced { at, .. }
            | Self::NoInvalidationChannel { at, .. }
            | Self::SecretFile { at, .. }
            | Self::Conflict { at, .. }
            | Self::Missing { at, .. }
            | Self::MultipleDefaults { at, .. }
            | Self::DuplicateName { at, .. }
            | Self::OutOfRange { at, .. }
            | Self::InvalidUrl { at, .. }
            | Self::InvalidAddress { at, .. }
            | Self::KeyLength { at, .. }
            | Self::InsecureRedis { at, .. }
            | Self::MissingKeys { at, .. }
            | Self::ClearOnStart { at } => Some(at),
            Self::FileNotFound { .. }
            | Self::NoBackends
            | Self::NoDefaultBackend { .. }
            | Self::UnknownBackend { .. } => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::new(ErrorKind::Config, "config")
            .with_operation(Operation::Connect)
            .with_message(e.to_string())
            .with_source(e)
    }
}
