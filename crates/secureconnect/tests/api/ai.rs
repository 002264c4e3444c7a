//! AI helpers (API.md §9 and its precisions) against an OpenAI-compatible stub that checks the
//! request shape and the bearer key: consent, chat and streaming (with a client that goes away),
//! limits and the daily budget, provider failures and stalls, summaries with and without a
//! provider, images into the drive, and `@assistant`.

use crate::ai_stub::AiStub;
use crate::common::*;
use reqwest::Method;
use sc_core::config::Config;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-ai-key-0123456789";
const ASSISTANT_ID: &str = "00000000-0000-7000-8000-00000000a551";

fn with_provider(stub: &AiStub) -> impl Fn(&mut Config) + '_ {
    move |c: &mut Config| {
        c.ai_base_url = Some(stub.base_url().to_string());
        c.ai_api_key = Some(sc_core::secret::Secret::new(KEY));
        c.ai_model = Some("stub-chat".into());
        c.ai_image_model = Some("stub-image".into());
        c.ai_timeout_seconds = 2;
    }
}

async fn opt_in(app: &TestApp, u: &TestUser) {
    let r = app
        .call(
            Method::PATCH,
            "/v1/ai/settings",
            Some(&u.access),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["enabled"], true);
}

async fn enable_ai(app: &TestApp, owner: &TestUser, conv: &str) {
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/conversations/{conv}"),
            Some(&owner.access),
            json!({"ai_enabled": true}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["ai_enabled"], true);
}

