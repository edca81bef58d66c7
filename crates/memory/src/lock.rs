//! [`MemoryLockStore`]: locks within one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lexicache_core::lock::{FencingToken, LockOwner, LockStore};
use lexicache_core::{async_trait, Error, KeyRules, Operation, Result};
use tokio::time::Instant;

/// Expired locks are swept when the table has grown past this many entries since the last
/// sweep, so abandoned locks on ever-new resources cannot grow it without bound.
const SWEEP_FLOOR: usize = 1024;

/// A lock held in this process.
struct Held {
    owner: LockOwner,
    expires: Instant,
}

#[derive(Default)]
struct Table {
    locks: HashMap<String, Held>,
    /// The size at which the next sweep of expired locks runs.
    sweep_at: usize,
}

/// A [`LockStore`] for tasks of one process: a table of owners and deadlines.
///
/// It follows tokio's clock, so tests can pause and advance time through lock expiry. Fencing
/// tokens come from one counter for the whole store, so they grow per resource (and across
/// resources) and nothing is kept per resource once its lock is gone. Clones share the table.
///
/// It coordinates tasks of one process only: use the Redis or memcached store to coordinate
/// processes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::time::Duration;
/// use lexicache_core::{ErrorKind, LockOwner, LockStore};
/// use lexicache_memory::MemoryLockStore;
///
/// let store = MemoryLockStore::new();
/// let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
/// let ttl = Duration::from_secs(10);
/// let token = store.acquire("report", &a, ttl).await?.expect("free");
/// assert_eq!(store.acquire("report", &b, ttl).await?, None);
/// let err = store.release("report", &b).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::LockOwnership);
/// store.release("report", &a).await?;
/// assert!(store.acquire("report", &b, ttl).await?.unwrap() > token);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryLockStore {
    table: Arc<Mutex<Table>>,
    fence: Arc<AtomicU64>,
    key_rules: KeyRules,
}

impl Default for MemoryLockStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLockStore")
            .field("locks", &self.table().locks.len())
            .finish_non_exhaustive()
    }
}

impl MemoryLockStore {
    /// An empty store with the default key rules.
    #[must_use]
    pub fn new() -> Self {
        Self::with_key_rules(KeyRules::new())
    }

    /// An empty store that checks resources with `rules`.
    #[must_use]
    pub fn with_key_rules(rules: KeyRules) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table {
                locks: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            })),
            fence: Arc::new(AtomicU64::new(0)),
            key_rules: rules,
        }
    }

    /// How many locks the table holds, live or expired but not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table().locks.len()
    }

    /// Whether the table holds no locks.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // No code panics while holding the lock, but a poisoned table is still consistent:
        // every change to it is a single map operation.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, resource: &str) -> Result<()> {
        self.key_rules.check(resource, "memory", Operation::Lock)
    }

    /// The live lock on `resource`, dropping it first if it expired.
    fn live<'t>(table: &'t mut Table, resource: &str, now: Instant) -> Option<&'t mut Held> {
        if table
            .locks
            .get(resource)
            .is_some_and(|held| held.expires <= now)
        {
            table.locks.remove(resource);
        }
        table.locks.get_mut(resource)
    }

    fn sweep(table: &mut Table, now: Instant) {
        if table.locks.len() < table.sweep_at {
            return;
        }
        table.locks.retain(|_, held| held.expires > now);
        table.sweep_at = (table.locks.len() * 2).max(SWEEP_FLOOR);
    }
}

/// A deadline `ttl` from `now`, never equal to `now` (a zero TTL still holds for an instant).
/// A TTL past what the clock can represent holds for a century instead of overflowing.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    now.checked_add(ttl.max(Duration::from_millis(1)))
        .unwrap_or_else(|| now + CENTURY)
}

