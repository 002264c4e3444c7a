//! Push subscriptions (each tied to the session that made it) and the durable push queue.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{PushDeliveryId, PushSubscriptionId, SessionId, UserId},
    time::Timestamp,
};

#[derive(Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: PushSubscriptionId,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// `webpush`, `fcm` or `apns`.
    pub kind: String,
    /// The Web Push endpoint, or the device token: a capability, never logged.
    pub address: String,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    pub environment: Option<String>,
    pub device_name: Option<String>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for SubscriptionRow {
    // The endpoint and keys let anyone push to the device.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

pub struct NewSubscription<'a> {
    pub id: PushSubscriptionId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub kind: &'a str,
    pub address: &'a str,
    pub p256dh: Option<&'a str>,
    pub auth: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub now: Timestamp,
}

/// A push to queue for one subscription.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: PushDeliveryId,
    pub subscription_id: PushSubscriptionId,
    /// The notification it announces, if any (a ringing call has none).
    pub notification: Option<sc_core::ids::NotificationId>,
    pub payload: String,
    /// Pushes with the same topic to the same subscription collapse while one waits.
    pub topic: Option<String>,
    pub urgency: &'static str,
    pub ttl_seconds: i64,
    pub now: Timestamp,
    /// When it may go out (later than `now` inside a topic's collapse window).
    pub not_before: Timestamp,
}

/// A push given up on, as operators see it (no endpoint, token or payload).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: PushDeliveryId,
    /// `webpush`, `fcm` or `apns`.
    pub channel: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// A claimed push with what sending it needs.
#[derive(Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    #[sqlx(rename = "delivery_id")]
    pub id: PushDeliveryId,
    pub payload: String,
    pub topic: Option<String>,
    pub urgency: String,
    pub ttl_seconds: i64,
    pub attempts: i32,
    #[sqlx(flatten)]
    pub subscription: SubscriptionRow,
}

/// Queues pushes inside a transaction (`$tx` of either pool). A push whose topic already has
/// one waiting for the subscription replaces that one's payload (keeping the higher urgency)
/// instead of adding a second. Rows must be unique per (subscription, topic) within one call.
macro_rules! insert_deliveries {
    ($tx:expr, $rows:expr) => {{
        for chunk in $rows.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO push_deliveries (id, subscription_id, payload, topic, urgency, ttl_seconds,
                                              created_at, next_attempt_at) ",
            );
            q.push_values(chunk, |mut row, d| {
                row.push_bind(d.id)
                    .push_bind(d.subscription_id)
                    .push_bind(&d.payload)
                    .push_bind(&d.topic)
                    .push_bind(d.urgency)
                    .push_bind(d.ttl_seconds)
                    .push_bind(d.now)
                    .push_bind(d.not_before);
            });
            q.push(
                " ON CONFLICT (subscription_id, topic) WHERE state = 'queued' AND topic IS NOT NULL
                  DO UPDATE SET payload = excluded.payload, ttl_seconds = excluded.ttl_seconds,
                      urgency = CASE WHEN push_deliveries.urgency = 'high' THEN 'high' ELSE excluded.urgency END",
            );
            q.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use insert_deliveries;

pub struct Push<'a>(&'a Db);

impl Db {
    pub fn push(&self) -> Push<'_> {
        Push(self)
    }
}

