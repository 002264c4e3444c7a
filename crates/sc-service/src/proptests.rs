//! Property tests of the parsers and codecs in this crate (docs/testing.md): the password policy
//! and its normalization, the message checks of `chat` (client message id, emoji, title, body),
//! the crypto codecs (base32, sealed secrets, access tokens, TOTP, recovery codes) and the bus
//! envelope. No input panics, a refusal is a 4xx naming its field, codecs round-trip and
//! normalizing twice is normalizing once.

use crate::{
    Role,
    chat::{Body, ChatService, validate_title},
    crypto::{
        JwtKeys, SecretBox, base32, base32_decode, hotp, recovery_code_hash, token_hash, totp_code,
        totp_matching_step,
    },
    password::{MAX_CHARS, MIN_CHARS, check_policy, normalize},
    realtime::{Envelope, frame},
};
use base64::Engine;
use proptest::prelude::*;
use sc_core::{
    AppError,
    ids::{SessionId, UserId},
    time::Timestamp,
};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Bounded so the whole file runs in a few seconds in a debug build; no regression files.
fn config() -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES=20000 for a deeper run.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        // A fixed seed keeps every run reproducible; PROPTEST_RNG_SEED=<n> explores elsewhere.
        rng_seed: match std::env::var_os("PROPTEST_RNG_SEED") {
            Some(_) => ProptestConfig::default().rng_seed,
            None => proptest::test_runner::RngSeed::Fixed(20_261_201),
        },
        ..ProptestConfig::default()
    }
}

/// A refusal of input: a 400 VALIDATION_ERROR whose details name `field`.
fn assert_refusal(e: &AppError, field: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.status(), 400, "{:?}", e);
    let details = e.details().unwrap_or_default();
    prop_assert_eq!(details["field"].as_str(), Some(field), "{:?}", e);
    Ok(())
}

/// Any text, biased towards what breaks parsers: controls, whitespace, combining marks (in
/// composed and decomposed forms), emoji pieces, and letters whose case mapping changes length.
fn nasty_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => prop::sample::select(vec![
            '\0', '\t', '\n', '\r', '\u{7}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{feff}',
            '\u{200b}', 'İ', 'ẞ', 'Σ', '\u{212a}', 'ß', 'é', 'e', '\u{301}', '\u{308}', '\u{323}',
            'Å', '\u{212b}', '한', '\u{1100}', '\u{1161}', '😀', '👍', '\u{1f3fb}', '\u{200d}',
            '\u{fe0f}', '\u{20e3}', '🇩', '🇪', '❤', '\u{e0067}',
        ]),
        1 => any::<char>(),
    ];
    prop_oneof![
        4 => prop::collection::vec(ch, 0..40).prop_map(|v| v.into_iter().collect()),
        1 => prop::collection::vec(proptest::char::range('a', 'z'), 100..200)
            .prop_map(|v| v.into_iter().collect()),
        1 => any::<String>(),
    ]
}

/// Passwords of every length around the bounds, in any normalization form.
fn password_like() -> impl Strategy<Value = String> {
    prop_oneof![
        nasty_text(),
        "[a-zA-Z0-9 éÅ\u{301}\u{212b}-]{8,20}",
        "[ -~]{120,135}",
        nasty_text().prop_map(|s| s.nfd().collect()),
    ]
}

