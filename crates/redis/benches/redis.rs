//! Throughput against the local Redis (`LEXICACHE_TEST_REDIS_URL`, 127.0.0.1:6390) at 64
//! concurrent tasks: `CacheService` over `RedisBackend` against raw fred on a client with the
//! same settings, in the same run.
//!
//! Each measurement spawns 64 tasks on a multi-thread runtime that together do the iteration
//! count of GETs (or SETs) of a 116-byte (postcard) or 177-byte (JSON) record over 10 000 warm keys, so the figures are
//! elements per second of the whole group of tasks. Run with
//! `cargo bench -p lexicache-redis --bench redis -- --warm-up-time 1 --measurement-time 3`;
//! docs/benchmarks.md holds the figures.

// `criterion_group!` generates an undocumented public function; the paired measurement
// prints its figures.
#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use lexicache_core::{Bytes, Serializer};
// lexicache-serde's enveloped postcard, as applications use it. A bare codec would break the
// `Serializer` contract: its output could start with 0xC1, the first byte of the service's
// frames (user 9025 encodes as C1 46 ..., the early-refresh frame's magic).
use lexicache_redis::fred::clients::Client;
use lexicache_redis::fred::interfaces::KeysInterface;
use lexicache_redis::fred::types::Value;
use lexicache_redis::RedisBackend;
use lexicache_serde::Postcard;
use lexicache_service::CacheService;
use lexicache_testkit::bench;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

const KEYS: usize = 10_000;
const TASKS: u64 = 64;
const PREFIX: &str = "lexicache-bench:";
/// How many times each row is measured, interleaved with the others.
const ROUNDS: usize = 3;

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

/// What every row needs: the clients, the keys and the values.
struct Fixture {
    raw: Client,
    /// The full keys the raw rows use (the same keys the postcard service reads).
    full: Vec<String>,
    names: Vec<String>,
    users: Vec<User>,
    encoded: Vec<Bytes>,
    postcard: CacheService<Postcard>,
    json: CacheService,
    /// Kept alive: dropping the last handle of a backend closes its client.
    _raw_backend: RedisBackend,
}

/// One measured operation.
#[derive(Debug, Clone, Copy)]
enum Row {
    RawGet,
    ServiceGetPostcard,
    ServiceGetJson,
    RawSet,
    ServiceSetPostcard,
}

impl Row {
    const ALL: [Row; 5] = [
        Row::RawGet,
        Row::ServiceGetPostcard,
        Row::ServiceGetJson,
        Row::RawSet,
        Row::ServiceSetPostcard,
    ];

    fn name(self) -> &'static str {
        match self {
            Row::RawGet => "a_raw_fred_get",
            Row::ServiceGetPostcard => "b_service_get_postcard",
            Row::ServiceGetJson => "c_service_get_json",
            Row::RawSet => "d_raw_fred_set",
            Row::ServiceSetPostcard => "e_service_set_postcard",
        }
    }

    async fn run(self, f: &Fixture, k: usize) {
        match self {
            Row::RawGet => {
                let v: Option<Bytes> = f.raw.get(f.full[k].as_str()).await.expect("GET");
                black_box(v).expect("a hit");
            }
            Row::ServiceGetPostcard => {
                let hit = f.postcard.try_get::<User>(&f.names[k]).await;
                black_box(hit.expect("a postcard GET without error")).expect("a hit");
            }
            Row::ServiceGetJson => {
                let hit = f.json.try_get::<User>(&f.names[k]).await;
                black_box(hit.expect("a JSON GET without error")).expect("a hit");
            }
            Row::RawSet => {
                let _: () = f
                    .raw
                    .set(
                        f.full[k].as_str(),
                        Value::Bytes(f.encoded[k].clone()),
                        None,
                        None,
                        false,
                    )
                    .await
                    .expect("SET");
            }
            Row::ServiceSetPostcard => {
                assert!(f.postcard.set(&f.names[k], &f.users[k], None).await);
            }
        }
    }
}

/// Runs `iters` operations of `row` spread over [`TASKS`] spawned tasks; returns the wall time.
async fn fan_out(f: &Arc<Fixture>, iters: u64, row: Row) -> Duration {
    let f = f.clone();
    bench::fan_out(TASKS, iters, move |t, j| {
        let f = f.clone();
        let k = (t as usize * 157 + j as usize) % KEYS;
        async move { row.run(&f, k).await }
    })
    .await
}

