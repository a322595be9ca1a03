//! The small parsers: ws/wss URLs and close frame payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = wsbridge::gate::parse_close(input);
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(u) = wsbridge::url::WsUrl::parse(s) {
            assert!(u.resource.starts_with('/'));
            assert!(u.port != 0);
            let again = wsbridge::url::WsUrl::parse(&u.request_uri()).expect("round trip");
            assert_eq!(again.port, u.port);
        }
    }
});
