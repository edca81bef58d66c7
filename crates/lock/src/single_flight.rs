//! Single-flight: concurrent requests for one key share one run of the work that produces it.
//!
//! [`SingleFlight`] is independent of caches: the first caller of a key (the leader) runs its
//! own work; callers that arrive while it runs wait and receive the leader's result. It is what
//! `CacheService::get_or_set` (in `lexicache-service`) uses, and other crates can use
//! it for any keyed, idempotent load.
//!
//! The state machine is model-checked with [shuttle](https://docs.rs/shuttle): built with
//! `--cfg lexicache_shuttle`, its locks are shuttle's, and `tests/shuttle.rs` explores thousands
//! of schedules of concurrent, failing, panicking and cancelled callers.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use futures::FutureExt;
use lexicache_core::{Error, ErrorKind, Object, Operation, Result};
use tokio::sync::Notify;

use self::sync::Mutex;

/// The lock every race of the state machine goes through.
///
/// Normally `std`'s. Under `cfg(lexicache_shuttle)` it is shuttle's, so the model checker sees
/// each acquire and release as a point where it may switch tasks. Waits go through
/// [`Notify`], whose wakers are the executor's (shuttle's in the model), so a parked caller is
/// visible to the scheduler, and a lost wakeup shows up as a deadlock.
mod sync {
    #[cfg(lexicache_shuttle)]
    use shuttle::sync as imp;
    #[cfg(not(lexicache_shuttle))]
    use std::sync as imp;
    use std::sync::PoisonError;

    pub(super) struct Mutex<T>(imp::Mutex<T>);

    impl<T> Mutex<T> {
        pub(super) fn new(value: T) -> Self {
            Self(imp::Mutex::new(value))
        }

        /// Poison is ignored: no critical section can leave the data half-updated.
        pub(super) fn lock(&self) -> imp::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}

/// Where one flight stands, as its waiters see it.
enum State {
    /// The leader is still working.
    Running,
    /// The leader finished, with its value (a `Arc<T>` behind `dyn Any`) or its error.
    Done(Result<Object>),
    /// The leader was dropped before finishing; waiters try again.
    Abandoned,
}

/// One in-flight run: its leader publishes the outcome, its waiters wait for it.
struct Flight {
    state: Mutex<State>,
    /// Wakes every waiter once `state` leaves [`State::Running`].
    settled: Notify,
}

impl Flight {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::Running),
            settled: Notify::new(),
        }
    }

    /// Sets the outcome and wakes every waiter.
    fn publish(&self, state: State) {
        *self.state.lock() = state;
        self.settled.notify_waiters();
    }

    /// Waits for the outcome; `None` means the flight was abandoned and the caller retries.
    async fn outcome(&self) -> Option<Result<Object>> {
        loop {
            // Created before the state is read, so a publish right after the read still wakes
            // this waiter: `notify_waiters` reaches every `Notified` created before it, polled
            // or not.
            let settled = self.settled.notified();
            match &*self.state.lock() {
                State::Running => {}
                State::Done(result) => return Some(result.clone()),
                State::Abandoned => return None,
            }
            settled.await;
        }
    }
}

/// Flights are told apart by key and by the type they produce, so two callers that read one
/// key as different types never hand each other a value they cannot use.
type FlightKey = (String, TypeId);

type Flights = Mutex<HashMap<FlightKey, Arc<Flight>>>;

/// Coalesces concurrent runs of keyed work.
///
/// [`run`](Self::run) with a key that has no flight makes the caller the leader: it runs its
/// `work`, publishes the outcome to every caller that joined meanwhile, and retires the flight.
/// Later callers start a new flight.
///
/// - An error from the work is handed to every waiter (errors are cheap to clone).
/// - If the work panics, waiters get [`ErrorKind::LoaderPanicked`] and the leader's own call
///   resumes the panic.
/// - If the leader's future is dropped mid-work (cancelled, timed out, its task aborted), a
///   guard retires the flight and wakes the waiters, which try again: one of them becomes the
///   new leader and runs its own work. Nobody waits on work that no one is doing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use lexicache_lock::single_flight::SingleFlight;
///
/// let flights = SingleFlight::new("demo");
/// let runs = AtomicUsize::new(0);
/// let load = || async {
///     runs.fetch_add(1, Ordering::SeqCst);
///     tokio::task::yield_now().await;
///     Ok(Arc::new(42u32))
/// };
/// let (a, b) = tokio::join!(flights.run("answer", load), flights.run("answer", load));
/// assert_eq!((*a?, *b?), (42, 42));
/// assert_eq!(runs.load(Ordering::SeqCst), 1);
/// assert_eq!(flights.in_flight(), 0);
/// # Ok(()) }
/// ```
pub struct SingleFlight {
    name: String,
    /// Touched only when a caller joins or a leader retires (cache misses), never on hits, so
    /// one lock is plenty.
    flights: Flights,
}

