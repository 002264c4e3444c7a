//! Message encryption for Web Push: the `aes128gcm` content coding of RFC 8188 with the key
//! derivation of RFC 8291. Written out here (rather than taken from a crate) so that the few
//! dozen lines that decide whether a push service can read our pushes can be audited in one
//! place.
//!
//! In short: an ephemeral sender key pair and the subscription's P-256 key give an ECDH
//! secret; HKDF with the subscription's auth secret turns it into the input keying material;
//! HKDF with a random salt turns that into a 16-byte AES-GCM key and a 12-byte nonce. The body
//! is a header (salt, record size, sender public key) followed by AES-128-GCM records.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;

/// The record size we send: RFC 8291 requires a single record, and 4096 is what browsers and
/// push services expect.
pub const RECORD_SIZE: u32 = 4096;
/// The largest body push services must accept (RFC 8030 §7.2); our single-record body is the
/// 86-byte header plus plaintext, delimiter and tag.
pub const MAX_BODY: usize = 4096;
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
const TAG_LEN: usize = 16;
/// The largest plaintext [`encrypt`] accepts.
pub const MAX_PLAINTEXT: usize = MAX_BODY - HEADER_LEN - TAG_LEN - 1;

/// Padding delimiters (RFC 8188 §2): the last record ends its data with 2, all others with 1,
/// so a receiver can tell a truncated stream from a complete one.
const DELIMITER_LAST: u8 = 0x02;
const DELIMITER_MORE: u8 = 0x01;

/// Why encryption or decryption failed. Never carries key material or plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EceError {
    #[error("the subscription's public key is not a P-256 point")]
    InvalidKey,
    #[error("the subscription's auth secret is not 16 bytes of base64url")]
    InvalidAuth,
    #[error("the payload is too large for one push message")]
    TooLarge,
    #[error("the body is not a valid aes128gcm message")]
    Malformed,
    #[error("the message does not decrypt with this key")]
    Decrypt,
    #[error("the system's random generator failed")]
    Random,
}

/// Encrypts `plaintext` for a subscription with a fresh ephemeral key and salt.
///
/// The ephemeral key and the ECDH come from ring (assembly P-256, the same library as TLS):
/// the two scalar multiplications are most of the cost of a push, and ring does them several
/// times faster than the portable `p256` crate. ring never lets a private key out or in, so
/// the RFC test vector (a fixed sender key) checks [`seal`], the rest of this function.
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8; 65],
    auth_secret: &[u8; 16],
) -> Result<Vec<u8>, EceError> {
    use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::TooLarge);
    }
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| EceError::Random)?;
    let as_private =
        EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| EceError::Random)?;
    let as_public: [u8; 65] = as_private
        .compute_public_key()
        .map_err(|_| EceError::Random)?
        .as_ref()
        .try_into()
        .map_err(|_| EceError::Random)?;
    let shared = agree_ephemeral(
        as_private,
        &UnparsedPublicKey::new(&ECDH_P256, ua_public),
        |secret| <[u8; 32]>::try_from(secret),
    )
    .map_err(|_| EceError::InvalidKey)?
    .map_err(|_| EceError::InvalidKey)?;
    seal(
        plaintext,
        ua_public,
        auth_secret,
        &as_public,
        &shared,
        &salt,
        RECORD_SIZE,
    )
}

