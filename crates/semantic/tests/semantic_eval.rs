//! The semantic evaluation on the real `fow-cache` pairs with the real MiniLM model, at the
//! default settings (`DEFAULT_SIMILARITY_THRESHOLD` and `Guards::default()`), through the
//! real `SemanticCache`: what CI checks. It shares its code with
//! `examples/semantic_eval.rs` (`cargo xtask semantic-eval`).

#[allow(dead_code)]
#[path = "../examples/semantic_eval.rs"]
mod semantic_eval;

use std::path::{Path, PathBuf};

const FETCH: &str = "run `cargo xtask fetch-models`, then `export LEXICACHE_MODEL_DIR=...` \
                     as it prints (CI's `.ci/run` does both)";

/// The pairs file, or a panic saying how to fetch it.
fn pairs_file() -> PathBuf {
    let path = semantic_eval::default_pairs().unwrap_or_else(|e| panic!("{e}"));
    assert!(path.is_file(), "{} is missing: {FETCH}", path.display());
    path
}

#[test]
fn default_settings_serve_at_least_60_percent_of_should_hit_pairs_and_at_most_5_percent_of_traps() {
    let path = pairs_file();
    let (report, default) = semantic_eval::evaluate(&path, None)
        .unwrap_or_else(|e| panic!("the evaluation failed: {e}; {FETCH}"));
    let last = report.lines().last().unwrap_or_default();
    assert!(last.starts_with("default: should-hit served "), "{report}");
    assert!(
        default.should_hit >= 60.0 && default.traps <= 5.0,
        "target: >= 60% should-hit served with <= 5% traps served\n{report}"
    );
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "lexicache-semantic-eval-{name}-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("write the scratch pairs file");
    path
}

#[track_caller]
fn load_error(name: &str, text: &str) -> String {
    let path = scratch(name, text);
    let result = semantic_eval::load_pairs(&path);
    let _ = std::fs::remove_file(&path);
    result.expect_err("the file is malformed")
}

#[test]
fn a_malformed_pairs_line_is_an_error_naming_its_line_number() {
    let good = r#"{"a": "x", "b": "y", "same_answer": true, "category": "paraphrase"}"#;
    let err = load_error("json", &format!("{good}\n\n{good}\n{{not json\n"));
    assert!(err.contains(":4: not a valid JSON object"), "{err}");

    let err = load_error(
        "field",
        &format!("{good}\n{{\"a\": \"x\", \"same_answer\": true, \"category\": \"c\"}}\n"),
    );
    assert!(err.contains(":2: field `b` is missing"), "{err}");

    let err = load_error(
        "bool",
        r#"{"a": "x", "b": "y", "same_answer": "yes", "category": "c"}"#,
    );
    assert!(err.contains(":1: field `same_answer`"), "{err}");

    let err = load_error("empty", "\n\n");
    assert!(err.contains("holds no pairs"), "{err}");
}

#[test]
fn pairs_without_an_id_are_numbered_by_line() {
    let path = scratch(
        "ids",
        concat!(
            r#"{"id": "negation-a007", "a": "x", "b": "y", "same_answer": false, "category": "negation"}"#,
            "\n",
            r#"{"a": "p", "b": "q", "same_answer": true, "category": "paraphrase", "style": "minimal"}"#,
            "\n"
        ),
    );
    let pairs = semantic_eval::load_pairs(&path);
    let _ = std::fs::remove_file(&path);
    let pairs = pairs.expect("valid file");
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        (pairs[0].id.as_str(), pairs[0].number),
        ("negation-a007", 7)
    );
    assert_eq!((pairs[1].id.as_str(), pairs[1].number), ("line-2", 2));
    assert_eq!(pairs[1].style, "minimal");
    assert!(!Path::new(&path).exists());
}
