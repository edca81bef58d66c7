//! `TieredBackend` over an in-process L2, on tokio's paused clock: where reads and writes go,
//! how long L1 keeps a copy, and that a read racing a change never puts an old value back.

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, ErrorKind, Expiry, HealthCheckResult,
    Operation, Result,
};
use lexicache_memory::MemoryBackend;
use lexicache_service::CacheService;
use lexicache_tiered::TieredBackend;
use tokio::sync::{Notify, Semaphore};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

async fn tiered(l2: &MemoryBackend, l1_ttl: Duration) -> TieredBackend {
    TieredBackend::builder(MemoryBackend::new(), Arc::new(l2.clone()))
        .l1_ttl(l1_ttl)
        .build()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_write_goes_to_l2_and_l1() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    t.set("k", b("v"), None).await.unwrap();
    assert_eq!(l2.get("k").await.unwrap(), Some(b("v")));
    assert_eq!(t.l1().get("k").await.unwrap(), Some(b("v")));
}

#[tokio::test(start_paused = true)]
async fn an_l2_hit_fills_l1_and_the_next_read_is_served_from_l1() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    l2.set("k", b("v"), None).await.unwrap();
    assert_eq!(t.get("k").await.unwrap(), Some(b("v")));
    assert_eq!(t.l1().get("k").await.unwrap(), Some(b("v")));
    // Changed behind the tiered backend's back (no invalidation channel): L1 still answers.
    l2.set("k", b("other"), None).await.unwrap();
    assert_eq!(t.get("k").await.unwrap(), Some(b("v")));
}

#[tokio::test(start_paused = true)]
async fn a_miss_in_both_levels_is_a_miss_and_fills_nothing() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    assert_eq!(t.get("absent").await.unwrap(), None);
    assert_eq!(t.l1().entry_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_l1_copy_never_outlives_the_ttl_it_was_written_with() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    t.set("k", b("v"), Some(Duration::from_secs(2)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(2001)).await;
    assert_eq!(t.l1().get("k").await.unwrap(), None);
    assert_eq!(t.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn an_l1_copy_of_an_l2_entry_never_outlives_what_the_entry_had_left() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    l2.set("k", b("v"), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(t.get("k").await.unwrap(), Some(b("v")));
    match t.l1().get_with_ttl("k").await.unwrap() {
        Some((_, Expiry::In(left))) => assert!(left <= Duration::from_secs(3), "{left:?}"),
        other => panic!("expected an L1 copy with a TTL, got {other:?}"),
    }
    tokio::time::advance(Duration::from_millis(3001)).await;
    assert_eq!(t.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn the_l1_ttl_is_configured_separately_and_caps_longer_ttls() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(1)).await;
    t.set("k", b("v"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    t.set("forever", b("v"), None).await.unwrap();
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert_eq!(t.l1().get("k").await.unwrap(), None);
    assert_eq!(t.l1().get("forever").await.unwrap(), None);
    // L2 still has them, and the next read copies them again.
    assert_eq!(t.get("k").await.unwrap(), Some(b("v")));
    assert_eq!(t.l1().get("k").await.unwrap(), Some(b("v")));
}

#[tokio::test(start_paused = true)]
async fn deletes_batches_patterns_and_clear_reach_both_levels() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    t.set_many(
        &[
            ("a:1", b("1")),
            ("a:2", b("2")),
            ("b:1", b("3")),
            ("c", b("4")),
        ],
        None,
    )
    .await
    .unwrap();
    assert!(t.delete("c").await.unwrap());
    assert_eq!(t.l1().get("c").await.unwrap(), None);
    assert_eq!(l2.get("c").await.unwrap(), None);

    assert_eq!(t.delete_pattern("a:*").await.unwrap(), 2);
    for k in ["a:1", "a:2"] {
        assert_eq!(t.l1().get(k).await.unwrap(), None, "{k}");
        assert_eq!(l2.get(k).await.unwrap(), None, "{k}");
    }
    assert_eq!(t.l1().get("b:1").await.unwrap(), Some(b("3")));

    assert_eq!(t.delete_many(&["b:1", "nope"]).await.unwrap(), 1);
    assert_eq!(t.l1().get("b:1").await.unwrap(), None);

    t.set("z", b("z"), None).await.unwrap();
    t.clear().await.unwrap();
    assert_eq!(t.l1().get("z").await.unwrap(), None);
    assert_eq!(l2.get("z").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn get_many_serves_l1_hits_and_fills_the_rest_from_l2_in_order() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    t.set("in-l1", b("1"), None).await.unwrap();
    l2.set("in-l2", b("2"), None).await.unwrap();
    let got = t
        .get_many(&["in-l2", "absent", "in-l1", "in-l2"])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(b("2")), None, Some(b("1")), Some(b("2"))]);
    assert_eq!(t.l1().get("in-l2").await.unwrap(), Some(b("2")));
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_write_removes_the_key_from_both_levels() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    t.set("k", b("v"), None).await.unwrap();
    t.set("k", b("gone"), Some(Duration::ZERO)).await.unwrap();
    assert_eq!(t.l1().get("k").await.unwrap(), None);
    assert_eq!(t.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_typed_service_over_tiered_keeps_decoded_values_in_l1() {
    let l2 = MemoryBackend::new();
    let t = tiered(&l2, Duration::from_secs(30)).await;
    let service = CacheService::builder(t.clone()).build();
    assert!(service.set("user", &vec![1u32, 2, 3], None).await);
    let entry = t.l1().get_entry("user").await.unwrap().expect("in L1");
    assert!(entry.object().is_some(), "the decoded value is kept in L1");
    assert_eq!(service.get::<Vec<u32>>("user").await, Some(vec![1, 2, 3]));
    // Another process's view of L2 decodes it too.
    let other = CacheService::builder(l2.clone()).build();
    assert_eq!(other.get::<Vec<u32>>("user").await, Some(vec![1, 2, 3]));
}

#[tokio::test(start_paused = true)]
async fn a_typed_hit_on_a_copy_filled_from_l2_decodes_once_then_keeps_the_object() {
    let l2 = MemoryBackend::new();
    // Written by "another process": L2 has bytes only.
    let writer = CacheService::builder(l2.clone()).build();
    assert!(
        writer
            .set("user", &vec![4u32, 5], Some(Duration::from_secs(60)))
            .await
    );
    let t = tiered(&l2, Duration::from_secs(30)).await;
    let service = CacheService::builder(t.clone()).build();
    assert_eq!(service.get::<Vec<u32>>("user").await, Some(vec![4, 5]));
    let copy = t
        .l1()
        .get_entry("user")
        .await
        .unwrap()
        .expect("filled into L1");
    assert_eq!(
        copy.object_as::<Vec<u32>>().as_deref(),
        Some(&vec![4, 5]),
        "the first typed hit left its decoded value in L1"
    );
    // Only L1 got it: L2 still holds bytes, unchanged.
    assert_eq!(l2.get("user").await.unwrap().as_ref(), Some(copy.bytes()));
    assert_eq!(service.get::<Vec<u32>>("user").await, Some(vec![4, 5]));
}

#[tokio::test(start_paused = true)]
async fn a_zero_l1_ttl_is_a_config_error() {
    let err = TieredBackend::builder(MemoryBackend::new(), Arc::new(MemoryBackend::new()))
        .l1_ttl(Duration::ZERO)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("l1_ttl"), "{err}");
}

/// An L2 over a memory backend whose reads can be held at the server, as a slow network would,
/// and whose writes can be made to fail.
#[derive(Debug, Clone)]
struct Held {
    inner: MemoryBackend,
    hold: Arc<Semaphore>,
    reached: Arc<Notify>,
    fail_writes: Arc<std::sync::atomic::AtomicBool>,
}

impl Held {
    fn new(inner: MemoryBackend) -> Self {
        Self {
            inner,
            hold: Arc::new(Semaphore::new(1000)),
            reached: Arc::new(Notify::new()),
            fail_writes: Arc::default(),
        }
    }

    fn failing(&self) -> Result<()> {
        if self.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Timeout, "held").with_operation(Operation::Set));
        }
        Ok(())
    }
}

#[async_trait]
impl CacheBackend for Held {
    fn name(&self) -> &str {
        "held"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_with_ttl(key).await?.map(|(v, _)| v))
    }
    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        // The value is read now; the answer travels back once the hold is released.
        let read = self.inner.get_with_ttl(key).await;
        self.reached.notify_one();
        let _permit = self.hold.acquire().await.unwrap();
        read
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.inner.set(key, value, ttl).await?;
        self.failing()
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
}

