//! Push (API.md §8 and its precisions) end to end: subscriptions and their checks, Web Push to
//! a local receiver that verifies VAPID and decrypts RFC 8291, FCM and APNs against local HTTPS
//! servers that verify the OAuth2 assertion and the ES256 provider token, collapsing, 410s,
//! retries, logout and mute.

use crate::common::*;
use crate::push_servers::{ApnsServer, FcmServer, WebPushReceiver};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use sc_core::config::Config;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Pushes go to the plain-HTTP local receiver.
fn insecure(c: &mut Config) {
    c.push_allow_insecure_endpoints = true;
}

async fn subscribe_webpush(app: &TestApp, u: &TestUser, rx: &WebPushReceiver) -> (String, Value) {
    let (endpoint, p256dh, auth) = rx.subscription();
    let r = app
        .post(
            "/v1/push/subscriptions",
            Some(&u.access),
            json!({"kind": "webpush", "endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth},
                   "device_name": "Firefox on a laptop"}),
        )
        .await;
    let v = r.assert_ok(201).clone();
    (endpoint, v)
}

/// A receiver that checks VAPID against this server's public key.
async fn receiver_for(app: &TestApp) -> WebPushReceiver {
    let rx = WebPushReceiver::start().await;
    let key = app.get("/v1/push/vapid-public-key", None).await;
    rx.set_vapid_key(key.assert_ok(200)["public_key"].as_str().unwrap());
    rx
}

async fn subscriptions_of(app: &TestApp, u: &TestUser) -> Vec<Value> {
    let r = app.get("/v1/push/subscriptions", Some(&u.access)).await;
    r.assert_ok(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn direct(app: &TestApp, a: &TestUser, b: &TestUser) -> String {
    let r = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "direct", "member_ids": [b.id]}),
        )
        .await;
    r.assert_ok(201)["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn subscriptions_are_checked_deduplicated_listed_and_end_with_their_session() {
    // Without FCM or APNs credentials the server takes no such subscriptions.
    let bare = TestApp::spawn().await;
    let nobody = bare.register("pushbare").await;
    for body in [
        json!({"kind": "fcm", "token": "fcm-token:abc"}),
        json!({"kind": "apns", "token": "ab".repeat(32)}),
    ] {
        let r = bare
            .post("/v1/push/subscriptions", Some(&nobody.access), body)
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], "kind");
    }
    bare.stop().await;

    let fcm = FcmServer::start().await;
    let apns = ApnsServer::start().await;
    let files = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(vendors(&fcm, &apns, &files)).await;
    let u = app.register("pushsubs").await;
    let other = app.register("pushother").await;

    let key = app.get("/v1/push/vapid-public-key", None).await;
    let key = URL_SAFE_NO_PAD
        .decode(key.assert_ok(200)["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed P-256 point");

    let rx = WebPushReceiver::start().await;
    let (_, p256dh, auth) = rx.subscription();
    let webpush = |endpoint: &str, p256dh: &str, auth: &str| json!({"kind": "webpush", "endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}});
    let off_curve = URL_SAFE_NO_PAD.encode([4u8; 65]);
    let short_auth = URL_SAFE_NO_PAD.encode([1u8; 8]);
    for (body, field) in [
        (
            webpush(&format!("{}/push/x", rx.origin()), &p256dh, &auth),
            "endpoint",
        ),
        (
            webpush("https://127.0.0.1/push/x", &p256dh, &auth),
            "endpoint",
        ),
        (
            webpush("https://10.1.2.3/push/x", &p256dh, &auth),
            "endpoint",
        ),
        (webpush("https://[::1]/push/x", &p256dh, &auth), "endpoint"),
        (
            webpush("https://169.254.169.254/latest", &p256dh, &auth),
            "endpoint",
        ),
        (
            webpush("https://[::ffff:192.168.0.1]/x", &p256dh, &auth),
            "endpoint",
        ),
        (
            webpush("https://user:pw@push.example.org/x", &p256dh, &auth),
            "endpoint",
        ),
        (
            webpush("https://no-such-host.invalid/x", &p256dh, &auth),
            "endpoint",
        ),
        (webpush("not a url", &p256dh, &auth), "endpoint"),
        (
            webpush("https://push.example.org/x", &off_curve, &auth),
            "keys.p256dh",
        ),
        (
            webpush("https://push.example.org/x", &p256dh, &short_auth),
            "keys.auth",
        ),
        (
            json!({"kind": "webpush", "endpoint": "https://push.example.org/x"}),
            "keys",
        ),
        (json!({"kind": "fcm"}), "token"),
        (json!({"kind": "fcm", "token": "has spaces in it"}), "token"),
        (json!({"kind": "apns", "token": "not-hex"}), "token"),
        (
            json!({"kind": "apns", "token": "ab".repeat(32), "environment": "staging"}),
            "environment",
        ),
        (json!({"kind": "sms", "token": "x"}), "kind"),
    ] {
        let r = app
            .post("/v1/push/subscriptions", Some(&u.access), body.clone())
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{body} → {:?}",
            r.body
        );
    }
    assert!(
        subscriptions_of(&app, &u).await.is_empty(),
        "nothing stored"
    );

    let fcm = json!({"kind": "fcm", "token": "fcm-token:abc_DEF-1", "device_name": "Pixel"});
    let first = app
        .post("/v1/push/subscriptions", Some(&u.access), fcm.clone())
        .await;
    let first = first.assert_ok(201).clone();
    assert_eq!(first["kind"], "fcm");
    assert_eq!(first["device_name"], "Pixel");
    assert!(first.get("token").is_none(), "tokens are not echoed");
    let again = app
        .post("/v1/push/subscriptions", Some(&u.access), fcm)
        .await;
    assert_eq!(
        again.assert_ok(200)["id"],
        first["id"],
        "the same token again"
    );
    let apns = json!({"kind": "apns", "token": "AB".repeat(32), "environment": "sandbox"});
    app.post("/v1/push/subscriptions", Some(&u.access), apns)
        .await
        .assert_ok(201);

    // Listed with paging; someone else's id is 404.
    let page = app
        .get("/v1/push/subscriptions?limit=1", Some(&u.access))
        .await;
    let cursor = page.assert_ok(200)["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = app
        .get(
            &format!("/v1/push/subscriptions?limit=1&cursor={cursor}"),
            Some(&u.access),
        )
        .await;
    assert_eq!(rest.assert_ok(200)["items"][0]["kind"], "apns");
    let id = first["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/v1/push/subscriptions/{id}"),
        Some(&other.access),
        json!(null),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/v1/push/subscriptions/{id}"),
        Some(&u.access),
        json!(null),
    )
    .await
    .assert_ok(200);
    assert_eq!(subscriptions_of(&app, &u).await.len(), 1);

    // Every session's subscriptions are listed; logging out deletes that session's.
    let second = TestUser::from_pair(app.login("pushsubs").await.assert_ok(200), &u.email);
    app.post(
        "/v1/push/subscriptions",
        Some(&second.access),
        json!({"kind": "fcm", "token": "second-device"}),
    )
    .await
    .assert_ok(201);
    assert_eq!(subscriptions_of(&app, &u).await.len(), 2);
    app.post("/v1/auth/logout", Some(&u.access), json!(null))
        .await
        .assert_ok(200);
    let left = subscriptions_of(&app, &second).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["kind"], "fcm");
}

