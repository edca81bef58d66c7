//! Secrets: the redacting [`Secret`] value, the [`SecretStore`] trait and
//! [`BackendSecretStore`], which keeps secrets encrypted at rest in any [`CacheBackend`] that
//! can list its keys (memory, Redis).

use std::fmt;

use async_trait::async_trait;
use lexicache_core::{glob, CacheBackend, Result, Serializer};

use crate::codec::Postcard;
use crate::encrypted::Encrypted;
use crate::keys::EncryptionKey;

/// A secret value (a password, a token, a key). Its `Debug` and `Display` print
/// `<redacted>`, and its bytes are overwritten with zeros when it is dropped.
///
/// The zeroing is best effort: it covers this value's buffer, not copies the program made
/// before (a `String` it was built from that reallocated, for example).
///
/// ```
/// use lexicache_serde::Secret;
///
/// let s = Secret::from("hunter2");
/// assert_eq!(s.expose(), b"hunter2");
/// assert_eq!(s.expose_str(), Some("hunter2"));
/// assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
/// ```
#[derive(Clone, Default)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// A secret holding `bytes` (moved, not copied).
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
        }
    }

    /// The secret's bytes. Named so that every place a secret is revealed is easy to find.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret as text, if it is UTF-8.
    #[must_use]
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.fill(0);
        // Keeps the compiler from dropping the writes to a buffer about to be freed.
        std::hint::black_box(&self.bytes);
    }
}

/// A store of named secrets, encrypted at rest.
///
/// Object safe, so stores are chosen at run time as `Arc<dyn SecretStore>`.
///
/// # Cancel safety
///
/// As the backend's: dropping a future leaves a secret written or not, never half written.
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The secret called `name`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// The backend's error, or [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization)
    /// when the stored value does not decrypt (tampered with, moved from another name, or
    /// sealed with a key this store does not have).
    async fn get(&self, name: &str) -> Result<Option<Secret>>;

    /// Stores `secret` under `name`, replacing any previous one.
    ///
    /// # Errors
    ///
    /// The backend's error (for example an invalid name).
    async fn set(&self, name: &str, secret: &Secret) -> Result<()>;

    /// Removes the secret called `name`; returns whether it existed.
    ///
    /// # Errors
    ///
    /// The backend's error.
    async fn delete(&self, name: &str) -> Result<bool>;

    /// The names of the secrets that start with `prefix` (all of them for `""`), sorted.
    ///
    /// # Errors
    ///
    /// The backend's error, or [`ErrorKind::Unsupported`](lexicache_core::ErrorKind::Unsupported)
    /// where the backend cannot list keys (memcached).
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

/// The default key prefix of a [`BackendSecretStore`].
pub const DEFAULT_SECRET_PREFIX: &str = "secret:";

/// The default most names [`BackendSecretStore::list`](SecretStore::list) returns.
pub const DEFAULT_LIST_LIMIT: usize = 10_000;

/// A [`SecretStore`] over any [`CacheBackend`]: the in-process memory backend, or Redis for
/// secrets shared between processes.
///
/// Each secret is sealed with [`Encrypted`]`<`[`Postcard`]`>` (an AEAD with a fresh random
/// nonce, so the same secret encrypts differently each time) and its name as associated data,
/// so a ciphertext moved to another name fails to decrypt. It is stored under
/// `prefix + name` ([`DEFAULT_SECRET_PREFIX`] by default), without a TTL: give the store a
/// backend without a default TTL. Listing uses the backend's
/// [`keys`](CacheBackend::keys).
///
/// Keys rotate as in [`Encrypted`]: after [`rotate_key`](Self::rotate_key), new writes use the
/// new key and old secrets still decrypt until their key is removed.
///
/// Use encryption keys of their own for secrets, not the keys of an `Encrypted` cache
/// serializer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_core::Result<()> {
/// use lexicache_memory::MemoryBackend;
/// use lexicache_serde::{Aead, BackendSecretStore, EncryptionKey, Secret, SecretStore};
///
/// let key = EncryptionKey::generate(1, Aead::ChaCha20Poly1305)?;
/// let store = BackendSecretStore::new(MemoryBackend::new(), [key])?;
/// store.set("db/password", &Secret::from("hunter2")).await?;
/// store.set("db/user", &Secret::from("app")).await?;
/// let password = store.get("db/password").await?.expect("stored above");
/// assert_eq!(password.expose_str(), Some("hunter2"));
/// assert_eq!(store.list("db/").await?, ["db/password", "db/user"]);
/// assert!(!format!("{store:?} {password:?}").contains("hunter2"));
/// # Ok(()) }
/// ```
pub struct BackendSecretStore<B> {
    backend: B,
    cipher: Encrypted<Postcard>,
    prefix: String,
    list_limit: usize,
}

impl<B: CacheBackend> BackendSecretStore<B> {
    /// A store over `backend` sealing with the first of `keys`; all of `keys` decrypt.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when `keys` is empty or two
    /// keys share an id.
    pub fn new(backend: B, keys: impl IntoIterator<Item = EncryptionKey>) -> Result<Self> {
        Ok(Self {
            backend,
            cipher: Encrypted::new(Postcard, keys)?,
            prefix: DEFAULT_SECRET_PREFIX.to_owned(),
            list_limit: DEFAULT_LIST_LIMIT,
        })
    }

    /// Stores secrets under `prefix + name` instead of [`DEFAULT_SECRET_PREFIX`].
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Returns at most `limit` names from [`list`](SecretStore::list) (default
    /// [`DEFAULT_LIST_LIMIT`]).
    #[must_use]
    pub fn list_limit(mut self, limit: usize) -> Self {
        self.list_limit = limit;
        self
    }

    /// Makes `key` the sealing key; secrets sealed with the previous keys still decrypt.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when the id is already used.
    pub fn rotate_key(&self, key: EncryptionKey) -> Result<()> {
        self.cipher.rotate_key(key)
    }

    /// Removes the key with id `id`; secrets it sealed no longer decrypt.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when `id` is the sealing key.
    pub fn remove_key(&self, id: u32) -> Result<bool> {
        self.cipher.remove_key(id)
    }

    /// The backend the secrets are stored in.
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn storage_key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + name.len());
        key.push_str(&self.prefix);
        key.push_str(name);
        key
    }
}

impl<B: CacheBackend> fmt::Debug for BackendSecretStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendSecretStore")
            .field("backend", &self.backend.name())
            .field("prefix", &self.prefix)
            .field("key_ids", &self.cipher.key_ids())
            .field("list_limit", &self.list_limit)
            .finish()
    }
}

#[async_trait]
impl<B: CacheBackend> SecretStore for BackendSecretStore<B> {
    async fn get(&self, name: &str) -> Result<Option<Secret>> {
        let Some(sealed) = self.backend.get(&self.storage_key(name)).await? else {
            return Ok(None);
        };
        let bytes: Vec<u8> = self.cipher.decode(name, &sealed)?;
        Ok(Some(Secret::new(bytes)))
    }

    async fn set(&self, name: &str, secret: &Secret) -> Result<()> {
        let sealed = self.cipher.encode(name, secret.expose())?;
        self.backend
            .set(&self.storage_key(name), sealed, None)
            .await
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        self.backend.delete(&self.storage_key(name)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{}*", glob::escape(&self.storage_key(prefix)));
        let mut names: Vec<String> = self
            .backend
            .keys(&pattern, self.list_limit)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .collect();
        names.sort_unstable();
        Ok(names)
    }
}
