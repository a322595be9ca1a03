//! permessage-deflate (RFC 7692) through the C API, against a peer written
//! with flate2 directly (`/upgrade?mode=deflate` in tests/support): the
//! negotiation, round trips, and the classic peer bugs as raw frames.

mod capi;
mod support;

use capi::*;
use support::raw::{self, encode_frame, encode_frame_rsv, OP_BINARY, OP_CONT, OP_PING, OP_TEXT};
use support::TestServer;
use wsbridge::ffi::options::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The deflate peer, answering the offer with `ext`, first writing `frames`.
fn peer_url(srv: &TestServer, ext: &str, frames: &[u8]) -> String {
    srv.url(&format!(
        "/upgrade?mode=deflate&ext={}&hex={}",
        enc(ext),
        hex(frames)
    ))
}

fn on() -> Opts {
    Opts::new().compression(true)
}

/// JSON-like text: what scripts send, and what compresses well.
fn json(n: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"player{}\",\"pos\":[{}.5,{}.25]}},",
            i % 7,
            i * 3,
            i * 5
        ));
        i += 1;
    }
    s.truncate(n);
    s
}

fn flate() -> flate2::Compress {
    flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, 15)
}

/// Echo `msgs` (text if `text`) and check each comes back whole, in order.
fn round_trip(ws: &Ws, msgs: &[Vec<u8>], text: bool) {
    for m in msgs {
        let r = if text {
            ws.send_text(std::str::from_utf8(m).unwrap())
        } else {
            ws.send_binary(m)
        };
        assert_eq!(r, WSB_OK, "{}", last_error());
    }
    for m in msgs {
        let ev = ws.next().expect("echo");
        assert_eq!(
            ev.kind,
            if text {
                WSB_EVENT_TEXT
            } else {
                WSB_EVENT_BINARY
            }
        );
        assert_eq!(ev.data.len(), m.len());
        assert!(ev.data == *m, "echo of {} bytes differs", m.len());
    }
}

/// What the peer counted: (messages with RSV1, without), before this call.
fn stats(ws: &Ws) -> (usize, usize) {
    assert_eq!(ws.send_text("stats?"), WSB_OK);
    let ev = ws.expect(WSB_EVENT_TEXT);
    let t = ev.text();
    let (c, p) = t
        .strip_prefix("compressed=")
        .and_then(|r| r.split_once(" plain="))
        .unwrap_or_else(|| panic!("stats: {t}"));
    (c.parse().unwrap(), p.parse().unwrap())
}

#[test]
fn messages_of_every_size_round_trip_and_small_ones_go_uncompressed() {
    let srv = TestServer::start();
    let ws = Ws::open(&peer_url(&srv, "permessage-deflate", b""), Some(&on()));
    assert!(ws.compressed(), "the server accepted the offer");
    let sizes = [0usize, 1, 63, 64, 65, 1000, 70_000, 1 << 20];
    let texts: Vec<Vec<u8>> = sizes.iter().map(|&n| json(n).into_bytes()).collect();
    round_trip(&ws, &texts, true);
    // Binary that does not compress (a pattern with no repeats short of 251).
    let bins: Vec<Vec<u8>> = sizes.iter().map(|&n| support::big_pattern(n)).collect();
    round_trip(&ws, &bins, false);
    let big = sizes.iter().filter(|&&n| n >= 64).count();
    assert_eq!(stats(&ws), (2 * big, 2 * (sizes.len() - big)));
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(
        evs.last().map(|e| (e.close_code, e.clean)),
        Some((1000, true))
    );
}

#[test]
fn a_server_that_declines_leaves_compression_off() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), Some(&on()));
    assert!(!ws.compressed());
    round_trip(&ws, &[json(5000).into_bytes()], true);
    // And it is off unless asked for: the deflate peer's answer would fail
    // an upgrade that offered nothing (tests/faults.rs), so plain /echo:
    let ws = Ws::open(&srv.url("/echo"), None);
    assert!(!ws.compressed());
}

#[test]
fn no_context_takeover_in_both_directions() {
    let srv = TestServer::start();
    // The server resets its compressor per message (it says so); we reset
    // ours because we asked to: the peer's decompressor resets per message,
    // so a message of ours using old context would not inflate there.
    let o = on().compression_params(0, 0, true, true);
    let ext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let ws = Ws::open(&peer_url(&srv, ext, b""), Some(&o));
    assert!(ws.compressed());
    let same: Vec<Vec<u8>> = (0..5).map(|_| json(3000).into_bytes()).collect();
    round_trip(&ws, &same, true);
    assert_eq!(stats(&ws), (5, 0));
}

