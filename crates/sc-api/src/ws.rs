//! One WebSocket per client session. The socket task is the only task per connection: it
//! forwards queued events, answers client frames, pings, and closes on an idle peer, an ended
//! session or a full outbound queue.

use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sc_core::{
    AppError,
    ids::{CallId, ConversationId, SessionId, UserId},
};
use sc_service::{
    AuthContext, Role,
    realtime::{CLOSE_SESSION_ENDED, QueuedFrame, frame},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

pub const MAX_FRAME: usize = 64 * 1024;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingData {
    conversation_id: ConversationId,
    active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSignalData {
    call_id: CallId,
    #[serde(default)]
    to_session_id: Option<SessionId>,
    signal: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadData {
    conversation_id: ConversationId,
    seq: i64,
}

/// A token bucket: `rate` frames per second, bursts of twice that.
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Events written per flush at most, so one busy socket cannot hold its task for long.
const MAX_BATCH: usize = 64;

/// A queued event as a text message; the bytes are shared with every other recipient.
fn event_message(frame: QueuedFrame) -> Result<Message, axum::Error> {
    Utf8Bytes::try_from(Bytes::clone(&frame))
        .map(Message::Text)
        .map_err(axum::Error::new)
}

fn error_frame(code: &str, message: &str) -> String {
    frame("error", &json!({"code": code, "message": message}))
}

pub async fn run(state: Arc<AppState>, socket: WebSocket, user: UserId, session: SessionId) {
    let cfg = state.cfg.clone();
    let mut reg = state.hub.register(user, session, cfg.ws_outbound_queue);
    // `ready` promises the socket hears everything from now on: give a (re)starting Redis
    // subscription a moment. Past that, events still flow on this instance and the client can
    // always catch up with after_seq.
    let waiting = Instant::now();
    while !state.deps.bus.is_live() && waiting.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut sink, mut stream) = socket.split();
    let ready = frame("ready", &json!({"user_id": user, "session_id": session}));
    // A revocation announced between the ticket check and joining the hub was not heard here:
    // look once more now that the socket is registered.
    let alive = state.auth.session_alive(session).await;
    if !alive {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CLOSE_SESSION_ENDED,
                reason: "session ended".into(),
            })))
            .await;
    }
    if alive && sink.send(Message::Text(ready.into())).await.is_ok() {
        state.realtime.connected(user, reg.first_local).await;
        let ctx = AuthContext {
            user_id: user,
            session_id: session,
            role: Role::User,
            email_verified: true,
        };
        let mut heartbeat = tokio::time::interval(Duration::from_secs(cfg.ws_heartbeat_seconds));
        heartbeat.tick().await;
        let idle = Duration::from_secs(cfg.ws_idle_timeout_seconds);
        let mut last_heard = Instant::now();
        let mut bucket = Bucket {
            tokens: cfg.ws_inbound_per_second as f64 * 2.0,
            rate: cfg.ws_inbound_per_second as f64,
            last: Instant::now(),
        };
        // Set after a full batch: the client's frames and the heartbeat get a turn before the
        // next batch, so a busy room cannot starve them.
        let mut their_turn = false;
        // One wait for the close signal for the socket's whole life (not one per wake-up).
        let closed = reg.close.closed();
        tokio::pin!(closed);
        let close_code = loop {
            // Biased: on a wake-up for queued events, the read side is not polled at all (a
            // read attempt costs a buffer fill and a syscall), only when the queue is empty.
            let outgoing: Option<Message> = tokio::select! {
                biased;
                _ = &mut closed => break reg.close.code(),
                ev = reg.rx.recv(), if !their_turn => match ev {
                    Some(first) => {
                        // Everything already queued goes out with one flush (one write under a
                        // burst instead of one per event).
                        let batch = async {
                            let mut count = 1;
                            sink.feed(event_message(first)?).await?;
                            while count < MAX_BATCH {
                                let Ok(next) = reg.rx.try_recv() else { break };
                                count += 1;
                                sink.feed(event_message(next)?).await?;
                            }
                            sink.flush().await.map(|()| count)
                        };
                        tokio::pin!(batch);
                        // Usually the kernel takes the bytes at once; only a write that has to
                        // wait gets a timer.
                        let sent = match std::future::poll_fn(|cx| Poll::Ready(batch.as_mut().poll(cx))).await {
                            Poll::Ready(r) => r.ok(),
                            Poll::Pending => tokio::select! {
                                r = tokio::time::timeout(SEND_TIMEOUT, &mut batch) => r.ok().and_then(Result::ok),
                                _ = &mut closed => None,
                            },
                        };
                        let Some(count) = sent else {
                            break reg.close.code().max(1011);
                        };
                        their_turn = count == MAX_BATCH;
                        None
                    }
                    None => break 1011,
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        if bucket.take() {
                            handle_client_frame(&state, &ctx, text.as_str()).await.map(|f| Message::Text(f.into()))
                        } else {
                            Some(Message::Text(error_frame("RATE_LIMITED", "too many frames; slow down").into()))
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = Instant::now();
                        Some(Message::Text(error_frame("VALIDATION_ERROR", "frames are JSON text").into()))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = Instant::now();
                        None
                    }
                    Some(Ok(Message::Close(_))) | None => break 1000,
                    // Oversized frames and protocol errors end the connection.
                    Some(Err(_)) => break 1009,
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle {
                        break 1001;
                    }
                    // Revocations close sockets at once through the bus; this check also catches
                    // sessions that simply expired, and revocations the bus could not carry.
                    if !state.auth.session_alive(session).await {
                        break CLOSE_SESSION_ENDED;
                    }
                    Some(Message::Ping(Default::default()))
                }
                // Nothing from the client or the heartbeat: back to the queued events.
                _ = std::future::ready(()), if their_turn => {
                    their_turn = false;
                    None
                }
            };
            if let Some(m) = outgoing {
                let sent = tokio::select! {
                    r = tokio::time::timeout(SEND_TIMEOUT, sink.send(m)) => matches!(r, Ok(Ok(()))),
                    _ = &mut closed => false,
                };
                if !sent {
                    break reg.close.code().max(1011);
                }
            }
        };
        let reason = match close_code {
            CLOSE_SESSION_ENDED => "session ended",
            sc_service::realtime::CLOSE_BANNED => "account banned",
            sc_service::realtime::CLOSE_RESTARTING => "server restarting: reconnect",
            1013 => "too slow: catch up with after_seq",
            1001 => "idle",
            _ => "",
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(CloseFrame {
                code: close_code,
                reason: reason.into(),
            }))),
        )
        .await;
    }
    reg.rx.close();
    if state.hub.unregister(user, reg.id) {
        state.realtime.disconnected(user).await;
    }
}

