//! Behaviour of `HnswIndex`: the same contract as `FlatIndex` (similarity convention, scopes,
//! eviction, TTLs, soft delete, compaction, persistence), plus what is specific to a graph:
//! exact repeats never panic, dead nodes are skipped, rebuilds, and reloading the graph
//! without re-inserting it.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use lexicache_semantic::{Error, FlatIndex, Hit, HnswIndex, ManualClock, Scope, VectorIndex};

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

/// `v` plus noise of relative size `amount` (a near duplicate).
fn perturbed(v: &[f32], amount: f32, seed: u64) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let noise = &vectors(1, v.len(), seed)[0];
    let noise_norm = noise.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter()
        .zip(noise)
        .map(|(x, n)| x + n / noise_norm * norm * amount)
        .collect()
}

fn index(dim: usize, max: usize) -> (HnswIndex, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    (
        HnswIndex::builder(dim)
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

fn sorted_ids(hits: &[Hit]) -> Vec<String> {
    let mut ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    ids
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "lexicache-semantic-hnsw-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn repeating_a_stored_vector_exactly_scores_one_without_panicking() {
    // hnsw_rs's own DistDot asserts on the rounding of an exact repeat; ours must not.
    let (idx, _) = index(384, 1_000);
    let s = scope();
    let vs = vectors(200, 384, 7);
    for (i, v) in vs.iter().enumerate() {
        idx.insert(&format!("e{i}"), v, &s, None).unwrap();
    }
    for (i, v) in vs.iter().enumerate() {
        let hits = idx.search(v, &s, 1).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, format!("e{i}"));
        assert!((hits[0].similarity - 1.0).abs() <= 1e-6, "{:?}", hits[0]);
        assert_eq!(hits[0].similarity, 1.0);
        // The opposite vector is far from everything; it must not panic either.
        let opposite: Vec<f32> = v.iter().map(|x| -x).collect();
        idx.search(&opposite, &s, 3).unwrap();
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
fn lookup_only_matches_entries_of_its_own_scope_even_at_similarity_one() {
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
        assert_eq!(hits[0].similarity, 1.0);
    }
    assert_eq!(ids(&idx.search(&v, &scope(), 5).unwrap()), ["acme-answer"]);
    assert_eq!(idx.stats().scopes, 4, "one graph per scope");
}

#[test]
fn small_scope_inside_a_large_index_of_other_scopes_finds_its_entries() {
    let dim = 16;
    // Cheap graph parameters: this test is about scopes, not recall (and runs in debug).
    let idx = HnswIndex::builder(dim)
        .m(8)
        .ef_construction(32)
        .build()
        .unwrap();
    let big = Scope::new("big-tenant", "gpt-4o", "");
    let small = Scope::new("small-tenant", "gpt-4o", "");
    let crowd = vectors(1_500, dim, 1);
    let entries: Vec<(String, &Vec<f32>)> = crowd
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("big{i}"), v))
        .collect();
    idx.insert_batch(&entries, &big, None).unwrap();
    // The small scope's entries are near duplicates of big-scope entries, so a search that
    // walked the big scope's neighbourhood would find those first.
    for i in 0..5 {
        let v = perturbed(&crowd[i * 100], 0.01, 100 + i as u64);
        idx.insert(&format!("small{i}"), &v, &small, None).unwrap();
    }
    for i in 0..5 {
        let hits = idx.search(&crowd[i * 100], &small, 10).unwrap();
        assert_eq!(hits.len(), 5, "all of the small scope and nothing else");
        assert!(hits.iter().all(|h| h.id.starts_with("small")));
        assert_eq!(hits[0].id, format!("small{i}"));
        assert!(hits[0].similarity > 0.99);
    }
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
        idx.insert("i", &[f32::INFINITY, 1.0, 1.0], &s, None),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        idx.search(&[0.0; 3], &s, 1),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        idx.search(&[f32::NAN; 3], &s, 1),
        Err(Error::InvalidInput(_))
    ));
    assert!(idx.is_empty());
    assert_eq!(idx.stats().scopes, 0, "a rejected insert creates no graph");
}

