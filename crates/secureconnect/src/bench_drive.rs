//! `secureconnect bench drive`: drive transfers through the API against what the machine does
//! without it, measured in the same run.
//!
//! - **Local disk**: one large file uploaded (init + PUT to the signed URL, which the store
//!   hashes while it writes, + complete) and downloaded (download link + GET) through an in-process server, against
//!   `dd` writing (`conv=fsync`, as the server fsyncs each object) and reading the same number of
//!   bytes in the same directory. The page cache of both files is dropped before each read.
//!   The server's resident memory above idle is sampled while the file goes through.
//! - **S3** (with `--s3-endpoint` or `SC_S3_ENDPOINT`): N files PUT straight to a presigned URL
//!   made by the server's own S3 adapter (plain, and signing the payload's
//!   `x-amz-checksum-sha256`), against the whole flow init + PUT + complete with and without a
//!   declared sha256.

use crate::App;
use crate::bench::{rss_kib, tempfile_dir};
use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use sc_core::{config::Config, secret::Secret, time::Timestamp};
use sc_infra::blobs::{BlobKey, S3Blobs, S3Settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
/// Size of the chunks the client sends (and of the repeated pattern they carry).
const CHUNK: usize = 1024 * 1024;
/// The type the files are declared as: a ZIP local-file header, then anything.
const ZIP: &str = "application/zip";
const PASSWORD: &str = "tangerine-violin-42";

#[derive(clap::Args)]
pub struct DriveArgs {
    /// Size of the file of the local-disk measurements, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Rounds of the local-disk measurements; the best figure of each side counts.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Where the data dir and the dd file go (a new directory below it; default: the system's
    /// temporary directory). The disk under it is the disk measured.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave out the local-disk part.
    #[arg(long)]
    no_local: bool,
    /// S3-compatible endpoint (e.g. http://127.0.0.1:8014); without it the S3 part is skipped.
    #[arg(long, alias = "s3-url", env = "SC_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Bucket to use; default: a new bucket `sc-bench-<uuid>` is created.
    #[arg(long, env = "SC_S3_BUCKET")]
    s3_bucket: Option<String>,
    #[arg(long, env = "SC_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "SC_S3_ACCESS_KEY_ID")]
    s3_access_key_id: Option<String>,
    #[arg(long, env = "SC_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`; s3s-fs and most local stores need it).
    #[arg(long, env = "SC_S3_PATH_STYLE", action = clap::ArgAction::Set, default_value_t = false)]
    s3_path_style: bool,
    /// Files of the S3 measurement.
    #[arg(long, default_value_t = 20)]
    s3_files: usize,
    /// Size of each of them, in MiB.
    #[arg(long, default_value_t = 10)]
    s3_file_mib: u64,
}

pub async fn drive(a: DriveArgs) -> anyhow::Result<()> {
    if a.size_mib == 0 || a.s3_file_mib == 0 || a.rounds == 0 {
        bail!("--size-mib, --s3-file-mib and --rounds must be at least 1");
    }
    let dir = match &a.dir {
        Some(d) => {
            let d = d.join(format!("sc-bench-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tempfile_dir()?,
    };
    println!("{}", machine(&dir));
    let res = async {
        if !a.no_local {
            local(&a, &dir).await?;
        }
        match &a.s3_endpoint {
            Some(endpoint) => s3(&a, endpoint, &dir.join("s3-data")).await?,
            None => println!("\nS3: skipped (no --s3-endpoint / SC_S3_ENDPOINT)"),
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    res
}

// --- the machine ---

fn machine(dir: &Path) -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    let (device, fs) = mount_of(dir);
    format!(
        "machine: {cores} cores, {model} ({}), {mem_gib:.0} GiB; disk of {}: {device} ({fs})",
        std::env::consts::ARCH,
        dir.display()
    )
}

/// The device and file-system type of the mount holding `dir` (longest mount-point prefix).
fn mount_of(dir: &Path) -> (String, String) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let point = Path::new(f[1]);
        if dir.starts_with(point) && best.as_ref().is_none_or(|b| f[1].len() > b.0) {
            best = Some((f[1].len(), f[0].to_string(), f[2].to_string()));
        }
    }
    best.map_or(("unknown".into(), "unknown".into()), |(_, d, t)| (d, t))
}

// --- memory ---

/// The highest RSS seen by a thread sampling every 20 ms until `finish`.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssPeak {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, peak, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed).max(rss_kib())
    }
}

// --- the bytes ---

/// `size` bytes made on the fly: 1 MiB of pseudo-random bytes repeated, the first chunk starting
/// with a ZIP local-file header. Chunks are shared `Bytes`, so sending costs no copy.
#[derive(Clone)]
struct Payload {
    first: Bytes,
    rest: Bytes,
    size: u64,
}

impl Payload {
    fn new(size: u64) -> Self {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut v: Vec<u8> = (0..CHUNK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let rest = Bytes::from(v.clone());
        v[..4].copy_from_slice(b"PK\x03\x04");
        Self {
            first: Bytes::from(v),
            rest,
            size,
        }
    }

    fn chunks(&self) -> u64 {
        self.size.div_ceil(CHUNK as u64)
    }

    fn chunk(&self, i: u64) -> Bytes {
        let len = (self.size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        if i == 0 {
            self.first.slice(..len)
        } else {
            self.rest.slice(..len)
        }
    }

    fn stream(&self) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let p = self.clone();
        futures_util::stream::iter((0..p.chunks()).map(move |i| Ok(p.chunk(i))))
    }

    /// The whole payload in one buffer (for the small S3 files).
    fn contiguous(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.size as usize);
        for i in 0..self.chunks() {
            v.extend_from_slice(&self.chunk(i));
        }
        Bytes::from(v)
    }

    /// Whether `buf`, found at `offset` of a download, holds the bytes sent there.
    fn matches(&self, mut offset: u64, mut buf: &[u8]) -> bool {
        while !buf.is_empty() {
            let i = offset / CHUNK as u64;
            if i >= self.chunks() {
                return false;
            }
            let chunk = self.chunk(i);
            let at = (offset % CHUNK as u64) as usize;
            let n = (chunk.len() - at).min(buf.len());
            if chunk[at..at + n] != buf[..n] {
                return false;
            }
            buf = &buf[n..];
            offset += n as u64;
        }
        true
    }

    /// SHA-256 (hex) of the payload, streamed through `sha256sum` before anything is timed.
    async fn sha256(&self) -> anyhow::Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("sha256sum (coreutils) is needed to check the server's hash")?;
        let mut stdin = child.stdin.take().context("sha256sum stdin")?;
        for i in 0..self.chunks() {
            stdin.write_all(&self.chunk(i)).await?;
        }
        drop(stdin);
        let out = child.wait_with_output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string())
    }
}

