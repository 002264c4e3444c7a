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

/// The token pair of the cookie variant of login/refresh (`/v1/auth/browser/*`): the refresh
/// token is not in the body but in an HttpOnly cookie that page scripts cannot read.
#[derive(Serialize, ToSchema)]
pub struct BrowserSessionView {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: String,
    pub user: UserView,
}

impl From<TokenPair> for BrowserSessionView {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            session_id: t.session_id.to_string(),
            user: t.user.into(),
        }
    }
}

/// The body of the cookie refresh: exactly `{}`. Requiring a JSON body is part of the CSRF
/// defence: a cross-site form cannot send `application/json` without a CORS preflight.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserRefreshRequest {}

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

impl<T: ToSchema> Page<T> {
    /// A page from rows fetched with `limit + 1`: the extra row only says that another page
    /// follows, and the cursor is the (already encoded) keyset of the last row kept.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        cursor: impl Fn(&R) -> String,
        view: impl FnMut(R) -> T,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            rows.last().map(&cursor).unwrap_or_default()
        });
        Self {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 3–32 characters of a-z, 0-9, `_` and `.` (lowercased).
    #[schema(pattern = "^[A-Za-z0-9_.]{3,32}$")]
    pub username: String,
    /// 12–128 characters; not a common password, nor containing the username or email.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: String,
    /// Optional label for the session created (extension).
    #[schema(max_length = 64)]
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
    #[schema(max_length = 64)]
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
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    #[schema(min_length = 12, max_length = 128)]
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
/// A field that may be absent (`None`), null (`Some(None)`) or set.
fn some_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    /// An https URL, or null to remove the avatar.
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub avatar_url: Option<Option<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[schema(min_length = 12, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Empty {}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    /// "direct" or "group"
    #[schema(pattern = "^(direct|group)$")]
    pub kind: String,
    /// Exactly one for a direct conversation.
    #[schema(value_type = Vec<uuid::Uuid>, min_items = 1, max_items = 100)]
    pub member_ids: Vec<sc_core::ids::UserId>,
    #[schema(min_length = 1, max_length = 128)]
    pub title: Option<String>,
    pub encrypted: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchConversationRequest {
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    /// Lets AI helpers read the conversation (owner/admin; either member of a direct one);
    /// refused (400) for encrypted conversations.
    pub ai_enabled: Option<bool>,
    /// Days after which messages are deleted (owner only; at most the server's
    /// `message_retention_days` when it has one); null: the server's.
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub retention_days: Option<Option<u32>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    #[schema(value_type = Vec<uuid::Uuid>, min_items = 1, max_items = 100)]
    pub user_ids: Vec<sc_core::ids::UserId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// "owner" (hands over ownership), "admin" or "member"
    #[schema(pattern = "^(owner|admin|member)$")]
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// 1–64 characters of `[A-Za-z0-9_-]`, unique per sender: a retry returns the original.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub client_message_id: String,
    /// "text" by default.
    #[schema(pattern = "^(text|image|video|file|system|poll)$")]
    pub kind: Option<String>,
    /// Plain conversations; at most 10,000 characters by default.
    #[schema(max_length = 10000)]
    pub content: Option<String>,
    /// Standard base64, at most 64 KiB decoded (encrypted conversations).
    #[schema(max_length = 87384)]
    pub ciphertext: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub reply_to: Option<sc_core::ids::MessageId>,
    /// Drive files the sender can read (at most 10); the conversation's members can
    /// then read and download them.
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub attachments: Option<Vec<String>>,
    /// Free-form; a poll (`kind: "poll"`) is `{"poll": {"options": [..], "multiple",
    /// "anonymous", "closes_at"}}`.
    #[schema(value_type = Option<HashMap<String, serde_json::Value>>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    pub content: Option<String>,
    pub ciphertext: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    /// One grapheme cluster of at most 32 bytes.
    #[schema(min_length = 1, max_length = 32)]
    pub emoji: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    #[schema(minimum = 0)]
    pub seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReadView {
    pub read_seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptView {
    pub user_id: String,
    pub read_seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<sc_service::chat::MessageView>,
    pub has_more: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TicketView {
    pub ticket: String,
    pub expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceRequest {
    /// "online", "away" or "offline"
    #[schema(pattern = "^(online|away|offline)$")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct PresenceView {
    pub user_id: String,
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
}

/// `POST /v1/push/subscriptions`: a Web Push subscription (`endpoint`, `keys`), an FCM or an
/// APNs device token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSubscribeRequest {
    /// "webpush", "fcm" or "apns"
    #[schema(pattern = "^(webpush|fcm|apns)$")]
    pub kind: String,
    /// Web Push: the push service URL (`https://`, a public address).
    #[schema(max_length = 2048)]
    pub endpoint: Option<String>,
    /// Web Push: the subscription's keys.
    pub keys: Option<PushKeys>,
    /// FCM or APNs: the device token.
    #[schema(max_length = 4096)]
    pub token: Option<String>,
    /// APNs: "production" (default) or "sandbox".
    #[schema(pattern = "^(production|sandbox)$")]
    pub environment: Option<String>,
    #[schema(max_length = 100)]
    pub device_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// base64url of the 65-byte uncompressed P-256 public key
    pub p256dh: String,
    /// base64url of the 16-byte auth secret
    pub auth: String,
}

/// `GET /v1/push/vapid-public-key`.
#[derive(Serialize, ToSchema)]
pub struct VapidKeyView {
    /// base64url of the uncompressed P-256 public key (the `applicationServerKey`).
    pub public_key: String,
}

/// `POST /v1/notifications/read-all`.
#[derive(Serialize, ToSchema)]
pub struct ReadAllView {
    pub updated: u64,
}

/// One kind's switches in a preferences PATCH (each optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindSwitchesPatch {
    pub push: Option<bool>,
    pub email: Option<bool>,
}

/// `PATCH /v1/notifications/preferences`: any part of the preferences. Kinds are `message`,
/// `mention`, `call.missed`, `file.shared` and `call.scheduled` (others, `security` included,
/// → 400).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatchRequest {
    pub kinds: Option<std::collections::BTreeMap<String, KindSwitchesPatch>>,
    pub email_digest: Option<bool>,
}

/// `PUT /v1/conversations/{id}/mute`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    /// RFC 3339, in the future; without it the mute has no end.
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// Always "ok".
    pub status: String,
}

/// `GET /ready`: each dependency is "ok", "degraded", "down" or "disabled".
#[derive(Serialize, ToSchema)]
pub struct ReadyView {
    /// "ok", "degraded" or "down"
    pub status: String,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub checks: serde_json::Map<String, serde_json::Value>,
}

/// Distinguishes an absent id from an explicit null (for moves to the root).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// 1–255 bytes; no path separators, control or bidi characters, no leading dot; its
    /// extension must fit `content_type`.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Bytes the PUT will carry (at most `max_file_size_bytes`).
    #[schema(minimum = 0)]
    pub size: i64,
    /// One of the allowed media types (API.md §12).
    #[schema(max_length = 255)]
    pub content_type: String,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<sc_core::ids::FileId>,
    /// Client-side encrypted: not sniffed, always served as application/octet-stream.
    pub encrypted: Option<bool>,
    /// The SHA-256 of the bytes, 64 lowercase hex digits. Optional: on S3 it is signed into the
    /// upload URL (send the `x-amz-checksum-sha256` header of `headers`) and the store refuses
    /// other bytes; on local disk complete refuses bytes with another digest (400 `sha256`).
    #[schema(pattern = "^[0-9a-f]{64}$", min_length = 64, max_length = 64)]
    pub sha256: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<sc_core::ids::FileId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchFileRequest {
    /// A new name (the extension must still fit the file's type).
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// A folder of the caller's, or null for the root.
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<Option<sc_core::ids::FileId>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersionRequest {
    /// Bytes the PUT will carry (at most `max_file_size_bytes`).
    #[schema(minimum = 0)]
    pub size: i64,
    /// An allowed media type that the file name's extension fits.
    #[schema(max_length = 255)]
    pub content_type: String,
    /// The SHA-256 of the bytes, 64 lowercase hex digits (as for an upload).
    #[schema(pattern = "^[0-9a-f]{64}$", min_length = 64, max_length = 64)]
    pub sha256: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Exactly one of `user_id` and `conversation_id`.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<sc_core::ids::UserId>,
    /// The members of a conversation the owner is in (whoever is a member when they look).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub conversation_id: Option<sc_core::ids::ConversationId>,
    /// "read" (see and download) or "write" (also rename, move, upload versions)
    #[schema(pattern = "^(read|write)$")]
    pub permission: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// RFC 3339, in the future; without it the link does not expire.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Asked of whoever downloads (4 to 256 characters); stored as an Argon2id hash.
    #[schema(min_length = 4, max_length = 256)]
    pub password: Option<String>,
    /// Downloads the link allows (1 to 1,000,000); without it, any number.
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_downloads: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkDownloadRequest {
    /// The link's password, when it has one.
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    /// Option ids of the poll (`metadata.poll.options[].id`): exactly one unless the poll is
    /// `multiple`, each once.
    #[schema(value_type = Vec<i64>, min_items = 1, max_items = 10)]
    pub option_ids: Vec<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCallRequest {
    #[schema(value_type = uuid::Uuid)]
    pub conversation_id: sc_core::ids::ConversationId,
    /// "audio" or "video"
    #[schema(pattern = "^(audio|video)$")]
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallMediaRequest {
    /// Microphone on.
    pub audio: Option<bool>,
    /// Camera on.
    pub video: Option<bool>,
    /// Sharing a screen.
    pub screen: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRecordingRequest {
    /// "start" or "stop"
    #[schema(pattern = "^(start|stop)$")]
    pub action: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRecordingFileRequest {
    /// The recording, uploaded to the recorder's own drive.
    #[schema(value_type = uuid::Uuid)]
    pub file_id: sc_core::ids::FileId,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallQualityRequest {
    #[schema(minimum = 0, maximum = 60000)]
    pub rtt_ms: f64,
    #[schema(minimum = 0, maximum = 60000)]
    pub jitter_ms: f64,
    /// Fraction of packets lost, 0 to 1.
    #[schema(minimum = 0, maximum = 1)]
    pub packet_loss: f64,
    #[schema(minimum = 0, maximum = 1000000)]
    pub bitrate_kbps: f64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCallRequest {
    #[schema(value_type = uuid::Uuid)]
    pub conversation_id: sc_core::ids::ConversationId,
    /// "audio" or "video"
    #[schema(pattern = "^(audio|video)$")]
    pub kind: String,
    /// RFC 3339, in the future (within a year).
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchScheduledCallRequest {
    /// RFC 3339, in the future; reminded again at the new time.
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    /// null removes the title.
    #[serde(default, deserialize_with = "some_nullable")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
}

/// `PATCH /v1/ai/settings`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiSettingsRequest {
    /// The caller's opt-in to AI helpers.
    pub enabled: bool,
}

/// `POST /v1/ai/chat`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiChatRequest {
    /// 1–50 turns, at most 32,000 characters in all.
    #[schema(max_items = 50)]
    pub messages: Vec<sc_service::ai::ChatTurn>,
    /// Answer as server-sent events, token by token.
    pub stream: Option<bool>,
}

/// `POST /v1/conversations/{id}/summary`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SummaryRequest {
    /// Summarize the messages after this seq (default: from the start; at most the last 2,000).
    #[schema(minimum = 0)]
    pub since_seq: Option<i64>,
}

/// `POST /v1/ai/images`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiImageRequest {
    #[schema(max_length = 4000)]
    pub prompt: String,
    /// "256x256", "512x512" or "1024x1024" (default)
    #[schema(pattern = "^(256x256|512x512|1024x1024)$")]
    pub size: Option<String>,
}

/// `PATCH /v1/admin/users/{id}`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AdminUserPatchRequest {
    /// "user" or "admin"
    pub role: Option<String>,
    /// Storage quota in bytes.
    #[schema(minimum = 0)]
    pub quota: Option<u64>,
}

/// `POST /v1/admin/users/{id}/ban`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// RFC 3339, in the future; null or absent: until an unban.
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

/// `PUT /v1/devices/me`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// Base64 of the device's 32-byte signature key (fixed for the device's life).
    pub signature_key: String,
    /// Base64 of the device's MLS credential (at most 1 KiB decoded).
    pub credential: String,
}

/// `POST /v1/keys/packages`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPackagesRequest {
    /// Base64 key packages (at most 100, each at most 4 KiB decoded).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub key_packages: Vec<String>,
    /// A reusable package handed out when none of the others is left; replaces the old one.
    pub last_resort: Option<String>,
}

/// `{available}`: regular key packages the device holds.
#[derive(Serialize, ToSchema)]
pub struct AvailableView {
    pub available: i64,
}

/// `POST /v1/keys/claim`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[schema(value_type = Vec<uuid::Uuid>, min_items = 1, max_items = 100)]
    pub user_ids: Vec<sc_core::ids::UserId>,
}

/// The claimed packages (one per device; not paged).
#[derive(Serialize, ToSchema)]
pub struct ClaimedItems {
    pub items: Vec<sc_service::mls::ClaimedView>,
}

/// `POST /v1/conversations/{id}/mls/commits` (body up to 4 MiB).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The conversation's current epoch, which this commit moves on by one.
    #[schema(minimum = 0)]
    pub epoch: i64,
    /// Base64 of the commit (at most 1 MiB decoded).
    pub commit: String,
    /// Base64 of a Welcome for the devices in `welcome_to` (both or neither).
    pub welcome: Option<String>,
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub welcome_to: Option<Vec<sc_core::ids::DeviceId>>,
    /// Base64 of the group info after this commit (for devices that rejoin).
    pub group_info: Option<String>,
}

/// `{epoch}` the commit created.
#[derive(Serialize, ToSchema)]
pub struct EpochView {
    pub epoch: i64,
}
