//! The peer misbehaving: protocol violations written as raw frames, close
//! codes of every class, and invalid ones. Each ends in the contract's
//! events, with no hang beyond the timeouts.

mod capi;
mod support;

use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Connect to /raw with these bytes sent by the server after the upgrade.
fn raw_peer(srv: &TestServer, bytes: &[u8]) -> Vec<Ev> {
    let ws = Ws::open(&srv.url(&format!("/raw?hex={}", hex(bytes))), None);
    ws.until_close()
}

#[test]
fn protocol_violations_fail_the_connection_with_1002() {
    let srv = TestServer::start();
    let mut too_big_ping = vec![0x89, 126];
    too_big_ping.extend(126u16.to_be_bytes());
    too_big_ping.extend([b'p'; 126]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("RSV1 set", vec![0xc1, 0x01, b'a']),
        ("RSV2 set", vec![0xa1, 0x01, b'a']),
        ("RSV3 set", vec![0x91, 0x01, b'a']),
        ("unknown data opcode 3", vec![0x83, 0x00]),
        ("unknown control opcode 11", vec![0x8b, 0x00]),
        ("fragmented ping", vec![0x09, 0x00]),
        ("ping over 125 bytes", too_big_ping),
        (
            "masked frame from the server",
            vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1],
        ),
        ("continuation without a start", vec![0x80, 0x01, b'a']),
        (
            "new message inside a fragmented one",
            vec![0x01, 0x01, b'a', 0x81, 0x01, b'b'],
        ),
        ("close frame with a 1-byte payload", vec![0x88, 0x01, 0x03]),
    ];
    for (what, bytes) in cases {
        let evs = raw_peer(&srv, &bytes);
        assert_eq!(
            kinds(&evs),
            [WSB_EVENT_ERROR, WSB_EVENT_CLOSE],
            "{what}: {evs:?}"
        );
        assert_eq!(evs[0].error, WSB_ERR_PROTOCOL, "{what}");
        assert!(!evs[0].data.is_empty(), "{what}: the ERROR has a detail");
        // The raw peer echoes our close frame: the handshake completes.
        assert_eq!((evs[1].close_code, evs[1].clean), (1002, true), "{what}");
    }
}

/// RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
/// Such a frame is a protocol error (1002; it used to be taken as a size
/// problem, 1009). Nothing after it can be framed, so the peer's answer to
/// our close is not read: the connection ends without a clean close.
#[test]
fn a_64_bit_length_with_its_top_bit_set_fails_with_1002() {
    let srv = TestServer::start();
    for len in [1u64 << 63, u64::MAX] {
        let mut frame = vec![0x82, 127];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(b"abc");
        let evs = raw_peer(&srv, &frame);
        assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{evs:?}");
        assert_eq!(evs[0].error, WSB_ERR_PROTOCOL, "{}", evs[0].text());
        assert!(
            evs[0].text().contains("most significant bit"),
            "{}",
            evs[0].text()
        );
        assert_eq!((evs[1].close_code, evs[1].clean), (1006, false));
    }
    let closes = srv.wait_client_closes(2, Duration::from_secs(20));
    assert_eq!(
        closes.iter().map(|c| c.code).collect::<Vec<_>>(),
        [Some(1002), Some(1002)]
    );
}

#[test]
fn a_new_message_inside_a_fragmented_one_fails_even_when_it_arrives_alone() {
    // The first fragment and a ping; the offending whole text frame is sent
    // only once the client answered the ping, so it arrives on its own
    // (where single-frame messages take the library's fast path).
    let srv = TestServer::start();
    let first = [0x01, 0x01, b'a', 0x89, 0x00];
    let then = [0x81, 0x01, b'b'];
    let ws = Ws::open(
        &srv.url(&format!("/raw?hex={}&then={}", hex(&first), hex(&then))),
        None,
    );
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{evs:?}");
    assert_eq!(evs[0].error, WSB_ERR_PROTOCOL);
    assert_eq!((evs[1].close_code, evs[1].clean), (1002, true));
}

