//! A million short-lived tagged entries leave no residue, on memory, Redis and memcached: tags
//! keep no index that grows with keys, every version key has a TTL, and once the entries'
//! TTLs pass nothing of them is left.
//!
//! Each test writes 1,000,000 entries (TTL 5 s) tagged with one of 16 tags (tag TTL 6 s), from
//! 32 concurrent tasks in batches of 500 (one tag snapshot and one batch write per batch),
//! waits for the TTLs to pass, and shows that nothing remains:
//!
//! - memory: `entry_count` after `run_pending_tasks` is 0;
//! - Redis: a `SCAN` of the namespace finds no key;
//! - memcached, which cannot list keys: a recording layer under the service keeps every key
//!   written; the set is exactly the entries plus the 16 version keys (so there is no index),
//!   and none of them is still there.
//!
//! Each test prints how long it took (`--nocapture` shows it). Redis and memcached need the
//! servers of `cargo xtask services up` and fail loudly without them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lexicache_core::{
    async_trait, Bytes, CacheBackend, CacheValue, Capabilities, HealthCheckResult, Result,
    SharedBackend,
};
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::tags::version_key;
use lexicache_service::CacheService;
use lexicache_testkit::servers;

const ENTRIES: usize = 1_000_000;

/// One test at a time: each one alone keeps the machine's cores busy, and run together they
/// would slow each other past the servers' command timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const BATCH: usize = 500;
const TASKS: usize = 32;
const TAGS: usize = 16;
const ENTRY_TTL: Duration = Duration::from_secs(5);
const TAG_TTL: Duration = Duration::from_secs(6);

fn entry_key(i: usize) -> String {
    format!("e:{i}")
}

fn tag_of_batch(batch: usize) -> String {
    format!("t{}", batch % TAGS)
}

/// Writes the million entries from `TASKS` tasks, batch by batch; returns when the last write
/// returned.
async fn write_million(cache: &CacheService) {
    let next = Arc::new(AtomicUsize::new(0));
    let batches = ENTRIES / BATCH;
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let (cache, next) = (cache.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let batch = next.fetch_add(1, Ordering::SeqCst);
                if batch >= batches {
                    break;
                }
                let keys: Vec<String> = (batch * BATCH..(batch + 1) * BATCH)
                    .map(entry_key)
                    .collect();
                let items: Vec<(&str, u32)> = keys
                    .iter()
                    .zip(batch * BATCH..)
                    .map(|(k, i)| (k.as_str(), u32::try_from(i).unwrap()))
                    .collect();
                let tag = tag_of_batch(batch);
                cache
                    .try_set_many_with_tags(&items, Some(ENTRY_TTL), &[tag.as_str()])
                    .await
                    .unwrap();
                // In-process writes never yield by themselves.
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a writer panicked");
    }
}

/// The last batch is on the backend: the entries were really stored, so "nothing remains"
/// later means they expired, not that they were never there.
///
/// Read from the backend, not through the service: with a 6 s tag TTL and writes that take
/// longer, a tag's version key can expire (as documented) between the last write and this
/// read, which makes its entries misses for the service although they are stored.
async fn assert_last_batch_is_live(backend: &dyn CacheBackend) {
    let keys: Vec<String> = (ENTRIES - BATCH..ENTRIES).map(entry_key).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = backend.get_many(&refs).await.unwrap();
    let hits = values.iter().flatten().count();
    assert_eq!(
        hits, BATCH,
        "the last batch written is live right after the writes"
    );
}

#[allow(clippy::print_stderr)]
fn report(backend: &str, started: Instant, written: Instant) {
    eprintln!(
        "{backend}: wrote {ENTRIES} tagged entries in {:.1?}; whole test {:.1?}",
        written - started,
        started.elapsed()
    );
}

mod memory {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_million_short_lived_tagged_entries_leave_no_residue() {
        let _serial = SERIAL.lock().await;
        let started = Instant::now();
        let backend = MemoryBackend::builder()
            .max_entries(2 * ENTRIES as u64)
            .build();
        let cache = CacheService::builder(backend.clone())
            .tag_ttl(TAG_TTL)
            .build();
        write_million(&cache).await;
        let written = Instant::now();
        assert_last_batch_is_live(&backend).await;
        // Only entries and version keys were written: no index. (moka may already have
        // reclaimed early entries: it expires them on its own real-time clock, and the writes
        // take longer than their TTL.)
        let present = cache.keys("*", usize::MAX).await.unwrap();
        assert!(present.len() <= ENTRIES + TAGS, "{} keys", present.len());
        let versions: HashSet<String> = (0..TAGS).map(|b| version_key(&tag_of_batch(b))).collect();
        for key in &present {
            let entry = key
                .strip_prefix("e:")
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < ENTRIES);
            assert!(entry || versions.contains(key), "unexpected key {key:?}");
        }

