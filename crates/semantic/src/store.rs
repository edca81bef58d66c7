//! [`SemanticCache`]: the three-tier store (exact hash, then vector similarity, then miss).

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use lexicache_core::CacheBackend;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    CostAwareDecision, EmbeddingClient, Error, Guards, Rejection, Result, Scope, VectorIndex,
};

/// The similarity threshold [`SemanticCache`] uses unless told otherwise.
///
/// Chosen from the evaluation on the public `fow-cache` pairs with all-MiniLM-L6-v2 and
/// [`Guards::default`]; the whole table is in docs/semantic.md.
pub const DEFAULT_SIMILARITY_THRESHOLD: f32 = 0.76;

/// The number of nearest neighbours tier 2 examines: the best one may be rejected by a
/// guard while the second is an acceptable answer.
pub const DEFAULT_CANDIDATES: usize = 4;

/// The key prefix of tier-1 entries unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "semantic:";

/// The tier that answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Tier 1: the normalized query's hash matched a stored query exactly.
    Exact,
    /// Tier 2: a stored query's embedding was similar enough, and no guard objected.
    Similar,
    /// Tier 3: nothing acceptable is cached; call the model.
    Miss,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response stored with [`SemanticCache::store`].
    pub response: String,
    /// The model that produced it, as given to `store`.
    pub model: String,
    /// The query it was stored for (as given, before normalization).
    pub query: String,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Lookup {
    /// The tier that answered ([`Tier::Miss`] when none did).
    pub tier: Tier,
    /// The answer, on a hit.
    pub answer: Option<Answer>,
    /// The similarity of the answer (1.0 for an exact hit); on a miss, that of the best
    /// candidate tier 2 examined, if any: useful to see how close a miss came.
    pub similarity: Option<f32>,
    /// On a miss, the guard that rejected the best candidate above the threshold, if one did.
    pub rejected: Option<Rejection>,
}

impl Lookup {
    /// Whether a tier answered.
    pub fn is_hit(&self) -> bool {
        self.answer.is_some()
    }

    /// The cached response, on a hit.
    pub fn response(&self) -> Option<&str> {
        self.answer.as_ref().map(|a| a.response.as_str())
    }

    fn miss(similarity: Option<f32>, rejected: Option<Rejection>) -> Self {
        Self {
            tier: Tier::Miss,
            answer: None,
            similarity,
            rejected,
        }
    }
}

/// What a fresh model call would cost, for [`SemanticCache::lookup_with_cost`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// USD per 1,000 tokens.
    pub api_cost_per_1k_tokens: f64,
    /// Tokens the fresh call is expected to produce.
    pub expected_tokens: u64,
}

/// A semantic cache for LLM answers: exact hash, then vector similarity, then miss.
///
/// - **Tier 1** looks the query up by the SHA-256 of its normalized form (lowercased,
///   whitespace collapsed, trailing `?`, `!` and `.` dropped) in any [`CacheBackend`]:
///   memory, Redis or Memcached. An exact hit costs one backend read; no embedding.
/// - **Tier 2** embeds the query with the [`EmbeddingClient`], searches the [`VectorIndex`]
///   for the nearest stored queries of the same scope, and serves the first one whose cosine
///   similarity (clamped to [0, 1]) reaches the threshold and that no [guard](crate::guard)
///   rejects (different numbers, negation, other entities, ...).
/// - **Tier 3** is a miss: call the model, then [`store`](Self::store) its answer.
///
/// Every entry and every lookup carries a [`Scope`] (tenant, model, system-prompt hash); a
/// lookup never sees another scope's entries, in either tier, even at similarity 1.0. In the
/// index, the embedder's model id is part of the scope too, so a persisted index reloaded
/// under another embedder never compares vectors of two models.
///
/// The answer text lives in the backend (with the backend's TTL); the index holds only
/// vectors and ids, with the same TTL. An index entry whose backend entry has gone (evicted,
/// expired, deleted elsewhere) is dropped from the index when a lookup meets it.
///
/// Vector searches run on `tokio::task::spawn_blocking`, so a large index never stalls the
/// async workers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
/// use std::sync::Arc;
/// use lexicache_memory::MemoryBackend;
/// use lexicache_semantic::{FlatIndex, HashingEmbedder, Scope, SemanticCache, Tier};
///
/// let embedder = HashingEmbedder::new(256)?;
/// let cache = SemanticCache::builder(
///     Arc::new(MemoryBackend::new()),
///     Arc::new(embedder),
///     Arc::new(FlatIndex::builder(256).build()?),
/// )
/// .similarity_threshold(0.7)
/// .build()?;
///
/// let scope = Scope::new("acme", "gpt-4o", "You are a support agent.");
/// cache.store(&scope, "How do I reset my password?", "Use the reset link.", "gpt-4o").await?;
///
/// let exact = cache.lookup(&scope, "how do I reset my password").await?;
/// assert_eq!(exact.tier, Tier::Exact);
///
/// let similar = cache.lookup(&scope, "so how do I reset my password please").await?;
/// assert_eq!(similar.tier, Tier::Similar);
/// assert_eq!(similar.response(), Some("Use the reset link."));
///
/// // Another tenant never sees acme's answers.
/// let other = Scope::new("globex", "gpt-4o", "You are a support agent.");
/// assert_eq!(cache.lookup(&other, "How do I reset my password?").await?.tier, Tier::Miss);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SemanticCache {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn CacheBackend>,
    embedder: Arc<dyn EmbeddingClient>,
    index: Arc<dyn VectorIndex>,
    threshold: f32,
    min_similarity: f32,
    decision: CostAwareDecision,
    candidates: usize,
    ttl: Option<Duration>,
    guards: Guards,
    namespace: String,
}

