//! `secureconnect bench auth`: measures, in one run on this machine, login throughput against the
//! Argon2id ceiling (hashes/s with the same parameters) and authenticated `GET /v1/users/me`
//! against a bare axum hello-world, reporting ratios so the figures travel between machines.

use crate::App;
use anyhow::Context;
use sc_core::{config::Config, secret::Secret};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchKind,
}

#[derive(clap::Subcommand)]
pub enum BenchKind {
    /// Logins/s vs the Argon2id ceiling; authenticated GET vs a hello-world baseline.
    Auth {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent clients for the GET measurements.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Concurrent clients for the login measurement (several per hashing slot, so slots
        /// never wait on a client's database round trips).
        #[arg(long, default_value_t = 16)]
        login_concurrency: usize,
        /// Use this PostgreSQL database instead of a temporary SQLite one.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Realtime fan-out to many sockets vs a bare tokio-tungstenite broadcast server.
    Fanout {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// 1 room of all sockets, or more rooms sharing them evenly.
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        messages_per_room: usize,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// (internal) the socket side of `bench fanout`, run as a separate process.
    #[command(hide = true)]
    FanoutClient {
        #[arg(long)]
        urls_file: std::path::PathBuf,
        #[arg(long)]
        expect: u64,
    },
    /// Concurrent 1:1 calls: setup p95, signal relay round trip vs a raw WebSocket echo, and
    /// memory per live call.
    Calls {
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        /// Signal round trips per call, all calls at once.
        #[arg(long, default_value_t = 10)]
        signals: usize,
        /// Call setups (create + join) in flight at once.
        #[arg(long, default_value_t = 32)]
        setup_concurrency: usize,
        #[arg(long)]
        database_url: Option<String>,
        /// The server's `database_max_connections` (its default when left out).
        #[arg(long)]
        database_max_connections: Option<u32>,
    },
    /// Message send-and-persist throughput over 100 conversations vs a single-row INSERT
    /// ceiling of the same database; cross-instance added latency (with --redis-url).
    Chat {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Load levels: concurrent senders, and as many concurrent INSERT loops for the ceiling.
        /// Each is measured; the ratio takes the best send rate whose p95 stays under 200 ms
        /// against the best ceiling.
        #[arg(long, value_delimiter = ',', default_values_t = [32, 64, 128, 256])]
        concurrency: Vec<usize>,
        /// PostgreSQL database (empty, or one earlier bench runs used).
        #[arg(long)]
        database_url: Option<String>,
        /// Redis for the cross-instance latency measurement.
        #[arg(long)]
        redis_url: Option<String>,
    },
    /// Drive transfers: a large file up and down through the API vs dd on the same disk (and
    /// the server's memory meanwhile); on S3, init + PUT + complete vs a direct presigned PUT.
    Drive(crate::bench_drive::DriveArgs),
    /// One message to a conversation of offline members with a Web Push subscription each,
    /// delivered to a local receiver, vs posting already-encrypted pushes to it.
    Push {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        /// Pushes in flight: the server's `push_concurrency` and the baseline's.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to wait for every push of the message.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Streamed AI answers through the server vs the same stub provider read directly (time
    /// to first token, total), and memory with many streams open.
    Ai {
        #[command(flatten)]
        args: crate::bench_ai::AiArgs,
    },
    /// The MLS Delivery Service: commits (spread and contended) and key-package claims vs the
    /// single-row INSERT ceiling; the SDK's costs in a 100-device group vs one signature.
    #[cfg(feature = "client")]
    Mls(crate::bench_mls::MlsArgs),
    /// The hot paths the strict way: server (and its database and Redis) pinned to one core,
    /// wrk and pgbench to the other; authenticated read vs a bare axum handler, send + persist
    /// vs pgbench's single-row INSERT, in one run.
    Strict(crate::bench_strict::StrictArgs),
    /// (internal) the bare axum baseline of `bench strict`, run as a separate process.
    #[command(hide = true)]
    HelloServer {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchKind::Auth {
            seconds,
            concurrency,
            login_concurrency,
            database_url,
        } => {
            auth(
                Duration::from_secs(seconds),
                concurrency,
                login_concurrency,
                database_url,
            )
            .await
        }
        BenchKind::Fanout {
            sockets,
            rooms,
            messages_per_room,
            database_url,
        } => crate::bench_fanout::fanout(sockets, rooms, messages_per_room, database_url).await,
        BenchKind::FanoutClient { urls_file, expect } => {
            crate::bench_fanout::client(urls_file, expect).await
        }
        BenchKind::Chat {
            seconds,
            concurrency,
            database_url,
            redis_url,
        } => {
            crate::bench_chat::chat(
                Duration::from_secs(seconds),
                concurrency,
                database_url,
                redis_url,
            )
            .await
        }
        BenchKind::Drive(args) => crate::bench_drive::drive(args).await,
        BenchKind::Calls {
            calls,
            signals,
            setup_concurrency,
            database_url,
            database_max_connections,
        } => {
            crate::bench_calls::calls(
                calls,
                signals,
                setup_concurrency,
                database_url,
                database_max_connections,
            )
            .await
        }
        BenchKind::Push {
            members,
            concurrency,
            timeout,
            database_url,
        } => {
            crate::bench_push::push(
                members,
                concurrency,
                Duration::from_secs(timeout),
                database_url,
            )
            .await
        }
        BenchKind::Ai { args } => crate::bench_ai::ai(args).await,
        #[cfg(feature = "client")]
        BenchKind::Mls(args) => crate::bench_mls::mls(args).await,
        BenchKind::Strict(args) => crate::bench_strict::strict(args).await,
        BenchKind::HelloServer { listen } => crate::bench_strict::hello_server(listen).await,
    }
}

/// VmRSS of this process, in KiB.
pub(crate) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `p` quantile (0–1, nearest rank) of latencies in µs, sorted ascending, in ms.
pub(crate) fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[idx] as f64 / 1000.0
}

/// An account with one day-long session, written straight through the repositories: benches
/// measure their subject, not Argon2id (`password_hash` is computed once by the caller).
pub(crate) async fn seed_account(
    db: &sc_db::Db,
    name: &str,
    password_hash: &str,
    now: sc_core::time::Timestamp,
) -> anyhow::Result<(sc_core::ids::UserId, sc_core::ids::SessionId)> {
    use sc_core::ids::{SessionId, UserId};
    let id = UserId::new();
    let email = format!("{name}@bench.example");
    db.users()
        .insert(&sc_db::users::NewUser {
            id,
            email: &email,
            email_normalized: &email,
            username: name,
            display_name: name,
            search_name: name,
            password_hash,
            role: "user",
            email_verified: true,
            now,
        })
        .await?
        .map_err(|_| anyhow::anyhow!("user exists"))?;
    let session = sc_db::sessions::SessionRow {
        id: SessionId::new(),
        user_id: id,
        device_name: None,
        ip: None,
        user_agent: None,
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now.plus(Duration::from_secs(86_400)),
        absolute_expires_at: now.plus(Duration::from_secs(86_400)),
        revoked_at: None,
    };
    db.sessions()
        .insert(&session, &format!("bench-refresh-{id}"))
        .await?;
    Ok((id, session.id))
}

pub(crate) struct Load {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies_us: Vec<u64>,
}

impl Load {
    pub(crate) fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }
}

/// Runs `concurrency` loops of `request` for `dur`.
pub(crate) async fn drive<F, Fut>(dur: Duration, concurrency: usize, request: F) -> Load
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (request, stop, errors) = (request.clone(), stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if !request().await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Load {
        requests: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latencies_us,
    }
}

/// Argon2id hashes/s with the server's parameters and hashing function, one thread per core.
fn hash_ceiling(dur: Duration) -> f64 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = sc_service::password::hash_blocking("tangerine-violin-42");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn hello_world() -> anyhow::Result<String> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/"))
}

async fn auth(
    dur: Duration,
    concurrency: usize,
    login_concurrency: usize,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cfg = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        database_url: database_url.map(Secret::new),
        // The bench measures throughput, not the limits that protect against abuse.
        login_rate_per_ip_per_minute: u32::MAX,
        auth_rate_per_ip_per_minute: u32::MAX,
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        password_hash_concurrency: cores,
        log_level: "warn".into(),
        ..Config::default()
    };
    let backend = if cfg.database_url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    let app = App::build(cfg).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;

