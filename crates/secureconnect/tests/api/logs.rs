//! No secret ever reaches a log line: run a full flow, then scan everything logged.

use crate::common::*;
use sc_service::crypto::{base32_decode, totp_code};
use serde_json::{Value, json};

#[tokio::test]
async fn a_full_flow_logs_no_secret() {
    let app = TestApp::spawn().await;
    let password = "saffron-kettle-drum-19";
    let r = app
        .post("/v1/auth/register", None, json!({"email": "logscan@example.org", "username": "logscan", "password": password, "display_name": "Log Scan"}))
        .await;
    let u = TestUser::from_pair(r.assert_ok(201), "logscan@example.org");
    let verify = token_in(&app.wait_for_mail(&u.email, "verify-email").await);
    app.post("/v1/auth/email/verify", None, json!({"token": verify}))
        .await
        .assert_ok(200);
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "logscan", "password": password}),
        )
        .await;
    let s2 = TestUser::from_pair(login.assert_ok(200), &u.email);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": s2.refresh}),
        )
        .await;
    let s3 = TestUser::from_pair(refreshed.assert_ok(200), &u.email);
    // A failed login with a wrong password, which must not be logged either.
    let wrong = "wrong-but-secret-password-77";
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "logscan", "password": wrong}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let setup = app
        .post("/v1/auth/2fa/setup", Some(&s3.access), Value::Null)
        .await;
    let secret = setup.body["data"]["secret"].as_str().unwrap().to_string();
    let code = totp_code(
        &base32_decode(&secret).unwrap(),
        sc_core::time::Timestamp::now().unix_seconds() as u64,
    );
    let codes = app
        .post(
            "/v1/auth/2fa/enable",
            Some(&s3.access),
            json!({"code": code}),
        )
        .await;
    let recovery = codes.body["data"]["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/v1/auth/password-reset/request",
        None,
        json!({"email": u.email}),
    )
    .await
    .assert_ok(202);
    let reset = token_in(&app.wait_for_mail(&u.email, "reset-password").await);
    let new_password = "quartz-meadow-bicycle-4";
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": reset, "new_password": new_password}),
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "logscan", "password": new_password, "totp_code": recovery}),
    )
    .await
    .assert_ok(200);
    // A request with a client-chosen id, so we can prove the capture works.
    let probe = app
        .client
        .get(app.url("/v1/users/me"))
        .bearer_auth(&u.access)
        .header("x-request-id", "logscan-probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 401);

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = captured_logs();
    assert!(
        logs.contains("logscan-probe-1"),
        "log capture works and carries request ids"
    );
    assert!(
        logs.lines()
            .filter(|l| l.contains("logscan-probe-1"))
            .all(|l| l.contains("\"request_id\""))
    );
    let secrets = [
        ("password", password.to_string()),
        ("wrong password", wrong.to_string()),
        ("new password", new_password.to_string()),
        ("access token", u.access.clone()),
        ("access token (login)", s2.access.clone()),
        ("refresh token", u.refresh.clone()),
        ("refresh token (login)", s2.refresh.clone()),
        ("refresh token (rotated)", s3.refresh.clone()),
        ("verification token", verify),
        ("reset token", reset),
        ("totp secret", secret),
        ("recovery code", recovery),
        ("jwt signing key", JWT_SECRET.to_string()),
    ];
    for (what, s) in secrets {
        assert!(!logs.contains(&s), "a {what} reached the logs");
    }
}

