//! `wsb_options_*`: building connection options.
//!
//! Every live options object is recorded in a set, so a double free or a
//! pointer that never came from wsb_options_new() is detected instead of
//! corrupting memory. The set's lock is held while an object is used, so
//! concurrent use of one object from several threads is serialised.

use std::collections::HashSet;
use std::ffi::c_char;
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::types::wsb_options;
use super::{boundary, bytes, c_str, guarded_value, null_arg};
use crate::error::{wsb_result, Error, Result};
use crate::options::Options;

fn live() -> &'static Mutex<HashSet<usize>> {
    static LIVE: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Run `f` on the options behind `opts` if it is a live object.
pub(crate) fn with_options<T>(
    opts: *const wsb_options,
    f: impl FnOnce(&mut Options) -> Result<T>,
) -> Result<T> {
    if opts.is_null() {
        return Err(null_arg("opts"));
    }
    let set = live().lock();
    if !set.contains(&(opts as usize)) {
        return Err(Error::invalid_argument(
            "opts was not returned by wsb_options_new() or was already freed",
        ));
    }
    let p = opts as *mut wsb_options;
    // SAFETY: `p` is in the live set, so it came from Box::into_raw in
    // wsb_options_new and has not been freed; the set's lock (held until the
    // end of this function) gives us exclusive access.
    let o = unsafe { &mut (*p).inner };
    f(o)
}

fn ok(r: Result<()>) -> Result<wsb_result> {
    r.map(|()| wsb_result::WSB_OK)
}

/// Create an options object with every setting at its default.
///
/// Returns NULL only if memory runs out. The caller owns it and frees it with
/// wsb_options_free(). Thread-safe; does not block.
#[no_mangle]
pub extern "C" fn wsb_options_new() -> *mut wsb_options {
    guarded_value(std::ptr::null_mut(), || {
        let p = Box::into_raw(Box::new(wsb_options {
            inner: Options::new(),
        }));
        live().lock().insert(p as usize);
        p
    })
}

/// Free an options object. NULL, and a pointer already freed, are ignored.
///
/// Sockets created with it are unaffected (wsb_connect took a copy).
#[no_mangle]
pub extern "C" fn wsb_options_free(opts: *mut wsb_options) {
    guarded_value((), || {
        if opts.is_null() {
            return;
        }
        let mut set = live().lock();
        if set.remove(&(opts as usize)) {
            if set.is_empty() {
                // Release the set's memory when no options object is alive.
                *set = HashSet::new();
            }
            // SAFETY: the pointer was in the live set, so it came from
            // Box::into_raw and is freed exactly once (it is now removed).
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

/// Add an HTTP header to the upgrade request (e.g. Authorization, Origin,
/// Cookie, User-Agent; a `Host` header replaces the default one).
///
/// `name` must be an HTTP token; `value` must not contain CR, LF or NUL.
/// Headers the library manages (Connection, Upgrade, Sec-WebSocket-*) are
/// refused with WSB_ERR_INVALID_ARGUMENT. Both strings are copied.
#[no_mangle]
pub extern "C" fn wsb_options_add_header(
    opts: *mut wsb_options,
    name: *const c_char,
    value: *const c_char,
) -> wsb_result {
    boundary(|| {
        // SAFETY: NULL-checked in c_str; the caller passes NUL-terminated strings.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: as above.
        let value = unsafe { c_str(value, "value") }?;
        let name = name
            .to_str()
            .map_err(|_| Error::invalid_argument("header name is not valid UTF-8"))?;
        let value = value.to_str().map_err(|_| {
            Error::invalid_argument(format!("header {name:?}: value is not valid UTF-8"))
        })?;
        ok(with_options(opts, |o| o.add_header(name, value)))
    })
}

/// Offer a subprotocol (Sec-WebSocket-Protocol), in order of preference.
///
/// `protocol` must be an HTTP token; it is copied. The one the server picked is
/// the OPEN event's data. If subprotocols are offered and the server picks
/// none, the connect fails with WSB_ERR_HANDSHAKE.
#[no_mangle]
pub extern "C" fn wsb_options_add_subprotocol(
    opts: *mut wsb_options,
    protocol: *const c_char,
) -> wsb_result {
    boundary(|| {
        // SAFETY: NULL-checked in c_str; the caller passes a NUL-terminated string.
        let p = unsafe { c_str(protocol, "protocol") }?;
        let p = p
            .to_str()
            .map_err(|_| Error::invalid_argument("subprotocol is not valid UTF-8"))?;
        ok(with_options(opts, |o| o.add_subprotocol(p)))
    })
}

/// Set the connect timeout in milliseconds (default 10000; 0 = default).
///
/// It covers DNS + TCP + TLS + upgrade; running out is WSB_ERR_CONNECT with a
/// detail naming the stage.
///
/// A host name with several addresses is connected to as in RFC 8305 (Happy
/// Eyeballs): the address families alternate, starting with the first
/// address's; when an attempt has not connected after 250 ms the next address
/// is tried beside it (a refused or unreachable one hands over at once), the
/// first to connect is used and the others are closed. This timeout bounds
/// the whole race (`connect timeout during TCP connect (after N ms)`); when
/// every address fails first, the detail names the last failure
/// (`connect to ADDR: ...`).
#[no_mangle]
pub extern "C" fn wsb_options_set_connect_timeout(opts: *mut wsb_options, ms: u32) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.connect_timeout(ms);
            Ok(())
        }))
    })
}

