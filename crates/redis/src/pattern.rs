//! The `SCAN MATCH` pattern sent to Redis for a namespace and a user's glob.
//!
//! lexicache's globs ([`lexicache_core::glob`]) and Redis's `MATCH` differ: ours match `?` and
//! classes against one *character* and negate with `[!..]` as well as `[^..]`; Redis matches
//! bytes and knows no `[!..]`. So Redis gets a *superset* pattern (the escaped namespace, then
//! the user's glob with every `?` and class widened to `*`), and each key Redis returns is checked
//! with [`lexicache_core::glob`] before it is unlinked. The escaped namespace keeps one tenant's
//! pattern from ever matching another tenant's keys, whatever metacharacters either holds.

use lexicache_core::glob::escape;

/// The `MATCH` pattern for keys of namespace `prefix` whose rest may match `glob`.
///
/// Every key matching `prefix` + `glob` under lexicache's rules matches the result under
/// Redis's rules; the converse need not hold, so callers filter what `SCAN` returns.
pub(crate) fn scan_match(prefix: &str, glob: &str) -> String {
    let mut out = escape(prefix);
    out.reserve(glob.len() + 1);
    let p: Vec<char> = glob.chars().collect();
    // Whether `out` ends with a (real) star, so runs of widened constructs send one star.
    let mut star = false;
    let mut i = 0;
    while i < p.len() {
        let widened = p[i] == '*' || p[i] == '?';
        if widened {
            if !star {
                out.push('*');
            }
            star = true;
            i += 1;
            continue;
        }
        if p[i] == '[' {
            if let Some(end) = class_end(&p, i) {
                if !star {
                    out.push('*');
                }
                star = true;
                i = end;
                continue;
            }
        }
        star = false;
        match p[i] {
            // An unclosed class is a literal `[` for lexicache, and escaped for Redis.
            '[' => {
                out.push_str("\\[");
                i += 1;
            }
            '\\' if i + 1 < p.len() => {
                out.push('\\');
                out.push(p[i + 1]);
                i += 2;
            }
            // A trailing backslash matches itself.
            '\\' => {
                out.push_str("\\\\");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The index just after the class opening at `p[start] == '['`, or `None` when it is unclosed.
/// It reads classes exactly as [`lexicache_core::glob`] does.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && (p[i] == '^' || p[i] == '!') {
        i += 1;
    }
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        if p[i] == ']' && !first {
            return Some(i + 1);
        }
        first = false;
        if p[i] == '\\' && i + 1 < p.len() {
            i += 1;
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let mut hi = i + 2;
            if p[hi] == '\\' && hi + 1 < p.len() {
                hi += 1;
            }
            i = hi + 1;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use lexicache_core::glob::{escape, matches};

    use super::*;

    /// Redis's `stringmatchlen`, byte based and without `[!..]`, to check the superset claim.
    fn redis_matches(pattern: &[u8], text: &[u8]) -> bool {
        let (mut p, mut t) = (0usize, 0usize);
        while p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                        p += 1;
                    }
                    if p + 1 == pattern.len() {
                        return true;
                    }
                    return (t..=text.len()).any(|s| redis_matches(&pattern[p + 1..], &text[s..]));
                }
                b'?' => {
                    if t >= text.len() {
                        return false;
                    }
                    t += 1;
                }
                b'\\' if p + 1 < pattern.len() => {
                    p += 1;
                    if t >= text.len() || pattern[p] != text[t] {
                        return false;
                    }
                    t += 1;
                }
                c => {
                    // Classes never reach Redis from scan_match, so they need no support here.
                    assert_ne!(c, b'[', "scan_match sent a class to redis");
                    if t >= text.len() || c != text[t] {
                        return false;
                    }
                    t += 1;
                }
            }
            p += 1;
        }
        t == text.len()
    }

    #[test]
    fn namespace_metacharacters_are_escaped() {
        let m = scan_match("t[1]*:", "user:*");
        assert_eq!(m, r"t\[1\]\*:user:*");
        assert!(redis_matches(m.as_bytes(), b"t[1]*:user:9"));
        assert!(!redis_matches(m.as_bytes(), b"t1x:user:9"));
        assert!(!redis_matches(m.as_bytes(), b"t[1]x:user:9"));
    }

    #[test]
    fn question_marks_and_classes_widen_to_stars() {
        assert_eq!(scan_match("ns:", "h-?"), "ns:h-*");
        assert_eq!(scan_match("ns:", "c:[!a-b]"), "ns:c:*");
        assert_eq!(scan_match("ns:", "c:[]]x"), "ns:c:*x");
        assert_eq!(scan_match("ns:", "a*?*b"), "ns:a*b");
    }

    #[test]
    fn escapes_and_unclosed_classes_stay_literal() {
        assert_eq!(scan_match("", r"a\*b"), r"a\*b");
        assert_eq!(scan_match("", "a[b"), r"a\[b");
        assert_eq!(scan_match("", "a\\"), r"a\\");
    }

    #[test]
    fn every_key_the_glob_matches_is_matched_by_redis() {
        let prefix = "p[x]:";
        let globs = [
            "user:*",
            "h-?",
            "c:[!a-b]",
            "c:[^a]",
            "n:[0-5]",
            "s:*:e",
            r"a\*b",
            r"q\?",
            "a[b",
            "*",
            "?*?",
            &escape("^!-"),
            &escape("back\\slash"),
        ];
        let keys = [
            "user:1",
            "user:",
            "h-é",
            "h-🦀",
            "h-e",
            "c:z",
            "c:b",
            "n:3",
            "s:ab:e",
            "a*b",
            "q?",
            "a[b",
            "",
            "xy",
            "^!-",
            "back\\slash",
            "other",
        ];
        for glob in globs {
            let m = scan_match(prefix, glob);
            for key in keys {
                let full = format!("{prefix}{key}");
                if matches(glob, key) {
                    assert!(
                        redis_matches(m.as_bytes(), full.as_bytes()),
                        "{glob:?} matches {key:?} but redis pattern {m:?} does not"
                    );
                }
                assert!(
                    !redis_matches(m.as_bytes(), format!("p1:{key}").as_bytes()),
                    "redis pattern {m:?} reaches outside the namespace"
                );
            }
        }
    }
}
