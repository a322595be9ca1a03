//! The byte stream: a non-blocking mio `TcpStream`, plain or wrapped in a
//! rustls `ClientConnection`.
//!
//! Reads are split in two so the socket lock is not held across `read(2)`:
//! the I/O thread reads raw bytes from the socket into its own buffer
//! ([`read_raw`]), then, under the lock, hands them to the transport
//! ([`Transport::supply`]). The frame reader then looks at the (decrypted)
//! bytes in place ([`Transport::input`]), consumes what it used
//! ([`Transport::consume`]) and leaves the rest, the first part of a frame
//! header, say, in front of the next bytes ([`Transport::pull_more`]).
//! Before the connection opens, writes (the upgrade request) go straight to
//! the socket; after, everything goes through the outbox.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use parking_lot::Mutex;
use rustls::ClientConnection;

use crate::outbox::Outbox;
use crate::stats::Stats;
use crate::wire::Wire;

/// Largest chunk read from the socket before it is parsed.
pub const MAX_READ_CHUNK: usize = 256 * 1024;
const MIN_READ_CHUNK: usize = 4 * 1024;
/// Decrypted bytes taken from rustls at a time.
const TLS_CHUNK: usize = 16 * 1024;

pub struct Transport {
    sock: Arc<TcpStream>,
    tls: Option<Box<ClientConnection>>,
    /// Raw bytes received from the socket, not yet consumed.
    rx: RxBuf,
    rx_pos: usize,
    /// The peer closed its sending side (read returned 0).
    eof: bool,
    /// TLS only: decrypted bytes not yet consumed.
    plain: RxBuf,
    plain_pos: usize,
    /// Once open: what `flush_outbox` writes (see [`crate::outbox`]).
    outbox: Option<Arc<Mutex<Outbox>>>,
    /// Counts the bytes written here other than the outbox's plain writes
    /// (the upgrade request, TLS records).
    stats: Arc<Stats>,
}

/// Bytes read from the socket: `data[..end]` is filled. `data` keeps its
/// length when emptied (it was zeroed once, when it grew), so a read does
/// not zero the buffer again; it only grows on demand.
#[derive(Debug, Default)]
pub struct RxBuf {
    data: Vec<u8>,
    end: usize,
}

impl RxBuf {
    pub fn new() -> RxBuf {
        RxBuf::default()
    }

    pub fn filled(&self) -> &[u8] {
        &self.data[..self.end]
    }

    pub fn len(&self) -> usize {
        self.end
    }

    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    pub fn clear(&mut self) {
        self.end = 0;
    }

    /// Grew past a few read chunks for a burst, and holds nothing now.
    fn grown(&self) -> bool {
        self.data.len() > 4 * MIN_READ_CHUNK && self.is_empty()
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// The unfilled part, at least `min` bytes (growing the buffer if needed).
    fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.data.len() - self.end < min {
            let grow = self.end.clamp(MIN_READ_CHUNK, MAX_READ_CHUNK).max(min);
            self.data.resize(self.end + grow, 0);
        }
        &mut self.data[self.end..]
    }

    /// Drop the first `n` filled bytes, moving the rest to the front.
    fn consume_front(&mut self, n: usize) {
        self.data.copy_within(n..self.end, 0);
        self.end -= n;
    }

    /// The filled bytes after the first `n`, as a new buffer; this one is emptied.
    pub fn split_off_front(&mut self, n: usize) -> RxBuf {
        let rest = RxBuf {
            data: self.data[n..self.end].to_vec(),
            end: self.end - n,
        };
        self.clear();
        rest
    }
}

/// Outcome of one [`read_raw`] call.
pub struct RawRead {
    pub bytes: usize,
    pub eof: bool,
    /// The socket has no more data right now (edge-triggered readiness is re-armed).
    pub drained: bool,
}

/// Read from the socket into `buf` (appending) until it would block, hits EOF,
/// or `MAX_READ_CHUNK` bytes have been read. Grows `buf` on demand. The
/// bytes read are counted in `stats`, once per call.
pub fn read_raw(sock: &TcpStream, buf: &mut RxBuf, stats: &Stats) -> io::Result<RawRead> {
    let r = read_chunk(sock, buf);
    if let Ok(r) = &r {
        stats.wire_in(r.bytes);
    }
    r
}

