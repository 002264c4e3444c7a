//! Notifications that reach people (API.md §8).
//!
//! Every notification is a durable record, exactly one per (recipient, kind, source): the
//! message worker (`jobs`) writes `message` and `mention` records from the job committed with
//! each send; calls, shares and security events write theirs directly. A dispatcher then takes
//! each record once and, in one transaction, queues what it causes — pushes to the recipient's
//! devices (`push`) and immediate mails — before sending its realtime event; digests (`digest`)
//! mail unread messages later. Workers on any number of instances share the work through leases.

pub mod digest;
mod dispatch;
mod jobs;
mod mails;
pub mod prefs;
pub mod push;

use crate::{AuthContext, Deps};
use sc_core::{
    AppError, AppResult,
    ids::{NotificationId, UserId},
    time::Timestamp,
};
use sc_db::notifications::{NewNotification, NotificationRow};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// Push sender loops per instance (they share `push_concurrency`).
const PUSH_SENDERS: usize = 2;

/// The kinds whose push and email a user may switch (API.md §12); `security` is always on.
pub const SETTABLE_KINDS: [&str; 5] = [
    "message",
    "mention",
    "call.missed",
    "file.shared",
    "call.scheduled",
];

/// Security events that notify (and mail) the account's owner, whatever their preferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEvent {
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    AccountLocked { until: Timestamp },
    NewDeviceSignIn,
}

impl SecurityEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEvent::PasswordChanged => "password.changed",
            SecurityEvent::TwoFactorEnabled => "2fa.enabled",
            SecurityEvent::TwoFactorDisabled => "2fa.disabled",
            SecurityEvent::AccountLocked { .. } => "account.locked",
            SecurityEvent::NewDeviceSignIn => "session.new_device",
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotificationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: NotificationId,
    /// `message`, `mention`, `call.missed`, `file.shared`, `call.scheduled` or `security`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: Value,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<NotificationRow> for NotificationView {
    fn from(n: NotificationRow) -> Self {
        Self {
            id: n.id,
            data: serde_json::from_str(&n.data).unwrap_or(Value::Null),
            kind: n.kind,
            read_at: n.read_at,
            created_at: n.created_at,
        }
    }
}

#[derive(Clone)]
pub struct NotifyService {
    d: Arc<Deps>,
    /// False while the last push attempt failed for a reason of the push service's (a 5xx,
    /// 429, a timeout): `/ready` reports push as degraded.
    push_healthy: Arc<std::sync::atomic::AtomicBool>,
}

impl NotifyService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self {
            d,
            push_healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Push health for `/ready`.
    pub fn push_state(&self) -> sc_infra::DepState {
        if self.push_healthy.load(std::sync::atomic::Ordering::Relaxed) {
            sc_infra::DepState::Ok
        } else {
            sc_infra::DepState::Degraded
        }
    }

    /// Starts the workers: message jobs, dispatch, push delivery and digests. Each loops while
    /// it finds work, then sleeps until woken or its interval passes.
    pub fn spawn_workers(&self, stop: CancellationToken) {
        let tick = Duration::from_millis(250);
        let digest_every = Duration::from_secs(self.d.cfg.email_digest_interval_seconds);
        let s = self.clone();
        let wake = Some(self.d.jobs_wake.clone());
        spawn_loop(tick, wake, stop.clone(), move || {
            let s = s.clone();
            async move { s.run_jobs_once().await }
        });
        let s = self.clone();
        let wake = Some(self.d.notify_wake.clone());
        spawn_loop(tick, wake, stop.clone(), move || {
            let s = s.clone();
            async move { s.dispatch_once().await }
        });
        // Two senders, each with half the concurrency: while one waits for the slowest push of
        // its batch, the other sends (a batch is claimed and recorded as a whole).
        for _ in 0..PUSH_SENDERS {
            let s = self.clone();
            let wake = Some(self.d.push_wake.clone());
            spawn_loop(tick, wake, stop.clone(), move || {
                let s = s.clone();
                async move { s.push_once().await }
            });
        }
        let s = self.clone();
        spawn_loop(digest_every, None, stop, move || {
            let s = s.clone();
            async move { s.digest_once().await }
        });
    }

    /// The user's notifications, newest first, below `before`; unread only when asked.
    pub async fn list(
        &self,
        user: UserId,
        before: Option<NotificationId>,
        unread_only: bool,
        limit: i64,
    ) -> AppResult<Vec<NotificationView>> {
        let rows = self
            .d
            .db
            .notifications()
            .list(user, before, unread_only, limit)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Marks one of the caller's notifications read (someone else's → 404).
    pub async fn mark_read(
        &self,
        ctx: &AuthContext,
        id: NotificationId,
    ) -> AppResult<NotificationView> {
        self.d
            .db
            .notifications()
            .mark_read(ctx.user_id, id, Timestamp::now())
            .await?
            .map(Into::into)
            .ok_or_else(|| AppError::NotFound("notification not found".into()))
    }

    pub async fn mark_all_read(&self, ctx: &AuthContext) -> AppResult<u64> {
        self.d
            .db
            .notifications()
            .mark_all_read(ctx.user_id, Timestamp::now())
            .await
    }
}

/// Records a notification outside the job queue, then wakes the dispatcher. Failing to notify
/// never undoes what caused it: errors are logged.
pub async fn record(d: &Deps, user: UserId, kind: &str, source: String, data: &Value) {
    let text = data.to_string();
    let row = NewNotification {
        id: NotificationId::new(),
        user_id: user,
        kind,
        source,
        data: &text,
        now: Timestamp::now(),
    };
    match d.db.notifications().record(&[row]).await {
        Ok(()) => d.notify_wake.notify_one(),
        Err(e) => tracing::warn!(kind, error = %e, "could not record a notification"),
    }
}

/// A security notification (and mail) for the account's owner.
pub async fn security(d: &Deps, user: UserId, event: SecurityEvent) {
    // Each occurrence is its own source: two password changes are two notices.
    let source = format!("{}:{}", event.as_str(), NotificationId::new());
    let mut data = serde_json::json!({"event": event.as_str()});
    if let SecurityEvent::AccountLocked { until } = event {
        data["until"] = serde_json::json!(until);
    }
    record(d, user, "security", source, &data).await;
}

/// Runs `work` until it reports nothing done, then waits for `wake`, `idle` or `stop`.
fn spawn_loop<F, Fut>(
    idle: Duration,
    wake: Option<Arc<tokio::sync::Notify>>,
    stop: CancellationToken,
    work: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        loop {
            if work().await {
                if stop.is_cancelled() {
                    break;
                }
                continue;
            }
            let woken = async {
                match &wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = woken => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
    });
}
