//! Conversations and messages: membership, roles, sending with gap-free sequence numbers,
//! editing, deletion, reactions, read receipts and search. Every change is announced to the
//! members' sockets through the bus.

pub mod mentions;
mod mute;
mod polls;

pub use polls::{PollOptionView, PollOptionVoters, PollView, PollVotersView};

use crate::{
    AuthContext, Deps,
    send_queue::{SendQueue, Written},
    session_cache::CONVERSATION_CACHE_TTL,
};
use sc_core::ids::ASSISTANT_USER_ID;
use sc_core::{
    AppError, AppResult,
    ids::{ConversationId, FileId, MessageId, UserId},
    time::Timestamp,
};
use sc_db::chat::{
    ConversationAccess, ConversationRow, MemberRow, MessageRow, NewConversation, NewMessage,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use unicode_segmentation::UnicodeSegmentation;
use utoipa::ToSchema;

const MAX_CIPHERTEXT_BYTES: usize = 64 * 1024;
const MAX_METADATA_BYTES: usize = 4096;
/// Files one message carries at most.
const MAX_ATTACHMENTS: usize = 10;
const MAX_GROUP_MEMBERS_PER_REQUEST: usize = 100;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConversationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ConversationId,
    /// "direct" or "group"
    pub kind: String,
    pub title: Option<String>,
    pub avatar_url: Option<String>,
    pub encrypted: bool,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: UserId,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub last_message_seq: i64,
    pub unread_count: i64,
    pub members_count: i64,
    /// "owner", "admin" or "member"
    pub my_role: String,
    /// When the last message was sent (or the conversation created); lists are ordered by it.
    #[schema(value_type = String, format = DateTime)]
    pub last_activity_at: Timestamp,
    /// Until when the caller muted the conversation (null: not muted).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<Timestamp>,
    /// AI helpers may read it (summaries, `@assistant`); never for encrypted conversations.
    pub ai_enabled: bool,
    /// Messages older than this many days are deleted (set by the owner; null: the server's
    /// `message_retention_days`, which also caps it).
    pub retention_days: Option<u32>,
    /// A direct conversation's other member, so a list can name it without a request per
    /// conversation (null for groups, or when that account is gone).
    pub peer: Option<PeerView>,
}

/// The other member of a direct conversation (a public profile's names).
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct PeerView {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
}

impl From<ConversationRow> for ConversationView {
    fn from(c: ConversationRow) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            title: c.title,
            avatar_url: c.avatar_url,
            encrypted: c.encrypted,
            created_by: c.created_by,
            created_at: c.created_at,
            last_message_seq: c.last_message_seq,
            unread_count: c.unread_count,
            members_count: c.members_count,
            my_role: c.my_role,
            last_activity_at: c.last_activity_at,
            muted_until: c.muted_until.filter(|t| *t > Timestamp::now()),
            ai_enabled: c.ai_enabled,
            retention_days: c.retention_days.and_then(|d| u32::try_from(d).ok()),
            peer: match (c.peer_id, c.peer_username, c.peer_display_name) {
                (Some(user_id), Some(username), Some(display_name)) => Some(PeerView {
                    user_id,
                    username,
                    display_name,
                }),
                _ => None,
            },
        }
    }
}

/// What `PATCH /v1/conversations/{id}` may change; `Some(None)` clears a value.
#[derive(Default)]
pub struct ConversationPatch {
    pub title: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub ai_enabled: Option<bool>,
    pub retention_days: Option<Option<u32>>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: String,
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: Timestamp,
}

impl From<MemberRow> for MemberView {
    fn from(m: MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            username: m.username,
            display_name: m.display_name,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = String, format = Uuid)]
    pub id: MessageId,
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    pub seq: i64,
    #[schema(value_type = String, format = Uuid)]
    pub sender_id: UserId,
    pub client_message_id: String,
    pub kind: String,
    pub content: Option<String>,
    pub ciphertext: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub reply_to: Option<MessageId>,
    #[schema(value_type = Vec<String>)]
    pub attachments: Vec<String>,
    /// Free-form; a poll's is `{"poll": {options, multiple, anonymous, closed, closes_at,
    /// voters, my_vote?}}` (`my_vote`: the caller's option ids, in history pages only).
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub metadata: Value,
    /// Emoji → how many members reacted with it.
    #[schema(value_type = HashMap<String, i64>)]
    pub reactions: BTreeMap<String, i64>,
    /// The emoji the caller reacted with. In history pages (read for one caller); absent from
    /// realtime events and other views, which every member shares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_reactions: Option<Vec<String>>,
    /// Members mentioned with `@username` (plain messages), so clients can highlight them.
    #[schema(value_type = Vec<String>)]
    pub mentions: Vec<UserId>,
    /// The message mentions everyone (`@all` from a group's owner or admin).
    pub mentions_all: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
}

