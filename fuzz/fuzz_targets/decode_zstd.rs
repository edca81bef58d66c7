//! Any bytes through `Compressing`: lying, truncated or hostile zstd frames are errors within
//! the cap, never a panic or an allocation past it. Inputs are also wrapped in a valid
//! compressed header so the decompressor sees them without the fuzzer guessing the magic, and
//! compressed for real and then corrupted, since zstd's C code carries no coverage feedback
//! for the fuzzer to find valid frames by itself.
#![no_main]

use lexicache_core::Serializer;
use lexicache_serde::{Compressing, Flags, Json, Postcard};
use libfuzzer_sys::fuzz_target;

/// A small cap keeps each run fast; the logic is the same as the 64 MiB default's.
const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let json = Compressing::new(Json).max_decompressed_size(CAP);
    let postcard = Compressing::new(Postcard).max_decompressed_size(CAP);
    let _ = json.decode::<serde_json::Value>("fuzz", data);
    let _ = postcard.decode::<Vec<u8>>("fuzz", data);

    // A real frame of the input, with the byte at a position the input picks xored.
    let mut corrupted = zstd::bulk::compress(data, 1).expect("compresses");
    if let [pos, mask, ..] = data {
        let at = usize::from(*pos) % corrupted.len();
        corrupted[at] ^= mask;
    }

    for (codec, payload) in [
        (1u8, data),
        (2, data),
        (1, &corrupted[..]),
        (2, &corrupted[..]),
    ] {
        let mut framed = vec![0xC0, 0x4C, 1, codec, Flags::COMPRESSED.bits()];
        framed.extend_from_slice(payload);
        if let Ok(v) = json.decode::<serde_json::Value>("fuzz", &framed) {
            assert!(serde_json::to_vec(&v).map_or(0, |b| b.len()) <= CAP * 2);
        }
        if let Ok(v) = postcard.decode::<Vec<u8>>("fuzz", &framed) {
            assert!(v.len() <= CAP);
        }
    }
});
