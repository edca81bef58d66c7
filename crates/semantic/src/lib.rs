//! lexicache semantic cache. SKELETON: the semantic helper fills this in.
