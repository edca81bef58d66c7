//! Cache events and the bus that delivers them: to broadcast subscribers and to registered
//! handlers.
//!
//! An [`EventBus`] has two kinds of listener:
//!
//! - **subscribers** ([`EventBus::subscribe`]): a `tokio::sync::broadcast` receiver each. A
//!   subscriber that falls more than the bus capacity behind loses the oldest events (it sees
//!   `RecvError::Lagged`);
//! - **handlers** ([`EventBus::register`], [`EventBus::register_async`]): the reference's
//!   status-handler registry. Each handler has its own bounded queue and its own drain (a
//!   thread for an [`EventHandler`], a tokio task for an [`AsyncEventHandler`]). Emitting is a
//!   non-blocking `try_send`: when a handler's queue is full the event is dropped *for that
//!   handler only*, its dropped counter goes up (see [`EventBus::handler_stats`] and the
//!   `lexicache_events_dropped_total` counter), and the cache operation that emitted it goes on
//!   at once. A handler that panics is caught; its panic is counted and it keeps receiving.
//!
//! Events are best effort, and a bus with no listener of either kind costs one atomic load per
//! event: the event is not even built.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::metrics::{EVENTS_DROPPED_TOTAL, EVENT_HANDLER_PANICS_TOTAL};

/// Why an entry left the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Its TTL passed.
    Expired,
    /// The cache was over capacity (entries or bytes).
    Size,
    /// It was deleted, cleared or overwritten on purpose.
    Explicit,
}

impl EvictionCause {
    /// A short lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Size => "size",
            Self::Explicit => "explicit",
        }
    }
}

/// The state of a circuit breaker.
///
/// ```
/// use lexicache_core::CircuitState;
///
/// assert_eq!(CircuitState::HalfOpen.as_str(), "half_open");
/// assert_eq!(CircuitState::Open.gauge(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast without reaching the backend.
    Open,
    /// A few probe calls go through to test the backend; the others fail fast.
    HalfOpen,
}

impl CircuitState {
    /// A short, stable, snake_case name, used as a metrics label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the `lexicache_circuit_state` gauge: 0 closed, 1 open, 2 half-open.
    #[must_use]
    pub const fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened in a cache.
///
/// Keys in events are the backend's full keys (with any namespace prefix). Values never appear.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// The backend (re)connected.
    Connected {
        /// The backend name.
        backend: Arc<str>,
    },
    /// The backend lost its connection.
    Disconnected {
        /// The backend name.
        backend: Arc<str>,
        /// Why, as reported by the driver.
        reason: String,
    },
    /// An entry left the cache.
    Evicted {
        /// The backend name.
        backend: Arc<str>,
        /// The evicted key.
        key: Arc<str>,
        /// Why it left.
        cause: EvictionCause,
    },
    /// A read found its key.
    Hit {
        /// The backend name.
        backend: Arc<str>,
        /// The key read.
        key: Arc<str>,
    },
    /// A read did not find its key.
    Miss {
        /// The backend name.
        backend: Arc<str>,
        /// The key read.
        key: Arc<str>,
    },
    /// A write stored an entry (`set`, `set_entry`, each item of `set_many`, and a
    /// `set_if_absent` that wrote).
    Set {
        /// The backend name.
        backend: Arc<str>,
        /// The key written.
        key: Arc<str>,
    },
    /// `delete` removed a key, or found it absent.
    Delete {
        /// The backend name.
        backend: Arc<str>,
        /// The key deleted.
        key: Arc<str>,
        /// Whether it held an entry.
        existed: bool,
    },
    /// `delete_many` ran. Backends report only how many keys existed, not which.
    DeleteMany {
        /// The backend name.
        backend: Arc<str>,
        /// The keys asked for, in the order asked.
        keys: Arc<[Arc<str>]>,
        /// How many distinct keys existed and were removed.
        removed: u64,
    },
    /// `delete_pattern` ran.
    DeletePattern {
        /// The backend name.
        backend: Arc<str>,
        /// The glob, as the layer emitting the event saw it.
        pattern: Arc<str>,
        /// How many keys it removed.
        removed: u64,
    },
    /// `clear` removed every key of a namespace.
    Cleared {
        /// The backend name.
        backend: Arc<str>,
    },
    /// An operation failed.
    Error {
        /// The backend name.
        backend: Arc<str>,
        /// The operation.
        operation: Operation,
        /// What went wrong.
        kind: ErrorKind,
    },
    /// A circuit breaker changed state.
    CircuitStateChanged {
        /// The backend name.
        backend: Arc<str>,
        /// The state it left.
        from: CircuitState,
        /// The state it entered.
        to: CircuitState,
    },
}

