//! The log hook (wsb_set_log) and WSBRIDGE_LOG: the lines of a connection's
//! life, what they never contain (payloads, credentials), the guarantee that
//! a removed hook is never called again, what a hook may call, and the
//! stderr lines with no hook. Against the loopback test server and small
//! in-process peers.
//!
//! The hook is process-wide: the tests that install one take `SERIAL`, and
//! each looks only at the lines of its own sockets.

mod capi;
mod support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use capi::*;
use parking_lot::Mutex;
use support::TestServer;
use wsbridge::ffi::library::*;
use wsbridge::ffi::log::*;
use wsbridge::ffi::options::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

const ERROR: i32 = wsb_log_level::WSB_LOG_ERROR as i32;
const WARN: i32 = wsb_log_level::WSB_LOG_WARN as i32;
const INFO: i32 = wsb_log_level::WSB_LOG_INFO as i32;
const DEBUG: i32 = wsb_log_level::WSB_LOG_DEBUG as i32;

static SERIAL: StdMutex<()> = StdMutex::new(());

#[derive(Debug, Clone)]
struct Line {
    level: i32,
    socket: u64,
    text: String,
    thread: ThreadId,
}

#[derive(Default)]
struct Collector {
    lines: Mutex<Vec<Line>>,
}

extern "C" fn collect(user: *mut c_void, level: i32, s: u64, message: *const c_char) {
    // SAFETY: `user` is the Collector given to wsb_set_log, which outlives
    // the hook (Hooked removes the hook before dropping it).
    let c = unsafe { &*(user as *const Collector) };
    // SAFETY: the library passes a NUL-terminated line valid for the call.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    c.lines.lock().push(Line {
        level,
        socket: s,
        text,
        thread: thread::current().id(),
    });
}

/// A collecting hook, installed for the test's duration (serialised).
struct Hooked {
    collector: Box<Collector>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Hooked {
    fn install(max_level: i32) -> Hooked {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let collector = Box::<Collector>::default();
        let user = &*collector as *const Collector as *mut c_void;
        assert_eq!(wsb_set_log(Some(collect), user, max_level), WSB_OK);
        Hooked {
            collector,
            _serial: serial,
        }
    }

    fn lines_of(&self, s: u64) -> Vec<Line> {
        let lines = self.collector.lines.lock();
        lines.iter().filter(|l| l.socket == s).cloned().collect()
    }

    fn all(&self) -> Vec<Line> {
        self.collector.lines.lock().clone()
    }
}

impl Drop for Hooked {
    fn drop(&mut self) {
        // After this returns the hook is never called again, so the
        // collector may go.
        assert_eq!(wsb_set_log(None, ptr::null_mut(), 0), WSB_OK);
    }
}

/// Each of `expected` (level, substring) in order, each in a later line
/// than the one before.
fn assert_in_order(lines: &[Line], expected: &[(i32, &str)]) {
    let mut from = 0;
    for (level, want) in expected {
        match lines[from..]
            .iter()
            .position(|l| l.level == *level && l.text.contains(want))
        {
            Some(i) => from += i + 1,
            None => panic!(
                "no level-{level} line containing {want:?} after line {from}; lines:\n{}",
                show(lines)
            ),
        }
    }
}

fn show(lines: &[Line]) -> String {
    let shown: Vec<String> = lines
        .iter()
        .map(|l| format!("  [{}] socket {}: {}", l.level, l.socket, l.text))
        .collect();
    shown.join("\n")
}

#[test]
fn a_wss_connect_echo_and_close_logs_each_step() {
    let srv = TestServer::start();
    let hook = Hooked::install(DEBUG);
    let payload = "payload-XYZZY-42";
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&Opts::new().ca(&srv.ca_pem)));
    assert_eq!(ws.send_text(payload), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), payload);
    assert_eq!(ws.close(1000, Some("bye")), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(
        (evs.last().unwrap().close_code, evs.last().unwrap().clean),
        (1000, true)
    );
    let lines = hook.lines_of(ws.0);
    assert_in_order(
        &lines,
        &[
            (INFO, "DNS localhost: "),
            (INFO, "TCP connected to 127.0.0.1:"),
            (INFO, "TLS: TLSv1_3, TLS13_"),
            (
                DEBUG,
                "upgrade request: GET /echo HTTP/1.1 | Host: localhost:",
            ),
            (INFO, "upgrade response: HTTP/1.1 101"),
            (INFO, "negotiated: subprotocol none, extensions none"),
            (INFO, "OPEN"),
            (DEBUG, "frame out: text (0x1), 16 bytes, FIN"),
            (DEBUG, "frame in: text (0x1), 16 bytes, FIN"),
            (INFO, "close sent: 1000 \"bye\""),
            (DEBUG, "frame out: close (0x8), 5 bytes, FIN"),
            (DEBUG, "frame in: close (0x8)"),
            (INFO, "close received: 1000"),
            (INFO, "CLOSE 1000 clean, reason"),
        ],
    );
    for l in &lines {
        assert!(!l.text.contains("XYZZY"), "payload in the log: {}", l.text);
        assert!(!l.text.contains('\n'), "one line per call: {:?}", l.text);
        assert!((ERROR..=DEBUG).contains(&l.level));
    }
    assert!(
        !lines.iter().any(|l| l.level <= WARN),
        "a clean echo logs no warning or error:\n{}",
        show(&lines)
    );
}

