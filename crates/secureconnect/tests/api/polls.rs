//! Polls over HTTP and WebSocket: the rules, exact counts under concurrent votes, live updates
//! across instances, and closing by hand and by the clock.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn in_secs(s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn send(app: &TestApp, u: &TestUser, conv: &str, body: Value) -> Resp {
    app.post(
        &format!("/v1/conversations/{conv}/messages"),
        Some(&u.access),
        body,
    )
    .await
}

async fn new_poll(app: &TestApp, u: &TestUser, conv: &str, cmid: &str, poll: Value) -> Value {
    let r = send(
        app,
        u,
        conv,
        json!({"client_message_id": cmid, "kind": "poll", "content": "Lunch?", "metadata": {"poll": poll}}),
    )
    .await;
    r.assert_ok(201).clone()
}

async fn vote(app: &TestApp, u: &TestUser, poll: &str, ids: Value) -> Resp {
    app.post(
        &format!("/v1/messages/{poll}/votes"),
        Some(&u.access),
        json!({"option_ids": ids}),
    )
    .await
}

fn counts(message: &Value) -> Vec<i64> {
    message["metadata"]["poll"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["votes"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn poll_rules_votes_voters_and_closing() {
    let app = TestApp::spawn().await;
    let a = app.register("pollster").await;
    let b = app.register("pollb").await;
    let c = app.register("pollc").await;
    let e = app.register("pollstranger").await;
    let g = app.group(&a, &[&b, &c]).await;

    let p = new_poll(
        &app,
        &a,
        &g,
        "p-1",
        json!({"options": ["pizza", "sushi", "salad"]}),
    )
    .await;
    assert_eq!(p["kind"], "poll");
    assert_eq!(p["content"], "Lunch?");
    assert_eq!(
        p["metadata"]["poll"],
        json!({"options": [{"id": 0, "text": "pizza", "votes": 0}, {"id": 1, "text": "sushi", "votes": 0},
                           {"id": 2, "text": "salad", "votes": 0}],
               "multiple": false, "anonymous": false, "closed": false, "closes_at": null, "voters": 0})
    );
    let pid = p["id"].as_str().unwrap().to_string();

    // Bad polls are refused and leave nothing behind.
    let before = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&a.access))
        .await;
    let before = before.assert_ok(200)["items"].as_array().unwrap().len();
    for (i, body) in [
        json!({"kind": "poll", "content": "q", "metadata": {"poll": {"options": ["one"]}}}),
        json!({"kind": "poll", "content": "q", "metadata": {"poll": {"options": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}}}),
        json!({"kind": "poll", "content": "q", "metadata": {"poll": {"options": ["x", "x"]}}}),
        json!({"kind": "poll", "content": "q", "metadata": {"poll": {"options": ["x", "y"], "closes_at": in_secs(-5)}}}),
        json!({"kind": "poll", "content": "q", "metadata": {"poll": {"options": ["x", "y"], "secret": true}}}),
        json!({"kind": "poll", "content": "q"}),
        json!({"kind": "poll", "metadata": {"poll": {"options": ["x", "y"]}}}),
        json!({"content": "not a poll", "metadata": {"poll": {"options": ["x", "y"]}}}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = body;
        body["client_message_id"] = json!(format!("bad-{i}"));
        send(&app, &a, &g, body)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let enc = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "group", "member_ids": [b.id], "title": "e2e", "encrypted": true}),
        )
        .await;
    let enc = enc.assert_ok(201)["id"].as_str().unwrap().to_string();
    send(
        &app,
        &a,
        &enc,
        json!({"client_message_id": "enc-poll", "kind": "poll", "ciphertext": "AAAA", "metadata": {"poll": {"options": ["x", "y"]}}}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let after = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&a.access))
        .await;
    assert_eq!(
        after.assert_ok(200)["items"].as_array().unwrap().len(),
        before
    );

    // Votes replace the caller's vote; single choice takes exactly one valid option.
    let r = vote(&app, &b, &pid, json!([0])).await;
    assert_eq!(counts(r.assert_ok(200)), [1, 0, 0]);
    let r = vote(&app, &b, &pid, json!([1])).await;
    assert_eq!(counts(r.assert_ok(200)), [0, 1, 0]);
    let r = vote(&app, &c, &pid, json!(["1"])).await;
    assert_eq!(counts(r.assert_ok(200)), [0, 2, 0]);
    assert_eq!(r.body["data"]["metadata"]["poll"]["voters"], 2);
    for bad in [
        json!([0, 1]),
        json!([3]),
        json!([]),
        json!([-1]),
        json!(["x"]),
    ] {
        vote(&app, &b, &pid, bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    vote(&app, &e, &pid, json!([0]))
        .await
        .assert_error(404, "NOT_FOUND");
    let plain = app.send_text(&a, &g, "plain", "hello").await;
    let plain = plain.assert_ok(201)["id"].as_str().unwrap().to_string();
    vote(&app, &b, &plain, json!([0]))
        .await
        .assert_error(404, "NOT_FOUND");

    // Who voted, for a poll that is not anonymous; counts everywhere the message appears.
    let v = app
        .get(&format!("/v1/messages/{pid}/votes"), Some(&a.access))
        .await;
    assert_eq!(
        v.assert_ok(200)["options"],
        json!([{"id": 0, "voters": []}, {"id": 1, "voters": [b.id, c.id]}, {"id": 2, "voters": []}])
    );
    app.get(&format!("/v1/messages/{pid}/votes"), Some(&e.access))
        .await
        .assert_error(404, "NOT_FOUND");
    let h = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&c.access))
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    let in_history = items.iter().find(|m| m["id"] == pid.as_str()).unwrap();
    assert_eq!(counts(in_history), [0, 2, 0]);
    // A history page carries the reader's own vote; the sender did not vote.
    assert_eq!(in_history["metadata"]["poll"]["my_vote"], json!([1]));
    let h = app
        .get(&format!("/v1/conversations/{g}/messages"), Some(&a.access))
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    let for_sender = items.iter().find(|m| m["id"] == pid.as_str()).unwrap();
    assert_eq!(for_sender["metadata"]["poll"]["my_vote"], json!([]));
    let s = app
        .get("/v1/search/messages?q=Lunch", Some(&c.access))
        .await;
    assert_eq!(counts(&s.assert_ok(200)["items"][0]), [0, 2, 0]);

    // Withdraw; then close: only the sender (or a group owner/admin); closed polls take no votes.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/messages/{pid}/votes"),
            Some(&c.access),
            Value::Null,
        )
        .await;
    assert_eq!(counts(r.assert_ok(200)), [0, 1, 0]);
    app.post(
        &format!("/v1/messages/{pid}/poll/close"),
        Some(&b.access),
        json!({}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let closed = app
        .post(
            &format!("/v1/messages/{pid}/poll/close"),
            Some(&a.access),
            json!({}),
        )
        .await;
    assert_eq!(closed.assert_ok(200)["metadata"]["poll"]["closed"], true);
    vote(&app, &c, &pid, json!([2]))
        .await
        .assert_error(409, "CONFLICT");
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{pid}/votes"),
        Some(&b.access),
        Value::Null,
    )
    .await
    .assert_error(409, "CONFLICT");
    app.post(
        &format!("/v1/messages/{pid}/poll/close"),
        Some(&a.access),
        json!({}),
    )
    .await
    .assert_error(409, "CONFLICT");

    // Multiple choice, anonymous: several options per vote; the voters are not shown.
    let m = new_poll(
        &app,
        &b,
        &g,
        "p-2",
        json!({"options": ["mon", "tue", "wed"], "multiple": true, "anonymous": true}),
    )
    .await;
    let mid = m["id"].as_str().unwrap().to_string();
    let r = vote(&app, &c, &mid, json!([0, 2])).await;
    assert_eq!(counts(r.assert_ok(200)), [1, 0, 1]);
    assert_eq!(r.body["data"]["metadata"]["poll"]["voters"], 1);
    app.get(&format!("/v1/messages/{mid}/votes"), Some(&b.access))
        .await
        .assert_error(403, "FORBIDDEN");
    // The group owner may close another member's poll.
    app.post(
        &format!("/v1/messages/{mid}/poll/close"),
        Some(&a.access),
        json!({}),
    )
    .await
    .assert_ok(200);

    // A member who left cannot vote; a deleted poll takes no votes.
    let open = new_poll(&app, &a, &g, "p-3", json!({"options": ["yes", "no"]})).await;
    let oid = open["id"].as_str().unwrap().to_string();
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}/members/{}", c.id),
        Some(&c.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    vote(&app, &c, &oid, json!([0]))
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{oid}"),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    vote(&app, &b, &oid, json!([0]))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn concurrent_votes_are_counted_exactly() {
    let app = TestApp::spawn().await;
    let owner = app.register("pollrace").await;
    let regs = (0..40).map(|i| {
        let app = &app;
        async move { app.register(&format!("voter{i}")).await }
    });
    let voters: Vec<TestUser> = futures_util::future::join_all(regs).await;
    let refs: Vec<&TestUser> = voters.iter().collect();
    let g = app.group(&owner, &refs).await;
    let p = new_poll(
        &app,
        &owner,
        &g,
        "race",
        json!({"options": ["a", "b", "c", "d"]}),
    )
    .await;
    let pid = p["id"].as_str().unwrap().to_string();

    // Everyone votes at once: voter i for option i % 4.
    let first = voters.iter().enumerate().map(|(i, u)| {
        let (app, pid) = (&app, pid.clone());
        async move { vote(app, u, &pid, json!([i % 4])).await.status }
    });
    let statuses = futures_util::future::join_all(first).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Then, at once: the first ten change to option 3, the next ten vote again for the same
    // option, the last ten withdraw.
    let second = voters.iter().enumerate().map(|(i, u)| {
        let (app, pid) = (&app, pid.clone());
        async move {
            match i {
                0..10 => vote(app, u, &pid, json!([3])).await.status,
                10..20 => vote(app, u, &pid, json!([i % 4])).await.status,
                30..40 => {
                    app.call(
                        Method::DELETE,
                        &format!("/v1/messages/{pid}/votes"),
                        Some(&u.access),
                        Value::Null,
                    )
                    .await
                    .status
                }
                _ => reqwest::StatusCode::OK,
            }
        }
    });
    let statuses = futures_util::future::join_all(second).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let mut expected = [0i64; 4];
    for i in 0..30 {
        expected[if i < 10 { 3 } else { i % 4 }] += 1;
    }
    let h = app
        .get(
            &format!("/v1/conversations/{g}/messages"),
            Some(&owner.access),
        )
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    let poll = items.iter().find(|m| m["id"] == pid.as_str()).unwrap();
    assert_eq!(counts(poll), expected);
    assert_eq!(poll["metadata"]["poll"]["voters"], 30);
}

