//! The C++ wrapper (include/wsbridge.hpp): examples-c/cpp/echo.cpp and
//! tests/cpp/wrapper_test.cpp compiled with the system C++ compiler
//! (-std=c++17 and c++20, -fno-exceptions, -Wall -Wextra -Werror -pedantic)
//! and run against the loopback server: linked with -lwsbridge, and loaded
//! with dlopen (WSBRIDGE_DYNAMIC).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::programs::{check, lib_dir, out_dir, root, run};
use support::TestServer;

/// How a program reaches the library.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    Linked,
    /// `define` (ECHO_DLOPEN or WSBRIDGE_DYNAMIC) selects dlopen.
    Dlopen(&'static str),
}

fn compile(compiler: &str, std: &str, src: &Path, name: &str, load: Load) -> PathBuf {
    let out = out_dir("cpp").join(name);
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
    let ca = out_dir("cpp").join("ca.pem");
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
    let dir = out_dir("cpp");
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
