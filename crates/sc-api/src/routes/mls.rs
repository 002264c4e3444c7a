//! The MLS Delivery Service (API.md §10): devices, key packages, commits, group info and
//! welcomes. MLS objects travel as standard base64 and stay opaque to the server.

use crate::{
    dto::*,
    envelope::{ApiResult, created, done, ok},
    extract::{ApiJson, Auth, LargeJson, ListQuery, VerifiedAuth, encode_cursor, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{
    AppError,
    ids::{ConversationId, DeviceId, UserId, WelcomeId},
};
use sc_service::mls::{
    CommitRequest, CommitView, DeviceView, GroupInfoView, MAX_MLS_OBJECT, MlsBytes,
    PackageCountView, WelcomeView,
};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

#[utoipa::path(put, path = "/v1/devices/me", tag = "mls", security(("bearer" = [])),
    request_body = DeviceRequest,
    responses((status = 201, body = DeviceView, description = "the session's new device"),
              (status = 200, body = DeviceView, description = "the same key again: the same device"),
              (status = 409, description = "the session's device has another key"),
              (status = 413, description = "credential over 1 KiB")))]
pub async fn put_device(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<DeviceRequest>,
) -> ApiResult<DeviceView> {
    let (device, new) = s
        .mls
        .register_device(&ctx, &b.signature_key, &b.credential)
        .await?;
    Ok(if new { created(device) } else { ok(device) })
}

#[utoipa::path(get, path = "/v1/users/{id}/devices", tag = "mls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<DeviceView>), (status = 404, description = "no such user")))]
pub async fn devices(
    State(s): S,
    Auth(_): Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<DeviceView>> {
    let user: UserId = parse_id("id", &id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let after = lq.id_cursor::<DeviceId>()?;
    let rows = s.mls.devices_of(user, after, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |d| encode_cursor(&d.device_id.to_string()),
        |d| d,
    )))
}

#[utoipa::path(post, path = "/v1/keys/packages", tag = "mls", security(("bearer" = [])),
    request_body = KeyPackagesRequest,
    responses((status = 200, body = AvailableView, description = "regular packages the device now holds"),
              (status = 409, description = "the session has no device, or the device would hold more than 500"),
              (status = 413, description = "a package over 4 KiB")))]
pub async fn upload_packages(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<KeyPackagesRequest>,
) -> ApiResult<AvailableView> {
    let available = s
        .mls
        .add_key_packages(&ctx, &b.key_packages, b.last_resort.as_deref())
        .await?;
    Ok(ok(AvailableView { available }))
}

#[utoipa::path(get, path = "/v1/keys/packages/count", tag = "mls", security(("bearer" = [])),
    responses((status = 200, body = PackageCountView), (status = 409, description = "the session has no device")))]
pub async fn package_count(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
) -> ApiResult<PackageCountView> {
    Ok(ok(s.mls.package_count(&ctx).await?))
}

#[utoipa::path(post, path = "/v1/keys/claim", tag = "mls", security(("bearer" = [])),
    request_body = ClaimRequest,
    responses((status = 200, body = ClaimedItems, description = "one package per device of the named users")))]
pub async fn claim(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<ClaimRequest>,
) -> ApiResult<ClaimedItems> {
    let items = s.mls.claim(&ctx, &b.user_ids).await?;
    Ok(ok(ClaimedItems { items }))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/mls/commits", tag = "mls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = CommitBody,
    responses((status = 201, body = EpochView, description = "accepted: the epoch it created"),
              (status = 404, description = "not a member"),
              (status = 409, description = "not the current epoch (`details.current_epoch`), or the session has no device"),
              (status = 413, description = "a part over 1 MiB, or the body over 4 MiB")))]
pub async fn commit(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    LargeJson(b): LargeJson<CommitBody>,
) -> ApiResult<EpochView> {
    let conversation: ConversationId = parse_id("id", &id)?;
    let welcome = match (b.welcome, b.welcome_to) {
        (Some(w), Some(to)) if !to.is_empty() => {
            Some((MlsBytes::parse("welcome", &w, MAX_MLS_OBJECT)?, to))
        }
        (None, None) => None,
        _ => {
            return Err(AppError::validation(
                "welcome_to",
                "welcome and a non-empty welcome_to go together",
            )
            .into());
        }
    };
    let req = CommitRequest {
        epoch: b.epoch,
        commit: MlsBytes::parse("commit", &b.commit, MAX_MLS_OBJECT)?,
        welcome,
        group_info: b
            .group_info
            .map(|g| MlsBytes::parse("group_info", &g, MAX_MLS_OBJECT))
            .transpose()?,
    };
    let epoch = s.mls.commit(&ctx, conversation, req).await?;
    Ok(created(EpochView { epoch }))
}

#[utoipa::path(get, path = "/v1/conversations/{id}/mls/commits", tag = "mls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("since_epoch" = Option<i64>, Query, description = "epochs above this one (default 0)")),
    responses((status = 200, body = Page<CommitView>, description = "oldest first"),
              (status = 404, description = "not a member")))]
pub async fn commits(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<CommitView>> {
    let conversation: ConversationId = parse_id("id", &id)?;
    let lq = ListQuery::parse(q.as_deref(), &["since_epoch"])?;
    let since = match lq.params.get("since_epoch") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|e| *e >= 0)
            .ok_or_else(|| AppError::validation("since_epoch", "a non-negative integer"))?,
    };
    // The cursor is the last epoch seen; it wins over since_epoch.
    let since = match &lq.cursor {
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|e| *e >= 0)
            .ok_or_else(|| AppError::validation("cursor", "malformed cursor"))?,
        None => since,
    };
    let rows = s
        .mls
        .commits_since(&ctx, conversation, since, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |c| encode_cursor(&c.epoch.to_string()),
        |c| c,
    )))
}

#[utoipa::path(get, path = "/v1/conversations/{id}/mls/group-info", tag = "mls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = GroupInfoView, description = "the latest group info"),
              (status = 404, description = "not a member, or none yet")))]
pub async fn group_info(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<GroupInfoView> {
    let conversation: ConversationId = parse_id("id", &id)?;
    Ok(ok(s.mls.group_info(&ctx, conversation).await?))
}

#[utoipa::path(get, path = "/v1/devices/me/welcomes", tag = "mls", security(("bearer" = [])),
    responses((status = 200, body = Page<WelcomeView>, description = "pending, oldest first"),
              (status = 409, description = "the session has no device")))]
pub async fn welcomes(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<WelcomeView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let after = lq.id_cursor::<WelcomeId>()?;
    let rows = s.mls.welcomes(&ctx, after, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |w| encode_cursor(&w.id.to_string()),
        |w| w,
    )))
}

#[utoipa::path(delete, path = "/v1/devices/me/welcomes/{id}", tag = "mls", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty, description = "acknowledged"),
              (status = 404, description = "not one of the device's welcomes"),
              (status = 409, description = "the session has no device")))]
pub async fn ack_welcome(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<Value> {
    let id: WelcomeId = parse_id("id", &id)?;
    s.mls.ack_welcome(&ctx, id).await?;
    Ok(done())
}
