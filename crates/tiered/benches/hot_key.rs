//! Hot-key reads: a [`TieredBackend`] whose L1 holds the key against a bare [`MemoryBackend`],
//! side by side in one run.
//!
//! Rows of the `hot_key` group, each reading one hot key over and over:
//!
//! - `memory/get`: `MemoryBackend::get` through `Arc<dyn CacheBackend>`, the key written
//!   without a TTL;
//! - `memory_ttl/get`: the same, the key written with a TTL, as every tiered L1 copy is (moka
//!   reads the clock to check a TTL'd entry, so this is the like-for-like baseline);
//! - `tiered_local/get`: a `TieredBackend` over a memory L2, no invalidation channel;
//! - `tiered_redis/get`: a `TieredBackend` over the local Redis (`LEXICACHE_TEST_REDIS_URL`)
//!   with invalidation over `RedisPubSub`, once it serves L1;
//! - `*/service_get`: the same four behind a default `CacheService`, typed `get::<String>`.
//!
//! The reads run on the bench thread; the tiered backend's subscriber and heartbeat tasks run
//! on one runtime worker beside it, as they would in an application. After the criterion rows,
//! a paired measurement alternates each tiered row with each memory row and prints the median
//! throughput ratio (tiered ÷ memory), which holds up where separate rows drift on a shared
//! machine. Run with
//! `cargo bench -p lexicache-tiered --bench hot_key -- --warm-up-time 1 --measurement-time 3`
//! (`LEXICACHE_BENCH_PAIRED_ONLY=1` runs the paired measurement alone).

// `criterion_group!` generates an undocumented public function; the paired measurement
// prints its figures.
#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use lexicache_core::{Bytes, CacheBackend, SharedBackend};
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use lexicache_testkit::bench;
use lexicache_tiered::{TieredBackend, TieredStats};
use tokio::runtime::Runtime;

/// The key every raw row reads.
const RAW_KEY: &str = "hot:raw";
/// The key every service row reads (written through the service, so it decodes).
const SERVICE_KEY: &str = "hot:service";

/// The TTL of the `memory_ttl` rows' hot keys. A tiered L1 copy always carries a TTL (at most
/// the L1 TTL), and moka checks a TTL'd entry's expiry on every read (a clock read), so
/// `memory_ttl` is the like-for-like baseline; `memory` (no TTL) is the fastest case there is.
const HOT_TTL: Duration = Duration::from_secs(600);

/// Reads per alternation of the paired measurement.
const PAIR_OPS: u64 = 200_000;
/// Alternations per pair.
const PAIR_ROUNDS: usize = 21;

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Memory, the hot key written without a TTL.
    Memory,
    /// Memory, the hot key written with [`HOT_TTL`].
    MemoryTtl,
    TieredLocal,
    TieredRedis,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup::Memory,
        Setup::MemoryTtl,
        Setup::TieredLocal,
        Setup::TieredRedis,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::Memory => "memory",
            Setup::MemoryTtl => "memory_ttl",
            Setup::TieredLocal => "tiered_local",
            Setup::TieredRedis => "tiered_redis",
        }
    }
}

/// What is read: the raw backend, or the typed service over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Backend,
    Service,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Backend => "get",
            Via::Service => "service_get",
        }
    }
}

/// The backends and services every row reads from, warm.
struct Fixture {
    backends: [SharedBackend; 4],
    services: [CacheService; 4],
    /// The Redis-backed tiered backend, to check it still serves L1.
    redis_tiered: TieredBackend,
    /// Its counters once it served L1 (the subscription's first `Active` counts one full
    /// clear).
    baseline: TieredStats,
    /// The tiered backend's L2, to remove the bench keys at the end.
    redis: RedisBackend,
}

impl Fixture {
    fn index(setup: Setup) -> usize {
        Setup::ALL
            .iter()
            .position(|s| *s == setup)
            .expect("a known setup")
    }

    /// Reads the hot key `ops` times through `setup` and `via`; returns the wall time.
    async fn run(&self, setup: Setup, via: Via, ops: u64) -> Duration {
        let i = Self::index(setup);
        let started = Instant::now();
        match via {
            Via::Backend => {
                let backend = &*self.backends[i];
                for _ in 0..ops {
                    black_box(backend.get(black_box(RAW_KEY)).await.expect("a read"))
                        .expect("a hit");
                }
            }
            Via::Service => {
                let service = &self.services[i];
                for _ in 0..ops {
                    black_box(service.get::<String>(black_box(SERVICE_KEY)).await).expect("a hit");
                }
            }
        }
        started.elapsed()
    }

    /// Panics unless the Redis-backed tiered backend still serves L1: a row measured while it
    /// bypassed L1 would be a Redis round trip, not an L1 hit.
    fn assert_serving(&self) {
        let stats = self.redis_tiered.stats();
        assert!(
            stats.serving_l1
                && stats.losses == self.baseline.losses
                && stats.full_clears == self.baseline.full_clears,
            "the Redis-backed tiered backend stopped serving L1 during the bench: {stats:?}"
        );
    }
}

/// About the size of a small cached record.
fn hot_value() -> String {
    "a hot value of about one hundred bytes, the size of a small record a web service caches"
        .to_owned()
}

