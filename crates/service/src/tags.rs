//! Tags: per-tag version counters checked on read. SKELETON: the tags helper replaces the
//! `todo!()` bodies; the signatures are the contract other helpers code against.

use std::future::Future;
use std::time::Duration;

use lexicache_core::{BoxError, Result, Serializer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CacheService;

impl<S: Serializer> CacheService<S> {
    /// Writes `value` under `key`, tagged with `tags`. `false` on a failure (logged, counted).
    pub async fn set_with_tags<T>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> bool
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let _ = (key, value, ttl, tags);
        todo!()
    }

    /// Writes `value` under `key`, tagged with `tags`.
    ///
    /// # Errors
    ///
    /// As `try_set`, plus tag errors.
    pub async fn try_set_with_tags<T>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let _ = (key, value, ttl, tags);
        todo!()
    }

    /// Invalidates every entry tagged with any of `tags`, in every process sharing the backend.
    ///
    /// # Errors
    ///
    /// The backend's error.
    pub async fn invalidate_tags(&self, tags: &[&str]) -> Result<()> {
        let _ = tags;
        todo!()
    }

    /// `get_or_set` whose stored value is tagged with `tags`; the tag versions are read before
    /// the loader runs, so a value loaded across an invalidation is never served after it.
    ///
    /// # Errors
    ///
    /// As `get_or_set`.
    pub async fn get_or_set_tagged<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        tags: &[&str],
        loader: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        let _ = (key, ttl, tags, loader);
        todo!()
    }
}
