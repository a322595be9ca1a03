//! Opening a connection, on the socket's own I/O thread: resolve, TCP connect
//! (RFC 8305 Happy Eyeballs, bounded by the connect timeout), the HTTP
//! proxy's CONNECT tunnel if one is set, TLS, then the HTTP upgrade (its
//! request and checks are [`crate::handshake`]'s). Every wait goes through
//! the thread's `mio::Poll`, so a local close or `wsb_shutdown` interrupts
//! it at once (except a DNS lookup in progress, which cannot be cancelled).
//! Each failure maps to its own code; every failure of the proxy stage
//! (unreachable, refused CONNECT, bad reply) is `WSB_ERR_CONNECT` with a
//! detail that names the proxy.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::error::{Code, Error};
use crate::handshake::{self, Request, ResponseHead};
use crate::log::log;
use crate::options::{Options, Proxy};
use crate::stats::{Phase, Stats};
use crate::tls;
use crate::transport::{read_raw, RxBuf, Transport};
use crate::url::WsUrl;
use crate::wire::{self, Wire};

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
                Code::WSB_ERR_CONNECT,
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
            Err(e) => return Err(Error::new(Code::WSB_ERR_IO, format!("poll failed: {e}")).into()),
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
            .map_err(|e| Error::new(Code::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
        let mut t = Transport::tls(sock.clone(), conn, stats.clone());
        if !early.is_empty() {
            t.supply(&mut early, false);
        }
        tls_handshake(&sock, &mut t, w, stats).map_err(|stop| match stop {
            Stop::Failed(mut e) if e.code == Code::WSB_ERR_TLS && opts.native_roots => {
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
        Code::WSB_ERR_HANDSHAKE,
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
        _ => Error::new(Code::WSB_ERR_IO, format!("{UPGRADE}: {e}")),
    }
}

/// `what` is "" or "proxy " (for the details). Timed as the DNS phase
/// unless `ip` is given (an IP literal: nothing is resolved).
fn resolve(
    host: &str,
    ip: Option<IpAddr>,
    port: u16,
    what: &str,
    id: u64,
    stats: &Stats,
) -> Result<Vec<SocketAddr>, Stop> {
    if let Some(ip) = ip {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let _dns = stats.phase(Phase::Dns);
    #[cfg(any(test, feature = "testing"))]
    let overridden = crate::testing::resolver_override(host);
    #[cfg(not(any(test, feature = "testing")))]
    let overridden = None;
    let addrs: Vec<SocketAddr> = match overridden {
        Some(addrs) => addrs,
        None => (host, port)
            .to_socket_addrs()
            .map_err(|e| {
                Error::new(
                    Code::WSB_ERR_DNS,
                    format!("failed to resolve {what}{host}: {e}"),
                )
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::new(Code::WSB_ERR_DNS, format!("no addresses for {what}{host}")).into());
    }
    log!(Info, id, "DNS {what}{host}: {}", list(&addrs));
    Ok(addrs)
}

/// `1.2.3.4:80, [::1]:80`.
fn list(addrs: &[SocketAddr]) -> String {
    let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// RFC 8305 §5 "Connection Attempt Delay": how long a connect attempt has
/// the field to itself before the next address is tried beside it.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// RFC 8305 §4: the addresses in the resolver's order within each family,
/// the families alternating, starting with the family of the first address
/// (when one family runs out, the rest of the other follows).
pub fn interleave_families(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other) = (
        addrs.iter().filter(|a| a.is_ipv6() == first.is_ipv6()),
        addrs.iter().filter(|a| a.is_ipv6() != first.is_ipv6()),
    );
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        let a = same.next();
        let b = other.next();
        if a.is_none() && b.is_none() {
            return out;
        }
        out.extend(a.into_iter().chain(b).copied());
    }
}

/// One TCP connect in flight: registered in the Waiter's poll under `token`.
struct Attempt {
    token: Token,
    addr: SocketAddr,
    stream: TcpStream,
}

/// Where a connect attempt stands after an event for it.
enum Progress {
    Pending,
    Connected,
    /// This address failed (refused, unreachable, ...): try the others.
    Failed(Error),
}

/// The token of the attempt at `i` in the connect order: the first one has
/// `SOCK` (so with one address nothing is re-registered), the others the
/// tokens after `WAKE`.
fn attempt_token(i: usize) -> Token {
    if i == 0 {
        SOCK
    } else {
        Token(WAKE.0 + i)
    }
}

fn connect_error(what: &str, addr: SocketAddr, e: io::Error) -> Error {
    Error::new(
        Code::WSB_ERR_CONNECT,
        format!("connect to {what}{addr}: {e}"),
    )
}

/// Happy Eyeballs (RFC 8305): the addresses in `interleave_families` order;
/// the next one is started when every attempt in flight has failed, or once
/// the latest has been pending for `CONNECTION_ATTEMPT_DELAY`, the earlier
/// ones staying in flight. The first to connect is returned, registered
/// under `SOCK` for READABLE | WRITABLE; the others are deregistered and
/// closed. The Waiter's deadline bounds it all and a local close/shutdown
/// interrupts it, as every wait of the connect. When every address failed,
/// the error is the last failure (`connect to ADDR: ...`).
fn tcp_connect(addrs: &[SocketAddr], what: &str, w: &mut Waiter<'_>) -> Result<TcpStream, Stop> {
    let mut inflight = Vec::new();
    let won = race(addrs, what, w, &mut inflight);
    for mut lost in inflight {
        let _ = w.poll.registry().deregister(&mut lost.stream);
    }
    let Attempt {
        token,
        addr,
        mut stream,
    } = won?;
    let fail = |e| Stop::Failed(connect_error(what, addr, e));
    if token != SOCK {
        w.poll
            .registry()
            .reregister(&mut stream, SOCK, Interest::READABLE | Interest::WRITABLE)
            .map_err(fail)?;
    }
    stream.set_nodelay(true).map_err(fail)?;
    Ok(stream)
}

/// The attempts of `tcp_connect` until one connects (returned, no longer in
/// `inflight`); those still in flight are left in `inflight`.
fn race(
    addrs: &[SocketAddr],
    what: &str,
    w: &mut Waiter<'_>,
    inflight: &mut Vec<Attempt>,
) -> Result<Attempt, Stop> {
    let stage = if what.is_empty() {
        "TCP connect"
    } else {
        "TCP connect to the proxy"
    };
    let order = interleave_families(addrs);
    let mut next = 0;
    // When the next address is started even if attempts are still pending.
    let mut next_start = Instant::now();
    let mut last: Option<Error> = None;
    loop {
        while next < order.len() && (inflight.is_empty() || Instant::now() >= next_start) {
            let (token, addr) = (attempt_token(next), order[next]);
            next += 1;
            log!(Debug, w.id, "TCP connect to {what}{addr}");
            match start_attempt(addr, token, what, w) {
                Ok(stream) => {
                    inflight.push(Attempt {
                        token,
                        addr,
                        stream,
                    });
                    next_start = Instant::now() + CONNECTION_ATTEMPT_DELAY;
                }
                Err(e) => {
                    log!(Info, w.id, "{}", e.detail);
                    last = Some(e);
                }
            }
        }
        if inflight.is_empty() {
            return Err(last
                .unwrap_or_else(|| Error::new(Code::WSB_ERR_CONNECT, "no address to connect to"))
                .into());
        }
        let until = (next < order.len()).then_some(next_start);
        w.wait_until(stage, until)?;
        let mut i = 0;
        while i < inflight.len() {
            let token = inflight[i].token;
            if !w.events.iter().any(|e| e.token() == token) {
                i += 1;
                continue;
            }
            match progress(&inflight[i], what) {
                Progress::Pending => i += 1,
                Progress::Connected => {
                    log!(Info, w.id, "TCP connected to {what}{}", inflight[i].addr);
                    return Ok(inflight.swap_remove(i));
                }
                Progress::Failed(e) => {
                    log!(Info, w.id, "{}", e.detail);
                    let mut failed = inflight.swap_remove(i);
                    let _ = w.poll.registry().deregister(&mut failed.stream);
                    last = Some(e);
                    // A failure hands over to the next address at once.
                    next_start = Instant::now();
                }
            }
        }
    }
}

/// A non-blocking connect to `addr`, registered under `token`.
fn start_attempt(
    addr: SocketAddr,
    token: Token,
    what: &str,
    w: &mut Waiter<'_>,
) -> Result<TcpStream, Error> {
    let mut stream = TcpStream::connect(addr).map_err(|e| connect_error(what, addr, e))?;
    wire::guard(&stream).map_err(|e| connect_error(what, addr, e))?;
    w.poll
        .registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| connect_error(what, addr, e))?;
    Ok(stream)
}

/// After an event for `a`: connected, failed, or still pending (spurious).
fn progress(a: &Attempt, what: &str) -> Progress {
    match a.stream.take_error() {
        Ok(Some(e)) | Err(e) => return Progress::Failed(connect_error(what, a.addr, e)),
        Ok(None) => {}
    }
    match a.stream.peer_addr() {
        Ok(_) => Progress::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Progress::Pending,
        Err(e) => Progress::Failed(connect_error(what, a.addr, e)),
    }
}

/// Largest CONNECT reply head accepted from a proxy.
const MAX_PROXY_REPLY: usize = 16 * 1024;

/// Open the tunnel: send `CONNECT host:port` to the proxy on the connected
/// `sock` and read its reply head, without blocking (every wait is the
/// Waiter's, so close/shutdown/the connect timeout interrupt it). Returns any
/// bytes that followed the reply head.
fn proxy_tunnel(
    sock: &TcpStream,
    url: &WsUrl,
    proxy: &Proxy,
    w: &mut Waiter<'_>,
    stats: &Stats,
) -> Result<RxBuf, Stop> {
    const STAGE: &str = "proxy CONNECT";
    let target = match url.ip {
        Some(IpAddr::V6(_)) => format!("[{}]:{}", url.host, url.port),
        _ => format!("{}:{}", url.host, url.port),
    };
    let at = proxy.authority();
    let fail = |detail: String| Stop::Failed(Error::new(Code::WSB_ERR_CONNECT, detail));
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    log!(
        Info,
        w.id,
        "proxy {at}: CONNECT {target}{}",
        if proxy.authorization.is_some() {
            " (with credentials, not shown)"
        } else {
            ""
        }
    );
    let mut out = request.as_bytes();
    while !out.is_empty() {
        match Wire(sock).write(out) {
            Ok(0) => return Err(fail(format!("proxy {at} closed the connection"))),
            Ok(n) => {
                stats.wire_out(n);
                out = &out[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.wait(STAGE)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(format!("sending CONNECT to proxy {at}: {e}"))),
        }
    }
    // A reply that is not HTTP's is named by what it sent: its first line
    // (printable, truncated), as soon as that line is in, or at its end.
    let malformed = |got: &[u8]| {
        fail(format!(
            "proxy {at} sent a malformed reply to CONNECT: {:?}",
            handshake::status_line(got)
        ))
    };
    let mut buf = RxBuf::new();
    let end = loop {
        let got = buf.filled();
        if let Some(nl) = got.iter().position(|&b| b == b'\n') {
            if proxy_status(&got[..nl]).is_none() {
                return Err(malformed(got));
            }
        }
        if let Some(i) = got.windows(4).position(|x| x == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_PROXY_REPLY {
            return Err(fail(format!(
                "proxy {at} sent a reply to CONNECT longer than {MAX_PROXY_REPLY} bytes"
            )));
        }
        let r = read_raw(sock, &mut buf, stats)
            .map_err(|e| fail(format!("reading the CONNECT reply of proxy {at}: {e}")))?;
        if r.bytes > 0 {
            continue;
        }
        if r.eof && !buf.is_empty() {
            // It ended before its blank line.
            return Err(malformed(buf.filled()));
        }
        if r.eof {
            return Err(fail(format!(
                "proxy {at} closed the connection without answering CONNECT to {target}"
            )));
        }
        w.wait(STAGE)?;
    };
    let got = buf.filled();
    let Some((code, reason)) = proxy_status(&got[..end]) else {
        return Err(malformed(got));
    };
    let status = format!(
        "HTTP {code}{}{reason}",
        if reason.is_empty() { "" } else { " " }
    );
    log!(Info, w.id, "proxy {at}: {status}");
    match code {
        200..=299 => Ok(buf.split_off_front(end)),
        407 if proxy.authorization.is_none() => Err(fail(format!(
            "proxy {at} requires authentication ({status}): put user:password in the proxy URL"
        ))),
        407 => Err(fail(format!(
            "proxy {at} rejected the credentials ({status})"
        ))),
        _ => Err(fail(format!(
            "proxy {at} refused CONNECT to {target}: {status}"
        ))),
    }
}

/// The status code and reason (printable, short) of a proxy's reply, from
/// its first line (`HTTP/1.x NNN reason`); `None` if it is not one.
fn proxy_status(reply: &[u8]) -> Option<(u16, String)> {
    let line = reply.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
    let mut parts = line.splitn(3, ' ');
    let (version, status, reason) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("").trim(),
    );
    let code = status.parse::<u16>().ok().filter(|c| {
        version.starts_with("HTTP/1.") && status.len() == 3 && (100..600).contains(c)
    })?;
    let reason = reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(60)
        .collect();
    Some((code, reason))
}

fn tls_handshake(
    sock: &TcpStream,
    t: &mut Transport,
    w: &mut Waiter<'_>,
    stats: &Stats,
) -> Result<(), Stop> {
    let mut buf = RxBuf::new();
    loop {
        match t.drive_tls_handshake() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(tls_error(e).into()),
        }
        loop {
            let r = read_raw(sock, &mut buf, stats).map_err(tls_error)?;
            if r.bytes > 0 || r.eof {
                t.supply(&mut buf, r.eof);
                break;
            }
            w.wait("TLS handshake")?;
        }
    }
}

fn tls_error(e: io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Error::new(Code::WSB_ERR_TLS, inner.to_string());
    }
    Error::new(Code::WSB_ERR_TLS, format!("TLS handshake: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_first_address() {
        let order = |v: &[&str]| -> Vec<String> {
            let addrs: Vec<SocketAddr> = v.iter().map(|s| a(s)).collect();
            interleave_families(&addrs)
                .iter()
                .map(|x| x.to_string())
                .collect()
        };
        assert!(order(&[]).is_empty());
        assert_eq!(order(&["127.0.0.1:1"]), ["127.0.0.1:1"]);
        // IPv6 first: v6, v4, v6, v4, then the rest of the longer family.
        assert_eq!(
            order(&["[::1]:1", "[::2]:2", "[::3]:3", "10.0.0.1:4", "10.0.0.2:5"]),
            ["[::1]:1", "10.0.0.1:4", "[::2]:2", "10.0.0.2:5", "[::3]:3"]
        );
        // IPv4 first, the families mixed: each family keeps its own order.
        assert_eq!(
            order(&[
                "10.0.0.1:1",
                "10.0.0.2:2",
                "[::1]:3",
                "10.0.0.3:4",
                "[::2]:5",
                "[::3]:6"
            ]),
            [
                "10.0.0.1:1",
                "[::1]:3",
                "10.0.0.2:2",
                "[::2]:5",
                "10.0.0.3:4",
                "[::3]:6"
            ]
        );
        assert_eq!(
            order(&["10.0.0.1:1", "[::1]:2", "[::2]:3", "[::3]:4"]),
            ["10.0.0.1:1", "[::1]:2", "[::2]:3", "[::3]:4"]
        );
        // One family only: unchanged.
        assert_eq!(
            order(&["10.0.0.3:1", "10.0.0.1:1", "10.0.0.2:1"]),
            ["10.0.0.3:1", "10.0.0.1:1", "10.0.0.2:1"]
        );
        assert_eq!(order(&["[::2]:1", "[::1]:1"]), ["[::2]:1", "[::1]:1"]);
    }

    #[test]
    fn attempts_have_distinct_tokens_and_the_first_is_sock() {
        assert_eq!(attempt_token(0), SOCK);
        let tokens: Vec<Token> = (0..64).map(attempt_token).collect();
        for (i, t) in tokens.iter().enumerate() {
            assert_ne!(*t, WAKE);
            assert!(!tokens[..i].contains(t));
        }
    }
}
