//! Decompression bombs cost at most the cap: measured with a counting global allocator, so this
//! binary holds one test (others running beside it would be counted too).

use std::io::Write;

use lexicache_core::{ErrorKind, Serializer};
use lexicache_serde::{Compressing, Envelope, Flags, Json, Postcard, DEFAULT_MAX_DECOMPRESSED};
use peak_alloc::PeakAlloc;

/// Counts the bytes allocated through Rust's allocator and their peak. (It counts a `realloc`
/// as a new block plus the old one, the worst case; zstd's own C allocations, its bounded
/// window, are not counted.)
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The most a bomb may make the decoder allocate above what was live before: the 64 MiB cap,
/// plus the buffer's last growth step and the decoder's bounded window.
const PEAK_LIMIT: usize = 128 << 20;

/// A frame of RLE blocks: the densest zstd can be (4 bytes per 128 KiB), without a declared
/// content size.
fn rle_bomb(expanded: usize) -> Vec<u8> {
    const BLOCK: usize = 128 << 10;
    let blocks = expanded.div_ceil(BLOCK);
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x50];
    for i in 0..blocks {
        let header = ((BLOCK as u32) << 3) | (1 << 1) | u32::from(i + 1 == blocks);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// Zeros streamed through zstd's own encoder, which declares no size.
fn streamed_zeros(expanded: usize) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("encoder");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..expanded / zeros.len() {
        enc.write_all(&zeros).expect("compress");
    }
    enc.finish().expect("finish")
}

fn envelope(codec: u8, frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0xC0, 0x4C, 1, codec, Flags::COMPRESSED.bits()];
    v.extend_from_slice(frame);
    v
}

/// Runs `f` and returns the peak of live bytes above what was live before.
fn peak_while<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let out = f();
    (out, ALLOCATOR.peak_usage() - before)
}

#[test]
fn decompression_bombs_are_rejected_within_bounded_memory() {
    // 1 GiB + 1 block from a 32 KiB frame (zstd's densest: a 1 KiB frame cannot hold more than
    // 32 MiB, since every 128 KiB block costs at least 4 bytes).
    let gib_bomb = envelope(2, &rle_bomb((1 << 30) + (128 << 10)));
    assert!(gib_bomb.len() < 40 << 10, "{}", gib_bomb.len());
    assert_eq!(
        Envelope::parse(&gib_bomb).unwrap().declared_content_size(),
        None
    );

    let postcard = Compressing::new(Postcard);
    let (result, peak) = peak_while(|| postcard.decode::<Vec<u8>>("k", &gib_bomb));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    assert!(err.message().starts_with("too large"), "{err}");
    assert!(peak < PEAK_LIMIT, "peak {} MiB", peak >> 20);
    assert!(
        peak >= DEFAULT_MAX_DECOMPRESSED / 2,
        "the decoder did decode up to the cap"
    );

    // What zstd's streaming encoder makes of 96 MiB of zeros: a few KiB, no declared size.
    let zeros = envelope(1, &streamed_zeros(96 << 20));
    assert!(zeros.len() < 16 << 10, "{}", zeros.len());
    let json = Compressing::new(Json);
    let (result, peak) = peak_while(|| json.decode::<String>("k", &zeros));
    assert!(result.unwrap_err().message().starts_with("too large"));
    assert!(peak < PEAK_LIMIT, "peak {} MiB", peak >> 20);

    // A frame that declares 1 TiB is refused before anything is allocated for it.
    let mut liar = vec![0x28, 0xB5, 0x2F, 0xFD, 0b1100_0000, 0x50];
    liar.extend_from_slice(&(1u64 << 40).to_le_bytes());
    liar.extend_from_slice(&rle_bomb(128 << 10)[6..]);
    let liar = envelope(1, &liar);
    let (result, peak) = peak_while(|| json.decode::<String>("k", &liar));
    assert!(result.unwrap_err().message().starts_with("too large"));
    assert!(peak < 1 << 20, "peak {} bytes", peak);

    // A frame that declares 1 MiB (the one-shot path) but holds 1 GiB stops at 1 MiB.
    let mut small_liar = vec![0x28, 0xB5, 0x2F, 0xFD, 0b1100_0000, 0x50];
    small_liar.extend_from_slice(&(1u64 << 20).to_le_bytes());
    small_liar.extend_from_slice(&rle_bomb(1 << 30)[6..]);
    let small_liar = envelope(1, &small_liar);
    let (result, peak) = peak_while(|| json.decode::<String>("k", &small_liar));
    assert!(result.unwrap_err().message().starts_with("too large"));
    assert!(peak < 4 << 20, "peak {} bytes", peak);
}
