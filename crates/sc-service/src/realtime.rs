//! Realtime delivery. Each instance keeps a hub of its local sockets (user → sockets); events are
//! published once on the bus with their recipients, and every instance hands them to its local
//! sockets. Delivery never blocks: each socket has a bounded queue, and a socket whose queue is
//! full is closed (1013) rather than buffered without bound. No task is spawned per event.

use crate::{
    Deps,
    crypto::{random_token, token_hash},
};
use bytes::Bytes;
use sc_core::{
    AppError, AppResult,
    ids::{SessionId, UserId},
    time::Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bus channel carrying realtime events with their recipients.
pub const REALTIME_CHANNEL: &str = "rt";
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Close codes.
pub const CLOSE_SESSION_ENDED: u16 = 4001;
pub const CLOSE_BANNED: u16 = 4003;
/// The instance is restarting: reconnect (to another instance) and catch up.
pub const CLOSE_RESTARTING: u16 = 1012;
pub const CLOSE_TOO_SLOW: u16 = 1013;
/// How long a presence lease lasts and how often connected users renew it.
pub const PRESENCE_LEASE: Duration = Duration::from_secs(45);
pub const PRESENCE_RENEW_EVERY: Duration = Duration::from_secs(15);
/// Presence changes are pushed to members of conversations up to this size.
pub const PRESENCE_MAX_ROOM: i64 = 100;

/// What one user's presence looks like to another.
pub struct PresenceEntry {
    pub user_id: UserId,
    pub status: String,
    pub last_seen_at: Option<Timestamp>,
}

/// Tells a socket task to close, with which code.
#[derive(Default)]
pub struct CloseSignal {
    code: AtomicU16,
    token: CancellationToken,
}

impl CloseSignal {
    /// Asks the socket to close; true for the first request.
    pub fn close(&self, code: u16) -> bool {
        let first = self
            .code
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        self.token.cancel();
        first
    }
    pub fn code(&self) -> u16 {
        self.code.load(Ordering::Relaxed)
    }
    pub async fn closed(&self) {
        self.token.cancelled().await
    }
}

/// A serialized frame as it waits in socket queues: one pointer per queue slot (an idle socket's
/// queue block stays small), the bytes shared by every recipient.
pub type QueuedFrame = Arc<Bytes>;

struct LocalSocket {
    id: u64,
    session: SessionId,
    tx: mpsc::Sender<QueuedFrame>,
    close: Arc<CloseSignal>,
}

/// What a socket task holds: its outbound queue and its close signal.
pub struct Registration {
    pub id: u64,
    pub user: UserId,
    pub session: SessionId,
    pub rx: mpsc::Receiver<QueuedFrame>,
    pub close: Arc<CloseSignal>,
    /// True when this is the user's first socket on this instance.
    pub first_local: bool,
}

#[derive(Default)]
pub struct Hub {
    /// Looked up once per recipient of every event: a fast hasher with a per-process random
    /// seed (the keys are server-made ids, not client-chosen strings).
    sockets: Mutex<HashMap<UserId, Vec<LocalSocket>, foldhash::fast::RandomState>>,
    next_id: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped_slow: AtomicU64,
}

impl Hub {
    pub fn register(&self, user: UserId, session: SessionId, queue: usize) -> Registration {
        let (tx, rx) = mpsc::channel(queue);
        let close = Arc::new(CloseSignal::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(user).or_default();
        let first_local = list.is_empty();
        list.push(LocalSocket {
            id,
            session,
            tx,
            close: close.clone(),
        });
        Registration {
            id,
            user,
            session,
            rx,
            close,
            first_local,
        }
    }

    /// Removes a socket; true when it was the user's last one here.
    pub fn unregister(&self, user: UserId, id: u64) -> bool {
        let mut map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = map.get_mut(&user) else {
            return false;
        };
        list.retain(|s| s.id != id);
        if list.is_empty() {
            map.remove(&user);
            true
        } else {
            false
        }
    }

    /// Queues a frame for every local socket of `users`. Never waits: a full queue closes that
    /// socket with 1013 (the client catches up with `after_seq`). The frame's bytes are shared by
    /// every queue, not copied.
    pub fn deliver(&self, users: &[UserId], frame: &QueuedFrame) {
        self.deliver_to(users, None, frame);
    }

    /// `deliver`, to the given sessions of `users` only when `sessions` is set.
    pub fn deliver_to(
        &self,
        users: &[UserId],
        sessions: Option<&[SessionId]>,
        frame: &QueuedFrame,
    ) {
        let map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for user in users {
            let Some(list) = map.get(user) else { continue };
            for s in list {
                if sessions.is_some_and(|only| !only.contains(&s.session)) {
                    continue;
                }
                match s.tx.try_send(frame.clone()) {
                    Ok(()) => {
                        self.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if s.close.close(CLOSE_TOO_SLOW) {
                            self.dropped_slow.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
    }

    /// Closes every local socket of the given sessions.
    pub fn close_sessions(&self, sessions: &[SessionId], code: u16) {
        let map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for s in map.values().flatten() {
            if sessions.contains(&s.session) {
                let _ = s.close.close(code);
            }
        }
    }

    /// Closes every socket of this instance (a restart: code 1012, clients reconnect elsewhere).
    pub fn close_all(&self, code: u16) {
        let map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for s in map.values().flatten() {
            let _ = s.close.close(code);
        }
    }

    /// Sessions with a socket on this instance.
    pub fn local_sessions(&self) -> Vec<SessionId> {
        let map = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let mut s: Vec<SessionId> = map.values().flatten().map(|s| s.session).collect();
        s.sort();
        s.dedup();
        s
    }

    pub fn local_users(&self) -> Vec<UserId> {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    pub fn socket_count(&self) -> usize {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    pub fn has_local(&self, user: UserId) -> bool {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&user)
    }
}

/// A bus message: who gets it and the frame to send (already serialized once).
#[derive(Serialize, Deserialize)]
pub struct Envelope {
    pub to: Vec<UserId>,
    /// When set, only these sessions of `to` get the frame (call signals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionId>>,
    pub frame: String,
}

/// Serializes a server → client frame.
pub fn frame(kind: &str, data: &impl Serialize) -> String {
    json!({ "type": kind, "data": data }).to_string()
}

impl Deps {
    /// Publishes an event to users on every instance. Never fails the caller: with the bus down
    /// the event still reaches this instance's sockets, and clients catch up from the database.
    pub async fn emit(&self, to: Vec<UserId>, kind: &str, data: &impl Serialize) {
        if to.is_empty() {
            return;
        }
        let env = Envelope {
            to,
            sessions: None,
            frame: frame(kind, data),
        };
        match serde_json::to_string(&env) {
            Ok(payload) => self.bus.publish(REALTIME_CHANNEL, &payload).await,
            Err(e) => tracing::error!(error = %e, "could not encode realtime event"),
        }
    }
}

impl Deps {
    /// Publishes an event to particular sessions (of their users) on every instance.
    pub async fn emit_to_sessions(
        &self,
        to: Vec<(UserId, SessionId)>,
        kind: &str,
        data: &impl Serialize,
    ) {
        if to.is_empty() {
            return;
        }
        let (mut users, sessions): (Vec<UserId>, Vec<SessionId>) = to.into_iter().unzip();
        users.sort();
        users.dedup();
        let env = Envelope {
            to: users,
            sessions: Some(sessions),
            frame: frame(kind, data),
        };
        match serde_json::to_string(&env) {
            Ok(payload) => self.bus.publish(REALTIME_CHANNEL, &payload).await,
            Err(e) => tracing::error!(error = %e, "could not encode realtime event"),
        }
    }
}

/// Tickets and presence.
#[derive(Clone)]
pub struct RealtimeService {
    d: Arc<Deps>,
}

impl RealtimeService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    /// A single-use ticket (30 s) for opening a socket of this session.
    pub async fn issue_ticket(&self, user: UserId, session: SessionId) -> AppResult<String> {
        let ticket = random_token();
        let now = Timestamp::now();
        self.d
            .db
            .realtime()
            .insert_ticket(&token_hash(&ticket), session, user, now.plus(TICKET_TTL))
            .await?;
        Ok(ticket)
    }

    /// Redeems a ticket once; the session must still be live.
    pub async fn redeem_ticket(&self, ticket: &str) -> AppResult<(UserId, SessionId)> {
        let now = Timestamp::now();
        let (session, user) = self
            .d
            .db
            .realtime()
            .consume_ticket(&token_hash(ticket), now)
            .await?
            .ok_or_else(|| AppError::Unauthorized("invalid or used ticket".into()))?;
        let live = self
            .d
            .db
            .sessions()
            .find(session)
            .await?
            .is_some_and(|s| s.is_active(now) && s.user_id == user);
        if !live {
            return Err(AppError::Unauthorized("session ended".into()));
        }
        Ok((user, session))
    }

    /// A socket opened: the user is online (if they had not chosen otherwise).
    pub async fn connected(&self, user: UserId, first_local: bool) {
        let now = Timestamp::now();
        if let Err(e) = self
            .d
            .db
            .realtime()
            .renew_presence(user, now.plus(PRESENCE_LEASE), now)
            .await
        {
            tracing::warn!(error = %e, "could not record presence");
        }
        if first_local {
            self.announce_presence(user).await;
        }
    }

    /// The user's last socket here closed: offline unless another instance renews the lease.
    pub async fn disconnected(&self, user: UserId) {
        let now = Timestamp::now();
        if let Err(e) = self.d.db.realtime().renew_presence(user, now, now).await {
            tracing::warn!(error = %e, "could not record presence");
        }
        self.announce_presence(user).await;
    }

    /// Renews the leases of users connected here (run every `PRESENCE_RENEW_EVERY`).
    pub async fn renew_leases(&self, users: &[UserId]) {
        let now = Timestamp::now();
        if let Err(e) = self
            .d
            .db
            .realtime()
            .renew_presence_many(users, now.plus(PRESENCE_LEASE), now)
            .await
        {
            tracing::warn!(error = %e, "could not renew presence");
        }
    }

    pub async fn set_status(&self, user: UserId, status: &str) -> AppResult<()> {
        if !matches!(status, "online" | "away" | "offline") {
            return Err(AppError::validation(
                "status",
                "status must be online, away or offline",
            ));
        }
        let now = Timestamp::now();
        let until = if status == "offline" {
            now
        } else {
            now.plus(PRESENCE_LEASE)
        };
        self.d
            .db
            .realtime()
            .set_presence(user, status, until, now)
            .await?;
        self.announce_presence(user).await;
        Ok(())
    }

    /// Presence of the named users in id order after `after`, at most `limit`; users the
    /// viewer shares no conversation with are left out.
    pub async fn presence_page(
        &self,
        viewer: UserId,
        mut users: Vec<UserId>,
        after: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<PresenceEntry>> {
        users.sort_unstable();
        users.dedup();
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut out = Vec::new();
        for user in users.into_iter().filter(|u| after.is_none_or(|a| *u > a)) {
            if out.len() == limit {
                break;
            }
            if let Some((status, last_seen_at)) = self.presence_of(viewer, user).await? {
                out.push(PresenceEntry {
                    user_id: user,
                    status,
                    last_seen_at,
                });
            }
        }
        Ok(out)
    }

    /// `(status, last_seen_at)` of `user` as `viewer` may see it; `None` when they share no
    /// conversation.
    async fn presence_of(
        &self,
        viewer: UserId,
        user: UserId,
    ) -> AppResult<Option<(String, Option<Timestamp>)>> {
        let now = Timestamp::now();
        match self
            .d
            .db
            .realtime()
            .presence_visible_to(viewer, user)
            .await?
        {
            Some((status, until, last_seen)) => {
                let shown = if status == "offline" || until <= now {
                    "offline".to_string()
                } else {
                    status
                };
                Ok(Some((shown, Some(last_seen))))
            }
            None if self
                .d
                .db
                .realtime()
                .share_conversation(viewer, user)
                .await? =>
            {
                Ok(Some(("offline".into(), None)))
            }
            None => Ok(None),
        }
    }

    async fn announce_presence(&self, user: UserId) {
        let status = match self.presence_of(user, user).await {
            Ok(Some((s, _))) => s,
            _ => return,
        };
        match self.d.db.realtime().contacts(user, PRESENCE_MAX_ROOM).await {
            Ok(mut to) => {
                to.push(user);
                self.d
                    .emit(to, "presence", &json!({"user_id": user, "status": status}))
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "could not list contacts for presence"),
        }
    }

    /// A typing indicator: ephemeral (never stored); clients drop it after `expires_in_seconds`.
    pub async fn typing(
        &self,
        user: UserId,
        conversation: sc_core::ids::ConversationId,
        active: bool,
    ) -> AppResult<()> {
        if self
            .d
            .db
            .chat()
            .role_of(conversation, user)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("conversation".into()));
        }
        let members: Vec<UserId> = self
            .d
            .db
            .chat()
            .member_ids(conversation)
            .await?
            .into_iter()
            .filter(|m| *m != user)
            .collect();
        let data: Value = json!({"conversation_id": conversation, "user_id": user, "active": active, "expires_in_seconds": 6});
        self.d.emit(members, "typing", &data).await;
        Ok(())
    }
}
