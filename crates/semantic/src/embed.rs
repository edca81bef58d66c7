//! [`EmbeddingClient`], the embedder contract, and [`HashingEmbedder`], a model-free embedder.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::{vector, Error, Result};

/// Turns texts into vectors whose cosine similarity tracks how alike the texts are.
///
/// The trait is object safe (through [`async_trait`](mod@async_trait)), so embedders are
/// chosen at run time (`Arc<dyn EmbeddingClient>`).
#[async_trait]
pub trait EmbeddingClient: Send + Sync + Debug {
    /// Embeds a batch of texts: one vector of [`dimension`](Self::dimension) floats per text,
    /// in input order. Implementations return L2-normalized vectors.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing but the batch's work; embedders keep no state
    /// between calls that a cancelled call could leave half-updated.
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;

    /// The length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// A stable identifier of the model and its settings. Vectors from different model ids
    /// are not comparable, so a cache keys its scope and its persisted index on it.
    fn model_id(&self) -> &str;
}

/// A deterministic embedder with no model: feature hashing of word unigrams and bigrams.
///
/// The text is normalized (lowercased; every run of characters that are not letters or
/// digits is a word break), then each word and each pair of adjacent words is hashed
/// (FNV-1a, 64 bits) into one of `dim` buckets with a sign taken from the hash, and the
/// result is L2-normalized. Texts sharing many words and word pairs get a high cosine; the
/// same text always gets the same vector, on every platform and release.
///
/// It understands no meaning (paraphrases with different words score low), so it is for
/// tests and for caches of near-verbatim repeats, not for real semantic matching.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
/// use lexicache_semantic::{EmbeddingClient, HashingEmbedder};
///
/// let embedder = HashingEmbedder::new(256)?;
/// let v = embedder.embed(&["How do I reset my password?", "how do i RESET my password"]).await?;
/// assert_eq!(v[0], v[1]);
/// assert_eq!(v[0].len(), 256);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dim: usize,
    model_id: String,
}

impl HashingEmbedder {
    /// An embedder producing `dim`-dimensional vectors. A zero `dim` is
    /// [`Error::InvalidInput`].
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::InvalidInput(
                "embedding dimension must be at least 1".into(),
            ));
        }
        Ok(Self {
            dim,
            model_id: format!("lexicache-hashing-v1-{dim}"),
        })
    }

    /// Embeds one text synchronously (the work is a few microseconds of hashing).
    ///
    /// Text with no letters or digits has no features and is [`Error::InvalidInput`].
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Err(Error::InvalidInput("text has no words to embed".into()));
        }
        let mut v = vec![0f32; self.dim];
        let mut add = |h: u64| {
            let bucket = (h % self.dim as u64) as usize;
            // The top bit picks the sign, so colliding features cancel on average
            // instead of inflating every similarity.
            v[bucket] += if h >> 63 == 0 { 1.0 } else { -1.0 };
        };
        for w in &words {
            add(fnv1a(&[b"1:", w.as_bytes()]));
        }
        for pair in words.windows(2) {
            add(fnv1a(&[
                b"2:",
                pair[0].as_bytes(),
                b" ",
                pair[1].as_bytes(),
            ]));
        }
        if v.iter().all(|x| *x == 0.0) {
            // Every feature cancelled out; fall back to the unsigned first word so the text
            // still has a direction.
            v[(fnv1a(&[b"1:", words[0].as_bytes()]) % self.dim as u64) as usize] = 1.0;
        }
        vector::normalize(&mut v)?;
        Ok(v)
    }
}

#[async_trait]
impl EmbeddingClient for HashingEmbedder {
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        vector::dot(a, b)
    }

    #[tokio::test]
    async fn hashing_embedder_is_deterministic_and_normalized() {
        let e = HashingEmbedder::new(64).unwrap();
        let a = e
            .embed(&["The quick brown fox", "the QUICK, brown fox!"])
            .await
            .unwrap();
        assert_eq!(a[0], a[1]);
        assert_eq!(
            a[0],
            HashingEmbedder::new(64)
                .unwrap()
                .embed_one("the quick brown fox")
                .unwrap()
        );
        let norm: f32 = a[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn hashing_embedder_output_is_pinned() {
        // Feature hashing must not drift between releases: persisted indexes depend on it.
        // The buckets and signs were computed by an independent FNV-1a implementation.
        let v = HashingEmbedder::new(64)
            .unwrap()
            .embed_one("Reset my PASSWORD")
            .unwrap();
        let unit = 1.0 / 5f32.sqrt();
        let mut pinned = vec![0f32; 64];
        for (bucket, sign) in [(2, 1.0), (5, -1.0), (31, -1.0), (44, 1.0), (60, -1.0)] {
            pinned[bucket] = sign * unit;
        }
        for (got, want) in v.iter().zip(&pinned) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
    }

    #[tokio::test]
    async fn batch_embed_keeps_input_order_and_dimension() {
        let e = HashingEmbedder::new(32).unwrap();
        let texts = ["alpha", "beta", "gamma"];
        let batch = e.embed(&texts).await.unwrap();
        assert_eq!(batch.len(), 3);
        for (t, v) in texts.iter().zip(&batch) {
            assert_eq!(v.len(), e.dimension());
            assert_eq!(v, &e.embed_one(t).unwrap());
        }
        assert_eq!(e.model_id(), "lexicache-hashing-v1-32");
    }

    #[test]
    fn shared_words_score_higher_than_unrelated_text() {
        let e = HashingEmbedder::new(1024).unwrap();
        let q = e.embed_one("how do I reset my password").unwrap();
        let near = e.embed_one("how can I reset my password").unwrap();
        let far = e.embed_one("best pizza toppings in naples").unwrap();
        assert!(cos(&q, &near) > 0.6, "{}", cos(&q, &near));
        assert!(cos(&q, &far) < 0.2, "{}", cos(&q, &far));
    }

    #[test]
    fn word_order_matters_through_bigrams() {
        let e = HashingEmbedder::new(1024).unwrap();
        let a = e.embed_one("dog bites man").unwrap();
        let b = e.embed_one("man bites dog").unwrap();
        assert!(cos(&a, &b) < 0.99);
    }

    #[tokio::test]
    async fn text_without_words_and_zero_dimension_are_typed_errors() {
        assert!(matches!(
            HashingEmbedder::new(0),
            Err(Error::InvalidInput(_))
        ));
        let e = HashingEmbedder::new(16).unwrap();
        assert!(matches!(
            e.embed(&["ok", "  ?! "]).await,
            Err(Error::InvalidInput(_))
        ));
    }
}
