//! How a frame is validated: the incremental receive state machine.
//!
//! [`Reader::read`] takes the transport's decrypted bytes as they arrive and
//! turns them into whole messages and control frames ([`Item`]), doing every
//! RFC 6455 check in one pass:
//! - header rules: RSV bits (RSV1 only on a message's first frame, and only
//!   with permessage-deflate negotiated), opcodes, control
//!   frames at most 125 bytes and never fragmented, nothing masked by the
//!   server, a 64-bit length with its top bit clear;
//! - fragmentation: a continuation needs a message to continue, a new
//!   message may not start inside one; control frames may come between
//!   fragments;
//! - the size limit, from the frame header and before anything is stored
//!   (an oversize frame's payload is skipped, never buffered);
//! - UTF-8 of text messages as the bytes arrive (a message fails at its first
//!   bad byte, across fragments);
//! - the peer's close frame: its code and reason;
//! - with permessage-deflate, compressed messages are inflated as their
//!   frames arrive, the limit applying to the inflated size.
//!
//! Memory: a message is stored only as its bytes actually arrive, growing
//! its buffer with `try_reserve` and never past the limit. A single-frame
//! message that is whole in the input is not stored at all: the item borrows
//! it. No length the peer declares ever sizes an allocation.
//!
//! After a fault (or the peer's close) nothing more is delivered: data frames
//! are skipped unread while the reader looks for the peer's close frame.

use std::collections::TryReserveError;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use super::deflate::{Agreed, InflateError, Inflater};
use crate::error::{wsb_result, Error};
use crate::log::log;

/// Largest frame header (2 + 8 length bytes + 4 mask bytes).
const MAX_HEADER: usize = 14;

/// A data message's payload: borrowed from the input when it arrived whole
/// in one frame, otherwise the buffer it was assembled in (with one byte of
/// spare capacity, for the event's NUL).
#[derive(Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

/// What the reader found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A whole text (valid UTF-8) or binary message.
    Message {
        text: bool,
        payload: Payload<'a>,
    },
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer's close frame: its code (1005 when it had none) and reason,
    /// or the fault that makes it invalid. Everything after it is discarded.
    Close(Result<(u16, String), Fault>),
    /// The peer broke the protocol (or a message could not be stored): fail
    /// the connection. The reader goes on looking for the peer's close.
    Fault(Fault),
}

/// Why the connection must fail; each maps to one close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A data message whose payload (this many bytes, so far) is over the
    /// limit: 1009.
    TooLarge { size: u64, limit: u64 },
    /// Memory for a message within the limit could not be had: 1009.
    OutOfMemory { size: u64 },
    /// A compressed message inflates past the limit: 1009.
    InflatesPastLimit { limit: u64 },
    /// A compressed message's data is not valid deflate data: 1002 (the
    /// data is broken, not the text it would have held).
    BadCompressedData(String),
    /// Text that can never be UTF-8 (also a close reason): 1007.
    InvalidUtf8(&'static str),
    /// Any other rule broken; the detail says which: 1002.
    Protocol(String),
}

impl Fault {
    /// The error the host is told.
    pub fn error(&self) -> Error {
        match self {
            Fault::TooLarge { size, limit } => Error::new(
                wsb_result::WSB_ERR_MESSAGE_TOO_LARGE,
                format!("incoming message of {size} bytes exceeds the limit of {limit} bytes"),
            ),
            Fault::OutOfMemory { size } => Error::new(
                wsb_result::WSB_ERR_MESSAGE_TOO_LARGE,
                format!("out of memory storing an incoming message of {size} bytes"),
            ),
            Fault::InflatesPastLimit { limit } => Error::new(
                wsb_result::WSB_ERR_MESSAGE_TOO_LARGE,
                format!("incoming compressed message inflates past the limit of {limit} bytes"),
            ),
            Fault::BadCompressedData(detail) => {
                Error::new(wsb_result::WSB_ERR_PROTOCOL, detail.clone())
            }
            Fault::InvalidUtf8(detail) => Error::new(wsb_result::WSB_ERR_PROTOCOL, *detail),
            Fault::Protocol(detail) => Error::new(wsb_result::WSB_ERR_PROTOCOL, detail.clone()),
        }
    }

