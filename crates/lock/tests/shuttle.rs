//! A shuttle model of the single-flight state machine.
//!
//! Built with `--cfg lexicache_shuttle`, [`SingleFlight`]'s locks are shuttle's, so each test
//! below runs its scenario under thousands of schedules (random and PCT), switching tasks at
//! every lock acquire and release, every spawn and every `yield_now` in the work. A caller that
//! waits forever is reported by shuttle as a deadlock, so "nothing hangs" is checked in every
//! schedule of every test.
//!
//! ```text
//! RUSTFLAGS="--cfg lexicache_shuttle" cargo test -p lexicache-lock --test shuttle \
//!     --target-dir target/shuttle
//! ```
//!
//! Panics in the work use `resume_unwind`, which skips the panic hook, so the model neither
//! prints a backtrace per schedule nor trips shuttle's failure report.
#![cfg(lexicache_shuttle)]

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::FutureExt;
use lexicache_core::{Error, ErrorKind, Result};
use lexicache_lock::SingleFlight;
use shuttle::future::{block_on, spawn, yield_now};

/// Callers per scenario.
const CALLERS: usize = 4;
/// Schedules per scheduler and test; the whole file runs in a few seconds.
const ITERATIONS: usize = 1_500;
/// PCT depth: bugs that need up to this many forced preemptions are found with good odds.
const PCT_DEPTH: usize = 3;

/// Runs `scenario` under the random scheduler and the PCT scheduler.
fn explore<S>(scenario: S)
where
    S: Fn() + Send + Sync + 'static,
{
    let scenario = Arc::new(scenario);
    let random = Arc::clone(&scenario);
    shuttle::check_random(move || random(), ITERATIONS);
    shuttle::check_pct(move || scenario(), ITERATIONS, PCT_DEPTH);
}

/// Holds a leader's work until `n` callers are attached to the flight of `key`, so every
/// caller of the scenario joins the flight before it can finish, in every schedule.
async fn until_attached<T: Any>(flights: &SingleFlight, key: &str, n: usize) {
    while flights.attached::<T>(key) < n {
        yield_now().await;
    }
}

/// Counts runs of the work; run `n` (from 1) produces the value `n`.
#[derive(Default)]
struct Runs(AtomicUsize);

impl Runs {
    /// Records a run and returns its number.
    fn start(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst) as u64
    }
}

fn failure(run: u64) -> Error {
    Error::new(ErrorKind::LoaderFailed, "model").with_message(format!("run {run} failed"))
}

/// Spawns `CALLERS` callers of `key` whose work is `work(run)`, and returns their results.
fn call_concurrently<W, Fut>(
    flights: &Arc<SingleFlight>,
    runs: &Arc<Runs>,
    key: &'static str,
    work: W,
) -> Vec<std::thread::Result<Result<Arc<u64>>>>
where
    W: Fn(Arc<SingleFlight>, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Arc<u64>>> + Send + 'static,
{
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (flights, runs, work) = (flights.clone(), runs.clone(), work.clone());
            spawn(async move {
                let inner = flights.clone();
                let call = flights.run(key, move || work(inner, runs.start()));
                AssertUnwindSafe(call).catch_unwind().await
            })
        })
        .collect();
    block_on(future::join_all(handles))
        .into_iter()
        .map(|joined| joined.expect("no caller task is aborted"))
        .collect()
}