/// Push credentials, capability URLs and device tokens never reach a log line or a metric,
/// through deliveries, retries, dead letters and removed subscriptions.
#[tokio::test]
async fn a_push_flow_logs_no_credential_endpoint_or_token() {
    use crate::push_servers::{ApnsServer, FcmServer, WebPushReceiver};
    let fcm = FcmServer::start().await;
    let apns = ApnsServer::start().await;
    let rx = WebPushReceiver::start().await;
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let fcm_file = write("fcm-service-account-secret.json", &fcm.credentials_json());
    let apns_file = write("AuthKey_SECRETPATH.p8", apns.key_pem());
    let ca = write("ca.pem", fcm.ca_pem());
    let vapid = sc_infra::push::VapidKey::generate().to_base64url();
    let (fcm_endpoint, apns_endpoint) = (fcm.endpoint().to_string(), apns.endpoint().to_string());
    let (key_id, team, topic) = (
        apns.key_id().to_string(),
        apns.team_id().to_string(),
        apns.topic().to_string(),
    );
    let app = TestApp::spawn_with(|c| {
        c.push_allow_insecure_endpoints = true;
        c.vapid_private_key = Some(sc_core::secret::Secret::new(vapid.clone()));
        c.fcm_credentials_file = Some(fcm_file.clone());
        c.fcm_endpoint = fcm_endpoint.clone();
        c.apns_key_file = Some(apns_file.clone());
        c.apns_key_id = Some(key_id.clone());
        c.apns_team_id = Some(team.clone());
        c.apns_topic = Some(topic.clone());
        c.apns_endpoint = Some(apns_endpoint.clone());
        c.push_tls_ca_file = Some(ca.clone());
        c.push_max_attempts = 2;
    })
    .await;
    let key = app.get("/v1/push/vapid-public-key", None).await;
    rx.set_vapid_key(key.assert_ok(200)["public_key"].as_str().unwrap());
    let a = app.register("pushloga").await;
    let b = app.register("pushlogb").await;
    let conv = app.group(&a, &[&b]).await;
    let (endpoint, p256dh, auth) = rx.subscription();
    let (gone_endpoint, gone_p256dh, gone_auth) = rx.subscription();
    let fcm_token = "fcm-secret-device-token:0123456789";
    let apns_token = "5ec7e7".repeat(11)[..64].to_string();
    for body in [
        json!({"kind": "webpush", "endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}),
        json!({"kind": "webpush", "endpoint": gone_endpoint, "keys": {"p256dh": gone_p256dh, "auth": gone_auth}}),
        json!({"kind": "fcm", "token": fcm_token}),
        json!({"kind": "apns", "token": apns_token}),
    ] {
        app.post("/v1/push/subscriptions", Some(&b.access), body)
            .await
            .assert_ok(201);
    }
    // Every path: delivered, retried (503), refused for good (400 → dead letter), gone (410).
    rx.unsubscribe(&gone_endpoint);
    rx.queue_status(503, Some(1));
    fcm.queue_status(503, Some(1));
    apns.queue_reason(413, "PayloadTooLarge");
    app.send_text(&a, &conv, "pl-1", "@pushlogb first")
        .await
        .assert_ok(201);
    rx.wait_for(3, std::time::Duration::from_secs(15)).await;
    fcm.wait_for(2, std::time::Duration::from_secs(15)).await;
    apns.wait_for(1, std::time::Duration::from_secs(15)).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let logs = captured_logs();
    let metrics = app.metrics().await;
    let creds: Value = serde_json::from_str(&fcm.credentials_json()).unwrap();
    let fcm_key_line = creds["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let apns_key_line = apns.key_pem().lines().nth(1).unwrap().to_string();
    let secrets = [
        ("VAPID private key", vapid.clone()),
        ("FCM private key", fcm_key_line),
        (
            "FCM credentials path",
            "fcm-service-account-secret".to_string(),
        ),
        ("APNs key", apns_key_line),
        ("APNs key path", "AuthKey_SECRETPATH".to_string()),
        ("Web Push endpoint", endpoint.clone()),
        ("Web Push endpoint (gone)", gone_endpoint.clone()),
        (
            "Web Push endpoint path",
            endpoint.rsplit('/').next().unwrap().to_string(),
        ),
        ("auth secret", auth.clone()),
        ("p256dh", p256dh.clone()),
        ("FCM token", fcm_token.to_string()),
        ("APNs token", apns_token.clone()),
    ];
    for (what, s) in &secrets {
        assert!(!logs.contains(s.as_str()), "a {what} reached the logs");
        assert!(
            !metrics.contains(s.as_str()),
            "a {what} reached the metrics"
        );
    }
    assert!(
        metrics.contains("outcome=\"dead\"") && metrics.contains("outcome=\"gone\""),
        "the flow went through the failure paths: {metrics}"
    );
}
