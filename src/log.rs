//! The log: one line per thing that happened (a connect phase, OPEN, a
//! close, a failure, a frame), sent to the host's hook (`wsb_set_log`) or,
//! with no hook and `WSBRIDGE_LOG` set, to stderr.
//!
//! Lines are made only when someone listens: [`enabled`] is one relaxed
//! atomic load, and the [`log!`] macro formats nothing when it says no.
//! Never logged: payload bytes, the values of `Authorization`, `Cookie` and
//! `Proxy-Authorization` headers, proxy credentials ([`redact_header`]).
//!
//! The hook sits behind a read-write lock: a line is handed to it under the
//! read side, and [`set_hook`] replaces it under the write side, so when
//! `set_hook` returns no call of the old hook is still running and none can
//! start. While a hook runs, its thread is marked ([`in_hook`]) and the C
//! layer refuses every call but `wsb_last_error`, `wsb_result_name` and
//! `wsb_version` (which take no lock): a hook may be called under the
//! library's locks, so anything else could deadlock.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

use parking_lot::RwLock;

use crate::ffi::sigpipe;

/// How much a line matters. The values are the C `wsb_log_level`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    /// The level for a C value, if it is one.
    pub fn from_raw(v: i32) -> Option<Level> {
        Some(match v {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    /// `WSBRIDGE_LOG`'s values: error, warn, info, debug (any case).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }
}

/// A host's hook: called with the level, the socket (0: none) and the line.
pub type Hook = Box<dyn Fn(Level, u64, &CStr) + Send + Sync>;

struct Installed {
    hook: Hook,
    max: Level,
}

static HOOK: RwLock<Option<Installed>> = RwLock::new(None);
/// The most detailed level anyone listens to (0: nobody); `UNREAD` until
/// `WSBRIDGE_LOG` has been read.
static MAX: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = u8::MAX;
/// A hook is installed (then a thread may be inside it).
static HOOKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// `WSBRIDGE_LOG`, read once: the stderr level when no hook is installed.
fn env_level() -> Option<Level> {
    static ENV: OnceLock<Option<Level>> = OnceLock::new();
    *ENV.get_or_init(|| {
        let v = std::env::var("WSBRIDGE_LOG").ok()?;
        let level = Level::parse(&v);
        if level.is_none() && !v.trim().is_empty() {
            let _ = sigpipe::guarded(|| {
                writeln!(
                    std::io::stderr().lock(),
                    "wsbridge: WSBRIDGE_LOG={v:?} is not one of error, warn, info, debug: not logging"
                )
            });
        }
        level
    })
}

/// Whether a line at `level` may go anywhere: one relaxed load and one
/// compare. Before `WSBRIDGE_LOG` has been read (`UNREAD`, above every
/// level) it says yes, and [`emit`] reads it and decides.
#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX.load(Ordering::Relaxed)
}

/// The level anyone listens to, reading `WSBRIDGE_LOG` at the first use.
fn max_level() -> u8 {
    let max = MAX.load(Ordering::Relaxed);
    if max != UNREAD {
        return max;
    }
    let env = env_level().map_or(0, |l| l as u8);
    // A hook installed meanwhile has set MAX already: keep its level.
    match MAX.compare_exchange(UNREAD, env, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => env,
        Err(set) => set,
    }
}

/// Install `hook` for lines up to `max`, or remove the hook (`None`: lines
/// go to stderr again if `WSBRIDGE_LOG` is set). Waits for calls of the old
/// hook in progress to return; no call of it starts afterwards. Must not be
/// called from inside the hook (the C layer refuses it: see [`in_hook`]).
pub fn set_hook(hook: Option<(Hook, Level)>) {
    let env = env_level().map_or(0, |l| l as u8);
    let mut slot = HOOK.write();
    let old = match hook {
        Some((hook, max)) => {
            MAX.store(max as u8, Ordering::Relaxed);
            HOOKED.store(true, Ordering::Relaxed);
            slot.replace(Installed { hook, max })
        }
        None => {
            MAX.store(env, Ordering::Relaxed);
            HOOKED.store(false, Ordering::Relaxed);
            slot.take()
        }
    };
    drop(slot);
    drop(old);
}

/// Whether the calling thread is inside the host's hook. One relaxed load
/// while no hook is installed (every API call asks).
#[inline]
pub fn in_hook() -> bool {
    HOOKED.load(Ordering::Relaxed) && in_hook_slow()
}

/// Out of line, so that the thread-local's address (a `__tls_get_addr`
/// call in a shared library) is not computed ahead of the check above:
/// measured, it was, on every call.
#[cold]
#[inline(never)]
fn in_hook_slow() -> bool {
    IN_HOOK.try_with(Cell::get).unwrap_or(false)
}

/// Hand one line to the hook, or write it to stderr. Callers check
/// [`enabled`] first (the [`log!`] macro does). The line comes as a
/// closure that writes it, so the caller's inline code is one call.
#[cold]
#[inline(never)]
pub fn emit(level: Level, socket: u64, write: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result) {
    if level as u8 > max_level() {
        return;
    }
    struct Text<'a>(&'a dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result);
    impl fmt::Display for Text<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (self.0)(f)
        }
    }
    let line = CString::new(Text(write).to_string()).unwrap_or_else(|e| {
        let mut v = e.into_vec();
        v.retain(|&b| b != 0);
        CString::new(v).unwrap_or_default()
    });
    let slot = HOOK.read();
    match &*slot {
        Some(installed) => {
            if level <= installed.max {
                let _ = IN_HOOK.try_with(|f| f.set(true));
                (installed.hook)(level, socket, &line);
                let _ = IN_HOOK.try_with(|f| f.set(false));
            }
        }
        None => {
            if env_level().is_some_and(|max| level <= max) {
                let _ = sigpipe::guarded(|| {
                    writeln!(std::io::stderr().lock(), "{}", Line(level, socket, &line))
                });
            }
        }
    }
}

