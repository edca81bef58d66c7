//! Cases for health checks and the backend's description of itself.

use std::time::Duration;

use lexicache_core::HealthStatus;

use lexicache_core::CacheBackend;

use crate::ctx::{Ctx, Factory};

pub(crate) async fn health_check_of_working_backend_is_healthy<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    let timeout = Duration::from_secs(5);
    let result = b.health_check(timeout).await;
    assert_eq!(
        result.status,
        HealthStatus::Healthy,
        "health of a working backend (reason: {:?})",
        result.reason
    );
    assert_eq!(result.reason, None, "a healthy result gives no reason");
    assert_eq!(
        result.backend,
        b.name(),
        "the result names the backend checked"
    );
    // The latency is measured within the check, so it cannot exceed the check's deadline.
    assert!(
        result.latency <= timeout,
        "latency {:?} exceeds the timeout {timeout:?}",
        result.latency
    );
}

pub(crate) async fn name_and_capabilities_are_stable<F: Factory>(cx: &Ctx<'_, F>) {
    let b = cx.b();
    assert!(!b.name().is_empty(), "a backend has a name");
    assert_eq!(b.name(), b.name());
    let caps = b.capabilities();
    assert_eq!(&caps, cx.caps(), "capabilities do not change between calls");
    assert!(caps.max_key_len >= 1, "max_key_len is at least one byte");
    if let Some(max) = caps.max_value_size {
        assert!(max >= 1, "max_value_size is at least one byte");
    }
    let other = cx.other_namespace().await;
    assert_eq!(
        other.capabilities(),
        caps,
        "two namespaces of one backend have the same capabilities"
    );
}
