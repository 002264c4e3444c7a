//! `secureconnect bench calls`: N concurrent 1:1 calls (2N sockets). Call setup (create +
//! join over HTTP) p50/p95, then signal relay round trips (A → server → B → server → A) with
//! every call live, against a bare tokio-tungstenite echo server measured the same way in the
//! same run; and the server's memory per live call.

use crate::App;
use crate::bench::{percentile_ms, rss_kib};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use sc_core::{
    config::Config,
    ids::{ConversationId, SessionId, UserId},
    secret::Secret,
    time::Timestamp,
};
use sc_db::chat::NewConversation;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame of a socket whose `type` is `kind`.
async fn next_of(ws: &mut Socket, kind: &str) -> anyhow::Result<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no frame within 30 s")?
            .context("socket closed")??;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["type"] == kind {
                return Ok(v["data"].clone());
            }
        }
    }
}

struct Pair {
    conversation: ConversationId,
    a: (UserId, SessionId, String),
    b: (UserId, SessionId, String),
}

pub async fn calls(
    calls: usize,
    signals: usize,
    setup_concurrency: usize,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
) -> anyhow::Result<()> {
    let dir = crate::bench::tempfile_dir()?;
    let defaults = Config::default();
    let cfg = Config {
        database_max_connections: database_max_connections
            .unwrap_or(defaults.database_max_connections),
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        database_url: database_url.map(Secret::new),
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        ws_inbound_per_second: 10_000,
        ws_heartbeat_seconds: 300,
        ws_idle_timeout_seconds: 600,
        log_level: "warn".into(),
        ..defaults
    };
    let backend = if cfg.database_url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    let app = App::build(cfg).await?;
    let state = app.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    let db = state.deps.db.clone();
    println!(
        "machine: {} cores, {}; backend {backend}; {calls} calls ({} sockets), {signals} round trips per call",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH,
        calls * 2
    );

    // Accounts, sessions and conversations straight through the repositories: the bench
    // measures calls, not Argon2id.
    let now = Timestamp::now();
    let hash =
        sc_service::password::hash_blocking("tangerine-violin-42").map_err(anyhow::Error::msg)?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let jwt = &state.deps.jwt;
    let user = async |name: String| -> anyhow::Result<(UserId, SessionId, String)> {
        let (id, session) = crate::bench::seed_account(&db, &name, &hash, now).await?;
        Ok((id, session, jwt.issue(id, session, now, 3600)?))
    };
    let mut pairs = Vec::with_capacity(calls);
    for i in 0..calls {
        let a = user(format!("ca{run}{i}")).await?;
        let b = user(format!("cb{run}{i}")).await?;
        let conversation = ConversationId::new();
        db.chat()
            .create(
                &NewConversation {
                    id: conversation,
                    kind: "group",
                    title: Some("call"),
                    encrypted: false,
                    created_by: a.0,
                    direct_key: None,
                    now,
                },
                &[(a.0, "owner"), (b.0, "member")],
            )
            .await?
            .map_err(|_| anyhow::anyhow!("conversation exists"))?;
        pairs.push(Pair { conversation, a, b });
    }

    // Every socket first, so setup and signals are measured with all of them open.
    let ws_base = base.replace("http://", "ws://");
    let mut sockets: Vec<(Socket, Socket)> = Vec::with_capacity(calls);
    for p in &pairs {
        let open = async |u: &(UserId, SessionId, String)| -> anyhow::Result<Socket> {
            let ticket = state.realtime.issue_ticket(u.0, u.1).await?;
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("{ws_base}/v1/realtime?ticket={ticket}"))
                    .await?;
            next_of(&mut ws, "ready").await?;
            Ok(ws)
        };
        sockets.push((open(&p.a).await?, open(&p.b).await?));
    }
    let rss_sockets = rss_kib();

    // Setup: create by A, join by B, `setup_concurrency` at a time.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(setup_concurrency * 2)
        .build()?;
    let setups = futures_util::stream::iter(pairs.iter().map(|p| {
        let (client, base) = (&client, &base);
        async move {
            let started = Instant::now();
            let created: Value = client
                .post(format!("{base}/v1/calls"))
                .bearer_auth(&p.a.2)
                .json(&json!({"conversation_id": p.conversation, "kind": "video"}))
                .send()
                .await?
                .json()
                .await?;
            let id = created["data"]["id"]
                .as_str()
                .context("create failed")?
                .to_string();
            let joined = client
                .post(format!("{base}/v1/calls/{id}/join"))
                .bearer_auth(&p.b.2)
                .send()
                .await?;
            anyhow::ensure!(joined.status() == 200, "join failed: {}", joined.status());
            joined.bytes().await?;
            Ok::<_, anyhow::Error>((id, started.elapsed().as_micros() as u64))
        }
    }))
    .buffered(setup_concurrency)
    .collect::<Vec<_>>()
    .await;
    let mut call_ids = Vec::with_capacity(calls);
    let mut setup_us = Vec::with_capacity(calls);
    for s in setups {
        let (id, us) = s?;
        call_ids.push(id);
        setup_us.push(us);
    }
    setup_us.sort_unstable();
    let rss_calls = rss_kib();

    // Signal round trips, every call at once: A → B, B answers A.
    let trips =
        futures_util::future::join_all(sockets.into_iter().zip(pairs.iter().zip(&call_ids)).map(
            |((mut a, mut b), (p, id))| async move {
                let mut rtts = Vec::with_capacity(signals);
                for n in 0..signals {
                    let started = Instant::now();
                    let offer = json!({"type": "call.signal", "data": {"call_id": id,
                        "to_session_id": p.b.1, "signal": {"kind": "offer", "n": n}}});
                    a.send(Message::Text(offer.to_string().into())).await?;
                    next_of(&mut b, "call.signal").await?;
                    let answer = json!({"type": "call.signal", "data": {"call_id": id,
                        "to_session_id": p.a.1, "signal": {"kind": "answer", "n": n}}});
                    b.send(Message::Text(answer.to_string().into())).await?;
                    next_of(&mut a, "call.signal").await?;
                    rtts.push(started.elapsed().as_micros() as u64);
                }
                Ok::<_, anyhow::Error>(rtts)
            },
        ))
        .await;
    let mut relay_us = Vec::new();
    for t in trips {
        relay_us.extend(t?);
    }
    relay_us.sort_unstable();

    let echo_us = echo_baseline(calls, signals).await?;
    let (relay_p95, echo_p95) = (
        percentile_ms(&relay_us, 0.95),
        percentile_ms(&echo_us, 0.95),
    );
    println!(
        "call setup (create + join): p50 {:.1} ms, p95 {:.1} ms (target p95 < 50 ms), {} in flight",
        percentile_ms(&setup_us, 0.5),
        percentile_ms(&setup_us, 0.95),
        setup_concurrency
    );
    println!(
        "signal relay round trip (A -> server -> B -> server -> A), all calls at once: p50 {:.2} ms, p95 {relay_p95:.2} ms",
        percentile_ms(&relay_us, 0.5),
    );
    println!(
        "raw WebSocket echo round trip (A -> echo -> A), as many sockets at once: p50 {:.2} ms, p95 {echo_p95:.2} ms",
        percentile_ms(&echo_us, 0.5),
    );
    println!(
        "-> relay p95 / echo p95 = {:.2} (target <= 3; the relay crosses the server twice)",
        relay_p95 / echo_p95.max(1e-6)
    );
    println!(
        "server + clients memory per live call: {:.1} KiB (RSS {} MiB with {} sockets open, {} MiB with every call live)",
        rss_calls.saturating_sub(rss_sockets) as f64 / calls.max(1) as f64,
        rss_sockets / 1024,
        calls * 2,
        rss_calls / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A bare echo server and `sockets` clients sending `trips` frames each, all at once; the
/// sorted round trips in µs.
async fn echo_baseline(sockets: usize, trips: usize) -> anyhow::Result<Vec<u64>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        // The same work a relay does at least: parse the frame, write one.
                        let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                        if ws.send(Message::Text(v.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    let mut clients = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        clients.push(tokio_tungstenite::connect_async(&url).await?.0);
    }
    let runs = futures_util::future::join_all(clients.into_iter().map(|mut ws| async move {
        let mut rtts = Vec::with_capacity(trips);
        for n in 0..trips {
            let started = Instant::now();
            let frame =
                json!({"type": "call.signal", "data": {"signal": {"kind": "offer", "n": n}}});
            ws.send(Message::Text(frame.to_string().into())).await?;
            loop {
                match ws.next().await.context("echo closed")?? {
                    Message::Text(_) => break,
                    _ => continue,
                }
            }
            rtts.push(started.elapsed().as_micros() as u64);
        }
        Ok::<_, anyhow::Error>(rtts)
    }))
    .await;
    let mut all = Vec::new();
    for r in runs {
        all.extend(r?);
    }
    all.sort_unstable();
    Ok(all)
}
