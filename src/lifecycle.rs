//! The lifecycle of an open connection (RFC 6455 §7) as one state machine:
//! the states ([`Lifecycle`]) and one pure function, [`transition`], from a
//! state and what happened ([`Input`]) to the next state and what to do
//! ([`Action`]). The I/O loop ([`crate::conn`]) feeds it and carries the
//! actions out; nothing here touches a socket, a lock or the clock.
//!
//! ```text
//!         we close, the peer closes, its close is invalid
//!   Open ──────────────────────────────────────────────► Closing
//!    │ fault                                              ▲     │ both closes out and in:
//!    ▼                                                    │     ▼ CLOSE (clean)
//!   Failing ── the host took its events, or FAIL_GRACE ───┘   Lingering ── TCP closed, LINGER ──► Done
//!
//!   Open, Failing, Closing ── EOF without the peer's close, a stream or
//!   write error, keepalive timeout, close timeout, abort ──► Done: CLOSE 1006
//! ```
//!
//! Messages are not inputs: whether they are delivered, and whether pings
//! are answered, is a question to the state ([`Lifecycle::delivers`],
//! [`Lifecycle::sends_pings`]), asked once per read.

use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

use crate::error::{closed_without_handshake, wsb_result, Error};
use crate::protocol::Fault;

/// How long a protocol failure waits for the host to take the messages
/// that arrived before it (see [`Lifecycle::Failing`]).
pub(crate) const FAIL_GRACE: Duration = Duration::from_millis(500);

/// How long the I/O thread waits for the server to close TCP after a
/// completed closing handshake (RFC 6455 §7.1.1: the server closes first).
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// Where an open connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Messages flow both ways.
    Open,
    /// The peer broke the protocol while messages that arrived before the
    /// fault still wait for the host. Nothing more is read (sending goes
    /// on) until the host has taken them and asks again ([`Input::HostIdle`])
    /// or `until` passes; then the connection fails (ERROR, our close). So a
    /// host can still answer the last good message, as it could had the
    /// fault arrived a moment later.
    Failing {
        fault: Fault,
        until: Instant,
        /// The host asked to close meanwhile: our close is out, and this is
        /// its close timeout.
        close_deadline: Option<Instant>,
    },
    /// Our close frame is in the outbox (we closed, we answered the peer's
    /// close, or we failed the connection): waiting for the peer's close
    /// and for ours to be written, until `deadline`.
    Closing {
        deadline: Instant,
        /// The peer's close: its code (1005 when it had none) and reason.
        peer: Option<(u16, String)>,
        /// We failed the connection (ERROR was reported): no data events.
        failed: bool,
    },
    /// CLOSE was reported; waiting for the server to close TCP, until `until`.
    Lingering { until: Instant },
    /// Finished: the I/O thread lets the connection go.
    Done,
}

/// What happened, as the I/O loop tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// wsb_close or wsb_free: the host's close frame.
    CloseRequested(CloseFrame),
    /// The peer's close frame (code 1005 when it had none, and reason), or
    /// the fault that makes it invalid.
    PeerClose(Result<(u16, String), Fault>),
    /// The peer broke the protocol (or a message could not be stored).
    Fault(Fault),
    /// The host has taken every event (the answer to [`Action::WatchHost`]).
    HostIdle,
    /// The outbox has been written out entirely.
    Flushed,
    /// The stream ended: all of it was parsed (or, once CLOSE was reported,
    /// discarded) and the peer closed TCP.
    Eof,
    /// The stream failed: reading, decrypting, or waiting for readiness.
    Broken(Error),
    /// A write failed (from a host thread or the I/O thread).
    WriteFailed(Error),
    /// Nothing arrived within the pong timeout after our keepalive ping.
    KeepaliveTimeout,
    /// Time passed: deadlines are checked against `now`.
    Tick,
    /// wsb_shutdown: let the connection go now.
    Abort,
}

