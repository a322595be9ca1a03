//! The benchmark's permessage-deflate (RFC 7692) echo server, for the
//! compressed scenarios: every client that can compress (wsbridge, Node `ws`,
//! Python `websockets`) talks to this one server, so the server's cost is the
//! same for all of them.
//!
//!   deflate-server [--level N]
//!
//! Prints `ws://127.0.0.1:PORT` (one line), then serves until killed.
//!
//! One thread per connection, TCP_NODELAY, frames handled by hand (tungstenite
//! has no extensions) with flate2 on zlib-rs, the library and backend
//! wsbridge uses. It accepts the first `permessage-deflate` offer it can
//! honour (`server_no_context_takeover`, `client_no_context_takeover` and
//! `server_max_window_bits` 9-15 are answered; `client_max_window_bits` is
//! left unanswered: it inflates with a 15-bit window, which reads any
//! client's stream), then echoes every text and binary message compressed
//! (one frame, RSV1) with deflate level `--level` (default 1: the server's
//! CPU is taken from the same two cores as the client's, so it spends as
//! little as it can; every client inflates the same streams). Pings are
//! answered, a close frame is echoed. Writes are batched like the plain echo
//! server's: it handles everything already readable, then writes once.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tungstenite::handshake::derive_accept_key;

/// What closes every message's deflate data (RFC 7692 §7.2.1); not sent.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;
/// Write what is queued once it passes this, even if more is readable.
const FLUSH_AT: usize = 1 << 20;

#[derive(Clone, Copy)]
struct Agreed {
    server_window: u8,
    server_reset: bool,
    client_reset: bool,
}

/// The first offer element it can honour, and the answer to send.
fn negotiate(offers: &[String]) -> Option<(String, Agreed)> {
    'element: for element in offers.iter().flat_map(|v| v.split(',')) {
        let mut params = element.split(';').map(str::trim);
        if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
            continue;
        }
        let mut answer = String::from("permessage-deflate");
        let mut a = Agreed {
            server_window: 15,
            server_reset: false,
            client_reset: false,
        };
        for p in params {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (p, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => {
                    a.server_reset = true;
                    answer.push_str("; server_no_context_takeover");
                }
                "client_no_context_takeover" => {
                    a.client_reset = true;
                    answer.push_str("; client_no_context_takeover");
                }
                "server_max_window_bits" => match value.and_then(|v| v.parse::<u8>().ok()) {
                    // zlib cannot write a window of 8: decline the element.
                    Some(b @ 9..=15) => {
                        a.server_window = b;
                        answer.push_str(&format!("; server_max_window_bits={b}"));
                    }
                    _ => continue 'element,
                },
                "client_max_window_bits" => {}
                _ => continue 'element,
            }
        }
        return Some((answer, a));
    }
    None
}

/// Reads the HTTP upgrade request and answers it; returns what was agreed and
/// any bytes read past the request head.
fn handshake(s: &mut TcpStream) -> Option<(Option<Agreed>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut key = None;
    let mut offers = Vec::new();
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "sec-websocket-key" => key = Some(value.trim().to_string()),
            "sec-websocket-extensions" => offers.push(value.trim().to_string()),
            _ => {}
        }
    }
    let key = key?;
    let agreed = negotiate(&offers);
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some((answer, _)) = &agreed {
        resp.push_str(&format!("Sec-WebSocket-Extensions: {answer}\r\n"));
    }
    resp.push_str("\r\n");
    s.write_all(resp.as_bytes()).ok()?;
    Some((agreed.map(|(_, a)| a), buf.split_off(end)))
}

fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask) as u64;
    let m8 = (m | (m << 32)).to_ne_bytes();
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c[..].try_into().unwrap()) ^ u64::from_ne_bytes(m8);
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

