//! [`Signed`]: HMAC-SHA256 over the cache key, the header and the payload, with key rotation.

use std::fmt;

use bytes::Bytes;
use lexicache_core::{Operation, Result, Serializer};
use ring::hmac;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Plain;
use crate::envelope::{split_key_id, Codec, Flags, Header, HEADER_LEN, KEY_ID_LEN, MAC_LEN};
use crate::error::{corrupt, Reason};
use crate::keys::{SharedRing, SigningKey};

/// Signs every value with HMAC-SHA256, so a value that was altered, or copied under another
/// key, is rejected before anything decodes it.
///
/// - The MAC covers the cache key (length-prefixed), the [header](crate::Header) (so no flag
///   can be flipped), the key id and the payload. Its layout is in [`crate::envelope`].
/// - Keys are at least 32 bytes and carry ids. The first key of the ring signs; every key
///   verifies, looked up by the id stored in the value, so verification never tries keys
///   blindly. [`rotate_key`](Self::rotate_key) and [`remove_key`](Self::remove_key) work through
///   `&self`, on a serializer shared by a running service.
/// - The algorithm is fixed by this type; nothing in a stored value chooses it.
/// - Verification is constant time (`ring::hmac::verify`).
/// - Only verified bytes reach the inner stack's decompressor and decoder.
///
/// Signing proves who wrote a value, it does not hide it: use [`Encrypted`](crate::Encrypted)
/// for that. Clones share the key ring.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::{Json, Signed, SigningKey};
///
/// let signed = Signed::new(Json, [SigningKey::new(1, [0x42; 32]).unwrap()]).unwrap();
/// let bytes = signed.encode("user:1", &"alice").unwrap();
/// assert_eq!(signed.decode::<String>("user:1", &bytes).unwrap(), "alice");
///
/// // The same bytes under another key do not verify.
/// let err = signed.decode::<String>("user:2", &bytes).unwrap_err();
/// assert!(err.message().starts_with("bad MAC"));
///
/// // Rotation: new values are signed with key 2, old ones still verify until key 1 is removed.
/// signed.rotate_key(SigningKey::new(2, [0x43; 32]).unwrap()).unwrap();
/// assert_eq!(signed.decode::<String>("user:1", &bytes).unwrap(), "alice");
/// signed.remove_key(1).unwrap();
/// assert!(signed.decode::<String>("user:1", &bytes).unwrap_err().message().contains("unknown key id 1"));
/// ```
#[derive(Clone)]
pub struct Signed<S> {
    inner: S,
    ring: SharedRing<SigningKey>,
    name: String,
}

impl<S: Plain> Signed<S> {
    /// Signs `inner`'s values with the first of `keys`; all of `keys` verify.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when `keys` is empty or two
    /// keys share an id.
    pub fn new(inner: S, keys: impl IntoIterator<Item = SigningKey>) -> Result<Self> {
        let name = format!("signed+{}", inner.name());
        Ok(Self {
            inner,
            ring: SharedRing::new(keys, "signed")?,
            name,
        })
    }

    /// Makes `key` the signing key. The previous keys still verify.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when a key with the same id is
    /// already in the ring.
    pub fn rotate_key(&self, key: SigningKey) -> Result<()> {
        self.ring.rotate(key)
    }

    /// Removes the key with id `id`, so values it signed stop verifying. Returns whether it was
    /// in the ring.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when `id` is the signing key.
    pub fn remove_key(&self, id: u32) -> Result<bool> {
        self.ring.remove(id)
    }

