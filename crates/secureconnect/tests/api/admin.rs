//! Administration (API.md §11): the admin gate, stats, the user directory, roles and quotas,
//! bans across instances, the audit log, retention and the admin CLI.

use crate::common::*;
use reqwest::Method;
use sc_service::crypto::{base32_decode, totp_code};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Makes `user` an administrator (as the CLI would, through the database).
async fn promote(app: &TestApp, user: &TestUser) {
    let db = secureconnect::app::connect_db(&app.cfg).await.unwrap();
    db.users()
        .set_role(
            user.id.parse().unwrap(),
            "admin",
            sc_core::time::Timestamp::now(),
        )
        .await
        .unwrap();
}

/// Turns 2FA on for `user` through the API; returns the TOTP secret.
async fn enable_2fa(app: &TestApp, user: &TestUser) -> Vec<u8> {
    let t = Some(user.access.as_str());
    let setup = app.post("/v1/auth/2fa/setup", t, Value::Null).await;
    let secret = base32_decode(setup.assert_ok(200)["secret"].as_str().unwrap()).unwrap();
    let code = totp_code(
        &secret,
        sc_core::time::Timestamp::now().unix_seconds() as u64,
    );
    app.post("/v1/auth/2fa/enable", t, json!({"code": code}))
        .await
        .assert_ok(200);
    secret
}

/// An administrator with 2FA, ready for the admin routes.
async fn admin(app: &TestApp, name: &str) -> TestUser {
    let a = app.register(name).await;
    promote(app, &a).await;
    enable_2fa(app, &a).await;
    a
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.call(Method::PATCH, path, Some(token), body).await
}

