//! `secureconnect bench ai`: streamed AI answers through the server against the same provider
//! read directly, in one run, and the server's memory with many streams open at once.
//!
//! Everything runs in this process on loopback:
//!
//! - **Stub**: a minimal OpenAI-compatible provider (axum on 127.0.0.1:0): `GET /v1/models`, and
//!   `POST /v1/chat/completions` with `stream: true` answering a `text/event-stream` of `chunks`
//!   content chunks (`tok `), the first at once and the others `delay` apart, then the finish
//!   chunk, the usage chunk and `data: [DONE]`.
//! - **Direct**: a reqwest client streams from the stub itself. Time to first token = the first
//!   `data:` chunk carrying content; total = `data: [DONE]`.
//! - **Server**: the same client and concurrency, `POST /v1/ai/chat` with `stream: true` and a
//!   bearer token of one of a few seeded, opted-in users. Time to first token = the first
//!   `data: {"delta"…}` event; total = the `done` event.
//! - The added latency is p95(server) − p95(direct) for both (per request it cannot be measured
//!   pairwise: the two requests of a pair are not the same request).
//! - **Memory**: `streams` concurrent streams with a slower stub, through the server and then
//!   directly; VmRSS sampled before and during each. The server's share per stream is at most
//!   the first phase's growth (client, server and stub) and at least that minus the second's
//!   (client and stub, which reuse memory the first phase freed), divided by `streams`.

use crate::App;
use crate::bench::{percentile_ms, rss_kib};
use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sc_core::{config::Config, time::Timestamp};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Users the server-side requests are spread over.
const USERS: usize = 8;

#[derive(clap::Args)]
pub struct AiArgs {
    /// Streamed answers per latency measurement (direct, then through the server).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Streams in flight during the latency measurements.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Content chunks per answer in the latency measurements.
    #[arg(long, default_value_t = 20)]
    pub chunks: u64,
    /// Milliseconds between chunks in the latency measurements.
    #[arg(long, default_value_t = 5)]
    pub chunk_ms: u64,
    /// Concurrent streams for the memory measurement.
    #[arg(long, default_value_t = 500)]
    pub streams: usize,
    /// Content chunks per answer in the memory measurement.
    #[arg(long, default_value_t = 40)]
    pub memory_chunks: u64,
    /// Milliseconds between chunks in the memory measurement.
    #[arg(long, default_value_t = 50)]
    pub memory_chunk_ms: u64,
}

/// What the stub answers; changed between phases.
struct Stub {
    chunks: AtomicU64,
    delay_ms: AtomicU64,
    open: AtomicUsize,
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [{"id": "bench", "object": "model", "owned_by": "bench"}]}))
        .into_response()
}

/// Decrements the stub's open-stream count when the body is done or dropped.
struct OpenGuard(Arc<Stub>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn completions(State(stub): State<Arc<Stub>>) -> Response {
    let chunks = stub.chunks.load(Ordering::Relaxed);
    let delay = Duration::from_millis(stub.delay_ms.load(Ordering::Relaxed));
    stub.open.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(stub.clone());
    // 0..chunks: content; chunks: finish; chunks + 1: usage; chunks + 2: [DONE].
    let body = futures_util::stream::unfold((0u64, guard), move |(i, guard)| async move {
        if i > chunks + 2 {
            return None;
        }
        if i > 0 && i < chunks {
            tokio::time::sleep(delay).await;
        }
        let data = if i < chunks {
            r#"{"model":"bench","choices":[{"index":0,"delta":{"content":"tok "}}]}"#.to_owned()
        } else if i == chunks {
            r#"{"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
                .to_owned()
        } else if i == chunks + 1 {
            format!(
                r#"{{"model":"bench","choices":[],"usage":{{"prompt_tokens":1,"completion_tokens":{chunks}}}}}"#
            )
        } else {
            "[DONE]".to_owned()
        };
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {data}\n\n"))),
            (i + 1, guard),
        ))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn start_stub(stub: Arc<Stub>) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/v1/models", axum::routing::get(models))
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v1"))
}

/// One streamed answer: µs to the first line starting with `first` and to the line starting
/// with `last`, and how many `first` lines came.
async fn stream_once(
    req: reqwest::RequestBuilder,
    first: &str,
    last: &str,
) -> anyhow::Result<(u64, u64, u64)> {
    let started = Instant::now();
    let resp = req.send().await?;
    anyhow::ensure!(resp.status() == 200, "status {}", resp.status());
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut ttft = None;
    let mut count = 0u64;
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = std::str::from_utf8(&line)?.trim_end();
            if line.starts_with(first) {
                count += 1;
                ttft.get_or_insert_with(|| started.elapsed().as_micros() as u64);
            } else if line.starts_with(last) {
                let total = started.elapsed().as_micros() as u64;
                return Ok((ttft.context("ended before any token")?, total, count));
            } else if line.starts_with("data: {\"error\"") {
                anyhow::bail!("error event: {line}");
            }
        }
    }
    anyhow::bail!("the stream ended without {last}")
}

