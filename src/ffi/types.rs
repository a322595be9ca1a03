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
pub type wsb_notify_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, socket: wsb_socket)>;

/// Connection options: opaque, created by wsb_options_new() and owned by the
/// caller until wsb_options_free(). wsb_connect copies what it needs, so the
/// options may be freed right after it.
#[allow(non_camel_case_types)]
pub struct wsb_options {
    pub(crate) inner: crate::options::Options,
}

/// (Addition to ABI v1.) Statistics of one socket, filled in by
/// wsb_get_stats(). Set `size` to sizeof(wsb_stats) before the call: later
/// versions may add fields at the end, and a library only fills the fields
/// that fit in `size` bytes (see wsb_get_stats).
///
/// Counters count from wsb_connect until the CLOSE event is queued and keep
/// those values after it: bytes that still cross the socket after CLOSE
/// (a TLS close_notify read while the library waits for the server to
/// close TCP) are not counted. `queued_bytes` alone stays live, as
/// wsb_buffered_amount. The difference between a wire and a
/// payload counter is the framing, the HTTP upgrade, TLS, and compression
/// when it was negotiated (payload counters are uncompressed sizes). The
/// `_us` durations of the connect are recorded as each phase ends,
/// successfully or not, and are at least 1 for a phase that ran: 0 means it
/// did not (yet) run.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct wsb_stats {
    /// In: sizeof(wsb_stats) as the caller knows it. Never written.
    pub size: u32,
    /// Bytes read from the TCP socket: the upgrade response, a proxy's
    /// CONNECT reply, TLS records, frames.
    pub wire_bytes_in: u64,
    /// Bytes written to the TCP socket: the upgrade request, the proxy
    /// CONNECT request, TLS records, frames.
    pub wire_bytes_out: u64,
    /// Payload bytes of the messages counted in `messages_in`, as the host
    /// receives them (after decompression).
    pub payload_bytes_in: u64,
    /// Payload bytes of the messages counted in `messages_out`, as the host
    /// gave them (before compression).
    pub payload_bytes_out: u64,
    /// Text and binary messages delivered to the host as events.
    pub messages_in: u64,
    /// Text and binary messages accepted by wsb_send_text / wsb_send_binary
    /// (WSB_OK; while CONNECTING too), whether or not they reached the
    /// network before the connection ended. wsb_ping is not counted.
    pub messages_out: u64,
    /// Pings sent: keepalive pings (wsb_options_set_keepalive) and the
    /// host's (wsb_ping).
    pub pings_sent: u64,
    /// Pong frames received from the peer (answers to keepalive pings, to
    /// wsb_ping, and unsolicited ones).
    pub pongs_received: u64,
    /// Microseconds between the most recent keepalive ping that was
    /// answered and its pong (at least 1); 0 until a pong answered one of
    /// our keepalive pings.
    pub last_ping_rtt_us: u64,
    /// Payload bytes sent but not yet written to the network: the value
    /// wsb_buffered_amount returns at the time of the call.
    pub queued_bytes: u64,
    /// Microseconds the DNS lookup took; 0 for an IP address (nothing is
    /// resolved). With a proxy: the lookup of the proxy's host.
    pub dns_us: u64,
    /// Microseconds the TCP connect took (every address tried, RFC 8305).
    /// With a proxy: the connect to the proxy and its CONNECT exchange.
    pub tcp_us: u64,
    /// Microseconds the TLS setup and handshake took; 0 for ws://.
    pub tls_us: u64,
    /// Microseconds the WebSocket upgrade took: the request and the
    /// server's response.
    pub upgrade_us: u64,
}
