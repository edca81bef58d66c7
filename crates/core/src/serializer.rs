//! The [`Serializer`] contract. The codecs (JSON, postcard, compression, signing, encryption)
//! live in `lexicache-serde`.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;

/// Turns typed values into bytes and back.
///
/// Both directions see the cache key, so wrapping serializers (signing, encryption) can bind a
/// value to the key it was written under: a value copied to another key then fails to decode.
pub trait Serializer: Send + Sync + fmt::Debug + 'static {
    /// A short name such as `"json"`.
    fn name(&self) -> &str;

    /// Encodes `value`, written under `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](crate::ErrorKind::Serialization) when the value cannot be encoded.
    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes>;

    /// Decodes bytes read from `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](crate::ErrorKind::Serialization) when the bytes are not a valid `T`.
    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T>;
}
