//! `wsb_get_stats`: a socket's counters, copied into a caller's struct that
//! may be shorter (older) or longer (newer) than this library's.

use std::mem::{offset_of, size_of};

use super::types::{wsb_socket, wsb_stats};
use super::{boundary_on, null_arg};
use crate::error::{wsb_result, Error};
use crate::registry;
use crate::stats::Snapshot;

fn to_c(s: Snapshot) -> wsb_stats {
    wsb_stats {
        size: size_of::<wsb_stats>() as u32,
        wire_bytes_in: s.wire_bytes_in,
        wire_bytes_out: s.wire_bytes_out,
        payload_bytes_in: s.payload_bytes_in,
        payload_bytes_out: s.payload_bytes_out,
        messages_in: s.messages_in,
        messages_out: s.messages_out,
        pings_sent: s.pings_sent,
        pongs_received: s.pongs_received,
        last_ping_rtt_us: s.last_ping_rtt_us,
        queued_bytes: s.queued_bytes,
        dns_us: s.dns_us,
        tcp_us: s.tcp_us,
        tls_us: s.tls_us,
        upgrade_us: s.upgrade_us,
    }
}

/// The counters start here and run, 8 bytes each with no padding between
/// them, to the end of the struct.
const FIRST: usize = offset_of!(wsb_stats, wire_bytes_in);
const COUNTER: usize = size_of::<u64>();
const _: () = assert!(FIRST + 14 * COUNTER == size_of::<wsb_stats>());

/// How many bytes from the start of the struct hold whole counters that fit
/// in a caller's `size` (never more than this library's struct).
fn filled_end(size: u32) -> usize {
    let size = (size as usize).min(size_of::<wsb_stats>());
    if size < FIRST {
        return FIRST;
    }
    FIRST + (size - FIRST) / COUNTER * COUNTER
}

/// (Addition to ABI v1.) Store the socket's statistics (see wsb_stats) in
/// `*out`.
///
/// Before the call set `out->size = sizeof(wsb_stats)`. The library fills
/// only the fields that lie entirely within the first `out->size` bytes and
/// never writes past them: a program built against an older, shorter
/// wsb_stats gets the fields it knows; one built against a newer, longer
/// wsb_stats gets the fields this library has, and the rest is left as it
/// was (zero the struct first to tell them apart). `size` itself is never
/// written. A `size` under 4 (it cannot even hold `size`: usually a
/// forgotten assignment) is WSB_ERR_INVALID_ARGUMENT, with nothing written;
/// NULL `out` is WSB_ERR_NULL_ARGUMENT.
///
/// `out` is the caller's: it is written during the call only. Works on any
/// socket until wsb_free, in every state (after CLOSE it reports the final
/// counts); after wsb_free, WSB_ERR_INVALID_HANDLE. Any thread; never blocks.
#[no_mangle]
pub extern "C" fn wsb_get_stats(s: wsb_socket, out: *mut wsb_stats) -> wsb_result {
    boundary_on(s, || {
        if out.is_null() {
            return Err(null_arg("out"));
        }
        // SAFETY: non-NULL; the caller provides a wsb_stats (of any version),
        // which starts with the u32 `size`, readable and aligned for u32.
        let size = unsafe { out.cast::<u32>().read() };
        if (size as usize) < size_of::<u32>() {
            return Err(Error::invalid_argument(format!(
                "out->size is {size}: set it to sizeof(wsb_stats) ({})",
                size_of::<wsb_stats>()
            )));
        }
        let stats = to_c(registry::with(s, |sock| Ok(sock.stats()))?);
        let end = filled_end(size);
        let src = (&stats as *const wsb_stats).cast::<u8>();
        // SAFETY: `src..src+end` lies within the local `stats` (end <=
        // size_of::<wsb_stats>()) and `FIRST..end` holds only whole u64
        // counters, no padding, so every byte copied is initialised. The
        // destination is the caller's struct, writable for `size` bytes
        // (its contract), and `end <= size` once `end > FIRST`; the two do
        // not overlap (one is on this stack frame). Bytes only: no
        // reference to the caller's (possibly shorter) struct is made.
        unsafe {
            std::ptr::copy_nonoverlapping(src.add(FIRST), out.cast::<u8>().add(FIRST), end - FIRST);
        }
        Ok(wsb_result::WSB_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_counters_within_size_are_filled() {
        let all = size_of::<wsb_stats>();
        assert_eq!(all, 120, "C layout: u32 size, 4 bytes padding, 14 u64");
        assert_eq!(FIRST, 8);
        for (size, end) in [
            (4u32, 8usize),
            (8, 8),
            (15, 8),
            (16, 16),
            (23, 16),
            (24, 24),
            (56, 56),
            (119, 112),
            (120, 120),
            (121, 120),
            (4096, 120),
            (u32::MAX, 120),
        ] {
            assert_eq!(filled_end(size), end, "size {size}");
        }
    }
}