    let reg: Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": "bench@example.org", "username": "bench", "password": "tangerine-violin-42", "display_name": "Bench"}))
        .send()
        .await?
        .json()
        .await?;
    reg["data"]["access_token"]
        .as_str()
        .context("register failed")?;

    println!(
        "machine: {} cores, {}; backend {backend}; {}s per measurement",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH,
        dur.as_secs()
    );

    let ceiling = tokio::task::spawn_blocking(move || hash_ceiling(dur)).await?;
    let login_url = format!("{base}/v1/auth/login");
    let c = client.clone();
    let logins = drive(dur, login_concurrency, move || {
        let (c, url) = (c.clone(), login_url.clone());
        async move {
            matches!(c.post(&url).json(&json!({"username": "bench", "password": "tangerine-violin-42"})).send().await, Ok(r) if r.status() == 200)
        }
    })
    .await;
    println!("argon2id ceiling: {ceiling:.1} hashes/s");
    println!(
        "logins: {:.1}/s ({} errors), p99 {:.1} ms  -> ratio to ceiling {:.2} (target >= 0.8)",
        logins.rate(),
        logins.errors,
        logins.percentile_ms(0.99),
        logins.rate() / ceiling
    );

    let hello = hello_world().await?;
    let c = client.clone();
    let base_load = drive(dur, concurrency, move || {
        let (c, url) = (c.clone(), hello.clone());
        async move { ok_body(c.get(&url).send().await).await }
    })
    .await;
    // The login storm evicted older sessions (limit 5): sign in afresh for the GET phase.
    let fresh: Value = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "bench", "password": "tangerine-violin-42"}))
        .send()
        .await?
        .json()
        .await?;
    let token = fresh["data"]["access_token"]
        .as_str()
        .context("login failed")?
        .to_string();
    let me_url = format!("{base}/v1/users/me");
    let c = client.clone();
    let me = drive(dur, concurrency, move || {
        let (c, url, t) = (c.clone(), me_url.clone(), token.clone());
        async move { ok_body(c.get(&url).bearer_auth(&t).send().await).await }
    })
    .await;
    println!(
        "hello-world baseline: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        base_load.rate(),
        base_load.percentile_ms(0.5),
        base_load.percentile_ms(0.99)
    );
    println!(
        "GET /v1/users/me: {:.0} req/s ({} errors), p50 {:.2} ms, p99 {:.2} ms  -> ratio to baseline {:.2} (target >= 0.3, p99 < 20 ms)",
        me.rate(),
        me.errors,
        me.percentile_ms(0.5),
        me.percentile_ms(0.99),
        me.rate() / base_load.rate()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A 200 whose body was read completely.
pub(crate) async fn ok_body(r: reqwest::Result<reqwest::Response>) -> bool {
    match r {
        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
        _ => false,
    }
}

pub(crate) fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sc-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
