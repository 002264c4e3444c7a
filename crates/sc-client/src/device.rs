//! A signed-in device: its session, its MLS identity, its key packages and its encrypted local
//! state. Group operations live in `groups.rs`, messages in `messages.rs`.

use crate::api::{Api, Device, TokenPair, User, b64, unb64};
use crate::error::{ClientError, ClientResult};
use crate::messages::Decrypted;
use crate::provider::Provider;
use crate::vault::{Vault, VaultKey};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use uuid::Uuid;

/// The only ciphersuite this client speaks (issue: X25519, AES-128-GCM, SHA-256, Ed25519).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Key packages kept on the server: topped up to `TARGET` when fewer than `LOW` are left.
pub const KEY_PACKAGES_TARGET: usize = 50;
pub const KEY_PACKAGES_LOW: i64 = 20;

/// What is persisted (encrypted) between runs.
#[derive(Serialize, Deserialize)]
pub(crate) struct State {
    pub server: String,
    pub user_id: Uuid,
    pub username: String,
    pub device_id: Uuid,
    pub session_id: Uuid,
    pub refresh_token: Option<String>,
    pub signer: SignatureKeyPair,
    /// The openmls store, base64 key → base64 value.
    pub storage: Vec<(String, String)>,
    /// Plaintext of this device's own messages (MLS cannot decrypt one's own ciphertext).
    pub sent: HashMap<Uuid, String>,
    /// Per conversation: the highest message seq already decrypted.
    pub read_upto: HashMap<Uuid, i64>,
    /// Per conversation: what was decrypted (a message decrypts once: its key is then gone).
    #[serde(default)]
    pub history: HashMap<Uuid, Vec<Decrypted>>,
}

/// One device of one user, speaking to one server.
pub struct E2eeClient {
    pub(crate) api: Api,
    pub(crate) provider: Provider,
    pub(crate) signer: SignatureKeyPair,
    pub(crate) user: User,
    pub(crate) device_id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) sent: HashMap<Uuid, String>,
    pub(crate) read_upto: HashMap<Uuid, i64>,
    pub(crate) history: HashMap<Uuid, Vec<Decrypted>>,
    pub(crate) groups: HashMap<Uuid, MlsGroup>,
    /// Device lists fetched during one sync (trust checks), dropped after it.
    pub(crate) device_cache: HashMap<Uuid, Vec<Device>>,
    /// Commits of this device that lost their epoch to another device's and were rebuilt.
    pub(crate) commit_conflicts: u64,
    vault: Option<Vault>,
}

