//! The ETag hash of the web app's files, shared by build.rs (embedded files) and the server
//! (a bundle served from `web_dir`), so both give the same bytes the same tag.

/// FNV-1a 64: a strong validator (same bytes, same tag); not a security hash.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
