//! /v1/conversations, /v1/messages, /v1/search: chat.

use crate::{
    dto::*,
    envelope::{ApiResult, created, done, ok},
    extract::{
        ApiJson, ListQuery, OptionalJson, VerifiedAuth, encode_cursor, encode_keyset, parse_id,
    },
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{
    AppError,
    ids::{ConversationId, MessageId, UserId},
};
use sc_service::chat::{
    ConversationView, MemberView, MessageView, NewConversationRequest, SendRequest,
};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

fn conv_id(raw: &str) -> Result<ConversationId, crate::envelope::ApiError> {
    parse_id("id", raw)
}

#[utoipa::path(post, path = "/v1/conversations", tag = "chat", security(("bearer" = [])), request_body = CreateConversationRequest,
    responses((status = 201, body = ConversationView), (status = 200, body = ConversationView, description = "the existing direct conversation")))]
pub async fn create(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<CreateConversationRequest>,
) -> ApiResult<ConversationView> {
    let req = NewConversationRequest {
        kind: b.kind,
        member_ids: b.member_ids,
        title: b.title,
        encrypted: b.encrypted.unwrap_or(false),
    };
    let (view, is_new) = s.chat.create(&ctx, req).await?;
    Ok(if is_new { created(view) } else { ok(view) })
}

#[utoipa::path(get, path = "/v1/conversations", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = Page<ConversationView>)))]
pub async fn list(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ConversationView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let before = lq.keyset::<ConversationId>()?;
    let rows = s.chat.list(&ctx, before, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |c| encode_keyset(c.last_activity_at, c.id),
        |c| c,
    )))
}

#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ConversationView), (status = 404)))]
pub async fn get(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<ConversationView> {
    Ok(ok(s.chat.get(&ctx, conv_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = PatchConversationRequest, responses((status = 200, body = ConversationView), (status = 403), (status = 404)))]
pub async fn patch(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PatchConversationRequest>,
) -> ApiResult<ConversationView> {
    let patch = sc_service::chat::ConversationPatch {
        title: b.title,
        avatar_url: b.avatar_url,
        ai_enabled: b.ai_enabled,
        retention_days: b.retention_days,
    };
    Ok(ok(s.chat.update(&ctx, conv_id(&id)?, patch).await?))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty), (status = 403), (status = 404)))]
pub async fn delete(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<Value> {
    s.chat.delete(&ctx, conv_id(&id)?).await?;
    Ok(done())
}

fn member_cursor(m: &MemberView) -> String {
    encode_keyset(m.joined_at, m.user_id)
}

#[utoipa::path(get, path = "/v1/conversations/{id}/members", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<MemberView>, description = "members in joining order"), (status = 404)))]
pub async fn members(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<MemberView>> {
    let id = conv_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let after = lq.keyset::<UserId>()?;
    let rows = s.chat.members(&ctx, id, after, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(rows, lq.limit, member_cursor, |m| m)))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/members", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = AddMembersRequest,
    responses((status = 200, body = Page<MemberView>, description = "the first page of the members, as GET answers it"), (status = 403), (status = 404)))]
pub async fn add_members(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AddMembersRequest>,
) -> ApiResult<Page<MemberView>> {
    let limit = ListQuery::DEFAULT_LIMIT;
    let rows = s
        .chat
        .add_members(&ctx, conv_id(&id)?, b.user_ids, limit + 1)
        .await?;
    Ok(ok(Page::from_rows(rows, limit, member_cursor, |m| m)))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}/members/{user_id}", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)), responses((status = 200, body = Empty), (status = 403), (status = 404)))]
pub async fn remove_member(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Value> {
    let user: UserId = parse_id("user_id", &user)?;
    s.chat.remove_member(&ctx, conv_id(&id)?, user).await?;
    Ok(done())
}

#[utoipa::path(patch, path = "/v1/conversations/{id}/members/{user_id}", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)), request_body = RoleRequest,
    responses((status = 200, body = MemberView), (status = 403), (status = 404)))]
pub async fn set_role(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, user)): Path<(String, String)>,
    ApiJson(b): ApiJson<RoleRequest>,
) -> ApiResult<MemberView> {
    let user: UserId = parse_id("user_id", &user)?;
    Ok(ok(s
        .chat
        .set_role(&ctx, conv_id(&id)?, user, &b.role)
        .await?))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = SendMessageRequest,
    responses((status = 201, body = MessageView), (status = 200, body = MessageView, description = "a retry: the original"), (status = 404), (status = 413), (status = 429)))]
pub async fn send(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SendMessageRequest>,
) -> ApiResult<MessageView> {
    let req = SendRequest {
        client_message_id: b.client_message_id,
        kind: b.kind,
        content: b.content,
        ciphertext: b.ciphertext,
        reply_to: b.reply_to,
        attachments: b.attachments,
        metadata: b.metadata,
    };
    let (view, is_new) = s.chat.send(&ctx, conv_id(&id)?, req).await?;
    Ok(if is_new { created(view) } else { ok(view) })
}

