//! A real call: two WebRTC peers (str0m, sans-IO, each on its own UDP socket of 127.0.0.1) that
//! exchange their offer, answer and ICE candidates only through the server's `call.signal`
//! relay, then reach ICE connected and DTLS established and send data-channel messages both
//! ways. Once on host candidates, once on relay candidates only: a coturn started by the test
//! with the server's TURN secret, spoken to by a minimal TURN client (RFC 8656: Allocate with
//! long-term credentials, CreatePermission, Send and Data indications) because str0m has none.
//! The TURN test also shows that coturn accepts the credentials the server hands out and refuses
//! expired ones. Without `turnserver` on the PATH it says so and skips, unless
//! `SC_TEST_REQUIRE_ALL=1`.

use crate::common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use str0m::{
    Candidate, Event, IceConnectionState, Input, Output, Rtc,
    change::{SdpAnswer, SdpOffer, SdpPendingOffer},
    channel::ChannelId,
    net::{Protocol, Receive},
};
use tokio::net::UdpSocket;

const TURN_SECRET: &str = "webrtc-test-turn-secret";
const REALM: &str = "sc.test";

fn require_all() -> bool {
    std::env::var("SC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_peers_connect_through_server_signaling() {
    let app = TestApp::spawn().await;
    let call = Call::start(&app, "rtchosta", "rtchostb").await;
    let (sa, sb) = (host_socket().await, host_socket().await);
    let (ra, rb) = call.run(Link::Host(sa), Link::Host(sb)).await;
    for r in [&ra, &rb] {
        r.assert_connected();
        assert!(
            r.local_candidates.iter().all(|c| c.contains("typ host")),
            "{r:?}"
        );
        assert!(
            r.remote_candidates.iter().all(|c| c.contains("typ host")),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn two_peers_connect_through_coturn_relay_only() {
    let Some(turn) = Coturn::start_or_skip() else {
        return;
    };
    let url = format!("turn:127.0.0.1:{}?transport=udp", turn.port);
    let app = TestApp::spawn_with(|c| {
        c.turn_secret = Some(sc_core::secret::Secret::new(TURN_SECRET));
        c.turn_urls = sc_core::config::List(vec![url.clone()]);
    })
    .await;
    let call = Call::start(&app, "rtcrelaya", "rtcrelayb").await;

    // coturn refuses a credential of the same scheme whose expiry has passed (401 on the
    // authenticated Allocate).
    let past = time::OffsetDateTime::now_utc().unix_timestamp() - 60;
    let expired_user = format!("{past}:{}", call.a.id);
    let expired = TurnCreds {
        username: expired_user.clone(),
        password: rest_credential(TURN_SECRET, &expired_user),
    };
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    match allocate(&sock, turn.addr(), &expired).await {
        Err(TurnError::Refused(code)) => assert!(code == 401 || code == 438, "{code}"),
        other => panic!("an expired credential was not refused: {other:?}"),
    }
    // A wrong credential for a live username is refused too (from a fresh 5-tuple).
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let forged = TurnCreds {
        username: call.creds_a.username.clone(),
        password: rest_credential("not-the-secret", &call.creds_a.username),
    };
    match allocate(&sock, turn.addr(), &forged).await {
        Err(TurnError::Refused(code)) => assert!(code == 401 || code == 438, "{code}"),
        other => panic!("a forged credential was not refused: {other:?}"),
    }

    // The server's own credentials (from the create and join answers) get relays.
    let mut links = Vec::new();
    for creds in [&call.creds_a, &call.creds_b] {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = allocate(&sock, turn.addr(), creds)
            .await
            .expect("coturn allocates with the server's credentials");
        links.push(Link::Relay(sock, relay));
    }
    let lb = links.pop().unwrap();
    let la = links.pop().unwrap();
    let (ra, rb) = call.run(la, lb).await;
    for r in [&ra, &rb] {
        r.assert_connected();
        assert!(!r.local_candidates.is_empty() && !r.remote_candidates.is_empty());
        assert!(
            r.local_candidates.iter().all(|c| c.contains("typ relay")),
            "{r:?}"
        );
        assert!(
            r.remote_candidates.iter().all(|c| c.contains("typ relay")),
            "{r:?}"
        );
        // Everything the peer received came out of Data indications of the relay.
        assert!(r.relayed_datagrams > 0, "{r:?}");
        assert_eq!(r.direct_datagrams, 0, "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The call through the server
// ---------------------------------------------------------------------------------------------

struct Call {
    a: TestUser,
    b: TestUser,
    call_id: String,
    ws_a: Ws,
    ws_b: Ws,
    creds_a: TurnCreds,
    creds_b: TurnCreds,
}

impl Call {
    /// Two users in a group; `a` creates an audio call, `b` joins it; both have a socket.
    async fn start(app: &TestApp, na: &str, nb: &str) -> Call {
        let a = app.register(na).await;
        let b = app.register(nb).await;
        let g = app.group(&a, &[&b]).await;
        let ws_a = app.ws(&a).await;
        let ws_b = app.ws(&b).await;
        let created = app
            .post(
                "/v1/calls",
                Some(&a.access),
                json!({"conversation_id": g, "kind": "audio"}),
            )
            .await;
        let created = created.assert_ok(201).clone();
        let call_id = created["id"].as_str().unwrap().to_string();
        let joined = app
            .post(
                &format!("/v1/calls/{call_id}/join"),
                Some(&b.access),
                json!({}),
            )
            .await;
        let joined = joined.assert_ok(200).clone();
        assert_eq!(joined["status"], "active");
        let creds_a = TurnCreds::from_ice_servers(&created["ice_servers"]);
        let creds_b = TurnCreds::from_ice_servers(&joined["ice_servers"]);
        Call {
            a,
            b,
            call_id,
            ws_a,
            ws_b,
            creds_a: creds_a.unwrap_or_default(),
            creds_b: creds_b.unwrap_or_default(),
        }
    }

    /// Runs both peers at once (`a` offers) until each has received the other's message.
    async fn run(self, la: Link, lb: Link) -> (Report, Report) {
        let done = Arc::new(AtomicUsize::new(0));
        let pa = Peer::new(
            "a",
            true,
            la,
            self.ws_a,
            &self.call_id,
            &self.b,
            done.clone(),
        );
        let pb = Peer::new("b", false, lb, self.ws_b, &self.call_id, &self.a, done);
        let (ra, rb) = tokio::join!(pa.run(), pb.run());
        eprintln!("peer reports:\n{ra:#?}\n{rb:#?}");
        (ra, rb)
    }
}

#[derive(Clone, Debug, Default)]
struct TurnCreds {
    username: String,
    password: String,
}

impl TurnCreds {
    fn from_ice_servers(v: &Value) -> Option<TurnCreds> {
        let turn = v.as_array()?.iter().find(|s| s["username"].is_string())?;
        Some(TurnCreds {
            username: turn["username"].as_str()?.to_string(),
            password: turn["credential"].as_str()?.to_string(),
        })
    }
}

/// coturn's REST credential: base64(HMAC-SHA1(secret, username)).
fn rest_credential(secret: &str, username: &str) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------------------------
// A peer: str0m driven by its own UDP loop, signaling over its realtime socket
// ---------------------------------------------------------------------------------------------

/// How a peer's datagrams travel: straight from its socket, or wrapped for a TURN relay.
enum Link {
    Host(UdpSocket),
    /// The socket that holds the allocation, and the relayed address.
    Relay(UdpSocket, Relay),
}

#[derive(Debug, Clone, Copy)]
struct Relay {
    server: SocketAddr,
    relayed: SocketAddr,
}

async fn host_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[derive(Debug, Default)]
struct Report {
    name: &'static str,
    ice_connected: bool,
    dtls_connected: bool,
    channel_open: bool,
    sent: bool,
    received: Option<String>,
    local_candidates: Vec<String>,
    remote_candidates: Vec<String>,
    signals_sent: Vec<String>,
    signals_received: Vec<String>,
    relayed_datagrams: usize,
    direct_datagrams: usize,
    elapsed: Duration,
}

impl Report {
    fn assert_connected(&self) {
        assert!(self.ice_connected, "ICE never connected: {self:?}");
        assert!(self.dtls_connected, "DTLS never established: {self:?}");
        assert!(self.channel_open, "no data channel: {self:?}");
        assert!(self.sent, "nothing sent: {self:?}");
        let other = if self.name == "a" { "b" } else { "a" };
        assert_eq!(
            self.received.as_deref(),
            Some(format!("hello from {other}").as_str()),
            "{self:?}"
        );
        // The description and the candidates both ways went through the server.
        let (mine, theirs) = if self.name == "a" {
            ("offer", "answer")
        } else {
            ("answer", "offer")
        };
        for (sent, got) in [(mine, theirs), ("ice", "ice")] {
            assert!(self.signals_sent.iter().any(|k| k == sent), "{self:?}");
            assert!(self.signals_received.iter().any(|k| k == got), "{self:?}");
        }
    }
}

struct Peer {
    rtc: Rtc,
    link: Link,
    ws: Ws,
    offerer: bool,
    call_id: String,
    /// The other peer's session and user, as the server must report them.
    to_session: String,
    to_user: String,
    pending: Option<SdpPendingOffer>,
    remote_description: bool,
    queued: Vec<Candidate>,
    done: Arc<AtomicUsize>,
    report: Report,
}

enum Wake {
    Timeout,
    Datagram(usize, SocketAddr),
    Frame(Option<Value>),
}

impl Peer {
    fn new(
        name: &'static str,
        offerer: bool,
        link: Link,
        ws: Ws,
        call_id: &str,
        other: &TestUser,
        done: Arc<AtomicUsize>,
    ) -> Peer {
        Peer {
            rtc: Rtc::new(Instant::now()),
            link,
            ws,
            offerer,
            call_id: call_id.to_string(),
            to_session: other.session_id.clone(),
            to_user: other.id.clone(),
            pending: None,
            remote_description: false,
            queued: Vec::new(),
            done,
            report: Report {
                name,
                ..Report::default()
            },
        }
    }

    /// The candidate this peer offers: its socket, or its relayed address only.
    fn local_candidate(&self) -> Candidate {
        match &self.link {
            Link::Host(s) => Candidate::host(s.local_addr().unwrap(), "udp").unwrap(),
            Link::Relay(s, r) => {
                Candidate::relayed(r.relayed, s.local_addr().unwrap(), "udp").unwrap()
            }
        }
    }

    async fn signal(&mut self, signal: Value) {
        // Candidates travel as `ice` signals only, never inside a description.
        let sdp = signal["sdp"].as_str().unwrap_or_default();
        assert!(!sdp.contains("a=candidate"), "{sdp}");
        self.report
            .signals_sent
            .push(signal["kind"].as_str().unwrap().to_string());
        self.ws
            .send(json!({"type": "call.signal", "data": {
                "call_id": self.call_id,
                "to_session_id": self.to_session,
                "signal": signal,
            }}))
            .await;
    }

    /// Drains `poll_output` to its next timeout (str0m's rule after every mutation).
    async fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().expect("poll_output") {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => match &self.link {
                    Link::Host(s) => {
                        let _ = s.send_to(&t.contents, t.destination).await;
                    }
                    Link::Relay(s, r) => {
                        let msg = send_indication(t.destination, &t.contents);
                        let _ = s.send_to(&msg, r.server).await;
                    }
                },
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => self.report.ice_connected = true,
            Event::Connected => self.report.dtls_connected = true,
            Event::ChannelOpen(id, _) => {
                self.report.channel_open = true;
                self.write_hello(id);
            }
            Event::ChannelData(d) if self.report.received.is_none() => {
                self.report.received = Some(String::from_utf8_lossy(&d.data).into_owned());
                self.done.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }

    /// A write is a mutation made inside the drain loop, which goes on draining after it.
    fn write_hello(&mut self, id: ChannelId) {
        let text = format!("hello from {}", self.report.name);
        let mut ch = self.rtc.channel(id).expect("open channel");
        self.report.sent = ch.write(false, text.as_bytes()).expect("channel write");
    }

    async fn add_local_candidate(&mut self) {
        let c = self.local_candidate();
        let c = self
            .rtc
            .add_local_candidate(c)
            .expect("a usable local candidate")
            .to_sdp_string();
        self.drain().await;
        self.report.local_candidates.push(c.clone());
        self.signal(json!({"kind": "ice", "candidate": c})).await;
    }

    async fn add_remote_candidate(&mut self, c: Candidate) {
        self.rtc.add_remote_candidate(c);
        self.drain().await;
    }

    async fn on_signal(&mut self, data: Value) {
        assert_eq!(data["call_id"], self.call_id.as_str());
        assert_eq!(data["from_session_id"], self.to_session.as_str());
        assert_eq!(data["from_user_id"], self.to_user.as_str());
        let signal = &data["signal"];
        let kind = signal["kind"].as_str().unwrap_or_default().to_string();
        self.report.signals_received.push(kind.clone());
        match kind.as_str() {
            "offer" => {
                let offer = SdpOffer::from_sdp_string(signal["sdp"].as_str().unwrap()).unwrap();
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("accept offer");
                self.drain().await;
                self.signal(json!({"kind": "answer", "sdp": answer.to_sdp_string()}))
                    .await;
                self.remote_description().await;
            }
            "answer" => {
                let answer = SdpAnswer::from_sdp_string(signal["sdp"].as_str().unwrap()).unwrap();
                let pending = self.pending.take().expect("an offer was made");
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .expect("accept answer");
                self.drain().await;
                self.remote_description().await;
            }
            "ice" => {
                let s = signal["candidate"].as_str().unwrap();
                self.report.remote_candidates.push(s.to_string());
                let c = Candidate::from_sdp_string(s).expect("remote candidate");
                if self.remote_description {
                    self.add_remote_candidate(c).await;
                } else {
                    self.queued.push(c);
                }
            }
            other => panic!("unexpected signal {other}"),
        }
    }

    /// Offer and answer are done: trickle the local candidate and apply queued remote ones.
    async fn remote_description(&mut self) {
        self.remote_description = true;
        self.add_local_candidate().await;
        for c in std::mem::take(&mut self.queued) {
            self.add_remote_candidate(c).await;
        }
    }

    /// Turns a datagram from the socket into str0m input (unwrapping Data indications).
    fn input<'a>(&mut self, buf: &'a [u8], from: SocketAddr) -> Option<Input<'a>> {
        let (source, destination, contents) = match &self.link {
            Link::Host(s) => {
                self.report.direct_datagrams += 1;
                (from, s.local_addr().unwrap(), buf)
            }
            Link::Relay(_, r) => {
                if from != r.server {
                    self.report.direct_datagrams += 1;
                    return None;
                }
                let (peer, data) = parse_data_indication(buf)?;
                self.report.relayed_datagrams += 1;
                (peer, r.relayed, data)
            }
        };
        let contents = contents.try_into().ok()?;
        Some(Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        ))
    }

    async fn run(mut self) -> Report {
        let start = Instant::now();
        if self.offerer {
            let mut change = self.rtc.sdp_api();
            change.add_channel("chat".into());
            let (offer, pending) = change.apply().expect("an offer");
            self.pending = Some(pending);
            self.drain().await;
            self.signal(json!({"kind": "offer", "sdp": offer.to_sdp_string()}))
                .await;
        }
        let mut buf = vec![0u8; 2048];
        let deadline = start + Duration::from_secs(30);
        let mut next = self.drain().await;
        // Each peer stops once both have their message (the other side may still need our
        // acknowledgements until then).
        while self.done.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            let wait = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let wake = {
                let sock = match &self.link {
                    Link::Host(s) | Link::Relay(s, _) => s,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => Wake::Timeout,
                    r = sock.recv_from(&mut buf) => match r {
                        Ok((n, from)) => Wake::Datagram(n, from),
                        Err(_) => Wake::Timeout,
                    },
                    f = self.ws.next_frame() => Wake::Frame(f),
                }
            };
            match wake {
                Wake::Timeout => {
                    self.rtc
                        .handle_input(Input::Timeout(Instant::now()))
                        .expect("timeout input");
                }
                Wake::Datagram(n, from) => {
                    let data = buf[..n].to_vec();
                    if let Some(input) = self.input(&data, from) {
                        // A packet str0m cannot use is its business, not the test's.
                        let _ = self.rtc.handle_input(input);
                    }
                }
                Wake::Frame(Some(f)) if f["type"] == "call.signal" => {
                    self.on_signal(f["data"].clone()).await;
                }
                Wake::Frame(Some(f)) if f["type"] == "error" => {
                    panic!("{}: the server refused a signal: {f}", self.report.name)
                }
                Wake::Frame(_) => {}
            }
            next = self.drain().await;
        }
        self.report.elapsed = start.elapsed();
        self.report
    }
}

// ---------------------------------------------------------------------------------------------
// coturn
// ---------------------------------------------------------------------------------------------

struct Coturn {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts `turnserver` on a free port of 127.0.0.1 with the test's REST secret; without it
    /// on the PATH, fails in CI and returns None (with the reason printed) elsewhere.
    fn start_or_skip() -> Option<Coturn> {
        let found = Command::new("turnserver")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                !require_all(),
                "turnserver (coturn) is required with SC_TEST_REQUIRE_ALL=1"
            );
            eprintln!("skipped: turnserver (coturn) is not on the PATH (apt-get install coturn)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", TURN_SECRET])
            .args(["--realm", REALM, "--allow-loopback-peers"])
            .arg("--pidfile")
            .arg(dir.path().join("turnserver.pid"))
            .arg("--db")
            .arg(dir.path().join("turndb"))
            .arg("--log-file")
            .arg(dir.path().join("turn.log"))
            .arg("--simple-log")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver");
        let mut c = Coturn {
            port,
            child,
            _dir: dir,
        };
        // coturn listens on TCP on the same port too: ready when it accepts.
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(c);
            }
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("turnserver exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("turnserver did not listen on {port}");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal TURN client (RFC 8489 STUN framing, RFC 8656 TURN over UDP)
// ---------------------------------------------------------------------------------------------

const MAGIC: u32 = 0x2112_A442;
const ALLOCATE: u16 = 0x0003;
const CREATE_PERMISSION: u16 = 0x0008;
const SEND_INDICATION: u16 = 0x0016;
const DATA_INDICATION: u16 = 0x0017;
const SUCCESS: u16 = 0x0100;
const ERROR: u16 = 0x0110;

const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const XOR_PEER_ADDRESS: u16 = 0x0012;
const DATA: u16 = 0x0013;
const REALM_ATTR: u16 = 0x0014;
const NONCE: u16 = 0x0015;
const XOR_RELAYED_ADDRESS: u16 = 0x0016;
const REQUESTED_TRANSPORT: u16 = 0x0019;

#[derive(Debug)]
enum TurnError {
    /// An error response, by code (401 Unauthorized, 438 Stale Nonce, …).
    Refused(u16),
    NoAnswer,
    Malformed,
}

struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(kind: u16, tid: [u8; 12]) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&kind.to_be_bytes());
        buf.extend_from_slice(&0u16.to_be_bytes());
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.extend_from_slice(&tid);
        Msg { buf }
    }

    fn attr(mut self, t: u16, v: &[u8]) -> Msg {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(v);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self.set_len(self.buf.len() - 20);
        self
    }

    fn set_len(&mut self, n: usize) {
        self.buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    }

    /// MESSAGE-INTEGRITY: HMAC-SHA1 over the message with its length already counting the
    /// attribute, keyed (long-term credentials) with MD5(username:realm:password).
    fn integrity(mut self, key: &[u8]) -> Msg {
        self.set_len(self.buf.len() - 20 + 24);
        let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
        mac.update(&self.buf);
        let tag = mac.finalize().into_bytes();
        self.attr(MESSAGE_INTEGRITY, &tag)
    }
}

fn xor_addr(a: SocketAddr) -> Vec<u8> {
    let IpAddr::V4(ip) = a.ip() else {
        panic!("IPv4 only")
    };
    let mut v = vec![0, 0x01];
    v.extend_from_slice(&(a.port() ^ (MAGIC >> 16) as u16).to_be_bytes());
    v.extend_from_slice(&(u32::from(ip) ^ MAGIC).to_be_bytes());
    v
}

fn parse_xor_addr(v: &[u8]) -> Option<SocketAddr> {
    if v.len() < 8 || v[1] != 0x01 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC >> 16) as u16;
    let ip = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
}

