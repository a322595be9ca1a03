//! Arbitrary bytes as the server's side of a connection after a valid
//! handshake, fed to the crate's frame reader (`wsbridge::protocol::Reader`)
//! in chunks whose sizes the fuzzer picks, as the transport feeds it (what a
//! step leaves unconsumed stays in front of the next chunk).
//!
//! Input: `[config][n][n' chunk-size bytes][server bytes]`:
//! - config bits 0-2: the limit (max_message_size), one of `LIMITS`, which
//!   include `usize::MAX` (`SIZE_MAX`: no limit) and 64 KiB; bit 3:
//!   permessage-deflate negotiated; bit 4: with server_no_context_takeover;
//! - `n % 8 + 1` bytes of chunk sizes (see `common::chunk_size`), cycled.
//!
//! Invariants (see `common::feed`): no panic, no hang (bounded reads), no
//! stall, `used` within the input, text is UTF-8, payloads within the
//! limit, nothing after the peer's close nor a message after a fault, the
//! reader's memory within limit + 1 (and twice what arrived); and the same
//! items whether the bytes arrive in the fuzzer's chunks or all at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbridge::protocol::deflate::Agreed;
use wsbridge::protocol::Fault;

#[path = "common.rs"]
mod common;

use common::Got;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

const LIMITS: [usize; 8] = [
    usize::MAX,
    64 * 1024,
    1,
    16,
    125,
    126,
    4096,
    65535,
];

fuzz_target!(|input: &[u8]| {
    let [config, n, rest @ ..] = input else {
        return;
    };
    let limit = LIMITS[usize::from(config & 7)];
    let deflate = (config & 8 != 0).then_some(Agreed {
        client_window: 15,
        server_window: 15,
        client_no_context_takeover: false,
        server_no_context_takeover: config & 16 != 0,
    });
    let nchunks = usize::from(n % 8) + 1;
    let (chunks, data) = rest.split_at(nchunks.min(rest.len()));
    let split = common::feed(limit, deflate, data, chunks);
    let whole = common::feed(limit, deflate, data, &[]);
    // zlib-rs words the same corrupt-data error differently depending on
    // whether its fast path ran (on how much input one call had): with
    // permessage-deflate, a corrupt-data fault's detail is not compared.
    let deflate_on = deflate.is_some();
    let items = |r: &common::Run| {
        r.items
            .iter()
            .map(|(g, _)| match g {
                Got::Fault(Fault::BadCompressedData(_)) if deflate_on => {
                    Got::Fault(Fault::BadCompressedData(String::new()))
                }
                g => g.clone(),
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (items(&split), items(&whole));
    assert_eq!(a, b, "the split changed the items");
    assert_eq!(split.mid_message, whole.mid_message);
});


