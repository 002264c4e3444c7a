//! What the MLS routes answer: MLS objects as standard base64.

use base64::{Engine, engine::general_purpose::STANDARD};
use sc_core::{
    ids::{ConversationId, DeviceId, UserId, WelcomeId},
    time::Timestamp,
};
use sc_db::mls::{Claimed, CommitRow, DeviceRow, WelcomeRow};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeviceView {
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    /// Base64 of the device's 32-byte signature key.
    pub signature_key: String,
    /// Base64 of the device's MLS credential.
    pub credential: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<DeviceRow> for DeviceView {
    fn from(d: DeviceRow) -> Self {
        Self {
            device_id: d.id,
            signature_key: STANDARD.encode(d.signature_key),
            credential: STANDARD.encode(d.credential),
            created_at: d.created_at,
        }
    }
}

/// `GET /v1/keys/packages/count`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PackageCountView {
    /// Regular key packages the device still holds.
    pub available: i64,
    /// Whether it has a last-resort package.
    pub last_resort: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClaimedView {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    #[schema(value_type = String, format = Uuid)]
    pub device_id: DeviceId,
    /// Base64 of the key package.
    pub key_package: String,
    /// The device's reusable last-resort package (it had no other left).
    pub last_resort: bool,
}

impl From<Claimed> for ClaimedView {
    fn from(c: Claimed) -> Self {
        Self {
            user_id: c.user_id,
            device_id: c.device_id,
            key_package: STANDARD.encode(c.package),
            last_resort: c.last_resort,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CommitView {
    /// The epoch this commit created.
    pub epoch: i64,
    /// Base64 of the commit.
    pub commit: String,
    #[schema(value_type = String, format = Uuid)]
    pub sender_device_id: DeviceId,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<CommitRow> for CommitView {
    fn from(c: CommitRow) -> Self {
        Self {
            epoch: c.epoch,
            commit: STANDARD.encode(c.commit_data),
            sender_device_id: c.sender_device_id,
            created_at: c.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GroupInfoView {
    pub epoch: i64,
    /// Base64 of the group info.
    pub group_info: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WelcomeView {
    #[schema(value_type = String, format = Uuid)]
    pub id: WelcomeId,
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The epoch the welcome joins at.
    pub epoch: i64,
    /// Base64 of the Welcome message.
    pub welcome: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<WelcomeRow> for WelcomeView {
    fn from(w: WelcomeRow) -> Self {
        Self {
            id: w.id,
            conversation_id: w.conversation_id,
            epoch: w.epoch,
            welcome: STANDARD.encode(w.welcome),
            created_at: w.created_at,
        }
    }
}