    /// Our close frame for it, code and reason, as c-api.md says: 1009 for
    /// a message over the limit (or that could not be stored), 1007 only for
    /// invalid UTF-8 in a text message (or a close reason), 1002 for every
    /// other broken rule, corrupt compressed data included. The one place
    /// that decides it.
    pub fn close(&self) -> (CloseCode, &'static str) {
        match self {
            Fault::TooLarge { .. }
            | Fault::OutOfMemory { .. }
            | Fault::InflatesPastLimit { .. } => (CloseCode::Size, "message too big"),
            Fault::InvalidUtf8(_) => (CloseCode::Invalid, "invalid UTF-8"),
            Fault::BadCompressedData(_) => (CloseCode::Protocol, "invalid compressed data"),
            Fault::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        }
    }

    /// The close code to send for it (see [`Fault::close`]).
    pub fn close_code(&self) -> CloseCode {
        self.close().0
    }
}

/// One call's outcome: `used` bytes of the input were consumed (the caller
/// drops them, keeps the rest, and calls again with more appended). With no
/// item, the reader needs more input than is left.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<'a> {
    pub used: usize,
    pub item: Option<Item<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// At a frame boundary.
    Header,
    /// `left` more payload bytes of a data frame go into the message; it is
    /// complete after them if `fin`.
    Data { left: u64, fin: bool },
    /// Dropping `left` more payload bytes (a refused or skipped frame).
    Skip(u64),
    /// After the peer's close frame: everything is discarded.
    AfterClose,
}

/// A data message being assembled (fragmented, or one frame arriving in pieces).
#[derive(Debug, Default)]
struct Partial {
    text: bool,
    /// Its frames carry deflate data (RSV1 on the first).
    compressed: bool,
    buf: Vec<u8>,
    utf8: Utf8,
}

#[derive(Debug)]
pub struct Reader {
    /// The message size limit, in payload bytes.
    limit: u64,
    /// Where the reader is in the stream.
    at: Position,
    /// The message being assembled, if any.
    partial: Option<Partial>,
    /// A fragmented message is open (its first frame had no FIN).
    fragmented: bool,
    /// A fault was reported: data frames are skipped from now on.
    failed: bool,
    /// permessage-deflate, if negotiated.
    deflate: Option<Agreed>,
    /// Made for the first compressed message.
    inflater: Option<Inflater>,
    /// The socket, for the DEBUG line of each frame (0: none).
    id: u64,
}

impl Reader {
    /// `limit`: the largest message payload accepted (`usize::MAX`: none),
    /// inflated size for compressed messages; `deflate`: permessage-deflate,
    /// if negotiated.
    pub fn new(limit: usize, deflate: Option<Agreed>) -> Reader {
        Reader {
            limit: limit as u64,
            at: Position::Header,
            partial: None,
            fragmented: false,
            failed: false,
            deflate,
            inflater: None,
            id: 0,
        }
    }

    /// The reader of socket `id`: its frames are logged (DEBUG) under it.
    pub fn for_socket(mut self, id: u64) -> Reader {
        self.id = id;
        self
    }

    /// Nothing more is delivered (the connection failed for another reason):
    /// data frames are skipped from now on; the peer's close is still read.
    pub fn stop_delivery(&mut self) {
        self.failed = true;
        self.partial = None;
    }

    /// Whether the reader is inside a frame or holds part of a message:
    /// input ending here ends the connection mid-message.
    pub fn mid_message(&self) -> bool {
        !matches!(self.at, Position::Header | Position::AfterClose) || self.partial.is_some()
    }

