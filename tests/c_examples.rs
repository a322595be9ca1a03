//! The C examples and the C contract program, compiled with the system C
//! compiler against include/wsbridge.h and run against the loopback server:
//! linked with -lwsbridge, and loaded with dlopen.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::programs::{check, lib_dir, out_dir, root, run};
use support::TestServer;

fn compile(src: &Path, name: &str, link: bool) -> PathBuf {
    let out = out_dir("c").join(name);
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=c99",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-O1",
    ])
    .arg("-I")
    .arg(root().join("include"))
    .arg(src)
    .arg("-o")
    .arg(&out);
    if link {
        let dir = lib_dir();
        cmd.arg(format!("-L{}", dir.display()))
            .arg("-lwsbridge")
            .arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    cmd.args(["-lpthread", "-ldl"]);
    let st = cmd.status().expect("run cc");
    assert!(st.success(), "compiling {} failed", src.display());
    out
}

#[test]
fn echo_c_linked() {
    let srv = TestServer::start();
    let exe = compile(&root().join("examples-c/echo.c"), "echo", true);
    let out = check(&run(&exe, &[&srv.url("/echo")]), "echo.c over ws://");
    assert!(out.contains("text: hello, wsbridge"), "{out}");
    assert!(out.contains("binary: 5 bytes"), "{out}");
    assert!(out.contains("close: code 1000, clean 1"), "{out}");
    // wss:// with the test CA added by option.
    let ca = out_dir("c").join("ca.pem");
    std::fs::write(&ca, &srv.ca_pem).unwrap();
    let out = check(
        &run(&exe, &[&srv.tls_url("/echo"), ca.to_str().unwrap()]),
        "echo.c over wss://",
    );
    assert!(out.contains("text: hello, wsbridge"), "{out}");
}

#[test]
fn dlopen_echo_c() {
    let srv = TestServer::start();
    let exe = compile(
        &root().join("examples-c/dlopen_echo.c"),
        "dlopen_echo",
        false,
    );
    let lib = lib_dir().join("libwsbridge.so");
    let out = check(
        &run(&exe, &[&srv.url("/echo"), lib.to_str().unwrap()]),
        "dlopen_echo.c",
    );
    assert!(out.contains("text: hello through dlopen"), "{out}");
    assert!(out.contains("unloaded"), "{out}");
}

#[test]
fn event_loop_c() {
    let srv = TestServer::start();
    let exe = compile(&root().join("examples-c/event_loop.c"), "event_loop", true);
    let out = check(&run(&exe, &[&srv.url("/echo"), "500"]), "event_loop.c");
    assert!(out.contains("500 of 500 echoes in order"), "{out}");
}

#[test]
fn contract_c() {
    let srv = TestServer::start();
    let exe = compile(&root().join("tests/c/contract.c"), "contract", true);
    let base = format!("ws://127.0.0.1:{}", srv.port);
    let out = check(&run(&exe, &[&base]), "tests/c/contract.c");
    assert!(out.trim_end().ends_with(" 0 failed"), "{out}");
}

#[test]
fn only_wsb_symbols_are_exported() {
    let lib = lib_dir().join("libwsbridge.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("run nm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(
        names.contains(&"wsb_connect") && names.contains(&"wsb_shutdown"),
        "{names:?}"
    );
    let foreign: Vec<&&str> = names.iter().filter(|n| !n.starts_with("wsb_")).collect();
    assert!(
        foreign.is_empty(),
        "exported symbols without the wsb_ prefix: {foreign:?}"
    );
    // Every function of the header is exported.
    let header = std::fs::read_to_string(root().join("include/wsbridge.h")).unwrap();
    for decl in header.lines().filter(|l| {
        l.contains(" wsb_") && l.contains('(') && !l.starts_with(' ') && !l.starts_with("typedef")
    }) {
        let name = decl
            .split('(')
            .next()
            .unwrap()
            .rsplit([' ', '*'])
            .next()
            .unwrap();
        assert!(names.contains(&name), "{name} declared but not exported");
    }
}