/// What the I/O loop must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Queue an ERROR event.
    ReportError(Error),
    /// Frame our close (`None`: an empty one) into the outbox, behind the
    /// data already there; nothing may follow it. The socket is Closing.
    SendClose(Option<CloseFrame>),
    /// Write the outbox now; [`Input::Flushed`] if all of it went out.
    Flush,
    /// Queue the CLOSE event. The socket is Closed.
    ReportClose {
        code: u16,
        clean: bool,
        reason: String,
    },
    /// Shut the TCP connection down.
    Disconnect,
    /// Publish the events so far and watch for the host taking them all;
    /// [`Input::HostIdle`] at once if it already has.
    WatchHost,
    /// Stop watching the host, and read again: input was left unread.
    Resume,
}

impl Lifecycle {
    /// The socket is read and its frames parsed.
    pub(crate) fn reads(&self) -> bool {
        matches!(self, Lifecycle::Open | Lifecycle::Closing { .. })
    }

    /// Data messages become events (not once the connection failed).
    pub(crate) fn delivers(&self) -> bool {
        matches!(
            self,
            Lifecycle::Open | Lifecycle::Closing { failed: false, .. }
        )
    }

    /// Pongs and keepalive pings may be sent: our close is not out (nothing
    /// may follow it).
    pub(crate) fn sends_pings(&self) -> bool {
        matches!(
            self,
            Lifecycle::Open
                | Lifecycle::Failing {
                    close_deadline: None,
                    ..
                }
        )
    }

    /// CLOSE has been reported: anything still arriving is discarded.
    pub(crate) fn close_reported(&self) -> bool {
        matches!(self, Lifecycle::Lingering { .. } | Lifecycle::Done)
    }

    /// A completed closing handshake waits for our close to be written:
    /// [`Input::Flushed`] matters.
    pub(crate) fn waits_for_flush(&self) -> bool {
        matches!(self, Lifecycle::Closing { peer: Some(_), .. })
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Lifecycle::Done)
    }

    pub(crate) fn is_failing(&self) -> bool {
        matches!(self, Lifecycle::Failing { .. })
    }

    /// The next time [`Input::Tick`] can change the state.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Lifecycle::Failing {
                until,
                close_deadline,
                ..
            } => Some(close_deadline.map_or(*until, |d| d.min(*until))),
            Lifecycle::Closing { deadline, .. } => Some(*deadline),
            Lifecycle::Lingering { until } => Some(*until),
            Lifecycle::Open | Lifecycle::Done => None,
        }
    }
}

