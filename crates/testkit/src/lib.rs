//! The behaviour suite every lexicache backend must pass.
//!
//! The suite is a list of named cases (get/set, TTLs, batches, glob deletes, namespaces and
//! `clear`, binary and large values, unicode and invalid keys, concurrency, in-process objects,
//! health). Each case asserts concrete values and is gated on the backend's
//! [`Capabilities`](lexicache_core::Capabilities): a backend without `pattern_delete` is checked
//! to answer `Unsupported` instead of the glob cases, one without `tokio_clock` is checked with
//! one short real wait instead of a paused clock, and so on.
//!
//! # Using it from a backend crate
//!
//! The main way is [`behaviour_suite!`], in the backend's `tests/behaviour.rs`. It makes one
//! `#[tokio::test]` per case, so test output names every behaviour:
//!
//! ```ignore
//! use lexicache_memory::MemoryBackend;
//!
//! // One store shared by every namespace of a case, so the namespace cases are meaningful.
//! lexicache_testkit::behaviour_suite!({
//!     let store = MemoryBackend::new();
//!     move |ns: String| {
//!         let backend = store.with_prefix(ns);
//!         async move { backend }
//!     }
//! });
//! ```
//!
//! The factory is called with a fresh namespace per backend a case needs
//! (`lexicache-test:{run}:{case}:{n}`, all of one length so none is a prefix of another), so
//! cases never see each other's keys even on a shared remote server; for a remote backend,
//! connect in the factory. It must return a backend without a default TTL. The macro's tests
//! use tokio through this crate, so the calling crate needs no tokio dependency (but must not
//! rename `lexicache-testkit`). Tests run on a current-thread runtime that must not start
//! paused: for `tokio_clock` backends the cases pause, advance and resume the clock themselves.
//!
//! # Rules the cases pin down
//!
//! Beyond the semantics documented on [`CacheBackend`](lexicache_core::CacheBackend):
//!
//! - `delete_many` returns the number of *distinct* keys that existed: a duplicate of a key
//!   already deleted in the same call finds nothing (as Redis `DEL` and memcached do).
//! - In `set_many`, the last item for a duplicated key wins.
//! - A batch holding one invalid key (`KeyInvalid`) or one oversized value (`ValueTooLarge`)
//!   writes and deletes nothing; a rejected oversized `set` keeps the old value.
//! - Keys are bytes: they are never normalised, and spaces, control characters and glob
//!   metacharacters are ordinary key characters.
//! - `max_key_len` is the longest key a caller may pass (any namespace prefix is the
//!   backend's business); a key of exactly that length works and one byte more is `KeyInvalid`.
//! - In globs, `?` and classes match one *character*, not one byte, and both `[^..]` and
//!   `[!..]` negate, as in [`lexicache_core::glob`].
//! - A plain `set` or `set_many` over an entry written with an object drops the object:
//!   `get_entry` never returns a stale decoded value.
//!
//! [`run_all`] and [`run_case`] run the same cases from a hand-written test:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use lexicache_core::{async_trait, Bytes, CacheBackend, Capabilities, Error, Operation};
//! use lexicache_core::{HealthCheckResult, KeyRules, Result};
//!
//! /// A deliberately small backend: no TTLs, no glob deletes, no `clear`.
//! #[derive(Debug, Default)]
//! struct Tiny(Mutex<HashMap<String, Bytes>>);
//!
//! #[async_trait]
//! impl CacheBackend for Tiny {
//!     fn name(&self) -> &str { "tiny" }
//!     fn capabilities(&self) -> Capabilities { Capabilities::default() }
//!     async fn get(&self, key: &str) -> Result<Option<Bytes>> {
//!         KeyRules::new().validate(key)?;
//!         Ok(self.0.lock().unwrap().get(key).cloned())
//!     }
//!     async fn set(&self, key: &str, value: Bytes, _ttl: Option<Duration>) -> Result<()> {
//!         KeyRules::new().validate(key)?;
//!         self.0.lock().unwrap().insert(key.to_owned(), value);
//!         Ok(())
//!     }
//!     // ... the other operations, in the same style.
//!     # async fn delete(&self, key: &str) -> Result<bool> {
//!     #     KeyRules::new().validate(key)?;
//!     #     Ok(self.0.lock().unwrap().remove(key).is_some())
//!     # }
//!     # async fn exists(&self, key: &str) -> Result<bool> { Ok(self.get(key).await?.is_some()) }
//!     # async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
//!     #     KeyRules::new().validate_all(keys.iter().copied())?;
//!     #     let map = self.0.lock().unwrap();
//!     #     Ok(keys.iter().map(|k| map.get(*k).cloned()).collect())
//!     # }
//!     # async fn set_many(&self, items: &[(&str, Bytes)], _ttl: Option<Duration>) -> Result<()> {
//!     #     KeyRules::new().validate_all(items.iter().map(|(k, _)| *k))?;
//!     #     let mut map = self.0.lock().unwrap();
//!     #     items.iter().for_each(|(k, v)| { map.insert((*k).to_owned(), v.clone()); });
//!     #     Ok(())
//!     # }
//!     # async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
//!     #     KeyRules::new().validate_all(keys.iter().copied())?;
//!     #     let mut map = self.0.lock().unwrap();
//!     #     Ok(keys.iter().filter(|k| map.remove(**k).is_some()).count() as u64)
//!     # }
//!     # async fn delete_pattern(&self, _glob: &str) -> Result<u64> {
//!     #     Err(Error::unsupported("tiny", Operation::DeletePattern))
//!     # }
//!     # async fn clear(&self) -> Result<()> { Err(Error::unsupported("tiny", Operation::Clear)) }
//!     # async fn health_check(&self, _timeout: Duration) -> HealthCheckResult {
//!     #     HealthCheckResult::healthy("tiny", Duration::ZERO)
//!     # }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let factory = |_ns: String| async { Tiny::default() };
//! lexicache_testkit::run_case("get_after_set_returns_value", factory).await;
//! lexicache_testkit::run_case("delete_many_counts_distinct_existing_keys", factory).await;
//! let outcome = lexicache_testkit::run_case("clear_is_unsupported_when_not_capable", factory).await;
//! assert_eq!(outcome, lexicache_testkit::CaseOutcome::Passed);
//! assert!(lexicache_testkit::case_names().contains(&"overwrite_resets_ttl"));
//! # }
//! ```
#![deny(missing_docs)]

pub mod bench;
mod bytes_only;
mod cases;
mod ctx;
pub mod process;
pub mod proxy;
mod registry;
mod runner;
pub mod servers;

pub use bytes_only::BytesOnly;
pub use runner::{case_names, run_all, run_case, CaseOutcome, SuiteReport};

/// What [`behaviour_suite!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;
}
