//! `wsb-luau`: runs a Luau script with `print`, `warn`, `task` and `WebSocket`.
//!
//! All Luau work happens in C (`host.c` and the reference binding
//! `examples-c/luau/websocket.c`); this file only parses the command line,
//! optionally starts a loopback echo server, and calls the C entry point.

use std::ffi::{c_char, c_int, CString};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

use tungstenite::Message;
// The C host and binding call wsbridge's `extern "C"` functions; naming the
// crate makes rustc link its rlib, which provides them.
use wsbridge as _;

extern "C" {
    /// Runs `script` to completion; returns the process exit code (declared
    /// in host.h, defined in host.c).
    fn wsb_luau_run(
        script: *const c_char,
        argc: c_int,
        argv: *const *const c_char,
        timeout_s: f64,
        compression: c_int,
        binary_as_buffer: c_int,
    ) -> c_int;
    /// Installs (or, with NULL, removes) the stderr log hook; -1 for an
    /// unknown level (declared in host.h, defined in host.c).
    fn wsb_luau_log(level: *const c_char) -> c_int;
    /// From wsbridge.
    fn wsb_version() -> *const c_char;
}

const USAGE: &str = "\
usage: wsb-luau [--timeout SECONDS] [--echo-server] [--no-compression]
                [--binary-as-buffer] [--log LEVEL] SCRIPT [ARG...]

Runs SCRIPT (Luau source) as the main coroutine, with the ARGs as `...`.
Globals: print, warn, task.spawn/defer/delay/wait/cancel, WebSocket,
collectgarbage(\"collect\" | \"count\").

  --timeout SECONDS  stop with exit code 3 after this long (default 60)
  --echo-server      start a WebSocket echo server on 127.0.0.1 and pass its
                     ws://127.0.0.1:PORT URL to the script as the first ARG
                     (it does not take up compression)
  --no-compression   sockets do not offer permessage-deflate (by default
                     they do, as browsers do)
  --binary-as-buffer OnMessage gets binary messages as buffer values (by
                     default as strings, as the sUNC API says)
  --log LEVEL        wsbridge's log on stderr: error, warn, info or debug

Exit codes: 0 all finished; 1 script error (message and stack trace on
stderr); 2 an error in a spawned coroutine or handler; 3 host timeout;
64 bad command line.";

struct Options {
    timeout: f64,
    echo_server: bool,
    compression: bool,
    binary_as_buffer: bool,
    /// `--log LEVEL`, checked by the host when it installs the hook.
    log: Option<String>,
    script: String,
    args: Vec<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut timeout = 60.0;
    let mut echo_server = false;
    let mut compression = true;
    let mut binary_as_buffer = false;
    let mut log = None;
    loop {
        let arg = args.next().ok_or("missing SCRIPT")?;
        match arg.as_str() {
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a value")?;
                timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .ok_or_else(|| {
                        format!("--timeout: not a positive number of seconds: {value}")
                    })?;
            }
            "--echo-server" => echo_server = true,
            "--no-compression" => compression = false,
            "--binary-as-buffer" => binary_as_buffer = true,
            "--log" => log = Some(args.next().ok_or("--log needs a LEVEL")?),
            "--help" | "-h" | "--version" => {
                return Ok(Options {
                    timeout,
                    echo_server,
                    compression,
                    binary_as_buffer,
                    log,
                    script: arg,
                    args: Vec::new(),
                })
            }
            "--" => {
                let script = args.next().ok_or("missing SCRIPT")?;
                return Ok(Options {
                    timeout,
                    echo_server,
                    compression,
                    binary_as_buffer,
                    log,
                    script,
                    args: args.collect(),
                });
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => {
                return Ok(Options {
                    timeout,
                    echo_server,
                    compression,
                    binary_as_buffer,
                    log,
                    script: arg,
                    args: args.collect(),
                })
            }
        }
    }
}

/// Starts a WebSocket echo server on an ephemeral loopback port (one thread
/// per connection, text and binary echoed as they come) and returns its URL.
/// It is tungstenite's server: it leaves permessage-deflate offers unanswered,
/// so its connections are never compressed.
fn start_echo_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("ws://{}", listener.local_addr()?);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || echo(stream));
        }
    });
    Ok(url)
}

fn echo(stream: TcpStream) {
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(message).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            // Closed (the close reply has been sent) or broken.
            Err(_) => return,
        }
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args();
    argv.next();
    let mut opts = match parse_args(argv) {
        Ok(opts) => opts,
        Err(msg) => {
            if msg == "missing SCRIPT" {
                eprintln!("{USAGE}");
            } else {
                eprintln!("wsb-luau: {msg}\n{USAGE}");
            }
            return ExitCode::from(64);
        }
    };
    if opts.script == "--help" || opts.script == "-h" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if opts.script == "--version" {
        // SAFETY: wsb_version returns a static NUL-terminated string.
        let wsbridge = unsafe { std::ffi::CStr::from_ptr(wsb_version()) };
        println!(
            "wsb-luau {} (Luau {}, wsbridge {})",
            env!("CARGO_PKG_VERSION"),
            luau_vm::LUAU_VERSION,
            wsbridge.to_string_lossy()
        );
        return ExitCode::SUCCESS;
    }
    if let Some(level) = &opts.log {
        // (A NUL inside makes an empty string, which no level is.)
        let c = CString::new(level.as_str()).unwrap_or_default();
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        if unsafe { wsb_luau_log(c.as_ptr()) } != 0 {
            eprintln!("wsb-luau: --log: not one of error, warn, info, debug: {level}\n{USAGE}");
            return ExitCode::from(64);
        }
    }
    if opts.echo_server {
        match start_echo_server() {
            Ok(url) => opts.args.insert(0, url),
            Err(err) => {
                eprintln!("wsb-luau: cannot start the echo server: {err}");
                return ExitCode::from(1);
            }
        }
    }

    let to_c =
        |s: &str| CString::new(s).map_err(|_| format!("argument contains a NUL byte: {s:?}"));
    let converted: Result<Vec<CString>, String> = std::iter::once(opts.script.as_str())
        .chain(opts.args.iter().map(String::as_str))
        .map(to_c)
        .collect();
    let c_args = match converted {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("wsb-luau: {msg}");
            return ExitCode::from(64);
        }
    };
    let argv: Vec<*const c_char> = c_args[1..].iter().map(|s| s.as_ptr()).collect();
    // SAFETY: every pointer refers to a NUL-terminated string in `c_args`,
    // which outlives the call; `argv` has exactly `argc` elements. Luau errors
    // are caught inside the C host (lua_resume), never unwinding into Rust.
    let code = unsafe {
        wsb_luau_run(
            c_args[0].as_ptr(),
            argv.len() as c_int,
            argv.as_ptr(),
            opts.timeout,
            c_int::from(opts.compression),
            c_int::from(opts.binary_as_buffer),
        )
    };
    if opts.log.is_some() {
        // SAFETY: NULL removes the hook.
        unsafe { wsb_luau_log(std::ptr::null()) };
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
