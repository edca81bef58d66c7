//! [`MiniLmEmbedder`]: all-MiniLM-L6-v2 sentence embeddings in pure Rust (candle + tokenizers).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{
    Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy,
};

use crate::{EmbeddingClient, Error, Result};

/// The environment variable [`MiniLmEmbedder::from_env`] reads: the directory that
/// `cargo xtask fetch-models` fills (the model is in its `all-MiniLM-L6-v2` subdirectory).
const MODEL_DIR_VAR: &str = "LEXICACHE_MODEL_DIR";

/// The subdirectory of `$LEXICACHE_MODEL_DIR` holding the model files.
const MODEL_SUBDIR: &str = "all-MiniLM-L6-v2";

/// The files [`MiniLmEmbedder::from_dir`] reads.
const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
const WEIGHTS_FILE: &str = "model.safetensors";

/// The model id every [`MiniLmEmbedder`] reports.
const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Inputs longer than this many tokens (the `[CLS]` and `[SEP]` markers included) are cut,
/// as sentence-transformers does for this model (`max_seq_length = 256`).
const MAX_TOKENS: usize = 256;

/// The default number of texts run through the model at once.
const DEFAULT_BATCH_SIZE: usize = 32;

/// How to get the model files, appended to every "files missing" error.
const FETCH_HINT: &str =
    "run `cargo xtask fetch-models` and export LEXICACHE_MODEL_DIR=<the directory it prints>";

/// The sentence embedder all-MiniLM-L6-v2 (384 dimensions), run on the CPU in pure Rust with
/// [candle](https://github.com/huggingface/candle) and
/// [tokenizers](https://github.com/huggingface/tokenizers).
///
/// It reads `config.json`, `tokenizer.json` and `model.safetensors` from a local directory
/// ([`from_dir`](Self::from_dir)), or from `$LEXICACHE_MODEL_DIR/all-MiniLM-L6-v2`
/// ([`from_env`](Self::from_env)); `cargo xtask fetch-models` downloads and checks them.
/// Nothing is fetched over the network at run time.
///
/// A text becomes a vector the way sentence-transformers computes it for this model, so
/// vectors match those of the Python library to about 1e-6:
///
/// - tokenized with the shipped WordPiece tokenizer, truncated to 256 tokens (longer text is
///   cut, never an error);
/// - run through the 6-layer BERT encoder in f32;
/// - **mean pooling over the real tokens only** (padding is masked out), then **L2
///   normalization**. A text's vector does not depend on the other texts of its batch: each
///   batch is padded only to its longest input (the shipped `tokenizer.json` pads every
///   input to 128 tokens; that setting is overridden) and padding is masked.
///
/// [`embed`](EmbeddingClient::embed) runs the model on tokio's blocking thread pool
/// ([`spawn_blocking`](tokio::task::spawn_blocking)), never on an async worker, in chunks of
/// at most [`batch_size`](Self::batch_size) texts. It needs a tokio runtime. Dropping the
/// future does not stop a chunk already running; its result is discarded.
///
/// **Text with no tokens** (empty, or only whitespace and control characters) is
/// [`Error::InvalidInput`], as it is for [`HashingEmbedder`](crate::HashingEmbedder): such
/// a query carries no meaning, and its vector would match every other empty query.
/// Punctuation alone is text (it has tokens) and embeds. An empty batch gives an empty
/// result.
///
/// The embedder is cheap to clone (the weights are shared) and its `Debug` output names the
/// model and directory, not the weights.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
/// use lexicache_semantic::{EmbeddingClient, MiniLmEmbedder};
///
/// // After `cargo xtask fetch-models` and `export LEXICACHE_MODEL_DIR=...`:
/// let embedder = MiniLmEmbedder::from_env()?;
/// let v = embedder
///     .embed(&["How do I reset my password?", "I forgot my password, how can I change it?"])
///     .await?;
/// assert_eq!(v[0].len(), 384);
/// let cosine: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
/// assert!(cosine > 0.6);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MiniLmEmbedder {
    inner: Arc<Inner>,
    batch_size: usize,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    dir: PathBuf,
}

