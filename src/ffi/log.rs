//! `wsb_set_log`: the host's log hook (the lines themselves are made in
//! [`crate::log`]).

use std::ffi::{c_char, c_void};

use super::types::wsb_socket;
use super::{boundary, UserData};
use crate::error::{wsb_result, Error};
use crate::log::{self, Level};

/// How much a log line matters. Values are part of ABI v1; a hook set for a
/// level gets the lines of that level and every lower value.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsb_log_level {
    /// A failure: the socket's ERROR event, or an error a call returned.
    WSB_LOG_ERROR = 1,
    /// Something went wrong that the library handled or the host should
    /// know: keepalive timeout, send queue full, a peer breaking the protocol
    /// (with the rule it broke).
    WSB_LOG_WARN = 2,
    /// One line per step of a connection: DNS result, TCP connect, TLS,
    /// HTTP status and what was negotiated, OPEN, close sent and received,
    /// CLOSE.
    WSB_LOG_INFO = 3,
    /// Every frame in and out (opcode, length, FIN; never payload bytes) and
    /// the upgrade request head (credentials redacted).
    WSB_LOG_DEBUG = 4,
}

/// Log levels as they arrive from C: any int may be passed, so it is taken
/// as an integer and checked (the header shows it as `wsb_log_level`).
#[allow(non_camel_case_types)]
pub type wsb_log_level_raw = i32;

/// The log hook, see wsb_set_log(). `message` is one line (no newline),
/// valid only during the call; `s` is the socket it is about, 0 for none.
#[allow(non_camel_case_types)]
pub type wsb_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: wsb_log_level_raw,
        s: wsb_socket,
        message: *const c_char,
    ),
>;

/// Install `f` as the process-wide log hook for lines up to `max_level`
/// (NULL removes it). Returns WSB_ERR_INVALID_ARGUMENT for a `max_level`
/// that is not a wsb_log_level (with a hook).
///
/// Any thread, any time. It waits for calls of the previous hook that are
/// in progress (hooks run under a read lock that this call takes for
/// writing), so once it returns the previous hook is never called again and
/// its `user_data` may be freed; don't call it while holding a lock your
/// hook takes.
///
/// `f(user_data, level, s, message)` runs on the thread doing the work: the
/// socket's I/O thread, or the calling thread for what a call does itself
/// (an error it returns, the frame a send writes, the CLOSE of a connect
/// that wsb_close abandons). Several threads may call it at once. It
/// must return soon (it holds up that socket), and must not unwind or
/// long-jump. `message` is valid only during the call. Inside it only
/// wsb_last_error, wsb_result_name, wsb_version and wsb_abi_version work:
/// every other call does nothing and returns WSB_ERR_IN_LOG_HOOK
/// (wsb_options_new returns NULL; wsb_options_free and wsb_shutdown just
/// return), because a hook may run while the library holds a socket's
/// locks. Lines never contain payload bytes, header values of
/// Authorization, Cookie, Proxy-Authorization and other credentials-bearing
/// headers (names containing auth, cookie, token, secret, password or
/// api-key), or proxy credentials. The upgrade request line (DEBUG) shows
/// the URL's path and query as sent.
///
/// With no hook installed and the environment variable WSBRIDGE_LOG set to
/// error, warn, info or debug (read once, at the first use), the same lines
/// go to stderr, as `wsbridge INFO  socket 3: OPEN`.
#[no_mangle]
pub extern "C" fn wsb_set_log(
    f: wsb_log_fn,
    user_data: *mut c_void,
    max_level: wsb_log_level_raw,
) -> wsb_result {
    boundary(|| {
        let Some(f) = f else {
            log::set_hook(None);
            return Ok(wsb_result::WSB_OK);
        };
        let max = Level::from_raw(max_level).ok_or_else(|| {
            Error::invalid_argument(format!(
                "max_level {max_level} is not a wsb_log_level (1 to 4)"
            ))
        })?;
        let user = UserData(user_data);
        let hook: log::Hook = Box::new(move |level, s, line| {
            // SAFETY: the host's hook, called as wsb_set_log documents: its
            // own `user_data`, a line valid for the call, on any thread,
            // never after wsb_set_log replaced it.
            unsafe { f(user.get(), level as wsb_log_level_raw, s, line.as_ptr()) };
        });
        log::set_hook(Some((hook, max)));
        Ok(wsb_result::WSB_OK)
    })
}
