//! The per-server connection pools, and the up/down state of each server.
//!
//! [`async_memcached::Client`] is one connection with `&mut self` methods, so each server gets a
//! small pool: a semaphore bounds the connections in use, and a mutex'd `Vec` keeps the idle
//! ones. A connection goes back to the pool only when its exchange finished with a complete
//! answer (a value, a miss, `NOT_FOUND`, a `SERVER_ERROR` line ...). On a timeout, an I/O error,
//! or when the caller's future is dropped mid-exchange, the connection is dropped instead, so a
//! late reply can never be read by the next caller. (async-memcached closes an interrupted
//! connection itself as well; the pool does not rely on it.)
//!
//! A server whose connect fails is marked down until a backoff passes (doubling from
//! `backoff_initial` up to `backoff_max`); meanwhile its keys fail at once with a retryable
//! [`ErrorKind::Connection`](lexicache_core::ErrorKind::Connection) error. When the backoff has
//! passed, the next caller tries one connect (other callers keep failing fast while it does);
//! success marks the server up again.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_memcached::Client;
use lexicache_core::{CacheEvent, EventBus};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{error::Elapsed, Instant};

/// Timeouts, bounds and backoff of the pools.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

/// Why a connection could not be had or an exchange did not finish.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server is marked down; no connect was attempted.
    Down {
        retry_in: Duration,
        last_error: String,
    },
    /// No pooled connection came free within the command timeout.
    PoolExhausted(Duration),
    /// Connecting failed (or timed out); the server is now marked down.
    Connect(String),
    /// The exchange did not finish within the command timeout.
    CommandTimeout(Duration),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Down {
                retry_in,
                last_error,
            } => write!(
                f,
                "server is marked down ({last_error}); next connect attempt in {retry_in:?}"
            ),
            Self::PoolExhausted(t) => write!(f, "no pooled connection came free within {t:?}"),
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::CommandTimeout(t) => write!(f, "no complete reply within {t:?}"),
        }
    }
}

#[derive(Debug, Default)]
struct DownState {
    /// Connect failures in a row.
    failures: u32,
    /// While down: when the next connect may be tried.
    retry_at: Option<Instant>,
    last_error: String,
}

/// One server: its address, idle connections, bound and up/down state.
pub(crate) struct Server {
    pub(crate) addr: Arc<str>,
    /// `tcp://{addr}`: async-memcached reads a bare `host:port` as a URL, which fails for IP
    /// addresses.
    dsn: String,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
    /// A lock-free copy of "is marked down", so the hot path of a healthy server takes no lock.
    down: AtomicBool,
    state: Mutex<DownState>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("idle", &lock(&self.idle).len())
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can panic while holding a lock; recover rather than spread a poison anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pools of every server, in ring order.
#[derive(Debug)]
pub(crate) struct Pools {
    pub(crate) servers: Vec<Server>,
    pub(crate) config: PoolConfig,
    name: Arc<str>,
    events: EventBus,
}

/// A checked-out slot of a server's pool. Give the connection back with [`Lease::settle`];
/// dropping the lease (for example when the caller's future is dropped) frees the slot and
/// drops the connection.
#[must_use]
pub(crate) struct Lease<'a> {
    server: &'a Server,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// Returns `client` to the pool if the exchange that produced `outcome` finished with a
    /// complete answer, and drops it otherwise.
    pub(crate) fn settle<T>(
        self,
        client: Client,
        outcome: &Result<Result<T, async_memcached::Error>, Elapsed>,
    ) {
        let clean = matches!(
            outcome,
            Ok(Ok(_) | Err(async_memcached::Error::Protocol(_)))
        );
        if clean && !client.is_closed() {
            lock(&self.server.idle).push(client);
            return;
        }
        if matches!(
            outcome,
            Ok(Err(
                async_memcached::Error::Io(_) | async_memcached::Error::ConnectionClosed
            ))
        ) {
            // A broken connection usually means the server restarted or went away; its other
            // idle connections are then broken too, so drop them rather than fail once each.
            lock(&self.server.idle).clear();
        }
    }
}

impl Pools {
    pub(crate) fn new(
        addrs: &[Arc<str>],
        config: PoolConfig,
        name: Arc<str>,
        events: EventBus,
    ) -> Self {
        let servers = addrs
            .iter()
            .map(|addr| Server {
                addr: addr.clone(),
                dsn: format!("tcp://{addr}"),
                idle: Mutex::new(Vec::with_capacity(config.pool_size)),
                permits: Semaphore::new(config.pool_size),
                down: AtomicBool::new(false),
                state: Mutex::new(DownState::default()),
            })
            .collect();
        Self {
            servers,
            config,
            name,
            events,
        }
    }

