//! [`Compressing`]: zstd compression above a size threshold, with a hard cap on what a stored
//! value may decompress to.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use lexicache_core::{Error, ErrorKind, Operation, Result, Serializer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode_plain, encode_plain, Format, Plain, Sealed};
use crate::envelope::{Flags, Header};
use crate::error::{corrupt, Reason};

/// Values whose encoded size is below this many bytes are stored uncompressed by default.
///
/// Chosen from the measurement in `docs/serializers.md`: a zstd round trip has a fixed cost of
/// a few microseconds, more than encoding a small value, and below about 1 KiB typical JSON
/// barely shrinks (a few dozen bytes saved), so small values would pay without gaining.
pub const DEFAULT_THRESHOLD: usize = 1024;

/// The zstd level used by default: level 3, zstd's own default, which compresses cached JSON
/// nearly as well as level 9 at a fraction of the cost.
pub const DEFAULT_LEVEL: i32 = 3;

/// The most a stored value may decompress to by default: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// Frames that declare at most this size are decompressed in one call into a buffer of exactly
/// the declared size; larger (or undeclared) ones are streamed, so a frame that lies about a
/// large size cannot make the decoder allocate it up front.
const ONE_SHOT_MAX: usize = 1 << 20;

/// The largest zstd window the streaming decoder accepts (16 MiB). The frames this crate writes
/// always declare their size and take the one-shot path; this bounds the decoder's own buffer
/// for frames from elsewhere.
const WINDOW_LOG_MAX: u32 = 24;

/// How much the streaming decoder reads at a time.
const STREAM_CHUNK: usize = 32 << 10;

thread_local! {
    /// A compression context per thread, reused: creating one costs more than compressing a
    /// small value. Tagged with its level.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// A decompression context per thread, reused for the one-shot path.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compresses the encoded value with [zstd](https://facebook.github.io/zstd/) when it is at
/// least [`threshold`](Self::threshold) bytes, and decompresses it into a hard output cap.
///
/// - Values under the threshold ([`DEFAULT_THRESHOLD`]) are stored as they are; so are values
///   that do not shrink. The [`Flags::COMPRESSED`] bit says which.
/// - Decompression never allocates more than the cap ([`DEFAULT_MAX_DECOMPRESSED`], 64 MiB): a
///   frame that declares a larger size is rejected before any allocation, one that expands
///   past its declared size or past the cap is an error, and frames without a declared size are
///   streamed into a buffer that stops at the cap. So a 1 KiB "zip bomb" costs at most the cap.
/// - Writing a value larger than the cap is an [`ErrorKind::ValueTooLarge`] error, so nothing
///   is stored that could never be read back.
/// - [`stats`](Self::stats) counts what was compressed and skipped.
///
/// It wraps a [`Format`] ([`Json`](crate::Json) or [`Postcard`](crate::Postcard)) and may be
/// wrapped by [`Signed`](crate::Signed) or [`Encrypted`](crate::Encrypted), which then
/// authenticate the value before it reaches the decompressor.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::{Compressing, Envelope, Flags, Json};
///
/// let zstd = Compressing::new(Json).threshold(64);
/// let big = vec!["the same words again"; 100];
/// let bytes = zstd.encode("k", &big).unwrap();
/// assert!(Envelope::parse(&bytes).unwrap().header().flags().contains(Flags::COMPRESSED));
/// assert_eq!(zstd.decode::<Vec<String>>("k", &bytes).unwrap().len(), 100);
/// assert_eq!(zstd.stats().compressed, 1);
///
/// let small = zstd.encode("k", &1u8).unwrap();
/// assert!(Envelope::parse(&small).unwrap().header().flags().is_empty());
/// assert_eq!(zstd.stats().skipped, 1);
/// ```
#[derive(Clone)]
pub struct Compressing<F> {
    inner: F,
    level: i32,
    threshold: usize,
    max_decompressed: usize,
    stats: Arc<Counters>,
    name: String,
}

impl<F: Format> Compressing<F> {
    /// Compresses `inner`'s output with the defaults: level [`DEFAULT_LEVEL`], threshold
    /// [`DEFAULT_THRESHOLD`], cap [`DEFAULT_MAX_DECOMPRESSED`].
    #[must_use]
    pub fn new(inner: F) -> Self {
        let name = format!("zstd+{}", inner.name());
        Self {
            inner,
            level: DEFAULT_LEVEL,
            threshold: DEFAULT_THRESHOLD,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            stats: Arc::default(),
            name,
        }
    }

    /// Sets the zstd level (1 to 22, or negative for faster levels).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when zstd does not support `level`.
    pub fn level(mut self, level: i32) -> Result<Self> {
        if !zstd::compression_level_range().contains(&level) {
            return Err(Error::new(ErrorKind::Config, "zstd").with_message(format!(
                "compression level {level} is outside zstd's range {:?}",
                zstd::compression_level_range()
            )));
        }
        self.level = level;
        Ok(self)
    }

    /// Compresses only values whose encoded size is at least `bytes`.
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The most a value may decompress to; larger values are errors on both write and read.
    #[must_use]
    pub fn max_decompressed_size(mut self, bytes: usize) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// The configured zstd level.
    #[must_use]
    pub fn compression_level(&self) -> i32 {
        self.level
    }

    /// The configured threshold in bytes.
    #[must_use]
    pub fn compression_threshold(&self) -> usize {
        self.threshold
    }

    /// The configured decompression cap in bytes.
    #[must_use]
    pub fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }

    /// What this serializer (and its clones, which share the counters) has compressed so far.
    #[must_use]
    pub fn stats(&self) -> CompressionStats {
        self.stats.snapshot()
    }
}

