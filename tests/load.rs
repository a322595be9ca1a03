//! Load: 1 000 sockets open at once, 100 messages each echoed in order with
//! no loss, then all freed and every I/O thread gone. Its own test binary,
//! since it counts the process's threads.

mod capi;
mod support;

use std::time::Duration;

use capi::*;
use support::TestServer;
use wsbridge::ffi::library::wsb_shutdown;
use wsbridge::ffi::types::wsb_event_kind::*;
use wsbridge::wsb_result::*;

#[test]
fn thousand_sockets_hundred_messages_each() {
    const SOCKETS: usize = 1000;
    const MESSAGES: usize = 100;
    let srv = TestServer::start();
    let socks: Vec<Ws> = (0..SOCKETS)
        .map(|_| Ws::connect(&srv.url("/echo"), None).expect("connect"))
        .collect();
    for ws in &socks {
        assert_eq!(ws.wait_open(), WSB_OK, "{}", last_error());
        assert_eq!(ws.expect(WSB_EVENT_OPEN).kind, WSB_EVENT_OPEN);
    }
    assert_eq!(io_threads(), SOCKETS, "one I/O thread per socket");
    for i in 0..MESSAGES {
        for (s, ws) in socks.iter().enumerate() {
            assert_eq!(ws.send_text(&format!("{s}/{i}")), WSB_OK);
        }
    }
    for (s, ws) in socks.iter().enumerate() {
        for i in 0..MESSAGES {
            assert_eq!(ws.expect(WSB_EVENT_TEXT).text(), format!("{s}/{i}"));
        }
        assert!(ws.poll().is_none(), "nothing extra");
    }
    drop(socks); // wsb_free on each: closed with 1001 in the background
    let closes = srv.wait_client_closes(SOCKETS, Duration::from_secs(60));
    assert_eq!(
        closes.iter().filter(|c| c.code == Some(1001)).count(),
        SOCKETS
    );
    wsb_shutdown(5000);
    assert_eq!(io_threads(), 0);
}
