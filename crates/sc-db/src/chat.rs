//! Conversations, members, messages, reactions, read receipts and message search.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, FileId, JobId, MessageId, UserId},
    time::Timestamp,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: ConversationId,
    pub kind: String,
    pub title: Option<String>,
    pub avatar_url: Option<String>,
    pub encrypted: bool,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub last_message_seq: i64,
    pub last_activity_at: Timestamp,
    /// The caller's role, read position, unread count and the member count.
    pub my_role: String,
    pub read_seq: i64,
    pub unread_count: i64,
    pub members_count: i64,
    /// Until when the caller muted the conversation.
    pub muted_until: Option<Timestamp>,
    /// The owner/admin let AI helpers read it (summaries, @assistant).
    pub ai_enabled: bool,
    /// The owner's message retention in days (none: the server's).
    pub retention_days: Option<i64>,
    /// A direct conversation's other member (none for groups, or when they are gone).
    pub peer_id: Option<UserId>,
    pub peer_username: Option<String>,
    pub peer_display_name: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: Timestamp,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender_id: UserId,
    pub client_message_id: String,
    pub kind: String,
    pub content: Option<String>,
    pub ciphertext: Option<String>,
    pub reply_to: Option<MessageId>,
    pub metadata: String,
    /// Attached file ids, comma-separated in order ('' for none).
    pub attachments: String,
    /// A poll's closing time, when it has one.
    pub poll_closes_at: Option<Timestamp>,
    /// When a poll was closed (by hand or at `poll_closes_at`).
    pub poll_closed_at: Option<Timestamp>,
    /// Mentioned members: user ids comma-separated, `all` for @all, '' for none.
    pub mentions: String,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
}

/// One emoji's reactions on a message, and whether the reader is among them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ReactionCount {
    pub message_id: MessageId,
    pub emoji: String,
    pub count: i64,
    pub mine: bool,
}

pub struct NewConversation<'a> {
    pub id: ConversationId,
    pub kind: &'a str,
    pub title: Option<&'a str>,
    pub encrypted: bool,
    pub created_by: UserId,
    pub direct_key: Option<&'a str>,
    pub now: Timestamp,
}

/// A written message and its conversation's members at the time of the write.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    #[sqlx(flatten)]
    row: MessageRow,
    recipients: Option<String>,
}

/// A message to write. Owned, so it can wait in the send queue for a batch.
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub client_message_id: String,
    pub kind: String,
    pub content: Option<String>,
    pub ciphertext: Option<String>,
    pub reply_to: Option<MessageId>,
    pub metadata: String,
    /// Files attached, in order, each once; readable by the members while the message stands.
    pub attachments: Vec<FileId>,
    /// For a poll: when it closes by itself.
    pub poll_closes_at: Option<Timestamp>,
    /// Mentioned members (see `MessageRow::mentions`).
    pub mentions: String,
    pub now: Timestamp,
}

impl NewMessage {
    fn attachment_list(&self) -> String {
        self.attachments
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Ids from a comma-separated aggregate (hex on SQLite, canonical text on PostgreSQL).
fn parse_ids(list: Option<&str>) -> impl Iterator<Item = UserId> + '_ {
    list.unwrap_or_default()
        .split(',')
        .filter_map(|m| m.parse().ok())
}

/// A notification job's payload: the ids of the messages written together.
fn job_payload(ids: impl Iterator<Item = MessageId>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// What sending needs to know before writing: the conversation's kind and mode (fixed at
/// creation) and who the members are.
#[derive(Debug)]
pub struct ConversationAccess {
    pub kind: String,
    pub encrypted: bool,
    pub members: HashSet<UserId>,
}

/// Outcome of inserting a message.
pub enum Inserted {
    /// Written, with the conversation's members as of the write (the message's recipients).
    New(MessageRow, Arc<[UserId]>),
    /// The sender already sent this `client_message_id`: the original.
    Existing(MessageRow),
    /// The sender is no longer a member (or the conversation is gone).
    NotMember,
}

macro_rules! conversation_view {
    () => {
        "SELECT c.id, c.kind, c.title, c.avatar_url, c.encrypted, c.created_by, c.created_at,
                c.last_message_seq, c.last_activity_at, c.ai_enabled, c.retention_days, me.role AS my_role, me.read_seq, me.muted_until,
                (SELECT COUNT(*) FROM messages m
                  WHERE m.conversation_id = c.id AND m.seq > me.read_seq
                    AND m.sender_id <> me.user_id AND m.deleted_at IS NULL) AS unread_count,
                (SELECT COUNT(*) FROM conversation_members x WHERE x.conversation_id = c.id) AS members_count,
                peer.user_id AS peer_id, peer_user.username AS peer_username,
                peer_user.display_name AS peer_display_name
         FROM conversations c JOIN conversation_members me ON me.conversation_id = c.id AND me.user_id = $1
         -- A direct conversation has exactly one other member: one row, read once.
         LEFT JOIN conversation_members peer
           ON c.kind = 'direct' AND peer.conversation_id = c.id AND peer.user_id <> me.user_id
         LEFT JOIN users peer_user ON peer_user.id = peer.user_id"
    };
}

macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, sender_id, client_message_id, kind, content, ciphertext, reply_to, \
         metadata, attachments, poll_closes_at, poll_closed_at, mentions, created_at, edited_at, deleted_at"
    };
}
pub(crate) use message_columns;

