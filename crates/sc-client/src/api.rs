//! The HTTP API of API.md as typed calls: the envelope is unwrapped here, an expired access token
//! is refreshed once, and nothing else in the SDK builds a URL.

use crate::error::{ClientError, ClientResult};
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub kind: String,
    pub title: Option<String>,
    pub encrypted: bool,
    pub last_message_seq: i64,
    #[serde(default)]
    pub unread_count: i64,
    #[serde(default)]
    pub members_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub kind: String,
    pub content: Option<String>,
    pub ciphertext: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Uuid>,
    #[serde(default)]
    pub metadata: Value,
    pub created_at: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Device {
    pub device_id: Uuid,
    pub signature_key: String,
    pub credential: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClaimedPackage {
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub key_package: String,
    pub last_resort: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageCount {
    pub available: i64,
    pub last_resort: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommitItem {
    pub epoch: u64,
    pub commit: String,
    pub sender_device_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupInfoItem {
    pub epoch: u64,
    pub group_info: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WelcomeItem {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub epoch: u64,
    pub welcome: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UploadTicket {
    pub file_id: Uuid,
    pub upload_url: String,
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileView {
    pub id: Uuid,
    pub name: String,
    pub size: i64,
    pub status: String,
    pub encrypted: bool,
}

/// A commit for `POST /v1/conversations/{id}/mls/commits`, as raw bytes.
pub struct CommitUpload<'a> {
    pub epoch: u64,
    pub commit: &'a [u8],
    pub welcome: Option<(&'a [u8], &'a [Uuid])>,
    pub group_info: Option<&'a [u8]>,
}

#[derive(Default)]
struct Tokens {
    access: Option<String>,
    refresh: Option<String>,
}

/// One signed-in session against one server.
pub struct Api {
    http: reqwest::Client,
    base: String,
    tokens: Mutex<Tokens>,
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn unb64(s: &str) -> ClientResult<Vec<u8>> {
    STANDARD
        .decode(s)
        .map_err(|_| ClientError::Protocol("the server sent invalid base64".into()))
}

impl Api {
    pub fn new(base_url: &str) -> ClientResult<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Api {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            tokens: Mutex::new(Tokens::default()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current refresh token, for a caller that keeps the session across runs.
    pub fn refresh_token(&self) -> Option<String> {
        self.tokens().refresh.clone()
    }

    pub fn access_token(&self) -> Option<String> {
        self.tokens().access.clone()
    }

    fn adopt(&self, pair: &TokenPair) {
        let mut t = self.tokens();
        t.access = Some(pair.access_token.clone());
        t.refresh = Some(pair.refresh_token.clone());
    }

    pub async fn register(
        &self,
        email: &str,
        username: &str,
        display_name: &str,
        password: &str,
    ) -> ClientResult<TokenPair> {
        let body = json!({"email": email, "username": username, "display_name": display_name, "password": password});
        let pair: TokenPair = self
            .send_once(Method::POST, "/v1/auth/register", Some(&body), None)
            .await?;
        self.adopt(&pair);
        Ok(pair)
    }

    /// Signs in with a username or an email (an `@` decides which).
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        totp_code: Option<&str>,
        device_name: &str,
    ) -> ClientResult<TokenPair> {
        let field = if login.contains('@') {
            "email"
        } else {
            "username"
        };
        let mut body = json!({field: login, "password": password, "device_name": device_name});
        if let Some(code) = totp_code {
            body["totp_code"] = json!(code);
        }
        let pair: TokenPair = self
            .send_once(Method::POST, "/v1/auth/login", Some(&body), None)
            .await?;
        self.adopt(&pair);
        Ok(pair)
    }

    /// Resumes a session from a stored refresh token (which rotates).
    pub async fn resume(&self, refresh_token: &str) -> ClientResult<TokenPair> {
        let body = json!({"refresh_token": refresh_token});
        let pair: TokenPair = self
            .send_once(Method::POST, "/v1/auth/refresh", Some(&body), None)
            .await?;
        self.adopt(&pair);
        Ok(pair)
    }

    pub async fn logout(&self) -> ClientResult<()> {
        let _: Value = self.call(Method::POST, "/v1/auth/logout", None).await?;
        *self.tokens() = Tokens::default();
        Ok(())
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> ClientResult<T> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            ClientError::Protocol(format!(
                "status {status}: the body is not the JSON envelope"
            ))
        })?;
        if v["success"] == json!(true) {
            return serde_json::from_value(v["data"].clone())
                .map_err(|e| ClientError::Protocol(format!("unexpected payload for {path}: {e}")));
        }
        let e = &v["error"];
        Err(ClientError::Api {
            status,
            code: e["code"].as_str().unwrap_or("UNKNOWN").to_string(),
            message: e["message"].as_str().unwrap_or("").to_string(),
            details: e.get("details").cloned(),
        })
    }

    /// An authenticated call; an expired access token is refreshed once and the call repeated.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> ClientResult<T> {
        let access = self.access_token();
        match self
            .send_once(method.clone(), path, body, access.as_deref())
            .await
        {
            Err(ClientError::Api { status: 401, .. }) if self.refresh_token().is_some() => {
                let refresh = self.refresh_token().unwrap_or_default();
                self.resume(&refresh).await?;
                let access = self.access_token();
                self.send_once(method, path, body, access.as_deref()).await
            }
            other => other,
        }
    }

    pub async fn me(&self) -> ClientResult<User> {
        self.call(Method::GET, "/v1/users/me", None).await
    }

    pub async fn find_user(&self, username: &str) -> ClientResult<Option<User>> {
        let page: Page<User> = self
            .call(
                Method::GET,
                &format!("/v1/users?q={}&limit=100", urlencode(username)),
                None,
            )
            .await?;
        Ok(page.items.into_iter().find(|u| u.username == username))
    }

    pub async fn create_conversation(
        &self,
        kind: &str,
        member_ids: &[Uuid],
        title: Option<&str>,
        encrypted: bool,
    ) -> ClientResult<Conversation> {
        let body =
            json!({"kind": kind, "member_ids": member_ids, "title": title, "encrypted": encrypted});
        self.call(Method::POST, "/v1/conversations", Some(&body))
            .await
    }

    /// Every conversation of the caller (all pages).
    pub async fn conversations(&self) -> ClientResult<Vec<Conversation>> {
        self.all_pages("/v1/conversations?limit=100").await
    }

    pub async fn conversation(&self, id: Uuid) -> ClientResult<Conversation> {
        self.call(Method::GET, &format!("/v1/conversations/{id}"), None)
            .await
    }

    pub async fn members(&self, id: Uuid) -> ClientResult<Vec<Member>> {
        self.all_pages(&format!("/v1/conversations/{id}/members?limit=100"))
            .await
    }

    pub async fn add_members(&self, id: Uuid, user_ids: &[Uuid]) -> ClientResult<()> {
        let _: Value = self
            .call(
                Method::POST,
                &format!("/v1/conversations/{id}/members"),
                Some(&json!({"user_ids": user_ids})),
            )
            .await?;
        Ok(())
    }

    pub async fn remove_member(&self, id: Uuid, user_id: Uuid) -> ClientResult<()> {
        let _: Value = self
            .call(
                Method::DELETE,
                &format!("/v1/conversations/{id}/members/{user_id}"),
                None,
            )
            .await?;
        Ok(())
    }

    pub async fn send_plain(&self, id: Uuid, text: &str) -> ClientResult<Message> {
        let body = json!({"client_message_id": Uuid::new_v4(), "content": text});
        self.call(
            Method::POST,
            &format!("/v1/conversations/{id}/messages"),
            Some(&body),
        )
        .await
    }

    pub async fn send_ciphertext(
        &self,
        id: Uuid,
        ciphertext: &[u8],
        epoch: u64,
        attachments: &[Uuid],
    ) -> ClientResult<Message> {
        let body = json!({
            "client_message_id": Uuid::new_v4(),
            "ciphertext": b64(ciphertext),
            "attachments": attachments,
            "metadata": {"epoch": epoch},
        });
        self.call(
            Method::POST,
            &format!("/v1/conversations/{id}/messages"),
            Some(&body),
        )
        .await
    }

    /// Messages with `seq > after_seq`, oldest first, at most `limit`.
    pub async fn messages_after(
        &self,
        id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> ClientResult<Vec<Message>> {
        let page: Page<Message> = self
            .call(
                Method::GET,
                &format!("/v1/conversations/{id}/messages?after_seq={after_seq}&limit={limit}"),
                None,
            )
            .await?;
        Ok(page.items)
    }

    /// The newest messages, newest first.
    pub async fn latest_messages(&self, id: Uuid, limit: u32) -> ClientResult<Vec<Message>> {
        let page: Page<Message> = self
            .call(
                Method::GET,
                &format!("/v1/conversations/{id}/messages?limit={limit}"),
                None,
            )
            .await?;
        Ok(page.items)
    }

    // --- MLS Delivery Service (API.md §10) ---

    pub async fn put_device(
        &self,
        signature_key: &[u8],
        credential: &[u8],
    ) -> ClientResult<Device> {
        let body = json!({"signature_key": b64(signature_key), "credential": b64(credential)});
        self.call(Method::PUT, "/v1/devices/me", Some(&body)).await
    }

    pub async fn devices(&self, user_id: Uuid) -> ClientResult<Vec<Device>> {
        self.all_pages(&format!("/v1/users/{user_id}/devices?limit=100"))
            .await
    }

    pub async fn upload_key_packages(
        &self,
        packages: &[Vec<u8>],
        last_resort: Option<&[u8]>,
    ) -> ClientResult<i64> {
        let mut body = json!({"key_packages": packages.iter().map(|p| b64(p)).collect::<Vec<_>>()});
        if let Some(lr) = last_resort {
            body["last_resort"] = json!(b64(lr));
        }
        let v: Value = self
            .call(Method::POST, "/v1/keys/packages", Some(&body))
            .await?;
        Ok(v["available"].as_i64().unwrap_or(0))
    }

    pub async fn key_package_count(&self) -> ClientResult<PackageCount> {
        self.call(Method::GET, "/v1/keys/packages/count", None)
            .await
    }

    pub async fn claim(&self, user_ids: &[Uuid]) -> ClientResult<Vec<ClaimedPackage>> {
        let page: Page<ClaimedPackage> = self
            .call(
                Method::POST,
                "/v1/keys/claim",
                Some(&json!({"user_ids": user_ids})),
            )
            .await?;
        Ok(page.items)
    }

    /// Posts a commit; `Ok(new_epoch)`, or the server's 409 as an error carrying
    /// `details.current_epoch`.
    pub async fn post_commit(&self, id: Uuid, c: CommitUpload<'_>) -> ClientResult<u64> {
        let mut body = json!({"epoch": c.epoch, "commit": b64(c.commit)});
        if let Some((welcome, to)) = c.welcome {
            body["welcome"] = json!(b64(welcome));
            body["welcome_to"] = json!(to);
        }
        if let Some(gi) = c.group_info {
            body["group_info"] = json!(b64(gi));
        }
        let v: Value = self
            .call(
                Method::POST,
                &format!("/v1/conversations/{id}/mls/commits"),
                Some(&body),
            )
            .await?;
        v["epoch"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("commit answer without epoch".into()))
    }

    /// Every commit creating an epoch above `since_epoch`, oldest first.
    pub async fn commits_since(&self, id: Uuid, since_epoch: u64) -> ClientResult<Vec<CommitItem>> {
        self.all_pages(&format!(
            "/v1/conversations/{id}/mls/commits?since_epoch={since_epoch}&limit=100"
        ))
        .await
    }

    pub async fn group_info(&self, id: Uuid) -> ClientResult<GroupInfoItem> {
        self.call(
            Method::GET,
            &format!("/v1/conversations/{id}/mls/group-info"),
            None,
        )
        .await
    }

    pub async fn welcomes(&self) -> ClientResult<Vec<WelcomeItem>> {
        self.all_pages("/v1/devices/me/welcomes?limit=100").await
    }

    pub async fn ack_welcome(&self, id: Uuid) -> ClientResult<()> {
        let _: Value = self
            .call(
                Method::DELETE,
                &format!("/v1/devices/me/welcomes/{id}"),
                None,
            )
            .await?;
        Ok(())
    }

    pub async fn realtime_ticket(&self) -> ClientResult<String> {
        let v: Value = self.call(Method::POST, "/v1/realtime/ticket", None).await?;
        v["ticket"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("ticket answer without ticket".into()))
    }

    // --- Drive (encrypted attachments) ---

    /// Uploads bytes as a drive file in the root folder and completes it.
    pub async fn upload_file(
        &self,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
        encrypted: bool,
    ) -> ClientResult<FileView> {
        let body = json!({"name": name, "size": bytes.len(), "content_type": content_type, "encrypted": encrypted});
        let ticket: UploadTicket = self
            .call(Method::POST, "/v1/files/uploads", Some(&body))
            .await?;
        let mut put = self.http.put(&ticket.upload_url).body(bytes);
        for (k, v) in &ticket.headers {
            if let Some(v) = v.as_str() {
                put = put.header(k.as_str(), v);
            }
        }
        let resp = put.send().await?;
        if !resp.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "upload answered {}",
                resp.status()
            )));
        }
        self.call(
            Method::POST,
            &format!("/v1/files/{}/complete", ticket.file_id),
            Some(&json!({})),
        )
        .await
    }

    pub async fn download_file(&self, file_id: Uuid) -> ClientResult<Vec<u8>> {
        let v: Value = self
            .call(Method::GET, &format!("/v1/files/{file_id}/download"), None)
            .await?;
        let url = v["download_url"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol("download answer without download_url".into()))?;
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let resp = self.http.get(url).send().await?;
        if !resp.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "download answered {}",
                resp.status()
            )));
        }
        Ok(resp.bytes().await?.to_vec())
    }

    async fn all_pages<T: DeserializeOwned>(&self, first: &str) -> ClientResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{first}&cursor={}", urlencode(c)),
                None => first.to_string(),
            };
            let page: Page<T> = self.call(Method::GET, &path, None).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

/// Percent-encoding for a query value (RFC 3986 unreserved characters pass).
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
