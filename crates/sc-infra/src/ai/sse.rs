//! Streamed chat completions: a bounded server-sent-events parser ([`SseParser`]), the reading
//! of OpenAI's `chat.completion.chunk` events ([`ChunkDecoder`]), and [`ChatStream`], which
//! drives both over the response body with the idle timeout.
//!
//! The wire format (what OpenAI sends with `stream: true` and
//! `stream_options: {include_usage: true}`):
//!
//! ```text
//! data: {"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}
//!
//! data: {"model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}
//!
//! data: {"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//!
//! data: {"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}
//!
//! data: [DONE]
//! ```
//!
//! Events are parsed as the SSE specification says (lines end in `\n`, `\r\n` or `\r`, events
//! end at a blank line, `:` starts a comment, several `data:` lines join with `\n`), because
//! chunk boundaries fall anywhere: mid-line, mid-`\r\n`, mid-UTF-8 character.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::Deserialize;
use tokio::time::{Instant, Sleep};

use super::breaker::{Breaker, Permit};
use super::{AiError, Usage};

/// The longest line, and the longest event, the parser buffers. A real chunk is a few hundred
/// bytes; anything near this is a broken or hostile server, and must not grow memory without
/// end.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const TOO_LONG: &str = "stream line too long";
const BAD_CHUNK: &str = "invalid stream chunk";

/// Splits a byte stream into SSE events and hands out each event's data.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The current event's data so far.
    data: Vec<u8>,
    has_data: bool,
    /// The last chunk ended in `\r`: a `\n` starting the next one belongs to that line end.
    after_cr: bool,
}

impl SseParser {
    /// Feeds one chunk; the data of every event it completes is appended to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) -> Result<(), AiError> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&rest[..end])?;
            let was_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if was_cr {
                match rest.strip_prefix(b"\n") {
                    Some(tail) => rest = tail,
                    None if rest.is_empty() => self.after_cr = true,
                    None => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.push_line_bytes(rest)
    }

    /// The body ended: a last unterminated line and event still count (some servers end with
    /// `data: [DONE]` and no blank line).
    pub(crate) fn finish(&mut self, out: &mut Vec<String>) -> Result<(), AiError> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, out)?;
        }
        self.line_done(b"", out)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), AiError> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(AiError::Unavailable(TOO_LONG.into()));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) -> Result<(), AiError> {
        if line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                let data = std::mem::take(&mut self.data);
                let text =
                    String::from_utf8(data).map_err(|_| AiError::Unavailable(BAD_CHUNK.into()))?;
                out.push(text);
            }
            return Ok(());
        }
        if line.starts_with(b":") {
            return Ok(()); // a comment (keep-alive, "PROCESSING" notes)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            if self.data.len() + value.len() > MAX_LINE_BYTES {
                return Err(AiError::Unavailable(TOO_LONG.into()));
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // `event`, `id`, `retry` and unknown fields mean nothing for chat completions.
        Ok(())
    }
}

/// One item of a [`ChatStream`].
#[derive(Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The next piece of the answer's text (never empty).
    Delta(String),
    /// The answer is complete; always the last item of a stream that did not fail.
    Done { usage: Usage, model: String },
}

impl fmt::Debug for StreamEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamEvent::Delta(text) => f
                .debug_struct("Delta")
                .field("chars", &text.chars().count())
                .finish(),
            StreamEvent::Done { usage, model } => f
                .debug_struct("Done")
                .field("usage", usage)
                .field("model", model)
                .finish(),
        }
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    /// Some servers report a failure mid-stream as an event `{"error": {...}}`.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

/// Turns the data of each event into [`StreamEvent`]s and keeps what `Done` needs.
#[derive(Debug)]
pub(crate) struct ChunkDecoder {
    model: String,
    usage: Option<Usage>,
    prompt_chars: usize,
    completion_chars: usize,
    finished: bool,
    /// A chunk has been read: the provider is working (the breaker counts it a success).
    pub(crate) any_chunk: bool,
}

