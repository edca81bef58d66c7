//! `cargo xtask tidy`: workspace hygiene that neither rustc nor clippy checks.
//!
//! - every `.rs` file under `crates/` and `xtask/` (sources, tests, benches, examples) opens
//!   with a `//!` doc saying what it owns;
//! - every library crate's `lib.rs` has `#![deny(missing_docs)]`;
//! - every internal path dependency in `[workspace.dependencies]` carries a version, so the
//!   crates can be published;
//! - no dependency is built with a feature that leaks secrets ([`BANNED_FEATURES`]: fred's
//!   `network-logs`), with every feature of the workspace on, as `cargo metadata` resolves
//!   them. (`deny.toml` bans the same features for `cargo deny check bans`.)

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{cargo, workspace_root, Failure, Result};

/// Features of dependencies that must never be enabled: `(crate, feature, why)`.
///
/// fred's `debug-ids` is not here: it only numbers commands in fred's logs.
const BANNED_FEATURES: &[(&str, &str, &str)] = &[(
    "fred",
    "network-logs",
    "it logs the arguments of every command, so cached values and the password sent by \
     AUTH and HELLO would reach the logs",
)];

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

    match resolved_metadata().and_then(|metadata| banned_features(&metadata)) {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(format!("dependency features: {e}")),
    }

    if problems.is_empty() {
        eprintln!(
            "tidy: {} Rust files, the workspace manifest and the dependency features are tidy",
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

/// `cargo metadata` of the workspace with every feature on: the packages and the resolved
/// graph, with each package's enabled features.
fn resolved_metadata() -> Result<Value, String> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--all-features"])
        .output()
        .map_err(|e| format!("could not run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata --all-features` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("`cargo metadata` printed JSON that does not parse: {e}"))
}

/// One problem per [`BANNED_FEATURES`] entry enabled in `metadata` (the JSON of `cargo
/// metadata --format-version 1`).
///
/// # Errors
///
/// When `metadata` has no resolved graph, or no package a ban is about: a check that finds
/// nothing to look at would pass forever, so it says so instead.
fn banned_features(metadata: &Value) -> Result<Vec<String>, String> {
    let packages: HashMap<&str, (&str, &str)> = metadata
        .get("packages")
        .and_then(Value::as_array)
        .ok_or("no `packages` in the metadata")?
        .iter()
        .filter_map(|p| {
            let field = |name: &str| p.get(name).and_then(Value::as_str);
            Some((
                field("id")?,
                (field("name")?, field("version").unwrap_or("?")),
            ))
        })
        .collect();
    let nodes = metadata
        .pointer("/resolve/nodes")
        .and_then(Value::as_array)
        .ok_or("no resolved dependency graph in the metadata (was it run with --no-deps?)")?;

    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for node in nodes {
        let Some(&(name, version)) = node
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| packages.get(id))
        else {
            continue;
        };
        let enabled: Vec<&str> = node
            .get("features")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for &(krate, feature, why) in BANNED_FEATURES {
            if name != krate {
                continue;
            }
            seen.insert(krate);
            if enabled.contains(&feature) {
                found.push(format!(
                    "{name} {version} is built with its `{feature}` feature, which must stay \
                     off: {why}. Find what enables it with \
                     `cargo tree -e features -i {name} --workspace --all-features`"
                ));
            }
        }
    }
    for &(krate, feature, _) in BANNED_FEATURES {
        if !seen.contains(krate) {
            return Err(format!(
                "`{krate}` is not in the resolved dependency graph, so the ban on its \
                 `{feature}` feature checks nothing; update BANNED_FEATURES in xtask/src/tidy.rs"
            ));
        }
    }
    Ok(found)
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
    use super::{banned_features, unversioned_path_dependencies};

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

    /// `cargo metadata` JSON, as cargo 1.77+ writes package ids, with fred's features.
    fn metadata(fred_features: &[&str]) -> serde_json::Value {
        let fred = "registry+https://github.com/rust-lang/crates.io-index#fred@10.1.0";
        let redis = "path+file:///work/crates/redis#lexicache-redis@0.1.0";
        serde_json::json!({
            "packages": [
                { "id": fred, "name": "fred", "version": "10.1.0" },
                { "id": redis, "name": "lexicache-redis", "version": "0.1.0" },
            ],
            "resolve": {
                "nodes": [
                    { "id": redis, "features": ["network-logs"], "dependencies": [fred] },
                    { "id": fred, "features": fred_features, "dependencies": [] },
                ],
                "root": null,
            },
        })
    }

    #[test]
    fn fred_with_network_logs_is_reported() {
        let found = banned_features(&metadata(&["i-keys", "network-logs", "sentinel-auth"]))
            .expect("fred is in the graph");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("fred 10.1.0 is built with its `network-logs` feature"));
        assert!(
            found[0].contains("cargo tree -e features -i fred"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn fred_without_network_logs_is_clean_even_if_another_crate_has_a_feature_of_that_name() {
        let found = banned_features(&metadata(&["i-keys", "debug-ids", "sentinel-auth"]))
            .expect("fred is in the graph");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn metadata_without_fred_or_without_a_graph_is_an_error_not_a_pass() {
        let mut no_fred = metadata(&[]);
        no_fred["packages"][0]["name"] = "not-fred".into();
        let err = banned_features(&no_fred).unwrap_err();
        assert!(
            err.contains("`fred` is not in the resolved dependency graph"),
            "{err}"
        );

        let mut no_graph = metadata(&[]);
        no_graph["resolve"] = serde_json::Value::Null;
        let err = banned_features(&no_graph).unwrap_err();
        assert!(err.contains("no resolved dependency graph"), "{err}");
    }
}
