//! /v1/users: the caller's account, public profiles, search, blocks.

use crate::{
    dto::*,
    envelope::{ApiResult, done, ok},
    extract::{ApiJson, Auth, Client, ListQuery, encode_cursor, encode_keyset, parse_id},
    state::AppState,
};
use axum::extract::{Path, RawQuery, State};
use sc_core::{
    AppError,
    domain::{AvatarUrl, DisplayName},
    ids::UserId,
};
use sc_service::users::ProfilePatch;
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = [])), responses((status = 200, body = UserView)))]
pub async fn me(State(s): S, Auth(ctx): Auth) -> ApiResult<UserView> {
    Ok(ok(s.users.me(&ctx).await?.into()))
}

#[utoipa::path(patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])), request_body = PatchMeRequest,
    responses((status = 200, body = UserView), (status = 400)))]
pub async fn patch_me(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PatchMeRequest>,
) -> ApiResult<UserView> {
    let patch = ProfilePatch {
        display_name: b
            .display_name
            .map(|d| DisplayName::parse("display_name", &d))
            .transpose()?,
        avatar_url: b
            .avatar_url
            .map(|a| a.map(|u| AvatarUrl::parse("avatar_url", &u)).transpose())
            .transpose()?,
    };
    Ok(ok(s.users.update_profile(&ctx, patch).await?.into()))
}

#[utoipa::path(post, path = "/v1/users/me/password", tag = "users", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 200, body = Empty), (status = 400)))]
pub async fn change_password(
    State(s): S,
    Auth(ctx): Auth,
    Client(c): Client,
    ApiJson(b): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Value> {
    s.users
        .change_password(&ctx, &b.current_password, &b.new_password, &c)
        .await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/v1/users/me", tag = "users", security(("bearer" = [])), request_body = PasswordRequest,
    responses((status = 200, body = Empty), (status = 400)))]
pub async fn delete_me(
    State(s): S,
    Auth(ctx): Auth,
    Client(c): Client,
    ApiJson(b): ApiJson<PasswordRequest>,
) -> ApiResult<Value> {
    s.users.delete_account(&ctx, &b.password, &c).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProfileView), (status = 404)))]
pub async fn profile(State(s): S, Auth(_): Auth, Path(id): Path<String>) -> ApiResult<ProfileView> {
    let id: UserId = parse_id("id", &id)?;
    Ok(ok(s.users.profile(id).await?.into()))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    params(("q" = String, Query, description = "username or display-name prefix")),
    responses((status = 200, body = Page<ProfileView>)))]
pub async fn search(
    State(s): S,
    Auth(_): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ProfileView>> {
    let lq = ListQuery::parse(q.as_deref(), &["q"])?;
    let text = lq
        .params
        .get("q")
        .ok_or_else(|| AppError::validation("q", "q is required"))?;
    let rows = s
        .users
        .search(text, lq.cursor.as_deref(), lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |r| encode_cursor(&r.username),
        Into::into,
    )))
}

#[utoipa::path(post, path = "/v1/users/{id}/block", tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty), (status = 404)))]
pub async fn block(State(s): S, Auth(ctx): Auth, Path(id): Path<String>) -> ApiResult<Value> {
    s.users.block(&ctx, parse_id("id", &id)?).await?;
    Ok(done())
}

#[utoipa::path(delete, path = "/v1/users/{id}/block", tag = "users", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Empty)))]
pub async fn unblock(State(s): S, Auth(ctx): Auth, Path(id): Path<String>) -> ApiResult<Value> {
    s.users.unblock(&ctx, parse_id("id", &id)?).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/users/me/blocked", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Page<ProfileView>)))]
pub async fn blocked(
    State(s): S,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<ProfileView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let before = lq.keyset::<UserId>()?;
    let rows = s.users.blocked(&ctx, before, lq.limit + 1).await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |(p, at)| encode_keyset(*at, p.id),
        |(p, _)| p.into(),
    )))
}