#[test]
fn context_takeover_and_an_uncompressed_message_between_compressed_ones() {
    let srv = TestServer::start();
    let a = json(4000);
    let mut c = flate();
    let first = raw::deflate_message(&mut c, a.as_bytes());
    // The same text again, with the first message's context: far shorter.
    let second = raw::deflate_message(&mut c, a.as_bytes());
    assert!(second.len() * 4 < first.len(), "context is used");
    let mut frames = encode_frame_rsv(true, 4, OP_TEXT, &first, None);
    frames.extend(encode_frame(true, OP_TEXT, b"plain in between", None));
    frames.extend(encode_frame_rsv(true, 4, OP_TEXT, &second, None));
    let ws = Ws::open(&peer_url(&srv, "permessage-deflate", &frames), Some(&on()));
    for want in [a.as_str(), "plain in between", a.as_str()] {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), want);
    }
    // With server_no_context_takeover the server starts each message afresh.
    let mut c = flate();
    let mut frames = Vec::new();
    for _ in 0..2 {
        frames.extend(encode_frame_rsv(
            true,
            4,
            OP_TEXT,
            &raw::deflate_message(&mut c, a.as_bytes()),
            None,
        ));
        c.reset();
    }
    let ws = Ws::open(
        &peer_url(
            &srv,
            "permessage-deflate; server_no_context_takeover",
            &frames,
        ),
        Some(&on()),
    );
    for _ in 0..2 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), a);
    }
}

#[test]
fn a_ping_in_the_middle_of_a_fragmented_compressed_message() {
    let srv = TestServer::start();
    let a = json(5000);
    let wire = raw::deflate_message(&mut flate(), a.as_bytes());
    let (x, y) = wire.split_at(wire.len() / 2);
    let mut frames = encode_frame_rsv(false, 4, OP_TEXT, x, None);
    frames.extend(encode_frame(true, OP_PING, b"mid", None));
    frames.extend(encode_frame(true, OP_CONT, y, None));
    let ws = Ws::open(&peer_url(&srv, "permessage-deflate", &frames), Some(&on()));
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), a);
    // Still in step afterwards.
    round_trip(&ws, &[json(300).into_bytes()], true);
}

#[test]
fn compressed_control_frames_and_rsv1_on_a_continuation_fail_with_1002() {
    let srv = TestServer::start();
    let p = raw::deflate_message(&mut flate(), b"ping payload");
    let control = encode_frame_rsv(true, 4, OP_PING, &p, None);
    let wire = raw::deflate_message(&mut flate(), json(500).as_bytes());
    let (x, y) = wire.split_at(wire.len() / 2);
    let mut cont = encode_frame_rsv(false, 4, OP_TEXT, x, None);
    cont.extend(encode_frame_rsv(true, 4, OP_CONT, y, None));
    for (what, frames, detail) in [
        ("compressed ping", control, "compressed control frame"),
        ("RSV1 on a continuation", cont, "continuation"),
    ] {
        let error = fails_with_1002(&srv, what, &frames);
        assert!(error.contains(detail), "{what}: {error}");
    }
}

/// A permessage-deflate peer sends `frames`: the connection fails with
/// ERROR (`WSB_ERR_PROTOCOL`), then CLOSE after our close 1002. Returns the
/// ERROR's detail.
fn fails_with_1002(srv: &TestServer, what: &str, frames: &[u8]) -> String {
    let ws = Ws::open(&peer_url(srv, "permessage-deflate", frames), Some(&on()));
    let evs = ws.until_close();
    assert_eq!(
        kinds(&evs),
        [WSB_EVENT_ERROR, WSB_EVENT_CLOSE],
        "{what}: {evs:?}"
    );
    assert_eq!(evs[0].error, WSB_ERR_PROTOCOL, "{what}");
    assert_eq!((evs[1].close_code, evs[1].clean), (1002, true), "{what}");
    evs[0].text()
}