impl fmt::Debug for SemanticCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("SemanticCache")
            .field("backend", &i.backend.name())
            .field("embedder", &i.embedder.model_id())
            .field("index", &i.index)
            .field("similarity_threshold", &i.threshold)
            .field("min_similarity", &i.min_similarity)
            .field("candidates", &i.candidates)
            .field("ttl", &i.ttl)
            .field("guards", &i.guards)
            .field("namespace", &i.namespace)
            .finish()
    }
}

/// Builds a [`SemanticCache`]; see [`SemanticCache::builder`].
#[derive(Debug)]
#[must_use]
pub struct SemanticCacheBuilder {
    backend: Arc<dyn CacheBackend>,
    embedder: Arc<dyn EmbeddingClient>,
    index: Arc<dyn VectorIndex>,
    threshold: f32,
    min_similarity: Option<f32>,
    decision: CostAwareDecision,
    candidates: usize,
    ttl: Option<Duration>,
    guards: Guards,
    namespace: String,
}

impl SemanticCacheBuilder {
    /// The minimum similarity of a tier-2 hit, in [0, 1]. Defaults to
    /// [`DEFAULT_SIMILARITY_THRESHOLD`].
    pub fn similarity_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The floor below which [`lookup_with_cost`](SemanticCache::lookup_with_cost) never
    /// serves, whatever the cost. Defaults to the similarity threshold minus 0.1.
    pub fn min_similarity(mut self, floor: f32) -> Self {
        self.min_similarity = Some(floor);
        self
    }

    /// The decision used by [`lookup_with_cost`](SemanticCache::lookup_with_cost).
    pub fn cost_decision(mut self, decision: CostAwareDecision) -> Self {
        self.decision = decision;
        self
    }

    /// How many nearest neighbours tier 2 examines (at least 1). Defaults to
    /// [`DEFAULT_CANDIDATES`].
    pub fn candidates(mut self, k: usize) -> Self {
        self.candidates = k;
        self
    }

    /// The TTL of stored entries, in both tiers. Defaults to none (the backend's default).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The false-hit guards. Defaults to [`Guards::default`] (all of them).
    pub fn guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// The prefix of tier-1 keys in the backend. Defaults to [`DEFAULT_NAMESPACE`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Validates the settings: thresholds in [0, 1] with the floor not above the threshold,
    /// at least one candidate, a non-zero TTL, and an embedder whose dimension is the
    /// index's. Anything else is [`Error::InvalidInput`] or [`Error::DimensionMismatch`].
    pub fn build(self) -> Result<SemanticCache> {
        let in_unit = |x: f32| (0.0..=1.0).contains(&x);
        if !in_unit(self.threshold) {
            return Err(Error::InvalidInput(format!(
                "similarity_threshold must be in [0, 1], got {}",
                self.threshold
            )));
        }
        let min_similarity = self
            .min_similarity
            .unwrap_or((self.threshold - 0.1).max(0.0));
        if !in_unit(min_similarity) || min_similarity > self.threshold {
            return Err(Error::InvalidInput(format!(
                "min_similarity must be in [0, similarity_threshold = {}], got {min_similarity}",
                self.threshold
            )));
        }
        if self.candidates == 0 {
            return Err(Error::InvalidInput("candidates must be at least 1".into()));
        }
        if self.ttl == Some(Duration::ZERO) {
            return Err(Error::InvalidInput("ttl must not be zero".into()));
        }
        if self.embedder.dimension() != self.index.dimension() {
            return Err(Error::DimensionMismatch {
                expected: self.index.dimension(),
                actual: self.embedder.dimension(),
            });
        }
        Ok(SemanticCache {
            inner: Arc::new(Inner {
                backend: self.backend,
                embedder: self.embedder,
                index: self.index,
                threshold: self.threshold,
                min_similarity,
                decision: self.decision,
                candidates: self.candidates,
                ttl: self.ttl,
                guards: self.guards,
                namespace: self.namespace,
            }),
        })
    }
}