impl MessageView {
    /// The view of a row; a poll shows zero votes until `fill_polls` counts them.
    pub(crate) fn new(m: MessageRow, reactions: BTreeMap<String, i64>) -> Self {
        let mut metadata: Value = serde_json::from_str(&m.metadata).unwrap_or_else(|_| json!({}));
        if m.kind == "poll"
            && let Some(stored) = metadata.get("poll")
        {
            let closed = polls::is_closed(&m, Timestamp::now());
            let rendered = polls::render(stored, closed, m.poll_closes_at, &Default::default());
            metadata["poll"] = rendered.unwrap_or(Value::Null);
        }
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender_id,
            client_message_id: m.client_message_id,
            kind: m.kind,
            content: m.content,
            ciphertext: m.ciphertext,
            reply_to: m.reply_to,
            attachments: m
                .attachments
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            metadata,
            reactions,
            my_reactions: None,
            mentions: mentions::parse_stored(&m.mentions),
            mentions_all: m.mentions == mentions::MENTION_ALL,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted_at.is_some(),
        }
    }
}

pub struct NewConversationRequest {
    pub kind: String,
    pub member_ids: Vec<UserId>,
    pub title: Option<String>,
    pub encrypted: bool,
}

pub struct SendRequest {
    pub client_message_id: String,
    pub kind: Option<String>,
    pub content: Option<String>,
    pub ciphertext: Option<String>,
    pub reply_to: Option<MessageId>,
    pub attachments: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
}

/// A message body for send or edit: exactly one of plain text or ciphertext, matching the mode.
pub(crate) enum Body {
    Plain(String),
    Cipher(String),
}

#[derive(Clone)]
pub struct ChatService {
    d: Arc<Deps>,
    sends: Arc<SendQueue>,
}

fn not_found() -> AppError {
    AppError::NotFound("conversation".into())
}

pub(crate) fn validate_title(t: &str) -> AppResult<String> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control) {
        return Err(AppError::validation(
            "title",
            "title must be 1-128 characters without control characters",
        ));
    }
    Ok(t.to_string())
}

impl ChatService {
    /// Starts the send queue's writers (they stop when the service is dropped).
    pub fn new(d: Arc<Deps>) -> Self {
        let sends = Arc::new(SendQueue::start(d.clone()));
        Self { d, sends }
    }

    /// The caller's role, or 404 as if the conversation did not exist.
    async fn membership(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
    ) -> AppResult<ConversationRow> {
        self.d
            .db
            .chat()
            .view(ctx.user_id, id)
            .await?
            .ok_or_else(not_found)
    }

    pub async fn create(
        &self,
        ctx: &AuthContext,
        req: NewConversationRequest,
    ) -> AppResult<(ConversationView, bool)> {
        let me = ctx.user_id;
        let mut others: Vec<UserId> = req.member_ids.into_iter().filter(|u| *u != me).collect();
        others.sort();
        others.dedup();
        for u in &others {
            if *u == ASSISTANT_USER_ID {
                return Err(AppError::validation(
                    "member_ids",
                    "the assistant answers @assistant in AI-enabled conversations; it is no member",
                ));
            }
            if self.d.db.users().profile(*u).await?.is_none() {
                return Err(AppError::validation(
                    "member_ids",
                    format!("unknown user {u}"),
                ));
            }
        }
        let now = Timestamp::now();
        let id = ConversationId::new();
        match req.kind.as_str() {
            "direct" => {
                let [other] = others.as_slice() else {
                    return Err(AppError::validation(
                        "member_ids",
                        "a direct conversation has exactly one other member",
                    ));
                };
                if req.title.is_some() {
                    return Err(AppError::validation(
                        "title",
                        "a direct conversation has no title",
                    ));
                }
                if self.d.db.blocks().either_blocks(me, *other).await? {
                    return Err(AppError::Forbidden(
                        "you cannot start a conversation with this user".into(),
                    ));
                }
                let (a, b) = if me < *other {
                    (me, *other)
                } else {
                    (*other, me)
                };
                let key = format!("{a}:{b}");
                if let Some(existing) = self.d.db.chat().find_direct(&key).await? {
                    return Ok((self.membership(ctx, existing).await?.into(), false));
                }
                let new = NewConversation {
                    id,
                    kind: "direct",
                    title: None,
                    encrypted: req.encrypted,
                    created_by: me,
                    direct_key: Some(&key),
                    now,
                };
                if let Err(existing) = self
                    .d
                    .db
                    .chat()
                    .create(&new, &[(me, "member"), (*other, "member")])
                    .await?
                {
                    return Ok((self.membership(ctx, existing).await?.into(), false));
                }
            }
            "group" => {
                if others.len() > MAX_GROUP_MEMBERS_PER_REQUEST {
                    return Err(AppError::validation(
                        "member_ids",
                        "at most 100 members per request",
                    ));
                }
                let title = req.title.as_deref().map(validate_title).transpose()?;
                let mut members: Vec<(UserId, &str)> = vec![(me, "owner")];
                members.extend(others.iter().map(|u| (*u, "member")));
                let new = NewConversation {
                    id,
                    kind: "group",
                    title: title.as_deref(),
                    encrypted: req.encrypted,
                    created_by: me,
                    direct_key: None,
                    now,
                };
                if self.d.db.chat().create(&new, &members).await?.is_err() {
                    return Err(AppError::internal("group id collision"));
                }
            }
            _ => {
                return Err(AppError::validation(
                    "kind",
                    "kind must be \"direct\" or \"group\"",
                ));
            }
        }
        let view: ConversationView = self.membership(ctx, id).await?.into();
        let all: Vec<UserId> = std::iter::once(me).chain(others.iter().copied()).collect();
        self.d
            .emit(
                all,
                "conversation.updated",
                &json!({"id": id, "kind": view.kind, "created": true}),
            )
            .await;
        Ok((view, true))
    }

