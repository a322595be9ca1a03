//! The payload of the last polled event stays readable while another thread
//! runs wsb_shutdown (which releases every socket): until wsb_shutdown
//! returns. (Found by AddressSanitizer: the release used to free it at once.)
//! wsb_shutdown is global, so this is its own test binary with one test.

mod capi;
mod support;

use std::time::{Duration, Instant};

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn polled_payload_stays_valid_during_a_concurrent_shutdown() {
    let srv = TestServer::start();
    let payload: String = (0..4096).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.send_text(&payload), WSB_OK);
    // Keep the raw event: its data points into the library.
    let mut ev = empty_event();
    let deadline = Instant::now() + T;
    loop {
        assert!(Instant::now() < deadline, "no TEXT event");
        assert_eq!(wsb_wait_event(ws.0, &mut ev, 1000), WSB_OK);
        if ev.kind == WSB_EVENT_TEXT {
            break;
        }
    }
    // A peer that never answers our close keeps the shutdown waiting (up to
    // its timeout) after it has released every socket.
    let silent = Ws::open(&srv.url("/silent"), None);
    let shutdown = std::thread::spawn(|| wsb_shutdown(3000));
    // The shutdown has started once handles are refused, and has released
    // the echo socket once that socket's I/O thread is gone (it answers the
    // 1001 close at once); only the silent one is left.
    let deadline = Instant::now() + T;
    // (Asked with wsb_get_state: a poll on this socket would end `ev`.)
    let mut state = wsbridge::ffi::types::wsb_state::WSB_STATE_OPEN;
    while wsb_get_state(ws.0, &mut state) == WSB_OK {
        assert!(Instant::now() < deadline, "shutdown never started");
        std::thread::yield_now();
    }
    while io_threads() > 1 {
        assert!(Instant::now() < deadline, "the echo socket never closed");
        std::thread::yield_now();
    }
    assert!(
        !shutdown.is_finished(),
        "the silent socket holds the shutdown"
    );
    // SAFETY: the library said data[0..len) is valid until the next poll on
    // this socket, its wsb_free, or (this test) the end of wsb_shutdown.
    let data = unsafe { std::slice::from_raw_parts(ev.data.cast::<u8>(), ev.len) };
    assert!(
        data == payload.as_bytes(),
        "payload changed under a running shutdown"
    );
    shutdown.join().unwrap();
    assert_eq!(io_threads(), 0);
    // Both handles were invalidated by the shutdown: their wsb_free (on drop)
    // just reports that.
    assert_eq!(wsb_free(ws.0), WSB_ERR_INVALID_HANDLE);
    assert_eq!(wsb_free(silent.0), WSB_ERR_INVALID_HANDLE);
}
