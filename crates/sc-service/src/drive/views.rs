//! What the drive's routes answer and take.

use super::*;
use sc_core::ids::UserId;

/// The File object of API.md §7.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileView {
    #[schema(value_type = uuid::Uuid)]
    pub id: FileId,
    /// Whose drive the file is in (its quota pays for it; only the owner shares it).
    #[schema(value_type = uuid::Uuid)]
    pub owner_id: UserId,
    pub name: String,
    pub size: i64,
    pub content_type: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<FileId>,
    pub is_folder: bool,
    /// "pending" until the upload completes, then "ready".
    pub status: String,
    pub version: i64,
    pub sha256: Option<String>,
    pub encrypted: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<FileRow> for FileView {
    fn from(f: FileRow) -> Self {
        Self {
            id: f.id,
            owner_id: f.owner_id,
            name: f.name,
            size: f.size,
            content_type: f.content_type,
            parent_id: f.parent_id,
            is_folder: f.is_folder,
            status: f.status,
            version: f.version,
            sha256: f.sha256,
            encrypted: f.encrypted,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// What `POST /v1/files/uploads` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicket {
    #[schema(value_type = uuid::Uuid)]
    pub file_id: FileId,
    pub upload_url: String,
    /// Always "PUT".
    pub method: &'static str,
    /// Headers the PUT must carry.
    pub headers: std::collections::BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// One entry of a file's version history.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i64,
    pub size: i64,
    pub sha256: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<VersionRow> for VersionView {
    fn from(v: VersionRow) -> Self {
        Self {
            version: v.version,
            size: v.size,
            sha256: v.sha256,
            created_at: v.created_at,
        }
    }
}

/// A share of a file or folder (API.md §7).
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ShareId,
    #[schema(value_type = uuid::Uuid)]
    pub file_id: FileId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<sc_core::ids::UserId>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub conversation_id: Option<sc_core::ids::ConversationId>,
    /// "read" or "write"
    pub permission: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<ShareRow> for ShareView {
    fn from(s: ShareRow) -> Self {
        Self {
            id: s.id,
            file_id: s.file_id,
            user_id: s.user_id,
            conversation_id: s.conversation_id,
            permission: s.permission,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadLink {
    pub download_url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub used: i64,
    pub reserved: i64,
    pub quota: i64,
    pub available: i64,
}

pub struct NewUploadRequest {
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub parent_id: Option<FileId>,
    pub encrypted: bool,
    /// The declared SHA-256 (64 lowercase hex digits), if any.
    pub sha256: Option<String>,
}

/// A rename and/or move; `parent_id: Some(None)` moves to the root.
pub struct FileChange {
    pub name: Option<String>,
    pub parent_id: Option<Option<FileId>>,
}
