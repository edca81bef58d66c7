//! Tokenization shared by the guards: words with their case cues, contractions expanded,
//! greetings, thanks and hesitations dropped, and a light stem for comparing inflections.

use super::lexicon;

/// One word of a query.
#[derive(Debug, Clone)]
pub(super) struct Token {
    /// Lowercase text.
    pub(super) text: String,
    /// [`stem`] of `text`.
    pub(super) stem: String,
    /// The original starts with an uppercase letter.
    pub(super) cap: bool,
    /// The original has at least two letters, all uppercase (`UK`, `NHS`).
    pub(super) upper: bool,
    /// The original mixes case inside the word (`PayPal`, `iPhone`) or starts with a letter
    /// and holds a digit (`P60`, `GPT4`).
    pub(super) mixed: bool,
    /// The first word of a sentence (its capital says nothing).
    pub(super) start: bool,
    /// Index of the clause (text between punctuation marks) the word is in.
    pub(super) clause: usize,
}

impl Token {
    /// Whether the text holds a digit.
    pub(super) fn has_digit(&self) -> bool {
        self.text.bytes().any(|b| b.is_ascii_digit())
    }

    /// Whether the word is a function word.
    pub(super) fn is_stopword(&self) -> bool {
        lexicon::is_stopword(&self.text)
    }
}

/// A query cut into [`Token`]s.
#[derive(Debug, Clone)]
pub(super) struct Query {
    /// The words, fillers removed.
    pub(super) tokens: Vec<Token>,
    /// Whether capitals carry information: false for ALL-CAPS or Title Case Text.
    pub(super) case_informative: bool,
}

/// A word as written, before contractions are expanded.
struct RawWord {
    text: String,
    start: bool,
    clause: usize,
}

impl Query {
    /// Tokenizes `text`.
    pub(super) fn new(text: &str) -> Self {
        let raw = scan(text);
        let mut tokens = Vec::with_capacity(raw.len() + 2);
        for word in &raw {
            expand(word, &mut tokens);
        }
        let tokens = drop_fillers(tokens);
        let case_informative = case_informative(&tokens);
        Self {
            tokens,
            case_informative,
        }
    }
}

/// Joins two adjacent words of `q` that `other` writes as one (`e mail`/`email`,
/// `log in`/`login`, `wi fi`/`wifi`).
pub(super) fn merge_compounds(q: &mut Query, other: &Query) {
    let mut i = 0;
    while i + 1 < q.tokens.len() {
        let (x, y) = (&q.tokens[i], &q.tokens[i + 1]);
        let joined = other.tokens.iter().any(|o| {
            o.text.len() == x.text.len() + y.text.len()
                && o.text.starts_with(x.text.as_str())
                && o.text.ends_with(y.text.as_str())
        });
        if joined && x.clause == y.clause {
            let text = format!("{}{}", x.text, y.text);
            let merged = Token {
                stem: stem(&text),
                text,
                cap: x.cap,
                upper: x.upper && y.upper,
                mixed: x.mixed || y.mixed,
                start: x.start,
                clause: x.clause,
            };
            q.tokens.splice(i..i + 2, [merged]);
        }
        i += 1;
    }
}

