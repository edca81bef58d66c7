//! The suite's own test: a deliberately plain reference backend (a mutex around a map) must pass
//! every case, in a full configuration and in a minimal one that exercises the `Unsupported`
//! and real-clock paths. This checks the cases, the runner and the macro, not a product backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lexicache_core::{
    async_trait, glob, Bytes, CacheBackend, CacheValue, Capabilities, Error, ErrorKind,
    HealthCheckResult, KeyRules, Operation, Result,
};
use tokio::time::Instant;

/// The largest value the full configuration accepts, kept small so the oversized case is cheap.
const MAX_VALUE: usize = 2 * 1024 * 1024;

#[derive(Debug)]
struct Entry {
    value: CacheValue,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self) -> bool {
        self.expires.is_none_or(|at| Instant::now() < at)
    }
}

/// A namespace over a shared map. `full` turns on every capability; otherwise it has none.
#[derive(Debug, Clone)]
struct Reference {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    prefix: String,
    full: bool,
}

impl Reference {
    fn new(full: bool) -> Self {
        Self {
            map: Arc::default(),
            prefix: String::new(),
            full,
        }
    }

    fn with_prefix(&self, ns: String) -> Self {
        Self {
            prefix: format!("{ns}/"),
            ..self.clone()
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, key: &str) -> Result<String> {
        KeyRules::new().validate(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn check_value(&self, value: &Bytes) -> Result<()> {
        if self.full && value.len() > MAX_VALUE {
            return Err(Error::new(ErrorKind::ValueTooLarge, "reference"));
        }
        Ok(())
    }

    fn read(&self, full_key: &str) -> Option<CacheValue> {
        let mut map = self.lock();
        match map.get(full_key) {
            Some(e) if e.live() => Some(e.value.clone()),
            Some(_) => {
                map.remove(full_key);
                None
            }
            None => None,
        }
    }

    fn write(&self, full_key: String, value: CacheValue, ttl: Option<Duration>) {
        let mut map = self.lock();
        if ttl == Some(Duration::ZERO) {
            map.remove(&full_key);
            return;
        }
        // Only the full configuration keeps objects, as an in-process backend would.
        let value = if self.full {
            value
        } else {
            value.without_object()
        };
        let expires = ttl.map(|t| Instant::now() + t);
        map.insert(full_key, Entry { value, expires });
    }

    fn remove(&self, full_key: &str) -> bool {
        self.lock().remove(full_key).is_some_and(|e| e.live())
    }
}

#[async_trait]
impl CacheBackend for Reference {
    fn name(&self) -> &str {
        "reference"
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        if self.full {
            caps.pattern_delete = true;
            caps.clear = true;
            caps.list_keys = true;
            caps.in_process = true;
            caps.keeps_objects = true;
            caps.tokio_clock = true;
            caps.max_value_size = Some(MAX_VALUE);
        }
        caps
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read(&self.check(key)?).map(CacheValue::into_bytes))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.set_entry(key, value.into(), ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.remove(&self.check(key)?))
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.check_value(&value)?;
        let full = self.check(key)?;
        // One lock for the check and the write, so racing callers have exactly one winner.
        let mut map = self.lock();
        if map.get(&full).is_some_and(Entry::live) {
            return Ok(false);
        }
        if ttl == Some(Duration::ZERO) {
            map.remove(&full);
        } else {
            let expires = ttl.map(|t| Instant::now() + t);
            map.insert(
                full,
                Entry {
                    value: value.into(),
                    expires,
                },
            );
        }
        Ok(true)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.read(&self.check(key)?).is_some())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let full: Vec<String> = keys.iter().map(|k| self.check(k)).collect::<Result<_>>()?;
        Ok(full
            .iter()
            .map(|k| self.read(k).map(CacheValue::into_bytes))
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let mut full = Vec::with_capacity(items.len());
        for (k, v) in items {
            self.check_value(v)?;
            full.push((self.check(k)?, v.clone()));
        }
        for (k, v) in full {
            self.write(k, v.into(), ttl);
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let full: Vec<String> = keys.iter().map(|k| self.check(k)).collect::<Result<_>>()?;
        Ok(full.iter().filter(|k| self.remove(k)).count() as u64)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        if !self.full {
            return Err(Error::unsupported("reference", Operation::DeletePattern));
        }
        let mut map = self.lock();
        let doomed: Vec<String> = map
            .keys()
            .filter(|k| {
                k.strip_prefix(&self.prefix)
                    .is_some_and(|rest| glob::matches(pattern, rest))
            })
            .cloned()
            .collect();
        Ok(doomed
            .iter()
            .filter(|k| map.remove(*k).is_some_and(|e| e.live()))
            .count() as u64)
    }

    async fn clear(&self) -> Result<()> {
        if !self.full {
            return Err(Error::unsupported("reference", Operation::Clear));
        }
        self.lock().retain(|k, _| !k.starts_with(&self.prefix));
        Ok(())
    }

    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        if !self.full {
            return Err(Error::unsupported("reference", Operation::Keys));
        }
        Ok(self
            .lock()
            .iter()
            .filter(|(_, e)| e.live())
            .filter_map(|(k, _)| k.strip_prefix(&self.prefix))
            .filter(|rest| glob::matches(pattern, rest))
            .take(limit)
            .map(str::to_owned)
            .collect())
    }

    async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
        let started = std::time::Instant::now();
        drop(self.lock());
        HealthCheckResult::healthy("reference", started.elapsed())
    }

    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        Ok(self.read(&self.check(key)?))
    }

    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.check_value(value.bytes())?;
        let full = self.check(key)?;
        self.write(full, value, ttl);
        Ok(())
    }
}

