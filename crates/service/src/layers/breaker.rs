//! [`CircuitBreaker`]: stops calling a failing backend for a while, then probes it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use lexicache_core::metrics::{CIRCUIT_STATE, CIRCUIT_TRANSITIONS_TOTAL};
use lexicache_core::{
    async_trait, BackendStats, Bytes, CacheBackend, CacheEvent, CacheMetrics, CacheValue,
    Capabilities, CircuitState, Error, ErrorKind, EventBus, Expiry, FencingToken,
    HealthCheckResult, LockOwner, LockStore, Object, Operation, Outcome, Result, SharedLockStore,
};

/// The settings of a [`CircuitBreaker`].
///
/// ```
/// use std::time::Duration;
/// use lexicache_service::layers::CircuitBreakerConfig;
///
/// let config = CircuitBreakerConfig::new()
///     .failure_threshold(3)
///     .window(Duration::from_secs(5))
///     .open_duration(Duration::from_secs(10))
///     .half_open_probes(2)
///     .success_threshold(2);
/// assert_eq!(config.get_failure_threshold(), 3);
/// assert_eq!(CircuitBreakerConfig::default().get_open_duration(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CircuitBreakerConfig {
    failure_threshold: u32,
    window: Duration,
    open_duration: Duration,
    half_open_probes: u32,
    success_threshold: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(10),
            open_duration: Duration::from_secs(30),
            half_open_probes: 1,
            success_threshold: 1,
        }
    }
}

impl CircuitBreakerConfig {
    /// The defaults: open after 5 failures within 10 s, stay open 30 s, then admit 1 probe at
    /// a time and close after 1 success.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many failures within the [`window`](Self::window) open the circuit (at least 1).
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures.max(1);
        self
    }

    /// The sliding window failures are counted in.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long the circuit stays open before it admits probes.
    pub fn open_duration(mut self, open: Duration) -> Self {
        self.open_duration = open;
        self
    }

    /// How many probe calls may be in flight at once while half-open (at least 1).
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes.max(1);
        self
    }

    /// How many successful probes close the circuit (at least 1).
    pub fn success_threshold(mut self, successes: u32) -> Self {
        self.success_threshold = successes.max(1);
        self
    }

    /// See [`failure_threshold`](Self::failure_threshold).
    #[must_use]
    pub fn get_failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// See [`window`](Self::window).
    #[must_use]
    pub fn get_window(&self) -> Duration {
        self.window
    }

    /// See [`open_duration`](Self::open_duration).
    #[must_use]
    pub fn get_open_duration(&self) -> Duration {
        self.open_duration
    }

    /// See [`half_open_probes`](Self::half_open_probes).
    #[must_use]
    pub fn get_half_open_probes(&self) -> u32 {
        self.half_open_probes
    }

    /// See [`success_threshold`](Self::success_threshold).
    #[must_use]
    pub fn get_success_threshold(&self) -> u32 {
        self.success_threshold
    }
}

/// Whether an error says the backend itself is in trouble, so that it counts toward opening
/// the circuit: [`Connection`](ErrorKind::Connection), [`Timeout`](ErrorKind::Timeout) and
/// [`Backend`](ErrorKind::Backend). The caller's mistakes (an invalid key, a value too large,
/// a value that does not decode, an unsupported operation, lock contention) say nothing about
/// the backend's health and do not count.
#[must_use]
pub fn counts_as_failure(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Backend
    )
}

/// A point-in-time view of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitStats {
    /// The current state.
    pub state: CircuitState,
    /// Failures counted in the current window (closed state only).
    pub recent_failures: u32,
    /// Probes in flight (half-open state only).
    pub probes_in_flight: u32,
    /// Successful probes so far (half-open state only).
    pub probe_successes: u32,
    /// Calls refused without reaching the backend, since the breaker was built.
    pub rejected: u64,
    /// Times the circuit opened, since the breaker was built.
    pub opened: u64,
}

