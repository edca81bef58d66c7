//! `OpenAiEmbedder` against a scripted OpenAI-compatible server running inside the test on
//! 127.0.0.1: batching, ordering, retries and backoff, timeouts, malformed responses,
//! cancellation, and the API key's secrecy.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use lexicache_semantic::{EmbeddingClient, Error, OpenAiEmbedder, OpenAiEmbedderBuilder};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const DIM: usize = 4;
const MODEL: &str = "test-embed";
const KEY: &str = "sk-test-Zq8XbL0secret";

/// Builds a response body from a request's inputs.
type BuildBody = fn(&[String]) -> Value;

/// What the server does with one request.
#[derive(Clone)]
enum Reply {
    /// 200 with one correct embedding per input, in index order.
    Embed,
    /// 200 with correct embeddings listed in reverse order (indexes still correct).
    Reversed,
    /// 200 with this body, verbatim.
    Body(&'static str),
    /// 200 with JSON built from the inputs.
    Json(BuildBody),
    /// This status, extra headers and body.
    Status(u16, Vec<(&'static str, &'static str)>, String),
    /// Never answer; hold the connection until the client closes it.
    Hang,
    /// Close the connection without answering.
    Close,
}

/// One request the server received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

impl Seen {
    fn inputs(&self) -> Vec<String> {
        inputs_of(&self.body)
    }
}

fn inputs_of(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .expect("input is an array")
        .iter()
        .map(|v| v.as_str().expect("inputs are strings").to_owned())
        .collect()
}

/// A minimal HTTP/1.1 server speaking the embeddings protocol. It answers requests with the
/// script's replies in order, then with [`Reply::Embed`].
struct Server {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections on which the server held a [`Reply::Hang`] and then saw the client leave.
    abandoned: Arc<AtomicUsize>,
}

impl Server {
    async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let (s, a) = (seen.clone(), abandoned.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, script.clone(), s.clone(), a.clone()));
            }
        });
        Server {
            base_url,
            seen,
            abandoned,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.seen().iter().map(|s| s.inputs().len()).collect()
    }

    /// A builder pointed at this server with test-sized timeouts and backoffs.
    fn builder(&self) -> OpenAiEmbedderBuilder {
        OpenAiEmbedder::builder(&self.base_url, MODEL, DIM)
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(1))
            .backoff(Duration::from_millis(1), Duration::from_millis(10))
            .max_retries(3)
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    abandoned: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    // One connection carries requests until either side closes it (the client pools it).
    while let Some((path, headers, body)) = read_request(&mut stream, &mut buf).await {
        let body: Value = serde_json::from_slice(&body).expect("request body is JSON");
        let inputs = inputs_of(&body);
        seen.lock().unwrap().push(Seen {
            path,
            authorization: header(&headers, "authorization"),
            body,
            at: Instant::now(),
        });
        let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Embed);
        let (status, extra, body) = match reply {
            Reply::Embed => (200, vec![], embeddings(&inputs, false).to_string()),
            Reply::Reversed => (200, vec![], embeddings(&inputs, true).to_string()),
            Reply::Body(body) => (200, vec![], body.to_owned()),
            Reply::Json(build) => (200, vec![], build(&inputs).to_string()),
            Reply::Status(status, extra, body) => (status, extra, body),
            Reply::Hang => {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                abandoned.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Reply::Close => return,
        };
        let mut response = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request (headers, then a `content-length` body). `None` when the client closed
/// the connection.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap();
    let mut parts = request_line.split(' ');
    assert_eq!(parts.next(), Some("POST"), "{request_line}");
    let path = parts.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = header(&headers, "content-length")
        .expect("the client sends content-length")
        .parse()
        .unwrap();
    while buf.len() < head_end + len {
        read_more(stream, buf).await?;
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some((path, headers, body))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The server's (unnormalized) vector for a text: distinct for the texts used here.
fn raw_vector(text: &str) -> Vec<f32> {
    let sum: u32 = text.bytes().map(u32::from).sum();
    vec![1.0, text.len() as f32, (sum % 101) as f32, 0.5]
}

/// What the client must return for a text: the raw vector, L2-normalized.
fn expected(text: &str) -> Vec<f32> {
    let v = raw_vector(text);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn embeddings(inputs: &[String], reversed: bool) -> Value {
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": raw_vector(t)}))
        .collect();
    if reversed {
        data.reverse();
    }
    json!({
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
    })
}

fn assert_vectors(got: &[Vec<f32>], texts: &[&str]) {
    assert_eq!(got.len(), texts.len());
    for (v, t) in got.iter().zip(texts) {
        let want = expected(t);
        assert_eq!(v.len(), DIM);
        for (a, b) in v.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{t}: got {v:?}, want {want:?}");
        }
    }
}

/// The message of an embedding error of any of the three kinds (bad response, service
/// unavailable after retries, request rejected).
fn embedding_error(result: lexicache_semantic::Result<Vec<Vec<f32>>>) -> String {
    match result {
        Err(
            e @ (Error::Embedding(_)
            | Error::EmbeddingUnavailable { .. }
            | Error::EmbeddingRejected { .. }),
        ) => e.to_string(),
        other => panic!("expected an embedding error, got {other:?}"),
    }
}

/// Polls `cond` for up to five seconds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn embeds_a_batch_in_input_order_as_unit_vectors() {
    let server = Server::start(vec![]).await;
    let embedder: Arc<dyn EmbeddingClient> = Arc::new(server.builder().build().unwrap());
    let texts = [
        "How do I reset my password?",
        "What is the refund policy?",
        "hi",
    ];

    let vectors = embedder.embed(&texts).await.unwrap();

    assert_vectors(&vectors, &texts);
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(seen[0].body["model"], MODEL);
    assert_eq!(seen[0].inputs(), texts);
    assert!(seen[0].body.get("dimensions").is_none(), "{}", seen[0].body);
    assert_eq!(seen[0].authorization, None);
    assert_eq!(embedder.dimension(), DIM);
    assert_eq!(embedder.model_id(), "openai:test-embed:4");
}

#[tokio::test]
async fn base_url_with_or_without_v1_posts_to_v1_embeddings() {
    let server = Server::start(vec![]).await;
    for base in [
        server.base_url.clone(),
        format!("{}/", server.base_url),
        format!("{}/v1", server.base_url),
        format!("{}/v1/", server.base_url),
    ] {
        let e = OpenAiEmbedder::builder(&base, MODEL, DIM).build().unwrap();
        assert_eq!(e.endpoint(), format!("{}/v1/embeddings", server.base_url));
        e.embed(&["x"]).await.unwrap();
    }
    let e = OpenAiEmbedder::builder(format!("{}/gateway", server.base_url), MODEL, DIM)
        .build()
        .unwrap();
    e.embed(&["x"]).await.unwrap();
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/embeddings",
            "/v1/embeddings",
            "/v1/embeddings",
            "/v1/embeddings",
            "/gateway/v1/embeddings"
        ]
    );
}

