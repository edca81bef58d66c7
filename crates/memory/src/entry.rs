//! What the moka cache stores per key, and the expiry policy that reads it.

use std::time::Duration;

use lexicache_core::CacheValue;
use moka::Expiry;
use tokio::time::Instant;

/// A fixed per-entry overhead added to the weight, so a bound in bytes also bounds many tiny
/// entries (moka's own bookkeeping is of this order).
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

/// One stored entry: the value and, if it expires, when (on tokio's clock).
///
/// It is kept to 64 bytes (one cache line): moka clones it on every hit, and a larger value
/// measurably slows hits.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) value: CacheValue,
    pub(crate) expires_at: Option<Instant>,
}

impl Entry {
    pub(crate) fn new(value: CacheValue, ttl: Option<Duration>) -> Self {
        Self {
            value,
            expires_at: ttl.map(|t| Instant::now() + t),
        }
    }

    /// The time left to live, for moka's real-time expiry.
    fn remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the entry is still alive on tokio's clock. Entries without a TTL never read the clock.
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        match self.expires_at {
            None => true,
            Some(at) => Instant::now() < at,
        }
    }

    pub(crate) fn weight(key: &str, value: &CacheValue) -> u32 {
        let w = ENTRY_OVERHEAD + key.len() as u64 + value.bytes().len() as u64;
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

/// Hands moka each entry's own TTL, so moka reclaims memory in real time. Reads on tokio's clock
/// ([`Entry::is_live`]) make expiry exact even when tests pause time.
pub(crate) struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        value.remaining()
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        value.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fits_one_cache_line() {
        assert!(
            std::mem::size_of::<Entry>() <= 64,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
