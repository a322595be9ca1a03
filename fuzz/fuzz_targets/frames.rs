//! Arbitrary bytes as the server's side of a connection after a valid
//! handshake, through the frame gate and tungstenite (client role), with the
//! library's limits: no panic, no hang, nothing over the limit buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

#[path = "common.rs"]
mod common;

const MAX: usize = 64 * 1024;

fuzz_target!(|input: &[u8]| {
    if input.is_empty() {
        return;
    }
    let nchunks = (input[0] as usize % 8) + 1;
    let (chunks, rest) = input[1..].split_at(nchunks.min(input.len() - 1));
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
    let mut steps = 0;
    let mut failed = false;
    loop {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        match ws.read() {
            Ok(Message::Text(t)) => assert!(t.len() <= MAX),
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
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let s = ws.get_mut();
                if !s.incidents.is_empty() {
                    s.incidents.clear();
                    failed = true;
                    // The library sends its close and keeps reading.
                    let _ = ws.close(None);
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
});
