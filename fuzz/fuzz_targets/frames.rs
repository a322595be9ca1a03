//! Arbitrary bytes as the server's side of a connection after a valid
//! handshake, through the frame gate and tungstenite (client role), with the
//! library's limits: no panic, no hang, nothing over the limit buffered.
//! Run twice, as the library does (whole single-frame messages taken by the
//! gate's fast path while tungstenite holds nothing) and with every byte
//! through tungstenite: both must deliver the same messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

#[path = "common.rs"]
mod common;

const MAX: usize = 64 * 1024;

/// The messages delivered to the host (is text, payload) until the first
/// failure.
fn deliver(rest: &[u8], chunks: &[u8], fast_path: bool) -> Vec<(bool, Vec<u8>)> {
    // The gate starts after the HTTP head, as in the library.
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";
    let mut data = HEAD.to_vec();
    data.extend_from_slice(rest);
    let mut stream = common::FuzzStream::new(&data, chunks, MAX);
    // The handshake reads exactly the head through the gate.
    stream.avail = HEAD.len();
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < HEAD.len() {
        got += std::io::Read::read(&mut stream, &mut head[got..]).expect("head passes");
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(MAX))
        .max_frame_size(Some(MAX));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, Some(config));
    let mut delivered = Vec::new();
    let mut steps = 0;
    let mut failed = false;
    // tungstenite holds no input (its last read would block, no incident).
    let mut drained = true;
    loop {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        if fast_path && drained && !failed {
            for (text, payload) in ws.get_mut().take_clean() {
                assert!(payload.len() <= MAX);
                if text {
                    assert!(
                        std::str::from_utf8(&payload).is_ok(),
                        "fast path passed invalid UTF-8 as text"
                    );
                }
                delivered.push((text, payload));
            }
        }
        drained = false;
        match ws.read() {
            Ok(Message::Text(t)) => {
                assert!(t.len() <= MAX);
                if !failed {
                    delivered.push((true, t.as_bytes().to_vec()));
                }
            }
            Ok(Message::Binary(b)) => {
                assert!(b.len() <= MAX);
                // A message the gate passed as text is valid UTF-8 (the
                // library relies on it: tungstenite no longer checks).
                // (After an incident the library delivers nothing more: the
                // stream may be misaligned then, as tungstenite sees it.)
                let text = ws.get_mut().gate.take_message_kind() == Some(true);
                if text && !failed {
                    assert!(
                        std::str::from_utf8(&b).is_ok(),
                        "invalid UTF-8 passed as text"
                    );
                }
                if !failed {
                    delivered.push((text, b.to_vec()));
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let s = ws.get_mut();
                if !s.incidents.is_empty() {
                    s.incidents.clear();
                    failed = true;
                    // The library sends its close and keeps reading.
                    let _ = ws.close(None);
                } else {
                    drained = true;
                }
                if !ws.get_mut().arrive() {
                    break;
                }
            }
            Err(_) => {
                // The library fails the connection on any other error too.
                failed = true;
                if ws.get_ref().eof() {
                    break;
                }
                if !ws.get_mut().arrive() {
                    break;
                }
            }
        }
    }
    delivered
}

fuzz_target!(|input: &[u8]| {
    if input.is_empty() {
        return;
    }
    let nchunks = (input[0] as usize % 8) + 1;
    let (chunks, rest) = input[1..].split_at(nchunks.min(input.len() - 1));
    let fast = deliver(rest, chunks, true);
    let slow = deliver(rest, chunks, false);
    assert!(fast == slow, "the fast path changed what was delivered");
});
