//! Polls: a message of kind `poll` whose metadata holds the question's options (fixed at
//! creation); votes, withdrawal, closing by hand or at `closes_at` by a job every instance runs.
//! The Message's `metadata.poll` is always rendered from the vote rows (API.md "Polls").

use super::{ChatService, MessageView, not_found};
use crate::AuthContext;
use sc_core::{
    AppError, AppResult,
    ids::{MessageId, UserId},
    time::Timestamp,
};
use sc_db::{
    chat::MessageRow,
    polls::{Tally, VoteOutcome},
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

const MIN_OPTIONS: usize = 2;
const MAX_OPTIONS: usize = 10;
const MAX_OPTION_CHARS: usize = 200;
/// Due polls closed per pass of the closing job.
const CLOSE_BATCH: i64 = 100;

/// A poll as it is created and stored: the options' texts (their ids are their positions).
#[derive(Debug, PartialEq)]
pub(crate) struct PollDefinition {
    pub options: Vec<String>,
    pub multiple: bool,
    pub anonymous: bool,
    pub closes_at: Option<Timestamp>,
}

fn bad(field: &str, reason: impl Into<String>) -> AppError {
    AppError::validation(format!("metadata.poll.{field}"), reason)
}

impl PollDefinition {
    /// Parses `metadata.poll` of a new poll message: 2–10 distinct options of 1–200
    /// characters, optional `multiple`, `anonymous` and a future `closes_at`.
    pub(crate) fn parse(v: &Value, now: Timestamp) -> AppResult<Self> {
        let Some(obj) = v.as_object() else {
            return Err(AppError::validation(
                "metadata.poll",
                "poll must be an object",
            ));
        };
        if let Some(k) = obj.keys().find(|k| {
            !matches!(
                k.as_str(),
                "options" | "multiple" | "anonymous" | "closes_at"
            )
        }) {
            return Err(bad(k, "unknown poll field"));
        }
        let raw = obj
            .get("options")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("options", "options is a list of strings"))?;
        if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&raw.len()) {
            return Err(bad(
                "options",
                format!("a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options"),
            ));
        }
        let mut options: Vec<String> = Vec::with_capacity(raw.len());
        for o in raw {
            let text = o
                .as_str()
                .map(str::trim)
                .ok_or_else(|| bad("options", "options are strings"))?;
            let n = text.chars().count();
            if n == 0 || n > MAX_OPTION_CHARS || text.chars().any(char::is_control) {
                return Err(bad(
                    "options",
                    format!(
                        "an option has 1 to {MAX_OPTION_CHARS} characters, no control characters"
                    ),
                ));
            }
            if options.iter().any(|x| x == text) {
                return Err(bad("options", "options are distinct"));
            }
            options.push(text.to_string());
        }
        let flag = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(k, "true or false")),
        };
        let closes_at = match obj.get("closes_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let at = Timestamp::parse_rfc3339(s)
                    .ok_or_else(|| bad("closes_at", "an RFC 3339 date-time"))?;
                if at <= now {
                    return Err(bad("closes_at", "closes_at must be in the future"));
                }
                Some(at)
            }
            Some(_) => return Err(bad("closes_at", "an RFC 3339 date-time")),
        };
        Ok(Self {
            options,
            multiple: flag("multiple")?,
            anonymous: flag("anonymous")?,
            closes_at,
        })
    }

    /// What the message's metadata keeps.
    pub(crate) fn stored(&self) -> Value {
        json!({"options": self.options, "multiple": self.multiple, "anonymous": self.anonymous,
               "closes_at": self.closes_at})
    }
}

/// `metadata.poll` as clients read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollView {
    pub options: Vec<PollOptionView>,
    pub multiple: bool,
    pub anonymous: bool,
    pub closed: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<Timestamp>,
    /// Members who voted.
    pub voters: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollOptionView {
    pub id: i64,
    pub text: String,
    pub votes: i64,
}

/// `GET /v1/messages/{id}/votes`: who chose each option.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollVotersView {
    pub options: Vec<PollOptionVoters>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollOptionVoters {
    pub id: i64,
    #[schema(value_type = Vec<String>, format = Uuid)]
    pub voters: Vec<UserId>,
}

/// Whether a poll message is closed: by hand, or at its closing time (even before the job has
/// recorded it).
pub(crate) fn is_closed(m: &MessageRow, now: Timestamp) -> bool {
    m.poll_closed_at.is_some() || m.poll_closes_at.is_some_and(|at| at <= now)
}

