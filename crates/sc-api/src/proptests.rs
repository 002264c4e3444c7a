//! Property tests of the HTTP layer's parsers (docs/testing.md): the JSON body parser with every
//! request DTO, the list query and its cursors, path ids and the WebSocket client-frame decoder.
//! No input panics; a refusal is a 4xx whose details name a field; codecs round-trip.

use crate::{
    dto::*,
    envelope::ApiError,
    extract::{ListQuery, encode_cursor, encode_keyset, parse_id, parse_json},
    ws::{ClientRequest, decode_client_frame},
};
use proptest::prelude::*;
use sc_core::{
    AppError,
    ids::{ConversationId, MessageId, UserId},
    time::Timestamp,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

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

/// The server's default `json_max_depth`.
const DEPTH: usize = 64;

/// A refusal: a 4xx; a validation error names a field in its details, and `expect` (when
/// given) is that field.
fn assert_refusal(e: &AppError, expect: Option<&str>) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&e.status()), "{:?}", e);
    if let AppError::Validation { .. } = e {
        let details = e.details().unwrap_or_default();
        let field = details["field"].as_str();
        prop_assert!(field.is_some(), "no field in {:?}", e);
        if let Some(expect) = expect {
            prop_assert_eq!(field, Some(expect), "{:?}", e);
        }
        prop_assert!(details["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    Ok(())
}

fn parsed<T: DeserializeOwned>(bytes: &[u8], depth: usize) -> Result<Option<T>, TestCaseError> {
    match parse_json::<T>(bytes, depth) {
        Ok(v) => Ok(Some(v)),
        Err(ApiError(e)) => {
            prop_assert_eq!(e.code(), "VALIDATION_ERROR", "{:?}", e);
            assert_refusal(&e, None)?;
            Ok(None)
        }
    }
}

/// Feeds `bytes` to `parse_json` for every request DTO.
fn parse_as_every_dto(bytes: &[u8], depth: usize) -> Result<(), TestCaseError> {
    parsed::<RegisterRequest>(bytes, depth)?;
    parsed::<LoginRequest>(bytes, depth)?;
    parsed::<RefreshRequest>(bytes, depth)?;
    parsed::<ResetRequest>(bytes, depth)?;
    parsed::<ResetConfirm>(bytes, depth)?;
    parsed::<TokenRequest>(bytes, depth)?;
    parsed::<CodeRequest>(bytes, depth)?;
    parsed::<TotpDisableRequest>(bytes, depth)?;
    parsed::<PatchMeRequest>(bytes, depth)?;
    parsed::<ChangePasswordRequest>(bytes, depth)?;
    parsed::<PasswordRequest>(bytes, depth)?;
    parsed::<CreateConversationRequest>(bytes, depth)?;
    parsed::<PatchConversationRequest>(bytes, depth)?;
    parsed::<AddMembersRequest>(bytes, depth)?;
    parsed::<RoleRequest>(bytes, depth)?;
    parsed::<SendMessageRequest>(bytes, depth)?;
    parsed::<EditMessageRequest>(bytes, depth)?;
    parsed::<ReactionRequest>(bytes, depth)?;
    parsed::<ReadRequest>(bytes, depth)?;
    parsed::<PresenceRequest>(bytes, depth)?;
    Ok(())
}

/// Text biased towards what breaks parsers (quotes, backslashes, backticks, controls, brackets,
/// multi-byte and astral characters).
fn nasty_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => prop::sample::select(vec![
            '"', '\\', '`', '{', '}', '[', ']', '|', '%', '&', '=', '+', '\0', '\n', '\u{7f}',
            '\u{2028}', '\u{feff}', 'é', '😀', '\u{10ffff}',
        ]),
        1 => any::<char>(),
    ];
    prop_oneof![
        4 => prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect()),
        1 => any::<String>(),
    ]
}

