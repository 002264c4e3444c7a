//! The realtime WebSocket: tickets, frames, fan-out to every member socket, ordering under
//! concurrency, session ends, slow consumers, presence, offline notifications, and delivery
//! across instances through Redis (also while Redis dies and comes back).

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

fn ws_url(app: &TestApp, query: &str) -> String {
    format!(
        "{}/v1/realtime{query}",
        app.base.replace("http://", "ws://")
    )
}

async fn refused_status(req: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("upgrade should have been refused"),
    }
}

#[tokio::test]
async fn tickets_origin_and_frames() {
    let app = TestApp::spawn().await;
    let u = app.register("wsuser").await;
    let ticket = app.ticket(&u).await;
    let r = app
        .post("/v1/realtime/ticket", Some(&u.access), Value::Null)
        .await;
    assert_eq!(r.assert_ok(200)["expires_in"], 30);

    // Bad, missing and used tickets are refused with 401 before the upgrade.
    assert_eq!(
        refused_status(ws_url(&app, "?ticket=nope").into_client_request().unwrap()).await,
        401
    );
    assert_eq!(
        refused_status(ws_url(&app, "").into_client_request().unwrap()).await,
        401
    );
    let (mut first, _) =
        tokio_tungstenite::connect_async(ws_url(&app, &format!("?ticket={ticket}")))
            .await
            .unwrap();
    assert_eq!(
        refused_status(
            ws_url(&app, &format!("?ticket={ticket}"))
                .into_client_request()
                .unwrap()
        )
        .await,
        401
    );
    let _ = futures_util::SinkExt::close(&mut first).await;

    // A browser Origin must be allowed.
    let mut req = ws_url(&app, &format!("?ticket={}", app.ticket(&u).await))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example.com".parse().unwrap());
    assert_eq!(refused_status(req).await, 403);
    let mut req = ws_url(&app, &format!("?ticket={}", app.ticket(&u).await))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "http://sc.test".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_ok(),
        "the public origin is allowed"
    );

    // The Authorization header works too.
    let mut req = ws_url(&app, "").into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", u.access).parse().unwrap(),
    );
    let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws { stream };
    assert_eq!(ws.next_frame().await.unwrap()["type"], "ready");

    // The user's own presence event may come first.
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    ws.send(json!({"type": "ping", "data": {"n": 7}})).await;
    assert_eq!(ws.expect("pong").await["n"], 7);
    // Malformed and unknown frames get an error event; the socket stays open.
    use futures_util::SinkExt;
    ws.stream
        .send(tungstenite::Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(ws.expect("error").await["code"], "VALIDATION_ERROR");
    ws.send(json!({"type": "teleport", "data": {}})).await;
    assert_eq!(ws.expect("error").await["code"], "VALIDATION_ERROR");
    ws.send(json!({"type": "typing", "data": {"conversation_id": "x"}}))
        .await;
    assert_eq!(ws.expect("error").await["code"], "VALIDATION_ERROR");
    ws.send(json!({"type": "typing", "data": {"conversation_id": uuid::Uuid::now_v7(), "active": true}})).await;
    assert_eq!(ws.expect("error").await["code"], "NOT_FOUND");
    ws.stream
        .send(tungstenite::Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ws.expect("error").await["code"], "VALIDATION_ERROR");
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    // A frame over 64 KiB ends the connection.
    ws.stream
        .send(tungstenite::Message::Text("x".repeat(70 * 1024).into()))
        .await
        .unwrap();
    assert_ne!(ws.close_code().await, Some(1000));
}

#[tokio::test]
async fn inbound_frames_are_rate_limited() {
    let app = TestApp::spawn_with(|c| c.ws_inbound_per_second = 5).await;
    let u = app.register("wsflood").await;
    let mut ws = app.ws(&u).await;
    for _ in 0..30 {
        ws.send(json!({"type": "ping"})).await;
    }
    let (mut limited, mut answered) = (0, 0);
    while answered < 30 {
        let f = ws.next_frame().await.unwrap();
        if f["type"] == "error" && f["data"]["code"] == "RATE_LIMITED" {
            limited += 1;
        }
        answered += (f["type"] == "pong" || f["type"] == "error") as usize;
    }
    assert!(
        limited >= 15,
        "most of a 30-frame burst is refused at 5/s: {limited}"
    );
}

