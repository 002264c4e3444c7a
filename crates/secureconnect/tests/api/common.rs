//! The test harness: starts real SecureConnect instances on random ports (in this process) and
//! talks HTTP to them. Backends come from the environment: SQLite and in-process by default;
//! `SC_TEST_PG_URL` / `SC_TEST_REDIS_URL` switch every test to PostgreSQL / Redis. With
//! `SC_TEST_REQUIRE_ALL=1` (CI) a missing backend is a failure, never a skip.

#![allow(dead_code)]

use reqwest::{Method, StatusCode, header::HeaderMap};
use sc_core::{config::Config, secret::Secret};
use secureconnect::App;
use serde_json::{Value, json};
use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "tangerine-violin-42";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

/// Every log line of every in-process instance, for the secret scans.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).to_string()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = BufWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn require_all() -> bool {
    std::env::var("SC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

pub fn pg_url() -> Option<String> {
    std::env::var("SC_TEST_PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("SC_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Checks CI's promise that the distributed backends are present.
pub fn assert_required_backends() {
    if require_all() {
        assert!(
            pg_url().is_some(),
            "SC_TEST_REQUIRE_ALL=1 but SC_TEST_PG_URL is not set"
        );
        assert!(
            redis_url().is_some(),
            "SC_TEST_REQUIRE_ALL=1 but SC_TEST_REDIS_URL is not set"
        );
    }
}

/// A fresh, empty PostgreSQL database for one test (cluster).
async fn fresh_pg_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("sc_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("SC_TEST_PG_URL must be reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (head, _) = base
        .rsplit_once('/')
        .expect("SC_TEST_PG_URL needs a database path");
    let query = base
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{head}/{name}{query}")
}

/// Configuration shared by the instances of one test: same database, secrets and Redis prefix.
pub struct Shared {
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
}

impl Shared {
    pub async fn new() -> Self {
        assert_required_backends();
        let database_url = match pg_url() {
            Some(base) => Some(fresh_pg_database(&base).await),
            None => None,
        };
        Self {
            data_dir: tempfile::tempdir().unwrap(),
            database_url,
            redis_url: redis_url(),
            redis_prefix: format!("sctest:{}:", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn config(&self) -> Config {
        let mut cfg = Config::default();
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.data_dir = self.data_dir.path().to_path_buf();
        cfg.public_url = "http://sc.test".into();
        cfg.database_url = self.database_url.clone().map(Secret::new);
        cfg.redis_url = self.redis_url.clone().map(Secret::new);
        cfg.redis_key_prefix = self.redis_prefix.clone();
        cfg.jwt_secret = Some(Secret::new(JWT_SECRET));
        cfg.database_max_connections = 8;
        cfg.login_rate_per_ip_per_minute = 1000;
        cfg.auth_rate_per_ip_per_minute = 1000;
        cfg.shutdown_grace_seconds = 2;
        cfg
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub cfg: Config,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _shared: Option<Arc<Shared>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut Config)) -> TestApp {
        let shared = Arc::new(Shared::new().await);
        let mut cfg = shared.config();
        f(&mut cfg);
        Self::start(cfg, Some(shared)).await
    }

    /// `n` instances sharing one database, secrets and Redis namespace.
    pub async fn spawn_cluster(n: usize, f: impl Fn(&mut Config)) -> Vec<TestApp> {
        let shared = Arc::new(Shared::new().await);
        let mut apps = Vec::new();
        for _ in 0..n {
            let mut cfg = shared.config();
            f(&mut cfg);
            apps.push(Self::start(cfg, Some(shared.clone())).await);
        }
        apps
    }

    pub async fn start(cfg: Config, shared: Option<Arc<Shared>>) -> TestApp {
        log_buffer();
        let listener = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = App::build(cfg.clone()).await.expect("app builds");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            cfg,
            stop: Some(tx),
            handle: Some(handle),
            _shared: shared,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; a `body` of `Value::Null` sends none.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_null() {
            req = req.json(&body);
        }
        Resp::from(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, Value::Null).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, body).await
    }

    /// Registers a user named `name` with the default password.
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.org");
        let r = self
            .post("/v1/auth/register", None, json!({"email": email, "username": name, "password": PASSWORD, "display_name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register {name}: {}", r.body);
        TestUser::from_pair(&r.body["data"], &email)
    }

    pub async fn login(&self, name: &str) -> Resp {
        self.post(
            "/v1/auth/login",
            None,
            json!({"username": name, "password": PASSWORD}),
        )
        .await
    }

    pub fn outbox(&self) -> PathBuf {
        self.cfg.data_dir.join("outbox")
    }

    /// Waits for a mail in `dir` to `to` whose text contains `needle`; returns its text.
    pub async fn wait_for_mail(&self, to: &str, needle: &str) -> String {
        wait_for_mail_in(&self.outbox(), to, needle).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub async fn wait_for_mail_in(dir: &Path, to: &str, needle: &str) -> String {
    for _ in 0..200 {
        if let Some(m) = mails_in(dir)
            .into_iter()
            .find(|m| m.contains(to) && m.contains(needle))
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {to} containing {needle:?} in {}", dir.display());
}

pub fn mails_in(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<_> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_string_lossy().ends_with(".eml")
                && !e.file_name().to_string_lossy().starts_with('.')
        })
        .collect();
    files.sort_by_key(|e| e.file_name());
    files
        .iter()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|m| unfold(&m))
        .collect()
}

/// Undoes quoted-printable soft line breaks so tokens can be found in mail bodies.
fn unfold(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// Extracts `?token=…` from a mail.
pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("mail has a token") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.body["success"], false, "body: {}", self.text);
        assert_eq!(self.code(), code, "body: {}", self.text);
        assert!(
            self.body["meta"]["request_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "meta.request_id: {}",
            self.text
        );
        self
    }

    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.body["success"], true, "body: {}", self.text);
        &self.body["data"]
    }
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl TestUser {
    pub fn from_pair(data: &Value, email: &str) -> Self {
        TestUser {
            id: data["user"]["id"].as_str().unwrap().into(),
            username: data["user"]["username"].as_str().unwrap().into(),
            email: email.into(),
            access: data["access_token"].as_str().unwrap().into(),
            refresh: data["refresh_token"].as_str().unwrap().into(),
            session_id: data["session_id"].as_str().unwrap().into(),
        }
    }
}

/// A real SMTP listener (Python aiosmtpd) on a free port, writing mails into a directory.
pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd is needed (pip install aiosmtpd)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "smtp sink did not start (is aiosmtpd installed?)"
        );
        SmtpSink { port, dir, child }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private redis-server on its own port (tests kill and restart it).
pub struct OwnRedis {
    pub port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    pub fn start(port: u16) -> Option<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(OwnRedis { port, child });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts one, or — when redis-server is missing — fails in CI and tells the caller to skip.
    pub fn start_or_skip() -> Option<OwnRedis> {
        let r = Self::start(free_port());
        if r.is_none() {
            assert!(!require_all(), "redis-server is required in CI");
            eprintln!("skipping: redis-server not installed");
        }
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of the realtime API.
pub struct Ws {
    pub stream: WsStream,
}

impl TestApp {
    pub async fn ticket(&self, user: &TestUser) -> String {
        let r = self
            .post("/v1/realtime/ticket", Some(&user.access), Value::Null)
            .await;
        r.assert_ok(200)["ticket"].as_str().unwrap().to_string()
    }

    /// Opens a socket for the user's session and waits for `ready`.
    pub async fn ws(&self, user: &TestUser) -> Ws {
        let ticket = self.ticket(user).await;
        let url = format!(
            "{}/v1/realtime?ticket={ticket}",
            self.base.replace("http://", "ws://")
        );
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut ws = Ws { stream };
        let ready = ws.next_frame().await.expect("ready frame");
        assert_eq!(ready["type"], "ready", "first frame is ready: {ready}");
        assert_eq!(ready["data"]["session_id"], user.session_id.as_str());
        ws
    }
}

impl Ws {
    /// The next JSON text frame (pings are answered by the library), or None when closed.
    pub async fn next_frame(&mut self) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .ok()??
            {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("JSON frame"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let f = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("socket closed while waiting for {kind}"));
            if f["type"] == kind {
                return f["data"].clone();
            }
        }
    }

    pub async fn send(&mut self, v: Value) {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// Reads until the server closes; returns the close code (None if the connection just ended).
    pub async fn close_code(&mut self) -> Option<u16> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(Duration::from_secs(15), self.stream.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("socket still open"),
            }
        }
    }
}

impl TestApp {
    pub async fn group(&self, owner: &TestUser, members: &[&TestUser]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let r = self
            .post(
                "/v1/conversations",
                Some(&owner.access),
                serde_json::json!({"kind": "group", "member_ids": ids, "title": "team"}),
            )
            .await;
        r.assert_ok(201)["id"].as_str().unwrap().to_string()
    }

    pub async fn send_text(&self, user: &TestUser, conv: &str, cmid: &str, text: &str) -> Resp {
        self.post(
            &format!("/v1/conversations/{conv}/messages"),
            Some(&user.access),
            serde_json::json!({"client_message_id": cmid, "content": text}),
        )
        .await
    }
}

impl TestApp {
    /// The value of an unlabelled metric.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until both the Redis cache link and the bus subscription report ok.
    pub async fn wait_redis_ok(&self) {
        let started = std::time::Instant::now();
        loop {
            let r = self.get("/ready", None).await;
            if r.body["checks"]["cache"] == "ok" && r.body["checks"]["pubsub"] == "ok" {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "redis not ok: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
