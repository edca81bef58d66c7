//! Events through a `CacheService` built with `.events(bus)`: every kind reaches registered
//! handlers and broadcast subscribers; a slow handler never delays cache operations and its
//! drops are counted exactly; unregistering stops delivery; a panicking handler is contained.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lexicache_core::metrics::EVENTS_DROPPED_TOTAL;
use lexicache_core::{
    async_trait, AsyncEventHandler, Bytes, CacheBackend, CacheEvent, ErrorKind, EventBus,
    EventHandler, EvictionCause,
};
use lexicache_memory::MemoryBackend;
use lexicache_service::CacheService;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::{mpsc as tmpsc, Semaphore};

/// How long a test waits for an event before it fails (real time: handlers run on threads).
const PATIENCE: Duration = Duration::from_secs(10);

/// A service whose memory backend reports evictions onto the same bus as the events layer.
fn service(bus: &EventBus) -> CacheService {
    let memory = MemoryBackend::builder()
        .events(bus.clone())
        .max_value_size(1024)
        .build();
    CacheService::builder(memory)
        .namespace("app:")
        .events(bus.clone())
        .build()
}

/// A handler forwarding every event to the test; the receiver disconnects when the handler is
/// dropped (its drain ended).
fn forwarder() -> (impl EventHandler, mpsc::Receiver<CacheEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handler = move |e: &CacheEvent| {
        let _ = tx.lock().expect("not poisoned").send(e.clone());
    };
    (handler, rx)
}

#[tokio::test]
async fn every_event_kind_reaches_a_handler_and_a_subscriber() {
    let bus = EventBus::new();
    let (handler, handled) = forwarder();
    bus.register(handler).unwrap();
    let mut subscriber = bus.subscribe();
    let cache = service(&bus);

    assert!(cache.set("user:1", &"secret-value-1", None).await); // set
    assert_eq!(
        cache.get::<String>("user:1").await.as_deref(),
        Some("secret-value-1")
    ); // hit
    assert_eq!(cache.get::<String>("user:2").await, None); // miss
    assert!(cache.delete("user:1").await); // delete + evicted
    assert!(cache.set_many(&[("a", 1u8), ("b", 2u8)], None).await); // set x2
    assert_eq!(cache.delete_many(&["a", "zz"]).await, 1); // delete_many + evicted
    assert_eq!(cache.delete_pattern("b*").await.unwrap(), 1); // delete_pattern + evicted
    let stack = cache.backend();
    assert!(stack
        .set_if_absent("c", Bytes::from_static(b"3"), None)
        .await
        .unwrap()); // set
    assert!(!stack
        .set_if_absent("c", Bytes::from_static(b"4"), None)
        .await
        .unwrap()); // none
    let big = Bytes::from(vec![0u8; 2048]);
    let err = stack.set("big", big, None).await.unwrap_err(); // error
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);

    let expected: BTreeSet<&str> = [
        "set",
        "hit",
        "miss",
        "delete",
        "evicted",
        "delete_many",
        "delete_pattern",
        "error",
    ]
    .into();
    // 4 sets, a hit, a miss, a delete, 3 evictions, a delete_many, a delete_pattern, an error.
    const EVENTS: usize = 13;
    let mut from_handler = Vec::new();
    while from_handler.len() < EVENTS {
        from_handler.push(handled.recv_timeout(PATIENCE).expect("every event arrives"));
    }
    let mut from_subscriber = Vec::new();
    while let Ok(e) = subscriber.try_recv() {
        from_subscriber.push(e);
    }
    // Same events, same order (evictions come from moka's listener on the calling thread).
    assert_eq!(from_handler, from_subscriber);
    let kinds: BTreeSet<&str> = from_handler.iter().map(CacheEvent::name).collect();
    assert_eq!(kinds, expected);

    let sets: Vec<&str> = from_handler
        .iter()
        .filter_map(|e| match e {
            CacheEvent::Set { key, .. } => Some(&**key),
            _ => None,
        })
        .collect();
    assert_eq!(sets, ["app:user:1", "app:a", "app:b", "app:c"]);
    assert!(from_handler.contains(&CacheEvent::Delete {
        backend: "memory".into(),
        key: "app:user:1".into(),
        existed: true,
    }));
    assert!(from_handler.contains(&CacheEvent::Evicted {
        backend: "memory".into(),
        key: "app:user:1".into(),
        cause: EvictionCause::Explicit,
    }));
    assert!(from_handler.iter().any(|e| matches!(
        e,
        CacheEvent::DeleteMany { keys, removed: 1, .. } if keys.len() == 2
    )));
    // Keys only, never values.
    assert!(!format!("{from_handler:?}").contains("secret-value"));
}

