//! Local stand-ins for the three push services, for the black-box tests: each listens on
//! 127.0.0.1 on a random port, checks what a real service checks (VAPID and RFC 8291
//! encryption, the FCM service-account assertion and bearer token, the APNs provider token over
//! HTTP/2), records what it received, and can be told to answer a chosen status (with a
//! `Retry-After`) instead.
//!
//! FCM and APNs speak TLS with [`TEST_CA_PEM`], a self-signed certificate for `localhost` and
//! 127.0.0.1; the server under test trusts it through `extra_root_ca_pem`. (The certificate in
//! `common.rs` is a CA certificate, which webpki refuses as a server's own.) Web Push is plain
//! HTTP: the tests set `push_allow_insecure_endpoints`.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use p256::SecretKey;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use sc_infra::push::{ece, vapid};
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// A self-signed P-256 certificate (CA:FALSE) for `localhost` and 127.0.0.1, valid to 2126,
/// made for these tests only with `openssl req -x509 -newkey ec`. Nothing else trusts it.
pub const TEST_CA_PEM: &str = r"-----BEGIN CERTIFICATE-----
MIIB7TCCAZOgAwIBAgIUFYuvRKluTgEd8W3kyWwYhzcq8L0wCgYIKoZIzj0EAwIw
KzEpMCcGA1UEAwwgU2VjdXJlQ29ubmVjdCB0ZXN0IHB1c2ggc2VydmljZXMwIBcN
MjYxMjAyMDQzMTEwWhgPMjEyNjExMDgwNDMxMTBaMCsxKTAnBgNVBAMMIFNlY3Vy
ZUNvbm5lY3QgdGVzdCBwdXNoIHNlcnZpY2VzMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEKApzU5zuVzRraiQhYY9NRJc17whqjcqqNe5tZ+5ERQ8tKjXz6Um7dFqv
iVZN0atQ9+z7O7ZZ9QRqnyCLV8KcnKOBkjCBjzAdBgNVHQ4EFgQU6L6XiyOsBX8O
2mCtvxiIMhGMBscwHwYDVR0jBBgwFoAU6L6XiyOsBX8O2mCtvxiIMhGMBscwDAYD
VR0TAQH/BAIwADAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwDgYDVR0PAQH/
BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0gAMEUCIHh3
rqBE5Bh5krgv88kLS4BLAXU9/TwUCDd9MHk1ltvvAiEA4+L/B5MtrAvZkgpChKDE
zjEuccVcN9tf7Q8D7EmnrKs=
-----END CERTIFICATE-----
";
const TEST_TLS_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvBaAu7n/a+lbWd30
f5v32KXP5LWLuw+lbB5ROufl9QyhRANCAAQoCnNTnO5XNGtqJCFhj01ElzXvCGqN
yqo17m1n7kRFDy0qNfPpSbt0Wq+JVk3Rq1D37Ps7tln1BGqfIItXwpyc
-----END PRIVATE KEY-----
";

