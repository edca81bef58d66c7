//! Serializers for lexicache, and an encrypted secret store.
//!
//! Every serializer here implements the core [`Serializer`](lexicache_core::Serializer) trait,
//! so it plugs into `CacheService::builder(..).serializer(..)`. They stack:
//!
//! | type | what it adds |
//! |---|---|
//! | [`Json`], [`Postcard`] | the base formats (readable JSON; compact, fast postcard) |
//! | [`Compressing`]`<F>` | zstd above a size threshold, decompression into a hard cap |
//! | [`Signed`]`<S>` | HMAC-SHA256 over cache key, header and payload; key rotation |
//! | [`Encrypted`]`<S>` | AES-256-GCM or ChaCha20-Poly1305, cache key as associated data; key rotation |
//!
//! The order is fixed by the types: `Compressing` wraps a format, and `Signed` or `Encrypted`
//! wrap either of those ([`Plain`]) and are wrapped by nothing. So reading always verifies or
//! decrypts first, then decompresses, then decodes: unauthenticated bytes never reach the
//! decompressor or the decoder.
//!
//! Every stored value starts with a five-byte versioned [`Header`] (magic, format version,
//! codec, flags; the layout is in [`envelope`]), so a value written by one stack and read by
//! another is a clear [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization)
//! error, never garbage, and [`Envelope::parse`] describes any value without its keys. Every
//! failure (bad magic, codec mismatch, unknown key id, bad MAC, decrypt failed, too large,
//! truncated ...) is such an error with a message that says which, and never the value's bytes;
//! through `CacheService::get` it reads as a miss.
//!
//! [`SecretStore`] and [`BackendSecretStore`] keep named [`Secret`]s encrypted at rest in any
//! backend that can list its keys.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
//! use std::sync::Arc;
//! use lexicache_core::{Bytes, CacheBackend};
//! use lexicache_memory::MemoryBackend;
//! use lexicache_serde::{Compressing, Postcard, Signed, SigningKey};
//! use lexicache_service::CacheService;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Report { title: String, rows: Vec<u64> }
//!
//! // In production the key bytes come from configuration or a secret store.
//! let key = SigningKey::new(1, b"0123456789abcdef0123456789abcdef")?;
//! let serializer = Signed::new(Compressing::new(Postcard), [key])?;
//!
//! let backend = Arc::new(MemoryBackend::new());
//! let cache = CacheService::builder(backend.clone()).serializer(serializer).build();
//!
//! let report = Report { title: "daily".into(), rows: (0..1000).collect() };
//! cache.try_set("report:today", &report, None).await?;
//! assert_eq!(cache.try_get::<Report>("report:today").await?, Some(report));
//!
//! // A value planted in the backend without the key does not verify: a miss, not a panic.
//! backend.set("report:today", Bytes::from_static(b"{\"title\":\"forged\"}"), None).await?;
//! assert_eq!(cache.get::<Report>("report:today").await, None);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `compression` | yes | [`Compressing`] (zstd) |
//! | `crypto` | yes | [`Signed`], [`Encrypted`], the key types and the secret store (ring) |
//!
//! [`Json`], [`Postcard`] and the [`envelope`] need neither, which is how `lexicache-service`
//! uses this crate for its default serializer.
#![deny(missing_docs)]
// Without every feature, some failure reasons and envelope constants have no user.
#![cfg_attr(
    not(all(feature = "compression", feature = "crypto")),
    allow(dead_code)
)]

mod codec;
#[cfg(feature = "compression")]
mod compress;
#[cfg(feature = "crypto")]
mod encrypted;
pub mod envelope;
mod error;
#[cfg(feature = "crypto")]
mod keys;
#[cfg(feature = "crypto")]
mod secret;
#[cfg(feature = "crypto")]
mod signed;

pub use codec::{Format, Json, Plain, Postcard};
#[cfg(feature = "compression")]
pub use compress::{
    Compressing, CompressionStats, DEFAULT_LEVEL, DEFAULT_MAX_DECOMPRESSED, DEFAULT_THRESHOLD,
};
#[cfg(feature = "crypto")]
pub use encrypted::Encrypted;
pub use envelope::{Codec, Envelope, Flags, Header};
#[cfg(feature = "crypto")]
pub use keys::{Aead, EncryptionKey, SigningKey};
#[cfg(feature = "crypto")]
pub use secret::{
    BackendSecretStore, Secret, SecretStore, DEFAULT_LIST_LIMIT, DEFAULT_SECRET_PREFIX,
};
#[cfg(feature = "crypto")]
pub use signed::Signed;
