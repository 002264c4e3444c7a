//! Extractors that parse input once and answer bad input with an enveloped 4xx.

use crate::{envelope::ApiError, state::AppState};
use axum::{
    body::Body,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Limited};
use sc_core::AppError;
use sc_service::{AuthContext, ClientInfo};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// A JSON body: `application/json` only (415 otherwise), at most `body_limit_bytes` (checked on
/// Content-Length before reading and again while streaming), valid UTF-8, nested at most
/// `json_max_depth` deep, and free of unknown fields (the DTOs deny them).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(req, state.cfg.body_limit_bytes).await?;
        let value = parse_json(&bytes, state.cfg.json_max_depth)?;
        Ok(ApiJson(value))
    }
}

/// Bodies of MLS commits: a commit, its welcome and group info may each be 1 MiB (API.md §12).
pub const LARGE_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// `ApiJson` with the larger limit of the MLS commits route.
pub struct LargeJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for LargeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limit = state.cfg.body_limit_bytes.max(LARGE_BODY_LIMIT);
        let bytes = read_json_body(req, limit).await?;
        Ok(LargeJson(parse_json(&bytes, state.cfg.json_max_depth)?))
    }
}

/// A JSON body that may be left out: no body at all (and no Content-Type) means `T::default()`;
/// otherwise as `ApiJson`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<Arc<AppState>> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let no_type = !req.headers().contains_key(header::CONTENT_TYPE);
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0");
        if no_type && empty {
            return Ok(OptionalJson(T::default()));
        }
        let ApiJson(value) = ApiJson::from_request(req, state).await?;
        Ok(OptionalJson(value))
    }
}

pub async fn read_json_body(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(AppError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        )
        .into());
    }
    let too_large = || {
        ApiError(AppError::PayloadTooLarge(format!(
            "request body exceeds {limit} bytes"
        )))
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let body: Body = req.into_body();
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(AppError::validation("body", "could not read the request body").into()),
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(AppError::validation("body", "body is not valid UTF-8").into());
    }
    if json_depth_exceeds(bytes, max_depth) {
        return Err(AppError::validation(
            "body",
            format!("JSON nested deeper than {max_depth} levels"),
        )
        .into());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde names unknown and missing fields in its message; surface them as the field.
        let field = quoted_field(&msg)
            .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"));
        let field = field.unwrap_or(if path == "." {
            "body".to_string()
        } else {
            path
        });
        let reason = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ApiError(AppError::validation(field, reason))
    })
}

/// The field in serde's "unknown field `x`, expected …" or "missing field `x`". An unknown
/// field's name is the client's and may itself hold backticks: it ends where serde's own text
/// (which names only our fields) begins.
fn quoted_field(msg: &str) -> Option<String> {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let end = rest
            .rfind("`, expected ")
            .or_else(|| rest.rfind("`, there are no fields"))?;
        return Some(rest[..end].to_string());
    }
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest[..rest.rfind('`')?].to_string())
}

/// Scans raw JSON (outside strings) for nesting beyond `max` without building it.
fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The authenticated caller (set by the `require_auth` middleware).
pub struct Auth(pub AuthContext);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthContext>()
            .copied()
            .map(Auth)
            .ok_or_else(|| AppError::unauthorized().into())
    }
}

/// The administrator of an admin route (set by the `admin_gate` middleware).
pub struct Admin(pub sc_core::ids::UserId);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<crate::middleware::AdminActor>()
            .map(|a| Admin(a.0))
            .ok_or_else(|| AppError::Forbidden("administrators only".into()).into())
    }
}

/// The authenticated caller, who must also have a verified email when the server is configured
/// with `require_verified_email` (403 EMAIL_NOT_VERIFIED otherwise). For messaging, calls and
/// uploads.
pub struct VerifiedAuth(pub AuthContext);

impl FromRequestParts<Arc<AppState>> for VerifiedAuth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Auth(ctx) = Auth::from_request_parts(parts, state).await?;
        if state.cfg.require_verified_email && !ctx.email_verified {
            return Err(AppError::EmailNotVerified.into());
        }
        Ok(VerifiedAuth(ctx))
    }
}