/// Every field name some request DTO has, plus a few none has.
const FIELDS: &[&str] = &[
    "email",
    "username",
    "password",
    "display_name",
    "device_name",
    "totp_code",
    "refresh_token",
    "token",
    "new_password",
    "code",
    "avatar_url",
    "current_password",
    "kind",
    "member_ids",
    "title",
    "encrypted",
    "user_ids",
    "role",
    "client_message_id",
    "content",
    "ciphertext",
    "reply_to",
    "attachments",
    "metadata",
    "emoji",
    "seq",
    "status",
    "type",
    "data",
    "conversation_id",
    "active",
    "evil",
    "",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(str::to_string),
        1 => nasty_text(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_text().prop_map(Value::String),
        any::<[u8; 16]>().prop_map(|b| Value::String(uuid::Uuid::from_bytes(b).to_string())),
    ]
}

/// Any JSON value, objects keyed mostly by real field names.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly objects, as a client would send.
fn json_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec((key(), json_value()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        1 => json_value(),
    ]
}

fn id_of(b: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(b)
}

/// `s` as a query-string value (application/x-www-form-urlencoded).
fn form_value(s: &str) -> String {
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_bodies_of_arbitrary_bytes_never_panic(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        nasty_text().prop_map(String::into_bytes),
    ]) {
        parse_as_every_dto(&bytes, DEPTH)?;
    }

    #[test]
    fn json_bodies_of_arbitrary_values_never_panic(v in json_body(), depth in 1usize..8) {
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        parse_as_every_dto(&bytes, DEPTH)?;
        // A low depth limit refuses deep values as the body, without building them.
        parse_as_every_dto(&bytes, depth)?;
    }

    #[test]
    fn json_bodies_cut_short_are_refused(v in json_body(), cut in any::<prop::sample::Index>()) {
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let cut = cut.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
        parse_as_every_dto(&bytes[..cut], DEPTH)?;
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_as_the_body(depth in 1usize..40, extra in 1usize..100) {
        let n = depth + extra;
        let body = format!(r#"{{"metadata":{}1{}}}"#, "[".repeat(n - 1), "]".repeat(n - 1));
        let e = parse_json::<SendMessageRequest>(body.as_bytes(), depth).err();
        prop_assert!(e.is_some());
        let e = e.map(|e| e.0).unwrap_or(AppError::MethodNotAllowed);
        assert_refusal(&e, Some("body"))?;
        prop_assert!(e.to_string().contains("nested deeper"), "{}", e);
    }

    #[test]
    fn unknown_fields_are_named(
        field in prop_oneof![nasty_text(), key()].prop_filter("the real field", |f| f != "refresh_token"),
    ) {
        let mut body = Map::new();
        body.insert("refresh_token".into(), json!("t"));
        body.insert(field.clone(), json!(1));
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let e = parse_json::<RefreshRequest>(&bytes, DEPTH).err().map(|e| e.0);
        prop_assert!(e.is_some());
        assert_refusal(&e.unwrap_or(AppError::MethodNotAllowed), Some(&field))?;
    }

    #[test]
    fn wrong_types_are_named(v in leaf().prop_filter("a string", |v| !v.is_string())) {
        let body = json!({"email": "a@b.cd", "username": "abc", "password": v, "display_name": "A"});
        let e = parse_json::<RegisterRequest>(body.to_string().as_bytes(), DEPTH).err().map(|e| e.0);
        prop_assert!(e.is_some());
        assert_refusal(&e.unwrap_or(AppError::MethodNotAllowed), Some("password"))?;
    }

    #[test]
    fn send_message_bodies_parse_to_what_was_sent(
        cmid in "[A-Za-z0-9_-]{1,64}",
        content in prop::option::of(nasty_text()),
        reply_to in prop::option::of(any::<[u8; 16]>()),
        meta in prop::option::of(prop::collection::vec((nasty_text(), leaf()), 0..4)),
    ) {
        let mut body = json!({"client_message_id": cmid, "content": content});
        if let Some(r) = reply_to {
            body["reply_to"] = json!(id_of(r));
        }
        let meta: Option<Map<String, Value>> = meta.map(|kv| kv.into_iter().collect());
        if let Some(m) = &meta {
            body["metadata"] = Value::Object(m.clone());
        }
        let r = parse_json::<SendMessageRequest>(body.to_string().as_bytes(), DEPTH);
        prop_assert!(r.is_ok(), "{}: {:?}", body, r.err());
        if let Ok(r) = r {
            prop_assert_eq!(r.client_message_id, cmid);
            prop_assert_eq!(r.content, content);
            prop_assert_eq!(r.reply_to, reply_to.map(|b| MessageId(id_of(b))));
            prop_assert_eq!(r.metadata, meta);
            prop_assert!(r.kind.is_none() && r.ciphertext.is_none() && r.attachments.is_none());
        }
    }

    #[test]
    fn patch_bodies_tell_null_from_absent(title in prop::option::of(prop::option::of(nasty_text()))) {
        let body = match &title {
            None => json!({}),
            Some(t) => json!({ "title": t }),
        };
        let r = parse_json::<PatchConversationRequest>(body.to_string().as_bytes(), DEPTH);
        prop_assert!(r.is_ok());
        prop_assert_eq!(r.ok().and_then(|r| r.title), title);
    }

    #[test]
    fn list_queries_never_panic(raw in prop_oneof![
        nasty_text(),
        prop::collection::vec(
            (prop_oneof![Just("limit".to_string()), Just("cursor".to_string()), Just("q".to_string()), nasty_text()],
             nasty_text()),
            0..4,
        ).prop_map(|kv| kv.iter().map(|(k, v)| format!("{}={}", form_value(k), form_value(v))).collect::<Vec<_>>().join("&")),
    ]) {
        match ListQuery::parse(Some(&raw), &["q"]) {
            Ok(q) => {
                prop_assert!((1..=100).contains(&q.limit));
                prop_assert!(q.params.keys().all(|k| k == "q"));
                // Whatever cursor came in, decoding it as a keyset or an id refuses or parses.
                if let Err(ApiError(e)) = q.keyset::<MessageId>() {
                    assert_refusal(&e, Some("cursor"))?;
                }
                if let Some(c) = &q.cursor
                    && let Err(ApiError(e)) = parse_id::<UserId>("cursor", c)
                {
                    assert_refusal(&e, Some("cursor"))?;
                }
            }
            Err(ApiError(e)) => assert_refusal(&e, None)?,
        }
    }

    #[test]
    fn limits_are_checked(n in prop_oneof![any::<i64>(), -5i64..110]) {
        match ListQuery::parse(Some(&format!("limit={n}")), &[]) {
            Ok(q) => {
                prop_assert!((1..=100).contains(&n));
                prop_assert_eq!(q.limit, n);
            }
            Err(ApiError(e)) => {
                prop_assert!(!(1..=100).contains(&n));
                assert_refusal(&e, Some("limit"))?;
            }
        }
    }

    #[test]
    fn keyset_cursors_round_trip(ms in any::<i64>(), id in any::<[u8; 16]>(), limit in 1i64..=100) {
        let id = ConversationId(id_of(id));
        let cursor = encode_keyset(Timestamp(ms), id);
        // Opaque and safe in a query string as it is.
        prop_assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", cursor);
        let q = ListQuery::parse(Some(&format!("limit={limit}&cursor={cursor}")), &[]);
        prop_assert!(q.is_ok());
        let q = q.ok();
        prop_assert_eq!(q.as_ref().map(|q| q.limit), Some(limit));
        let keyset = q.map(|q| q.keyset::<ConversationId>().ok().flatten());
        prop_assert_eq!(keyset, Some(Some((Timestamp(ms), id))));
    }

    #[test]
    fn opaque_cursors_round_trip(s in nasty_text()) {
        let cursor = encode_cursor(&s);
        let q = ListQuery::parse(Some(&format!("cursor={cursor}")), &[]);
        prop_assert_eq!(q.ok().and_then(|q| q.cursor), Some(s));
    }

    #[test]
    fn arbitrary_cursors_parse_or_are_refused_by_name(
        raw in prop_oneof![
            nasty_text().prop_map(|s| form_value(&s)),
            // Well-formed base64 of junk, and of near-miss keysets.
            nasty_text().prop_map(|s| encode_cursor(&s)),
            (nasty_text(), nasty_text()).prop_map(|(t, id)| encode_cursor(&format!("{t}|{id}"))),
            (any::<i64>(), "[0-9a-f-]{30,40}").prop_map(|(t, id)| encode_cursor(&format!("{t}|{id}"))),
        ],
    ) {
        match ListQuery::parse(Some(&format!("cursor={raw}")), &[]) {
            Ok(q) => match q.keyset::<UserId>() {
                Ok(k) => {
                    let (t, id) = k.unwrap_or((Timestamp(0), UserId(uuid::Uuid::nil())));
                    // What parses is what some cursor we wrote would say.
                    let again = ListQuery::parse(Some(&format!("cursor={}", encode_keyset(t, id))), &[])
                        .ok()
                        .and_then(|q| q.keyset::<UserId>().ok().flatten());
                    prop_assert_eq!(again, Some((t, id)));
                }
                Err(ApiError(e)) => assert_refusal(&e, Some("cursor"))?,
            },
            Err(ApiError(e)) => assert_refusal(&e, Some("cursor"))?,
        }
    }

    #[test]
    fn path_ids_parse_or_are_refused_by_name(raw in prop_oneof![nasty_text(), "[0-9a-fA-F-]{30,40}"], id in any::<[u8; 16]>()) {
        match parse_id::<MessageId>("id", &raw) {
            Ok(m) => prop_assert_eq!(parse_id::<MessageId>("id", &m.to_string()).ok(), Some(m)),
            Err(ApiError(e)) => assert_refusal(&e, Some("id"))?,
        }
        let id = MessageId(id_of(id));
        prop_assert_eq!(parse_id::<MessageId>("id", &id.to_string()).ok(), Some(id));
    }

    #[test]
    fn websocket_frames_of_arbitrary_text_never_panic(text in prop_oneof![
        nasty_text(),
        json_value().prop_map(|v| v.to_string()),
        (prop::sample::select(vec!["ping", "typing", "read", "call.signal", "pong", ""]), json_value())
            .prop_map(|(t, d)| json!({"type": t, "data": d}).to_string()),
    ]) {
        match decode_client_frame(&text) {
            Ok(ClientRequest::Ping(_) | ClientRequest::CallSignal { .. }) => {}
            Ok(ClientRequest::Typing { .. } | ClientRequest::Read { .. }) => {
                prop_assert!(text.contains("conversation_id"));
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "VALIDATION_ERROR");
                assert_refusal(&e, None)?;
                let details = e.details().unwrap_or_default();
                let field = details["field"].as_str().unwrap_or_default();
                prop_assert!(["frame", "type", "data"].contains(&field), "{}", field);
            }
        }
    }

    #[test]
    fn websocket_frames_decode_to_what_was_sent(
        conversation in any::<[u8; 16]>(),
        active in any::<bool>(),
        seq in any::<i64>(),
        data in json_value(),
    ) {
        let conversation_id = ConversationId(id_of(conversation));
        let typing = json!({"type": "typing", "data": {"conversation_id": conversation_id, "active": active}});
        prop_assert_eq!(
            decode_client_frame(&typing.to_string()).ok(),
            Some(ClientRequest::Typing { conversation_id, active })
        );
        let read = json!({"type": "read", "data": {"conversation_id": conversation_id, "seq": seq}});
        prop_assert_eq!(
            decode_client_frame(&read.to_string()).ok(),
            Some(ClientRequest::Read { conversation_id, seq })
        );
        let ping = json!({"type": "ping", "data": data});
        prop_assert_eq!(decode_client_frame(&ping.to_string()).ok(), Some(ClientRequest::Ping(data)));
        // Extra data on typing and read is refused by name.
        let extra = json!({"type": "read", "data": {"conversation_id": conversation_id, "seq": seq, "x": 1}});
        let e = decode_client_frame(&extra.to_string()).err();
        prop_assert!(e.is_some());
        assert_refusal(&e.unwrap_or(AppError::MethodNotAllowed), Some("data"))?;
    }

    #[test]
    fn unknown_frame_types_are_refused_as_type(kind in nasty_text().prop_filter("known", |k| !["ping", "typing", "read", "call.signal"].contains(&k.as_str()))) {
        let e = decode_client_frame(&json!({"type": kind}).to_string()).err();
        prop_assert!(e.is_some());
        let e = e.unwrap_or(AppError::MethodNotAllowed);
        assert_refusal(&e, Some("type"))?;
        prop_assert!(e.to_string().chars().count() < 64, "{}", e);
    }
}