#[test]
fn a_batch_with_one_bad_vector_stores_nothing() {
    let (idx, _) = index(3, 10);
    let good = [1.0, 0.0, 0.0];
    let batch: Vec<(&str, &[f32])> = vec![("a", &good), ("b", &[0.0; 3]), ("c", &good)];
    assert!(matches!(
        idx.insert_batch(&batch, &scope(), None),
        Err(Error::InvalidInput(_))
    ));
    let short: Vec<(&str, &[f32])> = vec![("a", &good), ("b", &[1.0, 2.0])];
    assert!(matches!(
        idx.insert_batch(&short, &scope(), None),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(idx.is_empty());
}

#[test]
fn invalid_builder_parameters_are_typed_errors() {
    for builder in [
        HnswIndex::builder(0),
        HnswIndex::builder(3).max_entries(0),
        HnswIndex::builder(3).m(0),
        HnswIndex::builder(3).m(1),
        // hnsw_rs exits the process above 256 links; we refuse instead.
        HnswIndex::builder(3).m(256),
        HnswIndex::builder(3).m(10_000),
        HnswIndex::builder(3).ef_construction(0),
        HnswIndex::builder(3).ef_search(0),
    ] {
        let shown = format!("{builder:?}");
        assert!(
            matches!(builder.build(), Err(Error::InvalidInput(_))),
            "{shown}"
        );
    }
    let idx = HnswIndex::builder(3)
        .m(2)
        .ef_construction(1)
        .ef_search(1)
        .build()
        .unwrap();
    idx.insert("a", &[1.0, 0.0, 0.0], &scope(), None).unwrap();
    idx.insert("b", &[0.0, 1.0, 0.0], &scope(), None).unwrap();
    assert_eq!(
        ids(&idx.search(&[0.0, 1.0, 0.1], &scope(), 2).unwrap()),
        ["b", "a"],
        "a search for k hits widens ef to at least k"
    );
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
    // Within one scope too: the old vector's node no longer answers for "a".
    idx.insert("a", &[1.0, 1.0], &other, None).unwrap();
    assert_eq!(idx.len(), 1);
    let hits = idx.search(&[0.0, 1.0], &other, 5).unwrap();
    assert_eq!(ids(&hits), ["a"]);
    assert!((hits[0].similarity - 0.5f32.sqrt()).abs() < 1e-6);
}

#[test]
fn removed_entry_is_never_returned_and_compaction_rebuilds_without_it() {
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
    assert_eq!(idx.stats().nodes, 3, "the dead node is still in the graph");
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 3).unwrap()), ["b", "c"]);
    assert_eq!(idx.compact(), 1);
    assert_eq!(idx.tombstones(), 0);
    let stats = idx.stats();
    assert_eq!((stats.nodes, stats.rebuilds), (2, 1), "{stats:?}");
    assert_eq!(idx.compact(), 0);
    assert_eq!(idx.stats().rebuilds, 1, "nothing to rebuild");
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 3).unwrap()), ["b", "c"]);
    // The id can be reused after removal.
    idx.insert("a", &[1.0, 0.0], &s, None).unwrap();
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &s, 1).unwrap()), ["a"]);
}

#[test]
fn compacting_a_scope_whose_entries_are_all_removed_drops_its_graph() {
    let (idx, _) = index(2, 10);
    let other = Scope::new("globex", "m", "");
    idx.insert("a", &[1.0, 0.0], &scope(), None).unwrap();
    idx.insert("b", &[1.0, 0.0], &other, None).unwrap();
    assert!(idx.remove("a"));
    assert_eq!(idx.compact(), 1);
    let stats = idx.stats();
    assert_eq!((stats.scopes, stats.nodes), (1, 1), "{stats:?}");
    assert!(idx.search(&[1.0, 0.0], &scope(), 1).unwrap().is_empty());
    idx.insert("a", &[1.0, 0.0], &scope(), None).unwrap();
    assert_eq!(ids(&idx.search(&[1.0, 0.0], &scope(), 1).unwrap()), ["a"]);
}