/// A STUN message's type, transaction id and attributes (type, value).
type Parsed<'a> = (u16, [u8; 12], Vec<(u16, &'a [u8])>);

fn parse(buf: &[u8]) -> Option<Parsed<'_>> {
    if buf.len() < 20 || buf[0] & 0xC0 != 0 || buf[4..8] != MAGIC.to_be_bytes() {
        return None;
    }
    let kind = u16::from_be_bytes([buf[0], buf[1]]);
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let tid: [u8; 12] = buf[8..20].try_into().ok()?;
    let body = buf.get(20..20 + len)?;
    let mut attrs = Vec::new();
    let mut i = 0;
    while i + 4 <= body.len() {
        let t = u16::from_be_bytes([body[i], body[i + 1]]);
        let l = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let v = body.get(i + 4..i + 4 + l)?;
        attrs.push((t, v));
        i += 4 + l.div_ceil(4) * 4;
    }
    Some((kind, tid, attrs))
}

fn find<'a>(attrs: &[(u16, &'a [u8])], t: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| *v)
}

fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    Msg::new(SEND_INDICATION, rand::random())
        .attr(XOR_PEER_ADDRESS, &xor_addr(peer))
        .attr(DATA, data)
        .buf
}

fn parse_data_indication(buf: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let (kind, _, attrs) = parse(buf)?;
    if kind != DATA_INDICATION {
        return None;
    }
    Some((
        parse_xor_addr(find(&attrs, XOR_PEER_ADDRESS)?)?,
        find(&attrs, DATA)?,
    ))
}

