//! Loads: [`get_or_set`](CacheService::get_or_set) and its forms, with stampede protection
//! (local single-flight and a distributed lock) and early refresh (XFetch,
//! stale-while-revalidate, TTL jitter).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use lexicache_core::{
    key_hash, BoxError, Error, ErrorKind, Operation, Outcome, Result, Serializer,
};
use lexicache_lock::protection::{LoadLock, Protected};
use lexicache_lock::refresh::{self, EarlyRefresh, FrameMeta};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::service::CacheService;
use crate::tags::TagSnapshot;

/// Per-call settings of [`CacheService::get_or_set_with`]: the TTL and early refresh.
///
/// Without any early-refresh setter the call uses the service's default
/// ([`CacheServiceBuilder::early_refresh`](crate::CacheServiceBuilder::early_refresh)); the
/// first setter replaces that default for this call with settings of its own, starting from
/// "all off".
///
/// ```
/// use std::time::Duration;
/// use lexicache_service::LoadOptions;
///
/// let options = LoadOptions::new()
///     .ttl(Duration::from_secs(60))
///     .xfetch(1.0)
///     .stale_while_revalidate(Duration::from_secs(30))
///     .ttl_jitter(0.1);
/// assert_eq!(options.ttl_value(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct LoadOptions {
    ttl: Option<Duration>,
    refresh: Option<EarlyRefresh>,
    tags: Vec<String>,
}

impl LoadOptions {
    /// No TTL (the backend's default) and the service's early refresh.
    pub fn new() -> Self {
        Self::default()
    }

    /// The logical TTL of loaded values. Early refresh needs one: without a TTL an entry never
    /// expires logically, so XFetch never fires and nothing is ever stale.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The TTL set, if any.
    #[must_use]
    pub fn ttl_value(&self) -> Option<Duration> {
        self.ttl
    }

    /// Uses `refresh` for this call instead of the service's default.
    pub fn early_refresh(mut self, refresh: EarlyRefresh) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Turns on XFetch with `beta` (see [`refresh`](lexicache_lock::refresh); 1.0 is the
    /// paper's choice).
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.refresh_mut().xfetch_beta = Some(beta);
        self
    }

    /// Turns on stale-while-revalidate: values are kept `grace` past their TTL, and a hit in
    /// that window is served at once while one caller refreshes in the background.
    pub fn stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.refresh_mut().stale_while_revalidate = Some(grace);
        self
    }

    /// Shortens each load's TTL by a random fraction of up to `fraction` (0.1 = up to 10%).
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.refresh_mut().ttl_jitter = fraction;
        self
    }

    /// Tags the loaded value with `tags` (added to any set before), as
    /// [`get_or_set_tagged`](CacheService::get_or_set_tagged) does: the tags' versions are
    /// read just before the loader runs, so a value loaded across an
    /// [invalidation](CacheService::invalidate_tags) is never served after it. The TTL is
    /// capped at the service's [tag TTL](crate::CacheServiceBuilder::tag_ttl).
    ///
    /// ```
    /// use lexicache_service::LoadOptions;
    ///
    /// let options = LoadOptions::new().tags(["users", "tenant:7"]);
    /// assert_eq!(options.tags_value(), ["users", "tenant:7"]);
    /// ```
    pub fn tags<I>(mut self, tags: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The tags set, in the order given.
    #[must_use]
    pub fn tags_value(&self) -> &[String] {
        &self.tags
    }

    fn refresh_mut(&mut self) -> &mut EarlyRefresh {
        self.refresh.get_or_insert_with(EarlyRefresh::new)
    }
}

/// How one call loads: its TTL, the parts of early refresh that apply to it, and its tags.
#[derive(Clone)]
struct Plan {
    ttl: Option<Duration>,
    beta: Option<f64>,
    grace: Option<Duration>,
    jitter: f64,
    /// Checked, sorted tags whose versions are read just before the loader runs.
    tags: Option<Arc<[String]>>,
}

impl Plan {
    /// `get_or_set` cannot refresh in the background (its loader may borrow), so it never
    /// applies stale-while-revalidate.
    fn new(
        ttl: Option<Duration>,
        refresh: &EarlyRefresh,
        background: bool,
        tags: Option<Arc<[String]>>,
    ) -> Self {
        Self {
            ttl,
            beta: refresh.beta(),
            grace: if background { refresh.grace() } else { None },
            jitter: refresh.ttl_jitter,
            tags: tags.filter(|t| !t.is_empty()),
        }
    }

