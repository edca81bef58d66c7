//! The on-disk format of persisted indexes.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"LXVIDX\r\n" (the CR LF catches files mangled by text-mode copies)
//! 8       4     format version, u32 little-endian (currently 1)
//! 12      1     index kind (1 = flat, 2 = hnsw)
//! 13      8     payload length N, u64 little-endian
//! 21      N     payload: a postcard-encoded `Snapshot`
//! 21+N    32    SHA-256 of the payload
//! ```
//!
//! Everything is checked on load before the payload is decoded: a short, damaged or foreign
//! file is [`Error::Corrupt`], a newer format is [`Error::UnsupportedVersion`].

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result, ScopeId};

const MAGIC: &[u8; 8] = b"LXVIDX\r\n";
pub(crate) const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 1 + 8;
const CHECKSUM_LEN: usize = 32;

/// Which index wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum IndexKind {
    Flat = 1,
    /// The payload layout is documented in `index/hnsw.rs`.
    Hnsw = 2,
}

/// The persisted state of an index: its live entries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) dimension: u32,
    /// The recency counter, so reloaded entries keep their least-recently-hit order.
    pub(crate) tick: u64,
    pub(crate) entries: Vec<EntryRecord>,
}

/// One persisted entry.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EntryRecord {
    pub(crate) id: String,
    pub(crate) scope: ScopeId,
    pub(crate) expires_at_millis: Option<u64>,
    pub(crate) last_hit: u64,
    pub(crate) vector: Vec<f32>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `snapshot` to `path` through a temporary file and a rename, so a crash mid-write
/// leaves the previous file intact.
pub(crate) fn write(path: &Path, kind: IndexKind, snapshot: &Snapshot) -> Result<()> {
    let payload = postcard::to_stdvec(snapshot)
        .map_err(|e| Error::InvalidInput(format!("cannot encode index: {e}")))?;
    write_parts(path, kind, &[&payload])
}

/// Writes a file whose payload is the concatenation of `parts` (header, payload, checksum),
/// through a temporary file and a rename, so a crash mid-write leaves the previous file
/// intact. The parts are streamed, never copied into one buffer.
pub(crate) fn write_parts(path: &Path, kind: IndexKind, parts: &[&[u8]]) -> Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.push(kind as u8);
    header.extend_from_slice(&(len as u64).to_le_bytes());
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let checksum = hasher.finalize();

    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string()
        .push(format!(".tmp-{}", std::process::id()));
    let result = (|| {
        let f = fs::File::create(&tmp).map_err(io_error(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        out.write_all(&header).map_err(io_error(&tmp))?;
        for part in parts {
            out.write_all(part).map_err(io_error(&tmp))?;
        }
        out.write_all(&checksum).map_err(io_error(&tmp))?;
        let f = out.into_inner().map_err(|e| Error::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, path).map_err(io_error(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads and verifies the file at `path`.
pub(crate) fn read(path: &Path, kind: IndexKind) -> Result<Snapshot> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    decode(&bytes, kind)
}

/// Reads the file at `path` and checks its header and checksum; returns the whole file and
/// the payload's byte range in it.
pub(crate) fn read_verified(
    path: &Path,
    kind: IndexKind,
) -> Result<(Vec<u8>, std::ops::Range<usize>)> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let range = verify(&bytes, kind)?;
    Ok((bytes, range))
}

pub(crate) fn decode(bytes: &[u8], kind: IndexKind) -> Result<Snapshot> {
    let payload = &bytes[verify(bytes, kind)?];
    postcard::from_bytes(payload).map_err(|e| Error::Corrupt(format!("cannot decode payload: {e}")))
}

/// Checks magic, version, kind, length and checksum; returns the payload's byte range.
fn verify(bytes: &[u8], kind: IndexKind) -> Result<std::ops::Range<usize>> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::Corrupt(
            "not a lexicache vector index file (bad magic)".into(),
        ));
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Corrupt("truncated header".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    if bytes[12] != kind as u8 {
        return Err(Error::Corrupt(format!(
            "file holds index kind {}, expected {} ({kind:?})",
            bytes[12], kind as u8
        )));
    }
    let len = u64::from_le_bytes(bytes[13..21].try_into().expect("8 bytes"));
    let expected = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN + CHECKSUM_LEN))
        .ok_or_else(|| Error::Corrupt(format!("impossible payload length {len}")))?;
    if bytes.len() != expected {
        return Err(Error::Corrupt(format!(
            "file is {} bytes, header says {expected} (truncated or trailing data)",
            bytes.len()
        )));
    }
    let payload = HEADER_LEN..expected - CHECKSUM_LEN;
    if Sha256::digest(&bytes[payload.clone()]).as_slice() != &bytes[expected - CHECKSUM_LEN..] {
        return Err(Error::Corrupt("checksum mismatch".into()));
    }
    Ok(payload)
}