        // Past the TTLs on tokio's clock, which decides liveness: nothing is readable.
        tokio::time::advance(TAG_TTL + Duration::from_millis(100)).await;
        assert_eq!(cache.try_get::<u32>(&entry_key(0)).await.unwrap(), None);
        assert_eq!(
            cache.try_get::<u32>(&entry_key(ENTRIES - 1)).await.unwrap(),
            None
        );
        assert!(cache.keys("*", 10).await.unwrap().is_empty());
        // moka reclaims memory on its own real-time clock, from the TTL each entry had when it
        // was written; wait (for real) until the last of those has passed.
        // Version keys moka reclaimed during the writes were created again, so the last one
        // was written at the latest when the writes ended.
        let reclaim_at = written + TAG_TTL + Duration::from_millis(200);
        std::thread::sleep(reclaim_at.saturating_duration_since(Instant::now()));
        backend.run_pending_tasks();
        assert_eq!(backend.entry_count(), 0, "entries left in the store");
        report("memory", started, written);
    }
}

mod redis {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_million_short_lived_tagged_entries_leave_no_residue() {
        let _serial = SERIAL.lock().await;
        let started = Instant::now();
        let url = servers::redis_url();
        let backend = RedisBackend::builder()
            .url(&url)
            .prefix(servers::unique_namespace("tags-million"))
            // 32 pipelines of 500 commands share one connection: the last command of a
            // pipeline waits behind thousands of others, longer than the default timeout.
            .command_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
        let cache = CacheService::builder(backend.clone())
            .tag_ttl(TAG_TTL)
            .build();
        write_million(&cache).await;
        let written = Instant::now();
        assert_last_batch_is_live(&backend).await;
        assert!(
            !backend.keys("*", 10).await.unwrap().is_empty(),
            "the scan sees the namespace's keys while they live"
        );

        // The server's clock: a real wait past the last entry's TTL and the last version key's.
        tokio::time::sleep(TAG_TTL + Duration::from_millis(200)).await;
        let left = backend.keys("*", usize::MAX).await.unwrap();
        assert!(
            left.is_empty(),
            "{} keys left in the namespace, such as {:?}",
            left.len(),
            &left[..left.len().min(5)]
        );
        report("redis", started, written);
    }
}

mod memcached {
    use super::*;

    /// Forwards to a backend and records every key written through it.
    #[derive(Debug)]
    struct Recording {
        inner: SharedBackend,
        written: Mutex<HashSet<String>>,
    }

    impl Recording {
        fn record<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
            let mut written = self.written.lock().unwrap();
            for k in keys {
                if !written.contains(k) {
                    written.insert(k.to_owned());
                }
            }
        }
    }

    #[async_trait]
    impl CacheBackend for Recording {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, key: &str) -> Result<Option<Bytes>> {
            self.inner.get(key).await
        }
        async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
            self.record([key]);
            self.inner.set(key, value, ttl).await
        }
        async fn set_if_absent(
            &self,
            key: &str,
            value: Bytes,
            ttl: Option<Duration>,
        ) -> Result<bool> {
            self.record([key]);
            self.inner.set_if_absent(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<bool> {
            self.inner.delete(key).await
        }
        async fn exists(&self, key: &str) -> Result<bool> {
            self.inner.exists(key).await
        }
        async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
            self.inner.get_many(keys).await
        }
        async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
            self.record(items.iter().map(|(k, _)| *k));
            self.inner.set_many(items, ttl).await
        }
        async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
            self.inner.delete_many(keys).await
        }
        async fn delete_pattern(&self, glob: &str) -> Result<u64> {
            self.inner.delete_pattern(glob).await
        }
        async fn clear(&self) -> Result<()> {
            self.inner.clear().await
        }
        async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
            self.inner.health_check(timeout).await
        }
        async fn set_entry(
            &self,
            key: &str,
            value: CacheValue,
            ttl: Option<Duration>,
        ) -> Result<()> {
            self.record([key]);
            self.inner.set_entry(key, value, ttl).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_million_short_lived_tagged_entries_leave_no_residue() {
        let _serial = SERIAL.lock().await;
        let started = Instant::now();
        let list = servers::memcached_servers();
        let backend = MemcachedBackend::builder()
            .servers(list.clone())
            .prefix(servers::unique_namespace("tags-million"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("memcached at {list:?}: {e}; {}", servers::HOW_TO_START));
        let recording = Arc::new(Recording {
            inner: Arc::new(backend),
            written: Mutex::new(HashSet::with_capacity(ENTRIES + TAGS)),
        });
        let cache = CacheService::builder(recording.clone() as SharedBackend)
            .tag_ttl(TAG_TTL)
            .build();
        write_million(&cache).await;
        let written = Instant::now();
        assert_last_batch_is_live(recording.as_ref()).await;

        // Exactly the entries and one version key per tag: no index, no other key.
        let recorded = std::mem::take(&mut *recording.written.lock().unwrap());
        let expected: HashSet<String> = (0..ENTRIES)
            .map(entry_key)
            .chain((0..TAGS).map(|b| version_key(&tag_of_batch(b))))
            .collect();
        assert_eq!(recorded.len(), expected.len(), "keys written");
        assert!(
            recorded == expected,
            "the keys written are the entries and version keys"
        );

        // The server's clock: a real wait past the last entry's TTL and the last version key's
        // (whole seconds on memcached).
        tokio::time::sleep(TAG_TTL + Duration::from_millis(1100)).await;
        let recorded: Vec<String> = recorded.into_iter().collect();
        let mut left = 0;
        for chunk in recorded.chunks(10_000) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            left += recording
                .get_many(&refs)
                .await
                .unwrap()
                .iter()
                .flatten()
                .count();
        }
        assert_eq!(left, 0, "keys still on the servers");
        report("memcached", started, written);
    }
}
