//! A semantic cache for LLM answers: exact hash, then vector similarity, then miss.
//!
//! [`SemanticCache`] answers a query in three tiers: the SHA-256 of the normalized query in
//! any `CacheBackend` (memory, Redis, Memcached), then the nearest stored queries in a
//! [`VectorIndex`] accepted at a similarity threshold and checked by false-hit
//! [guards](guard), then a miss. The parts:
//!
//! - [`Scope`]: tenant, model and system-prompt hash. Every entry and every lookup carries
//!   one, and a lookup only ever matches its own scope, even at similarity 1.0.
//! - [`EmbeddingClient`]: the embedder contract (batch embed, dimension, model id), with
//!   [`HashingEmbedder`] (deterministic, no model, for tests), `MiniLmEmbedder`
//!   (all-MiniLM-L6-v2 in pure Rust; feature `candle`) and [`OpenAiEmbedder`] (the
//!   OpenAI-compatible `/v1/embeddings` API).
//! - [`VectorIndex`]: the index contract, with [`HnswIndex`] (hnsw_rs, approximate) and
//!   [`FlatIndex`] (exact brute force, the ground truth). Both have soft delete and
//!   compaction, a `max_entries` bound evicting the least recently hit entry, entry TTLs and
//!   persistence to a checksummed, versioned file.
//! - [`Guards`]: reject a similar-looking candidate that differs in numbers or dates,
//!   negation or named entities; each can be switched off.
//! - [`CostAwareDecision`]: the reference's rule trading similarity against the API cost a
//!   hit saves ([`SemanticCache::lookup_with_cost`]).
//!
//! Similarity is **cosine similarity clamped to [0, 1]**; an exact repeat scores 1.0
//! (see [`index`]). docs/semantic.md has the design, the evaluation on public data and the
//! benchmarks.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
//! use std::sync::Arc;
//! use lexicache_memory::MemoryBackend;
//! use lexicache_semantic::{FlatIndex, GuardKind, HashingEmbedder, Scope, SemanticCache, Tier};
//!
//! let cache = SemanticCache::builder(
//!     Arc::new(MemoryBackend::new()),
//!     Arc::new(HashingEmbedder::new(256)?),
//!     Arc::new(FlatIndex::builder(256).max_entries(10_000).build()?),
//! )
//! .similarity_threshold(0.7)
//! .build()?;
//! let scope = Scope::new("acme", "gpt-4o", "You are a support agent.");
//!
//! cache.store(&scope, "How do I reset my password?", "Use the reset link.", "gpt-4o").await?;
//! assert_eq!(cache.lookup(&scope, "how do I reset my password").await?.tier, Tier::Exact);
//!
//! // A near-repeat is found by similarity...
//! let near = cache.lookup(&scope, "hi, how do I reset my password please").await?;
//! assert_eq!((near.tier, near.response()), (Tier::Similar, Some("Use the reset link.")));
//!
//! // ...another tenant never sees acme's answer...
//! let globex = Scope::new("globex", "gpt-4o", "You are a support agent.");
//! assert_eq!(cache.lookup(&globex, "How do I reset my password?").await?.tier, Tier::Miss);
//!
//! // ...and a question that differs in a number is not served the cached answer.
//! cache.store(&scope, "What is the price for 10 seats on the team plan?", "$100", "gpt-4o").await?;
//! let other = cache.lookup(&scope, "What is the price for 50 seats on the team plan?").await?;
//! assert_eq!(other.tier, Tier::Miss);
//! assert_eq!(other.rejected.map(|r| r.guard), Some(GuardKind::Numbers));
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
pub use index::{Clock, FlatIndex, FlatIndexBuilder, Hit, ManualClock, SystemClock, VectorIndex};
pub use index::{HnswIndex, HnswIndexBuilder, HnswStats};
#[cfg(feature = "candle")]
pub use minilm::MiniLmEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiEmbedderBuilder};
pub use scope::{Scope, ScopeId};
pub use store::{
    normalize_query, Answer, Cost, Lookup, SemanticCache, SemanticCacheBuilder, Tier,
    DEFAULT_CANDIDATES, DEFAULT_NAMESPACE, DEFAULT_SIMILARITY_THRESHOLD,
};
