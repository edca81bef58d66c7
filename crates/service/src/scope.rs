//! Request scope: memoized calls and request-scoped keys that live as long as one request.
//! The `#[cache_in_request]` attribute macro of `lexicache-macros` expands to
//! [`cache_in_request`].
//!
//! A [`RequestScope`] is a tokio task-local: [`RequestScope::run`] (or [`request_scope`]) makes
//! it current for one future. Inside it:
//!
//! - [`cache_in_request`] runs a call once per scope for the same function and arguments (the
//!   key is [`memo::call_key`]), even when identical calls run
//!   concurrently (`tokio::join!`): the others wait for the first and get a clone of its result.
//!   Outside any scope the call simply runs, every time; that is not an error.
//! - [`CacheService::request_scoped`] reads and writes keys of the scope's own in the backend
//!   (`__lexicache:req:{scope id}:{key}` under the service's namespace), with a capped TTL.
//!
//! When `run` of the scope made by [`RequestScope::new`] ends (or its future is dropped), the
//! scope ends: it drops every memoized result and deletes the request-scoped keys it wrote.
//! Nothing it held outlives `run`.
//!
//! # Spawned tasks
//!
//! Task-locals do not cross `tokio::spawn`: a task spawned inside a scope runs outside it. To
//! carry the scope into a task, wrap the task's future with [`RequestScope::propagate`] (or run
//! it in [`RequestScope::current`]`.run(..)`); the task then shares the scope's memoized calls
//! and keys until the scope ends. After the end, a propagated task sees an ended scope, which
//! behaves like no scope.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use lexicache_service::{cache_in_request, request_scope};
//!
//! static RUNS: AtomicUsize = AtomicUsize::new(0);
//!
//! async fn permissions(user: u64) -> Vec<String> {
//!     cache_in_request("app::permissions", &(user,), || async move {
//!         RUNS.fetch_add(1, Ordering::SeqCst);
//!         vec![format!("read:{user}")]
//!     })
//!     .await
//! }
//!
//! request_scope(async {
//!     let (a, b) = tokio::join!(permissions(7), permissions(7));
//!     assert_eq!(a, b);
//!     permissions(7).await;
//! })
//! .await;
//! assert_eq!(RUNS.load(Ordering::SeqCst), 1);
//!
//! // A new scope, a new run; outside any scope, every call runs.
//! request_scope(permissions(7)).await;
//! permissions(7).await;
//! assert_eq!(RUNS.load(Ordering::SeqCst), 3);
//! # }
//! ```

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{Error, ErrorKind, Operation, Result, Serializer, SharedBackend};
use lexicache_serde::Json;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::{memo, CacheService};

/// The default cap on the TTL of request-scoped keys.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(300);

/// The prefix of request-scoped keys, before the scope's id.
pub const SCOPED_KEY_PREFIX: &str = "__lexicache:req:";

/// How many keys one `delete_many` of a scope's cleanup removes.
const CLEANUP_BATCH: usize = 500;

tokio::task_local! {
    static CURRENT: RequestScope;
}

/// A request scope: memoized calls and request-scoped keys live until it ends.
///
/// The handle made by [`new`](Self::new) owns the scope: its [`run`](Self::run) ends the scope
/// when the future finishes. Clones and [`current`](Self::current) share the scope without
/// owning it, to carry it into spawned tasks; their `run` does not end it.
///
/// # Cancel safety
///
/// Dropping the future of the owner's `run` ends the scope at once: memoized results are
/// dropped, and the deletion of request-scoped keys is spawned on the current tokio runtime
/// (without a runtime, the keys expire with their capped TTL).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use lexicache_service::{CacheService, RequestScope};
///
/// let cache = CacheService::memory().build();
/// let scope = RequestScope::new().max_ttl(Duration::from_secs(60));
/// let id = scope.id().to_owned();
/// scope
///     .run(async {
///         let draft = cache.request_scoped();
///         assert!(draft.set("draft", &"hello", None).await);
///         assert_eq!(draft.get::<String>("draft").await.as_deref(), Some("hello"));
///         // Stored in the backend under the scope's id.
///         let key = format!("__lexicache:req:{id}:draft");
///         assert!(cache.exists(&key).await);
///     })
///     .await;
/// // The scope ended: its keys are gone, and outside a scope there are none.
/// assert!(!cache.exists(&format!("__lexicache:req:{id}:draft")).await);
/// assert_eq!(cache.request_scoped().get::<String>("draft").await, None);
/// # }
/// ```
pub struct RequestScope {
    shared: Arc<Shared>,
    owner: bool,
}

