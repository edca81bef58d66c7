//! Memoization: the results of function calls, cached under keys derived from the function
//! and its arguments, with the service's stampede protection. The `#[cached]` attribute macro
//! of `lexicache-macros` expands to these calls.
//!
//! [`CacheService::memo`] starts a [`Memo`]; its builder methods set the key, TTL, tags and
//! protection, and one of three calls runs it:
//!
//! - [`remember`](Memo::remember): a hit returns the cached value; a miss runs `f` once for
//!   all concurrent callers and caches its result;
//! - [`cacheable`](Memo::cacheable): for a fallible `f`, `Ok` is cached and `Err` never is;
//!   every caller that gets an `Err` gets its own, as the original `E`;
//! - [`conditional`](Memo::conditional): caches the result only when a predicate holds on it.
//!
//! [`CacheService::invalidate_after`] runs a function and then removes keys, glob patterns
//! and tags ([`Invalidation`]).
//!
//! # Keys
//!
//! The key of a call is stable across runs, processes and machines, so that every process
//! sharing a backend shares the memo:
//!
//! - with [`args(&a)`](Memo::args): `{prefix}{function}:{digest}`, where `digest` is the
//!   lowercase hex of the first 16 bytes of the SHA-256 of `serde_json::to_vec(&a)` (32 hex
//!   digits). The macro passes the function's arguments as a tuple, so `(42u64, "x")` hashes
//!   the JSON `[42,"x"]`. See [`call_key`];
//! - with neither `args` nor `key`: as `args(&())`, whose JSON is `null`;
//! - with [`key(k)`](Memo::key) (for example a rendered `"user:{id}"` template):
//!   `{prefix}{k}`, with no function and no hash.
//!
//! `function` is whatever the caller names the function. The macro passes its path:
//! `concat!(module_path!(), "::", name)` for a free function, `type_name::<Self>()` + `::` +
//! the name for a method, or the `name = "..."` it was given. So moving or renaming a function
//! starts a new memo.
//! The prefix is empty by default and the service's namespace, if any, comes before all of it.
//!
//! The arguments must serialize **deterministically**: equal arguments must give equal JSON.
//! Structs, tuples, vectors and `BTreeMap`s do; a `HashMap` or `HashSet` does not (its order
//! varies between runs), so use a `BTreeMap`/`BTreeSet` or sort first. Arguments that fail to
//! serialize do not fail the call: the function runs uncached, with a warning logged and a
//! [`Operation::Serialize`] error counted.
//!
//! # Failures
//!
//! Memoization never makes a call fail that would succeed uncached. An invalid key (too long
//! for the backend, say), a backend that is down, a value that no longer decodes: each is
//! logged and `f` runs (a broken entry is overwritten by the new result). Only `f` itself can
//! fail a call, through `cacheable`'s `Err`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use lexicache_service::{memo, CacheService, Invalidation};
//!
//! let cache = CacheService::memory().build();
//! let user = |id: u64| async move { format!("user {id}") };
//!
//! let name = cache
//!     .memo("app::user_name")
//!     .args(&(7u64,))
//!     .ttl(Duration::from_secs(60))
//!     .remember(|| user(7))
//!     .await;
//! assert_eq!(name, "user 7");
//!
//! // The key is the function path and a hash of the arguments.
//! let key = memo::call_key("app::user_name", &(7u64,)).unwrap();
//! assert_eq!(key, "app::user_name:589ffd3acf522ae81192579f297589e9");
//! assert_eq!(cache.get::<String>(&key).await.as_deref(), Some("user 7"));
//!
//! // Err is never cached.
//! let found: Result<u32, String> = cache
//!     .memo("app::lookup")
//!     .key("lookup:missing")
//!     .cacheable(|| async { Err("not found".to_owned()) })
//!     .await;
//! assert_eq!(found, Err("not found".to_owned()));
//! assert!(!cache.exists("lookup:missing").await);
//!
//! // Run an update, then drop what it made stale.
//! let renamed = cache
//!     .invalidate_after(&Invalidation::keys([key.as_str()]), || async { "renamed" })
//!     .await;
//! assert_eq!(renamed, "renamed");
//! assert!(!cache.exists(&key).await);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lexicache_core::{key_hash, BoxError, Error, ErrorKind, Operation, Result, Serializer};
use lexicache_serde::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::CacheService;

