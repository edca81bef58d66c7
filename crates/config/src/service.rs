//! [`ServiceConfig`]: what every `CacheService` the provider builds shares: stampede
//! protection, the serializer and its keys, the circuit breaker, metrics, a timeout, a
//! namespace.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::de;
use crate::secret::Secret;

/// Settings of every service the provider builds. Field names follow the reference
/// (`enable_protection`, `protection_lock_ttl`, `protection_max_wait` ...).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Stampede protection for `get_or_set` (single-flight, plus a distributed lock where the
    /// backend has a lock store). Default `true`.
    pub enable_protection: bool,
    /// Whether protection takes a distributed lock when a lock store is available. Default
    /// `true`.
    pub protection_distributed: bool,
    /// Lifetime of a load lock, renewed while the loader runs. Default 30 s.
    #[serde(deserialize_with = "de::duration")]
    pub protection_lock_ttl: Duration,
    /// How long a caller waits for another process's load. Default 10 s.
    #[serde(deserialize_with = "de::duration")]
    pub protection_max_wait: Duration,
    /// Pause between looks at the cache while waiting (jittered). Default 50 ms.
    #[serde(deserialize_with = "de::duration")]
    pub protection_retry_interval: Duration,
    /// What a caller does after `protection_max_wait`: `load` (run the loader anyway) or
    /// `fail`. Default `load`.
    pub protection_on_timeout: OnTimeout,
    /// The value serializer. Default: JSON.
    pub serializer: SerializerConfig,
    /// The circuit breaker. Default: off.
    pub circuit_breaker: CircuitBreakerSettings,
    /// Count outcomes and latency (the metrics layer). Default `true`.
    pub metrics: bool,
    /// Bound on every backend call. Default: none.
    #[serde(deserialize_with = "de::option_duration")]
    pub timeout: Option<Duration>,
    /// The namespace of every service's keys, inside the backend's own prefix: keys are stored
    /// under `lexicache_service::layers::namespace_prefix(namespace)` (the name percent-encoded,
    /// then `:`), so namespaces never overlap. Default: none.
    pub namespace: Option<String>,
    /// TTL of tag version keys (also the cap of tagged entries' TTLs). Default 7 days.
    #[serde(deserialize_with = "de::duration")]
    pub tag_ttl: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            enable_protection: true,
            protection_distributed: true,
            protection_lock_ttl: Duration::from_secs(30),
            protection_max_wait: Duration::from_secs(10),
            protection_retry_interval: Duration::from_millis(50),
            protection_on_timeout: OnTimeout::Load,
            serializer: SerializerConfig::default(),
            circuit_breaker: CircuitBreakerSettings::default(),
            metrics: true,
            timeout: None,
            namespace: None,
            tag_ttl: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// What a caller does when another process's load outlasts `protection_max_wait`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    /// Run the loader without the lock (the default).
    #[default]
    Load,
    /// Fail with a `LockTimeout` error.
    Fail,
}

/// The serializer kind: `type` of [`SerializerConfig`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SerializerKind {
    /// JSON (the default).
    #[default]
    Json,
    /// postcard: compact and fast, not self-describing.
    Postcard,
    /// HMAC-SHA256-signed `format` payloads; needs `keys` (at least 32 bytes each).
    Signed,
    /// AEAD-encrypted `format` payloads; needs `keys` (exactly 32 bytes each).
    Encrypted,
}

impl SerializerKind {
    /// The name written in `type`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Postcard => "postcard",
            Self::Signed => "signed",
            Self::Encrypted => "encrypted",
        }
    }

    /// Whether this kind needs keys.
    #[must_use]
    pub const fn needs_keys(self) -> bool {
        matches!(self, Self::Signed | Self::Encrypted)
    }
}

/// The payload format under a signed or encrypted serializer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// JSON (the default).
    #[default]
    Json,
    /// postcard.
    Postcard,
}

/// The AEAD of an encrypted serializer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    /// `aes-256-gcm` (the default).
    #[default]
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// `chacha20-poly1305`.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

/// The default serializer of every service.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerializerConfig {
    /// `json`, `postcard`, `signed` or `encrypted`. Default `json`.
    #[serde(rename = "type")]
    pub kind: SerializerKind,
    /// The payload format of `signed` and `encrypted` (`json` or `postcard`). Default `json`;
    /// not allowed with `type: json` or `type: postcard`.
    pub format: Option<PayloadFormat>,
    /// zstd compression of large values. Default `false`.
    pub compression: bool,
    /// The AEAD of `encrypted`. Default `aes-256-gcm`; only allowed with `type: encrypted`.
    pub algorithm: Option<Algorithm>,
    /// The keys of `signed` and `encrypted`; the first signs or encrypts, all verify or
    /// decrypt (rotation). Default: none; in production `signed` and `encrypted` refuse to
    /// start without keys, elsewhere they use a random per-process key.
    #[serde(deserialize_with = "de::list")]
    pub keys: Vec<KeyConfig>,
}

/// One serializer key: an id and the key material, given inline (typically from an
/// environment variable) or as a file.
///
/// The material is the text's bytes, or hex after a `hex:` prefix (`hex:00ff...`). Signing
/// keys need at least 32 bytes, encryption keys exactly 32.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// The id stored beside values. Default 0.
    pub id: u32,
    /// The key material. Default: none.
    pub key: Option<Secret>,
    /// A file holding the key material, read at load time (trailing newline trimmed).
    /// Default: none.
    pub key_file: Option<PathBuf>,
}

impl KeyConfig {
    /// The key's bytes (`hex:` decoded), once `key` is set.
    ///
    /// # Errors
    ///
    /// A message when the `hex:` text is not hex (it never repeats the key).
    pub fn material(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let text = key.expose();
        match text.strip_prefix("hex:") {
            Some(hex) => decode_hex(hex.trim()).map(Some),
            None => Ok(Some(text.as_bytes().to_vec())),
        }
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 {
        return Err("the hex key has an odd number of digits".to_owned());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "the hex key has a character that is not a hex digit".to_owned())
        })
        .collect()
}

/// Circuit breaker settings (the `CircuitBreaker` layer).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerSettings {
    /// Whether services get a circuit breaker. Default `false`.
    pub enabled: bool,
    /// Failures within `window` that open the circuit. Default 5.
    pub failure_threshold: u32,
    /// The window failures are counted in. Default 10 s.
    #[serde(deserialize_with = "de::duration")]
    pub window: Duration,
    /// How long the circuit stays open before probing. Default 30 s.
    #[serde(deserialize_with = "de::duration")]
    pub open_duration: Duration,
    /// Probes admitted at a time while half open. Default 1.
    pub half_open_probes: u32,
    /// Successful probes that close the circuit. Default 1.
    pub success_threshold: u32,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            failure_threshold: 5,
            window: Duration::from_secs(10),
            open_duration: Duration::from_secs(30),
            half_open_probes: 1,
            success_threshold: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_decode_and_bad_hex_is_an_error_without_the_key() {
        let k = KeyConfig {
            id: 1,
            key: Some(Secret::new("hex:00ff10")),
            key_file: None,
        };
        assert_eq!(k.material().unwrap(), Some(vec![0, 255, 16]));
        let bad = KeyConfig {
            key: Some(Secret::new("hex:zz")),
            ..KeyConfig::default()
        };
        assert!(!bad.material().unwrap_err().contains("zz"));
    }
}
