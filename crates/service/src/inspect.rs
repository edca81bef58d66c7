//! Inspection: what lexicache's frames say about a stored entry, for operators' tools.
//!
//! A value written through a [`CacheService`] is the serializer's bytes (an envelope, see
//! `lexicache_serde::envelope`), possibly behind two frames the service adds: the
//! [tag frame](crate::tags) (outermost) and the
//! [early-refresh frame](lexicache_lock::refresh). [`Frames::parse`] peels them off any
//! stored bytes without keys or types; [`CacheService::inspect`] reads a key and also says
//! whether its tags are still current and whether its early-refresh expiry has passed: the
//! reasons a stored entry may be a miss for [`get`](CacheService::get).
//!
//! Nothing here decodes the value or exposes the tags' version tokens.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use lexicache_service::inspect::Frames;
//! use lexicache_service::CacheService;
//!
//! let cache = CacheService::memory().build();
//! cache.try_set_with_tags("user:1", &"alice", None, &["users", "tenant-7"]).await?;
//!
//! let info = cache.inspect("user:1").await?.expect("stored");
//! assert_eq!(info.tags().map(|t| t.name()).collect::<Vec<_>>(), ["tenant-7", "users"]);
//! assert!(info.is_live());
//! // The serializer's bytes: a JSON envelope holding `"alice"`.
//! assert!(info.payload().ends_with(b"\"alice\""));
//!
//! cache.invalidate_tags(&["users"]).await?;
//! let info = cache.inspect("user:1").await?.expect("still stored");
//! assert!(!info.is_live());
//! assert_eq!(info.stale_tags().collect::<Vec<_>>(), ["users"]);
//!
//! // Bytes without frames are all payload.
//! let frames = Frames::parse("cache", b"plain")?;
//! assert_eq!((frames.tag_count(), frames.payload()), (0, &b"plain"[..]));
//! # Ok(()) }
//! ```

use std::time::Duration;

use lexicache_core::{Bytes, Expiry, Operation, Result, Serializer};
use lexicache_lock::refresh::{self, FrameMeta};

use crate::tags::{self, version_key};
use crate::CacheService;

/// The frames in front of stored bytes, borrowed from them: [`Frames::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frames<'a> {
    tags: Vec<&'a str>,
    refresh: Option<FrameMeta>,
    payload: &'a [u8],
}

impl<'a> Frames<'a> {
    /// Splits `bytes` into the tag frame's tags, the early-refresh frame's metadata and the
    /// serializer's bytes behind them. Bytes without frames are all payload.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization), named after
    /// `backend`, for bytes that start with a frame's magic but are truncated or of an unknown
    /// version, as every read reports them.
    pub fn parse(backend: &str, bytes: &'a [u8]) -> Result<Self> {
        let (tags, rest) = match tags::unframe(backend, bytes)? {
            Some((frame, rest)) => (frame.versions.iter().map(|(t, _)| *t).collect(), rest),
            None => (Vec::new(), bytes),
        };
        let (refresh, payload) = match refresh::unframe(backend, rest)? {
            Some((meta, payload)) => (Some(meta), payload),
            None => (None, rest),
        };
        Ok(Self {
            tags,
            refresh,
            payload,
        })
    }

    /// The entry's tags, sorted, as its tag frame lists them (empty without one).
    #[must_use]
    pub fn tags(&self) -> &[&'a str] {
        &self.tags
    }

    /// How many tags the entry carries.
    #[must_use]
    pub fn tag_count(&self) -> usize {
        self.tags.len()
    }

    /// The early-refresh frame's metadata, if the entry has one.
    #[must_use]
    pub fn early_refresh(&self) -> Option<FrameMeta> {
        self.refresh
    }

    /// The serializer's bytes (an envelope, for values lexicache wrote).
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// One tag of an inspected entry, and whether it still holds the entry's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagState {
    name: String,
    current: bool,
}

impl TagState {
    /// The tag.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the tag has not been invalidated since the entry was computed (its version key
    /// still holds the entry's token). A missing version key counts as invalidated.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.current
    }
}

/// What a stored entry is: [`CacheService::inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    stored_len: usize,
    expiry: Expiry,
    tags: Vec<TagState>,
    refresh: Option<FrameMeta>,
    refresh_expired: bool,
    payload: Bytes,
}

impl Inspection {
    /// The length of the stored bytes, frames included.
    #[must_use]
    pub fn stored_len(&self) -> usize {
        self.stored_len
    }

    /// The backend's TTL of the entry ([`Expiry::Unknown`] where it does not report TTLs).
    #[must_use]
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// The entry's tags, sorted, each with whether it is still current.
    pub fn tags(&self) -> impl Iterator<Item = &TagState> {
        self.tags.iter()
    }

    /// The tags invalidated since the entry was computed.
    pub fn stale_tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().filter(|t| !t.current).map(TagState::name)
    }

    /// The early-refresh frame's metadata (load time and logical expiry), if any.
    #[must_use]
    pub fn early_refresh(&self) -> Option<FrameMeta> {
        self.refresh
    }

    /// Whether the early-refresh frame's logical expiry has passed (always `false` without a
    /// frame or a logical expiry).
    #[must_use]
    pub fn is_refresh_expired(&self) -> bool {
        self.refresh_expired
    }

    /// Whether [`get`](CacheService::get) would serve the entry: every tag current and not
    /// past its logical expiry. (Whether it decodes is the serializer's business.)
    #[must_use]
    pub fn is_live(&self) -> bool {
        !self.refresh_expired && self.tags.iter().all(|t| t.current)
    }

    /// The serializer's bytes, without the frames.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The length of the frames in front of the payload.
    #[must_use]
    pub fn frames_len(&self) -> usize {
        self.stored_len - self.payload.len()
    }
}

