//! One WebSocket, host side: the state shared between the host's threads and
//! the socket's own I/O thread, and the calls the host makes (send, close,
//! poll, wait). The I/O thread (connect, then the loop over the open
//! connection) is [`crate::conn`].
//!
//! Locks, in the order they may be taken: `core` (the byte stream, TLS, the
//! frame reader), then `outbox` (frames waiting for the socket), then the event
//! queue's. Senders take only `outbox` (for TLS they try `core` after
//! releasing it), so sending does not wait for parsing. None is held while
//! the notify callback runs. Nothing under a lock blocks on the network: the
//! socket is non-blocking and reads happen outside the locks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use parking_lot::Mutex;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

use crate::connect;
use crate::error::{wsb_result, Error, Result};
use crate::event::{EventQueue, Freed, OpenOutcome, Polled};
use crate::notify::Notify;
use crate::options::Options;
use crate::outbox::{self, Outbox};
use crate::protocol::Reader;
use crate::stats::{Snapshot, Stats};
use crate::time::deadline_after;
use crate::transport::Transport;

/// The host-visible state (`wsb_state` in C, `wsb_get_state`). The open
/// connection's closing handshake is `lifecycle::Lifecycle`;
/// where the frame reader is in the stream is its `Position`.
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

pub(crate) struct Core {
    /// Once open: the byte stream and the frame reader.
    pub(crate) wire: Option<Wire>,
    /// Messages sent while connecting: (opcode, payload). The I/O thread
    /// moves them into the outbox, in order, once open.
    pub(crate) queue: VecDeque<(u8, Vec<u8>)>,
    /// Set by wsb_close/wsb_free, taken by the I/O thread.
    pub(crate) close_request: Option<CloseFrame>,
}

/// An open connection's receive side: bytes (plain or TLS) and the frame
/// reader that turns them into messages.
pub(crate) struct Wire {
    pub(crate) transport: Transport,
    pub(crate) reader: Reader,
}

pub struct Socket {
    pub id: u64,
    state: AtomicU8,
    pub(crate) core: Mutex<Core>,
    pub events: EventQueue,
    pub notify: Notify,
    /// Frames waiting for the socket (own lock: see [`crate::outbox`]).
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    waker: Waker,
    pub(crate) wake_pending: AtomicBool,
    pub(crate) abort: AtomicBool,
    /// Armed by the I/O thread while a failure waits for the host to take
    /// the events before it; set when a poll/wait then finds the queue empty.
    pub(crate) idle_watch: AtomicBool,
    pub(crate) idle_seen: AtomicBool,
    max_message_size: usize,
    send_queue_limit: usize,
    /// permessage-deflate was negotiated (set before OPEN).
    pub(crate) compression: AtomicBool,
    /// Counters for `wsb_get_stats` (the rest are in the outbox, see
    /// [`crate::stats`]). Shared with the connection's `Transport`.
    pub(crate) stats: Arc<Stats>,
    /// The counters when the socket became Closed (CLOSE queued): what
    /// `wsb_get_stats` reports from then on.
    final_stats: OnceLock<Snapshot>,
}

pub struct Spawned {
    pub socket: Arc<Socket>,
    pub poll: Poll,
}

impl Socket {
    pub fn create(id: u64, opts: &Options) -> Result<Spawned> {
        let poll = Poll::new().map_err(|e| {
            Error::new(wsb_result::WSB_ERR_IO, format!("cannot create poller: {e}"))
        })?;
        let waker = Waker::new(poll.registry(), connect::WAKE)
            .map_err(|e| Error::new(wsb_result::WSB_ERR_IO, format!("cannot create waker: {e}")))?;
        let socket = Arc::new(Socket {
            id,
            state: AtomicU8::new(State::Connecting as u8),
            core: Mutex::new(Core {
                wire: None,
                queue: VecDeque::new(),
                close_request: None,
            }),
            outbox: Arc::new(Mutex::new(Outbox::new(id))),
            events: EventQueue::new(id),
            notify: Notify::default(),
            waker,
            wake_pending: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            idle_watch: AtomicBool::new(false),
            idle_seen: AtomicBool::new(false),
            max_message_size: opts.max_message_size,
            send_queue_limit: opts.send_queue_limit,
            compression: AtomicBool::new(false),
            stats: Arc::default(),
            final_stats: OnceLock::new(),
        });
        Ok(Spawned { socket, poll })
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Callers that make the socket Closed hold no outbox lock (it is taken
    /// here, after the core lock if they hold that).
    pub(crate) fn set_state(&self, s: State) {
        if s == State::Closed {
            // The counters stop where CLOSE is queued (every CLOSE follows
            // this): bytes a linger still reads, such as a TLS
            // close_notify, are not counted.
            let _ = self.final_stats.set(self.live_stats());
        }
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

    /// wsb_get_stats: every counter, `queued_bytes` as `buffered_amount`.
    /// Once Closed, the counters as they were when CLOSE was queued.
    pub fn stats(&self) -> Snapshot {
        match self.final_stats.get() {
            Some(last) => Snapshot {
                queued_bytes: self.buffered_amount() as u64,
                ..*last
            },
            None => self.live_stats(),
        }
    }

    fn live_stats(&self) -> Snapshot {
        let (sent, queued) = {
            let ob = self.outbox.lock();
            (ob.sent, ob.buffered())
        };
        self.stats.snapshot(sent, queued)
    }

    /// Count a send `Socket::send` accepted (under the outbox lock): a
    /// data message in the outbox's counters, a `wsb_ping` as a ping.
    fn count_accepted(&self, ob: &mut Outbox, opcode: u8, len: usize) {
        if opcode == 9 {
            self.stats.ping_sent();
        } else {
            ob.sent.message(len);
        }
    }

    /// Queue or write one message (`opcode` 1 text, 2 binary, 9 ping).
    /// Never blocks on the network.
    pub fn send(&self, opcode: u8, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        if len > self.max_message_size {
            return Err(Error::new(
                wsb_result::WSB_ERR_MESSAGE_TOO_LARGE,
                format!(
                    "message of {len} bytes exceeds the limit of {} bytes",
                    self.max_message_size
                ),
            ));
        }
        let not_open = || Error::new(wsb_result::WSB_ERR_NOT_OPEN, "socket is closing or closed");
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
                    self.count_accepted(&mut ob, opcode, len);
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
        self.count_accepted(&mut ob, opcode, len);
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
                wsb_result::WSB_ERR_QUEUE_FULL,
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

    pub fn wait_open(&self, timeout: Duration) -> Result<wsb_result> {
        let deadline = deadline_after(timeout);
        match self
            .events
            .wait_open(deadline)
            .map_err(|_| Error::invalid_handle())?
        {
            None => Ok(wsb_result::WSB_TIMEOUT),
            Some(OpenOutcome::Opened) => Ok(wsb_result::WSB_OK),
            Some(OpenOutcome::Failed(e)) => Err(e),
            Some(OpenOutcome::Abandoned) => Err(Error::new(
                wsb_result::WSB_ERR_NOT_OPEN,
                "the connect was abandoned (wsb_close, wsb_free or wsb_shutdown)",
            )),
        }
    }

    pub(crate) fn abandoned(&self) -> bool {
        self.abort.load(Ordering::Acquire) || self.state() == State::Closed
    }
}
