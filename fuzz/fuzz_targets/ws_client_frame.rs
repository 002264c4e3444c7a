//! The WebSocket client-frame decoder: any text decodes to a request or to a 400
//! VALIDATION_ERROR naming `frame`, `type` or `data`; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sc_api::ws::decode_client_frame;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 by the protocol (the WebSocket layer refuses anything else).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = decode_client_frame(text) {
        assert_eq!(e.status(), 400, "{e:?}");
        let details = e.details().expect("a validation error has details");
        let field = details["field"].as_str().unwrap_or_default();
        assert!(["frame", "type", "data"].contains(&field), "{e:?}");
    }
});
