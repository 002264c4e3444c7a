//! Realtime tickets (single-use WebSocket credentials) and presence leases.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{SessionId, UserId},
    time::Timestamp,
};

pub struct Realtime<'a>(&'a Db);

impl Db {
    pub fn realtime(&self) -> Realtime<'_> {
        Realtime(self)
    }
}

impl Realtime<'_> {
    pub async fn insert_ticket(
        &self,
        hash: &str,
        session: SessionId,
        user: UserId,
        expires_at: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO realtime_tickets (token_hash, session_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash).bind(session).bind(user).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Uses a ticket once; returns its session and user when it was valid.
    pub async fn consume_ticket(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> AppResult<Option<(SessionId, UserId)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "UPDATE realtime_tickets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING session_id, user_id")
            .bind(hash).bind(now).fetch_optional(p).await)?)
    }

    /// Sets a user's chosen status and extends their online lease.
    pub async fn set_presence(
        &self,
        user: UserId,
        status: &str,
        online_until: Timestamp,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO presence (user_id, status, online_until, last_seen_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET status = $2, online_until = $3, last_seen_at = $4")
            .bind(user).bind(status).bind(online_until).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Extends the online lease of a connected user (keeps the chosen status).
    /// The stored status is the user's choice and is kept: someone who chose "offline" stays
    /// hidden while connected; `online_until = now` ends the lease on disconnect.
    pub async fn renew_presence(
        &self,
        user: UserId,
        online_until: Timestamp,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO presence (user_id, status, online_until, last_seen_at) VALUES ($1, 'online', $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET online_until = $2, last_seen_at = $3")
            .bind(user).bind(online_until).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// `renew_presence` for many users (distinct ids) at once: one statement per 1,000 users, so
    /// an instance with 10,000 sockets renews their leases in ten statements, not 10,000.
    pub async fn renew_presence_many(
        &self,
        users: &[UserId],
        online_until: Timestamp,
        now: Timestamp,
    ) -> AppResult<()> {
        for chunk in users.chunks(1000) {
            on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO presence (user_id, status, online_until, last_seen_at) ");
                q.push_values(chunk, |mut row, user| {
                    row.push_bind(*user).push_bind("online").push_bind(online_until).push_bind(now);
                });
                q.push(" ON CONFLICT (user_id) DO UPDATE SET online_until = excluded.online_until,
                                                             last_seen_at = excluded.last_seen_at");
                q.build().execute(p).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Presence of the given users who share a conversation with `viewer`:
    /// (user, stored status, online_until, last_seen_at).
    pub async fn presence_visible_to(
        &self,
        viewer: UserId,
        user: UserId,
    ) -> AppResult<Option<(String, Timestamp, Timestamp)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT p.status, p.online_until, p.last_seen_at FROM presence p
             WHERE p.user_id = $2 AND ($1 = $2 OR EXISTS (
                 SELECT 1 FROM conversation_members a JOIN conversation_members b ON a.conversation_id = b.conversation_id
                 WHERE a.user_id = $1 AND b.user_id = $2))")
            .bind(viewer).bind(user).fetch_optional(p).await)?)
    }

    /// True when `a` and `b` share a conversation (or are the same user).
    pub async fn share_conversation(&self, a: UserId, b: UserId) -> AppResult<bool> {
        if a == b {
            return Ok(true);
        }
        let row: Option<(i32,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT 1 FROM conversation_members x JOIN conversation_members y ON x.conversation_id = y.conversation_id
             WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1").bind(a).bind(b).fetch_optional(p).await)?;
        Ok(row.is_some())
    }

    /// Everyone who shares a conversation with `user` (presence goes to them).
    ///
    /// Only conversations of at most `max_room` members count: pushing every presence change to
    /// every member of a huge room costs members² events; there, clients ask `GET /v1/presence`.
    pub async fn contacts(&self, user: UserId, max_room: i64) -> AppResult<Vec<UserId>> {
        let rows: Vec<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT DISTINCT y.user_id FROM conversation_members x JOIN conversation_members y ON x.conversation_id = y.conversation_id
             WHERE x.user_id = $1 AND y.user_id <> $1
               AND (SELECT COUNT(*) FROM conversation_members z WHERE z.conversation_id = x.conversation_id) <= $2")
            .bind(user).bind(max_room).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{Db, users::NewUser};
    use sc_core::{ids::UserId, time::Timestamp};
    use std::time::Duration;

    /// SQLite in a temporary directory, or a fresh database on `SC_TEST_PG_URL` when set.
    pub(crate) async fn test_db() -> (Db, tempfile::TempDir) {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let db = match std::env::var("SC_TEST_PG_URL") {
            Ok(base) => {
                let name = format!("sc_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let (head, _) = base.split('?').next().unwrap().rsplit_once('/').unwrap();
                Db::connect_postgres(&format!("{head}/{name}"), 2)
                    .await
                    .unwrap()
            }
            Err(_) => Db::connect_sqlite(&dir.path().join("t.db"), 2)
                .await
                .unwrap(),
        };
        db.migrate().await.unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn many_leases_are_renewed_at_once_and_keep_the_chosen_status() {
        let (db, _dir) = test_db().await;
        let now = Timestamp::now();
        // More users than one statement takes, so the chunks are exercised.
        let mut ids = Vec::new();
        for i in 0..1200 {
            let (id, name) = (UserId::new(), format!("lease{i}"));
            let email = format!("{name}@example.test");
            let user = NewUser {
                id,
                email: &email,
                email_normalized: &email,
                username: &name,
                display_name: &name,
                search_name: &name,
                password_hash: "-",
                role: "user",
                email_verified: false,
                now,
            };
            db.users().insert(&user).await.unwrap().unwrap();
            ids.push(id);
        }
        db.realtime()
            .set_presence(ids[0], "away", now, now)
            .await
            .unwrap();
        let until = now.plus(Duration::from_secs(45));
        db.realtime()
            .renew_presence_many(&ids, until, now)
            .await
            .unwrap();
        let rows: Vec<(UserId, String, Timestamp)> = on_pool!(&db, p => sqlx::query_as(
            "SELECT user_id, status, online_until FROM presence").fetch_all(p).await)
        .unwrap();
        assert_eq!(rows.len(), ids.len());
        for (user, status, online_until) in rows {
            assert_eq!(online_until, until);
            let expected = if user == ids[0] { "away" } else { "online" };
            assert_eq!(status, expected, "a chosen status is kept");
        }
    }
}
