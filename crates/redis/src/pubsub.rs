//! [`RedisPubSub`]: the [`PubSub`] transport over Redis `PUBLISH`/`SUBSCRIBE` (sharded
//! `SPUBLISH`/`SSUBSCRIBE` in a cluster), which the two-level cache's invalidations ride on.
//! The channel mapping and the delivery guarantees are documented on [`RedisPubSub`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::config::{Options, PerformanceConfig, Server};
use fred::types::{ClusterHash, CustomCommand, Message, Value};
use lexicache_core::{
    async_trait, Bytes, Error, ErrorKind, Operation, PubSub, Result, Subscription,
    SubscriptionEvent,
};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::backend::Shared;
use crate::error::map_error;

/// The `CLIENT SETNAME` of subscriber connections unless set with
/// [`RedisPubSub::with_client_name`].
pub const DEFAULT_SUBSCRIBER_NAME: &str = "lexicache-sub";

/// How many events a [`Subscription`] queues before its task waits for the consumer.
pub const EVENT_QUEUE: usize = 1024;

/// How many messages the subscriber's fred client buffers before the oldest are dropped (and
/// reported as [`SubscriptionEvent::Lagged`]). fred's default, 32, would drop messages at the
/// first burst.
pub const SUBSCRIBER_BROADCAST_CAPACITY: usize = 4096;

/// The suffix inside the hash tag of every channel, so channels never collide with keys.
const CHANNEL_TAG: &str = "__lexicache";

/// How long to wait before subscribing again after a failed attempt or a loss.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Publish/subscribe over the Redis server of a [`RedisBackend`](crate::RedisBackend), in its
/// key prefix. Made by [`RedisBackend::pubsub`](crate::RedisBackend::pubsub).
///
/// # Channels
///
/// Channel names are relative to the backend's key prefix. The channel `name` of a backend
/// with prefix `prefix` is the Redis channel
///
/// ```text
/// {prefix__lexicache}:name
/// ```
///
/// so two prefixes never hear each other, and the braces make a hash tag: every channel of one
/// prefix lives in the same cluster slot, so one sharded subscription on one node carries them
/// all.
///
/// # Subscriptions
///
/// Each [`subscribe`](PubSub::subscribe) opens a fred client of its own (Redis allows only
/// subscription commands on a subscribed connection), named with `CLIENT SETNAME` (default
/// [`DEFAULT_SUBSCRIBER_NAME`], see [`RedisPubSub::with_client_name`]) so it can be found in
/// `CLIENT LIST`. One task per subscription turns fred's notifications into
/// [`SubscriptionEvent`]s:
///
/// - every (re)connection of the subscriber's connection (fred's `reconnect_rx`, which also
///   fires on the first connect) is followed by `SUBSCRIBE` (or one `SSUBSCRIBE` per channel on
///   the node owning the slot) and, once the server has confirmed it, [`Active`]. Standalone
///   `SUBSCRIBE` gets no reply fred hands back, so a `PING` on the same connection follows it:
///   the server answers in order, so the `PING`'s reply proves the subscription is in place.
/// - a connection loss is learned from fred's `error_rx`: fred broadcasts an error whenever a
///   connection's reader ends, so a `CLIENT KILL` or a dead server is seen as soon as the socket
///   closes. A `PING` goes out every half
///   [unresponsive timeout](crate::RedisConfig::unresponsive_timeout); one unanswered for that
///   long makes fred drop the connection with an error too, so a frozen server or a silent
///   network is noticed. `unresponsive_rx` is watched as well, and so are a new connection
///   replacing the subscription's and a cluster topology change that moves its slot. A loss
///   is reported as one [`Lost`] (transitions only), until the next `Active`; the task keeps
///   subscribing again until it succeeds.
/// - messages are forwarded as [`Message`](SubscriptionEvent::Message) with the relative
///   channel name, in the order the connection received them, which is the order the server
///   accepted the `PUBLISH`es. Messages received before a loss are forwarded before its `Lost`.
/// - the subscriber's queue is bounded ([`EVENT_QUEUE`] events): a consumer that does not keep
///   up makes the task wait, fred's own bounded broadcast channel
///   ([`SUBSCRIBER_BROADCAST_CAPACITY`] messages) fills and overflows, and the task reports the
///   dropped messages as [`Lagged`](SubscriptionEvent::Lagged). Memory is bounded by
///   construction, however fast messages come.
///
/// So between an `Active` and the next `Lost` or `Lagged`, every message published on the
/// channels is delivered, in order; whenever messages may have been missed, `Lost` or `Lagged`
/// says so.
///
/// In a cluster, Redis drops sharded subscriptions silently when their slot migrates to
/// another node. The subscription notices when fred learns the new topology (a `MOVED`
/// reply, a reconnection) and then reports `Lost` and subscribes again on the new owner; the
/// messages published in between are covered by that `Lost`, but it comes late.
///
/// Dropping the [`Subscription`] stops the task and `QUIT`s its client.
///
/// Cheap to clone. Publishing goes through the backend's shared client (with its command
/// timeout); each subscription opens a connection of its own.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_core::{Bytes, PubSub, SubscriptionEvent};
/// use lexicache_redis::RedisBackend;
///
/// let cache = RedisBackend::builder().url("redis://127.0.0.1:6390").prefix("app:").connect().await?;
/// let pubsub = cache.pubsub();
/// assert_eq!(pubsub.redis_channel("invalidate"), "{app:__lexicache}:invalidate");
/// let mut sub = pubsub.subscribe(&["invalidate".to_owned()]).await?;
/// assert_eq!(sub.recv().await, Some(SubscriptionEvent::Active));
/// pubsub.publish("invalidate", Bytes::from_static(b"user:1")).await?;
/// assert_eq!(
///     sub.recv().await,
///     Some(SubscriptionEvent::Message {
///         channel: "invalidate".to_owned(),
///         payload: Bytes::from_static(b"user:1"),
///     })
/// );
/// # Ok(()) }
/// ```
///
/// [`Active`]: SubscriptionEvent::Active
/// [`Lost`]: SubscriptionEvent::Lost
///
/// # Cancel safety
///
/// A dropped `publish` may still have been published. A dropped `subscribe` opens nothing.
#[derive(Clone)]
pub struct RedisPubSub {
    shared: Arc<Shared>,
    prefix: Arc<str>,
    client_name: Arc<str>,
}