/// A client frame, decoded.
#[derive(Debug, PartialEq)]
pub enum ClientRequest {
    Ping(Value),
    Typing {
        conversation_id: ConversationId,
        active: bool,
    },
    Read {
        conversation_id: ConversationId,
        seq: i64,
    },
    CallSignal {
        call_id: CallId,
        to_session_id: Option<SessionId>,
        signal: Value,
    },
}

/// Decodes one client text frame. A bad frame is a VALIDATION_ERROR naming `frame` (not a JSON
/// object with a string `type`), `type` (unknown) or `data` (wrong for the type).
pub fn decode_client_frame(text: &str) -> Result<ClientRequest, AppError> {
    let f = serde_json::from_str::<ClientFrame>(text).map_err(|_| {
        AppError::validation(
            "frame",
            "frames are JSON objects {\"type\": ..., \"data\": {...}}",
        )
    })?;
    let bad_data = |e: serde_json::Error| AppError::validation("data", e.to_string());
    // serde would also read a struct from an array (`[id, seq]`): frames name their fields.
    if matches!(f.kind.as_str(), "typing" | "read" | "call.signal") && !f.data.is_object() {
        return Err(AppError::validation("data", "data must be a JSON object"));
    }
    match f.kind.as_str() {
        "ping" => Ok(ClientRequest::Ping(f.data)),
        "typing" => {
            let d: TypingData = serde_json::from_value(f.data).map_err(bad_data)?;
            Ok(ClientRequest::Typing {
                conversation_id: d.conversation_id,
                active: d.active,
            })
        }
        "read" => {
            let d: ReadData = serde_json::from_value(f.data).map_err(bad_data)?;
            Ok(ClientRequest::Read {
                conversation_id: d.conversation_id,
                seq: d.seq,
            })
        }
        "call.signal" => {
            let d: CallSignalData = serde_json::from_value(f.data).map_err(bad_data)?;
            Ok(ClientRequest::CallSignal {
                call_id: d.call_id,
                to_session_id: d.to_session_id,
                signal: d.signal,
            })
        }
        other => Err(AppError::validation(
            "type",
            format!(
                "unknown frame type `{}`",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// Answers one client frame; the reply (if any) goes back on the same socket.
async fn handle_client_frame(state: &AppState, ctx: &AuthContext, text: &str) -> Option<String> {
    let result: Result<Option<String>, AppError> = async {
        match decode_client_frame(text)? {
            ClientRequest::Ping(data) => Ok(Some(frame("pong", &data))),
            ClientRequest::Typing {
                conversation_id,
                active,
            } => {
                state
                    .realtime
                    .typing(ctx.user_id, conversation_id, active)
                    .await?;
                Ok(None)
            }
            ClientRequest::Read {
                conversation_id,
                seq,
            } => {
                state.chat.mark_read(ctx, conversation_id, seq).await?;
                Ok(None)
            }
            ClientRequest::CallSignal {
                call_id,
                to_session_id,
                signal,
            } => {
                state
                    .calls
                    .signal(ctx, call_id, to_session_id, &signal)
                    .await?;
                Ok(None)
            }
        }
    }
    .await;
    match result {
        Ok(reply) => reply,
        Err(e) => Some(error_frame(e.code(), &e.public_message())),
    }
}
