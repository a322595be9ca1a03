//! Per-socket event queue: filled by the I/O thread, drained by the host with
//! poll/wait. One `parking_lot` mutex + condvar; waiters park, never spin.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{wsb_result, Error};
use crate::log::log;
use crate::protocol::Payload;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Open = 1,
    Text = 2,
    Binary = 3,
    Error = 4,
    Close = 5,
}

/// One event. `data` always ends with one extra NUL byte that is not part of
/// the payload, so C sees `data[len] == 0` without a second copy.
#[derive(Debug)]
pub struct Event {
    pub kind: Kind,
    pub error: wsb_result,
    pub close_code: u16,
    pub clean: bool,
    data: Vec<u8>,
}

/// Payload buffers up to this capacity are recycled (see [`Spares`]).
const RECYCLE_CAPACITY: usize = 512;
/// At most this many recycled buffers wait on each side.
const RECYCLE_COUNT: usize = 256;

/// Emptied payload buffers of small events, handed back from the host's
/// side (the polled event it replaced) to the I/O thread, which fills them
/// with the next messages: no malloc on one thread and free on another per
/// message. At most RECYCLE_COUNT buffers of RECYCLE_CAPACITY bytes each.
#[derive(Debug, Default)]
pub struct Spares(Vec<Vec<u8>>);

impl Spares {
    fn take(&mut self, len: usize) -> Vec<u8> {
        match self.0.pop() {
            Some(mut b) if b.capacity() > len => {
                b.clear();
                b
            }
            _ => Vec::with_capacity(len + 1),
        }
    }

    fn give(&mut self, b: Vec<u8>) {
        if b.capacity() <= RECYCLE_CAPACITY && self.0.len() < RECYCLE_COUNT {
            self.0.push(b);
        }
    }

    /// Let go of every buffer (the socket went quiet).
    pub fn clear(&mut self) {
        self.0 = Vec::new();
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Event {
    fn with_payload(kind: Kind, payload: &[u8]) -> Event {
        Self::with_payload_in(kind, payload, Vec::with_capacity(payload.len() + 1))
    }
    fn with_payload_in(kind: Kind, payload: &[u8], mut data: Vec<u8>) -> Event {
        data.extend_from_slice(payload);
        data.push(0);
        Event {
            kind,
            error: wsb_result::WSB_OK,
            close_code: 0,
            clean: false,
            data,
        }
    }
    pub fn open(subprotocol: &str) -> Event {
        Self::with_payload(Kind::Open, subprotocol.as_bytes())
    }
    /// A text or binary event: a borrowed payload is copied into a buffer
    /// from `spares` (if one fits); an assembled one becomes the event's.
    pub fn data_in(text: bool, payload: Payload<'_>, spares: &mut Spares) -> Event {
        let kind = if text { Kind::Text } else { Kind::Binary };
        match payload {
            Payload::Borrowed(p) => Self::with_payload_in(kind, p, spares.take(p.len())),
            Payload::Owned(p) => Self::with_payload_in(kind, &[], p),
        }
    }
    pub fn error(err: &Error) -> Event {
        let mut e = Self::with_payload(Kind::Error, err.detail.as_bytes());
        e.error = err.code;
        e
    }
    pub fn close(code: u16, clean: bool, reason: &str) -> Event {
        let mut e = Self::with_payload(Kind::Close, reason.as_bytes());
        e.close_code = code;
        e.clean = clean;
        e
    }
    /// The rest of the event's log line: ` 1000 clean, reason "bye"`,
    /// ` WSB_ERR_TLS: detail`, ` subprotocol "chat"`. Never a message's
    /// payload.
    fn describe(&self) -> String {
        let data = String::from_utf8_lossy(self.payload());
        match self.kind {
            Kind::Open if data.is_empty() => String::new(),
            Kind::Open => format!(", subprotocol {data:?}"),
            Kind::Error => format!(" {}: {data}", self.error.name_cstr().to_string_lossy()),
            Kind::Close => format!(
                " {} {}, reason {data:?}",
                self.close_code,
                if self.clean { "clean" } else { "not clean" }
            ),
            Kind::Text | Kind::Binary => String::new(),
        }
    }

    /// Payload without the trailing NUL.
    pub fn payload(&self) -> &[u8] {
        &self.data[..self.data.len() - 1]
    }
}

/// The socket was freed while a thread waited on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freed;

/// How the connect attempt ended, for `wsb_wait_open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened,
    Failed(Error),
    Abandoned,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Event>,
    /// The last polled event: its payload stays valid until the next poll.
    current: Option<Event>,
    open: Option<OpenOutcome>,
    /// The CLOSE event has been queued: nothing may follow it.
    close_queued: bool,
    /// The handle was freed: nobody will poll, so events are dropped.
    discard: bool,
    /// Buffers of polled events, for the I/O thread to reuse.
    spares: Spares,
}

#[derive(Debug, Default)]
pub struct EventQueue {
    inner: Mutex<Inner>,
    cond: Condvar,
    /// The socket (for the log: OPEN, ERROR and CLOSE are logged as they
    /// are queued).
    id: u64,
}

/// What `poll`/`wait` hand out: a copy of the header fields and a pointer to
/// the payload, which lives in the queue's `current` slot.
#[derive(Debug, Clone, Copy)]
pub struct Polled {
    pub kind: Kind,
    pub error: wsb_result,
    pub close_code: u16,
    pub clean: bool,
    pub data: *const u8,
    pub len: usize,
}

impl EventQueue {
    /// The queue of socket `id`.
    pub fn new(id: u64) -> EventQueue {
        EventQueue {
            id,
            ..EventQueue::default()
        }
    }

