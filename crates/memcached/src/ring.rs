//! [`HashRing`]: ketama-style consistent hashing of keys onto servers.
//!
//! Each server is placed on a ring of `u64` positions at [`DEFAULT_POINTS_PER_SERVER`] points
//! (virtual nodes), and a key belongs to the first point at or after its own position, wrapping
//! around. Adding a server to `N` takes over about `1/(N+1)` of the keys, all of them from the
//! others and none moved between the others; removing one moves only its own keys.
//!
//! # The hash
//!
//! Positions must agree between processes, machines and releases, so that every client sends a
//! key to the same server. They use SHA-256, never a randomly seeded hasher:
//!
//! - a key's position is the first 8 bytes (big-endian) of SHA-256 of its wire key (see
//!   [`wire_key`](crate::wire_key));
//! - a server's points come from SHA-256 of `"{server}-{i}"` for `i = 0, 1, ...`, each digest
//!   giving four points (its four big-endian 8-byte words), as ketama takes four points from each
//!   MD5 digest. `server` is the address exactly as configured (`host:port`), so every client
//!   must spell the server list the same way.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Points (virtual nodes) per server: 160, as in ketama.
pub const DEFAULT_POINTS_PER_SERVER: usize = 160;

/// Consistent hashing of keys onto servers.
///
/// ```
/// use lexicache_memcached::HashRing;
///
/// let ring = HashRing::new(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]);
/// let server = ring.server_for("user:42").unwrap();
/// // Deterministic: the same answer in every process.
/// assert_eq!(ring.server_for("user:42"), Some(server));
///
/// // Adding a server moves a key only to the new server.
/// let bigger = HashRing::new(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"]);
/// let moved = bigger.server_for("user:42").unwrap();
/// assert!(moved == server || moved == "10.0.0.4:11211");
/// ```
#[derive(Debug, Clone)]
pub struct HashRing {
    /// Sorted by position, then by server index, so ties resolve the same way everywhere.
    points: Vec<(u64, u32)>,
    servers: Vec<Arc<str>>,
}

impl HashRing {
    /// A ring over `servers` with [`DEFAULT_POINTS_PER_SERVER`] points each.
    #[must_use]
    pub fn new<S: AsRef<str>>(servers: &[S]) -> Self {
        Self::with_points(servers, DEFAULT_POINTS_PER_SERVER)
    }