/// Real emoji, including modifier, ZWJ, flag, keycap and tag sequences.
const EMOJI: &[&str] = &[
    "👍",
    "❤️",
    "😂",
    "🎉",
    "👍🏽",
    "👩‍💻",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "🇩🇪",
    "1️⃣",
    "#️⃣",
    "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
    "☺",
    "🧑🏿‍🚀",
    "✔️",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn password_normalization_is_idempotent(pw in password_like()) {
        let once = normalize(&pw);
        prop_assert_eq!(normalize(&once), once.clone());
        // Canonically equivalent forms normalize alike.
        let nfd: String = pw.nfd().collect();
        prop_assert_eq!(normalize(&nfd), once);
    }

    #[test]
    fn password_policy_refuses_with_the_field_or_returns_the_normal_form(
        pw in password_like(),
        username in "[a-z0-9_.]{3,12}",
        local in "[a-z0-9._-]{1,12}",
    ) {
        let email = format!("{local}@example.org");
        match check_policy("new_password", &pw, &username, &email) {
            Ok(normal) => {
                prop_assert_eq!(&normal, &normalize(&pw));
                let n = normal.chars().count();
                prop_assert!((MIN_CHARS..=MAX_CHARS).contains(&n), "{} characters", n);
                prop_assert!(!normal.contains('\0'));
                // The normal form passes again, unchanged; so does any equivalent form.
                let again = check_policy("new_password", &normal, &username, &email);
                prop_assert_eq!(again.ok(), Some(normal.clone()));
                let nfd: String = pw.nfd().collect();
                let equivalent = check_policy("new_password", &nfd, &username, &email);
                prop_assert_eq!(equivalent.ok(), Some(normal));
            }
            Err(e) => {
                assert_refusal(&e, "new_password")?;
                let nfd: String = pw.nfd().collect();
                prop_assert!(check_policy("new_password", &nfd, &username, &email).is_err());
            }
        }
    }

    #[test]
    fn password_policy_accepts_passphrases(
        a in "[a-z]{5,8}", b in "[A-Z]{5,8}", c in "[0-9]{3,4}", d in "[a-zé]{5,8}",
    ) {
        let pw = format!("{a}-{b}-{c}-{d}");
        let r = check_policy("password", &pw, "someone_else", "someone_else@example.org");
        prop_assert_eq!(r.ok(), Some(normalize(&pw)));
    }

    #[test]
    fn client_message_ids_are_checked(raw in prop_oneof![nasty_text(), "[A-Za-z0-9_-]{0,70}"]) {
        let valid = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        match ChatService::check_client_message_id(&raw) {
            Ok(()) => prop_assert!(valid, "{:?} accepted", raw),
            Err(e) => {
                prop_assert!(!valid, "{:?} refused", raw);
                assert_refusal(&e, "client_message_id")?;
            }
        }
    }

    #[test]
    fn emoji_checks_never_panic(raw in nasty_text()) {
        match ChatService::check_emoji(&raw) {
            Ok(()) => {
                prop_assert_eq!(raw.graphemes(true).count(), 1);
                prop_assert!(raw.len() <= 32 && !raw.is_ascii());
                prop_assert!(!raw.chars().any(|c| c.is_control() || c.is_whitespace()));
            }
            Err(e) => assert_refusal(&e, "emoji")?,
        }
    }

    #[test]
    fn real_emoji_are_accepted_and_pairs_refused(a in prop::sample::select(EMOJI), b in prop::sample::select(EMOJI)) {
        prop_assert!(ChatService::check_emoji(a).is_ok(), "{} refused", a);
        let pair = format!("{a}{b}");
        // Two regional indicators pair into one flag; everything else stays two clusters.
        if pair.graphemes(true).count() == 2 {
            prop_assert!(ChatService::check_emoji(&pair).is_err(), "{} accepted", pair);
        }
    }

    #[test]
    fn titles_parse_once(raw in nasty_text()) {
        match validate_title(&raw) {
            Ok(t) => {
                prop_assert_eq!(t.as_str(), raw.trim());
                prop_assert!((1..=128).contains(&t.chars().count()));
                prop_assert_eq!(validate_title(&t).ok(), Some(t.clone()));
            }
            Err(e) => assert_refusal(&e, "title")?,
        }
    }

    #[test]
    fn message_bodies_are_checked(
        content in prop::option::of(nasty_text()),
        ciphertext in prop::option::of(prop_oneof![
            nasty_text(),
            prop::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        ]),
        encrypted in any::<bool>(),
        max_chars in 1usize..64,
    ) {
        match ChatService::body(max_chars, encrypted, content.clone(), ciphertext.clone()) {
            Ok(Body::Plain(t)) => {
                prop_assert!(!encrypted && ciphertext.is_none());
                prop_assert_eq!(Some(&t), content.as_ref());
                prop_assert!(t.chars().count() <= max_chars && !t.trim().is_empty());
            }
            Ok(Body::Cipher(b)) => {
                prop_assert!(encrypted && content.is_none());
                prop_assert_eq!(Some(&b), ciphertext.as_ref());
                let raw = base64::engine::general_purpose::STANDARD.decode(&b);
                prop_assert!(raw.is_ok_and(|r| !r.is_empty()));
            }
            Err(e) => {
                prop_assert!((400..500).contains(&e.status()), "{:?}", e);
                if let AppError::Validation { field, .. } = &e {
                    prop_assert!(field == "content" || field == "ciphertext", "{}", field);
                }
            }
        }
    }

    #[test]
    fn base32_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = base32(&bytes);
        prop_assert!(text.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        prop_assert_eq!(base32_decode(&text), Some(bytes.clone()));
        // Authenticator apps and people write it lowercase and padded.
        let padded = format!("{}{}", text.to_lowercase(), "=".repeat((8 - text.len() % 8) % 8));
        prop_assert_eq!(base32_decode(&padded), Some(bytes));
    }

    #[test]
    fn base32_decode_never_panics(raw in prop_oneof![nasty_text(), "[A-Za-z2-7=]{0,200}"]) {
        if let Some(bytes) = base32_decode(&raw) {
            prop_assert!(bytes.len() <= raw.len());
        }
    }

    #[test]
    fn sealed_secrets_round_trip_and_bind_the_owner(
        key in any::<[u8; 32]>(),
        plain in prop::collection::vec(any::<u8>(), 0..64),
        owner in any::<[u8; 16]>(),
        other in any::<[u8; 16]>(),
    ) {
        let sb = SecretBox::new(&key);
        let (owner, other) = (UserId(uuid::Uuid::from_bytes(owner)), UserId(uuid::Uuid::from_bytes(other)));
        let sealed = sb.seal(&plain, owner);
        prop_assert!(sealed.is_ok());
        let sealed = sealed.unwrap_or_default();
        prop_assert_eq!(sb.open(&sealed, owner).ok(), Some(plain));
        if other != owner {
            prop_assert!(sb.open(&sealed, other).is_err());
        }
    }

    #[test]
    fn opening_junk_never_panics(raw in prop_oneof![nasty_text(), "[A-Za-z0-9_-]{0,80}"]) {
        let sb = SecretBox::new(&[9u8; 32]);
        prop_assert!(sb.open(&raw, UserId(uuid::Uuid::nil())).is_err());
    }

    #[test]
    fn access_tokens_round_trip(
        user in any::<[u8; 16]>(),
        session in any::<[u8; 16]>(),
        skew in -3_600i64..=30,
        ttl in 3_700u64..100_000,
        secret in prop::collection::vec(any::<u8>(), 32..64),
    ) {
        let keys = JwtKeys::new(&secret, "https://issuer.example", "secureconnect");
        let (user, session) = (UserId(uuid::Uuid::from_bytes(user)), SessionId(uuid::Uuid::from_bytes(session)));
        let now = Timestamp::now();
        let issued_at = Timestamp::from_unix_seconds(now.unix_seconds() + skew);
        let token = keys.issue(user, session, issued_at, ttl);
        prop_assert!(token.is_ok());
        let token = token.unwrap_or_default();
        let claims = keys.verify(&token, now);
        prop_assert!(claims.is_some(), "{} refused", token);
        let claims = claims.map(|c| (c.sub, c.sid));
        prop_assert_eq!(claims, Some((user, session)));
        // Any change to one character breaks it.
        let mut bytes = token.into_bytes();
        let i = (user.0.as_u128() as usize) % bytes.len();
        let original = bytes[i];
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes.clone()).unwrap_or_default();
        prop_assert!(keys.verify(&tampered, now).is_none(), "{} accepted", tampered);
        // The remembering path agrees, the first time and from its cache.
        for _ in 0..2 {
            let v = keys.verify_access(&tampered, now);
            prop_assert!(v.is_none());
        }
        bytes[i] = original;
        let token = String::from_utf8(bytes).unwrap_or_default();
        for _ in 0..2 {
            let v = keys.verify_access(&token, now).map(|v| (v.user_id, v.session_id));
            prop_assert_eq!(v, Some((user, session)));
        }
    }

    #[test]
    fn verifying_junk_tokens_never_panics(raw in prop_oneof![
        nasty_text(),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,43}",
        // A real header with junk claims.
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,43}".prop_map(|s| format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{s}")),
    ]) {
        let keys = JwtKeys::new(&[7u8; 32], "iss", "aud");
        prop_assert!(keys.verify(&raw, Timestamp::now()).is_none());
        prop_assert!(keys.verify_access(&raw, Timestamp::now()).is_none());
    }

    #[test]
    fn totp_codes_match_their_own_step(
        secret in prop::collection::vec(any::<u8>(), 0..40),
        secs in 0i64..4_000_000_000,
    ) {
        let code = totp_code(&secret, secs as u64);
        prop_assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{}", code);
        let step = totp_matching_step(&secret, &code, Timestamp::from_unix_seconds(secs));
        let step = step.ok().flatten();
        prop_assert!(step.is_some());
        let step = step.unwrap_or_default();
        prop_assert!((step - secs / 30).abs() <= 1);
        prop_assert_eq!(hotp(&secret, step as u64), code);
    }

    #[test]
    fn totp_checks_never_panic(
        secret in prop::collection::vec(any::<u8>(), 0..40),
        code in prop_oneof![nasty_text(), "[0-9]{5,7}"],
        now in any::<i64>(),
        counter in any::<u64>(),
    ) {
        let _ = totp_matching_step(&secret, &code, Timestamp(now));
        prop_assert_eq!(hotp(&secret, counter).len(), 6);
    }

    #[test]
    fn recovery_codes_ignore_case_and_separators(code in "[a-z0-9]{5}-[a-z0-9]{5}", sep in "[ -]{0,2}") {
        let hash = recovery_code_hash(&code);
        prop_assert_eq!(recovery_code_hash(&code.to_ascii_uppercase()), hash.clone());
        prop_assert_eq!(recovery_code_hash(&code.replace('-', &sep)), hash.clone());
        prop_assert_eq!(hash.len(), 64);
        prop_assert_eq!(token_hash(&code).len(), 64);
    }

    #[test]
    fn recovery_code_hash_never_panics(raw in nasty_text()) {
        let h = recovery_code_hash(&raw);
        prop_assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn roles_round_trip(raw in prop_oneof![nasty_text(), Just("user".to_string()), Just("admin".to_string())]) {
        match Role::parse(&raw) {
            Some(r) => prop_assert_eq!(r.as_str(), raw.as_str()),
            None => prop_assert!(raw != "user" && raw != "admin"),
        }
    }

    #[test]
    fn bus_envelopes_round_trip(
        to in prop::collection::vec(any::<[u8; 16]>(), 0..5),
        sessions in prop::option::of(prop::collection::vec(any::<[u8; 16]>(), 0..5)),
        kind in "[a-z.]{1,20}",
        data in nasty_text(),
    ) {
        let to: Vec<UserId> = to.into_iter().map(|b| UserId(uuid::Uuid::from_bytes(b))).collect();
        let f = frame(&kind, &serde_json::json!({"text": data}));
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&f);
        prop_assert!(parsed.is_ok());
        let parsed = parsed.unwrap_or_default();
        prop_assert_eq!(parsed["type"].as_str(), Some(kind.as_str()));
        prop_assert_eq!(parsed["data"]["text"].as_str(), Some(data.as_str()));
        let sessions: Option<Vec<SessionId>> = sessions
            .map(|v| v.into_iter().map(|b| SessionId(uuid::Uuid::from_bytes(b))).collect());
        let env = Envelope { to: to.clone(), sessions: sessions.clone(), frame: f.clone() };
        let text = serde_json::to_string(&env).unwrap_or_default();
        let back = serde_json::from_str::<Envelope>(&text);
        prop_assert!(back.is_ok());
        let back = back.map(|b| (b.to, b.sessions, b.frame)).unwrap_or_default();
        prop_assert_eq!(back, (to, sessions, f));
    }

    #[test]
    fn bus_envelope_decoding_never_panics(raw in nasty_text()) {
        let _ = serde_json::from_str::<Envelope>(&raw);
    }
}