#[test]
fn data_before_a_violation_is_delivered_in_order() {
    let srv = TestServer::start();
    let evs = raw_peer(
        &srv,
        &[
            0x81, 0x02, b'o', b'k', 0x82, 0x01, 7, 0xc1, 0x00, 0x81, 0x01, b'x',
        ],
    );
    assert_eq!(
        kinds(&evs),
        [
            WSB_EVENT_TEXT,
            WSB_EVENT_BINARY,
            WSB_EVENT_ERROR,
            WSB_EVENT_CLOSE
        ]
    );
    assert_eq!(evs[0].text(), "ok");
    assert_eq!(evs[1].data, [7]);
    // The text after the violation is never delivered.
}

/// Invalid UTF-8 in a text message from the peer, in one frame (`/badutf8`:
/// C3 28) or across fragments (CE | 80 28): ERROR, then our close 1007,
/// which the peer echoes (a clean close).
#[test]
fn invalid_utf8_from_the_peer_fails_with_1007() {
    let srv = TestServer::start();
    let fragmented = format!("/raw?hex={}", hex(&[0x01, 0x01, 0xce, 0x80, 0x01, 0x28]));
    for (i, path) in ["/badutf8", fragmented.as_str()].into_iter().enumerate() {
        let ws = Ws::open(&srv.url(path), None);
        let evs = ws.until_close();
        assert_eq!(
            kinds(&evs),
            [WSB_EVENT_ERROR, WSB_EVENT_CLOSE],
            "{path}: {evs:?}"
        );
        assert_eq!(evs[0].error, WSB_ERR_PROTOCOL, "{path}");
        assert_eq!(
            (evs[1].close_code, evs[1].clean),
            (1007, true),
            "{path}: the peer echoed 1007"
        );
        let closes = srv.wait_client_closes(i + 1, WAIT);
        assert_eq!(closes[i].code, Some(1007), "{path}");
    }
}

#[test]
fn peer_close_codes_of_every_valid_class_are_reported() {
    let srv = TestServer::start();
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let ws = Ws::open(
            &srv.url(&format!("/close_code?code={code}&reason=r{code}")),
            None,
        );
        let evs = ws.until_close();
        assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE], "code {code}");
        assert_eq!(
            (evs[0].close_code, evs[0].clean),
            (code, true),
            "code {code}"
        );
        assert_eq!(evs[0].text(), format!("r{code}"));
    }
}

#[test]
fn peer_close_with_an_invalid_code_is_a_protocol_error() {
    let srv = TestServer::start();
    let codes = [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ];
    for (i, code) in codes.into_iter().enumerate() {
        let ws = Ws::open(&srv.url(&format!("/close_code?code={code}")), None);
        let evs = ws.until_close();
        assert_eq!(
            kinds(&evs),
            [WSB_EVENT_ERROR, WSB_EVENT_CLOSE],
            "code {code}: {evs:?}"
        );
        assert_eq!(evs[0].error, WSB_ERR_PROTOCOL, "code {code}");
        assert!(
            evs[0].text().contains(&code.to_string()),
            "{}",
            evs[0].text()
        );
        assert_eq!(evs[1].close_code, 1002, "code {code}");
        // Our reply said 1002.
        let seen = srv.wait_client_closes(i + 1, Duration::from_secs(20));
        assert_eq!(seen.get(i).and_then(|c| c.code), Some(1002), "code {code}");
    }
}

#[test]
fn close_reason_that_is_not_utf8_fails_with_1007() {
    let srv = TestServer::start();
    let evs = raw_peer(&srv, &[0x88, 0x04, 0x03, 0xe8, 0xc3, 0x28]);
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{evs:?}");
    assert_eq!(evs[0].error, WSB_ERR_PROTOCOL);
}

/// A one-connection TLS server with its own certificate: it runs the
/// handshake (which the client is expected to abort) and ends.
fn tls_once(setup: &support::TlsSetup) -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = setup.server_config.clone();
    let t = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                break;
            }
        }
    });
    (port, t)
}

