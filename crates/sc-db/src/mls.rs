//! The MLS Delivery Service's storage: devices, key packages, commits by epoch, group info and
//! welcomes. Every MLS object is opaque bytes here.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, DeviceId, KeyPackageId, SessionId, UserId, WelcomeId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub session_id: SessionId,
    pub user_id: UserId,
    pub signature_key: Vec<u8>,
    pub credential: Vec<u8>,
    pub created_at: Timestamp,
}

/// How registering a session's device went.
#[derive(Debug)]
pub enum DeviceRegistered {
    Created(DeviceRow),
    /// The session already has this device (same signature key).
    Existing(DeviceRow),
    /// The session has a device with another key.
    Conflict,
}

/// One claimed key package.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub package: Vec<u8>,
    pub last_resort: bool,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommitRow {
    pub epoch: i64,
    pub commit_data: Vec<u8>,
    pub sender_device_id: DeviceId,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WelcomeRow {
    pub id: WelcomeId,
    pub conversation_id: ConversationId,
    pub epoch: i64,
    pub welcome: Vec<u8>,
    pub created_at: Timestamp,
}

/// A commit to append at `epoch` (the conversation's current one).
pub struct NewCommit<'a> {
    pub conversation: ConversationId,
    pub epoch: i64,
    pub sender: DeviceId,
    pub commit: &'a [u8],
    pub group_info: Option<&'a [u8]>,
    pub welcome: Option<(&'a [u8], &'a [DeviceId])>,
    pub now: Timestamp,
}

/// How appending a commit went.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitAppended {
    /// Accepted; the epoch it created and the ids of the welcomes written.
    Accepted {
        epoch: i64,
        welcomes: Vec<(WelcomeId, DeviceId)>,
    },
    /// Another commit took this epoch first (or it never was the current one).
    Stale { current_epoch: i64 },
}

/// The device `d`'s session is neither ended nor expired at parameter `$n` (now).
macro_rules! live_session {
    ($n:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM sessions s WHERE s.id = d.session_id AND s.revoked_at IS NULL
                 AND s.idle_expires_at > $",
            $n,
            " AND s.absolute_expires_at > $",
            $n,
            ")"
        )
    };
}

/// What storing key packages did.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyPackagesAdded {
    /// Stored: the regular packages the device now holds.
    Held(i64),
    /// Refused: the device would hold more than the limit.
    OverLimit,
    /// Refused: the device is gone.
    DeviceGone,
}

pub struct Mls<'a>(&'a Db);

impl Db {
    pub fn mls(&self) -> Mls<'_> {
        Mls(self)
    }
}