#[test]
fn the_max_level_filters_and_must_be_a_level() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for bad in [0, 5, -1, i32::MAX] {
        assert_eq!(
            wsb_set_log(Some(collect), ptr::null_mut(), bad),
            WSB_ERR_INVALID_ARGUMENT,
            "max_level {bad}"
        );
        assert!(last_error().contains("wsb_log_level"), "{}", last_error());
    }
    // With NULL the level is not looked at.
    assert_eq!(wsb_set_log(None, ptr::null_mut(), 99), WSB_OK);
    drop(_serial);

    let srv = TestServer::start();
    let hook = Hooked::install(WARN);
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.send_text("hi"), WSB_OK);
    ws.expect(WSB_EVENT_TEXT);
    assert_eq!(ws.close(1000, None), WSB_OK);
    ws.until_close();
    assert!(
        hook.lines_of(ws.0).is_empty(),
        "a WARN hook gets no INFO or DEBUG line:\n{}",
        show(&hook.lines_of(ws.0))
    );
}

#[test]
fn failures_are_errors_and_protocol_violations_warnings() {
    let srv = TestServer::start();
    let hook = Hooked::install(INFO);

    // The peer sends a frame with the unknown data opcode 3.
    let ws = Ws::open(&srv.url("/raw?hex=8300"), None);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{evs:?}");
    assert_in_order(
        &hook.lines_of(ws.0),
        &[
            (INFO, "OPEN"),
            (
                WARN,
                "peer broke the protocol: protocol error: unknown data opcode 3",
            ),
            (INFO, "close sent: 1002"),
            (
                ERROR,
                "ERROR WSB_ERR_PROTOCOL: protocol error: unknown data opcode 3",
            ),
            (INFO, "CLOSE 1002"),
        ],
    );

    // A refused TCP connect: the attempt, then the failure.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ws = Ws::connect(&format!("ws://127.0.0.1:{port}/"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    ws.until_close();
    assert_in_order(
        &hook.lines_of(ws.0),
        &[
            (INFO, &format!("connect to 127.0.0.1:{port}: ")),
            (
                ERROR,
                &format!("ERROR WSB_ERR_CONNECT: connect to 127.0.0.1:{port}"),
            ),
            (INFO, "CLOSE 1006 not clean"),
        ],
    );

    // An error a call returns is logged on the calling thread, under the
    // socket it names; a full send queue is a warning.
    let stale = ws.0;
    drop(ws);
    assert_eq!(
        wsb_send_text(stale, c"x".as_ptr(), 1),
        WSB_ERR_INVALID_HANDLE
    );
    let me = thread::current().id();
    let lines = hook.lines_of(stale);
    let last = lines.last().expect("a line for the failed call");
    assert_eq!(last.level, ERROR);
    assert!(
        last.text.starts_with("WSB_ERR_INVALID_HANDLE: "),
        "{}",
        last.text
    );
    assert_eq!(last.thread, me, "logged on the calling thread");

    let ws = Ws::connect(&srv.hang_url("/"), Some(&Opts::new().queue_limit(4))).unwrap();
    // (One message is always accepted into an empty queue.)
    assert_eq!(ws.send_text("12345"), WSB_OK);
    assert_eq!(ws.send_text("12345"), WSB_ERR_QUEUE_FULL);
    let lines = hook.lines_of(ws.0);
    assert!(
        lines
            .iter()
            .any(|l| l.level == WARN && l.text.starts_with("WSB_ERR_QUEUE_FULL: ")),
        "{}",
        show(&lines)
    );
}

