//! Any pattern and text through `lexicache_core::glob`: no panic, the same answer as a
//! dynamic-programming reference matcher written from the documented rules (which also
//! bounds the time: both are O(pattern x text), and libFuzzer's per-input `-timeout` fails
//! anything slower), and the properties namespaces rely on:
//!
//! - `escape(s)` matches `s` and nothing else, and `escape(s) + "*"` matches exactly the
//!   texts that start with `s` (a user's pattern cannot reach out of a namespace);
//! - a pattern `is_literal` says is literal matches only itself;
//! - `*` matches everything; `Pattern::new(p).matches(t) == matches(p, t)`.
#![no_main]

use arbitrary::Arbitrary;
use lexicache_core::glob::{escape, is_literal, matches, Pattern};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    pattern: String,
    text: String,
    literal: String,
}

/// One pattern element, each matching exactly one character except `Star`.
#[derive(Debug)]
enum Token {
    Star,
    Any,
    Literal(char),
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
}

/// Parses a class starting at `p[0] == '['`: the tokens and the length consumed, or `None`
/// when it is never closed (then the `[` is literal).
fn class(p: &[char]) -> Option<(Token, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negate, items }, i + 1));
        }
        first = false;
        // One (possibly escaped) character.
        let (lo, after_lo) = match (c, p.get(i + 1)) {
            ('\\', Some(&next)) => (next, i + 2),
            _ => (c, i + 1),
        };
        // A range `lo-hi`, unless the `-` is last before `]`.
        match (p.get(after_lo), p.get(after_lo + 1)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                let (hi, after_hi) = match (hi, p.get(after_lo + 2)) {
                    ('\\', Some(&next)) => (next, after_lo + 3),
                    _ => (hi, after_lo + 2),
                };
                items.push((lo.min(hi), lo.max(hi)));
                i = after_hi;
            }
            _ => {
                items.push((lo, lo));
                i = after_lo;
            }
        }
    }
}

fn tokens(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '[' => match class(&p[i..]) {
                Some((token, len)) => {
                    out.push(token);
                    i += len;
                }
                None => {
                    out.push(Token::Literal('['));
                    i += 1;
                }
            },
            '\\' if i + 1 < p.len() => {
                out.push(Token::Literal(p[i + 1]));
                i += 2;
            }
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

fn one(token: &Token, c: char) -> bool {
    match token {
        Token::Star => unreachable!("a star is not a one-character token"),
        Token::Any => true,
        Token::Literal(l) => *l == c,
        Token::Class { negate, items } => {
            items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
        }
    }
}

/// `next[j]`: tokens `k+1..` match `text[j..]`; computed from the last token back.
fn reference(pattern: &str, text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let toks = tokens(pattern);
    let mut next = vec![false; t.len() + 1];
    next[t.len()] = true;
    for token in toks.iter().rev() {
        let mut row = vec![false; t.len() + 1];
        for j in (0..=t.len()).rev() {
            row[j] = match token {
                Token::Star => next[j] || (j < t.len() && row[j + 1]),
                _ => j < t.len() && one(token, t[j]) && next[j + 1],
            };
        }
        next = row;
    }
    next[0]
}

fuzz_target!(|input: Input| {
    let Input {
        pattern,
        text,
        literal,
    } = input;

    let got = matches(&pattern, &text);
    assert_eq!(
        got,
        reference(&pattern, &text),
        "pattern {pattern:?} against {text:?}"
    );
    assert_eq!(Pattern::new(&pattern).matches(&text), got);
    assert!(matches("*", &text));

    let escaped = escape(&literal);
    assert!(matches(&escaped, &literal), "{escaped:?} vs {literal:?}");
    assert_eq!(
        matches(&escaped, &text),
        text == literal,
        "{escaped:?} vs {text:?}"
    );
    let namespace = format!("{escaped}*");
    assert_eq!(
        matches(&namespace, &text),
        text.starts_with(&literal),
        "{namespace:?} vs {text:?}"
    );
    assert!(matches(&namespace, &format!("{literal}{text}")));

    if is_literal(&pattern) {
        assert_eq!(got, pattern == text, "literal {pattern:?} vs {text:?}");
    }
});