    /// A connection to server `index`: an idle one, or a new one.
    ///
    /// With `probe` set (health checks), a server marked down is tried anyway.
    pub(crate) async fn checkout(
        &self,
        index: usize,
        probe: bool,
    ) -> Result<(Lease<'_>, Client), Failure> {
        let server = &self.servers[index];
        if !probe {
            self.admit(server)?;
        }
        // A free slot needs no timer; only a wait for one does.
        let permit = match server.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                tokio::time::timeout(self.config.command_timeout, server.permits.acquire())
                    .await
                    .map_err(|_| Failure::PoolExhausted(self.config.command_timeout))?
                    // The semaphore is never closed.
                    .map_err(|_| Failure::PoolExhausted(self.config.command_timeout))?
            }
        };
        let lease = Lease {
            server,
            _permit: permit,
        };
        let idle = lock(&server.idle).pop();
        if let Some(client) = idle {
            return Ok((lease, client));
        }
        match tokio::time::timeout(self.config.connect_timeout, Client::new(&server.dsn)).await {
            Ok(Ok(client)) => {
                self.mark_up(server);
                Ok((lease, client))
            }
            Ok(Err(e)) => Err(self.mark_down(server, e.to_string())),
            Err(_) => Err(self.mark_down(
                server,
                format!("no connection within {:?}", self.config.connect_timeout),
            )),
        }
    }

    /// Fails fast while `server` is marked down and its backoff has not passed. Once it has,
    /// lets this caller try to connect and keeps the others failing fast until that attempt
    /// ends (or the connect timeout passes, should the attempt be dropped).
    fn admit(&self, server: &Server) -> Result<(), Failure> {
        if !server.down.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = lock(&server.state);
        let now = Instant::now();
        match state.retry_at {
            Some(at) if at > now => Err(Failure::Down {
                retry_in: at - now,
                last_error: state.last_error.clone(),
            }),
            _ => {
                state.retry_at = Some(now + self.config.connect_timeout);
                Ok(())
            }
        }
    }

    fn mark_up(&self, server: &Server) {
        if !server.down.load(Ordering::Acquire) {
            return;
        }
        {
            let mut state = lock(&server.state);
            *state = DownState::default();
            server.down.store(false, Ordering::Release);
        }
        tracing::info!(backend = %self.name, server = %server.addr, "memcached server is reachable again");
        self.events.emit_with(|| CacheEvent::Connected {
            backend: self.name.clone(),
        });
    }

    fn mark_down(&self, server: &Server, error: String) -> Failure {
        let was_up;
        let backoff;
        {
            let mut state = lock(&server.state);
            state.failures = state.failures.saturating_add(1);
            backoff = backoff_after(
                state.failures,
                self.config.backoff_initial,
                self.config.backoff_max,
            );
            state.retry_at = Some(Instant::now() + backoff);
            state.last_error.clone_from(&error);
            was_up = !server.down.swap(true, Ordering::AcqRel);
        }
        lock(&server.idle).clear();
        if was_up {
            tracing::warn!(backend = %self.name, server = %server.addr, %error, ?backoff, "memcached server marked down");
            self.events.emit_with(|| CacheEvent::Disconnected {
                backend: self.name.clone(),
                reason: format!("server {} unreachable: {error}", server.addr),
            });
        }
        Failure::Connect(error)
    }

    /// Marks `server` down after a failed probe that did not go through [`checkout`](Self::checkout).
    pub(crate) fn report_unreachable(&self, index: usize, error: String) {
        let _ = self.mark_down(&self.servers[index], error);
    }

    /// Whether server `index` is marked down.
    pub(crate) fn is_down(&self, index: usize) -> bool {
        self.servers[index].down.load(Ordering::Acquire)
    }
}

/// The wait before the next connect after `failures` failures in a row: `initial`, doubling each
/// time, at most `max`.
pub(crate) fn backoff_after(failures: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    initial.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let ms = Duration::from_millis;
        let steps: Vec<Duration> = (1..=7)
            .map(|n| backoff_after(n, ms(100), ms(2_000)))
            .collect();
        assert_eq!(
            steps,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1_600),
                ms(2_000),
                ms(2_000)
            ]
        );
        assert_eq!(backoff_after(u32::MAX, ms(100), ms(2_000)), ms(2_000));
    }

    fn pools(addr: &str) -> Pools {
        Pools::new(
            &[Arc::from(addr)],
            PoolConfig {
                pool_size: 2,
                connect_timeout: Duration::from_millis(200),
                command_timeout: Duration::from_millis(200),
                backoff_initial: Duration::from_secs(1),
                backoff_max: Duration::from_secs(8),
            },
            Arc::from("memcached"),
            EventBus::new(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_down_server_fails_fast_until_its_backoff_passes_then_one_caller_probes() {
        let pools = pools("127.0.0.1:1");
        let bus = pools.events.clone();
        let mut rx = bus.subscribe();
        pools.report_unreachable(0, "refused".into());
        assert!(pools.is_down(0));
        assert!(matches!(
            rx.try_recv(),
            Ok(CacheEvent::Disconnected { reason, .. }) if reason.contains("127.0.0.1:1")
        ));

        let server = &pools.servers[0];
        assert!(matches!(pools.admit(server), Err(Failure::Down { .. })));
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(matches!(pools.admit(server), Err(Failure::Down { .. })));
        tokio::time::advance(Duration::from_millis(2)).await;
        // The first caller after the backoff may try; the others keep failing fast meanwhile.
        assert!(pools.admit(server).is_ok());
        assert!(matches!(pools.admit(server), Err(Failure::Down { .. })));

        // A second failure doubles the wait.
        pools.report_unreachable(0, "refused".into());
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert!(matches!(pools.admit(server), Err(Failure::Down { .. })));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(pools.admit(server).is_ok());

        pools.mark_up(server);
        assert!(!pools.is_down(0));
        assert!(pools.admit(server).is_ok());
        assert!(matches!(rx.try_recv(), Ok(CacheEvent::Connected { .. })));
    }
}
