//! [`AiProvider`] against a scripted HTTP/1.1 server written on raw TCP, so the tests see
//! exactly what goes over the wire — including the connection closing when a stream is
//! dropped.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::DepState;

const KEY: &str = "sk-test-secret-key";

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    accept: Option<String>,
    body: Value,
}

enum Answer {
    /// A status with a JSON body.
    Json(u16, Value),
    /// A whole response as written.
    Raw(String),
    /// `text/event-stream`, each string one chunk after `gap`; then the end of the body, or
    /// (with `hang`) nothing more until the client leaves.
    Sse {
        chunks: Vec<String>,
        gap: Duration,
        hang: bool,
    },
    /// Nothing at all until the client leaves.
    Silent,
}

type Script = dyn Fn(&Seen) -> Answer + Send + Sync;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the client closed while this server still had something to send.
    hangups: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hangups = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (seen2, hangups2) = (seen.clone(), hangups.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (script, seen, hangups) = (script.clone(), seen2.clone(), hangups2.clone());
                tokio::spawn(async move { serve(tcp, &*script, &seen, &hangups).await });
            }
        });
        Server {
            base,
            seen,
            hangups,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for_hangups(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.hangups.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the client never closed the connection"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn read_request(tcp: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (
        request_line.next()?.to_owned(),
        request_line.next()?.to_owned(),
    );
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").map_or(0, |l| l.parse().unwrap());
    while buf.len() < head_end + length {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        authorization: header("authorization"),
        accept: header("accept"),
        body: serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null),
    })
}

/// Waits until the peer closes its side (or the socket fails).
async fn until_closed(tcp: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
}

