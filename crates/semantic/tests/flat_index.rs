//! Behaviour of `FlatIndex`: similarity convention, scopes, eviction, TTLs, soft delete,
//! compaction and persistence.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use lexicache_semantic::{Error, FlatIndex, Hit, ManualClock, Scope, VectorIndex};

fn scope() -> Scope {
    Scope::new("acme", "gpt-4o", "You are helpful.")
}

/// Deterministic pseudo-random vectors (an LCG), so tests need no rand crate.
fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect()
        })
        .collect()
}

fn index(dim: usize, max: usize) -> (FlatIndex, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    (
        FlatIndex::builder(dim)
            .max_entries(max)
            .clock(clock.clone())
            .build()
            .unwrap(),
        clock,
    )
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("lexicache-semantic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn similarity_is_cosine_clamped_to_unit_interval() {
    let (idx, _) = index(2, 10);
    let s = scope();
    idx.insert("x", &[1.0, 0.0], &s, None).unwrap();
    let sim = |q: [f32; 2]| idx.search(&q, &s, 1).unwrap()[0].similarity;
    assert_eq!(sim([1.0, 0.0]), 1.0);
    assert_eq!(sim([5.0, 0.0]), 1.0, "length does not matter");
    assert!(
        (sim([0.5, 3f32.sqrt() / 2.0]) - 0.5).abs() < 1e-6,
        "cos 60° is 0.5, not (1 + 0.5) / 2"
    );
    assert_eq!(sim([0.0, 1.0]), 0.0, "orthogonal");
    assert_eq!(sim([-1.0, 0.0]), 0.0, "opposite is clamped to 0");
    assert_eq!(sim([-1.0, 1.0]), 0.0, "negative cosine is clamped to 0");
}

#[test]
fn repeating_a_stored_vector_exactly_scores_one() {
    let (idx, _) = index(384, 1_000);
    let s = scope();
    let vs = vectors(200, 384, 7);
    for (i, v) in vs.iter().enumerate() {
        idx.insert(&format!("e{i}"), v, &s, None).unwrap();
    }
    for (i, v) in vs.iter().enumerate() {
        let hits = idx.search(v, &s, 1).unwrap();
        assert_eq!(
            hits,
            vec![Hit {
                id: format!("e{i}"),
                similarity: 1.0
            }]
        );
    }
}

#[test]
fn lookup_only_matches_entries_of_its_own_scope() {
    let (idx, _) = index(3, 10);
    let v = [0.3, 0.4, 0.5];
    idx.insert("acme-answer", &v, &scope(), None).unwrap();
    for other in [
        Scope::new("globex", "gpt-4o", "You are helpful."),
        Scope::new("acme", "gpt-4o-mini", "You are helpful."),
        Scope::new("acme", "gpt-4o", "You are terse."),
    ] {
        assert!(
            idx.search(&v, &other, 5).unwrap().is_empty(),
            "{other:?} saw acme's entry"
        );
        idx.insert(
            &format!("{}-{}", other.tenant(), other.id()),
            &v,
            &other,
            None,
        )
        .unwrap();
        let hits = idx.search(&v, &other, 5).unwrap();
        assert_eq!(hits.len(), 1);
        assert_ne!(hits[0].id, "acme-answer");
    }
    assert_eq!(ids(&idx.search(&v, &scope(), 5).unwrap()), ["acme-answer"]);
}

#[test]
fn search_returns_at_most_k_hits_best_first() {
    let (idx, _) = index(2, 10);
    let s = scope();
    idx.insert("far", &[0.0, 1.0], &s, None).unwrap();
    idx.insert("near", &[1.0, 0.1], &s, None).unwrap();
    idx.insert("mid", &[1.0, 1.0], &s, None).unwrap();
    let hits = idx.search(&[1.0, 0.0], &s, 2).unwrap();
    assert_eq!(ids(&hits), ["near", "mid"]);
    assert!(hits[0].similarity > hits[1].similarity);
    assert_eq!(
        ids(&idx.search(&[1.0, 0.0], &s, 10).unwrap()),
        ["near", "mid", "far"]
    );
    assert!(idx.search(&[1.0, 0.0], &s, 0).unwrap().is_empty());
}

#[test]
fn wrong_dimension_and_degenerate_vectors_are_typed_errors() {
    let (idx, _) = index(3, 10);
    let s = scope();
    assert!(matches!(
        idx.insert("a", &[1.0, 2.0], &s, None),
        Err(Error::DimensionMismatch {
            expected: 3,
            actual: 2
        })
    ));
    assert!(matches!(
        idx.search(&[1.0; 4], &s, 1),
        Err(Error::DimensionMismatch {
            expected: 3,
            actual: 4
        })
    ));
    assert!(matches!(
        idx.insert("z", &[0.0; 3], &s, None),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        idx.insert("n", &[f32::NAN, 1.0, 1.0], &s, None),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        idx.search(&[0.0; 3], &s, 1),
        Err(Error::InvalidInput(_))
    ));
    assert!(idx.is_empty());
    assert!(matches!(
        FlatIndex::builder(0).build(),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        FlatIndex::builder(3).max_entries(0).build(),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn inserting_an_existing_id_replaces_its_vector_scope_and_ttl() {
    let (idx, clock) = index(2, 10);
    let other = Scope::new("globex", "m", "");
    idx.insert("a", &[1.0, 0.0], &scope(), Some(Duration::from_secs(1)))
        .unwrap();
    idx.insert("a", &[0.0, 1.0], &other, None).unwrap();
    assert_eq!(idx.len(), 1);
    assert!(idx.search(&[1.0, 0.0], &scope(), 1).unwrap().is_empty());
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        idx.search(&[0.0, 1.0], &other, 1).unwrap(),
        vec![Hit {
            id: "a".into(),
            similarity: 1.0
        }]
    );
}

#[test]
fn removed_entry_is_never_returned_and_compaction_reclaims_it() {
    let (idx, _) = index(2, 10);
    let s = scope();
    idx.insert("a", &[1.0, 0.0], &s, None).unwrap();
    idx.insert("b", &[0.9, 0.1], &s, None).unwrap();
    idx.insert("c", &[0.0, 1.0], &s, None).unwrap();
    assert!(idx.remove("a"));
    assert!(!idx.remove("a"), "second remove finds nothing");
    assert!(!idx.remove("never-inserted"));
    assert_eq!(idx.len(), 2);
    assert_eq!(idx.tombstones(), 1, "soft delete leaves a tombstone");
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 3).unwrap()), ["b", "c"]);
    assert_eq!(idx.compact(), 1);
    assert_eq!(idx.tombstones(), 0);
    assert_eq!(idx.compact(), 0);
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 3).unwrap()), ["b", "c"]);
    // The id can be reused after removal.
    idx.insert("a", &[1.0, 0.0], &s, None).unwrap();
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 1).unwrap()), ["a"]);
}

