//! Hostile input: every bad body gets a 4xx envelope and changes nothing.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn raw_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Resp {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Resp::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn hostile_bodies_get_4xx_envelopes() {
    let app = TestApp::spawn().await;
    let u = app.register("hostile").await;
    let reg = |name: &str| {
        json!({"email": format!("{name}@example.org"), "username": name, "password": PASSWORD, "display_name": name}).to_string().into_bytes()
    };

    raw_post(&app, "/v1/auth/register", None, "text/plain", reg("h1"))
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    raw_post(
        &app,
        "/v1/auth/register",
        None,
        "application/x-www-form-urlencoded",
        b"a=b".to_vec(),
    )
    .await
    .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    raw_post(
        &app,
        "/v1/auth/register",
        None,
        "application/json",
        deep.into_bytes(),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    raw_post(
        &app,
        "/v1/auth/login",
        None,
        "application/json",
        deep_obj.into_bytes(),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    raw_post(
        &app,
        "/v1/auth/register",
        None,
        "application/json",
        big.into_bytes(),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Unknown length (chunked) is limited while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    Resp::from(r).await.assert_error(413, "PAYLOAD_TOO_LARGE");

    let mut invalid_utf8 = b"{\"email\":\"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    invalid_utf8.extend_from_slice(b"\"}");
    raw_post(
        &app,
        "/v1/auth/login",
        None,
        "application/json",
        invalid_utf8,
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let mut raw_nul = b"{\"username\":\"a".to_vec();
    raw_nul.push(0);
    raw_nul.extend_from_slice(b"b\",\"password\":\"x\"}");
    raw_post(&app, "/v1/auth/login", None, "application/json", raw_nul)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let escaped_nul = json!({"email": "nul@example.org", "username": "nul\u{0}user", "password": PASSWORD, "display_name": "n"});
    app.post("/v1/auth/register", None, escaped_nul)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let nul_name = json!({"display_name": "bad\u{0}name"});
    app.call(
        reqwest::Method::PATCH,
        "/v1/users/me",
        Some(&u.access),
        nul_name,
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    raw_post(
        &app,
        "/v1/auth/login",
        None,
        "application/json",
        b"{not json".to_vec(),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    raw_post(
        &app,
        "/v1/auth/login",
        None,
        "application/json",
        b"".to_vec(),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    raw_post(
        &app,
        "/v1/auth/login",
        None,
        "application/json",
        b"[]".to_vec(),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let unknown = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "hostile", "password": PASSWORD, "admin": true}),
        )
        .await;
    unknown.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(unknown.body["error"]["details"]["field"], "admin");
    let missing = app.post("/v1/auth/refresh", None, json!({})).await;
    missing.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(missing.body["error"]["details"]["field"], "refresh_token");
    let wrong_type = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": 5}))
        .await;
    assert_eq!(
        wrong_type.body["error"]["details"]["field"],
        "refresh_token"
    );

    // Nothing above created an account.
    let s = app.get("/v1/users?q=h1", Some(&u.access)).await;
    assert_eq!(s.body["data"]["items"].as_array().unwrap().len(), 0);
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_ids_and_list_params_are_400() {
    let app = TestApp::spawn().await;
    let u = app.register("params").await;
    let t = Some(u.access.as_str());
    app.get("/v1/users/not-a-uuid", t)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.call(
        reqwest::Method::DELETE,
        "/v1/auth/sessions/123",
        t,
        serde_json::Value::Null,
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    for q in [
        "limit=0",
        "limit=101",
        "limit=-3",
        "limit=abc",
        "cursor=***",
        "q=a&bogus=1",
    ] {
        app.get(&format!("/v1/users?q=a&{q}"), t)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    app.get("/v1/users", t)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get("/v1/users/me/blocked?cursor=bm9wZQ", t)
        .await
        .assert_error(400, "VALIDATION_ERROR");
}