impl CacheEvent {
    /// A short, stable, snake_case name of the event's kind (`"hit"`, `"set"`,
    /// `"circuit_state_changed"` ...).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::Disconnected { .. } => "disconnected",
            Self::Evicted { .. } => "evicted",
            Self::Hit { .. } => "hit",
            Self::Miss { .. } => "miss",
            Self::Set { .. } => "set",
            Self::Delete { .. } => "delete",
            Self::DeleteMany { .. } => "delete_many",
            Self::DeletePattern { .. } => "delete_pattern",
            Self::Cleared { .. } => "cleared",
            Self::Error { .. } => "error",
            Self::CircuitStateChanged { .. } => "circuit_state_changed",
        }
    }

    /// The backend the event is about.
    #[must_use]
    pub fn backend(&self) -> &str {
        match self {
            Self::Connected { backend }
            | Self::Disconnected { backend, .. }
            | Self::Evicted { backend, .. }
            | Self::Hit { backend, .. }
            | Self::Miss { backend, .. }
            | Self::Set { backend, .. }
            | Self::Delete { backend, .. }
            | Self::DeleteMany { backend, .. }
            | Self::DeletePattern { backend, .. }
            | Self::Cleared { backend }
            | Self::Error { backend, .. }
            | Self::CircuitStateChanged { backend, .. } => backend,
        }
    }
}

/// The default number of events a lagging subscriber may fall behind before losing some.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// The default capacity of each handler's queue.
pub const DEFAULT_HANDLER_CAPACITY: usize = 1024;

/// A synchronous event handler, registered with [`EventBus::register`].
///
/// It runs on a thread of its own, fed by a bounded queue, so it may block (write a file, call
/// a blocking client) without ever delaying a cache operation; while it is busy, events beyond
/// its queue's capacity are dropped for it and counted. Any `Fn(&CacheEvent)` closure is a
/// handler.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event. A panic is caught and counted; the handler keeps receiving.
    fn handle(&self, event: &CacheEvent);

    /// The handler's label in [`HandlerStats`] and metrics. Default `"handler"`.
    fn name(&self) -> &str {
        "handler"
    }
}

impl<F> EventHandler for F
where
    F: Fn(&CacheEvent) + Send + Sync + 'static,
{
    fn handle(&self, event: &CacheEvent) {
        self(event);
    }
}

/// An asynchronous event handler, registered with [`EventBus::register_async`].
///
/// It runs on a tokio task of its own, fed by a bounded queue, so it may await (a network
/// call, a semaphore) without delaying a cache operation. It must not block its thread: use an
/// [`EventHandler`] for blocking work.
#[async_trait]
pub trait AsyncEventHandler: Send + Sync + 'static {
    /// Handles one event. A panic is caught and counted; the handler keeps receiving.
    async fn handle(&self, event: CacheEvent);

    /// The handler's label in [`HandlerStats`] and metrics. Default `"handler"`.
    fn name(&self) -> &str {
        "handler"
    }
}

/// Identifies a registered handler, to [`unregister`](EventBus::unregister) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

/// What happened to the events offered to one handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerStats {
    /// The handler.
    pub id: HandlerId,
    /// Its name ([`EventHandler::name`]).
    pub name: String,
    /// Its queue's capacity.
    pub capacity: usize,
    /// Events it handled (including those where it panicked).
    pub handled: u64,
    /// Events dropped because its queue was full.
    pub dropped: u64,
    /// Events during which it panicked.
    pub panicked: u64,
}

/// Subscribers are counted in the low bits of the listener word, handlers in the high bits, so
/// "is anyone listening" is one atomic load.
const HANDLER_UNIT: u64 = 1 << 48;
const SUBSCRIBER_MASK: u64 = HANDLER_UNIT - 1;

