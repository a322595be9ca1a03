//! Proves that the loopback test server in `tests/support` behaves as
//! documented, using plain blocking tungstenite / raw clients.

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use support::raw::{self, RawFrame};
use support::TestServer;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message, WebSocket};

const TIMEOUT: Duration = Duration::from_secs(10);

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}
type Stream = Box<dyn Io>;
type Client = WebSocket<Stream>;

fn tcp(port: u16, read_timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(read_timeout)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn tls_wrap(tcp: TcpStream, cfg: Arc<ClientConfig>, name: &str) -> Stream {
    let name = ServerName::try_from(name.to_string()).expect("server name");
    Box::new(StreamOwned::new(
        ClientConnection::new(cfg, name).expect("client connection"),
        tcp,
    ))
}

/// A connected (not yet upgraded) stream to the plain or TLS port.
fn stream(server: &TestServer, tls: bool, read_timeout: Duration) -> Stream {
    if tls {
        tls_wrap(
            tcp(server.tls_port, read_timeout),
            support::tls_client_config(&server.ca_pem),
            "localhost",
        )
    } else {
        Box::new(tcp(server.port, read_timeout))
    }
}

fn url(server: &TestServer, tls: bool, path: &str) -> String {
    if tls {
        server.tls_url(path)
    } else {
        server.url(path)
    }
}

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

fn flatten<S: tungstenite::handshake::HandshakeRole>(e: HandshakeError<S>) -> WsError {
    match e {
        HandshakeError::Failure(e) => e,
        HandshakeError::Interrupted(_) => panic!("handshake interrupted"),
    }
}

fn try_connect_req(
    server: &TestServer,
    tls: bool,
    req: tungstenite::handshake::client::Request,
    read_timeout: Duration,
) -> Result<(Client, Response), WsError> {
    tungstenite::client::client_with_config(
        req,
        stream(server, tls, read_timeout),
        Some(client_config()),
    )
    .map_err(flatten)
}

fn try_connect(server: &TestServer, tls: bool, path: &str) -> Result<(Client, Response), WsError> {
    let req = url(server, tls, path).into_client_request().unwrap();
    try_connect_req(server, tls, req, TIMEOUT)
}

fn connect(server: &TestServer, tls: bool, path: &str) -> Client {
    try_connect(server, tls, path)
        .unwrap_or_else(|e| panic!("connect {path} (tls={tls}): {e}"))
        .0
}

fn read_text(c: &mut Client) -> String {
    match c.read().expect("read") {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn assert_echo(c: &mut Client) {
    c.send(Message::text("echo me")).unwrap();
    assert_eq!(read_text(c), "echo me");
    c.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    match c.read().unwrap() {
        Message::Binary(b) => assert_eq!(&b[..], &[0u8, 1, 2, 255]),
        other => panic!("expected binary, got {other:?}"),
    }
}

/// Client-initiated close; expects the server's echo and then a clean end.
fn close_cleanly(c: &mut Client, code: u16, reason: &str) {
    c.close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
    .unwrap();
    let mut got_close = false;
    loop {
        match c.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), code);
                got_close = true;
            }
            Ok(other) => panic!("unexpected {other:?} while closing"),
            Err(WsError::ConnectionClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
    assert!(got_close, "server did not echo the close frame");
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn ws_is_timeout(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if is_timeout(io))
}

/// Raw client: upgrade `path` on a plain or TLS stream, return stream + head.
fn raw_connect(server: &TestServer, tls: bool, path: &str) -> (Stream, String) {
    let mut s = stream(server, tls, TIMEOUT);
    let host = if tls { "localhost" } else { "127.0.0.1" };
    let head = raw::handshake(&mut s, host, path, &[]).expect("raw handshake");
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "expected 101 for {path}, got {head:?}"
    );
    (s, head)
}

fn read_raw(s: &mut Stream) -> RawFrame {
    raw::read_frame(s, 1 << 26)
        .expect("read frame")
        .expect("frame, not EOF")
}

/// Sends a masked close with `code`, expects it echoed, then EOF.
fn raw_close_and_expect_echo(s: &mut Stream, code: u16) {
    let payload = raw::close_payload(code, "");
    s.write_all(&raw::encode_frame(
        true,
        raw::OP_CLOSE,
        &payload,
        Some([1, 2, 3, 4]),
    ))
    .unwrap();
    s.flush().unwrap();
    let echo = read_raw(s);
    assert_eq!(echo.opcode, raw::OP_CLOSE);
    assert!(!echo.masked);
    assert_eq!(echo.close_code().map(|c| c.0), Some(code));
    match raw::read_frame(s, 1024) {
        Ok(None) => {}
        other => panic!("expected EOF after close echo, got {other:?}"),
    }
}

const BOTH: [bool; 2] = [false, true];

#[test]
fn echo_text_binary_and_client_close() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/echo");
        assert_echo(&mut c);
        // Empty and larger messages too.
        c.send(Message::text("")).unwrap();
        assert_eq!(read_text(&mut c), "");
        let big = "x".repeat(200_000);
        c.send(Message::text(big.clone())).unwrap();
        assert_eq!(read_text(&mut c), big);
        close_cleanly(&mut c, 1000, "done");
    }
    let closes = server.wait_client_closes(2, TIMEOUT);
    assert_eq!(closes.len(), 2);
    for c in closes {
        assert_eq!(c.path, "/echo");
        assert_eq!(c.code, Some(1000));
        assert_eq!(c.reason, "done");
    }
    assert_eq!(server.connections(), 2);
    assert!(server.wait_idle(TIMEOUT));
}