/// Sorted TTFT and total latencies (µs) of `n` streams, `concurrency` at a time; `make(i)`
/// builds request `i`.
async fn measure<F>(
    n: usize,
    concurrency: usize,
    chunks: u64,
    first: &str,
    last: &str,
    make: F,
) -> anyhow::Result<(Vec<u64>, Vec<u64>)>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let results: Vec<anyhow::Result<(u64, u64, u64)>> = futures_util::stream::iter(0..n)
        .map(|i| stream_once(make(i), first, last))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ttft = Vec::with_capacity(n);
    let mut total = Vec::with_capacity(n);
    for r in results {
        let (t, d, count) = r?;
        anyhow::ensure!(count == chunks, "{count} tokens of {chunks}");
        ttft.push(t);
        total.push(d);
    }
    ttft.sort_unstable();
    total.sort_unstable();
    Ok((ttft, total))
}

/// Runs `n` streams at once, sampling VmRSS and the streams open at the stub every 20 ms.
async fn memory<F>(
    n: usize,
    chunks: u64,
    first: &'static str,
    last: &'static str,
    stub: &Stub,
    make: F,
) -> anyhow::Result<Memory>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let before = rss_kib();
    let started = Instant::now();
    let streams: Vec<_> = (0..n)
        .map(|i| tokio::spawn(stream_once(make(i), first, last)))
        .collect();
    let (mut peak, mut max_open, mut rss_at_max_open) = (before, 0, before);
    while !streams.iter().all(|t| t.is_finished()) {
        let rss = rss_kib();
        peak = peak.max(rss);
        let open = stub.open.load(Ordering::Relaxed);
        if open > max_open || (open == max_open && rss > rss_at_max_open) {
            (max_open, rss_at_max_open) = (open, rss);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    for t in streams {
        let (_, _, count) = t.await??;
        anyhow::ensure!(count == chunks, "{count} tokens of {chunks}");
    }
    Ok(Memory {
        before,
        peak,
        took,
        max_open,
        rss_at_max_open,
    })
}

/// VmRSS (KiB) around one memory phase.
struct Memory {
    before: u64,
    peak: u64,
    took: Duration,
    /// The most streams open at the stub at once, and VmRSS then.
    max_open: usize,
    rss_at_max_open: u64,
}

impl Memory {
    fn line(&self, n: usize) -> String {
        let growth = self.peak.saturating_sub(self.before);
        format!(
            "{} MiB before, {} MiB with {} streams open at the stub, peak {} MiB (+{:.1} MiB, {:.0} KiB/stream), all done in {:.1} s",
            self.before / 1024,
            self.rss_at_max_open / 1024,
            self.max_open,
            self.peak / 1024,
            growth as f64 / 1024.0,
            growth as f64 / n as f64,
            self.took.as_secs_f64()
        )
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn line(what: &str, ttft: &[u64], total: &[u64]) {
    println!(
        "{what}: first token p50 {:.2} ms, p95 {:.2} ms; total p50 {:.1} ms, p95 {:.1} ms",
        percentile_ms(ttft, 0.5),
        percentile_ms(ttft, 0.95),
        percentile_ms(total, 0.5),
        percentile_ms(total, 0.95)
    );
}

pub async fn ai(args: AiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.requests >= 1 && args.concurrency >= 1 && args.streams >= 1 && args.chunks >= 1,
        "--requests, --concurrency, --streams and --chunks must be at least 1"
    );
    let stub = Arc::new(Stub {
        chunks: AtomicU64::new(args.chunks),
        delay_ms: AtomicU64::new(args.chunk_ms),
        open: AtomicUsize::new(0),
    });
    let stub_url = start_stub(stub.clone()).await?;
    let dir = crate::bench::tempfile_dir()?;
    let cfg = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        ai_base_url: Some(stub_url.clone()),
        ai_model: Some("bench".into()),
        ai_timeout_seconds: 30,
        ai_requests_per_user_per_day: u32::MAX,
        log_level: "warn".into(),
        ..Config::default()
    };
    let app = App::build(cfg).await?;
    let state = app.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(app.serve(listener, std::future::pending()));
    let load_start = load_average();
    println!(
        "machine: {} cores, {}; backend sqlite; load average {load_start:.2} at the start; {} streamed answers per side, {} in flight, {} chunks {} ms apart",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH,
        args.requests,
        args.concurrency,
        args.chunks,
        args.chunk_ms
    );

    // Seeding: a few opted-in users with a session and a token each.
    let db = state.deps.db.clone();
    let now = Timestamp::now();
    let hash =
        sc_service::password::hash_blocking("tangerine-violin-42").map_err(anyhow::Error::msg)?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.streams.max(args.concurrency) * 2)
        .no_proxy()
        .build()?;
    let mut tokens = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let (user, session) =
            crate::bench::seed_account(&db, &format!("ai{run}{i}"), &hash, now).await?;
        let token = state
            .deps
            .jwt
            .issue(user, session, Timestamp::now(), 3600)?;
        let r = client
            .patch(format!("{base}/v1/ai/settings"))
            .bearer_auth(&token)
            .json(&json!({"enabled": true}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "opt-in failed: {}", r.status());
        tokens.push(token);
    }
    let tokens = Arc::new(tokens);

    let completions_url = format!("{stub_url}/chat/completions");
    let direct_body = json!({"model": "bench", "messages": [{"role": "user", "content": "hi"}],
                             "stream": true, "stream_options": {"include_usage": true}});
    let chat_url = format!("{base}/v1/ai/chat");
    let chat_body = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true});
    let direct = |_: usize| {
        client
            .post(&completions_url)
            .header(header::ACCEPT, "text/event-stream")
            .json(&direct_body)
    };
    let server = |i: usize| {
        client
            .post(&chat_url)
            .bearer_auth(&tokens[i % USERS])
            .json(&chat_body)
    };
    const DIRECT_FIRST: &str =
        "data: {\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\"";
    const DIRECT_LAST: &str = "data: [DONE]";
    const SERVER_FIRST: &str = "data: {\"delta\"";
    const SERVER_LAST: &str = "data: {\"done\"";

    // Warm-up (not measured): connections in both pools, the server's caches.
    let warm = args.concurrency * 2;
    measure(
        warm,
        args.concurrency,
        args.chunks,
        DIRECT_FIRST,
        DIRECT_LAST,
        direct,
    )
    .await
    .context("direct warm-up")?;
    measure(
        warm,
        args.concurrency,
        args.chunks,
        SERVER_FIRST,
        SERVER_LAST,
        server,
    )
    .await
    .context("server warm-up")?;

    // Latency: direct, then through the server, then direct again (so drift shows).
    let (d_ttft, d_total) = measure(
        args.requests,
        args.concurrency,
        args.chunks,
        DIRECT_FIRST,
        DIRECT_LAST,
        direct,
    )
    .await
    .context("direct")?;
    let (s_ttft, s_total) = measure(
        args.requests,
        args.concurrency,
        args.chunks,
        SERVER_FIRST,
        SERVER_LAST,
        server,
    )
    .await
    .context("through the server")?;
    let (d2_ttft, d2_total) = measure(
        args.requests,
        args.concurrency,
        args.chunks,
        DIRECT_FIRST,
        DIRECT_LAST,
        direct,
    )
    .await
    .context("direct, again")?;
    line("direct from the stub", &d_ttft, &d_total);
    line("through the server (POST /v1/ai/chat)", &s_ttft, &s_total);
    line("direct again", &d2_ttft, &d2_total);
    // Against the better of the two direct runs: the smaller p95 is the stricter baseline.
    let d_ttft95 = percentile_ms(&d_ttft, 0.95).min(percentile_ms(&d2_ttft, 0.95));
    let d_total95 = percentile_ms(&d_total, 0.95).min(percentile_ms(&d2_total, 0.95));
    let added_ttft = percentile_ms(&s_ttft, 0.95) - d_ttft95;
    let added_total = percentile_ms(&s_total, 0.95) - d_total95;
    println!(
        "-> added by the server, p95(server) - p95(direct): first token {added_ttft:+.2} ms, total {added_total:+.2} ms (target <= 5 ms){}",
        if added_ttft <= 5.0 && added_total <= 5.0 {
            ""
        } else {
            "  NOT MET"
        }
    );

    // Memory: many slow streams at once, directly, then through the server.
    stub.chunks.store(args.memory_chunks, Ordering::Relaxed);
    stub.delay_ms.store(args.memory_chunk_ms, Ordering::Relaxed);
    // The server's phase comes first, on a heap not yet grown by 500 streams: memory freed by
    // one phase stays in the process and the next phase reuses it.
    let through = memory(
        args.streams,
        args.memory_chunks,
        SERVER_FIRST,
        SERVER_LAST,
        &stub,
        server,
    )
    .await
    .context("memory, through the server")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_server = rss_kib();
    let alone = memory(
        args.streams,
        args.memory_chunks,
        DIRECT_FIRST,
        DIRECT_LAST,
        &stub,
        direct,
    )
    .await
    .context("memory, direct")?;
    println!(
        "memory (VmRSS of the whole process), {} streams at once, {} chunks {} ms apart:",
        args.streams, args.memory_chunks, args.memory_chunk_ms
    );
    println!("  through the server: {}", through.line(args.streams));
    println!(
        "  then direct (client and stub only): {}; {} MiB after the server phase",
        alone.line(args.streams),
        after_server / 1024
    );
    let s_growth = through.peak.saturating_sub(through.before) as f64;
    let n = args.streams as f64;
    println!(
        "-> per stream, client + server + stub: {:.0} KiB; the server's share is at most that, at least {:.0} KiB (that minus the direct phase's own growth, which reused memory the first phase freed)",
        s_growth / n,
        (s_growth - alone.peak.saturating_sub(alone.before) as f64) / n
    );
    let load_end = load_average();
    println!(
        "load average {load_end:.2} at the end{}",
        if load_start.max(load_end) > 1.0 {
            " (> 1: the cores were shared with other work)"
        } else {
            ""
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
