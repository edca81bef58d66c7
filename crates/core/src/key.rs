//! The key rules, enforced in one place.
//!
//! Every backend and [`CacheService`](../lexicache_service/struct.CacheService.html) validates
//! keys with [`KeyRules::validate`], so an empty or oversized key is a
//! [`ErrorKind::KeyInvalid`](crate::ErrorKind::KeyInvalid) error everywhere and never a panic.

use crate::error::{Error, Operation, Result};

/// The default maximum key length in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// Rules every key must satisfy.
///
/// ```
/// use lexicache_core::KeyRules;
///
/// let rules = KeyRules::new().max_len(8);
/// assert!(rules.validate("user:42").is_ok());
/// assert!(rules.validate("").is_err());
/// assert!(rules.validate("user:4242").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    max_len: usize,
}

impl Default for KeyRules {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyRules {
    /// Rules with the default maximum length ([`DEFAULT_MAX_KEY_LEN`]).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_len: DEFAULT_MAX_KEY_LEN,
        }
    }

    /// Sets the maximum key length in bytes (at least 1).
    #[must_use]
    pub const fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = if max_len == 0 { 1 } else { max_len };
        self
    }

    /// The maximum key length in bytes.
    #[must_use]
    pub const fn max_key_len(&self) -> usize {
        self.max_len
    }

    /// Checks `key`: it must be non-empty and at most the maximum length in bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`](crate::ErrorKind::KeyInvalid), naming the rule broken.
    #[inline]
    pub fn validate(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::key_invalid("key", "key is empty"));
        }
        if key.len() > self.max_len {
            return Err(Error::key_invalid(
                "key",
                format!(
                    "key is {} bytes, over the maximum of {} bytes",
                    key.len(),
                    self.max_len
                ),
            ));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), with the error naming the `backend` and operation that
    /// refused the key: the check every backend runs before it sends anything.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`](crate::ErrorKind::KeyInvalid), naming the rule broken.
    #[inline]
    pub fn check(&self, key: &str, backend: &str, op: Operation) -> Result<()> {
        self.validate(key)
            .map_err(|e| e.with_backend(backend.to_owned()).with_operation(op))
    }

    /// Checks every key of a batch.
    ///
    /// # Errors
    ///
    /// The first [`ErrorKind::KeyInvalid`](crate::ErrorKind::KeyInvalid) found.
    pub fn validate_all<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Result<()> {
        keys.into_iter().try_for_each(|k| self.validate(k))
    }
}

/// A short, stable hash of a key for logs and spans, so keys themselves are never logged.
///
/// It is FNV-1a 64, printed as 16 hex digits: enough to correlate log lines, not to recover the key.
#[must_use]
pub fn key_hash(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn empty_key_is_invalid() {
        let err = KeyRules::new().validate("").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    }

    #[test]
    fn key_at_the_limit_is_valid_and_one_over_is_not() {
        let rules = KeyRules::new().max_len(4);
        assert!(rules.validate("abcd").is_ok());
        assert_eq!(
            rules.validate("abcde").unwrap_err().kind(),
            ErrorKind::KeyInvalid
        );
    }

    #[test]
    fn length_is_counted_in_bytes() {
        let rules = KeyRules::new().max_len(3);
        assert!(rules.validate("é").is_ok());
        assert!(rules.validate("éé").is_err());
    }

    #[test]
    fn key_hash_is_stable_and_short() {
        assert_eq!(key_hash("user:42"), key_hash("user:42"));
        assert_ne!(key_hash("user:42"), key_hash("user:43"));
        assert_eq!(key_hash("x").len(), 16);
    }
}
