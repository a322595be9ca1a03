//! The benchmark's loopback echo server: one thread per connection,
//! TCP_NODELAY, tungstenite; echoes every text/binary message. Batches
//! writes: after a blocking read it drains everything already readable
//! (socket switched to non-blocking), queues each echo, then flushes once.
//!
//!   echo-server [--ca-out FILE]
//!
//! Prints `ws://127.0.0.1:PORT` then `wss://127.0.0.1:PORT` (one line each),
//! then serves until killed. wss:// uses a leaf certificate for localhost +
//! 127.0.0.1 signed by a CA made at start (rcgen); the CA's PEM goes to
//! `--ca-out`. TLS session resumption is off, so every handshake is a full one.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Error;

trait NonBlocking {
    fn set_nb(&self, on: bool) -> std::io::Result<()>;
}
impl NonBlocking for TcpStream {
    fn set_nb(&self, on: bool) -> std::io::Result<()> {
        self.set_nonblocking(on)
    }
}
impl NonBlocking for StreamOwned<ServerConnection, TcpStream> {
    fn set_nb(&self, on: bool) -> std::io::Result<()> {
        self.sock.set_nonblocking(on)
    }
}

fn would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
        // Small per-connection buffer (10 000 connections in the scale
        // scenario); reads still take whatever the socket has, in chunks.
        .read_buffer_size(16 * 1024)
}

fn serve<S: Read + Write + NonBlocking>(stream: S) {
    let Ok(mut ws) = tungstenite::accept_with_config(stream, Some(config())) else {
        return;
    };
    loop {
        let m = match ws.read() {
            Ok(m) => m,
            Err(_) => return,
        };
        if m.is_close() {
            let _ = ws.flush();
            continue;
        }
        if (m.is_text() || m.is_binary()) && ws.write(m).is_err() {
            return;
        }
        // Drain whatever else is already readable, echo it, flush once.
        if ws.get_ref().set_nb(true).is_err() {
            return;
        }
        loop {
            match ws.read() {
                Ok(m) if m.is_text() || m.is_binary() => match ws.write(m) {
                    Ok(()) => {}
                    Err(e) if would_block(&e) => {} // queued in tungstenite's buffer
                    Err(_) => return,
                },
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(_) => return,
            }
        }
        if ws.get_ref().set_nb(false).is_err() {
            return;
        }
        loop {
            match ws.flush() {
                Ok(()) => break,
                Err(e) if would_block(&e) => continue,
                Err(_) => return,
            }
        }
    }
}

fn tls_config() -> (String, Arc<ServerConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wsbench CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages.push(KeyUsagePurpose::DigitalSignature);
    leaf.extended_key_usages
        .push(ExtendedKeyUsagePurpose::ServerAuth);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .expect("server cert");
    // Full handshakes every time: no session cache, no tickets.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    (ca_cert.pem(), Arc::new(cfg))
}

fn spawn<F: FnOnce() + Send + 'static>(f: F) {
    // Small stacks: the scale scenario holds thousands of connections.
    let _ = std::thread::Builder::new().stack_size(256 * 1024).spawn(f);
}

fn main() {
    let mut ca_out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ca-out" => ca_out = args.next(),
            _ => {
                eprintln!("usage: echo-server [--ca-out FILE]");
                std::process::exit(2);
            }
        }
    }
    let (ca_pem, tls) = tls_config();
    if let Some(p) = ca_out {
        std::fs::write(p, &ca_pem).expect("write CA PEM");
    }
    let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
    let secure = TcpListener::bind("127.0.0.1:0").expect("bind");
    // std listens with a backlog of 128: too few for thousands of clients
    // connecting at once (the scale scenario). listen() again to raise it.
    for l in [&plain, &secure] {
        use std::os::fd::AsRawFd;
        unsafe { libc::listen(l.as_raw_fd(), 16384) };
    }
    println!("ws://{}", plain.local_addr().unwrap());
    println!("wss://{}", secure.local_addr().unwrap());
    let _ = std::io::stdout().flush();
    std::thread::spawn(move || {
        for s in secure.incoming() {
            let Ok(s) = s else { continue };
            let _ = s.set_nodelay(true);
            let tls = tls.clone();
            spawn(move || {
                let Ok(conn) = ServerConnection::new(tls) else {
                    return;
                };
                serve(StreamOwned::new(conn, s));
            });
        }
    });
    for s in plain.incoming() {
        let Ok(s) = s else { continue };
        let _ = s.set_nodelay(true);
        spawn(move || serve(s));
    }
}
