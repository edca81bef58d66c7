//! Property tests: every codec and every stack of layers gives back what it was given, for
//! arbitrary cache keys and values of sizes on both sides of the compression threshold.

use lexicache_core::Serializer;
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Envelope, Flags, Json, Postcard, Signed,
    SigningKey, DEFAULT_THRESHOLD,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Value {
    id: u64,
    name: String,
    flag: Option<bool>,
    blob: Vec<u8>,
    /// Words from a small alphabet: compressible, and long enough to cross the threshold.
    words: Vec<String>,
    nested: Vec<(i32, String)>,
}

fn value() -> impl Strategy<Value = Value> {
    (
        any::<u64>(),
        ".{0,24}",
        any::<Option<bool>>(),
        prop::collection::vec(any::<u8>(), 0..1500),
        prop::collection::vec("[a-d]{0,10}", 0..400),
        prop::collection::vec((any::<i32>(), "\\PC{0,12}"), 0..20),
    )
        .prop_map(|(id, name, flag, blob, words, nested)| Value {
            id,
            name,
            flag,
            blob,
            words,
            nested,
        })
}

/// Any cache key: empty, unicode, control characters.
fn key() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn signing() -> SigningKey {
    SigningKey::new(1, [0x11; 32]).unwrap()
}

fn aes() -> EncryptionKey {
    EncryptionKey::new(1, Aead::Aes256Gcm, [0x22; 32]).unwrap()
}

fn chacha() -> EncryptionKey {
    EncryptionKey::new(2, Aead::ChaCha20Poly1305, [0x33; 32]).unwrap()
}

/// A threshold low enough that many generated values are compressed and many are not.
const LOW: usize = 256;

