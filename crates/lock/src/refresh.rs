//! Early refresh: XFetch (probabilistic early recomputation), stale-while-revalidate and TTL
//! jitter, with the small frame that carries their metadata in front of a stored value.
//!
//! - **XFetch** (Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
//!   Prevention", VLDB 2015): each entry written by a load records how long the load took
//!   (`delta`) and when the entry logically expires. On a hit, a caller recomputes early when
//!   `now - delta * beta * ln(rand) >= expiry` with `rand` uniform in (0, 1]. The closer the
//!   expiry and the slower the load, the likelier an early refresh; with many callers, about
//!   one refreshes shortly before expiry and nobody ever misses. `beta` > 1 favours earlier
//!   refreshes, < 1 later ones; 1 is the paper's optimum ([`DEFAULT_BETA`]).
//! - **Stale-while-revalidate**: entries are stored with a physical TTL of `ttl + grace`. A hit
//!   past the logical expiry but within the grace is served at once while one caller refreshes
//!   in the background.
//! - **TTL jitter**: each load's TTL is shortened by a random fraction up to
//!   [`ttl_jitter`](EarlyRefresh::ttl_jitter), so keys loaded together do not expire together.
//!
//! # The frame
//!
//! Only loads with XFetch or stale-while-revalidate on write a frame; every other value is
//! stored exactly as the serializer made it, and readers accept both. A frame is 16 bytes in
//! front of the serializer's bytes, integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `0xC1 0x46` (`0xC1` never starts UTF-8 text nor the serde envelope's `0xC0 0x4C`) |
//! | 2 | 1 | version, `1` |
//! | 3 | 1 | flags, `0` (readers reject unknown bits) |
//! | 4 | 4 | `delta`: the load's duration in milliseconds (`u32`, saturating) |
//! | 8 | 8 | logical expiry in Unix milliseconds (`u64`; `0` = none) |
//! | 16 | … | the serializer's bytes |
//!
//! A value that starts with the magic but is shorter than 16 bytes, has another version, or
//! sets unknown flags is an [`ErrorKind::Serialization`] error, never a panic or a guess.
//!
//! ```
//! use std::time::Duration;
//! use lexicache_lock::refresh::{self, FrameMeta};
//!
//! let meta = FrameMeta { delta: Duration::from_millis(120), expires_at_ms: 1_700_000_000_000 };
//! let framed = refresh::frame(&meta, b"payload");
//! let (read, payload) = refresh::unframe("cache", &framed)?.expect("framed");
//! assert_eq!((read, payload), (meta, &b"payload"[..]));
//! assert!(refresh::unframe("cache", b"plain bytes")?.is_none());
//!
//! // XFetch with beta = 1: far from expiry nothing happens, at expiry everyone refreshes.
//! let delta = Duration::from_millis(100);
//! let m = FrameMeta { delta, expires_at_ms: 10_000 };
//! assert!(!refresh::xfetch_due(&m, 1.0, 5_000, 0.5));
//! assert!(refresh::xfetch_due(&m, 1.0, 10_000, 0.5));
//! # Ok::<(), lexicache_core::Error>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lexicache_core::{Error, ErrorKind, Operation, Result};
use tokio::time::Instant;

/// The first two bytes of a frame.
pub const FRAME_MAGIC: [u8; 2] = [0xC1, 0x46];

/// The frame version written and read.
pub const FRAME_VERSION: u8 = 1;

/// The length of a frame header in bytes.
pub const FRAME_LEN: usize = 16;

/// XFetch's `beta` from the paper: the optimum for exponentially distributed arrivals.
pub const DEFAULT_BETA: f64 = 1.0;

