//! What a backend can do, so callers and the behaviour suite can adapt instead of guessing.

/// The capabilities of a [`CacheBackend`](crate::CacheBackend).
///
/// The struct is `#[non_exhaustive]`: start from [`Capabilities::default`] (everything off) and
/// set fields, so new capabilities can be added without breaking backends.
///
/// ```
/// use lexicache_core::Capabilities;
///
/// let mut caps = Capabilities::default();
/// caps.pattern_delete = true;
/// caps.clear = true;
/// assert!(caps.pattern_delete && !caps.list_keys);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `delete_pattern` works (otherwise it returns `Unsupported`).
    pub pattern_delete: bool,
    /// `clear` works (otherwise it returns `Unsupported`).
    pub clear: bool,
    /// Keys can be listed (used by `keys` in the CLI).
    pub list_keys: bool,
    /// The backend expires entries itself; a TTL is honoured without a read.
    pub native_ttl: bool,
    /// Batch operations are native (one round trip) rather than loops of single operations.
    pub native_batch: bool,
    /// Entries live in this process, and the backend keeps decoded values
    /// ([`CacheValue::object`](crate::CacheValue::object)) so hits need not decode bytes.
    pub in_process: bool,
    /// `set_entry` keeps the decoded object and `get_entry` hands it back, so writers should
    /// attach it. True for in-process backends, and for a two-level cache, whose L1 keeps it.
    pub keeps_objects: bool,
    /// Expiry follows tokio's clock, so tests can use `tokio::time::pause` and `advance`.
    pub tokio_clock: bool,
    /// Entries are visible to other processes sharing the backend.
    pub distributed: bool,
    /// The longest key a caller may pass, in bytes, not counting the backend's own namespace
    /// prefix.
    pub max_key_len: usize,
    /// The largest value accepted, in bytes, if the backend has a limit.
    pub max_value_size: Option<usize>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            pattern_delete: false,
            clear: false,
            list_keys: false,
            native_ttl: false,
            native_batch: false,
            in_process: false,
            keeps_objects: false,
            tokio_clock: false,
            distributed: false,
            max_key_len: crate::key::DEFAULT_MAX_KEY_LEN,
            max_value_size: None,
        }
    }
}
