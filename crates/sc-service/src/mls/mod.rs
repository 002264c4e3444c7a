//! The MLS (RFC 9420) Delivery Service of API.md §10: the server orders commits per
//! conversation by compare-and-swap on its epoch, hands each key package out once, and keeps
//! welcomes for the one device they are for. It never sees a key or a plaintext: every MLS
//! object is opaque bytes, checked only for size.

mod views;

pub use views::{
    ClaimedView, CommitView, DeviceView, GroupInfoView, PackageCountView, WelcomeView,
};

use crate::{AuthContext, Deps};
use base64::{Engine, engine::general_purpose::STANDARD};
use sc_core::{
    AppError, AppResult,
    ids::{ConversationId, DeviceId, UserId, WelcomeId},
    time::Timestamp,
};
use sc_db::mls::{CommitAppended, DeviceRegistered, DeviceRow, KeyPackagesAdded, NewCommit};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Decoded size limits (API.md §12).
pub const MAX_KEY_PACKAGE: usize = 4 * 1024;
pub const MAX_CREDENTIAL: usize = 1024;
pub const MAX_MLS_OBJECT: usize = 1024 * 1024;
/// Key packages per upload, and stored per device.
pub const MAX_PACKAGES_PER_UPLOAD: usize = 100;
pub const MAX_PACKAGES_PER_DEVICE: i64 = 500;
/// Devices one commit's welcome may go to.
pub const MAX_WELCOME_DEVICES: usize = 1000;
/// Users per claim.
pub const MAX_CLAIM_USERS: usize = 100;
/// Opaque MLS bytes from a base64 field: malformed → 400, over `max` decoded bytes → 413.
pub struct MlsBytes(Vec<u8>);

