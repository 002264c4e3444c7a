//! Calls and their participants. Every transition (join, leave, decline, end, missed) is one
//! transaction that first locks the call's row, so no interleaving of them can join an ended
//! call, end a call someone is joining, overfill a call, or add a session twice.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{CallId, ConversationId, FileId, NotificationId, SessionId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CallRow {
    pub id: CallId,
    pub conversation_id: ConversationId,
    pub kind: String,
    pub status: String,
    pub created_by: UserId,
    pub max_participants: i64,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub recording_by: Option<UserId>,
    pub recording_started_at: Option<Timestamp>,
}

macro_rules! call_columns {
    () => {
        "id, conversation_id, kind, status, created_by, max_participants, created_at, started_at, ended_at, \
         recording_by, recording_started_at"
    };
}

/// A participant's own media state.
#[derive(Clone, Copy, Debug, Default)]
pub struct MediaChange {
    pub audio: Option<bool>,
    pub video: Option<bool>,
    pub screen: Option<bool>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RecordingRow {
    pub recorded_by: UserId,
    pub started_at: Timestamp,
    pub stopped_at: Timestamp,
    pub file_id: Option<FileId>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct QualityRow {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub rtt_ms: f64,
    pub jitter_ms: f64,
    pub packet_loss: f64,
    pub bitrate_kbps: f64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RecordingOutcome {
    Ok,
    /// Someone else is recording (start), or the caller is not (stop).
    Busy,
    /// The session is not in a live call.
    NotIn,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ParticipantRow {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub joined_at: Timestamp,
    pub left_at: Option<Timestamp>,
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

pub struct NewCall {
    pub id: CallId,
    pub conversation: ConversationId,
    pub kind: &'static str,
    pub created_by: UserId,
    pub session: SessionId,
    pub max_participants: i64,
    pub now: Timestamp,
}

#[derive(Debug)]
pub enum Created {
    /// The new call and its creator's participation, as stored.
    Ok(Box<CallRow>, ParticipantRow),
    /// The conversation has a live call already: its id, unless it ended between the refused
    /// insert and the look-up.
    Live(Option<CallId>),
}

#[derive(Debug)]
pub enum Joined {
    /// The call as it is after the join.
    Ok(CallRow),
    Full,
    /// This session is in the call already.
    Already,
    /// Ended, missed or declined.
    Over,
    Gone,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// Left; `ended` when the call ended with it (no one left in it).
    Ok {
        ended: bool,
    },
    NotIn,
    Gone,
}

/// A call that became missed, and the members it was missed by.
pub struct Missed {
    pub call: CallRow,
    pub missed_by: Vec<UserId>,
}

pub struct Calls<'a>(&'a Db);

impl Db {
    pub fn calls(&self) -> Calls<'_> {
        Calls(self)
    }
}

/// Locks the call's row for the rest of the transaction and reads it. On SQLite the write
/// transaction (`BEGIN IMMEDIATE` on the one writer) holds the database's write lock already.
macro_rules! lock_call {
    ($tx:expr, $pg:expr, $id:expr) => {{
        let sql = if $pg {
            concat!(
                "SELECT ",
                call_columns!(),
                " FROM calls WHERE id = $1 FOR UPDATE"
            )
        } else {
            concat!("SELECT ", call_columns!(), " FROM calls WHERE id = $1")
        };
        let row: Option<CallRow> = sqlx::query_as(sql)
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        row
    }};
}

macro_rules! participant_columns {
    () => {
        "user_id, session_id, joined_at, left_at, audio, video, screen"
    };
}

/// A new participation; video starts on in a video call.
macro_rules! participant_insert {
    () => {
        "INSERT INTO call_participants (call_id, session_id, user_id, joined_at, last_seen_at, video)
         VALUES ($1, $2, $3, $4, $4, (SELECT kind = 'video' FROM calls WHERE id = $1))"
    };
}

/// What ending a call (or its recorder's leaving) also resets: a recording cannot outlive them.
macro_rules! end_recording {
    () => {
        "recording_by = NULL, recording_started_at = NULL"
    };
}

/// Keeps the record of a recording in progress before it is reset ($1: the call, $2: now).
const CLOSE_RECORDING: &str =
    "INSERT INTO call_recordings (call_id, recorded_by, started_at, stopped_at)
     SELECT id, recording_by, recording_started_at, $2 FROM calls
     WHERE id = $1 AND recording_by IS NOT NULL AND recording_started_at IS NOT NULL
     ON CONFLICT DO NOTHING";

fn live(status: &str) -> bool {
    matches!(status, "ringing" | "active")
}

/// Writes a `call.missed` record for every member who never joined the call, inside the
/// transaction that made it missed; the members, as a list.
macro_rules! record_missed {
    ($tx:expr, $call:expr, $conversation:expr, $caller:expr, $now:expr) => {{
        let missed: Vec<(UserId,)> = sqlx::query_as(
            "SELECT m.user_id FROM conversation_members m WHERE m.conversation_id = $1
               AND NOT EXISTS (SELECT 1 FROM call_participants p WHERE p.call_id = $2 AND p.user_id = m.user_id)")
            .bind($conversation).bind($call).fetch_all(&mut *$tx).await?;
        let data = serde_json::json!({"call_id": $call, "conversation_id": $conversation,
                                      "caller_id": $caller}).to_string();
        for (u,) in &missed {
            sqlx::query("INSERT INTO notifications (id, user_id, kind, source, data, created_at) VALUES ($1, $2, 'call.missed', $5, $3, $4)
                         ON CONFLICT (user_id, kind, source) DO NOTHING")
                .bind(NotificationId::new()).bind(*u).bind(&data).bind($now).bind($call.to_string())
                .execute(&mut *$tx).await?;
        }
        missed
    }};
}

impl Calls<'_> {
    fn pg(&self) -> bool {
        matches!(self.0, Db::Postgres(_))
    }

    /// Creates a ringing call with its creator's session in it, unless the conversation has a
    /// live call (the partial unique index decides, whatever runs at once).
    pub async fn create(&self, c: &NewCall) -> AppResult<Created> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let inserted: Result<CallRow, _> = sqlx::query_as(concat!(
                    "INSERT INTO calls (id, conversation_id, kind, status, created_by, max_participants, created_at)
                     VALUES ($1, $2, $3, 'ringing', $4, $5, $6) RETURNING ", call_columns!()))
                    .bind(c.id).bind(c.conversation).bind(c.kind).bind(c.created_by)
                    .bind(c.max_participants).bind(c.now).fetch_one(&mut *tx).await;
                let call = match inserted {
                    Err(e) if crate::is_unique_violation(&e) => {
                        tx.rollback().await?;
                        let live: Option<(CallId,)> = sqlx::query_as(
                            "SELECT id FROM calls WHERE conversation_id = $1 AND status IN ('ringing', 'active')")
                            .bind(c.conversation).fetch_optional(p).await?;
                        return Ok(Created::Live(live.map(|(id,)| id)));
                    }
                    other => other?,
                };
                let creator: ParticipantRow = sqlx::query_as(concat!(participant_insert!(), " RETURNING ", participant_columns!()))
                    .bind(c.id).bind(c.session).bind(c.created_by).bind(c.now).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Created::Ok(Box::new(call), creator))
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// The call with the kind of its conversation and `user`'s role in it; `None` when the
    /// call is absent or `user` is not a member of its conversation.
    pub async fn get_for_member(
        &self,
        id: CallId,
        user: UserId,
    ) -> AppResult<Option<(CallRow, String, String)>> {
        #[derive(sqlx::FromRow)]
        struct Found {
            #[sqlx(flatten)]
            call: CallRow,
            conversation_kind: String,
            role: Option<String>,
        }
        // Subqueries rather than joins: the call's column names stay unqualified.
        let sql = concat!(
            "SELECT ", call_columns!(), ",
               (SELECT c.kind FROM conversations c WHERE c.id = calls.conversation_id) AS conversation_kind,
               (SELECT m.role FROM conversation_members m
                 WHERE m.conversation_id = calls.conversation_id AND m.user_id = $2) AS role
             FROM calls WHERE id = $1");
        let found: Option<Found> =
            on_pool!(self.0, p => sqlx::query_as(sql).bind(id).bind(user).fetch_optional(p).await)?;
        Ok(found.and_then(|f| Some((f.call, f.conversation_kind, f.role?))))
    }

    pub async fn get(&self, id: CallId) -> AppResult<Option<CallRow>> {
        let sql = concat!("SELECT ", call_columns!(), " FROM calls WHERE id = $1");
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Every participation of a call, in the order of joining.
    pub async fn participants(&self, id: CallId) -> AppResult<Vec<ParticipantRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(concat!(
            "SELECT ", participant_columns!(), " FROM call_participants
             WHERE call_id = $1 ORDER BY joined_at, session_id"))
            .bind(id).fetch_all(p).await)?)
    }

    /// The sessions in a call now.
    pub async fn active_sessions(&self, id: CallId) -> AppResult<Vec<(UserId, SessionId)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id, session_id FROM call_participants WHERE call_id = $1 AND left_at IS NULL")
            .bind(id).fetch_all(p).await)?)
    }

    /// Adds a session to a live call with a free seat; the second participant makes a ringing
    /// call active.
    pub async fn join(
        &self,
        id: CallId,
        user: UserId,
        session: SessionId,
        now: Timestamp,
    ) -> AppResult<Joined> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let Some(call) = lock_call!(tx, pg, id) else {
                    tx.rollback().await?;
                    return Ok(Joined::Gone);
                };
                if !live(&call.status) {
                    tx.rollback().await?;
                    return Ok(Joined::Over);
                }
                let active: Vec<(SessionId,)> = sqlx::query_as(
                    "SELECT session_id FROM call_participants WHERE call_id = $1 AND left_at IS NULL")
                    .bind(id).fetch_all(&mut *tx).await?;
                if active.iter().any(|(s,)| *s == session) {
                    tx.rollback().await?;
                    return Ok(Joined::Already);
                }
                if active.len() as i64 >= call.max_participants {
                    tx.rollback().await?;
                    return Ok(Joined::Full);
                }
                sqlx::query(participant_insert!())
                    .bind(id).bind(session).bind(user).bind(now).execute(&mut *tx).await?;
                // The second participant makes a ringing call active.
                let call = if call.status == "ringing" && !active.is_empty() {
                    sqlx::query_as(concat!(
                        "UPDATE calls SET status = 'active', started_at = COALESCE(started_at, $2)
                         WHERE id = $1 RETURNING ", call_columns!()))
                        .bind(id).bind(now).fetch_one(&mut *tx).await?
                } else {
                    call
                };
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Joined::Ok(call))
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Takes a session out of a call; the call ends with its last participant.
    pub async fn leave(&self, id: CallId, session: SessionId, now: Timestamp) -> AppResult<Left> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let Some(call) = lock_call!(tx, pg, id) else {
                    tx.rollback().await?;
                    return Ok(Left::Gone);
                };
                let who: Option<(UserId,)> = sqlx::query_as(
                    "UPDATE call_participants SET left_at = $3 WHERE call_id = $1 AND session_id = $2 AND left_at IS NULL
                     RETURNING user_id")
                    .bind(id).bind(session).bind(now).fetch_optional(&mut *tx).await?;
                let Some((user,)) = who else {
                    tx.rollback().await?;
                    return Ok(Left::NotIn);
                };
                // A recorder who is gone from the call records no more.
                let recorder_gone: Option<(i32,)> = sqlx::query_as(
                    "SELECT 1 FROM calls WHERE id = $1 AND recording_by = $2
                       AND NOT EXISTS (SELECT 1 FROM call_participants WHERE call_id = $1 AND user_id = $2 AND left_at IS NULL)")
                    .bind(id).bind(user).fetch_optional(&mut *tx).await?;
                if recorder_gone.is_some() {
                    sqlx::query(CLOSE_RECORDING).bind(id).bind(now).execute(&mut *tx).await?;
                    sqlx::query(concat!("UPDATE calls SET ", end_recording!(), " WHERE id = $1"))
                        .bind(id).execute(&mut *tx).await?;
                }
                let (left,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM call_participants WHERE call_id = $1 AND left_at IS NULL")
                    .bind(id).fetch_one(&mut *tx).await?;
                let ended = left == 0 && live(&call.status);
                if ended {
                    sqlx::query(CLOSE_RECORDING).bind(id).bind(now).execute(&mut *tx).await?;
                    // A ringing call its caller leaves before anyone answered is missed.
                    sqlx::query(concat!(
                        "UPDATE calls SET status = CASE WHEN status = 'ringing' THEN 'missed' ELSE 'ended' END, ended_at = $2, ",
                        end_recording!(), " WHERE id = $1"))
                        .bind(id).bind(now).execute(&mut *tx).await?;
                    if call.status == "ringing" {
                        record_missed!(tx, id, call.conversation_id, call.created_by, now);
                    }
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Left::Ok { ended })
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Ends a live call with `status` ('ended' or 'declined'), taking everyone out of it. False
    /// when it was over already.
    pub async fn finish(&self, id: CallId, status: &str, now: Timestamp) -> AppResult<bool> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                match lock_call!(tx, pg, id) {
                    Some(c) if live(&c.status) => {}
                    _ => {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                sqlx::query(CLOSE_RECORDING).bind(id).bind(now).execute(&mut *tx).await?;
                sqlx::query(concat!("UPDATE calls SET status = $2, ended_at = $3, ", end_recording!(), " WHERE id = $1"))
                    .bind(id).bind(status).bind(now).execute(&mut *tx).await?;
                sqlx::query("UPDATE call_participants SET left_at = $2 WHERE call_id = $1 AND left_at IS NULL")
                    .bind(id).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Records a group member's decline (once).
    pub async fn record_decline(&self, id: CallId, user: UserId, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO call_declines (call_id, user_id, declined_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id).bind(user).bind(now).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn declined_by(&self, id: CallId) -> AppResult<Vec<UserId>> {
        let rows: Vec<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id FROM call_declines WHERE call_id = $1 ORDER BY declined_at, user_id")
            .bind(id).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A conversation's calls, newest first, below the keyset.
    pub async fn list(
        &self,
        conversation: ConversationId,
        before: Option<(Timestamp, CallId)>,
        limit: i64,
    ) -> AppResult<Vec<CallRow>> {
        let (at, id) = before.unwrap_or((Timestamp(i64::MAX), CallId(uuid::Uuid::max())));
        let sql = concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE conversation_id = $1 AND (created_at, id) < ($2, $3)
              ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(conversation).bind(at).bind(id).bind(limit).fetch_all(p).await)?)
    }

    /// Ringing calls created before `before` (their ring timed out).
    pub async fn ring_timed_out(&self, before: Timestamp, limit: i64) -> AppResult<Vec<CallId>> {
        let rows: Vec<(CallId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM calls WHERE status = 'ringing' AND created_at <= $1 ORDER BY created_at LIMIT $2")
            .bind(before).bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Makes a still-ringing call missed and writes a `call.missed` notification for every
    /// member who never joined, in one transaction: exactly one instance does it, once.
    pub async fn mark_missed(&self, id: CallId, now: Timestamp) -> AppResult<Option<Missed>> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                match lock_call!(tx, pg, id) {
                    Some(c) if c.status == "ringing" => {}
                    _ => {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                }
                sqlx::query(CLOSE_RECORDING).bind(id).bind(now).execute(&mut *tx).await?;
                let sql = concat!("UPDATE calls SET status = 'missed', ended_at = $2, recording_by = NULL, recording_started_at = NULL
                                   WHERE id = $1 RETURNING ", call_columns!());
                let call: CallRow = sqlx::query_as(sql).bind(id).bind(now).fetch_one(&mut *tx).await?;
                sqlx::query("UPDATE call_participants SET left_at = $2 WHERE call_id = $1 AND left_at IS NULL")
                    .bind(id).bind(now).execute(&mut *tx).await?;
                let missed = record_missed!(tx, id, call.conversation_id, call.created_by, now);
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some(Missed { call, missed_by: missed.into_iter().map(|r| r.0).collect() }))
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Marks the given sessions as still connected, in every call they are in.
    pub async fn touch_sessions(&self, sessions: &[SessionId], now: Timestamp) -> AppResult<()> {
        for chunk in sessions.chunks(500) {
            on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new("UPDATE call_participants SET last_seen_at = ");
                q.push_bind(now).push(" WHERE left_at IS NULL AND session_id IN (");
                let mut ids = q.separated(", ");
                for s in chunk {
                    ids.push_bind(*s);
                }
                q.push(")");
                q.build().execute(p).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Participations whose session has not been seen since `before`.
    pub async fn unseen_participants(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<(CallId, SessionId)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT call_id, session_id FROM call_participants
             WHERE left_at IS NULL AND last_seen_at < $1 ORDER BY last_seen_at LIMIT $2")
            .bind(before).bind(limit).fetch_all(p).await)?)
    }

    /// Changes the media flags of a session in a live call; false when it is not in one.
    pub async fn set_media(
        &self,
        id: CallId,
        session: SessionId,
        m: MediaChange,
    ) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE call_participants SET audio = COALESCE($3, audio), video = COALESCE($4, video),
                    screen = COALESCE($5, screen)
             WHERE call_id = $1 AND session_id = $2 AND left_at IS NULL
               AND EXISTS (SELECT 1 FROM calls WHERE id = $1 AND status IN ('ringing', 'active'))")
            .bind(id).bind(session).bind(m.audio).bind(m.video).bind(m.screen)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Starts a recording by a participant session's user, unless someone records already.
    pub async fn start_recording(
        &self,
        id: CallId,
        user: UserId,
        session: SessionId,
        now: Timestamp,
    ) -> AppResult<RecordingOutcome> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                match lock_call!(tx, pg, id) {
                    Some(c) if live(&c.status) => {}
                    _ => { tx.rollback().await?; return Ok(RecordingOutcome::NotIn); }
                }
                let inside: Option<(i32,)> = sqlx::query_as(
                    "SELECT 1 FROM call_participants WHERE call_id = $1 AND session_id = $2 AND left_at IS NULL")
                    .bind(id).bind(session).fetch_optional(&mut *tx).await?;
                if inside.is_none() {
                    tx.rollback().await?;
                    return Ok(RecordingOutcome::NotIn);
                }
                let n = sqlx::query(
                    "UPDATE calls SET recording_by = $2, recording_started_at = $3 WHERE id = $1 AND recording_by IS NULL")
                    .bind(id).bind(user).bind(now).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok::<_, sqlx::Error>(if n == 1 { RecordingOutcome::Ok } else { RecordingOutcome::Busy })
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Stops `user`'s recording in progress; `Busy` when they are not recording.
    pub async fn stop_recording(
        &self,
        id: CallId,
        user: UserId,
        now: Timestamp,
    ) -> AppResult<RecordingOutcome> {
        let pg = self.pg();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                if lock_call!(tx, pg, id).is_none() {
                    tx.rollback().await?;
                    return Ok(RecordingOutcome::NotIn);
                }
                let mine: Option<(i32,)> = sqlx::query_as(
                    "SELECT 1 FROM calls WHERE id = $1 AND recording_by = $2")
                    .bind(id).bind(user).fetch_optional(&mut *tx).await?;
                if mine.is_none() {
                    tx.rollback().await?;
                    return Ok(RecordingOutcome::Busy);
                }
                sqlx::query(CLOSE_RECORDING).bind(id).bind(now).execute(&mut *tx).await?;
                sqlx::query(concat!("UPDATE calls SET ", end_recording!(), " WHERE id = $1"))
                    .bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(RecordingOutcome::Ok)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Attaches a file to `user`'s latest finished recording of the call that has none.
    pub async fn attach_recording(
        &self,
        id: CallId,
        user: UserId,
        file: FileId,
    ) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE call_recordings SET file_id = $3
             WHERE call_id = $1 AND recorded_by = $2 AND started_at = (
                 SELECT MAX(started_at) FROM call_recordings WHERE call_id = $1 AND recorded_by = $2 AND file_id IS NULL)")
            .bind(id).bind(user).bind(file).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn recordings(&self, id: CallId) -> AppResult<Vec<RecordingRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT recorded_by, started_at, stopped_at, file_id FROM call_recordings
             WHERE call_id = $1 ORDER BY started_at, recorded_by")
            .bind(id).fetch_all(p).await)?)
    }

    /// Stores a quality sample of a session that is in the call, or left it after `left_after`;
    /// false otherwise.
    pub async fn add_quality(
        &self,
        id: CallId,
        session: SessionId,
        q: &QualityRow,
        now: Timestamp,
        left_after: Timestamp,
    ) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "INSERT INTO call_quality (call_id, session_id, user_id, at, rtt_ms, jitter_ms, packet_loss, bitrate_kbps)
             SELECT $1, $2, user_id, $3, $4, $5, $6, $7 FROM call_participants
             WHERE call_id = $1 AND session_id = $2 AND (left_at IS NULL OR left_at > $8) LIMIT 1")
            .bind(id).bind(session).bind(now).bind(q.rtt_ms).bind(q.jitter_ms).bind(q.packet_loss)
            .bind(q.bitrate_kbps).bind(left_after).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// A call's quality samples, at most `limit` of the newest.
    pub async fn quality(&self, id: CallId, limit: i64) -> AppResult<Vec<QualityRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT session_id, user_id, rtt_ms, jitter_ms, packet_loss, bitrate_kbps FROM call_quality
             WHERE call_id = $1 ORDER BY at DESC LIMIT $2")
            .bind(id).bind(limit).fetch_all(p).await)?)
    }

    /// Deletes up to `limit` calls that ended before `before`; returns how many.
    pub async fn purge_ended(&self, before: Timestamp, limit: i64) -> AppResult<u64> {
        Ok(on_pool!(self.0, p => sqlx::query(
            "DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE ended_at IS NOT NULL AND ended_at < $1 LIMIT $2)")
            .bind(before).bind(limit).execute(p).await.map(|r| r.rows_affected()))?)
    }
}
