//! The web app at `/`: the bundle of web/dist, compiled into the binary (see build.rs).
//!
//! Answered from the router's fallback, so it can never shadow a route: `/v1/…`, `/health`,
//! `/ready` and `/metrics` (and anything below them) keep their JSON 404/405 envelopes. Every
//! other GET is a file of the bundle, or, for a path that names no file (a client-side route
//! like `/c/<id>`), `index.html`.
//!
//! `web_dir` swaps the embedded bundle for a directory read once at start-up (for working on
//! the app without rebuilding the server); requests never touch the disk either way.

use crate::{envelope::ApiError, etag::fnv1a, state::AppState};
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use sc_core::AppError;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The app's files by path under `/` (sorted for lookup), each with its ETag hash.
pub struct WebBundle {
    files: Vec<(String, Bytes, u64)>,
}

impl WebBundle {
    /// The bundle compiled into this binary.
    pub fn embedded() -> Self {
        Self {
            files: WEB_ASSETS
                .iter()
                .map(|(p, b, h)| ((*p).to_owned(), Bytes::from_static(b), *h))
                .collect(),
        }
    }

    /// Every file below `dir` (a `web/dist` built by `npm run build`), read now.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for entry in std::fs::read_dir(&d)? {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(dir) else {
                    continue;
                };
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let bytes = std::fs::read(&path)?;
                let hash = fnv1a(&bytes);
                files.push((format!("/{}", rel.join("/")), Bytes::from(bytes), hash));
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { files })
    }

    fn get(&self, path: &str) -> Option<(&Bytes, u64)> {
        self.files
            .binary_search_by(|(p, _, _)| p.as_str().cmp(path))
            .ok()
            .and_then(|i| self.files.get(i))
            .map(|(_, bytes, hash)| (bytes, *hash))
    }
}

/// Vite puts content-hashed files here: a new build gives new names, so they never change.
const HASHED_PREFIX: &str = "/assets/";
const INDEX: &str = "/index.html";
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Revalidated on every use (with the ETag), so a new release is picked up at once.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// Paths that belong to the API and operations, never to the app.
fn is_server_path(path: &str) -> bool {
    ["/v1", "/health", "/ready", "/metrics"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// Whether `req` is for the app: a GET or HEAD outside the server's own paths.
pub fn wants_app(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && !is_server_path(path)
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The policy of the app's pages: scripts, styles and images only from this origin, nothing
/// inline and no eval; API calls and the realtime socket only to this server (`'self'` covers
/// ws/wss in CSP 3, the explicit ws/wss origins cover browsers that do not apply it yet), and
/// `blob_origin`: the S3 store that presigned uploads and downloads go to, when there is one.
pub fn content_security_policy(public_url: &str, blob_origin: Option<&str>) -> String {
    let ws = public_url
        .strip_prefix("https://")
        .map(|host| format!("wss://{host}"))
        .or_else(|| {
            public_url
                .strip_prefix("http://")
                .map(|host| format!("ws://{host} wss://{host}"))
        })
        .unwrap_or_default();
    let ws = match blob_origin {
        Some(origin) if !origin.contains([';', ',', ' ']) => format!("{ws} {origin}"),
        _ => ws,
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         font-src 'self'; connect-src 'self' {ws}; manifest-src 'self'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// `content_security_policy` without the socket's explicit origins.
const FALLBACK_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     font-src 'self'; connect-src 'self' ; manifest-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The policy as a header value (built once, kept in `AppState`). A `public_url` that cannot
/// be a header value was refused by the configuration check; the fallback is the policy
/// without the socket's origin.
pub fn csp_header(public_url: &str, blob_origin: Option<&str>) -> HeaderValue {
    HeaderValue::from_str(&content_security_policy(public_url, blob_origin))
        .unwrap_or_else(|_| HeaderValue::from_static(FALLBACK_CSP))
}

/// Answers a request for the app (see `wants_app`).
pub fn serve(state: &AppState, path: &str, headers: &HeaderMap, head: bool) -> Response {
    let (path, bytes, hash) = match state.web.get(path) {
        Some((bytes, hash)) => (path, bytes, hash),
        // A missing hashed asset (an old build's file) or anything that looks like a file is a
        // 404, not the page: a script tag must never receive HTML.
        None if path.starts_with(HASHED_PREFIX) || last_segment_has_dot(path) => {
            return ApiError(AppError::NotFound("file".into())).into_response();
        }
        None => match state.web.get(INDEX) {
            Some((bytes, hash)) => (INDEX, bytes, hash),
            None => {
                return ApiError(AppError::ServiceUnavailable(
                    "the web app is not built into this binary (cd web && npm ci && npm run build)"
                        .into(),
                ))
                .into_response();
            }
        },
    };
    let etag = format!("\"{hash:016x}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes.clone()))
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let cache = if path.starts_with(HASHED_PREFIX) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    h.insert(header::CACHE_CONTROL, cache);
    h.insert(header::CONTENT_SECURITY_POLICY, state.web_csp.clone());
    res
}

fn last_segment_has_dot(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|s| s.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_are_never_the_app() {
        for p in [
            "/v1",
            "/v1/",
            "/v1/nope",
            "/health",
            "/ready",
            "/metrics",
            "/metrics/x",
        ] {
            assert!(!wants_app(&Method::GET, p), "{p}");
        }
        for p in ["/", "/c/123", "/v1x", "/healthy", "/assets/index-abc.js"] {
            assert!(wants_app(&Method::GET, p), "{p}");
        }
        assert!(!wants_app(&Method::POST, "/"));
    }

    #[test]
    fn the_fallback_policy_is_the_policy_without_a_socket_origin() {
        assert_eq!(content_security_policy("", None), FALLBACK_CSP);
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_framing() {
        let csp = content_security_policy("https://chat.example.org", None);
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("connect-src 'self' wss://chat.example.org;"));
        let local = content_security_policy("http://127.0.0.1:8080", None);
        assert!(local.contains("ws://127.0.0.1:8080 wss://127.0.0.1:8080"));
        let s3 = content_security_policy(
            "https://chat.example.org",
            Some("https://files.example.org"),
        );
        assert!(
            s3.contains("connect-src 'self' wss://chat.example.org https://files.example.org;")
        );
        let odd =
            content_security_policy("https://chat.example.org", Some("https://x; script-src *"));
        assert!(!odd.contains("script-src *"));
    }

    #[test]
    fn the_embedded_table_is_sorted_for_lookup() {
        assert!(WEB_ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn embedded_files_carry_the_hash_the_server_computes() {
        for (path, bytes, hash) in WEB_ASSETS {
            assert_eq!(fnv1a(bytes), *hash, "{path}");
        }
    }

    #[test]
    fn a_directory_bundle_is_read_with_the_embedded_hashes() {
        let dir = std::env::temp_dir().join(format!("sc-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), b"<!doctype html>").unwrap();
        std::fs::write(dir.join("assets/app-1.js"), b"x").unwrap();
        let bundle = WebBundle::from_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let (bytes, hash) = bundle.get("/assets/app-1.js").unwrap();
        assert_eq!((bytes.as_ref(), hash), (&b"x"[..], fnv1a(b"x")));
        assert!(bundle.get("/index.html").is_some());
        assert!(bundle.get("/assets").is_none());
    }
}
