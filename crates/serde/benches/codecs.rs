//! Encode + decode round trips of every codec and stack, and the zstd cost by size that the
//! compression threshold default was chosen from.
//!
//! Run with
//! `cargo bench -p lexicache-serde --bench codecs -- --warm-up-time 1 --measurement-time 2`;
//! docs/parts/serde-bench.md holds the figures. The `zstd_by_size` group also prints, once, the
//! compressed size of each input to stderr.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lexicache_core::{Bytes, Serializer};
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Json, Postcard, Signed, SigningKey,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A record of about 1 KiB as JSON: what a web service caches per user or product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: f64,
    roles: Vec<String>,
    tags: Vec<String>,
    history: Vec<u32>,
    bio: String,
}

fn record(id: u64) -> Record {
    Record {
        id,
        name: format!("user number {id}"),
        email: format!("user{id}@example.com"),
        active: id % 2 == 0,
        score: id as f64 * 1.5,
        roles: vec!["reader".into(), "writer".into(), "reviewer".into()],
        tags: (0..12).map(|i| format!("tag-{i}-{}", id % 7)).collect(),
        history: (0..60).map(|i| (i * 7919 + id as u32) % 100_000).collect(),
        bio: "Writes about caching, distributed systems and the occasional recipe. ".repeat(6),
    }
}

/// A document of about 10 KiB as JSON: a page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Document {
    query: String,
    total: u64,
    results: Vec<Hit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hit {
    id: u64,
    title: String,
    url: String,
    snippet: String,
    score: f32,
    labels: Vec<String>,
}

fn document() -> Document {
    Document {
        query: "distributed cache invalidation".into(),
        total: 1234,
        results: (0..32)
            .map(|i| Hit {
                id: 10_000 + i,
                title: format!("Result {i}: cache invalidation strategies, part {}", i % 5),
                url: format!("https://example.com/articles/{i}/cache-invalidation"),
                snippet: format!(
                    "In part {i} we look at write-through, write-behind and TTL-based \
                     invalidation, and how tags keep related entries consistent."
                ),
                score: 1.0 / (i as f32 + 1.0),
                labels: vec!["caching".into(), format!("part-{}", i % 5)],
            })
            .collect(),
    }
}

fn signing_key() -> SigningKey {
    SigningKey::new(1, [0x5a; 32]).expect("a 32-byte key")
}

fn encryption_key(alg: Aead) -> EncryptionKey {
    EncryptionKey::new(1, alg, [0xa5; 32]).expect("a 32-byte key")
}

fn round_trip<S, T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    serializer: &S,
    value: &T,
) where
    S: Serializer,
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    // A broken stack would make every figure meaningless; check once before timing.
    let bytes = serializer.encode("bench:key", value).expect("encodes");
    let back: T = serializer.decode("bench:key", &bytes).expect("decodes");
    assert_eq!(&back, value);
    group.bench_function(name, |b| {
        b.iter(|| {
            let bytes = serializer
                .encode(black_box("bench:key"), black_box(value))
                .expect("encodes");
            let back: T = serializer.decode("bench:key", &bytes).expect("decodes");
            black_box(back)
        });
    });
}

/// JSON without the envelope, to show what the five-byte header costs.
#[derive(Debug, Clone, Copy)]
struct BareJson;

impl Serializer for BareJson {
    fn name(&self) -> &str {
        "bare-json"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        _key: &str,
        value: &T,
    ) -> lexicache_core::Result<Bytes> {
        Ok(Bytes::from(serde_json::to_vec(value).expect("encode")))
    }

    fn decode<T: DeserializeOwned>(&self, _key: &str, bytes: &[u8]) -> lexicache_core::Result<T> {
        Ok(serde_json::from_slice(bytes).expect("decode"))
    }
}

