//! One error type for the SDK: what the server answered, what the transport did, and what the
//! cryptography refused.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error envelope.
    #[error("server answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Option<Value>,
    },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("websocket: {0}")]
    Socket(String),
    /// The server's answer was not what the contract says.
    #[error("protocol: {0}")]
    Protocol(String),
    /// openmls refused an operation or a message.
    #[error("mls: {0}")]
    Mls(String),
    /// Something in the group does not check out against the server's device list or membership.
    #[error("not trusted: {0}")]
    Untrusted(String),
    /// The local state could not be read, decrypted or written.
    #[error("local state: {0}")]
    Vault(String),
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    pub(crate) fn mls(e: impl std::fmt::Debug) -> Self {
        ClientError::Mls(format!("{e:?}"))
    }

    /// The HTTP status of a server error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;
