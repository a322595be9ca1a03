//! What the server does for each request path.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::{derive_accept_key, HandshakeError};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use super::conn::{Conn, Replay, Req};
use super::raw;
use super::{log, ClientClose, Shared, SILENT_HOLD};

pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Ws = WebSocket<Replay>;

/// Paths that are upgraded to WebSocket (everything else that is not a raw
/// path is answered 404).
const WS_PATHS: &[&str] = &[
    "/echo",
    "/caf%C3%A9",
    "/close",
    "/close_code",
    "/subprotocol",
    "/headers",
    "/burst",
    "/big",
    "/oversize",
    "/fragmented",
    "/drop",
    "/drop_mid",
    "/silent",
    "/stall",
    "/badutf8",
    "/ping",
    "/raw",
    "/mixed",
    "/collect",
];

/// Largest frame accepted in raw mode (after a deliberate protocol violation).
const RAW_MAX_FRAME: usize = 64 * 1024 * 1024;

pub fn dispatch(conn: Conn, head: Vec<u8>, req: Req, shared: &Shared) -> Result<(), BoxErr> {
    match req.path.as_str() {
        "/http200" => raw_response(conn, 200, "hello from the test server\n"),
        "/garbage" => raw_bytes(conn, b"\x00\x01garbage\r\n\r\n"),
        "/upgrade" => handcrafted_upgrade(conn, &req, shared),
        // tungstenite refuses to send a 2xx error response: write it raw.
        "/refuse" if (200..300).contains(&req.num::<u16>("status").unwrap_or(403)) => {
            raw_response(conn, req.num("status").unwrap_or(200), "refused\n")
        }
        _ => websocket(conn, head, req, shared),
    }
}

fn status_text(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Writes a complete non-upgrade HTTP response on the raw stream and closes.
fn raw_response(mut conn: Conn, status: u16, body: &str) -> Result<(), BoxErr> {
    let resp = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        status_text(status),
        body.len()
    );
    raw_bytes_ref(&mut conn, resp.as_bytes())
}

fn raw_bytes(mut conn: Conn, bytes: &[u8]) -> Result<(), BoxErr> {
    raw_bytes_ref(&mut conn, bytes)
}

