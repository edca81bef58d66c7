//! `SemanticCache` lookups: a tier-1 (exact) hit on the memory backend next to the raw
//! backend read it is built on, and a tier-2 hit through `FlatIndex` at 10k
//! entries with the model-free `HashingEmbedder` (so the embedding costs microseconds and
//! the figure is the store's own work: normalize, hash, read, search, guards).
//!
//! Run with
//! `cargo bench -p lexicache-semantic --bench store -- --warm-up-time 1 --measurement-time 3`;
//! docs/benchmarks.md holds the figures.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::{cell::Cell, hint::black_box, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion};
use lexicache_core::CacheBackend;
use lexicache_memory::MemoryBackend;
use lexicache_semantic::{FlatIndex, HashingEmbedder, Scope, SemanticCache, Tier, VectorIndex};

const ENTRIES: usize = 10_000;
const DIM: usize = 384;

fn query(i: usize) -> String {
    format!("How do I configure feature number {i} of the billing dashboard?")
}

/// A store with `ENTRIES` answers in one scope over `index`.
fn filled(rt: &tokio::runtime::Runtime, index: Arc<dyn VectorIndex>) -> (SemanticCache, Scope) {
    let cache = SemanticCache::builder(
        Arc::new(MemoryBackend::builder().max_entries(1_000_000).build()),
        Arc::new(HashingEmbedder::new(DIM).expect("a dimension")),
        index,
    )
    .similarity_threshold(0.5)
    .build()
    .expect("valid settings");
    let scope = Scope::new("bench", "gpt-4o", "");
    rt.block_on(async {
        for i in 0..ENTRIES {
            cache
                .store(
                    &scope,
                    &query(i),
                    "An answer of a typical length, a few sentences long.",
                    "gpt-4o",
                )
                .await
                .expect("stored");
        }
    });
    (cache, scope)
}

fn next(i: &Cell<usize>) -> usize {
    let n = i.get();
    i.set((n + 1) % ENTRIES);
    n
}

fn lookups(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (cache, scope) = filled(
        &rt,
        Arc::new(FlatIndex::builder(DIM).build().expect("an index")),
    );
    let queries: Vec<String> = (0..ENTRIES).map(query).collect();
    // The same read without the store: the tier-1 keys, straight from the backend.
    let backend = MemoryBackend::builder().max_entries(1_000_000).build();
    let keys: Vec<String> = queries.iter().map(|q| cache.key(&scope, q)).collect();
    rt.block_on(async {
        for k in &keys {
            backend
                .set(k, bytes::Bytes::from_static(&[0u8; 96]), None)
                .await
                .expect("set");
        }
    });

    let mut group = c.benchmark_group("semantic_tier1");
    let i = Cell::new(0);
    group.bench_function("raw memory backend get", |b| {
        b.iter(|| {
            rt.block_on(async { black_box(backend.get(&keys[next(&i)]).await.expect("get")) })
        })
    });
    group.bench_function("SemanticCache exact hit (memory)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let l = cache
                    .lookup(&scope, &queries[next(&i)])
                    .await
                    .expect("lookup");
                debug_assert_eq!(l.tier, Tier::Exact);
                black_box(l)
            })
        })
    });
    group.finish();

    // Near-repeats: a filler word the exact tier cannot see through.
    let near: Vec<String> = queries.iter().map(|q| format!("hi, {q}")).collect();
    let mut group = c.benchmark_group("semantic_tier2_10k");
    group.sample_size(30);
    group.bench_function("FlatIndex similar hit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let l = cache.lookup(&scope, &near[next(&i)]).await.expect("lookup");
                debug_assert_eq!(l.tier, Tier::Similar);
                black_box(l)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
