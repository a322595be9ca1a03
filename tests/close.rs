//! Closing through the C API (shared/spec/c-api.md): close validation and
//! sends after it, close code 0, what was sent before the close, the
//! server's close, an abrupt drop (1006), and keepalive.

mod capi;
mod support;

use std::ffi::CString;
use std::ptr;

use capi::*;
use support::TestServer;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::wsb_result::*;

#[test]
fn close_validation_and_send_after_close() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    for bad in [1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(ws.close(bad, None), WSB_ERR_INVALID_ARGUMENT, "code {bad}");
    }
    assert_eq!(
        ws.close(1000, Some(&"x".repeat(124))),
        WSB_ERR_INVALID_ARGUMENT
    );
    let bad_utf8 = CString::new(vec![0xc3u8, 0x28]).unwrap();
    assert_eq!(
        wsb_close(ws.0, 1000, bad_utf8.as_ptr()),
        WSB_ERR_INVALID_UTF8
    );
    assert_eq!(
        ws.state(),
        WSB_STATE_OPEN,
        "failed close calls change nothing"
    );
    assert_eq!(ws.close(4321, Some(&"r".repeat(123))), WSB_OK);
    assert_eq!(ws.close(1000, None), WSB_OK, "second call is a no-op");
    assert_eq!(ws.send_text("late"), WSB_ERR_NOT_OPEN);
    assert_eq!(ws.send_binary(b"late"), WSB_ERR_NOT_OPEN);
    assert_eq!(wsb_ping(ws.0, ptr::null(), 0), WSB_ERR_NOT_OPEN);
    let ev = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!(
        (ev.close_code, ev.clean),
        (4321, true),
        "the code the peer echoed"
    );
    assert_eq!(ev.text(), "r".repeat(123));
    assert_eq!(ws.send_text("later"), WSB_ERR_NOT_OPEN);
}

#[test]
fn close_code_zero_means_1000() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.close(0, None), WSB_OK);
    let ev = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!(ev.close_code, 1000);
    let c = srv.wait_client_closes(1, WAIT);
    assert_eq!(c[0].code, Some(1000));
}

#[test]
fn everything_sent_before_close_arrives_before_it() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let big = vec![7u8; 300_000];
    for i in 0..500 {
        assert_eq!(ws.send_text(&format!("t{i}")), WSB_OK);
        if i % 100 == 0 {
            assert_eq!(ws.send_binary(&big), WSB_OK);
        }
    }
    assert_eq!(ws.close(1000, Some("done")), WSB_OK);
    for i in 0..500 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("t{i}"));
        if i % 100 == 0 {
            assert_eq!(ws.expect(WSB_EVENT_BINARY).data.len(), big.len());
        }
    }
    let ev = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!((ev.close_code, ev.clean), (1000, true));
    assert_eq!(ws.buffered(), 0);
}

#[test]
fn server_initiated_close() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/close?code=4001&reason=bye"), None);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE]);
    assert_eq!(
        (evs[0].close_code, evs[0].clean, evs[0].text().as_str()),
        (4001, true, "bye")
    );
    // Empty close frame from the server: 1005.
    let ws = Ws::open(&srv.url("/close"), None);
    let ev = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!((ev.close_code, ev.clean), (1005, true));
    assert_eq!(ws.send_text("x"), WSB_ERR_NOT_OPEN);
}

#[test]
fn abrupt_drop_is_error_then_close_1006() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/drop"), None);
    let evs = ws.until_close();
    assert_eq!(
        kinds(&evs),
        [WSB_EVENT_TEXT, WSB_EVENT_ERROR, WSB_EVENT_CLOSE]
    );
    assert_eq!(evs[0].text(), "bye");
    assert_eq!(evs[1].error, WSB_ERR_IO);
    assert_eq!((evs[2].close_code, evs[2].clean), (1006, false));
    let ws = Ws::open(&srv.url("/drop_mid"), None);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_IO);
}

#[test]
fn keepalive_drops_a_silent_peer() {
    let srv = TestServer::start();
    let o = Opts::new().keepalive(100, 200);
    let ws = Ws::open(&srv.url("/silent"), Some(&o));
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(
        (evs[0].error, evs[0].text().as_str()),
        (WSB_ERR_IO, "keepalive timeout")
    );
    assert_eq!((evs[1].close_code, evs[1].clean), (1006, false));
}

#[test]
fn keepalive_keeps_a_live_peer() {
    let srv = TestServer::start();
    let o = Opts::new().keepalive(20, 5000);
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    // Several ping intervals pass while we wait for nothing: the peer answers
    // the pings, so no ERROR or CLOSE arrives.
    assert!(ws.next_within(200).is_none());
    assert_eq!(ws.send_text("still here"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "still here");
}
