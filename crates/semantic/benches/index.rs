//! Vector index figures at 10k and 100k entries of 384 dimensions (the size of
//! all-MiniLM-L6-v2 embeddings), embedding excluded: `HnswIndex` against `FlatIndex`.
//!
//! Entries are random unit vectors in one scope; queries are near duplicates (a stored
//! vector plus noise of a third of its length, re-normalized: cosine about 0.95 with it).
//! Besides criterion's `index_search` group, the bench prints, per size:
//!
//! - graph build time and insert throughput (a parallel `insert_batch`, then single
//!   `insert`s into the full index);
//! - search latency p50/p99 over 2,000 timed queries, for HNSW and for `FlatIndex`;
//! - recall@1: how often HNSW's best hit is `FlatIndex`'s (exact) best hit;
//! - persist and load time, against the build (what a restart without persistence costs);
//! - at 100k, recall and p99 for several `ef_search` values (reloaded from the file).
//!
//! Run with `cargo bench -p lexicache-semantic --bench index`: most of its time is building
//! the 100k graph at the default `ef_construction` of 200 (3.5 minutes on two idle cores,
//! 11.5 on two busy ones); docs/benchmarks.md holds the figures.

// `criterion_group!` generates an undocumented public function; the figures are printed.
#![allow(missing_docs, clippy::print_stdout)]

use std::{
    cell::Cell,
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion};
use lexicache_semantic::{index::DEFAULT_EF_SEARCH, FlatIndex, HnswIndex, Scope, VectorIndex};

const DIM: usize = 384;
const QUERIES: usize = 2_000;
/// Noise added to a stored vector to make a query, relative to its length.
const NOISE: f32 = 0.33;

/// A small xorshift generator, so the bench needs no rand crate and is reproducible.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn unit(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| self.next_f32()).collect();
        normalize(&mut v);
        v
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

fn near_duplicate(v: &[f32], rng: &mut Rng) -> Vec<f32> {
    let noise = rng.unit();
    let mut q: Vec<f32> = v.iter().zip(&noise).map(|(x, n)| x + n * NOISE).collect();
    normalize(&mut q);
    q
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times every query; returns (p50, p99, best hit ids).
fn timed_searches(
    index: &dyn VectorIndex,
    queries: &[Vec<f32>],
    scope: &Scope,
) -> (Duration, Duration, Vec<String>) {
    let mut times = Vec::with_capacity(queries.len());
    let mut best = Vec::with_capacity(queries.len());
    for q in queries {
        let start = Instant::now();
        let hits = index.search(q, scope, 1).expect("search");
        times.push(start.elapsed());
        best.push(hits.into_iter().next().map(|h| h.id).unwrap_or_default());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), best)
}

fn recall(got: &[String], truth: &[String]) -> f64 {
    got.iter().zip(truth).filter(|(g, t)| g == t).count() as f64 / truth.len() as f64
}

struct Fixture {
    label: &'static str,
    hnsw: HnswIndex,
    flat: FlatIndex,
    queries: Vec<Vec<f32>>,
}

