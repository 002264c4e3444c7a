//! Registration, login, lockout, tokens, refresh rotation, sessions, verification, reset.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn register_rules() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/v1/auth/register", None, json!({"email": "Mixed@Example.org", "username": "MixedCase", "password": PASSWORD, "display_name": "Mixed"}))
        .await;
    let d = r.assert_ok(201).clone();
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["expires_in"], 900);
    assert_eq!(d["user"]["username"], "mixedcase");
    assert_eq!(d["user"]["email_verified"], false);
    assert_eq!(d["user"]["role"], "user");
    assert!(d["user"]["created_at"].as_str().unwrap().ends_with('Z'));
    for k in [
        "id",
        "email",
        "username",
        "display_name",
        "avatar_url",
        "email_verified",
        "totp_enabled",
        "role",
        "created_at",
    ] {
        assert!(d["user"].get(k).is_some(), "user lacks {k}");
    }

    let dup_email = app.post("/v1/auth/register", None, json!({"email": "mixed@EXAMPLE.org", "username": "other", "password": PASSWORD, "display_name": "x"})).await;
    dup_email.assert_error(409, "CONFLICT");
    let dup_user = app.post("/v1/auth/register", None, json!({"email": "x@example.org", "username": "MIXEDCASE", "password": PASSWORD, "display_name": "x"})).await;
    dup_user.assert_error(409, "CONFLICT");

    let weak = [
        ("short", "too short"),
        ("password1234", "common"),
        ("aaaaaaaaaaaaaaaa", "repeated"),
        ("qwertyuiopasdfgh", "keyboard walk"),
        ("weakuser-is-me-99", "contains username"),
        ("weakmail-secret-1", "contains email local part"),
    ];
    for (pw, why) in weak {
        let r = app
            .post("/v1/auth/register", None, json!({"email": "weakmail@example.org", "username": "weakuser", "password": pw, "display_name": "w"}))
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], "password", "{why}");
    }
    let long = "ü".repeat(129);
    app.post("/v1/auth/register", None, json!({"email": "l@example.org", "username": "longpw", "password": long, "display_name": "l"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // 128 Unicode characters (more bytes) are fine, and NFC forms are equivalent.
    let ok_long = format!("{}{}", "ü".repeat(120), "zq7k-m2x");
    app.post("/v1/auth/register", None, json!({"email": "l2@example.org", "username": "longpw2", "password": ok_long, "display_name": "l"}))
        .await
        .assert_ok(201);
    let decomposed = "cafe\u{301} lungo mocha ristretto";
    let composed = "caf\u{e9} lungo mocha ristretto";
    app.post("/v1/auth/register", None, json!({"email": "nfc@example.org", "username": "nfcuser", "password": decomposed, "display_name": "n"}))
        .await
        .assert_ok(201);
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "nfcuser", "password": composed}),
    )
    .await
    .assert_ok(200);

    for bad in [
        json!({"email": "not-an-email", "username": "valid", "password": PASSWORD, "display_name": "x"}),
        json!({"email": "v@example.org", "username": "a", "password": PASSWORD, "display_name": "x"}),
        json!({"email": "v@example.org", "username": "has space", "password": PASSWORD, "display_name": "x"}),
        json!({"email": "v@example.org", "username": "valid", "password": PASSWORD, "display_name": ""}),
    ] {
        app.post("/v1/auth/register", None, bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn login_by_email_or_username_and_wrong_credentials() {
    let app = TestApp::spawn().await;
    let u = app.register("loginuser").await;
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": "LOGINUSER@example.org", "password": PASSWORD}),
    )
    .await
    .assert_ok(200);
    let d = app.login("LoginUser").await.assert_ok(200).clone();
    assert_eq!(d["user"]["id"], u.id.as_str());
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "loginuser", "password": "wrong-password-123"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let unknown = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "nobody_here", "password": PASSWORD}),
        )
        .await;
    unknown.assert_error(401, "UNAUTHORIZED");
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "loginuser", "password": "wrong-password-456"}),
        )
        .await;
    assert_eq!(
        unknown.body["error"]["message"], wrong.body["error"]["message"],
        "same answer for unknown and wrong"
    );
    app.post("/v1/auth/login", None, json!({"password": PASSWORD}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn unknown_account_and_wrong_password_take_the_same_time() {
    let app = TestApp::spawn_with(|c| c.lockout_threshold = 1000).await;
    app.register("timing").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..9 {
        let t = Instant::now();
        app.post(
            "/v1/auth/login",
            None,
            json!({"username": "timing", "password": format!("wrong-password-{i}")}),
        )
        .await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        app.post(
            "/v1/auth/login",
            None,
            json!({"username": format!("ghost{i}"), "password": "wrong-password"}),
        )
        .await;
        unknown.push(t.elapsed());
    }
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[4].as_secs_f64(), unknown[4].as_secs_f64());
    assert!(
        w / u < 2.0 && u / w < 2.0,
        "medians differ by 2x or more: wrong {w:.4}s unknown {u:.4}s"
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_lock_exactly_once() {
    let app = TestApp::spawn().await;
    let u = app.register("lockme").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/v1/auth/login");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"username": "lockme", "password": format!("not-the-password-{i}")}))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 423),
        "only 401/423, no 5xx: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "exactly the threshold answers 401: {statuses:?}"
    );

    // Locked: even the right password answers 423 with retry_after_seconds.
    let r = app.login("lockme").await;
    r.assert_error(423, "ACCOUNT_LOCKED");
    let retry = r.body["error"]["details"]["retry_after_seconds"]
        .as_u64()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");

    // Locked once: one audit mail, one lockout in the metrics.
    let mail = app.wait_for_mail(&u.email, "locked").await;
    assert!(mail.contains("locked"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lock_mails = mails_in(&app.outbox())
        .into_iter()
        .filter(|m| m.contains("was locked"))
        .count();
    assert_eq!(lock_mails, 1);
    let m = app.metrics().await;
    assert!(m.contains("secureconnect_auth_lockouts_total 1\n"), "{m}");
    // Existing sessions are unaffected by a lock.
    app.get("/v1/users/me", Some(&u.access))
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn lock_expires_after_its_duration() {
    let app = TestApp::spawn_with(|c| {
        c.lockout_threshold = 2;
        c.lockout_duration_seconds = 1;
    })
    .await;
    app.register("shortlock").await;
    for _ in 0..2 {
        app.post(
            "/v1/auth/login",
            None,
            json!({"username": "shortlock", "password": "wrong-password-x"}),
        )
        .await
        .assert_error(401, "UNAUTHORIZED");
    }
    app.login("shortlock")
        .await
        .assert_error(423, "ACCOUNT_LOCKED");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.login("shortlock").await.assert_ok(200);
}

#[tokio::test]
async fn per_ip_login_rate_limit() {
    let app = TestApp::spawn_with(|c| c.login_rate_per_ip_per_minute = 3).await;
    for i in 0..3 {
        let r = app
            .post(
                "/v1/auth/login",
                None,
                json!({"username": "nobody", "password": "whatever-password"}),
            )
            .await;
        r.assert_error(401, "UNAUTHORIZED");
        assert_eq!(r.headers["ratelimit-limit"], "3");
        assert_eq!(
            r.headers["ratelimit-remaining"],
            (2 - i).to_string().as_str()
        );
        assert!(r.headers.contains_key("x-ratelimit-reset"));
    }
    let r = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "nobody", "password": "whatever-password"}),
        )
        .await;
    r.assert_error(429, "RATE_LIMITED");
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        r.body["error"]["details"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(
        app.metrics()
            .await
            .contains("secureconnect_rate_limit_rejections_total{scope=\"login\"} 1")
    );
}

fn forge(secret: &[u8], claims: Value, alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let u = app.register("forgery").await;
    let now = sc_core::time::Timestamp::now().unix_seconds();
    let claims = |aud: &str, iat: i64, exp: i64, typ: &str| json!({"sub": u.id, "sid": u.session_id, "jti": "x", "aud": aud, "iss": "secureconnect", "iat": iat, "exp": exp, "typ": typ});
    let hs = jsonwebtoken::Algorithm::HS256;
    // The control: a token we forge with the real key and right claims works, so the
    // refusals below are about the one thing changed.
    let control = forge(
        JWT_SECRET.as_bytes(),
        claims("secureconnect-api", now, now + 600, "access"),
        hs,
    );
    app.get("/v1/users/me", Some(&control)).await.assert_ok(200);

    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("secureconnect-api", now, now + 600, "access"))
    );
    let tampered = {
        let mut parts: Vec<String> = u.access.split('.').map(String::from).collect();
        parts[1] = b64(
            &json!({"sub": u.id, "sid": u.session_id, "jti": "y", "aud": "secureconnect-api", "iss": "secureconnect", "iat": now, "exp": now + 99999, "typ": "access"}),
        );
        parts.join(".")
    };
    let cases = [
        ("alg none", alg_none),
        (
            "wrong key",
            forge(
                b"another-secret-another-secret-another",
                claims("secureconnect-api", now, now + 600, "access"),
                hs,
            ),
        ),
        (
            "wrong audience",
            forge(
                JWT_SECRET.as_bytes(),
                claims("someone-else", now, now + 600, "access"),
                hs,
            ),
        ),
        (
            "expired",
            forge(
                JWT_SECRET.as_bytes(),
                claims("secureconnect-api", now - 3600, now - 1800, "access"),
                hs,
            ),
        ),
        (
            "wrong type",
            forge(
                JWT_SECRET.as_bytes(),
                claims("secureconnect-api", now, now + 600, "refresh"),
                hs,
            ),
        ),
        (
            "HS512",
            forge(
                JWT_SECRET.as_bytes(),
                claims("secureconnect-api", now, now + 600, "access"),
                jsonwebtoken::Algorithm::HS512,
            ),
        ),
        ("tampered payload", tampered),
        ("refresh token as access", u.refresh.clone()),
        ("garbage", "a.b.c".to_string()),
    ];
    for (what, token) in cases {
        app.get("/v1/users/me", Some(&token))
            .await
            .assert_error(401, "UNAUTHORIZED");
        let _ = what;
    }
    // Access token as refresh token.
    app.post("/v1/auth/refresh", None, json!({"refresh_token": u.access}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let r = app
        .client
        .get(app.url("/v1/users/me"))
        .header("authorization", format!("Basic {}", u.access))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Each time claim is checked on its own: validly signed tokens that differ from a working
/// control only in `iat`, `nbf` or `exp`.
#[tokio::test]
async fn time_claims_in_the_future_or_past_are_refused() {
    let app = TestApp::spawn().await;
    let u = app.register("timeclaims").await;
    let now = sc_core::time::Timestamp::now().unix_seconds();
    let token = |iat: i64, nbf: Option<i64>, exp: i64| {
        let mut c = json!({"sub": u.id, "sid": u.session_id, "jti": "t", "aud": "secureconnect-api",
            "iss": "secureconnect", "iat": iat, "exp": exp, "typ": "access"});
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        forge(JWT_SECRET.as_bytes(), c, jsonwebtoken::Algorithm::HS256)
    };
    let accepted = [
        ("control", token(now, None, now + 600)),
        ("nbf now", token(now, Some(now), now + 600)),
        ("iat within the skew", token(now + 20, None, now + 600)),
        ("nbf within the skew", token(now, Some(now + 20), now + 600)),
    ];
    for (what, t) in accepted {
        let r = app.get("/v1/users/me", Some(&t)).await;
        assert_eq!(r.status, 200, "{what}: {:?}", r.body);
    }
    let refused = [
        ("iat beyond the skew", token(now + 120, None, now + 600)),
        (
            "nbf beyond the skew",
            token(now, Some(now + 120), now + 600),
        ),
        ("exp in the past", token(now - 600, None, now - 60)),
    ];
    for (what, t) in refused {
        let r = app.get("/v1/users/me", Some(&t)).await;
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
        r.assert_error(401, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let u = app.register("rotator").await;
    let other = TestUser::from_pair(app.login("rotator").await.assert_ok(200), &u.email);

    let r1 = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": u.refresh}),
        )
        .await;
    let d1 = r1.assert_ok(200).clone();
    assert_eq!(d1["session_id"], u.session_id.as_str());
    let new_refresh = d1["refresh_token"].as_str().unwrap().to_string();
    let new_access = d1["access_token"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, u.refresh);
    app.get("/v1/users/me", Some(&new_access))
        .await
        .assert_ok(200);

    // Replaying the rotated token revokes the whole session.
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": new_refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.get("/v1/users/me", Some(&new_access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    // The user's other session lives on.
    app.get("/v1/users/me", Some(&other.access))
        .await
        .assert_ok(200);
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": other.refresh}),
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn concurrent_refresh_with_one_token_never_yields_two_live_tokens() {
    let app = TestApp::spawn().await;
    let u = app.register("racer").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/auth/refresh"),
            u.refresh.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (
                status,
                body["data"]["refresh_token"].as_str().map(String::from),
            )
        }));
    }
    let mut issued = Vec::new();
    for t in tasks {
        let (status, tok) = t.await.unwrap();
        assert!(status == 200 || status == 401, "{status}");
        issued.extend(tok);
    }
    assert!(
        issued.len() <= 1,
        "at most one rotation wins: {}",
        issued.len()
    );
    // Whatever happened, reuse was detected or the one winner holds the only live token.
    let live = {
        let mut n = 0;
        for t in &issued {
            if app
                .post("/v1/auth/refresh", None, json!({"refresh_token": t}))
                .await
                .status
                == 200
            {
                n += 1;
            }
        }
        n
    };
    assert!(live <= 1);
}

#[tokio::test]
async fn sessions_list_end_logout_and_eviction() {
    let app = TestApp::spawn().await;
    let first = app.register("sessions").await;
    let mut logins = Vec::new();
    for i in 0..4 {
        let r = app.post("/v1/auth/login", None, json!({"username": "sessions", "password": PASSWORD, "device_name": format!("device {i}")})).await;
        logins.push(TestUser::from_pair(r.assert_ok(200), &first.email));
        // Keep the first session the least recently used.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let list = app.get("/v1/auth/sessions", Some(&logins[3].access)).await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 5, "registration session counts");
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(items.iter().any(|s| s["device_name"] == "device 3"));
    for k in [
        "id",
        "device_name",
        "ip",
        "user_agent",
        "created_at",
        "last_seen_at",
        "current",
    ] {
        assert!(items[0].get(k).is_some(), "session lacks {k}");
    }

    // The sixth login evicts the least recently used: the registration session.
    let sixth = TestUser::from_pair(app.login("sessions").await.assert_ok(200), &first.email);
    app.get("/v1/users/me", Some(&first.access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": first.refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let list = app.get("/v1/auth/sessions", Some(&sixth.access)).await;
    assert_eq!(list.body["data"]["items"].as_array().unwrap().len(), 5);

    // End one own session; another user's session id is 404.
    let stranger = app.register("stranger").await;
    app.call(
        Method::DELETE,
        &format!("/v1/auth/sessions/{}", stranger.session_id),
        Some(&sixth.access),
        Value::Null,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.get("/v1/users/me", Some(&stranger.access))
        .await
        .assert_ok(200);
    app.call(
        Method::DELETE,
        &format!("/v1/auth/sessions/{}", logins[0].session_id),
        Some(&sixth.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get("/v1/users/me", Some(&logins[0].access))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // Logout ignores any body (a session id there is never ended).
    let r = app
        .post(
            "/v1/auth/logout",
            Some(&logins[1].access),
            json!({"session_id": logins[2].session_id}),
        )
        .await;
    r.assert_ok(200);
    app.get("/v1/users/me", Some(&logins[1].access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/v1/users/me", Some(&logins[2].access))
        .await
        .assert_ok(200);
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": logins[1].refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");

    // Logout-all ends every session.
    app.post("/v1/auth/logout-all", Some(&logins[2].access), Value::Null)
        .await
        .assert_ok(200);
    for s in [&logins[2], &logins[3], &sixth] {
        app.get("/v1/users/me", Some(&s.access))
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn email_verification() {
    let app = TestApp::spawn().await;
    let u = app.register("verifier").await;
    let mail = app.wait_for_mail(&u.email, "verify-email?token=").await;
    assert!(
        mail.contains("http://sc.test/verify-email?token="),
        "{mail}"
    );
    let token = token_in(&mail);
    app.post("/v1/auth/email/verify", None, json!({"token": "wrong"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.post("/v1/auth/email/verify", None, json!({"token": token}))
        .await
        .assert_ok(200);
    app.post("/v1/auth/email/verify", None, json!({"token": token}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        app.get("/v1/users/me", Some(&u.access)).await.body["data"]["email_verified"],
        true
    );
    app.post("/v1/auth/email/resend", Some(&u.access), Value::Null)
        .await
        .assert_error(409, "CONFLICT");
}

#[tokio::test]
async fn resend_is_rate_limited_and_voids_older_links() {
    let app = TestApp::spawn_with(|c| c.email_resend_per_hour = 2).await;
    let u = app.register("resender").await;
    let first = token_in(&app.wait_for_mail(&u.email, "verify-email").await);
    app.post("/v1/auth/email/resend", Some(&u.access), Value::Null)
        .await
        .assert_ok(200);
    app.post("/v1/auth/email/resend", Some(&u.access), Value::Null)
        .await
        .assert_ok(200);
    let r = app
        .post("/v1/auth/email/resend", Some(&u.access), Value::Null)
        .await;
    r.assert_error(429, "RATE_LIMITED");
    assert_eq!(
        r.headers["ratelimit-limit"], "2",
        "the resend limit's own headers"
    );
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    app.post("/v1/auth/email/verify", None, json!({"token": first}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn password_reset() {
    let app = TestApp::spawn().await;
    let u = app.register("resetter").await;
    let r = app
        .post(
            "/v1/auth/password-reset/request",
            None,
            json!({"email": "nobody@example.org"}),
        )
        .await;
    r.assert_ok(202);
    app.post(
        "/v1/auth/password-reset/request",
        None,
        json!({"email": "RESETTER@example.org"}),
    )
    .await
    .assert_ok(202);
    let token = token_in(&app.wait_for_mail(&u.email, "reset-password?token=").await);

    let weak = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "new_password": "short"}),
        )
        .await;
    weak.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(weak.body["error"]["details"]["field"], "new_password");
    // A refused password leaves the link usable.
    let new_pw = "marmalade-sunrise-87";
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": token, "new_password": new_pw}),
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": token, "new_password": "another-good-one-55"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    app.get("/v1/users/me", Some(&u.access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.login("resetter")
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "resetter", "password": new_pw}),
    )
    .await
    .assert_ok(200);
    app.wait_for_mail(&u.email, "password was changed").await;
    app.post(
        "/v1/auth/password-reset/confirm",
        None,
        json!({"token": "bogus", "new_password": new_pw}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}
