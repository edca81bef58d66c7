//! [`MemcachedLockStore`]: locks held as memcached items, taken with `add` and released or
//! extended only through compare-and-swap.
//!
//! Every command is a meta command (`ms`, `ma`, `mg`, `md`) sent through async-memcached's
//! [`MetaProtocol`], on the backend's pools, with its timeouts and error mapping.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{MetaProtocol, MetaValue, Status};
use lexicache_core::lock::{FencingToken, LockOwner, LockStore};
use lexicache_core::{async_trait, Error, ErrorKind, Operation, Result};

use crate::backend::{exchange, MemcachedBackend};
use crate::ttl::{exptime, now_unix};

/// What a lock's key is, within the backend's namespace: `lock:` followed by the resource.
pub const LOCK_KEY_PREFIX: &str = "lock:";

/// What a resource's fencing counter's key is, within the backend's namespace: `lock-fence:`
/// followed by the resource.
pub const FENCE_KEY_PREFIX: &str = "lock-fence:";

/// How long a fencing counter lives after the last acquisition of its resource: 7 days.
pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(7 * 86_400);

/// How many times `release` and `extend` read the lock again when it changed between their read
/// and their compare-and-swap (which only a concurrent `extend` by the same owner can cause
/// while the lock is live).
const CAS_ATTEMPTS: usize = 8;

