//! Opening a connection, on the socket's own I/O thread: resolve, TCP connect
//! (each address, non-blocking, bounded by the connect timeout), TLS, then the
//! HTTP upgrade. Every wait goes through the thread's `mio::Poll`, so a local
//! close or `wsb_shutdown` interrupts it at once (except a DNS lookup in
//! progress, which cannot be cancelled). Each failure maps to its own code.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use crate::error::{Code, Error};
use crate::options::Options;
use crate::tls;
use crate::transport::{read_raw, Transport};
use crate::url::WsUrl;

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
    pub ws: WebSocket<Transport>,
    pub subprotocol: String,
}

/// The I/O thread's wait primitive during connect.
pub struct Waiter<'a> {
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
        self.check(stage)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.poll.poll(self.events, Some(left)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::new(Code::WSB_ERR_IO, format!("poll failed: {e}")).into()),
        }
        self.check(stage)
    }
}

pub fn ws_config(opts: &Options) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(opts.max_message_size))
        .max_frame_size(Some(opts.max_message_size))
}

pub fn establish(url: &WsUrl, opts: &Options, w: &mut Waiter<'_>) -> Result<Established, Stop> {
    let addrs = resolve(url)?;
    w.check("DNS lookup")?;
    let sock = Arc::new(tcp_connect(&addrs, w)?);
    let mut transport = if url.tls {
        let config = tls::client_config(opts)?;
        let name = tls::server_name(&url.host, url.ip)?;
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| Error::new(Code::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
        let mut t = Transport::tls(sock.clone(), conn, opts.max_message_size);
        tls_handshake(&sock, &mut t, w)?;
        t
    } else {
        Transport::plain(sock.clone(), opts.max_message_size)
    };
    let request = build_request(url, opts)?;
    let mut buf = Vec::new();
    transport.reclaim(&mut buf);
    let mut mid = match ClientHandshake::start(transport, request, Some(ws_config(opts))) {
        Ok(m) => m,
        Err(e) => return Err(handshake_error(e).into()),
    };
    loop {
        match mid.handshake() {
            Ok((ws, response)) => {
                let subprotocol = response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                return Ok(Established {
                    sock,
                    ws,
                    subprotocol,
                });
            }
            Err(HandshakeError::Failure(e)) => return Err(handshake_error(e).into()),
            Err(HandshakeError::Interrupted(m)) => mid = m,
        }
        // Need more input: read what is there, else wait for it.
        loop {
            let r =
                read_raw(&sock, &mut buf).map_err(|e| io_stage_error("WebSocket upgrade", e))?;
            if r.bytes > 0 || r.eof {
                mid.get_mut().get_mut().supply(&mut buf, r.eof);
                break;
            }
            w.wait("WebSocket upgrade")?;
        }
    }
}

fn resolve(url: &WsUrl) -> Result<Vec<SocketAddr>, Stop> {
    if let Some(ip) = url.ip {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                Code::WSB_ERR_DNS,
                format!("failed to resolve {}: {e}", url.host),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::new(Code::WSB_ERR_DNS, format!("no addresses for {}", url.host)).into());
    }
    Ok(addrs)
}

fn tcp_connect(addrs: &[SocketAddr], w: &mut Waiter<'_>) -> Result<TcpStream, Stop> {
    let mut last = None;
    for addr in addrs {
        match try_connect(*addr, w) {
            Ok(s) => return Ok(s),
            Err(Stop::Failed(e))
                if e.code == Code::WSB_ERR_CONNECT && !e.detail.contains("timeout") =>
            {
                last = Some(e)
            }
            Err(other) => return Err(other),
        }
    }
    Err(last
        .unwrap_or_else(|| Error::new(Code::WSB_ERR_CONNECT, "no address to connect to"))
        .into())
}