impl<F: fmt::Debug> fmt::Debug for Compressing<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressing")
            .field("inner", &self.inner)
            .field("level", &self.level)
            .field("threshold", &self.threshold)
            .field("max_decompressed", &self.max_decompressed)
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl<F: Format> Sealed for Compressing<F> {}

impl<F: Format> Plain for Compressing<F> {
    fn encode_body<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        out: &mut Vec<u8>,
        header: &mut Header,
    ) -> Result<()> {
        let start = out.len();
        self.inner.encode_body(key, value, out, header)?;
        let len = out.len() - start;
        if len > self.max_decompressed {
            return Err(Error::new(ErrorKind::ValueTooLarge, "zstd")
                .with_operation(Operation::Serialize)
                .with_message(format!(
                    "encoded value of {len} bytes exceeds the decompression limit of {} bytes",
                    self.max_decompressed
                )));
        }
        if len < self.threshold {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            self.stats
                .skipped_bytes
                .fetch_add(len as u64, Ordering::Relaxed);
            return Ok(());
        }
        let compressed = compress(&out[start..], self.level)?;
        if compressed.len() >= len {
            self.stats.not_smaller.fetch_add(1, Ordering::Relaxed);
            self.stats
                .skipped_bytes
                .fetch_add(len as u64, Ordering::Relaxed);
            return Ok(());
        }
        self.stats.compressed.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        self.stats
            .bytes_out
            .fetch_add(compressed.len() as u64, Ordering::Relaxed);
        out.truncate(start);
        out.extend_from_slice(&compressed);
        *header = header.with_flags(header.flags() | Flags::COMPRESSED);
        Ok(())
    }

    fn decode_body<T: DeserializeOwned>(
        &self,
        key: &str,
        header: Header,
        body: &[u8],
    ) -> Result<T> {
        if !header.flags().contains(Flags::COMPRESSED) {
            return self.inner.decode_body(key, header, body);
        }
        let plain = decompress(body, self.max_decompressed)?;
        let header = header.with_flags(header.flags().without(Flags::COMPRESSED));
        self.inner.decode_body(key, header, &plain)
    }
}

impl<F: Format> Serializer for Compressing<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        encode_plain(self, key, value)
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        decode_plain(self, "zstd", key, bytes)
    }
}

/// A snapshot of what a [`Compressing`] serializer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompressionStats {
    /// Values stored compressed.
    pub compressed: u64,
    /// Values stored as they were because they were under the threshold.
    pub skipped: u64,
    /// Values at or above the threshold stored as they were because zstd did not shrink them.
    pub not_smaller: u64,
    /// Encoded bytes of the compressed values, before compression.
    pub bytes_in: u64,
    /// Bytes of the compressed values, after compression.
    pub bytes_out: u64,
    /// Encoded bytes of the values stored uncompressed (skipped or not smaller).
    pub skipped_bytes: u64,
}

