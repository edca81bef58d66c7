//! `SemanticCache`: the three tiers, scopes, invalidation, guards, cost-aware lookups and
//! typed errors, on the memory backend and on real Redis and Memcached servers.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use bytes::Bytes;
use lexicache_core::CacheBackend;
use lexicache_memcached::MemcachedBackend;
use lexicache_memory::MemoryBackend;
use lexicache_redis::RedisBackend;
use lexicache_semantic::{
    normalize_query, Cost, EmbeddingClient, Error, FlatIndex, GuardKind, Guards, HashingEmbedder,
    Scope, SemanticCache, SemanticCacheBuilder, Tier,
};
use lexicache_testkit::servers;

const DIM: usize = 512;

fn scope() -> Scope {
    Scope::new("acme", "gpt-4o", "You are a support agent.")
}

fn cache_on(backend: Arc<dyn CacheBackend>, threshold: f32) -> SemanticCache {
    SemanticCache::builder(
        backend,
        Arc::new(HashingEmbedder::new(DIM).unwrap()),
        Arc::new(FlatIndex::builder(DIM).build().unwrap()),
    )
    .similarity_threshold(threshold)
    .build()
    .unwrap()
}

fn memory_cache(threshold: f32) -> SemanticCache {
    cache_on(Arc::new(MemoryBackend::new()), threshold)
}

/// A memory-backed cache that decides on similarity alone.
fn unguarded_memory_cache(threshold: f32) -> SemanticCache {
    SemanticCache::builder(
        Arc::new(MemoryBackend::new()),
        Arc::new(HashingEmbedder::new(DIM).unwrap()),
        Arc::new(FlatIndex::builder(DIM).build().unwrap()),
    )
    .similarity_threshold(threshold)
    .guards(Guards::none())
    .build()
    .unwrap()
}

/// The whole contract on one backend: exact, similar and missed lookups, scopes and
/// invalidation. Run on memory, Redis and Memcached.
async fn three_tiers_scopes_and_invalidation(cache: SemanticCache) {
    let s = scope();
    cache
        .store(
            &s,
            "How do I reset my password?",
            "Use the reset link.",
            "gpt-4o-2024",
        )
        .await
        .unwrap();

    let exact = cache
        .lookup(&s, "  how do I RESET my   password ")
        .await
        .unwrap();
    assert_eq!(exact.tier, Tier::Exact);
    assert_eq!(exact.similarity, Some(1.0));
    let answer = exact.answer.unwrap();
    assert_eq!(answer.response, "Use the reset link.");
    assert_eq!(answer.model, "gpt-4o-2024");
    assert_eq!(answer.query, "How do I reset my password?");

    let similar = cache
        .lookup(&s, "so how do I reset my password please")
        .await
        .unwrap();
    assert_eq!(similar.tier, Tier::Similar);
    assert_eq!(similar.response(), Some("Use the reset link."));
    let sim = similar.similarity.unwrap();
    assert!((0.7..1.0).contains(&sim), "{sim}");

    let miss = cache
        .lookup(&s, "best pizza toppings in naples")
        .await
        .unwrap();
    assert_eq!(miss.tier, Tier::Miss);
    assert!(!miss.is_hit());

    // Every part of the scope partitions: tenant, model and system prompt.
    for other in [
        Scope::new("globex", "gpt-4o", "You are a support agent."),
        Scope::new("acme", "claude", "You are a support agent."),
        Scope::new("acme", "gpt-4o", "You are a pirate."),
    ] {
        for q in [
            "How do I reset my password?",
            "so how do I reset my password please",
        ] {
            let l = cache.lookup(&other, q).await.unwrap();
            assert_eq!(l.tier, Tier::Miss, "{other:?} saw acme's answer for {q:?}");
        }
    }

    assert!(cache
        .invalidate(&s, "how do i reset my password")
        .await
        .unwrap());
    assert_eq!(cache.index().len(), 0);
    for q in [
        "How do I reset my password?",
        "so how do I reset my password please",
    ] {
        assert_eq!(cache.lookup(&s, q).await.unwrap().tier, Tier::Miss);
    }
    assert!(!cache
        .invalidate(&s, "How do I reset my password?")
        .await
        .unwrap());
}

#[tokio::test]
async fn memory_backend_serves_three_tiers_per_scope_and_invalidates_both() {
    three_tiers_scopes_and_invalidation(memory_cache(0.6)).await;
}