#[tokio::test]
async fn events_reach_every_member_socket() {
    let app = TestApp::spawn().await;
    let a = app.register("eva").await;
    let a2 = TestUser::from_pair(app.login("eva").await.assert_ok(200), &a.email);
    let b = app.register("evb").await;
    let c = app.register("evc").await;
    let g = app.group(&a, &[&b]).await;
    let (mut wa, mut wa2, mut wb, mut wc) = (
        app.ws(&a).await,
        app.ws(&a2).await,
        app.ws(&b).await,
        app.ws(&c).await,
    );

    let m = app
        .send_text(&b, &g, "ev-1", "hello all")
        .await
        .assert_ok(201)
        .clone();
    for ws in [&mut wa, &mut wa2, &mut wb] {
        let got = ws.expect("message.created").await;
        assert_eq!(got, m, "the event carries the Message object");
    }
    let mid = m["id"].as_str().unwrap();
    app.call(
        Method::PATCH,
        &format!("/v1/messages/{mid}"),
        Some(&b.access),
        json!({"content": "edited"}),
    )
    .await
    .assert_ok(200);
    assert_eq!(wa.expect("message.updated").await["content"], "edited");
    app.post(
        &format!("/v1/messages/{mid}/reactions"),
        Some(&a.access),
        json!({"emoji": "🔥"}),
    )
    .await
    .assert_ok(200);
    let r = wb.expect("reaction.updated").await;
    assert_eq!(r["reactions"]["🔥"], 1);
    // Typing and read over the socket.
    wb.send(json!({"type": "typing", "data": {"conversation_id": g, "active": true}}))
        .await;
    let t = wa.expect("typing").await;
    assert_eq!(
        (t["user_id"].as_str(), t["active"].as_bool()),
        (Some(b.id.as_str()), Some(true))
    );
    wa.send(json!({"type": "read", "data": {"conversation_id": g, "seq": 1}}))
        .await;
    let rc = wb.expect("receipt.updated").await;
    assert_eq!(
        rc,
        json!({"conversation_id": g, "user_id": a.id, "read_seq": 1})
    );
    app.call(
        Method::DELETE,
        &format!("/v1/messages/{mid}"),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    let d = wb.expect("message.deleted").await;
    assert_eq!(
        (d["deleted"].as_bool(), d["content"].is_null()),
        (Some(true), true)
    );

    // Membership changes go to every member including the affected user.
    app.post(
        &format!("/v1/conversations/{g}/members"),
        Some(&a.access),
        json!({"user_ids": [c.id]}),
    )
    .await
    .assert_ok(200);
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(ws.expect("member.added").await["user_id"], c.id.as_str());
    }
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}/members/{}", c.id),
        Some(&a.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    for ws in [&mut wa, &mut wc] {
        assert_eq!(ws.expect("member.removed").await["user_id"], c.id.as_str());
    }
    // A non-member hears nothing of the conversation.
    app.send_text(&a, &g, "ev-2", "private again")
        .await
        .assert_ok(201);
    wa.expect("message.created").await;
    wc.send(json!({"type": "ping", "data": {"marker": 1}}))
        .await;
    loop {
        let f = wc.next_frame().await.unwrap();
        assert_ne!(
            f["type"], "message.created",
            "a non-member received a message"
        );
        if f["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn ten_senders_fifty_messages_each_gap_free_and_delivered_once() {
    let app = TestApp::spawn().await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.register(&format!("burst{i}")).await);
    }
    let refs: Vec<&TestUser> = users[1..].iter().collect();
    let g = app.group(&users[0], &refs).await;
    let mut sockets = Vec::new();
    for u in &users {
        sockets.push(app.ws(u).await);
    }
    // Every socket collects message.created events in the background.
    let mut collectors = Vec::new();
    for mut ws in sockets {
        collectors.push(tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            while seen.len() < 500 {
                match ws.next_frame().await {
                    Some(f) if f["type"] == "message.created" => {
                        seen.push(f["data"]["seq"].as_i64().unwrap())
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            seen
        }));
    }
    let mut senders = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/conversations/{g}/messages")),
            u.access.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..50 {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"client_message_id": format!("s{i}-{n}"), "content": format!("sender {i} message {n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let body: Value = r.json().await.unwrap();
                seqs.push(body["data"]["seq"].as_i64().unwrap());
            }
            seqs
        }));
    }
    let mut all: Vec<i64> = Vec::new();
    for s in senders {
        let seqs = s.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's messages keep their order"
        );
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(all, (1..=500).collect::<Vec<_>>(), "seq is exactly 1..500");
    for c in collectors {
        let seen = tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("all events arrive")
            .unwrap();
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(seen.len(), 500, "each socket gets 500 events");
        assert_eq!(unique.len(), 500, "each message exactly once");
        // One instance announces a conversation's messages in seq order.
        assert_eq!(
            seen,
            (1..=500).collect::<Vec<_>>(),
            "events arrive in seq order"
        );
    }
    let conv = app
        .get(&format!("/v1/conversations/{g}"), Some(&users[0].access))
        .await;
    assert_eq!(conv.body["data"]["last_message_seq"], 500);
}

