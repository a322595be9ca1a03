//! The loopback test server (tests/support) as a process, for runs outside
//! `cargo test` (valgrind over the C examples in .ci/run, manual tries).
//!
//!   cargo run --example test_server -- [--ca-out FILE]
//!
//! Prints `ws://127.0.0.1:PORT` and `wss://localhost:TLS_PORT` on stdout,
//! then serves until stdin is closed or the process is killed.

#[path = "../support/mod.rs"]
mod support;

use std::io::{Read, Write};

fn main() {
    let srv = support::TestServer::start();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--ca-out") {
        let path = args.get(i + 1).expect("--ca-out FILE");
        std::fs::write(path, &srv.ca_pem).expect("write CA file");
    }
    let mut out = std::io::stdout();
    writeln!(out, "ws://127.0.0.1:{}", srv.port).unwrap();
    writeln!(out, "wss://localhost:{}", srv.tls_port).unwrap();
    out.flush().unwrap();
    // Serve until stdin reaches EOF (or we are killed).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
