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
///
/// Encoded bytes must not start with the byte `0xC1`. `CacheService` prefixes some entries with
/// frames (tags: `C1 54`, early refresh: `C1 46`) and tells framed entries from plain ones by
/// their first two bytes, so a bare codec whose output happens to start with them (postcard
/// encodes the integer 9025 as `C1 46`) would be misread. lexicache-serde's codecs all start
/// with their envelope header (`C0 4C`).
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