#[tokio::test]
async fn web_push_is_signed_encrypted_content_free_and_bursts_collapse() {
    let app = TestApp::spawn_with(insecure).await;
    let rx = receiver_for(&app).await;
    let a = app.register("wpa").await;
    let b = app.register("wpb").await;
    let conv = direct(&app, &a, &b).await;
    subscribe_webpush(&app, &b, &rx).await;

    let sent = app.send_text(&a, &conv, "w-1", "private words").await;
    sent.assert_ok(201);
    let got = rx.wait_for(1, WAIT).await;
    let push = &got[0];
    assert!(push.vapid_ok, "VAPID verified against the server's key");
    assert_eq!(push.content_encoding.as_deref(), Some("aes128gcm"));
    assert_eq!(push.status, 201);
    assert!(push.ttl.is_some_and(|t| t > 0));
    assert_eq!(push.urgency.as_deref(), Some("normal"));
    let topic = push.topic.clone().expect("a topic per conversation");
    assert!(topic.len() <= 32);
    let p = &push.payload;
    assert_eq!(p["type"], "message");
    assert_eq!(p["conversation_id"], conv.as_str());
    assert!(p["notification_id"].is_string());
    assert!(
        p.get("title").is_none() && p.get("body").is_none(),
        "content-free: {p}"
    );

    // A burst: 20 messages within 2 s give at most 3 pushes for the conversation.
    let started = Instant::now();
    for i in 0..20 {
        app.send_text(&a, &conv, &format!("burst-{i}"), "more")
            .await
            .assert_ok(201);
        tokio::time::sleep(Duration::from_millis(90)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let for_conv = rx
        .records()
        .iter()
        .filter(|r| r.payload["conversation_id"] == conv.as_str())
        .count();
    assert!(
        (2..=4).contains(&for_conv),
        "1 before the burst, then at most 3: {for_conv}"
    );
    let last = rx.records().last().unwrap().clone();
    assert_eq!(
        last.topic.as_deref(),
        Some(topic.as_str()),
        "one topic for the conversation"
    );

    // A mention is urgent.
    let before = rx.records().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.send_text(&a, &conv, "w-m", "@wpb look")
        .await
        .assert_ok(201);
    let got = rx.wait_for(before + 1, WAIT).await;
    let mention = got.last().unwrap();
    assert_eq!(mention.payload["type"], "mention");
    assert_eq!(mention.urgency.as_deref(), Some("high"));
}

#[tokio::test]
async fn content_is_pushed_only_when_allowed_and_never_for_encrypted_conversations() {
    let app = TestApp::spawn_with(|c| {
        insecure(c);
        c.push_include_content = true;
    })
    .await;
    let rx = receiver_for(&app).await;
    let a = app.register("wca").await;
    let b = app.register("wcb").await;
    let conv = app.group(&a, &[&b]).await;
    subscribe_webpush(&app, &b, &rx).await;
    app.send_text(&a, &conv, "c-1", "lunch at noon?")
        .await
        .assert_ok(201);
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].payload["body"], "lunch at noon?");
    assert_eq!(got[0].payload["title"], "wca in team");

    let secret = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "group", "member_ids": [b.id], "title": "vault", "encrypted": true}),
        )
        .await;
    let secret = secret.assert_ok(201)["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/conversations/{secret}/messages"),
        Some(&a.access),
        json!({"client_message_id": "e-1", "ciphertext": "AAEC"}),
    )
    .await
    .assert_ok(201);
    let got = rx.wait_for(2, WAIT).await;
    let p = &got[1].payload;
    assert_eq!(p["conversation_id"], secret.as_str());
    assert!(p.get("title").is_none() && p.get("body").is_none(), "{p}");
}

