//! The [`Serializer`] contract and the default [`Json`] codec.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Operation, Result};

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
    /// [`ErrorKind::Serialization`] when the value cannot be encoded.
    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes>;

    /// Decodes bytes read from `key`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`] when the bytes are not a valid `T`.
    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T>;
}

/// JSON via `serde_json`: readable by any language and by operators, the default.
///
/// ```
/// use lexicache_core::{Json, Serializer};
///
/// let bytes = Json.encode("k", &vec![1, 2, 3]).unwrap();
/// assert_eq!(&bytes[..], b"[1,2,3]");
/// let back: Vec<u32> = Json.decode("k", &bytes).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl Serializer for Json {
    fn name(&self) -> &str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, _key: &str, value: &T) -> Result<Bytes> {
        serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
            Error::new(ErrorKind::Serialization, "json")
                .with_operation(Operation::Serialize)
                .with_message("value cannot be encoded as JSON")
                .with_source(e)
        })
    }

    fn decode<T: DeserializeOwned>(&self, _key: &str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::new(ErrorKind::Serialization, "json")
                .with_operation(Operation::Deserialize)
                .with_message(format!(
                    "stored bytes are not valid JSON for {}",
                    std::any::type_name::<T>()
                ))
                .with_source(e)
        })
    }
}