/// A [`LockStore`] on memcached: a lock is an item whose value is the owner's token.
///
/// Built from a [`MemcachedBackend`] ([`new`](Self::new), or
/// [`CacheBackend::lock_store`](lexicache_core::CacheBackend::lock_store)), it shares the
/// backend's servers, pools, timeouts, key rules and namespace. A resource's lock is the key
/// [`LOCK_KEY_PREFIX`]` + resource` of that namespace and its fencing counter
/// [`FENCE_KEY_PREFIX`]` + resource`, both mapped with [`wire_key`](crate::wire_key) (so a long
/// resource, or one with spaces, becomes a `~sha256:` key). Both live on the server the ring
/// picks for the lock's key, so one resource needs one server. Keep cache keys starting with
/// `lock:` or `lock-fence:` out of a namespace that also holds locks, or give the locks a
/// namespace of their own with [`MemcachedBackend::with_prefix`].
///
/// # How it works
///
/// - **acquire**: `ms <lock> ME T<secs> c` (an `add`: stored only if no live lock exists) with
///   the owner's token as the value (for `secs`, see the limits below); then
///   `ma <fence> N<fence_ttl> J<seed> T<fence_ttl> v` increments the resource's counter in one
///   atomic command, creating it first with the value `seed` (the client's Unix time in
///   microseconds) when it is missing, and pushing its expiry back to `fence_ttl`; then
///   `mg <lock> v c` reads the lock back. The token is returned only if the
///   lock still holds this owner's value under the CAS the `add` gave it; otherwise the
///   acquisition reports `Ok(None)`, as if the lock had been busy.
/// - **release**: `mg <lock> v c`, then `md <lock> C<cas>`: the delete happens only if the item
///   is still the one whose value was checked.
/// - **extend**: `mg <lock> v c`, then `ms <lock> C<cas> T<secs>` with the same value: again
///   only if the item is unchanged. A failed compare changes nothing, so on every failure path
///   the lock is left byte for byte as it was (value, flags, CAS and expiry).
/// - **is_locked**: `mg <lock> s`.
///
/// ## Why fencing tokens are ordered as holdings are
///
/// `add` and `incr` are two commands, so a holder could stall between them (a GC pause, a
/// slow network), lose its lock to expiry, and increment the counter *after* the next holder
/// did: it would then carry a larger token than the live holder. The read-back closes that gap.
/// A token is handed out only when the lock item made by this acquisition's `add` (same CAS,
/// same owner) was still there *after* the increment, so the increment happened while this
/// owner held the lock without interruption from its `add` to its read-back. Two such
/// intervals never overlap (while one item is live, every other `add` fails), so the
/// increments, and hence the tokens, come in the order of the holdings. A holder that stalled
/// past its TTL gets `Ok(None)` and its increment is only a gap in the sequence.
///
/// ## Counter loss
///
/// A counter that expired, was evicted or was lost in a restart is created again from the
/// acquiring client's clock in microseconds. Every acquisition takes several round trips, so a
/// counter never grows faster than one per microsecond, and a seed taken later is larger than
/// anything the lost counter reached, provided the clients' clocks agree and never go back.
///
/// # Limits (memcached is a cache, not a lock service)
///
/// - **Second resolution.** Memcached's clock ticks once a second, so an item stored for `n`
///   seconds expires after between `n - 1` and `n` seconds. A lock is therefore stored for its
///   TTL rounded *up* to whole seconds *plus one* (at least 2 s): it lives at least its TTL and
///   at most one second longer.
/// - **No replication and no persistence.** A restarted server has lost every lock and
///   counter it held.
/// - **Eviction.** Under memory pressure the LRU can drop a lock's item before its TTL, and
///   another owner can then take the lock while the first still works. Give the servers
///   memory to spare, or use the Redis lock store for locks that matter, and check fencing
///   tokens where two writers must never interleave.
/// - **A server that goes down takes its locks with it**, and the ring does not reroute
///   around it: acquiring a lock on one of its resources fails with a retryable
///   [`ErrorKind::Connection`] error rather than granting a second lock on another server.
/// - **Fencing after counter loss depends on client clocks** (see above).
///
/// # Cancel safety
///
/// A dropped call drops its connection mid-exchange, as the backend's calls do. A dropped
/// `acquire` may have taken the lock without returning the token; the lock then expires after
/// its TTL. An `acquire` whose counter step fails deletes its lock again (compare-and-delete)
/// before it returns the error, when the connection still allows it.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::time::Duration;
/// use lexicache_core::{ErrorKind, LockOwner, LockStore};
/// use lexicache_memcached::{MemcachedBackend, MemcachedLockStore};
///
/// let backend = MemcachedBackend::builder().server("127.0.0.1:11211").prefix("app:").build()?;
/// let locks = MemcachedLockStore::new(&backend);
/// let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
/// let ttl = Duration::from_secs(10);
/// let token = locks.acquire("report", &a, ttl).await?.expect("free");
/// assert_eq!(locks.acquire("report", &b, ttl).await?, None);
/// let err = locks.release("report", &b).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::LockOwnership);
/// locks.release("report", &a).await?;
/// assert!(locks.acquire("report", &b, ttl).await?.unwrap() > token);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemcachedLockStore {
    backend: MemcachedBackend,
    fence_ttl: Duration,
}

impl fmt::Debug for MemcachedLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedLockStore")
            .field("name", &self.backend.shared.name)
            .field("prefix", &self.backend.prefix())
            .field("servers", &self.backend.servers())
            .field("fence_ttl", &self.fence_ttl)
            .finish_non_exhaustive()
    }
}

/// How an `acquire` exchange ended.
enum Acquired {
    Token(u64),
    /// Another owner's lock is live.
    Busy,
    /// The lock was taken, but it was gone or replaced by the read-back.
    Lost,
}

/// How a compare-and-swap exchange (`release`, `extend`) ended.
enum Swapped {
    Done,
    NotHeld,
    OtherOwner,
    /// The item changed between the read and the compare: read again.
    Changed,
}

impl MemcachedLockStore {
    /// A lock store over `backend`'s servers and pools, in its namespace, with fencing
    /// counters kept for [`DEFAULT_FENCE_TTL`].
    #[must_use]
    pub fn new(backend: &MemcachedBackend) -> Self {
        Self {
            backend: backend.clone(),
            fence_ttl: DEFAULT_FENCE_TTL,
        }
    }

