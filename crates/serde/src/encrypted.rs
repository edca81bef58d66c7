//! [`Encrypted`]: AEAD (AES-256-GCM or ChaCha20-Poly1305) with the cache key and the header as
//! associated data, a random nonce per value, and key rotation.

use std::fmt;

use bytes::Bytes;
use lexicache_core::{Error, ErrorKind, Operation, Result, Serializer};
use ring::aead::{Aad, Nonce};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Plain;
use crate::envelope::{
    split_key_id, Codec, Flags, Header, AEAD_TAG_LEN, HEADER_LEN, KEY_ID_LEN, NONCE_LEN,
};
use crate::error::{corrupt, Reason};
use crate::keys::{EncryptionKey, SharedRing};
use crate::signed::key_prefix;

/// The bytes before the ciphertext: header, key id and nonce.
const PREFIX_LEN: usize = HEADER_LEN + KEY_ID_LEN + NONCE_LEN;

/// Encrypts every value with an AEAD, so the store sees neither the value nor can alter it.
///
/// - Each value gets a fresh random 96-bit nonce from the system's random source, so the same
///   value encrypts differently every time. (With random nonces, rotate a key well before it
///   has sealed 2^32 values.)
/// - The cache key (length-prefixed), the [header](crate::Header) and the key id are the
///   associated data: a value copied under another key, or with a flag flipped, fails to
///   decrypt.
/// - Keys carry ids and rotate as for [`Signed`](crate::Signed); the algorithm comes from the
///   key, never from the stored value.
/// - Only authenticated plaintext reaches the inner stack's decompressor and decoder, and the
///   decrypted buffer is zeroed once decoded.
///
/// The header stays readable (codec, flags, key id, sizes: see [`Envelope`](crate::Envelope)),
/// so tools can describe a value without the key. Clones share the key ring.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::{Aead, Compressing, Encrypted, EncryptionKey, Postcard};
///
/// let key = EncryptionKey::new(1, Aead::Aes256Gcm, [9u8; 32]).unwrap();
/// let sealed = Encrypted::new(Compressing::new(Postcard), [key]).unwrap();
/// let a = sealed.encode("card:1", &"4111 1111 1111 1111").unwrap();
/// let b = sealed.encode("card:1", &"4111 1111 1111 1111").unwrap();
/// assert_ne!(a, b); // a fresh nonce each time
/// assert_eq!(sealed.decode::<String>("card:1", &a).unwrap(), "4111 1111 1111 1111");
/// assert!(sealed.decode::<String>("card:2", &a).unwrap_err().message().starts_with("decrypt failed"));
/// ```
#[derive(Clone)]
pub struct Encrypted<S> {
    inner: S,
    ring: SharedRing<EncryptionKey>,
    rng: SystemRandom,
    name: String,
}

impl<S: Plain> Encrypted<S> {
    /// Encrypts `inner`'s values with the first of `keys`; all of `keys` decrypt.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `keys` is empty or two keys share an id.
    pub fn new(inner: S, keys: impl IntoIterator<Item = EncryptionKey>) -> Result<Self> {
        let name = format!("encrypted+{}", inner.name());
        Ok(Self {
            inner,
            ring: SharedRing::new(keys, "encrypted")?,
            rng: SystemRandom::new(),
            name,
        })
    }

    /// Makes `key` the encrypting key. The previous keys still decrypt.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when a key with the same id is already in the ring.
    pub fn rotate_key(&self, key: EncryptionKey) -> Result<()> {
        self.ring.rotate(key)
    }

    /// Removes the key with id `id`, so values it sealed stop decrypting. Returns whether it
    /// was in the ring.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `id` is the encrypting key.
    pub fn remove_key(&self, id: u32) -> Result<bool> {
        self.ring.remove(id)
    }

    /// The ids of the ring, the encrypting key first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<u32> {
        self.ring.ids()
    }

    /// The wrapped stack.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Encrypted<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypted")
            .field("inner", &self.inner)
            .field("keys", &self.ring)
            .finish_non_exhaustive()
    }
}

/// The associated data: the length-prefixed cache key, then header, key id and nonce.
fn associated_data(key: &str, prefix: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + key.len() + prefix.len());
    aad.extend_from_slice(&key_prefix(key));
    aad.extend_from_slice(key.as_bytes());
    aad.extend_from_slice(prefix);
    aad
}

impl<S: Plain> Serializer for Encrypted<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        let op = Operation::Serialize;
        let ring = self.ring.load();
        let sealer = ring.current();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| {
            Error::new(ErrorKind::Serialization, "encrypted")
                .with_operation(op)
                .with_message("the system random source failed to make a nonce")
        })?;

        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[0; HEADER_LEN]);
        out.extend_from_slice(&sealer.id().to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut header = Header::new(Codec::Json, Flags::NONE);
        self.inner.encode_body(key, value, &mut out, &mut header)?;
        let header = header.with_flags(header.flags() | Flags::ENCRYPTED);
        out[..HEADER_LEN].copy_from_slice(&header.to_bytes());

        let aad = associated_data(key, &out[..PREFIX_LEN]);
        let tag = sealer
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut out[PREFIX_LEN..],
            )
            .map_err(|_| {
                Error::new(ErrorKind::Serialization, "encrypted")
                    .with_operation(op)
                    .with_message("encryption failed: value too large for the AEAD")
            })?;
        out.extend_from_slice(tag.as_ref());
        Ok(Bytes::from(out))
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        let op = Operation::Deserialize;
        let (header, body) = Header::split_for(bytes, "encrypted", op)?;
        let flags = header.flags();
        if !flags.contains(Flags::ENCRYPTED) {
            let what = if flags.contains(Flags::SIGNED) {
                "value is signed, not encrypted"
            } else {
                "value is not encrypted"
            };
            return Err(corrupt("encrypted", op, Reason::LayerMismatch(what)));
        }
        if flags.contains(Flags::SIGNED) {
            return Err(corrupt("encrypted", op, Reason::BadLayers));
        }
        let (id, rest) = split_key_id(body, "encrypted", op)?;
        if rest.len() < NONCE_LEN + AEAD_TAG_LEN {
            return Err(corrupt("encrypted", op, Reason::Truncated));
        }
        let ring = self.ring.load();
        let Some(opener) = ring.find(id) else {
            return Err(corrupt("encrypted", op, Reason::UnknownKeyId(id)));
        };
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| corrupt("encrypted", op, Reason::Truncated))?;
        let aad = associated_data(key, &bytes[..PREFIX_LEN]);

        // ring decrypts in place, and the stored bytes are shared and read-only: one copy.
        let mut buffer = sealed.to_vec();
        let result = match opener
            .aead()
            .open_in_place(nonce, Aad::from(&aad[..]), &mut buffer)
        {
            Ok(plain) => self.inner.decode_body(
                key,
                header.with_flags(flags.without(Flags::ENCRYPTED)),
                plain,
            ),
            Err(_) => Err(corrupt("encrypted", op, Reason::DecryptFailed)),
        };
        buffer.fill(0);
        std::hint::black_box(&buffer);
        result
    }
}
