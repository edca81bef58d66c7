//! Compile-time behaviour of the attribute macros: misuse is a clear error at the right span
//! (tests/ui/*.rs with their .stderr), and a program using them builds and runs
//! (tests/ui/pass_*.rs). Regenerate the expected output with `TRYBUILD=overwrite`.

#[test]
fn macro_misuse_fails_to_compile_with_a_clear_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/not_async.rs");
    t.compile_fail("tests/ui/unknown_key_argument.rs");
    t.compile_fail("tests/ui/unknown_macro_argument.rs");
    t.compile_fail("tests/ui/missing_serialize.rs");
    t.compile_fail("tests/ui/bad_arguments.rs");
    t.pass("tests/ui/pass_without_global_cache.rs");
}
