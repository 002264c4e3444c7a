//! /v1/files, /v1/folders, /v1/storage: the drive. Bytes go to and come from the blob store's
//! signed URLs, never through these routes.

use crate::{
    dto::*,
    envelope::{ApiError, ApiResult, created, done, ok},
    extract::{ApiJson, ListQuery, VerifiedAuth, encode_cursor, encode_keyset, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{AppError, ids::FileId};
use sc_db::drive_shares::Grantee;
use sc_service::drive::{
    DownloadLink, FileChange, FileView, NewUploadRequest, QuotaView, ShareView, UploadTicket,
    VersionView,
};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

fn file_id(raw: &str) -> Result<FileId, ApiError> {
    parse_id("id", raw)
}

/// The cursor of a list ordered by (name, id): the id first, as it never holds the separator.
fn file_cursor(f: &FileView) -> String {
    encode_cursor(&format!("{}|{}", f.id, f.name))
}

fn parse_file_cursor(lq: &ListQuery) -> Result<Option<(String, FileId)>, ApiError> {
    let Some(c) = &lq.cursor else {
        return Ok(None);
    };
    let bad = || ApiError(AppError::validation("cursor", "malformed cursor"));
    let (id, name) = c.split_once('|').ok_or_else(bad)?;
    Ok(Some((name.to_string(), id.parse().map_err(|_| bad())?)))
}

#[utoipa::path(post, path = "/v1/files/uploads", tag = "drive", security(("bearer" = [])), request_body = UploadRequest,
    responses((status = 201, body = UploadTicket, description = "PUT the bytes to upload_url, then complete"),
              (status = 403), (status = 404, description = "parent_id is not a folder of the caller's"),
              (status = 409, description = "a file of that name is already in the folder"),
              (status = 413, description = "over the per-file limit"),
              (status = 415, description = "type not allowed, or the extension does not fit it"),
              (status = 507, description = "the quota would be exceeded; details has used, quota, requested")))]
pub async fn init_upload(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<UploadRequest>,
) -> ApiResult<UploadTicket> {
    let req = NewUploadRequest {
        name: b.name,
        size: b.size,
        content_type: b.content_type,
        parent_id: b.parent_id,
        encrypted: b.encrypted.unwrap_or(false),
        sha256: b.sha256,
    };
    Ok(created(s.drive.init_upload(&ctx, req).await?))
}

#[utoipa::path(post, path = "/v1/files/{id}/complete", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = FileView, description = "the file, ready"),
              (status = 400, description = "no object, not the declared size, or not the declared sha256: the upload is given up"),
              (status = 403), (status = 404), (status = 409, description = "no upload pending"),
              (status = 415, description = "the bytes are not of the declared type: the upload is given up")))]
pub async fn complete(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<FileView> {
    Ok(ok(s.drive.complete(&ctx, file_id(&id)?).await?))
}

#[utoipa::path(get, path = "/v1/files", tag = "drive", security(("bearer" = [])),
    params(("parent_id" = Option<uuid::Uuid>, Query, description = "a folder; the root without it"),
           ("q" = Option<String>, Query, min_length = 1, max_length = 255, description = "search names across all the caller's files")),
    responses((status = 200, body = Page<FileView>, description = "by name"), (status = 403), (status = 404)))]
pub async fn list(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<FileView>> {
    let lq = ListQuery::parse(q.as_deref(), &["parent_id", "q"])?;
    let parent = lq
        .params
        .get("parent_id")
        .map(|p| parse_id::<FileId>("parent_id", p))
        .transpose()?;
    let after = parse_file_cursor(&lq)?;
    let rows = s
        .drive
        .list(
            &ctx,
            parent,
            lq.params.get("q").map(String::as_str),
            after,
            lq.limit + 1,
        )
        .await?;
    Ok(ok(Page::from_rows(rows, lq.limit, file_cursor, |f| f)))
}

#[utoipa::path(get, path = "/v1/files/{id}", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = FileView), (status = 403), (status = 404)))]
pub async fn get(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<FileView> {
    Ok(ok(s.drive.get(&ctx, file_id(&id)?).await?))
}

#[utoipa::path(patch, path = "/v1/files/{id}", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = PatchFileRequest,
    responses((status = 200, body = FileView), (status = 403), (status = 404), (status = 409, description = "the name is taken in the target folder")))]
pub async fn patch(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PatchFileRequest>,
) -> ApiResult<FileView> {
    let change = FileChange {
        name: b.name,
        parent_id: b.parent_id,
    };
    Ok(ok(s.drive.update(&ctx, file_id(&id)?, change).await?))
}

#[utoipa::path(delete, path = "/v1/files/{id}", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty, description = "deleted with every version (a folder with its contents); quota released"),
              (status = 403), (status = 404)))]
pub async fn delete(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<Value> {
    s.drive.delete(&ctx, file_id(&id)?).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/files/{id}/download", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DownloadLink, description = "a signed URL, valid for download_url_ttl_seconds"),
              (status = 403), (status = 404), (status = 409, description = "a folder, or a file whose upload is not complete")))]
