//! Library-wide calls: version, result names, last error, shutdown.

use std::ffi::c_char;
use std::time::Duration;

use super::{boundary_value, guarded_value, last_error_ptr};
use crate::error::wsb_result;
use crate::registry;

/// Result codes as they arrive from C: any int may be passed, so it is taken
/// as an integer and mapped (the header shows it as `wsb_result`).
#[allow(non_camel_case_types)]
pub type wsb_result_raw = i32;

const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => c"0.0.0",
};

/// The library version, e.g. "0.1.0": a static string, never freed.
#[no_mangle]
pub extern "C" fn wsb_version() -> *const c_char {
    boundary_value(c"0.0.0".as_ptr(), || VERSION.as_ptr())
}

/// The ABI version: 1 for this header. A host can refuse a library whose ABI
/// differs from the WSB_ABI_VERSION it was built against.
#[no_mangle]
pub extern "C" fn wsb_abi_version() -> u32 {
    boundary_value(1, || 1)
}

/// The enumerator's name for `r`, e.g. "WSB_ERR_TLS"; "WSB_UNKNOWN" for a
/// value that is not a wsb_result. A static string, never freed.
#[no_mangle]
pub extern "C" fn wsb_result_name(r: wsb_result_raw) -> *const c_char {
    boundary_value(c"WSB_UNKNOWN".as_ptr(), || match wsb_result::from_raw(r) {
        Some(code) => code.name_cstr().as_ptr(),
        None => c"WSB_UNKNOWN".as_ptr(),
    })
}

/// A one-line detail of the last failed wsb_ call made on the calling thread
/// ("" if none), e.g. "connect to 127.0.0.1:9: Connection refused".
///
/// Owned by the library; valid until the next wsb_ call on this thread. Never NULL.
#[no_mangle]
pub extern "C" fn wsb_last_error() -> *const c_char {
    boundary_value(c"".as_ptr(), last_error_ptr)
}

/// Close every socket and join every I/O thread, waiting at most
/// `timeout_ms` for close handshakes (then connections are dropped), so the
/// library can be dlclose'd / FreeLibrary'd safely.
///
/// Every handle issued before it is invalid afterwards; a call racing with it
/// may return WSB_ERR_SHUTDOWN. It may exceed `timeout_ms` only by the time a
/// DNS lookup already in progress takes (lookups cannot be cancelled). No
/// library code runs after it returns and no notify callback starts; the
/// library may be used again afterwards. Blocks the calling thread.
///
/// Windows: the first wsb_ call pins wsbridge.dll in the process
/// (GetModuleHandleExW with GET_MODULE_HANDLE_EX_FLAG_PIN). FreeLibrary still
/// succeeds, but the DLL stays mapped until the process exits (about 4 MB of
/// address space) with its state, so a later LoadLibrary gets the same module
/// back and runs no DLL initialisation again. A real unload would leak the
/// Windows TLS slots the DLL's Rust runtime took (7 per load, never freed),
/// and the process would abort after about 150 load/unload rounds. A DLL that
/// was loaded but never called is unloaded as usual.
#[no_mangle]
pub extern "C" fn wsb_shutdown(timeout_ms: u32) {
    guarded_value((), || {
        registry::shutdown(Duration::from_millis(timeout_ms.into()))
    })
}
