//! One WebSocket, the I/O thread's side: the thread's entry point, the
//! connect (see [`crate::connect`]) and the hand-off to open, then the loop
//! over the open connection: it reads, runs the frame reader under the
//! `core` lock, turns items into events, answers pings, and runs the timers
//! (close timeout, linger, keepalive). What ends the connection (a close, a
//! fault, EOF, an error, a timeout) it tells `lifecycle.rs` (one state
//! machine, one transition function), and carries out the actions that
//! answers. The state it shares with the host's threads, and the order its
//! locks are taken in, are in [`crate::socket`].

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};
use parking_lot::Mutex;
use tungstenite::protocol::CloseFrame;

use crate::connect::url::WsUrl;
use crate::connect::{self, Established, Stop, Waiter, SOCK};
use crate::error::{stream_error, wsb_result, Error};
use crate::event::{Event, Spares};
use crate::lifecycle::{self, Action, Input, Lifecycle};
use crate::log::log;
use crate::options::Options;
use crate::outbox::Outbox;
use crate::protocol::{write, Fault, Item, Reader};
use crate::socket::{Core, Socket, State, Wire};
use crate::time::deadline_after;
use crate::transport::{read_raw, RxBuf};

/// How long a socket must stay quiet before the buffers a burst made grow
/// are given back.
const TRIM_AFTER: Duration = Duration::from_millis(20);

/// Entry point of the socket's I/O thread.
pub fn run(socket: Arc<Socket>, mut poll: Poll, url: WsUrl, opts: Options) {
    crate::notify::mark_io_thread(socket.id);
    let s = socket.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        io_thread(&s, &mut poll, &url, &opts)
    }));
    if result.is_err() {
        let err = Error::new(
            wsb_result::WSB_ERR_INTERNAL,
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
        id: socket.id,
        poll,
        events: &mut events,
        deadline: deadline_after(opts.connect_timeout),
        timeout: opts.connect_timeout,
        abandoned: &abandoned,
    };
    let est = connect::establish(url, opts, &mut waiter, &socket.stats);
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
            reader: Reader::new(opts.max_message_size, deflate).for_socket(socket.id),
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
        life: Lifecycle::Open,
        unread: false,
        last_rx: Instant::now(),
        ping_sent: None,
        probe: None,
        ping_interval: opts.ping_interval,
        pong_timeout: opts.pong_timeout,
        close_timeout: opts.close_timeout,
        out: Vec::new(),
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
    /// The peer closed TCP (or we dropped the connection): nothing more to read.
    eof: bool,
    /// Where the connection stands (RFC 6455 §7). Changed only by
    /// [`Conn::feed`], through [`lifecycle::transition`].
    life: Lifecycle,
    /// Input was left unread while Failing: read the socket without waiting
    /// for it to turn readable.
    unread: bool,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    /// Our latest keepalive ping, until its pong comes (for
    /// `last_ping_rtt_us`): its payload (the number of keepalive pings
    /// sent before it, 8 bytes big-endian) and when it was queued. Unlike
    /// `ping_sent`, other input does not clear it.
    probe: Option<([u8; 8], Instant)>,
    ping_interval: Option<Duration>,
    pong_timeout: Duration,
    close_timeout: Duration,
    /// Events produced under the lock, queued after it.
    out: Vec<Event>,
    /// Payload buffers to reuse for the next events (see [`Spares`]).
    spares: Spares,
}

