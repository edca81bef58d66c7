//! The envelope: the small versioned header every stored value starts with, and
//! [`Envelope::parse`], which reads it (and the layout behind it) without keys.
//!
//! ```text
//! offset  size  field
//! 0       2     magic 0xC0 0x4C ("\xC0L"; 0xC0 never occurs in UTF-8, so no JSON text starts so)
//! 2       1     format version (1)
//! 3       1     codec id (1 = JSON, 2 = postcard)
//! 4       1     flags: bit 0 compressed (zstd), bit 1 signed, bit 2 encrypted; others zero
//! 5       ...   the body, laid out by the flags:
//!               plain:      payload
//!               signed:     key id (u32 BE) | payload | HMAC-SHA256 tag (32)
//!               encrypted:  key id (u32 BE) | nonce (12) | ciphertext of payload | AEAD tag (16)
//!               where payload is a zstd frame when compressed, else the codec's bytes.
//! ```
//!
//! The whole header is covered by the MAC (signed) or the associated data (encrypted), so
//! flipping a flag to skip verification or decryption fails the check.

use std::fmt;

use crate::error::{corrupt, Reason};
use lexicache_core::{Operation, Result};

/// The two bytes every envelope starts with.
pub const MAGIC: [u8; 2] = [0xC0, 0x4C];

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// The length of the header in bytes: magic, version, codec id and flags.
pub const HEADER_LEN: usize = 5;

/// The length of a key id in signed and encrypted bodies.
pub const KEY_ID_LEN: usize = 4;

/// The length of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;

/// The length of an AEAD nonce.
pub const NONCE_LEN: usize = 12;

/// The length of an AEAD tag (AES-256-GCM and ChaCha20-Poly1305 alike).
pub const AEAD_TAG_LEN: usize = 16;

/// Which format encodes the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON via `serde_json` ([`Json`](crate::Json)).
    Json,
    /// postcard ([`Postcard`](crate::Postcard)).
    Postcard,
}

impl Codec {
    /// The id stored in the header.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::Json => 1,
            Self::Postcard => 2,
        }
    }

    /// The codec with header id `id`, if this crate knows it.
    #[must_use]
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Json),
            2 => Some(Self::Postcard),
            _ => None,
        }
    }

    /// A short, stable name (`"json"`, `"postcard"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Postcard => "postcard",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The layer flags of a header.
///
/// ```
/// use lexicache_serde::Flags;
///
/// let f = Flags::COMPRESSED | Flags::SIGNED;
/// assert!(f.contains(Flags::SIGNED));
/// assert!(!f.contains(Flags::ENCRYPTED));
/// assert_eq!(f.to_string(), "compressed|signed");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No layer: the codec's bytes as they are.
    pub const NONE: Self = Self(0);
    /// The payload is a zstd frame.
    pub const COMPRESSED: Self = Self(1);
    /// The body carries a key id and an HMAC-SHA256 tag.
    pub const SIGNED: Self = Self(1 << 1);
    /// The body carries a key id, a nonce and an AEAD ciphertext.
    pub const ENCRYPTED: Self = Self(1 << 2);
    /// Every bit this version defines.
    const KNOWN: u8 = 0b111;

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The flags of `bits`, or `None` if a bit this version does not define is set.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Option<Self> {
        if bits & !Self::KNOWN == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// These flags without those of `other`.
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in [
            (Self::COMPRESSED, "compressed"),
            (Self::SIGNED, "signed"),
            (Self::ENCRYPTED, "encrypted"),
        ] {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({self})")
    }
}

/// The fixed five-byte header of every stored value.
///
/// ```
/// use lexicache_serde::{Codec, Flags, Header, Json};
/// use lexicache_core::Serializer;
///
/// let bytes = Json.encode("k", &[1, 2, 3]).unwrap();
/// let (header, body) = Header::split(&bytes).unwrap();
/// assert_eq!(header.codec(), Codec::Json);
/// assert_eq!(header.flags(), Flags::NONE);
/// assert_eq!(body, b"[1,2,3]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    codec: Codec,
    flags: Flags,
}

impl Header {
    /// A header of the current format version.
    #[must_use]
    pub const fn new(codec: Codec, flags: Flags) -> Self {
        Self { codec, flags }
    }

    /// The codec of the payload.
    #[must_use]
    pub const fn codec(&self) -> Codec {
        self.codec
    }

    /// The layer flags.
    #[must_use]
    pub const fn flags(&self) -> Flags {
        self.flags
    }

    /// The format version (always [`FORMAT_VERSION`] for a parsed header).
    #[must_use]
    pub const fn version(&self) -> u8 {
        FORMAT_VERSION
    }

