//! Calls planned ahead: created, moved, renamed and cancelled by their creator (or a group
//! owner/admin), announced to the members, and reminded at the start time by the sweeper.

use super::CallService;
use crate::AuthContext;
use sc_core::{
    AppError, AppResult,
    ids::{ConversationId, ScheduledCallId, UserId},
    time::Timestamp,
};
use sc_db::scheduled_calls::ScheduledRow;
use serde::Serialize;

use std::time::Duration;
use utoipa::ToSchema;

/// How far ahead a call may be planned.
const MAX_AHEAD: Duration = Duration::from_secs(366 * 86_400);
const MAX_TITLE_CHARS: usize = 200;
const REMIND_BATCH: i64 = 100;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduledCallView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ScheduledCallId,
    #[schema(value_type = uuid::Uuid)]
    pub conversation_id: ConversationId,
    #[schema(value_type = uuid::Uuid)]
    pub created_by: UserId,
    /// "audio" or "video"
    pub kind: String,
    pub title: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Set once the members were reminded (at the start time).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reminded_at: Option<Timestamp>,
    pub cancelled: bool,
}

impl From<ScheduledRow> for ScheduledCallView {
    fn from(r: ScheduledRow) -> Self {
        Self {
            id: r.id,
            conversation_id: r.conversation_id,
            created_by: r.created_by,
            kind: r.kind,
            title: r.title,
            starts_at: r.starts_at,
            created_at: r.created_at,
            reminded_at: r.reminded_at,
            cancelled: r.cancelled_at.is_some(),
        }
    }
}

pub struct NewScheduledCall {
    pub conversation_id: ConversationId,
    pub kind: String,
    pub title: Option<String>,
    pub starts_at: Timestamp,
}

/// A change; `title: Some(None)` removes the title.
pub struct ScheduledCallChange {
    pub title: Option<Option<String>>,
    pub starts_at: Option<Timestamp>,
}

fn check_title(t: Option<&str>) -> AppResult<Option<String>> {
    let Some(t) = t.map(str::trim) else {
        return Ok(None);
    };
    if t.is_empty() || t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(AppError::validation(
            "title",
            format!("1 to {MAX_TITLE_CHARS} characters, no control characters"),
        ));
    }
    Ok(Some(t.to_string()))
}

fn check_start(at: Timestamp, now: Timestamp) -> AppResult<()> {
    if at <= now || at > now.plus(MAX_AHEAD) {
        return Err(AppError::validation(
            "starts_at",
            "starts_at is in the future, within a year",
        ));
    }
    Ok(())
}

fn no_scheduled() -> AppError {
    AppError::NotFound("scheduled call".into())
}

impl CallService {
    async fn announce_scheduled(&self, view: &ScheduledCallView) {
        match self.d.db.chat().member_ids(view.conversation_id).await {
            Ok(members) => self.d.emit(members, "call.scheduled", view).await,
            Err(e) => tracing::warn!(error = %e, "could not announce a scheduled call"),
        }
    }

    /// A scheduled call the caller may see (a member), and whether they may change it.
    async fn scheduled_for(
        &self,
        ctx: &AuthContext,
        id: ScheduledCallId,
    ) -> AppResult<(ScheduledRow, bool)> {
        let row = self
            .d
            .db
            .scheduled_calls()
            .get(id)
            .await?
            .ok_or_else(no_scheduled)?;
        let (kind, role) = self
            .d
            .db
            .chat()
            .kind_and_role(row.conversation_id, ctx.user_id)
            .await?
            .ok_or_else(no_scheduled)?;
        let may_change =
            row.created_by == ctx.user_id || super::Membership { kind, role }.moderates();
        Ok((row, may_change))
    }

