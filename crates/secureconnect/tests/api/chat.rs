//! Conversations and messages over HTTP: rules, permissions, history, receipts, search.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn direct_conversations_are_unique_per_pair_and_respect_blocks() {
    let app = TestApp::spawn().await;
    let (a, b, c) = (
        app.register("dira").await,
        app.register("dirb").await,
        app.register("dirc").await,
    );
    let r = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "direct", "member_ids": [b.id]}),
        )
        .await;
    let conv = r.assert_ok(201).clone();
    assert_eq!(conv["kind"], "direct");
    assert_eq!(conv["members_count"], 2);
    assert_eq!(conv["my_role"], "member");
    assert_eq!(conv["encrypted"], false);
    for k in [
        "id",
        "kind",
        "title",
        "avatar_url",
        "encrypted",
        "created_by",
        "created_at",
        "last_message_seq",
        "unread_count",
        "members_count",
        "my_role",
    ] {
        assert!(conv.get(k).is_some(), "conversation lacks {k}");
    }
    // Either side creating it again gets the same one, 200.
    let again = app
        .post(
            "/v1/conversations",
            Some(&b.access),
            json!({"kind": "direct", "member_ids": [a.id]}),
        )
        .await;
    assert_eq!(again.assert_ok(200)["id"], conv["id"]);
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": [b.id, c.id]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": [a.id]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": [uuid::Uuid::now_v7()]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": ["not-a-uuid"]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "channel", "member_ids": [b.id]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // A block (either direction) refuses new direct conversations and messages in existing ones.
    app.post(
        &format!("/v1/users/{}/block", a.id),
        Some(&c.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": [c.id]}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.post(
        "/v1/conversations",
        Some(&c.access),
        json!({"kind": "direct", "member_ids": [a.id]}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let conv_id = conv["id"].as_str().unwrap();
    app.send_text(&a, conv_id, "before-block", "hi")
        .await
        .assert_ok(201);
    app.post(
        &format!("/v1/users/{}/block", b.id),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.send_text(&b, conv_id, "after-block", "hi?")
        .await
        .assert_error(403, "FORBIDDEN");
    app.send_text(&a, conv_id, "after-block-2", "hi?")
        .await
        .assert_error(403, "FORBIDDEN");
    // Groups are unaffected by blocks.
    let g = app.group(&a, &[&b]).await;
    app.send_text(&b, &g, "group-ok", "hello group")
        .await
        .assert_ok(201);
}

#[tokio::test]
async fn group_roles_and_permissions() {
    let app = TestApp::spawn().await;
    let owner = app.register("gowner").await;
    let admin = app.register("gadmin").await;
    let member = app.register("gmember").await;
    let newbie = app.register("gnewbie").await;
    let g = app.group(&owner, &[&admin, &member]).await;
    let path = |p: &str| format!("/v1/conversations/{g}{p}");
    let view = app.get(&path(""), Some(&owner.access)).await;
    assert_eq!(view.assert_ok(200)["my_role"], "owner");
    assert_eq!(view.body["data"]["members_count"], 3);

    app.call(
        Method::PATCH,
        &path(&format!("/members/{}", admin.id)),
        Some(&member.access),
        json!({"role": "admin"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let r = app
        .call(
            Method::PATCH,
            &path(&format!("/members/{}", admin.id)),
            Some(&owner.access),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["role"], "admin");
    app.call(
        Method::PATCH,
        &path(&format!("/members/{}", admin.id)),
        Some(&owner.access),
        json!({"role": "king"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // Rename: owner/admin only.
    app.call(
        Method::PATCH,
        &path(""),
        Some(&member.access),
        json!({"title": "mine"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let r = app
        .call(
            Method::PATCH,
            &path(""),
            Some(&admin.access),
            json!({"title": "Renamed"}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["title"], "Renamed");

    // Add: owner/admin only; existing members are skipped.
    app.post(
        &path("/members"),
        Some(&member.access),
        json!({"user_ids": [newbie.id]}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let r = app
        .post(
            &path("/members"),
            Some(&admin.access),
            json!({"user_ids": [newbie.id, member.id]}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["items"].as_array().unwrap().len(), 4);

    // Remove: admin removes a member, not the owner; anyone leaves.
    app.call(
        Method::DELETE,
        &path(&format!("/members/{}", owner.id)),
        Some(&admin.access),
        Value::Null,
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &path(&format!("/members/{}", newbie.id)),
        Some(&member.access),
        Value::Null,
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &path(&format!("/members/{}", newbie.id)),
        Some(&admin.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&path(""), Some(&newbie.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &path(&format!("/members/{}", member.id)),
        Some(&member.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&path(""), Some(&member.access))
        .await
        .assert_error(404, "NOT_FOUND");

    // Delete: owner only.
    app.call(Method::DELETE, &path(""), Some(&admin.access), Value::Null)
        .await
        .assert_error(403, "FORBIDDEN");
    // The owner hands over and leaves; the heir can delete.
    app.call(
        Method::DELETE,
        &path(&format!("/members/{}", owner.id)),
        Some(&owner.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    assert_eq!(
        app.get(&path(""), Some(&admin.access)).await.body["data"]["my_role"],
        "owner"
    );
    app.call(Method::DELETE, &path(""), Some(&admin.access), Value::Null)
        .await
        .assert_ok(200);
    app.get(&path(""), Some(&admin.access))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn non_members_get_404_on_every_conversation_route() {
    let app = TestApp::spawn().await;
    let owner = app.register("idorowner").await;
    let member = app.register("idormember").await;
    let stranger = app.register("idorstranger").await;
    let g = app.group(&owner, &[&member]).await;
    let msg = app
        .send_text(&owner, &g, "idor-1", "secret plans")
        .await
        .assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = uuid::Uuid::now_v7().to_string();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, format!("/v1/conversations/{g}"), Value::Null),
        (
            Method::PATCH,
            format!("/v1/conversations/{g}"),
            json!({"title": "x"}),
        ),
        (
            Method::DELETE,
            format!("/v1/conversations/{g}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/v1/conversations/{g}/members"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/v1/conversations/{g}/members"),
            json!({"user_ids": [stranger.id]}),
        ),
        (
            Method::DELETE,
            format!("/v1/conversations/{g}/members/{}", member.id),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/v1/conversations/{g}/members/{}", member.id),
            json!({"role": "admin"}),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{g}/messages"),
            json!({"client_message_id": "idor-x", "content": "hi"}),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{g}/messages"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/v1/conversations/{g}/read"),
            json!({"seq": 1}),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{g}/receipts"),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/v1/messages/{msg}"),
            json!({"content": "changed"}),
        ),
        (Method::DELETE, format!("/v1/messages/{msg}"), Value::Null),
        (
            Method::POST,
            format!("/v1/messages/{msg}/reactions"),
            json!({"emoji": "👍"}),
        ),
        (
            Method::DELETE,
            format!("/v1/messages/{msg}/reactions/%F0%9F%91%8D"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/v1/search/messages?q=secret&conversation_id={g}"),
            Value::Null,
        ),
        // Bad input from a non-member is still "not found", not a validation error.
        (
            Method::POST,
            format!("/v1/conversations/{g}/messages"),
            json!({"client_message_id": "bad id!", "content": "hi"}),
        ),
        (
            Method::POST,
            format!("/v1/messages/{msg}/reactions"),
            json!({"emoji": "not an emoji"}),
        ),
    ];
    for (method, path, body) in &routes {
        let r = app
            .call(method.clone(), path, Some(&stranger.access), body.clone())
            .await;
        r.assert_error(404, "NOT_FOUND");
        // Same answer as a conversation that does not exist.
        let ghost = path.replace(&g, &missing).replace(&msg, &missing);
        app.call(method.clone(), &ghost, Some(&stranger.access), body.clone())
            .await
            .assert_error(404, "NOT_FOUND");
        // Without a token: 401 first.
        app.call(method.clone(), path, None, body.clone())
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
    // Members see it; owner-only routes answer members 403.
    app.get(&format!("/v1/conversations/{g}"), Some(&member.access))
        .await
        .assert_ok(200);
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}"),
        Some(&member.access),
        Value::Null,
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.call(
        Method::PATCH,
        &format!("/v1/messages/{msg}"),
        Some(&member.access),
        json!({"content": "x"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{msg}"),
        Some(&member.access),
        Value::Null,
    )
    .await
    .assert_error(403, "FORBIDDEN");
    // Nothing the stranger tried changed anything.
    let h = app
        .get(
            &format!("/v1/conversations/{g}/messages"),
            Some(&owner.access),
        )
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["content"], "secret plans");
    assert_eq!(items[0]["reactions"], json!({}));
    assert_eq!(
        app.get(
            &format!("/v1/conversations/{g}/members"),
            Some(&owner.access)
        )
        .await
        .body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get(&format!("/v1/conversations/{g}"), Some(&owner.access))
            .await
            .body["data"]["title"],
        "team"
    );
}

#[tokio::test]
async fn message_rules() {
    let app = TestApp::spawn_with(|c| {
        c.message_max_chars = 50;
        c.max_reactions_per_message = 2;
    })
    .await;
    let a = app.register("msga").await;
    let b = app.register("msgb").await;
    let g = app.group(&a, &[&b]).await;
    let send = |u: &TestUser, body: Value| {
        let (app, path, token) = (
            &app,
            format!("/v1/conversations/{g}/messages"),
            u.access.clone(),
        );
        async move { app.post(&path, Some(&token), body).await }
    };
    let m = send(
        &a,
        json!({"client_message_id": "m-1", "content": "hello\tworld\nline two"}),
    )
    .await;
    let m1 = m.assert_ok(201).clone();
    assert_eq!(m1["seq"], 1);
    assert_eq!(m1["kind"], "text");
    assert_eq!(m1["deleted"], false);
    assert_eq!(m1["attachments"], json!([]));
    assert_eq!(m1["metadata"], json!({}));
    for k in [
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "client_message_id",
        "kind",
        "content",
        "ciphertext",
        "reply_to",
        "attachments",
        "metadata",
        "reactions",
        "created_at",
        "edited_at",
        "deleted",
    ] {
        assert!(m1.get(k).is_some(), "message lacks {k}");
    }
    // Idempotent: same id, same message back with 200, whatever the new content.
    let again = send(
        &a,
        json!({"client_message_id": "m-1", "content": "different"}),
    )
    .await;
    assert_eq!(again.assert_ok(200)["id"], m1["id"]);
    assert_eq!(again.body["data"]["content"], "hello\tworld\nline two");

    send(
        &a,
        json!({"client_message_id": "m-2", "content": "ü".repeat(50)}),
    )
    .await
    .assert_ok(201);
    send(
        &a,
        json!({"client_message_id": "m-3", "content": "ü".repeat(51)}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    send(
        &a,
        json!({"client_message_id": "m-4", "content": "bell\u{7}"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    send(
        &a,
        json!({"client_message_id": "m-5", "content": "nul\u{0}"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    send(
        &a,
        json!({"client_message_id": "m-6", "ciphertext": "aGVsbG8="}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    send(
        &a,
        json!({"client_message_id": "m-7", "content": "x", "ciphertext": "aGVsbG8="}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    send(&a, json!({"client_message_id": "m-8"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    send(&a, json!({"client_message_id": "bad id!", "content": "x"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    send(
        &a,
        json!({"client_message_id": "x".repeat(65), "content": "x"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    send(&a, json!({"content": "x"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // A file nobody can read (here: none at all) is refused like someone else's: 403.
    let att = send(&a, json!({"client_message_id": "m-9", "content": "see file", "attachments": [uuid::Uuid::now_v7()]})).await;
    att.assert_error(403, "FORBIDDEN");
    let att = send(
        &a,
        json!({"client_message_id": "m-9", "content": "see file", "attachments": ["not-an-id"]}),
    )
    .await;
    att.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(att.body["error"]["details"]["field"], "attachments");
    send(
        &a,
        json!({"client_message_id": "m-10", "kind": "system", "content": "x"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // reply_to must be in the same conversation.
    let other = app.group(&a, &[]).await;
    let foreign = app
        .send_text(&a, &other, "f-1", "elsewhere")
        .await
        .assert_ok(201)["id"]
        .clone();
    send(
        &a,
        json!({"client_message_id": "m-11", "content": "re", "reply_to": foreign}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let reply = send(&b, json!({"client_message_id": "m-12", "content": "re", "reply_to": m1["id"], "metadata": {"mentions": []}})).await;
    assert_eq!(reply.assert_ok(201)["reply_to"], m1["id"]);
    assert_eq!(reply.body["data"]["metadata"], json!({"mentions": []}));

    // Edit: sender only; sets edited_at.
    let mid = m1["id"].as_str().unwrap();
    app.call(
        Method::PATCH,
        &format!("/v1/messages/{mid}"),
        Some(&b.access),
        json!({"content": "hijack"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let e = app
        .call(
            Method::PATCH,
            &format!("/v1/messages/{mid}"),
            Some(&a.access),
            json!({"content": "edited"}),
        )
        .await;
    assert_eq!(e.assert_ok(200)["content"], "edited");
    assert!(e.body["data"]["edited_at"].is_string());

    // Reactions: one per user per emoji, a bounded number of distinct emoji.
    let react = |u: &TestUser, emoji: &str| {
        let (app, path, token, body) = (
            &app,
            format!("/v1/messages/{mid}/reactions"),
            u.access.clone(),
            json!({"emoji": emoji}),
        );
        async move { app.post(&path, Some(&token), body).await }
    };
    react(&a, "👍").await.assert_ok(200);
    react(&a, "👍").await.assert_ok(200);
    let r = react(&b, "👍").await;
    assert_eq!(r.assert_ok(200)["reactions"]["👍"], 2);
    react(&b, "👩‍👩‍👧").await.assert_ok(200);
    react(&b, "🎉").await.assert_error(409, "LIMIT_REACHED");
    react(&b, "ab").await.assert_error(400, "VALIDATION_ERROR");
    react(&b, "👍👍")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/messages/{mid}/reactions/%F0%9F%91%8D"),
            Some(&a.access),
            Value::Null,
        )
        .await;
    assert_eq!(r.assert_ok(200)["reactions"]["👍"], 1);
    // History pages say which of the counts are the reader's own.
    let mine = |u: &TestUser| {
        let (app, path, token, mid) = (
            &app,
            format!("/v1/conversations/{g}/messages"),
            u.access.clone(),
            mid.to_string(),
        );
        async move {
            let h = app.get(&path, Some(&token)).await;
            let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
            let m = items.iter().find(|m| m["id"] == mid.as_str()).unwrap();
            m["my_reactions"].clone()
        }
    };
    assert_eq!(mine(&a).await, json!([]));
    assert_eq!(mine(&b).await, json!(["👍", "👩‍👩‍👧"]));

    // Delete: a tombstone; editing it is a conflict; the owner may delete others' messages.
    let reply_id = reply.body["data"]["id"].as_str().unwrap().to_string();
    let d = app
        .call(
            Method::DELETE,
            &format!("/v1/messages/{reply_id}"),
            Some(&a.access),
            Value::Null,
        )
        .await;
    let t = d.assert_ok(200);
    assert_eq!(t["deleted"], true);
    assert_eq!(t["content"], Value::Null);
    app.call(
        Method::PATCH,
        &format!("/v1/messages/{reply_id}"),
        Some(&b.access),
        json!({"content": "back"}),
    )
    .await
    .assert_error(409, "CONFLICT");
    let h = app
        .get(
            &format!("/v1/conversations/{g}/messages?after_seq=0"),
            Some(&b.access),
        )
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    let tomb = items.iter().find(|m| m["id"] == reply_id.as_str()).unwrap();
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["content"], Value::Null);
    assert_eq!(tomb["metadata"], json!({}));
}

#[tokio::test]
async fn encrypted_conversations_take_ciphertext_only() {
    let app = TestApp::spawn().await;
    let a = app.register("enca").await;
    let b = app.register("encb").await;
    let c = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "direct", "member_ids": [b.id], "encrypted": true}),
        )
        .await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    assert_eq!(c.body["data"]["encrypted"], true);
    let path = format!("/v1/conversations/{id}/messages");
    app.post(
        &path,
        Some(&a.access),
        json!({"client_message_id": "e-1", "content": "plain"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &path,
        Some(&a.access),
        json!({"client_message_id": "e-2", "ciphertext": "***"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    use base64::Engine;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 64 * 1024 + 1]);
    app.post(
        &path,
        Some(&a.access),
        json!({"client_message_id": "e-3", "ciphertext": big}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    let ok = base64::engine::general_purpose::STANDARD.encode(b"sealed findme words");
    let m = app
        .post(
            &path,
            Some(&a.access),
            json!({"client_message_id": "e-4", "ciphertext": ok}),
        )
        .await;
    assert_eq!(m.assert_ok(201)["ciphertext"], ok.as_str());
    assert_eq!(m.body["data"]["content"], Value::Null);
    let s = app
        .get("/v1/search/messages?q=findme", Some(&a.access))
        .await;
    assert_eq!(s.assert_ok(200)["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn history_pages_by_seq() {
    let app = TestApp::spawn().await;
    let a = app.register("hista").await;
    let g = app.group(&a, &[]).await;
    for i in 1..=7 {
        app.send_text(&a, &g, &format!("h-{i}"), &format!("message {i}"))
            .await
            .assert_ok(201);
    }
    let page = |q: &str| {
        let (app, path, token) = (
            &app,
            format!("/v1/conversations/{g}/messages{q}"),
            a.access.clone(),
        );
        async move { app.get(&path, Some(&token)).await }
    };
    let seqs = |r: &Resp| {
        r.body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let newest = page("?limit=3").await;
    assert_eq!(seqs(&newest), vec![7, 6, 5]);
    assert_eq!(newest.body["data"]["has_more"], true);
    let older = page("?limit=3&before_seq=5").await;
    assert_eq!(seqs(&older), vec![4, 3, 2]);
    let oldest = page("?limit=3&before_seq=2").await;
    assert_eq!(seqs(&oldest), vec![1]);
    assert_eq!(oldest.body["data"]["has_more"], false);
    let after = page("?after_seq=4").await;
    assert_eq!(seqs(&after), vec![5, 6, 7]);
    assert_eq!(after.body["data"]["has_more"], false);
    let after = page("?after_seq=0&limit=2").await;
    assert_eq!(seqs(&after), vec![1, 2]);
    assert_eq!(after.body["data"]["has_more"], true);
    page("?cursor=abc")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    page("?after_seq=-1")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    page("?before_seq=x")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    page("?limit=0").await.assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn read_receipts_only_move_forward_and_drive_unread_counts() {
    let app = TestApp::spawn().await;
    let a = app.register("reada").await;
    let b = app.register("readb").await;
    let g = app.group(&a, &[&b]).await;
    for i in 1..=4 {
        app.send_text(&a, &g, &format!("r-{i}"), "x")
            .await
            .assert_ok(201);
    }
    app.send_text(&b, &g, "rb-1", "mine").await.assert_ok(201);
    let conv = |u: &TestUser| {
        let (app, path, token) = (&app, format!("/v1/conversations/{g}"), u.access.clone());
        async move { app.get(&path, Some(&token)).await.body["data"].clone() }
    };
    assert_eq!(
        conv(&b).await["unread_count"],
        4,
        "own messages are not unread"
    );
    assert_eq!(conv(&a).await["unread_count"], 1);
    let r = app
        .post(
            &format!("/v1/conversations/{g}/read"),
            Some(&b.access),
            json!({"seq": 3}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["read_seq"], 3);
    assert_eq!(conv(&b).await["unread_count"], 1);
    let r = app
        .post(
            &format!("/v1/conversations/{g}/read"),
            Some(&b.access),
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["read_seq"], 3, "never moves back");
    let r = app
        .post(
            &format!("/v1/conversations/{g}/read"),
            Some(&b.access),
            json!({"seq": 999}),
        )
        .await;
    assert_eq!(
        r.assert_ok(200)["read_seq"],
        5,
        "never past the last message"
    );
    app.post(
        &format!("/v1/conversations/{g}/read"),
        Some(&b.access),
        json!({"seq": -1}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let rc = app
        .get(&format!("/v1/conversations/{g}/receipts"), Some(&a.access))
        .await;
    let items = rc.assert_ok(200)["items"].as_array().unwrap().clone();
    assert!(
        items
            .iter()
            .any(|i| i["user_id"] == b.id.as_str() && i["read_seq"] == 5)
    );
    assert!(
        items
            .iter()
            .any(|i| i["user_id"] == a.id.as_str() && i["read_seq"] == 0)
    );

    // Lists order by activity and page with a cursor.
    let other = app.group(&b, &[&a]).await;
    let list = app.get("/v1/conversations?limit=1", Some(&a.access)).await;
    let d = list.assert_ok(200).clone();
    assert_eq!(d["items"][0]["id"], other.as_str());
    let cursor = d["next_cursor"].as_str().unwrap();
    let next = app
        .get(
            &format!("/v1/conversations?limit=1&cursor={cursor}"),
            Some(&a.access),
        )
        .await;
    assert_eq!(next.body["data"]["items"][0]["id"], g.as_str());
    app.send_text(&a, &g, "r-5", "bump").await.assert_ok(201);
    let list = app.get("/v1/conversations", Some(&a.access)).await;
    assert_eq!(
        list.body["data"]["items"][0]["id"],
        g.as_str(),
        "most recent activity first"
    );
}

#[tokio::test]
async fn search_messages() {
    let app = TestApp::spawn().await;
    let a = app.register("seara").await;
    let b = app.register("searb").await;
    let outsider = app.register("searc").await;
    let g = app.group(&a, &[&b]).await;
    let m = app
        .send_text(&a, &g, "s-1", "The quick brown fox")
        .await
        .assert_ok(201)
        .clone();
    app.send_text(&b, &g, "s-2", "a lazy dog sleeps")
        .await
        .assert_ok(201);
    app.send_text(
        &outsider,
        &app.group(&outsider, &[]).await,
        "s-3",
        "another fox elsewhere",
    )
    .await
    .assert_ok(201);
    let ids = |r: &Resp| {
        r.body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Findable as soon as the send returns; only in the caller's conversations.
    let r = app.get("/v1/search/messages?q=fox", Some(&b.access)).await;
    r.assert_ok(200);
    assert_eq!(ids(&r), vec![m["id"].as_str().unwrap().to_string()]);
    assert_eq!(
        ids(&app
            .get("/v1/search/messages?q=QUICK%20fox", Some(&a.access))
            .await)
        .len(),
        1
    );
    assert_eq!(
        ids(&app
            .get(
                &format!("/v1/search/messages?q=dog&conversation_id={g}"),
                Some(&a.access)
            )
            .await)
        .len(),
        1
    );
    // FTS syntax in the input is taken literally, never an error.
    for q in [
        "%22",
        "fox%20OR%20dog",
        "NEAR(",
        "*",
        "fox%22%20OR%20%22dog",
    ] {
        let r = app
            .get(&format!("/v1/search/messages?q={q}"), Some(&a.access))
            .await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
    }
    app.get("/v1/search/messages", Some(&a.access))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // Edited text is what is found.
    let mid = m["id"].as_str().unwrap();
    app.call(
        Method::PATCH,
        &format!("/v1/messages/{mid}"),
        Some(&a.access),
        json!({"content": "a slow red panda"}),
    )
    .await
    .assert_ok(200);
    assert_eq!(
        ids(&app.get("/v1/search/messages?q=fox", Some(&a.access)).await).len(),
        0
    );
    assert_eq!(
        ids(&app
            .get("/v1/search/messages?q=panda", Some(&a.access))
            .await)
        .len(),
        1
    );
    // Deleted messages are not found.
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{mid}"),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    assert_eq!(
        ids(&app
            .get("/v1/search/messages?q=panda", Some(&a.access))
            .await)
        .len(),
        0
    );
    // Conversations the caller has left are not searched.
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}/members/{}", b.id),
        Some(&b.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    assert_eq!(
        ids(&app.get("/v1/search/messages?q=dog", Some(&b.access)).await).len(),
        0
    );
    assert_eq!(
        ids(&app.get("/v1/search/messages?q=dog", Some(&a.access)).await).len(),
        1
    );
}

#[tokio::test]
async fn per_user_send_rate_limit() {
    let app = TestApp::spawn_with(|c| c.message_rate_per_user_per_minute = 3).await;
    let a = app.register("ratesend").await;
    let g = app.group(&a, &[]).await;
    for i in 0..3 {
        app.send_text(&a, &g, &format!("rl-{i}"), "x")
            .await
            .assert_ok(201);
    }
    let r = app.send_text(&a, &g, "rl-3", "x").await;
    r.assert_error(429, "RATE_LIMITED");
    assert!(r.headers.contains_key("retry-after"));
    // The headers describe the limit that refused (3 per minute), not the route's general one.
    assert_eq!(r.headers["ratelimit-limit"], "3");
    assert_eq!(r.headers["x-ratelimit-limit"], "3");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert_eq!(
        r.headers["ratelimit-reset"], r.headers["retry-after"],
        "reset and Retry-After agree"
    );
    // A retry of an already-sent message is still answered.
    app.send_text(&a, &g, "rl-0", "x").await.assert_ok(200);
}

#[tokio::test]
async fn concurrent_idempotent_retries_store_one_message() {
    let app = TestApp::spawn().await;
    let a = app.register("idem").await;
    let g = app.group(&a, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/conversations/{g}/messages")),
            a.access.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"client_message_id": "same-one", "content": "once"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body["data"]["id"].as_str().unwrap().to_string())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert!(status == 200 || status == 201);
        created += (status == 201) as usize;
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    let h = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&a.access))
        .await;
    assert_eq!(h.body["data"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get(&format!("/v1/conversations/{g}"), Some(&a.access))
            .await
            .body["data"]["last_message_seq"],
        1,
        "no seq was burnt"
    );
}

#[tokio::test]
async fn verified_email_can_be_required_for_messaging() {
    let app = TestApp::spawn_with(|c| c.require_verified_email = true).await;
    let a = app.register("unverified").await;
    let r = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "group", "member_ids": []}),
        )
        .await;
    r.assert_error(403, "EMAIL_NOT_VERIFIED");
    // Account routes still work.
    app.get("/v1/users/me", Some(&a.access))
        .await
        .assert_ok(200);
    let token = token_in(&app.wait_for_mail(&a.email, "verify-email").await);
    app.post("/v1/auth/email/verify", None, json!({"token": token}))
        .await
        .assert_ok(200);
    // The same session may message at once after verifying.
    let g = app.group(&a, &[]).await;
    app.send_text(&a, &g, "v-1", "verified now")
        .await
        .assert_ok(201);
}

#[tokio::test]
async fn deleting_an_account_hands_its_groups_over() {
    let app = TestApp::spawn().await;
    let owner = app.register("leavingowner").await;
    let admin = app.register("futureowner").await;
    let member = app.register("plainmember").await;
    let g = app.group(&owner, &[&member, &admin]).await;
    app.call(
        Method::PATCH,
        &format!("/v1/conversations/{g}/members/{}", admin.id),
        Some(&owner.access),
        json!({"role": "admin"}),
    )
    .await
    .assert_ok(200);
    let solo = app.group(&owner, &[]).await;
    app.call(
        Method::DELETE,
        "/v1/users/me",
        Some(&owner.access),
        json!({"password": PASSWORD}),
    )
    .await
    .assert_ok(200);
    let v = app
        .get(&format!("/v1/conversations/{g}"), Some(&admin.access))
        .await;
    assert_eq!(
        v.assert_ok(200)["my_role"],
        "owner",
        "the admin inherits, not the older member"
    );
    assert_eq!(v.body["data"]["members_count"], 2);
    let members = app
        .get(
            &format!("/v1/conversations/{g}/members"),
            Some(&member.access),
        )
        .await;
    assert!(
        members.body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["user_id"] != owner.id.as_str())
    );
    // A group nobody is left in is gone.
    let probe = TestUser::from_pair(app.login("plainmember").await.assert_ok(200), &member.email);
    app.get(&format!("/v1/conversations/{solo}"), Some(&probe.access))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_plain_get_does_not_use_up_a_ticket() {
    let app = TestApp::spawn().await;
    let u = app.register("ticketget").await;
    let ticket = app.ticket(&u).await;
    let r = app
        .get(&format!("/v1/realtime?ticket={ticket}"), None)
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    let url = format!(
        "{}/v1/realtime?ticket={ticket}",
        app.base.replace("http://", "ws://")
    );
    assert!(
        tokio_tungstenite::connect_async(url).await.is_ok(),
        "the ticket still works"
    );
}

#[tokio::test]
async fn keycap_emoji_are_emoji_and_letters_are_not() {
    let app = TestApp::spawn().await;
    let a = app.register("keycap").await;
    let g = app.group(&a, &[]).await;
    let m = app.send_text(&a, &g, "k-1", "vote").await.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/v1/messages/{m}/reactions"),
            Some(&a.access),
            json!({"emoji": "1\u{fe0f}\u{20e3}"}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["reactions"]["1\u{fe0f}\u{20e3}"], 1);
    app.post(
        &format!("/v1/messages/{m}/reactions"),
        Some(&a.access),
        json!({"emoji": "a"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn ownership_is_handed_over_atomically() {
    let app = TestApp::spawn().await;
    let owner = app.register("handowner").await;
    let heir = app.register("handheir").await;
    let g = app.group(&owner, &[&heir]).await;
    let path = format!("/v1/conversations/{g}/members/{}", heir.id);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&owner.access),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["role"], "owner");
    assert_eq!(
        app.get(&format!("/v1/conversations/{g}"), Some(&owner.access))
            .await
            .body["data"]["my_role"],
        "admin"
    );
    // The former owner can no longer hand anything over.
    let back = format!("/v1/conversations/{g}/members/{}", owner.id);
    app.call(
        Method::PATCH,
        &back,
        Some(&owner.access),
        json!({"role": "owner"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let members = app
        .get(
            &format!("/v1/conversations/{g}/members"),
            Some(&heir.access),
        )
        .await;
    let owners = members.body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
}
