#![allow(dead_code)]
//! In-process loopback WebSocket test server shared by the integration tests.
//!
//! `TestServer::start()` binds three listeners on 127.0.0.1 (plain ws, TLS
//! wss, and a "hang" port that accepts TCP and never answers). Every
//! connection gets its own thread; every blocking read/write on it has a 30 s
//! timeout, and dropping the server shuts everything down in bounded time.
//!
//! Paths (same on the plain and the TLS port; query after `?`):
//!
//! | path | behaviour |
//! |------|-----------|
//! | `/echo` | echo text/binary as the same type; answers close |
//! | `/caf%C3%A9` | like `/echo` (the path of `/café` as a client must send it: raw `/café` is a 404) |
//! | `/close?code=4001&reason=bye` | server sends close (no `code` = empty close frame), waits for the reply, closes TCP |
//! | `/close_code?code=N&reason=r` | like `/close` but the frame is written raw, so N may be 999, 1005, ... |
//! | `/refuse403`, `/refuse?status=N` | HTTP N (default 403) instead of the upgrade |
//! | `/subprotocol[?force=p]` | answers the first offered subprotocol (or `p`), then echo |
//! | `/headers` | one text message `name: value` per line (`\n`), names lowercase, request order; then echo |
//! | `/burst?n=10&size=0` | n text messages, message i = decimal i padded with `.` to `size` bytes; then echo |
//! | `/big?size=N`, `/oversize?size=N` | one binary message of N bytes, byte i = i % 251 (default 1 MiB); then echo |
//! | `/fragmented?parts=5[&binary=1][&ping=1]` | `fragment-0\|fragment-1\|...` in `parts` frames (frame i = `fragment-i` + `\|`); `ping=1` puts a ping between fragments; then echo |
//! | `/drop` | text `bye`, then TCP shutdown without close frame |
//! | `/drop_mid` | header of a 1000-byte binary frame, 10 bytes of it, TCP shutdown |
//! | `/silent` | never answers anything (reads and discards) until the client leaves or 60 s |
//! | `/stall` | never reads nor writes (the client's sends back up) until 60 s or Drop |
//! | `/badutf8` | raw text frame `C3 28`; then echoes the client's close frame |
//! | `/raw?hex=c100` | the hex-decoded bytes written raw after the upgrade; then raw mode |
//! | `/ping?payload=abc` | ping `abc`; on the matching pong, text `pong:abc`; then echo |
//! | `/http200` | `HTTP/1.1 200 OK` with a small body, no upgrade |
//! | `/garbage` | `\x00\x01garbage\r\n\r\n`, then close |
//! | `/upgrade?conn=Upgrade&ext=e&size=N&seg=N` | a handcrafted 101: one `Connection` line per `conn`, `Sec-WebSocket-Extensions: e`, padded to N bytes, written in `seg`-byte TCP segments, `lines=HEX` raw header lines after the status line, `pre=HEX` bytes (interim 1xx heads) before the 101 (`offered=1`: `ext` only if the request offered permessage-deflate); then echo, or with `mode=deflate` a permessage-deflate peer that answers `stats?` with `compressed=N plain=M` (see `deflate_peer`) |
//! | anything else | HTTP 404 |
//!
//! After `/close_code` and `/badutf8` the server handles frames raw: it answers
//! pings, echoes the client's close frame payload unchanged, then closes.

mod conn;
pub mod dropper;
mod handlers;
pub mod programs;
pub mod raw;
mod tls;
#[allow(unused_imports)] // not every test binary uses them
pub use tls::{generate_with as tls_setup, TlsSetup};

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Read/write timeout on every server-side socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `/silent` and `/stall` hold a connection at most.
pub const SILENT_HOLD: Duration = Duration::from_secs(60);
/// Upper bound for each stage of `Drop`.
const DROP_WAIT: Duration = Duration::from_secs(5);

/// A close frame the server received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientClose {
    /// Request path of the connection, e.g. `/echo`.
    pub path: String,
    /// `None` if the close frame had no payload.
    pub code: Option<u16>,
    pub reason: String,
}

#[derive(Default)]
struct State {
    stopping: bool,
    /// Accept threads still running.
    acceptors: usize,
    tcp_accepted: usize,
    ws_accepted: usize,
    hang_accepted: usize,
    active: usize,
    requests: Vec<String>,
    client_closes: Vec<ClientClose>,
    /// Clones of live connection sockets, shut down on Drop.
    live: HashMap<u64, TcpStream>,
    /// Sockets accepted on the hang port, held until Drop.
    hang: Vec<TcpStream>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    next_id: AtomicU64,
}