/// Stops calling a failing backend for a while, then lets a few probe calls test it.
///
/// # States
///
/// - **Closed**: calls go through. A call that fails with a backend failure (see
///   [`counts_as_failure`]: connection, timeout or backend errors; misses and the caller's own
///   mistakes do not count) is recorded; [`failure_threshold`](CircuitBreakerConfig::failure_threshold)
///   failures within the sliding [`window`](CircuitBreakerConfig::window) open the circuit.
/// - **Open**: every call fails fast with a retryable [`ErrorKind::CircuitOpen`] without
///   touching the backend, for [`open_duration`](CircuitBreakerConfig::open_duration).
///   [`CacheService::get`](crate::CacheService::get) turns that into its default (`None`).
/// - **Half-open**: the first call after the open period moves the circuit here. At most
///   [`half_open_probes`](CircuitBreakerConfig::half_open_probes) probe calls run at once; other
///   calls fail fast. [`success_threshold`](CircuitBreakerConfig::success_threshold) successful
///   probes close the circuit; one failed probe opens it again for the full open duration. A
///   probe whose future is dropped (cancelled, or cut off by an outer timeout) frees its slot
///   without counting either way.
///
/// The move from open to half-open happens on the first call after the open period, so
/// [`state`](Self::state) reads `Open` until traffic arrives.
///
/// # What passes through
///
/// [`health_check`](CacheBackend::health_check) always reaches the backend (it is how an
/// operator sees whether the backend is back) and reports the circuit's state as the
/// `circuit` detail. The [lock store](CacheBackend::lock_store) is wrapped: lock calls go
/// through the same circuit (they fail fast while it is open, and their failures count), since
/// they talk to the same server.
///
/// # Observability
///
/// Every state change is emitted as [`CacheEvent::CircuitStateChanged`] on the bus given to
/// [`with_events`](Self::with_events), sets the `lexicache_circuit_state` gauge (0 closed,
/// 1 open, 2 half-open) and increments `lexicache_circuit_transitions_total{backend, to}`.
/// With [`with_metrics`](Self::with_metrics), each refused call is counted as an error of its
/// operation (layers below never see it). [`stats`](Self::stats) gives the numbers.
///
/// # Cost
///
/// While closed, a call costs one atomic load before and a match on the result after; a
/// success takes no lock and writes nothing. Failures and the open and half-open states take
/// a short mutex.
///
/// The breaker's clock is tokio's, so tests can pause and advance it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_core::{Bytes, CacheBackend, CircuitState};
/// use lexicache_memory::MemoryBackend;
/// use lexicache_service::layers::{CircuitBreaker, CircuitBreakerConfig};
///
/// let cache = CircuitBreaker::new(MemoryBackend::new(), CircuitBreakerConfig::new());
/// cache.set("k", Bytes::from_static(b"v"), None).await?;
/// assert_eq!(cache.get("absent").await?, None); // a miss is a success
/// assert_eq!(cache.state(), CircuitState::Closed);
/// # Ok(()) }
/// ```
pub struct CircuitBreaker<B> {
    inner: B,
    circuit: Arc<Circuit>,
}

impl<B: fmt::Debug> fmt::Debug for CircuitBreaker<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("config", &self.circuit.config)
            .field("state", &self.circuit.state())
            .finish()
    }
}

impl<B: CacheBackend> CircuitBreaker<B> {
    /// Wraps `inner`. The `lexicache_circuit_*` metrics handles are registered here: install
    /// the exporter's recorder first.
    pub fn new(inner: B, config: CircuitBreakerConfig) -> Self {
        let circuit = Arc::new(Circuit::new(Arc::from(inner.name()), config));
        Self { inner, circuit }
    }

    /// Emits [`CacheEvent::CircuitStateChanged`] onto `bus`.
    #[must_use]
    pub fn with_events(self, bus: EventBus) -> Self {
        self.with_circuit(|c| c.bus = Some(bus))
    }