fn seq_param(lq: &ListQuery, name: &str) -> Result<Option<i64>, crate::envelope::ApiError> {
    lq.params
        .get(name)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| AppError::validation(name, "must be a non-negative integer").into())
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("before_seq" = Option<i64>, Query, minimum = 0), ("after_seq" = Option<i64>, Query, minimum = 0), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = MessagePage), (status = 404)))]
pub async fn history(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<MessagePage> {
    let id = conv_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &["before_seq", "after_seq"])?;
    if lq.cursor.is_some() {
        return Err(AppError::validation(
            "cursor",
            "message history pages by before_seq/after_seq, not cursor",
        )
        .into());
    }
    let (items, has_more) = s
        .chat
        .history(
            &ctx,
            id,
            seq_param(&lq, "before_seq")?,
            seq_param(&lq, "after_seq")?,
            lq.limit,
        )
        .await?;
    Ok(ok(MessagePage { items, has_more }))
}

#[utoipa::path(patch, path = "/v1/messages/{id}", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = EditMessageRequest, responses((status = 200, body = MessageView), (status = 403), (status = 404), (status = 409)))]
pub async fn edit(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EditMessageRequest>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.edit(&ctx, id, b.content, b.ciphertext).await?))
}

#[utoipa::path(delete, path = "/v1/messages/{id}", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MessageView), (status = 403), (status = 404)))]
pub async fn delete_message(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.delete_message(&ctx, id).await?))
}

#[utoipa::path(post, path = "/v1/messages/{id}/reactions", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = ReactionRequest, responses((status = 200, body = MessageView), (status = 404), (status = 409)))]
pub async fn react(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReactionRequest>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.react(&ctx, id, &b.emoji, true).await?))
}

#[utoipa::path(delete, path = "/v1/messages/{id}/reactions/{emoji}", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("emoji" = String, Path, description = "percent-encoded")), responses((status = 200, body = MessageView), (status = 404)))]
pub async fn unreact(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, emoji)): Path<(String, String)>,
) -> ApiResult<MessageView> {
    let id: MessageId = parse_id("id", &id)?;
    Ok(ok(s.chat.react(&ctx, id, &emoji, false).await?))
}

#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = ReadRequest, responses((status = 200, body = ReadView), (status = 404)))]
pub async fn read(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReadRequest>,
) -> ApiResult<ReadView> {
    Ok(ok(ReadView {
        read_seq: s.chat.mark_read(&ctx, conv_id(&id)?, b.seq).await?,
    }))
}

#[utoipa::path(get, path = "/v1/conversations/{id}/receipts", tag = "chat", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<ReceiptView>, description = "read positions by member id"), (status = 404)))]
pub async fn receipts(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ReceiptView>> {
    let id = conv_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let rows = s
        .chat
        .receipts(&ctx, id, lq.id_cursor()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |(u, _)| encode_cursor(&u.to_string()),
        |(u, r)| ReceiptView {
            user_id: u.to_string(),
            read_seq: r,
        },
    )))
}

#[utoipa::path(get, path = "/v1/search/messages", tag = "chat", security(("bearer" = [])),
    params(("q" = String, Query, min_length = 1, max_length = 200), ("conversation_id" = Option<uuid::Uuid>, Query)),
    responses((status = 200, body = Page<MessageView>), (status = 404, description = "conversation_id names a conversation the caller is not in")))]
pub async fn search(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<MessageView>> {
    let lq = ListQuery::parse(q.as_deref(), &["q", "conversation_id"])?;
    let text = lq
        .params
        .get("q")
        .ok_or_else(|| AppError::validation("q", "q is required"))?;
    let conversation = lq
        .params
        .get("conversation_id")
        .map(|c| parse_id::<ConversationId>("conversation_id", c))
        .transpose()?;
    let before = lq.id_cursor::<MessageId>()?;
    let rows = s
        .chat
        .search(&ctx, text, conversation, before, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |m| encode_cursor(&m.id.to_string()),
        |m| m,
    )))
}

#[utoipa::path(put, path = "/v1/conversations/{id}/mute", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body(content = MuteRequest, description = "optional: without `until` the mute has no end"),
    responses((status = 200, body = ConversationView, description = "with muted_until set"), (status = 404)))]
pub async fn mute(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<MuteRequest>,
) -> ApiResult<ConversationView> {
    Ok(ok(s
        .chat
        .mute(&ctx, conv_id(&id)?, b.until.as_deref())
        .await?))
}

#[utoipa::path(delete, path = "/v1/conversations/{id}/mute", tag = "chat", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ConversationView, description = "muted_until is null"), (status = 404)))]
pub async fn unmute(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<ConversationView> {
    Ok(ok(s.chat.unmute(&ctx, conv_id(&id)?).await?))
}