#[tokio::test]
async fn the_admin_gate_covers_every_admin_route() {
    let app = TestApp::spawn().await;
    let user = app.register("plainuser").await;
    let no2fa = app.register("no2faadmin").await;
    promote(&app, &no2fa).await;
    let boss = admin(&app, "gateboss").await;
    let target = app.register("gatetarget").await;
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/v1/admin/stats".into(), Value::Null),
        (Method::GET, "/v1/admin/users?q=gate".into(), Value::Null),
        (
            Method::GET,
            format!("/v1/admin/users/{}", target.id),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/v1/admin/users/{}", target.id),
            json!({"quota": 1000}),
        ),
        (
            Method::POST,
            format!("/v1/admin/users/{}/ban", target.id),
            json!({"reason": "spam"}),
        ),
        (
            Method::POST,
            format!("/v1/admin/users/{}/unban", target.id),
            Value::Null,
        ),
        (Method::GET, "/v1/admin/audit-log".into(), Value::Null),
    ];
    for (method, path, body) in &routes {
        let r = app.call(method.clone(), path, None, body.clone()).await;
        r.assert_error(401, "UNAUTHORIZED");
        let r = app
            .call(method.clone(), path, Some(&user.access), body.clone())
            .await;
        r.assert_error(403, "FORBIDDEN");
        let r = app
            .call(method.clone(), path, Some(&no2fa.access), body.clone())
            .await;
        r.assert_error(403, "FORBIDDEN");
        assert_eq!(
            r.body["error"]["details"]["reason"], "2fa_required",
            "{method} {path}"
        );
        let r = app
            .call(method.clone(), path, Some(&boss.access), body.clone())
            .await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
    // The gate comes before the request is read: a non-admin's malformed id or body is a 403.
    app.get("/v1/admin/users/not-a-uuid", Some(&user.access))
        .await
        .assert_error(403, "FORBIDDEN");
    app.post(
        &format!("/v1/admin/users/{}/ban", target.id),
        Some(&no2fa.access),
        json!({"bogus": true}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    // Nothing the refused calls asked for happened: the only ban was the admin's, now lifted.
    let log = app
        .get(
            &format!(
                "/v1/admin/audit-log?event=user.banned&user_id={}",
                target.id
            ),
            Some(&boss.access),
        )
        .await;
    let items = log.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["actor_id"], boss.id.as_str());

    // With the requirement switched off, an admin without 2FA gets in.
    let relaxed = TestApp::spawn_with(|c| c.admin_require_2fa = false).await;
    let a = relaxed.register("relaxedadmin").await;
    promote(&relaxed, &a).await;
    relaxed
        .get("/v1/admin/stats", Some(&a.access))
        .await
        .assert_ok(200);
}

#[tokio::test]
async fn stats_count_the_whole_deployment() {
    let apps = TestApp::spawn_cluster(2, |_| {}).await;
    let (a, b) = (&apps[0], &apps[1]);
    let boss = admin(a, "statsboss").await;
    let u1 = a.register("statsone").await;
    let u2 = a.register("statstwo").await;
    let before = a.get("/v1/admin/stats", Some(&boss.access)).await;
    let before = before.assert_ok(200).clone();
    for k in [
        "users",
        "conversations",
        "messages",
        "files",
        "bytes_stored",
        "live_calls",
        "sockets",
        "sessions",
    ] {
        assert!(before[k].is_i64(), "{k}: {before}");
    }
    assert_eq!(before["users"], 3);
    let conv = a
        .post(
            "/v1/conversations",
            Some(&u1.access),
            json!({"kind": "direct", "member_ids": [u2.id]}),
        )
        .await;
    let conv_id = conv.assert_ok(201)["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        a.post(
            &format!("/v1/conversations/{conv_id}/messages"),
            Some(&u1.access),
            json!({"client_message_id": format!("stats-{i}"), "content": "hi"}),
        )
        .await
        .assert_ok(201);
    }
    // A socket on the other instance counts too.
    let _socket = b.ws(&u2).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let now = loop {
        let s = a.get("/v1/admin/stats", Some(&boss.access)).await;
        let s = s.assert_ok(200).clone();
        if s["sockets"] == 1 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(now["sockets"], 1, "{now}");
    assert_eq!(
        now["conversations"],
        before["conversations"].as_i64().unwrap() + 1
    );
    assert_eq!(now["messages"], before["messages"].as_i64().unwrap() + 3);
    assert_eq!(now["sessions"], before["sessions"]);
}

#[tokio::test]
async fn a_ban_ends_sessions_on_every_instance_and_refuses_login_and_refresh() {
    // Instances hear each other through Redis (the embedded tier is one instance).
    let Some(redis) = OwnRedis::start_or_skip() else {
        return;
    };
    let apps = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(sc_core::secret::Secret::new(redis.url()));
    })
    .await;
    let (a, b) = (&apps[0], &apps[1]);
    let boss = admin(a, "banboss").await;
    let target = a.register("bantarget").await;
    let other = b.login("bantarget").await;
    let other = TestUser::from_pair(other.assert_ok(200), &target.email);
    let mut socket_b = b.ws(&other).await;
    b.get("/v1/users/me", Some(&other.access))
        .await
        .assert_ok(200);

    // Banning oneself is refused; so is an end in the past or a bad reason, and nothing changes.
    a.post(
        &format!("/v1/admin/users/{}/ban", boss.id),
        Some(&boss.access),
        json!({"reason": "oops"}),
    )
    .await
    .assert_error(409, "CONFLICT");
    for bad in [
        json!({"reason": "x", "until": "2001-01-01T00:00:00Z"}),
        json!({"reason": "x", "until": "tomorrow"}),
        json!({"reason": ""}),
        json!({"reason": "x", "extra": 1}),
        json!({}),
    ] {
        a.post(
            &format!("/v1/admin/users/{}/ban", target.id),
            Some(&boss.access),
            bad.clone(),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    a.get("/v1/users/me", Some(&target.access))
        .await
        .assert_ok(200);

    let r = a
        .post(
            &format!("/v1/admin/users/{}/ban", target.id),
            Some(&boss.access),
            json!({"reason": "sending spam"}),
        )
        .await;
    let banned_at = Instant::now();
    let v = r.assert_ok(200);
    assert_eq!(v["banned"], true);
    assert_eq!(v["banned_until"], Value::Null);
    assert_eq!(v["ban_reason"], "sending spam");

    // The other instance's socket closes with 4003, and its access token stops working, at once.
    let code = socket_b.close_code().await;
    assert_eq!(code, Some(4003));
    loop {
        let r = b.get("/v1/users/me", Some(&other.access)).await;
        if r.status == 401 {
            break;
        }
        assert!(
            banned_at.elapsed() < Duration::from_secs(1),
            "still served 1 s after the ban"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.get("/v1/users/me", Some(&target.access))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // Login with the right password: 403 with banned_until; with a wrong one, nothing revealed.
    let r = a.login("bantarget").await;
    r.assert_error(403, "FORBIDDEN");
    assert_eq!(r.body["error"]["details"]["banned_until"], Value::Null);
    a.post(
        "/v1/auth/login",
        None,
        json!({"username": "bantarget", "password": "not-the-password-1"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let r = b
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": other.refresh}),
        )
        .await;
    r.assert_error(403, "FORBIDDEN");
    assert!(r.body["error"]["details"].get("banned_until").is_some());

    // Unban: login works again, sessions the ban ended stay ended.
    let r = a
        .post(
            &format!("/v1/admin/users/{}/unban", target.id),
            Some(&boss.access),
            Value::Null,
        )
        .await;
    assert_eq!(r.assert_ok(200)["banned"], false);
    a.login("bantarget").await.assert_ok(200);
    b.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": other.refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");

    let log = a
        .get(
            &format!("/v1/admin/audit-log?user_id={}", target.id),
            Some(&boss.access),
        )
        .await;
    let events: Vec<String> = log.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert!(events.contains(&"user.banned".to_string()), "{events:?}");
    assert!(events.contains(&"user.unbanned".to_string()), "{events:?}");
}

#[tokio::test]
async fn a_timed_ban_ends_by_itself() {
    let app = TestApp::spawn().await;
    let boss = admin(&app, "timedboss").await;
    let target = app.register("timedtarget").await;
    let until = sc_core::time::Timestamp::now().plus(Duration::from_secs(2));
    let r = app
        .post(
            &format!("/v1/admin/users/{}/ban", target.id),
            Some(&boss.access),
            json!({"reason": "cool down", "until": until.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["banned_until"], until.to_rfc3339());
    let r = app.login("timedtarget").await;
    r.assert_error(403, "FORBIDDEN");
    assert_eq!(
        r.body["error"]["details"]["banned_until"],
        until.to_rfc3339()
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    app.login("timedtarget").await.assert_ok(200);
    let v = app
        .get(
            &format!("/v1/admin/users/{}", target.id),
            Some(&boss.access),
        )
        .await;
    let v = v.assert_ok(200);
    assert_eq!(v["banned"], false);
    assert_eq!(v["banned_until"], Value::Null);
    // Sessions the ban ended stayed ended.
    app.get("/v1/users/me", Some(&target.access))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn the_user_directory_searches_pages_and_changes_roles_and_quotas() {
    let app = TestApp::spawn().await;
    let boss = admin(&app, "dirboss").await;
    for n in ["dirzeta", "diralpha", "dirbeta"] {
        app.register(n).await;
    }
    let t = boss.access.as_str();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/users?q=DIR&limit=1&cursor={c}"),
            None => "/v1/admin/users?q=DIR&limit=1".to_string(),
        };
        let page = app.get(&path, Some(t)).await;
        let page = page.assert_ok(200).clone();
        for u in page["items"].as_array().unwrap() {
            for k in [
                "banned_until",
                "ban_reason",
                "last_seen_at",
                "storage_used",
                "quota",
                "email",
                "totp_enabled",
            ] {
                assert!(u.get(k).is_some(), "{k} missing: {u}");
            }
            seen.push(u["username"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // Newest first; the search matches usernames case-insensitively.
    assert_eq!(seen, ["dirbeta", "diralpha", "dirzeta", "dirboss"]);
    let r = app
        .get("/v1/admin/users?q=diralpha%40example", Some(t))
        .await;
    let items = r.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    let alpha = items[0].clone();
    let alpha_id = alpha["id"].as_str().unwrap();
    assert_eq!(alpha["quota"], app.cfg.default_quota_bytes);
    assert_eq!(alpha["storage_used"], 0);
    assert!(alpha["last_seen_at"].is_string(), "{alpha}");
    app.get("/v1/admin/users?q=100%25_", Some(t))
        .await
        .assert_ok(200);
    app.get("/v1/admin/users?bogus=1", Some(t))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get("/v1/admin/users/not-a-uuid", Some(t))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get(
        &format!("/v1/admin/users/{}", uuid::Uuid::now_v7()),
        Some(t),
    )
    .await
    .assert_error(404, "NOT_FOUND");

    // Quota: the drive sees it at once.
    let path = format!("/v1/admin/users/{alpha_id}");
    let r = patch(&app, &path, t, json!({"quota": 12345})).await;
    assert_eq!(r.assert_ok(200)["quota"], 12345);
    let alpha_user = app.login("diralpha").await;
    let alpha_token = alpha_user.assert_ok(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let q = app.get("/v1/storage/quota", Some(&alpha_token)).await;
    assert_eq!(q.assert_ok(200)["quota"], 12345, "{}", q.body);
    for bad in [
        json!({"quota": -1}),
        json!({"quota": "big"}),
        json!({"role": "owner"}),
        json!({"role": "assistant"}),
        json!({"name": "x"}),
    ] {
        patch(&app, &path, t, bad.clone())
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }

    // Role: the promoted user is an admin on their next request; an admin cannot demote themself.
    let r = patch(&app, &path, t, json!({"role": "admin"})).await;
    assert_eq!(r.assert_ok(200)["role"], "admin");
    let me = app.get("/v1/users/me", Some(&alpha_token)).await;
    assert_eq!(me.assert_ok(200)["role"], "admin");
    patch(
        &app,
        &format!("/v1/admin/users/{}", boss.id),
        t,
        json!({"role": "user"}),
    )
    .await
    .assert_error(409, "CONFLICT");

    let log = app
        .get(&format!("/v1/admin/audit-log?user_id={alpha_id}"), Some(t))
        .await;
    let items = log.assert_ok(200)["items"].as_array().unwrap().clone();
    let role = items
        .iter()
        .find(|e| e["event"] == "account.role_changed")
        .expect("role change audited");
    assert_eq!(role["details"], json!({"from": "user", "to": "admin"}));
    assert_eq!(role["actor_id"], boss.id.as_str());
    let quota = items
        .iter()
        .find(|e| e["event"] == "quota.changed")
        .expect("quota change audited");
    assert_eq!(quota["details"]["to"], 12345);
}

#[tokio::test]
async fn the_audit_log_covers_the_security_flow_without_a_secret() {
    let app = TestApp::spawn().await;
    let boss = admin(&app, "auditboss").await;
    let u = app.register("audited").await;
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "audited", "password": "wrong-password-123"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let pair = app.login("audited").await;
    let fresh = TestUser::from_pair(pair.assert_ok(200), &u.email);
    let new_password = "marble-otter-canyon-77";
    app.post(
        "/v1/users/me/password",
        Some(&fresh.access),
        json!({"current_password": PASSWORD, "new_password": new_password}),
    )
    .await
    .assert_ok(200);
    let relogin = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "audited", "password": new_password}),
        )
        .await;
    let fresh = TestUser::from_pair(relogin.assert_ok(200), &u.email);
    let secret = enable_2fa(&app, &fresh).await;
    app.post(
        &format!("/v1/admin/users/{}/ban", u.id),
        Some(&boss.access),
        json!({"reason": "audit test"}),
    )
    .await
    .assert_ok(200);

    let t = Some(boss.access.as_str());
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/audit-log?limit=3&cursor={c}"),
            None => "/v1/admin/audit-log?limit=3".to_string(),
        };
        let page = app.get(&path, t).await;
        let page = page.assert_ok(200).clone();
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let ours: Vec<&Value> = all
        .iter()
        .filter(|e| e["user_id"] == u.id.as_str())
        .collect();
    let events: Vec<&str> = ours.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in [
        "account.registered",
        "login.failed",
        "login.succeeded",
        "password.changed",
        "2fa.enabled",
        "user.banned",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    // Newest first, every entry shaped as the contract says.
    let times: Vec<&str> = all
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    for e in &all {
        for k in [
            "id",
            "event",
            "user_id",
            "actor_id",
            "ip",
            "details",
            "created_at",
        ] {
            assert!(e.get(k).is_some(), "{k} missing: {e}");
        }
    }
    let text = serde_json::to_string(&all).unwrap();
    let secret_b32 = sc_service::crypto::base32(&secret);
    for s in [
        PASSWORD,
        new_password,
        "wrong-password-123",
        fresh.access.as_str(),
        fresh.refresh.as_str(),
        u.refresh.as_str(),
        secret_b32.as_str(),
    ] {
        assert!(!text.contains(s), "a secret is in the audit log");
    }

    // Filters.
    let r = app.get("/v1/admin/audit-log?event=login.failed", t).await;
    let items = r.assert_ok(200)["items"].as_array().unwrap().clone();
    assert!(!items.is_empty() && items.iter().all(|e| e["event"] == "login.failed"));
    let future = sc_core::time::Timestamp::now()
        .plus(Duration::from_secs(3600))
        .to_rfc3339();
    let r = app
        .get(&format!("/v1/admin/audit-log?since={future}"), t)
        .await;
    assert_eq!(r.assert_ok(200)["items"], json!([]));
    for bad in [
        "since=yesterday",
        "user_id=nope",
        "event=",
        "limit=0",
        "cursor=%%%",
    ] {
        app.get(&format!("/v1/admin/audit-log?{bad}"), t)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"))
}

#[tokio::test]
async fn the_admin_cli_bans_unbans_resets_2fa_and_exports_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = sc_core::config::Config::default();
    cfg.data_dir = data.clone();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let app = TestApp::start(cfg, None).await;
    let u = app.register("clitarget").await;
    enable_2fa(&app, &u).await;
    let run = |args: &[&str]| {
        let out = bin().args(args).env("SC_DATA_DIR", &data).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&[
        "admin",
        "ban",
        "--username",
        "clitarget",
        "--reason",
        "from the console",
    ]);
    assert!(out.contains("banned"), "{out}");
    // The server's instance heard nothing from the CLI process (no shared bus on the embedded
    // tier), but the sessions are ended in the database and the cache lives 500 ms at most.
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.get("/v1/users/me", Some(&u.access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.login("clitarget").await.assert_error(403, "FORBIDDEN");
    run(&["admin", "unban", "--username", "clitarget"]);
    // 2FA still on: a password alone is not enough…
    app.login("clitarget")
        .await
        .assert_error(401, "TOTP_REQUIRED");
    // …until the operator resets it.
    run(&["admin", "reset-2fa", "--username", "clitarget"]);
    app.login("clitarget").await.assert_ok(200);
    let out = run(&[
        "admin",
        "set-quota",
        "--username",
        "clitarget",
        "--bytes",
        "777",
    ]);
    assert!(out.contains("777"), "{out}");

    let out = run(&["admin", "audit-log", "--username", "clitarget"]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for e in [
        "user.banned",
        "user.unbanned",
        "2fa.disabled",
        "quota.changed",
        "account.registered",
    ] {
        assert!(names.contains(&e), "{e} missing from {names:?}");
    }
    let out = run(&["admin", "audit-log", "--event", "user.banned"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let bad = bin()
        .args(["admin", "ban", "--username", "nobody", "--reason", "x"])
        .env("SC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn a_read_replica_serves_search_and_admin_lists_but_never_read_after_write() {
    let Some(base) = pg_url() else {
        eprintln!("skipping the read replica: SC_TEST_PG_URL not set (PostgreSQL only)");
        return;
    };
    // A "replica" that has the schema and lags behind by everything: an empty database.
    let replica = fresh_pg_database(&base).await;
    sc_db::Db::connect_postgres(&replica, 2)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let app = TestApp::spawn_with(|c| {
        c.database_read_url = Some(sc_core::secret::Secret::new(replica.clone()));
    })
    .await;
    let boss = admin(&app, "replicaboss").await;
    let u = app.register("replicauser").await;
    let g = app.group(&u, &[&boss]).await;
    app.post(
        &format!("/v1/conversations/{g}/messages"),
        Some(&u.access),
        json!({"client_message_id": "rep-1", "content": "needle in the primary"}),
    )
    .await
    .assert_ok(201);
    // Read-after-write goes to the primary.
    let h = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&u.access))
        .await;
    assert_eq!(h.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    let v = app
        .get(&format!("/v1/admin/users/{}", u.id), Some(&boss.access))
        .await;
    assert_eq!(v.assert_ok(200)["username"], "replicauser");
    // Lag-tolerant reads come from the replica, which has none of it yet: scrolling back
    // and the admin lists.
    let older = app
        .get(
            &format!("/v1/conversations/{g}/messages?before_seq=2"),
            Some(&u.access),
        )
        .await;
    assert_eq!(older.assert_ok(200)["items"], json!([]));
    // Search is read-after-write (API.md §12): the primary.
    let found = app
        .get("/v1/search/messages?q=needle", Some(&u.access))
        .await;
    assert_eq!(found.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    let list = app.get("/v1/admin/users", Some(&boss.access)).await;
    assert_eq!(list.assert_ok(200)["items"], json!([]));
    let stats = app.get("/v1/admin/stats", Some(&boss.access)).await;
    assert_eq!(stats.assert_ok(200)["users"], 0);
}