    /// Counts each call refused by an open circuit as an error of its operation in `metrics`.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<CacheMetrics>) -> Self {
        self.with_circuit(|c| c.metrics = Some(metrics))
    }

    fn with_circuit(self, set: impl FnOnce(&mut Circuit)) -> Self {
        let mut circuit = Arc::try_unwrap(self.circuit).unwrap_or_else(|shared| shared.copy());
        set(&mut circuit);
        Self {
            inner: self.inner,
            circuit: Arc::new(circuit),
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> CircuitState {
        self.circuit.state()
    }

    /// The current numbers.
    #[must_use]
    pub fn stats(&self) -> CircuitStats {
        self.circuit.stats()
    }

    /// The settings.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.circuit.config
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: CacheBackend> CircuitBreaker<B> {
    /// Runs the call made by `call` if the circuit admits it, and records its outcome.
    #[inline]
    async fn guard<T, F>(&self, op: Operation, call: impl FnOnce() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.circuit.run(op, call).await
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for CircuitBreaker<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.guard(Operation::Get, || self.inner.get(key)).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Expiry)>> {
        self.guard(Operation::Get, || self.inner.get_with_ttl(key))
            .await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.guard(Operation::Set, || self.inner.set(key, value, ttl))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.guard(Operation::Delete, || self.inner.delete(key))
            .await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.guard(Operation::Set, || self.inner.set_if_absent(key, value, ttl))
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.guard(Operation::Exists, || self.inner.exists(key))
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.guard(Operation::GetMany, || self.inner.get_many(keys))
            .await
    }

    async fn get_many_with_ttl(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Expiry)>>> {
        self.guard(Operation::GetMany, || self.inner.get_many_with_ttl(keys))
            .await
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.guard(Operation::SetMany, || self.inner.set_many(items, ttl))
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.guard(Operation::DeleteMany, || self.inner.delete_many(keys))
            .await
    }

    async fn delete_pattern(&self, glob: &str) -> Result<u64> {
        self.guard(Operation::DeletePattern, || self.inner.delete_pattern(glob))
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.guard(Operation::Clear, || self.inner.clear()).await
    }

    async fn keys(&self, glob: &str, limit: usize) -> Result<Vec<String>> {
        self.guard(Operation::Keys, || self.inner.keys(glob, limit))
            .await
    }

    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.inner
            .health_check(timeout)
            .await
            .with_detail("circuit", self.circuit.state().as_str())
    }

    /// Passed through whatever the circuit's state, and never counted toward it (like
    /// `health_check`): an operator reads statistics most when the circuit is open, and a slow
    /// `INFO` on every server must not trip the circuit for the cache traffic. The circuit's
    /// state is added as the `circuit` extra.
    async fn stats(&self) -> Result<BackendStats> {
        let mut stats = self.inner.stats().await?;
        stats
            .extra
            .insert("circuit".into(), self.circuit.state().as_str().into());
        Ok(stats)
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        self.guard(Operation::Get, || self.inner.get_entry(key))
            .await
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.guard(Operation::Set, || self.inner.set_entry(key, value, ttl))
            .await
    }

    fn keep_object(&self, key: &str, bytes: &Bytes, object: Object) {
        self.inner.keep_object(key, bytes, object);
    }

    fn lock_store(&self) -> Option<SharedLockStore> {
        let inner = self.inner.lock_store()?;
        Some(Arc::new(CircuitLockStore {
            inner,
            circuit: self.circuit.clone(),
        }))
    }
}

/// The inner backend's lock store behind the same circuit as the backend's calls.
#[derive(Debug)]
struct CircuitLockStore {
    inner: SharedLockStore,
    circuit: Arc<Circuit>,
}

#[async_trait]
impl LockStore for CircuitLockStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn acquire(
        &self,
        resource: &str,
        owner: &LockOwner,
        ttl: Duration,
    ) -> Result<Option<FencingToken>> {
        self.circuit
            .run(Operation::Lock, || self.inner.acquire(resource, owner, ttl))
            .await
    }

    async fn release(&self, resource: &str, owner: &LockOwner) -> Result<()> {
        self.circuit
            .run(Operation::Lock, || self.inner.release(resource, owner))
            .await
    }

    async fn extend(&self, resource: &str, owner: &LockOwner, ttl: Duration) -> Result<()> {
        self.circuit
            .run(Operation::Lock, || self.inner.extend(resource, owner, ttl))
            .await
    }

    async fn is_locked(&self, resource: &str) -> Result<bool> {
        self.circuit
            .run(Operation::Lock, || self.inner.is_locked(resource))
            .await
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

fn decode(state: u8) -> CircuitState {
    match state {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        _ => CircuitState::HalfOpen,
    }
}

fn encode(state: CircuitState) -> u8 {
    match state {
        CircuitState::Closed => CLOSED,
        CircuitState::Open => OPEN,
        CircuitState::HalfOpen => HALF_OPEN,
    }
}

/// The state machine shared by a breaker and its lock store.
struct Circuit {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    /// The state, readable without the lock; written only with it held.
    state: AtomicU8,
    /// While open: when the open period ends, in nanoseconds since `epoch`.
    open_until: AtomicU64,
    epoch: Instant,
    machine: Mutex<Machine>,
    rejected: AtomicU64,
    opened: AtomicU64,
    bus: Option<EventBus>,
    metrics: Option<Arc<CacheMetrics>>,
    gauge: metrics::Gauge,
    /// `lexicache_circuit_transitions_total`, indexed by the encoded `to` state.
    transitions: [metrics::Counter; 3],
}

/// What changes only under the lock.
#[derive(Debug, Default)]
struct Machine {
    /// Times of the recent failures while closed, oldest first, at most `failure_threshold`.
    failures: VecDeque<Instant>,
    probes_in_flight: u32,
    probe_successes: u32,
    /// Bumped on every transition, so a probe admitted in an earlier half-open period does not
    /// count in a later one.
    generation: u64,
}

impl fmt::Debug for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Circuit")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// What the circuit let through.
enum Admission {
    /// A call in the closed state: nothing to release.
    Closed,
    /// A half-open probe, holding one of the probe slots.
    Probe(u64),
}

impl Circuit {
    fn new(name: Arc<str>, config: CircuitBreakerConfig) -> Self {
        let backend = name.to_string();
        let gauge = metrics::gauge!(CIRCUIT_STATE, "backend" => backend.clone());
        gauge.set(CircuitState::Closed.gauge());
        let transition = |to: CircuitState| {
            metrics::counter!(
                CIRCUIT_TRANSITIONS_TOTAL,
                "backend" => backend.clone(),
                "to" => to.as_str()
            )
        };
        let transitions = [
            transition(CircuitState::Closed),
            transition(CircuitState::Open),
            transition(CircuitState::HalfOpen),
        ];
        Self {
            name,
            config,
            state: AtomicU8::new(CLOSED),
            open_until: AtomicU64::new(0),
            epoch: Instant::now(),
            machine: Mutex::new(Machine::default()),
            rejected: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            bus: None,
            metrics: None,
            gauge,
            transitions,
        }
    }

    /// A fresh closed circuit with the same settings and handles (for builder methods called on
    /// a breaker whose circuit is already shared).
    fn copy(&self) -> Self {
        Self {
            name: self.name.clone(),
            config: self.config.clone(),
            state: AtomicU8::new(CLOSED),
            open_until: AtomicU64::new(0),
            epoch: self.epoch,
            machine: Mutex::new(Machine::default()),
            rejected: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            bus: self.bus.clone(),
            metrics: self.metrics.clone(),
            gauge: self.gauge.clone(),
            transitions: self.transitions.clone(),
        }
    }

    fn state(&self) -> CircuitState {
        decode(self.state.load(Ordering::Acquire))
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> CircuitStats {
        let m = self.lock();
        let state = self.state();
        CircuitStats {
            state,
            recent_failures: u32::try_from(m.failures.len()).unwrap_or(u32::MAX),
            probes_in_flight: m.probes_in_flight,
            probe_successes: m.probe_successes,
            rejected: self.rejected.load(Ordering::Relaxed),
            opened: self.opened.load(Ordering::Relaxed),
        }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    #[inline]
    async fn run<T, F>(&self, op: Operation, call: impl FnOnce() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match self.admit(op)? {
            Admission::Closed => {
                let result = call().await;
                if let Err(e) = &result {
                    if counts_as_failure(e.kind()) {
                        self.closed_failure();
                    }
                }
                result
            }
            Admission::Probe(generation) => {
                let mut probe = ProbeSlot {
                    circuit: self,
                    generation,
                    settled: false,
                };
                let result = call().await;
                probe.settle(&result);
                result
            }
        }
    }

    /// Lets a call through, or refuses it with `CircuitOpen`.
    #[inline]
    fn admit(&self, op: Operation) -> Result<Admission> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(Admission::Closed);
        }
        self.admit_slow(op)
    }

    #[cold]
    fn admit_slow(&self, op: Operation) -> Result<Admission> {
        if self.state.load(Ordering::Acquire) == OPEN {
            let now = self.nanos_since_epoch(Instant::now());
            if now < self.open_until.load(Ordering::Acquire) {
                return Err(self.reject(op, "open"));
            }
        }
        let mut m = self.lock();
        match self.state.load(Ordering::Acquire) {
            CLOSED => return Ok(Admission::Closed),
            OPEN => {
                let now = self.nanos_since_epoch(Instant::now());
                if now < self.open_until.load(Ordering::Acquire) {
                    drop(m);
                    return Err(self.reject(op, "open"));
                }
                self.transition(&mut m, CircuitState::HalfOpen);
            }
            _ => {}
        }
        if m.probes_in_flight >= self.config.half_open_probes {
            drop(m);
            return Err(self.reject(op, "half-open and every probe slot is taken"));
        }
        m.probes_in_flight += 1;
        Ok(Admission::Probe(m.generation))
    }

    #[cold]
    fn reject(&self, op: Operation, why: &str) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.count(op, Outcome::Error, 1);
        }
        Error::circuit_open(self.name.to_string())
            .with_operation(op)
            .with_message(format!(
                "circuit {why}: the call was not attempted (opens for {:?} after {} failures within {:?})",
                self.config.open_duration, self.config.failure_threshold, self.config.window
            ))
    }

    /// Records a failure of a call admitted while closed.
    #[cold]
    fn closed_failure(&self) {
        let mut m = self.lock();
        // A call admitted while closed that fails after the circuit moved on says nothing
        // new: the circuit already reacted to earlier failures.
        if self.state.load(Ordering::Acquire) != CLOSED {
            return;
        }
        let now = Instant::now();
        let threshold = self.config.failure_threshold as usize;
        m.failures.push_back(now);
        while let Some(&oldest) = m.failures.front() {
            if m.failures.len() > threshold
                || now.saturating_duration_since(oldest) > self.config.window
            {
                m.failures.pop_front();
            } else {
                break;
            }
        }
        if m.failures.len() >= threshold {
            self.open(&mut m, now);
        }
    }

    fn open(&self, m: &mut Machine, now: Instant) {
        let until = self.nanos_since_epoch(now + self.config.open_duration);
        self.open_until.store(until, Ordering::Release);
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.transition(m, CircuitState::Open);
    }

    /// Moves to `to` (the lock is held), resetting what the new state counts, and reports it.
    fn transition(&self, m: &mut Machine, to: CircuitState) {
        let from = self.state();
        m.generation += 1;
        m.failures.clear();
        m.probes_in_flight = 0;
        m.probe_successes = 0;
        self.state.store(encode(to), Ordering::Release);
        self.gauge.set(to.gauge());
        self.transitions[usize::from(encode(to))].increment(1);
        match to {
            CircuitState::Open => tracing::warn!(backend = %self.name, %from, "circuit opened"),
            _ => tracing::info!(backend = %self.name, %from, %to, "circuit state changed"),
        }
        if let Some(bus) = &self.bus {
            bus.emit_with(|| CacheEvent::CircuitStateChanged {
                backend: self.name.clone(),
                from,
                to,
            });
        }
    }
}