/// The test service account's RSA key pair (2048 bits, `openssl genpkey`), for these tests
/// only: generating one at run time takes seconds in a debug build.
pub const SERVICE_ACCOUNT_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCa0G+QNlh5IpHm
7Q2Kjpdp7UsYxwGnbH8wt9bbagbvTDivZ15kWfjadzfH4cNL4/4IXZFN4N76Cx/V
k5ytAxcHS03/TNRSJQAODAaHw9eCgtlUD7t2H+L1FVrvvK32i9nCM1o1zgc8oftP
upQE0U5M9VGHc/U3I6CKt4JE8O7ZOA9wuL66nxaxD3E8FW0NPFW0ct2k5zLbPwrz
nk24G/uspcHyiuqaWEWEx4WYxEfd0hgI9+tUgNPovU57Jr0D628glntpYd/W83xn
gdH1yq5I/QrIexATg0Tp016WVpDJYBU6TmTyZuoKhgu/gRl3Vbv4vRr2roh1s5YB
EheJaQYfAgMBAAECggEAAQks/euHKwRSspdadFdg5voJ+xf1yF9++F36h4xNkJNT
e8T2yjgZ5KhQjLtTebIEVJz/qGQ9SbICXAT5UuUG5esYkgE7GHOb7PwinQzv57Ul
bB0Q1YkAFUC304vRJCmqYtTCIUMIJF03F8D5VZDq87PegEgD14MbA2KX8gskpfpp
4D/EsW330TG9x0m6VVWiE3Vav5QEiLfcqEKSxN4ztZGYvEvU1YrY0OS7P/6ehF0/
1TAZ+8w6V8Q6wtIypdu3UdGJPOzW5r3PVMNUicElQTfHCU8bbXgd7QI9DxuHnouM
JCmb+c+L1DCGO967/JyDcajujisIAzgS7wTGhzcqhQKBgQDWAhby8HFVe+SN66yU
oTGBxreCEbxP58X3067uNr5FdtctubJD8V5jAy8tQ9Px7sVWuR4TWgPuo3dnCtyL
7M8Ua5PKhfWnrOlSjaZqRHO2n3/fheRhlMtvudR8FKGjDwZnMWm9YFqu8hlO8WS3
yrmgc/e8gmEd0D4o7P/dRFca1QKBgQC5MPS7CSLPao1Gi17ZjaGArricIAB+sLAG
gGu1EUqxYbS2urRg9/n3rMTsMfyWvwWiaB4MlH1ltjKfTwloOjf7O/RazJvmrPs7
6BDwi95n1UF42yu030/55OFc54eNEF1do3TGRGNtv8WFZ6vKRBujJyRnceqlwbkP
B/sjzGZvIwKBgAgbrijoKTMW7ZLe8fvzm3+SOtOnvl28p0h7ca4+zritBvwJhBKE
65GOxlPNtRL+e+WMP/J1v55j/RsfUznN8A6TANd0edkveOuSyFJQY53wrxSV6xAz
Zf3GqaFF2tXltNVmDt6I7wafz4upI6q++Id2vVUcD3fksuY0DIGinDY9AoGANxRc
dZSOCerDAgxJtaLuOfu9ZJIQE54xfH2Ni1kNQhyxRvfY1k5qxkNYfnePjLZb0qXs
6gjwEuRRwhgb0CggplR6pNbeN4mTX4nyH9k52OAQjQWCxlT00HpGnP8vzcDkRAlt
ndqRR/8VnEvtSEdhgPEPXsT+6TXo+JODGm6cuMkCgYEArq/bC9Kycg42YWKH3zWz
hlf8wLpTKf+RlBRTzuKT0aCQNtPDNRGkfkwwAyecmCYGCtCGP06q636ZGHGzHDA8
d9OfPV+u2T4KZE1+fLiSZ7FQiG60GXFX8Da/HBpH4pUpJ5MizN51lYpoBNOg53FA
Rjp/cHzEanCTleaovvJcgGs=
-----END PRIVATE KEY-----
";
const SERVICE_ACCOUNT_PUBLIC_KEY: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmtBvkDZYeSKR5u0Nio6X
ae1LGMcBp2x/MLfW22oG70w4r2deZFn42nc3x+HDS+P+CF2RTeDe+gsf1ZOcrQMX
B0tN/0zUUiUADgwGh8PXgoLZVA+7dh/i9RVa77yt9ovZwjNaNc4HPKH7T7qUBNFO
TPVRh3P1NyOgireCRPDu2TgPcLi+up8WsQ9xPBVtDTxVtHLdpOcy2z8K855NuBv7
rKXB8orqmlhFhMeFmMRH3dIYCPfrVIDT6L1Oeya9A+tvIJZ7aWHf1vN8Z4HR9cqu
SP0KyHsQE4NE6dNellaQyWAVOk5k8mbqCoYLv4EZd1W7+L0a9q6IdbOWARIXiWkG
HwIDAQAB
-----END PUBLIC KEY-----
";

const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn random_p256_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted answers

/// One scripted answer: a status, optionally a `Retry-After` (seconds) and, for APNs, a reason.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    reason: Option<String>,
}

/// What the next requests get instead of the normal answer: queued one-off replies first, then
/// the sticky one, if any.
#[derive(Default)]
struct Replies {
    queue: VecDeque<Reply>,
    sticky: Option<Reply>,
}

impl Replies {
    fn next(&mut self) -> Option<Reply> {
        self.queue.pop_front().or_else(|| self.sticky.clone())
    }

    fn set(&mut self, status: u16, retry_after: Option<u64>) {
        self.sticky = (!(200..300).contains(&status)).then_some(Reply {
            status,
            retry_after,
            reason: None,
        });
    }

    fn push(&mut self, status: u16, retry_after: Option<u64>, reason: Option<&str>) {
        self.queue.push_back(Reply {
            status,
            retry_after,
            reason: reason.map(str::to_owned),
        });
    }
}

fn with_retry_after(mut resp: Response, reply: &Reply) -> Response {
    if let Some(secs) = reply.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Polls `records` until it holds `n` entries; panics after `timeout`.
async fn wait_for_records<T: Clone>(
    records: &Mutex<Vec<T>>,
    n: usize,
    timeout: Duration,
    what: &str,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = records.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        if Instant::now() >= deadline {
            panic!("{what}: {} of {n} requests after {timeout:?}", got.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// TLS serving

#[derive(Clone, Copy)]
enum Protocols {
    /// ALPN h2 or http/1.1, whichever the client picks (FCM).
    Any,
    /// ALPN h2 only: a client that cannot speak HTTP/2 fails the handshake (APNs).
    Http2Only,
}

fn tls_acceptor(protocols: Protocols) -> TlsAcceptor {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let cert = CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_TLS_KEY.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    cfg.alpn_protocols = match protocols {
        Protocols::Any => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Protocols::Http2Only => vec![b"h2".to_vec()],
    };
    TlsAcceptor::from(Arc::new(cfg))
}

/// Serves `app` over TLS on `listener`; the connections live in the returned task, so
/// aborting it ends them all.
fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    protocols: Protocols,
) -> JoinHandle<()> {
    let acceptor = tls_acceptor(protocols);
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            while connections.try_join_next().is_some() {}
            let (acceptor, app) = (acceptor.clone(), app.clone());
            connections.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let io = TokioIo::new(tls);
                let service = TowerToHyperService::new(app);
                let _ = match protocols {
                    Protocols::Any => {
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    }
                    Protocols::Http2Only => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                            .map_err(Into::into)
                    }
                };
            });
        }
    })
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

