//! `wsb_connect`, send/close/poll and the other per-socket calls.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

use super::options::with_options;
use super::types::{wsb_event, wsb_event_kind, wsb_notify_fn, wsb_options, wsb_socket, wsb_state};
use super::{boundary, boundary_on, bytes, c_str, null_arg, write_out, UserData};
use crate::error::{wsb_result, Error, Result};
use crate::event::{Kind, Polled};
use crate::notify;
use crate::options::Options;
use crate::registry;
use crate::socket::State;

/// Open a WebSocket to `url` (ws:// or wss://) and store its handle in `*out`.
///
/// Returns at once: a bad URL is reported here (WSB_ERR_INVALID_URL); DNS,
/// TCP, TLS and the upgrade run on the socket's own I/O thread and their
/// outcome arrives as events (OPEN, or ERROR then CLOSE) — see wsb_wait_open.
/// `opts` may be NULL (defaults); it is copied, so it may be freed right after.
/// `url` is copied. User info in the URL is ignored and a fragment is dropped.
/// Non-ASCII characters in the path and query are sent percent-encoded as
/// UTF-8 (`/café?q=€` goes out as `/caf%C3%A9?q=%E2%82%AC`, as browsers do);
/// `%XX` escapes already in the URL, and all other ASCII, are sent unchanged.
/// Thread-safe.
///
/// The upgrade (RFC 6455 §4.1) fails with WSB_ERR_HANDSHAKE when the server
/// answers anything but a valid 101: another status ("HTTP 403 from
/// server"), a head whose Upgrade, Connection (a list that must contain the
/// `upgrade` token) or Sec-WebSocket-Accept is wrong, a subprotocol that was
/// not requested (or none when some were), a Sec-WebSocket-Extensions
/// extension the client did not offer (it offers permessage-deflate only,
/// and only with wsb_options_set_compression), or a permessage-deflate
/// answer RFC 7692 does not allow. A head that does not parse fails with a
/// detail quoting the line it fails on. The server's response head (status
/// line, headers, blank line) may be at most 64 KiB (65536 bytes), counted
/// over any interim 1xx responses before it (100 Continue, 103 Early Hints:
/// skipped); a longer one fails with a detail that says so. A header folded
/// over lines (obs-fold) is unfolded.
#[no_mangle]
pub extern "C" fn wsb_connect(
    url: *const c_char,
    opts: *const wsb_options,
    out: *mut wsb_socket,
) -> wsb_result {
    boundary(|| {
        if out.is_null() {
            return Err(null_arg("out"));
        }
        // SAFETY: NULL-checked in c_str; the caller passes a NUL-terminated string.
        let url = unsafe { c_str(url, "url") }?;
        let url = url
            .to_str()
            .map_err(|_| Error::new(wsb_result::WSB_ERR_INVALID_URL, "URL is not valid UTF-8"))?;
        let opts = if opts.is_null() {
            Options::default()
        } else {
            with_options(opts, |o| Ok(o.clone()))?
        };
        let id = registry::connect(url, &opts)?;
        // SAFETY: NULL-checked above; the caller provides a writable wsb_socket.
        unsafe { write_out(out, id, "out") }?;
        Ok(wsb_result::WSB_OK)
    })
}

fn ms(timeout_ms: u32) -> Duration {
    Duration::from_millis(timeout_ms.into())
}

/// Block until the socket is open, failed to open, or `timeout_ms` passed.
///
/// Returns WSB_OK (the OPEN event is queued), the failure's code (DNS,
/// CONNECT, TLS, HANDSHAKE, ...; the ERROR and CLOSE events are queued and
/// wsb_last_error() has the detail), WSB_TIMEOUT, or WSB_ERR_NOT_OPEN if the
/// connect was abandoned by wsb_close. Consumes no event. Any thread; blocks
/// at most `timeout_ms` (parks, no spinning).
#[no_mangle]
pub extern "C" fn wsb_wait_open(s: wsb_socket, timeout_ms: u32) -> wsb_result {
    boundary_on(s, || registry::get(s)?.wait_open(ms(timeout_ms)))
}