#[test]
fn tombstones_are_reclaimed_by_inserts_once_they_outnumber_live_entries() {
    let (idx, _) = index(4, 100);
    let s = scope();
    let vs = vectors(11, 4, 3);
    for (i, v) in vs.iter().take(10).enumerate() {
        idx.insert(&format!("e{i}"), v, &s, None).unwrap();
    }
    for i in 0..6 {
        assert!(idx.remove(&format!("e{i}")));
    }
    assert_eq!(idx.tombstones(), 6);
    idx.insert("new", &vs[10], &s, None).unwrap();
    assert_eq!(idx.tombstones(), 0);
    assert_eq!(idx.len(), 5);
    for (i, v) in vs.iter().enumerate().take(10).skip(6) {
        assert_eq!(idx.search(v, &s, 1).unwrap()[0].id, format!("e{i}"));
    }
}

#[test]
fn full_index_evicts_the_least_recently_hit_entry() {
    let (idx, _) = index(3, 3);
    let s = scope();
    idx.insert("a", &[1.0, 0.0, 0.0], &s, None).unwrap();
    idx.insert("b", &[0.0, 1.0, 0.0], &s, None).unwrap();
    idx.insert("c", &[0.0, 0.0, 1.0], &s, None).unwrap();
    // Hitting "a" makes "b" the least recently hit.
    assert_eq!(ids(&idx.search(&[1.0, 0.0, 0.0], &s, 1).unwrap()), ["a"]);
    idx.insert("d", &[1.0, 1.0, 0.0], &s, None).unwrap();
    assert_eq!(idx.len(), 3);
    assert!(!idx.remove("b"), "b was evicted");
    // Now "c" is the least recently hit (a was hit, d was just inserted).
    idx.insert("e", &[1.0, 0.0, 1.0], &s, None).unwrap();
    let mut left = ids(&idx.search(&[1.0, 1.0, 1.0], &s, 10).unwrap())
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    left.sort();
    assert_eq!(left, ["a", "d", "e"]);
}

