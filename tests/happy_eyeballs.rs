//! Happy Eyeballs (RFC 8305) in the TCP connect: a host name whose first
//! address drops SYNs still opens through its next address, long before the
//! connect timeout; refused addresses hand over at once; black holes only
//! end in the connect timeout; a local close interrupts the race.
//!
//! Names resolve through the crate's test-only resolver hook
//! (`wsbridge::testing`), to loopback addresses only. A black-holed address
//! is a loopback listener with an accept queue of one, filled by a
//! connection that is never accepted: Linux then drops further SYNs
//! (`net.ipv4.tcp_abort_on_overflow` = 0, the default), so a connect to it
//! hangs. The live server is the in-process TestServer on 127.0.0.1; the
//! black holes are on [::1] (another family, as in the issue: a name
//! resolving to `[::1, 127.0.0.1]` whose `::1` drops SYNs) and on 127.0.0.2.
//!
//! No timing assertion: the connect timeout is set to 60 s, far beyond the
//! tests' bounded waits (WAIT_MS = 20 s), so reaching OPEN within such a wait
//! proves that the next address was tried while the black hole was pending.

#![cfg(target_os = "linux")]

mod capi;
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use capi::*;
use socket2::{Domain, Socket, Type};
use support::TestServer;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::testing::{clear_resolver_override, set_resolver_override};
use wsbridge::wsb_result::*;

/// Far beyond every bounded wait of these tests.
const LONG_CONNECT_TIMEOUT_MS: u32 = 60_000;

/// A loopback address where a TCP connect hangs (see the file's doc).
struct BlackHole {
    addr: SocketAddr,
    _listener: Socket,
    _filler: TcpStream,
}

impl BlackHole {
    fn on(ip: IpAddr) -> BlackHole {
        let any = SocketAddr::new(ip, 0);
        let listener = Socket::new(Domain::for_address(any), Type::STREAM, None).unwrap();
        listener
            .bind(&any.into())
            .unwrap_or_else(|e| panic!("bind {any}: {e}"));
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // The kernel completes this handshake and queues the connection,
        // which nobody accepts: the queue is full from now on.
        let filler = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("filling the accept queue of {addr}: {e}"));
        // The premise of these tests: a further connect neither completes
        // nor is refused (a loopback connect that can complete does so at once).
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            other => panic!("{addr} is not black-holed: a connect to it gave {other:?}"),
        }
        BlackHole {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }

    fn v6() -> BlackHole {
        BlackHole::on(IpAddr::V6(Ipv6Addr::LOCALHOST))
    }

    /// On 127.0.0.2: the same family as the live server, another address.
    fn v4() -> BlackHole {
        BlackHole::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
    }

    /// Sockets of this process (or any) still trying to connect to it:
    /// `SYN_SENT` entries of /proc/net/tcp{,6} whose remote end is `addr`.
    fn pending_connects(&self) -> usize {
        let (file, ip_hex) = match self.addr.ip() {
            IpAddr::V4(ip) => ("/proc/net/tcp", proc_hex(&ip.octets())),
            IpAddr::V6(ip) => ("/proc/net/tcp6", proc_hex(&ip.octets())),
        };
        let remote = format!("{ip_hex}:{:04X}", self.addr.port());
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .skip(1)
            .filter(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st ...; st 02 = SYN_SENT
                f.len() > 3 && f[2] == remote && f[3] == "02"
            })
            .count()
    }
}

/// An address as /proc/net/tcp prints it: each 32-bit word in host order.
fn proc_hex(octets: &[u8]) -> String {
    octets
        .chunks(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

/// A loopback port on `ip` nobody listens on (bound, then released).
fn refused(ip: IpAddr) -> SocketAddr {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

fn live(srv: &TestServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], srv.port))
}

/// A host name resolving to `addrs` (through the test-only hook) while alive.
struct Name(&'static str);

impl Name {
    fn resolving_to(name: &'static str, addrs: Vec<SocketAddr>) -> Name {
        set_resolver_override(name, addrs);
        Name(name)
    }

    /// `ws://name:1/echo`: the port is the resolved addresses' (the URL's
    /// is not used under the hook).
    fn url(&self) -> String {
        format!("ws://{}:1/echo", self.0)
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        clear_resolver_override(self.0);
    }
}

fn long_timeout() -> Opts {
    Opts::new().connect_timeout(LONG_CONNECT_TIMEOUT_MS)
}

/// Opens `name` (within WAIT_MS, far below the connect timeout) and echoes.
fn open_and_echo(srv: &TestServer, name: &Name) -> Ws {
    let ws = Ws::open(&name.url(), Some(&long_timeout()));
    assert_eq!(ws.send_text("through the live address"), WSB_OK);
    assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "through the live address");
    assert_eq!(srv.requests(), ["/echo"]);
    ws
}

