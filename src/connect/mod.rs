//! Before open: everything from a URL to an upgraded connection, on the
//! socket's own I/O thread. [`establish`] runs the steps in order, each in
//! its own file:
//! - [`url`]: the ws:// or wss:// URL;
//! - [`happy_eyeballs`]: resolve, then the TCP connect (RFC 8305, bounded
//!   by the connect timeout);
//! - [`proxy`]: the HTTP proxy's CONNECT tunnel, if one is set;
//! - [`tls`]: the rustls client configuration and the TLS handshake;
//! - [`handshake`]: the HTTP upgrade's request bytes and the checks of the
//!   server's answer (pure functions; the I/O is here).
//!
//! After open, the frames are [`crate::protocol`]'s. Every wait goes through
//! the thread's `mio::Poll`, so a local close or `wsb_shutdown` interrupts
//! it at once (except a DNS lookup in progress, which cannot be cancelled).
//! Each failure maps to its own code; every failure of the proxy stage
//! (unreachable, refused CONNECT, bad reply) is `WSB_ERR_CONNECT` with a
//! detail that names the proxy.

pub mod handshake;
pub mod happy_eyeballs;
pub mod proxy;
pub mod tls;
pub mod url;

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Token};

use crate::error::{wsb_result, Error};
use crate::log::log;
use crate::options::Options;
use crate::stats::{Phase, Stats};
use crate::transport::{read_raw, RxBuf, Transport};
use handshake::{Request, ResponseHead};
use happy_eyeballs::{resolve, tcp_connect};
use proxy::proxy_tunnel;
use tls::{tls_error, tls_handshake};
use url::WsUrl;

pub const SOCK: Token = Token(0);
pub const WAKE: Token = Token(1);

/// Why a connect attempt stopped without a socket.
#[derive(Debug)]
pub enum Stop {
    /// Local close / free / shutdown: no error event.
    Abandoned,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

pub struct Established {
    pub sock: Arc<TcpStream>,
    /// The byte stream, positioned at the first frame.
    pub transport: Transport,
    pub subprotocol: String,
    /// permessage-deflate, if the server accepted it.
    pub deflate: Option<crate::protocol::deflate::Agreed>,
}

/// The I/O thread's wait primitive during connect.
pub struct Waiter<'a> {
    /// The socket (for its log lines).
    pub id: u64,
    pub poll: &'a mut Poll,
    pub events: &'a mut Events,
    pub deadline: Instant,
    pub timeout: Duration,
    /// Returns true once the attempt must be abandoned.
    pub abandoned: &'a dyn Fn() -> bool,
}

impl Waiter<'_> {
    fn check(&self, stage: &str) -> Result<(), Stop> {
        if (self.abandoned)() {
            return Err(Stop::Abandoned);
        }
        if Instant::now() >= self.deadline {
            return Err(Stop::Failed(Error::new(
                wsb_result::WSB_ERR_CONNECT,
                format!(
                    "connect timeout during {stage} (after {} ms)",
                    self.timeout.as_millis()
                ),
            )));
        }
        Ok(())
    }

    /// Block until the socket (or the waker) has an event, or the deadline.
    fn wait(&mut self, stage: &str) -> Result<(), Stop> {
        self.wait_until(stage, None)
    }

    /// [`Waiter::wait`], returning at `until` too (if given): an event,
    /// `until`, the deadline (an error) or a local close (an error),
    /// whichever comes first.
    fn wait_until(&mut self, stage: &str, until: Option<Instant>) -> Result<(), Stop> {
        self.check(stage)?;
        let end = until.map_or(self.deadline, |u| u.min(self.deadline));
        let left = end.saturating_duration_since(Instant::now());
        match self.poll.poll(self.events, Some(left)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::new(wsb_result::WSB_ERR_IO, format!("poll failed: {e}")).into())
            }
        }
        self.check(stage)
    }
}

