//! Arbitrary values and cache keys through every stack: decode(encode(v)) == v, and flipping
//! one byte of a signed or encrypted value is always rejected.
#![no_main]

use arbitrary::Arbitrary;
use lexicache_core::Serializer;
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Json, Postcard, Signed, SigningKey,
};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Arbitrary, Serialize, Deserialize)]
struct Value {
    id: u64,
    name: String,
    flag: Option<bool>,
    blob: Vec<u8>,
    words: Vec<String>,
    pairs: Vec<(i32, String)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    key: String,
    value: Value,
    threshold: u16,
    flip: usize,
}

fn round_trip<S: Serializer>(s: &S, input: &Input, authenticated: bool) {
    let bytes = s.encode(&input.key, &input.value).expect("encodes");
    let back: Value = s.decode(&input.key, &bytes).expect("decodes");
    assert_eq!(back, input.value);
    if authenticated {
        let mut bad = bytes.to_vec();
        let pos = input.flip % bad.len();
        bad[pos] ^= 0x01;
        assert!(
            s.decode::<Value>(&input.key, &bad).is_err(),
            "flip at {pos} accepted"
        );
    }
}

fuzz_target!(|input: Input| {
    let t = usize::from(input.threshold);
    let sk = || SigningKey::new(1, [7u8; 32]).unwrap();
    let ek = |alg| EncryptionKey::new(1, alg, [9u8; 32]).unwrap();
    round_trip(&Json, &input, false);
    round_trip(&Postcard, &input, false);
    round_trip(&Compressing::new(Json).threshold(t), &input, false);
    round_trip(&Compressing::new(Postcard).threshold(t), &input, false);
    round_trip(&Signed::new(Json, [sk()]).unwrap(), &input, true);
    round_trip(
        &Signed::new(Compressing::new(Postcard).threshold(t), [sk()]).unwrap(),
        &input,
        true,
    );
    round_trip(
        &Encrypted::new(Postcard, [ek(Aead::Aes256Gcm)]).unwrap(),
        &input,
        true,
    );
    round_trip(
        &Encrypted::new(
            Compressing::new(Json).threshold(t),
            [ek(Aead::ChaCha20Poly1305)],
        )
        .unwrap(),
        &input,
        true,
    );
});
