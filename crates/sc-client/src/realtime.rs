//! The realtime socket (API.md §5): a ticket, then JSON events. Used to follow a conversation
//! live; anything missed while disconnected is read back with `after_seq`.

use crate::api::Api;
use crate::error::{ClientError, ClientResult};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// One server event: `{type, data}`.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub data: Value,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Realtime {
    socket: Socket,
}

impl Realtime {
    pub async fn connect(api: &Api) -> ClientResult<Self> {
        let ticket = api.realtime_ticket().await?;
        let base = api.base_url();
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            return Err(ClientError::Invalid(
                "the server URL must be http(s)".into(),
            ));
        };
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("{ws}/v1/realtime?ticket={ticket}"))
                .await
                .map_err(|e| ClientError::Socket(e.to_string()))?;
        Ok(Realtime { socket })
    }

    /// The next event; `None` when the server closed the socket.
    pub async fn next(&mut self) -> ClientResult<Option<Event>> {
        while let Some(frame) = self.socket.next().await {
            match frame.map_err(|e| ClientError::Socket(e.to_string()))? {
                WsMessage::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .map_err(|_| ClientError::Protocol("a frame that is not JSON".into()))?;
                    return Ok(Some(Event {
                        kind: v["type"].as_str().unwrap_or_default().to_string(),
                        data: v["data"].clone(),
                    }));
                }
                WsMessage::Close(_) => return Ok(None),
                _ => continue,
            }
        }
        Ok(None)
    }
}
