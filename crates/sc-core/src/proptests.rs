//! Property tests of the parsers in this crate (docs/testing.md): no input panics, a refusal is a
//! 400 naming the field it was asked to check, and whatever a parser accepts it accepts again
//! unchanged (parse → as_str → parse is the identity), with round trips where a codec exists.

use crate::{
    AppError,
    config::IpNet,
    domain::{AvatarUrl, DisplayName, Email, Username, short_text},
    ids::{ConversationId, MessageId, UserId},
    secret::redact_url,
    secret_bytes,
    time::Timestamp,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bounded so the whole file runs in a second or two in a debug build; no regression files.
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
    prop_assert_eq!(e.code(), "VALIDATION_ERROR");
    let details = e.details();
    prop_assert!(details.is_some(), "no details: {:?}", e);
    let details = details.unwrap_or_default();
    prop_assert_eq!(details["field"].as_str(), Some(field));
    prop_assert!(details["reason"].as_str().is_some_and(|r| !r.is_empty()));
    Ok(())
}

/// Any text, biased towards what breaks parsers: ASCII punctuation, whitespace of every kind,
/// controls, letters whose case mapping changes their length (`İ`, `ẞ`, `Ⱥ`, the Kelvin sign),
/// combining marks, emoji and long runs.
fn nasty_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => prop::sample::select(vec![
            '\0', '\t', '\n', '\r', '\u{7}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}',
            '\u{feff}', '\u{200b}', 'İ', 'ẞ', 'Ⱥ', 'Σ', '\u{212a}', 'ß', 'ﬀ', '\u{301}', '\u{308}',
            'é', 'Ω', '😀', '\u{1f3fb}', '\u{200d}', '\u{fe0f}', '@', '.', '/', ':',
        ]),
        1 => any::<char>(),
    ];
    prop_oneof![
        3 => prop::collection::vec(ch, 0..80).prop_map(|v| v.into_iter().collect()),
        1 => prop::collection::vec(proptest::char::range('a', 'c'), 250..300)
            .prop_map(|v| v.into_iter().collect()),
        1 => any::<String>(),
    ]
}

/// Plausible email addresses (most are valid), sometimes with letters whose lowercase form is
/// shorter (the Kelvin sign) or longer (`İ`, `Ⱥ`) in UTF-8, near the length limits.
fn email_like() -> impl Strategy<Value = String> {
    let local = prop_oneof!["[A-Za-z0-9._%+\u{212a}İ-]{1,70}", "[a-zİȺ]{20,32}",];
    let domain = prop_oneof![
        "[A-Za-z0-9-]{1,20}(\\.[A-Za-z]{2,8}){1,3}",
        "[a-zİȺ]{40,63}\\.[a-zİȺ]{40,63}\\.[a-z]{2,3}",
    ];
    (local, domain, "[ \t]{0,2}").prop_map(|(l, d, pad)| format!("{pad}{l}@{d}{pad}"))
}