#[tokio::test]
async fn poll_updates_reach_members_on_another_instance() {
    // Instances meet through Redis (without it each instance is its own cluster).
    let Some(redis) = OwnRedis::start_or_skip() else {
        return;
    };
    let url = redis.url();
    let apps = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(sc_core::secret::Secret::new(url.clone()))
    })
    .await;
    let (a, b) = (&apps[0], &apps[1]);
    let owner = a.register("pollcross").await;
    let member = a.register("pollwatcher").await;
    let g = a.group(&owner, &[&member]).await;
    let p = new_poll(a, &owner, &g, "x-1", json!({"options": ["red", "blue"]})).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let mut ws = b.ws(&member).await;
    vote(a, &owner, &pid, json!([1])).await.assert_ok(200);
    let ev = ws.expect("poll.updated").await;
    assert_eq!(ev["message_id"], pid.as_str());
    assert_eq!(ev["conversation_id"], g.as_str());
    assert_eq!(ev["poll"]["options"][1]["votes"], 1);
    assert_eq!(ev["poll"]["voters"], 1);
}

#[tokio::test]
async fn polls_close_by_themselves_at_closes_at() {
    let app = TestApp::spawn_with(|c| c.poll_close_interval_seconds = 1).await;
    let owner = app.register("pollclock").await;
    let member = app.register("pollwaiter").await;
    let g = app.group(&owner, &[&member]).await;
    let p = new_poll(
        &app,
        &owner,
        &g,
        "t-1",
        json!({"options": ["now", "later"], "closes_at": in_secs(2)}),
    )
    .await;
    assert!(p["metadata"]["poll"]["closes_at"].is_string());
    let pid = p["id"].as_str().unwrap().to_string();
    let mut ws = app.ws(&member).await;
    vote(&app, &member, &pid, json!([0])).await.assert_ok(200);
    let ev = ws.expect("poll.updated").await;
    assert_eq!(ev["poll"]["closed"], false);
    // The job announces the closing; votes are refused from then on.
    let ev = ws.expect("poll.updated").await;
    assert_eq!(ev["message_id"], pid.as_str());
    assert_eq!(ev["poll"]["closed"], true);
    assert_eq!(ev["poll"]["options"][0]["votes"], 1);
    vote(&app, &member, &pid, json!([1]))
        .await
        .assert_error(409, "CONFLICT");
}
