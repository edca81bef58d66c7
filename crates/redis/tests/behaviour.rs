//! The shared behaviour suite (`lexicache-testkit`) against real Redis servers: standalone,
//! the three-primary cluster, and the primary found through Sentinel, one test per case each.
//!
//! Each test connects one client (on its own runtime, which fred's tasks live on) and gives
//! every namespace of the case a `with_prefix` view of it, so the namespace and `clear` cases
//! check real isolation on a shared server.

mod common;

lexicache_testkit::behaviour_suite!({
    let client = std::sync::Arc::new(tokio::sync::OnceCell::new());
    move |ns: String| {
        let client = client.clone();
        async move { client.get_or_init(common::standalone).await.with_prefix(ns) }
    }
});

/// The suite against the Redis Cluster on 7000-7002: a namespace's keys spread over all
/// three primaries, so batches, `clear` and `delete_pattern` cross slots and nodes.
mod cluster {
    use super::common;

    lexicache_testkit::behaviour_suite!({
        let client = std::sync::Arc::new(tokio::sync::OnceCell::new());
        move |ns: String| {
            let client = client.clone();
            async move { client.get_or_init(common::cluster).await.with_prefix(ns) }
        }
    });
}

/// The suite against the primary that the sentinel on 26390 names.
mod sentinel {
    use super::common;

    lexicache_testkit::behaviour_suite!({
        let client = std::sync::Arc::new(tokio::sync::OnceCell::new());
        move |ns: String| {
            let client = client.clone();
            async move {
                client
                    .get_or_init(common::sentinel_backend)
                    .await
                    .with_prefix(ns)
            }
        }
    });
}