    /// The header's bytes.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; HEADER_LEN] {
        [
            MAGIC[0],
            MAGIC[1],
            FORMAT_VERSION,
            self.codec.id(),
            self.flags.bits(),
        ]
    }

    pub(crate) fn with_flags(self, flags: Flags) -> Self {
        Self { flags, ..self }
    }

    /// Parses the header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization) when `bytes` is
    /// shorter than a header, does not start with [`MAGIC`], has another format version, an
    /// unknown codec id or an unknown flag.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::split(bytes).map(|(h, _)| h)
    }

    /// Parses the header and returns it with the bytes after it.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn split(bytes: &[u8]) -> Result<(Self, &[u8])> {
        Self::split_for(bytes, "envelope", Operation::Deserialize)
    }

    pub(crate) fn split_for<'a>(
        bytes: &'a [u8],
        layer: &'static str,
        op: Operation,
    ) -> Result<(Self, &'a [u8])> {
        let Some((head, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] != MAGIC {
                return Err(corrupt(layer, op, Reason::BadMagic));
            }
            return Err(corrupt(layer, op, Reason::Truncated));
        };
        if head[..2] != MAGIC {
            return Err(corrupt(layer, op, Reason::BadMagic));
        }
        if head[2] != FORMAT_VERSION {
            return Err(corrupt(layer, op, Reason::BadVersion(head[2])));
        }
        let codec = Codec::from_id(head[3])
            .ok_or_else(|| corrupt(layer, op, Reason::UnknownCodec(head[3])))?;
        let flags = Flags::from_bits(head[4])
            .ok_or_else(|| corrupt(layer, op, Reason::UnknownFlags(head[4])))?;
        Ok((Self { codec, flags }, body))
    }
}

/// What can be told about a stored value without its keys: header, key id, sizes.
///
/// Tools (the CLI's `inspect`, logs) use it to describe any value; it never decrypts, verifies
/// or decompresses.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::{Codec, Envelope, Flags, Signed, SigningKey, Postcard};
///
/// let signed = Signed::new(Postcard, [SigningKey::new(7, [1u8; 32]).unwrap()]).unwrap();
/// let bytes = signed.encode("user:1", "hello").unwrap();
/// let env = Envelope::parse(&bytes).unwrap();
/// assert_eq!(env.header().codec(), Codec::Postcard);
/// assert_eq!(env.header().flags(), Flags::SIGNED);
/// assert_eq!(env.key_id(), Some(7));
/// assert_eq!(env.len(), bytes.len());
/// assert_eq!(env.payload_len(), 6); // postcard: a length byte and five bytes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    header: Header,
    len: usize,
    key_id: Option<u32>,
    payload_len: usize,
    content_size: Option<u64>,
}

impl Envelope {
    /// Parses the header of `bytes` and checks that the body is long enough for its layout.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization) as
    /// [`Header::parse`], or when the body is shorter than its flags require (truncated) or
    /// says both signed and encrypted.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let op = Operation::Deserialize;
        let (header, body) = Header::split(bytes)?;
        let flags = header.flags();
        let (key_id, payload) = if flags.contains(Flags::SIGNED | Flags::ENCRYPTED) {
            return Err(corrupt("envelope", op, Reason::BadLayers));
        } else if flags.contains(Flags::SIGNED) {
            let (id, rest) = split_key_id(body, "envelope", op)?;
            if rest.len() < MAC_LEN {
                return Err(corrupt("envelope", op, Reason::Truncated));
            }
            (Some(id), &rest[..rest.len() - MAC_LEN])
        } else if flags.contains(Flags::ENCRYPTED) {
            let (id, rest) = split_key_id(body, "envelope", op)?;
            if rest.len() < NONCE_LEN + AEAD_TAG_LEN {
                return Err(corrupt("envelope", op, Reason::Truncated));
            }
            (Some(id), &rest[NONCE_LEN..rest.len() - AEAD_TAG_LEN])
        } else {
            (None, body)
        };
        // The size a compressed payload declares is readable only when it is not encrypted.
        #[cfg(feature = "compression")]
        let content_size = if flags.contains(Flags::COMPRESSED) && !flags.contains(Flags::ENCRYPTED)
        {
            zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
        } else {
            None
        };
        // Without zstd the declared size cannot be read; the envelope still parses.
        #[cfg(not(feature = "compression"))]
        let content_size = None;
        Ok(Self {
            header,
            len: bytes.len(),
            key_id,
            payload_len: payload.len(),
            content_size,
        })
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> Header {
        self.header
    }

    /// The whole stored value's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a parsed envelope holds at least its header.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The id of the key that signed or encrypted the value, if it is signed or encrypted.
    #[must_use]
    pub fn key_id(&self) -> Option<u32> {
        self.key_id
    }

    /// The length of the payload: the codec's bytes, or the zstd frame when compressed (for an
    /// encrypted value, the ciphertext without nonce and tag).
    #[must_use]
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The decompressed size a compressed, unencrypted payload declares in its zstd frame
    /// header, if it declares one. Unverified: the decoder enforces its own cap.
    #[must_use]
    pub fn declared_content_size(&self) -> Option<u64> {
        self.content_size
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v{} {} [{}] {} bytes (payload {})",
            self.header.version(),
            self.header.codec(),
            self.header.flags(),
            self.len,
            self.payload_len
        )?;
        if let Some(id) = self.key_id {
            write!(f, ", key id {id}")?;
        }
        if let Some(size) = self.content_size {
            write!(f, ", declares {size} bytes decompressed")?;
        }
        Ok(())
    }
}

/// Splits the big-endian key id off the front of a signed or encrypted body.
pub(crate) fn split_key_id<'a>(
    body: &'a [u8],
    layer: &'static str,
    op: Operation,
) -> Result<(u32, &'a [u8])> {
    match body.split_first_chunk::<KEY_ID_LEN>() {
        Some((id, rest)) => Ok((u32::from_be_bytes(*id), rest)),
        None => Err(corrupt(layer, op, Reason::Truncated)),
    }
}