struct Shared {
    id: String,
    state: Mutex<State>,
}

struct State {
    /// Memoized calls: `(call key, result type)` to an `Arc<OnceCell<T>>`.
    calls: HashMap<(String, TypeId), Arc<dyn Any + Send + Sync>>,
    /// Request-scoped keys written, per backend stack.
    written: Vec<Written>,
    max_ttl: Duration,
    ended: bool,
}

/// The request-scoped keys written through one backend stack.
struct Written {
    backend: SharedBackend,
    keys: HashSet<String>,
}

impl Default for RequestScope {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for RequestScope {
    /// A handle on the same scope that does not own it: its `run` does not end the scope.
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            owner: false,
        }
    }
}

impl fmt::Debug for RequestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("RequestScope")
            .field("id", &self.shared.id)
            .field("owner", &self.owner)
            .field("calls", &state.calls.len())
            .field(
                "scoped_keys",
                &state.written.iter().map(|w| w.keys.len()).sum::<usize>(),
            )
            .field("max_ttl", &state.max_ttl)
            .field("ended", &state.ended)
            .finish()
    }
}

impl RequestScope {
    /// A new, empty scope with a unique id and the [default TTL cap](DEFAULT_MAX_TTL).
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                id: new_scope_id(),
                state: Mutex::new(State {
                    calls: HashMap::new(),
                    written: Vec::new(),
                    max_ttl: DEFAULT_MAX_TTL,
                    ended: false,
                }),
            }),
            owner: true,
        }
    }

    /// Caps the TTL of the request-scoped keys written from now on (5 minutes by default), so
    /// that keys of a scope that could not clean up (its process died, say) expire soon.
    #[must_use]
    pub fn max_ttl(self, max_ttl: Duration) -> Self {
        self.shared.state.lock().max_ttl = max_ttl;
        self
    }

    /// The scope's unique id (32 hex digits), part of its request-scoped keys.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Whether the scope has ended.
    #[must_use]
    pub fn has_ended(&self) -> bool {
        self.shared.state.lock().ended
    }

    /// The scope the current task runs in, as a non-owning handle; `None` outside any scope.
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Self::clone).ok()
    }

    /// Wraps `fut` so that it runs in the current scope, wherever it is polled: the way to
    /// carry a scope into `tokio::spawn`. Outside any scope, `fut` runs unchanged.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use lexicache_service::{request_scope, RequestScope};
    ///
    /// request_scope(async {
    ///     let id = RequestScope::current().unwrap().id().to_owned();
    ///     let plain = tokio::spawn(async { RequestScope::current().is_some() });
    ///     let carried = tokio::spawn(RequestScope::propagate(async {
    ///         RequestScope::current().map(|s| s.id().to_owned())
    ///     }));
    ///     assert!(!plain.await.unwrap()); // task-locals do not cross spawn
    ///     assert_eq!(carried.await.unwrap(), Some(id));
    /// })
    /// .await;
    /// # }
    /// ```
    pub fn propagate<F: Future>(fut: F) -> impl Future<Output = F::Output> {
        let scope = Self::current();
        async move {
            match scope {
                Some(scope) => scope.run(fut).await,
                None => fut.await,
            }
        }
    }

    /// Runs `fut` inside this scope. When this handle owns the scope (it came from
    /// [`new`](Self::new)), the scope ends when `fut` finishes: memoized results are dropped
    /// and its request-scoped keys deleted before `run` returns.
    ///
    /// # Cancel safety
    ///
    /// See [`RequestScope`]: dropping the owner's `run` ends the scope, deleting its keys in a
    /// spawned task.
    pub async fn run<F: Future>(self, fut: F) -> F::Output {
        if !self.owner {
            return CURRENT.scope(self, fut).await;
        }
        let guard = EndGuard(Some(self.shared.clone()));
        let out = CURRENT.scope(self, fut).await;
        guard.end().await;
        out
    }

    /// Forgets the memoized calls made so far (request-scoped keys stay); later calls run
    /// again. For long requests that must see fresh results after a write.
    pub fn clear(&self) {
        let calls = std::mem::take(&mut self.shared.state.lock().calls);
        // Results are dropped here, outside the lock: their `Drop` may do anything.
        drop(calls);
    }

    /// The once-cell of a call, or `None` when the scope has ended.
    fn cell<T: Send + Sync + 'static>(&self, key: String) -> Option<Arc<OnceCell<T>>> {
        let mut state = self.shared.state.lock();
        if state.ended {
            return None;
        }
        let cell = state
            .calls
            .entry((key, TypeId::of::<T>()))
            .or_insert_with(|| Arc::new(OnceCell::<T>::new()));
        cell.clone().downcast::<OnceCell<T>>().ok()
    }

    /// Records a request-scoped key about to be written, and returns the TTL cap; an error
    /// when the scope has ended.
    fn record(&self, backend: &SharedBackend, key: &str) -> Result<Duration> {
        let mut state = self.shared.state.lock();
        if state.ended {
            return Err(scope_ended());
        }
        match state
            .written
            .iter_mut()
            .find(|w| Arc::ptr_eq(&w.backend, backend))
        {
            Some(written) => {
                written.keys.insert(key.to_owned());
            }
            None => state.written.push(Written {
                backend: backend.clone(),
                keys: HashSet::from([key.to_owned()]),
            }),
        }
        Ok(state.max_ttl)
    }
}

