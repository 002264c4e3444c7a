//! Password policy (NIST 800-63B / ASVS V2.1) and Argon2id hashing on the blocking pool with a
//! bound on concurrent hashes, so a login storm queues instead of exhausting memory.

use argon2::{Algorithm, Argon2, Params, PasswordHash, Version, password_hash::SaltString};
use sc_core::{AppError, AppResult};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();

/// The bundled list (immutable data, built once).
fn common_passwords() -> &'static HashSet<&'static str> {
    COMMON.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// NFC-normalizes a password; no other change (no trimming, no truncation).
pub fn normalize(password: &str) -> String {
    password.nfc().collect()
}

/// Checks a new password against the policy. `field` names the JSON field in the error.
pub fn check_policy(field: &str, password: &str, username: &str, email: &str) -> AppResult<String> {
    let pw = normalize(password);
    let chars = pw.chars().count();
    let refuse = |reason: &str| Err(AppError::validation(field, reason));
    if chars < MIN_CHARS {
        return refuse("password must be at least 12 characters");
    }
    if chars > MAX_CHARS {
        return refuse("password must be at most 128 characters");
    }
    if pw.chars().any(|c| c == '\0') {
        return refuse("password must not contain NUL characters");
    }
    let lower = pw.to_lowercase();
    if is_common(&lower) {
        return refuse("password is too common");
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if (username.len() >= 3 && lower.contains(&username.to_lowercase()))
        || (local.len() >= 3 && lower.contains(&local))
    {
        return refuse("password must not contain your username or email");
    }
    if is_repetitive(&lower) {
        return refuse("password is too guessable (repeated characters)");
    }
    if is_keyboard_walk(&lower) {
        return refuse("password is too guessable (keyboard or alphabet sequence)");
    }
    Ok(pw)
}

/// In the list, or a listed password with up to six digits or symbols tacked on either end.
fn is_common(lower: &str) -> bool {
    let list = common_passwords();
    if list.contains(lower) {
        return true;
    }
    let core = lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    core.len() >= 4 && lower.len() - core.len() <= 6 && list.contains(core)
}

/// One character repeated, or a unit of up to 4 characters repeated ("abcabcabcabc").
fn is_repetitive(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (1..=4).any(|unit| {
        chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit])
    })
}

const WALK_ROWS: [&str; 6] = [
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
];

/// Every step goes to a neighbour on one keyboard row or the alphabet (either direction,
/// wrapping to the next row allowed): "qwertyuiopas", "1234567890ab", "zyxwvutsrqpo".
fn is_keyboard_walk(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let adjacent = |a: char, b: char| {
        WALK_ROWS.iter().any(|row| {
            let r: Vec<char> = row.chars().collect();
            r.windows(2)
                .any(|w| (w[0] == a && w[1] == b) || (w[0] == b && w[1] == a))
        })
    };
    let breaks = chars.windows(2).filter(|w| !adjacent(w[0], w[1])).count();
    // Allow the row changes of a walk across rows (e.g. "qwertyuiop" + "asdf").
    breaks <= 2 && chars.len() >= MIN_CHARS && breaks * 5 < chars.len()
}

/// Argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1).
#[derive(Clone)]
pub struct PasswordHasher {
    slots: Arc<Semaphore>,
    dummy: Arc<String>,
}

const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

thread_local! {
    /// Each hashing thread keeps its 19 MiB work area instead of allocating (and the kernel
    /// zeroing) a fresh one per hash.
    static WORK_AREA: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Raw Argon2id output for `password` and `salt` under `params`, using the thread's work area.
fn argon2_raw(password: &[u8], salt: &[u8], params: Params, out: &mut [u8]) -> Result<(), String> {
    let blocks = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        if area.len() < blocks {
            area.resize(blocks, argon2::Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut area[..blocks])
            .map_err(|e| e.to_string())
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for a new random salt.
pub fn hash_blocking(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let mut out = [0u8; 32];
    argon2_raw(password.as_bytes(), &salt, params(), &mut out)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let output = argon2::password_hash::Output::new(&out).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params()
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks a password against a PHC string, with the parameters stored in it.
fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if argon2_raw(password.as_bytes(), salt, params, &mut out).is_err() {
        return false;
    }
    // Output's equality is constant-time.
    argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> AppResult<Self> {
        // Unknown accounts are checked against this hash so they answer in the same time.
        let dummy =
            hash_blocking("dummy password for unknown accounts").map_err(AppError::internal)?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            dummy: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let _slot = self.slots.acquire().await.map_err(AppError::internal)?;
        let pw = password.to_string();
        tokio::task::spawn_blocking(move || hash_blocking(&pw))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is no account.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> AppResult<bool> {
        let _slot = self.slots.acquire().await.map_err(AppError::internal)?;
        let pw = normalize(password);
        let known = hash.is_some();
        let h = hash
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy.to_string());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&pw, &h))
            .await
            .map_err(AppError::internal)?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(pw: &str) -> bool {
        check_policy("password", pw, "alice", "alice@example.org").is_ok()
    }

    #[test]
    fn policy() {
        assert!(ok("correct horse battery staple"));
        assert!(ok("Ünïcödé pässwörd ✓"));
        assert!(!ok("short"));
        assert!(!ok(&"x".repeat(129)));
        assert!(ok(&"xy1"
            .repeat(40)
            .chars()
            .chain("z".chars())
            .collect::<String>()));
        assert!(!ok("aaaaaaaaaaaaaaa"));
        assert!(!ok("abcabcabcabcabc"));
        assert!(!ok("qwertyuiopasdf"));
        assert!(!ok("1234567890abcdef"));
        assert!(!ok("zyxwvutsrqponm"));
        assert!(!ok("alice-is-my-name-ok"));
        assert!(!ok("1qaz2wsx3edc")); // in the list
        assert!(!ok("password1234"));
        assert!(!ok("baseball12345"));
        assert!(ok("tangerine-violin-42"));
    }

    #[test]
    fn nfc_makes_equivalent_forms_equal() {
        assert_eq!(normalize("e\u{301}"), normalize("\u{e9}"));
    }

    #[test]
    fn list_is_large_enough() {
        assert!(common_passwords().len() >= 10_000);
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(2).unwrap();
        let hash = h.hash("tangerine-violin-42").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("tangerine-violin-42", Some(&hash)).await.unwrap());
        assert!(!h.verify("tangerine-violin-43", Some(&hash)).await.unwrap());
        assert!(
            !h.verify("dummy password for unknown accounts", None)
                .await
                .unwrap()
        );
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    /// Our hashes verify with the reference implementation and the other way round.
    #[tokio::test]
    async fn interoperates_with_the_argon2_crate() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let h = PasswordHasher::new(1).unwrap();
        let ours = h.hash("tangerine-violin-42").await.unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        assert!(
            reference
                .verify_password(b"tangerine-violin-42", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = reference
            .hash_password(b"tangerine-violin-42", &salt)
            .unwrap()
            .to_string();
        assert!(
            h.verify("tangerine-violin-42", Some(&theirs))
                .await
                .unwrap()
        );
        assert!(
            !h.verify("tangerine-violin-43", Some(&theirs))
                .await
                .unwrap()
        );
    }
}