#[test]
fn tls_expired_certificate() {
    let setup = support::tls_setup(&["localhost", "127.0.0.1"], true);
    let (port, t) = tls_once(&setup);
    let o = Opts::new().ca(&setup.ca_pem);
    let ws = Ws::connect(&format!("wss://127.0.0.1:{port}/"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS);
    assert!(
        last_error().contains("certificate expired"),
        "{}",
        last_error()
    );
    assert_eq!(kinds(&ws.until_close()), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    t.join().unwrap();
}

#[test]
fn tls_wrong_host_name() {
    let setup = support::tls_setup(&["some-other-host.test"], false);
    let (port, t) = tls_once(&setup);
    let o = Opts::new().ca(&setup.ca_pem);
    let ws = Ws::connect(&format!("wss://localhost:{port}/"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS);
    assert!(
        last_error().contains("not valid for name"),
        "{}",
        last_error()
    );
    t.join().unwrap();
    // The same certificate is fine when verification is off (testing only).
    let (port, t) = tls_once(&setup);
    let o = Opts::new().verify(false);
    let ws = Ws::connect(&format!("wss://localhost:{port}/"), Some(&o)).unwrap();
    // The server only does the TLS handshake, then leaves: the upgrade fails.
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE, "{}", last_error());
    t.join().unwrap();
}

/// A one-connection plain server that answers the upgrade with `response`.
fn raw_http_once(response: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
            head.push(b[0]);
        }
        let _ = s.write_all(response);
        let mut rest = [0u8; 64];
        let _ = s.read(&mut rest); // until the client gives up
    });
    (port, t)
}

