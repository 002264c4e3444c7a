//! /v1/realtime (tickets and the WebSocket), /v1/presence.

use crate::{
    dto::*,
    envelope::{ApiError, ApiResult, done, ok},
    extract::{Auth, ListQuery, VerifiedAuth, encode_cursor, parse_id},
    state::AppState,
    ws,
};
use axum::{
    extract::{RawQuery, State, WebSocketUpgrade},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use sc_core::{AppError, ids::UserId};
use serde_json::Value;
use std::sync::Arc;

/// Events are gathered up to this many bytes before a write (a burst goes out in one syscall);
/// the buffer is only allocated once a socket has something to send, so idle sockets stay small.
const WRITE_BUFFER: usize = 1024;

type S = State<Arc<AppState>>;

#[utoipa::path(post, path = "/v1/realtime/ticket", tag = "realtime", security(("bearer" = [])), responses((status = 200, body = TicketView)))]
pub async fn ticket(State(s): S, VerifiedAuth(ctx): VerifiedAuth) -> ApiResult<TicketView> {
    let ticket = s.realtime.issue_ticket(ctx.user_id, ctx.session_id).await?;
    Ok(ok(TicketView {
        ticket,
        expires_in: sc_service::realtime::TICKET_TTL.as_secs(),
    }))
}

/// The browser's Origin must be this server's public origin or an allowed CORS origin.
/// Clients that send no Origin (native apps) are not browsers and pass.
pub(crate) fn origin_allowed(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let allowed = &s.cfg.cors_allowed_origins.0;
    origin == s.cfg.public_url || allowed.iter().any(|a| a == "*" || a == origin)
}

/// `GET /v1/realtime?ticket=…` (or with `Authorization: Bearer …`) upgrades to the WebSocket.
#[utoipa::path(get, path = "/v1/realtime", tag = "realtime",
    params(("ticket" = Option<String>, Query, description = "single-use ticket from POST /v1/realtime/ticket")),
    responses((status = 101, description = "switching to the WebSocket protocol (frames: API.md §5)"),
              (status = 400, description = "not a WebSocket upgrade request"),
              (status = 401, description = "bad, used or expired ticket"),
              (status = 403, description = "Origin not allowed, or email not verified")))]
pub async fn upgrade(
    State(s): S,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let result: Result<Response, ApiError> = async {
        if !origin_allowed(&s, &headers) {
            return Err(AppError::Forbidden("origin not allowed".into()).into());
        }
        let lq = ListQuery::parse(q.as_deref(), &["ticket"])?;
        // Checked before the ticket is used up: a plain GET must not burn it.
        let upgrade = upgrade.map_err(|_| {
            AppError::validation("upgrade", "a WebSocket upgrade request is required")
        })?;
        let (user, session) = match lq.params.get("ticket") {
            Some(t) => s.realtime.redeem_ticket(t).await?,
            None => {
                let ctx = crate::middleware::authenticate(&s, &headers, None).await?;
                if s.cfg.require_verified_email && !ctx.email_verified {
                    return Err(AppError::EmailNotVerified.into());
                }
                (ctx.user_id, ctx.session_id)
            }
        };
        let state = s.clone();
        Ok(upgrade
            .read_buffer_size(4096)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(ws::MAX_FRAME)
            .max_frame_size(ws::MAX_FRAME)
            .on_upgrade(move |socket| ws::run(state, socket, user, session)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(post, path = "/v1/presence", tag = "realtime", security(("bearer" = [])), request_body = PresenceRequest, responses((status = 200, body = Empty)))]
pub async fn set_presence(
    State(s): S,
    Auth(ctx): Auth,
    crate::extract::ApiJson(b): crate::extract::ApiJson<PresenceRequest>,
) -> ApiResult<Value> {
    s.realtime.set_status(ctx.user_id, &b.status).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/presence", tag = "realtime", security(("bearer" = [])),
    params(("user_ids" = String, Query, description = "comma-separated, at most 100")),
    responses((status = 200, body = Page<PresenceView>, description = "in user id order; users sharing no conversation with the caller are omitted")))]
pub async fn get_presence(
    State(s): S,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<PresenceView>> {
    let lq = ListQuery::parse(q.as_deref(), &["user_ids"])?;
    let raw = lq
        .params
        .get("user_ids")
        .ok_or_else(|| AppError::validation("user_ids", "user_ids is required"))?;
    let ids: Vec<UserId> = raw
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| parse_id("user_ids", p.trim()))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(AppError::validation("user_ids", "give 1-100 user ids").into());
    }
    let rows = s
        .realtime
        .presence_page(ctx.user_id, ids, lq.id_cursor()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |p| encode_cursor(&p.user_id.to_string()),
        |p| PresenceView {
            user_id: p.user_id.to_string(),
            status: p.status,
            last_seen_at: p.last_seen_at,
        },
    )))
}