#[test]
fn echo_answers_pings() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/echo");
        c.send(Message::Ping("hi".into())).unwrap();
        match c.read().unwrap() {
            Message::Pong(p) => assert_eq!(&p[..], b"hi"),
            other => panic!("expected pong, got {other:?}"),
        }
        close_cleanly(&mut c, 1000, "");
    }
}

#[test]
fn server_initiated_close() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/close?code=4001&reason=bye");
        match c.read().unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 4001);
                assert_eq!(f.reason.as_str(), "bye");
            }
            other => panic!("expected close, got {other:?}"),
        }
        // tungstenite replies on the next read; then the server closes TCP.
        match c.read() {
            Err(WsError::ConnectionClosed) => {}
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }

        // Percent-decoded reason.
        let mut c = connect(&server, tls, "/close?code=4002&reason=good%20bye");
        match c.read().unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 4002);
                assert_eq!(f.reason.as_str(), "good bye");
            }
            other => panic!("expected close, got {other:?}"),
        }
        assert!(matches!(c.read(), Err(WsError::ConnectionClosed)));

        // No code: an empty close frame.
        let mut c = connect(&server, tls, "/close");
        match c.read().unwrap() {
            Message::Close(None) => {}
            other => panic!("expected empty close, got {other:?}"),
        }
        assert!(matches!(c.read(), Err(WsError::ConnectionClosed)));
    }
    let closes = server.wait_client_closes(6, TIMEOUT);
    let codes: Vec<_> = closes.iter().map(|c| c.code).collect();
    assert_eq!(codes.iter().filter(|c| **c == Some(4001)).count(), 2);
    assert_eq!(codes.iter().filter(|c| **c == Some(4002)).count(), 2);
    assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 2);
}

#[test]
fn close_code_is_written_raw() {
    let server = TestServer::start();
    for tls in BOTH {
        for code in [999u16, 1005, 1006, 4999] {
            let (mut s, _) =
                raw_connect(&server, tls, &format!("/close_code?code={code}&reason=r"));
            let f = read_raw(&mut s);
            assert_eq!(f.opcode, raw::OP_CLOSE);
            assert!(f.fin && !f.masked);
            assert_eq!(f.close_code(), Some((code, "r".to_string())));
            // The server answers pings in raw mode, then echoes our close.
            s.write_all(&raw::encode_frame(
                true,
                raw::OP_PING,
                b"p",
                Some([9, 9, 9, 9]),
            ))
            .unwrap();
            let pong = read_raw(&mut s);
            assert_eq!((pong.opcode, &pong.payload[..]), (raw::OP_PONG, &b"p"[..]));
            raw_close_and_expect_echo(&mut s, 1002);
        }
        // tungstenite client sees the invalid code as a protocol violation.
        let mut c = connect(&server, tls, "/close_code?code=999");
        match c.read().unwrap() {
            Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Protocol),
            other => panic!("expected close, got {other:?}"),
        }
    }
}

