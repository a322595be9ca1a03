//! Differential: the same arbitrary server bytes (after a valid handshake,
//! no compression negotiated) go to the crate's frame reader
//! (`wsbridge::protocol::Reader`, fed as the transport feeds it) and to
//! tungstenite 0.30's own reader (`WebSocket` in the client role over an
//! in-memory stream: the chunks, then WouldBlock, then EOF), the oracle.
//! Both get the same limit as max_message_size and max_frame_size.
//!
//! Input: `[config][n][n % 8 + 1 chunk-size bytes][server bytes]`; config
//! bits 0-2 pick the limit from `LIMITS` (64 KiB, or small ones).
//!
//! Compared, up to each side's first terminal event (the peer's close, a
//! failure, or the end of the input): the data messages (text or binary,
//! payload), pings and pongs, in order; then the terminal event: the peer's
//! close (code, reason), or the close code each would fail the connection
//! with (tungstenite's errors mapped as the library would: Capacity 1009,
//! Utf8 1007, Protocol 1002; the end of the input without a close frame is
//! no close code on either side).
//!
//! Deliberate differences, allowed here and nowhere else (each checked
//! against tungstenite 0.30's source, src/protocol/mod.rs, message.rs and
//! frame/):
//! (a) UTF-8: we fail a text message at its first invalid byte;
//!     tungstenite checks each frame's text once the frame is complete
//!     (`IncompleteMessage::extend`, `Utf8Bytes::try_from`). After our
//!     InvalidUtf8 fault, tungstenite may still deliver the control frames
//!     that came between fragments, then end in any way (its own 1007, the
//!     end of the input, the peer's close, a later error); it must deliver
//!     no other data message.
//! (b) a 64-bit length with its top bit set: we fail with 1002 (RFC 6455
//!     §5.2: the most significant bit MUST be 0); tungstenite compares the
//!     length with max_frame_size first (`FrameCodec::read_frame`): 1009.
//!     More generally, a frame that breaks a header rule (RSV bits, a mask,
//!     a control frame over 125 bytes or fragmented, a continuation without
//!     a message or a new message inside one) AND is over the limit: we
//!     report the rule (1002), tungstenite the size (1009).
//! (c) close codes: we accept 1000-1003, 1007-1014, 3000-4999; tungstenite
//!     (`CloseCode::is_allowed`) not 1014 (RFC 6455 registry: Bad Gateway),
//!     and turns any code it refuses into Close(1002, "Protocol
//!     violation") rather than an error: so codes are compared where both
//!     accept, and a close we refuse (1002) matches that. A close frame with
//!     both a refused code and an invalid UTF-8 reason: we report the code
//!     (1002), tungstenite the reason (`into_close` checks it first: 1007).
//! (d) a fault we find in a frame's header (the rules above, a message over
//!     the limit across fragments) is reported at once; tungstenite reports
//!     all but a reserved opcode and a frame over max_frame_size only when
//!     the frame's payload has arrived: if the input ends first, tungstenite
//!     just sees the end of the input.
//! (e) control frames and the limit: tungstenite applies max_frame_size to
//!     control frames too (1009 for a 20-byte ping under a 16-byte limit,
//!     at its header);
//!     for us the limit is a message size, and control frames are bounded
//!     by the RFC's 125 bytes (the library allows limits below 125).
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error, Message};
use wsbridge::protocol::Fault;

#[path = "common.rs"]
mod common;

use common::Got;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

const LIMITS: [usize; 8] = [64 * 1024, 64 * 1024, 1, 16, 125, 126, 4096, 65535];

/// A message or control frame, as both sides deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Message { text: bool, payload: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// How a side's reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The peer's valid close frame.
    PeerClose(u16, String),
    /// Failed: the close code to send.
    Fail(u16),
    /// The input ended (no close frame).
    Eof,
}

/// One side's result; for ours, `at` is where the terminal item ended in
/// the input and `fault` the fault itself.
#[derive(Debug)]
struct Outcome {
    events: Vec<Ev>,
    /// Input offset past each event (ours only).
    ats: Vec<usize>,
    end: End,
    at: usize,
    fault: Option<Fault>,
}

