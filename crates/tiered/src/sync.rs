//! Cross-process invalidation: the publisher, the subscriber and the heartbeat lease.
//!
//! # What is published
//!
//! Every change a process makes to L2 (write, delete, batch, pattern delete, clear, and so tag
//! invalidations, which are writes of version keys) is sent, after L2 has it and before the
//! call returns, as an [`Invalidation`] on the namespace's channel. One publisher task per
//! [`TieredBackend`](crate::TieredBackend) numbers them `1, 2, 3 ...` and publishes one at a
//! time, so they leave in order; changes queued while a publish is in flight go together in
//! the next message.
//!
//! # What a subscriber does
//!
//! - It ignores its own messages and drops the keys (or pattern, or everything) of others'.
//! - It remembers the last sequence number of each publisher; a message that does not follow
//!   it is a gap, and L1 is cleared. So is an unreadable message.
//! - When the subscription is lost, L1 is cleared and bypassed; when it is back
//!   (`Active`), L1 is cleared again and publishers' numbering starts afresh.
//! - When the transport reports dropped messages (`Lagged`), L1 is cleared.
//!
//! # The lease: a bound that holds even when nothing is reported
//!
//! A connection can hang without closing, and a subscriber can fall behind without knowing.
//! So each subscriber also publishes a heartbeat, carrying its own send time `t0`, on a channel
//! only it hears, every [`heartbeat_interval`](crate::TieredBackendBuilder::heartbeat_interval).
//! The server delivers one connection's messages in the order it accepted them, so when the
//! heartbeat sent at `t0` arrives, every invalidation of a write that returned before `t0` has
//! been applied. L1 is served only while `now < t0 + max_staleness` for the latest such
//! heartbeat. Hence the guarantee: **a write that returned more than `max_staleness` ago is
//! never read from another process's L1.**

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Bytes, Error, ErrorKind, Operation, Result, SharedPubSub};
use lexicache_core::{Subscription, SubscriptionEvent};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::{Instant, MissedTickBehavior};

use crate::backend::Shared;
use crate::message::{decode_heartbeat, encode_heartbeat, Invalidation, Op, INVALIDATION_CHANNEL};

/// Ops published together at most, when many writes queue behind one publish.
const MAX_BATCH: usize = 512;
/// Publish requests that may wait; writers beyond it wait for room.
const QUEUE: usize = 4096;
/// Publishers whose numbering a subscriber remembers; past it, it forgets them all (each then
/// starts afresh, which is safe: numbering only detects loss on a live subscription).
const MAX_PUBLISHERS: usize = 4096;

/// A change to publish and the writer waiting for it.
pub(crate) struct Request {
    op: Op,
    done: Option<oneshot::Sender<Result<()>>>,
}

/// Counters of the invalidation machinery, for [`TieredStats`](crate::TieredStats).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) keys_invalidated: AtomicU64,
    pub(crate) full_clears: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) losses: AtomicU64,
    pub(crate) lags: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
}

/// The invalidation state of one tiered backend.
pub(crate) struct Sync {
    pub(crate) id: u64,
    pub(crate) pubsub: SharedPubSub,
    pub(crate) max_staleness: Duration,
    pub(crate) heartbeat_interval: Duration,
    /// The lease clock's origin: quanta's TSC clock, a few nanoseconds a read where the OS
    /// clock costs tens, on every L1 hit.
    base: quanta::Instant,
    /// L1 may be served until this many nanoseconds after `base`; 0 when it may not.
    fresh_until: AtomicU64,
    /// The subscription is in place (fills are allowed).
    up: AtomicBool,
    /// When the current subscription became active (nanoseconds after `base`).
    active_at: AtomicU64,
    queue: mpsc::Sender<Request>,
    wake_heartbeat: Notify,
    pub(crate) counters: Counters,
}

