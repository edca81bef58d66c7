//! The shared behaviour suite (`lexicache-testkit`) on `TieredBackend`: over a memory L2
//! without invalidation, and over the local Redis with invalidation by pub/sub (each case's
//! backend waits until it serves L1, so the suite runs through L1 and the invalidation path).

mod common;

use std::sync::Arc;

use lexicache_memory::MemoryBackend;
use lexicache_tiered::TieredBackend;

lexicache_testkit::behaviour_suite!({
    let l2 = MemoryBackend::new();
    move |ns: String| {
        let l2 = l2.with_prefix(ns);
        async move {
            TieredBackend::builder(MemoryBackend::new(), Arc::new(l2))
                .build()
                .await
                .expect("a tiered backend over memory builds")
        }
    }
});

/// Over the standalone Redis, with invalidation by pub/sub.
mod redis {
    use super::common;

    lexicache_testkit::behaviour_suite!({
        let client = std::sync::Arc::new(tokio::sync::OnceCell::new());
        move |ns: String| {
            let client = client.clone();
            async move {
                let redis = client.get_or_init(common::redis).await.with_prefix(ns);
                common::tiered_over(redis).await
            }
        }
    });
}
