//! wsb_options_set_proxy: ws:// and wss:// tunnelled through an HTTP CONNECT
//! proxy, against small in-process proxies on 127.0.0.1 (one that tunnels,
//! one that refuses, one that demands Basic auth, and misbehaving ones), all
//! in front of the loopback test server. (.ci/ecosystem.sh runs the same
//! against a real proxy, tinyproxy.)

mod capi;
mod support;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use capi::*;
use parking_lot::Mutex;
use support::TestServer;
use wsbridge::ffi::options::*;
use wsbridge::ffi::socket::*;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result;
use wsbridge::wsb_result::*;

/// Bound on every blocking read/write of the test proxies.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
enum Mode {
    /// Answer 200 and relay bytes both ways (targets on 127.0.0.1 only).
    Tunnel,
    /// Answer this status line, then close.
    Refuse(&'static str),
    /// Tunnel only with `Proxy-Authorization: <value>`; else 407.
    Auth(&'static str),
    /// Read the request, never answer (until the client leaves or Drop).
    Silent,
    /// Answer something that is not HTTP.
    Garbage,
    /// Close right after reading the request.
    Hangup,
    /// Write these bytes, then close.
    Say(&'static [u8]),
}

struct Shared {
    stop: AtomicBool,
    heads: Mutex<Vec<String>>,
    live: Mutex<Vec<TcpStream>>,
}

/// A tiny CONNECT proxy on 127.0.0.1; stops on Drop.
struct TestProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl TestProxy {
    fn start(mode: Mode) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            heads: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(c) = conn.try_clone() {
                    sh.live.lock().push(c);
                }
                let (sh, mode) = (sh.clone(), mode.clone());
                thread::spawn(move || serve(conn, &mode, &sh));
            }
        });
        TestProxy { port, shared }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}@127.0.0.1:{}", self.port)
    }

    /// Request heads received so far.
    fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().clone()
    }

    fn wait_heads(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.shared.heads.lock().len() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        self.heads()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for s in self.shared.live.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve(mut conn: TcpStream, mode: &Mode, sh: &Shared) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    sh.heads.lock().push(head.clone());
    match mode {
        Mode::Tunnel => tunnel(conn, &head),
        Mode::Refuse(status) => {
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let _ = conn.shutdown(Shutdown::Both);
        }
        Mode::Auth(expected) => {
            let ok = head.lines().any(|l| {
                l.split_once(':').is_some_and(|(n, v)| {
                    n.eq_ignore_ascii_case("proxy-authorization") && v.trim() == *expected
                })
            });
            if ok {
                tunnel(conn, &head);
            } else {
                let _ = write!(
                    conn,
                    "HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: Basic realm=\"wsb\"\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
        Mode::Silent => {
            let mut sink = [0u8; 512];
            while !sh.stop.load(Ordering::Acquire) {
                match conn.read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        }
        Mode::Garbage => {
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
            let _ = conn.shutdown(Shutdown::Both);
        }
        // The clone kept in `live` holds the socket open: shut it down
        // explicitly so the client sees the end.
        Mode::Hangup => {
            let _ = conn.shutdown(Shutdown::Both);
        }
        Mode::Say(bytes) => {
            let _ = conn.write_all(bytes);
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// `CONNECT host:port`: connect to 127.0.0.1:port (loopback only), answer
/// 200, relay until either side closes.
fn tunnel(mut conn: TcpStream, head: &str) {
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or("");
    let port = target
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let host_ok = target.starts_with("127.0.0.1:") || target.starts_with("localhost:");
    let upstream = match port {
        Some(p) if host_ok => TcpStream::connect(("127.0.0.1", p)).ok(),
        _ => None,
    };
    let Some(up) = upstream else {
        let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        let _ = conn.shutdown(Shutdown::Both);
        return;
    };
    let _ = up.set_read_timeout(Some(IO_TIMEOUT));
    let _ = up.set_write_timeout(Some(IO_TIMEOUT));
    if conn
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut conn2), Ok(mut up2)) = (conn.try_clone(), up.try_clone()) else {
        return;
    };
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut up2, &mut conn2);
        let _ = conn2.shutdown(Shutdown::Write);
    });
    let mut up = up;
    let _ = std::io::copy(&mut conn, &mut up);
    let _ = up.shutdown(Shutdown::Write);
    let _ = back.join();
}

// ---------------------------------------------------------------- helpers

fn set_proxy(o: &Opts, url: &str) -> wsb_result {
    let c = CString::new(url).unwrap();
    wsb_options_set_proxy(o.0, c.as_ptr())
}

fn via(proxy_url: &str) -> Opts {
    let o = Opts::new();
    assert_eq!(set_proxy(&o, proxy_url), WSB_OK, "{}", last_error());
    o
}

/// Connect expecting failure: returns (wait_open's code, its detail) after
/// checking the events are ERROR (same code and detail) then CLOSE 1006.
fn connect_fails(url: &str, opts: &Opts) -> (wsb_result, String) {
    let ws = Ws::connect(url, Some(opts)).expect("wsb_connect");
    let r = ws.wait_open();
    let detail = last_error();
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE], "{evs:?}");
    assert_eq!(evs[0].error, r);
    assert_eq!(evs[0].text(), detail);
    assert_eq!((evs[1].close_code, evs[1].clean), (1006, false));
    (r, detail)
}

