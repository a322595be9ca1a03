//! C-visible types other than `wsb_result` (see `error.rs`).

use std::ffi::{c_char, c_void};

/// A socket handle. 0 is never a valid handle. Handles are never reused within
/// a process, so using one after wsb_free() is detected
/// (WSB_ERR_INVALID_HANDLE), never undefined behaviour.
#[allow(non_camel_case_types)]
pub type wsb_socket = u64;

/// What an event is. Values are part of ABI v1.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsb_event_kind {
    /// Handshake done; data = negotiated subprotocol ("" if none).
    WSB_EVENT_OPEN = 1,
    /// data = one whole UTF-8 text message.
    WSB_EVENT_TEXT = 2,
    /// data = one whole binary message.
    WSB_EVENT_BINARY = 3,
    /// error = the code; data = a human-readable detail.
    WSB_EVENT_ERROR = 4,
    /// close_code and clean are set; data = the close reason. Always the last event.
    WSB_EVENT_CLOSE = 5,
}

/// Connection state, as reported by wsb_get_state(). Values are part of ABI v1.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsb_state {
    /// wsb_connect returned; DNS/TCP/TLS/upgrade in progress.
    WSB_STATE_CONNECTING = 0,
    /// Open: messages can be sent and received.
    WSB_STATE_OPEN = 1,
    /// The closing handshake has started (locally or by the peer).
    WSB_STATE_CLOSING = 2,
    /// Closed: the CLOSE event has been queued.
    WSB_STATE_CLOSED = 3,
}

/// One event, filled in by wsb_poll() / wsb_wait_event().
///
/// `data` is owned by the library and stays valid until the next wsb_poll /
/// wsb_wait_event on the same socket, its wsb_free, or the return of a
/// wsb_shutdown (copy it to keep it).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct wsb_event {
    /// What happened.
    pub kind: wsb_event_kind,
    /// WSB_EVENT_ERROR only: the error's code; WSB_OK otherwise.
    pub error: crate::error::wsb_result,
    /// WSB_EVENT_CLOSE only: the peer's close code; 1005 if its close frame had
    /// none; 1006 if no close frame was exchanged.
    pub close_code: u16,
    /// WSB_EVENT_CLOSE only: true if the closing handshake completed.
    pub clean: bool,
    /// Never NULL; data[len] == 0 (a NUL is added after the payload; the payload
    /// itself may contain NULs).
    pub data: *const c_char,
    /// Payload length in bytes, not counting the added NUL.
    pub len: usize,
}

/// Wake-up callback, see wsb_set_notify(). Called with the `user_data` given
/// there and the socket the event was queued on.
#[allow(non_camel_case_types)]
pub type wsb_notify_fn = Option<extern "C" fn(user_data: *mut c_void, socket: wsb_socket)>;

/// Connection options: opaque, created by wsb_options_new() and owned by the
/// caller until wsb_options_free(). wsb_connect copies what it needs, so the
/// options may be freed right after it.
#[allow(non_camel_case_types)]
pub struct wsb_options {
    pub(crate) inner: crate::options::Options,
}