#[tokio::test]
async fn gone_subscriptions_are_deleted_and_a_failing_push_service_fails_no_request() {
    let app = TestApp::spawn_with(insecure).await;
    let rx = receiver_for(&app).await;
    let a = app.register("gna").await;
    let b = app.register("gnb").await;
    let conv = direct(&app, &a, &b).await;
    let (endpoint, _) = subscribe_webpush(&app, &b, &rx).await;

    // 503 with Retry-After: the send succeeds at once, the push comes after the retry.
    rx.queue_status(503, Some(1));
    let started = Instant::now();
    app.send_text(&a, &conv, "g-1", "x").await.assert_ok(201);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request never waits on push"
    );
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!((got[0].status, got[1].status), (503, 201));
    assert_eq!(got[0].payload, got[1].payload, "the same push, retried");

    // 410: the subscription is deleted.
    rx.unsubscribe(&endpoint);
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.send_text(&a, &conv, "g-2", "x").await.assert_ok(201);
    let started = Instant::now();
    while !subscriptions_of(&app, &b).await.is_empty() {
        assert!(started.elapsed() < WAIT, "410 deletes the subscription");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.records().last().unwrap().status, 410);
    let metrics = app.metrics().await;
    assert!(metrics.contains("outcome=\"gone\""), "{metrics}");
    assert!(!metrics.contains(&endpoint), "no endpoint in a metric");
}

#[tokio::test]
async fn logout_stops_pushes_and_a_muted_conversation_pushes_only_mentions() {
    let app = TestApp::spawn_with(insecure).await;
    let rx = receiver_for(&app).await;
    let a = app.register("lma").await;
    let b = app.register("lmb").await;
    let conv = app.group(&a, &[&b]).await;
    subscribe_webpush(&app, &b, &rx).await;
    app.call(
        Method::PUT,
        &format!("/v1/conversations/{conv}/mute"),
        Some(&b.access),
        json!(null),
    )
    .await
    .assert_ok(200);
    app.send_text(&a, &conv, "lm-1", "muted")
        .await
        .assert_ok(201);
    app.send_text(&a, &conv, "lm-2", "@lmb still you")
        .await
        .assert_ok(201);
    let got = rx.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.records().len(), 1);
    assert_eq!(got[0].payload["type"], "mention");

    app.post("/v1/auth/logout", Some(&b.access), json!(null))
        .await
        .assert_ok(200);
    app.send_text(&a, &conv, "lm-3", "@lmb gone?")
        .await
        .assert_ok(201);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.records().len(), 1, "an ended session receives nothing");
}

