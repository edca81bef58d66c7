//! `SemanticCache`: the three-tier store (being written).