    /// Queue events (in order). Returns false (and drops them) if CLOSE was
    /// already queued. A CLOSE among them closes the queue after it.
    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) -> bool {
        let pushed = Self::push_locked(self.id, &mut self.inner.lock(), events);
        if pushed {
            self.cond.notify_all();
        }
        pushed
    }

    fn push_locked(id: u64, g: &mut Inner, events: impl IntoIterator<Item = Event>) -> bool {
        let mut pushed = false;
        for ev in events {
            if g.close_queued {
                break;
            }
            match ev.kind {
                Kind::Open => {
                    g.open.get_or_insert(OpenOutcome::Opened);
                    log!(Info, id, "OPEN{}", ev.describe());
                }
                Kind::Close => {
                    g.close_queued = true;
                    g.open.get_or_insert(OpenOutcome::Abandoned);
                    log!(Info, id, "CLOSE{}", ev.describe());
                }
                Kind::Error => log!(Error, id, "ERROR{}", ev.describe()),
                Kind::Text | Kind::Binary => {}
            }
            if !g.discard {
                g.queue.push_back(ev);
            }
            pushed = true;
        }
        pushed
    }

    pub fn push(&self, ev: Event) -> bool {
        self.push_all([ev])
    }

    /// `push_all` for the I/O thread: drains `events` (keeping its
    /// capacity) and tops up `spares` with the buffers the host has
    /// finished with.
    pub fn push_batch(&self, events: &mut Vec<Event>, spares: &mut Spares) -> bool {
        let pushed = {
            let mut g = self.inner.lock();
            if spares.0.len() < RECYCLE_COUNT / 2 {
                spares.0.append(&mut g.spares.0);
            }
            Self::push_locked(self.id, &mut g, events.drain(..))
        };
        if pushed {
            self.cond.notify_all();
        }
        pushed
    }

    /// Let go of recycled buffers (the socket went quiet).
    pub fn trim(&self) {
        self.inner.lock().spares.clear();
    }

    pub fn has_spares(&self) -> bool {
        !self.inner.lock().spares.is_empty()
    }

    /// Record a failed open: ERROR then CLOSE 1006, and the outcome for waiters.
    pub fn fail_open(&self, err: &Error) -> bool {
        {
            let mut g = self.inner.lock();
            if g.close_queued {
                return false;
            }
            g.open = Some(OpenOutcome::Failed(err.clone()));
        }
        self.push_all([Event::error(err), Event::close(1006, false, "")])
    }

    /// Record an abandoned connect (local close while connecting): CLOSE 1006.
    pub fn abandon(&self) -> bool {
        {
            let mut g = self.inner.lock();
            if g.close_queued {
                return false;
            }
            g.open = Some(OpenOutcome::Abandoned);
        }
        self.push(Event::close(1006, false, ""))
    }

    /// No event is waiting to be polled.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().queue.is_empty()
    }

    fn take_next(g: &mut Inner) -> Option<Polled> {
        let next = g.queue.pop_front();
        if let Some(old) = std::mem::replace(&mut g.current, next) {
            g.spares.give(old.data);
        }
        g.current.as_ref().map(|ev| Polled {
            kind: ev.kind,
            error: ev.error,
            close_code: ev.close_code,
            clean: ev.clean,
            data: ev.data.as_ptr(),
            len: ev.data.len() - 1,
        })
    }

    pub fn poll(&self) -> Option<Polled> {
        Self::take_next(&mut self.inner.lock())
    }

    /// Wait up to `timeout` for an event; `on_empty` runs (under the queue's
    /// lock) if none is waiting at first. `Err(Freed)` if the socket was
    /// freed meanwhile (the handle is gone).
    pub fn wait(
        &self,
        timeout: Duration,
        on_empty: impl FnOnce(),
    ) -> Result<Option<Polled>, Freed> {
        let mut g = self.inner.lock();
        if g.discard {
            return Err(Freed);
        }
        if !g.queue.is_empty() {
            return Ok(Self::take_next(&mut g));
        }
        on_empty();
        // The clock is read only when the thread has to sleep.
        let deadline = crate::time::deadline_after(timeout);
        loop {
            if g.discard {
                return Err(Freed);
            }
            if !g.queue.is_empty() {
                return Ok(Self::take_next(&mut g));
            }
            if self.cond.wait_until(&mut g, deadline).timed_out() {
                return Ok(Self::take_next(&mut g));
            }
        }
    }

    /// Wait up to `deadline` for the open outcome (`Ok(None)` on timeout,
    /// `Err(Freed)` if the socket was freed meanwhile).
    pub fn wait_open(&self, deadline: Instant) -> Result<Option<OpenOutcome>, Freed> {
        let mut g = self.inner.lock();
        loop {
            if g.discard {
                return Err(Freed);
            }
            if let Some(o) = &g.open {
                return Ok(Some(o.clone()));
            }
            if self.cond.wait_until(&mut g, deadline).timed_out() {
                return Ok(g.open.clone());
            }
        }
    }

    /// Drop everything queued and all later events (after wsb_free nobody can
    /// poll any more). The last polled event is kept until the socket itself
    /// goes: a thread may still be reading its payload while another thread
    /// runs wsb_shutdown, which releases every socket.
    pub fn discard(&self) {
        let mut g = self.inner.lock();
        g.discard = true;
        g.queue.clear();
        drop(g);
        self.cond.notify_all();
    }
}