    /// A ring over `servers` with `points_per_server` points each (at least 1).
    #[must_use]
    pub fn with_points<S: AsRef<str>>(servers: &[S], points_per_server: usize) -> Self {
        let per = points_per_server.max(1);
        let mut points = Vec::with_capacity(servers.len() * per);
        for (index, server) in servers.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let mut made = 0;
            let mut i = 0u64;
            while made < per {
                let digest = Sha256::digest(format!("{}-{i}", server.as_ref()).as_bytes());
                for word in digest.chunks_exact(8).take(per - made) {
                    points.push((be_u64(word), index));
                    made += 1;
                }
                i += 1;
            }
        }
        points.sort_unstable();
        Self {
            points,
            servers: servers.iter().map(|s| Arc::from(s.as_ref())).collect(),
        }
    }

    /// The servers, in the order given.
    #[must_use]
    pub fn servers(&self) -> &[Arc<str>] {
        &self.servers
    }

    /// The position of `key` on the ring: the first 8 bytes (big-endian) of its SHA-256.
    #[must_use]
    pub fn position(key: &str) -> u64 {
        be_u64(&Sha256::digest(key.as_bytes())[..8])
    }

    /// The index (into [`servers`](Self::servers)) of the server owning `key`, or `None` for
    /// a ring without servers. `key` is a wire key: callers of a backend pass
    /// [`wire_key`](crate::wire_key) of the full key.
    #[must_use]
    pub fn server_index(&self, key: &str) -> Option<usize> {
        match self.servers.len() {
            0 => None,
            // One server owns everything; skip the hash.
            1 => Some(0),
            _ => Some(self.index_at(Self::position(key))),
        }
    }

    /// The server owning `key`, or `None` for a ring without servers.
    #[must_use]
    pub fn server_for(&self, key: &str) -> Option<&str> {
        self.server_index(key).map(|i| &*self.servers[i])
    }

    fn index_at(&self, position: u64) -> usize {
        let at = self.points.partition_point(|&(p, _)| p < position);
        let (_, server) = self.points[if at == self.points.len() { 0 } else { at }];
        server as usize
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: usize = 20_000;

    fn keys() -> Vec<String> {
        (0..KEYS).map(|i| format!("user:{i}")).collect()
    }

    fn owners(ring: &HashRing, keys: &[String]) -> Vec<String> {
        keys.iter()
            .map(|k| ring.server_for(k).expect("a server").to_owned())
            .collect()
    }

    fn servers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{}:11211", i + 1)).collect()
    }

    #[test]
    fn adding_a_fourth_server_moves_about_a_quarter_of_keys_all_to_it() {
        let keys = keys();
        let before = owners(&HashRing::new(&servers(3)), &keys);
        let after = owners(&HashRing::new(&servers(4)), &keys);
        let new = &servers(4)[3];
        let moved: Vec<usize> = (0..KEYS).filter(|&i| before[i] != after[i]).collect();
        for &i in &moved {
            assert_eq!(&after[i], new, "key {} moved between old servers", keys[i]);
        }
        let fraction = moved.len() as f64 / KEYS as f64;
        assert!(
            (0.17..=0.33).contains(&fraction),
            "moved fraction {fraction:.3}, expected about 0.25"
        );
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let keys = keys();
        let all = servers(4);
        let before = owners(&HashRing::new(&all), &keys);
        let removed = &all[1];
        let rest: Vec<String> = all.iter().filter(|s| *s != removed).cloned().collect();
        let after = owners(&HashRing::new(&rest), &keys);
        let mut moved = 0;
        for i in 0..KEYS {
            if &before[i] == removed {
                moved += 1;
                assert_ne!(&after[i], removed);
            } else {
                assert_eq!(
                    before[i], after[i],
                    "key {} of a kept server moved",
                    keys[i]
                );
            }
        }
        let fraction = moved as f64 / KEYS as f64;
        assert!(
            (0.17..=0.33).contains(&fraction),
            "moved fraction {fraction:.3}, expected about 0.25"
        );
    }

    #[test]
    fn keys_spread_over_every_server() {
        let keys = keys();
        let ring = HashRing::new(&servers(3));
        let owned = owners(&ring, &keys);
        for s in servers(3) {
            let share = owned.iter().filter(|o| **o == s).count() as f64 / KEYS as f64;
            assert!((0.23..=0.43).contains(&share), "{s} owns {share:.3}");
        }
    }

    #[test]
    fn positions_are_fixed_across_processes_and_releases() {
        // Pinned values: changing them would send keys to other servers after an upgrade.
        assert_eq!(HashRing::position("user:42"), 0xea3f_d43b_e1e5_7d62);
        let ring = HashRing::new(&["127.0.0.1:11290", "127.0.0.1:11291"]);
        let pinned: Vec<usize> = (0..8)
            .map(|i| ring.server_index(&format!("k{i}")).expect("a server"))
            .collect();
        assert_eq!(pinned, PINNED_OWNERS);
    }

    const PINNED_OWNERS: [usize; 8] = [0, 0, 0, 0, 1, 1, 1, 0];

    #[test]
    fn empty_ring_has_no_server_and_single_server_owns_all() {
        let empty: [&str; 0] = [];
        assert_eq!(HashRing::new(&empty).server_for("k"), None);
        let one = HashRing::new(&["a:1"]);
        assert_eq!(one.server_for("k"), Some("a:1"));
    }

    #[test]
    fn point_count_follows_the_setting() {
        assert_eq!(HashRing::with_points(&["a:1", "b:2"], 7).points.len(), 14);
        assert_eq!(
            HashRing::new(&["a:1"]).points.len(),
            DEFAULT_POINTS_PER_SERVER
        );
    }
}
