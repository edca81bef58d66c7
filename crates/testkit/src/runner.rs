//! Running cases: fresh namespaces, panic capture, the clock, clean-up and the final report.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use lexicache_core::CacheBackend;

use crate::ctx::{Ctx, Factory};
use crate::registry::{self, CaseInfo};

/// How long one case may take on a backend that does not follow tokio's clock (a remote
/// server), so a hung connection fails the case instead of hanging the test run.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long clearing a case's namespaces afterwards may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How a case ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseOutcome {
    /// The case ran and every assertion held.
    Passed,
    /// The case does not apply to this backend's [`Capabilities`](lexicache_core::Capabilities).
    Skipped,
}

/// What [`run_all`] ran. Failures never reach a report: `run_all` panics with them instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// Cases that ran and passed.
    pub passed: Vec<&'static str>,
    /// Cases skipped because the backend lacks the capability they check.
    pub skipped: Vec<&'static str>,
}

/// A namespace no other case, run or process will use: the run id (process id and start time)
/// keeps runs sharing a remote server apart, and the fixed-width sequence number keeps any
/// namespace from being a prefix of another.
pub(crate) fn namespace_for(case: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let run = RUN.get_or_init(|| {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{:x}-{:x}", std::process::id(), millis)
    });
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("lexicache-test:{run}:{case}:{seq:06}")
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

/// Runs one case, turning its panic (or the factory's) into `Err(message)`.
async fn execute<Fa: Factory>(info: &CaseInfo, factory: &Fa) -> Result<CaseOutcome, String> {
    let made = AssertUnwindSafe(factory.make(namespace_for(info.name)))
        .catch_unwind()
        .await;
    let backend = match made {
        Ok(b) => Arc::new(b),
        Err(p) => return Err(format!("the factory panicked: {}", panic_message(&*p))),
    };
    let cx = Ctx::new(info.name, factory, backend);
    let caps = *cx.caps();
    let outcome = if (info.applies)(&caps) {
        let run = AssertUnwindSafe(registry::dispatch(info.name, &cx)).catch_unwind();
        let result = if caps.tokio_clock {
            // A timeout would fire as soon as a case advances the paused clock, and an
            // in-process backend cannot hang on a network anyway.
            run.await
        } else {
            match tokio::time::timeout(CASE_TIMEOUT, run).await {
                Ok(r) => r,
                Err(_) => Ok(Err(format!(
                    "did not finish within {CASE_TIMEOUT:?}; is the server reachable?"
                ))),
            }
        };
        if cx.paused() {
            tokio::time::resume();
        }
        match result {
            Ok(Ok(())) => Ok(CaseOutcome::Passed),
            Ok(Err(msg)) => Err(msg),
            Err(p) => Err(panic_message(&*p)),
        }
    } else {
        Ok(CaseOutcome::Skipped)
    };
    // Clearing afterwards keeps a shared server from filling up with test keys; it is best
    // effort because the clear behaviour itself is checked by its own cases.
    if caps.clear {
        for b in cx.made() {
            let _ = tokio::time::timeout(CLEANUP_TIMEOUT, b.clear()).await;
        }
    }
    outcome
}

/// Runs the case called `name` against backends made by `factory`.
///
/// The factory is called with a fresh namespace (`lexicache-test:{run}:{case}:{n}`), once for
/// the case's backend and again for each further namespace the case needs. A case that does
/// not apply to the backend's [`Capabilities`](lexicache_core::Capabilities) is skipped.
///
/// It must run on a current-thread tokio runtime (`#[tokio::test]`) that is not started paused:
/// cases pause and advance the clock for backends whose `tokio_clock` capability is set, and
/// resume it afterwards.
///
/// # Panics
///
/// When the case fails (with the case's message), or when `name` is not a case of
/// [`case_names`].
///
/// # Cancel safety
///
/// Dropping the future mid-case leaves the case's keys behind and, for a `tokio_clock`
/// backend, may leave the clock paused.
pub async fn run_case<B, F, Fut>(name: &str, factory: F) -> CaseOutcome
where
    B: CacheBackend,
    F: Fn(String) -> Fut,
    Fut: Future<Output = B>,
{
    let Some(info) = registry::CASES.iter().find(|c| c.name == name) else {
        panic!("no behaviour case is called {name:?}; see lexicache_testkit::case_names()");
    };
    match execute(info, &factory).await {
        Ok(outcome) => outcome,
        Err(msg) => panic!("behaviour case `{name}` failed: {msg}"),
    }
}

/// Runs every case against backends made by `factory`, and returns what passed and what was
/// skipped.
///
/// Each case gets fresh namespaces as in [`run_case`]; a failing case does not stop the run.
/// Prefer [`behaviour_suite!`](crate::behaviour_suite), which makes one test per case.
///
/// # Panics
///
/// After running every case, if any failed, with the list of failed cases and their messages.
///
/// # Cancel safety
///
/// As for [`run_case`].
pub async fn run_all<B, F, Fut>(factory: F) -> SuiteReport
where
    B: CacheBackend,
    F: Fn(String) -> Fut,
    Fut: Future<Output = B>,
{
    let mut report = SuiteReport::default();
    let mut failed = Vec::new();
    for info in registry::CASES {
        match execute(info, &factory).await {
            Ok(CaseOutcome::Passed) => report.passed.push(info.name),
            Ok(CaseOutcome::Skipped) => report.skipped.push(info.name),
            Err(msg) => failed.push(format!("  {}: {msg}", info.name)),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} behaviour cases failed:\n{}",
        failed.len(),
        registry::CASES.len(),
        failed.join("\n")
    );
    report
}

/// The names of every case, in the order [`run_all`] runs them.
#[must_use]
pub fn case_names() -> &'static [&'static str] {
    registry::NAMES
}