    pub async fn get(&self, ctx: &AuthContext, id: ConversationId) -> AppResult<ConversationView> {
        Ok(self.membership(ctx, id).await?.into())
    }

    pub async fn list(
        &self,
        ctx: &AuthContext,
        before: Option<(Timestamp, ConversationId)>,
        limit: i64,
    ) -> AppResult<Vec<ConversationView>> {
        Ok(self
            .d
            .db
            .chat()
            .list(ctx.user_id, before, limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn require_group_admin(c: &ConversationRow) -> AppResult<()> {
        if c.kind != "group" {
            return Err(AppError::Forbidden(
                "not possible in a direct conversation".into(),
            ));
        }
        if c.my_role != "owner" && c.my_role != "admin" {
            return Err(AppError::Forbidden(
                "only the owner or an admin may do this".into(),
            ));
        }
        Ok(())
    }

    /// Changes the title, avatar or `ai_enabled`: the owner or an admin of a group; in a
    /// direct conversation, only `ai_enabled`, by either member. Encrypted conversations never
    /// let AI read them (400). The message retention only the owner sets (a direct
    /// conversation has none), never beyond the server's.
    pub async fn update(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> AppResult<ConversationView> {
        let ConversationPatch {
            title,
            avatar_url,
            ai_enabled,
            retention_days,
        } = patch;
        let c = self.membership(ctx, id).await?;
        if c.kind != "direct" || title.is_some() || avatar_url.is_some() {
            Self::require_group_admin(&c)?;
        }
        if ai_enabled == Some(true) && c.encrypted {
            return Err(AppError::validation(
                "ai_enabled",
                "encrypted conversations cannot be read by AI helpers",
            ));
        }
        let retention_days = match retention_days {
            None => c.retention_days,
            Some(days) => {
                if c.my_role != "owner" {
                    return Err(AppError::Forbidden(
                        "only the owner sets the message retention".into(),
                    ));
                }
                days.map(|d| self.check_retention(d)).transpose()?
            }
        };
        let ai_enabled = ai_enabled.unwrap_or(c.ai_enabled);
        let title = match title {
            Some(Some(t)) => Some(validate_title(&t)?),
            Some(None) => None,
            None => c.title.clone(),
        };
        let avatar = match avatar_url {
            Some(Some(a)) => Some(
                sc_core::domain::AvatarUrl::parse("avatar_url", &a)?
                    .as_str()
                    .to_string(),
            ),
            Some(None) => None,
            None => c.avatar_url.clone(),
        };
        self.d
            .db
            .chat()
            .update(
                id,
                title.as_deref(),
                avatar.as_deref(),
                ai_enabled,
                retention_days,
            )
            .await?;
        let view: ConversationView = self.membership(ctx, id).await?.into();
        let members = self.d.db.chat().member_ids(id).await?;
        self.d
            .emit(
                members,
                "conversation.updated",
                &json!({"id": id, "title": view.title, "avatar_url": view.avatar_url,
                        "ai_enabled": view.ai_enabled, "retention_days": view.retention_days}),
            )
            .await;
        Ok(view)
    }

    /// A conversation's retention: 1–36,500 days, and within the server's when it has one.
    fn check_retention(&self, days: u32) -> AppResult<i64> {
        let server = self.d.cfg.message_retention_days;
        if !(1..=36_500).contains(&days) {
            return Err(AppError::validation("retention_days", "1 to 36500 days"));
        }
        if server > 0 && days > server {
            return Err(AppError::validation(
                "retention_days",
                format!("at most the server's {server} days"),
            ));
        }
        Ok(i64::from(days))
    }

    pub async fn delete(&self, ctx: &AuthContext, id: ConversationId) -> AppResult<()> {
        let c = self.membership(ctx, id).await?;
        if c.my_role != "owner" {
            return Err(AppError::Forbidden(
                "only the owner may delete the conversation".into(),
            ));
        }
        let members = self.d.db.chat().member_ids(id).await?;
        self.d.db.chat().delete(id).await?;
        self.d.conversation_changed(id).await;
        self.d
            .emit(
                members,
                "conversation.updated",
                &json!({"id": id, "deleted": true}),
            )
            .await;
        Ok(())
    }

    /// Members in joining order, one page at a time (`after`: the keyset of the last one seen).
    pub async fn members(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        after: Option<(Timestamp, UserId)>,
        limit: i64,
    ) -> AppResult<Vec<MemberView>> {
        self.membership(ctx, id).await?;
        Ok(self
            .d
            .db
            .chat()
            .members(id, after, limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn add_members(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        users: Vec<UserId>,
        limit: i64,
    ) -> AppResult<Vec<MemberView>> {
        let c = self.membership(ctx, id).await?;
        Self::require_group_admin(&c)?;
        if users.is_empty() || users.len() > MAX_GROUP_MEMBERS_PER_REQUEST {
            return Err(AppError::validation("user_ids", "give 1-100 user ids"));
        }
        for u in &users {
            if *u == ASSISTANT_USER_ID || self.d.db.users().profile(*u).await?.is_none() {
                return Err(AppError::validation(
                    "user_ids",
                    format!("unknown user {u}"),
                ));
            }
        }
        let added = self
            .d
            .db
            .chat()
            .add_members(id, &users, Timestamp::now())
            .await?;
        let members = self.d.db.chat().member_ids(id).await?;
        for u in &added {
            self.d
                .emit(
                    members.clone(),
                    "member.added",
                    &json!({"conversation_id": id, "user_id": u}),
                )
                .await;
        }
        self.members(ctx, id, None, limit).await
    }

    /// Owner/admin removes anyone but the owner; anyone removes themself (leave). An owner who
    /// leaves hands the group to the longest-standing admin, else member; the last one out
    /// deletes it.
    pub async fn remove_member(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        user: UserId,
    ) -> AppResult<()> {
        let c = self.membership(ctx, id).await?;
        if c.kind != "group" {
            return Err(AppError::Forbidden(
                "members cannot leave a direct conversation".into(),
            ));
        }
        let target_role = self
            .d
            .db
            .chat()
            .role_of(id, user)
            .await?
            .ok_or_else(|| AppError::NotFound("member".into()))?;
        let leaving = user == ctx.user_id;
        if !leaving {
            Self::require_group_admin(&c)?;
            if target_role == "owner" {
                return Err(AppError::Forbidden("the owner cannot be removed".into()));
            }
        }
        let before = self.d.db.chat().member_ids(id).await?;
        if leaving && target_role == "owner" {
            self.d.db.chat().hand_over_groups(user, Some(id)).await?;
        }
        self.d.db.chat().remove_member(id, user).await?;
        self.d.conversation_changed(id).await;
        self.d
            .emit(
                before,
                "member.removed",
                &json!({"conversation_id": id, "user_id": user}),
            )
            .await;
        Ok(())
    }

    /// Owner only: make someone admin or member, or hand over ownership ("owner").
    pub async fn set_role(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        user: UserId,
        role: &str,
    ) -> AppResult<MemberView> {
        let c = self.membership(ctx, id).await?;
        if c.kind != "group" || c.my_role != "owner" {
            return Err(AppError::Forbidden(
                "only the owner may change roles".into(),
            ));
        }
        if !matches!(role, "owner" | "admin" | "member") {
            return Err(AppError::validation(
                "role",
                "role must be owner, admin or member",
            ));
        }
        if user == ctx.user_id {
            return Err(AppError::validation(
                "user_id",
                "the owner keeps their role unless handing over ownership",
            ));
        }
        let changed = if role == "owner" {
            // One transaction, and only while the caller still is the owner.
            self.d
                .db
                .chat()
                .transfer_ownership(id, ctx.user_id, user)
                .await?
        } else {
            self.d.db.chat().set_role(id, user, role).await?
        };
        if !changed {
            return Err(AppError::NotFound("member".into()));
        }
        let members = self.d.db.chat().member_ids(id).await?;
        self.d
            .emit(
                members,
                "conversation.updated",
                &json!({"id": id, "member_role": {"user_id": user, "role": role}}),
            )
            .await;
        let m = self
            .d
            .db
            .chat()
            .member(id, user)
            .await?
            .ok_or_else(|| AppError::NotFound("member".into()))?;
        Ok(m.into())
    }

    /// Checks a body; `max_chars` bounds plain text.
    pub(crate) fn body(
        max_chars: usize,
        encrypted: bool,
        content: Option<String>,
        ciphertext: Option<String>,
    ) -> AppResult<Body> {
        match (content, ciphertext, encrypted) {
            (Some(_), Some(_), _) => Err(AppError::validation(
                "content",
                "send content or ciphertext, not both",
            )),
            (Some(_), None, true) => Err(AppError::validation(
                "content",
                "this conversation is encrypted: send ciphertext",
            )),
            (None, Some(_), false) => Err(AppError::validation(
                "ciphertext",
                "this conversation is not encrypted: send content",
            )),
            (None, None, true) => Err(AppError::validation("ciphertext", "ciphertext is required")),
            (None, None, false) => Err(AppError::validation("content", "content is required")),
            (Some(text), None, false) => {
                let n = text.chars().count();
                if n > max_chars {
                    return Err(AppError::PayloadTooLarge(format!(
                        "content exceeds {max_chars} characters"
                    )));
                }
                if text.trim().is_empty() {
                    return Err(AppError::validation("content", "content is empty"));
                }
                if text
                    .chars()
                    .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
                {
                    return Err(AppError::validation(
                        "content",
                        "control characters other than newline and tab are not allowed",
                    ));
                }
                Ok(Body::Plain(text))
            }
            (None, Some(b64), true) => {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| {
                        AppError::validation("ciphertext", "ciphertext must be standard base64")
                    })?;
                if raw.len() > MAX_CIPHERTEXT_BYTES {
                    return Err(AppError::PayloadTooLarge(
                        "ciphertext exceeds 64 KiB".into(),
                    ));
                }
                if raw.is_empty() {
                    return Err(AppError::validation("ciphertext", "ciphertext is empty"));
                }
                Ok(Body::Cipher(b64))
            }
        }
    }

    pub async fn send(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        req: SendRequest,
    ) -> AppResult<(MessageView, bool)> {
        // Membership first (404 before any validation, API.md §12).
        let access = self.send_access(ctx.user_id, id).await?;
        Self::check_client_message_id(&req.client_message_id)?;
        let cmid = req.client_message_id.clone();
        let new = match self.prepare_message(ctx, id, &access, req).await {
            Ok(new) => new,
            // A retry returns the original whatever it carries now (another body, or a sender
            // now over the limit); looked up only here, off the path of a good send.
            Err(e) => {
                return match self
                    .d
                    .db
                    .chat()
                    .message_by_client_id(ctx.user_id, &cmid)
                    .await?
                {
                    Some(m) => Ok((self.view_one(m).await?, false)),
                    None => Err(e),
                };
            }
        };
        match self.sends.write(new).await? {
            Written::Existing(m) => Ok((self.view_one(m).await?, false)),
            Written::NotMember => Err(not_found()),
            // The offline-notification job was committed with the message, and the send
            // queue announces it (see `send_queue`).
            Written::New(view) => {
                crate::ai::assistant::on_sent(&self.d, &view).await;
                Ok((view, true))
            }
        }
    }

    /// 1–64 characters of `[A-Za-z0-9_-]`.
    pub(crate) fn check_client_message_id(cmid: &str) -> AppResult<()> {
        if cmid.is_empty()
            || cmid.len() > 64
            || !cmid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(AppError::validation(
                "client_message_id",
                "1-64 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
        Ok(())
    }

    /// The conversation as sending needs it, when `user` is a member (404 otherwise). Served
    /// from the per-instance cache when it lists `user`; anything else asks the database, so a
    /// member added a moment ago on another instance is never refused. A removed member still
    /// cached is refused by the write itself, which checks membership.
    async fn send_access(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> AppResult<Arc<ConversationAccess>> {
        if let Some(a) = self.d.conversations.get(&id)
            && a.members.contains(&user)
        {
            return Ok(a);
        }
        let access = Arc::new(self.d.db.chat().access(id).await?.ok_or_else(not_found)?);
        self.d
            .conversations
            .put(id, access.clone(), CONVERSATION_CACHE_TTL);
        if access.members.contains(&user) {
            Ok(access)
        } else {
            Err(not_found())
        }
    }

    /// Everything a send checks after membership, in the API's order; the message to write.
    async fn prepare_message(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        access: &ConversationAccess,
        req: SendRequest,
    ) -> AppResult<NewMessage> {
        let (conv_kind, encrypted) = (access.kind.as_str(), access.encrypted);
        self.d
            .within_limit(
                "send",
                &format!("send:{}", ctx.user_id),
                self.d.cfg.message_rate_per_user_per_minute,
                Duration::from_secs(60),
            )
            .await?;
        let attachments = Self::attachment_ids(req.attachments.as_deref().unwrap_or_default())?;
        let kind = req.kind.as_deref().unwrap_or("text");
        match kind {
            "text" | "poll" => {}
            "image" | "video" | "file" if attachments.is_empty() => {
                return Err(AppError::validation(
                    "kind",
                    "image, video and file messages carry at least one attachment",
                ));
            }
            "image" | "video" | "file" => {}
            "system" => {
                return Err(AppError::validation(
                    "kind",
                    "system messages are sent by the server only",
                ));
            }
            _ => return Err(AppError::validation("kind", "unknown message kind")),
        }
        let mut metadata = req.metadata.unwrap_or_default();
        let poll = metadata.remove("poll");
        if Value::Object(metadata.clone()).to_string().len() > MAX_METADATA_BYTES {
            return Err(AppError::PayloadTooLarge("metadata exceeds 4 KiB".into()));
        }
        // A poll's definition is bounded by its own rules, apart from the 4 KiB of the rest.
        let poll = match (kind, poll) {
            ("poll", _) if encrypted => {
                return Err(AppError::validation(
                    "kind",
                    "polls need a plain conversation: the server cannot see encrypted options",
                ));
            }
            ("poll", Some(p)) => Some(polls::PollDefinition::parse(&p, Timestamp::now())?),
            ("poll", None) => {
                return Err(AppError::validation(
                    "metadata.poll",
                    "a poll message carries metadata.poll",
                ));
            }
            (_, Some(_)) => {
                return Err(AppError::validation(
                    "metadata.poll",
                    "only poll messages carry a poll",
                ));
            }
            (_, None) => None,
        };
        if let Some(p) = &poll {
            metadata.insert("poll".into(), p.stored());
        }
        let metadata = Value::Object(metadata).to_string();
        if conv_kind == "direct"
            && let Some(other) = access.members.iter().find(|m| **m != ctx.user_id)
            && self
                .d
                .db
                .blocks()
                .either_blocks(ctx.user_id, *other)
                .await?
        {
            return Err(AppError::Forbidden("you cannot message this user".into()));
        }
        if let Some(r) = req.reply_to {
            let ok = self
                .d
                .db
                .chat()
                .message(r)
                .await?
                .is_some_and(|m| m.conversation_id == id);
            if !ok {
                return Err(AppError::validation(
                    "reply_to",
                    "reply_to must be a message of this conversation",
                ));
            }
        }
        // A message may be its attachments alone (a photo, a document) without any text.
        let (content, ciphertext) =
            if attachments.is_empty() || req.content.is_some() || req.ciphertext.is_some() {
                match Self::body(
                    self.d.cfg.message_max_chars,
                    encrypted,
                    req.content,
                    req.ciphertext,
                )? {
                    Body::Plain(t) => (Some(t), None),
                    Body::Cipher(b) => (None, Some(b)),
                }
            } else {
                (None, None)
            };
        crate::drive::access::check_attachable(&self.d, ctx.user_id, &attachments).await?;
        let mentions = match &content {
            Some(text) => mentions::resolve(&self.d, id, conv_kind, ctx.user_id, text).await?,
            None => String::new(),
        };
        Ok(NewMessage {
            id: MessageId::new(),
            conversation_id: id,
            sender_id: ctx.user_id,
            client_message_id: req.client_message_id,
            kind: kind.to_string(),
            content,
            ciphertext,
            reply_to: req.reply_to,
            metadata,
            attachments,
            poll_closes_at: poll.and_then(|p| p.closes_at),
            mentions,
            now: Timestamp::now(),
        })
    }

    /// The attachment list of a send: file ids, each once, at most `MAX_ATTACHMENTS`.
    fn attachment_ids(raw: &[String]) -> AppResult<Vec<FileId>> {
        if raw.len() > MAX_ATTACHMENTS {
            return Err(AppError::validation(
                "attachments",
                format!("a message carries at most {MAX_ATTACHMENTS} files"),
            ));
        }
        let mut ids = Vec::with_capacity(raw.len());
        for r in raw {
            let id: FileId = r
                .parse()
                .map_err(|_| AppError::validation("attachments", "attachments are file ids"))?;
            if ids.contains(&id) {
                return Err(AppError::validation(
                    "attachments",
                    "each file is attached once",
                ));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    async fn view_one(&self, m: MessageRow) -> AppResult<MessageView> {
        let reactions = self
            .d
            .db
            .chat()
            .reaction_counts(m.conversation_id, m.seq, m.seq, None)
            .await?
            .into_iter()
            .map(|r| (r.emoji, r.count))
            .collect();
        let mut view = [MessageView::new(m, reactions)];
        self.fill_polls(&mut view).await?;
        let [view] = view;
        Ok(view)
    }

    /// History page: returns the items and whether more exist in the same direction.
    pub async fn history(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: i64,
    ) -> AppResult<(Vec<MessageView>, bool)> {
        self.membership(ctx, id).await?;
        // Older pages (scrolling back) tolerate lag: the read replica when there is one. The
        // newest page and catch-up (`after_seq`) read the primary, which has the caller's sends.
        let db = if before_seq.is_some() && after_seq.is_none() {
            &self.d.db_read
        } else {
            &self.d.db
        };
        let mut rows = db
            .chat()
            .messages(id, before_seq, after_seq, limit + 1)
            .await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let (lo, hi) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), m| {
            (lo.min(m.seq), hi.max(m.seq))
        });
        let mut reactions: BTreeMap<MessageId, (BTreeMap<String, i64>, Vec<String>)> =
            BTreeMap::new();
        if !rows.is_empty() {
            for r in self
                .d
                .db
                .chat()
                .reaction_counts(id, lo, hi, Some(ctx.user_id))
                .await?
            {
                let entry = reactions.entry(r.message_id).or_default();
                if r.mine {
                    entry.1.push(r.emoji.clone());
                }
                entry.0.insert(r.emoji, r.count);
            }
        }
        let mut items: Vec<MessageView> = rows
            .into_iter()
            .map(|m| {
                let (counts, mine) = reactions.remove(&m.id).unwrap_or_default();
                let mut view = MessageView::new(m, counts);
                view.my_reactions = Some(mine);
                view
            })
            .collect();
        self.fill_polls(&mut items).await?;
        self.fill_my_votes(ctx.user_id, &mut items).await?;
        Ok((items, has_more))
    }

    /// A message the caller can see (member of its conversation), else 404.
    async fn visible_message(
        &self,
        ctx: &AuthContext,
        id: MessageId,
    ) -> AppResult<(MessageRow, ConversationRow)> {
        let m = self
            .d
            .db
            .chat()
            .message(id)
            .await?
            .ok_or_else(|| AppError::NotFound("message".into()))?;
        let c = self
            .d
            .db
            .chat()
            .view(ctx.user_id, m.conversation_id)
            .await?
            .ok_or_else(|| AppError::NotFound("message".into()))?;
        Ok((m, c))
    }

    pub async fn edit(
        &self,
        ctx: &AuthContext,
        id: MessageId,
        content: Option<String>,
        ciphertext: Option<String>,
    ) -> AppResult<MessageView> {
        let (m, c) = self.visible_message(ctx, id).await?;
        if m.sender_id != ctx.user_id {
            return Err(AppError::Forbidden(
                "only the sender may edit a message".into(),
            ));
        }
        if m.deleted_at.is_some() {
            return Err(AppError::conflict("a deleted message cannot be edited"));
        }
        let (content, ciphertext) = match Self::body(
            self.d.cfg.message_max_chars,
            c.encrypted,
            content,
            ciphertext,
        )? {
            Body::Plain(t) => (Some(t), None),
            Body::Cipher(b) => (None, Some(b)),
        };
        let row = self
            .d
            .db
            .chat()
            .edit_message(
                id,
                content.as_deref(),
                ciphertext.as_deref(),
                Timestamp::now(),
            )
            .await?
            .ok_or_else(|| AppError::conflict("a deleted message cannot be edited"))?;
        let view = self.view_one(row).await?;
        let members = self.d.db.chat().member_ids(c.id).await?;
        self.d.emit(members, "message.updated", &view).await;
        Ok(view)
    }

    pub async fn delete_message(&self, ctx: &AuthContext, id: MessageId) -> AppResult<MessageView> {
        let (m, c) = self.visible_message(ctx, id).await?;
        let moderator = c.kind == "group" && (c.my_role == "owner" || c.my_role == "admin");
        if m.sender_id != ctx.user_id && !moderator {
            return Err(AppError::Forbidden(
                "only the sender or a group owner/admin may delete a message".into(),
            ));
        }
        let row = match self
            .d
            .db
            .chat()
            .delete_message(id, Timestamp::now())
            .await?
        {
            Some(r) => r,
            // Already a tombstone: deleting again changes nothing.
            None => return self.view_one(m).await,
        };
        let view = MessageView::new(row, BTreeMap::new());
        let members = self.d.db.chat().member_ids(c.id).await?;
        self.d.emit(members, "message.deleted", &view).await;
        Ok(view)
    }

    pub(crate) fn check_emoji(emoji: &str) -> AppResult<()> {
        let ok = !emoji.is_empty()
            && emoji.len() <= 32
            && emoji.graphemes(true).count() == 1
                        && !emoji.chars().any(|c| c.is_control() || c.is_whitespace())
            // Plain letters and digits are not emoji; keycaps such as 1️⃣ carry non-ASCII marks.
            && !emoji.is_ascii();
        if !ok {
            return Err(AppError::validation(
                "emoji",
                "emoji must be a single grapheme cluster of at most 32 bytes",
            ));
        }
        Ok(())
    }

    pub async fn react(
        &self,
        ctx: &AuthContext,
        id: MessageId,
        emoji: &str,
        add: bool,
    ) -> AppResult<MessageView> {
        // Membership first: a non-member gets 404 whatever they send.
        let (m, c) = self.visible_message(ctx, id).await?;
        Self::check_emoji(emoji)?;
        if m.deleted_at.is_some() {
            return Err(AppError::conflict("a deleted message takes no reactions"));
        }
        if add {
            let max = self.d.cfg.max_reactions_per_message as i64;
            if !self
                .d
                .db
                .chat()
                .add_reaction(id, ctx.user_id, emoji, max, Timestamp::now())
                .await?
            {
                return Err(AppError::LimitReached(format!(
                    "a message carries at most {max} different emoji"
                )));
            }
        } else {
            self.d
                .db
                .chat()
                .remove_reaction(id, ctx.user_id, emoji)
                .await?;
        }
        let view = self.view_one(m).await?;
        let members = self.d.db.chat().member_ids(c.id).await?;
        self.d
            .emit(members, "reaction.updated", &json!({"message_id": id, "conversation_id": c.id, "reactions": view.reactions, "user_id": ctx.user_id, "emoji": emoji, "added": add}))
            .await;
        Ok(view)
    }

    /// Moves the caller's read position forward and broadcasts the receipt.
    pub async fn mark_read(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        seq: i64,
    ) -> AppResult<i64> {
        let c = self.membership(ctx, id).await?;
        if seq < 0 {
            return Err(AppError::validation("seq", "seq must not be negative"));
        }
        match self.d.db.chat().mark_read(id, ctx.user_id, seq).await? {
            Some(read_seq) => {
                let members = self.d.db.chat().member_ids(id).await?;
                self.d.emit(members, "receipt.updated", &json!({"conversation_id": id, "user_id": ctx.user_id, "read_seq": read_seq})).await;
                Ok(read_seq)
            }
            None => Ok(c.read_seq),
        }
    }

    /// Read positions by member id, one page at a time.
    pub async fn receipts(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        after: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<(UserId, i64)>> {
        self.membership(ctx, id).await?;
        self.d.db.chat().receipts(id, after, limit).await
    }

    pub async fn search(
        &self,
        ctx: &AuthContext,
        q: &str,
        conversation: Option<ConversationId>,
        before: Option<MessageId>,
        limit: i64,
    ) -> AppResult<Vec<MessageView>> {
        let q = q.trim();
        if q.is_empty() || q.chars().count() > 200 || q.chars().any(char::is_control) {
            return Err(AppError::validation(
                "q",
                "search text must be 1-200 characters",
            ));
        }
        if let Some(cid) = conversation {
            self.membership(ctx, cid).await?;
        }
        // The primary: a message is findable as soon as its send answered (API.md §12).
        let rows = self
            .d
            .db
            .chat()
            .search(ctx.user_id, q, conversation, before, limit)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.view_one(r).await?);
        }
        Ok(out)
    }
}