impl std::fmt::Debug for E2eeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2eeClient")
            .field("user", &self.user.username)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl E2eeClient {
    /// Signs in with a password, registers this session's device and its key packages, and
    /// (with `vault`) persists the state encrypted at `path`.
    pub async fn sign_in(
        server: &str,
        login: &str,
        password: &str,
        totp_code: Option<&str>,
        vault: Option<(PathBuf, VaultKey)>,
    ) -> ClientResult<Self> {
        let api = Api::new(server)?;
        let pair = api
            .login(login, password, totp_code, "secureconnect client")
            .await?;
        let vault = match vault {
            Some((path, key)) => Some(Vault::create(path, &key)?),
            None => None,
        };
        Self::register_device(api, pair, vault).await
    }

    /// Makes a device of a session that `api` already holds (after `login` or `register`).
    pub async fn register_device(
        api: Api,
        pair: TokenPair,
        vault: Option<Vault>,
    ) -> ClientResult<Self> {
        let signer =
            SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(ClientError::mls)?;
        // The signer lives in the state file, not in the openmls store: openmls is handed it
        // for every operation and never reads it back.
        let provider = Provider::default();
        let credential = credential_for(pair.user.id);
        let serialized = credential
            .tls_serialize_detached()
            .map_err(ClientError::mls)?;
        let device = api.put_device(signer.public(), &serialized).await?;
        let mut client = E2eeClient {
            api,
            provider,
            signer,
            user: pair.user,
            device_id: device.device_id,
            session_id: pair.session_id,
            sent: HashMap::new(),
            read_upto: HashMap::new(),
            history: HashMap::new(),
            groups: HashMap::new(),
            device_cache: HashMap::new(),
            commit_conflicts: 0,
            vault,
        };
        client.top_up_key_packages().await?;
        client.save()?;
        Ok(client)
    }

    /// Opens a saved device: decrypts the state, resumes the session (the refresh token rotates
    /// and is saved again).
    pub async fn open(path: impl Into<PathBuf>, key: &VaultKey) -> ClientResult<Self> {
        let (vault, plain) = Vault::open(path, key)?;
        let state: State = serde_json::from_slice(&plain)
            .map_err(|e| ClientError::Vault(format!("unreadable state: {e}")))?;
        let api = Api::new(&state.server)?;
        let refresh = state
            .refresh_token
            .clone()
            .ok_or_else(|| ClientError::Vault("the saved session has no refresh token".into()))?;
        let pair = api.resume(&refresh).await?;
        let entries = state
            .storage
            .iter()
            .map(|(k, v)| Ok((unb64(k)?, unb64(v)?)))
            .collect::<ClientResult<Vec<_>>>()
            .map_err(|_| ClientError::Vault("corrupt store".into()))?;
        let signer = state.signer;
        let client = E2eeClient {
            api,
            provider: Provider::restore(entries),
            signer,
            user: pair.user,
            device_id: state.device_id,
            session_id: state.session_id,
            sent: state.sent,
            read_upto: state.read_upto,
            history: state.history,
            groups: HashMap::new(),
            device_cache: HashMap::new(),
            commit_conflicts: 0,
            vault: Some(vault),
        };
        client.save()?;
        Ok(client)
    }

    /// Writes the encrypted state (no-op without a vault). Called after every change.
    pub fn save(&self) -> ClientResult<()> {
        let Some(vault) = &self.vault else {
            return Ok(());
        };
        let state = State {
            server: self.api.base_url().to_string(),
            user_id: self.user.id,
            username: self.user.username.clone(),
            device_id: self.device_id,
            session_id: self.session_id,
            refresh_token: self.api.refresh_token(),
            signer: self.signer.clone_pair()?,
            storage: self
                .provider
                .snapshot()
                .into_iter()
                .map(|(k, v)| (b64(&k), b64(&v)))
                .collect(),
            sent: self.sent.clone(),
            read_upto: self.read_upto.clone(),
            history: self.history.clone(),
        };
        let plain = serde_json::to_vec(&state).map_err(|e| ClientError::Vault(e.to_string()))?;
        vault.save(&plain)
    }

    pub fn api(&self) -> &Api {
        &self.api
    }
    pub fn user(&self) -> &User {
        &self.user
    }
    pub fn device_id(&self) -> Uuid {
        self.device_id
    }
    /// How often a commit of this device lost the race for its epoch and was rebuilt.
    pub fn commit_conflicts(&self) -> u64 {
        self.commit_conflicts
    }
    pub fn signature_key(&self) -> &[u8] {
        self.signer.public()
    }

    pub(crate) fn credential_with_key(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: credential_for(self.user.id),
            signature_key: self.signer.public().into(),
        }
    }

    /// Keeps at least `KEY_PACKAGES_LOW` packages on the server (refilled to the target) and a
    /// last-resort package, so others can always add this device.
    pub async fn top_up_key_packages(&mut self) -> ClientResult<i64> {
        let count = self.api.key_package_count().await?;
        if count.available >= KEY_PACKAGES_LOW && count.last_resort {
            return Ok(count.available);
        }
        let wanted =
            KEY_PACKAGES_TARGET.saturating_sub(usize::try_from(count.available).unwrap_or(0));
        let mut packages = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            packages.push(self.new_key_package(false)?);
        }
        let last_resort = if count.last_resort {
            None
        } else {
            Some(self.new_key_package(true)?)
        };
        let mut available = count.available;
        for (i, chunk) in packages.chunks(100).enumerate() {
            let lr = if i == 0 { last_resort.as_deref() } else { None };
            available = self.api.upload_key_packages(chunk, lr).await?;
        }
        if packages.is_empty()
            && let Some(lr) = &last_resort
        {
            available = self.api.upload_key_packages(&[], Some(lr)).await?;
        }
        self.save()?;
        Ok(available)
    }

    fn new_key_package(&self, last_resort: bool) -> ClientResult<Vec<u8>> {
        let mut builder = KeyPackage::builder();
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential_with_key(),
            )
            .map_err(ClientError::mls)?;
        bundle
            .key_package()
            .tls_serialize_detached()
            .map_err(ClientError::mls)
    }

    /// The server's device list of a user, once per sync.
    pub(crate) async fn devices_of(&mut self, user_id: Uuid) -> ClientResult<&[Device]> {
        if !self.device_cache.contains_key(&user_id) {
            let list = self.api.devices(user_id).await?;
            self.device_cache.insert(user_id, list);
        }
        Ok(self
            .device_cache
            .get(&user_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]))
    }

    /// Ends this device's session on the server (which deletes the device there) and forgets
    /// the local state's session.
    pub async fn sign_out(self) -> ClientResult<()> {
        self.api.logout().await
    }
}

trait ClonePair {
    fn clone_pair(&self) -> ClientResult<SignatureKeyPair>;
}

impl ClonePair for SignatureKeyPair {
    /// The pair has no `Clone`; a serde round trip copies it for the state file.
    fn clone_pair(&self) -> ClientResult<SignatureKeyPair> {
        let v = serde_json::to_value(self).map_err(|e| ClientError::Vault(e.to_string()))?;
        serde_json::from_value(v).map_err(|e| ClientError::Vault(e.to_string()))
    }
}

/// A device's MLS credential: the user id; the device is told apart by its signature key.
pub(crate) fn credential_for(user_id: Uuid) -> Credential {
    BasicCredential::new(user_id.to_string().into_bytes()).into()
}

/// The user id a credential names, if it is one of ours.
pub(crate) fn user_of(credential: &Credential) -> ClientResult<Uuid> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| ClientError::Untrusted("not a basic credential".into()))?;
    std::str::from_utf8(basic.identity())
        .ok()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ClientError::Untrusted("the credential does not name a user".into()))
}
