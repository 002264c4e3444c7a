//! /v1/ai (settings, chat, images) and /v1/conversations/{id}/summary. Every answer carries
//! the `RateLimit-*` headers of the caller's daily AI budget.

use crate::{
    dto::*,
    envelope::{ApiResult, created, ok},
    extract::{ApiJson, Auth, OptionalJson, VerifiedAuth, parse_id},
    middleware::set_rate_limit_headers,
    state::AppState,
};
use axum::{
    extract::{Path, State},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::StreamExt;
use sc_core::ids::ConversationId;
use sc_infra::{ai::StreamEvent, ratelimit::Decision};
use sc_service::{
    ai::{AiSettingsView, ChatAnswer, SummaryView},
    drive::FileView,
};
use serde_json::json;
use std::sync::Arc;

type S = State<Arc<AppState>>;

/// A response with the budget's headers.
fn budgeted(res: impl IntoResponse, d: &Decision) -> Response {
    let mut res = res.into_response();
    set_rate_limit_headers(res.headers_mut(), d.limit, d.remaining, d.reset_seconds);
    res
}

#[utoipa::path(get, path = "/v1/ai/settings", tag = "ai", security(("bearer" = [])),
    responses((status = 200, body = AiSettingsView)))]
pub async fn settings(State(s): S, Auth(ctx): Auth) -> ApiResult<AiSettingsView> {
    Ok(ok(s.ai.settings(&ctx).await?))
}

#[utoipa::path(patch, path = "/v1/ai/settings", tag = "ai", security(("bearer" = [])),
    request_body = AiSettingsRequest,
    responses((status = 200, body = AiSettingsView, description = "the caller's opt-in as set")))]
pub async fn patch_settings(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<AiSettingsRequest>,
) -> ApiResult<AiSettingsView> {
    Ok(ok(s.ai.set_opt_in(&ctx, b.enabled).await?))
}

#[utoipa::path(post, path = "/v1/ai/chat", tag = "ai", security(("bearer" = [])),
    request_body = AiChatRequest,
    responses((status = 200, description = "the answer; with `stream: true` a `text/event-stream` of `data: {\"delta\": …}` events ending with `data: {\"done\": true, \"usage\": {…}}`",
               content((ChatAnswer = "application/json"), (String = "text/event-stream"))),
              (status = 403, description = "the caller has not opted in"),
              (status = 413, description = "more than 50 messages or 32,000 characters"),
              (status = 503, description = "no provider, or the provider failed or timed out")))]
pub async fn chat(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<AiChatRequest>,
) -> Result<Response, crate::envelope::ApiError> {
    if !b.stream.unwrap_or(false) {
        let (answer, d) = s.ai.chat(&ctx, b.messages).await?;
        return Ok(budgeted(ok(answer), &d));
    }
    let (stream, d) = s.ai.chat_stream(&ctx, b.messages).await?;
    let ai = s.ai.clone();
    // Relayed as the provider sends it; dropped (closing the upstream request) when the
    // client goes away. A failure mid-stream ends it with an error event.
    let events = stream
        .map(move |item| {
            let (data, last) = match item {
                Ok(StreamEvent::Delta(text)) => (json!({"delta": text}), false),
                Ok(StreamEvent::Done { usage, .. }) => {
                    ai.stream_finished(usage.prompt_tokens, usage.completion_tokens);
                    (json!({"done": true, "usage": {"prompt_tokens": usage.prompt_tokens,
                                                     "completion_tokens": usage.completion_tokens}}), true)
                }
                Err(e) => (
                    json!({"error": {"code": "SERVICE_UNAVAILABLE", "message": e.to_string()}}),
                    true,
                ),
            };
            (Event::default().data(data.to_string()), last)
        })
        .scan(false, |ended, (event, last)| {
            let out = (!*ended).then_some(event);
            *ended |= last;
            std::future::ready(out)
        })
        .map(Ok::<_, std::convert::Infallible>);
    Ok(budgeted(
        Sse::new(events).keep_alive(KeepAlive::default()),
        &d,
    ))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/summary", tag = "ai", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    request_body(content = SummaryRequest, description = "optional"),
    responses((status = 200, body = SummaryView),
              (status = 403, description = "encrypted, not ai_enabled, or the caller has not opted in"),
              (status = 404, description = "not a member"),
              (status = 503, description = "the configured provider failed or timed out")))]
pub async fn summary(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<SummaryRequest>,
) -> Result<Response, crate::envelope::ApiError> {
    let id: ConversationId = parse_id("id", &id)?;
    let (view, d) = s.ai.summary(&ctx, id, b.since_seq).await?;
    Ok(budgeted(ok(view), &d))
}

#[utoipa::path(post, path = "/v1/ai/images", tag = "ai", security(("bearer" = [])),
    request_body = AiImageRequest,
    responses((status = 201, body = FileView, description = "a ready image/png in the caller's drive root"),
              (status = 403, description = "the caller has not opted in"),
              (status = 503, description = "no image model, or the provider failed"),
              (status = 507, description = "over the storage quota")))]
pub async fn image(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<AiImageRequest>,
) -> Result<Response, crate::envelope::ApiError> {
    let (file, d): (FileView, Decision) = s.ai.image(&ctx, &b.prompt, b.size.as_deref()).await?;
    Ok(budgeted(created(file), &d))
}
