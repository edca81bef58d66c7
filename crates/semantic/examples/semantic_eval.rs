//! The semantic-cache evaluation (`cargo xtask semantic-eval`): for every pair of a JSONL
//! file of question pairs, store `a`, look up `b`, and count how often the cache serves
//! `a`'s answer — it should for the pairs marked `same_answer` ("should-hit": paraphrases,
//! near-repeats) and must not for the others ("traps": negation, entity swap, number/date,
//! scope).
//!
//! ```text
//! cargo run --release -p lexicache-semantic --features candle --example semantic_eval -- \
//!     [--pairs FILE] [--threshold T] [--dump FILE]
//! ```
//!
//! `--pairs` defaults to `$LEXICACHE_MODEL_DIR/fow-cache/pairs.jsonl` (the public `fow-cache`
//! benchmark, fetched by `cargo xtask fetch-models`). Each line is a JSON object with `a`,
//! `b`, `same_answer` and `category` (and optionally `id` and `style`). Every query is
//! embedded once with all-MiniLM-L6-v2 ([`MiniLmEmbedder::from_env`]).
//!
//! The tables sweep the similarity threshold with and without guards, with each guard alone
//! and each guard removed, per category, and on the odd and even pair ids separately (the
//! guards were developed on the odd ids; the even ids are held out). They compute "served"
//! as the cache decides it: tier 1 when the normalized queries are equal, else tier 2 when
//! the cosine reaches the threshold and the guards pass. The last line runs the real
//! [`SemanticCache`] at its default settings (one scope per pair, store `a`, look up `b`)
//! and prints `default: should-hit served X% traps served Y%`.
//!
//! `--threshold T` puts the per-guard and per-category tables (and the fine steps of the
//! sweep) at `T` instead of the default threshold; the last line is still the defaults.
//! `--dump FILE` writes one tab-separated line per pair (id, category, style, same_answer,
//! cosine, served at the default settings, the rejecting guard and its reason).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lexicache_memory::MemoryBackend;
use lexicache_semantic::{
    normalize_query, EmbeddingClient, FlatIndex, GuardKind, Guards, MiniLmEmbedder, Scope,
    SemanticCache, DEFAULT_SIMILARITY_THRESHOLD,
};

/// One line of the pairs file.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    /// `id`, or `line-N` when the line has none.
    pub(crate) id: String,
    /// The stored query.
    pub(crate) a: String,
    /// The looked-up query.
    pub(crate) b: String,
    /// Whether `a`'s answer is right for `b`.
    pub(crate) same_answer: bool,
    /// `paraphrase`, `negation`, ...
    pub(crate) category: String,
    /// `minimal` or `reworded`, when given.
    pub(crate) style: String,
    /// The number in the id (or the line number): odd ids are the development half.
    pub(crate) number: u64,
}

/// Reads a pairs file: one JSON object per non-blank line. Any malformed line is an error
/// naming the file and the line number.
pub(crate) fn load_pairs(path: &Path) -> Result<Vec<Pair>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the pairs file {}: {e}; run `cargo xtask fetch-models` and \
             `export LEXICACHE_MODEL_DIR=...`, or pass --pairs FILE",
            path.display()
        )
    })?;
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{line_no}", path.display());
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("{}: not a valid JSON object: {e}", at()))?;
        let string = |field: &str| -> Result<String, String> {
            value
                .get(field)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: field `{field}` is missing or not a string", at()))
        };
        let same_answer = value
            .get("same_answer")
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| format!("{}: field `same_answer` is missing or not a boolean", at()))?;
        let id = value
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| format!("line-{line_no}"), str::to_owned);
        let digits: String = id.chars().filter(char::is_ascii_digit).collect();
        let number = digits.parse().unwrap_or(line_no as u64);
        pairs.push(Pair {
            a: string("a")?,
            b: string("b")?,
            same_answer,
            category: string("category")?,
            style: value
                .get("style")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned(),
            id,
            number,
        });
    }
    if pairs.is_empty() {
        return Err(format!("{} holds no pairs", path.display()));
    }
    Ok(pairs)
}

/// A pair with what the model says about it.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    pub(crate) pair: Pair,
    /// Cosine similarity of the two embeddings, clamped to [0, 1] as the indexes report it.
    pub(crate) cosine: f32,
    /// Whether the normalized queries are equal (tier 1 answers).
    pub(crate) exact: bool,
}

