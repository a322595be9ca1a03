//! One WebSocket: the state shared between the host's threads and the
//! socket's own I/O thread, the send/close paths (host side) and the I/O
//! thread's loop.
//!
//! Locks, in the order they may be taken: `core` (the byte stream, TLS, the
//! frame reader), then `outbox` (frames waiting for the socket), then the event
//! queue's. Senders take only `outbox` (for TLS they try `core` after
//! releasing it), so sending does not wait for parsing. None is held while
//! the notify callback runs. Nothing under a lock blocks on the network: the
//! socket is non-blocking and reads happen outside the locks.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Waker};
use parking_lot::Mutex;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

use crate::connect::{self, Established, Stop, Waiter, SOCK};
use crate::error::{Code, Error, Result};
use crate::event::{Event, EventQueue, Freed, OpenOutcome, Polled, Spares};
use crate::notify::Notify;
use crate::options::Options;
use crate::outbox::{self, Outbox};
use crate::protocol::{write, Fault, Item, Reader};
use crate::transport::{read_raw, RxBuf, Transport};
use crate::url::WsUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Connecting = 0,
    Open = 1,
    Closing = 2,
    Closed = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Connecting,
            1 => State::Open,
            2 => State::Closing,
            _ => State::Closed,
        }
    }
}

/// Sends closer together than this are a burst: they are left in the outbox for the
/// I/O thread (batched writes) instead of written by the caller.
const BURST_GAP: Duration = Duration::from_micros(5);

/// How long a socket must stay quiet before the buffers a burst made grow
/// are given back.
const TRIM_AFTER: Duration = Duration::from_millis(20);

/// How long a protocol failure waits for the host to take the messages
/// that arrived before it (see `Conn::fail_protocol`).
const FAIL_GRACE: Duration = Duration::from_millis(500);

/// How long the I/O thread waits for the server to close TCP after a
/// completed closing handshake (RFC 6455 §7.1.1: the server closes first).
const LINGER: Duration = Duration::from_secs(1);

struct Core {
    /// Once open: the byte stream and the frame reader.
    wire: Option<Wire>,
    /// Messages sent while connecting: (opcode, payload). The I/O thread
    /// moves them into the outbox, in order, once open.
    queue: VecDeque<(u8, Vec<u8>)>,
    /// Set by wsb_close/wsb_free, taken by the I/O thread.
    close_request: Option<CloseFrame>,
}

/// An open connection's receive side: bytes (plain or TLS) and the frame
/// reader that turns them into messages.
struct Wire {
    transport: Transport,
    reader: Reader,
}

pub struct Socket {
    pub id: u64,
    state: AtomicU8,
    core: Mutex<Core>,
    pub events: EventQueue,
    pub notify: Notify,
    /// Frames waiting for the socket (own lock: see [`crate::outbox`]).
    outbox: Arc<Mutex<Outbox>>,
    waker: Waker,
    wake_pending: AtomicBool,
    abort: AtomicBool,
    /// Armed by the I/O thread while a failure waits for the host to take
    /// the events before it; set when a poll/wait then finds the queue empty.
    idle_watch: AtomicBool,
    idle_seen: AtomicBool,
    max_message_size: usize,
    send_queue_limit: usize,
    /// permessage-deflate was negotiated (set before OPEN).
    compression: AtomicBool,
}

pub struct Spawned {
    pub socket: Arc<Socket>,
    pub poll: Poll,
}