#[test]
fn insert_rebuilds_a_graph_automatically_once_dead_nodes_make_up_half_of_it() {
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
    assert_eq!(idx.stats().rebuilds, 0, "remove alone never rebuilds");
    idx.insert("new", &vs[10], &s, None).unwrap();
    let stats = idx.stats();
    assert_eq!(
        (stats.tombstones, stats.nodes, stats.rebuilds),
        (0, 5, 1),
        "{stats:?}"
    );
    assert_eq!(idx.len(), 5);
    for (i, v) in vs.iter().enumerate().take(10).skip(6) {
        assert_eq!(idx.search(v, &s, 1).unwrap()[0].id, format!("e{i}"));
    }
}

#[test]
fn search_skips_dead_nodes_and_still_returns_k_live_hits() {
    let dim = 16;
    let (idx, _) = index(dim, 1_000);
    let s = scope();
    let base = &vectors(1, dim, 9)[0];
    // 40 near duplicates of `base` and 40 unrelated vectors.
    for i in 0..40 {
        idx.insert(&format!("near{i}"), &perturbed(base, 0.05, i), &s, None)
            .unwrap();
    }
    for (i, v) in vectors(40, dim, 10).iter().enumerate() {
        idx.insert(&format!("far{i}"), v, &s, None).unwrap();
    }
    // Remove 39 of the nearest (fewer than half the graph, so no rebuild happens).
    for i in 1..40 {
        assert!(idx.remove(&format!("near{i}")));
    }
    assert_eq!(idx.stats().nodes, 80);
    let hits = idx.search(base, &s, 5).unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, "near0");
    assert!(
        hits[1..].iter().all(|h| h.id.starts_with("far")),
        "{hits:?}"
    );
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
    let left = sorted_ids(&idx.search(&[1.0, 1.0, 1.0], &s, 10).unwrap());
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
fn a_batch_larger_than_the_bound_keeps_its_most_recent_entries() {
    let (idx, _) = index(8, 10);
    let vs = vectors(25, 8, 4);
    let batch: Vec<(String, &Vec<f32>)> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("e{i}"), v))
        .collect();
    idx.insert_batch(&batch, &scope(), None).unwrap();
    assert_eq!(idx.len(), 10);
    let expected: Vec<String> = {
        let mut e: Vec<String> = (15..25).map(|i| format!("e{i}")).collect();
        e.sort();
        e
    };
    assert_eq!(
        sorted_ids(&idx.search(&vs[20], &scope(), 25).unwrap()),
        expected
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
    assert_eq!(idx.stats().nodes, 1);
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
    let left = sorted_ids(&idx.search(&[1.0, 0.5], &s, 10).unwrap());
    assert_eq!(left, ["new", "old-but-live"]);
}

#[test]
fn recall_at_1_against_flat_index_on_near_duplicate_queries_is_at_least_95_percent() {
    // Small enough for a debug build; the `index` bench measures 10k and 100k entries of
    // 384 dimensions.
    let dim = 32;
    let n = 1_000;
    let (hnsw, _) = index(dim, n);
    let flat = FlatIndex::builder(dim).max_entries(n).build().unwrap();
    let s = scope();
    let vs = vectors(n, dim, 21);
    let batch: Vec<(String, &Vec<f32>)> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("e{i}"), v))
        .collect();
    hnsw.insert_batch(&batch, &s, None).unwrap();
    for (id, v) in &batch {
        flat.insert(id, v, &s, None).unwrap();
    }
    let queries = 500;
    let mut agree = 0;
    for q in 0..queries {
        let query = perturbed(&vs[(q * 7) % n], 0.3, 1_000 + q as u64);
        let truth = &flat.search(&query, &s, 1).unwrap()[0];
        let got = &hnsw.search(&query, &s, 1).unwrap()[0];
        if got.id == truth.id {
            assert_eq!(got.similarity, truth.similarity, "same entry, same score");
            agree += 1;
        }
    }
    let recall = agree as f64 / queries as f64;
    assert!(recall >= 0.95, "recall@1 {recall}");
}

