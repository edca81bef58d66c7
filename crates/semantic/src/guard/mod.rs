//! False-hit guards: rules that reject a similar-looking cached query whose answer would be
//! wrong for the new one (different numbers or dates, negation, other named entities, ...).
//!
//! The store calls [`Guards::check`] for every tier-2 candidate above the threshold, with the
//! new query and the cached candidate's query. Each guard is a pure text rule over the two
//! queries (a tokenization and a few set comparisons, no model), and each can be switched
//! off:
//!
//! | guard | rejects when the queries differ in | example |
//! |---|---|---|
//! | [`Numbers`](GuardKind::Numbers) | numbers, dates, times, quantities | `a table for 2` / `a table for 12` |
//! | [`Negation`](GuardKind::Negation) | negation or polarity | `enable` / `disable`, `safe` / `unsafe` |
//! | [`Entities`](GuardKind::Entities) | named entities, or their order | `Python on Linux` / `Python on Windows` |
//! | [`Roles`](GuardKind::Roles) | which words stand on each side of `from`/`to`/`than` | `from savings to current` / `from current to savings` |
//! | [`Substitution`](GuardKind::Substitution) | one content word swapped in an otherwise equal sentence | `dog food` / `cat food` |
//! | [`Qualifier`](GuardKind::Qualifier) | a content word added to an otherwise equal sentence | `the gym` / `the gym pass` |
//!
//! What never makes a difference: case, punctuation, contractions (`what's`/`what is`),
//! greetings, thanks and hesitations (`hi,`, `um`, `thanks!`), plural and singular, one-letter
//! typos, common synonyms, function words (`how do I`/`how can I`) and reordered clauses.
//!
//! ```
//! use lexicache_semantic::{GuardKind, Guards};
//!
//! let guards = Guards::default();
//! assert!(guards.check("hi, how do I reset my password?", "How do I reset my password").is_ok());
//!
//! let rejected = guards
//!     .check("Is the museum open on Sunday?", "Is the museum open on Monday?")
//!     .unwrap_err();
//! assert_eq!(rejected.guard, GuardKind::Numbers);
//!
//! // Each guard can be switched off.
//! let lenient = Guards::default().with(GuardKind::Numbers, false);
//! assert!(lenient.is_enabled(GuardKind::Negation));
//! assert!(!lenient.is_enabled(GuardKind::Numbers));
//! ```

mod lexicon;
mod rules;
mod text;

use std::fmt;

use text::Query;

/// One class of false hit a guard detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GuardKind {
    /// The queries mention different numbers, dates, times or quantities: digits, number
    /// words and ordinals, weekdays, months, relative days (`today`, `next week`), `am`/`pm`,
    /// and the comparison around a quantity (`under £50` / `over £50`).
    Numbers,
    /// One query negates (or inverts) what the other asks: a negator (`not`, `n't`, `never`,
    /// `without`, `avoid`, ...) in only one of them, a negating prefix (`lock`/`unlock`,
    /// `members`/`non-members`), or a common antonym pair (`enable`/`disable`,
    /// `more`/`less`, `before`/`after`).
    Negation,
    /// The queries name different entities (people, places, products, organisations), or
    /// the same ones in another order. Entities are capitalized words not at a sentence
    /// start, acronyms and words with inner capitals or digits, compared case-insensitively.
    Entities,
    /// The same words stand on different sides of a role preposition (`from`, `to`, `into`,
    /// `than`, `vs`): `from A to B` against `from B to A`.
    Roles,
    /// The queries are the same sentence except for a content word replaced by a different
    /// one (not an inflection, typo or common synonym): `kitten`/`puppy`.
    Substitution,
    /// The queries are the same sentence except that one adds a content word that narrows
    /// what is asked: `gift`/`gift card`, `symptoms of flu`/`symptoms of flu in babies`.
    Qualifier,
}

impl GuardKind {
    /// Every guard kind, in the order they run.
    pub const ALL: [GuardKind; 6] = [
        GuardKind::Numbers,
        GuardKind::Negation,
        GuardKind::Entities,
        GuardKind::Roles,
        GuardKind::Substitution,
        GuardKind::Qualifier,
    ];

    /// A short stable name (`"numbers"`, `"negation"`, `"entities"`, `"roles"`,
    /// `"substitution"`, `"qualifier"`).
    pub fn name(self) -> &'static str {
        match self {
            GuardKind::Numbers => "numbers",
            GuardKind::Negation => "negation",
            GuardKind::Entities => "entities",
            GuardKind::Roles => "roles",
            GuardKind::Substitution => "substitution",
            GuardKind::Qualifier => "qualifier",
        }
    }
}

impl fmt::Display for GuardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a guard rejected a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The guard that fired.
    pub guard: GuardKind,
    /// What differed, for logs and the evaluation (e.g. `"15 vs 50"`).
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} guard: {}", self.guard, self.reason)
    }
}

/// The set of enabled guards. [`Guards::default`] enables all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guards {
    enabled: Vec<GuardKind>,
}

impl Default for Guards {
    fn default() -> Self {
        Self::all()
    }
}

impl Guards {
    /// Every guard enabled.
    pub fn all() -> Self {
        Self {
            enabled: GuardKind::ALL.to_vec(),
        }
    }

    /// No guard: tier 2 decides on similarity alone.
    pub fn none() -> Self {
        Self {
            enabled: Vec::new(),
        }
    }

    /// This set with `kind` switched on or off.
    #[must_use]
    pub fn with(mut self, kind: GuardKind, on: bool) -> Self {
        self.enabled.retain(|k| *k != kind);
        if on {
            self.enabled.push(kind);
        }
        self
    }

    /// Whether `kind` is enabled.
    pub fn is_enabled(&self, kind: GuardKind) -> bool {
        self.enabled.contains(&kind)
    }

    /// Checks a tier-2 candidate: `query` is the new query, `candidate` the cached one.
    /// `Err` names the first enabled guard (in [`GuardKind::ALL`] order) that rejects the
    /// pair.
    pub fn check(&self, query: &str, candidate: &str) -> Result<(), Rejection> {
        if self.enabled.is_empty() {
            return Ok(());
        }
        let (mut a, mut b) = (Query::new(query), Query::new(candidate));
        text::merge_compounds(&mut a, &b);
        text::merge_compounds(&mut b, &a);
        for kind in GuardKind::ALL {
            if !self.is_enabled(kind) {
                continue;
            }
            if let Some(reason) = rules::run(kind, &a, &b) {
                return Err(Rejection {
                    guard: kind,
                    reason,
                });
            }
        }
        Ok(())
    }
}