// --- the server and its API ---

struct Server {
    base: String,
    client: reqwest::Client,
    token: String,
}

async fn start(data_dir: &Path, tune: impl FnOnce(&mut Config)) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let mut cfg = Config {
        listen: addr,
        data_dir: data_dir.to_path_buf(),
        // The local store signs its URLs against public_url: this very listener.
        public_url: base.clone(),
        login_rate_per_ip_per_minute: u32::MAX,
        auth_rate_per_ip_per_minute: u32::MAX,
        api_rate_per_user_per_minute: u32::MAX,
        api_rate_per_ip_per_minute: u32::MAX,
        ws_connects_per_ip_per_minute: u32::MAX,
        // Complete hashes the whole object within the request.
        request_timeout_seconds: 600,
        upload_reservation_ttl_seconds: 3600,
        log_level: "warn".into(),
        ..Config::default()
    };
    tune(&mut cfg);
    let app = App::build(cfg).await?;
    tokio::spawn(app.serve(listener, std::future::pending()));
    let client = reqwest::Client::builder().build()?;
    let r: Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": "drive@bench.example", "username": "drivebench", "password": PASSWORD, "display_name": "Drive bench"}))
        .send()
        .await?
        .json()
        .await?;
    let token = r["data"]["access_token"]
        .as_str()
        .with_context(|| format!("register: {r}"))?
        .to_string();
    Ok(Server {
        base,
        client,
        token,
    })
}

