//! Application messages: what travels inside MLS (text, or a file's key), sending, and
//! decrypting a conversation's new messages in order.

use crate::api::{Message, b64, unb64};
use crate::device::{E2eeClient, user_of};
use crate::error::{ClientError, ClientResult};
use crate::groups::parse_message;
use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};
use aes_gcm::{Aes256Gcm, Nonce};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Associated data of attachment encryption: binds the ciphertext to its purpose and version.
const ATTACHMENT_AAD: &[u8] = b"secureconnect attachment v1";

/// The plaintext of an encrypted message, as JSON inside the MLS application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Text {
        text: String,
    },
    File {
        file: AttachmentKey,
        text: Option<String>,
    },
}

/// Everything needed to fetch and decrypt an attachment; it exists only inside MLS messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentKey {
    pub file_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// AES-256-GCM key and nonce, base64; fresh for every file.
    pub key: String,
    pub nonce: String,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
}

/// A message of an encrypted conversation as this device reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decrypted {
    pub message_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub body: Result<Payload, String>,
}

impl Decrypted {
    /// The text, if it decrypted and has one.
    pub fn text(&self) -> Option<&str> {
        match &self.body {
            Ok(Payload::Text { text }) => Some(text),
            Ok(Payload::File { text, .. }) => text.as_deref(),
            Err(_) => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl E2eeClient {
    /// Encrypts and sends a text in an encrypted conversation (on the latest epoch).
    pub async fn send_text(&mut self, conversation: Uuid, text: &str) -> ClientResult<Message> {
        self.send_payload(
            conversation,
            &Payload::Text {
                text: text.to_string(),
            },
            &[],
        )
        .await
    }

    /// Encrypts a file with a fresh key, uploads the ciphertext as an `encrypted` drive file
    /// under a random name, and sends the key inside an MLS message with the file attached.
    pub async fn send_file(
        &mut self,
        conversation: Uuid,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        text: Option<&str>,
    ) -> ClientResult<(Message, AttachmentKey)> {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut key);
        rand::rng().fill_bytes(&mut nonce);
        let sealed = Aes256Gcm::new((&key).into())
            .encrypt(
                Nonce::from_slice(&nonce),
                AeadPayload {
                    msg: bytes,
                    aad: ATTACHMENT_AAD,
                },
            )
            .map_err(|_| ClientError::Invalid("file encryption failed".into()))?;
        // The server sees a random name with the real extension (its allow-list checks it) and
        // the declared type; never the name, and never the bytes.
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("bin");
        let stored_name = format!("{}.{ext}", Uuid::new_v4().simple());
        let file = self
            .api
            .upload_file(&stored_name, content_type, sealed, true)
            .await?;
        let attachment = AttachmentKey {
            file_id: file.id,
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: bytes.len() as u64,
            key: b64(&key),
            nonce: b64(&nonce),
            sha256: hex(&Sha256::digest(bytes)),
        };
        let payload = Payload::File {
            file: attachment.clone(),
            text: text.map(str::to_string),
        };
        let message = self
            .send_payload(conversation, &payload, &[file.id])
            .await?;
        Ok((message, attachment))
    }

    /// Downloads and decrypts an attachment; the plaintext's hash must match the message's.
    pub async fn fetch_attachment(&self, a: &AttachmentKey) -> ClientResult<Vec<u8>> {
        let sealed = self.api.download_file(a.file_id).await?;
        let key: [u8; 32] = unb64(&a.key)?
            .try_into()
            .map_err(|_| ClientError::Protocol("bad attachment key".into()))?;
        let nonce = unb64(&a.nonce)?;
        if nonce.len() != 12 {
            return Err(ClientError::Protocol("bad attachment nonce".into()));
        }
        let plain = Aes256Gcm::new((&key).into())
            .decrypt(
                Nonce::from_slice(&nonce),
                AeadPayload {
                    msg: &sealed,
                    aad: ATTACHMENT_AAD,
                },
            )
            .map_err(|_| ClientError::Untrusted("the attachment was altered".into()))?;
        if hex(&Sha256::digest(&plain)) != a.sha256 {
            return Err(ClientError::Untrusted(
                "the attachment does not match its message".into(),
            ));
        }
        Ok(plain)
    }

    async fn send_payload(
        &mut self,
        conversation: Uuid,
        payload: &Payload,
        attachments: &[Uuid],
    ) -> ClientResult<Message> {
        // Encrypt on the latest epoch: a member removed by a commit this device has not seen
        // yet must not be able to read what it sends.
        self.catch_up_commits(conversation).await?;
        let plain =
            serde_json::to_string(payload).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let (ciphertext, epoch) = {
            let provider = &self.provider;
            let signer = &self.signer;
            let group = self
                .groups
                .get_mut(&conversation)
                .ok_or_else(|| ClientError::Invalid("not in this conversation's group".into()))?;
            let out = group
                .create_message(provider, signer, plain.as_bytes())
                .map_err(ClientError::mls)?;
            (
                out.tls_serialize_detached().map_err(ClientError::mls)?,
                group.epoch().as_u64(),
            )
        };
        self.save()?;
        let message = self
            .api
            .send_ciphertext(conversation, &ciphertext, epoch, attachments)
            .await?;
        self.sent.insert(message.id, plain);
        self.save()?;
        Ok(message)
    }

    /// Processes commits, then decrypts every message not read yet, oldest first.
    pub async fn read_new(&mut self, conversation: Uuid) -> ClientResult<Vec<Decrypted>> {
        self.catch_up_commits(conversation).await?;
        let mut out = Vec::new();
        loop {
            let after = self.read_upto.get(&conversation).copied().unwrap_or(0);
            let page = self.api.messages_after(conversation, after, 100).await?;
            if page.is_empty() {
                break;
            }
            for m in page {
                let seq = m.seq;
                let d = self.decrypt(&m);
                self.history
                    .entry(conversation)
                    .or_default()
                    .push(d.clone());
                out.push(d);
                self.read_upto.insert(conversation, seq);
            }
        }
        self.save()?;
        Ok(out)
    }

    /// Everything this device has decrypted in a conversation, oldest first (kept in the
    /// encrypted local state).
    pub fn history(&self, conversation: Uuid) -> &[Decrypted] {
        self.history
            .get(&conversation)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Decrypts one message of an encrypted conversation. Messages from before this device
    /// joined, from a removed member's perspective after the removal, or tampered with come back
    /// as `Err(reason)` in `body`, never as a panic or a wrong plaintext.
    pub fn decrypt(&mut self, m: &Message) -> Decrypted {
        let body = self.decrypt_body(m);
        Decrypted {
            message_id: m.id,
            seq: m.seq,
            sender_id: m.sender_id,
            body,
        }
    }

    fn decrypt_body(&mut self, m: &Message) -> Result<Payload, String> {
        if m.deleted {
            return Err("deleted".into());
        }
        if let Some(plain) = self.sent.get(&m.id) {
            return serde_json::from_str(plain).map_err(|e| e.to_string());
        }
        let Some(ct) = &m.ciphertext else {
            return Err("no ciphertext".into());
        };
        let bytes = unb64(ct).map_err(|e| e.to_string())?;
        let message = parse_message(&bytes)
            .map_err(|e| e.to_string())?
            .try_into_protocol_message()
            .map_err(|_| "not a protocol message".to_string())?;
        // Loaded from the store if this is the first use since the state was opened.
        self.group(m.conversation_id);
        let provider = &self.provider;
        let group = self
            .groups
            .get_mut(&m.conversation_id)
            .ok_or_else(|| "this device is not in the conversation's group".to_string())?;
        let processed = group
            .process_message(provider, message)
            .map_err(|e| format!("cannot decrypt: {e:?}"))?;
        // The MLS sender must be the user the server says sent it: a server cannot pass one
        // member's message off as another's.
        let sender = user_of(processed.credential()).map_err(|e| e.to_string())?;
        if sender != m.sender_id {
            return Err("the sender does not match the message's author".into());
        }
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                serde_json::from_slice(&app.into_bytes()).map_err(|e| e.to_string())
            }
            _ => Err("not an application message".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_as_tagged_json() {
        let p = Payload::Text { text: "hi".into() };
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(s, r#"{"type":"text","text":"hi"}"#);
        assert_eq!(serde_json::from_str::<Payload>(&s).unwrap(), p);
        assert!(serde_json::from_str::<Payload>(r#"{"type":"video"}"#).is_err());
    }
}