impl Mls<'_> {
    /// Registers the session's device, once: the same key again finds it, another key conflicts.
    pub async fn register_device(
        &self,
        session: SessionId,
        user: UserId,
        signature_key: &[u8],
        credential: &[u8],
        now: Timestamp,
    ) -> AppResult<DeviceRegistered> {
        let inserted = on_pool!(self.0, p => sqlx::query(
            "INSERT INTO devices (id, session_id, user_id, signature_key, credential, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING")
            .bind(DeviceId::new()).bind(session).bind(user).bind(signature_key).bind(credential).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        let row = self
            .device_of_session(session)
            .await?
            .ok_or_else(|| sc_core::AppError::internal("device vanished after insert"))?;
        Ok(if inserted == 1 {
            DeviceRegistered::Created(row)
        } else if row.signature_key == signature_key {
            DeviceRegistered::Existing(row)
        } else {
            DeviceRegistered::Conflict
        })
    }

    pub async fn device_of_session(&self, session: SessionId) -> AppResult<Option<DeviceRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, session_id, user_id, signature_key, credential, created_at FROM devices WHERE session_id = $1")
            .bind(session).fetch_optional(p).await)?)
    }

    /// A user's devices whose sessions are live, by id, after `after` (keyset cursor).
    pub async fn devices_of(
        &self,
        user: UserId,
        after: Option<DeviceId>,
        limit: i64,
        now: Timestamp,
    ) -> AppResult<Vec<DeviceRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(concat!(
            "SELECT d.id, d.session_id, d.user_id, d.signature_key, d.credential, d.created_at
             FROM devices d WHERE d.user_id = $1 AND ($2 IS NULL OR d.id > $2) AND ", live_session!(4), "
             ORDER BY d.id LIMIT $3"))
            .bind(user).bind(after).bind(limit).bind(now).fetch_all(p).await)?)
    }

    /// The devices among `ids` whose sessions are live (for welcome delivery).
    pub async fn devices_by_id(
        &self,
        ids: &[DeviceId],
        now: Timestamp,
    ) -> AppResult<Vec<DeviceRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self.0, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT d.id, d.session_id, d.user_id, d.signature_key, d.credential, d.created_at
                 FROM devices d JOIN sessions s ON s.id = d.session_id
                 WHERE s.revoked_at IS NULL AND s.idle_expires_at > ");
            q.push_bind(now);
            q.push(" AND s.absolute_expires_at > ");
            q.push_bind(now);
            q.push(" AND d.id IN ");
            push_id_list!(q, ids);
            q.build_query_as().fetch_all(p).await
        })?)
    }

    /// Deletes the devices of ended sessions (their key packages and welcomes go by cascade).
    pub async fn remove_for_sessions(&self, sessions: &[SessionId]) -> AppResult<()> {
        for chunk in sessions.chunks(500) {
            on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM devices WHERE session_id IN ");
                push_id_list!(q, chunk);
                q.build().execute(p).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Stores key packages (and replaces the last-resort one) unless the device would then hold
    /// more than `max` regular ones, or is gone (its session ended meanwhile).
    pub async fn add_key_packages(
        &self,
        device: DeviceId,
        packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
        max: i64,
        now: Timestamp,
    ) -> AppResult<KeyPackagesAdded> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                // Taking the device row first serializes concurrent uploads of one device and
                // finds a device deleted meanwhile (whose packages could not be stored).
                let found = sqlx::query("UPDATE devices SET created_at = created_at WHERE id = $1")
                    .bind(device).execute(&mut *tx).await?.rows_affected();
                if found == 0 {
                    tx.rollback().await?;
                    return Ok(KeyPackagesAdded::DeviceGone);
                }
                let (held,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND NOT last_resort")
                    .bind(device).fetch_one(&mut *tx).await?;
                let total = held + packages.len() as i64;
                if total > max {
                    tx.rollback().await?;
                    return Ok(KeyPackagesAdded::OverLimit);
                }
                for package in packages {
                    sqlx::query(
                        "INSERT INTO key_packages (id, device_id, package, last_resort, created_at)
                         VALUES ($1, $2, $3, FALSE, $4)")
                        .bind(KeyPackageId::new()).bind(device).bind(package).bind(now)
                        .execute(&mut *tx).await?;
                }
                if let Some(lr) = last_resort {
                    sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort")
                        .bind(device).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO key_packages (id, device_id, package, last_resort, created_at)
                         VALUES ($1, $2, $3, TRUE, $4)")
                        .bind(KeyPackageId::new()).bind(device).bind(lr).bind(now)
                        .execute(&mut *tx).await?;
                }
                tx.commit().await.map(|()| KeyPackagesAdded::Held(total))
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// `(regular packages held, has a last-resort one)`.
    pub async fn package_count(&self, device: DeviceId) -> AppResult<(i64, bool)> {
        let (regular, last): (i64, i64) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN last_resort THEN 0 ELSE 1 END), 0),
                    COALESCE(SUM(CASE WHEN last_resort THEN 1 ELSE 0 END), 0)
             FROM key_packages WHERE device_id = $1")
            .bind(device).fetch_one(p).await)?;
        Ok((regular, last > 0))
    }

    /// One package for each device of `users`: a regular one, handed out exactly once (deleted
    /// in the same statement that reads it), else the device's reusable last-resort one.
    pub async fn claim(&self, users: &[UserId], now: Timestamp) -> AppResult<Vec<Claimed>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // Three statements whatever the number of users: their live devices (devices of sessions
        // that expired without being ended are left out), one regular package of each taken and
        // deleted in one statement, then the last-resort packages of the devices that had none.
        let devices: Vec<(DeviceId, UserId)> = on_pool!(self.0, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT d.id, d.user_id FROM devices d JOIN sessions s ON s.id = d.session_id
                 WHERE s.revoked_at IS NULL AND s.idle_expires_at > ");
            q.push_bind(now).push(" AND s.absolute_expires_at > ").push_bind(now);
            q.push(" AND d.user_id IN ");
            push_id_list!(q, users);
            q.build_query_as().fetch_all(p).await
        })?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DeviceId> = devices.iter().map(|(d, _)| *d).collect();
        let taken: Vec<(DeviceId, Vec<u8>)> = match self.0 {
            Db::Sqlite(p, _) => {
                let mut q = sqlx::QueryBuilder::new(
                    "DELETE FROM key_packages WHERE id IN (SELECT (SELECT k.id FROM key_packages k
                       WHERE k.device_id = d.id AND NOT k.last_resort ORDER BY k.id LIMIT 1)
                     FROM devices d WHERE d.id IN ",
                );
                push_id_list!(q, &ids);
                q.push(") RETURNING device_id, package");
                q.build_query_as().fetch_all(p).await?
            }
            // SKIP LOCKED: a concurrent claim takes the next package of a device instead of
            // waiting for this one and then finding it gone.
            Db::Postgres(p) => {
                let mut q = sqlx::QueryBuilder::new(
                    "DELETE FROM key_packages WHERE id IN (SELECT k.id FROM devices d CROSS JOIN LATERAL
                       (SELECT id FROM key_packages WHERE device_id = d.id AND NOT last_resort
                        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) k
                     WHERE d.id IN ");
                push_id_list!(q, &ids);
                q.push(") RETURNING device_id, package");
                q.build_query_as().fetch_all(p).await?
            }
        };
        let mut packages: std::collections::HashMap<DeviceId, (Vec<u8>, bool)> =
            taken.into_iter().map(|(d, p)| (d, (p, false))).collect();
        let without: Vec<DeviceId> = ids
            .iter()
            .copied()
            .filter(|d| !packages.contains_key(d))
            .collect();
        if !without.is_empty() {
            let reusable: Vec<(DeviceId, Vec<u8>)> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT device_id, package FROM key_packages WHERE last_resort AND device_id IN ");
                push_id_list!(q, &without);
                q.build_query_as().fetch_all(p).await
            })?;
            packages.extend(reusable.into_iter().map(|(d, p)| (d, (p, true))));
        }
        let mut out: Vec<Claimed> = devices
            .into_iter()
            .filter_map(|(device, user_id)| {
                let (package, last_resort) = packages.remove(&device)?;
                Some(Claimed {
                    user_id,
                    device_id: device,
                    package,
                    last_resort,
                })
            })
            .collect();
        out.sort_by_key(|c| (c.user_id, c.device_id));
        Ok(out)
    }

    /// The conversation's current epoch (0 before the first commit).
    pub async fn epoch(&self, conversation: ConversationId) -> AppResult<i64> {
        let (e,): (i64,) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT mls_epoch FROM conversations WHERE id = $1")
            .bind(conversation).fetch_one(p).await)?;
        Ok(e)
    }

    /// Appends a commit by compare-and-swap on the conversation's epoch: of concurrent commits
    /// at one epoch exactly one moves it on; its group info and welcomes go in the same
    /// transaction.
    pub async fn append_commit(&self, c: &NewCommit<'_>) -> AppResult<CommitAppended> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let moved = sqlx::query(
                    "UPDATE conversations SET mls_epoch = mls_epoch + 1 WHERE id = $1 AND mls_epoch = $2")
                    .bind(c.conversation).bind(c.epoch).execute(&mut *tx).await?.rows_affected();
                if moved != 1 {
                    let (current,): (i64,) = sqlx::query_as(
                        "SELECT mls_epoch FROM conversations WHERE id = $1")
                        .bind(c.conversation).fetch_one(&mut *tx).await?;
                    tx.rollback().await?;
                    return Ok(CommitAppended::Stale { current_epoch: current });
                }
                let epoch = c.epoch + 1;
                sqlx::query(
                    "INSERT INTO mls_commits (conversation_id, epoch, sender_device_id, commit_data, created_at)
                     VALUES ($1, $2, $3, $4, $5)")
                    .bind(c.conversation).bind(epoch).bind(c.sender).bind(c.commit).bind(c.now)
                    .execute(&mut *tx).await?;
                if let Some(info) = c.group_info {
                    sqlx::query(
                        "INSERT INTO mls_group_info (conversation_id, epoch, group_info, updated_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (conversation_id) DO UPDATE
                           SET epoch = excluded.epoch, group_info = excluded.group_info, updated_at = excluded.updated_at")
                        .bind(c.conversation).bind(epoch).bind(info).bind(c.now)
                        .execute(&mut *tx).await?;
                }
                let mut welcomes = Vec::new();
                if let Some((welcome, to)) = c.welcome {
                    for device in to {
                        let id = WelcomeId::new();
                        sqlx::query(
                            "INSERT INTO mls_welcomes (id, device_id, conversation_id, epoch, welcome, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6)")
                            .bind(id).bind(*device).bind(c.conversation).bind(epoch).bind(welcome).bind(c.now)
                            .execute(&mut *tx).await?;
                        welcomes.push((id, *device));
                    }
                }
                tx.commit().await.map(|()| CommitAppended::Accepted { epoch, welcomes })
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Commits that created epochs above `since`, oldest first.
    pub async fn commits_since(
        &self,
        conversation: ConversationId,
        since: i64,
        limit: i64,
    ) -> AppResult<Vec<CommitRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT epoch, commit_data, sender_device_id, created_at FROM mls_commits
             WHERE conversation_id = $1 AND epoch > $2 ORDER BY epoch LIMIT $3")
            .bind(conversation).bind(since).bind(limit).fetch_all(p).await)?)
    }

    /// The latest group info: `(epoch, bytes)`.
    pub async fn group_info(
        &self,
        conversation: ConversationId,
    ) -> AppResult<Option<(i64, Vec<u8>)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT epoch, group_info FROM mls_group_info WHERE conversation_id = $1")
            .bind(conversation).fetch_optional(p).await)?)
    }

    /// A device's pending welcomes, oldest first, after `after`.
    pub async fn welcomes(
        &self,
        device: DeviceId,
        after: Option<WelcomeId>,
        limit: i64,
    ) -> AppResult<Vec<WelcomeRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, conversation_id, epoch, welcome, created_at FROM mls_welcomes
             WHERE device_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3")
            .bind(device).bind(after).bind(limit).fetch_all(p).await)?)
    }

    /// Acknowledges (deletes) one of a device's welcomes; false when it has no such welcome.
    pub async fn ack_welcome(&self, device: DeviceId, id: WelcomeId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query("DELETE FROM mls_welcomes WHERE id = $1 AND device_id = $2")
            .bind(id).bind(device).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyPackagesAdded;
    use sc_core::{ids::DeviceId, time::Timestamp};

    /// A device deleted while its packages are on the way (its session ended) is an outcome,
    /// not a foreign-key error (which the API answered with 500).
    #[tokio::test]
    async fn packages_for_a_device_gone_meanwhile_are_refused() {
        let (db, _dir) = crate::realtime::tests::test_db().await;
        let added = db
            .mls()
            .add_key_packages(
                DeviceId::new(),
                &[vec![1, 2, 3]],
                None,
                500,
                Timestamp::now(),
            )
            .await
            .unwrap();
        assert_eq!(added, KeyPackagesAdded::DeviceGone);
    }
}
