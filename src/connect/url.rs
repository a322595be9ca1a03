//! `ws://` / `wss://` URL parsing (RFC 6455 §3), done here so every failure is
//! reported by `wsb_connect` itself with a precise detail.

use std::net::IpAddr;

use crate::error::{wsb_result, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub tls: bool,
    /// Host as written, without IPv6 brackets, lower-cased.
    pub host: String,
    /// `Some` when the host is an IP literal (no DNS, no SNI).
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// Path and query, starting with '/', as sent on the request line: every
    /// byte >= 0x80 of the URL percent-encoded (see [`encode_non_ascii`]).
    /// The fragment is dropped.
    pub resource: String,
}

fn bad(detail: String) -> Error {
    Error::new(wsb_result::WSB_ERR_INVALID_URL, detail)
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<WsUrl> {
        let shown: String = if url.len() > 200 {
            format!("{}...", &url[..url.floor_char_boundary_compat(200)])
        } else {
            url.to_string()
        };
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad(format!(
                "invalid URL {shown:?}: contains whitespace or control characters"
            )));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad(format!(
                "invalid URL {shown:?}: expected ws://host[:port][/path]"
            ))
        })?;
        let tls = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(bad(format!(
                "invalid URL {shown:?}: scheme {scheme:?} is not ws or wss"
            )));
        };
        // Drop the fragment, then split authority from path+query.
        let rest = rest.split('#').next().unwrap_or("");
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(auth_end);
        // User info is not sent (browsers ignore it too); use a header for auth.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let default_port = if tls { 443 } else { 80 };
        let (host, ip, port) = parse_host_port(hostport, default_port)
            .map_err(|why| bad(format!("invalid URL {shown:?}: {why}")))?;
        let resource = encode_non_ascii(resource);
        let resource = if resource.is_empty() {
            "/".to_string()
        } else if resource.starts_with('?') {
            format!("/{resource}")
        } else {
            resource
        };
        let url = WsUrl {
            tls,
            host,
            ip,
            port,
            resource,
        };
        // The request line must also be acceptable to the HTTP layer (it
        // limits the length, among others): report that here, not later.
        tungstenite::http::Uri::try_from(url.request_uri())
            .map_err(|e| bad(format!("invalid URL {shown:?}: {e}")))?;
        Ok(url)
    }

    /// The `Host` header value / authority as sent on the wire.
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL to hand to the HTTP request builder (no user info, no fragment).
    pub fn request_uri(&self) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "wss" } else { "ws" },
            self.authority(),
            self.resource
        )
    }
}

/// Percent-encodes every byte >= 0x80 (`café` -> `caf%C3%A9`, uppercase hex
/// as browsers do): a request target must be ASCII (RFC 3986, RFC 9112), and
/// servers drop a request line with raw UTF-8 in it. ASCII, existing `%XX`
/// escapes included, is kept as it is.
pub fn encode_non_ascii(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii() {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

/// `host[:port]` or `[v6]:port` (no user info): the lower-cased host, its IP
/// if it is a literal, and the port (`default_port` if none). Shared by the
/// ws/wss URL and the proxy URL parsers; the error says what is wrong.
pub fn parse_host_port(
    hostport: &str,
    default_port: u16,
) -> std::result::Result<(String, Option<IpAddr>, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unterminated IPv6 literal")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after IPv6 literal")?),
        };
        (h, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    let ip = host.parse::<IpAddr>().ok();
    if hostport.starts_with('[') && !matches!(ip, Some(IpAddr::V6(_))) {
        return Err("bad IPv6 literal".into());
    }
    if ip.is_none() {
        let ok = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok || host.len() > 253 {
            return Err(format!("bad host name {host:?}"));
        }
    }
    Ok((host.to_ascii_lowercase(), ip, port))
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let u = WsUrl::parse("ws://127.0.0.1:9001/echo?x=1#frag").unwrap();
        assert_eq!(
            (u.tls, u.port, u.resource.as_str()),
            (false, 9001, "/echo?x=1")
        );
        assert!(u.ip.is_some());
        let u = WsUrl::parse("WSS://User:pw@Example.com").unwrap();
        assert_eq!(
            (u.tls, u.port, u.host.as_str(), u.resource.as_str()),
            (true, 443, "example.com", "/")
        );
        assert_eq!(u.request_uri(), "wss://example.com/");
        let u = WsUrl::parse("ws://[::1]:8080/a").unwrap();
        assert_eq!(u.request_uri(), "ws://[::1]:8080/a");
        let u = WsUrl::parse("ws://h?q").unwrap();
        assert_eq!(u.resource, "/?q");
    }

    #[test]
    fn percent_encodes_non_ascii_in_path_and_query() {
        let u = WsUrl::parse("ws://h/caf\u{e9}?q=\u{20ac}").unwrap();
        assert_eq!(u.resource, "/caf%C3%A9?q=%E2%82%AC");
        assert_eq!(u.request_uri(), "ws://h/caf%C3%A9?q=%E2%82%AC");
        // Existing escapes and all ASCII are kept; only the raw bytes change.
        let u =
            WsUrl::parse("ws://h/a%20b/%c3%a9/\u{e9}?x=%E2%82%AC&y=\u{1f600}#fr\u{e9}").unwrap();
        assert_eq!(
            u.resource,
            "/a%20b/%c3%a9/%C3%A9?x=%E2%82%AC&y=%F0%9F%98%80"
        );
        // A query without a path, and a non-ASCII user name (not sent).
        let u = WsUrl::parse("ws://\u{fc}ser@h:81?\u{e9}").unwrap();
        assert_eq!((u.port, u.resource.as_str()), (81, "/?%C3%A9"));
        let ascii = "/echo?a=1&b=%41~!$'()*+,;=:@/?";
        assert_eq!(
            WsUrl::parse(&format!("ws://h{ascii}")).unwrap().resource,
            ascii
        );
        assert_eq!(encode_non_ascii(""), "");
        assert_eq!(encode_non_ascii("\u{7f}\u{80}\u{ff}"), "\u{7f}%C2%80%C3%BF");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://x/",
            "ws:/x",
            "ws://",
            "ws://:80/",
            "ws://h:0/",
            "ws://h:70000/",
            "ws://h:x/",
            "ws://[::1/",
            "ws://[zz]/",
            "ws://a b/",
            "ws://h/\n",
            "",
            "ws://ho$t/",
            // Only the path and query are percent-encoded, never the host.
            "ws://caf\u{e9}.example/",
        ] {
            let e = WsUrl::parse(bad).unwrap_err();
            assert_eq!(e.code, wsb_result::WSB_ERR_INVALID_URL, "{bad}");
        }
    }
}
