//! Misuse through the C API: many threads on one socket, odd URLs, bursts of
//! failing connects. Every call must give a defined result; nothing crashes
//! or deadlocks.

mod capi;
mod support;

use std::ffi::CString;
use std::sync::Arc;

use capi::*;
use support::TestServer;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

#[test]
fn polling_while_other_threads_send_and_close() {
    let srv = TestServer::start();
    for _round in 0..5 {
        let ws = Arc::new(Ws::open(&srv.url("/echo"), None));
        let sender = {
            let ws = ws.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0..2000 {
                    match ws.send_text(&format!("m{i}")) {
                        WSB_OK => ok += 1,
                        WSB_ERR_NOT_OPEN => break,
                        r => panic!("unexpected {r:?}"),
                    }
                }
                ok
            })
        };
        let closer = {
            let ws = ws.clone();
            std::thread::spawn(move || {
                // Close once some echoes are flowing.
                assert_eq!(ws.close(1000, Some("enough")), WSB_OK);
            })
        };
        let evs = ws.until_close();
        let sent = sender.join().unwrap();
        closer.join().unwrap();
        let texts: Vec<String> = evs
            .iter()
            .filter(|e| e.kind == WSB_EVENT_TEXT)
            .map(|e| e.text())
            .collect();
        // Whatever was echoed before the close arrives in order.
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(t, &format!("m{i}"));
        }
        assert!(texts.len() <= sent);
        let close = evs.last().unwrap();
        assert_eq!(
            (close.kind, close.close_code, close.clean),
            (WSB_EVENT_CLOSE, 1000, true)
        );
    }
}

#[test]
fn a_thousand_refused_connects_in_a_row() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    for _ in 0..1000 {
        let ws = Ws::connect(&url, None).unwrap();
        assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
        assert_eq!(kinds(&ws.until_close()), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    }
}

#[test]
fn a_one_mib_url() {
    let srv = TestServer::start();
    let long = format!("{}?q={}", srv.url("/echo"), "a".repeat(1 << 20));
    // Refused by wsb_connect itself: the request line would be too long.
    match Ws::connect(&long, None) {
        Err((r, d)) => assert_eq!(r, WSB_ERR_INVALID_URL, "{d}"),
        Ok(_) => panic!("1 MiB URL accepted"),
    }
    // A long but acceptable query (8 KiB) reaches the server.
    let ok = format!("{}?q={}", srv.url("/echo"), "b".repeat(8 << 10));
    let ws = Ws::open(&ok, None);
    assert_eq!(ws.send_text("long url"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "long url");
    // A 1 MiB host name is refused at once.
    let host = format!("ws://{}/", "h".repeat(1 << 20));
    match Ws::connect(&host, None) {
        Err((r, _)) => assert_eq!(r, WSB_ERR_INVALID_URL),
        Ok(_) => panic!("1 MiB host accepted"),
    }
}

#[test]
fn ipv6_literal_urls() {
    // Listen on [::1] if the machine has IPv6 loopback; else the connect fails cleanly.
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(l) => {
            let port = l.local_addr().unwrap().port();
            drop(l);
            let ws = Ws::connect(&format!("ws://[::1]:{port}/x"), None).unwrap();
            assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
            assert!(last_error().contains("[::1]"), "{}", last_error());
        }
        Err(_) => {
            let ws = Ws::connect("ws://[::1]:9/x", None).unwrap();
            assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
        }
    }
    for bad in ["ws://[::1/", "ws://[::1]x/", "ws://[not-v6]/"] {
        assert_eq!(
            Ws::connect(bad, None).err().map(|e| e.0),
            Some(WSB_ERR_INVALID_URL),
            "{bad}"
        );
    }
}

#[test]
fn user_info_query_and_fragment() {
    let srv = TestServer::start();
    let url = format!(
        "ws://user:secret@127.0.0.1:{}/echo?a=1&b=two#frag",
        srv.port
    );
    let ws = Ws::open(&url, None);
    assert_eq!(ws.send_text("hi"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "hi");
    let reqs = srv.requests();
    assert!(reqs.iter().any(|r| r == "/echo?a=1&b=two"), "{reqs:?}");
    // Query without a path.
    let ws = Ws::connect(&format!("ws://127.0.0.1:{}?x=1", srv.port), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE, "404 for /?x=1");
    assert!(srv.requests().iter().any(|r| r == "/?x=1"));
}

#[test]
fn strings_that_are_not_utf8() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    for bad in [
        &[0xffu8][..],
        &[0xc3, 0x28],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
        &[b'a', 0xe2, 0x82],
    ] {
        assert_eq!(ws.send_bytes_as_text(bad), WSB_ERR_INVALID_UTF8, "{bad:?}");
        assert_eq!(
            ws.send_binary(bad),
            WSB_OK,
            "the same bytes are fine as binary"
        );
        assert_eq!(ws.expect(WSB_EVENT_BINARY).data, bad);
    }
    let reason = CString::new(vec![b'o', b'k', 0xff]).unwrap();
    assert_eq!(wsb_close(ws.0, 1000, reason.as_ptr()), WSB_ERR_INVALID_UTF8);
    let sub = CString::new(vec![0xffu8]).unwrap();
    let o = Opts::new();
    assert_eq!(
        wsbridge::ffi::options::wsb_options_add_subprotocol(o.0, sub.as_ptr()),
        WSB_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn free_and_close_race_from_many_threads() {
    let srv = TestServer::start();
    for _ in 0..20 {
        let ws = Ws::open(&srv.url("/echo"), None);
        let h = ws.0;
        std::mem::forget(ws);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || match i {
                    0 => wsb_free(h),
                    1 => wsb_close(h, 1000, std::ptr::null()),
                    2 => wsb_send_text(h, c"x".as_ptr(), 1),
                    _ => {
                        let mut ev = empty_event();
                        wsb_poll(h, &mut ev)
                    }
                })
            })
            .collect();
        for t in threads {
            let r = t.join().unwrap();
            assert!(
                matches!(
                    r,
                    WSB_OK | WSB_EMPTY | WSB_ERR_INVALID_HANDLE | WSB_ERR_NOT_OPEN
                ),
                "{r:?}"
            );
        }
        assert_eq!(wsb_free(h), WSB_ERR_INVALID_HANDLE);
    }
    assert!(srv.wait_idle(WAIT));
}