impl fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("model_id", &MODEL_ID)
            .field("dir", &self.inner.dir)
            .field("dimension", &self.inner.dim)
            .field("max_tokens", &MAX_TOKENS)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl MiniLmEmbedder {
    /// Loads the model from `dir`, which must hold `config.json`, `tokenizer.json` and
    /// `model.safetensors` (as `cargo xtask fetch-models` lays them out in
    /// `$LEXICACHE_MODEL_DIR/all-MiniLM-L6-v2`). The weights are read into memory (about
    /// 90 MB) and run on the CPU in f32.
    ///
    /// A missing file is [`Error::InvalidInput`] naming the file and how to fetch it; a file
    /// that cannot be parsed or does not hold a BERT model is [`Error::Embedding`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let [config_path, tokenizer_path, weights_path] =
            [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE].map(|f| dir.join(f));
        for path in [&config_path, &tokenizer_path, &weights_path] {
            if !path.is_file() {
                return Err(Error::InvalidInput(format!(
                    "MiniLM model file {} not found; {FETCH_HINT}",
                    path.display()
                )));
            }
        }

        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::Embedding(format!("reading {}: {e}", config_path.display())))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| {
            Error::Embedding(format!(
                "{} is not a BERT config: {e}",
                config_path.display()
            ))
        })?;

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            Error::Embedding(format!(
                "{} is not a tokenizer: {e}",
                tokenizer_path.display()
            ))
        })?;
        // The shipped tokenizer pads every input to a fixed 128 tokens and truncates at 128.
        // Pad to the longest input of each batch instead (padding is masked, so it only costs
        // time), and truncate at the model's 256.
        let padding = match tokenizer.get_padding() {
            Some(p) => PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                ..p.clone()
            },
            None => PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
                ..PaddingParams::default()
            },
        };
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::Embedding(format!("configuring truncation: {e}")))?;

        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(&weights_path, &device).map_err(|e| {
            Error::Embedding(format!(
                "{} is not a safetensors file: {e}",
                weights_path.display()
            ))
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| {
            Error::Embedding(format!(
                "{} does not hold the BERT model its config describes: {e}",
                weights_path.display()
            ))
        })?;

        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
                dim: config.hidden_size,
                dir: dir.to_path_buf(),
            }),
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Loads the model from `$LEXICACHE_MODEL_DIR/all-MiniLM-L6-v2` (see
    /// [`from_dir`](Self::from_dir)). An unset variable is [`Error::InvalidInput`] saying to
    /// run `cargo xtask fetch-models` and export `LEXICACHE_MODEL_DIR`.
    pub fn from_env() -> Result<Self> {
        let root = std::env::var_os(MODEL_DIR_VAR).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{MODEL_DIR_VAR} is not set, so the MiniLM model cannot be found; {FETCH_HINT}"
            ))
        })?;
        Self::from_dir(Path::new(&root).join(MODEL_SUBDIR))
    }

    /// Sets how many texts go through the model at once (default 32). Larger batches are a
    /// little faster per text and use more memory; a zero size is [`Error::InvalidInput`].
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidInput("batch size must be at least 1".into()));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// How many texts go through the model at once.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Embeds texts on the calling thread, blocking it for the duration (milliseconds per
    /// text). Async code should call [`embed`](EmbeddingClient::embed), which runs this on
    /// the blocking thread pool.
    pub fn embed_blocking(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed(texts, self.batch_size)
    }
}

impl Inner {
    fn embed(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Texts of similar length share a batch, so little time goes into padding. Character
        // length is a cheap stand-in for token length; the order changes no result, because
        // padding is masked.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());

        // Tokenize everything first (cheap), so text with no tokens is rejected before any
        // model time is spent.
        let mut chunks = Vec::with_capacity(texts.len().div_ceil(batch_size));
        for idx in order.chunks(batch_size) {
            let batch: Vec<&str> = idx.iter().map(|&i| texts[i]).collect();
            let encodings = self
                .tokenizer
                .encode_batch(batch, true)
                .map_err(|e| Error::Embedding(format!("tokenizing: {e}")))?;
            for (&i, enc) in idx.iter().zip(&encodings) {
                let special = enc.get_special_tokens_mask();
                let real = enc.get_attention_mask();
                if !real.iter().zip(special).any(|(&r, &s)| r == 1 && s == 0) {
                    return Err(Error::InvalidInput(format!(
                        "text #{i} has no tokens to embed (it is empty or only whitespace)"
                    )));
                }
            }
            chunks.push((idx, encodings));
        }

        let mut out = vec![Vec::new(); texts.len()];
        for (idx, encodings) in chunks {
            let vectors = self
                .run(&encodings)
                .map_err(|e| Error::Embedding(format!("running the MiniLM model: {e}")))?;
            for (&i, v) in idx.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One forward pass over a padded batch, then masked mean pooling and L2 normalization.
    fn run(&self, encodings: &[Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = encodings.len();
        let len = encodings.first().map_or(0, Encoding::len);
        let mut ids = Vec::with_capacity(rows * len);
        let mut type_ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for enc in encodings {
            if enc.len() != len {
                candle_core::bail!("tokenizer returned a ragged batch");
            }
            ids.extend_from_slice(enc.get_ids());
            type_ids.extend_from_slice(enc.get_type_ids());
            mask.extend_from_slice(enc.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, (rows, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (rows, len, dim)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, dim)
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

#[async_trait]
impl EmbeddingClient for MiniLmEmbedder {
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        let inner = Arc::clone(&self.inner);
        let batch_size = self.batch_size;
        tokio::task::spawn_blocking(move || {
            let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
            inner.embed(&texts, batch_size)
        })
        .await
        .map_err(|e| Error::Embedding(format!("the embedding task failed: {e}")))?
    }

    fn dimension(&self) -> usize {
        self.inner.dim
    }

    fn model_id(&self) -> &str {
        MODEL_ID
    }
}