#[tokio::test]
async fn ringing_calls_push_urgently_for_the_ring_timeout() {
    let app = TestApp::spawn_with(|c| {
        insecure(c);
        c.call_ring_timeout_seconds = 30;
    })
    .await;
    let rx = receiver_for(&app).await;
    let a = app.register("rga").await;
    let b = app.register("rgb").await;
    let conv = direct(&app, &a, &b).await;
    subscribe_webpush(&app, &b, &rx).await;
    let call = app
        .post(
            "/v1/calls",
            Some(&a.access),
            json!({"conversation_id": conv, "kind": "audio"}),
        )
        .await;
    let call_id = call.assert_ok(201)["id"].as_str().unwrap().to_string();
    let got = rx.wait_for(1, WAIT).await;
    let p = &got[0].payload;
    assert_eq!(p["type"], "call.ringing");
    assert_eq!(p["conversation_id"], conv.as_str());
    assert_eq!(p["call_id"], call_id.as_str());
    assert_eq!(got[0].urgency.as_deref(), Some("high"));
    assert_eq!(got[0].ttl, Some(30));
}

/// FCM and APNs configured against the local servers (credentials written under `files`).
fn vendors(fcm: &FcmServer, apns: &ApnsServer, files: &tempfile::TempDir) -> impl Fn(&mut Config) {
    let creds = write_temp(files, "service-account.json", &fcm.credentials_json());
    let key = write_temp(files, "AuthKey.p8", apns.key_pem());
    let ca = write_temp(files, "ca.pem", fcm.ca_pem());
    let (fcm_endpoint, apns_endpoint) = (fcm.endpoint().to_string(), apns.endpoint().to_string());
    let (key_id, team, topic) = (
        apns.key_id().to_string(),
        apns.team_id().to_string(),
        apns.topic().to_string(),
    );
    move |c: &mut Config| {
        c.fcm_credentials_file = Some(creds.clone());
        c.fcm_endpoint = fcm_endpoint.clone();
        c.apns_key_file = Some(key.clone());
        c.apns_key_id = Some(key_id.clone());
        c.apns_team_id = Some(team.clone());
        c.apns_topic = Some(topic.clone());
        c.apns_endpoint = Some(apns_endpoint.clone());
        c.push_tls_ca_file = Some(ca.clone());
    }
}

