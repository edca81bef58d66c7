//! [`RedisLockStore`]: expiring, owned locks in Redis, taken, released and extended by Lua
//! scripts so every step is one atomic command.

use std::fmt;
use std::time::Duration;

use fred::clients::{Client, WithOptions};
use fred::error::Error as FredError;
use fred::interfaces::{KeysInterface, LuaInterface};
use fred::types::{FromValue, Key, Value};
use lexicache_core::lock::{FencingToken, LockOwner, LockStore};
use lexicache_core::{async_trait, CacheBackend, Error, ErrorKind, KeyRules, Operation, Result};

use crate::error::map_error;
use crate::RedisBackend;

/// How long a resource's fencing counter lives after its last acquisition, unless changed with
/// [`RedisLockStore::with_fence_ttl`]: 7 days.
pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A Lua script run by `EVALSHA`, or by `EVAL` when the server does not have it cached.
struct Script {
    /// The SHA-1 of `source`, in lowercase hex, as `SCRIPT LOAD` reports it.
    sha1: &'static str,
    source: &'static str,
}

/// Takes the lock and hands out the next fencing token, in one atomic step.
///
/// `KEYS[1]` the lock, `KEYS[2]` the resource's fencing counter; `ARGV[1]` the owner,
/// `ARGV[2]` the lock's TTL and `ARGV[3]` the counter's TTL, in milliseconds. The counter is
/// read before anything is written, so a counter of the wrong type fails the script before the
/// lock is taken. The token is the larger of the counter plus one and the server's clock in
/// microseconds, so it keeps growing when the counter has expired or was deleted. It is below
/// 2^53 (the clock until the year 2255), so Lua's numbers hold it exactly.
const ACQUIRE: Script = Script {
    sha1: "dbeafe37f24581acb035df5fc81a806a6b31bbed",
    source: "local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2])) or 0
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local token = math.max(last + 1, floor)
redis.call('SET', KEYS[2], string.format('%.0f', token), 'PX', ARGV[3])
return token
",
};

/// Compare-and-delete: `1` deleted, `0` no lock, `-1` another owner's lock (left untouched).
///
/// `KEYS[1]` the lock; `ARGV[1]` the owner.
const RELEASE: Script = Script {
    sha1: "862f2e676a0fc38d17b30697e718b24c3d980234",
    source: "local held = redis.call('GET', KEYS[1])
if not held then
  return 0
elseif held ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
return 1
",
};

/// Compare-and-expire: `1` extended, `0` no lock, `-1` another owner's lock (left untouched).
///
/// `KEYS[1]` the lock; `ARGV[1]` the owner, `ARGV[2]` the new TTL in milliseconds.
const EXTEND: Script = Script {
    sha1: "bd337e5e5ff779f60720ee3dda03197a6c19087a",
    source: "local held = redis.call('GET', KEYS[1])
if not held then
  return 0
elseif held ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
};

