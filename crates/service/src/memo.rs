//! Memoization. SKELETON: the memo helper replaces the `todo!()` bodies; the public
//! signatures are the contract the `#[cached]` macro expands to. Keep them (add, don't break).

use std::future::Future;
use std::time::Duration;

use lexicache_core::Serializer;
use lexicache_serde::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CacheService;

/// A memoized call on a [`CacheService`], built by [`CacheService::memo`].
#[derive(Debug)]
#[must_use = "a memo does nothing until remember, cacheable or conditional is awaited"]
pub struct Memo<'c, S: Serializer = Json> {
    cache: &'c CacheService<S>,
    function: String,
}

impl<S: Serializer> CacheService<S> {
    /// Starts a memoized call of `function` (its path, e.g. `concat!(module_path!(), "::f")`).
    pub fn memo(&self, function: &str) -> Memo<'_, S> {
        Memo {
            cache: self,
            function: function.to_owned(),
        }
    }

    /// Runs `f`, then removes what `invalidation` names (keys, glob patterns, tags).
    pub async fn invalidate_after<T, F, Fut>(&self, invalidation: &Invalidation, f: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let _ = (invalidation, f);
        todo!()
    }
}

impl<'c, S: Serializer> Memo<'c, S> {
    /// A prefix before the derived key.
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        let _ = prefix.into();
        todo!()
    }

    /// The TTL of the cached result.
    pub fn ttl(self, ttl: Duration) -> Self {
        let _ = ttl;
        todo!()
    }

    /// Tags the cached result.
    pub fn tags<I, T>(self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let _ = tags.into_iter().map(Into::into).count();
        todo!()
    }

    /// Stampede protection (on by default).
    pub fn protect(self, on: bool) -> Self {
        let _ = on;
        todo!()
    }

    /// Derives the key from the function path and a hash of the serialized `args`.
    pub fn args<A: Serialize + ?Sized>(self, args: &A) -> Self {
        let _ = args;
        todo!()
    }

    /// Uses `key` (e.g. a rendered template) after the prefix instead of hashing arguments.
    pub fn key(self, key: impl Into<String>) -> Self {
        let _ = key.into();
        todo!()
    }

    /// Returns the cached result, or runs `f` and caches what it returns.
    pub async fn remember<T, F, Fut>(self, f: F) -> T
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let _ = f;
        let _ = &self.cache;
        let _ = &self.function;
        todo!()
    }

    /// As [`remember`](Self::remember) for a fallible `f`: `Ok` is cached, `Err` never is.
    pub async fn cacheable<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _ = f;
        todo!()
    }

    /// As [`remember`](Self::remember), caching the result only when `predicate` holds on it.
    pub async fn conditional<T, P, F, Fut>(self, predicate: P, f: F) -> T
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        P: FnOnce(&T) -> bool,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let _ = (predicate, f);
        todo!()
    }
}

/// What [`CacheService::invalidate_after`] removes.
#[derive(Debug, Clone, Default)]
pub struct Invalidation {
    /// Exact keys.
    pub keys: Vec<String>,
    /// Glob patterns.
    pub patterns: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// The process-wide cache that `#[cached]` functions without `cache = ...` use.
pub fn global() -> Option<&'static CacheService> {
    todo!()
}

/// Installs the process-wide cache; returns `false` if one was already installed.
pub fn set_global(cache: CacheService) -> bool {
    let _ = cache;
    todo!()
}