/// The runtime and the warm fixture every measurement uses.
fn setup() -> (Runtime, Arc<Fixture>) {
    let url = lexicache_testkit::servers::redis_url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    let fixture = rt.block_on(async {
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
        // its own connection.
        let raw_backend = connect().await;
        let postcard = CacheService::builder(backend.clone())
            .serializer(Postcard)
            .build();
        let json = CacheService::builder(backend.with_prefix(format!("{PREFIX}json:"))).build();
        let names: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
        let users: Vec<User> = (0..KEYS as u64).map(user).collect();
        for (n, u) in names.iter().zip(&users) {
            assert!(postcard.set(n, u, None).await);
            assert!(json.set(n, u, None).await);
        }
        assert_eq!(postcard.get::<User>("user:7").await, Some(user(7)));
        assert_eq!(json.get::<User>("user:7").await, Some(user(7)));
        let encoded: Vec<Bytes> = users
            .iter()
            .map(|u| Postcard.encode("", u).expect("encode"))
            .collect();
        let json_len = json_len(&users[7]);
        // The value size: a 100-200 byte record.
        assert!((100..=200).contains(&encoded[7].len()) && (100..=200).contains(&json_len));
        Arc::new(Fixture {
            raw: raw_backend.client().clone(),
            full: names.iter().map(|n| format!("{PREFIX}{n}")).collect(),
            names,
            users,
            encoded,
            postcard,
            json,
            _raw_backend: raw_backend,
        })
    });
    (rt, fixture)
}

fn json_len(user: &User) -> usize {
    serde_json::to_vec(user).expect("json").len()
}

fn redis(c: &mut Criterion) {
    let (rt, fixture) = setup();
    // Every row runs once per round, in turn, so the drift of a shared machine hits each
    // service row and its raw row alike; compare rows within a round.
    let mut group = c.benchmark_group("redis_64_tasks");
    group.throughput(Throughput::Elements(1));
    for round in 1..=ROUNDS {
        for row in Row::ALL {
            group.bench_function(format!("{}/{round}", row.name()), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let fixture = fixture.clone();
                    async move { fan_out(&fixture, iters, row).await }
                });
            });
        }
    }
    group.finish();
    rt.block_on(async {
        fixture
            .postcard
            .clear()
            .await
            .expect("clear the bench keys");
        fixture.json.clear().await.expect("clear the bench keys");
    });
}

/// Operations per alternation of the paired measurement.
const PAIR_OPS: u64 = 12_800;
/// Alternations per pair.
const PAIR_ROUNDS: usize = 21;

/// The measurement that holds up on a noisy machine: each service row and its raw row run
/// alternately, `PAIR_ROUNDS` times `PAIR_OPS` operations each, and the median of the
/// per-alternation throughput ratios is printed. Neighbouring alternations see about the same
/// machine load, so the ratio is stable where criterion's separate rows are not.
fn paired() {
    let (rt, fixture) = setup();
    let pairs = [
        (Row::RawGet, Row::ServiceGetPostcard),
        (Row::RawGet, Row::ServiceGetJson),
        (Row::RawSet, Row::ServiceSetPostcard),
    ];
    for (raw, ours) in pairs {
        let ratio = rt.block_on(bench::paired(
            PAIR_ROUNDS,
            PAIR_OPS,
            |ops| fan_out(&fixture, ops, raw),
            |ops| fan_out(&fixture, ops, ours),
        ));
        println!("paired {} vs {}: {ratio}", ours.name(), raw.name());
    }
    rt.block_on(async {
        fixture
            .postcard
            .clear()
            .await
            .expect("clear the bench keys");
        fixture.json.clear().await.expect("clear the bench keys");
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = redis
}

fn main() {
    // What `criterion_main!` expands to, plus the paired measurement.
    // `LEXICACHE_BENCH_PAIRED_ONLY=1` skips the criterion rows.
    if std::env::var_os("LEXICACHE_BENCH_PAIRED_ONLY").is_none() {
        benches();
    }
    paired();
    Criterion::default().configure_from_args().final_summary();
}