/// A [`LockStore`] in Redis (standalone, cluster or sentinel), sharing a [`RedisBackend`]'s
/// client, namespace and key rules.
///
/// Make one with [`RedisLockStore::new`] or [`RedisBackend::lock_store`];
/// [`CacheBackend::lock_store`] on a `RedisBackend` returns one too, so stampede protection over
/// a Redis backend coordinates every process that shares the server.
///
/// # Keys
///
/// A lock on `resource` in a backend with prefix `prefix` is two keys:
///
/// | key | value | expires |
/// |---|---|---|
/// | `{prefix}lock:{<h>}<resource>` | the owner's token | the lock's TTL, reset by `extend` |
/// | `{prefix}fence:{<h>}<resource>` | the last fencing token, in decimal | the fence TTL ([`DEFAULT_FENCE_TTL`]), reset by each acquisition |
///
/// `<h>` is the FNV-1a 32-bit hash of the resource's UTF-8 bytes in 8 lowercase hex digits. In
/// braces, it is the keys' Redis Cluster hash tag: both keys of a resource hash to the same
/// slot, so one script can touch both, whatever braces the resource itself holds (`{`, `}`,
/// `}{`, a leading `}`), and the resource stays readable after it. Different resources spread
/// over the cluster's slots. If the prefix holds a hash tag of its own (`app:{tenant}:`), that
/// tag wins and all the namespace's locks share its slot, which still works. A prefix whose
/// first `{` has no `}` after it, or is followed at once by `}`, would split a resource's two
/// keys over two slots: in a cluster, such a store fails every call with
/// [`ErrorKind::Config`].
///
/// The keys live in the backend's namespace, so the backend's `clear` removes them too (a live
/// lock is then lost; the fencing tokens stay monotonic, seeded by the server clock as below).
/// Cache keys starting with `lock:{` or `fence:{` would collide with them: do not use such keys.
///
/// # What the scripts guarantee
///
/// Each operation is one Lua script, run atomically by the server that owns the keys (by
/// `EVALSHA`, or `EVAL` when that server does not have the script cached yet):
///
/// - **acquire** `SET lock owner NX PX ttl`; only if that took the lock, it computes the
///   fencing token `max(counter + 1, TIME in µs)`, stores it in the counter with the fence TTL
///   and returns it. Tokens of a resource grow with every acquisition, also after the counter
///   key expired or was deleted, as long as the server's clock does not go back meanwhile. An
///   acquire that finds the lock taken writes nothing and returns `None`.
/// - **release** deletes the lock only if its value is the owner's token; **extend** resets
///   its expiry (`PEXPIRE`) only then. Another owner's lock is left byte-identical, value and
///   TTL, and the call fails with [`ErrorKind::LockOwnership`]; an absent or expired lock
///   fails with [`ErrorKind::LockNotHeld`] and nothing is created.
/// - **is_locked** is `EXISTS` on the lock key.
///
/// TTLs are whole milliseconds, rounded up, at least 1 ms. Scripts read the clock before they
/// write, which needs script effects replication: Redis 5 or later (the default since 5, the
/// only mode since 7).
///
/// # What a Redis lock cannot promise
///
/// A lock in one Redis deployment is a lease, good for efficiency (one process rebuilds a
/// value while the others wait) but not, on its own, for correctness. Three things break it:
///
/// - **Asynchronous replication.** A primary acknowledges the lock before its replicas have
///   it. If it fails over before the write reached a replica, the promoted replica has no lock
///   and another owner can take it while the first still works; and as its fencing counter is
///   behind too, the new owner can receive a token that was already handed out (unless the
///   server clock moved past it). Sentinel and Cluster failovers both do this.
/// - **Process pauses past the TTL.** A holder that stops for longer than the TTL (a
///   stop-the-world garbage collection in a client, a swapped-out or suspended VM, a blocked
///   runtime thread) still believes it holds the lock when it resumes, while the lock expired
///   and another owner took it. No check before the write closes this gap, because the pause
///   can come between the check and the write. Only the protected resource can: it remembers
///   the largest fencing token it has accepted and rejects writes carrying a smaller one.
/// - **Clock jumps.** Redis expires keys by its own clock, so a server clock that jumps
///   forward ends locks early and one that jumps back keeps them longer. Fencing tokens drawn
///   after the counter key expired (or was deleted) come from the server clock, so a clock
///   that went back meanwhile can repeat or lower them.
///
/// Where two writers must never interleave, pass the [`FencingToken`] to the resource and
/// have it check the token. (A quorum of independent primaries, as in Redlock, narrows the
/// failover gap but closes neither of the other two; this store does not implement it.)
///
/// # Cancel safety
///
/// Dropping a future after its script was sent cannot take the script back: it runs,
/// entirely or not at all. A dropped `acquire` may have taken the lock without its caller
/// learning the token; the lock then expires after its TTL.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> lexicache_core::Result<()> {
/// use std::time::Duration;
/// use lexicache_core::{ErrorKind, LockOwner, LockStore};
/// use lexicache_redis::{RedisBackend, RedisLockStore};
///
/// let backend = RedisBackend::builder().url("redis://127.0.0.1:6390").prefix("app:").connect().await?;
/// let locks = RedisLockStore::new(&backend);
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
pub struct RedisLockStore {
    /// Keeps the shared client alive and gives the name, prefix and (redacted) `Debug`.
    backend: RedisBackend,
    /// The client with the backend's per-command options (timeout, fail-fast).
    cmd: WithOptions<Client>,
    key_rules: KeyRules,
    /// The counter's TTL in milliseconds, at least 1.
    fence_ms: u64,
    /// Set when, in a cluster, the prefix would split a resource's two keys over two slots.
    layout_error: Option<&'static str>,
}