/// Early-refresh settings for loads. All off by default.
///
/// ```
/// use std::time::Duration;
/// use lexicache_lock::refresh::EarlyRefresh;
///
/// let r = EarlyRefresh::new()
///     .xfetch(1.0)
///     .stale_while_revalidate(Duration::from_secs(30))
///     .ttl_jitter(0.1);
/// assert!(r.writes_frame());
/// assert!(!EarlyRefresh::new().ttl_jitter(0.1).writes_frame());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EarlyRefresh {
    /// XFetch's `beta`; `None` turns XFetch off. Negative or non-finite values count as off.
    pub xfetch_beta: Option<f64>,
    /// The grace period of stale-while-revalidate; `None` turns it off.
    pub stale_while_revalidate: Option<Duration>,
    /// The largest fraction by which a load's TTL is shortened at random (0.1 = up to 10%
    /// shorter), clamped to [0, 1]; 0 (the default) turns jitter off.
    pub ttl_jitter: f64,
}

impl EarlyRefresh {
    /// Nothing on.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns on XFetch with `beta` ([`DEFAULT_BETA`] is the paper's choice).
    #[must_use]
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.xfetch_beta = Some(beta);
        self
    }

    /// Turns on stale-while-revalidate with `grace`.
    #[must_use]
    pub fn stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.stale_while_revalidate = Some(grace);
        self
    }

    /// Sets the TTL jitter fraction.
    #[must_use]
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.ttl_jitter = fraction;
        self
    }

    /// The usable XFetch beta, if XFetch is on.
    #[must_use]
    pub fn beta(&self) -> Option<f64> {
        self.xfetch_beta.filter(|b| b.is_finite() && *b >= 0.0)
    }

    /// The grace period, if stale-while-revalidate is on with a non-zero grace.
    #[must_use]
    pub fn grace(&self) -> Option<Duration> {
        self.stale_while_revalidate.filter(|g| !g.is_zero())
    }

    /// Whether loads with these settings write a frame (XFetch or stale-while-revalidate on).
    #[must_use]
    pub fn writes_frame(&self) -> bool {
        self.beta().is_some() || self.grace().is_some()
    }
}

/// What a frame records about its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// How long the load that produced the value took (millisecond resolution).
    pub delta: Duration,
    /// When the value logically expires, in Unix milliseconds; `0` means never.
    pub expires_at_ms: u64,
}

impl FrameMeta {
    /// Whether the value is past its logical expiry at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && now_ms >= self.expires_at_ms
    }
}

/// `payload` behind a frame holding `meta`.
#[must_use]
pub fn frame(meta: &FrameMeta, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(FRAME_VERSION);
    out.push(0);
    let delta = u32::try_from(meta.delta.as_millis()).unwrap_or(u32::MAX);
    out.extend_from_slice(&delta.to_le_bytes());
    out.extend_from_slice(&meta.expires_at_ms.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Whether `bytes` start with the frame magic (cheap: two byte comparisons).
#[inline]
#[must_use]
pub fn is_framed(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[..2] == FRAME_MAGIC
}

/// Splits a framed value into its metadata and the serializer's bytes; `Ok(None)` for a value
/// without a frame.
///
/// # Errors
///
/// [`ErrorKind::Serialization`] (named after `backend`) for a truncated frame, another
/// version or unknown flags.
pub fn unframe<'a>(backend: &str, bytes: &'a [u8]) -> Result<Option<(FrameMeta, &'a [u8])>> {
    if !is_framed(bytes) {
        return Ok(None);
    }
    let bad = |why: &'static str| {
        Error::new(ErrorKind::Serialization, backend.to_owned())
            .with_operation(Operation::Deserialize)
            .with_message(why)
    };
    let Some((header, payload)) = bytes.split_first_chunk::<FRAME_LEN>() else {
        return Err(bad("truncated early-refresh frame"));
    };
    if header[2] != FRAME_VERSION {
        return Err(bad("unknown early-refresh frame version"));
    }
    if header[3] != 0 {
        return Err(bad("unknown early-refresh frame flags"));
    }
    let delta = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&header[8..16]);
    Ok(Some((
        FrameMeta {
            delta: Duration::from_millis(u64::from(delta)),
            expires_at_ms: u64::from_le_bytes(expiry),
        },
        payload,
    )))
}

