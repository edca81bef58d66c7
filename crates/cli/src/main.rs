//! The `lexicache` binary: everything lives in the `lexicache_cli` library, so it is documented
//! and testable; this file only hands the process over to it.

fn main() -> std::process::ExitCode {
    lexicache_cli::run_cli()
}
