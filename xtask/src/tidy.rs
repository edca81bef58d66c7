//! `cargo xtask tidy`: workspace hygiene that neither rustc nor clippy checks.
//!
//! - every `.rs` file under `crates/` and `xtask/` (sources, tests, benches, examples) opens
//!   with a `//!` doc saying what it owns;
//! - every library crate's `lib.rs` has `#![deny(missing_docs)]`;
//! - every internal path dependency in `[workspace.dependencies]` carries a version, so the
//!   crates can be published.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{workspace_root, Failure, Result};

/// Runs every check and reports all problems at once.
pub(crate) fn tidy() -> Result {
    let root = workspace_root();
    let mut problems = Vec::new();

    let mut files = Vec::new();
    for dir in ["crates", "xtask"] {
        collect_rs_files(&root.join(dir), &mut files)
            .map_err(|e| Failure::new(format!("reading {dir}/: {e}")))?;
    }
    files.sort();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = match fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{rel}: cannot read: {e}"));
                continue;
            }
        };
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{rel}: must start with a `//!` doc saying what the file owns"
            ));
        }
        let is_crate_lib = file.ends_with("src/lib.rs")
            && file.strip_prefix(root.join("crates")).is_ok_and(|p| {
                p.components().count() == 3 // <crate>/src/lib.rs
            });
        if is_crate_lib && !text.contains("#![deny(missing_docs)]") {
            problems.push(format!(
                "{rel}: library crates need `#![deny(missing_docs)]`"
            ));
        }
    }

    let manifest_path = root.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .map_err(|e| Failure::new(format!("reading Cargo.toml: {e}")))?;
    for name in unversioned_path_dependencies(&manifest) {
        problems.push(format!(
            "Cargo.toml: [workspace.dependencies] `{name}` is a path dependency without a version"
        ));
    }

    if problems.is_empty() {
        eprintln!(
            "tidy: {} Rust files and the workspace manifest are tidy",
            files.len()
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(Failure::new(format!(
            "tidy found {} problem(s)",
            problems.len()
        )))
    }
}

/// Every `.rs` file below `dir`, skipping build output and hidden directories.
fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rs_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Names of `[workspace.dependencies]` entries that have a `path` but no `version`.
///
/// It understands the two forms the manifest uses: inline tables
/// (`name = { path = "..", version = ".." }`) and dotted tables
/// (`[workspace.dependencies.name]` followed by keys). A line-based reading is enough for that
/// and keeps xtask free of a TOML dependency.
fn unversioned_path_dependencies(manifest: &str) -> Vec<String> {
    #[derive(Default)]
    struct Table {
        name: String,
        path: bool,
        version: bool,
    }

    let mut found = Vec::new();
    let mut in_deps = false;
    let mut table: Option<Table> = None;
    let finish = |table: Option<Table>, found: &mut Vec<String>| {
        if let Some(t) = table {
            if t.path && !t.version {
                found.push(t.name);
            }
        }
    };

    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            finish(table.take(), &mut found);
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_deps = header == "workspace.dependencies";
            if let Some(name) = header.strip_prefix("workspace.dependencies.") {
                table = Some(Table {
                    name: name.to_owned(),
                    ..Table::default()
                });
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some(t) = table.as_mut() {
            t.path |= key == "path";
            t.version |= key == "version";
        } else if in_deps && value.starts_with('{') {
            let keys: Vec<&str> = value
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim()))
                .collect();
            if keys.contains(&"path") && !keys.contains(&"version") {
                found.push(key.to_owned());
            }
        }
    }
    finish(table, &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::unversioned_path_dependencies;

    #[test]
    fn path_dependency_without_version_is_reported() {
        let manifest = r#"
[workspace.dependencies]
a = { path = "crates/a", version = "0.1.0" }
b = { path = "crates/b" }
serde = { version = "1", features = ["derive"] }

[workspace.dependencies.c]
path = "crates/c"

[workspace.dependencies.d]
path = "crates/d"
version = "0.1.0"

[dependencies]
e = { path = "crates/e" }
"#;
        assert_eq!(unversioned_path_dependencies(manifest), ["b", "c"]);
    }

    #[test]
    fn versioned_manifest_is_clean() {
        let manifest = "[workspace.dependencies]\nx = { path = \"x\", version = \"1\" }\n";
        assert!(unversioned_path_dependencies(manifest).is_empty());
    }
}
