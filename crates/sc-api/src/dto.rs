//! Request and response bodies of the HTTP API. Requests deny unknown fields (API.md §12).

use sc_core::{ids::SessionId, time::Timestamp};
use sc_db::{
    sessions::SessionRow,
    users::{ProfileRow, UserRow},
};
use sc_service::auth::TokenPair;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
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
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            username: u.username,
            display_name: u.display_name,
            avatar_url: u.avatar_url,
            email_verified: u.email_verified,
            totp_enabled: u.totp_enabled,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenPairView {
    pub access_token: String,
    pub refresh_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: String,
    pub user: UserView,
}

impl From<TokenPair> for TokenPairView {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            session_id: t.session_id.to_string(),
            user: t.user.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub device_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
    /// True for the session making this request.
    pub current: bool,
}

impl SessionView {
    pub fn new(s: SessionRow, current: SessionId) -> Self {
        Self {
            id: s.id.to_string(),
            device_name: s.device_name,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            current: s.id == current,
        }
    }
}

/// What other users may see of an account (never the email).
#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

impl From<ProfileRow> for ProfileView {
    fn from(p: ProfileRow) -> Self {
        Self {
            id: p.id.to_string(),
            username: p.username,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Items<T: ToSchema> {
    pub items: Vec<T>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 3–32 characters of a-z, 0-9, `_` and `.` (lowercased).
    pub username: String,
    /// 12–128 characters.
    pub password: String,
    pub display_name: String,
    /// Optional label for the session created (extension).
    pub device_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email or username (one of them).
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: String,
    /// A TOTP code or an unused recovery code.
    pub totp_code: Option<String>,
    pub device_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpSetupView {
    /// Base32 secret for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    pub recovery_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    pub password: String,
    pub code: String,
}

/// Distinguishes an absent field from an explicit null.
fn some_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeRequest {
    pub display_name: Option<String>,
    /// A URL, or null to remove the avatar.
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Empty {}
