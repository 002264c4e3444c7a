//! AI helpers (API.md §9) through any OpenAI-compatible provider, private by design: nothing
//! is read without the user's opt-in (and, for a conversation, its `ai_enabled`), encrypted
//! conversations are never read, conversation text goes only as user-role content under the
//! server's own system prompts, and no prompt or completion text is logged — sizes and token
//! counts only. Summaries work without a provider (the offline summarizer).

pub mod assistant;
pub mod chunks;
pub mod offline;
mod summary;

pub use summary::SummaryView;

use crate::{AuthContext, Deps, drive::DriveService};
use sc_core::{AppError, AppResult, ids::UserId, time::Timestamp};
use sc_infra::{
    DepState,
    ai::{AiError, AiProvider, ChatMessage, ChatStream, Completion},
    ratelimit::Decision,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// The limits of `POST /v1/ai/chat` (API.md §12).
const MAX_CHAT_MESSAGES: usize = 50;
const MAX_CHAT_CHARS: usize = 32_000;
const MAX_IMAGE_PROMPT_CHARS: usize = 4_000;
const IMAGE_SIZES: [&str; 3] = ["256x256", "512x512", "1024x1024"];

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AiSettingsView {
    /// The caller's opt-in.
    pub enabled: bool,
    /// A provider is configured and not known to be down.
    pub provider_available: bool,
    /// Assistant chat can be offered (a chat model is configured and the provider is up).
    pub chat: bool,
    /// Image generation can be offered.
    pub images: bool,
    /// "provider" or "offline" (the built-in extractive summarizer).
    pub summaries: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    /// "system", "user" or "assistant"
    pub role: String,
    pub content: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatAnswer {
    pub message: ChatTurn,
    pub model: String,
    pub usage: UsageView,
}

#[derive(Clone)]
pub struct AiService {
    d: Arc<Deps>,
    provider: Option<Arc<AiProvider>>,
    drive: DriveService,
}

/// What a provider failure is for clients: 503 with a clear message, never a 500.
fn unavailable(e: AiError) -> AppError {
    match e {
        AiError::NotConfigured => AppError::ServiceUnavailable(
            "no AI provider is configured for this on the server".into(),
        ),
        AiError::Unavailable(why) => {
            AppError::ServiceUnavailable(format!("the AI provider is unavailable ({why})"))
        }
        AiError::Rejected(why) => {
            AppError::ServiceUnavailable(format!("the AI provider refused the request ({why})"))
        }
    }
}

fn outcome_label(r: &Result<impl Sized, AiError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(AiError::Rejected(_)) => "rejected",
        Err(_) => "unavailable",
    }
}

/// Seconds until the next 00:00 UTC, when the daily budget resets.
fn until_midnight_utc(now: Timestamp) -> Duration {
    let day = 86_400;
    let secs = now.unix_seconds().rem_euclid(day);
    Duration::from_secs((day - secs).max(1) as u64)
}

impl AiService {
    pub fn new(d: Arc<Deps>, provider: Option<Arc<AiProvider>>, drive: DriveService) -> Self {
        Self { d, provider, drive }
    }

    /// For `/ready`: `disabled` without a provider.
    pub async fn state(&self) -> DepState {
        match &self.provider {
            None => DepState::Disabled,
            Some(p) => p.probe().await,
        }
    }

    /// The provider, when it has a chat model.
    fn chat_provider(&self) -> Result<&AiProvider, AiError> {
        match &self.provider {
            Some(p) if self.d.cfg.ai_chat_configured() => Ok(p),
            _ => Err(AiError::NotConfigured),
        }
    }

    pub async fn settings(&self, ctx: &AuthContext) -> AppResult<AiSettingsView> {
        let enabled = self.opted_in(ctx.user_id).await?;
        let p = self.provider.as_deref();
        Ok(AiSettingsView {
            enabled,
            provider_available: p.is_some_and(|p| p.state() != DepState::Down),
            chat: p.is_some_and(AiProvider::chat_available),
            images: p.is_some_and(AiProvider::images_available),
            summaries: if p.is_some() && self.d.cfg.ai_chat_configured() {
                "provider".into()
            } else {
                "offline".into()
            },
        })
    }

    pub async fn set_opt_in(&self, ctx: &AuthContext, enabled: bool) -> AppResult<AiSettingsView> {
        self.d.db.ai().set_opt_in(ctx.user_id, enabled).await?;
        // The opt-in is read through the account cache: drop it here and on every instance.
        self.d.user_changed(ctx.user_id).await;
        self.d
            .audit(
                Some(ctx.user_id),
                if enabled {
                    "ai.opted_in"
                } else {
                    "ai.opted_out"
                },
                None,
                serde_json::json!({}),
            )
            .await;
        self.settings(ctx).await
    }

    /// Whether `user` opted in, through the account cache (its entries live at most 500 ms and
    /// a change drops them on every instance, as for a revoked session), so the first token of
    /// a chat does not wait for the database.
    pub(crate) async fn opted_in(&self, user: UserId) -> AppResult<bool> {
        Ok(self.d.user_view(user).await?.is_some_and(|u| u.ai_enabled))
    }

    /// 403 unless the caller opted in.
    async fn require_opt_in(&self, user: UserId) -> AppResult<()> {
        if self.opted_in(user).await? {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "turn AI helpers on first (PATCH /v1/ai/settings {\"enabled\": true})".into(),
            ))
        }
    }

    /// Counts one request against the user's daily budget (resetting at 00:00 UTC): the
    /// decision, whose figures go into the `RateLimit-*` headers, or 429.
    pub async fn charge(&self, user: UserId) -> AppResult<Decision> {
        let now = Timestamp::now();
        let day = now.unix_seconds().div_euclid(86_400);
        let limit = self.d.cfg.ai_requests_per_user_per_day;
        let d = self
            .d
            .limiter
            .check(&format!("ai:{user}:{day}"), limit, until_midnight_utc(now))
            .await;
        if d.allowed {
            return Ok(d);
        }
        self.d
            .metrics
            .rate_limited
            .get_or_create(&vec![("scope", "ai".to_string())])
            .inc();
        Err(AppError::RateLimited {
            retry_after_seconds: d.reset_seconds,
            limit: Some(limit),
        })
    }

    /// Records an AI request's outcome, time and tokens; logs sizes only.
    fn observe<T>(
        &self,
        route: &str,
        started: Instant,
        r: &Result<T, AiError>,
        usage: Option<(u64, u64)>,
    ) {
        let outcome = outcome_label(r);
        let m = &self.d.metrics;
        m.ai_requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        m.ai_latency
            .get_or_create(&vec![("route", route.to_string())])
            .observe(started.elapsed().as_secs_f64());
        if let Some((prompt, completion)) = usage {
            m.ai_tokens
                .get_or_create(&vec![("kind", "prompt".to_string())])
                .inc_by(prompt);
            m.ai_tokens
                .get_or_create(&vec![("kind", "completion".to_string())])
                .inc_by(completion);
        }
        tracing::info!(
            route,
            outcome,
            ms = started.elapsed().as_millis() as u64,
            prompt_tokens = usage.map(|u| u.0),
            completion_tokens = usage.map(|u| u.1),
            "ai request"
        );
    }

    /// Checks a chat request: 1–50 turns of known roles, at most 32,000 characters in all.
    fn chat_messages(turns: Vec<ChatTurn>) -> AppResult<Vec<ChatMessage>> {
        if turns.is_empty() {
            return Err(AppError::validation(
                "messages",
                "give at least one message",
            ));
        }
        if turns.len() > MAX_CHAT_MESSAGES {
            return Err(AppError::PayloadTooLarge(format!(
                "at most {MAX_CHAT_MESSAGES} messages"
            )));
        }
        let chars: usize = turns.iter().map(|t| t.content.chars().count()).sum();
        if chars > MAX_CHAT_CHARS {
            return Err(AppError::PayloadTooLarge(format!(
                "at most {MAX_CHAT_CHARS} characters in all"
            )));
        }
        turns
            .into_iter()
            .map(|t| match t.role.as_str() {
                "system" | "user" | "assistant" => Ok(ChatMessage {
                    role: t.role,
                    content: t.content,
                }),
                _ => Err(AppError::validation(
                    "messages.role",
                    "system, user or assistant",
                )),
            })
            .collect()
    }

    /// The consent, validation and budget of a chat request, in the API's order.
    async fn admit_chat(
        &self,
        ctx: &AuthContext,
        turns: Vec<ChatTurn>,
    ) -> AppResult<(Vec<ChatMessage>, Decision)> {
        self.require_opt_in(ctx.user_id).await?;
        let messages = Self::chat_messages(turns)?;
        let decision = self.charge(ctx.user_id).await?;
        Ok((messages, decision))
    }

    /// `POST /v1/ai/chat` without streaming.
    pub async fn chat(
        &self,
        ctx: &AuthContext,
        turns: Vec<ChatTurn>,
    ) -> AppResult<(ChatAnswer, Decision)> {
        let (messages, decision) = self.admit_chat(ctx, turns).await?;
        let started = Instant::now();
        let r = match self.chat_provider() {
            Ok(p) => p.chat(&messages, None).await,
            Err(e) => Err(e),
        };
        let usage = r
            .as_ref()
            .ok()
            .map(|c| (c.usage.prompt_tokens, c.usage.completion_tokens));
        self.observe("/v1/ai/chat", started, &r, usage);
        let Completion {
            content,
            model,
            usage,
        } = r.map_err(unavailable)?;
        Ok((
            ChatAnswer {
                message: ChatTurn {
                    role: "assistant".into(),
                    content,
                },
                model,
                usage: UsageView {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                },
            },
            decision,
        ))
    }

    /// `POST /v1/ai/chat` with `stream: true`: the provider's stream once it answered (errors
    /// before the first byte are 503s). Dropping it stops the upstream request.
    pub async fn chat_stream(
        &self,
        ctx: &AuthContext,
        turns: Vec<ChatTurn>,
    ) -> AppResult<(ChatStream, Decision)> {
        let (messages, decision) = self.admit_chat(ctx, turns).await?;
        let started = Instant::now();
        let r = match self.chat_provider() {
            Ok(p) => p.chat_stream(&messages, None).await,
            Err(e) => Err(e),
        };
        self.observe("/v1/ai/chat", started, &r, None);
        Ok((r.map_err(unavailable)?, decision))
    }

    /// Counts the tokens a stream reported at its end.
    pub fn stream_finished(&self, prompt_tokens: u64, completion_tokens: u64) {
        let m = &self.d.metrics;
        m.ai_tokens
            .get_or_create(&vec![("kind", "prompt".to_string())])
            .inc_by(prompt_tokens);
        m.ai_tokens
            .get_or_create(&vec![("kind", "completion".to_string())])
            .inc_by(completion_tokens);
        tracing::info!(prompt_tokens, completion_tokens, "ai stream finished");
    }

    /// `POST /v1/ai/images`: a PNG from the provider, stored as a ready file in the caller's
    /// drive root against their quota.
    pub async fn image(
        &self,
        ctx: &AuthContext,
        prompt: &str,
        size: Option<&str>,
    ) -> AppResult<(crate::drive::FileView, Decision)> {
        self.require_opt_in(ctx.user_id).await?;
        let chars = prompt.chars().count();
        if prompt.trim().is_empty() {
            return Err(AppError::validation("prompt", "describe the image"));
        }
        if chars > MAX_IMAGE_PROMPT_CHARS {
            return Err(AppError::PayloadTooLarge(format!(
                "a prompt has at most {MAX_IMAGE_PROMPT_CHARS} characters"
            )));
        }
        let size = size.unwrap_or("1024x1024");
        if !IMAGE_SIZES.contains(&size) {
            return Err(AppError::validation(
                "size",
                "256x256, 512x512 or 1024x1024",
            ));
        }
        let decision = self.charge(ctx.user_id).await?;
        let started = Instant::now();
        let r = match &self.provider {
            Some(p) if self.d.cfg.ai_image_model.is_some() => p.image(prompt, size).await,
            _ => Err(AiError::NotConfigured),
        };
        self.observe("/v1/ai/images", started, &r, None);
        let png = r.map_err(unavailable)?;
        let name = format!(
            "ai-image-{}-{}.png",
            Timestamp::now().millis(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let file = self
            .drive
            .store_generated(ctx, &name, "image/png", png)
            .await?;
        Ok((file, decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_resets_at_midnight_utc() {
        let t = Timestamp::from_unix_seconds(86_400 * 20_000 + 3_600);
        assert_eq!(until_midnight_utc(t), Duration::from_secs(86_400 - 3_600));
    }

    #[test]
    fn chat_limits() {
        let turn = |role: &str, n: usize| ChatTurn {
            role: role.into(),
            content: "x".repeat(n),
        };
        assert!(AiService::chat_messages(vec![]).is_err());
        assert!(AiService::chat_messages(vec![turn("tool", 1)]).is_err());
        let many = (0..51).map(|_| turn("user", 1)).collect();
        assert!(matches!(
            AiService::chat_messages(many),
            Err(AppError::PayloadTooLarge(_))
        ));
        let long = vec![turn("user", 16_000), turn("assistant", 16_001)];
        assert!(matches!(
            AiService::chat_messages(long),
            Err(AppError::PayloadTooLarge(_))
        ));
        assert_eq!(
            AiService::chat_messages(vec![turn("system", 3), turn("user", 5)])
                .map(|m| m.len())
                .ok(),
            Some(2)
        );
    }
}
