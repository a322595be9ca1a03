//! The outgoing side of an open connection: frames waiting for the socket.
//!
//! Host threads frame their data messages straight into the outbox (one copy
//! of the payload, masked as it is copied) under the outbox's own lock, so
//! sending never waits for the I/O thread's parsing, which holds the
//! connection lock. The I/O thread's own frames (pongs, close, keepalive
//! pings) land behind whatever is already queued. Only whole frames are
//! appended (by [`crate::protocol::write`]), so frames never interleave.
//!
//! The bytes are plaintext: for TLS they are encrypted when flushed, which
//! needs the connection lock (see `Transport::flush_outbox`).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::log::log;
use crate::protocol::deflate::{self, Agreed, Deflater};
use crate::protocol::write;
use crate::stats::Sent;
use crate::wire::Wire;

/// Past this many unwritten bytes a sender in a burst flushes itself.
pub const FLUSH_AT: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
    /// `buf[pos..]` is not written yet.
    pos: usize,
    /// Data frames not completely written: (end offset in `buf`, payload bytes).
    frames: VecDeque<(usize, usize)>,
    /// Payload bytes of data frames not completely written.
    unwritten_payload: usize,
    /// Messages queued before the connection opened (payload bytes), counted
    /// here so the limit covers both.
    pub queued_payload: usize,
    /// The last write would have blocked: the I/O thread writes the rest
    /// when the socket is writable; host threads do not try meanwhile.
    pub blocked: bool,
    /// A write failed: the I/O thread reports it.
    pub error: Option<io::Error>,
    /// When a host thread last sent a message into an empty outbox.
    pub last_send: Option<Instant>,
    /// Frame masks drawn ahead from the CSPRNG, 8 at a time (one call into
    /// the thread-local generator per 8 messages instead of per message);
    /// `masks_left` of them are unused.
    masks: [u8; 32],
    masks_left: usize,
    /// Plain connections: the socket, so host threads can write directly.
    /// (TLS connections encrypt under the connection lock instead.)
    sock: Option<Arc<TcpStream>>,
    /// permessage-deflate, if negotiated: what was agreed, and the
    /// compressor (about 330 KiB at window 15), made at the first message to
    /// compress (never where a window of 8 was agreed).
    deflate: Option<(Agreed, Option<Deflater>)>,
    /// A message's compressed payload, before it is framed.
    scratch: Vec<u8>,
    /// The socket, for the DEBUG line of each frame (0: none).
    id: u64,
    /// What `wsb_get_stats` counts under this lock: the host's messages
    /// (counted by `Socket::send`) and the bytes written here. Kept when
    /// the connection closes.
    pub sent: Sent,
}

impl Outbox {
    /// The outbox of socket `id`: its frames are logged (DEBUG) under it.
    pub fn new(id: u64) -> Outbox {
        Outbox {
            id,
            ..Outbox::default()
        }
    }

    /// A plain connection opened: host threads may write to `sock`.
    pub fn attach_socket(&mut self, sock: Arc<TcpStream>) {
        self.sock = Some(sock);
    }

    /// The connection is gone: drop what is left, the socket and the
    /// compressor.
    pub fn close(&mut self) {
        self.clear();
        self.queued_payload = 0;
        self.sock = None;
        self.deflate = None;
        self.scratch = Vec::new();
    }

    /// Plain connections: write to the socket until done (Some(Ok(true))) or
    /// it would block. None for TLS (see `Transport::flush_outbox`).
    pub fn flush_plain(&mut self) -> Option<io::Result<bool>> {
        let sock = self.sock.take()?;
        let r = self.write_to(Wire(&sock));
        self.sock = Some(sock);
        Some(r)
    }

