//! The shared behaviour suite (`lexicache-testkit`) against the memory backend: one test per case.
//!
//! Every namespace of a case shares one store through `with_prefix`, so the namespace and
//! `clear` cases check real isolation. A second store with a small `max_value_size` runs the
//! suite as well, so the oversized-value case works at a limit the large-value case also
//! reaches.

use lexicache_memory::MemoryBackend;

lexicache_testkit::behaviour_suite!({
    let store = MemoryBackend::new();
    move |ns: String| {
        let backend = store.with_prefix(ns);
        async move { backend }
    }
});

/// The suite again with a 256 KiB value limit (the large-value case then writes exactly that).
mod small_values {
    use lexicache_memory::MemoryBackend;

    lexicache_testkit::behaviour_suite!({
        let store = MemoryBackend::builder().max_value_size(256 * 1024).build();
        move |ns: String| {
            let backend = store.with_prefix(ns);
            async move { backend }
        }
    });
}