/// Trust the PEM certificates in `pem[0..len)` in addition to the built-in
/// (webpki) roots.
///
/// Every CERTIFICATE block must parse as X.509, else WSB_ERR_INVALID_ARGUMENT
/// and nothing is added; no block at all is also INVALID_ARGUMENT. The data is
/// copied; `pem` need not be NUL-terminated.
#[no_mangle]
pub extern "C" fn wsb_options_add_root_certificates(
    opts: *mut wsb_options,
    pem: *const c_char,
    len: usize,
) -> wsb_result {
    boundary(|| {
        if pem.is_null() {
            return Err(null_arg("pem"));
        }
        // SAFETY: non-NULL; the caller guarantees `len` readable bytes.
        let data = unsafe { bytes(pem.cast(), len, "pem") }?;
        ok(with_options(opts, |o| o.add_root_certificates(data)))
    })
}

/// Turn certificate verification off (false) or on (true, the default).
///
/// With false any certificate is accepted (the traffic is still encrypted but
/// the server is not authenticated): for testing only.
#[no_mangle]
pub extern "C" fn wsb_options_set_verify_tls(opts: *mut wsb_options, verify: bool) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.verify_tls(verify);
            Ok(())
        }))
    })
}

/// Set the largest message, in bytes, in either direction (default 64 MiB; 0
/// is WSB_ERR_INVALID_ARGUMENT).
///
/// Sending more is WSB_ERR_MESSAGE_TOO_LARGE. An incoming message over it
/// closes the socket with 1009 and an ERROR event (WSB_ERR_MESSAGE_TOO_LARGE);
/// nothing over the limit is allocated.
#[no_mangle]
pub extern "C" fn wsb_options_set_max_message_size(
    opts: *mut wsb_options,
    bytes: usize,
) -> wsb_result {
    boundary(|| ok(with_options(opts, |o| o.max_message_size(bytes))))
}

/// Set the send queue limit: payload bytes queued but not yet written
/// (default 64 MiB; 0 is WSB_ERR_INVALID_ARGUMENT).
///
/// A send that would take the queue over it returns WSB_ERR_QUEUE_FULL and
/// queues nothing; a single message is always accepted into an empty queue.
#[no_mangle]
pub extern "C" fn wsb_options_set_send_queue_limit(
    opts: *mut wsb_options,
    bytes: usize,
) -> wsb_result {
    boundary(|| ok(with_options(opts, |o| o.send_queue_limit(bytes))))
}

/// Keepalive: after `ping_interval_ms` without receiving anything, send a
/// ping; if nothing arrives within `pong_timeout_ms` after it, drop the
/// connection with an ERROR event (WSB_ERR_IO, "keepalive timeout") and then
/// CLOSE 1006.
///
/// Default off; `ping_interval_ms` 0 turns it off; `pong_timeout_ms` 0 means
/// one ping interval.
#[no_mangle]
pub extern "C" fn wsb_options_set_keepalive(
    opts: *mut wsb_options,
    ping_interval_ms: u32,
    pong_timeout_ms: u32,
) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.keepalive(ping_interval_ms, pong_timeout_ms);
            Ok(())
        }))
    })
}

/// (Addition to ABI v1.) How long to wait for the peer's close frame after
/// sending ours, in milliseconds (default 5000; 0 = default). When it runs
/// out the CLOSE event has code 1006, clean = false.
#[no_mangle]
pub extern "C" fn wsb_options_set_close_timeout(opts: *mut wsb_options, ms: u32) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.close_timeout(ms);
            Ok(())
        }))
    })
}

/// (Addition to ABI v1.) Also trust the operating system's certificate store
/// (default false): on Linux the system bundle, found the way OpenSSL finds it
/// (e.g. /etc/ssl/certs/ca-certificates.crt), or the files named by
/// SSL_CERT_FILE / SSL_CERT_DIR when those are set; on Windows the Root
/// certificate store. These are added to the built-in (webpki) roots and to
/// those from wsb_options_add_root_certificates.
///
/// The store is read once per process, on the I/O thread of the first wss://
/// connect that asks for it; entries that do not parse are skipped, and if
/// the store cannot be read the other roots still apply (a certificate
/// failure's detail then says why). Never blocks; any thread. No effect when
/// verification is off.
#[no_mangle]
pub extern "C" fn wsb_options_set_native_roots(opts: *mut wsb_options, enable: bool) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.native_roots(enable);
            Ok(())
        }))
    })
}

