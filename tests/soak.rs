//! Soak: several threads randomly connect, send, close, free and poll over
//! many sockets for a bounded time, then every socket is drained and the
//! contract's invariants are checked: events in order, exactly one CLOSE,
//! every message sent before a clean local close echoed exactly once, in
//! order. `WSB_SOAK_SECS` sets the duration (default 5; CI runs 60).

mod capi;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capi::*;
use parking_lot::Mutex;
use support::TestServer;
use wsbridge::ffi::library::wsb_shutdown;
use wsbridge::ffi::types::wsb_event_kind::{self, *};
use wsbridge::wsb_result::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Echo,
    PeerClose,
    Drop,
    Refused,
}

struct Sock {
    ws: Option<Ws>,
    kind: Kind,
    sent: Vec<String>,
    /// Sends accepted before our wsb_close (those must all be echoed).
    sent_before_close: Option<usize>,
    events: Vec<(wsb_event_kind, String, u16, bool)>,
    freed: bool,
}

impl Sock {
    fn drain(&mut self) {
        if let Some(ws) = &self.ws {
            while let Some(ev) = ws.poll() {
                self.events
                    .push((ev.kind, ev.text(), ev.close_code, ev.clean));
            }
        }
    }
    fn closed(&self) -> bool {
        self.events.last().is_some_and(|e| e.0 == WSB_EVENT_CLOSE)
    }
}

fn check(i: usize, s: &Sock) {
    let ev = &s.events;
    let closes = ev.iter().filter(|e| e.0 == WSB_EVENT_CLOSE).count();
    assert_eq!(
        closes, 1,
        "socket {i} ({:?}): exactly one CLOSE: {ev:?}",
        s.kind
    );
    assert_eq!(
        ev.last().unwrap().0,
        WSB_EVENT_CLOSE,
        "socket {i}: CLOSE last"
    );
    let opens = ev.iter().filter(|e| e.0 == WSB_EVENT_OPEN).count();
    assert!(opens <= 1);
    if opens == 1 {
        assert_eq!(ev[0].0, WSB_EVENT_OPEN, "socket {i}: OPEN first");
    }
    let errors: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e.0 == WSB_EVENT_ERROR)
        .map(|(k, _)| k)
        .collect();
    assert!(errors.len() <= 1, "socket {i}: at most one ERROR: {ev:?}");
    if let Some(&k) = errors.first() {
        assert_eq!(k, ev.len() - 2, "socket {i}: ERROR right before CLOSE");
    }
    if opens == 0 {
        assert!(
            ev.iter()
                .all(|e| matches!(e.0, WSB_EVENT_ERROR | WSB_EVENT_CLOSE)),
            "socket {i}: {ev:?}"
        );
    }
    // Echoed texts: in order, no duplicates, nothing we did not send.
    let texts: Vec<&String> = ev
        .iter()
        .filter(|e| e.0 == WSB_EVENT_TEXT)
        .map(|e| &e.1)
        .collect();
    if s.kind == Kind::Echo {
        for (k, t) in texts.iter().enumerate() {
            assert_eq!(Some(*t), s.sent.get(k), "socket {i}: echo {k} out of order");
        }
    }
    let close = ev.last().unwrap();
    if s.kind == Kind::Echo && close.3 {
        if let Some(n) = s.sent_before_close {
            assert!(
                texts.len() >= n,
                "socket {i}: {} of {n} messages echoed before a clean close",
                texts.len()
            );
        }
    }
}