#[tokio::test]
async fn large_inputs_are_split_into_batches_and_concatenated_in_order() {
    let server = Server::start(vec![]).await;
    let embedder = server.builder().batch_size(3).build().unwrap();
    let owned: Vec<String> = (0..8).map(|i| format!("question number {i}")).collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();

    let vectors = embedder.embed(&texts).await.unwrap();

    assert_vectors(&vectors, &texts);
    assert_eq!(server.batch_sizes(), [3, 3, 2]);
    let sent: Vec<String> = server.seen().iter().flat_map(Seen::inputs).collect();
    assert_eq!(sent, owned);
}

#[tokio::test]
async fn results_are_ordered_by_index_not_by_position() {
    let server = Server::start(vec![Reply::Reversed]).await;
    let embedder = server.builder().build().unwrap();
    let texts = ["first", "second question", "third one here"];

    let vectors = embedder.embed(&texts).await.unwrap();

    assert_vectors(&vectors, &texts);
}

#[tokio::test]
async fn items_without_index_are_taken_in_order() {
    let server = Server::start(vec![Reply::Json(|inputs| {
        let data: Vec<Value> = inputs
            .iter()
            .map(|t| json!({"embedding": raw_vector(t)}))
            .collect();
        json!({"data": data})
    })])
    .await;
    let texts = ["one", "three"];
    let vectors = server.builder().build().unwrap().embed(&texts).await;
    assert_vectors(&vectors.unwrap(), &texts);
}

