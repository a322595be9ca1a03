//! The options object through the C API (shared/spec/c-api.md): NULL
//! arguments, double frees and foreign pointers, and the validation of
//! headers, subprotocols, limits and PEM root certificates.

mod capi;
mod support;

use std::ffi::{c_char, CString};
use std::ptr;

use capi::*;
use support::TestServer;
use wsbridge::ffi::options::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result::*;

#[test]
fn options_null_arguments() {
    let o = Opts::new();
    let s = CString::new("x").unwrap();
    let n = ptr::null_mut();
    assert_eq!(
        wsb_options_add_header(n, s.as_ptr(), s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_header(o.0, ptr::null(), s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_header(o.0, s.as_ptr(), ptr::null()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_subprotocol(n, s.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_subprotocol(o.0, ptr::null()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_connect_timeout(n, 1), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_options_add_root_certificates(n, s.as_ptr(), 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_add_root_certificates(o.0, ptr::null(), 0),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_verify_tls(n, false), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(
        wsb_options_set_max_message_size(n, 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_send_queue_limit(n, 1),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(wsb_options_set_keepalive(n, 1, 1), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_options_set_close_timeout(n, 1), WSB_ERR_NULL_ARGUMENT);
    wsb_options_free(ptr::null_mut()); // NULL is fine
}

#[test]
fn options_double_free_and_foreign_pointers_are_detected() {
    let p = wsb_options_new();
    wsb_options_free(p);
    wsb_options_free(p); // ignored, no double free
    assert_eq!(
        wsb_options_set_verify_tls(p, true),
        WSB_ERR_INVALID_ARGUMENT
    );
    let mut not_options = [0u64; 8];
    let fake = not_options.as_mut_ptr() as *mut wsb_options;
    assert_eq!(
        wsb_options_set_connect_timeout(fake, 5),
        WSB_ERR_INVALID_ARGUMENT
    );
    wsb_options_free(fake); // ignored
    let mut h = 0;
    let url = CString::new("ws://127.0.0.1:9/").unwrap();
    assert_eq!(
        wsb_connect(url.as_ptr(), fake, &mut h),
        WSB_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn options_reject_bad_headers_and_subprotocols() {
    let o = Opts::new();
    let add = |n: &str, v: &str| {
        let (n, v) = (CString::new(n).unwrap(), CString::new(v).unwrap());
        wsb_options_add_header(o.0, n.as_ptr(), v.as_ptr())
    };
    assert_eq!(add("X-Ok", "fine"), WSB_OK);
    assert_eq!(add("X-Bad", "a\r\nInjected: 1"), WSB_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("CR"), "{}", last_error());
    assert_eq!(add("X-Bad", "a\nb"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("Bad Name", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("X:Colon", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("Sec-WebSocket-Key", "v"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add("upgrade", "v"), WSB_ERR_INVALID_ARGUMENT);
    let sp = |p: &str| {
        let c = CString::new(p).unwrap();
        wsb_options_add_subprotocol(o.0, c.as_ptr())
    };
    assert_eq!(sp("chat.v1"), WSB_OK);
    assert_eq!(sp("a b"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(sp("a,b"), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(sp(""), WSB_ERR_INVALID_ARGUMENT);
    // Non-UTF-8 header value.
    let n = CString::new("X-Latin1").unwrap();
    let v = CString::new(vec![0xe9u8]).unwrap();
    assert_eq!(
        wsb_options_add_header(o.0, n.as_ptr(), v.as_ptr()),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_max_message_size(o.0, 0),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_send_queue_limit(o.0, 0),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(wsb_options_set_connect_timeout(o.0, 0), WSB_OK);
    assert_eq!(wsb_options_set_keepalive(o.0, 0, 0), WSB_OK);
}

#[test]
fn options_pem_validation() {
    let srv = TestServer::start();
    let o = Opts::new();
    let add = |pem: &[u8]| {
        wsb_options_add_root_certificates(o.0, pem.as_ptr() as *const c_char, pem.len())
    };
    assert_eq!(add(b"not a pem at all"), WSB_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("CERTIFICATE"), "{}", last_error());
    assert_eq!(
        add(b"-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n"),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        add(b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n"),
        WSB_ERR_INVALID_ARGUMENT,
        "DER that is not X.509"
    );
    assert_eq!(add(b""), WSB_ERR_INVALID_ARGUMENT);
    // A good one next to a bad one: nothing is added.
    let mixed = format!(
        "{}-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        srv.ca_pem
    );
    assert_eq!(add(mixed.as_bytes()), WSB_ERR_INVALID_ARGUMENT);
    assert_eq!(add(srv.ca_pem.as_bytes()), WSB_OK);
    // Not NUL-terminated is fine: pass exactly len bytes of a larger buffer.
    let mut buf = srv.ca_pem.clone().into_bytes();
    let len = buf.len();
    buf.extend_from_slice(b"garbage after");
    assert_eq!(
        wsb_options_add_root_certificates(o.0, buf.as_ptr() as *const c_char, len),
        WSB_OK
    );
}
