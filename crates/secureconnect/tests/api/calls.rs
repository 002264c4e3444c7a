//! Calls over HTTP and WebSocket: the lifecycle and its rules, races between transitions, ring
//! timeouts, gone participants and zombie calls, ICE servers, and signaling across instances.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn create(app: &TestApp, u: &TestUser, conv: &str, kind: &str) -> Resp {
    app.post(
        "/v1/calls",
        Some(&u.access),
        json!({"conversation_id": conv, "kind": kind}),
    )
    .await
}

async fn act(app: &TestApp, u: &TestUser, call: &str, what: &str) -> Resp {
    app.post(
        &format!("/v1/calls/{call}/{what}"),
        Some(&u.access),
        json!({}),
    )
    .await
}

async fn get_call(app: &TestApp, u: &TestUser, call: &str) -> Value {
    app.get(&format!("/v1/calls/{call}"), Some(&u.access))
        .await
        .assert_ok(200)
        .clone()
}

fn active(call: &Value) -> Vec<&str> {
    call["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["left_at"].is_null())
        .map(|p| p["session_id"].as_str().unwrap())
        .collect()
}

/// Polls the call until `done` holds (at most 15 s).
async fn wait_for(app: &TestApp, u: &TestUser, call: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let c = get_call(app, u, call).await;
        if done(&c) {
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "call stayed {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn call_lifecycle_and_its_rules() {
    let app = TestApp::spawn_with(|c| {
        c.stun_urls = sc_core::config::List(vec!["stun:stun.example.org:3478".into()]);
        c.turn_urls =
            sc_core::config::List(vec!["turn:turn.example.org:3478?transport=udp".into()]);
        c.turn_secret = Some(sc_core::secret::Secret::new("turn-shared-secret"));
    })
    .await;
    let a = app.register("caller").await;
    let b = app.register("callee").await;
    let c = app.register("callstranger").await;
    let g = app.group(&a, &[&b]).await;
    let mut b_ws = app.ws(&b).await;

    for bad in [
        json!({"conversation_id": g, "kind": "hologram"}),
        json!({"conversation_id": "x", "kind": "audio"}),
        json!({"kind": "audio"}),
    ] {
        app.post("/v1/calls", Some(&a.access), bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    create(&app, &c, &g, "audio")
        .await
        .assert_error(404, "NOT_FOUND");

    let r = create(&app, &a, &g, "video").await;
    let call = r.assert_ok(201).clone();
    let id = call["id"].as_str().unwrap().to_string();
    assert_eq!(call["status"], "ringing");
    assert_eq!(call["kind"], "video");
    assert_eq!(call["created_by"], a.id.as_str());
    assert_eq!(call["max_participants"], 8);
    assert_eq!(active(&call), [a.session_id.as_str()]);
    // ICE servers: STUN as configured, TURN with a credential of the coturn REST scheme.
    let ice = call["ice_servers"].as_array().unwrap();
    assert_eq!(ice[0]["urls"], json!(["stun:stun.example.org:3478"]));
    let user = ice[1]["username"].as_str().unwrap();
    let (expiry, uid) = user.split_once(':').unwrap();
    assert_eq!(uid, a.id);
    let expiry: i64 = expiry.parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now + 3500..=now + 3700).contains(&expiry), "{expiry}");
    assert_eq!(ice[1]["credential"].as_str().unwrap().len(), 28);
    assert!(
        call["media_limits"]["max_video_kbps_per_peer"]
            .as_u64()
            .unwrap()
            > 0
    );
    let rung = b_ws.expect("call.ringing").await;
    assert_eq!(rung["id"], id.as_str());

    // One live call per conversation.
    let dup = create(&app, &b, &g, "audio").await;
    dup.assert_error(409, "CONFLICT");
    assert_eq!(dup.body["error"]["details"]["call_id"], id.as_str());

    // Join makes it active; the same session twice is refused; outsiders see nothing.
    let j = act(&app, &b, &id, "join").await;
    let joined = j.assert_ok(200).clone();
    assert_eq!(joined["status"], "active");
    assert!(joined["started_at"].is_string());
    assert_eq!(active(&joined).len(), 2);
    assert!(joined["ice_servers"].is_array());
    act(&app, &b, &id, "join")
        .await
        .assert_error(409, "CONFLICT");
    let updated = b_ws.expect("call.updated").await;
    assert_eq!(updated["status"], "active");
    for what in ["join", "leave", "decline", "end"] {
        act(&app, &c, &id, what)
            .await
            .assert_error(404, "NOT_FOUND");
    }
    app.get(&format!("/v1/calls/{id}"), Some(&c.access))
        .await
        .assert_error(404, "NOT_FOUND");
    // A second device of the callee is a second participant.
    let b2 = app.login("callee").await;
    let b2 = TestUser::from_pair(b2.assert_ok(200), &b.email);
    act(&app, &b2, &id, "join").await.assert_ok(200);
    // Ending is for the caller or a group owner/admin.
    act(&app, &b, &id, "end")
        .await
        .assert_error(403, "FORBIDDEN");

    // Leaving: the call lives while anyone is in it, and ends with the last one.
    act(&app, &a, &id, "leave").await.assert_ok(200);
    act(&app, &a, &id, "leave")
        .await
        .assert_error(409, "CONFLICT");
    act(&app, &b2, &id, "leave").await.assert_ok(200);
    let last = act(&app, &b, &id, "leave").await;
    let ended = last.assert_ok(200).clone();
    assert_eq!(ended["status"], "ended");
    assert!(ended["ended_at"].is_string());
    assert!(ended["duration_seconds"].is_i64());
    act(&app, &a, &id, "join")
        .await
        .assert_error(409, "CONFLICT");

    // History, newest first, paged; for members only.
    let second = create(&app, &a, &g, "audio").await;
    let second = second.assert_ok(201)["id"].as_str().unwrap().to_string();
    let list = app
        .get(
            &format!("/v1/calls?conversation_id={g}&limit=1"),
            Some(&b.access),
        )
        .await;
    let page = list.assert_ok(200).clone();
    assert_eq!(page["items"][0]["id"], second.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let list = app
        .get(
            &format!("/v1/calls?conversation_id={g}&limit=1&cursor={cursor}"),
            Some(&b.access),
        )
        .await;
    assert_eq!(list.assert_ok(200)["items"][0]["id"], id.as_str());
    app.get(&format!("/v1/calls?conversation_id={g}"), Some(&c.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/v1/calls", Some(&b.access))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // The group owner ends another member's call.
    let third_by_b = {
        act(&app, &a, &second, "end").await.assert_ok(200);
        create(&app, &b, &g, "audio").await.assert_ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let e = act(&app, &a, &third_by_b, "end").await;
    assert_eq!(e.assert_ok(200)["status"], "ended");
    act(&app, &a, &third_by_b, "end")
        .await
        .assert_error(409, "CONFLICT");

    // Direct calls: a decline ends the call as declined; blocks prevent calling.
    let d = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "direct", "member_ids": [c.id]}),
        )
        .await;
    let d = d.assert_ok(201)["id"].as_str().unwrap().to_string();
    let dc = create(&app, &a, &d, "audio").await;
    let dc = dc.assert_ok(201)["id"].as_str().unwrap().to_string();
    let declined = act(&app, &c, &dc, "decline").await;
    assert_eq!(declined.assert_ok(200)["status"], "declined");
    app.post(
        &format!("/v1/users/{}/block", a.id),
        Some(&c.access),
        json!({}),
    )
    .await
    .assert_ok(200);
    create(&app, &a, &d, "audio")
        .await
        .assert_error(403, "FORBIDDEN");

    // The ICE route on its own; without TURN configured there is no TURN entry (next test).
    let ice = app.get("/v1/calls/ice-servers", Some(&a.access)).await;
    let ice = ice.assert_ok(200).clone();
    assert_eq!(ice["ttl_seconds"], 3600);
    assert_eq!(ice["ice_servers"].as_array().unwrap().len(), 2);
    // The TURN secret and credentials never reach the logs.
    let logs = captured_logs();
    assert!(!logs.contains("turn-shared-secret"));
    assert!(!logs.contains(ice["ice_servers"][1]["credential"].as_str().unwrap()));
}

#[tokio::test]
async fn transitions_race_safely() {
    let app = TestApp::spawn().await;
    let owner = app.register("raceowner").await;
    let regs = (0..10).map(|i| {
        let app = &app;
        async move { app.register(&format!("racer{i}")).await }
    });
    let users: Vec<TestUser> = futures_util::future::join_all(regs).await;
    let refs: Vec<&TestUser> = users.iter().collect();
    let g = app.group(&owner, &refs).await;

    // Ten concurrent creates: one call.
    let creates = users.iter().map(|u| create(&app, u, &g, "audio"));
    let answers = futures_util::future::join_all(creates).await;
    let made: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(made.len(), 1);
    assert!(answers.iter().all(|r| r.status == 201 || r.status == 409));
    let id = made[0].body["data"]["id"].as_str().unwrap().to_string();
    act(&app, &owner, &id, "end").await.assert_ok(200);

    // Ten joins into an eight-seat call that holds its caller: seven get in.
    let c = create(&app, &owner, &g, "video").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    let joins = users.iter().map(|u| act(&app, u, &id, "join"));
    let answers = futures_util::future::join_all(joins).await;
    assert_eq!(answers.iter().filter(|r| r.status == 200).count(), 7);
    let full: Vec<&Resp> = answers.iter().filter(|r| r.status != 200).collect();
    assert_eq!(full.len(), 3);
    for r in full {
        r.assert_error(409, "LIMIT_REACHED");
    }
    assert_eq!(active(&get_call(&app, &owner, &id).await).len(), 8);
    act(&app, &owner, &id, "end").await.assert_ok(200);

    // One session joining five times at once: in once.
    let c = create(&app, &owner, &g, "audio").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    let same = (0..5).map(|_| act(&app, &users[0], &id, "join"));
    let answers = futures_util::future::join_all(same).await;
    assert_eq!(answers.iter().filter(|r| r.status == 200).count(), 1);
    assert_eq!(active(&get_call(&app, &owner, &id).await).len(), 2);
    act(&app, &owner, &id, "end").await.assert_ok(200);

    // A join racing the last leave: either the joiner is in a live call, or the call ended
    // and the join was refused; never an ended call with someone in it.
    for round in 0..10 {
        let c = create(&app, &owner, &g, "audio").await;
        let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
        let joiner = &users[round % users.len()];
        let (leave, join) = tokio::join!(
            act(&app, &owner, &id, "leave"),
            act(&app, joiner, &id, "join")
        );
        leave.assert_ok(200);
        let call = get_call(&app, &owner, &id).await;
        let live = matches!(call["status"].as_str(), Some("ringing" | "active"));
        match join.status.as_u16() {
            200 => {
                assert!(live, "joined, yet the call is {call}");
                assert_eq!(active(&call), [joiner.session_id.as_str()]);
                act(&app, joiner, &id, "leave").await.assert_ok(200);
            }
            409 => {
                assert!(!live, "refused, yet the call is {call}");
                assert!(active(&call).is_empty(), "ended with someone in it: {call}");
            }
            s => panic!("join answered {s}"),
        }
    }
    // Joining an ended call is refused.
    let ended = create(&app, &owner, &g, "audio").await;
    let eid = ended.assert_ok(201)["id"].as_str().unwrap().to_string();
    act(&app, &owner, &eid, "end").await.assert_ok(200);
    act(&app, &users[1], &eid, "join")
        .await
        .assert_error(409, "CONFLICT");
}

#[tokio::test]
async fn unanswered_calls_are_missed_and_gone_participants_removed() {
    let app = TestApp::spawn_with(|c| {
        c.call_ring_timeout_seconds = 1;
        c.call_grace_seconds = 2;
        c.call_sweep_interval_seconds = 1;
    })
    .await;
    let a = app.register("ringer").await;
    let b = app.register("sleeper").await;
    let g = app.group(&a, &[&b]).await;
    let mut b_ws = app.ws(&b).await;

    // Nobody answers: missed, with a call.missed notification for the member.
    let _a_ws = app.ws(&a).await;
    let c = create(&app, &a, &g, "audio").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    let missed = wait_for(&app, &a, &id, |c| c["status"] == "missed").await;
    assert!(active(&missed).is_empty());
    let n = b_ws.expect("notification").await;
    assert_eq!(n["kind"], "call.missed");
    assert_eq!(n["data"]["call_id"], id.as_str());
    let list = app.get("/v1/notifications", Some(&b.access)).await;
    let kinds: Vec<String> = list.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["call.missed"], "exactly one record");

    // A participant without a socket is removed after the grace period; one with a socket
    // stays.
    let c = create(&app, &a, &g, "video").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    drop(b_ws);
    act(&app, &b, &id, "join").await.assert_ok(200);
    let call = wait_for(&app, &a, &id, |c| active(c).len() == 1).await;
    assert_eq!(active(&call), [a.session_id.as_str()]);
    assert_eq!(call["status"], "active");
}

#[tokio::test]
async fn a_call_left_live_by_a_dead_instance_is_closed() {
    let apps = TestApp::spawn_cluster(2, |c| {
        c.call_grace_seconds = 1;
        c.call_sweep_interval_seconds = 1;
    })
    .await;
    let mut apps = apps.into_iter();
    let (first, second) = (apps.next().unwrap(), apps.next().unwrap());
    let a = first.register("zombiea").await;
    let b = first.register("zombieb").await;
    let g = first.group(&a, &[&b]).await;
    let _a_ws = first.ws(&a).await;
    let _b_ws = first.ws(&b).await;
    let c = create(&first, &a, &g, "audio").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    act(&first, &b, &id, "join").await.assert_ok(200);
    // The instance holding both sockets dies; the other closes the call once they are gone.
    first.stop().await;
    let call = wait_for(&second, &a, &id, |c| c["status"] == "ended").await;
    assert!(active(&call).is_empty());
}

#[tokio::test]
async fn signals_reach_participants_on_another_instance_only() {
    let Some(redis) = OwnRedis::start_or_skip() else {
        return;
    };
    let url = redis.url();
    let apps = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(sc_core::secret::Secret::new(url.clone()))
    })
    .await;
    let (x, y) = (&apps[0], &apps[1]);
    let a = x.register("sigalice").await;
    let b = y.register("sigbob").await;
    let m = x.register("sigmallory").await;
    let g = x.group(&a, &[&b, &m]).await;
    let mut a_ws = x.ws(&a).await;
    let mut b_ws = y.ws(&b).await;
    let mut m_ws = x.ws(&m).await;
    let c = create(x, &a, &g, "video").await;
    let id = c.assert_ok(201)["id"].as_str().unwrap().to_string();
    act(y, &b, &id, "join").await.assert_ok(200);

    // Offer to one session, across instances; the answer back to everyone else.
    let offer = json!({"kind": "offer", "sdp": "v=0 fake"});
    a_ws.send(json!({"type": "call.signal", "data": {"call_id": id, "to_session_id": b.session_id, "signal": offer}}))
        .await;
    let got = b_ws.expect("call.signal").await;
    assert_eq!(got["call_id"], id.as_str());
    assert_eq!(got["from_user_id"], a.id.as_str());
    assert_eq!(got["from_session_id"], a.session_id.as_str());
    assert_eq!(got["signal"], offer);
    b_ws.send(json!({"type": "call.signal", "data": {"call_id": id, "signal": {"kind": "answer", "sdp": "v=0 back"}}}))
        .await;
    let got = a_ws.expect("call.signal").await;
    assert_eq!(got["signal"]["kind"], "answer");

    // A member outside the call may not signal in it, and hears none of it.
    m_ws.send(json!({"type": "call.signal", "data": {"call_id": id, "signal": {"kind": "ice"}}}))
        .await;
    let err = m_ws.expect("error").await;
    assert_eq!(err["code"], "FORBIDDEN");
    for bad in [
        json!({"type": "call.signal", "data": {"call_id": id, "signal": "not an object"}}),
        json!({"type": "call.signal", "data": {"call_id": id, "signal": {"kind": "x".repeat(20_000)}}}),
        json!({"type": "call.signal", "data": {"call_id": id, "to_session_id": m.session_id, "signal": {"kind": "ice"}}}),
        json!({"type": "call.signal", "data": [id]}),
    ] {
        a_ws.send(bad).await;
        let e = a_ws.expect("error").await;
        assert!(
            matches!(
                e["code"].as_str(),
                Some("VALIDATION_ERROR" | "PAYLOAD_TOO_LARGE")
            ),
            "{e}"
        );
    }
    // Mallory's socket got the ringing and updates, never a signal.
    a_ws.send(json!({"type": "ping", "data": {}})).await;
    a_ws.expect("pong").await;
    m_ws.send(json!({"type": "ping", "data": {}})).await;
    loop {
        let f = m_ws.next_frame().await.expect("frame");
        assert_ne!(f["type"], "call.signal");
        if f["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn media_flags_recordings_and_quality() {
    let app = TestApp::spawn().await;
    let a = app.register("mediaa").await;
    let b = app.register("mediab").await;
    let d = app.register("mediad").await;
    let g = app.group(&a, &[&b, &d]).await;
    let c = create(&app, &a, &g, "video").await;
    let call = c.assert_ok(201).clone();
    let id = call["id"].as_str().unwrap().to_string();
    let p = &call["participants"][0];
    assert_eq!(
        (&p["audio"], &p["video"], &p["screen"]),
        (&json!(true), &json!(true), &json!(false))
    );
    act(&app, &b, &id, "join").await.assert_ok(200);
    let mut b_ws = app.ws(&b).await;

    // Media flags: the calling session's own, seen by everyone.
    let media = |u: &TestUser, body: Value| {
        let (app, token, id) = (&app, u.access.clone(), id.clone());
        async move {
            app.post(&format!("/v1/calls/{id}/media"), Some(&token), body)
                .await
        }
    };
    let r = media(&a, json!({"audio": false, "screen": true})).await;
    let mine = r.assert_ok(200)["participants"][0].clone();
    assert_eq!(
        (&mine["audio"], &mine["video"], &mine["screen"]),
        (&json!(false), &json!(true), &json!(true))
    );
    let ev = b_ws.expect("call.updated").await;
    assert_eq!(ev["participants"][0]["screen"], true);
    media(&d, json!({"audio": true}))
        .await
        .assert_error(409, "CONFLICT");
    media(&a, json!({}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    media(&a, json!({"audio": "yes"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    // Recording: one at a time, visible to all, stopped only by the recorder.
    let rec = |u: &TestUser, action: &str| {
        let (app, token, id) = (&app, u.access.clone(), id.clone());
        let body = json!({"action": action});
        async move {
            app.post(&format!("/v1/calls/{id}/recording"), Some(&token), body)
                .await
        }
    };
    let r = rec(&b, "start").await;
    assert_eq!(r.assert_ok(200)["recording"]["by"], b.id.as_str());
    assert_eq!(
        b_ws.expect("call.updated").await["recording"]["by"],
        b.id.as_str()
    );
    rec(&a, "start").await.assert_error(409, "CONFLICT");
    rec(&a, "stop").await.assert_error(409, "CONFLICT");
    rec(&d, "start").await.assert_error(409, "CONFLICT");
    rec(&a, "pause").await.assert_error(400, "VALIDATION_ERROR");
    let r = rec(&b, "stop").await;
    let stopped = r.assert_ok(200).clone();
    assert!(stopped["recording"].is_null());
    assert_eq!(stopped["recordings"][0]["recorded_by"], b.id.as_str());
    assert!(stopped["recordings"][0]["file_id"].is_null());

    // The recorder attaches the uploaded file; the call's participants may read it.
    let file = crate::drive::upload(&app, &b, "call.mp4", "video/mp4", MP4).await;
    let fid = file["id"].as_str().unwrap().to_string();
    let attach = |u: &TestUser, f: &str| {
        let (app, token, id) = (&app, u.access.clone(), id.clone());
        let body = json!({"file_id": f});
        async move {
            app.post(&format!("/v1/calls/{id}/recordings"), Some(&token), body)
                .await
        }
    };
    attach(&a, &fid).await.assert_error(403, "FORBIDDEN");
    let r = attach(&b, &fid).await;
    assert_eq!(r.assert_ok(200)["recordings"][0]["file_id"], fid.as_str());
    attach(&b, &fid).await.assert_error(409, "CONFLICT");
    app.get(&format!("/v1/files/{fid}"), Some(&a.access))
        .await
        .assert_ok(200);
    app.get(&format!("/v1/files/{fid}"), Some(&d.access))
        .await
        .assert_error(404, "NOT_FOUND");
    // Leaving stops one's recording.
    rec(&b, "start").await.assert_ok(200);
    let left = act(&app, &b, &id, "leave").await;
    let left = left.assert_ok(200).clone();
    assert!(left["recording"].is_null());
    assert_eq!(left["recordings"].as_array().unwrap().len(), 2);

    // Quality samples: participants only, bounded, summarized.
    let q = |u: &TestUser, body: Value| {
        let (app, token, id) = (&app, u.access.clone(), id.clone());
        async move {
            app.post(&format!("/v1/calls/{id}/quality"), Some(&token), body)
                .await
        }
    };
    for rtt in [20.0, 40.0, 60.0] {
        q(
            &a,
            json!({"rtt_ms": rtt, "jitter_ms": 2.0, "packet_loss": 0.01, "bitrate_kbps": 800.0}),
        )
        .await
        .assert_ok(200);
    }
    for bad in [
        json!({"rtt_ms": -1, "jitter_ms": 2, "packet_loss": 0, "bitrate_kbps": 1}),
        json!({"rtt_ms": 1, "jitter_ms": 2, "packet_loss": 2, "bitrate_kbps": 1}),
        json!({"rtt_ms": 1, "jitter_ms": 2, "packet_loss": 0}),
    ] {
        q(&a, bad).await.assert_error(400, "VALIDATION_ERROR");
    }
    // A member who never joined is refused; one who left a moment ago still reports the
    // sample it measured before leaving.
    q(
        &d,
        json!({"rtt_ms": 1, "jitter_ms": 1, "packet_loss": 0, "bitrate_kbps": 1}),
    )
    .await
    .assert_error(409, "CONFLICT");
    q(
        &b,
        json!({"rtt_ms": 40.0, "jitter_ms": 2.0, "packet_loss": 0.0, "bitrate_kbps": 600.0}),
    )
    .await
    .assert_ok(200);
    let s = app
        .get(&format!("/v1/calls/{id}/quality"), Some(&d.access))
        .await;
    let s = s.assert_ok(200).clone();
    assert_eq!(s["call"]["samples"], 4);
    assert_eq!(s["call"]["rtt_ms"]["mean"], 40.0);
    assert_eq!(s["call"]["rtt_ms"]["p95"], 60.0);
    let sessions: Vec<&str> = s["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.contains(&a.session_id.as_str()) && sessions.contains(&b.session_id.as_str()));
    assert!(
        app.metrics()
            .await
            .contains("secureconnect_call_rtt_ms_count 4")
    );
}

/// The start of an MP4 (an `ftyp` box), enough for the type check.
const MP4: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free";

fn in_secs(s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn scheduled_calls_are_announced_changed_and_reminded_once_after_a_restart() {
    let apps = TestApp::spawn_cluster(2, |c| c.call_sweep_interval_seconds = 1).await;
    let mut apps = apps.into_iter();
    let (first, second) = (apps.next().unwrap(), apps.next().unwrap());
    let owner = first.register("planner").await;
    let member = first.register("planned").await;
    let stranger = first.register("notplanned").await;
    let g = first.group(&owner, &[&member]).await;
    let mut m_ws = first.ws(&member).await;

    let sched = |u: &TestUser, body: Value| {
        let (app, token) = (&first, u.access.clone());
        async move { app.post("/v1/calls/scheduled", Some(&token), body).await }
    };
    for bad in [
        json!({"conversation_id": g, "kind": "video", "starts_at": in_secs(-60)}),
        json!({"conversation_id": g, "kind": "video", "starts_at": in_secs(400 * 86_400)}),
        json!({"conversation_id": g, "kind": "video", "starts_at": "tomorrow"}),
        json!({"conversation_id": g, "kind": "fax", "starts_at": in_secs(60)}),
        json!({"conversation_id": g, "kind": "video", "starts_at": in_secs(60), "title": ""}),
    ] {
        sched(&owner, bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    sched(
        &stranger,
        json!({"conversation_id": g, "kind": "audio", "starts_at": in_secs(60)}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let later = sched(
        &member,
        json!({"conversation_id": g, "kind": "audio", "starts_at": in_secs(3600), "title": "Retro"}),
    )
    .await;
    let later = later.assert_ok(201).clone();
    assert_eq!(later["title"], "Retro");
    let lid = later["id"].as_str().unwrap().to_string();
    assert_eq!(m_ws.expect("call.scheduled").await["id"], lid.as_str());
    // Changes: its creator, or the group's owner; not a stranger.
    let patch = |u: &TestUser, body: Value| {
        let (app, token, id) = (&first, u.access.clone(), lid.clone());
        async move {
            app.call(
                Method::PATCH,
                &format!("/v1/calls/scheduled/{id}"),
                Some(&token),
                body,
            )
            .await
        }
    };
    let r = patch(&owner, json!({"title": "Retrospective"})).await;
    assert_eq!(r.assert_ok(200)["title"], "Retrospective");
    patch(&stranger, json!({"title": "x"}))
        .await
        .assert_error(404, "NOT_FOUND");
    patch(&member, json!({"starts_at": in_secs(-1)}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let r = patch(&member, json!({"title": null})).await;
    assert!(r.assert_ok(200)["title"].is_null());

    // One that starts in two seconds: listed first; reminded once, by the surviving instance.
    let soon = sched(
        &owner,
        json!({"conversation_id": g, "kind": "video", "starts_at": in_secs(2)}),
    )
    .await;
    let sid = soon.assert_ok(201)["id"].as_str().unwrap().to_string();
    let list = first
        .get(
            &format!("/v1/calls/scheduled?conversation_id={g}"),
            Some(&member.access),
        )
        .await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], sid.as_str());
    let cancel = first
        .call(
            Method::DELETE,
            &format!("/v1/calls/scheduled/{lid}"),
            Some(&owner.access),
            Value::Null,
        )
        .await;
    assert_eq!(cancel.assert_ok(200)["cancelled"], true);
    first
        .call(
            Method::DELETE,
            &format!("/v1/calls/scheduled/{lid}"),
            Some(&owner.access),
            Value::Null,
        )
        .await
        .assert_error(409, "CONFLICT");
    drop(m_ws);
    first.stop().await;

    let start = Instant::now();
    loop {
        let s = second
            .get(&format!("/v1/calls/scheduled/{sid}"), Some(&member.access))
            .await;
        if s.assert_ok(200)["reminded_at"].is_string() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never reminded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for u in [&owner, &member] {
        let n = second.get("/v1/notifications", Some(&u.access)).await;
        let reminders: Vec<Value> = n.assert_ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "call.scheduled")
            .cloned()
            .collect();
        assert_eq!(reminders.len(), 1, "one reminder each");
        assert_eq!(reminders[0]["data"]["scheduled_call_id"], sid.as_str());
    }
}
