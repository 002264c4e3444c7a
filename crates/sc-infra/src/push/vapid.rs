//! VAPID (RFC 8292): the server identifies itself to push services with an ES256 JWT signed by
//! its long-lived P-256 key, whose public half the browser was given at subscribe time; a push
//! service refuses pushes to that subscription signed by any other key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::ece::{decode_b64url, random_secret_key};

/// How long a token is valid: RFC 8292 allows at most 24 hours; 12 leaves room for clock skew.
const TOKEN_LIFETIME: i64 = 12 * 3600;
/// A cached token is replaced once it has less than this left.
const REFRESH_MARGIN: i64 = 3600;
/// The most a verifier accepts between now and `exp` (RFC 8292 §2).
const MAX_LIFETIME: i64 = 24 * 3600;
/// The cache holds one token per push service origin; past this many it starts over, so a flood
/// of subscriptions on distinct hosts cannot grow it without bound.
const CACHE_LIMIT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    #[error("the VAPID private key is not base64url of a P-256 scalar")]
    InvalidKey,
    #[error("the Authorization header is not a vapid t=…, k=… header")]
    Header,
    #[error("the k parameter is not the expected public key")]
    WrongKey,
    #[error("the JWT is malformed")]
    Malformed,
    #[error("the JWT signature does not verify")]
    Signature,
    #[error("the JWT audience does not match")]
    Audience,
    #[error("the JWT has expired or lives longer than 24 hours")]
    Expiry,
}

/// The JWT claims of RFC 8292 §2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// The server's VAPID key pair, with a cache of signed tokens (one per push service origin) so
/// that a burst of pushes does not sign a fresh JWT for each.
pub struct VapidKey {
    signing: SigningKey,
    public_b64: String,
    cache: Mutex<HashMap<String, CachedToken>>,
}

#[derive(Clone)]
struct CachedToken {
    header: String,
    exp: i64,
}

impl VapidKey {
    /// A new random key pair (the server keeps it in its data dir, see [`Self::to_base64url`]).
    pub fn generate() -> Self {
        Self::from_signing(SigningKey::from(random_secret_key()))
    }

    /// The key from its stored form: base64url (padding optional) of the 32-byte private scalar.
    pub fn from_base64url(private_scalar: &str) -> Result<Self, VapidError> {
        let bytes = decode_b64url(private_scalar).ok_or(VapidError::InvalidKey)?;
        if bytes.len() != 32 {
            return Err(VapidError::InvalidKey);
        }
        let signing = SigningKey::from_slice(&bytes).map_err(|_| VapidError::InvalidKey)?;
        Ok(Self::from_signing(signing))
    }

    /// The stored form: base64url without padding of the 32-byte private scalar. A secret.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.to_bytes())
    }

    /// The `applicationServerKey` browsers subscribe with: base64url without padding of the
    /// 65-byte uncompressed public point.
    pub fn public_key_base64url(&self) -> &str {
        &self.public_b64
    }

    fn from_signing(signing: SigningKey) -> Self {
        let point = signing.verifying_key().to_encoded_point(false);
        let public_b64 = URL_SAFE_NO_PAD.encode(point.as_bytes());
        VapidKey {
            signing,
            public_b64,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The `Authorization` header for a push to `endpoint`: `vapid t=<JWT>, k=<public key>`,
    /// the JWT for the endpoint's origin, valid 12 hours, reused until 1 hour before it ends.
    pub fn authorization(&self, endpoint: &Url, subject: &str, now_unix: i64) -> String {
        let aud = endpoint.origin().ascii_serialization();
        let cache_key = format!("{aud} {subject}");
        if let Some(hit) = self.cached(&cache_key, now_unix) {
            return hit;
        }
        let claims = Claims {
            aud,
            exp: now_unix + TOKEN_LIFETIME,
            sub: Some(subject.to_owned()),
        };
        let jwt = es256_jwt(&self.signing, br#"{"typ":"JWT","alg":"ES256"}"#, &claims);
        let header = format!("vapid t={jwt}, k={}", self.public_b64);
        self.store(
            cache_key,
            CachedToken {
                header: header.clone(),
                exp: claims.exp,
            },
        );
        header
    }

    fn cached(&self, key: &str, now: i64) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let token = cache.get(key)?;
        // Also refuse a token from the future (the clock went back): its exp could then be
        // further ahead than a push service accepts.
        let fresh = now + REFRESH_MARGIN < token.exp && token.exp - now <= TOKEN_LIFETIME;
        fresh.then(|| token.header.clone())
    }

    fn store(&self, key: String, token: CachedToken) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, token);
    }
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_b64)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// A compact JWS signed with ES256: base64url(header) . base64url(claims) . base64url(r || s).
/// Shared with the APNs provider token; the header is given as JSON text because its member
/// order is fixed by convention, not by serde.
pub(crate) fn es256_jwt(key: &SigningKey, header_json: &[u8], claims: &impl Serialize) -> String {
    // Serializing plain strings and integers cannot fail.
    let claims_json = serde_json::to_vec(claims).unwrap_or_default();
    let mut jwt = URL_SAFE_NO_PAD.encode(header_json);
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(claims_json));
    let signature: Signature = key.sign(jwt.as_bytes());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    jwt
}

