//! The web app served at `/` (the embedded web/dist bundle) and the cookie variant of login and
//! refresh it uses (`/v1/auth/browser/*`). The Origin rule of the realtime socket, which the
//! app relies on, is tested in realtime.rs (`tickets_origin_and_frames`).

use crate::common::*;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

fn csp(r: &Resp) -> String {
    r.headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn header_of(r: &Resp, name: header::HeaderName) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `src` / `href` values of index.html that point at hashed assets.
fn asset_paths(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_app_is_served_at_the_root_under_a_strict_policy() {
    let app = TestApp::spawn().await;
    let r = app.get("/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert!(r.text.contains(r#"<div id="app">"#), "{}", r.text);
    assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
    assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let policy = csp(&r);
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        // The socket of this server's own origin (public_url is http://sc.test in tests).
        "connect-src 'self' ws://sc.test wss://sc.test",
    ] {
        assert!(policy.contains(part), "{policy} lacks {part}");
    }
    // With S3, the browser's presigned uploads and downloads go to the store's origin; with
    // the local disk nothing else is reachable.
    let connect = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("connect-src"))
        .unwrap_or_default();
    let expected = match sc_infra::blobs::S3Settings::from_config(&app.cfg) {
        Some(s3) => format!(
            "connect-src 'self' ws://sc.test wss://sc.test {}",
            s3.client_origin().expect("the test store has an origin")
        ),
        None => "connect-src 'self' ws://sc.test wss://sc.test".to_string(),
    };
    assert_eq!(connect, expected, "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    // No inline script: every script tag loads a file of this origin.
    for tag in r.text.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(open.contains("src=\"/assets/"), "inline script: {tag}");
        assert!(tag.starts_with(&format!("{open}></script>")), "{tag}");
    }
    assert!(!r.text.contains(" style="), "inline style: {}", r.text);
}

#[tokio::test]
async fn client_routes_fall_back_to_the_page_and_server_paths_stay_the_api() {
    let app = TestApp::spawn().await;
    let index = app.get("/", None).await.text;
    for path in [
        "/sign-in",
        "/register",
        "/c/0190b2f1-7a3c-7def-8abc-0123456789ab",
        "/anything/else",
    ] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text, index, "{path}");
        assert!(csp(&r).contains("script-src 'self'"), "{path}");
    }
    let user = app.register("webber").await;
    // Unknown API routes keep the JSON envelope, with or without a token.
    app.get("/v1/nope", Some(&user.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/v1/nope", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/v1", None).await.assert_error(404, "NOT_FOUND");
    for path in ["/health/x", "/ready/x", "/metrics/x"] {
        app.get(path, None).await.assert_error(404, "NOT_FOUND");
    }
    let health = app.get("/health", None).await;
    assert_eq!(health.body["status"], "ok", "{}", health.text);
    let ready = app.get("/ready", None).await;
    assert!(ready.body["checks"].is_object(), "{}", ready.text);
    let metrics = app.get("/metrics", None).await;
    assert!(metrics.text.contains("# TYPE"), "{}", metrics.text);
    // The page is only ever read: other methods are not the app.
    let post = app.post("/", None, json!({})).await;
    assert_eq!(post.body["success"], false, "{}", post.text);
    assert!(post.status.is_client_error(), "{}", post.status);
    // A file that does not exist is a 404, never the page (a script must not get HTML).
    for path in ["/assets/index-missing.js", "/missing.png", "/c/x/y.css"] {
        app.get(path, None).await.assert_error(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_the_page_revalidates() {
    let app = TestApp::spawn().await;
    let page = app.get("/", None).await;
    let assets = asset_paths(&page.text);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")),
        "{assets:?}"
    );
    for path in &assets {
        let r = app.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&r, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        let want = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(header_of(&r, header::CONTENT_TYPE), want, "{path}");
        assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        // Neither eval nor new Function in the bundle: the CSP has no 'unsafe-eval'.
        assert!(!r.text.contains("eval("), "{path}");
    }
    // The page carries a validator: an unchanged page costs a 304 without a body.
    let etag = header_of(&page, header::ETAG);
    assert!(etag.starts_with('"'), "{etag}");
    let again = app
        .client
        .get(app.url("/"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let head = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
}

/// The refresh cookie a response sets, and the whole Set-Cookie line.
fn set_cookie(r: &Resp) -> (String, String) {
    let line = header_of(r, header::SET_COOKIE);
    let value = line
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("sc_refresh="))
        .unwrap_or_default()
        .to_string();
    (value, line)
}

/// A POST with the refresh cookie (and optionally an Origin), the way a browser sends it.
async fn post_with_cookie(
    app: &TestApp,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<(&str, &str)>,
) -> Resp {
    let mut req = app
        .client
        .request(Method::POST, app.url(path))
        .header(header::COOKIE, format!("theme=dark; sc_refresh={cookie}"));
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    if let Some((content_type, text)) = body {
        req = req
            .header(header::CONTENT_TYPE, content_type)
            .body(text.to_string());
    }
    Resp::from(req.send().await.unwrap()).await
}

async fn browser_login(app: &TestApp, name: &str) -> Resp {
    app.post(
        "/v1/auth/browser/login",
        None,
        json!({"username": name, "password": PASSWORD}),
    )
    .await
}

#[tokio::test]
async fn browser_login_keeps_the_refresh_token_in_an_http_only_strict_cookie() {
    let app = TestApp::spawn().await;
    app.register("cookie.jar").await;
    let r = browser_login(&app, "cookie.jar").await;
    let data = r.assert_ok(200).clone();
    assert!(
        data.get("refresh_token").is_none(),
        "no refresh token in the body: {data}"
    );
    assert_eq!(data["token_type"], "Bearer");
    assert_eq!(data["user"]["username"], "cookie.jar");
    let (value, line) = set_cookie(&r);
    assert!(value.len() >= 32, "{line}");
    for part in [
        "Path=/v1/auth/browser",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=2592000",
    ] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    // The access token of the body works like any other.
    let access = data["access_token"].as_str().unwrap();
    let me = app.get("/v1/users/me", Some(access)).await;
    assert_eq!(me.assert_ok(200)["username"], "cookie.jar");
    // Wrong credentials: the same 401 as the JSON login, and no cookie.
    let bad = app
        .post(
            "/v1/auth/browser/login",
            None,
            json!({"username": "cookie.jar", "password": "not-the-password-1"}),
        )
        .await;
    bad.assert_error(401, "UNAUTHORIZED");
    assert!(bad.headers.get(header::SET_COOKIE).is_none());
    // The secret never reaches a log line.
    assert!(!captured_logs().contains(&value));
}

#[tokio::test]
async fn the_cookie_refresh_rotates_and_a_replayed_cookie_ends_the_session() {
    let app = TestApp::spawn().await;
    app.register("rotor").await;
    let (first, _) = set_cookie(&browser_login(&app, "rotor").await);
    let json = Some(("application/json", "{}"));
    let r = post_with_cookie(&app, "/v1/auth/browser/refresh", &first, None, json).await;
    let data = r.assert_ok(200).clone();
    assert!(data.get("refresh_token").is_none(), "{data}");
    let (second, line) = set_cookie(&r);
    assert!(
        !second.is_empty() && second != first,
        "a rotated cookie: {line}"
    );
    let access = data["access_token"].as_str().unwrap().to_string();
    app.get("/v1/users/me", Some(&access)).await.assert_ok(200);
    // The first cookie again is a stolen one: the session ends and the cookie is cleared.
    let replay = post_with_cookie(&app, "/v1/auth/browser/refresh", &first, None, json).await;
    replay.assert_error(401, "UNAUTHORIZED");
    let (cleared, line) = set_cookie(&replay);
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    app.get("/v1/users/me", Some(&access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    post_with_cookie(&app, "/v1/auth/browser/refresh", &second, None, json)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn the_cookie_refresh_refuses_forms_foreign_origins_and_missing_cookies() {
    let app = TestApp::spawn().await;
    app.register("guarded").await;
    let (cookie, _) = set_cookie(&browser_login(&app, "guarded").await);
    let path = "/v1/auth/browser/refresh";
    // What a cross-site form can send: no JSON, so no refresh (and no preflight to pass).
    let form = Some(("application/x-www-form-urlencoded", "a=1"));
    post_with_cookie(&app, path, &cookie, None, form)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let plain = Some(("text/plain", "{}"));
    post_with_cookie(&app, path, &cookie, None, plain)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    post_with_cookie(&app, path, &cookie, None, None)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let extra = Some(("application/json", r#"{"refresh_token": "x"}"#));
    post_with_cookie(&app, path, &cookie, None, extra)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // A page of another origin is refused even with JSON.
    let json = Some(("application/json", "{}"));
    post_with_cookie(&app, path, &cookie, Some("https://evil.example.com"), json)
        .await
        .assert_error(403, "FORBIDDEN");
    // None of that used the cookie up: the app's own origin refreshes with it.
    post_with_cookie(&app, path, &cookie, Some("http://sc.test"), json)
        .await
        .assert_ok(200);
    // No cookie at all.
    let none = app.post(path, None, json!({})).await;
    none.assert_error(401, "UNAUTHORIZED");
    // The JSON refresh route does not read the cookie.
    post_with_cookie(&app, "/v1/auth/refresh", &cookie, None, json)
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn browser_register_then_logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/auth/browser/register",
            None,
            json!({"email": "newbie@example.org", "username": "newbie", "password": PASSWORD, "display_name": "New Bie"}),
        )
        .await;
    let data = r.assert_ok(201).clone();
    assert!(data.get("refresh_token").is_none(), "{data}");
    let (cookie, line) = set_cookie(&r);
    assert!(line.contains("HttpOnly") && !cookie.is_empty(), "{line}");
    let access = data["access_token"].as_str().unwrap();
    // Registration answers like the JSON route: a duplicate is a 409, with no cookie.
    let dup = app
        .post(
            "/v1/auth/browser/register",
            None,
            json!({"email": "newbie@example.org", "username": "newbie2", "password": PASSWORD, "display_name": "Again"}),
        )
        .await;
    dup.assert_error(409, "CONFLICT");
    assert!(dup.headers.get(header::SET_COOKIE).is_none());

    app.post("/v1/auth/browser/logout", None, Value::Null)
        .await
        .assert_error(401, "UNAUTHORIZED");
    let out = app
        .post("/v1/auth/browser/logout", Some(access), Value::Null)
        .await;
    out.assert_ok(200);
    let (cleared, line) = set_cookie(&out);
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    assert!(line.contains("Path=/v1/auth/browser"), "{line}");
    // Ended on the server, not only in the page: the token and the cookie are dead.
    app.get("/v1/users/me", Some(access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let json = Some(("application/json", "{}"));
    post_with_cookie(&app, "/v1/auth/browser/refresh", &cookie, None, json)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn the_openapi_document_describes_the_cookie_routes() {
    let app = TestApp::spawn().await;
    let doc = app.get("/v1/openapi.json", None).await.body;
    let paths = &doc["paths"];
    for (path, public) in [
        ("/v1/auth/browser/login", true),
        ("/v1/auth/browser/register", true),
        ("/v1/auth/browser/refresh", true),
        ("/v1/auth/browser/logout", false),
    ] {
        let op = &paths[path]["post"];
        assert!(op.is_object(), "{path} is documented");
        assert_eq!(op["security"].is_array(), !public, "{path}: {op}");
    }
    let refresh = &paths["/v1/auth/browser/refresh"]["post"];
    let ok_schema =
        &refresh["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"];
    assert_eq!(
        ok_schema["$ref"], "#/components/schemas/BrowserSessionView",
        "{refresh}"
    );
    let login = &paths["/v1/auth/browser/login"]["post"];
    assert!(
        login["responses"]["200"]["headers"]["set-cookie"].is_object(),
        "{login}"
    );
    assert!(
        doc["components"]["schemas"]["BrowserSessionView"]["properties"]["refresh_token"].is_null()
    );
}

#[tokio::test]
async fn conversations_name_a_direct_conversations_other_member() {
    // The app's list shows a direct conversation under the other member's name: it comes with
    // the conversation, not from a request per conversation.
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let grace = app.register("grace").await;
    let direct = app
        .post(
            "/v1/conversations",
            Some(&ada.access),
            json!({"kind": "direct", "member_ids": [grace.id]}),
        )
        .await;
    let id = direct.assert_ok(201)["id"].as_str().unwrap().to_string();
    assert_eq!(direct.body["data"]["peer"]["user_id"], grace.id.as_str());
    let group = app
        .post(
            "/v1/conversations",
            Some(&ada.access),
            json!({"kind": "group", "member_ids": [grace.id], "title": "Team"}),
        )
        .await;
    assert!(group.assert_ok(201)["peer"].is_null(), "{}", group.text);
    // Each side sees the other, in the list and alone, with the current display name.
    app.call(
        Method::PATCH,
        "/v1/users/me",
        Some(&grace.access),
        json!({"display_name": "Grace Hopper"}),
    )
    .await
    .assert_ok(200);
    let list = app.get("/v1/conversations", Some(&ada.access)).await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    let mine = items.iter().find(|c| c["id"] == id.as_str()).unwrap();
    assert_eq!(
        mine["peer"],
        json!({"user_id": grace.id, "username": "grace", "display_name": "Grace Hopper"})
    );
    assert!(
        items
            .iter()
            .any(|c| c["kind"] == "group" && c["peer"].is_null())
    );
    let theirs = app
        .get(&format!("/v1/conversations/{id}"), Some(&grace.access))
        .await;
    assert_eq!(theirs.assert_ok(200)["peer"]["username"], "ada");
    assert!(theirs.body["data"]["peer"].get("email").is_none());
}