#[test]
fn refusals_and_404() {
    let server = TestServer::start();
    for tls in BOTH {
        for (path, status) in [
            ("/refuse403", 403u16),
            ("/refuse", 403),
            ("/refuse?status=503", 503),
            ("/refuse?status=401", 401),
            ("/refuse?status=200", 200),
            ("/no/such/path", 404),
            ("/", 404),
        ] {
            match try_connect(&server, tls, path) {
                Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), status, "{path}"),
                Err(e) => panic!("{path}: expected HTTP {status}, got error {e}"),
                Ok(_) => panic!("{path}: expected HTTP {status}, got an upgrade"),
            }
        }
    }
    // The raw response is a complete HTTP response with a body.
    let mut s = stream(&server, false, TIMEOUT);
    s.write_all(b"GET /refuse403 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let all = String::from_utf8_lossy(&raw::read_to_end_lossy(&mut s)).into_owned();
    assert!(all.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{all:?}");
    assert!(all.ends_with("\r\n\r\nforbidden\n"), "{all:?}");
    assert_eq!(server.connections(), 0);
}

#[test]
fn subprotocol_negotiation() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut req = url(&server, tls, "/subprotocol")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "chat, superchat".parse().unwrap());
        let (mut c, resp) = try_connect_req(&server, tls, req, TIMEOUT).unwrap();
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("chat")
        );
        assert_echo(&mut c);
        close_cleanly(&mut c, 1000, "");

        // Nothing offered: nothing chosen.
        let (mut c, resp) = try_connect(&server, tls, "/subprotocol").unwrap();
        assert!(resp.headers().get("sec-websocket-protocol").is_none());
        assert_echo(&mut c);

        // force= answers a protocol that was not offered: a client must fail.
        let mut req = url(&server, tls, "/subprotocol?force=other")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
        match try_connect_req(&server, tls, req, TIMEOUT) {
            Err(WsError::Protocol(_)) => {}
            Err(e) => panic!("expected a protocol error, got {e}"),
            Ok(_) => panic!("expected the client to reject an unoffered subprotocol"),
        }
    }
}

#[test]
fn headers_listing() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut req = url(&server, tls, "/headers").into_client_request().unwrap();
        req.headers_mut()
            .insert("X-Custom-Thing", "value 1".parse().unwrap());
        req.headers_mut()
            .insert("Authorization", "Bearer abc".parse().unwrap());
        let (mut c, _) = try_connect_req(&server, tls, req, TIMEOUT).unwrap();
        let listing = read_text(&mut c);
        let lines: Vec<&str> = listing.lines().collect();
        assert!(lines.contains(&"x-custom-thing: value 1"), "{listing}");
        assert!(lines.contains(&"authorization: Bearer abc"), "{listing}");
        assert!(lines.contains(&"sec-websocket-version: 13"), "{listing}");
        let host = if tls {
            format!("host: localhost:{}", server.tls_port)
        } else {
            format!("host: 127.0.0.1:{}", server.port)
        };
        assert!(lines.contains(&host.as_str()), "{listing}");
        assert!(lines.iter().all(|l| {
            let name = l.split(':').next().unwrap();
            name == name.to_ascii_lowercase()
        }));
        assert_echo(&mut c);
    }
}

