//! Types every SecureConnect crate shares: configuration, the error kinds that map onto the API
//! envelope, typed ids, timestamps and secret handling.

pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod ids;
#[cfg(test)]
mod proptests;
pub mod secret;
pub mod time;
pub mod trace;

pub use error::{AppError, AppResult};

/// Decodes a base64 (standard or URL-safe) secret into bytes.
pub fn secret_bytes(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let s = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .ok()
}