/// An async handler that reports when it starts an event, then waits for the test to let it
/// finish.
struct Slow {
    started: tmpsc::UnboundedSender<()>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl AsyncEventHandler for Slow {
    async fn handle(&self, _event: CacheEvent) {
        let _ = self.started.send(());
        self.gate.acquire().await.expect("gate open").forget();
    }

    fn name(&self) -> &str {
        "slow"
    }
}

#[tokio::test]
async fn a_slow_handler_never_delays_cache_operations_and_its_drops_are_counted_exactly() {
    const CAPACITY: usize = 8;
    const EXTRA: usize = 5;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let bus = EventBus::new();
    let gate = Arc::new(Semaphore::new(0));
    let (started, mut starts) = tmpsc::unbounded_channel();
    let slow = Slow {
        started,
        gate: gate.clone(),
    };
    let id = metrics::with_local_recorder(&recorder, || {
        bus.register_async_with_capacity(slow, CAPACITY)
    })
    .unwrap();
    let cache = CacheService::memory().events(bus.clone()).build();

    // The first event is taken off the queue; the handler then waits at the gate.
    assert!(cache.set("k0", &0u32, None).await);
    starts.recv().await.expect("the handler started");
    // CAPACITY events fill its queue, EXTRA more are dropped, and every call completes while
    // the handler is still stuck.
    for n in 1..=CAPACITY + EXTRA {
        assert!(cache.set(&format!("k{n}"), &n, None).await);
    }
    assert_eq!(cache.get::<usize>("k3").await, Some(3));
    let stats = &bus.handler_stats()[0];
    assert_eq!(stats.handled, 0, "the handler is still on its first event");
    assert_eq!(
        stats.dropped,
        EXTRA as u64 + 1,
        "the hit's event was dropped too"
    );

    let dropped_metric: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == EVENTS_DROPPED_TOTAL)
        .map(|(k, _, _, v)| {
            assert!(k
                .key()
                .labels()
                .any(|l| l.key() == "handler" && l.value() == "slow"));
            match v {
                DebugValue::Counter(n) => n,
                other => panic!("{EVENTS_DROPPED_TOTAL} is a counter, got {other:?}"),
            }
        })
        .sum();
    assert_eq!(dropped_metric, EXTRA as u64 + 1);

    // Let it go: it handles the first event and the CAPACITY queued ones, nothing more.
    gate.add_permits(CAPACITY + 1);
    for _ in 0..CAPACITY {
        starts.recv().await.expect("a queued event");
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while bus.handler_stats()[0].handled < CAPACITY as u64 + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler stalled"
        );
        tokio::task::yield_now().await;
    }
    let stats = bus.unregister(id).expect("registered");
    assert_eq!(
        (stats.handled, stats.dropped),
        (CAPACITY as u64 + 1, EXTRA as u64 + 1)
    );
}

#[tokio::test]
async fn unregistering_stops_delivery() {
    let bus = EventBus::new();
    let (handler, handled) = forwarder();
    let id = bus.register(handler).unwrap();
    let cache = CacheService::memory().events(bus.clone()).build();
    assert_eq!(cache.get::<u8>("before").await, None);
    assert!(matches!(
        handled.recv_timeout(PATIENCE),
        Ok(CacheEvent::Miss { key, .. }) if &*key == "before"
    ));
    assert!(bus.unregister(id).is_some());
    assert_eq!(cache.get::<u8>("after").await, None);
    // The handler's drain ends and drops it without delivering anything more.
    assert_eq!(
        handled.recv_timeout(PATIENCE),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
    assert!(bus.handler_stats().is_empty());
}

#[tokio::test]
async fn a_handler_panic_is_contained() {
    let bus = EventBus::new();
    let buggy = bus
        .register(|e: &CacheEvent| {
            if matches!(e, CacheEvent::Hit { .. }) {
                panic!("a bug in a handler");
            }
        })
        .unwrap();
    let (handler, handled) = forwarder();
    bus.register(handler).unwrap();
    let cache = CacheService::memory().events(bus.clone()).build();

    assert!(cache.set("k", &1u8, None).await);
    for _ in 0..3 {
        assert_eq!(cache.get::<u8>("k").await, Some(1));
    }
    assert_eq!(cache.get::<u8>("absent").await, None);
    // The other handler saw all five events; the buggy one survived three panics.
    let names: Vec<&str> = (0..5)
        .map(|_| handled.recv_timeout(PATIENCE).expect("an event").name())
        .collect();
    assert_eq!(names, ["set", "hit", "hit", "hit", "miss"]);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let stats = bus
            .handler_stats()
            .into_iter()
            .find(|s| s.id == buggy)
            .expect("registered");
        if stats.handled == 5 {
            assert_eq!(stats.panicked, 3);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the buggy handler stalled"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn subscribe_still_works_without_handlers() {
    let bus = EventBus::new();
    let cache = CacheService::memory().events(bus).build();
    let mut rx = cache.subscribe().expect("events are on");
    assert!(cache.set("k", &1u8, None).await);
    assert!(matches!(rx.recv().await, Ok(CacheEvent::Set { key, .. }) if &*key == "k"));
}

#[tokio::test]
async fn memory_service_emits_its_evictions_on_the_service_bus() {
    let bus = EventBus::new();
    let mut subscriber = bus.subscribe();
    let cache = CacheService::memory().events(bus).build();
    assert!(cache.set("k", &1u8, None).await);
    assert!(cache.delete("k").await);
    let mut seen = Vec::new();
    while let Ok(event) = subscriber.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.contains(&CacheEvent::Evicted {
            backend: "memory".into(),
            key: "k".into(),
            cause: EvictionCause::Explicit,
        }),
        "{seen:?}"
    );
}
