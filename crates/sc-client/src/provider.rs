//! The openmls provider: RustCrypto primitives and an in-memory store whose whole content is
//! snapshotted into the encrypted vault after every change.

use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use openmls_traits::OpenMlsProvider;
use std::collections::HashMap;

#[derive(Default)]
pub struct Provider {
    crypto: RustCrypto,
    storage: MemoryStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

impl Provider {
    /// Every stored key and value (group states, key package private keys, epoch secrets).
    pub fn snapshot(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let values = self
            .storage
            .values
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let mut entries: Vec<_> = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.sort();
        entries
    }

    pub fn restore(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let map: HashMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
        Provider {
            crypto: RustCrypto::default(),
            storage: MemoryStorage {
                values: std::sync::RwLock::new(map),
            },
        }
    }
}