pub struct Chat<'a>(&'a Db);

impl Db {
    pub fn chat(&self) -> Chat<'_> {
        Chat(self)
    }
}

impl Chat<'_> {
    /// Creates a conversation with its members. For a direct conversation whose pair already has
    /// one, nothing is created and the existing id is returned as `Err`.
    pub async fn create(
        &self,
        c: &NewConversation<'_>,
        members: &[(UserId, &str)],
    ) -> AppResult<Result<(), ConversationId>> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                sqlx::query(
                    "INSERT INTO conversations (id, kind, title, encrypted, created_by, created_at, last_activity_at, direct_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7)")
                    .bind(c.id).bind(c.kind).bind(c.title).bind(c.encrypted).bind(c.created_by).bind(c.now).bind(c.direct_key)
                    .execute(&mut *tx).await?;
                for (user, role) in members {
                    sqlx::query("INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                        .bind(c.id).bind(*user).bind(*role).bind(c.now).execute(&mut *tx).await?;
                }
                tx.commit().await
            })
        };
        match crate::retry_tx!(run()) {
            Ok(()) => Ok(Ok(())),
            Err(e) if crate::is_unique_violation(&e) && c.direct_key.is_some() => {
                let existing: Option<(ConversationId,)> = on_pool!(self.0, p => sqlx::query_as(
                    "SELECT id FROM conversations WHERE direct_key = $1").bind(c.direct_key).fetch_optional(p).await)?;
                match existing {
                    Some((id,)) => Ok(Err(id)),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find_direct(&self, direct_key: &str) -> AppResult<Option<ConversationId>> {
        let row: Option<(ConversationId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM conversations WHERE direct_key = $1").bind(direct_key).fetch_optional(p).await)?;
        Ok(row.map(|r| r.0))
    }

    /// The conversation as `member` sees it; `None` when it does not exist or they are not a member.
    pub async fn view(
        &self,
        member: UserId,
        id: ConversationId,
    ) -> AppResult<Option<ConversationRow>> {
        let sql = concat!(conversation_view!(), " WHERE c.id = $2");
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(member).bind(id).fetch_optional(p).await)?,
        )
    }

    /// The member's conversations, most recent activity first, after the keyset cursor.
    pub async fn list(
        &self,
        member: UserId,
        before: Option<(Timestamp, ConversationId)>,
        limit: i64,
    ) -> AppResult<Vec<ConversationRow>> {
        let (bt, bid) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
        let sql = concat!(
            conversation_view!(),
            " WHERE ($2 IS NULL OR c.last_activity_at < $2 OR (c.last_activity_at = $2 AND c.id < $3))
              ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $4"
        );
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(member).bind(bt).bind(bid).bind(limit).fetch_all(p).await)?,
        )
    }

    /// The conversation's kind, mode and members, in one round trip; `None` when it does not
    /// exist.
    pub async fn access(&self, id: ConversationId) -> AppResult<Option<ConversationAccess>> {
        type Row = (String, bool, Option<String>);
        let row: Option<Row> = match self.0 {
            Db::Sqlite(p, _) => sqlx::query_as(
                "SELECT c.kind, c.encrypted,
                        (SELECT group_concat(lower(hex(y.user_id)), ',') FROM conversation_members y WHERE y.conversation_id = $1)
                 FROM conversations c WHERE c.id = $1")
                .bind(id).fetch_optional(p).await?,
            Db::Postgres(p) => sqlx::query_as(
                "SELECT c.kind, c.encrypted,
                        (SELECT string_agg(y.user_id::text, ',') FROM conversation_members y WHERE y.conversation_id = $1)
                 FROM conversations c WHERE c.id = $1")
                .bind(id).fetch_optional(p).await?,
        };
        Ok(row.map(|(kind, encrypted, members)| ConversationAccess {
            kind,
            encrypted,
            members: parse_ids(members.as_deref()).collect(),
        }))
    }

    /// The members of a conversation among the given usernames (lowercase).
    pub async fn members_named(
        &self,
        id: ConversationId,
        usernames: &[String],
    ) -> AppResult<Vec<UserId>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(UserId,)> = on_pool!(self.0, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT m.user_id FROM conversation_members m JOIN users u ON u.id = m.user_id
                 WHERE m.conversation_id = ");
            q.push_bind(id).push(" AND u.username IN (");
            let mut names = q.separated(", ");
            for n in usernames {
                names.push_bind(n);
            }
            q.push(") ORDER BY m.user_id");
            q.build_query_as().fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Sets (or, with None, clears) a member's mute; false when `user` is not a member.
    pub async fn set_mute(
        &self,
        id: ConversationId,
        user: UserId,
        until: Option<Timestamp>,
    ) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE conversation_members SET muted_until = $3 WHERE conversation_id = $1 AND user_id = $2")
            .bind(id).bind(user).bind(until).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn role_of(&self, id: ConversationId, user: UserId) -> AppResult<Option<String>> {
        let row: Option<(String,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT role FROM conversation_members WHERE conversation_id = $1 AND user_id = $2")
            .bind(id).bind(user).fetch_optional(p).await)?;
        Ok(row.map(|r| r.0))
    }

    /// The conversation's kind and `user`'s role in it, when they are a member.
    pub async fn kind_and_role(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> AppResult<Option<(String, String)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT c.kind, m.role FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.conversation_id = $1 AND m.user_id = $2")
            .bind(id).bind(user).fetch_optional(p).await)?)
    }

    pub async fn member_ids(&self, id: ConversationId) -> AppResult<Vec<UserId>> {
        let rows: Vec<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id FROM conversation_members WHERE conversation_id = $1").bind(id).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn member(&self, id: ConversationId, user: UserId) -> AppResult<Option<MemberRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT m.user_id, u.username, u.display_name, m.role, m.joined_at
             FROM conversation_members m JOIN users u ON u.id = m.user_id
             WHERE m.conversation_id = $1 AND m.user_id = $2")
            .bind(id).bind(user).fetch_optional(p).await)?)
    }

    /// Members in joining order, after `after` (keyset cursor), at most `limit`; served by the
    /// `(conversation_id, joined_at, user_id)` index, so a deep page of a large group stays cheap.
    pub async fn members(
        &self,
        id: ConversationId,
        after: Option<(Timestamp, UserId)>,
        limit: i64,
    ) -> AppResult<Vec<MemberRow>> {
        // A row comparison (not `$2 IS NULL OR …`) is what lets the planner seek the index to
        // the cursor; the first page starts below every real key.
        let (at, uid) = after.unwrap_or((Timestamp(i64::MIN), UserId(uuid::Uuid::nil())));
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT m.user_id, u.username, u.display_name, m.role, m.joined_at
             FROM conversation_members m JOIN users u ON u.id = m.user_id
             WHERE m.conversation_id = $1 AND (m.joined_at, m.user_id) > ($2, $3)
             ORDER BY m.joined_at, m.user_id LIMIT $4")
            .bind(id).bind(at).bind(uid).bind(limit).fetch_all(p).await)?)
    }

    /// Adds members (already present ones are skipped); returns those added.
    pub async fn add_members(
        &self,
        id: ConversationId,
        users: &[UserId],
        now: Timestamp,
    ) -> AppResult<Vec<UserId>> {
        let mut added = Vec::new();
        for u in users {
            let n = on_pool!(self.0, p => sqlx::query(
                "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)
                 ON CONFLICT DO NOTHING").bind(id).bind(*u).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
            if n == 1 {
                added.push(*u);
            }
        }
        Ok(added)
    }

    /// Makes `to` the owner and `from` an admin, atomically and only while `from` is the owner.
    /// False when either is not (or no longer) in that position.
    pub async fn transfer_ownership(
        &self,
        id: ConversationId,
        from: UserId,
        to: UserId,
    ) -> AppResult<bool> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let stepped_down = sqlx::query(
                    "UPDATE conversation_members SET role = 'admin' WHERE conversation_id = $1 AND user_id = $2 AND role = 'owner'")
                    .bind(id).bind(from).execute(&mut *tx).await?.rows_affected();
                let promoted = sqlx::query(
                    "UPDATE conversation_members SET role = 'owner' WHERE conversation_id = $1 AND user_id = $2 AND user_id <> $3")
                    .bind(id).bind(to).bind(from).execute(&mut *tx).await?.rows_affected();
                if stepped_down == 1 && promoted == 1 {
                    tx.commit().await.map(|_| true)
                } else {
                    tx.rollback().await.map(|_| false)
                }
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Hands each group `user` owns (or just `only`) to its longest-standing admin, else its
    /// longest-standing member, and deletes groups that would be left empty. Run before the
    /// owner leaves or the account is deleted, so no group is left without an owner.
    pub async fn hand_over_groups(
        &self,
        user: UserId,
        only: Option<ConversationId>,
    ) -> AppResult<()> {
        let owned: Vec<(ConversationId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT m.conversation_id FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.user_id = $1 AND m.role = 'owner' AND c.kind = 'group' AND ($2 IS NULL OR c.id = $2)")
            .bind(user).bind(only).fetch_all(p).await)?;
        for (conv,) in owned {
            let heir: Option<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
                "SELECT user_id FROM conversation_members WHERE conversation_id = $1 AND user_id <> $2
                 ORDER BY CASE WHEN role = 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1")
                .bind(conv).bind(user).fetch_optional(p).await)?;
            match heir {
                Some((h,)) => {
                    self.set_role(conv, h, "owner").await?;
                }
                None => self.delete(conv).await?,
            }
        }
        Ok(())
    }

    pub async fn remove_member(&self, id: ConversationId, user: UserId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2")
            .bind(id).bind(user).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn set_role(&self, id: ConversationId, user: UserId, role: &str) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2")
            .bind(id).bind(user).bind(role).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn update(
        &self,
        id: ConversationId,
        title: Option<&str>,
        avatar_url: Option<&str>,
        ai_enabled: bool,
        retention_days: Option<i64>,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE conversations SET title = $2, avatar_url = $3, ai_enabled = $4, retention_days = $5 WHERE id = $1")
            .bind(id).bind(title).bind(avatar_url).bind(ai_enabled).bind(retention_days)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete(&self, id: ConversationId) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM conversations WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn message_by_client_id(
        &self,
        sender: UserId,
        client_message_id: &str,
    ) -> AppResult<Option<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE sender_id = $1 AND client_message_id = $2"
        );
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(sender).bind(client_message_id).fetch_optional(p).await)?,
        )
    }

    pub async fn message(&self, id: MessageId) -> AppResult<Option<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id = $1"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Inserts messages, each with the next `seq` of its conversation, as one write: on SQLite
    /// one transaction, on PostgreSQL one statement (a round trip and a commit for the whole
    /// batch, which is what lets concurrent sends share the cost of a write).
    ///
    /// The conversation counter is bumped and the rows inserted atomically (the counter's row
    /// lock orders concurrent writers), so seqs are gap-free and unique on any number of
    /// instances. Membership is checked inside the write: a sender removed since the access check
    /// gets `NotMember` and takes no seq. One notification job carries the batch's message ids.
    ///
    /// The outcome of each message is independent of the others': when the batch as a whole
    /// fails (a duplicate `client_message_id`, say), each message is written on its own.
    pub async fn insert_messages(&self, batch: &[NewMessage]) -> Vec<AppResult<Inserted>> {
        match crate::retry_tx!(self.write_batch(batch)) {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) if batch.len() > 1 => {
                tracing::debug!(error = %e, size = batch.len(), "message batch failed; writing one by one");
                let mut out = Vec::with_capacity(batch.len());
                for m in batch {
                    out.push(self.insert_message(m).await);
                }
                out
            }
            Err(e) => match batch.first() {
                Some(m) => vec![self.resolve_failed_insert(e, m).await],
                None => Vec::new(),
            },
        }
    }

    /// One message on its own (see `insert_messages`); a duplicate `client_message_id` returns
    /// the original.
    pub async fn insert_message(&self, m: &NewMessage) -> AppResult<Inserted> {
        let one = std::slice::from_ref(m);
        match crate::retry_tx!(self.write_batch(one)) {
            Ok(mut rows) => Ok(rows.pop().unwrap_or(Inserted::NotMember)),
            Err(e) => self.resolve_failed_insert(e, m).await,
        }
    }

    async fn resolve_failed_insert(&self, e: sqlx::Error, m: &NewMessage) -> AppResult<Inserted> {
        if crate::is_unique_violation(&e)
            && let Some(existing) = self
                .message_by_client_id(m.sender_id, &m.client_message_id)
                .await?
        {
            return Ok(Inserted::Existing(existing));
        }
        Err(e.into())
    }

    /// The write itself: one outcome per message, `NotMember` where the sender is not a member.
    async fn write_batch(&self, batch: &[NewMessage]) -> Result<Vec<Inserted>, sqlx::Error> {
        let Some(first) = batch.first() else {
            return Ok(Vec::new());
        };
        let now = first.now;
        let job = JobId::new();
        match self.0 {
            // In-process: a short write transaction of plain statements.
            Db::Sqlite(p, _) => {
                let mut tx = p.begin_write(self.0).await?;
                let mut out = Vec::with_capacity(batch.len());
                for m in batch {
                    let bumped: Option<(i64,)> = sqlx::query_as(
                        "UPDATE conversations SET last_message_seq = last_message_seq + 1, last_activity_at = $2
                         WHERE id = $1 AND EXISTS (SELECT 1 FROM conversation_members
                                                   WHERE conversation_id = $1 AND user_id = $3)
                         RETURNING last_message_seq")
                        .bind(m.conversation_id).bind(now).bind(m.sender_id).fetch_optional(&mut *tx).await?;
                    let Some((seq,)) = bumped else {
                        out.push(None);
                        continue;
                    };
                    let sql = concat!(
                        "INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, kind, content,
                                               ciphertext, reply_to, metadata, attachments, poll_closes_at, mentions, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $13) RETURNING ", message_columns!());
                    let row: MessageRow = sqlx::query_as(sql)
                        .bind(m.id)
                        .bind(m.conversation_id)
                        .bind(seq)
                        .bind(m.sender_id)
                        .bind(&m.client_message_id)
                        .bind(&m.kind)
                        .bind(&m.content)
                        .bind(&m.ciphertext)
                        .bind(m.reply_to)
                        .bind(&m.metadata)
                        .bind(m.attachment_list())
                        .bind(m.poll_closes_at)
                        .bind(now)
                        .bind(&m.mentions)
                        .fetch_one(&mut *tx)
                        .await?;
                    for file in &m.attachments {
                        sqlx::query("INSERT INTO message_attachments (file_id, message_id, conversation_id) VALUES ($1, $2, $3)")
                            .bind(file).bind(m.id).bind(m.conversation_id).execute(&mut *tx).await?;
                    }
                    out.push(Some(row));
                }
                let ids = job_payload(out.iter().flatten().map(|r| r.id));
                if !ids.is_empty() {
                    // The offline-notification job commits with the messages.
                    sqlx::query(
                        "INSERT INTO notification_jobs (id, kind, payload, created_at, next_attempt_at) VALUES ($1, 'message', $2, $3, $3)")
                        .bind(job).bind(ids).bind(now).execute(&mut *tx).await?;
                }
                // The recipients, read in the same transaction as the write.
                let mut members: HashMap<ConversationId, Arc<[UserId]>> = HashMap::new();
                for row in out.iter().flatten() {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        members.entry(row.conversation_id)
                    {
                        let ids: Vec<(UserId,)> = sqlx::query_as(
                            "SELECT user_id FROM conversation_members WHERE conversation_id = $1",
                        )
                        .bind(row.conversation_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        slot.insert(ids.into_iter().map(|r| r.0).collect());
                    }
                }
                tx.commit().await?;
                Ok(out
                    .into_iter()
                    .map(|r| match r {
                        Some(row) => {
                            let to = members
                                .get(&row.conversation_id)
                                .cloned()
                                .unwrap_or_else(|| Arc::from([]));
                            Inserted::New(row, to)
                        }
                        None => Inserted::NotMember,
                    })
                    .collect())
            }
            // Over the network: one statement, atomic by itself. The batch arrives as arrays;
            // each conversation's counter moves once by its number of messages, which take the
            // seqs below the new value in the order they were sent.
            Db::Postgres(p) => {
                let sql = concat!(
                    "WITH input AS (
                        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                             $7::text[], $8::uuid[], $9::text[], $12::text[], $13::bigint[], $14::text[])
                            WITH ORDINALITY AS t(id, conversation_id, sender_id, client_message_id, kind, content,
                                                 ciphertext, reply_to, metadata, attachments, poll_closes_at, mentions, ord)
                     ), allowed AS (
                        SELECT i.* FROM input i
                        WHERE EXISTS (SELECT 1 FROM conversation_members m
                                      WHERE m.conversation_id = i.conversation_id AND m.user_id = i.sender_id)
                     ), bump AS (
                        UPDATE conversations c SET last_message_seq = c.last_message_seq + n.count, last_activity_at = $10
                        FROM (SELECT conversation_id, COUNT(*) AS count FROM allowed GROUP BY conversation_id) n
                        WHERE c.id = n.conversation_id
                        RETURNING c.id, c.last_message_seq AS top, n.count
                     ), ins AS (
                        INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, kind, content,
                                              ciphertext, reply_to, metadata, attachments, poll_closes_at, mentions, created_at)
                        SELECT a.id, a.conversation_id,
                               b.top - b.count + ROW_NUMBER() OVER (PARTITION BY a.conversation_id ORDER BY a.ord),
                               a.sender_id, a.client_message_id, a.kind, a.content, a.ciphertext, a.reply_to,
                               a.metadata, a.attachments, a.poll_closes_at, a.mentions, $10
                        FROM allowed a JOIN bump b ON b.id = a.conversation_id
                        RETURNING ", message_columns!(), "
                     ), attached AS (
                        INSERT INTO message_attachments (file_id, message_id, conversation_id)
                        SELECT f.file_id::uuid, ins.id, ins.conversation_id
                        FROM ins, unnest(string_to_array(NULLIF(ins.attachments, ''), ',')) AS f(file_id)
                     ), job AS (
                        INSERT INTO notification_jobs (id, kind, payload, created_at, next_attempt_at)
                        SELECT $11, 'message', s.ids, $10, $10
                        FROM (SELECT string_agg(id::text, ',') AS ids FROM ins) s WHERE s.ids IS NOT NULL
                     ), recipients AS (
                        SELECT b.id AS recipients_of, string_agg(m.user_id::text, ',') AS recipients
                        FROM bump b JOIN conversation_members m ON m.conversation_id = b.id GROUP BY b.id
                     )
                     SELECT ins.*, r.recipients FROM ins JOIN recipients r ON r.recipients_of = ins.conversation_id");
                let col =
                    |f: fn(&NewMessage) -> Option<&str>| batch.iter().map(f).collect::<Vec<_>>();
                let rows: Vec<WrittenRow> = sqlx::query_as(sql)
                    .bind(batch.iter().map(|m| m.id.as_uuid()).collect::<Vec<_>>())
                    .bind(
                        batch
                            .iter()
                            .map(|m| m.conversation_id.as_uuid())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        batch
                            .iter()
                            .map(|m| m.sender_id.as_uuid())
                            .collect::<Vec<_>>(),
                    )
                    .bind(col(|m| Some(&m.client_message_id)))
                    .bind(col(|m| Some(&m.kind)))
                    .bind(col(|m| m.content.as_deref()))
                    .bind(col(|m| m.ciphertext.as_deref()))
                    .bind(
                        batch
                            .iter()
                            .map(|m| m.reply_to.map(|r| r.as_uuid()))
                            .collect::<Vec<_>>(),
                    )
                    .bind(col(|m| Some(&m.metadata)))
                    .bind(now)
                    .bind(job)
                    .bind(
                        batch
                            .iter()
                            .map(NewMessage::attachment_list)
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        batch
                            .iter()
                            .map(|m| m.poll_closes_at.map(Timestamp::millis))
                            .collect::<Vec<_>>(),
                    )
                    .bind(col(|m| Some(&m.mentions)))
                    .fetch_all(p)
                    .await?;
                // One shared recipient list per conversation of the batch.
                let mut members: HashMap<ConversationId, Arc<[UserId]>> = HashMap::new();
                let mut by_id: HashMap<MessageId, Inserted> = rows
                    .into_iter()
                    .map(|w| {
                        let to = members
                            .entry(w.row.conversation_id)
                            .or_insert_with(|| parse_ids(w.recipients.as_deref()).collect())
                            .clone();
                        (w.row.id, Inserted::New(w.row, to))
                    })
                    .collect();
                Ok(batch
                    .iter()
                    .map(|m| by_id.remove(&m.id).unwrap_or(Inserted::NotMember))
                    .collect())
            }
        }
    }

    /// History: with `after_seq` oldest first from `after_seq + 1`; otherwise newest first below
    /// `before_seq`. Fetches `limit` rows.
    pub async fn messages(
        &self,
        id: ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<MessageRow>> {
        Ok(match after_seq {
            Some(after) => {
                let sql = concat!("SELECT ", message_columns!(), " FROM messages
                    WHERE conversation_id = $1 AND seq > $2 AND ($3 IS NULL OR seq < $3) ORDER BY seq ASC LIMIT $4");
                on_pool!(self.0, p => sqlx::query_as(sql).bind(id).bind(after).bind(before_seq).bind(limit).fetch_all(p).await)?
            }
            None => {
                let sql = concat!("SELECT ", message_columns!(), " FROM messages
                    WHERE conversation_id = $1 AND ($2 IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3");
                on_pool!(self.0, p => sqlx::query_as(sql).bind(id).bind(before_seq).bind(limit).fetch_all(p).await)?
            }
        })
    }

    /// Replaces the body of a live message; false for a tombstone.
    pub async fn edit_message(
        &self,
        id: MessageId,
        content: Option<&str>,
        ciphertext: Option<&str>,
        now: Timestamp,
    ) -> AppResult<Option<MessageRow>> {
        let sql = concat!(
            "UPDATE messages SET content = $2, ciphertext = $3, edited_at = $4
                           WHERE id = $1 AND deleted_at IS NULL RETURNING ",
            message_columns!()
        );
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(id).bind(content).bind(ciphertext).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Tombstones a message: its body, metadata and reactions are removed (and it leaves the
    /// search index through the trigger or the partial index).
    pub async fn delete_message(
        &self,
        id: MessageId,
        now: Timestamp,
    ) -> AppResult<Option<MessageRow>> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let sql = concat!("UPDATE messages SET content = NULL, ciphertext = NULL, metadata = '{}', attachments = '', mentions = '', deleted_at = $2
                                   WHERE id = $1 AND deleted_at IS NULL RETURNING ", message_columns!());
                let row: Option<MessageRow> = sqlx::query_as(sql).bind(id).bind(now).fetch_optional(&mut *tx).await?;
                sqlx::query("DELETE FROM message_reactions WHERE message_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM message_attachments WHERE message_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM poll_votes WHERE message_id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await.map(|_| row)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Adds a reaction unless the message already carries `max_distinct` other emoji.
    /// Returns false when refused for that bound.
    pub async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        max_distinct: i64,
        now: Timestamp,
    ) -> AppResult<bool> {
        const INSERT_BELOW_BOUND: &str =
            "INSERT INTO message_reactions (message_id, user_id, emoji, created_at)
             SELECT $1, $2, $3, $4
             WHERE EXISTS (SELECT 1 FROM message_reactions WHERE message_id = $1 AND emoji = $3)
                OR (SELECT COUNT(DISTINCT emoji) FROM message_reactions WHERE message_id = $1) < $5
             ON CONFLICT DO NOTHING";
        let run = || async {
            match self.0 {
                // SQLite runs one writer at a time: the bound holds as written.
                Db::Sqlite(p, _) => sqlx::query(INSERT_BELOW_BOUND)
                    .bind(message)
                    .bind(user)
                    .bind(emoji)
                    .bind(now)
                    .bind(max_distinct)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()),
                // PostgreSQL: the message row lock orders concurrent new emoji, so two of them
                // cannot both see room for one more.
                Db::Postgres(p) => {
                    let mut tx = p.begin_write(self.0).await?;
                    sqlx::query("SELECT id FROM messages WHERE id = $1 FOR UPDATE")
                        .bind(message)
                        .execute(&mut *tx)
                        .await?;
                    let n = sqlx::query(INSERT_BELOW_BOUND)
                        .bind(message)
                        .bind(user)
                        .bind(emoji)
                        .bind(now)
                        .bind(max_distinct)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await.map(|_| n)
                }
            }
        };
        let n = crate::retry_tx!(run())?;
        if n == 1 {
            return Ok(true);
        }
        // Not inserted: either a repeat (fine) or the bound.
        let mine: Option<(i32,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT 1 FROM message_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .bind(message).bind(user).bind(emoji).fetch_optional(p).await)?;
        Ok(mine.is_some())
    }

    pub async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .bind(message).bind(user).bind(emoji).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The reaction counts of the messages `from_seq..=to_seq`, per message and emoji, with
    /// whether `reader` is among each emoji's reactors (never, without a reader).
    pub async fn reaction_counts(
        &self,
        id: ConversationId,
        from_seq: i64,
        to_seq: i64,
        reader: Option<UserId>,
    ) -> AppResult<Vec<ReactionCount>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT r.message_id, r.emoji, COUNT(*) AS count,
                    MAX(CASE WHEN r.user_id = $4 THEN 1 ELSE 0 END) = 1 AS mine
             FROM message_reactions r JOIN messages m ON m.id = r.message_id
             WHERE m.conversation_id = $1 AND m.seq BETWEEN $2 AND $3
             GROUP BY r.message_id, r.emoji ORDER BY r.message_id, r.emoji")
            .bind(id).bind(from_seq).bind(to_seq).bind(reader).fetch_all(p).await)?)
    }

    /// Moves the member's read position forward (never back, never past the last message).
    /// Returns the new position when it moved.
    pub async fn mark_read(
        &self,
        id: ConversationId,
        user: UserId,
        seq: i64,
    ) -> AppResult<Option<i64>> {
        let row: Option<(i64,)> = on_pool!(self.0, p => sqlx::query_as(
            "UPDATE conversation_members
             SET read_seq = (SELECT CASE WHEN $3 < last_message_seq THEN $3 ELSE last_message_seq END
                             FROM conversations WHERE id = $1)
             WHERE conversation_id = $1 AND user_id = $2
               AND read_seq < (SELECT CASE WHEN $3 < last_message_seq THEN $3 ELSE last_message_seq END
                               FROM conversations WHERE id = $1)
             RETURNING read_seq")
            .bind(id).bind(user).bind(seq).fetch_optional(p).await)?;
        Ok(row.map(|r| r.0))
    }

    /// Read positions by member id, after `after`, at most `limit` (the primary key orders them).
    pub async fn receipts(
        &self,
        id: ConversationId,
        after: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<(UserId, i64)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id, read_seq FROM conversation_members
             WHERE conversation_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3")
            .bind(id).bind(after.unwrap_or(UserId(uuid::Uuid::nil()))).bind(limit).fetch_all(p).await)?)
    }

    /// Full-text search over live plain messages in the member's conversations, newest first.
    pub async fn search(
        &self,
        member: UserId,
        query: &str,
        conversation: Option<ConversationId>,
        before: Option<MessageId>,
        limit: i64,
    ) -> AppResult<Vec<MessageRow>> {
        Ok(match self.0 {
            Db::Sqlite(p, _) => {
                let sql = concat!("SELECT ", message_columns!(), " FROM messages WHERE rowid IN (
                        SELECT f.rowid FROM messages_fts f WHERE messages_fts MATCH $2)
                    AND conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $1)
                    AND deleted_at IS NULL AND ($3 IS NULL OR conversation_id = $3) AND ($4 IS NULL OR id < $4)
                    ORDER BY id DESC LIMIT $5");
                sqlx::query_as(sql)
                    .bind(member)
                    .bind(fts5_query(query))
                    .bind(conversation)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                let sql = concat!("SELECT ", message_columns!(), " FROM messages
                    WHERE content IS NOT NULL AND deleted_at IS NULL
                      AND to_tsvector('simple', COALESCE(content, '')) @@ plainto_tsquery('simple', $2)
                      AND conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $1)
                      AND ($3::uuid IS NULL OR conversation_id = $3) AND ($4::uuid IS NULL OR id < $4)
                    ORDER BY id DESC LIMIT $5");
                sqlx::query_as(sql)
                    .bind(member)
                    .bind(query)
                    .bind(conversation)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        })
    }
}

/// Turns user text into an FTS5 query that matches all its words literally (each word quoted,
/// so FTS5 operators in the input have no effect).
fn fts5_query(text: &str) -> String {
    text.split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}
