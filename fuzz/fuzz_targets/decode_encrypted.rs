//! Any bytes through `Encrypted` stacks (both algorithms), and the same bytes sealed with the
//! right key (per the layout in docs/serializers.md) so the fuzzer reaches the decompressor and
//! decoder behind a valid tag. Unsealed or tampered input must never decode.
#![no_main]

use lexicache_core::Serializer;
use lexicache_serde::{
    Aead, Codec, Compressing, Encrypted, EncryptionKey, Flags, Header, Json, Postcard,
};
use libfuzzer_sys::fuzz_target;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

const KEY: [u8; 32] = [0x24; 32];
const CACHE_KEY: &str = "fuzz:key";

/// Seals `plain` behind `header` for `CACHE_KEY` as `Encrypted` does, with key id 1 and an
/// all-zero nonce.
fn seal(header: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    let mut out = header.to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&[0u8; 12]);
    let mut aad = (CACHE_KEY.len() as u64).to_be_bytes().to_vec();
    aad.extend_from_slice(CACHE_KEY.as_bytes());
    aad.extend_from_slice(&out);
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &KEY).ok()?);
    let mut body = plain.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(&aad),
            &mut body,
        )
        .ok()?;
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let aes = || EncryptionKey::new(1, Aead::Aes256Gcm, KEY).expect("32 bytes");
    let chacha = EncryptionKey::new(1, Aead::ChaCha20Poly1305, KEY).expect("32 bytes");
    let zstd_json = Encrypted::new(
        Compressing::new(Json).max_decompressed_size(1 << 20),
        [aes()],
    )
    .unwrap();
    let postcard = Encrypted::new(Postcard, [aes()]).unwrap();
    let chacha_json = Encrypted::new(Json, [chacha]).unwrap();

    assert!(zstd_json
        .decode::<serde_json::Value>(CACHE_KEY, data)
        .is_err());
    assert!(postcard.decode::<Vec<u8>>(CACHE_KEY, data).is_err());
    assert!(chacha_json
        .decode::<serde_json::Value>(CACHE_KEY, data)
        .is_err());

    // The input's first five bytes as the header, and a well-formed header (codec and
    // compression picked by the first byte) so the decoders are reached without guessing the
    // magic.
    let (selector, payload) = data.split_first().unwrap_or((&0, &[]));
    let flags = Flags::ENCRYPTED
        | if selector & 2 != 0 {
            Flags::COMPRESSED
        } else {
            Flags::NONE
        };
    let codec = if selector & 1 != 0 {
        Codec::Json
    } else {
        Codec::Postcard
    };
    let header = Header::new(codec, flags).to_bytes();
    let raw = data
        .split_first_chunk::<5>()
        .and_then(|(h, rest)| seal(h, rest));
    for sealed in [raw, seal(&header, payload)].into_iter().flatten() {
        let _ = zstd_json.decode::<serde_json::Value>(CACHE_KEY, &sealed);
        let _ = postcard.decode::<(u64, String, Vec<u8>)>(CACHE_KEY, &sealed);
        assert!(chacha_json
            .decode::<serde_json::Value>(CACHE_KEY, &sealed)
            .is_err());
        assert!(postcard.decode::<Vec<u8>>("fuzz:other", &sealed).is_err());
    }
});
