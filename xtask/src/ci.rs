//! The CI steps (`ci`), the full suite with servers (`test`) and the benchmark (`bench`).

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
    eprintln!("\n==> all CI steps passed");
    Ok(())
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

/// `services up`, the CI steps with the server URLs in the environment, then `services down`
/// whatever happened; the exit code is the failing step's.
pub(crate) fn test() -> Result {
    let guard = ServicesGuard;
    let env = services::up()?;
    services::print_env(&env);
    let result = ci(&env);
    drop(guard);
    result
}

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
    run_step(title.trim_end(), &mut cmd)
}
