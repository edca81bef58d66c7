//! `RedisLockStore` against real servers: the standalone server and the three-primary cluster
//! (every shared behaviour runs on both), the primary behind the sentinel, a dead port, and a
//! dedicated server started here to check the script cache fallback.
//!
//! What the store wrote is checked with a raw fred client: lock values byte for byte, TTLs
//! with `PTTL`, leftovers with `SCAN`. The waits that remain are on the Redis server's clock
//! (expiry), which `tokio::time::pause` cannot move, and are kept short.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheBackend, ErrorKind, FencingToken, LockOwner, LockStore};
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use lexicache_redis::fred::types::config::{Options, Server};
use lexicache_redis::fred::types::{ClusterHash, CustomCommand, InfoKind, Value};
use lexicache_redis::fred::util::redis_keyslot;
use lexicache_redis::{RedisBackend, RedisLockStore, DEFAULT_FENCE_TTL};
use tokio::net::TcpListener;

const TTL: Duration = Duration::from_secs(30);

/// A store in a fresh namespace, and a raw client on the same deployment.
struct Target {
    store: RedisLockStore,
    raw: Client,
}

impl Target {
    async fn standalone(test: &str) -> Self {
        let backend = common::standalone().await.with_prefix(common::unique(test));
        Self {
            store: RedisLockStore::new(&backend),
            raw: common::raw_standalone().await,
        }
    }

    async fn cluster(test: &str) -> Self {
        let backend = common::cluster().await.with_prefix(common::unique(test));
        Self {
            store: RedisLockStore::new(&backend),
            raw: common::raw_cluster().await,
        }
    }

    /// The raw value of the lock on `resource`.
    async fn lock_value(&self, resource: &str) -> Option<String> {
        self.raw
            .get(self.store.lock_key(resource))
            .await
            .expect("raw GET")
    }

    async fn pttl(&self, key: String) -> i64 {
        self.raw.pttl(key).await.expect("raw PTTL")
    }

    async fn exists(&self, key: String) -> bool {
        self.raw.exists::<u64, _>(key).await.expect("raw EXISTS") == 1
    }

    /// The server clock in microseconds, read on the primary that owns `key`.
    async fn server_micros(&self, key: &str) -> u64 {
        let time = CustomCommand::new_static(
            "TIME",
            ClusterHash::Custom(redis_keyslot(key.as_bytes())),
            false,
        );
        let parts: Vec<u64> = self
            .raw
            .custom(time, Vec::<Value>::new())
            .await
            .expect("raw TIME");
        parts[0] * 1_000_000 + parts[1]
    }

    /// Every key in the store's namespace, with the backend's own `SCAN` (on every primary).
    async fn namespace_keys(&self) -> Vec<String> {
        self.store
            .backend()
            .keys("*", 100_000)
            .await
            .expect("keys")
            .into_iter()
            .map(|k| format!("{}{k}", self.store.backend().prefix()))
            .collect()
    }
}

/// Runs each behaviour below as one test on the standalone server and one on the cluster.
macro_rules! on_standalone_and_cluster {
    ($($name:ident),* $(,)?) => {
        mod standalone {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::standalone(stringify!($name)).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::cluster(stringify!($name)).await).await;
                }
            )*
        }
    };
}

on_standalone_and_cluster!(
    only_one_of_two_owners_acquires_and_the_next_holder_gets_a_larger_token,
    keys_follow_the_documented_layout_and_the_lock_holds_the_owner_token,
    is_locked_follows_acquire_release_and_expiry,
    release_and_extend_by_a_non_owner_are_lock_ownership_and_leave_the_lock_byte_identical,
    release_and_extend_of_an_absent_lock_are_lock_not_held_and_create_nothing,
    extend_after_expiry_is_lock_not_held,
    extend_by_the_owner_moves_the_expiry,
    fencing_tokens_keep_growing_after_the_counter_key_is_deleted,
    ten_thousand_acquire_release_cycles_leave_only_fencing_counters,
    resources_with_braces_keep_both_keys_in_one_slot_and_work,
    an_invalid_resource_is_key_invalid_and_writes_nothing,
);