impl fmt::Debug for RedisLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLockStore")
            .field("backend", &self.backend)
            .field("fence_ttl", &Duration::from_millis(self.fence_ms))
            .finish_non_exhaustive()
    }
}

/// A TTL in whole milliseconds, rounded up and never zero.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// FNV-1a 32 of `resource`: the hash tag of its keys.
fn tag(resource: &str) -> u32 {
    resource.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Whether a resource's lock and fence keys share a hash slot under `prefix`: the prefix has
/// no `{`, or its first `{` is closed by a `}` within the prefix, not at once.
fn prefix_keeps_slots(prefix: &str) -> bool {
    let Some(open) = prefix.find('{') else {
        return true;
    };
    match prefix[open + 1..].find('}') {
        Some(0) | None => false,
        Some(_) => true,
    }
}

impl RedisLockStore {
    /// A store over `backend`'s client, in its namespace, with its key rules and the
    /// [default fence TTL](DEFAULT_FENCE_TTL).
    #[must_use]
    pub fn new(backend: &RedisBackend) -> Self {
        backend.lock_store()
    }

    pub(crate) fn from_parts(
        backend: RedisBackend,
        cmd: WithOptions<Client>,
        key_rules: KeyRules,
    ) -> Self {
        let layout_error = (backend.config().is_cluster() && !prefix_keeps_slots(backend.prefix()))
            .then_some(
                "the key prefix has a `{` without a closing `}` or an empty `{}` hash tag, \
                 which splits a lock's keys over two cluster slots; change the prefix",
            );
        Self {
            backend,
            cmd,
            key_rules,
            fence_ms: millis(DEFAULT_FENCE_TTL),
            layout_error,
        }
    }

    /// The same store, with fencing counters kept `ttl` after each acquisition (rounded up to
    /// whole milliseconds, at least 1 ms).
    ///
    /// A counter that expires is reseeded from the server clock, so tokens keep growing
    /// either way; a longer TTL keeps them independent of the clock for resources locked at
    /// least that often, a shorter one keeps fewer keys for resources locked once.
    #[must_use]
    pub fn with_fence_ttl(mut self, ttl: Duration) -> Self {
        self.fence_ms = millis(ttl);
        self
    }

    /// How long fencing counters live after each acquisition.
    #[must_use]
    pub fn fence_ttl(&self) -> Duration {
        Duration::from_millis(self.fence_ms)
    }

    /// The backend whose client and namespace this store uses.
    #[must_use]
    pub fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    /// The Redis key of the lock on `resource` (see [Keys](Self#keys)).
    #[must_use]
    pub fn lock_key(&self, resource: &str) -> String {
        self.key("lock:", resource)
    }

    /// The Redis key of `resource`'s fencing counter (see [Keys](Self#keys)).
    #[must_use]
    pub fn fence_key(&self, resource: &str) -> String {
        self.key("fence:", resource)
    }

    fn key(&self, kind: &str, resource: &str) -> String {
        use fmt::Write as _;
        let prefix = self.backend.prefix();
        let mut key = String::with_capacity(prefix.len() + kind.len() + 10 + resource.len());
        key.push_str(prefix);
        key.push_str(kind);
        let _ = write!(key, "{{{:08x}}}", tag(resource));
        key.push_str(resource);
        key
    }

    fn name_str(&self) -> String {
        self.backend.name().to_owned()
    }

    /// Checks the resource (and, in a cluster, the prefix) before anything is sent.
    fn check(&self, resource: &str) -> Result<()> {
        if let Some(message) = self.layout_error {
            return Err(Error::new(ErrorKind::Config, self.name_str())
                .with_operation(Operation::Lock)
                .with_message(message));
        }
        self.key_rules
            .check(resource, self.backend.name(), Operation::Lock)
    }

    fn error(&self, err: FredError) -> Error {
        map_error(err, self.backend.name(), Operation::Lock)
    }

    /// Runs `script` with `keys` and `args` on the server owning the keys: `EVALSHA`, then
    /// `EVAL` when that server answers `NOSCRIPT` (a new, restarted or flushed server).
    ///
    /// fred routes the call by the keys' slot (the layout puts them in one) and pipelines it
    /// with the client's other commands.
    async fn run<R: FromValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[Value],
    ) -> Result<R> {
        let keys: Vec<Key> = keys.iter().map(|k| Key::from(k.as_str())).collect();
        // Keys and owners are reference-counted: the clones for a retry copy nothing.
        match self
            .cmd
            .evalsha::<R, _, _, _>(script.sha1, keys.clone(), args.to_vec())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                // EVAL also caches the script on that server, so the next EVALSHA finds it.
                self.cmd
                    .eval::<R, _, _, _>(script.source, keys, args.to_vec())
                    .await
                    .map_err(|e| self.error(e))
            }
            result => result.map_err(|e| self.error(e)),
        }
    }

    /// Runs the release or extend script on `resource`'s lock and maps its reply code.
    async fn compare_and(&self, script: &Script, resource: &str, args: &[Value]) -> Result<()> {
        self.check(resource)?;
        match self
            .run::<i64>(script, &[self.lock_key(resource)], args)
            .await?
        {
            1 => Ok(()),
            0 => Err(Error::lock_not_held(self.name_str())),
            -1 => Err(Error::lock_ownership(self.name_str())),
            other => Err(self.bad_reply(format!("unexpected lock script reply {other}"))),
        }
    }

    fn bad_reply(&self, message: String) -> Error {
        Error::new(ErrorKind::Serialization, self.name_str())
            .with_operation(Operation::Lock)
            .with_message(message)
    }
}

