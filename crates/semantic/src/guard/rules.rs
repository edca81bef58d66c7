//! The guard rules: each compares two tokenized queries and says what differs, if anything.

use std::collections::HashSet;

use super::lexicon::{
    self, CARDINALS, MONTHS, ORDINALS, PERIODS, PERIOD_MODIFIERS, RELATIVE_DAYS, SCALES, WEEKDAYS,
};
use super::text::{edit_distance, Query, Token};
use super::GuardKind;

/// Runs one guard: `Some(reason)` when it rejects the pair.
pub(super) fn run(kind: GuardKind, a: &Query, b: &Query) -> Option<String> {
    match kind {
        GuardKind::Numbers => numbers(a, b),
        GuardKind::Negation => negation(a, b),
        GuardKind::Entities => entities(a, b),
        GuardKind::Roles => roles(a, b),
        GuardKind::Substitution => edit(a, b, Edit::Substitution),
        GuardKind::Qualifier => edit(a, b, Edit::Qualifier),
    }
}

// ---------------------------------------------------------------------------------------
// Numbers, dates and quantities.

/// What a query says about numbers and time.
#[derive(Debug, Default)]
struct Quantities {
    /// Normalized values, with whether each is a weak `one`/`first` (a pronoun as often as a
    /// number: it only counts when the other query has numbers too).
    values: Vec<(String, bool)>,
    /// Weekdays, months, relative days and periods (`next week`), with whether each is a
    /// weak "now" (`today`, `tonight`, `this month`: what a question means when it names no
    /// time, so it only counts against another time).
    times: Vec<(String, bool)>,
    /// `am` / `pm`.
    meridiem: Vec<&'static str>,
    /// Comparison words right before a quantity (`under`, `after`).
    comparators: Vec<String>,
}

fn lookup(table: &[(&str, u64)], word: &str) -> Option<u64> {
    table.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
}

/// The weekday, month or relative day `t` names, if any.
fn time_word(tokens: &[Token], i: usize) -> Option<&'static str> {
    let t = &tokens[i];
    let singular = t.text.strip_suffix('s').unwrap_or(&t.text);
    if let Some(day) = WEEKDAYS.iter().find(|d| **d == t.text || **d == singular) {
        return Some(day);
    }
    if let Some(day) = RELATIVE_DAYS
        .iter()
        .find(|d| **d == t.text || **d == singular)
    {
        return Some(day);
    }
    let (word, month) = MONTHS.iter().find(|(w, _)| *w == t.text)?;
    // `may`, `march` and the abbreviations are also ordinary words: trust them only with a
    // capital mid-sentence or next to a number.
    let unambiguous = word.len() > 4 && *word != "march";
    let near_digit = [i.wrapping_sub(1), i + 1]
        .iter()
        .filter_map(|j| tokens.get(*j))
        .any(Token::has_digit);
    (unambiguous || (t.cap && !t.start) || near_digit).then_some(*month)
}

/// Whether `t` is a word the numbers guard reads (so the content-word guards skip it).
pub(super) fn is_quantity_word(tokens: &[Token], i: usize) -> bool {
    let t = &tokens[i];
    t.has_digit()
        || lookup(CARDINALS, &t.text).is_some()
        || lookup(SCALES, &t.text).is_some()
        || (lookup(ORDINALS, &t.text).is_some() && t.text != "second")
        || time_word(tokens, i).is_some()
        || t.text == "percent"
        // A unit abbreviation after a number (`8 pm`, `10 GB`): `10GB` is one word.
        || (t.text.len() <= 3 && i > 0 && tokens[i - 1].has_digit() && !t.is_stopword())
        || (matches!(t.text.as_str(), "am" | "pm") && i > 0 && tokens[i - 1].has_digit())
}

