//! TOTP two-factor authentication: setup, enable, login, replay, recovery codes, disable.

use crate::common::*;
use sc_service::crypto::{base32_decode, totp_code};
use serde_json::{Value, json};

fn code_at(secret: &[u8], offset_steps: i64) -> String {
    let now = sc_core::time::Timestamp::now().unix_seconds() + offset_steps * 30;
    totp_code(secret, now as u64)
}

#[tokio::test]
async fn totp_lifecycle() {
    let app = TestApp::spawn().await;
    let u = app.register("twofactor").await;
    let t = Some(u.access.as_str());

    let setup = app.post("/v1/auth/2fa/setup", t, Value::Null).await;
    let d = setup.assert_ok(200).clone();
    let secret_b32 = d["secret"].as_str().unwrap().to_string();
    let uri = d["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret_b32}")),
        "{uri}"
    );
    let secret = base32_decode(&secret_b32).unwrap();
    assert_eq!(secret.len(), 20);
    // Not active until enabled.
    app.login("twofactor").await.assert_ok(200);

    app.post("/v1/auth/2fa/enable", t, json!({"code": "000000"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let enable_code = code_at(&secret, 0);
    let codes = app
        .post("/v1/auth/2fa/enable", t, json!({"code": enable_code}))
        .await;
    let recovery: Vec<String> = codes.assert_ok(200)["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        recovery
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        10
    );
    assert_eq!(
        app.get("/v1/users/me", t).await.body["data"]["totp_enabled"],
        true
    );
    app.post("/v1/auth/2fa/setup", t, Value::Null)
        .await
        .assert_error(409, "CONFLICT");
    app.wait_for_mail(&u.email, "two-factor authentication is on")
        .await;

    // Password alone: TOTP_REQUIRED, no tokens. Wrong password still plain 401.
    let r = app.login("twofactor").await;
    r.assert_error(401, "TOTP_REQUIRED");
    assert!(r.body.get("data").is_none());
    app.post("/v1/auth/login", None, json!({"username": "twofactor", "password": "wrong-password-1", "totp_code": code_at(&secret, 1)}))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // The code used to enable cannot be replayed; a fresh step works once.
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": enable_code}),
    )
    .await
    .assert_error(401, "TOTP_REQUIRED");
    let next = code_at(&secret, 1);
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": next}),
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": next}),
    )
    .await
    .assert_error(401, "TOTP_REQUIRED");
    // Codes outside ±1 step are refused.
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": code_at(&secret, 3)}),
    )
    .await
    .assert_error(401, "TOTP_REQUIRED");

    // A recovery code works once (any case, with or without the dash).
    let rc = recovery[0].to_uppercase();
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": rc}),
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "twofactor", "password": PASSWORD, "totp_code": recovery[0]}),
    )
    .await
    .assert_error(401, "TOTP_REQUIRED");

    // Disable needs the password and a code.
    app.post(
        "/v1/auth/2fa/disable",
        t,
        json!({"password": "wrong-password-9", "code": recovery[1]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/auth/2fa/disable",
        t,
        json!({"password": PASSWORD, "code": "123456"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/auth/2fa/disable",
        t,
        json!({"password": PASSWORD, "code": recovery[1]}),
    )
    .await
    .assert_ok(200);
    assert_eq!(
        app.get("/v1/users/me", t).await.body["data"]["totp_enabled"],
        false
    );
    app.login("twofactor").await.assert_ok(200);
    // Both changes are security notices (with their mails), newest first.
    let items = crate::notifications::wait_notifications(&app, &u, 2).await;
    let events: Vec<&str> = items
        .iter()
        .filter_map(|n| n["data"]["event"].as_str())
        .collect();
    assert_eq!(events, ["2fa.disabled", "2fa.enabled"]);
    app.wait_for_mail(&u.email, "two-factor authentication is off")
        .await;
}

#[tokio::test]
async fn wrong_second_factor_counts_toward_lockout() {
    let app = TestApp::spawn_with(|c| c.lockout_threshold = 3).await;
    let u = app.register("tfalock").await;
    let t = Some(u.access.as_str());
    let secret_b32 = app.post("/v1/auth/2fa/setup", t, Value::Null).await.body["data"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = base32_decode(&secret_b32).unwrap();
    app.post(
        "/v1/auth/2fa/enable",
        t,
        json!({"code": code_at(&secret, 0)}),
    )
    .await
    .assert_ok(200);
    for _ in 0..3 {
        app.post(
            "/v1/auth/login",
            None,
            json!({"username": "tfalock", "password": PASSWORD, "totp_code": "999999"}),
        )
        .await
        .assert_error(401, "TOTP_REQUIRED");
    }
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "tfalock", "password": PASSWORD, "totp_code": code_at(&secret, 1)}),
    )
    .await
    .assert_error(423, "ACCOUNT_LOCKED");
}