impl Shared {
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.state.lock());
        self.changed.notify_all();
        r
    }

    fn stopping(&self) -> bool {
        self.state.lock().stopping
    }

    pub(crate) fn ws_accepted(&self) {
        self.update(|s| s.ws_accepted += 1);
    }

    pub(crate) fn record_close(&self, c: ClientClose) {
        self.update(|s| s.client_closes.push(c));
    }

    /// Blocks until the server is dropped or `max` passes.
    pub(crate) fn wait_stop(&self, max: Duration) {
        let deadline = Instant::now() + max;
        let mut st = self.state.lock();
        while !st.stopping {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return;
            }
        }
    }

    /// Waits until `pred` holds or `timeout` passes; returns whether it holds.
    fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if pred(&st) {
                return true;
            }
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return pred(&st);
            }
        }
    }
}

pub(crate) fn log(msg: &str) {
    eprintln!("[test-server] {msg}");
}

/// Registration of one live connection; unregisters on drop.
struct LiveGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.shared.update(|s| {
            s.live.remove(&self.id);
            s.active -= 1;
        });
    }
}

enum Kind {
    Plain,
    Tls(Arc<ServerConfig>),
    Hang,
}

pub struct TestServer {
    /// Plain `ws://` port.
    pub port: u16,
    /// `wss://` port (certificate for `localhost` and 127.0.0.1).
    pub tls_port: u16,
    /// PEM of the CA that signed the TLS certificate.
    pub ca_pem: String,
    /// Accepts TCP connections and never writes anything.
    pub hang_port: u16,
    shared: Arc<Shared>,
}

impl TestServer {
    /// Binds the listeners on 127.0.0.1:0 and starts accepting; connections
    /// made after this returns are served.
    pub fn start() -> TestServer {
        let tls = tls::generate();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        let bind = |kind: Kind| -> u16 {
            let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
            let port = listener.local_addr().expect("local_addr").port();
            let shared = shared.clone();
            shared.update(|s| s.acceptors += 1);
            thread::Builder::new()
                .name(format!("test-server-accept-{port}"))
                .spawn(move || {
                    accept_loop(listener, kind, &shared);
                    shared.update(|s| s.acceptors -= 1);
                })
                .expect("spawn accept thread");
            port
        };
        let port = bind(Kind::Plain);
        let tls_port = bind(Kind::Tls(tls.server_config.clone()));
        let hang_port = bind(Kind::Hang);
        TestServer {
            port,
            tls_port,
            ca_pem: tls.ca_pem,
            hang_port,
            shared,
        }
    }

    /// `ws://127.0.0.1:{port}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// `wss://localhost:{tls_port}{path}`
    pub fn tls_url(&self, path: &str) -> String {
        format!("wss://localhost:{}{}", self.tls_port, path)
    }

    /// `wss://127.0.0.1:{tls_port}{path}` (the certificate has that IP too).
    pub fn tls_ip_url(&self, path: &str) -> String {
        format!("wss://127.0.0.1:{}{}", self.tls_port, path)
    }

    /// `ws://127.0.0.1:{hang_port}{path}`: TCP connects, the upgrade never answers.
    pub fn hang_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.hang_port, path)
    }

    /// WebSocket upgrades completed so far (plain + TLS).
    pub fn connections(&self) -> usize {
        self.shared.state.lock().ws_accepted
    }

    /// TCP connections accepted on the plain and TLS ports (upgraded or not).
    pub fn tcp_connections(&self) -> usize {
        self.shared.state.lock().tcp_accepted
    }

    /// TCP connections accepted on the hang port.
    pub fn hang_connections(&self) -> usize {
        self.shared.state.lock().hang_accepted
    }

    /// Connections (plain + TLS) whose server thread is still running.
    pub fn active_connections(&self) -> usize {
        self.shared.state.lock().active
    }

    /// Request targets seen so far (path + query), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.state.lock().requests.clone()
    }

    /// Close frames received from clients so far.
    pub fn client_closes(&self) -> Vec<ClientClose> {
        self.shared.state.lock().client_closes.clone()
    }

    /// Waits until at least `n` client close frames were received (or
    /// `timeout` passes) and returns all received so far.
    pub fn wait_client_closes(&self, n: usize, timeout: Duration) -> Vec<ClientClose> {
        self.shared
            .wait_for(timeout, |s| s.client_closes.len() >= n);
        self.client_closes()
    }

    /// Waits until at least `n` WebSocket upgrades completed.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |s| s.ws_accepted >= n)
    }

    /// Waits until at least `n` TCP connections were accepted on the hang port.
    pub fn wait_hang_connections(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |s| s.hang_accepted >= n)
    }

    /// Waits until no connection thread is running (every connection has
    /// ended on the server side).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |s| s.active == 0)
    }
}