/// The body for a sender key pair (`as_public`, and the ECDH `shared` secret it gave with
/// the subscription's key), a salt and a record size: the key schedule of RFC 8291 and one
/// RFC 8188 record. Reusing a salt with the same key is catastrophic for AES-GCM; only
/// [`encrypt`], which draws both fresh, calls this outside tests.
fn seal(
    plaintext: &[u8],
    ua_public: &[u8; 65],
    auth_secret: &[u8; 16],
    as_public: &[u8; 65],
    shared: &[u8; 32],
    salt: &[u8; 16],
    record_size: u32,
) -> Result<Vec<u8>, EceError> {
    let record_len = plaintext.len() + 1 + TAG_LEN;
    if record_len > record_size as usize {
        return Err(EceError::TooLarge);
    }
    let keys = derive(shared, auth_secret, ua_public, as_public, salt)?;

    let mut record = Vec::with_capacity(record_len);
    record.extend_from_slice(plaintext);
    record.push(DELIMITER_LAST);
    let sealed = keys.cipher()?.encrypt(&keys.nonce(0), record.as_slice());
    let sealed = sealed.map_err(|_| EceError::Decrypt)?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&record_size.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Decrypts a Web Push body as the user agent does: the header's salt, record size and
/// sender key, then each record in turn, checking the delimiters and stripping the padding.
/// Returns an error (never panics) on any malformed, truncated or forged input.
pub fn decrypt(
    body: &[u8],
    ua_private: &SecretKey,
    auth_secret: &[u8; 16],
) -> Result<Vec<u8>, EceError> {
    let header = Header::parse(body)?;
    let as_public = PublicKey::from_sec1_bytes(header.key_id).map_err(|_| EceError::Malformed)?;
    let ua_public = uncompressed(&ua_private.public_key());
    let shared = ecdh(ua_private, &as_public);
    let keys = derive(&shared, auth_secret, &ua_public, header.key_id, header.salt)?;
    let cipher = keys.cipher()?;

    let records = header.records.chunks(header.record_size);
    let count = records.len();
    let mut plaintext = Vec::with_capacity(header.records.len());
    for (seq, record) in records.enumerate() {
        if record.len() <= TAG_LEN {
            return Err(EceError::Malformed);
        }
        let opened = cipher
            .decrypt(&keys.nonce(seq as u64), record)
            .map_err(|_| EceError::Decrypt)?;
        let last = seq + 1 == count;
        plaintext.extend_from_slice(unpad(&opened, last)?);
    }
    Ok(plaintext)
}

/// The subscription's `keys.p256dh`: base64url (padded or not) of an uncompressed P-256 point
/// that is on the curve.
pub fn parse_p256dh(b64url: &str) -> Result<[u8; 65], EceError> {
    let bytes = decode_b64url(b64url).ok_or(EceError::InvalidKey)?;
    let point: [u8; 65] = bytes.try_into().map_err(|_| EceError::InvalidKey)?;
    PublicKey::from_sec1_bytes(&point).map_err(|_| EceError::InvalidKey)?;
    Ok(point)
}

/// The subscription's `keys.auth`: base64url (padded or not) of 16 bytes.
pub fn parse_auth(b64url: &str) -> Result<[u8; 16], EceError> {
    let bytes = decode_b64url(b64url).ok_or(EceError::InvalidAuth)?;
    bytes.try_into().map_err(|_| EceError::InvalidAuth)
}

/// base64url, with or without padding: browsers send it without, some libraries with.
pub(crate) fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.contains('=') {
        URL_SAFE.decode(text).ok()
    } else {
        URL_SAFE_NO_PAD.decode(text).ok()
    }
}

