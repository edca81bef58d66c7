//! [`OpenAiEmbedder`]: embeddings from an OpenAI-compatible `/v1/embeddings` HTTP API.
//!
//! The same wire protocol is served by OpenAI and by most self-hosted model servers (vLLM,
//! Ollama, LM Studio, llama.cpp, text-embeddings-inference), so one client covers them all.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    time::Duration,
};

use async_trait::async_trait;
use reqwest::{
    header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER},
    redirect, StatusCode, Url,
};
use serde::{Deserialize, Serialize};

use crate::{vector, EmbeddingClient, Error, Result};

/// Inputs per request unless [`OpenAiEmbedderBuilder::batch_size`] says otherwise.
const DEFAULT_BATCH_SIZE: usize = 64;
/// Per-request timeout unless [`OpenAiEmbedderBuilder::timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect timeout unless [`OpenAiEmbedderBuilder::connect_timeout`] says otherwise.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt unless [`OpenAiEmbedderBuilder::max_retries`] says
/// otherwise.
const DEFAULT_MAX_RETRIES: u32 = 3;
/// The first retry's backoff unless [`OpenAiEmbedderBuilder::backoff`] says otherwise.
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts unless [`OpenAiEmbedderBuilder::backoff`] says
/// otherwise.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How much of a server's error message an [`Error`] quotes, in characters.
const MAX_SERVER_MESSAGE_CHARS: usize = 200;

