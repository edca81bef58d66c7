//! The base formats [`Json`] and [`Postcard`], and the [`Plain`] / [`Format`] traits that say
//! which serializers may be stacked inside which.

use bytes::Bytes;
use lexicache_core::{Operation, Result, Serializer};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::{Codec, Flags, Header, HEADER_LEN};
use crate::error::{corrupt, json_error, postcard_error, Reason};

mod sealed {
    /// Keeps [`Plain`](super::Plain) and [`Format`](super::Format) to this crate's types, whose
    /// flag handling the envelope depends on.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// A serializer stack that does not authenticate: a [`Format`], optionally inside
/// [`Compressing`](crate::Compressing). [`Signed`](crate::Signed) and
/// [`Encrypted`](crate::Encrypted) wrap one of these, and nothing wraps them, so the layer
/// order (verify or decrypt, then decompress, then decode) is fixed by the types: a
/// `Compressing<Signed<_>>`, which would decompress unauthenticated bytes, does not compile.
///
/// The trait is sealed: its methods write and read bodies behind a header that the outermost
/// layer owns.
pub trait Plain: Serializer + sealed::Sealed {
    /// Appends the body of `value` to `out` and records its codec and flags in `header`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization) when the value
    /// cannot be encoded.
    fn encode_body<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        out: &mut Vec<u8>,
        header: &mut Header,
    ) -> Result<()>;

    /// Decodes `body`, whose header (with the flags of outer layers already removed) is
    /// `header`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialization`](lexicache_core::ErrorKind::Serialization) when the codec
    /// or flags are not this stack's, or the body does not decode.
    fn decode_body<T: DeserializeOwned>(&self, key: &str, header: Header, body: &[u8])
        -> Result<T>;
}

/// A base format: [`Json`] or [`Postcard`]. [`Compressing`](crate::Compressing) wraps one.
pub trait Format: Plain {
    /// The codec id this format writes.
    const CODEC: Codec;
}

/// Encodes with a [`Plain`] stack behind a fresh header.
pub(crate) fn encode_plain<S: Plain, T: Serialize + ?Sized>(
    stack: &S,
    key: &str,
    value: &T,
) -> Result<Bytes> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; HEADER_LEN]);
    let mut header = Header::new(Codec::Json, Flags::NONE);
    stack.encode_body(key, value, &mut out, &mut header)?;
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(Bytes::from(out))
}

/// Decodes with a [`Plain`] stack after reading the header.
pub(crate) fn decode_plain<S: Plain, T: DeserializeOwned>(
    stack: &S,
    layer: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    let (header, body) = Header::split_for(bytes, layer, Operation::Deserialize)?;
    stack.decode_body(key, header, body)
}

/// Checks that a base format is reading its own codec with every layer flag consumed.
fn check_base(layer: &'static str, expected: Codec, header: Header) -> Result<()> {
    let op = Operation::Deserialize;
    let flags = header.flags();
    if flags.contains(Flags::ENCRYPTED) {
        return Err(corrupt(
            layer,
            op,
            Reason::LayerMismatch("value is encrypted; this serializer does not decrypt"),
        ));
    }
    if flags.contains(Flags::SIGNED) {
        return Err(corrupt(
            layer,
            op,
            Reason::LayerMismatch("value is signed; this serializer does not verify signatures"),
        ));
    }
    if flags.contains(Flags::COMPRESSED) {
        return Err(corrupt(
            layer,
            op,
            Reason::LayerMismatch("value is compressed; this serializer does not decompress"),
        ));
    }
    if header.codec() != expected {
        return Err(corrupt(
            layer,
            op,
            Reason::CodecMismatch {
                stored: header.codec(),
                expected,
            },
        ));
    }
    Ok(())
}

