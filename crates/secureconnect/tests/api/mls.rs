//! The MLS Delivery Service contract (API.md §10) with opaque bytes: devices, key packages
//! claimed exactly once under a race, commits by compare-and-swap on the epoch, catch-up,
//! group info, welcomes only to their device, and the realtime events.

use crate::common::*;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use std::collections::HashSet;

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

async fn device(app: &TestApp, u: &TestUser, key_byte: u8) -> String {
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/devices/me",
            Some(&u.access),
            json!({"signature_key": b64(&[key_byte; 32]), "credential": b64(u.username.as_bytes())}),
        )
        .await;
    r.assert_ok(201)["device_id"].as_str().unwrap().to_string()
}

async fn encrypted_group(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let r = app
        .post(
            "/v1/conversations",
            Some(&owner.access),
            json!({"kind": "group", "member_ids": ids, "title": "sealed", "encrypted": true}),
        )
        .await;
    r.assert_ok(201)["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn devices_are_one_per_session_with_a_fixed_key() {
    let app = TestApp::spawn().await;
    let a = app.register("mlsdev").await;
    let t = Some(a.access.as_str());
    // Routes that need a device answer 409 until the session has one.
    app.get("/v1/keys/packages/count", t)
        .await
        .assert_error(409, "CONFLICT");
    app.get("/v1/devices/me/welcomes", t)
        .await
        .assert_error(409, "CONFLICT");
    let put = |body: Value| app.call(reqwest::Method::PUT, "/v1/devices/me", t, body);
    put(json!({"signature_key": "not base64!", "credential": b64(b"c")}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    put(json!({"signature_key": b64(&[1; 33]), "credential": b64(b"c")}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    put(json!({"signature_key": b64(&[1; 32]), "credential": b64(&[0; 1025])}))
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    let id = device(&app, &a, 1).await;
    let again = put(json!({"signature_key": b64(&[1; 32]), "credential": b64(b"mlsdev")})).await;
    assert_eq!(again.assert_ok(200)["device_id"], id.as_str());
    put(json!({"signature_key": b64(&[2; 32]), "credential": b64(b"mlsdev")}))
        .await
        .assert_error(409, "CONFLICT");
    // A second session is a second device; anyone signed in can list them.
    let other = app.login("mlsdev").await;
    let other = TestUser::from_pair(other.assert_ok(200), &a.email);
    let id2 = device(&app, &other, 3).await;
    let viewer = app.register("mlsviewer").await;
    let list = app
        .get(&format!("/v1/users/{}/devices", a.id), Some(&viewer.access))
        .await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    let ids: HashSet<&str> = items
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([id.as_str(), id2.as_str()]));
    assert_eq!(items[0]["signature_key"].as_str().unwrap().len(), 44);
    // Ending a session deletes its device.
    app.post("/v1/auth/logout", Some(&other.access), Value::Null)
        .await
        .assert_ok(200);
    let list = app
        .get(&format!("/v1/users/{}/devices", a.id), Some(&viewer.access))
        .await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["device_id"], id.as_str());
    app.get(
        &format!("/v1/users/{}/devices", uuid::Uuid::now_v7()),
        Some(&viewer.access),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn each_key_package_is_claimed_once_under_a_30_way_race() {
    let app = TestApp::spawn().await;
    let owner = app.register("pkgowner").await;
    device(&app, &owner, 7).await;
    let t = Some(owner.access.as_str());
    let too_many: Vec<String> = (0..101).map(|i| b64(&[i as u8; 8])).collect();
    app.post("/v1/keys/packages", t, json!({"key_packages": too_many}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/keys/packages",
        t,
        json!({"key_packages": [b64(&[1; 4097])]}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    let packages: Vec<String> = (0..10u8).map(|i| b64(&[b'p', i, 0, 1])).collect();
    let r = app
        .post(
            "/v1/keys/packages",
            t,
            json!({"key_packages": packages, "last_resort": b64(b"last-resort")}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["available"], 10);
    let c = app.get("/v1/keys/packages/count", t).await;
    assert_eq!(
        c.assert_ok(200).clone(),
        json!({"available": 10, "last_resort": true})
    );

    let mut claimers = Vec::new();
    for i in 0..30 {
        claimers.push(app.register(&format!("claimer{i}")).await);
    }
    let claims = claimers.iter().map(|c| {
        app.post(
            "/v1/keys/claim",
            Some(&c.access),
            json!({"user_ids": [owner.id]}),
        )
    });
    let results = futures_util::future::join_all(claims).await;
    let mut regular = Vec::new();
    let mut last_resort = 0;
    for r in &results {
        let items = r.assert_ok(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "one package per device");
        if items[0]["last_resort"] == true {
            assert_eq!(items[0]["key_package"], b64(b"last-resort"));
            last_resort += 1;
        } else {
            regular.push(items[0]["key_package"].as_str().unwrap().to_string());
        }
    }
    let distinct: HashSet<&String> = regular.iter().collect();
    assert_eq!(regular.len(), 10, "every regular package handed out");
    assert_eq!(distinct.len(), 10, "none handed out twice");
    assert_eq!(last_resort, 20);
    let c = app.get("/v1/keys/packages/count", t).await;
    assert_eq!(c.assert_ok(200)["available"], 0);
    // Unknown users and users without devices are left out.
    let r = app
        .post(
            "/v1/keys/claim",
            Some(&claimers[0].access),
            json!({"user_ids": [uuid::Uuid::now_v7(), claimers[1].id]}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["items"], json!([]));
    app.post(
        "/v1/keys/claim",
        Some(&claimers[0].access),
        json!({"user_ids": []}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn commits_are_ordered_by_epoch_and_welcomes_reach_only_their_device() {
    let app = TestApp::spawn().await;
    let a = app.register("mlsalice").await;
    let b = app.register("mlsbob").await;
    let stranger = app.register("mlsmallory").await;
    let da = device(&app, &a, 1).await;
    let db = device(&app, &b, 2).await;
    device(&app, &stranger, 3).await;
    let conv = encrypted_group(&app, &a, &[&b]).await;
    let plain = app.group(&a, &[&b]).await;
    let path = format!("/v1/conversations/{conv}/mls/commits");
    let mut ws_a = app.ws(&a).await;
    let mut ws_b = app.ws(&b).await;

    // Refusals change nothing.
    app.post(
        &format!("/v1/conversations/{plain}/mls/commits"),
        Some(&a.access),
        json!({"epoch": 0, "commit": b64(b"c")}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &path,
        Some(&stranger.access),
        json!({"epoch": 0, "commit": b64(b"c")}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post(
        &path,
        Some(&a.access),
        json!({"epoch": 0, "commit": b64(b"c"), "welcome": b64(b"w")}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &path,
        Some(&a.access),
        json!({"epoch": 0, "commit": b64(b"c"), "welcome": b64(b"w"), "welcome_to": [uuid::Uuid::now_v7()]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // Eight concurrent commits at epoch 0: exactly one wins.
    let commits = (0..8u8).map(|i| {
        let token = if i % 2 == 0 { &a.access } else { &b.access };
        app.post(
            &path,
            Some(token),
            json!({"epoch": 0, "commit": b64(&[b'c', i])}),
        )
    });
    let results = futures_util::future::join_all(commits).await;
    let won: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(won[0].body["data"]["epoch"], 1);
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_error(409, "CONFLICT");
        assert_eq!(r.body["error"]["details"]["current_epoch"], 1);
    }
    let ev = ws_b.expect("mls.commit").await;
    assert_eq!(ev["epoch"], 1);
    assert_eq!(ev["conversation_id"], conv.as_str());

    // The loser retries on top of the winner, with a welcome for bob's device.
    let r = app
        .post(
            &path,
            Some(&a.access),
            json!({"epoch": 1, "commit": b64(b"second"), "welcome": b64(b"welcome-bob"),
                   "welcome_to": [db], "group_info": b64(b"info-2")}),
        )
        .await;
    assert_eq!(r.assert_ok(201)["epoch"], 2);
    // Alice's socket heard the first commit too (whoever won it); the second is hers.
    let ev = loop {
        let ev = ws_a.expect("mls.commit").await;
        if ev["epoch"] == 2 {
            break ev;
        }
    };
    assert_eq!(ev["sender_device_id"], da.as_str());
    let wev = ws_b.expect("mls.welcome").await;
    assert_eq!(wev["epoch"], 2);
    let welcomes = app.get("/v1/devices/me/welcomes", Some(&b.access)).await;
    let items = welcomes.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["welcome"], b64(b"welcome-bob"));
    assert_eq!(items[0]["id"], wev["id"]);
    let none = app.get("/v1/devices/me/welcomes", Some(&a.access)).await;
    assert_eq!(none.assert_ok(200)["items"], json!([]));

    // Catch-up pages oldest first.
    let first = app
        .get(&format!("{path}?since_epoch=0&limit=1"), Some(&b.access))
        .await;
    let first = first.assert_ok(200).clone();
    assert_eq!(first["items"][0]["epoch"], 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("{path}?limit=1&cursor={cursor}"), Some(&b.access))
        .await;
    let second = second.assert_ok(200).clone();
    assert_eq!(second["items"][0]["epoch"], 2);
    assert_eq!(second["items"][0]["commit"], b64(b"second"));
    assert_eq!(second["next_cursor"], Value::Null);
    app.get(&format!("{path}?since_epoch=-1"), Some(&b.access))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let info = app
        .get(
            &format!("/v1/conversations/{conv}/mls/group-info"),
            Some(&b.access),
        )
        .await;
    assert_eq!(
        info.assert_ok(200).clone(),
        json!({"epoch": 2, "group_info": b64(b"info-2")})
    );

    // Acknowledged once.
    let wid = items[0]["id"].as_str().unwrap();
    let ack = format!("/v1/devices/me/welcomes/{wid}");
    app.call(reqwest::Method::DELETE, &ack, Some(&a.access), Value::Null)
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(reqwest::Method::DELETE, &ack, Some(&b.access), Value::Null)
        .await
        .assert_ok(200);
    app.call(reqwest::Method::DELETE, &ack, Some(&b.access), Value::Null)
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_commit_body_may_pass_1_mib_up_to_4_mib_but_no_part_over_1_mib() {
    let app = TestApp::spawn().await;
    let a = app.register("mlsbig").await;
    let b = app.register("mlsbigpeer").await;
    device(&app, &a, 1).await;
    let db = device(&app, &b, 2).await;
    let conv = encrypted_group(&app, &a, &[&b]).await;
    let path = format!("/v1/conversations/{conv}/mls/commits");
    let mib = vec![7u8; 1024 * 1024];
    let over = vec![7u8; 1024 * 1024 + 1];
    app.post(
        &path,
        Some(&a.access),
        json!({"epoch": 0, "commit": b64(&over)}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Still at epoch 0: the refused commit changed nothing. A 1 MiB commit and welcome with a
    // half-MiB group info is about 3.4 MiB of base64: over the 1 MiB of other routes, within 4.
    let half = vec![7u8; 512 * 1024];
    let r = app
        .post(
            &path,
            Some(&a.access),
            json!({"epoch": 0, "commit": b64(&mib), "welcome": b64(&mib), "welcome_to": [db],
                   "group_info": b64(&half)}),
        )
        .await;
    assert_eq!(r.assert_ok(201)["epoch"], 1);
    // Past 4 MiB the body is refused before it is read.
    app.post(
        &path,
        Some(&a.access),
        json!({"epoch": 1, "commit": b64(&mib), "welcome": b64(&mib), "welcome_to": [db],
               "group_info": b64(&mib)}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Other routes keep the 1 MiB body limit.
    app.post(
        "/v1/keys/packages",
        Some(&a.access),
        json!({"key_packages": [b64(&mib)]}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
}