/// How many bytes of the SHA-256 of the arguments a key keeps (as twice as many hex digits).
const DIGEST_BYTES: usize = 16;

/// The key of a call of `function` with `args`, before any [prefix](Memo::prefix):
/// `{function}:{digest}`, where `digest` is the lowercase hex of the first 16 bytes of the
/// SHA-256 of the arguments' JSON (`serde_json::to_vec(args)`).
///
/// [`Memo`] and [request scope](crate::scope) both key calls with it. See the
/// [module documentation](self) for what makes arguments hash the same across runs.
///
/// ```
/// use lexicache_service::memo::call_key;
///
/// // SHA-256 of the JSON `[1,"a"]`, first 16 bytes.
/// assert_eq!(call_key("f", &(1, "a")).unwrap(), "f:2010945388e2de98f5651051478912aa");
/// ```
///
/// # Errors
///
/// [`ErrorKind::Serialization`] when `args` do not serialize to JSON (a map with non-string
/// keys, or a `Serialize` impl that fails).
pub fn call_key<A: Serialize + ?Sized>(function: &str, args: &A) -> Result<String> {
    let digest = args_digest(args)?;
    Ok(format!("{function}:{digest}"))
}

/// The hex digest of the arguments' JSON.
fn args_digest<A: Serialize + ?Sized>(args: &A) -> Result<String> {
    let json = serde_json::to_vec(args).map_err(|e| {
        Error::new(ErrorKind::Serialization, "memo")
            .with_operation(Operation::Serialize)
            .with_message("the memoized call's arguments did not serialize to JSON")
            .with_source(e)
    })?;
    let hash = Sha256::digest(&json);
    let mut hex = String::with_capacity(DIGEST_BYTES * 2);
    for byte in &hash[..DIGEST_BYTES] {
        use fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// Where a memo's key comes from.
#[derive(Debug, Clone)]
enum KeySource {
    /// `{function}:{digest}`: a digest of the arguments (of `()` when none were given).
    Digest(String),
    /// `{key}`, given explicitly.
    Explicit(String),
    /// The arguments did not serialize: the call runs uncached.
    Unkeyable(Error),
}

/// A memoized call on a [`CacheService`], built by [`CacheService::memo`] and run by
/// [`remember`](Self::remember), [`cacheable`](Self::cacheable) or
/// [`conditional`](Self::conditional). See the [module documentation](self) for the keys.
///
/// Defaults: no prefix, no TTL (the backend's default), no tags, stampede protection on, and
/// the key of a call without arguments.
#[derive(Debug)]
#[must_use = "a memo does nothing until remember, cacheable or conditional is awaited"]
pub struct Memo<'c, S: Serializer = Json> {
    cache: &'c CacheService<S>,
    function: String,
    prefix: String,
    ttl: Option<Duration>,
    tags: Vec<String>,
    protect: bool,
    key: KeySource,
}

impl<S: Serializer> CacheService<S> {
    /// Starts a memoized call of `function` (its path, e.g. `concat!(module_path!(), "::f")`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use lexicache_service::CacheService;
    ///
    /// let cache = CacheService::memory().build();
    /// let square = |x: u32| async move { x * x };
    /// let n = cache.memo("app::square").args(&(12u32,)).remember(|| square(12)).await;
    /// assert_eq!(n, 144);
    /// // A hit: this closure does not run.
    /// let n = cache.memo("app::square").args(&(12u32,)).remember(|| async { 0 }).await;
    /// assert_eq!(n, 144);
    /// # }
    /// ```
    pub fn memo(&self, function: &str) -> Memo<'_, S> {
        // The digest of `()` cannot fail; the fallback only keeps this infallible by type.
        let key = match args_digest(&()) {
            Ok(digest) => KeySource::Digest(digest),
            Err(e) => KeySource::Unkeyable(e),
        };
        Memo {
            cache: self,
            function: function.to_owned(),
            prefix: String::new(),
            ttl: None,
            tags: Vec::new(),
            protect: true,
            key,
        }
    }

    /// Runs `f`, then removes what `invalidation` names: its keys, the keys matching its glob
    /// patterns ([`delete_pattern`](Self::delete_pattern)), and the entries tagged with its
    /// tags ([`invalidate_tags`](Self::invalidate_tags)). Returns what `f` returned.
    ///
    /// Invalidation runs after `f` whatever `f` returned (see
    /// [`invalidate_after_ok`](Self::invalidate_after_ok) for a fallible `f`), and its failures
    /// are logged and counted ([`invalidate`](Self::invalidate)) without changing the result.
    /// Memcached cannot delete by pattern: there a pattern is an
    /// [`ErrorKind::Unsupported`] failure, logged and counted; use tags to invalidate groups
    /// of keys on every backend.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while `f` runs drops `f` and invalidates nothing; dropping it while
    /// invalidating leaves some of the named entries removed and others not.
    pub async fn invalidate_after<T, F, Fut>(&self, invalidation: &Invalidation, f: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let out = f().await;
        self.invalidate(invalidation).await;
        out
    }

    /// As [`invalidate_after`](Self::invalidate_after), invalidating only when `f` returns
    /// `Ok`: a failed update changed nothing, so the cache is still right.
    ///
    /// # Errors
    ///
    /// `f`'s own error, untouched.
    ///
    /// # Cancel safety
    ///
    /// As [`invalidate_after`](Self::invalidate_after).
    pub async fn invalidate_after_ok<T, E, F, Fut>(
        &self,
        invalidation: &Invalidation,
        f: F,
    ) -> std::result::Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let out = f().await;
        if out.is_ok() {
            self.invalidate(invalidation).await;
        }
        out
    }

    /// Removes what `invalidation` names: keys, then patterns, then tags. Returns whether every
    /// part succeeded. Each part is attempted even when an earlier one failed; a failure is
    /// logged (keys only as hashes) and counted as an error in [`metrics`](Self::metrics)
    /// (backend failures by the metrics layer, invalid keys by the service).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future midway leaves some of the named entries removed and others not.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> bool {
        let mut ok = true;
        if !invalidation.keys.is_empty() {
            let keys: Vec<&str> = invalidation.keys.iter().map(String::as_str).collect();
            if let Err(e) = self.try_delete_many(&keys).await {
                self.invalidation_failed(Operation::DeleteMany, &keys.len().to_string(), &e);
                ok = false;
            }
        }
        for pattern in &invalidation.patterns {
            if let Err(e) = self.delete_pattern(pattern).await {
                self.invalidation_failed(Operation::DeletePattern, &key_hash(pattern), &e);
                ok = false;
            }
        }
        if !invalidation.tags.is_empty() {
            let tags: Vec<&str> = invalidation.tags.iter().map(String::as_str).collect();
            if let Err(e) = self.invalidate_tags(&tags).await {
                self.invalidation_failed(Operation::Delete, &tags.len().to_string(), &e);
                ok = false;
            }
        }
        ok
    }

    #[cold]
    fn invalidation_failed(&self, op: Operation, what: &str, err: &Error) {
        tracing::warn!(
            service = %self.inner.name,
            operation = %op,
            what,
            kind = %err.kind(),
            error = %err,
            "invalidation failed; the function's result is returned regardless"
        );
    }
}