/// A probe slot, freed when the probe finishes or its future is dropped.
struct ProbeSlot<'a> {
    circuit: &'a Circuit,
    generation: u64,
    settled: bool,
}

impl ProbeSlot<'_> {
    fn settle<T>(&mut self, result: &Result<T>) {
        self.settled = true;
        let circuit = self.circuit;
        let mut m = circuit.lock();
        if m.generation != self.generation {
            // The circuit moved on while this probe ran; its slot went with that period.
            return;
        }
        m.probes_in_flight = m.probes_in_flight.saturating_sub(1);
        match result {
            Ok(_) => {
                m.probe_successes += 1;
                if m.probe_successes >= circuit.config.success_threshold {
                    circuit.transition(&mut m, CircuitState::Closed);
                }
            }
            Err(e) if counts_as_failure(e.kind()) => circuit.open(&mut m, Instant::now()),
            // The caller's own mistake says nothing about the backend: the slot is free again.
            Err(_) => {}
        }
    }
}

impl Drop for ProbeSlot<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut m = self.circuit.lock();
        if m.generation == self.generation {
            m.probes_in_flight = m.probes_in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use lexicache_core::{CacheBackend, CircuitState, ErrorKind};
    use lexicache_memory::MemoryBackend;

    use super::super::namespaced::ttl_reads;
    use super::{CircuitBreaker, CircuitBreakerConfig};

    #[tokio::test(start_paused = true)]
    async fn ttl_reads_pass_a_closed_circuit_and_are_refused_by_an_open_one() {
        let config = CircuitBreakerConfig::new().failure_threshold(1);
        let cache = CircuitBreaker::new(MemoryBackend::new(), config);
        ttl_reads::assert_forwarded(&cache).await;

        cache.circuit.closed_failure();
        assert_eq!(cache.state(), CircuitState::Open);
        let err = cache.get_with_ttl("ttl").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen);
        let err = cache.get_many_with_ttl(&["ttl"]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen);
        assert_eq!(cache.stats().rejected, 2);
    }
}