    /// Consume the front of `input`, up to and including the next item.
    #[inline]
    pub fn read<'a>(&mut self, input: &'a [u8]) -> Step<'a> {
        match self.small_message(input) {
            Some(step) => step,
            None => self.read_any(input),
        }
    }

    /// Most traffic: a whole, small, single-frame text or binary message
    /// that breaks no rule (FIN set, no RSV bit, unmasked, a 7- or 16-bit
    /// length within the limit, valid UTF-8), between messages. Anything
    /// else, including every fault, is left to [`Reader::read_any`], which
    /// would take this case the same way.
    #[inline]
    fn small_message<'a>(&self, input: &'a [u8]) -> Option<Step<'a>> {
        if self.at != Position::Header || self.fragmented || self.failed {
            return None;
        }
        let text = match *input.first()? {
            0x81 => true,
            0x82 => false,
            _ => return None,
        };
        let (hlen, len) = match *input.get(1)? {
            b @ 0..=125 => (2, usize::from(b)),
            126 => (
                4,
                usize::from(u16::from_be_bytes([*input.get(2)?, *input.get(3)?])),
            ),
            _ => return None, // 64-bit length, or masked
        };
        let payload = input.get(hlen..hlen + len)?;
        if len as u64 > self.limit || (text && std::str::from_utf8(payload).is_err()) {
            return None;
        }
        log!(
            Debug,
            self.id,
            "{}",
            super::frame_line("in", input[0] & 0x0f, len as u64, true, false)
        );
        Some(Step {
            used: hlen + len,
            item: Some(Item::Message {
                text,
                payload: Payload::Borrowed(payload),
            }),
        })
    }

    /// [`Reader::read`] for any input.
    fn read_any<'a>(&mut self, input: &'a [u8]) -> Step<'a> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.at {
                Position::AfterClose => {
                    return Step {
                        used: input.len(),
                        item: None,
                    }
                }
                Position::Skip(left) => {
                    let n = left.min(rest.len() as u64);
                    pos += n as usize;
                    if n < left {
                        self.at = Position::Skip(left - n);
                        return Step {
                            used: pos,
                            item: None,
                        };
                    }
                    self.at = Position::Header;
                }
                Position::Data { left, fin } => {
                    let n = left.min(rest.len() as u64) as usize;
                    if n == 0 && left > 0 {
                        return Step {
                            used: pos,
                            item: None,
                        };
                    }
                    let chunk = &rest[..n];
                    pos += n;
                    let left = left - n as u64;
                    self.at = if left > 0 {
                        Position::Data { left, fin }
                    } else {
                        Position::Header
                    };
                    if let Err(fault) = self.store(chunk) {
                        self.fail(Position::Skip(left));
                        return fault_at(pos, fault);
                    }
                    if left > 0 {
                        return Step {
                            used: pos,
                            item: None,
                        };
                    }
                    if fin {
                        if let Err(fault) = self.finish() {
                            self.fail(Position::Header);
                            return fault_at(pos, fault);
                        }
                        let p = self.partial.take().expect("a message is being assembled");
                        self.fragmented = false;
                        if p.text && !p.utf8.complete() {
                            self.fail(Position::Header);
                            return fault_at(pos, invalid_text());
                        }
                        return Step {
                            used: pos,
                            item: Some(Item::Message {
                                text: p.text,
                                payload: Payload::Owned(p.buf),
                            }),
                        };
                    }
                }
                Position::Header => {
                    let Some(h) = Header::parse(rest) else {
                        return Step {
                            used: pos,
                            item: None,
                        };
                    };
                    if let Some(rule) = h.violation(self.deflate.is_some()) {
                        pos += h.len;
                        // (A length with its top bit set cannot be skipped:
                        // nothing after it can be read.)
                        let after = if h.payload >> 63 != 0 {
                            Position::AfterClose
                        } else {
                            Position::Skip(h.payload)
                        };
                        self.fail(after);
                        return fault_at(pos, Fault::Protocol(rule));
                    }
                    if let OpCode::Control(c) = h.opcode {
                        // At most 125 bytes (checked): taken whole.
                        let total = h.len + h.payload as usize;
                        if rest.len() < total {
                            return Step {
                                used: pos,
                                item: None,
                            };
                        }
                        let payload = &rest[h.len..total];
                        pos += total;
                        self.log_frame(&h);
                        let item = match c {
                            Control::Ping => Item::Ping(payload),
                            Control::Pong => Item::Pong(payload),
                            _ => {
                                self.at = Position::AfterClose;
                                self.partial = None;
                                let close = parse_close(payload);
                                self.failed |= close.is_err();
                                Item::Close(close)
                            }
                        };
                        return Step {
                            used: pos,
                            item: Some(item),
                        };
                    }
                    pos += h.len;
                    self.log_frame(&h);
                    if self.failed {
                        self.at = Position::Skip(h.payload);
                        continue;
                    }
                    let continuation = h.opcode == OpCode::Data(Data::Continue);
                    if continuation != self.fragmented {
                        self.fail(Position::Skip(h.payload));
                        return fault_at(
                            pos,
                            Fault::Protocol(if continuation {
                                "protocol error: continuation frame without a message to continue"
                                    .into()
                            } else {
                                "protocol error: new message started inside a fragmented one".into()
                            }),
                        );
                    }
                    // (Compressed: the limit applies to the inflated size,
                    // checked as it is inflated.)
                    let compressed = match &self.partial {
                        Some(p) if continuation => p.compressed,
                        _ => h.rsv & 0x4 != 0,
                    };
                    let so_far = self.partial.as_ref().map_or(0, |p| p.buf.len() as u64);
                    let size = so_far.saturating_add(h.payload);
                    if !compressed && size > self.limit {
                        self.fail(Position::Skip(h.payload));
                        return fault_at(
                            pos,
                            Fault::TooLarge {
                                size,
                                limit: self.limit,
                            },
                        );
                    }
                    let text = h.opcode == OpCode::Data(Data::Text);
                    let rest = &input[pos..];
                    // The common case: a whole single-frame message, borrowed.
                    if !continuation && !compressed && h.fin && rest.len() as u64 >= h.payload {
                        let payload = &rest[..h.payload as usize];
                        pos += payload.len();
                        if text && std::str::from_utf8(payload).is_err() {
                            self.fail(Position::Header);
                            return fault_at(pos, invalid_text());
                        }
                        return Step {
                            used: pos,
                            item: Some(Item::Message {
                                text,
                                payload: Payload::Borrowed(payload),
                            }),
                        };
                    }
                    if !continuation {
                        self.partial = Some(Partial {
                            text,
                            compressed,
                            ..Partial::default()
                        });
                    }
                    self.fragmented = !h.fin;
                    self.at = Position::Data {
                        left: h.payload,
                        fin: h.fin,
                    };
                }
            }
        }
    }

    /// A frame's DEBUG line, once its header is taken.
    fn log_frame(&self, h: &Header) {
        log!(
            Debug,
            self.id,
            "{}",
            super::frame_line("in", u8::from(h.opcode), h.payload, h.fin, h.rsv & 0x4 != 0)
        );
    }

    /// A fault: deliver nothing more; continue in `next`.
    fn fail(&mut self, next: Position) {
        self.failed = true;
        self.partial = None;
        self.fragmented = false;
        self.at = next;
    }

    /// Append payload bytes to the message being assembled (inflated if
    /// compressed), checking text.
    fn store(&mut self, chunk: &[u8]) -> Result<(), Fault> {
        let p = self.partial.as_mut().expect("a message is being assembled");
        if p.compressed {
            let agreed = self.deflate.as_ref().expect("negotiated");
            let inflater = self.inflater.get_or_insert_with(|| Inflater::new(agreed));
            let before = p.buf.len();
            let r = inflater.inflate(chunk, &mut p.buf, self.limit);
            return inflated(p, before, r, self.limit);
        }
        if p.text && !p.utf8.feed(chunk) {
            return Err(invalid_text());
        }
        grow(&mut p.buf, chunk, self.limit).map_err(|_| Fault::OutOfMemory {
            size: (p.buf.len() + chunk.len()) as u64,
        })
    }

    /// The message's last frame is in: a compressed one gets its tail.
    fn finish(&mut self) -> Result<(), Fault> {
        let p = self.partial.as_mut().expect("a message is being assembled");
        if !p.compressed {
            return Ok(());
        }
        let agreed = self.deflate.as_ref().expect("negotiated");
        let inflater = self.inflater.get_or_insert_with(|| Inflater::new(agreed));
        let before = p.buf.len();
        let r = inflater.finish(&mut p.buf, self.limit);
        inflated(p, before, r, self.limit)
    }
}

