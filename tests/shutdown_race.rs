//! wsb_shutdown racing threads that are inside the library: sending,
//! polling, waiting and querying on the very sockets being shut down.
//! wsb_shutdown is global, so this is its own test binary with one test.

mod capi;
mod support;

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result;
use wsbridge::wsb_result::*;

const T: Duration = Duration::from_secs(20);
const SOCKETS: usize = 8;
const THREADS: usize = 8;
const ROUNDS: usize = 4;
/// Calls each thread makes before the shutdown may start.
const WARMUP: usize = 200;
/// Calls each thread makes after it has seen wsb_shutdown return.
const AFTER: usize = 200;
/// Hard cap on each thread's calls (only reached if the shutdown stalls).
const MAX_CALLS: usize = 2_000_000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    SendText,
    SendBinary,
    Ping,
    Poll,
    WaitEvent,
    Buffered,
    State,
}

const OPS: [Op; 7] = [
    Op::SendText,
    Op::SendBinary,
    Op::Ping,
    Op::Poll,
    Op::WaitEvent,
    Op::Buffered,
    Op::State,
];

/// What the contract allows each call to return while a shutdown may be in
/// progress (handles still valid, closing, or already invalid).
fn allowed(op: Op, r: wsb_result) -> bool {
    match op {
        Op::SendText | Op::SendBinary | Op::Ping => matches!(
            r,
            WSB_OK
                | WSB_ERR_NOT_OPEN
                | WSB_ERR_QUEUE_FULL
                | WSB_ERR_INVALID_HANDLE
                | WSB_ERR_SHUTDOWN
        ),
        Op::Poll => matches!(
            r,
            WSB_OK | WSB_EMPTY | WSB_ERR_INVALID_HANDLE | WSB_ERR_SHUTDOWN
        ),
        Op::WaitEvent => matches!(
            r,
            WSB_OK | WSB_TIMEOUT | WSB_ERR_INVALID_HANDLE | WSB_ERR_SHUTDOWN
        ),
        Op::Buffered | Op::State => {
            matches!(r, WSB_OK | WSB_ERR_INVALID_HANDLE | WSB_ERR_SHUTDOWN)
        }
    }
}

/// One call. `own` is the socket whose events only this thread consumes.
fn call(op: Op, h: wsb_socket, own: wsb_socket) -> wsb_result {
    match op {
        Op::SendText => {
            let s = "race text";
            wsb_send_text(h, s.as_ptr() as *const c_char, s.len())
        }
        Op::SendBinary => {
            let b = [0u8, 1, 2, 3, 4, 5, 6, 7];
            wsb_send_binary(h, b.as_ptr().cast(), b.len())
        }
        Op::Ping => wsb_ping(h, b"p".as_ptr().cast(), 1),
        // The event's data is not read: it is valid until the socket's
        // wsb_free, and wsb_shutdown on the main thread frees every socket.
        Op::Poll => wsb_poll(own, &mut empty_event()),
        Op::WaitEvent => wsb_wait_event(own, &mut empty_event(), 0),
        Op::Buffered => {
            let mut n = 0usize;
            wsb_buffered_amount(h, &mut n)
        }
        Op::State => {
            let mut s = wsb_state::WSB_STATE_CLOSED;
            wsb_get_state(h, &mut s)
        }
    }
}

/// Result counts of one thread: (op, result) -> calls.
type Tally = BTreeMap<(Op, i32), usize>;

/// Loops over the sockets and the operations until it has made AFTER calls
/// past the end of the shutdown (or MAX_CALLS). Returns its tally and the
/// calls that broke the contract.
fn racer(
    i: usize,
    handles: Arc<Vec<wsb_socket>>,
    warm: Arc<Barrier>,
    done: Arc<AtomicBool>,
) -> (Tally, Vec<String>) {
    let own = handles[i];
    let mut tally = Tally::new();
    let mut bad = Vec::new();
    let mut after = 0;
    for k in 0..MAX_CALLS {
        if k == WARMUP {
            warm.wait();
        }
        // Read before the call: if wsb_shutdown had returned by then, the
        // handle must be invalid.
        let finished = done.load(Ordering::SeqCst);
        let op = OPS[(k + i) % OPS.len()];
        let h = handles[(k / OPS.len() + i) % handles.len()];
        let r = call(op, h, own);
        *tally.entry((op, r as i32)).or_default() += 1;
        let broken = !allowed(op, r) || (finished && r != WSB_ERR_INVALID_HANDLE);
        if broken && bad.len() < 20 {
            bad.push(format!(
                "thread {i} call {k}: {op:?} on {h} -> {} (after shutdown: {finished}) {}",
                result_name(r),
                last_error()
            ));
        }
        if finished {
            after += 1;
            if after == AFTER {
                break;
            }
        }
    }
    (tally, bad)
}

#[test]
fn shutdown_racing_senders_pollers_and_queries() {
    let srv = TestServer::start();
    assert!(srv.wait_idle(T));
    let fds_before = open_fds();
    assert_eq!(io_threads(), 0);
    let mut total = Tally::new();

    for round in 0..ROUNDS {
        let handles: Vec<wsb_socket> = (0..SOCKETS)
            .map(|_| {
                let ws = Ws::open(&srv.url("/echo"), None);
                let h = ws.0;
                std::mem::forget(ws); // wsb_shutdown ends it
                h
            })
            .collect();
        let handles = Arc::new(handles);
        let warm = Arc::new(Barrier::new(THREADS + 1));
        let done = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (handles, warm, done) = (handles.clone(), warm.clone(), done.clone());
                std::thread::spawn(move || racer(i, handles, warm, done))
            })
            .collect();
        // Every thread is inside its loop (past WARMUP calls) when this starts.
        warm.wait();
        wsb_shutdown(2000);
        done.store(true, Ordering::SeqCst);
        assert_eq!(io_threads(), 0, "round {round}: I/O threads left running");

        let mut bad = Vec::new();
        for t in threads {
            let (tally, b) = t.join().expect("a racing thread panicked");
            for (k, n) in tally {
                *total.entry(k).or_default() += n;
            }
            bad.extend(b);
        }
        assert!(bad.is_empty(), "round {round}: {bad:#?}");
        for &h in handles.iter() {
            let mut st = wsb_state::WSB_STATE_OPEN;
            assert_eq!(wsb_get_state(h, &mut st), WSB_ERR_INVALID_HANDLE);
            assert_eq!(wsb_free(h), WSB_ERR_INVALID_HANDLE);
        }
        assert!(srv.wait_idle(T), "round {round}: server connections open");
        assert_eq!(
            open_fds(),
            fds_before,
            "round {round}: file descriptors leaked"
        );
    }

    for ((op, r), n) in &total {
        let name = result_name(wsb_result::from_raw(*r).expect("a wsb_result"));
        eprintln!("shutdown race: {op:?} -> {name}: {n}");
    }
    // The race did hit both sides: calls that worked and calls that found
    // the handle gone.
    assert!(total.iter().any(|((_, r), _)| *r == WSB_OK as i32));
    assert!(total
        .iter()
        .any(|((_, r), _)| *r == WSB_ERR_INVALID_HANDLE as i32));

    // The library works again.
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.send_text("again"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "again");
    drop(ws);
    wsb_shutdown(2000);
    assert_eq!(io_threads(), 0);
}