impl Socket {
    pub fn create(id: u64, opts: &Options) -> Result<Spawned> {
        let poll = Poll::new()
            .map_err(|e| Error::new(Code::WSB_ERR_IO, format!("cannot create poller: {e}")))?;
        let waker = Waker::new(poll.registry(), connect::WAKE)
            .map_err(|e| Error::new(Code::WSB_ERR_IO, format!("cannot create waker: {e}")))?;
        let socket = Arc::new(Socket {
            id,
            state: AtomicU8::new(State::Connecting as u8),
            core: Mutex::new(Core {
                wire: None,
                queue: VecDeque::new(),
                close_request: None,
            }),
            outbox: Arc::default(),
            events: EventQueue::default(),
            notify: Notify::default(),
            waker,
            wake_pending: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            idle_watch: AtomicBool::new(false),
            idle_seen: AtomicBool::new(false),
            max_message_size: opts.max_message_size,
            send_queue_limit: opts.send_queue_limit,
            compression: AtomicBool::new(false),
        });
        Ok(Spawned { socket, poll })
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// Make the I/O thread drop the connection and exit now (wsb_shutdown).
    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// The host came back for events and found none: if the I/O thread is
    /// waiting for that (a deferred failure), tell it.
    fn host_idle(&self) {
        if self.idle_watch.swap(false, Ordering::AcqRel) {
            self.idle_seen.store(true, Ordering::Release);
            self.wake();
        }
    }

    /// wsb_poll.
    pub fn poll(&self) -> Option<Polled> {
        let ev = self.events.poll();
        if ev.is_none() {
            self.host_idle();
        }
        ev
    }

    /// The next event if one is waiting (the fast path of wsb_wait_event:
    /// an empty queue goes on to `wait`, which does the idle bookkeeping).
    pub fn take_ready(&self) -> Option<Polled> {
        self.events.poll()
    }

    /// wsb_wait_event.
    pub fn wait(&self, timeout: Duration) -> std::result::Result<Option<Polled>, Freed> {
        self.events.wait(timeout, || self.host_idle())
    }

    /// Whether permessage-deflate was negotiated (false until OPEN).
    pub fn compression(&self) -> bool {
        self.compression.load(Ordering::Acquire)
    }

    pub fn buffered_amount(&self) -> usize {
        self.outbox.lock().buffered()
    }

    /// Queue or write one message (`opcode` 1 text, 2 binary, 9 ping).
    /// Never blocks on the network.
    pub fn send(&self, opcode: u8, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        if len > self.max_message_size {
            return Err(Error::new(
                Code::WSB_ERR_MESSAGE_TOO_LARGE,
                format!(
                    "message of {len} bytes exceeds the limit of {} bytes",
                    self.max_message_size
                ),
            ));
        }
        let not_open = || Error::new(Code::WSB_ERR_NOT_OPEN, "socket is closing or closed");
        if self.state() == State::Connecting {
            // Held in order until open: the I/O thread moves the queue into
            // the outbox and sets Open under the core lock, so nothing sent
            // after it can overtake it.
            let mut core = self.core.lock();
            match self.state() {
                State::Connecting => {
                    let mut ob = self.outbox.lock();
                    self.check_limit(&ob, len)?;
                    ob.queued_payload += len;
                    core.queue.push_back((opcode, payload.to_vec()));
                    return Ok(());
                }
                State::Open => drop(core),
                _ => return Err(not_open()),
            }
        }
        let mut ob = self.outbox.lock();
        // wsb_close sets Closing before the close frame is framed, and that
        // needs this lock: no data frame can follow the close frame.
        if self.state() != State::Open {
            return Err(not_open());
        }
        self.check_limit(&ob, len)?;
        let was_empty = ob.is_empty();
        ob.push_frame(opcode, payload);
        // Write from the calling thread when the socket is idle: lowest
        // latency, no hand-off. In a burst (sends into an empty outbox closer
        // together than BURST_GAP), or behind frames not yet written, leave
        // the frames to the I/O thread, which writes many per syscall, unless
        // FLUSH_AT bytes have piled up. Never while the socket is known to be
        // full. The clock is read only when the outbox was empty: behind
        // unwritten frames the answer is "leave it" anyway.
        let idle = was_empty && {
            let now = Instant::now();
            let idle = ob
                .last_send
                .is_none_or(|t| now.duration_since(t) > BURST_GAP);
            ob.last_send = Some(now);
            idle
        };
        let write_now =
            (idle || ob.unwritten().len() >= outbox::FLUSH_AT) && !ob.blocked && ob.error.is_none();
        if write_now {
            match ob.flush_plain() {
                Some(Ok(true)) => return Ok(()),
                Some(Ok(false)) => {} // would block: the I/O thread waits for writability
                Some(Err(e)) => ob.error = Some(e),
                None => {
                    // TLS: encrypting needs the connection; only if it is free.
                    drop(ob);
                    if let Some(mut core) = self.core.try_lock() {
                        if let Some(wire) = core.wire.as_mut() {
                            match wire.transport.flush_outbox() {
                                Ok(true) => return Ok(()),
                                Ok(false) => {}
                                Err(e) => self.outbox.lock().error = Some(e),
                            }
                        }
                    }
                    self.wake();
                    return Ok(());
                }
            }
        }
        drop(ob);
        // Frames behind others need no wake-up: whoever put the first frame
        // into the empty outbox either wrote everything or woke the I/O
        // thread, which flushes all that is there when it runs (or when the
        // socket turns writable).
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    fn check_limit(&self, ob: &Outbox, len: usize) -> Result<()> {
        let buffered = ob.buffered();
        if buffered > 0 && buffered + len > self.send_queue_limit {
            return Err(Error::new(
                Code::WSB_ERR_QUEUE_FULL,
                format!(
                    "send queue full: {buffered} bytes buffered, limit {} bytes",
                    self.send_queue_limit
                ),
            ));
        }
        Ok(())
    }

    /// wsb_close: start the closing handshake, or abandon a connect.
    pub fn close(&self, frame: CloseFrame) {
        let mut core = self.core.lock();
        match self.state() {
            State::Connecting => {
                self.set_state(State::Closed);
                self.events.abandon();
                drop(core);
                self.wake();
                self.notify.fire(self.id);
            }
            State::Open => {
                self.set_state(State::Closing);
                core.close_request = Some(frame);
                drop(core);
                self.wake();
            }
            State::Closing | State::Closed => {}
        }
    }

    /// wsb_free: the handle is already gone from the table. Close with 1001 in
    /// the background, drop all later events, and stop calling back.
    pub fn release(&self) {
        self.close(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        });
        self.events.discard();
        self.notify.clear();
    }

    pub fn wait_open(&self, timeout: Duration) -> Result<Code> {
        let deadline = deadline_after(timeout);
        match self
            .events
            .wait_open(deadline)
            .map_err(|_| Error::invalid_handle())?
        {
            None => Ok(Code::WSB_TIMEOUT),
            Some(OpenOutcome::Opened) => Ok(Code::WSB_OK),
            Some(OpenOutcome::Failed(e)) => Err(e),
            Some(OpenOutcome::Abandoned) => Err(Error::new(
                Code::WSB_ERR_NOT_OPEN,
                "the connect was abandoned (wsb_close, wsb_free or wsb_shutdown)",
            )),
        }
    }

    fn abandoned(&self) -> bool {
        self.abort.load(Ordering::Acquire) || self.state() == State::Closed
    }
}

/// `now + timeout`, saturating far in the future.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365))
}

/// A failure of the byte stream on an open connection (TLS included).
fn stream_error(e: io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Error::new(Code::WSB_ERR_TLS, t.to_string());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => closed_without_handshake(),
        _ => Error::new(Code::WSB_ERR_IO, format!("connection error: {e}")),
    }
}

fn closed_without_handshake() -> Error {
    Error::new(
        Code::WSB_ERR_IO,
        "connection closed by peer without a closing handshake",
    )
}

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
            if let Some(agreed) = deflate {
                ob.compress_with(agreed);
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
