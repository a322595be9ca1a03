//! The HTTP upgrade of RFC 6455 §4.1, client side: the request bytes, the
//! bounds of the server's response head and the checks of its 101 answer.
//! Pure functions; [`super`] does the I/O.
//!
//! The crate owns this job (tungstenite's `ClientHandshake` accepts an
//! extension the client never offered, compares `Connection` as a whole
//! value instead of looking for the `upgrade` token, and takes a head that
//! arrives in many small reads for an attack). The response head is read
//! whole, up to [`MAX_RESPONSE_HEAD`] bytes, then checked at once.

use std::borrow::Cow;

use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;
use tungstenite::http::{HeaderName, HeaderValue};

use super::url::WsUrl;
use crate::error::{wsb_result, Error};
use crate::options::Options;
use crate::protocol::deflate::{self, Agreed};

/// Largest HTTP response head (status line, headers and the blank line that
/// ends them) accepted from the server; a longer one fails the upgrade with
/// `WSB_ERR_HANDSHAKE`.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The upgrade request to send, and what the server must answer.
#[derive(Debug, Clone)]
pub struct Request {
    /// The whole request head, ready for the wire.
    pub bytes: Vec<u8>,
    /// The `Sec-WebSocket-Accept` value the server must send back.
    pub accept: String,
}

impl Request {
    /// The request for `url` with the options' subprotocols and headers,
    /// under a fresh random key.
    pub fn new(url: &WsUrl, opts: &Options) -> Result<Request, Error> {
        Request::with_key(url, opts, &generate_key())
    }

    /// `GET <resource> HTTP/1.1`, then `Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and, if any were added,
    /// `Sec-WebSocket-Protocol`, then the user's headers in the order they
    /// were added. A user `Host` header replaces the default one (the last
    /// one wins) in its place; every other user header is sent as given.
    pub fn with_key(url: &WsUrl, opts: &Options, key: &str) -> Result<Request, Error> {
        let mut host = url.authority();
        let mut extra = Vec::new();
        for (name, value) in &opts.headers {
            // Checked again here (wsb_options_add_header refuses the worst
            // already): what goes on the wire must be valid HTTP.
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::invalid_argument(format!("header {name:?}: {e}")))?;
            HeaderValue::from_str(value)
                .map_err(|e| Error::invalid_argument(format!("header {name:?}: {e}")))?;
            if n == tungstenite::http::header::HOST {
                host = value.clone();
            } else {
                extra.push((name, value));
            }
        }
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            url.resource
        );
        if !opts.subprotocols.is_empty() {
            let list = opts.subprotocols.join(", ");
            HeaderValue::from_str(&list)
                .map_err(|e| Error::invalid_argument(format!("subprotocols: {e}")))?;
            head.push_str(&format!("Sec-WebSocket-Protocol: {list}\r\n"));
        }
        if let Some(offer) = opts.compression_offer() {
            head.push_str(&format!(
                "Sec-WebSocket-Extensions: {}\r\n",
                offer.header_value()
            ));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        Ok(Request {
            bytes: head.into_bytes(),
            accept: derive_accept_key(key.as_bytes()),
        })
    }
}

/// The response head as it arrives, bounded by [`MAX_RESPONSE_HEAD`]
/// counted over every head received. Interim responses (1xx other than 101,
/// RFC 9110 §15.2: `100 Continue`, `102 Processing`, `103 Early Hints`) are
/// skipped: the head is the first other one. (101 is the final answer to
/// an upgrade.)
#[derive(Debug, Default)]
pub struct ResponseHead {
    buf: Vec<u8>,
    /// Where the head being received starts: after the interim ones.
    start: usize,
    /// End of the head (through `\r\n\r\n`) once it has arrived.
    end: Option<usize>,
    /// Interim heads skipped.
    interim: usize,
}

impl ResponseHead {
    pub fn new() -> ResponseHead {
        ResponseHead::default()
    }

