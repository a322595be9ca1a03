//! Building and running the C and C++ programs the tests compile
//! (tests/c_examples.rs, tests/cpp_examples.rs): where the library and the
//! headers are, a scratch directory, and a bounded run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound on one program's run (never reached when things work).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository's root (include/, examples-c/, tests/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the freshly built libwsbridge.so: cargo builds the
/// cdylib next to this test binary (target/<profile>/deps).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    assert!(
        dir.join("libwsbridge.so").exists(),
        "no libwsbridge.so in {}",
        dir.display()
    );
    dir
}

/// A scratch directory for this test process's programs (`tag`: which kind).
pub fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run with a bound: a watchdog kills the child (by PID) if it outlives
/// RUN_TIMEOUT.
pub fn run(exe: &Path, args: &[&str]) -> Output {
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(RUN_TIMEOUT).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait for the program");
    let _ = tx.send(());
    watchdog.join().unwrap();
    out
}

/// The program's stdout, after checking it exited successfully.
pub fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
