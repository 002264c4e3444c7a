//! The load generator and its ledger.
//!
//! Senders post messages with unique `client_message_id`s into a few conversations, spread over
//! the instances; a failed attempt (transport error, client timeout, 408, 429, 5xx) is retried
//! with the SAME id, on the next instance, as a client behind a load balancer would. Every send
//! is recorded: id, attempts, final status, message id, seq. WebSocket receivers record every
//! `message.created` they see and reconnect when their socket ends. Probers poll `/ready` and use
//! a session that is ended (logout) in the middle of the fault. Afterwards each receiver catches
//! up with `GET …/messages?after_seq=` from the last seq it holds without a gap.

use crate::common::{PASSWORD, TestUser};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long each phase lasts and how hard the load pushes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Load before the fault.
    pub warmup: Duration,
    /// How long the fault lasts.
    pub fault: Duration,
    /// Load after the fault ends.
    pub after: Duration,
    pub senders: usize,
    pub conversations: usize,
    /// Pause between two sends of one sender.
    pub pace: Duration,
    /// The server's `request_timeout_seconds`.
    pub server_timeout: Duration,
    /// After the fault ends, the server must serve sends and answer `/ready` ok within this.
    pub recovery: Duration,
    /// `/ready` probes sent this long after the fault began (and answered before it ended)
    /// must report it.
    pub ready_grace: Duration,
}

impl Plan {
    /// A few seconds of load: the set that runs in every `cargo test`.
    pub fn short() -> Plan {
        Plan {
            warmup: Duration::from_millis(800),
            fault: Duration::from_millis(3000),
            after: Duration::from_millis(800),
            senders: 6,
            conversations: 3,
            pace: Duration::from_millis(25),
            server_timeout: Duration::from_secs(3),
            recovery: Duration::from_secs(20),
            ready_grace: Duration::from_millis(300),
        }
    }

    /// The whole set (`scripts/faults.sh`): longer faults, more load.
    pub fn full() -> Plan {
        Plan {
            warmup: Duration::from_secs(2),
            fault: Duration::from_secs(6),
            after: Duration::from_secs(3),
            senders: 8,
            conversations: 4,
            pace: Duration::from_millis(15),
            ..Plan::short()
        }
    }

    /// A client gives up on one request this long after sending it: a bit above the server's
    /// own request timeout, so only a request the server never answered hits it.
    pub fn client_timeout(&self) -> Duration {
        self.server_timeout + Duration::from_secs(2)
    }

    pub fn long() -> bool {
        std::env::var("SC_FAULTS_FULL").is_ok_and(|v| v == "1")
    }
}

/// What one HTTP attempt came to.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16, Value),
    /// Connection refused or reset, or the body could not be read.
    Transport(String),
    /// No answer within the client timeout.
    Hung,
}

#[derive(Default)]
pub struct Stats {
    /// Message sends waiting for an answer, per instance base URL.
    pub sends_in_flight: Mutex<BTreeMap<String, i64>>,
    pub requests: AtomicU64,
    pub max_micros: AtomicU64,
    pub hung: Mutex<Vec<String>>,
}

