//! The response envelope (API.md §1): every JSON answer, success or error, is
//! `{success, data | error, meta: {request_id, timestamp}}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sc_core::{AppError, time::Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

/// The id of the request being served (set by the request-context middleware).
pub use sc_core::trace::REQUEST_ID;

pub fn current_request_id() -> String {
    sc_core::trace::request_id()
}

/// Marks a response as already carrying the envelope.
#[derive(Clone, Copy)]
pub struct Enveloped;

fn meta() -> Value {
    json!({ "request_id": current_request_id(), "timestamp": Timestamp::now().to_rfc3339() })
}

/// A successful answer with a status.
pub struct ApiOk<T>(pub StatusCode, pub T);

pub fn ok<T: Serialize>(data: T) -> ApiOk<T> {
    ApiOk(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> ApiOk<T> {
    ApiOk(StatusCode::CREATED, data)
}

/// `data: {}` with 200, for actions without a natural payload (API.md §12: no 204s).
pub fn done() -> ApiOk<Value> {
    ApiOk(StatusCode::OK, json!({}))
}

impl<T: Serialize> IntoResponse for ApiOk<T> {
    fn into_response(self) -> Response {
        let body = json!({ "success": true, "data": self.1, "meta": meta() });
        let mut res = (self.0, Json(body)).into_response();
        res.extensions_mut().insert(Enveloped);
        res
    }
}

/// The HTTP face of `AppError`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

pub type ApiResult<T> = Result<ApiOk<T>, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let AppError::Internal(detail) = &e {
            // Details of a bug go to the log only (the log line carries the request id).
            tracing::error!(error = %detail, "internal error");
        }
        let mut error = json!({ "code": e.code(), "message": e.public_message() });
        if let Some(d) = e.details() {
            error["details"] = d;
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (
            status,
            Json(json!({ "success": false, "error": error, "meta": meta() })),
        )
            .into_response();
        if let AppError::RateLimited {
            retry_after_seconds,
            limit: Some(limit),
        } = e
        {
            crate::middleware::set_rate_limit_headers(
                res.headers_mut(),
                limit,
                0,
                retry_after_seconds,
            );
        }
        match e {
            AppError::RateLimited {
                retry_after_seconds,
                ..
            }
            | AppError::AccountLocked {
                retry_after_seconds,
            } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            AppError::Unauthorized(_) | AppError::TotpRequired => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        res.extensions_mut().insert(Enveloped);
        res
    }
}

/// Turns any response that escaped the envelope (a framework or middleware default: timeout,
/// body limit, panic) into an enveloped error of the same status.
pub fn envelope_stray(res: Response) -> Response {
    if res.extensions().get::<Enveloped>().is_some()
        || res.status().is_success()
        || res.status().is_informational()
    {
        return res;
    }
    let status = res.status();
    let err = match status.as_u16() {
        400 => AppError::validation("body", "malformed request"),
        401 => AppError::unauthorized(),
        403 => AppError::Forbidden("forbidden".into()),
        404 => AppError::NotFound("route".into()),
        405 => AppError::MethodNotAllowed,
        408 | 504 => AppError::ServiceUnavailable("the request took too long".into()),
        413 => AppError::PayloadTooLarge("request body too large".into()),
        415 => AppError::UnsupportedMediaType("unsupported content type".into()),
        429 => AppError::RateLimited {
            retry_after_seconds: 1,
            limit: None,
        },
        503 => AppError::ServiceUnavailable("service unavailable".into()),
        s if s >= 500 => AppError::Internal(format!("unenveloped {s} response")),
        _ => return res,
    };
    let mut out = ApiError(err).into_response();
    // Keep the original status (e.g. 408) when it differs from the code's default.
    if status.as_u16() != 408 && status.as_u16() != 504 {
        *out.status_mut() = status;
    }
    for (k, v) in res.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