#[async_trait]
impl LockStore for MemoryLockStore {
    fn name(&self) -> &str {
        "memory"
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.check(resource)?;
        let now = Instant::now();
        let mut table = self.table();
        if Self::live(&mut table, resource, now).is_some() {
            return Ok(None);
        }
        Self::sweep(&mut table, now);
        // Taken under the table's lock, so tokens are ordered as acquisitions are.
        let token = self.fence.fetch_add(1, Ordering::Relaxed) + 1;
        table.locks.insert(
            resource.to_owned(),
            Held {
                owner: owner.clone(),
                expires: deadline(now, ttl),
            },
        );
        Ok(Some(FencingToken::new(token)))
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.check(resource)?;
        let mut table = self.table();
        match Self::live(&mut table, resource, Instant::now()) {
            None => Err(Error::lock_not_held("memory")),
            Some(held) if held.owner != *owner => Err(Error::lock_ownership("memory")),
            Some(_) => {
                table.locks.remove(resource);
                Ok(())
            }
        }
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.check(resource)?;
        let now = Instant::now();
        let mut table = self.table();
        match Self::live(&mut table, resource, now) {
            None => Err(Error::lock_not_held("memory")),
            Some(held) if held.owner != *owner => Err(Error::lock_ownership("memory")),
            Some(held) => {
                held.expires = deadline(now, ttl);
                Ok(())
            }
        }
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.check(resource)?;
        let mut table = self.table();
        Ok(Self::live(&mut table, resource, Instant::now()).is_some())
    }
}

#[cfg(test)]
mod tests {
    use lexicache_core::ErrorKind;

    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_lock_expires_after_its_ttl_and_can_be_taken_again() {
        let store = MemoryLockStore::new();
        let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
        let first = store.acquire("r", &a, TTL).await.unwrap().unwrap();
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert_eq!(store.acquire("r", &b, TTL).await.unwrap(), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!store.is_locked("r").await.unwrap());
        let second = store.acquire("r", &b, TTL).await.unwrap().unwrap();
        assert!(second > first);
    }

    #[tokio::test(start_paused = true)]
    async fn extend_after_expiry_is_lock_not_held() {
        let store = MemoryLockStore::new();
        let a = LockOwner::new("a");
        store.acquire("r", &a, TTL).await.unwrap().unwrap();
        tokio::time::advance(TTL).await;
        let err = store.extend("r", &a, TTL).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockNotHeld);
    }

    #[tokio::test(start_paused = true)]
    async fn extend_moves_the_deadline() {
        let store = MemoryLockStore::new();
        let a = LockOwner::new("a");
        store.acquire("r", &a, TTL).await.unwrap().unwrap();
        tokio::time::advance(TTL / 2).await;
        store.extend("r", &a, TTL).await.unwrap();
        tokio::time::advance(TTL * 3 / 4).await;
        assert!(store.is_locked("r").await.unwrap());
    }

    #[tokio::test]
    async fn a_non_owner_cannot_release_or_extend_and_the_lock_stays() {
        let store = MemoryLockStore::new();
        let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
        store.acquire("r", &a, TTL).await.unwrap().unwrap();
        let kinds = [
            store.release("r", &b).await.unwrap_err().kind(),
            store.extend("r", &b, TTL).await.unwrap_err().kind(),
        ];
        assert_eq!(kinds, [ErrorKind::LockOwnership; 2]);
        store.release("r", &a).await.unwrap();
        let kinds = [
            store.release("r", &a).await.unwrap_err().kind(),
            store.extend("r", &a, TTL).await.unwrap_err().kind(),
        ];
        assert_eq!(kinds, [ErrorKind::LockNotHeld; 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_locks_on_many_resources_are_swept() {
        let store = MemoryLockStore::new();
        let a = LockOwner::new("a");
        for i in 0..10_000 {
            store
                .acquire(&format!("r{i}"), &a, Duration::from_secs(1))
                .await
                .unwrap()
                .unwrap();
            if i % 1000 == 999 {
                tokio::time::advance(Duration::from_secs(2)).await;
            }
        }
        assert!(store.len() <= 2 * SWEEP_FLOOR, "{} locks kept", store.len());
    }

    #[tokio::test]
    async fn a_ttl_past_the_clocks_range_holds_without_panicking() {
        let store = MemoryLockStore::new();
        let a = LockOwner::new("a");
        store
            .acquire("r", &a, Duration::MAX)
            .await
            .unwrap()
            .unwrap();
        store.extend("r", &a, Duration::MAX).await.unwrap();
        assert!(store.is_locked("r").await.unwrap());
    }

    #[tokio::test]
    async fn an_invalid_resource_is_key_invalid() {
        let store = MemoryLockStore::new();
        let err = store
            .acquire("", &LockOwner::new("a"), TTL)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    }
}
