//! /v1/auth/browser: the cookie variant of login, registration, refresh and logout for the web
//! app. The refresh token travels only in an `HttpOnly; Secure; SameSite=Strict` cookie scoped
//! to these routes, so no page script (nor an injected one) can read it; the access token is in
//! the body and the app keeps it in memory only.
//!
//! CSRF: `SameSite=Strict` keeps the cookie off cross-site requests; on top of that every route
//! here takes a JSON body (a cross-site form cannot send `application/json` without a CORS
//! preflight, which only the configured origins pass) and refuses a browser Origin other than
//! this server's own or a configured one.

use crate::{
    dto::*,
    envelope::{ApiError, created, done, ok},
    extract::{ApiJson, Auth, Client},
    routes::auth::{login_pair, register_pair},
    state::AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sc_core::AppError;
use sc_service::auth::TokenPair;
use std::sync::Arc;

type S = State<Arc<AppState>>;

/// The cookie's name; its path keeps it off every request outside these routes.
pub const REFRESH_COOKIE: &str = "sc_refresh";
pub const REFRESH_COOKIE_PATH: &str = "/v1/auth/browser";

fn cookie(value: &str, max_age_seconds: u64) -> HeaderValue {
    // Refresh tokens are unpadded base64url, which a cookie value and a header always hold; were
    // one ever not, the browser would get a clearing cookie (and sign in again), never a
    // malformed header.
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={value}; Path={REFRESH_COOKIE_PATH}; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Strict"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "sc_refresh=; Path=/v1/auth/browser; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        )
    })
}

fn clearing_cookie() -> HeaderValue {
    cookie("", 0)
}

/// The refresh token from the request's cookies, if one is there.
fn refresh_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// A browser's Origin must be this server's own (or a configured CORS origin); requests
/// without one (not from a browser page) pass, as the cookie is their only credential anyway.
fn check_origin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::routes::realtime::origin_allowed(s, headers) {
        Ok(())
    } else {
        Err(AppError::Forbidden("origin not allowed".into()).into())
    }
}

/// The answer for a new token pair: the access token in the body, the refresh token in the
/// cookie (living as long as the session may).
fn with_cookie(s: &AppState, pair: TokenPair, status_created: bool) -> Response {
    let max_age = s.cfg.refresh_absolute_days.saturating_mul(86_400);
    let set = cookie(&pair.refresh_token, max_age);
    let view = BrowserSessionView::from(pair);
    let mut res = if status_created {
        created(view).into_response()
    } else {
        ok(view).into_response()
    };
    res.headers_mut().append(header::SET_COOKIE, set);
    res
}

/// `POST /v1/auth/register` for browsers: the refresh token is set as an HttpOnly cookie.
#[utoipa::path(post, path = "/v1/auth/browser/register", tag = "auth", operation_id = "browser_register", request_body = RegisterRequest,
    responses((status = 201, body = BrowserSessionView, headers(("set-cookie" = String, description = "sc_refresh=…; Path=/v1/auth/browser; HttpOnly; Secure; SameSite=Strict"))),
              (status = 403, description = "Origin not allowed"), (status = 409, description = "email or username taken")))]
pub async fn register(
    State(s): S,
    headers: HeaderMap,
    Client(client): Client,
    ApiJson(b): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    check_origin(&s, &headers)?;
    let pair = register_pair(&s, &client, b).await?;
    Ok(with_cookie(&s, pair, true))
}

/// `POST /v1/auth/login` for browsers: the refresh token is set as an HttpOnly cookie.
#[utoipa::path(post, path = "/v1/auth/browser/login", tag = "auth", operation_id = "browser_login", request_body = LoginRequest,
    responses((status = 200, body = BrowserSessionView, headers(("set-cookie" = String, description = "sc_refresh=…; Path=/v1/auth/browser; HttpOnly; Secure; SameSite=Strict"))),
              (status = 401, description = "wrong credentials, or a second factor is needed"),
              (status = 403, description = "the account is banned, or Origin not allowed"),
              (status = 423, description = "locked after repeated failures; details.retry_after_seconds")))]
pub async fn login(
    State(s): S,
    headers: HeaderMap,
    Client(client): Client,
    ApiJson(b): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    check_origin(&s, &headers)?;
    let pair = login_pair(&s, &client, b).await?;
    Ok(with_cookie(&s, pair, false))
}

/// `POST /v1/auth/refresh` for browsers: reads the refresh token from the cookie, rotates it.
/// Takes the JSON body `{}`.
#[utoipa::path(post, path = "/v1/auth/browser/refresh", tag = "auth", operation_id = "browser_refresh", request_body = BrowserRefreshRequest,
    responses((status = 200, body = BrowserSessionView, description = "a new access token; the cookie now holds the rotated refresh token"),
              (status = 401, description = "no refresh cookie, or it is expired, revoked or reused (the cookie is cleared)"),
              (status = 403, description = "the account is banned (the cookie is cleared), or Origin not allowed")))]
pub async fn refresh(
    State(s): S,
    headers: HeaderMap,
    Client(client): Client,
    ApiJson(_): ApiJson<BrowserRefreshRequest>,
) -> Result<Response, ApiError> {
    check_origin(&s, &headers)?;
    let result = match refresh_cookie(&headers) {
        Some(token) => s.auth.refresh(token, &client).await.map_err(ApiError::from),
        None => Err(AppError::Unauthorized("no refresh cookie".into()).into()),
    };
    match result {
        Ok(pair) => Ok(with_cookie(&s, pair, false)),
        Err(e) => {
            // A dead refresh token (401, or 403 for a ban) is of no further use to the browser:
            // drop it. A passing failure (429, 503) keeps it, so the page can try again.
            let mut res = e.into_response();
            if matches!(
                res.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                res.headers_mut()
                    .append(header::SET_COOKIE, clearing_cookie());
            }
            Ok(res)
        }
    }
}

/// `POST /v1/auth/logout` for browsers: ends the bearer's session and clears the cookie. Like
/// logout, it takes no body and ignores whatever is sent.
#[utoipa::path(post, path = "/v1/auth/browser/logout", tag = "auth", operation_id = "browser_logout", security(("bearer" = [])),
    responses((status = 200, body = Empty, description = "the session is ended and the cookie cleared"), (status = 401)))]
pub async fn logout(State(s): S, Auth(ctx): Auth) -> Result<Response, ApiError> {
    s.auth.logout(&ctx).await?;
    let mut res = done().into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, clearing_cookie());
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sc_refresh=tok; b=2"),
        );
        assert_eq!(refresh_cookie(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("sc_refresh=two"));
        assert_eq!(refresh_cookie(&h), Some("two"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("sc_refresh=; x_sc_refresh=no"),
        );
        assert_eq!(refresh_cookie(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_secure_strict_and_scoped() {
        let c = cookie("abc", 60);
        let c = c.to_str().unwrap_or_default();
        for part in [
            "sc_refresh=abc",
            "Path=/v1/auth/browser",
            "Max-Age=60",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(
            clearing_cookie()
                .to_str()
                .unwrap_or_default()
                .contains("Max-Age=0")
        );
    }
}
