//! The generated blocks of docs/benchmarks.md: everything between
//! `<!-- bench-report:begin NAME -->` and `<!-- bench-report:end NAME -->` belongs to the report;
//! everything outside the markers is prose the regeneration keeps byte for byte.

use std::collections::BTreeMap;
use std::fmt;

const BEGIN: &str = "<!-- bench-report:begin ";
const END: &str = "<!-- bench-report:end ";
const CLOSE: &str = " -->";

/// Why a document's markers cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MarkerError {
    /// A `begin` with no `end` of the same name after it.
    Unclosed { name: String, line: usize },
    /// An `end` with no open `begin`, or one that closes a different name.
    UnexpectedEnd { name: String, line: usize },
    /// A `begin` inside another block.
    Nested {
        name: String,
        inside: String,
        line: usize,
    },
    /// The same block twice.
    Duplicate { name: String, line: usize },
    /// A marker line that does not parse (`<!-- bench-report:begin -->`, no closing `-->`).
    Malformed { line: usize },
    /// A block the report generated that the document has no markers for.
    Missing { name: String },
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unclosed { name, line } => write!(
                f,
                "line {line}: block `{name}` is never closed: add `{END}{name}{CLOSE}`"
            ),
            Self::UnexpectedEnd { name, line } => write!(
                f,
                "line {line}: `{END}{name}{CLOSE}` closes no open block of that name"
            ),
            Self::Nested { name, inside, line } => write!(
                f,
                "line {line}: block `{name}` starts inside block `{inside}`: blocks do not nest"
            ),
            Self::Duplicate { name, line } => {
                write!(f, "line {line}: block `{name}` appears a second time")
            }
            Self::Malformed { line } => write!(
                f,
                "line {line}: malformed marker: write `{BEGIN}NAME{CLOSE}` or `{END}NAME{CLOSE}` on a line of its own"
            ),
            Self::Missing { name } => write!(
                f,
                "the document has no block `{name}`: add `{BEGIN}{name}{CLOSE}` and `{END}{name}{CLOSE}` where it belongs"
            ),
        }
    }
}

/// One marker line: whether it opens or closes, and the block's name.
enum Marker<'a> {
    Begin(&'a str),
    End(&'a str),
}

/// Reads a marker from a line (`Ok(None)` for an ordinary line).
fn marker(line: &str, number: usize) -> Result<Option<Marker<'_>>, MarkerError> {
    let trimmed = line.trim();
    let (rest, begin) = if let Some(rest) = trimmed.strip_prefix(BEGIN) {
        (rest, true)
    } else if let Some(rest) = trimmed.strip_prefix(END) {
        (rest, false)
    } else if trimmed.starts_with("<!-- bench-report:") {
        return Err(MarkerError::Malformed { line: number });
    } else {
        return Ok(None);
    };
    let name = rest
        .strip_suffix(CLOSE)
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
        .ok_or(MarkerError::Malformed { line: number })?;
    Ok(Some(if begin {
        Marker::Begin(name)
    } else {
        Marker::End(name)
    }))
}

/// The names of the document's blocks, in order, after checking that the markers balance.
pub(crate) fn block_names(doc: &str) -> Result<Vec<String>, MarkerError> {
    let mut names: Vec<String> = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, line) in doc.lines().enumerate() {
        let number = i + 1;
        match marker(line, number)? {
            None => {}
            Some(Marker::Begin(name)) => {
                if let Some((inside, _)) = &open {
                    return Err(MarkerError::Nested {
                        name: name.to_owned(),
                        inside: inside.clone(),
                        line: number,
                    });
                }
                if names.iter().any(|n| n == name) {
                    return Err(MarkerError::Duplicate {
                        name: name.to_owned(),
                        line: number,
                    });
                }
                open = Some((name.to_owned(), number));
            }
            Some(Marker::End(name)) => match open.take() {
                Some((open_name, _)) if open_name == name => names.push(open_name),
                _ => {
                    return Err(MarkerError::UnexpectedEnd {
                        name: name.to_owned(),
                        line: number,
                    })
                }
            },
        }
    }
    match open {
        Some((name, line)) => Err(MarkerError::Unclosed { name, line }),
        None => Ok(names),
    }
}