#[test]
fn eviction_is_shared_across_scopes() {
    let (idx, _) = index(2, 2);
    let other = Scope::new("globex", "gpt-4o", "");
    idx.insert("a", &[1.0, 0.0], &scope(), None).unwrap();
    idx.insert("b", &[1.0, 0.0], &other, None).unwrap();
    idx.insert("c", &[0.0, 1.0], &other, None).unwrap();
    assert_eq!(idx.len(), 2);
    assert!(
        idx.search(&[1.0, 0.0], &scope(), 1).unwrap().is_empty(),
        "a was the oldest"
    );
}

#[test]
fn expired_entry_is_never_returned() {
    let (idx, clock) = index(2, 10);
    let s = scope();
    idx.insert("short", &[1.0, 0.0], &s, Some(Duration::from_secs(10)))
        .unwrap();
    idx.insert("forever", &[0.0, 1.0], &s, None).unwrap();
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 1).unwrap()), ["short"]);
    clock.advance(Duration::from_millis(1));
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 5).unwrap()), ["forever"]);
    assert_eq!(idx.len(), 1);
    assert!(!idx.remove("short"), "an expired entry counts as absent");
}

#[test]
fn compaction_reclaims_expired_entries() {
    let (idx, clock) = index(2, 10);
    let s = scope();
    idx.insert("a", &[1.0, 0.0], &s, Some(Duration::from_secs(1)))
        .unwrap();
    idx.insert("b", &[1.0, 0.0], &s, Some(Duration::from_secs(1)))
        .unwrap();
    idx.insert("c", &[1.0, 0.0], &s, None).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(idx.compact(), 2);
    assert_eq!(idx.compact(), 0);
    assert_eq!(idx.len(), 1);
}

#[test]
fn full_index_reclaims_expired_entries_before_evicting_live_ones() {
    let (idx, clock) = index(2, 2);
    let s = scope();
    idx.insert("old-but-live", &[1.0, 0.0], &s, None).unwrap();
    idx.insert("expiring", &[0.0, 1.0], &s, Some(Duration::from_secs(1)))
        .unwrap();
    clock.advance(Duration::from_secs(2));
    idx.insert("new", &[1.0, 1.0], &s, None).unwrap();
    let mut left: Vec<String> = idx
        .search(&[1.0, 0.5], &s, 10)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    left.sort();
    assert_eq!(left, ["new", "old-but-live"]);
}

#[test]
fn persisted_index_reloads_with_the_same_entries_and_results() {
    let dir = TempDir::new("reload");
    let path = dir.file("index.lxv");
    let (idx, clock) = index(16, 100);
    let s = scope();
    let other = Scope::new("globex", "gpt-4o", "");
    let vs = vectors(20, 16, 11);
    for (i, v) in vs.iter().enumerate() {
        let sc = if i % 2 == 0 { &s } else { &other };
        idx.insert(&format!("e{i}"), v, sc, None).unwrap();
    }
    assert!(idx.remove("e4"));
    idx.persist(&path).unwrap();

    let loaded = FlatIndex::builder(16)
        .max_entries(100)
        .clock(clock.clone())
        .load(&path)
        .unwrap();
    assert_eq!(loaded.len(), 19);
    for (i, v) in vs.iter().enumerate() {
        for sc in [&s, &other] {
            assert_eq!(
                loaded.search(v, sc, 3).unwrap(),
                idx.search(v, sc, 3).unwrap(),
                "query e{i}"
            );
        }
    }
    assert!(!loaded.remove("e4"), "removed entries are not persisted");

    let plain = FlatIndex::load(&path).unwrap();
    assert_eq!(plain.dimension(), 16);
    assert_eq!(plain.len(), 19);
    assert_eq!(
        plain.search(&vs[0], &s, 1).unwrap()[0],
        Hit {
            id: "e0".into(),
            similarity: 1.0
        }
    );

    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["index.lxv"], "no temporary file is left behind");
}

#[test]
fn reloaded_entries_keep_their_deadline() {
    let dir = TempDir::new("ttl");
    let path = dir.file("index.lxv");
    let (idx, clock) = index(2, 10);
    let s = scope();
    idx.insert("a", &[1.0, 0.0], &s, Some(Duration::from_secs(10)))
        .unwrap();
    idx.insert("b", &[0.0, 1.0], &s, Some(Duration::from_secs(1)))
        .unwrap();
    clock.advance(Duration::from_secs(5));
    idx.persist(&path).unwrap();
    let loaded = FlatIndex::builder(2)
        .clock(clock.clone())
        .load(&path)
        .unwrap();
    assert_eq!(
        loaded.len(),
        1,
        "the entry that expired before persist is not written"
    );
    assert_eq!(ids(&loaded.search(&[1.0, 0.0], &s, 1).unwrap()), ["a"]);
    clock.advance(Duration::from_secs(5));
    assert!(loaded.search(&[1.0, 0.0], &s, 1).unwrap().is_empty());
}