/// After inflating onto `p.buf` from `before`: check the new text, map errors.
fn inflated(
    p: &mut Partial,
    before: usize,
    r: Result<(), InflateError>,
    limit: u64,
) -> Result<(), Fault> {
    // The first problem in stream order wins, however the payload was cut:
    // text inflated before a failure is checked first (up to the limit).
    let end = p
        .buf
        .len()
        .min(usize::try_from(limit).unwrap_or(usize::MAX));
    if p.text && before < end && !p.utf8.feed(&p.buf[before..end]) {
        return Err(invalid_text());
    }
    match r {
        Ok(()) => Ok(()),
        Err(InflateError::OverLimit) => Err(Fault::InflatesPastLimit { limit }),
        Err(InflateError::OutOfMemory) => Err(Fault::OutOfMemory {
            size: p.buf.len() as u64,
        }),
        Err(InflateError::Corrupt(d)) => Err(Fault::BadCompressedData(d)),
    }
}

fn fault_at(used: usize, fault: Fault) -> Step<'static> {
    Step {
        used,
        item: Some(Item::Fault(fault)),
    }
}

fn invalid_text() -> Fault {
    Fault::InvalidUtf8("peer sent invalid UTF-8 in a text message")
}

/// Append `chunk` to `buf`, which holds at most `limit` bytes (checked by the
/// caller), with room for one more byte (the event's NUL).
fn grow(buf: &mut Vec<u8>, chunk: &[u8], limit: u64) -> Result<(), TryReserveError> {
    super::reserve_within(buf, buf.len() + chunk.len() + 1, limit)?;
    buf.extend_from_slice(chunk);
    Ok(())
}