impl Sync {
    pub(crate) fn new(
        pubsub: SharedPubSub,
        max_staleness: Duration,
        heartbeat_interval: Duration,
    ) -> Result<(Self, mpsc::Receiver<Request>)> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| {
            Error::new(ErrorKind::Config, "tiered")
                .with_operation(Operation::Connect)
                .with_message(format!("no randomness for the publisher id: {e}"))
        })?;
        let (queue, rx) = mpsc::channel(QUEUE);
        Ok((
            Self {
                id: u64::from_le_bytes(id),
                pubsub,
                max_staleness,
                heartbeat_interval,
                base: quanta::Instant::now(),
                fresh_until: AtomicU64::new(0),
                up: AtomicBool::new(false),
                active_at: AtomicU64::new(0),
                queue,
                wake_heartbeat: Notify::new(),
                counters: Counters::default(),
            },
            rx,
        ))
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(quanta::Instant::now().duration_since(self.base).as_nanos())
            .unwrap_or(u64::MAX)
    }

    /// Whether L1 may be served now.
    #[inline]
    pub(crate) fn serving(&self) -> bool {
        self.now_nanos() < self.fresh_until.load(Ordering::Acquire)
    }

    /// Whether L2 reads may be copied into L1 (the subscription is in place).
    pub(crate) fn may_fill(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether the subscription is in place.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Queues `op` and waits until it is published.
    pub(crate) async fn publish(&self, op: Op, backend: &str) -> Result<()> {
        let (done, rx) = oneshot::channel();
        let request = Request {
            op,
            done: Some(done),
        };
        if self.queue.send(request).await.is_err() {
            return Err(stopped(backend));
        }
        rx.await.unwrap_or_else(|_| Err(stopped(backend)))
    }

    /// Queues `op` without waiting (after a failed write, which may still have landed).
    pub(crate) fn publish_detached(&self, op: Op) {
        let _ = self.queue.try_send(Request { op, done: None });
    }
}

fn stopped(backend: &str) -> Error {
    Error::new(ErrorKind::Connection, backend.to_owned())
        .with_operation(Operation::Set)
        .with_message("the tiered backend's invalidation publisher has stopped")
}

/// The publisher task: numbers queued ops and publishes them in order.
pub(crate) async fn run_publisher(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    let Some(sync) = shared.sync.as_ref() else {
        return;
    };
    let mut seq = 0u64;
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        seq += 1;
        let message = Invalidation {
            publisher: sync.id,
            seq,
            ops: batch.iter().map(|r| r.op.clone()).collect(),
        };
        let result = publish_with_retry(sync, &shared.name, Bytes::from(message.encode())).await;
        match &result {
            Ok(()) => sync.counters.published.fetch_add(1, Ordering::Relaxed),
            Err(_) => sync
                .counters
                .publish_failures
                .fetch_add(1, Ordering::Relaxed),
        };
        for r in batch.drain(..) {
            if let Some(done) = r.done {
                let _ = done.send(result.clone());
            }
        }
    }
}