// ---------------------------------------------------------------------------------------------
// Web Push

/// One POST a [`WebPushReceiver`] received.
#[derive(Clone, Debug)]
pub struct WebPushRecord {
    /// `/push/<id>`: the path of the subscription's endpoint.
    pub path: String,
    pub ttl: Option<u64>,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    pub content_encoding: Option<String>,
    /// The decrypted JSON payload; `Null` when it did not decrypt or parse.
    pub payload: Value,
    /// The `Authorization` header verified as VAPID with the key given to
    /// [`WebPushReceiver::set_vapid_key`] and this receiver's origin as audience.
    pub vapid_ok: bool,
    /// The status the receiver answered.
    pub status: u16,
}

/// A Web Push service over plain HTTP: hands out subscriptions (a fresh P-256 key pair and
/// auth secret each), decrypts what is pushed to them with `sc_infra::push::ece::decrypt` and
/// checks VAPID. Answers 201, or 404 for an unknown subscription, 410 after
/// [`Self::unsubscribe`], 400 for a push it cannot decrypt or without `TTL`/`aes128gcm`, 401
/// for a bad VAPID header once a key is set, or the scripted status.
pub struct WebPushReceiver {
    state: Arc<WebPushState>,
    task: JoinHandle<()>,
}

struct WebPushState {
    origin: String,
    subscriptions: Mutex<HashMap<String, UaKeys>>,
    vapid_key: Mutex<Option<String>>,
    replies: Mutex<Replies>,
    records: Mutex<Vec<WebPushRecord>>,
}

#[derive(Clone)]
struct UaKeys {
    private: SecretKey,
    auth: [u8; 16],
    gone: bool,
}

