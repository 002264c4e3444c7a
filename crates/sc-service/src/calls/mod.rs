//! Calls over a peer-to-peer mesh: a lifecycle of atomic transitions (create, join, leave,
//! decline, end, missed), signaling relayed between participants' sessions on any instance,
//! and ICE servers with TURN credentials. Media never passes through the server.

pub mod ice;
mod media;
mod scheduled;

pub use media::{MediaRequest, QualitySample, QualityStats, QualitySummary, RecordingAction};
pub use scheduled::{NewScheduledCall, ScheduledCallChange, ScheduledCallView};

use crate::{AuthContext, Deps, session_cache::CALL_CACHE_TTL};
use ice::IceServers;
use sc_core::{
    AppError, AppResult,
    ids::{CallId, ConversationId, SessionId, UserId},
    time::Timestamp,
};
use sc_db::calls::{CallRow, Created, Joined, Left, NewCall, ParticipantRow};
use serde::Serialize;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// Signal payloads are opaque to the server, up to this size once serialized.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;
/// Rows handled per sweeper statement.
const SWEEP_BATCH: i64 = 100;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ParticipantView {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub left_at: Option<Timestamp>,
    /// The participant's own media state, as it last set it.
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

impl From<ParticipantRow> for ParticipantView {
    fn from(p: ParticipantRow) -> Self {
        Self {
            user_id: p.user_id,
            session_id: p.session_id,
            joined_at: p.joined_at,
            left_at: p.left_at,
            audio: p.audio,
            video: p.video,
            screen: p.screen,
        }
    }
}

/// A recording in progress: every participant sees who records, and since when.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordingView {
    #[schema(value_type = uuid::Uuid)]
    pub by: UserId,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
}

/// A finished recording; `file_id` once the recorder attached the uploaded file.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordingEntry {
    #[schema(value_type = uuid::Uuid)]
    pub recorded_by: UserId,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub stopped_at: Timestamp,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub file_id: Option<sc_core::ids::FileId>,
}

/// The Call object of API.md §6.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallView {
    #[schema(value_type = uuid::Uuid)]
    pub id: CallId,
    #[schema(value_type = uuid::Uuid)]
    pub conversation_id: ConversationId,
    /// "audio" or "video"
    pub kind: String,
    /// "ringing", "active", "ended", "missed" or "declined"
    pub status: String,
    #[schema(value_type = uuid::Uuid)]
    pub created_by: UserId,
    /// Every participation, in the order of joining (a session that rejoins appears again).
    pub participants: Vec<ParticipantView>,
    /// Members of a group call who declined it.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub declined_by: Vec<UserId>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// From the second participant's arrival to the end; null until both are known.
    pub duration_seconds: Option<i64>,
    pub max_participants: i64,
    /// A client-side recording in progress, or null.
    pub recording: Option<RecordingView>,
    /// Finished recordings of the call.
    pub recordings: Vec<RecordingEntry>,
}

/// What each participant should send, so a mesh of n does not each push several HD streams.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MediaLimits {
    /// Video bitrate per outgoing stream (the uplink budget split over the other participants).
    pub max_video_kbps_per_peer: u32,
    /// The uplink budget the split is made from.
    pub uplink_budget_kbps: u32,
    /// Suggested largest frame height per outgoing stream.
    pub max_video_height: u32,
}

/// The create and join answers: the Call with ICE servers and, for a mesh, media limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallSession {
    #[serde(flatten)]
    pub call: CallView,
    pub ice_servers: Vec<ice::IceServer>,
    pub ice_ttl_seconds: u64,
    pub media_limits: MediaLimits,
}

/// The caller's place in a call's conversation.
pub(super) struct Membership {
    kind: String,
    role: String,
}

impl Membership {
    /// An owner or admin of a group (who may end calls and change scheduled ones).
    pub(super) fn moderates(&self) -> bool {
        self.kind == "group" && (self.role == "owner" || self.role == "admin")
    }
}

#[derive(Clone)]
pub struct CallService {
    d: Arc<Deps>,
}

fn not_found() -> AppError {
    AppError::NotFound("call".into())
}

fn over() -> AppError {
    AppError::conflict("the call is over")
}

