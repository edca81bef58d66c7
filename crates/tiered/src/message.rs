//! The wire format of invalidation and heartbeat messages.
//!
//! Both are small binary frames, versioned by their magic:
//!
//! | message | layout (integers little-endian) |
//! |---|---|
//! | invalidation | `LXI1`, publisher `u64`, sequence `u64`, op count `u32`, ops |
//! | heartbeat | `LXH1`, sent-at `u64` (nanoseconds on the subscriber's own clock) |
//!
//! An op is a tag byte and its body: `1` keys (`u32` count, then `u32` length + UTF-8 bytes
//! per key), `2` pattern (`u32` length + UTF-8 glob), `3` clear. A frame that does not parse
//! is never guessed at: the subscriber drops its whole L1 instead.

/// The channel every process of a namespace publishes its invalidations on.
pub(crate) const INVALIDATION_CHANNEL: &str = "inv";

const INVALIDATION_MAGIC: &[u8; 4] = b"LXI1";
const HEARTBEAT_MAGIC: &[u8; 4] = b"LXH1";

/// The channel only this subscriber's heartbeats go to.
pub(crate) fn heartbeat_channel(id: u64) -> String {
    format!("hb:{id:016x}")
}

/// One change a process made to L2, which others must reflect in their L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// These keys changed or were removed.
    Keys(Vec<String>),
    /// Every key matching this glob was removed.
    Pattern(String),
    /// The namespace was cleared.
    Clear,
}

/// A batch of ops from one publisher, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalidation {
    pub(crate) publisher: u64,
    pub(crate) seq: u64,
    pub(crate) ops: Vec<Op>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Invalidation {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.ops.len() * 24);
        out.extend_from_slice(INVALIDATION_MAGIC);
        out.extend_from_slice(&self.publisher.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.ops.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for op in &self.ops {
            match op {
                Op::Keys(keys) => {
                    out.push(1);
                    out.extend_from_slice(
                        &u32::try_from(keys.len()).unwrap_or(u32::MAX).to_le_bytes(),
                    );
                    for k in keys {
                        put_str(&mut out, k);
                    }
                }
                Op::Pattern(glob) => {
                    out.push(2);
                    put_str(&mut out, glob);
                }
                Op::Clear => out.push(3),
            }
        }
        out
    }

    /// Parses a frame; `None` for anything that is not a whole, valid frame.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(4)? != INVALIDATION_MAGIC {
            return None;
        }
        let publisher = r.u64()?;
        let seq = r.u64()?;
        let count = r.u32()?;
        // Each op takes at least one byte: a count larger than the rest is a lie.
        if count as usize > r.0.len() {
            return None;
        }
        let mut ops = Vec::with_capacity(count as usize);
        for _ in 0..count {
            ops.push(match r.take(1)?[0] {
                1 => {
                    let n = r.u32()?;
                    if n as usize > r.0.len() / 4 {
                        return None;
                    }
                    let mut keys = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        keys.push(r.str()?);
                    }
                    Op::Keys(keys)
                }
                2 => Op::Pattern(r.str()?),
                3 => Op::Clear,
                _ => return None,
            });
        }
        r.0.is_empty().then_some(Self {
            publisher,
            seq,
            ops,
        })
    }
}

/// A heartbeat frame carrying its send time.
pub(crate) fn encode_heartbeat(sent_at_nanos: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(HEARTBEAT_MAGIC);
    out.extend_from_slice(&sent_at_nanos.to_le_bytes());
    out
}

/// The send time of a heartbeat frame.
pub(crate) fn decode_heartbeat(bytes: &[u8]) -> Option<u64> {
    let mut r = Reader(bytes);
    if r.take(4)? != HEARTBEAT_MAGIC {
        return None;
    }
    let at = r.u64()?;
    r.0.is_empty().then_some(at)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invalidation {
        Invalidation {
            publisher: 0xDEAD_BEEF_0102_0304,
            seq: 42,
            ops: vec![
                Op::Keys(vec!["user:1".into(), "ключ €".into(), String::new()]),
                Op::Pattern("user:*".into()),
                Op::Clear,
            ],
        }
    }

    #[test]
    fn an_invalidation_round_trips() {
        let m = sample();
        assert_eq!(Invalidation::decode(&m.encode()), Some(m));
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert_eq!(Invalidation::decode(&bytes[..len]), None, "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Invalidation::decode(&longer), None);
    }

    #[test]
    fn a_lying_count_is_rejected_without_allocating_it() {
        let mut bytes = INVALIDATION_MAGIC.to_vec();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Invalidation::decode(&bytes), None);
        let mut keys = INVALIDATION_MAGIC.to_vec();
        keys.extend_from_slice(&1u64.to_le_bytes());
        keys.extend_from_slice(&1u64.to_le_bytes());
        keys.extend_from_slice(&1u32.to_le_bytes());
        keys.push(1);
        keys.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Invalidation::decode(&keys), None);
    }

    #[test]
    fn a_key_that_is_not_utf8_is_rejected() {
        let mut m = sample().encode();
        let at = m.windows(6).position(|w| w == b"user:1").unwrap();
        m[at] = 0xFF;
        assert_eq!(Invalidation::decode(&m), None);
    }

    #[test]
    fn heartbeats_round_trip_and_are_not_invalidations() {
        let hb = encode_heartbeat(123_456_789);
        assert_eq!(decode_heartbeat(&hb), Some(123_456_789));
        assert_eq!(Invalidation::decode(&hb), None);
        assert_eq!(decode_heartbeat(&sample().encode()), None);
        assert_eq!(decode_heartbeat(&hb[..11]), None);
    }
}
