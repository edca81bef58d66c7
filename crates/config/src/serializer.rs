//! [`ConfiguredSerializer`]: the serializer a [`SerializerConfig`] describes, chosen at run
//! time.
//!
//! `Serializer` has generic methods, so it cannot be a trait object; services built from
//! configuration are `CacheService<ConfiguredSerializer>`, an enum over the twelve stacks
//! lexicache-serde can build (format × compression × plain/signed/encrypted), dispatched by
//! one `match` per call.

use bytes::Bytes;
use lexicache_core::{Result, Serializer};
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Json, Postcard, Signed, SigningKey,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::service::{Algorithm, PayloadFormat, SerializerConfig, SerializerKind};

#[derive(Clone, Debug)]
enum Stack {
    Json(Json),
    Postcard(Postcard),
    JsonZ(Compressing<Json>),
    PostcardZ(Compressing<Postcard>),
    SignedJson(Signed<Json>),
    SignedPostcard(Signed<Postcard>),
    SignedJsonZ(Signed<Compressing<Json>>),
    SignedPostcardZ(Signed<Compressing<Postcard>>),
    EncryptedJson(Encrypted<Json>),
    EncryptedPostcard(Encrypted<Postcard>),
    EncryptedJsonZ(Encrypted<Compressing<Json>>),
    EncryptedPostcardZ(Encrypted<Compressing<Postcard>>),
}

macro_rules! dispatch {
    ($stack:expr, $s:ident => $body:expr) => {
        match $stack {
            Stack::Json($s) => $body,
            Stack::Postcard($s) => $body,
            Stack::JsonZ($s) => $body,
            Stack::PostcardZ($s) => $body,
            Stack::SignedJson($s) => $body,
            Stack::SignedPostcard($s) => $body,
            Stack::SignedJsonZ($s) => $body,
            Stack::SignedPostcardZ($s) => $body,
            Stack::EncryptedJson($s) => $body,
            Stack::EncryptedPostcard($s) => $body,
            Stack::EncryptedJsonZ($s) => $body,
            Stack::EncryptedPostcardZ($s) => $body,
        }
    };
}

/// The serializer a [`SerializerConfig`] describes. Clones share key rings (so rotating a key
/// on one rotates it for all). `Debug` shows key ids, never key bytes.
///
/// ```
/// use lexicache_config::{ConfiguredSerializer, SerializerConfig};
/// use lexicache_core::Serializer;
///
/// let s = ConfiguredSerializer::from_config(&SerializerConfig::default())?;
/// let bytes = s.encode("k", &42u32)?;
/// assert_eq!(s.decode::<u32>("k", &bytes)?, 42);
/// # Ok::<(), lexicache_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConfiguredSerializer(Stack);

impl Default for ConfiguredSerializer {
    fn default() -> Self {
        Self(Stack::Json(Json))
    }
}

impl ConfiguredSerializer {
    /// Builds the stack. `signed` and `encrypted` without keys get a random key that lives as
    /// long as this process (validation refuses that in production).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](lexicache_core::ErrorKind::Config) when a key is the wrong
    /// length or two keys share an id (a validated config has neither).
    pub fn from_config(config: &SerializerConfig) -> Result<Self> {
        let format = config.format.unwrap_or_default();
        let z = config.compression;
        let stack = match config.kind {
            SerializerKind::Json if z => Stack::JsonZ(Compressing::new(Json)),
            SerializerKind::Json => Stack::Json(Json),
            SerializerKind::Postcard if z => Stack::PostcardZ(Compressing::new(Postcard)),
            SerializerKind::Postcard => Stack::Postcard(Postcard),
            SerializerKind::Signed => {
                let keys = signing_keys(config)?;
                match (format, z) {
                    (PayloadFormat::Json, false) => Stack::SignedJson(Signed::new(Json, keys)?),
                    (PayloadFormat::Postcard, false) => {
                        Stack::SignedPostcard(Signed::new(Postcard, keys)?)
                    }
                    (PayloadFormat::Json, true) => {
                        Stack::SignedJsonZ(Signed::new(Compressing::new(Json), keys)?)
                    }
                    (PayloadFormat::Postcard, true) => {
                        Stack::SignedPostcardZ(Signed::new(Compressing::new(Postcard), keys)?)
                    }
                }
            }
            SerializerKind::Encrypted => {
                let keys = encryption_keys(config)?;
                match (format, z) {
                    (PayloadFormat::Json, false) => {
                        Stack::EncryptedJson(Encrypted::new(Json, keys)?)
                    }
                    (PayloadFormat::Postcard, false) => {
                        Stack::EncryptedPostcard(Encrypted::new(Postcard, keys)?)
                    }
                    (PayloadFormat::Json, true) => {
                        Stack::EncryptedJsonZ(Encrypted::new(Compressing::new(Json), keys)?)
                    }
                    (PayloadFormat::Postcard, true) => {
                        Stack::EncryptedPostcardZ(Encrypted::new(Compressing::new(Postcard), keys)?)
                    }
                }
            }
        };
        Ok(Self(stack))
    }
}

