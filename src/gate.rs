//! The frame gate: what of the incoming byte stream tungstenite gets to see.
//!
//! tungstenite parses frames well, but a bad frame *header* (reserved bits,
//! unknown opcode, a frame over the size limit, ...) leaves its parser stuck
//! in the middle of the stream, so the peer's reply to our close could never
//! be read. The gate looks at each header first:
//! - well-formed frames pass through untouched (header and payload);
//! - a frame that breaks a header rule, or is over the size limit, is
//!   dropped from the stream (its payload skipped, never buffered) and
//!   reported as an [`Incident`]; the stream stays aligned;
//! - the peer's close frame is taken out and reported, so the library, not
//!   tungstenite, validates its code and reason and answers it; everything
//!   after it is discarded (RFC 6455 §5.5.1).
//!
//! During the upgrade it passes bytes up to the end of the HTTP response
//! head only, so no frame bytes end up in the handshake's buffer.
//!
//! Text is validated here, as it arrives (a message fails at its first bad
//! byte). So that tungstenite does not validate it a second time, text
//! frames are handed over as binary ones (the opcode is rewritten in the
//! copy, see [`Gate::rewrites`]) and the gate keeps the kind of each message
//! in order ([`Gate::take_message_kind`]).

use std::collections::VecDeque;

/// Frames up to this size (header included) are passed to tungstenite
/// only once complete; larger ones stream through as they arrive.
const WHOLE_FRAME: u64 = 16 * 1024;

/// Something the I/O thread must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incident {
    /// A data frame whose payload (this many bytes) is over the limit.
    Oversize(u64),
    /// A frame header breaking RFC 6455; the detail says how.
    Violation(String),
    /// Bytes of a text message that can never be UTF-8 (caught as they
    /// arrive, not when the message is complete).
    InvalidUtf8,
    /// The peer's close frame payload (code + reason, unvalidated).
    PeerClose(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matched this many bytes of "\r\n\r\n".
    HttpHead(u8),
    /// At a frame boundary.
    FrameStart,
    /// Passing `left` more bytes of the current frame, of which the first
    /// `header` are still header bytes.
    Pass { left: u64, header: u64 },
    /// Dropping this many more payload bytes of a rejected frame.
    Skip(u64),
    /// After the peer's close frame: drop everything.
    Discard,
}

/// What the reader should do with the input next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Hand this many bytes to tungstenite.
    Pass(usize),
    /// Drop this many bytes; if `stop`, an incident was raised: tell
    /// tungstenite "would block" so the I/O thread acts on it first.
    Drop { n: usize, stop: bool },
    /// A header (or a close frame) is incomplete: more input is needed.
    NeedMore,
}

#[derive(Debug, Clone)]
pub struct Gate {
    /// Offsets, in the input of the last `next`/`next_run` call, of text
    /// frame headers whose opcode the reader must rewrite to binary.
    rewrites: Vec<usize>,
    /// Kind of each data message started and not yet taken (true = text).
    kinds: VecDeque<bool>,
    state: State,
    max_frame: u64,
    incident: Option<Incident>,
    /// Inside a text message: its UTF-8 validation state.
    text: Option<Utf8>,
    /// The frame being passed is part of a text message.
    frame_text: bool,
    /// The frame being passed is the last one of a data message.
    frame_ends_message: bool,
    /// A data frame without FIN passed: tungstenite holds part of a
    /// fragmented message.
    in_message: bool,
}

/// Incremental UTF-8 validation across chunks and fragments.
#[derive(Debug, Default, Clone, Copy)]
struct Utf8 {
    /// An incomplete sequence carried over from the previous chunk.
    tail: [u8; 4],
    len: usize,
}

impl Utf8 {
    fn width(lead: u8) -> usize {
        match lead {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        }
    }

    /// No sequence is left incomplete (the text may end here).
    fn complete(&self) -> bool {
        self.len == 0
    }

