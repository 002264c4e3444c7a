//! /v1/auth: registration, login, tokens, sessions, email verification, password reset, 2FA.

use crate::{
    dto::*,
    envelope::{ApiError, ApiResult, created, done, ok},
    extract::{ApiJson, Auth, Client, ListQuery, encode_keyset, parse_id},
    state::AppState,
};
use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use sc_core::{
    AppError,
    domain::{DisplayName, Email, Username, short_text},
    ids::SessionId,
};
use sc_service::{
    ClientInfo,
    auth::{LoginId, Registration, TokenPair},
};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

fn device_name(raw: Option<String>) -> Result<Option<String>, ApiError> {
    Ok(raw
        .map(|d| short_text("device_name", &d, 64))
        .transpose()?
        .filter(|d| !d.is_empty()))
}

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenPairView), (status = 400), (status = 409, description = "email or username taken")))]
pub async fn register(
    State(s): S,
    Client(client): Client,
    ApiJson(b): ApiJson<RegisterRequest>,
) -> ApiResult<TokenPairView> {
    Ok(created(register_pair(&s, &client, b).await?.into()))
}

/// Registration shared by the JSON route and its cookie variant (`routes::browser`).
pub(crate) async fn register_pair(
    s: &AppState,
    client: &ClientInfo,
    b: RegisterRequest,
) -> Result<TokenPair, ApiError> {
    let reg = Registration {
        email: Email::parse("email", &b.email)?,
        username: Username::parse("username", &b.username)?,
        display_name: DisplayName::parse("display_name", &b.display_name)?,
        password: b.password,
        device_name: device_name(b.device_name)?,
    };
    Ok(s.auth.register(reg, client).await?)
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPairView), (status = 401, description = "wrong credentials, or a second factor is needed"), (status = 403, description = "the account is banned"), (status = 423, description = "locked after repeated failures; details.retry_after_seconds"), (status = 429)))]
pub async fn login(
    State(s): S,
    Client(client): Client,
    ApiJson(b): ApiJson<LoginRequest>,
) -> ApiResult<TokenPairView> {
    Ok(ok(login_pair(&s, &client, b).await?.into()))
}

/// Login shared by the JSON route and its cookie variant (`routes::browser`).
pub(crate) async fn login_pair(
    s: &AppState,
    client: &ClientInfo,
    b: LoginRequest,
) -> Result<TokenPair, ApiError> {
    let id = match (b.email, b.username) {
        (Some(e), None) => LoginId::Email(Email::parse("email", &e)?),
        // An impossible username cannot exist: it is answered like any unknown account.
        (None, Some(u)) => {
            Username::parse("username", &u).map_or(LoginId::NoSuchAccount, LoginId::Username)
        }
        _ => {
            return Err(
                AppError::validation("email", "give exactly one of email or username").into(),
            );
        }
    };
    Ok(s.auth
        .login(
            id,
            &b.password,
            b.totp_code.as_deref(),
            device_name(b.device_name)?,
            client,
        )
        .await?)
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPairView), (status = 401),
              (status = 403, description = "the account is banned (`details.banned_until`)")))]
pub async fn refresh(
    State(s): S,
    Client(client): Client,
    ApiJson(b): ApiJson<RefreshRequest>,
) -> ApiResult<TokenPairView> {
    Ok(ok(s.auth.refresh(&b.refresh_token, &client).await?.into()))
}

/// Takes no body; whatever is sent is ignored (API.md §12).
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 200, body = Empty), (status = 401)))]
pub async fn logout(State(s): S, Auth(ctx): Auth) -> ApiResult<Value> {
    s.auth.logout(&ctx).await?;
    Ok(done())
}

#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])), responses((status = 200, body = Empty), (status = 401)))]
pub async fn logout_all(State(s): S, Auth(ctx): Auth) -> ApiResult<Value> {
    s.auth.logout_all(&ctx).await?;
    Ok(done())
}

#[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth", security(("bearer" = [])),

    responses((status = 200, body = Page<SessionView>, description = "live sessions, most recently used first")))]
