//! Cache events and the bus that delivers them to subscribers.
//!
//! Events are best effort: a slow subscriber that falls more than the bus capacity behind loses
//! the oldest events (it sees `RecvError::Lagged`), and a bus with no subscriber costs one
//! atomic load per event.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::error::{ErrorKind, Operation};

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
    /// An operation failed.
    Error {
        /// The backend name.
        backend: Arc<str>,
        /// The operation.
        operation: Operation,
        /// What went wrong.
        kind: ErrorKind,
    },
}

/// The default number of events a lagging subscriber may fall behind before losing some.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// A broadcast bus of [`CacheEvent`]s. Cloning it gives another handle to the same bus.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use lexicache_core::events::{CacheEvent, EventBus};
///
/// let bus = EventBus::new();
/// let mut rx = bus.subscribe();
/// bus.emit_with(|| CacheEvent::Connected { backend: "redis".into() });
/// assert!(matches!(rx.recv().await, Ok(CacheEvent::Connected { .. })));
/// # }
/// ```
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<CacheEvent>,
    subscribers: Arc<AtomicUsize>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with [`DEFAULT_EVENT_CAPACITY`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_EVENT_CAPACITY)
    }

    /// A bus where a subscriber may lag `capacity` events behind.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A new subscriber that receives every event emitted from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        self.tx.subscribe()
    }

    /// Whether anyone may be listening. Cheap: one atomic load in the common no-subscriber case.
    #[inline]
    #[must_use]
    pub fn has_subscribers(&self) -> bool {
        if self.subscribers.load(Ordering::Relaxed) == 0 {
            return false;
        }
        // Receivers do not tell us when they drop, so confirm and fix the count when all are gone.
        if self.tx.receiver_count() == 0 {
            self.subscribers.store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Emits the event built by `make`, building it only if someone is listening.
    #[inline]
    pub fn emit_with(&self, make: impl FnOnce() -> CacheEvent) {
        if self.has_subscribers() {
            // An error only means every receiver dropped meanwhile; events are best effort.
            let _ = self.tx.send(make());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_every_subscriber() {
        let bus = EventBus::new();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        bus.emit_with(|| CacheEvent::Connected {
            backend: "x".into(),
        });
        assert!(a.recv().await.is_ok());
        assert!(b.recv().await.is_ok());
    }

    #[test]
    fn no_event_is_built_without_subscribers() {
        let bus = EventBus::new();
        bus.emit_with(|| panic!("built an event nobody listens to"));
        let rx = bus.subscribe();
        drop(rx);
        bus.emit_with(|| panic!("built an event after the last subscriber left"));
        assert!(!bus.has_subscribers());
    }
}
