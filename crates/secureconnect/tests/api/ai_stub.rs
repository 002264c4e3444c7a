//! A local OpenAI-compatible provider for the black-box tests: listens on 127.0.0.1 on a random
//! port, checks what the real API checks (the bearer key, the model, the shape of `messages`,
//! `stream_options` only with `stream: true`, `response_format: "b64_json"` for images),
//! records every request body, and answers like the real API — a whole `chat.completion`, or a
//! `text/event-stream` of `chat.completion.chunk` events split mid-word, with the usage chunk
//! when asked and `data: [DONE]`; a real 1×1 PNG for images.
//!
//! Faults on demand: [`AiStub::fail_next`] (one error status for the next generation request),
//! [`AiStub::fail_always`], [`AiStub::stall`] (the request is accepted, then nothing is sent),
//! [`AiStub::stream_then_stall_after`] (a stream that stops mid-answer); [`AiStub::heal`]
//! undoes them all. [`AiStub::streams_cancelled`] counts streamed bodies dropped before their
//! end, which is how a test sees that our server stopped the upstream request when its own
//! client went away.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The models the stub lists and accepts unless told otherwise ([`AiStub::set_models`]).
pub const STUB_CHAT_MODEL: &str = "stub-chat";
pub const STUB_IMAGE_MODEL: &str = "stub-image";

/// A valid 1×1 RGBA PNG (signature, IHDR, IDAT, IEND with correct CRCs).
pub const TINY_PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

pub fn tiny_png() -> Vec<u8> {
    STANDARD.decode(TINY_PNG_B64).unwrap()
}

/// Streamed answers are cut into pieces of this many characters, so words split across
/// chunks the way real tokenizers split them.
const PIECE_CHARS: usize = 5;
const DEFAULT_CHUNK_DELAY: Duration = Duration::from_millis(10);

/// One request as the stub saw it.
#[derive(Clone, Debug)]
pub struct StubRequest {
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header matched the expected key (always true without one).
    pub authorized: bool,
    /// The JSON body; `Null` for a GET or a body that is not JSON.
    pub body: Value,
}

#[derive(Default)]
struct Faults {
    /// One-off statuses for the next chat/image requests.
    next: VecDeque<u16>,
    always: Option<u16>,
    stall: Option<Duration>,
    stall_after: Option<usize>,
}

struct StubState {
    expected_key: Option<String>,
    models: Mutex<Vec<String>>,
    reply: Mutex<Option<String>>,
    chunk_delay: Mutex<Duration>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<StubRequest>>,
    streams_completed: AtomicUsize,
    streams_cancelled: AtomicUsize,
}

/// The stub server; dropping it stops it.
pub struct AiStub {
    state: Arc<StubState>,
    base_url: String,
    task: JoinHandle<()>,
}

impl Drop for AiStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AiStub {
    /// Starts the stub. With `expected_key`, every request must carry
    /// `Authorization: Bearer <key>` or gets 401 `invalid_api_key`, as OpenAI answers.
    pub async fn start(expected_key: Option<&str>) -> AiStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(StubState {
            expected_key: expected_key.map(str::to_owned),
            models: Mutex::new(vec![STUB_CHAT_MODEL.into(), STUB_IMAGE_MODEL.into()]),
            reply: Mutex::new(None),
            chunk_delay: Mutex::new(DEFAULT_CHUNK_DELAY),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            streams_completed: AtomicUsize::new(0),
            streams_cancelled: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/images/generations", post(images))
            .fallback(unknown_route)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AiStub {
            state,
            base_url: format!("http://{addr}/v1"),
            task,
        }
    }

    /// `http://127.0.0.1:<port>/v1`, the value for `SC_AI_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The chat answer from now on (default: `stub answer: <n> messages`).
    pub fn set_reply(&self, text: &str) {
        *self.state.reply.lock().unwrap() = Some(text.to_owned());
    }

    /// The models `GET /v1/models` lists and requests may name.
    pub fn set_models(&self, models: &[&str]) {
        *self.state.models.lock().unwrap() = models.iter().map(|m| (*m).to_owned()).collect();
    }

    /// The pause before each event of a streamed answer (default 10 ms).
    pub fn set_chunk_delay(&self, delay: Duration) {
        *self.state.chunk_delay.lock().unwrap() = delay;
    }

    /// The next chat or image request (after those already queued) gets `status` with an
    /// OpenAI-style error body. `GET /v1/models` does not consume it, so a readiness probe in
    /// between cannot eat the fault meant for a request.
    pub fn fail_next(&self, status: u16) {
        self.state.faults.lock().unwrap().next.push_back(status);
    }

    /// Every request, the model list included, gets `status` until [`Self::heal`].
    pub fn fail_always(&self, status: u16) {
        self.state.faults.lock().unwrap().always = Some(status);
    }

    /// Every request, the model list included, is read and then left without a byte of
    /// answer for `duration` (after which it is answered normally), until [`Self::heal`].
    pub fn stall(&self, duration: Duration) {
        self.state.faults.lock().unwrap().stall = Some(duration);
    }

    /// Streamed answers send their first `n_chunks` content chunks, then nothing more (the
    /// connection stays open) until the client goes away; until [`Self::heal`].
    pub fn stream_then_stall_after(&self, n_chunks: usize) {
        self.state.faults.lock().unwrap().stall_after = Some(n_chunks);
    }

    /// Clears every fault: queued and sticky statuses, stalls.
    pub fn heal(&self) {
        *self.state.faults.lock().unwrap() = Faults::default();
    }

    /// Every request received, in order, whatever it was answered.
    pub fn log(&self) -> Vec<StubRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// The bodies of every POST received (chat and images), in order.
    pub fn requests(&self) -> Vec<Value> {
        self.bodies(|p| p != "/v1/models")
    }

    /// The bodies of the chat completion requests, in order.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.bodies(|p| p == "/v1/chat/completions")
    }