impl ChunkDecoder {
    /// `model` is the configured one, kept unless the chunks name another; `prompt_chars`
    /// feeds the usage estimate.
    pub(crate) fn new(model: &str, prompt_chars: usize) -> Self {
        ChunkDecoder {
            model: model.to_owned(),
            usage: None,
            prompt_chars,
            completion_chars: 0,
            finished: false,
            any_chunk: false,
        }
    }

    /// The event for one SSE data payload: a delta, `Done`, or nothing (role-only chunks,
    /// the finish chunk, the usage chunk).
    pub(crate) fn decode(&mut self, data: &str) -> Result<Option<StreamEvent>, AiError> {
        if data.trim() == "[DONE]" {
            return Ok(Some(self.done()));
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|_| AiError::Unavailable(BAD_CHUNK.into()))?;
        if chunk.error.is_some() {
            return Err(AiError::Unavailable("provider error in stream".into()));
        }
        self.any_chunk = true;
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(None);
        };
        if choice.finish_reason.is_some() {
            self.finished = true;
        }
        match choice.delta.and_then(|d| d.content) {
            Some(text) if !text.is_empty() => {
                self.completion_chars += text.chars().count();
                Ok(Some(StreamEvent::Delta(text)))
            }
            _ => Ok(None),
        }
    }

    /// The body ended without `[DONE]`: complete if the provider said the answer finished,
    /// a failure otherwise (a dropped connection looks just like this).
    pub(crate) fn end_of_body(&mut self) -> Result<StreamEvent, AiError> {
        if self.finished {
            Ok(self.done())
        } else {
            Err(AiError::Unavailable("stream ended early".into()))
        }
    }

    pub(crate) fn done(&self) -> StreamEvent {
        StreamEvent::Done {
            usage: self
                .usage
                .unwrap_or_else(|| Usage::estimate(self.prompt_chars, self.completion_chars)),
            model: self.model.clone(),
        }
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Reports a call's outcome to its breaker once: the permit for the first report, the
/// breaker itself for a failure after an earlier success (a stream that stalls half-way).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) breaker: Arc<Breaker>,
    pub(crate) permit: Option<Permit>,
    pub(crate) capability: &'static str,
}

impl Outcome {
    pub(crate) fn success(&mut self) {
        if let Some(permit) = self.permit.take() {
            permit.success();
        }
    }

    /// Reports a finished call: an answer or a rejection shows the provider is up.
    pub(crate) fn report<T>(&mut self, result: &Result<T, AiError>) {
        match result {
            Ok(_) => self.success(),
            Err(AiError::Rejected(reason)) => {
                tracing::debug!(capability = self.capability, reason = %reason, "AI provider rejected a request");
                self.success();
            }
            Err(AiError::Unavailable(reason)) => self.failure(reason),
            Err(AiError::NotConfigured) => {}
        }
    }

    pub(crate) fn failure(&mut self, reason: &str) {
        let now = Instant::now();
        let opened = match self.permit.take() {
            Some(permit) => permit.failure(now),
            None => self.breaker.record_failure(now),
        };
        tracing::warn!(
            capability = self.capability,
            reason,
            "AI provider call failed"
        );
        if opened {
            tracing::warn!(
                capability = self.capability,
                "AI provider breaker opened: calls fail at once for the cool-down"
            );
        }
    }
}

/// A streamed chat answer: [`StreamEvent::Delta`]s, then one [`StreamEvent::Done`]; or an
/// [`AiError`] as the last item. Fused: after the last item it yields `None`.
///
/// Dropping it drops the upstream response body, which closes the connection (HTTP/1.1) or
/// resets the stream (HTTP/2), so the provider stops generating when our client goes away.
pub struct ChatStream {
    /// `None` once the stream has ended, failed or was given complete.
    body: Option<Body>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    parser: SseParser,
    decoder: ChunkDecoder,
    ready: VecDeque<Result<StreamEvent, AiError>>,
    outcome: Outcome,
    started: Instant,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("open", &self.body.is_some())
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// A stream over a response body whose headers just arrived.
    pub(crate) fn new(
        body: Body,
        idle_timeout: Duration,
        decoder: ChunkDecoder,
        outcome: Outcome,
    ) -> Self {
        let now = Instant::now();
        ChatStream {
            body: Some(body),
            idle: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            idle_timeout,
            parser: SseParser::default(),
            decoder,
            ready: VecDeque::new(),
            outcome,
            started: now,
        }
    }

