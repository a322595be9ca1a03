//! One WebSocket, the I/O thread's side: the thread's entry point, the
//! connect (see [`crate::connect`]) and the hand-off to open, then the loop
//! over the open connection: it reads, runs the frame reader under the
//! `core` lock, turns items into events, answers pings, runs the closing
//! handshake and the timers (close timeout, linger, keepalive), and fails
//! the connection on a fault. The state it shares with the host's threads,
//! and the order its locks are taken in, are in [`crate::socket`].

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};
use parking_lot::Mutex;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

use crate::connect::{self, Established, Stop, Waiter, SOCK};
use crate::error::{closed_without_handshake, stream_error, Code, Error};
use crate::event::{Event, Spares};
use crate::options::Options;
use crate::outbox::Outbox;
use crate::protocol::deflate::Deflater;
use crate::protocol::{write, Fault, Item, Reader};
use crate::socket::{Core, Socket, State, Wire};
use crate::time::deadline_after;
use crate::transport::{read_raw, RxBuf};
use crate::url::WsUrl;

/// How long a socket must stay quiet before the buffers a burst made grow
/// are given back.
const TRIM_AFTER: Duration = Duration::from_millis(20);

/// How long a protocol failure waits for the host to take the messages
/// that arrived before it (see `Conn::fail_protocol`).
const FAIL_GRACE: Duration = Duration::from_millis(500);

/// How long the I/O thread waits for the server to close TCP after a
/// completed closing handshake (RFC 6455 §7.1.1: the server closes first).
const LINGER: Duration = Duration::from_secs(1);

/// Why parsing stopped with something to act on.
enum Stopped {
    /// The peer's close frame (or the fault that makes it invalid).
    PeerClose(std::result::Result<(u16, String), Fault>),
    Fault(Fault),
    /// The stream ended (EOF) without the peer's close frame being read.
    Eof,
    /// The stream failed.
    Broken(Error),
}

/// Entry point of the socket's I/O thread.
pub fn run(socket: Arc<Socket>, mut poll: Poll, url: WsUrl, opts: Options) {
    crate::notify::mark_io_thread(socket.id);
    let s = socket.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        io_thread(&s, &mut poll, &url, &opts)
    }));
    if result.is_err() {
        let err = Error::new(
            Code::WSB_ERR_INTERNAL,
            "internal error: the I/O thread panicked",
        );
        socket.set_state(State::Closed);
        if socket
            .events
            .push_all([Event::error(&err), Event::close(1006, false, "")])
        {
            socket.notify.fire(socket.id);
        }
    }
}

fn io_thread(socket: &Arc<Socket>, poll: &mut Poll, url: &WsUrl, opts: &Options) {
    let mut events = Events::with_capacity(8);
    let abandoned = || socket.abandoned();
    let mut waiter = Waiter {
        poll,
        events: &mut events,
        deadline: deadline_after(opts.connect_timeout),
        timeout: opts.connect_timeout,
        abandoned: &abandoned,
    };
    let est = connect::establish(url, opts, &mut waiter);
    let Waiter { poll, events, .. } = waiter;
    let Established {
        sock,
        transport,
        subprotocol,
        deflate,
    } = match est {
        Ok(e) => e,
        Err(stop) => {
            let core = socket.core.lock();
            let queued = if socket.state() == State::Connecting {
                socket.set_state(State::Closed);
                match stop {
                    Stop::Failed(e) => socket.events.fail_open(&e),
                    Stop::Abandoned => socket.events.abandon(),
                }
            } else {
                // Abandoned by wsb_close (which queued CLOSE itself) or by shutdown.
                socket.events.abandon()
            };
            drop(core);
            if queued {
                socket.notify.fire(socket.id);
            }
            return;
        }
    };
    {
        let mut core = socket.core.lock();
        if socket.state() != State::Connecting || socket.abort.load(Ordering::Acquire) {
            drop(core);
            if socket.events.abandon() {
                socket.notify.fire(socket.id);
            }
            return;
        }
        // From now on all frames go through the outbox; the messages sent
        // while connecting go first.
        let mut transport = transport;
        let plain = !transport.is_tls();
        transport.attach_outbox(socket.outbox.clone());
        {
            let mut ob = socket.outbox.lock();
            if plain {
                ob.attach_socket(sock.clone());
            }
            if let Some(d) = deflate.as_ref().and_then(Deflater::new) {
                ob.compress_with(d);
            }
            while let Some((opcode, payload)) = core.queue.pop_front() {
                ob.queued_payload -= payload.len();
                ob.push_frame(opcode, &payload);
            }
        }
        socket
            .compression
            .store(deflate.is_some(), Ordering::Release);
        core.wire = Some(Wire {
            transport,
            reader: Reader::new(opts.max_message_size, deflate),
        });
        socket.set_state(State::Open);
        socket.events.push(Event::open(&subprotocol));
    }
    socket.notify.fire(socket.id);
    let mut conn = Conn {
        socket,
        sock,
        rx: RxBuf::new(),
        eof: false,
        close_deadline: None,
        linger_deadline: None,
        peer_close: None,
        failed: false,
        sent_close: false,
        done: false,
        last_rx: Instant::now(),
        ping_sent: None,
        ping_interval: opts.ping_interval,
        pong_timeout: opts.pong_timeout,
        close_timeout: opts.close_timeout,
        out: Vec::new(),
        deferred: None,
        spares: Spares::default(),
    };
    conn.run(poll, events);
    drop(conn);
    // The stream lives in `core` (shared with host threads): take it out so
    // the TCP socket is closed now, not when the last handle to the socket
    // state goes away.
    let wire = socket.core.lock().wire.take();
    drop(wire);
    socket.outbox.lock().close();
}