#[test]
fn burst_in_order() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/burst?n=10000&size=64");
        for i in 0..10000 {
            let t = read_text(&mut c);
            assert_eq!(t, support::burst_message(i, 64));
            assert_eq!(t.len(), 64);
        }
        assert_echo(&mut c);
        // Defaults and messages longer than size.
        let mut c = connect(&server, tls, "/burst?n=1001&size=2");
        for i in 0..1001 {
            assert_eq!(read_text(&mut c), support::burst_message(i, 2));
        }
        assert_eq!(support::burst_message(1000, 2), "1000");
        assert_eq!(support::burst_message(7, 3), "7..");
        close_cleanly(&mut c, 1000, "");
    }
}

#[test]
fn big_and_oversize() {
    let server = TestServer::start();
    for tls in BOTH {
        for path in ["/big?size=5000000", "/oversize?size=70000", "/big?size=0"] {
            let size: usize = path.split('=').nth(1).unwrap().parse().unwrap();
            let mut c = connect(&server, tls, path);
            match c.read().unwrap() {
                Message::Binary(b) => {
                    assert_eq!(b.len(), size);
                    assert!(b.iter().enumerate().all(|(i, &v)| v == (i % 251) as u8));
                    assert_eq!(&b[..], &support::big_pattern(size)[..]);
                }
                other => panic!("expected binary, got {other:?}"),
            }
            assert_echo(&mut c);
        }
        // The server accepts big incoming messages too (no size limit).
        let mut c = connect(&server, tls, "/echo");
        let payload = support::big_pattern(4 << 20);
        c.send(Message::binary(payload.clone())).unwrap();
        match c.read().unwrap() {
            Message::Binary(b) => assert!(b[..] == payload[..]),
            other => panic!("expected binary, got {other:?}"),
        }
    }
}

#[test]
fn fragmented_message() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/fragmented?parts=5");
        assert_eq!(
            read_text(&mut c),
            "fragment-0|fragment-1|fragment-2|fragment-3|fragment-4"
        );
        assert_echo(&mut c);

        // On the wire: 5 frames, text then continuations, FIN only on the last.
        let (mut s, _) = raw_connect(&server, tls, "/fragmented?parts=5");
        for i in 0..5 {
            let f = read_raw(&mut s);
            assert_eq!(f.opcode, if i == 0 { raw::OP_TEXT } else { raw::OP_CONT });
            assert_eq!(f.fin, i == 4);
            let want = if i == 4 {
                format!("fragment-{i}")
            } else {
                format!("fragment-{i}|")
            };
            assert_eq!(f.payload, want.as_bytes());
        }
        raw_close_and_expect_echo(&mut s, 1000);

        // ping=1 interleaves pings; binary=1 uses a binary opcode.
        let (mut s, _) = raw_connect(&server, tls, "/fragmented?parts=3&ping=1&binary=1");
        let ops: Vec<u8> = (0..5).map(|_| read_raw(&mut s).opcode).collect();
        assert_eq!(
            ops,
            [
                raw::OP_BINARY,
                raw::OP_PING,
                raw::OP_CONT,
                raw::OP_PING,
                raw::OP_CONT
            ]
        );
        let mut c = connect(&server, tls, "/fragmented?parts=3&ping=1&binary=1");
        loop {
            match c.read().unwrap() {
                Message::Ping(_) => continue,
                Message::Binary(b) => {
                    assert_eq!(&b[..], b"fragment-0|fragment-1|fragment-2");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut c = connect(&server, tls, "/fragmented?parts=1");
        assert_eq!(read_text(&mut c), "fragment-0");
    }
}

#[test]
fn drop_without_close_frame() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/drop");
        assert_eq!(read_text(&mut c), "bye");
        let started = Instant::now();
        match c.read() {
            Ok(m) => panic!("expected the connection to drop, got {m:?}"),
            Err(e) => assert!(!ws_is_timeout(&e), "timed out instead of dropping: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(server.client_closes().is_empty());
}

#[test]
fn drop_mid_frame() {
    let server = TestServer::start();
    for tls in BOTH {
        let (mut s, _) = raw_connect(&server, tls, "/drop_mid");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => {
                    assert!(!is_timeout(&e), "timed out: {e}");
                    break;
                }
            }
        }
        let mut want = vec![0x82, 126, 0x03, 0xE8];
        want.extend(0u8..10);
        assert_eq!(got, want);

        let mut c = connect(&server, tls, "/drop_mid");
        match c.read() {
            Ok(m) => panic!("expected an error, got {m:?}"),
            Err(e) => assert!(!ws_is_timeout(&e), "timed out: {e}"),
        }
    }
}

