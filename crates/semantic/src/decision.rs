//! [`CostAwareDecision`]: whether a cached answer's similarity is worth the API cost it saves.

use crate::{Error, Result};

/// The reference's cost-aware hit rule: accept a cached answer when the accuracy risk of
/// serving it is smaller than the money a fresh call would cost.
///
/// - `mismatch_penalty = (1 - similarity) * accuracy_weight`
/// - `cost_incentive = min(estimated_cost * (1 - accuracy_weight), 1.0)`, where
///   `estimated_cost = api_cost_per_1k_tokens * expected_tokens / 1000` (USD)
/// - use the cache when `mismatch_penalty < cost_incentive`
///
/// With the default `accuracy_weight` of 0.7 and similarity 0.95 the penalty is 0.035, so
/// the cache is used once a fresh call would cost at least 0.035 / 0.3 ≈ 0.117 USD:
///
/// ```
/// use lexicache_semantic::CostAwareDecision;
///
/// let d = CostAwareDecision::default();
/// // gpt-4 at ~$0.03 per 1k tokens: 100 tokens (~$0.003) is not worth a 5% mismatch...
/// assert!(!d.should_use_cache(0.95, 0.03, 100));
/// // ...5000 tokens (~$0.15) is.
/// assert!(d.should_use_cache(0.95, 0.03, 5000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostAwareDecision {
    accuracy_weight: f64,
}

impl Default for CostAwareDecision {
    fn default() -> Self {
        Self {
            accuracy_weight: 0.7,
        }
    }
}

impl CostAwareDecision {
    /// A decision with `accuracy_weight` in [0, 1] (higher favours accuracy over cost).
    /// Anything else, NaN included, is [`Error::InvalidInput`].
    pub fn new(accuracy_weight: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&accuracy_weight) {
            return Err(Error::InvalidInput(format!(
                "accuracy_weight must be in [0, 1], got {accuracy_weight}"
            )));
        }
        Ok(Self { accuracy_weight })
    }

    /// The weight given to the accuracy mismatch penalty.
    pub fn accuracy_weight(&self) -> f64 {
        self.accuracy_weight
    }

    /// Whether a cached answer at `similarity` (cosine in [0, 1]) should be used instead of
    /// a fresh call expected to produce `expected_tokens` at `api_cost_per_1k_tokens` USD.
    ///
    /// Out-of-range or non-finite inputs never favour the cache: a similarity outside
    /// [0, 1] or NaN, or a negative or NaN cost, returns `false`.
    pub fn should_use_cache(
        &self,
        similarity: f64,
        api_cost_per_1k_tokens: f64,
        expected_tokens: u64,
    ) -> bool {
        if !(0.0..=1.0).contains(&similarity)
            || api_cost_per_1k_tokens.is_nan()
            || api_cost_per_1k_tokens < 0.0
        {
            return false;
        }
        let estimated_cost = api_cost_per_1k_tokens * expected_tokens as f64 / 1000.0;
        let mismatch_penalty = (1.0 - similarity) * self.accuracy_weight;
        let cost_incentive = (estimated_cost * (1.0 - self.accuracy_weight)).min(1.0);
        mismatch_penalty < cost_incentive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_examples_hold() {
        let d = CostAwareDecision::default();
        assert!(!d.should_use_cache(0.95, 0.03, 100));
        assert!(d.should_use_cache(0.95, 0.03, 5000));
        // The break-even cost for similarity 0.95 is 0.035 / 0.3 = 0.1167 USD.
        assert!(!d.should_use_cache(0.95, 1.0, 116));
        assert!(d.should_use_cache(0.95, 1.0, 117));
    }

    #[test]
    fn exact_match_is_used_at_any_positive_cost_and_never_for_free() {
        let d = CostAwareDecision::default();
        assert!(d.should_use_cache(1.0, 0.001, 1));
        // Penalty 0 is not < incentive 0.
        assert!(!d.should_use_cache(1.0, 0.0, 1000));
    }

    #[test]
    fn incentive_is_capped_at_one() {
        // With weight 0.5 the penalty of similarity 0 is 0.5 < 1: any huge cost accepts it;
        // with weight 1.0 the incentive is always 0 and nothing is accepted.
        assert!(CostAwareDecision::new(0.5)
            .unwrap()
            .should_use_cache(0.0, 1e9, 1_000_000));
        assert!(!CostAwareDecision::new(1.0)
            .unwrap()
            .should_use_cache(0.99, 1e9, 1_000_000));
        // With weight 0.0 the penalty is 0: any positive cost accepts.
        assert!(CostAwareDecision::new(0.0)
            .unwrap()
            .should_use_cache(0.0, 0.01, 1));
    }

    #[test]
    fn bad_inputs_are_rejected_or_never_favour_the_cache() {
        for w in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                CostAwareDecision::new(w),
                Err(Error::InvalidInput(_))
            ));
        }
        let d = CostAwareDecision::default();
        assert!(!d.should_use_cache(f64::NAN, 1.0, 10_000));
        assert!(!d.should_use_cache(1.5, 1.0, 10_000));
        assert!(!d.should_use_cache(-0.1, 1.0, 10_000));
        assert!(!d.should_use_cache(0.99, f64::NAN, 10_000));
        assert!(!d.should_use_cache(0.99, -1.0, 10_000));
    }
}