#[tokio::test]
async fn empty_input_returns_nothing_without_a_request() {
    let server = Server::start(vec![]).await;
    let embedder = server.builder().build().unwrap();
    assert_eq!(embedder.embed(&[]).await.unwrap(), Vec::<Vec<f32>>::new());
    assert!(matches!(
        embedder.embed(&["fine", ""]).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn dimensions_field_is_sent_only_when_enabled() {
    let server = Server::start(vec![]).await;
    server
        .builder()
        .send_dimensions(true)
        .build()
        .unwrap()
        .embed(&["a"])
        .await
        .unwrap();
    assert_eq!(server.seen()[0].body["dimensions"], json!(DIM));
}

#[tokio::test]
async fn api_key_is_sent_as_a_bearer_token() {
    let server = Server::start(vec![]).await;
    let embedder = server.builder().api_key(KEY).build().unwrap();
    embedder.embed(&["a"]).await.unwrap();
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn api_key_never_appears_in_debug_or_errors() {
    // The server quotes the key back, as OpenAI's "Incorrect API key provided" does.
    let body = json!({"error": {"message": format!("Incorrect API key provided: {KEY}."),
                                "type": "invalid_request_error", "code": "invalid_api_key"}});
    let server = Server::start(vec![Reply::Status(401, vec![], body.to_string())]).await;
    let builder = server.builder().api_key(KEY);
    let embedder = builder.clone().build().unwrap();

    let err = embedder.embed(&["a"]).await.unwrap_err();

    let core: lexicache_core::Error = OpenAiEmbedder::builder(&server.base_url, MODEL, DIM)
        .api_key(format!("{KEY}\n"))
        .build()
        .unwrap_err()
        .into();
    let texts = [
        format!("{builder:?}"),
        format!("{builder:#?}"),
        format!("{embedder:?}"),
        format!("{embedder:#?}"),
        err.to_string(),
        format!("{err:?}"),
        core.to_string(),
        format!("{core:?}"),
    ];
    for text in &texts {
        assert!(!text.contains("Zq8XbL0secret"), "key leaked: {text}");
    }
    assert!(texts[2].contains("<redacted>"), "{}", texts[2]);
    assert!(
        err.to_string()
            .contains("Incorrect API key provided: <redacted>"),
        "{err}"
    );
}

#[tokio::test]
async fn overloaded_and_rate_limited_responses_are_retried_until_success() {
    let server = Server::start(vec![
        Reply::Status(503, vec![], r#"{"error":{"message":"overloaded"}}"#.into()),
        Reply::Status(429, vec![("retry-after", "0")], "slow down".into()),
        Reply::Status(500, vec![], String::new()),
        Reply::Status(502, vec![], String::new()),
    ])
    .await;
    let embedder = server.builder().max_retries(4).build().unwrap();

    let vectors = embedder.embed(&["a", "b"]).await.unwrap();

    assert_vectors(&vectors, &["a", "b"]);
    assert_eq!(server.requests(), 5);
    assert!(server.seen().iter().all(|s| s.inputs() == ["a", "b"]));
}

#[tokio::test]
async fn retries_stop_at_max_retries() {
    let unavailable = || Reply::Status(504, vec![], "gateway timeout".into());
    let server = Server::start(vec![unavailable(); 10]).await;
    let embedder = server.builder().max_retries(2).build().unwrap();

    let msg = embedding_error(embedder.embed(&["a"]).await);

    assert_eq!(server.requests(), 3);
    assert!(msg.contains("after 3 attempts"), "{msg}");
    assert!(
        msg.contains("504") && msg.contains("gateway timeout"),
        "{msg}"
    );

    let server = Server::start(vec![unavailable(); 10]).await;
    let embedder = server.builder().max_retries(0).build().unwrap();
    embedding_error(embedder.embed(&["a"]).await);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_carry_status_and_message() {
    for status in [400, 401, 403, 404, 422] {
        let body = json!({"error": {"message": format!("scripted failure {status}")}});
        let server = Server::start(vec![Reply::Status(status, vec![], body.to_string())]).await;
        let embedder = server.builder().api_key(KEY).build().unwrap();

        let msg = embedding_error(embedder.embed(&["a"]).await);

        assert_eq!(server.requests(), 1, "{status} was retried");
        assert!(msg.contains(&status.to_string()), "{msg}");
        assert!(msg.contains(&format!("scripted failure {status}")), "{msg}");
    }
}

#[tokio::test]
async fn long_server_messages_are_truncated() {
    let long = "bad input ".repeat(1000);
    let server = Server::start(vec![Reply::Status(400, vec![], long)]).await;
    let msg = embedding_error(server.builder().build().unwrap().embed(&["a"]).await);
    assert!(
        msg.contains("HTTP 400") && msg.contains("bad input"),
        "{msg}"
    );
    assert!(msg.chars().count() < 400, "{} chars: {msg}", msg.len());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = Server::start(vec![Reply::Status(
        429,
        vec![("retry-after", "1")],
        "rate limited".into(),
    )])
    .await;
    let embedder = server
        .builder()
        .backoff(Duration::from_millis(1), Duration::from_secs(5))
        .build()
        .unwrap();

    embedder.embed(&["a"]).await.unwrap();

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");
}

#[tokio::test]
async fn retry_after_is_capped_at_the_maximum_backoff() {
    let server = Server::start(vec![Reply::Status(
        503,
        vec![("retry-after", "3600")],
        "maintenance".into(),
    )])
    .await;
    let embedder = server
        .builder()
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();

    let result = tokio::time::timeout(Duration::from_secs(10), embedder.embed(&["a"])).await;

    result
        .expect("waited for the hour-long Retry-After")
        .unwrap();
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn timeout_is_a_typed_error_and_does_not_hang() {
    let server = Server::start(vec![Reply::Hang, Reply::Hang]).await;
    let embedder = server
        .builder()
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .build()
        .unwrap();

    let result = tokio::time::timeout(Duration::from_secs(10), embedder.embed(&["a"]))
        .await
        .expect("the request timeout did not fire");
    assert!(
        matches!(
            &result,
            Err(Error::EmbeddingUnavailable {
                attempts: 2,
                timed_out: true,
                ..
            })
        ),
        "{result:?}"
    );
    let msg = embedding_error(result);
    assert!(
        msg.contains("timed out") && msg.contains("after 2 attempts"),
        "{msg}"
    );
    assert_eq!(server.requests(), 2);
    // The client gave up on both connections.
    eventually("both hung connections closed", || {
        server.abandoned.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn a_timed_out_request_is_retried_and_can_succeed() {
    let server = Server::start(vec![Reply::Hang]).await;
    let embedder = server
        .builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let vectors = embedder.embed(&["a"]).await.unwrap();
    assert_vectors(&vectors, &["a"]);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn closed_connection_is_retried() {
    let server = Server::start(vec![Reply::Close, Reply::Close]).await;
    let vectors = server.builder().build().unwrap().embed(&["a"]).await;
    assert_vectors(&vectors.unwrap(), &["a"]);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn refused_connection_is_retried_then_a_typed_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let embedder = OpenAiEmbedder::builder(format!("http://127.0.0.1:{port}"), MODEL, DIM)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_retries(2)
        .build()
        .unwrap();
    let msg = embedding_error(embedder.embed(&["a"]).await);
    assert!(
        msg.contains("after 3 attempts") && msg.contains("could not connect"),
        "{msg}"
    );
}

#[tokio::test]
async fn only_the_failed_batch_is_sent_again() {
    let server = Server::start(vec![
        Reply::Embed,
        Reply::Status(503, vec![], "busy".into()),
        Reply::Close,
    ])
    .await;
    let embedder = server.builder().batch_size(2).build().unwrap();
    let texts = ["a", "b", "c", "d", "e"];

    let vectors = embedder.embed(&texts).await.unwrap();

    assert_vectors(&vectors, &texts);
    let batches: Vec<Vec<String>> = server.seen().iter().map(Seen::inputs).collect();
    assert_eq!(
        batches,
        [
            vec!["a", "b"],
            vec!["c", "d"],
            vec!["c", "d"],
            vec!["c", "d"],
            vec!["e"]
        ]
    );
}

#[tokio::test]
async fn malformed_responses_are_typed_errors_and_not_retried() {
    let cases: Vec<(&str, Reply)> = vec![
        ("not JSON", Reply::Body("<html>oops</html>")),
        (
            "truncated JSON",
            Reply::Body(r#"{"data": [{"index": 0, "embedd"#),
        ),
        ("no data field", Reply::Body(r#"{"object": "list"}"#)),
        (
            "base64 instead of floats",
            Reply::Body(r#"{"data": [{"index": 0, "embedding": "AAAAAAAAAAA="}]}"#),
        ),
        (
            "null component",
            Reply::Body(r#"{"data": [{"index": 0, "embedding": [null, 1, 0, 0]}]}"#),
        ),
        (
            "component overflowing f32",
            Reply::Body(r#"{"data": [{"index": 0, "embedding": [1e39, 1, 0, 0]}]}"#),
        ),
        (
            "zero vector",
            Reply::Body(r#"{"data": [{"index": 0, "embedding": [0, 0, 0, 0]}]}"#),
        ),
        (
            "wrong dimension",
            Reply::Body(r#"{"data": [{"index": 0, "embedding": [1, 0, 0]}]}"#),
        ),
        (
            "too many embeddings",
            Reply::Json(|inputs| {
                let mut more = inputs.to_vec();
                more.push("extra".into());
                embeddings(&more, false)
            }),
        ),
        (
            "too few embeddings",
            Reply::Body(r#"{"data": [], "model": "test-embed"}"#),
        ),
        (
            "index out of range",
            Reply::Body(r#"{"data": [{"index": 1, "embedding": [1, 0, 0, 0]}]}"#),
        ),
    ];
    for (case, reply) in cases {
        let server = Server::start(vec![reply]).await;
        let embedder = server.builder().build().unwrap();

        let msg = embedding_error(embedder.embed(&["a"]).await);

        assert!(msg.contains("bad response"), "{case}: {msg}");
        assert_eq!(server.requests(), 1, "{case} was retried");
    }
}

#[tokio::test]
async fn duplicate_and_missing_indexes_are_typed_errors() {
    let cases: [(&str, BuildBody); 2] = [
        ("duplicate index", |inputs| {
            let data: Vec<Value> = inputs
                .iter()
                .map(|t| json!({"index": 0, "embedding": raw_vector(t)}))
                .collect();
            json!({ "data": data })
        }),
        ("index on some items only", |inputs| {
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| match i {
                    0 => json!({"index": 0, "embedding": raw_vector(t)}),
                    _ => json!({"embedding": raw_vector(t)}),
                })
                .collect();
            json!({ "data": data })
        }),
    ];
    for (case, build) in cases {
        let server = Server::start(vec![Reply::Json(build)]).await;
        let embedder = server.builder().build().unwrap();
        let msg = embedding_error(embedder.embed(&["a", "b"]).await);
        assert!(msg.contains("index"), "{case}: {msg}");
        assert_eq!(server.requests(), 1, "{case} was retried");
    }
}

#[tokio::test]
async fn dropping_the_future_aborts_the_request_and_sends_nothing_more() {
    let server = Server::start(vec![Reply::Hang]).await;
    let embedder = server
        .builder()
        .timeout(Duration::from_secs(30))
        .batch_size(1)
        .build()
        .unwrap();

    let mut call = embedder.embed(&["a", "b", "c"]);
    tokio::select! {
        result = &mut call => panic!("the hung request finished: {result:?}"),
        () = eventually("the first batch reached the server", || server.requests() == 1) => {}
    }
    drop(call);

    eventually("the client closed the abandoned connection", || {
        server.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.requests(), 1, "batches were sent after cancellation");
}

#[tokio::test]
async fn build_rejects_invalid_settings() {
    let ok = || OpenAiEmbedder::builder("http://127.0.0.1:9", MODEL, DIM);
    let cases: Vec<(&str, OpenAiEmbedderBuilder)> = vec![
        (
            "unparseable URL",
            OpenAiEmbedder::builder("127.0.0.1 port 9", MODEL, DIM),
        ),
        (
            "non-HTTP URL",
            OpenAiEmbedder::builder("ftp://127.0.0.1", MODEL, DIM),
        ),
        (
            "URL with credentials",
            OpenAiEmbedder::builder("http://me:pw@127.0.0.1:9", MODEL, DIM),
        ),
        (
            "URL with query",
            OpenAiEmbedder::builder("http://127.0.0.1:9/?k=v", MODEL, DIM),
        ),
        (
            "empty model",
            OpenAiEmbedder::builder("http://127.0.0.1:9", " ", DIM),
        ),
        (
            "zero dimension",
            OpenAiEmbedder::builder("http://127.0.0.1:9", MODEL, 0),
        ),
        ("zero batch size", ok().batch_size(0)),
        ("zero timeout", ok().timeout(Duration::ZERO)),
        ("zero connect timeout", ok().connect_timeout(Duration::ZERO)),
        (
            "zero initial backoff",
            ok().backoff(Duration::ZERO, Duration::from_secs(1)),
        ),
        (
            "initial backoff above max",
            ok().backoff(Duration::from_secs(2), Duration::from_secs(1)),
        ),
        ("empty API key", ok().api_key("")),
        ("API key with a newline", ok().api_key(format!("{KEY}\r\n"))),
        ("API key with a space", ok().api_key("sk one")),
    ];
    for (case, builder) in cases {
        match builder.build() {
            Err(e @ Error::InvalidInput(_)) => {
                assert!(!e.to_string().contains(KEY), "{case}: {e}")
            }
            other => panic!("{case}: expected InvalidInput, got {other:?}"),
        }
    }
    ok().api_key(KEY).build().unwrap();
}
