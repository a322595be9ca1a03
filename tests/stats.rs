//! `wsb_get_stats` (issue 15, part 2) through the C API against the
//! in-process servers: exact message and payload counts (with concurrent
//! senders too), wire bytes against payload bytes (TLS, compression), the
//! connect phases, keepalive round trips, the size rule for older and newer
//! callers, and the calls' errors. No timing assertions: durations are only
//! checked to be recorded (non-zero) or not (zero).

mod capi;
mod support;

use std::mem::{offset_of, size_of};
use std::ptr;
use std::time::{Duration, Instant};

use capi::*;
use support::TestServer;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::stats::wsb_get_stats;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::ffi::types::*;
use wsbridge::wsb_result::*;

const T: Duration = Duration::from_secs(20);

fn stats(ws: &Ws) -> wsb_stats {
    ws.stats()
}

/// Poll the stats until `done` holds, for at most T (the condition depends
/// on the I/O thread, e.g. a pong arriving; nothing else signals it).
fn stats_until(ws: &Ws, what: &str, done: impl Fn(&wsb_stats) -> bool) -> wsb_stats {
    let deadline = Instant::now() + T;
    loop {
        let st = stats(ws);
        if done(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "no {what} within {T:?}: {st:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Text (multi-byte UTF-8) and binary messages of assorted sizes.
fn messages(n: usize) -> Vec<(bool, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let len = [0, 1, 125, 126, 1000, 65_536, 70_000][i % 7];
            if i % 2 == 0 {
                let s: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
                (true, s.into_bytes())
            } else {
                (false, support::big_pattern(len))
            }
        })
        .collect()
}

fn send(ws: &Ws, text: bool, m: &[u8]) -> wsbridge::wsb_result {
    if text {
        ws.send_bytes_as_text(m)
    } else {
        ws.send_binary(m)
    }
}

/// Send `msgs`, take their echoes (checked), return the payload bytes.
fn echo_all(ws: &Ws, msgs: &[(bool, Vec<u8>)]) -> u64 {
    for (text, m) in msgs {
        assert_eq!(send(ws, *text, m), WSB_OK, "{}", last_error());
    }
    for (text, m) in msgs {
        let ev = ws.next().expect("echo");
        assert_eq!(
            ev.kind,
            if *text {
                WSB_EVENT_TEXT
            } else {
                WSB_EVENT_BINARY
            }
        );
        assert!(ev.data == *m, "echo of {} bytes differs", m.len());
    }
    msgs.iter().map(|(_, m)| m.len() as u64).sum()
}

#[test]
fn echo_round_trip_counts_exactly_over_ws() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let before = stats(&ws);
    assert_eq!(
        (before.messages_in, before.messages_out),
        (0, 0),
        "nothing sent yet"
    );
    assert!(before.wire_bytes_out > 0, "the upgrade request: {before:?}");
    assert!(before.wire_bytes_in > 0, "the 101 response: {before:?}");
    let msgs = messages(21);
    let bytes = echo_all(&ws, &msgs);
    let st = stats(&ws);
    assert_eq!((st.messages_out, st.messages_in), (21, 21));
    assert_eq!((st.payload_bytes_out, st.payload_bytes_in), (bytes, bytes));
    // Frame headers (and the upgrade) on top of the payload.
    assert!(st.wire_bytes_out > bytes + 21 * 6, "{st:?}");
    assert!(st.wire_bytes_in > bytes + 21 * 2, "{st:?}");
    assert_eq!(st.queued_bytes, 0, "all written: the echoes came back");
    assert_eq!(st.queued_bytes, ws.buffered() as u64);
    assert_eq!(
        (st.pings_sent, st.pongs_received, st.last_ping_rtt_us),
        (0, 0, 0)
    );
    // 127.0.0.1: nothing to resolve; ws://: no TLS.
    assert_eq!((st.dns_us, st.tls_us), (0, 0), "{st:?}");
    assert!(st.tcp_us > 0 && st.upgrade_us > 0, "{st:?}");
    // The phases are recorded once: the same values later.
    assert_eq!(
        (before.tcp_us, before.upgrade_us),
        (st.tcp_us, st.upgrade_us)
    );
}

