//! A semantic cache for LLM answers: the building blocks.
//!
//! This crate will answer a query from a cache in three tiers: the exact hash of the
//! normalized query, then a vector similarity search, then a miss. This release provides
//! the parts the tiers are built from:
//!
//! - [`Scope`]: tenant, model and system-prompt hash. Every entry and every lookup carries
//!   one, and a lookup only ever matches its own scope.
//! - [`EmbeddingClient`]: the embedder contract (batch embed, dimension, model id), and
//!   [`HashingEmbedder`], a deterministic model-free embedder for tests.
//! - [`VectorIndex`]: the index contract, and [`FlatIndex`], exact brute-force search with
//!   soft delete and compaction, a `max_entries` bound with least-recently-hit eviction,
//!   entry TTLs, and persistence to a checksummed, versioned file.
//!
//! Similarity is **cosine similarity clamped to [0, 1]**; an exact repeat scores 1.0
//! (see [`index`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
//! use std::time::Duration;
//! use lexicache_semantic::{EmbeddingClient, FlatIndex, HashingEmbedder, Scope, VectorIndex};
//!
//! let embedder = HashingEmbedder::new(256)?;
//! let index = FlatIndex::builder(embedder.dimension()).max_entries(10_000).build()?;
//! let scope = Scope::new("acme", "gpt-4o", "You are a support agent.");
//!
//! let stored = embedder.embed(&["How do I reset my password?"]).await?;
//! index.insert("answer:1", &stored[0], &scope, Some(Duration::from_secs(3600)))?;
//!
//! let query = embedder.embed(&["how do I reset my password"]).await?;
//! let hits = index.search(&query[0], &scope, 1)?;
//! assert_eq!(hits[0].id, "answer:1");
//! assert_eq!(hits[0].similarity, 1.0);
//!
//! // The same question from another tenant never sees acme's answer.
//! let other = Scope::new("globex", "gpt-4o", "You are a support agent.");
//! assert!(index.search(&query[0], &other, 1)?.is_empty());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod decision;
mod embed;
mod error;
pub mod guard;
pub mod index;
#[cfg(feature = "candle")]
mod minilm;
mod openai;
mod scope;
mod store;
mod vector;

pub use decision::CostAwareDecision;
pub use embed::{EmbeddingClient, HashingEmbedder};
pub use error::{Error, Result};
pub use guard::{GuardKind, Guards, Rejection};
// (helpers: add your `pub use` lines below this one, one line each)
pub use index::{HnswIndex, HnswIndexBuilder, HnswStats};
pub use index::{Clock, FlatIndex, FlatIndexBuilder, Hit, ManualClock, SystemClock, VectorIndex};
#[cfg(feature = "candle")]
pub use minilm::MiniLmEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiEmbedderBuilder};
pub use scope::{Scope, ScopeId};
pub use store::{
    normalize_query, Answer, Cost, Lookup, SemanticCache, SemanticCacheBuilder, Tier,
    DEFAULT_CANDIDATES, DEFAULT_NAMESPACE, DEFAULT_SIMILARITY_THRESHOLD,
};