impl WebPushReceiver {
    pub async fn start() -> WebPushReceiver {
        let (listener, addr) = bind().await;
        let state = Arc::new(WebPushState {
            origin: format!("http://{addr}"),
            subscriptions: Mutex::new(HashMap::new()),
            vapid_key: Mutex::new(None),
            replies: Mutex::new(Replies::default()),
            records: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/push/{id}", post(webpush_receive))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebPushReceiver { state, task }
    }

    /// `http://127.0.0.1:<port>`, the VAPID audience.
    pub fn origin(&self) -> &str {
        &self.state.origin
    }

    /// A new subscription as a browser makes it: `(endpoint, p256dh, auth)`, keys base64url
    /// without padding.
    pub fn subscription(&self) -> (String, String, String) {
        let id = random_hex(16);
        let private = random_p256_key();
        let auth: [u8; 16] = rand::random();
        let public = private.public_key().to_sec1_bytes();
        let keys = UaKeys {
            private,
            auth,
            gone: false,
        };
        self.state
            .subscriptions
            .lock()
            .unwrap()
            .insert(id.clone(), keys);
        (
            format!("{}/push/{id}", self.state.origin),
            URL_SAFE_NO_PAD.encode(public),
            URL_SAFE_NO_PAD.encode(auth),
        )
    }

    /// From now on pushes to `endpoint` get 410 Gone, as after the user revoked permission.
    pub fn unsubscribe(&self, endpoint: &str) {
        let id = endpoint.rsplit('/').next().unwrap_or_default();
        if let Some(keys) = self.state.subscriptions.lock().unwrap().get_mut(id) {
            keys.gone = true;
        }
    }

    /// The server's VAPID public key (base64url), as `GET /v1/push/vapid-public-key` gives it.
    pub fn set_vapid_key(&self, public_key_b64url: &str) {
        *self.state.vapid_key.lock().unwrap() = Some(public_key_b64url.to_owned());
    }

    /// Every later push gets `status` (a 2xx restores the normal answers).
    pub fn set_status(&self, status: u16) {
        self.state.replies.lock().unwrap().set(status, None);
    }

    pub fn set_status_with_retry_after(&self, status: u16, retry_after_secs: u64) {
        self.state
            .replies
            .lock()
            .unwrap()
            .set(status, Some(retry_after_secs));
    }

    /// The next push (after those already queued) gets `status`.
    pub fn queue_status(&self, status: u16, retry_after_secs: Option<u64>) {
        self.state
            .replies
            .lock()
            .unwrap()
            .push(status, retry_after_secs, None);
    }

    pub fn records(&self) -> Vec<WebPushRecord> {
        self.state.records.lock().unwrap().clone()
    }

    /// The records once there are at least `n`; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<WebPushRecord> {
        wait_for_records(&self.state.records, n, timeout, "web push receiver").await
    }
}

impl Drop for WebPushReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn webpush_receive(
    State(state): State<Arc<WebPushState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let keys = state.subscriptions.lock().unwrap().get(&id).cloned();
    let vapid_key = state.vapid_key.lock().unwrap().clone();
    let authorization = header_text(&headers, header::AUTHORIZATION);
    let vapid_ok = match (&vapid_key, &authorization) {
        (Some(key), Some(auth)) => {
            vapid::verify_authorization(auth, key, &state.origin, now_unix()).is_ok()
        }
        _ => false,
    };
    let content_encoding = header_text(&headers, header::CONTENT_ENCODING);
    let ttl = header_text(&headers, "ttl").and_then(|t| t.parse().ok());
    let payload = keys
        .as_ref()
        .and_then(|k| ece::decrypt(&body, &k.private, &k.auth).ok())
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .unwrap_or(Value::Null);

    let scripted = state.replies.lock().unwrap().next();
    let (status, reply) = match (&keys, scripted) {
        (None, _) => (404, None),
        (Some(k), _) if k.gone => (410, None),
        (_, Some(reply)) => (reply.status, Some(reply)),
        _ if content_encoding.as_deref() != Some("aes128gcm") || ttl.is_none() => (400, None),
        _ if vapid_key.is_some() && !vapid_ok => (401, None),
        _ if payload.is_null() => (400, None),
        _ => (201, None),
    };
    state.records.lock().unwrap().push(WebPushRecord {
        path: format!("/push/{id}"),
        ttl,
        urgency: header_text(&headers, "urgency"),
        topic: header_text(&headers, "topic"),
        content_encoding,
        payload,
        vapid_ok,
        status,
    });
    let resp = StatusCode::from_u16(status).unwrap().into_response();
    match reply {
        Some(reply) => with_retry_after(resp, &reply),
        None => resp,
    }
}

// ---------------------------------------------------------------------------------------------
// FCM

/// One `messages:send` an [`FcmServer`] received.
#[derive(Clone, Debug)]
pub struct FcmRecord {
    pub project: String,
    /// `message.token`.
    pub token: Option<String>,
    /// The whole `message` object.
    pub message: Value,
    /// The bearer token was one this server issued (and has not revoked).
    pub bearer_ok: bool,
    pub status: u16,
}

/// FCM over HTTPS: `POST /token` verifies the RS256 service-account assertion (signature,
/// `iss`, `aud` = its own token URL, `scope`, lifetime) and issues access tokens;
/// `POST /v1/projects/{project}/messages:send` checks the bearer token and records the message.
/// Errors carry Google's error body (404 → `UNREGISTERED`, 429 → `QUOTA_EXCEEDED`, …).
pub struct FcmServer {
    state: Arc<FcmState>,
    task: JoinHandle<()>,
}

struct FcmState {
    base: String,
    token_url: String,
    client_email: String,
    project_id: String,
    expires_in: Mutex<u64>,
    issued: Mutex<HashSet<String>>,
    token_requests: Mutex<usize>,
    token_errors: Mutex<Vec<String>>,
    unregistered: Mutex<HashSet<String>>,
    replies: Mutex<Replies>,
    records: Mutex<Vec<FcmRecord>>,
}

impl FcmServer {
    pub async fn start() -> FcmServer {
        let (listener, addr) = bind().await;
        let base = format!("https://{addr}");
        let state = Arc::new(FcmState {
            token_url: format!("{base}/token"),
            base,
            client_email: "push@sc-test.iam.gserviceaccount.com".into(),
            project_id: "sc-test".into(),
            expires_in: Mutex::new(3599),
            issued: Mutex::new(HashSet::new()),
            token_requests: Mutex::new(0),
            token_errors: Mutex::new(Vec::new()),
            unregistered: Mutex::new(HashSet::new()),
            replies: Mutex::new(Replies::default()),
            records: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .with_state(state.clone());
        let task = serve_tls(listener, app, Protocols::Any);
        FcmServer { state, task }
    }

    /// A service-account JSON whose `token_uri` is this server.
    pub fn credentials_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": self.state.project_id,
            "private_key_id": "0123456789abcdef",
            "private_key": SERVICE_ACCOUNT_KEY,
            "client_email": self.state.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.state.token_url,
        })
        .to_string()
    }