impl fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("name", &self.name)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl SingleFlight {
    /// An empty set of flights; `name` labels the errors it makes (a backend or service name).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// How many keys have a flight running now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }

    /// Model-checking hook (only with `--cfg lexicache_shuttle`): how many callers, leader
    /// included, are attached to the flight of `key` for `T` now; 0 without a flight.
    ///
    /// The model uses it to hold a leader's work until every caller has joined, which makes
    /// "the work runs exactly once" a property of every schedule rather than of lucky ones.
    #[cfg(lexicache_shuttle)]
    #[doc(hidden)]
    #[must_use]
    pub fn attached<T: Any>(&self, key: &str) -> usize {
        self.flights
            .lock()
            .get(&(key.to_owned(), TypeId::of::<T>()))
            // One reference is the map's own.
            .map_or(0, |flight| Arc::strong_count(flight) - 1)
    }

    /// Runs `work` for `key`, or joins the run already in flight for it.
    ///
    /// Only the leader calls its `work`; a waiter's `work` is dropped unused unless the leader
    /// is cancelled, in which case the waiter may lead the next attempt and run it.
    ///
    /// # Errors
    ///
    /// The work's own error (the same, cloned, for every caller of the flight), or
    /// [`ErrorKind::LoaderPanicked`] for waiters of a flight whose work panicked.
    ///
    /// # Panics
    ///
    /// Resumes the panic of `work` in the leader's call.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping a waiter's future only stops it waiting. Dropping the leader's
    /// future drops its work midway (so the work must itself be cancel safe), retires the
    /// flight and wakes the waiters, which start over.
    pub async fn run<T, F, Fut>(&self, key: &str, work: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<T>>>,
    {
        let key = (key.to_owned(), TypeId::of::<T>());
        let mut work = Some(work);
        loop {
            let (flight, leads) = self.join(&key);
            if leads {
                let Some(work) = work.take() else {
                    // A leader always returns, so one call never leads twice; if it somehow
                    // did, an error is better than a panic.
                    return Err(self.mismatch());
                };
                return self.lead(key, flight, work).await;
            }
            match flight.outcome().await {
                Some(Ok(object)) => {
                    return object.downcast::<T>().map_err(|_| self.mismatch());
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// Finds the flight of `key`, starting one (and leading it) if there is none.
    fn join(&self, key: &FlightKey) -> (Arc<Flight>, bool) {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(key) {
            return (flight.clone(), false);
        }
        let flight = Arc::new(Flight::new());
        flights.insert(key.clone(), flight.clone());
        (flight, true)
    }

    async fn lead<T, F, Fut>(&self, key: FlightKey, flight: Arc<Flight>, work: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<T>>>,
    {
        let mut guard = LeaderGuard {
            flights: &self.flights,
            key: Some(key),
            flight,
        };
        match AssertUnwindSafe(work()).catch_unwind().await {
            Ok(result) => {
                guard.finish(result.clone().map(|v| v as Object));
                result
            }
            Err(panic) => {
                let err = Error::new(ErrorKind::LoaderPanicked, self.name.clone())
                    .with_operation(Operation::Load)
                    .with_message("the loader panicked");
                guard.finish(Err(err));
                resume_unwind(panic)
            }
        }
    }

    /// Flights are keyed by type, so a leader's value always has the waiter's type; this error
    /// stands in for a panic should that invariant ever break.
    fn mismatch(&self) -> Error {
        Error::new(ErrorKind::LoaderFailed, self.name.clone())
            .with_operation(Operation::Load)
            .with_message("the load in flight produced no value of the requested type")
    }
}

/// Retires a flight when its leader finishes or is dropped.
struct LeaderGuard<'a> {
    flights: &'a Flights,
    /// `None` once the flight is retired.
    key: Option<FlightKey>,
    flight: Arc<Flight>,
}

impl LeaderGuard<'_> {
    /// Publishes the outcome, then retires the flight so later callers start afresh.
    fn finish(&mut self, outcome: Result<Object>) {
        // Publishing first lets a caller that joins between the two steps still receive this
        // outcome instead of starting a redundant run.
        self.flight.publish(State::Done(outcome));
        self.retire();
    }

    /// Takes the flight out of the map (once), so the next caller of its key starts a new one.
    fn retire(&mut self) {
        if let Some(key) = self.key.take() {
            let mut flights = self.flights.lock();
            if flights
                .get(&key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&key);
            }
        }
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            // Retiring first: a woken waiter that tries again must find the next flight (or
            // start it), not this dead one, which it would spin on until it was gone.
            self.retire();
            self.flight.publish(State::Abandoned);
        }
    }
}
