//! Throughput at 64 concurrent tasks: raw async-memcached against `MemcachedBackend` and
//! `CacheService` over it, side by side, on the same servers and the same pool size.
//!
//! Each row runs 64 tasks on a multi-thread runtime, splitting the iterations between them, so
//! criterion's throughput is operations per second across all tasks. The raw rows use the same
//! number of `async_memcached::Client` connections per server in a minimal pool (a semaphore
//! and a mutex'd `Vec`), sending key `i` to server `i % 2`. The lexicache rows add key checks,
//! the key mapping, the SHA-256 ring, per-command timeouts and (for the service) metrics and a
//! postcard codec. Needs the test servers:
//!
//! ```text
//! cargo xtask services up
//! LEXICACHE_TEST_MEMCACHED=127.0.0.1:11290,127.0.0.1:11291 \
//!     cargo bench -p lexicache-memcached --bench memcached
//! ```

// `criterion_group!` generates an undocumented public function; the paired measurement
// prints its ratios, which criterion cannot report.
#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client};
use criterion::{criterion_group, Criterion, Throughput};
use lexicache_core::{Bytes, CacheBackend, Error, ErrorKind, Operation, Result, Serializer};
use lexicache_memcached::{MemcachedBackend, DEFAULT_POOL_SIZE};
use lexicache_service::CacheService;
use lexicache_testkit::bench;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

const TASKS: u64 = 64;
const KEYS: usize = 1_000;
const POOL_SIZE: usize = DEFAULT_POOL_SIZE;
/// How many times every row is measured, in turn.
const ROUNDS: usize = 5;

/// A small record, about what a web service caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    active: bool,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.com"),
        active: id % 2 == 0,
    }
}

/// postcard as a lexicache serializer.
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

/// The raw side: `POOL_SIZE` connections per server, a semaphore and a mutex'd `Vec`.
struct RawPool {
    servers: Vec<(Semaphore, Mutex<Vec<Client>>)>,
}

impl RawPool {
    async fn new(addrs: &[String]) -> Self {
        let mut servers = Vec::new();
        for addr in addrs {
            let mut clients = Vec::new();
            for _ in 0..POOL_SIZE {
                clients.push(
                    Client::new(format!("tcp://{addr}"))
                        .await
                        .expect("raw connect"),
                );
            }
            servers.push((Semaphore::new(POOL_SIZE), Mutex::new(clients)));
        }
        Self { servers }
    }

    async fn get(&self, i: usize, key: &str) -> Option<Vec<u8>> {
        let (permits, idle) = &self.servers[i % self.servers.len()];
        let _permit = permits.acquire().await.expect("open semaphore");
        let mut client = idle.lock().unwrap().pop().expect("a connection per permit");
        let value = client.get(key).await.expect("raw get");
        idle.lock().unwrap().push(client);
        value.and_then(|v| v.data)
    }

    async fn set(&self, i: usize, key: &str, value: &[u8]) {
        let (permits, idle) = &self.servers[i % self.servers.len()];
        let _permit = permits.acquire().await.expect("open semaphore");
        let mut client = idle.lock().unwrap().pop().expect("a connection per permit");
        client.set(key, value, None, None).await.expect("raw set");
        idle.lock().unwrap().push(client);
    }
}

struct Fixture {
    raw: RawPool,
    backend: MemcachedBackend,
    service: CacheService<Postcard>,
    raw_keys: Vec<String>,
    keys: Vec<String>,
    users: Vec<User>,
    encoded: Vec<Bytes>,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
enum Row {
    RawGet,
    BackendGet,
    ServiceGet,
    RawSet,
    BackendSet,
    ServiceSet,
}

impl Row {
    const ALL: [Row; 6] = [
        Row::RawGet,
        Row::BackendGet,
        Row::ServiceGet,
        Row::RawSet,
        Row::BackendSet,
        Row::ServiceSet,
    ];

    fn name(self) -> &'static str {
        match self {
            Row::RawGet => "a_raw_get",
            Row::BackendGet => "b_backend_get",
            Row::ServiceGet => "c_service_get",
            Row::RawSet => "d_raw_set",
            Row::BackendSet => "e_backend_set",
            Row::ServiceSet => "f_service_set",
        }
    }

