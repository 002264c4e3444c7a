//! Digest mails: a member with unread `message`/`mention` records older than
//! `email_digest_delay` who has not been online since gets one mail for them; each record is in
//! at most one digest, whichever instance runs the pass.

use super::{NotifyService, mails};
use sc_core::time::Timestamp;
use std::time::Duration;

/// Members served per pass; a full pass runs again at once.
const RECIPIENTS_PER_PASS: i64 = 100;
/// Records older than this are not mailed any more (a digest about last week helps nobody).
const LOOKBACK: Duration = Duration::from_secs(24 * 3600);

impl NotifyService {
    /// One digest pass; true when it served a full page of members (more may be due).
    pub(super) async fn digest_once(&self) -> bool {
        let now = Timestamp::now();
        let delay = Duration::from_secs(self.d.cfg.email_digest_delay_seconds);
        let cutoff = now.minus(delay);
        let since = now.minus(LOOKBACK.max(delay * 4));
        let repo = self.d.db.notifications();
        let due = match repo
            .digest_recipients(since, cutoff, RECIPIENTS_PER_PASS)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "digest pass failed; will retry");
                return false;
            }
        };
        let mut mailed = 0;
        for who in &due {
            let cfg = &self.d.cfg;
            let compose = |items: &[_]| Some(mails::digest(cfg, who, items, now));
            match repo
                .take_digest(who.user_id, since, cutoff, now, compose)
                .await
            {
                Ok(n) if n > 0 => mailed += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not take a digest; will retry"),
            }
        }
        if mailed > 0 {
            tracing::info!(mails = mailed, "digest mails queued");
            self.d.mail.wake();
        }
        due.len() as i64 == RECIPIENTS_PER_PASS
    }
}
