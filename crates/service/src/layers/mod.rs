//! Layers: backends that wrap a backend to add one cross-cutting behaviour each.
//!
//! Every layer implements [`CacheBackend`](lexicache_core::CacheBackend) for any inner backend
//! and forwards every method, including `get_entry` and `set_entry`, so the decoded objects that
//! in-process backends keep survive the whole stack, and `lock_store`, so stampede protection
//! keeps its distributed lock behind any stack ([`Namespaced`] prefixes lock resources with its
//! namespace; [`Timeout`] bounds lock calls by its deadline; [`CircuitBreaker`] puts lock calls
//! behind its circuit).
//!
//! # Order
//!
//! [`CacheServiceBuilder`](crate::CacheServiceBuilder) stacks them in this order, from the
//! outermost (the first to see a call) to the innermost (the last before the backend):
//!
//! 1. [`Namespaced`]: prefixes keys, so everything below sees full keys and a tenant's glob
//!    cannot leave its namespace;
//! 2. [`CircuitBreaker`]: fails fast while the backend is down. It sits *outside* the timeout,
//!    so a timed-out call reaches it as a [`Timeout`](lexicache_core::ErrorKind::Timeout) error
//!    and counts as a failure (inside, it would only see its future dropped, which cannot be
//!    told apart from a caller giving up), and a refused call is never timed;
//! 3. [`Timeout`]: bounds each call, so a hung backend costs at most the deadline;
//! 4. [`Metered`]: counts outcomes and latency of the calls that reach the backend (the
//!    breaker and the timeout count the calls they refuse or cut off into the same metrics);
//! 5. [`Evented`]: emits hit, miss, set, delete and error events;
//! 6. the backend.
//!
//! A layer can wrap a [`SharedBackend`](lexicache_core::SharedBackend) directly: core's
//! forwarding impl on `Arc<dyn CacheBackend>` hands back the inner boxed future, so it adds no
//! allocation per call.

mod breaker;
mod evented;
mod metered;
mod namespaced;
mod timeout;

pub use breaker::{counts_as_failure, CircuitBreaker, CircuitBreakerConfig, CircuitStats};
pub use evented::Evented;
pub use metered::{Metered, DEFAULT_LATENCY_SAMPLING};
pub(crate) use namespaced::namespaced_lock_store;
pub use namespaced::{namespace_prefix, Namespaced};
pub use timeout::Timeout;