fn quantities(q: &Query) -> Quantities {
    let tokens = &q.tokens;
    let mut out = Quantities::default();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let prev = i.checked_sub(1).map(|j| tokens[j].text.as_str());
        // Digits: `50,000`, `9:15`, `7pm`, `10gb`, `3rd`, `P60`.
        if t.has_digit() {
            let mut numeric: String = t
                .text
                .chars()
                .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '/'))
                .filter(|c| *c != ',')
                .collect();
            // `10:00` is `10`, `5.00` is `5`.
            for zeros in [":00", ".00", ".0"] {
                if let Some(whole) = numeric.strip_suffix(zeros) {
                    numeric.truncate(whole.len());
                }
            }
            let suffix = &t.text[t
                .text
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '/')))
                .map_or(t.text.len(), |(k, _)| k)..];
            if numeric.is_empty() {
                out.values.push((t.text.clone(), false));
            } else {
                match suffix {
                    "am" => out.meridiem.push("am"),
                    "pm" => out.meridiem.push("pm"),
                    // `5k` is `5000`.
                    "k" if !numeric.contains(['.', ':', '/']) => numeric.push_str("000"),
                    _ => {}
                }
                out.values.push((numeric, false));
                if let Some(next) = tokens.get(i + 1) {
                    match next.text.as_str() {
                        "am" => out.meridiem.push("am"),
                        "pm" => out.meridiem.push("pm"),
                        _ => {}
                    }
                }
            }
            push_comparator(tokens, i, &mut out);
            i += 1;
            continue;
        }
        // Number words: `two hundred and fifty`, `twenty five`, `a dozen`.
        if lookup(CARDINALS, &t.text).is_some() || lookup(SCALES, &t.text).is_some() {
            let begin = i;
            let (mut total, mut current) = (0u64, 0u64);
            while let Some(t) = tokens.get(i) {
                if let Some(v) = lookup(CARDINALS, &t.text) {
                    current += v;
                } else if let Some(scale) = lookup(SCALES, &t.text) {
                    if scale == 100 {
                        current = current.max(1) * 100;
                    } else {
                        total += current.max(1) * scale;
                        current = 0;
                    }
                } else if t.text == "and"
                    && tokens
                        .get(i + 1)
                        .is_some_and(|n| lookup(CARDINALS, &n.text).is_some())
                    && i > begin
                {
                } else {
                    break;
                }
                i += 1;
            }
            let weak = i - begin == 1 && tokens[begin].text == "one";
            out.values.push(((total + current).to_string(), weak));
            push_comparator(tokens, begin, &mut out);
            continue;
        }
        if let Some(v) = lookup(ORDINALS, &t.text) {
            // `second` is also a unit of time (`a second`, `30 second`).
            // It is the unit when a number precedes it or no noun follows it (`wait a second`).
            let unit = t.text == "second"
                && (prev.is_some_and(|p| matches!(p, "per" | "every" | "split"))
                    || i.checked_sub(1).is_some_and(|j| tokens[j].has_digit())
                    || tokens
                        .get(i + 1)
                        .is_none_or(|n| n.clause != t.clause || n.is_stopword()));
            if !unit {
                out.values.push((v.to_string(), v == 1));
            }
            i += 1;
            continue;
        }
        if let Some(time) = time_word(tokens, i) {
            out.times
                .push((time.to_owned(), matches!(time, "today" | "tonight")));
            i += 1;
            continue;
        }
        // Periods picked by a modifier: `next week`, `same day`, `this month`.
        if PERIOD_MODIFIERS.contains(&t.text.as_str()) {
            if let Some(next) = tokens.get(i + 1) {
                let period = next.text.strip_suffix('s').unwrap_or(&next.text);
                if PERIODS.contains(&period) {
                    let now = matches!(t.text.as_str(), "this" | "current");
                    out.times.push((format!("{} {period}", t.text), now));
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Records the comparison word right before the quantity at `i` (skipping `a`, `than`...).
fn push_comparator(tokens: &[Token], i: usize, out: &mut Quantities) {
    let mut j = i;
    for _ in 0..3 {
        let Some(k) = j.checked_sub(1) else { return };
        j = k;
        let word = tokens[j].text.as_str();
        if lexicon::COMPARATORS.contains(&word) {
            out.comparators.push(word.to_owned());
            return;
        }
        if !matches!(
            word,
            "than" | "a" | "an" | "the" | "of" | "to" | "at" | "least" | "most"
        ) {
            return;
        }
    }
}

/// The items of `own` that count against `other`: weak ones only if `other` has items.
fn counted(own: &[(String, bool)], other: &[(String, bool)]) -> Vec<String> {
    let mut values: Vec<String> = own
        .iter()
        .filter(|(_, weak)| !weak || !other.is_empty())
        .map(|(v, _)| v.clone())
        .collect();
    values.sort();
    values.dedup();
    values
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

fn numbers(a: &Query, b: &Query) -> Option<String> {
    let (qa, qb) = (quantities(a), quantities(b));
    let (va, vb) = (
        counted(&qa.values, &qb.values),
        counted(&qb.values, &qa.values),
    );
    if va != vb {
        return Some(versus(&va, &vb));
    }
    let (ta, tb) = (counted(&qa.times, &qb.times), counted(&qb.times, &qa.times));
    if ta != tb {
        return Some(versus(&ta, &tb));
    }
    let (ma, mb) = (sorted(&qa.meridiem), sorted(&qb.meridiem));
    if !ma.is_empty() && !mb.is_empty() && ma != mb {
        return Some(versus(&ma, &mb));
    }
    let (ca, cb) = (sorted(&qa.comparators), sorted(&qb.comparators));
    if !va.is_empty() && !ca.is_empty() && !cb.is_empty() && ca != cb {
        return Some(versus(&ca, &cb));
    }
    None
}

/// `"x y vs z"`: what only the first list has against what only the second has.
fn versus<T: AsRef<str> + PartialEq>(a: &[T], b: &[T]) -> String {
    let side = |own: &[T], other: &[T]| {
        let only: Vec<&str> = own
            .iter()
            .filter(|x| !other.contains(x))
            .map(AsRef::as_ref)
            .collect();
        if only.is_empty() {
            "nothing".to_owned()
        } else {
            only.join(" ")
        }
    };
    format!("{} vs {}", side(a, b), side(b, a))
}

// ---------------------------------------------------------------------------------------
// Negation and polarity.

fn negation(a: &Query, b: &Query) -> Option<String> {
    fn negators(q: &Query) -> Vec<&str> {
        q.tokens
            .iter()
            .filter(|t| lexicon::is_negator(&t.text, &t.stem))
            .map(|t| t.text.as_str())
            .collect()
    }
    fn only<'q>(own: &'q Query, other: &Query) -> Vec<&'q Token> {
        own.tokens
            .iter()
            .filter(|t| !other.tokens.iter().any(|o| o.stem == t.stem))
            .collect()
    }
    let (na, nb) = (negators(a), negators(b));
    if na.len() % 2 != nb.len() % 2 {
        return Some(format!("negated: {}", versus(&na, &nb)));
    }
    let (oa, ob) = (only(a, b), only(b, a));
    for x in &oa {
        for y in &ob {
            if lexicon::are_antonyms(&x.stem, &y.stem) || negated_form(x, y) || negated_form(y, x) {
                return Some(format!("opposites: {} vs {}", x.text, y.text));
            }
        }
    }
    None
}

/// Whether `negated` is `word` with a negating prefix (`unlock`, `illegal`, `dislike`) or
/// its `-less` form against a `-ful` one (`useful`/`useless`).
fn negated_form(word: &Token, negated: &Token) -> bool {
    let prefixed = lexicon::NEGATING_PREFIXES.iter().any(|prefix| {
        let min = if matches!(*prefix, "un" | "non") {
            3
        } else {
            4
        };
        word.text.len() >= min
            && [(&negated.text, &word.text), (&negated.stem, &word.stem)]
                .iter()
                .any(|(n, w)| n.strip_prefix(prefix) == Some(w.as_str()))
    });
    let suffixed = word
        .text
        .strip_suffix("ful")
        .is_some_and(|root| root.len() >= 3 && negated.text.strip_suffix("less") == Some(root));
    prefixed || suffixed
}

// ---------------------------------------------------------------------------------------
// Named entities.

/// Whether `t` looks like a name in `q`: a capitalized word that is not a sentence start,
/// an acronym, or a word with inner capitals or with digits after a letter.
fn entity_cue(q: &Query, i: usize) -> bool {
    let t = &q.tokens[i];
    if t.text == "i" || is_quantity_word(&q.tokens, i) && !t.mixed {
        return false;
    }
    if t.mixed {
        return true;
    }
    if !q.case_informative {
        return false;
    }
    t.upper || (t.cap && !t.start && !t.is_stopword())
}

fn entities(a: &Query, b: &Query) -> Option<String> {
    let mut names: HashSet<&str> = HashSet::new();
    let mut cues: Vec<Vec<bool>> = Vec::with_capacity(2);
    for q in [a, b] {
        let flags: Vec<bool> = (0..q.tokens.len()).map(|i| entity_cue(q, i)).collect();
        for (t, cue) in q.tokens.iter().zip(&flags) {
            if *cue {
                names.insert(t.stem.as_str());
            }
        }
        cues.push(flags);
    }
    if names.is_empty() {
        return None;
    }
    fn sequence<'q>(q: &'q Query, flags: &[bool], names: &HashSet<&str>) -> Vec<&'q str> {
        q.tokens
            .iter()
            .zip(flags)
            .filter(|(t, cue)| names.contains(t.stem.as_str()) && (**cue || !t.is_stopword()))
            .map(|(t, _)| t.stem.as_str())
            .collect()
    }
    let (sa, sb) = (sequence(a, &cues[0], &names), sequence(b, &cues[1], &names));
    if sa == sb || is_subsequence(&sa, &sb) || is_subsequence(&sb, &sa) {
        return None;
    }
    let mut reason = versus(&sa, &sb);
    if reason == "nothing vs nothing" {
        reason = format!("order: {} vs {}", sa.join(" "), sb.join(" "));
    }
    Some(reason)
}