/// An HTTP client that measures every request and gives up after the client timeout.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    pub timeout: Duration,
    pub stats: Arc<Stats>,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        Http {
            client: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            timeout,
            stats: Arc::default(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut req = self.client.request(method.clone(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_null() {
            req = req.json(&body);
        }
        let started = Instant::now();
        let r = tokio::time::timeout(self.timeout, async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        })
        .await;
        let took = started.elapsed();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .max_micros
            .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
        match r {
            Ok(Ok((status, text))) => {
                Answer::Status(status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Ok(Err(e)) => Answer::Transport(e.to_string()),
            Err(_) => {
                let path = url.split_once("//").map_or(url, |(_, rest)| rest);
                let path = path.split_once('/').map_or("", |(_, p)| p);
                let path = path.split('?').next().unwrap_or_default();
                self.stats
                    .hung
                    .lock()
                    .unwrap()
                    .push(format!("{method} /{path} after {took:?}"));
                Answer::Hung
            }
        }
    }

    pub async fn get(&self, url: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, url, token, Value::Null).await
    }

    pub async fn post(&self, url: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, url, token, body).await
    }

    pub fn max_request(&self) -> Duration {
        Duration::from_micros(self.stats.max_micros.load(Ordering::Relaxed))
    }
}

/// The users and conversations of one episode.
pub struct World {
    pub senders: Vec<TestUser>,
    /// Each receiver and the instance its socket prefers.
    pub receivers: Vec<(TestUser, usize)>,
    /// The user whose session is ended in the middle of the fault.
    pub leaver: TestUser,
    pub convs: Vec<String>,
}

impl World {
    pub async fn create(http: &Http, base: &str, plan: &Plan, instances: usize) -> World {
        let register = async |name: String| {
            let email = format!("{name}@example.org");
            let body = json!({"email": email, "username": name, "password": PASSWORD, "display_name": name});
            match http
                .post(&format!("{base}/v1/auth/register"), None, body)
                .await
            {
                Answer::Status(201, v) => TestUser::from_pair(&v["data"], &email),
                other => panic!("register {name}: {other:?}"),
            }
        };
        let mut senders = Vec::new();
        for s in 0..plan.senders {
            senders.push(register(format!("sender{s}")).await);
        }
        let mut receivers = Vec::new();
        for r in 0..instances.max(2) {
            receivers.push((register(format!("receiver{r}")).await, r % instances));
        }
        let leaver = register("leaver".into()).await;
        let members: Vec<&str> = senders[1..]
            .iter()
            .chain(receivers.iter().map(|(u, _)| u))
            .map(|u| u.id.as_str())
            .collect();
        let mut convs = Vec::new();
        for c in 0..plan.conversations {
            let body =
                json!({"kind": "group", "member_ids": members, "title": format!("room {c}")});
            match http
                .post(
                    &format!("{base}/v1/conversations"),
                    Some(&senders[0].access),
                    body,
                )
                .await
            {
                Answer::Status(201, v) => convs.push(v["data"]["id"].as_str().unwrap().to_string()),
                other => panic!("create conversation: {other:?}"),
            }
        }
        World {
            senders,
            receivers,
            leaver,
            convs,
        }
    }

    pub fn owner(&self) -> &TestUser {
        &self.senders[0]
    }
}

/// One send of the ledger.
#[derive(Clone, Debug)]
pub struct SendRecord {
    pub cmid: String,
    pub conv: String,
    pub attempts: u32,
    /// Statuses of the failed attempts: 0 = transport error, 1 = no answer in time.
    pub failures: Vec<u16>,
    /// The final status: 2xx acknowledged, another 4xx refused, 0 given up.
    pub status: u16,
    pub message_id: Option<String>,
    pub seq: Option<i64>,
    /// A 2xx whose body was not the message asked for, or the body of a final refusal.
    pub wrong_answer: Option<String>,
    /// The body of the last failed attempt.
    pub last_failure: Option<String>,
}

impl SendRecord {
    pub fn acked(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One `message.created` a receiver saw, or one message of a history page.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Msg {
    pub conv: String,
    pub seq: i64,
    pub id: String,
    pub cmid: String,
}

impl Msg {
    fn from(v: &Value) -> Option<Msg> {
        Some(Msg {
            conv: v["conversation_id"].as_str()?.to_string(),
            seq: v["seq"].as_i64()?,
            id: v["id"].as_str()?.to_string(),
            cmid: v["client_message_id"].as_str()?.to_string(),
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReceiverLog {
    pub name: String,
    pub live: Vec<Msg>,
    pub caught_up: Vec<Msg>,
    pub connects: u32,
    /// Why each socket ended.
    pub ends: Vec<String>,
}

/// One `/ready` probe.
#[derive(Clone, Debug)]
pub struct ReadySample {
    pub instance: usize,
    pub sent: Instant,
    pub answered: Instant,
    pub answer: Answer,
}

/// One request made with the session that is ended mid-fault.
#[derive(Clone, Debug)]
pub struct SessionSample {
    pub instance: usize,
    pub sent: Instant,
    pub what: &'static str,
    pub status: Option<u16>,
}

#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Since the fault ended: first acknowledged send through this instance.
    pub send_after: Option<Duration>,
    /// Since the fault ended: first `/ready` 200 "ok".
    pub ready_after: Option<Duration>,
    pub last_ready: String,
}

/// Everything an episode observed, for the checks.
pub struct Outcome {
    pub plan: Plan,
    pub instances: usize,
    pub fault_start: Instant,
    pub fault_end: Instant,
    pub records: Vec<SendRecord>,
    pub stored: BTreeMap<String, Vec<Msg>>,
    pub receivers: Vec<ReceiverLog>,
    pub ready: Vec<ReadySample>,
    /// When, where and with which status (200, or 401 when an earlier attempt had ended it
    /// and only its answer was lost) the logout was acknowledged.
    pub logout: Option<(Instant, usize, u16)>,
    pub session: Vec<SessionSample>,
    pub recovery: Vec<Recovery>,
    pub requests: u64,
    pub max_request: Duration,
    pub hung: Vec<String>,
    /// (what, value) of every secret the episode handled, for the log scan.
    pub secrets: Vec<(String, String)>,
}

struct Ctx {
    http: Http,
    bases: Vec<String>,
    world: World,
    plan: Plan,
    tag: String,
    /// No new send starts after this; sends in flight keep retrying until `give_up`.
    stop_new: Instant,
    give_up: Instant,
    stop: CancellationToken,
    tickets: Mutex<Vec<String>>,
}

/// A running episode: load, receivers and probes, started together.
pub struct Load {
    ctx: Arc<Ctx>,
    pub fault_start: Instant,
    pub fault_end: Instant,
    senders: Vec<JoinHandle<Vec<SendRecord>>>,
    receivers: Vec<JoinHandle<ReceiverLog>>,
    ready: JoinHandle<Vec<ReadySample>>,
    session: JoinHandle<Vec<SessionSample>>,
    logout: JoinHandle<Option<(Instant, usize, u16)>>,
    recovery: Vec<JoinHandle<(Recovery, SendRecord)>>,
}

impl Load {
    /// Creates the users and conversations on `bases[0]`, opens the receivers' sockets and starts
    /// the load; the fault is due `plan.warmup` from now.
    pub async fn start(tag: &str, bases: Vec<String>, plan: Plan) -> Load {
        let http = Http::new(plan.client_timeout());
        let world = World::create(&http, &bases[0], &plan, bases.len()).await;
        // Every instance has seen the leaver's session before the fault.
        for b in &bases {
            let r = http
                .get(&format!("{b}/v1/users/me"), Some(&world.leaver.access))
                .await;
            assert!(matches!(r, Answer::Status(200, _)), "warm-up: {r:?}");
        }
        let t0 = Instant::now();
        let fault_start = t0 + plan.warmup;
        let fault_end = fault_start + plan.fault;
        let stop_new = fault_end + plan.after;
        let ctx = Arc::new(Ctx {
            http,
            bases,
            world,
            tag: tag.to_string(),
            stop_new,
            give_up: fault_end + plan.recovery,
            stop: CancellationToken::new(),
            tickets: Mutex::default(),
            plan,
        });
        let mut receivers = Vec::new();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(ctx.world.receivers.len());
        for r in 0..ctx.world.receivers.len() {
            receivers.push(tokio::spawn(receiver(ctx.clone(), r, ready_tx.clone())));
        }
        drop(ready_tx);
        // Load starts once every socket is ready, so everything sent is live for someone.
        for _ in 0..ctx.world.receivers.len() {
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .expect("receivers connect");
        }
        let senders = (0..ctx.plan.senders)
            .map(|s| tokio::spawn(sender(ctx.clone(), s)))
            .collect();
        let logout_at = fault_start + ctx.plan.fault / 2;
        let recovery = (0..ctx.bases.len())
            .map(|i| tokio::spawn(recover(ctx.clone(), i, fault_end)))
            .collect();
        Load {
            recovery,
            ready: tokio::spawn(ready_prober(ctx.clone())),
            session: tokio::spawn(session_prober(ctx.clone())),
            logout: tokio::spawn(logout(ctx.clone(), logout_at)),
            ctx,
            fault_start,
            fault_end,
            senders,
            receivers,
        }
    }

    pub async fn until_fault_start(&self) {
        tokio::time::sleep_until(self.fault_start.into()).await;
    }

    /// Waits (at most 500 ms) until a send is in flight on instance `i`; returns how many are.
    pub async fn mid_send(&self, i: usize) -> i64 {
        let base = &self.ctx.bases[i];
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let n = self
                .ctx
                .http
                .stats
                .sends_in_flight
                .lock()
                .unwrap()
                .get(base)
                .copied()
                .unwrap_or(0);
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub async fn until_fault_end(&self) {
        tokio::time::sleep_until(self.fault_end.into()).await;
    }

    /// Waits for the senders, checks that every instance serves again, lets the last events
    /// arrive, stops the receivers, catches them up and reads what is stored.
    pub async fn finish(self) -> Outcome {
        let Load {
            ctx,
            fault_start,
            fault_end,
            senders,
            receivers,
            ready,
            session,
            logout,
            recovery: recovering,
        } = self;
        let mut records = Vec::new();
        for s in senders {
            records.extend(s.await.unwrap());
        }
        let mut recovery = Vec::new();
        for r in recovering {
            let (r, probe) = r.await.unwrap();
            recovery.push(r);
            records.push(probe);
        }
        let logout = logout.await.unwrap();
        // The last announcements are on their way.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        ctx.stop.cancel();
        let mut logs = Vec::new();
        for r in receivers {
            logs.push(r.await.unwrap());
        }
        let ready = ready.await.unwrap();
        let mut session = session.await.unwrap();
        session.extend(ended_session_afterwards(&ctx).await);
        for (r, log) in logs.iter_mut().enumerate() {
            catch_up(&ctx, r, log).await;
        }
        let owner = ctx.world.owner().access.clone();
        let mut stored = BTreeMap::new();
        for conv in &ctx.world.convs {
            stored.insert(conv.clone(), history(&ctx, &owner, conv, 0).await);
        }
        let mut secrets = vec![
            ("password".to_string(), PASSWORD.to_string()),
            (
                "jwt signing key".to_string(),
                crate::common::JWT_SECRET.to_string(),
            ),
        ];
        let users = ctx
            .world
            .senders
            .iter()
            .chain(ctx.world.receivers.iter().map(|(u, _)| u))
            .chain([&ctx.world.leaver]);
        for u in users {
            secrets.push((format!("access token of {}", u.username), u.access.clone()));
            secrets.push((
                format!("refresh token of {}", u.username),
                u.refresh.clone(),
            ));
        }
        for t in ctx.tickets.lock().unwrap().iter() {
            secrets.push(("realtime ticket".into(), t.clone()));
        }
        Outcome {
            plan: ctx.plan.clone(),
            instances: ctx.bases.len(),
            fault_start,
            fault_end,
            records,
            stored,
            receivers: logs,
            ready,
            logout,
            session,
            recovery,
            requests: ctx.http.stats.requests.load(Ordering::Relaxed),
            max_request: ctx.http.max_request(),
            hung: ctx.http.stats.hung.lock().unwrap().clone(),
            secrets,
        }
    }
}

fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Posts one message until it is acknowledged, refused for good, or the episode gives up.
/// Attempt `k` goes to instance `first + k`: a retry lands elsewhere, as behind a balancer.
async fn send_until_acked(
    http: &Http,
    bases: &[String],
    user: &TestUser,
    first: usize,
    cmid: String,
    conv: &str,
    give_up: Instant,
) -> SendRecord {
    let mut rec = SendRecord {
        cmid: cmid.clone(),
        conv: conv.to_string(),
        attempts: 0,
        failures: vec![],
        status: 0,
        message_id: None,
        seq: None,
        wrong_answer: None,
        last_failure: None,
    };
    let body = json!({"client_message_id": cmid, "content": format!("hello {cmid}")});
    loop {
        let base = &bases[(first + rec.attempts as usize) % bases.len()];
        rec.attempts += 1;
        let url = format!("{base}/v1/conversations/{conv}/messages");
        let in_flight = |d: i64| {
            let mut m = http.stats.sends_in_flight.lock().unwrap();
            *m.entry(base.clone()).or_default() += d;
        };
        in_flight(1);
        let answer = http.post(&url, Some(&user.access), body.clone()).await;
        in_flight(-1);
        match answer {
            Answer::Status(s, v) if (200..300).contains(&s) => {
                rec.status = s;
                let m = Msg::from(&v["data"]);
                match m {
                    Some(m) if m.cmid == cmid && m.conv == conv => {
                        rec.message_id = Some(m.id);
                        rec.seq = Some(m.seq);
                    }
                    _ => rec.wrong_answer = Some(v.to_string()),
                }
                return rec;
            }
            Answer::Status(s, v) if retryable(s) => {
                rec.failures.push(s);
                rec.last_failure = Some(format!("{s} {}", v["error"]["message"]));
            }
            Answer::Status(s, v) => {
                rec.status = s;
                rec.wrong_answer = Some(v.to_string());
                return rec;
            }
            Answer::Transport(_) => rec.failures.push(0),
            Answer::Hung => rec.failures.push(1),
        }
        if Instant::now() >= give_up {
            return rec;
        }
        let backoff = 50u64 << rec.attempts.min(3);
        tokio::time::sleep(Duration::from_millis(backoff)).await;
    }
}

async fn sender(ctx: Arc<Ctx>, s: usize) -> Vec<SendRecord> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while Instant::now() < ctx.stop_new {
        i += 1;
        let cmid = format!("{}-{s}-{i}", ctx.tag);
        let conv = ctx.world.convs[(s + i) % ctx.world.convs.len()].clone();
        let user = &ctx.world.senders[s];
        let rec = send_until_acked(&ctx.http, &ctx.bases, user, s + i, cmid, &conv, ctx.give_up);
        out.push(rec.await);
        tokio::time::sleep(ctx.plan.pace).await;
    }
    out
}

/// From the moment the fault ends: the first send acknowledged through instance `i` alone, then
/// `/ready` ok there.
async fn recover(ctx: Arc<Ctx>, i: usize, fault_end: Instant) -> (Recovery, SendRecord) {
    tokio::time::sleep_until(fault_end.into()).await;
    let deadline = fault_end + ctx.plan.recovery;
    let send = async {
        let rec = send_until_acked(
            &ctx.http,
            &ctx.bases[i..=i],
            ctx.world.owner(),
            0,
            format!("{}-probe-{i}", ctx.tag),
            &ctx.world.convs[0],
            deadline,
        )
        .await;
        let after = rec
            .acked()
            .then(|| Instant::now().saturating_duration_since(fault_end));
        (rec, after)
    };
    let ready = async {
        loop {
            let a = ctx.http.get(&format!("{}/ready", ctx.bases[i]), None).await;
            let last = match &a {
                Answer::Status(200, v) if v["status"] == "ok" => {
                    return (
                        Some(Instant::now().saturating_duration_since(fault_end)),
                        String::new(),
                    );
                }
                Answer::Status(s, v) => format!("{s} {v}"),
                other => format!("{other:?}"),
            };
            if Instant::now() >= deadline {
                return (None, last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let ((rec, send_after), (ready_after, last_ready)) = tokio::join!(send, ready);
    (
        Recovery {
            send_after,
            ready_after,
            last_ready,
        },
        rec,
    )
}

async fn receiver(ctx: Arc<Ctx>, r: usize, ready: tokio::sync::mpsc::Sender<()>) -> ReceiverLog {
    use tokio_tungstenite::tungstenite::Message;
    let (user, home) = &ctx.world.receivers[r];
    let mut log = ReceiverLog {
        name: user.username.clone(),
        ..Default::default()
    };
    let mut attempt = 0usize;
    let mut ready = Some(ready);
    while !ctx.stop.is_cancelled() {
        let base = &ctx.bases[(home + attempt) % ctx.bases.len()];
        attempt += 1;
        let ticket = match ctx
            .http
            .post(
                &format!("{base}/v1/realtime/ticket"),
                Some(&user.access),
                Value::Null,
            )
            .await
        {
            Answer::Status(200, v) => v["data"]["ticket"].as_str().unwrap_or_default().to_string(),
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        ctx.tickets.lock().unwrap().push(ticket.clone());
        let url = format!(
            "{}/v1/realtime?ticket={ticket}",
            base.replace("http://", "ws://")
        );
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(ctx.http.timeout, tokio_tungstenite::connect_async(url)).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        log.connects += 1;
        let end = loop {
            let next = tokio::select! {
                _ = ctx.stop.cancelled() => break "stopped".to_string(),
                n = ws.next() => n,
            };
            match next {
                Some(Ok(Message::Text(t))) => {
                    let Ok(f) = serde_json::from_str::<Value>(t.as_str()) else {
                        continue;
                    };
                    if f["type"] == "ready" {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(()).await;
                        }
                        // Back after a gap: home again when it serves.
                        attempt = 0;
                    } else if f["type"] == "message.created"
                        && let Some(m) = Msg::from(&f["data"])
                    {
                        log.live.push(m);
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    break format!("closed {:?}", c.map(|c| u16::from(c.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("error: {e}"),
                None => break "ended".to_string(),
            }
        };
        log.ends.push(end);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    log
}

/// Every message of `conv` after `after`, oldest first, through any instance that answers.
async fn history(ctx: &Ctx, token: &str, conv: &str, after: i64) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut after = after;
    let mut k = 0usize;
    let deadline = Instant::now() + ctx.plan.recovery;
    loop {
        let base = &ctx.bases[k % ctx.bases.len()];
        let url = format!("{base}/v1/conversations/{conv}/messages?after_seq={after}&limit=100");
        match ctx.http.get(&url, Some(token)).await {
            Answer::Status(200, v) => {
                let items = v["data"]["items"].as_array().cloned().unwrap_or_default();
                for m in items.iter().filter_map(Msg::from) {
                    after = after.max(m.seq);
                    out.push(m);
                }
                if v["data"]["has_more"] != true || items.is_empty() {
                    return out;
                }
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "history of {conv} unreadable: {other:?}"
                );
                k += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// What a client does after a gap: per conversation, ask for everything after the last seq it
/// holds without a hole.
async fn catch_up(ctx: &Ctx, r: usize, log: &mut ReceiverLog) {
    let token = ctx.world.receivers[r].0.access.clone();
    for conv in &ctx.world.convs {
        let seen: BTreeSet<i64> = log
            .live
            .iter()
            .filter(|m| &m.conv == conv)
            .map(|m| m.seq)
            .collect();
        let mut contiguous = 0;
        while seen.contains(&(contiguous + 1)) {
            contiguous += 1;
        }
        log.caught_up
            .extend(history(ctx, &token, conv, contiguous).await);
    }
}

/// Polls `/ready` on every instance every 250 ms; each probe is its own request, so a slow
/// answer never hides the next probe.
async fn ready_prober(ctx: Arc<Ctx>) -> Vec<ReadySample> {
    let mut probes = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !ctx.stop.is_cancelled() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.stop.cancelled() => break,
        }
        for (i, base) in ctx.bases.iter().enumerate() {
            let (http, url) = (ctx.http.clone(), format!("{base}/ready"));
            probes.spawn(async move {
                let sent = Instant::now();
                let answer = http.get(&url, None).await;
                ReadySample {
                    instance: i,
                    sent,
                    answered: Instant::now(),
                    answer,
                }
            });
        }
    }
    let mut out = Vec::new();
    while let Some(s) = probes.join_next().await {
        out.push(s.unwrap());
    }
    out.sort_by_key(|s| s.sent);
    out
}

/// Uses the leaver's session on every instance in turn, every 50 ms, the whole episode.
async fn session_prober(ctx: Arc<Ctx>) -> Vec<SessionSample> {
    let mut out = Vec::new();
    let mut k = 0usize;
    let token = ctx.world.leaver.access.clone();
    while !ctx.stop.is_cancelled() {
        let i = k % ctx.bases.len();
        k += 1;
        let sent = Instant::now();
        let a = ctx
            .http
            .get(&format!("{}/v1/users/me", ctx.bases[i]), Some(&token))
            .await;
        out.push(SessionSample {
            instance: i,
            sent,
            what: "GET /v1/users/me",
            status: match a {
                Answer::Status(s, _) => Some(s),
                _ => None,
            },
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

/// Ends the leaver's session at `at`, retrying (on the next instance) until it is acknowledged.
/// A 401 means an earlier attempt ended it and only the answer was lost.
async fn logout(ctx: Arc<Ctx>, at: Instant) -> Option<(Instant, usize, u16)> {
    tokio::time::sleep_until(at.into()).await;
    let token = ctx.world.leaver.access.clone();
    let mut k = 0usize;
    while Instant::now() < ctx.give_up {
        let i = k % ctx.bases.len();
        k += 1;
        let a = ctx
            .http
            .post(
                &format!("{}/v1/auth/logout", ctx.bases[i]),
                Some(&token),
                Value::Null,
            )
            .await;
        if let Answer::Status(s @ (200 | 401), _) = a {
            return Some((Instant::now(), i, s));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// After the episode, everything the ended session could still try, on every instance.
async fn ended_session_afterwards(ctx: &Ctx) -> Vec<SessionSample> {
    let u = &ctx.world.leaver;
    let mut out = Vec::new();
    for (i, base) in ctx.bases.iter().enumerate() {
        let tries: [(&'static str, Method, String, Option<&str>, Value); 3] = [
            (
                "GET /v1/users/me",
                Method::GET,
                format!("{base}/v1/users/me"),
                Some(&u.access),
                Value::Null,
            ),
            (
                "POST /v1/realtime/ticket",
                Method::POST,
                format!("{base}/v1/realtime/ticket"),
                Some(&u.access),
                Value::Null,
            ),
            (
                "POST /v1/auth/refresh",
                Method::POST,
                format!("{base}/v1/auth/refresh"),
                None,
                json!({"refresh_token": u.refresh}),
            ),
        ];
        for (what, m, url, token, body) in tries {
            let sent = Instant::now();
            let a = ctx.http.call(m, &url, token, body).await;
            out.push(SessionSample {
                instance: i,
                sent,
                what,
                status: match a {
                    Answer::Status(s, _) => Some(s),
                    _ => None,
                },
            });
        }
    }
    out
}
