//! [`AiProvider`]: the HTTP side — requests, status mapping, bounded bodies, breakers, probe.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use super::breaker::{Breaker, BreakerState};
use super::sse::{ChatStream, ChunkDecoder, Outcome};
use super::{AiConfig, AiError, ChatMessage, Completion, StreamEvent, Usage};
use crate::DepState;

/// Caps on what is buffered from the provider, so a broken or hostile server cannot grow our
/// memory: a chat answer is kilobytes; a 1024×1024 PNG in base64 is 2–4 MB, larger sizes some
/// providers offer stay well under the image cap; OpenRouter's model list is a few MB.
const MAX_CHAT_BODY: usize = 8 << 20;
const MAX_IMAGE_BODY: usize = 48 << 20;
const MAX_MODELS_BODY: usize = 8 << 20;
/// Only the error code is read from an error body.
const MAX_ERROR_BODY: usize = 16 << 10;

/// `/ready` may be polled every second by several balancers; one probe per this long is
/// enough.
const PROBE_TTL: Duration = Duration::from_secs(10);
/// A readiness answer must come quickly even when the chat timeout is a minute.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

const BREAKER_OPEN: &str = "provider unavailable";
const TIMED_OUT: &str = "timed out";
const BAD_ANSWER: &str = "invalid response from provider";

/// The client for one OpenAI-compatible provider. Cheap to clone (the state is shared), so
/// one instance serves the whole process and its breakers see every call.
#[derive(Clone)]
pub struct AiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    chat_url: Url,
    images_url: Url,
    models_url: Url,
    model: Option<String>,
    image_model: Option<String>,
    timeout: Duration,
    chat_breaker: Arc<Breaker>,
    image_breaker: Arc<Breaker>,
    /// The last probe's result and when it was taken. An async mutex, held across the probe
    /// request, so concurrent `/ready` calls share one request instead of each sending one.
    probe: tokio::sync::Mutex<Option<(Instant, DepState)>>,
}

impl fmt::Debug for AiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiProvider")
            .field("model", &self.inner.model)
            .field("image_model", &self.inner.image_model)
            .field("timeout", &self.inner.timeout)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ImageRequest<'a> {
    model: &'a str,
    prompt: &'a str,
    size: &'a str,
    n: u8,
    response_format: &'static str,
}

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireImages {
    #[serde(default)]
    data: Vec<WireImage>,
}

#[derive(Deserialize)]
struct WireImage {
    #[serde(default)]
    b64_json: Option<String>,
}

#[derive(Deserialize)]
struct WireModels {
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
}

