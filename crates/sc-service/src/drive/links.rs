//! Public links: anyone holding the token may see a file's name and size and download it,
//! within the link's expiry, download count and password. Only a SHA-256 of the token is
//! stored; the password is hashed with Argon2id and its attempts are rate limited per link.

use super::*;
use crate::{crypto, password};
use sc_core::ids::LinkId;
use sc_db::drive_links::{LinkRow, NewLink};

/// Longest a link password may be (it is hashed, so this only bounds the work).
const MAX_LINK_PASSWORD_CHARS: usize = 256;
const MIN_LINK_PASSWORD_CHARS: usize = 4;
const MAX_DOWNLOADS: i64 = 1_000_000;

/// What `POST /v1/files/{id}/links` takes.
pub struct NewLinkRequest {
    pub expires_at: Option<Timestamp>,
    pub password: Option<String>,
    pub max_downloads: Option<i64>,
}

/// A public link as its owner sees it (the token is shown once, at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    #[schema(value_type = uuid::Uuid)]
    pub id: LinkId,
    #[schema(value_type = uuid::Uuid)]
    pub file_id: FileId,
    pub password_required: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<LinkRow> for LinkView {
    fn from(l: LinkRow) -> Self {
        Self {
            id: l.id,
            file_id: l.file_id,
            password_required: l.password_hash.is_some(),
            expires_at: l.expires_at,
            max_downloads: l.max_downloads,
            downloads: l.downloads,
            created_at: l.created_at,
        }
    }
}

/// The answer to creating a link: where it is, and its token (never shown again).
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkCreated {
    /// Absolute URL of `GET /v1/links/{token}`.
    pub url: String,
    /// The web app's page for the link (`/l/{token}`): what a person opens in a browser.
    pub page_url: String,
    pub token: String,
    #[serde(flatten)]
    pub link: LinkView,
}

/// What anyone holding the token sees (API.md §12).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicLinkView {
    pub name: String,
    pub size: i64,
    pub content_type: Option<String>,
    pub password_required: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

fn no_link() -> AppError {
    AppError::NotFound("link".into())
}

impl DriveService {
    /// Creates a public link to a ready file (owner only), audited as `link.created`.
    pub async fn create_link(
        &self,
        ctx: &AuthContext,
        id: FileId,
        req: NewLinkRequest,
    ) -> AppResult<LinkCreated> {
        let now = Timestamp::now();
        if req.expires_at.is_some_and(|e| e <= now) {
            return Err(AppError::validation(
                "expires_at",
                "expires_at must be in the future",
            ));
        }
        if req
            .max_downloads
            .is_some_and(|n| !(1..=MAX_DOWNLOADS).contains(&n))
        {
            return Err(AppError::validation(
                "max_downloads",
                format!("max_downloads is 1 to {MAX_DOWNLOADS}"),
            ));
        }
        let password = match req.password.as_deref() {
            None => None,
            Some(p) => {
                let p = password::normalize(p);
                let n = p.chars().count();
                if !(MIN_LINK_PASSWORD_CHARS..=MAX_LINK_PASSWORD_CHARS).contains(&n) {
                    return Err(AppError::validation(
                        "password",
                        format!(
                            "a link password has {MIN_LINK_PASSWORD_CHARS} to {MAX_LINK_PASSWORD_CHARS} characters"
                        ),
                    ));
                }
                Some(p)
            }
        };
        let file = self.file_for(ctx, id, Access::Owner).await?;
        if file.is_folder {
            return Err(AppError::validation(
                "id",
                "links are to files, not folders",
            ));
        }
        if file.status != "ready" {
            return Err(AppError::conflict("the file's upload is not complete"));
        }
        let password_hash = match password {
            Some(p) => Some(self.d.hasher.hash(&p).await?),
            None => None,
        };
        let token = crypto::random_token();
        let row = self
            .d
            .db
            .links()
            .create(&NewLink {
                id: LinkId::new(),
                file: id,
                created_by: ctx.user_id,
                token_hash: &crypto::token_hash(&token),
                password_hash: password_hash.as_deref(),
                expires_at: req.expires_at,
                max_downloads: req.max_downloads,
                now,
            })
            .await?;
        self.d
            .audit(
                Some(ctx.user_id),
                "link.created",
                None,
                serde_json::json!({"file_id": id, "link_id": row.id,
                    "password_required": row.password_hash.is_some(),
                    "expires_at": row.expires_at, "max_downloads": row.max_downloads}),
            )
            .await;
        let base = self.d.cfg.public_url.trim_end_matches('/');
        Ok(LinkCreated {
            url: format!("{base}/v1/links/{token}"),
            page_url: format!("{base}/l/{token}"),
            token,
            link: row.into(),
        })
    }