/// The remaining time until a Unix-millisecond instant, `ZERO` once passed.
fn until(now_ms: u64, at_ms: u64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(now_ms))
}

impl<S: Serializer> CacheService<S> {
    /// Reads `key`'s stored bytes and TTL and says what lexicache's frames hold: its tags and
    /// whether each is current, its early-refresh expiry, and the serializer's bytes. `None`
    /// when nothing is stored.
    ///
    /// Costs one `get_with_ttl`, plus one `get_many` of the tags' version keys for a tagged
    /// entry. Counts nothing in the service's metrics (the metrics layer, if any, counts the
    /// backend calls).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyInvalid`](lexicache_core::ErrorKind::KeyInvalid), the backend's error,
    /// or [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization) for a
    /// malformed frame.
    pub async fn inspect(&self, key: &str) -> Result<Option<Inspection>> {
        let op = Operation::Get;
        self.check_key(key, op)?;
        let Some((bytes, expiry)) = self
            .inner
            .backend
            .get_with_ttl(key)
            .await
            .map_err(|e| e.or_operation(op))?
        else {
            return Ok(None);
        };
        let frames = Frames::parse(&self.inner.name, &bytes).map_err(|e| e.or_operation(op))?;
        let tags = match tags::unframe(&self.inner.name, &bytes)? {
            Some((frame, _)) => {
                let keys: Vec<String> =
                    frame.versions.iter().map(|(t, _)| version_key(t)).collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let now = self.inner.backend.get_many(&refs).await?;
                frame
                    .versions
                    .iter()
                    .zip(now)
                    .map(|((tag, token), now)| TagState {
                        name: (*tag).to_owned(),
                        current: now.as_deref() == Some(*token),
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let now_ms = self.inner.clock.now_ms();
        let refresh = frames.early_refresh();
        let refresh_expired = refresh.is_some_and(|m| m.is_expired(now_ms));
        let payload = bytes.slice(bytes.len() - frames.payload().len()..);
        Ok(Some(Inspection {
            stored_len: bytes.len(),
            expiry,
            tags,
            refresh,
            refresh_expired,
            payload,
        }))
    }

    /// How long until `meta`'s logical expiry, by this service's clock: `None` without one,
    /// `Some(ZERO)` once passed.
    #[must_use]
    pub fn refresh_remaining(&self, meta: &FrameMeta) -> Option<Duration> {
        (meta.expires_at_ms != 0).then(|| until(self.inner.clock.now_ms(), meta.expires_at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadOptions;
    use lexicache_core::ErrorKind;

    #[test]
    fn frames_parse_peels_tags_then_early_refresh() {
        let meta = FrameMeta {
            delta: Duration::from_millis(5),
            expires_at_ms: 1_700_000_000_000,
        };
        let inner = refresh::frame(&meta, b"payload");
        let mut bytes = vec![0xC1, 0x54, 1, 2];
        for tag in ["a", "bc"] {
            bytes.push(u8::try_from(tag.len()).unwrap());
            bytes.extend_from_slice(tag.as_bytes());
            bytes.extend_from_slice(&[7; tags::TOKEN_LEN]);
        }
        bytes.extend_from_slice(&inner);
        let frames = Frames::parse("t", &bytes).unwrap();
        assert_eq!(frames.tags(), ["a", "bc"]);
        assert_eq!(frames.early_refresh(), Some(meta));
        assert_eq!(frames.payload(), b"payload");
    }

    #[test]
    fn truncated_frames_are_serialization_errors() {
        for bytes in [&[0xC1, 0x54, 1][..], &[0xC1, 0x46, 1, 0, 0][..]] {
            let err = Frames::parse("t", bytes).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Serialization, "{bytes:?}");
        }
    }

    #[tokio::test]
    async fn inspect_reports_missing_untagged_and_ttl() {
        let cache = CacheService::memory().build();
        assert!(cache.inspect("nothing").await.unwrap().is_none());
        cache
            .try_set("k", &1u8, Some(Duration::from_secs(60)))
            .await
            .unwrap();
        let info = cache.inspect("k").await.unwrap().unwrap();
        assert_eq!(info.tags().count(), 0);
        assert!(info.is_live() && info.early_refresh().is_none());
        assert_eq!(info.frames_len(), 0);
        assert_eq!(info.stored_len(), info.payload().len());
        assert!(
            matches!(info.expiry(), Expiry::In(d) if d <= Duration::from_secs(60) && d > Duration::from_secs(50)),
            "{:?}",
            info.expiry()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn inspect_reports_early_refresh_expiry_and_its_passing() {
        let cache = CacheService::memory().build();
        let options = LoadOptions::new()
            .ttl(Duration::from_secs(10))
            .stale_while_revalidate(Duration::from_secs(30));
        cache
            .get_or_set_with("r", options, || async { Ok::<_, std::io::Error>(5u8) })
            .await
            .unwrap();
        let info = cache.inspect("r").await.unwrap().unwrap();
        let meta = info.early_refresh().expect("a frame");
        let left = cache.refresh_remaining(&meta).unwrap();
        assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(9));
        assert_eq!(info.frames_len(), refresh::FRAME_LEN);
        assert!(info.is_live());

        tokio::time::advance(Duration::from_secs(11)).await;
        let info = cache.inspect("r").await.unwrap().unwrap();
        assert!(info.is_refresh_expired() && !info.is_live());
        assert_eq!(cache.refresh_remaining(&meta), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn inspect_rejects_an_invalid_key() {
        let cache = CacheService::memory().build();
        let err = cache.inspect("").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyInvalid);
    }
}