/// Checks a VAPID `Authorization` header as a push service does (the test suite's receiver
/// uses it): `k` is the expected key, the ES256 signature verifies with it, `aud` is the
/// expected origin and `exp` lies in the future but at most 24 hours ahead.
pub fn verify_authorization(
    header: &str,
    public_key_b64url: &str,
    expected_aud: &str,
    now_unix: i64,
) -> Result<Claims, VapidError> {
    let (token, key) = parse_header(header)?;
    let key_bytes = decode_b64url(key).ok_or(VapidError::WrongKey)?;
    let expected_bytes = decode_b64url(public_key_b64url).ok_or(VapidError::WrongKey)?;
    if key_bytes != expected_bytes {
        return Err(VapidError::WrongKey);
    }
    let verifying = VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| VapidError::WrongKey)?;
    let claims = verify_es256(token, &verifying)?;
    if claims.aud != expected_aud {
        return Err(VapidError::Audience);
    }
    if claims.exp <= now_unix || claims.exp > now_unix + MAX_LIFETIME {
        return Err(VapidError::Expiry);
    }
    Ok(claims)
}

/// Splits `vapid t=<jwt>, k=<key>` (parameters in any order, scheme case-insensitive).
fn parse_header(header: &str) -> Result<(&str, &str), VapidError> {
    let (scheme, params) = header.trim().split_once(' ').ok_or(VapidError::Header)?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(VapidError::Header);
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", value)) => token = Some(value.trim()),
            Some(("k", value)) => key = Some(value.trim()),
            _ => return Err(VapidError::Header),
        }
    }
    token.zip(key).ok_or(VapidError::Header)
}

fn verify_es256(token: &str, key: &VerifyingKey) -> Result<Claims, VapidError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VapidError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VapidError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header_json).map_err(|_| VapidError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
        return Err(VapidError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| VapidError::Signature)?;
    let signature = Signature::from_slice(&signature).map_err(|_| VapidError::Signature)?;
    let signed = &token[..header_len(token)];
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| VapidError::Signature)?;
    let claims_json = URL_SAFE_NO_PAD
        .decode(claims)
        .map_err(|_| VapidError::Malformed)?;
    serde_json::from_slice(&claims_json).map_err(|_| VapidError::Malformed)
}

