//! The `metrics` facade receives what the in-process snapshot counts, under the documented names.

use std::time::Duration;

use lexicache_core::metrics::{
    CacheMetrics, Outcome, OPERATIONS_TOTAL, OPERATION_DURATION_SECONDS,
};
use lexicache_core::Operation;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn facade_sees_the_same_counts_as_the_snapshot_with_documented_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let m = metrics::with_local_recorder(&recorder, || CacheMetrics::new("memory"));
    m.record(Operation::Get, Outcome::Hit, Duration::from_micros(5));
    m.record(Operation::Get, Outcome::Hit, Duration::from_micros(7));
    m.record(Operation::Get, Outcome::Miss, Duration::from_micros(3));
    m.record(Operation::Set, Outcome::Ok, Duration::from_micros(9));
    m.count(Operation::Get, Outcome::Error, 1);

    let snap = m.snapshot();
    assert_eq!(
        (snap.hits, snap.misses, snap.sets, snap.errors),
        (2, 1, 1, 1)
    );

    let mut hits = None;
    let mut get_durations = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let has = |k: &str, v: &str| labels.iter().any(|(lk, lv)| lk == k && lv == v);
        if key.key().name() == OPERATIONS_TOTAL
            && has("backend", "memory")
            && has("operation", "get")
            && has("outcome", "hit")
        {
            if let DebugValue::Counter(n) = value {
                hits = Some(n);
            }
        } else if key.key().name() == OPERATION_DURATION_SECONDS && has("operation", "get") {
            if let DebugValue::Histogram(samples) = value {
                get_durations = samples.len();
            }
        }
    }
    assert_eq!(hits, Some(2));
    assert_eq!(get_durations, 3);
}