/// Every capability on, one map shared by a case's namespaces.
mod full {
    lexicache_testkit::behaviour_suite!({
        let store = super::Reference::new(true);
        move |ns: String| {
            let backend = store.with_prefix(ns);
            async move { backend }
        }
    });
}

/// No capabilities: the `Unsupported` cases and the real-clock expiry case run instead.
mod minimal {
    async fn make(ns: String) -> super::Reference {
        super::Reference::new(false).with_prefix(ns)
    }

    lexicache_testkit::behaviour_suite!(make);
}

#[tokio::test]
async fn run_all_reports_what_applies_to_the_full_reference() {
    let store = Reference::new(true);
    let report = lexicache_testkit::run_all(|ns: String| {
        let backend = store.with_prefix(ns);
        async move { backend }
    })
    .await;
    assert_eq!(
        report.skipped,
        [
            "delete_pattern_is_unsupported_when_not_capable",
            "keys_is_unsupported_when_not_capable",
            "clear_is_unsupported_when_not_capable"
        ]
    );
    assert_eq!(
        report.passed.len() + report.skipped.len(),
        lexicache_testkit::case_names().len()
    );
}

#[tokio::test]
async fn run_case_skips_a_case_the_backend_cannot_support() {
    let outcome = lexicache_testkit::run_case("overwrite_resets_ttl", |ns: String| async move {
        Reference::new(false).with_prefix(ns)
    })
    .await;
    assert_eq!(outcome, lexicache_testkit::CaseOutcome::Skipped);
}

#[test]
fn case_names_are_unique_and_plentiful() {
    let names = lexicache_testkit::case_names();
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "case names are unique");
    assert!(names.len() >= 40, "only {} cases", names.len());
}

/// A backend that forgets the decoded object check: a plain `set` leaves the old object behind.
/// The suite must catch it, and `run_all` must name the case in its panic.
#[derive(Debug, Clone)]
struct StaleObject(Reference);

#[async_trait]
impl CacheBackend for StaleObject {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.0.check_value(&value)?;
        let full = self.0.check(key)?;
        let old = self.0.read(&full).and_then(|v| v.object().cloned());
        let value = match old {
            Some(object) => CacheValue::with_object(value, object),
            None => value.into(),
        };
        self.0.write(full, value, ttl);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.0.delete(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.0.set_if_absent(key, value, ttl).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.0.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.0.set_many(items, ttl).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.0.delete_many(keys).await
    }
    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.0.delete_pattern(pattern).await
    }
    async fn keys(&self, pattern: &str, limit: usize) -> Result<Vec<String>> {
        self.0.keys(pattern, limit).await
    }
    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }
    async fn health_check(&self, timeout: Duration) -> HealthCheckResult {
        self.0.health_check(timeout).await
    }
    async fn get_entry(&self, key: &str) -> Result<Option<CacheValue>> {
        self.0.get_entry(key).await
    }
    async fn set_entry(&self, key: &str, value: CacheValue, ttl: Option<Duration>) -> Result<()> {
        self.0.set_entry(key, value, ttl).await
    }
}

#[tokio::test]
async fn a_stale_object_after_plain_set_fails_its_case() {
    let store = Reference::new(true);
    let factory = |ns: String| {
        let backend = StaleObject(store.with_prefix(ns));
        async move { backend }
    };
    let run = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        lexicache_testkit::run_all(factory),
    ))
    .await;
    let message = match run {
        Ok(_) => panic!("run_all passed a backend that returns stale objects"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        message.contains("plain_set_replaces_the_stored_object"),
        "{message}"
    );
    assert!(
        message.starts_with("1 of "),
        "only that case fails: {message}"
    );
}
