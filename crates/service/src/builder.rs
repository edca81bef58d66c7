//! [`CacheServiceBuilder`]: assembles a layer stack over a backend and wraps it in a
//! [`CacheService`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{
    CacheBackend, CacheMetrics, EventBus, KeyRules, Serializer, SharedBackend, SharedLockStore,
};
use lexicache_lock::protection::Protection;
use lexicache_lock::refresh::EarlyRefresh;

use lexicache_serde::Json;

use crate::layers::{
    namespace_prefix, namespaced_lock_store, CircuitBreaker, CircuitBreakerConfig, Evented,
    Metered, Namespaced, Timeout,
};
use crate::service::CacheService;

/// Builds a [`CacheService`]: the serializer, the layers, and the key rules.
///
/// Layers are stacked in a fixed order, from the outermost (first to see a call) to the
/// innermost: namespace → circuit breaker → timeout → metrics → events → backend. So metrics
/// and events see full, namespaced keys and describe what the backend did; a call cut off by
/// the timeout is counted as an error by the timeout layer into the same metrics, and reaches
/// the circuit breaker as a failure. See [`layers`](crate::layers).
///
/// ```
/// use std::time::Duration;
/// use lexicache_core::EventBus;
/// use lexicache_service::CacheService;
///
/// let bus = EventBus::new();
/// let cache = CacheService::memory()
///     .name("sessions")
///     .namespace("sessions")
///     .timeout(Duration::from_millis(100))
///     .events(bus)
///     .build();
/// assert_eq!(cache.name(), "sessions");
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheServiceBuilder<S = Json> {
    backend: SharedBackend,
    serializer: S,
    name: Option<String>,
    namespace: Option<String>,
    timeout: Option<Duration>,
    metrics: bool,
    latency_sampling: u32,
    events: Option<EventBus>,
    key_rules: Option<KeyRules>,
    protection: Protection,
    lock_store: Option<SharedLockStore>,
    early_refresh: EarlyRefresh,
    circuit_breaker: Option<CircuitBreakerConfig>,
    tag_ttl: Duration,
    /// The backend is `CacheService::memory()`'s default one, so `build` may rebuild it with
    /// the service's event bus (for its eviction events).
    default_memory: bool,
}

impl<S: fmt::Debug> fmt::Debug for CacheServiceBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheServiceBuilder")
            .field("backend", &self.backend.name())
            .field("serializer", &self.serializer)
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("metrics", &self.metrics)
            .field("latency_sampling", &self.latency_sampling)
            .field("events", &self.events.is_some())
            .field("key_rules", &self.key_rules)
            .field("protection", &self.protection)
            .field(
                "lock_store",
                &self.lock_store.as_ref().map(|s| s.name().to_owned()),
            )
            .field("early_refresh", &self.early_refresh)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("tag_ttl", &self.tag_ttl)
            .finish()
    }
}

impl CacheServiceBuilder<Json> {
    pub(crate) fn new<B: CacheBackend>(backend: B) -> Self {
        Self {
            backend: into_shared(backend),
            serializer: Json,
            name: None,
            namespace: None,
            timeout: None,
            metrics: true,
            latency_sampling: crate::layers::DEFAULT_LATENCY_SAMPLING,
            events: None,
            key_rules: None,
            protection: Protection::default(),
            lock_store: None,
            early_refresh: EarlyRefresh::default(),
            circuit_breaker: None,
            tag_ttl: crate::tags::DEFAULT_TAG_TTL,
            default_memory: false,
        }
    }
}

impl<S> CacheServiceBuilder<S> {
    /// Marks the backend as `CacheService::memory()`'s default one.
    #[cfg(feature = "memory")]
    pub(crate) fn default_memory(mut self) -> Self {
        self.default_memory = true;
        self
    }
}

