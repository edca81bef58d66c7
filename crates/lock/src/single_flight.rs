//! Single-flight: concurrent requests for one key share one run of the work that produces it.
//!
//! [`SingleFlight`] is independent of caches: the first caller of a key (the leader) runs its
//! own work; callers that arrive while it runs wait and receive the leader's result. It is what
//! `CacheService::get_or_set` (in `lexicache-service`) uses, and other crates can use
//! it for any keyed, idempotent load.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use futures::FutureExt;
use lexicache_core::{Error, ErrorKind, Object, Operation, Result};
use tokio::sync::watch;

/// Where one flight stands, as its waiters see it.
#[derive(Clone)]
enum State {
    /// The leader is still working.
    Running,
    /// The leader finished, with its value (a `Arc<T>` behind `dyn Any`) or its error.
    Done(Result<Object>),
    /// The leader was dropped before finishing; waiters try again.
    Abandoned,
}

/// One in-flight run: its leader publishes the outcome, its waiters watch for it.
struct Flight {
    state: watch::Sender<State>,
}

/// Flights are told apart by key and by the type they produce, so two callers that read one
/// key as different types never hand each other a value they cannot use.
type FlightKey = (String, TypeId);

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
/// # Ok(()) }
/// ```
pub struct SingleFlight {
    name: String,
    flights: DashMap<FlightKey, Arc<Flight>>,
}

impl fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("name", &self.name)
            .field("in_flight", &self.flights.len())
            .finish()
    }
}

impl SingleFlight {
    /// An empty set of flights; `name` labels the errors it makes (a backend or service name).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            flights: DashMap::new(),
        }
    }

    /// How many keys have a flight running now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.flights.len()
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
        let mut work = Some(work);
        loop {
            let (flight, leads) = self.join((key.to_owned(), TypeId::of::<T>()));
            if leads {
                let Some(work) = work.take() else {
                    // A leader always returns, so one call never leads twice; if it somehow
                    // did, an error is better than a panic.
                    return Err(self.mismatch());
                };
                return self.lead(key, flight, work).await;
            }
            match Self::wait(&flight).await {
                Some(Ok(object)) => {
                    return object.downcast::<T>().map_err(|_| self.mismatch());
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// Finds the flight of `key`, starting one (and leading it) if there is none.
    fn join(&self, key: FlightKey) -> (Arc<Flight>, bool) {
        match self.flights.entry(key) {
            Entry::Occupied(o) => (o.get().clone(), false),
            Entry::Vacant(v) => {
                let (state, _) = watch::channel(State::Running);
                let flight = Arc::new(Flight { state });
                v.insert(flight.clone());
                (flight, true)
            }
        }
    }

    async fn lead<T, F, Fut>(&self, key: &str, flight: Arc<Flight>, work: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<T>>>,
    {
        let mut guard = LeaderGuard {
            flights: &self.flights,
            key: Some((key.to_owned(), TypeId::of::<T>())),
            flight,
        };
        match AssertUnwindSafe(work()).catch_unwind().await {
            Ok(result) => {
                let shared = result.clone().map(|v| v as Object);
                guard.finish(State::Done(shared));
                result
            }
            Err(panic) => {
                let err = Error::new(ErrorKind::LoaderPanicked, self.name.clone())
                    .with_operation(Operation::Load)
                    .with_message("the loader panicked");
                guard.finish(State::Done(Err(err)));
                resume_unwind(panic)
            }
        }
    }

    /// Waits for the flight's outcome; `None` means it was abandoned and the caller retries.
    async fn wait(flight: &Flight) -> Option<Result<Object>> {
        let mut rx = flight.state.subscribe();
        let state = match rx.wait_for(|s| !matches!(s, State::Running)).await {
            Ok(state) => state.clone(),
            // Unreachable while we hold the flight (and so its sender), but a closed channel
            // can only mean the leader is gone: retry.
            Err(_) => return None,
        };
        match state {
            State::Done(result) => Some(result),
            State::Running | State::Abandoned => None,
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
    flights: &'a DashMap<FlightKey, Arc<Flight>>,
    /// `None` once the flight is retired.
    key: Option<FlightKey>,
    flight: Arc<Flight>,
}

impl LeaderGuard<'_> {
    /// Publishes the outcome, then removes the flight so later callers start afresh.
    fn finish(&mut self, state: State) {
        // Publishing first lets a caller that joins between the two steps still receive this
        // outcome instead of starting a redundant run.
        self.flight.state.send_replace(state);
        if let Some(key) = self.key.take() {
            let mine = &self.flight;
            self.flights.remove_if(&key, |_, f| Arc::ptr_eq(f, mine));
        }
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.finish(State::Abandoned);
        }
    }
}
