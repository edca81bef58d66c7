//! Glob patterns with the semantics of Redis `SCAN MATCH`, so every backend agrees.
//!
//! - `*` matches any run of characters (including none),
//! - `?` matches exactly one character,
//! - `[abc]`, `[a-z]` and `[^a]` / `[!a]` match one character of a class,
//! - `\x` matches `x` literally, so `\*` matches a star.
//!
//! [`escape`] makes any string match only itself, which is how a namespace is joined to a
//! user's pattern without letting the pattern escape the namespace.

/// Escapes every glob metacharacter in `literal` so the result matches only `literal`.
///
/// ```
/// use lexicache_core::glob::{escape, matches};
///
/// let ns = escape("tenant[1]*");
/// assert!(matches(&format!("{ns}:*"), "tenant[1]*:user"));
/// assert!(!matches(&format!("{ns}:*"), "tenant1x:user"));
/// ```
#[must_use]
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '!' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `text` matches the glob `pattern` as a whole.
///
/// A malformed class (an unclosed `[`) matches the `[` literally, as Redis does.
#[must_use]
pub fn matches(pattern: &str, text: &str) -> bool {
    Pattern::new(pattern).matches(text)
}

/// A glob parsed once, to match many keys.
///
/// ```
/// use lexicache_core::glob::Pattern;
///
/// let p = Pattern::new("user:[0-9]*");
/// assert!(p.matches("user:42"));
/// assert!(!p.matches("session:42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    chars: Vec<char>,
}

impl Pattern {
    /// Parses `pattern`. Every string is a valid pattern.
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        Self {
            chars: pattern.chars().collect(),
        }
    }

    /// Whether `text` matches this pattern as a whole.
    #[must_use]
    pub fn matches(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        match_from(&self.chars, &t)
    }
}

/// Whether the glob contains no metacharacter, so it can only match one literal key.
#[must_use]
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', '\\'])
}

/// Iterative matcher with single-star backtracking: linear in practice, never exponential.
fn match_from(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    while pi < p.len() && p[pi] == '*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((hit, next)) = match_class(p, pi, t[ti]) {
                        if hit {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the class starting at `p[start] == '['`.
/// Returns `(matched, index after the class)`, or `None` when the class is unclosed.
fn match_class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '^' || p[i] == '!');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        if p[i] == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if p[i] == '\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let mut hi_i = i + 2;
            if p[hi_i] == '\\' && hi_i + 1 < p.len() {
                hi_i += 1;
            }
            let hi = p[hi_i];
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if a <= c && c <= b {
                hit = true;
            }
            i = hi_i + 1;
        } else {
            if lo == c {
                hit = true;
            }
            i += 1;
        }
    }
    Some((hit != negate, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run() {
        assert!(matches("user:*", "user:"));
        assert!(matches("user:*", "user:42"));
        assert!(matches("*:42", "user:42"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("*", ""));
    }

    #[test]
    fn question_mark_matches_exactly_one_char() {
        assert!(matches("user:?", "user:7"));
        assert!(!matches("user:?", "user:77"));
        assert!(matches("h?llo", "héllo"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("user:[0-9]", "user:5"));
        assert!(!matches("user:[0-9]", "user:x"));
        assert!(matches("user:[^0-9]", "user:x"));
        assert!(matches("user:[!0-9]", "user:x"));
        assert!(matches("[abc]", "b"));
        assert!(!matches("[abc]", "d"));
        assert!(matches("[]]", "]"));
    }

    #[test]
    fn escaped_metacharacters_are_literal() {
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "aXb"));
        assert!(matches(r"a\?", "a?"));
        assert!(matches(r"\[x\]", "[x]"));
    }

    #[test]
    fn unclosed_class_is_literal() {
        assert!(matches("a[b", "a[b"));
    }

    #[test]
    fn escape_round_trips_every_metacharacter() {
        for lit in ["*", "?", "[a-z]", "\\", "x^!y", "plain", "a[!]b"] {
            let pat = escape(lit);
            assert!(matches(&pat, lit), "{lit} vs {pat}");
            assert!(is_literal(lit) || !matches(&pat, "zzz"));
        }
        assert!(!matches(&escape("a*"), "abc"));
    }

    #[test]
    fn long_star_patterns_do_not_blow_up() {
        let text = "a".repeat(10_000);
        let pat = "*a".repeat(50) + "b";
        assert!(!matches(&pat, &text));
    }
}