/// Connect to `url`. The bytes read and written are counted in `stats`, and
/// each phase's duration is recorded there as it ends, failed or not (a
/// [`Stats::phase`] guard): DNS (not for an IP literal: nothing is
/// resolved), TCP (with a proxy: the connect to the proxy and its CONNECT
/// exchange), TLS (the client's setup and the handshake), the upgrade (its
/// request and the checks of the server's answer).
pub fn establish(
    url: &WsUrl,
    opts: &Options,
    w: &mut Waiter<'_>,
    stats: &Arc<Stats>,
) -> Result<Established, Stop> {
    // `early`: bytes the proxy sent after its CONNECT reply (normally none).
    let (sock, mut early) = match &opts.proxy {
        None => {
            let addrs = resolve(&url.host, url.ip, url.port, "", w.id, stats)?;
            w.check("DNS lookup")?;
            let _tcp = stats.phase(Phase::Tcp);
            (Arc::new(tcp_connect(&addrs, "", w)?), RxBuf::new())
        }
        Some(proxy) => {
            log!(Info, w.id, "via HTTP proxy {}", proxy.authority());
            let addrs = resolve(&proxy.host, proxy.ip, proxy.port, "proxy ", w.id, stats)?;
            w.check("DNS lookup of the proxy")?;
            let _tcp = stats.phase(Phase::Tcp);
            let sock = tcp_connect(&addrs, "proxy ", w)?;
            let early = proxy_tunnel(&sock, url, proxy, w, stats)?;
            (Arc::new(sock), early)
        }
    };
    let mut transport = if url.tls {
        let _tls = stats.phase(Phase::Tls);
        let config = tls::client_config(opts)?;
        let name = tls::server_name(&url.host, url.ip)?;
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| Error::new(wsb_result::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
        let mut t = Transport::tls(sock.clone(), conn, stats.clone());
        if !early.is_empty() {
            t.supply(&mut early, false);
        }
        tls_handshake(&sock, &mut t, w, stats).map_err(|stop| match stop {
            Stop::Failed(mut e) if e.code == wsb_result::WSB_ERR_TLS && opts.native_roots => {
                if let Some(p) = tls::native_roots_problem() {
                    e.detail = format!("{} (OS certificate store: {p})", e.detail);
                }
                Stop::Failed(e)
            }
            other => other,
        })?;
        log!(Info, w.id, "TLS: {}", t.tls_summary());
        t
    } else {
        let mut t = Transport::plain(sock.clone(), stats.clone());
        if !early.is_empty() {
            t.supply(&mut early, false);
        }
        t
    };
    let upgrade = stats.phase(Phase::Upgrade);
    let request = Request::new(url, opts)?;
    log!(
        Debug,
        w.id,
        "upgrade request: {}",
        crate::log::redact_head(&request.bytes)
    );
    send_request(&mut transport, &request.bytes, w)?;
    let head = read_response_head(&sock, &mut transport, w, stats)?;
    log!(
        Info,
        w.id,
        "upgrade response: {}",
        handshake::status_line(&head)
    );
    let offered = handshake::offered_extensions(opts);
    let accepted = handshake::verify(&head, &request.accept, &opts.subprotocols, &offered)?;
    let deflate = handshake::deflate_agreed(opts, &accepted)?;
    drop(upgrade);
    log!(
        Info,
        w.id,
        "negotiated: subprotocol {}, extensions {}",
        if accepted.subprotocol.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", accepted.subprotocol)
        },
        if accepted.extensions.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", accepted.extensions.join(", "))
        }
    );
    Ok(Established {
        sock,
        transport,
        subprotocol: accepted.subprotocol,
        deflate,
    })
}

const UPGRADE: &str = "WebSocket upgrade";

/// Write the upgrade request (before the outbox is attached, the transport
/// writes straight to the socket, through rustls for TLS).
fn send_request(t: &mut Transport, bytes: &[u8], w: &mut Waiter<'_>) -> Result<(), Stop> {
    let mut out = bytes;
    while !out.is_empty() {
        match t.write(out) {
            Ok(0) => return Err(closed_during_upgrade().into()),
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.wait(UPGRADE)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(upgrade_io_error(e).into()),
        }
    }
    // TLS: the records rustls still holds.
    loop {
        match t.flush() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.wait(UPGRADE)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(upgrade_io_error(e).into()),
        }
    }
}

/// Read the server's response head, whole (up to
/// [`handshake::MAX_RESPONSE_HEAD`], counted over any interim 1xx heads
/// before it, which are skipped). Only the heads' bytes are consumed: what
/// follows stays in the transport for the frame reader.
fn read_response_head(
    sock: &TcpStream,
    t: &mut Transport,
    w: &mut Waiter<'_>,
    stats: &Stats,
) -> Result<Vec<u8>, Stop> {
    let mut head = ResponseHead::new();
    let mut raw = RxBuf::new();
    loop {
        let input = t.input().map_err(upgrade_io_error)?;
        let n = input.len();
        if n > 0 {
            if head.push(input)? {
                // The bytes after the head's end came with this input.
                t.consume(n - head.excess().len());
                if head.interim() > 0 {
                    log!(
                        Debug,
                        w.id,
                        "upgrade: {} interim (1xx) response(s) skipped",
                        head.interim()
                    );
                }
                return Ok(head.head().to_vec());
            }
            t.consume(n);
        }
        if t.pull_more().map_err(upgrade_io_error)? {
            continue;
        }
        if t.at_end() {
            return Err(closed_during_upgrade().into());
        }
        // The transport has nothing left: read the socket, else wait.
        let r = read_raw(sock, &mut raw, stats).map_err(upgrade_io_error)?;
        if r.bytes > 0 || r.eof {
            t.supply(&mut raw, r.eof);
        } else {
            w.wait(UPGRADE)?;
        }
    }
}

fn closed_during_upgrade() -> Error {
    Error::new(
        wsb_result::WSB_ERR_HANDSHAKE,
        "server closed the connection during the WebSocket upgrade",
    )
}

/// An I/O failure during the upgrade: a TLS error is WSB_ERR_TLS; the server
/// dropping the connection (EOF, reset, abort) is a refused upgrade;
/// anything else is WSB_ERR_IO.
fn upgrade_io_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        return tls_error(e);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => closed_during_upgrade(),
        _ => Error::new(wsb_result::WSB_ERR_IO, format!("{UPGRADE}: {e}")),
    }
}