/// A tiered backend whose L2 holds `k = "old"`, and what a read of `k` answered when it read
/// "old" from L2 and its answer was held back until `change` had run and returned.
async fn read_held_across<F, Fut>(change: F) -> (TieredBackend, Option<Bytes>)
where
    F: FnOnce(TieredBackend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let held = Held::new(MemoryBackend::new());
    held.inner.set("k", b("old"), None).await.unwrap();
    let t = TieredBackend::builder(MemoryBackend::new(), Arc::new(held.clone()))
        .build()
        .await
        .unwrap();
    // Hold every read: the reader below reads "old", and its answer is delayed.
    let permits = held.hold.available_permits();
    let all = held
        .hold
        .acquire_many(u32::try_from(permits).unwrap())
        .await
        .unwrap();
    let reader = tokio::spawn({
        let t = t.clone();
        async move { t.get("k").await.unwrap() }
    });
    held.reached.notified().await;
    change(t.clone()).await;
    drop(all);
    (t, reader.await.unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_read_that_raced_a_write_does_not_put_the_old_value_back_into_l1() {
    let (t, read) = read_held_across(|t| async move {
        t.set("k", b("new"), None).await.unwrap();
    })
    .await;
    assert_eq!(read, Some(b("old")), "the racing read answers what it read");
    assert_eq!(
        t.l1().get("k").await.unwrap(),
        Some(b("new")),
        "but its old value did not replace the write's copy in L1"
    );
    assert_eq!(t.get("k").await.unwrap(), Some(b("new")));
}

#[tokio::test(start_paused = true)]
async fn a_read_that_raced_a_delete_leaves_l1_empty() {
    let (t, read) = read_held_across(|t| async move {
        assert!(t.delete("k").await.unwrap());
    })
    .await;
    assert_eq!(read, Some(b("old")));
    assert_eq!(t.l1().get("k").await.unwrap(), None);
    assert_eq!(t.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_drops_the_l1_copy_and_returns_the_error() {
    let held = Held::new(MemoryBackend::new());
    let t = TieredBackend::builder(MemoryBackend::new(), Arc::new(held.clone()))
        .build()
        .await
        .unwrap();
    t.set("k", b("old"), None).await.unwrap();
    held.fail_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The write timed out, yet landed in L2: L1 must not keep "old".
    let err = t.set("k", b("new"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(t.l1().get("k").await.unwrap(), None);
    assert_eq!(t.get("k").await.unwrap(), Some(b("new")));
}
