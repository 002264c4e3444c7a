//! The JSON body parser with the send-message DTO: any bytes are parsed or refused with a 4xx
//! VALIDATION_ERROR naming a field; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sc_api::{dto::SendMessageRequest, extract::parse_json};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_json::<SendMessageRequest>(data, 64) {
        let e = e.0;
        assert!((400..500).contains(&e.status()), "{e:?}");
        let details = e.details().expect("a validation error has details");
        assert!(details["field"].is_string(), "{e:?}");
    }
});