/// A bus of [`CacheEvent`]s for broadcast subscribers and registered handlers. Cloning it gives
/// another handle to the same bus.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use std::sync::mpsc;
/// use std::sync::Mutex;
/// use lexicache_core::events::{CacheEvent, EventBus};
///
/// let bus = EventBus::new();
///
/// // A broadcast subscriber.
/// let mut rx = bus.subscribe();
///
/// // A handler: any `Fn(&CacheEvent)`, run on its own thread behind a bounded queue.
/// let (tx, seen) = mpsc::channel();
/// let tx = Mutex::new(tx);
/// let id = bus.register(move |e: &CacheEvent| {
///     let _ = tx.lock().unwrap().send(e.name());
/// })?;
///
/// bus.emit_with(|| CacheEvent::Connected { backend: "redis".into() });
/// assert!(matches!(rx.recv().await, Ok(CacheEvent::Connected { .. })));
/// assert_eq!(seen.recv().unwrap(), "connected");
///
/// let stats = bus.unregister(id).expect("was registered");
/// assert_eq!(stats.dropped, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

struct Shared {
    tx: broadcast::Sender<CacheEvent>,
    /// Subscribers (an upper bound: receivers do not say when they drop) in the low bits,
    /// handlers in the high bits.
    listeners: AtomicU64,
    handlers: RwLock<Vec<Arc<Slot>>>,
    next_id: AtomicU64,
    handler_capacity: usize,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.shared.tx.receiver_count())
            .field("handlers", &self.handlers().len())
            .field("handler_capacity", &self.shared.handler_capacity)
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with [`DEFAULT_EVENT_CAPACITY`] for subscribers and [`DEFAULT_HANDLER_CAPACITY`]
    /// for each handler's queue.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_EVENT_CAPACITY)
    }

    /// A bus where a subscriber may lag `capacity` events behind (at least 1). Handlers' queues
    /// hold [`DEFAULT_HANDLER_CAPACITY`] events.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacities(capacity, DEFAULT_HANDLER_CAPACITY)
    }

    /// A bus where a subscriber may lag `subscriber_capacity` events behind and each handler's
    /// queue holds `handler_capacity` events, unless registered with its own (both at least 1).
    #[must_use]
    pub fn with_capacities(subscriber_capacity: usize, handler_capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(subscriber_capacity.max(1));
        Self {
            shared: Arc::new(Shared {
                tx,
                listeners: AtomicU64::new(0),
                handlers: RwLock::new(Vec::new()),
                next_id: AtomicU64::new(1),
                handler_capacity: handler_capacity.max(1),
            }),
        }
    }

    /// A new subscriber that receives every event emitted from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        // The receiver exists before it is counted, so `has_subscribers` never clears the
        // count of a receiver it could not see.
        let rx = self.shared.tx.subscribe();
        self.shared.listeners.fetch_add(1, Ordering::AcqRel);
        rx
    }

    /// Registers a synchronous handler with the bus's default queue capacity. It receives every
    /// event emitted from now on, on a thread of its own, until it is
    /// [unregistered](Self::unregister) or every handle to the bus is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Backend`] when the operating system refuses a new thread.
    pub fn register(&self, handler: impl EventHandler) -> Result<HandlerId> {
        self.register_with_capacity(handler, self.shared.handler_capacity)
    }

    /// Registers a synchronous handler whose queue holds `capacity` events (at least 1).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub fn register_with_capacity(
        &self,
        handler: impl EventHandler,
        capacity: usize,
    ) -> Result<HandlerId> {
        let capacity = capacity.max(1);
        let id = HandlerId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let counters = Arc::new(Counters::new(handler.name()));
        let (tx, rx) = std::sync::mpsc::sync_channel::<CacheEvent>(capacity);
        let drain = counters.clone();
        std::thread::Builder::new()
            .name(format!("lexicache-events-{}", id.0))
            .spawn(move || {
                while let Ok(event) = rx.recv() {
                    if drain.closed.load(Ordering::Acquire) {
                        break;
                    }
                    let outcome = catch_unwind(AssertUnwindSafe(|| handler.handle(&event)));
                    drain.handled(outcome.is_err());
                }
            })
            .map_err(|e| {
                Error::new(ErrorKind::Backend, "events")
                    .with_message("could not start an event handler thread")
                    .with_source(e)
            })?;
        self.insert(Slot {
            id,
            capacity,
            queue: Queue::Thread(tx),
            counters,
        });
        Ok(id)
    }

    /// Registers an asynchronous handler with the bus's default queue capacity, drained by a
    /// task on the current tokio runtime. It receives every event emitted from now on until it
    /// is [unregistered](Self::unregister), every handle to the bus is dropped, or the runtime
    /// shuts down.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when called outside a tokio runtime.
    pub fn register_async(&self, handler: impl AsyncEventHandler) -> Result<HandlerId> {
        self.register_async_with_capacity(handler, self.shared.handler_capacity)
    }

    /// Registers an asynchronous handler whose queue holds `capacity` events (at least 1).
    ///
    /// # Errors
    ///
    /// As [`register_async`](Self::register_async).
    pub fn register_async_with_capacity(
        &self,
        handler: impl AsyncEventHandler,
        capacity: usize,
    ) -> Result<HandlerId> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::new(ErrorKind::Config, "events")
                .with_message("an async event handler needs a tokio runtime")
                .with_source(e)
        })?;
        let capacity = capacity.max(1);
        let id = HandlerId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let counters = Arc::new(Counters::new(handler.name()));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<CacheEvent>(capacity);
        let drain = counters.clone();
        runtime.spawn(async move {
            while let Some(event) = rx.recv().await {
                if drain.closed.load(Ordering::Acquire) {
                    break;
                }
                let outcome = CatchUnwind(handler.handle(event)).await;
                drain.handled(outcome.is_err());
            }
        });
        self.insert(Slot {
            id,
            capacity,
            queue: Queue::Task(tx),
            counters,
        });
        Ok(id)
    }

    /// Removes a handler, returning its final stats, or `None` if it was not registered.
    ///
    /// No event emitted after this returns reaches it, and events still in its queue are
    /// discarded; a call to the handler already running finishes.
    pub fn unregister(&self, id: HandlerId) -> Option<HandlerStats> {
        let slot = {
            let mut handlers = self
                .shared
                .handlers
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let at = handlers.iter().position(|s| s.id == id)?;
            handlers.remove(at)
        };
        self.shared
            .listeners
            .fetch_sub(HANDLER_UNIT, Ordering::AcqRel);
        slot.counters.closed.store(true, Ordering::Release);
        Some(slot.stats())
        // Dropping the slot drops the queue's sender: the drain ends once it sees that.
    }

    /// The stats of every registered handler, in registration order.
    #[must_use]
    pub fn handler_stats(&self) -> Vec<HandlerStats> {
        self.handlers().iter().map(|s| s.stats()).collect()
    }

    /// Whether anyone may be listening: a subscriber or a handler. Cheap: one atomic load in
    /// the common case of neither.
    #[inline]
    #[must_use]
    pub fn has_subscribers(&self) -> bool {
        let listeners = self.shared.listeners.load(Ordering::Relaxed);
        listeners != 0 && self.confirm(listeners)
    }

    /// Emits the event built by `make`, building it only if someone is listening.
    ///
    /// Never blocks: subscribers get it through the broadcast channel, handlers through a
    /// `try_send` on their queues (a full queue drops it for that handler and counts the drop).
    #[inline]
    pub fn emit_with(&self, make: impl FnOnce() -> CacheEvent) {
        let listeners = self.shared.listeners.load(Ordering::Relaxed);
        if listeners != 0 && self.confirm(listeners) {
            self.deliver(make());
        }
    }

    /// Whether a nonzero listener word still means someone listens. Receivers do not tell us
    /// when they drop, so when every one is gone, the subscriber count is cleared here.
    fn confirm(&self, listeners: u64) -> bool {
        if listeners & SUBSCRIBER_MASK == 0 || self.shared.tx.receiver_count() > 0 {
            return true;
        }
        // Clears the subscriber bits only if nobody subscribed meanwhile (that changes the
        // word, and its receiver would be counted by `receiver_count`).
        let handlers_only = listeners & !SUBSCRIBER_MASK;
        match self.shared.listeners.compare_exchange(
            listeners,
            handlers_only,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => handlers_only != 0,
            Err(_) => true,
        }
    }

    fn deliver(&self, event: CacheEvent) {
        let listeners = self.shared.listeners.load(Ordering::Relaxed);
        if listeners >= HANDLER_UNIT {
            for slot in self.handlers().iter() {
                slot.offer(&event);
            }
        }
        if listeners & SUBSCRIBER_MASK != 0 {
            // An error only means every receiver dropped meanwhile; events are best effort.
            let _ = self.shared.tx.send(event);
        }
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Slot>>> {
        self.shared
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, slot: Slot) {
        let mut handlers = self
            .shared
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        handlers.push(Arc::new(slot));
        self.shared
            .listeners
            .fetch_add(HANDLER_UNIT, Ordering::AcqRel);
    }
}

