//! The drive against the real binary (`procs::Server`):
//!
//! - killed with SIGKILL between upload init and complete (before the PUT, after it, or in the
//!   middle of it) and started again: once the cleanup job has run, nothing is left — no
//!   reservation, no file, no object in the store (the files under `data_dir/blobs`, or the
//!   bucket's keys when `SC_TEST_S3_URL` is set). A PUT cut short leaves its temporary file,
//!   which the hourly sweep removes once it is over an hour old;
//! - a large file streamed up through the signed PUT URL and back down, generated and hashed on
//!   the fly on the client's side, while the server's resident memory is sampled: it stays flat.
//!
//! The binary gets no `SC_PUBLIC_URL`, so it signs its blob URLs for its own listener.

use super::procs::Server;
use crate::common::{JWT_SECRET, PASSWORD, Resp, Shared, TestUser, s3_keys, s3_of};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

const MIB: u64 = 1024 * 1024;
const ZIP: &str = "application/zip";

/// The binary's configuration: the backends of the tier (SQLite, or PostgreSQL and Redis),
/// the S3 bucket of `shared` when `s3` and there is one, and `extra`.
pub(super) fn env(shared: &Shared, s3: bool, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("SC_DATA_DIR", shared.data_dir.path().display().to_string()),
        ("SC_JWT_SECRET", JWT_SECRET.to_string()),
        ("SC_REDIS_KEY_PREFIX", shared.redis_prefix.clone()),
        ("SC_DATABASE_MAX_CONNECTIONS", "8".into()),
        ("SC_LOGIN_RATE_PER_IP_PER_MINUTE", "1000".into()),
        ("SC_AUTH_RATE_PER_IP_PER_MINUTE", "1000".into()),
        ("SC_SHUTDOWN_GRACE_SECONDS", "1".into()),
        ("SC_LOG_LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(db) = &shared.database_url {
        env.push(("SC_DATABASE_URL".into(), db.clone()));
    }
    if let Some(r) = &shared.redis_url {
        env.push(("SC_REDIS_URL".into(), r.clone()));
    }
    if s3 && let Some((url, bucket)) = &shared.s3 {
        let (key_id, secret) = s3_keys();
        env.extend(
            [
                ("SC_S3_ENDPOINT", url.clone()),
                ("SC_S3_BUCKET", bucket.clone()),
                ("SC_S3_REGION", "us-east-1".into()),
                ("SC_S3_ACCESS_KEY_ID", key_id),
                ("SC_S3_SECRET_ACCESS_KEY", secret),
                ("SC_S3_PATH_STYLE", "true".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// HTTP to one `Server` (its base stays the same across restarts).
pub(super) struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub(super) fn new(base: &str) -> Self {
        Api {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap(),
        }
    }

    pub(super) async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if !body.is_null() {
            req = req.json(&body);
        }
        Resp::from(req.send().await.expect("request sent")).await
    }

    pub(super) async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.org");
        let r = self
            .http
            .post(format!("{}/v1/auth/register", self.base))
            .json(&json!({"email": email, "username": name, "password": PASSWORD, "display_name": name}))
            .send()
            .await
            .unwrap();
        let r = Resp::from(r).await;
        TestUser::from_pair(r.assert_ok(201), &email)
    }

    async fn init(&self, u: &TestUser, name: &str, size: u64) -> Value {
        self.call(
            Method::POST,
            "/v1/files/uploads",
            &u.access,
            json!({"name": name, "size": size, "content_type": ZIP}),
        )
        .await
        .assert_ok(201)
        .clone()
    }

    async fn quota(&self, u: &TestUser) -> (i64, i64) {
        let r = self
            .call(Method::GET, "/v1/storage/quota", &u.access, Value::Null)
            .await;
        let q = r.assert_ok(200);
        (q["used"].as_i64().unwrap(), q["reserved"].as_i64().unwrap())
    }

    /// The PUT of an upload ticket, with every header it asks for.
    async fn put(&self, ticket: &Value, size: u64, body: reqwest::Body) -> reqwest::Result<u16> {
        let mut req = self
            .http
            .put(ticket["upload_url"].as_str().unwrap())
            .body(body);
        let mut has_length = false;
        for (k, v) in ticket["headers"].as_object().unwrap() {
            has_length |= k.eq_ignore_ascii_case("content-length");
            req = req.header(k, v.as_str().unwrap());
        }
        if !has_length {
            req = req.header("content-length", size.to_string());
        }
        Ok(req.send().await?.status().as_u16())
    }
}

/// A small ZIP-typed object: the local-file header, then filler.
fn zip_bytes(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    v[..4].copy_from_slice(b"PK\x03\x04");
    v
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

fn is_temp(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
}

/// What the store holds: `(objects, temporary files of writes in progress)` — the bucket's keys
/// on S3 (where a PUT is atomic), the files under `data_dir/blobs` on local disk.
async fn stored(shared: &Shared, on_s3: bool) -> (Vec<String>, Vec<String>) {
    if on_s3 {
        let s3 = s3_of(&shared.config()).expect("S3 configured");
        return (s3.list_keys("").await.unwrap(), vec![]);
    }
    let (temp, objects): (Vec<_>, Vec<_>) = files_under(&shared.data_dir.path().join("blobs"))
        .into_iter()
        .partition(|p| is_temp(p));
    let names = |v: Vec<PathBuf>| v.iter().map(|p| p.display().to_string()).collect();
    (names(objects), names(temp))
}

/// How far the upload's PUT got when the server is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PutState {
    /// The init answered; no byte sent.
    NotStarted,
    /// The PUT answered 200; complete not called.
    Stored,
    /// The PUT is streaming into the server (local disk only: on S3 the bytes never pass
    /// through the server).
    Streaming,
}

/// Init (reservation TTL 2 s, cleanup every second), `when` the server is killed with SIGKILL,
/// started again on the same data, and then nothing may be left once the cleanup has run.
async fn killed_mid_upload(name: &str, when: PutState) {
    let shared = Shared::new().await;
    let on_s3 = shared.s3.is_some() && when != PutState::Streaming;
    let logs = tempfile::tempdir().unwrap();
    let env = env(
        &shared,
        on_s3,
        &[
            ("SC_UPLOAD_RESERVATION_TTL_SECONDS", "2".into()),
            ("SC_DRIVE_CLEANUP_INTERVAL_SECONDS", "1".into()),
        ],
    );
    let mut server = Server::start(env, logs.path()).await;
    let api = Api::new(&server.base);
    let u = api.register(name).await;
    // Large enough that half of it is more than the server buffers before writing (1 MiB).
    let bytes = zip_bytes(8 * MIB as usize);
    let size = bytes.len() as u64;
    let ticket = api.init(&u, "half-done.zip", size).await;
    let id = ticket["file_id"].as_str().unwrap().to_string();
    assert_eq!(api.quota(&u).await, (0, size as i64));

    let mut stalled_put = None;
    match when {
        PutState::NotStarted => {}
        PutState::Stored => {
            let status = api.put(&ticket, size, bytes.into()).await.unwrap();
            assert_eq!(status, 200, "the PUT is stored");
            let (objects, temp) = stored(&shared, on_s3).await;
            assert_eq!((objects.len(), temp.len()), (1, 0), "{objects:?} {temp:?}");
        }
        PutState::Streaming => {
            // Half the bytes (more than the server buffers), then a body that never ends: the
            // server is writing when killed.
            let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
            let body = futures_util::stream::iter([Ok::<_, std::io::Error>(half)])
                .chain(futures_util::stream::pending());
            let (api2, t) = (Api::new(&server.base), ticket.clone());
            stalled_put = Some(tokio::spawn(async move {
                api2.put(&t, size, reqwest::Body::wrap_stream(body)).await
            }));
            let started = Instant::now();
            loop {
                let (_, temp) = stored(&shared, false).await;
                let written = temp
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum::<u64>();
                if written > 0 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the PUT never reached the disk"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    server.kill9();
    if let Some(put) = stalled_put {
        assert!(
            put.await.unwrap().is_err(),
            "the killed server cannot have answered the PUT"
        );
    }
    server.restart().await;
    let started = Instant::now();
    let left = loop {
        let q = api.quota(&u).await;
        let (objects, temp) = stored(&shared, on_s3).await;
        if q.1 == 0 && objects.is_empty() {
            break temp;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "after the restart and 20 s, quota (used, reserved) {q:?}, objects {objects:?}; logs: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{name}: cleaned up {} ms after the restart ({})",
        started.elapsed().as_millis(),
        if on_s3 { "S3 bucket" } else { "local disk" }
    );
    assert_eq!(api.quota(&u).await, (0, 0), "quota (used, reserved)");
    api.call(
        Method::GET,
        &format!("/v1/files/{id}"),
        &u.access,
        Value::Null,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let list = api
        .call(Method::GET, "/v1/files", &u.access, Value::Null)
        .await;
    assert_eq!(list.assert_ok(200)["items"], json!([]), "nothing listed");
    api.call(
        Method::POST,
        &format!("/v1/files/{id}/complete"),
        &u.access,
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    match when {
        PutState::Streaming => {
            // Not an object and not counted anywhere; the hourly sweep removes temporary files
            // older than an hour, so this one stays until then.
            assert!(left.len() <= 1, "one interrupted write at most: {left:?}");
            eprintln!(
                "{name}: temporary file(s) of the interrupted PUT still on disk: {}",
                left.len()
            );
        }
        _ => assert!(left.is_empty(), "temporary files left: {left:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_init_and_complete_leaves_no_orphan() {
    killed_mid_upload("killedafterput", PutState::Stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_init_and_put_leaves_no_orphan() {
    killed_mid_upload("killedbeforeput", PutState::NotStarted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_the_put_leaves_no_object() {
    killed_mid_upload("killedduringput", PutState::Streaming).await;
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The highest VmRSS of `pid`, sampled every 50 ms by a thread until `finish`.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssPeak {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssPeak { stop, peak, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// `SC_TEST_BIG_FILE_MIB`, else 1 GiB (about 8 s in a debug build here: PUT 3 s, complete 1 s,
/// download 3 s).
fn big_file_mib() -> u64 {
    std::env::var("SC_TEST_BIG_FILE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1024)
}

/// Chunk `i` of the big file: 1 MiB of pseudo-random bytes (a ZIP header at the very start).
fn big_chunk(pattern: &Bytes, first: &Bytes, size: u64, i: u64) -> Bytes {
    let len = (size - i * MIB).min(MIB) as usize;
    if i == 0 {
        first.slice(..len)
    } else {
        pattern.slice(..len)
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_while_a_large_file_streams() {
    let mib = big_file_mib();
    let size = mib * MIB;
    let shared = Shared::new().await;
    let logs = tempfile::tempdir().unwrap();
    let env = env(
        &shared,
        false,
        &[
            ("SC_MAX_FILE_SIZE_BYTES", size.to_string()),
            ("SC_DEFAULT_QUOTA_BYTES", (2 * size).to_string()),
            ("SC_UPLOAD_RESERVATION_TTL_SECONDS", "3600".into()),
        ],
    );
    let server = Server::start(env, logs.path()).await;
    let pid = server.pid().unwrap();
    let api = Api::new(&server.base);
    let u = api.register("bigstreamer").await;

    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut v: Vec<u8> = (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let pattern = Bytes::from(v.clone());
    v[..4].copy_from_slice(b"PK\x03\x04");
    let first = Bytes::from(v);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(pid);
    let started = Instant::now();
    let rss = RssPeak::start(pid);
    let ticket = api.init(&u, "big.zip", size).await;
    let id = ticket["file_id"].as_str().unwrap().to_string();
    // Generated and hashed as it goes: the client never holds more than a chunk either.
    let sent = Arc::new(Mutex::new(sha2::Sha256::new()));
    let hasher = sent.clone();
    let body = futures_util::stream::iter(0..size.div_ceil(MIB)).map(move |i| {
        let c = big_chunk(&pattern, &first, size, i);
        hasher.lock().unwrap().update(&c);
        Ok::<_, std::io::Error>(c)
    });
    let status = api
        .put(&ticket, size, reqwest::Body::wrap_stream(body))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let put_done = started.elapsed();
    let file = api
        .call(
            Method::POST,
            &format!("/v1/files/{id}/complete"),
            &u.access,
            json!({}),
        )
        .await;
    let file = file.assert_ok(200).clone();
    let up_done = started.elapsed();
    let up_peak = rss.finish();
    let sent = hex(&sent.lock().unwrap().clone().finalize());
    assert_eq!(file["sha256"], sent.as_str(), "the server's hash is ours");
    assert_eq!(file["size"], size);

    let rss = RssPeak::start(pid);
    let down_started = Instant::now();
    let link = api
        .call(
            Method::GET,
            &format!("/v1/files/{id}/download"),
            &u.access,
            Value::Null,
        )
        .await;
    let url = link.assert_ok(200)["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut received = sha2::Sha256::new();
    let mut got = 0u64;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        got += chunk.len() as u64;
        received.update(&chunk);
    }
    let down_took = down_started.elapsed();
    let down_peak = rss.finish();
    assert_eq!(got, size);
    assert_eq!(
        hex(&received.finalize()),
        sent,
        "the bytes come back as sent"
    );

    let mib_f = |kib: u64| kib as f64 / 1024.0;
    let rate = |d: Duration| mib as f64 / d.as_secs_f64();
    eprintln!(
        "memory_stays_flat: {mib} MiB; idle RSS {:.1} MiB; peak above idle: upload {:.1} MiB, download {:.1} MiB; \
         PUT {:.1} s ({:.0} MiB/s), complete {:.1} s, download {:.1} s ({:.0} MiB/s)",
        mib_f(idle),
        mib_f(up_peak.saturating_sub(idle)),
        mib_f(down_peak.saturating_sub(idle)),
        put_done.as_secs_f64(),
        rate(put_done),
        (up_done - put_done).as_secs_f64(),
        down_took.as_secs_f64(),
        rate(down_took),
    );
    let limit = 64 * 1024;
    assert!(
        up_peak.saturating_sub(idle) < limit,
        "upload: peak RSS {:.1} MiB, {:.1} MiB above idle",
        mib_f(up_peak),
        mib_f(up_peak.saturating_sub(idle))
    );
    assert!(
        down_peak.saturating_sub(idle) < limit,
        "download: peak RSS {:.1} MiB, {:.1} MiB above idle",
        mib_f(down_peak),
        mib_f(down_peak.saturating_sub(idle))
    );
    drop(server);
}

/// A PUT that starts while its URL is valid but ends after the cleanup job abandoned its upload
/// (reservation TTL plus one cleanup interval): the abandon queued the deletion of an object
/// that did not exist yet. The store then finds no pending upload for what it received, deletes
/// it and answers 409, so nothing is left behind. (Local disk: on S3 the store answers the PUT
/// itself; see docs/operations.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_put_finishing_after_the_reservation_lapsed_leaves_no_orphan() {
    let shared = Shared::new().await;
    let logs = tempfile::tempdir().unwrap();
    let env = env(
        &shared,
        false,
        &[
            ("SC_UPLOAD_RESERVATION_TTL_SECONDS", "2".into()),
            ("SC_DRIVE_CLEANUP_INTERVAL_SECONDS", "1".into()),
        ],
    );
    let server = Server::start(env, logs.path()).await;
    let api = Api::new(&server.base);
    let u = api.register("slowput").await;
    let bytes = zip_bytes(MIB as usize);
    let size = bytes.len() as u64;
    let ticket = api.init(&u, "slow.zip", size).await;
    let id = ticket["file_id"].as_str().unwrap().to_string();
    // Half at once, the rest after 6 s: the upload is abandoned (2 s + 1 s) while it streams.
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    let rest = Bytes::from(bytes[bytes.len() / 2..].to_vec());
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
        futures_util::stream::once(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            Ok(rest)
        }),
    );
    let status = api
        .put(&ticket, size, reqwest::Body::wrap_stream(body))
        .await
        .unwrap();
    assert_eq!(status, 409, "the late PUT is refused");
    // Several cleanup passes later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.quota(&u).await, (0, 0), "the reservation is given back");
    api.call(
        Method::GET,
        &format!("/v1/files/{id}"),
        &u.access,
        Value::Null,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let (objects, temp) = stored(&shared, false).await;
    assert!(
        objects.is_empty() && temp.is_empty(),
        "the PUT answered {status}; objects {objects:?} and temporary files {temp:?} belong to no file"
    );
}
