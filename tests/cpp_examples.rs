//! The C++ wrapper (include/wsbridge.hpp): examples-c/cpp/echo.cpp and
//! tests/cpp/wrapper_test.cpp compiled with the system C++ compiler
//! (-std=c++17 and c++20, -fno-exceptions, -Wall -Wextra -Werror -pedantic)
//! and run against the loopback server: linked with -lwsbridge, and loaded
//! with dlopen (WSBRIDGE_DYNAMIC).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::TestServer;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the freshly built libwsbridge.so (target/<profile>/deps).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    assert!(
        dir.join("libwsbridge.so").exists(),
        "no libwsbridge.so in {}",
        dir.display()
    );
    dir
}

fn out_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsb-cpp-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// How a program reaches the library.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    Linked,
    /// `define` (ECHO_DLOPEN or WSBRIDGE_DYNAMIC) selects dlopen.
    Dlopen(&'static str),
}

fn compile(compiler: &str, std: &str, src: &Path, name: &str, load: Load) -> PathBuf {
    let out = out_dir().join(name);
    let mut cmd = Command::new(compiler);
    cmd.arg(format!("-std={std}"))
        .args([
            "-fno-exceptions",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-g",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg(src)
        .arg("-o")
        .arg(&out);
    match load {
        Load::Linked => {
            let dir = lib_dir();
            cmd.arg(format!("-L{}", dir.display()))
                .arg("-lwsbridge")
                .arg(format!("-Wl,-rpath,{}", dir.display()));
        }
        Load::Dlopen(define) => {
            cmd.arg(format!("-D{define}"));
        }
    }
    cmd.args(["-lpthread", "-ldl"]);
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(
        st.success(),
        "{compiler} -std={std} failed on {}",
        src.display()
    );
    out
}

/// Run with a bound: a watchdog kills the child (by PID) if it outlives RUN_TIMEOUT.
fn run(exe: &Path, args: &[&str]) -> Output {
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn program");
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(RUN_TIMEOUT).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait program");
    let _ = tx.send(());
    watchdog.join().unwrap();
    out
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn lib_path() -> String {
    lib_dir()
        .join("libwsbridge.so")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn echo_cpp_linked() {
    let srv = TestServer::start();
    let exe = compile(
        "c++",
        "c++17",
        &root().join("examples-c/cpp/echo.cpp"),
        "echo_cpp",
        Load::Linked,
    );
    let out = check(&run(&exe, &[&srv.url("/echo")]), "echo.cpp over ws://");
    assert!(out.contains("text: hello, wsbridge"), "{out}");
    assert!(out.contains("binary: 5 bytes"), "{out}");
    assert!(out.contains("close: code 1000, clean 1"), "{out}");
    let ca = out_dir().join("ca.pem");
    std::fs::write(&ca, &srv.ca_pem).unwrap();
    let out = check(
        &run(&exe, &[&srv.tls_url("/echo"), ca.to_str().unwrap()]),
        "echo.cpp over wss://",
    );
    assert!(out.contains("text: hello, wsbridge"), "{out}");
    assert!(out.contains("close: code 1000, clean 1"), "{out}");
}

#[test]
fn echo_cpp_dlopen() {
    let srv = TestServer::start();
    let exe = compile(
        "c++",
        "c++17",
        &root().join("examples-c/cpp/echo.cpp"),
        "echo_cpp_dlopen",
        Load::Dlopen("ECHO_DLOPEN"),
    );
    let out = check(
        &run(&exe, &[&srv.url("/echo"), &lib_path()]),
        "echo.cpp through dlopen",
    );
    assert!(out.contains("text: hello, wsbridge"), "{out}");
    assert!(out.contains("close: code 1000, clean 1"), "{out}");
    assert!(out.contains("unloaded"), "{out}");
}

fn wrapper_test(std: &str, load: Load) {
    let srv = TestServer::start();
    let name = format!(
        "wrapper_test_{}_{}",
        std.replace('+', "x"),
        if load == Load::Linked {
            "linked"
        } else {
            "dlopen"
        }
    );
    let exe = compile(
        "c++",
        std,
        &root().join("tests/cpp/wrapper_test.cpp"),
        &name,
        load,
    );
    let base = format!("ws://127.0.0.1:{}", srv.port);
    let lib = lib_path();
    let out = check(&run(&exe, &[&base, &lib]), &name);
    assert!(
        out.lines().any(|l| l.ends_with(" passed, 0 failed")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    if load != Load::Linked {
        assert!(out.contains("unloaded"), "{out}");
    }
}

#[test]
fn wrapper_test_cpp17_linked() {
    wrapper_test("c++17", Load::Linked);
}

#[test]
fn wrapper_test_cpp20_linked() {
    wrapper_test("c++20", Load::Linked);
}

#[test]
fn wrapper_test_cpp17_dlopen() {
    wrapper_test("c++17", Load::Dlopen("WSBRIDGE_DYNAMIC"));
}

/// clang++ as well, when it is installed (CI has it for the Windows suite).
#[test]
fn hpp_compiles_with_clang() {
    if Command::new("clang++").arg("--version").output().is_err() {
        eprintln!("no clang++: skipped");
        return;
    }
    let dir = out_dir();
    for (src, define) in [
        ("examples-c/cpp/echo.cpp", ""),
        ("examples-c/cpp/echo.cpp", "-DECHO_DLOPEN"),
        ("tests/cpp/wrapper_test.cpp", ""),
        ("tests/cpp/wrapper_test.cpp", "-DWSBRIDGE_DYNAMIC"),
    ] {
        let mut cmd = Command::new("clang++");
        cmd.args([
            "-std=c++17",
            "-fno-exceptions",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ]);
        if !define.is_empty() {
            cmd.arg(define);
        }
        let st = cmd
            .arg("-I")
            .arg(root().join("include"))
            .arg(root().join(src))
            .current_dir(&dir)
            .status()
            .expect("run clang++");
        assert!(st.success(), "clang++ failed on {src} {define}");
    }
}
