//! Shared by the frame targets: the transport's way of feeding
//! `wsbridge::protocol::Reader` (bytes arrive in chunks; what a step leaves
//! unconsumed stays in front of the next chunk), with the reader's
//! invariants checked at every step, and a counting allocator to see what
//! the reader holds.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use wsbridge::protocol::deflate::Agreed;
use wsbridge::protocol::{Fault, Item, Payload, Reader};

/// Counts live heap bytes (libFuzzer runs one input at a time, on one
/// thread: the count around a call is what that call allocated or freed).
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

/// An item as the harness keeps it (owned, comparable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Message { text: bool, payload: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A valid peer close.
    Close(u16, String),
    /// The peer's close frame, invalid.
    BadClose(Fault),
    Fault(Fault),
}

/// One run of a reader over an input.
#[derive(Debug)]
pub struct Run {
    /// Each item, with the input offset just past the bytes consumed with it.
    pub items: Vec<(Got, usize)>,
    /// The reader was mid-message when the input ended.
    pub mid_message: bool,
}

/// The size of the next chunk from one of the fuzzer's chunk bytes:
/// 1, 1, 2, 3, 5, ... up to 16 257 bytes.
pub fn chunk_size(c: u8) -> usize {
    1 + (c as usize * c as usize) / 4
}

/// Header length of the frame at the front of `b`, once its first two bytes
/// are in.
fn header_len(b: &[u8]) -> Option<usize> {
    let b1 = *b.get(1)?;
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    Some(2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 })
}

/// Payload bytes an owned item carries (what the reader allocated for it and
/// hands over).
fn owned_bytes(item: &Item<'_>) -> isize {
    let fault = |f: &Fault| match f {
        Fault::Protocol(s) | Fault::BadCompressedData(s) => s.capacity(),
        _ => 0,
    };
    (match item {
        Item::Message {
            payload: Payload::Owned(v),
            ..
        } => v.capacity(),
        Item::Close(Ok((_, reason))) => reason.capacity(),
        Item::Close(Err(f)) | Item::Fault(f) => fault(f),
        _ => 0,
    }) as isize
}

/// What the reader may hold besides a message buffer, with permessage-deflate:
/// the inflater (zlib-rs state and its 32 KiB window, made for the first
/// compressed message; measured at 47 551 bytes).
pub const INFLATER_ALLOWANCE: usize = 64 * 1024;

/// Feed `data` to a new reader with `limit` in chunks of the sizes `chunks`
/// gives (cycled; all of it at once if empty), as the transport does, and
/// check at every step:
/// - `used` <= input; an item consumes at least one byte;
/// - no stall: with no item, what is left unconsumed is a frame header that
///   is not all in, or a control frame (at most 14 + 125 bytes) whose
///   payload is not all in;
/// - bounded work: reads <= bytes + chunks + 1;
/// - delivered payloads are within the limit (control frames: 125 bytes),
///   text is UTF-8, an owned payload's buffer has at most limit + 1 bytes of
///   capacity (and no more than doubling what arrived, from 4 KiB);
/// - nothing is delivered after the peer's close, and no message after a
///   fault;
/// - memory: what the reader holds between calls (live heap bytes it
///   allocated and did not hand over) is within limit + 1 and within
///   2 x (bytes fed + 1), at least 4 KiB (plus the inflater's allowance
///   with permessage-deflate; inflation has no 2x-fed bound).
pub fn feed(limit: usize, deflate: Option<Agreed>, data: &[u8], chunks: &[u8]) -> Run {
    let mut reader = Reader::new(limit, deflate);
    let cap_limit = limit.saturating_add(1);
    let mut items = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    // Offset in `data` of buf[0].
    let mut base = 0usize;
    let mut fed = 0usize;
    let mut arrivals = 0usize;
    let mut reads = 0usize;
    let mut held: isize = 0;
    let mut closed = false;
    let mut faulted = false;
    while fed < data.len() {
        let n = if chunks.is_empty() {
            data.len()
        } else {
            chunk_size(chunks[arrivals % chunks.len()])
        };
        let n = n.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        arrivals += 1;
        loop {
            reads += 1;
            assert!(reads <= data.len() + arrivals + 1, "no progress");
            let before = live();
            let step = reader.read(&buf);
            held += live() - before;
            let used = step.used;
            assert!(used <= buf.len(), "used {used} of {}", buf.len());
            let Some(item) = step.item else {
                let rest = &buf[used..];
                if let Some(hl) = header_len(rest) {
                    // A whole header: a control frame (at most 125 bytes,
                    // or it would be a fault) whose payload is not all in.
                    let incomplete_control = rest.len() >= hl && rest[0] & 0x08 != 0 && {
                        let len = match hl - if rest[1] & 0x80 != 0 { 4 } else { 0 } {
                            2 => u64::from(rest[1] & 0x7f),
                            n => rest[2..n].iter().fold(0, |a, &x| (a << 8) | u64::from(x)),
                        };
                        len <= 125 && (rest.len() as u64) < hl as u64 + len
                    };
                    assert!(
                        rest.len() < hl || incomplete_control,
                        "stalled on {} bytes it could read: {:02x?}",
                        rest.len(),
                        &rest[..rest.len().min(16)]
                    );
                }
                buf.drain(..used);
                base += used;
                break;
            };
            held -= owned_bytes(&item);
            assert!(used >= 1, "an item from no bytes");
            assert!(!closed, "{item:?} after the peer's close");
            let got = match item {
                Item::Message { text, payload } => {
                    assert!(!faulted, "a message after a fault");
                    let p = payload.as_slice();
                    assert!(p.len() <= limit, "{} bytes over the limit {limit}", p.len());
                    if text {
                        assert!(std::str::from_utf8(p).is_ok(), "invalid UTF-8 as text");
                    }
                    if let Payload::Owned(v) = &payload {
                        assert!(v.capacity() <= cap_limit, "capacity {}", v.capacity());
                        if deflate.is_none() {
                            assert!(
                                v.capacity() <= (2 * (v.len() + 1)).max(4096),
                                "capacity {} for {} bytes",
                                v.capacity(),
                                v.len()
                            );
                        }
                    }
                    Got::Message {
                        text,
                        payload: p.to_vec(),
                    }
                }
                Item::Ping(p) => {
                    assert!(p.len() <= 125);
                    Got::Ping(p.to_vec())
                }
                Item::Pong(p) => {
                    assert!(p.len() <= 125);
                    Got::Pong(p.to_vec())
                }
                Item::Close(Ok((code, reason))) => {
                    closed = true;
                    Got::Close(code, reason)
                }
                Item::Close(Err(f)) => {
                    closed = true;
                    Got::BadClose(f)
                }
                Item::Fault(f) => {
                    faulted = true;
                    Got::Fault(f)
                }
            };
            items.push((got, base + used));
            buf.drain(..used);
            base += used;
        }
        let mut bound = cap_limit.min((2 * (fed + 1)).max(4096));
        if deflate.is_some() {
            bound = cap_limit.saturating_add(INFLATER_ALLOWANCE);
        }
        assert!(
            held >= 0 && held as usize <= bound,
            "the reader holds {held} bytes (limit {limit}, {fed} bytes fed)"
        );
    }
    Run {
        items,
        mid_message: reader.mid_message(),
    }
}
