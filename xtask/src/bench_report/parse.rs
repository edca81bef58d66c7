//! Readers for what the benchmarks leave behind: criterion's `estimates.json`, the CSV of
//! `redis-benchmark --csv`, the `paired ...` lines the backend benches print, and the JSON of
//! `lexicache bench --format json`.

use std::path::Path;

use serde_json::Value;

/// The mean of a criterion measurement, in nanoseconds, from its `new/estimates.json` under
/// `dir` (`<target>/criterion/<group>/<id>`); `None` when the file is missing or unreadable.
pub(crate) fn criterion_mean_ns(dir: &Path) -> Option<f64> {
    let json = std::fs::read_to_string(dir.join("new").join("estimates.json")).ok()?;
    mean_from_estimates(&json)
}

/// `mean.point_estimate` of a criterion `estimates.json` document.
pub(crate) fn mean_from_estimates(json: &str) -> Option<f64> {
    let value: Value = serde_json::from_str(json).ok()?;
    value.get("mean")?.get("point_estimate")?.as_f64()
}

/// One row of `redis-benchmark --csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RedisBenchRow {
    /// The test, as redis-benchmark names it: `SET`, `GET`, ...
    pub(crate) test: String,
    /// Requests per second.
    pub(crate) rps: f64,
    /// Median latency, milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub(crate) p99_ms: f64,
}

/// Reads the CSV `redis-benchmark --csv` prints: a header row naming the columns, then one
/// row per test. Columns are found by name, so older releases' shorter header (`"test","rps"`)
/// parse too (latencies then read as NaN).
pub(crate) fn redis_benchmark_csv(csv: &str) -> Result<Vec<RedisBenchRow>, String> {
    let mut lines = csv
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.starts_with('"'));
    let header = lines
        .next()
        .ok_or("redis-benchmark printed no CSV header")?;
    let header = csv_fields(header);
    let column = |name: &str| header.iter().position(|h| h == name);
    let test = column("test").ok_or("redis-benchmark's CSV header has no `test` column")?;
    let rps = column("rps").ok_or("redis-benchmark's CSV header has no `rps` column")?;
    let (p50, p99) = (column("p50_latency_ms"), column("p99_latency_ms"));
    let mut rows = Vec::new();
    for line in lines {
        let fields = csv_fields(line);
        let number = |i: Option<usize>| -> Result<f64, String> {
            match i {
                None => Ok(f64::NAN),
                Some(i) => fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| {
                    format!(
                        "redis-benchmark CSV row `{line}`: no number in column {}",
                        i + 1
                    )
                }),
            }
        };
        rows.push(RedisBenchRow {
            test: fields
                .get(test)
                .cloned()
                .ok_or_else(|| format!("redis-benchmark CSV row `{line}` has no test name"))?,
            rps: number(Some(rps))?,
            p50_ms: number(p50)?,
            p99_ms: number(p99)?,
        });
    }
    if rows.is_empty() {
        return Err("redis-benchmark printed a CSV header but no rows".into());
    }
    Ok(rows)
}

/// The fields of one CSV line of quoted values (`"SET","86206.90"`); redis-benchmark quotes
/// every field and none contains a quote or a comma.
fn csv_fields(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').to_owned())
        .collect()
}

/// One `paired OURS vs RAW: ...` line of the backend benches (testkit's `PairedRatio`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paired {
    /// Our row's name.
    pub(crate) ours: String,
    /// The raw row's name.
    pub(crate) raw: String,
    /// Our throughput over all alternations, ops/s.
    pub(crate) ours_ops: f64,
    /// The raw throughput over all alternations, ops/s.
    pub(crate) raw_ops: f64,
    /// The median of the per-alternation ratios.
    pub(crate) median: f64,
    /// The lowest and highest per-alternation ratio.
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Every `paired A vs B: X vs Y ops/s overall, median ratio M (min m, max n, ...)` line of a
/// bench's stdout.
pub(crate) fn paired_lines(stdout: &str) -> Vec<Paired> {
    stdout.lines().filter_map(paired_line).collect()
}

