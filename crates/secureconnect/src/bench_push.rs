//! `secureconnect bench push`: one message to a group of N offline members with one Web Push
//! subscription each, delivered to a local Web Push receiver, against the same receiver fed
//! already-encrypted pushes by a minimal sender in the same run.
//!
//! Everything runs in this process on loopback:
//!
//! - **Receiver**: an axum service on 127.0.0.1 that, for each `POST /push/{n}`, checks the
//!   headers, verifies the VAPID `Authorization` (once per distinct header: both senders reuse
//!   one signed token, so after the first push this is a string comparison), decrypts the body
//!   with `ece::decrypt` and the subscription's UA key, answers 201 and records only the arrival
//!   time and the payload's `notification_id` (24 bytes per push).
//! - **Seeding** (timed, not part of the ratio): a sender and N members with a live session each,
//!   straight through the repositories; one group conversation of all of them; one Web Push
//!   subscription per member (its own P-256 key and auth secret) pointing at the receiver. No
//!   member has a socket, so all are offline.
//! - **A, the server path**: the sender posts ONE message through the HTTP API; `t0` is taken just
//!   before the POST. The message job becomes N `message` notifications, the dispatcher queues N
//!   pushes, the push worker encrypts and sends them `push_concurrency` at a time. Pushes/s =
//!   N / (last arrival − t0); enqueue-to-delivery latency of each push = arrival − t0 (the
//!   message enqueues all of them).
//! - **B, the baseline**: for each subscription a body encrypted beforehand (`ece::encrypt`, the
//!   payload shape the server sends) with a VAPID header signed beforehand by the same key, posted
//!   with the server's headers through one reqwest client, `push_concurrency` in flight, from
//!   `t0` on. Same rate and latency definitions.
//!
//! Both phases must end with exactly N 201s at the receiver, every body decrypted and N distinct
//! notification ids, or the bench fails: B cannot hide a lost, duplicated or undecryptable push
//! in A.

use crate::App;
use crate::bench::{percentile_ms, rss_kib};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{StreamExt, TryStreamExt};
use p256::SecretKey;
use sc_core::{
    config::Config,
    ids::{ConversationId, NotificationId, PushSubscriptionId, SessionId, UserId},
    secret::Secret,
    time::Timestamp,
};
use sc_db::{chat::NewConversation, push::NewSubscription};
use sc_infra::push::{VapidKey, ece, vapid, webpush::topic_header};
use sc_service::notify::push::Payload;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VAPID_SUBJECT: &str = "mailto:bench@localhost";
/// What the server sends for a `message` notification (see the dispatcher).
const TTL_SECONDS: u64 = 24 * 3600;
/// Seeding writes in flight on PostgreSQL; SQLite has one writer, and concurrent deferred
/// transactions only fail each other's snapshots there.
const SEED_CONCURRENCY_POSTGRES: usize = 8;

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Peak VmRSS of this process so far (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn random_p256_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

/// A subscription's keys as the browser holding it keeps them.
struct UaKeys {
    private: SecretKey,
    auth: [u8; 16],
}

/// What the receiver recorded in one phase.
struct Phase {
    started: Instant,
    /// Per accepted push: µs from `started` to its arrival, and its notification id.
    arrivals: Vec<(u64, u128)>,
    /// Pushes answered with something other than 201.
    refused: u64,
}

impl Phase {
    fn new(started: Instant, capacity: usize) -> Self {
        Phase {
            started,
            arrivals: Vec::with_capacity(capacity),
            refused: 0,
        }
    }
}

struct Receiver {
    origin: String,
    /// Indexed by the `{n}` of the endpoint path.
    keys: Vec<UaKeys>,
    /// The VAPID public key pushes must be signed with.
    vapid_public: String,
    /// The last `Authorization` header that verified.
    verified: Mutex<Option<String>>,
    phase: Mutex<Phase>,
}

impl Receiver {
    /// Starts a phase now; returns its start.
    fn start_phase(&self) -> Instant {
        let started = Instant::now();
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) =
            Phase::new(started, self.keys.len());
        started
    }

    /// Pushes answered so far (201, other).
    fn counts(&self) -> (usize, u64) {
        let p = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        (p.arrivals.len(), p.refused)
    }

    fn finish_phase(&self) -> Phase {
        std::mem::replace(
            &mut *self.phase.lock().unwrap_or_else(|p| p.into_inner()),
            Phase::new(Instant::now(), 0),
        )
    }

    fn vapid_ok(&self, headers: &HeaderMap) -> bool {
        let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.as_deref() == Some(auth) {
            return true;
        }
        let ok =
            vapid::verify_authorization(auth, &self.vapid_public, &self.origin, now_unix()).is_ok();
        if ok {
            *verified = Some(auth.to_owned());
        }
        ok
    }
}