fn ours(limit: usize, data: &[u8], chunks: &[u8]) -> Outcome {
    let run = common::feed(limit, None, data, chunks);
    let mut out = Outcome {
        events: Vec::new(),
        ats: Vec::new(),
        end: End::Eof,
        at: data.len(),
        fault: None,
    };
    for (got, at) in run.items {
        let ev = match got {
            Got::Message { text, payload } => Ev::Message { text, payload },
            Got::Ping(p) => Ev::Ping(p),
            Got::Pong(p) => Ev::Pong(p),
            Got::Close(code, reason) => {
                out.end = End::PeerClose(code, reason);
                out.at = at;
                return out;
            }
            Got::BadClose(f) | Got::Fault(f) => {
                out.end = End::Fail(u16::from(f.close_code()));
                out.at = at;
                out.fault = Some(f);
                return out;
            }
        };
        out.events.push(ev);
        out.ats.push(at);
    }
    out
}

/// The server's bytes for tungstenite: the chunks as they arrive; at the
/// end of what has arrived WouldBlock (the driver then lets the next chunk
/// arrive); after the last chunk, one WouldBlock then EOF.
struct Stream<'a> {
    data: &'a [u8],
    chunks: &'a [u8],
    arrivals: usize,
    avail: usize,
    pos: usize,
    eof: bool,
    written: usize,
}

impl Stream<'_> {
    /// The next chunk arrives; false if there is none (EOF from now on).
    fn arrive(&mut self) -> bool {
        if self.avail == self.data.len() {
            self.eof = true;
            return false;
        }
        let n = common::chunk_size(self.chunks[self.arrivals % self.chunks.len()]);
        self.arrivals += 1;
        self.avail = (self.avail + n).min(self.data.len());
        true
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.avail - self.pos);
        if n == 0 && !self.eof && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn theirs(limit: usize, data: &[u8], chunks: &[u8]) -> Outcome {
    let mut stream = Stream {
        data,
        chunks,
        arrivals: 0,
        avail: 0,
        pos: 0,
        eof: false,
        written: 0,
    };
    stream.arrive();
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, Some(config));
    let mut out = Outcome {
        events: Vec::new(),
        ats: Vec::new(),
        end: End::Eof,
        at: 0,
        fault: None,
    };
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= data.len() + 2 * data.len().max(1) + 10, "tungstenite: no progress");
        let ev = match ws.read() {
            Ok(Message::Text(t)) => Ev::Message {
                text: true,
                payload: t.as_bytes().to_vec(),
            },
            Ok(Message::Binary(b)) => Ev::Message {
                text: false,
                payload: b.to_vec(),
            },
            Ok(Message::Ping(p)) => Ev::Ping(p.to_vec()),
            Ok(Message::Pong(p)) => Ev::Pong(p.to_vec()),
            Ok(Message::Close(c)) => {
                out.end = match c {
                    None => End::PeerClose(1005, String::new()),
                    Some(f) => End::PeerClose(u16::from(f.code), f.reason.as_str().to_string()),
                };
                return out;
            }
            Ok(Message::Frame(_)) => unreachable!("read never returns a raw frame"),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ws.get_mut().arrive();
                continue;
            }
            Err(e) => {
                out.end = match e {
                    Error::Capacity(_) => End::Fail(1009),
                    Error::Utf8(_) => End::Fail(1007),
                    Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Eof,
                    Error::Protocol(_) => End::Fail(1002),
                    e => panic!("tungstenite: unexpected error {e:?}"),
                };
                return out;
            }
        };
        out.events.push(ev);
    }
}

/// A frame of the input, as both readers walk it from the start.
#[derive(Debug, Clone, Copy)]
struct Frame {
    start: usize,
    hlen: usize,
    len: u64,
    b0: u8,
}

impl Frame {
    fn control(&self) -> bool {
        self.b0 & 0x08 != 0
    }
    fn end(&self) -> u64 {
        ((self.start + self.hlen) as u64).saturating_add(self.len)
    }
}

