//! Retention: messages past their conversation's retention (the owner's, capped by the
//! server's) go with the files attached only to them; old audit and notification records go.

use crate::common::*;
use crate::drive::{PNG, upload};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn backdate(db: &sc_db::Db, message: &str, days: u64) {
    let at = sc_core::time::Timestamp::now().minus(Duration::from_secs(days * 86_400));
    let id: uuid::Uuid = message.parse().unwrap();
    match db {
        sc_db::Db::Sqlite(p, _) => sqlx::query("UPDATE messages SET created_at = $1 WHERE id = $2")
            .bind(at.millis())
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()),
        sc_db::Db::Postgres(p) => sqlx::query("UPDATE messages SET created_at = $1 WHERE id = $2")
            .bind(at.millis())
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

async fn history(app: &TestApp, u: &TestUser, conv: &str) -> Vec<String> {
    let h = app
        .get(
            &format!("/v1/conversations/{conv}/messages"),
            Some(&u.access),
        )
        .await;
    h.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn messages_expire_by_their_conversations_retention_with_their_attachments() {
    let app = TestApp::spawn_with(|c| {
        c.message_retention_days = 10;
        c.retention_interval_seconds = 1;
    })
    .await;
    let owner = app.register("retowner").await;
    let member = app.register("retmember").await;
    let short = app.group(&owner, &[&member]).await;
    let long = app.group(&owner, &[&member]).await;
    let path = format!("/v1/conversations/{short}");
    let patch = |u: &TestUser, body: Value| {
        let (app, token, path) = (&app, u.access.clone(), path.clone());
        async move {
            app.call(reqwest::Method::PATCH, &path, Some(&token), body)
                .await
        }
    };
    // Only the owner chooses, and never beyond the server's ten days.
    patch(&member, json!({"retention_days": 3}))
        .await
        .assert_error(403, "FORBIDDEN");
    for bad in [
        json!({"retention_days": 11}),
        json!({"retention_days": 0}),
        json!({"retention_days": "3"}),
    ] {
        patch(&owner, bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let r = patch(&owner, json!({"retention_days": 3})).await;
    assert_eq!(r.assert_ok(200)["retention_days"], 3);

    let file = upload(&app, &owner, "old.png", "image/png", PNG).await;
    let file_id = file["id"].as_str().unwrap().to_string();
    let kept_file = upload(&app, &owner, "kept.png", "image/png", PNG).await;
    let kept_file_id = kept_file["id"].as_str().unwrap().to_string();
    let send = |conv: &str, cid: &str, content: &str, attachments: Vec<String>| {
        let (app, token) = (&app, owner.access.clone());
        let path = format!("/v1/conversations/{conv}/messages");
        let body =
            json!({"client_message_id": cid, "content": content, "attachments": attachments});
        async move {
            let r = app.post(&path, Some(&token), body).await;
            r.assert_ok(201)["id"].as_str().unwrap().to_string()
        }
    };
    // A file of the member's, shared with the owner and attached by them: a reference only.
    let theirs = upload(&app, &member, "theirs.png", "image/png", PNG).await;
    let theirs_id = theirs["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/files/{theirs_id}/shares"),
        Some(&member.access),
        json!({"user_id": owner.id, "permission": "read"}),
    )
    .await
    .assert_ok(201);
    let expired_short = send(
        &short,
        "r1",
        "four days old",
        vec![file_id.clone(), theirs_id.clone()],
    )
    .await;
    let kept_short = send(&short, "r2", "two days old", vec![]).await;
    let expired_long = send(&long, "r3", "eleven days old", vec![]).await;
    let kept_long = send(&long, "r4", "nine days old", vec![kept_file_id.clone()]).await;
    // Found before the purge, so "not found" afterwards means something.
    let found = app
        .get("/v1/search/messages?q=four", Some(&member.access))
        .await;
    assert_eq!(found.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    let db = secureconnect::app::connect_db(&app.cfg).await.unwrap();
    backdate(&db, &expired_short, 4).await;
    backdate(&db, &kept_short, 2).await;
    backdate(&db, &expired_long, 11).await;
    backdate(&db, &kept_long, 9).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while history(&app, &member, &short).await.len() > 1
        || history(&app, &member, &long).await.len() > 1
    {
        assert!(
            Instant::now() < deadline,
            "expired messages were never purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(history(&app, &member, &short).await, ["two days old"]);
    assert_eq!(history(&app, &member, &long).await, ["nine days old"]);
    // The file attached only to the expired message went, with its bytes from the quota.
    app.get(&format!("/v1/files/{file_id}"), Some(&owner.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/v1/files/{kept_file_id}"), Some(&owner.access))
        .await
        .assert_ok(200);
    // Someone else's file the sender attached stays in its owner's drive.
    app.get(&format!("/v1/files/{theirs_id}"), Some(&member.access))
        .await
        .assert_ok(200);
    let q = app.get("/v1/storage/quota", Some(&owner.access)).await;
    assert_eq!(q.assert_ok(200)["used"], PNG.len());
    // Search no longer finds it.
    let found = app
        .get("/v1/search/messages?q=four", Some(&member.access))
        .await;
    assert_eq!(found.assert_ok(200)["items"], json!([]));
    let metrics = app.metrics().await;
    for kind in ["messages", "attachments"] {
        let line = format!("secureconnect_retention_purged_total{{kind=\"{kind}\"}}");
        assert!(
            metrics.lines().any(|l| l.starts_with(&line)),
            "{line} missing"
        );
    }
}

#[tokio::test]
async fn old_audit_entries_and_notifications_are_purged_and_recent_ones_kept() {
    let app = TestApp::spawn_with(|c| {
        c.audit_retention_days = 30;
        c.notification_retention_days = 30;
        c.retention_interval_seconds = 1;
    })
    .await;
    let u = app.register("retained").await;
    let db = secureconnect::app::connect_db(&app.cfg).await.unwrap();
    let uid: sc_core::ids::UserId = u.id.parse().unwrap();
    let now = sc_core::time::Timestamp::now();
    let old = now.minus(Duration::from_secs(31 * 86_400));
    let young = now.minus(Duration::from_secs(29 * 86_400));
    for (event, at) in [("test.old", old), ("test.old", old), ("test.young", young)] {
        db.audit()
            .insert(&sc_db::audit::NewAudit {
                user: Some(uid),
                actor: None,
                event,
                ip: None,
                details: &json!({}),
                now: at,
            })
            .await
            .unwrap();
    }
    let notes: Vec<(String, sc_core::time::Timestamp)> = vec![
        ("old-1".into(), old),
        ("old-2".into(), old),
        ("young".into(), young),
    ];
    let records: Vec<sc_db::notifications::NewNotification> = notes
        .iter()
        .map(|(source, at)| sc_db::notifications::NewNotification {
            id: sc_core::ids::NotificationId::new(),
            user_id: uid,
            kind: "security",
            source: source.clone(),
            data: r#"{"event":"retention.test"}"#,
            now: *at,
        })
        .collect();
    db.notifications().record(&records).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = app.get("/v1/notifications", Some(&u.access)).await;
        let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
        let tests = items
            .iter()
            .filter(|n| n["data"]["event"] == "retention.test")
            .count();
        if tests == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old notifications were never purged: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let old_left = db
            .audit()
            .list(
                &sc_db::audit::AuditFilter {
                    event: Some("test.old"),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        if old_left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "old entries were never purged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let young_left = db
        .audit()
        .list(
            &sc_db::audit::AuditFilter {
                event: Some("test.young"),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(young_left.len(), 1);
    let registered = db
        .audit()
        .list(
            &sc_db::audit::AuditFilter {
                event: Some("account.registered"),
                user: Some(uid),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(registered.len(), 1, "today's entries stay");
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("secureconnect_retention_purged_total{kind=\"audit\"}")),
        "{metrics}"
    );
}
