//! The mail service: requests enqueue mails in the durable queue table and return at once; a
//! bounded pool of workers sends them with retry and exponential backoff. A mail failure never
//! fails the request that caused it.

use crate::metrics::Metrics;
use sc_core::{ids::MailId, time::Timestamp};
use sc_db::{Db, mail::NewMail};
use sc_infra::mailer::{Mailer, OutgoingMail};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct MailService {
    db: Db,
    mailer: Arc<Mailer>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    max_attempts: u32,
    /// False while the last delivery attempt failed: `/ready` reports mail as degraded.
    healthy: Arc<std::sync::atomic::AtomicBool>,
}

impl MailService {
    pub fn new(db: Db, mailer: Mailer, metrics: Arc<Metrics>, max_attempts: u32) -> Self {
        Self {
            db,
            mailer: Arc::new(mailer),
            wake: Arc::new(Notify::new()),
            metrics,
            max_attempts,
            healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Whether the last delivery attempt succeeded (true before the first).
    pub fn healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn transport_kind(&self) -> &'static str {
        self.mailer.kind()
    }

    /// Wakes a sender after mails were queued by other means (a notification's dispatch).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queues a mail. Errors are logged, not returned: mail is never on the request's critical path.
    pub async fn enqueue(&self, to: &str, subject: &str, body: &str) {
        let id = MailId::new();
        let mail = NewMail {
            id,
            recipient: to.to_string(),
            subject: subject.to_string(),
            body: body.to_string(),
            html_body: None,
            list_unsubscribe: None,
            now: Timestamp::now(),
        };
        match self.db.mail_queue().enqueue(&mail).await {
            Ok(()) => self.wake.notify_one(),
            Err(e) => tracing::error!(mail_id = %id, error = %e, "could not queue mail"),
        }
    }

    /// Starts `workers` sender loops; they stop when `shutdown` fires.
    pub fn spawn_workers(
        &self,
        workers: usize,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..workers)
            .map(|_| {
                let svc = self.clone();
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    loop {
                        let worked = svc.run_once().await;
                        if worked {
                            continue;
                        }
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = svc.wake.notified() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                })
            })
            .collect()
    }

    /// Sends what is due; true when something was claimed.
    pub async fn run_once(&self) -> bool {
        let now = Timestamp::now();
        let claimed = match self
            .db
            .mail_queue()
            .claim_due(now, now.plus(Duration::from_secs(120)), 5)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "mail queue unavailable");
                return false;
            }
        };
        let any = !claimed.is_empty();
        for mail in claimed {
            let out = OutgoingMail {
                to: &mail.recipient,
                subject: &mail.subject,
                body: &mail.body,
                html: mail.html_body.as_deref(),
                list_unsubscribe: mail.list_unsubscribe.as_deref(),
            };
            let res = tokio::time::timeout(Duration::from_secs(60), self.mailer.send(&out)).await;
            let now = Timestamp::now();
            let queue = self.db.mail_queue();
            match res {
                Ok(Ok(())) => {
                    self.healthy
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.metrics.mail_sent.inc();
                    tracing::info!(mail_id = %mail.id, transport = self.mailer.kind(), "mail sent");
                    if let Err(e) = queue.mark_sent(mail.id, now).await {
                        tracing::error!(mail_id = %mail.id, error = %e, "could not mark mail sent");
                    }
                }
                other => {
                    self.healthy
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    self.metrics.mail_failed.inc();
                    let error = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    let attempts = mail.attempts.max(1) as u32;
                    let give_up = attempts >= self.max_attempts;
                    let backoff = Duration::from_secs((2u64 << attempts.min(11)).min(3600));
                    tracing::warn!(mail_id = %mail.id, attempts, give_up, error = %error, "mail delivery failed");
                    if let Err(e) = queue
                        .mark_failed(mail.id, &error, now.plus(backoff), give_up, now)
                        .await
                    {
                        tracing::error!(mail_id = %mail.id, error = %e, "could not record mail failure");
                    }
                }
            }
        }
        any
    }
}
