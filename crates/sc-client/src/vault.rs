//! Local state encrypted at rest: one file, XChaCha20-Poly1305 under a key derived from a
//! passphrase with Argon2id (or a 32-byte key the caller supplies, e.g. from an OS keychain).
//!
//! Layout: `SCV1` | kdf (1 = Argon2id passphrase, 2 = raw key) | salt (16) | nonce (24) |
//! ciphertext. The whole header is the AEAD's associated data, so no part of it can be swapped.
//! Writes go to a temporary file in the same directory, fsynced, then renamed over the old one:
//! a crash leaves the old state or the new one, never half of either.

use crate::error::{ClientError, ClientResult};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"SCV1";
const KDF_ARGON2ID: u8 = 1;
const KDF_RAW: u8 = 2;
const HEADER: usize = 4 + 1 + 16 + 24;

/// How the vault's key is obtained.
#[derive(Clone)]
pub enum VaultKey {
    /// Derived with Argon2id (m = 19 MiB, t = 2, p = 1: OWASP's baseline) and a per-vault salt.
    Passphrase(String),
    /// Used as is.
    Raw([u8; 32]),
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey(..)")
    }
}

/// An open vault: the file and its derived key (derived once per open, not per save).
pub struct Vault {
    path: PathBuf,
    kdf: u8,
    salt: [u8; 16],
    key: [u8; 32],
}

fn derive(key: &VaultKey, salt: &[u8; 16]) -> ClientResult<(u8, [u8; 32])> {
    match key {
        VaultKey::Raw(k) => Ok((KDF_RAW, *k)),
        VaultKey::Passphrase(p) => {
            let params = Params::new(19 * 1024, 2, 1, Some(32))
                .map_err(|e| ClientError::Vault(e.to_string()))?;
            let mut out = [0u8; 32];
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(p.as_bytes(), salt, &mut out)
                .map_err(|e| ClientError::Vault(e.to_string()))?;
            Ok((KDF_ARGON2ID, out))
        }
    }
}

impl Vault {
    /// A new vault at `path` (nothing is written until the first `save`).
    pub fn create(path: impl Into<PathBuf>, key: &VaultKey) -> ClientResult<Self> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let (kdf, key) = derive(key, &salt)?;
        Ok(Vault {
            path: path.into(),
            kdf,
            salt,
            key,
        })
    }

    /// Opens an existing vault and returns its decrypted contents.
    pub fn open(path: impl Into<PathBuf>, key: &VaultKey) -> ClientResult<(Self, Vec<u8>)> {
        let path = path.into();
        let bytes = std::fs::read(&path)
            .map_err(|e| ClientError::Vault(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(ClientError::Vault("not a SecureConnect state file".into()));
        }
        let kdf = bytes[4];
        let expected = match key {
            VaultKey::Passphrase(_) => KDF_ARGON2ID,
            VaultKey::Raw(_) => KDF_RAW,
        };
        if kdf != expected {
            return Err(ClientError::Vault(
                "the state file was locked with another kind of key".into(),
            ));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[5..21]);
        let (_, k) = derive(key, &salt)?;
        let nonce = XNonce::from_slice(&bytes[21..HEADER]);
        let plain = XChaCha20Poly1305::new((&k).into())
            .decrypt(
                nonce,
                Payload {
                    msg: &bytes[HEADER..],
                    aad: &bytes[..HEADER],
                },
            )
            .map_err(|_| ClientError::Vault("wrong key, or the state file was altered".into()))?;
        Ok((
            Vault {
                path,
                kdf,
                salt,
                key: k,
            },
            plain,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encrypts `plain` under a fresh nonce and replaces the file atomically (mode 0600).
    pub fn save(&self, plain: &[u8]) -> ClientResult<()> {
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.push(self.kdf);
        header.extend_from_slice(&self.salt);
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        header.extend_from_slice(&nonce);
        let sealed = XChaCha20Poly1305::new((&self.key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &header,
                },
            )
            .map_err(|_| ClientError::Vault("encryption failed".into()))?;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| ClientError::Vault(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&header)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| ClientError::Vault(format!("cannot write the state: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let dir = std::env::temp_dir().join(format!("sc-vault-{}", uuid::Uuid::new_v4()));
        let path = dir.join("state.bin");
        let key = VaultKey::Passphrase("correct horse battery staple".into());
        let v = Vault::create(&path, &key).unwrap();
        v.save(b"secret state").unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(12).any(|w| w == b"secret state"));
        let (_, plain) = Vault::open(&path, &key).unwrap();
        assert_eq!(plain, b"secret state");
        // A wrong passphrase, a flipped byte of the header or of the body: all refused.
        assert!(Vault::open(&path, &VaultKey::Passphrase("wrong".into())).is_err());
        assert!(Vault::open(&path, &VaultKey::Raw([0; 32])).is_err());
        for at in [6, HEADER + 3] {
            let mut bad = raw.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(Vault::open(&path, &key).is_err(), "byte {at}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
