//! A fault-injecting TCP proxy on loopback, for tests of what a client does when the network or
//! the server misbehaves.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1` (an ephemeral port) and forwards every
//! connection to one upstream loopback address. [`FaultProxy::set_fault`] switches it, at any
//! moment, between the [`Fault`]s: pass-through, added latency, blackhole, reset, and close after
//! N bytes. A new fault applies at once to the connections already open and to every new one.
//! The proxy counts connections (so a test can see a client replace one) and can log the bytes
//! each way (so a test can check what reached the server).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//! use lexicache_testkit::proxy::{Fault, FaultProxy};
//!
//! // An echo server stands in for Redis here; the suite's tests use the real servers.
//! let echo = TcpListener::bind("127.0.0.1:0").await?;
//! let upstream = echo.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut conn, _)) = echo.accept().await {
//!         tokio::spawn(async move {
//!             let mut buf = [0; 64];
//!             while let Ok(n @ 1..) = conn.read(&mut buf).await {
//!                 if conn.write_all(&buf[..n]).await.is_err() { break; }
//!             }
//!         });
//!     }
//! });
//!
//! let proxy = FaultProxy::start(upstream).await?;
//! proxy.record(true);
//! let mut client = TcpStream::connect(proxy.addr()).await?;
//! client.write_all(b"ping").await?;
//! let mut reply = [0; 4];
//! client.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ping");
//! assert_eq!(proxy.sent_to_server(), b"ping");
//!
//! // A blackhole swallows the request: no reply comes.
//! proxy.set_fault(Fault::Blackhole);
//! client.write_all(b"ping").await?;
//! let silent = tokio::time::timeout(Duration::from_millis(50), client.read(&mut reply)).await;
//! assert!(silent.is_err());
//! assert_eq!(proxy.connections_accepted(), 1);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bytes read from one side in one go.
const CHUNK: usize = 64 * 1024;

/// What the proxy does to the traffic, from the moment it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards both ways unchanged.
    PassThrough,
    /// Delivers every chunk of the server's replies this much later (requests go through at
    /// once), so each round trip takes at least this long. Order is kept, and pipelined
    /// requests still overlap.
    Latency(Duration),
    /// Accepts connections, then never answers: bytes from either side are dropped, and nothing
    /// in flight is delivered. A connection caught by a blackhole stays dead even after the
    /// fault is lifted (its requests were lost, so its stream is out of step); the client must
    /// replace it. New connections after the fault is lifted work.
    Blackhole,
    /// Resets (TCP RST) every open connection at once, and every new one as soon as it is
    /// accepted.
    Reset,
    /// Forwards at most this many more bytes of the server's replies on each connection
    /// (counted from when the fault is set, or from a connection's start), then closes it:
    /// the client sees a reply cut short and then end of stream.
    CloseAfter(usize),
}

/// The fault in force and a generation number, so connections see every change (setting
/// `CloseAfter(n)` twice gives a fresh budget each time).
type FaultState = (u64, Fault);

/// A fault-injecting TCP proxy from an ephemeral port on `127.0.0.1` to one loopback upstream.
///
/// Dropping it stops accepting and closes every connection it forwards.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    fault: watch::Sender<FaultState>,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("fault", &self.fault())
            .field("connections_accepted", &self.connections_accepted())
            .field("open_connections", &self.open_connections())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    accepted: AtomicU64,
    open: AtomicUsize,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    enabled: bool,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

