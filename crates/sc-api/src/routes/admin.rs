//! /v1/admin: deployment stats, the user directory, roles and quotas, bans, the audit log
//! (API.md §11). The `admin_gate` middleware has let only administrators through.

use crate::{
    dto::*,
    envelope::{ApiResult, ok},
    extract::{Admin, ApiJson, Client, ListQuery, encode_cursor, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{AppError, domain::BanReason, ids::UserId, time::Timestamp};
use sc_db::audit::AuditFilter;
use sc_service::{
    Role,
    admin::{AdminUserView, AuditEntryView, StatsView, UserPatch},
};
use std::sync::Arc;

type S = State<Arc<AppState>>;

#[utoipa::path(get, path = "/v1/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = StatsView, description = "counts over the whole deployment"),
              (status = 403, description = "not an administrator, or one without 2FA (`details.reason` = `2fa_required`)")))]
pub async fn stats(State(s): S, Admin(_): Admin) -> ApiResult<StatsView> {
    Ok(ok(s.admin.stats().await?))
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "part of an email, username or display name")),
    responses((status = 200, body = Page<AdminUserView>, description = "newest accounts first"),
              (status = 403, description = "not an administrator, or one without 2FA")))]
pub async fn users(
    State(s): S,
    Admin(_): Admin,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<AdminUserView>> {
    let lq = ListQuery::parse(q.as_deref(), &["q"])?;
    let query = lq.params.get("q").map(String::as_str).unwrap_or("");
    if query.chars().count() > 254 {
        return Err(AppError::validation("q", "at most 254 characters").into());
    }
    let before = lq.id_cursor::<UserId>()?;
    let rows = s.admin.list_users(query, before, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |u| encode_cursor(&u.id.to_string()),
        |u| u,
    )))
}

#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AdminUserView),
              (status = 403, description = "not an administrator, or one without 2FA"),
              (status = 404, description = "no such user")))]
pub async fn user(
    State(s): S,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<AdminUserView> {
    let id: UserId = parse_id("id", &id)?;
    Ok(ok(s.admin.user(id).await?))
}

#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = AdminUserPatchRequest,
    responses((status = 200, body = AdminUserView, description = "the user after the change"),
              (status = 403, description = "not an administrator, or one without 2FA"),
              (status = 404, description = "no such user"),
              (status = 409, description = "an administrator changing their own role")))]
pub async fn update_user(
    State(s): S,
    Admin(actor): Admin,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AdminUserPatchRequest>,
) -> ApiResult<AdminUserView> {
    let id: UserId = parse_id("id", &id)?;
    let role = req
        .role
        .as_deref()
        .map(|r| {
            Role::parse(r).ok_or_else(|| AppError::validation("role", "\"user\" or \"admin\""))
        })
        .transpose()?;
    let patch = UserPatch {
        role,
        quota: req.quota,
    };
    Ok(ok(s
        .admin
        .update_user(Some(actor), id, patch, &client)
        .await?))
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/ban", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = BanRequest,
    responses((status = 200, body = AdminUserView, description = "the banned user; their sessions ended everywhere"),
              (status = 403, description = "not an administrator, or one without 2FA"),
              (status = 404, description = "no such user"),
              (status = 409, description = "banning oneself")))]
pub async fn ban(
    State(s): S,
    Admin(actor): Admin,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<BanRequest>,
) -> ApiResult<AdminUserView> {
    let id: UserId = parse_id("id", &id)?;
    let reason = BanReason::parse("reason", &req.reason)?;
    let until = req
        .until
        .as_deref()
        .map(|u| {
            Timestamp::parse_rfc3339(u)
                .ok_or_else(|| AppError::validation("until", "an RFC 3339 time"))
        })
        .transpose()?;
    Ok(ok(s
        .admin
        .ban(Some(actor), id, &reason, until, &client)
        .await?))
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/unban", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AdminUserView, description = "the user, no longer banned"),
              (status = 403, description = "not an administrator, or one without 2FA"),
              (status = 404, description = "no such user")))]
pub async fn unban(
    State(s): S,
    Admin(actor): Admin,
    Client(client): Client,
    Path(id): Path<String>,
) -> ApiResult<AdminUserView> {
    let id: UserId = parse_id("id", &id)?;
    Ok(ok(s.admin.unban(Some(actor), id, &client).await?))
}

#[utoipa::path(get, path = "/v1/admin/audit-log", tag = "admin", security(("bearer" = [])),
    params(("user_id" = Option<uuid::Uuid>, Query, description = "entries about this user or caused by them"),
           ("event" = Option<String>, Query, description = "one event name, e.g. `login.failed`"),
           ("since" = Option<String>, Query, description = "RFC 3339: entries from this time on")),
    responses((status = 200, body = Page<AuditEntryView>, description = "newest first"),
              (status = 403, description = "not an administrator, or one without 2FA")))]
pub async fn audit_log(
    State(s): S,
    Admin(_): Admin,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<AuditEntryView>> {
    let lq = ListQuery::parse(q.as_deref(), &["user_id", "event", "since"])?;
    let user = lq
        .params
        .get("user_id")
        .map(|u| parse_id::<UserId>("user_id", u))
        .transpose()?;
    let event = lq.params.get("event").map(String::as_str);
    if event.is_some_and(|e| e.is_empty() || e.len() > 64) {
        return Err(AppError::validation("event", "an event name of 1-64 characters").into());
    }
    let since = lq
        .params
        .get("since")
        .map(|t| {
            Timestamp::parse_rfc3339(t)
                .ok_or_else(|| AppError::validation("since", "an RFC 3339 time"))
        })
        .transpose()?;
    let filter = AuditFilter {
        user,
        event,
        since,
        before: lq.id_cursor()?,
    };
    let rows = s.admin.audit_log(&filter, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |e| encode_cursor(&e.id.to_string()),
        |e| e,
    )))
}