/// A uniformly random P-256 private key. Drawn by rejection (a 32-byte string is a valid
/// scalar unless it is zero or ≥ the group order, a chance of about 2⁻³²), because p256's own
/// generator wants the older rand_core that the rest of the tree does not use.
pub(crate) fn random_secret_key() -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// The 65-byte uncompressed SEC1 encoding (0x04 || x || y) that RFC 8291 puts in the header
/// and in the key info.
pub(crate) fn uncompressed(key: &PublicKey) -> [u8; 65] {
    let point = key.to_encoded_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

fn ecdh(private: &SecretKey, public: &PublicKey) -> [u8; 32] {
    let shared = p256::ecdh::diffie_hellman(private.to_nonzero_scalar(), public.as_affine());
    let mut out = [0u8; 32];
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// The content encryption key and base nonce of one message.
struct Keys {
    cek: [u8; 16],
    nonce: [u8; 12],
}

impl Keys {
    fn cipher(&self) -> Result<Aes128Gcm, EceError> {
        Aes128Gcm::new_from_slice(&self.cek).map_err(|_| EceError::Decrypt)
    }

    /// RFC 8188 §2.3: the base nonce XOR the record sequence number (96-bit big-endian).
    fn nonce(&self, seq: u64) -> Nonce<aes_gcm::aead::consts::U12> {
        let mut nonce = self.nonce;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        Nonce::from(nonce)
    }
}

/// RFC 8291 §3.4 and RFC 8188 §2.2.
fn derive(
    ecdh_secret: &[u8; 32],
    auth_secret: &[u8; 16],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<Keys, EceError> {
    // key_info = "WebPush: info" || 0x00 || ua_public || as_public
    let mut key_info = Vec::with_capacity(14 + 130);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .map_err(|_| EceError::Decrypt)?;

    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut keys = Keys {
        cek: [0; 16],
        nonce: [0; 12],
    };
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut keys.cek)
        .map_err(|_| EceError::Decrypt)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut keys.nonce)
        .map_err(|_| EceError::Decrypt)?;
    Ok(keys)
}

/// The RFC 8188 §2.1 header: salt (16) || rs (u32 BE) || idlen (1) || keyid (idlen).
struct Header<'a> {
    salt: &'a [u8],
    record_size: usize,
    key_id: &'a [u8],
    records: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, EceError> {
        let (salt, rest) = body.split_at_checked(16).ok_or(EceError::Malformed)?;
        let (rs, rest) = rest.split_at_checked(4).ok_or(EceError::Malformed)?;
        let (&id_len, rest) = rest.split_first().ok_or(EceError::Malformed)?;
        let (key_id, records) = rest
            .split_at_checked(usize::from(id_len))
            .ok_or(EceError::Malformed)?;
        let rs = u32::from_be_bytes([rs[0], rs[1], rs[2], rs[3]]);
        // A record must hold at least the tag and one delimiter byte (RFC 8188 §2).
        if rs < 18 || records.is_empty() {
            return Err(EceError::Malformed);
        }
        Ok(Header {
            salt,
            record_size: rs as usize,
            key_id,
            records,
        })
    }
}

