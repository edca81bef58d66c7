//! What a closed circuit breaker costs on the in-process hot path: memory hits with and without
//! the breaker, at the backend and at the service, measured in alternating pairs so the
//! machine's drift hits both sides alike.
//!
//! Run with
//! `cargo bench -p lexicache-service --bench breaker -- --warm-up-time 1 --measurement-time 3`;
//! docs/resilience.md holds the figures.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::cell::Cell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lexicache_core::{CacheBackend, SharedBackend};
use lexicache_memory::MemoryBackend;
use lexicache_service::layers::{CircuitBreaker, CircuitBreakerConfig};
use lexicache_service::CacheService;
use std::sync::Arc;

const KEYS: usize = 10_000;
const ROUNDS: usize = 3;

fn next(i: &Cell<usize>) -> usize {
    let n = i.get();
    i.set(if n + 1 == KEYS { 0 } else { n + 1 });
    n
}

fn breaker(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let memory = MemoryBackend::new();
    let plain: SharedBackend = Arc::new(memory.clone());
    let guarded: SharedBackend = Arc::new(CircuitBreaker::new(
        memory.clone(),
        CircuitBreakerConfig::new(),
    ));
    let service = CacheService::builder(memory.clone()).build();
    let service_guarded = CacheService::builder(memory.clone())
        .circuit_breaker(CircuitBreakerConfig::new())
        .build();
    rt.block_on(async {
        for (n, k) in keys.iter().enumerate() {
            assert!(service.set(k, &format!("value {n}"), None).await);
        }
        assert!(service_guarded.get::<String>("user:7").await.is_some());
    });

    let mut group = c.benchmark_group("breaker");
    group.throughput(Throughput::Elements(1));
    let i = Cell::new(0);
    for round in 1..=ROUNDS {
        group.bench_function(format!("a_backend_get_entry/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let plain = &plain;
                async move { black_box(plain.get_entry(k).await) }
            });
        });
        group.bench_function(format!("b_backend_get_entry_breaker/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let guarded = &guarded;
                async move { black_box(guarded.get_entry(k).await) }
            });
        });
        group.bench_function(format!("c_service_get_arc/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let service = &service;
                async move { black_box(service.get_arc::<String>(k).await) }
            });
        });
        group.bench_function(format!("d_service_get_arc_breaker/{round}"), |b| {
            b.to_async(&rt).iter(|| {
                let k = &keys[next(&i)];
                let service = &service_guarded;
                async move { black_box(service.get_arc::<String>(k).await) }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, breaker);
criterion_main!(benches);
