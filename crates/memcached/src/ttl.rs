//! The TTL rule: how a [`Duration`] becomes memcached's `exptime`.
//!
//! Memcached reads `exptime` as seconds from now when it is at most 30 days
//! ([`MAX_RELATIVE_TTL`]), and as an absolute Unix time otherwise; `0` means "never expires".
//! So:
//!
//! - a TTL is rounded *up* to whole seconds (1 ms becomes 1 s, never 0, which would mean no
//!   expiry);
//! - a TTL over 30 days is sent as the absolute Unix time now + TTL, read from this machine's
//!   clock (so the client's and servers' clocks must agree for such TTLs);
//! - an absolute time past memcached's 32-bit range (January 2038) is clamped to its end.
//!
//! `Some(Duration::ZERO)` and `None` never get here: the backend deletes the key for the first
//! and sends `0` (no expiry) for the second, unless a default TTL is configured.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest TTL memcached takes as relative seconds: 30 days.
pub const MAX_RELATIVE_TTL: Duration = Duration::from_secs(60 * 60 * 24 * 30);

/// The `exptime` to send for a non-zero `ttl`, given the current Unix time in seconds.
///
/// ```
/// use std::time::Duration;
/// use lexicache_memcached::exptime;
///
/// let now = 1_700_000_000;
/// assert_eq!(exptime(Duration::from_millis(1), now), 1);
/// assert_eq!(exptime(Duration::from_millis(1500), now), 2);
/// assert_eq!(exptime(Duration::from_secs(30 * 86_400), now), 30 * 86_400);
/// assert_eq!(exptime(Duration::from_secs(40 * 86_400), now), now + 40 * 86_400);
/// ```
#[must_use]
pub fn exptime(ttl: Duration, now_unix: i64) -> i64 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1);
    if secs <= MAX_RELATIVE_TTL.as_secs() {
        // At most 30 days, so it fits.
        return secs as i64;
    }
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    now_unix.saturating_add(secs).min(i64::from(i32::MAX))
}

/// The current Unix time in seconds (0 if the clock is before 1970).
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const DAY: u64 = 86_400;

    #[test]
    fn sub_second_ttls_round_up_to_one_second() {
        assert_eq!(exptime(Duration::from_nanos(1), NOW), 1);
        assert_eq!(exptime(Duration::from_millis(999), NOW), 1);
        assert_eq!(exptime(Duration::from_millis(1001), NOW), 2);
    }

    #[test]
    fn thirty_days_is_still_relative_and_one_second_more_is_absolute() {
        assert_eq!(exptime(MAX_RELATIVE_TTL, NOW), (30 * DAY) as i64);
        assert_eq!(
            exptime(MAX_RELATIVE_TTL + Duration::from_secs(1), NOW),
            NOW + (30 * DAY) as i64 + 1
        );
        // A fraction over 30 days rounds up past the limit, so it becomes absolute too.
        assert_eq!(
            exptime(MAX_RELATIVE_TTL + Duration::from_millis(1), NOW),
            NOW + (30 * DAY) as i64 + 1
        );
    }

    #[test]
    fn forty_days_becomes_an_absolute_time() {
        assert_eq!(
            exptime(Duration::from_secs(40 * DAY), NOW),
            NOW + (40 * DAY) as i64
        );
    }

    #[test]
    fn huge_ttls_clamp_to_the_end_of_memcached_time() {
        assert_eq!(exptime(Duration::MAX, NOW), i64::from(i32::MAX));
        assert_eq!(
            exptime(Duration::from_secs(100 * 365 * DAY), NOW),
            i64::from(i32::MAX)
        );
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_unix() > 1_577_836_800);
    }
}
