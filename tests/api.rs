//! The C API contract (shared/spec/c-api.md) exercised through the same
//! `extern "C"` functions C calls, against the in-process loopback server.

mod capi;
mod support;

use std::ffi::{c_char, c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::options::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result::*;

const T: Duration = Duration::from_secs(20);

fn server() -> TestServer {
    TestServer::start()
}

// ---------------------------------------------------------------- library

#[test]
fn version_abi_and_result_names() {
    // SAFETY: static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(wsb_version()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(wsb_abi_version(), 1);
    for (code, name) in [
        (WSB_OK, "WSB_OK"),
        (WSB_EMPTY, "WSB_EMPTY"),
        (WSB_TIMEOUT, "WSB_TIMEOUT"),
        (WSB_ERR_NULL_ARGUMENT, "WSB_ERR_NULL_ARGUMENT"),
        (WSB_ERR_TLS, "WSB_ERR_TLS"),
        (WSB_ERR_INTERNAL, "WSB_ERR_INTERNAL"),
        (WSB_ERR_IN_LOG_HOOK, "WSB_ERR_IN_LOG_HOOK"),
    ] {
        assert_eq!(result_name(code), name);
    }
    for raw in [-18, 3, 1000, i32::MIN, i32::MAX] {
        // SAFETY: static string.
        let n = unsafe { std::ffi::CStr::from_ptr(wsb_result_name(raw)) };
        assert_eq!(n.to_str().unwrap(), "WSB_UNKNOWN");
    }
}

#[test]
fn last_error_is_empty_then_names_the_cause() {
    let t = std::thread::spawn(|| {
        assert_eq!(last_error(), "");
        let mut h = 0;
        assert_eq!(
            wsb_connect(ptr::null(), ptr::null(), &mut h),
            WSB_ERR_NULL_ARGUMENT
        );
        assert!(last_error().contains("url"), "{}", last_error());
    });
    t.join().unwrap();
}

// ---------------------------------------------------------------- options

#[test]
fn options_null_arguments() {
    let o = Opts::new();
    let s = CString::new("x").unwrap();
    let n = ptr::null_mut();
    assert_eq!(
        wsb_options_add_header(n, s.as_ptr(), s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_header(o.0, ptr::null(), s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_header(o.0, s.as_ptr(), ptr::null()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_subprotocol(n, s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_subprotocol(o.0, ptr::null()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_connect_timeout(n, 1), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_options_add_root_certificates(n, s.as_ptr(), 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_root_certificates(o.0, ptr::null(), 0),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_verify_tls(n, false), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_options_set_max_message_size(n, 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_send_queue_limit(n, 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_keepalive(n, 1, 1), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_options_set_close_timeout(n, 1), WSB_ERR_NULL_ARGUMENT);
    wsb_options_free(ptr::null_mut()); // NULL is fine
}

#[test]
fn options_double_free_and_foreign_pointers_are_detected() {
    let p = wsb_options_new();
    wsb_options_free(p);
    wsb_options_free(p); // ignored, no double free
    assert_eq!(
        wsb_options_set_verify_tls(p, true),
        WSB_ERR_INVALID_ARGUMENT
    );
    let mut not_options = [0u64; 8];
    let fake = not_options.as_mut_ptr() as *mut wsb_options;
    assert_eq!(
        wsb_options_set_connect_timeout(fake, 5),
        WSB_ERR_INVALID_ARGUMENT
    );
    wsb_options_free(fake); // ignored
    let mut h = 0;
    let url = CString::new("ws://127.0.0.1:9/").unwrap();
    assert_eq!(
        wsb_connect(url.as_ptr(), fake, &mut h),
        WSB_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn options_reject_bad_headers_and_subprotocols() {
    let o = Opts::new();
    let add = |n: &str, v: &str| {
        let (n, v) = (CString::new(n).unwrap(), CString::new(v).unwrap());
        wsb_options_add_header(o.0, n.as_ptr(), v.as_ptr())
    };
    assert_eq!(add("X-Ok", "fine"), WSB_OK);
    assert_eq!(add("X-Bad", "a\r\nInjected: 1"), WSB_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("CR"), "{}", last_error());
    assert_eq!(add("X-Bad", "a\nb"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("Bad Name", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("X:Colon", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("Sec-WebSocket-Key", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("upgrade", "v"), WSB_ERR_INVALID_ARGUMENT);
    let sp = |p: &str| {
        let c = CString::new(p).unwrap();
        wsb_options_add_subprotocol(o.0, c.as_ptr())
    };
    assert_eq!(sp("chat.v1"), WSB_OK);
    assert_eq!(sp("a b"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(sp("a,b"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(sp(""), WSB_ERR_INVALID_ARGUMENT);
    // Non-UTF-8 header value.
    let n = CString::new("X-Latin1").unwrap();
    let v = CString::new(vec![0xe9u8]).unwrap();
    assert_eq!(
        wsb_options_add_header(o.0, n.as_ptr(), v.as_ptr()),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_max_message_size(o.0, 0),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_send_queue_limit(o.0, 0),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(wsb_options_set_connect_timeout(o.0, 0), WSB_OK);
    assert_eq!(wsb_options_set_keepalive(o.0, 0, 0), WSB_OK);
}

#[test]
fn options_pem_validation() {
    let srv = server();
    let o = Opts::new();
    let add = |pem: &[u8]| {
        wsb_options_add_root_certificates(o.0, pem.as_ptr() as *const c_char, pem.len())
    };
    assert_eq!(add(b"not a pem at all"), WSB_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("CERTIFICATE"), "{}", last_error());
    assert_eq!(
        add(b"-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n"),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        add(b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n"),
        WSB_ERR_INVALID_ARGUMENT,
        "DER that is not X.509"
    );
    assert_eq!(add(b""), WSB_ERR_INVALID_ARGUMENT);
    // A good one next to a bad one: nothing is added.
    let mixed = format!(
        "{}-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        srv.ca_pem
    );
    assert_eq!(add(mixed.as_bytes()), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add(srv.ca_pem.as_bytes()), WSB_OK);
    // Not NUL-terminated is fine: pass exactly len bytes of a larger buffer.
    let mut buf = srv.ca_pem.clone().into_bytes();
    let len = buf.len();
    buf.extend_from_slice(b"garbage after");
    assert_eq!(
        wsb_options_add_root_certificates(o.0, buf.as_ptr() as *const c_char, len),
        WSB_OK
    );
}

// ---------------------------------------------------------------- connect

#[test]
fn connect_argument_errors() {
    let mut h = 0;
    let url = CString::new("ws://127.0.0.1:1/").unwrap();
    assert_eq!(
        wsb_connect(url.as_ptr(), ptr::null(), ptr::null_mut()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_connect(ptr::null(), ptr::null(), &mut h),
        WSB_ERR_NULL_ARGUMENT
    );
    for bad in [
        "http://127.0.0.1/",
        "127.0.0.1:80",
        "ws://",
        "ws://host:99999/",
        "wss:///x",
        "ftp://x",
    ] {
        match Ws::connect(bad, None) {
            Err((r, detail)) => {
                assert_eq!(r, WSB_ERR_INVALID_URL, "{bad}");
                assert!(!detail.is_empty());
            }
            Ok(_) => panic!("{bad} accepted"),
        }
    }
    let not_utf8 = CString::new(vec![b'w', b's', b':', b'/', b'/', 0xff, b'/']).unwrap();
    assert_eq!(
        wsb_connect(not_utf8.as_ptr(), ptr::null(), &mut h),
        WSB_ERR_INVALID_URL
    );
}

#[test]
fn echo_text_and_binary() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.state(), WSB_STATE_OPEN);
    assert_eq!(ws.send_text("héllo"), WSB_OK);
    let bin = [0u8, 1, 2, 0, 255];
    assert_eq!(ws.send_binary(&bin), WSB_OK);
    let t = ws.expect(WSB_EVENT_TEXT);
    assert_eq!(t.text(), "héllo");
    let b = ws.expect(WSB_EVENT_BINARY);
    assert_eq!(b.data, bin);
    // Empty messages, with NULL data (allowed when len is 0).
    assert_eq!(wsb_send_text(ws.0, ptr::null(), 0), WSB_OK);
    assert_eq!(wsb_send_binary(ws.0, ptr::null(), 0), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).data, b"");
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data, b"");
    assert_eq!(ws.buffered(), 0);
    assert_eq!(ws.close(1000, Some("bye")), WSB_OK);
    let close = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!((close.close_code, close.clean), (1000, true));
    assert_eq!(ws.state(), WSB_STATE_CLOSED);
    let seen = srv.client_closes();
    assert_eq!(
        seen.last().map(|c| (c.code, c.reason.as_str())),
        Some((Some(1000), "bye"))
    );
    // After CLOSE: EMPTY forever.
    assert!(ws.poll().is_none());
    assert!(ws.next_within(10).is_none());
}

#[test]
fn wait_open_consumes_no_event_and_open_comes_first() {
    let srv = server();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_OK);
    assert_eq!(ws.wait_open(), WSB_OK, "idempotent");
    let ev = ws.next().unwrap();
    assert_eq!(ev.kind, WSB_EVENT_OPEN);
    assert_eq!(ev.data, b"", "no subprotocol negotiated");
}

#[test]
fn messages_sent_while_connecting_go_out_in_order() {
    let srv = server();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    for i in 0..50 {
        assert_eq!(ws.send_text(&format!("early {i}")), WSB_OK);
    }
    assert_eq!(ws.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    for i in 0..50 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("early {i}"));
    }
}

#[test]
fn a_sender_running_across_the_open_keeps_its_order() {
    // One thread sends from the moment wsb_connect returns, so some
    // messages are queued while CONNECTING and the rest go straight out
    // after OPEN: none may overtake another.
    let srv = server();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    let s = ws.0;
    let sender = std::thread::spawn(move || {
        for i in 0..2000 {
            let msg = format!("m{i}");
            assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
        }
    });
    assert_eq!(ws.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    for i in 0..2000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("m{i}"));
    }
    sender.join().unwrap();
}

#[test]
fn concurrent_senders_lose_nothing_and_keep_their_own_order() {
    // Four threads send at once (small messages in bursts, some large ones
    // that fill the socket): every message comes back, each thread's in
    // order, and nothing is left in the outbox without a wake-up.
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    let s = ws.0;
    const PER: usize = 3000;
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..PER {
                    let mut msg = format!("{t}:{i}:");
                    if i % 500 == 499 {
                        msg.push_str(&"x".repeat(200_000));
                    }
                    assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
                }
            })
        })
        .collect();
    let mut next = [0usize; 4];
    for _ in 0..4 * PER {
        let text = ws.expect(WSB_EVENT_TEXT).text();
        let mut parts = text.splitn(3, ':');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(i, next[t], "thread {t}'s messages out of order");
        next[t] += 1;
    }
    for h in senders {
        h.join().unwrap();
    }
    assert_eq!(next, [PER; 4]);
    assert_eq!(ws.buffered(), 0);
}

#[test]
fn bursts_go_out_without_any_traffic_coming_back() {
    // The server answers only once it has every message: nothing incoming
    // wakes the I/O thread, so each burst must get out on the senders' own
    // wake-ups. Bursts of 1 to 400 messages from one thread, then from two.
    let srv = server();
    for (threads, burst) in [(1, 1), (1, 2), (1, 400), (2, 300)] {
        let n = threads * burst;
        let ws = Ws::open(&srv.url(&format!("/collect?n={n}")), None);
        let s = ws.0;
        let senders: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..burst {
                        let msg = format!("m{i}");
                        assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
                    }
                })
            })
            .collect();
        for h in senders {
            h.join().unwrap();
        }
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("got {n}"));
    }
}

#[test]
fn everything_sent_before_close_arrives_before_it() {
    let srv = server();
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
fn refused_port_fails_with_connect_error_then_close() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = Ws::connect(&format!("ws://127.0.0.1:{port}/"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    let detail = last_error();
    assert!(
        detail.starts_with(&format!("connect to 127.0.0.1:{port}: ")),
        "{detail}"
    );
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_CONNECT);
    assert_eq!(evs[0].text(), detail);
    assert_eq!((evs[1].close_code, evs[1].clean), (1006, false));
    assert!(ws.poll().is_none());
    assert_eq!(ws.send_text("x"), WSB_ERR_NOT_OPEN);
}

#[test]
fn unknown_host_is_a_dns_error() {
    let ws = Ws::connect("ws://no-such-host.invalid/", None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_DNS);
    assert!(
        last_error().contains("no-such-host.invalid"),
        "{}",
        last_error()
    );
    assert_eq!(kinds(&ws.until_close()), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
}

#[test]
fn http_refusals_are_handshake_errors() {
    let srv = server();
    for (path, want) in [
        ("/refuse403", "HTTP 403 from server"),
        ("/refuse?status=401", "HTTP 401 from server"),
        ("/nope", "HTTP 404 from server"),
        ("/refuse?status=500", "HTTP 500 from server"),
        ("/http200", "HTTP 200 from server"),
    ] {
        let ws = Ws::connect(&srv.url(path), None).unwrap();
        assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE, "{path}");
        assert_eq!(last_error(), want);
        let evs = ws.until_close();
        assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
        assert_eq!(evs[0].error, WSB_ERR_HANDSHAKE);
    }
    let ws = Ws::connect(&srv.url("/garbage"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE);
}

#[test]
fn connect_timeout_names_the_stage() {
    let srv = server();
    let o = Opts::new().connect_timeout(300);
    let ws = Ws::connect(&srv.hang_url("/"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    assert!(
        last_error().contains("timeout during WebSocket upgrade"),
        "{}",
        last_error()
    );
    assert_eq!(kinds(&ws.until_close()), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    // The same at the TLS stage: the hang port never answers the ClientHello.
    let ws = Ws::connect(&format!("wss://127.0.0.1:{}/", srv.hang_port), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    assert!(
        last_error().contains("timeout during TLS handshake"),
        "{}",
        last_error()
    );
}

#[test]
fn close_while_connecting_abandons_without_error() {
    let srv = server();
    let ws = Ws::connect(&srv.hang_url("/"), None).unwrap();
    assert!(srv.wait_hang_connections(1, T));
    assert_eq!(ws.state(), WSB_STATE_CONNECTING);
    assert_eq!(ws.close(0, None), WSB_OK);
    assert_eq!(ws.wait_open(), WSB_ERR_NOT_OPEN);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE]);
    assert_eq!((evs[0].close_code, evs[0].clean), (1006, false));
    assert_eq!(ws.close(1000, None), WSB_OK, "second close is a no-op");
    assert_eq!(ws.state(), WSB_STATE_CLOSED);
}

// ---------------------------------------------------------------- TLS

#[test]
fn tls_with_added_root() {
    let srv = server();
    let o = Opts::new().ca(&srv.ca_pem);
    for url in [srv.tls_url("/echo"), srv.tls_ip_url("/echo")] {
        let ws = Ws::open(&url, Some(&o));
        assert_eq!(ws.send_text("over tls"), WSB_OK);
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "over tls");
        assert_eq!(ws.close(1000, None), WSB_OK);
        assert!(ws.expect(WSB_EVENT_CLOSE).clean);
    }
}

#[test]
fn tls_bursts_and_large_messages_in_order() {
    // The outbox over TLS: bursts framed by the sender, encrypted under the
    // connection lock, larger than rustls's own send buffer.
    let srv = server();
    let o = Opts::new().ca(&srv.ca_pem);
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&o));
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    for i in 0..2000 {
        assert_eq!(ws.send_text(&format!("s{i}")), WSB_OK);
        if i == 1000 {
            assert_eq!(ws.send_binary(&big), WSB_OK);
        }
    }
    for i in 0..2000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("s{i}"));
        if i == 1000 {
            assert!(ws.expect(WSB_EVENT_BINARY).data == big, "4 MiB differs");
        }
    }
    assert_eq!(ws.close(1000, None), WSB_OK);
    assert!(ws.expect(WSB_EVENT_CLOSE).clean);
}

#[test]
fn tls_untrusted_certificate_fails() {
    let srv = server();
    let ws = Ws::connect(&srv.tls_url("/echo"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS);
    assert_eq!(last_error(), "invalid peer certificate: UnknownIssuer");
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_TLS);
    // A self-signed certificate that is not the server's does not help.
    let o = Opts::new().ca(&support::self_signed_pem());
    let ws = Ws::connect(&srv.tls_url("/echo"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS);
}

#[test]
fn tls_verify_off_accepts_any_certificate() {
    let srv = server();
    let o = Opts::new().verify(false);
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&o));
    assert_eq!(ws.send_binary(b"\x00secret"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data, b"\x00secret");
}

#[test]
fn tls_to_a_plain_http_server_fails_cleanly() {
    // A plain HTTP server answers the ClientHello with a 400 and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let ws = Ws::connect(&format!("wss://127.0.0.1:{port}/echo"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS, "{}", last_error());
    assert_eq!(kinds(&ws.until_close()), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    server.join().unwrap();
}

// ---------------------------------------------------------------- handshake options

#[test]
fn subprotocol_negotiation() {
    let srv = server();
    let o = Opts::new().subprotocol("chat.v2").subprotocol("chat.v1");
    let ws = Ws::connect(&srv.url("/subprotocol"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_OPEN).text(), "chat.v2");
    // The server answering one we did not offer fails the handshake.
    let ws = Ws::connect(&srv.url("/subprotocol?force=other"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE);
    // Offering some and the server choosing none also fails (as in browsers' ws libraries).
    let ws = Ws::connect(&srv.url("/echo"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE);
}

#[test]
fn custom_headers_reach_the_server() {
    let srv = server();
    let o = Opts::new()
        .header("Authorization", "Bearer abc")
        .header("X-Trace", "1")
        .header("X-Trace", "2")
        .header("User-Agent", "wsbridge-test");
    let ws = Ws::open(&srv.url("/headers"), Some(&o));
    let listing = ws.expect(WSB_EVENT_TEXT).text();
    for line in [
        "authorization: Bearer abc",
        "x-trace: 1",
        "x-trace: 2",
        "user-agent: wsbridge-test",
    ] {
        assert!(
            listing.lines().any(|l| l == line),
            "{line:?} not in {listing}"
        );
    }
    assert!(listing
        .lines()
        .any(|l| l.starts_with("sec-websocket-key: ")));
}

// ---------------------------------------------------------------- send / close rules

#[test]
fn send_validation() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(
        ws.send_bytes_as_text(&[0x66, 0xff, 0x66]),
        WSB_ERR_INVALID_UTF8
    );
    assert!(last_error().contains("UTF-8"));
    assert_eq!(wsb_send_text(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_send_binary(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_ping(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    let big = [0u8; 126];
    assert_eq!(
        wsb_ping(ws.0, big.as_ptr().cast(), 126),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(wsb_ping(ws.0, big.as_ptr().cast(), 125), WSB_OK);
    assert_eq!(wsb_ping(ws.0, ptr::null(), 0), WSB_OK);
    // Text with an embedded NUL is valid UTF-8 and arrives whole.
    assert_eq!(ws.send_text("a\0b"), WSB_OK);
    let ev = ws.expect(WSB_EVENT_TEXT);
    assert_eq!(ev.data, b"a\0b", "pongs never surface as events");
}

#[test]
fn outgoing_message_over_the_limit() {
    let srv = server();
    let o = Opts::new().max_message(1000);
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    assert_eq!(ws.send_binary(&[7u8; 1001]), WSB_ERR_MESSAGE_TOO_LARGE);
    assert_eq!(ws.send_binary(&[7u8; 1000]), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data.len(), 1000);
}

#[test]
fn close_validation_and_send_after_close() {
    let srv = server();
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
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.close(0, None), WSB_OK);
    let ev = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!(ev.close_code, 1000);
    let c = srv.wait_client_closes(1, T);
    assert_eq!(c[0].code, Some(1000));
}

#[test]
fn server_initiated_close() {
    let srv = server();
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
    let srv = server();
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
    let srv = server();
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
    let srv = server();
    let o = Opts::new().keepalive(20, 5000);
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    // Several ping intervals pass while we wait for nothing: the peer answers
    // the pings, so no ERROR or CLOSE arrives.
    assert!(ws.next_within(200).is_none());
    assert_eq!(ws.send_text("still here"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "still here");
}

#[test]
fn invalid_utf8_from_peer_fails_with_1007() {
    let srv = server();
    let ws = Ws::open(&srv.url("/badutf8"), None);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_PROTOCOL);
    assert_eq!(
        (evs[1].close_code, evs[1].clean),
        (1007, true),
        "the peer echoed 1007"
    );
    let closes = srv.wait_client_closes(1, T);
    assert_eq!(closes[0].code, Some(1007));
}

#[test]
fn incoming_message_over_the_limit_fails_with_1009() {
    let srv = server();
    let o = Opts::new().max_message(1000);
    let ws = Ws::open(&srv.url("/big?size=5000"), Some(&o));
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_MESSAGE_TOO_LARGE);
    assert_eq!(evs[1].close_code, 1009);
    let closes = srv.wait_client_closes(1, T);
    assert_eq!(closes[0].code, Some(1009));
}

#[test]
fn fragmented_messages_arrive_whole() {
    let srv = server();
    let ws = Ws::open(&srv.url("/fragmented?parts=7&ping=1"), None);
    let want: Vec<String> = (0..7).map(|i| format!("fragment-{i}")).collect();
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), want.join("|"));
}

#[test]
fn server_pings_are_answered() {
    let srv = server();
    let ws = Ws::open(&srv.url("/ping?payload=abc"), None);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "pong:abc");
}

#[test]
fn ten_thousand_messages_in_order_both_ways() {
    let srv = server();
    let ws = Ws::open(&srv.url("/burst?n=10000&size=16"), None);
    for i in 0..10_000 {
        assert_eq!(
            ws.expect(WSB_EVENT_TEXT).text(),
            support::burst_message(i, 16)
        );
    }
    for i in 0..10_000 {
        assert_eq!(ws.send_text(&format!("m{i}")), WSB_OK);
    }
    for i in 0..10_000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("m{i}"));
    }
}

#[test]
fn messages_of_every_size_split_anywhere_arrive_intact_in_order() {
    // 0 to 70 000 bytes, text (multi-byte UTF-8) and binary, some in
    // fragments with a ping between them, pings between messages, written
    // by the server in pieces of 1 to 3001 bytes: reads split frames at
    // every place, inside headers and inside UTF-8 sequences.
    let srv = server();
    let n = 400;
    let ws = Ws::open(&srv.url(&format!("/mixed?n={n}")), None);
    for i in 0..n {
        let (text, payload, _) = support::mixed_message(i);
        let ev = ws.expect(if text {
            WSB_EVENT_TEXT
        } else {
            WSB_EVENT_BINARY
        });
        assert!(
            ev.data == payload,
            "message {i} differs: {} bytes, expected {}",
            ev.data.len(),
            payload.len()
        );
    }
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE], "{evs:?}");
    assert!(evs[0].clean && evs[0].close_code == 1000, "{evs:?}");
}

#[test]
fn sixteen_mib_messages_intact() {
    let srv = server();
    let size = 16 << 20;
    let ws = Ws::open(&srv.url(&format!("/big?size={size}")), None);
    let ev = ws.expect(WSB_EVENT_BINARY);
    assert!(
        ev.data == support::big_pattern(size),
        "received 16 MiB differs"
    );
    let mine: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(ws.send_binary(&mine), WSB_OK);
    let ev = ws.expect(WSB_EVENT_BINARY);
    assert!(ev.data == mine, "echoed 16 MiB differs");
    let text = "é".repeat(size / 2);
    assert_eq!(ws.send_text(&text), WSB_OK);
    assert!(ws.expect(WSB_EVENT_TEXT).data == text.as_bytes());
}

#[test]
fn send_queue_limit_gives_queue_full_against_a_stalled_reader() {
    let srv = server();
    let limit = 1 << 20;
    let o = Opts::new().queue_limit(limit);
    let ws = Ws::open(&srv.url("/stall"), Some(&o));
    let chunk = vec![1u8; 64 * 1024];
    let mut full = false;
    // Bounded: kernel buffers take a few MiB at most before the queue fills.
    for _ in 0..4096 {
        match ws.send_binary(&chunk) {
            WSB_OK => {}
            WSB_ERR_QUEUE_FULL => {
                full = true;
                break;
            }
            r => panic!("unexpected {r:?}: {}", last_error()),
        }
    }
    assert!(full, "never reported QUEUE_FULL");
    assert!(last_error().contains("send queue full"), "{}", last_error());
    let buffered = ws.buffered();
    assert!(buffered > 0 && buffered <= limit, "buffered {buffered}");
}

// ---------------------------------------------------------------- handles

#[test]
fn invalid_handles_everywhere() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    assert_eq!(wsb_free(h), WSB_OK);
    std::mem::forget(ws);
    let mut ev = empty_event();
    let mut st = WSB_STATE_OPEN;
    let mut n = 0usize;
    for bad in [h, 0, u64::MAX, h + 1_000_000] {
        assert_eq!(wsb_free(bad), WSB_ERR_INVALID_HANDLE, "double/stale free");
        assert_eq!(wsb_wait_open(bad, 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_send_text(bad, c"x".as_ptr(), 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(
            wsb_send_binary(bad, c"x".as_ptr().cast(), 1),
            WSB_ERR_INVALID_HANDLE
        );
        assert_eq!(wsb_ping(bad, ptr::null(), 0), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_close(bad, 1000, ptr::null()), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_poll(bad, &mut ev), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_wait_event(bad, &mut ev, 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(
            wsb_set_notify(bad, None, ptr::null_mut()),
            WSB_ERR_INVALID_HANDLE
        );
        assert_eq!(wsb_get_state(bad, &mut st), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_buffered_amount(bad, &mut n), WSB_ERR_INVALID_HANDLE);
    }
    // The freed socket was closed with 1001 in the background.
    let c = srv.wait_client_closes(1, T);
    assert_eq!(c[0].code, Some(1001));
}

#[test]
fn null_out_pointers() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(wsb_poll(ws.0, ptr::null_mut()), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_wait_event(ws.0, ptr::null_mut(), 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_get_state(ws.0, ptr::null_mut()), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_buffered_amount(ws.0, ptr::null_mut()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("bytes"));
}

#[test]
fn handles_are_never_reused() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let ws = Ws::connect("ws://127.0.0.1:1/", None).unwrap();
        assert!(seen.insert(ws.0), "handle {} reused", ws.0);
    }
}

#[test]
fn poll_and_wait_timeouts() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert!(ws.poll().is_none());
    let mut ev = empty_event();
    assert_eq!(wsb_wait_event(ws.0, &mut ev, 0), WSB_TIMEOUT);
    assert_eq!(wsb_wait_event(ws.0, &mut ev, 30), WSB_TIMEOUT);
    let pending = Ws::connect(&srv.hang_url("/"), None).unwrap();
    assert_eq!(wsb_wait_open(pending.0, 20), WSB_TIMEOUT);
}

#[test]
fn free_wakes_a_thread_waiting_on_the_socket() {
    let srv = server();
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    std::mem::forget(ws);
    let waiter = std::thread::spawn(move || {
        let mut ev = empty_event();
        wsb_wait_event(h, &mut ev, WAIT_MS)
    });
    // Whether the waiter parks before or after the free, it returns promptly
    // with INVALID_HANDLE rather than sleeping out its 20 s timeout.
    assert_eq!(wsb_free(h), WSB_OK);
    assert_eq!(waiter.join().unwrap(), WSB_ERR_INVALID_HANDLE);
}

// ---------------------------------------------------------------- notify

struct NotifyCtx {
    calls: AtomicUsize,
    texts: parking_lot::Mutex<Vec<String>>,
    closed: parking_lot::Mutex<Option<u16>>,
    done: parking_lot::Condvar,
}

/// Drains events from inside the callback (on the I/O thread) and replies:
/// calls back into poll/state/send/close without deadlock.
extern "C" fn reentrant_notify(user: *mut c_void, s: wsb_socket) {
    // SAFETY: user points to the NotifyCtx owned by the test, which outlives the socket.
    let ctx = unsafe { &*(user as *const NotifyCtx) };
    ctx.calls.fetch_add(1, Ordering::SeqCst);
    let mut ev = empty_event();
    let mut st = WSB_STATE_OPEN;
    assert_eq!(wsb_get_state(s, &mut st), WSB_OK);
    while wsb_poll(s, &mut ev) == WSB_OK {
        let e = copy_event(&ev);
        match e.kind {
            WSB_EVENT_OPEN => {
                wsb_send_text(s, c"one".as_ptr(), 3);
            }
            WSB_EVENT_TEXT => {
                let t = e.text();
                let n = {
                    let mut v = ctx.texts.lock();
                    v.push(t.clone());
                    v.len()
                };
                if n < 3 {
                    let next = format!("{t}+");
                    wsb_send_text(s, next.as_ptr() as *const c_char, next.len());
                } else {
                    assert_eq!(wsb_close(s, 1000, c"from callback".as_ptr()), WSB_OK);
                }
            }
            WSB_EVENT_CLOSE => {
                *ctx.closed.lock() = Some(e.close_code);
                ctx.done.notify_all();
            }
            _ => {}
        }
    }
}

#[test]
fn notify_callback_may_call_back_into_the_api() {
    let srv = server();
    let ctx = Box::new(NotifyCtx {
        calls: AtomicUsize::new(0),
        texts: parking_lot::Mutex::new(Vec::new()),
        closed: parking_lot::Mutex::new(None),
        done: parking_lot::Condvar::new(),
    });
    let ws = Ws::connect(&srv.hang_url("/"), None).unwrap();
    drop(ws); // unrelated socket freed meanwhile: no effect
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    let user = &*ctx as *const NotifyCtx as *mut c_void;
    assert_eq!(wsb_set_notify(ws.0, Some(reentrant_notify), user), WSB_OK);
    // The OPEN may have been queued before the callback was set: kick it.
    reentrant_notify(user, ws.0);
    {
        let mut closed = ctx.closed.lock();
        while closed.is_none() {
            assert!(!ctx.done.wait_for(&mut closed, T).timed_out(), "no CLOSE");
        }
        assert_eq!(*closed, Some(1000));
    }
    assert_eq!(*ctx.texts.lock(), ["one", "one+", "one++"]);
    assert!(ctx.calls.load(Ordering::SeqCst) >= 2);
    drop(ws); // wsb_free: after it returns no callback runs, so ctx may go
    drop(ctx);
}

extern "C" fn free_in_callback(user: *mut c_void, s: wsb_socket) {
    // SAFETY: user points to an AtomicUsize owned by the test.
    let freed = unsafe { &*(user as *const AtomicUsize) };
    let mut ev = empty_event();
    while wsb_poll(s, &mut ev) == WSB_OK {
        if copy_event(&ev).kind == WSB_EVENT_TEXT {
            assert_eq!(wsb_free(s), WSB_OK);
            freed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

#[test]
fn free_from_inside_the_callback() {
    let srv = server();
    let freed = Box::new(AtomicUsize::new(0));
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    std::mem::forget(ws);
    let user = &*freed as *const AtomicUsize as *mut c_void;
    assert_eq!(wsb_set_notify(h, Some(free_in_callback), user), WSB_OK);
    let mut st = WSB_STATE_OPEN;
    assert_eq!(wsb_send_text(h, c"free me".as_ptr(), 7), WSB_OK);
    // The server sees the 1001 close the free started.
    let c = srv.wait_client_closes(1, T);
    assert_eq!(c[0].code, Some(1001));
    assert_eq!(freed.load(Ordering::SeqCst), 1);
    assert_eq!(wsb_get_state(h, &mut st), WSB_ERR_INVALID_HANDLE);
}

#[test]
fn non_ascii_path_and_query_are_percent_encoded_on_the_wire() {
    let srv = server();
    // Raw UTF-8 in the URL: the request line carries it percent-encoded
    // (uppercase hex), which the server routes as /caf%C3%A9 (an echo); raw
    // `/café` would be a 404 there. Existing escapes and ASCII are unchanged.
    let url = format!(
        "ws://127.0.0.1:{}/caf\u{e9}?q=\u{20ac}&a=%41+b#fr\u{e9}",
        srv.port
    );
    let ws = Ws::open(&url, None);
    assert_eq!(ws.send_text("caf\u{e9}"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "caf\u{e9}");
    assert_eq!(srv.requests(), ["/caf%C3%A9?q=%E2%82%AC&a=%41+b"]);
}