fn frame_header(out: &mut Vec<u8>, rsv1: bool, op: u8, len: usize) {
    out.push(0x80 | if rsv1 { 0x40 } else { 0 } | op);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A parsed frame header: (header length, fin, rsv1, opcode, payload length,
/// mask), or None until the whole header is in `b`.
fn parse_header(b: &[u8]) -> Option<(usize, bool, bool, u8, usize, [u8; 4])> {
    if b.len() < 2 {
        return None;
    }
    let (fin, rsv1, op) = (b[0] & 0x80 != 0, b[0] & 0x40 != 0, b[0] & 0x0f);
    let masked = b[1] & 0x80 != 0;
    let (mut at, len) = match b[1] & 0x7f {
        126 => (
            4,
            u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, n as usize),
    };
    let mut mask = [0; 4];
    if masked {
        mask.copy_from_slice(b.get(at..at + 4)?);
        at += 4;
    }
    Some((at, fin, rsv1, op, len, mask))
}

struct Conn {
    agreed: Option<Agreed>,
    level: u32,
    comp: Option<Compress>,
    decomp: Option<Decompress>,
    /// The message being assembled: opcode, RSV1, payload.
    op: u8,
    rsv1: bool,
    msg: Vec<u8>,
    plain: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    fn inflate(&mut self) {
        let d = self
            .decomp
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        self.msg.extend_from_slice(&TAIL);
        self.plain.clear();
        let mut input = &self.msg[..];
        loop {
            self.plain.reserve(input.len() * 4 + 4096);
            let before = d.total_in();
            let st = d
                .decompress_vec(input, &mut self.plain, FlushDecompress::Sync)
                .expect("invalid compressed data from the client");
            input = &input[(d.total_in() - before) as usize..];
            if st == Status::StreamEnd {
                d.reset(false);
            }
            if input.is_empty() && self.plain.len() < self.plain.capacity() {
                break;
            }
        }
        if self.agreed.is_some_and(|a| a.client_reset) {
            d.reset(false);
        }
    }

    /// Queues the echo of the whole message in `msg` (inflated first if it
    /// came compressed).
    fn echo(&mut self) {
        if self.rsv1 {
            self.inflate();
        } else {
            std::mem::swap(&mut self.plain, &mut self.msg);
        }
        let Some(a) = self.agreed else {
            frame_header(&mut self.out, false, self.op, self.plain.len());
            self.out.extend_from_slice(&self.plain);
            return;
        };
        let level = self.level;
        let c = self.comp.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, a.server_window)
        });
        // Compress into `msg` (free now), then frame it.
        self.msg.clear();
        if self.plain.is_empty() {
            self.msg.push(0);
        } else {
            let mut input = &self.plain[..];
            loop {
                self.msg.reserve(input.len() / 2 + 64);
                let before = c.total_in();
                c.compress_vec(input, &mut self.msg, FlushCompress::Sync)
                    .expect("deflate");
                input = &input[(c.total_in() - before) as usize..];
                if input.is_empty() && self.msg.len() < self.msg.capacity() {
                    break;
                }
            }
            if self.msg.ends_with(&TAIL) {
                self.msg.truncate(self.msg.len() - TAIL.len());
            }
            if a.server_reset {
                c.reset();
            }
        }
        frame_header(&mut self.out, true, self.op, self.msg.len());
        self.out.extend_from_slice(&self.msg);
    }

    /// Handles every whole frame at the start of `inb`; returns the bytes
    /// used, or None when the connection is to end (after a close).
    fn process(&mut self, inb: &mut [u8]) -> Option<usize> {
        let mut pos = 0;
        while let Some((hl, fin, rsv1, op, len, mask)) = parse_header(&inb[pos..]) {
            if inb.len() - pos < hl + len {
                break;
            }
            let payload = &mut inb[pos + hl..pos + hl + len];
            unmask(payload, mask);
            pos += hl + len;
            match op {
                0x8 => {
                    frame_header(&mut self.out, false, 0x8, payload.len());
                    self.out.extend_from_slice(payload);
                    return None;
                }
                0x9 => {
                    frame_header(&mut self.out, false, 0xA, payload.len());
                    self.out.extend_from_slice(payload);
                    continue;
                }
                0xA => continue,
                0x0 => self.msg.extend_from_slice(payload),
                _ => {
                    self.op = op;
                    self.rsv1 = rsv1;
                    self.msg.clear();
                    self.msg.extend_from_slice(payload);
                }
            }
            if fin {
                self.echo();
                self.msg.clear();
            }
        }
        Some(pos)
    }
}

/// Reads what the socket has into `inb`: Ok(false) at end of stream.
fn fill(s: &mut TcpStream, inb: &mut Vec<u8>) -> std::io::Result<bool> {
    let len = inb.len();
    inb.resize(len + READ_CHUNK, 0);
    let r = s.read(&mut inb[len..]);
    inb.truncate(len + *r.as_ref().unwrap_or(&0));
    Ok(r? > 0)
}

/// Writes everything queued, blocking; false if the peer is gone.
fn write_out(s: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    let ok = s.set_nonblocking(false).is_ok() && s.write_all(out).is_ok();
    out.clear();
    ok && s.set_nonblocking(true).is_ok()
}

fn serve(mut s: TcpStream, level: u32) {
    let Some((agreed, mut inb)) = handshake(&mut s) else {
        return;
    };
    let mut c = Conn {
        agreed,
        level,
        comp: None,
        decomp: None,
        op: 0,
        rsv1: false,
        msg: Vec::new(),
        plain: Vec::new(),
        out: Vec::new(),
    };
    loop {
        // Handle what is here and, without blocking, whatever else has
        // arrived meanwhile; then write everything at once.
        if s.set_nonblocking(true).is_err() {
            return;
        }
        let mut end = false;
        loop {
            match c.process(&mut inb) {
                Some(used) => {
                    inb.drain(..used);
                }
                None => {
                    end = true;
                    break;
                }
            }
            if c.out.len() >= FLUSH_AT && !write_out(&mut s, &mut c.out) {
                return;
            }
            match fill(&mut s, &mut inb) {
                Ok(true) => {}
                Ok(false) => {
                    end = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        if !write_out(&mut s, &mut c.out) || end {
            return;
        }
        // Nothing left to do: wait for the next bytes.
        if s.set_nonblocking(false).is_err() || !matches!(fill(&mut s, &mut inb), Ok(true)) {
            return;
        }
    }
}

fn main() {
    let mut level = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse::<u32>().ok())) {
            ("--level", Some(l)) if l <= 9 => level = l,
            _ => {
                eprintln!("usage: deflate-server [--level 0-9]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    {
        // Thousands of clients connecting at once (scale): raise the backlog.
        use std::os::fd::AsRawFd;
        unsafe { libc::listen(listener.as_raw_fd(), 16384) };
    }
    println!("ws://{}", listener.local_addr().unwrap());
    let _ = std::io::stdout().flush();
    for s in listener.incoming() {
        let Ok(s) = s else { continue };
        let _ = s.set_nodelay(true);
        let _ = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || serve(s, level));
    }
}
