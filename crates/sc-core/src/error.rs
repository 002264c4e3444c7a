//! The one error type of the application. Every variant maps to exactly one API error code and
//! HTTP status (API.md §1); the HTTP layer renders it into the envelope.

use serde_json::{Value, json};

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{reason}")]
    Validation { field: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("a second factor is required")]
    TotpRequired,
    #[error("the email address must be verified first")]
    EmailNotVerified,
    #[error("{0}")]
    Forbidden(String),
    /// Forbidden for a reason the client can act on (`details.reason`, e.g. `2fa_required`).
    #[error("{message}")]
    ForbiddenBecause {
        message: String,
        reason: &'static str,
    },
    /// The account is banned; `until` none: without an end.
    #[error("account is banned")]
    Banned {
        until: Option<crate::time::Timestamp>,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<Value>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("account is temporarily locked")]
    AccountLocked { retry_after_seconds: u64 },
    #[error("too many requests")]
    /// `limit`: the quota of the limit that refused, when known (sent as `RateLimit-Limit`).
    RateLimited {
        retry_after_seconds: u64,
        limit: Option<u32>,
    },
    #[error("{0}")]
    LimitReached(String),
    #[error("the storage quota would be exceeded")]
    QuotaExceeded {
        used: u64,
        quota: u64,
        requested: u64,
    },
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A bug or an unexpected failure. The message is only logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::Unauthorized("authentication required".into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: None,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// The API error code (API.md §1).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "VALIDATION_ERROR",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::TotpRequired => "TOTP_REQUIRED",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::Forbidden(_) | Self::ForbiddenBecause { .. } | Self::Banned { .. } => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict { .. } => "CONFLICT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::AccountLocked { .. } => "ACCOUNT_LOCKED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::LimitReached(_) => "LIMIT_REACHED",
            Self::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            Self::ServiceUnavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation { .. } => 400,
            Self::Unauthorized(_) | Self::TotpRequired => 401,
            Self::EmailNotVerified
            | Self::Forbidden(_)
            | Self::ForbiddenBecause { .. }
            | Self::Banned { .. } => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict { .. } | Self::LimitReached(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::AccountLocked { .. } => 423,
            Self::QuotaExceeded { .. } => 507,
            Self::RateLimited { .. } => 429,
            Self::ServiceUnavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The message shown to the client. Internal errors get a generic text.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal server error".into(),
            other => other.to_string(),
        }
    }

    pub fn details(&self) -> Option<Value> {
        match self {
            Self::Validation { field, reason } => Some(json!({ "field": field, "reason": reason })),
            Self::Conflict { details, .. } => details.clone(),
            Self::ForbiddenBecause { reason, .. } => Some(json!({ "reason": reason })),
            Self::Banned { until } => {
                Some(json!({ "banned_until": until.map(crate::time::Timestamp::to_rfc3339) }))
            }
            Self::QuotaExceeded {
                used,
                quota,
                requested,
            } => Some(json!({ "used": used, "quota": quota, "requested": requested })),
            Self::AccountLocked {
                retry_after_seconds,
            }
            | Self::RateLimited {
                retry_after_seconds,
                ..
            } => Some(json!({ "retry_after_seconds": retry_after_seconds })),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // The database is unreachable or saturated: a dependency problem, not a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                AppError::ServiceUnavailable("the database is unavailable".into())
            }
            // Out of space (SQLite SQLITE_FULL, PostgreSQL disk_full): the dependency, not a bug.
            sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("13") | Some("53100")) =>
            {
                AppError::ServiceUnavailable("the database is out of space".into())
            }
            _ => AppError::Internal(format!("database: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_message_is_generic() {
        let e = AppError::internal("secret detail");
        assert_eq!(e.status(), 500);
        assert!(!e.public_message().contains("secret"));
    }

    #[test]
    fn lock_details_carry_retry_after() {
        let e = AppError::AccountLocked {
            retry_after_seconds: 42,
        };
        assert_eq!(e.details().unwrap()["retry_after_seconds"], 42);
        assert_eq!(e.status(), 423);
    }
}
