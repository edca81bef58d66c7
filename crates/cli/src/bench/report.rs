//! What `lexicache bench --format json` prints: one [`BenchReport`] object.
//!
//! `cargo xtask bench-report` reads these fields by name; change them together.

use serde::{Deserialize, Serialize};

/// The result of one `lexicache bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// `"memory"`, `"redis"`, `"memcached"` or `"tiered"`.
    pub backend: String,
    /// The workload's settings.
    pub workload: Workload,
    /// The workload through `CacheService`; absent with `--stampede` alone.
    pub lexicache: Option<RunResult>,
    /// The same workload on the raw driver (`--compare-raw`).
    pub raw: Option<RunResult>,
    /// `lexicache.throughput / raw.throughput`, with `--compare-raw`: the median of the
    /// per-round ratios in [`ratios`](Self::ratios) (the sides alternate in rounds, since the
    /// machine drifts).
    pub ratio: Option<f64>,
    /// The lexicache/raw throughput ratio of each round, in run order; empty without
    /// `--compare-raw`.
    #[serde(default)]
    pub ratios: Vec<f64>,
    /// How the raw driver was set up (connections, key routing), with `--compare-raw`.
    #[serde(default)]
    pub raw_note: Option<String>,
    /// The cold-key stampede scenario (`--stampede N`).
    pub stampede: Option<StampedeReport>,
}

/// The settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Distinct keys.
    pub keys: u64,
    /// The Zipf exponent of key popularity (0 is uniform).
    pub zipf_s: f64,
    /// The share of operations that are reads, 0 to 1.
    pub read_ratio: f64,
    /// Bytes per value.
    pub value_size: usize,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// The measured duration, when the run is timed.
    pub duration_secs: Option<f64>,
    /// The measured operation count, when the run is counted.
    pub ops: Option<u64>,
    /// The TTL of written entries, in seconds; none for no expiry.
    pub ttl_secs: Option<f64>,
    /// The warm-up before measuring, in seconds.
    pub warmup_secs: f64,
    /// The seed of the key and operation draws (`--seed`, or a random one), to repeat a run.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The outcome of one measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// `"lexicache"` or the raw driver: `"moka"`, `"fred"`, `"async-memcached"`.
    pub label: String,
    /// Operations completed.
    pub ops: u64,
    /// Measured seconds.
    pub elapsed_secs: f64,
    /// Operations per second.
    pub throughput: f64,
    /// Reads among the operations.
    pub reads: u64,
    /// Reads that hit.
    pub hits: u64,
    /// `hits / reads`.
    pub hit_rate: f64,
    /// Operations that failed.
    pub errors: u64,
    /// Per-operation latency, microseconds.
    pub latency_us: Percentiles,
}

/// Latency percentiles from an HDR histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// `--stampede N`: N concurrent callers of one cold key, with and without protection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StampedeReport {
    /// Concurrent callers.
    pub callers: u32,
    /// How long the loader takes, milliseconds.
    pub loader_ms: u64,
    /// Rounds (a fresh cold key each).
    pub rounds: u32,
    /// Through `get_or_set` with stampede protection.
    pub protected: StampedeRun,
    /// Each caller reads, misses, loads and writes on its own.
    pub unprotected: StampedeRun,
}

/// One side of the stampede scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StampedeRun {
    /// Loader calls over all rounds.
    pub loader_calls: u64,
    /// Caller latency, milliseconds.
    pub latency_ms: Percentiles,
}