fn send(s: wsb_socket, opcode: u8, payload: &[u8]) -> Result<wsb_result> {
    registry::with(s, |sock| sock.send(opcode, payload))?;
    Ok(wsb_result::WSB_OK)
}

/// Send `data[0..len)` as one text message. It must be valid UTF-8
/// (WSB_ERR_INVALID_UTF8 otherwise); it need not be NUL-terminated and may
/// contain NULs. `data` may be NULL only when `len` is 0.
///
/// The payload is copied and the call returns at once; it never blocks on the
/// network. Callable from any thread; each thread's messages go out in the
/// order sent. Messages sent while CONNECTING are queued and go out, in
/// order, once open. WSB_ERR_NOT_OPEN once closing/closed; WSB_ERR_QUEUE_FULL
/// (nothing queued) when over the send queue limit.
#[no_mangle]
pub extern "C" fn wsb_send_text(s: wsb_socket, data: *const c_char, len: usize) -> wsb_result {
    boundary_on(s, || {
        // SAFETY: NULL-checked in bytes (unless len is 0); the caller provides len bytes.
        let b = unsafe { bytes(data.cast(), len, "data") }?;
        let text = std::str::from_utf8(b).map_err(|e| {
            Error::new(
                wsb_result::WSB_ERR_INVALID_UTF8,
                format!(
                    "text is not valid UTF-8 (at byte {}); send it as binary",
                    e.valid_up_to()
                ),
            )
        })?;
        send(s, 1, text.as_bytes())
    })
}

/// Send `data[0..len)` as one binary message. `data` may be NULL only when
/// `len` is 0. Copied; returns at once; same rules as wsb_send_text.
#[no_mangle]
pub extern "C" fn wsb_send_binary(s: wsb_socket, data: *const c_void, len: usize) -> wsb_result {
    boundary_on(s, || {
        // SAFETY: NULL-checked in bytes (unless len is 0); the caller provides len bytes.
        let b = unsafe { bytes(data.cast(), len, "data") }?;
        send(s, 2, b)
    })
}

/// Send a ping with `data[0..len)` as payload (len <= 125, else
/// WSB_ERR_INVALID_ARGUMENT). The pong is consumed by the library. Copied;
/// returns at once; same rules as wsb_send_text.
#[no_mangle]
pub extern "C" fn wsb_ping(s: wsb_socket, data: *const c_void, len: usize) -> wsb_result {
    boundary_on(s, || {
        if len > 125 {
            return Err(Error::invalid_argument(format!(
                "ping payload of {len} bytes is over 125"
            )));
        }
        // SAFETY: NULL-checked in bytes (unless len is 0); the caller provides len bytes.
        let b = unsafe { bytes(data.cast(), len, "data") }?;
        send(s, 9, b)
    })
}

fn check_close_code(code: u16) -> Result<u16> {
    match code {
        0 => Ok(1000),
        1000..=1003 | 1007..=1014 | 3000..=4999 => Ok(code),
        _ => Err(Error::invalid_argument(format!(
            "close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
        ))),
    }
}

