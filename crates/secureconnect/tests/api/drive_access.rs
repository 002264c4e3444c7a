//! Who reaches a drive file, and through what: public links (expiry, password, download count),
//! message attachments (members read while the message stands and they are members), and the
//! IDOR matrix of every drive route for owner, read and write grantees, conversation members,
//! strangers and anonymous link holders.

use crate::common::*;
use crate::drive::{PNG, init, local, put_bytes, upload};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn fetch(app: &TestApp, link: &Value) -> Vec<u8> {
    let url = local(app, link["download_url"].as_str().unwrap());
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

async fn make_link(app: &TestApp, u: &TestUser, file: &str, body: Value) -> Resp {
    app.post(&format!("/v1/files/{file}/links"), Some(&u.access), body)
        .await
}

fn in_secs(s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn public_links_with_expiry_password_and_a_download_count() {
    let app = TestApp::spawn_with(|c| c.link_password_attempts_per_minute = 3).await;
    let owner = app.register("linkowner").await;
    let reader = app.register("linkreader").await;
    let stranger = app.register("linkstranger").await;
    let file = upload(&app, &owner, "photo.png", "image/png", PNG).await;
    let id = file["id"].as_str().unwrap();

    // An open link: anyone with the token sees the file and downloads it, without an account.
    let l = make_link(&app, &owner, id, json!({})).await;
    let created = l.assert_ok(201).clone();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert_eq!(
        created["url"],
        format!("http://sc.test/v1/links/{token}").as_str()
    );
    // The web app's page for the link, which the server answers with the app.
    assert_eq!(
        created["page_url"],
        format!("http://sc.test/l/{token}").as_str()
    );
    let page = app.get(&format!("/l/{token}"), None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(r#"<div id="app">"#));
    assert_eq!(created["password_required"], false);
    let info = app.get(&format!("/v1/links/{token}"), None).await;
    let info = info.assert_ok(200);
    assert_eq!(info["name"], "photo.png");
    assert_eq!(info["size"], PNG.len());
    assert_eq!(info["content_type"], "image/png");
    assert_eq!(info["password_required"], false);
    assert_eq!(info["expires_at"], Value::Null);
    let d = app
        .post(&format!("/v1/links/{token}/download"), None, json!({}))
        .await;
    assert_eq!(fetch(&app, d.assert_ok(200)).await, PNG);
    // The token is no bearer token for the API.
    app.get(&format!("/v1/files/{id}"), Some(&token))
        .await
        .assert_error(401, "UNAUTHORIZED");
    // Unknown and malformed tokens look alike.
    for t in ["A".repeat(43), "short".into(), "x".repeat(300)] {
        app.get(&format!("/v1/links/{t}"), None)
            .await
            .assert_error(404, "NOT_FOUND");
        app.post(&format!("/v1/links/{t}/download"), None, json!({}))
            .await
            .assert_error(404, "NOT_FOUND");
    }

    // Only the owner makes links; bad requests change nothing.
    app.post(
        &format!("/v1/files/{id}/shares"),
        Some(&owner.access),
        json!({"user_id": reader.id, "permission": "write"}),
    )
    .await
    .assert_ok(201);
    make_link(&app, &reader, id, json!({}))
        .await
        .assert_error(403, "FORBIDDEN");
    make_link(&app, &stranger, id, json!({}))
        .await
        .assert_error(404, "NOT_FOUND");
    for bad in [
        json!({"expires_at": in_secs(-10)}),
        json!({"expires_at": "tomorrow"}),
        json!({"max_downloads": 0}),
        json!({"max_downloads": 2_000_000}),
        json!({"password": "abc"}),
        json!({"password": "x".repeat(257)}),
        json!({"token": "chosen"}),
    ] {
        make_link(&app, &owner, id, bad.clone())
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let folder = app
        .post("/v1/folders", Some(&owner.access), json!({"name": "f"}))
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    make_link(&app, &owner, &folder, json!({}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let list = app
        .get(&format!("/v1/files/{id}/links"), Some(&owner.access))
        .await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "only the first link was made");
    assert!(items[0].get("token").is_none(), "tokens are shown once");
    assert_eq!(items[0]["downloads"], 1);
    app.get(&format!("/v1/files/{id}/links"), Some(&reader.access))
        .await
        .assert_error(403, "FORBIDDEN");

    // A password: asked for, checked, and its attempts limited per link.
    let l = make_link(&app, &owner, id, json!({"password": "correct horse"})).await;
    let ptoken = l.assert_ok(201)["token"].as_str().unwrap().to_string();
    let info = app.get(&format!("/v1/links/{ptoken}"), None).await;
    assert_eq!(info.assert_ok(200)["password_required"], true);
    let pdl = |body: Value| {
        let (app, t) = (&app, ptoken.clone());
        async move {
            app.post(&format!("/v1/links/{t}/download"), None, body)
                .await
        }
    };
    pdl(json!({})).await.assert_error(403, "FORBIDDEN");
    pdl(json!({"password": "wrong horse"}))
        .await
        .assert_error(403, "FORBIDDEN");
    let ok = pdl(json!({"password": "correct horse"})).await;
    assert_eq!(fetch(&app, ok.assert_ok(200)).await, PNG);
    pdl(json!({"password": "wrong again"}))
        .await
        .assert_error(403, "FORBIDDEN");
    // Three attempts a minute (a request without a password is no attempt): the fourth is
    // refused even with the right password.
    pdl(json!({"password": "correct horse"}))
        .await
        .assert_error(429, "RATE_LIMITED");

    // Expiry: live until expires_at, then gone.
    let l = make_link(&app, &owner, id, json!({"expires_at": in_secs(2)})).await;
    let etoken = l.assert_ok(201)["token"].as_str().unwrap().to_string();
    assert!(
        app.get(&format!("/v1/links/{etoken}"), None)
            .await
            .assert_ok(200)["expires_at"]
            .is_string()
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.get(&format!("/v1/links/{etoken}"), None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.post(&format!("/v1/links/{etoken}/download"), None, json!({}))
        .await
        .assert_error(404, "NOT_FOUND");

    // max_downloads is counted atomically: of 20 concurrent downloads exactly 3 get a URL.
    let l = make_link(&app, &owner, id, json!({"max_downloads": 3})).await;
    let mtoken = l.assert_ok(201)["token"].as_str().unwrap().to_string();
    let tries = (0..20).map(|_| {
        let (app, t) = (&app, mtoken.clone());
        async move {
            app.post(&format!("/v1/links/{t}/download"), None, json!({}))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 404),
        "{statuses:?}"
    );
    app.get(&format!("/v1/links/{mtoken}"), None)
        .await
        .assert_error(404, "NOT_FOUND");

    // Revoked, the token stops at once; a deleted file takes its links with it.
    let lid = created["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/v1/files/{id}/links/{lid}"),
        Some(&owner.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/links/{token}"), None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/v1/files/{id}"),
        Some(&owner.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/links/{ptoken}"), None)
        .await
        .assert_error(404, "NOT_FOUND");

    // Audited without secrets: neither tokens nor the password reach a log line.
    let logs = captured_logs();
    assert!(logs.contains("link.created"), "the audit event is logged");
    for secret in [&token, &ptoken, &etoken, &mtoken] {
        assert!(!logs.contains(secret.as_str()), "a link token was logged");
    }
    assert!(
        !logs.contains("correct horse"),
        "a link password was logged"
    );
}

#[tokio::test]
async fn attachments_give_members_read_access_while_the_message_stands() {
    let app = TestApp::spawn().await;
    let a = app.register("attacher").await;
    let b = app.register("attmember").await;
    let d = app.register("attother").await;
    let c = app.register("attstranger").await;
    let g = app.group(&a, &[&b, &d]).await;
    let file = upload(&app, &a, "scan.png", "image/png", PNG).await;
    let id = file["id"].as_str().unwrap().to_string();
    let send = |u: &TestUser, conv: &str, body: Value| {
        let (app, token, conv) = (&app, u.access.clone(), conv.to_string());
        async move {
            app.post(
                &format!("/v1/conversations/{conv}/messages"),
                Some(&token),
                body,
            )
            .await
        }
    };
    // Before it is attached, the members cannot see it.
    app.get(&format!("/v1/files/{id}"), Some(&b.access))
        .await
        .assert_error(404, "NOT_FOUND");

    // Bad attachment lists change nothing.
    let folder = app
        .post("/v1/folders", Some(&a.access), json!({"name": "dir"}))
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    let pending = init(
        &app,
        &a,
        json!({"name": "later.png", "size": PNG.len(), "content_type": "image/png"}),
    )
    .await;
    let pending = pending.assert_ok(201)["file_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (body, status) in [
        (json!({"client_message_id": "x1", "kind": "image"}), 400),
        (
            json!({"client_message_id": "x2", "content": "twice", "attachments": [id, id]}),
            400,
        ),
        (
            json!({"client_message_id": "x3", "content": "dir", "attachments": [folder]}),
            400,
        ),
        (
            json!({"client_message_id": "x4", "content": "pending", "attachments": [pending]}),
            400,
        ),
        (
            json!({"client_message_id": "x5", "content": "many", "attachments": (0..11).map(|_| uuid::Uuid::now_v7().to_string()).collect::<Vec<_>>()}),
            400,
        ),
    ] {
        let r = send(&a, &g, body).await;
        assert_eq!(r.status, status, "{:?}", r.body);
    }
    // A stranger cannot attach a file they cannot read, in a conversation of their own.
    let cg = app.group(&c, &[]).await;
    send(
        &c,
        &cg,
        json!({"client_message_id": "steal", "content": "mine now", "attachments": [id]}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.get(&format!("/v1/files/{id}"), Some(&c.access))
        .await
        .assert_error(404, "NOT_FOUND");

    // Attached: the members read and download it; they may not change it.
    let m = send(
        &a,
        &g,
        json!({"client_message_id": "att-1", "kind": "image", "content": "the scan", "attachments": [id]}),
    )
    .await;
    let m = m.assert_ok(201).clone();
    assert_eq!(m["attachments"], json!([id]));
    let history = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&b.access))
        .await;
    assert_eq!(
        history.assert_ok(200)["items"][0]["attachments"],
        json!([id])
    );
    app.get(&format!("/v1/files/{id}"), Some(&b.access))
        .await
        .assert_ok(200);
    let dl = app
        .get(&format!("/v1/files/{id}/download"), Some(&b.access))
        .await;
    assert_eq!(fetch(&app, dl.assert_ok(200)).await, PNG);
    app.call(
        Method::PATCH,
        &format!("/v1/files/{id}"),
        Some(&b.access),
        json!({"name": "mine.png"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &format!("/v1/files/{id}"),
        Some(&b.access),
        Value::Null,
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.get(&format!("/v1/files/{id}"), Some(&c.access))
        .await
        .assert_error(404, "NOT_FOUND");

    // A member who leaves loses access at once; so does everyone when the message goes.
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}/members/{}", b.id),
        Some(&b.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/files/{id}/download"), Some(&b.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/v1/files/{id}"), Some(&d.access))
        .await
        .assert_ok(200);
    let mid = m["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{mid}"),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/files/{id}"), Some(&d.access))
        .await
        .assert_error(404, "NOT_FOUND");
    let history = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&d.access))
        .await;
    assert_eq!(history.assert_ok(200)["items"][0]["attachments"], json!([]));
}

/// One actor's expected status for each route of the matrix, in `ROUTES` order.
struct Row<'a> {
    who: &'a str,
    token: Option<String>,
    expect: [u16; ROUTES],
}

const ROUTES: usize = 16;

#[tokio::test]
async fn idor_matrix_over_every_drive_route() {
    let app = TestApp::spawn().await;
    let owner = app.register("idorowner").await;
    let reader = app.register("idorreader").await;
    let writer = app.register("idorwriter").await;
    let member = app.register("idormember").await;
    let stranger = app.register("idorstranger").await;
    let folder = app
        .post("/v1/folders", Some(&owner.access), json!({"name": "box"}))
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    let t = init(
        &app,
        &owner,
        json!({"name": "a.png", "size": PNG.len(), "content_type": "image/png", "parent_id": folder}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, PNG).await.status(), 200);
    let file = ticket["file_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/files/{file}/complete"),
        Some(&owner.access),
        json!({}),
    )
    .await
    .assert_ok(200);
    for (u, p) in [(&reader, "read"), (&writer, "write")] {
        app.post(
            &format!("/v1/files/{folder}/shares"),
            Some(&owner.access),
            json!({"user_id": u.id, "permission": p}),
        )
        .await
        .assert_ok(201);
    }
    let g = app.group(&owner, &[&member]).await;
    app.send_text(&owner, &g, "seed", "hi").await.assert_ok(201);
    app.post(
        &format!("/v1/conversations/{g}/messages"),
        Some(&owner.access),
        json!({"client_message_id": "att", "kind": "file", "attachments": [file]}),
    )
    .await
    .assert_ok(201);
    let link = make_link(&app, &owner, &file, json!({})).await;
    let link_token = link.assert_ok(201)["token"].as_str().unwrap().to_string();
    let link_id = link.body["data"]["id"].as_str().unwrap().to_string();
    let share = app
        .get(&format!("/v1/files/{folder}/shares"), Some(&owner.access))
        .await;
    let share_id = share.assert_ok(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Every route that names a file, with a body that would succeed for an allowed caller.
    let f = |p: &str| format!("/v1/files/{file}{p}");
    let routes: [(Method, String, Value); ROUTES] = [
        (Method::GET, f(""), Value::Null),
        (Method::GET, f("/download"), Value::Null),
        (Method::GET, f("/versions"), Value::Null),
        (
            Method::GET,
            format!("/v1/files?parent_id={folder}"),
            Value::Null,
        ),
        (Method::GET, f("/shares"), Value::Null),
        (Method::GET, f("/links"), Value::Null),
        (Method::PATCH, f(""), json!({"name": "renamed.png"})),
        (Method::POST, f("/versions/1/restore"), json!({})),
        (
            Method::POST,
            f("/versions"),
            json!({"size": PNG.len(), "content_type": "image/png"}),
        ),
        (Method::POST, f("/complete"), json!({})),
        (
            Method::POST,
            f("/shares"),
            json!({"user_id": stranger.id, "permission": "read"}),
        ),
        (Method::POST, f("/links"), json!({})),
        (
            Method::DELETE,
            format!("/v1/files/{folder}/shares/{share_id}"),
            Value::Null,
        ),
        (Method::DELETE, f(&format!("/links/{link_id}")), Value::Null),
        (
            Method::POST,
            "/v1/files/uploads".into(),
            json!({"name": "b.png", "size": PNG.len(), "content_type": "image/png", "parent_id": folder}),
        ),
        (Method::DELETE, f(""), Value::Null),
    ];
    // Denied callers first (nothing changes), then the writer, then the owner. A complete with
    // nothing uploaded is 400 for whoever may complete (and abandons that pending version); new
    // files in a shared folder are the owner's alone (API.md §12 gives writers versions only).
    let rows = [
        Row {
            who: "anonymous",
            token: None,
            expect: [401; ROUTES],
        },
        Row {
            who: "link token as bearer",
            token: Some(link_token.clone()),
            expect: [401; ROUTES],
        },
        Row {
            who: "stranger",
            token: Some(stranger.access.clone()),
            expect: [
                404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404,
            ],
        },
        Row {
            who: "conversation member",
            token: Some(member.access.clone()),
            expect: [
                200, 200, 200, 404, 403, 403, 403, 403, 403, 403, 403, 403, 404, 403, 404, 403,
            ],
        },
        Row {
            who: "read grantee",
            token: Some(reader.access.clone()),
            expect: [
                200, 200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403,
            ],
        },
        Row {
            who: "write grantee",
            token: Some(writer.access.clone()),
            expect: [
                200, 200, 200, 200, 403, 403, 200, 200, 201, 400, 403, 403, 403, 403, 403, 403,
            ],
        },
        Row {
            who: "owner",
            token: Some(owner.access.clone()),
            expect: [
                200, 200, 200, 200, 200, 200, 200, 200, 201, 400, 201, 201, 200, 200, 201, 200,
            ],
        },
    ];
    let mut wrong = Vec::new();
    for row in &rows {
        for (i, (method, path, body)) in routes.iter().enumerate() {
            let r = app
                .call(method.clone(), path, row.token.as_deref(), body.clone())
                .await;
            if r.status != row.expect[i] {
                wrong.push(format!(
                    "{} {method} {path}: {} (expected {}) {}",
                    row.who, r.status, row.expect[i], r.body
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