impl CallService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    async fn view(&self, c: CallRow) -> AppResult<CallView> {
        let calls = self.d.db.calls();
        let participants = calls.participants(c.id).await?;
        let declined_by = calls.declined_by(c.id).await?;
        let recordings = calls
            .recordings(c.id)
            .await?
            .into_iter()
            .map(|r| RecordingEntry {
                recorded_by: r.recorded_by,
                started_at: r.started_at,
                stopped_at: r.stopped_at,
                file_id: r.file_id,
            })
            .collect();
        Ok(Self::view_of(c, participants, declined_by, recordings))
    }

    /// The Call object from its parts.
    fn view_of(
        c: CallRow,
        participants: Vec<ParticipantRow>,
        declined_by: Vec<UserId>,
        recordings: Vec<RecordingEntry>,
    ) -> CallView {
        let recording = match (c.recording_by, c.recording_started_at) {
            (Some(by), Some(started_at)) => Some(RecordingView { by, started_at }),
            _ => None,
        };
        let duration_seconds = match (c.started_at, c.ended_at) {
            (Some(s), Some(e)) => Some((e.millis() - s.millis()).max(0) / 1000),
            _ => None,
        };
        CallView {
            id: c.id,
            conversation_id: c.conversation_id,
            kind: c.kind,
            status: c.status,
            created_by: c.created_by,
            participants: participants.into_iter().map(Into::into).collect(),
            declined_by,
            created_at: c.created_at,
            started_at: c.started_at,
            ended_at: c.ended_at,
            duration_seconds,
            max_participants: c.max_participants,
            recording,
            recordings,
        }
    }

    /// The call and the caller's membership of its conversation (404 for a non-member).
    async fn call_for(&self, ctx: &AuthContext, id: CallId) -> AppResult<(CallRow, Membership)> {
        let (c, kind, role) = self
            .d
            .db
            .calls()
            .get_for_member(id, ctx.user_id)
            .await?
            .ok_or_else(not_found)?;
        Ok((c, Membership { kind, role }))
    }

    /// The call as it is now, announced to its conversation's members as `call.updated`.
    async fn announce_current(&self, id: CallId) -> AppResult<CallView> {
        let c = self.d.db.calls().get(id).await?.ok_or_else(not_found)?;
        let view = self.view(c).await?;
        self.announce("call.updated", &view).await;
        Ok(view)
    }

    fn media_limits(&self, participants: usize) -> MediaLimits {
        let budget = self.d.cfg.call_uplink_budget_kbps;
        let peers = (participants.max(2) - 1) as u32;
        let per_peer = budget / peers;
        MediaLimits {
            max_video_kbps_per_peer: per_peer,
            uplink_budget_kbps: budget,
            max_video_height: match per_peer {
                0..=300 => 240,
                301..=700 => 360,
                701..=1500 => 540,
                _ => 720,
            },
        }
    }

    fn session(&self, ctx: &AuthContext, call: CallView) -> CallSession {
        let active = call
            .participants
            .iter()
            .filter(|p| p.left_at.is_none())
            .count();
        let IceServers {
            ice_servers,
            ttl_seconds,
        } = self.ice_servers(ctx);
        CallSession {
            // Split as if for two at least: a caller alone is about to be joined.
            media_limits: self.media_limits(active),
            call,
            ice_servers,
            ice_ttl_seconds: ttl_seconds,
        }
    }

    pub fn ice_servers(&self, ctx: &AuthContext) -> IceServers {
        ice::ice_servers(&self.d.cfg, ctx.user_id, Timestamp::now())
    }

    /// Announces a call's state to its conversation's members; returns them (none when they
    /// could not be read).
    async fn announce(&self, kind: &str, view: &CallView) -> Vec<UserId> {
        // Every transition comes through here after its commit.
        self.d.call_changed(view.id).await;
        match self.d.db.chat().member_ids(view.conversation_id).await {
            Ok(members) => {
                self.d.emit(members.clone(), kind, view).await;
                members
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not announce a call change");
                Vec::new()
            }
        }
    }

    /// Starts a call in a conversation the caller is a member of, with the calling session in
    /// it; members ring. One live call per conversation: a second is 409 with its id.
    pub async fn create(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
        kind: &str,
    ) -> AppResult<CallSession> {
        let kind = match kind {
            "audio" => "audio",
            "video" => "video",
            _ => return Err(AppError::validation("kind", "audio or video")),
        };
        let (kind_of_conversation, _) = self
            .d
            .db
            .chat()
            .kind_and_role(conversation, ctx.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("conversation".into()))?;
        if kind_of_conversation == "direct" {
            let members = self.d.db.chat().member_ids(conversation).await?;
            if let Some(other) = members.iter().find(|m| **m != ctx.user_id)
                && self
                    .d
                    .db
                    .blocks()
                    .either_blocks(ctx.user_id, *other)
                    .await?
            {
                return Err(AppError::Forbidden("you cannot call this user".into()));
            }
        }
        let id = CallId::new();
        let outcome = self
            .d
            .db
            .calls()
            .create(&NewCall {
                id,
                conversation,
                kind,
                created_by: ctx.user_id,
                session: ctx.session_id,
                max_participants: i64::from(self.d.cfg.call_max_participants),
                now: Timestamp::now(),
            })
            .await?;
        let (call, creator) = match outcome {
            Created::Ok(call, creator) => (*call, creator),
            Created::Live(live) => {
                return Err(AppError::Conflict {
                    message: "the conversation has a live call".into(),
                    details: live.map(|live| json!({"call_id": live})),
                });
            }
        };
        // A new call: nobody has declined or recorded it yet.
        let view = Self::view_of(call, vec![creator], Vec::new(), Vec::new());
        let mut members = self.announce("call.ringing", &view).await;
        // Devices of offline members ring by push, off the request's path.
        let (d, conversation_id) = (self.d.clone(), view.conversation_id);
        let ring_for = Duration::from_secs(self.d.cfg.call_ring_timeout_seconds);
        members.retain(|m| *m != ctx.user_id);
        tokio::spawn(async move {
            crate::notify::push::ring(&d, id, conversation_id, &members, ring_for).await;
        });
        Ok(self.session(ctx, view))
    }

    pub async fn get(&self, ctx: &AuthContext, id: CallId) -> AppResult<CallView> {
        let (c, _) = self.call_for(ctx, id).await?;
        self.view(c).await
    }

    /// A conversation's calls, newest first (member only).
    pub async fn list(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
        before: Option<(Timestamp, CallId)>,
        limit: i64,
    ) -> AppResult<Vec<CallView>> {
        if self
            .d
            .db
            .chat()
            .role_of(conversation, ctx.user_id)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("conversation".into()));
        }
        let rows = self.d.db.calls().list(conversation, before, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.view(r).await?);
        }
        Ok(out)
    }

    /// Joins with the calling session (member only).
    pub async fn join(&self, ctx: &AuthContext, id: CallId) -> AppResult<CallSession> {
        let (c, _) = self.call_for(ctx, id).await?;
        let outcome = self
            .d
            .db
            .calls()
            .join(id, ctx.user_id, ctx.session_id, Timestamp::now())
            .await?;
        let call = match outcome {
            Joined::Ok(call) => call,
            Joined::Full => {
                return Err(AppError::LimitReached(format!(
                    "the call holds at most {} participants",
                    c.max_participants
                )));
            }
            Joined::Already => {
                return Err(AppError::conflict("this session is in the call already"));
            }
            Joined::Over => return Err(over()),
            Joined::Gone => return Err(not_found()),
        };
        let view = self.view(call).await?;
        self.announce("call.updated", &view).await;
        Ok(self.session(ctx, view))
    }

    /// Leaves with the calling session; the last one out ends the call.
    pub async fn leave(&self, ctx: &AuthContext, id: CallId) -> AppResult<CallView> {
        self.call_for(ctx, id).await?;
        match self
            .d
            .db
            .calls()
            .leave(id, ctx.session_id, Timestamp::now())
            .await?
        {
            // An ended call may have become missed, with records for the dispatcher.
            Left::Ok { ended } => {
                if ended {
                    self.d.notify_wake.notify_one();
                }
            }
            Left::NotIn => return Err(AppError::conflict("this session is not in the call")),
            Left::Gone => return Err(not_found()),
        }
        self.announce_current(id).await
    }

    /// Declines a ringing call: a direct call becomes `declined`; in a group call it records
    /// this member's answer.
    pub async fn decline(&self, ctx: &AuthContext, id: CallId) -> AppResult<CallView> {
        let (c, member) = self.call_for(ctx, id).await?;
        if c.status != "ringing" && c.status != "active" {
            return Err(over());
        }
        let now = Timestamp::now();
        if member.kind == "direct" {
            if c.status != "ringing" {
                return Err(AppError::conflict("only a ringing call can be declined"));
            }
            if c.created_by == ctx.user_id {
                return Err(AppError::conflict("the caller leaves or ends a call"));
            }
            if !self.d.db.calls().finish(id, "declined", now).await? {
                return Err(over());
            }
        } else {
            self.d
                .db
                .calls()
                .record_decline(id, ctx.user_id, now)
                .await?;
        }
        self.announce_current(id).await
    }

    /// Ends a live call for everyone: its creator, or an owner or admin of its group.
    pub async fn end(&self, ctx: &AuthContext, id: CallId) -> AppResult<CallView> {
        let (c, member) = self.call_for(ctx, id).await?;
        if c.created_by != ctx.user_id && !member.moderates() {
            return Err(AppError::Forbidden(
                "only the caller or a group owner/admin ends a call".into(),
            ));
        }
        if !self
            .d
            .db
            .calls()
            .finish(id, "ended", Timestamp::now())
            .await?
        {
            return Err(over());
        }
        self.announce_current(id).await
    }

    /// Relays a signal from a participant's session to one other participant session, or to
    /// every other participant session. The payload is opaque.
    pub async fn signal(
        &self,
        ctx: &AuthContext,
        id: CallId,
        to_session: Option<SessionId>,
        signal: &Value,
    ) -> AppResult<()> {
        if !signal.is_object() {
            return Err(AppError::validation("signal", "signal is a JSON object"));
        }
        if signal.to_string().len() > MAX_SIGNAL_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "signals are limited to {MAX_SIGNAL_BYTES} bytes"
            )));
        }
        let sessions = match self.d.calls.get(&id) {
            Some(s) => s,
            None => {
                let s: Arc<[(UserId, SessionId)]> =
                    self.d.db.calls().active_sessions(id).await?.into();
                self.d.calls.put(id, s.clone(), CALL_CACHE_TTL);
                s
            }
        };
        if !sessions
            .iter()
            .any(|(u, s)| *u == ctx.user_id && *s == ctx.session_id)
        {
            return Err(AppError::Forbidden(
                "only the call's participants signal in it".into(),
            ));
        }
        let targets: Vec<(UserId, SessionId)> = sessions
            .iter()
            .copied()
            .filter(|(_, s)| *s != ctx.session_id)
            .filter(|(_, s)| to_session.is_none_or(|t| t == *s))
            .collect();
        if to_session.is_some() && targets.is_empty() {
            return Err(AppError::validation(
                "to_session_id",
                "not a participant session of this call",
            ));
        }
        let data = json!({"call_id": id, "from_user_id": ctx.user_id,
                          "from_session_id": ctx.session_id, "signal": signal});
        self.d.emit_to_sessions(targets, "call.signal", &data).await;
        Ok(())
    }

    /// Marks sessions with a socket on this instance as present in their calls.
    pub async fn touch(&self, sessions: &[SessionId]) -> AppResult<()> {
        self.d
            .db
            .calls()
            .touch_sessions(sessions, Timestamp::now())
            .await
    }

    /// One pass of the sweeper: ringing calls past the ring timeout become missed (with their
    /// `call.missed` notifications), participants gone longer than the grace period are taken
    /// out (which ends calls left empty, zombies of a crash included), and old records go.
    pub async fn sweep(&self) -> AppResult<()> {
        let calls = self.d.db.calls();
        let now = Timestamp::now();
        let ring = Duration::from_secs(self.d.cfg.call_ring_timeout_seconds);
        for id in calls.ring_timed_out(now.minus(ring), SWEEP_BATCH).await? {
            if let Some(missed) = calls.mark_missed(id, now).await? {
                let view = self.view(missed.call).await?;
                self.announce("call.updated", &view).await;
                // The records were written with the transition; the dispatcher sends their
                // events, pushes and mails.
                if !missed.missed_by.is_empty() {
                    self.d.notify_wake.notify_one();
                }
            }
        }
        let grace = Duration::from_secs(self.d.cfg.call_grace_seconds);
        for (id, session) in calls
            .unseen_participants(now.minus(grace), SWEEP_BATCH)
            .await?
        {
            if let Left::Ok { ended } = calls.leave(id, session, now).await? {
                if ended {
                    self.d.notify_wake.notify_one();
                }
                self.announce_current(id).await?;
            }
        }
        self.remind_due().await?;
        let days = self.d.cfg.call_retention_days;
        if days > 0 {
            let before = now.minus(Duration::from_secs(u64::from(days) * 86_400));
            calls.purge_ended(before, SWEEP_BATCH).await?;
        }
        Ok(())
    }

    /// Runs the sweeper on every instance, and marks this instance's connected sessions as
    /// present each pass (`local_sessions`). The first pass runs at start, so calls a crash
    /// left live are closed once their grace period is over.
    pub fn spawn_sweeper(
        &self,
        local_sessions: impl Fn() -> Vec<SessionId> + Send + 'static,
        stop: CancellationToken,
    ) {
        let svc = self.clone();
        let every = Duration::from_secs(self.d.cfg.call_sweep_interval_seconds);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = svc.touch(&local_sessions()).await {
                            tracing::warn!(error = %e, "marking call participants present failed");
                        }
                        if let Err(e) = svc.sweep().await {
                            tracing::warn!(error = %e, "call sweeper failed");
                        }
                    }
                }
            }
        });
    }
}