#[test]
fn a_keepalive_timeout_is_a_warning() {
    let srv = TestServer::start();
    let hook = Hooked::install(WARN);
    // The peer never reads, so our pings go unanswered.
    let ws = Ws::open(&srv.url("/silent"), Some(&Opts::new().keepalive(100, 200)));
    ws.until_close();
    assert_in_order(
        &hook.lines_of(ws.0),
        &[
            (
                WARN,
                "keepalive: nothing received within 200 ms of our ping",
            ),
            (ERROR, "ERROR WSB_ERR_IO: keepalive timeout"),
        ],
    );
}

#[test]
fn a_rejected_certificate_is_logged_with_its_subject() {
    let srv = TestServer::start();
    let hook = Hooked::install(INFO);
    // No CA added: the test server's certificate is not trusted.
    let ws = Ws::connect(&srv.tls_url("/echo"), None).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_TLS);
    ws.until_close();
    assert_in_order(
        &hook.lines_of(ws.0),
        &[
            (
                INFO,
                "server certificate rejected (invalid peer certificate: UnknownIssuer): subject \"CN=localhost\", issuer \"CN=wsbridge test CA\", valid ",
            ),
            (ERROR, "ERROR WSB_ERR_TLS: invalid peer certificate: UnknownIssuer"),
        ],
    );
}

/// A CONNECT proxy that demands credentials and refuses whatever it gets:
/// returns its port and the request head it received.
fn refusing_proxy() -> (u16, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
            if conn.read(&mut b).unwrap_or(0) == 0 {
                break;
            }
            head.push(b[0]);
        }
        let _ = conn
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, t)
}

#[test]
fn secrets_never_reach_the_log() {
    let srv = TestServer::start();
    let hook = Hooked::install(DEBUG);
    let secrets = [
        "TOKEN-SECRET-1",
        "COOKIE-SECRET-2",
        "PROXY-SECRET-3",
        "API-SECRET-4",
    ];

    let o = Opts::new()
        .header("Authorization", "Bearer TOKEN-SECRET-1")
        .header("cookie", "sid=COOKIE-SECRET-2")
        .header("X-Api-Token", "API-SECRET-4")
        .header("X-Visible", "shown");
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    assert_eq!(ws.close(1000, None), WSB_OK);
    ws.until_close();
    let request = hook
        .lines_of(ws.0)
        .into_iter()
        .find(|l| l.text.starts_with("upgrade request: "))
        .expect("the upgrade request is logged at DEBUG");
    for shown in [
        "Authorization: [redacted]",
        "cookie: [redacted]",
        "X-Api-Token: [redacted]",
        "X-Visible: shown",
    ] {
        assert!(request.text.contains(shown), "{shown}: {}", request.text);
    }

    let (port, proxy) = refusing_proxy();
    let o = Opts::new();
    let proxy_url = CString::new(format!("http://user:PROXY-SECRET-3@127.0.0.1:{port}")).unwrap();
    assert_eq!(wsb_options_set_proxy(o.0, proxy_url.as_ptr()), WSB_OK);
    let ws = Ws::connect("ws://127.0.0.1:9/echo", Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    ws.until_close();
    let head = proxy.join().unwrap();
    assert!(
        head.contains("Proxy-Authorization: Basic "),
        "the proxy got the credentials: {head}"
    );
    let basic = head
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: Basic "))
        .unwrap()
        .trim()
        .to_string();
    assert_in_order(
        &hook.lines_of(ws.0),
        &[
            (INFO, &format!("via HTTP proxy 127.0.0.1:{port}")),
            (INFO, "CONNECT 127.0.0.1:9 (with credentials, not shown)"),
            (INFO, "HTTP 407"),
            (ERROR, "rejected the credentials"),
        ],
    );

    for l in hook.all() {
        for secret in secrets.iter().chain([&basic.as_str()]) {
            assert!(!l.text.contains(secret), "{secret} in the log: {}", l.text);
        }
    }
}

/// What the hook of `no_hook_call_after_removal` shares with the test.
#[derive(Default)]
struct Watch {
    removed: AtomicBool,
    calls: AtomicUsize,
    late: AtomicUsize,
}

extern "C" fn watch(user: *mut c_void, _level: i32, _s: u64, _message: *const c_char) {
    // SAFETY: `user` is a Watch that the test keeps alive to its end.
    let w = unsafe { &*(user as *const Watch) };
    if w.removed.load(Ordering::SeqCst) {
        w.late.fetch_add(1, Ordering::SeqCst);
    }
    w.calls.fetch_add(1, Ordering::SeqCst);
    // Stay a little, so removals meet calls in progress.
    for _ in 0..2000 {
        std::hint::spin_loop();
    }
}

/// After wsb_set_log(NULL) returns, the removed hook is never called: with
/// traffic logging from two threads (the sender's frames out, the I/O
/// thread's frames in), 40 rounds of install, first call, remove. The hook
/// counts calls that began after `removed` was set, which the test sets
/// only once the removal returned.
#[test]
fn no_hook_call_after_removal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let stop = AtomicBool::new(false);
    let mut watches: Vec<Box<Watch>> = Vec::new();
    thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(ws.send_text("tick"), WSB_OK);
                ws.expect(WSB_EVENT_TEXT);
                sent += 1;
            }
            sent
        });
        for round in 0..40 {
            let w = Box::<Watch>::default();
            let user = &*w as *const Watch as *mut c_void;
            assert_eq!(wsb_set_log(Some(watch), user, DEBUG), WSB_OK);
            let deadline = Instant::now() + Duration::from_secs(20);
            while w.calls.load(Ordering::SeqCst) == 0 {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the hook was never called"
                );
                thread::yield_now();
            }
            assert_eq!(wsb_set_log(None, ptr::null_mut(), 0), WSB_OK);
            w.removed.store(true, Ordering::SeqCst);
            watches.push(w);
        }
        // More traffic with no hook: any late call would be counted.
        let target = watches
            .iter()
            .map(|w| w.calls.load(Ordering::SeqCst))
            .sum::<usize>();
        assert!(target >= 40);
        stop.store(true, Ordering::Relaxed);
        assert!(sender.join().unwrap() > 0);
    });
    assert_eq!(ws.send_text("after"), WSB_OK);
    ws.expect(WSB_EVENT_TEXT);
    for (round, w) in watches.iter().enumerate() {
        assert_eq!(
            w.late.load(Ordering::SeqCst),
            0,
            "round {round}: the hook was called after its removal returned"
        );
    }
}