#[test]
fn echo_round_trip_over_wss_counts_tls_records_and_phases() {
    let srv = TestServer::start();
    let o = Opts::new().ca(&srv.ca_pem);
    // `localhost`: resolved, so the DNS phase runs.
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&o));
    let msgs = messages(14);
    let bytes = echo_all(&ws, &msgs);
    let st = stats(&ws);
    assert_eq!((st.messages_out, st.messages_in), (14, 14));
    assert_eq!((st.payload_bytes_out, st.payload_bytes_in), (bytes, bytes));
    // The same exchange over ws://: TLS adds the handshake and each
    // record's header and tag, both ways.
    let plain = Ws::open(&srv.url("/echo"), None);
    echo_all(&plain, &msgs);
    let p = stats(&plain);
    assert!(p.wire_bytes_in > bytes && p.wire_bytes_out > bytes, "{p:?}");
    assert!(st.wire_bytes_in > p.wire_bytes_in, "{st:?} {p:?}");
    assert!(st.wire_bytes_out > p.wire_bytes_out, "{st:?} {p:?}");
    assert!(
        st.dns_us > 0 && st.tcp_us > 0 && st.tls_us > 0 && st.upgrade_us > 0,
        "{st:?}"
    );
}

#[test]
fn concurrent_senders_are_counted_exactly() {
    const THREADS: usize = 4;
    const N: usize = 500;
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let h = ws.0;
    let len = |t: usize, i: usize| (t * 7 + i * 13) % 300;
    let mut received = (0u64, 0u64);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..N {
                    let m = vec![b'a' + t as u8; len(t, i)];
                    loop {
                        let r = if i % 2 == 0 {
                            wsb_send_text(h, m.as_ptr().cast(), m.len())
                        } else {
                            wsb_send_binary(h, m.as_ptr().cast(), m.len())
                        };
                        match r {
                            WSB_OK => break,
                            // Not counted; try again once the queue drains.
                            WSB_ERR_QUEUE_FULL => std::thread::yield_now(),
                            r => panic!("send: {r:?} {}", last_error()),
                        }
                    }
                }
            });
        }
        // Receive meanwhile, so the echo server never stalls on us.
        for _ in 0..THREADS * N {
            let ev = ws.next().expect("echo");
            assert!(matches!(ev.kind, WSB_EVENT_TEXT | WSB_EVENT_BINARY));
            received.0 += 1;
            received.1 += ev.data.len() as u64;
        }
    });
    let bytes: u64 = (0..THREADS)
        .flat_map(|t| (0..N).map(move |i| len(t, i) as u64))
        .sum();
    assert_eq!(received, ((THREADS * N) as u64, bytes));
    let st = stats(&ws);
    assert_eq!(st.messages_out, (THREADS * N) as u64);
    assert_eq!(st.payload_bytes_out, bytes);
    assert_eq!(st.messages_in, (THREADS * N) as u64);
    assert_eq!(st.payload_bytes_in, bytes);
    assert_eq!(st.queued_bytes, 0);
}

/// A caller's buffer: the struct at the start, then more room, all filled
/// with a canary byte; `size` set to `size`.
struct Canary {
    buf: Vec<u64>,
}

const CANARY: u8 = 0xA5;

impl Canary {
    fn new(size: u32) -> Canary {
        let mut buf = vec![u64::from_ne_bytes([CANARY; 8]); 64];
        let p = buf.as_mut_ptr().cast::<u32>();
        // SAFETY: the buffer is 512 bytes, aligned for u64.
        unsafe { p.write(size) };
        Canary { buf }
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: the Vec's 512 initialised bytes.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), 512) }
    }
    fn u32_at(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.bytes()[off..off + 4].try_into().unwrap())
    }
    fn u64_at(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.bytes()[off..off + 8].try_into().unwrap())
    }
}

