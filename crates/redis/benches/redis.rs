//! Throughput against the local Redis (`LEXICACHE_TEST_REDIS_URL`, 127.0.0.1:6390) at 64
//! concurrent tasks: `CacheService` over `RedisBackend` against raw fred on a client with the
//! same settings, in the same run.
//!
//! Each measurement spawns 64 tasks on a multi-thread runtime that together do the iteration
//! count of GETs (or SETs) of a 116-byte (postcard) or 177-byte (JSON) record over 10 000 warm keys, so the figures are
//! elements per second of the whole group of tasks. Run with
//! `cargo bench -p lexicache-redis --bench redis -- --warm-up-time 1 --measurement-time 3`;
//! docs/benchmarks.md holds the figures.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lexicache_core::{Bytes, Error, ErrorKind, Operation, Result, Serializer};
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::KeysInterface;
use lexicache_redis::fred::types::Value;
use lexicache_redis::RedisBackend;
use lexicache_service::CacheService;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

const KEYS: usize = 10_000;
const TASKS: u64 = 64;
const PREFIX: &str = "lexicache-bench:";
/// How many times each row is measured, interleaved with the others.
const ROUNDS: usize = 3;

/// A tiny postcard codec for the bench; the real one lives in lexicache-serde.
#[derive(Debug, Clone, Copy)]
struct Postcard;

impl Serializer for Postcard {
    fn name(&self) -> &str {
        "postcard"
    }

    fn encode<T: Serialize + ?Sized>(&self, _key: &str, value: &T) -> Result<Bytes> {
        postcard::to_allocvec(value).map(Bytes::from).map_err(|e| {
            Error::new(ErrorKind::Serialization, "postcard")
                .with_operation(Operation::Serialize)
                .with_source(e)
        })
    }

    fn decode<T: DeserializeOwned>(&self, _key: &str, bytes: &[u8]) -> Result<T> {
        postcard::from_bytes(bytes).map_err(|e| {
            Error::new(ErrorKind::Serialization, "postcard")
                .with_operation(Operation::Deserialize)
                .with_source(e)
        })
    }
}

/// About the size of a user record a web service caches (~150 bytes encoded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    active: bool,
    roles: Vec<String>,
    bio: String,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.com"),
        active: id % 2 == 0,
        roles: vec!["reader".into(), "writer".into()],
        bio: "likes caches that degrade to defaults instead of hanging on a dead server".into(),
    }
}

