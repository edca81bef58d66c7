//! The shared behaviour suite (`lexicache-testkit`) through the full layer stack:
//! Namespaced(Timeout(Metered(Evented(MemoryBackend)))), every namespace over one memory store.
//!
//! Layers must be transparent: whatever the memory backend does alone, it must still do under
//! every layer, including keeping decoded objects (`get_entry`/`set_entry` are forwarded).

use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheMetrics, EventBus};
use lexicache_memory::MemoryBackend;
use lexicache_service::layers::{Evented, Metered, Namespaced, Timeout};

lexicache_testkit::behaviour_suite!({
    let store = MemoryBackend::new();
    let metrics = Arc::new(CacheMetrics::new("layered"));
    let bus = EventBus::new();
    // A live subscriber, so the events layer really builds and sends its events.
    let events = bus.subscribe();
    move |ns: String| {
        let _ = &events;
        let evented = Evented::new(store.clone(), bus.clone());
        let metered = Metered::new(evented, metrics.clone());
        let bounded = Timeout::new(metered, Duration::from_secs(5)).with_metrics(metrics.clone());
        let backend = Namespaced::new(bounded, ns);
        async move { backend }
    }
});