/// Call wsb_get_stats with the canary buffer as `out`.
fn get_into(ws: &Ws, c: &mut Canary) -> wsbridge::wsb_result {
    wsb_get_stats(ws.0, c.buf.as_mut_ptr().cast())
}

/// Every field that fits in `size` has the full call's value; every byte
/// after the last whole field is the canary; `size` is unchanged.
fn check_fill(c: &Canary, size: u32, full: &wsb_stats) {
    assert_eq!(c.u32_at(0), size, "size is never written");
    let fields = [
        (offset_of!(wsb_stats, wire_bytes_in), full.wire_bytes_in),
        (offset_of!(wsb_stats, wire_bytes_out), full.wire_bytes_out),
        (
            offset_of!(wsb_stats, payload_bytes_in),
            full.payload_bytes_in,
        ),
        (
            offset_of!(wsb_stats, payload_bytes_out),
            full.payload_bytes_out,
        ),
        (offset_of!(wsb_stats, messages_in), full.messages_in),
        (offset_of!(wsb_stats, messages_out), full.messages_out),
        (offset_of!(wsb_stats, pings_sent), full.pings_sent),
        (offset_of!(wsb_stats, pongs_received), full.pongs_received),
        (
            offset_of!(wsb_stats, last_ping_rtt_us),
            full.last_ping_rtt_us,
        ),
        (offset_of!(wsb_stats, queued_bytes), full.queued_bytes),
        (offset_of!(wsb_stats, dns_us), full.dns_us),
        (offset_of!(wsb_stats, tcp_us), full.tcp_us),
        (offset_of!(wsb_stats, tls_us), full.tls_us),
        (offset_of!(wsb_stats, upgrade_us), full.upgrade_us),
    ];
    let mut end = 8;
    for (off, want) in fields {
        if off + 8 <= size as usize {
            assert_eq!(c.u64_at(off), want, "field at {off} (size {size})");
            end = off + 8;
        }
    }
    let untouched = &c.bytes()[end..];
    assert!(
        untouched.iter().all(|&b| b == CANARY),
        "size {size}: bytes from {end} on were written"
    );
}

#[test]
fn an_older_or_newer_size_gets_the_fields_that_fit_and_nothing_past_them() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    echo_all(&ws, &messages(5));
    // Quiet now (no keepalive): the counters stay as they are.
    let full = stats(&ws);
    let through_messages_out = (offset_of!(wsb_stats, messages_out) + 8) as u32;
    assert_eq!(through_messages_out, 56);
    for size in [
        through_messages_out,     // an older header, up to messages_out
        through_messages_out + 4, // a field that does not fit whole is not written
        4,                        // only `size`: nothing else
        8,
        16, // wire_bytes_in only
        size_of::<wsb_stats>() as u32,
        size_of::<wsb_stats>() as u32 + 64, // a newer header: the rest untouched
        u32::MAX,
    ] {
        let mut c = Canary::new(size);
        assert_eq!(
            get_into(&ws, &mut c),
            WSB_OK,
            "size {size}: {}",
            last_error()
        );
        check_fill(&c, size, &full);
    }
    // Too small to hold `size` itself (0: the assignment was forgotten).
    for size in [0u32, 1, 3] {
        let mut c = Canary::new(size);
        assert_eq!(get_into(&ws, &mut c), WSB_ERR_INVALID_ARGUMENT);
        assert!(
            last_error().contains("sizeof(wsb_stats)"),
            "{}",
            last_error()
        );
        check_fill(&c, size, &full);
    }
}