/// One registered handler, as the bus sees it.
struct Slot {
    id: HandlerId,
    capacity: usize,
    queue: Queue,
    counters: Arc<Counters>,
}

enum Queue {
    Thread(std::sync::mpsc::SyncSender<CacheEvent>),
    Task(tokio::sync::mpsc::Sender<CacheEvent>),
}

impl Slot {
    fn offer(&self, event: &CacheEvent) {
        let sent = match &self.queue {
            Queue::Thread(tx) => tx.try_send(event.clone()).is_ok(),
            Queue::Task(tx) => tx.try_send(event.clone()).is_ok(),
        };
        // A failed send is a full queue, or a drain that ended (its runtime shut down): either
        // way the handler will not see this event.
        if !sent {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.dropped_metric.increment(1);
        }
    }

    fn stats(&self) -> HandlerStats {
        let c = &self.counters;
        HandlerStats {
            id: self.id,
            name: c.name.clone(),
            capacity: self.capacity,
            handled: c.handled.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
        }
    }
}

/// Counters shared by a handler's slot and its drain.
struct Counters {
    name: String,
    handled: AtomicU64,
    dropped: AtomicU64,
    panicked: AtomicU64,
    /// Set when unregistered, so the drain discards what is left in the queue.
    closed: AtomicBool,
    dropped_metric: metrics::Counter,
    panics_metric: metrics::Counter,
}