/// (Addition to ABI v1.) Tunnel every connection made with these options
/// through an HTTP proxy, with `CONNECT host:port` (for ws:// and wss://
/// alike; with wss:// TLS runs end to end through the tunnel).
///
/// `url` is `http://[user[:password]@]host[:port]` (port 80 by default;
/// %-escapes allowed in user and password, which are sent as Basic
/// Proxy-Authorization); "" removes the proxy (the default: a direct
/// connection; proxy environment variables are not read). Any other form,
/// e.g. https:// or socks5://, is WSB_ERR_INVALID_URL here. The string is
/// copied; the call never blocks; any thread. The connect timeout covers the
/// proxy too, and wsb_close / wsb_shutdown interrupt it. Every proxy failure
/// is a connect failure, WSB_ERR_CONNECT, with a detail naming the proxy,
/// e.g. `proxy 127.0.0.1:3128 refused CONNECT to example.com:443: HTTP 403
/// Forbidden` (407: "requires authentication" / "rejected the credentials").
/// A reply that is not HTTP is quoted by its first line, printable and
/// truncated: `proxy ... sent a malformed reply to CONNECT: "SSH-2.0-..."`.
#[no_mangle]
pub extern "C" fn wsb_options_set_proxy(opts: *mut wsb_options, url: *const c_char) -> wsb_result {
    boundary(|| {
        // SAFETY: NULL-checked in c_str; the caller passes a NUL-terminated string.
        let url = unsafe { c_str(url, "url") }?;
        let url = url.to_str().map_err(|_| {
            Error::new(
                wsb_result::WSB_ERR_INVALID_URL,
                "proxy URL is not valid UTF-8",
            )
        })?;
        ok(with_options(opts, |o| o.proxy(url)))
    })
}

/// (Addition to ABI v1.) Offer permessage-deflate compression (RFC 7692)
/// on connections made with these options: `enable` true sends
/// `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits`
/// (or the parameters set with wsb_options_set_compression_params). Default
/// false. Whether the server accepted is known at OPEN: wsb_get_compression.
///
/// With compression on, text and binary messages of 64 bytes or more are
/// sent compressed (smaller ones, and pings, pongs and close frames, never);
/// incoming compressed messages are inflated as their frames arrive, and the
/// message size limit applies to the inflated size (inflation stops there:
/// WSB_ERR_MESSAGE_TOO_LARGE, close 1009); compressed data that does not
/// inflate is WSB_ERR_PROTOCOL with close 1002 ("invalid compressed data").
/// An answer the server may not give
/// (an unknown or repeated parameter, a window size out of range, a
/// parameter not offered) fails the upgrade with WSB_ERR_HANDSHAKE. Each
/// connection then keeps a compressor (about 320 KiB at window 15, made at
/// the first compressed send) and a decompressor (up to about 40 KiB, made
/// at the first compressed message), freed when the connection ends; a
/// connection that never sends or receives a compressed message costs
/// nothing more. No context takeover (wsb_options_set_compression_params)
/// saves no memory: the same state is reset, not freed. Never blocks; any
/// thread.
#[no_mangle]
pub extern "C" fn wsb_options_set_compression(opts: *mut wsb_options, enable: bool) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.compression(enable);
            Ok(())
        }))
    })
}

/// (Addition to ABI v1.) The permessage-deflate parameters to offer when
/// compression is on (wsb_options_set_compression; this call alone does not
/// turn it on).
///
/// `client_max_window_bits`, `server_max_window_bits`: 9 to 15, or 0 to leave
/// the parameter out (the default offer sends `client_max_window_bits`
/// without a value, so the server may pick our window; 0 here drops even
/// that). `client_no_context_takeover`: we compress each message on its own;
/// `server_no_context_takeover`: we ask the server to. Any other window
/// value is WSB_ERR_INVALID_ARGUMENT with a detail naming the parameter.
/// If the server picks a client window of 8 (which zlib cannot produce),
/// every message is sent uncompressed, as RFC 7692 allows. Never blocks;
/// any thread.
#[no_mangle]
pub extern "C" fn wsb_options_set_compression_params(
    opts: *mut wsb_options,
    client_max_window_bits: u8,
    server_max_window_bits: u8,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
) -> wsb_result {
    boundary(|| {
        ok(with_options(opts, |o| {
            o.compression_params(
                client_max_window_bits,
                server_max_window_bits,
                client_no_context_takeover,
                server_no_context_takeover,
            )
        }))
    })
}