/// A file under a temporary directory, for credentials the server reads at start.
fn write_temp(dir: &tempfile::TempDir, name: &str, content: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[tokio::test]
async fn fcm_gets_data_only_messages_with_one_cached_oauth_token() {
    let fcm = FcmServer::start().await;
    let files = tempfile::tempdir().unwrap();
    let creds = write_temp(&files, "service-account.json", &fcm.credentials_json());
    let ca = write_temp(&files, "ca.pem", fcm.ca_pem());
    let endpoint = fcm.endpoint().to_string();
    let app = TestApp::spawn_with(|c| {
        c.fcm_credentials_file = Some(creds.clone());
        c.fcm_endpoint = endpoint.clone();
        c.push_tls_ca_file = Some(ca.clone());
    })
    .await;
    let a = app.register("fca").await;
    let b = app.register("fcb").await;
    let conv = direct(&app, &a, &b).await;
    let token = "fcm-device-token:APA91b_test";
    app.post(
        "/v1/push/subscriptions",
        Some(&b.access),
        json!({"kind": "fcm", "token": token}),
    )
    .await
    .assert_ok(201);
    app.send_text(&a, &conv, "f-1", "one").await.assert_ok(201);
    let group = app.group(&a, &[&b]).await;
    app.send_text(&a, &group, "f-2", "@fcb two")
        .await
        .assert_ok(201);
    let got = fcm.wait_for(2, WAIT).await;
    for m in &got {
        assert!(m.bearer_ok, "the OAuth2 token from the assertion");
        assert_eq!(m.token.as_deref(), Some(token));
        assert!(m.message.get("notification").is_none(), "data-only");
        assert!(m.message["data"]["notification_id"].is_string());
    }
    let types: Vec<&str> = got
        .iter()
        .filter_map(|m| m.message["data"]["type"].as_str())
        .collect();
    assert!(
        types.contains(&"message") && types.contains(&"mention"),
        "{types:?}"
    );
    assert_eq!(fcm.token_requests(), 1, "the access token is cached");
    assert!(fcm.token_errors().is_empty(), "{:?}", fcm.token_errors());

    // UNREGISTERED removes the subscription.
    fcm.unregister(token);
    app.send_text(&a, &conv, "f-3", "three")
        .await
        .assert_ok(201);
    let started = Instant::now();
    while !subscriptions_of(&app, &b).await.is_empty() {
        assert!(
            started.elapsed() < WAIT,
            "404 UNREGISTERED deletes the subscription"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn apns_gets_http2_pushes_with_a_valid_provider_token() {
    let apns = ApnsServer::start().await;
    let files = tempfile::tempdir().unwrap();
    let key = write_temp(&files, "AuthKey.p8", apns.key_pem());
    let ca = write_temp(&files, "ca.pem", apns.ca_pem());
    let (endpoint, key_id, team, topic) = (
        apns.endpoint().to_string(),
        apns.key_id().to_string(),
        apns.team_id().to_string(),
        apns.topic().to_string(),
    );
    let app = TestApp::spawn_with(|c| {
        c.apns_key_file = Some(key.clone());
        c.apns_key_id = Some(key_id.clone());
        c.apns_team_id = Some(team.clone());
        c.apns_topic = Some(topic.clone());
        c.apns_endpoint = Some(endpoint.clone());
        c.push_tls_ca_file = Some(ca.clone());
    })
    .await;
    let a = app.register("apa").await;
    let b = app.register("apb").await;
    let conv = app.group(&a, &[&b]).await;
    let device = "0f".repeat(32);
    app.post(
        "/v1/push/subscriptions",
        Some(&b.access),
        json!({"kind": "apns", "token": device}),
    )
    .await
    .assert_ok(201);
    app.send_text(&a, &conv, "ap-1", "@apb hello")
        .await
        .assert_ok(201);
    let got = apns.wait_for(1, WAIT).await;
    let n = &got[0];
    assert!(n.token_ok, "ES256 provider token verified");
    assert!(n.http2);
    assert_eq!(n.device_token, device);
    assert_eq!(n.push_type.as_deref(), Some("alert"));
    assert_eq!(n.priority.as_deref(), Some("10"), "mentions are urgent");
    assert_eq!(n.topic.as_deref(), Some(topic.as_str()));
    assert!(n.collapse_id.is_some());
    assert_eq!(n.body["type"], "mention");
    assert_eq!(n.body["conversation_id"], conv.as_str());
}

#[tokio::test]
async fn dead_letters_are_shown_to_operators_and_can_be_requeued() {
    let app = TestApp::spawn_with(|c| {
        insecure(c);
        c.push_max_attempts = 2;
    })
    .await;
    let rx = receiver_for(&app).await;
    let a = app.register("dla").await;
    let b = app.register("dlb").await;
    let conv = direct(&app, &a, &b).await;
    subscribe_webpush(&app, &b, &rx).await;
    // Refused for good: a dead letter at once; 503 twice: dead after the last attempt.
    rx.queue_status(400, None);
    app.send_text(&a, &conv, "dl-1", "x").await.assert_ok(201);
    rx.wait_for(1, WAIT).await;
    let started = Instant::now();
    while app.metric("secureconnect_push_dead_letters").await < 1.0 {
        assert!(
            started.elapsed() < WAIT,
            "the dead letter shows in the metrics"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The command runs beside the server, on its data.
    let cfg = app.cfg.clone();
    let admin = |requeue: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SC_") {
                c.env_remove(k);
            }
        }
        c.args(["admin", "push-queue"])
            .env("SC_DATA_DIR", &cfg.data_dir);
        if let Some(db) = &cfg.database_url {
            c.env("SC_DATABASE_URL", db.expose());
        }
        if requeue {
            c.arg("--requeue-dead");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = admin(false);
    assert!(shown.contains("dead 1"), "{shown}");
    assert!(
        shown.contains("webpush") && shown.contains("400"),
        "{shown}"
    );
    assert!(!shown.contains(rx.origin()), "no endpoint shown: {shown}");
    let requeued = admin(true);
    assert!(
        requeued.contains("requeued 1") && requeued.contains("dead 0"),
        "{requeued}"
    );
}