    /// For `fcm_endpoint`: `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.state.base
    }

    pub fn project_id(&self) -> &str {
        &self.state.project_id
    }

    /// The certificate to trust (`extra_root_ca_pem`).
    pub fn ca_pem(&self) -> &'static str {
        TEST_CA_PEM
    }

    /// How many token requests arrived (granted or not).
    pub fn token_requests(&self) -> usize {
        *self.state.token_requests.lock().unwrap()
    }

    /// Why refused token requests were refused.
    pub fn token_errors(&self) -> Vec<String> {
        self.state.token_errors.lock().unwrap().clone()
    }

    /// The `expires_in` of access tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        *self.state.expires_in.lock().unwrap() = secs;
    }

    /// Every access token issued so far stops working (sends answer 401).
    pub fn revoke_tokens(&self) {
        self.state.issued.lock().unwrap().clear();
    }

    /// From now on sends to `token` answer 404 `UNREGISTERED`.
    pub fn unregister(&self, token: &str) {
        self.state
            .unregistered
            .lock()
            .unwrap()
            .insert(token.to_owned());
    }

    /// Every later send gets `status` (a 2xx restores the normal answers).
    pub fn set_status(&self, status: u16) {
        self.state.replies.lock().unwrap().set(status, None);
    }

    pub fn set_status_with_retry_after(&self, status: u16, retry_after_secs: u64) {
        self.state
            .replies
            .lock()
            .unwrap()
            .set(status, Some(retry_after_secs));
    }

    /// The next send (after those already queued) gets `status`.
    pub fn queue_status(&self, status: u16, retry_after_secs: Option<u64>) {
        self.state
            .replies
            .lock()
            .unwrap()
            .push(status, retry_after_secs, None);
    }

    pub fn messages(&self) -> Vec<FcmRecord> {
        self.state.records.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<FcmRecord> {
        wait_for_records(&self.state.records, n, timeout, "FCM server").await
    }
}

impl Drop for FcmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fcm_token(
    State(state): State<Arc<FcmState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    *state.token_requests.lock().unwrap() += 1;
    if let Err(why) = check_assertion(&state, &form) {
        state.token_errors.lock().unwrap().push(why.clone());
        let body = json!({"error": "invalid_grant", "error_description": why});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let token = format!("ya29.test-{}", random_hex(24));
    state.issued.lock().unwrap().insert(token.clone());
    let expires_in = *state.expires_in.lock().unwrap();
    axum::Json(json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}))
        .into_response()
}

fn check_assertion(state: &FcmState, form: &HashMap<String, String>) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(format!("grant_type {:?}", form.get("grant_type")));
    }
    let assertion = form.get("assertion").ok_or("no assertion")?;
    let key = DecodingKey::from_rsa_pem(SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_url]);
    validation.set_issuer(&[&state.client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("assertion: {e}"))?
        .claims;
    if claims["scope"] != FCM_SCOPE {
        return Err(format!("scope {}", claims["scope"]));
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp > iat && exp - iat <= 3600 => Ok(()),
        _ => Err(format!("lifetime iat={iat:?} exp={exp:?}")),
    }
}

