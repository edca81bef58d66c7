//! `MiniLmEmbedder` against the real all-MiniLM-L6-v2 files (feature `candle`).
//!
//! The model comes from `cargo xtask fetch-models`; these tests read `$LEXICACHE_MODEL_DIR`
//! and fail (never skip) when it is unset or the files are missing.
//!
//! The pinned cosines were computed by an independent implementation,
//! `tools/minilm_reference.py` (a float64 numpy BERT over the same files, one sentence at a
//! time without padding); see that script for how to rerun it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use lexicache_semantic::{EmbeddingClient, Error, MiniLmEmbedder};

/// Agreement required with the numpy reference.
const TOLERANCE: f32 = 1e-3;

// Output of `python3 tools/minilm_reference.py` (keep the sentences in sync with it).
const PASSWORD_PARAPHRASE: f32 = 0.860138; // 'How do I reset my password?' vs 'How can I change my password?'
const PASSWORD_RECOVER: f32 = 0.805866; // 'How do I reset my password?' vs "What's the procedure to recover my account password?"
const CAPITAL_PARAPHRASE: f32 = 0.941636; // 'What is the capital of France?' vs 'Which city is the capital of France?'
const UNRELATED_PIZZA: f32 = 0.030774; // 'How do I reset my password?' vs 'The best pizza toppings in Naples'
const UNRELATED_BATTERY: f32 = -0.041275; // 'What is the capital of France?' vs 'My laptop battery drains too quickly.'
const NEGATION: f32 = 0.987362; // 'Can I cancel my subscription?' vs 'Can I not cancel my subscription?'
/// The reference's first four components of "How do I reset my password?".
const PASSWORD_HEAD: [f32; 4] = [0.006903, -0.063023, -0.072044, -0.032496];

const RESET: &str = "How do I reset my password?";
const CAPITAL: &str = "What is the capital of France?";

/// `$LEXICACHE_MODEL_DIR/all-MiniLM-L6-v2`, or a panic telling how to get it.
fn model_dir() -> PathBuf {
    let hint =
        "run `cargo xtask fetch-models` and export LEXICACHE_MODEL_DIR=<the directory it prints> \
                (e.g. LEXICACHE_MODEL_DIR=$PWD/target/models)";
    let root = std::env::var_os("LEXICACHE_MODEL_DIR")
        .unwrap_or_else(|| panic!("LEXICACHE_MODEL_DIR is not set: {hint}"));
    let dir = PathBuf::from(root).join("all-MiniLM-L6-v2");
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: {hint}",
            dir.join(file).display()
        );
    }
    dir
}

/// One embedder for the whole test binary (loading reads 90 MB).
fn embedder() -> &'static MiniLmEmbedder {
    static EMBEDDER: OnceLock<MiniLmEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        model_dir(); // a clear panic message first, when the files are missing
        MiniLmEmbedder::from_env().expect("load all-MiniLM-L6-v2")
    })
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

async fn embed_one(text: &str) -> Vec<f32> {
    embedder().embed(&[text]).await.unwrap().remove(0)
}

#[tokio::test]
async fn cosines_match_the_independent_numpy_reference() {
    let pairs = [
        (RESET, "How can I change my password?", PASSWORD_PARAPHRASE),
        (
            RESET,
            "What's the procedure to recover my account password?",
            PASSWORD_RECOVER,
        ),
        (
            CAPITAL,
            "Which city is the capital of France?",
            CAPITAL_PARAPHRASE,
        ),
        (RESET, "The best pizza toppings in Naples", UNRELATED_PIZZA),
        (
            CAPITAL,
            "My laptop battery drains too quickly.",
            UNRELATED_BATTERY,
        ),
        (
            "Can I cancel my subscription?",
            "Can I not cancel my subscription?",
            NEGATION,
        ),
    ];
    for (a, b, want) in pairs {
        let got = cos(&embed_one(a).await, &embed_one(b).await);
        assert!(
            (got - want).abs() < TOLERANCE,
            "{a:?} vs {b:?}: got {got}, reference {want}"
        );
    }
    let v = embed_one(RESET).await;
    assert!(
        max_abs_diff(&v[..4], &PASSWORD_HEAD) < TOLERANCE,
        "{:?}",
        &v[..4]
    );
}

#[tokio::test]
async fn paraphrase_scores_about_0_80_and_unrelated_text_below_0_1() {
    // The figures the issue quotes for this model.
    let v = embedder()
        .embed(&[
            RESET,
            "What's the procedure to recover my account password?",
            "The best pizza toppings in Naples",
        ])
        .await
        .unwrap();
    let paraphrase = cos(&v[0], &v[1]);
    let unrelated = cos(&v[0], &v[2]);
    assert!((0.75..0.85).contains(&paraphrase), "{paraphrase}");
    assert!(unrelated < 0.1, "{unrelated}");
}