/// Renders the stored poll of a message with `tally` (zero votes without one). None for a
/// message that holds no poll.
pub(crate) fn render(
    stored: &Value,
    closed: bool,
    closes_at: Option<Timestamp>,
    tally: &Tally,
) -> Option<Value> {
    let options = stored.get("options")?.as_array()?;
    let view = PollView {
        options: options
            .iter()
            .enumerate()
            .map(|(i, t)| PollOptionView {
                id: i as i64,
                text: t.as_str().unwrap_or_default().to_string(),
                votes: tally.votes.get(&(i as i64)).copied().unwrap_or(0),
            })
            .collect(),
        multiple: stored["multiple"].as_bool().unwrap_or(false),
        anonymous: stored["anonymous"].as_bool().unwrap_or(false),
        closed,
        closes_at,
        voters: tally.voters,
    };
    serde_json::to_value(view).ok()
}

/// The option ids of a vote: integers (or their decimal strings), each once, within the poll.
fn option_ids(raw: &[Value], options: usize, multiple: bool) -> AppResult<Vec<i64>> {
    let field = "option_ids";
    if raw.is_empty() {
        return Err(AppError::validation(
            field,
            "choose an option (DELETE withdraws a vote)",
        ));
    }
    if !multiple && raw.len() != 1 {
        return Err(AppError::validation(
            field,
            "this poll takes exactly one option",
        ));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for v in raw {
        let id = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) if !s.is_empty() && s.len() <= 2 => s.parse().ok(),
            _ => None,
        }
        .filter(|i| (0..options as i64).contains(i))
        .ok_or_else(|| AppError::validation(field, "not an option of this poll"))?;
        if ids.contains(&id) {
            return Err(AppError::validation(field, "each option once"));
        }
        ids.push(id);
    }
    Ok(ids)
}

fn closed_conflict() -> AppError {
    AppError::conflict("the poll is closed")
}

impl ChatService {
    /// The poll message, when the caller is a member of its conversation; its stored poll.
    async fn poll_message(
        &self,
        ctx: &AuthContext,
        id: MessageId,
    ) -> AppResult<(MessageRow, sc_db::chat::ConversationRow, Value)> {
        let (m, c) = self.visible_message(ctx, id).await?;
        let stored = serde_json::from_str::<Map<String, Value>>(&m.metadata)
            .ok()
            .and_then(|mut meta| meta.remove("poll"))
            .filter(|_| m.kind == "poll" && m.deleted_at.is_none())
            .ok_or_else(|| AppError::NotFound("poll".into()))?;
        Ok((m, c, stored))
    }

    /// Puts live counts into the polls among `views`.
    pub(crate) async fn fill_polls(&self, views: &mut [MessageView]) -> AppResult<()> {
        for v in views.iter_mut().filter(|v| v.kind == "poll" && !v.deleted) {
            let Some(poll) = v.metadata.get("poll") else {
                continue;
            };
            let tally = self.d.db.polls().tally(v.id).await?;
            let mut poll = poll.clone();
            for o in poll["options"].as_array_mut().into_iter().flatten() {
                let id = o["id"].as_i64().unwrap_or(-1);
                o["votes"] = json!(tally.votes.get(&id).copied().unwrap_or(0));
            }
            poll["voters"] = json!(tally.voters);
            v.metadata["poll"] = poll;
        }
        Ok(())
    }

    /// Puts the caller's own vote (`my_vote`, option ids) into the polls among `views`: a view
    /// read for one member (history), never one every member shares.
    pub(crate) async fn fill_my_votes(
        &self,
        caller: UserId,
        views: &mut [MessageView],
    ) -> AppResult<()> {
        for v in views.iter_mut().filter(|v| v.kind == "poll" && !v.deleted) {
            if v.metadata.get("poll").is_none() {
                continue;
            }
            let mine = self.d.db.polls().vote_of(v.id, caller).await?;
            v.metadata["poll"]["my_vote"] = json!(mine);
        }
        Ok(())
    }

    /// The message with its live poll, announced to the members as `poll.updated`.
    async fn announce_poll(&self, id: MessageId) -> AppResult<MessageView> {
        let m = self.d.db.chat().message(id).await?.ok_or_else(not_found)?;
        let conversation = m.conversation_id;
        let view = self.view_one(m).await?;
        let members = self.d.db.chat().member_ids(conversation).await?;
        let event = json!({"conversation_id": conversation, "message_id": id,
                           "poll": view.metadata.get("poll")});
        self.d.emit(members, "poll.updated", &event).await;
        Ok(view)
    }

    /// Replaces the caller's vote (member only): exactly one option unless `multiple`.
    pub async fn vote(
        &self,
        ctx: &AuthContext,
        id: MessageId,
        raw_options: &[Value],
    ) -> AppResult<MessageView> {
        let (m, _, stored) = self.poll_message(ctx, id).await?;
        let count = stored["options"].as_array().map_or(0, Vec::len);
        let multiple = stored["multiple"].as_bool().unwrap_or(false);
        let options = option_ids(raw_options, count, multiple)?;
        self.record_vote(ctx, &m, &options).await
    }

    /// Withdraws the caller's vote (member only).
    pub async fn withdraw_vote(&self, ctx: &AuthContext, id: MessageId) -> AppResult<MessageView> {
        let (m, _, _) = self.poll_message(ctx, id).await?;
        self.record_vote(ctx, &m, &[]).await
    }

