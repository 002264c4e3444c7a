//! /v1/messages/{id}/votes and /v1/messages/{id}/poll: voting on poll messages.

use crate::{
    dto::VoteRequest,
    envelope::{ApiResult, ok},
    extract::{ApiJson, VerifiedAuth, parse_id},
    state::AppState,
};
use axum::extract::{Path, State};
use sc_core::ids::MessageId;
use sc_service::chat::{MessageView, PollVotersView};
use std::sync::Arc;

type S = State<Arc<AppState>>;

#[utoipa::path(post, path = "/v1/messages/{id}/votes", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = VoteRequest,
    responses((status = 200, body = MessageView, description = "the poll with the caller's vote in its counts"),
              (status = 404, description = "no poll the caller can see"), (status = 409, description = "the poll is closed")))]
pub async fn vote(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<VoteRequest>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.vote(&ctx, id, &b.option_ids).await?))
}

#[utoipa::path(delete, path = "/v1/messages/{id}/votes", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MessageView, description = "the poll without the caller's vote"),
              (status = 404), (status = 409, description = "the poll is closed")))]
pub async fn withdraw(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.withdraw_vote(&ctx, id).await?))
}

#[utoipa::path(get, path = "/v1/messages/{id}/votes", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PollVotersView, description = "who chose each option"),
              (status = 403, description = "the poll is anonymous"), (status = 404)))]
pub async fn voters(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<PollVotersView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.poll_voters(&ctx, id).await?))
}

#[utoipa::path(post, path = "/v1/messages/{id}/poll/close", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MessageView, description = "the closed poll"),
              (status = 403, description = "only the poll's sender or a group owner/admin closes it"),
              (status = 404), (status = 409, description = "closed already")))]
pub async fn close(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.close_poll(&ctx, id).await?))
}