    /// A stream whose items are already known (a provider that ignored `stream: true` and
    /// answered whole).
    pub(crate) fn complete(
        events: Vec<StreamEvent>,
        decoder: ChunkDecoder,
        outcome: Outcome,
    ) -> Self {
        let mut stream = ChatStream::new(
            Box::pin(futures_util::stream::empty()),
            Duration::from_secs(3600), // never polled: there is no body to wait for
            decoder,
            outcome,
        );
        stream.body = None;
        stream.ready = events.into_iter().map(Ok).collect();
        stream
    }

    fn fail(&mut self, err: AiError) {
        self.body = None;
        let err = Err(err);
        self.outcome.report(&err);
        self.ready.push_back(err);
    }

    fn finish(&mut self, done: StreamEvent) {
        self.body = None;
        self.outcome.success();
        if let StreamEvent::Done { usage, .. } = &done {
            tracing::debug!(
                capability = self.outcome.capability,
                elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                "AI stream complete"
            );
        }
        self.ready.push_back(Ok(done));
    }

    fn ingest(&mut self, chunk: &[u8]) {
        let mut datas = Vec::new();
        let parsed = self.parser.feed(chunk, &mut datas);
        self.decode_all(datas);
        if let Err(err) = parsed
            && self.body.is_some()
        {
            self.fail(err);
        }
    }

    fn decode_all(&mut self, datas: Vec<String>) {
        for data in datas {
            if self.body.is_none() {
                return; // [DONE] or an error came first; ignore what follows
            }
            match self.decoder.decode(&data) {
                Ok(Some(done @ StreamEvent::Done { .. })) => self.finish(done),
                Ok(Some(delta)) => self.ready.push_back(Ok(delta)),
                Ok(None) => {}
                Err(err) => self.fail(err),
            }
            if self.decoder.any_chunk {
                // The provider produces: close a half-open breaker now rather than at the
                // end of a long answer.
                self.outcome.success();
            }
        }
    }

    fn end_of_body(&mut self) {
        let mut datas = Vec::new();
        let parsed = self.parser.finish(&mut datas);
        self.decode_all(datas);
        if self.body.is_none() {
            return;
        }
        match parsed.and_then(|()| self.decoder.end_of_body()) {
            Ok(done) => self.finish(done),
            Err(err) => self.fail(err),
        }
    }
}