/// The backend entry: the answer and the query it answers.
#[derive(Serialize, Deserialize)]
struct Stored {
    query: String,
    response: String,
    model: String,
    /// The scope's id, checked on read as a second line of defence behind the key.
    scope: [u8; 32],
}

/// Leads every stored entry: "LS" and a format version.
const MAGIC: [u8; 3] = [b'L', b'S', 1];

impl Stored {
    fn encode(&self) -> Result<Bytes> {
        postcard::to_extend(self, MAGIC.to_vec())
            .map(Bytes::from)
            .map_err(|e| Error::Corrupt(format!("cannot encode a cached answer: {e}")))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let body = bytes
            .strip_prefix(&MAGIC[..])
            .ok_or_else(|| Error::Corrupt("cached answer has an unknown format".into()))?;
        postcard::from_bytes(body)
            .map_err(|e| Error::Corrupt(format!("cached answer cannot be decoded: {e}")))
    }
}

/// The form tier 1 hashes: lowercased, runs of whitespace collapsed to one space, trimmed,
/// and trailing `?`, `!` and `.` dropped. "How do I reset my password?" and
/// "how do i  reset my password" are the same query; anything else is tier 2's business.
pub fn normalize_query(query: &str) -> String {
    let lower = query.to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_end_matches(|c: char| matches!(c, '?' | '!' | '.') || c.is_whitespace())
        .to_owned()
}