/// A frame header, once all of it is in the input.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    masked: bool,
    /// Header length in bytes.
    len: usize,
    /// Declared payload length.
    payload: u64,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 2 {
            return None;
        }
        let masked = b[1] & 0x80 != 0;
        let ext = match b[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let len = 2 + ext + if masked { 4 } else { 0 };
        debug_assert!(len <= MAX_HEADER);
        if b.len() < len {
            return None;
        }
        let payload = match ext {
            0 => u64::from(b[1] & 0x7f),
            _ => b[2..2 + ext]
                .iter()
                .fold(0u64, |a, &x| (a << 8) | u64::from(x)),
        };
        Some(Header {
            fin: b[0] & 0x80 != 0,
            rsv: (b[0] >> 4) & 0x7,
            opcode: OpCode::from(b[0] & 0x0f),
            masked,
            len,
            payload,
        })
    }

    /// The header rule the frame breaks, if any (`deflate`: permessage-deflate
    /// was negotiated, so RSV1 may start a compressed message).
    fn violation(&self, deflate: bool) -> Option<String> {
        let rsv1_ok = deflate && matches!(self.opcode, OpCode::Data(Data::Text | Data::Binary));
        if self.rsv & 0x3 != 0 || (self.rsv != 0 && !deflate) {
            return Some(format!(
                "protocol error: reserved bits set (RSV {:03b}) without an extension",
                self.rsv
            ));
        }
        if self.rsv != 0 && !rsv1_ok {
            return Some(match self.opcode {
                OpCode::Control(_) => "protocol error: compressed control frame (RSV1 set)".into(),
                _ => "protocol error: RSV1 set on a continuation frame".into(),
            });
        }
        match self.opcode {
            OpCode::Data(Data::Reserved(op)) => {
                return Some(format!("protocol error: unknown data opcode {op}"))
            }
            OpCode::Control(Control::Reserved(op)) => {
                return Some(format!("protocol error: unknown control opcode {op}"))
            }
            _ => {}
        }
        if self.masked {
            return Some("protocol error: masked frame from the server".into());
        }
        if self.payload >> 63 != 0 {
            return Some(format!(
                "protocol error: frame length {} has its most significant bit set",
                self.payload
            ));
        }
        if let OpCode::Control(_) = self.opcode {
            if !self.fin {
                return Some("protocol error: fragmented control frame".into());
            }
            if self.payload > 125 {
                return Some(format!(
                    "protocol error: control frame of {} bytes (over 125)",
                    self.payload
                ));
            }
        }
        None
    }
}

/// Validate a close frame's payload: (code, reason), 1005 when empty.
pub fn parse_close(payload: &[u8]) -> Result<(u16, String), Fault> {
    match payload.len() {
        0 => return Ok((1005, String::new())),
        1 => {
            return Err(Fault::Protocol(
                "protocol error: close frame with a 1-byte payload".into(),
            ))
        }
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(Fault::Protocol(format!(
            "protocol error: peer sent invalid close code {code}"
        )));
    }
    match std::str::from_utf8(&payload[2..]) {
        Ok(reason) => Ok((code, reason.to_string())),
        Err(_) => Err(Fault::InvalidUtf8(
            "protocol error: close reason is not valid UTF-8",
        )),
    }
}

/// Incremental UTF-8 validation across chunks and fragments.
#[derive(Debug, Default, Clone, Copy)]
struct Utf8 {
    /// An incomplete sequence carried over from the previous chunk.
    tail: [u8; 4],
    len: usize,
}

impl Utf8 {
    fn width(lead: u8) -> usize {
        match lead {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        }
    }

    /// No sequence is left incomplete (the text may end here).
    fn complete(&self) -> bool {
        self.len == 0
    }

