//! Helpers the backend benchmarks share: fanning operations out over concurrent tasks, and the
//! paired measurement that compares a lexicache row with its raw-driver row on a noisy machine.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `ops` calls of `op` spread over `tasks` spawned tokio tasks and returns the wall time.
///
/// Task `t` calls `op(t, j)` for its `j`-th operation, so each task can walk its own keys.
///
/// # Panics
///
/// When an operation panics (benchmarks assert their results).
pub async fn fan_out<F, Fut>(tasks: u64, ops: u64, op: F) -> Duration
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let n = ops / tasks + u64::from(t < ops % tasks);
            let op = op.clone();
            tokio::spawn(async move {
                for j in 0..n {
                    op(t, j).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("a benchmark task panicked");
    }
    started.elapsed()
}

/// What [`paired`] measured: the median and spread of the per-alternation throughput ratios
/// (ours ÷ raw), and the total throughput of each side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedRatio {
    /// The median of the per-alternation ratios: the figure to quote.
    pub median: f64,
    /// The lowest per-alternation ratio.
    pub min: f64,
    /// The highest per-alternation ratio.
    pub max: f64,
    /// Operations per second of our side over all alternations.
    pub ours_ops: f64,
    /// Operations per second of the raw side over all alternations.
    pub raw_ops: f64,
    /// How many alternations were run.
    pub rounds: usize,
    /// Operations per side per alternation.
    pub ops: u64,
}

impl fmt::Display for PairedRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} vs {:.0} ops/s overall, median ratio {:.3} (min {:.3}, max {:.3}, \
             {} alternations of {} ops)",
            self.ours_ops, self.raw_ops, self.median, self.min, self.max, self.rounds, self.ops
        )
    }
}

/// Runs the raw side and our side alternately, `rounds` times `ops` operations each, and
/// reports the median of the per-alternation throughput ratios.
///
/// Neighbouring alternations see about the same machine load, so this ratio holds up on a
/// shared machine where criterion's separately measured rows drift by more than the gap being
/// measured. `raw(ops)` and `ours(ops)` run `ops` operations and return their wall time.
///
/// # Panics
///
/// When `rounds` is zero.
pub async fn paired<R, RF, O, OF>(rounds: usize, ops: u64, mut raw: R, mut ours: O) -> PairedRatio
where
    R: FnMut(u64) -> RF,
    RF: Future<Output = Duration>,
    O: FnMut(u64) -> OF,
    OF: Future<Output = Duration>,
{
    assert!(rounds > 0, "a paired measurement needs at least one round");
    let mut ratios = Vec::with_capacity(rounds);
    let (mut raw_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let r = raw(ops).await;
        let o = ours(ops).await;
        raw_total += r;
        ours_total += o;
        ratios.push(r.as_secs_f64() / o.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let per_second = |d: Duration| (ops * rounds as u64) as f64 / d.as_secs_f64();
    PairedRatio {
        median: ratios[rounds / 2],
        min: ratios[0],
        max: ratios[rounds - 1],
        ours_ops: per_second(ours_total),
        raw_ops: per_second(raw_total),
        rounds,
        ops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paired_reports_the_median_ratio_of_alternations() {
        // Our side takes 2, 4, 2, 8, 2 ms against a raw side of 4 ms: ratios 2, 1, 2, 0.5, 2.
        let ours_times = [2u64, 4, 2, 8, 2];
        let mut round = 0;
        let ratio = paired(
            5,
            100,
            |_| async { Duration::from_millis(4) },
            |_| {
                let d = Duration::from_millis(ours_times[round]);
                round += 1;
                async move { d }
            },
        )
        .await;
        assert_eq!(ratio.median, 2.0);
        assert_eq!(ratio.min, 0.5);
        assert_eq!(ratio.max, 2.0);
        assert_eq!(ratio.raw_ops, 500.0 / 0.020);
        assert_eq!(ratio.ours_ops, 500.0 / 0.018);
    }

    #[tokio::test]
    async fn fan_out_runs_every_operation_once_across_tasks() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        fan_out(3, 10, move |t, j| {
            let log = log.clone();
            async move { log.lock().unwrap().push((t, j)) }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(
            seen,
            [
                (0, 0),
                (0, 1),
                (0, 2),
                (0, 3),
                (1, 0),
                (1, 1),
                (1, 2),
                (2, 0),
                (2, 1),
                (2, 2)
            ]
        );
    }
}