    /// Append bytes read from the server: Ok(true) once the (final) head is
    /// complete (anything after its end is kept apart, see
    /// [`ResponseHead::excess`]); an error once the heads are over the limit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        if self.end.is_some() {
            self.buf.extend_from_slice(bytes);
            return Ok(true);
        }
        // The blank line may straddle two reads: look from 3 bytes back
        // (within the head being received).
        let mut from = self.buf.len().saturating_sub(3).max(self.start);
        self.buf.extend_from_slice(bytes);
        while let Some(i) = self.buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + i + 4;
            if end > MAX_RESPONSE_HEAD {
                break;
            }
            if !is_interim(&self.buf[self.start..end]) {
                self.end = Some(end);
                return Ok(true);
            }
            self.interim += 1;
            (self.start, from) = (end, end);
        }
        if self.buf.len() < MAX_RESPONSE_HEAD {
            // No end yet within the limit.
            Ok(false)
        } else {
            // It can only end beyond it.
            Err(Error::new(
                wsb_result::WSB_ERR_HANDSHAKE,
                format!("server's HTTP response head is over {MAX_RESPONSE_HEAD} bytes"),
            ))
        }
    }

    /// The complete head, interim heads left out (empty until
    /// [`ResponseHead::push`] said so).
    pub fn head(&self) -> &[u8] {
        &self.buf[self.start..self.end.unwrap_or(self.start)]
    }

    /// How many interim (1xx) heads came before it.
    pub fn interim(&self) -> usize {
        self.interim
    }

    /// Bytes received after the head (frame bytes).
    pub fn excess(&self) -> &[u8] {
        &self.buf[self.end.unwrap_or(self.buf.len())..]
    }
}

/// An interim response (1xx but 101, ending where the head ends), skipped
/// before the final one. A head that does not parse is not: [`verify`] says
/// what is wrong with it.
fn is_interim(head: &[u8]) -> bool {
    let unfolded = unfold(head);
    let mut slots = header_slots(&unfolded);
    match parse(&unfolded, &mut slots) {
        Ok((response, len)) => {
            len == head.len()
                && matches!(response.code, Some(100..=199))
                && response.code != Some(101)
        }
        Err(_) => false,
    }
}

/// What the server's 101 accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The subprotocol it selected ("" if none was requested).
    pub subprotocol: String,
    /// Each extension it accepted, as sent (`name; param=value ...`), in
    /// order; every one is among those offered.
    pub extensions: Vec<String>,
}

fn fail(detail: impl Into<String>) -> Error {
    Error::new(wsb_result::WSB_ERR_HANDSHAKE, detail)
}

/// Printable, short form of bytes from the server, for details.
pub(crate) fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect()
}

/// The response head's status line, printable and short (for the log and
/// details).
pub fn status_line(head: &[u8]) -> String {
    shown(
        head.split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or(b""),
    )
}

/// The comma-separated elements of a header list (RFC 9110 §5.6.1),
/// trimmed, empty ones skipped; a comma inside a quoted string does not
/// separate.
fn list_elements(value: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(value[start..i].trim_ascii());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim_ascii());
    out.retain(|e| !e.is_empty());
    out
}

/// Unfold each obs-fold (RFC 9112 §5.2: a line break followed by SP or
/// HTAB, continuing a header line) into spaces, one per byte, so the head
/// keeps its length. Only in the header section: whitespace right after the
/// status line is no fold (RFC 9112 §2.2; httparse refuses it), and the
/// section ends at the blank line.
fn unfold(head: &[u8]) -> Cow<'_, [u8]> {
    let Some(status_end) = head.iter().position(|&b| b == b'\n') else {
        return Cow::Borrowed(head);
    };
    let mut out: Option<Vec<u8>> = None;
    let mut line = status_end + 1;
    let mut at = line;
    while let Some(n) = head[at..].iter().position(|&b| b == b'\n') {
        let nl = at + n;
        let text_end = if nl > line && head[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if text_end == line {
            break; // the blank line
        }
        if matches!(head.get(nl + 1), Some(b' ' | b'\t')) {
            out.get_or_insert_with(|| head.to_vec())[text_end..=nl].fill(b' ');
        } else {
            line = nl + 1;
        }
        at = nl + 1;
    }
    out.map_or(Cow::Borrowed(head), Cow::Owned)
}

/// Room for every header of `head`: one per line at most, so the parser
/// never runs out of slots.
fn header_slots<'b>(head: &[u8]) -> Vec<httparse::Header<'b>> {
    let lines = head.iter().filter(|&&b| b == b'\n').count();
    vec![httparse::EMPTY_HEADER; lines]
}

