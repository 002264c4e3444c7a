//! Public links to drive files, found by the hash of their token.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{FileId, LinkId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkRow {
    pub id: LinkId,
    pub file_id: FileId,
    pub created_by: UserId,
    pub password_hash: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    pub created_at: Timestamp,
}

macro_rules! link_columns {
    () => {
        "id, file_id, created_by, password_hash, expires_at, max_downloads, downloads, created_at"
    };
}

pub struct NewLink<'a> {
    pub id: LinkId,
    pub file: FileId,
    pub created_by: UserId,
    pub token_hash: &'a str,
    pub password_hash: Option<&'a str>,
    pub expires_at: Option<Timestamp>,
    pub max_downloads: Option<i64>,
    pub now: Timestamp,
}

pub struct Links<'a>(&'a Db);

impl Db {
    pub fn links(&self) -> Links<'_> {
        Links(self)
    }
}

impl Links<'_> {
    pub async fn create(&self, l: &NewLink<'_>) -> AppResult<LinkRow> {
        let sql = concat!(
            "INSERT INTO file_links (id, file_id, created_by, token_hash, password_hash, expires_at, max_downloads, downloads, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) RETURNING ",
            link_columns!()
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(l.id).bind(l.file).bind(l.created_by).bind(l.token_hash).bind(l.password_hash)
            .bind(l.expires_at).bind(l.max_downloads).bind(l.now).fetch_one(p).await)?)
    }

    /// The link whose token hashes to `token_hash`, whatever its state.
    pub async fn by_token_hash(&self, token_hash: &str) -> AppResult<Option<LinkRow>> {
        let sql = concat!(
            "SELECT ",
            link_columns!(),
            " FROM file_links WHERE token_hash = $1"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(token_hash).fetch_optional(p).await)?)
    }

    /// Counts one download if the link is still live (not expired, downloads left): one
    /// conditional statement, so concurrent downloads never pass `max_downloads`.
    pub async fn count_download(&self, id: LinkId, now: Timestamp) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE file_links SET downloads = downloads + 1
             WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)
               AND (max_downloads IS NULL OR downloads < max_downloads)")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A file's links, oldest first, after the keyset.
    pub async fn list(
        &self,
        file: FileId,
        after: Option<(Timestamp, LinkId)>,
        limit: i64,
    ) -> AppResult<Vec<LinkRow>> {
        let (at, id) = after.unwrap_or((Timestamp(i64::MIN), LinkId(uuid::Uuid::nil())));
        let sql = concat!(
            "SELECT ",
            link_columns!(),
            " FROM file_links WHERE file_id = $1 AND (created_at, id) > ($2, $3)
              ORDER BY created_at, id LIMIT $4"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(file).bind(at).bind(id).bind(limit).fetch_all(p).await)?)
    }

    pub async fn delete(&self, file: FileId, link: LinkId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query("DELETE FROM file_links WHERE id = $1 AND file_id = $2")
            .bind(link).bind(file).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
