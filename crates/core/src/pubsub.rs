//! Publish/subscribe: the transport cross-process invalidation rides on.
//!
//! A [`PubSub`] publishes opaque payloads on named channels and opens [`Subscription`]s, each
//! on a connection of its own. It says nothing of what the payloads mean: the two-level cache
//! (`lexicache-tiered`) defines its invalidation messages on top of it, and the Redis backend
//! (`lexicache-redis`) implements it with `PUBLISH`/`SUBSCRIBE` (sharded in a cluster).
//!
//! A subscription reports its own state as well as its messages, because a subscriber that
//! relies on messages must know when it may have missed some:
//!
//! - [`SubscriptionEvent::Active`]: the subscription is in place; every message published
//!   after this event was sent will be delivered, in the order the server accepted them, until
//!   a [`Lost`](SubscriptionEvent::Lost) or [`Lagged`](SubscriptionEvent::Lagged) event.
//! - [`SubscriptionEvent::Lost`]: the connection or the subscription is gone; messages
//!   published from now until the next `Active` are lost. The implementation reconnects and
//!   subscribes again by itself.
//! - [`SubscriptionEvent::Lagged`]: the subscriber fell behind and some messages were dropped
//!   to keep memory bounded.
//!
//! Channel names are relative: an implementation maps them into its own namespace (the Redis
//! backend prefixes them with its key prefix), so two namespaces never hear each other.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::Result;

/// A shared, dynamically chosen publish/subscribe transport.
pub type SharedPubSub = Arc<dyn PubSub>;

/// Publishes payloads on channels and opens subscriptions. See the [module docs](self).
#[async_trait]
pub trait PubSub: Send + Sync + fmt::Debug + 'static {
    /// A short name used in errors and logs (the backend's name).
    fn name(&self) -> &str;

    /// Publishes `payload` on `channel`, resolving once the server has accepted it: from then
    /// on, every subscription that was [`Active`](SubscriptionEvent::Active) when the server
    /// accepted it receives it (or reports `Lost` or `Lagged`).
    ///
    /// # Errors
    ///
    /// The transport's connection and timeout errors; the message may or may not have been
    /// published.
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<()>;

    /// Opens a subscription to `channels` on a connection of its own, reconnecting and
    /// subscribing again by itself until the [`Subscription`] is dropped.
    ///
    /// It returns once the connection is set up; the first event is `Active` once the server
    /// has confirmed the subscription, or `Lost` if it cannot be reached.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for settings the transport cannot use.
    async fn subscribe(&self, channels: &[String]) -> Result<Subscription>;
}

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// The subscription is in place: messages published from now on are delivered.
    Active,
    /// The subscription is down: messages published until the next `Active` are lost.
    Lost {
        /// Why, for logs (never credentials).
        reason: String,
    },
    /// The subscriber fell behind and this many messages were dropped.
    Lagged(u64),
    /// A message.
    Message {
        /// The channel, as given to [`PubSub::subscribe`].
        channel: String,
        /// The payload, as published.
        payload: Bytes,
    },
}

/// An open subscription: a bounded queue of [`SubscriptionEvent`]s.
///
/// Dropping it stops the subscription and closes its connection.
pub struct Subscription {
    events: mpsc::Receiver<SubscriptionEvent>,
    _on_drop: OnDrop,
}

struct OnDrop(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// A subscription reading `events`, running `on_drop` when it is dropped (an
    /// implementation stops its connection task there).
    pub fn new(
        events: mpsc::Receiver<SubscriptionEvent>,
        on_drop: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        Self {
            events,
            _on_drop: OnDrop(Some(Box::new(on_drop))),
        }
    }

    /// The next event, or `None` once the implementation has stopped for good.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is never lost by dropping the future.
    pub async fn recv(&mut self) -> Option<SubscriptionEvent> {
        self.events.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<SubscriptionEvent> {
        self.events.try_recv().ok()
    }
}
