//! wsb_shutdown: global, so these checks run in one test, in sequence, in
//! their own test binary (no other test's sockets are affected).

mod capi;
mod support;

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result::*;

const T: Duration = Duration::from_secs(20);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

static CALLBACKS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_notify(_: *mut c_void, _: wsb_socket) {
    CALLBACKS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn shutdown_in_callback(_: *mut c_void, s: wsb_socket) {
    let mut ev = empty_event();
    while wsb_poll(s, &mut ev) == wsbridge::wsb_result::WSB_OK {
        if ev.kind == WSB_EVENT_TEXT {
            wsb_shutdown(1000);
            CALLBACKS.fetch_add(1000, Ordering::SeqCst);
            return;
        }
    }
}

#[test]
fn shutdown_closes_everything_joins_threads_and_allows_reuse() {
    let srv = TestServer::start();
    assert!(srv.wait_idle(T));
    let fds_before = open_fds();
    assert_eq!(io_threads(), 0);

    // 1. Many live sockets in every state, with waiters blocked on some.
    let mut open = Vec::new();
    for _ in 0..20 {
        let ws = Ws::open(&srv.url("/echo"), None);
        assert_eq!(ws.send_text("x"), WSB_OK);
        assert_eq!(
            wsb_set_notify(ws.0, Some(count_notify), std::ptr::null_mut()),
            WSB_OK
        );
        open.push(ws);
    }
    let connecting = Ws::connect(&srv.hang_url("/"), None).unwrap();
    let closing = Ws::open(&srv.url("/silent"), None);
    assert_eq!(closing.close(1000, None), WSB_OK);
    let freed = Ws::open(&srv.url("/silent"), None);
    drop(freed); // freed but still closing in the background
    let handles: Vec<wsb_socket> = open.iter().map(|w| w.0).collect();
    let h_connecting = connecting.0;
    let waiter_open = std::thread::spawn(move || wsb_wait_open(h_connecting, 20_000));
    let h0 = handles[0];
    let waiter_event = std::thread::spawn(move || {
        // Drains the echo, then blocks until shutdown invalidates the handle.
        let mut ev = empty_event();
        loop {
            match wsb_wait_event(h0, &mut ev, 20_000) {
                WSB_OK => continue,
                other => return other,
            }
        }
    });
    assert!(io_threads() >= 23);

    wsb_shutdown(500);

    // Every I/O thread has been joined; waiters returned promptly.
    assert_eq!(io_threads(), 0);
    let r = waiter_open.join().unwrap();
    assert!(
        matches!(
            r,
            WSB_ERR_INVALID_HANDLE | WSB_ERR_SHUTDOWN | WSB_ERR_NOT_OPEN
        ),
        "{r:?}"
    );
    let r = waiter_event.join().unwrap();
    assert!(
        matches!(r, WSB_ERR_INVALID_HANDLE | WSB_ERR_SHUTDOWN),
        "{r:?}"
    );
    // Every handle issued before is invalid.
    for h in handles.iter().chain([&h_connecting, &closing.0]) {
        let mut st = wsbridge::ffi::types::wsb_state::WSB_STATE_OPEN;
        assert_eq!(wsb_get_state(*h, &mut st), WSB_ERR_INVALID_HANDLE);
    }
    // Open sockets were closed with 1001 (the server saw the close frames).
    let closes = srv.wait_client_closes(20, T);
    assert!(
        closes.iter().filter(|c| c.code == Some(1001)).count() >= 20,
        "{closes:?}"
    );
    // No callback starts after shutdown returned.
    let calls = CALLBACKS.load(Ordering::SeqCst);
    for ws in open {
        std::mem::forget(ws); // already invalid: no wsb_free
    }
    std::mem::forget(connecting);
    std::mem::forget(closing);
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), calls);

    // 2. Descriptors are back to the baseline once the server has seen the
    //    connections end.
    assert!(srv.wait_idle(T), "server connections still open");
    // (The test server holds its accepted hang-port sockets until it drops.)
    assert_eq!(
        open_fds(),
        fds_before + srv.hang_connections(),
        "file descriptors leaked"
    );

    // 3. The library works again.
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.send_text("again"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "again");

    // 4. wsb_shutdown from inside a notify callback (on an I/O thread) returns.
    let ws2 = Ws::open(&srv.url("/echo"), None);
    assert_eq!(
        wsb_set_notify(ws2.0, Some(shutdown_in_callback), std::ptr::null_mut()),
        WSB_OK
    );
    assert_eq!(ws2.send_text("trigger"), WSB_OK);
    // That shutdown closes ws too; its CLOSE cannot be polled (handle gone),
    // so wait for the server to see both close frames.
    let before = closes.len();
    let after = srv.wait_client_closes(before + 2, T);
    assert!(after.len() >= before + 2, "{after:?}");
    assert!(CALLBACKS.load(Ordering::SeqCst) >= 1000);
    std::mem::forget(ws);
    std::mem::forget(ws2);
    wsb_shutdown(1000);
    assert_eq!(io_threads(), 0);
}