/// Publishes, retrying for up to `max_staleness`: past it, the bound is lost anyway and the
/// writer is told.
async fn publish_with_retry(sync: &Sync, name: &str, payload: Bytes) -> Result<()> {
    let deadline = Instant::now() + sync.max_staleness;
    let mut pause = Duration::from_millis(5);
    loop {
        match sync
            .pubsub
            .publish(INVALIDATION_CHANNEL, payload.clone())
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Config || Instant::now() + pause >= deadline => {
                tracing::warn!(backend = %name, error = %e, "tiered: invalidation not published");
                return Err(Error::new(e.kind(), name.to_owned())
                    .with_operation(e.operation().unwrap_or(Operation::Set))
                    .with_message(format!(
                        "the change reached L2 but its invalidation was not published ({}); other \
                         processes may serve their L1 copy until it expires or they see the gap",
                        e.message()
                    ))
                    .with_source(e));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// The heartbeat task: keeps the lease of a healthy subscription alive.
pub(crate) async fn run_heartbeats(shared: Arc<Shared>, channel: String) {
    let Some(sync) = shared.sync.as_ref() else {
        return;
    };
    let mut tick = tokio::time::interval(sync.heartbeat_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = sync.wake_heartbeat.notified() => {}
        }
        let sent = sync.now_nanos();
        if let Err(e) = sync
            .pubsub
            .publish(&channel, Bytes::from(encode_heartbeat(sent)))
            .await
        {
            tracing::debug!(backend = %shared.name, error = %e, "tiered: heartbeat not published");
        }
    }
}

/// The subscriber task: applies others' invalidations and keeps the lease.
pub(crate) async fn run_subscriber(shared: Arc<Shared>, mut sub: Subscription, heartbeat: String) {
    let Some(sync) = shared.sync.as_ref() else {
        return;
    };
    let mut publishers: HashMap<u64, u64> = HashMap::new();
    while let Some(event) = sub.recv().await {
        match event {
            SubscriptionEvent::Active => {
                // Whatever was published while we were away is lost: start from an empty L1.
                shared.clear_l1().await;
                publishers.clear();
                sync.active_at.store(sync.now_nanos(), Ordering::Release);
                sync.up.store(true, Ordering::Release);
                sync.wake_heartbeat.notify_one();
                tracing::info!(backend = %shared.name, "tiered: invalidation subscription active");
            }
            SubscriptionEvent::Lost { reason } => {
                sync.counters.losses.fetch_add(1, Ordering::Relaxed);
                sync.up.store(false, Ordering::Release);
                sync.fresh_until.store(0, Ordering::Release);
                shared.clear_l1().await;
                tracing::warn!(backend = %shared.name, %reason, "tiered: invalidation subscription lost; L1 bypassed");
            }
            SubscriptionEvent::Lagged(n) => {
                sync.counters.lags.fetch_add(1, Ordering::Relaxed);
                shared.clear_l1().await;
                publishers.clear();
                tracing::warn!(backend = %shared.name, dropped = n, "tiered: invalidations dropped; L1 cleared");
            }
            SubscriptionEvent::Message { channel, payload } if channel == heartbeat => {
                on_heartbeat(sync, &payload);
            }
            SubscriptionEvent::Message { channel, payload } if channel == INVALIDATION_CHANNEL => {
                sync.counters.received.fetch_add(1, Ordering::Relaxed);
                on_invalidation(&shared, sync, &mut publishers, &payload).await;
            }
            SubscriptionEvent::Message { .. } => {}
        }
    }
    // The transport stopped for good.
    sync.up.store(false, Ordering::Release);
    sync.fresh_until.store(0, Ordering::Release);
    shared.clear_l1().await;
}

fn on_heartbeat(sync: &Sync, payload: &[u8]) {
    let Some(sent) = decode_heartbeat(payload) else {
        return;
    };
    // A heartbeat sent before the current subscription was in place proves nothing.
    if !sync.is_up() || sent < sync.active_at.load(Ordering::Acquire) {
        return;
    }
    sync.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
    let staleness = u64::try_from(sync.max_staleness.as_nanos()).unwrap_or(u64::MAX);
    sync.fresh_until
        .fetch_max(sent.saturating_add(staleness), Ordering::AcqRel);
}

async fn on_invalidation(
    shared: &Shared,
    sync: &Sync,
    publishers: &mut HashMap<u64, u64>,
    payload: &[u8],
) {
    let Some(message) = Invalidation::decode(payload) else {
        tracing::warn!(backend = %shared.name, "tiered: unreadable invalidation; L1 cleared");
        shared.clear_l1().await;
        return;
    };
    if message.publisher == sync.id {
        return;
    }
    if publishers.len() >= MAX_PUBLISHERS && !publishers.contains_key(&message.publisher) {
        publishers.clear();
    }
    let gap = match publishers.insert(message.publisher, message.seq) {
        Some(last) => message.seq != last.wrapping_add(1),
        None => false,
    };
    if gap {
        sync.counters.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = %shared.name, publisher = message.publisher, "tiered: invalidation sequence gap; L1 cleared");
        shared.clear_l1().await;
        return;
    }
    for op in message.ops {
        match op {
            Op::Keys(keys) => {
                for key in &keys {
                    shared.evict(key).await;
                }
                sync.counters
                    .keys_invalidated
                    .fetch_add(keys.len() as u64, Ordering::Relaxed);
            }
            Op::Pattern(glob) => shared.evict_pattern(&glob).await,
            Op::Clear => shared.clear_l1().await,
        }
    }
}