    /// False as soon as `data` makes the text invalid (an incomplete
    /// sequence at the end is kept for the next chunk).
    fn feed(&mut self, mut data: &[u8]) -> bool {
        if self.len > 0 {
            let width = Self::width(self.tail[0]);
            let take = (width - self.len).min(data.len());
            self.tail[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            match std::str::from_utf8(&self.tail[..self.len]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() && self.len < width => return true,
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                let rest = &data[e.valid_up_to()..];
                self.tail[..rest.len()].copy_from_slice(rest);
                self.len = rest.len();
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test sees of an item (owned, comparable).
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(u16, String),
        Fault(Fault),
    }

    /// Feed `input` in pieces of `chunk` bytes (keeping unconsumed bytes, as
    /// the transport does) and collect every item.
    fn run(r: &mut Reader, input: &[u8], chunk: usize) -> Vec<Got> {
        let mut got = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let step = r.read(&buf);
                let used = step.used;
                assert!(used <= buf.len());
                let Some(item) = step.item else {
                    buf.drain(..used);
                    break;
                };
                got.push(match item {
                    Item::Message {
                        text: true,
                        payload,
                    } => Got::Text(String::from_utf8(payload.as_slice().to_vec()).unwrap()),
                    Item::Message { payload, .. } => Got::Binary(payload.as_slice().to_vec()),
                    Item::Ping(p) => Got::Ping(p.to_vec()),
                    Item::Pong(p) => Got::Pong(p.to_vec()),
                    Item::Close(Ok((code, reason))) => Got::Close(code, reason),
                    Item::Close(Err(f)) => Got::Fault(f),
                    Item::Fault(f) => Got::Fault(f),
                });
                buf.drain(..used);
            }
        }
        got
    }

    /// Every way of splitting `input` gives the same items.
    fn all_splits(limit: usize, input: &[u8]) -> Vec<Got> {
        let whole = run(&mut Reader::new(limit, None), input, input.len());
        for chunk in 1..=input.len().min(20) {
            assert_eq!(
                run(&mut Reader::new(limit, None), input, chunk),
                whole,
                "split every {chunk} bytes"
            );
        }
        whole
    }

    fn protocol(what: &str) -> impl Fn(&Got) -> bool + '_ {
        move |g| matches!(g, Got::Fault(Fault::Protocol(d)) if d.contains(what))
    }

    #[test]
    fn messages_and_control_frames_in_any_split() {
        let input =
            b"\x81\x02hi\x82\x01\x07\x01\x01a\x89\x01p\x80\x01b\x8a\x00\x88\x04\x03\xe8ok\x81\x01x";
        assert_eq!(
            all_splits(100, input),
            [
                Got::Text("hi".into()),
                Got::Binary(vec![7]),
                Got::Ping(b"p".to_vec()),
                Got::Text("ab".into()),
                Got::Pong(vec![]),
                Got::Close(1000, "ok".into()),
            ]
        );
    }

    #[test]
    fn the_small_message_path_agrees_with_the_general_one() {
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend_from_slice(&[b'a'; 256]);
        for input in [
            &b"\x81\x02hi"[..],
            b"\x82\x00",
            b"\x81\x01\xff",
            b"\x81\x03hi",
            b"\xc1\x01a",
            b"\x81\x81abcdx",
            b"\x01\x01a",
            &long,
            &long[..100],
        ] {
            for limit in [1, 2, 1000] {
                let fast = Reader::new(limit, None).small_message(input);
                let general = Reader::new(limit, None).read_any(input);
                if let Some(fast) = fast {
                    assert_eq!(fast, general, "{input:?} limit {limit}");
                }
            }
        }
        assert!(Reader::new(1000, None).small_message(&long).is_some());
    }

    #[test]
    fn header_rules() {
        for (bytes, what) in [
            (&b"\xc1\x00"[..], "reserved bits"),
            (b"\xa1\x00", "reserved bits"),
            (b"\x91\x00", "reserved bits"),
            (b"\x83\x00", "unknown data opcode 3"),
            (b"\x8b\x00", "unknown control opcode 11"),
            (b"\x09\x00", "fragmented control"),
            (b"\x81\x80\x00\x00\x00\x00", "masked"),
            (b"\x89\x7e\x00\x7e", "over 125"),
            (b"\x80\x01a", "continuation frame without"),
            (b"\x01\x01a\x81\x01b", "new message started inside"),
            (b"\x82\x7f\x80\0\0\0\0\0\0\0", "most significant bit"),
            (
                b"\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff",
                "most significant bit",
            ),
            (b"\x88\x01\x03", "1-byte payload"),
            (b"\x88\x02\x03\xed", "invalid close code 1005"),
        ] {
            let got = all_splits(usize::MAX, bytes);
            assert_eq!(got.len(), 1, "{what}: {got:?}");
            assert!(protocol(what)(&got[0]), "{what}: {got:?}");
        }
    }