fn ms_value(ms: u64) -> Value {
    Value::Integer(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[async_trait]
impl LockStore for RedisLockStore {
    fn name(&self) -> &str {
        self.backend.name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.check(resource)?;
        let keys = [self.lock_key(resource), self.fence_key(resource)];
        let args = [
            Value::from(owner.as_str()),
            ms_value(millis(ttl)),
            ms_value(self.fence_ms),
        ];
        let token: Option<i64> = self.run(&ACQUIRE, &keys, &args).await?;
        token
            .map(|t| {
                u64::try_from(t)
                    .map(FencingToken::new)
                    .map_err(|_| self.bad_reply(format!("negative fencing token {t}")))
            })
            .transpose()
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.compare_and(&RELEASE, resource, &[Value::from(owner.as_str())])
            .await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        let args = [Value::from(owner.as_str()), ms_value(millis(ttl))];
        self.compare_and(&EXTEND, resource, &args).await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.check(resource)?;
        self.cmd
            .exists::<u64, _>(self.lock_key(resource))
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 (FIPS 180-4) in lowercase hex: enough to check the scripts' pinned hashes.
    fn sha1_hex(data: &[u8]) -> String {
        let mut h: [u32; 5] = [
            0x6745_2301,
            0xefcd_ab89,
            0x98ba_dcfe,
            0x1032_5476,
            0xc3d2_e1f0,
        ];
        let mut msg = data.to_vec();
        let bits = (data.len() as u64).wrapping_mul(8);
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&bits.to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 80];
            for (i, word) in block.chunks(4).enumerate() {
                w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            for i in 16..80 {
                w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (i, wi) in w.iter().enumerate() {
                let (f, k) = match i {
                    0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                    20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                    _ => (b ^ c ^ d, 0xca62_c1d6),
                };
                let t = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wi);
                (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
                *x = x.wrapping_add(y);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }

    #[test]
    fn the_test_sha1_matches_the_standard_vectors() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn scripts_are_called_by_the_sha1_of_their_source() {
        for script in [&ACQUIRE, &RELEASE, &EXTEND] {
            assert_eq!(
                script.sha1,
                sha1_hex(script.source.as_bytes()),
                "update the pinned hash of:\n{}",
                script.source
            );
        }
    }

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_never_to_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_millis(250)), 250);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_hash_tag_is_fnv1a_32() {
        // The published FNV-1a 32 test values.
        assert_eq!(tag(""), 0x811c_9dc5);
        assert_eq!(tag("a"), 0xe40c_292c);
        assert_eq!(tag("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn prefixes_that_would_split_a_locks_keys_over_two_slots_are_detected() {
        for ok in ["", "app:", "app:{tenant}:", "a}b:", "{t}{", "x{y}z{"] {
            assert!(prefix_keeps_slots(ok), "{ok:?}");
        }
        for bad in ["app{", "app{}:", "{}", "a{b:", "}{"] {
            assert!(!prefix_keeps_slots(bad), "{bad:?}");
        }
    }
}