impl AiProvider {
    /// Checks the configuration and builds the HTTP client. Errors name the setting, never
    /// its value (the URL may carry credentials).
    pub fn new(cfg: AiConfig) -> anyhow::Result<Self> {
        let base = Url::parse(cfg.base_url.trim()).context("SC_AI_BASE_URL is not a URL")?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("SC_AI_BASE_URL must be an http:// or https:// URL with a host");
        }
        if cfg.timeout.is_zero() {
            bail!("SC_AI_TIMEOUT_SECONDS must be positive");
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = cfg
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .ok()
                .context("SC_AI_API_KEY holds characters not allowed in an HTTP header")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            // A provider has no reason to redirect; following one could send the key and the
            // prompts to another host.
            .redirect(Policy::none())
            .connect_timeout(cfg.connect_timeout.min(cfg.timeout))
            .default_headers(headers)
            .user_agent(concat!("SecureConnect/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the AI HTTP client")?;
        let model = |m: Option<String>| m.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
        Ok(AiProvider {
            inner: Arc::new(Inner {
                http,
                chat_url: endpoint(&base, "chat/completions"),
                images_url: endpoint(&base, "images/generations"),
                models_url: endpoint(&base, "models"),
                model: model(cfg.model),
                image_model: model(cfg.image_model),
                timeout: cfg.timeout,
                chat_breaker: Arc::new(Breaker::default()),
                image_breaker: Arc::new(Breaker::default()),
                probe: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A chat model is configured and its breaker lets calls through.
    pub fn chat_available(&self) -> bool {
        self.inner.model.is_some() && self.inner.chat_breaker.would_allow(Instant::now())
    }

    /// An image model is configured and its breaker lets calls through.
    pub fn images_available(&self) -> bool {
        self.inner.image_model.is_some() && self.inner.image_breaker.would_allow(Instant::now())
    }

    /// The health the breakers know of, without a request: `Disabled` with no model at all,
    /// `Down` when every configured capability's breaker is open, `Degraded` when one is open
    /// or half-open or has failed since its last success, `Ok` otherwise.
    pub fn state(&self) -> DepState {
        let now = Instant::now();
        let states: Vec<DepState> = self
            .capabilities()
            .map(|breaker| match breaker.state(now) {
                BreakerState::Closed { failures: 0 } => DepState::Ok,
                BreakerState::Closed { .. } | BreakerState::HalfOpen { .. } => DepState::Degraded,
                BreakerState::Open => DepState::Down,
            })
            .collect();
        if states.is_empty() {
            DepState::Disabled
        } else if states.iter().all(|s| *s == DepState::Down) {
            DepState::Down
        } else if states.iter().all(|s| *s == DepState::Ok) {
            DepState::Ok
        } else {
            DepState::Degraded
        }
    }

    fn capabilities(&self) -> impl Iterator<Item = &Arc<Breaker>> {
        let inner = &*self.inner;
        [
            (inner.model.is_some(), &inner.chat_breaker),
            (inner.image_model.is_some(), &inner.image_breaker),
        ]
        .into_iter()
        .filter_map(|(configured, breaker)| configured.then_some(breaker))
    }

    fn outcome(breaker: &Arc<Breaker>, capability: &'static str) -> Result<Outcome, AiError> {
        match breaker.try_acquire(Instant::now()) {
            Some(permit) => Ok(Outcome {
                breaker: Arc::clone(breaker),
                permit: Some(permit),
                capability,
            }),
            None => {
                tracing::debug!(
                    capability,
                    "AI breaker open: call refused without a request"
                );
                Err(AiError::Unavailable(BREAKER_OPEN.into()))
            }
        }
    }

    /// One whole chat completion (`stream: false`).
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        max_tokens: Option<u32>,
    ) -> Result<Completion, AiError> {
        let model = self.inner.model.as_deref().ok_or(AiError::NotConfigured)?;
        let mut outcome = Self::outcome(&self.inner.chat_breaker, "chat")?;
        let prompt_chars = log_request("chat", messages, max_tokens);
        let started = Instant::now();
        let request = self
            .inner
            .http
            .post(self.inner.chat_url.clone())
            .timeout(self.inner.timeout)
            .json(&ChatRequest {
                model,
                messages,
                stream: false,
                max_tokens,
                stream_options: None,
            });
        let result = async {
            let resp = request.send().await.map_err(transport_error)?;
            let resp = check_status(resp).await?;
            read_completion(resp, model, prompt_chars).await
        }
        .instrument(sc_core::dependency_span!("ai", "ai.chat"))
        .await;
        outcome.report(&result);
        if let Ok(done) = &result {
            tracing::debug!(
                capability = "chat",
                elapsed_ms = millis(started.elapsed()),
                prompt_tokens = done.usage.prompt_tokens,
                completion_tokens = done.usage.completion_tokens,
                "AI answer"
            );
        }
        result
    }

    /// A streamed chat completion (`stream: true` with `stream_options.include_usage`). The
    /// response must start within the timeout; after that each chunk must follow the previous
    /// one within it (see [`ChatStream`]).
    pub async fn chat_stream(
        &self,
        messages: &[ChatMessage],
        max_tokens: Option<u32>,
    ) -> Result<ChatStream, AiError> {
        let model = self.inner.model.as_deref().ok_or(AiError::NotConfigured)?;
        let mut outcome = Self::outcome(&self.inner.chat_breaker, "chat")?;
        let prompt_chars = log_request("chat", messages, max_tokens);
        let request = self
            .inner
            .http
            .post(self.inner.chat_url.clone())
            .header(ACCEPT, "text/event-stream")
            .json(&ChatRequest {
                model,
                messages,
                stream: true,
                max_tokens,
                stream_options: Some(StreamOptions {
                    include_usage: true,
                }),
            });
        let timeout = self.inner.timeout;
        let started = within(timeout, async {
            let resp = request.send().await.map_err(transport_error)?;
            check_status(resp).await
        })
        .instrument(sc_core::dependency_span!("ai", "ai.chat_stream"))
        .await;
        let resp = match started {
            Ok(resp) => resp,
            Err(err) => {
                outcome.report::<()>(&Err(err.clone()));
                return Err(err);
            }
        };
        let decoder = ChunkDecoder::new(model, prompt_chars);
        if is_json(resp.headers()) {
            // The server ignored `stream: true` and answered whole: hand the answer out as a
            // stream of one delta rather than failing.
            let whole = within(timeout, read_completion(resp, model, prompt_chars)).await;
            outcome.report(&whole);
            let done = whole?;
            let mut events = Vec::with_capacity(2);
            if !done.content.is_empty() {
                events.push(StreamEvent::Delta(done.content));
            }
            events.push(StreamEvent::Done {
                usage: done.usage,
                model: done.model,
            });
            return Ok(ChatStream::complete(events, decoder, outcome));
        }
        Ok(ChatStream::new(
            Box::pin(resp.bytes_stream()),
            timeout,
            decoder,
            outcome,
        ))
    }

    /// One generated image (`n: 1`, `response_format: "b64_json"`), decoded. The bytes are
    /// what the provider sent; the caller checks they are the PNG it expects. A provider that
    /// answers with a URL instead is refused: fetching a URL a server hands us would be an
    /// open door to our internal network.
    pub async fn image(&self, prompt: &str, size: &str) -> Result<Vec<u8>, AiError> {
        let model = self
            .inner
            .image_model
            .as_deref()
            .ok_or(AiError::NotConfigured)?;
        let mut outcome = Self::outcome(&self.inner.image_breaker, "images")?;
        tracing::debug!(
            capability = "images",
            prompt_chars = prompt.chars().count(),
            size,
            "AI request"
        );
        let started = Instant::now();
        let request = self
            .inner
            .http
            .post(self.inner.images_url.clone())
            .timeout(self.inner.timeout)
            .json(&ImageRequest {
                model,
                prompt,
                size,
                n: 1,
                response_format: "b64_json",
            });
        let result = async {
            let resp = request.send().await.map_err(transport_error)?;
            let resp = check_status(resp).await?;
            let (body, truncated) = read_capped(resp, MAX_IMAGE_BODY).await?;
            if truncated {
                return Err(AiError::Unavailable("answer too large".into()));
            }
            let images: WireImages = serde_json::from_slice(&body)
                .map_err(|_| AiError::Unavailable(BAD_ANSWER.into()))?;
            let b64 = images
                .data
                .into_iter()
                .next()
                .and_then(|i| i.b64_json)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| AiError::Rejected("provider answered no image data".into()))?;
            STANDARD
                .decode(b64.trim())
                .map_err(|_| AiError::Unavailable(BAD_ANSWER.into()))
        }
        .instrument(sc_core::dependency_span!("ai", "ai.images"))
        .await;
        outcome.report(&result);
        if let Ok(bytes) = &result {
            tracing::debug!(
                capability = "images",
                elapsed_ms = millis(started.elapsed()),
                bytes = bytes.len(),
                "AI answer"
            );
        }
        result
    }

    /// Readiness for `/ready`: `GET {base}/models` (at most once per 10 s; concurrent callers
    /// share one request), combined with [`Self::state`] — whichever is worse. The probe says
    /// `Down` when the provider cannot be reached or refuses us, `Degraded` when it answers but
    /// does not list a configured model (or has no readable model list), `Ok` otherwise. It
    /// does not touch the breakers: readiness polling must not switch features on or off.
    pub async fn probe(&self) -> DepState {
        let state = self.state();
        if state == DepState::Disabled {
            return state;
        }
        let reach = {
            let mut cache = self.inner.probe.lock().await;
            match *cache {
                Some((at, reach)) if at.elapsed() < PROBE_TTL => reach,
                previous => {
                    let reach = self.probe_once().await;
                    if previous.map(|(_, s)| s) != Some(reach) {
                        tracing::info!(state = reach.as_str(), "AI provider probe");
                    }
                    *cache = Some((Instant::now(), reach));
                    reach
                }
            }
        };
        worse(reach, self.state())
    }

    async fn probe_once(&self) -> DepState {
        let sent = self
            .inner
            .http
            .get(self.inner.models_url.clone())
            .timeout(PROBE_TIMEOUT.min(self.inner.timeout))
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(err) => {
                tracing::warn!(reason = transport_reason(&err), "AI provider probe failed");
                return DepState::Down;
            }
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            // No model list (some proxies) or a base URL without `/v1`: reachable but not
            // as configured.
            404 | 405 => {
                tracing::warn!(status, "AI provider probe: no model list");
                return DepState::Degraded;
            }
            _ => {
                tracing::warn!(status, "AI provider probe refused");
                return DepState::Down;
            }
        }
        let Ok((body, truncated)) = read_capped(resp, MAX_MODELS_BODY).await else {
            return DepState::Down;
        };
        if truncated {
            return DepState::Ok; // a huge catalogue: reachable, not worth checking
        }
        let Ok(list) = serde_json::from_slice::<WireModels>(&body) else {
            tracing::warn!("AI provider probe: unreadable model list");
            return DepState::Degraded;
        };
        let inner = &*self.inner;
        let missing: Vec<&str> = [inner.model.as_deref(), inner.image_model.as_deref()]
            .into_iter()
            .flatten()
            .filter(|m| !lists_model(&list.data, m))
            .collect();
        if missing.is_empty() {
            DepState::Ok
        } else {
            tracing::warn!(missing = ?missing, "AI provider does not list a configured model");
            DepState::Degraded
        }
    }
}

/// `{base}/{suffix}`, keeping the base's query (an `api-version`, for example).
fn endpoint(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{suffix}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    url
}

/// The URL without user info and query, for `Debug`.
pub(crate) fn redacted_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// Ollama lists `name:latest` for a model configured as `name`.
fn lists_model(models: &[WireModel], model: &str) -> bool {
    models.iter().any(|m| {
        m.id == model
            || m.id.strip_suffix(":latest") == Some(model)
            || model.strip_suffix(":latest") == Some(m.id.as_str())
    })
}

fn worse(a: DepState, b: DepState) -> DepState {
    let rank = |s: DepState| match s {
        DepState::Ok | DepState::Disabled => 0,
        DepState::Degraded => 1,
        DepState::Down => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Logs the shape of a chat request (never its text) and returns the prompt's size in
/// characters for the usage estimate.
fn log_request(
    capability: &'static str,
    messages: &[ChatMessage],
    max_tokens: Option<u32>,
) -> usize {
    let prompt_chars = messages.iter().map(|m| m.content.chars().count()).sum();
    tracing::debug!(
        capability,
        messages = messages.len(),
        prompt_chars,
        max_tokens,
        "AI request"
    );
    prompt_chars
}

async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, AiError>>,
) -> Result<T, AiError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(AiError::Unavailable(TIMED_OUT.into())))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// A transport failure as fixed text: the error's own message can name the URL.
pub(crate) fn transport_reason(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        TIMED_OUT
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "connection lost"
    } else {
        "request failed"
    }
}

fn transport_error(err: reqwest::Error) -> AiError {
    AiError::Unavailable(transport_reason(&err).into())
}

/// The response if 2xx; otherwise its status as an [`AiError`] (see [`status_error`]).
async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, AiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = if status.is_client_error() {
        read_capped(resp, MAX_ERROR_BODY)
            .await
            .ok()
            .and_then(|(body, _)| error_code(&body))
    } else {
        None
    };
    tracing::debug!(status = status.as_u16(), code = ?code, "AI provider error status");
    Err(status_error(status.as_u16(), code.as_deref()))
}

/// The meaning of a non-2xx status. 401/403 (a wrong or revoked key) and 429 (quota or rate
/// limit) make the provider unusable for everyone, so they count as failures like 5xx; 408 is
/// the provider being slow. Other 4xx refuse this one request (context too long, a filtered
/// prompt, an unknown model) and say nothing about the provider's health.
fn status_error(status: u16, code: Option<&str>) -> AiError {
    let with_code = |what: &str| match code {
        Some(code) => format!("{what} (HTTP {status}, {code})"),
        None => format!("{what} (HTTP {status})"),
    };
    match status {
        401 | 403 => AiError::Unavailable(with_code("provider refused the credentials")),
        408 => AiError::Unavailable(with_code("provider timed out")),
        429 => AiError::Unavailable(with_code("provider rate limited")),
        400..=499 => AiError::Rejected(with_code("provider rejected the request")),
        300..=399 => AiError::Unavailable(with_code("provider answered a redirect")),
        _ => AiError::Unavailable(with_code("provider error")),
    }
}

/// `error.code` (or `error.type`) of an OpenAI error body, when it is a short identifier. The
/// `message` is never used: providers put the prompt, or parts of it, in there.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    ["code", "type"].into_iter().find_map(|key| {
        let text = error.get(key)?.as_str()?;
        let token = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        token.then(|| text.to_owned())
    })
}

/// The body up to `limit` bytes, and whether there was more.
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), AiError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

async fn read_completion(
    resp: reqwest::Response,
    model: &str,
    prompt_chars: usize,
) -> Result<Completion, AiError> {
    let (body, truncated) = read_capped(resp, MAX_CHAT_BODY).await?;
    if truncated {
        return Err(AiError::Unavailable("answer too large".into()));
    }
    let wire: WireCompletion =
        serde_json::from_slice(&body).map_err(|_| AiError::Unavailable(BAD_ANSWER.into()))?;
    if wire.choices.is_empty() {
        return Err(AiError::Unavailable(BAD_ANSWER.into()));
    }
    // `content: null` comes with a refusal or a tool call: the provider works, this answer
    // just has no text for us.
    let content = wire
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message)
        .and_then(|m| m.content)
        .ok_or_else(|| AiError::Rejected("provider answered no content".into()))?;
    let usage = wire
        .usage
        .unwrap_or_else(|| Usage::estimate(prompt_chars, content.chars().count()));
    Ok(Completion {
        content,
        model: wire
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| model.to_owned()),
        usage,
    })
}