    #[test]
    fn the_limit_is_checked_from_the_header_before_anything_is_stored() {
        let mut r = Reader::new(4, None);
        let step = r.read(b"\x82\x05ab");
        assert_eq!(step.used, 2);
        assert_eq!(
            step.item,
            Some(Item::Fault(Fault::TooLarge { size: 5, limit: 4 }))
        );
        // The frame's payload is skipped; then only a close counts.
        assert_eq!(
            run(&mut r, b"abcde\x81\x01z\x88\x02\x03\xe8", 3),
            [Got::Close(1000, String::new())]
        );
        // Across fragments: the total counts.
        let got = all_splits(4, b"\x02\x03abc\x00\x02de");
        assert_eq!(got, [Got::Fault(Fault::TooLarge { size: 5, limit: 4 })]);
        // Huge declared lengths against no limit are never reserved: the
        // frame waits for bytes that do not come, holding none.
        for declared in [1u64 << 40, 1 << 62, (1 << 63) - 1] {
            let mut r = Reader::new(usize::MAX, None);
            let mut frame = vec![0x82, 127];
            frame.extend_from_slice(&declared.to_be_bytes());
            frame.extend_from_slice(b"abc");
            let step = r.read(&frame);
            assert_eq!((step.used, step.item), (13, None));
            let p = r.partial.as_ref().expect("assembling");
            assert!(p.buf.capacity() <= 4096, "{}", p.buf.capacity());
            assert!(r.mid_message());
        }
    }

    #[test]
    fn a_message_buffer_never_grows_past_the_limit() {
        let limit = 10_000;
        let mut r = Reader::new(limit, None);
        let mut input = vec![0x02, 126];
        input.extend_from_slice(&6000u16.to_be_bytes());
        input.extend_from_slice(&[1; 6000]);
        input.extend_from_slice(&[0x80, 126]);
        input.extend_from_slice(&4000u16.to_be_bytes());
        input.extend_from_slice(&[2; 4000]);
        let mut buf = input.as_slice();
        let mut done = None;
        while !buf.is_empty() {
            let take = buf.len().min(1000);
            // Feed in pieces directly (each consumed whole here).
            let step = r.read(&buf[..take]);
            if let Some(p) = r.partial.as_ref() {
                assert!(p.buf.capacity() <= limit + 1, "{}", p.buf.capacity());
            }
            if let Some(Item::Message { payload, .. }) = step.item {
                done = Some(payload.as_slice().len());
            }
            buf = &buf[step.used..];
        }
        assert_eq!(done, Some(10_000));
    }

    #[test]
    fn utf8_fails_at_the_first_bad_byte_across_fragments() {
        // A sequence split across fragments with a ping between: fine.
        assert_eq!(
            all_splits(100, b"\x01\x01\xe2\x89\x00\x80\x02\x82\xac"),
            [Got::Ping(vec![]), Got::Text("\u{20ac}".into())]
        );
        // The bad byte fails the message before the frame is complete.
        let mut r = Reader::new(10_000, None);
        let mut frame = vec![0x81, 126];
        frame.extend_from_slice(&1000u16.to_be_bytes());
        frame.extend_from_slice(b"ab\xff");
        let step = r.read(&frame);
        assert!(matches!(
            step.item,
            Some(Item::Fault(Fault::InvalidUtf8(_)))
        ));
        // Text ending inside a sequence.
        assert!(matches!(
            all_splits(100, b"\x81\x02\xe2\x82")[..],
            [Got::Fault(Fault::InvalidUtf8(_))]
        ));
        assert!(matches!(
            all_splits(100, b"\x01\x01\xe2\x80\x00")[..],
            [Got::Fault(Fault::InvalidUtf8(_))]
        ));
        // Binary is never checked.
        assert_eq!(all_splits(100, b"\x82\x01\xff"), [Got::Binary(vec![0xff])]);
        // A bad close reason is 1007.
        let got = all_splits(100, b"\x88\x04\x03\xe8\xc3\x28");
        assert!(matches!(&got[..], [Got::Fault(f)] if f.close_code() == CloseCode::Invalid));
    }

    #[test]
    fn after_a_fault_only_the_close_counts() {
        assert_eq!(
            all_splits(
                100,
                b"\x81\x02ok\xc1\x00\x81\x01x\x89\x00\x88\x02\x03\xe8\x81\x01y"
            ),
            [
                Got::Text("ok".into()),
                Got::Fault(Fault::Protocol(
                    "protocol error: reserved bits set (RSV 100) without an extension".into()
                )),
                Got::Ping(vec![]),
                Got::Close(1000, String::new()),
            ]
        );
    }