/// `doc` with the body of each block named in `blocks` replaced by its new text; every other
/// line (prose, and blocks not in `blocks`) is kept as it was.
///
/// # Errors
///
/// When the markers do not balance, or a block in `blocks` has no markers in `doc`; `doc` is
/// then left to the caller unchanged.
pub(crate) fn replace_blocks(
    doc: &str,
    blocks: &BTreeMap<String, String>,
) -> Result<String, MarkerError> {
    let names = block_names(doc)?;
    if let Some(name) = blocks.keys().find(|n| !names.contains(n)) {
        return Err(MarkerError::Missing { name: name.clone() });
    }
    let mut out = String::with_capacity(doc.len());
    let mut replacing = false;
    for (i, line) in doc.split_inclusive('\n').enumerate() {
        // Balanced markers were checked above, so the state machine needs no error paths.
        match marker(line, i + 1)? {
            Some(Marker::Begin(name)) => {
                out.push_str(line);
                if let Some(body) = blocks.get(name) {
                    out.push_str(body.trim_end_matches('\n'));
                    out.push('\n');
                    replacing = true;
                }
            }
            Some(Marker::End(_)) => {
                replacing = false;
                out.push_str(line);
            }
            None if replacing => {}
            None => out.push_str(line),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DOC: &str = "# Title\n\nProse before.\n\n<!-- bench-report:begin a -->\nold a\nmore old a\n<!-- bench-report:end a -->\n\nProse between.\n<!-- bench-report:begin b -->\nold b\n<!-- bench-report:end b -->\nProse after.\n";

    #[test]
    fn replacing_a_block_keeps_the_prose_and_the_other_blocks() {
        let out = replace_blocks(DOC, &blocks(&[("a", "new a\n")])).expect("balanced");
        assert_eq!(
            out,
            "# Title\n\nProse before.\n\n<!-- bench-report:begin a -->\nnew a\n<!-- bench-report:end a -->\n\nProse between.\n<!-- bench-report:begin b -->\nold b\n<!-- bench-report:end b -->\nProse after.\n"
        );
    }

    #[test]
    fn replacing_every_block_is_idempotent() {
        let new = blocks(&[("a", "A1\nA2"), ("b", "")]);
        let once = replace_blocks(DOC, &new).expect("balanced");
        assert!(once.contains("begin a -->\nA1\nA2\n<!-- bench-report:end a"));
        assert!(once.contains("begin b -->\n\n<!-- bench-report:end b"));
        assert_eq!(replace_blocks(&once, &new).expect("balanced"), once);
        assert_eq!(block_names(&once).expect("balanced"), ["a", "b"]);
    }

    #[test]
    fn no_new_blocks_leaves_the_document_byte_for_byte() {
        assert_eq!(replace_blocks(DOC, &BTreeMap::new()).expect("ok"), DOC);
    }

    #[test]
    fn a_block_the_document_lacks_is_an_error_naming_it() {
        let err = replace_blocks(DOC, &blocks(&[("c", "x")])).unwrap_err();
        assert_eq!(err, MarkerError::Missing { name: "c".into() });
        assert!(err.to_string().contains("<!-- bench-report:begin c -->"));
    }

    #[test]
    fn an_unclosed_block_is_an_error_with_its_line() {
        let doc = "x\n<!-- bench-report:begin a -->\nbody\n";
        let err = replace_blocks(doc, &blocks(&[("a", "new")])).unwrap_err();
        assert_eq!(
            err,
            MarkerError::Unclosed {
                name: "a".into(),
                line: 2
            }
        );
        assert!(err.to_string().contains("never closed"));
    }

    #[test]
    fn an_end_without_its_begin_is_an_error() {
        let doc = "<!-- bench-report:begin a -->\n<!-- bench-report:end b -->\n";
        assert_eq!(
            block_names(doc).unwrap_err(),
            MarkerError::UnexpectedEnd {
                name: "b".into(),
                line: 2
            }
        );
        let stray = "prose\n<!-- bench-report:end a -->\n";
        assert!(matches!(
            block_names(stray),
            Err(MarkerError::UnexpectedEnd { line: 2, .. })
        ));
    }

    #[test]
    fn nested_duplicate_and_malformed_markers_are_errors() {
        let nested = "<!-- bench-report:begin a -->\n<!-- bench-report:begin b -->\n";
        assert!(matches!(
            block_names(nested),
            Err(MarkerError::Nested { line: 2, .. })
        ));
        let twice = "<!-- bench-report:begin a -->\n<!-- bench-report:end a -->\n<!-- bench-report:begin a -->\n<!-- bench-report:end a -->\n";
        assert!(matches!(
            block_names(twice),
            Err(MarkerError::Duplicate { line: 3, .. })
        ));
        for bad in [
            "<!-- bench-report:begin -->\n",
            "<!-- bench-report:begin a\n",
            "<!-- bench-report:middle a -->\n",
        ] {
            assert!(
                matches!(block_names(bad), Err(MarkerError::Malformed { line: 1 })),
                "{bad:?}"
            );
        }
    }
}