/// Embeds every query once. The returned map holds each distinct text's vector.
pub(crate) fn embed_all(
    embedder: &MiniLmEmbedder,
    pairs: &[Pair],
) -> Result<HashMap<String, Vec<f32>>, String> {
    let mut texts: Vec<&str> = pairs
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .collect();
    texts.sort_unstable();
    texts.dedup();
    let vectors = embedder
        .embed_blocking(&texts)
        .map_err(|e| format!("embedding failed: {e}"))?;
    Ok(texts.into_iter().map(str::to_owned).zip(vectors).collect())
}

/// Scores every pair with the embeddings of [`embed_all`].
pub(crate) fn score(pairs: &[Pair], vectors: &HashMap<String, Vec<f32>>) -> Vec<Scored> {
    pairs
        .iter()
        .map(|p| {
            let (va, vb) = (&vectors[&p.a], &vectors[&p.b]);
            let cosine: f32 = va.iter().zip(vb).map(|(x, y)| x * y).sum();
            Scored {
                pair: p.clone(),
                cosine: cosine.clamp(0.0, 1.0),
                exact: normalize_query(&p.a) == normalize_query(&p.b),
            }
        })
        .collect()
}

/// Whether the cache serves `a`'s answer to `b` at `threshold` with `guards`.
pub(crate) fn served(s: &Scored, threshold: f32, guards: &Guards) -> bool {
    s.exact || (s.cosine >= threshold && guards.check(&s.pair.b, &s.pair.a).is_ok())
}

/// Share of should-hit pairs served and of traps served, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    pub(crate) should_hit: f64,
    pub(crate) traps: f64,
}

pub(crate) fn rates<'a>(
    scored: impl IntoIterator<Item = &'a Scored>,
    threshold: f32,
    guards: &Guards,
) -> Rates {
    Rates::of(
        scored
            .into_iter()
            .map(|s| (s.pair.same_answer, served(s, threshold, guards))),
    )
}

impl Rates {
    /// The rates of `(same_answer, served)` outcomes, one per pair.
    fn of(outcomes: impl IntoIterator<Item = (bool, bool)>) -> Rates {
        let (mut hits, mut hit_total, mut traps, mut trap_total) = (0u32, 0u32, 0u32, 0u32);
        for (same_answer, served) in outcomes {
            if same_answer {
                hit_total += 1;
                hits += u32::from(served);
            } else {
                trap_total += 1;
                traps += u32::from(served);
            }
        }
        let pct = |n: u32, d: u32| {
            if d == 0 {
                0.0
            } else {
                100.0 * f64::from(n) / f64::from(d)
            }
        };
        Rates {
            should_hit: pct(hits, hit_total),
            traps: pct(traps, trap_total),
        }
    }
}

/// An embedder answering from precomputed vectors, so the store run re-embeds nothing.
#[derive(Debug)]
struct Precomputed {
    vectors: HashMap<String, Vec<f32>>,
    dim: usize,
}

#[async_trait]
impl EmbeddingClient for Precomputed {
    async fn embed(&self, texts: &[&str]) -> lexicache_semantic::Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| {
                self.vectors.get(*t).cloned().ok_or_else(|| {
                    lexicache_semantic::Error::Embedding(format!("no precomputed vector for {t:?}"))
                })
            })
            .collect()
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn model_id(&self) -> &str {
        "all-MiniLM-L6-v2 (precomputed)"
    }
}

/// Runs the real [`SemanticCache`] at its default settings: for each pair, in a scope of its
/// own, store `a`, look up `b`. Returns the rates and, per pair, whether it was served.
pub(crate) fn store_run(
    pairs: &[Pair],
    vectors: HashMap<String, Vec<f32>>,
) -> Result<(Rates, Vec<bool>), String> {
    let dim = vectors.values().next().map_or(0, Vec::len);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let index = FlatIndex::builder(dim)
            .build()
            .map_err(|e| format!("cannot build the index: {e}"))?;
        let cache = SemanticCache::builder(
            Arc::new(MemoryBackend::new()),
            Arc::new(Precomputed { vectors, dim }),
            Arc::new(index),
        )
        .build()
        .map_err(|e| format!("cannot build the cache: {e}"))?;
        let mut served = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let scope = Scope::new(format!("pair-{i}"), "semantic-eval", "");
            cache
                .store(&scope, &pair.a, "answer", "semantic-eval")
                .await
                .map_err(|e| format!("store failed for {}: {e}", pair.id))?;
            let hit = cache
                .lookup(&scope, &pair.b)
                .await
                .map_err(|e| format!("lookup failed for {}: {e}", pair.id))?
                .is_hit();
            served.push(hit);
        }
        let rates = Rates::of(
            pairs
                .iter()
                .map(|p| p.same_answer)
                .zip(served.iter().copied()),
        );
        Ok((rates, served))
    })
}

