//! `cargo xtask soak`: the bounded-memory run. Builds the `soak` example of lexicache-service
//! (crates/service/examples/soak.rs: a mixed workload with network faults against Redis and
//! memcached), runs it against the `services` servers, and leaves with its exit code.
//!
//! The servers: when Redis (6390) and both memcached servers (11290, 11291) already answer,
//! they are used as they are and left running; otherwise `services up` starts them and they
//! are stopped afterwards, as `cargo xtask test` does.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{cargo, run_step, services, target_dir, Failure, Result};

/// The default length of a run.
const DEFAULT_SECONDS: u64 = 120;

/// The default limit on RSS growth after warm-up, in MiB.
///
/// Healthy runs plateau at 20-27 MiB: the last 20% of a run stayed within -0.1 to +2.8 MiB of
/// the warm-up's highest RSS (seven runs of 30 s and 2 min; the 2-minute runs +1.2 to +1.4).
/// A leak grows far faster: one 32-byte allocation kept per successful call (the soak's
/// `--inject-leak 32`) grew +18.6 MiB in a 60-second run. 8 MiB is about 3x the worst healthy
/// growth; with it a 2-minute run (72 s between the windows) fails any leak over ~115 KB/s,
/// about 20 bytes per call at the soak's ~6,000 successful calls a second, or ~100 bytes per
/// key name (keys are renamed every 20 s, so per-key state cannot plateau).
const DEFAULT_MAX_GROWTH_MIB: u64 = 8;

/// How long a probe of a server waits.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The example's build profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Release,
    Dev,
}

/// `cargo xtask soak [--minutes N | --seconds N] [--max-growth-mib M] [--dev] [--json FILE]`.
pub(crate) fn soak(args: &[String]) -> Result {
    let mut seconds = DEFAULT_SECONDS;
    let mut max_growth = DEFAULT_MAX_GROWTH_MIB.to_string();
    let mut profile = Profile::Release;
    let mut json = target_dir().join("soak").join("report.json");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| Failure::with_code(format!("soak: {flag} needs a value"), 2))
        };
        match flag.as_str() {
            "--minutes" => seconds = number(flag, value()?)?.saturating_mul(60),
            "--seconds" => seconds = number(flag, value()?)?,
            "--max-growth-mib" => {
                let m = value()?;
                if m.parse::<f64>().is_err() {
                    return Err(Failure::with_code(
                        format!("soak: --max-growth-mib needs a number, got `{m}`"),
                        2,
                    ));
                }
                max_growth.clone_from(m);
            }
            "--dev" => profile = Profile::Dev,
            "--json" => json = PathBuf::from(value()?),
            other => {
                return Err(Failure::with_code(
                    format!("soak: unknown argument `{other}`"),
                    2,
                ))
            }
        }
    }
    if seconds == 0 {
        return Err(Failure::with_code(
            "soak: the run needs at least 1 second",
            2,
        ));
    }

    let started = Instant::now();
    // The dev build resolves features as `cargo test --workspace --all-features` does, so in
    // CI, right after the tests, it reuses their artifacts instead of building again.
    let build_args: &[&str] = match profile {
        Profile::Release => &[
            "build",
            "-p",
            "lexicache-service",
            "--example",
            "soak",
            "--release",
        ],
        Profile::Dev => &[
            "build",
            "--workspace",
            "--all-features",
            "--example",
            "soak",
        ],
    };
    let mut build = cargo();
    build.args(build_args);
    run_step(&format!("cargo {}", build_args.join(" ")), &mut build)?;
    let built = started.elapsed();

    // Started here only if they are not all up already; stopped again when done then.
    let env = services::test_env();
    let guard = if servers_answer(&env) {
        eprintln!("\n==> using the running Redis and memcached servers");
        None
    } else {
        let guard = StartedServices;
        services::up()?;
        Some(guard)
    };

    if let Some(dir) = json.parent() {
        // The example reports a failed write itself; the run goes on without the file.
        drop(std::fs::create_dir_all(dir));
    }
    let dir = match profile {
        Profile::Release => "release",
        Profile::Dev => "debug",
    };
    let mut run = Command::new(target_dir().join(dir).join("examples").join("soak"));
    run.envs(env.iter().map(|(k, v)| (k, v)))
        .args(["--seconds", &seconds.to_string()])
        .args(["--max-growth-mib", &max_growth])
        .arg("--json")
        .arg(&json);
    if let Some(url) = var(&env, "LEXICACHE_TEST_REDIS_URL") {
        run.args(["--redis", url]);
    }
    if let Some(servers) = var(&env, "LEXICACHE_TEST_MEMCACHED") {
        run.args(["--memcached", servers]);
    }
    let result = run_step(
        &format!("soak --seconds {seconds} --max-growth-mib {max_growth}"),
        &mut run,
    );
    drop(guard);
    eprintln!(
        "\n==> soak: build {:.0} s, total {:.0} s (report: {})",
        built.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        json.display()
    );
    result
}

fn number(flag: &str, value: &str) -> Result<u64> {
    value.parse().map_err(|_| {
        Failure::with_code(
            format!("soak: {flag} needs a whole number, got `{value}`"),
            2,
        )
    })
}

fn var<'e>(env: &'e [(&str, String)], name: &str) -> Option<&'e str> {
    env.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether the standalone Redis and every memcached server of `env` accept connections.
fn servers_answer(env: &[(&str, String)]) -> bool {
    let redis = var(env, "LEXICACHE_TEST_REDIS_URL")
        .and_then(|url| url.strip_prefix("redis://"))
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    let memcached = var(env, "LEXICACHE_TEST_MEMCACHED").unwrap_or_default();
    let mut addrs: Vec<&str> = memcached.split(',').filter(|s| !s.is_empty()).collect();
    addrs.extend(redis);
    addrs.len() > 1
        && addrs.iter().all(|a| {
            a.parse::<SocketAddr>()
                .is_ok_and(|addr| TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok())
        })
}

/// Stops the servers this run started when dropped, after a failed step or a panic too.
#[derive(Debug)]
struct StartedServices;

impl Drop for StartedServices {
    fn drop(&mut self) {
        if let Err(e) = services::down() {
            eprintln!("xtask: error while stopping services: {e}");
        }
    }
}