/// Statuses that say "try again later" rather than "this request is wrong".
const RETRYABLE_STATUSES: [StatusCode; 5] = [
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// An [`EmbeddingClient`] for the OpenAI-compatible embeddings API (`POST /v1/embeddings`).
///
/// # Endpoint
///
/// The builder's `base_url` may be given with or without the API version: the rule is
/// that trailing slashes are dropped, then `/embeddings` is appended if the path already
/// ends in `/v1`, and `/v1/embeddings` otherwise. So `http://localhost:8000`,
/// `http://localhost:8000/` and `http://localhost:8000/v1` all post to
/// `http://localhost:8000/v1/embeddings`, and `https://gateway.example/openai` posts to
/// `https://gateway.example/openai/v1/embeddings`. Only `http` and `https` URLs without
/// credentials, query or fragment are accepted; the API key goes in
/// [`api_key`](OpenAiEmbedderBuilder::api_key). Redirects are not followed.
///
/// # Protocol
///
/// Each request is `{"model": .., "input": [..]}` (plus `"dimensions"` when
/// [`send_dimensions`](OpenAiEmbedderBuilder::send_dimensions) is on). The response's
/// `data` items are put back in input order by their `index`; their number and every
/// vector's length are checked, and every vector is L2-normalized. A malformed body, a
/// wrong count or length, a duplicate or out-of-range index, or a zero or non-finite vector
/// is [`Error::Embedding`] and is not retried (asking again would get the same answer).
///
/// # Batching and retries
///
/// Inputs are sent [`batch_size`](OpenAiEmbedderBuilder::batch_size) at a time, one
/// request after another, and the results concatenated in input order. A batch whose
/// request fails with a connection error, a timeout, or status 429, 500, 502, 503 or 504 is
/// sent again, up to [`max_retries`](OpenAiEmbedderBuilder::max_retries) times, after an
/// exponential backoff with jitter; on 429 and 503 a `Retry-After` (seconds) or
/// `retry-after-ms` header sets the wait instead, capped at the maximum backoff. Only the
/// failed batch is sent again, never the batches that already succeeded; when the retries
/// run out the error is [`Error::EmbeddingUnavailable`] (attempts, whether it timed out; a
/// retryable `Connection` or `Timeout` as a `lexicache_core::Error`). Any other status
/// fails at once as [`Error::EmbeddingRejected`] with the status and the server's message
/// (truncated).
///
/// # Secrets
///
/// The API key is sent only as an `Authorization: Bearer` header. It never appears in
/// `Debug` output, in logs or in errors (a server message quoting it is scrubbed).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lexicache_semantic::Result<()> {
/// use std::time::Duration;
/// use lexicache_semantic::{EmbeddingClient, OpenAiEmbedder};
///
/// let embedder = OpenAiEmbedder::builder("https://api.openai.com/v1", "text-embedding-3-small", 1536)
///     .api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default())
///     .timeout(Duration::from_secs(10))
///     .max_retries(3)
///     .build()?;
/// let vectors = embedder.embed(&["How do I reset my password?"]).await?;
/// assert_eq!(vectors[0].len(), 1536);
/// # Ok(()) }
/// ```
///
/// (`no_run` because it needs the network; `tests/openai.rs` runs the same calls against a
/// local server.)
#[derive(Clone)]
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    endpoint: Url,
    model: String,
    dimension: usize,
    model_id: String,
    api_key: Option<ApiKey>,
    send_dimensions: bool,
    batch_size: usize,
    timeout: Duration,
    connect_timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl OpenAiEmbedder {
    /// Starts configuring a client for `model`, whose vectors have `dimension` floats, served
    /// at `base_url` (with or without the trailing `/v1`; see [Endpoint](Self#endpoint)).
    pub fn builder(
        base_url: impl Into<String>,
        model: impl Into<String>,
        dimension: usize,
    ) -> OpenAiEmbedderBuilder {
        OpenAiEmbedderBuilder {
            base_url: base_url.into(),
            model: model.into(),
            dimension,
            api_key: None,
            send_dimensions: false,
            batch_size: DEFAULT_BATCH_SIZE,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }

    /// The URL requests are posted to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The model name sent in every request.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Embeds one batch (at most `batch_size` texts), retrying it on transient failures.
    async fn embed_batch(&self, batch: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut retries = 0;
        loop {
            let (message, retry_after, timed_out) = match self.attempt(batch).await {
                Ok(vectors) => return Ok(vectors),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient {
                    message,
                    retry_after,
                    timed_out,
                }) => (message, retry_after, timed_out),
            };
            if retries >= self.max_retries {
                return Err(Error::EmbeddingUnavailable {
                    attempts: retries + 1,
                    timed_out,
                    message: format!("request to {}: {message}", self.endpoint),
                });
            }
            let delay = backoff_delay(
                retries,
                self.initial_backoff,
                self.max_backoff,
                retry_after,
                jitter_fraction(),
            );
            tracing::warn!(
                endpoint = %self.endpoint,
                model = %self.model,
                retry = retries + 1,
                max_retries = self.max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %message,
                "embedding request failed; retrying"
            );
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }

    /// One request for one batch.
    async fn attempt(&self, batch: &[&str]) -> Result<Vec<Vec<f32>>, Failure> {
        let body = EmbeddingRequest {
            model: &self.model,
            input: batch,
            dimensions: self.send_dimensions.then_some(self.dimension),
        };
        let mut request = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(key) = &self.api_key {
            request = request.header(AUTHORIZATION, key.header.clone());
        }
        tracing::debug!(endpoint = %self.endpoint, inputs = batch.len(), "embedding request");
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
            return self.parse(&bytes, batch.len()).map_err(Failure::Fatal);
        }
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            retry_after(response.headers())
        } else {
            None
        };
        // The status is the error; a body that cannot be read only costs its message.
        let bytes = response.bytes().await.unwrap_or_default();
        let message = format!("HTTP {status}: {}", self.server_message(&bytes));
        if RETRYABLE_STATUSES.contains(&status) {
            Err(Failure::Transient {
                message,
                retry_after,
                timed_out: false,
            })
        } else {
            Err(Failure::Fatal(Error::EmbeddingRejected {
                status: status.as_u16(),
                message: format!("request to {}: {message}", self.endpoint),
            }))
        }
    }

    /// Classifies a transport error. Everything but a request that could not be built is
    /// worth retrying: refused or reset connections, timeouts, bodies cut short.
    fn transport(&self, e: &reqwest::Error) -> Failure {
        // reqwest's own text repeats the URL ("error sending request for url (..)"), which
        // the final error already names; the causes say what happened.
        let cause = match std::error::Error::source(e) {
            Some(source) => error_chain(source),
            None => e.to_string(),
        };
        let message = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if e.is_connect() {
            format!("could not connect: {cause}")
        } else {
            format!("connection failed: {cause}")
        };
        if e.is_builder() {
            Failure::Fatal(Error::Embedding(message))
        } else {
            Failure::Transient {
                message,
                retry_after: None,
                timed_out: e.is_timeout(),
            }
        }
    }

    /// The server's error message from an error body: OpenAI's `{"error": {"message": ..}}`,
    /// the `{"error": ".."}` or `{"message": ..}` some servers send, or else the body text.
    /// The API key is scrubbed from it, and it is cut to a readable length.
    fn server_message(&self, body: &[u8]) -> String {
        let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
        let from_json = parsed.as_ref().and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
        let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return "(no message)".into();
        }
        truncate_chars(&self.scrub(text), MAX_SERVER_MESSAGE_CHARS)
    }

    /// `text` with the API key replaced: servers may repeat the request's `Authorization`
    /// header in what they send back, and messages quote what servers send.
    fn scrub(&self, text: String) -> String {
        match &self.api_key {
            Some(key) => text.replace(key.secret.as_str(), "<redacted>"),
            None => text,
        }
    }

    /// Decodes and checks a success body: one vector per input, in input order, each of the
    /// right length, normalized.
    fn parse(&self, body: &[u8], expected: usize) -> Result<Vec<Vec<f32>>> {
        let bad =
            |what: String| Error::Embedding(format!("bad response from {}: {what}", self.endpoint));
        // serde_json's message quotes the offending string, which may be an echoed key.
        let response: EmbeddingResponse = serde_json::from_slice(body)
            .map_err(|e| bad(self.scrub(format!("malformed JSON: {e}"))))?;
        let data = response.data;
        if data.len() != expected {
            return Err(bad(format!(
                "{} embeddings for {expected} inputs",
                data.len()
            )));
        }
        let indexed = data.iter().filter(|d| d.index.is_some()).count();
        if indexed != 0 && indexed != expected {
            return Err(bad("some embeddings have an index and some do not".into()));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in data.into_iter().enumerate() {
            let i = item.index.unwrap_or(position);
            let Some(slot) = slots.get_mut(i) else {
                return Err(bad(format!(
                    "index {i} is out of range for {expected} inputs"
                )));
            };
            let mut v = item.embedding;
            if v.len() != self.dimension {
                return Err(bad(format!(
                    "embedding {i} has {} dimensions, expected {}",
                    v.len(),
                    self.dimension
                )));
            }
            vector::normalize(&mut v).map_err(|e| bad(format!("embedding {i}: {e}")))?;
            if slot.replace(v).is_some() {
                return Err(bad(format!("index {i} appears twice")));
            }
        }
        // Every slot is filled: there are `expected` items, all in range, none repeated.
        slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("an input has no embedding".into()))
    }
}

