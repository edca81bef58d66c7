//! Hot-path hits: `CacheService` over memory against raw moka, side by side in one group.
//!
//! Every row reads the same typed value (a small user record) from 10 000 warm keys, in turn,
//! on a current-thread tokio runtime. Run with
//! `cargo bench -p lexicache-service --bench hot_path -- --warm-up-time 1 --measurement-time 3`;
//! docs/benchmarks.md holds the figures and what they mean.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lexicache_memory::MemoryBackend;
use lexicache_service::CacheService;
use lexicache_testkit::BytesOnly;
use serde::{Deserialize, Serialize};

const KEYS: usize = 10_000;

/// How many times the a/b pair is measured in the `hot_path_pairs` group.
const PAIR_ROUNDS: usize = 5;

/// About the size of a user record a web service caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    active: bool,
    roles: Vec<String>,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.com"),
        active: id % 2 == 0,
        roles: vec!["reader".into(), "writer".into()],
    }
}

/// The next key index, cycling through all keys.
fn next(i: &Cell<usize>) -> usize {
    let n = i.get();
    i.set(if n + 1 == KEYS { 0 } else { n + 1 });
    n
}

fn hot_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let users: Vec<User> = (0..KEYS as u64).map(user).collect();

    let moka: moka::future::Cache<String, Arc<User>> = moka::future::Cache::new(100_000);
    let moka_sync: moka::sync::Cache<String, Arc<User>> = moka::sync::Cache::new(100_000);
    let moka_owned: moka::future::Cache<String, User> = moka::future::Cache::new(100_000);
    let memory = MemoryBackend::new();
    let service = CacheService::builder(memory.clone()).build();
    let unmetered = CacheService::builder(memory.clone()).metrics(false).build();
    let bytes = CacheService::builder(BytesOnly(MemoryBackend::new())).build();
    let bytes_unmetered = CacheService::builder(BytesOnly(MemoryBackend::new()))
        .metrics(false)
        .build();
    rt.block_on(async {
        for (k, u) in keys.iter().zip(&users) {
            moka.insert(k.clone(), Arc::new(u.clone())).await;
            moka_sync.insert(k.clone(), Arc::new(u.clone()));
            moka_owned.insert(k.clone(), u.clone()).await;
            assert!(service.set(k, u, None).await);
            assert!(bytes.set(k, u, None).await);
            assert!(bytes_unmetered.set(k, u, None).await);
        }
        assert_eq!(service.get::<User>("user:7").await, Some(user(7)));
        assert_eq!(bytes.get::<User>("user:7").await, Some(user(7)));
    });
    let shared: lexicache_core::SharedBackend = Arc::new(memory.clone());

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));
    let i = Cell::new(0);

    group.bench_function("a_raw_moka_future_get", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let moka = &moka;
            async move { black_box(moka.get(k.as_str()).await) }
        });
    });
    group.bench_function("b_service_get_arc", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let service = &service;
            async move { black_box(service.get_arc::<User>(k).await) }
        });
    });
    group.bench_function("c_service_get_clone", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let service = &service;
            async move { black_box(service.get::<User>(k).await) }
        });
    });
    group.bench_function("d_bytes_decode_json", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let bytes = &bytes;
            async move { black_box(bytes.get::<User>(k).await) }
        });
    });
    group.bench_function("e_bytes_decode_json_no_metrics", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let bytes = &bytes_unmetered;
            async move { black_box(bytes.get::<User>(k).await) }
        });
    });
    group.bench_function("f_service_get_arc_no_metrics", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let service = &unmetered;
            async move { black_box(service.get_arc::<User>(k).await) }
        });
    });
    group.bench_function("g_memory_get_entry_dyn", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let shared = &shared;
            async move { black_box((**shared).get_entry(k).await) }
        });
    });
    group.bench_function("h_raw_moka_sync_get", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let moka = &moka_sync;
            async move { black_box(moka.get(k.as_str())) }
        });
    });
    group.bench_function("i_raw_moka_future_get_owned", |b| {
        b.to_async(&rt).iter(|| {
            let k = &keys[next(&i)];
            let moka = &moka_owned;
            async move { black_box(moka.get(k.as_str()).await) }
        });
    });
    group.finish();

    // The same two rows as a and b, alternated five times, so that the machine's drift (which
    // moves a row by up to 25% here) hits both sides of each pair alike. `cargo xtask bench`
    // prints each pair's ratio and their median.
    let mut pairs = c.benchmark_group("hot_path_pairs");
    pairs.throughput(Throughput::Elements(1));
    for round in 1..=PAIR_ROUNDS {
        pairs.bench_function(format!("a_raw_moka_future_get/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let moka = &moka;
                async move { black_box(moka.get(k.as_str()).await) }
            });
        });
        pairs.bench_function(format!("b_service_get_arc/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let service = &service;
                async move { black_box(service.get_arc::<User>(k).await) }
            });
        });
    }
    pairs.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
