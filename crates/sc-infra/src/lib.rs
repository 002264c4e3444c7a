//! Adapters behind the service ports: the shared cache/bus (in-process, or Redis when
//! configured), the rate limiter and the mailer. Each degrades instead of failing the request
//! when its backend is away.

pub mod ai;
pub mod blobs;
pub mod bus;
pub mod mailer;
pub mod push;
pub mod ratelimit;
pub mod redis_link;

/// Health of an optional dependency, as reported in `/ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepState {
    Ok,
    Degraded,
    Down,
    Disabled,
}

impl DepState {
    pub fn as_str(self) -> &'static str {
        match self {
            DepState::Ok => "ok",
            DepState::Degraded => "degraded",
            DepState::Down => "down",
            DepState::Disabled => "disabled",
        }
    }
}
