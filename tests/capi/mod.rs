#![allow(dead_code)]
//! Thin helpers over the C API for the Rust FFI tests: they call the same
//! `extern "C"` functions a C host calls, with C strings and raw pointers.

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::Duration;

use wsbridge::ffi::library::*;
use wsbridge::ffi::options::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::stats::wsb_get_stats;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result;
use wsbridge::wsb_result::*;

/// Bound on every wait in the tests (never reached when things work).
pub const WAIT_MS: u32 = 20_000;
/// WAIT_MS as a Duration, for the test server's waits (`wait_client_closes`, ...).
pub const WAIT: Duration = Duration::from_millis(WAIT_MS as u64);

/// An owned copy of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub kind: wsb_event_kind,
    pub error: wsb_result,
    pub close_code: u16,
    pub clean: bool,
    pub data: Vec<u8>,
}

impl Ev {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

pub fn last_error() -> String {
    // SAFETY: wsb_last_error never returns NULL and the string is valid until
    // the next wsb_ call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(wsb_last_error()) }
        .to_string_lossy()
        .into_owned()
}

pub fn result_name(r: wsb_result) -> String {
    // SAFETY: wsb_result_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(wsb_result_name(r as i32)) }
        .to_string_lossy()
        .into_owned()
}

pub fn copy_event(ev: &wsb_event) -> Ev {
    assert!(!ev.data.is_null(), "event data is never NULL");
    // SAFETY: data points to len bytes plus a NUL, valid until the next poll.
    let all = unsafe { std::slice::from_raw_parts(ev.data as *const u8, ev.len + 1) };
    assert_eq!(all[ev.len], 0, "data[len] must be NUL");
    Ev {
        kind: ev.kind,
        error: ev.error,
        close_code: ev.close_code,
        clean: ev.clean,
        data: all[..ev.len].to_vec(),
    }
}

pub fn empty_event() -> wsb_event {
    wsb_event {
        kind: wsb_event_kind::WSB_EVENT_OPEN,
        error: WSB_OK,
        close_code: 0,
        clean: false,
        data: ptr::null(),
        len: 0,
    }
}

/// Options built from Rust; freed on drop.
pub struct Opts(pub *mut wsb_options);

impl Opts {
    pub fn new() -> Opts {
        let p = wsb_options_new();
        assert!(!p.is_null());
        Opts(p)
    }
    pub fn header(self, name: &str, value: &str) -> Opts {
        let (n, v) = (CString::new(name).unwrap(), CString::new(value).unwrap());
        assert_eq!(
            wsb_options_add_header(self.0, n.as_ptr(), v.as_ptr()),
            WSB_OK,
            "{}",
            last_error()
        );
        self
    }
    pub fn subprotocol(self, p: &str) -> Opts {
        let c = CString::new(p).unwrap();
        assert_eq!(wsb_options_add_subprotocol(self.0, c.as_ptr()), WSB_OK);
        self
    }
    pub fn ca(self, pem: &str) -> Opts {
        let r = wsb_options_add_root_certificates(self.0, pem.as_ptr() as *const c_char, pem.len());
        assert_eq!(r, WSB_OK, "{}", last_error());
        self
    }
    pub fn verify(self, v: bool) -> Opts {
        assert_eq!(wsb_options_set_verify_tls(self.0, v), WSB_OK);
        self
    }
    pub fn max_message(self, n: usize) -> Opts {
        assert_eq!(wsb_options_set_max_message_size(self.0, n), WSB_OK);
        self
    }
    pub fn queue_limit(self, n: usize) -> Opts {
        assert_eq!(wsb_options_set_send_queue_limit(self.0, n), WSB_OK);
        self
    }
    pub fn connect_timeout(self, ms: u32) -> Opts {
        assert_eq!(wsb_options_set_connect_timeout(self.0, ms), WSB_OK);
        self
    }
    pub fn keepalive(self, ping: u32, pong: u32) -> Opts {
        assert_eq!(wsb_options_set_keepalive(self.0, ping, pong), WSB_OK);
        self
    }
    pub fn close_timeout(self, ms: u32) -> Opts {
        assert_eq!(wsb_options_set_close_timeout(self.0, ms), WSB_OK);
        self
    }
    pub fn compression(self, on: bool) -> Opts {
        assert_eq!(wsb_options_set_compression(self.0, on), WSB_OK);
        self
    }
    pub fn compression_params(
        self,
        client_bits: u8,
        server_bits: u8,
        cnct: bool,
        snct: bool,
    ) -> Opts {
        let r = wsb_options_set_compression_params(self.0, client_bits, server_bits, cnct, snct);
        assert_eq!(r, WSB_OK, "{}", last_error());
        self
    }
}

impl Drop for Opts {
    fn drop(&mut self) {
        wsb_options_free(self.0);
    }
}

/// A socket handle; freed on drop.
pub struct Ws(pub wsb_socket);

impl Ws {
    pub fn connect(url: &str, opts: Option<&Opts>) -> Result<Ws, (wsb_result, String)> {
        let c = CString::new(url).unwrap();
        let mut h: wsb_socket = 0;
        let r = wsb_connect(c.as_ptr(), opts.map_or(ptr::null(), |o| o.0), &mut h);
        if r == WSB_OK {
            assert_ne!(h, 0, "0 is never a valid handle");
            Ok(Ws(h))
        } else {
            Err((r, last_error()))
        }
    }