async fn fcm_send(
    State(state): State<Arc<FcmState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = header_text(&headers, header::AUTHORIZATION)
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned));
    let bearer_ok = bearer.is_some_and(|b| state.issued.lock().unwrap().contains(&b));
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = parsed["message"].clone();
    let token = message["token"].as_str().map(str::to_owned);
    let unregistered = token
        .as_ref()
        .is_some_and(|t| state.unregistered.lock().unwrap().contains(t));

    let (status, reply) = if !bearer_ok {
        (401, None)
    } else if project != state.project_id {
        (403, None)
    } else if unregistered {
        (404, None)
    } else if let Some(reply) = state.replies.lock().unwrap().next() {
        (reply.status, Some(reply))
    } else if token.is_none() || !message["data"].is_object() {
        (400, None)
    } else {
        (200, None)
    };
    state.records.lock().unwrap().push(FcmRecord {
        project: project.clone(),
        token,
        message,
        bearer_ok,
        status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    let resp = if status == 200 {
        let name = format!("projects/{project}/messages/{}", random_hex(8));
        axum::Json(json!({ "name": name })).into_response()
    } else {
        (code, axum::Json(google_error(status))).into_response()
    };
    match reply {
        Some(reply) => with_retry_after(resp, &reply),
        None => resp,
    }
}

/// A Google API error body as FCM sends it.
fn google_error(status: u16) -> Value {
    let (name, fcm_code) = match status {
        400 => ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        401 => ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
        403 => ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        404 => ("NOT_FOUND", "UNREGISTERED"),
        429 => ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
        500 => ("INTERNAL", "INTERNAL"),
        503 => ("UNAVAILABLE", "UNAVAILABLE"),
        _ => ("UNKNOWN", "UNSPECIFIED_ERROR"),
    };
    json!({"error": {
        "code": status,
        "message": "test FCM server",
        "status": name,
        "details": [{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": fcm_code,
        }],
    }})
}

// ---------------------------------------------------------------------------------------------
// APNs

/// One notification an [`ApnsServer`] received.
#[derive(Clone, Debug)]
pub struct ApnsRecord {
    /// The device token from the path `/3/device/<token>`.
    pub device_token: String,
    pub push_type: Option<String>,
    pub collapse_id: Option<String>,
    pub priority: Option<String>,
    pub topic: Option<String>,
    pub expiration: Option<String>,
    pub body: Value,
    /// The `authorization: bearer` provider token verified (ES256 with this server's key,
    /// `kid`, `iss` = team id, a recent `iat`).
    pub token_ok: bool,
    /// The request came over HTTP/2.
    pub http2: bool,
    pub status: u16,
}

/// APNs over HTTPS, HTTP/2 only (ALPN `h2`). Holds a fresh .p8 key for the server under test
/// (`key_pem`, `key_id`, `team_id`, `topic`). Answers 200 with an `apns-id`, 403
/// `InvalidProviderToken` for a bad token, 400 `BadTopic`, 410 `Unregistered` after
/// [`Self::unregister`], or the scripted status with Apple's reason for it.
pub struct ApnsServer {
    state: Arc<ApnsState>,
    key_pem: String,
    task: JoinHandle<()>,
}

struct ApnsState {
    base: String,
    verifying: VerifyingKey,
    key_id: String,
    team_id: String,
    topic: String,
    unregistered: Mutex<HashSet<String>>,
    replies: Mutex<Replies>,
    records: Mutex<Vec<ApnsRecord>>,
}

impl ApnsServer {
    pub async fn start() -> ApnsServer {
        let (listener, addr) = bind().await;
        let key = random_p256_key();
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let state = Arc::new(ApnsState {
            base: format!("https://{addr}"),
            verifying: VerifyingKey::from(key.public_key()),
            key_id: "TESTKEY123".into(),
            team_id: "TESTTEAM12".into(),
            topic: "org.secureconnect.test".into(),
            unregistered: Mutex::new(HashSet::new()),
            replies: Mutex::new(Replies::default()),
            records: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/3/device/{token}", post(apns_receive))
            .with_state(state.clone());
        let task = serve_tls(listener, app, Protocols::Http2Only);
        ApnsServer {
            state,
            key_pem,
            task,
        }
    }

    /// For the APNs endpoint override: `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.state.base
    }

    /// The .p8 signing key (PKCS#8 PEM).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn key_id(&self) -> &str {
        &self.state.key_id
    }

    pub fn team_id(&self) -> &str {
        &self.state.team_id
    }

    /// The bundle id it expects as `apns-topic`.
    pub fn topic(&self) -> &str {
        &self.state.topic
    }

    pub fn ca_pem(&self) -> &'static str {
        TEST_CA_PEM
    }

    /// From now on notifications to `device_token` answer 410 `Unregistered`.
    pub fn unregister(&self, device_token: &str) {
        self.state
            .unregistered
            .lock()
            .unwrap()
            .insert(device_token.to_owned());
    }

    /// Every later notification gets `status` (a 2xx restores the normal answers).
    pub fn set_status(&self, status: u16) {
        self.state.replies.lock().unwrap().set(status, None);
    }

    pub fn set_status_with_retry_after(&self, status: u16, retry_after_secs: u64) {
        self.state
            .replies
            .lock()
            .unwrap()
            .set(status, Some(retry_after_secs));
    }

    /// The next notification (after those already queued) gets `status`.
    pub fn queue_status(&self, status: u16, retry_after_secs: Option<u64>) {
        self.state
            .replies
            .lock()
            .unwrap()
            .push(status, retry_after_secs, None);
    }

    /// The next notification gets `status` with this `reason` (e.g. 403
    /// `ExpiredProviderToken`, 400 `BadDeviceToken`).
    pub fn queue_reason(&self, status: u16, reason: &str) {
        self.state
            .replies
            .lock()
            .unwrap()
            .push(status, None, Some(reason));
    }

    pub fn records(&self) -> Vec<ApnsRecord> {
        self.state.records.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ApnsRecord> {
        wait_for_records(&self.state.records, n, timeout, "APNs server").await
    }
}

impl Drop for ApnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn apns_receive(
    State(state): State<Arc<ApnsState>>,
    Path(device_token): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token_ok =
        header_text(&headers, header::AUTHORIZATION).is_some_and(|h| provider_token_ok(&state, &h));
    let topic = header_text(&headers, "apns-topic");
    let (status, reason, reply) = if !token_ok {
        (403, "InvalidProviderToken".to_owned(), None)
    } else if topic.as_deref() != Some(state.topic.as_str()) {
        (400, "BadTopic".to_owned(), None)
    } else if state.unregistered.lock().unwrap().contains(&device_token) {
        (410, "Unregistered".to_owned(), None)
    } else if let Some(reply) = state.replies.lock().unwrap().next() {
        let reason = reply
            .reason
            .clone()
            .unwrap_or_else(|| apns_reason(reply.status).to_owned());
        (reply.status, reason, Some(reply))
    } else {
        (200, String::new(), None)
    };
    state.records.lock().unwrap().push(ApnsRecord {
        device_token,
        push_type: header_text(&headers, "apns-push-type"),
        collapse_id: header_text(&headers, "apns-collapse-id"),
        priority: header_text(&headers, "apns-priority"),
        topic,
        expiration: header_text(&headers, "apns-expiration"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        token_ok,
        http2: version == Version::HTTP_2,
        status,
    });
    let mut resp = if status == 200 {
        StatusCode::OK.into_response()
    } else {
        let mut body = json!({ "reason": reason });
        if status == 410 {
            body["timestamp"] = json!(now_unix() * 1000);
        }
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    };
    let apns_id = HeaderValue::from_str(&random_hex(16)).unwrap();
    resp.headers_mut().insert("apns-id", apns_id);
    match reply {
        Some(reply) => with_retry_after(resp, &reply),
        None => resp,
    }
}

fn apns_reason(status: u16) -> &'static str {
    match status {
        400 => "BadDeviceToken",
        403 => "ExpiredProviderToken",
        404 => "BadPath",
        410 => "Unregistered",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        _ => "BadRequest",
    }
}

/// `bearer <JWT>`: ES256 over `header.claims` with this server's key, header
/// `{alg: ES256, kid}`, claims `{iss: team id, iat}` with `iat` within the last hour.
fn provider_token_ok(state: &ApnsState, authorization: &str) -> bool {
    let Some(jwt) = authorization.strip_prefix("bearer ") else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return false;
    };
    let decode_json = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let (Some(jwt_header), Some(claims)) = (decode_json(header_b64), decode_json(claims_b64))
    else {
        return false;
    };
    let Some(signature) = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
    else {
        return false;
    };
    let signed = format!("{header_b64}.{claims_b64}");
    let iat = claims["iat"].as_i64().unwrap_or(0);
    let now = now_unix();
    jwt_header["alg"] == "ES256"
        && jwt_header["kid"] == state.key_id.as_str()
        && claims["iss"] == state.team_id.as_str()
        && (now - 3600..=now + 60).contains(&iat)
        && state
            .verifying
            .verify(signed.as_bytes(), &signature)
            .is_ok()
}