impl Shared {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FaultProxy {
    /// Starts a pass-through proxy to `upstream`, which must resolve to a loopback address
    /// (tests never send traffic anywhere else).
    ///
    /// # Errors
    ///
    /// If `upstream` does not resolve, is not loopback, or no local port can be bound.
    pub async fn start(upstream: impl ToSocketAddrs) -> io::Result<Self> {
        let upstream = tokio::net::lookup_host(upstream)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no upstream address"))?;
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the fault proxy only forwards to loopback, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel((0, Fault::PassThrough));
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            fault.subscribe(),
            shared.clone(),
        ));
        Ok(Self {
            addr,
            upstream,
            fault,
            shared,
            accept,
        })
    }

    /// The address clients connect to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address it forwards to.
    #[must_use]
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches to `fault`, for the open connections and every new one.
    pub fn set_fault(&self, fault: Fault) {
        self.fault.send_modify(|(generation, current)| {
            *generation += 1;
            *current = fault;
        });
    }

    /// The fault in force.
    #[must_use]
    pub fn fault(&self) -> Fault {
        self.fault.borrow().1
    }

    /// How many connections it has accepted since it started.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are open now (blackholed ones included).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Starts (`true`) or stops logging the bytes forwarded each way. Off at first.
    pub fn record(&self, on: bool) {
        self.shared.log().enabled = on;
    }

    /// Every byte forwarded to the server while logging was on, in order (the connections'
    /// bytes interleaved chunk by chunk).
    #[must_use]
    pub fn sent_to_server(&self) -> Vec<u8> {
        self.shared.log().to_server.clone()
    }

    /// Every byte forwarded to clients while logging was on.
    #[must_use]
    pub fn sent_to_client(&self) -> Vec<u8> {
        self.shared.log().to_client.clone()
    }

    /// Empties both logs.
    pub fn clear_log(&self) {
        let mut log = self.shared.log();
        log.to_server.clear();
        log.to_client.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping `fault` ends every connection's watch: each one closes.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Receiver<FaultState>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let (fault, shared) = (fault.clone(), shared.clone());
        tokio::spawn(async move {
            shared.open.fetch_add(1, Ordering::SeqCst);
            Connection::run(client, upstream, fault, &shared).await;
            shared.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// How a connection ends.
enum End {
    /// Close normally (FIN).
    Close,
    /// Reset (RST).
    Reset,
}

/// One proxied connection's state. Its task owns both sockets and drives them with readiness
/// and `try_read`/`try_write`, so a fault can act on an idle connection at once.
struct Connection<'a> {
    fault: watch::Receiver<FaultState>,
    shared: &'a Shared,
    /// Server bytes waiting to reach the client, each with when it is due.
    to_client: VecDeque<(Instant, Vec<u8>)>,
    /// Client bytes waiting to reach the server (always due at once).
    to_server: VecDeque<Vec<u8>>,
    /// Caught by a blackhole: drops everything until the client leaves.
    dead: bool,
    /// What is left of a `CloseAfter` budget.
    budget: Option<usize>,
    /// The budget ran out: deliver what is queued for the client, then close.
    closing: bool,
}

impl<'a> Connection<'a> {
    async fn run(
        client: TcpStream,
        upstream: SocketAddr,
        mut fault: watch::Receiver<FaultState>,
        shared: &'a Shared,
    ) {
        let current = fault.borrow_and_update().1;
        let server = match current {
            Fault::Reset => return reset(&client),
            Fault::Blackhole => None,
            _ => match TcpStream::connect(upstream).await {
                Ok(server) => Some(server),
                // The server is down: the client sees what it would see without the proxy.
                Err(_) => return reset(&client),
            },
        };
        let mut conn = Connection {
            fault,
            shared,
            to_client: VecDeque::new(),
            to_server: VecDeque::new(),
            dead: server.is_none(),
            budget: None,
            closing: false,
        };
        // A blackhole when it was accepted: nothing more to set.
        let _ = conn.apply(current);
        if let End::Reset = conn.pump(&client, server.as_ref()).await {
            reset(&client);
            if let Some(server) = &server {
                reset(server);
            }
        }
    }

    /// Takes a new fault into account; `Some` when it ends the connection.
    fn apply(&mut self, fault: Fault) -> Option<End> {
        self.budget = None;
        match fault {
            Fault::PassThrough | Fault::Latency(_) => {}
            Fault::Blackhole => {
                self.dead = true;
                self.closing = false;
                self.to_client.clear();
                self.to_server.clear();
            }
            Fault::Reset => return Some(End::Reset),
            Fault::CloseAfter(n) => self.budget = Some(n),
        }
        None
    }

    async fn pump(&mut self, client: &TcpStream, server: Option<&TcpStream>) -> End {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.closing && self.to_client.is_empty() {
                return End::Close;
            }
            let now = Instant::now();
            let due = self.to_client.front().map(|(at, _)| *at);
            let client_due = due.is_some_and(|at| at <= now);
            let later = due.filter(|&at| at > now);
            let server_due = !self.to_server.is_empty();
            let read_server = server.filter(|_| !self.closing);
            tokio::select! {
                biased;
                changed = self.fault.changed() => {
                    if changed.is_err() {
                        // The proxy was dropped.
                        return End::Close;
                    }
                    let fault = self.fault.borrow_and_update().1;
                    if let Some(end) = self.apply(fault) {
                        return end;
                    }
                }
                ready = client.readable() => {
                    if ready.is_err() {
                        return End::Close;
                    }
                    match client.try_read(&mut buf) {
                        Ok(0) => return End::Close,
                        Ok(n) => self.on_client_bytes(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return End::Close,
                    }
                }
                ready = readable(read_server), if read_server.is_some() => {
                    let Some(server) = read_server else { continue };
                    if ready.is_err() {
                        return End::Close;
                    }
                    match server.try_read(&mut buf) {
                        Ok(0) => return End::Close,
                        Ok(n) => self.on_server_bytes(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return End::Close,
                    }
                }
                ready = client.writable(), if client_due => {
                    if ready.is_err() || !flush_front(client, &mut self.to_client, |c| &mut c.1) {
                        return End::Close;
                    }
                }
                ready = writable(server), if server_due && server.is_some() => {
                    let Some(server) = server else { continue };
                    if ready.is_err() || !flush_front(server, &mut self.to_server, |c| c) {
                        return End::Close;
                    }
                }
                () = sleep_until(later), if later.is_some() => {}
            }
        }
    }

    fn on_client_bytes(&mut self, bytes: &[u8]) {
        if self.dead || self.closing {
            return;
        }
        let mut log = self.shared.log();
        if log.enabled {
            log.to_server.extend_from_slice(bytes);
        }
        drop(log);
        self.to_server.push_back(bytes.to_vec());
    }

    fn on_server_bytes(&mut self, bytes: &[u8]) {
        if self.dead {
            return;
        }
        let bytes = match self.budget {
            Some(left) if bytes.len() >= left => {
                self.closing = true;
                &bytes[..left]
            }
            Some(left) => {
                self.budget = Some(left - bytes.len());
                bytes
            }
            None => bytes,
        };
        let mut log = self.shared.log();
        if log.enabled {
            log.to_client.extend_from_slice(bytes);
        }
        drop(log);
        let delay = match self.fault.borrow().1 {
            Fault::Latency(delay) => delay,
            _ => Duration::ZERO,
        };
        if !bytes.is_empty() {
            self.to_client
                .push_back((Instant::now() + delay, bytes.to_vec()));
        }
    }
}

/// Writes as much of the first queued chunk as the socket takes; `false` on a write error.
fn flush_front<T>(
    socket: &TcpStream,
    queue: &mut VecDeque<T>,
    bytes: impl Fn(&mut T) -> &mut Vec<u8>,
) -> bool {
    let Some(front) = queue.front_mut() else {
        return true;
    };
    let chunk = bytes(front);
    match socket.try_write(chunk) {
        Ok(n) if n == chunk.len() => {
            queue.pop_front();
            true
        }
        Ok(n) => {
            chunk.drain(..n);
            true
        }
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

async fn readable(socket: Option<&TcpStream>) -> io::Result<()> {
    match socket {
        Some(socket) => socket.readable().await,
        None => std::future::pending().await,
    }
}

async fn writable(socket: Option<&TcpStream>) -> io::Result<()> {
    match socket {
        Some(socket) => socket.writable().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Makes closing `socket` send a reset instead of a FIN (the caller then drops it).
fn reset(socket: &TcpStream) {
    // Fails only on a socket that is already gone, which is as good as reset.
    let _ = socket.set_zero_linger();
}