impl Push<'_> {
    /// Registers a subscription, or takes over the one with the same kind and address (the
    /// same device subscribing again, maybe from another session or account): it is then tied
    /// to the calling session. Returns the row and whether the caller already had it.
    pub async fn subscribe(&self, s: &NewSubscription<'_>) -> AppResult<(SubscriptionRow, bool)> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let before: Option<(PushSubscriptionId, UserId)> = sqlx::query_as(
                    "SELECT id, user_id FROM push_subscriptions WHERE kind = $1 AND address = $2")
                    .bind(s.kind).bind(s.address).fetch_optional(&mut *tx).await?;
                let row: SubscriptionRow = match before {
                    Some((id, _)) => sqlx::query_as(
                        "UPDATE push_subscriptions SET user_id = $2, session_id = $3, p256dh = $4, auth = $5,
                                environment = $6, device_name = COALESCE($7, device_name)
                         WHERE id = $1
                         RETURNING id, user_id, session_id, kind, address, p256dh, auth, environment, device_name, created_at")
                        .bind(id).bind(s.user_id).bind(s.session_id).bind(s.p256dh).bind(s.auth)
                        .bind(s.environment).bind(s.device_name).fetch_one(&mut *tx).await?,
                    None => sqlx::query_as(
                        "INSERT INTO push_subscriptions (id, user_id, session_id, kind, address, p256dh, auth,
                                                         environment, device_name, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         RETURNING id, user_id, session_id, kind, address, p256dh, auth, environment, device_name, created_at")
                        .bind(s.id).bind(s.user_id).bind(s.session_id).bind(s.kind).bind(s.address)
                        .bind(s.p256dh).bind(s.auth).bind(s.environment).bind(s.device_name).bind(s.now)
                        .fetch_one(&mut *tx).await?,
                };
                tx.commit().await?;
                Ok::<_, sqlx::Error>((row, before.is_some_and(|(_, u)| u == s.user_id)))
            })
        };
        match crate::retry_tx!(run()) {
            // Two first subscriptions of one address at once: the loser finds the winner's row.
            Err(e) if crate::is_unique_violation(&e) => Ok(crate::retry_tx!(run())?),
            other => Ok(other?),
        }
    }

    /// The user's subscriptions (every session), oldest first, after `after`.
    pub async fn list(
        &self,
        user: UserId,
        after: Option<PushSubscriptionId>,
        limit: i64,
    ) -> AppResult<Vec<SubscriptionRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, user_id, session_id, kind, address, p256dh, auth, environment, device_name, created_at
             FROM push_subscriptions WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3")
            .bind(user).bind(after).bind(limit).fetch_all(p).await)?)
    }

    /// Deletes one of the user's subscriptions; false when it is not theirs.
    pub async fn delete(&self, user: UserId, id: PushSubscriptionId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id).bind(user).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Deletes a subscription the push service no longer knows (404/410).
    pub async fn remove(&self, id: PushSubscriptionId) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Deletes every subscription of a user (a ban).
    pub async fn remove_for_user(&self, user: UserId) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1")
            .bind(user).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Deletes the subscriptions of ended sessions.
    pub async fn remove_for_sessions(&self, sessions: &[SessionId]) -> AppResult<()> {
        for chunk in sessions.chunks(500) {
            on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM push_subscriptions WHERE session_id IN ");
                push_id_list!(q, chunk);
                q.build().execute(p).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// The subscriptions of the given users whose sessions are still live.
    pub async fn live_subscriptions_of(
        &self,
        users: &[UserId],
        now: Timestamp,
    ) -> AppResult<Vec<SubscriptionRow>> {
        let mut out = Vec::new();
        for chunk in users.chunks(500) {
            let rows: Vec<SubscriptionRow> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT s.id, s.user_id, s.session_id, s.kind, s.address, s.p256dh, s.auth, s.environment,
                            s.device_name, s.created_at
                     FROM push_subscriptions s JOIN sessions x ON x.id = s.session_id
                     WHERE x.revoked_at IS NULL AND x.idle_expires_at > ");
                q.push_bind(now).push(" AND x.absolute_expires_at > ").push_bind(now);
                q.push(" AND s.user_id IN ");
                push_id_list!(q, chunk);
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// When each (subscription, topic) last went out, for the given subscriptions.
    pub async fn topics_last_sent(
        &self,
        subscriptions: &[PushSubscriptionId],
    ) -> AppResult<Vec<(PushSubscriptionId, String, Timestamp)>> {
        let mut out = Vec::new();
        for chunk in subscriptions.chunks(500) {
            let rows: Vec<(PushSubscriptionId, String, Timestamp)> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT subscription_id, topic, last_sent_at FROM push_topics WHERE subscription_id IN ");
                push_id_list!(q, chunk);
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Queues pushes outside a notification's dispatch (a ringing call).
    pub async fn enqueue(&self, deliveries: &[NewDelivery]) -> AppResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                insert_deliveries!(tx, deliveries);
                tx.commit().await?;
                Ok::<(), sqlx::Error>(())
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Claims up to `limit` due pushes with a lease (a conditional UPDATE: a push another
    /// worker claimed first no longer matches), with their subscriptions.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<ClaimedDelivery>> {
        let ids: Vec<(PushDeliveryId,)> = on_pool!(self.0, p => sqlx::query_as(
            "UPDATE push_deliveries SET state = 'sending', claimed_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM push_deliveries
                          WHERE state <> 'dead' AND next_attempt_at <= $1
                            AND (state = 'queued' OR claimed_until < $1)
                          ORDER BY next_attempt_at LIMIT $2)
               AND state <> 'dead' AND (state = 'queued' OR claimed_until < $1)
             RETURNING id")
            .bind(now).bind(limit).bind(lease_until).fetch_all(p).await)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<ClaimedDelivery> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT d.id AS delivery_id, d.payload, d.topic, d.urgency, d.ttl_seconds, d.attempts,
                            s.id, s.user_id, s.session_id, s.kind, s.address, s.p256dh, s.auth,
                            s.environment, s.device_name, s.created_at
                     FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id
                     WHERE d.id IN (");
                let mut list = q.separated(", ");
                for (id,) in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Sent: the pushes leave the queue and their topics' windows start, for a whole batch in
    /// one transaction (a write per push would queue every sender behind SQLite's one writer).
    pub async fn delivered(&self, sent: &[&ClaimedDelivery], now: Timestamp) -> AppResult<()> {
        if sent.is_empty() {
            return Ok(());
        }
        // One row per (subscription, topic): PostgreSQL refuses an upsert touching a row twice.
        let mut topics: Vec<(PushSubscriptionId, &str)> = sent
            .iter()
            .filter_map(|d| Some((d.subscription.id, d.topic.as_deref()?)))
            .collect();
        topics.sort_unstable();
        topics.dedup();
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                for chunk in sent.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new("DELETE FROM push_deliveries WHERE id IN (");
                    let mut ids = q.separated(", ");
                    for d in chunk {
                        ids.push_bind(d.id);
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in topics.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO push_topics (subscription_id, topic, last_sent_at) ");
                    q.push_values(chunk, |mut row, (sub, topic)| {
                        row.push_bind(*sub).push_bind(*topic).push_bind(now);
                    });
                    q.push(" ON CONFLICT (subscription_id, topic) DO UPDATE SET last_sent_at = excluded.last_sent_at");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<(), sqlx::Error>(())
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// A failed attempt to retry at `at`. When a newer push of the same topic waits already,
    /// this one is superseded and dropped.
    pub async fn retry(&self, d: &ClaimedDelivery, at: Timestamp, error: &str) -> AppResult<()> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE push_deliveries SET state = 'queued', claimed_until = NULL, next_attempt_at = $2, last_error = $3
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM push_deliveries q
                 WHERE q.subscription_id = $4 AND q.topic = $5 AND q.state = 'queued')")
            .bind(d.id).bind(at).bind(error).bind(d.subscription.id).bind(&d.topic)
            .execute(p).await.map(|r| r.rows_affected()))?;
        if n == 0 {
            on_pool!(self.0, p => sqlx::query("DELETE FROM push_deliveries WHERE id = $1")
                .bind(d.id).execute(p).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Gives up on a push: it stays as a dead letter for operators.
    pub async fn dead(&self, id: PushDeliveryId, error: &str) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE push_deliveries SET state = 'dead', claimed_until = NULL, last_error = $2 WHERE id = $1")
            .bind(id).bind(error).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Pushes queued (or being sent) and dead letters.
    pub async fn queue_depth(&self) -> AppResult<(i64, i64)> {
        let row: (i64, i64) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN state <> 'dead' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0)
             FROM push_deliveries").fetch_one(p).await)?;
        Ok(row)
    }

    /// The newest dead letters, for operators.
    pub async fn dead_letters(&self, limit: i64) -> AppResult<Vec<DeadLetter>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT d.id, s.kind AS channel, d.attempts, d.last_error, d.created_at
             FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id
             WHERE d.state = 'dead' ORDER BY d.created_at DESC LIMIT $1")
            .bind(limit).fetch_all(p).await)?)
    }

    /// Puts every dead letter back in the queue with fresh attempts (after fixing what made
    /// them fail); one superseded by a newer push of its topic stays dead. How many.
    pub async fn requeue_dead(&self, now: Timestamp) -> AppResult<u64> {
        Ok(on_pool!(self.0, p => sqlx::query(
            "UPDATE push_deliveries SET state = 'queued', attempts = 0, next_attempt_at = $1, claimed_until = NULL
             WHERE state = 'dead' AND (topic IS NULL OR NOT EXISTS (SELECT 1 FROM push_deliveries q
                 WHERE q.subscription_id = push_deliveries.subscription_id AND q.topic = push_deliveries.topic
                   AND q.state = 'queued'))")
            .bind(now).execute(p).await.map(|r| r.rows_affected()))?)
    }
}
