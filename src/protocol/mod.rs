//! The WebSocket frame layer (RFC 6455 §5), owned by the crate: how a frame
//! is validated ([`read`]: bytes in → messages, control frames, faults) and
//! how a frame is written ([`write`]: masked client frames), side by side;
//! [`deflate`] is permessage-deflate (RFC 7692), used by both.
//! tungstenite supplies the upgrade's key and accept value and the
//! frame-code types (`OpCode`, `CloseCode`); it reads and writes no frames.

pub mod deflate;
pub mod read;
pub mod write;

pub use read::{Fault, Item, Payload, Reader};

use std::collections::TryReserveError;

/// Make room in `buf` for `need` bytes in all, for a message's payload as it
/// arrives: capacity doubles (from 4 KiB) but never past `limit` + 1 bytes
/// (the one over the limit holds an event's NUL, and lets inflation see
/// that it went past), reserved fallibly. `need` comes from bytes that
/// arrived, never from a length the peer declared.
pub(crate) fn reserve_within(
    buf: &mut Vec<u8>,
    need: usize,
    limit: u64,
) -> Result<(), TryReserveError> {
    if need <= buf.capacity() {
        return Ok(());
    }
    let cap_limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(4096)
        .min(cap_limit)
        .max(need);
    buf.try_reserve_exact(target - buf.len())
}

/// A frame's DEBUG log line (`frame in: text, 12 bytes, FIN`): the header's
/// facts only, never payload bytes. One wording for both directions.
pub(crate) fn frame_line(dir: &str, opcode: u8, len: u64, fin: bool, rsv1: bool) -> String {
    let kind = match opcode {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xa => "pong",
        _ => "reserved opcode",
    };
    format!(
        "frame {dir}: {kind} (0x{opcode:x}), {len} bytes{}{}",
        if fin { ", FIN" } else { ", no FIN" },
        if rsv1 { ", RSV1 (compressed)" } else { "" }
    )
}
