//! Cross-cutting HTTP behaviour: request ids and the per-request log span, metrics, client IP
//! behind trusted proxies, security headers, authentication and rate limits.

use crate::{
    envelope::{ApiError, REQUEST_ID, envelope_stray},
    state::AppState,
};
use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sc_core::AppError;
use sc_infra::ratelimit::Decision;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client's IP address as this server believes it.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

fn sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Headers every response carries: `(name, value, replace)`; a route may send a stricter
/// policy of its own where `replace` is false (downloads add `sandbox` to the CSP).
const SECURITY_HEADERS: [(HeaderName, HeaderValue, bool); 5] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
        true,
    ),
    (
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
        true,
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        false,
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
        true,
    ),
    (
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
        false,
    ),
];

const HSTS: HeaderValue = HeaderValue::from_static("max-age=63072000; includeSubDomains");

/// Outermost layer, one pass per request: assigns the request id (kept from the client when
/// sane), determines the client IP, opens the span every log line of the request carries,
/// records metrics, writes one access-log line, envelopes any stray error response and sets
/// the security headers.
pub async fn request_context(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let peer = req
        .extensions()
        .get::<ConnectInfo<crate::tls::PeerAddr>>()
        .map(|c| c.0.0.ip());
    let mut client_ip = None;
    if let Some(peer) = peer {
        let ip = resolve_client_ip(peer, req.headers(), &state.trusted_proxies);
        req.extensions_mut().insert(ClientIp(ip));
        client_ip = Some(ip);
    }
    // The route template, never the raw path (which may hold ids or tokens).
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let header_id = HeaderValue::from_str(&id).ok();
    let limits = state.clone();
    // Probes and scrapes are never throttled: a monitor must see the instance as it is.
    let ip_limited = !UNLIMITED_ROUTES.contains(&route.as_str());
    let mut res = REQUEST_ID
        .scope(id, async move {
            // Inside the scope, so a refusal's envelope carries the request id too.
            if let Some(ip) = client_ip
                && ip_limited
                && let Some(refused) = over_ip_limit(&limits, ip).await
            {
                return refused;
            }
            envelope_stray(next.run(req).await)
        })
        .instrument(span.clone())
        .await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let m = &state.deps.metrics;
    m.http_requests
        .get_or_create(&vec![
            ("route", route.clone()),
            ("method", method.to_string()),
            ("status", status.to_string()),
        ])
        .inc();
    m.http_duration
        .get_or_create(&vec![
            ("route", route.clone()),
            ("method", method.to_string()),
        ])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(method = %method, route = %route, status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request served");
    });
    let h = res.headers_mut();
    if let Some(v) = header_id {
        h.insert(REQUEST_ID_HEADER, v);
    }
    for (name, value, replace) in SECURITY_HEADERS {
        if replace || !h.contains_key(&name) {
            h.insert(name, value);
        }
    }
    if state.cfg.tls_cert_file.is_some() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    res
}

