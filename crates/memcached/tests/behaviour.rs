//! The shared behaviour suite (`lexicache-testkit`) against the two memcached test servers
//! (`LEXICACHE_TEST_MEMCACHED`): one test per case.
//!
//! Every namespace of a case shares one backend (and its pools) through `with_prefix`; keys
//! spread over both servers, so batches cross servers.

mod common;

lexicache_testkit::behaviour_suite!({
    let store = std::sync::Arc::new(tokio::sync::OnceCell::new());
    move |ns: String| {
        let store = store.clone();
        async move {
            store
                .get_or_init(|| common::connect(""))
                .await
                .with_prefix(ns)
        }
    }
});