/// What `reentry` records of the calls it makes from inside the hook.
#[derive(Default)]
struct Reentry {
    socket: std::sync::atomic::AtomicU64,
    done: AtomicBool,
    results: Mutex<Vec<(String, String)>>,
}

extern "C" fn reentry(user: *mut c_void, _level: i32, s: u64, message: *const c_char) {
    // SAFETY: `user` is the test's Reentry, alive until the hook is removed.
    let r = unsafe { &*(user as *const Reentry) };
    // SAFETY: valid for the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if s != r.socket.load(Ordering::SeqCst) || text != "OPEN" || r.done.swap(true, Ordering::SeqCst)
    {
        return;
    }
    let mut got = Vec::new();
    let name = |code| {
        // SAFETY: static string.
        unsafe { CStr::from_ptr(wsb_result_name(code as i32)) }
            .to_string_lossy()
            .into_owned()
    };
    let last = || {
        // SAFETY: valid until the next wsb_ call on this thread; copied now.
        unsafe { CStr::from_ptr(wsb_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    got.push((
        "send".into(),
        name(wsb_send_text(s, c"from the hook".as_ptr(), 13)),
    ));
    got.push(("last_error".into(), last()));
    got.push(("close".into(), name(wsb_close(s, 1000, ptr::null()))));
    got.push((
        "set_log".into(),
        name(wsb_set_log(None, ptr::null_mut(), 0)),
    ));
    let mut state = wsbridge::ffi::types::wsb_state::WSB_STATE_CLOSED;
    got.push(("get_state".into(), name(wsb_get_state(s, &mut state))));
    got.push(("free".into(), name(wsb_free(s))));
    wsb_shutdown(0);
    got.push(("options_new".into(), format!("{:?}", wsb_options_new())));
    // SAFETY: static string.
    let version = unsafe { CStr::from_ptr(wsb_version()) }.to_string_lossy();
    got.push(("version".into(), version.into_owned()));
    r.results.lock().extend(got);
}

/// Inside the hook only wsb_last_error, wsb_result_name, wsb_version (and
/// wsb_abi_version) work; every other call returns WSB_ERR_IN_LOG_HOOK and
/// does nothing: the socket stays open, no message goes out, the hook stays.
#[test]
fn inside_the_hook_only_the_lock_free_calls_work() {
    let srv = TestServer::start();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Box::<Reentry>::default();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    r.socket.store(ws.0, Ordering::SeqCst);
    let user = &*r as *const Reentry as *mut c_void;
    assert_eq!(wsb_set_log(Some(reentry), user, INFO), WSB_OK);
    // The connect may have logged OPEN before the hook was set: then a
    // second socket does it.
    let ws2;
    let target = if ws.wait_open() == WSB_OK && !r.done.load(Ordering::SeqCst) {
        ws2 = Ws::connect(&srv.url("/echo"), None).unwrap();
        r.socket.store(ws2.0, Ordering::SeqCst);
        assert_eq!(ws2.wait_open(), WSB_OK);
        &ws2
    } else {
        &ws
    };
    assert!(r.done.load(Ordering::SeqCst), "the hook saw OPEN");
    let got = r.results.lock().clone();
    let get = |k: &str| {
        got.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} not recorded: {got:?}"))
    };
    for call in ["send", "close", "set_log", "get_state", "free"] {
        assert_eq!(get(call), "WSB_ERR_IN_LOG_HOOK", "{call} inside the hook");
    }
    assert!(get("last_error").contains("inside the log hook"), "{got:?}");
    assert_eq!(get("options_new"), "0x0");
    assert_eq!(get("version"), env!("CARGO_PKG_VERSION"));
    // Nothing was done: the socket is open and only our message comes back.
    assert_eq!(target.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    assert_eq!(target.send_text("after"), WSB_OK);
    assert_eq!(target.expect(WSB_EVENT_TEXT).text(), "after");
    assert_eq!(wsb_set_log(None, ptr::null_mut(), 0), WSB_OK);
    drop(r);
}

/// With no hook and WSBRIDGE_LOG set, the lines go to stderr; with a hook,
/// they go to the hook only. Each case is a child process (the variable is
/// read once per process).
#[test]
fn wsbridge_log_writes_the_same_lines_to_stderr() {
    let exe = std::env::current_exe().expect("test binary path");
    let run = |level: &str, hook: bool| {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "env_child_case", "--nocapture"])
            .env("WSBRIDGE_LOG", level)
            .env(CHILD, if hook { "hook" } else { "stderr" })
            .output()
            .expect("run the child");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "child ({level}, hook {hook}):\n{stderr}"
        );
        assert!(stderr.contains("env child ran"), "{stderr}");
        stderr
    };
    let info = run("info", false);
    for want in [
        ": TCP connected to 127.0.0.1:",
        ": upgrade response: HTTP/1.1 101",
        ": OPEN",
        ": close sent: 1000 \"done\"",
        ": CLOSE 1000 clean",
    ] {
        assert!(
            info.lines()
                .any(|l| l.starts_with("wsbridge INFO  socket ") && l.contains(want)),
            "{want}:\n{info}"
        );
    }
    assert!(!info.contains("wsbridge DEBUG"), "{info}");
    assert!(!info.contains("ENV-PAYLOAD"), "{info}");

    let debug = run("DEBUG", false);
    assert!(
        debug
            .lines()
            .any(|l| l.starts_with("wsbridge DEBUG socket ")
                && l.ends_with(": frame out: text (0x1), 11 bytes, FIN")),
        "{debug}"
    );

    let hooked = run("debug", true);
    assert!(
        !hooked.contains("wsbridge "),
        "a hook takes the lines:\n{hooked}"
    );
}

const CHILD: &str = "WSB_LOG_TEST_CHILD";

/// One child of the test above: an echo and a close, with or without a hook.
#[test]
fn env_child_case() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let srv = TestServer::start();
    let hook = (mode == "hook").then(|| Hooked::install(DEBUG));
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.send_text("ENV-PAYLOAD"), WSB_OK);
    ws.expect(WSB_EVENT_TEXT);
    assert_eq!(ws.close(1000, Some("done")), WSB_OK);
    ws.until_close();
    if let Some(hook) = hook {
        assert!(hook.lines_of(ws.0).iter().any(|l| l.text == "OPEN"));
    }
    eprintln!("env child ran");
}