#[async_trait]
impl EmbeddingClient for OpenAiEmbedder {
    /// Embeds `texts`, [`batch_size`](OpenAiEmbedderBuilder::batch_size) per request. An
    /// empty slice returns at once without a request; an empty text is
    /// [`Error::InvalidInput`] (the API rejects it).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future aborts the request in flight (its connection is closed) and any
    /// backoff wait; no later batch is sent. The embedder itself is not changed.
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if let Some(i) = texts.iter().position(|t| t.is_empty()) {
            return Err(Error::InvalidInput(format!(
                "text {i} is empty; the embeddings API rejects empty input"
            )));
        }
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    /// `openai:{model}:{dimension}`: the vectors depend on the model and, for models that
    /// can shorten them, on the dimension; not on which server computed them.
    fn model_id(&self) -> &str {
        &self.model_id
    }
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("api_key", &self.api_key)
            .field("send_dimensions", &self.send_dimensions)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// Configures an [`OpenAiEmbedder`]; [`build`](Self::build) checks every setting.
#[must_use]
#[derive(Clone)]
pub struct OpenAiEmbedderBuilder {
    base_url: String,
    model: String,
    dimension: usize,
    api_key: Option<String>,
    send_dimensions: bool,
    batch_size: usize,
    timeout: Duration,
    connect_timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl OpenAiEmbedderBuilder {
    /// The API key, sent as `Authorization: Bearer {key}`. Without one no `Authorization`
    /// header is sent (local servers usually need none).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The time one request may take, from connecting to the end of the response body
    /// (30 s by default). A request that runs out is retried like a
    /// connection error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time establishing a connection may take (5 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a batch is sent again after a transient failure
    /// (3 by default; 0 never retries). A batch is sent at most
    /// `max_retries + 1` times.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry and the cap on every wait
    /// (200 ms and 10 s by default). The n-th retry
    /// waits `initial * 2^(n-1)`, capped at `max`, then jittered down by up to half, so that
    /// clients failing together do not retry together. A `Retry-After` on 429 or 503 replaces
    /// the computed wait, capped at `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// How many texts go in one request (64 by default; OpenAI accepts
    /// up to 2048). Larger inputs are split and the results concatenated in order.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Whether each request carries `"dimensions": dimension` (off by default). Models that
    /// can shorten their vectors (OpenAI's `text-embedding-3-*`) need it when `dimension` is
    /// below their native size; many other servers reject the field.
    pub fn send_dimensions(mut self, send: bool) -> Self {
        self.send_dimensions = send;
        self
    }

    /// Checks the settings and builds the client. An unusable URL, an empty model, a zero
    /// dimension, batch size or timeout, a backoff whose initial wait is zero or above its
    /// cap, or an API key that cannot be sent in a header is [`Error::InvalidInput`]
    /// (whose message never quotes the key).
    pub fn build(self) -> Result<OpenAiEmbedder> {
        let invalid = |msg: &str| Err(Error::InvalidInput(msg.into()));
        let endpoint = endpoint(&self.base_url)?;
        if self.model.trim().is_empty() {
            return invalid("model name is empty");
        }
        if self.dimension == 0 {
            return invalid("embedding dimension must be at least 1");
        }
        if self.batch_size == 0 {
            return invalid("batch size must be at least 1");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return invalid("timeouts must be longer than zero");
        }
        if self.initial_backoff.is_zero() || self.initial_backoff > self.max_backoff {
            return invalid("backoff must start above zero and not exceed its maximum");
        }
        let api_key = self.api_key.map(ApiKey::new).transpose()?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| Error::Embedding(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(OpenAiEmbedder {
            http,
            endpoint,
            model_id: format!("openai:{}:{}", self.model, self.dimension),
            model: self.model,
            dimension: self.dimension,
            api_key,
            send_dimensions: self.send_dimensions,
            batch_size: self.batch_size,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            max_retries: self.max_retries,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
        })
    }
}

impl fmt::Debug for OpenAiEmbedderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedderBuilder")
            .field("base_url", &redact_url(&self.base_url))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("send_dimensions", &self.send_dimensions)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// The API key and its ready-made, sensitive-marked header value.
#[derive(Clone)]
struct ApiKey {
    secret: String,
    header: HeaderValue,
}

impl ApiKey {
    fn new(secret: String) -> Result<Self> {
        if secret.is_empty() {
            return Err(Error::InvalidInput("API key is empty".into()));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidInput(
                "API key contains whitespace, control or non-ASCII characters".into(),
            ));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| Error::InvalidInput("API key cannot be sent in a header".into()))?;
        header.set_sensitive(true);
        Ok(Self { secret, header })
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt, after `retry_after` if the server named a wait.
    Transient {
        message: String,
        retry_after: Option<Duration>,
        timed_out: bool,
    },
    /// Another attempt would fail the same way.
    Fatal(Error),
}

/// The endpoint for a base URL (see [`OpenAiEmbedder`]'s "Endpoint" section).
fn endpoint(base_url: &str) -> Result<Url> {
    let invalid = |why: &str| {
        Err(Error::InvalidInput(format!(
            "base URL {:?} {why}",
            redact_url(base_url)
        )))
    };
    let Ok(mut url) = Url::parse(base_url.trim()) else {
        return invalid("is not a valid URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return invalid("must be http or https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not contain credentials; use `api_key`");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return invalid("must not have a query or fragment");
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let suffix = if path.ends_with("/v1") {
        "/embeddings"
    } else {
        "/v1/embeddings"
    };
    url.set_path(&format!("{path}{suffix}"));
    Ok(url)
}

/// `base_url` with any password replaced, for messages about a URL that was rejected.
fn redact_url(base_url: &str) -> String {
    match Url::parse(base_url.trim()) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        Ok(_) => base_url.to_owned(),
        Err(_) => match base_url.rfind('@') {
            // Unparseable: keep the part after a possible userinfo only.
            Some(at) => format!("<redacted>@{}", &base_url[at + 1..]),
            None => base_url.to_owned(),
        },
    }
}

/// The wait a 429 or 503 asks for: `retry-after-ms` (OpenAI's, milliseconds) or
/// `Retry-After` in seconds. An HTTP-date `Retry-After` is ignored (the computed backoff
/// applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    number("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| number(RETRY_AFTER.as_str()))
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
}

/// The wait before retry number `retry + 1` (so `retry` is 0 before the first retry).
///
/// A server-named wait is used as is, capped at `max`. Otherwise `initial * 2^retry`, capped
/// at `max`, is scaled into its upper half by `jitter` (in [0, 1)): "equal jitter", which
/// spreads clients out while keeping at least half the intended wait.
fn backoff_delay(
    retry: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(max);
    }
    let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
    let full = initial.saturating_mul(factor).min(max);
    let half = full / 2;
    half + (full - half).mul_f64(jitter.clamp(0.0, 1.0))
}

/// A random number in [0, 1) for jitter. `RandomState` is randomly keyed per instance, which
/// is all the randomness jitter needs, without a dependency.
fn jitter_fraction() -> f64 {
    let bits = RandomState::new().hash_one(0u8) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// An error and its sources, `: `-separated (a transport error's useful part, such as
/// "connection refused", is usually a few sources down).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str) -> String {
        endpoint(base).unwrap().to_string()
    }