/// Data that does not inflate is a protocol error: ERROR naming the
/// compressed data, and our close says 1002 (1007 is for invalid UTF-8 in a
/// text message only), in text and binary messages alike.
#[test]
fn corrupt_compressed_data_fails_with_1002_naming_the_compressed_data() {
    let srv = TestServer::start();
    // A DEFLATE block of the reserved type 11.
    let reserved = [0x06, 0x00];
    // RFC 7692 §7.2.3.2's second "Hello": refers back to a message that
    // never came.
    let back_reference = [0xf2, 0x00, 0x11, 0x00, 0x00];
    for (what, frames) in [
        (
            "garbage text",
            encode_frame_rsv(true, 4, OP_TEXT, &[0xff; 40], None),
        ),
        (
            "reserved block type, binary",
            encode_frame_rsv(true, 4, OP_BINARY, &reserved, None),
        ),
        (
            "reserved block type, text",
            encode_frame_rsv(true, 4, OP_TEXT, &reserved, None),
        ),
        (
            "a reference to no message",
            encode_frame_rsv(true, 4, OP_TEXT, &back_reference, None),
        ),
    ] {
        let closes = srv.client_closes().len();
        let error = fails_with_1002(&srv, what, &frames);
        assert!(
            error.starts_with("invalid compressed data"),
            "{what}: {error}"
        );
        // What the peer was told.
        let seen = srv.wait_client_closes(closes + 1, std::time::Duration::from_secs(20));
        let ours = seen.last().expect("our close reached the peer");
        assert_eq!(ours.code, Some(1002), "{what}: {ours:?}");
        assert!(ours.reason.contains("compressed data"), "{what}: {ours:?}");
    }
}

#[test]
fn a_client_window_of_8_keeps_the_connection_and_sends_uncompressed() {
    let srv = TestServer::start();
    let ext = "permessage-deflate; client_max_window_bits=8";
    let ws = Ws::open(&peer_url(&srv, ext, b""), Some(&on()));
    assert!(ws.compressed());
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| json(2000 + i).into_bytes()).collect();
    round_trip(&ws, &msgs, true);
    assert_eq!(stats(&ws), (0, 3), "nothing went out compressed");
}

#[test]
fn the_window_the_server_picks_is_used() {
    // Python websockets answers a bare client_max_window_bits with =12.
    let srv = TestServer::start();
    for ext in [
        "permessage-deflate; client_max_window_bits=12",
        "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10",
    ] {
        let ws = Ws::open(&peer_url(&srv, ext, b""), Some(&on()));
        assert!(ws.compressed(), "{ext}");
        round_trip(
            &ws,
            &[json(100_000).into_bytes(), json(70).into_bytes()],
            true,
        );
        assert_eq!(stats(&ws), (2, 0), "{ext}");
    }
}

#[test]
fn answers_the_server_may_not_give_fail_the_upgrade() {
    let srv = TestServer::start();
    let no_client_bits = on().compression_params(0, 0, false, false);
    for (ext, opts, detail) in [
        ("permessage-deflate; foo", on(), "unknown parameter"),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            on(),
            "twice",
        ),
        (
            "permessage-deflate; server_max_window_bits=16",
            on(),
            "not 8 to 15",
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            no_client_bits,
            "not offered",
        ),
        ("permessage-deflate, permessage-deflate", on(), "twice"),
    ] {
        let ws = Ws::connect(&peer_url(&srv, ext, b""), Some(&opts)).unwrap();
        assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE, "{ext}");
        assert!(last_error().contains(detail), "{ext}: {}", last_error());
        let evs = ws.until_close();
        assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{ext}");
        assert_eq!(evs[1].close_code, 1006);
    }
}

#[test]
fn window_parameters_out_of_range_are_invalid_arguments() {
    let o = Opts::new();
    for (client, server, name) in [
        (8u8, 0u8, "client_max_window_bits"),
        (16, 0, "client_max_window_bits"),
        (0, 8, "server_max_window_bits"),
        (0, 255, "server_max_window_bits"),
    ] {
        let r = wsb_options_set_compression_params(o.0, client, server, false, false);
        assert_eq!(r, WSB_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains(name), "{}", last_error());
    }
    for bits in [0u8, 9, 12, 15] {
        assert_eq!(
            wsb_options_set_compression_params(o.0, bits, bits, true, true),
            WSB_OK
        );
    }
    assert_eq!(
        wsb_options_set_compression(std::ptr::null_mut(), true),
        WSB_ERR_NULL_ARGUMENT
    );
}
