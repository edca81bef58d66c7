//! Every way a stored value can be wrong is a typed `Serialization` error that says which, and
//! never quotes the value: tampered, truncated, wrong key, wrong codec, unknown key id, moved
//! to another cache key, lying zstd frames.

use lexicache_core::{Error, ErrorKind, Serializer};
use lexicache_serde::{
    Aead, Compressing, Encrypted, EncryptionKey, Envelope, Flags, Json, Postcard, Signed,
    SigningKey,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    note: String,
    scores: Vec<u32>,
}

const MARKER: &str = "PLAINTEXT-MARKER-7Q";

fn profile() -> Profile {
    Profile {
        id: 42,
        name: MARKER.into(),
        note: "repeat me ".repeat(200),
        scores: (0..50).collect(),
    }
}

fn sk(id: u32) -> SigningKey {
    SigningKey::new(id, [id as u8 ^ 0x5c; 32]).unwrap()
}

fn ek(id: u32) -> EncryptionKey {
    EncryptionKey::new(id, Aead::Aes256Gcm, [id as u8 ^ 0x36; 32]).unwrap()
}

/// Asserts a `Serialization` error whose message starts with `prefix` and which does not
/// quote the value.
#[track_caller]
fn assert_rejected<T: std::fmt::Debug>(result: lexicache_core::Result<T>, prefix: &str) -> Error {
    let err = result.expect_err("must be rejected");
    assert_eq!(err.kind(), ErrorKind::Serialization, "{err}");
    assert!(
        err.message().starts_with(prefix),
        "expected {prefix:?}, got {:?}",
        err.message()
    );
    assert_no_value_bytes(&err);
    err
}

#[track_caller]
fn assert_no_value_bytes(err: &Error) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(MARKER), "error quotes the value: {shown}");
        assert!(
            !shown.contains("repeat me"),
            "error quotes the value: {shown}"
        );
    }
}

// ----- envelope and codec mismatches ---------------------------------------------------

#[test]
fn json_value_read_as_postcard_is_a_codec_mismatch() {
    let bytes = Json.encode("k", &profile()).unwrap();
    assert_rejected(
        Postcard.decode::<Profile>("k", &bytes),
        "codec mismatch: stored as json, read as postcard",
    );
    let bytes = Postcard.encode("k", &profile()).unwrap();
    assert_rejected(
        Json.decode::<Profile>("k", &bytes),
        "codec mismatch: stored as postcard, read as json",
    );
}

#[test]
fn unenveloped_json_is_bad_magic() {
    let bytes = serde_json::to_vec(&profile()).unwrap();
    for err in [
        Json.decode::<Profile>("k", &bytes).map(|_| ()),
        Postcard.decode::<Profile>("k", &bytes).map(|_| ()),
        Signed::new(Json, [sk(1)])
            .unwrap()
            .decode::<Profile>("k", &bytes)
            .map(|_| ()),
        Encrypted::new(Json, [ek(1)])
            .unwrap()
            .decode::<Profile>("k", &bytes)
            .map(|_| ()),
        Envelope::parse(&bytes).map(|_| ()),
    ] {
        assert_rejected(err, "bad magic");
    }
}

#[test]
fn other_format_versions_unknown_codecs_and_unknown_flags_are_rejected() {
    let good = Json.encode("k", &1u8).unwrap().to_vec();
    let mut v2 = good.clone();
    v2[2] = 2;
    assert_rejected(Json.decode::<u8>("k", &v2), "bad version");
    let mut codec = good.clone();
    codec[3] = 9;
    assert_rejected(
        Json.decode::<u8>("k", &codec),
        "bad header: unknown codec id 9",
    );
    let mut flags = good;
    flags[4] = 0x80;
    assert_rejected(Json.decode::<u8>("k", &flags), "bad header: unknown flags");
}

