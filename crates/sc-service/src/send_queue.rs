//! The send queue: concurrent sends are written to the database in batches.
//!
//! A message write costs the database a statement, a round trip and a commit whatever the
//! message's size, so sends that arrive while a write is in flight wait for it and then go
//! together in one write (group commit). An idle server writes each message at once, alone: no
//! timer ever holds a message back. Messages are spread over a few lanes by conversation, each
//! lane with one write in flight, so two writes of one instance never touch the same
//! conversation's counter (no lock-order deadlocks between them) and a busy conversation cannot
//! take more than its lane.
//!
//! The lane also announces what it wrote (`message.created` to the members as of the write),
//! after answering the senders: so one instance publishes a conversation's messages in `seq`
//! order, and a message whose sender went away before the answer is still announced.

use crate::{Deps, chat::MessageView};
use sc_core::{AppError, AppResult, ids::UserId};
use sc_db::{
    Backend,
    chat::{Inserted, MessageRow, NewMessage},
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Messages per write at most (one statement's arrays on PostgreSQL, one transaction on SQLite).
const MAX_BATCH: usize = 64;
/// Lanes on PostgreSQL; SQLite has one writer at a time anyway, so one lane.
const POSTGRES_LANES: usize = 4;
/// Sends waiting per lane before a new one waits for room (back-pressure, not unbounded memory).
const LANE_CAPACITY: usize = 1024;

/// What became of a send.
pub enum Written {
    /// Stored (and about to be announced).
    New(MessageView),
    /// The sender already sent this `client_message_id`: the original.
    Existing(MessageRow),
    /// The sender is no longer a member (or the conversation is gone).
    NotMember,
}

struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<AppResult<Written>>,
}

pub struct SendQueue {
    lanes: Vec<mpsc::Sender<Pending>>,
}

impl SendQueue {
    /// Starts the lanes' writer tasks; they end when the queue is dropped.
    pub fn start(deps: Arc<Deps>) -> Self {
        let count = match deps.db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_LANES,
        };
        let lanes = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_CAPACITY);
                tokio::spawn(run_lane(deps.clone(), rx));
                tx
            })
            .collect();
        Self { lanes }
    }

    /// Writes one message (see `Chat::insert_messages`), batched with whatever else is waiting.
    pub async fn write(&self, message: NewMessage) -> AppResult<Written> {
        let lane =
            (message.conversation_id.as_uuid().as_u128() % self.lanes.len() as u128) as usize;
        let (reply, answer) = oneshot::channel();
        let stopped = || AppError::ServiceUnavailable("the server is shutting down".into());
        self.lanes[lane]
            .send(Pending { message, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run_lane(deps: Arc<Deps>, mut rx: mpsc::Receiver<Pending>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    // Waits for the first send, then takes whatever else arrived meanwhile.
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        // A retry of a message in this same batch (same sender and client_message_id) is
        // written after it, on its own, and so finds the original.
        let mut seen = HashSet::with_capacity(waiting.len());
        let (mut messages, mut replies, mut repeats) = (Vec::new(), Vec::new(), Vec::new());
        for p in waiting.drain(..) {
            if seen.insert((p.message.sender_id, p.message.client_message_id.clone())) {
                messages.push(p.message);
                replies.push(p.reply);
            } else {
                repeats.push(p);
            }
        }
        let chat = deps.db.chat();
        let mut written: Vec<(MessageView, Arc<[UserId]>)> = Vec::new();
        let mut answer = |reply: oneshot::Sender<AppResult<Written>>,
                          result: AppResult<Inserted>| {
            let outcome = result.map(|inserted| match inserted {
                Inserted::New(row, members) => {
                    let view = MessageView::new(row, BTreeMap::new());
                    written.push((view.clone(), members));
                    Written::New(view)
                }
                Inserted::Existing(row) => Written::Existing(row),
                Inserted::NotMember => Written::NotMember,
            });
            // The sender may have gone away (request cancelled); the message stands regardless.
            let _ = reply.send(outcome);
        };
        for (reply, result) in replies
            .into_iter()
            .zip(chat.insert_messages(&messages).await)
        {
            answer(reply, result);
        }
        for p in repeats {
            answer(p.reply, chat.insert_message(&p.message).await);
        }
        // Their notification job was committed with them.
        if !written.is_empty() {
            deps.jobs_wake.notify_one();
        }
        for (view, members) in written {
            deps.emit(members.to_vec(), "message.created", &view).await;
        }
    }
}
