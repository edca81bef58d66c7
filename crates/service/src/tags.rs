//! Tags: per-tag version tokens, checked on read.
//!
//! Each tag has a *version key* in the service's namespace, [`TAG_KEY_PREFIX`]` + tag` (so
//! `__lexicache:tag:users`), holding a random 16-byte token. A tagged entry is stored behind a
//! small frame that records, for each of its tags, the token the tag had when the entry's value
//! was about to be computed (a [`TagSnapshot`]). A read of a tagged entry fetches the current
//! tokens with one `get_many` and serves the entry only if every tag still holds the entry's
//! token; [`invalidate_tags`](CacheService::invalidate_tags) overwrites each tag's token with a
//! fresh random one, so every entry tagged before it becomes a miss, in every process sharing
//! the backend, at once.
//!
//! The design needs nothing but `get`, `get_many`, `set_many` and
//! [`set_if_absent`](lexicache_core::CacheBackend::set_if_absent), so it works on every backend,
//! memcached included, which cannot list keys. There is no per-tag index of keys: nothing grows
//! with the number of entries, and nothing is left behind by entries that expire.
//!
//! # Cost
//!
//! - An untagged entry costs nothing extra: a read compares two bytes to know it has no frame.
//! - A tagged read costs one extra round trip (one `get_many` of its tags' version keys; a
//!   batch read fetches the version keys of all its tagged entries in one more `get_many`).
//! - A tagged write first reads its tags' versions (one `get_many`), creating missing ones with
//!   `set_if_absent`; the frame adds `4 + Σ (1 + tag length + 16)` bytes to the entry.
//! - An invalidation is one `set_many`, whatever the number of entries tagged.
//!
//! # Bounds
//!
//! - A version key always carries a TTL: [`tag_ttl`](crate::CacheServiceBuilder::tag_ttl),
//!   [`DEFAULT_TAG_TTL`] (7 days) by default. Tagged entries' TTLs are capped at it (an entry
//!   written with `ttl: None` gets it), so nothing tagged outlives a week by default.
//! - A version key that is missing (expired, evicted, never created) makes every entry tagged
//!   with it a miss; the next write creates a new random token, which no old entry holds. So a
//!   tag's entries are invalidated at the latest when its version key expires, once per
//!   `tag_ttl`.
//! - At most [`MAX_TAGS`] tags per entry and [`MAX_TAG_LEN`] bytes per tag; a tag must be
//!   non-empty and its version key must pass the service's key rules. Anything else is an
//!   [`ErrorKind::KeyInvalid`] error naming the tag, and nothing is written.
//! - A stale entry is not deleted on read (a delete could race a fresh write of the same key);
//!   its TTL, at most `tag_ttl`, removes it.
//!
//! # A write racing an invalidation
//!
//! Versions are read *before* the value is computed: [`tag_snapshot`](CacheService::tag_snapshot)
//! then [`try_set_with_snapshot`](CacheService::try_set_with_snapshot), or
//! [`get_or_set_tagged`](CacheService::get_or_set_tagged) and
//! [`LoadOptions::tags`](crate::LoadOptions::tags), which take the snapshot just before the
//! loader runs. The rule: **an invalidation that completes after the snapshot makes the entry a
//! miss, whenever the write lands**, since the entry then carries a token the tag no longer
//! holds. A value computed before an invalidation completed was computed after a snapshot taken
//! before it, so it is never served after it. (An invalidation that overlaps the snapshot may or
//! may not be seen by it; the value is then computed after the invalidation began.)
//!
//! # The frame
//!
//! In front of the rest of the entry (an early-refresh frame, if any, then the serializer's
//! bytes); integers are single bytes:
//!
//! | size | field |
//! |---|---|
//! | 2 | magic `0xC1 0x54` (`0xC1` never starts UTF-8 text; the early-refresh frame is `0xC1 0x46`, the serde envelope `0xC0 0x4C`) |
//! | 1 | version, `1` |
//! | 1 | number of tags, 1 to [`MAX_TAGS`] |
//! | per tag: 1 | length of the tag in bytes, 1 to [`MAX_TAG_LEN`] |
//! | per tag: n | the tag, UTF-8 |
//! | per tag: 16 | the tag's token when the value was computed |
//!
//! A value that starts with the magic but is truncated or has another version is an
//! [`ErrorKind::Serialization`] error, never a guess.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use lexicache_service::CacheService;
//!
//! let cache = CacheService::memory().build();
//! cache.try_set_with_tags("user:1", &"alice", None, &["users"]).await?;
//! cache.try_set_with_tags("post:9", &"hello", None, &["posts", "users"]).await?;
//! cache.try_set("config", &1u8, None).await?;
//!
//! cache.invalidate_tags(&["users"]).await?;
//! assert_eq!(cache.get::<String>("user:1").await, None);
//! assert_eq!(cache.get::<String>("post:9").await, None);
//! assert_eq!(cache.get::<u8>("config").await, Some(1)); // untagged: untouched
//!
//! // A value computed from data read before an invalidation is never served after it.
//! let snapshot = cache.tag_snapshot(&["posts"]).await?;
//! let computed = "stale";
//! cache.invalidate_tags(&["posts"]).await?;
//! cache.try_set_with_snapshot("post:9", &computed, None, &snapshot).await?;
//! assert_eq!(cache.get::<String>("post:9").await, None);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use lexicache_core::{BoxError, Bytes, Error, ErrorKind, Object, Operation, Result, Serializer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CacheService;