/// Splits `text` into words, noting sentence starts and clause boundaries. Keeps `'` inside
/// words and `.,:/` between digits (`50,000`, `9:15`, `2025/26`); a hyphen separates words;
/// `%` becomes the word `percent`.
fn scan(text: &str) -> Vec<RawWord> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    let mut start = true;
    let mut clause = 0;

    let flush = |current: &mut String, words: &mut Vec<RawWord>, start: &mut bool, clause| {
        if !current.is_empty() {
            words.push(RawWord {
                text: std::mem::take(current),
                start: *start,
                clause,
            });
            *start = false;
        }
    };

    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            current.push(c);
            continue;
        }
        let prev = current.chars().last();
        let next = chars.get(i + 1).copied();
        let between_digits =
            prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        match c {
            '\'' | '\u{2019}' | '\u{2018}'
                if prev.is_some_and(char::is_alphabetic)
                    && next.is_some_and(char::is_alphabetic) =>
            {
                current.push('\'');
            }
            '.' | ',' | ':' | '/' if between_digits => current.push(c),
            // `a.m.` / `p.m.`
            '.' if (current.eq_ignore_ascii_case("a") || current.eq_ignore_ascii_case("p"))
                && next.is_some_and(|n| n.eq_ignore_ascii_case(&'m')) => {}
            '%' => {
                flush(&mut current, &mut words, &mut start, clause);
                current.push_str("percent");
                flush(&mut current, &mut words, &mut start, clause);
            }
            '&' => {
                flush(&mut current, &mut words, &mut start, clause);
                current.push_str("and");
                flush(&mut current, &mut words, &mut start, clause);
            }
            '.' | '!' | '?' | ':' | '\n' => {
                flush(&mut current, &mut words, &mut start, clause);
                clause += 1;
                start = true;
            }
            ',' | ';' | '(' | ')' | '[' | ']' | '"' | '\u{201c}' | '\u{201d}' => {
                flush(&mut current, &mut words, &mut start, clause);
                clause += 1;
            }
            _ => flush(&mut current, &mut words, &mut start, clause),
        }
    }
    flush(&mut current, &mut words, &mut start, clause);
    words
}

/// Contractions written without the apostrophe, and `cannot`.
const BARE_CONTRACTIONS: &[(&str, &str, bool)] = &[
    ("dont", "do", true),
    ("doesnt", "does", true),
    ("didnt", "did", true),
    ("isnt", "is", true),
    ("arent", "are", true),
    ("wasnt", "was", true),
    ("werent", "were", true),
    ("cant", "can", true),
    ("cannot", "can", true),
    ("couldnt", "could", true),
    ("shouldnt", "should", true),
    ("wouldnt", "would", true),
    ("wont", "will", true),
    ("hasnt", "has", true),
    ("havent", "have", true),
    ("hadnt", "had", true),
    ("mustnt", "must", true),
    ("neednt", "need", true),
    ("whats", "what", false),
    ("thats", "that", false),
    ("hows", "how", false),
    ("wheres", "where", false),
    ("whens", "when", false),
    ("whos", "who", false),
];

/// Appends the token(s) of `word`: `don't` is `do not`, `what's` is `what`, `Mary's` is
/// `Mary`.
fn expand(word: &RawWord, out: &mut Vec<Token>) {
    let original = word.text.as_str();
    let lower = original.to_lowercase();
    let (base, negated) = match lower.split_once('\'') {
        Some((base, "t")) if base.ends_with('n') && base.len() > 1 => {
            let base = &base[..base.len() - 1];
            let base = match base {
                "ca" => "can",
                "wo" => "will",
                "sha" => "shall",
                "ai" => "is",
                other => other,
            };
            (base.to_owned(), true)
        }
        Some((base, "s" | "re" | "ve" | "ll" | "d" | "m")) => (base.to_owned(), false),
        Some((base, rest)) => (format!("{base}{rest}"), false),
        None => match BARE_CONTRACTIONS.iter().find(|(w, _, _)| *w == lower) {
            Some((_, base, negated)) => ((*base).to_owned(), *negated),
            None => (lower, false),
        },
    };
    let letters = original.chars().filter(|c| c.is_alphabetic()).count();
    let first_cap = original.chars().next().is_some_and(char::is_uppercase);
    let upper = letters >= 2
        && original
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
    let starts_with_letter = original.chars().next().is_some_and(char::is_alphabetic);
    let inner_cap = original
        .chars()
        .zip(original.chars().skip(1))
        .any(|(a, b)| a.is_lowercase() && b.is_uppercase());
    let mixed = inner_cap || (starts_with_letter && original.chars().any(|c| c.is_ascii_digit()));
    out.push(Token {
        stem: stem(&base),
        text: base,
        cap: first_cap,
        upper,
        mixed,
        start: word.start,
        clause: word.clause,
    });
    if negated {
        out.push(Token {
            text: "not".to_owned(),
            stem: "not".to_owned(),
            cap: false,
            upper: false,
            mixed: false,
            start: false,
            clause: word.clause,
        });
    }
}