fn raw_bytes_ref(conn: &mut Conn, bytes: &[u8]) -> Result<(), BoxErr> {
    conn.write_all(bytes)?;
    conn.flush()?;
    conn.close_notify();
    let _ = conn.tcp().shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// `/upgrade`: the 101 written by hand, so it can be what tungstenite's
/// server would never send: `conn` (repeatable: one Connection line each,
/// default `Upgrade`), `ext` (a Sec-WebSocket-Extensions value), `size`
/// (filler `X-Pad` headers make the head exactly this many bytes), `seg`
/// (written in pieces of this many bytes, each flushed on its own, so with
/// TCP_NODELAY each leaves as its own segment), `offered=1` (send `ext`
/// only if the request offered permessage-deflate, as a real server does),
/// `lines` (hex: raw header lines put right after the status line, e.g. a
/// folded header), `pre` (hex: bytes written before the 101, e.g. interim
/// 1xx responses; written in the same segments, and not part of `size`).
/// Then echo, or with `mode=deflate` a permessage-deflate peer
/// ([`deflate_peer`]; plain when `offered=1` and nothing was offered).
fn handcrafted_upgrade(mut conn: Conn, req: &Req, shared: &Shared) -> Result<(), BoxErr> {
    let key = req
        .headers
        .iter()
        .find(|(n, _)| n == "sec-websocket-key")
        .map(|(_, v)| v.as_str())
        .ok_or("no Sec-WebSocket-Key in the request")?;
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    head.push_str(&String::from_utf8(unhex(req.param("lines").unwrap_or("")))?);
    head.push_str("Upgrade: websocket\r\n");
    let mut conns: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "conn")
        .map(|(_, v)| v.as_str())
        .collect();
    if conns.is_empty() {
        conns.push("Upgrade");
    }
    for c in conns {
        head.push_str(&format!("Connection: {c}\r\n"));
    }
    head.push_str(&format!(
        "Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    ));
    let offered = req.headers.iter().any(|(n, v)| {
        n == "sec-websocket-extensions" && v.to_ascii_lowercase().contains("permessage-deflate")
    });
    let declined = req.param("offered") == Some("1") && !offered;
    if let Some(ext) = req.param("ext").filter(|_| !declined) {
        head.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    if let Some(size) = req.num::<usize>("size") {
        // Lines `X-Pad: aaa...\r\n` of at most 1000 bytes (at least 10).
        let mut left = size
            .checked_sub(head.len() + 2)
            .filter(|&n| n == 0 || n >= 10)
            .ok_or("size too small to pad to")?;
        while left > 0 {
            let mut line = left.min(1000);
            if (1..10).contains(&(left - line)) {
                line -= 10;
            }
            head.push_str(&format!("X-Pad: {}\r\n", "a".repeat(line - 9)));
            left -= line;
        }
    }
    head.push_str("\r\n");
    shared.ws_accepted();
    let seg = req.num::<usize>("seg").unwrap_or(usize::MAX).max(1);
    let mut bytes = unhex(req.param("pre").unwrap_or(""));
    bytes.extend_from_slice(head.as_bytes());
    for piece in bytes.chunks(seg) {
        conn.tcp().set_nodelay(true)?;
        let sent = conn.write_all(piece).and_then(|()| conn.flush());
        if let Err(e) = sent {
            // The client may refuse the head before it is all sent.
            log(&format!("{}: head not sent whole: {e}", req.target));
            return Ok(());
        }
    }
    if req.param("mode") == Some("deflate") {
        return deflate_peer(conn, req, shared, declined);
    }
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let mut ws =
        WebSocket::from_raw_socket(Replay::new(Vec::new(), conn), Role::Server, Some(config));
    match echo(&mut ws, req, shared, None) {
        Ok(Outcome::Graceful) => {
            ws.get_mut().inner.close_notify();
            Ok(())
        }
        Ok(Outcome::Abrupt) => Ok(()),
        Err(e) => Err(format!("{}: {e}", req.target).into()),
    }
}

enum Decision {
    Accept { subprotocol: Option<String> },
    Refuse { status: u16, body: String },
}

fn decide(req: &Req) -> Decision {
    match req.path.as_str() {
        "/refuse403" => Decision::Refuse {
            status: 403,
            body: "forbidden\n".into(),
        },
        "/refuse" => Decision::Refuse {
            status: req.num("status").unwrap_or(403),
            body: "refused\n".into(),
        },
        "/subprotocol" => {
            let subprotocol = match req.param("force") {
                Some(forced) => Some(forced.to_string()),
                None => req
                    .headers
                    .iter()
                    .filter(|(n, _)| n == "sec-websocket-protocol")
                    .flat_map(|(_, v)| v.split(','))
                    .map(str::trim)
                    .find(|p| !p.is_empty())
                    .map(str::to_string),
            };
            Decision::Accept { subprotocol }
        }
        p if WS_PATHS.contains(&p) => Decision::Accept { subprotocol: None },
        _ => Decision::Refuse {
            status: 404,
            body: "not found\n".into(),
        },
    }
}

fn error_response(status: u16, body: String) -> ErrorResponse {
    let len = body.len();
    let mut r = ErrorResponse::new(Some(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    h.insert("content-length", HeaderValue::from(len));
    h.insert("connection", HeaderValue::from_static("close"));
    r
}

// The callback's signature (and its large Err type) is tungstenite's.
#[allow(clippy::result_large_err)]
fn websocket(conn: Conn, head: Vec<u8>, req: Req, shared: &Shared) -> Result<(), BoxErr> {
    let decision = decide(&req);
    let callback = |_: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        match decision {
            Decision::Accept { subprotocol } => {
                if let Some(p) = subprotocol {
                    match HeaderValue::from_str(&p) {
                        Ok(v) => {
                            resp.headers_mut().insert("sec-websocket-protocol", v);
                        }
                        Err(_) => log(&format!("cannot send subprotocol {p:?}")),
                    }
                }
                // Counted before the 101 goes out, so a client that has seen
                // the upgrade complete always finds it counted.
                shared.ws_accepted();
                Ok(resp)
            }
            Decision::Refuse { status, body } => Err(error_response(status, body)),
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let mut ws = match tungstenite::accept_hdr_with_config(
        Replay::new(head, conn),
        callback,
        Some(config),
    ) {
        Ok(ws) => ws,
        Err(HandshakeError::Failure(WsError::Http(resp))) => {
            log(&format!(
                "{}: refused with HTTP {}",
                req.target,
                resp.status()
            ));
            return Ok(());
        }
        Err(HandshakeError::Failure(e)) => {
            return Err(format!("{}: handshake failed: {e}", req.target).into())
        }
        Err(HandshakeError::Interrupted(_)) => {
            return Err(format!("{}: handshake interrupted", req.target).into())
        }
    };
    let result = route(&mut ws, &req, shared);
    match result {
        Ok(Outcome::Graceful) => {
            ws.get_mut().inner.close_notify();
            Ok(())
        }
        Ok(Outcome::Abrupt) => Ok(()),
        Err(e) => Err(format!("{}: {e}", req.target).into()),
    }
}

/// How a WebSocket connection ended (for TLS: whether to send close_notify).
enum Outcome {
    Graceful,
    Abrupt,
}

fn route(ws: &mut Ws, req: &Req, shared: &Shared) -> Result<Outcome, BoxErr> {
    let path = req.path.as_str();
    match path {
        "/echo" | "/caf%C3%A9" | "/subprotocol" => echo(ws, req, shared, None),
        "/headers" => {
            let listing = req
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
                .join("\n");
            ws.send(Message::text(listing))?;
            echo(ws, req, shared, None)
        }
        "/close" => {
            let frame = req.num::<u16>("code").map(|code| CloseFrame {
                code: CloseCode::from(code),
                reason: req.param("reason").unwrap_or("").to_string().into(),
            });
            ws.close(frame)?;
            // tungstenite returns the client's reply, then ConnectionClosed.
            echo(ws, req, shared, None)
        }
        "/close_code" => {
            let code = req.num::<u16>("code").unwrap_or(1000);
            let payload = raw::close_payload(code, req.param("reason").unwrap_or(""));
            ws.flush()?;
            write_raw(ws, &raw::encode_frame(true, raw::OP_CLOSE, &payload, None))?;
            raw_mode(ws, req, shared)
        }
        "/burst" => {
            let n = req.num::<usize>("n").unwrap_or(10);
            let size = req.num::<usize>("size").unwrap_or(0);
            for i in 0..n {
                let mut s = i.to_string();
                while s.len() < size {
                    s.push('.');
                }
                ws.write(Message::text(s))?;
            }
            ws.flush()?;
            echo(ws, req, shared, None)
        }
        "/big" | "/oversize" => {
            let size = req.num::<usize>("size").unwrap_or(1 << 20);
            ws.send(Message::binary(pattern(size)))?;
            echo(ws, req, shared, None)
        }
        "/fragmented" => {
            let parts = req.num::<usize>("parts").unwrap_or(5).max(1);
            let binary = req.param("binary").is_some_and(|v| v == "1");
            let ping = req.param("ping").is_some_and(|v| v == "1");
            for i in 0..parts {
                let last = i + 1 == parts;
                let mut chunk = format!("fragment-{i}");
                if !last {
                    chunk.push('|');
                }
                let opcode = match (i, binary) {
                    (0, false) => OpCode::Data(Data::Text),
                    (0, true) => OpCode::Data(Data::Binary),
                    _ => OpCode::Data(Data::Continue),
                };
                ws.write(Message::Frame(Frame::message(chunk, opcode, last)))?;
                if ping && !last {
                    ws.write(Message::Ping(format!("ping-{i}").into()))?;
                }
            }
            ws.flush()?;
            echo(ws, req, shared, None)
        }
        "/drop" => {
            ws.send(Message::text("bye"))?;
            ws.get_ref().inner.shutdown_both();
            Ok(Outcome::Abrupt)
        }
        "/drop_mid" => {
            ws.flush()?;
            // Binary frame announcing 1000 bytes, then only 10 of them.
            let mut bytes = vec![0x82, 126, 0x03, 0xE8];
            bytes.extend(0u8..10);
            write_raw(ws, &bytes)?;
            ws.get_ref().inner.shutdown_both();
            Ok(Outcome::Abrupt)
        }
        "/mixed" => {
            // `n` messages (`mixed_message`) with a ping after every 7th,
            // framed here and written in odd-sized pieces, so frames arrive
            // split at every possible place.
            let n = req.num::<usize>("n").unwrap_or(100);
            let mut wire = Vec::new();
            for i in 0..n {
                let (text, payload, fragmented) = super::mixed_message(i);
                let op = if text { raw::OP_TEXT } else { raw::OP_BINARY };
                if fragmented {
                    let (a, rest) = payload.split_at(payload.len() / 3);
                    let (b, c) = rest.split_at(rest.len() / 2);
                    wire.extend(raw::encode_frame(false, op, a, None));
                    wire.extend(raw::encode_frame(true, raw::OP_PING, b"p", None));
                    wire.extend(raw::encode_frame(false, raw::OP_CONT, b, None));
                    wire.extend(raw::encode_frame(true, raw::OP_CONT, c, None));
                } else {
                    wire.extend(raw::encode_frame(true, op, &payload, None));
                }
                if i % 7 == 6 {
                    wire.extend(raw::encode_frame(true, raw::OP_PING, b"", None));
                }
            }
            ws.flush()?;
            let mut at = 0;
            let mut k = 0usize;
            while at < wire.len() {
                k += 1;
                let piece = (1 + k * 7919 % 3001).min(wire.len() - at);
                write_raw(ws, &wire[at..at + piece])?;
                at += piece;
            }
            raw_mode(ws, req, shared)
        }
        "/silent" => silent(ws),
        "/stall" => {
            // Never read (so the client's writes back up), never write.
            shared.wait_stop(SILENT_HOLD);
            ws.get_ref().inner.shutdown_both();
            Ok(Outcome::Abrupt)
        }
        "/raw" => {
            // `hex`: bytes written raw right after the upgrade (e.g. a frame
            // with reserved bits or an unknown opcode); then raw mode.
            let bytes = unhex(req.param("hex").unwrap_or(""));
            ws.flush()?;
            write_raw(ws, &bytes)?;
            raw_mode(ws, req, shared)
        }
        "/badutf8" => {
            ws.flush()?;
            write_raw(ws, &[0x81, 0x02, 0xC3, 0x28])?;
            raw_mode(ws, req, shared)
        }
        "/collect" => {
            // Say nothing until `n` data messages have arrived (so only the
            // client's own wake-ups can get them out), then "got N", then echo.
            let n = req.num::<usize>("n").unwrap_or(1);
            let mut got = 0;
            while got < n {
                match ws.read()? {
                    Message::Text(_) | Message::Binary(_) => got += 1,
                    Message::Close(_) => return Ok(Outcome::Graceful),
                    _ => {}
                }
            }
            ws.send(Message::text(format!("got {got}")))?;
            echo(ws, req, shared, None)
        }
        "/ping" => {
            let payload = req.param("payload").unwrap_or("").to_string();
            ws.send(Message::Ping(payload.clone().into_bytes().into()))?;
            let mut answered = false;
            let mut on_pong = |ws: &mut Ws, data: &[u8]| -> Result<(), WsError> {
                if !answered && data == payload.as_bytes() {
                    answered = true;
                    ws.send(Message::text(format!("pong:{payload}")))?;
                }
                Ok(())
            };
            echo(ws, req, shared, Some(&mut on_pong))
        }
        _ => Err(format!("no route for {path}").into()),
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Byte i = i % 251.
pub fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

type PongHook<'a> = &'a mut dyn FnMut(&mut Ws, &[u8]) -> Result<(), WsError>;

/// Echo text/binary back as the same type until the connection ends.
/// tungstenite answers pings and the client's close by itself.
fn echo(
    ws: &mut Ws,
    req: &Req,
    shared: &Shared,
    mut on_pong: Option<PongHook>,
) -> Result<Outcome, BoxErr> {
    loop {
        match ws.read() {
            // Data that crosses our own close frame is not echoed.
            Ok(Message::Text(_)) | Ok(Message::Binary(_)) if !ws.can_write() => {}
            Ok(Message::Text(t)) => ws.send(Message::Text(t))?,
            Ok(Message::Binary(b)) => ws.send(Message::Binary(b))?,
            Ok(Message::Pong(p)) => {
                if let Some(hook) = on_pong.as_mut() {
                    hook(ws, &p)?;
                }
            }
            Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => {}
            Ok(Message::Close(frame)) => shared.record_close(ClientClose {
                path: req.path.clone(),
                code: frame.as_ref().map(|f| u16::from(f.code)),
                reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
            }),
            Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => {
                return Ok(Outcome::Graceful)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn write_raw(ws: &mut Ws, bytes: &[u8]) -> io::Result<()> {
    let conn = &mut ws.get_mut().inner;
    conn.write_all(bytes)?;
    conn.flush()
}

/// After a deliberate protocol violation tungstenite's state no longer matches
/// the wire, so read raw frames: answer pings, echo the client's close frame
/// (same payload) and end; data frames are ignored.
fn raw_mode(ws: &mut Ws, req: &Req, shared: &Shared) -> Result<Outcome, BoxErr> {
    let conn = &mut ws.get_mut().inner;
    // `then` (hex): bytes written once the client's first pong arrives, so
    // they reach it only after it has processed everything before.
    let mut then: Option<Vec<u8>> = req.param("then").map(unhex);
    loop {
        let frame = match raw::read_frame(conn, RAW_MAX_FRAME)? {
            Some(f) => f,
            None => return Ok(Outcome::Abrupt),
        };
        match frame.opcode {
            raw::OP_CLOSE => {
                let cc = frame.close_code();
                shared.record_close(ClientClose {
                    path: req.path.clone(),
                    code: cc.as_ref().map(|c| c.0),
                    reason: cc.map(|c| c.1).unwrap_or_default(),
                });
                conn.write_all(&raw::encode_frame(
                    true,
                    raw::OP_CLOSE,
                    &frame.payload,
                    None,
                ))?;
                conn.flush()?;
                return Ok(Outcome::Graceful);
            }
            raw::OP_PING => {
                conn.write_all(&raw::encode_frame(true, raw::OP_PONG, &frame.payload, None))?;
                conn.flush()?;
            }
            raw::OP_PONG => {
                if let Some(bytes) = then.take() {
                    conn.write_all(&bytes)?;
                    conn.flush()?;
                }
            }
            _ => {}
        }
    }
}

/// Read and discard whatever arrives (never answering anything) until the
/// client disconnects or SILENT_HOLD passes.
fn silent(ws: &mut Ws) -> Result<Outcome, BoxErr> {
    let deadline = Instant::now() + SILENT_HOLD;
    let conn = &mut ws.get_mut().inner;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            conn.shutdown_both();
            return Ok(Outcome::Abrupt);
        }
        let _ = conn
            .tcp()
            .set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match conn.read(&mut buf) {
            Ok(0) => return Ok(Outcome::Abrupt),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Ok(Outcome::Abrupt),
        }
    }
}

/// `/upgrade?mode=deflate&ext=permessage-deflate...`: a permessage-deflate
/// peer written with flate2 directly (not the library's code). First it
/// writes `hex` (frames made by the test), then echoes every message,
/// compressed (one frame, RSV1) unless `plain=1` (or `declined`: nothing was
/// negotiated), and answers pings. The
/// agreed `ext` decides the contexts: `server_no_context_takeover` resets its
/// compressor after each message, `client_no_context_takeover` its
/// decompressor. A text message `stats?` is answered (uncompressed) with
/// `compressed=N plain=M`: how many client messages came with and without
/// RSV1 (before it).
fn deflate_peer(mut conn: Conn, req: &Req, shared: &Shared, declined: bool) -> Result<(), BoxErr> {
    let ext = req.param("ext").unwrap_or("").to_ascii_lowercase();
    let server_reset = ext.contains("server_no_context_takeover");
    let client_reset = ext.contains("client_no_context_takeover");
    let plain = req.param("plain") == Some("1") || declined;
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, 15);
    let mut d = flate2::Decompress::new_with_window_bits(false, 15);
    conn.write_all(&unhex(req.param("hex").unwrap_or("")))?;
    conn.flush()?;
    let (mut compressed, mut uncompressed) = (0usize, 0usize);
    // The message being assembled: (opcode, RSV1 on its first frame, payload).
    let mut msg: Option<(u8, bool, Vec<u8>)> = None;
    loop {
        let Some(f) = raw::read_frame(&mut conn, RAW_MAX_FRAME)? else {
            return Ok(());
        };
        match f.opcode {
            raw::OP_CLOSE => {
                let cc = f.close_code();
                shared.record_close(ClientClose {
                    path: req.path.clone(),
                    code: cc.as_ref().map(|c| c.0),
                    reason: cc.map(|c| c.1).unwrap_or_default(),
                });
                conn.write_all(&raw::encode_frame(true, raw::OP_CLOSE, &f.payload, None))?;
                conn.flush()?;
                conn.close_notify();
                return Ok(());
            }
            raw::OP_PING => {
                conn.write_all(&raw::encode_frame(true, raw::OP_PONG, &f.payload, None))?;
                conn.flush()?;
                continue;
            }
            raw::OP_PONG => continue,
            raw::OP_CONT => {
                let m = msg.as_mut().ok_or("continuation without a message")?;
                m.2.extend_from_slice(&f.payload);
            }
            op => msg = Some((op, f.rsv & 4 != 0, f.payload)),
        }
        if !f.fin {
            continue;
        }
        let (op, rsv1, payload) = msg.take().ok_or("no message")?;
        let data = if rsv1 {
            compressed += 1;
            let data = raw::inflate_message(&mut d, &payload, RAW_MAX_FRAME)?;
            if client_reset {
                d.reset(false);
            }
            data
        } else {
            uncompressed += 1;
            payload
        };
        if op == raw::OP_TEXT && data == b"stats?" {
            compressed -= usize::from(rsv1);
            uncompressed -= usize::from(!rsv1);
            let answer = format!("compressed={compressed} plain={uncompressed}");
            conn.write_all(&raw::encode_frame(
                true,
                raw::OP_TEXT,
                answer.as_bytes(),
                None,
            ))?;
        } else if plain {
            conn.write_all(&raw::encode_frame(true, op, &data, None))?;
        } else {
            let wire = raw::deflate_message(&mut c, &data);
            if server_reset {
                c.reset();
            }
            conn.write_all(&raw::encode_frame_rsv(true, 4, op, &wire, None))?;
        }
        conn.flush()?;
    }
}