    /// Keeps each fencing counter for `ttl` after its resource's last acquisition (rounded up
    /// to whole seconds). Keep it far longer than any lock's TTL: a counter that expires is
    /// seeded again from the client's clock.
    #[must_use]
    pub fn fence_ttl(mut self, ttl: Duration) -> Self {
        self.fence_ttl = ttl;
        self
    }

    /// The key memcached stores `resource`'s lock under (its wire form).
    #[must_use]
    pub fn lock_key(&self, resource: &str) -> String {
        self.backend
            .wire_key(&format!("{LOCK_KEY_PREFIX}{resource}"))
            .into_owned()
    }

    /// The key memcached stores `resource`'s fencing counter under (its wire form).
    #[must_use]
    pub fn fence_key(&self, resource: &str) -> String {
        self.backend
            .wire_key(&format!("{FENCE_KEY_PREFIX}{resource}"))
            .into_owned()
    }

    /// The server (`host:port`) that holds `resource`'s lock and fencing counter.
    #[must_use]
    pub fn server_for(&self, resource: &str) -> &str {
        &self.backend.servers()[self.backend.index_of(&self.lock_key(resource))]
    }

    fn name(&self) -> String {
        self.backend.shared.name.to_string()
    }

    fn check(&self, resource: &str) -> Result<()> {
        self.backend.check_key(resource, Operation::Lock)
    }

    /// A reply the protocol does not allow here, as a driver error.
    fn unexpected(what: &str, reply: &Option<MetaValue>) -> async_memcached::Error {
        async_memcached::Error::Protocol(Status::Error(async_memcached::ErrorKind::Protocol(Some(
            format!("unexpected reply to {what}: {reply:?}"),
        ))))
    }

    /// Runs [`swap_once`](Self::swap_once) until the item stops changing under it.
    async fn swap(&self, resource: &str, owner: &LockOwner, ttl: Option<Duration>) -> Result<()> {
        self.check(resource)?;
        let key = self.lock_key(resource);
        for _ in 0..CAS_ATTEMPTS {
            match self.swap_once(&key, owner, ttl).await? {
                Swapped::Done => return Ok(()),
                Swapped::NotHeld => return Err(Error::lock_not_held(self.name())),
                Swapped::OtherOwner => return Err(Error::lock_ownership(self.name())),
                Swapped::Changed => {}
            }
        }
        Err(Error::new(ErrorKind::Backend, self.name())
            .with_operation(Operation::Lock)
            .retryable(true)
            .with_message(format!(
                "the lock changed between read and compare-and-swap {CAS_ATTEMPTS} times in a row"
            )))
    }

    /// One read and compare-and-swap of the lock item `key`: a delete when `ttl` is `None`
    /// (release), else a store of the same value with the new expiry (extend).
    async fn swap_once(
        &self,
        key: &str,
        owner: &LockOwner,
        ttl: Option<Duration>,
    ) -> Result<Swapped> {
        let backend = &self.backend;
        let index = backend.index_of(key);
        let expiry = ttl.map(|t| format!("T{}", lock_exptime(t, now_unix())));
        let outcome = exchange!(
            backend,
            index,
            Operation::Lock,
            backend.timeout().saturating_mul(2),
            |client| async {
                let Some(held) = client.meta_get(key, false, None, Some(&["v", "c"])).await? else {
                    return Ok(Swapped::NotHeld);
                };
                if held.data.as_deref().unwrap_or_default() != owner.as_str().as_bytes() {
                    return Ok(Swapped::OtherOwner);
                }
                let Some(cas) = held.cas else {
                    return Err(Self::unexpected("mg v c", &Some(held)));
                };
                let compare = format!("C{cas}");
                let swapped = match &expiry {
                    None => {
                        client
                            .meta_delete(key, false, None, Some(&[compare.as_str()]))
                            .await
                    }
                    Some(expiry) => {
                        client
                            .meta_set(
                                key,
                                owner.as_str(),
                                false,
                                None,
                                Some(&[compare.as_str(), expiry.as_str()]),
                            )
                            .await
                    }
                };
                match swapped {
                    Ok(_) => Ok(Swapped::Done),
                    Err(async_memcached::Error::Protocol(Status::NotFound)) => Ok(Swapped::NotHeld),
                    Err(async_memcached::Error::Protocol(Status::Exists)) => Ok(Swapped::Changed),
                    Err(e) => Err(e),
                }
            }
        )?;
        outcome.map_err(|e| backend.driver_error(e, Operation::Lock, index))
    }
}

