//! The test harness: starts real SecureConnect instances on random ports (in this process) and
//! talks HTTP to them. Backends come from the environment: SQLite and in-process by default;
//! `SC_TEST_PG_URL` / `SC_TEST_REDIS_URL` switch every test to PostgreSQL / Redis, and
//! `SC_TEST_S3_URL` (with `SC_TEST_S3_ACCESS_KEY_ID` / `SC_TEST_S3_SECRET_ACCESS_KEY`) the blob
//! store to an S3-compatible server, a fresh bucket per test. With `SC_TEST_REQUIRE_ALL=1` (CI)
//! a missing backend is a failure, never a skip.

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

/// An S3-compatible server (path-style, e.g. `http://127.0.0.1:8014` for s3s-fs).
pub fn s3_url() -> Option<String> {
    std::env::var("SC_TEST_S3_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// The S3 test credentials; the defaults are the keys `.ci/run` starts s3s-fs with.
pub fn s3_keys() -> (String, String) {
    let var = |k: &str, default: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    (
        var("SC_TEST_S3_ACCESS_KEY_ID", "sc-test-access-key"),
        var("SC_TEST_S3_SECRET_ACCESS_KEY", "sc-test-secret-key"),
    )
}

/// The S3 adapter of an instance's configuration (`None` on local disk): what the tests use to
/// look at the bucket behind the API.
pub fn s3_of(cfg: &Config) -> Option<sc_infra::blobs::S3Blobs> {
    sc_infra::blobs::S3Settings::from_config(cfg)
        .map(|s| sc_infra::blobs::S3Blobs::new(s).expect("S3 client"))
}

/// Every key in a test's bucket. s3s-fs fails a listing when an object is deleted while it
/// walks the directory (the server's cleanup job may be doing so), so a failed listing is
/// tried again a few times.
pub async fn list_all_keys(s3: &sc_infra::blobs::S3Blobs) -> Vec<String> {
    let mut last = None;
    for _ in 0..5 {
        match s3.list_keys("").await {
            Ok(keys) => return keys,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("listing the bucket failed five times: {last:?}")
}

/// A fresh, empty bucket for one test (cluster).
async fn fresh_s3_bucket(endpoint: &str) -> String {
    let bucket = format!("sc-test-{}", uuid::Uuid::new_v4().simple());
    let (access_key_id, secret) = s3_keys();
    let s3 = sc_infra::blobs::S3Blobs::new(sc_infra::blobs::S3Settings {
        endpoint: endpoint.to_string(),
        public_endpoint: None,
        region: "us-east-1".into(),
        bucket: bucket.clone(),
        access_key_id,
        secret_access_key: Secret::new(secret),
        path_style: true,
    })
    .expect("S3 client");
    s3.create_bucket()
        .await
        .expect("SC_TEST_S3_URL must be reachable and accept SC_TEST_S3_* keys");
    bucket
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
        assert!(
            s3_url().is_some(),
            "SC_TEST_REQUIRE_ALL=1 but SC_TEST_S3_URL is not set"
        );
    }
}

/// A fresh, empty PostgreSQL database for one test (cluster).
pub async fn fresh_pg_database(base: &str) -> String {
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
    /// `(endpoint, bucket)` when the blobs go to S3.
    pub s3: Option<(String, String)>,
}

impl Shared {
    pub async fn new() -> Self {
        assert_required_backends();
        let database_url = match pg_url() {
            Some(base) => Some(fresh_pg_database(&base).await),
            None => None,
        };
        let s3 = match s3_url() {
            Some(url) => {
                let bucket = fresh_s3_bucket(&url).await;
                Some((url, bucket))
            }
            None => None,
        };
        Self {
            data_dir: tempfile::tempdir().unwrap(),
            database_url,
            redis_url: redis_url(),
            redis_prefix: format!("sctest:{}:", uuid::Uuid::new_v4().simple()),
            s3,
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
        cfg.api_rate_per_ip_per_minute = 1_000_000;
        cfg.ws_connects_per_ip_per_minute = 1_000_000;
        cfg.shutdown_grace_seconds = 2;
        if let Some((url, bucket)) = &self.s3 {
            let (access_key_id, secret) = s3_keys();
            cfg.s3_endpoint = Some(url.clone());
            cfg.s3_region = "us-east-1".into();
            cfg.s3_bucket = Some(bucket.clone());
            cfg.s3_access_key_id = Some(access_key_id);
            cfg.s3_secret_access_key = Some(Secret::new(secret));
            cfg.s3_path_style = true;
        }
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

/// A real SMTP server on a free port of 127.0.0.1, in this process: the `mailin` crate's SMTP
/// state machine behind a small tokio socket loop. Every mail it accepts is written to `dir` as
/// `<nanos>-<uuid>.eml`: an `X-Envelope-To:` line, then the message data exactly as received
/// (RFC 5322, dot-unstuffed), under a dot-name first and renamed so readers never see half a
/// mail. Dropping the sink aborts its server task, which closes the listener (the port is free
/// again) and every open session.
pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Why each STARTTLS handshake the server attempted failed, as the server saw it.
    pub tls_failures: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(free_port()).await
    }

    /// Listens on `port` (the retry test brings SMTP up on a port the app already tried).
    pub async fn start_on(port: u16) -> SmtpSink {
        Self::serve(port, None).await
    }

    /// Offers STARTTLS with a self-signed certificate (`localhost`, 127.0.0.1) that no public
    /// root vouches for.
    pub async fn start_with_self_signed_starttls() -> SmtpSink {
        Self::serve(free_port(), Some(self_signed_acceptor())).await
    }

    async fn serve(port: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let listener = bind_retrying(port).await;
        let mut smtp = mailin::SessionBuilder::new("smtp-sink.test");
        if tls.is_some() {
            smtp.enable_start_tls();
        }
        let tls_failures = Arc::new(Mutex::new(Vec::new()));
        let (out, failures) = (dir.path().to_path_buf(), tls_failures.clone());
        let server = tokio::spawn(async move {
            // Owned here: aborting the server task drops the listener and aborts every session.
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                while sessions.try_join_next().is_some() {}
                let session = smtp.build(peer.ip(), MailFile::new(out.clone()));
                sessions.spawn(smtp_session(session, stream, tls.clone(), failures.clone()));
            }
        });
        SmtpSink {
            port,
            dir,
            tls_failures,
            server,
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn bind_retrying(port: u16) -> tokio::net::TcpListener {
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("smtp sink: cannot listen on 127.0.0.1:{port}");
}

/// One SMTP connection: plain text, then (after STARTTLS) the same session over TLS.
async fn smtp_session(
    mut session: mailin::Session<MailFile>,
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tls_failures: Arc<Mutex<Vec<String>>>,
) {
    let mut conn = tokio::io::BufStream::new(stream);
    let Ok(greeting) = session.greeting().buffer() else {
        return;
    };
    if write_reply(&mut conn, &greeting).await.is_err() {
        return;
    }
    let Ok(Upgrade::StartTls) = converse(&mut session, &mut conn).await else {
        return;
    };
    // mailin offers STARTTLS only when the sink has a certificate. The client waits for the
    // 220 before its ClientHello, so nothing is left in the read buffer.
    let Some(acceptor) = tls else { return };
    match acceptor.accept(conn.into_inner()).await {
        Ok(stream) => {
            session.tls_active();
            let _ = converse(&mut session, &mut tokio::io::BufStream::new(stream)).await;
        }
        Err(e) => tls_failures.lock().unwrap().push(e.to_string()),
    }
}

enum Upgrade {
    None,
    StartTls,
}

async fn converse<S>(
    session: &mut mailin::Session<MailFile>,
    conn: &mut tokio::io::BufStream<S>,
) -> std::io::Result<Upgrade>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if conn.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Upgrade::None);
        }
        let res = session.process(&line);
        let action = res.action.clone();
        if action != mailin::Action::NoReply {
            write_reply(conn, &res.buffer()?).await?;
        }
        match action {
            mailin::Action::Close => return Ok(Upgrade::None),
            mailin::Action::UpgradeTls => return Ok(Upgrade::StartTls),
            mailin::Action::Reply | mailin::Action::NoReply => {}
        }
    }
}

async fn write_reply<S>(conn: &mut tokio::io::BufStream<S>, bytes: &[u8]) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    conn.write_all(bytes).await?;
    conn.flush().await
}

/// The mailin handler: accepts every sender and recipient and writes each message to a file.
struct MailFile {
    dir: PathBuf,
    to: Vec<String>,
    data: Vec<u8>,
}

impl MailFile {
    fn new(dir: PathBuf) -> Self {
        MailFile {
            dir,
            to: vec![],
            data: vec![],
        }
    }

    fn save(&mut self) -> std::io::Result<()> {
        let name = format!(
            "{}-{}.eml",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
            uuid::Uuid::new_v4().simple()
        );
        let tmp = self.dir.join(format!(".{name}"));
        let mut f = std::fs::File::create(&tmp)?;
        write!(f, "X-Envelope-To: {}\r\n", self.to.join(","))?;
        f.write_all(&self.data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(name))
    }
}

impl mailin::Handler for MailFile {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _8bit: bool,
        to: &[String],
    ) -> mailin::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin::Response {
        match self.save() {
            Ok(()) => mailin::response::OK,
            Err(_) => mailin::response::TRANSACTION_FAILED,
        }
    }
}