fn is_subsequence<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    let mut rest = long.iter();
    short.iter().all(|x| rest.any(|y| y == x))
}

// ---------------------------------------------------------------------------------------
// Roles around `from`/`to`/`than`.

/// Content words with the index of the part of the sentence they are in, parts being cut
/// at role prepositions; `None` when there is no role preposition.
fn role_parts(q: &Query) -> Option<Vec<Role<'_>>> {
    let mut part = 0;
    let mut out = Vec::new();
    for (i, t) in q.tokens.iter().enumerate() {
        if lexicon::ROLE_PREPOSITIONS.contains(&t.text.as_str()) {
            part += 1;
        } else if is_content(q, i) {
            out.push(Role {
                stem: &t.stem,
                part,
                clause: t.clause,
            });
        }
    }
    (part > 0).then_some(out)
}

/// Where a content word stands: which part (between role prepositions) and which clause.
#[derive(Debug, Clone, Copy)]
struct Role<'q> {
    stem: &'q str,
    part: usize,
    clause: usize,
}

fn roles(a: &Query, b: &Query) -> Option<String> {
    let (pa, pb) = (role_parts(a)?, role_parts(b)?);
    fn once<'q>(roles: &[Role<'q>], w: &str) -> Option<Role<'q>> {
        let mut found = roles.iter().filter(|r| r.stem == w);
        match (found.next(), found.next()) {
            (Some(r), None) => Some(*r),
            _ => None,
        }
    }
    let common: Vec<(Role<'_>, Role<'_>)> = pa
        .iter()
        .filter_map(|r| Some((once(&pa, r.stem)?, once(&pb, r.stem)?)))
        .collect();
    for (i, (x_a, x_b)) in common.iter().enumerate() {
        for (y_a, y_b) in &common[i + 1..] {
            // Words in different clauses may move with their clause ("To open an account,
            // what do I need?"): only a swap inside one clause changes the roles.
            if x_a.clause != y_a.clause || x_b.clause != y_b.clause {
                continue;
            }
            let swapped = (x_a.part < y_a.part && x_b.part > y_b.part)
                || (x_a.part > y_a.part && x_b.part < y_b.part);
            if swapped {
                return Some(format!("{} and {} swap sides", x_a.stem, y_a.stem));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Minimal pairs: one content word swapped or added.

/// A word that carries the subject of the question: not a function word, filler, negator
/// or quantity (those have guards of their own).
fn is_content(q: &Query, i: usize) -> bool {
    let t = &q.tokens[i];
    !t.is_stopword()
        && !lexicon::is_stopword(&t.stem)
        && !lexicon::is_currency(&t.text)
        && !lexicon::is_light(&t.stem)
        && !lexicon::is_negator(&t.text, &t.stem)
        && !is_quantity_word(&q.tokens, i)
        && t.text.chars().any(char::is_alphabetic)
}

/// Whether two words count as the same: equal stems, a one-letter typo, or synonyms.
fn same_word(x: &Token, y: &Token) -> bool {
    if x.stem == y.stem || x.text == y.text {
        return true;
    }
    if lexicon::are_synonyms(&x.stem, &y.stem)
        || derived(&x.stem, &y.stem)
        || derived(&y.stem, &x.stem)
    {
        return true;
    }
    if x.has_digit() || y.has_digit() {
        return false;
    }
    // A typo: one edit in a word of 4+ letters (keeping its first letter below 6), two in a
    // word of 8+ letters that keeps its first letter.
    let (shorter, same_first) = (
        x.text.len().min(y.text.len()),
        x.text.as_bytes().first() == y.text.as_bytes().first(),
    );
    let allowed = match shorter {
        0..=3 => 0,
        4..=5 if !same_first => 0,
        8.. if same_first => 2,
        _ => 1,
    };
    allowed > 0
        && edit_distance(&x.text, &y.text) <= allowed
        && !lexicon::are_antonyms(&x.stem, &y.stem)
        && !negated_form(x, y)
        && !negated_form(y, x)
}

/// Whether `long` is `short` with a noun-forming suffix (`form`/`formation`,
/// `withdraw`/`withdrawal`): the same idea as a different part of speech.
fn derived(short: &str, long: &str) -> bool {
    short.len() >= 4
        && long.strip_prefix(short).is_some_and(|suffix| {
            matches!(
                suffix,
                "ation" | "ition" | "ion" | "ment" | "al" | "ness" | "ity"
            )
        })
}

/// The length of the longest common subsequence of the two token lists under [`same_word`].
fn common_length(a: &[Token], b: &[Token]) -> usize {
    let m = b.len();
    let mut prev = vec![0usize; m + 1];
    let mut row = vec![0usize; m + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            row[j + 1] = if same_word(x, y) {
                prev[j] + 1
            } else {
                row[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[m]
}

/// At most this many words of each query may lie outside their longest common subsequence
/// for the pair to be a minimal pair (the same sentence with a small edit).
const MINIMAL_EDIT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Substitution,
    Qualifier,
}

fn edit(a: &Query, b: &Query, kind: Edit) -> Option<String> {
    let common = common_length(&a.tokens, &b.tokens);
    let longer = a.tokens.len().max(b.tokens.len());
    if common < 3
        || 2 * common < longer
        || a.tokens.len() - common > MINIMAL_EDIT
        || b.tokens.len() - common > MINIMAL_EDIT
    {
        return None;
    }
    fn content(q: &Query) -> Vec<&Token> {
        (0..q.tokens.len())
            .filter(|&i| is_content(q, i))
            .map(|i| &q.tokens[i])
            .collect()
    }
    let (ca, cb) = (content(a), content(b));
    let mut used = vec![false; cb.len()];
    let mut only_a = Vec::new();
    for x in &ca {
        match cb
            .iter()
            .enumerate()
            .position(|(j, y)| !used[j] && same_word(x, y))
        {
            Some(j) => used[j] = true,
            None => only_a.push(x.text.as_str()),
        }
    }
    let only_b: Vec<&str> = cb
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(y, _)| y.text.as_str())
        .collect();
    match (kind, only_a.is_empty(), only_b.is_empty()) {
        (Edit::Substitution, false, false) => {
            Some(format!("{} vs {}", only_a.join(" "), only_b.join(" ")))
        }
        (Edit::Qualifier, true, false) | (Edit::Qualifier, false, true) => {
            let added = if only_a.is_empty() { only_b } else { only_a };
            Some(format!("only one query says {}", added.join(" ")))
        }
        _ => None,
    }
}
