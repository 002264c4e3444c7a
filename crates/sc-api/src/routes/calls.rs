//! /v1/calls: call lifecycle and ICE servers. Signals travel over the realtime socket.

use crate::{
    dto::{
        CallMediaRequest, CallQualityRequest, CallRecordingFileRequest, CallRecordingRequest,
        CreateCallRequest, Empty, Page, PatchScheduledCallRequest, ScheduleCallRequest,
    },
    envelope::{ApiResult, created, done, ok},
    extract::{ApiJson, ListQuery, VerifiedAuth, encode_keyset, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{
    AppError,
    ids::{CallId, ScheduledCallId},
    time::Timestamp,
};
use sc_service::calls::{
    CallSession, CallView, MediaRequest, NewScheduledCall, QualitySample, QualitySummary,
    RecordingAction, ScheduledCallChange, ScheduledCallView, ice::IceServers,
};
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

#[utoipa::path(post, path = "/v1/calls/{id}/media", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = CallMediaRequest,
    responses((status = 200, body = CallView, description = "the calling session's flags changed; members get call.updated"),
              (status = 404), (status = 409, description = "this session is not in the call")))]
pub async fn media(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CallMediaRequest>,
) -> ApiResult<CallView> {
    let m = MediaRequest {
        audio: b.audio,
        video: b.video,
        screen: b.screen,
    };
    Ok(ok(s.calls.set_media(&ctx, call_id(&id)?, m).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/recording", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = CallRecordingRequest,
    responses((status = 200, body = CallView, description = "recording started or stopped; everyone in the call sees it"),
              (status = 404), (status = 409, description = "someone else records, you do not, or this session is not in the call")))]
pub async fn recording(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CallRecordingRequest>,
) -> ApiResult<CallView> {
    let action = match b.action.as_str() {
        "start" => RecordingAction::Start,
        "stop" => RecordingAction::Stop,
        _ => return Err(AppError::validation("action", "start or stop").into()),
    };
    Ok(ok(s.calls.recording(&ctx, call_id(&id)?, action).await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/recordings", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = CallRecordingFileRequest,
    responses((status = 200, body = CallView, description = "the file is the recorder's latest recording; participants may read it"),
              (status = 400, description = "the file is a folder or not uploaded yet"),
              (status = 403, description = "not a file of the caller's own drive"),
              (status = 404), (status = 409, description = "no finished recording of the caller's waits for a file")))]
pub async fn attach_recording(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CallRecordingFileRequest>,
) -> ApiResult<CallView> {
    Ok(ok(s
        .calls
        .attach_recording(&ctx, call_id(&id)?, b.file_id)
        .await?))
}

#[utoipa::path(post, path = "/v1/calls/{id}/quality", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = CallQualityRequest,
    responses((status = 200, body = Empty, description = "stored"),
              (status = 404), (status = 409, description = "this session is not in the call and did not leave it in the last 30 s"),
              (status = 429, description = "more than 60 samples a minute from this session")))]
pub async fn add_quality(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CallQualityRequest>,
) -> ApiResult<serde_json::Value> {
    let q = QualitySample {
        rtt_ms: b.rtt_ms,
        jitter_ms: b.jitter_ms,
        packet_loss: b.packet_loss,
        bitrate_kbps: b.bitrate_kbps,
    };
    s.calls.add_quality(&ctx, call_id(&id)?, q).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/calls/{id}/quality", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = QualitySummary, description = "mean and p95 per participant session and for the call"),
              (status = 404)))]
pub async fn quality(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<QualitySummary> {
    Ok(ok(s.calls.quality_summary(&ctx, call_id(&id)?).await?))
}

fn scheduled_id(raw: &str) -> Result<ScheduledCallId, crate::envelope::ApiError> {
    parse_id("id", raw)
}

fn starts_at(raw: &str) -> Result<Timestamp, crate::envelope::ApiError> {
    Timestamp::parse_rfc3339(raw).ok_or_else(|| {
        AppError::validation("starts_at", "an RFC 3339 date-time with an offset").into()
    })
}

#[utoipa::path(post, path = "/v1/calls/scheduled", tag = "calls", security(("bearer" = [])), request_body = ScheduleCallRequest,
    responses((status = 201, body = ScheduledCallView, description = "planned; members get call.scheduled, and a call.scheduled notification at the start time"),
              (status = 404, description = "not a conversation of the caller's")))]
pub async fn schedule(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<ScheduleCallRequest>,
) -> ApiResult<ScheduledCallView> {
    let req = NewScheduledCall {
        conversation_id: b.conversation_id,
        kind: b.kind,
        title: b.title,
        starts_at: starts_at(&b.starts_at)?,
    };
    Ok(created(s.calls.schedule(&ctx, req).await?))
}

#[utoipa::path(get, path = "/v1/calls/scheduled", tag = "calls", security(("bearer" = [])),
    params(("conversation_id" = Option<uuid::Uuid>, Query, description = "only this conversation's")),
    responses((status = 200, body = Page<ScheduledCallView>, description = "not cancelled, by start time"), (status = 404)))]
pub async fn scheduled(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ScheduledCallView>> {
    let lq = ListQuery::parse(q.as_deref(), &["conversation_id"])?;
    let conversation = lq
        .params
        .get("conversation_id")
        .map(|c| parse_id("conversation_id", c))
        .transpose()?;
    let rows = s
        .calls
        .scheduled(&ctx, conversation, lq.keyset()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |c| encode_keyset(c.starts_at, c.id),
        |c| c,
    )))
}

#[utoipa::path(get, path = "/v1/calls/scheduled/{id}", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ScheduledCallView), (status = 404)))]
pub async fn get_scheduled(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<ScheduledCallView> {
    Ok(ok(s.calls.get_scheduled(&ctx, scheduled_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/v1/calls/scheduled/{id}", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = PatchScheduledCallRequest,
    responses((status = 200, body = ScheduledCallView), (status = 403, description = "only its creator or a group owner/admin"),
              (status = 404), (status = 409, description = "cancelled")))]
pub async fn patch_scheduled(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PatchScheduledCallRequest>,
) -> ApiResult<ScheduledCallView> {
    let change = ScheduledCallChange {
        title: b.title,
        starts_at: b.starts_at.as_deref().map(starts_at).transpose()?,
    };
    Ok(ok(s
        .calls
        .update_scheduled(&ctx, scheduled_id(&id)?, change)
        .await?))
}

#[utoipa::path(delete, path = "/v1/calls/scheduled/{id}", tag = "calls", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ScheduledCallView, description = "cancelled; members get call.scheduled"),
              (status = 403, description = "only its creator or a group owner/admin"),
              (status = 404), (status = 409, description = "cancelled already")))]
pub async fn cancel_scheduled(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<ScheduledCallView> {
    Ok(ok(s
        .calls
        .cancel_scheduled(&ctx, scheduled_id(&id)?)
        .await?))
}