#[test]
fn unsigned_values_are_rejected_by_signed_serializers() {
    // A value planted without the key, even a well-formed envelope, never reaches the decoder.
    let signed = Signed::new(Compressing::new(Json), [sk(1)]).unwrap();
    for bytes in [
        Json.encode("k", &profile()).unwrap(),
        Compressing::new(Json)
            .threshold(0)
            .encode("k", &profile())
            .unwrap(),
    ] {
        assert_rejected(
            signed.decode::<Profile>("k", &bytes),
            "codec mismatch: value is not signed",
        );
    }
    let sealed = Encrypted::new(Json, [ek(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        signed.decode::<Profile>("k", &sealed),
        "codec mismatch: value is encrypted, not signed",
    );
}

#[test]
fn unencrypted_values_are_rejected_by_encrypted_serializers() {
    let enc = Encrypted::new(Postcard, [ek(1)]).unwrap();
    let plain = Postcard.encode("k", &profile()).unwrap();
    assert_rejected(
        enc.decode::<Profile>("k", &plain),
        "codec mismatch: value is not encrypted",
    );
    let signed = Signed::new(Postcard, [sk(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        enc.decode::<Profile>("k", &signed),
        "codec mismatch: value is signed, not encrypted",
    );
}

#[test]
fn layered_values_read_by_plain_serializers_are_rejected() {
    let signed = Signed::new(Json, [sk(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        Json.decode::<Profile>("k", &signed),
        "codec mismatch: value is signed",
    );
    let sealed = Encrypted::new(Json, [ek(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        Json.decode::<Profile>("k", &sealed),
        "codec mismatch: value is encrypted",
    );
    let packed = Compressing::new(Json)
        .threshold(0)
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        Json.decode::<Profile>("k", &packed),
        "codec mismatch: value is compressed",
    );
    // A compressed value read by a signed stack without compression: verified, then refused.
    let key = sk(1);
    let signed_packed = Signed::new(Compressing::new(Json).threshold(0), [key.clone()])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        Signed::new(Json, [key])
            .unwrap()
            .decode::<Profile>("k", &signed_packed),
        "codec mismatch: value is compressed",
    );
}

#[test]
fn signed_value_of_another_codec_is_a_codec_mismatch_after_verification() {
    let key = sk(1);
    let bytes = Signed::new(Postcard, [key.clone()])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    assert_rejected(
        Signed::new(Json, [key])
            .unwrap()
            .decode::<Profile>("k", &bytes),
        "codec mismatch: stored as postcard, read as json",
    );
}

#[test]
fn decode_errors_never_quote_the_value() {
    // serde_json's own message would quote the string ("invalid type: string ...").
    let bytes = Json.encode("k", &MARKER).unwrap();
    let err = assert_rejected(
        Json.decode::<u32>("k", &bytes),
        "decode failed: not valid JSON for u32",
    );
    assert!(std::error::Error::source(&err).is_none());
    let bytes = Postcard.encode("k", &MARKER).unwrap();
    assert_rejected(
        Postcard.decode::<(u8, u8, u64)>("k", &bytes),
        "decode failed",
    );
}

#[test]
fn trailing_bytes_after_a_postcard_value_are_rejected() {
    let mut bytes = Postcard.encode("k", &7u8).unwrap().to_vec();
    bytes.push(0);
    assert_rejected(
        Postcard.decode::<u8>("k", &bytes),
        "decode failed: trailing bytes",
    );
}

// ----- tampering ---------------------------------------------------------------------------

/// Flips every byte of `bytes` in turn (xor 0xFF, then xor 0x01) and checks each is rejected.
fn every_flip_rejected<S: Serializer>(s: &S, key: &str, bytes: &[u8]) {
    for pos in 0..bytes.len() {
        for mask in [0xFF, 0x01] {
            let mut bad = bytes.to_vec();
            bad[pos] ^= mask;
            let result = s.decode::<Profile>(key, &bad);
            let err = result.expect_err(&format!("flip at {pos} (mask {mask:#x}) accepted"));
            assert_eq!(err.kind(), ErrorKind::Serialization);
            assert_no_value_bytes(&err);
        }
    }
}

#[test]
fn flipping_any_byte_of_a_signed_value_is_rejected() {
    let plain = Signed::new(Postcard, [sk(1)]).unwrap();
    every_flip_rejected(
        &plain,
        "user:1",
        &plain.encode("user:1", &profile()).unwrap(),
    );
    let packed = Signed::new(Compressing::new(Json).threshold(64), [sk(1)]).unwrap();
    let bytes = packed.encode("user:1", &profile()).unwrap();
    assert!(Envelope::parse(&bytes)
        .unwrap()
        .header()
        .flags()
        .contains(Flags::COMPRESSED));
    every_flip_rejected(&packed, "user:1", &bytes);
}

#[test]
fn flipping_any_byte_of_an_encrypted_value_is_rejected() {
    let plain = Encrypted::new(Json, [ek(1)]).unwrap();
    every_flip_rejected(
        &plain,
        "user:1",
        &plain.encode("user:1", &profile()).unwrap(),
    );
    let packed = Encrypted::new(Compressing::new(Postcard).threshold(64), [ek(1)]).unwrap();
    let bytes = packed.encode("user:1", &profile()).unwrap();
    assert!(Envelope::parse(&bytes)
        .unwrap()
        .header()
        .flags()
        .contains(Flags::COMPRESSED));
    every_flip_rejected(&packed, "user:1", &bytes);
}

#[test]
fn clearing_the_compressed_flag_of_a_signed_value_fails_the_mac() {
    let s = Signed::new(Compressing::new(Json).threshold(0), [sk(1)]).unwrap();
    let mut bytes = s.encode("k", &profile()).unwrap().to_vec();
    bytes[4] &= !Flags::COMPRESSED.bits();
    assert_rejected(s.decode::<Profile>("k", &bytes), "bad MAC");
}

#[test]
fn signed_value_copied_under_another_key_is_rejected() {
    let s = Signed::new(Json, [sk(1)]).unwrap();
    let bytes = s.encode("user:1", &profile()).unwrap();
    assert_rejected(s.decode::<Profile>("user:2", &bytes), "bad MAC");
    assert_rejected(s.decode::<Profile>("user:1 ", &bytes), "bad MAC");
    assert_rejected(s.decode::<Profile>("", &bytes), "bad MAC");
}

#[test]
fn encrypted_value_copied_under_another_key_is_rejected() {
    let s = Encrypted::new(Json, [ek(1)]).unwrap();
    let bytes = s.encode("user:1", &profile()).unwrap();
    assert_rejected(s.decode::<Profile>("user:2", &bytes), "decrypt failed");
    assert_rejected(s.decode::<Profile>("user:10", &bytes), "decrypt failed");
}

#[test]
fn value_signed_with_another_key_of_the_same_id_is_a_bad_mac() {
    let bytes = Signed::new(Json, [sk(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    let other = Signed::new(Json, [SigningKey::new(1, [0u8; 32]).unwrap()]).unwrap();
    assert_rejected(other.decode::<Profile>("k", &bytes), "bad MAC");
    let bytes = Encrypted::new(Json, [ek(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    let other = Encrypted::new(
        Json,
        [EncryptionKey::new(1, Aead::Aes256Gcm, [0u8; 32]).unwrap()],
    )
    .unwrap();
    assert_rejected(other.decode::<Profile>("k", &bytes), "decrypt failed");
}

#[test]
fn algorithm_comes_from_the_key_not_the_value() {
    // The same bytes as a ChaCha key cannot open an AES-GCM value: nothing in the value
    // selects the algorithm.
    let bytes = Encrypted::new(Json, [ek(1)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    let chacha = EncryptionKey::new(1, Aead::ChaCha20Poly1305, [1u8 ^ 0x36; 32]).unwrap();
    assert_rejected(
        Encrypted::new(Json, [chacha])
            .unwrap()
            .decode::<Profile>("k", &bytes),
        "decrypt failed",
    );
}

#[test]
fn unknown_key_id_is_rejected() {
    let bytes = Signed::new(Json, [sk(9)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    let verifier = Signed::new(Json, [sk(1), sk(2)]).unwrap();
    assert_rejected(verifier.decode::<Profile>("k", &bytes), "unknown key id 9");
    let bytes = Encrypted::new(Json, [ek(9)])
        .unwrap()
        .encode("k", &profile())
        .unwrap();
    let opener = Encrypted::new(Json, [ek(1)]).unwrap();
    assert_rejected(opener.decode::<Profile>("k", &bytes), "unknown key id 9");
}

#[test]
fn truncated_at_every_length_is_rejected() {
    fn check<S: Serializer>(s: &S) {
        let bytes = s.encode("k", &profile()).unwrap();
        for len in 0..bytes.len() {
            let result = s.decode::<Profile>("k", &bytes[..len]);
            let err = result.expect_err(&format!("{} accepted a cut at {len}", s.name()));
            assert_eq!(err.kind(), ErrorKind::Serialization);
            assert_no_value_bytes(&err);
        }
    }
    check(&Json);
    check(&Postcard);
    check(&Compressing::new(Json).threshold(64));
    check(&Compressing::new(Postcard).threshold(64));
    check(&Signed::new(Json, [sk(1)]).unwrap());
    check(&Signed::new(Compressing::new(Postcard).threshold(64), [sk(1)]).unwrap());
    check(&Encrypted::new(Postcard, [ek(1)]).unwrap());
    check(&Encrypted::new(Compressing::new(Json).threshold(64), [ek(1)]).unwrap());
}

#[test]
fn short_values_name_truncation() {
    let s = Signed::new(Json, [sk(1)]).unwrap();
    let bytes = s.encode("k", &1u8).unwrap();
    assert_rejected(s.decode::<u8>("k", &bytes[..3]), "truncated");
    assert_rejected(s.decode::<u8>("k", &bytes[..7]), "truncated");
    assert_rejected(
        s.decode::<u8>("k", &bytes[..HEADER_AND_ID + 31]),
        "truncated",
    );
    assert_rejected(Envelope::parse(&bytes[..HEADER_AND_ID + 31]), "truncated");
    let e = Encrypted::new(Json, [ek(1)]).unwrap();
    let bytes = e.encode("k", &1u8).unwrap();
    assert_rejected(
        e.decode::<u8>("k", &bytes[..HEADER_AND_ID + 27]),
        "truncated",
    );
}

const HEADER_AND_ID: usize = 5 + 4;

#[test]
fn signed_and_encrypted_flags_together_are_rejected() {
    let mut bytes = Signed::new(Json, [sk(1)])
        .unwrap()
        .encode("k", &1u8)
        .unwrap()
        .to_vec();
    bytes[4] |= Flags::ENCRYPTED.bits();
    assert_rejected(
        Envelope::parse(&bytes),
        "bad header: both signed and encrypted",
    );
    assert_rejected(
        Signed::new(Json, [sk(1)])
            .unwrap()
            .decode::<u8>("k", &bytes),
        "bad header",
    );
}

// ----- rotation ----------------------------------------------------------------------------

#[test]
fn signed_rotation_keeps_old_values_until_their_key_is_removed() {
    let s = Signed::new(Json, [sk(1)]).unwrap();
    let old = s.encode("k", &profile()).unwrap();
    s.rotate_key(sk(2)).unwrap();
    assert_eq!(s.key_ids(), [2, 1]);
    let new = s.encode("k", &profile()).unwrap();
    assert_eq!(Envelope::parse(&new).unwrap().key_id(), Some(2));
    assert_eq!(s.decode::<Profile>("k", &old).unwrap(), profile());
    assert_eq!(s.decode::<Profile>("k", &new).unwrap(), profile());
    assert!(s.remove_key(1).unwrap());
    assert!(!s.remove_key(1).unwrap());
    assert_rejected(s.decode::<Profile>("k", &old), "unknown key id 1");
    assert_eq!(s.decode::<Profile>("k", &new).unwrap(), profile());
}

#[test]
fn encrypted_rotation_keeps_old_values_until_their_key_is_removed() {
    let s = Encrypted::new(Postcard, [ek(1)]).unwrap();
    let old = s.encode("k", &profile()).unwrap();
    s.rotate_key(EncryptionKey::new(2, Aead::ChaCha20Poly1305, [3; 32]).unwrap())
        .unwrap();
    let new = s.encode("k", &profile()).unwrap();
    assert_eq!(Envelope::parse(&new).unwrap().key_id(), Some(2));
    assert_eq!(s.decode::<Profile>("k", &old).unwrap(), profile());
    assert!(s.remove_key(1).unwrap());
    assert_rejected(s.decode::<Profile>("k", &old), "unknown key id 1");
    assert_eq!(s.decode::<Profile>("k", &new).unwrap(), profile());
}

#[test]
fn rotation_through_a_clone_reaches_the_shared_serializer() {
    let s = Signed::new(Json, [sk(1)]).unwrap();
    let clone = s.clone();
    clone.rotate_key(sk(2)).unwrap();
    assert_eq!(
        Envelope::parse(&s.encode("k", &1u8).unwrap())
            .unwrap()
            .key_id(),
        Some(2)
    );
}

#[test]
fn rotation_while_other_threads_decode_never_fails_a_valid_value() {
    let s = std::sync::Arc::new(Signed::new(Postcard, [sk(1)]).unwrap());
    let bytes = s.encode("k", &profile()).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (s, bytes) = (s.clone(), bytes.clone());
            scope.spawn(move || {
                for _ in 0..2000 {
                    assert_eq!(s.decode::<Profile>("k", &bytes).unwrap(), profile());
                }
            });
        }
        for id in 2..200 {
            s.rotate_key(sk(id)).unwrap();
            if id > 2 {
                s.remove_key(id - 1).unwrap();
            }
        }
    });
    assert_eq!(s.key_ids(), [199, 1]);
}

#[test]
fn key_ring_misconfigurations_are_config_errors() {
    let config =
        |r: lexicache_core::Result<()>| assert_eq!(r.unwrap_err().kind(), ErrorKind::Config);
    config(Signed::new(Json, Vec::<SigningKey>::new()).map(|_| ()));
    config(Signed::new(Json, [sk(1), sk(1)]).map(|_| ()));
    config(Encrypted::new(Json, Vec::<EncryptionKey>::new()).map(|_| ()));
    let s = Signed::new(Json, [sk(1)]).unwrap();
    config(s.rotate_key(sk(1)));
    config(s.remove_key(1).map(|_| ()));
    config(SigningKey::new(1, [0u8; 31]).map(|_| ()));
    config(EncryptionKey::new(1, Aead::Aes256Gcm, [0u8; 31]).map(|_| ()));
    config(EncryptionKey::new(1, Aead::ChaCha20Poly1305, [0u8; 33]).map(|_| ()));
}

#[test]
fn keys_and_serializers_never_print_key_material() {
    let secret = [0xAB_u8; 32];
    let s = Signed::new(Json, [SigningKey::new(1, secret).unwrap()]).unwrap();
    let e = Encrypted::new(
        Json,
        [EncryptionKey::new(2, Aead::Aes256Gcm, secret).unwrap()],
    )
    .unwrap();
    for shown in [
        format!("{s:?}"),
        format!("{e:?}"),
        format!("{:?}", SigningKey::new(3, secret).unwrap()),
    ] {
        assert!(
            !shown.to_lowercase().contains("ab, ab") && !shown.to_lowercase().contains("abab"),
            "{shown}"
        );
        assert!(!shown.contains("171"), "{shown}");
    }
    assert!(format!("{e:?}").contains("key_ids: [2]"));
}

// ----- lying and oversized zstd frames -----------------------------------------------------

/// A zstd frame of `blocks` RLE blocks of 128 KiB of `a`, declaring `declared` as its content
/// size (or nothing). Built by hand so it can lie.
fn rle_frame(declared: Option<u64>, blocks: usize) -> Vec<u8> {
    const BLOCK: u32 = 128 << 10;
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    match declared {
        // FCS field of 8 bytes, not single-segment, then the window descriptor (1 MiB).
        Some(n) => {
            f.push(0b1100_0000);
            f.push(0x50);
            f.extend_from_slice(&n.to_le_bytes());
        }
        None => {
            f.push(0);
            f.push(0x50);
        }
    }
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (BLOCK << 3) | (1 << 1) | last;
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(b'a');
    }
    f
}

/// A `Compressing<Json>` envelope around a raw zstd payload.
fn compressed_envelope(frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0xC0, 0x4C, 1, 1, Flags::COMPRESSED.bits()];
    v.extend_from_slice(frame);
    v
}

#[test]
fn hand_built_frames_decode_when_honest() {
    let z = Compressing::new(Json).max_decompressed_size(1 << 20);
    // A JSON string of 128 KiB minus the quotes is not what RLE gives, so check the bytes.
    let honest = compressed_envelope(&rle_frame(Some(128 << 10), 1));
    let err = z.decode::<String>("k", &honest).unwrap_err();
    // 'a' * 131072 is not JSON: the frame decoded and the JSON decoder refused it.
    assert!(err.message().starts_with("decode failed"), "{err}");
}

#[test]
fn frame_declaring_more_than_the_cap_is_rejected_before_decoding() {
    let z = Compressing::new(Json);
    let bytes = compressed_envelope(&rle_frame(Some(1 << 40), 1));
    assert_rejected(
        z.decode::<String>("k", &bytes),
        "too large: decompresses past the limit of 67108864 bytes",
    );
    assert_eq!(
        Envelope::parse(&bytes).unwrap().declared_content_size(),
        Some(1 << 40)
    );
}

#[test]
fn frame_declaring_a_small_size_but_expanding_past_it_is_rejected() {
    let z = Compressing::new(Json);
    // One-shot path: declares 4 bytes, holds 128 KiB.
    let bytes = compressed_envelope(&rle_frame(Some(4), 1));
    assert_rejected(
        z.decode::<String>("k", &bytes),
        "too large: zstd frame expands past the size it declares",
    );
    // Streaming path: declares 2 MiB, holds 3 MiB.
    let bytes = compressed_envelope(&rle_frame(Some(2 << 20), 24));
    assert_rejected(
        z.decode::<String>("k", &bytes),
        "too large: zstd frame expands past the size it declares",
    );
}

#[test]
fn frame_without_a_declared_size_stops_at_the_cap() {
    let z = Compressing::new(Json).max_decompressed_size(1 << 20);
    let bytes = compressed_envelope(&rle_frame(None, 9));
    assert_rejected(
        z.decode::<String>("k", &bytes),
        "too large: decompresses past the limit of 1048576 bytes",
    );
}

#[test]
fn garbage_payload_is_a_bad_frame() {
    let z = Compressing::new(Json);
    let bytes = compressed_envelope(b"definitely not zstd");
    assert_rejected(z.decode::<String>("k", &bytes), "bad zstd frame");
    let mut cut = compressed_envelope(&zstd::bulk::compress(&[b'x'; 5000], 3).unwrap());
    cut.truncate(cut.len() - 2);
    z.decode::<String>("k", &cut).unwrap_err();
}
