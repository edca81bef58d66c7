//! The memcached lock store against the real test servers (`LEXICACHE_TEST_MEMCACHED`):
//! exclusion, fencing, compare-and-swap release and extend, expiry, hashed keys, bad input and
//! dead servers. What the servers hold is read back over separate, raw connections.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, free_port, unique_prefix, Raw};
use lexicache_core::lock::{LockOwner, LockStore};
use lexicache_core::{CacheBackend, ErrorKind, DEFAULT_MAX_KEY_LEN};
use lexicache_memcached::async_memcached::{Client, MetaProtocol};
use lexicache_memcached::{
    MemcachedBackend, MemcachedLockStore, HASHED_KEY_MARKER, MAX_WIRE_KEY_LEN,
};

const TTL: Duration = Duration::from_secs(30);

async fn store(test: &str) -> MemcachedLockStore {
    MemcachedLockStore::new(&connect(&unique_prefix(test)).await)
}

/// An item as the server holds it: value, CAS, client flags and remaining TTL.
#[derive(Debug, PartialEq)]
struct Item {
    value: Vec<u8>,
    cas: u64,
    flags: u32,
    ttl: i64,
}

/// Reads `resource`'s lock item from its server over a connection of its own.
async fn raw_lock(store: &MemcachedLockStore, resource: &str) -> Option<Item> {
    raw_item(store.server_for(resource), &store.lock_key(resource)).await
}

async fn raw_item(server: &str, key: &str) -> Option<Item> {
    let mut client = Client::new(format!("tcp://{server}"))
        .await
        .unwrap_or_else(|e| panic!("raw connect to {server}: {e}"));
    let item = client
        .meta_get(key, false, None, Some(&["v", "c", "f", "t"]))
        .await
        .expect("raw mg")?;
    Some(Item {
        value: item.data.unwrap_or_default(),
        cas: item.cas.expect("c flag"),
        flags: item.flags.expect("f flag"),
        ttl: item.ttl_remaining.expect("t flag"),
    })
}

#[tokio::test]
async fn only_one_of_two_owners_acquires_and_after_release_the_other_gets_a_larger_token() {
    let store = store("lock-exclusive").await;
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));

    let first = store.acquire("r", &a, TTL).await.unwrap().expect("free");
    assert_eq!(store.acquire("r", &b, TTL).await.unwrap(), None);
    assert_eq!(store.acquire("r", &a, TTL).await.unwrap(), None);
    assert!(store.is_locked("r").await.unwrap());
    let held = raw_lock(&store, "r").await.expect("the lock item");
    assert_eq!(held.value, a.as_str().as_bytes());

    store.release("r", &a).await.unwrap();
    assert!(!store.is_locked("r").await.unwrap());
    assert_eq!(raw_lock(&store, "r").await, None);

    let second = store
        .acquire("r", &b, TTL)
        .await
        .unwrap()
        .expect("free again");
    assert!(second > first, "{second} after {first}");
    store.release("r", &b).await.unwrap();
}

#[tokio::test]
async fn release_and_extend_by_a_non_owner_are_lock_ownership_and_leave_the_lock_byte_identical() {
    let store = store("lock-non-owner").await;
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    store.acquire("r", &a, TTL).await.unwrap().expect("free");
    let before = raw_lock(&store, "r").await.expect("the lock item");

    let release = store.release("r", &b).await.unwrap_err();
    let extend = store
        .extend("r", &b, Duration::from_secs(600))
        .await
        .unwrap_err();
    for err in [&release, &extend] {
        assert_eq!(err.kind(), ErrorKind::LockOwnership, "{err}");
        assert_eq!(err.operation(), Some(lexicache_core::Operation::Lock));
    }

    let after = raw_lock(&store, "r")
        .await
        .expect("the lock is still there");
    assert_eq!(after.value, before.value);
    assert_eq!(after.cas, before.cas, "the item was rewritten");
    assert_eq!(after.flags, before.flags);
    // The expiry did not move (the remaining TTL may only have ticked down).
    assert!(
        after.ttl <= before.ttl && after.ttl >= before.ttl - 2,
        "{before:?} -> {after:?}"
    );
    store.release("r", &a).await.unwrap();
}

