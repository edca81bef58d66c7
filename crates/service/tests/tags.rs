//! Tags on memory, Redis and memcached: an invalidation is seen by every client sharing the
//! backend, a value computed before an invalidation is never served after it (also under
//! concurrent loads and invalidations), a missing version key makes tagged entries misses, and
//! bad tags are typed errors that write nothing.
//!
//! Each behaviour is one generic body, run once per backend by `on_every_backend!`: the test
//! `memory::invalidation_is_seen_by_a_second_client` and its `redis::` and `memcached::` twins.
//! Redis and memcached tests need the servers of `cargo xtask services up` and fail loudly
//! without them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, ErrorKind, SharedBackend};
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::tags::{version_key, MAX_TAGS, MAX_TAG_LEN};
use lexicache_service::{CacheService, LoadOptions};
use lexicache_testkit::servers;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
    Memcached,
}

/// Two independent clients of one namespace: for Redis and memcached two separately built
/// backends (two connections, like two processes); for memory two handles on one store.
async fn two_clients(kind: Kind, label: &str) -> (SharedBackend, SharedBackend) {
    let ns = servers::unique_namespace(label);
    match kind {
        Kind::Memory => {
            let store = MemoryBackend::builder().prefix(ns).build();
            (Arc::new(store.clone()), Arc::new(store))
        }
        Kind::Redis => {
            let url = servers::redis_url();
            let connect = || async {
                RedisBackend::builder()
                    .url(&url)
                    .prefix(ns.clone())
                    .connect()
                    .await
                    .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START))
            };
            (Arc::new(connect().await), Arc::new(connect().await))
        }
        Kind::Memcached => {
            let list = servers::memcached_servers();
            let connect = || async {
                MemcachedBackend::builder()
                    .servers(list.clone())
                    .prefix(ns.clone())
                    .connect()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("memcached at {list:?}: {e}; {}", servers::HOW_TO_START)
                    })
            };
            (Arc::new(connect().await), Arc::new(connect().await))
        }
    }
}

fn service(backend: SharedBackend, name: &str) -> CacheService {
    CacheService::builder(backend).name(name).build()
}

/// Generates `memory::$name`, `redis::$name` and `memcached::$name`, each running `$name`'s
/// body against that backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Redis).await;
                }
            )*
        }
        mod memcached {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Memcached).await;
                }
            )*
        }
    };
}

on_every_backend!(
    invalidation_is_seen_by_a_second_client,
    a_value_computed_before_an_invalidation_is_never_served_after_it,
    a_value_loaded_before_an_invalidation_is_never_served_after_it_under_concurrency,
    a_missing_version_key_makes_tagged_entries_misses,
    bad_tags_and_too_many_tags_are_typed_errors_and_write_nothing,
);

const TTL: Option<Duration> = Some(Duration::from_secs(300));