pub async fn sessions(
    State(s): S,
    Auth(ctx): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Page<SessionView>> {
    let lq = ListQuery::parse(q.as_deref(), &[])?;
    let rows = s
        .auth
        .list_sessions(&ctx, lq.keyset::<SessionId>()?, lq.limit + 1)
        .await?;
    Ok(ok(Page::from_rows(
        rows,
        lq.limit,
        |r| encode_keyset(r.last_seen_at, r.id),
        |r| SessionView::new(r, ctx.session_id),
    )))
}

#[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "session id")), responses((status = 200, body = Empty), (status = 404)))]
pub async fn end_session(State(s): S, Auth(ctx): Auth, Path(id): Path<String>) -> ApiResult<Value> {
    let id: SessionId = parse_id("id", &id)?;
    s.auth.end_own_session(&ctx, id).await?;
    Ok(done())
}

#[utoipa::path(post, path = "/v1/auth/password-reset/request", tag = "auth", request_body = ResetRequest, responses((status = 202, body = Empty)))]
pub async fn reset_request(
    State(s): S,
    Client(client): Client,
    ApiJson(b): ApiJson<ResetRequest>,
) -> ApiResult<Value> {
    // A malformed address is reported; a well-formed unknown one is not (no enumeration).
    let email = Email::parse("email", &b.email)?;
    s.auth.request_password_reset(&email, &client).await?;
    let mut r = done();
    r.0 = StatusCode::ACCEPTED;
    Ok(r)
}

#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm, responses((status = 200, body = Empty), (status = 400)))]
pub async fn reset_confirm(
    State(s): S,
    Client(client): Client,
    ApiJson(b): ApiJson<ResetConfirm>,
) -> ApiResult<Value> {
    s.auth
        .confirm_password_reset(&b.token, &b.new_password, &client)
        .await?;
    Ok(done())
}

#[utoipa::path(post, path = "/v1/auth/email/verify", tag = "auth", request_body = TokenRequest, responses((status = 200, body = Empty), (status = 400)))]
pub async fn verify_email(State(s): S, ApiJson(b): ApiJson<TokenRequest>) -> ApiResult<Value> {
    s.auth.verify_email(&b.token).await?;
    Ok(done())
}

#[utoipa::path(post, path = "/v1/auth/email/resend", tag = "auth", security(("bearer" = [])), responses((status = 200, body = Empty), (status = 409), (status = 429)))]
pub async fn resend_verification(State(s): S, Auth(ctx): Auth) -> ApiResult<Value> {
    s.auth.resend_verification(&ctx).await?;
    Ok(done())
}

#[utoipa::path(post, path = "/v1/auth/2fa/setup", tag = "auth", security(("bearer" = [])), responses((status = 200, body = TotpSetupView), (status = 409)))]
pub async fn totp_setup(State(s): S, Auth(ctx): Auth) -> ApiResult<TotpSetupView> {
    let t = s.auth.totp_setup(&ctx).await?;
    Ok(ok(TotpSetupView {
        secret: t.secret,
        otpauth_uri: t.otpauth_uri,
    }))
}

#[utoipa::path(post, path = "/v1/auth/2fa/enable", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodesView), (status = 400, description = "wrong code"), (status = 409, description = "no setup pending, or already enabled"), (status = 429, description = "re-authentication budget spent")))]
pub async fn totp_enable(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<CodeRequest>,
) -> ApiResult<RecoveryCodesView> {
    Ok(ok(RecoveryCodesView {
        recovery_codes: s.auth.totp_enable(&ctx, &b.code).await?,
    }))
}

#[utoipa::path(post, path = "/v1/auth/2fa/disable", tag = "auth", security(("bearer" = [])), request_body = TotpDisableRequest,
    responses((status = 200, body = Empty), (status = 400, description = "wrong password or code"), (status = 409, description = "two-factor authentication is not enabled"), (status = 429, description = "re-authentication budget spent")))]
pub async fn totp_disable(
    State(s): S,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<TotpDisableRequest>,
) -> ApiResult<Value> {
    s.auth.totp_disable(&ctx, &b.password, &b.code).await?;
    Ok(done())
}
