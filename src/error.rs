//! Result codes and the error type of the safe core.
//!
//! `wsb_result` is the C-visible enum (ABI v1: values are fixed). The core
//! returns [`Error`]: a code plus a one-line detail that names the cause; the
//! FFI layer turns it into the code and `wsb_last_error()`. The errors of an
//! open connection's byte stream are mapped here too.

use std::fmt;
use std::io;

/// Result of every fallible `wsb_` call. Values are part of ABI v1 and never change;
/// new codes are only ever appended.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum wsb_result {
    /// Success.
    WSB_OK = 0,
    /// `wsb_poll`: no event is waiting (not an error).
    WSB_EMPTY = 1,
    /// A wait ran out of time (not an error).
    WSB_TIMEOUT = 2,
    /// A required pointer argument was NULL.
    WSB_ERR_NULL_ARGUMENT = -1,
    /// Bad close code, CR/LF in a header, reason too long, bad PEM, ...
    WSB_ERR_INVALID_ARGUMENT = -2,
    /// Unknown, freed or stale socket handle.
    WSB_ERR_INVALID_HANDLE = -3,
    /// Unparsable URL, or a scheme other than ws/wss.
    WSB_ERR_INVALID_URL = -4,
    /// `wsb_send_text` data or a close reason is not valid UTF-8.
    WSB_ERR_INVALID_UTF8 = -5,
    /// Send/ping on a socket that is closing or closed.
    WSB_ERR_NOT_OPEN = -6,
    /// The send queue limit was reached; nothing was queued.
    WSB_ERR_QUEUE_FULL = -7,
    /// An outgoing or incoming message is over the size limit.
    WSB_ERR_MESSAGE_TOO_LARGE = -8,
    /// The host name did not resolve.
    WSB_ERR_DNS = -9,
    /// TCP connect refused or unreachable, or the connect timeout passed.
    WSB_ERR_CONNECT = -10,
    /// TLS handshake or certificate failure.
    WSB_ERR_TLS = -11,
    /// HTTP upgrade refused (status != 101) or malformed.
    WSB_ERR_HANDSHAKE = -12,
    /// The peer broke RFC 6455.
    WSB_ERR_PROTOCOL = -13,
    /// Connection reset or another I/O failure.
    WSB_ERR_IO = -14,
    /// The library was shut down.
    WSB_ERR_SHUTDOWN = -15,
    /// A caught panic or a bug: never a crash.
    WSB_ERR_INTERNAL = -16,
    /// Called from inside the log hook, which may call only wsb_last_error,
    /// wsb_result_name and wsb_version (see wsb_set_log). Nothing was done.
    WSB_ERR_IN_LOG_HOOK = -17,
}

impl wsb_result {
    /// The enumerator's name as a static NUL-terminated string.
    pub fn name_cstr(self) -> &'static std::ffi::CStr {
        use wsb_result::*;
        match self {
            WSB_OK => c"WSB_OK",
            WSB_EMPTY => c"WSB_EMPTY",
            WSB_TIMEOUT => c"WSB_TIMEOUT",
            WSB_ERR_NULL_ARGUMENT => c"WSB_ERR_NULL_ARGUMENT",
            WSB_ERR_INVALID_ARGUMENT => c"WSB_ERR_INVALID_ARGUMENT",
            WSB_ERR_INVALID_HANDLE => c"WSB_ERR_INVALID_HANDLE",
            WSB_ERR_INVALID_URL => c"WSB_ERR_INVALID_URL",
            WSB_ERR_INVALID_UTF8 => c"WSB_ERR_INVALID_UTF8",
            WSB_ERR_NOT_OPEN => c"WSB_ERR_NOT_OPEN",
            WSB_ERR_QUEUE_FULL => c"WSB_ERR_QUEUE_FULL",
            WSB_ERR_MESSAGE_TOO_LARGE => c"WSB_ERR_MESSAGE_TOO_LARGE",
            WSB_ERR_DNS => c"WSB_ERR_DNS",
            WSB_ERR_CONNECT => c"WSB_ERR_CONNECT",
            WSB_ERR_TLS => c"WSB_ERR_TLS",
            WSB_ERR_HANDSHAKE => c"WSB_ERR_HANDSHAKE",
            WSB_ERR_PROTOCOL => c"WSB_ERR_PROTOCOL",
            WSB_ERR_IO => c"WSB_ERR_IO",
            WSB_ERR_SHUTDOWN => c"WSB_ERR_SHUTDOWN",
            WSB_ERR_INTERNAL => c"WSB_ERR_INTERNAL",
            WSB_ERR_IN_LOG_HOOK => c"WSB_ERR_IN_LOG_HOOK",
        }
    }

    /// Map a raw integer (as a C caller may pass any value) to a code.
    pub fn from_raw(v: i32) -> Option<Self> {
        use wsb_result::*;
        Some(match v {
            0 => WSB_OK,
            1 => WSB_EMPTY,
            2 => WSB_TIMEOUT,
            -1 => WSB_ERR_NULL_ARGUMENT,
            -2 => WSB_ERR_INVALID_ARGUMENT,
            -3 => WSB_ERR_INVALID_HANDLE,
            -4 => WSB_ERR_INVALID_URL,
            -5 => WSB_ERR_INVALID_UTF8,
            -6 => WSB_ERR_NOT_OPEN,
            -7 => WSB_ERR_QUEUE_FULL,
            -8 => WSB_ERR_MESSAGE_TOO_LARGE,
            -9 => WSB_ERR_DNS,
            -10 => WSB_ERR_CONNECT,
            -11 => WSB_ERR_TLS,
            -12 => WSB_ERR_HANDSHAKE,
            -13 => WSB_ERR_PROTOCOL,
            -14 => WSB_ERR_IO,
            -15 => WSB_ERR_SHUTDOWN,
            -16 => WSB_ERR_INTERNAL,
            -17 => WSB_ERR_IN_LOG_HOOK,
            _ => return None,
        })
    }
}

/// A failure of the safe core: a result code and a one-line detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: wsb_result,
    pub detail: String,
}

impl Error {
    pub fn new(code: wsb_result, detail: impl Into<String>) -> Self {
        Error {
            code,
            detail: detail.into(),
        }
    }
    pub fn invalid_argument(detail: impl Into<String>) -> Self {
        Self::new(wsb_result::WSB_ERR_INVALID_ARGUMENT, detail)
    }
    pub fn invalid_handle() -> Self {
        Self::new(
            wsb_result::WSB_ERR_INVALID_HANDLE,
            "unknown, freed or stale socket handle",
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.code.name_cstr().to_string_lossy(),
            self.detail
        )
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A failure of the byte stream on an open connection (TLS included).
pub(crate) fn stream_error(e: io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Error::new(wsb_result::WSB_ERR_TLS, t.to_string());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => closed_without_handshake(),
        _ => Error::new(wsb_result::WSB_ERR_IO, format!("connection error: {e}")),
    }
}

/// The stream ended before the peer's close frame.
pub(crate) fn closed_without_handshake() -> Error {
    Error::new(
        wsb_result::WSB_ERR_IO,
        "connection closed by peer without a closing handshake",
    )
}