/// Runs `iters` operations spread over [`TASKS`] spawned tasks and returns the wall time.
fn run<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    rt.block_on(async move {
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let n = iters / TASKS + u64::from(t < iters % TASKS);
                let op = op.clone();
                tokio::spawn(async move {
                    let mut k = (t as usize * 157) % KEYS;
                    for _ in 0..n {
                        op(k).await;
                        k = if k + 1 == KEYS { 0 } else { k + 1 };
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a bench task");
        }
        started.elapsed()
    })
}

fn redis(c: &mut Criterion) {
    let url = std::env::var("LEXICACHE_TEST_REDIS_URL").expect(
        "LEXICACHE_TEST_REDIS_URL is not set: run `cargo xtask services up` and export its variables",
    );
    assert!(
        url.starts_with("redis://127.0.0.1:"),
        "benches only talk to 127.0.0.1"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime");

    let names: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("user:{i}")).collect());
    let full: Arc<Vec<String>> = Arc::new(names.iter().map(|n| format!("{PREFIX}{n}")).collect());
    let users: Arc<Vec<User>> = Arc::new((0..KEYS as u64).map(user).collect());
    let encoded: Arc<Vec<Bytes>> = Arc::new(
        users
            .iter()
            .map(|u| Postcard.encode("", u).expect("encode"))
            .collect(),
    );

    let (postcard, json, raw_backend): (CacheService<Postcard>, CacheService, RedisBackend) = rt
        .block_on(async {
            let connect = || async {
                RedisBackend::builder()
                    .url(&url)
                    .prefix(PREFIX)
                    // A busy two-core machine can stall a task past the 500 ms default; the bench
                    // measures throughput, so a stall must not abort it.
                    .command_timeout(Duration::from_secs(10))
                    .connect()
                    .await
                    .expect("connect to the local redis; run `cargo xtask services up`")
            };
            let backend = connect().await;
            // A second backend with the same settings lends the raw client: same fred settings,
            // its own connection. It is kept alive: dropping the last handle closes the client.
            let raw = connect().await;
            let postcard = CacheService::builder(backend.clone())
                .serializer(Postcard)
                .build();
            let json = CacheService::builder(backend.with_prefix(format!("{PREFIX}json:"))).build();
            for (n, u) in names.iter().zip(users.iter()) {
                assert!(postcard.set(n, u, None).await);
                assert!(json.set(n, u, None).await);
            }
            assert_eq!(postcard.get::<User>("user:7").await, Some(user(7)));
            assert_eq!(json.get::<User>("user:7").await, Some(user(7)));
            (postcard, json, raw)
        });
    let raw: Client = raw_backend.client().clone();
    let json_len = serde_json::to_vec(&users[7]).expect("json").len();
    // The value size: a 100-200 byte record (116 bytes postcard, 177 bytes JSON).
    assert!((100..=200).contains(&encoded[7].len()) && (100..=200).contains(&json_len));
    let postcard = Arc::new(postcard);
    let json = Arc::new(json);

    // Every row runs once per round, in turn, so the drift of a shared machine hits each
    // service row and its raw row alike; compare rows within a round.
    let mut group = c.benchmark_group("redis_64_tasks");
    group.throughput(Throughput::Elements(1));
    for round in 1..=ROUNDS {
        group.bench_function(format!("a_raw_fred_get/{round}"), |b| {
            b.iter_custom(|iters| {
                let (raw, full) = (raw.clone(), full.clone());
                run(&rt, iters, move |k| {
                    let (raw, full) = (raw.clone(), full.clone());
                    async move {
                        let v: Option<Bytes> = raw.get(full[k].as_str()).await.expect("GET");
                        black_box(v);
                    }
                })
            });
        });
        group.bench_function(format!("b_service_get_postcard/{round}"), |b| {
            b.iter_custom(|iters| {
                let (svc, names) = (postcard.clone(), names.clone());
                run(&rt, iters, move |k| {
                    let (svc, names) = (svc.clone(), names.clone());
                    async move {
                        black_box(svc.get::<User>(&names[k]).await.expect("a hit"));
                    }
                })
            });
        });
        group.bench_function(format!("c_service_get_json/{round}"), |b| {
            b.iter_custom(|iters| {
                let (svc, names) = (json.clone(), names.clone());
                run(&rt, iters, move |k| {
                    let (svc, names) = (svc.clone(), names.clone());
                    async move {
                        black_box(svc.get::<User>(&names[k]).await.expect("a hit"));
                    }
                })
            });
        });
        group.bench_function(format!("d_raw_fred_set/{round}"), |b| {
            b.iter_custom(|iters| {
                let (raw, full, encoded) = (raw.clone(), full.clone(), encoded.clone());
                run(&rt, iters, move |k| {
                    let (raw, full, encoded) = (raw.clone(), full.clone(), encoded.clone());
                    async move {
                        let _: () = raw
                            .set(
                                full[k].as_str(),
                                Value::Bytes(encoded[k].clone()),
                                None,
                                None,
                                false,
                            )
                            .await
                            .expect("SET");
                    }
                })
            });
        });
        group.bench_function(format!("e_service_set_postcard/{round}"), |b| {
            b.iter_custom(|iters| {
                let (svc, names, users) = (postcard.clone(), names.clone(), users.clone());
                run(&rt, iters, move |k| {
                    let (svc, names, users) = (svc.clone(), names.clone(), users.clone());
                    async move {
                        assert!(svc.set(&names[k], &users[k], None).await);
                    }
                })
            });
        });
    }
    group.finish();

    rt.block_on(async {
        postcard.clear().await.expect("clear the bench keys");
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = redis
}
criterion_main!(benches);
