//! Sending and receiving through the C API (shared/spec/c-api.md): echo of
//! text and binary, order (while connecting, across the open, from many
//! threads, in bursts, over TLS), fragments and pings, sizes up to 16 MiB,
//! send validation, the message size limit both ways, and the send queue
//! limit.

mod capi;
mod support;

use std::ptr;

use capi::*;
use support::TestServer;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::ffi::types::wsb_state::*;
use wsbridge::wsb_result::*;

#[test]
fn echo_text_and_binary() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(ws.state(), WSB_STATE_OPEN);
    assert_eq!(ws.send_text("héllo"), WSB_OK);
    let bin = [0u8, 1, 2, 0, 255];
    assert_eq!(ws.send_binary(&bin), WSB_OK);
    let t = ws.expect(WSB_EVENT_TEXT);
    assert_eq!(t.text(), "héllo");
    let b = ws.expect(WSB_EVENT_BINARY);
    assert_eq!(b.data, bin);
    // Empty messages, with NULL data (allowed when len is 0).
    assert_eq!(wsb_send_text(ws.0, ptr::null(), 0), WSB_OK);
    assert_eq!(wsb_send_binary(ws.0, ptr::null(), 0), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).data, b"");
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data, b"");
    assert_eq!(ws.buffered(), 0);
    assert_eq!(ws.close(1000, Some("bye")), WSB_OK);
    let close = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!((close.close_code, close.clean), (1000, true));
    assert_eq!(ws.state(), WSB_STATE_CLOSED);
    let seen = srv.client_closes();
    assert_eq!(
        seen.last().map(|c| (c.code, c.reason.as_str())),
        Some((Some(1000), "bye"))
    );
    // After CLOSE: EMPTY forever.
    assert!(ws.poll().is_none());
    assert!(ws.next_within(10).is_none());
}

#[test]
fn messages_sent_while_connecting_go_out_in_order() {
    let srv = TestServer::start();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    for i in 0..50 {
        assert_eq!(ws.send_text(&format!("early {i}")), WSB_OK);
    }
    assert_eq!(ws.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    for i in 0..50 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("early {i}"));
    }
}

#[test]
fn a_sender_running_across_the_open_keeps_its_order() {
    // One thread sends from the moment wsb_connect returns, so some
    // messages are queued while CONNECTING and the rest go straight out
    // after OPEN: none may overtake another.
    let srv = TestServer::start();
    let ws = Ws::connect(&srv.url("/echo"), None).unwrap();
    let s = ws.0;
    let sender = std::thread::spawn(move || {
        for i in 0..2000 {
            let msg = format!("m{i}");
            assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
        }
    });
    assert_eq!(ws.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    for i in 0..2000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("m{i}"));
    }
    sender.join().unwrap();
}

#[test]
fn concurrent_senders_lose_nothing_and_keep_their_own_order() {
    // Four threads send at once (small messages in bursts, some large ones
    // that fill the socket): every message comes back, each thread's in
    // order, and nothing is left in the outbox without a wake-up.
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    let s = ws.0;
    const PER: usize = 3000;
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..PER {
                    let mut msg = format!("{t}:{i}:");
                    if i % 500 == 499 {
                        msg.push_str(&"x".repeat(200_000));
                    }
                    assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
                }
            })
        })
        .collect();
    let mut next = [0usize; 4];
    for _ in 0..4 * PER {
        let text = ws.expect(WSB_EVENT_TEXT).text();
        let mut parts = text.splitn(3, ':');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(i, next[t], "thread {t}'s messages out of order");
        next[t] += 1;
    }
    for h in senders {
        h.join().unwrap();
    }
    assert_eq!(next, [PER; 4]);
    assert_eq!(ws.buffered(), 0);
}

#[test]
fn bursts_go_out_without_any_traffic_coming_back() {
    // The server answers only once it has every message: nothing incoming
    // wakes the I/O thread, so each burst must get out on the senders' own
    // wake-ups. Bursts of 1 to 400 messages from one thread, then from two.
    let srv = TestServer::start();
    for (threads, burst) in [(1, 1), (1, 2), (1, 400), (2, 300)] {
        let n = threads * burst;
        let ws = Ws::open(&srv.url(&format!("/collect?n={n}")), None);
        let s = ws.0;
        let senders: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..burst {
                        let msg = format!("m{i}");
                        assert_eq!(wsb_send_text(s, msg.as_ptr().cast(), msg.len()), WSB_OK);
                    }
                })
            })
            .collect();
        for h in senders {
            h.join().unwrap();
        }
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("got {n}"));
    }
}

#[test]
fn tls_bursts_and_large_messages_in_order() {
    // The outbox over TLS: bursts framed by the sender, encrypted under the
    // connection lock, larger than rustls's own send buffer.
    let srv = TestServer::start();
    let o = Opts::new().ca(&srv.ca_pem);
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&o));
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    for i in 0..2000 {
        assert_eq!(ws.send_text(&format!("s{i}")), WSB_OK);
        if i == 1000 {
            assert_eq!(ws.send_binary(&big), WSB_OK);
        }
    }
    for i in 0..2000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("s{i}"));
        if i == 1000 {
            assert!(ws.expect(WSB_EVENT_BINARY).data == big, "4 MiB differs");
        }
    }
    assert_eq!(ws.close(1000, None), WSB_OK);
    assert!(ws.expect(WSB_EVENT_CLOSE).clean);
}