impl CompressionStats {
    /// Compressed size over original size for the values that were compressed (0.25 means a
    /// quarter of the size); `None` before any value was compressed.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        (self.bytes_in > 0).then(|| self.bytes_out as f64 / self.bytes_in as f64)
    }
}

#[derive(Debug, Default)]
struct Counters {
    compressed: AtomicU64,
    skipped: AtomicU64,
    not_smaller: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    skipped_bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CompressionStats {
        CompressionStats {
            compressed: self.compressed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            not_smaller: self.not_smaller.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            skipped_bytes: self.skipped_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Compresses `data` into one frame that declares its size, reusing this thread's context.
fn compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    let run = |slot: &mut Option<(i32, zstd::bulk::Compressor<'static>)>| {
        let (mut current, mut ctx) = match slot.take() {
            Some(kept) => kept,
            None => (level, zstd::bulk::Compressor::new(level)?),
        };
        if current != level {
            ctx.set_compression_level(level)?;
            current = level;
        }
        let compressed = ctx.compress(data);
        *slot = Some((current, ctx));
        compressed
    };
    COMPRESSOR
        .with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => run(&mut slot),
            // Only if compression re-entered itself on this thread: use a fresh context.
            Err(_) => run(&mut None),
        })
        .map_err(|e| {
            Error::new(ErrorKind::Serialization, "zstd")
                .with_operation(Operation::Serialize)
                .with_message(format!("compression failed: {e}"))
        })
}

/// Decompresses the zstd payload `frame` into at most `cap` bytes.
///
/// Exposed for the fuzz targets through [`Compressing::decode`]; never allocates more than
/// `cap` (plus the decoder's bounded window) whatever the frame says.
pub(crate) fn decompress(frame: &[u8], cap: usize) -> Result<Vec<u8>> {
    let op = Operation::Deserialize;
    let declared = zstd::zstd_safe::get_frame_content_size(frame)
        .map_err(|_| corrupt("zstd", op, Reason::BadFrame))?;
    match declared {
        Some(n) if n > cap as u64 => Err(corrupt("zstd", op, Reason::TooLarge { limit: cap })),
        // `n <= cap`, so it fits in usize.
        Some(n) if n as usize <= ONE_SHOT_MAX => decompress_one_shot(frame, n as usize),
        Some(n) => decompress_streaming(frame, n as usize, true),
        None => decompress_streaming(frame, cap, false),
    }
}

/// Decompresses a frame that declares `size` bytes into a buffer of exactly that size.
fn decompress_one_shot(frame: &[u8], size: usize) -> Result<Vec<u8>> {
    let run = |slot: &mut Option<zstd::bulk::Decompressor<'static>>| {
        let mut ctx = match slot.take() {
            Some(kept) => kept,
            None => zstd::bulk::Decompressor::new()?,
        };
        let plain = ctx.decompress(frame, size);
        *slot = Some(ctx);
        plain
    };
    DECOMPRESSOR
        .with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => run(&mut slot),
            Err(_) => run(&mut None),
        })
        .map_err(|e| frame_error(&e))
}

/// Streams a frame into a buffer that may grow to `limit` bytes and no further.
/// `declared` says whether `limit` is the frame's own declared size (a lie is reported so).
fn decompress_streaming(frame: &[u8], limit: usize, declared: bool) -> Result<Vec<u8>> {
    let op = Operation::Deserialize;
    let bad_frame = |_| corrupt("zstd", op, Reason::BadFrame);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(bad_frame)?;
    decoder.window_log_max(WINDOW_LOG_MAX).map_err(bad_frame)?;
    let mut out = Vec::with_capacity(limit.min(STREAM_CHUNK));
    let mut chunk = vec![0u8; STREAM_CHUNK];
    loop {
        let n = decoder.read(&mut chunk).map_err(bad_frame)?;
        if n == 0 {
            return Ok(out);
        }
        if n > limit - out.len() {
            let reason = if declared {
                Reason::LyingFrame
            } else {
                Reason::TooLarge { limit }
            };
            return Err(corrupt("zstd", op, reason));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Classifies a one-shot decompression failure: a frame that needs more room than it declared
/// lies about its size; anything else is a corrupt frame.
fn frame_error(e: &std::io::Error) -> Error {
    let reason = if e.to_string().contains("too small") {
        Reason::LyingFrame
    } else {
        Reason::BadFrame
    };
    corrupt("zstd", Operation::Deserialize, reason)
}
