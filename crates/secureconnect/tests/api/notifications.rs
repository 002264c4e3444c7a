//! Notifications (API.md §8 and its precisions): records and mentions, read state, preferences,
//! mute, security notices and digest mails through a real SMTP server.

use crate::common::*;
use reqwest::Method;
use sc_core::config::SmtpSecurity;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The user's notifications (newest first) once at least `n` exist.
pub async fn wait_notifications(app: &TestApp, u: &TestUser, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let r = app
            .get("/v1/notifications?limit=100", Some(&u.access))
            .await;
        let items = r.assert_ok(200)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} has {} notifications, expected {n}: {items:?}",
            u.username,
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The kinds of a user's notifications, newest first.
pub async fn kinds_of(app: &TestApp, u: &TestUser) -> Vec<String> {
    let r = app
        .get("/v1/notifications?limit=100", Some(&u.access))
        .await;
    r.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies the user's address with the token of the verification mail in the outbox.
pub async fn verify_email(app: &TestApp, outbox: &std::path::Path, u: &TestUser) {
    let mail = wait_for_mail_in(outbox, &u.email, "verify-email?token=").await;
    app.post(
        "/v1/auth/email/verify",
        None,
        json!({"token": token_in(&mail)}),
    )
    .await
    .assert_ok(200);
}

/// Lets the workers finish what is due (the negative checks below wait for nothing to come).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn messages_notify_offline_members_and_mentions_notify_everyone_named() {
    let app = TestApp::spawn().await;
    let owner = app.register("nowner").await;
    let away = app.register("naway").await;
    let here = app.register("nhere").await;
    let conv = app.group(&owner, &[&away, &here]).await;
    let mut here_ws = app.ws(&here).await;

    // A plain message: the offline member gets `message`, the online one nothing.
    app.send_text(&owner, &conv, "n-1", "hello team")
        .await
        .assert_ok(201);
    let items = wait_notifications(&app, &away, 1).await;
    assert_eq!(items[0]["kind"], "message");
    let data = &items[0]["data"];
    assert_eq!(data["conversation_id"], conv.as_str());
    assert_eq!(data["sender_id"], owner.id.as_str());
    assert_eq!(data["seq"], 1);
    assert!(items[0]["read_at"].is_null());

    // A mention reaches the member it names, online or not, instead of `message`; the view
    // carries the mentioned ids. Names match case-insensitively on word boundaries only.
    let sent = app
        .send_text(&owner, &conv, "n-2", "ping @NHERE, not mail@nhere.org")
        .await;
    let view = sent.assert_ok(201);
    assert_eq!(view["mentions"], json!([here.id]));
    assert_eq!(view["mentions_all"], false);
    let event = here_ws.expect("notification").await;
    assert_eq!(event["kind"], "mention");
    assert_eq!(event["data"]["message_id"], view["id"]);
    assert!(event["id"].is_string() && event["created_at"].is_string());
    let items = wait_notifications(&app, &away, 2).await;
    assert_eq!(
        items[0]["kind"], "message",
        "the offline member is not mentioned"
    );

    // @all from a plain member is no mention; from the owner it mentions every member.
    let member_all = app.send_text(&away, &conv, "n-3", "@all hi").await;
    assert_eq!(member_all.assert_ok(201)["mentions_all"], false);
    let owner_all = app.send_text(&owner, &conv, "n-4", "@all standup").await;
    assert_eq!(owner_all.assert_ok(201)["mentions_all"], true);
    let items = wait_notifications(&app, &away, 3).await;
    assert_eq!(items[0]["kind"], "mention");
    assert_eq!(here_ws.expect("notification").await["kind"], "mention");
    settle().await;
    assert_eq!(kinds_of(&app, &here).await, ["mention", "mention"]);
    assert_eq!(
        kinds_of(&app, &owner).await,
        ["message"],
        "the owner was offline for n-3"
    );
}

