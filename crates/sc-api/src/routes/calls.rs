//! /v1/calls: call lifecycle and ICE servers. Signals travel over the realtime socket.

use crate::{
    dto::{CreateCallRequest, Page},
    envelope::{ApiResult, created, ok},
    extract::{ApiJson, ListQuery, VerifiedAuth, encode_keyset, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{AppError, ids::CallId};
use sc_service::calls::{CallSession, CallView, ice::IceServers};
use std::sync::Arc;

type S = State<Arc<AppState>>;

fn call_id(raw: &str) -> Result<CallId, crate::envelope::ApiError> {
    parse_id("id", raw)
}

#[utoipa::path(post, path = "/v1/calls", tag = "calls", security(("bearer" = [])), request_body = CreateCallRequest,
    responses((status = 201, body = CallSession, description = "ringing, with the calling session in it; members get call.ringing"),
              (status = 403, description = "a block between the members of a direct conversation"),
              (status = 404, description = "not a conversation of the caller's"),
              (status = 409, description = "the conversation has a live call; details.call_id")))]
pub async fn create(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<CreateCallRequest>,
) -> ApiResult<CallSession> {
    Ok(created(
        s.calls.create(&ctx, b.conversation_id, &b.kind).await?,
    ))
}

#[utoipa::path(get, path = "/v1/calls", tag = "calls", security(("bearer" = [])),
    params(("conversation_id" = uuid::Uuid, Query, description = "the conversation whose calls to list")),
    responses((status = 200, body = Page<CallView>, description = "newest first"), (status = 404)))]
pub async fn list(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<CallView>> {
    let lq = ListQuery::parse(q.as_deref(), &["conversation_id"])?;
    let conversation = lq
        .params
        .get("conversation_id")
        .ok_or_else(|| AppError::validation("conversation_id", "conversation_id is required"))?;
    let conversation = parse_id("conversation_id", conversation)?;
    let rows = s
        .calls
        .list(&ctx, conversation, lq.keyset()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |c| encode_keyset(c.created_at, c.id),
        |c| c,
    )))
}

#[utoipa::path(get, path = "/v1/calls/ice-servers", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = IceServers, description = "STUN and TURN servers; TURN credentials expire after ttl_seconds")))]
pub async fn ice_servers(State(s): S, VerifiedAuth(ctx): VerifiedAuth) -> ApiResult<IceServers> {
    Ok(ok(s.calls.ice_servers(&ctx)))
}

#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CallView), (status = 404)))]
pub async fn get(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<CallView> {
    Ok(ok(s.calls.get(&ctx, call_id(&id)?).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/join", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CallSession, description = "joined with the calling session"),
              (status = 404),
              (status = 409, description = "this session is in the call already, the call is over, or (LIMIT_REACHED) full")))]
pub async fn join(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<CallSession> {
    Ok(ok(s.calls.join(&ctx, call_id(&id)?).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/leave", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CallView, description = "left; the last one out ends the call"),
              (status = 404), (status = 409, description = "this session is not in the call")))]
pub async fn leave(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<CallView> {
    Ok(ok(s.calls.leave(&ctx, call_id(&id)?).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/decline", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CallView, description = "a direct call is declined; a group call records the answer"),
              (status = 404), (status = 409, description = "the call is over or no longer ringing")))]
pub async fn decline(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<CallView> {
    Ok(ok(s.calls.decline(&ctx, call_id(&id)?).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/end", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CallView, description = "ended for everyone"),
              (status = 403, description = "only the caller or a group owner/admin"),
              (status = 404), (status = 409, description = "the call is over")))]
pub async fn end(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<CallView> {
    Ok(ok(s.calls.end(&ctx, call_id(&id)?).await?))
}
