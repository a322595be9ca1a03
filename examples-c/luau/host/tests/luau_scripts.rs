//! Runs the Luau scripts in `tests/luau/` through the built `wsb-luau` host
//! against an in-process loopback WebSocket server, and checks exit codes and
//! output. A failing script fails its test with its full output.
//!
//! Every wait is bounded: each script runs under the host's own timeout
//! (`--timeout`), after which the host exits with code 3.
//!
//! The server is `tests/support/server.rs` (also run as a process by the
//! `luau_server` example, for the Windows build under Wine). That server
//! (tungstenite) does not take up permessage-deflate. The compression test
//! uses the root crate's test server (`tests/support`), whose deflate peer
//! does.

#[path = "support/server.rs"]
mod luau_server;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use luau_server::{start_self_signed_tls_server, start_server};

/// The root crate's loopback test server (its permessage-deflate peer).
#[path = "../../../../tests/support/mod.rs"]
mod support;

/// Host timeout for one script: generous, since the suite shares 2 cores.
const SCRIPT_TIMEOUT_S: &str = "30";

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
fn ws_buffer_round_trip_arrives_as_string_by_default() {
    let server = start_server();
    let out = run_with(
        "ws_buffer.luau",
        &["--timeout", SCRIPT_TIMEOUT_S],
        &[&server.url, "string"],
    );
    expect(
        &out,
        0,
        &["ok: ", "a buffer is always sent as binary", "PASS"],
        &[],
    );
}

#[test]
fn ws_buffer_round_trip_arrives_as_buffer_with_the_host_option() {
    let server = start_server();
    let out = run_with(
        "ws_buffer.luau",
        &["--timeout", SCRIPT_TIMEOUT_S, "--binary-as-buffer"],
        &[&server.url, "buffer"],
    );
    expect(&out, 0, &["PASS"], &[]);
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

/// `--log info`: wsbridge's log on stderr through the host's hook, one line
/// per step of the demo's connection; an unknown level is a usage error.
#[test]
fn log_option_prints_the_connection_steps() {
    let server = start_server();
    let out = run_with(
        "ws_close.luau",
        &["--timeout", SCRIPT_TIMEOUT_S, "--log", "info"],
        &[&server.url, "ws://127.0.0.1:9"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "wsb-luau: [INFO] socket 1: TCP connected to 127.0.0.1:",
        "wsb-luau: [INFO] socket 1: OPEN",
        "wsb-luau: [INFO] socket 1: close sent: 1000",
        "wsb-luau: [INFO] socket 1: CLOSE 1000 clean",
    ] {
        assert!(stderr.contains(want), "{want}:\n{}", describe(&out));
    }
    assert!(!stderr.contains("[DEBUG]"), "{}", describe(&out));

    let out = run_with("ws_close.luau", &["--log", "verbose"], &[&server.url]);
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--log: not one of error, warn, info, debug"),
        "{}",
        describe(&out)
    );
}
