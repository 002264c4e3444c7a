//! The HTTP layer: routers per area, extractors, the envelope, middleware and OpenAPI.
//! Handlers only translate HTTP to service calls and back.

pub mod dto;
pub mod envelope;
mod etag;
pub mod extract;
pub mod middleware;
pub mod openapi;
#[cfg(test)]
mod proptests;
pub mod routes;
pub mod state;
pub mod tls;
pub mod ws;

use crate::{
    envelope::ApiError,
    middleware::{
        admin_gate, auth_rate_limit, link_rate_limit, login_rate_limit, request_context,
        require_auth, ws_connect_rate_limit,
    },
    routes::{
        admin, ai, auth, blobs, browser, calls, chat, drive, links, mls, notifications, ops, polls,
        realtime, users,
    },
    state::AppState,
};
use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{delete, get, patch, post},
};
use sc_core::AppError;
use std::{sync::Arc, time::Duration};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
};

/// Public routes under /v1 (everything else needs a bearer token).
const PUBLIC_PATHS: [&str; 12] = [
    "/v1/realtime",
    "/v1/auth/register",
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/auth/browser/register",
    "/v1/auth/browser/login",
    "/v1/auth/browser/refresh",
    "/v1/auth/password-reset/request",
    "/v1/auth/password-reset/confirm",
    "/v1/auth/email/verify",
    "/v1/openapi.json",
    "/v1/push/vapid-public-key",
];

/// Blob URLs carry their own signature instead of a bearer token.
const BLOB_PREFIX: &str = "/v1/blobs/";
/// Public links: the token in the path is the credential.
const LINK_PREFIX: &str = "/v1/links/";

/// Whether a /v1 path is served without a bearer token.
pub(crate) fn is_public_path(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || path.starts_with(BLOB_PREFIX) || path.starts_with(LINK_PREFIX)
}