// ---------------------------------------------------------------------------------------------
// Smoke test: the adapters against these servers, without a SecureConnect instance.

#[tokio::test]
async fn push_client_reaches_local_servers() {
    use sc_infra::push::{
        ApnsConfig, FcmCredentials, Outcome, PushClient, PushConfig, PushMessage, Target, Urgency,
        VapidKey,
    };

    let webpush = WebPushReceiver::start().await;
    let fcm = FcmServer::start().await;
    let apns = ApnsServer::start().await;

    let vapid = Arc::new(VapidKey::generate());
    webpush.set_vapid_key(vapid.public_key_base64url());
    let mut cfg = PushConfig::new(vapid, "mailto:admin@example.org");
    cfg.allow_insecure_endpoints = true;
    cfg.fcm = Some(FcmCredentials::from_json(&fcm.credentials_json()).unwrap());
    cfg.fcm_endpoint = fcm.endpoint().to_owned();
    cfg.apns = Some(ApnsConfig {
        key_pem: apns.key_pem().to_owned(),
        key_id: apns.key_id().to_owned(),
        team_id: apns.team_id().to_owned(),
        topic: apns.topic().to_owned(),
        endpoint: Some(apns.endpoint().to_owned()),
    });
    cfg.extra_root_ca_pem = Some(TEST_CA_PEM.as_bytes().to_vec());
    let client = PushClient::new(cfg).unwrap();

    let payload = json!({"type": "message", "conversation_id": "c-1", "count": 2});
    let payload = payload.as_object().unwrap();
    let msg = PushMessage {
        payload,
        ttl: Duration::from_secs(60),
        urgency: Urgency::High,
        topic: Some("c-1"),
    };
    let retry_7s = |outcome: Outcome| match outcome {
        Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
        other => panic!("expected a retry, got {other:?}"),
    };

    // Web Push: decrypts to the payload, VAPID valid.
    let (endpoint, p256dh, auth) = webpush.subscription();
    let (p256dh, auth) = (
        ece::parse_p256dh(&p256dh).unwrap(),
        ece::parse_auth(&auth).unwrap(),
    );
    let target = Target::WebPush {
        endpoint: &endpoint,
        p256dh: &p256dh,
        auth: &auth,
    };
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    let got = webpush.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].vapid_ok, "{got:?}");
    assert_eq!(got[0].payload, Value::Object(payload.clone()));
    assert_eq!(got[0].ttl, Some(60));
    assert_eq!(got[0].urgency.as_deref(), Some("high"));
    assert_eq!(got[0].topic.as_deref(), Some("c-1"));
    assert_eq!(got[0].content_encoding.as_deref(), Some("aes128gcm"));
    webpush.queue_status(503, Some(7));
    retry_7s(client.send(target, &msg).await);
    webpush.unsubscribe(&endpoint);
    assert_eq!(client.send(target, &msg).await, Outcome::Gone);

    // FCM: one token request serves two sends; data-only message.
    let fcm_token = "fcm-registration-token-1";
    let target = Target::Fcm { token: fcm_token };
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    assert_eq!(fcm.token_requests(), 1, "{:?}", fcm.token_errors());
    let sent = fcm.wait_for(2, Duration::from_secs(5)).await;
    assert!(sent.iter().all(|m| m.bearer_ok && m.status == 200));
    assert_eq!(
        sent[0].message,
        json!({
            "token": fcm_token,
            "data": {"type": "message", "conversation_id": "c-1", "count": "2"},
            "android": {"priority": "high", "ttl": "60s", "collapse_key": "c-1"},
        })
    );
    // A revoked token: 401, one fresh token, delivered.
    fcm.revoke_tokens();
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    assert_eq!(fcm.token_requests(), 2);
    fcm.queue_status(503, Some(7));
    retry_7s(client.send(target, &msg).await);
    fcm.unregister(fcm_token);
    assert_eq!(client.send(target, &msg).await, Outcome::Gone);

    // APNs over HTTP/2 with a valid provider token.
    let device = "a1b2c3d4".repeat(8);
    let target = Target::Apns {
        token: &device,
        sandbox: false,
    };
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    let got = apns.wait_for(1, Duration::from_secs(5)).await;
    let first = &got[0];
    assert!(first.token_ok && first.http2, "{first:?}");
    assert_eq!(first.device_token, device);
    assert_eq!(first.push_type.as_deref(), Some("alert"));
    assert_eq!(first.priority.as_deref(), Some("10"));
    assert_eq!(first.collapse_id.as_deref(), Some("c-1"));
    assert_eq!(first.topic.as_deref(), Some(apns.topic()));
    assert_eq!(first.body["aps"]["mutable-content"], 1);
    assert_eq!(first.body["aps"]["alert"]["title"], "SecureConnect");
    assert_eq!(first.body["conversation_id"], "c-1");
    // An expired provider token is replaced once.
    apns.queue_reason(403, "ExpiredProviderToken");
    assert_eq!(client.send(target, &msg).await, Outcome::Delivered);
    apns.queue_status(503, Some(7));
    retry_7s(client.send(target, &msg).await);
    apns.queue_reason(400, "BadDeviceToken");
    assert_eq!(client.send(target, &msg).await, Outcome::Gone);
    apns.unregister(&device);
    assert_eq!(client.send(target, &msg).await, Outcome::Gone);

    // The servers check what they claim to: a foreign VAPID key, an assertion for another
    // audience and a foreign APNs key are all refused.
    let mut cfg = PushConfig::new(Arc::new(VapidKey::generate()), "mailto:admin@example.org");
    cfg.allow_insecure_endpoints = true;
    let mut creds = FcmCredentials::from_json(&fcm.credentials_json()).unwrap();
    creds.token_uri = format!("{}/token?aud=elsewhere", fcm.endpoint());
    cfg.fcm = Some(creds);
    cfg.fcm_endpoint = fcm.endpoint().to_owned();
    let stranger = ApnsServer::start().await;
    cfg.apns = Some(ApnsConfig {
        key_pem: stranger.key_pem().to_owned(),
        key_id: apns.key_id().to_owned(),
        team_id: apns.team_id().to_owned(),
        topic: apns.topic().to_owned(),
        endpoint: Some(apns.endpoint().to_owned()),
    });
    cfg.extra_root_ca_pem = Some(TEST_CA_PEM.as_bytes().to_vec());
    let impostor = PushClient::new(cfg).unwrap();
    let (endpoint, p256dh, auth) = webpush.subscription();
    let (p256dh, auth) = (
        ece::parse_p256dh(&p256dh).unwrap(),
        ece::parse_auth(&auth).unwrap(),
    );
    let target = Target::WebPush {
        endpoint: &endpoint,
        p256dh: &p256dh,
        auth: &auth,
    };
    let refused =
        |outcome: Outcome| assert!(matches!(outcome, Outcome::Rejected { .. }), "{outcome:?}");
    refused(impostor.send(target, &msg).await);
    let last = webpush.records().pop().unwrap();
    assert!(!last.vapid_ok && last.status == 401, "{last:?}");
    assert_eq!(
        last.payload,
        Value::Object(payload.clone()),
        "decrypts all the same"
    );
    refused(impostor.send(Target::Fcm { token: fcm_token }, &msg).await);
    assert!(
        fcm.token_errors().iter().any(|e| e.contains("assertion")),
        "{:?}",
        fcm.token_errors()
    );
    refused(impostor.send(target_apns(&device), &msg).await);
    let last = apns.records().pop().unwrap();
    assert!(!last.token_ok && last.status == 403, "{last:?}");
}

fn target_apns(device: &str) -> sc_infra::push::Target<'_> {
    sc_infra::push::Target::Apns {
        token: device,
        sandbox: true,
    }
}