#[allow(clippy::print_stderr)]
fn all_stacks<T>(c: &mut Criterion, group_name: &str, value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json_len = serde_json::to_vec(value).expect("json").len();
    let postcard_len = Postcard.encode("k", value).expect("postcard").len() - 5;
    eprintln!("{group_name}: {json_len} bytes as JSON, {postcard_len} as postcard");
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(json_len as u64));
    round_trip(&mut group, "bare_json_no_envelope", &BareJson, value);
    round_trip(&mut group, "json", &Json, value);
    round_trip(&mut group, "postcard", &Postcard, value);
    round_trip(&mut group, "zstd_json", &Compressing::new(Json), value);
    round_trip(
        &mut group,
        "zstd_postcard",
        &Compressing::new(Postcard),
        value,
    );
    round_trip(
        &mut group,
        "signed_json",
        &Signed::new(Json, [signing_key()]).expect("signed"),
        value,
    );
    round_trip(
        &mut group,
        "signed_postcard",
        &Signed::new(Postcard, [signing_key()]).expect("signed"),
        value,
    );
    round_trip(
        &mut group,
        "signed_zstd_json",
        &Signed::new(Compressing::new(Json), [signing_key()]).expect("signed"),
        value,
    );
    round_trip(
        &mut group,
        "signed_zstd_postcard",
        &Signed::new(Compressing::new(Postcard), [signing_key()]).expect("signed"),
        value,
    );
    round_trip(
        &mut group,
        "aesgcm_json",
        &Encrypted::new(Json, [encryption_key(Aead::Aes256Gcm)]).expect("encrypted"),
        value,
    );
    round_trip(
        &mut group,
        "aesgcm_postcard",
        &Encrypted::new(Postcard, [encryption_key(Aead::Aes256Gcm)]).expect("encrypted"),
        value,
    );
    round_trip(
        &mut group,
        "chacha_postcard",
        &Encrypted::new(Postcard, [encryption_key(Aead::ChaCha20Poly1305)]).expect("encrypted"),
        value,
    );
    round_trip(
        &mut group,
        "aesgcm_zstd_json",
        &Encrypted::new(Compressing::new(Json), [encryption_key(Aead::Aes256Gcm)])
            .expect("encrypted"),
        value,
    );
    round_trip(
        &mut group,
        "aesgcm_zstd_postcard",
        &Encrypted::new(
            Compressing::new(Postcard),
            [encryption_key(Aead::Aes256Gcm)],
        )
        .expect("encrypted"),
        value,
    );
    group.finish();
}

fn record_1k(c: &mut Criterion) {
    all_stacks(c, "record_1k", &record(42));
}

fn document_10k(c: &mut Criterion) {
    all_stacks(c, "document_10k", &document());
}

/// The JSON text of `n` records, cut to `size` bytes: typical cached JSON of a given size.
fn json_text(size: usize) -> Vec<u8> {
    let mut text = Vec::new();
    let mut id = 0;
    while text.len() < size {
        serde_json::to_writer(&mut text, &record(id)).expect("json");
        id += 1;
    }
    text.truncate(size);
    text
}

const SIZES: [usize; 8] = [128, 256, 512, 1024, 2048, 4096, 16384, 65536];

#[allow(clippy::print_stderr)]
fn print_sizes() {
    eprintln!("zstd level 3 on JSON text: input bytes -> compressed bytes");
    for size in SIZES {
        let text = json_text(size);
        let out = zstd::bulk::compress(&text, 3).expect("compress");
        eprintln!(
            "  {size:>6} -> {:>6} ({:.0}%)",
            out.len(),
            100.0 * out.len() as f64 / size as f64
        );
    }
}

/// A zstd round trip (compress, then decompress), at level 3 with reused contexts as
/// `Compressing` does, and with a fresh context per call.
fn zstd_by_size(c: &mut Criterion) {
    print_sizes();
    let mut group = c.benchmark_group("zstd_by_size");
    let mut compressor = zstd::bulk::Compressor::new(3).expect("compressor");
    let mut decompressor = zstd::bulk::Decompressor::new().expect("decompressor");
    for size in SIZES {
        let text = json_text(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("reused_ctx", size), &text, |b, text| {
            b.iter(|| {
                let packed = compressor.compress(black_box(text)).expect("compress");
                let plain = decompressor.decompress(&packed, size).expect("decompress");
                black_box(plain)
            });
        });
        group.bench_with_input(BenchmarkId::new("fresh_ctx", size), &text, |b, text| {
            b.iter(|| {
                let packed = zstd::bulk::compress(black_box(text), 3).expect("compress");
                let plain = zstd::bulk::decompress(&packed, size).expect("decompress");
                black_box(plain)
            });
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &text, |b, text| {
            b.iter(|| black_box(black_box(text).clone()));
        });
    }
    group.finish();
}

criterion_group!(benches, record_1k, document_10k, zstd_by_size);
criterion_main!(benches);