/// The frames of `data` in order, as far as their headers can be read (the
/// last one possibly incomplete).
fn frames(data: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 2 <= data.len() {
        let b = &data[pos..];
        let ext = match b[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let hlen = 2 + ext + if b[1] & 0x80 != 0 { 4 } else { 0 };
        if b.len() < hlen {
            break;
        }
        let len = match ext {
            0 => u64::from(b[1] & 0x7f),
            _ => b[2..2 + ext].iter().fold(0, |a, &x| (a << 8) | u64::from(x)),
        };
        let f = Frame {
            start: pos,
            hlen,
            len,
            b0: b[0],
        };
        out.push(f);
        if f.end() >= data.len() as u64 {
            break;
        }
        pos = f.end() as usize;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let [config, n, rest @ ..] = input else {
        return;
    };
    let limit = LIMITS[usize::from(config & 7)];
    let nchunks = usize::from(n % 8) + 1;
    if rest.len() < nchunks {
        return;
    }
    let (chunks, data) = rest.split_at(nchunks);
    let o = ours(limit, data, chunks);
    let t = theirs(limit, data, chunks);
    if o.events == t.events && agree(&o, &t) {
        return;
    }
    if allowed(limit, data, &o, &t) {
        return;
    }
    panic!(
        "the reader and tungstenite disagree (limit {limit})\n ours: {:?} then {:?} at {} ({:?})\n \
         tungstenite: {:?} then {:?}",
        o.events, o.end, o.at, o.fault, t.events, t.end
    );
});

/// The same terminal event (events already equal).
fn agree(o: &Outcome, t: &Outcome) -> bool {
    if o.end == t.end {
        return true;
    }
    // A close frame we refuse (we answer 1002) is, for tungstenite, a close
    // frame whose code it rewrites to 1002 (if it refuses the code too).
    matches!(
        (&o.end, &o.fault, &t.end),
        (End::Fail(1002), Some(Fault::Protocol(d)), End::PeerClose(1002, r))
            if d.contains("invalid close code") && r == "Protocol violation"
    )
}

/// A documented deliberate difference (see the top of this file).
fn allowed(limit: usize, data: &[u8], o: &Outcome, t: &Outcome) -> bool {
    let walk = frames(data);
    // The frame whose header ended where our fault was reported.
    let header_fault = || {
        o.fault.as_ref()?;
        walk.iter().find(|f| f.start + f.hlen == o.at).copied()
    };
    // The frame that ended where our item ended.
    let ending_at = |at: usize| walk.iter().find(|f| f.end() == at as u64).copied();
    let same_events = o.events == t.events;

    // (a) UTF-8: we fail first; tungstenite may deliver control frames
    // that came between fragments, no data message.
    if let Some(Fault::InvalidUtf8(d)) = &o.fault {
        if !d.contains("close reason")
            && t.events.starts_with(&o.events)
            && t.events[o.events.len()..]
                .iter()
                .all(|e| matches!(e, Ev::Ping(_) | Ev::Pong(_)))
        {
            return true;
        }
    }
    // (b) a header rule broken by a frame over the limit: 1002 vs 1009.
    if same_events && o.end == End::Fail(1002) && t.end == End::Fail(1009) {
        if let Some(f) = header_fault() {
            if f.len > limit as u64 {
                return true;
            }
        }
    }
    // (c) close code 1014: we accept it, tungstenite answers 1002.
    if same_events
        && matches!(o.end, End::PeerClose(1014, _))
        && t.end == End::PeerClose(1002, "Protocol violation".into())
    {
        return true;
    }
    // (c) a refused close code and an invalid reason: 1002 vs 1007.
    if same_events && t.end == End::Fail(1007) {
        if let Some(Fault::Protocol(d)) = &o.fault {
            if d.contains("invalid close code") {
                if let Some(f) = ending_at(o.at) {
                    let payload = &data[f.start + f.hlen..o.at];
                    if f.b0 & 0x0f == 8 && std::str::from_utf8(&payload[2..]).is_err() {
                        return true;
                    }
                }
            }
        }
    }
    // (d) a header fault in a frame whose payload never arrived.
    if same_events && t.end == End::Eof {
        if let Some(f) = header_fault() {
            if f.end() > data.len() as u64 {
                return true;
            }
        }
    }
    // (e) a control frame over a limit below 125: tungstenite fails (1009)
    // as soon as its header is in, where we deliver it (or take the peer's
    // close, or wait for the rest of it). It is the first frame after the
    // events both delivered that could make tungstenite fail: we found
    // nothing wrong before it, and delivered nothing before it.
    if t.end == End::Fail(1009) && limit < 125 && o.events.starts_with(&t.events) {
        let k = t.events.len();
        let from = if k == 0 { 0 } else { o.ats[k - 1] };
        if let Some(f) = walk
            .iter()
            .find(|f| f.start >= from && f.control() && f.len > limit as u64)
        {
            let nothing_before = o.ats.get(k).is_none_or(|&at| at as u64 >= f.end())
                && (o.end == End::Eof || o.at >= f.start + f.hlen);
            if f.len <= 125 && nothing_before {
                return true;
            }
        }
    }
    false
}