/// The one transition function: `state` meets `input` at `now`; our close
/// frame, once out, waits `close_timeout` for the peer's.
pub(crate) fn transition(
    state: Lifecycle,
    input: Input,
    now: Instant,
    close_timeout: Duration,
) -> (Lifecycle, Vec<Action>) {
    use Action::*;
    use Lifecycle::*;
    // Where our close, if it goes out now, gives up on the peer's.
    let new_deadline = now + close_timeout;
    match (state, input) {
        (Done, _) => (Done, vec![]),

        // CLOSE is reported: only the end of the wait matters.
        (Lingering { .. }, Input::Eof | Input::Abort) => (Done, vec![]),
        (Lingering { until }, Input::Tick) if now >= until => (Done, vec![]),
        (s @ Lingering { .. }, _) => (s, vec![]),

        (_, Input::Abort) => (Done, vec![abnormal_close()]),

        // We close (RFC 6455 §7.1.2): our close goes out behind the data.
        (Open, Input::CloseRequested(frame)) => (
            Closing {
                deadline: new_deadline,
                peer: None,
                failed: false,
            },
            vec![SendClose(Some(frame))],
        ),
        (
            Failing {
                fault,
                until,
                close_deadline: None,
            },
            Input::CloseRequested(frame),
        ) => (
            Failing {
                fault,
                until,
                close_deadline: Some(new_deadline),
            },
            vec![SendClose(Some(frame))],
        ),
        // Our close is out already.
        (s, Input::CloseRequested(_)) => (s, vec![]),

        // The peer closes: echo its code (§5.5.1), or answer an empty close
        // with an empty one.
        (Open, Input::PeerClose(Ok((code, reason)))) => {
            let reply = (code != 1005).then(|| CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            });
            (
                Closing {
                    deadline: new_deadline,
                    peer: Some((code, reason)),
                    failed: false,
                },
                vec![SendClose(reply), Flush],
            )
        }
        // The peer's close is invalid: fail, with the fault's code as our answer.
        (Open, Input::PeerClose(Err(fault))) => {
            let code = fault.close_code();
            (
                Closing {
                    deadline: new_deadline,
                    peer: Some((u16::from(code), String::new())),
                    failed: true,
                },
                vec![
                    ReportError(fault.error()),
                    SendClose(Some(CloseFrame {
                        code,
                        reason: "".into(),
                    })),
                    Flush,
                ],
            )
        }
        // The peer's answer to our close (an invalid one: its fault's code).
        (
            Closing {
                deadline, failed, ..
            },
            Input::PeerClose(close),
        ) => {
            let peer = close.unwrap_or_else(|f| (u16::from(f.close_code()), String::new()));
            (
                Closing {
                    deadline,
                    peer: Some(peer),
                    failed,
                },
                vec![Flush],
            )
        }
        // Both closes are out and in: the closing handshake is complete.
        (
            Closing {
                peer: Some((code, reason)),
                ..
            },
            Input::Flushed,
        ) => (
            Lingering {
                until: now + LINGER,
            },
            vec![ReportClose {
                code,
                clean: true,
                reason,
            }],
        ),
        // The server closed TCP after its close frame (§7.1.1).
        (
            Closing {
                peer: Some((code, reason)),
                ..
            },
            Input::Eof,
        ) => (
            Done,
            vec![ReportClose {
                code,
                clean: true,
                reason,
            }],
        ),
        // After the peer's close, a failed write is expected (it may close
        // TCP at once): the close completes as usual.
        (s @ Closing { peer: Some(_), .. }, Input::WriteFailed(_)) => (s, vec![]),

        // We fail the connection (§7.1.7), once the host has the messages
        // that arrived before the fault.
        (Open, Input::Fault(fault)) => (
            Failing {
                fault,
                until: now + FAIL_GRACE,
                close_deadline: None,
            },
            vec![WatchHost],
        ),
        (
            Failing {
                close_deadline: Some(d),
                ..
            },
            Input::Tick,
        ) if now >= d => (Done, vec![abnormal_close()]),
        (
            Failing {
                fault,
                close_deadline,
                ..
            },
            Input::HostIdle,
        ) => fail_now(fault, close_deadline, new_deadline),
        (
            Failing {
                fault,
                until,
                close_deadline,
            },
            Input::Tick,
        ) if now >= until => fail_now(fault, close_deadline, new_deadline),
        // Already closing: the peer misbehaves further; give up now.
        (s @ Closing { .. }, Input::Fault(fault)) => fail_hard(&s, fault.error()),

        (Closing { deadline, .. }, Input::Tick) if now >= deadline => {
            (Done, vec![abnormal_close()])
        }

        // The connection breaks without a closing handshake.
        (s @ (Open | Failing { .. } | Closing { .. }), Input::Eof) => {
            fail_hard(&s, closed_without_handshake())
        }
        (
            s @ (Open | Failing { .. } | Closing { .. }),
            Input::Broken(e) | Input::WriteFailed(e),
        ) => fail_hard(&s, e),
        (s @ (Open | Failing { .. } | Closing { .. }), Input::KeepaliveTimeout) => {
            fail_hard(&s, Error::new(wsb_result::WSB_ERR_IO, "keepalive timeout"))
        }

        // Nothing else changes anything: a Tick before a deadline, Flushed
        // or HostIdle with nothing waiting for it, and (nothing being read
        // while Failing) a close or fault there.
        (
            s @ (Open | Failing { .. } | Closing { .. }),
            Input::Tick | Input::Flushed | Input::HostIdle | Input::PeerClose(_) | Input::Fault(_),
        ) => (s, vec![]),
    }
}

/// CLOSE 1006, not clean, no reason.
fn abnormal_close() -> Action {
    Action::ReportClose {
        code: 1006,
        clean: false,
        reason: String::new(),
    }
}