pub fn router(state: Arc<AppState>) -> Router {
    let st = || state.clone();
    let login = Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/browser/login", post(browser::login))
        .route_layer(from_fn_with_state(st(), login_rate_limit));
    let public_auth = Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/browser/register", post(browser::register))
        .route("/v1/auth/browser/refresh", post(browser::refresh))
        .route("/v1/auth/password-reset/request", post(auth::reset_request))
        .route("/v1/auth/password-reset/confirm", post(auth::reset_confirm))
        .route("/v1/auth/email/verify", post(auth::verify_email))
        .route_layer(from_fn_with_state(st(), auth_rate_limit));
    let public_links = Router::new()
        .route("/v1/links/{token}", get(links::link_info))
        .route("/v1/links/{token}/download", post(links::link_download))
        .route_layer(from_fn_with_state(st(), link_rate_limit));
    let protected = Router::new()
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/browser/logout", post(browser::logout))
        .route("/v1/auth/logout-all", post(auth::logout_all))
        .route("/v1/auth/sessions", get(auth::sessions))
        .route("/v1/auth/sessions/{id}", delete(auth::end_session))
        .route("/v1/auth/email/resend", post(auth::resend_verification))
        .route("/v1/auth/2fa/setup", post(auth::totp_setup))
        .route("/v1/auth/2fa/enable", post(auth::totp_enable))
        .route("/v1/auth/2fa/disable", post(auth::totp_disable))
        .route(
            "/v1/users/me",
            get(users::me)
                .patch(users::patch_me)
                .delete(users::delete_me),
        )
        .route("/v1/users/me/password", post(users::change_password))
        .route("/v1/users/me/blocked", get(users::blocked))
        .route("/v1/users", get(users::search))
        .route("/v1/users/{id}", get(users::profile))
        .route(
            "/v1/users/{id}/block",
            post(users::block).delete(users::unblock),
        )
        .route("/v1/conversations", post(chat::create).get(chat::list))
        .route(
            "/v1/conversations/{id}",
            get(chat::get).patch(chat::patch).delete(chat::delete),
        )
        .route(
            "/v1/conversations/{id}/members",
            get(chat::members).post(chat::add_members),
        )
        .route(
            "/v1/conversations/{id}/members/{user_id}",
            delete(chat::remove_member).patch(chat::set_role),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(chat::send).get(chat::history),
        )
        .route("/v1/conversations/{id}/read", post(chat::read))
        .route("/v1/conversations/{id}/receipts", get(chat::receipts))
        .route(
            "/v1/messages/{id}",
            patch(chat::edit).delete(chat::delete_message),
        )
        .route("/v1/messages/{id}/reactions", post(chat::react))
        .route(
            "/v1/messages/{id}/votes",
            post(polls::vote).delete(polls::withdraw).get(polls::voters),
        )
        .route("/v1/messages/{id}/poll/close", post(polls::close))
        .route("/v1/messages/{id}/reactions/{emoji}", delete(chat::unreact))
        .route("/v1/search/messages", get(chat::search))
        .route("/v1/realtime/ticket", post(realtime::ticket))
        .route(
            "/v1/presence",
            post(realtime::set_presence).get(realtime::get_presence),
        )
        .route("/v1/devices/me", axum::routing::put(mls::put_device))
        .route("/v1/users/{id}/devices", get(mls::devices))
        .route("/v1/keys/packages", post(mls::upload_packages))
        .route("/v1/keys/packages/count", get(mls::package_count))
        .route("/v1/keys/claim", post(mls::claim))
        .route(
            "/v1/conversations/{id}/mls/commits",
            post(mls::commit).get(mls::commits),
        )
        .route(
            "/v1/conversations/{id}/mls/group-info",
            get(mls::group_info),
        )
        .route("/v1/devices/me/welcomes", get(mls::welcomes))
        .route("/v1/devices/me/welcomes/{id}", delete(mls::ack_welcome))
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/notifications/read-all", post(notifications::read_all))
        .route(
            "/v1/notifications/preferences",
            get(notifications::preferences).patch(notifications::patch_preferences),
        )
        .route("/v1/notifications/{id}/read", post(notifications::read))
        .route(
            "/v1/push/subscriptions",
            post(notifications::subscribe).get(notifications::subscriptions),
        )
        .route(
            "/v1/push/subscriptions/{id}",
            delete(notifications::unsubscribe),
        )
        .route(
            "/v1/conversations/{id}/mute",
            axum::routing::put(chat::mute).delete(chat::unmute),
        )
        .route("/v1/calls", post(calls::create).get(calls::list))
        .route("/v1/calls/ice-servers", get(calls::ice_servers))
        .route(
            "/v1/calls/scheduled",
            post(calls::schedule).get(calls::scheduled),
        )
        .route(
            "/v1/calls/scheduled/{id}",
            get(calls::get_scheduled)
                .patch(calls::patch_scheduled)
                .delete(calls::cancel_scheduled),
        )
        .route("/v1/calls/{id}", get(calls::get))
        .route("/v1/calls/{id}/join", post(calls::join))
        .route("/v1/calls/{id}/leave", post(calls::leave))
        .route("/v1/calls/{id}/decline", post(calls::decline))
        .route("/v1/calls/{id}/end", post(calls::end))
        .route("/v1/calls/{id}/media", post(calls::media))
        .route("/v1/calls/{id}/recording", post(calls::recording))
        .route("/v1/calls/{id}/recordings", post(calls::attach_recording))
        .route(
            "/v1/calls/{id}/quality",
            post(calls::add_quality).get(calls::quality),
        )
        .route("/v1/files/uploads", post(drive::init_upload))
        .route("/v1/files", get(drive::list))
        .route("/v1/files/shared-with-me", get(drive::shared_with_me))
        .route(
            "/v1/files/{id}/shares",
            post(drive::share).get(drive::shares),
        )
        .route("/v1/files/{id}/shares/{share_id}", delete(drive::unshare))
        .route(
            "/v1/files/{id}/links",
            post(links::create_link).get(links::links),
        )
        .route("/v1/files/{id}/links/{link_id}", delete(links::revoke_link))
        .route(
            "/v1/files/{id}",
            get(drive::get).patch(drive::patch).delete(drive::delete),
        )
        .route("/v1/files/{id}/complete", post(drive::complete))
        .route("/v1/files/{id}/download", get(drive::download))
        .route(
            "/v1/files/{id}/versions",
            post(drive::init_version).get(drive::versions),
        )
        .route("/v1/files/{id}/versions/{n}/restore", post(drive::restore))
        .route("/v1/folders", post(drive::create_folder))
        .route("/v1/storage/quota", get(drive::quota))
        // The admin gate runs before anything of the request is looked at (API.md §12: 403).
        .merge(
            Router::new()
                .route("/v1/admin/stats", get(admin::stats))
                .route("/v1/admin/users", get(admin::users))
                .route(
                    "/v1/admin/users/{id}",
                    get(admin::user).patch(admin::update_user),
                )
                .route("/v1/admin/users/{id}/ban", post(admin::ban))
                .route("/v1/admin/users/{id}/unban", post(admin::unban))
                .route("/v1/admin/audit-log", get(admin::audit_log))
                .route_layer(from_fn_with_state(st(), admin_gate)),
        )
        .route_layer(from_fn_with_state(st(), require_auth));
    // Authenticated by its ticket (or bearer header) inside the handler.
    let socket = Router::new()
        .route("/v1/realtime", get(realtime::upgrade))
        .route_layer(from_fn_with_state(st(), ws_connect_rate_limit));
    let ops = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        .route(
            "/v1/push/vapid-public-key",
            get(notifications::vapid_public_key),
        );

    let cfg = &state.cfg;
    let mut app = Router::new()
        .merge(login)
        .merge(public_auth)
        .merge(public_links)
        .merge(protected)
        .merge(ops)
        .merge(socket)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.request_timeout_seconds),
        ))
        .layer(CatchPanicLayer::new())
        // AI requests wait on the provider up to its own timeout (a summary may ask it several
        // times), and streams last as long as the answer: no general request timeout.
        .merge(
            Router::new()
                .route(
                    "/v1/ai/settings",
                    get(ai::settings).patch(ai::patch_settings),
                )
                .route("/v1/ai/chat", post(ai::chat))
                .route("/v1/ai/images", post(ai::image))
                .route("/v1/conversations/{id}/summary", post(ai::summary))
                .route_layer(from_fn_with_state(st(), require_auth))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(cfg.ai_timeout_seconds * 3 + 10),
                ))
                .layer(CatchPanicLayer::new()),
        )
        // Blob transfers stream files of any allowed size: no request timeout of their own
        // beyond the signed URL's expiry, which is checked before the first byte.
        .merge(
            Router::new()
                .route(
                    &format!("{BLOB_PREFIX}{{*key}}"),
                    axum::routing::put(blobs::put_blob).get(blobs::get_blob),
                )
                // A transfer that stops sending for a minute is ended.
                .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                    Duration::from_secs(60),
                ))
                .layer(CatchPanicLayer::new()),
        );
    if !cfg.cors_allowed_origins.0.is_empty() {
        app = app.layer(cors(&cfg.cors_allowed_origins.0));
    }
    app.layer(from_fn_with_state(st(), request_context))
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(
            origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
    }
}

/// Unknown routes: 404, but 401 first for an unauthenticated caller outside the public routes
/// (API.md §12), so probing reveals nothing about which protected routes exist.
/// Outside the server's own paths, a GET is for the web app (`routes::web`).
async fn not_found(State(s): State<Arc<AppState>>, req: Request) -> Response {
    if routes::web::wants_app(req.method(), req.uri().path()) {
        let head = req.method() == Method::HEAD;
        return routes::web::serve(&s, req.uri().path(), req.headers(), head);
    }
    auth_first(&s, req, AppError::NotFound("route".into())).await
}

async fn method_not_allowed(State(s): State<Arc<AppState>>, req: Request) -> Response {
    auth_first(&s, req, AppError::MethodNotAllowed).await
}

async fn auth_first(s: &AppState, req: Request, otherwise: AppError) -> Response {
    let path = req.uri().path();
    let protected = path.starts_with("/v1/") && !is_public_path(path);
    let (parts, _) = req.into_parts();
    if protected && let Err(e) = middleware::authenticate(s, &parts.headers, None).await {
        return e.into_response();
    }
    ApiError(otherwise).into_response()
}