impl Counters {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            handled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            dropped_metric: metrics::counter!(EVENTS_DROPPED_TOTAL, "handler" => name.to_owned()),
            panics_metric: metrics::counter!(
                EVENT_HANDLER_PANICS_TOTAL,
                "handler" => name.to_owned()
            ),
        }
    }

    fn handled(&self, panicked: bool) {
        if panicked {
            self.panicked.fetch_add(1, Ordering::Relaxed);
            self.panics_metric.increment(1);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls a handler's future, turning a panic into an `Err`.
struct CatchUnwind<'a>(Pin<Box<dyn Future<Output = ()> + Send + 'a>>);

impl Future for CatchUnwind<'_> {
    type Output = std::thread::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.get_mut().0;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    fn connected() -> CacheEvent {
        CacheEvent::Connected {
            backend: "x".into(),
        }
    }

    /// A handler that forwards every event to the test; dropped when its drain ends.
    fn forwarder() -> (impl EventHandler, mpsc::Receiver<CacheEvent>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handler = move |e: &CacheEvent| {
            let _ = tx.lock().unwrap().send(e.clone());
        };
        (handler, rx)
    }

    #[tokio::test]
    async fn events_reach_every_subscriber() {
        let bus = EventBus::new();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        bus.emit_with(connected);
        assert!(a.recv().await.is_ok());
        assert!(b.recv().await.is_ok());
    }

    #[test]
    fn no_event_is_built_without_listeners() {
        let bus = EventBus::new();
        bus.emit_with(|| panic!("built an event nobody listens to"));
        let rx = bus.subscribe();
        drop(rx);
        bus.emit_with(|| panic!("built an event after the last subscriber left"));
        assert!(!bus.has_subscribers());
        let id = bus.register(|_: &CacheEvent| {}).unwrap();
        assert!(bus.has_subscribers());
        bus.unregister(id);
        bus.emit_with(|| panic!("built an event after the last handler left"));
    }

    #[test]
    fn a_handler_receives_events_in_order() {
        let bus = EventBus::new();
        let (handler, rx) = forwarder();
        bus.register(handler).unwrap();
        for n in 0..10 {
            bus.emit_with(|| CacheEvent::Hit {
                backend: "x".into(),
                key: n.to_string().into(),
            });
        }
        for n in 0..10 {
            let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(
                got,
                CacheEvent::Hit {
                    backend: "x".into(),
                    key: n.to_string().into()
                }
            );
        }
    }

    #[test]
    fn a_full_handler_queue_drops_and_counts_exactly() {
        let bus = EventBus::new();
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release_tx, release) = mpsc::channel::<()>();
        let (entered_tx, release) = (Mutex::new(entered_tx), Mutex::new(release));
        let id = bus
            .register_with_capacity(
                move |_: &CacheEvent| {
                    let _ = entered_tx.lock().unwrap().send(());
                    let _ = release.lock().unwrap().recv();
                },
                4,
            )
            .unwrap();
        // The first event is taken off the queue and blocks the handler.
        bus.emit_with(connected);
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        // Four fill the queue; three more are dropped.
        for _ in 0..7 {
            bus.emit_with(connected);
        }
        let stats = bus.handler_stats();
        assert_eq!((stats[0].dropped, stats[0].capacity), (3, 4));
        for _ in 0..5 {
            release_tx.send(()).unwrap();
        }
        for _ in 0..4 {
            entered.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        let stats = bus.unregister(id).unwrap();
        assert_eq!(stats.dropped, 3);
    }

    #[test]
    fn a_panicking_handler_is_contained_and_counted() {
        let bus = EventBus::new();
        let (handler, rx) = forwarder();
        bus.register(|e: &CacheEvent| {
            if matches!(e, CacheEvent::Connected { .. }) {
                panic!("handler bug");
            }
        })
        .unwrap();
        bus.register(handler).unwrap();
        bus.emit_with(connected);
        bus.emit_with(|| CacheEvent::Cleared {
            backend: "x".into(),
        });
        // The other handler sees both; the panicking one handled both and panicked once.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            connected()
        );
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            CacheEvent::Cleared { .. }
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while bus.handler_stats()[0].handled < 2 {
            assert!(std::time::Instant::now() < deadline, "handler stalled");
            std::thread::yield_now();
        }
        assert_eq!(bus.handler_stats()[0].panicked, 1);
    }

    #[test]
    fn unregistering_stops_delivery_and_ends_the_drain() {
        let bus = EventBus::new();
        let (handler, rx) = forwarder();
        let id = bus.register(handler).unwrap();
        bus.emit_with(connected);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            connected()
        );
        assert!(bus.unregister(id).is_some());
        assert!(bus.unregister(id).is_none());
        bus.emit_with(connected);
        // The drain ends and drops the handler (and its sender) without another event.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }

    struct Gate {
        open: Arc<tokio::sync::Semaphore>,
        seen: tokio::sync::mpsc::UnboundedSender<CacheEvent>,
    }

    #[async_trait]
    impl AsyncEventHandler for Gate {
        async fn handle(&self, event: CacheEvent) {
            let _permit = self.open.acquire().await;
            if matches!(event, CacheEvent::Cleared { .. }) {
                panic!("async handler bug");
            }
            let _ = self.seen.send(event);
        }
        fn name(&self) -> &str {
            "gate"
        }
    }

    #[tokio::test]
    async fn an_async_handler_drops_when_full_and_survives_panics() {
        let bus = EventBus::new();
        let (seen, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        let gate = Gate {
            open: open.clone(),
            seen,
        };
        bus.register_async_with_capacity(gate, 2).unwrap();
        bus.emit_with(connected);
        // Let the drain take the first event off the queue and wait at the gate.
        let queue_empty = || match &bus.handlers()[0].queue {
            Queue::Task(tx) => tx.capacity() == 2,
            Queue::Thread(_) => unreachable!("an async handler has a task queue"),
        };
        while !queue_empty() {
            tokio::task::yield_now().await;
        }
        bus.emit_with(|| CacheEvent::Cleared {
            backend: "x".into(),
        });
        for _ in 0..4 {
            bus.emit_with(connected);
        }
        let stats = &bus.handler_stats()[0];
        assert_eq!((stats.name.as_str(), stats.dropped), ("gate", 3));
        open.add_permits(100);
        assert_eq!(rx.recv().await, Some(connected()));
        assert_eq!(rx.recv().await, Some(connected()));
        assert_eq!(bus.handler_stats()[0].panicked, 1);
    }

    #[test]
    fn async_registration_outside_a_runtime_is_a_config_error() {
        let (seen, _rx) = tokio::sync::mpsc::unbounded_channel();
        let gate = Gate {
            open: Arc::new(tokio::sync::Semaphore::new(1)),
            seen,
        };
        let err = EventBus::new().register_async(gate).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn event_names_and_backends() {
        let e = CacheEvent::CircuitStateChanged {
            backend: "redis".into(),
            from: CircuitState::Closed,
            to: CircuitState::Open,
        };
        assert_eq!((e.name(), e.backend()), ("circuit_state_changed", "redis"));
    }
}