impl Shared {
    /// Ends the scope: drops its memoized results and hands back the keys to delete.
    fn end(&self) -> Vec<Written> {
        let (calls, written) = {
            let mut state = self.state.lock();
            state.ended = true;
            (
                std::mem::take(&mut state.calls),
                std::mem::take(&mut state.written),
            )
        };
        drop(calls);
        written
    }
}

impl Drop for Shared {
    /// A scope whose owner never ran still cleans up when its last handle goes.
    fn drop(&mut self) {
        let written = std::mem::take(&mut self.state.get_mut().written);
        spawn_cleanup(written);
    }
}

/// Ends the owner's scope however its `run` finishes.
struct EndGuard(Option<Arc<Shared>>);

impl EndGuard {
    async fn end(mut self) {
        if let Some(shared) = self.0.take() {
            delete_written(shared.end()).await;
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            spawn_cleanup(shared.end());
        }
    }
}

/// Deletes `written` in a task on the current runtime; without one, the TTL cap bounds the
/// keys' lives.
fn spawn_cleanup(written: Vec<Written>) {
    if written.iter().all(|w| w.keys.is_empty()) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(delete_written(written));
        }
        Err(_) => tracing::debug!(
            keys = written.iter().map(|w| w.keys.len()).sum::<usize>(),
            "request scope ended outside a tokio runtime; its keys expire with their TTL"
        ),
    }
}

async fn delete_written(written: Vec<Written>) {
    for Written { backend, keys } in written {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for batch in keys.chunks(CLEANUP_BATCH) {
            if let Err(e) = backend.delete_many(batch).await {
                tracing::warn!(
                    backend = %backend.name(),
                    keys = batch.len(),
                    kind = %e.kind(),
                    error = %e,
                    "could not delete a request scope's keys; they expire with their TTL"
                );
            }
        }
    }
}

/// 128 random bits, or, where the system has no randomness, the process id, a counter and
/// the time: unique enough for keys that live minutes.
fn new_scope_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[..4].copy_from_slice(&std::process::id().to_le_bytes());
        bytes[4..8].copy_from_slice(&count.to_le_bytes()[..4]);
        bytes[8..].copy_from_slice(&nanos.to_le_bytes()[..8]);
    }
    let mut id = String::with_capacity(32);
    for b in bytes {
        use fmt::Write as _;
        let _ = write!(id, "{b:02x}");
    }
    id
}

fn no_scope() -> Error {
    Error::new(ErrorKind::NoRequestScope, "request-scope")
        .with_message("request-scoped keys need a request scope (RequestScope::run)")
}

fn scope_ended() -> Error {
    Error::new(ErrorKind::NoRequestScope, "request-scope")
        .with_message("the request scope has ended")
}

/// Runs `fut` inside a new request scope, which ends with it.
pub async fn request_scope<F: Future>(fut: F) -> F::Output {
    RequestScope::new().run(fut).await
}

/// Runs `f` once per request scope for the same `function` and `args`; later calls in the
/// scope get a clone of the first result. Outside a scope, `f` simply runs.
///
/// The call key is [`memo::call_key`]`(function, args)` (and the result
/// type): the same derivation as memoization, so the same rules on deterministic arguments
/// apply. Arguments that do not serialize make the call run unmemoized (logged). Concurrent
/// identical calls in one scope wait for the first; if it is dropped midway, one of them runs
/// its own `f`. A call in a scope that has ended runs `f`, as outside a scope.
///
/// # Panics
///
/// If `f` panics, the panic resumes in the caller that ran it; a waiting identical call then
/// runs its own `f`.
///
/// # Cancel safety
///
/// Cancel safe: dropping the call that runs `f` drops `f`, and the next identical call runs.
pub async fn cache_in_request<A, T, F, Fut>(function: &str, args: &A, f: F) -> T
where
    A: Serialize + ?Sized,
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let Some(scope) = RequestScope::current() else {
        return f().await;
    };
    let key = match memo::call_key(function, args) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(
                function,
                error = %e,
                "request-scoped call's arguments did not serialize; running it unmemoized"
            );
            return f().await;
        }
    };
    let Some(cell) = scope.cell::<T>(key) else {
        return f().await;
    };
    drop(scope);
    cell.get_or_init(f).await.clone()
}

