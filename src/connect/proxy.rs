//! The HTTP proxy's CONNECT tunnel (RFC 9110 §9.3.6): the request, then
//! the proxy's reply head, read without blocking. Every failure here is
//! `WSB_ERR_CONNECT` with a detail that names the proxy.

use std::io::{self, Write};
use std::net::IpAddr;

use mio::net::TcpStream;

use super::handshake;
use super::url::WsUrl;
use super::{Stop, Waiter};
use crate::error::{wsb_result, Error};
use crate::log::log;
use crate::options::Proxy;
use crate::stats::Stats;
use crate::transport::{read_raw, RxBuf};
use crate::wire::Wire;

/// Largest CONNECT reply head accepted from a proxy.
const MAX_PROXY_REPLY: usize = 16 * 1024;

/// Open the tunnel: send `CONNECT host:port` to the proxy on the connected
/// `sock` and read its reply head, without blocking (every wait is the
/// Waiter's, so close/shutdown/the connect timeout interrupt it). Returns any
/// bytes that followed the reply head.
pub(super) fn proxy_tunnel(
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
    let fail = |detail: String| Stop::Failed(Error::new(wsb_result::WSB_ERR_CONNECT, detail));
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
