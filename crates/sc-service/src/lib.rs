//! The rules of SecureConnect. Services depend on ports (the `Db` repositories, the bus, the rate
//! limiter, the mail queue) and never on HTTP.

pub mod admin;
pub mod ai;
pub mod auth;
pub mod calls;
pub mod chat;
pub mod crypto;
pub mod deps;
pub mod drive;
pub mod mail;
pub mod metrics;
pub mod mls;
pub mod notify;
pub mod password;
#[cfg(test)]
mod proptests;
pub mod realtime;
pub mod send_queue;
pub mod session_cache;
pub mod users;

pub use auth::AuthService;
pub use deps::Deps;
pub use users::UserService;

use sc_core::ids::{SessionId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling: established from a valid access token of a live session.
#[derive(Clone, Copy, Debug)]
pub struct AuthContext {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    pub email_verified: bool,
}

/// Where a request came from (for sessions and the audit log).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Bus channel on which ended sessions are announced to every instance.
pub const SESSION_REVOKED_CHANNEL: &str = "session.revoked";
/// Bus channel on which sessions a ban ended are announced (their sockets close with 4003).
pub const SESSION_BANNED_CHANNEL: &str = "session.banned";
/// Bus channel on which sessions whose cached context is stale (role, verification) are announced.
pub const SESSION_CHANGED_CHANNEL: &str = "session.changed";
/// Bus channel on which users whose cached account view is stale are announced.
pub const USER_CHANGED_CHANNEL: &str = "user.changed";
/// Bus channel on which conversations whose cached access is stale are announced.
pub const CONVERSATION_CHANGED_CHANNEL: &str = "conversation.changed";
/// A call's participants changed: drop its cached sessions.
pub const CALL_CHANGED_CHANNEL: &str = "call.changed";