/// The response `head` (through its blank line, obs-folds unfolded) parsed
/// into `slots`, and the length httparse took as the head; an error quotes
/// the line it fails on.
fn parse<'h, 'b>(
    head: &'b [u8],
    slots: &'h mut [httparse::Header<'b>],
) -> Result<(httparse::Response<'h, 'b>, usize), Error> {
    let mut response = httparse::Response::new(slots);
    match response.parse(head) {
        Ok(httparse::Status::Complete(len)) => Ok((response, len)),
        Ok(httparse::Status::Partial) => Err(fail(format!(
            "server sent an incomplete HTTP response: {:?}",
            status_line(head)
        ))),
        Err(e) => Err(fail(format!(
            "server sent a malformed HTTP response ({e}): {:?}",
            offending_line(head)
        ))),
    }
}

/// The line of `head` that httparse refuses, printable and short: the last
/// of the fewest whole lines it already refuses (a parse of some lines
/// fails exactly when one of them is bad, so a binary search finds it).
fn offending_line(head: &[u8]) -> String {
    let ends: Vec<usize> = head
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let refused = |end: usize| {
        let lines = &head[..end];
        let mut slots = header_slots(lines);
        httparse::Response::new(&mut slots).parse(lines).is_err()
    };
    let i = ends.partition_point(|&end| !refused(end));
    let start = if i == 0 { 0 } else { ends[i - 1] };
    let end = ends.get(i).copied().unwrap_or(head.len());
    status_line(&head[start..end])
}

/// Check the server's response head (`head`, through its blank line)
/// against what the request offered: its `Sec-WebSocket-Accept` value
/// (`accept`), its subprotocols and the names of its extensions (none yet).
/// An obs-fold is unfolded first (RFC 9112 §5.2).
pub fn verify(
    head: &[u8],
    accept: &str,
    subprotocols: &[String],
    extensions: &[&str],
) -> Result<Accepted, Error> {
    let head = unfold(head);
    let mut slots = header_slots(&head);
    let (response, _) = parse(&head, &mut slots)?;
    let code = response.code.unwrap_or(0);
    if code != 101 {
        return Err(fail(format!("HTTP {code} from server")));
    }
    if response.version != Some(1) {
        return Err(fail(
            "server answered 101 in HTTP/1.0 (the upgrade needs HTTP/1.1)",
        ));
    }
    let all = |name: &'static str| {
        response
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
    };

    let upgrade: Vec<&[u8]> = all("Upgrade").collect();
    match upgrade[..] {
        [v] if v.eq_ignore_ascii_case(b"websocket") => {}
        [] => return Err(fail("server's 101 response has no Upgrade header")),
        _ => {
            let v: Vec<String> = upgrade.iter().map(|v| shown(v)).collect();
            return Err(fail(format!(
                "server's 101 response has Upgrade: {:?}, not websocket",
                v.join(", ")
            )));
        }
    }

    let connection: Vec<&[u8]> = all("Connection").flat_map(list_elements).collect();
    if !connection
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
    {
        let v: Vec<String> = connection.iter().map(|v| shown(v)).collect();
        return Err(fail(format!(
            "server's 101 response has no upgrade token in Connection ({:?})",
            v.join(", ")
        )));
    }

    let sent: Vec<&[u8]> = all("Sec-WebSocket-Accept").collect();
    match sent[..] {
        [v] if v == accept.as_bytes() => {}
        [] => return Err(fail("server's 101 response has no Sec-WebSocket-Accept")),
        _ => {
            return Err(fail(
                "server's Sec-WebSocket-Accept does not match the key sent",
            ))
        }
    }

    let mut accepted = Accepted::default();
    for ext in all("Sec-WebSocket-Extensions").flat_map(list_elements) {
        let name = ext.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
        if !extensions
            .iter()
            .any(|o| o.as_bytes().eq_ignore_ascii_case(name))
        {
            return Err(fail(format!(
                "server accepted extension {:?}, which the client did not offer",
                shown(name)
            )));
        }
        accepted
            .extensions
            .push(String::from_utf8_lossy(ext).into_owned());
    }

    let selected: Vec<&[u8]> = all("Sec-WebSocket-Protocol").collect();
    match (&selected[..], subprotocols.is_empty()) {
        ([], true) => {}
        ([], false) => return Err(fail("server selected none of the requested subprotocols")),
        ([p], true) => {
            return Err(fail(format!(
                "server selected subprotocol {:?}, but the client requested none",
                shown(p)
            )))
        }
        ([p], false) => match subprotocols.iter().find(|s| s.as_bytes() == *p) {
            Some(s) => accepted.subprotocol = s.clone(),
            None => {
                return Err(fail(format!(
                    "server selected subprotocol {:?}, which the client did not request",
                    shown(p)
                )))
            }
        },
        _ => {
            return Err(fail(
                "server sent more than one Sec-WebSocket-Protocol header",
            ))
        }
    }
    Ok(accepted)
}

