//! Message retention: which messages are past their conversation's retention, and their
//! deletion with the files attached only to them.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, FileId, MessageId, UserId},
    time::Timestamp,
};

const DAY_MS: i64 = 86_400_000;

pub struct Retention<'a>(&'a Db);

impl Db {
    pub fn retention(&self) -> Retention<'_> {
        Retention(self)
    }
}

/// What one batch deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MessagesPurged {
    pub messages: u64,
    pub files: u64,
}

impl Retention<'_> {
    /// Up to `batch` messages past their conversation's retention: the server-wide one
    /// (`server_days`, 0 = none) for conversations without a shorter one of their own, found
    /// through the index on `created_at`; then, conversation by conversation, those whose owner
    /// chose a shorter period.
    async fn expired(
        &self,
        server_days: u32,
        now: Timestamp,
        batch: i64,
    ) -> AppResult<Vec<MessageId>> {
        let server = i64::from(server_days);
        let mut ids: Vec<MessageId> = Vec::new();
        if server > 0 {
            let cutoff = Timestamp(now.millis() - server * DAY_MS);
            let rows: Vec<(MessageId,)> = on_pool!(self.0, p => sqlx::query_as(
                "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE m.created_at < $1 AND (c.retention_days IS NULL OR c.retention_days >= $2)
                 LIMIT $3")
                .bind(cutoff).bind(server).bind(batch).fetch_all(p).await)?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        let own: Vec<(ConversationId, i64)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, retention_days FROM conversations
             WHERE retention_days IS NOT NULL AND ($1 = 0 OR retention_days < $1)")
            .bind(server).fetch_all(p).await)?;
        for (conversation, days) in own {
            let left = batch - ids.len() as i64;
            if left <= 0 {
                break;
            }
            let cutoff = Timestamp(now.millis() - days * DAY_MS);
            let rows: Vec<(MessageId,)> = on_pool!(self.0, p => sqlx::query_as(
                "SELECT id FROM messages WHERE conversation_id = $1 AND created_at < $2 LIMIT $3")
                .bind(conversation).bind(cutoff).bind(left).fetch_all(p).await)?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(ids)
    }

    /// Deletes up to `batch` expired messages, then the files that were attached only to them
    /// and belong to the message's own sender, unshared and without links (objects queued for
    /// deletion, usage released). Files someone attached from another owner's drive (a share)
    /// are never deleted: an attachment is a reference, and only the sender's own upload is
    /// the message's to take along.
    pub async fn purge_messages(
        &self,
        server_days: u32,
        now: Timestamp,
        batch: i64,
    ) -> AppResult<MessagesPurged> {
        let ids = self.expired(server_days, now, batch).await?;
        if ids.is_empty() {
            return Ok(MessagesPurged::default());
        }
        let orphans: Vec<FileId> = on_pool!(self.0, p => {
            let mut tx = p.begin_write(self.0).await?;
            let mut q = sqlx::QueryBuilder::new(
                "SELECT DISTINCT a.file_id, m.sender_id FROM message_attachments a
                 JOIN messages m ON m.id = a.message_id WHERE a.message_id IN ");
            push_id_list!(q, &ids);
            let attached: Vec<(FileId, UserId)> = q.build_query_as().fetch_all(&mut *tx).await?;
            let mut q = sqlx::QueryBuilder::new("DELETE FROM messages WHERE id IN ");
            push_id_list!(q, &ids);
            q.build().execute(&mut *tx).await?;
            let mut orphans = Vec::new();
            for (file, sender) in attached {
                let (goes,): (bool,) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM files f WHERE f.id = $1 AND f.owner_id = $2)
                        AND NOT EXISTS (SELECT 1 FROM message_attachments WHERE file_id = $1)
                        AND NOT EXISTS (SELECT 1 FROM file_shares WHERE file_id = $1)
                        AND NOT EXISTS (SELECT 1 FROM file_links WHERE file_id = $1)")
                    .bind(file).bind(sender).fetch_one(&mut *tx).await?;
                if goes {
                    orphans.push(file);
                }
            }
            tx.commit().await.map(|()| orphans)
        })?;
        self.0.drive().delete_files(&orphans, now).await?;
        Ok(MessagesPurged {
            messages: ids.len() as u64,
            files: orphans.len() as u64,
        })
    }
}