fn check<S: Serializer>(s: &S, key: &str, value: &Value) -> Result<(), TestCaseError> {
    let bytes = s
        .encode(key, value)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let env = Envelope::parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(env.len(), bytes.len());
    let back: Value = s
        .decode(key, &bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

macro_rules! round_trips {
    ($($name:ident => $make:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            $(
                #[test]
                fn $name(key in key(), value in value()) {
                    let s = $make;
                    check(&s, &key, &value)?;
                }
            )*
        }
    };
}

round_trips! {
    json_round_trips => Json;
    postcard_round_trips => Postcard;
    zstd_json_round_trips => Compressing::new(Json).threshold(LOW);
    zstd_postcard_round_trips => Compressing::new(Postcard).threshold(LOW);
    zstd_json_default_threshold_round_trips => Compressing::new(Json);
    zstd_level_19_postcard_round_trips => Compressing::new(Postcard).threshold(LOW).level(19).unwrap();
    signed_json_round_trips => Signed::new(Json, [signing()]).unwrap();
    signed_postcard_round_trips => Signed::new(Postcard, [signing()]).unwrap();
    signed_zstd_json_round_trips => Signed::new(Compressing::new(Json).threshold(LOW), [signing()]).unwrap();
    signed_zstd_postcard_round_trips => Signed::new(Compressing::new(Postcard).threshold(LOW), [signing()]).unwrap();
    encrypted_aes_json_round_trips => Encrypted::new(Json, [aes()]).unwrap();
    encrypted_chacha_postcard_round_trips => Encrypted::new(Postcard, [chacha()]).unwrap();
    encrypted_zstd_json_round_trips => Encrypted::new(Compressing::new(Json).threshold(LOW), [chacha()]).unwrap();
    encrypted_zstd_postcard_round_trips => Encrypted::new(Compressing::new(Postcard).threshold(LOW), [aes()]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The compressed flag is set exactly when the encoded value reached the threshold and
    /// zstd made it smaller, under signing too.
    #[test]
    fn compressed_flag_follows_the_threshold(key in key(), value in value()) {
        let plain_len = Postcard.encode(&key, &value).unwrap().len() - 5;
        let s = Signed::new(Compressing::new(Postcard).threshold(LOW), [signing()]).unwrap();
        let bytes = s.encode(&key, &value).unwrap();
        let flags = Envelope::parse(&bytes).unwrap().header().flags();
        prop_assert!(flags.contains(Flags::SIGNED));
        if plain_len < LOW {
            prop_assert!(!flags.contains(Flags::COMPRESSED));
        }
        let stats = s.inner().stats();
        prop_assert_eq!(stats.compressed + stats.skipped + stats.not_smaller, 1);
        prop_assert_eq!(flags.contains(Flags::COMPRESSED), stats.compressed == 1);
    }
}

#[test]
fn compressing_stores_large_values_compressed_and_small_ones_as_they_are() {
    let zstd = Compressing::new(Json);
    let large: Vec<String> = (0..DEFAULT_THRESHOLD)
        .map(|i| format!("item {}", i % 10))
        .collect();
    let bytes = zstd.encode("k", &large).unwrap();
    let env = Envelope::parse(&bytes).unwrap();
    assert!(env.header().flags().contains(Flags::COMPRESSED));
    let json_len = serde_json::to_vec(&large).unwrap().len() as u64;
    assert_eq!(env.declared_content_size(), Some(json_len));
    assert_eq!(zstd.decode::<Vec<String>>("k", &bytes).unwrap(), large);

    let small = zstd.encode("k", &"short").unwrap();
    assert_eq!(
        Envelope::parse(&small).unwrap().header().flags(),
        Flags::NONE
    );

    let stats = zstd.stats();
    assert_eq!((stats.compressed, stats.skipped), (1, 1));
    assert_eq!(stats.bytes_in, json_len);
    assert!(stats.bytes_out < stats.bytes_in / 4, "{stats:?}");
    assert!(stats.ratio().unwrap() < 0.25);
    assert_eq!(stats.skipped_bytes, 7);
}

#[test]
fn incompressible_values_above_the_threshold_are_stored_as_they_are() {
    // Bytes from a simple generator with no repeats zstd can use.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let zstd = Compressing::new(Postcard).threshold(64);
    let bytes = zstd.encode("k", &noise).unwrap();
    assert_eq!(
        Envelope::parse(&bytes).unwrap().header().flags(),
        Flags::NONE
    );
    assert_eq!(zstd.stats().not_smaller, 1);
    assert_eq!(zstd.decode::<Vec<u8>>("k", &bytes).unwrap(), noise);
}

#[test]
fn json_envelope_is_the_header_then_plain_json() {
    let bytes = Json.encode("k", &serde_json::json!({"a": [1, 2]})).unwrap();
    assert_eq!(&bytes[..5], &[0xC0, 0x4C, 1, 1, 0]);
    assert_eq!(&bytes[5..], br#"{"a":[1,2]}"#);
}

#[test]
fn clones_of_a_compressing_serializer_share_stats() {
    let a = Compressing::new(Json).threshold(0);
    let b = a.clone();
    b.encode("k", &"x".repeat(100)).unwrap();
    assert_eq!(a.stats().compressed, 1);
}

#[test]
fn invalid_compression_level_is_a_config_error() {
    let err = Compressing::new(Json).level(1000).unwrap_err();
    assert_eq!(err.kind(), lexicache_core::ErrorKind::Config);
}

#[test]
fn values_over_the_decompression_cap_are_refused_on_write() {
    let zstd = Compressing::new(Json).max_decompressed_size(100);
    let err = zstd.encode("k", &"x".repeat(200)).unwrap_err();
    assert_eq!(err.kind(), lexicache_core::ErrorKind::ValueTooLarge);
}

#[test]
fn envelope_describes_any_value_without_keys() {
    let signed = Signed::new(
        Compressing::new(Postcard).threshold(0),
        [SigningKey::new(7, [1; 32]).unwrap()],
    )
    .unwrap();
    let bytes = signed.encode("k", &"abc".repeat(100)).unwrap();
    let env = Envelope::parse(&bytes).unwrap();
    assert_eq!(env.key_id(), Some(7));
    assert_eq!(env.payload_len(), bytes.len() - 5 - 4 - 32);
    assert_eq!(env.declared_content_size(), Some(302));
    assert_eq!(
        env.to_string(),
        format!(
            "v1 postcard [compressed|signed] {} bytes (payload {}), key id 7, declares 302 bytes decompressed",
            bytes.len(),
            env.payload_len()
        )
    );

    let sealed = Encrypted::new(Compressing::new(Json).threshold(0), [aes()]).unwrap();
    let bytes = sealed.encode("k", &"abc".repeat(100)).unwrap();
    let env = Envelope::parse(&bytes).unwrap();
    assert_eq!(env.header().flags(), Flags::COMPRESSED | Flags::ENCRYPTED);
    assert_eq!(env.payload_len(), bytes.len() - 5 - 4 - 12 - 16);
    // The declared size is inside the ciphertext: not readable without the key.
    assert_eq!(env.declared_content_size(), None);
}
