//! `--stampede N`: N concurrent callers of one cold key whose loader takes `--loader-ms`, over
//! `--rounds` fresh keys; through `get_or_set` (protected) and with each caller reading,
//! missing, loading and writing on its own (unprotected).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexicache::config::ConfiguredService;

use super::driver::Value;
use super::report::{StampedeReport, StampedeRun};
use super::workload::{histogram, percentiles, Progress};
use crate::CliError;

/// The scenario's settings.
#[derive(Debug)]
pub(super) struct Stampede {
    pub(super) callers: u32,
    pub(super) loader: Duration,
    pub(super) rounds: u32,
    pub(super) ttl: Option<Duration>,
    /// Makes this run's keys cold even on a shared server: `{prefix}{nonce}:{round}:{side}`.
    pub(super) prefix: String,
}

/// Runs both sides, protected first, each round on a fresh key.
///
/// # Errors
///
/// The first cache error a caller meets, or [`CliError::Check`] when a caller panics.
pub(super) async fn run(
    service: &ConfiguredService,
    plan: &Stampede,
    value: &Value,
    progress: &Progress,
) -> Result<StampedeReport, CliError> {
    progress.phase(
        format!("stampede: {} callers, protected", plan.callers),
        None,
    );
    let protected = side(service, plan, value, true).await?;
    progress.phase(
        format!("stampede: {} callers, unprotected", plan.callers),
        None,
    );
    let unprotected = side(service, plan, value, false).await?;
    Ok(StampedeReport {
        callers: plan.callers,
        loader_ms: u64::try_from(plan.loader.as_millis()).unwrap_or(u64::MAX),
        rounds: plan.rounds,
        protected,
        unprotected,
    })
}

async fn side(
    service: &ConfiguredService,
    plan: &Stampede,
    value: &Value,
    protected: bool,
) -> Result<StampedeRun, CliError> {
    let loads = Arc::new(AtomicU64::new(0));
    let mut latency = histogram();
    let tag = if protected { "p" } else { "u" };
    for round in 0..plan.rounds {
        let key: Arc<str> = format!("{}{round}:{tag}", plan.prefix).into();
        let start = Arc::new(tokio::sync::Barrier::new(plan.callers as usize));
        let tasks: Vec<_> = (0..plan.callers)
            .map(|_| {
                let service = service.clone();
                let key = Arc::clone(&key);
                let loads = Arc::clone(&loads);
                let start = Arc::clone(&start);
                let value = value.clone();
                let (loader, ttl) = (plan.loader, plan.ttl);
                tokio::spawn(async move {
                    start.wait().await;
                    let begin = Instant::now();
                    let load = || async move {
                        tokio::time::sleep(loader).await;
                        loads.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(value)
                    };
                    if protected {
                        service.get_or_set(&key, ttl, load).await?;
                    } else if service.try_get::<Value>(&key).await?.is_none() {
                        let Ok(loaded) = load().await;
                        service.try_set(&key, &loaded, ttl).await?;
                    }
                    Ok::<_, lexicache::Error>(begin.elapsed())
                })
            })
            .collect();
        for task in tasks {
            let took = task
                .await
                .map_err(|e| CliError::Check(format!("a stampede caller panicked: {e}")))??;
            latency.saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1));
        }
    }
    Ok(StampedeRun {
        loader_calls: loads.load(Ordering::SeqCst),
        latency_ms: percentiles(&latency, 1e6),
    })
}
