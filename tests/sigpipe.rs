//! The library never raises SIGPIPE, whatever the host's signal disposition.
//!
//! A C host that leaves signals alone has SIGPIPE at its default action:
//! the process dies (exit status 141 in a shell) on a write to a
//! connection its peer has dropped. A Rust test binary ignores SIGPIPE at
//! start-up, so the rounds run in a child process (this binary again, the
//! ignored test `child_rounds`) that sets SIGPIPE back to its default
//! first. The peers and the proxy run here, in the parent.
//!
//! Each round connects to a peer that takes the upgrade, reads and drops
//! frames for 10–150 ms, then drops TCP (a reset, or a close) with no close
//! frame and no close_notify, while the host sends 1–64 KiB binary messages
//! back to back and polls between sends. 200 rounds against each kind of
//! peer, each case of {ws, wss} × {compression off, on} × {direct, through
//! the CONNECT proxy} × {sends from the host thread, from a second thread}
//! taken in turn. The child must live through every round, and each round
//! must end in ERROR then CLOSE 1006.

mod capi;
mod support;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use capi::*;
use support::dropper::{DroppingPeer, Ending, MirrorProxy};
use wsbridge::ffi::options::wsb_options_set_proxy;
use wsbridge::ffi::socket::wsb_send_binary;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

const ROUNDS_PER_ENDING: usize = 200;
/// Rounds run side by side in the child.
const WORKERS: usize = 4;
/// Bound on one round (never reached when things work).
const ROUND_LIMIT: Duration = Duration::from_secs(20);
/// Bound on the whole child.
const CHILD_LIMIT: Duration = Duration::from_secs(300);
const ENV: &str = "WSB_SIGPIPE_CHILD";

#[test]
fn the_host_survives_peers_that_drop_the_connection_while_it_sends() {
    let resetting = DroppingPeer::start(Ending::Reset);
    let closing = DroppingPeer::start(Ending::Close);
    let proxy = MirrorProxy::start();
    // One line per setting: the child reads them back in this order.
    let config = [
        resetting.url(),
        resetting.tls_url(),
        closing.url(),
        closing.tls_url(),
        proxy.url(),
        format!("{}{}", resetting.ca_pem, closing.ca_pem).replace('\n', "|"),
    ]
    .join("\n");
    let out = run_child("child_rounds", &[(ENV, &config)], false);
    let done = format!("{} rounds survived", 2 * ROUNDS_PER_ENDING);
    assert!(
        out.contains(&done),
        "no '{done}' in the child's output:\n{out}"
    );
}

/// Run the ignored test `name` of this binary in a child process with
/// `env` set; with `broken_stderr`, its stderr is a pipe whose reading end
/// is closed at once. Returns the child's stdout once it exited
/// successfully; fails if a signal killed it (SIGPIPE is 13).
fn run_child(name: &str, env: &[(&str, &str)], broken_stderr: bool) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(if broken_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("start the child");
    drop(child.stderr.take());
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    // The child's stdout ends when it exits.
    let out = rx.recv_timeout(CHILD_LIMIT).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        let _ = child.wait();
        panic!("the child did not finish within {CHILD_LIMIT:?}");
    });
    let status = child.wait().expect("wait for the child");
    assert_eq!(
        status.signal(),
        None,
        "the child was killed by signal {:?} (13 is SIGPIPE); its output:\n{out}",
        status.signal()
    );
    assert!(status.success(), "the child failed ({status}):\n{out}");
    out
}

/// SIGPIPE back at its default action, as a C host that leaves signals
/// alone has it (a Rust binary, this one included, starts with it ignored).
fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler; this process is a
    // child that nothing else shares, and this is its only change of
    // SIGPIPE's disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[test]
fn the_log_on_a_stderr_nobody_reads_does_not_kill_the_host() {
    let srv = support::TestServer::start();
    let url = srv.url("/echo");
    let env = [(ENV, url.as_str()), ("WSBRIDGE_LOG", "debug")];
    let out = run_child("child_logs", &env, true);
    assert!(out.contains("logged and survived"), "{out}");
}

/// WSBRIDGE_LOG=debug (a line per frame) with stderr a broken pipe.
#[test]
#[ignore = "run by the_log_on_a_stderr_nobody_reads_does_not_kill_the_host in a child process"]
fn child_logs() {
    let Ok(url) = std::env::var(ENV) else {
        return;
    };
    default_sigpipe();
    for _ in 0..3 {
        let ws = Ws::open(&url, None);
        for i in 0..20 {
            assert_eq!(ws.send_text(&format!("message {i}")), WSB_OK);
            assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("message {i}"));
        }
        assert_eq!(ws.close(1000, None), WSB_OK);
        assert_eq!(ws.until_close().last().unwrap().close_code, 1000);
    }
    println!("logged and survived");
}

