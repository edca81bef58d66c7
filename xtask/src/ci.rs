//! The CI steps (`ci`), the full suite with servers and a 2-minute soak (`test`), and the
//! benchmark (`bench`).

use crate::{cargo, run_step, services, tidy, Result};

/// Runs every CI step in order, stopping at the first failure; `env` is added to each command.
pub(crate) fn ci(env: &[(&str, String)]) -> Result {
    eprintln!("\n==> cargo xtask tidy");
    tidy::tidy()?;

    let steps: [(&str, &[&str]); 4] = [
        ("cargo fmt --all --check", &["fmt", "--all", "--check"]),
        (
            "cargo clippy --workspace --all-targets --all-features -- -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "cargo test --workspace --all-features",
            &["test", "--workspace", "--all-features"],
        ),
        (
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --all-features",
            &["doc", "--workspace", "--no-deps", "--all-features"],
        ),
    ];
    for (title, args) in steps {
        let mut cmd = cargo();
        cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        if args[0] == "doc" {
            // Only here: doc tests in `cargo test` keep rustdoc's default lint levels.
            cmd.env("RUSTDOCFLAGS", "-D warnings");
        }
        run_step(title, &mut cmd)?;
    }
    shuttle()?;
    eprintln!("\n==> all CI steps passed");
    Ok(())
}

/// The shuttle model of single-flight: the lock crate rebuilt with `--cfg lexicache_shuttle`,
/// which swaps its synchronisation for shuttle's. A target directory of its own keeps the
/// normal build's artifacts valid.
fn shuttle() -> Result {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "lexicache-lock",
        "--test",
        "shuttle",
        "--target-dir",
    ])
    .arg(crate::target_dir().join("shuttle"))
    .env("RUSTFLAGS", "--cfg lexicache_shuttle");
    run_step(
        "RUSTFLAGS=\"--cfg lexicache_shuttle\" cargo test -p lexicache-lock --test shuttle",
        &mut cmd,
    )
}

/// Stops the services when dropped, so `test` cleans up after a failed step or a panic.
#[derive(Debug)]
struct ServicesGuard;

impl Drop for ServicesGuard {
    fn drop(&mut self) {
        if let Err(e) = services::down() {
            eprintln!("xtask: error while stopping services: {e}");
        }
    }
}

/// `fetch-models`, `services up`, the CI steps with the server URLs and the model directory in
/// the environment, then `services down` whatever happened; the exit code is the failing
/// step's.
pub(crate) fn test() -> Result {
    // The real-model tests and the semantic evaluation need the MiniLM files and the
    // fow-cache pairs: fetched (and verified) once, then reused from the stamp.
    eprintln!("\n==> cargo xtask fetch-models");
    let models = crate::models::ensure(None)?;
    let guard = ServicesGuard;
    let mut env = services::up()?;
    env.push((
        crate::models::MODEL_DIR_VAR,
        models.to_string_lossy().into_owned(),
    ));
    services::print_env(&env);
    let result = ci(&env).and_then(|()| {
        // The bounded-memory run, in the dev profile: right after the tests its build is
        // already done, and its memory figures hold in either profile.
        eprintln!("\n==> cargo xtask soak --seconds {CI_SOAK_SECONDS} --dev");
        crate::soak::soak(&[
            "--seconds".to_owned(),
            CI_SOAK_SECONDS.to_string(),
            "--dev".to_owned(),
        ])
    });
    drop(guard);
    result
}

/// How long CI's soak runs: the 2 minutes the issue asks for when they fit the time budget.
const CI_SOAK_SECONDS: u64 = 120;

/// The hot-path benchmark; `args` go to `cargo bench` as given (put criterion's own flags
/// after `--`).
pub(crate) fn bench(args: &[String]) -> Result {
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "lexicache-service", "--bench", "hot_path"])
        .args(args);
    let title = format!(
        "cargo bench -p lexicache-service --bench hot_path {}",
        args.join(" ")
    );
    run_step(title.trim_end(), &mut cmd)?;
    summarize_bench(&crate::target_dir().join("criterion"));
    Ok(())
}

/// Prints every hot-path row as ns/op and throughput relative to raw moka, read from criterion's
/// `estimates.json` files, plus the ratio of each interleaved a/b pair and their median.
fn summarize_bench(criterion: &std::path::Path) {
    let mean = |dir: std::path::PathBuf| -> Option<f64> {
        let json = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
        mean_point_estimate(&json)
    };
    let group = criterion.join("hot_path");
    let Some(base) = mean(group.join("a_raw_moka_future_get")) else {
        eprintln!("no criterion estimates under {}", group.display());
        return;
    };
    let mut rows: Vec<String> = std::fs::read_dir(&group)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n != "report")
                .collect()
        })
        .unwrap_or_default();
    rows.sort();
    println!("\n| row | mean | throughput vs a |\n|---|---:|---:|");
    for row in rows {
        if let Some(ns) = mean(group.join(&row)) {
            println!("| {row} | {ns:.0} ns | {:.0}% |", 100.0 * base / ns);
        }
    }
    let pairs = criterion.join("hot_path_pairs");
    let mut ratios: Vec<f64> = (1..)
        .map_while(|round| {
            // Criterion names the directory of `name/round` as `name_round`.
            let a = mean(pairs.join(format!("a_raw_moka_future_get_{round}")))?;
            let b = mean(pairs.join(format!("b_service_get_arc_{round}")))?;
            Some(a / b)
        })
        .collect();
    if ratios.is_empty() {
        return;
    }
    let shown: Vec<String> = ratios
        .iter()
        .map(|r| format!("{:.0}%", r * 100.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "\ninterleaved pairs, service get_arc throughput vs raw moka: {} (median {:.0}%)",
        shown.join(", "),
        ratios[ratios.len() / 2] * 100.0
    );
}

/// The `mean.point_estimate` of a criterion `estimates.json`, found without a JSON parser:
/// the file starts with the `mean` object, whose first `point_estimate` is the one wanted.
fn mean_point_estimate(json: &str) -> Option<f64> {
    let mean = &json[json.find("\"mean\"")?..];
    let rest = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::mean_point_estimate;

    #[test]
    fn mean_point_estimate_is_read_from_criterion_json() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":866.5,"standard_error":13.4},"median":{"point_estimate":1.0}}"#;
        assert_eq!(mean_point_estimate(json), Some(866.5));
        assert_eq!(mean_point_estimate("{}"), None);
    }
}