fn echo(ws: &Ws) {
    assert_eq!(ws.send_text("through the tunnel"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "through the tunnel");
    let bin = [0u8, 1, 2, 0xfe, 0xff];
    assert_eq!(ws.send_binary(&bin), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_BINARY).data, bin);
    assert_eq!(ws.close(1000, Some("bye")), WSB_OK);
    let close = ws.expect(WSB_EVENT_CLOSE);
    assert_eq!((close.close_code, close.clean), (1000, true));
}

// ---------------------------------------------------------------- tests

#[test]
fn ws_echo_through_a_connect_proxy() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Tunnel);
    let ws = Ws::open(&srv.url("/echo"), Some(&via(&proxy.url())));
    echo(&ws);
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let target = format!("127.0.0.1:{}", srv.port);
    assert!(
        heads[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
        "{heads:?}"
    );
    assert!(
        heads[0].contains(&format!("\r\nHost: {target}\r\n")),
        "{heads:?}"
    );
    assert!(
        !heads[0]
            .to_ascii_lowercase()
            .contains("proxy-authorization"),
        "{heads:?}"
    );
    // The server saw the WebSocket request itself, through the tunnel.
    assert_eq!(srv.requests(), ["/echo"]);
}

#[test]
fn stats_count_the_connect_exchange_and_time_it_as_tcp() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Tunnel);
    let direct = Ws::open(&srv.url("/echo"), None);
    echo(&direct);
    let tunnelled = Ws::open(&srv.url("/echo"), Some(&via(&proxy.url())));
    echo(&tunnelled);
    let (d, t) = (direct.stats(), tunnelled.stats());
    // The same exchange, plus the CONNECT request and the proxy's reply.
    let request = proxy.heads()[0].len() as u64;
    let reply = b"HTTP/1.1 200 Connection established\r\n\r\n".len() as u64;
    assert_eq!(t.wire_bytes_out, d.wire_bytes_out + request, "{t:?} {d:?}");
    assert_eq!(t.wire_bytes_in, d.wire_bytes_in + reply, "{t:?} {d:?}");
    assert_eq!(
        (
            t.messages_out,
            t.payload_bytes_out,
            t.messages_in,
            t.payload_bytes_in
        ),
        (2, 23, 2, 23)
    );
    // The proxy is an IP address: no lookup; the tunnel is part of TCP.
    assert!(t.tcp_us > 0 && t.upgrade_us > 0, "{t:?}");
    assert_eq!((t.dns_us, t.tls_us), (0, 0), "{t:?}");
}