    fn writes_frame(&self) -> bool {
        self.beta.is_some() || self.grace.is_some()
    }
}

/// What the first read of a load found.
enum Found<T> {
    Miss,
    /// A live value, with its frame's metadata if it has one.
    Fresh(Arc<T>, Option<FrameMeta>),
    /// A value past its logical expiry (kept for stale-while-revalidate).
    Stale(Arc<T>, FrameMeta),
}

impl<S: Serializer> CacheService<S> {
    /// The value under `key`, loading and storing it with `loader` on a miss; concurrent callers
    /// of one cold key share a single run of one loader, in this process and, where the stack
    /// has a [lock store](lexicache_core::CacheBackend::lock_store), across processes.
    ///
    /// A hit returns at once. On a miss the caller joins the load in flight for `key` (and type
    /// `T`) in this process or, if there is none, leads one. The leader reads the cache again
    /// (another load may just have stored the value), then, with distributed protection, takes
    /// the key's load lock ([`StampedeLock::resource`](lexicache_lock::protection::StampedeLock::resource): `lexicache-load:{key}`, under the
    /// service's namespace), reads once more, runs its loader, stores the value with `ttl`,
    /// releases the lock, and hands the value to every waiter. If another process holds the
    /// lock, the leader polls the cache every jittered
    /// [`retry_interval`](lexicache_lock::protection::Protection::retry_interval) until the
    /// value appears or the lock frees, for at most
    /// [`max_wait`](lexicache_lock::protection::Protection::max_wait); then the
    /// [`Fallback`](lexicache_lock::protection::Fallback) runs the loader anyway (the default)
    /// or fails with [`ErrorKind::LockTimeout`]. Only the leader's loader runs; waiters'
    /// loaders are dropped unused. See [`CacheServiceBuilder::protection`](crate::CacheServiceBuilder::protection).
    ///
    /// - A loader error becomes [`ErrorKind::LoaderFailed`] (with the loader's error as its
    ///   source), reaches every waiter as the same error, and is not cached: the next call runs
    ///   a loader again.
    /// - A panicking loader resumes its panic in the leader's call; waiters get
    ///   [`ErrorKind::LoaderPanicked`]. Nothing is cached; the lock is released.
    /// - Failing to store the value is logged and counted; the value is still returned.
    /// - A failing backend read degrades to running the loader (logged; backend errors are
    ///   counted by the metrics layer), and so does a failing lock store (logged, and counted as
    ///   an error of [`Operation::Lock`]): a cache outage becomes a slower path, not an outage.
    ///
    /// The service's default early refresh
    /// ([`CacheServiceBuilder::early_refresh`](crate::CacheServiceBuilder::early_refresh))
    /// applies, except stale-while-revalidate, which needs a `'static` loader: see
    /// [`get_or_set_with`](Self::get_or_set_with).
    ///
    /// A cold call reads the cache twice (before and after taking the lead; three times with
    /// the distributed lock), so metrics count as many misses for it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`], [`ErrorKind::LoaderFailed`], [`ErrorKind::LoaderPanicked`],
    /// or [`ErrorKind::LockTimeout`] with [`Fallback::Fail`](lexicache_lock::protection::Fallback::Fail).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping a waiter only stops it waiting. Dropping the leader drops its
    /// loader midway, stores nothing, releases its load lock (in a spawned task), and wakes the
    /// waiters, which start over: one of them leads and runs its own loader. No caller ever
    /// waits on a load that no one is running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
    /// use lexicache_service::CacheService;
    ///
    /// let cache = CacheService::memory().build();
    /// let v = cache.get_or_set("k", None, || async { Ok::<_, std::io::Error>(7u8) }).await?;
    /// assert_eq!(v, 7);
    /// // A hit: this loader does not run.
    /// let v = cache.get_or_set("k", None, || async { Ok::<_, std::io::Error>(9u8) }).await?;
    /// assert_eq!(v, 7);
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        self.get_or_set_arc(key, ttl, loader)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`get_or_set`](Self::get_or_set), returning the shared `Arc` every caller of one load
    /// receives (no clone of the value).
    ///
    /// # Errors
    ///
    /// As [`get_or_set`](Self::get_or_set).
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_set`](Self::get_or_set).
    pub async fn get_or_set_arc<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Arc<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        self.load_tagged(key, ttl, None, loader).await
    }

    /// [`get_or_set_arc`](Self::get_or_set_arc) storing its value behind a tag frame of
    /// checked `tags` (see [`get_or_set_tagged`](Self::get_or_set_tagged)).
    pub(crate) async fn load_tagged<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        tags: Option<Arc<[String]>>,
        loader: F,
    ) -> Result<Arc<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        self.check_key(key, Operation::Get)?;
        let plan = Plan::new(ttl, &self.inner.early_refresh, false, tags);
        match self.first_read::<T>(key).await {
            Found::Fresh(value, meta) => self.on_hit(key, plan, value, meta, loader).await,
            Found::Stale(..) | Found::Miss => self.load_cold(key, plan, loader).await,
        }
    }

    /// [`get_or_set`](Self::get_or_set) with per-call [`LoadOptions`]: the TTL and early
    /// refresh, including stale-while-revalidate, which is why the loader must be
    /// `Send + 'static` (one caller runs it in a spawned task).
    ///
    /// - **XFetch** (`.xfetch(beta)`): a load records its duration and the entry's logical
    ///   expiry in a frame; a hit refreshes early with XFetch's probability, running this
    ///   caller's loader in its own call and returning the new value. At most one caller per
    ///   process refreshes a key at a time, and with distributed protection it must win the
    ///   key's load lock without waiting; otherwise it serves the current value. A failed early
    ///   refresh is logged and serves the current value.
    /// - **Stale-while-revalidate** (`.stale_while_revalidate(grace)`): values are stored for
    ///   `ttl + grace`. A hit past `ttl` but within `grace` returns the stale value at once and
    ///   starts one background refresh (one per process, and one across processes with the
    ///   lock); past the grace it is a miss. Plain [`get`](Self::get) treats a stale value as
    ///   the miss it is.
    /// - **TTL jitter** (`.ttl_jitter(f)`): each load's TTL is shortened by up to `f` of itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
    /// use std::time::Duration;
    /// use lexicache_service::{CacheService, LoadOptions};
    ///
    /// let cache = CacheService::memory().build();
    /// let options = LoadOptions::new()
    ///     .ttl(Duration::from_secs(60))
    ///     .xfetch(1.0)
    ///     .stale_while_revalidate(Duration::from_secs(10));
    /// let report = cache
    ///     .get_or_set_with("report", options, || async { Ok::<_, std::io::Error>(42u32) })
    ///     .await?;
    /// assert_eq!(report, 42);
    /// assert_eq!(cache.get::<u32>("report").await, Some(42));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_set`](Self::get_or_set).
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_set`](Self::get_or_set). A background refresh already started runs to its
    /// end whatever happens to the call that started it.
    pub async fn get_or_set_with<T, F, Fut, E>(
        &self,
        key: &str,
        options: LoadOptions,
        loader: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.get_or_set_with_arc(key, options, loader)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`get_or_set_with`](Self::get_or_set_with), returning the shared `Arc`.
    ///
    /// # Errors
    ///
    /// As [`get_or_set`](Self::get_or_set).
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_set_with`](Self::get_or_set_with).
    pub async fn get_or_set_with_arc<T, F, Fut, E>(
        &self,
        key: &str,
        options: LoadOptions,
        loader: F,
    ) -> Result<Arc<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.check_key(key, Operation::Get)?;
        let refresh = options
            .refresh
            .as_ref()
            .unwrap_or(&self.inner.early_refresh);
        let tags = if options.tags.is_empty() {
            None
        } else {
            let tags: Vec<&str> = options.tags.iter().map(String::as_str).collect();
            Some(self.check_tags(&tags, Operation::Get)?.into())
        };
        let plan = Plan::new(options.ttl, refresh, true, tags);
        match self.first_read::<T>(key).await {
            Found::Fresh(value, meta) => self.on_hit(key, plan, value, meta, loader).await,
            Found::Stale(value, meta) if self.within_grace(&plan, &meta) => {
                self.revalidate_in_background(key, plan, loader);
                Ok(value)
            }
            Found::Stale(..) | Found::Miss => self.load_cold(key, plan, loader).await,
        }
    }

    // ----- internals -----------------------------------------------------------------------

    async fn first_read<T>(&self, key: &str) -> Found<T>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        match self.lookup_framed::<T>(key).await {
            Ok(None) => Found::Miss,
            Ok(Some((value, Some(meta)))) if meta.is_expired(self.inner.clock.now_ms()) => {
                Found::Stale(value, meta)
            }
            Ok(Some((value, meta))) => Found::Fresh(value, meta),
            Err(e) => {
                self.degrade::<()>(Operation::Get, key, &e);
                Found::Miss
            }
        }
    }

    fn within_grace(&self, plan: &Plan, meta: &FrameMeta) -> bool {
        plan.grace.is_some_and(|grace| {
            let grace = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
            self.inner.clock.now_ms() < meta.expires_at_ms.saturating_add(grace)
        })
    }

    /// A hit: returns it, unless XFetch says this caller refreshes early.
    async fn on_hit<T, F, Fut, E>(
        &self,
        key: &str,
        plan: Plan,
        value: Arc<T>,
        meta: Option<FrameMeta>,
        loader: F,
    ) -> Result<Arc<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        let (Some(beta), Some(meta)) = (plan.beta, meta) else {
            return Ok(value);
        };
        if !refresh::xfetch_due(
            &meta,
            beta,
            self.inner.clock.now_ms(),
            refresh::unit_random(),
        ) {
            return Ok(value);
        }
        let Some(_slot) = self.claim_refresh(key) else {
            return Ok(value);
        };
        let Some(lock) = self.try_refresh_lock(key).await else {
            return Ok(value);
        };
        tracing::debug!(service = %self.inner.name, key = %key_hash(key), "XFetch: refreshing early");
        let loaded = self.load_and_store(key, plan, loader).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        match loaded {
            Ok(fresh) => Ok(fresh),
            Err(e) => {
                self.degrade::<()>(Operation::Load, key, &e);
                Ok(value)
            }
        }
    }

    /// A miss: the protected load.
    async fn load_cold<T, F, Fut, E>(&self, key: &str, plan: Plan, loader: F) -> Result<Arc<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        if !self.inner.protection.enabled {
            return self.load_and_store(key, plan, loader).await;
        }
        let lead = || async move {
            if let Some(hit) = self.lookup_or_degrade::<T>(key).await {
                return Ok(hit);
            }
            let Some(lock) = &self.inner.stampede else {
                return self.load_and_store(key, plan, loader).await;
            };
            let outcome = lock
                .run(
                    key,
                    || self.lookup_or_degrade::<T>(key),
                    || self.load_and_store(key, plan, loader),
                )
                .await?;
            if let Protected::Degraded(..) = &outcome {
                self.count_lock_error();
            }
            Ok(outcome.into_value())
        };
        self.inner.flights.run(key, lead).await
    }

    /// Runs the loader, timing it, and stores its value as `plan` says.
    async fn load_and_store<T, F, Fut, E>(&self, key: &str, plan: Plan, loader: F) -> Result<Arc<T>>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        // Tag versions are read before the loader runs: an invalidation completing after this
        // read makes the stored value a miss (see `tags`).
        let snapshot = match &plan.tags {
            Some(tags) => Some(self.snapshot_of(tags).await),
            None => None,
        };
        let started = Instant::now();
        let value = loader().await.map_err(|e| {
            Error::new(ErrorKind::LoaderFailed, self.inner.name.clone())
                .with_operation(Operation::Load)
                .with_message("the loader failed")
                .with_source(e)
        })?;
        let delta = started.elapsed();
        let value = Arc::new(value);
        let stored = match snapshot {
            // Without its tags' versions the value cannot be stored safely; it is still served.
            Some(Err(e)) => Err(e),
            Some(Ok(snapshot)) => {
                self.store_loaded(key, &value, &plan, delta, Some(&snapshot))
                    .await
            }
            None => self.store_loaded(key, &value, &plan, delta, None).await,
        };
        if let Err(e) = stored {
            self.degrade::<()>(Operation::Set, key, &e);
        }
        Ok(value)
    }

    async fn store_loaded<T>(
        &self,
        key: &str,
        value: &Arc<T>,
        plan: &Plan,
        delta: Duration,
        tags: Option<&TagSnapshot>,
    ) -> Result<()>
    where
        T: Serialize + Send + Sync + 'static,
    {
        let ttl = plan
            .ttl
            .map(|ttl| refresh::jittered_ttl(ttl, plan.jitter, 1.0 - refresh::unit_random()));
        if !plan.writes_frame() {
            return self.store_tagged(key, value, ttl, None, tags).await;
        }
        let meta = FrameMeta {
            delta,
            expires_at_ms: ttl.map_or(0, |ttl| self.inner.clock.after_ms(ttl)),
        };
        let physical = ttl.map(|ttl| ttl.saturating_add(plan.grace.unwrap_or_default()));
        self.store_tagged(key, value, physical, Some(&meta), tags)
            .await
    }

    /// Starts one background refresh of a stale `key`, unless one runs in this process.
    fn revalidate_in_background<T, F, Fut, E>(&self, key: &str, plan: Plan, loader: F)
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                service = %self.inner.name,
                key = %key_hash(key),
                "no tokio runtime to refresh a stale value in; serving it unrefreshed"
            );
            return;
        };
        let Some(slot) = self.claim_refresh(key).map(|slot| slot.into_owned(self)) else {
            return;
        };
        let this = self.clone();
        let key = key.to_owned();
        runtime.spawn(async move {
            // Dropped with the task, however it ends, which frees the key for the next refresh.
            let _slot = slot;
            let Some(lock) = this.try_refresh_lock(&key).await else {
                return;
            };
            // Another process may have refreshed it while this one took the lock.
            if this.lookup_or_degrade::<T>(&key).await.is_none() {
                tracing::debug!(service = %this.inner.name, key = %key_hash(&key), "refreshing a stale value");
                if let Err(e) = this.load_and_store(&key, plan, loader).await {
                    this.degrade::<()>(Operation::Load, &key, &e);
                }
            }
            if let Some(lock) = lock {
                lock.release().await;
            }
        });
    }

    /// Claims the right to refresh `key` early in this process; `None` if another caller has it.
    fn claim_refresh(&self, key: &str) -> Option<RefreshSlot<'_, S>> {
        match self.inner.refreshing.entry(key.to_owned()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(slot) => {
                slot.insert(());
                Some(RefreshSlot {
                    service: self,
                    key: Some(key.to_owned()),
                })
            }
        }
    }

    /// The lock an early refresh needs: `Some(None)` without distributed protection (or with a
    /// failing lock store, logged and counted), `Some(Some(lock))` when won, `None` when
    /// another owner is loading the key.
    async fn try_refresh_lock(&self, key: &str) -> Option<Option<LoadLock>> {
        let Some(stampede) = &self.inner.stampede else {
            return Some(None);
        };
        match stampede.try_acquire(key).await {
            Ok(Some(lock)) => Some(Some(lock)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(
                    service = %self.inner.name,
                    key = %key_hash(key),
                    kind = %e.kind(),
                    error = %e,
                    "load lock unavailable; refreshing without it"
                );
                self.count_lock_error();
                Some(None)
            }
        }
    }

    fn count_lock_error(&self) {
        self.inner.metrics.count(Operation::Lock, Outcome::Error, 1);
    }
}

/// A claim on refreshing one key early; dropping it frees the key.
struct RefreshSlot<'a, S: Serializer> {
    service: &'a CacheService<S>,
    /// `None` once handed to an [`OwnedRefreshSlot`].
    key: Option<String>,
}

impl<S: Serializer> RefreshSlot<'_, S> {
    /// The same claim, owning a handle on the service, for a spawned task.
    fn into_owned(mut self, service: &CacheService<S>) -> OwnedRefreshSlot<S> {
        OwnedRefreshSlot {
            service: service.clone(),
            key: self.key.take().unwrap_or_default(),
        }
    }
}

impl<S: Serializer> Drop for RefreshSlot<'_, S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.service.inner.refreshing.remove(&key);
        }
    }
}

/// A [`RefreshSlot`] that a spawned task owns.
struct OwnedRefreshSlot<S: Serializer> {
    service: CacheService<S>,
    key: String,
}

impl<S: Serializer> Drop for OwnedRefreshSlot<S> {
    fn drop(&mut self) {
        self.service.inner.refreshing.remove(&self.key);
    }
}
