//! [`Scope`]: who may see an entry (tenant, model, system prompt).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The partition an entry belongs to: a tenant, a model and the hash of a system prompt.
///
/// Every stored vector and every lookup carries a scope, and a lookup only ever matches
/// entries of its own scope, even at similarity 1.0: tenants never see each other's answers,
/// and an answer produced by one model or system prompt is never served for another.
///
/// The system prompt itself is not kept, only its SHA-256. [`Scope::id`] folds the three
/// parts into a [`ScopeId`], a stable 32-byte digest whose hex form is the scope's string form;
/// it never changes between releases or platforms (a test pins it), so it can be stored.
///
/// ```
/// use lexicache_semantic::Scope;
///
/// let a = Scope::new("acme", "gpt-4o", "You are a helpful assistant.");
/// let b = Scope::new("globex", "gpt-4o", "You are a helpful assistant.");
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id().to_string().len(), 64);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    tenant: String,
    model: String,
    system_prompt_hash: [u8; 32],
}

impl Scope {
    /// A scope for `tenant` and `model`, hashing `system_prompt` (use `""` when there is none).
    pub fn new(tenant: impl Into<String>, model: impl Into<String>, system_prompt: &str) -> Self {
        Self::with_prompt_hash(
            tenant,
            model,
            Sha256::digest(system_prompt.as_bytes()).into(),
        )
    }

    /// A scope from an already computed SHA-256 of the system prompt.
    pub fn with_prompt_hash(
        tenant: impl Into<String>,
        model: impl Into<String>,
        system_prompt_hash: [u8; 32],
    ) -> Self {
        Self {
            tenant: tenant.into(),
            model: model.into(),
            system_prompt_hash,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The SHA-256 of the system prompt.
    pub fn system_prompt_hash(&self) -> &[u8; 32] {
        &self.system_prompt_hash
    }

    /// The scope's stable digest.
    ///
    /// Each part is length-prefixed before hashing, so `("a:b", "c")` and `("a", "b:c")` differ.
    pub fn id(&self) -> ScopeId {
        let mut h = Sha256::new();
        h.update(b"lexicache-scope-v1\0");
        for part in [self.tenant.as_bytes(), self.model.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(self.system_prompt_hash);
        ScopeId(h.finalize().into())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("tenant", &self.tenant)
            .field("model", &self.model)
            .field("system_prompt_hash", &Hex(&self.system_prompt_hash[..8]))
            .finish()
    }
}

/// The stable digest of a [`Scope`]; its `Display` is 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeId(pub [u8; 32]);

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

impl fmt::Debug for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeId({self})")
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_id_is_stable_across_releases() {
        let id = Scope::new("acme", "gpt-4o", "You are helpful.").id();
        assert_eq!(id.to_string(), PINNED);
    }
    // Computed independently (Python hashlib) from the documented construction.
    const PINNED: &str = "e99d105fab3ce7245070846fb09de6310a11f9e37b1cdd7c8939f9440a32071b";

    #[test]
    fn each_scope_part_changes_the_id() {
        let base = Scope::new("acme", "m", "p");
        assert_ne!(base.id(), Scope::new("other", "m", "p").id());
        assert_ne!(base.id(), Scope::new("acme", "m2", "p").id());
        assert_ne!(base.id(), Scope::new("acme", "m", "p2").id());
        assert_eq!(base.id(), Scope::new("acme", "m", "p").id());
    }

    #[test]
    fn scope_parts_cannot_be_shifted_between_fields() {
        assert_ne!(
            Scope::new("a:b", "c", "").id(),
            Scope::new("a", "b:c", "").id()
        );
        assert_ne!(Scope::new("ab", "", "").id(), Scope::new("a", "b", "").id());
    }

    #[test]
    fn with_prompt_hash_equals_hashing_the_prompt() {
        let hash: [u8; 32] = Sha256::digest(b"sys").into();
        assert_eq!(
            Scope::with_prompt_hash("t", "m", hash),
            Scope::new("t", "m", "sys")
        );
        assert_eq!(Scope::new("t", "m", "sys").system_prompt_hash(), &hash);
    }
}
