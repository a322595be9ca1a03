//! A peer that dies mid-stream, and a CONNECT proxy that passes its death on.
//!
//! [`DroppingPeer`] listens on 127.0.0.1 twice (ws and wss). On each
//! connection it completes TLS (wss) and the upgrade (accepting
//! permessage-deflate when offered), reads and drops the client's frames
//! for 10–150 ms (a different time for each connection), then drops TCP
//! with no close frame and no close_notify: a reset (RST, SO_LINGER 0) or
//! a close (FIN), as [`Ending`] says.
//!
//! [`MirrorProxy`] is an HTTP CONNECT proxy (targets on 127.0.0.1 only)
//! that relays bytes both ways and ends the client's side as the target
//! ended its own: a reset with a reset, a close with a close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::raw;
use super::tls::{generate, TlsSetup};

/// Bound on every blocking read or write of these peers.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// How a peer drops the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// SO_LINGER 0, then close: the kernel sends RST.
    Reset,
    /// shutdown(2) both ways, then close: FIN (and RST for whatever the
    /// client sends after).
    Close,
}

/// Listeners on 127.0.0.1 that stop (and wake) on drop.
struct Listeners {
    stop: Arc<AtomicBool>,
    ports: Vec<u16>,
}

impl Listeners {
    fn spawn(
        listeners: Vec<TcpListener>,
        serve: impl Fn(usize, TcpStream, u64) + Send + Sync + 'static,
    ) -> Listeners {
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let count = Arc::new(AtomicU64::new(0));
        let mut ports = Vec::new();
        for (which, listener) in listeners.into_iter().enumerate() {
            ports.push(listener.local_addr().unwrap().port());
            let (stop, serve, count) = (stop.clone(), serve.clone(), count.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let n = count.fetch_add(1, Ordering::Relaxed);
                    let serve = serve.clone();
                    thread::spawn(move || serve(which, conn, n));
                }
            });
        }
        Listeners { stop, ports }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for p in &self.ports {
            let _ = TcpStream::connect(("127.0.0.1", *p));
        }
    }
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// End `sock` as `how` says. Every clone of it must be dropped for the
/// reset to go out (SO_LINGER 0 acts at the last close).
fn end(sock: &TcpStream, how: Ending) {
    if how == Ending::Reset {
        let _ = socket2::SockRef::from(sock).set_linger(Some(Duration::ZERO));
    }
    let _ = sock.shutdown(Shutdown::Both);
}

/// See the module doc.
pub struct DroppingPeer {
    listeners: Listeners,
    pub ca_pem: String,
}

impl DroppingPeer {
    pub fn start(how: Ending) -> DroppingPeer {
        let TlsSetup {
            ca_pem,
            server_config,
        } = generate();
        let listeners = Listeners::spawn(vec![bind(), bind()], move |which, tcp, n| {
            let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
            let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
            let _ = tcp.set_nodelay(true);
            let hold = Duration::from_millis(10 + (n * 61) % 141);
            let Ok(probe) = tcp.try_clone() else { return };
            if which == 0 {
                let _ = serve(tcp, hold);
            } else if let Ok(tls) = ServerConnection::new(server_config.clone()) {
                let _ = serve(StreamOwned::new(tls, tcp), hold);
            }
            // No close frame, no close_notify: the TCP connection just ends.
            end(&probe, how);
        });
        DroppingPeer { listeners, ca_pem }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.listeners.ports[0])
    }

    pub fn tls_url(&self) -> String {
        format!("wss://localhost:{}/", self.listeners.ports[1])
    }
}

/// Upgrade, then read and drop for `hold` (or until the client leaves).
fn serve<S: Read + Write>(mut s: S, hold: Duration) -> io::Result<()> {
    raw::accept_upgrade(&mut s, true)?;
    let until = Instant::now() + hold;
    let mut sink = vec![0u8; 64 * 1024];
    while Instant::now() < until {
        match s.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// See the module doc.
pub struct MirrorProxy {
    listeners: Listeners,
}

impl MirrorProxy {
    pub fn start() -> MirrorProxy {
        let listeners = Listeners::spawn(vec![bind()], |_, conn, _| {
            let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
            let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
            let _ = relay(conn);
        });
        MirrorProxy { listeners }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.listeners.ports[0])
    }
}

fn relay(mut conn: TcpStream) -> io::Result<()> {
    let head = String::from_utf8_lossy(&super::conn::read_head(&mut conn)?).into_owned();
    let port = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .filter(|t| t.starts_with("127.0.0.1:") || t.starts_with("localhost:"))
        .and_then(|t| t.rsplit_once(':')?.1.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other("not a CONNECT to 127.0.0.1"))?;
    let up = TcpStream::connect(("127.0.0.1", port))?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut conn2, mut up2) = (conn.try_clone()?, up.try_clone()?);
    let forward = thread::spawn(move || {
        let _ = io::copy(&mut conn2, &mut up2);
    });
    // The target's end decides the client's: a reset read as an error.
    let how = match io::copy(&mut &up, &mut &conn) {
        Ok(_) => Ending::Close,
        Err(_) => Ending::Reset,
    };
    end(&conn, how);
    end(&up, Ending::Close);
    let _ = forward.join();
    Ok(())
}
