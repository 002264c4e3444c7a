//! What every span of a request carries: the request id (set by the HTTP layer for the whole
//! request), and `dependency_span!` for calls to the database, Redis, blob storage and the AI
//! provider, which become child spans of the request in OpenTelemetry traces.
//!
//! Dependency spans are at `debug` level under the target `secureconnect::dependency`: with
//! tracing export off, no subscriber enables them and they cost a disabled-callsite check.

tokio::task_local! {
    /// The id of the request being served.
    pub static REQUEST_ID: String;
}

/// The current request's id; empty outside a request (background jobs).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// The target of dependency spans (the tracing export enables it).
pub const DEPENDENCY_TARGET: &str = "secureconnect::dependency";

/// A child span for one call to a dependency: `dependency_span!("db", "db.query")`.
#[macro_export]
macro_rules! dependency_span {
    ($kind:expr, $name:expr) => {
        tracing::debug_span!(
            target: "secureconnect::dependency",
            "dependency",
            otel.name = $name,
            dependency = $kind,
            request_id = %$crate::trace::request_id(),
        )
    };
}
