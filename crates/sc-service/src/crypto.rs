//! Token and secret primitives: access JWTs, opaque random tokens (stored only as SHA-256
//! hashes), TOTP (RFC 6238) and encryption of TOTP secrets at rest.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, Payload},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sc_core::{
    AppError, AppResult,
    ids::{SessionId, UserId},
    time::Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// 256 random bits, base64url: refresh tokens, reset and verification tokens, tickets.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// What is stored instead of a token.
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison of two byte strings.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub const ACCESS_TYPE: &str = "access";

/// Clock skew tolerated for `iat` and `nbf` in the future (API.md §12).
pub const FUTURE_SKEW_SECONDS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: UserId,
    pub sid: SessionId,
    pub jti: String,
    pub aud: String,
    pub iss: String,
    pub exp: i64,
    pub iat: i64,
    /// Not before; our tokens set it to `iat`, foreign ones may omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token type; only "access" is accepted as a bearer token.
    pub typ: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Tokens already verified, by the SHA-256 of the whole token: a hit proves the exact bytes
    /// were checked before, so only the expiry is left to check. Every request carries a token,
    /// and decoding one (base64, HMAC, JSON) is most of an authenticated read's own work.
    verified: Mutex<HashMap<[u8; 32], VerifiedAccess>>,
}

/// What a verified access token establishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedAccess {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// `exp`, in Unix seconds.
    pub expires_at: i64,
}

/// Verified tokens remembered at most; beyond it expired ones go, then all of them.
const MAX_VERIFIED_TOKENS: usize = 100_000;

/// Expiry leeway, as `jsonwebtoken` applies it.
const EXPIRY_LEEWAY_SECONDS: i64 = 5;

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        validation.leeway = EXPIRY_LEEWAY_SECONDS as u64;
        // `nbf` and `iat` are checked by `verify` against their own 30 s skew.
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.into(),
            audience: audience.into(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        now: Timestamp,
        ttl_seconds: u64,
    ) -> AppResult<String> {
        let claims = AccessClaims {
            sub: user,
            sid: session,
            jti: uuid::Uuid::now_v7().to_string(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            iat: now.unix_seconds(),
            nbf: Some(now.unix_seconds()),
            exp: now.unix_seconds() + ttl_seconds as i64,
            typ: ACCESS_TYPE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies signature, algorithm, expiry, audience, issuer and type, and refuses a token
    /// issued (`iat`) or valid only from (`nbf`) more than 30 s after `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<AccessClaims> {
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).ok()?;
        let c = data.claims;
        let horizon = now.unix_seconds() + FUTURE_SKEW_SECONDS;
        let in_time = c.iat <= horizon && c.nbf.is_none_or(|nbf| nbf <= horizon);
        (c.typ == ACCESS_TYPE && in_time).then_some(c)
    }

    /// [`Self::verify`], remembered: the same token presented again costs one hash and a map
    /// lookup until it expires.
    pub fn verify_access(&self, token: &str, now: Timestamp) -> Option<VerifiedAccess> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let live = |v: &VerifiedAccess| v.expires_at + EXPIRY_LEEWAY_SECONDS > now.unix_seconds();
        if let Some(v) = self.lock_verified().get(&key).copied() {
            return live(&v).then_some(v);
        }
        let c = self.verify(token, now)?;
        let v = VerifiedAccess {
            user_id: c.sub,
            session_id: c.sid,
            expires_at: c.exp,
        };
        let mut verified = self.lock_verified();
        if verified.len() >= MAX_VERIFIED_TOKENS {
            verified.retain(|_, v| live(v));
            if verified.len() >= MAX_VERIFIED_TOKENS {
                verified.clear();
            }
        }
        verified.insert(key, v);
        Some(v)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], VerifiedAccess>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Encrypts small secrets (TOTP seeds) at rest with ChaCha20-Poly1305; the owner's id is bound
/// as associated data so a ciphertext cannot be moved to another account.
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(key.into()),
        }
    }

    pub fn seal(&self, plaintext: &[u8], owner: UserId) -> AppResult<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: owner.0.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str, owner: UserId) -> AppResult<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| AppError::internal("bad sealed secret"))?;
        if raw.len() < 12 {
            return Err(AppError::internal("bad sealed secret"));
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ct,
                    aad: owner.0.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal("cannot decrypt secret (wrong data_key?)"))
    }
}

pub const TOTP_STEP: u64 = 30;

/// RFC 4226 HOTP with HMAC-SHA1 and 6 digits; RFC 6238 uses the 30-second step as counter.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// The TOTP code of a secret at a Unix time.
pub fn totp_code(secret: &[u8], unix_seconds: u64) -> String {
    hotp(secret, unix_seconds / TOTP_STEP)
}