    /// The bodies of the image generation requests, in order.
    pub fn image_requests(&self) -> Vec<Value> {
        self.bodies(|p| p == "/v1/images/generations")
    }

    fn bodies(&self, path: impl Fn(&str) -> bool) -> Vec<Value> {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" && path(r.path.split('?').next().unwrap_or_default()))
            .map(|r| r.body.clone())
            .collect()
    }

    /// Streamed answers whose body was dropped before `data: [DONE]` went out: the client
    /// closed the connection (or reset the stream) mid-answer.
    pub fn streams_cancelled(&self) -> usize {
        self.state.streams_cancelled.load(Ordering::SeqCst)
    }

    /// Streamed answers sent to the end.
    pub fn streams_completed(&self) -> usize {
        self.state.streams_completed.load(Ordering::SeqCst)
    }

    /// Waits until [`Self::streams_cancelled`] reaches `n`; panics after `timeout`.
    pub async fn wait_for_cancelled(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.streams_cancelled() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} streams cancelled after {timeout:?}",
                self.streams_cancelled()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An OpenAI-style error answer.
fn error(status: u16, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn invalid(message: &str) -> Response {
    error(400, "invalid_request_error", "invalid_request", message)
}

impl StubState {
    /// What every route does first: record the request, stall if told to, answer a scripted
    /// failure or a bad key. `None` means go on to the route's own work.
    async fn admit(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        generation: bool,
    ) -> Option<Response> {
        let authorized = match &self.expected_key {
            None => true,
            Some(key) => {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    == Some(format!("Bearer {key}").as_str())
            }
        };
        self.log.lock().unwrap().push(StubRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
            authorized,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
        let stall = self.faults.lock().unwrap().stall;
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        let scripted = {
            let mut faults = self.faults.lock().unwrap();
            let next = if generation {
                faults.next.pop_front()
            } else {
                None
            };
            next.or(faults.always)
        };
        if let Some(status) = scripted {
            let kind = if status >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            return Some(error(status, kind, "stub_fault", "scripted failure"));
        }
        if !authorized {
            return Some(error(
                401,
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided.",
            ));
        }
        None
    }

    fn knows_model(&self, model: &str) -> bool {
        self.models.lock().unwrap().iter().any(|m| m == model)
    }
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    error(
        404,
        "invalid_request_error",
        "unknown_url",
        &format!("Unknown request URL: {method} {}", uri.path()),
    )
}

async fn models(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = state.admit(&method, &uri, &headers, b"", false).await {
        return answer;
    }
    let data: Vec<Value> = state
        .models
        .lock()
        .unwrap()
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "stub"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// A checked chat request.
struct ChatCall {
    model: String,
    message_count: usize,
    prompt_chars: usize,
    stream: bool,
    include_usage: bool,
}

/// The request's shape as OpenAI checks it; `Err` is the 400 message.
fn check_chat(body: &Value) -> Result<ChatCall, String> {
    let Some(obj) = body.as_object() else {
        return Err("We could not parse the JSON body of your request.".to_owned());
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err("you must provide a model parameter".to_owned()),
    };
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err("'messages' is a required property and must be an array".to_owned());
    };
    if messages.is_empty() {
        return Err("'messages' must contain at least one message".to_owned());
    }
    let mut prompt_chars = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("system" | "user" | "assistant")) {
            return Err(format!(
                "messages[{i}].role must be system, user or assistant"
            ));
        }
        let Some(content) = m.get("content").and_then(Value::as_str) else {
            return Err(format!("messages[{i}].content must be a string"));
        };
        if m.as_object().is_some_and(|o| o.len() != 2) {
            return Err(format!(
                "messages[{i}] has fields other than role and content"
            ));
        }
        prompt_chars += content.chars().count();
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("'stream' must be a boolean".to_owned()),
    };
    if let Some(max) = obj.get("max_tokens")
        && !max.is_null()
        && max.as_u64().is_none_or(|m| m == 0)
    {
        return Err("'max_tokens' must be a positive integer".to_owned());
    }
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(_) if !stream => {
            return Err(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled."
                    .to_owned(),
            );
        }
        Some(opts) => match opts.get("include_usage") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("'stream_options.include_usage' must be a boolean".to_owned()),
        },
    };
    Ok(ChatCall {
        model,
        message_count: messages.len(),
        prompt_chars,
        stream,
        include_usage,
    })
}