async fn serve(
    mut tcp: TcpStream,
    script: &Script,
    seen: &Mutex<Vec<Seen>>,
    hangups: &AtomicUsize,
) {
    let Some(request) = read_request(&mut tcp).await else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    match script(&request) {
        Answer::Json(status, body) => {
            let body = body.to_string();
            let head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = tcp.write_all(format!("{head}{body}").as_bytes()).await;
        }
        Answer::Raw(text) => {
            let _ = tcp.write_all(text.as_bytes()).await;
        }
        Answer::Sse { chunks, gap, hang } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for chunk in chunks {
                tokio::time::sleep(gap).await;
                let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                if tcp.write_all(frame.as_bytes()).await.is_err() {
                    hangups.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            if hang {
                until_closed(&mut tcp).await;
                hangups.fetch_add(1, Ordering::SeqCst);
            } else {
                let _ = tcp.write_all(b"0\r\n\r\n").await;
            }
        }
        Answer::Silent => {
            until_closed(&mut tcp).await;
            hangups.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _ = tcp.shutdown().await;
}

fn config(base: &str) -> AiConfig {
    AiConfig {
        base_url: base.to_owned(),
        api_key: Some(KEY.to_owned()),
        model: Some("chat-m".to_owned()),
        image_model: Some("image-m".to_owned()),
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
    }
}

fn provider(base: &str) -> AiProvider {
    AiProvider::new(config(base)).unwrap()
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", "be brief"),
        ChatMessage::new("user", "secret prompt text"),
    ]
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "chat-m-0125",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

/// The chunks of a stream of `pieces`, as OpenAI sends them.
fn sse(pieces: &[&str], usage: bool) -> Vec<String> {
    let event = |v: Value| format!("data: {v}\n\n");
    let mut chunks = vec![
        ": keep-alive\n\n".to_owned(),
        event(
            json!({"model": "chat-m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        ),
    ];
    chunks.extend(pieces.iter().map(|p| {
        event(json!({"model": "chat-m", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]}))
    }));
    chunks.push(event(
        json!({"model": "chat-m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ));
    if usage {
        chunks.push(event(
            json!({"model": "chat-m", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}}),
        ));
    }
    chunks.push("data: [DONE]\n\n".to_owned());
    chunks
}

async fn collect(stream: ChatStream) -> Vec<Result<StreamEvent, AiError>> {
    stream.collect().await
}

#[tokio::test]
async fn chat_sends_model_messages_and_key_and_reads_the_answer() {
    let server = Server::start(|_| Answer::Json(200, completion("the answer"))).await;
    let ai = provider(&server.base);
    let done = ai.chat(&messages(), Some(64)).await.unwrap();
    assert_eq!(
        done,
        Completion {
            content: "the answer".into(),
            model: "chat-m-0125".into(),
            usage: Usage {
                prompt_tokens: 7,
                completion_tokens: 3
            },
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        seen[0].body,
        json!({"model": "chat-m", "stream": false, "max_tokens": 64, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "secret prompt text"}
        ]})
    );
}

#[tokio::test]
async fn no_key_no_header_and_a_base_query_is_kept() {
    let server = Server::start(|_| {
        let mut body = completion("x");
        body.as_object_mut().unwrap().remove("usage");
        Answer::Json(200, body)
    })
    .await;
    let mut cfg = config(&format!("{}/?api-version=2024-10-01", server.base));
    cfg.api_key = Some("  ".into());
    let ai = AiProvider::new(cfg).unwrap();
    let done = ai
        .chat(&[ChatMessage::new("user", "abcdefghi")], None)
        .await
        .unwrap();
    // No usage in the answer: estimated as characters / 4, rounded up.
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 1
        }
    );
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/chat/completions?api-version=2024-10-01");
    assert_eq!(seen[0].authorization, None);
    assert!(seen[0].body.get("max_tokens").is_none());
}

#[tokio::test]
async fn statuses_map_to_unavailable_or_rejected_without_the_message() {
    let server = Server::start(|seen| {
        let status: u16 = seen.body["messages"][0]["content"].as_str().unwrap().parse().unwrap();
        let error = json!({"error": {"message": "secret prompt text is too long", "type": "invalid_request_error", "code": "context_length_exceeded"}});
        if status == 302 {
            return Answer::Raw(
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
            );
        }
        Answer::Json(status, error)
    })
    .await;
    let ai = provider(&server.base);
    let table: &[(u16, AiError)] = &[
        (
            400,
            AiError::Rejected(
                "provider rejected the request (HTTP 400, context_length_exceeded)".into(),
            ),
        ),
        (
            404,
            AiError::Rejected(
                "provider rejected the request (HTTP 404, context_length_exceeded)".into(),
            ),
        ),
        (
            401,
            AiError::Unavailable(
                "provider refused the credentials (HTTP 401, context_length_exceeded)".into(),
            ),
        ),
        (
            429,
            AiError::Unavailable(
                "provider rate limited (HTTP 429, context_length_exceeded)".into(),
            ),
        ),
        (
            500,
            AiError::Unavailable("provider error (HTTP 500)".into()),
        ),
        (
            302,
            AiError::Unavailable("provider answered a redirect (HTTP 302)".into()),
        ),
    ];
    for (status, want) in table {
        let got = ai
            .chat(&[ChatMessage::new("user", status.to_string())], None)
            .await
            .unwrap_err();
        assert_eq!(&got, want, "HTTP {status}");
        assert!(!got.to_string().contains("secret"));
    }
    // Four failures: the breaker stayed closed for every row. The redirect was not followed.
    assert_eq!(server.seen().len(), table.len());
}

#[tokio::test]
async fn five_failures_open_the_breaker_and_rejections_do_not_count() {
    let server = Server::start(|seen| {
        if seen.body["messages"][0]["content"] == "reject" {
            Answer::Json(400, json!({"error": {"code": "bad"}}))
        } else {
            Answer::Json(503, json!({}))
        }
    })
    .await;
    let ai = provider(&server.base);
    let reject = [ChatMessage::new("user", "reject")];
    for _ in 0..10 {
        assert!(matches!(
            ai.chat(&reject, None).await,
            Err(AiError::Rejected(_))
        ));
    }
    assert!(ai.chat_available());
    assert_eq!(ai.state(), DepState::Ok);

    for i in 0..breaker::FAILURE_THRESHOLD {
        assert!(matches!(
            ai.chat(&messages(), None).await,
            Err(AiError::Unavailable(_))
        ));
        if i == 0 {
            assert_eq!(ai.state(), DepState::Degraded, "a recent failure degrades");
        }
    }
    let sent = server.seen().len();
    assert_eq!(
        ai.chat(&messages(), None).await,
        Err(AiError::Unavailable("provider unavailable".into()))
    );
    assert!(matches!(
        ai.chat_stream(&messages(), None).await,
        Err(AiError::Unavailable(reason)) if reason == "provider unavailable"
    ));
    assert_eq!(server.seen().len(), sent, "an open breaker sends nothing");
    assert!(!ai.chat_available());
    // Images have their own breaker and are fine.
    assert!(ai.images_available());
    assert_eq!(ai.state(), DepState::Degraded);

    let chat_only = AiProvider::new(AiConfig {
        image_model: None,
        ..config(&server.base)
    })
    .unwrap();
    for _ in 0..breaker::FAILURE_THRESHOLD {
        let _ = chat_only.chat(&messages(), None).await;
    }
    assert_eq!(chat_only.state(), DepState::Down);
}

#[tokio::test]
async fn a_silent_provider_times_out() {
    let server = Server::start(|_| Answer::Silent).await;
    let ai = AiProvider::new(AiConfig {
        timeout: Duration::from_millis(300),
        ..config(&server.base)
    })
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        ai.chat(&messages(), None).await,
        Err(AiError::Unavailable("timed out".into()))
    );
    assert!(matches!(
        ai.chat_stream(&messages(), None).await,
        Err(AiError::Unavailable(reason)) if reason == "timed out"
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    server.wait_for_hangups(2).await;
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_and_the_error_names_no_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ai = provider(&format!("http://{addr}/v1"));
    let err = ai.chat(&messages(), None).await.unwrap_err();
    assert_eq!(err, AiError::Unavailable("connection failed".into()));
    assert!(!err.to_string().contains("127.0.0.1"));
    assert_eq!(ai.probe().await, DepState::Down);
}

#[tokio::test]
async fn a_stream_yields_deltas_then_done_with_usage() {
    let server = Server::start(|_| Answer::Sse {
        chunks: sse(&["Hel", "lo, wor", "ld"], true),
        gap: Duration::from_millis(5),
        hang: false,
    })
    .await;
    let ai = provider(&server.base);
    let items = collect(ai.chat_stream(&messages(), None).await.unwrap()).await;
    let items: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        items,
        [
            StreamEvent::Delta("Hel".into()),
            StreamEvent::Delta("lo, wor".into()),
            StreamEvent::Delta("ld".into()),
            StreamEvent::Done {
                usage: Usage {
                    prompt_tokens: 5,
                    completion_tokens: 4
                },
                model: "chat-m".into()
            },
        ]
    );
    let seen = server.seen();
    assert_eq!(seen[0].body["stream"], true);
    assert_eq!(
        seen[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(seen[0].accept.as_deref(), Some("text/event-stream"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn a_stream_split_mid_line_without_usage_estimates_tokens() {
    // The same events cut into 7-byte pieces, so lines and JSON split across chunks.
    let whole: String = sse(&["abcd", "efgh"], false).concat();
    let chunks = whole
        .as_bytes()
        .chunks(7)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let server = Server::start(move |_| Answer::Sse {
        chunks: Vec::clone(&chunks),
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let ai = provider(&server.base);
    let items = collect(
        ai.chat_stream(&[ChatMessage::new("user", "12345678")], None)
            .await
            .unwrap(),
    )
    .await;
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Delta(d)) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "abcdefgh");
    assert_eq!(
        items.last(),
        Some(&Ok(StreamEvent::Done {
            usage: Usage {
                prompt_tokens: 2,
                completion_tokens: 2
            },
            model: "chat-m".into()
        }))
    );
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_and_counts_as_a_failure() {
    let server = Server::start(|_| Answer::Sse {
        chunks: sse(&["one", "two"], true)[..3].to_vec(),
        gap: Duration::ZERO,
        hang: true,
    })
    .await;
    let ai = AiProvider::new(AiConfig {
        timeout: Duration::from_millis(300),
        ..config(&server.base)
    })
    .unwrap();
    let started = Instant::now();
    let items = collect(ai.chat_stream(&messages(), None).await.unwrap()).await;
    assert_eq!(items.first(), Some(&Ok(StreamEvent::Delta("one".into()))));
    assert_eq!(
        items.last(),
        Some(&Err(AiError::Unavailable("timed out".into())))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ai.state(), DepState::Degraded);
    server.wait_for_hangups(1).await;
}

#[tokio::test]
async fn a_stream_cut_off_before_the_end_fails() {
    let server = Server::start(|_| Answer::Sse {
        chunks: sse(&["one", "two"], true)[..3].to_vec(),
        gap: Duration::ZERO,
        hang: false,
    })
    .await;
    let ai = provider(&server.base);
    let items = collect(ai.chat_stream(&messages(), None).await.unwrap()).await;
    assert_eq!(
        items.last(),
        Some(&Err(AiError::Unavailable("stream ended early".into())))
    );
}

#[tokio::test]
async fn dropping_a_stream_closes_the_upstream_connection() {
    let server = Server::start(|_| Answer::Sse {
        chunks: sse(&["one", "two", "three", "four"], true),
        gap: Duration::from_millis(200),
        hang: true,
    })
    .await;
    let ai = provider(&server.base);
    let mut stream = ai.chat_stream(&messages(), None).await.unwrap();
    assert_eq!(
        stream.next().await,
        Some(Ok(StreamEvent::Delta("one".into())))
    );
    drop(stream);
    // The server notices at its next write (or read): the socket is gone.
    server.wait_for_hangups(1).await;
    // A client that leaves is not the provider's fault.
    assert_eq!(ai.state(), DepState::Ok);
}

#[tokio::test]
async fn a_provider_that_ignores_stream_true_still_streams() {
    let server = Server::start(|_| Answer::Json(200, completion("whole"))).await;
    let ai = provider(&server.base);
    let items = collect(ai.chat_stream(&messages(), None).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], Ok(StreamEvent::Delta("whole".into())));
    assert!(
        matches!(&items[1], Ok(StreamEvent::Done { usage, .. }) if usage.completion_tokens == 3)
    );
}

#[tokio::test]
async fn an_error_status_at_stream_start_is_returned_at_once() {
    let server = Server::start(|_| Answer::Json(502, json!({}))).await;
    let ai = provider(&server.base);
    assert_eq!(
        ai.chat_stream(&messages(), None).await.unwrap_err(),
        AiError::Unavailable("provider error (HTTP 502)".into())
    );
}

/// A 1×1 PNG.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[tokio::test]
async fn image_asks_for_b64_json_and_decodes_it() {
    let server = Server::start(|seen| match seen.body["prompt"].as_str() {
        Some("url") => Answer::Json(
            200,
            json!({"data": [{"url": "http://127.0.0.1:1/img.png"}]}),
        ),
        Some("garbage") => Answer::Json(200, json!({"data": [{"b64_json": "%%%"}]})),
        _ => Answer::Json(200, json!({"created": 1, "data": [{"b64_json": PNG_B64}]})),
    })
    .await;
    let ai = provider(&server.base);
    let png = ai.image("a red square", "256x256").await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/images/generations");
    assert_eq!(
        seen[0].body,
        json!({"model": "image-m", "prompt": "a red square", "size": "256x256", "n": 1, "response_format": "b64_json"})
    );
    assert_eq!(
        ai.image("url", "256x256").await,
        Err(AiError::Rejected("provider answered no image data".into()))
    );
    assert_eq!(
        ai.image("garbage", "256x256").await,
        Err(AiError::Unavailable(
            "invalid response from provider".into()
        ))
    );
}

#[tokio::test]
async fn missing_models_are_not_configured() {
    let server = Server::start(|_| Answer::Json(200, json!({}))).await;
    let ai = AiProvider::new(AiConfig {
        model: None,
        image_model: Some(" ".into()),
        ..config(&server.base)
    })
    .unwrap();
    assert_eq!(
        ai.chat(&messages(), None).await,
        Err(AiError::NotConfigured)
    );
    assert!(matches!(
        ai.chat_stream(&messages(), None).await,
        Err(AiError::NotConfigured)
    ));
    assert_eq!(ai.image("p", "256x256").await, Err(AiError::NotConfigured));
    assert!(!ai.chat_available() && !ai.images_available());
    assert_eq!(ai.state(), DepState::Disabled);
    assert_eq!(ai.probe().await, DepState::Disabled);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn probe_lists_models_and_is_cached() {
    let server = Server::start(|_| {
        Answer::Json(
            200,
            json!({"object": "list", "data": [{"id": "chat-m:latest"}, {"id": "image-m"}]}),
        )
    })
    .await;
    let ai = provider(&server.base);
    assert_eq!(ai.probe().await, DepState::Ok);
    assert_eq!(ai.probe().await, DepState::Ok);
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "the second probe is served from the cache");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );

    let other = AiProvider::new(AiConfig {
        model: Some("not-there".into()),
        ..config(&server.base)
    })
    .unwrap();
    assert_eq!(other.probe().await, DepState::Degraded);
}

#[tokio::test]
async fn probe_reports_refusal_as_down() {
    let server =
        Server::start(|_| Answer::Json(401, json!({"error": {"code": "invalid_api_key"}}))).await;
    assert_eq!(provider(&server.base).probe().await, DepState::Down);
}

#[test]
fn bad_configuration_is_refused_without_echoing_it() {
    for url in ["not a url", "ftp://host/v1", "file:///etc/passwd"] {
        let err = AiProvider::new(config(url)).unwrap_err();
        assert!(!format!("{err:#}").contains(url), "{err:#}");
    }
    let mut cfg = config("http://127.0.0.1:1/v1");
    cfg.api_key = Some("bad\nkey".into());
    let err = AiProvider::new(cfg).unwrap_err();
    assert!(!format!("{err:#}").contains("bad"), "{err:#}");
    let mut cfg = config("http://127.0.0.1:1/v1");
    cfg.timeout = Duration::ZERO;
    assert!(AiProvider::new(cfg).is_err());
}

#[test]
fn debug_output_holds_no_secret() {
    let cfg = config("https://user:hunter2@api.example/v1?key=qwerty");
    let text = format!("{cfg:?}");
    for secret in [KEY, "hunter2", "qwerty", "user"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.contains("api.example"));
    let message = format!("{:?}", ChatMessage::new("user", "private words"));
    assert!(!message.contains("private"));
}