/// A self-signed P-256 certificate for `localhost` and 127.0.0.1 (valid to 2126) and its key,
/// made for these tests only with `openssl req -x509 -newkey ec`. Nothing trusts it.
const SELF_SIGNED_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBtjCCAV2gAwIBAgIUcKxuAe/qXhdwQuV+2Wn8lUJDaF4wCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXU2VjdXJlQ29ubmVjdCB0ZXN0IFNNVFAwIBcNMjYxMjAxMTk1
NzQxWhgPMjEyNjExMDcxOTU3NDFaMCIxIDAeBgNVBAMMF1NlY3VyZUNvbm5lY3Qg
dGVzdCBTTVRQMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEod6x9TsSsaZFqpW
hzB1dPQwx2+XA2Q3yoglIUrdakWO/B+U06c7p12fA4H3d8MQp0I9b76IpCqY7pZO
mCth0qNvMG0wHQYDVR0OBBYEFDA6ZyQ6ZZ+En0jqjc0k9H5OP0EAMB8GA1UdIwQY
MBaAFDA6ZyQ6ZZ+En0jqjc0k9H5OP0EAMA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0R
BBMwEYIJbG9jYWxob3N0hwR/AAABMAoGCCqGSM49BAMCA0cAMEQCIFJj+3uB1ofI
uYS7OToim9I5A988dVzl1psM/AnWxRFHAiAsbRpwe6KryeB4qzZD19gY4wtqB/2/
utYJrOo97m75hQ==
-----END CERTIFICATE-----
";
const SELF_SIGNED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqV8JaK+ktGMNuRCp
0S+puWbZS0mPzU74+wcPF+SU0FihRANCAAQSh3rH1OxKxpkWqlaHMHV09DDHb5cD
ZDfKiCUhSt1qRY78H5TTpzunXZ8Dgfd3wxCnQj1vvoikKpjulk6YK2HS
-----END PRIVATE KEY-----
";

fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let cert = CertificateDer::from_pem_slice(SELF_SIGNED_CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(SELF_SIGNED_KEY.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A child process (a server, a client) that does not outlive a failed test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