/// The reserved key prefix of tag version keys: the version of tag `t` is stored under
/// `__lexicache:tag:t`, in the service's namespace. Do not write keys starting with it.
pub const TAG_KEY_PREFIX: &str = "__lexicache:tag:";

/// The most tags one entry may carry.
pub const MAX_TAGS: usize = 64;

/// The longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 200;

/// The default TTL of tag version keys, and the cap on tagged entries' TTLs: 7 days.
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The first two bytes of a tag frame.
pub const TAG_FRAME_MAGIC: [u8; 2] = [0xC1, 0x54];

/// The tag frame version written and read.
pub const TAG_FRAME_VERSION: u8 = 1;

/// The length of a version token in bytes.
pub const TOKEN_LEN: usize = 16;

/// A tag's version: a random token, replaced on every invalidation.
pub(crate) type Token = [u8; TOKEN_LEN];

/// The version key of `tag`: [`TAG_KEY_PREFIX`]` + tag`, relative to the service's namespace.
///
/// ```
/// assert_eq!(lexicache_service::tags::version_key("users"), "__lexicache:tag:users");
/// ```
#[must_use]
pub fn version_key(tag: &str) -> String {
    let mut key = String::with_capacity(TAG_KEY_PREFIX.len() + tag.len());
    key.push_str(TAG_KEY_PREFIX);
    key.push_str(tag);
    key
}

/// The versions of some tags, read before a value is computed; see the
/// [module documentation](self) for the race it settles.
///
/// Write with it through [`try_set_with_snapshot`](CacheService::try_set_with_snapshot): the
/// entry is live until any of these tags is invalidated (or its version key expires), even if
/// that happened between the snapshot and the write.
#[derive(Clone, PartialEq, Eq)]
pub struct TagSnapshot {
    /// `(tag, token)`, sorted by tag, without duplicates.
    pub(crate) versions: Arc<[(String, Token)]>,
}

impl TagSnapshot {
    /// The tags, sorted, without duplicates.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().map(|(tag, _)| tag.as_str())
    }

    /// How many tags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether there are no tags (a write with it is untagged).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The frame's length in bytes.
    pub(crate) fn frame_len(&self) -> usize {
        frame_len(self.versions.iter().map(|(t, _)| t.as_str()))
    }

    /// The frame holding these versions, in front of nothing.
    pub(crate) fn frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.frame_len());
        out.extend_from_slice(&TAG_FRAME_MAGIC);
        out.push(TAG_FRAME_VERSION);
        // Bounded by `MAX_TAGS` and `MAX_TAG_LEN` when the snapshot was taken.
        out.push(u8::try_from(self.versions.len()).unwrap_or(u8::MAX));
        for (tag, token) in self.versions.iter() {
            out.push(u8::try_from(tag.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(token);
        }
        out
    }
}