#[test]
fn soak() {
    let secs: u64 = std::env::var("WSB_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let srv = Arc::new(TestServer::start());
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Live sockets (at most 200 at a time) and freed ones (kept for the checks).
    let socks: Arc<Mutex<Vec<Arc<Mutex<Sock>>>>> = Arc::new(Mutex::new(Vec::new()));
    let done: Arc<Mutex<Vec<Arc<Mutex<Sock>>>>> = Arc::new(Mutex::new(Vec::new()));
    let ops = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (srv, socks, done, ops) = (srv.clone(), socks.clone(), done.clone(), ops.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((w + 1) * 0x1234_5678));
                while Instant::now() < deadline {
                    ops.fetch_add(1, Ordering::Relaxed);
                    let n = socks.lock().len();
                    let live_cap = n < 200;
                    let action = rng.below(100);
                    if n == 0 || (action < 10 && live_cap) {
                        let kind = match rng.below(10) {
                            0 => Kind::PeerClose,
                            1 => Kind::Drop,
                            2 => Kind::Refused,
                            _ => Kind::Echo,
                        };
                        let url = match kind {
                            Kind::Echo => srv.url("/echo"),
                            Kind::PeerClose => srv.url("/close?code=4000&reason=soak"),
                            Kind::Drop => srv.url("/drop"),
                            Kind::Refused => format!("ws://127.0.0.1:{refused}/"),
                        };
                        let ws = Ws::connect(&url, None).expect("connect");
                        socks.lock().push(Arc::new(Mutex::new(Sock {
                            ws: Some(ws),
                            kind,
                            sent: Vec::new(),
                            sent_before_close: None,
                            events: Vec::new(),
                            freed: false,
                        })));
                        continue;
                    }
                    // Pick under the same lock that gives the length: another
                    // worker may have removed a socket since `n` was read.
                    let pick = {
                        let v = socks.lock();
                        if v.is_empty() {
                            continue;
                        }
                        v[rng.below(v.len() as u64) as usize].clone()
                    };
                    let mut s = pick.lock();
                    if s.freed {
                        continue; // another thread just freed it
                    }
                    match action {
                        0..=59 => {
                            let msg = format!("{}", s.sent.len());
                            let r = s.ws.as_ref().unwrap().send_text(&msg);
                            match r {
                                WSB_OK => s.sent.push(msg),
                                WSB_ERR_NOT_OPEN => {}
                                other => panic!("send: {other:?}"),
                            }
                        }
                        60..=84 => s.drain(),
                        85..=94 => {
                            if s.sent_before_close.is_none() {
                                let r = s.ws.as_ref().unwrap().close(1000, None);
                                assert_eq!(r, WSB_OK);
                                s.sent_before_close = Some(s.sent.len());
                            }
                        }
                        _ => {
                            // Free only sockets whose CLOSE we have seen (others
                            // are freed at the end), so their events are checkable.
                            s.drain();
                            if s.closed() {
                                s.freed = true;
                                s.ws = None;
                                drop(s);
                                socks.lock().retain(|x| !Arc::ptr_eq(x, &pick));
                                done.lock().push(pick);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Close and drain everything (bounded per socket).
    let mut all = socks.lock().clone();
    for s in &all {
        let mut s = s.lock();
        if let Some(ws) = &s.ws {
            if s.sent_before_close.is_none() && !s.closed() {
                assert_eq!(ws.close(1000, None), WSB_OK);
                s.sent_before_close = Some(s.sent.len());
            }
        }
        let Sock { ws, events, .. } = &mut *s;
        if let Some(ws) = ws {
            while !events.last().is_some_and(|e| e.0 == WSB_EVENT_CLOSE) {
                let ev = ws.next().expect("CLOSE within the timeout");
                events.push((ev.kind, ev.text(), ev.close_code, ev.clean));
            }
            assert!(ws.poll().is_none(), "nothing after CLOSE");
        }
    }
    all.extend(done.lock().iter().cloned());
    let mut messages = 0;
    for (i, s) in all.iter().enumerate() {
        let s = s.lock();
        check(i, &s);
        messages += s.sent.len();
    }
    println!(
        "soak: {} s, {} operations, {} sockets, {} messages sent",
        secs,
        ops.load(Ordering::Relaxed),
        all.len(),
        messages
    );
    drop(all);
    socks.lock().clear();
    done.lock().clear();
    wsb_shutdown(5000);
}
