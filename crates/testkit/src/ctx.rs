//! The context one case runs in: its backends, their capabilities and the clock, plus the small
//! assertion helpers every case shares.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Bytes, CacheBackend, Capabilities, ErrorKind, Result};

use crate::runner::namespace_for;

/// Something that makes a backend for a namespace. It is implemented for every
/// `Fn(String) -> impl Future<Output = impl CacheBackend>`, so cases can be generic over one
/// parameter instead of three.
pub(crate) trait Factory {
    /// The backend made.
    type Backend: CacheBackend;

    /// Makes a backend whose keys live in `namespace`.
    fn make(&self, namespace: String) -> impl Future<Output = Self::Backend>;
}

impl<F, Fut> Factory for F
where
    F: Fn(String) -> Fut,
    Fut: Future,
    Fut::Output: CacheBackend,
{
    type Backend = Fut::Output;

    fn make(&self, namespace: String) -> impl Future<Output = Self::Backend> {
        self(namespace)
    }
}

/// What a running case can reach.
pub(crate) struct Ctx<'f, F: Factory> {
    case: &'static str,
    factory: &'f F,
    backend: Arc<F::Backend>,
    caps: Capabilities,
    /// Every backend made for this case, so the runner can clear them afterwards.
    made: RefCell<Vec<Arc<F::Backend>>>,
    /// Whether this case paused tokio's clock, so the runner resumes it even after a panic.
    paused: Cell<bool>,
}

impl<F: Factory> fmt::Debug for Ctx<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("case", &self.case)
            .field("backend", &self.backend)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl<'f, F: Factory> Ctx<'f, F> {
    pub(crate) fn new(case: &'static str, factory: &'f F, backend: Arc<F::Backend>) -> Self {
        let caps = backend.capabilities();
        Self {
            case,
            factory,
            made: RefCell::new(vec![Arc::clone(&backend)]),
            backend,
            caps,
            paused: Cell::new(false),
        }
    }

    /// The backend of the case's own namespace.
    pub(crate) fn b(&self) -> &F::Backend {
        &self.backend
    }

    /// The same backend as an `Arc`, for spawned tasks and threads.
    pub(crate) fn shared(&self) -> Arc<F::Backend> {
        Arc::clone(&self.backend)
    }

    /// The backend's capabilities, read once when the case started.
    pub(crate) fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// A backend over a second, fresh namespace (sharing the store where the factory does).
    pub(crate) async fn other_namespace(&self) -> Arc<F::Backend> {
        let backend = Arc::new(self.factory.make(namespace_for(self.case)).await);
        self.made.borrow_mut().push(Arc::clone(&backend));
        backend
    }

    /// Every backend made for this case.
    pub(crate) fn made(&self) -> Vec<Arc<F::Backend>> {
        self.made.borrow().clone()
    }

    /// Whether this case paused tokio's clock.
    pub(crate) fn paused(&self) -> bool {
        self.paused.get()
    }

    /// On a backend that follows tokio's clock, pauses the clock now, so the real time a
    /// loaded machine spends between the writes and the first [`elapse`](Self::elapse) does
    /// not count against a TTL. Cases that measure a TTL call it before their first write.
    pub(crate) fn freeze_clock(&self) {
        if self.caps.tokio_clock && !self.paused.get() {
            tokio::time::pause();
            self.paused.set(true);
        }
    }

    /// Lets `d` pass: on a backend that follows tokio's clock the clock is paused and advanced,
    /// so no test waits; otherwise this really sleeps.
    pub(crate) async fn elapse(&self, d: Duration) {
        if self.caps.tokio_clock {
            self.freeze_clock();
            tokio::time::advance(d).await;
        } else {
            tokio::time::sleep(d).await;
        }
    }
}

/// Bytes of a string, for short values.
pub(crate) fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// `Some(bytes)` of a string, for comparing with reads.
pub(crate) fn some(s: &str) -> Option<Bytes> {
    Some(bytes(s))
}

/// Unwraps a backend result, failing the case with the operation and the error when it is an error.
pub(crate) trait Must<T> {
    /// The value, or a panic naming `what` and the error.
    fn must(self, what: &str) -> T;
}

impl<T> Must<T> for Result<T> {
    #[track_caller]
    fn must(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: unexpected error: {e}"),
        }
    }
}

/// Fails the case unless `result` is an error of `kind`.
#[track_caller]
pub(crate) fn expect_kind<T: fmt::Debug>(result: Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected a {kind} error, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error kind: {e}"),
    }
}