/// RFC 4648 base32 without padding (the form authenticator apps take).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        } as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A new 160-bit TOTP secret with its base32 form and otpauth URI.
pub fn new_totp_secret(issuer: &str, account: &str) -> AppResult<(Vec<u8>, String, String)> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let b32 = base32(&secret);
    let uri = format!(
        "otpauth://totp/{}:{}?secret={b32}&issuer={}&algorithm=SHA1&digits=6&period={TOTP_STEP}",
        percent_encode(issuer),
        percent_encode(account),
        percent_encode(issuer)
    );
    Ok((secret, b32, uri))
}

/// The time step (within ±1 of now) whose code matches, if any.
pub fn totp_matching_step(secret: &[u8], code: &str, now: Timestamp) -> AppResult<Option<i64>> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let current = now.unix_seconds().max(0) as u64 / TOTP_STEP;
    for step in [current.saturating_sub(1), current, current + 1] {
        if constant_eq(hotp(secret, step).as_bytes(), code.as_bytes()) {
            return Ok(Some(step as i64));
        }
    }
    Ok(None)
}

/// Ten recovery codes like `k3m9q-x7v2p` (50 bits each) and their hashes.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let codes: Vec<String> = (0..10)
        .map(|_| {
            let s: String = (0..10)
                .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &s[..5], &s[5..])
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_code_hash(c)).collect();
    (codes, hashes)
}

pub fn recovery_code_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    token_hash(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_token_still_expires() {
        let keys = JwtKeys::new(&[7u8; 32], "iss", "aud");
        let (u, s) = (UserId::new(), SessionId::new());
        let now = Timestamp::now();
        let tok = keys.issue(u, s, now, 60).unwrap();
        let v = keys.verify_access(&tok, now).unwrap();
        assert_eq!((v.user_id, v.session_id), (u, s));
        assert_eq!(keys.verify_access(&tok, now), Some(v));
        let later = Timestamp::from_unix_seconds(now.unix_seconds() + 66);
        assert_eq!(keys.verify_access(&tok, later), None);
        // Another key never trusts what this one remembered.
        let other = JwtKeys::new(&[8u8; 32], "iss", "aud");
        assert_eq!(other.verify_access(&tok, now), None);
    }

    #[test]
    fn jwt_round_trip_and_rejections() {
        let keys = JwtKeys::new(&[7u8; 32], "iss", "aud");
        let (u, s) = (UserId::new(), SessionId::new());
        let tok = keys.issue(u, s, Timestamp::now(), 60).unwrap();
        let now = Timestamp::now();
        let c = keys.verify(&tok, now).unwrap();
        assert_eq!((c.sub, c.sid), (u, s));
        assert!(
            JwtKeys::new(&[8u8; 32], "iss", "aud")
                .verify(&tok, now)
                .is_none()
        );
        assert!(
            JwtKeys::new(&[7u8; 32], "iss", "other")
                .verify(&tok, now)
                .is_none()
        );
        let old = keys
            .issue(u, s, Timestamp::from_unix_seconds(1_000_000), 60)
            .unwrap();
        assert!(keys.verify(&old, now).is_none());
        // Issued in the future: fine within the 30 s skew, refused beyond it.
        let soon = Timestamp::from_unix_seconds(now.unix_seconds() + 20);
        let later = Timestamp::from_unix_seconds(now.unix_seconds() + 40);
        assert!(
            keys.verify(&keys.issue(u, s, soon, 60).unwrap(), now)
                .is_some()
        );
        assert!(
            keys.verify(&keys.issue(u, s, later, 60).unwrap(), now)
                .is_none()
        );
    }

    #[test]
    fn secret_box_binds_owner() {
        let b = SecretBox::new(&[1u8; 32]);
        let (a, other) = (UserId::new(), UserId::new());
        let sealed = b.seal(b"seed", a).unwrap();
        assert_eq!(b.open(&sealed, a).unwrap(), b"seed");
        assert!(b.open(&sealed, other).is_err());
    }

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", last 6 digits.
        let seed = b"12345678901234567890";
        assert_eq!(totp_code(seed, 59), "287082");
        assert_eq!(totp_code(seed, 1111111109), "081804");
        assert_eq!(totp_code(seed, 2000000000), "279037");
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
    }

    #[test]
    fn totp_window() {
        let secret = [3u8; 20];
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let code = totp_code(&secret, 1_800_000_000);
        assert_eq!(
            totp_matching_step(&secret, &code, now).unwrap(),
            Some(60_000_000)
        );
        let prev = totp_code(&secret, 1_800_000_000 - 30);
        assert_eq!(
            totp_matching_step(&secret, &prev, now).unwrap(),
            Some(59_999_999)
        );
        let old = totp_code(&secret, 1_800_000_000 - 90);
        assert_eq!(totp_matching_step(&secret, &old, now).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_unique_and_hash_normalized() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(recovery_code_hash(&codes[0].to_uppercase()), hashes[0]);
    }
}