    async fn record_vote(
        &self,
        ctx: &AuthContext,
        m: &MessageRow,
        options: &[i64],
    ) -> AppResult<MessageView> {
        let now = Timestamp::now();
        if is_closed(m, now) {
            return Err(closed_conflict());
        }
        match self
            .d
            .db
            .polls()
            .vote(m.id, ctx.user_id, options, now)
            .await?
        {
            VoteOutcome::Done => self.announce_poll(m.id).await,
            VoteOutcome::Closed => Err(closed_conflict()),
            VoteOutcome::Gone => Err(AppError::NotFound("poll".into())),
        }
    }

    /// Who voted for each option (member only; 403 for an anonymous poll).
    pub async fn poll_voters(&self, ctx: &AuthContext, id: MessageId) -> AppResult<PollVotersView> {
        let (_, _, stored) = self.poll_message(ctx, id).await?;
        if stored["anonymous"].as_bool().unwrap_or(false) {
            return Err(AppError::Forbidden(
                "the poll is anonymous: its voters are not shown".into(),
            ));
        }
        let count = stored["options"].as_array().map_or(0, Vec::len);
        let mut options: Vec<PollOptionVoters> = (0..count as i64)
            .map(|id| PollOptionVoters {
                id,
                voters: Vec::new(),
            })
            .collect();
        for (option, user) in self.d.db.polls().voters(id).await? {
            if let Some(o) = options.get_mut(option as usize) {
                o.voters.push(user);
            }
        }
        Ok(PollVotersView { options })
    }

    /// Closes a poll: its sender, or an owner or admin of its group.
    pub async fn close_poll(&self, ctx: &AuthContext, id: MessageId) -> AppResult<MessageView> {
        let (m, c, _) = self.poll_message(ctx, id).await?;
        let moderator = c.kind == "group" && (c.my_role == "owner" || c.my_role == "admin");
        if m.sender_id != ctx.user_id && !moderator {
            return Err(AppError::Forbidden(
                "only the poll's sender or a group owner/admin may close it".into(),
            ));
        }
        if !self.d.db.polls().close(id, Timestamp::now()).await? {
            return Err(AppError::conflict("the poll is closed already"));
        }
        self.announce_poll(id).await
    }

    /// The durable closing job: every instance runs it; each due poll is closed (and announced)
    /// by exactly one, through a conditional write. Polls due while every instance was down
    /// are closed at the next start.
    pub fn spawn_poll_closer(&self, every: Duration, stop: CancellationToken) {
        let svc = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => if let Err(e) = svc.close_due_polls().await {
                        tracing::warn!(error = %e, "closing due polls failed");
                    },
                }
            }
        });
    }

    /// One pass of the closing job; returns how many polls this instance closed.
    pub async fn close_due_polls(&self) -> AppResult<usize> {
        let polls = self.d.db.polls();
        let mut closed = 0;
        for (id, _) in polls.due(Timestamp::now(), CLOSE_BATCH).await? {
            if polls.close_due(id).await? {
                self.announce_poll(id).await?;
                closed += 1;
            }
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp(1_800_000_000_000)
    }

    #[test]
    fn definitions_are_checked() {
        let ok = PollDefinition::parse(&json!({"options": [" a ", "b"], "multiple": true}), now())
            .unwrap();
        assert_eq!(ok.options, ["a", "b"]);
        assert!(ok.multiple && !ok.anonymous && ok.closes_at.is_none());
        for bad in [
            json!({"options": ["only"]}),
            json!({"options": ["a", "a"]}),
            json!({"options": ["a", ""]}),
            json!({"options": ["a", "x".repeat(201)]}),
            json!({"options": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}),
            json!({"options": ["a", 1]}),
            json!({"options": ["a", "b"], "multiple": "yes"}),
            json!({"options": ["a", "b"], "closes_at": "2020-01-01T00:00:00Z"}),
            json!({"options": ["a", "b"], "closes_at": "soon"}),
            json!({"options": ["a", "b"], "color": "red"}),
            json!(["a", "b"]),
        ] {
            assert!(PollDefinition::parse(&bad, now()).is_err(), "{bad}");
        }
    }

    #[test]
    fn vote_option_ids_are_checked() {
        assert_eq!(option_ids(&[json!(1)], 3, false).unwrap(), [1]);
        assert_eq!(
            option_ids(&[json!("2"), json!(0)], 3, true).unwrap(),
            [2, 0]
        );
        for (raw, multiple) in [
            (vec![], true),
            (vec![json!(0), json!(1)], false),
            (vec![json!(3)], false),
            (vec![json!(-1)], false),
            (vec![json!(1), json!(1)], true),
            (vec![json!(1.5)], false),
            (vec![json!("x")], false),
        ] {
            assert!(option_ids(&raw, 3, multiple).is_err(), "{raw:?}");
        }
    }
}
