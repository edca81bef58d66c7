//! [`MemoryBackendBuilder`]: bounds, TTLs, namespace and events of a [`MemoryBackend`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lexicache_core::{CacheEvent, EventBus, EvictionCause, KeyRules};
use moka::notification::RemovalCause;

use crate::backend::{MemoryBackend, Shared};
use crate::entry::{Entry, PerEntryTtl};

/// The default bound: 100,000 entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// The default largest value: 64 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum Bound {
    Entries(u64),
    Bytes(u64),
}

/// Builds a [`MemoryBackend`].
///
/// ```
/// use std::time::Duration;
/// use lexicache_memory::MemoryBackend;
///
/// let cache = MemoryBackend::builder()
///     .name("sessions")
///     .max_bytes(64 * 1024 * 1024)
///     .default_ttl(Duration::from_secs(1800))
///     .build();
/// # let _ = cache;
/// ```
#[derive(Debug)]
#[must_use]
pub struct MemoryBackendBuilder {
    name: String,
    prefix: String,
    default_ttl: Option<Duration>,
    bound: Bound,
    key_rules: KeyRules,
    max_value_size: usize,
    events: Option<EventBus>,
}

impl Default for MemoryBackendBuilder {
    fn default() -> Self {
        Self {
            name: "memory".to_owned(),
            prefix: String::new(),
            default_ttl: None,
            bound: Bound::Entries(DEFAULT_MAX_ENTRIES),
            key_rules: KeyRules::new(),
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            events: None,
        }
    }
}

impl MemoryBackendBuilder {
    /// The name used in errors, metrics and events. Default `"memory"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A prefix put before every key, so namespaces sharing a store never see each other's
    /// keys. Default: none.
    ///
    /// End it with a separator such as `:`. Namespaces are plain prefixes, so with `tenant1`
    /// and `tenant10` on one store, `tenant1`'s `clear` would also reach `tenant10`'s keys.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of entries written with `ttl: None`. Default: none (entries live until evicted).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Bounds the store by entry count. Default [`DEFAULT_MAX_ENTRIES`].
    /// Replaces any earlier [`max_bytes`](Self::max_bytes).
    pub fn max_entries(mut self, max: u64) -> Self {
        self.bound = Bound::Entries(max);
        self
    }

    /// Bounds the store by bytes: the sum over entries of key length, value length and a fixed
    /// 64-byte overhead. Replaces any earlier [`max_entries`](Self::max_entries).
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.bound = Bound::Bytes(max);
        self
    }

    /// The key rules (maximum length). They apply to keys as given, before the prefix.
    pub fn key_rules(mut self, rules: KeyRules) -> Self {
        self.key_rules = rules;
        self
    }

    /// The largest value accepted, in bytes. Default [`DEFAULT_MAX_VALUE_SIZE`]; larger values
    /// are [`ErrorKind::ValueTooLarge`](lexicache_core::ErrorKind::ValueTooLarge) errors.
    pub fn max_value_size(mut self, max: usize) -> Self {
        self.max_value_size = max;
        self
    }

    /// The bus eviction events go to. Default: a new bus, reachable with
    /// [`MemoryBackend::events`].
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Builds the backend.
    #[must_use]
    pub fn build(self) -> MemoryBackend {
        let events = self.events.unwrap_or_default();
        let name: Arc<str> = Arc::from(self.name.as_str());
        let listener_bus = events.clone();
        let listener_name = name.clone();
        let evictions = Arc::new(AtomicU64::new(0));
        let listener_evictions = evictions.clone();
        let mut builder = moka::sync::Cache::builder()
            .expire_after(PerEntryTtl)
            .eviction_listener(move |key: Arc<String>, entry: Entry, cause: RemovalCause| {
                let cause = match cause {
                    // An overwrite is not an eviction.
                    RemovalCause::Replaced => return,
                    RemovalCause::Size => {
                        listener_evictions.fetch_add(1, Ordering::Relaxed);
                        EvictionCause::Size
                    }
                    RemovalCause::Expired => EvictionCause::Expired,
                    // A lazily expired entry removed by delete or clear had expired first.
                    RemovalCause::Explicit if !entry.is_live() => EvictionCause::Expired,
                    RemovalCause::Explicit => EvictionCause::Explicit,
                };
                listener_bus.emit_with(|| CacheEvent::Evicted {
                    backend: listener_name.clone(),
                    key: Arc::from(key.as_str()),
                    cause,
                });
            });
        let bounded_by_bytes = matches!(self.bound, Bound::Bytes(_));
        builder = match self.bound {
            Bound::Entries(n) => builder.max_capacity(n),
            Bound::Bytes(n) => builder
                .max_capacity(n)
                .weigher(|k: &String, e: &Entry| Entry::weight(k, &e.value)),
        };
        MemoryBackend::from_parts(
            Arc::new(Shared {
                cache: builder.build(),
                name,
                events,
                default_ttl: self.default_ttl,
                key_rules: self.key_rules,
                max_value_size: self.max_value_size,
                evictions,
                bounded_by_bytes,
            }),
            self.prefix,
        )
    }
}
