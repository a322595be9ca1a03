//! The Luau script tests' loopback servers as a process, for running the
//! scripts against a `wsb-luau` that is not on this side of a process
//! boundary (the Windows build under Wine, .ci/windows.sh).
//!
//!   cargo run -p wsb-luau --example luau_server
//!
//! Prints three lines: the command/echo server's `ws://127.0.0.1:PORT`, the
//! self-signed `wss://127.0.0.1:PORT` (clients must refuse its certificate)
//! and a `ws://127.0.0.1:PORT` where nothing listens; then serves until
//! stdin is closed or the process is killed.

#[path = "../tests/support/server.rs"]
mod luau_server;

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let server = luau_server::start_server();
    let tls = luau_server::start_self_signed_tls_server();
    let refused = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let mut out = std::io::stdout();
    writeln!(out, "{}", server.url).unwrap();
    writeln!(out, "{tls}").unwrap();
    writeln!(out, "ws://127.0.0.1:{refused}").unwrap();
    out.flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