impl MlsBytes {
    pub fn parse(field: &str, b64: &str, max: usize) -> AppResult<Self> {
        // Base64 of `max` bytes is at most 4/3 of it: refuse longer text before decoding.
        if b64.len() > max.div_ceil(3) * 4 + 4 {
            return Err(AppError::PayloadTooLarge(format!(
                "{field} exceeds {max} bytes"
            )));
        }
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| AppError::validation(field, "standard base64"))?;
        if bytes.is_empty() {
            return Err(AppError::validation(field, "must not be empty"));
        }
        if bytes.len() > max {
            return Err(AppError::PayloadTooLarge(format!(
                "{field} exceeds {max} bytes"
            )));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// A commit as a client sends it, parsed.
pub struct CommitRequest {
    pub epoch: i64,
    pub commit: MlsBytes,
    pub welcome: Option<(MlsBytes, Vec<DeviceId>)>,
    pub group_info: Option<MlsBytes>,
}

#[derive(Clone)]
pub struct MlsService {
    d: Arc<Deps>,
}

impl MlsService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    /// Registers the session's device: 201 for a new one, 200 for the same key again, 409 for
    /// another key (a device's signature key never changes).
    pub async fn register_device(
        &self,
        ctx: &AuthContext,
        signature_key: &str,
        credential: &str,
    ) -> AppResult<(DeviceView, bool)> {
        // A key of the wrong size is malformed (400), not too large.
        let key = MlsBytes::parse("signature_key", signature_key, MAX_CREDENTIAL)?;
        if key.as_bytes().len() != 32 {
            return Err(AppError::validation("signature_key", "base64 of 32 bytes"));
        }
        let credential = MlsBytes::parse("credential", credential, MAX_CREDENTIAL)?;
        match self
            .d
            .db
            .mls()
            .register_device(
                ctx.session_id,
                ctx.user_id,
                key.as_bytes(),
                credential.as_bytes(),
                Timestamp::now(),
            )
            .await?
        {
            DeviceRegistered::Created(d) => Ok((d.into(), true)),
            DeviceRegistered::Existing(d) => Ok((d.into(), false)),
            DeviceRegistered::Conflict => Err(AppError::conflict(
                "this session's device has another signature key",
            )),
        }
    }

    /// A user's devices (any signed-in user may look: clients verify credentials against it).
    pub async fn devices_of(
        &self,
        user: UserId,
        after: Option<DeviceId>,
        limit: i64,
    ) -> AppResult<Vec<DeviceView>> {
        if self.d.db.users().profile(user).await?.is_none() {
            return Err(AppError::NotFound("user".into()));
        }
        let rows = self
            .d
            .db
            .mls()
            .devices_of(user, after, limit, Timestamp::now())
            .await?;
        Ok(rows.into_iter().map(DeviceView::from).collect())
    }

    /// Stores key packages for the caller's device; how many regular ones it then holds.
    pub async fn add_key_packages(
        &self,
        ctx: &AuthContext,
        packages: &[String],
        last_resort: Option<&str>,
    ) -> AppResult<i64> {
        if packages.len() > MAX_PACKAGES_PER_UPLOAD {
            return Err(AppError::validation(
                "key_packages",
                format!("at most {MAX_PACKAGES_PER_UPLOAD} per request"),
            ));
        }
        if packages.is_empty() && last_resort.is_none() {
            return Err(AppError::validation(
                "key_packages",
                "send key packages or a last-resort one",
            ));
        }
        let device = self.my_device(ctx).await?;
        let parsed = packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                MlsBytes::parse(&format!("key_packages[{i}]"), p, MAX_KEY_PACKAGE)
                    .map(MlsBytes::into_vec)
            })
            .collect::<AppResult<Vec<_>>>()?;
        let last_resort = last_resort
            .map(|p| MlsBytes::parse("last_resort", p, MAX_KEY_PACKAGE))
            .transpose()?;
        let added = self
            .d
            .db
            .mls()
            .add_key_packages(
                device.id,
                &parsed,
                last_resort.as_ref().map(MlsBytes::as_bytes),
                MAX_PACKAGES_PER_DEVICE,
                Timestamp::now(),
            )
            .await?;
        match added {
            KeyPackagesAdded::Held(n) => Ok(n),
            KeyPackagesAdded::OverLimit => Err(AppError::LimitReached(format!(
                "a device holds at most {MAX_PACKAGES_PER_DEVICE} key packages"
            ))),
            // The session ended during the upload, and its device with it: as for a session
            // without a device.
            KeyPackagesAdded::DeviceGone => Err(AppError::conflict(
                "this session has no device any more: PUT /v1/devices/me first",
            )),
        }
    }

    pub async fn package_count(&self, ctx: &AuthContext) -> AppResult<PackageCountView> {
        let device = self.my_device(ctx).await?;
        let (available, last_resort) = self.d.db.mls().package_count(device.id).await?;
        Ok(PackageCountView {
            available,
            last_resort,
        })
    }

    /// One key package per device of each user (each regular one handed out once).
    pub async fn claim(&self, ctx: &AuthContext, users: &[UserId]) -> AppResult<Vec<ClaimedView>> {
        if users.is_empty() || users.len() > MAX_CLAIM_USERS {
            return Err(AppError::validation(
                "user_ids",
                format!("1 to {MAX_CLAIM_USERS} users"),
            ));
        }
        self.d
            .within_limit(
                "mls_claim",
                &format!("mls_claim:{}", ctx.user_id),
                self.d.cfg.mls_claims_per_user_per_minute,
                Duration::from_secs(60),
            )
            .await?;
        let mut unique = users.to_vec();
        unique.sort();
        unique.dedup();
        let claimed = self.d.db.mls().claim(&unique, Timestamp::now()).await?;
        Ok(claimed.into_iter().map(ClaimedView::from).collect())
    }

    /// Appends a commit when `epoch` is the conversation's current one (else 409 with
    /// `details.current_epoch`), stores its group info and welcomes, and tells the members'
    /// sockets (`mls.commit`) and each welcomed device's socket (`mls.welcome`).
    pub async fn commit(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
        mut req: CommitRequest,
    ) -> AppResult<i64> {
        // A device named twice gets one welcome.
        if let Some((_, to)) = &mut req.welcome {
            to.sort();
            to.dedup();
        }
        let members = self.encrypted_membership(ctx, conversation).await?;
        let device = self.my_device(ctx).await?;
        if req.epoch < 0 {
            return Err(AppError::validation("epoch", "must not be negative"));
        }
        let welcomed = match &req.welcome {
            Some((_, to)) => {
                if to.len() > MAX_WELCOME_DEVICES {
                    return Err(AppError::validation(
                        "welcome_to",
                        format!("at most {MAX_WELCOME_DEVICES} devices"),
                    ));
                }
                // Only devices of the conversation's members (added before the commit).
                let found = self.d.db.mls().devices_by_id(to, Timestamp::now()).await?;
                if found.len() != to.len() || found.iter().any(|d| !members.contains(&d.user_id)) {
                    return Err(AppError::validation(
                        "welcome_to",
                        "every device must be a current device of a member",
                    ));
                }
                found
            }
            None => Vec::new(),
        };
        let now = Timestamp::now();
        let outcome = self
            .d
            .db
            .mls()
            .append_commit(&NewCommit {
                conversation,
                epoch: req.epoch,
                sender: device.id,
                commit: req.commit.as_bytes(),
                group_info: req.group_info.as_ref().map(MlsBytes::as_bytes),
                welcome: req
                    .welcome
                    .as_ref()
                    .map(|(w, to)| (w.as_bytes(), to.as_slice())),
                now,
            })
            .await?;
        let (epoch, welcomes) = match outcome {
            CommitAppended::Accepted { epoch, welcomes } => (epoch, welcomes),
            CommitAppended::Stale { current_epoch } => {
                return Err(AppError::Conflict {
                    message: "the conversation is at another epoch: process its commits first"
                        .into(),
                    details: Some(json!({ "current_epoch": current_epoch })),
                });
            }
        };
        self.d
            .emit(
                members,
                "mls.commit",
                &json!({"conversation_id": conversation, "epoch": epoch, "sender_device_id": device.id}),
            )
            .await;
        for (id, to) in welcomes {
            if let Some(d) = welcomed.iter().find(|d| d.id == to) {
                self.d
                    .emit_to_sessions(
                        vec![(d.user_id, d.session_id)],
                        "mls.welcome",
                        &json!({"id": id, "conversation_id": conversation, "epoch": epoch}),
                    )
                    .await;
            }
        }
        Ok(epoch)
    }

    /// Commits that created epochs above `since`, oldest first (catch-up).
    pub async fn commits_since(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
        since: i64,
        limit: i64,
    ) -> AppResult<Vec<CommitView>> {
        self.encrypted_membership(ctx, conversation).await?;
        let rows = self
            .d
            .db
            .mls()
            .commits_since(conversation, since, limit)
            .await?;
        Ok(rows.into_iter().map(CommitView::from).collect())
    }

    pub async fn group_info(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
    ) -> AppResult<GroupInfoView> {
        self.encrypted_membership(ctx, conversation).await?;
        let (epoch, info) = self
            .d
            .db
            .mls()
            .group_info(conversation)
            .await?
            .ok_or_else(|| AppError::NotFound("group info".into()))?;
        Ok(GroupInfoView {
            epoch,
            group_info: STANDARD.encode(info),
        })
    }

    /// The caller's device's pending welcomes.
    pub async fn welcomes(
        &self,
        ctx: &AuthContext,
        after: Option<WelcomeId>,
        limit: i64,
    ) -> AppResult<Vec<WelcomeView>> {
        let device = self.my_device(ctx).await?;
        let rows = self.d.db.mls().welcomes(device.id, after, limit).await?;
        Ok(rows.into_iter().map(WelcomeView::from).collect())
    }

    pub async fn ack_welcome(&self, ctx: &AuthContext, id: WelcomeId) -> AppResult<()> {
        let device = self.my_device(ctx).await?;
        if !self.d.db.mls().ack_welcome(device.id, id).await? {
            return Err(AppError::NotFound("welcome".into()));
        }
        Ok(())
    }

    /// The session's device; 409 while it has none (API.md §12).
    async fn my_device(&self, ctx: &AuthContext) -> AppResult<DeviceRow> {
        self.d
            .db
            .mls()
            .device_of_session(ctx.session_id)
            .await?
            .ok_or_else(|| {
                AppError::conflict("this session has no device yet: PUT /v1/devices/me first")
            })
    }

    /// The members of an encrypted conversation the caller belongs to: 404 for non-members,
    /// 400 for a plain conversation.
    async fn encrypted_membership(
        &self,
        ctx: &AuthContext,
        conversation: ConversationId,
    ) -> AppResult<Vec<UserId>> {
        let access = self
            .d
            .db
            .chat()
            .access(conversation)
            .await?
            .filter(|a| a.members.contains(&ctx.user_id))
            .ok_or_else(|| AppError::NotFound("conversation".into()))?;
        if !access.encrypted {
            return Err(AppError::validation(
                "conversation",
                "MLS is only for encrypted conversations",
            ));
        }
        Ok(access.members.into_iter().collect())
    }
}