/// The rounds, in the child (see the module doc); skipped when run directly.
#[test]
#[ignore = "run by the_host_survives_peers_that_drop_the_connection_while_it_sends in a child process"]
fn child_rounds() {
    let Ok(config) = std::env::var(ENV) else {
        return;
    };
    default_sigpipe();
    let lines: Vec<&str> = config.lines().collect();
    let [reset_ws, reset_wss, close_ws, close_wss, proxy, ca] = lines[..] else {
        panic!("bad {ENV}: {config:?}");
    };
    let ca = ca.replace('|', "\n");
    let payload = noise(64 * 1024);
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= 2 * ROUNDS_PER_ENDING {
                    return;
                }
                let (ending, case) = (n % 2, n / 2 % 16);
                let tls = case & 1 != 0;
                let deflate = case & 2 != 0;
                let via_proxy = case & 4 != 0;
                let threaded = case & 8 != 0;
                let url = match (ending, tls) {
                    (0, false) => reset_ws,
                    (0, true) => reset_wss,
                    (_, false) => close_ws,
                    (_, true) => close_wss,
                };
                let mut opts = Opts::new().compression(deflate);
                if tls {
                    opts = opts.ca(&ca);
                }
                if via_proxy {
                    let p = std::ffi::CString::new(proxy).unwrap();
                    assert_eq!(wsb_options_set_proxy(opts.0, p.as_ptr()), WSB_OK);
                }
                let what = format!(
                    "round {n}: {url} {}, compression {deflate}, proxy {via_proxy}, \
                     sends from {}",
                    ["reset", "close"][ending],
                    if threaded {
                        "a second thread"
                    } else {
                        "the host thread"
                    }
                );
                if let Err(e) = round(url, &opts, threaded, &payload, n) {
                    failures.lock().unwrap().push(format!("{what}: {e}"));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} rounds went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{} rounds survived", 2 * ROUNDS_PER_ENDING);
}

/// Bytes that do not compress (so compression still writes a lot).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// One round: send until the peer's drop ends the connection; the events
/// after OPEN must be ERROR, then CLOSE 1006 (not clean).
fn round(url: &str, opts: &Opts, threaded: bool, payload: &[u8], n: usize) -> Result<(), String> {
    let ws = Ws::connect(url, Some(opts)).map_err(|(r, d)| format!("connect: {r:?} {d}"))?;
    let r = ws.wait_open();
    if r != WSB_OK {
        return Err(format!("open: {r:?} {}", last_error()));
    }
    match ws.next() {
        Some(ev) if ev.kind == WSB_EVENT_OPEN => {}
        other => return Err(format!("expected OPEN, got {other:?}")),
    }
    let mut events = Vec::new();
    let deadline = Instant::now() + ROUND_LIMIT;
    let size = |k: usize| 1024 + (n * 7919 + k * 104_729) % (63 * 1024 + 1);
    let h = ws.0;
    thread::scope(|s| {
        let sender = threaded.then(|| {
            s.spawn(move || {
                for k in 0.. {
                    let m = &payload[..size(k)];
                    match wsb_send_binary(h, m.as_ptr().cast(), m.len()) {
                        WSB_OK => {}
                        WSB_ERR_QUEUE_FULL if Instant::now() < deadline => thread::yield_now(),
                        other => return other,
                    }
                }
                unreachable!()
            })
        });
        let mut sending = !threaded;
        let mut k = 0;
        while Instant::now() < deadline {
            if sending {
                let m = &payload[..size(k)];
                k += 1;
                match ws.send_binary(m) {
                    WSB_OK | WSB_ERR_QUEUE_FULL => {}
                    _ => sending = false,
                }
            }
            let ev = if sending {
                ws.poll()
            } else {
                ws.next_within(100)
            };
            if let Some(ev) = ev {
                let close = ev.kind == WSB_EVENT_CLOSE;
                events.push(ev);
                if close {
                    break;
                }
            }
        }
        if let Some(t) = sender {
            let r = t.join().unwrap();
            if r != WSB_ERR_NOT_OPEN {
                events.push(Ev {
                    kind: WSB_EVENT_ERROR,
                    error: r,
                    close_code: 0,
                    clean: false,
                    data: b"(the second thread's last send)".to_vec(),
                });
            }
        }
    });
    let shape: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                (e.kind == WSB_EVENT_CLOSE).then_some((e.close_code, e.clean)),
            )
        })
        .collect();
    let want = [
        (WSB_EVENT_ERROR, None),
        (WSB_EVENT_CLOSE, Some((1006, false))),
    ];
    if shape[..] != want[..] {
        return Err(format!("events {events:?}"));
    }
    Ok(())
}