/// XFetch's test: whether a caller at `now_ms`, having drawn `rand`, refreshes early.
///
/// `now - delta * beta * ln(rand) >= expiry`, with `rand` taken as (0, 1] (a 0 is read as
/// the smallest positive `f64`, so the test never divides by or logs zero). Never due for an
/// entry without a logical expiry.
#[must_use]
pub fn xfetch_due(meta: &FrameMeta, beta: f64, now_ms: u64, rand: f64) -> bool {
    if meta.expires_at_ms == 0 {
        return false;
    }
    let rand = rand.clamp(f64::MIN_POSITIVE, 1.0);
    let delta_ms = meta.delta.as_secs_f64() * 1000.0;
    let gap = -delta_ms * beta * rand.ln();
    now_ms as f64 + gap >= meta.expires_at_ms as f64
}

/// `ttl` shortened by `fraction × rand` of itself (`fraction` clamped to [0, 1], `rand` in
/// [0, 1)), never below 1 ms for a non-zero `ttl`.
#[must_use]
pub fn jittered_ttl(ttl: Duration, fraction: f64, rand: f64) -> Duration {
    // A NaN fraction, like a zero one, means no jitter.
    if ttl.is_zero() || fraction.is_nan() || fraction <= 0.0 {
        return ttl;
    }
    let cut = fraction.min(1.0) * rand.clamp(0.0, 1.0);
    ttl.mul_f64(1.0 - cut).max(Duration::from_millis(1))
}

/// A uniform draw in (0, 1], as XFetch wants it.
#[must_use]
pub fn unit_random() -> f64 {
    1.0 - fastrand::f64()
}

/// The clock logical expiries are read from: Unix milliseconds from the system clock when the
/// clock was made, advanced by tokio's monotonic clock since.
///
/// Processes compare expiries written by each other, so the clock must be wall time; following
/// tokio's clock after that keeps it monotonic within a process and lets tests pause and
/// advance time (`tokio::time::pause`) through expiries without sleeping.
#[derive(Clone, Copy, Debug)]
pub struct LogicalClock {
    anchor_ms: u64,
    anchor: Instant,
}

impl Default for LogicalClock {
    fn default() -> Self {
        Self::new()
    }
}