impl<S: Serializer> CacheService<S> {
    /// A view of this service whose keys belong to the current [`RequestScope`]: stored in the
    /// backend as `__lexicache:req:{scope id}:{key}` (under the service's namespace), with
    /// their TTL capped by [`RequestScope::max_ttl`], and deleted when the scope ends. Two
    /// scopes never see each other's keys.
    ///
    /// Outside a scope (or after it ended), the `try_` forms fail with
    /// [`ErrorKind::NoRequestScope`] and the plain forms return the default (logged and
    /// counted, as any failure of a plain form).
    pub fn request_scoped(&self) -> RequestScoped<'_, S> {
        RequestScoped { cache: self }
    }
}

/// Request-scoped access to a [`CacheService`], made by
/// [`CacheService::request_scoped`]. See there.
#[derive(Debug)]
pub struct RequestScoped<'c, S: Serializer = Json> {
    cache: &'c CacheService<S>,
}

impl<S: Serializer> RequestScoped<'_, S> {
    /// The backend key of `key` in the current scope, or `None` outside a scope.
    #[must_use]
    pub fn key(&self, key: &str) -> Option<String> {
        RequestScope::current().map(|scope| scoped_key(&scope, key))
    }

    /// The value of `key` in this scope, or `None` on a miss, outside a scope, or on a failure
    /// (logged and counted).
    pub async fn get<T>(&self, key: &str) -> Option<T>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.try_get(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Get, key, &e))
    }

    /// The value of `key` in this scope.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRequestScope`] outside a scope, else as
    /// [`CacheService::try_get`].
    pub async fn try_get<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let (scope, full) = self.scoped(key, Operation::Get)?;
        if scope.has_ended() {
            return Err(self.cache.local_error(Operation::Get, scope_ended()));
        }
        self.cache.try_get(&full).await
    }

    /// Writes `value` under `key` in this scope, with `ttl` capped by the scope's
    /// [`max_ttl`](RequestScope::max_ttl) (`None` = the cap). Returns whether it was written;
    /// `false` outside a scope or on a failure (logged and counted).
    pub async fn set<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> bool
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        match self.try_set(key, value, ttl).await {
            Ok(()) => true,
            Err(e) => self.degrade(Operation::Set, key, &e),
        }
    }

    /// Writes `value` under `key` in this scope. The key is recorded before it is written, so
    /// the scope deletes it at its end even if this call is dropped midway.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRequestScope`] outside a scope or after it ended, else as
    /// [`CacheService::try_set`].
    pub async fn try_set<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let (scope, full) = self.scoped(key, Operation::Set)?;
        self.cache.check_key(&full, Operation::Set)?;
        let cap = scope
            .record(self.cache.backend(), &full)
            .map_err(|e| self.cache.local_error(Operation::Set, e))?;
        let ttl = ttl.map_or(cap, |ttl| ttl.min(cap));
        self.cache.try_set(&full, value, Some(ttl)).await
    }

    /// Removes `key` from this scope, returning whether it existed; `false` outside a scope or
    /// on a failure (logged and counted).
    pub async fn delete(&self, key: &str) -> bool {
        self.try_delete(key)
            .await
            .unwrap_or_else(|e| self.degrade(Operation::Delete, key, &e))
    }

    /// Removes `key` from this scope, returning whether it existed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRequestScope`] outside a scope, else as
    /// [`CacheService::try_delete`].
    pub async fn try_delete(&self, key: &str) -> Result<bool> {
        let (_, full) = self.scoped(key, Operation::Delete)?;
        self.cache.try_delete(&full).await
    }

    fn scoped(&self, key: &str, op: Operation) -> Result<(RequestScope, String)> {
        let scope =
            RequestScope::current().ok_or_else(|| self.cache.local_error(op, no_scope()))?;
        let full = scoped_key(&scope, key);
        Ok((scope, full))
    }

    #[cold]
    fn degrade<D: Default>(&self, op: Operation, key: &str, err: &Error) -> D {
        self.cache.degrade(op, key, err)
    }
}

fn scoped_key(scope: &RequestScope, key: &str) -> String {
    format!("{SCOPED_KEY_PREFIX}{}:{key}", scope.id())
}
