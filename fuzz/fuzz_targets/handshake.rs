//! Arbitrary bytes as the server's answer to the upgrade request, read
//! through the frame gate (head mode) by tungstenite's client handshake, as
//! the library does: no panic, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::HandshakeError;

#[path = "common.rs"]
mod common;

fuzz_target!(|input: &[u8]| {
    if input.is_empty() {
        return;
    }
    let nchunks = (input[0] as usize % 8) + 1;
    let (chunks, data) = input[1..].split_at(nchunks.min(input.len() - 1));
    let stream = common::FuzzStream::new(data, chunks, 1 << 20);
    let req = "ws://127.0.0.1:9/x".into_client_request().unwrap();
    let mut mid = match ClientHandshake::start(stream, req, None) {
        Ok(m) => m,
        Err(_) => return,
    };
    for _ in 0..100_000 {
        match mid.handshake() {
            Ok(_) | Err(HandshakeError::Failure(_)) => return,
            Err(HandshakeError::Interrupted(m)) => {
                mid = m;
                if !mid.get_mut().get_mut().arrive() {
                    // Nothing more will come: one last try sees EOF.
                    let _ = mid.handshake();
                    return;
                }
            }
        }
    }
    panic!("handshake made no progress");
});