#[test]
fn fragmented_messages_arrive_whole() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/fragmented?parts=7&ping=1"), None);
    let want: Vec<String> = (0..7).map(|i| format!("fragment-{i}")).collect();
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), want.join("|"));
}

#[test]
fn server_pings_are_answered() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/ping?payload=abc"), None);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "pong:abc");
}

#[test]
fn ten_thousand_messages_in_order_both_ways() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/burst?n=10000&size=16"), None);
    for i in 0..10_000 {
        assert_eq!(
            ws.expect(WSB_EVENT_TEXT).text(),
            support::burst_message(i, 16)
        );
    }
    for i in 0..10_000 {
        assert_eq!(ws.send_text(&format!("m{i}")), WSB_OK);
    }
    for i in 0..10_000 {
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("m{i}"));
    }
}

#[test]
fn messages_of_every_size_split_anywhere_arrive_intact_in_order() {
    // 0 to 70 000 bytes, text (multi-byte UTF-8) and binary, some in
    // fragments with a ping between them, pings between messages, written
    // by the server in pieces of 1 to 3001 bytes: reads split frames at
    // every place, inside headers and inside UTF-8 sequences.
    let srv = TestServer::start();
    let n = 400;
    let ws = Ws::open(&srv.url(&format!("/mixed?n={n}")), None);
    for i in 0..n {
        let (text, payload, _) = support::mixed_message(i);
        let ev = ws.expect(if text {
            WSB_EVENT_TEXT
        } else {
            WSB_EVENT_BINARY
        });
        assert!(
            ev.data == payload,
            "message {i} differs: {} bytes, expected {}",
            ev.data.len(),
            payload.len()
        );
    }
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE], "{evs:?}");
    assert!(evs[0].clean && evs[0].close_code == 1000, "{evs:?}");
}

#[test]
fn sixteen_mib_messages_intact() {
    let srv = TestServer::start();
    let size = 16 << 20;
    let ws = Ws::open(&srv.url(&format!("/big?size={size}")), None);
    let ev = ws.expect(WSB_EVENT_BINARY);
    assert!(
        ev.data == support::big_pattern(size),
        "received 16 MiB differs"
    );
    let mine: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(ws.send_binary(&mine), WSB_OK);
    let ev = ws.expect(WSB_EVENT_BINARY);
    assert!(ev.data == mine, "echoed 16 MiB differs");
    let text = "é".repeat(size / 2);
    assert_eq!(ws.send_text(&text), WSB_OK);
    assert!(ws.expect(WSB_EVENT_TEXT).data == text.as_bytes());
}

#[test]
fn send_validation() {
    let srv = TestServer::start();
    let ws = Ws::open(&srv.url("/echo"), None);
    assert_eq!(
        ws.send_bytes_as_text(&[0x66, 0xff, 0x66]),
        WSB_ERR_INVALID_UTF8
    );
    assert!(last_error().contains("UTF-8"));
    assert_eq!(wsb_send_text(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_send_binary(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    assert_eq!(wsb_ping(ws.0, ptr::null(), 3), WSB_ERR_NULL_ARGUMENT);
    let big = [0u8; 126];
    assert_eq!(
        wsb_ping(ws.0, big.as_ptr().cast(), 126),
        WSB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(wsb_ping(ws.0, big.as_ptr().cast(), 125), WSB_OK);
    assert_eq!(wsb_ping(ws.0, ptr::null(), 0), WSB_OK);
    // Text with an embedded NUL is valid UTF-8 and arrives whole.
    assert_eq!(ws.send_text("a\0b"), WSB_OK);
    let ev = ws.expect(WSB_EVENT_TEXT);
    assert_eq!(ev.data, b"a\0b", "pongs never surface as events");
}

#[test]
fn outgoing_message_over_the_limit() {
    let srv = TestServer::start();
    let o = Opts::new().max_message(1000);
    let ws = Ws::open(&srv.url("/echo"), Some(&o));
    assert_eq!(ws.send_binary(&[7u8; 1001]), WSB_ERR_MESSAGE_TOO_LARGE);
    assert_eq!(ws.send_binary(&[7u8; 1000]), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data.len(), 1000);
}

#[test]
fn incoming_message_over_the_limit_fails_with_1009() {
    let srv = TestServer::start();
    let o = Opts::new().max_message(1000);
    let ws = Ws::open(&srv.url("/big?size=5000"), Some(&o));
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].error, WSB_ERR_MESSAGE_TOO_LARGE);
    assert_eq!(evs[1].close_code, 1009);
    let closes = srv.wait_client_closes(1, WAIT);
    assert_eq!(closes[0].code, Some(1009));
}

#[test]
fn send_queue_limit_gives_queue_full_against_a_stalled_reader() {
    let srv = TestServer::start();
    let limit = 1 << 20;
    let o = Opts::new().queue_limit(limit);
    let ws = Ws::open(&srv.url("/stall"), Some(&o));
    let chunk = vec![1u8; 64 * 1024];
    let mut full = false;
    // Bounded: kernel buffers take a few MiB at most before the queue fills.
    for _ in 0..4096 {
        match ws.send_binary(&chunk) {
            WSB_OK => {}
            WSB_ERR_QUEUE_FULL => {
                full = true;
                break;
            }
            r => panic!("unexpected {r:?}: {}", last_error()),
        }
    }
    assert!(full, "never reported QUEUE_FULL");
    assert!(last_error().contains("send queue full"), "{}", last_error());
    let buffered = ws.buffered();
    assert!(buffered > 0 && buffered <= limit, "buffered {buffered}");
}