/// Sends a request and waits for the response with its transaction id (retransmitting).
async fn transact(
    sock: &UdpSocket,
    server: SocketAddr,
    msg: &[u8],
) -> Result<(u16, Vec<(u16, Vec<u8>)>), TurnError> {
    let tid: [u8; 12] = msg[8..20].try_into().unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..4 {
        sock.send_to(msg, server)
            .await
            .map_err(|_| TurnError::NoAnswer)?;
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await
        {
            if from != server {
                continue;
            }
            let Some((kind, t, attrs)) = parse(&buf[..n]) else {
                continue;
            };
            if t == tid {
                let attrs = attrs.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
                return Ok((kind, attrs));
            }
        }
    }
    Err(TurnError::NoAnswer)
}

fn error_code(attrs: &[(u16, Vec<u8>)]) -> u16 {
    attrs
        .iter()
        .find(|(k, _)| *k == ERROR_CODE)
        .filter(|(_, v)| v.len() >= 4)
        .map(|(_, v)| u16::from(v[2] & 0x07) * 100 + u16::from(v[3]))
        .unwrap_or(0)
}

fn attr_of(attrs: &[(u16, Vec<u8>)], t: u16) -> Option<Vec<u8>> {
    attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| v.clone())
}

/// Allocates a UDP relay with long-term credentials (a 401 with REALM and NONCE first, then
/// the authenticated request), then permits 127.0.0.1 as a peer. Returns the relayed address.
async fn allocate(
    sock: &UdpSocket,
    server: SocketAddr,
    creds: &TurnCreds,
) -> Result<Relay, TurnError> {
    let transport = [17u8, 0, 0, 0]; // UDP
    let first = Msg::new(ALLOCATE, rand::random()).attr(REQUESTED_TRANSPORT, &transport);
    let (kind, attrs) = transact(sock, server, &first.buf).await?;
    if kind != ALLOCATE | ERROR || error_code(&attrs) != 401 {
        return Err(TurnError::Malformed);
    }
    let realm = attr_of(&attrs, REALM_ATTR).ok_or(TurnError::Malformed)?;
    let mut nonce = attr_of(&attrs, NONCE).ok_or(TurnError::Malformed)?;
    let key = {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        h.update(creds.username.as_bytes());
        h.update(b":");
        h.update(&realm);
        h.update(b":");
        h.update(creds.password.as_bytes());
        h.finalize().to_vec()
    };
    let signed = |method: u16, nonce: &[u8], extra: &[(u16, Vec<u8>)]| {
        let mut m = Msg::new(method, rand::random());
        for (t, v) in extra {
            m = m.attr(*t, v);
        }
        m.attr(USERNAME, creds.username.as_bytes())
            .attr(REALM_ATTR, &realm)
            .attr(NONCE, nonce)
            .integrity(&key)
            .buf
    };
    // A stale nonce (438) is answered once more with the fresh one.
    let mut relayed = None;
    for _ in 0..2 {
        let msg = signed(
            ALLOCATE,
            &nonce,
            &[(REQUESTED_TRANSPORT, transport.to_vec())],
        );
        let (kind, attrs) = transact(sock, server, &msg).await?;
        if kind == ALLOCATE | SUCCESS {
            let a = attr_of(&attrs, XOR_RELAYED_ADDRESS).ok_or(TurnError::Malformed)?;
            relayed = Some(parse_xor_addr(&a).ok_or(TurnError::Malformed)?);
            break;
        }
        let code = error_code(&attrs);
        match attr_of(&attrs, NONCE) {
            Some(n) if code == 438 && n != nonce => nonce = n,
            _ => return Err(TurnError::Refused(code)),
        }
    }
    let relayed = relayed.ok_or(TurnError::Refused(438))?;
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let msg = signed(
        CREATE_PERMISSION,
        &nonce,
        &[(XOR_PEER_ADDRESS, xor_addr(peer))],
    );
    let (kind, attrs) = transact(sock, server, &msg).await?;
    if kind != CREATE_PERMISSION | SUCCESS {
        return Err(TurnError::Refused(error_code(&attrs)));
    }
    Ok(Relay { server, relayed })
}