fn read_chunk(sock: &TcpStream, buf: &mut RxBuf) -> io::Result<RawRead> {
    let mut out = RawRead {
        bytes: 0,
        eof: false,
        drained: false,
    };
    let mut reader = sock;
    while out.bytes < MAX_READ_CHUNK {
        match reader.read(buf.spare(MIN_READ_CHUNK)) {
            Ok(0) => {
                out.eof = true;
                return Ok(out);
            }
            Ok(n) => {
                buf.end += n;
                out.bytes += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.drained = true;
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

impl Transport {
    fn new(sock: Arc<TcpStream>, tls: Option<Box<ClientConnection>>, stats: Arc<Stats>) -> Self {
        Transport {
            sock,
            tls,
            rx: RxBuf::new(),
            rx_pos: 0,
            eof: false,
            plain: RxBuf::new(),
            plain_pos: 0,
            outbox: None,
            stats,
        }
    }

    pub fn plain(sock: Arc<TcpStream>, stats: Arc<Stats>) -> Self {
        Self::new(sock, None, stats)
    }

    pub fn tls(sock: Arc<TcpStream>, conn: ClientConnection, stats: Arc<Stats>) -> Self {
        Self::new(sock, Some(Box::new(conn)), stats)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the TLS handshake agreed (for the log): `TLSv1_3,
    /// TLS13_AES_256_GCM_SHA384, ALPN none`.
    pub fn tls_summary(&self) -> String {
        let Some(tls) = self.tls.as_deref() else {
            return "none".into();
        };
        let version = tls
            .protocol_version()
            .map_or("unknown version".into(), |v| format!("{v:?}"));
        let suite = tls
            .negotiated_cipher_suite()
            .map_or("unknown cipher suite".into(), |s| {
                format!("{:?}", s.suite())
            });
        let alpn = tls
            .alpn_protocol()
            .map_or("none".into(), |p| String::from_utf8_lossy(p).into_owned());
        format!("{version}, {suite}, ALPN {alpn}")
    }

    /// The connection is open: from now on frames go through `outbox`.
    pub fn attach_outbox(&mut self, outbox: Arc<Mutex<Outbox>>) {
        self.outbox = Some(outbox);
    }

    /// Write the outbox to the socket (encrypting it for TLS): Ok(true) once
    /// all of it is out, Ok(false) if the socket would block.
    pub fn flush_outbox(&mut self) -> io::Result<bool> {
        let Some(outbox) = self.outbox.clone() else {
            return Ok(true);
        };
        let mut ob = outbox.lock();
        if self.tls.is_none() {
            return ob.write_to(Wire(&self.sock));
        }
        loop {
            if !ob.is_empty() {
                let tls = self.tls.as_deref_mut().expect("tls transport");
                let n = tls.writer().write(ob.unwritten())?;
                ob.advance(n);
                if n > 0 {
                    continue;
                }
            }
            // rustls's buffer is full, or everything is in it: send records.
            match self.write_tls() {
                Ok(()) if ob.is_empty() => return Ok(true),
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Hand over bytes read by [`read_raw`]. `buf` is swapped in when nothing
    /// is pending (no copy) and gets back an empty buffer to reuse.
    pub fn supply(&mut self, buf: &mut RxBuf, eof: bool) {
        if self.rx_pos >= self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
            std::mem::swap(&mut self.rx, buf);
        } else {
            // Bytes still pending (a frame's first part): move them to the
            // front first, so the buffer does not grow with the stream.
            if self.rx_pos > 0 {
                self.rx.consume_front(self.rx_pos);
                self.rx_pos = 0;
            }
            self.rx.extend(buf.filled());
            buf.clear();
        }
        self.eof |= eof;
    }

    /// Give the (emptied) receive buffer back for the next raw read, keeping
    /// unconsumed bytes.
    pub fn reclaim(&mut self, buf: &mut RxBuf) {
        if self.rx_pos >= self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
            if buf.data.capacity() == 0 {
                std::mem::swap(&mut self.rx, buf);
            }
        }
    }

    /// A receive buffer grew for a burst and could be given back.
    pub fn grown(&self, buf: &RxBuf) -> bool {
        [&self.rx, buf].iter().any(|b| b.grown())
    }

    /// Shrink receive buffers that grew for a burst (call when the socket
    /// has gone quiet: during a busy stretch they are reused as they are).
    pub fn trim(&mut self, buf: &mut RxBuf) {
        for b in [&mut self.rx, buf] {
            if b.grown() {
                b.data.truncate(MIN_READ_CHUNK);
                b.data.shrink_to(MIN_READ_CHUNK);
            }
        }
    }

    pub fn has_pending_input(&self) -> bool {
        self.rx_pos < self.rx.len()
    }

    /// TLS: feed supplied ciphertext into rustls and process it.
    /// Returns Ok(false) if there was nothing to feed.
    fn feed_tls(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(false);
        };
        if self.rx_pos >= self.rx.len() {
            if self.eof {
                // Let rustls see the EOF (read_tls of an empty reader returns 0).
                let mut empty: &[u8] = &[];
                if tls.read_tls(&mut empty)? == 0 {
                    self.eof = false; // report it once
                    tls.process_new_packets().map_err(io::Error::other)?;
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let mut src = &self.rx.filled()[self.rx_pos..];
        let before = src.len();
        let n = tls.read_tls(&mut src)?;
        debug_assert_eq!(before - src.len(), n);
        self.rx_pos += n;
        let state = tls.process_new_packets();
        if let Err(e) = state {
            // Best effort: send the alert rustls queued.
            let _ = self.write_tls();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(true)
    }

    /// TLS: write queued records to the socket until done or it would block.
    fn write_tls(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            let mut w = Wire(&self.sock);
            while tls.wants_write() {
                match tls.write_tls(&mut w) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.stats.wire_out(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Drive the TLS handshake with the bytes supplied so far. Ok(true) once
    /// it is complete; Ok(false) if more input (or writability) is needed.
    pub fn drive_tls_handshake(&mut self) -> io::Result<bool> {
        loop {
            match self.write_tls() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let Some(tls) = self.tls.as_deref() else {
                return Ok(true);
            };
            if !tls.is_handshaking() {
                return Ok(!tls.wants_write() || self.write_tls().is_ok());
            }
            if self.eof && !self.has_pending_input() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during TLS handshake",
                ));
            }
            if !self.feed_tls()? {
                return Ok(false);
            }
        }
    }
}

impl Transport {
    /// The received (for TLS, decrypted) bytes not consumed yet; for TLS,
    /// refilled from rustls when they ran out. Empty: nothing more until
    /// the next [`Transport::supply`] (or the end of the stream, see
    /// [`Transport::at_end`]).
    pub fn input(&mut self) -> io::Result<&[u8]> {
        self.available()?;
        Ok(self.unconsumed())
    }

    /// The first `n` bytes of [`Transport::input`] are used.
    pub fn consume(&mut self, n: usize) {
        if self.tls.is_none() {
            self.rx_pos += n;
        } else {
            self.plain_pos += n;
        }
    }

    /// More bytes behind the unconsumed ones, for a reader that needs more
    /// than [`Transport::input`] holds (a frame header or control frame cut
    /// by a TLS record boundary). Ok(false): none until the next supply.
    pub fn pull_more(&mut self) -> io::Result<bool> {
        if self.tls.is_none() {
            return Ok(false);
        }
        if self.plain_pos > 0 {
            self.plain.consume_front(self.plain_pos);
            self.plain_pos = 0;
        }
        Ok(self.decrypt()? > 0)
    }

    /// The stream has ended (the peer closed its side; TLS: with
    /// close_notify, an unclean end is an error from [`Transport::input`]):
    /// once the input is exhausted and [`Transport::pull_more`] finds
    /// nothing, no more bytes will come.
    pub fn at_end(&self) -> bool {
        self.eof
    }

    /// Decrypted (or, for plain sockets, received) bytes not consumed yet.
    /// TLS: refills from rustls when empty. 0 means nothing until the next
    /// supply, or the end of the stream.
    fn available(&mut self) -> io::Result<usize> {
        if self.tls.is_none() {
            return Ok(self.rx.len() - self.rx_pos);
        }
        if self.plain_pos < self.plain.len() {
            return Ok(self.plain.len() - self.plain_pos);
        }
        self.plain.clear();
        self.plain_pos = 0;
        self.decrypt()
    }

    /// TLS: append decrypted bytes to `plain`, feeding rustls the supplied
    /// ciphertext as needed. Ok(0): none until the next supply, or the end
    /// of the stream (close_notify: `eof` is set).
    fn decrypt(&mut self) -> io::Result<usize> {
        loop {
            let tls = self.tls.as_deref_mut().expect("tls transport");
            // Straight into `plain`: a chunk on the stack would be touched
            // (stack-probed) on every read, plain sockets included.
            match tls.reader().read(self.plain.spare(TLS_CHUNK)) {
                Ok(0) => {
                    // close_notify: a clean TLS EOF.
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.plain.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.feed_tls()? {
                        return Ok(0);
                    }
                    // Reading may have queued records to send (alerts, KeyUpdate).
                    match self.write_tls() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn unconsumed(&self) -> &[u8] {
        if self.tls.is_none() {
            &self.rx.filled()[self.rx_pos..]
        } else {
            &self.plain.filled()[self.plain_pos..]
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            let n = Wire(&self.sock).write(buf)?;
            self.stats.wire_out(n);
            return Ok(n);
        };
        let mut n = tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls's buffer is full: push records out, then try again.
            self.write_tls()?;
            let tls = self.tls.as_deref_mut().expect("tls transport");
            n = tls.writer().write(buf)?;
            if n == 0 {
                return Err(would_block());
            }
        }
        match self.write_tls() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls()
    }
}