async fn only_one_of_two_owners_acquires_and_the_next_holder_gets_a_larger_token(t: Target) {
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    let first = t.store.acquire("report", &a, TTL).await.expect("acquire a");
    let first = first.expect("a free lock is taken");
    assert_eq!(
        t.store.acquire("report", &b, TTL).await.expect("acquire b"),
        None
    );
    assert_eq!(
        t.store
            .acquire("report", &a, TTL)
            .await
            .expect("acquire a again"),
        None,
        "a lock is not re-entrant"
    );

    t.store.release("report", &a).await.expect("release by a");
    let second = t.store.acquire("report", &b, TTL).await.expect("acquire b");
    let second = second.expect("a released lock is free");
    assert!(second > first, "{second} after {first}");
    assert_eq!(t.lock_value("report").await.as_deref(), Some(b.as_str()));
    t.store.release("report", &b).await.expect("release by b");
}

async fn keys_follow_the_documented_layout_and_the_lock_holds_the_owner_token(t: Target) {
    let prefix = t.store.backend().prefix().to_owned();
    // FNV-1a 32 of "foobar" is 0xbf9cf968.
    assert_eq!(
        t.store.lock_key("foobar"),
        format!("{prefix}lock:{{bf9cf968}}foobar")
    );
    assert_eq!(
        t.store.fence_key("foobar"),
        format!("{prefix}fence:{{bf9cf968}}foobar")
    );

    let owner = LockOwner::new("layout");
    let token = t
        .store
        .acquire("foobar", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(
        t.lock_value("foobar").await.as_deref(),
        Some(owner.as_str())
    );
    let fence: Option<String> = t
        .raw
        .get(t.store.fence_key("foobar"))
        .await
        .expect("GET fence");
    assert_eq!(
        fence,
        Some(token.get().to_string()),
        "the counter holds the last token"
    );
    let ttl = t.pttl(t.store.lock_key("foobar")).await;
    assert!(
        ttl > 0 && ttl <= 30_000,
        "the lock's PTTL is the TTL: {ttl}"
    );
    t.store.release("foobar", &owner).await.expect("release");
    assert!(!t.exists(t.store.lock_key("foobar")).await);
}

async fn is_locked_follows_acquire_release_and_expiry(t: Target) {
    let owner = LockOwner::new("a");
    assert!(!t.store.is_locked("r").await.expect("is_locked"));
    t.store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert!(t.store.is_locked("r").await.expect("is_locked"));
    t.store.release("r", &owner).await.expect("release");
    assert!(!t.store.is_locked("r").await.expect("is_locked"));

    t.store
        .acquire("r", &owner, Duration::from_millis(50))
        .await
        .expect("acquire")
        .expect("free");
    // Expiry is on the server's clock; the wait is short and well past the TTL.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!t.store.is_locked("r").await.expect("is_locked"));
    let other = LockOwner::new("b");
    assert!(t
        .store
        .acquire("r", &other, TTL)
        .await
        .expect("acquire")
        .is_some());
    t.store.release("r", &other).await.expect("release");
}

async fn release_and_extend_by_a_non_owner_are_lock_ownership_and_leave_the_lock_byte_identical(
    t: Target,
) {
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    t.store
        .acquire("r", &a, TTL)
        .await
        .expect("acquire")
        .expect("free");
    let key = t.store.lock_key("r");
    let value = t.lock_value("r").await;
    let ttl = t.pttl(key.clone()).await;

    let err = t
        .store
        .release("r", &b)
        .await
        .expect_err("b does not hold it");
    assert_eq!(err.kind(), ErrorKind::LockOwnership, "{err}");
    let err = t
        .store
        .extend("r", &b, Duration::from_secs(3600))
        .await
        .expect_err("b does not hold it");
    assert_eq!(err.kind(), ErrorKind::LockOwnership, "{err}");

    assert_eq!(t.lock_value("r").await, value, "the value is untouched");
    let after = t.pttl(key).await;
    assert!(
        after > 0 && after <= ttl,
        "the TTL did not grow: {ttl} -> {after}"
    );
    t.store.release("r", &a).await.expect("a still holds it");
}

async fn release_and_extend_of_an_absent_lock_are_lock_not_held_and_create_nothing(t: Target) {
    let owner = LockOwner::new("a");
    let err = t
        .store
        .release("absent", &owner)
        .await
        .expect_err("no lock");
    assert_eq!(err.kind(), ErrorKind::LockNotHeld, "{err}");
    let err = t
        .store
        .extend("absent", &owner, TTL)
        .await
        .expect_err("no lock");
    assert_eq!(err.kind(), ErrorKind::LockNotHeld, "{err}");
    assert!(
        !t.exists(t.store.lock_key("absent")).await,
        "no lock was created"
    );
    assert!(
        !t.exists(t.store.fence_key("absent")).await,
        "no counter was created"
    );

    // A released lock is absent too.
    t.store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    t.store.release("r", &owner).await.expect("release");
    let err = t.store.release("r", &owner).await.expect_err("released");
    assert_eq!(err.kind(), ErrorKind::LockNotHeld, "{err}");
    assert!(!t.exists(t.store.lock_key("r")).await);
}

async fn extend_after_expiry_is_lock_not_held(t: Target) {
    let owner = LockOwner::new("a");
    t.store
        .acquire("r", &owner, Duration::from_millis(50))
        .await
        .expect("acquire")
        .expect("free");
    // Expiry is on the server's clock; the wait is short and well past the TTL.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let err = t.store.extend("r", &owner, TTL).await.expect_err("expired");
    assert_eq!(err.kind(), ErrorKind::LockNotHeld, "{err}");
    assert!(
        !t.exists(t.store.lock_key("r")).await,
        "extend did not revive it"
    );
}

async fn extend_by_the_owner_moves_the_expiry(t: Target) {
    let owner = LockOwner::new("a");
    t.store
        .acquire("r", &owner, Duration::from_secs(2))
        .await
        .expect("acquire")
        .expect("free");
    let key = t.store.lock_key("r");
    let before = t.pttl(key.clone()).await;
    assert!(before > 0 && before <= 2_000, "{before}");
    t.store
        .extend("r", &owner, Duration::from_secs(60))
        .await
        .expect("extend");
    let after = t.pttl(key.clone()).await;
    assert!(
        after > 2_000 && after <= 60_000,
        "the expiry moved: {before} -> {after}"
    );
    assert_eq!(t.lock_value("r").await.as_deref(), Some(owner.as_str()));

    // Extending can also shorten; the TTL rounds up to whole milliseconds.
    t.store
        .extend("r", &owner, Duration::from_micros(1_500_001))
        .await
        .expect("extend");
    let shorter = t.pttl(key).await;
    assert!(shorter > 0 && shorter <= 1_501, "{shorter}");
    t.store.release("r", &owner).await.expect("release");
}

async fn fencing_tokens_keep_growing_after_the_counter_key_is_deleted(t: Target) {
    let owner = LockOwner::new("a");
    let fence = t.store.fence_key("r");
    let before = t.server_micros(&fence).await;
    let first = t
        .store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        first.get() >= before,
        "a fresh counter is seeded by TIME: {first} < {before}"
    );
    let counter_ttl = t.pttl(fence.clone()).await;
    let week = i64::try_from(DEFAULT_FENCE_TTL.as_millis()).expect("fits");
    assert!(
        counter_ttl > week - 60_000 && counter_ttl <= week,
        "{counter_ttl}"
    );
    t.store.release("r", &owner).await.expect("release");

    // Acquisitions within one microsecond still get distinct, growing tokens.
    let mut last = first;
    for _ in 0..20 {
        let token = t
            .store
            .acquire("r", &owner, TTL)
            .await
            .expect("acquire")
            .expect("free");
        assert!(token > last, "{token} after {last}");
        t.store.release("r", &owner).await.expect("release");
        last = token;
    }

    let _: u64 = t.raw.del(fence.clone()).await.expect("raw DEL");
    let reseeded = t
        .store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        reseeded > last,
        "after the counter was deleted: {reseeded} after {last}"
    );
    t.store.release("r", &owner).await.expect("release");

    // A counter ahead of the clock is continued, not replaced by the clock.
    let ahead = reseeded.get() + 1_000_000_000_000;
    let _: () = t
        .raw
        .set(fence.clone(), ahead.to_string(), None, None, false)
        .await
        .expect("raw SET");
    let next = t
        .store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(next, FencingToken::new(ahead + 1));
    assert!(t.pttl(fence).await > 0, "the counter got its TTL back");
    t.store.release("r", &owner).await.expect("release");
}