#[test]
fn concurrent_callers_of_one_key_share_one_run_of_the_work() {
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        let results = call_concurrently(&flights, &runs, "k", |flights, run| async move {
            until_attached::<u64>(&flights, "k", CALLERS).await;
            yield_now().await;
            Ok(Arc::new(run))
        });
        for result in results {
            let value = result.expect("no panic").expect("the work succeeds");
            assert_eq!(*value, 1, "every caller gets the one run's value");
        }
        assert_eq!(runs.count(), 1, "the work runs exactly once");
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn callers_arriving_at_any_moment_each_get_the_value_of_a_run_they_overlapped() {
    // No gate: a caller may join the flight, or arrive after it retired and start another.
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        let results = call_concurrently(&flights, &runs, "k", |_, run| async move {
            yield_now().await;
            yield_now().await;
            Ok(Arc::new(run))
        });
        let values: BTreeSet<u64> = results
            .into_iter()
            .map(|r| *r.expect("no panic").expect("the work succeeds"))
            .collect();
        let runs = runs.count();
        assert!((1..=CALLERS as u64).contains(&runs));
        // Every run's value reached at least its leader, and no value came from nowhere.
        assert_eq!(values, (1..=runs).collect::<BTreeSet<_>>());
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn the_leaders_error_reaches_every_waiter() {
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        let results = call_concurrently(&flights, &runs, "k", |flights, run| async move {
            until_attached::<u64>(&flights, "k", CALLERS).await;
            yield_now().await;
            Err(failure(run))
        });
        for result in results {
            let err = result.expect("no panic").expect_err("the work fails");
            assert_eq!(err.kind(), ErrorKind::LoaderFailed);
            assert_eq!(err.message(), "run 1 failed", "the leader's own error");
        }
        assert_eq!(runs.count(), 1);
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn a_panicking_leader_resumes_its_panic_and_gives_every_waiter_loader_panicked() {
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        let results = call_concurrently(&flights, &runs, "k", |flights, _| async move {
            until_attached::<u64>(&flights, "k", CALLERS).await;
            yield_now().await;
            resume_unwind(Box::new("the loader blew up"))
        });
        let mut panicked = 0;
        for result in results {
            match result {
                Err(payload) => {
                    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the loader blew up"));
                    panicked += 1;
                }
                Ok(result) => {
                    let err = result.expect_err("a waiter of a panicked flight fails");
                    assert_eq!(err.kind(), ErrorKind::LoaderPanicked);
                }
            }
        }
        assert_eq!(panicked, 1, "only the leader resumes the panic");
        assert_eq!(runs.count(), 1);
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn a_panicking_leader_never_wedges_callers_arriving_at_any_moment() {
    // No gate: callers that arrive after the panicked flight retired start a new one, whose
    // work (run 2 onwards) succeeds.
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        let results = call_concurrently(&flights, &runs, "k", |_, run| async move {
            yield_now().await;
            if run == 1 {
                resume_unwind(Box::new("the loader blew up"));
            }
            Ok(Arc::new(run))
        });
        let (mut panicked, mut loader_panicked, mut values) = (0, 0, BTreeSet::new());
        for result in results {
            match result {
                Err(_) => panicked += 1,
                Ok(Err(e)) if e.kind() == ErrorKind::LoaderPanicked => loader_panicked += 1,
                Ok(Err(e)) => panic!("unexpected error {e}"),
                Ok(Ok(value)) => {
                    values.insert(*value);
                }
            }
        }
        let runs = runs.count();
        assert_eq!(panicked, 1, "only run 1's leader resumes the panic");
        assert!(
            runs <= CALLERS as u64 - loader_panicked as u64,
            "waiters never run"
        );
        // Every later run's value reached at least its leader.
        assert_eq!(values, (2..=runs).collect::<BTreeSet<_>>());
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn a_cancelled_leader_hands_the_flight_to_a_waiter_and_every_survivor_gets_its_value() {
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        // Run 1's work reports which caller leads it; the canceller then drops that caller's
        // call at whatever moment the scheduler picks, mid-work.
        let (report, leader) = oneshot::channel::<usize>();
        let report = Arc::new(Mutex::new(Some(report)));
        let (cancels, cancelled): (Vec<_>, Vec<_>) =
            (0..CALLERS).map(|_| oneshot::channel::<()>()).unzip();

        let canceller = spawn(async move {
            let leader = leader.await.expect("run 1 reports its leader");
            let mut cancels = cancels;
            cancels
                .swap_remove(leader)
                .send(())
                .expect("the leader is still running");
            // The other callers' senders stay alive (in this task's result) until they finish.
            (leader, cancels)
        });
        let callers: Vec<_> = cancelled
            .into_iter()
            .enumerate()
            .map(|(me, cancelled)| {
                let (flights, runs, report) = (flights.clone(), runs.clone(), report.clone());
                spawn(async move {
                    let inner = flights.clone();
                    let call = flights.run("k", move || async move {
                        let run = runs.start();
                        if run == 1 {
                            let report = report.lock().unwrap().take().expect("one run 1");
                            report.send(me).expect("the canceller listens");
                            // Work that never ends on its own: only cancellation stops it.
                            future::pending::<()>().await;
                        }
                        // The survivors: every caller but the cancelled one.
                        until_attached::<u64>(&inner, "k", CALLERS - 1).await;
                        yield_now().await;
                        Ok(Arc::new(run))
                    });
                    match future::select(Box::pin(call), cancelled).await {
                        Either::Left((result, _)) => Some(result),
                        Either::Right((signal, _)) => {
                            signal.expect("the canceller sends");
                            None
                        }
                    }
                })
            })
            .collect();

        let results = block_on(future::join_all(callers));
        let (leader, _) = block_on(canceller).expect("the canceller finishes");
        for (caller, result) in results.into_iter().enumerate() {
            let result = result.expect("no caller task is aborted");
            if caller == leader {
                assert!(result.is_none(), "run 1's leader was cancelled mid-work");
            } else {
                let value = result.expect("a survivor is not cancelled");
                assert_eq!(*value.expect("the second run succeeds"), 2);
            }
        }
        assert_eq!(runs.count(), 2, "the cancelled run, then exactly one more");
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn no_flight_is_left_once_every_caller_has_finished() {
    // Callers of two keys, and of one key as two types, with work that succeeds, fails or
    // panics: flights never outnumber the (key, type) pairs, and none outlives its callers.
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let handles: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let flights = flights.clone();
                spawn(async move {
                    let key = if caller % 2 == 0 { "a" } else { "b" };
                    let call = async {
                        match caller {
                            // Succeeds.
                            0 | 1 => flights
                                .run(key, || async {
                                    yield_now().await;
                                    Ok(Arc::new(caller as u64))
                                })
                                .await
                                .map(drop),
                            // Fails, and reads key `a` as another type than caller 0.
                            2 => flights
                                .run(key, || async {
                                    yield_now().await;
                                    Err::<Arc<String>, _>(failure(0))
                                })
                                .await
                                .map(drop),
                            // Panics, if it leads key `b`.
                            _ => flights
                                .run::<u64, _, _>(key, || async {
                                    yield_now().await;
                                    resume_unwind(Box::new("blew up"))
                                })
                                .await
                                .map(drop),
                        }
                    };
                    // Outcomes vary with the schedule; only the flight count is checked here.
                    let _outcome = AssertUnwindSafe(call).catch_unwind().await;
                    assert!(flights.in_flight() <= 3, "one flight per (key, type)");
                })
            })
            .collect();
        for joined in block_on(future::join_all(handles)) {
            joined.expect("no caller task is aborted");
        }
        assert_eq!(flights.in_flight(), 0);
    });
}

#[test]
fn a_call_after_a_finished_flight_starts_a_new_one() {
    explore(|| {
        let flights = Arc::new(SingleFlight::new("model"));
        let runs = Arc::new(Runs::default());
        for round in 1..=2 {
            let results = call_concurrently(&flights, &runs, "k", |flights, run| async move {
                until_attached::<u64>(&flights, "k", CALLERS).await;
                Ok(Arc::new(run))
            });
            for result in results {
                assert_eq!(
                    *result.expect("no panic").expect("the work succeeds"),
                    round
                );
            }
            assert_eq!(runs.count(), round, "each round runs the work once more");
            assert_eq!(flights.in_flight(), 0);
        }
        // And a lone caller afterwards leads a third flight of its own.
        let third = block_on(flights.run("k", || async { Ok(Arc::new(runs.start())) }));
        assert_eq!(*third.expect("the work succeeds"), 3);
    });
}