    /// A file's links (owner only), oldest first.
    pub async fn links(
        &self,
        ctx: &AuthContext,
        id: FileId,
        after: Option<(Timestamp, LinkId)>,
        limit: i64,
    ) -> AppResult<Vec<LinkView>> {
        self.file_for(ctx, id, Access::Owner).await?;
        let rows = self.d.db.links().list(id, after, limit).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes a link (owner only): its token stops working at once.
    pub async fn revoke_link(&self, ctx: &AuthContext, id: FileId, link: LinkId) -> AppResult<()> {
        self.file_for(ctx, id, Access::Owner).await?;
        if !self.d.db.links().delete(id, link).await? {
            return Err(no_link());
        }
        Ok(())
    }

    /// A live link and its file: 404 alike for an unknown, expired or used-up token.
    async fn live_link(&self, token: &str, now: Timestamp) -> AppResult<(LinkRow, FileRow)> {
        // Tokens are base64url of 32 bytes; anything else cannot be one, and is not looked up.
        if token.len() != 43
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(no_link());
        }
        let link = self
            .d
            .db
            .links()
            .by_token_hash(&crypto::token_hash(token))
            .await?
            .ok_or_else(no_link)?;
        let live = link.expires_at.is_none_or(|e| e > now)
            && link.max_downloads.is_none_or(|m| link.downloads < m);
        if !live {
            return Err(no_link());
        }
        let file = self
            .d
            .db
            .drive()
            .file(link.file_id)
            .await?
            .filter(|f| f.status == "ready")
            .ok_or_else(no_link)?;
        Ok((link, file))
    }

    /// What a link shows before any password: the file's name, size and type.
    pub async fn link_info(&self, token: &str) -> AppResult<PublicLinkView> {
        let (link, file) = self.live_link(token, Timestamp::now()).await?;
        Ok(PublicLinkView {
            name: file.name,
            size: file.size,
            content_type: if file.encrypted {
                Some("application/octet-stream".into())
            } else {
                file.content_type
            },
            password_required: link.password_hash.is_some(),
            expires_at: link.expires_at,
        })
    }

    /// A signed download URL through a link, counted against its `max_downloads` in one
    /// conditional statement. A missing or wrong password is 403; past the per-link attempt
    /// limit, 429 before the password is even checked.
    pub async fn link_download(
        &self,
        token: &str,
        password: Option<&str>,
    ) -> AppResult<DownloadLink> {
        let now = Timestamp::now();
        let (link, file) = self.live_link(token, now).await?;
        if let Some(hash) = link.password_hash.as_deref() {
            let Some(given) = password.filter(|p| p.chars().count() <= MAX_LINK_PASSWORD_CHARS)
            else {
                return Err(AppError::Forbidden("this link needs its password".into()));
            };
            self.d
                .within_limit(
                    "link_password",
                    &format!("link-password:{}", link.id),
                    self.d.cfg.link_password_attempts_per_minute,
                    Duration::from_secs(60),
                )
                .await?;
            if !self.d.hasher.verify(given, Some(hash)).await? {
                return Err(AppError::Forbidden("wrong password".into()));
            }
        }
        if !self.d.db.links().count_download(link.id, now).await? {
            return Err(no_link());
        }
        self.signed_download(file).await
    }
}