impl fmt::Debug for TagSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Short<'a>(&'a Token);
        impl fmt::Debug for Short<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
                f.write_str("…")
            }
        }
        f.debug_map()
            .entries(self.versions.iter().map(|(t, v)| (t, Short(v))))
            .finish()
    }
}

/// The length of a frame for `tags`.
fn frame_len<'a>(tags: impl Iterator<Item = &'a str>) -> usize {
    4 + tags.map(|t| 1 + t.len() + TOKEN_LEN).sum::<usize>()
}

/// Whether `bytes` start with the tag frame magic (two byte comparisons).
#[inline]
pub(crate) fn is_framed(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[..2] == TAG_FRAME_MAGIC
}

/// A parsed frame: the entry's `(tag, token)` pairs, borrowed from the entry's bytes.
pub(crate) struct TagFrame<'a> {
    pub(crate) versions: Vec<(&'a str, &'a [u8])>,
}

/// Splits a tag-framed value into its frame and the rest; `Ok(None)` without a frame.
pub(crate) fn unframe<'a>(
    backend: &str,
    bytes: &'a [u8],
) -> Result<Option<(TagFrame<'a>, &'a [u8])>> {
    if !is_framed(bytes) {
        return Ok(None);
    }
    let bad = |why: &'static str| {
        Error::new(ErrorKind::Serialization, backend.to_owned())
            .with_operation(Operation::Deserialize)
            .with_message(why)
    };
    let [_, _, version, count, rest @ ..] = bytes else {
        return Err(bad("truncated tag frame"));
    };
    if *version != TAG_FRAME_VERSION {
        return Err(bad("unknown tag frame version"));
    }
    let mut rest = rest;
    let mut versions = Vec::with_capacity(usize::from(*count));
    for _ in 0..*count {
        let Some((&len, tail)) = rest.split_first() else {
            return Err(bad("truncated tag frame"));
        };
        let len = usize::from(len);
        if tail.len() < len + TOKEN_LEN {
            return Err(bad("truncated tag frame"));
        }
        let (tag, tail) = tail.split_at(len);
        let (token, tail) = tail.split_at(TOKEN_LEN);
        let tag =
            std::str::from_utf8(tag).map_err(|_| bad("a tag in the tag frame is not UTF-8"))?;
        versions.push((tag, token));
        rest = tail;
    }
    Ok(Some((TagFrame { versions }, rest)))
}

/// A fresh random token.
fn new_token(backend: &str) -> Result<Token> {
    let mut token = [0u8; TOKEN_LEN];
    getrandom::fill(&mut token).map_err(|e| {
        Error::new(ErrorKind::Backend, backend.to_owned())
            .with_message(format!("no randomness for a tag version: {e}"))
    })?;
    Ok(token)
}

