//! What the admin routes answer.

use sc_core::{
    ids::{AuditId, UserId},
    time::Timestamp,
};
use sc_db::{admin::AdminUserRow, admin::StatsRow, audit::AuditRow};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `GET /v1/admin/stats`: the whole deployment, every instance.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub users: i64,
    pub conversations: i64,
    /// Messages not deleted.
    pub messages: i64,
    /// Files (not folders) whose upload completed.
    pub files: i64,
    /// Bytes of every stored file version.
    pub bytes_stored: i64,
    /// Calls ringing or active.
    pub live_calls: i64,
    /// Open WebSockets over all instances that reported in the last 15 seconds.
    pub sockets: i64,
    /// Sessions neither ended nor expired.
    pub sessions: i64,
}

impl From<StatsRow> for StatsView {
    fn from(r: StatsRow) -> Self {
        Self {
            users: r.users,
            conversations: r.conversations,
            messages: r.messages,
            files: r.files,
            bytes_stored: r.bytes_stored,
            live_calls: r.live_calls,
            sockets: r.sockets,
            sessions: r.sessions,
        }
    }
}

/// The User object plus what an administrator needs (API.md §12 "Admin").
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub email_verified: bool,
    pub totp_enabled: bool,
    /// "user" or "admin"
    pub role: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// A ban is in force now (`banned_until` null with `banned` true: without an end).
    pub banned: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub banned_until: Option<Timestamp>,
    pub ban_reason: Option<String>,
    /// The last authenticated request of any of the user's sessions.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
    /// Bytes of the user's stored file versions.
    pub storage_used: i64,
    /// The user's storage quota in bytes (the server's default unless an admin set one).
    pub quota: i64,
}

impl AdminUserView {
    pub fn new(r: AdminUserRow, default_quota: i64, now: Timestamp) -> Self {
        let banned = r.banned(now);
        Self {
            id: r.id,
            email: r.email,
            username: r.username,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            email_verified: r.email_verified,
            totp_enabled: r.totp_enabled,
            role: r.role,
            created_at: r.created_at,
            banned,
            // An expired ban reads as no ban.
            banned_until: r.banned_until.filter(|_| banned),
            ban_reason: r.ban_reason.filter(|_| banned),
            last_seen_at: r.last_seen_at,
            storage_used: r.storage_used,
            quota: r.quota.unwrap_or(default_quota),
        }
    }
}

/// One audit-log entry.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: AuditId,
    pub event: String,
    /// Whom the event is about.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<UserId>,
    /// Who caused it when that was someone else (an administrator).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub actor_id: Option<UserId>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<AuditRow> for AuditEntryView {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            event: r.event,
            user_id: r.user_id,
            actor_id: r.actor_id,
            ip: r.ip,
            details: serde_json::from_str(&r.details).unwrap_or(Value::Null),
            created_at: r.created_at,
        }
    }
}