    /// Payload bytes sent but not yet written (for `wsb_buffered_amount`).
    pub fn buffered(&self) -> usize {
        self.queued_payload + self.unwritten_payload
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Bytes not yet written.
    pub fn unwritten(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// permessage-deflate was negotiated: compress data messages from now
    /// on. The compressor is made when the first one is sent: a socket that
    /// only sends small messages never holds one.
    pub fn compress_with(&mut self, agreed: Agreed) {
        self.deflate = Some((agreed, None));
    }

    /// Append one message (or ping) sent by the host: its payload counts
    /// as buffered until written. With permessage-deflate, a text or binary
    /// message of at least [`deflate::MIN_COMPRESSED`] bytes is compressed.
    pub fn push_frame(&mut self, opcode: u8, payload: &[u8]) {
        let deflater = match self.deflate.as_mut() {
            Some((agreed, d)) if opcode <= 2 && payload.len() >= deflate::MIN_COMPRESSED => {
                if d.is_none() {
                    *d = Deflater::new(agreed);
                }
                d.as_mut()
            }
            _ => None,
        };
        if let Some(d) = deflater {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            d.compress(payload, &mut scratch);
            self.push(opcode, &scratch, true);
            self.scratch = scratch;
        } else {
            self.push(opcode, payload, false);
        }
        self.frames.push_back((self.buf.len(), payload.len()));
        self.unwritten_payload += payload.len();
    }

    /// Append a frame of the connection's own (pong, close, keepalive ping):
    /// not counted as buffered payload, never compressed.
    pub fn push_control(&mut self, opcode: u8, payload: &[u8]) {
        self.push(opcode, payload, false);
    }

    #[inline]
    fn push(&mut self, opcode: u8, payload: &[u8], compressed: bool) {
        if self.masks_left == 0 {
            self.refill_masks();
        }
        self.masks_left -= 1;
        let at = self.masks_left * 4;
        let mask: [u8; 4] = self.masks[at..at + 4].try_into().expect("4 bytes");
        log!(
            Debug,
            self.id,
            "{}",
            crate::protocol::frame_line("out", opcode, payload.len() as u64, true, compressed)
        );
        write::frame(&mut self.buf, opcode, payload, mask, compressed);
    }

    /// (`rand::random`, not `rand::fill`: with the latter, measured, every
    /// I/O thread kept 4 KiB more resident stack — code generation on the
    /// connect path shifted; `bench/run.sh --only scale-1000`.)
    #[cold]
    fn refill_masks(&mut self) {
        self.masks = rand::random();
        self.masks_left = self.masks.len() / 4;
    }

    /// `n` more bytes were written (or taken by TLS).
    pub fn advance(&mut self, n: usize) {
        self.pos += n;
        while let Some(&(end, payload)) = self.frames.front() {
            if end > self.pos {
                break;
            }
            self.frames.pop_front();
            self.unwritten_payload -= payload;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.frames.clear();
        } else if self.pos > FLUSH_AT && self.pos > self.buf.len() / 2 {
            // Keep the front short without moving bytes on every write.
            self.buf.drain(..self.pos);
            for f in &mut self.frames {
                f.0 -= self.pos;
            }
            self.pos = 0;
        }
    }

    /// Write to `w` until done (Ok(true)) or it would block (Ok(false)).
    pub fn write_to(&mut self, mut w: impl Write) -> io::Result<bool> {
        self.blocked = false;
        while !self.is_empty() {
            match w.write(self.unwritten()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent.wire += n as u64;
                    self.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The buffer grew for a large message or a burst and could be given back.
    pub fn grown(&self) -> bool {
        (self.is_empty() && self.buf.capacity() > 4 * FLUSH_AT)
            || self.scratch.capacity() > 4 * FLUSH_AT
    }

    /// Give back memory a large message made the buffer grow to (called
    /// when the socket has gone quiet; while busy it is reused as it is).
    pub fn trim(&mut self) {
        if self.is_empty() && self.buf.capacity() > 4 * FLUSH_AT {
            self.buf = Vec::new();
        }
        if self.scratch.capacity() > 4 * FLUSH_AT {
            self.scratch = Vec::new();
        }
    }

    /// Drop everything not written (the connection is gone or closing).
    pub fn clear(&mut self) {
        let n = self.buf.len() - self.pos;
        self.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmask a frame written by `push_frame`: (opcode, payload).
    fn decode(b: &[u8]) -> (u8, Vec<u8>, usize) {
        assert_eq!(b[1] & 0x80, 0x80, "client frames are masked");
        let (len, mut at) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let payload = b[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, x)| x ^ mask[i % 4])
            .collect();
        (b[0], payload, at + len)
    }

    #[test]
    fn frames_round_trip_at_every_length_class() {
        for len in [0usize, 1, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut o = Outbox::default();
            o.push_frame(0x2, &payload);
            assert_eq!(o.buffered(), len);
            let (b0, got, used) = decode(o.unwritten());
            assert_eq!(b0, 0x82);
            assert_eq!(got, payload, "len {len}");
            assert_eq!(used, o.unwritten().len());
        }
    }

    #[test]
    fn accounting_follows_partial_writes() {
        let mut o = Outbox::default();
        o.push_frame(0x1, b"hello");
        o.push_control(0xa, b""); // a pong: not counted
        o.push_frame(0x2, &[9; 200]);
        assert_eq!(o.buffered(), 205);
        let first = 2 + 4 + 5;
        o.advance(first - 1);
        assert_eq!(o.buffered(), 205);
        o.advance(1);
        assert_eq!(o.buffered(), 200);
        let mut out = Vec::new();
        assert!(o.write_to(&mut out).unwrap());
        assert_eq!(o.buffered(), 0);
        assert!(o.is_empty());
        assert_eq!(out[..2], [0x8a, 0x80]);
    }
}