/// JSON via `serde_json`, behind the envelope header.
///
/// `CacheService`'s default serializer (unit-like, `Copy`, `Default`); every value starts with
/// the [header](crate::Header), so a value written by another codec is a clear error. Encoding
/// writes the header and then `serde_json::to_writer` into one buffer; decoding checks the
/// header and decodes the rest of the slice in place.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::{Json, Postcard};
///
/// let bytes = Json.encode("k", &vec![1, 2, 3]).unwrap();
/// assert_eq!(&bytes[5..], b"[1,2,3]");
/// assert_eq!(Json.decode::<Vec<u32>>("k", &bytes).unwrap(), [1, 2, 3]);
///
/// let err = Postcard.decode::<Vec<u32>>("k", &bytes).unwrap_err();
/// assert!(err.message().starts_with("codec mismatch"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl sealed::Sealed for Json {}

impl Plain for Json {
    fn encode_body<T: Serialize + ?Sized>(
        &self,
        _key: &str,
        value: &T,
        out: &mut Vec<u8>,
        header: &mut Header,
    ) -> Result<()> {
        *header = Header::new(Codec::Json, header.flags());
        serde_json::to_writer(&mut *out, value)
            .map_err(|e| json_error(&e, Operation::Serialize, std::any::type_name::<T>()))
    }

    fn decode_body<T: DeserializeOwned>(
        &self,
        _key: &str,
        header: Header,
        body: &[u8],
    ) -> Result<T> {
        check_base("json", Codec::Json, header)?;
        serde_json::from_slice(body)
            .map_err(|e| json_error(&e, Operation::Deserialize, std::any::type_name::<T>()))
    }
}

impl Format for Json {
    const CODEC: Codec = Codec::Json;
}

impl Serializer for Json {
    fn name(&self) -> &str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        encode_plain(self, key, value)
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        decode_plain(self, "json", key, bytes)
    }
}

/// [postcard](https://docs.rs/postcard): compact and fast, for values only Rust reads.
///
/// About three times faster than JSON for a 1 KiB struct (see `docs/serializers.md`), and
/// smaller. Not self-describing: a field added to a struct makes old values fail to decode
/// (a miss through `CacheService`), so version your types or your keys.
///
/// ```
/// use lexicache_core::Serializer;
/// use lexicache_serde::Postcard;
///
/// let bytes = Postcard.encode("k", &(7u8, "seven")).unwrap();
/// assert_eq!(Postcard.decode::<(u8, String)>("k", &bytes).unwrap(), (7, "seven".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

impl sealed::Sealed for Postcard {}

impl Plain for Postcard {
    fn encode_body<T: Serialize + ?Sized>(
        &self,
        _key: &str,
        value: &T,
        out: &mut Vec<u8>,
        header: &mut Header,
    ) -> Result<()> {
        *header = Header::new(Codec::Postcard, header.flags());
        // `to_extend` takes the buffer by value; on failure it is dropped with the error.
        let buf = std::mem::take(out);
        *out = postcard::to_extend(value, buf)
            .map_err(|e| postcard_error(e, Operation::Serialize, std::any::type_name::<T>()))?;
        Ok(())
    }

    fn decode_body<T: DeserializeOwned>(
        &self,
        _key: &str,
        header: Header,
        body: &[u8],
    ) -> Result<T> {
        check_base("postcard", Codec::Postcard, header)?;
        // Trailing bytes are an error too: a value is exactly one postcard message.
        match postcard::take_from_bytes(body) {
            Ok((value, [])) => Ok(value),
            Ok(_) => Err(corrupt(
                "postcard",
                Operation::Deserialize,
                Reason::Decode(format!(
                    "decode failed: trailing bytes after a postcard {}",
                    std::any::type_name::<T>()
                )),
            )),
            Err(e) => Err(postcard_error(
                e,
                Operation::Deserialize,
                std::any::type_name::<T>(),
            )),
        }
    }
}

impl Format for Postcard {
    const CODEC: Codec = Codec::Postcard;
}

impl Serializer for Postcard {
    fn name(&self) -> &str {
        "postcard"
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        encode_plain(self, key, value)
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        decode_plain(self, "postcard", key, bytes)
    }
}

#[cfg(feature = "compression")]
pub(crate) use sealed::Sealed;