fn chat_body(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn nothing_is_read_without_consent_and_without_a_provider_only_summaries_work() {
    let app = TestApp::spawn().await;
    let u = app.register("aicons").await;
    let other = app.register("aiother").await;
    let s = app.get("/v1/ai/settings", Some(&u.access)).await;
    let s = s.assert_ok(200);
    assert_eq!(
        s,
        &json!({"enabled": false, "provider_available": false, "chat": false, "images": false,
                "summaries": "offline"})
    );
    let conv = app.group(&u, &[&other]).await;
    // Without the opt-in: 403 everywhere, whatever else is wrong.
    app.post("/v1/ai/chat", Some(&u.access), chat_body("hi"))
        .await
        .assert_error(403, "FORBIDDEN");
    app.post("/v1/ai/images", Some(&u.access), json!({"prompt": "a cat"}))
        .await
        .assert_error(403, "FORBIDDEN");
    enable_ai(&app, &u, &conv).await;
    app.post(
        &format!("/v1/conversations/{conv}/summary"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    opt_in(&app, &u).await;
    // No provider: chat and images 503, summaries offline.
    let r = app
        .post("/v1/ai/chat", Some(&u.access), chat_body("hi"))
        .await;
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    app.post("/v1/ai/images", Some(&u.access), json!({"prompt": "a cat"}))
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");
    app.send_text(
        &other,
        &conv,
        "s-1",
        "The launch moves to Friday because the vendor is late.",
    )
    .await
    .assert_ok(201);
    let r = app
        .post(
            &format!("/v1/conversations/{conv}/summary"),
            Some(&u.access),
            json!(null),
        )
        .await;
    let v = r.assert_ok(200);
    assert_eq!(v["method"], "offline");
    assert_eq!(v["messages_used"], 1);
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("The launch moves to Friday"),
        "{v}"
    );

    // Members only (404), and encrypted conversations can never be enabled.
    let stranger = app.register("aistranger").await;
    opt_in(&app, &stranger).await;
    app.post(
        &format!("/v1/conversations/{conv}/summary"),
        Some(&stranger.access),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let secret = app
        .post(
            "/v1/conversations",
            Some(&u.access),
            json!({"kind": "group", "member_ids": [other.id], "title": "vault", "encrypted": true}),
        )
        .await;
    let secret = secret.assert_ok(201)["id"].as_str().unwrap().to_string();
    app.call(
        Method::PATCH,
        &format!("/v1/conversations/{secret}"),
        Some(&u.access),
        json!({"ai_enabled": true}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &format!("/v1/conversations/{secret}/summary"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    // A plain member cannot switch a group's AI on.
    app.call(
        Method::PATCH,
        &format!("/v1/conversations/{conv}"),
        Some(&other.access),
        json!({"ai_enabled": false}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn chat_answers_through_the_provider_within_limits_and_budget() {
    let stub = AiStub::start(Some(KEY)).await;
    stub.set_reply("Paris is the capital of France.");
    let app = TestApp::spawn_with(|c| {
        with_provider(&stub)(c);
        c.ai_requests_per_user_per_day = 3;
    })
    .await;
    let u = app.register("aichat").await;
    opt_in(&app, &u).await;
    let s = app.get("/v1/ai/settings", Some(&u.access)).await;
    let s = s.assert_ok(200);
    assert_eq!(
        (s["chat"].as_bool(), s["images"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(s["summaries"], "provider");

    let r = app
        .client
        .post(app.url("/v1/ai/chat"))
        .bearer_auth(&u.access)
        .json(
            &json!({"messages": [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Capital of France?"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    assert_eq!(r.headers()["ratelimit-remaining"], "2");
    let r = Resp::from(r).await;
    let v = r.assert_ok(200);
    assert_eq!(
        v["message"],
        json!({"role": "assistant", "content": "Paris is the capital of France."})
    );
    assert!(v["usage"]["prompt_tokens"].as_u64().is_some());
    assert_eq!(v["model"], "stub-chat");
    let sent = stub.chat_requests();
    assert_eq!(
        sent.last().unwrap()["messages"][1]["content"],
        "Capital of France?"
    );

    // Limits: 413 for size, 400 for shape; neither costs budget.
    let many: Vec<Value> = (0..51)
        .map(|_| json!({"role": "user", "content": "x"}))
        .collect();
    app.post("/v1/ai/chat", Some(&u.access), json!({"messages": many}))
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    app.post(
        "/v1/ai/chat",
        Some(&u.access),
        chat_body(&"y".repeat(32_001)),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    app.post(
        "/v1/ai/chat",
        Some(&u.access),
        json!({"messages": [{"role": "tool", "content": "x"}]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post("/v1/ai/chat", Some(&u.access), json!({"messages": []}))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    // The daily budget: 3 requests, then 429 with Retry-After until midnight UTC.
    app.post("/v1/ai/chat", Some(&u.access), chat_body("two"))
        .await
        .assert_ok(200);
    app.post("/v1/ai/chat", Some(&u.access), chat_body("three"))
        .await
        .assert_ok(200);
    let r = app
        .client
        .post(app.url("/v1/ai/chat"))
        .bearer_auth(&u.access)
        .json(&chat_body("four"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(
        stub.chat_requests().len(),
        3,
        "refused requests never reach the provider"
    );
}

#[tokio::test]
async fn streams_relay_tokens_and_stop_upstream_when_the_client_goes_away() {
    let stub = AiStub::start(Some(KEY)).await;
    stub.set_reply("One two three four five six seven eight nine ten.");
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let u = app.register("aistream").await;
    opt_in(&app, &u).await;
    let body = json!({"messages": [{"role": "user", "content": "count"}], "stream": true});
    let r = app
        .client
        .post(app.url("/v1/ai/chat"))
        .bearer_auth(&u.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.headers().contains_key("ratelimit-remaining"));
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() >= 3, "{text}");
    let answer: String = events.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(answer, "One two three four five six seven eight nine ten.");
    let last = events.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(
        last["usage"]["completion_tokens"].as_u64().is_some(),
        "{last}"
    );

    // A client that leaves mid-answer stops the upstream request.
    stub.stream_then_stall_after(2);
    let r = app
        .client
        .post(app.url("/v1/ai/chat"))
        .bearer_auth(&u.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut chunks = r.bytes_stream();
    use futures_util::StreamExt;
    let first = chunks.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("delta"));
    drop(chunks);
    let started = Instant::now();
    while stub.streams_cancelled() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the upstream stream was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_or_stalled_provider_is_a_quick_503_never_a_500() {
    let stub = AiStub::start(Some(KEY)).await;
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let u = app.register("aifail").await;
    opt_in(&app, &u).await;
    stub.fail_next(500);
    let r = app
        .post("/v1/ai/chat", Some(&u.access), chat_body("hi"))
        .await;
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    stub.stall(Duration::from_secs(30));
    let started = Instant::now();
    let r = app
        .post("/v1/ai/chat", Some(&u.access), chat_body("hi"))
        .await;
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout (2 s) ends the wait"
    );
    let ready = app.get("/ready", None).await;
    assert!(ready.body["checks"]["ai"].is_string(), "{:?}", ready.body);
}

#[tokio::test]
async fn summaries_send_names_and_text_only_under_the_system_prompt() {
    let stub = AiStub::start(Some(KEY)).await;
    stub.set_reply("They agreed to ship on Friday.");
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let a = app.register("sumalice").await;
    let b = app.register("sumbob").await;
    let conv = app.group(&a, &[&b]).await;
    enable_ai(&app, &a, &conv).await;
    opt_in(&app, &b).await;
    for (i, t) in [
        "Shall we ship on Friday?",
        "Yes, Friday works.",
        "Great, Friday it is.",
    ]
    .iter()
    .enumerate()
    {
        let who = if i % 2 == 0 { &a } else { &b };
        app.send_text(who, &conv, &format!("sum-{i}"), t)
            .await
            .assert_ok(201);
    }
    let r = app
        .post(
            &format!("/v1/conversations/{conv}/summary"),
            Some(&b.access),
            json!({"since_seq": 1}),
        )
        .await;
    let v = r.assert_ok(200);
    assert_eq!(v["summary"], "They agreed to ship on Friday.");
    assert_eq!(v["method"], "provider");
    assert_eq!(
        (v["from_seq"].as_i64(), v["to_seq"].as_i64()),
        (Some(2), Some(3))
    );
    assert_eq!(v["messages_used"], 2);
    let req = stub.chat_requests().last().unwrap().clone();
    let msgs = req["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs[1]["role"], "user");
    let transcript = msgs[1]["content"].as_str().unwrap();
    assert!(
        transcript.contains("sumbob: Yes, Friday works."),
        "{transcript}"
    );
    assert!(
        !transcript.contains("Shall we ship"),
        "only after since_seq"
    );
    let whole = req.to_string();
    assert!(
        !whole.contains("@example.org"),
        "no email address goes to the provider"
    );
    // A configured provider that fails is a 503, never the offline fallback.
    stub.fail_next(503);
    app.post(
        &format!("/v1/conversations/{conv}/summary"),
        Some(&b.access),
        json!({}),
    )
    .await
    .assert_error(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn images_land_in_the_drive_against_the_quota() {
    let stub = AiStub::start(Some(KEY)).await;
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let u = app.register("aiimage").await;
    opt_in(&app, &u).await;
    app.post(
        "/v1/ai/images",
        Some(&u.access),
        json!({"prompt": "a cat", "size": "7x7"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let r = app
        .post(
            "/v1/ai/images",
            Some(&u.access),
            json!({"prompt": "a red cat", "size": "256x256"}),
        )
        .await;
    let f = r.assert_ok(201).clone();
    assert_eq!(f["content_type"], "image/png");
    assert_eq!(f["status"], "ready");
    assert!(f["parent_id"].is_null(), "in the drive root");
    let req = stub
        .requests()
        .into_iter()
        .find(|r| r["prompt"].is_string())
        .unwrap();
    assert_eq!(req["response_format"], "b64_json");
    assert_eq!(req["size"], "256x256");
    let q = app.get("/v1/storage/quota", Some(&u.access)).await;
    assert_eq!(q.assert_ok(200)["used"], f["size"]);
    let listed = app.get("/v1/files", Some(&u.access)).await;
    assert_eq!(listed.assert_ok(200)["items"][0]["id"], f["id"]);

    let small = TestApp::spawn_with(|c| {
        with_provider(&stub)(c);
        c.default_quota_bytes = 10;
    })
    .await;
    let v = small.register("aismall").await;
    opt_in(&small, &v).await;
    small
        .post("/v1/ai/images", Some(&v.access), json!({"prompt": "a cat"}))
        .await
        .assert_error(507, "QUOTA_EXCEEDED");
}

#[tokio::test]
async fn the_assistant_answers_opted_in_members_of_ai_enabled_conversations() {
    let stub = AiStub::start(Some(KEY)).await;
    stub.set_reply("The standup is at 10:00.");
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let a = app.register("asowner").await;
    let b = app.register("asmember").await;
    let conv = app.group(&a, &[&b]).await;
    let mut ws = app.ws(&b).await;
    opt_in(&app, &a).await;

    // Not ai_enabled yet: no answer.
    app.send_text(&a, &conv, "as-0", "@assistant when is standup?")
        .await
        .assert_ok(201);
    enable_ai(&app, &a, &conv).await;
    // b has not opted in: no answer to b.
    app.send_text(&b, &conv, "as-1", "@assistant hello?")
        .await
        .assert_ok(201);
    let asked = app
        .send_text(&a, &conv, "as-2", "Hey @assistant, when is standup?")
        .await;
    let asked = asked.assert_ok(201)["id"].as_str().unwrap().to_string();
    let reply = loop {
        let m = ws.expect("message.created").await;
        if m["sender_id"] == ASSISTANT_ID {
            break m;
        }
    };
    assert_eq!(reply["content"], "The standup is at 10:00.");
    assert_eq!(reply["reply_to"], asked.as_str());
    assert_eq!(reply["metadata"]["ai"], true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let history = app
        .get(
            &format!("/v1/conversations/{conv}/messages?limit=50"),
            Some(&a.access),
        )
        .await;
    let from_assistant = history.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender_id"] == ASSISTANT_ID)
        .count();
    assert_eq!(
        from_assistant, 1,
        "one answer, to the opted-in member in the enabled conversation"
    );
    let prompt = stub.chat_requests().last().unwrap().clone();
    assert_eq!(prompt["messages"][0]["role"], "system");
    assert!(
        prompt["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("asowner: Hey @assistant")
    );

    // Visible like a sender, never a member.
    let profile = app
        .get(&format!("/v1/users/{ASSISTANT_ID}"), Some(&a.access))
        .await;
    assert_eq!(profile.assert_ok(200)["display_name"], "Assistant");
    app.post(
        &format!("/v1/conversations/{conv}/members"),
        Some(&a.access),
        json!({"user_ids": [ASSISTANT_ID]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/conversations",
        Some(&a.access),
        json!({"kind": "direct", "member_ids": [ASSISTANT_ID]}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"username": "~assistant", "password": "!"}),
        )
        .await;
    assert!(
        login.status == 400 || login.status == 401,
        "the assistant cannot sign in"
    );
    // Nobody can take the names mentions give a meaning to.
    for name in ["assistant", "all"] {
        let r = app
            .post(
                "/v1/auth/register",
                None,
                json!({"email": format!("{name}@example.org"), "username": name,
                       "password": PASSWORD, "display_name": name}),
            )
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn no_prompt_completion_or_key_reaches_the_logs() {
    let stub = AiStub::start(Some(KEY)).await;
    stub.set_reply("zebra-completion-secret-text");
    let app = TestApp::spawn_with(with_provider(&stub)).await;
    let u = app.register("ailogs").await;
    opt_in(&app, &u).await;
    app.post(
        "/v1/ai/chat",
        Some(&u.access),
        chat_body("walrus-prompt-secret-text"),
    )
    .await
    .assert_ok(200);
    let r = app
        .post(
            "/v1/ai/chat",
            Some(&u.access),
            json!({"messages": [{"role": "user", "content": "walrus-prompt-secret-text"}], "stream": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = captured_logs();
    for secret in [
        "walrus-prompt-secret-text",
        "zebra-completion-secret-text",
        KEY,
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
    assert!(
        logs.contains("ai request"),
        "the requests are logged, by size only"
    );
}
