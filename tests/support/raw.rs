//! Raw RFC 6455 frame helpers, used by the server for the deliberately broken
//! paths and by tests that need to see the exact bytes on the wire.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// One decoded frame (payload already unmasked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    /// The RSV bits (RSV1 = 4: a permessage-deflate message's first frame).
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// For a close frame: `(code, reason)`; `None` if the payload is empty.
    pub fn close_code(&self) -> Option<(u16, String)> {
        if self.payload.len() < 2 {
            return None;
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        Some((
            code,
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        ))
    }
}

/// Encodes one frame. `mask` is `Some` for client-to-server frames.
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    encode_frame_rsv(fin, 0, opcode, payload, mask)
}

/// [`encode_frame`] with RSV bits (`rsv`: RSV1 = 4, RSV2 = 2, RSV3 = 1).
pub fn encode_frame_rsv(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (rsv & 0x7) << 4 | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Close frame payload: 2-byte code followed by the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Reads one frame. `Ok(None)` on a clean EOF before the first header byte;
/// an EOF inside a frame is `UnexpectedEof`. Payloads over `max` are an error.
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<RawFrame>> {
    let mut h = [0u8; 2];
    match r.read(&mut h[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e),
    }
    r.read_exact(&mut h[1..])?;
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0F;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_be_bytes(b) as u64
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => n as u64,
    };
    if len > max as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {max} byte limit"),
        ));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask)?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some(RawFrame {
        fin,
        rsv: (h[0] >> 4) & 0x7,
        opcode,
        masked,
        payload,
    }))
}

/// Sends a minimal client upgrade request for `path` and reads the response
/// head (up to and including the blank line, nothing more). Returns the head.
pub fn handshake<S: Read + Write>(
    s: &mut S,
    host: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> io::Result<String> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (n, v) in extra_headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.flush()?;
    let head = super::conn::read_head(s)?;
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Server side of the upgrade: reads the request head (bounded), answers
/// 101 with the right `Sec-WebSocket-Accept`, accepting permessage-deflate
/// (with no parameters) if `deflate` and the request offers it. Returns the
/// request head.
pub fn accept_upgrade<S: Read + Write>(s: &mut S, deflate: bool) -> io::Result<String> {
    let head = super::conn::read_head(s)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let key =
        header("sec-websocket-key").ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let offered =
        header("sec-websocket-extensions").is_some_and(|e| e.contains("permessage-deflate"));
    let ext = if deflate && offered {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{ext}\r\n"
    );
    s.write_all(resp.as_bytes())?;
    s.flush()?;
    Ok(head)
}

/// Plain-TCP raw client: connects to 127.0.0.1:`port` (read/write timeouts of
/// 10 s), performs [`handshake`] for `path` and returns the socket and the
/// response head.
pub fn connect(port: u16, path: &str) -> io::Result<(TcpStream, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = handshake(&mut s, &format!("127.0.0.1:{port}"), path, &[])?;
    Ok((s, head))
}

/// Reads everything until EOF (or error / timeout), returning what was read.
pub fn read_to_end_lossy(r: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Raw deflate for permessage-deflate (RFC 7692), written with flate2
/// directly (not the library's code): one message's data, sync-flushed, the
/// trailing `00 00 ff ff` removed. `c` carries the context between messages.
pub fn deflate_message(c: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return vec![0];
    }
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut input = data;
    loop {
        out.reserve(input.len() + 64);
        let before = c.total_in();
        c.compress_vec(input, &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
    out.truncate(out.len() - 4);
    out
}

/// The inverse of [`deflate_message`] (the tail put back), bounded by `max`.
pub fn inflate_message(d: &mut flate2::Decompress, data: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(4096);
    let mut rest = &input[..];
    loop {
        if out.len() == out.capacity() {
            if out.len() >= max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "inflates past max",
                ));
            }
            out.reserve(out.len().max(4096));
        }
        let before = d.total_in();
        d.decompress_vec(rest, &mut out, flate2::FlushDecompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        rest = &rest[(d.total_in() - before) as usize..];
        if rest.is_empty() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}
