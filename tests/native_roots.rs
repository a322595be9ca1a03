//! wsb_options_set_native_roots: trusting the OS certificate store, which on
//! Linux honours SSL_CERT_FILE. The test server's CA is put in a temporary
//! bundle named by SSL_CERT_FILE.
//!
//! The environment is never changed inside this (multi-threaded) test
//! process: each case re-runs this test binary as a child process with
//! SSL_CERT_FILE set from its start, running only the ignored test
//! `child_case`, which reads what to do from WSB_CHILD_* variables.

mod capi;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::options::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsb-native-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `child_case` in a child process with `SSL_CERT_FILE=bundle`; returns
/// its output after checking it passed. Killed (by PID) after CHILD_TIMEOUT.
fn run_child(bundle: &Path, url: &str, expect: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_case",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SSL_CERT_FILE", bundle)
        .env_remove("SSL_CERT_DIR")
        .env("WSB_CHILD_URL", url)
        .env("WSB_CHILD_EXPECT", expect)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(CHILD_TIMEOUT).is_err() {
            // Still running: kill this child by its PID.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    assert!(
        status.success() && out.contains("child ok:"),
        "child ({expect}) failed: {status}\n{out}\n{err}"
    );
    out
}

#[test]
fn the_os_store_from_ssl_cert_file_is_trusted() {
    let srv = TestServer::start();
    let dir = temp_dir("trusted");
    let bundle = dir.join("bundle.pem");
    // A bundle like the system one: another certificate, then the test CA.
    std::fs::write(
        &bundle,
        format!("{}\n{}", support::self_signed_pem(), srv.ca_pem),
    )
    .unwrap();
    let out = run_child(&bundle, &srv.tls_url("/echo"), "trusted");
    assert!(out.contains("child ok: trusted"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ca_missing_from_the_os_store_is_still_unknown() {
    let srv = TestServer::start();
    let dir = temp_dir("untrusted");
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, support::self_signed_pem()).unwrap();
    let out = run_child(&bundle, &srv.tls_url("/echo"), "untrusted");
    assert!(out.contains("child ok: untrusted"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_os_store_is_named_in_the_tls_error() {
    let srv = TestServer::start();
    let dir = temp_dir("missing");
    let out = run_child(
        &dir.join("no-such-bundle.pem"),
        &srv.tls_url("/echo"),
        "unreadable",
    );
    assert!(out.contains("child ok: unreadable"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Connect to `url` with the given native-roots setting; returns the
/// wait_open result and detail (an open socket is echoed and closed).
fn try_open(url: &str, native: bool) -> (wsbridge::wsb_result, String) {
    let o = Opts::new();
    assert_eq!(wsb_options_set_native_roots(o.0, native), WSB_OK);
    let ws = Ws::connect(url, Some(&o)).expect("wsb_connect");
    let r = ws.wait_open();
    let detail = last_error();
    if r == WSB_OK {
        ws.expect(WSB_EVENT_OPEN);
        assert_eq!(ws.send_text("trusted by the OS store"), WSB_OK);
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "trusted by the OS store");
        assert_eq!(ws.close(1000, None), WSB_OK);
        assert_eq!(ws.expect(WSB_EVENT_CLOSE).close_code, 1000);
    }
    (r, detail)
}

#[test]
#[ignore = "run in a child process by the tests above (needs SSL_CERT_FILE from the start)"]
fn child_case() {
    let url = std::env::var("WSB_CHILD_URL").expect("WSB_CHILD_URL");
    let expect = std::env::var("WSB_CHILD_EXPECT").expect("WSB_CHILD_EXPECT");
    // Without the option the test CA is never trusted.
    let (r, d) = try_open(&url, false);
    assert_eq!(r, WSB_ERR_TLS, "{d}");
    assert!(d.contains("UnknownIssuer"), "{d}");
    let (r, d) = try_open(&url, true);
    match expect.as_str() {
        "trusted" => assert_eq!(r, WSB_OK, "{d}"),
        "untrusted" => {
            assert_eq!(r, WSB_ERR_TLS, "{d}");
            assert!(d.contains("UnknownIssuer"), "{d}");
            assert!(!d.contains("OS certificate store"), "{d}");
        }
        "unreadable" => {
            assert_eq!(r, WSB_ERR_TLS, "{d}");
            assert!(d.contains("UnknownIssuer"), "{d}");
            assert!(d.contains("(OS certificate store: "), "{d}");
            assert!(d.contains("no-such-bundle.pem"), "{d}");
        }
        other => panic!("unknown WSB_CHILD_EXPECT {other:?}"),
    }
    println!("child ok: {expect}");
}
