//! Public links to drive files: the owner's side under /v1/files/{id}/links, and the public
//! side under /v1/links/{token}, which needs no account (the token is the credential).

use crate::{
    dto::{Empty, LinkDownloadRequest, LinkRequest, Page},
    envelope::{ApiError, ApiResult, created, done, ok},
    extract::{ApiJson, ListQuery, VerifiedAuth, encode_keyset, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{AppError, ids::FileId, time::Timestamp};
use sc_service::drive::{DownloadLink, LinkCreated, LinkView, NewLinkRequest, PublicLinkView};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

fn file_id(raw: &str) -> Result<FileId, ApiError> {
    parse_id("id", raw)
}

#[utoipa::path(post, path = "/v1/files/{id}/links", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body = LinkRequest,
    responses((status = 201, body = LinkCreated, description = "the link; its token is shown only now"),
              (status = 403, description = "only the owner creates links"), (status = 404),
              (status = 409, description = "the upload is not complete")))]
pub async fn create_link(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<LinkRequest>,
) -> ApiResult<LinkCreated> {
    let id = file_id(&id)?;
    let expires_at = b
        .expires_at
        .as_deref()
        .map(|e| {
            Timestamp::parse_rfc3339(e).ok_or_else(|| {
                ApiError(AppError::validation(
                    "expires_at",
                    "an RFC 3339 date-time with an offset",
                ))
            })
        })
        .transpose()?;
    let req = NewLinkRequest {
        expires_at,
        password: b.password,
        max_downloads: b.max_downloads,
    };
    Ok(created(s.drive.create_link(&ctx, id, req).await?))
}

#[utoipa::path(get, path = "/v1/files/{id}/links", tag = "drive", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Page<LinkView>, description = "oldest first, without tokens"),
              (status = 403, description = "only the owner lists links"), (status = 404)))]
pub async fn links(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<LinkView>> {
    let id = file_id(&id)?;
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let rows = s.drive.links(&ctx, id, lq.keyset()?, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |v| encode_keyset(v.created_at, v.id),
        |v| v,
    )))
}

#[utoipa::path(delete, path = "/v1/files/{id}/links/{link_id}", tag = "drive", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("link_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty, description = "revoked; the token stops working at once"),
              (status = 403, description = "only the owner revokes links"), (status = 404)))]
pub async fn revoke_link(
    State(s): S,
    VerifiedAuth(ctx): VerifiedAuth,
    Path((id, link)): Path<(String, String)>,
) -> ApiResult<Value> {
    let link = parse_id("link_id", &link)?;
    s.drive.revoke_link(&ctx, file_id(&id)?, link).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/links/{token}", tag = "drive", params(("token" = String, Path)),
    responses((status = 200, body = PublicLinkView, description = "what the link shares"),
              (status = 404, description = "unknown, revoked, expired or used up"), (status = 429)))]
pub async fn link_info(State(s): S, Path(token): Path<String>) -> ApiResult<PublicLinkView> {
    Ok(ok(s.drive.link_info(&token).await?))
}

#[utoipa::path(post, path = "/v1/links/{token}/download", tag = "drive", params(("token" = String, Path)),
    request_body = LinkDownloadRequest,
    responses((status = 200, body = DownloadLink, description = "a signed URL; counts one download"),
              (status = 403, description = "the password is missing or wrong"),
              (status = 404, description = "unknown, revoked, expired or used up"),
              (status = 429, description = "too many password attempts on this link, or requests from this address")))]
pub async fn link_download(
    State(s): S,
    Path(token): Path<String>,
    ApiJson(b): ApiJson<LinkDownloadRequest>,
) -> ApiResult<DownloadLink> {
    Ok(ok(s
        .drive
        .link_download(&token, b.password.as_deref())
        .await?))
}