#[tokio::test]
async fn redis_backend_serves_three_tiers_per_scope_and_invalidates_both() {
    let url = servers::redis_url();
    let backend = RedisBackend::builder()
        .url(&url)
        .prefix(servers::unique_namespace("semantic"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url}: {e}; {}", servers::HOW_TO_START));
    three_tiers_scopes_and_invalidation(cache_on(Arc::new(backend.clone()), 0.6)).await;
    backend.clear().await.unwrap();
}

#[tokio::test]
async fn memcached_backend_serves_three_tiers_per_scope_and_invalidates_both() {
    let backend = MemcachedBackend::builder()
        .servers(servers::memcached_servers())
        .prefix(servers::unique_namespace("semantic"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Memcached: {e}; {}", servers::HOW_TO_START));
    three_tiers_scopes_and_invalidation(cache_on(Arc::new(backend), 0.6)).await;
}

#[tokio::test]
async fn scope_isolation_holds_at_similarity_one_in_the_index() {
    // The same text in two scopes: the vectors are identical (similarity 1.0), yet each
    // scope gets only its own answer, from either tier.
    let cache = memory_cache(0.5);
    let acme = scope();
    let globex = Scope::new("globex", "gpt-4o", "You are a support agent.");
    cache
        .store(&acme, "What is the refund policy", "acme: 30 days", "m")
        .await
        .unwrap();
    cache
        .store(&globex, "What is the refund policy", "globex: 14 days", "m")
        .await
        .unwrap();
    assert_eq!(cache.index().len(), 2);
    let a = cache
        .lookup(&acme, "what is the refund policy?")
        .await
        .unwrap();
    let g = cache
        .lookup(&globex, "What is the refund policy")
        .await
        .unwrap();
    assert_eq!(a.response(), Some("acme: 30 days"));
    assert_eq!(g.response(), Some("globex: 14 days"));
    let a2 = cache
        .lookup(&acme, "so what is the refund policy")
        .await
        .unwrap();
    assert_eq!(
        (a2.tier, a2.response()),
        (Tier::Similar, Some("acme: 30 days"))
    );
}

#[test]
fn normalization_is_pinned() {
    assert_eq!(
        normalize_query("  How do I\tRESET my  password?? "),
        "how do i reset my password"
    );
    assert_eq!(normalize_query("Hello."), "hello");
    assert_eq!(normalize_query("Ünïcode CAFÉ!"), "ünïcode café");
    // Inner punctuation is meaning, not noise.
    assert_ne!(
        normalize_query("Let's eat, grandma"),
        normalize_query("Let's eat grandma")
    );
}

#[test]
fn the_key_is_namespaced_scoped_and_the_same_for_equivalent_queries() {
    let cache = memory_cache(0.9);
    let k = cache.key(&scope(), "How do I reset my password?");
    assert_eq!(k, cache.key(&scope(), "how do i reset my password"));
    assert!(k.starts_with(&format!("semantic:{}:", scope().id())), "{k}");
    assert_eq!(k.len(), "semantic:".len() + 64 + 1 + 64);
    assert_ne!(
        k,
        cache.key(
            &Scope::new("globex", "gpt-4o", ""),
            "How do I reset my password?"
        )
    );
}

#[tokio::test]
async fn storing_the_same_query_again_replaces_the_answer() {
    let cache = memory_cache(0.9);
    let s = scope();
    cache
        .store(&s, "Where is my order?", "old", "m")
        .await
        .unwrap();
    cache
        .store(&s, "where is my order", "new", "m")
        .await
        .unwrap();
    assert_eq!(cache.index().len(), 1);
    assert_eq!(
        cache
            .lookup(&s, "Where is my order?")
            .await
            .unwrap()
            .response(),
        Some("new")
    );
}

#[tokio::test]
async fn a_guard_rejects_a_similar_candidate_that_asks_about_a_different_number() {
    // Vectors alone would serve the cached answer: the queries share all but one word.
    let s = scope();
    let q_cached = "what is the price of the plan for 10 users in our team";
    let q_new = "what is the price of the plan for 50 users in our team";

    let unguarded = unguarded_memory_cache(0.6);
    unguarded.store(&s, q_cached, "$100", "m").await.unwrap();
    assert_eq!(
        unguarded.lookup(&s, q_new).await.unwrap().tier,
        Tier::Similar
    );

    let guarded = memory_cache(0.6);
    guarded.store(&s, q_cached, "$100", "m").await.unwrap();
    let l = guarded.lookup(&s, q_new).await.unwrap();
    assert_eq!(l.tier, Tier::Miss);
    assert!(l.similarity.unwrap() >= 0.6);
    assert_eq!(l.rejected.unwrap().guard, GuardKind::Numbers);
}

#[tokio::test]
async fn a_rejected_best_candidate_lets_the_next_acceptable_one_answer() {
    let s = scope();
    let cache = memory_cache(0.5);
    let nearest = "what is the price of the team plan for 10 users";
    let reworded = "the team plan price for 50 users, what is it";
    cache.store(&s, nearest, "$100", "m").await.unwrap();
    cache.store(&s, reworded, "$500", "m").await.unwrap();
    let query = "hi, what is the price of the team plan for 50 users";

    // Without guards the nearest (wrong) answer is served...
    let unguarded = unguarded_memory_cache(0.5);
    unguarded.store(&s, nearest, "$100", "m").await.unwrap();
    unguarded.store(&s, reworded, "$500", "m").await.unwrap();
    assert_eq!(
        unguarded.lookup(&s, query).await.unwrap().response(),
        Some("$100")
    );

    // ...with them, the nearest is rejected for its number and the next one answers.
    let l = cache.lookup(&s, query).await.unwrap();
    assert_eq!(
        (l.tier, l.response()),
        (Tier::Similar, Some("$500")),
        "{l:?}"
    );
}

#[tokio::test]
async fn an_index_entry_whose_answer_is_gone_is_dropped_on_lookup() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = cache_on(backend.clone(), 0.6);
    let s = scope();
    cache
        .store(&s, "How do I reset my password?", "link", "m")
        .await
        .unwrap();
    // The backend loses the entry (eviction, expiry, a delete by another process).
    let key = cache.key(&s, "How do I reset my password?");
    assert!(backend.delete(&key).await.unwrap());
    let l = cache
        .lookup(&s, "so how do I reset my password please")
        .await
        .unwrap();
    assert_eq!(l.tier, Tier::Miss);
    assert_eq!(cache.index().len(), 0);
}

#[tokio::test]
async fn a_corrupt_or_foreign_backend_entry_is_never_served() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = cache_on(backend.clone(), 0.6);
    let s = scope();
    let key = cache.key(&s, "How do I reset my password?");
    backend
        .set(&key, Bytes::from_static(b"not an answer"), None)
        .await
        .unwrap();
    assert_eq!(
        cache
            .lookup(&s, "How do I reset my password?")
            .await
            .unwrap()
            .tier,
        Tier::Miss
    );

    // An entry stored for another scope, copied under this scope's key.
    let other = Scope::new("globex", "gpt-4o", "You are a support agent.");
    cache
        .store(&other, "How do I reset my password?", "globex secret", "m")
        .await
        .unwrap();
    let foreign = backend
        .get(&cache.key(&other, "How do I reset my password?"))
        .await
        .unwrap();
    backend.set(&key, foreign.unwrap(), None).await.unwrap();
    assert_eq!(
        cache
            .lookup(&s, "How do I reset my password?")
            .await
            .unwrap()
            .tier,
        Tier::Miss
    );
}

#[tokio::test]
async fn cost_aware_lookup_accepts_lower_similarity_only_when_the_call_is_expensive() {
    let s = scope();
    let cache = SemanticCache::builder(
        Arc::new(MemoryBackend::new()),
        Arc::new(HashingEmbedder::new(DIM).unwrap()),
        Arc::new(FlatIndex::builder(DIM).build().unwrap()),
    )
    .similarity_threshold(0.95)
    .min_similarity(0.5)
    .build()
    .unwrap();
    cache
        .store(&s, "How do I reset my password?", "link", "m")
        .await
        .unwrap();
    let q = "so how do I reset my password please";
    let plain = cache.lookup(&s, q).await.unwrap();
    assert_eq!(plain.tier, Tier::Miss, "below the 0.95 threshold");
    let sim = f64::from(plain.similarity.unwrap());

    let cheap = Cost {
        api_cost_per_1k_tokens: 0.0005,
        expected_tokens: 100,
    };
    assert_eq!(
        cache.lookup_with_cost(&s, q, cheap).await.unwrap().tier,
        Tier::Miss
    );
    // Expensive enough that the cost incentive (capped at 1.0) beats the mismatch penalty.
    let tokens = ((1.0 - sim) * 0.7 / 0.3 * 1000.0 / 0.06).ceil() as u64 + 1000;
    let dear = Cost {
        api_cost_per_1k_tokens: 0.06,
        expected_tokens: tokens,
    };
    let l = cache.lookup_with_cost(&s, q, dear).await.unwrap();
    assert_eq!((l.tier, l.response()), (Tier::Similar, Some("link")));

    // Never below the floor, whatever the cost.
    let unrelated = cache
        .lookup_with_cost(&s, "best pizza toppings in naples", dear)
        .await
        .unwrap();
    assert_eq!(unrelated.tier, Tier::Miss);
}

#[test]
fn invalid_settings_are_typed_errors() {
    let build = |dim_index: usize,
                 f: fn(
        lexicache_semantic::SemanticCacheBuilder,
    ) -> lexicache_semantic::SemanticCacheBuilder| {
        f(SemanticCache::builder(
            Arc::new(MemoryBackend::new()),
            Arc::new(HashingEmbedder::new(DIM).unwrap()),
            Arc::new(FlatIndex::builder(dim_index).build().unwrap()),
        ))
        .build()
    };
    assert!(matches!(
        build(DIM + 1, |b| b),
        Err(Error::DimensionMismatch { expected, actual }) if expected == DIM + 1 && actual == DIM
    ));
    for bad in [
        (|b| b.similarity_threshold(1.5)) as fn(SemanticCacheBuilder) -> SemanticCacheBuilder,
        |b| b.similarity_threshold(f32::NAN),
        |b| b.similarity_threshold(0.8).min_similarity(0.9),
        |b| b.candidates(0),
        |b| b.ttl(std::time::Duration::ZERO),
    ] {
        assert!(matches!(build(DIM, bad), Err(Error::InvalidInput(_))));
    }
}

/// An embedder that fails after `ok_calls` successful calls (the model or API went away).
#[derive(Debug)]
struct FailingEmbedder {
    inner: HashingEmbedder,
    ok_calls: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl EmbeddingClient for FailingEmbedder {
    async fn embed(&self, texts: &[&str]) -> lexicache_semantic::Result<Vec<Vec<f32>>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok_calls {
            return Err(Error::Embedding("model unavailable".into()));
        }
        self.inner.embed(texts).await
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
}

#[tokio::test]
async fn an_embedder_failure_is_a_typed_error_and_tier_one_still_answers() {
    let cache = SemanticCache::builder(
        Arc::new(MemoryBackend::new()),
        Arc::new(FailingEmbedder {
            inner: HashingEmbedder::new(DIM).unwrap(),
            ok_calls: 1,
            calls: AtomicUsize::new(0),
        }),
        Arc::new(FlatIndex::builder(DIM).build().unwrap()),
    )
    .build()
    .unwrap();
    let s = scope();
    cache
        .store(&s, "How do I reset my password?", "link", "m")
        .await
        .unwrap();
    // Tier 1 needs no embedding.
    assert_eq!(
        cache
            .lookup(&s, "how do i reset my password")
            .await
            .unwrap()
            .tier,
        Tier::Exact
    );
    assert!(matches!(
        cache.lookup(&s, "something else entirely").await,
        Err(Error::Embedding(_))
    ));
    assert!(matches!(
        cache.store(&s, "q", "r", "m").await,
        Err(Error::Embedding(_))
    ));
}

#[tokio::test]
async fn a_dead_backend_is_a_typed_backend_error() {
    // A Redis client pointed at a loopback port nobody listens on.
    let backend = RedisBackend::builder()
        .url("redis://127.0.0.1:1/0")
        .connect_timeout(std::time::Duration::from_millis(200))
        .command_timeout(std::time::Duration::from_millis(500))
        .connect_lazy()
        .unwrap();
    let cache = cache_on(Arc::new(backend), 0.8);
    let err = cache.lookup(&scope(), "anything").await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let core: lexicache_core::Error = err.into();
    assert!(matches!(
        core.kind(),
        lexicache_core::ErrorKind::Connection | lexicache_core::ErrorKind::Timeout
    ));
}

#[tokio::test]
async fn vectors_of_another_embedder_in_a_shared_index_are_never_compared() {
    // Two caches share one index (as a reloaded index does after the embedder changed):
    // same dimension, same scope, different embedder model ids.
    #[derive(Debug)]
    struct Renamed(HashingEmbedder);
    #[async_trait]
    impl EmbeddingClient for Renamed {
        async fn embed(&self, texts: &[&str]) -> lexicache_semantic::Result<Vec<Vec<f32>>> {
            self.0.embed(texts).await
        }
        fn dimension(&self) -> usize {
            self.0.dimension()
        }
        fn model_id(&self) -> &str {
            "another-model"
        }
    }
    let index = Arc::new(FlatIndex::builder(DIM).build().unwrap());
    let backend: Arc<dyn CacheBackend> = Arc::new(MemoryBackend::new());
    let old = SemanticCache::builder(
        backend.clone(),
        Arc::new(HashingEmbedder::new(DIM).unwrap()),
        index.clone(),
    )
    .similarity_threshold(0.6)
    .build()
    .unwrap();
    let new = SemanticCache::builder(
        backend,
        Arc::new(Renamed(HashingEmbedder::new(DIM).unwrap())),
        index,
    )
    .similarity_threshold(0.6)
    .build()
    .unwrap();
    let s = scope();
    old.store(&s, "How do I reset my password?", "link", "m")
        .await
        .unwrap();
    let near = "so how do I reset my password please";
    assert_eq!(old.lookup(&s, near).await.unwrap().tier, Tier::Similar);
    let l = new.lookup(&s, near).await.unwrap();
    assert_eq!((l.tier, l.similarity), (Tier::Miss, None));
    // Tier 1 does not depend on the embedder.
    assert_eq!(
        new.lookup(&s, "How do I reset my password?")
            .await
            .unwrap()
            .tier,
        Tier::Exact
    );
}