#[tokio::test]
async fn release_and_extend_of_an_absent_lock_are_lock_not_held_and_create_nothing() {
    let store = store("lock-absent").await;
    let a = LockOwner::new("a");
    let release = store.release("r", &a).await.unwrap_err();
    let extend = store.extend("r", &a, TTL).await.unwrap_err();
    assert_eq!(release.kind(), ErrorKind::LockNotHeld, "{release}");
    assert_eq!(extend.kind(), ErrorKind::LockNotHeld, "{extend}");
    assert_eq!(raw_lock(&store, "r").await, None);
    assert_eq!(
        raw_item(store.server_for("r"), &store.fence_key("r")).await,
        None,
        "a fencing counter appeared without an acquisition"
    );
    assert!(!store.is_locked("r").await.unwrap());
}

#[tokio::test]
async fn extend_by_the_owner_moves_the_expiry_and_keeps_the_value() {
    let store = store("lock-extend").await;
    let a = LockOwner::new("a");
    store
        .acquire("r", &a, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free");
    // Memcached's clock ticks in whole seconds, so a lock is stored for one second more.
    assert!((5..=6).contains(&raw_lock(&store, "r").await.unwrap().ttl));

    store
        .extend("r", &a, Duration::from_secs(600))
        .await
        .unwrap();
    let extended = raw_lock(&store, "r").await.unwrap();
    assert!(extended.ttl > 590, "{extended:?}");
    assert_eq!(extended.value, a.as_str().as_bytes());

    // Sub-second TTLs round up to a whole second (plus the extra one), never to 0 (which would
    // mean no expiry).
    store
        .extend("r", &a, Duration::from_millis(1))
        .await
        .unwrap();
    let short = raw_lock(&store, "r").await.unwrap();
    assert!((1..=2).contains(&short.ttl), "{short:?}");
    store.extend("r", &a, TTL).await.unwrap();
    store.release("r", &a).await.unwrap();
}

#[tokio::test]
async fn a_lock_lives_at_least_its_ttl_then_cannot_be_extended_or_released_and_another_takes_it() {
    let store = store("lock-expiry").await;
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    let first = store
        .acquire("r", &a, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("free");
    // Memcached's clock ticks in whole seconds; a lock is kept one tick longer than its TTL, so
    // it never expires early (a plain 1 s item can be gone within milliseconds).
    tokio::time::sleep(Duration::from_millis(950)).await;
    assert!(store.is_locked("r").await.unwrap());
    assert_eq!(store.acquire("r", &b, TTL).await.unwrap(), None);
    // ... and is gone two seconds after it was taken.
    tokio::time::sleep(Duration::from_millis(1_550)).await;

    assert!(!store.is_locked("r").await.unwrap());
    let extend = store.extend("r", &a, TTL).await.unwrap_err();
    let release = store.release("r", &a).await.unwrap_err();
    assert_eq!(extend.kind(), ErrorKind::LockNotHeld, "{extend}");
    assert_eq!(release.kind(), ErrorKind::LockNotHeld, "{release}");
    assert_eq!(raw_lock(&store, "r").await, None);

    let second = store.acquire("r", &b, TTL).await.unwrap().expect("free");
    assert!(second > first);
    store.release("r", &b).await.unwrap();
}

#[tokio::test]
async fn fencing_tokens_keep_growing_after_the_counter_key_is_deleted() {
    let store = store("lock-fence").await;
    let server = store.server_for("r").to_owned();
    let fence_key = store.fence_key("r");
    let mut raw = Raw::connect(&server).await;
    let mut last = None;
    for round in 0..3 {
        for _ in 0..3 {
            let owner = LockOwner::new("w");
            let token = store
                .acquire("r", &owner, TTL)
                .await
                .unwrap()
                .expect("free");
            assert!(Some(token) > last, "round {round}: {token} after {last:?}");
            last = Some(token);
            store.release("r", &owner).await.unwrap();
        }
        assert!(raw.get(&fence_key).await.is_some(), "the counter exists");
        raw.delete(&fence_key).await;
    }
}

#[tokio::test]
async fn the_fencing_counter_lives_with_the_lock_for_the_fence_ttl() {
    let backend = connect(&unique_prefix("lock-fence-ttl")).await;
    let store = MemcachedLockStore::new(&backend).fence_ttl(Duration::from_secs(3_600));
    let a = LockOwner::new("a");
    let token = store.acquire("r", &a, TTL).await.unwrap().expect("free");
    store.release("r", &a).await.unwrap();

    let counter = raw_item(store.server_for("r"), &store.fence_key("r"))
        .await
        .expect("the counter sits on the lock's server");
    assert_eq!(counter.value, token.get().to_string().as_bytes());
    assert!(
        (3_590..=3_600).contains(&counter.ttl),
        "the counter's TTL is {}",
        counter.ttl
    );
    // The default keeps counters for 7 days.
    let default = MemcachedLockStore::new(&backend);
    default.acquire("d", &a, TTL).await.unwrap().expect("free");
    default.release("d", &a).await.unwrap();
    let counter = raw_item(default.server_for("d"), &default.fence_key("d"))
        .await
        .unwrap();
    assert!(counter.ttl > 7 * 86_400 - 10, "{counter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_acquire_release_cycles_leave_no_lock_keys_behind() {
    const CYCLES: usize = 10_000;
    const RESOURCES: usize = 100;
    const WORKERS: usize = 16;
    let ttl = Duration::from_secs(1);
    let store = Arc::new(store("lock-cycles").await);
    let resources: Vec<String> = (0..RESOURCES).map(|i| format!("res:{i}")).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let tokens: Arc<Mutex<HashMap<usize, Vec<u64>>>> = Arc::default();

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, next, tokens, resources) = (
                store.clone(),
                next.clone(),
                tokens.clone(),
                resources.clone(),
            );
            tokio::spawn(async move {
                let owner_label = format!("worker-{w}");
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= CYCLES {
                        break;
                    }
                    let r = n % RESOURCES;
                    let owner = LockOwner::new(&owner_label);
                    let token = loop {
                        if let Some(token) =
                            store.acquire(&resources[r], &owner, ttl).await.unwrap()
                        {
                            break token;
                        }
                        tokio::task::yield_now().await;
                    };
                    store.release(&resources[r], &owner).await.unwrap();
                    tokens
                        .lock()
                        .unwrap()
                        .entry(r)
                        .or_default()
                        .push(token.get());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }

    let tokens = std::mem::take(&mut *tokens.lock().unwrap());
    for r in 0..RESOURCES {
        let issued = &tokens[&r];
        assert_eq!(issued.len(), CYCLES / RESOURCES, "resource {r}");
        let distinct: HashSet<&u64> = issued.iter().collect();
        assert_eq!(distinct.len(), issued.len(), "resource {r} reused a token");
    }

    // Every lock was released; now abandon one more on each resource, as a crashed holder
    // would, and let them all expire.
    for resource in &resources {
        store
            .acquire(resource, &LockOwner::new("crashed"), ttl)
            .await
            .unwrap()
            .expect("free after the cycles");
    }
    tokio::time::sleep(ttl * 3).await;
    // Memcached cannot list keys, so look up every lock key used.
    for resource in &resources {
        assert_eq!(raw_lock(&store, resource).await, None, "{resource}");
        assert!(!store.is_locked(resource).await.unwrap());
    }
}

#[tokio::test]
async fn resources_that_are_long_or_hold_spaces_lock_under_hashed_keys() {
    let store = store("lock-hashed").await;
    let long = "r".repeat(MAX_WIRE_KEY_LEN + 50);
    let (a, b) = (LockOwner::new("a"), LockOwner::new("b"));
    for resource in ["a resource with spaces", "tab\tand\r\nbreak", long.as_str()] {
        let key = store.lock_key(resource);
        assert!(key.starts_with(HASHED_KEY_MARKER), "{resource:?} -> {key}");
        assert!(store.fence_key(resource).starts_with(HASHED_KEY_MARKER));

        let first = store
            .acquire(resource, &a, TTL)
            .await
            .unwrap()
            .expect("free");
        assert_eq!(store.acquire(resource, &b, TTL).await.unwrap(), None);
        let held = raw_lock(&store, resource)
            .await
            .expect("held under the hashed key");
        assert_eq!(held.value, a.as_str().as_bytes());
        store.extend(resource, &a, TTL).await.unwrap();
        store.release(resource, &a).await.unwrap();
        assert_eq!(raw_lock(&store, resource).await, None);
        let second = store
            .acquire(resource, &b, TTL)
            .await
            .unwrap()
            .expect("free");
        assert!(second > first);
        store.release(resource, &b).await.unwrap();
    }
}

#[tokio::test]
async fn an_invalid_resource_is_key_invalid_for_every_operation() {
    let store = store("lock-invalid").await;
    let a = LockOwner::new("a");
    let too_long = "r".repeat(DEFAULT_MAX_KEY_LEN + 1);
    for resource in ["", too_long.as_str()] {
        let errors = [
            store
                .acquire(resource, &a, TTL)
                .await
                .map(drop)
                .unwrap_err(),
            store.release(resource, &a).await.unwrap_err(),
            store.extend(resource, &a, TTL).await.unwrap_err(),
            store.is_locked(resource).await.map(drop).unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{err}");
            assert_eq!(err.operation(), Some(lexicache_core::Operation::Lock));
        }
    }
    // The longest valid resource works (the prefix does not count against the limit).
    let longest = "r".repeat(DEFAULT_MAX_KEY_LEN);
    store
        .acquire(&longest, &a, TTL)
        .await
        .unwrap()
        .expect("free");
    store.release(&longest, &a).await.unwrap();
}

#[tokio::test]
async fn a_dead_server_gives_a_connection_error_not_a_hang() {
    let dead = format!("127.0.0.1:{}", free_port());
    let backend = MemcachedBackend::builder()
        .server(&dead)
        .prefix(unique_prefix("lock-dead"))
        .connect_timeout(Duration::from_millis(300))
        .command_timeout(Duration::from_millis(300))
        .build()
        .expect("a valid configuration");
    let store = MemcachedLockStore::new(&backend);
    let a = LockOwner::new("a");
    let calls = async {
        [
            store.acquire("r", &a, TTL).await.map(drop).unwrap_err(),
            store.release("r", &a).await.unwrap_err(),
            store.extend("r", &a, TTL).await.unwrap_err(),
            store.is_locked("r").await.map(drop).unwrap_err(),
        ]
    };
    let errors = tokio::time::timeout(Duration::from_secs(10), calls)
        .await
        .expect("lock calls on a dead server returned within 10 s");
    for err in errors {
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{err}"
        );
        assert!(err.is_retryable(), "{err}");
        assert!(err.message().contains(&dead), "{err}");
    }
}

#[tokio::test]
async fn the_backends_lock_store_shares_its_namespace_and_servers() {
    let backend = connect(&unique_prefix("lock-shared")).await;
    let shared = backend.lock_store().expect("memcached has a lock store");
    assert_eq!(shared.name(), backend.name());
    let a = LockOwner::new("a");
    shared.acquire("r", &a, TTL).await.unwrap().expect("free");

    assert!(MemcachedLockStore::new(&backend)
        .is_locked("r")
        .await
        .unwrap());
    let other = MemcachedLockStore::new(&backend.with_prefix(unique_prefix("lock-other")));
    assert!(!other.is_locked("r").await.unwrap());
    // A lock is not a cache entry of the same name.
    assert_eq!(backend.get("r").await.unwrap(), None);
    shared.release("r", &a).await.unwrap();
}

#[tokio::test]
async fn debug_shows_the_configuration() {
    let backend = connect(&unique_prefix("lock-debug")).await;
    let store = MemcachedLockStore::new(&backend).fence_ttl(Duration::from_secs(60));
    let debug = format!("{store:?}");
    assert!(debug.starts_with("MemcachedLockStore"), "{debug}");
    assert!(debug.contains(backend.prefix()), "{debug}");
    assert!(debug.contains("60s"), "{debug}");
}

#[tokio::test]
async fn a_failed_fencing_step_gives_the_lock_back_and_reports_the_error() {
    let store = store("lock-fence-error").await;
    let mut raw = Raw::connect(store.server_for("r")).await;
    // A counter that is not a number cannot be incremented.
    raw.set(&store.fence_key("r"), b"not a number", 60).await;
    let a = LockOwner::new("a");
    let err = store.acquire("r", &a, TTL).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert_eq!(
        raw_lock(&store, "r").await,
        None,
        "the lock was left behind"
    );

    raw.delete(&store.fence_key("r")).await;
    store.acquire("r", &a, TTL).await.unwrap().expect("free");
    store.release("r", &a).await.unwrap();
}

/// A proxy in front of one memcached server that holds back every `ma` (the fencing
/// increment) until `gate` is notified: a holder that stalls between its `add` and its
/// increment.
async fn stalling_proxy(server: String, gate: Arc<tokio::sync::Notify>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = tokio::net::TcpStream::connect(&server).await.unwrap();
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut up_rx, mut up_tx) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut up_rx, &mut client_tx).await;
            });
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_rx.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    // The driver writes and flushes one command at a time.
                    if buf[..n].starts_with(b"ma ") {
                        gate.notified().await;
                    }
                    if up_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_holder_that_stalls_past_its_ttl_before_its_fencing_token_is_not_granted_the_lock() {
    let server = common::servers()[0].clone();
    let prefix = unique_prefix("lock-stall");
    let gate = Arc::new(tokio::sync::Notify::new());
    let proxied = MemcachedBackend::builder()
        .server(stalling_proxy(server.clone(), gate.clone()).await)
        .prefix(&prefix)
        .command_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid configuration");
    let direct = MemcachedBackend::builder()
        .server(&server)
        .prefix(&prefix)
        .build()
        .expect("a valid configuration");
    let (slow, fast) = (
        MemcachedLockStore::new(&proxied),
        MemcachedLockStore::new(&direct),
    );
    let (a, b) = (LockOwner::new("slow"), LockOwner::new("fast"));

    // The slow holder's `add` goes through; its increment is held back by the proxy.
    let slow_acquire = tokio::spawn({
        let a = a.clone();
        async move { slow.acquire("r", &a, Duration::from_secs(1)).await }
    });
    let mut waited = Duration::ZERO;
    while !fast.is_locked("r").await.unwrap() {
        assert!(waited < Duration::from_secs(5), "the slow add never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    // Its lock expires while it stalls, and another owner takes the lock and a token.
    while fast.is_locked("r").await.unwrap() {
        assert!(
            waited < Duration::from_secs(10),
            "the slow lock never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let fast_token = fast.acquire("r", &b, TTL).await.unwrap().expect("free");

    // The slow holder's increment now lands after the fast one's, so its token would be larger
    // than the live holder's: the read-back sees the lock is not its own and refuses it.
    gate.notify_one();
    let slow_result = slow_acquire.await.unwrap().unwrap();
    assert_eq!(slow_result, None, "a stalled holder got a token");
    let counter = raw_item(&server, &fast.fence_key("r")).await.unwrap();
    let counted: u64 = std::str::from_utf8(&counter.value)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        counted > fast_token.get(),
        "the stalled increment did happen after the fast holder's"
    );
    assert_eq!(
        raw_lock(&fast, "r").await.unwrap().value,
        b.as_str().as_bytes()
    );
    fast.release("r", &b).await.unwrap();
}

#[tokio::test]
async fn concurrent_extends_by_the_owner_all_succeed_and_keep_the_lock() {
    let store = store("lock-concurrent-extend").await;
    let a = LockOwner::new("a");
    store.acquire("r", &a, TTL).await.unwrap().expect("free");
    for _ in 0..20 {
        // Each compare-and-swap that loses a race to another reads the lock again and retries.
        let extends = (0..4).map(|_| store.extend("r", &a, Duration::from_secs(60)));
        for result in futures::future::join_all(extends).await {
            result.unwrap();
        }
    }
    let held = raw_lock(&store, "r").await.unwrap();
    assert_eq!(held.value, a.as_str().as_bytes());
    assert!(held.ttl > 55, "{held:?}");
    store.release("r", &a).await.unwrap();
}