async fn invalidation_is_seen_by_a_second_client(kind: Kind) {
    let (a, b) = two_clients(kind, "tags-second-client").await;
    let (a, b) = (service(a, "client-a"), service(b, "client-b"));

    a.try_set_with_tags("user:1", &"alice".to_owned(), TTL, &["users"])
        .await
        .unwrap();
    a.try_set_with_tags("user:2", &"bob".to_owned(), TTL, &["users", "team:red"])
        .await
        .unwrap();
    a.try_set_with_tags("post:1", &"hello".to_owned(), TTL, &["posts"])
        .await
        .unwrap();
    a.try_set_many_with_tags(&[("user:3", 3u32), ("user:4", 4u32)], TTL, &["users"])
        .await
        .unwrap();
    a.try_set("config", &7u8, TTL).await.unwrap();

    // B sees everything A wrote, through every read form.
    assert_eq!(b.get::<String>("user:1").await.as_deref(), Some("alice"));
    assert_eq!(
        b.try_get_many::<u32>(&["user:3", "user:4"]).await.unwrap(),
        vec![Some(3), Some(4)]
    );
    assert!(b.try_exists("user:2").await.unwrap());
    assert_eq!(b.get::<String>("post:1").await.as_deref(), Some("hello"));

    a.invalidate_tags(&["users"]).await.unwrap();

    // B misses every entry tagged `users`, however it reads them...
    assert_eq!(b.try_get::<String>("user:1").await.unwrap(), None);
    assert_eq!(b.try_get::<String>("user:2").await.unwrap(), None);
    assert_eq!(b.get_arc::<String>("user:2").await, None);
    assert!(!b.try_exists("user:1").await.unwrap());
    assert_eq!(
        b.try_get_many::<u32>(&["user:3", "user:4"]).await.unwrap(),
        vec![None, None]
    );
    let reloaded = b
        .get_or_set_tagged("user:1", TTL, &["users"], || async {
            Ok::<_, std::io::Error>("alice v2".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(
        reloaded, "alice v2",
        "a load after the invalidation runs its loader"
    );
    // ...and so does A.
    assert_eq!(a.try_get::<String>("user:2").await.unwrap(), None);
    assert_eq!(a.get::<String>("user:1").await.as_deref(), Some("alice v2"));

    // Untagged entries and entries with other tags survive.
    assert_eq!(b.get::<u8>("config").await, Some(7));
    assert_eq!(b.get::<String>("post:1").await.as_deref(), Some("hello"));
    assert_eq!(
        b.try_get_many::<String>(&["post:1", "user:2"])
            .await
            .unwrap(),
        vec![Some("hello".to_owned()), None],
        "a batch mixing live and invalidated tagged entries"
    );

    // Invalidating one of an entry's tags is enough; invalidating an unused tag changes nothing.
    b.invalidate_tags(&["no-such-tag"]).await.unwrap();
    assert_eq!(a.get::<String>("post:1").await.as_deref(), Some("hello"));
    a.try_set_with_tags("both", &1u8, TTL, &["posts", "users"])
        .await
        .unwrap();
    b.invalidate_tags(&["posts"]).await.unwrap();
    assert_eq!(a.get::<u8>("both").await, None);
    assert_eq!(a.get::<String>("post:1").await, None);
}

async fn a_value_computed_before_an_invalidation_is_never_served_after_it(kind: Kind) {
    let (a, b) = two_clients(kind, "tags-race").await;
    let (writer, other) = (service(a, "writer"), service(b, "invalidator"));

    // The snapshot is taken, the data read; then another client invalidates; then the write
    // lands: a miss, whenever the write happens.
    let snapshot = writer.tag_snapshot(&["report", "users"]).await.unwrap();
    assert_eq!(snapshot.tags().collect::<Vec<_>>(), ["report", "users"]);
    other.invalidate_tags(&["users"]).await.unwrap();
    writer
        .try_set_with_snapshot("r", &"computed before", TTL, &snapshot)
        .await
        .unwrap();
    assert_eq!(writer.try_get::<String>("r").await.unwrap(), None);
    assert_eq!(other.try_get::<String>("r").await.unwrap(), None);

    // A snapshot taken after the invalidation is live.
    let fresh = writer.tag_snapshot(&["report", "users"]).await.unwrap();
    writer
        .try_set_with_snapshot("r", &"computed after", TTL, &fresh)
        .await
        .unwrap();
    assert_eq!(
        other.get::<String>("r").await.as_deref(),
        Some("computed after")
    );

    // A snapshot of tags that have no version yet creates them; a first invalidation then
    // still makes the write a miss.
    let first = writer.tag_snapshot(&["brand-new"]).await.unwrap();
    other.invalidate_tags(&["brand-new"]).await.unwrap();
    writer
        .try_set_with_snapshot("n", &1u8, TTL, &first)
        .await
        .unwrap();
    assert_eq!(other.try_get::<u8>("n").await.unwrap(), None);

    // get_or_set_tagged: an invalidation while the loader runs makes its value a miss for the
    // next reader (it is still returned to the caller that loaded it).
    let inval = other.clone();
    let loaded = writer
        .get_or_set_tagged("g", TTL, &["users"], || async move {
            inval.invalidate_tags(&["users"]).await.unwrap();
            Ok::<_, std::io::Error>("loaded across an invalidation".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(loaded, "loaded across an invalidation");
    assert_eq!(other.try_get::<String>("g").await.unwrap(), None);
    let again = writer
        .get_or_set_tagged("g", TTL, &["users"], || async {
            Ok::<_, std::io::Error>("loaded after".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(again, "loaded after");
    assert_eq!(
        other.get::<String>("g").await.as_deref(),
        Some("loaded after")
    );

    // The same through get_or_set_with and LoadOptions::tags.
    let inval = other.clone();
    let options = LoadOptions::new()
        .ttl(Duration::from_secs(300))
        .tags(["users"]);
    let v = writer
        .get_or_set_with("w", options.clone(), move || async move {
            inval.invalidate_tags(&["users"]).await.unwrap();
            Ok::<_, std::io::Error>(1u32)
        })
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(other.try_get::<u32>("w").await.unwrap(), None);
    let v = writer
        .get_or_set_with("w", options, || async { Ok::<_, std::io::Error>(2u32) })
        .await
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(other.get::<u32>("w").await, Some(2));
}

async fn a_value_loaded_before_an_invalidation_is_never_served_after_it_under_concurrency(
    kind: Kind,
) {
    const KEYS: usize = 8;
    const WRITERS: usize = 8;
    const READERS: usize = 4;
    let invalidations: u64 = match kind {
        Kind::Memory => 300,
        Kind::Redis | Kind::Memcached => 150,
    };
    let (a, b) = two_clients(kind, "tags-stress").await;
    let (writers_side, readers_side) = (service(a, "writers"), service(b, "readers"));
    // The "database": its generation is bumped before each invalidation, as an application
    // updates its data and then invalidates. A loader returns the generation it started with.
    let generation = Arc::new(AtomicU64::new(0));
    // How many invalidations have returned.
    let completed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let keys: Vec<String> = (0..KEYS).map(|k| format!("stress:{k}")).collect();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (cache, generation, done, keys) = (
            writers_side.clone(),
            generation.clone(),
            done.clone(),
            keys.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while !done.load(Ordering::SeqCst) {
                // In-process calls never yield by themselves; without this, looping tasks
                // would keep the others off the runtime's threads.
                tokio::task::yield_now().await;
                let key = &keys[i % KEYS];
                i += 1;
                if i % 3 == 0 {
                    // The snapshot-then-compute path.
                    let snapshot = cache.tag_snapshot(&["stress"]).await.unwrap();
                    let seen = generation.load(Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    cache
                        .try_set_with_snapshot(key, &seen, TTL, &snapshot)
                        .await
                        .unwrap();
                } else {
                    let generation = generation.clone();
                    cache
                        .get_or_set_tagged(key, TTL, &["stress"], || async move {
                            let seen = generation.load(Ordering::SeqCst);
                            // A slow loader, so invalidations land while loads run.
                            tokio::task::yield_now().await;
                            Ok::<_, std::io::Error>(seen)
                        })
                        .await
                        .unwrap();
                }
            }
        }));
    }

    let mut readers = Vec::new();
    for r in 0..READERS {
        let (cache, completed, done, keys, hits) = (
            readers_side.clone(),
            completed.clone(),
            done.clone(),
            keys.clone(),
            hits.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut i = r;
            while !done.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
                // Read the count first: every invalidation counted returned before this read.
                let floor = completed.load(Ordering::SeqCst);
                let key = &keys[i % KEYS];
                i += 1;
                let values: Vec<Option<u64>> = if i % 2 == 0 {
                    vec![cache.try_get::<u64>(key).await.unwrap()]
                } else {
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    cache.try_get_many::<u64>(&refs).await.unwrap()
                };
                for v in values.into_iter().flatten() {
                    hits.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        v >= floor,
                        "served a value loaded at generation {v} after invalidation {floor} \
                         returned"
                    );
                }
            }
        }));
    }

    for n in 1..=invalidations {
        // A reader that found a stale value has panicked: stop and report it.
        if readers.iter().any(tokio::task::JoinHandle::is_finished) {
            break;
        }
        generation.store(n, Ordering::SeqCst);
        writers_side.invalidate_tags(&["stress"]).await.unwrap();
        completed.store(n, Ordering::SeqCst);
        // Let writers store values of this generation and readers hit them before the next
        // invalidation (an in-process backend would otherwise invalidate faster than anyone
        // writes), within a bound so a broken cache cannot hang the test.
        let seen = hits.load(Ordering::SeqCst);
        for _ in 0..200 {
            if hits.load(Ordering::SeqCst) > seen + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("a writer panicked");
    }
    for r in readers {
        r.await.expect("a reader found a stale value");
    }
    let hits = hits.load(Ordering::SeqCst);
    assert!(
        hits >= invalidations,
        "the readers hit only {hits} times, so the check checked little"
    );
}

async fn a_missing_version_key_makes_tagged_entries_misses(kind: Kind) {
    let (a, raw) = two_clients(kind, "tags-missing-version").await;
    let cache = service(a, "cache");
    cache
        .try_set_with_tags("k", &"v", TTL, &["fragile", "sturdy"])
        .await
        .unwrap();
    cache
        .try_set_with_tags("s", &"w", TTL, &["sturdy"])
        .await
        .unwrap();
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v"));

    // The version key goes (expired, evicted, or deleted by hand as here).
    assert!(raw.delete(&version_key("fragile")).await.unwrap());
    assert_eq!(cache.try_get::<String>("k").await.unwrap(), None);
    assert!(!cache.try_exists("k").await.unwrap());
    assert_eq!(cache.get::<String>("s").await.as_deref(), Some("w"));

    // The next write creates a new version; the old entry stays a miss, the new one is live.
    cache
        .try_set_with_tags("k2", &"new", TTL, &["fragile"])
        .await
        .unwrap();
    assert!(raw.exists(&version_key("fragile")).await.unwrap());
    assert_eq!(cache.try_get::<String>("k").await.unwrap(), None);
    assert_eq!(cache.get::<String>("k2").await.as_deref(), Some("new"));

    // A version key holding garbage is not a token: a miss too, never an error or a hit.
    raw.set(&version_key("sturdy"), Bytes::from_static(b"garbage"), TTL)
        .await
        .unwrap();
    assert_eq!(cache.try_get::<String>("s").await.unwrap(), None);
}

async fn bad_tags_and_too_many_tags_are_typed_errors_and_write_nothing(kind: Kind) {
    let (a, raw) = two_clients(kind, "tags-bad").await;
    let cache = service(a, "cache");
    let long = "t".repeat(MAX_TAG_LEN + 1);
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("tag-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let bad: [(&str, &[&str]); 4] = [
        ("an empty tag", &["ok", ""]),
        ("an overlong tag", &[long.as_str()]),
        ("too many tags", &many),
        ("an empty tag among duplicates", &["ok", "ok", ""]),
    ];
    for (what, tags) in bad {
        let err = cache
            .try_set_with_tags("k", &1u8, TTL, tags)
            .await
            .expect_err(what);
        assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{what}: {err}");
        assert!(!cache.set_with_tags("k", &1u8, TTL, tags).await, "{what}");
        let err = cache
            .try_set_many_with_tags(&[("k", 1u8)], TTL, tags)
            .await
            .expect_err(what);
        assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{what}: {err}");
        let err = cache.invalidate_tags(tags).await.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{what}: {err}");
        let err = cache.tag_snapshot(tags).await.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{what}: {err}");
        let err = cache
            .get_or_set_tagged("k", TTL, tags, || async { Ok::<_, std::io::Error>(1u8) })
            .await
            .expect_err(what);
        assert_eq!(err.kind(), ErrorKind::KeyInvalid, "{what}: {err}");
    }
    // The error names the tag.
    let err = cache
        .try_set_with_tags("k", &1u8, TTL, &[long.as_str()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&long[..20]), "{err}");
    // Exactly the maximum is fine.
    let max: Vec<&str> = many[..MAX_TAGS].to_vec();
    cache
        .try_set_with_tags("max", &1u8, TTL, &max)
        .await
        .unwrap();
    assert_eq!(cache.get::<u8>("max").await, Some(1));

    // Nothing was written for the refused calls: no entry, no version key.
    assert!(!raw.exists("k").await.unwrap());
    assert!(!raw.exists(&version_key("ok")).await.unwrap());
    assert!(!raw.exists(&version_key(many[MAX_TAGS])).await.unwrap());
}

/// Writes tagged entries under a 2 s tag TTL, lets `wait` pass 3 s, and checks that the
/// entries (one written with no TTL, one with an hour) and the version key are gone.
async fn tagged_entries_ttls_are_capped_at_the_tag_ttl<W, Fut>(backend: SharedBackend, wait: W)
where
    W: FnOnce(Duration) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cache = CacheService::builder(backend)
        .tag_ttl(Duration::from_secs(2))
        .build();
    cache
        .try_set_with_tags("none", &1u8, None, &["t"])
        .await
        .unwrap();
    cache
        .try_set_with_tags("long", &2u8, Some(Duration::from_secs(3600)), &["t"])
        .await
        .unwrap();
    cache.try_set("untagged", &3u8, None).await.unwrap();
    assert_eq!(cache.get::<u8>("none").await, Some(1));
    assert_eq!(cache.get::<u8>("long").await, Some(2));
    // Memcached counts whole seconds: three of them are past two on every backend.
    wait(Duration::from_millis(3100)).await;
    let raw = cache.backend();
    assert_eq!(raw.get("none").await.unwrap(), None, "entry with no TTL");
    assert_eq!(
        raw.get("long").await.unwrap(),
        None,
        "entry with a long TTL"
    );
    assert_eq!(
        raw.get(&version_key("t")).await.unwrap(),
        None,
        "the version key"
    );
    assert_eq!(cache.get::<u8>("untagged").await, Some(3));
}

mod ttl_cap {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_tagged_entries_ttls_are_capped_at_the_tag_ttl() {
        let (backend, _) = two_clients(Kind::Memory, "tags-ttl").await;
        tagged_entries_ttls_are_capped_at_the_tag_ttl(backend, tokio::time::advance).await;
    }

    // Real waits: the server's clock is what expires keys.
    #[tokio::test]
    async fn redis_tagged_entries_ttls_are_capped_at_the_tag_ttl() {
        let (backend, _) = two_clients(Kind::Redis, "tags-ttl").await;
        tagged_entries_ttls_are_capped_at_the_tag_ttl(backend, tokio::time::sleep).await;
    }

    #[tokio::test]
    async fn memcached_tagged_entries_ttls_are_capped_at_the_tag_ttl() {
        let (backend, _) = two_clients(Kind::Memcached, "tags-ttl").await;
        tagged_entries_ttls_are_capped_at_the_tag_ttl(backend, tokio::time::sleep).await;
    }
}

#[tokio::test]
async fn an_oversized_tagged_value_creates_no_version_key() {
    let backend = MemoryBackend::builder().max_value_size(1024).build();
    let cache = CacheService::builder(backend.clone()).build();
    let err = cache
        .try_set_with_tags("huge", &"x".repeat(2000), TTL, &["huge-tag"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    // A value that fits alone but not with its frame is refused too.
    let err = cache
        .try_set_many_with_tags(&[("a", "y".repeat(1010))], TTL, &["huge-tag"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    assert!(!backend.exists("huge").await.unwrap());
    assert!(!backend.exists("a").await.unwrap());
    assert!(!backend.exists(&version_key("huge-tag")).await.unwrap());
}

#[tokio::test]
async fn untagged_entries_and_tagged_ones_coexist_with_early_refresh_frames() {
    use lexicache_service::EarlyRefresh;
    let cache = CacheService::memory()
        .early_refresh(EarlyRefresh::new().xfetch(1.0))
        .build();
    // A tagged load with XFetch on writes both frames: tag frame outermost.
    let options = LoadOptions::new()
        .ttl(Duration::from_secs(60))
        .xfetch(1.0)
        .tags(["t"]);
    let v = cache
        .get_or_set_with("k", options, || async { Ok::<_, std::io::Error>(5u8) })
        .await
        .unwrap();
    assert_eq!(v, 5);
    let bytes = cache.backend().get("k").await.unwrap().unwrap();
    assert_eq!(bytes[..2], lexicache_service::tags::TAG_FRAME_MAGIC);
    assert_eq!(cache.get::<u8>("k").await, Some(5));
    assert!(cache.exists("k").await);
    cache.invalidate_tags(&["t"]).await.unwrap();
    assert_eq!(cache.get::<u8>("k").await, None);
    assert!(!cache.exists("k").await);
}