fn tokens(chars: usize) -> u64 {
    chars.div_ceil(4).max(1) as u64
}

async fn chat(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = state.admit(&method, &uri, &headers, &body, true).await {
        return answer;
    }
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call = match check_chat(&parsed) {
        Ok(call) => call,
        Err(message) => return invalid(&message),
    };
    if !state.knows_model(&call.model) {
        return error(
            404,
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you do not have access to it.",
        );
    }
    let reply = state
        .reply
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("stub answer: {} messages", call.message_count));
    let usage = json!({
        "prompt_tokens": tokens(call.prompt_chars),
        "completion_tokens": tokens(reply.chars().count()),
        "total_tokens": tokens(call.prompt_chars) + tokens(reply.chars().count()),
    });
    let id = format!("chatcmpl-stub-{}", state.log.lock().unwrap().len());
    let created = now_unix();
    if !call.stream {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let mut event = json!({
            "id": id, "object": "chat.completion.chunk", "created": created,
            "model": call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if call.include_usage {
            event["usage"] = Value::Null; // as OpenAI sends on every chunk but the last
        }
        format!("data: {event}\n\n")
    };
    let mut events = VecDeque::new();
    events.push_back(Frame::Other(": stub keep-alive\n\n".into()));
    events.push_back(Frame::Other(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )));
    let chars: Vec<char> = reply.chars().collect();
    for piece in chars.chunks(PIECE_CHARS) {
        let text: String = piece.iter().collect();
        events.push_back(Frame::Content(chunk(json!({"content": text}), Value::Null)));
    }
    events.push_back(Frame::Other(chunk(json!({}), json!("stop"))));
    if call.include_usage {
        let last = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                          "model": call.model, "choices": [], "usage": usage});
        events.push_back(Frame::Other(format!("data: {last}\n\n")));
    }
    events.push_back(Frame::Other("data: [DONE]\n\n".into()));
    let streamer = Streamer {
        events,
        delay: *state.chunk_delay.lock().unwrap(),
        stall_after: state.faults.lock().unwrap().stall_after,
        content_sent: 0,
        guard: StreamGuard {
            state: state.clone(),
            finished: false,
        },
    };
    let body = futures_util::stream::unfold(streamer, Streamer::next).boxed();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap()
}

enum Frame {
    /// A chunk carrying answer text: these are what `stream_then_stall_after` counts.
    Content(String),
    Other(String),
}

struct Streamer {
    events: VecDeque<Frame>,
    delay: Duration,
    stall_after: Option<usize>,
    content_sent: usize,
    guard: StreamGuard,
}

impl Streamer {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Streamer)> {
        let frame = self.events.pop_front()?;
        let text = match frame {
            Frame::Content(text) => {
                if self.stall_after.is_some_and(|n| self.content_sent >= n) {
                    // Hold the connection open, silent, until the client drops it (which
                    // drops this future and with it the guard).
                    std::future::pending::<()>().await;
                }
                self.content_sent += 1;
                text
            }
            Frame::Other(text) => text,
        };
        tokio::time::sleep(self.delay).await;
        if self.events.is_empty() {
            self.guard.finished = true;
        }
        Some((Ok(Bytes::from(text)), self))
    }
}

