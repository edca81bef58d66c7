//! Any bytes through `Signed` stacks, and the same bytes re-signed with the right key (per the
//! layout in docs/serializers.md), so the fuzzer also reaches the decompressor and decoder
//! behind a valid MAC. Unsigned or tampered input must never decode.
#![no_main]

use lexicache_core::Serializer;
use lexicache_serde::{Codec, Compressing, Flags, Header, Json, Postcard, Signed, SigningKey};
use libfuzzer_sys::fuzz_target;
use ring::hmac;

const KEY: [u8; 32] = [0x42; 32];
const CACHE_KEY: &str = "fuzz:key";

/// Signs `data` (header, key id and payload) for `CACHE_KEY` as `Signed` does.
fn sign(data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &KEY);
    let mut mac = hmac::Context::with_key(&key);
    mac.update(&(CACHE_KEY.len() as u64).to_be_bytes());
    mac.update(CACHE_KEY.as_bytes());
    mac.update(data);
    let mut out = data.to_vec();
    out.extend_from_slice(mac.sign().as_ref());
    out
}

fuzz_target!(|data: &[u8]| {
    let key = || SigningKey::new(1, KEY).expect("32 bytes");
    let json = Signed::new(
        Compressing::new(Json).max_decompressed_size(1 << 20),
        [key()],
    )
    .unwrap();
    let postcard = Signed::new(Postcard, [key()]).unwrap();

    // Raw input carries no valid MAC (the chance of guessing one is nil): always an error.
    assert!(json.decode::<serde_json::Value>(CACHE_KEY, data).is_err());
    assert!(postcard.decode::<Vec<u8>>(CACHE_KEY, data).is_err());

    // Behind a valid MAC, anything may come out, but never a panic: the raw input re-signed,
    // and the input as the payload of a well-formed header (codec and compression picked by
    // the first byte) so the decoders are reached without guessing the magic.
    let _ = json.decode::<serde_json::Value>(CACHE_KEY, &sign(data));
    let (selector, payload) = data.split_first().unwrap_or((&0, &[]));
    let flags = Flags::SIGNED
        | if selector & 2 != 0 {
            Flags::COMPRESSED
        } else {
            Flags::NONE
        };
    let mut framed = Header::new(
        if selector & 1 != 0 {
            Codec::Json
        } else {
            Codec::Postcard
        },
        flags,
    )
    .to_bytes()
    .to_vec();
    framed.extend_from_slice(&1u32.to_be_bytes());
    framed.extend_from_slice(payload);
    let signed = sign(&framed);
    let _ = json.decode::<serde_json::Value>(CACHE_KEY, &signed);
    let _ = postcard.decode::<(u64, String, Vec<u8>)>(CACHE_KEY, &signed);
    // ... and the same bytes under another cache key never verify.
    assert!(postcard.decode::<Vec<u8>>("fuzz:other", &signed).is_err());
});
