//! The S3 adapter: objects in one bucket of an S3-compatible store (AWS S3, MinIO, Garage,
//! Ceph, s3s-fs…), reached with AWS Signature Version 4 over `reqwest`. File bytes never pass
//! through this server: clients PUT and GET presigned URLs (query-string SigV4, signed for the
//! public endpoint); the server itself only asks for sizes, the first bytes, the SHA-256, copies
//! and deletions (header SigV4 against `s3_endpoint`).
//!
//! - Upload URLs sign `content-length`, `content-type` and `if-none-match: *` as headers, so the
//!   client must send exactly the declared size and type, and a replayed URL cannot replace an
//!   object whose bytes were already checked (412 on stores with conditional writes).
//! - Download URLs carry `response-content-disposition: attachment; filename*=UTF-8''…` and
//!   `response-content-type`, so the store serves the file as a download of the declared type.
//! - Signed URLs are bearer secrets: neither they nor any signature reach a log line or an error
//!   message. Transport errors, 5xx and refusals become `503 SERVICE_UNAVAILABLE`.
//! - `health()` reports the outcome of the last call made for a request (no probe per `/ready`).

use super::{BlobKey, BlobProbe, UploadTarget, hex, pct_encode};
use crate::DepState;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url};
use sc_core::{AppError, AppResult, config::Config, secret::Secret, time::Timestamp};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    fmt, io,
    sync::atomic::{AtomicU8, Ordering},
    time::Duration,
};

type HmacSha256 = Hmac<Sha256>;

/// The longest lifetime SigV4 allows a presigned URL (7 days).
pub const MAX_PRESIGN_SECONDS: i64 = 604_800;
/// SHA-256 of the empty string: the payload hash of body-less requests.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The header that carries an object's SHA-256 (base64 of the 32 bytes) in flexible checksums.
const CHECKSUM_SHA256: &str = "x-amz-checksum-sha256";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Largest error or copy-result body read from the store.
const SMALL_BODY: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A streamed GET may take as long as the object needs, but not stall for longer than this.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the S3 adapter needs, from the `s3_*` configuration keys.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Where the server's own calls go.
    pub endpoint: String,
    /// Where clients reach the store (presigned URLs are signed for it); `endpoint` when unset.
    pub public_endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
}

impl S3Settings {
    /// `None` unless `s3_endpoint` is set (validation has checked the rest is there).
    pub fn from_config(cfg: &Config) -> Option<Self> {
        Some(Self {
            endpoint: cfg.s3_endpoint.clone()?,
            public_endpoint: cfg.s3_public_endpoint.clone(),
            region: cfg.s3_region.clone(),
            bucket: cfg.s3_bucket.clone()?,
            access_key_id: cfg.s3_access_key_id.clone()?,
            secret_access_key: cfg.s3_secret_access_key.clone()?,
            path_style: cfg.s3_path_style,
        })
    }
}

impl S3Settings {
    /// The origin (`scheme://host[:port]`) browsers send presigned requests to, for the web
    /// app's `connect-src`; `None` when the endpoint does not parse (validation refuses that).
    pub fn client_origin(&self) -> Option<String> {
        let endpoint =
            Endpoint::parse(self.public_endpoint.as_deref().unwrap_or(&self.endpoint)).ok()?;
        let (host, _) = endpoint.locate(&self.bucket, self.path_style, None);
        Some(format!("{}://{host}", endpoint.scheme))
    }
}

/// The scheme, authority and path prefix of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    scheme: String,
    /// `host` or `host:port` (the port only when it is not the scheme's default), exactly as an
    /// HTTP client sends it in `Host`.
    host: String,
    /// `""` or `/prefix` (no trailing slash).
    base_path: String,
}

