//! [`TieredBackendBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Error, ErrorKind, Operation, Result, SharedBackend, SharedPubSub};
use lexicache_memory::MemoryBackend;

use crate::backend::{Shared, TieredBackend};
use crate::gate::Gate;
use crate::message::{heartbeat_channel, INVALIDATION_CHANNEL};
use crate::sync::{run_heartbeats, run_publisher, run_subscriber, Sync};

/// How long an L1 copy lives at most, by default.
pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(30);
/// How long after a write returns another process may still read the old value from its L1,
/// at most, by default.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_millis(500);
/// How many heartbeats are sent per `max_staleness`, by default.
const HEARTBEATS_PER_LEASE: u32 = 5;

/// Builds a [`TieredBackend`]. Made by [`TieredBackend::builder`].
pub struct TieredBackendBuilder {
    l1: MemoryBackend,
    l2: SharedBackend,
    name: String,
    l1_ttl: Duration,
    invalidation: Option<SharedPubSub>,
    max_staleness: Duration,
    heartbeat_interval: Option<Duration>,
}

impl fmt::Debug for TieredBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredBackendBuilder")
            .field("name", &self.name)
            .field("l1", &self.l1)
            .field("l2", &self.l2)
            .field("l1_ttl", &self.l1_ttl)
            .field("invalidation", &self.invalidation)
            .field("max_staleness", &self.max_staleness)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish()
    }
}

impl TieredBackendBuilder {
    pub(crate) fn new(l1: MemoryBackend, l2: SharedBackend) -> Self {
        Self {
            name: format!("tiered({})", l2.name()),
            l1,
            l2,
            l1_ttl: DEFAULT_L1_TTL,
            invalidation: None,
            max_staleness: DEFAULT_MAX_STALENESS,
            heartbeat_interval: None,
        }
    }

    /// The name used in errors, metrics and logs; `tiered(<l2 name>)` by default.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long an L1 copy lives at most ([`DEFAULT_L1_TTL`] by default). A copy also never
    /// outlives the TTL it was written with, nor, where L2 tells, what the entry has left in L2.
    #[must_use]
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = ttl;
        self
    }

    /// Publishes every change on `pubsub` and drops what other processes change from L1
    /// (see the [crate docs](crate)). For a Redis L2, pass `RedisBackend::pubsub()` of the
    /// same backend. Without it, only this process's own changes reach its L1: use it alone
    /// for a single process, or where staleness up to the L1 TTL is acceptable.
    #[must_use]
    pub fn invalidation(mut self, pubsub: SharedPubSub) -> Self {
        self.invalidation = Some(pubsub);
        self
    }

    /// The bound of the guarantee: a write that returned more than this long ago is never
    /// read from another process's L1 ([`DEFAULT_MAX_STALENESS`] by default). L1 is bypassed
    /// whenever the subscription cannot prove it is this fresh.
    #[must_use]
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// How often the subscription's lease is renewed (a fifth of `max_staleness` by default).
    /// It must be shorter than `max_staleness`; shorter still leaves room for a slow round
    /// trip before L1 is bypassed.
    #[must_use]
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat_interval = Some(every);
        self
    }

    fn config_error(&self, message: String) -> Error {
        Error::new(ErrorKind::Config, self.name.clone())
            .with_operation(Operation::Connect)
            .with_message(message)
    }

    /// Builds the backend: with an invalidation channel, subscribes and starts the publisher
    /// and heartbeat tasks. It returns once the subscription's connection is set up; L1 is
    /// bypassed until the subscription is active and its lease holds
    /// ([`TieredBackend::wait_until_serving`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a zero L1 TTL or `max_staleness`, a heartbeat interval not
    /// shorter than `max_staleness`, a call outside a tokio runtime, or a subscription the
    /// transport refuses.
    pub async fn build(self) -> Result<TieredBackend> {
        if self.l1_ttl.is_zero() {
            return Err(self.config_error("l1_ttl must be more than zero".into()));
        }
        let Some(pubsub) = self.invalidation.clone() else {
            let shared = Arc::new(self.shared(None));
            return Ok(TieredBackend::from_parts(shared, Vec::new()));
        };
        if self.max_staleness < Duration::from_millis(1) {
            return Err(self.config_error("max_staleness must be at least 1 ms".into()));
        }
        let every = self
            .heartbeat_interval
            .unwrap_or(self.max_staleness / HEARTBEATS_PER_LEASE);
        if every.is_zero() || every >= self.max_staleness {
            return Err(self.config_error(format!(
                "heartbeat_interval ({every:?}) must be more than zero and less than \
                 max_staleness ({:?})",
                self.max_staleness
            )));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(self.config_error(
                "a tiered backend with invalidation must be built within a tokio runtime".into(),
            ));
        }
        let (sync, queue) = Sync::new(pubsub.clone(), self.max_staleness, every)?;
        let heartbeat = heartbeat_channel(sync.id);
        let subscription = pubsub
            .subscribe(&[INVALIDATION_CHANNEL.to_owned(), heartbeat.clone()])
            .await
            .map_err(|e| e.with_backend(self.name.clone()))?;
        let shared = Arc::new(self.shared(Some(sync)));
        let tasks = vec![
            tokio::spawn(run_subscriber(
                shared.clone(),
                subscription,
                heartbeat.clone(),
            )),
            tokio::spawn(run_publisher(shared.clone(), queue)),
            tokio::spawn(run_heartbeats(shared.clone(), heartbeat)),
        ];
        Ok(TieredBackend::from_parts(shared, tasks))
    }

    fn shared(self, sync: Option<Sync>) -> Shared {
        Shared {
            name: Arc::from(self.name),
            l1: self.l1,
            l2: self.l2,
            l1_ttl: self.l1_ttl,
            gate: Gate::new(),
            sync,
        }
    }
}
