//! Operations endpoints, the envelope on framework errors, request ids and security headers.

use crate::common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn health_ready_metrics_openapi() {
    let app = TestApp::spawn().await;
    let h = app.get("/health", None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, serde_json::json!({"status": "ok"}));

    let r = app.get("/ready", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok", "{}", r.text);
    for dep in ["database", "cache", "pubsub", "blobs", "mail", "push", "ai"] {
        let v = r.body["checks"][dep].as_str().unwrap_or_default();
        assert!(
            ["ok", "degraded", "down", "disabled"].contains(&v),
            "{dep}: {v}"
        );
    }
    assert_eq!(r.body["checks"]["database"], "ok");

    app.get("/v1/users/me", None).await;
    let m = app.metrics().await;
    assert!(m.contains("secureconnect_http_requests_total{"), "{m}");
    assert!(
        m.contains("route=\"/v1/users/me\""),
        "metrics label by route template: {m}"
    );
    assert!(m.contains("secureconnect_http_request_duration_seconds_bucket"));
    assert!(m.contains("secureconnect_db_pool_connections"));

    let o = app.get("/v1/openapi.json", None).await;
    assert_eq!(o.status, 200);
    assert!(o.body["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/v1/auth/login",
        "/v1/auth/register",
        "/v1/users/me",
        "/v1/auth/2fa/enable",
    ] {
        assert!(o.body["paths"][p].is_object(), "openapi lacks {p}");
    }
}

/// The document tools rely on: unique operation ids, the bearer requirement exactly on the
/// routes that answer 401 without a token, every response inside its envelope, and the list
/// parameters on every paged list.
#[tokio::test]
async fn openapi_operations_are_unique_secured_and_enveloped() {
    let app = TestApp::spawn().await;
    let doc = app.get("/v1/openapi.json", None).await.body;
    let raw = ["/health", "/ready", "/metrics", "/v1/openapi.json"];
    let mut ids = std::collections::HashSet::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let responses = op["responses"].as_object().unwrap();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            // Without a token: 401 exactly where the document asks for one.
            let concrete = path
                .replace("{id}", "01a2333f-8125-77d3-bdd7-3632b6d3236a")
                .replace("{user_id}", "01a2333f-8125-77d3-bdd7-3632b6d3236a")
                .replace("{emoji}", "x")
                .replace("{n}", "1")
                .replace("{share_id}", "01a2333f-8125-77d3-bdd7-3632b6d3236a");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app.call(m, &concrete, None, serde_json::Value::Null).await;
            if secured {
                assert_eq!(r.status, 401, "{method} {path} without a token");
                assert!(responses.contains_key("401"), "{method} {path} lists 401");
            } else {
                assert_ne!(r.status, 401, "{method} {path} is public but wants a token");
            }
            if raw.contains(&path.as_str()) {
                continue;
            }
            for status in ["400", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            for (status, resp) in responses {
                if status.starts_with('1') {
                    continue;
                }
                let schema = &resp["content"]["application/json"]["schema"];
                if status.starts_with('2') && path.starts_with("/v1/blobs/") && method == "get" {
                    // The bytes of a download: not enveloped.
                    assert!(resp["content"]["application/octet-stream"].is_object());
                } else if status.starts_with('2') {
                    assert_eq!(
                        schema["properties"]["success"]["const"], true,
                        "{method} {path} {status}"
                    );
                    assert!(schema["properties"]["data"].is_object());
                    assert_eq!(
                        schema["properties"]["meta"]["$ref"],
                        "#/components/schemas/Meta"
                    );
                } else {
                    assert_eq!(
                        schema["$ref"],
                        format!("#/components/schemas/Error{status}"),
                        "{method} {path} {status}"
                    );
                }
            }
            let page = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["$ref"]
                .as_str()
                .is_some_and(|r| r.contains("/Page_"));
            if page {
                let names: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(
                    names.contains(&"limit") && names.contains(&"cursor"),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(operations >= 49, "{operations} operations");
    let e400 = &doc["components"]["schemas"]["Error400"]["properties"]["error"]["properties"]["code"]
        ["enum"];
    assert_eq!(e400, &serde_json::json!(["VALIDATION_ERROR"]));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_enveloped() {
    let app = TestApp::spawn().await;
    let u = app.register("opsuser").await;
    app.get("/v1/definitely-not-here", Some(&u.access))
        .await
        .assert_error(404, "NOT_FOUND");
    // Outside the API a path naming no file is a client-side route of the web app (web.rs);
    // one that names a missing file is a 404 with the envelope.
    app.get("/nothing.txt", None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(Method::PUT, "/v1/users/me", Some(&u.access), Value::Null)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    app.call(Method::GET, "/v1/auth/login", None, Value::Null)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    // Protected routes answer 401 before 404/405.
    app.get("/v1/definitely-not-here", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.call(Method::PUT, "/v1/users/me", None, Value::Null)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/v1/users/me", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn request_ids_and_security_headers() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/v1/users/me"))
        .header("x-request-id", "client-id_1.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-id_1.2");
    let h = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["meta"]["request_id"], "client-id_1.2");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(h.contains_key("referrer-policy"));
    assert!(
        !h.contains_key("strict-transport-security"),
        "no HSTS without TLS"
    );
    let ts = body["meta"]["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "three fractional digits and Z: {ts}");
    assert!(ts.ends_with('Z'));

    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, "bad id with spaces");
    assert!(!id.is_empty());
}

#[tokio::test]
async fn cors_allow_list() {
    let app = TestApp::spawn_with(|c| {
        c.cors_allowed_origins = sc_core::config::List(vec!["https://app.example.org".into()])
    })
    .await;
    let ok = app
        .client
        .request(Method::OPTIONS, app.url("/v1/auth/login"))
        .header("origin", "https://app.example.org")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    let bad = app
        .client
        .request(Method::OPTIONS, app.url("/v1/auth/login"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!bad.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn trusted_proxy_decides_client_ip() {
    // Not behind a trusted proxy: X-Forwarded-For is ignored.
    let app = TestApp::spawn().await;
    let u = app.register("ipuser").await;
    let r = app
        .client
        .get(app.url("/v1/auth/sessions"))
        .bearer_auth(&u.access)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let ip = body["data"]["items"][0]["ip"].as_str().unwrap().to_string();
    assert_eq!(ip, "127.0.0.1");

    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = sc_core::config::List(vec!["127.0.0.1".into()])
    })
    .await;
    let r = app
        .client
        .post(app.url("/v1/auth/register"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&serde_json::json!({"email": "p@example.org", "username": "proxied", "password": PASSWORD, "display_name": "P"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let token = body["data"]["access_token"].as_str().unwrap();
    let s = app.get("/v1/auth/sessions", Some(token)).await;
    assert_eq!(s.body["data"]["items"][0]["ip"], "203.0.113.9");
}

#[tokio::test]
async fn tls_termination_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(status.success());
    let app = TestApp::spawn_with(|c| {
        c.tls_cert_file = Some(cert.clone());
        c.tls_key_file = Some(key.clone());
    })
    .await;
    let https = app.base.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = client
        .get(format!("{https}/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    // Plain HTTP on the TLS port is refused.
    assert!(
        app.client
            .get(format!("{}/health", app.base))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    // One hashing slot: three registrations queue behind each other, so they are still in
    // flight well after their connections were accepted.
    let app = TestApp::spawn_with(|c| c.password_hash_concurrency = 1).await;
    let mut in_flight = Vec::new();
    for i in 0..3 {
        let (client, url) = (app.client.clone(), app.url("/v1/auth/register"));
        in_flight.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&serde_json::json!({"email": format!("drain{i}@example.org"), "username": format!("drain{i}"), "password": PASSWORD, "display_name": "d"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let base = app.base.clone();
    app.stop().await;
    for r in in_flight {
        assert_eq!(
            r.await.unwrap().unwrap(),
            201,
            "in-flight requests complete during shutdown"
        );
    }
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn every_route_and_websocket_connects_are_limited_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.api_rate_per_ip_per_minute = 30;
        c.ws_connects_per_ip_per_minute = 2;
    })
    .await;
    let u = app.register("ipbound").await;
    let _a = app.ws(&u).await;
    let _b = app.ws(&u).await;
    // The third connect in the minute is refused before the upgrade.
    let ticket = app.ticket(&u).await;
    let url = format!(
        "{}/v1/realtime?ticket={ticket}",
        app.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!(
            "third connect not refused: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    // Every route, authenticated or not, counts against the address.
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = if i % 2 == 0 {
            app.get("/v1/users/me", Some(&u.access)).await
        } else {
            app.get("/v1/push/vapid-public-key", None).await
        };
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            assert_eq!(r.body["error"]["code"], "RATE_LIMITED", "{}", r.body);
            assert!(!r.body["meta"]["request_id"].as_str().unwrap().is_empty());
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    // register, 3 tickets and the refused connect counted before these.
    assert!(ok > 0 && ok <= 30, "{statuses:?}");
    assert!(statuses.ends_with(&[429, 429]), "{statuses:?}");
    // Probes and scrapes are never throttled.
    assert_eq!(app.get("/health", None).await.status, 200);
    assert_eq!(app.get("/ready", None).await.status, 200);
}

#[tokio::test]
async fn a_stopping_instance_closes_sockets_with_1012() {
    let app = TestApp::spawn().await;
    let u = app.register("drained").await;
    let mut ws = app.ws(&u).await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(ws.close_code().await, Some(1012));
    stopping.await.unwrap();
}