/// Lives in the streamed body: hyper drops the body when the client goes away, and the drop
/// says whether the answer had been sent to the end.
struct StreamGuard {
    state: Arc<StubState>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.state.streams_completed
        } else {
            &self.state.streams_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

async fn images(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = state.admit(&method, &uri, &headers, &body, true).await {
        return answer;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return invalid("you must provide a model parameter"),
    };
    if body["prompt"].as_str().is_none_or(|p| p.trim().is_empty()) {
        return invalid("'prompt' is a required non-empty string");
    }
    if !body.get("size").is_none_or(|s| {
        s.as_str()
            .and_then(|s| s.split_once('x'))
            .is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok())
    }) {
        return invalid("'size' must look like 1024x1024");
    }
    if body.get("n").is_some_and(|n| n.as_u64() != Some(1)) {
        return invalid("the stub makes one image per request ('n': 1)");
    }
    if body["response_format"] != "b64_json" {
        return invalid("the stub only answers response_format \"b64_json\"");
    }
    if !state.knows_model(&model) {
        return error(
            404,
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you do not have access to it.",
        );
    }
    axum::Json(json!({
        "created": now_unix(),
        "data": [{"b64_json": TINY_PNG_B64, "revised_prompt": null}],
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Smoke test: the adapter in sc-infra against this stub.

#[tokio::test]
async fn provider_talks_to_the_stub() {
    use sc_infra::DepState;
    use sc_infra::ai::{AiConfig, AiError, AiProvider, ChatMessage, StreamEvent, breaker};

    const KEY: &str = "sk-stub-smoke-key";
    let stub = AiStub::start(Some(KEY)).await;
    let config = |key: &str| AiConfig {
        base_url: stub.base_url().to_owned(),
        api_key: Some(key.to_owned()),
        model: Some(STUB_CHAT_MODEL.into()),
        image_model: Some(STUB_IMAGE_MODEL.into()),
        timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_secs(1),
    };
    let ai = AiProvider::new(config(KEY)).unwrap();
    let messages = [
        ChatMessage::new("system", "You are terse."),
        ChatMessage::new("user", "Say something."),
    ];

    // Readiness and a whole answer.
    assert_eq!(ai.probe().await, DepState::Ok);
    let done = ai.chat(&messages, Some(100)).await.unwrap();
    assert_eq!(done.content, "stub answer: 2 messages");
    assert_eq!(done.model, STUB_CHAT_MODEL);
    assert!(done.usage.prompt_tokens > 0 && done.usage.completion_tokens > 0);
    let sent = stub.chat_requests().pop().unwrap();
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "Say something."})
    );
    assert_eq!(sent["stream"], false);

    // A stream: several deltas that concatenate to the reply, then Done with the stub's usage.
    let reply = "Streaming works, token by token.";
    stub.set_reply(reply);
    let items: Vec<_> = ai
        .chat_stream(&messages, None)
        .await
        .unwrap()
        .collect()
        .await;
    let deltas: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Delta(d)) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert!(deltas.len() >= 3, "{deltas:?}");
    assert_eq!(deltas.concat(), reply);
    match items.last() {
        Some(Ok(StreamEvent::Done { usage, model })) => {
            assert_eq!(usage.completion_tokens, reply.len().div_ceil(4) as u64);
            assert_eq!(model, STUB_CHAT_MODEL);
        }
        other => panic!("the stream ended with {other:?}"),
    }
    assert_eq!(
        stub.chat_requests().pop().unwrap()["stream_options"]["include_usage"],
        true
    );
    let completed = stub.streams_completed();
    assert!(completed >= 1);

    // An image: real PNG bytes.
    let png = ai.image("a tiny dot", "256x256").await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(png, tiny_png());
    assert_eq!(stub.image_requests()[0]["response_format"], "b64_json");

    // A wrong key: 401, which makes the provider unusable — Unavailable, counted by the
    // breaker — and the reason names neither key.
    let wrong = AiProvider::new(config("sk-wrong")).unwrap();
    let err = wrong.chat(&messages, None).await.unwrap_err();
    assert_eq!(
        err,
        AiError::Unavailable("provider refused the credentials (HTTP 401, invalid_api_key)".into())
    );
    assert!(!stub.log().last().unwrap().authorized);
    assert_eq!(wrong.state(), DepState::Degraded);
    assert_eq!(wrong.probe().await, DepState::Down);

    // Dropping a stream mid-answer drops the upstream response: the stub sees its body go.
    stub.set_chunk_delay(Duration::from_millis(100));
    let mut stream = ai.chat_stream(&messages, None).await.unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Ok(StreamEvent::Delta(_)))
    ));
    drop(stream);
    stub.wait_for_cancelled(1, Duration::from_secs(5)).await;
    assert_eq!(stub.streams_completed(), completed);
    stub.set_chunk_delay(Duration::from_millis(5));

    // A stream that stalls mid-answer fails with "timed out" after the idle timeout, and the
    // adapter lets go of the upstream body.
    stub.stream_then_stall_after(2);
    let items: Vec<_> = ai
        .chat_stream(&messages, None)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Ok(StreamEvent::Delta(_))))
            .count(),
        2
    );
    assert_eq!(
        items.last(),
        Some(&Err(AiError::Unavailable("timed out".into())))
    );
    stub.wait_for_cancelled(2, Duration::from_secs(5)).await;
    stub.heal();

    // A stall before any answer: "timed out" within the timeout.
    stub.stall(Duration::from_secs(5));
    let started = Instant::now();
    assert_eq!(
        ai.chat(&messages, None).await,
        Err(AiError::Unavailable("timed out".into()))
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    stub.heal();
    assert!(
        ai.chat(&messages, None).await.is_ok(),
        "a success resets the failure run"
    );

    // Five failures open the breaker: the sixth call fails at once, without a request.
    stub.fail_always(500);
    for _ in 0..breaker::FAILURE_THRESHOLD {
        assert_eq!(
            ai.chat(&messages, None).await,
            Err(AiError::Unavailable("provider error (HTTP 500)".into()))
        );
    }
    let reached = stub.chat_requests().len();
    assert_eq!(
        ai.chat(&messages, None).await,
        Err(AiError::Unavailable("provider unavailable".into()))
    );
    assert!(ai.chat_stream(&messages, None).await.is_err());
    assert_eq!(
        stub.chat_requests().len(),
        reached,
        "no request while the breaker is open"
    );
    assert!(!ai.chat_available());
    assert!(ai.images_available(), "images have their own breaker");
    assert_eq!(ai.state(), DepState::Degraded);
}

