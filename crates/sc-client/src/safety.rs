//! Safety numbers: a fingerprint of a user's device keys, compared out of band (read aloud, or
//! side by side) to detect a server that hands out keys that are not the user's.
//!
//! A user's fingerprint is SHA-256 iterated 1,024 times over a domain label, the user id and
//! the sorted signature keys of their devices, shown as 30 digits; a pair's safety number is
//! both fingerprints in user-id order, so both sides see the same 60 digits.

use crate::api::unb64;
use crate::device::E2eeClient;
use crate::error::ClientResult;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const LABEL: &[u8] = b"SecureConnect safety number v1";
const ITERATIONS: usize = 1024;

/// 30 digits in 6 groups of 5 for one user's set of device keys.
pub fn fingerprint(user_id: Uuid, signature_keys: &[Vec<u8>]) -> String {
    let mut keys: Vec<&Vec<u8>> = signature_keys.iter().collect();
    keys.sort();
    keys.dedup();
    let mut h = Sha256::new();
    h.update(LABEL);
    h.update(user_id.as_bytes());
    for k in keys {
        h.update((k.len() as u32).to_be_bytes());
        h.update(k);
    }
    let mut digest = h.finalize();
    for _ in 0..ITERATIONS {
        let mut h = Sha256::new();
        h.update(digest);
        h.update(user_id.as_bytes());
        digest = h.finalize();
    }
    digest[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The safety number of two users: both fingerprints, ordered by user id.
pub fn pair_number(a: (Uuid, &str), b: (Uuid, &str)) -> String {
    let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    format!("{} {}", first.1, second.1)
}

impl E2eeClient {
    /// The fingerprint of a user's devices as the server lists them now.
    pub async fn fingerprint_of(&mut self, user_id: Uuid) -> ClientResult<String> {
        let devices = self.api.devices(user_id).await?;
        let keys = devices
            .iter()
            .map(|d| unb64(&d.signature_key))
            .collect::<ClientResult<Vec<_>>>()?;
        Ok(fingerprint(user_id, &keys))
    }

    /// The safety number between this user and another, to compare out of band.
    pub async fn safety_number(&mut self, other: Uuid) -> ClientResult<String> {
        let me = self.user.id;
        let mine = self.fingerprint_of(me).await?;
        let theirs = self.fingerprint_of(other).await?;
        Ok(pair_number((me, &mine), (other, &theirs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_keys_not_their_order() {
        let u = Uuid::from_u128(7);
        let a = fingerprint(u, &[vec![1; 32], vec![2; 32]]);
        assert_eq!(a, fingerprint(u, &[vec![2; 32], vec![1; 32]]));
        assert_ne!(a, fingerprint(u, &[vec![1; 32], vec![3; 32]]));
        assert_ne!(
            a,
            fingerprint(Uuid::from_u128(8), &[vec![1; 32], vec![2; 32]])
        );
        assert_eq!(a.len(), 6 * 5 + 5);
        let v = Uuid::from_u128(9);
        let b = fingerprint(v, &[vec![4; 32]]);
        assert_eq!(pair_number((u, &a), (v, &b)), pair_number((v, &b), (u, &a)));
    }
}