    /// A compressed message with several problems fails with the first in
    /// stream order, however its payload is cut (found by fuzz/frames).
    #[test]
    fn a_compressed_message_fails_with_its_first_problem_in_any_split() {
        use crate::protocol::deflate::{negotiate, Deflater, Offer, NAME};
        let agreed = negotiate(&Offer::default(), NAME).unwrap();
        let mut bad_text = vec![0xff];
        bad_text.extend_from_slice(&[0; 100_000]);
        /// (message, bytes after its deflate data, the fault expected first)
        type Case<'a> = (&'a [u8], &'a [u8], fn(&Fault) -> bool);
        let cases: [Case; 2] = [
            // Invalid text, then past the limit: 1007.
            (&bad_text, b"", |f| matches!(f, Fault::InvalidUtf8(_))),
            // Past the limit before the data goes bad: 1009.
            (&[b'a'; 100_000], &[0xff; 8], |f| {
                matches!(f, Fault::InflatesPastLimit { .. })
            }),
        ];
        for (message, after, expected) in cases {
            let mut wire = Vec::new();
            Deflater::new(&agreed).unwrap().compress(message, &mut wire);
            wire.extend_from_slice(after);
            let mut frame = vec![0xc1, 126];
            frame.extend_from_slice(&(wire.len() as u16).to_be_bytes());
            frame.extend_from_slice(&wire);
            for chunk in [1, 7, frame.len()] {
                let got = run(&mut Reader::new(4096, Some(agreed)), &frame, chunk);
                assert!(
                    matches!(&got[..], [Got::Fault(f)] if expected(f)),
                    "pieces of {chunk}: {got:?}"
                );
            }
        }
    }

    /// Every fault against the contract (c-api.md, "Events and their
    /// order"): the ERROR's code, our close code, and a reason that names
    /// the fault.
    #[test]
    fn each_fault_maps_to_the_contracts_error_and_close_code() {
        use wsb_result::*;
        #[rustfmt::skip]
        let table: [(Fault, wsb_result, u16, &str); 6] = [
            (Fault::TooLarge { size: 20, limit: 10 }, WSB_ERR_MESSAGE_TOO_LARGE, 1009, "message too big"),
            (Fault::OutOfMemory { size: 20 }, WSB_ERR_MESSAGE_TOO_LARGE, 1009, "message too big"),
            (Fault::InflatesPastLimit { limit: 10 }, WSB_ERR_MESSAGE_TOO_LARGE, 1009, "message too big"),
            (Fault::InvalidUtf8("invalid UTF-8 in a text message"), WSB_ERR_PROTOCOL, 1007, "invalid UTF-8"),
            (Fault::BadCompressedData("invalid compressed data in a message: x".into()), WSB_ERR_PROTOCOL, 1002, "invalid compressed data"),
            (Fault::Protocol("reserved opcode 3".into()), WSB_ERR_PROTOCOL, 1002, "protocol error"),
        ];
        for (fault, error, code, reason) in &table {
            // A new variant must get a row here: this match stops compiling.
            match fault {
                Fault::TooLarge { .. }
                | Fault::OutOfMemory { .. }
                | Fault::InflatesPastLimit { .. }
                | Fault::InvalidUtf8(_)
                | Fault::BadCompressedData(_)
                | Fault::Protocol(_) => {}
            }
            assert_eq!(fault.error().code, *error, "{fault:?}");
            assert_eq!(
                fault.close(),
                (CloseCode::from(*code), *reason),
                "{fault:?}"
            );
            assert_eq!(fault.close_code(), CloseCode::from(*code), "{fault:?}");
        }
        // What the reader reports for corrupt deflate data is that fault.
        use crate::protocol::deflate::{negotiate, Offer, NAME};
        let agreed = negotiate(&Offer::default(), NAME).unwrap();
        for frame in [
            &b"\xc2\x02\x06\x00"[..],
            b"\xc1\x02\x06\x00",
            b"\xc1\x05\xf2\x00\x11\x00\x00",
        ] {
            let got = run(&mut Reader::new(4096, Some(agreed)), frame, frame.len());
            assert!(
                matches!(&got[..], [Got::Fault(f @ Fault::BadCompressedData(_))] if f.close_code() == CloseCode::Protocol),
                "{frame:?}: {got:?}"
            );
        }
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(b""), Ok((1005, String::new())));
        assert_eq!(parse_close(b"\x03\xe8bye"), Ok((1000, "bye".into())));
        assert_eq!(parse_close(b"\x03\xf6"), Ok((1014, String::new())));
        assert!(parse_close(b"\x03").is_err());
        assert!(parse_close(b"\x03\xed").is_err()); // 1005
        assert!(parse_close(b"\x0b\xb8").is_ok()); // 3000
        assert!(matches!(
            parse_close(b"\x03\xe8\xc3\x28"),
            Err(Fault::InvalidUtf8(_))
        ));
    }
}
