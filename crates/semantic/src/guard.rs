//! False-hit guards: rules that reject a similar-looking cached query whose answer would be
//! wrong for the new one (different numbers or dates, negation, other named entities, ...).
//!
//! CONTRACT (skeleton, filled in by the guards work): the store calls
//! [`Guards::check`] for every tier-2 candidate above the threshold.

use std::fmt;

/// One class of false hit a guard detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GuardKind {
    /// The queries mention different numbers, dates, times or quantities.
    Numbers,
    /// One query negates (or inverts) what the other asks.
    Negation,
    /// The queries name different entities (people, places, products, organisations).
    Entities,
}

impl GuardKind {
    /// Every guard kind, in the order they run.
    pub const ALL: [GuardKind; 3] = [GuardKind::Numbers, GuardKind::Negation, GuardKind::Entities];

    /// A short stable name (`"numbers"`, `"negation"`, `"entities"`).
    pub fn name(self) -> &'static str {
        match self {
            GuardKind::Numbers => "numbers",
            GuardKind::Negation => "negation",
            GuardKind::Entities => "entities",
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
    /// `Err` names the first enabled guard that rejects the pair.
    pub fn check(&self, query: &str, candidate: &str) -> Result<(), Rejection> {
        let _ = (query, candidate);
        Ok(())
    }
}