#[tokio::test]
async fn ending_a_session_closes_its_sockets_only() {
    let app = TestApp::spawn().await;
    let a = app.register("endme").await;
    let a2 = TestUser::from_pair(app.login("endme").await.assert_ok(200), &a.email);
    let a3 = TestUser::from_pair(app.login("endme").await.assert_ok(200), &a.email);
    let (mut w1, mut w2, mut w3) = (app.ws(&a).await, app.ws(&a2).await, app.ws(&a3).await);
    app.post("/v1/auth/logout", Some(&a.access), Value::Null)
        .await
        .assert_ok(200);
    assert_eq!(w1.close_code().await, Some(4001));
    // Refresh-token reuse ends that session and its socket.
    let rotated = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": a2.refresh}),
        )
        .await;
    rotated.assert_ok(200);
    app.post(
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": a2.refresh}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    assert_eq!(w2.close_code().await, Some(4001));
    // The third session's socket lives on.
    w3.send(json!({"type": "ping"})).await;
    assert_eq!(w3.expect("pong").await, Value::Null);
    // A ticket of an ended session is refused.
    app.post("/v1/realtime/ticket", Some(&a.access), Value::Null)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let app = TestApp::spawn_with(|c| {
        c.ws_outbound_queue = 8;
        c.message_rate_per_user_per_minute = 100_000;
        c.api_rate_per_user_per_minute = 100_000;
    })
    .await;
    let a = app.register("slowpoke").await;
    let b = app.register("chatty").await;
    let g = app.group(&b, &[&a]).await;
    let mut lazy = app.ws(&a).await;
    let mut reader = app.ws(&b).await;
    let big = "z".repeat(9_000);
    let mut closed = false;
    for i in 0..3000 {
        app.send_text(&b, &g, &format!("flood-{i}"), &big)
            .await
            .assert_ok(201);
        // The reading member keeps up.
        reader.expect("message.created").await;
        if i % 25 == 0 && app.metric("secureconnect_ws_slow_consumer_closes").await >= 1.0 {
            closed = true;
            break;
        }
    }
    eprintln!(
        "metrics: {}",
        app.metrics()
            .await
            .lines()
            .filter(|l| l.contains("ws_"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(
        closed,
        "the non-reading socket was closed instead of buffered"
    );
    let code = lazy.close_code().await;
    assert!(code.is_none() || code == Some(1013), "{code:?}");
    // The reading member's socket is still fine.
    reader.send(json!({"type": "ping"})).await;
    reader.expect("pong").await;
    // And the slow one catches up from history.
    let h = app
        .get(
            &format!("/v1/conversations/{g}/messages?after_seq=0&limit=100"),
            Some(&a.access),
        )
        .await;
    assert_eq!(h.assert_ok(200)["items"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn presence_follows_sockets_and_choices() {
    let app = TestApp::spawn().await;
    let a = app.register("presa").await;
    let b = app.register("presb").await;
    let stranger = app.register("presc").await;
    app.group(&a, &[&b]).await;
    let q = format!("/v1/presence?user_ids={},{}", a.id, stranger.id);
    let get = |u: &TestUser| {
        let (app, q, t) = (&app, q.clone(), u.access.clone());
        async move { app.get(&q, Some(&t)).await }
    };
    let r = get(&b).await;
    let items = r.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(
        items.len(),
        1,
        "people who share no conversation are omitted"
    );
    assert_eq!(items[0]["status"], "offline");

    let mut wb = app.ws(&b).await;
    let wa = app.ws(&a).await;
    let p = loop {
        let p = wb.expect("presence").await;
        if p["user_id"] == a.id.as_str() {
            break p;
        }
    };
    assert_eq!(p["status"], "online");
    assert_eq!(get(&b).await.body["data"]["items"][0]["status"], "online");
    app.post("/v1/presence", Some(&a.access), json!({"status": "away"}))
        .await
        .assert_ok(200);
    assert_eq!(wb.expect("presence").await["status"], "away");
    assert_eq!(get(&b).await.body["data"]["items"][0]["status"], "away");
    app.post("/v1/presence", Some(&a.access), json!({"status": "asleep"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    drop(wa);
    assert_eq!(wb.expect("presence").await["status"], "offline");
    let r = get(&b).await;
    assert_eq!(r.body["data"]["items"][0]["status"], "offline");
    assert!(r.body["data"]["items"][0]["last_seen_at"].is_string());
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    app.get(
        &format!("/v1/presence?user_ids={}", many.join(",")),
        Some(&b.access),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn offline_members_get_a_notification_record() {
    let app = TestApp::spawn().await;
    let sender = app.register("notifsend").await;
    let offline = app.register("notifoff").await;
    let online = app.register("notifon").await;
    let g = app.group(&sender, &[&offline, &online]).await;
    let mut w = app.ws(&online).await;
    let m = app
        .send_text(&sender, &g, "n-1", "are you there?")
        .await
        .assert_ok(201)
        .clone();
    w.expect("message.created").await;
    // Concurrent sends are written in batches: each message still gets its own notification.
    let cmids: Vec<String> = (0..20).map(|i| format!("n-burst-{i}")).collect();
    let burst = futures_util::future::join_all(
        cmids.iter().map(|c| app.send_text(&sender, &g, c, "burst")),
    )
    .await;
    let mut expected: HashSet<String> = burst
        .iter()
        .map(|r| r.assert_ok(201)["id"].as_str().unwrap().to_string())
        .collect();
    expected.insert(m["id"].as_str().unwrap().to_string());
    let started = Instant::now();
    loop {
        let r = app
            .get("/v1/notifications?limit=100", Some(&offline.access))
            .await;
        let items = r.assert_ok(200)["items"].as_array().unwrap().clone();
        let got: Vec<String> = items
            .iter()
            .map(|n| {
                assert_eq!(n["kind"], "message");
                assert_eq!(n["data"]["conversation_id"], g.as_str());
                n["data"]["message_id"].as_str().unwrap().to_string()
            })
            .collect();
        if got.len() >= expected.len() {
            assert_eq!(got.len(), expected.len(), "one notification per message");
            assert_eq!(got.into_iter().collect::<HashSet<_>>(), expected);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "notifications missing for the offline member: {} of {}",
            got.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app.get("/v1/notifications", Some(&online.access)).await;
    assert_eq!(
        r.body["data"]["items"].as_array().unwrap().len(),
        0,
        "online members are not notified"
    );
    let r = app.get("/v1/notifications", Some(&sender.access)).await;
    assert_eq!(
        r.body["data"]["items"].as_array().unwrap().len(),
        0,
        "nor is the sender"
    );
}

#[tokio::test]
async fn events_cross_instances_through_redis() {
    let Some(redis) = OwnRedis::start_or_skip() else {
        return;
    };
    let url = redis.url();
    let apps = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(sc_core::secret::Secret::new(url.clone()))
    })
    .await;
    let (a_inst, b_inst) = (&apps[0], &apps[1]);
    let a = a_inst.register("xaa").await;
    let b = b_inst.register("xbb").await;
    let g = a_inst.group(&a, &[&b]).await;
    a_inst.wait_redis_ok().await;
    b_inst.wait_redis_ok().await;
    let mut wa = a_inst.ws(&a).await;
    let mut wb = b_inst.ws(&b).await;
    let t = Instant::now();
    let m = b_inst
        .send_text(&b, &g, "x-1", "across")
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(wa.expect("message.created").await["id"], m["id"]);
    let latency = t.elapsed();
    wb.send(json!({"type": "typing", "data": {"conversation_id": g, "active": true}}))
        .await;
    assert_eq!(wa.expect("typing").await["user_id"], b.id.as_str());
    b_inst
        .post(
            &format!("/v1/conversations/{g}/read"),
            Some(&b.access),
            json!({"seq": 1}),
        )
        .await
        .assert_ok(200);
    assert_eq!(wa.expect("receipt.updated").await["read_seq"], 1);
    // Logout on B closes the session's socket on A.
    let a_on_b = TestUser::from_pair(b_inst.login("xaa").await.assert_ok(200), &a.email);
    let mut wa2 = a_inst.ws(&a_on_b).await;
    b_inst
        .post("/v1/auth/logout", Some(&a_on_b.access), Value::Null)
        .await
        .assert_ok(200);
    assert_eq!(wa2.close_code().await, Some(4001));
    eprintln!("cross-instance send-to-receive: {latency:?}");
}

#[tokio::test]
async fn redis_dying_mid_conversation_loses_nothing() {
    let Some(redis) = OwnRedis::start_or_skip() else {
        return;
    };
    let (port, url) = (redis.port, redis.url());
    let apps = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(sc_core::secret::Secret::new(url.clone()))
    })
    .await;
    let (a_inst, b_inst) = (&apps[0], &apps[1]);
    let a = a_inst.register("rka").await;
    let b = b_inst.register("rkb").await;
    let g = a_inst.group(&a, &[&b]).await;
    a_inst.wait_redis_ok().await;
    b_inst.wait_redis_ok().await;
    let mut wa = a_inst.ws(&a).await;
    let m1 = b_inst
        .send_text(&b, &g, "rk-1", "before")
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(wa.expect("message.created").await["id"], m1["id"]);
    let last_seen = m1["seq"].as_i64().unwrap();

    drop(redis);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut sent = HashMap::new();
    for i in 0..5 {
        let r = b_inst
            .send_text(
                &b,
                &g,
                &format!("rk-down-{i}"),
                &format!("during outage {i}"),
            )
            .await;
        let d = r.assert_ok(201);
        sent.insert(d["seq"].as_i64().unwrap(), d["id"].clone());
    }
    let _redis = OwnRedis::start(port).expect("redis restarts");
    a_inst.wait_redis_ok().await;
    b_inst.wait_redis_ok().await;
    // The client reconnects and catches up with after_seq: nothing lost.
    drop(wa);
    let mut wa = a_inst.ws(&a).await;
    let h = a_inst
        .get(
            &format!("/v1/conversations/{g}/messages?after_seq={last_seen}"),
            Some(&a.access),
        )
        .await;
    let items = h.assert_ok(200)["items"].as_array().unwrap().clone();
    let got: HashMap<i64, Value> = items
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["id"].clone()))
        .collect();
    assert_eq!(got, sent);
    // Live delivery works again.
    let m = b_inst
        .send_text(&b, &g, "rk-after", "after")
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(wa.expect("message.created").await["id"], m["id"]);
}