/// Strips the zero padding and the delimiter of one decrypted record.
fn unpad(record: &[u8], last: bool) -> Result<&[u8], EceError> {
    let end = record
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(EceError::Malformed)?;
    let expected = if last { DELIMITER_LAST } else { DELIMITER_MORE };
    if record[end] != expected {
        return Err(EceError::Malformed);
    }
    Ok(&record[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8291 Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    );

    fn b64(text: &str) -> Vec<u8> {
        decode_b64url(text).unwrap()
    }

    fn secret(text: &str) -> SecretKey {
        SecretKey::from_slice(&b64(text)).unwrap()
    }

    /// [`seal`] with a given sender private key (p256), as the RFC's vector needs.
    fn encrypt_with(
        plaintext: &[u8],
        ua_public: &[u8; 65],
        auth_secret: &[u8; 16],
        as_private: &SecretKey,
        salt: &[u8; 16],
        record_size: u32,
    ) -> Result<Vec<u8>, EceError> {
        let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| EceError::InvalidKey)?;
        let as_public = uncompressed(&as_private.public_key());
        let shared = ecdh(as_private, &ua);
        seal(
            plaintext,
            ua_public,
            auth_secret,
            &as_public,
            &shared,
            salt,
            record_size,
        )
    }

    fn fresh_ua() -> (SecretKey, [u8; 65], [u8; 16]) {
        let key = random_secret_key();
        let public = uncompressed(&key.public_key());
        let mut auth = [0u8; 16];
        rand::rng().fill_bytes(&mut auth);
        (key, public, auth)
    }

    #[test]
    fn rfc8291_vector_encrypts_byte_for_byte() {
        let as_private = secret(AS_PRIVATE);
        assert_eq!(
            uncompressed(&as_private.public_key()).to_vec(),
            b64(AS_PUBLIC)
        );
        let body = encrypt_with(
            PLAINTEXT.as_bytes(),
            &parse_p256dh(UA_PUBLIC).unwrap(),
            &parse_auth(AUTH).unwrap(),
            &as_private,
            &b64(SALT).try_into().unwrap(),
            4096,
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), BODY);
    }

    #[test]
    fn rfc8291_vector_decrypts() {
        let plaintext =
            decrypt(&b64(BODY), &secret(UA_PRIVATE), &parse_auth(AUTH).unwrap()).unwrap();
        assert_eq!(plaintext, PLAINTEXT.as_bytes());
    }

    #[test]
    fn round_trip_with_fresh_keys() {
        let (ua_private, ua_public, auth) = fresh_ua();
        for len in [0, 1, 100, MAX_PLAINTEXT] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let body = encrypt(&plaintext, &ua_public, &auth).unwrap();
            assert!(body.len() <= MAX_BODY);
            assert_eq!(decrypt(&body, &ua_private, &auth).unwrap(), plaintext);
        }
        // Each message gets its own salt and sender key.
        let a = encrypt(b"same", &ua_public, &auth).unwrap();
        let b = encrypt(b"same", &ua_public, &auth).unwrap();
        assert_ne!(a[..16], b[..16]);
        assert_ne!(a[21..86], b[21..86]);
    }

    #[test]
    fn oversized_payload_is_refused() {
        let (_, ua_public, auth) = fresh_ua();
        let big = vec![b'x'; MAX_PLAINTEXT + 1];
        assert_eq!(encrypt(&big, &ua_public, &auth), Err(EceError::TooLarge));
        // A key that is not a point of the curve gives no shared secret.
        let mut off_curve = ua_public;
        off_curve[64] ^= 1;
        assert_eq!(encrypt(b"x", &off_curve, &auth), Err(EceError::InvalidKey));
    }

    #[test]
    fn wrong_auth_or_key_fails() {
        let (ua_private, ua_public, auth) = fresh_ua();
        let body = encrypt(b"secret", &ua_public, &auth).unwrap();
        let mut wrong = auth;
        wrong[0] ^= 1;
        assert_eq!(decrypt(&body, &ua_private, &wrong), Err(EceError::Decrypt));
        let (other, _, _) = fresh_ua();
        assert_eq!(decrypt(&body, &other, &auth), Err(EceError::Decrypt));
    }

    #[test]
    fn tampered_or_truncated_body_fails() {
        let (ua_private, ua_public, auth) = fresh_ua();
        let body = encrypt(b"hello, world", &ua_public, &auth).unwrap();
        for cut in 0..body.len() {
            assert!(
                decrypt(&body[..cut], &ua_private, &auth).is_err(),
                "cut {cut}"
            );
        }
        for i in (0..body.len()).step_by(7) {
            let mut bad = body.clone();
            bad[i] ^= 0x40;
            assert!(decrypt(&bad, &ua_private, &auth).is_err(), "flip {i}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        let (ua_private, ua_public, auth) = fresh_ua();
        let valid = encrypt(b"x", &ua_public, &auth).unwrap();
        let mut rng = rand::rng();
        for round in 0..2000 {
            let len = (rng.next_u32() % 300) as usize;
            let mut input = vec![0u8; len];
            rng.fill_bytes(&mut input);
            if round % 2 == 0 && len > 21 {
                // Keep a plausible header (a small rs, the real key) so the record loop runs.
                input[..86.min(len)].copy_from_slice(&valid[..86.min(len)]);
                input[16..20].copy_from_slice(&((rng.next_u32() % 64) + 1).to_be_bytes());
            }
            let _ = decrypt(&input, &ua_private, &auth);
        }
    }

    /// A multi-record encoder for the test only (Web Push senders must use one record), to
    /// check that [`decrypt`] handles RFC 8188 streams in general.
    fn encrypt_records(
        plaintext: &[u8],
        ua_public: &[u8; 65],
        auth: &[u8; 16],
        rs: u32,
        pad: usize,
    ) -> Vec<u8> {
        let as_private = random_secret_key();
        let as_public = uncompressed(&as_private.public_key());
        let ua = PublicKey::from_sec1_bytes(ua_public).unwrap();
        let salt = [7u8; 16];
        let keys = derive(&ecdh(&as_private, &ua), auth, ua_public, &as_public, &salt).unwrap();
        let cipher = keys.cipher().unwrap();
        let mut body = salt.to_vec();
        body.extend_from_slice(&rs.to_be_bytes());
        body.push(65);
        body.extend_from_slice(&as_public);
        let per_record = rs as usize - TAG_LEN - 1 - pad;
        let chunks: Vec<&[u8]> = plaintext.chunks(per_record).collect();
        for (seq, chunk) in chunks.iter().enumerate() {
            let mut record = chunk.to_vec();
            let last = seq + 1 == chunks.len();
            record.push(if last { DELIMITER_LAST } else { DELIMITER_MORE });
            record.extend(std::iter::repeat_n(0, pad));
            body.extend(
                cipher
                    .encrypt(&keys.nonce(seq as u64), &record[..])
                    .unwrap(),
            );
        }
        body
    }

    #[test]
    fn decrypts_several_padded_records() {
        let (ua_private, ua_public, auth) = fresh_ua();
        let plaintext = b"I am the very model of a modern Major-General".repeat(3);
        let body = encrypt_records(&plaintext, &ua_public, &auth, 40, 3);
        assert!(body.len() > 86 + 3 * 40);
        assert_eq!(decrypt(&body, &ua_private, &auth).unwrap(), plaintext);

        // Dropping the last record leaves a stream whose final delimiter says "more".
        let cut = 86 + ((body.len() - 86 - 1) / 40) * 40;
        assert_eq!(
            decrypt(&body[..cut], &ua_private, &auth),
            Err(EceError::Malformed)
        );
    }

    #[test]
    fn key_and_auth_parsing() {
        assert!(parse_p256dh(UA_PUBLIC).is_ok());
        let padded = URL_SAFE.encode(b64(UA_PUBLIC));
        assert!(padded.ends_with('='));
        assert_eq!(parse_p256dh(&padded), parse_p256dh(UA_PUBLIC));
        // 65 bytes, right prefix, not on the curve.
        let mut off_curve = b64(UA_PUBLIC);
        off_curve[64] ^= 1;
        assert_eq!(
            parse_p256dh(&URL_SAFE_NO_PAD.encode(&off_curve)),
            Err(EceError::InvalidKey)
        );
        // Compressed form and wrong lengths.
        let compressed = secret(UA_PRIVATE).public_key().to_encoded_point(true);
        assert_eq!(
            parse_p256dh(&URL_SAFE_NO_PAD.encode(compressed.as_bytes())),
            Err(EceError::InvalidKey)
        );
        assert_eq!(parse_p256dh("AAAA"), Err(EceError::InvalidKey));
        assert_eq!(parse_p256dh("not base64!"), Err(EceError::InvalidKey));

        assert_eq!(parse_auth(AUTH).unwrap().to_vec(), b64(AUTH));
        assert_eq!(parse_auth("BTBZMqHH6r4Tts7J_aSIgg=="), parse_auth(AUTH));
        assert_eq!(
            parse_auth("BTBZMqHH6r4Tts7J_aSI"),
            Err(EceError::InvalidAuth)
        );
        assert_eq!(
            parse_auth("BTBZMqHH6r4Tts7J/aSIgg"),
            Err(EceError::InvalidAuth)
        );
    }
}