fn fixture(label: &'static str, n: usize, scope: &Scope, dir: &std::path::Path) -> Fixture {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| rng.unit()).collect();
    let entries: Vec<(String, &Vec<f32>)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("e{i}"), v))
        .collect();
    let queries: Vec<Vec<f32>> = (0..QUERIES)
        .map(|i| near_duplicate(&vectors[(i * 7_919) % n], &mut rng))
        .collect();

    let hnsw = HnswIndex::builder(DIM)
        .max_entries(n)
        .build()
        .expect("index");
    let start = Instant::now();
    hnsw.insert_batch(&entries, scope, None)
        .expect("insert_batch");
    let build = start.elapsed();
    println!(
        "[{label}] hnsw build (insert_batch, parallel): {:.1} s = {:.0} vectors/s",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64()
    );

    let flat = FlatIndex::builder(DIM)
        .max_entries(n)
        .build()
        .expect("index");
    let start = Instant::now();
    for (id, v) in &entries {
        flat.insert(id, v, scope, None).expect("insert");
    }
    let flat_build = start.elapsed();
    println!(
        "[{label}] flat build: {:.2} s = {:.0} vectors/s",
        flat_build.as_secs_f64(),
        n as f64 / flat_build.as_secs_f64()
    );

    let (h50, h99, got) = timed_searches(&hnsw, &queries, scope);
    let (f50, f99, truth) = timed_searches(&flat, &queries, scope);
    println!(
        "[{label}] hnsw search k=1 (ef_search {DEFAULT_EF_SEARCH}): p50 {:.0} µs, p99 {:.0} µs; recall@1 vs flat {:.4}",
        micros(h50),
        micros(h99),
        recall(&got, &truth)
    );
    println!(
        "[{label}] flat search k=1: p50 {:.0} µs, p99 {:.0} µs",
        micros(f50),
        micros(f99)
    );

    let path = dir.join(format!("{label}.lxv"));
    let start = Instant::now();
    hnsw.persist(&path).expect("persist");
    let persist = start.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let start = Instant::now();
    let loaded = HnswIndex::builder(DIM)
        .max_entries(n)
        .load(&path)
        .expect("load");
    let load = start.elapsed();
    assert_eq!(loaded.stats().graph_inserts, 0, "load must not re-insert");
    let (_, _, reloaded) = timed_searches(&loaded, &queries[..200], scope);
    assert_eq!(reloaded, got[..200], "a reloaded graph answers identically");
    println!(
        "[{label}] persist {:.2} s ({:.0} MB), load {:.2} s; rebuilding instead takes {:.1} s ({:.0}x the load)",
        persist.as_secs_f64(),
        size as f64 / 1e6,
        load.as_secs_f64(),
        build.as_secs_f64(),
        build.as_secs_f64() / load.as_secs_f64()
    );
    drop(loaded);

    // Single inserts into the full index: each evicts the least recently hit entry.
    let extra: Vec<Vec<f32>> = (0..500).map(|_| rng.unit()).collect();
    let start = Instant::now();
    for (i, v) in extra.iter().enumerate() {
        hnsw.insert(&format!("x{i}"), v, scope, None)
            .expect("insert");
    }
    let single = start.elapsed();
    println!(
        "[{label}] hnsw single inserts into the full index (with eviction): {:.0} vectors/s",
        extra.len() as f64 / single.as_secs_f64()
    );

    if n >= 100_000 {
        for ef in [32, 64, 80, 96, 128] {
            let tuned = HnswIndex::builder(DIM)
                .max_entries(n)
                .ef_search(ef)
                .load(&path)
                .expect("load");
            let (p50, p99, got) = timed_searches(&tuned, &queries, scope);
            println!(
                "[{label}] ef_search {ef:>3}: p50 {:.0} µs, p99 {:.0} µs, recall@1 {:.4}",
                micros(p50),
                micros(p99),
                recall(&got, &truth)
            );
        }
    }
    let _ = std::fs::remove_file(&path);
    Fixture {
        label,
        hnsw,
        flat,
        queries,
    }
}

fn next(i: &Cell<usize>) -> usize {
    let n = i.get();
    i.set((n + 1) % QUERIES);
    n
}

fn index(c: &mut Criterion) {
    let scope = Scope::new("bench", "all-MiniLM-L6-v2", "");
    let dir = std::env::temp_dir().join(format!("lexicache-index-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fixtures = [
        fixture("10k", 10_000, &scope, &dir),
        fixture("100k", 100_000, &scope, &dir),
    ];
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));

    let mut group = c.benchmark_group("index_search");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    for f in &fixtures {
        let i = Cell::new(0);
        group.bench_function(format!("hnsw/{}", f.label), |b| {
            b.iter(|| black_box(f.hnsw.search(&f.queries[next(&i)], &scope, 1)))
        });
        group.bench_function(format!("flat/{}", f.label), |b| {
            b.iter(|| black_box(f.flat.search(&f.queries[next(&i)], &scope, 1)))
        });
    }
    group.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