impl<'c, S: Serializer> Memo<'c, S> {
    /// A prefix before the derived key (for example `"users:"`). Empty by default.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of the cached result; the backend's default when not set.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Tags the cached result, so [`invalidate_tags`](CacheService::invalidate_tags) with any
    /// of `tags` makes it a miss. A tagged memo always loads through
    /// [`get_or_set_tagged`](CacheService::get_or_set_tagged), which is protected whatever
    /// [`protect`](Self::protect) says.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Stampede protection (on by default): a miss loads through
    /// [`get_or_set`](CacheService::get_or_set), so concurrent callers of one key share one run
    /// of `f` in this process and, with a lock store, across processes. Off, every caller that
    /// misses runs `f` and writes its result.
    pub fn protect(mut self, on: bool) -> Self {
        self.protect = on;
        self
    }

    /// Derives the key from the function path and a hash of the serialized `args` (see
    /// [`call_key`]); replaces any earlier `args` or [`key`](Self::key).
    pub fn args<A: Serialize + ?Sized>(mut self, args: &A) -> Self {
        self.key = match args_digest(args) {
            Ok(digest) => KeySource::Digest(digest),
            Err(e) => KeySource::Unkeyable(e.with_backend(self.cache.inner.name.clone())),
        };
        self
    }

    /// Uses `key` (e.g. a rendered template) after the prefix instead of hashing arguments;
    /// replaces any earlier [`args`](Self::args) or `key`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = KeySource::Explicit(key.into());
        self
    }

    /// The full key this memo reads and writes (under the service's namespace), or `None` when
    /// the arguments did not serialize.
    ///
    /// ```
    /// use lexicache_service::CacheService;
    ///
    /// let cache = CacheService::memory().build();
    /// let memo = cache.memo("app::f").prefix("v1:").key("user:7");
    /// assert_eq!(memo.cache_key().as_deref(), Some("v1:user:7"));
    /// ```
    #[must_use]
    pub fn cache_key(&self) -> Option<String> {
        match &self.key {
            KeySource::Digest(digest) => Some(format!("{}{}:{digest}", self.prefix, self.function)),
            KeySource::Explicit(key) => Some(format!("{}{key}", self.prefix)),
            KeySource::Unkeyable(_) => None,
        }
    }

    /// Returns the cached result, or runs `f` and caches what it returns.
    ///
    /// With protection on, concurrent callers that miss share one run of `f` (its result is
    /// cloned for each); their own closures are dropped unused. When the cache fails (an
    /// invalid key, a backend that is down, an entry that does not decode) `f` runs and its
    /// result is returned, cached if the backend takes it: see the [module
    /// documentation](self#failures).
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic resumes in the caller that ran it; callers that were waiting
    /// for that run each run their own `f`.
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_set`](CacheService::get_or_set): dropping a caller that runs `f` drops `f`
    /// midway and caches nothing; one of its waiters runs its own `f` instead.
    pub async fn remember<T, F, Fut>(self, f: F) -> T
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let Some(key) = self.usable_key() else {
            return f().await;
        };
        let mut f = Some(f);
        let mut ran: Option<T> = None;
        let loaded = self
            .load(&key, || {
                let (f, ran) = (f.take(), &mut ran);
                async move {
                    let f = f.ok_or(Marker::Gone)?;
                    let value = f().await;
                    *ran = Some(value.clone());
                    Ok::<T, Marker>(value)
                }
            })
            .await;
        match loaded {
            Ok(value) => value,
            Err(e) => {
                self.degraded(&key, &e);
                match (ran, f) {
                    (Some(value), _) => value,
                    (None, Some(f)) => f().await,
                    (None, None) => lost_loader(&e),
                }
            }
        }
    }

    /// As [`remember`](Self::remember) for a fallible `f`: `Ok` is cached, `Err` never is.
    ///
    /// Every caller that gets an `Err` gets one `f` made for it, as the original `E`: the
    /// caller whose `f` failed gets that error, and callers that were waiting for its run
    /// then run their own `f` (uncached) rather than share an error they cannot own.
    ///
    /// # Errors
    ///
    /// `f`'s error. Cache failures are never errors here: they degrade as in
    /// [`remember`](Self::remember).
    ///
    /// # Panics
    ///
    /// As [`remember`](Self::remember).
    ///
    /// # Cancel safety
    ///
    /// As [`remember`](Self::remember).
    pub async fn cacheable<T, E, F, Fut>(self, f: F) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let Some(key) = self.usable_key() else {
            return f().await;
        };
        let mut f = Some(f);
        let mut ran: Option<T> = None;
        let mut failed: Option<E> = None;
        let loaded = self
            .load(&key, || {
                let (f, ran, failed) = (f.take(), &mut ran, &mut failed);
                async move {
                    let f = f.ok_or(Marker::Gone)?;
                    match f().await {
                        Ok(value) => {
                            *ran = Some(value.clone());
                            Ok(value)
                        }
                        Err(e) => {
                            *failed = Some(e);
                            Err(Marker::Failed)
                        }
                    }
                }
            })
            .await;
        let e = match loaded {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if let Some(failed) = failed {
            return Err(failed);
        }
        // A waiter of a run that failed gets no error of its own from it: it runs `f`.
        if !is_marker(&e, Marker::Failed) {
            self.degraded(&key, &e);
        }
        match (ran, f) {
            (Some(value), _) => Ok(value),
            (None, Some(f)) => f().await,
            (None, None) => lost_loader(&e),
        }
    }

    /// As [`remember`](Self::remember), caching the result only when `predicate` holds on it.
    ///
    /// A hit returns the cached value (it passed the predicate when it was stored). Callers
    /// coalesced with the one that ran `f` get its result whether or not it was cached.
    ///
    /// # Panics
    ///
    /// As [`remember`](Self::remember).
    ///
    /// # Cancel safety
    ///
    /// As [`remember`](Self::remember).
    pub async fn conditional<T, P, F, Fut>(self, predicate: P, f: F) -> T
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        P: FnOnce(&T) -> bool,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let Some(key) = self.usable_key() else {
            return f().await;
        };
        let mut f = Some(f);
        let mut ran: Option<T> = None;
        let loaded = self
            .load(&key, || {
                let (f, ran) = (f.take(), &mut ran);
                async move {
                    let Some(f) = f else {
                        return Err(Box::new(Marker::Gone) as BoxError);
                    };
                    let value = f().await;
                    if predicate(&value) {
                        *ran = Some(value.clone());
                        Ok(value)
                    } else {
                        // Not cached: the value reaches the coalesced callers inside the
                        // error every one of them receives.
                        Err(Box::new(Uncached(value)) as BoxError)
                    }
                }
            })
            .await;
        match loaded {
            Ok(value) => value,
            Err(e) => {
                if let Some(value) = find_uncached::<T>(&e) {
                    return value;
                }
                self.degraded(&key, &e);
                match (ran, f) {
                    (Some(value), _) => value,
                    (None, Some(f)) => f().await,
                    (None, None) => lost_loader(&e),
                }
            }
        }
    }

    // ----- internals -----------------------------------------------------------------------

    /// The key, or `None` (logged and counted) when the arguments did not serialize.
    fn usable_key(&self) -> Option<String> {
        if let KeySource::Unkeyable(e) = &self.key {
            tracing::warn!(
                service = %self.cache.inner.name,
                function = %self.function,
                error = %e,
                "memoized call's arguments did not serialize; running it uncached"
            );
            let _ = self.cache.local_error(Operation::Serialize, e.clone());
            return None;
        }
        self.cache_key()
    }

    /// Loads `key` as the memo's settings say.
    async fn load<T, F, Fut, E>(&self, key: &str, loader: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        if !self.tags.is_empty() {
            let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
            return self
                .cache
                .get_or_set_tagged(key, self.ttl, &tags, loader)
                .await;
        }
        if self.protect {
            return self
                .cache
                .get_or_set_arc(key, self.ttl, loader)
                .await
                .map(Arc::unwrap_or_clone);
        }
        self.load_unprotected(key, loader).await
    }

    /// Read, and on a miss run the loader and write: no single-flight, no lock.
    async fn load_unprotected<T, F, Fut, E>(&self, key: &str, loader: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        self.cache.check_key(key, Operation::Get)?;
        if let Some(hit) = self.cache.lookup_or_degrade::<T>(key).await {
            return Ok(Arc::unwrap_or_clone(hit));
        }
        let value = Arc::new(loader().await.map_err(|e| {
            Error::new(ErrorKind::LoaderFailed, self.cache.inner.name.clone())
                .with_operation(Operation::Load)
                .with_message("the loader failed")
                .with_source(e)
        })?);
        if let Err(e) = self.cache.store(key, &value, self.ttl, None).await {
            self.cache.degrade::<()>(Operation::Set, key, &e);
        }
        Ok(Arc::unwrap_or_clone(value))
    }

    #[cold]
    fn degraded(&self, key: &str, err: &Error) {
        tracing::warn!(
            service = %self.cache.inner.name,
            function = %self.function,
            key = %key_hash(key),
            kind = %err.kind(),
            error = %err,
            "memoization failed; running the function uncached"
        );
    }
}

/// What a memo's loader returns to `get_or_set` instead of an error of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// `f` failed; its error stays with the caller that ran it.
    Failed,
    /// The loader ran twice, which `get_or_set` never does.
    Gone,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failed => "the memoized function failed (its error went to its caller)",
            Self::Gone => "a memoized function's loader was called twice",
        })
    }
}

impl std::error::Error for Marker {}

/// A result that did not pass `conditional`'s predicate, carried to the coalesced callers.
struct Uncached<T>(T);

impl<T> fmt::Debug for Uncached<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Uncached(..)")
    }
}

impl<T> fmt::Display for Uncached<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the result did not pass the memo's predicate, so it was not cached")
    }
}

impl<T: 'static> std::error::Error for Uncached<T> {}

/// The errors in `err`'s source chain, looking through the `Arc` that [`Error`] keeps its
/// source in (an `Arc`'s `source` skips the error it holds).
fn sources(err: &Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let mut next = std::error::Error::source(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
    .flat_map(|e| {
        let inner = e
            .downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
            .map(|arc| &**arc as &(dyn std::error::Error + 'static));
        std::iter::once(e).chain(inner)
    })
}

fn is_marker(err: &Error, marker: Marker) -> bool {
    sources(err).any(|e| e.downcast_ref::<Marker>() == Some(&marker))
}

fn find_uncached<T: Clone + 'static>(err: &Error) -> Option<T> {
    sources(err).find_map(|e| e.downcast_ref::<Uncached<T>>().map(|u| u.0.clone()))
}

/// `get_or_set` took the loader, yet neither it finished nor the call was cancelled. It awaits
/// every loader it calls to its end, so this cannot happen; a panic says so plainly rather than
/// invent a result.
#[cold]
fn lost_loader(err: &Error) -> ! {
    panic!("lexicache: a memoized function was started but its result was lost ({err})");
}

/// The process-wide cache that `#[cached]` functions without `cache = ...` use.
static GLOBAL: OnceLock<CacheService> = OnceLock::new();

