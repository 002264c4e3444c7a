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