/// The deferred failure happens: ERROR, our close with the fault's code
/// (unless the host's close is out already), then wait for the peer's.
fn fail_now(
    fault: Fault,
    close_deadline: Option<Instant>,
    new_deadline: Instant,
) -> (Lifecycle, Vec<Action>) {
    let mut actions = vec![Action::Resume, Action::ReportError(fault.error())];
    if close_deadline.is_none() {
        let (code, reason) = fault.close();
        actions.push(Action::SendClose(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
    }
    actions.push(Action::Flush);
    (
        Lifecycle::Closing {
            deadline: close_deadline.unwrap_or(new_deadline),
            peer: None,
            failed: true,
        },
        actions,
    )
}

/// Abnormal end without a closing handshake: ERROR (unless our close is out:
/// the host asked to close, or was told why we failed), then CLOSE 1006;
/// drop the connection.
fn fail_hard(state: &Lifecycle, err: Error) -> (Lifecycle, Vec<Action>) {
    let mut actions = Vec::with_capacity(3);
    if matches!(
        state,
        Lifecycle::Open
            | Lifecycle::Failing {
                close_deadline: None,
                ..
            }
    ) {
        actions.push(Action::ReportError(err));
    }
    actions.push(abnormal_close());
    actions.push(Action::Disconnect);
    (Lifecycle::Done, actions)
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::*;

    const CT: Duration = Duration::from_secs(5);

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }
    }
    fn closing(deadline: Instant, peer: Option<(u16, &str)>, failed: bool) -> Lifecycle {
        Lifecycle::Closing {
            deadline,
            peer: peer.map(|(c, r)| (c, r.to_string())),
            failed,
        }
    }
    fn failing(fault: Fault, until: Instant, close_deadline: Option<Instant>) -> Lifecycle {
        Lifecycle::Failing {
            fault,
            until,
            close_deadline,
        }
    }
    fn report_close(code: u16, clean: bool, reason: &str) -> Action {
        ReportClose {
            code,
            clean,
            reason: reason.into(),
        }
    }
    fn protocol() -> Fault {
        Fault::Protocol("reserved opcode 3".into())
    }
    fn io(detail: &str) -> Error {
        Error::new(wsb_result::WSB_ERR_IO, detail)
    }

    /// One row: from `state`, `input` at `now` leads to `to` with `actions`.
    struct Row {
        path: &'static str,
        state: Lifecycle,
        input: Input,
        to: Lifecycle,
        actions: Vec<Action>,
    }

    fn row(
        path: &'static str,
        state: Lifecycle,
        input: Input,
        to: Lifecycle,
        actions: Vec<Action>,
    ) -> Row {
        Row {
            path,
            state,
            input,
            to,
            actions,
        }
    }

    /// Every RFC 6455 §7 path, one row per step; `now` is `t`.
    #[rustfmt::skip]
    fn table(t: Instant) -> Vec<Row> {
        use Input as I;
        use Lifecycle::*;
        let s = Duration::from_secs(1);
        let (later, ct, linger, grace) = (t + s, t + CT, t + LINGER, t + FAIL_GRACE);
        let too_large = Fault::TooLarge {
            size: 20,
            limit: 10,
        };
        let bad_utf8 = Fault::InvalidUtf8("invalid UTF-8 in a text message");
        let bad_code = Fault::Protocol("invalid close code 999".into());
        let bad_deflate = Fault::BadCompressedData("invalid compressed data in a message: x".into());
        let tls = Error::new(wsb_result::WSB_ERR_TLS, "received corrupt message");
        vec![
            // We close (§7.1.2), the peer answers, the server closes TCP (§7.1.1).
            row("we close: our close goes out, the close timeout starts",
                Open, I::CloseRequested(frame(1000, "bye")),
                closing(ct, None, false), vec![SendClose(Some(frame(1000, "bye")))]),
            row("we close: the peer's close arrives; ours may still be in the outbox",
                closing(later, None, false), I::PeerClose(Ok((1000, "ok".into()))),
                closing(later, Some((1000, "ok")), false), vec![Flush]),
            row("we close: both closes out and in, CLOSE with the peer's code and reason, clean",
                closing(later, Some((1000, "ok")), false), I::Flushed,
                Lingering { until: linger }, vec![report_close(1000, true, "ok")]),
            row("we close: the peer answers with an invalid close: its fault's code, clean, no ERROR",
                closing(later, None, false), I::PeerClose(Err(bad_code.clone())),
                closing(later, Some((1002, "")), false), vec![Flush]),
            row("we close: a second close request changes nothing",
                closing(later, None, false), I::CloseRequested(frame(1001, "")),
                closing(later, None, false), vec![]),
            row("we close: nothing to complete until the peer's close arrives",
                closing(later, None, false), I::Flushed,
                closing(later, None, false), vec![]),
            // The peer closes (§7.1.5, §5.5.1: echo its code).
            row("the peer closes: we echo its code and write it now",
                Open, I::PeerClose(Ok((1001, "away".into()))),
                closing(ct, Some((1001, "away")), false),
                vec![SendClose(Some(frame(1001, ""))), Flush]),
            row("the peer closes without a code: we answer with an empty close",
                Open, I::PeerClose(Ok((1005, String::new()))),
                closing(ct, Some((1005, "")), false), vec![SendClose(None), Flush]),
            row("the peer closes: our answer is written, CLOSE clean",
                closing(later, Some((1001, "away")), false), I::Flushed,
                Lingering { until: linger }, vec![report_close(1001, true, "away")]),
            row("the peer closes TCP right after its close frame: CLOSE clean, nothing to linger for",
                closing(later, Some((1000, "")), false), I::Eof,
                Done, vec![report_close(1000, true, "")]),
            row("the peer closes: a write failing after its close is expected",
                closing(later, Some((1000, "")), false), I::WriteFailed(io("connection error: broken pipe")),
                closing(later, Some((1000, "")), false), vec![]),
            row("lingering: the server closes TCP",
                Lingering { until: linger }, I::Eof, Done, vec![]),
            // The peer fails: an invalid close frame (§7.1.7 with its fault's code).
            row("the peer's close has an invalid code: ERROR, our close says 1002",
                Open, I::PeerClose(Err(bad_code.clone())),
                closing(ct, Some((1002, "")), true),
                vec![ReportError(bad_code.error()), SendClose(Some(frame(1002, ""))), Flush]),
            row("the peer's close reason is not UTF-8: ERROR, our close says 1007",
                Open, I::PeerClose(Err(bad_utf8.clone())),
                closing(ct, Some((1007, "")), true),
                vec![ReportError(bad_utf8.error()), SendClose(Some(frame(1007, ""))), Flush]),
            row("after an invalid close our answer is written: CLOSE with the fault's code, clean",
                closing(later, Some((1002, "")), true), I::Flushed,
                Lingering { until: linger }, vec![report_close(1002, true, "")]),
            // We fail (§7.1.7): the fault waits for the host to take what came before it.
            row("we fail: a fault waits for the host's events",
                Open, I::Fault(protocol()),
                failing(protocol(), grace, None), vec![WatchHost]),
            row("we fail: the host took its events: ERROR, our close with 1002",
                failing(protocol(), later, None), I::HostIdle,
                closing(ct, None, true),
                vec![Resume, ReportError(protocol().error()),
                     SendClose(Some(frame(1002, "protocol error"))), Flush]),
            row("we fail: FAIL_GRACE passed: ERROR, our close with 1009",
                failing(too_large.clone(), t, None), I::Tick,
                closing(ct, None, true),
                vec![Resume, ReportError(too_large.error()),
                     SendClose(Some(frame(1009, "message too big"))), Flush]),
            row("we fail: invalid UTF-8 is 1007",
                failing(bad_utf8.clone(), later, None), I::HostIdle,
                closing(ct, None, true),
                vec![Resume, ReportError(bad_utf8.error()),
                     SendClose(Some(frame(1007, "invalid UTF-8"))), Flush]),
            row("we fail: corrupt compressed data is 1002, not 1007, and the reason says so",
                failing(bad_deflate.clone(), later, None), I::HostIdle,
                closing(ct, None, true),
                vec![Resume, ReportError(bad_deflate.error()),
                     SendClose(Some(frame(1002, "invalid compressed data"))), Flush]),
            row("we fail: before FAIL_GRACE nothing happens",
                failing(protocol(), later, None), I::Tick,
                failing(protocol(), later, None), vec![]),
            row("we fail: the host closes meanwhile: its close goes out, the failure still waits",
                failing(protocol(), later, None), I::CloseRequested(frame(1000, "")),
                failing(protocol(), later, Some(ct)), vec![SendClose(Some(frame(1000, "")))]),
            row("we fail after the host's close: ERROR, no second close, its close timeout kept",
                failing(protocol(), later, Some(later)), I::HostIdle,
                closing(later, None, true), vec![Resume, ReportError(protocol().error()), Flush]),
            row("we fail: the peer answers our close: recorded, written out next",
                closing(later, None, true), I::PeerClose(Ok((1002, String::new()))),
                closing(later, Some((1002, "")), true), vec![Flush]),
            row("we fail: the closing handshake completes: CLOSE with the peer's code, clean",
                closing(later, Some((1002, "")), true), I::Flushed,
                Lingering { until: linger }, vec![report_close(1002, true, "")]),
            row("we fail: another fault while closing: give up, no second ERROR",
                closing(later, None, true), I::Fault(protocol()),
                Done, vec![report_close(1006, false, ""), Disconnect]),
            row("we close: a fault while closing: give up, no ERROR (the host asked to close)",
                closing(later, None, false), I::Fault(too_large.clone()),
                Done, vec![report_close(1006, false, ""), Disconnect]),
            // Timeouts: close timeout, keepalive timeout, linger expiry.
            row("close timeout: CLOSE 1006, no ERROR",
                closing(t, None, false), I::Tick, Done, vec![report_close(1006, false, "")]),
            row("close timeout while our answer to the peer's close is unwritten",
                closing(t, Some((1000, "")), false), I::Tick,
                Done, vec![report_close(1006, false, "")]),
            row("close timeout not reached",
                closing(later, None, false), I::Tick, closing(later, None, false), vec![]),
            row("close timeout of the host's close while a failure waits",
                failing(protocol(), later, Some(t)), I::Tick,
                Done, vec![report_close(1006, false, "")]),
            row("keepalive timeout: ERROR, CLOSE 1006, drop",
                Open, I::KeepaliveTimeout,
                Done, vec![ReportError(io("keepalive timeout")), report_close(1006, false, ""), Disconnect]),
            row("keepalive timeout while a failure waits: ERROR (not the fault's), CLOSE 1006",
                failing(protocol(), later, None), I::KeepaliveTimeout,
                Done, vec![ReportError(io("keepalive timeout")), report_close(1006, false, ""), Disconnect]),
            row("keepalive timeout while closing: CLOSE 1006, no ERROR",
                closing(later, None, false), I::KeepaliveTimeout,
                Done, vec![report_close(1006, false, ""), Disconnect]),
            row("linger expiry", Lingering { until: t }, I::Tick, Done, vec![]),
            row("linger not over", Lingering { until: later }, I::Tick, Lingering { until: later }, vec![]),
            // EOF without a close (§7.1.5: 1006).
            row("EOF without the peer's close: ERROR, CLOSE 1006",
                Open, I::Eof,
                Done, vec![ReportError(closed_without_handshake()), report_close(1006, false, ""), Disconnect]),
            row("EOF while waiting for the answer to our close: CLOSE 1006, no ERROR",
                closing(later, None, false), I::Eof,
                Done, vec![report_close(1006, false, ""), Disconnect]),
            row("EOF after we failed, before the peer's close: CLOSE 1006, no second ERROR",
                closing(later, None, true), I::Eof,
                Done, vec![report_close(1006, false, ""), Disconnect]),
            // Stream and write errors.
            row("a stream error: ERROR with it, CLOSE 1006",
                Open, I::Broken(tls.clone()),
                Done, vec![ReportError(tls.clone()), report_close(1006, false, ""), Disconnect]),
            row("a write error: ERROR with it, CLOSE 1006",
                Open, I::WriteFailed(io("connection error: reset")),
                Done, vec![ReportError(io("connection error: reset")), report_close(1006, false, ""), Disconnect]),
            row("a write error while a failure waits: ERROR with it",
                failing(protocol(), later, None), I::WriteFailed(io("connection error: reset")),
                Done, vec![ReportError(io("connection error: reset")), report_close(1006, false, ""), Disconnect]),
            row("a write error before the peer answers our close: CLOSE 1006, no ERROR",
                closing(later, None, false), I::WriteFailed(io("connection error: reset")),
                Done, vec![report_close(1006, false, ""), Disconnect]),
            row("a stream error after the host's close while a failure waits: no ERROR",
                failing(protocol(), later, Some(later)), I::Broken(tls.clone()),
                Done, vec![report_close(1006, false, ""), Disconnect]),
            // Shutdown (wsb_shutdown) / abort.
            row("abort while open: CLOSE 1006", Open, I::Abort, Done, vec![report_close(1006, false, "")]),
            row("abort while a failure waits: CLOSE 1006, no ERROR",
                failing(protocol(), later, None), I::Abort, Done, vec![report_close(1006, false, "")]),
            row("abort while closing: CLOSE 1006",
                closing(later, Some((1000, "")), false), I::Abort, Done, vec![report_close(1006, false, "")]),
            row("abort while lingering: CLOSE was reported already",
                Lingering { until: later }, I::Abort, Done, vec![]),
            // What changes nothing.
            row("open: Tick, Flushed and HostIdle change nothing", Open, I::Tick, Open, vec![]),
            row("open: Flushed", Open, I::Flushed, Open, vec![]),
            row("open: HostIdle", Open, I::HostIdle, Open, vec![]),
            row("failing: Flushed changes nothing",
                failing(protocol(), later, None), I::Flushed, failing(protocol(), later, None), vec![]),
            row("lingering: a late close or error is discarded",
                Lingering { until: later }, I::Broken(tls.clone()), Lingering { until: later }, vec![]),
            row("lingering: a close request is too late",
                Lingering { until: later }, I::CloseRequested(frame(1000, "")), Lingering { until: later }, vec![]),
            row("done stays done", Done, I::PeerClose(Ok((1000, String::new()))), Done, vec![]),
            row("done: abort", Done, I::Abort, Done, vec![]),
        ]
    }

    #[test]
    fn every_path_of_rfc_6455_section_7() {
        let t = Instant::now();
        for Row {
            path,
            state,
            input,
            to,
            actions,
        } in table(t)
        {
            let from = format!("{state:?} + {input:?}");
            let got = transition(state, input, t, CT);
            assert_eq!(got, (to, actions), "{path}: {from}");
        }
    }

    #[test]
    fn the_queries_follow_the_state() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        // (state, reads, delivers, sends_pings, waits_for_flush, closed, deadline)
        #[rustfmt::skip]
        let rows = [
            (Lifecycle::Open, true, true, true, false, false, None),
            (failing(protocol(), t + s, None), false, false, true, false, false, Some(t + s)),
            (failing(protocol(), t + s, Some(t)), false, false, false, false, false, Some(t)),
            (closing(t, None, false), true, true, false, false, false, Some(t)),
            (closing(t, Some((1000, "")), false), true, true, false, true, false, Some(t)),
            (closing(t, Some((1000, "")), true), true, false, false, true, false, Some(t)),
            (Lifecycle::Lingering { until: t }, false, false, false, false, true, Some(t)),
            (Lifecycle::Done, false, false, false, false, true, None),
        ];
        for (state, reads, delivers, pings, flush, closed, deadline) in rows {
            assert_eq!(
                (
                    state.reads(),
                    state.delivers(),
                    state.sends_pings(),
                    state.waits_for_flush(),
                    state.close_reported(),
                    state.deadline()
                ),
                (reads, delivers, pings, flush, closed, deadline),
                "{state:?}"
            );
            assert_eq!(state.is_done(), matches!(state, Lifecycle::Done));
            assert_eq!(
                state.is_failing(),
                matches!(state, Lifecycle::Failing { .. })
            );
        }
    }

    /// A whole exchange through the one function: we fail while the host
    /// still has events, it takes them, the peer answers our close.
    #[test]
    fn a_failure_from_fault_to_done() {
        let t = Instant::now();
        let mut state = Lifecycle::Open;
        let mut all = Vec::new();
        for input in [
            Input::Fault(protocol()),
            Input::Tick,
            Input::HostIdle,
            Input::Flushed,
            Input::PeerClose(Ok((1002, String::new()))),
            Input::Flushed,
            Input::Eof,
        ] {
            let (next, actions) = transition(state, input, t, CT);
            state = next;
            all.extend(actions);
        }
        assert_eq!(state, Lifecycle::Done);
        assert_eq!(
            all,
            [
                WatchHost,
                Resume,
                ReportError(protocol().error()),
                SendClose(Some(frame(1002, "protocol error"))),
                Flush,
                Flush,
                report_close(1002, true, ""),
            ]
        );
    }
}