impl<S: Serializer> CacheServiceBuilder<S> {
    /// Uses `serializer` for values instead of JSON.
    pub fn serializer<S2: Serializer>(self, serializer: S2) -> CacheServiceBuilder<S2> {
        CacheServiceBuilder {
            backend: self.backend,
            serializer,
            name: self.name,
            namespace: self.namespace,
            timeout: self.timeout,
            metrics: self.metrics,
            latency_sampling: self.latency_sampling,
            events: self.events,
            key_rules: self.key_rules,
            protection: self.protection,
            lock_store: self.lock_store,
            early_refresh: self.early_refresh,
            tag_ttl: self.tag_ttl,
            circuit_breaker: self.circuit_breaker,
            default_memory: self.default_memory,
        }
    }

    /// The label of this service in metrics, logs and errors; the backend's name by default.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Keeps every key in the namespace called `name` (a tenant, an application). Adds the
    /// [`Namespaced`] layer.
    ///
    /// Keys are stored under [`namespace_prefix(name)`](crate::layers::namespace_prefix):
    /// `name` with a trailing `:` dropped, percent-encoded, then `:`. So `"tenant-a"` and
    /// `"tenant-a:"` both store `user:1` as `tenant-a:user:1`, and no two namespaces can meet:
    /// `"a:b"` with key `c` is `a%3Ab:c`, `"a"` with key `b:c` is `a:b:c`. A name may hold any
    /// character (`:`, `{`, `*`...), as a tenant id from a request might.
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespace = Some(namespace_prefix(&name.into()));
        self
    }

    /// Bounds every backend call by `timeout`. Adds the [`Timeout`] layer, which needs a tokio
    /// runtime with the time driver.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Counts outcomes and latency with the [`Metered`] layer (on by default).
    ///
    /// Without it, [`CacheService::metrics`] only counts the service's own errors (invalid
    /// keys, values that do not decode).
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Times one call in `one_in` for the latency figures (rounded up to a power of two; 1
    /// times every call). Default [`DEFAULT_LATENCY_SAMPLING`](crate::layers::DEFAULT_LATENCY_SAMPLING):
    /// reading the clock twice costs several percent of an in-process hit. Outcomes are
    /// counted for every call either way.
    pub fn latency_sampling(mut self, one_in: u32) -> Self {
        self.latency_sampling = one_in;
        self
    }

    /// Emits hit, miss and error events onto `bus` with the [`Evented`] layer.
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// The rules keys must satisfy before any backend call. By default the standard rules, with
    /// the maximum length the stack accepts.
    pub fn key_rules(mut self, rules: KeyRules) -> Self {
        self.key_rules = Some(rules);
        self
    }

    /// Stampede protection for [`get_or_set`](CacheService::get_or_set) and its forms:
    /// [`Protection::default()`] (local single-flight, plus a distributed lock where there is
    /// a lock store), [`Protection::local()`], [`Protection::disabled()`] (no single-flight
    /// either), or custom waits and [`Fallback`](lexicache_lock::protection::Fallback).
    pub fn protection(mut self, protection: Protection) -> Self {
        self.protection = protection;
        self
    }

    /// The lock store distributed protection takes its locks from, instead of the backend's
    /// own ([`CacheBackend::lock_store`]: remote backends have one, the memory backend none).
    /// Lock resources get the [`namespace`](Self::namespace) prefix like keys do.
    pub fn lock_store(mut self, store: SharedLockStore) -> Self {
        self.lock_store = Some(store);
        self
    }

    /// The early refresh [`get_or_set`](CacheService::get_or_set) applies (XFetch and TTL
    /// jitter; stale-while-revalidate needs [`get_or_set_with`](CacheService::get_or_set_with)),
    /// and [`get_or_set_with`](CacheService::get_or_set_with) uses unless its
    /// [`LoadOptions`](crate::LoadOptions) say otherwise. Off by default.
    pub fn early_refresh(mut self, refresh: EarlyRefresh) -> Self {
        self.early_refresh = refresh;
        self
    }

    /// The TTL of [tag](CacheService::try_set_with_tags) version keys, which also caps tagged
    /// entries' TTLs (a tagged entry written with `ttl: None` gets it). Default
    /// [`DEFAULT_TAG_TTL`](crate::tags::DEFAULT_TAG_TTL), 7 days; values under one second are
    /// raised to one second (memcached's resolution). Every process sharing tags should use
    /// the same value. See [`tags`](crate::tags).
    pub fn tag_ttl(mut self, ttl: Duration) -> Self {
        self.tag_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Fails fast while the backend is down, with the [`CircuitBreaker`] layer (off by
    /// default). It sits outside the [`timeout`](Self::timeout), so timed-out calls count as
    /// failures; its state changes go to the [`events`](Self::events) bus when there is one,
    /// and the calls it refuses are counted as errors in [`CacheService::metrics`]. While it is
    /// open, [`CacheService::get`] returns `None` without calling the backend.
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.circuit_breaker = Some(config);
        self
    }

    /// Stacks the layers and builds the service.
    pub fn build(self) -> CacheService<S> {
        let name = self.name.unwrap_or_else(|| self.backend.name().to_owned());
        let metrics = Arc::new(CacheMetrics::new(name.clone()));

        // Built from the innermost layer outwards, so calls meet them in the documented order.
        let mut stack = self.backend;
        // `CacheService::memory()` made a default, still-empty memory backend: rebuild it on the
        // service's bus, so its evictions are events like every other change.
        #[cfg(feature = "memory")]
        if let (true, Some(bus)) = (self.default_memory, &self.events) {
            stack = Arc::new(
                lexicache_memory::MemoryBackend::builder()
                    .events(bus.clone())
                    .build(),
            );
        }
        if let Some(bus) = &self.events {
            stack = Arc::new(Evented::new(stack, bus.clone()));
        }
        if self.metrics {
            stack = Arc::new(
                Metered::new(stack, metrics.clone()).latency_sampling(self.latency_sampling),
            );
        }
        if let Some(timeout) = self.timeout {
            stack = Arc::new(Timeout::new(stack, timeout).with_metrics(metrics.clone()));
        }
        if let Some(config) = self.circuit_breaker {
            let mut breaker = CircuitBreaker::new(stack, config).with_metrics(metrics.clone());
            if let Some(bus) = &self.events {
                breaker = breaker.with_events(bus.clone());
            }
            stack = Arc::new(breaker);
        }
        let lock_store = match self.lock_store {
            Some(store) => Some(match &self.namespace {
                Some(prefix) => namespaced_lock_store(store, prefix),
                None => store,
            }),
            None => None,
        };
        if let Some(prefix) = self.namespace {
            stack = Arc::new(Namespaced::new(stack, prefix));
        }
        // Taken from the finished stack, so the store is namespaced and bounded like keys.
        let lock_store = lock_store.or_else(|| stack.lock_store());

        let caps = stack.capabilities();
        let key_rules = self
            .key_rules
            .unwrap_or_else(|| KeyRules::new().max_len(caps.max_key_len));
        CacheService::from_parts(crate::service::Parts {
            backend: stack,
            serializer: self.serializer,
            name,
            metrics,
            events: self.events,
            key_rules,
            caps,
            protection: self.protection,
            lock_store,
            early_refresh: self.early_refresh,
            tag_ttl: self.tag_ttl,
        })
    }
}

/// Shares `backend`, without wrapping it a second time when it is already a [`SharedBackend`]
/// (which would add a pointer hop and a virtual call to every call).
fn into_shared<B: CacheBackend>(backend: B) -> SharedBackend {
    let mut slot = Some(backend);
    if let Some(shared) = (&mut slot as &mut dyn Any).downcast_mut::<Option<SharedBackend>>() {
        if let Some(shared) = shared.take() {
            return shared;
        }
    }
    match slot {
        Some(backend) => Arc::new(backend),
        None => unreachable!("the slot is emptied only when it held a SharedBackend"),
    }
}