/// The stub refuses what the real API refuses, so a test passing against it means the server
/// sent a request OpenAI would take.
#[tokio::test]
async fn the_stub_checks_keys_and_request_shapes() {
    let stub = AiStub::start(Some("sk-shape")).await;
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        http.post(format!("{}{path}", stub.base_url()))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let chat = |messages: Value| json!({"model": STUB_CHAT_MODEL, "messages": messages});
    let user = json!([{"role": "user", "content": "hi"}]);
    let table = [
        ("/chat/completions", "sk-other", chat(user.clone()), 401),
        ("/chat/completions", "sk-shape", chat(user.clone()), 200),
        (
            "/chat/completions",
            "sk-shape",
            json!({"messages": user}),
            400,
        ),
        ("/chat/completions", "sk-shape", chat(json!([])), 400),
        (
            "/chat/completions",
            "sk-shape",
            chat(json!([{"role": "tool", "content": "x"}])),
            400,
        ),
        (
            "/chat/completions",
            "sk-shape",
            chat(json!([{"role": "user", "content": 5}])),
            400,
        ),
        (
            "/chat/completions",
            "sk-shape",
            chat(json!([{"role": "user", "content": "x", "email": "a@example.org"}])),
            400,
        ),
        (
            "/chat/completions",
            "sk-shape",
            json!({"model": STUB_CHAT_MODEL, "messages": user, "stream_options": {"include_usage": true}}),
            400,
        ),
        (
            "/chat/completions",
            "sk-shape",
            json!({"model": "gpt-unknown", "messages": user}),
            404,
        ),
        (
            "/images/generations",
            "sk-shape",
            json!({"model": STUB_IMAGE_MODEL, "prompt": "dot", "size": "256x256"}),
            400,
        ),
        (
            "/images/generations",
            "sk-shape",
            json!({"model": STUB_IMAGE_MODEL, "prompt": "dot", "response_format": "b64_json"}),
            200,
        ),
    ];
    for (path, key, body, status) in table {
        let r = post(path, key, body.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {body}");
        if status != 200 {
            let err: Value = r.json().await.unwrap();
            assert!(err["error"]["code"].is_string(), "{err}");
        }
    }
    assert_eq!(stub.requests().len(), 11, "every request is recorded");
    let models: Value = http
        .get(format!("{}/models", stub.base_url()))
        .bearer_auth("sk-shape")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], STUB_CHAT_MODEL);
    stub.fail_next(503);
    let r = http
        .get(format!("{}/models", stub.base_url()))
        .bearer_auth("sk-shape")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "fail_next is kept for a generation request"
    );
    let r = post("/chat/completions", "sk-shape", chat(user))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
