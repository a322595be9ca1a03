//! Runs the Luau scripts in `tests/luau/` through the built `wsb-luau` host
//! against an in-process loopback WebSocket server, and checks exit codes and
//! output. A failing script fails its test with its full output.
//!
//! Every wait is bounded: each script runs under the host's own timeout
//! (`--timeout`), after which the host exits with code 3.
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
//!
//! That server (tungstenite) does not take up permessage-deflate. The
//! compression test uses the root crate's test server (`tests/support`),
//! whose deflate peer does.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
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

/// The root crate's loopback test server (its permessage-deflate peer).
#[path = "../../../../tests/support/mod.rs"]
mod support;

/// Host timeout for one script: generous, since the suite shares 2 cores.
const SCRIPT_TIMEOUT_S: &str = "30";

struct Server {
    url: String,
}

fn start_server() -> Server {
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
fn start_self_signed_tls_server() -> String {
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

fn script_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/luau")
        .join(name)
}

/// A local port with nothing listening on it.
fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run_with(script: &str, host_args: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsb-luau"))
        .args(host_args)
        .arg(script_path(script))
        .args(args)
        .output()
        .expect("run wsb-luau")
}

/// Runs `script` with the server's URL and a refused port as `...`.
fn run(script: &str) -> Output {
    let server = start_server();
    let refused = format!("ws://127.0.0.1:{}", refused_port());
    run_with(
        script,
        &["--timeout", SCRIPT_TIMEOUT_S],
        &[&server.url, &refused],
    )
}

fn describe(out: &Output) -> String {
    format!(
        "exit status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn expect(out: &Output, code: i32, stdout_has: &[&str], stderr_has: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "wrong exit code\n{}",
        describe(out)
    );
    for s in stdout_has {
        assert!(stdout.contains(s), "stdout lacks {s:?}\n{}", describe(out));
    }
    for s in stderr_has {
        assert!(stderr.contains(s), "stderr lacks {s:?}\n{}", describe(out));
    }
}

/// A script that must finish cleanly and print `PASS`.
#[track_caller]
fn expect_pass(script: &str) {
    let out = run(script);
    expect(&out, 0, &["PASS"], &[]);
}

// ---- the host ----

#[test]
fn host_task_library() {
    expect_pass("task.luau");
}

#[test]
fn host_script_args() {
    let out = run_with("args.luau", &[], &["one", "two words", ""]);
    expect(&out, 0, &["PASS"], &[]);
}

#[test]
fn host_error_exits_1_with_traceback() {
    let out = run("error.luau");
    expect(
        &out,
        1,
        &["before the error"],
        &[
            "error.luau:4: boom",
            "stacktrace:",
            "function inner",
            "function outer",
        ],
    );
}

#[test]
fn host_syntax_error_exits_1() {
    let out = run("syntax_error.luau");
    expect(&out, 1, &[], &["syntax_error.luau:2"]);
}

#[test]
fn host_spawned_error_is_reported_and_host_goes_on() {
    let out = run("spawned_error.luau");
    expect(
        &out,
        2,
        &["main went on", "later coroutine ran"],
        &["error in a spawned coroutine", "spawned failure"],
    );
}

#[test]
fn host_timeout_while_waiting() {
    let out = run_with("wait_forever.luau", &["--timeout", "0.5"], &[]);
    expect(&out, 3, &[], &["timed out after 0.5 s"]);
}

#[test]
fn host_timeout_in_a_busy_loop() {
    let out = run_with("busy_loop.luau", &["--timeout", "0.5"], &[]);
    expect(&out, 3, &[], &["timed out after 0.5 s", "busy_loop.luau"]);
}

#[test]
fn host_suspended_forever_is_an_error() {
    let out = run("suspended.luau");
    expect(&out, 1, &[], &["nothing is left that could resume it"]);
}

#[test]
fn host_echo_server_flag_runs_the_demo() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo.luau");
    let out = Command::new(env!("CARGO_BIN_EXE_wsb-luau"))
        .args(["--timeout", SCRIPT_TIMEOUT_S, "--echo-server"])
        .arg(demo)
        .output()
        .expect("run wsb-luau");
    expect(
        &out,
        0,
        &[
            "connected",
            "OnMessage: \"hello from Luau",
            "OnClose: code 1000",
            "done",
        ],
        &[],
    );
}

// ---- WebSocket: one test per row of luau-api.md ----

#[test]
fn ws_unc_environment_check() {
    expect_pass("ws_unc.luau");
}

#[test]
fn ws_connect_yields_while_others_run() {
    expect_pass("ws_connect_yields.luau");
}

#[test]
fn ws_connect_errors_name_the_cause() {
    expect_pass("ws_connect_errors.luau");
}

#[test]
fn ws_wss_verifies_certificates() {
    let server = start_self_signed_tls_server();
    let out = run_with("ws_tls.luau", &["--timeout", SCRIPT_TIMEOUT_S], &[&server]);
    expect(&out, 0, &["PASS"], &[]);
}

#[test]
fn ws_connect_options() {
    expect_pass("ws_options.luau");
}

#[test]
fn ws_message_order() {
    expect_pass("ws_order.luau");
}

#[test]
fn ws_signals_once_wait_disconnect() {
    expect_pass("ws_signals.luau");
}

#[test]
fn ws_erroring_handler_does_not_stop_others() {
    let out = run("ws_handler_error.luau");
    expect(
        &out,
        2,
        &["PASS"],
        &["error in a spawned coroutine", "handler failure"],
    );
}

#[test]
fn ws_binary_and_text() {
    expect_pass("ws_binary.luau");
}

#[test]
fn ws_invalid_utf8_refused() {
    expect_pass("ws_invalid_utf8.luau");
}

#[test]
fn ws_close_and_send_after_close() {
    expect_pass("ws_close.luau");
}

#[test]
fn ws_onclose_once_for_peer_close_and_drop() {
    expect_pass("ws_peer_close.luau");
}

#[test]
fn ws_twenty_sockets_from_twenty_coroutines() {
    expect_pass("ws_many.luau");
}

#[test]
fn ws_unreachable_socket_is_collected() {
    expect_pass("ws_gc.luau");
}

#[test]
fn ws_host_exits_when_only_unreachable_sockets_remain() {
    let out = run("ws_forgotten.luau");
    expect(&out, 0, &["PASS"], &[]);
}

#[test]
fn ws_host_shutdown_fires_onclose() {
    let out = run("ws_shutdown.luau");
    expect(&out, 1, &["OnClose during shutdown 1001"], &["stop here"]);
}

#[test]
fn ws_messages_without_handlers_are_dropped() {
    expect_pass("ws_unhandled_dropped.luau");
}

#[test]
fn ws_compression_on_by_default_and_host_can_switch_it_off() {
    let server = support::TestServer::start();
    // Accepts permessage-deflate only if offered; counts what arrived with RSV1.
    let url = server.url("/upgrade?mode=deflate&ext=permessage-deflate&offered=1");
    let out = run_with(
        "ws_compression.luau",
        &["--timeout", SCRIPT_TIMEOUT_S],
        &[&url, "on"],
    );
    expect(&out, 0, &["compressed=6 plain=1", "PASS"], &[]);
    let out = run_with(
        "ws_compression.luau",
        &["--timeout", SCRIPT_TIMEOUT_S, "--no-compression"],
        &[&url, "off"],
    );
    expect(&out, 0, &["compressed=0 plain=7", "PASS"], &[]);
}