/// The process-wide cache that `#[cached]` functions without `cache = ...` use, once
/// [`set_global`] installed it. Without one, such functions run uncached.
#[must_use]
pub fn global() -> Option<&'static CacheService> {
    GLOBAL.get()
}

/// Installs the process-wide cache; returns `false` (and drops `cache`) if one was already
/// installed. Install it once at start-up, before the first memoized call.
///
/// ```
/// use lexicache_service::{memo, CacheService};
///
/// let installed = memo::set_global(CacheService::memory().name("global").build());
/// assert!(installed);
/// assert_eq!(memo::global().map(|c| c.name()), Some("global"));
/// assert!(!memo::set_global(CacheService::memory().build()));
/// ```
pub fn set_global(cache: CacheService) -> bool {
    GLOBAL.set(cache).is_ok()
}

/// What [`CacheService::invalidate_after`] removes: exact keys, glob patterns and tags, all
/// relative to the service's namespace.
///
/// ```
/// use lexicache_service::Invalidation;
///
/// let what = Invalidation::tags(["users"]).and_keys(["user:7"]).and_pattern("session:7:*");
/// assert_eq!(what.tags, ["users"]);
/// assert_eq!(what.keys, ["user:7"]);
/// assert_eq!(what.patterns, ["session:7:*"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Invalidation {
    /// Exact keys.
    pub keys: Vec<String>,
    /// Glob patterns ([`delete_pattern`](CacheService::delete_pattern); not on memcached).
    pub patterns: Vec<String>,
    /// Tags ([`invalidate_tags`](CacheService::invalidate_tags)).
    pub tags: Vec<String>,
}

impl Invalidation {
    /// Nothing to remove.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes these exact keys.
    pub fn keys<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        Self::new().and_keys(keys)
    }

    /// Removes the keys matching this glob pattern.
    pub fn pattern(pattern: impl Into<String>) -> Self {
        Self::new().and_pattern(pattern)
    }

    /// Invalidates the entries tagged with any of these tags.
    pub fn tags<I, T>(tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self::new().and_tags(tags)
    }

    /// Also removes these exact keys.
    pub fn and_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Also removes the keys matching this glob pattern.
    pub fn and_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// Also invalidates the entries tagged with any of these tags.
    pub fn and_tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Whether there is nothing to remove.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.patterns.is_empty() && self.tags.is_empty()
    }
}
