//! The one mapping from cache keys to the keys memcached stores.
//!
//! Memcached's text protocol separates tokens with spaces and ends commands with `\r\n`, and it
//! refuses keys over 250 bytes. lexicache keys may hold anything (spaces, control characters,
//! unicode) and be up to [`KeyRules`](lexicache_core::KeyRules)' limit long, so every key goes
//! through [`wire_key`] before it reaches a socket:
//!
//! - a *safe* key (printable ASCII `0x21..=0x7E` only, at most 250 bytes, and not starting with
//!   [`HASHED_KEY_MARKER`]) is sent unchanged, so operators can read it in `stats cachedump` or
//!   `lru_crawler metadump`;
//! - any other key becomes [`HASHED_KEY_MARKER`] followed by the lowercase hex SHA-256 digest of
//!   the whole key (namespace prefix included): 72 bytes, all safe.
//!
//! The mapping is injective (short of a SHA-256 collision): a mapped key starts with the marker
//! exactly when it was hashed, because a safe key that happens to start with the marker is
//! hashed too. A caller therefore cannot forge another key's wire form, and no input can put a
//! space or line break on the wire.

use std::borrow::Cow;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The longest key memcached accepts, in bytes.
pub const MAX_WIRE_KEY_LEN: usize = 250;

/// The prefix of every hashed key: `"~sha256:"`, followed by 64 lowercase hex digits.
pub const HASHED_KEY_MARKER: &str = "~sha256:";

/// Whether `key` may be sent to memcached as it is: printable ASCII (`0x21..=0x7E`) only, at
/// most [`MAX_WIRE_KEY_LEN`] bytes, and not starting with [`HASHED_KEY_MARKER`].
///
/// ```
/// use lexicache_memcached::is_safe_key;
///
/// assert!(is_safe_key("user:42"));
/// assert!(!is_safe_key("with space"));
/// assert!(!is_safe_key("caf\u{e9}"));
/// assert!(!is_safe_key("~sha256:forged"));
/// ```
#[must_use]
pub fn is_safe_key(key: &str) -> bool {
    key.len() <= MAX_WIRE_KEY_LEN
        && !key.starts_with(HASHED_KEY_MARKER)
        && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The key memcached stores for the full key `key` (the backend's namespace prefix followed by
/// the caller's key): `key` itself when it [is safe](is_safe_key), else
/// [`HASHED_KEY_MARKER`] plus the hex SHA-256 digest of `key`.
///
/// ```
/// use lexicache_memcached::{wire_key, HASHED_KEY_MARKER};
///
/// assert_eq!(wire_key("app:user:42"), "app:user:42");
///
/// let hostile = wire_key("app:a\r\nflush_all\r\n");
/// assert!(hostile.starts_with(HASHED_KEY_MARKER));
/// assert_eq!(hostile.len(), HASHED_KEY_MARKER.len() + 64);
/// assert!(hostile.bytes().all(|b| b.is_ascii_graphic()));
/// ```
#[must_use]
pub fn wire_key(key: &str) -> Cow<'_, str> {
    if is_safe_key(key) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(hashed(key))
    }
}

/// [`wire_key`] of the full key `prefix + key`. It borrows `key` when there is no prefix and
/// the key is safe, and allocates otherwise.
pub(crate) fn wire_key_with_prefix<'k>(prefix: &str, key: &'k str) -> Cow<'k, str> {
    if prefix.is_empty() {
        return wire_key(key);
    }
    let mut full = String::with_capacity(prefix.len() + key.len());
    full.push_str(prefix);
    full.push_str(key);
    if is_safe_key(&full) {
        Cow::Owned(full)
    } else {
        Cow::Owned(hashed(&full))
    }
}

fn hashed(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(HASHED_KEY_MARKER.len() + 64);
    out.push_str(HASHED_KEY_MARKER);
    for b in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_keys_pass_unchanged() {
        for k in ["a", "user:42", "a*b", "[x]", "#hash", "~", "~sha256", "!~"] {
            assert_eq!(wire_key(k), k);
        }
        let longest = "k".repeat(MAX_WIRE_KEY_LEN);
        assert_eq!(wire_key(&longest), longest.as_str());
    }

    #[test]
    fn unsafe_keys_are_hashed_to_safe_fixed_length_keys() {
        let long = "k".repeat(MAX_WIRE_KEY_LEN + 1);
        for k in [
            "with space",
            "a\r\nflush_all\r\n",
            "k\0",
            "tab\t",
            "del\x7f",
            "caf\u{e9}",
            "🦀",
            long.as_str(),
        ] {
            let w = wire_key(k);
            assert!(w.starts_with(HASHED_KEY_MARKER), "{k:?}");
            assert_eq!(w.len(), HASHED_KEY_MARKER.len() + 64, "{k:?}");
            assert!(is_valid_on_the_wire(&w), "{k:?} -> {w}");
        }
    }

    #[test]
    fn a_safe_key_starting_with_the_marker_is_hashed_so_it_cannot_be_forged() {
        let victim = "with space";
        let forged = wire_key(victim).into_owned();
        assert_ne!(wire_key(&forged), forged.as_str());
        assert!(wire_key(&forged).starts_with(HASHED_KEY_MARKER));
    }

    #[test]
    fn digest_is_sha256_of_the_full_key() {
        // SHA-256("a b"), computed independently.
        assert_eq!(
            wire_key("a b"),
            "~sha256:c8687a08aa5d6ed2044328fa6a697ab8e96dc34291e8c2034ae8c38e6fcc6d65"
        );
    }

    #[test]
    fn prefix_is_part_of_the_hashed_key() {
        assert_eq!(wire_key_with_prefix("ns:", "a b"), wire_key("ns:a b"));
        assert_eq!(wire_key_with_prefix("ns:", "ab"), "ns:ab");
        assert_ne!(
            wire_key_with_prefix("ns1:", "a b"),
            wire_key_with_prefix("ns2:", "a b")
        );
        // A prefix that makes a safe key too long moves it to the hashed form.
        let key = "k".repeat(MAX_WIRE_KEY_LEN);
        assert!(wire_key_with_prefix("ns:", &key).starts_with(HASHED_KEY_MARKER));
    }

    fn is_valid_on_the_wire(k: &str) -> bool {
        k.len() <= MAX_WIRE_KEY_LEN && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
    }
}