fn paired_line(line: &str) -> Option<Paired> {
    let rest = line.trim().strip_prefix("paired ")?;
    let (names, figures) = rest.split_once(": ")?;
    let (ours, raw) = names.split_once(" vs ")?;
    let (ours_ops, rest) = figures.split_once(" vs ")?;
    let (raw_ops, rest) = rest.split_once(" ops/s overall, median ratio ")?;
    let (median, rest) = rest.split_once(" (min ")?;
    let (min, rest) = rest.split_once(", max ")?;
    let max = rest.split([',', ')']).next()?;
    Some(Paired {
        ours: ours.to_owned(),
        raw: raw.to_owned(),
        ours_ops: ours_ops.trim().parse().ok()?,
        raw_ops: raw_ops.trim().parse().ok()?,
        median: median.trim().parse().ok()?,
        min: min.trim().parse().ok()?,
        max: max.trim().parse().ok()?,
    })
}

/// Latency percentiles of one `lexicache bench` phase, as its JSON has them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
}

/// One measured phase of `lexicache bench` (its `lexicache` or `raw` object).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phase {
    /// `lexicache`, or the raw driver's name.
    pub(crate) label: String,
    pub(crate) throughput: f64,
    pub(crate) hit_rate: f64,
    pub(crate) errors: u64,
    /// Microseconds.
    pub(crate) latency_us: Percentiles,
}

/// What the report reads of one `lexicache bench --format json --compare-raw` run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BenchRun {
    pub(crate) backend: String,
    pub(crate) concurrency: u64,
    pub(crate) lexicache: Phase,
    pub(crate) raw: Option<Phase>,
    pub(crate) ratio: Option<f64>,
    /// What the raw side is exactly, when the CLI says.
    pub(crate) raw_note: Option<String>,
}

/// One side of `lexicache bench --stampede`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StampedeSide {
    pub(crate) loader_calls: u64,
    /// Milliseconds; `max` in place of p99.9's slot is not needed.
    pub(crate) latency_ms: Percentiles,
    pub(crate) max_ms: f64,
}

/// What the report reads of `lexicache bench --stampede N --format json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StampedeRun {
    pub(crate) backend: String,
    pub(crate) callers: u64,
    pub(crate) loader_ms: u64,
    pub(crate) rounds: u64,
    pub(crate) protected: StampedeSide,
    pub(crate) unprotected: StampedeSide,
}

fn field<'a>(v: &'a Value, name: &str, at: &str) -> Result<&'a Value, String> {
    v.get(name)
        .filter(|f| !f.is_null())
        .ok_or_else(|| format!("`lexicache bench` JSON: no `{name}` in {at}"))
}

fn number(v: &Value, name: &str, at: &str) -> Result<f64, String> {
    field(v, name, at)?
        .as_f64()
        .ok_or_else(|| format!("`lexicache bench` JSON: `{at}.{name}` is not a number"))
}

fn count(v: &Value, name: &str, at: &str) -> Result<u64, String> {
    field(v, name, at)?
        .as_u64()
        .ok_or_else(|| format!("`lexicache bench` JSON: `{at}.{name}` is not a count"))
}

fn percentiles(v: &Value, at: &str) -> Result<Percentiles, String> {
    Ok(Percentiles {
        p50: number(v, "p50", at)?,
        p90: number(v, "p90", at)?,
        p99: number(v, "p99", at)?,
        p999: number(v, "p999", at)?,
    })
}

fn phase(v: &Value, at: &str) -> Result<Phase, String> {
    Ok(Phase {
        label: field(v, "label", at)?.as_str().unwrap_or(at).to_owned(),
        throughput: number(v, "throughput", at)?,
        hit_rate: number(v, "hit_rate", at)?,
        errors: count(v, "errors", at)?,
        latency_us: percentiles(field(v, "latency_us", at)?, &format!("{at}.latency_us"))?,
    })
}

fn document(json: &str) -> Result<Value, String> {
    serde_json::from_str(json.trim())
        .map_err(|e| format!("`lexicache bench` printed no JSON object ({e}): {json:.200}"))
}