/// Drops leading and trailing clauses made only of greetings, thanks and hedges, hesitations
/// anywhere, and discourse openers (`so`, `okay`) at the start. Never drops every word.
fn drop_fillers(tokens: Vec<Token>) -> Vec<Token> {
    if tokens.is_empty() {
        return tokens;
    }
    let filler_clause = |clause: usize| {
        tokens
            .iter()
            .filter(|t| t.clause == clause)
            .all(|t| lexicon::is_filler(&t.text))
    };
    let first = tokens[0].clause;
    let last = tokens[tokens.len() - 1].clause;
    let mut lo = first;
    while lo <= last && filler_clause(lo) {
        lo += 1;
    }
    let mut hi = last;
    while hi > lo && filler_clause(hi) {
        hi -= 1;
    }
    if lo > last {
        return tokens;
    }
    let mut kept: Vec<Token> = tokens
        .iter()
        .filter(|t| (lo..=hi).contains(&t.clause) && !lexicon::is_disfluency(&t.text))
        .cloned()
        .collect();
    let openers = kept
        .iter()
        .take_while(|t| lexicon::is_opener(&t.text))
        .count()
        .min(kept.len().saturating_sub(1));
    kept.drain(..openers);
    if let Some(first) = kept.first_mut() {
        first.start = true;
    }
    kept
}

/// Whether capitals carry information: not when every word is in capitals, nor when nearly
/// every word after the first is capitalized (Title Case).
fn case_informative(tokens: &[Token]) -> bool {
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.text.chars().any(char::is_alphabetic))
        .collect();
    let longer: Vec<&&Token> = words
        .iter()
        .filter(|t| t.text.chars().count() >= 2)
        .collect();
    if longer.len() >= 2 && longer.iter().all(|t| t.upper) {
        return false;
    }
    let rest = &words[words.len().min(1)..];
    let capitalized = rest.iter().filter(|t| t.cap).count();
    !(rest.len() >= 3 && capitalized * 4 >= rest.len() * 3)
}

/// A light stem: drops plural and verb endings (`-s`, `-es`, `-ies`, `-ing`, `-ed`), a final
/// `e` and a doubled final letter, so `watering`/`water`, `approved`/`approves` and
/// `cancelled`/`cancel` meet. Words holding digits are kept as they are.
pub(super) fn stem(word: &str) -> String {
    if word.bytes().any(|b| b.is_ascii_digit()) || !word.is_ascii() {
        return word.to_owned();
    }
    let mut s = word.to_owned();
    if s.len() > 4 && s.ends_with("ies") {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.len() > 4
        && ["sses", "shes", "ches", "xes", "zes"]
            .iter()
            .any(|suffix| s.ends_with(suffix))
    {
        s.truncate(s.len() - 2);
    } else if s.len() > 3
        && s.ends_with('s')
        && !["ss", "us", "is"].iter().any(|suffix| s.ends_with(suffix))
    {
        s.truncate(s.len() - 1);
    }
    if s.len() > 5 && s.ends_with("ing") {
        s.truncate(s.len() - 3);
    } else if s.len() > 4 && s.ends_with("ied") {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.len() > 4 && s.ends_with("ed") {
        s.truncate(s.len() - 2);
    }
    if s.len() > 3 && s.ends_with('e') {
        s.truncate(s.len() - 1);
    }
    let bytes = s.as_bytes();
    if bytes.len() > 3 && bytes[bytes.len() - 1] == bytes[bytes.len() - 2] {
        s.truncate(s.len() - 1);
    }
    s
}

/// The number of edits (insertions, deletions, substitutions, swaps of two adjacent
/// letters) between `a` and `b`, capped at 3: how far a typo strayed.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    const CAP: usize = 3;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) >= CAP {
        return CAP;
    }
    // Optimal string alignment distance over three rolling rows.
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut row: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()].min(CAP)
}