/// Start the closing handshake with `code` (0 means 1000; otherwise
/// 1000-1003, 1007-1014 or 3000-4999, else WSB_ERR_INVALID_ARGUMENT) and
/// `reason` (NULL, or at most 123 bytes of NUL-terminated UTF-8; copied).
///
/// Returns at once. Messages already sent go out first. The CLOSE event
/// follows when the handshake completes or times out. A second call is a
/// no-op returning WSB_OK. On a socket still connecting it abandons the
/// attempt: no ERROR, then CLOSE 1006, clean = false (the notify callback
/// then runs on this thread). Any thread.
#[no_mangle]
pub extern "C" fn wsb_close(s: wsb_socket, code: u16, reason: *const c_char) -> wsb_result {
    boundary_on(s, || {
        let code = check_close_code(code)?;
        let reason = if reason.is_null() {
            String::new()
        } else {
            // SAFETY: non-NULL; the caller passes a NUL-terminated string.
            let r = unsafe { c_str(reason, "reason") }?;
            let r = r.to_str().map_err(|_| {
                Error::new(
                    wsb_result::WSB_ERR_INVALID_UTF8,
                    "close reason is not valid UTF-8",
                )
            })?;
            if r.len() > 123 {
                return Err(Error::invalid_argument(format!(
                    "close reason is {} bytes; at most 123 allowed",
                    r.len()
                )));
            }
            r.to_owned()
        };
        let socket = registry::get(s)?;
        socket.close(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        Ok(wsb_result::WSB_OK)
    })
}

fn to_c(p: Polled) -> wsb_event {
    wsb_event {
        kind: match p.kind {
            Kind::Open => wsb_event_kind::WSB_EVENT_OPEN,
            Kind::Text => wsb_event_kind::WSB_EVENT_TEXT,
            Kind::Binary => wsb_event_kind::WSB_EVENT_BINARY,
            Kind::Error => wsb_event_kind::WSB_EVENT_ERROR,
            Kind::Close => wsb_event_kind::WSB_EVENT_CLOSE,
        },
        error: p.error,
        close_code: p.close_code,
        clean: p.clean,
        data: p.data.cast(),
        len: p.len,
    }
}

/// Take the next event: WSB_OK and `*event` filled in, or WSB_EMPTY.
///
/// `event->data` is owned by the library and valid until the next
/// wsb_poll/wsb_wait_event on this socket, its wsb_free, or the return of a
/// wsb_shutdown (even one running on another thread). Never blocks. One
/// thread at a time may consume a socket's events.
#[no_mangle]
pub extern "C" fn wsb_poll(s: wsb_socket, event: *mut wsb_event) -> wsb_result {
    boundary_on(s, || {
        if event.is_null() {
            return Err(null_arg("event"));
        }
        match registry::with(s, |sock| Ok(sock.poll()))? {
            Some(p) => {
                // SAFETY: NULL-checked above; the caller provides a writable wsb_event.
                unsafe { write_out(event, to_c(p), "event") }?;
                Ok(wsb_result::WSB_OK)
            }
            None => Ok(wsb_result::WSB_EMPTY),
        }
    })
}

/// Like wsb_poll but blocks up to `timeout_ms` for an event (WSB_TIMEOUT if
/// none came). Parks the thread (no spinning). If the socket is freed
/// meanwhile it returns WSB_ERR_INVALID_HANDLE. Same buffer rules as wsb_poll.
#[no_mangle]
pub extern "C" fn wsb_wait_event(
    s: wsb_socket,
    event: *mut wsb_event,
    timeout_ms: u32,
) -> wsb_result {
    boundary_on(s, || {
        if event.is_null() {
            return Err(null_arg("event"));
        }
        // An event already waiting is taken without a reference count (the
        // socket's count would bounce between a sender's core and this one).
        let got = match registry::with(s, |sock| Ok(sock.take_ready()))? {
            Some(p) => Some(p),
            None => registry::get(s)?
                .wait(ms(timeout_ms))
                .map_err(|_| Error::invalid_handle())?,
        };
        match got {
            Some(p) => {
                // SAFETY: NULL-checked above; the caller provides a writable wsb_event.
                unsafe { write_out(event, to_c(p), "event") }?;
                Ok(wsb_result::WSB_OK)
            }
            None => Ok(wsb_result::WSB_TIMEOUT),
        }
    })
}

/// Call `fn(user_data, s)` whenever an event is queued on `s`, after it is
/// queued, so an event-driven host can wake up instead of polling (NULL
/// clears). A consumer may already have taken the event when fn runs.
///
/// fn runs on the socket's I/O thread (or on the thread calling wsb_close /
/// wsb_free when that abandons a connecting socket), never while the library
/// holds a lock; it may call any wsb_ function, including on this socket.
/// Keep it short: it delays that socket's I/O. After wsb_free or
/// wsb_shutdown returns (on a thread that is not itself inside a callback),
/// fn is never called again, so `user_data` may be freed then.
#[no_mangle]
pub extern "C" fn wsb_set_notify(
    s: wsb_socket,
    f: wsb_notify_fn,
    user_data: *mut c_void,
) -> wsb_result {
    boundary_on(s, || {
        let ud = UserData(user_data);
        let callback = f.map(|f| {
            Arc::new(move |socket| {
                // SAFETY: the host's function, called as wsb_set_notify
                // documents: with its own `user_data` and the socket, on a
                // library thread or the caller's, never under a library
                // lock, and never after wsb_free/wsb_shutdown returned.
                unsafe { f(ud.get(), socket) }
            }) as notify::Callback
        });
        registry::get(s)?.notify.set(callback);
        Ok(wsb_result::WSB_OK)
    })
}

/// Store the socket's state in `*state`. Any thread; never blocks.
#[no_mangle]
pub extern "C" fn wsb_get_state(s: wsb_socket, state: *mut wsb_state) -> wsb_result {
    boundary_on(s, || {
        if state.is_null() {
            return Err(null_arg("state"));
        }
        let st = match registry::with(s, |sock| Ok(sock.state()))? {
            State::Connecting => wsb_state::WSB_STATE_CONNECTING,
            State::Open => wsb_state::WSB_STATE_OPEN,
            State::Closing => wsb_state::WSB_STATE_CLOSING,
            State::Closed => wsb_state::WSB_STATE_CLOSED,
        };
        // SAFETY: NULL-checked above; the caller provides a writable wsb_state.
        unsafe { write_out(state, st, "state") }?;
        Ok(wsb_result::WSB_OK)
    })
}

/// (Addition to ABI v1.) Store in `*negotiated` whether the server accepted
/// permessage-deflate (wsb_options_set_compression): false until the socket
/// is open, and false if compression was not offered. Any thread; never
/// blocks.
#[no_mangle]
pub extern "C" fn wsb_get_compression(s: wsb_socket, negotiated: *mut bool) -> wsb_result {
    boundary_on(s, || {
        if negotiated.is_null() {
            return Err(null_arg("negotiated"));
        }
        let on = registry::with(s, |sock| Ok(sock.compression()))?;
        // SAFETY: NULL-checked above; the caller provides a writable bool.
        unsafe { write_out(negotiated, on, "negotiated") }?;
        Ok(wsb_result::WSB_OK)
    })
}

/// Store in `*bytes` the payload bytes sent but not yet written to the
/// network (queued, or waiting for the socket to drain). Any thread.
#[no_mangle]
pub extern "C" fn wsb_buffered_amount(s: wsb_socket, bytes: *mut usize) -> wsb_result {
    boundary_on(s, || {
        if bytes.is_null() {
            return Err(null_arg("bytes"));
        }
        let n = registry::with(s, |sock| Ok(sock.buffered_amount()))?;
        // SAFETY: NULL-checked above; the caller provides a writable size_t.
        unsafe { write_out(bytes, n, "bytes") }?;
        Ok(wsb_result::WSB_OK)
    })
}

/// Release the socket. The handle is invalid at once (later calls return
/// WSB_ERR_INVALID_HANDLE), its queued events and the last polled event's
/// data are freed, and no notify callback starts after this returns. An open
/// socket is closed with 1001 in the background; its I/O thread finishes
/// within the close timeout and ends by itself. Never blocks for long (only
/// for a notify callback already running on another thread). Any thread.
#[no_mangle]
pub extern "C" fn wsb_free(s: wsb_socket) -> wsb_result {
    boundary_on(s, || {
        registry::free(s)?;
        Ok(wsb_result::WSB_OK)
    })
}