    /// Connect and wait until open (panics with the detail otherwise).
    pub fn open(url: &str, opts: Option<&Opts>) -> Ws {
        let ws = Ws::connect(url, opts).unwrap_or_else(|(r, d)| panic!("connect {url}: {r:?} {d}"));
        let r = ws.wait_open();
        assert_eq!(r, WSB_OK, "open {url}: {}", last_error());
        let ev = ws.next().expect("OPEN event");
        assert_eq!(ev.kind, wsb_event_kind::WSB_EVENT_OPEN);
        ws
    }

    pub fn wait_open(&self) -> wsb_result {
        wsb_wait_open(self.0, WAIT_MS)
    }

    pub fn send_text(&self, s: &str) -> wsb_result {
        wsb_send_text(self.0, s.as_ptr() as *const c_char, s.len())
    }
    pub fn send_bytes_as_text(&self, b: &[u8]) -> wsb_result {
        wsb_send_text(self.0, b.as_ptr() as *const c_char, b.len())
    }
    pub fn send_binary(&self, b: &[u8]) -> wsb_result {
        wsb_send_binary(self.0, b.as_ptr().cast(), b.len())
    }
    pub fn close(&self, code: u16, reason: Option<&str>) -> wsb_result {
        let c = reason.map(|r| CString::new(r).unwrap());
        wsb_close(self.0, code, c.as_ref().map_or(ptr::null(), |c| c.as_ptr()))
    }
    pub fn state(&self) -> wsb_state {
        let mut s = wsb_state::WSB_STATE_CLOSED;
        assert_eq!(wsb_get_state(self.0, &mut s), WSB_OK);
        s
    }
    /// Whether permessage-deflate was negotiated.
    pub fn compressed(&self) -> bool {
        let mut on = false;
        assert_eq!(wsb_get_compression(self.0, &mut on), WSB_OK);
        on
    }
    pub fn buffered(&self) -> usize {
        let mut n = usize::MAX;
        assert_eq!(wsb_buffered_amount(self.0, &mut n), WSB_OK);
        n
    }
    /// wsb_get_stats with this library's size (which it leaves as set).
    pub fn stats(&self) -> wsb_stats {
        let size = std::mem::size_of::<wsb_stats>() as u32;
        let mut st = wsb_stats {
            size,
            ..wsb_stats::default()
        };
        assert_eq!(wsb_get_stats(self.0, &mut st), WSB_OK, "{}", last_error());
        assert_eq!(st.size, size, "size is never written");
        st
    }

    /// The next event within WAIT_MS, or None on timeout.
    pub fn next(&self) -> Option<Ev> {
        self.next_within(WAIT_MS)
    }

    pub fn next_within(&self, ms: u32) -> Option<Ev> {
        let mut ev = empty_event();
        match wsb_wait_event(self.0, &mut ev, ms) {
            WSB_OK => Some(copy_event(&ev)),
            WSB_TIMEOUT => None,
            r => panic!("wsb_wait_event: {r:?} {}", last_error()),
        }
    }

    pub fn poll(&self) -> Option<Ev> {
        let mut ev = empty_event();
        match wsb_poll(self.0, &mut ev) {
            WSB_OK => Some(copy_event(&ev)),
            WSB_EMPTY => None,
            r => panic!("wsb_poll: {r:?} {}", last_error()),
        }
    }

    /// Every event up to and including CLOSE (bounded by WAIT_MS per event).
    pub fn until_close(&self) -> Vec<Ev> {
        let mut out = Vec::new();
        loop {
            let ev = self
                .next()
                .unwrap_or_else(|| panic!("no CLOSE within {WAIT_MS} ms; got {out:?}"));
            let close = ev.kind == wsb_event_kind::WSB_EVENT_CLOSE;
            out.push(ev);
            if close {
                return out;
            }
        }
    }

    pub fn expect(&self, kind: wsb_event_kind) -> Ev {
        let ev = self.next().unwrap_or_else(|| panic!("no {kind:?} event"));
        assert_eq!(ev.kind, kind, "unexpected event {ev:?}");
        ev
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        let _ = wsb_free(self.0);
    }
}

pub fn kinds(evs: &[Ev]) -> Vec<wsb_event_kind> {
    evs.iter().map(|e| e.kind).collect()
}

/// The library's I/O threads now alive in this process (by thread name).
/// A thread that has exited (and been joined) can still be listed for a
/// moment: as dead/zombie, or even as running while the kernel finishes its
/// exit (pthread_join returns once the thread has left its memory, before
/// the task is gone). Those are not counted: their state is Z/X, or their
/// flags have PF_EXITING, which is set before the joiner is woken.
pub fn io_threads() -> usize {
    /// PF_EXITING in include/linux/sched.h.
    const PF_EXITING: u64 = 0x4;
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // "tid (comm) S ppid pgrp session tty tpgid flags ...": the name
            // is in parentheses, the state follows, the flags are 6 further.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                return false;
            };
            let name = &stat[open + 1..close];
            let mut rest = stat[close + 1..].split_whitespace();
            let state = rest.next().and_then(|s| s.chars().next());
            let flags: u64 = rest.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
            name.starts_with("wsb-io-")
                && !matches!(state, Some('Z' | 'X' | 'x'))
                && flags & PF_EXITING == 0
        })
        .count()
}