#[test]
fn silent_never_answers() {
    let server = TestServer::start();
    for tls in BOTH {
        let req = url(&server, tls, "/silent").into_client_request().unwrap();
        let (mut c, _) = try_connect_req(&server, tls, req, Duration::from_millis(700)).unwrap();
        c.send(Message::Ping("are you there".into())).unwrap();
        c.send(Message::text("hello?")).unwrap();
        match c.read() {
            Err(e) if ws_is_timeout(&e) => {}
            other => panic!("expected silence, got {other:?}"),
        }
        drop(c);
    }
    // Both server threads notice the client left.
    assert!(server.wait_idle(TIMEOUT));
    assert_eq!(server.connections(), 2);
}

#[test]
fn stall_never_reads() {
    let server = TestServer::start();
    for tls in BOTH {
        // (The read timeout bounds the handshake, and for TLS the reads
        // rustls tries while writing: 300 ms failed the handshake on a
        // loaded machine. What this test waits for is the write timeout.)
        let s = tcp(
            if tls { server.tls_port } else { server.port },
            Duration::from_secs(2),
        );
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let s: Stream = if tls {
            tls_wrap(s, support::tls_client_config(&server.ca_pem), "localhost")
        } else {
            Box::new(s)
        };
        let (mut c, _) = tungstenite::client::client_with_config(
            url(&server, tls, "/stall"),
            s,
            Some(client_config()),
        )
        .map_err(flatten)
        .unwrap();
        // Socket buffers fill up and a write times out.
        let chunk = vec![7u8; 1 << 20];
        let mut blocked = false;
        for _ in 0..256 {
            if let Err(e) = c.send(Message::binary(chunk.clone())) {
                assert!(ws_is_timeout(&e), "unexpected error {e}");
                blocked = true;
                break;
            }
        }
        assert!(blocked, "the server kept reading");
    }
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn bad_utf8_text_frame() {
    let server = TestServer::start();
    for tls in BOTH {
        let (mut s, _) = raw_connect(&server, tls, "/badutf8");
        let f = read_raw(&mut s);
        assert_eq!(
            f,
            RawFrame {
                fin: true,
                rsv: 0,
                opcode: raw::OP_TEXT,
                masked: false,
                payload: vec![0xC3, 0x28]
            }
        );
        raw_close_and_expect_echo(&mut s, 1007);

        let mut c = connect(&server, tls, "/badutf8");
        match c.read() {
            Err(WsError::Utf8(_)) => {}
            other => panic!("expected a UTF-8 error, got {other:?}"),
        }
    }
    let closes = server.wait_client_closes(2, TIMEOUT);
    assert!(closes
        .iter()
        .any(|c| c.path == "/badutf8" && c.code == Some(1007)));
}

#[test]
fn ping_then_pong_report() {
    let server = TestServer::start();
    for tls in BOTH {
        let mut c = connect(&server, tls, "/ping?payload=abc");
        match c.read().unwrap() {
            Message::Ping(p) => assert_eq!(&p[..], b"abc"),
            other => panic!("expected ping, got {other:?}"),
        }
        // tungstenite sends the pong on this read; the server then reports it.
        assert_eq!(read_text(&mut c), "pong:abc");
        assert_echo(&mut c);
        close_cleanly(&mut c, 1000, "");

        // A non-matching pong is not reported.
        let (mut s, _) = raw_connect(&server, tls, "/ping?payload=xyz");
        let f = read_raw(&mut s);
        assert_eq!((f.opcode, &f.payload[..]), (raw::OP_PING, &b"xyz"[..]));
        let m = Some([5, 6, 7, 8]);
        s.write_all(&raw::encode_frame(true, raw::OP_PONG, b"nope", m))
            .unwrap();
        s.write_all(&raw::encode_frame(true, raw::OP_PONG, b"xyz", m))
            .unwrap();
        let f = read_raw(&mut s);
        assert_eq!((f.opcode, &f.payload[..]), (raw::OP_TEXT, &b"pong:xyz"[..]));
        raw_close_and_expect_echo(&mut s, 1000);
    }
}

#[test]
fn http200_without_upgrade() {
    let server = TestServer::start();
    for tls in BOTH {
        match try_connect(&server, tls, "/http200") {
            Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 200),
            Err(e) => panic!("expected HTTP 200, got {e}"),
            Ok(_) => panic!("expected no upgrade"),
        }
        let mut s = stream(&server, tls, TIMEOUT);
        let head = raw::handshake(&mut s, "x", "/http200", &[]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
        assert!(head.contains("Content-Length: 27\r\n"), "{head:?}");
        let body = raw::read_to_end_lossy(&mut s);
        assert_eq!(body, b"hello from the test server\n");
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn garbage_response() {
    let server = TestServer::start();
    for tls in BOTH {
        match try_connect(&server, tls, "/garbage") {
            Err(WsError::Http(r)) => panic!("garbage parsed as HTTP {}", r.status()),
            Err(e) => assert!(!ws_is_timeout(&e), "timed out: {e}"),
            Ok(_) => panic!("expected a handshake failure"),
        }
        let mut s = stream(&server, tls, TIMEOUT);
        s.write_all(b"GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(raw::read_to_end_lossy(&mut s), b"\x00\x01garbage\r\n\r\n");
    }
}

#[test]
fn hang_port_accepts_and_stays_quiet() {
    let server = TestServer::start();
    let mut s = tcp(server.hang_port, Duration::from_millis(400));
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(server.wait_hang_connections(1, TIMEOUT));
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Err(e) if is_timeout(&e) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    assert!(server.hang_url("/x").starts_with("ws://127.0.0.1:"));
    // Dropping the server releases the held socket promptly.
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let started = Instant::now();
    drop(server);
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) => assert!(!is_timeout(&e)),
        Ok(n) => panic!("hang port wrote {n} bytes"),
    }
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn tls_certificate_checks() {
    let server = TestServer::start();
    assert!(server.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // IP address in the certificate.
    let s = tls_wrap(
        tcp(server.tls_port, TIMEOUT),
        support::tls_client_config(&server.ca_pem),
        "127.0.0.1",
    );
    let (mut c, _) = tungstenite::client::client_with_config(server.tls_ip_url("/echo"), s, None)
        .map_err(flatten)
        .unwrap();
    assert_echo(&mut c);
    close_cleanly(&mut c, 1000, "");

    // A self-signed cert that is not the CA: valid PEM, untrusted issuer.
    let other = support::self_signed_pem();
    assert!(other.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(other, server.ca_pem);
    let s = tls_wrap(
        tcp(server.tls_port, TIMEOUT),
        support::tls_client_config(&other),
        "localhost",
    );
    match tungstenite::client::client(server.tls_url("/echo"), s).map_err(flatten) {
        Err(e) => assert!(e.to_string().contains("UnknownIssuer"), "{e}"),
        Ok(_) => panic!("untrusted certificate accepted"),
    }

    // Wrong name.
    let s = tls_wrap(
        tcp(server.tls_port, TIMEOUT),
        support::tls_client_config(&server.ca_pem),
        "example.com",
    );
    match tungstenite::client::client("wss://example.com/echo", s).map_err(flatten) {
        Err(e) => assert!(e.to_string().contains("not valid for name"), "{e}"),
        Ok(_) => panic!("wrong host name accepted"),
    }
    // The server survives failed handshakes.
    let mut c = connect(&server, true, "/echo");
    assert_echo(&mut c);
}

#[test]
fn urls_and_bookkeeping() {
    let server = TestServer::start();
    assert_eq!(
        server.url("/echo"),
        format!("ws://127.0.0.1:{}/echo", server.port)
    );
    assert_eq!(
        server.tls_url("/echo"),
        format!("wss://localhost:{}/echo", server.tls_port)
    );
    assert_eq!(server.connections(), 0);
    let mut a = connect(&server, false, "/echo?a=1");
    let mut b = connect(&server, true, "/echo");
    assert_echo(&mut a);
    assert_echo(&mut b);
    assert_eq!(server.connections(), 2);
    assert_eq!(server.tcp_connections(), 2);
    assert_eq!(server.active_connections(), 2);
    assert_eq!(server.requests(), ["/echo?a=1", "/echo"]);
    close_cleanly(&mut a, 1000, "");
    close_cleanly(&mut b, 1000, "");
    assert!(server.wait_idle(TIMEOUT));
}

#[test]
fn many_concurrent_connections() {
    let server = Arc::new(TestServer::start());
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let server = server.clone();
            thread::spawn(move || {
                let tls = i % 2 == 1;
                let mut c = connect(&server, tls, "/echo");
                for j in 0..100 {
                    let msg = format!("{i}-{j}");
                    c.send(Message::text(msg.clone())).unwrap();
                    assert_eq!(read_text(&mut c), msg);
                }
                close_cleanly(&mut c, 1000, "");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connections(), 16);
    assert!(server.wait_idle(TIMEOUT));
}

#[test]
fn misbehaving_clients_do_not_hurt_the_server() {
    let server = TestServer::start();
    // Garbage instead of HTTP, half a request, a non-upgrade GET to a ws path,
    // a client masking nothing, a TLS port spoken to in plain text.
    let mut s = tcp(server.port, TIMEOUT);
    s.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
    raw::read_to_end_lossy(&mut s);
    let mut s = tcp(server.port, TIMEOUT);
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    raw::read_to_end_lossy(&mut s);
    let mut s = tcp(server.tls_port, TIMEOUT);
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    raw::read_to_end_lossy(&mut s);
    let mut half = tcp(server.port, TIMEOUT);
    half.write_all(b"GET /echo HTT").unwrap();
    drop(half);
    let (mut s, _) = raw_connect(&server, false, "/echo");
    s.write_all(&raw::encode_frame(true, raw::OP_TEXT, b"unmasked", None))
        .unwrap();
    raw::read_to_end_lossy(&mut s);
    // Still serving.
    let mut c = connect(&server, false, "/echo");
    assert_echo(&mut c);
    let mut c = connect(&server, true, "/echo");
    assert_echo(&mut c);
}

#[test]
fn drop_is_bounded_with_everything_open() {
    let server = TestServer::start();
    let mut clients: Vec<Stream> = Vec::new();
    for tls in BOTH {
        for path in ["/silent", "/stall", "/echo"] {
            clients.push(raw_connect(&server, tls, path).0);
        }
        // Connected but never sent a request (server blocked reading the head
        // or, for TLS, the ClientHello).
        clients.push(stream(&server, tls, TIMEOUT));
    }
    let plain_idle = tcp(server.port, TIMEOUT);
    let tls_idle = tcp(server.tls_port, TIMEOUT);
    let hang = tcp(server.hang_port, TIMEOUT);
    assert!(server.wait_connections(6, TIMEOUT));
    assert!(server.wait_hang_connections(1, TIMEOUT));
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "Drop took {:?}",
        started.elapsed()
    );
    for mut s in [plain_idle, tls_idle, hang] {
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) => assert!(!is_timeout(&e)),
            Ok(n) => panic!("unexpected {n} bytes"),
        }
    }
    for mut s in clients {
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) => assert!(!is_timeout(&e), "{e}"),
            Ok(n) => panic!("unexpected {n} bytes"),
        }
    }
}
