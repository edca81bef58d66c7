//! The lock contract: a [`LockStore`] grants exclusive, expiring ownership of a named resource.
//!
//! Stores live with their backends (`lexicache-memory`, `lexicache-redis`,
//! `lexicache-memcached`); the auto-renewing lock, guards and stampede protection built on them
//! live in `lexicache-lock`.
//!
//! ```
//! use lexicache_core::lock::{FencingToken, LockOwner};
//!
//! // Owners are unguessable and unique per acquisition; a label helps when reading a store.
//! let a = LockOwner::new("worker-1");
//! let b = LockOwner::new("worker-1");
//! assert_ne!(a, b);
//! assert!(a.as_str().starts_with("worker-1:"));
//!
//! // Fencing tokens only ever grow for a resource; a protected resource rejects older ones.
//! assert!(FencingToken::new(8) > FencingToken::new(7));
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Operation, Result};

/// A shared, dynamically chosen lock store.
pub type SharedLockStore = Arc<dyn LockStore>;

/// The owner of a lock: a label plus 128 random bits, unique per acquisition.
///
/// A store keeps the owner's token as the lock's value and releases or extends only for the
/// same token, so a holder whose lock expired and was taken by another cannot remove the new
/// holder's lock. The token is not a secret in the sense of a password, but anyone who knows it
/// can release the lock, so it is not logged in full: `Debug` and `Display` show the label and
/// the first 8 hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LockOwner(Arc<str>);

impl LockOwner {
    /// A new owner labelled `label` (for example a host or worker name): `label:<32 hex digits>`.
    ///
    /// # Panics
    ///
    /// Panics if the operating system has no source of randomness (as `getrandom` does).
    #[must_use]
    pub fn new(label: &str) -> Self {
        let mut bytes = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut bytes) {
            // No entropy at all means no unguessable owner; continuing would hand out
            // predictable tokens, which is worse than stopping.
            panic!("lexicache: no randomness for a lock owner: {e}");
        }
        let mut token = String::with_capacity(label.len() + 33);
        token.push_str(label);
        token.push(':');
        for b in bytes {
            use fmt::Write as _;
            let _ = write!(token, "{b:02x}");
        }
        Self(token.into())
    }

    /// A new owner labelled with this process's id: `pid-<pid>:<32 hex digits>`.
    #[must_use]
    pub fn random() -> Self {
        Self::new(&format!("pid-{}", std::process::id()))
    }

    /// An owner from a token stored earlier (for example to release a lock after a restart).
    #[must_use]
    pub fn from_token(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// The full token, as a store keeps it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label and the first 8 hex digits: enough to tell owners apart in logs.
    fn short(&self) -> &str {
        let end = self.0.rfind(':').map_or(0, |i| i + 1);
        let cut = (end + 8).min(self.0.len());
        // Tokens made by `new` are ASCII after the label; a foreign token may not be.
        self.0.get(..cut).unwrap_or(&self.0)
    }
}

impl fmt::Debug for LockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockOwner({}…)", self.short())
    }
}

impl fmt::Display for LockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.short())
    }
}

/// A fencing token: every successful acquisition of a resource gets a larger one than every
/// earlier acquisition of it.
///
/// A lock can be lost without its holder noticing (a long pause, a network partition, a Redis
/// failover), so a resource that must never see writes from two holders checks the token: it
/// remembers the largest token it has accepted and rejects any write carrying a smaller one.
/// See `docs/stampede.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token with value `value`.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The token's value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A store of expiring, owned locks on named resources.
///
/// # Semantics every store follows
///
/// - [`acquire`](Self::acquire) takes the lock only if no live lock exists: `Ok(Some(token))`
///   when it did, with a [`FencingToken`] larger than any earlier one for the resource;
///   `Ok(None)` when another owner holds it. It never waits.
/// - [`release`](Self::release) and [`extend`](Self::extend) act only for the owner that holds
///   the lock, atomically (compare-and-delete, compare-and-expire). By another owner they fail
///   with [`ErrorKind::LockOwnership`]; on an absent or expired lock with
///   [`ErrorKind::LockNotHeld`]. In both cases the stored lock is left exactly as it was.
/// - A lock expires `ttl` after its acquisition or last extension (rounded up to the store's
///   resolution, never down to zero) and leaves nothing behind but the resource's fencing
///   counter.
/// - Resources are checked with the store's key rules; an invalid one is
///   [`ErrorKind::KeyInvalid`].
///
/// # Cancel safety
///
/// Dropping a returned future leaves the lock either taken or not. A dropped `acquire` may have
/// taken the lock without its caller learning the token; the lock then expires after `ttl`.
#[async_trait]
pub trait LockStore: Send + Sync + fmt::Debug + 'static {
    /// A short name used in errors, metrics and logs (for example `"redis"`).
    fn name(&self) -> &str;

    /// Takes the lock on `resource` for `owner` for `ttl`, if no one holds it.
    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>>;

    /// Removes the lock on `resource` if `owner` holds it.
    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()>;

    /// Resets the lock's expiry to `ttl` from now if `owner` holds it.
    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()>;

    /// Whether anyone holds a live lock on `resource`.
    async fn is_locked(&self, resource: &str) -> Result<bool>;
}

#[async_trait]
impl<L: LockStore + ?Sized> LockStore for Arc<L> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        (**self).acquire(resource, owner, ttl).await
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        (**self).release(resource, owner).await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        (**self).extend(resource, owner, ttl).await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        (**self).is_locked(resource).await
    }
}

impl Error {
    /// A [`ErrorKind::LockNotHeld`] error: `store` has no live lock on the resource.
    #[must_use]
    pub fn lock_not_held(store: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::LockNotHeld, store)
            .with_operation(Operation::Lock)
            .with_message("the lock is not held: it expired or was released")
    }

    /// A [`ErrorKind::LockOwnership`] error: the lock is held by another owner.
    #[must_use]
    pub fn lock_ownership(store: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::LockOwnership, store)
            .with_operation(Operation::Lock)
            .with_message("the lock is held by another owner")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_unique_and_keep_their_label() {
        let a = LockOwner::new("w");
        let b = LockOwner::new("w");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("w:"));
        assert_eq!(a.as_str().len(), 2 + 32);
    }

    #[test]
    fn owner_debug_and_display_show_only_a_prefix_of_the_token() {
        let owner = LockOwner::new("w");
        let full = owner.as_str().to_owned();
        assert!(!format!("{owner:?}").contains(&full));
        assert!(!owner.to_string().contains(&full));
        assert!(owner.to_string().starts_with(&full[..10]));
    }

    #[test]
    fn a_foreign_owner_token_displays_without_panicking() {
        let owner = LockOwner::from_token("é:é");
        let _ = owner.to_string();
        let _ = LockOwner::from_token("").to_string();
    }

    #[test]
    fn lock_errors_have_their_kinds() {
        assert_eq!(Error::lock_not_held("m").kind(), ErrorKind::LockNotHeld);
        assert_eq!(Error::lock_ownership("m").kind(), ErrorKind::LockOwnership);
    }
}
