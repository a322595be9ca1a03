//! The library as a whole through the C API (shared/spec/c-api.md): its
//! version and ABI, the result codes' names, the last error, and the
//! handle rules (invalid and stale handles everywhere, NULL out pointers,
//! handles never reused).

mod capi;
mod support;

use std::ptr;

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::wsb_result::*;

#[test]
fn version_abi_and_result_names() {
    // SAFETY: static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(wsb_version()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(wsb_abi_version(), 1);
    for (code, name) in [
        (WSB_OK, "WSB_OK"),
        (WSB_EMPTY, "WSB_EMPTY"),
        (WSB_TIMEOUT, "WSB_TIMEOUT"),
        (WSB_ERR_NULL_ARGUMENT, "WSB_ERR_NULL_ARGUMENT"),
        (WSB_ERR_TLS, "WSB_ERR_TLS"),
        (WSB_ERR_INTERNAL, "WSB_ERR_INTERNAL"),
        (WSB_ERR_IN_LOG_HOOK, "WSB_ERR_IN_LOG_HOOK"),
    ] {
        assert_eq!(result_name(code), name);
    }
    for raw in [-18, 3, 1000, i32::MIN, i32::MAX] {
        // SAFETY: static string.
        let n = unsafe { std::ffi::CStr::from_ptr(wsb_result_name(raw)) };
        assert_eq!(n.to_str().unwrap(), "WSB_UNKNOWN");
    }
}

#[test]
fn last_error_is_empty_then_names_the_cause() {
    let t = std::thread::spawn(|| {
        assert_eq!(last_error(), "");
        let mut h = 0;
        assert_eq!(
            wsb_connect(ptr::null(), ptr::null(), &mut h),
            WSB_ERR_NULL_ARGUMENT
        );
        assert!(last_error().contains("url"), "{}", last_error());
    });
    t.join().unwrap();
}

#[test]
fn invalid_handles_everywhere() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    assert_eq!(wsb_free(h), WSB_OK);
    std::mem::forget(ws);
    let mut ev = empty_event();
    let mut st = WSB_STATE_OPEN;
    let mut n = 0usize;
    for bad in [h, 0, u64::MAX, h + 1_000_000] {
        assert_eq!(wsb_free(bad), WSB_ERR_INVALID_HANDLE, "double/stale free");
        assert_eq!(wsb_wait_open(bad, 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_send_text(bad, c"x".as_ptr(), 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(
            wsb_send_binary(bad, c"x".as_ptr().cast(), 1),
            WSB_ERR_INVALID_HANDLE
        );
        assert_eq!(wsb_ping(bad, ptr::null(), 0), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_close(bad, 1000, ptr::null()), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_poll(bad, &mut ev), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_wait_event(bad, &mut ev, 1), WSB_ERR_INVALID_HANDLE);
        assert_eq!(
            wsb_set_notify(bad, None, ptr::null_mut()),
            WSB_ERR_INVALID_HANDLE
        );
        assert_eq!(wsb_get_state(bad, &mut st), WSB_ERR_INVALID_HANDLE);
        assert_eq!(wsb_buffered_amount(bad, &mut n), WSB_ERR_INVALID_HANDLE);
    }
    // The freed socket was closed with 1001 in the background.
    let c = srv.wait_client_closes(1, WAIT);
    assert_eq!(c[0].code, Some(1001));
}

#[test]
fn null_out_pointers() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(wsb_poll(ws.0, ptr::null_mut()), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_wait_event(ws.0, ptr::null_mut(), 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_get_state(ws.0, ptr::null_mut()), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_buffered_amount(ws.0, ptr::null_mut()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("bytes"));
}

#[test]
fn handles_are_never_reused() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let ws = Ws::connect("ws://127.0.0.1:1/", None).unwrap();
        assert!(seen.insert(ws.0), "handle {} reused", ws.0);
    }
}
