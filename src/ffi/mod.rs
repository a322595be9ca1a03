//! The C ABI. Everything `unsafe` in the crate lives in this module: raw
//! pointers from C are checked for NULL and turned into safe values here, then
//! the safe core does the work. Every `extern "C"` function runs inside
//! [`boundary`]: a panic becomes `WSB_ERR_INTERNAL`, never an unwind into C.
//!
//! The entry points are plain `extern "C" fn`s (not `unsafe fn`) because C is
//! their caller; the pointer rules each one relies on are in its header doc.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{wsb_result, Error, Result};

pub mod library;
pub mod log;
pub mod options;
pub(crate) mod sigpipe;
pub mod socket;
pub mod stats;
pub mod types;

/// A host's `user_data`, handed back to its callback (notify, log hook) on
/// any thread.
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: the pointer is never dereferenced here, only passed back to the
// host's callback, which wsb_set_notify and wsb_set_log document is called
// from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above; shared only to be passed back as is.
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer (a method, so that a closure captures the whole
    /// `UserData`, not its non-Send field).
    pub(crate) fn get(&self) -> *mut c_void {
        self.0
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Record the detail of a failed call for `wsb_last_error()` on this thread.
pub(crate) fn set_last_error(detail: &str) {
    let c = CString::new(detail.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Windows: pins the module that holds this code (wsbridge.dll) the first
/// time the API is used, so that FreeLibrary never unmaps it. Rust's
/// `x86_64-pc-windows-gnu` std has no native thread-locals: each
/// `thread_local!` (std's and this crate's) takes a `TlsAlloc` slot that is
/// never freed, so every real unload leaked 7 of the process's 1 088 slots and
/// the process aborted ("out of TLS indexes") after about 150 load/unload
/// rounds. Pinned, a reload gets the same module back and takes no new slots.
/// Statically linked (staticlib, rlib), the module is the program itself, which
/// is never unloaded: pinning it changes nothing.
#[cfg(windows)]
fn pin_module() {
    use std::ffi::c_void;
    use std::sync::Once;

    const GET_MODULE_HANDLE_EX_FLAG_PIN: u32 = 0x1;
    const GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS: u32 = 0x4;
    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut *mut c_void) -> i32;
    }
    static PIN: Once = Once::new();
    PIN.call_once(|| {
        let mut module: *mut c_void = std::ptr::null_mut();
        // SAFETY: with FLAG_FROM_ADDRESS, `name` is only used as an address
        // inside the module to find (PIN is a static of this module), never
        // read as a string; `module` is a valid out-pointer. A pinned module's
        // handle needs no FreeLibrary. On failure (never expected) the module
        // simply stays unpinned: nothing else depends on it.
        let _ = unsafe {
            GetModuleHandleExW(
                GET_MODULE_HANDLE_EX_FLAG_PIN | GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
                (&PIN as *const Once).cast(),
                &mut module,
            )
        };
    });
}

#[cfg(not(windows))]
fn pin_module() {}

/// The one panic boundary. Runs `f`; maps `Err` to its code (recording the
/// detail, and logging it) and a panic to `WSB_ERR_INTERNAL`. Refused with
/// `WSB_ERR_IN_LOG_HOOK` inside the log hook (see [`crate::log`]). On
/// Windows the first call pins the DLL ([`pin_module`]).
pub(crate) fn boundary(f: impl FnOnce() -> Result<wsb_result>) -> wsb_result {
    boundary_on(0, f)
}

/// [`boundary`] for a call about socket `s`: a failure's log line names it.
pub(crate) fn boundary_on(s: u64, f: impl FnOnce() -> Result<wsb_result>) -> wsb_result {
    if refused_in_hook() {
        return wsb_result::WSB_ERR_IN_LOG_HOOK;
    }
    match catch_unwind(AssertUnwindSafe(|| {
        pin_module();
        f()
    })) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            // Logged first: a hook's refused calls set the last error too.
            log_returned(s, &e);
            set_last_error(&e.detail);
            e.code
        }
        Err(_) => {
            crate::log::log!(
                Error,
                s,
                "internal error: a panic was caught at the API boundary"
            );
            set_last_error("internal error: a panic was caught at the API boundary");
            wsb_result::WSB_ERR_INTERNAL
        }
    }
}

/// A failure returned to the caller, logged on its thread: WARN for a full
/// send queue, ERROR for the rest.
fn log_returned(s: u64, e: &Error) {
    let name = e.code.name_cstr().to_str().unwrap_or("");
    if e.code == wsb_result::WSB_ERR_QUEUE_FULL {
        crate::log::log!(Warn, s, "{name}: {}", e.detail);
    } else {
        crate::log::log!(Error, s, "{name}: {}", e.detail);
    }
}

/// Inside the log hook every call but the few that take no lock is refused
/// (see wsb_set_log): true, with the detail recorded, if this one must be.
fn refused_in_hook() -> bool {
    if !crate::log::in_hook() {
        return false;
    }
    set_last_error(
        "called from inside the log hook, which may call only wsb_last_error, wsb_result_name and wsb_version",
    );
    true
}

/// The same boundary for functions that return a value instead of a code:
/// `fallback` is returned if `f` panics. Not refused inside the log hook:
/// for the calls that take no lock.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(|| {
        pin_module();
        f()
    })) {
        Ok(v) => v,
        Err(_) => {
            set_last_error("internal error: a panic was caught at the API boundary");
            fallback
        }
    }
}

/// [`boundary_value`] for a call that is refused inside the log hook:
/// there it returns `fallback` and does nothing.
pub(crate) fn guarded_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    if refused_in_hook() {
        return fallback;
    }
    boundary_value(fallback, f)
}

pub(crate) fn null_arg(name: &str) -> Error {
    Error::new(wsb_result::WSB_ERR_NULL_ARGUMENT, format!("{name} is NULL"))
}

/// Borrow a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a CStr> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    Ok(unsafe { CStr::from_ptr(p) })
}

/// Borrow `len` bytes at `p`; NULL is accepted only when `len` is 0.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null_arg(name));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "{name}: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, len fits isize, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Write `v` to an out-pointer.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, v: T, name: &str) -> Result<()> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL, and the caller guarantees it is writable and aligned.
    unsafe { p.write(v) };
    Ok(())
}
