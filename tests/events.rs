//! Waiting for events through the C API (shared/spec/c-api.md): wait_open,
//! poll and wait timeouts, a free waking a waiting thread, the notify
//! callback calling back into the API, and a free from inside it.

mod capi;
mod support;

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use capi::*;
use support::TestServer;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result::*;

#[test]
fn wait_open_consumes_no_event_and_open_comes_first() {
    let srv = TestServer::start();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_OK);
    assert_eq!(ws.wait_open(), WSB_OK, "idempotent");
    let ev = ws.next().unwrap();
    assert_eq!(ev.kind, WSB_EVENT_OPEN);
    assert_eq!(ev.data, b"", "no subprotocol negotiated");
}

#[test]
fn poll_and_wait_timeouts() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert!(ws.poll().is_none());
    let mut ev = empty_event();
    assert_eq!(wsb_wait_event(ws.0, &mut ev, 0), WSB_TIMEOUT);
    assert_eq!(wsb_wait_event(ws.0, &mut ev, 30), WSB_TIMEOUT);
    let pending = Ws::connect(&srv.hang_url("/"), None).unwrap();
    assert_eq!(wsb_wait_open(pending.0, 20), WSB_TIMEOUT);
}

#[test]
fn free_wakes_a_thread_waiting_on_the_socket() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    std::mem::forget(ws);
    let waiter = std::thread::spawn(move || {
        let mut ev = empty_event();
        wsb_wait_event(h, &mut ev, WAIT_MS)
    });
    // Whether the waiter parks before or after the free, it returns promptly
    // with INVALID_HANDLE rather than sleeping out its 20 s timeout.
    assert_eq!(wsb_free(h), WSB_OK);
    assert_eq!(waiter.join().unwrap(), WSB_ERR_INVALID_HANDLE);
}

struct NotifyCtx {
    calls: AtomicUsize,
    texts: parking_lot::Mutex<Vec<String>>,
    closed: parking_lot::Mutex<Option<u16>>,
    done: parking_lot::Condvar,
}

/// Drains events from inside the callback (on the I/O thread) and replies:
/// calls back into poll/state/send/close without deadlock.
extern "C" fn reentrant_notify(user: *mut c_void, s: wsb_socket) {
    // SAFETY: user points to the NotifyCtx owned by the test, which outlives the socket.
    let ctx = unsafe { &*(user as *const NotifyCtx) };
    ctx.calls.fetch_add(1, Ordering::SeqCst);
    let mut ev = empty_event();
    let mut st = WSB_STATE_OPEN;
    assert_eq!(wsb_get_state(s, &mut st), WSB_OK);
    while wsb_poll(s, &mut ev) == WSB_OK {
        let e = copy_event(&ev);
        match e.kind {
            WSB_EVENT_OPEN => {
                wsb_send_text(s, c"one".as_ptr(), 3);
            }
            WSB_EVENT_TEXT => {
                let t = e.text();
                let n = {
                    let mut v = ctx.texts.lock();
                    v.push(t.clone());
                    v.len()
                };
                if n < 3 {
                    let next = format!("{t}+");
                    wsb_send_text(s, next.as_ptr() as *const c_char, next.len());
                } else {
                    assert_eq!(wsb_close(s, 1000, c"from callback".as_ptr()), WSB_OK);
                }
            }
            WSB_EVENT_CLOSE => {
                *ctx.closed.lock() = Some(e.close_code);
                ctx.done.notify_all();
            }
            _ => {}
        }
    }
}

#[test]
fn notify_callback_may_call_back_into_the_api() {
    let srv = TestServer::start();
    let ctx = Box::new(NotifyCtx {
        calls: AtomicUsize::new(0),
        texts: parking_lot::Mutex::new(Vec::new()),
        closed: parking_lot::Mutex::new(None),
        done: parking_lot::Condvar::new(),
    });
    let ws = Ws::connect(&srv.hang_url("/"), None).unwrap();
    drop(ws); // unrelated socket freed meanwhile: no effect
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    let user = &*ctx as *const NotifyCtx as *mut c_void;
    assert_eq!(wsb_set_notify(ws.0, Some(reentrant_notify), user), WSB_OK);
    // The OPEN may have been queued before the callback was set: kick it.
    reentrant_notify(user, ws.0);
    {
        let mut closed = ctx.closed.lock();
        while closed.is_none() {
            assert!(
                !ctx.done.wait_for(&mut closed, WAIT).timed_out(),
                "no CLOSE"
            );
        }
        assert_eq!(*closed, Some(1000));
    }
    assert_eq!(*ctx.texts.lock(), ["one", "one+", "one++"]);
    assert!(ctx.calls.load(Ordering::SeqCst) >= 2);
    drop(ws); // wsb_free: after it returns no callback runs, so ctx may go
    drop(ctx);
}

extern "C" fn free_in_callback(user: *mut c_void, s: wsb_socket) {
    // SAFETY: user points to an AtomicUsize owned by the test.
    let freed = unsafe { &*(user as *const AtomicUsize) };
    let mut ev = empty_event();
    while wsb_poll(s, &mut ev) == WSB_OK {
        if copy_event(&ev).kind == WSB_EVENT_TEXT {
            assert_eq!(wsb_free(s), WSB_OK);
            freed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

#[test]
fn free_from_inside_the_callback() {
    let srv = TestServer::start();
    let freed = Box::new(AtomicUsize::new(0));
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    std::mem::forget(ws);
    let user = &*freed as *const AtomicUsize as *mut c_void;
    assert_eq!(wsb_set_notify(h, Some(free_in_callback), user), WSB_OK);
    let mut st = WSB_STATE_OPEN;
    assert_eq!(wsb_send_text(h, c"free me".as_ptr(), 7), WSB_OK);
    // The server sees the 1001 close the free started.
    let c = srv.wait_client_closes(1, WAIT);
    assert_eq!(c[0].code, Some(1001));
    assert_eq!(freed.load(Ordering::SeqCst), 1);
    assert_eq!(wsb_get_state(h, &mut st), WSB_ERR_INVALID_HANDLE);
}
