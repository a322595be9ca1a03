//! The loopback servers the Luau script tests run against (included with
//! `#[path]` by tests/luau_scripts.rs and examples/luau_server.rs).
//!
//! The server (one thread per connection) echoes text and binary messages,
//! and obeys a few text commands, which scripts use to drive the peer side:
//!
//! | message                 | the server                                      |
//! | ----------------------- | ----------------------------------------------- |
//! | `cmd:close CODE REASON` | starts the closing handshake with CODE, REASON  |
//! | `cmd:drop`              | drops the TCP connection without a close frame  |
//! | `cmd:burst N`           | sends the texts `1` .. `N`                       |
//! | `cmd:count`             | replies `count N`: connections open right now   |
//! | `cmd:header NAME`       | replies the request header's value, or `<none>` |
//!
//! Paths: `/403` refuses the upgrade with HTTP 403; `/slow` answers the
//! upgrade after 300 ms (network latency, so a script can observe that
//! `WebSocket.connect` yields while other coroutines run); anything else is
//! the echo server. With `Sec-WebSocket-Protocol`, the first offered
//! subprotocol is accepted.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderMap, HeaderValue, StatusCode};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

pub struct Server {
    pub url: String,
}

pub fn start_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let open = open.clone();
            thread::spawn(move || serve(stream, open));
        }
    });
    Server { url }
}

/// Decrements the open-connection count when a connection thread ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// The callback's error type is tungstenite's (an HTTP response).
#[allow(clippy::result_large_err)]
fn serve(stream: TcpStream, open: Arc<AtomicUsize>) {
    let mut headers = HeaderMap::new();
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        headers = req.headers().clone();
        match req.uri().path() {
            "/403" => {
                let mut refusal = ErrorResponse::new(Some("forbidden".to_string()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                return Err(refusal);
            }
            "/slow" => thread::sleep(Duration::from_millis(300)),
            _ => {}
        }
        if let Some(offered) = req.headers().get("sec-websocket-protocol") {
            let first = offered
                .to_str()
                .unwrap_or("")
                .split(',')
                .next()
                .unwrap_or("")
                .trim();
            if let Ok(value) = HeaderValue::from_str(first) {
                resp.headers_mut().insert("sec-websocket-protocol", value);
            }
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    open.fetch_add(1, Ordering::SeqCst);
    let _guard = OpenGuard(open.clone());
    loop {
        let message = match ws.read() {
            Ok(m) => m,
            Err(_) => return, // closed (the close reply went out) or broken
        };
        let reply = match message {
            Message::Text(text) => match text.as_str().strip_prefix("cmd:") {
                None => vec![Message::Text(text)],
                Some(cmd) => {
                    let (verb, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
                    match verb {
                        "close" => {
                            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                            let frame = CloseFrame {
                                code: CloseCode::from(code.parse::<u16>().unwrap_or(1000)),
                                reason: reason.to_string().into(),
                            };
                            let _ = ws.close(Some(frame));
                            let _ = ws.flush();
                            vec![]
                        }
                        "drop" => {
                            let _ = ws.get_mut().shutdown(Shutdown::Both);
                            return;
                        }
                        "burst" => {
                            let n: usize = rest.parse().unwrap_or(0);
                            (1..=n)
                                .map(|i| Message::Text(i.to_string().into()))
                                .collect()
                        }
                        "count" => {
                            vec![Message::Text(
                                format!("count {}", open.load(Ordering::SeqCst)).into(),
                            )]
                        }
                        "header" => {
                            let value = headers
                                .get(rest)
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                .unwrap_or_else(|| "<none>".to_string());
                            vec![Message::Text(value.into())]
                        }
                        _ => vec![Message::Text(format!("unknown command {verb}").into())],
                    }
                }
            },
            m @ Message::Binary(_) => vec![m],
            _ => vec![],
        };
        for m in reply {
            if ws.write(m).is_err() {
                return;
            }
        }
        if ws.flush().is_err() {
            return;
        }
    }
}

/// A `wss://` server whose certificate is self-signed (for `localhost` and
/// 127.0.0.1): clients that verify against the built-in roots must refuse it.
pub fn start_self_signed_tls_server() -> String {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server certificate");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("wss://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let Ok(conn) = ServerConnection::new(config) else {
                    return;
                };
                // Fails as soon as the client rejects the certificate.
                let _ = tungstenite::accept(StreamOwned::new(conn, stream));
            });
        }
    });
    url
}
