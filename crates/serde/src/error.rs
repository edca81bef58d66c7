//! How decoding failures become typed errors, and why their messages carry no value bytes.
//!
//! Every failure is [`ErrorKind::Serialization`] with a message that names what went wrong
//! (bad magic, codec mismatch, bad MAC, too large ...). The message, the error's `Display` and
//! its `Debug` never contain the stored bytes: a tampered value may be attacker-chosen, and a
//! genuine one may be a secret. That is also why decoder errors of `serde_json` (whose
//! messages quote the offending input) are reduced to their category and position here instead
//! of being attached as the source.

use std::fmt;

use lexicache_core::{Error, ErrorKind, Operation};

use crate::envelope::Codec;

/// What is wrong with a stored value (or a value being encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    BadMagic,
    BadVersion(u8),
    UnknownCodec(u8),
    UnknownFlags(u8),
    BadLayers,
    Truncated,
    CodecMismatch { stored: Codec, expected: Codec },
    LayerMismatch(&'static str),
    UnknownKeyId(u32),
    BadMac,
    DecryptFailed,
    TooLarge { limit: usize },
    BadFrame,
    LyingFrame,
    Decode(String),
    Encode(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("bad magic: not a lexicache envelope"),
            Self::BadVersion(v) => write!(f, "bad version: unsupported envelope format version {v}"),
            Self::UnknownCodec(id) => write!(f, "bad header: unknown codec id {id}"),
            Self::UnknownFlags(bits) => write!(f, "bad header: unknown flags {bits:#04x}"),
            Self::BadLayers => f.write_str("bad header: both signed and encrypted"),
            Self::Truncated => f.write_str("truncated: value shorter than its layout"),
            Self::CodecMismatch { stored, expected } => {
                write!(f, "codec mismatch: stored as {stored}, read as {expected}")
            }
            Self::LayerMismatch(what) => write!(f, "codec mismatch: {what}"),
            Self::UnknownKeyId(id) => write!(f, "unknown key id {id}"),
            Self::BadMac => f.write_str("bad MAC: value was tampered with or moved to another key"),
            Self::DecryptFailed => f.write_str(
                "decrypt failed: value was tampered with, moved to another key or sealed with another key",
            ),
            Self::TooLarge { limit } => {
                write!(f, "too large: decompresses past the limit of {limit} bytes")
            }
            Self::LyingFrame => f.write_str(
                "too large: zstd frame expands past the size it declares",
            ),
            Self::BadFrame => f.write_str("bad zstd frame: payload does not decompress"),
            Self::Decode(what) | Self::Encode(what) => f.write_str(what),
        }
    }
}

/// A [`ErrorKind::Serialization`] error from `layer` for `reason`.
pub(crate) fn corrupt(layer: &'static str, op: Operation, reason: Reason) -> Error {
    Error::new(ErrorKind::Serialization, layer)
        .with_operation(op)
        .with_message(reason.to_string())
}

/// Describes a `serde_json` error by category and position only: its own message may quote
/// the input.
pub(crate) fn json_error(e: &serde_json::Error, op: Operation, type_name: &str) -> Error {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "an I/O error",
        Category::Syntax => "a syntax error",
        Category::Data => "a value of the wrong shape",
        Category::Eof => "unexpected end of input",
    };
    let reason = match op {
        Operation::Serialize => Reason::Encode(format!(
            "encode failed: {type_name} cannot be written as JSON ({what})"
        )),
        _ => Reason::Decode(format!(
            "decode failed: not valid JSON for {type_name}: {what} at line {} column {}",
            e.line(),
            e.column()
        )),
    };
    corrupt("json", op, reason)
}

/// Describes a postcard error; its messages are fixed strings that never quote the input.
pub(crate) fn postcard_error(e: postcard::Error, op: Operation, type_name: &str) -> Error {
    let reason = match op {
        Operation::Serialize => Reason::Encode(format!(
            "encode failed: {type_name} cannot be written as postcard ({e})"
        )),
        _ => Reason::Decode(format!(
            "decode failed: not valid postcard for {type_name} ({e})"
        )),
    };
    corrupt("postcard", op, reason)
}