#[tokio::test]
async fn vectors_have_384_unit_length_dimensions() {
    let e = embedder();
    assert_eq!(e.dimension(), 384);
    assert_eq!(e.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
    let texts = [RESET, "?!", "a", CAPITAL];
    for v in e.embed(&texts).await.unwrap() {
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[tokio::test]
async fn batch_padding_does_not_change_a_texts_vector() {
    // In a batch the short texts are padded to the long one; the mask must hide the padding.
    let long = "I have been trying to log in to my account for three days, and every time I \
                enter my password the page reloads and asks me again; how do I reset it?";
    let texts = ["hi", RESET, long, "Reset password", CAPITAL];
    let batch = embedder().embed(&texts).await.unwrap();
    for (text, in_batch) in texts.iter().zip(&batch) {
        let alone = embed_one(text).await;
        let diff = max_abs_diff(&alone, in_batch);
        assert!(diff < 1e-5, "{text:?}: batch vs single differ by {diff}");
    }
}

#[tokio::test]
async fn batch_results_follow_input_order_across_chunks() {
    // Batches are sorted by length internally and split into chunks; the output must still
    // be in input order. A batch size of 2 forces several chunks.
    let small = embedder().clone().with_batch_size(2).unwrap();
    assert_eq!(small.batch_size(), 2);
    let texts = [
        "a much longer sentence about the weather in Oslo tomorrow afternoon",
        "short",
        CAPITAL,
        "mid length text here",
        RESET,
    ];
    let forward = small.embed(&texts).await.unwrap();
    let mut reversed_texts = texts;
    reversed_texts.reverse();
    let mut reversed = small.embed(&reversed_texts).await.unwrap();
    reversed.reverse();
    for (i, text) in texts.iter().enumerate() {
        let alone = embed_one(text).await;
        assert!(max_abs_diff(&alone, &forward[i]) < 1e-5, "{text:?}");
        assert!(max_abs_diff(&alone, &reversed[i]) < 1e-5, "{text:?}");
    }
    assert!(cos(&forward[0], &forward[1]) < 0.9);
}

#[tokio::test]
async fn very_long_input_is_truncated_at_256_tokens() {
    // 2,000 words are far past the model's 512 positions: truncated, not an error.
    let long = "word ".repeat(2000);
    let longer = format!("{long} and then something completely different at the end");
    let v = embedder().embed(&[&long, &longer]).await.unwrap();
    assert_eq!(v[0].len(), 384);
    assert!(
        max_abs_diff(&v[0], &v[1]) < 1e-6,
        "text past the limit changed the vector"
    );

    // A difference at token ~200 still counts: the limit is 256, not the shipped 128.
    let prefix = "apple ".repeat(200);
    let a = embed_one(&format!("{prefix} banana")).await;
    let b = embed_one(&format!("{prefix} rocket launch")).await;
    assert!(max_abs_diff(&a, &b) > 1e-4, "tokens 129..256 were dropped");
}

#[tokio::test]
async fn embeddings_are_deterministic_across_calls_and_instances() {
    let texts = [RESET, CAPITAL, "something else entirely"];
    let first = embedder().embed(&texts).await.unwrap();
    let second = embedder().embed(&texts).await.unwrap();
    assert_eq!(first, second);
    let fresh = MiniLmEmbedder::from_dir(model_dir()).unwrap();
    assert_eq!(fresh.embed(&texts).await.unwrap(), first);
}

#[tokio::test]
async fn text_without_tokens_is_invalid_input_and_an_empty_batch_is_empty() {
    let e = embedder();
    for bad in ["", "   ", "\n\t \u{0}"] {
        let err = e.embed(&[RESET, bad]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad:?}: {err:?}");
        assert!(err.to_string().contains("text #1"), "{err}");
    }
    assert!(e.embed(&[]).await.unwrap().is_empty());
    // Punctuation alone has tokens, so it embeds.
    assert_eq!(e.embed(&["?"]).await.unwrap()[0].len(), 384);
}

#[test]
fn missing_model_directory_is_a_typed_error_that_says_how_to_fetch() {
    let dir = std::env::temp_dir().join("lexicache-minilm-test-no-such-dir");
    let err = MiniLmEmbedder::from_dir(&dir).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("cargo xtask fetch-models"), "{msg}");
    assert!(msg.contains("LEXICACHE_MODEL_DIR"), "{msg}");
}

#[test]
fn damaged_model_files_are_embedding_errors_not_panics() {
    let dir = std::env::temp_dir().join(format!("lexicache-minilm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let real = model_dir();
    std::fs::copy(real.join("config.json"), dir.join("config.json")).unwrap();
    std::fs::copy(real.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let err = MiniLmEmbedder::from_dir(&dir).unwrap_err();
    assert!(matches!(err, Error::Embedding(_)), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    let err = MiniLmEmbedder::from_dir(&dir).unwrap_err();
    assert!(matches!(err, Error::Embedding(_)), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zero_batch_size_is_invalid_input() {
    let err = embedder().clone().with_batch_size(0).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[test]
fn debug_names_the_model_without_dumping_weights() {
    let e = embedder();
    let debug = format!("{e:?}");
    assert!(
        debug.contains("sentence-transformers/all-MiniLM-L6-v2"),
        "{debug}"
    );
    assert!(!debug.contains("Tensor"), "{debug}");
    assert!(debug.len() < 400, "{debug}");
    assert_eq!(e.dir(), model_dir());
}

#[tokio::test(flavor = "current_thread")]
async fn embed_runs_off_the_async_thread() {
    // On a single-threaded runtime, a task polled alongside `embed` only makes progress if
    // the model runs elsewhere (the blocking pool) while `embed` is pending.
    let texts: Vec<String> = (0..64)
        .map(|i| format!("question number {i} about resetting a password"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let done = AtomicBool::new(false);
    let ticks = AtomicUsize::new(0);
    let (vectors, ()) = tokio::join!(
        async {
            let v = embedder().embed(&refs).await;
            done.store(true, Ordering::SeqCst);
            v
        },
        async {
            while !done.load(Ordering::SeqCst) {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }
    );
    assert_eq!(vectors.unwrap().len(), 64);
    assert!(ticks.load(Ordering::SeqCst) > 0);
}

#[test]
fn embed_blocking_matches_embed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let texts = [RESET, CAPITAL];
    let blocking = embedder().embed_blocking(&texts).unwrap();
    let asynchronous = rt.block_on(embedder().embed(&texts)).unwrap();
    assert_eq!(blocking, asynchronous);
}