/// The first and last instant RFC 3339 can write: 0000-01-01T00:00:00.000Z and
/// 9999-12-31T23:59:59.999Z.
const RFC3339_MIN_MS: i64 = -62_167_219_200_000;
const RFC3339_MAX_MS: i64 = 253_402_300_799_999;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn username_parses_once(raw in prop_oneof![nasty_text(), "[A-Za-z0-9_.\u{212a}-]{0,40}"]) {
        match Username::parse("username", &raw) {
            Ok(u) => {
                let s = u.as_str();
                prop_assert!((3..=32).contains(&s.len()), "{s:?}");
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'));
                // Normalizing again changes nothing.
                let again = Username::parse("username", s);
                prop_assert_eq!(again.ok(), Some(u.clone()));
            }
            Err(e) => assert_refusal(&e, "username")?,
        }
    }

    #[test]
    fn username_accepts_its_alphabet(raw in "[A-Za-z0-9_.]{3,32}") {
        let u = Username::parse("username", &raw);
        prop_assert_eq!(u.ok().map(|u| u.as_str().to_string()), Some(raw.to_ascii_lowercase()));
    }

    #[test]
    fn email_parses_once(raw in prop_oneof![nasty_text(), email_like()]) {
        match Email::parse("email", &raw) {
            Ok(e) => {
                prop_assert_eq!(&e.address, raw.trim());
                prop_assert_eq!(&e.normalized, &e.address.to_lowercase());
                // The address and its normal form are both accepted again, to the same normal
                // form (normalizing is idempotent).
                let again = Email::parse("email", &e.address);
                prop_assert_eq!(again.ok(), Some(e.clone()));
                let normal = Email::parse("email", &e.normalized);
                prop_assert!(normal.is_ok(), "normal form {:?} refused", e.normalized);
                prop_assert_eq!(normal.ok().map(|n| n.normalized), Some(e.normalized.clone()));
                prop_assert!(e.normalized.len() <= 254);
            }
            Err(err) => assert_refusal(&err, "email")?,
        }
    }

    #[test]
    fn display_name_parses_once(raw in nasty_text()) {
        match DisplayName::parse("display_name", &raw) {
            Ok(d) => {
                let s = d.as_str();
                prop_assert_eq!(s, raw.trim());
                prop_assert!((1..=64).contains(&s.chars().count()));
                prop_assert!(!s.chars().any(char::is_control));
                let again = DisplayName::parse("display_name", s);
                prop_assert_eq!(again.ok(), Some(d.clone()));
            }
            Err(e) => assert_refusal(&e, "display_name")?,
        }
    }

    #[test]
    fn avatar_url_parses_once(raw in prop_oneof![
        nasty_text(),
        nasty_text().prop_map(|s| format!("https://{s}")),
        "https?://[a-z0-9./?=&%-]{0,40}",
    ]) {
        match AvatarUrl::parse("avatar_url", &raw) {
            Ok(u) => {
                prop_assert_eq!(u.as_str(), raw.as_str());
                prop_assert!(u.as_str().starts_with("http://") || u.as_str().starts_with("https://"));
                let again = AvatarUrl::parse("avatar_url", u.as_str());
                prop_assert_eq!(again.ok(), Some(u.clone()));
            }
            Err(e) => assert_refusal(&e, "avatar_url")?,
        }
    }

    #[test]
    fn short_text_parses_once(raw in nasty_text(), max in 0usize..100) {
        match short_text("device_name", &raw, max) {
            Ok(s) => {
                prop_assert_eq!(s.as_str(), raw.trim());
                prop_assert!(s.chars().count() <= max);
                let again = short_text("device_name", &s, max);
                prop_assert_eq!(again.ok(), Some(s));
            }
            Err(e) => assert_refusal(&e, "device_name")?,
        }
    }

    #[test]
    fn ids_round_trip(bytes in any::<[u8; 16]>()) {
        let id = UserId(uuid::Uuid::from_bytes(bytes));
        prop_assert_eq!(id.to_string().parse::<UserId>().ok(), Some(id));
        prop_assert_eq!(id.to_string().to_uppercase().parse::<UserId>().ok(), Some(id));
        let json = serde_json::to_string(&id).unwrap_or_default();
        prop_assert_eq!(json.clone(), format!("\"{id}\""));
        prop_assert_eq!(serde_json::from_str::<UserId>(&json).ok(), Some(id));
    }

    #[test]
    fn ids_refuse_junk_without_panicking(raw in prop_oneof![nasty_text(), "[0-9a-fA-F-]{30,40}"]) {
        // Whatever parses is printed back in the canonical hyphenated lowercase form.
        if let Ok(id) = raw.parse::<MessageId>() {
            prop_assert_eq!(id.to_string().parse::<MessageId>().ok(), Some(id));
        }
        let _ = raw.parse::<ConversationId>();
        let _ = serde_json::from_str::<UserId>(&raw);
    }

    #[test]
    fn timestamps_format_as_rfc3339_and_parse_back(ms in RFC3339_MIN_MS..=RFC3339_MAX_MS) {
        let t = Timestamp(ms);
        let s = t.to_rfc3339();
        // `YYYY-MM-DDTHH:MM:SS.mmmZ`: exactly three fractional digits and a `Z`.
        prop_assert_eq!(s.len(), 24, "{}", s);
        let shape = s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
        prop_assert!(shape, "{}", s);
        let parsed = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339);
        prop_assert!(parsed.is_ok(), "{} does not parse: {:?}", s, parsed);
        let back = parsed.map(|p| p.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        prop_assert_eq!(back, i128::from(ms));
        // Serialized as that same string.
        prop_assert_eq!(serde_json::to_value(t).ok(), Some(serde_json::Value::String(s)));
    }

    #[test]
    fn timestamp_text_sorts_like_the_number(
        a in RFC3339_MIN_MS..=RFC3339_MAX_MS,
        b in RFC3339_MIN_MS..=RFC3339_MAX_MS,
    ) {
        let (sa, sb) = (Timestamp(a).to_rfc3339(), Timestamp(b).to_rfc3339());
        prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
    }

    #[test]
    fn timestamp_arithmetic_never_panics(ms in any::<i64>(), other in any::<i64>(), secs in any::<i64>(), d in any::<u64>()) {
        let t = Timestamp(ms);
        let _ = t.to_rfc3339();
        let _ = t.seconds_until(Timestamp(other));
        let _ = Timestamp::from_unix_seconds(secs);
        let d = std::time::Duration::from_millis(d);
        let _ = (t.plus(d), t.minus(d), t.unix_seconds());
    }

    #[test]
    fn secret_bytes_decodes_both_base64_alphabets(bytes in prop::collection::vec(any::<u8>(), 0..80), pad in "[ \n]{0,2}") {
        use base64::Engine;
        let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert_eq!(secret_bytes(&format!("{pad}{std}{pad}")), Some(bytes.clone()));
        prop_assert_eq!(secret_bytes(&url), Some(bytes));
    }

    #[test]
    fn secret_bytes_never_panics(raw in nasty_text()) {
        let _ = secret_bytes(&raw);
    }

    #[test]
    fn redact_url_hides_the_password(
        scheme in "[a-z]{2,10}",
        user in "[a-z0-9]{0,10}",
        pw in "[A-Z]{8,16}",
        host in "[a-z0-9.:/@]{0,30}",
    ) {
        let shown = redact_url(&format!("{scheme}://{user}:{pw}@{host}"));
        prop_assert!(!shown.contains(&pw), "{}", shown);
        prop_assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn redact_url_never_panics(raw in nasty_text()) {
        let _ = redact_url(&raw);
    }

    #[test]
    fn trusted_proxy_nets_parse_and_contain_their_address(
        addr in prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            // IPv4-mapped IPv6, as a dual-stack listener reports IPv4 peers.
            any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
        ],
        prefix in any::<u8>(),
        with_prefix in any::<bool>(),
    ) {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let text = if with_prefix { format!("{addr}/{prefix}") } else { addr.to_string() };
        match IpNet::parse(&text) {
            Some(net) => {
                prop_assert!(!with_prefix || prefix <= max);
                // A net contains the address it was written with, in either notation (an
                // IPv4-mapped address with a prefix under /96 names an IPv6 net, which IPv4
                // peers never match).
                let mapped_v6_net = matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
                    && with_prefix
                    && prefix < 96;
                prop_assert!(mapped_v6_net || net.contains(addr), "{} does not contain {}", text, addr);
                if let IpAddr::V4(v4) = addr {
                    prop_assert!(net.contains(IpAddr::V6(v4.to_ipv6_mapped())));
                }
                // Written back as addr/prefix, it parses to the same net.
                let again = IpNet::parse(&format!("{}/{}", net.addr, net.prefix));
                prop_assert_eq!(again, Some(net));
            }
            None => prop_assert!(with_prefix && prefix > max, "{} refused", text),
        }
    }

    #[test]
    fn trusted_proxy_parse_never_panics(raw in nasty_text(), ip in any::<u128>()) {
        if let Some(net) = IpNet::parse(&raw) {
            let _ = net.contains(IpAddr::V6(Ipv6Addr::from(ip)));
            let _ = net.contains(IpAddr::V4(Ipv4Addr::from(ip as u32)));
        }
    }
}