/// The `notification_id` of a decrypted payload, as a number.
fn notification_id(plaintext: &[u8]) -> Option<u128> {
    let v: Value = serde_json::from_slice(plaintext).ok()?;
    let id: NotificationId = v.get("notification_id")?.as_str()?.parse().ok()?;
    Some(id.as_uuid().as_u128())
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let Some(keys) = r.keys.get(n) else {
        return StatusCode::NOT_FOUND;
    };
    let well_formed = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v == "aes128gcm")
        && headers.contains_key("ttl")
        && r.vapid_ok(&headers);
    let id = well_formed
        .then(|| ece::decrypt(&body, &keys.private, &keys.auth).ok())
        .flatten()
        .and_then(|plain| notification_id(&plain));
    let mut phase = r.phase.lock().unwrap_or_else(|p| p.into_inner());
    match id {
        Some(id) => {
            let us = arrived.saturating_duration_since(phase.started).as_micros() as u64;
            phase.arrivals.push((us, id));
            StatusCode::CREATED
        }
        None => {
            phase.refused += 1;
            StatusCode::BAD_REQUEST
        }
    }
}

/// Starts the receiver with `members` subscriptions; their `(p256dh, auth)`, base64url.
async fn start_receiver(
    members: usize,
    vapid_public: String,
) -> anyhow::Result<(Arc<Receiver>, Vec<(String, String)>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let (keys, public) = tokio::task::spawn_blocking(move || {
        (0..members)
            .map(|_| {
                let private = random_p256_key();
                let auth: [u8; 16] = rand::random();
                let p256dh = URL_SAFE_NO_PAD.encode(private.public_key().to_sec1_bytes());
                (
                    UaKeys { private, auth },
                    (p256dh, URL_SAFE_NO_PAD.encode(auth)),
                )
            })
            .unzip::<_, _, Vec<_>, Vec<_>>()
    })
    .await?;
    let receiver = Arc::new(Receiver {
        origin,
        keys,
        vapid_public,
        verified: Mutex::new(None),
        phase: Mutex::new(Phase::new(Instant::now(), 0)),
    });
    let app = axum::Router::new()
        .route("/push/{n}", axum::routing::post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((receiver, public))
}

/// A phase's figures: rate and latency from its start, checked complete.
struct Figures {
    delivered: usize,
    rate: f64,
    first_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

impl Figures {
    /// Checks that `phase` holds exactly `n` decrypted pushes with distinct notification ids.
    fn of(phase: &Phase, n: usize, what: &str) -> anyhow::Result<Figures> {
        anyhow::ensure!(
            phase.refused == 0,
            "{what}: the receiver refused {} pushes (not decryptable, bad headers or VAPID)",
            phase.refused
        );
        anyhow::ensure!(
            phase.arrivals.len() == n,
            "{what}: the receiver answered 201 to {} pushes, expected {n}",
            phase.arrivals.len()
        );
        let distinct: HashSet<u128> = phase.arrivals.iter().map(|(_, id)| *id).collect();
        anyhow::ensure!(
            distinct.len() == n,
            "{what}: {} distinct notification ids in {n} pushes",
            distinct.len()
        );
        let mut us: Vec<u64> = phase.arrivals.iter().map(|(t, _)| *t).collect();
        us.sort_unstable();
        let last = us.last().copied().unwrap_or(0);
        Ok(Figures {
            delivered: n,
            rate: n as f64 / (last as f64 / 1e6).max(1e-6),
            first_ms: percentile_ms(&us, 0.0),
            p50_ms: percentile_ms(&us, 0.5),
            p95_ms: percentile_ms(&us, 0.95),
            max_ms: last as f64 / 1000.0,
        })
    }

    fn line(&self, n: usize) -> String {
        format!(
            "{}/{n} delivered and decrypted ({n} distinct notification ids), first after {:.0} ms, last after {:.2} s -> {:.0} pushes/s; enqueue-to-delivery p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            self.delivered,
            self.first_ms,
            self.max_ms / 1000.0,
            self.rate,
            self.p50_ms,
            self.p95_ms,
            self.max_ms
        )
    }
}

pub async fn push(
    members: usize,
    concurrency: usize,
    timeout: Duration,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(members >= 1, "--members must be at least 1");
    let dir = crate::bench::tempfile_dir()?;
    // One VAPID key for the server and the baseline, so both are checked against the same key.
    let vapid_key = VapidKey::generate();
    let cfg = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        database_url: database_url.map(Secret::new),
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        message_rate_per_user_per_minute: u32::MAX,
        push_allow_insecure_endpoints: true,
        push_concurrency: concurrency,
        vapid_private_key: Some(Secret::new(vapid_key.to_base64url())),
        vapid_subject: VAPID_SUBJECT.into(),
        log_level: "warn".into(),
        ..Config::default()
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
    let seed_concurrency = if backend == "sqlite" {
        1
    } else {
        SEED_CONCURRENCY_POSTGRES
    };
    println!(
        "machine: {} cores, {}; backend {backend}; {members} offline members with one Web Push subscription each; push_concurrency {concurrency}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH,
    );

    // Seeding: the receiver's keys, accounts with live sessions, the conversation, the
    // subscriptions, straight through the repositories.
    let seed_started = Instant::now();
    let (receiver, ua_public) =
        start_receiver(members, vapid_key.public_key_base64url().to_owned()).await?;
    let keys_took = seed_started.elapsed();
    let now = Timestamp::now();
    let hash =
        sc_service::password::hash_blocking("tangerine-violin-42").map_err(anyhow::Error::msg)?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let (sender, sender_session) =
        crate::bench::seed_account(&db, &format!("ps{run}"), &hash, now).await?;
    let people: Vec<(UserId, SessionId)> = futures_util::stream::iter(0..members)
        .map(|i| {
            let (db, hash) = (&db, &hash);
            async move { crate::bench::seed_account(db, &format!("p{run}{i}"), hash, now).await }
        })
        .buffered(seed_concurrency)
        .try_collect()
        .await?;
    let conversation = ConversationId::new();
    let mut roster: Vec<(UserId, &str)> = vec![(sender, "owner")];
    roster.extend(people.iter().map(|(u, _)| (*u, "member")));
    db.chat()
        .create(
            &NewConversation {
                id: conversation,
                kind: "group",
                title: Some("push"),
                encrypted: false,
                created_by: sender,
                direct_key: None,
                now,
            },
            &roster,
        )
        .await?
        .map_err(|_| anyhow::anyhow!("conversation exists"))?;
    let endpoints: Vec<String> = (0..members)
        .map(|i| format!("{}/push/{i}", receiver.origin))
        .collect();
    futures_util::stream::iter(people.iter().zip(&endpoints).zip(&ua_public))
        .map(|(((user, session), endpoint), (p256dh, auth))| {
            let db = &db;
            async move {
                db.push()
                    .subscribe(&NewSubscription {
                        id: PushSubscriptionId::new(),
                        user_id: *user,
                        session_id: *session,
                        kind: "webpush",
                        address: endpoint,
                        p256dh: Some(p256dh),
                        auth: Some(auth),
                        environment: None,
                        device_name: None,
                        now,
                    })
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(seed_concurrency)
        .try_collect::<()>()
        .await?;
    println!(
        "seeding (not measured): {members} UA key pairs in {:.1} s; {members} accounts with sessions, 1 conversation of {}, {members} subscriptions in {:.1} s",
        keys_took.as_secs_f64(),
        members + 1,
        (seed_started.elapsed() - keys_took).as_secs_f64()
    );

    // A: one message through the API; the server does the rest.
    let client = reqwest::Client::new();
    let token = state
        .deps
        .jwt
        .issue(sender, sender_session, Timestamp::now(), 3600)?;
    // A database given with --database-url may hold other runs' dead letters.
    let (_, dead_before) = db.push().queue_depth().await?;
    let rss_before_a = rss_kib();
    let t0 = receiver.start_phase();
    let sent = client
        .post(format!("{base}/v1/conversations/{conversation}/messages"))
        .bearer_auth(&token)
        .json(&json!({"client_message_id": format!("push-{run}"), "content": "hello, everyone"}))
        .send()
        .await?;
    let send_took = t0.elapsed();
    anyhow::ensure!(sent.status() == 201, "send failed: {}", sent.status());
    let mut rss_peak_a = rss_before_a;
    loop {
        rss_peak_a = rss_peak_a.max(rss_kib());
        let (ok, refused) = receiver.counts();
        if ok + refused as usize >= members {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < timeout,
            "after {} s only {ok} of {members} pushes arrived ({refused} refused)",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A duplicate would arrive within this, and the last outcomes are recorded by then.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = Figures::of(&receiver.finish_phase(), members, "server")?;
    let (queued, dead) = db.push().queue_depth().await?;
    anyhow::ensure!(
        queued == 0 && dead == dead_before,
        "the push queue still holds {queued} pushes and {} new dead letters",
        dead - dead_before
    );
    let rss_after_a = rss_kib();

    // B: the same pushes, encrypted and signed beforehand, posted as a minimal sender would.
    // The payload and topic the server's dispatcher makes for a `message` notification.
    let message_payload = move || Payload {
        kind: "message".into(),
        notification_id: Some(NotificationId::new()),
        conversation_id: Some(conversation),
        ..Payload::default()
    };
    let topic = message_payload()
        .topic()
        .map(|t| topic_header(&t))
        .context("a message push has a topic")?;
    let origin_url = reqwest::Url::parse(&receiver.origin)?;
    let authorization = vapid_key.authorization(&origin_url, VAPID_SUBJECT, now_unix());
    let encrypt_started = Instant::now();
    let prepared: Vec<(reqwest::Url, Vec<u8>)> = {
        let (endpoints, public) = (endpoints.clone(), ua_public.clone());
        tokio::task::spawn_blocking(move || {
            endpoints
                .iter()
                .zip(&public)
                .map(|(endpoint, (p256dh, auth))| {
                    let payload = message_payload().to_json();
                    let body = ece::encrypt(
                        payload.as_bytes(),
                        &ece::parse_p256dh(p256dh)?,
                        &ece::parse_auth(auth)?,
                    )?;
                    Ok((reqwest::Url::parse(endpoint)?, body))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await??
    };
    let encrypt_took = encrypt_started.elapsed();
    let baseline = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()?;
    receiver.start_phase();
    let answers: Vec<(u16, u64)> = futures_util::stream::iter(prepared)
        .map(|(url, body)| {
            let (c, authorization, topic) = (&baseline, &authorization, &topic);
            async move {
                let started = Instant::now();
                let status = c
                    .post(url)
                    .header(header::CONTENT_ENCODING, "aes128gcm")
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header("TTL", TTL_SECONDS)
                    .header("Urgency", "normal")
                    .header("Topic", topic)
                    .header(header::AUTHORIZATION, authorization)
                    .body(body)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                (status, started.elapsed().as_micros() as u64)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    anyhow::ensure!(
        created == members,
        "baseline: {created} of {members} POSTs answered 201"
    );
    let b = Figures::of(&receiver.finish_phase(), members, "baseline")?;
    let mut request_us: Vec<u64> = answers.iter().map(|(_, us)| *us).collect();
    request_us.sort_unstable();
    let rss_after_b = rss_kib();

    println!(
        "secureconnect, one message (POST answered in {:.0} ms): {}",
        send_took.as_secs_f64() * 1000.0,
        a.line(members)
    );
    println!(
        "baseline, pre-encrypted POSTs, {concurrency} in flight: {}; per request p50 {:.1} ms, p95 {:.1} ms",
        b.line(members),
        percentile_ms(&request_us, 0.5),
        percentile_ms(&request_us, 0.95),
    );
    println!(
        "encryption alone (the baseline's bodies, before its timer): {members} in {:.2} s on one thread -> {:.0} pushes/s per core",
        encrypt_took.as_secs_f64(),
        members as f64 / encrypt_took.as_secs_f64().max(1e-6)
    );
    println!(
        "-> ratio pushes/s {:.2} (target >= 0.5, encryption included); p95 {:.0} ms vs {:.0} ms ({:.2}x)",
        a.rate / b.rate,
        a.p95_ms,
        b.p95_ms,
        a.p95_ms / b.p95_ms.max(0.001)
    );
    println!(
        "memory (VmRSS, server + receiver + clients): {} MiB before the message, peak {} MiB while it was pushed (+{:.1} MiB), {} MiB after; {} MiB after the baseline; VmHWM {} MiB (seeding included)",
        rss_before_a / 1024,
        rss_peak_a / 1024,
        rss_peak_a.saturating_sub(rss_before_a) as f64 / 1024.0,
        rss_after_a / 1024,
        rss_after_b / 1024,
        peak_rss_kib() / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