impl Endpoint {
    fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be http:// or https://".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not hold credentials".into());
        }
        let host = url.host_str().ok_or("has no host")?;
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Ok(Self {
            scheme: url.scheme().to_string(),
            host: host.to_ascii_lowercase(),
            base_path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// The host and canonical (encoded) path of `key` in `bucket` (the bucket itself without key).
    fn locate(&self, bucket: &str, path_style: bool, key: Option<&str>) -> (String, String) {
        let key = key.map(encode_path).unwrap_or_default();
        if path_style {
            (
                self.host.clone(),
                format!("{}/{bucket}/{key}", self.base_path)
                    .trim_end_matches('/')
                    .to_string(),
            )
        } else {
            (
                format!("{bucket}.{}", self.host),
                format!("{}/{key}", self.base_path),
            )
        }
    }
}

/// URI-encodes each segment of a path (RFC 3986 unreserved characters stay), keeping `/`.
fn encode_path(p: &str) -> String {
    p.split('/').map(pct_encode).collect::<Vec<_>>().join("/")
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of a Unix time, UTC.
fn amz_dates(unix: i64) -> (String, String) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let date = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let stamp = format!("{date}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
    (date, stamp)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `x-amz-checksum-sha256`'s value (base64 of the digest) for a lowercase hex SHA-256; `None`
/// unless `hex` is 64 hex digits.
fn checksum_header(hex_digest: &str) -> Option<String> {
    use base64::Engine;
    if hex_digest.len() != 64 {
        return None;
    }
    let mut raw = [0u8; 32];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex_digest.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// The lowercase hex SHA-256 of an `x-amz-checksum-sha256` value; `None` unless it is the
/// base64 of 32 bytes (a full-object checksum, not a composite `…-N`).
fn checksum_hex(value: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    (raw.len() == 32).then(|| hex(&raw))
}

/// The total size in `Content-Range: bytes a-b/total` (or `bytes */total`).
fn content_range_total(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (_, total) = rest.rsplit_once('/')?;
    total.trim().parse().ok()
}

/// Trims a header value and collapses runs of spaces, as SigV4's canonical headers want.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A SigV4 request being signed: everything that goes into the canonical request.
struct Canonical<'a> {
    method: &'a str,
    /// Already URI-encoded.
    uri: &'a str,
    /// Raw (unencoded) query parameters.
    query: Vec<(String, String)>,
    /// Lowercase names, raw values; `host` included.
    headers: BTreeMap<String, String>,
    payload_hash: &'a str,
}

/// The canonical query string: every name and value URI-encoded, sorted by name then value. It
/// is also the query of the URL sent, so that what was signed is exactly what the store sees.
fn encode_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (pct_encode(k), pct_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl Canonical<'_> {
    fn query_string(&self) -> String {
        encode_query(&self.query)
    }

    fn signed_headers(&self) -> String {
        self.headers.keys().cloned().collect::<Vec<_>>().join(";")
    }

    fn request(&self) -> String {
        let mut headers = String::new();
        for (k, v) in &self.headers {
            headers.push_str(k);
            headers.push(':');
            headers.push_str(&canonical_value(v));
            headers.push('\n');
        }
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.uri,
            self.query_string(),
            headers,
            self.signed_headers(),
            self.payload_hash
        )
    }
}

/// The credentials and scope of SigV4 signatures.
struct Signer {
    access_key_id: String,
    secret: Secret,
    region: String,
}

impl Signer {
    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/s3/aws4_request", self.region)
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        let k = hmac(
            format!("AWS4{}", self.secret.expose()).as_bytes(),
            date.as_bytes(),
        );
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, b"s3");
        hmac(&k, b"aws4_request")
    }

    /// The hex signature of `canonical_request` made at `stamp` (`YYYYMMDDTHHMMSSZ`).
    fn signature(&self, date: &str, stamp: &str, canonical_request: &str) -> String {
        let to_sign = format!(
            "{ALGORITHM}\n{stamp}\n{}\n{}",
            self.scope(date),
            sha256_hex(canonical_request.as_bytes())
        );
        hex(&hmac(&self.signing_key(date), to_sign.as_bytes()))
    }

    /// A presigned URL (query-string authentication) valid `expires` seconds from `now`.
    #[allow(clippy::too_many_arguments)]
    fn presign(
        &self,
        scheme: &str,
        method: &str,
        host: &str,
        uri: &str,
        mut query: Vec<(String, String)>,
        mut headers: BTreeMap<String, String>,
        now: i64,
        expires: i64,
    ) -> String {
        let (date, stamp) = amz_dates(now);
        headers.insert("host".into(), host.to_string());
        let signed_headers = headers.keys().cloned().collect::<Vec<_>>().join(";");
        query.extend([
            ("X-Amz-Algorithm".to_string(), ALGORITHM.to_string()),
            (
                "X-Amz-Credential".into(),
                format!("{}/{}", self.access_key_id, self.scope(&date)),
            ),
            ("X-Amz-Date".into(), stamp.clone()),
            (
                "X-Amz-Expires".into(),
                expires.clamp(1, MAX_PRESIGN_SECONDS).to_string(),
            ),
            ("X-Amz-SignedHeaders".into(), signed_headers),
        ]);
        let c = Canonical {
            method,
            uri,
            query,
            headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let sig = self.signature(&date, &stamp, &c.request());
        format!(
            "{scheme}://{host}{uri}?{}&X-Amz-Signature={sig}",
            c.query_string()
        )
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256` and `authorization` to `headers` (which must
    /// hold `host`) for a request made at `now`.
    fn authorize(
        &self,
        method: &str,
        uri: &str,
        query: &[(String, String)],
        headers: &mut BTreeMap<String, String>,
        payload_hash: &str,
        now: i64,
    ) {
        let (date, stamp) = amz_dates(now);
        headers.insert("x-amz-date".into(), stamp.clone());
        headers.insert("x-amz-content-sha256".into(), payload_hash.to_string());
        let c = Canonical {
            method,
            uri,
            query: query.to_vec(),
            headers: headers.clone(),
            payload_hash,
        };
        let sig = self.signature(&date, &stamp, &c.request());
        let auth = format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={sig}",
            self.access_key_id,
            self.scope(&date),
            c.signed_headers()
        );
        headers.insert("authorization".into(), auth);
    }
}

/// `attachment; filename*=UTF-8''<pct-encoded name>` (RFC 6266 / RFC 8187).
fn attachment(file_name: &str) -> String {
    format!("attachment; filename*=UTF-8''{}", pct_encode(file_name))
}

/// The text of `<Code>…</Code>` in an S3 error body, if it looks like one (safe to log: a code
/// such as `NoSuchKey` or `SignatureDoesNotMatch`, never a signature).
fn error_code(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = &body[start..start + len];
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| code.to_string())
}

/// The values of every `<tag>…</tag>`, XML entities decoded.
fn xml_values(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(
            rest[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[j + close.len()..];
    }
    out
}

const HEALTH_OK: u8 = 0;
const HEALTH_DOWN: u8 = 1;

fn unavailable() -> AppError {
    AppError::ServiceUnavailable("the file storage is unavailable".into())
}

/// The S3 adapter.
pub struct S3Blobs {
    server: Endpoint,
    public: Endpoint,
    bucket: String,
    path_style: bool,
    signer: Signer,
    /// Short calls: connect 5 s, whole request 30 s, no redirects.
    http: reqwest::Client,
    /// Streamed reads: connect 5 s, 60 s without a byte, no total limit, no redirects.
    stream_http: reqwest::Client,
    health: AtomicU8,
}

impl fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Blobs")
            .field("server", &self.server)
            .field("public", &self.public)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

impl S3Blobs {
    pub fn new(s: S3Settings) -> io::Result<Self> {
        let bad = |key: &str, e: String| io::Error::other(format!("{key}: {e}"));
        let server = Endpoint::parse(&s.endpoint).map_err(|e| bad("s3_endpoint", e))?;
        let public = match &s.public_endpoint {
            Some(p) => Endpoint::parse(p).map_err(|e| bad("s3_public_endpoint", e))?,
            None => server.clone(),
        };
        let client = |b: reqwest::ClientBuilder| {
            b.connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| io::Error::other(format!("S3 HTTP client: {e}")))
        };
        Ok(Self {
            server,
            public,
            bucket: s.bucket,
            path_style: s.path_style,
            signer: Signer {
                access_key_id: s.access_key_id,
                secret: s.secret_access_key,
                region: s.region,
            },
            http: client(reqwest::Client::builder().timeout(REQUEST_TIMEOUT))?,
            stream_http: client(reqwest::Client::builder().read_timeout(STREAM_IDLE_TIMEOUT))?,
            health: AtomicU8::new(HEALTH_OK),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Seconds from now until `expires_at`, rounded down so a URL never outlives the
    /// `expires_at` the API reports; at least 1, at most 7 days.
    fn lifetime(now: i64, expires_at: Timestamp) -> i64 {
        (expires_at.unix_seconds() - now).clamp(1, MAX_PRESIGN_SECONDS)
    }

    /// Where the client PUTs the object: exactly `size` bytes of `content_type`, once. With
    /// `sha256` (the declared digest, 64 lowercase hex digits) the URL also signs
    /// `x-amz-checksum-sha256`, so the store itself refuses bytes with another digest (400
    /// `BadDigest`) and records the checksum, which [`S3Blobs::probe`] reads back.
    pub fn upload_target(
        &self,
        key: &BlobKey,
        size: u64,
        content_type: &str,
        sha256: Option<&str>,
        expires_at: Timestamp,
    ) -> UploadTarget {
        let now = Timestamp::now().unix_seconds();
        let (host, uri) = self
            .public
            .locate(&self.bucket, self.path_style, Some(key.as_str()));
        let checksum = sha256.and_then(checksum_header);
        let mut headers = BTreeMap::from([
            ("content-length".to_string(), size.to_string()),
            ("content-type".to_string(), content_type.to_string()),
            ("if-none-match".to_string(), "*".to_string()),
        ]);
        if let Some(c) = &checksum {
            headers.insert(CHECKSUM_SHA256.to_string(), c.clone());
        }
        let url = self.signer.presign(
            &self.public.scheme,
            "PUT",
            &host,
            &uri,
            Vec::new(),
            headers,
            now,
            Self::lifetime(now, expires_at),
        );
        let mut client_headers = BTreeMap::from([
            ("Content-Length".to_string(), size.to_string()),
            ("Content-Type".to_string(), content_type.to_string()),
            ("If-None-Match".to_string(), "*".to_string()),
        ]);
        if let Some(c) = checksum {
            client_headers.insert(CHECKSUM_SHA256.to_string(), c);
        }
        UploadTarget {
            url,
            method: "PUT",
            headers: client_headers,
            expires_at,
        }
    }

    /// A presigned GET that serves the object as an attachment `file_name` of `content_type`.
    pub fn download_url(
        &self,
        key: &BlobKey,
        file_name: &str,
        content_type: &str,
        expires_at: Timestamp,
    ) -> String {
        let now = Timestamp::now().unix_seconds();
        let (host, uri) = self
            .public
            .locate(&self.bucket, self.path_style, Some(key.as_str()));
        let query = vec![
            (
                "response-content-disposition".to_string(),
                attachment(file_name),
            ),
            (
                "response-content-type".to_string(),
                content_type.to_string(),
            ),
        ];
        self.signer.presign(
            &self.public.scheme,
            "GET",
            &host,
            &uri,
            query,
            BTreeMap::new(),
            now,
            Self::lifetime(now, expires_at),
        )
    }

    fn mark(&self, ok: bool) {
        self.health
            .store(if ok { HEALTH_OK } else { HEALTH_DOWN }, Ordering::Relaxed);
    }

    /// One signed server-side request (header authentication against `s3_endpoint`).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        op: &'static str,
        method: Method,
        key: Option<&str>,
        query: Vec<(String, String)>,
        extra: &[(&str, String)],
        body: Option<Bytes>,
        streaming: bool,
    ) -> AppResult<reqwest::Response> {
        let (host, uri) = self.server.locate(&self.bucket, self.path_style, key);
        let mut headers = BTreeMap::from([("host".to_string(), host.clone())]);
        for (k, v) in extra {
            headers.insert(k.to_ascii_lowercase(), v.clone());
        }
        let payload_hash = match &body {
            Some(b) => sha256_hex(b),
            None => EMPTY_SHA256.to_string(),
        };
        self.signer.authorize(
            method.as_str(),
            &uri,
            &query,
            &mut headers,
            &payload_hash,
            Timestamp::now().unix_seconds(),
        );
        let qs = encode_query(&query);
        let mut url = format!("{}://{host}{uri}", self.server.scheme);
        if !qs.is_empty() {
            url.push('?');
            url.push_str(&qs);
        }
        let client = if streaming {
            &self.stream_http
        } else {
            &self.http
        };
        let mut req = client.request(method, url);
        for (k, v) in &headers {
            // reqwest sets Host from the URL, the same value that was signed.
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        match req.send().await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.mark(false);
                let e = e.without_url();
                tracing::warn!(
                    op,
                    timeout = e.is_timeout(),
                    connect = e.is_connect(),
                    error = %e,
                    "S3: request failed"
                );
                Err(unavailable())
            }
        }
    }

    /// An answer this adapter did not expect (5xx, a refusal, a missing bucket): the store is
    /// unusable for now. Logs the status and S3 error code, never the URL.
    async fn unexpected(&self, op: &'static str, r: reqwest::Response) -> AppError {
        self.mark(false);
        let status = r.status().as_u16();
        let body = read_bounded(r, SMALL_BODY).await.unwrap_or_default();
        let code = error_code(&body).unwrap_or_default();
        tracing::warn!(op, status, s3_code = %code, "S3: unexpected answer");
        unavailable()
    }

    /// Size of the object (HEAD); `None` when it does not exist.
    pub async fn size_of(&self, key: &BlobKey) -> AppResult<Option<u64>> {
        Ok(self.head(key).await?.map(|(size, _)| size))
    }

    /// Size and, when the store keeps one, full-object SHA-256 (lowercase hex) of the object
    /// (HEAD with `x-amz-checksum-mode: ENABLED`); `None` when it does not exist.
    async fn head(&self, key: &BlobKey) -> AppResult<Option<(u64, Option<String>)>> {
        let r = self
            .send(
                "head",
                Method::HEAD,
                Some(key.as_str()),
                vec![],
                &[("x-amz-checksum-mode", "ENABLED".to_string())],
                None,
                false,
            )
            .await?;
        match r.status() {
            s if s.is_success() => match header_u64(&r, reqwest::header::CONTENT_LENGTH) {
                Some(n) => {
                    self.mark(true);
                    Ok(Some((n, checksum_of(&r))))
                }
                None => Err(self.unexpected("head", r).await),
            },
            StatusCode::NOT_FOUND => {
                self.mark(true);
                Ok(None)
            }
            _ => Err(self.unexpected("head", r).await),
        }
    }

    /// The SHA-256 (lowercase hex) the store recorded for the object because its PUT declared
    /// one, which the store verified (HEAD with `x-amz-checksum-mode: ENABLED`); `None` when it
    /// keeps none or the object does not exist.
    pub async fn stored_sha256(&self, key: &BlobKey) -> AppResult<Option<String>> {
        Ok(self.head(key).await?.and_then(|(_, sha256)| sha256))
    }

    /// The object's size, its first `max` bytes and (where the store returns it) its SHA-256,
    /// in one ranged GET (`bytes=0-{max-1}`) whose `Content-Range` gives the total size. A store
    /// that ignores the range (200) is read for `max` bytes only. An empty object has no byte 0
    /// (416, or 200 with no body): a HEAD then tells it apart from a missing one. `None` when the
    /// object does not exist.
    ///
    /// AWS S3 (and s3s-fs) return `x-amz-checksum-sha256` only when the range covers the whole
    /// object, so for objects larger than `max` the digest is usually `None`.
    pub async fn probe(&self, key: &BlobKey, max: usize) -> AppResult<Option<BlobProbe>> {
        let max = max.max(1);
        let r = self
            .send(
                "probe",
                Method::GET,
                Some(key.as_str()),
                vec![],
                &[
                    ("range", format!("bytes=0-{}", max - 1)),
                    ("x-amz-checksum-mode", "ENABLED".to_string()),
                ],
                None,
                false,
            )
            .await?;
        let size = match r.status() {
            StatusCode::PARTIAL_CONTENT => r
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_total),
            StatusCode::OK => header_u64(&r, reqwest::header::CONTENT_LENGTH),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Only an empty object has no byte 0; HEAD says whether it is there.
                return match self.head(key).await? {
                    None => Ok(None),
                    Some((0, sha256)) => Ok(Some(BlobProbe {
                        size: 0,
                        head: Vec::new(),
                        sha256,
                    })),
                    Some((n, _)) => {
                        self.mark(false);
                        tracing::warn!(
                            op = "probe",
                            size = n,
                            "S3: a range from byte 0 was refused for a non-empty object"
                        );
                        Err(unavailable())
                    }
                };
            }
            StatusCode::NOT_FOUND => {
                self.mark(true);
                return Ok(None);
            }
            _ => return Err(self.unexpected("probe", r).await),
        };
        let Some(size) = size else {
            return Err(self.unexpected("probe", r).await);
        };
        let sha256 = checksum_of(&r);
        let head = read_bounded(r, max).await;
        self.mark(head.is_ok());
        Ok(Some(BlobProbe {
            size,
            head: head?,
            sha256,
        }))
    }

    /// Up to `max` bytes from the start of the object (a ranged GET).
    pub async fn read_head(&self, key: &BlobKey, max: usize) -> AppResult<Vec<u8>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes=0-{}", max - 1);
        let r = self
            .send(
                "read_head",
                Method::GET,
                Some(key.as_str()),
                vec![],
                &[("range", range)],
                None,
                false,
            )
            .await?;
        match r.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                let head = read_bounded(r, max).await;
                self.mark(head.is_ok());
                head
            }
            // An empty object has no byte 0.
            StatusCode::RANGE_NOT_SATISFIABLE => {
                self.mark(true);
                Ok(Vec::new())
            }
            StatusCode::NOT_FOUND => {
                self.mark(true);
                Err(AppError::NotFound("object".into()))
            }
            _ => Err(self.unexpected("read_head", r).await),
        }
    }

    /// SHA-256 of the object, lowercase hex, hashed chunk by chunk as it streams in.
    pub async fn sha256_hex(&self, key: &BlobKey) -> AppResult<String> {
        let mut r = self
            .send(
                "hash",
                Method::GET,
                Some(key.as_str()),
                vec![],
                &[],
                None,
                true,
            )
            .await?;
        match r.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                self.mark(true);
                return Err(AppError::NotFound("object".into()));
            }
            _ => return Err(self.unexpected("hash", r).await),
        }
        let mut hasher = Sha256::new();
        loop {
            match r.chunk().await {
                Ok(Some(c)) => hasher.update(&c),
                Ok(None) => break,
                Err(e) => {
                    self.mark(false);
                    let e = e.without_url();
                    tracing::warn!(op = "hash", timeout = e.is_timeout(), error = %e, "S3: the object's body broke off");
                    return Err(unavailable());
                }
            }
        }
        self.mark(true);
        Ok(hex(&hasher.finalize()))
    }

    /// Copies `from` to a new object `to` inside the bucket (CopyObject); `to` must not exist.
    pub async fn copy(&self, from: &BlobKey, to: &BlobKey) -> AppResult<()> {
        if self.size_of(to).await?.is_some() {
            return Err(AppError::conflict("the target object already exists"));
        }
        let source = format!("/{}/{}", self.bucket, encode_path(from.as_str()));
        let r = self
            .send(
                "copy",
                Method::PUT,
                Some(to.as_str()),
                vec![],
                &[("x-amz-copy-source", source)],
                None,
                false,
            )
            .await?;
        match r.status() {
            StatusCode::OK => {
                // CopyObject may fail after answering 200: the error is then in the body.
                let body = match read_bounded(r, SMALL_BODY).await {
                    Ok(b) => b,
                    Err(e) => {
                        self.mark(false);
                        return Err(e);
                    }
                };
                if let Some(code) = error_code(&body).filter(|_| body_is_error(&body)) {
                    self.mark(false);
                    tracing::warn!(op = "copy", s3_code = %code, "S3: the copy failed");
                    return Err(unavailable());
                }
                self.mark(true);
                Ok(())
            }
            StatusCode::NOT_FOUND => {
                let body = read_bounded(r, SMALL_BODY).await.unwrap_or_default();
                if error_code(&body).as_deref() == Some("NoSuchBucket") {
                    self.mark(false);
                    tracing::warn!(op = "copy", "S3: the bucket does not exist");
                    return Err(unavailable());
                }
                self.mark(true);
                Err(AppError::NotFound("object".into()))
            }
            _ => Err(self.unexpected("copy", r).await),
        }
    }

    /// Stores a small object the server makes itself (a generated image) with one signed PUT.
    /// Client uploads never come this way: they go to presigned URLs.
    pub async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> AppResult<()> {
        let r = self
            .send(
                "put",
                Method::PUT,
                Some(key.as_str()),
                vec![],
                &[("content-type", content_type.to_string())],
                Some(bytes),
                false,
            )
            .await?;
        if r.status().is_success() {
            self.mark(true);
            Ok(())
        } else {
            Err(self.unexpected("put", r).await)
        }
    }

    /// Deletes the object; an absent object is not an error.
    pub async fn delete(&self, key: &BlobKey) -> AppResult<()> {
        let r = self
            .send(
                "delete",
                Method::DELETE,
                Some(key.as_str()),
                vec![],
                &[],
                None,
                false,
            )
            .await?;
        if r.status().is_success() || r.status() == StatusCode::NOT_FOUND {
            self.mark(true);
            Ok(())
        } else {
            Err(self.unexpected("delete", r).await)
        }
    }

    /// `ok` unless the last call to the store failed (no request of its own).
    pub fn health(&self) -> DepState {
        match self.health.load(Ordering::Relaxed) {
            HEALTH_OK => DepState::Ok,
            _ => DepState::Down,
        }
    }

    /// Creates the bucket (setup and tests). One this account already owns is fine; one that
    /// exists otherwise (`BucketAlreadyExists`, which some stores answer for their own too) is 409.
    pub async fn create_bucket(&self) -> AppResult<()> {
        let body = (self.signer.region != "us-east-1").then(|| {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.signer.region
            ))
        });
        let r = self
            .send("create_bucket", Method::PUT, None, vec![], &[], body, false)
            .await?;
        if r.status().is_success() {
            self.mark(true);
            return Ok(());
        }
        let status = r.status();
        let body = read_bounded(r, SMALL_BODY).await.unwrap_or_default();
        let code = error_code(&body).unwrap_or_default();
        if status == StatusCode::CONFLICT {
            self.mark(true);
            return match code.as_str() {
                "BucketAlreadyOwnedByYou" => Ok(()),
                _ => Err(AppError::conflict("the bucket already exists")),
            };
        }
        self.mark(false);
        tracing::warn!(op = "create_bucket", status = status.as_u16(), s3_code = %code, "S3: unexpected answer");
        Err(unavailable())
    }

    /// The keys under `prefix`, in key order, up to 1,000 (one ListObjectsV2 page; for
    /// operations and tests).
    pub async fn list_keys(&self, prefix: &str) -> AppResult<Vec<String>> {
        let query = vec![
            ("list-type".to_string(), "2".to_string()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        let r = self
            .send("list", Method::GET, None, query, &[], None, false)
            .await?;
        if !r.status().is_success() {
            return Err(self.unexpected("list", r).await);
        }
        let body = read_bounded(r, 4 * 1024 * 1024).await?;
        self.mark(true);
        Ok(xml_values(&String::from_utf8_lossy(&body), "Key"))
    }
}

/// A header's value as a number.
fn header_u64(r: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The full-object SHA-256 an answer reports in `x-amz-checksum-sha256`, lowercase hex.
fn checksum_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(CHECKSUM_SHA256)
        .and_then(|v| v.to_str().ok())
        .and_then(checksum_hex)
}

/// An `<Error>` document (as opposed to a result that merely mentions a code).
fn body_is_error(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    text.contains("<Error>")
}

/// At most `max` bytes of the body; the rest is never read.
async fn read_bounded(mut r: reqwest::Response, max: usize) -> AppResult<Vec<u8>> {
    let mut out = Vec::with_capacity(max.min(16 * 1024));
    while out.len() < max {
        match r.chunk().await {
            Ok(Some(c)) => {
                let take = c.len().min(max - out.len());
                out.extend_from_slice(&c[..take]);
            }
            Ok(None) => break,
            Err(e) => {
                let e = e.without_url();
                tracing::warn!(timeout = e.is_timeout(), error = %e, "S3: a response body broke off");
                return Err(unavailable());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_signer() -> Signer {
        Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1".into(),
        }
    }

    /// 2013-05-24T00:00:00Z, the time of AWS's published examples.
    const EXAMPLE_TIME: i64 = 1_369_353_600;

    #[test]
    fn the_client_origin_is_where_presigned_urls_point() {
        let mut s = S3Settings {
            endpoint: "http://minio:9000/prefix".into(),
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: "files".into(),
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("x"),
            path_style: true,
        };
        assert_eq!(s.client_origin().as_deref(), Some("http://minio:9000"));
        s.public_endpoint = Some("https://s3.example.org".into());
        assert_eq!(s.client_origin().as_deref(), Some("https://s3.example.org"));
        s.path_style = false;
        assert_eq!(
            s.client_origin().as_deref(),
            Some("https://files.s3.example.org")
        );
    }

    #[test]
    fn dates_format_like_sigv4() {
        assert_eq!(
            amz_dates(EXAMPLE_TIME),
            ("20130524".to_string(), "20130524T000000Z".to_string())
        );
        assert_eq!(amz_dates(EXAMPLE_TIME + 3723).1, "20130524T010203Z");
    }

    /// The presigned-URL example of the S3 documentation ("Authenticating Requests: Using
    /// Query Parameters", sigv4-query-string-auth).
    #[test]
    fn presigned_get_matches_the_aws_example() {
        let url = example_signer().presign(
            "https",
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            vec![],
            BTreeMap::new(),
            EXAMPLE_TIME,
            86400,
        );
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt\
             ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// The header-authentication GET example of the same documentation page set
    /// (sig-v4-header-based-auth, "GET Object" with a range).
    #[test]
    fn header_signed_get_matches_the_aws_example() {
        let mut headers = BTreeMap::from([
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
        ]);
        example_signer().authorize(
            "GET",
            "/test.txt",
            &[],
            &mut headers,
            EMPTY_SHA256,
            EXAMPLE_TIME,
        );
        assert_eq!(
            headers["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    fn settings(path_style: bool, public: Option<&str>) -> S3Settings {
        S3Settings {
            endpoint: "http://127.0.0.1:9000".into(),
            public_endpoint: public.map(String::from),
            region: "eu-west-3".into(),
            bucket: "drive".into(),
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("s3-very-secret"),
            path_style,
        }
    }

    #[test]
    fn endpoints_and_addressing_styles() {
        let e = Endpoint::parse("https://s3.example.org:443/base/").unwrap();
        assert_eq!(
            (e.scheme.as_str(), e.host.as_str(), e.base_path.as_str()),
            ("https", "s3.example.org", "/base")
        );
        assert_eq!(
            e.locate("b", true, Some("objects/ab/cd")),
            ("s3.example.org".into(), "/base/b/objects/ab/cd".into())
        );
        assert_eq!(
            e.locate("b", false, Some("objects/ab/cd")),
            ("b.s3.example.org".into(), "/base/objects/ab/cd".into())
        );
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(e.host, "127.0.0.1:9000");
        assert_eq!(e.locate("b", true, None).1, "/b");
        assert_eq!(
            e.locate("b", false, None),
            ("b.127.0.0.1:9000".into(), "/".into())
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://u:p@x").is_err());
    }

    #[test]
    fn upload_urls_sign_size_type_and_once() {
        let s = S3Blobs::new(settings(true, Some("https://files.example.org"))).unwrap();
        let key = BlobKey::new_random();
        let exp = Timestamp(Timestamp::now().millis() + 900_000);
        let t = s.upload_target(&key, 70, "image/png", None, exp);
        assert_eq!(t.method, "PUT");
        assert_eq!(t.expires_at, exp);
        assert!(
            t.url
                .starts_with(&format!("https://files.example.org/drive/{key}?")),
            "signed for the public endpoint: {}",
            t.url
        );
        assert!(
            t.url.contains(
                "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match"
            )
        );
        let expires: i64 = t
            .url
            .split("X-Amz-Expires=")
            .nth(1)
            .and_then(|r| r.split('&').next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!((898..=900).contains(&expires), "{expires}");
        assert!(t.url.contains("eu-west-3%2Fs3%2Faws4_request"));
        assert_eq!(t.headers["Content-Length"], "70");
        assert_eq!(t.headers["Content-Type"], "image/png");
        assert_eq!(t.headers["If-None-Match"], "*");
        assert!(!t.url.contains("s3-very-secret"));
        assert!(!format!("{s:?}").contains("s3-very-secret"));
    }

    #[test]
    fn download_urls_ask_for_an_attachment() {
        let s = S3Blobs::new(settings(false, None)).unwrap();
        let key = BlobKey::new_random();
        let url = s.download_url(
            &key,
            "Résumé v2.pdf",
            "application/pdf",
            Timestamp(Timestamp::now().millis() + 300_000),
        );
        assert!(
            url.starts_with(&format!("http://drive.127.0.0.1:9000/{key}?")),
            "{url}"
        );
        let disposition = pct_encode(&attachment("Résumé v2.pdf"));
        assert!(
            url.contains(&format!("response-content-disposition={disposition}&")),
            "{url}"
        );
        assert_eq!(
            attachment("Résumé v2.pdf"),
            "attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20v2.pdf"
        );
        assert!(url.contains("response-content-type=application%2Fpdf&"));
        assert!(url.contains("X-Amz-SignedHeaders=host&"));
        // Never longer than SigV4 allows, never shorter than a second.
        assert_eq!(
            S3Blobs::lifetime(100, Timestamp(10_000_000_000_000)),
            MAX_PRESIGN_SECONDS
        );
        assert_eq!(S3Blobs::lifetime(100, Timestamp(50_000)), 1);
    }

    #[test]
    fn checksums_and_content_ranges_parse() {
        let hex_digest = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let b64 = checksum_header(hex_digest).unwrap();
        assert_eq!(b64, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
        assert_eq!(checksum_hex(&b64).as_deref(), Some(hex_digest));
        assert_eq!(checksum_header("abc"), None);
        assert_eq!(checksum_header(&"g".repeat(64)), None);
        assert_eq!(
            checksum_hex("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=-3"),
            None
        );
        assert_eq!(checksum_hex("AAAA"), None);
        assert_eq!(
            content_range_total("bytes 0-8191/10485760"),
            Some(10_485_760)
        );
        assert_eq!(content_range_total("bytes */0"), Some(0));
        assert_eq!(content_range_total("bytes 0-10/*"), None);
        assert_eq!(content_range_total("items 0-1/2"), None);
    }

    #[test]
    fn error_bodies_and_listings_parse() {
        let err = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>x</Message></Error>";
        assert_eq!(error_code(err).as_deref(), Some("SignatureDoesNotMatch"));
        assert!(body_is_error(err));
        assert_eq!(error_code(b"<Code>a b</Code>"), None);
        assert!(!body_is_error(
            b"<CopyObjectResult><ETag>x</ETag></CopyObjectResult>"
        ));
        let list = "<ListBucketResult><Contents><Key>objects/a&amp;b</Key></Contents>\
                    <Contents><Key>objects/c</Key></Contents></ListBucketResult>";
        assert_eq!(xml_values(list, "Key"), ["objects/a&b", "objects/c"]);
    }

    #[tokio::test]
    async fn an_unreachable_store_is_503_and_down() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = settings(true, None);
        s.endpoint = format!("http://127.0.0.1:{port}");
        let s = S3Blobs::new(s).unwrap();
        assert_eq!(s.health(), DepState::Ok);
        let e = s.size_of(&BlobKey::new_random()).await.unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(!e.to_string().contains("127.0.0.1"), "{e}");
        assert_eq!(s.health(), DepState::Down);
        assert_eq!(
            s.delete(&BlobKey::new_random()).await.unwrap_err().status(),
            503
        );
    }

    /// The adapter against a real S3 server that checks signatures (`SC_TEST_S3_URL`, path
    /// style, with `SC_TEST_S3_ACCESS_KEY_ID` / `SC_TEST_S3_SECRET_ACCESS_KEY`; `.ci/run`
    /// starts s3s-fs). Skipped without it, unless `SC_TEST_REQUIRE_ALL=1`.
    #[tokio::test]
    async fn against_a_real_s3_server() {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let Some(url) = var("SC_TEST_S3_URL") else {
            assert!(
                var("SC_TEST_REQUIRE_ALL").as_deref() != Some("1"),
                "SC_TEST_REQUIRE_ALL=1 but SC_TEST_S3_URL is not set"
            );
            return;
        };
        let settings = S3Settings {
            endpoint: url,
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: format!("sc-unit-{}", uuid::Uuid::new_v4().simple()),
            access_key_id: var("SC_TEST_S3_ACCESS_KEY_ID")
                .unwrap_or_else(|| "sc-test-access-key".into()),
            secret_access_key: Secret::new(
                var("SC_TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|| "sc-test-secret-key".into()),
            ),
            path_style: true,
        };
        let s = S3Blobs::new(settings.clone()).unwrap();
        s.create_bucket().await.unwrap();
        if let Err(e) = s.create_bucket().await {
            assert_eq!(e.status(), 409);
        }
        let http = reqwest::Client::new();
        let later = Timestamp(Timestamp::now().millis() + 600_000);
        let put = |t: &UploadTarget, body: &'static [u8], skip: Option<&str>| {
            let mut req = http.put(&t.url);
            for (k, v) in &t.headers {
                if Some(k.as_str()) != skip {
                    req = req.header(k, v);
                }
            }
            req.body(body).send()
        };

        let key = BlobKey::new_random();
        let t = s.upload_target(&key, 11, "text/plain", None, later);
        // Another size, another type, or a tampered signature: refused by the store.
        let mut other_size = http.put(&t.url).header("Content-Type", "text/plain");
        other_size = other_size.header("If-None-Match", "*");
        assert_eq!(
            other_size
                .body("hello world!")
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let mut other_type = t.clone();
        other_type
            .headers
            .insert("Content-Type".into(), "text/html".into());
        assert_eq!(
            put(&other_type, b"hello world", None)
                .await
                .unwrap()
                .status(),
            403
        );
        let mut tampered = t.clone();
        let last = tampered.url.pop().unwrap();
        tampered.url.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            put(&tampered, b"hello world", None).await.unwrap().status(),
            403
        );
        assert_eq!(s.size_of(&key).await.unwrap(), None);
        // As signed: stored, once.
        assert_eq!(put(&t, b"hello world", None).await.unwrap().status(), 200);
        assert_eq!(put(&t, b"HELLO WORLD", None).await.unwrap().status(), 412);
        assert_eq!(s.size_of(&key).await.unwrap(), Some(11));
        assert_eq!(s.read_head(&key, 5).await.unwrap(), b"hello");
        assert_eq!(s.read_head(&key, 8192).await.unwrap(), b"hello world");
        assert_eq!(
            s.sha256_hex(&key).await.unwrap(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );

        // Downloads: an attachment of the asked type, ranges, refused once tampered or expired.
        let url = s.download_url(&key, "Résumé.txt", "application/octet-stream", later);
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(
            r.headers()["content-disposition"],
            "attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.txt"
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello world");
        let r = http
            .get(&url)
            .header("Range", "bytes=6-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"world");
        let tampered = url.replacen(
            "response-content-type=application%2Foctet-stream",
            "response-content-type=text%2Fhtml",
            1,
        );
        assert_ne!(tampered, url);
        assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
        let short = s.download_url(
            &key,
            "a.txt",
            "text/plain",
            Timestamp(Timestamp::now().millis() + 1000),
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(http.get(&short).send().await.unwrap().status(), 403);

        // Copy, list, delete.
        let copy = BlobKey::new_random();
        s.copy(&key, &copy).await.unwrap();
        assert_eq!(s.read_head(&copy, 100).await.unwrap(), b"hello world");
        assert_eq!(s.copy(&key, &copy).await.unwrap_err().status(), 409);
        let missing = BlobKey::new_random();
        assert_eq!(
            s.copy(&missing, &BlobKey::new_random())
                .await
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(s.read_head(&missing, 10).await.unwrap_err().status(), 404);
        assert_eq!(s.sha256_hex(&missing).await.unwrap_err().status(), 404);
        let mut keys = s.list_keys("objects/").await.unwrap();
        keys.sort();
        let mut expected = vec![key.to_string(), copy.to_string()];
        expected.sort();
        assert_eq!(keys, expected);
        s.delete(&key).await.unwrap();
        s.delete(&key).await.unwrap();
        assert_eq!(s.size_of(&key).await.unwrap(), None);
        assert_eq!(s.list_keys("").await.unwrap(), [copy.to_string()]);
        // An empty object.
        let empty = BlobKey::new_random();
        let t = s.upload_target(&empty, 0, "text/plain", None, later);
        assert_eq!(put(&t, b"", None).await.unwrap().status(), 200);
        assert_eq!(s.read_head(&empty, 8192).await.unwrap(), b"");
        let p = s.probe(&empty, 8192).await.unwrap().unwrap();
        assert_eq!((p.size, p.head.as_slice()), (0, &b""[..]));
        assert_eq!(s.probe(&missing, 8192).await.unwrap(), None);
        // One ranged GET: the total size from Content-Range, the first bytes as the body.
        let p = s.probe(&copy, 5).await.unwrap().unwrap();
        assert_eq!((p.size, p.head.as_slice()), (11, &b"hello"[..]));

        // A declared SHA-256 is signed into the URL: the store checks the bytes against it.
        let big: &'static [u8] = Box::leak(vec![7u8; 20_000].into_boxed_slice());
        let digest = sha256_hex(big);
        let mut wrong = big.to_vec();
        wrong[19_999] = 8;
        let wrong: &'static [u8] = Box::leak(wrong.into_boxed_slice());
        let refused = BlobKey::new_random();
        let t = s.upload_target(&refused, 20_000, "text/plain", Some(&digest), later);
        assert_eq!(
            t.headers[CHECKSUM_SHA256],
            checksum_header(&digest).unwrap()
        );
        assert!(
            t.url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-sha256"),
            "{}",
            t.url
        );
        // Without the signed checksum header: 403.
        assert_eq!(
            put(&t, big, Some(CHECKSUM_SHA256)).await.unwrap().status(),
            403
        );
        // Other bytes of the declared size: 400 BadDigest. s3s-fs 0.14.1 keeps them under the key
        // all the same, but with no checksum: a digest is trusted only where the store reports it.
        let r = put(&t, wrong, None).await.unwrap();
        assert_eq!(r.status(), 400);
        let body = r.bytes().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("BadDigest"));
        if let Some((_, sha256)) = s.head(&refused).await.unwrap() {
            assert_eq!(sha256, None, "a refused body has no checksum");
        }
        // As declared: stored, and HEAD reports the digest the store verified.
        let key = BlobKey::new_random();
        let t = s.upload_target(&key, 20_000, "text/plain", Some(&digest), later);
        assert_eq!(put(&t, big, None).await.unwrap().status(), 200);
        assert_eq!(
            s.head(&key).await.unwrap(),
            Some((20_000, Some(digest.clone())))
        );
        let p = s.probe(&key, 8192).await.unwrap().unwrap();
        assert_eq!((p.size, p.head.as_slice()), (20_000, &big[..8192]));
        // A range covering the whole object brings the checksum along.
        let small = BlobKey::new_random();
        let hello = sha256_hex(b"hello world");
        let t = s.upload_target(&small, 11, "text/plain", Some(&hello), later);
        assert_eq!(put(&t, b"hello world", None).await.unwrap().status(), 200);
        let p = s.probe(&small, 8192).await.unwrap().unwrap();
        assert_eq!((p.size, p.sha256), (11, Some(hello)));
        assert_eq!(s.health(), DepState::Ok);

        // A wrong secret: the store refuses the server's own calls, which become 503.
        let mut wrong = settings;
        wrong.secret_access_key = Secret::new("not-the-secret");
        let w = S3Blobs::new(wrong).unwrap();
        let e = w.size_of(&copy).await.unwrap_err();
        assert_eq!(e.status(), 503);
        assert_eq!(w.health(), DepState::Down);
        assert_eq!(w.delete(&copy).await.unwrap_err().status(), 503);
        assert_eq!(s.size_of(&copy).await.unwrap(), Some(11));
    }
}