#[test]
fn a_black_holed_first_address_falls_back_to_the_other_family() {
    let srv = TestServer::start();
    let hole = BlackHole::v6();
    let name = Name::resolving_to("hole6-then-live.test", vec![hole.addr, live(&srv)]);
    let _ws = open_and_echo(&srv, &name);
    // The losing attempt was closed once the live address won.
    assert_eq!(hole.pending_connects(), 0);
}

#[test]
fn a_live_first_address_wins_over_a_black_hole_after_it() {
    let srv = TestServer::start();
    let hole = BlackHole::v6();
    let name = Name::resolving_to("live-then-hole6.test", vec![live(&srv), hole.addr]);
    let _ws = open_and_echo(&srv, &name);
    assert_eq!(hole.pending_connects(), 0);
}

#[test]
fn several_black_holes_stay_in_flight_until_the_live_address_wins() {
    // Order [::1 hole, 127.0.0.2 hole, 127.0.0.1 live]: three attempts, the
    // first two never answer; the third, started while they are pending,
    // wins, and both holes are closed.
    let srv = TestServer::start();
    let (hole6, hole4) = (BlackHole::v6(), BlackHole::v4());
    let name = Name::resolving_to(
        "two-holes-then-live.test",
        vec![hole6.addr, hole4.addr, live(&srv)],
    );
    let _ws = open_and_echo(&srv, &name);
    assert_eq!(hole6.pending_connects(), 0);
    assert_eq!(hole4.pending_connects(), 0);
}

#[test]
fn a_black_hole_in_the_same_family_falls_back_too() {
    let srv = TestServer::start();
    let hole = BlackHole::v4();
    let name = Name::resolving_to("hole4-then-live.test", vec![hole.addr, live(&srv)]);
    let _ws = open_and_echo(&srv, &name);
    assert_eq!(hole.pending_connects(), 0);
}

#[test]
fn a_refused_first_address_falls_back() {
    let srv = TestServer::start();
    for (n, first) in [
        (
            "refused6-then-live.test",
            refused(Ipv6Addr::LOCALHOST.into()),
        ),
        (
            "refused4-then-live.test",
            refused(Ipv4Addr::LOCALHOST.into()),
        ),
    ] {
        let name = Name::resolving_to(n, vec![first, live(&srv)]);
        let ws = Ws::open(&name.url(), Some(&long_timeout()));
        assert_eq!(ws.send_text("x"), WSB_OK);
        assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), "x");
    }
    assert_eq!(srv.connections(), 2);
}

#[test]
fn every_address_refused_names_the_last_failure() {
    let (a6, a4) = (
        refused(Ipv6Addr::LOCALHOST.into()),
        refused(Ipv4Addr::LOCALHOST.into()),
    );
    let name = Name::resolving_to("all-refused.test", vec![a6, a4]);
    let ws = Ws::connect(&name.url(), Some(&long_timeout())).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    let detail = last_error();
    assert!(
        detail.starts_with(&format!("connect to {a4}: ")),
        "{detail}"
    );
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(evs[0].text(), detail);
}

#[test]
fn only_black_holes_end_in_the_connect_timeout() {
    let (hole6, hole4) = (BlackHole::v6(), BlackHole::v4());
    let name = Name::resolving_to("only-holes.test", vec![hole6.addr, hole4.addr]);
    let ws = Ws::connect(&name.url(), Some(&Opts::new().connect_timeout(600))).unwrap();
    assert_eq!(ws.wait_open(), WSB_ERR_CONNECT);
    assert_eq!(
        last_error(),
        "connect timeout during TCP connect (after 600 ms)"
    );
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_ERROR, WSB_EVENT_CLOSE]);
    assert_eq!(hole6.pending_connects(), 0);
    assert_eq!(hole4.pending_connects(), 0);
}

/// Spins (yielding) until `pred` holds; panics after WAIT_MS.
fn spin_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS.into());
    while !pred() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT_MS} ms");
        std::thread::yield_now();
    }
}

#[test]
fn a_local_close_interrupts_the_race() {
    let (hole6, hole4) = (BlackHole::v6(), BlackHole::v4());
    let name = Name::resolving_to("holes-then-close.test", vec![hole6.addr, hole4.addr]);
    let ws = Ws::connect(&name.url(), Some(&long_timeout())).unwrap();
    // Both attempts end up in flight together (the second starts while the
    // first is still pending), long before the 60 s connect timeout.
    spin_until("both black holes being connected to", || {
        hole6.pending_connects() == 1 && hole4.pending_connects() == 1
    });
    assert_eq!(ws.close(1000, None), WSB_OK);
    let evs = ws.until_close();
    assert_eq!(kinds(&evs), [WSB_EVENT_CLOSE]);
    assert_eq!((evs[0].close_code, evs[0].clean), (1006, false));
    // wsb_close queued CLOSE itself; the I/O thread, woken, drops both
    // attempts at once rather than at the connect timeout.
    spin_until("both attempts closed after wsb_close", || {
        hole6.pending_connects() == 0 && hole4.pending_connects() == 0
    });
}