impl Server {
    /// An enveloped API call: its `data`, or the error it answered.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() || v["success"] != true {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v["data"].clone())
    }

    async fn init(&self, name: &str, size: u64) -> anyhow::Result<Value> {
        self.init_declared(name, size, None).await
    }

    /// An upload init, declaring the payload's SHA-256 when given.
    async fn init_declared(
        &self,
        name: &str,
        size: u64,
        sha256: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut body = json!({"name": name, "size": size, "content_type": ZIP});
        if let Some(h) = sha256 {
            body["sha256"] = json!(h);
        }
        self.call(Method::POST, "/v1/files/uploads", Some(body))
            .await
    }

    async fn complete(&self, id: &str) -> anyhow::Result<Value> {
        self.call(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(json!({})),
        )
        .await
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.call(Method::DELETE, &format!("/v1/files/{id}"), None)
            .await
            .map(drop)
    }
}

/// PUTs `body` (`size` bytes) to a signed or presigned URL with the headers it asks for.
async fn put(
    client: &reqwest::Client,
    url: &str,
    headers: &serde_json::Map<String, Value>,
    size: u64,
    body: reqwest::Body,
) -> anyhow::Result<()> {
    let mut req = client.put(url).body(body);
    let mut has_length = false;
    for (k, v) in headers {
        has_length |= k.eq_ignore_ascii_case("content-length");
        req = req.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    if !has_length {
        req = req.header("content-length", size.to_string());
    }
    let r = req.send().await?;
    if !r.status().is_success() {
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        bail!(
            "PUT: {status} {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

fn ticket_parts(t: &Value) -> anyhow::Result<(String, String, serde_json::Map<String, Value>)> {
    let id = t["file_id"].as_str().context("file_id")?.to_string();
    let url = t["upload_url"].as_str().context("upload_url")?.to_string();
    let headers = t["headers"].as_object().cloned().unwrap_or_default();
    Ok((id, url, headers))
}

// --- local disk ---

/// How read caches are emptied: the whole page cache when this process may, else each file's
/// own pages (`dd iflag=nocache count=0`: POSIX_FADV_DONTNEED over the file, no root needed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheDrop {
    Global,
    PerFile,
}

impl CacheDrop {
    fn detect() -> Self {
        if std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok() {
            CacheDrop::Global
        } else {
            CacheDrop::PerFile
        }
    }

    async fn drop_files(self, files: &[PathBuf]) -> anyhow::Result<()> {
        if self == CacheDrop::Global {
            let _ = tokio::process::Command::new("sync").status().await;
            std::fs::write("/proc/sys/vm/drop_caches", "3")?;
            return Ok(());
        }
        for f in files {
            let mut arg = std::ffi::OsString::from("if=");
            arg.push(f);
            dd(&[arg, "iflag=nocache".into(), "count=0".into()]).await?;
        }
        Ok(())
    }
}

async fn dd(args: &[std::ffi::OsString]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = tokio::process::Command::new("dd")
        .args(args)
        .arg("status=none")
        .output()
        .await
        .context("dd")?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!("dd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

struct Round {
    dd_write: Duration,
    dd_read: Duration,
    init: Duration,
    put: Duration,
    complete: Duration,
    download: Duration,
    up_rss_kib: u64,
    down_rss_kib: u64,
}

impl Round {
    fn upload(&self) -> Duration {
        self.init + self.put + self.complete
    }
}

async fn local(a: &DriveArgs, dir: &Path) -> anyhow::Result<()> {
    let size = a.size_mib * MIB;
    let data = dir.join("data");
    let srv = start(&data, |c| {
        c.max_file_size_bytes = size;
        c.default_quota_bytes = size * 4;
        // Deleted rounds' objects go soon.
        c.drive_cleanup_interval_seconds = 1;
    })
    .await?;
    let payload = Payload::new(size);
    let expected_sha = payload.sha256().await?;
    let caches = CacheDrop::detect();
    println!(
        "\nlocal disk: {} MiB, {} round(s); read caches dropped {}",
        a.size_mib,
        a.rounds,
        match caches {
            CacheDrop::Global => "globally (/proc/sys/vm/drop_caches)",
            CacheDrop::PerFile =>
                "per file (dd iflag=nocache count=0; /proc/sys/vm/drop_caches is not writable)",
        }
    );
    let dd_file = dir.join("dd.bin");
    let mut dd_of = std::ffi::OsString::from("of=");
    dd_of.push(&dd_file);
    let mut dd_if = std::ffi::OsString::from("if=");
    dd_if.push(&dd_file);
    let mut rounds = Vec::new();
    for round in 0..a.rounds {
        // dd: the same bytes written and fsynced once at the end (as the server does), then read.
        let dd_write = dd(&[
            "if=/dev/zero".into(),
            dd_of.clone(),
            "bs=1M".into(),
            format!("count={}", a.size_mib).into(),
            "conv=fsync".into(),
        ])
        .await?;
        caches.drop_files(std::slice::from_ref(&dd_file)).await?;
        let dd_read = dd(&[dd_if.clone(), "of=/dev/null".into(), "bs=1M".into()]).await?;
        std::fs::remove_file(&dd_file)?;
        tokio::time::sleep(Duration::from_secs(1)).await;

        // The API: init, PUT to the signed URL (hashed as it is written), complete.
        let idle = rss_kib();
        let rss = RssPeak::start();
        let t = Instant::now();
        let ticket = srv.init(&format!("big-{round}.zip"), size).await?;
        let init = t.elapsed();
        let (id, url, headers) = ticket_parts(&ticket)?;
        let t = Instant::now();
        put(
            &srv.client,
            &url,
            &headers,
            size,
            reqwest::Body::wrap_stream(payload.stream()),
        )
        .await?;
        let put_took = t.elapsed();
        let t = Instant::now();
        let file = srv.complete(&id).await?;
        let complete = t.elapsed();
        let up_rss_kib = rss.finish().saturating_sub(idle);
        if file["sha256"] != expected_sha.as_str() {
            bail!(
                "the server's sha256 {} is not the payload's {expected_sha}",
                file["sha256"]
            );
        }

        caches.drop_files(&files_under(&data.join("blobs"))).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_kib();
        let rss = RssPeak::start();
        let t = Instant::now();
        let link = srv
            .call(Method::GET, &format!("/v1/files/{id}/download"), None)
            .await?;
        let url = link["download_url"].as_str().context("download_url")?;
        let r = srv.client.get(url).send().await?;
        if !r.status().is_success() {
            bail!("download: {}", r.status());
        }
        let mut body = r.bytes_stream();
        let mut got: u64 = 0;
        let mut same = true;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            same &= payload.matches(got, &chunk);
            got += chunk.len() as u64;
        }
        let download = t.elapsed();
        let down_rss_kib = rss.finish().saturating_sub(idle);
        if got != size || !same {
            bail!("the download differs from the upload ({got} of {size} bytes)");
        }
        srv.delete(&id).await?;
        let r = Round {
            dd_write,
            dd_read,
            init,
            put: put_took,
            complete,
            download,
            up_rss_kib,
            down_rss_kib,
        };
        println!(
            "  round {}: dd write {:.0} MiB/s, read {:.0} MiB/s | API upload {:.0} MiB/s (init {:.1} ms, PUT {:.2} s, complete {:.2} s), download {:.0} MiB/s | RSS above idle: up {:.1} MiB, down {:.1} MiB",
            round + 1,
            mib_s(size, r.dd_write),
            mib_s(size, r.dd_read),
            mib_s(size, r.upload()),
            r.init.as_secs_f64() * 1000.0,
            r.put.as_secs_f64(),
            r.complete.as_secs_f64(),
            mib_s(size, r.download),
            r.up_rss_kib as f64 / 1024.0,
            r.down_rss_kib as f64 / 1024.0,
        );
        rounds.push(r);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let best = |f: &dyn Fn(&Round) -> Duration| rounds.iter().map(f).min().unwrap_or_default();
    let (dd_w, dd_r) = (best(&|r| r.dd_write), best(&|r| r.dd_read));
    let (up, put_only, down) = (
        best(&|r| r.upload()),
        best(&|r| r.put),
        best(&|r| r.download),
    );
    let peak_up = rounds.iter().map(|r| r.up_rss_kib).max().unwrap_or(0);
    let peak_down = rounds.iter().map(|r| r.down_rss_kib).max().unwrap_or(0);
    println!("\n| direction | dd | API | API / dd |");
    println!("|---|---|---|---|");
    println!(
        "| up (dd conv=fsync vs init + PUT + complete) | {:.0} MiB/s | {:.0} MiB/s (PUT alone {:.0} MiB/s) | **{:.2}** (target >= 0.7) |",
        mib_s(size, dd_w),
        mib_s(size, up),
        mib_s(size, put_only),
        dd_w.as_secs_f64() / up.as_secs_f64()
    );
    println!(
        "| down (dd read vs download link + GET) | {:.0} MiB/s | {:.0} MiB/s | **{:.2}** (target >= 0.7) |",
        mib_s(size, dd_r),
        mib_s(size, down),
        dd_r.as_secs_f64() / down.as_secs_f64()
    );
    println!(
        "peak RSS above idle (server and its client, one process): upload {:.1} MiB, download {:.1} MiB (target < 64 MiB)",
        peak_up as f64 / 1024.0,
        peak_down as f64 / 1024.0
    );
    Ok(())
}

// --- S3 ---

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn s3(a: &DriveArgs, endpoint: &str, data_dir: &Path) -> anyhow::Result<()> {
    let access_key_id = a
        .s3_access_key_id
        .clone()
        .context("--s3-access-key-id / SC_S3_ACCESS_KEY_ID is needed with an S3 endpoint")?;
    let secret = a.s3_secret_access_key.clone().context(
        "--s3-secret-access-key / SC_S3_SECRET_ACCESS_KEY is needed with an S3 endpoint",
    )?;
    let bucket = a
        .s3_bucket
        .clone()
        .unwrap_or_else(|| format!("sc-bench-{}", uuid::Uuid::new_v4().simple()));
    let settings = S3Settings {
        endpoint: endpoint.to_string(),
        public_endpoint: None,
        region: a.s3_region.clone(),
        bucket: bucket.clone(),
        access_key_id: access_key_id.clone(),
        secret_access_key: Secret::new(secret.clone()),
        path_style: a.s3_path_style,
    };
    let store = S3Blobs::new(settings)?;
    if a.s3_bucket.is_none() {
        store
            .create_bucket()
            .await
            .map_err(|e| anyhow::anyhow!("create bucket {bucket}: {e}"))?;
    }
    let size = a.s3_file_mib * MIB;
    let srv = start(data_dir, |c| {
        c.s3_endpoint = Some(endpoint.to_string());
        c.s3_region = a.s3_region.clone();
        c.s3_bucket = Some(bucket.clone());
        c.s3_access_key_id = Some(access_key_id.clone());
        c.s3_secret_access_key = Some(Secret::new(secret.clone()));
        c.s3_path_style = a.s3_path_style;
        c.max_file_size_bytes = size;
        c.default_quota_bytes = size * (2 * a.s3_files as u64 + 6);
    })
    .await?;
    println!(
        "\nS3 at {endpoint} (bucket {bucket}): {} files of {} MiB, one at a time, direct and full flow alternating",
        a.s3_files, a.s3_file_mib
    );
    let payload = Payload::new(size);
    let digest = payload.sha256().await?;
    let body = payload.contiguous();
    // Four sides, their order rotated every pass: a plain presigned PUT (the baseline), the same
    // PUT signing the payload's x-amz-checksum-sha256 (what a client that wants the store to
    // verify its bytes pays without this server), and the whole flow with and without a
    // declared sha256.
    const SIDES: usize = 4;
    let mut took: [Vec<Duration>; SIDES] = Default::default();
    // Per flow (declared, undeclared): init, PUT, complete.
    let mut parts: [[Vec<Duration>; 3]; 2] = Default::default();
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let later = || Timestamp(Timestamp::now().millis() + 600_000);
    // One unmeasured pass of each warms the connections.
    for i in 0..=a.s3_files {
        for side in (0..SIDES).map(|k| (k + i) % SIDES) {
            let t = Instant::now();
            if side < 2 {
                let key = BlobKey::new_random();
                let declared = (side == 1).then_some(digest.as_str());
                let target = store.upload_target(&key, size, ZIP, declared, later());
                let headers: serde_json::Map<String, Value> = target
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                let t = Instant::now();
                put(
                    &srv.client,
                    &target.url,
                    &headers,
                    size,
                    reqwest::Body::from(body.clone()),
                )
                .await
                .context("direct presigned PUT")?;
                if i > 0 {
                    took[side].push(t.elapsed());
                }
                keys.push(key);
                continue;
            }
            let declared = (side == 2).then_some(digest.as_str());
            let ticket = srv
                .init_declared(&format!("s3-{i}-{side}.zip"), size, declared)
                .await?;
            let t_init = t.elapsed();
            let (id, url, headers) = ticket_parts(&ticket)?;
            let t2 = Instant::now();
            put(
                &srv.client,
                &url,
                &headers,
                size,
                reqwest::Body::from(body.clone()),
            )
            .await
            .context("PUT to the upload URL")?;
            let t_put = t2.elapsed();
            let t3 = Instant::now();
            let file = srv.complete(&id).await?;
            let t_complete = t3.elapsed();
            if file["sha256"] != digest.as_str() {
                bail!(
                    "the server's sha256 {} is not the payload's {digest}",
                    file["sha256"]
                );
            }
            if i > 0 {
                took[side].push(t.elapsed());
                for (v, d) in parts[side - 2].iter_mut().zip([t_init, t_put, t_complete]) {
                    v.push(d);
                }
            }
            ids.push(id);
        }
    }
    for k in &keys {
        let _ = store.delete(k).await;
    }
    for id in &ids {
        let _ = srv.delete(id).await;
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
    for v in took.iter_mut().chain(parts.iter_mut().flatten()) {
        v.sort_unstable();
    }
    println!("\n| per file | mean | p50 | max |");
    println!("|---|---|---|---|");
    let [direct, direct_sum, declared, undeclared] = &took;
    let [dp, up] = &parts;
    for (name, v) in [
        ("direct presigned PUT", direct),
        (
            "direct presigned PUT with x-amz-checksum-sha256",
            direct_sum,
        ),
        ("init + PUT + complete, sha256 declared", declared),
        ("  of which init", &dp[0]),
        ("  of which PUT", &dp[1]),
        ("  of which complete", &dp[2]),
        ("init + PUT + complete, no sha256 declared", undeclared),
        ("  of which init", &up[0]),
        ("  of which PUT", &up[1]),
        ("  of which complete", &up[2]),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            ms(mean(v)),
            ms(pct(v, 0.5)),
            ms(pct(v, 1.0))
        );
    }
    let over = |f: &[Duration], d: &[Duration]| {
        (
            (mean(f).as_secs_f64() / mean(d).as_secs_f64() - 1.0) * 100.0,
            (pct(f, 0.5).as_secs_f64() / pct(d, 0.5).as_secs_f64() - 1.0) * 100.0,
        )
    };
    for (name, f, d) in [
        ("sha256 declared, vs the plain PUT", declared, direct),
        (
            "sha256 declared, vs the PUT with the same checksum",
            declared,
            direct_sum,
        ),
        ("no sha256 declared, vs the plain PUT", undeclared, direct),
    ] {
        let (m, p) = over(f, d);
        println!(
            "overhead of the full flow, {name}: mean {m:+.1} %, p50 {p:+.1} % (target <= 10 %)"
        );
    }
    Ok(())
}