#[test]
fn accept_key_mismatch_is_refused() {
    let (port, t) = raw_http_once(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    );
    let ws = Ws::connect(&format!("ws://127.0.0.1:{port}/"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE);
    assert!(
        last_error().contains("Sec-WebSocket-Accept"),
        "{}",
        last_error()
    );
    drop(ws);
    t.join().unwrap();
}

#[test]
fn redirects_are_not_followed() {
    let (port, t) = raw_http_once(
        b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
    );
    let ws = Ws::connect(&format!("ws://127.0.0.1:{port}/"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE);
    assert_eq!(last_error(), "HTTP 302 from server");
    drop(ws);
    t.join().unwrap();
}

// ------------------------------------------------ the upgrade's response (issue 16)

/// A handcrafted 101 (`/upgrade?...`) opens, and a message is echoed.
fn opens_and_echoes(url: &str, opts: Option<&Opts>) {
    let ws = Ws::open(url, opts);
    assert_eq!(ws.send_text("hi"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "hi", "{url}");
}

/// The upgrade is refused: ERROR(WSB_ERR_HANDSHAKE), then CLOSE 1006, never
/// OPEN. Returns the detail.
fn upgrade_refused(url: &str) -> String {
    let ws = Ws::connect(url, None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_HANDSHAKE, "{url}: {}", last_error());
    let detail = last_error();
    let evs = ws.until_close();
    assert_eq!(
        kinds(&evs),
        [WSB_EVENT_ERROR, WSB_EVENT_CLOSE],
        "{url}: {evs:?}"
    );
    assert_eq!(evs[0].error, WSB_ERR_HANDSHAKE);
    assert_eq!(evs[0].text(), detail);
    assert_eq!((evs[1].close_code, evs[1].clean), (1006, false));
    detail
}

#[test]
fn an_extension_the_client_did_not_offer_fails_the_upgrade() {
    let srv = TestServer::start();
    for (ext, name) in [
        ("permessage-deflate", "permessage-deflate"),
        (
            "permessage-deflate;%20client_max_window_bits=10",
            "permessage-deflate",
        ),
        ("x-webkit-deflate-frame", "x-webkit-deflate-frame"),
    ] {
        let detail = upgrade_refused(&srv.url(&format!("/upgrade?ext={ext}")));
        assert_eq!(
            detail,
            format!("server accepted extension {name:?}, which the client did not offer")
        );
    }
    // The same 101 without the extension opens.
    opens_and_echoes(&srv.url("/upgrade"), None);
}

#[test]
fn connection_header_is_a_token_list_with_upgrade_in_it() {
    let srv = TestServer::start();
    for conn in [
        "conn=keep-alive,%20Upgrade",
        "conn=upgrade",
        "conn=keep-alive&conn=Upgrade",
    ] {
        opens_and_echoes(&srv.url(&format!("/upgrade?{conn}")), None);
    }
    for conn in [
        "conn=keep-alive",
        "conn=Upgraded",
        "conn=keep-alive&conn=close",
    ] {
        let detail = upgrade_refused(&srv.url(&format!("/upgrade?{conn}")));
        assert!(
            detail.contains("no upgrade token in Connection"),
            "{detail}"
        );
    }
}

#[test]
fn a_response_head_in_one_byte_segments_opens() {
    // 8000 bytes in 8000 TCP segments (TLS: records): tungstenite took more
    // than 64 reads averaging under 128 bytes for an attack ("Attack attempt
    // detected"). (Segments that arrive together are read together: so
    // many of them make sure the reads are many.)
    let srv = TestServer::start();
    opens_and_echoes(&srv.url("/upgrade?size=8000&seg=1"), None);
    let o = Opts::new().ca(&srv.ca_pem);
    opens_and_echoes(&srv.tls_url("/upgrade?size=8000&seg=1"), Some(&o));
}

#[test]
fn a_response_head_over_64_kib_fails_with_a_detail_naming_the_limit() {
    let srv = TestServer::start();
    // Exactly at the limit (the blank line included): opens.
    opens_and_echoes(&srv.url("/upgrade?size=65536"), None);
    for size in [65537, 300_000] {
        let detail = upgrade_refused(&srv.url(&format!("/upgrade?size={size}")));
        assert_eq!(detail, "server's HTTP response head is over 65536 bytes");
    }
    // In small segments, the same.
    let detail = upgrade_refused(&srv.url("/upgrade?size=70000&seg=100"));
    assert_eq!(detail, "server's HTTP response head is over 65536 bytes");
}

// ------------------------------------------------ unusual but legal heads (issue 23)

/// RFC 9112 §5.2: an obs-fold (a line break followed by spaces) in a header
/// the library does not even look at is unfolded, not a failed upgrade.
#[test]
fn an_obs_folded_header_in_the_101_is_unfolded() {
    let srv = TestServer::start();
    let folded = hex(b"X-Folded: first part\r\n  second part\r\n");
    opens_and_echoes(&srv.url(&format!("/upgrade?lines={folded}")), None);
    // With a tab, and arriving a byte at a time.
    let tab = hex(b"X-Folded: first part\r\n\tsecond part\r\n\t third\r\n");
    opens_and_echoes(&srv.url(&format!("/upgrade?lines={tab}&seg=1")), None);
}

/// A head the library does refuse is described by the line it refuses, not
/// by the status line.
#[test]
fn a_malformed_response_head_quotes_the_offending_line() {
    let srv = TestServer::start();
    for (lines, quoted) in [
        ("Bad Header: v\r\n", "Bad Header: v"),
        ("X-Ok: 1\r\nX-Ctl: a\x01b\r\n", "X-Ctl: a?b"),
        // Whitespace between the status line and the first header is not
        // an obs-fold (RFC 9112 §2.2).
        ("  stray\r\n", "  stray"),
    ] {
        let detail =
            upgrade_refused(&srv.url(&format!("/upgrade?lines={}", hex(lines.as_bytes()))));
        assert!(
            detail.starts_with("server sent a malformed HTTP response ("),
            "{lines:?}: {detail}"
        );
        assert!(
            detail.ends_with(&format!("{quoted:?}")),
            "{lines:?}: {detail}"
        );
    }
}

/// RFC 9110 §15.2: interim 1xx responses before the 101 are skipped.
#[test]
fn interim_1xx_responses_before_the_101_are_skipped() {
    let srv = TestServer::start();
    let cont = "HTTP/1.1 100 Continue\r\n\r\n";
    let hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    let processing = "HTTP/1.1 102 Processing\r\n\r\n";
    for pre in [
        cont.to_string(),
        hints.to_string(),
        format!("{cont}{processing}{hints}"),
    ] {
        let pre = hex(pre.as_bytes());
        opens_and_echoes(&srv.url(&format!("/upgrade?pre={pre}")), None);
        opens_and_echoes(&srv.url(&format!("/upgrade?pre={pre}&seg=1")), None);
    }
    // The 64 KiB limit counts every head: 25 bytes of 100 Continue and a
    // 101 of 65511 bytes is exactly the limit; one more byte is over it.
    assert_eq!(cont.len(), 25);
    let pre = hex(cont.as_bytes());
    opens_and_echoes(&srv.url(&format!("/upgrade?pre={pre}&size=65511")), None);
    let detail = upgrade_refused(&srv.url(&format!("/upgrade?pre={pre}&size=65512")));
    assert_eq!(detail, "server's HTTP response head is over 65536 bytes");
    let detail = upgrade_refused(&srv.url(&format!("/upgrade?pre={pre}&size=65512&seg=100")));
    assert_eq!(detail, "server's HTTP response head is over 65536 bytes");
}