impl Conn<'_> {
    fn run(&mut self, poll: &mut Poll, events: &mut Events) {
        // Messages sent while connecting go out first.
        let mut readable = true;
        loop {
            if self.socket.abort.load(Ordering::Acquire) {
                self.feed(Input::Abort);
                self.publish();
                return;
            }
            self.socket.wake_pending.store(false, Ordering::Release);
            // A failure waits for the host, which has taken its events.
            if self.life.is_failing() && self.socket.idle_seen.load(Ordering::Acquire) {
                self.feed(Input::HostIdle);
            }
            readable |= std::mem::take(&mut self.unread);
            // Read outside the lock, until the socket is drained.
            loop {
                let mut raw = None;
                if readable && !self.eof && !self.life.is_failing() {
                    match read_raw(&self.sock, &mut self.rx, &self.socket.stats) {
                        Ok(r) => {
                            if r.bytes > 0 {
                                self.last_rx = Instant::now();
                            }
                            self.eof |= r.eof;
                            raw = Some(r);
                        }
                        Err(e) => {
                            self.eof = true;
                            let err = Error::new(
                                wsb_result::WSB_ERR_IO,
                                format!("connection error: {e}"),
                            );
                            self.step(None);
                            self.feed(Input::Broken(err));
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
            if self.eof && self.life.close_reported() {
                // The server closed TCP after CLOSE: the linger is over.
                self.feed(Input::Eof);
            }
            if self.life.is_done() {
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
                    self.feed(Input::Broken(Error::new(
                        wsb_result::WSB_ERR_IO,
                        format!("poll failed: {e}"),
                    )));
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

    fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut next = self.life.deadline();
        if !self.life.close_reported() {
            if let Some(iv) = self.ping_interval {
                let t = match self.ping_sent {
                    Some(t) => t + self.pong_timeout,
                    None => self.last_rx + iv,
                };
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    /// The lifecycle's deadlines (close timeout, a failure's grace, linger)
    /// and keepalive.
    fn timers(&mut self) {
        let now = Instant::now();
        if self.life.deadline().is_some_and(|d| now >= d) {
            self.feed(Input::Tick);
        }
        if self.life.close_reported() {
            return;
        }
        if let Some(iv) = self.ping_interval {
            if let Some(t) = self.ping_sent {
                if self.last_rx > t {
                    self.ping_sent = None;
                } else if now >= t + self.pong_timeout {
                    log!(
                        Warn,
                        self.socket.id,
                        "keepalive: nothing received within {} ms of our ping",
                        self.pong_timeout.as_millis()
                    );
                    self.feed(Input::KeepaliveTimeout);
                    return;
                }
            }
            if self.ping_sent.is_none() && now >= self.last_rx + iv && self.life.sends_pings() {
                // Into the outbox; flushed by the next step. Its payload
                // tells its pong from others (wsb_ping's, unsolicited ones).
                let seq = self.socket.stats.ping_sent().to_be_bytes();
                self.socket.outbox.lock().push_control(0x9, &seq);
                self.ping_sent = Some(now);
                self.probe = Some((seq, now));
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

    /// Tell the lifecycle what happened and carry out what it answers, in
    /// order. What an action leads to (the outbox written out, the host
    /// found idle) is told next, in this loop: nothing calls back into it.
    /// Never under the `core` lock: an action may publish events.
    fn feed(&mut self, input: Input) {
        let mut first = Some(input);
        let mut later = VecDeque::new();
        while let Some(input) = first.take().or_else(|| later.pop_front()) {
            let state = std::mem::replace(&mut self.life, Lifecycle::Done);
            let (state, actions) =
                lifecycle::transition(state, input, Instant::now(), self.close_timeout);
            self.life = state;
            for action in actions {
                if let Some(next) = self.apply(action) {
                    later.push_back(next);
                }
            }
        }
    }

    /// Carry out one action of the lifecycle; `Some` is what it led to.
    fn apply(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::ReportError(err) => self.out.push(Event::error(&err)),
            Action::SendClose(frame) => {
                match &frame {
                    Some(f) => log!(
                        Info,
                        self.socket.id,
                        "close sent: {} {:?}",
                        u16::from(f.code),
                        f.reason.as_str()
                    ),
                    None => log!(Info, self.socket.id, "close sent: no status code"),
                }
                self.socket.set_state(State::Closing);
                // Into the outbox, behind the data already sent.
                push_close(&self.socket.outbox, frame.as_ref());
            }
            Action::Flush => {
                let mut core = self.socket.core.lock();
                if self.flush(&mut core) {
                    return Some(Input::Flushed);
                }
            }
            Action::ReportClose {
                code,
                clean,
                reason,
            } => {
                self.socket.set_state(State::Closed);
                self.out.push(Event::close(code, clean, &reason));
            }
            Action::Disconnect => {
                let _ = self.sock.shutdown(std::net::Shutdown::Both);
                self.eof = true;
            }
            Action::WatchHost => return self.watch_host(),
            Action::Resume => {
                self.socket.idle_watch.store(false, Ordering::Release);
                self.unread = true;
            }
        }
        None
    }

    /// A fault waits for the host to take the messages that arrived before
    /// it (see [`Lifecycle::Failing`]): publish them and watch for the host
    /// coming back to an empty queue. `HostIdle` now if it has nothing left.
    fn watch_host(&mut self) -> Option<Input> {
        self.publish();
        if !self.socket.events.is_empty() {
            self.socket.idle_seen.store(false, Ordering::Release);
            self.socket.idle_watch.store(true, Ordering::Release);
            // The host may have emptied the queue just before the watch
            // was armed: look again.
            if !self.socket.events.is_empty() {
                return None;
            }
            self.socket.idle_watch.store(false, Ordering::Release);
        }
        Some(Input::HostIdle)
    }

    /// One round under the lock: supply input, take what host threads left
    /// (a failed write, a close request), parse everything readable, flush
    /// the outbox; then tell the lifecycle what stopped the parsing. After
    /// the peer's close or a fault, the rest of the input is parsed (or
    /// discarded) as the new state says: another round, in this loop.
    fn step(&mut self, mut input_eof: Option<bool>) {
        while self.step_once(input_eof.take()) {}
    }

    /// One round of [`Conn::step`]; true if another must follow.
    fn step_once(&mut self, input_eof: Option<bool>) -> bool {
        let socket = self.socket;
        let mut guard = socket.core.lock();
        let Some(wire) = guard.wire.as_mut() else {
            return false;
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
        let close_request = guard.close_request.take();
        if write_error.is_some() || close_request.is_some() {
            // Told outside the lock (as every input), then back to the lock.
            drop(guard);
            // A write from a host thread failed. After the peer's close that
            // is expected (it may close TCP at once): the close completes as
            // usual.
            if let Some(e) = write_error {
                self.feed(Input::WriteFailed(stream_error(e)));
                if self.life.is_done() {
                    return false;
                }
            }
            // A requested close goes after everything sent before it (all of
            // it is in the outbox already: senders frame into it directly).
            if let Some(frame) = close_request {
                self.feed(Input::CloseRequested(frame));
            }
            guard = socket.core.lock();
        }
        let core = &mut *guard;
        let wire = core.wire.as_mut().expect("open");
        if self.life.close_reported() {
            // Only wait for the TCP close now; discard anything else.
            while let Ok(input) = wire.transport.input() {
                if input.is_empty() {
                    break;
                }
                let n = input.len();
                wire.transport.consume(n);
            }
            wire.transport.reclaim(&mut self.rx);
            return false;
        }
        // Parse everything supplied, until the input runs out or the reader
        // finds something to act on. Not while a failure waits for the host:
        // the input waits too.
        let delivers = self.life.delivers();
        let answers_pings = self.life.sends_pings();
        let mut stopped = None;
        // Data messages delivered (and their payload bytes), counted once.
        let (mut messages, mut payload_bytes) = (0u64, 0u64);
        while self.life.reads() {
            let input = match wire.transport.input() {
                Ok(input) => input,
                Err(e) => {
                    stopped = Some(Input::Broken(stream_error(e)));
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
                        if delivers {
                            messages += 1;
                            payload_bytes += payload.as_slice().len() as u64;
                            self.out
                                .push(Event::data_in(text, payload, &mut self.spares));
                        }
                    }
                    Some(Item::Ping(payload)) => {
                        // Answered behind the data already queued; not once
                        // our close is out (nothing may follow it).
                        if answers_pings {
                            self.socket.outbox.lock().push_control(0xa, payload);
                        }
                    }
                    Some(Item::Pong(p)) => {
                        let rtt = match self.probe {
                            Some((seq, at)) if p == seq => {
                                self.probe = None;
                                Some(at.elapsed())
                            }
                            _ => None,
                        };
                        self.socket.stats.pong_received(rtt);
                    }
                    Some(Item::Close(close)) => {
                        match &close {
                            Ok((code, reason)) => {
                                log!(Info, self.socket.id, "close received: {code} {reason:?}")
                            }
                            Err(fault) => log_fault(self.socket.id, fault),
                        }
                        stopped = Some(Input::PeerClose(close));
                    }
                    Some(Item::Fault(fault)) => {
                        log_fault(self.socket.id, &fault);
                        stopped = Some(Input::Fault(fault));
                    }
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
                    stopped = Some(Input::Broken(stream_error(e)));
                    break;
                }
            }
            // All is parsed that can be until more arrives; at the end of
            // the stream nothing more will.
            if wire.transport.at_end() {
                stopped = Some(Input::Eof);
            }
            break;
        }
        self.socket.stats.received(messages, payload_bytes);
        // Flush the outbox: data frames from senders, and what the above
        // produced (pongs, our close).
        let flushed = self.flush(core);
        core.wire
            .as_mut()
            .expect("open")
            .transport
            .reclaim(&mut self.rx);
        drop(guard);
        match stopped {
            None => {
                if flushed && self.life.waits_for_flush() {
                    self.feed(Input::Flushed);
                }
                false
            }
            Some(input) => {
                let again = matches!(input, Input::PeerClose(_) | Input::Fault(_));
                self.feed(input);
                again && !self.life.is_failing() && !self.life.is_done()
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
}

/// A fault of the peer's, logged as a warning before the connection fails
/// (the failure itself is the ERROR line): the rule it broke, or the limit
/// its message went past.
fn log_fault(socket: u64, fault: &Fault) {
    let what = match fault {
        Fault::TooLarge { .. } | Fault::OutOfMemory { .. } | Fault::InflatesPastLimit { .. } => {
            "peer's message refused"
        }
        Fault::BadCompressedData(_) | Fault::InvalidUtf8(_) | Fault::Protocol(_) => {
            "peer broke the protocol"
        }
    };
    log!(Warn, socket, "{what}: {}", fault.error().detail);
}

/// Frame our close (`None`: an empty one) into the outbox.
fn push_close(outbox: &Mutex<Outbox>, frame: Option<&CloseFrame>) {
    let payload = write::close_payload(
        frame.map(|f| u16::from(f.code)),
        frame.map_or("", |f| f.reason.as_str()),
    );
    outbox.lock().push_control(0x8, &payload);
}