impl Stream for ChatStream {
    type Item = Result<StreamEvent, AiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                    this.ingest(&chunk);
                }
                Poll::Ready(Some(Err(err))) => {
                    this.fail(AiError::Unavailable(
                        super::client::transport_reason(&err).into(),
                    ));
                }
                Poll::Ready(None) => this.end_of_body(),
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        this.fail(AiError::Unavailable("timed out".into()));
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Result<Vec<String>, AiError> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out)?;
        }
        parser.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let text = "data: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: é€😀\n\nevent: x\nid: 7\ndata: [DONE]\n\n";
        let whole = parse_chunks(&[text.as_bytes()]).expect("parses");
        assert_eq!(whole, ["{\"a\":1}", "é€😀", "[DONE]"]);
        let bytes = text.as_bytes();
        for split in 0..bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(
                parse_chunks(&[a, b]).expect("parses"),
                whole,
                "split at {split}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&singles).expect("parses"), whole);
    }

    #[test]
    fn line_endings_multiline_data_and_missing_space() {
        let out = parse_chunks(&[b"data:one\rdata: two\r\rdata: three\n\n"]).expect("parses");
        assert_eq!(out, ["one\ntwo", "three"]);
        // A body that ends without the blank line still delivers its last event.
        assert_eq!(
            parse_chunks(&[b"data: [DONE]"]).expect("parses"),
            ["[DONE]"]
        );
        // Blank lines without data dispatch nothing.
        assert!(
            parse_chunks(&[b"\n\n\r\n: c\n\n"])
                .expect("parses")
                .is_empty()
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_not_memory() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        let block = vec![b'x'; 64 * 1024];
        parser.feed(b"data: ", &mut out).expect("fine");
        let mut failed = false;
        for _ in 0..(MAX_LINE_BYTES / block.len() + 1) {
            if let Err(err) = parser.feed(&block, &mut out) {
                assert_eq!(err, AiError::Unavailable(TOO_LONG.into()));
                failed = true;
                break;
            }
        }
        assert!(failed, "an endless line must fail");
        assert!(parser.line.len() <= MAX_LINE_BYTES);
        // Many short data lines in one event are bounded too.
        let mut parser = SseParser::default();
        let line = format!("data: {}\n", "y".repeat(1000));
        let err = (0..2000).find_map(|_| parser.feed(line.as_bytes(), &mut out).err());
        assert_eq!(err, Some(AiError::Unavailable(TOO_LONG.into())));
    }

    #[test]
    fn invalid_utf8_in_an_event_is_an_error() {
        assert_eq!(
            parse_chunks(&[b"data: \xff\xfe\n\n"]),
            Err(AiError::Unavailable(BAD_CHUNK.into()))
        );
    }

    #[test]
    fn decodes_openai_chunks_with_usage() {
        let mut d = ChunkDecoder::new("configured", 40);
        let role = r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
        assert_eq!(d.decode(role), Ok(None));
        let hel = r#"{"model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        assert_eq!(d.decode(hel), Ok(Some(StreamEvent::Delta("Hel".into()))));
        let lo = r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#;
        assert_eq!(d.decode(lo), Ok(Some(StreamEvent::Delta("lo".into()))));
        let stop = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(d.decode(stop), Ok(None));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}"#;
        assert_eq!(d.decode(usage), Ok(None));
        assert_eq!(
            d.decode("[DONE]"),
            Ok(Some(StreamEvent::Done {
                usage: Usage {
                    prompt_tokens: 12,
                    completion_tokens: 2
                },
                model: "gpt-x".into()
            }))
        );
    }

    #[test]
    fn without_a_usage_chunk_tokens_are_estimated() {
        let mut d = ChunkDecoder::new("configured", 41);
        d.decode(r#"{"choices":[{"index":0,"delta":{"content":"abcde"}}]}"#)
            .expect("delta");
        assert_eq!(
            d.decode("[DONE]"),
            Ok(Some(StreamEvent::Done {
                usage: Usage {
                    prompt_tokens: 11,
                    completion_tokens: 2
                },
                model: "configured".into()
            }))
        );
    }

    #[test]
    fn errors_and_early_ends() {
        let mut d = ChunkDecoder::new("m", 0);
        assert_eq!(
            d.decode("not json"),
            Err(AiError::Unavailable(BAD_CHUNK.into()))
        );
        assert_eq!(
            d.decode(r#"{"error":{"message":"overloaded, prompt was: secret"}}"#),
            Err(AiError::Unavailable("provider error in stream".into()))
        );
        assert_eq!(
            d.end_of_body(),
            Err(AiError::Unavailable("stream ended early".into()))
        );
        d.decode(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#)
            .expect("finish");
        assert!(matches!(d.end_of_body(), Ok(StreamEvent::Done { .. })));
    }

    #[test]
    fn debug_output_has_no_text() {
        let delta = StreamEvent::Delta("my secret answer".into());
        assert!(!format!("{delta:?}").contains("secret"));
    }
}