impl fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPubSub")
            .field("name", &self.shared.name)
            .field("prefix", &self.prefix)
            .field("client_name", &self.client_name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl RedisPubSub {
    pub(crate) fn from_parts(shared: Arc<Shared>, prefix: Arc<str>) -> Self {
        Self {
            shared,
            prefix,
            client_name: Arc::from(DEFAULT_SUBSCRIBER_NAME),
        }
    }

    /// The same transport, naming its subscriber connections `name` (`CLIENT SETNAME`, shown
    /// in `CLIENT LIST`) instead of [`DEFAULT_SUBSCRIBER_NAME`]. Redis client names cannot
    /// hold spaces: each whitespace character becomes `-`.
    #[must_use]
    pub fn with_client_name(mut self, name: &str) -> Self {
        let name: String = name
            .chars()
            .map(|c| if c.is_whitespace() { '-' } else { c })
            .collect();
        self.client_name = Arc::from(name);
        self
    }

    /// The Redis channel that carries the relative channel `name`:
    /// `{prefix__lexicache}:name`.
    #[must_use]
    pub fn redis_channel(&self, name: &str) -> String {
        let mut full =
            String::with_capacity(self.prefix.len() + CHANNEL_TAG.len() + name.len() + 3);
        full.push('{');
        full.push_str(&self.prefix);
        full.push_str(CHANNEL_TAG);
        full.push_str("}:");
        full.push_str(name);
        full
    }

    fn error(&self, err: FredError, op: Operation) -> Error {
        map_error(err, &self.shared.name, op)
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    fn name(&self) -> &str {
        &self.shared.name
    }

    /// `PUBLISH` (`SPUBLISH` in a cluster) through the backend's client. Errors carry
    /// [`Operation::Set`]: a publish is a write.
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<()> {
        let full = self.redis_channel(channel);
        let cmd = &self.shared.cmd;
        let sent = if self.shared.config.is_cluster() {
            cmd.spublish::<i64, _, _>(full, Value::Bytes(payload)).await
        } else {
            cmd.publish::<i64, _, _>(full, Value::Bytes(payload)).await
        };
        sent.map(|_| ()).map_err(|e| self.error(e, Operation::Set))
    }

    /// Opens a dedicated, named connection and subscribes in the background; see
    /// [`RedisPubSub`]. Errors carry [`Operation::Connect`].
    async fn subscribe(&self, channels: &[String]) -> Result<Subscription> {
        let config_error = |message: &str| {
            Error::new(ErrorKind::Config, self.shared.name.to_string())
                .with_operation(Operation::Connect)
                .with_message(message.to_owned())
        };
        if channels.is_empty() {
            return Err(config_error("a subscription needs at least one channel"));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(config_error(
                "subscribe must be called within a tokio runtime",
            ));
        }
        let config = &self.shared.config;
        // Lazy: the first connection is retried with the reconnect policy like every later
        // one, and reported as `Lost` while it fails.
        let mut builder = config.fred_builder(true);
        builder.with_performance_config(|perf: &mut PerformanceConfig| {
            perf.broadcast_channel_capacity = SUBSCRIBER_BROADCAST_CAPACITY;
        });
        let client = builder
            .build()
            .map_err(|e| self.error(e, Operation::Connect))?;

        let mut relative = HashMap::with_capacity(channels.len());
        let mut full = Vec::with_capacity(channels.len());
        for name in channels {
            let redis = self.redis_channel(name);
            if relative.insert(redis.clone(), name.clone()).is_none() {
                full.push(redis);
            }
        }
        let cluster = config.is_cluster();
        let slot = fred::util::redis_keyslot(full[0].as_bytes());
        let wait = config.command_timeout.max(config.connect_timeout);
        let heartbeat = config
            .unresponsive_timeout
            .map(|t| (t / 2).max(Duration::from_millis(10)));
        let (events, queue) = mpsc::channel(EVENT_QUEUE);
        let (stop, stopped) = oneshot::channel();
        let task = Task {
            // Every receiver is taken before connecting, so the first connection is seen.
            notices: Notices {
                messages: client.message_rx(),
                errors: client.error_rx(),
                unresponsive: client.unresponsive_rx(),
                reconnects: client.reconnect_rx(),
                topology: client.cluster_change_rx(),
            },
            // Not fail-fast: fred announces a connection before it marks the client
            // connected, so commands sent on that announcement must wait for it.
            commands: client.with_options(&Options {
                timeout: Some(wait),
                fail_fast: false,
                ..Options::default()
            }),
            client,
            backend: self.shared.name.clone(),
            client_name: self.client_name.clone(),
            full,
            relative,
            cluster,
            slot,
            subscribed_on: None,
            link: Link::Unknown,
            retry_at: None,
            events,
            heartbeat,
        };
        drop(task.client.connect());
        tokio::spawn(task.run(stopped));
        Ok(Subscription::new(queue, move || {
            let _ = stop.send(());
        }))
    }
}

/// fred's notification streams of the subscriber client.
struct Notices {
    messages: broadcast::Receiver<Message>,
    errors: broadcast::Receiver<(FredError, Option<Server>)>,
    unresponsive: broadcast::Receiver<Server>,
    reconnects: broadcast::Receiver<Server>,
    topology: broadcast::Receiver<Vec<fred::types::ClusterStateChange>>,
}

/// The subscription's state as last reported to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Nothing reported yet.
    Unknown,
    /// `Active` was sent.
    Active,
    /// `Lost` was sent.
    Lost,
}

/// The consumer is gone: the task ends.
struct Closed;

/// One subscription's connection task.
struct Task {
    client: Client,
    /// The client with a bound on every command.
    commands: fred::clients::WithOptions<Client>,
    notices: Notices,
    backend: Arc<str>,
    client_name: Arc<str>,
    /// The Redis channels, without duplicates.
    full: Vec<String>,
    /// Redis channel -> the name the consumer gave.
    relative: HashMap<String, String>,
    cluster: bool,
    /// The cluster slot of every channel (they share a hash tag).
    slot: u16,
    /// The node the sharded subscription was last confirmed on.
    subscribed_on: Option<Server>,
    link: Link,
    /// When to subscribe again while not `Active`, in case no announcement comes.
    retry_at: Option<Instant>,
    events: mpsc::Sender<SubscriptionEvent>,
    heartbeat: Option<Duration>,
}

impl Task {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let _ = self.serve(&mut stopped).await;
        let _ = self.client.quit().await;
    }

    async fn serve(&mut self, stopped: &mut oneshot::Receiver<()>) -> Result<(), Closed> {
        let period = self.heartbeat.unwrap_or(Duration::from_secs(3600));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Biased, messages first: a message received before a loss is forwarded before
            // its `Lost`, and a loss before the reconnection that ends it.
            tokio::select! {
                biased;
                _ = &mut *stopped => return Err(Closed),
                message = self.notices.messages.recv() => match message {
                    Ok(message) => self.forward(message).await?,
                    Err(RecvError::Lagged(n)) => self.send(SubscriptionEvent::Lagged(n)).await?,
                    Err(RecvError::Closed) => return Err(Closed),
                },
                error = self.notices.errors.recv() => match error {
                    Ok((error, server)) => {
                        if self.concerns(server.as_ref()) {
                            self.lost(format!("connection error: {error}")).await?;
                        }
                    }
                    Err(RecvError::Lagged(_)) => self.lost("connection errors".to_owned()).await?,
                    Err(RecvError::Closed) => return Err(Closed),
                },
                server = self.notices.unresponsive.recv() => match server {
                    Ok(server) if !self.concerns(Some(&server)) => {}
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        self.lost("the connection stopped answering".to_owned()).await?;
                    }
                    Err(RecvError::Closed) => return Err(Closed),
                },
                server = self.notices.reconnects.recv() => {
                    let server = match server {
                        Ok(server) => Some(server),
                        Err(RecvError::Lagged(_)) => None,
                        Err(RecvError::Closed) => return Err(Closed),
                    };
                    self.reconnected(server.as_ref()).await?;
                    self.establish().await?;
                },
                changes = self.notices.topology.recv() => {
                    if let Err(RecvError::Closed) = changes {
                        return Err(Closed);
                    }
                    if self.cluster && self.link == Link::Active && self.owner() != self.subscribed_on {
                        self.lost("the channel's slot moved to another node".to_owned()).await?;
                        self.establish().await?;
                    }
                },
                () = sleep_until(self.retry_at) => {
                    self.retry_at = None;
                    if self.client.is_connected() {
                        self.establish().await?;
                    } else {
                        // Commands queued now would run on the next connection before its
                        // `CLIENT SETNAME`; its announcement triggers the subscription.
                        self.retry_later();
                    }
                },
                _ = heartbeat.tick(), if self.heartbeat.is_some() => self.ping(),
            }
        }
    }

    /// Whether a notice about `server` concerns the subscription's connection: always outside
    /// a cluster; in a cluster, unless it names another node than the slot's owner.
    fn concerns(&self, server: Option<&Server>) -> bool {
        if !self.cluster {
            return true;
        }
        match (server, self.owner()) {
            (Some(server), Some(owner)) => *server == owner,
            _ => true,
        }
    }

    /// The node that serves the channels' slot, as the client last learned it.
    fn owner(&self) -> Option<Server> {
        self.client
            .cached_cluster_state()
            .and_then(|state| state.get_server(self.slot).cloned())
    }

    async fn send(&self, event: SubscriptionEvent) -> Result<(), Closed> {
        self.events.send(event).await.map_err(|_| Closed)
    }

    async fn forward(&self, message: Message) -> Result<(), Closed> {
        let Some(channel) = self.relative.get(&*message.channel) else {
            return Ok(());
        };
        let payload = match message.value {
            Value::Bytes(bytes) => bytes,
            Value::String(s) => s.into_inner(),
            other => match other.convert::<Bytes>() {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Dropped, so reported like any dropped message: the consumer must not
                    // assume it saw everything.
                    tracing::warn!(backend = %self.backend, error = %e, "unreadable pub/sub payload dropped");
                    return self.send(SubscriptionEvent::Lagged(1)).await;
                }
            },
        };
        self.send(SubscriptionEvent::Message {
            channel: channel.clone(),
            payload,
        })
        .await
    }

    /// Forwards every message already received, so none is reported after the loss that
    /// followed it.
    async fn drain_messages(&mut self) -> Result<(), Closed> {
        loop {
            match self.notices.messages.try_recv() {
                Ok(message) => self.forward(message).await?,
                Err(TryRecvError::Lagged(n)) => self.send(SubscriptionEvent::Lagged(n)).await?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Closed) => return Err(Closed),
            }
        }
    }

    /// Reports a loss, once per loss.
    async fn lost(&mut self, reason: String) -> Result<(), Closed> {
        self.drain_messages().await?;
        if self.link != Link::Lost {
            self.link = Link::Lost;
            self.subscribed_on = None;
            tracing::warn!(backend = %self.backend, %reason, "redis subscription lost");
            self.send(SubscriptionEvent::Lost { reason }).await?;
        }
        self.retry_later();
        Ok(())
    }

    /// Makes sure another attempt to subscribe comes, whatever fred announces.
    fn retry_later(&mut self) {
        self.retry_at
            .get_or_insert_with(|| Instant::now() + RETRY_DELAY);
    }

    /// A connection came up. A new connection for the subscription means the old one is gone,
    /// even when no error said so yet.
    async fn reconnected(&mut self, server: Option<&Server>) -> Result<(), Closed> {
        // An error queued behind the reconnection belongs before it.
        while let Ok((error, server)) = self.notices.errors.try_recv() {
            if self.concerns(server.as_ref()) {
                self.lost(format!("connection error: {error}")).await?;
            }
        }
        if self.link == Link::Active && self.concerns(server) {
            self.lost("the connection was replaced".to_owned()).await?;
        }
        Ok(())
    }

    /// Names the connection and subscribes, then reports `Active` (unless it already was);
    /// on failure, schedules another attempt.
    async fn establish(&mut self) -> Result<(), Closed> {
        if self.link == Link::Active {
            return Ok(());
        }
        if let Err(e) = self.subscribe().await {
            if self.client.is_connected() {
                tracing::warn!(backend = %self.backend, error = %e, "redis subscribe failed; retrying");
            } else {
                self.lost(format!("subscribe failed: {e}")).await?;
            }
            self.retry_later();
            return Ok(());
        }
        // A loss while subscribing may have taken the subscription with it: try again.
        let mut loss = None;
        while let Ok((error, server)) = self.notices.errors.try_recv() {
            if self.concerns(server.as_ref()) {
                loss = Some(format!("connection error: {error}"));
            }
        }
        // The connections announced by now were made before the subscription was confirmed:
        // the one it rides on, or older ones. Later announcements mean a new connection.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = self.notices.reconnects.try_recv() {}
        if let Some(reason) = loss {
            return self.lost(reason).await;
        }
        self.subscribed_on = if self.cluster { self.owner() } else { None };
        self.link = Link::Active;
        self.retry_at = None;
        tracing::debug!(backend = %self.backend, "redis subscription active");
        self.send(SubscriptionEvent::Active).await
    }

    /// A command on the connection that carries the subscription: the one node of a slot in a
    /// cluster.
    fn routed(&self, command: &'static str) -> CustomCommand {
        CustomCommand::new_static(command, ClusterHash::Custom(self.slot), false)
    }

    async fn subscribe(&self) -> Result<(), FredError> {
        // `CLIENT SETNAME` is refused on a connection that is already subscribed. The name is
        // always set right before subscribing on the same connection, so a refusal means this
        // connection was named already.
        if let Err(e) = self
            .commands
            .custom::<Value, _>(
                self.routed("CLIENT"),
                vec!["SETNAME".to_owned(), self.client_name.to_string()],
            )
            .await
        {
            tracing::debug!(backend = %self.backend, error = %e, "CLIENT SETNAME on the subscriber failed");
        }
        if self.cluster {
            // One channel per `SSUBSCRIBE`: fred matches exactly one reply frame to it, which
            // is also the server's confirmation.
            for channel in &self.full {
                self.commands.ssubscribe(channel.as_str()).await?;
            }
        } else {
            self.commands.subscribe(self.full.clone()).await?;
            // fred resolves `SUBSCRIBE` once written; the server answers in order, so the
            // `PING`'s reply confirms the subscription.
            self.commands
                .custom::<Value, _>(self.routed("PING"), Vec::<String>::new())
                .await?;
        }
        Ok(())
    }

    /// Sends a `PING` without waiting for it: a connection that does not answer within the
    /// unresponsive timeout is dropped by fred, which reports it (and reconnects).
    fn ping(&self) {
        if !self.client.is_connected() {
            return;
        }
        // The command's own timeout ends the call; fred's unresponsive check looks at the
        // connection, whose clock started when the `PING` was written.
        let commands = self.commands.clone();
        let command = self.routed("PING");
        tokio::spawn(async move {
            let _ = commands
                .custom::<Value, _>(command, Vec::<String>::new())
                .await;
        });
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
