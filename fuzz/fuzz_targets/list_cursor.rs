//! The list query and its keyset cursor codec: any query string is parsed or refused with a 4xx
//! naming a field, a cursor that parses is one `encode_keyset` would write, and
//! `encode_keyset` → parse gives back the same `(time, id)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sc_api::extract::{ListQuery, encode_keyset};
use sc_core::{ids::ConversationId, time::Timestamp};

fuzz_target!(|data: &[u8]| {
    // Round trip of the first 24 bytes as a (time, id).
    if let (Some(t), Some(id)) = (data.get(..8), data.get(8..24)) {
        let t = Timestamp(i64::from_le_bytes(t.try_into().unwrap_or_default()));
        let id = ConversationId(uuid::Uuid::from_bytes(id.try_into().unwrap_or_default()));
        let q = ListQuery::parse(Some(&format!("cursor={}", encode_keyset(t, id))), &[])
            .expect("our own cursor parses");
        assert_eq!(q.keyset::<ConversationId>().ok().flatten(), Some((t, id)));
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match ListQuery::parse(Some(raw), &["q"]) {
        Ok(q) => match q.keyset::<ConversationId>() {
            Ok(Some((t, id))) => {
                let again =
                    ListQuery::parse(Some(&format!("cursor={}", encode_keyset(t, id))), &[])
                        .ok()
                        .and_then(|q| q.keyset::<ConversationId>().ok().flatten());
                assert_eq!(again, Some((t, id)));
            }
            Ok(None) => {}
            Err(e) => assert_eq!(e.0.details().expect("details")["field"], "cursor"),
        },
        Err(e) => {
            assert!((400..500).contains(&e.0.status()), "{:?}", e.0);
            assert!(e.0.details().expect("details")["field"].is_string());
        }
    }
});