impl LogicalClock {
    /// A clock anchored now.
    #[must_use]
    pub fn new() -> Self {
        let anchor_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            anchor_ms,
            anchor: Instant::now(),
        }
    }

    /// Now, in Unix milliseconds.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        let since = u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.anchor_ms.saturating_add(since)
    }

    /// The Unix millisecond `after` from now.
    #[must_use]
    pub fn after_ms(&self, after: Duration) -> u64 {
        let after = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.now_ms().saturating_add(after.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let meta = FrameMeta {
            delta: Duration::from_millis(1234),
            expires_at_ms: 1_700_000_123_456,
        };
        let framed = frame(&meta, b"\xC0\x4Cbody");
        assert_eq!(framed.len(), FRAME_LEN + 6);
        let (read, payload) = unframe("t", &framed).unwrap().unwrap();
        assert_eq!(read, meta);
        assert_eq!(payload, b"\xC0\x4Cbody");
        // An empty payload is a valid frame.
        let bare = frame(&meta, b"");
        let (_, empty) = unframe("t", &bare).unwrap().unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn unframed_values_pass_through() {
        assert!(unframe("t", b"").unwrap().is_none());
        assert!(unframe("t", b"\xC1").unwrap().is_none());
        assert!(unframe("t", b"\xC0\x4C\x01\x01{}").unwrap().is_none());
        assert!(unframe("t", b"{\"a\":1}").unwrap().is_none());
    }

    #[test]
    fn truncated_or_garbled_frames_are_serialization_errors() {
        let meta = FrameMeta {
            delta: Duration::from_millis(1),
            expires_at_ms: 5,
        };
        let framed = frame(&meta, b"x");
        for cut in 2..FRAME_LEN {
            let err = unframe("t", &framed[..cut]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Serialization);
        }
        let mut version = framed.clone();
        version[2] = 9;
        assert_eq!(
            unframe("t", &version).unwrap_err().kind(),
            ErrorKind::Serialization
        );
        let mut flags = framed;
        flags[3] = 0x80;
        assert_eq!(
            unframe("t", &flags).unwrap_err().kind(),
            ErrorKind::Serialization
        );
    }

    #[test]
    fn delta_saturates_instead_of_wrapping() {
        let meta = FrameMeta {
            delta: Duration::from_secs(u64::from(u32::MAX)),
            expires_at_ms: 1,
        };
        let (read, _) = unframe("t", &frame(&meta, b"")).unwrap().unwrap();
        assert_eq!(read.delta, Duration::from_millis(u64::from(u32::MAX)));
    }

    #[test]
    fn xfetch_refreshes_near_expiry_and_not_when_fresh() {
        let meta = FrameMeta {
            delta: Duration::from_millis(100),
            expires_at_ms: 100_000,
        };
        // With beta = 1 and rand = 1/e the gap is exactly delta.
        let r = (-1.0f64).exp();
        assert!(!xfetch_due(&meta, 1.0, 99_899, r));
        assert!(xfetch_due(&meta, 1.0, 99_901, r));
        // rand = 1 never refreshes before expiry; rand near 0 almost always does.
        assert!(!xfetch_due(&meta, 1.0, 99_999, 1.0));
        assert!(xfetch_due(&meta, 1.0, 99_999, 1e-300));
        assert!(
            xfetch_due(&meta, 1.0, 50_000, 0.0),
            "rand 0 is read as the smallest positive"
        );
        // A large beta refreshes far ahead, a tiny one only at expiry.
        assert!(xfetch_due(&meta, 1e6, 1_000, 0.5));
        assert!(!xfetch_due(&meta, 1e-9, 99_999, 1e-300));
        // Past expiry everyone is due; without an expiry nobody is.
        assert!(xfetch_due(&meta, 0.0, 100_000, 0.5));
        let forever = FrameMeta {
            expires_at_ms: 0,
            ..meta
        };
        assert!(!xfetch_due(&forever, 1e9, u64::MAX, 1e-300));
    }

    #[test]
    fn jitter_keeps_ttls_within_bounds() {
        let ttl = Duration::from_secs(100);
        for _ in 0..10_000 {
            let j = jittered_ttl(ttl, 0.1, fastrand::f64());
            assert!(j > Duration::from_secs(90) && j <= ttl, "{j:?}");
        }
        assert_eq!(jittered_ttl(ttl, 0.0, 0.9), ttl);
        assert_eq!(jittered_ttl(ttl, f64::NAN, 0.9), ttl);
        assert_eq!(jittered_ttl(ttl, 5.0, 0.5), Duration::from_secs(50));
        assert_eq!(
            jittered_ttl(Duration::from_millis(1), 1.0, 0.999),
            Duration::from_millis(1)
        );
        assert_eq!(jittered_ttl(Duration::ZERO, 0.5, 0.5), Duration::ZERO);
    }

    #[test]
    fn unit_random_is_in_zero_one_inclusive() {
        for _ in 0..10_000 {
            let r = unit_random();
            assert!(r > 0.0 && r <= 1.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn logical_clock_follows_tokio_time() {
        let clock = LogicalClock::new();
        let t0 = clock.now_ms();
        assert!(t0 > 1_600_000_000_000, "anchored to the Unix epoch");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(clock.now_ms() - t0, 5_000);
        assert_eq!(clock.after_ms(Duration::from_secs(1)), t0 + 6_000);
    }

    #[test]
    fn settings_know_when_they_write_a_frame() {
        assert!(!EarlyRefresh::new().writes_frame());
        assert!(EarlyRefresh::new().xfetch(1.0).writes_frame());
        assert!(!EarlyRefresh::new().xfetch(-1.0).writes_frame());
        assert!(!EarlyRefresh::new().xfetch(f64::NAN).writes_frame());
        assert!(EarlyRefresh::new()
            .stale_while_revalidate(Duration::from_secs(1))
            .writes_frame());
        assert!(!EarlyRefresh::new()
            .stale_while_revalidate(Duration::ZERO)
            .writes_frame());
    }
}