/// A line as written to stderr: `wsbridge INFO socket 3: OPEN`.
struct Line<'a>(Level, u64, &'a CStr);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line(level, socket, line) = self;
        write!(f, "wsbridge {:<5} ", level.name())?;
        if *socket != 0 {
            write!(f, "socket {socket}: ")?;
        }
        write!(f, "{}", line.to_string_lossy())
    }
}

/// Log one line: `log!(Info, socket_id, "format", args...)`. Nothing is
/// formatted unless the level is enabled; when it is not, the cost is one
/// relaxed load and a branch, and the formatting code stays out of line.
macro_rules! log {
    ($level:ident, $socket:expr, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit(
                $crate::log::Level::$level,
                $socket,
                &|f: &mut ::std::fmt::Formatter<'_>| f.write_fmt(format_args!($($arg)+)),
            )
        }
    };
}
pub(crate) use log;

/// A header as it may be logged: the values of credentials-bearing headers
/// are replaced by `[redacted]`: `Authorization`, `Cookie`,
/// `Proxy-Authorization`, and any header whose name contains `auth`,
/// `cookie`, `token`, `secret`, `password` or `api-key`/`apikey` (any
/// case), such as `X-Auth-Token` or `X-Api-Key`.
pub fn redact_header(name: &str, value: &str) -> String {
    const SECRET: [&str; 7] = [
        "auth", "cookie", "token", "secret", "password", "api-key", "apikey",
    ];
    let lower = name.to_ascii_lowercase();
    if SECRET.iter().any(|s| lower.contains(s)) {
        format!("{name}: [redacted]")
    } else {
        format!("{name}: {value}")
    }
}

/// An HTTP request head as it may be logged: one line, `\r\n` shown as
/// ` | `, credentials redacted (see [`redact_header`]).
pub fn redact_head(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let mut out = lines.next().unwrap_or("").to_owned();
    for l in lines {
        out.push_str(" | ");
        match l.split_once(':') {
            Some((name, value)) => out.push_str(&redact_header(name.trim(), value.trim())),
            None => out.push_str(l),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_any_case() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\nauthorization: Bearer s3cret\r\nCOOKIE: a=b\r\nProxy-Authorization: Basic eA==\r\nX-Auth-Token: t\r\nX-API-Key: k\r\nX-Other: shown\r\n\r\n";
        let shown = redact_head(head);
        assert_eq!(
            shown,
            "GET / HTTP/1.1 | Host: h | authorization: [redacted] | COOKIE: [redacted] | Proxy-Authorization: [redacted] | X-Auth-Token: [redacted] | X-API-Key: [redacted] | X-Other: shown"
        );
    }

    #[test]
    fn levels_parse_from_the_environment_spelling() {
        assert_eq!(Level::parse("INFO"), Some(Level::Info));
        assert_eq!(Level::parse(" debug "), Some(Level::Debug));
        assert_eq!(Level::parse("verbose"), None);
        assert_eq!(Level::from_raw(2), Some(Level::Warn));
        assert_eq!(Level::from_raw(0), None);
        assert_eq!(Level::from_raw(5), None);
    }
}
