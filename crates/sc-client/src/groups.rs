//! Encrypted conversations as MLS groups: creation, adding and removing members (all their
//! devices), commits posted by compare-and-swap on the epoch with retry on top of the winner,
//! catch-up in epoch order, welcomes, and rejoining through the latest group info.
//!
//! What openmls leaves to the application is checked here: every leaf that joins (added, in a
//! welcome, by external commit, or updated by a committer) must carry a credential naming a user
//! and a signature key that the server lists as a device of that user.

use crate::api::{ClaimedPackage, CommitUpload, Conversation, unb64};
use crate::device::{CIPHERSUITE, E2eeClient, user_of};
use crate::error::{ClientError, ClientResult};
use crate::provider::Provider;
use openmls::group::{CommitBuilder, Initial};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use std::collections::HashSet;
use uuid::Uuid;

/// Epochs whose secrets are kept, so messages sent just before a commit still decrypt after it.
const PAST_EPOCHS: usize = 16;
/// A commit that loses the race is rebuilt on top of the winner at most this often.
const COMMIT_ATTEMPTS: usize = 12;

fn not_in_group() -> ClientError {
    ClientError::Invalid("not in this conversation's group".into())
}

pub(crate) fn group_id(conversation: Uuid) -> GroupId {
    GroupId::from_slice(conversation.as_bytes())
}

pub(crate) fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(64, 1000))
        .build()
}

pub(crate) fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(64, 1000))
        .build()
}

fn serialize(m: &MlsMessageOut) -> ClientResult<Vec<u8>> {
    m.tls_serialize_detached().map_err(ClientError::mls)
}

pub(crate) fn parse_message(bytes: &[u8]) -> ClientResult<MlsMessageIn> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|_| ClientError::Protocol("not an MLS message".into()))
}

type Staged = (MlsMessageOut, Option<MlsMessageOut>, Option<MlsMessageOut>);

/// Builds and stages a commit with the proposals `edit` adds, with a group info (ratchet tree
/// and external public key inside, so anyone may rejoin from it).
fn stage<'a>(
    group: &'a mut MlsGroup,
    provider: &Provider,
    signer: &SignatureKeyPair,
    edit: impl FnOnce(CommitBuilder<'a, Initial>) -> CommitBuilder<'a, Initial>,
) -> ClientResult<Staged> {
    let bundle = edit(group.commit_builder())
        .load_psks(provider.storage())
        .map_err(ClientError::mls)?
        .create_group_info(true)
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(ClientError::mls)?
        .stage_commit(provider)
        .map_err(ClientError::mls)?;
    Ok(bundle.into_messages())
}

/// A commit built locally, waiting for the server's verdict.
struct Outgoing {
    commit: Vec<u8>,
    welcome: Option<(Vec<u8>, Vec<Uuid>)>,
    group_info: Option<Vec<u8>>,
}

impl E2eeClient {
    /// The group of a conversation, from memory or the local store.
    pub(crate) fn group(&mut self, conversation: Uuid) -> Option<&mut MlsGroup> {
        if !self.groups.contains_key(&conversation)
            && let Ok(Some(g)) = MlsGroup::load(self.provider_storage(), &group_id(conversation))
        {
            self.groups.insert(conversation, g);
        }
        self.groups.get_mut(&conversation)
    }

    fn provider_storage(&self) -> &openmls_rust_crypto::MemoryStorage {
        use openmls_traits::OpenMlsProvider as _;
        self.provider.storage()
    }

    /// The epoch this device is at in a conversation, if it is in its group.
    pub fn epoch(&mut self, conversation: Uuid) -> Option<u64> {
        self.group(conversation).map(|g| g.epoch().as_u64())
    }

    /// The (user, signature key) of every leaf of the group, as this device sees it.
    pub fn group_members(&mut self, conversation: Uuid) -> Vec<(Uuid, Vec<u8>)> {
        let Some(g) = self.group(conversation) else {
            return Vec::new();
        };
        g.members()
            .filter_map(|m| Some((user_of(&m.credential).ok()?, m.signature_key)))
            .collect()
    }

