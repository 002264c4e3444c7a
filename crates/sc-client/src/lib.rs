//! SecureConnect client SDK.
//!
//! [`Api`] speaks the HTTP contract (API.md). [`E2eeClient`] is one device of a user in
//! end-to-end encrypted conversations: MLS (RFC 9420, openmls) with the ciphersuite
//! `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, the server as the Delivery Service that
//! orders commits and never sees a key, and local state encrypted at rest ([`Vault`]).
//! docs/e2ee.md describes the design and the threat model.

pub mod api;
pub mod bench;
mod device;
pub mod error;
mod groups;
mod messages;
mod provider;
pub mod realtime;
pub mod safety;
pub mod vault;

pub use api::Api;
pub use device::{CIPHERSUITE, E2eeClient, KEY_PACKAGES_LOW, KEY_PACKAGES_TARGET};
pub use error::{ClientError, ClientResult};
pub use messages::{AttachmentKey, Decrypted, Payload};
pub use vault::{Vault, VaultKey};
