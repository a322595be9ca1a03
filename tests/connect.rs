//! Connecting through the C API (shared/spec/c-api.md): URL and argument
//! errors, a refused port, DNS, HTTP refusals, timeouts by stage, close
//! while connecting, TLS (added roots, untrusted certificates, verification
//! off, a plain server), subprotocols, custom headers, and the
//! percent-encoding of the request target.

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
    let srv = TestServer::start();
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
    let srv = TestServer::start();
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
    let srv = TestServer::start();
    let ws = Ws::connect(&srv.hang_url("/"), None).unwrap();
    assert!(srv.wait_hang_connections(1, WAIT));
    assert_eq!(ws.state(), WSB_STATE_CONNECTING);
    assert_eq!(ws.close(0, None), WSB_OK);
    assert_eq!(ws.wait_open(), WSB_ERR_NOT_OPEN);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE]);
    assert_eq!((evs[0].close_code, evs[0].clean), (1006, false));
    assert_eq!(ws.close(1000, None), WSB_OK, "second close is a no-op");
    assert_eq!(ws.state(), WSB_STATE_CLOSED);
}

#[test]
fn tls_with_added_root() {
    let srv = TestServer::start();
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
fn tls_untrusted_certificate_fails() {
    let srv = TestServer::start();
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
    let srv = TestServer::start();
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
        s.set_read_timeout(Some(WAIT)).unwrap();
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

#[test]
fn subprotocol_negotiation() {
    let srv = TestServer::start();
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
    let srv = TestServer::start();
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

#[test]
fn non_ascii_path_and_query_are_percent_encoded_on_the_wire() {
    let srv = TestServer::start();
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
