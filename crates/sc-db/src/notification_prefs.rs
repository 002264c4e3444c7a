//! Notification preferences: per-kind push and email switches (a missing row means both on)
//! and the digest switch, plus what dispatching needs to know about recipients.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{AppResult, ids::UserId, time::Timestamp};

/// A kind's switches as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KindSetting {
    pub user_id: UserId,
    pub kind: String,
    pub push: bool,
    pub email: bool,
}

/// A change to one kind: `None` leaves a switch as it is.
pub struct KindChange<'a> {
    pub kind: &'a str,
    pub push: Option<bool>,
    pub email: Option<bool>,
}

/// What dispatching a notification needs to know about its recipient.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Recipient {
    pub user_id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub display_name: String,
    /// No live socket anywhere, or a chosen `offline` status.
    pub offline: bool,
}

pub struct NotificationPrefs<'a>(&'a Db);

impl Db {
    pub fn notification_prefs(&self) -> NotificationPrefs<'_> {
        NotificationPrefs(self)
    }
}

impl NotificationPrefs<'_> {
    /// The user's stored switches and the digest switch.
    pub async fn get(&self, user: UserId) -> AppResult<(Vec<KindSetting>, bool)> {
        let rows: Vec<KindSetting> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id, kind, push, email FROM notification_settings WHERE user_id = $1 ORDER BY kind")
            .bind(user).fetch_all(p).await)?;
        let digest: Option<(bool,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT email_digest FROM users WHERE id = $1").bind(user).fetch_optional(p).await)?;
        Ok((rows, digest.is_none_or(|d| d.0)))
    }

    /// Applies changes in one transaction; each switch is set on its own, so concurrent changes
    /// to different switches all take effect.
    pub async fn update(
        &self,
        user: UserId,
        changes: &[KindChange<'_>],
        email_digest: Option<bool>,
    ) -> AppResult<()> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                for c in changes {
                    sqlx::query(
                        "INSERT INTO notification_settings (user_id, kind, push, email)
                         VALUES ($1, $2, COALESCE($3, TRUE), COALESCE($4, TRUE))
                         ON CONFLICT (user_id, kind) DO UPDATE SET
                             push = COALESCE($3, notification_settings.push),
                             email = COALESCE($4, notification_settings.email)")
                        .bind(user).bind(c.kind).bind(c.push).bind(c.email).execute(&mut *tx).await?;
                }
                if let Some(d) = email_digest {
                    sqlx::query("UPDATE users SET email_digest = $2 WHERE id = $1")
                        .bind(user).bind(d).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<(), sqlx::Error>(())
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// The stored switches of the given users (rows only where something was changed).
    pub async fn settings_of(&self, users: &[UserId]) -> AppResult<Vec<KindSetting>> {
        let mut out = Vec::new();
        for chunk in users.chunks(500) {
            let rows: Vec<KindSetting> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT user_id, kind, push, email FROM notification_settings WHERE user_id IN ");
                push_id_list!(q, chunk);
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Address, name and online state of the given users.
    pub async fn recipients(&self, users: &[UserId], now: Timestamp) -> AppResult<Vec<Recipient>> {
        let mut out = Vec::new();
        for chunk in users.chunks(500) {
            let rows: Vec<Recipient> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT u.id AS user_id, u.email, u.email_verified, u.display_name,
                            (pr.user_id IS NULL OR pr.status = 'offline' OR pr.online_until <= ");
                q.push_bind(now).push(
                    ") AS offline FROM users u LEFT JOIN presence pr ON pr.user_id = u.id WHERE u.id IN ");
                push_id_list!(q, chunk);
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }
}
