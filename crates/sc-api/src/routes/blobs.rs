//! /v1/blobs/{key}: the signed URLs of the local blob store. No bearer token: the URL's HMAC
//! (operation, key, size, expiry, content type, file name) is the authorization, checked before
//! a byte of the body is read. PUT streams the body to disk; GET streams the object back as an
//! attachment that a browser can neither sniff nor render as a page of this origin, with single
//! byte ranges for resumed downloads and video seeking.

use crate::{
    dto::Empty,
    envelope::{ApiError, ApiResult, done},
    state::AppState,
};
use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sc_core::{AppError, time::Timestamp};
use sc_infra::blobs::{BlobKey, BlobOp, ByteRange, LocalBlobs, RangeRead, SignedQuery, pct_encode};
use serde_json::Value;
use std::sync::Arc;

type S = State<Arc<AppState>>;

/// The adapter, key and query of a URL whose signature holds for `op` now.
fn verified<'a>(
    s: &'a AppState,
    op: BlobOp,
    raw_key: &str,
    raw_query: Option<&str>,
) -> Result<(&'a LocalBlobs, BlobKey, SignedQuery), ApiError> {
    // On S3 the URLs point at S3: this server serves none.
    let local = s
        .blobs
        .as_local()
        .ok_or_else(|| AppError::NotFound("route".into()))?;
    let key = BlobKey::parse(raw_key)
        .ok_or_else(|| AppError::Forbidden("the signed URL is not valid".into()))?;
    let query = SignedQuery::parse(raw_query.unwrap_or_default()).map_err(AppError::from)?;
    local
        .verify(op, &key, &query, Timestamp::now())
        .map_err(AppError::from)?;
    Ok((local, key, query))
}

#[utoipa::path(put, path = "/v1/blobs/{key}", tag = "blobs",
    params(("key" = String, Path, description = "the object key of the signed URL"),
           ("op" = String, Query, description = "put"), ("size" = u64, Query), ("exp" = i64, Query),
           ("ct" = String, Query), ("sig" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "exactly `size` bytes; no bearer token"),
    responses((status = 200, body = Empty, description = "stored; now complete the upload"),
              (status = 400, description = "fewer bytes than signed, or the body broke off"),
              (status = 403, description = "the signature does not match or the URL has expired"),
              (status = 404, description = "not served here: on S3, bytes go to the store's presigned URLs"),
              (status = 409, description = "the object has already been uploaded, or its upload was given up"),
              (status = 413, description = "more bytes than signed")))]
pub async fn put_blob(
    State(s): S,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Value> {
    let (local, key, q) = verified(&s, BlobOp::Put, &key, query.as_deref())?;
    if let Some(v) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| AppError::validation("Content-Length", "malformed Content-Length"))?;
        if len > q.size {
            return Err(AppError::PayloadTooLarge(format!(
                "the body is larger than the declared {} bytes",
                q.size
            ))
            .into());
        }
        if len < q.size {
            return Err(AppError::validation(
                "Content-Length",
                format!("the body must be exactly {} bytes", q.size),
            )
            .into());
        }
    }
    let (_, sha256) = local.receive(&key, body.into_data_stream(), q.size).await?;
    s.drive.object_received(&key, &sha256).await?;
    Ok(done())
}

fn header_value(s: &str, fallback: &'static str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(fallback))
}

/// `attachment`, with the RFC 8187 form of the name (every client since 2011 reads it).
fn content_disposition(name: Option<&str>) -> HeaderValue {
    match name {
        Some(n) => header_value(
            &format!("attachment; filename*=UTF-8''{}", pct_encode(n)),
            "attachment",
        ),
        None => HeaderValue::from_static("attachment"),
    }
}

/// The headers every download carries, whole or partial.
fn download_headers(h: &mut HeaderMap, q: &SignedQuery, etag: &str) {
    h.insert(
        header::CONTENT_TYPE,
        header_value(&q.ct, "application/octet-stream"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(q.name.as_deref()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(etag, "\"\""));
}

#[utoipa::path(get, path = "/v1/blobs/{key}", tag = "blobs",
    params(("key" = String, Path, description = "the object key of the signed URL"),
           ("op" = String, Query, description = "get"), ("size" = u64, Query), ("exp" = i64, Query),
           ("ct" = String, Query), ("name" = Option<String>, Query), ("sig" = String, Query),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. bytes=0-1023")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>,
               description = "the bytes (not enveloped), as an attachment"),
              (status = 206, content_type = "application/octet-stream", body = Vec<u8>,
               description = "the requested range, with Content-Range"),
              (status = 403, description = "the signature does not match or the URL has expired"),
              (status = 404, description = "the object is gone, or (on S3) bytes are not served here"),
              (status = 416, description = "the range lies outside the object")))]
pub async fn get_blob(
    State(s): S,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (local, key, q) = verified(&s, BlobOp::Get, &key, query.as_deref())?;
    // Objects never change under a key: the key and size make a strong validator.
    let etag = format!(
        "\"{}-{}\"",
        key.as_str().rsplit('/').next().unwrap_or_default(),
        q.size
    );
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse_header);
    // If-Range (RFC 9110 §13.1.5): the range only if the client still holds this object.
    let range = match headers.get(header::IF_RANGE) {
        Some(v) if v.as_bytes() != etag.as_bytes() => None,
        _ => range,
    };
    let gone = || ApiError(AppError::NotFound("file".into()));
    let read = match local.open_range(&key, range).await? {
        None => return Err(gone()),
        Some(RangeRead::Unsatisfiable { total }) => {
            if total != q.size {
                return Err(gone());
            }
            let mut res = ApiError(AppError::validation(
                "Range",
                "the range lies outside the file",
            ))
            .into_response();
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{total}"), "bytes */0"),
            );
            return Ok(res);
        }
        Some(RangeRead::Read(r)) => r,
    };
    if read.total != q.size {
        // Not the object that was signed (cannot happen while objects are immutable).
        return Err(gone());
    }
    let status = if read.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let (start, end, len, total) = (read.start, read.end_inclusive(), read.len, read.total);
    let mut res = Response::new(Body::from_stream(read.body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    download_headers(h, &q, &etag);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if read.partial {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{total}"), "bytes */0"),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_encodes_the_name() {
        assert_eq!(
            content_disposition(Some("Résumé \"final\"; v2.pdf")),
            "attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%3B%20v2.pdf"
        );
        assert_eq!(content_disposition(None), "attachment");
    }
}