/// The whole evaluation: the tables, then the default settings through the real store.
/// Returns the report (its last line is the `default:` line) and the default rates.
// The test (tests/semantic_eval.rs) calls this; the binary goes through `evaluate_at`.
#[allow(dead_code)]
pub(crate) fn evaluate(pairs_path: &Path, dump: Option<&Path>) -> Result<(String, Rates), String> {
    evaluate_at(pairs_path, dump, DEFAULT_SIMILARITY_THRESHOLD)
}

/// [`evaluate`] with the per-guard, per-category and fine-grained rows at `threshold`
/// (the last line is still the cache's default settings).
pub(crate) fn evaluate_at(
    pairs_path: &Path,
    dump: Option<&Path>,
    threshold: f32,
) -> Result<(String, Rates), String> {
    let pairs = load_pairs(pairs_path)?;
    let embedder = MiniLmEmbedder::from_env().map_err(|e| format!("cannot load MiniLM: {e}"))?;
    let vectors = embed_all(&embedder, &pairs)?;
    let scored = score(&pairs, &vectors);
    let mut out = String::new();
    report(&mut out, pairs_path, &scored, threshold);

    let (default, served) = store_run(&pairs, vectors)?;
    let direct = rates(&scored, DEFAULT_SIMILARITY_THRESHOLD, &Guards::default());
    if (direct.should_hit - default.should_hit).abs() > 1e-9
        || (direct.traps - default.traps).abs() > 1e-9
    {
        let _ = writeln!(
            out,
            "note: the store served {:.1}% / {:.1}% where the direct computation says \
             {:.1}% / {:.1}%",
            default.should_hit, default.traps, direct.should_hit, direct.traps
        );
    }
    if let Some(dump) = dump {
        write_dump(dump, &scored, &served)?;
    }
    let _ = write!(
        out,
        "default: should-hit served {:.1}% traps served {:.1}%",
        default.should_hit, default.traps
    );
    Ok((out, default))
}

