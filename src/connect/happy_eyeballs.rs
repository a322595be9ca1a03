//! From a host name to a connected TCP socket: the DNS lookup, then Happy
//! Eyeballs (RFC 8305): the addresses of both families interleaved, the
//! next attempt started beside a slow one, the first to connect kept.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{Stop, Waiter, SOCK, WAKE};
use crate::error::{wsb_result, Error};
use crate::log::log;
use crate::stats::{Phase, Stats};
use crate::wire;

/// `what` is "" or "proxy " (for the details). Timed as the DNS phase
/// unless `ip` is given (an IP literal: nothing is resolved).
pub(super) fn resolve(
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
                    wsb_result::WSB_ERR_DNS,
                    format!("failed to resolve {what}{host}: {e}"),
                )
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::new(
            wsb_result::WSB_ERR_DNS,
            format!("no addresses for {what}{host}"),
        )
        .into());
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
        wsb_result::WSB_ERR_CONNECT,
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
pub(super) fn tcp_connect(
    addrs: &[SocketAddr],
    what: &str,
    w: &mut Waiter<'_>,
) -> Result<TcpStream, Stop> {
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
                .unwrap_or_else(|| {
                    Error::new(wsb_result::WSB_ERR_CONNECT, "no address to connect to")
                })
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