impl SemanticCache {
    /// A builder over a tier-1 `backend`, an `embedder` and a tier-2 `index` whose dimension
    /// is the embedder's.
    pub fn builder(
        backend: Arc<dyn CacheBackend>,
        embedder: Arc<dyn EmbeddingClient>,
        index: Arc<dyn VectorIndex>,
    ) -> SemanticCacheBuilder {
        SemanticCacheBuilder {
            backend,
            embedder,
            index,
            threshold: DEFAULT_SIMILARITY_THRESHOLD,
            min_similarity: None,
            decision: CostAwareDecision::default(),
            candidates: DEFAULT_CANDIDATES,
            ttl: None,
            guards: Guards::default(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
        }
    }

    /// The tier-2 similarity threshold.
    pub fn similarity_threshold(&self) -> f32 {
        self.inner.threshold
    }

    /// The vector index (to persist it, or read its size).
    pub fn index(&self) -> &Arc<dyn VectorIndex> {
        &self.inner.index
    }

    /// The tier-1 key of `query` in `scope`: `{namespace}{scope id}:{sha256(normalized)}`.
    /// It is also the query's id in the vector index.
    pub fn key(&self, scope: &Scope, query: &str) -> String {
        let digest = Sha256::digest(normalize_query(query).as_bytes());
        let mut key = format!("{}{}:", self.inner.namespace, scope.id());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in digest {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        key
    }

    /// Looks `query` up in `scope`: tier 1, then tier 2 at the similarity threshold, then a
    /// miss.
    ///
    /// Errors are typed: a backend failure is [`Error::Backend`], an embedder failure
    /// [`Error::Embedding`]. A caller that prefers an answer to an error treats them as a
    /// miss. An undecodable backend entry is treated as absent (and logged), never served.
    pub async fn lookup(&self, scope: &Scope, query: &str) -> Result<Lookup> {
        self.lookup_inner(scope, query, None).await
    }

    /// Like [`lookup`](Self::lookup), but tier 2 accepts a candidate when the
    /// [`CostAwareDecision`] says its similarity is worth `cost`, and it is at least the
    /// `min_similarity` floor. The threshold does not apply; the guards still do. Tier 1
    /// is unchanged.
    pub async fn lookup_with_cost(&self, scope: &Scope, query: &str, cost: Cost) -> Result<Lookup> {
        self.lookup_inner(scope, query, Some(cost)).await
    }

    async fn lookup_inner(&self, scope: &Scope, query: &str, cost: Option<Cost>) -> Result<Lookup> {
        let inner = &*self.inner;
        let key = self.key(scope, query);
        if let Some(answer) = self.read(&key, scope).await? {
            return Ok(Lookup {
                tier: Tier::Exact,
                answer: Some(answer),
                similarity: Some(1.0),
                rejected: None,
            });
        }

        let vector = self.embed_one(query).await?;
        let index = Arc::clone(&inner.index);
        let search_scope = self.index_scope(scope);
        let k = inner.candidates;
        let hits = tokio::task::spawn_blocking(move || index.search(&vector, &search_scope, k))
            .await
            .map_err(|e| Error::InvalidInput(format!("vector search did not finish: {e}")))??;

        let accept = |similarity: f32| match cost {
            None => similarity >= inner.threshold,
            Some(c) => {
                similarity >= inner.min_similarity
                    && inner.decision.should_use_cache(
                        f64::from(similarity),
                        c.api_cost_per_1k_tokens,
                        c.expected_tokens,
                    )
            }
        };
        let best = hits.first().map(|h| h.similarity);
        let mut rejected = None;
        for hit in hits {
            if !accept(hit.similarity) {
                // Hits are sorted best first: nothing further can be accepted.
                break;
            }
            let Some(answer) = self.read(&hit.id, scope).await? else {
                // The answer is gone from the backend (evicted, expired, deleted elsewhere):
                // the vector is useless now.
                inner.index.remove(&hit.id);
                continue;
            };
            match inner.guards.check(query, &answer.query) {
                Ok(()) => {
                    return Ok(Lookup {
                        tier: Tier::Similar,
                        answer: Some(answer),
                        similarity: Some(hit.similarity),
                        rejected: None,
                    })
                }
                Err(rejection) => {
                    tracing::debug!(guard = %rejection.guard, reason = %rejection.reason, "semantic candidate rejected");
                    rejected.get_or_insert(rejection);
                }
            }
        }
        Ok(Lookup::miss(best, rejected))
    }

    /// Stores `response` (produced by `model`) as the answer to `query` in `scope`, in both
    /// tiers, with the configured TTL. Storing the same normalized query again replaces the
    /// answer.
    pub async fn store(
        &self,
        scope: &Scope,
        query: &str,
        response: &str,
        model: &str,
    ) -> Result<()> {
        let inner = &*self.inner;
        let vector = self.embed_one(query).await?;
        let key = self.key(scope, query);
        let stored = Stored {
            query: query.to_owned(),
            response: response.to_owned(),
            model: model.to_owned(),
            scope: scope.id().0,
        };
        inner.backend.set(&key, stored.encode()?, inner.ttl).await?;
        let index = Arc::clone(&inner.index);
        let scope = self.index_scope(scope);
        let ttl = inner.ttl;
        tokio::task::spawn_blocking(move || index.insert(&key, &vector, &scope, ttl))
            .await
            .map_err(|e| Error::InvalidInput(format!("vector insert did not finish: {e}")))?
    }

    /// Removes `query`'s answer in `scope` from both tiers. Returns whether either held it.
    pub async fn invalidate(&self, scope: &Scope, query: &str) -> Result<bool> {
        let key = self.key(scope, query);
        let in_index = self.inner.index.remove(&key);
        let in_backend = self.inner.backend.delete(&key).await?;
        Ok(in_index || in_backend)
    }

    /// The scope of `scope`'s vectors in the index: the embedder's model id is folded into
    /// the model part, so vectors of another embedder (a persisted index reloaded after the
    /// embedder changed, or two caches sharing one index) are never compared.
    fn index_scope(&self, scope: &Scope) -> Scope {
        Scope::with_prompt_hash(
            scope.tenant(),
            format!(
                "{}\0embedder={}",
                scope.model(),
                self.inner.embedder.model_id()
            ),
            *scope.system_prompt_hash(),
        )
    }

    async fn embed_one(&self, query: &str) -> Result<Vec<f32>> {
        let mut vectors = self.inner.embedder.embed(&[query]).await?;
        let vector = vectors
            .pop()
            .filter(|_| vectors.is_empty())
            .ok_or_else(|| Error::Embedding("embedder returned no vector for one text".into()))?;
        if vector.len() != self.inner.index.dimension() {
            return Err(Error::DimensionMismatch {
                expected: self.inner.index.dimension(),
                actual: vector.len(),
            });
        }
        Ok(vector)
    }

    /// Reads and decodes the answer under `key`, if it belongs to `scope`.
    async fn read(&self, key: &str, scope: &Scope) -> Result<Option<Answer>> {
        let Some(bytes) = self.inner.backend.get(key).await? else {
            return Ok(None);
        };
        match Stored::decode(&bytes) {
            Ok(stored) if stored.scope == scope.id().0 => Ok(Some(Answer {
                response: stored.response,
                model: stored.model,
                query: stored.query,
            })),
            Ok(_) => {
                tracing::warn!(key, "semantic entry belongs to another scope; not served");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "undecodable semantic entry; treated as absent");
                Ok(None)
            }
        }
    }
}