    /// False as soon as `data` makes the text invalid (an incomplete
    /// sequence at the end is kept for the next chunk).
    fn feed(&mut self, mut data: &[u8]) -> bool {
        if self.len > 0 {
            let width = Self::width(self.tail[0]);
            let take = (width - self.len).min(data.len());
            self.tail[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            match std::str::from_utf8(&self.tail[..self.len]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() && self.len < width => return true,
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                let rest = &data[e.valid_up_to()..];
                self.tail[..rest.len()].copy_from_slice(rest);
                self.len = rest.len();
                true
            }
            Err(_) => false,
        }
    }
}

/// The first header byte of a text frame, as a binary frame's.
pub fn as_binary(b0: u8) -> u8 {
    (b0 & 0xf0) | 0x2
}

/// (header length, payload length) once the whole header is in `b`.
fn parse_header(b: &[u8]) -> Option<(usize, u64)> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let ext = match b[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let hlen = 2 + ext + if masked { 4 } else { 0 };
    if b.len() < hlen {
        return None;
    }
    let len = match ext {
        0 => u64::from(b[1] & 0x7f),
        _ => b[2..2 + ext]
            .iter()
            .fold(0u64, |a, &x| (a << 8) | u64::from(x)),
    };
    Some((hlen, len))
}

/// The header rule a frame breaks, if any.
fn violation(b0: u8, b1: u8, len: u64) -> Option<String> {
    let (fin, rsv, opcode) = (b0 & 0x80 != 0, (b0 >> 4) & 0x7, b0 & 0x0f);
    if rsv != 0 {
        return Some(format!(
            "protocol error: reserved bits set (RSV {rsv:03b}) without an extension"
        ));
    }
    match opcode {
        3..=7 => return Some(format!("protocol error: unknown data opcode {opcode}")),
        11..=15 => return Some(format!("protocol error: unknown control opcode {opcode}")),
        _ => {}
    }
    if b1 & 0x80 != 0 {
        return Some("protocol error: masked frame from the server".into());
    }
    if opcode >= 8 && !fin {
        return Some("protocol error: fragmented control frame".into());
    }
    if opcode >= 8 && len > 125 {
        return Some(format!(
            "protocol error: control frame of {len} bytes (over 125)"
        ));
    }
    None
}

impl Gate {
    pub fn new(max_frame: usize) -> Gate {
        Gate {
            rewrites: Vec::new(),
            kinds: VecDeque::new(),
            state: State::HttpHead(0),
            max_frame: max_frame as u64,
            incident: None,
            text: None,
            frame_text: false,
            frame_ends_message: false,
            in_message: false,
        }
    }

    /// The fast path for the common case. If `input` starts with a whole
    /// single-frame data message (FIN set, text or binary) that breaks no
    /// rule, is within the limit and, for text, is valid UTF-8, returns
    /// (is text, header length, frame length): the caller takes the payload
    /// and consumes the frame itself, without tungstenite. Only between
    /// messages: `None` in the middle of a frame, a fragmented message or
    /// the HTTP head, and for anything else (control frames, fragments,
    /// incomplete or faulty frames), which goes the usual way, through
    /// tungstenite. The caller must know that tungstenite holds no input
    /// (it last returned "would block" with the gate at a frame boundary).
    pub fn clean_message(&self, input: &[u8]) -> Option<(bool, usize, usize)> {
        if self.state != State::FrameStart || self.in_message {
            return None;
        }
        let (hlen, len) = parse_header(input)?;
        let total = usize::try_from(len).ok()?.checked_add(hlen)?;
        if total > input.len() || len > self.max_frame {
            return None;
        }
        let text = match input[0] {
            0x81 => true,
            0x82 => false,
            _ => return None, // no FIN, RSV bits, another opcode
        };
        if input[1] & 0x80 != 0 {
            return None; // masked: a violation, reported the usual way
        }
        if text && std::str::from_utf8(&input[hlen..total]).is_err() {
            return None;
        }
        Some((text, hlen, total))
    }

    pub fn take_incident(&mut self) -> Option<Incident> {
        self.incident.take()
    }

    /// Where, in the input given to the last `next`/`next_run` call, a text
    /// frame starts whose first byte must be passed on as binary
    /// ([`as_binary`]).
    pub fn rewrites(&self) -> &[usize] {
        &self.rewrites
    }

    /// Whether the next data message tungstenite returns was text (its
    /// frames were passed as binary), in order of arrival.
    pub fn take_message_kind(&mut self) -> Option<bool> {
        self.kinds.pop_front()
    }