    #[test]
    fn base_url_gets_v1_embeddings_unless_it_already_ends_in_v1() {
        for base in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8000/v1/",
            " http://127.0.0.1:8000/v1// ",
        ] {
            assert_eq!(url(base), "http://127.0.0.1:8000/v1/embeddings", "{base}");
        }
        assert_eq!(
            url("https://gateway.example/openai"),
            "https://gateway.example/openai/v1/embeddings"
        );
        assert_eq!(
            url("https://gateway.example/openai/v1"),
            "https://gateway.example/openai/v1/embeddings"
        );
        // Only a whole `v1` segment counts.
        assert_eq!(
            url("https://gateway.example/apiv1"),
            "https://gateway.example/apiv1/v1/embeddings"
        );
    }

    #[test]
    fn unusable_base_urls_are_rejected_without_quoting_passwords() {
        for base in [
            "",
            "not a url",
            "ftp://example.com",
            "http://example.com/?key=1",
            "http://example.com/#x",
            "http://user:hunter2@example.com",
        ] {
            let err = endpoint(base).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{base}: {err:?}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn backoff_doubles_within_its_jitter_band_and_stops_at_the_cap() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for (retry, full_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            let full = Duration::from_millis(full_ms);
            assert_eq!(backoff_delay(retry, initial, max, None, 0.0), full / 2);
            assert_eq!(backoff_delay(retry, initial, max, None, 1.0), full);
            let mid = backoff_delay(retry, initial, max, None, 0.5);
            assert!(mid > full / 2 && mid < full, "{retry}: {mid:?}");
        }
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_the_cap() {
        let (initial, max) = (Duration::from_millis(10), Duration::from_secs(2));
        let wait = Duration::from_millis(1500);
        assert_eq!(backoff_delay(0, initial, max, Some(wait), 0.3), wait);
        let ra = Some(Duration::from_secs(3600));
        assert_eq!(backoff_delay(0, initial, max, ra, 0.3), max);
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds_headers() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2"), ("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        for bad in ["-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "NaN", "inf"] {
            assert_eq!(
                retry_after(&headers(&[("retry-after", bad)])),
                None,
                "{bad}"
            );
        }
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter_fraction()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.iter().any(|j| *j != samples[0]));
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo", 2), "hé…");
        assert_eq!(truncate_chars("ééééé", 5), "ééééé");
    }

    #[test]
    fn server_message_prefers_the_json_message_and_scrubs_the_key() {
        let e = OpenAiEmbedder::builder("http://127.0.0.1:1", "m", 4)
            .api_key("sk-secret-123")
            .build()
            .unwrap();
        let body = br#"{"error": {"message": "Incorrect API key provided: sk-secret-123.", "type": "invalid_request_error"}}"#;
        assert_eq!(
            e.server_message(body),
            "Incorrect API key provided: <redacted>."
        );
        assert_eq!(
            e.server_message(br#"{"error": "model not found"}"#),
            "model not found"
        );
        assert_eq!(e.server_message(b"upstream\n  down"), "upstream down");
        assert_eq!(e.server_message(b""), "(no message)");
        let long = "x".repeat(5000);
        assert_eq!(
            e.server_message(long.as_bytes()).chars().count(),
            MAX_SERVER_MESSAGE_CHARS + 1
        );
    }
}
