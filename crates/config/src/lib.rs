//! lexicache configuration. SKELETON: the config helper fills this in.