#[test]
fn searches_concurrent_with_inserts_and_removals_do_not_panic() {
    let dim = 16;
    let idx = Arc::new(
        HnswIndex::builder(dim)
            .max_entries(300)
            .ef_construction(32)
            .build()
            .unwrap(),
    );
    let vs = Arc::new(vectors(600, dim, 5));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (idx, vs) = (Arc::clone(&idx), Arc::clone(&vs));
            std::thread::spawn(move || {
                for i in (w..600).step_by(2) {
                    idx.insert(&format!("e{i}"), &vs[i], &scope(), None)
                        .unwrap();
                    if i % 5 == 0 {
                        idx.remove(&format!("e{}", i / 2));
                    }
                    if i % 97 == 0 {
                        idx.compact();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (idx, vs) = (Arc::clone(&idx), Arc::clone(&vs));
            std::thread::spawn(move || {
                for i in 0..600 {
                    let hits = idx.search(&vs[(i * 3 + r) % 600], &scope(), 3).unwrap();
                    assert!(hits.len() <= 3);
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    assert!(idx.len() <= 300);
    for i in 500..600 {
        if idx.remove(&format!("e{i}")) {
            continue;
        }
    }
    idx.compact();
    assert_eq!(idx.tombstones(), 0);
}

#[test]
fn index_is_usable_as_a_shared_dyn_vector_index() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HnswIndex>();
    let (idx, _) = index(2, 10);
    let shared: Arc<dyn VectorIndex> = Arc::new(idx);
    shared.insert("a", &[1.0, 0.0], &scope(), None).unwrap();
    assert_eq!(shared.dimension(), 2);
    assert_eq!(
        ids(&shared.search(&[1.0, 0.0], &scope(), 1).unwrap()),
        ["a"]
    );
    assert!(format!("{shared:?}").starts_with("HnswIndex"));
}

// ---------------------------------------------------------------------------------------
// Persistence

#[test]
fn persisted_index_reloads_its_graphs_without_reinserting_and_answers_identically() {
    let dir = TempDir::new("reload");
    let path = dir.file("index.lxv");
    let dim = 24;
    let (idx, clock) = index(dim, 1_000);
    let s = scope();
    let other = Scope::new("globex", "gpt-4o", "");
    let vs = vectors(400, dim, 11);
    for (i, v) in vs.iter().enumerate() {
        let sc = if i % 3 == 0 { &other } else { &s };
        idx.insert(&format!("e{i}"), v, sc, None).unwrap();
    }
    assert!(idx.remove("e4"));
    idx.persist(&path).unwrap();
    assert_eq!(
        dir.names(),
        ["index.lxv"],
        "no temporary file is left behind"
    );

    let loaded = HnswIndex::builder(dim)
        .max_entries(1_000)
        .clock(clock.clone())
        .load(&path)
        .unwrap();
    let stats = loaded.stats();
    assert_eq!(
        stats.graph_inserts, 0,
        "loading inserted vectors: {stats:?}"
    );
    assert_eq!(stats.rebuilds, 0);
    assert_eq!((stats.scopes, stats.nodes, stats.tombstones), (2, 400, 1));
    assert_eq!(loaded.len(), 399);
    for (i, v) in vs.iter().enumerate() {
        let query = perturbed(v, 0.5, i as u64);
        for sc in [&s, &other] {
            assert_eq!(
                loaded.search(&query, sc, 5).unwrap(),
                idx.search(&query, sc, 5).unwrap(),
                "query e{i}"
            );
        }
    }
    assert!(!loaded.remove("e4"), "removed entries stay removed");

    // The reloaded graph keeps working: inserts, removals, rebuilds.
    loaded.insert("new", &vs[4], &s, None).unwrap();
    assert_eq!(loaded.search(&vs[4], &s, 1).unwrap()[0].id, "new");
    assert_eq!(loaded.compact(), 1);
    assert_eq!(loaded.search(&vs[5], &s, 1).unwrap()[0].id, "e5");

    let plain = HnswIndex::load(&path).unwrap();
    assert_eq!(plain.dimension(), dim);
    assert_eq!(plain.len(), 399);
    assert_eq!(
        plain.search(&vs[0], &other, 1).unwrap()[0],
        Hit {
            id: "e0".into(),
            similarity: 1.0
        }
    );
    assert_eq!(dir.names(), ["index.lxv"]);
}

#[test]
fn persisting_an_empty_index_reloads_an_empty_index() {
    let dir = TempDir::new("empty");
    let path = dir.file("index.lxv");
    let (idx, _) = index(4, 10);
    idx.persist(&path).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert!(loaded.is_empty());
    loaded
        .insert("a", &[1.0, 0.0, 0.0, 0.0], &scope(), None)
        .unwrap();
    assert_eq!(loaded.len(), 1);
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
    let loaded = HnswIndex::builder(2)
        .clock(clock.clone())
        .load(&path)
        .unwrap();
    assert_eq!(loaded.len(), 1, "b expired before the restart");
    assert_eq!(ids(&loaded.search(&[1.0, 0.0], &s, 5).unwrap()), ["a"]);
    clock.advance(Duration::from_secs(5));
    assert!(loaded.search(&[1.0, 0.0], &s, 1).unwrap().is_empty());
    assert_eq!(loaded.compact(), 2);
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

    let loaded = HnswIndex::builder(3)
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
    let small = HnswIndex::builder(3)
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

fn load(path: &Path) -> Result<HnswIndex, Error> {
    HnswIndex::builder(4).load(path)
}

#[test]
fn truncated_file_is_a_corrupt_error_at_every_length() {
    let dir = TempDir::new("truncated");
    let (path, bytes) = persisted_bytes(&dir);
    assert!(load(&path).is_ok());
    for len in 0..bytes.len() {
        fs::write(&path, &bytes[..len]).unwrap();
        let result = load(&path);
        assert!(
            matches!(result, Err(Error::Corrupt(_))),
            "length {len}: {result:?}"
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
fn flat_index_file_foreign_file_and_missing_file_are_typed_errors() {
    let dir = TempDir::new("foreign");
    let flat_path = dir.file("flat.lxv");
    let flat = FlatIndex::builder(4).build().unwrap();
    flat.insert("a", &[1.0, 0.0, 0.0, 0.0], &scope(), None)
        .unwrap();
    flat.persist(&flat_path).unwrap();
    assert!(matches!(load(&flat_path), Err(Error::Corrupt(_))));
    let (hnsw_path, _) = persisted_bytes(&dir);
    assert!(matches!(
        FlatIndex::builder(4).load(&hnsw_path),
        Err(Error::Corrupt(_))
    ));

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
        HnswIndex::builder(8).load(&path),
        Err(Error::DimensionMismatch {
            expected: 8,
            actual: 4
        })
    ));
}

#[test]
fn persisting_into_a_missing_directory_is_an_io_error() {
    let dir = TempDir::new("missing-dir");
    let (idx, _) = index(2, 10);
    idx.insert("a", &[1.0, 0.0], &scope(), None).unwrap();
    let path = dir.file("no/such/dir/index.lxv");
    assert!(matches!(idx.persist(&path), Err(Error::Io { .. })));
}