impl<S: Serializer> CacheService<S> {
    /// Writes `value` under `key`, tagged with `tags`. Returns whether it was written; `false`
    /// on a failure (logged and counted), including a bad tag.
    ///
    /// See [`try_set_with_tags`](Self::try_set_with_tags).
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
        match self.try_set_with_tags(key, value, ttl, tags).await {
            Ok(()) => true,
            Err(e) => self.degrade(Operation::Set, key, &e),
        }
    }

    /// Writes `value` under `key`, tagged with `tags`: after
    /// [`invalidate_tags`](Self::invalidate_tags) of any of them, the entry is a miss in every
    /// process sharing the backend.
    ///
    /// The tags' versions are read (and missing ones created) just before the write, so a
    /// value computed earlier may have been computed before an invalidation that this snapshot
    /// does not see. When the value comes from data read earlier, take a
    /// [`tag_snapshot`](Self::tag_snapshot) before reading it and write with
    /// [`try_set_with_snapshot`](Self::try_set_with_snapshot).
    ///
    /// The entry's TTL is capped at the service's [tag TTL](crate::CacheServiceBuilder::tag_ttl),
    /// which `ttl: None` means here. With no tags this is [`try_set`](Self::try_set).
    ///
    /// # Errors
    ///
    /// As [`try_set`](Self::try_set), plus [`ErrorKind::KeyInvalid`] for an empty, overlong or
    /// invalid tag or more than [`MAX_TAGS`] tags. Every check runs before anything is written.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped midway, the entry is written whole or not at all (version keys may
    /// have been created, which is harmless).
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
        self.check_key(key, Operation::Set)?;
        let tags = self.check_tags(tags, Operation::Set)?;
        if tags.is_empty() {
            return self.try_set(key, value, ttl).await;
        }
        let payload = self.encode_payload(key, value, Operation::Set)?;
        // Checked before the snapshot, so an oversized value creates no version key either.
        self.check_size(
            frame_len(tags.iter().map(String::as_str)) + payload.len(),
            Operation::Set,
        )?;
        let snapshot = self.snapshot_of(&tags).await?;
        let entry = self.assemble(payload, None, Some(&snapshot), Operation::Set, || {
            Arc::new(value.clone()) as Object
        })?;
        self.inner
            .backend
            .set_entry(key, entry, self.tagged_ttl(ttl))
            .await
    }

    /// Writes every item with one TTL, all tagged with `tags`: one snapshot of the tags'
    /// versions for the whole batch, then one batch write (item by item on in-process stacks).
    /// Every key, tag and value is checked before anything is written, so bad input writes
    /// nothing. With no tags this is [`try_set_many`](Self::try_set_many).
    ///
    /// # Errors
    ///
    /// As [`try_set_with_tags`](Self::try_set_with_tags), for the first item that fails.
    ///
    /// # Cancel safety
    ///
    /// As [`try_set_many`](Self::try_set_many).
    pub async fn try_set_many_with_tags<T>(
        &self,
        items: &[(&str, T)],
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let tags = self.check_tags(tags, Operation::SetMany)?;
        if tags.is_empty() {
            return self.try_set_many(items, ttl).await;
        }
        let frame = frame_len(tags.iter().map(String::as_str));
        let mut payloads = Vec::with_capacity(items.len());
        for (key, value) in items {
            self.check_key(key, Operation::SetMany)?;
            let payload = self.encode_payload(key, value, Operation::SetMany)?;
            self.check_size(frame + payload.len(), Operation::SetMany)?;
            payloads.push(payload);
        }
        if items.is_empty() {
            return Ok(());
        }
        let snapshot = self.snapshot_of(&tags).await?;
        let ttl = self.tagged_ttl(ttl);
        let mut entries = Vec::with_capacity(items.len());
        for ((key, value), payload) in items.iter().zip(payloads) {
            let entry =
                self.assemble(payload, None, Some(&snapshot), Operation::SetMany, || {
                    Arc::new(value.clone()) as Object
                })?;
            entries.push((*key, entry));
        }
        if self.inner.in_process {
            for (key, entry) in entries {
                self.inner.backend.set_entry(key, entry, ttl).await?;
            }
            return Ok(());
        }
        let raw: Vec<(&str, Bytes)> = entries
            .into_iter()
            .map(|(k, e)| (k, e.into_bytes()))
            .collect();
        self.inner.backend.set_many(&raw, ttl).await
    }

    /// Reads (and, where missing, creates) the versions of `tags`, to tag a value computed
    /// after this call with [`try_set_with_snapshot`](Self::try_set_with_snapshot).
    ///
    /// Take it *before* reading the data the value is computed from: any invalidation that
    /// completes after this call returns makes the entry written with it a miss.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`] for a bad tag or more than [`MAX_TAGS`] tags, or the backend's
    /// error.
    pub async fn tag_snapshot(&self, tags: &[&str]) -> Result<TagSnapshot> {
        let tags = self.check_tags(tags, Operation::Get)?;
        self.snapshot_of(&tags).await
    }

    /// Writes `value` under `key`, tagged with the versions in `snapshot`: a miss from the
    /// moment any of its tags is invalidated after the snapshot was taken, even if that happened
    /// before this write. Returns whether it was written; `false` on a failure (logged and
    /// counted).
    pub async fn set_with_snapshot<T>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        snapshot: &TagSnapshot,
    ) -> bool
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        match self.try_set_with_snapshot(key, value, ttl, snapshot).await {
            Ok(()) => true,
            Err(e) => self.degrade(Operation::Set, key, &e),
        }
    }

    /// Writes `value` under `key`, tagged with the versions in `snapshot` (see
    /// [`tag_snapshot`](Self::tag_snapshot)). The TTL is capped as in
    /// [`try_set_with_tags`](Self::try_set_with_tags).
    ///
    /// # Errors
    ///
    /// As [`try_set`](Self::try_set).
    pub async fn try_set_with_snapshot<T>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        snapshot: &TagSnapshot,
    ) -> Result<()>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        if snapshot.is_empty() {
            return self.try_set(key, value, ttl).await;
        }
        self.check_key(key, Operation::Set)?;
        let payload = self.encode_payload(key, value, Operation::Set)?;
        let entry = self.assemble(payload, None, Some(snapshot), Operation::Set, || {
            Arc::new(value.clone()) as Object
        })?;
        self.inner
            .backend
            .set_entry(key, entry, self.tagged_ttl(ttl))
            .await
    }

    /// Invalidates every entry tagged with any of `tags`, in every process sharing the backend:
    /// each tag's version key gets a fresh random token (one `set_many`, with the
    /// [tag TTL](crate::CacheServiceBuilder::tag_ttl)). Concurrent invalidations are fine: every
    /// new token differs from every old one.
    ///
    /// When this returns `Ok`, no read anywhere serves an entry tagged before it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`] for a bad tag, or the backend's error (some tags may then be
    /// invalidated and others not: retry).
    pub async fn invalidate_tags(&self, tags: &[&str]) -> Result<()> {
        let tags = self.check_tags(tags, Operation::Set)?;
        if tags.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = tags.iter().map(|t| version_key(t)).collect();
        let mut items = Vec::with_capacity(keys.len());
        for key in &keys {
            let token =
                new_token(&self.inner.name).map_err(|e| self.local_error(Operation::Set, e))?;
            items.push((key.as_str(), Bytes::copy_from_slice(&token)));
        }
        self.inner
            .backend
            .set_many(&items, Some(self.inner.tag_ttl))
            .await
    }

    /// [`get_or_set`](Self::get_or_set) whose stored value is tagged with `tags`. The tags'
    /// versions are read just before the loader runs (by the one caller that runs it), so a
    /// value loaded across an invalidation is never served after it: it is stored, but reads
    /// see a miss and the next call loads again.
    ///
    /// Stampede protection is the same as [`get_or_set`](Self::get_or_set)'s (single-flight,
    /// and the distributed lock where there is a lock store). The TTL is capped as in
    /// [`try_set_with_tags`](Self::try_set_with_tags). If the versions cannot be read, the
    /// loader still runs and its value is returned but not stored (logged and counted).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
    /// use lexicache_service::CacheService;
    ///
    /// let cache = CacheService::memory().build();
    /// let load = |n: u32| move || async move { Ok::<_, std::io::Error>(n) };
    /// assert_eq!(cache.get_or_set_tagged("count", None, &["stats"], load(1)).await?, 1);
    /// assert_eq!(cache.get_or_set_tagged("count", None, &["stats"], load(2)).await?, 1);
    /// cache.invalidate_tags(&["stats"]).await?;
    /// assert_eq!(cache.get_or_set_tagged("count", None, &["stats"], load(3)).await?, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_or_set`](Self::get_or_set), plus [`ErrorKind::KeyInvalid`] for a bad tag.
    ///
    /// # Cancel safety
    ///
    /// As [`get_or_set`](Self::get_or_set).
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
        let tags = self.check_tags(tags, Operation::Get)?;
        self.load_tagged(key, ttl, Some(tags.into()), loader)
            .await
            .map(Arc::unwrap_or_clone)
    }

    // ----- internals -----------------------------------------------------------------------

    /// The TTL of a tagged entry: `ttl`, capped at the tag TTL (which `None` means).
    pub(crate) fn tagged_ttl(&self, ttl: Option<Duration>) -> Option<Duration> {
        let cap = self.inner.tag_ttl;
        Some(ttl.map_or(cap, |t| t.min(cap)))
    }

    /// Checks `tags` and returns them sorted, without duplicates.
    pub(crate) fn check_tags(&self, tags: &[&str], op: Operation) -> Result<Vec<String>> {
        let invalid = |why: String| {
            self.local_error(
                op,
                Error::key_invalid(self.inner.name.clone(), why).with_operation(op),
            )
        };
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for tag in tags {
            if tag.is_empty() {
                return Err(invalid("a tag is empty".to_owned()));
            }
            if tag.len() > MAX_TAG_LEN {
                return Err(invalid(format!(
                    "tag {tag:?} is {} bytes, over the maximum of {MAX_TAG_LEN} bytes",
                    tag.len()
                )));
            }
            if let Err(e) = self.check_key(&version_key(tag), op) {
                let why = format!("tag {tag:?}: its version key is invalid: {}", e.message());
                return Err(e.with_message(why));
            }
            out.push((*tag).to_owned());
        }
        out.sort_unstable();
        out.dedup();
        if out.len() > MAX_TAGS {
            return Err(invalid(format!(
                "{} tags, over the maximum of {MAX_TAGS} per entry",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Reads the versions of checked, sorted `tags`, creating missing ones.
    pub(crate) async fn snapshot_of(&self, tags: &[String]) -> Result<TagSnapshot> {
        let keys: Vec<String> = tags.iter().map(|t| version_key(t)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut found = self.inner.backend.get_many(&refs).await?;
        // A few rounds at most: a version created by someone else is read back, and only a
        // version that expires in between needs another round.
        for _ in 0..3 {
            let missing: Vec<usize> = (0..found.len())
                .filter(|&i| found[i].as_ref().is_none_or(|v| v.len() != TOKEN_LEN))
                .collect();
            if missing.is_empty() {
                break;
            }
            // `set_if_absent`, never `set`: once written, a version may only be replaced by an
            // invalidation. Suppose this writer found the key missing and an invalidation then
            // wrote its token before our creation landed. A plain `set` would replace the
            // invalidation's token with ours, and we would go on to compute the value and
            // write it under our token: a value whose snapshot began before the invalidation,
            // served after it. With `set_if_absent` our creation loses, we read the
            // invalidation's token instead, and our snapshot ends after the invalidation, so
            // the value computed next is computed after it too.
            let refs = &refs;
            let created = try_join_all(missing.iter().map(|&i| async move {
                let token = new_token(&self.inner.name)?;
                let won = self
                    .inner
                    .backend
                    .set_if_absent(
                        refs[i],
                        Bytes::copy_from_slice(&token),
                        Some(self.inner.tag_ttl),
                    )
                    .await?;
                Ok::<(usize, Option<Token>), Error>((i, won.then_some(token)))
            }))
            .await?;
            let mut lost = Vec::new();
            for (i, token) in created {
                match token {
                    Some(token) => found[i] = Some(Bytes::copy_from_slice(&token)),
                    None => lost.push(i),
                }
            }
            if lost.is_empty() {
                break;
            }
            // Another writer or an invalidation created it first: read theirs.
            let again: Vec<&str> = lost.iter().map(|&i| refs[i]).collect();
            let values = self.inner.backend.get_many(&again).await?;
            for (i, v) in lost.into_iter().zip(values) {
                found[i] = v;
            }
        }
        let mut versions = Vec::with_capacity(tags.len());
        for (tag, value) in tags.iter().zip(found) {
            let token: Token = value
                .as_deref()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    self.local_error(
                        Operation::Get,
                        Error::new(ErrorKind::Backend, self.inner.name.clone())
                            .with_operation(Operation::Get)
                            .with_message(format!(
                                "the version of tag {tag:?} could not be read or created"
                            )),
                    )
                })?;
            versions.push((tag.clone(), token));
        }
        Ok(TagSnapshot {
            versions: versions.into(),
        })
    }

    /// Whether every tag of `frame` still holds the frame's token: one `get_many`.
    pub(crate) async fn tags_current(&self, frame: &TagFrame<'_>) -> Result<bool> {
        let keys: Vec<String> = frame.versions.iter().map(|(t, _)| version_key(t)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let current = self.inner.backend.get_many(&refs).await?;
        Ok(frame
            .versions
            .iter()
            .zip(current)
            .all(|((_, token), now)| now.as_deref() == Some(*token)))
    }

    /// For a batch read: which of `entries` are live as far as their tags go (untagged ones
    /// always are). Reads every tagged entry's version keys with one `get_many`.
    pub(crate) async fn tags_current_batch(&self, entries: &[Option<Bytes>]) -> Result<Vec<bool>> {
        let mut frames = Vec::with_capacity(entries.len());
        let mut keys: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            let frame = match entry {
                Some(bytes) => unframe(&self.inner.name, bytes)
                    .map_err(|e| self.local_error(Operation::GetMany, e))?
                    .map(|(frame, _)| frame),
                None => None,
            };
            if let Some(frame) = &frame {
                for (tag, _) in &frame.versions {
                    let key = version_key(tag);
                    if !index.contains_key(&key) {
                        index.insert(key.clone(), keys.len());
                        keys.push(key);
                    }
                }
            }
            frames.push(frame);
        }
        if keys.is_empty() {
            return Ok(vec![true; entries.len()]);
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let current = self.inner.backend.get_many(&refs).await?;
        Ok(frames
            .iter()
            .map(|frame| match frame {
                None => true,
                Some(frame) => frame.versions.iter().all(|(tag, token)| {
                    current[index[&version_key(tag)]].as_deref() == Some(*token)
                }),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(tags: &[(&str, u8)]) -> TagSnapshot {
        TagSnapshot {
            versions: tags
                .iter()
                .map(|(t, b)| ((*t).to_owned(), [*b; TOKEN_LEN]))
                .collect::<Vec<_>>()
                .into(),
        }
    }

    #[test]
    fn a_frame_round_trips_and_leaves_the_rest_alone() {
        let s = snapshot(&[("posts", 1), ("users", 2)]);
        let mut bytes = s.frame();
        assert_eq!(bytes.len(), s.frame_len());
        bytes.extend_from_slice(b"payload");
        let (frame, rest) = unframe("t", &bytes).unwrap().expect("framed");
        assert_eq!(rest, b"payload");
        assert_eq!(frame.versions.len(), 2);
        assert_eq!(frame.versions[0], ("posts", &[1u8; TOKEN_LEN][..]));
        assert_eq!(frame.versions[1], ("users", &[2u8; TOKEN_LEN][..]));
    }

    #[test]
    fn unframed_values_are_not_tagged() {
        assert!(unframe("t", b"plain").unwrap().is_none());
        assert!(unframe("t", &[0xC1, 0x46, 1, 0]).unwrap().is_none());
        assert!(unframe("t", b"").unwrap().is_none());
    }

    #[test]
    fn a_truncated_or_unknown_frame_is_a_serialization_error() {
        let full = snapshot(&[("users", 7)]).frame();
        for cut in 2..full.len() {
            let err = unframe("t", &full[..cut]).err().expect("truncated");
            assert_eq!(err.kind(), ErrorKind::Serialization, "cut at {cut}");
        }
        let mut other = full.clone();
        other[2] = 9;
        assert_eq!(
            unframe("t", &other).err().expect("version").kind(),
            ErrorKind::Serialization
        );
    }

    #[test]
    fn snapshot_debug_shows_tags_and_short_tokens() {
        let s = snapshot(&[("users", 0xab)]);
        assert_eq!(format!("{s:?}"), "{\"users\": abababab…}");
    }
}