    pub async fn schedule(
        &self,
        ctx: &AuthContext,
        req: NewScheduledCall,
    ) -> AppResult<ScheduledCallView> {
        if !matches!(req.kind.as_str(), "audio" | "video") {
            return Err(AppError::validation("kind", "audio or video"));
        }
        let title = check_title(req.title.as_deref())?;
        let now = Timestamp::now();
        check_start(req.starts_at, now)?;
        if self
            .d
            .db
            .chat()
            .role_of(req.conversation_id, ctx.user_id)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("conversation".into()));
        }
        let row = ScheduledRow {
            id: ScheduledCallId::new(),
            conversation_id: req.conversation_id,
            created_by: ctx.user_id,
            kind: req.kind,
            title,
            starts_at: req.starts_at,
            created_at: now,
            reminded_at: None,
            cancelled_at: None,
        };
        self.d.db.scheduled_calls().create(&row).await?;
        let view = ScheduledCallView::from(row);
        self.announce_scheduled(&view).await;
        Ok(view)
    }

    /// Upcoming (and past, not cancelled) scheduled calls of the caller's conversations, or of
    /// one, by start time.
    pub async fn scheduled(
        &self,
        ctx: &AuthContext,
        conversation: Option<ConversationId>,
        after: Option<(Timestamp, ScheduledCallId)>,
        limit: i64,
    ) -> AppResult<Vec<ScheduledCallView>> {
        if let Some(c) = conversation
            && self.d.db.chat().role_of(c, ctx.user_id).await?.is_none()
        {
            return Err(AppError::NotFound("conversation".into()));
        }
        let rows = self
            .d
            .db
            .scheduled_calls()
            .list(ctx.user_id, conversation, after, limit)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn get_scheduled(
        &self,
        ctx: &AuthContext,
        id: ScheduledCallId,
    ) -> AppResult<ScheduledCallView> {
        Ok(self.scheduled_for(ctx, id).await?.0.into())
    }

    pub async fn update_scheduled(
        &self,
        ctx: &AuthContext,
        id: ScheduledCallId,
        change: ScheduledCallChange,
    ) -> AppResult<ScheduledCallView> {
        let title = match &change.title {
            Some(t) => Some(check_title(t.as_deref())?),
            None => None,
        };
        if let Some(at) = change.starts_at {
            check_start(at, Timestamp::now())?;
        }
        let (_, may_change) = self.scheduled_for(ctx, id).await?;
        if !may_change {
            return Err(AppError::Forbidden(
                "only its creator or a group owner/admin changes a scheduled call".into(),
            ));
        }
        if !self
            .d
            .db
            .scheduled_calls()
            .update(id, title.as_ref().map(|t| t.as_deref()), change.starts_at)
            .await?
        {
            return Err(AppError::conflict("the scheduled call was cancelled"));
        }
        let view = self.get_scheduled(ctx, id).await?;
        self.announce_scheduled(&view).await;
        Ok(view)
    }

    pub async fn cancel_scheduled(
        &self,
        ctx: &AuthContext,
        id: ScheduledCallId,
    ) -> AppResult<ScheduledCallView> {
        let (_, may_change) = self.scheduled_for(ctx, id).await?;
        if !may_change {
            return Err(AppError::Forbidden(
                "only its creator or a group owner/admin cancels a scheduled call".into(),
            ));
        }
        if !self
            .d
            .db
            .scheduled_calls()
            .cancel(id, Timestamp::now())
            .await?
        {
            return Err(AppError::conflict(
                "the scheduled call was cancelled already",
            ));
        }
        let view = self.get_scheduled(ctx, id).await?;
        self.announce_scheduled(&view).await;
        Ok(view)
    }

    /// The sweeper's reminder pass: each due scheduled call is reminded once, by one instance,
    /// with a `call.scheduled` notification per member and its realtime event.
    pub(super) async fn remind_due(&self) -> AppResult<()> {
        let repo = self.d.db.scheduled_calls();
        let now = Timestamp::now();
        for id in repo.due(now, REMIND_BATCH).await? {
            // The records are written with the reminder; the dispatcher sends their events.
            if repo.remind(id, now).await?.is_some() {
                self.d.notify_wake.notify_one();
            }
        }
        Ok(())
    }
}