impl Drop for TestServer {
    /// Stops accepting, shuts down every live and held socket, and waits (at
    /// most a few seconds) for the threads to finish.
    fn drop(&mut self) {
        let (live, hang) = self.shared.update(|s| {
            s.stopping = true;
            (std::mem::take(&mut s.live), std::mem::take(&mut s.hang))
        });
        for s in live.values().chain(hang.iter()) {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(hang);
        // Wake the blocking accept() calls.
        for port in [self.port, self.tls_port, self.hang_port] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        if !self.shared.wait_for(DROP_WAIT, |s| s.acceptors == 0) {
            log("Drop: an accept thread did not stop in time");
        }
        if !self.shared.wait_for(DROP_WAIT, |s| s.active == 0) {
            log("Drop: connection threads still running; leaving them");
        }
    }
}

/// A self-signed certificate (PEM) for `localhost`/127.0.0.1 that is NOT
/// signed by any TestServer CA: trusting it still fails verification.
pub fn self_signed_pem() -> String {
    tls::self_signed_pem()
}

/// A rustls client config (ring provider) trusting exactly the certificates
/// in `pem` (e.g. `server.ca_pem`). For tests that speak TLS themselves.
pub fn tls_client_config(pem: &str) -> Arc<rustls::ClientConfig> {
    tls::client_config(pem)
}

/// The `/big` payload: byte i = i % 251.
pub fn big_pattern(size: usize) -> Vec<u8> {
    handlers::pattern(size)
}

/// Message i of `/mixed`: (is text, payload, sent in 3 fragments). Sizes
/// from 0 to about 20 000 bytes, text (multi-byte UTF-8 included) and
/// binary, every 9th message fragmented.
pub fn mixed_message(i: usize) -> (bool, Vec<u8>, bool) {
    let mut x = (i as u64).wrapping_mul(6_364_136_223_846_793_005) ^ 0x9e37;
    x ^= x >> 29;
    let size = match i % 4 {
        0 => (x % 126) as usize,
        1 => (x % 1_000) as usize,
        2 => (x % 20_000) as usize,
        _ => (x % 70_000) as usize,
    };
    let text = i % 2 == 0;
    let payload = if text {
        "ab\u{e9}\u{20ac}\u{1f600}"
            .chars()
            .cycle()
            .scan(0, |n, c| {
                *n += c.len_utf8();
                (*n <= size).then_some(c)
            })
            .collect::<String>()
            .into_bytes()
    } else {
        (0..size).map(|k| (k * 31 + i) as u8).collect()
    };
    (text, payload, i % 9 == 4)
}

/// Message i of `/burst?size=...`.
pub fn burst_message(i: usize, size: usize) -> String {
    let mut s = i.to_string();
    while s.len() < size {
        s.push('.');
    }
    s
}

fn accept_loop(listener: TcpListener, kind: Kind, shared: &Arc<Shared>) {
    let mut consecutive_errors = 0;
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => {
                consecutive_errors = 0;
                stream
            }
            Err(e) => {
                log(&format!("accept: {e}"));
                consecutive_errors += 1;
                if consecutive_errors > 100 {
                    log("accept: too many errors, giving up");
                    return;
                }
                continue;
            }
        };
        let tls = match &kind {
            Kind::Hang => {
                let held = shared.update(|s| {
                    if s.stopping {
                        false
                    } else {
                        s.hang_accepted += 1;
                        s.hang.push(stream);
                        true
                    }
                });
                if !held {
                    return;
                }
                continue;
            }
            Kind::Plain => None,
            Kind::Tls(cfg) => Some(cfg.clone()),
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let registered = match stream.try_clone() {
            Ok(clone) => shared.update(|s| {
                if s.stopping {
                    false
                } else {
                    s.tcp_accepted += 1;
                    s.active += 1;
                    s.live.insert(id, clone);
                    true
                }
            }),
            Err(e) => {
                log(&format!("try_clone: {e}"));
                false
            }
        };
        if !registered {
            continue;
        }
        let shared2 = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("test-server-conn-{id}"))
            .spawn(move || {
                let _guard = LiveGuard {
                    shared: &shared2,
                    id,
                };
                match catch_unwind(AssertUnwindSafe(|| serve(stream, tls, &shared2))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log(&format!("connection {id}: {e}")),
                    Err(_) => log(&format!("connection {id}: handler panicked")),
                }
            });
        if let Err(e) = spawned {
            log(&format!("spawn connection thread: {e}"));
            shared.update(|s| {
                s.live.remove(&id);
                s.active -= 1;
            });
        }
    }
}

fn serve(
    stream: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    shared: &Shared,
) -> Result<(), handlers::BoxErr> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut conn = match tls {
        None => conn::Conn::Plain(stream),
        Some(cfg) => conn::Conn::Tls(Box::new(StreamOwned::new(
            ServerConnection::new(cfg)?,
            stream,
        ))),
    };
    let head = conn::read_head(&mut conn).map_err(|e| format!("reading request: {e}"))?;
    let req = conn::parse_head(&head)?;
    shared.update(|s| s.requests.push(req.target.clone()));
    handlers::dispatch(conn, head, req, shared)
}