/// The I/O thread's view of an open connection.
struct Conn<'a> {
    socket: &'a Arc<Socket>,
    sock: Arc<TcpStream>,
    rx: RxBuf,
    eof: bool,
    /// Our close frame is out (or requested): give up at this time.
    close_deadline: Option<Instant>,
    /// CLOSE was emitted: wait this long for the server's TCP close.
    linger_deadline: Option<Instant>,
    /// The peer's close frame: (code, reason).
    peer_close: Option<(u16, String)>,
    /// An ERROR was emitted; no data events may follow.
    failed: bool,
    /// Our close frame is in the outbox (initiated or in reply).
    sent_close: bool,
    /// CLOSE has been emitted.
    done: bool,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    ping_interval: Option<Duration>,
    pong_timeout: Duration,
    close_timeout: Duration,
    /// Events produced under the lock, queued after it.
    out: Vec<Event>,
    /// A protocol failure waiting until the host has taken the messages that
    /// arrived before it (so it can still answer them), or until the deadline.
    deferred: Option<(Error, CloseCode, Instant)>,
    /// Payload buffers to reuse for the next events (see [`Spares`]).
    spares: Spares,
}

impl Conn<'_> {
    fn run(&mut self, poll: &mut Poll, events: &mut Events) {
        // Messages sent while connecting go out first.
        let mut readable = true;
        loop {
            if self.socket.abort.load(Ordering::Acquire) {
                if !self.done {
                    self.emit_close(1006, false, String::new());
                }
                self.publish();
                return;
            }
            self.socket.wake_pending.store(false, Ordering::Release);
            if let Some((_, _, deadline)) = &self.deferred {
                if self.socket.idle_seen.load(Ordering::Acquire) || Instant::now() >= *deadline {
                    let (err, code, _) = self.deferred.take().expect("deferred");
                    self.socket.idle_watch.store(false, Ordering::Release);
                    self.fail_now(err, code);
                    readable = true; // input was left unread meanwhile
                }
            }
            // Read outside the lock, until the socket is drained.
            loop {
                let mut raw = None;
                if readable && !self.eof && self.deferred.is_none() {
                    match read_raw(&self.sock, &mut self.rx) {
                        Ok(r) => {
                            if r.bytes > 0 {
                                self.last_rx = Instant::now();
                            }
                            self.eof |= r.eof;
                            raw = Some(r);
                        }
                        Err(e) => {
                            self.eof = true;
                            let err =
                                Error::new(Code::WSB_ERR_IO, format!("connection error: {e}"));
                            self.step(None);
                            self.fail_hard(err);
                            break;
                        }
                    }
                }
                self.step(raw.as_ref().map(|r| r.eof));
                self.publish();
                match raw {
                    Some(r) if !r.drained && !r.eof => continue,
                    _ => break,
                }
            }
            self.publish();
            if self.done && (self.eof || self.linger_expired()) {
                return;
            }
            // Going to sleep. Buffers a burst made grow are given back once
            // the socket has stayed quiet for TRIM_AFTER: during a busy
            // stretch they are reused (freeing and growing them again costs
            // a page fault per 4 KiB).
            let grown = self.buffers_grown();
            let mut timeout = self.next_timeout();
            if grown {
                timeout = Some(timeout.map_or(TRIM_AFTER, |t| t.min(TRIM_AFTER)));
            }
            match poll.poll(events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail_hard(Error::new(Code::WSB_ERR_IO, format!("poll failed: {e}")));
                    self.publish();
                    return;
                }
            }
            if grown && events.is_empty() {
                self.trim_buffers();
            }
            readable = events.iter().any(|e| {
                e.token() == SOCK && (e.is_readable() || e.is_read_closed() || e.is_error())
            });
            self.timers();
        }
    }

    fn buffers_grown(&self) -> bool {
        let core = self.socket.core.lock();
        core.wire
            .as_ref()
            .is_some_and(|w| w.transport.grown(&self.rx))
            || self.socket.outbox.lock().grown()
            || !self.spares.is_empty()
            || self.socket.events.has_spares()
    }

    fn trim_buffers(&mut self) {
        if let Some(wire) = self.socket.core.lock().wire.as_mut() {
            wire.transport.trim(&mut self.rx);
        }
        self.socket.outbox.lock().trim();
        self.spares.clear();
        self.socket.events.trim();
    }

    fn linger_expired(&self) -> bool {
        self.linger_deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some((_, _, d)) = &self.deferred {
            consider(*d);
        }
        if let Some(d) = self.linger_deadline {
            consider(d);
        } else if let Some(d) = self.close_deadline {
            consider(d);
        }
        if !self.done {
            if let Some(iv) = self.ping_interval {
                match self.ping_sent {
                    Some(t) => consider(t + self.pong_timeout),
                    None => consider(self.last_rx + iv),
                }
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    /// Keepalive and close timeouts.
    fn timers(&mut self) {
        if self.done {
            return;
        }
        let now = Instant::now();
        if let Some(d) = self.close_deadline {
            if now >= d {
                self.emit_close(1006, false, String::new());
                return;
            }
        }
        if let Some(iv) = self.ping_interval {
            if let Some(t) = self.ping_sent {
                if self.last_rx > t {
                    self.ping_sent = None;
                } else if now >= t + self.pong_timeout {
                    self.fail_hard(Error::new(Code::WSB_ERR_IO, "keepalive timeout"));
                    return;
                }
            }
            if self.ping_sent.is_none() && now >= self.last_rx + iv && !self.sent_close {
                // Into the outbox; flushed by the next step.
                self.socket.outbox.lock().push_control(0x9, &[]);
                self.ping_sent = Some(now);
            }
        }
    }

    /// Queue the collected events and wake the host (outside every lock).
    fn publish(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if self
            .socket
            .events
            .push_batch(&mut self.out, &mut self.spares)
        {
            self.socket.notify.fire(self.socket.id);
        }
    }

    fn emit_close(&mut self, code: u16, clean: bool, reason: String) {
        if self.done {
            return;
        }
        self.done = true;
        self.socket.set_state(State::Closed);
        self.out.push(Event::close(code, clean, &reason));
        if self.linger_deadline.is_none() {
            self.linger_deadline =
                Some(Instant::now() + if clean { LINGER } else { Duration::ZERO });
        }
    }

    /// Abnormal end without a closing handshake: ERROR (unless we were
    /// already closing on purpose) then CLOSE 1006; drop the connection.
    fn fail_hard(&mut self, err: Error) {
        if self.done {
            return;
        }
        let closing_on_purpose = self.sent_close && !self.failed;
        if !self.failed && !closing_on_purpose {
            self.failed = true;
            self.out.push(Event::error(&err));
        }
        self.linger_deadline = Some(Instant::now());
        self.emit_close(1006, false, String::new());
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        self.eof = true;
    }

    /// One round under the lock: supply input, report a failed write from a
    /// host thread, start a requested close, parse everything readable,
    /// flush the outbox; then act on what stopped the parsing.
    fn step(&mut self, input_eof: Option<bool>) {
        let socket = self.socket.clone();
        let mut guard = socket.core.lock();
        let core = &mut *guard;
        let Some(wire) = core.wire.as_mut() else {
            return;
        };
        if let Some(eof) = input_eof {
            wire.transport.supply(&mut self.rx, eof);
        }
        let write_error = {
            let mut ob = self.socket.outbox.lock();
            let e = ob.error.take();
            if e.is_some() {
                ob.clear();
            }
            e
        };
        // A write from a host thread failed. After the peer's close that is
        // expected (it may close TCP at once): the close completes as usual.
        if let Some(e) = write_error.filter(|_| self.peer_close.is_none()) {
            drop(guard);
            self.fail_hard(stream_error(e));
            return;
        }
        if self.done {
            // Only wait for the TCP close now; discard anything else.
            while let Ok(input) = wire.transport.input() {
                if input.is_empty() {
                    break;
                }
                let n = input.len();
                wire.transport.consume(n);
            }
            wire.transport.reclaim(&mut self.rx);
            return;
        }
        // 1. A requested close goes after everything sent before it (all of
        //    it is in the outbox already: senders frame into it directly).
        if !self.sent_close {
            if let Some(frame) = core.close_request.take() {
                self.sent_close = true;
                self.close_deadline = Some(Instant::now() + self.close_timeout);
                // Framed into the outbox; written by the flush below.
                push_close(&self.socket.outbox, Some(&frame));
            }
        }
        // 2. Parse everything supplied, until the input runs out or the
        //    reader finds something to act on.
        let wire = core.wire.as_mut().expect("open");
        let mut stopped = None;
        while self.deferred.is_none() {
            let input = match wire.transport.input() {
                Ok(input) => input,
                Err(e) => {
                    stopped = Some(Stopped::Broken(stream_error(e)));
                    break;
                }
            };
            // Every item in this input, then one consume for all of them.
            let mut at = 0;
            while stopped.is_none() {
                let step = wire.reader.read(&input[at..]);
                at += step.used;
                match step.item {
                    Some(Item::Message { text, payload }) => {
                        if !self.failed {
                            self.out
                                .push(Event::data_in(text, payload, &mut self.spares));
                        }
                    }
                    Some(Item::Ping(payload)) => {
                        // Answered behind the data already queued; not once
                        // our close is out (nothing may follow it).
                        if !self.sent_close {
                            self.socket.outbox.lock().push_control(0xa, payload);
                        }
                    }
                    Some(Item::Pong(_)) => {}
                    Some(Item::Close(close)) => stopped = Some(Stopped::PeerClose(close)),
                    Some(Item::Fault(fault)) => stopped = Some(Stopped::Fault(fault)),
                    None => break,
                }
            }
            wire.transport.consume(at);
            if stopped.is_some() {
                break;
            }
            // The reader needs more than the input holds.
            match wire.transport.pull_more() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    stopped = Some(Stopped::Broken(stream_error(e)));
                    break;
                }
            }
            // All is parsed that can be until more arrives; at the end of
            // the stream nothing more will.
            if wire.transport.at_end() {
                stopped = Some(Stopped::Eof);
            }
            break;
        }
        // 3. Flush the outbox: data frames from senders, and what the above
        //    produced (pongs, our close).
        let flushed = self.flush(core);
        core.wire
            .as_mut()
            .expect("open")
            .transport
            .reclaim(&mut self.rx);
        drop(guard);
        match stopped {
            Some(Stopped::PeerClose(close)) => self.on_peer_close(close),
            Some(Stopped::Fault(fault)) => self.fail_protocol(fault.error(), fault.close_code()),
            Some(Stopped::Eof) => match self.peer_close.clone() {
                Some((code, reason)) => {
                    self.eof = true;
                    self.emit_close(code, true, reason);
                }
                None => self.fail_hard(closed_without_handshake()),
            },
            Some(Stopped::Broken(err)) => self.fail_hard(err),
            None => {
                if flushed {
                    self.maybe_closed();
                }
            }
        }
    }

    /// Write the outbox to the socket; true if everything is out.
    fn flush(&mut self, core: &mut Core) -> bool {
        let Some(wire) = core.wire.as_mut() else {
            return false;
        };
        match wire.transport.flush_outbox() {
            Ok(all) => all,
            Err(_) => {
                // The read side reports the broken connection.
                self.socket.outbox.lock().clear();
                false
            }
        }
    }

    /// Both close frames are out and in: the closing handshake is complete.
    fn maybe_closed(&mut self) {
        if self.sent_close {
            if let Some((code, reason)) = self.peer_close.clone() {
                self.emit_close(code, true, reason);
            }
        }
    }

    /// Send our close frame (unless already sent), stop sending data, and
    /// start the close timeout.
    fn send_close(&mut self, frame: Option<CloseFrame>) {
        self.socket.set_state(State::Closing);
        self.close_deadline
            .get_or_insert(Instant::now() + self.close_timeout);
        let mut core = self.socket.core.lock();
        core.close_request = None;
        if !self.sent_close {
            self.sent_close = true;
            // Into the outbox, behind the data already sent.
            push_close(&self.socket.outbox, frame.as_ref());
        }
        let flushed = self.flush(&mut core);
        drop(core);
        if flushed {
            self.maybe_closed();
        }
    }

    /// The peer's close frame arrived: answer it (echoing its code), or, if
    /// it is invalid, fail with the fault's code as our answer.
    fn on_peer_close(&mut self, close: std::result::Result<(u16, String), Fault>) {
        match close {
            Ok((code, reason)) => {
                self.peer_close = Some((code, reason));
                // Echo the peer's code (RFC 6455 §5.5.1), or answer an empty
                // close with an empty one.
                let reply = (code != 1005).then(|| CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                });
                self.send_close(reply);
            }
            Err(fault) => {
                if !self.failed && !self.sent_close {
                    self.failed = true;
                    self.out.push(Event::error(&fault.error()));
                }
                let code = fault.close_code();
                self.peer_close = Some((u16::from(code), String::new()));
                self.send_close(Some(CloseFrame {
                    code,
                    reason: "".into(),
                }));
            }
        }
        // Anything still readable is discarded by the reader; keep going.
        self.step(None);
    }

    /// Fail the connection (RFC 6455 §7.1.7): ERROR, our close with `code`,
    /// then wait for the peer's close until the close timeout. Data arriving
    /// meanwhile is dropped.
    ///
    /// If messages that arrived before the fault are still waiting for the
    /// host, the failure waits (reading nothing more, still sending) until
    /// the host has taken them and asks again, or FAIL_GRACE passes: so a
    /// host can still answer the last good message, as it could had the
    /// fault arrived a moment later.
    fn fail_protocol(&mut self, err: Error, code: CloseCode) {
        if self.failed || self.sent_close {
            // Already closing: the peer misbehaves further; give up now.
            self.fail_hard(err);
            return;
        }
        if self.deferred.is_none() {
            self.publish();
            if !self.socket.events.is_empty() {
                self.socket.idle_seen.store(false, Ordering::Release);
                self.socket.idle_watch.store(true, Ordering::Release);
                // The host may have emptied the queue just before the watch
                // was armed: look again.
                if self.socket.events.is_empty() {
                    self.socket.idle_watch.store(false, Ordering::Release);
                } else {
                    self.deferred = Some((err, code, Instant::now() + FAIL_GRACE));
                    return;
                }
            }
        }
        self.fail_now(err, code);
    }

    fn fail_now(&mut self, err: Error, code: CloseCode) {
        self.failed = true;
        self.out.push(Event::error(&err));
        let reason = match code {
            CloseCode::Size => "message too big",
            CloseCode::Invalid => "invalid UTF-8",
            _ => "protocol error",
        };
        self.send_close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        self.step(None);
    }
}

/// Frame our close (`None`: an empty one) into the outbox.
fn push_close(outbox: &Mutex<Outbox>, frame: Option<&CloseFrame>) {
    let payload = write::close_payload(
        frame.map(|f| u16::from(f.code)),
        frame.map_or("", |f| f.reason.as_str()),
    );
    outbox.lock().push_control(0x8, &payload);
}
