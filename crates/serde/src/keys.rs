//! Key material: [`SigningKey`] (HMAC-SHA256) and [`EncryptionKey`] (AEAD), each with an id,
//! and the rotating key ring that [`Signed`](crate::Signed) and [`Encrypted`](crate::Encrypted)
//! share between threads.
//!
//! Keys never print: their `Debug` shows the id and algorithm only, and ring keeps the key
//! bytes inside its own types, which expose no way to read them back.

use std::fmt;
use std::sync::Arc;

use lexicache_core::{Error, ErrorKind, Result};
use parking_lot::RwLock;
use ring::aead::{self, LessSafeKey, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// A key for [`Signed`](crate::Signed): HMAC-SHA256 with an id stored beside each value.
///
/// ```
/// use lexicache_serde::SigningKey;
///
/// let key = SigningKey::new(1, b"an example key of at least 32 bytes!").unwrap();
/// assert_eq!(key.id(), 1);
/// assert_eq!(format!("{key:?}"), "SigningKey { id: 1, key: \"<redacted>\" }");
/// assert!(SigningKey::new(2, b"too short").is_err());
/// ```
#[derive(Clone)]
pub struct SigningKey {
    id: u32,
    key: hmac::Key,
}

impl SigningKey {
    /// The shortest secret accepted, in bytes (the HMAC-SHA256 output size).
    pub const MIN_LEN: usize = 32;

    /// A key with id `id` from `secret`, which must be at least [`MIN_LEN`](Self::MIN_LEN)
    /// bytes of high-entropy material (not a password).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `secret` is shorter than [`MIN_LEN`](Self::MIN_LEN).
    pub fn new(id: u32, secret: impl AsRef<[u8]>) -> Result<Self> {
        let secret = secret.as_ref();
        if secret.len() < Self::MIN_LEN {
            return Err(config_error(
                "signed",
                format!(
                    "signing key {id} is {} bytes; at least {} are required",
                    secret.len(),
                    Self::MIN_LEN
                ),
            ));
        }
        Ok(Self {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// A random key with id `id`. Its bytes cannot be read back, so it only suits values that
    /// live as long as this process (tests, a per-process cache).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the system's random source fails.
    pub fn generate(id: u32) -> Result<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| config_error("signed", "the system random source failed".into()))?;
        Ok(Self { id, key })
    }

    /// The id stored beside values this key signs.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn hmac(&self) -> &hmac::Key {
        &self.key
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The AEAD algorithm of an [`EncryptionKey`]. Fixed by the key, never read from a stored
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Aead {
    /// AES-256-GCM: fastest where the CPU has AES instructions.
    Aes256Gcm,
    /// ChaCha20-Poly1305: fast everywhere, constant time without AES instructions.
    ChaCha20Poly1305,
}

impl Aead {
    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// A short, stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
}

impl fmt::Display for Aead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key for [`Encrypted`](crate::Encrypted) and the secret store: an AEAD key of
/// [`LEN`](Self::LEN) bytes, its algorithm, and an id stored beside each value.
///
/// ```
/// use lexicache_serde::{Aead, EncryptionKey};
///
/// let key = EncryptionKey::new(3, Aead::ChaCha20Poly1305, [7u8; 32]).unwrap();
/// assert_eq!(key.id(), 3);
/// assert_eq!(
///     format!("{key:?}"),
///     "EncryptionKey { id: 3, algorithm: ChaCha20Poly1305, key: \"<redacted>\" }"
/// );
/// assert!(EncryptionKey::new(4, Aead::Aes256Gcm, [7u8; 16]).is_err());
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    id: u32,
    algorithm: Aead,
    key: Arc<LessSafeKey>,
}

impl EncryptionKey {
    /// The key length in bytes for every supported algorithm.
    pub const LEN: usize = 32;

    /// A key with id `id` for `algorithm` from exactly [`LEN`](Self::LEN) random bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `secret` is not [`LEN`](Self::LEN) bytes long.
    pub fn new(id: u32, algorithm: Aead, secret: impl AsRef<[u8]>) -> Result<Self> {
        let secret = secret.as_ref();
        if secret.len() != Self::LEN {
            return Err(config_error(
                "encrypted",
                format!(
                    "encryption key {id} is {} bytes; {algorithm} takes exactly {}",
                    secret.len(),
                    Self::LEN
                ),
            ));
        }
        let unbound = UnboundKey::new(algorithm.algorithm(), secret)
            .map_err(|_| config_error("encrypted", format!("encryption key {id} is invalid")))?;
        Ok(Self {
            id,
            algorithm,
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// A random key with id `id`. Its bytes cannot be read back, so it only suits values that
    /// live as long as this process.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the system's random source fails.
    pub fn generate(id: u32, algorithm: Aead) -> Result<Self> {
        let mut bytes = [0u8; Self::LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| config_error("encrypted", "the system random source failed".into()))?;
        let key = Self::new(id, algorithm, bytes);
        bytes.fill(0);
        std::hint::black_box(&bytes);
        key
    }

    /// The id stored beside values this key encrypts.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Aead {
        self.algorithm
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.key
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn config_error(layer: &'static str, message: String) -> Error {
    Error::new(ErrorKind::Config, layer).with_message(message)
}

/// A key that carries an id.
pub(crate) trait KeyId: Clone + Send + Sync + 'static {
    fn key_id(&self) -> u32;
}

impl KeyId for SigningKey {
    fn key_id(&self) -> u32 {
        self.id
    }
}

impl KeyId for EncryptionKey {
    fn key_id(&self) -> u32 {
        self.id
    }
}

/// An immutable, non-empty list of keys with distinct ids; the first one signs or encrypts.
#[derive(Debug)]
pub(crate) struct KeyRing<K> {
    keys: Vec<K>,
}

impl<K: KeyId> KeyRing<K> {
    fn new(keys: Vec<K>, layer: &'static str) -> Result<Self> {
        if keys.is_empty() {
            return Err(config_error(layer, "at least one key is required".into()));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.key_id() == k.key_id()) {
                return Err(config_error(
                    layer,
                    format!("key id {} is given twice", k.key_id()),
                ));
            }
        }
        Ok(Self { keys })
    }

    /// The key that signs or encrypts new values.
    pub(crate) fn current(&self) -> &K {
        // `new` refuses an empty list and nothing removes the first key.
        &self.keys[0]
    }

    /// The key with id `id`. Rings hold a handful of keys, so a scan beats a map.
    pub(crate) fn find(&self, id: u32) -> Option<&K> {
        self.keys.iter().find(|k| k.key_id() == id)
    }

    fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(KeyId::key_id).collect()
    }
}

/// The key ring behind a serializer, swappable through `&self`.
///
/// Readers clone the `Arc` under a read lock held for a few instructions, then work without
/// it; rotation builds a new ring and swaps it in. Clones share the ring.
pub(crate) struct SharedRing<K> {
    ring: Arc<RwLock<Arc<KeyRing<K>>>>,
    layer: &'static str,
}

impl<K> Clone for SharedRing<K> {
    fn clone(&self) -> Self {
        Self {
            ring: self.ring.clone(),
            layer: self.layer,
        }
    }
}

impl<K: KeyId> SharedRing<K> {
    pub(crate) fn new(keys: impl IntoIterator<Item = K>, layer: &'static str) -> Result<Self> {
        let ring = KeyRing::new(keys.into_iter().collect(), layer)?;
        Ok(Self {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            layer,
        })
    }

    pub(crate) fn load(&self) -> Arc<KeyRing<K>> {
        self.ring.read().clone()
    }

    /// Makes `key` the current key; the others still verify or decrypt.
    pub(crate) fn rotate(&self, key: K) -> Result<()> {
        let mut slot = self.ring.write();
        let mut keys = Vec::with_capacity(slot.keys.len() + 1);
        keys.push(key);
        keys.extend(slot.keys.iter().cloned());
        *slot = Arc::new(KeyRing::new(keys, self.layer)?);
        Ok(())
    }

    /// Removes the key with id `id`; returns whether it was there. The current key cannot be
    /// removed (rotate first).
    pub(crate) fn remove(&self, id: u32) -> Result<bool> {
        let mut slot = self.ring.write();
        if slot.current().key_id() == id {
            return Err(config_error(
                self.layer,
                format!("key {id} is the current key; rotate to another key before removing it"),
            ));
        }
        if slot.find(id).is_none() {
            return Ok(false);
        }
        let keys = slot
            .keys
            .iter()
            .filter(|k| k.key_id() != id)
            .cloned()
            .collect();
        *slot = Arc::new(KeyRing::new(keys, self.layer)?);
        Ok(true)
    }

    pub(crate) fn ids(&self) -> Vec<u32> {
        self.load().ids()
    }
}

impl<K: KeyId> fmt::Debug for SharedRing<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.ids())
            .finish()
    }
}