fn try_connect(addr: SocketAddr, w: &mut Waiter<'_>) -> Result<TcpStream, Stop> {
    let fail = |e: io::Error| {
        Stop::Failed(Error::new(
            Code::WSB_ERR_CONNECT,
            format!("connect to {addr}: {e}"),
        ))
    };
    let mut stream = TcpStream::connect(addr).map_err(fail)?;
    w.poll
        .registry()
        .register(&mut stream, SOCK, Interest::READABLE | Interest::WRITABLE)
        .map_err(fail)?;
    loop {
        w.wait("TCP connect")?;
        let ours = w.events.iter().any(|e| e.token() == SOCK);
        if !ours {
            continue;
        }
        if let Some(e) = stream.take_error().map_err(fail)? {
            let _ = w.poll.registry().deregister(&mut stream);
            return Err(fail(e));
        }
        match stream.peer_addr() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
            Err(e) => {
                let _ = w.poll.registry().deregister(&mut stream);
                return Err(fail(e));
            }
        }
    }
    stream.set_nodelay(true).map_err(fail)?;
    Ok(stream)
}

fn tls_handshake(sock: &TcpStream, t: &mut Transport, w: &mut Waiter<'_>) -> Result<(), Stop> {
    let mut buf = Vec::new();
    loop {
        match t.drive_tls_handshake() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(tls_error(e).into()),
        }
        loop {
            let r = read_raw(sock, &mut buf).map_err(tls_error)?;
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

fn io_stage_error(stage: &str, e: io::Error) -> Error {
    Error::new(Code::WSB_ERR_IO, format!("{stage}: {e}"))
}

fn build_request(
    url: &WsUrl,
    opts: &Options,
) -> Result<tungstenite::handshake::client::Request, Error> {
    let mut req = url
        .request_uri()
        .as_str()
        .into_client_request()
        .map_err(|e| Error::new(Code::WSB_ERR_INVALID_URL, format!("invalid URL: {e}")))?;
    let headers = req.headers_mut();
    for (name, value) in &opts.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::invalid_argument(format!("header {name:?}: {e}")))?;
        let v = HeaderValue::from_str(value)
            .map_err(|e| Error::invalid_argument(format!("header {name:?}: {e}")))?;
        if n == tungstenite::http::header::HOST {
            headers.insert(n, v);
        } else {
            headers.append(n, v);
        }
    }
    if !opts.subprotocols.is_empty() {
        let v = HeaderValue::from_str(&opts.subprotocols.join(", "))
            .map_err(|e| Error::invalid_argument(format!("subprotocols: {e}")))?;
        headers.insert("Sec-WebSocket-Protocol", v);
    }
    Ok(req)
}

fn handshake_error(e: tungstenite::Error) -> Error {
    use tungstenite::error::{ProtocolError, SubProtocolError};
    use tungstenite::Error as E;
    match e {
        E::Http(resp) => {
            let status = resp.status();
            Error::new(
                Code::WSB_ERR_HANDSHAKE,
                format!("HTTP {} from server", status.as_u16()),
            )
        }
        E::Io(io) => {
            if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                return tls_error(io);
            }
            match io.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => Error::new(
                    Code::WSB_ERR_HANDSHAKE,
                    "server closed the connection during the WebSocket upgrade",
                ),
                _ => Error::new(Code::WSB_ERR_IO, format!("WebSocket upgrade: {io}")),
            }
        }
        E::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        )) => Error::new(
            Code::WSB_ERR_HANDSHAKE,
            "server selected none of the requested subprotocols",
        ),
        E::Protocol(ProtocolError::HandshakeIncomplete) => Error::new(
            Code::WSB_ERR_HANDSHAKE,
            "server closed the connection during the WebSocket upgrade",
        ),
        E::Url(u) => Error::new(Code::WSB_ERR_INVALID_URL, format!("invalid URL: {u}")),
        other => Error::new(
            Code::WSB_ERR_HANDSHAKE,
            format!("WebSocket upgrade failed: {other}"),
        ),
    }
}