    /// Creates an encrypted conversation and its group with every device of every member
    /// (this user's other devices included).
    pub async fn create_conversation(
        &mut self,
        kind: &str,
        member_ids: &[Uuid],
        title: Option<&str>,
    ) -> ClientResult<Conversation> {
        let conv = self
            .api
            .create_conversation(kind, member_ids, title, true)
            .await?;
        if self.group(conv.id).is_none() {
            let group = MlsGroup::new_with_group_id(
                &self.provider,
                &self.signer,
                &create_config(),
                group_id(conv.id),
                self.credential_with_key(),
            )
            .map_err(ClientError::mls)?;
            self.groups.insert(conv.id, group);
        }
        let mut everyone: Vec<Uuid> = member_ids.to_vec();
        everyone.push(self.user.id);
        self.add_devices(conv.id, &everyone).await?;
        Ok(conv)
    }

    /// Adds users to an encrypted conversation: on the server first (so the welcome may go to
    /// their devices), then every device of theirs to the group.
    pub async fn add_members(&mut self, conversation: Uuid, user_ids: &[Uuid]) -> ClientResult<()> {
        self.api.add_members(conversation, user_ids).await?;
        self.add_devices(conversation, user_ids).await
    }

    /// Adds every device of `user_ids` that is not in the group yet (one commit).
    pub async fn add_devices(&mut self, conversation: Uuid, user_ids: &[Uuid]) -> ClientResult<()> {
        let claimed = self.api.claim(user_ids).await?;
        let mut packages: Vec<(Uuid, KeyPackage)> = Vec::new();
        for c in claimed {
            if c.device_id == self.device_id {
                continue;
            }
            match self.verify_claimed(&c).await {
                Ok(kp) => packages.push((c.device_id, kp)),
                Err(ClientError::Untrusted(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        self.device_cache.clear();
        if packages.is_empty() {
            return Ok(());
        }
        self.commit_with_retry(conversation, |client| {
            let present: HashSet<Vec<u8>> = client
                .leaves(conversation)?
                .into_iter()
                .map(|m| m.signature_key)
                .collect();
            let fresh: Vec<(Uuid, KeyPackage)> = packages
                .iter()
                .filter(|(_, kp)| !present.contains(kp.leaf_node().signature_key().as_slice()))
                .cloned()
                .collect();
            if fresh.is_empty() {
                return Ok(None);
            }
            let to = fresh.iter().map(|(d, _)| *d).collect();
            client
                .stage_commit(conversation, to, |b| {
                    b.propose_adds(fresh.into_iter().map(|(_, kp)| kp))
                })
                .map(Some)
        })
        .await
    }

    /// Removes a user from an encrypted conversation: every leaf of theirs leaves the group in
    /// one commit (so nothing sent afterwards is readable by them), then the server membership.
    pub async fn remove_member(&mut self, conversation: Uuid, user_id: Uuid) -> ClientResult<()> {
        self.remove_leaves(conversation, |uid, _| uid == user_id)
            .await?;
        self.api.remove_member(conversation, user_id).await
    }

    /// A self-update commit: this device's leaf gets fresh keys, so a compromise of its old
    /// keys stops exposing what is sent afterwards (post-compromise security).
    pub async fn rotate_keys(&mut self, conversation: Uuid) -> ClientResult<()> {
        self.commit_with_retry(conversation, |client| {
            client
                .stage_commit(conversation, Vec::new(), |b| b.force_self_update(true))
                .map(Some)
        })
        .await
    }

    async fn remove_leaves(
        &mut self,
        conversation: Uuid,
        doomed: impl Fn(Uuid, &[u8]) -> bool,
    ) -> ClientResult<()> {
        self.commit_with_retry(conversation, |client| {
            let own = client.signer.public().to_vec();
            let leaves: Vec<LeafNodeIndex> = client
                .leaves(conversation)?
                .into_iter()
                .filter(|m| m.signature_key != own)
                .filter(|m| user_of(&m.credential).is_ok_and(|u| doomed(u, &m.signature_key)))
                .map(|m| m.index)
                .collect();
            if leaves.is_empty() {
                return Ok(None);
            }
            client
                .stage_commit(conversation, Vec::new(), |b| b.propose_removals(leaves))
                .map(Some)
        })
        .await
    }

    /// Every leaf of the conversation's group.
    fn leaves(&mut self, conversation: Uuid) -> ClientResult<Vec<Member>> {
        Ok(self
            .group(conversation)
            .ok_or_else(not_in_group)?
            .members()
            .collect())
    }

    /// Stages a commit on the conversation's group with the proposals `edit` adds; its welcome,
    /// if any, goes to `welcome_to`.
    fn stage_commit(
        &mut self,
        conversation: Uuid,
        welcome_to: Vec<Uuid>,
        edit: impl FnOnce(CommitBuilder<'_, Initial>) -> CommitBuilder<'_, Initial>,
    ) -> ClientResult<Outgoing> {
        self.group(conversation);
        let group = self
            .groups
            .get_mut(&conversation)
            .ok_or_else(not_in_group)?;
        let (commit, welcome, info) = stage(group, &self.provider, &self.signer, edit)?;
        Ok(Outgoing {
            commit: serialize(&commit)?,
            welcome: match welcome {
                Some(w) => Some((serialize(&w)?, welcome_to)),
                None => None,
            },
            group_info: info.as_ref().map(serialize).transpose()?,
        })
    }

    /// Builds a commit on the current epoch and posts it; when another device's commit won the
    /// epoch (409), the pending one is dropped, the winner processed, and the commit rebuilt.
    async fn commit_with_retry(
        &mut self,
        conversation: Uuid,
        build: impl Fn(&mut Self) -> ClientResult<Option<Outgoing>>,
    ) -> ClientResult<()> {
        for _ in 0..COMMIT_ATTEMPTS {
            self.catch_up_commits(conversation).await?;
            let Some(out) = build(self)? else {
                return Ok(());
            };
            let epoch = self.epoch(conversation).ok_or_else(not_in_group)?;
            let upload = CommitUpload {
                epoch,
                commit: &out.commit,
                welcome: out
                    .welcome
                    .as_ref()
                    .map(|(w, to)| (w.as_slice(), to.as_slice())),
                group_info: out.group_info.as_deref(),
            };
            let result = self.api.post_commit(conversation, upload).await;
            let storage_ok;
            {
                let provider = &self.provider;
                let group = self
                    .groups
                    .get_mut(&conversation)
                    .ok_or_else(|| ClientError::Invalid("group vanished".into()))?;
                storage_ok = match &result {
                    Ok(_) => group
                        .merge_pending_commit(provider)
                        .map_err(ClientError::mls),
                    Err(_) => group
                        .clear_pending_commit(openmls_traits::OpenMlsProvider::storage(provider))
                        .map_err(ClientError::mls),
                };
            }
            storage_ok?;
            self.save()?;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.status() == Some(409) => {
                    self.commit_conflicts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Protocol(
            "the conversation's epoch kept moving; gave up committing".into(),
        ))
    }

    async fn verify_claimed(&mut self, c: &ClaimedPackage) -> ClientResult<KeyPackage> {
        let bytes = unb64(&c.key_package)?;
        let kp = KeyPackageIn::tls_deserialize_exact(bytes.as_slice())
            .map_err(|_| ClientError::Untrusted("unreadable key package".into()))?
            .validate(
                openmls_traits::OpenMlsProvider::crypto(&self.provider),
                ProtocolVersion::Mls10,
            )
            .map_err(|e| ClientError::Untrusted(format!("invalid key package: {e:?}")))?;
        if kp.ciphersuite() != CIPHERSUITE {
            return Err(ClientError::Untrusted(
                "key package of another ciphersuite".into(),
            ));
        }
        let leaf = kp.leaf_node();
        if user_of(leaf.credential())? != c.user_id {
            return Err(ClientError::Untrusted(
                "the key package names another user".into(),
            ));
        }
        let key = crate::api::b64(leaf.signature_key().as_slice());
        let devices = self.devices_of(c.user_id).await?;
        if !devices
            .iter()
            .any(|d| d.device_id == c.device_id && d.signature_key == key)
        {
            return Err(ClientError::Untrusted(
                "the key package is not signed by the device it was claimed for".into(),
            ));
        }
        Ok(kp)
    }

    /// Is this (user, signature key) a device the server lists for that user?
    pub(crate) async fn is_listed_device(
        &mut self,
        credential: &Credential,
        signature_key: &[u8],
    ) -> ClientResult<Uuid> {
        let user = user_of(credential)?;
        let key = crate::api::b64(signature_key);
        if self
            .devices_of(user)
            .await?
            .iter()
            .any(|d| d.signature_key == key)
        {
            Ok(user)
        } else {
            Err(ClientError::Untrusted(format!(
                "a leaf of user {user} has a key that is not one of their devices"
            )))
        }
    }

    /// Processes every commit the server has above this device's epoch, in order. A device that
    /// cannot follow (too far behind, or removed and re-added) rejoins from the group info.
    pub async fn catch_up_commits(&mut self, conversation: Uuid) -> ClientResult<()> {
        let Some(epoch) = self.epoch(conversation) else {
            return Ok(());
        };
        let commits = self.api.commits_since(conversation, epoch).await?;
        let last = commits.last().map(|c| c.epoch);
        for item in commits {
            let current = self.epoch(conversation).unwrap_or(0);
            if item.epoch <= current {
                continue;
            }
            if item.epoch != current + 1 {
                return self.rejoin(conversation).await;
            }
            let historical = Some(item.epoch) != last;
            match self
                .process_commit(conversation, &unb64(&item.commit)?, historical)
                .await
            {
                Ok(()) => {}
                Err(e @ ClientError::Untrusted(_)) => return Err(e),
                Err(_) => return self.rejoin(conversation).await,
            }
        }
        self.device_cache.clear();
        self.save()
    }

    async fn process_commit(
        &mut self,
        conversation: Uuid,
        bytes: &[u8],
        historical: bool,
    ) -> ClientResult<()> {
        let message = parse_message(bytes)?
            .try_into_protocol_message()
            .map_err(|_| ClientError::Protocol("a commit that is not a protocol message".into()))?;
        let processed = {
            let provider = &self.provider;
            let group = self
                .groups
                .get_mut(&conversation)
                .ok_or_else(|| ClientError::Invalid("not in this group".into()))?;
            group
                .process_message(provider, message)
                .map_err(ClientError::mls)?
        };
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err(ClientError::Protocol("expected a commit".into()));
        };
        // Leaves that join or change in this commit must be listed devices of their user. An
        // old commit replayed during catch-up may name a device that has since been removed
        // (the device list only knows the present); it is accepted when a later commit exists.
        let identity = |leaf: &LeafNode| {
            (
                leaf.credential().clone(),
                leaf.signature_key().as_slice().to_vec(),
            )
        };
        let joining: Vec<(Credential, Vec<u8>)> = staged
            .add_proposals()
            .map(|p| identity(p.add_proposal().key_package().leaf_node()))
            .chain(staged.update_path_leaf_node().map(identity))
            .collect();
        for (credential, key) in &joining {
            match self.is_listed_device(credential, key).await {
                Ok(_) => {}
                Err(ClientError::Untrusted(_)) if historical => {}
                Err(e) => return Err(e),
            }
        }
        let provider = &self.provider;
        let group = self
            .groups
            .get_mut(&conversation)
            .ok_or_else(|| ClientError::Invalid("not in this group".into()))?;
        group
            .merge_staged_commit(provider, *staged)
            .map_err(ClientError::mls)?;
        if !group.is_active() {
            // Removed: the group stays in the store (old messages remain readable) but is
            // never followed again.
            self.groups.remove(&conversation);
        }
        Ok(())
    }

    /// Joins (again) from the latest group info with an external commit. The server only
    /// accepts it from a member; a leaf of this same device from before is removed by it.
    pub async fn rejoin(&mut self, conversation: Uuid) -> ClientResult<()> {
        for _ in 0..COMMIT_ATTEMPTS {
            let info = self.api.group_info(conversation).await?;
            let MlsMessageBodyIn::GroupInfo(gi) =
                parse_message(&unb64(&info.group_info)?)?.extract()
            else {
                return Err(ClientError::Protocol("not a group info".into()));
            };
            let (mut group, bundle) = MlsGroup::external_commit_builder()
                .with_config(join_config())
                .build_group(&self.provider, gi, self.credential_with_key())
                .map_err(ClientError::mls)?
                .load_psks(self.provider_storage())
                .map_err(ClientError::mls)?
                .build(
                    openmls_traits::OpenMlsProvider::rand(&self.provider),
                    openmls_traits::OpenMlsProvider::crypto(&self.provider),
                    &self.signer,
                    |_| true,
                )
                .map_err(ClientError::mls)?
                .finalize(&self.provider)
                .map_err(ClientError::mls)?;
            let (commit, _, new_info) = bundle.into_messages();
            let commit = serialize(&commit)?;
            let new_info = new_info.as_ref().map(serialize).transpose()?;
            let upload = CommitUpload {
                epoch: info.epoch,
                commit: &commit,
                welcome: None,
                group_info: new_info.as_deref(),
            };
            match self.api.post_commit(conversation, upload).await {
                Ok(_) => {
                    group
                        .merge_pending_commit(&self.provider)
                        .map_err(ClientError::mls)?;
                    self.groups.insert(conversation, group);
                    self.save()?;
                    return Ok(());
                }
                Err(e) if e.status() == Some(409) => {
                    let _ = group.delete(self.provider_storage());
                    continue;
                }
                Err(e) => {
                    let _ = group.delete(self.provider_storage());
                    return Err(e);
                }
            }
        }
        Err(ClientError::Protocol(
            "the conversation's epoch kept moving; gave up rejoining".into(),
        ))
    }

    /// Joins the groups this device was welcomed to (each welcome acknowledged once used), then
    /// follows their commits past the welcome's epoch. Returns the conversations joined.
    pub async fn accept_welcomes(&mut self) -> ClientResult<Vec<Uuid>> {
        let mut joined = Vec::new();
        for w in self.api.welcomes().await? {
            let result = self.join_from_welcome(w.conversation_id, &w.welcome).await;
            self.api.ack_welcome(w.id).await?;
            match result {
                Ok(()) => joined.push(w.conversation_id),
                // A welcome that no longer works (its key package is gone, or it is stale):
                // join from the group info instead.
                Err(ClientError::Mls(_)) | Err(ClientError::Protocol(_)) => {
                    self.rejoin(w.conversation_id).await?;
                    joined.push(w.conversation_id);
                }
                Err(e) => return Err(e),
            }
            self.catch_up_commits(w.conversation_id).await?;
        }
        if !joined.is_empty() {
            // Each welcome used one of this device's key packages.
            self.top_up_key_packages().await?;
        }
        self.save()?;
        Ok(joined)
    }

    async fn join_from_welcome(&mut self, conversation: Uuid, welcome: &str) -> ClientResult<()> {
        if self.group(conversation).is_some() {
            return Ok(());
        }
        let MlsMessageBodyIn::Welcome(welcome) = parse_message(&unb64(welcome)?)?.extract() else {
            return Err(ClientError::Protocol("not a welcome".into()));
        };
        let staged = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(ClientError::mls)?;
        if staged.group_context().group_id() != &group_id(conversation) {
            return Err(ClientError::Untrusted("a welcome for another group".into()));
        }
        let leaves: Vec<(Credential, Vec<u8>)> = staged
            .members()
            .map(|m| (m.credential, m.signature_key))
            .collect();
        let latest = self
            .api
            .group_info(conversation)
            .await
            .ok()
            .map(|g| g.epoch);
        let historical = latest.is_some_and(|e| e > staged.group_context().epoch().as_u64());
        for (credential, key) in &leaves {
            match self.is_listed_device(credential, key).await {
                Ok(_) => {}
                Err(ClientError::Untrusted(_)) if historical => {}
                Err(e) => return Err(e),
            }
        }
        let group = staged
            .into_group(&self.provider)
            .map_err(ClientError::mls)?;
        self.groups.insert(conversation, group);
        Ok(())
    }
}
