//! Message retention: which messages are past their conversation's retention, and their
//! deletion with the files attached only to them.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{FileId, MessageId},
    time::Timestamp,
};

const DAY_MS: i64 = 86_400_000;

/// A conversation's retention in days: the owner's, capped by the server's ($2, 0 = none).
macro_rules! effective_days {
    () => {
        "(CASE WHEN c.retention_days IS NULL THEN $2
               WHEN $2 = 0 OR c.retention_days < $2 THEN c.retention_days ELSE $2 END)"
    };
}

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
    /// Deletes up to `batch` messages older than their conversation's retention (the owner's
    /// days, capped by `server_days` when that is not 0), then the files that were attached
    /// to them and to no other message (objects queued for deletion, usage released).
    pub async fn purge_messages(
        &self,
        server_days: u32,
        now: Timestamp,
        batch: i64,
    ) -> AppResult<MessagesPurged> {
        let server = i64::from(server_days);
        // No retention is shorter than a day: the index on created_at narrows the scan.
        let horizon = Timestamp(now.millis() - DAY_MS);
        let ids: Vec<(MessageId,)> = on_pool!(self.0, p => sqlx::query_as(concat!(
            "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.created_at < $3 AND ", effective_days!(), " > 0
               AND m.created_at < $1 - ", effective_days!(), " * 86400000
             LIMIT $4"))
            .bind(now.millis()).bind(server).bind(horizon).bind(batch).fetch_all(p).await)?;
        if ids.is_empty() {
            return Ok(MessagesPurged::default());
        }
        let ids: Vec<MessageId> = ids.into_iter().map(|(id,)| id).collect();
        let orphans: Vec<FileId> = on_pool!(self.0, p => {
            let mut tx = p.begin().await?;
            let mut q = sqlx::QueryBuilder::new(
                "SELECT DISTINCT file_id FROM message_attachments WHERE message_id IN ");
            push_id_list!(q, &ids);
            let attached: Vec<(FileId,)> = q.build_query_as().fetch_all(&mut *tx).await?;
            let mut q = sqlx::QueryBuilder::new("DELETE FROM messages WHERE id IN ");
            push_id_list!(q, &ids);
            q.build().execute(&mut *tx).await?;
            let mut orphans = Vec::new();
            for (file,) in attached {
                let (left,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM message_attachments WHERE file_id = $1")
                    .bind(file).fetch_one(&mut *tx).await?;
                if left == 0 {
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