#[test]
fn reloaded_index_keeps_the_least_recently_hit_order() {
    let dir = TempDir::new("lru");
    let path = dir.file("index.lxv");
    let (idx, clock) = index(3, 3);
    let s = scope();
    idx.insert("a", &[1.0, 0.0, 0.0], &s, None).unwrap();
    idx.insert("b", &[0.0, 1.0, 0.0], &s, None).unwrap();
    idx.insert("c", &[0.0, 0.0, 1.0], &s, None).unwrap();
    idx.search(&[1.0, 0.0, 0.0], &s, 1).unwrap();
    idx.persist(&path).unwrap();

    let loaded = FlatIndex::builder(3)
        .max_entries(3)
        .clock(clock.clone())
        .load(&path)
        .unwrap();
    loaded.insert("d", &[1.0, 1.0, 0.0], &s, None).unwrap();
    assert!(
        !loaded.remove("b"),
        "b was the least recently hit before the restart"
    );
    assert!(loaded.remove("a"));

    // Loading into a smaller bound keeps the most recently hit entries.
    let small = FlatIndex::builder(3)
        .max_entries(1)
        .clock(clock)
        .load(&path)
        .unwrap();
    assert_eq!(small.len(), 1);
    assert_eq!(ids(&small.search(&[1.0, 0.0, 0.0], &s, 5).unwrap()), ["a"]);
}

fn persisted_bytes(dir: &TempDir) -> (PathBuf, Vec<u8>) {
    let path = dir.file("index.lxv");
    let (idx, _) = index(4, 10);
    for (i, v) in vectors(3, 4, 5).iter().enumerate() {
        idx.insert(&format!("e{i}"), v, &scope(), None).unwrap();
    }
    idx.persist(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

fn load(path: &Path) -> Result<FlatIndex, Error> {
    FlatIndex::builder(4).load(path)
}

#[test]
fn truncated_file_is_a_corrupt_error_at_every_length() {
    let dir = TempDir::new("truncated");
    let (path, bytes) = persisted_bytes(&dir);
    assert!(load(&path).is_ok());
    for len in 0..bytes.len() {
        fs::write(&path, &bytes[..len]).unwrap();
        assert!(
            matches!(load(&path), Err(Error::Corrupt(_))),
            "length {len}: {:?}",
            load(&path)
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    fs::write(&path, &longer).unwrap();
    assert!(
        matches!(load(&path), Err(Error::Corrupt(_))),
        "trailing data"
    );
}

#[test]
fn any_flipped_byte_is_a_typed_error() {
    let dir = TempDir::new("flipped");
    let (path, bytes) = persisted_bytes(&dir);
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x41;
        fs::write(&path, &damaged).unwrap();
        match load(&path) {
            Err(Error::Corrupt(_)) => {}
            Err(Error::UnsupportedVersion { .. }) if (8..12).contains(&i) => {}
            other => panic!("byte {i}: {other:?}"),
        }
    }
}

#[test]
fn newer_format_version_is_unsupported_version() {
    let dir = TempDir::new("version");
    let (path, mut bytes) = persisted_bytes(&dir);
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        load(&path),
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));
}

#[test]
fn foreign_or_missing_file_is_a_typed_error() {
    let dir = TempDir::new("foreign");
    let path = dir.file("notes.txt");
    fs::write(&path, "hello, this is not an index at all").unwrap();
    assert!(matches!(load(&path), Err(Error::Corrupt(_))));
    assert!(matches!(load(&dir.file("missing")), Err(Error::Io { .. })));
}

#[test]
fn loading_into_another_dimension_is_a_dimension_mismatch() {
    let dir = TempDir::new("dim");
    let (path, _) = persisted_bytes(&dir);
    assert!(matches!(
        FlatIndex::builder(8).load(&path),
        Err(Error::DimensionMismatch {
            expected: 8,
            actual: 4
        })
    ));
}

#[test]
fn semantic_errors_map_to_core_error_kinds() {
    use lexicache_core::ErrorKind;
    let e: lexicache_core::Error = Error::Corrupt("x".into()).into();
    assert_eq!(e.kind(), ErrorKind::Serialization);
    let e: lexicache_core::Error = Error::DimensionMismatch {
        expected: 1,
        actual: 2,
    }
    .into();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.backend(), "semantic");
}
