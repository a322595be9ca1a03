//! Arbitrary bytes as the server's answer to the upgrade request, through
//! what the library does with it (`src/handshake.rs`, as `connect.rs` uses
//! it): the response head collected by `ResponseHead::push` from chunks
//! whose sizes the fuzzer picks, checked by `verify` against the request's
//! accept value, subprotocols and extension offer, then the
//! permessage-deflate answer by `deflate_agreed`.
//!
//! Input: `[config][n][n % 8 + 1 chunk-size bytes][response bytes]`; config
//! bit 0: compression offered, bits 1-2: which offer, bits 3-4: which
//! subprotocols; `n >> 3` of 29 to 31: padding (a header line of about
//! 64 KiB inserted after the first line, so that the head's size limit is
//! reached).
//!
//! Invariants: no panic, no hang; with no interim (1xx) head skipped, the
//! head ends at the first CRLFCRLF; it is found as soon as the chunk
//! holding it arrives, interim heads are whole heads before it, heads are
//! refused only past `MAX_RESPONSE_HEAD` (counted over all of them), and
//! interim heads + head + excess are the bytes pushed; an accepted
//! upgrade selected a requested subprotocol (or none if none was requested)
//! and only offered extensions; an agreed permessage-deflate is within the
//! offer (window bits 8-15, never over what was offered, the
//! no_context_takeover asked for).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbridge::connect::handshake::{self, Request, ResponseHead, MAX_RESPONSE_HEAD};
use wsbridge::options::Options;
use wsbridge::protocol::deflate::Offer;
use wsbridge::connect::url::WsUrl;

#[path = "common.rs"]
mod common;

/// RFC 6455 §1.3's example key; its accept value is
/// "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

const OFFERS: [Offer; 4] = [
    Offer {
        client_max_window_bits: Some(0),
        server_max_window_bits: None,
        client_no_context_takeover: false,
        server_no_context_takeover: false,
    },
    Offer {
        client_max_window_bits: None,
        server_max_window_bits: None,
        client_no_context_takeover: false,
        server_no_context_takeover: false,
    },
    Offer {
        client_max_window_bits: Some(10),
        server_max_window_bits: Some(12),
        client_no_context_takeover: true,
        server_no_context_takeover: true,
    },
    Offer {
        client_max_window_bits: Some(15),
        server_max_window_bits: Some(9),
        client_no_context_takeover: false,
        server_no_context_takeover: true,
    },
];

/// Padding (rare: padded inputs are slow): with the 129-byte 101 of the
/// seeds, a head of 65 409 bytes, exactly the limit, and one byte over.
fn pad(n: u8) -> usize {
    match n >> 3 {
        29 => MAX_RESPONSE_HEAD - 256,
        30 => MAX_RESPONSE_HEAD - 129,
        31 => MAX_RESPONSE_HEAD - 128,
        _ => 0,
    }
}

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fuzz_target!(|input: &[u8]| {
    let [config, n, rest @ ..] = input else {
        return;
    };
    let nchunks = usize::from(n % 8) + 1;
    if rest.len() < nchunks {
        return;
    }
    let (chunks, data) = rest.split_at(nchunks);

    let mut opts = Options::default();
    if config & 1 != 0 {
        opts.compression(true);
        opts.deflate_offer = OFFERS[usize::from(config >> 1 & 3)];
    }
    for p in [&[][..], &["chat"], &["chat", "superchat"], &["v2.x", "chat"]][usize::from(config >> 3 & 3)] {
        opts.add_subprotocol(p).unwrap();
    }
    let url = WsUrl::parse("ws://127.0.0.1:9/x").unwrap();
    let request = Request::with_key(&url, &opts, KEY).unwrap();

    // The server's bytes, padded after the first line if asked.
    let pad = pad(*n);
    let mut bytes = Vec::with_capacity(data.len() + pad);
    let cut = data.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.extend_from_slice(&data[..cut]);
    if pad > 0 {
        bytes.extend_from_slice(b"X-Pad: ");
        bytes.resize(cut + pad.max(9) - 2, b'p');
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(&data[cut..]);

    // The head, as connect.rs collects it.
    let end = find_end(&bytes);
    let mut head = ResponseHead::new();
    let mut pushed = 0;
    let mut before_last = 0;
    let mut arrivals = 0;
    let mut outcome = None;
    while pushed < bytes.len() {
        let size = common::chunk_size(chunks[arrivals % chunks.len()]);
        arrivals += 1;
        let piece = &bytes[pushed..(pushed + size).min(bytes.len())];
        before_last = pushed;
        pushed += piece.len();
        match head.push(piece) {
            Ok(false) => {
                assert!(
                    head.interim() > 0 || end.is_none_or(|e| e > pushed),
                    "the head's end was missed"
                );
                assert!(pushed < MAX_RESPONSE_HEAD, "waiting past the limit");
            }
            r => {
                outcome = Some(r.is_ok());
                break;
            }
        }
    }
    let complete = match outcome {
        None => {
            // Every byte was taken and no final head came: the first
            // CRLFCRLF (if any) ended an interim head.
            assert!((head.interim() > 0 || end.is_none()) && bytes.len() < MAX_RESPONSE_HEAD);
            return;
        }
        Some(false) => {
            assert!(
                (head.interim() > 0 || end.is_none_or(|e| e > MAX_RESPONSE_HEAD))
                    && pushed >= MAX_RESPONSE_HEAD,
                "heads within the limit were refused"
            );
            return;
        }
        Some(true) => head.head(),
    };
    let end = pushed - head.excess().len();
    let start = end - complete.len();
    assert!(end <= MAX_RESPONSE_HEAD);
    assert_eq!(complete, &bytes[start..end]);
    assert!(complete.ends_with(b"\r\n\r\n"), "the head ends at a blank line");
    if head.interim() == 0 {
        assert_eq!(start, 0);
        assert_eq!(Some(end), find_end(&bytes), "not the head up to the first CRLFCRLF");
    } else {
        assert!(bytes[..start].ends_with(b"\r\n\r\n"), "interim heads are whole");
    }
    assert!(before_last < end && end <= pushed, "not found in the piece that completed it");

    // Its checks.
    let offered = handshake::offered_extensions(&opts);
    let Ok(accepted) = handshake::verify(complete, &request.accept, &opts.subprotocols, &offered)
    else {
        return;
    };
    if opts.subprotocols.is_empty() {
        assert_eq!(accepted.subprotocol, "");
    } else {
        assert!(opts.subprotocols.contains(&accepted.subprotocol));
    }
    for e in &accepted.extensions {
        let name = e.split(';').next().unwrap().trim();
        assert!(offered.iter().any(|o| o.eq_ignore_ascii_case(name)), "{e:?} was not offered");
    }
    let Ok(Some(agreed)) = handshake::deflate_agreed(&opts, &accepted) else {
        return;
    };
    let offer = opts.compression_offer().expect("offered");
    assert!((8..=15).contains(&agreed.client_window));
    assert!((8..=15).contains(&agreed.server_window));
    match offer.client_max_window_bits {
        None => assert_eq!(agreed.client_window, 15),
        Some(0) => {}
        Some(b) => assert!(agreed.client_window <= b),
    }
    if let Some(b) = offer.server_max_window_bits {
        assert!(agreed.server_window <= b);
    }
    assert!(agreed.server_no_context_takeover || !offer.server_no_context_takeover);
    assert!(agreed.client_no_context_takeover || !offer.client_no_context_takeover);
});
