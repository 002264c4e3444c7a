//! /v1/notifications (records, read state, preferences) and /v1/push (subscriptions and the
//! VAPID key).

use crate::{
    dto::*,
    envelope::{ApiResult, created, done, ok},
    extract::{ApiJson, Auth, ListQuery, encode_cursor, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{
    AppError,
    ids::{NotificationId, PushSubscriptionId},
};
use sc_service::notify::{
    NotificationView,
    prefs::{PreferencesPatch, PreferencesView},
    push::{SubscribeRequest, SubscriptionView},
};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(("unread" = Option<bool>, Query, description = "true: only unread ones")),
    responses((status = 200, body = Page<NotificationView>, description = "newest first")))]
pub async fn list(
    State(s): S,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<NotificationView>> {
    let lq = ListQuery::parse(q.as_deref(), &["unread"])?;
    let unread = match lq.params.get("unread").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(AppError::validation("unread", "true or false").into()),
    };
    let before = lq.id_cursor::<NotificationId>()?;
    let rows = s
        .notify
        .list(ctx.user_id, before, unread, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |n| encode_cursor(&n.id.to_string()),
        |n| n,
    )))
}

#[utoipa::path(post, path = "/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = NotificationView, description = "with read_at set"),
              (status = 404, description = "not one of the caller's notifications")))]
pub async fn read(
    State(s): S,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<NotificationView> {
    let id: NotificationId = parse_id("id", &id)?;
    Ok(ok(s.notify.mark_read(&ctx, id).await?))
}

#[utoipa::path(post, path = "/v1/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = ReadAllView, description = "how many were unread")))]
pub async fn read_all(State(s): S, Auth(ctx): Auth) -> ApiResult<ReadAllView> {
    let updated = s.notify.mark_all_read(&ctx).await?;
    Ok(ok(ReadAllView { updated }))
}

#[utoipa::path(get, path = "/v1/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = PreferencesView)))]
pub async fn preferences(State(s): S, Auth(ctx): Auth) -> ApiResult<PreferencesView> {
    Ok(ok(s.notify.preferences(&ctx).await?))
}

#[utoipa::path(patch, path = "/v1/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    request_body = PreferencesPatchRequest,
    responses((status = 200, body = PreferencesView, description = "the whole preferences after the change")))]
pub async fn patch_preferences(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PreferencesPatchRequest>,
) -> ApiResult<PreferencesView> {
    let kinds = b
        .kinds
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.push, v.email));
    let patch = PreferencesPatch::new(kinds, b.email_digest)?;
    Ok(ok(s.notify.update_preferences(&ctx, patch).await?))
}

#[utoipa::path(post, path = "/v1/push/subscriptions", tag = "notifications", security(("bearer" = [])),
    request_body = PushSubscribeRequest,
    responses((status = 201, body = SubscriptionView, description = "registered for the calling session"),
              (status = 200, body = SubscriptionView, description = "the same endpoint or token again: now tied to the calling session")))]
pub async fn subscribe(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PushSubscribeRequest>,
) -> ApiResult<SubscriptionView> {
    let missing = |f: &str| AppError::validation(f, "is required for this kind");
    let req = match b.kind.as_str() {
        "webpush" => {
            let keys = b.keys.ok_or_else(|| missing("keys"))?;
            SubscribeRequest::WebPush {
                endpoint: b.endpoint.ok_or_else(|| missing("endpoint"))?,
                p256dh: keys.p256dh,
                auth: keys.auth,
            }
        }
        "fcm" => SubscribeRequest::Fcm {
            token: b.token.ok_or_else(|| missing("token"))?,
        },
        "apns" => SubscribeRequest::Apns {
            token: b.token.ok_or_else(|| missing("token"))?,
            environment: b.environment,
        },
        _ => return Err(AppError::validation("kind", "webpush, fcm or apns").into()),
    };
    let (view, is_new) = s.notify.subscribe(&ctx, req, b.device_name).await?;
    Ok(if is_new { created(view) } else { ok(view) })
}

#[utoipa::path(get, path = "/v1/push/subscriptions", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Page<SubscriptionView>, description = "the caller's subscriptions on every session, oldest first")))]
pub async fn subscriptions(
    State(s): S,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<SubscriptionView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let after = lq.id_cursor::<PushSubscriptionId>()?;
    let rows = s.notify.subscriptions(&ctx, after, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |v| encode_cursor(&v.id.to_string()),
        |v| v,
    )))
}

#[utoipa::path(delete, path = "/v1/push/subscriptions/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty, description = "deleted"), (status = 404, description = "not one of the caller's subscriptions")))]
pub async fn unsubscribe(State(s): S, Auth(ctx): Auth, Path(id): Path<String>) -> ApiResult<Value> {
    let id: PushSubscriptionId = parse_id("id", &id)?;
    s.notify.unsubscribe(&ctx, id).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/push/vapid-public-key", tag = "notifications",
    responses((status = 200, body = VapidKeyView, description = "the applicationServerKey for PushManager.subscribe")))]
pub async fn vapid_public_key(State(s): S) -> ApiResult<VapidKeyView> {
    Ok(ok(VapidKeyView {
        public_key: s.notify.vapid_public_key().to_string(),
    }))
}