/// The extension names the request offers.
pub fn offered_extensions(opts: &Options) -> Vec<&'static str> {
    match opts.compression_offer() {
        Some(_) => vec![deflate::NAME],
        None => Vec::new(),
    }
}

/// What permessage-deflate the server agreed to, from its accepted
/// extensions (already checked to be among those offered): `None` if it did
/// not accept the offer; an error for an answer it may not give (RFC 7692 §7).
pub fn deflate_agreed(opts: &Options, accepted: &Accepted) -> Result<Option<Agreed>, Error> {
    let Some(offer) = opts.compression_offer() else {
        return Ok(None);
    };
    let mut found = accepted.extensions.iter().filter(|e| {
        e.split(';')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(deflate::NAME))
    });
    let Some(element) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(fail(format!("server accepted {} twice", deflate::NAME)));
    }
    deflate::negotiate(&offer, element).map(Some).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    /// RFC 6455 §1.3's example: the accept value for KEY.
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn url(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap()
    }

    fn request(u: &str, opts: &Options) -> String {
        let r = Request::with_key(&url(u), opts, KEY).unwrap();
        assert_eq!(r.accept, ACCEPT);
        String::from_utf8(r.bytes).unwrap()
    }

    #[test]
    fn request_default() {
        assert_eq!(
            request("ws://example.com/chat?x=1", &Options::default()),
            "GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        // A port other than the scheme's default is part of Host; IPv6 in brackets.
        let r = request("wss://[::1]:8443", &Options::default());
        assert!(
            r.starts_with("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n"),
            "{r}"
        );
    }

    #[test]
    fn request_subprotocols_then_user_headers_in_order() {
        let mut o = Options::default();
        o.add_subprotocol("chat.v2").unwrap();
        o.add_subprotocol("chat.v1").unwrap();
        o.add_header("X-Trace", "1").unwrap();
        o.add_header("Authorization", "Bearer abc").unwrap();
        o.add_header("X-Trace", "2").unwrap();
        o.add_header("host", "other.example:99").unwrap();
        let r = request("ws://example.com:8080/", &o);
        assert_eq!(
            r,
            "GET / HTTP/1.1\r\nHost: other.example:99\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v2, chat.v1\r\n\
             X-Trace: 1\r\nAuthorization: Bearer abc\r\nX-Trace: 2\r\n\r\n"
        );
    }

    #[test]
    fn request_refuses_what_is_not_valid_http() {
        let mut o = Options::default();
        // Past wsb_options_add_header's checks (CR, LF, NUL), a control
        // character is still not a valid header value.
        o.headers.push(("X-Ctl".into(), "a\u{1}b".into()));
        let e = Request::with_key(&url("ws://h/"), &o, KEY).unwrap_err();
        assert_eq!(e.code, wsb_result::WSB_ERR_INVALID_ARGUMENT);
        assert!(e.detail.contains("\"X-Ctl\""), "{}", e.detail);
        let mut o = Options::default();
        o.headers.push(("Bad Name".into(), "v".into()));
        let e = Request::with_key(&url("ws://h/"), &o, KEY).unwrap_err();
        assert_eq!(e.code, wsb_result::WSB_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn fresh_keys_differ() {
        let (a, b) = (
            Request::new(&url("ws://h/"), &Options::default()).unwrap(),
            Request::new(&url("ws://h/"), &Options::default()).unwrap(),
        );
        assert_ne!(a.accept, b.accept);
    }

    #[test]
    fn head_end_found_across_pushes() {
        let mut h = ResponseHead::new();
        let bytes = b"HTTP/1.1 101 X\r\nA: b\r\n\r\n\x81\x00";
        let mut done = false;
        for (i, b) in bytes.iter().enumerate() {
            done = h.push(&[*b]).unwrap();
            assert_eq!(done, i + 1 >= bytes.len() - 2, "at {i}");
        }
        assert!(done);
        assert_eq!(h.head(), &bytes[..bytes.len() - 2]);
        assert_eq!(h.excess(), b"\x81\x00");
        // All at once, the same.
        let mut h = ResponseHead::new();
        assert!(h.push(bytes).unwrap());
        assert_eq!(h.head().len(), bytes.len() - 2);
    }

    /// A head of exactly `len` bytes.
    fn head_of(len: usize) -> Vec<u8> {
        let start = b"HTTP/1.1 101 OK\r\nX: ";
        let mut v = start.to_vec();
        v.resize(len - 4, b'a');
        v.extend_from_slice(b"\r\n\r\n");
        v
    }

    #[test]
    fn head_limit() {
        let mut h = ResponseHead::new();
        assert!(h.push(&head_of(MAX_RESPONSE_HEAD)).unwrap());
        let mut h = ResponseHead::new();
        let e = h.push(&head_of(MAX_RESPONSE_HEAD + 1)).unwrap_err();
        assert_eq!(e.code, wsb_result::WSB_ERR_HANDSHAKE);
        assert_eq!(e.detail, "server's HTTP response head is over 65536 bytes");
        // No end in sight: fails as soon as the limit is reached.
        let mut h = ResponseHead::new();
        assert!(!h.push(&[b'a'; MAX_RESPONSE_HEAD - 1]).unwrap());
        assert!(h.push(b"a").is_err());
        // Arriving in small pieces changes nothing.
        let mut h = ResponseHead::new();
        let big = head_of(MAX_RESPONSE_HEAD);
        for c in big.chunks(7) {
            let last = std::ptr::eq(c.as_ptr_range().end, big.as_ptr_range().end);
            assert_eq!(h.push(c).unwrap(), last);
        }
    }

    #[test]
    fn interim_heads_are_skipped_within_the_limit_over_all_heads() {
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        let hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
        let final_head = b"HTTP/1.1 101 X\r\nA: b\r\n\r\n";
        let mut bytes = [
            &cont[..],
            b"HTTP/1.1 102 Processing\r\n\r\n",
            hints,
            final_head,
        ]
        .concat();
        bytes.extend_from_slice(b"\x81\x00");
        for chunk in [1, 3, 7, bytes.len()] {
            let mut h = ResponseHead::new();
            let mut done = false;
            for (i, c) in bytes.chunks(chunk).enumerate() {
                done = h.push(c).unwrap();
                // Complete once the piece holding the final blank line came.
                assert_eq!(done, (i + 1) * chunk >= bytes.len() - 2, "at piece {i}");
            }
            assert!(done);
            assert_eq!(h.head(), final_head, "pieces of {chunk}");
            assert_eq!(h.interim(), 3);
            assert_eq!(h.excess(), b"\x81\x00");
        }
        // A final status other than 101 after an interim one is the answer.
        let mut h = ResponseHead::new();
        assert!(h
            .push(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 No\r\n\r\n")
            .unwrap());
        assert_eq!(
            verify(h.head(), ACCEPT, &[], &[]).unwrap_err().detail,
            "HTTP 403 from server"
        );
        // Only a head that ends at its blank line is skipped (a bare-LF
        // blank line inside it ends it early for httparse).
        let mut h = ResponseHead::new();
        assert!(h
            .push(b"HTTP/1.1 100 Continue\n\nHTTP/1.1 101 X\r\n\r\n")
            .unwrap());
        assert_eq!(h.interim(), 0);
        // A head that does not parse is not skipped: verify names its fault.
        let mut h = ResponseHead::new();
        assert!(h
            .push(b"HTTP/1.1 100 Continue\r\nBad Header: v\r\n\r\n")
            .unwrap());
        assert_eq!(h.interim(), 0);
        // The limit counts every head: exactly at it, then one byte over.
        let rest = head_of(MAX_RESPONSE_HEAD - cont.len());
        let mut h = ResponseHead::new();
        assert!(h.push(&[&cont[..], &rest].concat()).unwrap());
        assert_eq!(h.head(), &rest[..]);
        let rest = head_of(MAX_RESPONSE_HEAD - cont.len() + 1);
        let mut h = ResponseHead::new();
        assert!(h.push(&[&cont[..], &rest].concat()).is_err());
    }

    #[test]
    fn obs_folds_are_unfolded_in_the_header_section_only() {
        let u = |s: &str| String::from_utf8(unfold(s.as_bytes()).into_owned()).unwrap();
        assert!(matches!(
            unfold(b"HTTP/1.1 101 X\r\nA: b\r\n\r\n"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            u("HTTP/1.1 101 X\r\nA: b\r\n  c\r\n\td\nE: f\r\n\r\n"),
            "HTTP/1.1 101 X\r\nA: b    c  \td\nE: f\r\n\r\n"
        );
        // Not after the status line, nor after the blank line.
        let s = "HTTP/1.1 101 X\r\n A: b\r\n\r\n";
        assert_eq!(u(s), s);
        let s = "HTTP/1.1 101 X\r\nA: b\r\n\r\n x";
        assert_eq!(u(s), s);
        // A folded header the library reads is read unfolded.
        let h = ok_head("").replace("Connection: Upgrade", "Connection: keep-alive,\r\n Upgrade");
        assert!(check(&h, &[], &[]).is_ok());
        let h = ok_head("X-Folded: first part\r\n  second part\r\n");
        assert!(check(&h, &[], &[]).is_ok());
    }

    #[test]
    fn a_malformed_head_is_quoted_at_its_offending_line() {
        for (head, line) in [
            ("HTTP/2 101 X\r\nA: b\r\n\r\n", "HTTP/2 101 X"),
            (
                "HTTP/1.1 101 X\r\nA: b\r\nBad Header: v\r\nC: d\r\n\r\n",
                "Bad Header: v",
            ),
            ("HTTP/1.1 101 X\r\n stray\r\nA: b\r\n\r\n", " stray"),
            ("HTTP/1.1 101 X\r\nA: b\r\nC: \x01\r\n\r\n", "C: ?"),
        ] {
            let e = check(head, &[], &[]).unwrap_err();
            assert!(
                e.starts_with("server sent a malformed HTTP response ("),
                "{e}"
            );
            assert!(e.ends_with(&format!("): {line:?}")), "{head:?}: {e}");
        }
    }

    fn ok_head(extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
    }

    fn check(head: &str, subprotocols: &[&str], extensions: &[&str]) -> Result<Accepted, String> {
        let subs: Vec<String> = subprotocols.iter().map(|s| s.to_string()).collect();
        verify(head.as_bytes(), ACCEPT, &subs, extensions).map_err(|e| {
            assert_eq!(e.code, wsb_result::WSB_ERR_HANDSHAKE, "{}", e.detail);
            e.detail
        })
    }

    #[test]
    fn verify_accepts_a_plain_101() {
        assert_eq!(check(&ok_head(""), &[], &[]), Ok(Accepted::default()));
        // Header names and the Upgrade value in any case; whitespace around values.
        let h = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade:   WebSocket  \r\nCONNECTION: upgrade\r\n\
             sec-websocket-accept: {ACCEPT} \r\n\r\n"
        );
        assert!(check(&h, &[], &[]).is_ok());
    }

    #[test]
    fn verify_status() {
        for (head, want) in [
            ("HTTP/1.1 403 Forbidden\r\n\r\n", "HTTP 403 from server"),
            (
                "HTTP/1.0 404 Not Found\r\nX: y\r\n\r\n",
                "HTTP 404 from server",
            ),
            (
                "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n\r\n",
                "HTTP 200 from server",
            ),
            (
                "HTTP/1.1 302\r\nLocation: ws://x/\r\n\r\n",
                "HTTP 302 from server",
            ),
        ] {
            assert_eq!(check(head, &[], &[]).unwrap_err(), want);
        }
        let e = check(&ok_head("").replace("HTTP/1.1", "HTTP/1.0"), &[], &[]).unwrap_err();
        assert!(e.contains("HTTP/1.0"), "{e}");
        for bad in [
            "\x00\x01garbage\r\n\r\n",
            "HTTP/2 101 X\r\n\r\n",
            "HTTP/1.1 1O1 X\r\n\r\n",
            "HTTP/1.1 101 X\r\nBad Header: v\r\n\r\n",
        ] {
            let e = check(bad, &[], &[]).unwrap_err();
            assert!(
                e.starts_with("server sent a malformed HTTP response ("),
                "{e}"
            );
        }
        let e = check("HTTP/1.1 101 X\r\nA: b\r\n\r\n", &[], &[]).unwrap_err();
        assert!(e.contains("Upgrade"), "{e}");
    }

    #[test]
    fn verify_upgrade_header() {
        let h = ok_head("").replace("Upgrade: websocket\r\n", "");
        assert_eq!(
            check(&h, &[], &[]).unwrap_err(),
            "server's 101 response has no Upgrade header"
        );
        let h = ok_head("").replace("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(
            check(&h, &[], &[]).unwrap_err(),
            "server's 101 response has Upgrade: \"h2c\", not websocket"
        );
        let h = ok_head("Upgrade: websocket\r\n");
        assert!(check(&h, &[], &[]).is_err(), "two Upgrade headers");
    }

    #[test]
    fn verify_connection_is_a_token_list() {
        for ok in [
            "Connection: keep-alive, Upgrade",
            "Connection: upgrade",
            "Connection: UPGRADE ,keep-alive",
            "Connection: ,, Upgrade,",
            "Connection: keep-alive\r\nConnection: Upgrade",
        ] {
            let h = ok_head("").replace("Connection: Upgrade", ok);
            assert!(check(&h, &[], &[]).is_ok(), "{ok:?}");
        }
        for bad in [
            "Connection: keep-alive",
            "Connection: Upgraded",
            "Connection: keep-alive Upgrade",
            "Connection: \"Upgrade, x\"",
            "Connection:",
            "X-Connection: Upgrade",
        ] {
            let h = ok_head("").replace("Connection: Upgrade", bad);
            let e = check(&h, &[], &[]).unwrap_err();
            assert!(e.contains("no upgrade token in Connection"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn verify_accept_key() {
        let h = ok_head("").replace(ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            check(&h, &[], &[]).unwrap_err(),
            "server's Sec-WebSocket-Accept does not match the key sent"
        );
        let h = ok_head("").replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "");
        assert!(check(&h, &[], &[])
            .unwrap_err()
            .contains("no Sec-WebSocket-Accept"));
        let h = ok_head(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
        assert!(check(&h, &[], &[]).is_err(), "two Accept headers");
    }

    #[test]
    fn verify_extensions_only_among_those_offered() {
        let pmd = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
        assert_eq!(
            check(&ok_head(pmd), &[], &[]).unwrap_err(),
            "server accepted extension \"permessage-deflate\", which the client did not offer"
        );
        let h = ok_head("Sec-WebSocket-Extensions: x-foo; a=\"1,2\", permessage-deflate\r\n");
        assert!(check(&h, &[], &["permessage-deflate"])
            .unwrap_err()
            .contains("\"x-foo\""));
        // An empty list accepts nothing.
        assert!(check(&ok_head("Sec-WebSocket-Extensions: \r\n"), &[], &[]).is_ok());
        // Offered: returned as sent, parameters included, in order.
        let h = ok_head(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n\
             Sec-WebSocket-Extensions: x-foo\r\n",
        );
        let a = check(&h, &[], &["permessage-deflate", "x-foo"]).unwrap();
        assert_eq!(
            a.extensions,
            ["permessage-deflate; client_max_window_bits=10", "x-foo"]
        );
    }

    #[test]
    fn verify_subprotocol() {
        let chat = "Sec-WebSocket-Protocol: chat.v1\r\n";
        let a = check(&ok_head(chat), &["chat.v2", "chat.v1"], &[]).unwrap();
        assert_eq!(a.subprotocol, "chat.v1");
        assert_eq!(
            check(&ok_head(""), &["chat.v1"], &[]).unwrap_err(),
            "server selected none of the requested subprotocols"
        );
        assert_eq!(
            check(&ok_head(chat), &[], &[]).unwrap_err(),
            "server selected subprotocol \"chat.v1\", but the client requested none"
        );
        assert_eq!(
            check(&ok_head(chat), &["chat.v2"], &[]).unwrap_err(),
            "server selected subprotocol \"chat.v1\", which the client did not request"
        );
        // Exact match: case and lists are not a selection.
        assert!(check(&ok_head(chat), &["Chat.v1"], &[]).is_err());
        let list = "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n";
        assert!(check(&ok_head(list), &["chat.v1", "chat.v2"], &[]).is_err());
        let two = format!("{chat}{chat}");
        assert!(check(&ok_head(&two), &["chat.v1"], &[])
            .unwrap_err()
            .contains("more than one"));
    }

    #[test]
    fn list_elements_split() {
        let v = |s: &str| -> Vec<String> {
            list_elements(s.as_bytes())
                .iter()
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect()
        };
        assert_eq!(v(" a ,b,, c "), ["a", "b", "c"]);
        assert_eq!(v("a; x=\"1,\\\"2\", b"), ["a; x=\"1,\\\"2\"", "b"]);
        assert!(v(" , ").is_empty());
    }
}