#[test]
fn wss_echo_through_a_connect_proxy_with_tls_end_to_end() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Tunnel);
    let opts = via(&proxy.url()).ca(&srv.ca_pem);
    let ws = Ws::open(&srv.tls_url("/echo"), Some(&opts));
    echo(&ws);
    // The host name goes to the proxy unresolved (the proxy resolves it).
    let heads = proxy.heads();
    assert!(
        heads[0].starts_with(&format!("CONNECT localhost:{} HTTP/1.1\r\n", srv.tls_port)),
        "{heads:?}"
    );
    // Certificate checks still apply through the tunnel.
    let (r, d) = connect_fails(&srv.tls_url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_TLS, "{d}");
    assert!(d.contains("UnknownIssuer"), "{d}");
}

#[test]
fn a_refusing_proxy_is_a_connect_error_naming_the_status() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Refuse("403 Forbidden"));
    let (r, d) = connect_fails(&srv.url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert_eq!(
        d,
        format!(
            "proxy 127.0.0.1:{} refused CONNECT to 127.0.0.1:{}: HTTP 403 Forbidden",
            proxy.port, srv.port
        )
    );
    assert_eq!(srv.tcp_connections(), 0, "nothing reached the server");
    // A gateway error (the proxy could not reach the target) is the same.
    let proxy = TestProxy::start(Mode::Refuse("502 Bad Gateway"));
    let (r, d) = connect_fails(&srv.tls_url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(d.ends_with(": HTTP 502 Bad Gateway"), "{d}");
}

#[test]
fn basic_auth_from_the_proxy_url() {
    let srv = TestServer::start();
    // base64("us@er:p:ss"): the user info is %-decoded before encoding.
    let proxy = TestProxy::start(Mode::Auth("Basic dXNAZXI6cDpzcw=="));
    let (r, d) = connect_fails(&srv.url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(d.contains("requires authentication"), "{d}");
    assert!(d.contains("HTTP 407 Proxy Authentication Required"), "{d}");

    let (r, d) = connect_fails(&srv.url("/echo"), &via(&proxy.url_with("us%40er:wrong")));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(d.contains("rejected the credentials (HTTP 407"), "{d}");
    assert!(!d.contains("wrong"), "no password in details: {d}");

    let opts = via(&proxy.url_with("us%40er:p%3Ass"));
    let ws = Ws::open(&srv.url("/echo"), Some(&opts));
    echo(&ws);
    let heads = proxy.heads();
    assert_eq!(heads.len(), 3, "{heads:?}");
    assert!(
        heads[2].contains("\r\nProxy-Authorization: Basic dXNAZXI6cDpzcw==\r\n"),
        "{heads:?}"
    );
    assert_eq!(
        srv.requests(),
        ["/echo"],
        "only the authorised one got through"
    );
}

#[test]
fn the_proxy_url_is_checked_when_set() {
    let o = Opts::new();
    for bad in [
        "127.0.0.1:3128",
        "https://127.0.0.1:3128",
        "socks5://127.0.0.1:1080",
        "ws://127.0.0.1:80",
        "http://",
        "http://127.0.0.1:0",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:3128/path",
        "http://[::1",
        "http://a b:1",
        "http://u%zz:p@127.0.0.1:1",
    ] {
        assert_eq!(set_proxy(&o, bad), WSB_ERR_INVALID_URL, "{bad}");
        assert!(
            last_error().starts_with("invalid proxy URL"),
            "{bad}: {}",
            last_error()
        );
    }
    assert_eq!(set_proxy(&o, "https://u:hunter2@h:1"), WSB_ERR_INVALID_URL);
    assert!(last_error().contains("not supported"), "{}", last_error());
    assert!(!last_error().contains("hunter2"), "{}", last_error());
    // Invalid UTF-8.
    let raw = CString::new(b"http://\xff:1".to_vec()).unwrap();
    assert_eq!(
        wsb_options_set_proxy(o.0, raw.as_ptr()),
        WSB_ERR_INVALID_URL
    );
    // NULLs.
    let u = CString::new("http://127.0.0.1:1").unwrap();
    assert_eq!(
        wsb_options_set_proxy(ptr::null_mut(), u.as_ptr()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_proxy(o.0, ptr::null()),
        WSB_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        wsb_options_set_native_roots(ptr::null_mut(), true),
        WSB_ERR_NULL_ARGUMENT
    );
    for good in [
        "http://127.0.0.1:3128",
        "HTTP://localhost:8080/",
        "http://[::1]:3128",
        "http://proxy.example",
        "http://user:pa%20ss@proxy.example:3128",
    ] {
        assert_eq!(set_proxy(&o, good), WSB_OK, "{good}: {}", last_error());
    }
}

#[test]
fn an_empty_proxy_url_means_a_direct_connection() {
    let srv = TestServer::start();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let opts = via(&format!("http://127.0.0.1:{dead_port}"));
    assert_eq!(set_proxy(&opts, ""), WSB_OK);
    let ws = Ws::open(&srv.url("/echo"), Some(&opts));
    echo(&ws);
}

#[test]
fn an_unreachable_proxy_is_a_connect_error() {
    let srv = TestServer::start();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let (r, d) = connect_fails(&srv.url("/echo"), &via(&format!("http://127.0.0.1:{port}")));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(
        d.starts_with(&format!("connect to proxy 127.0.0.1:{port}: ")),
        "{d}"
    );
}

#[test]
fn malformed_and_missing_proxy_replies() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Garbage);
    let (r, d) = connect_fails(&srv.url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(d.contains("malformed reply to CONNECT"), "{d}");
    assert!(d.contains("SSH-2.0"), "{d}");

    let proxy = TestProxy::start(Mode::Hangup);
    let (r, d) = connect_fails(&srv.tls_url("/echo"), &via(&proxy.url()));
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert!(
        d.contains("closed the connection without answering CONNECT"),
        "{d}"
    );
}

/// A "proxy" that answers in another protocol and closes is described by
/// what it sent (printable, truncated), not as having sent nothing.
#[test]
fn a_proxy_that_answers_in_another_protocol_is_named_by_what_it_sent() {
    let srv = TestServer::start();
    let long: &'static [u8] = Box::leak(vec![b'A'; 5000].into_boxed_slice());
    for (said, quoted) in [
        (&b"SSH-2.0-OpenSSH_9.6\r\n"[..], "\"SSH-2.0-OpenSSH_9.6\""),
        // A TLS server's alert: unprintable bytes are shown as '?'.
        (b"\x15\x03\x01\x00\x02\x02\x50", "\"??????P\""),
        // An HTTP reply cut before its blank line.
        (
            b"HTTP/1.1 200 Connection established\r\n",
            "\"HTTP/1.1 200 Connection established\"",
        ),
        (long, &format!("\"{}\"", "A".repeat(100))),
    ] {
        let proxy = TestProxy::start(Mode::Say(said));
        let (r, d) = connect_fails(&srv.url("/echo"), &via(&proxy.url()));
        assert_eq!(r, WSB_ERR_CONNECT, "{d}");
        let want = format!(
            "proxy 127.0.0.1:{} sent a malformed reply to CONNECT: {quoted}",
            proxy.port
        );
        assert_eq!(d, want);
    }
}

#[test]
fn the_connect_timeout_covers_the_proxy() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Silent);
    let opts = via(&proxy.url()).connect_timeout(300);
    let t0 = Instant::now();
    let (r, d) = connect_fails(&srv.url("/echo"), &opts);
    assert_eq!(r, WSB_ERR_CONNECT, "{d}");
    assert_eq!(d, "connect timeout during proxy CONNECT (after 300 ms)");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

#[test]
fn close_interrupts_a_connect_waiting_on_the_proxy() {
    let srv = TestServer::start();
    let proxy = TestProxy::start(Mode::Silent);
    let ws = Ws::connect(&srv.url("/echo"), Some(&via(&proxy.url()))).unwrap();
    // The proxy has the CONNECT request: the I/O thread waits for its reply.
    assert_eq!(proxy.wait_heads(1).len(), 1);
    let t0 = Instant::now();
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE], "{evs:?}");
    assert_eq!((evs[0].close_code, evs[0].clean), (1006, false));
    assert_eq!(wsb_wait_open(ws.0, 1000), WSB_ERR_NOT_OPEN);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}