    /// The ids of the ring, the signing key first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<u32> {
        self.ring.ids()
    }

    /// The wrapped stack.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Checks that `bytes` were signed for `key` by a key of the ring, without decoding the
    /// payload: tools use it to verify values of any type (postcard is not self-describing).
    /// Returns the id of the key that verified.
    ///
    /// ```
    /// use lexicache_core::Serializer;
    /// use lexicache_serde::{Json, Postcard, Signed, SigningKey};
    ///
    /// let key = || SigningKey::new(3, [0x42; 32]).unwrap();
    /// let bytes = Signed::new(Postcard, [key()]).unwrap().encode("k", &(1u8, "x")).unwrap();
    /// // The inner stack plays no part in verification.
    /// let checker = Signed::new(Json, [key()]).unwrap();
    /// assert_eq!(checker.verify("k", &bytes).unwrap(), 3);
    /// assert!(checker.verify("other", &bytes).unwrap_err().message().starts_with("bad MAC"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization), as
    /// [`decode`](Serializer::decode) reports it: not a signed envelope, truncated, an unknown
    /// key id, or a bad MAC.
    pub fn verify(&self, key: &str, bytes: &[u8]) -> Result<u32> {
        self.check(key, bytes).map(|(_, id, _)| id)
    }

    /// Verifies `bytes` for `key`: their header, the id of the key that signed them and the
    /// payload.
    fn check<'a>(&self, key: &str, bytes: &'a [u8]) -> Result<(Header, u32, &'a [u8])> {
        let op = Operation::Deserialize;
        let (header, body) = Header::split_for(bytes, "signed", op)?;
        let flags = header.flags();
        if !flags.contains(Flags::SIGNED) {
            let what = if flags.contains(Flags::ENCRYPTED) {
                "value is encrypted, not signed"
            } else {
                "value is not signed"
            };
            return Err(corrupt("signed", op, Reason::LayerMismatch(what)));
        }
        if flags.contains(Flags::ENCRYPTED) {
            return Err(corrupt("signed", op, Reason::BadLayers));
        }
        let (id, rest) = split_key_id(body, "signed", op)?;
        let Some(payload_len) = rest.len().checked_sub(MAC_LEN) else {
            return Err(corrupt("signed", op, Reason::Truncated));
        };
        let ring = self.ring.load();
        let Some(verifier) = ring.find(id) else {
            return Err(corrupt("signed", op, Reason::UnknownKeyId(id)));
        };

        // `hmac::verify` (constant time) takes one contiguous message, and the cache key is not
        // stored in the value, so the key and the signed bytes are joined in one buffer.
        let (signed_part, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut message = Vec::with_capacity(8 + key.len() + signed_part.len());
        message.extend_from_slice(&key_prefix(key));
        message.extend_from_slice(key.as_bytes());
        message.extend_from_slice(signed_part);
        hmac::verify(verifier.hmac(), &message, tag)
            .map_err(|_| corrupt("signed", op, Reason::BadMac))?;
        drop(message);

        let payload = &rest[..payload_len];
        debug_assert_eq!(HEADER_LEN + KEY_ID_LEN + payload_len + MAC_LEN, bytes.len());
        Ok((header, id, payload))
    }
}

impl<S: fmt::Debug> fmt::Debug for Signed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("inner", &self.inner)
            .field("keys", &self.ring)
            .finish()
    }
}

/// The length prefix of the cache key in MAC and associated-data inputs.
pub(crate) fn key_prefix(key: &str) -> [u8; 8] {
    (key.len() as u64).to_be_bytes()
}

impl<S: Plain> Serializer for Signed<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        let ring = self.ring.load();
        let signer = ring.current();
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[0; HEADER_LEN]);
        out.extend_from_slice(&signer.id().to_be_bytes());
        let mut header = Header::new(Codec::Json, Flags::NONE);
        self.inner.encode_body(key, value, &mut out, &mut header)?;
        let header = header.with_flags(header.flags() | Flags::SIGNED);
        out[..HEADER_LEN].copy_from_slice(&header.to_bytes());

        let mut mac = hmac::Context::with_key(signer.hmac());
        mac.update(&key_prefix(key));
        mac.update(key.as_bytes());
        mac.update(&out);
        out.extend_from_slice(mac.sign().as_ref());
        Ok(Bytes::from(out))
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        let (header, _, payload) = self.check(key, bytes)?;
        self.inner.decode_body(
            key,
            header.with_flags(header.flags().without(Flags::SIGNED)),
            payload,
        )
    }
}
