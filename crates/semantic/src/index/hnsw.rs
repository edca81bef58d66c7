//! [`HnswIndex`]: approximate search on hnsw_rs (being written).