pub async fn download(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
) -> ApiResult<DownloadLink> {
    Ok(ok(s.drive.download(&ctx, file_id(&id)?).await?))
}

#[utoipa::path(post, path = "/v1/folders", tag = "drive", security(("bearer" = [])), request_body = FolderRequest,
    responses((status = 201, body = FileView), (status = 403), (status = 404, description = "parent_id is not a folder of the caller's"),
              (status = 409, description = "the name is taken in that folder")))]
pub async fn create_folder(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    ApiJson(b): ApiJson<FolderRequest>,
) -> ApiResult<FileView> {
    Ok(created(
        s.drive.create_folder(&ctx, &b.name, b.parent_id).await?,
    ))
}

#[utoipa::path(get, path = "/v1/storage/quota", tag = "drive", security(("bearer" = [])),
    responses((status = 200, body = QuotaView, description = "bytes used, reserved by pending uploads, the quota and what is left")))]
pub async fn quota(State(s): S, VerifiedAuth(ctx): VerifiedAuth) -> ApiResult<QuotaView> {
    Ok(ok(s.drive.quota(&ctx).await?))
}

#[utoipa::path(post, path = "/v1/files/{id}/versions", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = NewVersionRequest,
    responses((status = 201, body = UploadTicket, description = "PUT the bytes, then POST /v1/files/{id}/complete makes them the current version"),
              (status = 403), (status = 404),
              (status = 409, description = "an upload of this file is in progress, or its first upload is not complete"),
              (status = 413), (status = 415), (status = 507)))]
pub async fn init_version(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NewVersionRequest>,
) -> ApiResult<UploadTicket> {
    Ok(created(
        s.drive
            .init_version(
                &ctx,
                file_id(&id)?,
                b.size,
                &b.content_type,
                b.sha256.as_deref(),
            )
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/files/{id}/versions", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<VersionView>, description = "ready versions, newest first"), (status = 403), (status = 404)))]
pub async fn versions(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<VersionView>> {
    let id = file_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let before = lq
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError(AppError::validation("cursor", "malformed cursor")))
        })
        .transpose()?;
    let rows = s.drive.versions(&ctx, id, before, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |v| encode_cursor(&v.version.to_string()),
        |v| v,
    )))
}

#[utoipa::path(post, path = "/v1/files/{id}/versions/{n}/restore", tag = "drive", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("n" = i64, Path, minimum = 1)),
    responses((status = 200, body = FileView, description = "a new current version with version n's bytes"),
              (status = 403), (status = 404), (status = 409), (status = 507)))]
pub async fn restore(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, n)): Path<(String, String)>,
) -> ApiResult<FileView> {
    let n = n
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError(AppError::validation("n", "a version number (1 or more)")))?;
    Ok(ok(s.drive.restore(&ctx, file_id(&id)?, n).await?))
}

#[utoipa::path(post, path = "/v1/files/{id}/shares", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = ShareRequest,
    responses((status = 201, body = ShareView, description = "shared"),
              (status = 200, body = ShareView, description = "the grantee's existing share, with the permission given now"),
              (status = 403, description = "only the owner shares"), (status = 404, description = "no such file, or a conversation the owner is not in"),
              (status = 409, description = "the upload is not complete")))]
pub async fn share(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ShareRequest>,
) -> ApiResult<ShareView> {
    let grantee = match (b.user_id, b.conversation_id) {
        (Some(u), None) => Grantee::User(u),
        (None, Some(c)) => Grantee::Conversation(c),
        _ => {
            return Err(AppError::validation(
                "user_id",
                "give exactly one of user_id and conversation_id",
            )
            .into());
        }
    };
    let (view, is_new) = s
        .drive
        .share(&ctx, file_id(&id)?, grantee, &b.permission)
        .await?;
    Ok(if is_new { created(view) } else { ok(view) })
}

#[utoipa::path(get, path = "/v1/files/{id}/shares", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<ShareView>, description = "oldest first"), (status = 403, description = "only the owner lists shares"), (status = 404)))]
pub async fn shares(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ShareView>> {
    let id = file_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let rows = s.drive.shares(&ctx, id, lq.keyset()?, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |v| encode_keyset(v.created_at, v.id),
        |v| v,
    )))
}

#[utoipa::path(delete, path = "/v1/files/{id}/shares/{share_id}", tag = "drive", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("share_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty, description = "revoked; the grantee's access ends at once"),
              (status = 403, description = "only the owner revokes shares"), (status = 404)))]
pub async fn unshare(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, share)): Path<(String, String)>,
) -> ApiResult<Value> {
    let share = parse_id("share_id", &share)?;
    s.drive.unshare(&ctx, file_id(&id)?, share).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/files/shared-with-me", tag = "drive", security(("bearer" = [])),
    responses((status = 200, body = Page<FileView>, description = "files and folders shared with the caller or their conversations, most recently shared first")))]
pub async fn shared_with_me(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<FileView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let rows = s
        .drive
        .shared_with_me(&ctx, lq.keyset()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |(f, at)| encode_keyset(*at, f.id),
        |(f, _)| f,
    )))
}