    /// Like [`Gate::next`], but a `Pass` also takes every following frame
    /// that is complete in `input`, fits in `max` and needs no action (no
    /// rule broken, not a close frame, not over the limit, valid UTF-8): so
    /// tungstenite gets a whole run of small frames per read, not one.
    pub fn next_run(&mut self, input: &[u8], max: usize) -> Step {
        // The HTTP response head is passed alone (no frame bytes may end up
        // in the handshake's buffer).
        let in_head = matches!(self.state, State::HttpHead(_));
        let first = self.next(input, max);
        // (`next` cleared `rewrites` and recorded the first frame's.)
        let Step::Pass(mut total) = first else {
            return first;
        };
        if in_head {
            return first;
        }
        while self.state == State::FrameStart && total < max {
            match self.whole_clean_frame(&input[total..], max - total, total) {
                Some(n) => total += n,
                None => break,
            }
        }
        Step::Pass(total)
    }

    /// At a frame boundary: if `input` starts with a whole frame of at most
    /// `max` bytes that can pass as it is, account for it and return its
    /// length; otherwise change nothing.
    fn whole_clean_frame(&mut self, input: &[u8], max: usize, at: usize) -> Option<usize> {
        let (hlen, len) = parse_header(input)?;
        let total = usize::try_from(len).ok()?.checked_add(hlen)?;
        if total > input.len() || total > max {
            return None;
        }
        let (b0, b1) = (input[0], input[1]);
        let opcode = b0 & 0x0f;
        if opcode == 8 || violation(b0, b1, len).is_some() {
            return None;
        }
        if opcode < 8 {
            if len > self.max_frame {
                return None;
            }
            let mut text = match opcode {
                1 => Some(Utf8::default()),
                2 => None,
                _ => self.text,
            };
            let fin = b0 & 0x80 != 0;
            if let Some(t) = text.as_mut() {
                if !t.feed(&input[hlen..total]) || (fin && !t.complete()) {
                    return None;
                }
            }
            self.started(opcode, at);
            self.in_message = !fin;
            self.text = if fin { None } else { text };
        }
        Some(total)
    }

    /// `input` starts with the first part of a frame that [`Gate::next`]
    /// would hold back until it is complete (a header cut short, or a small
    /// text or binary frame with nothing wrong so far): tungstenite would
    /// get nothing. Conservative: false where unsure.
    pub fn holds(&self, input: &[u8]) -> bool {
        if self.state != State::FrameStart || input.is_empty() {
            return false;
        }
        let Some((hlen, len)) = parse_header(input) else {
            return true;
        };
        let total = hlen as u64 + len;
        if total > WHOLE_FRAME || input.len() as u64 >= total || len > self.max_frame {
            return false;
        }
        match (input[0], input[1] & 0x80) {
            (0x82, 0) => true,
            (0x81, 0) => Utf8::default().feed(&input[hlen..]),
            _ => false,
        }
    }

    /// Decide about the start of `input` (at most `max` bytes may pass). The
    /// caller must then pass or drop exactly what the step says.
    pub fn next(&mut self, input: &[u8], max: usize) -> Step {
        self.rewrites.clear();
        self.step(input, max)
    }

    /// A data frame with `opcode` passes, its header at `at` in the input.
    fn started(&mut self, opcode: u8, at: usize) {
        match opcode {
            1 => {
                self.rewrites.push(at);
                self.kinds.push_back(true);
            }
            2 => self.kinds.push_back(false),
            _ => {}
        }
    }

