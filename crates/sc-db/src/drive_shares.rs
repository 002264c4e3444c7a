//! Shares of drive files and folders, and the access they give.

use crate::{Db, drive::FileRow};
use sc_core::{
    AppResult,
    ids::{ConversationId, FileId, ShareId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ShareRow {
    pub id: ShareId,
    pub file_id: FileId,
    pub user_id: Option<UserId>,
    pub conversation_id: Option<ConversationId>,
    pub permission: String,
    pub created_at: Timestamp,
}

/// Whom a share is for.
#[derive(Clone, Copy, Debug)]
pub enum Grantee {
    User(UserId),
    Conversation(ConversationId),
}

pub struct Shares<'a>(&'a Db);

impl Db {
    pub fn shares(&self) -> Shares<'_> {
        Shares(self)
    }
}

/// The file and each folder above it, with the shares on them that reach `user` directly or
/// through a conversation they are a member of now.
macro_rules! shares_reaching {
    () => {
        "WITH RECURSIVE up(id, parent_id, depth) AS (
             SELECT id, parent_id, 0 FROM files WHERE id = $1
             UNION ALL
             SELECT f.id, f.parent_id, up.depth + 1 FROM files f JOIN up ON f.id = up.parent_id WHERE up.depth < 1000)
         SELECT s.permission FROM file_shares s JOIN up ON s.file_id = up.id
         WHERE s.user_id = $2
            OR s.conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $2)"
    };
}

impl Shares<'_> {
    /// Creates the share, or changes the permission of the grantee's existing share of that
    /// file. Returns the share and whether it is new.
    pub async fn upsert(
        &self,
        file: FileId,
        grantee: Grantee,
        permission: &str,
        now: Timestamp,
    ) -> AppResult<(ShareRow, bool)> {
        let (user, conversation) = match grantee {
            Grantee::User(u) => (Some(u), None),
            Grantee::Conversation(c) => (None, Some(c)),
        };
        let existing: Option<ShareRow> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, file_id, user_id, conversation_id, permission, created_at FROM file_shares
             WHERE file_id = $1 AND (user_id = $2 OR conversation_id = $3)")
            .bind(file).bind(user).bind(conversation).fetch_optional(p).await)?;
        if let Some(mut s) = existing {
            on_pool!(self.0, p => sqlx::query("UPDATE file_shares SET permission = $2 WHERE id = $1")
                .bind(s.id).bind(permission).execute(p).await.map(|_| ()))?;
            s.permission = permission.to_string();
            return Ok((s, false));
        }
        let row = ShareRow {
            id: ShareId::new(),
            file_id: file,
            user_id: user,
            conversation_id: conversation,
            permission: permission.to_string(),
            created_at: now,
        };
        let r = on_pool!(self.0, p => sqlx::query(
            "INSERT INTO file_shares (id, file_id, user_id, conversation_id, permission, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(row.id).bind(file).bind(user).bind(conversation).bind(permission).bind(now)
            .execute(p).await.map(|_| ()));
        match r {
            Ok(()) => Ok((row, true)),
            // A concurrent share of the same grantee won: answer with it.
            Err(e) if crate::is_unique_violation(&e) => {
                Box::pin(self.upsert(file, grantee, permission, now)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(
        &self,
        file: FileId,
        after: Option<(Timestamp, ShareId)>,
        limit: i64,
    ) -> AppResult<Vec<ShareRow>> {
        let (at, id) = after.unwrap_or((Timestamp(i64::MIN), ShareId(uuid::Uuid::nil())));
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, file_id, user_id, conversation_id, permission, created_at FROM file_shares
             WHERE file_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4")
            .bind(file).bind(at).bind(id).bind(limit).fetch_all(p).await)?)
    }

    /// Revokes one share of `file`; false when there is no such share.
    pub async fn delete(&self, file: FileId, share: ShareId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query("DELETE FROM file_shares WHERE id = $1 AND file_id = $2")
            .bind(share).bind(file).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The strongest permission `user` holds on `file` through shares of it or of a folder
    /// above it: "write", "read", or None.
    pub async fn permission_of(&self, file: FileId, user: UserId) -> AppResult<Option<String>> {
        let rows: Vec<(String,)> = on_pool!(self.0, p => sqlx::query_as(shares_reaching!())
            .bind(file).bind(user).fetch_all(p).await)?;
        let mut best = None;
        for (p,) in rows {
            if p == "write" {
                return Ok(Some(p));
            }
            best = Some(p);
        }
        Ok(best)
    }

    /// Whether `file` is attached to a standing message of a conversation `user` is a member of
    /// now, or is the recording of a call they took part in (either lets them read it).
    pub async fn attached_for(&self, file: FileId, user: UserId) -> AppResult<bool> {
        let row: Option<(i32,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT 1 FROM message_attachments a
             JOIN conversation_members cm ON cm.conversation_id = a.conversation_id AND cm.user_id = $2
             JOIN messages m ON m.id = a.message_id AND m.deleted_at IS NULL
             WHERE a.file_id = $1
             UNION ALL
             SELECT 1 FROM call_recordings r
             JOIN call_participants cp ON cp.call_id = r.call_id AND cp.user_id = $2
             WHERE r.file_id = $1
             LIMIT 1")
            .bind(file).bind(user).fetch_optional(p).await)?;
        Ok(row.is_some())
    }

    /// Files and folders shared with `user` (directly or through their conversations), most
    /// recently shared first, each once, with the permission and time of its newest share.
    pub async fn shared_with(
        &self,
        user: UserId,
        before: Option<(Timestamp, FileId)>,
        limit: i64,
    ) -> AppResult<Vec<(FileRow, Timestamp)>> {
        let (at, id) = before.unwrap_or((Timestamp(i64::MAX), FileId(uuid::Uuid::max())));
        let rows: Vec<SharedFileRow> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT f.id, f.owner_id, f.parent_id, f.name, f.is_folder, f.status, f.version, f.size,
                    f.content_type, f.sha256, f.encrypted, f.created_at, f.updated_at, s.shared_at
             FROM (SELECT file_id, MAX(created_at) AS shared_at FROM file_shares
                   WHERE user_id = $1
                      OR conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $1)
                   GROUP BY file_id) s
             JOIN files f ON f.id = s.file_id
             WHERE f.owner_id <> $1 AND f.status = 'ready' AND (s.shared_at, f.id) < ($2, $3)
             ORDER BY s.shared_at DESC, f.id DESC LIMIT $4")
            .bind(user).bind(at).bind(id).bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| (r.file, r.shared_at)).collect())
    }
}

#[derive(sqlx::FromRow)]
struct SharedFileRow {
    #[sqlx(flatten)]
    file: FileRow,
    shared_at: Timestamp,
}