#[test]
fn compression_shows_as_fewer_wire_bytes_than_payload_bytes() {
    let srv = TestServer::start();
    let o = Opts::new().compression(true);
    let ws = Ws::open(
        &srv.url("/upgrade?mode=deflate&ext=permessage-deflate"),
        Some(&o),
    );
    assert!(ws.compressed());
    // JSON-like text compresses well, in both directions (the peer
    // compresses its echo).
    let mut json = String::new();
    for i in 0..2000 {
        json.push_str(&format!("{{\"id\":{i},\"name\":\"player{}\"}},", i % 7));
    }
    let bytes = echo_all(&ws, &[(true, json.into_bytes())]);
    let st = stats(&ws);
    assert_eq!((st.payload_bytes_out, st.payload_bytes_in), (bytes, bytes));
    assert_eq!((st.messages_out, st.messages_in), (1, 1));
    assert!(st.wire_bytes_out < st.payload_bytes_out, "{st:?}");
    assert!(st.wire_bytes_in < st.payload_bytes_in, "{st:?}");
}

#[test]
fn keepalive_pings_and_their_round_trip() {
    let srv = TestServer::start();
    let o = Opts::new().keepalive(10, 5000);
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    let st = stats_until(&ws, "answered keepalive ping", |s| s.last_ping_rtt_us > 0);
    assert!(st.pings_sent >= 1 && st.pongs_received >= 1, "{st:?}");
    // The keepalive pings are not messages.
    assert_eq!((st.messages_out, st.messages_in), (0, 0));
}

#[test]
fn wsb_ping_and_its_pong_are_counted_but_are_no_round_trip() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(wsb_ping(ws.0, b"hi".as_ptr().cast(), 2), WSB_OK);
    let st = stats_until(&ws, "pong", |s| s.pongs_received == 1);
    assert_eq!((st.pings_sent, st.last_ping_rtt_us), (1, 0), "{st:?}");
    assert_eq!((st.messages_out, st.payload_bytes_out), (0, 0));
}

#[test]
fn sends_while_connecting_count_when_accepted() {
    let srv = TestServer::start();
    // TCP connects; the upgrade is never answered.
    let ws = Ws::connect(&srv.hang_url("/"), None).unwrap();
    for m in ["one", "two", "three"] {
        assert_eq!(ws.send_text(m), WSB_OK);
    }
    assert_eq!(ws.send_binary(&[1, 2, 3, 4]), WSB_OK);
    let st = stats_until(&ws, "the upgrade request", |s| {
        s.tcp_us > 0 && s.wire_bytes_out > 0
    });
    assert_eq!(ws.state(), WSB_STATE_CONNECTING);
    assert_eq!((st.messages_out, st.payload_bytes_out), (4, 15));
    assert_eq!(st.queued_bytes, 15);
    assert_eq!(st.queued_bytes, ws.buffered() as u64);
    assert_eq!(st.upgrade_us, 0, "the upgrade has not ended: {st:?}");
}

#[test]
fn a_failed_connect_shows_the_phases_that_ran() {
    let srv = TestServer::start();
    let o = Opts::new().connect_timeout(200);
    let ws = Ws::connect(&srv.hang_url("/"), Some(&o)).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT, "{}", last_error());
    let st = stats(&ws);
    assert!(st.tcp_us > 0, "{st:?}");
    assert!(
        st.upgrade_us > 0,
        "the upgrade ran until the timeout: {st:?}"
    );
    assert_eq!((st.tls_us, st.wire_bytes_in), (0, 0), "{st:?}");
}

