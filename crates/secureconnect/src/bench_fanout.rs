//! `secureconnect bench fanout`: realtime fan-out to many sockets (1 room × N members, or 100
//! rooms × N/100), against a bare tokio-tungstenite broadcast server measured the same way in
//! the same run. The sockets live in a separate client process (`bench fanout-client`), as the
//! per-process file limit requires.

use crate::App;
use crate::bench::rss_kib;
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use sc_core::{
    config::Config,
    ids::{ConversationId, UserId},
    secret::Secret,
    time::Timestamp,
};
use sc_db::chat::NewConversation;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used so far, in seconds.
fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux/x86_64).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// What the client process reports, plus the server side's figures for the same phase.
struct Report {
    received: u64,
    bytes: u64,
    p50_ms: f64,
    p99_ms: f64,
    last_recv_us: u64,
    /// When the first frame was offered (µs since the epoch).
    first_send_us: u64,
    /// CPU seconds this (server) process used from the first send to the report.
    cpu_s: f64,
}

impl Report {
    fn wall_rate(&self) -> f64 {
        self.received as f64
            / (self.last_recv_us.saturating_sub(self.first_send_us) as f64 / 1e6).max(1e-6)
    }
    fn per_cpu_second(&self) -> f64 {
        self.received as f64 / self.cpu_s.max(0.01)
    }
    fn line(&self, name: &str, expect: u64) -> String {
        format!(
            "{name}: {}/{expect} delivered ({} dropped), avg frame {} B, {:.0} deliveries/s wall clock, server CPU {:.2} s -> {:.0} deliveries per CPU-second, p50 {:.1} ms, p99 {:.1} ms",
            self.received,
            expect.saturating_sub(self.received),
            self.bytes / self.received.max(1),
            self.wall_rate(),
            self.cpu_s,
            self.per_cpu_second(),
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// Starts the client process on `urls`, waits until every socket is open, runs `send`, then
/// collects the report.
async fn with_client<F, Fut>(urls: &[String], expect: u64, send: F) -> anyhow::Result<(Report, u64)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let file = crate::bench::tempfile_dir()?.join("urls.txt");
    std::fs::write(&file, urls.join("\n"))?;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .args([
            "bench",
            "fanout-client",
            "--expect",
            &expect.to_string(),
            "--urls-file",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("client stdout")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let connected = tokio::time::timeout(Duration::from_secs(300), rx.recv())
        .await?
        .context("client ended")?;
    anyhow::ensure!(connected.starts_with("connected"), "client: {connected}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib();
    let first_send = now_micros();
    let cpu_before = cpu_seconds();
    send().await?;
    let report = tokio::time::timeout(Duration::from_secs(300), rx.recv())
        .await?
        .context("client ended")?;
    let _ = child.wait();
    let _ = std::fs::remove_file(&file);
    let cpu_s = cpu_seconds() - cpu_before;
    let v: Value = serde_json::from_str(&report)?;
    Ok((
        Report {
            received: v["received"].as_u64().unwrap_or(0),
            bytes: v["bytes"].as_u64().unwrap_or(0),
            p50_ms: v["p50_ms"].as_f64().unwrap_or(0.0),
            p99_ms: v["p99_ms"].as_f64().unwrap_or(0.0),
            last_recv_us: v["last_recv_us"].as_u64().unwrap_or(0),
            first_send_us: first_send,
            cpu_s,
        },
        rss_idle,
    ))
}

/// The client process: opens every socket, says "connected", counts `message.created` frames
/// until `expect` arrived (or 60 s of silence), prints a JSON report.
pub async fn client(urls_file: std::path::PathBuf, expect: u64) -> anyhow::Result<()> {
    let urls: Vec<String> = std::fs::read_to_string(urls_file)?
        .lines()
        .map(String::from)
        .collect();
    let received = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let mut streams = Vec::new();
    for chunk in urls.chunks(200) {
        let conns = futures_util::future::join_all(
            chunk
                .iter()
                .map(|u| tokio_tungstenite::connect_async(u.clone())),
        )
        .await;
        for c in conns {
            streams.push(c.context("client connect")?.0);
        }
    }
    for mut ws in streams {
        let (received, bytes, last, lat) =
            (received.clone(), bytes.clone(), last.clone(), lat.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                    let Some(i) = t.as_str().find("\"t=") else {
                        continue;
                    };
                    let digits: String = t.as_str()[i + 3..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let Ok(sent) = digits.parse::<u64>() {
                        let now = now_micros();
                        lat.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(now.saturating_sub(sent));
                        last.fetch_max(now, Ordering::Relaxed);
                        received.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    println!("connected {}", urls.len());
    std::io::stdout().flush()?;
    let mut quiet_since = Instant::now();
    let mut seen = 0;
    while received.load(Ordering::Relaxed) < expect
        && quiet_since.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = received.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut l = lat.lock().unwrap_or_else(|p| p.into_inner()).clone();
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((l.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
        }
    };
    println!(
        "{}",
        json!({"received": received.load(Ordering::Relaxed), "bytes": bytes.load(Ordering::Relaxed), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "last_recv_us": last.load(Ordering::Relaxed)})
    );
    std::io::stdout().flush()?;
    std::process::exit(0);
}

// The handshake callback's Result type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
/// A bare tokio-tungstenite server: one broadcast channel per room, each connection subscribed
/// to its room's (`?room=N`), every frame written as it comes.
async fn baseline_server(
    rooms: usize,
) -> anyhow::Result<(String, Vec<broadcast::Sender<Arc<str>>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let senders: Vec<broadcast::Sender<Arc<str>>> = (0..rooms.max(1))
        .map(|_| broadcast::channel::<Arc<str>>(4096).0)
        .collect();
    let channels = Arc::new(senders.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let channels = channels.clone();
            tokio::spawn(async move {
                let mut room = 0usize;
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                        room = req
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("room="))
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(0);
                        Ok(resp)
                    };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let Some(mut rx) = channels.get(room).map(broadcast::Sender::subscribe) else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                loop {
                    let frame = tokio::select! {
                        biased;
                        ev = rx.recv() => match ev {
                            Ok(ev) => ev,
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                        // The client went away: free the connection.
                        _ = stream.next() => break,
                    };
                    if sink
                        .send(tokio_tungstenite::tungstenite::Message::Text(
                            (&*frame).into(),
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    Ok((format!("ws://{addr}/"), senders))
}

pub async fn fanout(
    sockets: usize,
    rooms: usize,
    messages_per_room: usize,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        rooms >= 1 && sockets.is_multiple_of(rooms),
        "sockets must divide evenly into rooms"
    );
    let per_room = sockets / rooms;
    let dir = crate::bench::tempfile_dir()?;
    let cfg = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        database_url: database_url.map(Secret::new),
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        message_rate_per_user_per_minute: u32::MAX,
        ws_outbound_queue: 1024,
        ws_heartbeat_seconds: 300,
        ws_idle_timeout_seconds: 600,
        log_level: "warn".into(),
        ..Config::default()
    };
    let app = App::build(cfg).await?;
    let state = app.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    let db = state.deps.db.clone();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "machine: {cores} cores, {}; {sockets} sockets in {rooms} room(s) of {per_room}; {messages_per_room} messages per room",
        std::env::consts::ARCH
    );

    // Accounts, sessions and tickets straight through the repositories: the bench measures
    // delivery, not 10,000 Argon2id hashes.
    let now = Timestamp::now();
    let hash =
        sc_service::password::hash_blocking("tangerine-violin-42").map_err(anyhow::Error::msg)?;
    let mut users = Vec::with_capacity(sockets);
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    for i in 0..sockets {
        users.push(crate::bench::seed_account(&db, &format!("f{run}{i}"), &hash, now).await?);
    }
    let mut room_ids = Vec::new();
    for r in 0..rooms {
        let members: Vec<(UserId, &str)> = users[r * per_room..(r + 1) * per_room]
            .iter()
            .enumerate()
            .map(|(k, (u, _))| (*u, if k == 0 { "owner" } else { "member" }))
            .collect();
        let id = ConversationId::new();
        let new = NewConversation {
            id,
            kind: "group",
            title: Some("fanout"),
            encrypted: false,
            created_by: members[0].0,
            direct_key: None,
            now,
        };
        db.chat()
            .create(&new, &members)
            .await?
            .map_err(|_| anyhow::anyhow!("room exists"))?;
        room_ids.push((id, members[0].0, users[r * per_room].1));
    }
    let ws_base = base.replace("http://", "ws://");
    let mut urls = Vec::with_capacity(sockets);
    for (u, s) in &users {
        let ticket = state.realtime.issue_ticket(*u, *s).await?;
        urls.push(format!("{ws_base}/v1/realtime?ticket={ticket}"));
    }
    let expect = (sockets * messages_per_room) as u64;
    let rss_before = rss_kib();

    // SecureConnect: each room's owner sends through the HTTP API.
    let client = reqwest::Client::new();
    let jwt = &state.deps.jwt;
    let senders: Vec<(ConversationId, String)> = room_ids
        .iter()
        .map(|(c, owner, session)| Ok((*c, jwt.issue(*owner, *session, Timestamp::now(), 3600)?)))
        .collect::<Result<_, sc_core::AppError>>()?;
    // Sends are offered as fast as the API takes them (32 in flight); each frame carries the
    // time its send started. When each send was answered, and how long it took, is kept, so
    // the baseline can be offered its frames on the same schedule with the same head start.
    let schedule = std::sync::Mutex::new(Vec::<(u64, usize, u64)>::new());
    let (ours, rss_idle) = with_client(&urls, expect, || async {
        let (client, base, schedule) = (&client, &base, &schedule);
        let start = Instant::now();
        let sends = (0..messages_per_room).flat_map(|n| {
            senders.iter().enumerate().map(move |(room, (conv, token))| {
                async move {
                    let began = Instant::now();
                    let sent = client
                        .post(format!("{base}/v1/conversations/{conv}/messages"))
                        .bearer_auth(token)
                        .json(&json!({"client_message_id": format!("fan-{n}-{}", uuid::Uuid::now_v7().simple()), "content": format!("t={}", now_micros())}))
                        .send()
                        .await?;
                    anyhow::ensure!(sent.status() == 201, "send failed: {}", sent.status());
                    schedule
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((
                            start.elapsed().as_micros() as u64,
                            room,
                            began.elapsed().as_micros() as u64,
                        ));
                    Ok(())
                }
            })
        });
        let mut results = futures_util::stream::iter(sends).buffer_unordered(32);
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(())
    })
    .await?;
    let per_conn = (rss_idle.saturating_sub(rss_before)) as f64 / sockets as f64;
    let mut schedule = schedule.into_inner().unwrap_or_else(|p| p.into_inner());
    schedule.sort_unstable();

    // Let this instance settle (10,000 disconnects, presence updates) before the baseline, so
    // its CPU time is the baseline's alone.
    let settle = Instant::now();
    while state.hub.socket_count() > 0 && settle.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let c = cpu_seconds();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        if cpu_seconds() - c < 0.05 || settle.elapsed() > Duration::from_secs(90) {
            break;
        }
    }

    // Baseline: the same sockets through a bare broadcast server, frames of the same size,
    // (a) offered on the schedule our sends were answered, (b) all at once.
    let pad = (ours.bytes / ours.received.max(1)).saturating_sub(70) as usize;
    // `sent_ago`: how long before now the message counts as sent (see the paced run).
    let baseline_frame = |sent_ago: u64| -> Arc<str> {
        json!({"type": "message.created", "data": {"content": format!("t={}", now_micros().saturating_sub(sent_ago)), "padding": "x".repeat(pad)}}).to_string().into()
    };
    let (bws, btx) = baseline_server(rooms).await?;
    let burls: Vec<String> = (0..sockets)
        .map(|i| format!("{bws}?room={}", i / per_room))
        .collect();
    let (paced, _) = with_client(&burls, expect, || async {
        let start = tokio::time::Instant::now();
        // Each frame at the moment our send was answered, stamped with that send's start, so
        // both latencies count from the same instant and differ only in the delivery.
        for (at, room, took) in &schedule {
            tokio::time::sleep_until(start + Duration::from_micros(*at)).await;
            let _ = btx[*room].send(baseline_frame(*took));
        }
        Ok(())
    })
    .await?;
    let (burst, _) = with_client(&burls, expect, || async {
        for _ in 0..messages_per_room {
            for room in &btx {
                let _ = room.send(baseline_frame(0));
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    })
    .await?;

    println!("{}", paced.line("baseline, same schedule", expect));
    println!("{}", burst.line("baseline, all at once  ", expect));
    println!("{}", ours.line("secureconnect          ", expect));
    println!(
        "ratio, deliveries per CPU-second vs the baseline on the same schedule: {:.2} (target >= 0.5, 0 drops; {} cores)",
        ours.per_cpu_second() / paced.per_cpu_second(),
        cores
    );
    println!(
        "ratio, p99 latency of the baseline on the same schedule to ours: {:.2} ({:.1} ms vs {:.1} ms, both from the start of the send)",
        paced.p99_ms / ours.p99_ms.max(0.001),
        paced.p99_ms,
        ours.p99_ms
    );
    println!(
        "ratio, wall-clock deliveries/s vs the baseline offered everything at once: {:.2}",
        ours.wall_rate() / burst.wall_rate()
    );
    println!("server memory per idle connection: {per_conn:.1} KiB (target <= 16 KiB)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