    async fn run(self, f: &Fixture, i: usize) {
        match self {
            Row::RawGet => {
                black_box(f.raw.get(i, &f.raw_keys[i]).await).expect("a hit");
            }
            Row::BackendGet => {
                black_box(f.backend.get(&f.keys[i]).await.expect("get")).expect("a hit");
            }
            Row::ServiceGet => {
                black_box(f.service.get::<User>(&f.keys[i]).await).expect("a hit");
            }
            Row::RawSet => f.raw.set(i, &f.raw_keys[i], &f.encoded[i]).await,
            Row::BackendSet => f
                .backend
                .set(&f.keys[i], f.encoded[i].clone(), None)
                .await
                .expect("set"),
            Row::ServiceSet => assert!(f.service.set(&f.keys[i], &f.users[i], None).await),
        }
    }
}

/// Runs `iters` operations of `row` split over `TASKS` tasks, returning the wall time.
async fn fan_out(fixture: &Arc<Fixture>, iters: u64, row: Row) -> Duration {
    let fixture = fixture.clone();
    bench::fan_out(TASKS, iters, move |t, j| {
        let fixture = fixture.clone();
        let i = ((t * 7919 + j * 104_729) % KEYS as u64) as usize;
        async move { row.run(&fixture, i).await }
    })
    .await
}

/// The runtime and warm fixture every measurement uses.
fn setup() -> (tokio::runtime::Runtime, Arc<Fixture>) {
    let servers: Vec<String> = std::env::var("LEXICACHE_TEST_MEMCACHED")
        .expect(
            "run `cargo xtask services up`, then export \
             LEXICACHE_TEST_MEMCACHED=127.0.0.1:11290,127.0.0.1:11291",
        )
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    assert!(
        servers.iter().all(|s| s.starts_with("127.0.0.1:")),
        "benches contact loopback servers only"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    let fixture = rt.block_on(async {
        let backend = MemcachedBackend::builder()
            .servers(servers.clone())
            .prefix("lexicache-bench:")
            .pool_size(POOL_SIZE)
            .connect()
            .await
            .expect("connect");
        let service = CacheService::builder(backend.clone())
            .serializer(Postcard)
            .build();
        let users: Vec<User> = (0..KEYS as u64).map(user).collect();
        let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
        let raw_keys: Vec<String> = (0..KEYS)
            .map(|i| format!("lexicache-bench-raw:user:{i}"))
            .collect();
        let encoded: Vec<Bytes> = users
            .iter()
            .map(|u| Postcard.encode("", u).expect("encode"))
            .collect();
        let raw = RawPool::new(&servers).await;
        for i in 0..KEYS {
            raw.set(i, &raw_keys[i], &encoded[i]).await;
            assert!(service.set(&keys[i], &users[i], None).await, "warm {i}");
        }
        assert_eq!(service.get::<User>("user:7").await, Some(user(7)));
        Arc::new(Fixture {
            raw,
            backend,
            service,
            raw_keys,
            keys,
            users,
            encoded,
        })
    });
    (rt, fixture)
}

fn throughput(c: &mut Criterion) {
    let (rt, fixture) = setup();

    let mut group = c.benchmark_group("memcached_64_tasks");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    // The machine drifts between runs and within one; measuring each raw row right before
    // the rows it is compared with, several times over, lets the ratios be read per round.
    for round in 1..=ROUNDS {
        for row in Row::ALL {
            group.bench_function(format!("{}_r{round}", row.name()), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let fixture = fixture.clone();
                    async move { fan_out(&fixture, iters, row).await }
                });
            });
        }
    }
    group.finish();
}

/// Operations per alternation of the paired measurement.
const PAIR_OPS: u64 = 6_400;
/// Alternations per pair.
const PAIR_ROUNDS: usize = 21;

/// A check that holds up on a noisy machine: each lexicache row and its raw row run alternately,
/// `PAIR_ROUNDS` times `PAIR_OPS` operations each, and the median of the per-alternation
/// throughput ratios is printed. Neighbouring alternations see about the same machine load.
fn paired() {
    let (rt, fixture) = setup();
    let pairs = [
        (Row::RawGet, Row::BackendGet),
        (Row::RawGet, Row::ServiceGet),
        (Row::RawSet, Row::BackendSet),
        (Row::RawSet, Row::ServiceSet),
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
}

criterion_group!(benches, throughput);

fn main() {
    // What `criterion_main!` expands to, plus the paired measurement.
    // `LEXICACHE_BENCH_PAIRED_ONLY=1` skips the criterion rows.
    if std::env::var_os("LEXICACHE_BENCH_PAIRED_ONLY").is_none() {
        benches();
    }
    paired();
    Criterion::default().configure_from_args().final_summary();
}