#[test]
fn works_after_close_until_free_and_rejects_bad_arguments() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let bytes = echo_all(&ws, &messages(3));
    let open = stats(&ws);
    assert_eq!(ws.close(1000, Some("bye")), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(evs.last().unwrap().kind, WSB_EVENT_CLOSE);
    assert_eq!(ws.state(), WSB_STATE_CLOSED);
    let st = stats(&ws);
    assert_eq!((st.messages_out, st.messages_in), (3, 3));
    assert_eq!((st.payload_bytes_out, st.payload_bytes_in), (bytes, bytes));
    // The close frames (ours, the peer's) went over the wire.
    assert!(st.wire_bytes_out > open.wire_bytes_out, "{st:?}");
    assert!(st.wire_bytes_in > open.wire_bytes_in, "{st:?}");
    assert_eq!(st.queued_bytes, 0);
    // A send refused once closed does not count.
    assert_eq!(ws.send_text("late"), WSB_ERR_NOT_OPEN);
    assert_eq!(stats(&ws).messages_out, 3);

    assert_eq!(wsb_get_stats(ws.0, ptr::null_mut()), WSB_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("out"), "{}", last_error());
    assert_eq!(wsb_free(ws.0), WSB_OK);
    let mut st = wsb_stats {
        size: size_of::<wsb_stats>() as u32,
        ..wsb_stats::default()
    };
    assert_eq!(wsb_get_stats(ws.0, &mut st), WSB_ERR_INVALID_HANDLE);
    assert_eq!(wsb_get_stats(0, &mut st), WSB_ERR_INVALID_HANDLE);
    assert_eq!(st.wire_bytes_in, 0, "nothing written on failure");
}

#[test]
fn a_full_queue_refuses_without_counting() {
    let srv = TestServer::start();
    let o = Opts::new().queue_limit(10);
    // Connecting (the upgrade hangs): the queue fills and stays full.
    let ws = Ws::connect(&srv.hang_url("/"), Some(&o)).unwrap();
    assert_eq!(ws.send_text("0123456789"), WSB_OK);
    assert_eq!(ws.send_text("x"), WSB_ERR_QUEUE_FULL);
    let st = stats(&ws);
    assert_eq!((st.messages_out, st.payload_bytes_out), (1, 10));
}

/// A wss:// peer that answers the client's close frame at once but sends
/// its TLS close_notify `delay` later, then closes TCP. The returned channel
/// says when the peer has seen the client leave (after the library read
/// the close_notify and the end of the stream).
fn late_close_notify_peer(delay: Duration) -> (String, String, std::sync::mpsc::Receiver<()>) {
    use std::io::Write;
    use support::raw;
    let tls = support::tls_setup(&["localhost", "127.0.0.1"], false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("wss://localhost:{}/", listener.local_addr().unwrap().port());
    let (tx, rx) = std::sync::mpsc::channel();
    let config = tls.server_config.clone();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(T)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        raw::accept_upgrade(&mut s, false).unwrap();
        loop {
            let f = raw::read_frame(&mut s, 1 << 20).unwrap().expect("a frame");
            if f.opcode == raw::OP_CLOSE {
                s.write_all(&raw::encode_frame(true, raw::OP_CLOSE, &f.payload, None))
                    .unwrap();
                break;
            }
        }
        // The peer's own pace, not a synchronisation: the record comes
        // while the client waits for TCP to close.
        std::thread::sleep(delay);
        s.conn.send_close_notify();
        s.flush().unwrap();
        s.sock.shutdown(std::net::Shutdown::Write).unwrap();
        // The client closes its side once it has read all of it.
        let _ = raw::read_to_end_lossy(&mut s.sock);
        let _ = tx.send(());
    });
    (url, tls.ca_pem, rx)
}

#[test]
fn counters_stop_when_close_is_queued() {
    let (url, ca, peer_done) = late_close_notify_peer(Duration::from_millis(200));
    let ws = Ws::open(&url, Some(&Opts::new().ca(&ca)));
    assert_eq!(ws.send_text("hello"), WSB_OK);
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs).last(), Some(&WSB_EVENT_CLOSE));
    assert!(evs.last().unwrap().clean, "{evs:?}");
    let at_close = stats(&ws);
    // The close_notify (one TLS record) arrives after CLOSE; the peer
    // reports once the client has read it and closed the connection.
    peer_done.recv_timeout(T).expect("the client closed TCP");
    let later = stats(&ws);
    assert_eq!(later, at_close, "the counters moved after CLOSE");
    assert!(at_close.wire_bytes_in > 0 && at_close.wire_bytes_out > 0);
}