/// The runtime and the warm fixture.
fn setup() -> (Runtime, Arc<Fixture>) {
    let url = lexicache_testkit::servers::redis_url();
    // One worker runs the tiered backend's tasks and the Redis client; the reads run on the
    // bench thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    let fixture = rt.block_on(async {
        let memory = MemoryBackend::new();
        let memory_ttl = MemoryBackend::new();
        let local = TieredBackend::builder(
            MemoryBackend::new(),
            Arc::new(MemoryBackend::new()) as SharedBackend,
        )
        .build()
        .await
        .expect("a tiered backend over memory");
        let prefix = lexicache_testkit::servers::unique_namespace("bench-hot-key");
        let redis = RedisBackend::builder()
            .url(&url)
            .prefix(&prefix)
            .connect()
            .await
            .expect("connect to the local redis; run `cargo xtask services up`");
        let redis_tiered = TieredBackend::builder(
            MemoryBackend::new(),
            Arc::new(redis.clone()) as SharedBackend,
        )
        .invalidation(Arc::new(redis.pubsub()))
        .build()
        .await
        .expect("a tiered backend over redis");
        assert!(
            redis_tiered
                .wait_until_serving(Duration::from_secs(5))
                .await,
            "the tiered backend over redis did not serve L1 within 5 s: {:?}",
            redis_tiered.stats()
        );

        let backends: [SharedBackend; 4] = [
            Arc::new(memory.clone()),
            Arc::new(memory_ttl.clone()),
            Arc::new(local.clone()),
            Arc::new(redis_tiered.clone()),
        ];
        let services = [
            CacheService::builder(memory).build(),
            CacheService::builder(memory_ttl).build(),
            CacheService::builder(local).build(),
            CacheService::builder(redis_tiered.clone()).build(),
        ];
        let value = hot_value();
        for ((backend, service), setup) in backends.iter().zip(&services).zip(Setup::ALL) {
            // Only `memory` goes without a TTL. The tiered backends' L1 copies carry the L1 TTL
            // (30 s) whatever the write says; their TTL keeps a run that panics before its
            // cleanup from leaving keys on the shared Redis for good.
            let ttl = (setup != Setup::Memory).then_some(HOT_TTL);
            backend
                .set(RAW_KEY, Bytes::from(value.clone().into_bytes()), ttl)
                .await
                .expect("write the raw hot key");
            assert!(service.set(SERVICE_KEY, &value, ttl).await);
            assert_eq!(
                backend.get(RAW_KEY).await.expect("a read").as_deref(),
                Some(value.as_bytes())
            );
            assert_eq!(
                service.get::<String>(SERVICE_KEY).await,
                Some(value.clone())
            );
        }
        // Both keys are in the Redis-backed backend's L1, so its rows measure L1 hits.
        assert!(redis_tiered
            .l1()
            .get(RAW_KEY)
            .await
            .expect("an L1 read")
            .is_some());
        assert!(redis_tiered
            .l1()
            .get(SERVICE_KEY)
            .await
            .expect("an L1 read")
            .is_some());
        let baseline = redis_tiered.stats();
        Arc::new(Fixture {
            backends,
            services,
            redis_tiered,
            baseline,
            redis,
        })
    });
    (rt, fixture)
}

fn cleanup(rt: &Runtime, fixture: &Fixture) {
    rt.block_on(async {
        fixture.redis.clear().await.expect("remove the bench keys");
    });
}

fn hot_key(c: &mut Criterion) {
    let (rt, fixture) = setup();
    let mut group = c.benchmark_group("hot_key");
    group.throughput(Throughput::Elements(1));
    for via in [Via::Backend, Via::Service] {
        for setup in Setup::ALL {
            group.bench_function(format!("{}/{}", setup.name(), via.name()), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let fixture = fixture.clone();
                    async move { fixture.run(setup, via, iters).await }
                });
            });
            fixture.assert_serving();
        }
    }
    group.finish();
    cleanup(&rt, &fixture);
}

/// Alternates each tiered row with each memory row and prints the median throughput ratio
/// (tiered ÷ memory; the target is at least 0.8).
fn paired() {
    let (rt, fixture) = setup();
    for via in [Via::Backend, Via::Service] {
        for memory in [Setup::MemoryTtl, Setup::Memory] {
            for tiered in [Setup::TieredLocal, Setup::TieredRedis] {
                let ratio = rt.block_on(bench::paired(
                    PAIR_ROUNDS,
                    PAIR_OPS,
                    |ops| fixture.run(memory, via, ops),
                    |ops| fixture.run(tiered, via, ops),
                ));
                fixture.assert_serving();
                println!(
                    "paired {}/{} vs {}/{}: {ratio}",
                    tiered.name(),
                    via.name(),
                    memory.name(),
                    via.name()
                );
            }
        }
    }
    println!(
        "redis-backed tiered stats: {:?}",
        fixture.redis_tiered.stats()
    );
    cleanup(&rt, &fixture);
}

criterion_group!(benches, hot_key);

fn main() {
    // What `criterion_main!` expands to, plus the paired measurement.
    if std::env::var_os("LEXICACHE_BENCH_PAIRED_ONLY").is_none() {
        benches();
    }
    paired();
    Criterion::default().configure_from_args().final_summary();
}