#[tokio::test]
async fn notifications_are_read_one_by_one_or_all_and_filtered() {
    let app = TestApp::spawn().await;
    let a = app.register("rda").await;
    let b = app.register("rdb").await;
    let conv = app.group(&a, &[&b]).await;
    for i in 0..3 {
        app.send_text(&a, &conv, &format!("r-{i}"), "x")
            .await
            .assert_ok(201);
    }
    let items = wait_notifications(&app, &b, 3).await;
    let first = items[2]["id"].as_str().unwrap().to_string();

    // Paged with next_cursor, newest first.
    let page = app.get("/v1/notifications?limit=2", Some(&b.access)).await;
    let page = page.assert_ok(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/v1/notifications?limit=2&cursor={cursor}"),
            Some(&b.access),
        )
        .await;
    assert_eq!(rest.assert_ok(200)["items"][0]["id"], first.as_str());

    // Someone else's id is 404; a bad id or filter 400.
    app.post(
        &format!("/v1/notifications/{first}/read"),
        Some(&a.access),
        json!(null),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post("/v1/notifications/nope/read", Some(&b.access), json!(null))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get("/v1/notifications?unread=maybe", Some(&b.access))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    let read = app
        .post(
            &format!("/v1/notifications/{first}/read"),
            Some(&b.access),
            json!(null),
        )
        .await;
    let read_at = read.assert_ok(200)["read_at"].as_str().unwrap().to_string();
    let again = app
        .post(
            &format!("/v1/notifications/{first}/read"),
            Some(&b.access),
            json!(null),
        )
        .await;
    assert_eq!(
        again.assert_ok(200)["read_at"],
        read_at.as_str(),
        "first read kept"
    );
    let unread = app
        .get("/v1/notifications?unread=true", Some(&b.access))
        .await;
    assert_eq!(unread.assert_ok(200)["items"].as_array().unwrap().len(), 2);

    let all = app
        .post("/v1/notifications/read-all", Some(&b.access), json!(null))
        .await;
    assert_eq!(all.assert_ok(200)["updated"], 2);
    let all = app
        .post("/v1/notifications/read-all", Some(&b.access), json!(null))
        .await;
    assert_eq!(all.assert_ok(200)["updated"], 0);
    let unread = app
        .get("/v1/notifications?unread=true", Some(&b.access))
        .await;
    assert_eq!(unread.assert_ok(200)["items"], json!([]));
}

#[tokio::test]
async fn preferences_default_on_patch_in_parts_and_refuse_unknown_kinds_and_security() {
    let app = TestApp::spawn().await;
    let u = app.register("prefs").await;
    let p = app
        .get("/v1/notifications/preferences", Some(&u.access))
        .await;
    let p = p.assert_ok(200);
    for kind in [
        "message",
        "mention",
        "call.missed",
        "file.shared",
        "call.scheduled",
    ] {
        assert_eq!(
            p["kinds"][kind],
            json!({"push": true, "email": true}),
            "{kind}"
        );
    }
    assert!(p["kinds"].get("security").is_none());
    assert_eq!(p["email_digest"], true);

    let patch = |body: Value| {
        app.call(
            Method::PATCH,
            "/v1/notifications/preferences",
            Some(&u.access),
            body,
        )
    };
    let p = patch(json!({"kinds": {"message": {"push": false}}})).await;
    assert_eq!(
        p.assert_ok(200)["kinds"]["message"],
        json!({"push": false, "email": true})
    );
    let p = patch(json!({"kinds": {"message": {"email": false}}, "email_digest": false})).await;
    let p = p.assert_ok(200);
    assert_eq!(
        p["kinds"]["message"],
        json!({"push": false, "email": false}),
        "both kept"
    );
    assert_eq!(p["email_digest"], false);
    assert_eq!(p["kinds"]["mention"], json!({"push": true, "email": true}));

    for bad in [
        json!({"kinds": {"security": {"email": false}}}),
        json!({"kinds": {"sms": {"push": false}}}),
        json!({"kinds": {"message": {"loud": true}}}),
        json!({"kinds": {"message": {"push": "no"}}}),
        json!({"digest": true}),
    ] {
        patch(bad.clone())
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let after = app
        .get("/v1/notifications/preferences", Some(&u.access))
        .await;
    assert_eq!(after.assert_ok(200), p, "refused changes change nothing");
}

#[tokio::test]
async fn a_muted_conversation_gives_no_message_notifications_but_mentions_still_do() {
    let app = TestApp::spawn().await;
    let a = app.register("mutea").await;
    let b = app.register("muteb").await;
    let conv = app.group(&a, &[&b]).await;
    let mute_path = format!("/v1/conversations/{conv}/mute");

    app.call(
        Method::PUT,
        &mute_path,
        Some(&b.access),
        json!({"until": "2001-01-01T00:00:00Z"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::PUT,
        &mute_path,
        Some(&b.access),
        json!({"until": "soon"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let stranger = app.register("mutec").await;
    app.call(Method::PUT, &mute_path, Some(&stranger.access), json!({}))
        .await
        .assert_error(404, "NOT_FOUND");

    // Without `until`: "forever", at least a year ahead.
    let muted = app
        .call(Method::PUT, &mute_path, Some(&b.access), json!(null))
        .await;
    let until = muted.assert_ok(200)["muted_until"]
        .as_str()
        .unwrap()
        .to_string();
    let year: i32 = until[..4].parse().unwrap();
    assert!(year >= 2027, "{until}");
    let listed = app
        .get(&format!("/v1/conversations/{conv}"), Some(&b.access))
        .await;
    assert_eq!(listed.assert_ok(200)["muted_until"], until.as_str());
    let own = app
        .get(&format!("/v1/conversations/{conv}"), Some(&a.access))
        .await;
    assert!(
        own.assert_ok(200)["muted_until"].is_null(),
        "a mute is the member's own"
    );

    app.send_text(&a, &conv, "m-1", "quiet please")
        .await
        .assert_ok(201);
    app.send_text(&a, &conv, "m-2", "but @muteb look")
        .await
        .assert_ok(201);
    let items = wait_notifications(&app, &b, 1).await;
    settle().await;
    assert_eq!(kinds_of(&app, &b).await, ["mention"], "{items:?}");

    let until = "2999-01-01T00:00:00Z";
    let r = app
        .call(
            Method::PUT,
            &mute_path,
            Some(&b.access),
            json!({"until": until}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["muted_until"], "2999-01-01T00:00:00.000Z");
    let r = app
        .call(Method::DELETE, &mute_path, Some(&b.access), json!(null))
        .await;
    assert!(r.assert_ok(200)["muted_until"].is_null());
    app.send_text(&a, &conv, "m-3", "loud again")
        .await
        .assert_ok(201);
    wait_notifications(&app, &b, 2).await;
    assert_eq!(kinds_of(&app, &b).await, ["message", "mention"]);
}

#[tokio::test]
async fn security_events_notify_and_mail_whatever_the_preferences() {
    let app = TestApp::spawn().await;
    let u = app.register("secure").await;
    // Everything that can be switched off is.
    let off = json!({"push": false, "email": false});
    let all_off = json!({"kinds": {"message": off, "mention": off, "call.missed": off,
                                   "file.shared": off, "call.scheduled": off}, "email_digest": false});
    app.call(
        Method::PATCH,
        "/v1/notifications/preferences",
        Some(&u.access),
        all_off,
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/users/me/password",
        Some(&u.access),
        json!({"current_password": PASSWORD, "new_password": "blueberry-harbor-33"}),
    )
    .await
    .assert_ok(200);
    let items = wait_notifications(&app, &u, 1).await;
    assert_eq!(items[0]["kind"], "security");
    assert_eq!(items[0]["data"]["event"], "password.changed");
    let mail = app.wait_for_mail(&u.email, "password was changed").await;
    assert!(mail.contains("List-Unsubscribe: <"), "{mail}");
    assert!(mail.contains("multipart/alternative"), "{mail}");
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_a_security_notice() {
    let app = TestApp::spawn().await;
    let u = app.register("devices").await;
    // The same client again: a known device.
    app.login("devices").await.assert_ok(200);
    settle().await;
    assert!(kinds_of(&app, &u).await.is_empty());
    let other = reqwest::Client::builder()
        .user_agent("Another Device/1.0")
        .build()
        .unwrap();
    let r = other
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": u.username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let items = wait_notifications(&app, &u, 1).await;
    assert_eq!(items[0]["data"]["event"], "session.new_device");
}

#[tokio::test]
async fn digests_mail_unread_messages_once_to_members_away_since() {
    let smtp = SmtpSink::start().await;
    let port = smtp.port;
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = SmtpSecurity::None;
        c.email_digest_delay_seconds = 2;
        c.email_digest_interval_seconds = 1;
    })
    .await;
    let a = app.register("digesta").await;
    let b = app.register("digestb").await;
    let quiet = app.register("digestq").await;
    let seen = app.register("digests").await;
    for u in [&b, &quiet, &seen] {
        verify_email(&app, smtp.dir.path(), u).await;
    }
    app.call(
        Method::PATCH,
        "/v1/notifications/preferences",
        Some(&quiet.access),
        json!({"email_digest": false}),
    )
    .await
    .assert_ok(200);
    let conv = app.group(&a, &[&b, &quiet, &seen]).await;
    app.call(
        Method::PATCH,
        &format!("/v1/conversations/{conv}"),
        Some(&a.access),
        json!({"title": "Rocket <Launch>"}),
    )
    .await
    .assert_ok(200);
    app.send_text(&a, &conv, "d-1", "the <secret> plan")
        .await
        .assert_ok(201);
    app.send_text(&a, &conv, "d-2", "hey @digestb")
        .await
        .assert_ok(201);
    // `seen` comes online after the records were made, before the delay passed.
    wait_notifications(&app, &seen, 2).await;
    let _seen_ws = app.ws(&seen).await;

    let mail = wait_for_mail_in(smtp.dir.path(), &b.email, "unread").await;
    assert!(mail.contains("2 new messages in Rocket"), "{mail}");
    assert!(mail.contains("mentioning you"), "{mail}");
    assert!(
        mail.contains("Rocket &lt;Launch&gt;"),
        "the HTML part escapes: {mail}"
    );
    assert!(
        !mail.contains("secret"),
        "no message text unless the operator allows it"
    );
    assert!(mail.contains("List-Unsubscribe: <"), "{mail}");
    // One digest per window: nothing more comes for the same records.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let digests_to = |u: &TestUser| {
        mails_in(smtp.dir.path())
            .into_iter()
            .filter(|m| m.contains(&u.email) && m.contains("unread"))
            .count()
    };
    assert_eq!(digests_to(&b), 1);
    assert_eq!(digests_to(&quiet), 0, "digest switched off");
    assert_eq!(digests_to(&seen), 0, "online since the messages came");
}

#[tokio::test]
async fn smtp_down_delays_notification_mail_and_fails_no_request() {
    // SMTP is down: nothing listens on this port yet.
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = SmtpSecurity::None;
    })
    .await;
    let a = app.register("downa").await;
    app.post(
        "/v1/users/me/password",
        Some(&a.access),
        json!({"current_password": PASSWORD, "new_password": "blueberry-harbor-33"}),
    )
    .await
    .assert_ok(200);
    wait_notifications(&app, &a, 1).await;
    let smtp = SmtpSink::start_on(port).await;
    // The queue retries with backoff: give it a few rounds.
    let started = Instant::now();
    while !mails_in(smtp.dir.path())
        .iter()
        .any(|m| m.contains(&a.email) && m.contains("password was changed"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "mail never came"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn shares_mail_at_once_per_the_kind_email_switch_and_only_verified_addresses() {
    let app = TestApp::spawn().await;
    let owner = app.register("mailowner").await;
    let keen = app.register("mailkeen").await;
    let muted = app.register("mailmuted").await;
    let unverified = app.register("mailunver").await;
    verify_email(&app, &app.outbox(), &keen).await;
    verify_email(&app, &app.outbox(), &muted).await;
    app.call(
        Method::PATCH,
        "/v1/notifications/preferences",
        Some(&muted.access),
        json!({"kinds": {"file.shared": {"email": false}}}),
    )
    .await
    .assert_ok(200);
    let file = crate::drive::upload(&app, &owner, "plan.txt", "text/plain", b"the plan").await;
    let id = file["id"].as_str().unwrap();
    for u in [&keen, &muted, &unverified] {
        app.post(
            &format!("/v1/files/{id}/shares"),
            Some(&owner.access),
            json!({"user_id": u.id, "permission": "read"}),
        )
        .await
        .assert_ok(201);
    }
    let mail = app
        .wait_for_mail(&keen.email, "A file was shared with you")
        .await;
    assert!(mail.contains("read access"), "{mail}");
    for u in [&muted, &unverified] {
        let items = wait_notifications(&app, u, 1).await;
        assert_eq!(
            items[0]["kind"], "file.shared",
            "the record is there either way"
        );
    }
    settle().await;
    let shared_mails = |u: &TestUser| {
        mails_in(&app.outbox())
            .into_iter()
            .filter(|m| m.contains(&u.email) && m.contains("A file was shared"))
            .count()
    };
    assert_eq!(shared_mails(&keen), 1);
    assert_eq!(shared_mails(&muted), 0, "email switched off for the kind");
    assert_eq!(shared_mails(&unverified), 0, "not to an unverified address");
}

#[cfg(unix)]
#[tokio::test]
async fn the_vapid_key_pair_is_generated_into_the_data_dir_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let path = app.cfg.data_dir.join("vapid_private_key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stored = std::fs::read_to_string(&path).unwrap();
    let key = sc_infra::push::VapidKey::from_base64url(stored.trim()).unwrap();
    let served = app.get("/v1/push/vapid-public-key", None).await;
    assert_eq!(
        served.assert_ok(200)["public_key"],
        key.public_key_base64url()
    );
}

#[tokio::test]
async fn a_call_its_caller_leaves_unanswered_is_missed_for_the_others() {
    let app = TestApp::spawn().await;
    let a = app.register("callera").await;
    let b = app.register("calleeb").await;
    let c = app.register("calleec").await;
    let conv = app.group(&a, &[&b, &c]).await;
    let call = app
        .post(
            "/v1/calls",
            Some(&a.access),
            json!({"conversation_id": conv, "kind": "audio"}),
        )
        .await;
    let call_id = call.assert_ok(201)["id"].as_str().unwrap().to_string();
    let left = app
        .post(
            &format!("/v1/calls/{call_id}/leave"),
            Some(&a.access),
            json!(null),
        )
        .await;
    assert_eq!(left.assert_ok(200)["status"], "missed");
    for u in [&b, &c] {
        let items = wait_notifications(&app, u, 1).await;
        assert_eq!(items[0]["kind"], "call.missed");
        assert_eq!(items[0]["data"]["call_id"], call_id.as_str());
        assert_eq!(items[0]["data"]["caller_id"], a.id.as_str());
    }
    settle().await;
    assert!(
        kinds_of(&app, &a).await.is_empty(),
        "the caller missed nothing"
    );
}