/// The `exptime` of a lock that must live at least `ttl`: one second more than `ttl` rounded
/// up (and at least two seconds).
///
/// Memcached's clock ticks once a second, and an item stored with `T<n>` expires at the `n`th
/// tick from now, which can come anywhere from `n - 1` to `n` seconds later: a `T1` item can
/// be gone a few milliseconds after it was stored. The extra second makes a lock live at least
/// `ttl` and at most one second longer, which errs on the safe side for exclusion.
fn lock_exptime(ttl: Duration, now_unix: i64) -> i64 {
    exptime(
        ttl.max(Duration::from_secs(1))
            .saturating_add(Duration::from_secs(1)),
        now_unix,
    )
}

/// The current Unix time in microseconds (0 if the clock is before 1970): a new counter's seed.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[async_trait]
impl LockStore for MemcachedLockStore {
    fn name(&self) -> &str {
        &self.backend.shared.name
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.check(resource)?;
        let lock_key = self.lock_key(resource);
        let fence_key = self.fence_key(resource);
        let backend = &self.backend;
        // The counter lives with the lock, so one resource needs one server and one connection.
        let index = backend.index_of(&lock_key);
        let now = now_unix();
        let lock_expiry = format!("T{}", lock_exptime(ttl, now));
        let fence_exptime = exptime(self.fence_ttl, now);
        let fence_flags = [
            format!("N{fence_exptime}"),
            format!("J{}", now_micros()),
            format!("T{fence_exptime}"),
            "v".to_owned(),
        ];
        let fence_flags: Vec<&str> = fence_flags.iter().map(String::as_str).collect();
        let outcome = exchange!(
            backend,
            index,
            Operation::Lock,
            backend.timeout().saturating_mul(3),
            |client| async {
                let added = client
                    .meta_set(
                        lock_key.as_str(),
                        owner.as_str(),
                        false,
                        None,
                        Some(&["ME", lock_expiry.as_str(), "c"]),
                    )
                    .await;
                let cas = match added {
                    Ok(Some(MetaValue {
                        status: Some(Status::Stored),
                        cas: Some(cas),
                        ..
                    })) => cas,
                    Ok(Some(MetaValue {
                        status: Some(Status::NotStored),
                        ..
                    }))
                    | Err(async_memcached::Error::Protocol(Status::NotStored)) => {
                        return Ok(Acquired::Busy);
                    }
                    Ok(other) => return Err(Self::unexpected("ms ME c", &other)),
                    Err(e) => return Err(e),
                };

                let token = match client
                    .meta_increment(fence_key.as_str(), false, None, None, Some(&fence_flags))
                    .await
                {
                    Ok(Some(value)) => parse_counter(value.data.as_deref()),
                    Ok(None) => None,
                    Err(e) => {
                        // Give the lock back rather than leave it to expire; if the connection
                        // is broken this fails too, and the lock expires after its TTL.
                        let compare = format!("C{cas}");
                        let _ = client
                            .meta_delete(lock_key.as_str(), false, None, Some(&[compare.as_str()]))
                            .await;
                        return Err(e);
                    }
                };
                let Some(token) = token else {
                    let compare = format!("C{cas}");
                    let _ = client
                        .meta_delete(lock_key.as_str(), false, None, Some(&[compare.as_str()]))
                        .await;
                    return Err(async_memcached::Error::Protocol(Status::Error(
                        async_memcached::ErrorKind::Protocol(Some(
                            "the fencing counter's reply is not a number".to_owned(),
                        )),
                    )));
                };

                let held = client
                    .meta_get(lock_key.as_str(), false, None, Some(&["v", "c"]))
                    .await?;
                let ours = held.is_some_and(|held| {
                    held.cas == Some(cas)
                        && held.data.as_deref().unwrap_or_default() == owner.as_str().as_bytes()
                });
                Ok(if ours {
                    Acquired::Token(token)
                } else {
                    Acquired::Lost
                })
            }
        )?;
        match outcome.map_err(|e| backend.driver_error(e, Operation::Lock, index))? {
            Acquired::Token(token) => Ok(Some(FencingToken::new(token))),
            Acquired::Busy => Ok(None),
            Acquired::Lost => {
                tracing::debug!(
                    backend = %backend.shared.name,
                    resource = %lexicache_core::key_hash(resource),
                    "memcached lock lost between add and read-back; reported as not acquired"
                );
                Ok(None)
            }
        }
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.swap(resource, owner, None).await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.swap(resource, owner, Some(ttl)).await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.check(resource)?;
        let key = self.lock_key(resource);
        let backend = &self.backend;
        let index = backend.index_of(&key);
        // `mg <key> s` answers with the size only: no value crosses the wire.
        exchange!(
            backend,
            index,
            Operation::Lock,
            backend.timeout(),
            |client| client.meta_get(key.as_str(), false, None, Some(&["s"]))
        )?
        .map(|found| found.is_some())
        .map_err(|e| backend.driver_error(e, Operation::Lock, index))
    }
}

