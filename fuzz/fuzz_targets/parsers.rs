//! The small parsers: ws/wss URLs, `host[:port]` and close frame payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbridge::protocol::read::{parse_close, Fault};

fuzz_target!(|input: &[u8]| {
    match parse_close(input) {
        Ok((code, reason)) => {
            if input.is_empty() {
                assert_eq!((code, reason.as_str()), (1005, ""));
            } else {
                assert_eq!(code, u16::from_be_bytes([input[0], input[1]]));
                assert!(matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999));
                assert_eq!(reason.as_bytes(), &input[2..]);
            }
        }
        Err(Fault::Protocol(_)) => assert!(
            input.len() == 1
                || !matches!(
                    u16::from_be_bytes([input[0], input[1]]),
                    1000..=1003 | 1007..=1014 | 3000..=4999
                )
        ),
        Err(Fault::InvalidUtf8(_)) => assert!(std::str::from_utf8(&input[2..]).is_err()),
        Err(f) => panic!("unexpected fault for a close payload: {f:?}"),
    }
    if let Ok(s) = std::str::from_utf8(input) {
        if let Ok(u) = wsbridge::connect::url::WsUrl::parse(s) {
            assert!(u.resource.starts_with('/'));
            assert!(u.port != 0);
            let again = wsbridge::connect::url::WsUrl::parse(&u.request_uri()).expect("round trip");
            assert_eq!(again.port, u.port);
        }
        if let Ok((host, ip, port)) = wsbridge::connect::url::parse_host_port(s, 80) {
            assert!(!host.is_empty() && port != 0);
            assert_eq!(host, host.to_ascii_lowercase());
            assert_eq!(ip, host.parse().ok());
        }
    }
});