fn write_dump(path: &Path, scored: &[Scored], served: &[bool]) -> Result<(), String> {
    let guards = Guards::default();
    let mut text =
        String::from("id\tcategory\tstyle\tsame_answer\tcosine\tserved\tguard\treason\n");
    for (s, served) in scored.iter().zip(served) {
        let (guard, reason) = match guards.check(&s.pair.b, &s.pair.a) {
            Ok(()) => (String::new(), String::new()),
            Err(r) => (r.guard.to_string(), r.reason),
        };
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{:.4}\t{}\t{guard}\t{reason}",
            s.pair.id, s.pair.category, s.pair.style, s.pair.same_answer, s.cosine, served
        );
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn thresholds(d: f32) -> Vec<f32> {
    let mut t: Vec<f32> = (0..=5).map(|i| 0.70 + 0.05 * i as f32).collect();
    t.extend((-4..=4).map(|i| d + 0.01 * i as f32));
    t.retain(|x| (0.0..=1.0).contains(x));
    t.sort_by(f32::total_cmp);
    t.dedup_by(|x, y| (*x - *y).abs() < 1e-4);
    t
}

fn cell(r: Rates) -> String {
    format!("{:5.1}% {:5.1}%", r.should_hit, r.traps)
}

fn report(out: &mut String, path: &Path, scored: &[Scored], d: f32) {
    let hits = scored.iter().filter(|s| s.pair.same_answer).count();
    let _ = writeln!(
        out,
        "semantic-eval: {} pairs from {} ({hits} should-hit, {} traps), all-MiniLM-L6-v2",
        scored.len(),
        path.display(),
        scored.len() - hits
    );
    let _ = writeln!(
        out,
        "served = tier 1 (equal normalized queries) or tier 2 (cosine >= threshold and the guards pass)"
    );
    let _ = writeln!(out, "each cell: should-hit served %, traps served %\n");

    let _ = writeln!(out, "threshold | no guards     | all guards");
    for t in thresholds(d) {
        let marker = if (t - DEFAULT_SIMILARITY_THRESHOLD).abs() < 1e-4 {
            " <- default"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "     {t:.2} | {} | {}{marker}",
            cell(rates(scored, t, &Guards::none())),
            cell(rates(scored, t, &Guards::default()))
        );
    }

    let _ = writeln!(out, "\nat threshold {d:.2}:");
    let _ = writeln!(out, "guard        | alone         | all but this one");
    for kind in GuardKind::ALL {
        let alone = Guards::none().with(kind, true);
        let without = Guards::default().with(kind, false);
        let _ = writeln!(
            out,
            "{:<12} | {} | {}",
            kind.name(),
            cell(rates(scored, d, &alone)),
            cell(rates(scored, d, &without))
        );
    }

    let _ = writeln!(out, "\nper category at threshold {d:.2} (% served):");
    let _ = writeln!(out, "category     | pairs | no guards | all guards");
    let mut categories: Vec<&str> = scored.iter().map(|s| s.pair.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    for category in categories {
        let of: Vec<&Scored> = scored
            .iter()
            .filter(|s| s.pair.category == category)
            .collect();
        let pct = |guards: &Guards| {
            let n = of.iter().filter(|s| served(s, d, guards)).count();
            100.0 * n as f64 / of.len() as f64
        };
        let _ = writeln!(
            out,
            "{category:<12} | {:5} | {:8.1}% | {:9.1}%",
            of.len(),
            pct(&Guards::none()),
            pct(&Guards::default())
        );
    }

    let _ = writeln!(
        out,
        "\nby half (the guards and the default threshold were chosen on the odd ids; the even \
         ids are held out):"
    );
    let half = |odd: bool| -> Vec<&Scored> {
        scored
            .iter()
            .filter(|s| (s.pair.number % 2 == 1) == odd)
            .collect()
    };
    let (odd, even) = (half(true), half(false));
    let _ = writeln!(
        out,
        "threshold | odd ({:3}): no guards | all guards    | even ({:3}): no guards | all guards",
        odd.len(),
        even.len()
    );
    for t in thresholds(d) {
        let marker = if (t - DEFAULT_SIMILARITY_THRESHOLD).abs() < 1e-4 {
            " <- default"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "     {t:.2} |      {} | {} |       {} | {}{marker}",
            cell(rates(odd.iter().copied(), t, &Guards::none())),
            cell(rates(odd.iter().copied(), t, &Guards::default())),
            cell(rates(even.iter().copied(), t, &Guards::none())),
            cell(rates(even.iter().copied(), t, &Guards::default()))
        );
    }
    let _ = writeln!(out);
}

/// The default pairs file: `$LEXICACHE_MODEL_DIR/fow-cache/pairs.jsonl`.
pub(crate) fn default_pairs() -> Result<PathBuf, String> {
    std::env::var_os("LEXICACHE_MODEL_DIR")
        .filter(|v| !v.is_empty())
        .map(|dir| Path::new(&dir).join("fow-cache").join("pairs.jsonl"))
        .ok_or_else(|| {
            "LEXICACHE_MODEL_DIR is not set: run `cargo xtask fetch-models`, then \
             `export LEXICACHE_MODEL_DIR=...` as it prints (or pass --pairs FILE and set it \
             for the model)"
                .to_owned()
        })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let mut pairs = None;
    let mut dump = None;
    let mut threshold = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--pairs" => &mut pairs,
            "--dump" => &mut dump,
            "--threshold" => &mut threshold,
            "-h" | "--help" => {
                println!("usage: semantic_eval [--pairs FILE] [--threshold T] [--dump FILE]");
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("semantic_eval: unknown argument `{other}` (usage: semantic_eval [--pairs FILE] [--threshold T] [--dump FILE])");
                return std::process::ExitCode::from(2);
            }
        };
        match args.next() {
            Some(value) => *target = Some(PathBuf::from(value)),
            None => {
                eprintln!("semantic_eval: {arg} needs a value");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let threshold = match threshold.map(|t| t.to_string_lossy().parse::<f32>()) {
        None => DEFAULT_SIMILARITY_THRESHOLD,
        Some(Ok(t)) if (0.0..=1.0).contains(&t) => t,
        Some(_) => {
            eprintln!("semantic_eval: --threshold needs a number in [0, 1]");
            return std::process::ExitCode::from(2);
        }
    };
    let result = pairs
        .map_or_else(default_pairs, Ok)
        .and_then(|path| evaluate_at(&path, dump.as_deref(), threshold));
    match result {
        Ok((report, _)) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("semantic_eval: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
