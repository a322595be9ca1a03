//! Per-socket statistics (`wsb_get_stats`): bytes on the wire and as
//! payload, messages, keepalive pings and their round trip, and how long
//! each phase of the connect took.
//!
//! Two homes, so that counting costs the send path nothing it does not
//! already pay:
//! - [`Sent`]: what is counted under the outbox lock (messages and payload
//!   accepted by `wsb_send_*`, bytes the outbox writes to a plain socket):
//!   plain integers in the [`crate::outbox::Outbox`], the lock the sender
//!   holds anyway;
//! - [`Stats`]: everything else, relaxed atomics owned by the socket
//!   (through an `Arc`, shared with its `Transport`): reads (counted once per
//!   `read_raw` batch, messages once per parsing round), TLS records and the
//!   connect's own writes, pings and pongs, the connect phases.
//!
//! [`Stats::snapshot`] adds the two. Each counter is exact; a snapshot taken
//! while the socket is busy is not one instant (the counters are read one by
//! one), which no caller can tell apart from a slightly earlier or later call.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counted under the outbox lock (see the module doc).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Text and binary messages accepted by `wsb_send_*` (while connecting
    /// too), whether or not they reach the wire.
    pub messages: u64,
    /// Their payload bytes, before compression.
    pub payload: u64,
    /// Bytes the outbox wrote to a plain socket.
    pub wire: u64,
}

impl Sent {
    /// The host's send of a `len`-byte data message was accepted.
    pub fn message(&mut self, len: usize) {
        self.messages += 1;
        self.payload += len as u64;
    }
}

/// A phase of the connect, timed by [`Stats::phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dns,
    Tcp,
    Tls,
    Upgrade,
}

/// The socket's atomic counters (see the module doc).
#[derive(Debug, Default)]
pub struct Stats {
    wire_in: AtomicU64,
    wire_out: AtomicU64,
    payload_in: AtomicU64,
    messages_in: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
    last_ping_rtt_us: AtomicU64,
    dns_us: AtomicU64,
    tcp_us: AtomicU64,
    tls_us: AtomicU64,
    upgrade_us: AtomicU64,
}

/// Times a phase of the connect, from [`Stats::phase`] to its drop.
#[must_use = "the phase ends when the timer is dropped"]
pub struct PhaseTimer<'a> {
    slot: &'a AtomicU64,
    start: Instant,
}

impl Drop for PhaseTimer<'_> {
    fn drop(&mut self) {
        self.slot.store(micros(self.start.elapsed()), Relaxed);
    }
}

/// One reading of every counter, as `wsb_stats` reports it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub wire_bytes_in: u64,
    pub wire_bytes_out: u64,
    pub payload_bytes_in: u64,
    pub payload_bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub last_ping_rtt_us: u64,
    pub queued_bytes: u64,
    pub dns_us: u64,
    pub tcp_us: u64,
    pub tls_us: u64,
    pub upgrade_us: u64,
}

/// Whole microseconds, at least 1: 0 stays "did not happen".
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Stats {
    /// `n` bytes were read from the TCP socket.
    pub fn wire_in(&self, n: usize) {
        if n > 0 {
            self.wire_in.fetch_add(n as u64, Relaxed);
        }
    }

    /// `n` bytes were written to the TCP socket (other than by the outbox
    /// on a plain socket, which counts in [`Sent::wire`]).
    pub fn wire_out(&self, n: usize) {
        if n > 0 {
            self.wire_out.fetch_add(n as u64, Relaxed);
        }
    }

    /// `messages` data messages of `payload` bytes in all were delivered.
    pub fn received(&self, messages: u64, payload: u64) {
        if messages > 0 {
            self.messages_in.fetch_add(messages, Relaxed);
            self.payload_in.fetch_add(payload, Relaxed);
        }
    }

    /// A ping is queued (a keepalive ping, or the host's `wsb_ping`): how
    /// many were before it (a keepalive ping's sequence number).
    pub fn ping_sent(&self) -> u64 {
        self.pings_sent.fetch_add(1, Relaxed)
    }

    /// A pong arrived; `rtt` if it answered our latest keepalive ping.
    pub fn pong_received(&self, rtt: Option<Duration>) {
        self.pongs_received.fetch_add(1, Relaxed);
        if let Some(rtt) = rtt {
            self.last_ping_rtt_us.store(micros(rtt), Relaxed);
        }
    }

    /// A phase of the connect starts: its duration is recorded when the
    /// guard is dropped, so a phase that fails (an early return) is
    /// recorded too (at least 1 µs: 0 means "did not run").
    pub fn phase(&self, phase: Phase) -> PhaseTimer<'_> {
        let slot = match phase {
            Phase::Dns => &self.dns_us,
            Phase::Tcp => &self.tcp_us,
            Phase::Tls => &self.tls_us,
            Phase::Upgrade => &self.upgrade_us,
        };
        PhaseTimer {
            slot,
            start: Instant::now(),
        }
    }

    /// Every counter: these, plus what the outbox counted (`sent`) and the
    /// payload bytes it holds (`queued`, as `wsb_buffered_amount`).
    pub fn snapshot(&self, sent: Sent, queued: usize) -> Snapshot {
        Snapshot {
            wire_bytes_in: self.wire_in.load(Relaxed),
            wire_bytes_out: self.wire_out.load(Relaxed) + sent.wire,
            payload_bytes_in: self.payload_in.load(Relaxed),
            payload_bytes_out: sent.payload,
            messages_in: self.messages_in.load(Relaxed),
            messages_out: sent.messages,
            pings_sent: self.pings_sent.load(Relaxed),
            pongs_received: self.pongs_received.load(Relaxed),
            last_ping_rtt_us: self.last_ping_rtt_us.load(Relaxed),
            queued_bytes: queued as u64,
            dns_us: self.dns_us.load(Relaxed),
            tcp_us: self.tcp_us.load(Relaxed),
            tls_us: self.tls_us.load(Relaxed),
            upgrade_us: self.upgrade_us.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_adds_both_homes() {
        let s = Stats::default();
        s.wire_in(10);
        s.wire_out(7);
        s.received(2, 30);
        s.received(0, 0);
        s.ping_sent();
        s.pong_received(None);
        s.pong_received(Some(Duration::from_nanos(10)));
        drop(s.phase(Phase::Tcp));
        let mut sent = Sent {
            wire: 5,
            ..Sent::default()
        };
        sent.message(4);
        sent.message(0);
        let snap = s.snapshot(sent, 3);
        assert_eq!(
            snap,
            Snapshot {
                wire_bytes_in: 10,
                wire_bytes_out: 12,
                payload_bytes_in: 30,
                payload_bytes_out: 4,
                messages_in: 2,
                messages_out: 2,
                pings_sent: 1,
                pongs_received: 2,
                last_ping_rtt_us: 1, // under 1 µs still shows it happened
                queued_bytes: 3,
                tcp_us: snap.tcp_us,
                ..Snapshot::default()
            }
        );
        assert!(snap.tcp_us >= 1);
        assert_eq!((snap.dns_us, snap.tls_us, snap.upgrade_us), (0, 0, 0));
    }
}