/// The client's address and user agent (set by the client-ip middleware).
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<crate::middleware::ClientIp>()
            .map(|c| c.0.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().filter(|c| !c.is_control()).take(256).collect());
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// Query parameters, parsed strictly: `limit` 1–100 (default 20), an opaque `cursor`, and the
/// other keys a route allows.
pub struct ListQuery {
    pub limit: i64,
    pub cursor: Option<String>,
    pub params: HashMap<String, String>,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: i64 = 20;
    pub const MAX_LIMIT: i64 = 100;

    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| ApiError(AppError::validation("query", "malformed query string")))?;
        let mut params = HashMap::new();
        let (mut limit, mut cursor) = (Self::DEFAULT_LIMIT, None);
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => {
                    limit = v
                        .parse::<i64>()
                        .ok()
                        .filter(|l| (1..=Self::MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError(AppError::validation(
                                "limit",
                                "limit must be an integer from 1 to 100",
                            ))
                        })?;
                }
                "cursor" => {
                    let decoded = URL_SAFE_NO_PAD
                        .decode(v.as_bytes())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| {
                            ApiError(AppError::validation("cursor", "malformed cursor"))
                        })?;
                    cursor = Some(decoded);
                }
                other if allowed.contains(&other) => {
                    params.insert(k, v);
                }
                _ => return Err(AppError::validation(k.clone(), "unknown query parameter").into()),
            }
        }
        Ok(Self {
            limit,
            cursor,
            params,
        })
    }
}

impl ListQuery {
    /// A keyset cursor `(time, id)` as written by `encode_keyset`; malformed → 400.
    pub fn keyset<Id: std::str::FromStr>(
        &self,
    ) -> Result<Option<(sc_core::time::Timestamp, Id)>, ApiError> {
        let Some(c) = &self.cursor else {
            return Ok(None);
        };
        let bad = || ApiError(AppError::validation("cursor", "malformed cursor"));
        let (t, id) = c.split_once('|').ok_or_else(bad)?;
        Ok(Some((
            sc_core::time::Timestamp(t.parse().map_err(|_| bad())?),
            id.parse::<Id>().map_err(|_| bad())?,
        )))
    }
}

impl ListQuery {
    /// A cursor that is one id (lists ordered by id alone); malformed → 400.
    pub fn id_cursor<Id: std::str::FromStr>(&self) -> Result<Option<Id>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| parse_id("cursor", c))
            .transpose()
    }
}

/// The opaque cursor of a list ordered by `(time, id)`.
pub fn encode_keyset(at: sc_core::time::Timestamp, id: impl std::fmt::Display) -> String {
    encode_cursor(&format!("{}|{}", at.millis(), id))
}

pub fn encode_cursor(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s.as_bytes())
}

/// Parses a path id; a malformed UUID is a 400, not a 404.
pub fn parse_id<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse::<T>()
        .map_err(|_| ApiError(AppError::validation(field, "not a valid id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_strings() {
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[["}"#, 2));
        assert!(json_depth_exceeds(b"[[[1]]]", 2));
        assert!(!json_depth_exceeds(br#"{"a":"\"[[[["}"#, 1));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Dto {
        name: String,
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let e = parse_json::<Dto>(br#"{"name":"a","evil":1}"#, 8).unwrap_err();
        assert_eq!(e.0.details().unwrap()["field"], "evil");
        let e = parse_json::<Dto>(br#"{}"#, 8).unwrap_err();
        assert_eq!(e.0.details().unwrap()["field"], "name");
        let e = parse_json::<Dto>(br#"{"name":5}"#, 8).unwrap_err();
        assert_eq!(e.0.details().unwrap()["field"], "name");
    }

    #[test]
    fn list_query_bounds() {
        assert_eq!(
            ListQuery::parse(Some("limit=5"), &[]).ok().unwrap().limit,
            5
        );
        assert!(ListQuery::parse(Some("limit=0"), &[]).is_err());
        assert!(ListQuery::parse(Some("limit=101"), &[]).is_err());
        assert!(ListQuery::parse(Some("limit=-1"), &[]).is_err());
        assert!(ListQuery::parse(Some("cursor=%%%"), &[]).is_err());
        assert!(ListQuery::parse(Some("x=1"), &[]).is_err());
        assert_eq!(
            ListQuery::parse(Some("q=ab"), &["q"]).ok().unwrap().params["q"],
            "ab"
        );
    }
}