/// The counter's value from an `ma ... v` reply (memcached may pad a counter with spaces).
fn parse_counter(data: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(data?).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_replies_parse_with_padding_and_reject_garbage() {
        assert_eq!(parse_counter(Some(b"1001")), Some(1001));
        assert_eq!(parse_counter(Some(b"42  ")), Some(42));
        assert_eq!(parse_counter(Some(b"x")), None);
        assert_eq!(parse_counter(None), None);
    }

    #[test]
    fn locks_are_stored_a_second_longer_than_their_ttl_rounded_up() {
        let now = 1_700_000_000;
        assert_eq!(lock_exptime(Duration::ZERO, now), 2);
        assert_eq!(lock_exptime(Duration::from_millis(1), now), 2);
        assert_eq!(lock_exptime(Duration::from_secs(1), now), 2);
        assert_eq!(lock_exptime(Duration::from_millis(1500), now), 3);
        // Thirty days plus the extra second is past memcached's relative limit, so it must be
        // sent as an absolute time rather than as a relative one read as a date in 1970.
        assert_eq!(
            lock_exptime(crate::MAX_RELATIVE_TTL, now),
            now + crate::MAX_RELATIVE_TTL.as_secs() as i64 + 1
        );
    }

    #[test]
    fn seeds_are_microseconds_since_the_epoch() {
        // 2020-01-01 in microseconds: a seed below it would mean the wrong unit.
        assert!(now_micros() > 1_577_836_800_000_000);
    }

    #[test]
    fn lock_and_fence_keys_are_namespaced_hashed_when_unsafe_and_never_collide() {
        let backend = MemcachedBackend::builder()
            .server("127.0.0.1:1")
            .prefix("ns:")
            .build()
            .expect("a valid configuration");
        let store = MemcachedLockStore::new(&backend);
        assert_eq!(store.lock_key("r"), "ns:lock:r");
        assert_eq!(store.fence_key("r"), "ns:lock-fence:r");
        assert!(store
            .lock_key("a resource")
            .starts_with(crate::HASHED_KEY_MARKER));
        assert_ne!(store.lock_key("fence:r"), store.fence_key("r"));
    }
}