/// Reads the JSON of a throughput run (`lexicache bench --format json [--compare-raw]`).
pub(crate) fn bench_run(json: &str) -> Result<BenchRun, String> {
    let v = document(json)?;
    let workload = field(&v, "workload", "the report")?;
    Ok(BenchRun {
        backend: field(&v, "backend", "the report")?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        concurrency: count(workload, "concurrency", "workload")?,
        lexicache: phase(field(&v, "lexicache", "the report")?, "lexicache")?,
        raw: match v.get("raw") {
            Some(raw) if !raw.is_null() => Some(phase(raw, "raw")?),
            _ => None,
        },
        ratio: v.get("ratio").and_then(Value::as_f64),
        raw_note: v.get("raw_note").and_then(Value::as_str).map(str::to_owned),
    })
}

fn stampede_side(v: &Value, at: &str) -> Result<StampedeSide, String> {
    let latency = field(v, "latency_ms", at)?;
    Ok(StampedeSide {
        loader_calls: count(v, "loader_calls", at)?,
        latency_ms: percentiles(latency, &format!("{at}.latency_ms"))?,
        max_ms: number(latency, "max", &format!("{at}.latency_ms"))?,
    })
}

/// Reads the JSON of `lexicache bench --stampede N --format json`.
pub(crate) fn stampede_run(json: &str) -> Result<StampedeRun, String> {
    let v = document(json)?;
    let s = field(&v, "stampede", "the report")?;
    Ok(StampedeRun {
        backend: field(&v, "backend", "the report")?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        callers: count(s, "callers", "stampede")?,
        loader_ms: count(s, "loader_ms", "stampede")?,
        rounds: count(s, "rounds", "stampede")?,
        protected: stampede_side(field(s, "protected", "stampede")?, "stampede.protected")?,
        unprotected: stampede_side(field(s, "unprotected", "stampede")?, "stampede.unprotected")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_rows_are_read_by_column_name() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"19417.48\",\"0.138\",\"0.040\",\"0.111\",\"0.199\",\"0.383\",\"4.255\"\n\"GET\",\"24691.36\",\"0.105\",\"0.040\",\"0.095\",\"0.175\",\"0.279\",\"2.863\"\n";
        let rows = redis_benchmark_csv(csv).expect("parses");
        assert_eq!(
            rows,
            [
                RedisBenchRow {
                    test: "SET".into(),
                    rps: 19417.48,
                    p50_ms: 0.111,
                    p99_ms: 0.383
                },
                RedisBenchRow {
                    test: "GET".into(),
                    rps: 24691.36,
                    p50_ms: 0.095,
                    p99_ms: 0.279
                },
            ]
        );
    }

    #[test]
    fn redis_benchmark_csv_skips_progress_noise_and_reads_the_old_two_column_form() {
        // Progress lines end in `\r`, not `\n`, and share the output; old releases print only
        // the test and the rate.
        let csv = "SET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\r\n\"test\",\"rps\"\n\"GET\",\"1000.5\"\n";
        let rows = redis_benchmark_csv(csv).expect("parses");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].test, "GET");
        assert_eq!(rows[0].rps, 1000.5);
        assert!(rows[0].p99_ms.is_nan());
    }

    #[test]
    fn redis_benchmark_csv_errors_say_what_is_wrong() {
        assert!(redis_benchmark_csv("")
            .unwrap_err()
            .contains("no CSV header"));
        assert!(redis_benchmark_csv("\"test\",\"rps\"\n")
            .unwrap_err()
            .contains("no rows"));
        assert!(redis_benchmark_csv("\"name\",\"rps\"\n\"GET\",\"1\"\n")
            .unwrap_err()
            .contains("`test` column"));
        assert!(redis_benchmark_csv("\"test\",\"rps\"\n\"GET\",\"fast\"\n")
            .unwrap_err()
            .contains("no number"));
    }

    #[test]
    fn criterion_mean_is_read_from_estimates_json() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":866.5,"standard_error":13.4},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.0,"standard_error":0.1},"median_abs_dev":null,"slope":null,"std_dev":{"point_estimate":3.0}}"#;
        assert_eq!(mean_from_estimates(json), Some(866.5));
        assert_eq!(mean_from_estimates("{}"), None);
        assert_eq!(mean_from_estimates("not json"), None);
    }

    #[test]
    fn criterion_mean_is_found_under_the_measurement_directory() {
        let dir = std::env::temp_dir().join(format!(
            "xtask-bench-report-estimates-{}",
            std::process::id()
        ));
        let new = dir.join("group").join("row").join("new");
        std::fs::create_dir_all(&new).expect("temp dir");
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":42.25,"standard_error":1.0}}"#,
        )
        .expect("write");
        assert_eq!(criterion_mean_ns(&dir.join("group/row")), Some(42.25));
        assert_eq!(criterion_mean_ns(&dir.join("group/absent")), None);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn paired_lines_are_read_from_bench_stdout() {
        let out = "Benchmarking x\npaired b_service_get_postcard vs a_raw_fred_get: 91600 vs 95100 ops/s overall, median ratio 0.980 (min 0.700, max 1.200, 21 alternations of 12800 ops)\nother\n";
        assert_eq!(
            paired_lines(out),
            [Paired {
                ours: "b_service_get_postcard".into(),
                raw: "a_raw_fred_get".into(),
                ours_ops: 91600.0,
                raw_ops: 95100.0,
                median: 0.98,
                min: 0.7,
                max: 1.2,
            }]
        );
    }

    const RUN: &str = r#"{"backend":"redis","workload":{"keys":100000,"zipf_s":1.0,"read_ratio":0.9,"value_size":100,"concurrency":16,"duration_secs":2.0,"ops":null,"ttl_secs":null,"warmup_secs":1.0},
        "lexicache":{"label":"lexicache","ops":100,"elapsed_secs":2.0,"throughput":50.0,"reads":90,"hits":80,"hit_rate":0.889,"errors":0,"latency_us":{"p50":10.0,"p90":20.0,"p99":30.0,"p999":40.0,"max":50.0,"mean":12.0}},
        "raw":{"label":"fred","ops":120,"elapsed_secs":2.0,"throughput":60.0,"reads":108,"hits":100,"hit_rate":0.926,"errors":0,"latency_us":{"p50":9.0,"p90":18.0,"p99":27.0,"p999":36.0,"max":45.0,"mean":10.0}},
        "ratio":0.833,"stampede":null}"#;

    #[test]
    fn a_bench_run_is_read_from_the_cli_json() {
        let run = bench_run(RUN).expect("parses");
        assert_eq!(run.backend, "redis");
        assert_eq!(run.concurrency, 16);
        assert_eq!(run.lexicache.throughput, 50.0);
        assert_eq!(run.lexicache.latency_us.p999, 40.0);
        let raw = run.raw.expect("raw");
        assert_eq!(raw.label, "fred");
        assert_eq!(raw.hit_rate, 0.926);
        assert_eq!(run.ratio, Some(0.833));
    }

    #[test]
    fn a_bench_run_without_its_measurement_is_an_error_naming_the_field() {
        let err = bench_run(r#"{"backend":"memory","workload":{"concurrency":1}}"#).unwrap_err();
        assert!(err.contains("`lexicache`"), "{err}");
        assert!(bench_run("not yet").unwrap_err().contains("no JSON object"));
    }

    #[test]
    fn a_stampede_run_is_read_from_the_cli_json() {
        let json = r#"{"backend":"memory","workload":{"concurrency":1000},"lexicache":null,"raw":null,"ratio":null,
            "stampede":{"callers":1000,"loader_ms":50,"rounds":3,
              "protected":{"loader_calls":3,"latency_ms":{"p50":51.0,"p90":52.0,"p99":53.0,"p999":54.0,"max":55.0,"mean":51.0}},
              "unprotected":{"loader_calls":3000,"latency_ms":{"p50":60.0,"p90":62.0,"p99":63.0,"p999":64.0,"max":65.0,"mean":61.0}}}}"#;
        let run = stampede_run(json).expect("parses");
        assert_eq!(run.callers, 1000);
        assert_eq!(run.protected.loader_calls, 3);
        assert_eq!(run.unprotected.loader_calls, 3000);
        assert_eq!(run.unprotected.max_ms, 65.0);
        assert_eq!(run.protected.latency_ms.p99, 53.0);
    }
}