fn material(config: &SerializerConfig) -> Result<Vec<(u32, Vec<u8>)>> {
    config
        .keys
        .iter()
        .map(|k| {
            let bytes = k
                .material()
                .map_err(|why| {
                    lexicache_core::Error::new(lexicache_core::ErrorKind::Config, "config")
                        .with_message(format!("serializer key {}: {why}", k.id))
                })?
                .unwrap_or_default();
            Ok((k.id, bytes))
        })
        .collect()
}

fn signing_keys(config: &SerializerConfig) -> Result<Vec<SigningKey>> {
    let keys = material(config)?;
    if keys.is_empty() {
        tracing::warn!("signed serializer without keys: using a random per-process key");
        return Ok(vec![SigningKey::generate(0)?]);
    }
    keys.into_iter()
        .map(|(id, bytes)| SigningKey::new(id, bytes))
        .collect()
}

fn encryption_keys(config: &SerializerConfig) -> Result<Vec<EncryptionKey>> {
    let aead = match config.algorithm.unwrap_or_default() {
        Algorithm::Aes256Gcm => Aead::Aes256Gcm,
        Algorithm::ChaCha20Poly1305 => Aead::ChaCha20Poly1305,
    };
    let keys = material(config)?;
    if keys.is_empty() {
        tracing::warn!("encrypted serializer without keys: using a random per-process key");
        return Ok(vec![EncryptionKey::generate(0, aead)?]);
    }
    keys.into_iter()
        .map(|(id, bytes)| EncryptionKey::new(id, aead, bytes))
        .collect()
}

impl Serializer for ConfiguredSerializer {
    fn name(&self) -> &str {
        dispatch!(&self.0, s => s.name())
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        dispatch!(&self.0, s => s.encode(key, value))
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        dispatch!(&self.0, s => s.decode(key, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::KeyConfig;
    use crate::Secret;

    fn config(kind: SerializerKind, format: PayloadFormat, compression: bool) -> SerializerConfig {
        SerializerConfig {
            kind,
            format: kind.needs_keys().then_some(format),
            compression,
            algorithm: (kind == SerializerKind::Encrypted).then_some(Algorithm::ChaCha20Poly1305),
            keys: if kind.needs_keys() {
                vec![KeyConfig {
                    id: 9,
                    key: Some(Secret::new("k".repeat(32))),
                    key_file: None,
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn every_configured_stack_round_trips_and_shows_no_key() {
        let value: Vec<String> = (0..300).map(|i| format!("item {i}")).collect();
        for kind in [
            SerializerKind::Json,
            SerializerKind::Postcard,
            SerializerKind::Signed,
            SerializerKind::Encrypted,
        ] {
            for format in [PayloadFormat::Json, PayloadFormat::Postcard] {
                for compression in [false, true] {
                    let s = ConfiguredSerializer::from_config(&config(kind, format, compression))
                        .unwrap();
                    let bytes = s.encode("key", &value).unwrap();
                    assert_eq!(
                        s.decode::<Vec<String>>("key", &bytes).unwrap(),
                        value,
                        "{s:?}"
                    );
                    assert!(!format!("{s:?}").contains(&"k".repeat(32)));
                }
            }
        }
    }

    #[test]
    fn signed_and_encrypted_bind_values_to_their_key() {
        for kind in [SerializerKind::Signed, SerializerKind::Encrypted] {
            let s = ConfiguredSerializer::from_config(&config(kind, PayloadFormat::Json, false))
                .unwrap();
            let bytes = s.encode("a", &1u8).unwrap();
            assert!(s.decode::<u8>("b", &bytes).is_err(), "{kind:?}");
        }
    }

    #[test]
    fn keyless_signed_and_encrypted_use_a_random_key_outside_production() {
        for kind in [SerializerKind::Signed, SerializerKind::Encrypted] {
            let mut c = config(kind, PayloadFormat::Json, false);
            c.keys.clear();
            let a = ConfiguredSerializer::from_config(&c).unwrap();
            let b = ConfiguredSerializer::from_config(&c).unwrap();
            let bytes = a.encode("k", &1u8).unwrap();
            assert_eq!(a.decode::<u8>("k", &bytes).unwrap(), 1);
            // Another process (another random key) cannot read it.
            assert!(b.decode::<u8>("k", &bytes).is_err(), "{kind:?}");
        }
    }
}