fn resolve_client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[sc_core::config::IpNet],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Walk from the nearest hop outwards: trusted proxies are skipped, the first other address
    // is the client. Whatever lies beyond it was written by the client and is ignored.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .collect();
    let mut client = peer;
    for part in entries.into_iter().rev() {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // A malformed hop: believe no further than the last trusted one.
            Err(_) => return client,
        }
    }
    client
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Establishes the caller for protected routes, then applies the per-user rate limit.
pub async fn require_auth(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = req.extensions().get::<ClientIp>().map(|c| c.0.to_string());
    let ctx = match authenticate(&state, req.headers(), ip).await {
        Ok(ctx) => ctx,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(ctx);
    let decision = state
        .deps
        .limiter
        .check(
            &format!("user:{}", ctx.user_id),
            state.cfg.api_rate_per_user_per_minute,
            Duration::from_secs(60),
        )
        .await;
    limited(&state, decision, "user", next.run(req)).await
}

pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<sc_service::AuthContext, ApiError> {
    let token = bearer(headers).ok_or_else(|| ApiError(AppError::unauthorized()))?;
    Ok(state.auth.authenticate(token, ip.as_deref()).await?)
}

/// Routes outside the per-IP limit: health, readiness, metrics and the static OpenAPI document
/// (the routes answered without the envelope).
const UNLIMITED_ROUTES: [&str; 4] = ["/health", "/ready", "/metrics", "/v1/openapi.json"];

/// The per-IP limit on every route (`api_rate_per_ip_per_minute`, 0: none): a 429 to send
/// instead of running the request, or none.
async fn over_ip_limit(state: &AppState, ip: std::net::IpAddr) -> Option<Response> {
    let limit = state.cfg.api_rate_per_ip_per_minute;
    if limit == 0 {
        return None;
    }
    let d = state
        .deps
        .limiter
        .check(&format!("ip:{ip}"), limit, Duration::from_secs(60))
        .await;
    if d.allowed {
        return None;
    }
    state
        .deps
        .metrics
        .rate_limited
        .get_or_create(&vec![("scope", "ip".to_string())])
        .inc();
    Some(
        ApiError(AppError::RateLimited {
            retry_after_seconds: d.reset_seconds,
            limit: Some(d.limit),
        })
        .into_response(),
    )
}

/// Per-IP limit on WebSocket connects (`ws_connects_per_ip_per_minute`, 0: none).
pub async fn ws_connect_rate_limit(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.cfg.ws_connects_per_ip_per_minute;
    if limit == 0 {
        return next.run(req).await;
    }
    ip_limit(&state, req, next, "ws_connect", limit).await
}

/// The administrator who passed `admin_gate`.
#[derive(Clone, Copy)]
pub struct AdminActor(pub sc_core::ids::UserId);

/// The gate of the admin routes (after `require_auth`): an administrator, with 2FA while
/// `admin_require_2fa`; 403 otherwise, before the request's path or body is read.
pub async fn admin_gate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(ctx) = req.extensions().get::<sc_service::AuthContext>().copied() else {
        return ApiError(AppError::unauthorized()).into_response();
    };
    match state.admin.require_admin(&ctx).await {
        Ok(actor) => {
            req.extensions_mut().insert(AdminActor(actor));
            next.run(req).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// Per-IP limit for the login route.
pub async fn login_rate_limit(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    ip_limit(
        &state,
        req,
        next,
        "login",
        state.cfg.login_rate_per_ip_per_minute,
    )
    .await
}

/// Per-IP limit for the other public auth routes.
pub async fn auth_rate_limit(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    ip_limit(
        &state,
        req,
        next,
        "auth",
        state.cfg.auth_rate_per_ip_per_minute,
    )
    .await
}

/// Per-IP limit for the public link routes, which anyone may call: the API's per-user rate,
/// per address.
pub async fn link_rate_limit(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    ip_limit(
        &state,
        req,
        next,
        "links",
        state.cfg.api_rate_per_user_per_minute,
    )
    .await
}

async fn ip_limit(
    state: &Arc<AppState>,
    req: Request,
    next: Next,
    scope: &'static str,
    limit: u32,
) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    let decision = state
        .deps
        .limiter
        .check(&format!("{scope}:{ip}"), limit, Duration::from_secs(60))
        .await;
    limited(state, decision, scope, next.run(req)).await
}

/// Answers 429 when the decision refuses, and puts the rate-limit headers on every response.
async fn limited(
    state: &AppState,
    d: Decision,
    scope: &'static str,
    run: impl Future<Output = Response>,
) -> Response {
    let mut res = if d.allowed {
        run.await
    } else {
        state
            .deps
            .metrics
            .rate_limited
            .get_or_create(&vec![("scope", scope.to_string())])
            .inc();
        ApiError(AppError::RateLimited {
            retry_after_seconds: d.reset_seconds,
            limit: Some(d.limit),
        })
        .into_response()
    };
    let h = res.headers_mut();
    // A limit inside the route refused (sending, re-authentication): its headers stand.
    if h.contains_key("ratelimit-limit") {
        return res;
    }
    set_rate_limit_headers(h, d.limit, d.remaining, d.reset_seconds);
    res
}

/// `RateLimit-Limit/Remaining/Reset` and their `X-RateLimit-*` twins.
const RATE_LIMIT_HEADERS: [[HeaderName; 2]; 3] = [
    [
        HeaderName::from_static("ratelimit-limit"),
        HeaderName::from_static("x-ratelimit-limit"),
    ],
    [
        HeaderName::from_static("ratelimit-remaining"),
        HeaderName::from_static("x-ratelimit-remaining"),
    ],
    [
        HeaderName::from_static("ratelimit-reset"),
        HeaderName::from_static("x-ratelimit-reset"),
    ],
];

/// Puts the [`RATE_LIMIT_HEADERS`] on a response.
pub fn set_rate_limit_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset_seconds: u64) {
    let values = [limit as u64, remaining as u64, reset_seconds];
    for (names, value) in RATE_LIMIT_HEADERS.into_iter().zip(values) {
        let value = HeaderValue::from(value);
        for name in names {
            h.insert(name, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sc_core::config::IpNet;

    #[test]
    fn xff_only_behind_trusted_proxies() {
        let trusted = vec![IpNet::parse("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.7"),
        );
        let peer_proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer_other: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(
            resolve_client_ip(peer_proxy, &h, &trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(resolve_client_ip(peer_other, &h, &trusted), peer_other);
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(resolve_client_ip(peer_proxy, &h, &trusted), peer_proxy);
        // Garbage the client put in front of its own address changes nothing.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("garbage, 1.2.3.4, 10.0.0.7"),
        );
        assert_eq!(
            resolve_client_ip(peer_proxy, &h, &trusted).to_string(),
            "1.2.3.4"
        );
    }

    #[test]
    fn request_id_sanity() {
        assert!(sane_request_id("abc-DEF_1.2"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id(&"a".repeat(129)));
    }
}
