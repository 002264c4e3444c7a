//! The AI provider adapter: one client for any OpenAI-compatible API (OpenAI, Ollama, vLLM,
//! LocalAI, llama.cpp's server, OpenRouter …) at a configured `/v1` base URL — chat completions
//! (whole or streamed as server-sent events), image generation and a model-list probe for
//! `/ready`.
//!
//! Prompts and completions are the users' private conversation text, and the API key is a
//! credential that costs money. So no string this module produces — [`AiError`] reasons,
//! `Debug` output, tracing fields — contains prompt or completion text, the key, a response
//! body or the base URL's query or user info; logs carry at most sizes, token counts, status
//! codes and the error class. The `Debug` impls of [`ChatMessage`], [`Completion`] and
//! [`StreamEvent`] print lengths instead of text so that a stray `{:?}` cannot leak either.
//!
//! A provider that is down would make every request wait for the timeout, so each capability
//! (chat, images) sits behind its own circuit [`breaker`]: after
//! [`breaker::FAILURE_THRESHOLD`] consecutive failures it fails at once for
//! [`breaker::COOL_DOWN`]. Separate breakers because one backend can fail alone (an image
//! model that crashes must not switch chat off).

pub mod breaker;
mod client;
mod sse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::AiProvider;
pub use sse::{ChatStream, MAX_LINE_BYTES, StreamEvent};

/// Whole-request timeout when the configuration gives none: generous, because a local model on
/// a CPU can take tens of seconds for an answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Connect timeout when the configuration gives none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the adapter needs from the server configuration (`SC_AI_*`).
#[derive(Clone)]
pub struct AiConfig {
    /// An OpenAI-compatible `/v1` base, e.g. `http://127.0.0.1:11434/v1`; the adapter appends
    /// `/chat/completions`, `/images/generations` and `/models` to its path (a query, such as
    /// an `api-version`, is kept).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; `None` (or blank) for providers without keys.
    pub api_key: Option<String>,
    /// The chat model; `None` switches chat (and provider summaries) off.
    pub model: Option<String>,
    /// The image model; `None` switches image generation off.
    pub image_model: Option<String>,
    /// For whole answers, the whole request. For streams, the wait until the response starts,
    /// then the longest silence allowed between two chunks: a stream that keeps producing may
    /// take longer in all, one that stalls fails after this long.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl AiConfig {
    /// A configuration for `base_url` without key or models and with the default timeouts.
    pub fn new(base_url: impl Into<String>) -> Self {
        AiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: None,
            image_model: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiConfig")
            .field("base_url", &client::redacted_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("image_model", &self.image_model)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// One message of a chat, as the OpenAI API takes it: `role` is `system`, `user` or
/// `assistant` (the caller validates; the adapter passes it on).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

impl fmt::Debug for ChatMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatMessage")
            .field("role", &self.role)
            .field("content_chars", &self.content.chars().count())
            .finish()
    }
}

/// Token counts of one completion. When the provider reports none (a stream whose server
/// ignored `stream_options.include_usage`, or an answer without `usage`), the adapter
/// estimates both as characters / 4, rounded up — the common rule of thumb for English text —
/// so budgets and metrics never see zeros for real work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

impl Usage {
    /// The characters / 4 estimate for a prompt of `prompt_chars` and an answer of
    /// `completion_chars` characters.
    pub fn estimate(prompt_chars: usize, completion_chars: usize) -> Usage {
        let tokens = |chars: usize| u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX);
        Usage {
            prompt_tokens: tokens(prompt_chars),
            completion_tokens: tokens(completion_chars),
        }
    }
}

/// A whole chat answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    /// The model that answered, as the provider names it (the configured one if it says
    /// nothing).
    pub model: String,
    pub usage: Usage,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("content_chars", &self.content.chars().count())
            .field("model", &self.model)
            .field("usage", &self.usage)
            .finish()
    }
}

/// Why an AI call gave no answer. Every variant is a 503 for clients; the variants differ in
/// what they say about the provider. Reasons are short fixed texts plus status codes: never
/// prompt text, a URL or the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// No model is configured for this capability.
    #[error("AI is not configured")]
    NotConfigured,
    /// The provider is down, slow past the timeout, answered 5xx, 401/403/429 or something
    /// unreadable, or its breaker is open. Counts as a provider failure.
    #[error("AI provider unavailable: {0}")]
    Unavailable(String),
    /// The provider is up but refused this request (another 4xx, e.g. the context is too long,
    /// or an answer without content). Does not count against the provider.
    #[error("AI provider rejected the request: {0}")]
    Rejected(String),
}

impl AiError {
    /// The short reason (for a log field or an error `details` entry).
    pub fn reason(&self) -> &str {
        match self {
            AiError::NotConfigured => "not configured",
            AiError::Unavailable(reason) | AiError::Rejected(reason) => reason,
        }
    }
}
