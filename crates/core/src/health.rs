//! Health check results.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Overall health of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, but slow or partly unavailable (for example one of several servers is down).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// A short lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a health check: a status, how long the check took, and details.
///
/// ```
/// use std::time::Duration;
/// use lexicache_core::{HealthCheckResult, HealthStatus};
///
/// let r = HealthCheckResult::healthy("memory", Duration::from_micros(3))
///     .with_detail("entries", "12");
/// assert_eq!(r.status, HealthStatus::Healthy);
/// assert_eq!(r.details["entries"], "12");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckResult {
    /// The backend checked.
    pub backend: String,
    /// Overall status.
    pub status: HealthStatus,
    /// How long the check took.
    pub latency: Duration,
    /// Free-form details (role, version, entry count, per-server state ...).
    pub details: BTreeMap<String, String>,
    /// Why the backend is degraded or unhealthy, if it is.
    pub reason: Option<String>,
}

impl HealthCheckResult {
    /// A healthy result.
    #[must_use]
    pub fn healthy(backend: impl Into<String>, latency: Duration) -> Self {
        Self {
            backend: backend.into(),
            status: HealthStatus::Healthy,
            latency,
            details: BTreeMap::new(),
            reason: None,
        }
    }

    /// A degraded result with a reason.
    #[must_use]
    pub fn degraded(
        backend: impl Into<String>,
        latency: Duration,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            status: HealthStatus::Degraded,
            reason: Some(reason.into()),
            ..Self::healthy(backend, latency)
        }
    }

    /// An unhealthy result with a reason.
    #[must_use]
    pub fn unhealthy(
        backend: impl Into<String>,
        latency: Duration,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            reason: Some(reason.into()),
            ..Self::healthy(backend, latency)
        }
    }

    /// Adds a detail.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Whether the status is [`HealthStatus::Healthy`].
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }
}
