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
    if a != b && deflate_on && known_finding_f1(&a, &b) {
        return;
    }
    assert_eq!(a, b, "the split changed the items");
    assert_eq!(split.mid_message, whole.mid_message);
});

/// FINDING F1 (reported, not fixed here: src/ is not ours to change): a
/// compressed message with more than one problem (invalid UTF-8 text,
/// inflating past the limit, corrupt deflate data) fails with one fault or
/// another depending on how its payload was segmented: e.g. text "\xff"
/// then 100 000 zeros against a 4 KiB limit is InvalidUtf8 (1007) in 7-byte
/// pieces but InflatesPastLimit (1009) in one piece. `Reader::store` checks
/// the UTF-8 of what one `inflate` call produced only if that call
/// succeeded, and `Inflater::inflate` returns a corrupt-data error without
/// looking at the limit for the output of the same call; so the fault (and
/// the close code) is not the first problem in stream order. Tolerated only
/// in that shape (the items differ only in two such faults at the same
/// place) so that the fuzzer can go on looking for other bugs; delete this
/// when fixed.
fn known_finding_f1(a: &[Got], b: &[Got]) -> bool {
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return false;
    };
    let inflating = |g: &Got| {
        matches!(
            g,
            Got::Fault(
                Fault::InvalidUtf8(_)
                    | Fault::InflatesPastLimit { .. }
                    | Fault::BadCompressedData(_)
            )
        )
    };
    a.len() == b.len() && inflating(&a[i]) && inflating(&b[i]) && a[i + 1..] == b[i + 1..]
}
