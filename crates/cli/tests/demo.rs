//! Runs the built `lexicache` binary the way a user does and checks its output and exit codes.

use std::process::{Command, Output};

fn lexicache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lexicache"))
        .args(args)
        .output()
        .expect("the lexicache binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_runs_the_stampede_loader_once_and_exits_zero() {
    let out = lexicache(&["demo"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("the loader ran 1 time;"),
        "no loader-ran-once line in:\n{stdout}"
    );
    assert!(stdout.contains("delete_pattern(\"user:*\") removed 5 keys"));
    assert!(stdout.contains("(expired)"));
    assert!(stdout.contains("hit rate"));
}

#[test]
fn out_of_range_option_is_a_usage_error_with_code_2() {
    let out = lexicache(&["demo", "--callers", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--callers"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
}

#[test]
fn help_texts_show_an_example() {
    let top = lexicache(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    assert!(text(&top.stdout).contains("lexicache demo"));

    let demo = lexicache(&["demo", "--help"]);
    assert_eq!(demo.status.code(), Some(0));
    assert!(text(&demo.stdout).contains("Example:"));
}
