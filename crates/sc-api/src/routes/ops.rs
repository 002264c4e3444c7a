//! Operations endpoints (not enveloped, API.md §12): liveness, readiness, metrics, OpenAPI.

use crate::{
    dto::{HealthView, ReadyView},
    state::AppState,
};
use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use sc_infra::DepState;
use serde_json::json;
use std::sync::Arc;

#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, body = HealthView, description = "the process serves (not enveloped)")))]
pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

#[utoipa::path(get, path = "/ready", tag = "ops",
    responses((status = 200, body = ReadyView, description = "the database answers (not enveloped)"),
              (status = 503, body = ReadyView, description = "the database is down, or the instance is stopping")))]
pub async fn ready(State(s): State<Arc<AppState>>) -> Response {
    let (database, cache, ai) = tokio::join!(
        s.deps.db.ping(),
        async {
            match &s.redis {
                None => DepState::Ok,
                Some(r) if r.ping().await => DepState::Ok,
                Some(_) => DepState::Degraded,
            }
        },
        s.ai.state()
    );
    let pubsub = if !s.deps.bus.is_distributed() || s.deps.bus.is_cross_instance() {
        DepState::Ok
    } else {
        DepState::Degraded
    };
    let database = if database {
        DepState::Ok
    } else {
        DepState::Down
    };
    let checks = [
        ("database", database),
        ("cache", cache),
        ("pubsub", pubsub),
        ("blobs", s.blobs.health()),
        (
            "mail",
            if s.deps.mail.healthy() {
                DepState::Ok
            } else {
                DepState::Degraded
            },
        ),
        ("push", s.notify.push_state()),
        ("ai", ai),
    ];
    let draining = s.draining.load(std::sync::atomic::Ordering::Relaxed);
    let status = if database == DepState::Down || draining {
        "down"
    } else if checks
        .iter()
        .any(|(_, c)| matches!(c, DepState::Degraded | DepState::Down))
    {
        "degraded"
    } else {
        "ok"
    };
    let body = json!({
        "status": status,
        "checks": checks.iter().map(|(k, v)| (k.to_string(), json!(v.as_str()))).collect::<serde_json::Map<_, _>>(),
    });
    let code = if database == DepState::Down || draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut res = (code, Json(body)).into_response();
    // The 503 carries the readiness body, not the error envelope (API.md §12).
    res.extensions_mut().insert(crate::envelope::Enveloped);
    res
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format")))]
pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let m = &s.deps.metrics;
    let (size, idle) = s.deps.db.pool_stats();
    m.db_pool_size.set(size as i64);
    m.db_pool_idle.set(idle as i64);
    m.ws_connections.set(s.hub.socket_count() as i64);
    m.ws_events_delivered
        .set(s.hub.delivered.load(std::sync::atomic::Ordering::Relaxed) as i64);
    m.ws_slow_consumer_closes.set(
        s.hub
            .dropped_slow
            .load(std::sync::atomic::Ordering::Relaxed) as i64,
    );
    m.redis_up
        .set(s.redis.as_ref().is_some_and(|r| r.is_healthy()) as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops",
    responses((status = 200, body = Object, description = "this document (not enveloped)")))]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT.as_slice(),
    )
        .into_response()
}