/// The length of the signed part `header.claims` of a three-part token.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn endpoint() -> Url {
        Url::parse("https://push.example.net:8443/wpush/v2/abc?x=1").unwrap()
    }

    #[test]
    fn key_round_trips_through_its_stored_form() {
        let key = VapidKey::generate();
        let stored = key.to_base64url();
        assert_eq!(URL_SAFE_NO_PAD.decode(&stored).unwrap().len(), 32);
        let again = VapidKey::from_base64url(&stored).unwrap();
        assert_eq!(again.public_key_base64url(), key.public_key_base64url());
        let public = URL_SAFE_NO_PAD.decode(key.public_key_base64url()).unwrap();
        assert_eq!((public.len(), public[0]), (65, 4));

        assert!(VapidKey::from_base64url("AAAA").is_err());
        assert!(VapidKey::from_base64url(&URL_SAFE_NO_PAD.encode([0u8; 32])).is_err());
        assert!(VapidKey::from_base64url(&URL_SAFE_NO_PAD.encode([0xffu8; 32])).is_err());
    }

    #[test]
    fn authorization_verifies_with_the_right_key_and_audience() {
        let key = VapidKey::generate();
        let header = key.authorization(&endpoint(), "mailto:admin@example.org", NOW);
        assert!(header.starts_with("vapid t="));
        assert!(header.ends_with(&format!(", k={}", key.public_key_base64url())));
        let claims = verify_authorization(
            &header,
            key.public_key_base64url(),
            "https://push.example.net:8443",
            NOW,
        )
        .unwrap();
        assert_eq!(claims.aud, "https://push.example.net:8443");
        assert_eq!(claims.exp, NOW + 12 * 3600);
        assert_eq!(claims.sub.as_deref(), Some("mailto:admin@example.org"));
    }

    #[test]
    fn audience_is_the_origin_without_a_default_port() {
        let key = VapidKey::generate();
        let url = Url::parse("https://fcm.googleapis.com:443/fcm/send/xyz").unwrap();
        let header = key.authorization(&url, "mailto:a@b.c", NOW);
        let pk = key.public_key_base64url();
        assert!(verify_authorization(&header, pk, "https://fcm.googleapis.com", NOW).is_ok());
    }

    #[test]
    fn tampering_and_mismatches_are_refused() {
        let key = VapidKey::generate();
        let pk = key.public_key_base64url().to_owned();
        let aud = "https://push.example.net:8443";
        let header = key.authorization(&endpoint(), "mailto:a@b.c", NOW);
        let (token, _) = parse_header(&header).unwrap();

        // One signature character changed (well inside r || s, not in the padding bits).
        let at = token.len() - 20;
        let old = &token[at..at + 1];
        let new = if old == "A" { "B" } else { "A" };
        let bad = format!("{}{new}{}", &token[..at], &token[at + 1..]);
        let forged = format!("vapid t={bad}, k={pk}");
        assert_eq!(
            verify_authorization(&forged, &pk, aud, NOW),
            Err(VapidError::Signature)
        );

        // Claims swapped for others, old signature kept.
        let parts: Vec<&str> = token.split('.').collect();
        let other =
            URL_SAFE_NO_PAD.encode(br#"{"aud":"https://push.example.net:8443","exp":1900000000}"#);
        let swapped = format!("vapid t={}.{other}.{}, k={pk}", parts[0], parts[2]);
        assert_eq!(
            verify_authorization(&swapped, &pk, aud, NOW),
            Err(VapidError::Signature)
        );

        assert_eq!(
            verify_authorization(&header, &pk, "https://push.example.net", NOW),
            Err(VapidError::Audience)
        );
        let stranger = VapidKey::generate();
        assert_eq!(
            verify_authorization(&header, stranger.public_key_base64url(), aud, NOW),
            Err(VapidError::WrongKey)
        );
        // Signed by another key but claiming ours.
        let impostor = stranger.authorization(&endpoint(), "mailto:a@b.c", NOW);
        let (t, _) = parse_header(&impostor).unwrap();
        let impostor = format!("vapid t={t}, k={pk}");
        assert_eq!(
            verify_authorization(&impostor, &pk, aud, NOW),
            Err(VapidError::Signature)
        );

        assert_eq!(
            verify_authorization(&header, &pk, aud, NOW + 12 * 3600),
            Err(VapidError::Expiry)
        );
        assert_eq!(
            verify_authorization(&header, &pk, aud, NOW - 13 * 3600),
            Err(VapidError::Expiry)
        );
        for garbage in [
            "",
            "vapid",
            "Bearer x",
            "vapid t=a.b.c",
            "vapid t=a, k=b, z=c",
        ] {
            assert!(
                verify_authorization(garbage, &pk, aud, NOW).is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn tokens_are_cached_per_audience_until_an_hour_before_expiry() {
        let key = VapidKey::generate();
        let a = Url::parse("https://a.example/1").unwrap();
        let a2 = Url::parse("https://a.example/2").unwrap();
        let b = Url::parse("https://b.example/1").unwrap();
        let first = key.authorization(&a, "mailto:x@y.z", NOW);
        // ECDSA here is deterministic (RFC 6979), so a re-signed token would look the same at
        // the same time: compare across times instead.
        assert_eq!(key.authorization(&a2, "mailto:x@y.z", NOW + 60), first);
        assert_eq!(
            key.authorization(&a, "mailto:x@y.z", NOW + 11 * 3600 - 1),
            first
        );
        assert_ne!(
            key.authorization(&a, "mailto:x@y.z", NOW + 11 * 3600),
            first
        );
        assert_ne!(key.authorization(&b, "mailto:x@y.z", NOW + 60), first);
        // A clock that went back does not get a token that lives too long.
        let back = key.authorization(&b, "mailto:x@y.z", NOW - 2 * 3600);
        let claims = verify_authorization(
            &back,
            key.public_key_base64url(),
            "https://b.example",
            NOW - 2 * 3600,
        )
        .unwrap();
        assert_eq!(claims.exp, NOW - 2 * 3600 + 12 * 3600);
    }

    #[test]
    fn cache_is_bounded() {
        let key = VapidKey::generate();
        for i in 0..(CACHE_LIMIT + 10) {
            let url = Url::parse(&format!("https://h{i}.example/")).unwrap();
            key.authorization(&url, "mailto:x@y.z", NOW);
        }
        assert!(key.cache.lock().unwrap().len() <= CACHE_LIMIT);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = VapidKey::generate();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.to_base64url()));
        assert!(shown.contains(key.public_key_base64url()));
    }
}