    fn step(&mut self, input: &[u8], max: usize) -> Step {
        match self.state {
            State::HttpHead(mut matched) => {
                let mut n = 0;
                for &b in input.iter().take(max) {
                    n += 1;
                    matched = match (matched, b) {
                        (0 | 2, b'\r') => matched + 1,
                        (1, b'\n') => 2,
                        (3, b'\n') => 4,
                        (_, b'\r') => 1,
                        _ => 0,
                    };
                    if matched == 4 {
                        break;
                    }
                }
                self.state = if matched == 4 {
                    State::FrameStart
                } else {
                    State::HttpHead(matched)
                };
                Step::Pass(n)
            }
            State::Pass { left, header } => {
                let n = (left.min(input.len() as u64) as usize).min(max);
                let in_header = (header as usize).min(n);
                let rest = left - n as u64;
                if self.frame_text {
                    let ends = rest == 0 && self.frame_ends_message;
                    let ok = self.text.as_mut().is_none_or(|t| {
                        (n == in_header || t.feed(&input[in_header..n])) && (!ends || t.complete())
                    });
                    if !ok {
                        // Drop the rest of this frame; the message is failed.
                        self.incident = Some(Incident::InvalidUtf8);
                        self.text = None;
                        self.state = State::Skip(left);
                        return Step::Drop { n: 0, stop: true };
                    }
                }
                self.state = if rest == 0 {
                    if self.frame_ends_message {
                        self.text = None;
                    }
                    State::FrameStart
                } else {
                    State::Pass {
                        left: rest,
                        header: header - in_header as u64,
                    }
                };
                Step::Pass(n)
            }
            State::Skip(left) => {
                let n = left.min(input.len() as u64) as usize;
                let rest = left - n as u64;
                self.state = if rest == 0 {
                    State::FrameStart
                } else {
                    State::Skip(rest)
                };
                Step::Drop { n, stop: false }
            }
            State::Discard => Step::Drop {
                n: input.len(),
                stop: false,
            },
            State::FrameStart => {
                let Some((hlen, len)) = parse_header(input) else {
                    return Step::NeedMore;
                };
                let (b0, b1) = (input[0], input[1]);
                if let Some(detail) = violation(b0, b1, len) {
                    self.incident = Some(Incident::Violation(detail));
                    self.state = if len == 0 {
                        State::FrameStart
                    } else {
                        State::Skip(len)
                    };
                    return Step::Drop {
                        n: hlen,
                        stop: true,
                    };
                }
                let opcode = b0 & 0x0f;
                if opcode == 8 {
                    let total = hlen + len as usize; // len <= 125 here
                    if input.len() < total {
                        return Step::NeedMore;
                    }
                    self.incident = Some(Incident::PeerClose(input[hlen..total].to_vec()));
                    self.state = State::Discard;
                    return Step::Drop {
                        n: total,
                        stop: true,
                    };
                }
                if opcode < 8 && len > self.max_frame {
                    self.incident = Some(Incident::Oversize(len));
                    self.state = State::Skip(len);
                    return Step::Drop {
                        n: hlen,
                        stop: true,
                    };
                }
                // Small frames pass whole: none is left half inside
                // tungstenite, so the next messages can take the fast path
                // (`clean_message`) however the reads split the stream.
                let total = hlen as u64 + len;
                if total <= WHOLE_FRAME && (input.len() as u64) < total {
                    // Text still fails at its first bad byte.
                    let text = match opcode {
                        1 => Some(Utf8::default()),
                        0 => self.text,
                        _ => None,
                    };
                    if text.is_some_and(|mut t| !t.feed(&input[hlen..])) {
                        self.incident = Some(Incident::InvalidUtf8);
                        self.text = None;
                        self.state = State::Skip(total);
                        return Step::Drop { n: 0, stop: true };
                    }
                    return Step::NeedMore;
                }
                if opcode < 8 {
                    match opcode {
                        1 => self.text = Some(Utf8::default()),
                        2 => self.text = None,
                        _ => {} // continuation: same message
                    }
                    self.started(opcode, 0);
                    self.frame_text = self.text.is_some();
                    self.frame_ends_message = b0 & 0x80 != 0;
                    self.in_message = !self.frame_ends_message;
                } else {
                    self.frame_text = false;
                    self.frame_ends_message = false;
                }
                self.state = State::Pass {
                    left: hlen as u64 + len,
                    header: hlen as u64,
                };
                self.step(input, max)
            }
        }
    }
}

/// Validate a close frame payload from the peer: Ok((code, reason)), with
/// 1005 for an empty payload; Err(detail, whether the fault is bad UTF-8).
pub fn parse_close(payload: &[u8]) -> Result<(u16, String), (String, bool)> {
    match payload.len() {
        0 => return Ok((1005, String::new())),
        1 => {
            return Err((
                "protocol error: close frame with a 1-byte payload".into(),
                false,
            ))
        }
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err((
            format!("protocol error: peer sent invalid close code {code}"),
            false,
        ));
    }
    match std::str::from_utf8(&payload[2..]) {
        Ok(reason) => Ok((code, reason.to_string())),
        Err(_) => Err((
            "protocol error: close reason is not valid UTF-8".into(),
            true,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(max: usize) -> Gate {
        let mut g = Gate::new(max);
        assert_eq!(g.next(b"HTTP/1.1 101 x\r\n\r\n", 100), Step::Pass(18));
        g
    }

    #[test]
    fn http_head_stops_at_the_blank_line() {
        let mut g = Gate::new(10);
        let input = b"HTTP/1.1 101\r\nA: b\r\n\r\n\x81\x01a";
        assert_eq!(g.next(input, 1000), Step::Pass(input.len() - 3));
        assert_eq!(g.next(b"\x81\x01a", 1000), Step::Pass(3));
    }

    #[test]
    fn head_split_across_reads() {
        let mut g = Gate::new(10);
        assert_eq!(g.next(b"HTTP/1.1 101\r\n\r", 1000), Step::Pass(15));
        assert_eq!(g.next(b"\n\x81\x00", 1000), Step::Pass(1));
        assert_eq!(g.next(b"\x81\x00", 1000), Step::Pass(2));
    }

    #[test]
    fn small_frames_pass_whole_large_ones_in_pieces() {
        let mut g = opened(100);
        assert_eq!(g.next(b"\x82\x05abc", 1000), Step::NeedMore);
        assert_eq!(g.next(b"\x82\x05abcde\x81", 1000), Step::Pass(7));
        assert_eq!(g.next(b"\x81", 1000), Step::NeedMore);
        // Over WHOLE_FRAME: streamed as it arrives.
        let mut g = opened(1 << 20);
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&(20_000u64).to_be_bytes());
        big.extend_from_slice(&[7; 100]);
        assert_eq!(g.next(&big, 1 << 20), Step::Pass(110));
        assert_eq!(g.next(&[7; 50], 1 << 20), Step::Pass(50));
    }

    #[test]
    fn oversize_is_skipped_and_reported() {
        let mut g = opened(4);
        assert_eq!(
            g.next(b"\x82\x05abcde\x81\x01z", 1000),
            Step::Drop { n: 2, stop: true }
        );
        assert_eq!(g.take_incident(), Some(Incident::Oversize(5)));
        assert_eq!(
            g.next(b"abcde\x81\x01z", 1000),
            Step::Drop { n: 5, stop: false }
        );
        assert_eq!(g.next(b"\x81\x01z", 1000), Step::Pass(3));
    }

    #[test]
    fn violations_and_close() {
        for (bytes, what) in [
            (&b"\xc1\x00"[..], "reserved"),
            (b"\x83\x00", "unknown data opcode 3"),
            (b"\x8b\x00", "unknown control opcode 11"),
            (b"\x09\x00", "fragmented control"),
            (b"\x81\x80\x00\x00\x00\x00", "masked"),
            (b"\x89\x7e\x00\x7e", "over 125"),
        ] {
            let mut g = opened(1 << 20);
            assert!(
                matches!(g.next(bytes, 1000), Step::Drop { stop: true, .. }),
                "{what}"
            );
            match g.take_incident() {
                Some(Incident::Violation(d)) => assert!(d.contains(what), "{d}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        let mut g = opened(10);
        assert_eq!(g.next(b"\x88\x04\x03", 1000), Step::NeedMore);
        assert_eq!(
            g.next(b"\x88\x04\x03\xe8ok\x81\x00", 1000),
            Step::Drop { n: 6, stop: true }
        );
        assert_eq!(
            g.take_incident(),
            Some(Incident::PeerClose(b"\x03\xe8ok".to_vec()))
        );
        assert_eq!(g.next(b"\x81\x00", 1000), Step::Drop { n: 2, stop: false });
    }

    #[test]
    fn invalid_utf8_is_caught_mid_frame_and_across_fragments() {
        let mut g = opened(1 << 20);
        // Text frame of 6 bytes, arriving in pieces: the first is fine (it
        // waits, the frame is small), the second is not: the frame fails
        // before it is complete.
        assert_eq!(g.next(b"\x01\x06ab\xce", 1000), Step::NeedMore);
        assert_eq!(g.take_incident(), None);
        assert_eq!(
            g.next(b"\x01\x06ab\xce\x80c\xff", 1000),
            Step::Drop { n: 0, stop: true }
        );
        assert_eq!(g.take_incident(), Some(Incident::InvalidUtf8));
        assert_eq!(
            g.next(b"\x01\x06ab\xce\x80", 1000),
            Step::Drop { n: 6, stop: false }
        );
        assert_eq!(
            g.next(b"c\xff\x89\x00", 1000),
            Step::Drop { n: 2, stop: false }
        );
        assert_eq!(g.next(b"\x89\x00", 1000), Step::Pass(2));
        // The same in a frame too large to wait for: caught mid-frame.
        let mut g = opened(1 << 20);
        let mut big = vec![0x01, 127];
        big.extend_from_slice(&(20_000u64).to_be_bytes());
        big.extend_from_slice(b"ab\xce");
        assert_eq!(g.next(&big, 1 << 20), Step::Pass(13));
        assert_eq!(g.next(b"\x80c\xff", 1000), Step::Drop { n: 0, stop: true });
        assert_eq!(g.take_incident(), Some(Incident::InvalidUtf8));
        // A sequence split across a continuation frame with a ping between.
        let mut g = opened(1 << 20);
        assert_eq!(g.next(b"\x01\x01\xe2", 1000), Step::Pass(3));
        assert_eq!(g.next(b"\x89\x00", 1000), Step::Pass(2));
        assert_eq!(g.next(b"\x80\x02\x82\xac", 1000), Step::Pass(4));
        assert_eq!(g.take_incident(), None);
        // Binary data is never checked.
        let mut g = opened(1 << 20);
        assert_eq!(g.next(b"\x82\x01\xff", 1000), Step::Pass(3));
        assert_eq!(g.take_incident(), None);
    }

    #[test]
    fn clean_messages_and_held_parts_agree_with_next() {
        let g = opened(100);
        // Whole single-frame text/binary: the fast path takes them.
        assert_eq!(g.clean_message(b"\x81\x02ok\x82"), Some((true, 2, 4)));
        assert_eq!(g.clean_message(b"\x82\x00"), Some((false, 2, 2)));
        // Not for it: fragments, control frames, RSV, masked, over the
        // limit, invalid UTF-8, incomplete.
        for input in [
            &b"\x01\x01a"[..],
            b"\x89\x00",
            b"\xc1\x01a",
            b"\x81\x81abcd\x00",
            b"\x81\x65",
            b"\x81\x01\xff",
            b"\x81\x02o",
        ] {
            assert_eq!(g.clean_message(input), None, "{input:?}");
        }
        // `holds` exactly where `next` answers NeedMore (held back).
        for (input, held) in [
            (&b"\x82"[..], true),
            (b"\x82\x7e\x01", true),
            (b"\x82\x05abc", true),
            (b"\x81\x05ab\xce", true),
            (b"\x81\x05ab\xff", false), // fails at once instead
            (b"\x89\x02p", false),      // held too, but left to next()
            (b"\x82\x02ab", false),     // complete
            (b"", false),
        ] {
            assert_eq!(g.holds(input), held, "{input:?}");
            if held {
                assert_eq!(g.clone().next(input, 1000), Step::NeedMore);
            }
        }
        // Inside a fragmented message nothing takes the fast path.
        let mut g = opened(100);
        assert_eq!(g.next(b"\x01\x01a", 1000), Step::Pass(3));
        assert_eq!(g.clean_message(b"\x81\x01b"), None);
        assert_eq!(g.next(b"\x80\x01b", 1000), Step::Pass(3));
        assert_eq!(g.clean_message(b"\x81\x01b"), Some((true, 2, 3)));
    }

    #[test]
    fn runs_of_clean_frames_pass_together() {
        let mut g = opened(100);
        let three = b"\x81\x01a\x82\x02bc\x89\x00";
        assert_eq!(g.next_run(three, 1000), Step::Pass(three.len()));
        // Limited by `max`: only whole frames are added to the first.
        let mut g = opened(100);
        assert_eq!(g.next_run(three, 6), Step::Pass(3));
        assert_eq!(g.next_run(&three[3..], 1000), Step::Pass(6));
        // A run stops before a frame that needs action, which then gets it.
        for (stop, incident) in [
            (&b"\xc1\x00"[..], "violation"),
            (b"\x88\x00", "close"),
            (b"\x82\x7e\x00\xc8", "oversize"),
            (b"\x81\x01\xff", "utf8"),
        ] {
            let mut g = opened(100);
            let mut input = b"\x81\x01a\x81\x01b".to_vec();
            input.extend_from_slice(stop);
            assert_eq!(g.next_run(&input, 1000), Step::Pass(6), "{incident}");
            assert!(g.take_incident().is_none(), "{incident}");
            assert!(
                matches!(g.next_run(&input[6..], 1000), Step::Drop { stop: true, .. }),
                "{incident}"
            );
            assert!(g.take_incident().is_some(), "{incident}");
        }
        // An incomplete frame ends the run; a text message split across a
        // run keeps its UTF-8 state.
        let mut g = opened(100);
        assert_eq!(g.next_run(b"\x01\x01\xe2\x80\x02\x82", 1000), Step::Pass(3));
        assert_eq!(g.next_run(b"\x80\x02\x82\xac\x81", 1000), Step::Pass(4));
        assert_eq!(g.take_incident(), None);
    }

    #[test]
    fn text_frames_are_passed_as_binary_and_kinds_kept_in_order() {
        let mut g = opened(100);
        // text "a", binary "b", fragmented text "c" + "d" with a ping between.
        let input = b"\x81\x01a\x82\x01b\x01\x01c\x89\x00\x80\x01d";
        assert_eq!(g.next_run(input, 1000), Step::Pass(input.len()));
        assert_eq!(g.rewrites(), &[0, 6]);
        assert_eq!(as_binary(0x81), 0x82);
        assert_eq!(as_binary(0x01), 0x02);
        assert_eq!(g.take_message_kind(), Some(true));
        assert_eq!(g.take_message_kind(), Some(false));
        assert_eq!(g.take_message_kind(), Some(true));
        assert_eq!(g.take_message_kind(), None);
        // A frame passed in pieces is rewritten where its header is.
        let mut g = opened(1 << 20);
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&(20_000u64).to_be_bytes());
        big.push(b'x');
        assert_eq!(g.next_run(&big, 1 << 20), Step::Pass(11));
        assert_eq!(g.rewrites(), &[] as &[usize]);
        let mut rest = vec![b'y'; 19_999];
        rest.extend_from_slice(b"\x81\x01z");
        assert_eq!(g.next_run(&rest, 1 << 20), Step::Pass(rest.len()));
        assert_eq!(g.rewrites(), &[19_999]);
    }

    #[test]
    fn text_ending_inside_a_utf8_sequence_is_invalid() {
        // "\xe2\x82" is the start of a 3-byte sequence; the message ends there.
        let mut g = opened(100);
        assert_eq!(
            g.next_run(b"\x81\x02\xe2\x82", 1000),
            Step::Drop { n: 0, stop: true }
        );
        assert_eq!(g.take_incident(), Some(Incident::InvalidUtf8));
        // Same, ended by an empty final continuation frame, after a run.
        let mut g = opened(100);
        assert_eq!(
            g.next_run(b"\x81\x01a\x01\x01\xe2\x80\x00", 1000),
            Step::Pass(6)
        );
        assert_eq!(g.take_incident(), None);
        assert_eq!(
            g.next_run(b"\x80\x00", 1000),
            Step::Drop { n: 0, stop: true }
        );
        assert_eq!(g.take_incident(), Some(Incident::InvalidUtf8));
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(b""), Ok((1005, String::new())));
        assert_eq!(parse_close(b"\x03\xe8bye"), Ok((1000, "bye".into())));
        assert_eq!(parse_close(b"\x03\xf6"), Ok((1014, String::new())));
        assert!(parse_close(b"\x03").is_err());
        assert!(parse_close(b"\x03\xed").is_err()); // 1005
        assert!(parse_close(b"\x0b\xb8").is_ok()); // 3000
        assert_eq!(parse_close(b"\x03\xe8\xc3\x28").map_err(|e| e.1), Err(true));
    }
}