async fn ten_thousand_acquire_release_cycles_leave_only_fencing_counters(t: Target) {
    const RESOURCES: usize = 100;
    const CONTENDERS: usize = 2;
    const ATTEMPTS: usize = 50;
    let ttl = Duration::from_millis(500);
    let store = Arc::new(t.store.clone());
    let mut tasks = Vec::new();
    for r in 0..RESOURCES {
        for c in 0..CONTENDERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let resource = format!("res:{r}");
                let owner = LockOwner::new(&format!("c{c}"));
                let (mut tokens, mut lost) = (Vec::new(), 0);
                for _ in 0..ATTEMPTS {
                    let acquired = store
                        .acquire(&resource, &owner, ttl)
                        .await
                        .expect("acquire");
                    if let Some(token) = acquired {
                        tokens.push(token);
                        // On an overloaded machine the lock may expire before its release;
                        // then it is gone (or another owner's) and the release says so.
                        if let Err(e) = store.release(&resource, &owner).await {
                            assert!(
                                matches!(
                                    e.kind(),
                                    ErrorKind::LockNotHeld | ErrorKind::LockOwnership
                                ),
                                "{e}"
                            );
                            lost += 1;
                        }
                    }
                }
                (resource, tokens, lost)
            }));
        }
    }
    let mut per_resource: HashMap<String, Vec<FencingToken>> = HashMap::new();
    let (mut acquired, mut lost) = (0, 0);
    for task in tasks {
        let (resource, tokens, expired) = task.await.expect("task");
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "one owner's tokens grow"
        );
        acquired += tokens.len();
        lost += expired;
        per_resource.entry(resource).or_default().extend(tokens);
    }
    assert_eq!(per_resource.len(), RESOURCES);
    for (resource, tokens) in &per_resource {
        let distinct: BTreeSet<_> = tokens.iter().collect();
        assert_eq!(
            distinct.len(),
            tokens.len(),
            "{resource}: a token was handed out twice"
        );
        assert!(!tokens.is_empty(), "{resource} was never acquired");
    }
    assert!(
        lost * 10 < acquired,
        "{lost} of {acquired} locks expired before their release"
    );

    // Nothing was abandoned, so nothing should expire; wait 3x the TTL anyway, then look.
    tokio::time::sleep(ttl * 3).await;
    let keys = t.namespace_keys().await;
    let fence_prefix = format!("{}fence:", t.store.backend().prefix());
    let lock_prefix = format!("{}lock:", t.store.backend().prefix());
    assert!(
        keys.iter().all(|k| !k.starts_with(&lock_prefix)),
        "locks left behind"
    );
    assert!(
        keys.iter().all(|k| k.starts_with(&fence_prefix)),
        "unexpected keys: {keys:?}"
    );
    assert_eq!(keys.len(), RESOURCES, "one fencing counter per resource");
    for key in keys {
        let ttl = t.pttl(key.clone()).await;
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

async fn resources_with_braces_keep_both_keys_in_one_slot_and_work(t: Target) {
    let resources = [
        "{",
        "}",
        "}x{y}",
        "{a}b",
        "a{}b",
        "{}",
        "}{",
        "{{}}",
        "user:{42}:profile",
    ];
    let owner = LockOwner::new("braces");
    let mut slots = BTreeSet::new();
    for r in resources {
        let (lock, fence) = (t.store.lock_key(r), t.store.fence_key(r));
        let slot = redis_keyslot(lock.as_bytes());
        assert_eq!(
            slot,
            redis_keyslot(fence.as_bytes()),
            "{r:?}: {lock} and {fence}"
        );
        slots.insert(slot);

        let token = t.store.acquire(r, &owner, TTL).await.expect("acquire");
        assert!(token.is_some(), "{r:?}");
        assert!(t.store.is_locked(r).await.expect("is_locked"), "{r:?}");
        t.store.extend(r, &owner, TTL).await.expect("extend");
        t.store.release(r, &owner).await.expect("release");
        assert!(!t.exists(lock).await, "{r:?}");
    }
    assert!(
        slots.len() > 1,
        "different resources spread over slots: {slots:?}"
    );
}

async fn an_invalid_resource_is_key_invalid_and_writes_nothing(t: Target) {
    let owner = LockOwner::new("a");
    let too_long = "x".repeat(lexicache_core::DEFAULT_MAX_KEY_LEN + 1);
    for bad in ["", too_long.as_str()] {
        let kinds = [
            t.store.acquire(bad, &owner, TTL).await.map(|_| ()),
            t.store.release(bad, &owner).await,
            t.store.extend(bad, &owner, TTL).await,
            t.store.is_locked(bad).await.map(|_| ()),
        ]
        .map(|r| r.expect_err("an invalid resource").kind());
        assert_eq!(kinds, [ErrorKind::KeyInvalid; 4], "{} chars", bad.len());
    }
    assert!(t.namespace_keys().await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn the_backend_hands_its_redis_lock_store_to_stampede_protection() {
    let backend = common::standalone()
        .await
        .with_prefix(common::unique("backend-lock-store"));
    let dynamic: Arc<dyn CacheBackend> = Arc::new(backend.clone());
    let store = dynamic
        .lock_store()
        .expect("a redis backend has a lock store");
    assert_eq!(store.name(), backend.name());
    let owner = LockOwner::new("dyn");
    store
        .acquire("r", &owner, TTL)
        .await
        .expect("acquire")
        .expect("free");

    // The lock is a Redis key in the backend's namespace, seen by any other store on it.
    let other = backend.lock_store();
    assert!(other.is_locked("r").await.expect("is_locked"));
    let raw = common::raw_standalone().await;
    let value: Option<String> = raw.get(other.lock_key("r")).await.expect("raw GET");
    assert_eq!(value.as_deref(), Some(owner.as_str()));
    assert!(other.lock_key("r").starts_with(backend.prefix()));
    store.release("r", &owner).await.expect("release");
}

#[tokio::test]
async fn locks_work_through_the_sentinel() {
    let backend = common::sentinel_backend()
        .await
        .with_prefix(common::unique("sentinel-lock"));
    let store = backend.lock_store();
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    let first = store
        .acquire("r", &a, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(store.acquire("r", &b, TTL).await.expect("acquire"), None);
    store.extend("r", &a, TTL).await.expect("extend");
    store.release("r", &a).await.expect("release");
    let second = store
        .acquire("r", &b, TTL)
        .await
        .expect("acquire")
        .expect("free");
    assert!(second > first);
    store.release("r", &b).await.expect("release");
}

#[tokio::test]
async fn a_prefix_that_would_split_a_locks_keys_is_a_config_error_in_a_cluster() {
    let backend = common::cluster()
        .await
        .with_prefix("lexicache-redis-test:bad{");
    let store = backend.lock_store();
    let owner = LockOwner::new("a");
    let err = store
        .acquire("r", &owner, TTL)
        .await
        .expect_err("split slots");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("prefix"), "{err}");
    let err = store.release("r", &owner).await.expect_err("split slots");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

/// A loopback port nothing listens on: bound, read, and released.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn a_dead_server_gives_connection_or_timeout_errors_not_a_hang() {
    let backend = RedisBackend::builder()
        .standalone("127.0.0.1", free_port().await)
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect_lazy()
        .expect("a lazy backend");
    let store = RedisLockStore::new(&backend);
    let owner = LockOwner::new("a");
    // A bound far past the command timeout: it fails the test on a hang, it measures nothing.
    let bound = Duration::from_secs(10);
    let results = [
        tokio::time::timeout(bound, store.acquire("r", &owner, TTL))
            .await
            .map(|r| r.map(|_| ())),
        tokio::time::timeout(bound, store.release("r", &owner)).await,
        tokio::time::timeout(bound, store.extend("r", &owner, TTL)).await,
        tokio::time::timeout(bound, store.is_locked("r"))
            .await
            .map(|r| r.map(|_| ())),
    ];
    for result in results {
        let err = result.expect("no hang").expect_err("nothing listens");
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{:?}: {err}",
            err.kind()
        );
        assert!(err.is_retryable(), "{err}");
    }
}

#[tokio::test]
async fn passwords_never_show_in_the_stores_debug_or_errors() {
    let port = free_port().await;
    let backend = RedisBackend::builder()
        .url(&format!("redis://:lock-s3cret@127.0.0.1:{port}"))
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect_lazy()
        .expect("a lazy backend");
    let store = backend.lock_store();
    assert!(!format!("{store:?}").contains("lock-s3cret"), "{store:?}");
    assert!(format!("{store:?}").contains("RedisLockStore"));
    let err = store
        .acquire("r", &LockOwner::new("a"), TTL)
        .await
        .expect_err("nothing listens");
    assert!(!format!("{err} {err:?}").contains("lock-s3cret"), "{err:?}");
}

/// A redis-server of our own on a free loopback port, stopped when dropped.
struct OwnServer {
    child: Child,
    port: u16,
}

impl OwnServer {
    async fn start() -> Self {
        let port = free_port().await;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it, or run `cargo xtask services up`, which installs it")
            });
        let server = Self { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the dedicated redis-server on port {port} did not start");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often the server ran `EVAL` and `EVALSHA`, from `INFO commandstats`.
async fn script_calls(raw: &Client) -> (u64, u64) {
    let info: String = raw
        .custom(
            CustomCommand::new_static("INFO", ClusterHash::FirstKey, false),
            vec![Value::from("commandstats")],
        )
        .await
        .expect("INFO commandstats");
    let calls = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("a count"))
    };
    (calls("eval"), calls("evalsha"))
}

#[tokio::test]
async fn a_server_without_the_scripts_gets_them_by_eval_once_then_runs_them_by_sha() {
    let server = OwnServer::start().await;
    let url = format!("redis://127.0.0.1:{}", server.port);
    let backend = common::connect(RedisBackend::builder().url(&url), "dedicated redis").await;
    let store = backend.lock_store();
    let raw = backend.client().clone();
    let owner = LockOwner::new("a");

    let round = || async {
        let token = store
            .acquire("r", &owner, TTL)
            .await
            .expect("acquire")
            .expect("free");
        store.extend("r", &owner, TTL).await.expect("extend");
        store.release("r", &owner).await.expect("release");
        token
    };
    let first = round().await;
    assert_eq!(
        script_calls(&raw).await,
        (3, 3),
        "NOSCRIPT once per script, then EVAL"
    );
    let second = round().await;
    assert_eq!(
        script_calls(&raw).await,
        (3, 6),
        "EVAL cached the scripts under the pinned SHA-1s"
    );
    assert!(second > first);

    // A restarted or flushed server loses its script cache; the store reloads transparently.
    raw.script_flush(false)
        .await
        .expect("SCRIPT FLUSH on our own server");
    let third = round().await;
    assert_eq!(script_calls(&raw).await, (6, 9));
    assert!(third > second);
    drop(store);
    drop(backend);
    drop(server);
}

/// How many `EVALSHA` calls each cluster primary refused (`MOVED` or `ASK`), from `INFO
/// commandstats` on every node.
async fn refused_script_calls(raw: &Client) -> u64 {
    let mut refused = 0;
    for (host, port) in common::cluster_nodes() {
        let options = Options {
            cluster_node: Some(Server::new(host, port)),
            ..Options::default()
        };
        let info: String = raw
            .with_options(&options)
            .info(Some(InfoKind::CommandStats))
            .await
            .expect("INFO commandstats");
        refused += info
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
            .and_then(|stats| {
                stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("rejected_calls="))
            })
            .map_or(0, |n| n.parse::<u64>().expect("a count"));
    }
    refused
}

#[tokio::test]
async fn scripts_go_straight_to_the_primary_that_owns_the_resource() {
    let t = Target::cluster("routing").await;
    let owner = LockOwner::new("a");
    let before = refused_script_calls(&t.raw).await;
    for i in 0..60 {
        let resource = format!("r{i}");
        t.store
            .acquire(&resource, &owner, TTL)
            .await
            .expect("acquire")
            .expect("free");
        t.store
            .extend(&resource, &owner, TTL)
            .await
            .expect("extend");
        t.store.release(&resource, &owner).await.expect("release");
    }
    assert_eq!(
        refused_script_calls(&t.raw).await,
        before,
        "a script was sent to a primary that does not own its keys (MOVED)"
    );
}
