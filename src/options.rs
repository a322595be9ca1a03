//! Connection options: a plain config struct with builder-style setters that
//! validate their input. `wsb_connect` takes a snapshot (clone), so the
//! caller may free its options right after.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{wsb_result, Error, Result};
use crate::protocol::deflate;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
pub const DEFAULT_SEND_QUEUE_LIMIT: usize = 64 << 20;
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Header names the library writes itself; callers may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
];

#[derive(Debug, Clone)]
pub struct Options {
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    pub connect_timeout: Duration,
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub verify_tls: bool,
    pub max_message_size: usize,
    pub send_queue_limit: usize,
    pub ping_interval: Option<Duration>,
    pub pong_timeout: Duration,
    pub close_timeout: Duration,
    /// Also trust the operating system's certificate store.
    pub native_roots: bool,
    /// Tunnel through this HTTP proxy (CONNECT).
    pub proxy: Option<Proxy>,
    /// Offer permessage-deflate (with `deflate_offer`'s parameters).
    pub compression: bool,
    pub deflate_offer: deflate::Offer,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            headers: Vec::new(),
            subprotocols: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_roots: Vec::new(),
            verify_tls: true,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            send_queue_limit: DEFAULT_SEND_QUEUE_LIMIT,
            ping_interval: None,
            pong_timeout: Duration::ZERO,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            native_roots: false,
            proxy: None,
            compression: false,
            deflate_offer: deflate::Offer::default(),
        }
    }
}

/// RFC 7230 `token` characters (header names, subprotocol names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        if !is_token(name) {
            return Err(Error::invalid_argument(format!(
                "header name {name:?} is not a valid HTTP token"
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::invalid_argument(format!(
                "header {name:?}: value contains CR, LF or NUL"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            let hint = if lower == "sec-websocket-protocol" {
                " (use wsb_options_add_subprotocol)"
            } else {
                ""
            };
            return Err(Error::invalid_argument(format!(
                "header {name:?} is set by the library{hint}"
            )));
        }
        self.headers
            .push((name.to_string(), value.trim().to_string()));
        Ok(())
    }

    pub fn add_subprotocol(&mut self, protocol: &str) -> Result<()> {
        if !is_token(protocol) {
            return Err(Error::invalid_argument(format!(
                "subprotocol {protocol:?} is not a valid token"
            )));
        }
        if !self.subprotocols.iter().any(|p| p == protocol) {
            self.subprotocols.push(protocol.to_string());
        }
        Ok(())
    }

    /// 0 means the default (10 s).
    pub fn connect_timeout(&mut self, ms: u32) {
        self.connect_timeout = if ms == 0 {
            DEFAULT_CONNECT_TIMEOUT
        } else {
            Duration::from_millis(ms.into())
        };
    }

    /// Parse every CERTIFICATE block of `pem`; add them all or none.
    pub fn add_root_certificates(&mut self, pem: &[u8]) -> Result<()> {
        let mut found = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let der = item
                .map_err(|e| Error::invalid_argument(format!("bad PEM certificate data: {e}")))?;
            // Parse the DER as X.509 the same way the verifier will.
            let mut probe = rustls::RootCertStore::empty();
            probe.add(der.clone()).map_err(|e| {
                Error::invalid_argument(format!("PEM block is not an X.509 certificate: {e}"))
            })?;
            found.push(der);
        }
        if found.is_empty() {
            return Err(Error::invalid_argument(
                "no CERTIFICATE block found in PEM data",
            ));
        }
        self.extra_roots.extend(found);
        Ok(())
    }

    pub fn verify_tls(&mut self, verify: bool) {
        self.verify_tls = verify;
    }

    pub fn max_message_size(&mut self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid_argument(
                "max message size must be at least 1 byte",
            ));
        }
        self.max_message_size = bytes;
        Ok(())
    }

    pub fn send_queue_limit(&mut self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid_argument(
                "send queue limit must be at least 1 byte",
            ));
        }
        self.send_queue_limit = bytes;
        Ok(())
    }

    /// `ping_interval_ms` 0 turns keepalive off. A pong timeout of 0 with a
    /// non-zero interval means "one interval".
    pub fn keepalive(&mut self, ping_interval_ms: u32, pong_timeout_ms: u32) {
        if ping_interval_ms == 0 {
            self.ping_interval = None;
            self.pong_timeout = Duration::ZERO;
        } else {
            let interval = Duration::from_millis(ping_interval_ms.into());
            self.ping_interval = Some(interval);
            self.pong_timeout = if pong_timeout_ms == 0 {
                interval
            } else {
                Duration::from_millis(pong_timeout_ms.into())
            };
        }
    }

    /// 0 means the default (5 s).
    pub fn close_timeout(&mut self, ms: u32) {
        self.close_timeout = if ms == 0 {
            DEFAULT_CLOSE_TIMEOUT
        } else {
            Duration::from_millis(ms.into())
        };
    }

    pub fn native_roots(&mut self, on: bool) {
        self.native_roots = on;
    }

    /// The permessage-deflate offer, if compression is on.
    pub fn compression_offer(&self) -> Option<deflate::Offer> {
        self.compression.then_some(self.deflate_offer)
    }

    pub fn compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// Window bits 9..=15, or 0: do not send the parameter.
    pub fn compression_params(
        &mut self,
        client_max_window_bits: u8,
        server_max_window_bits: u8,
        client_no_context_takeover: bool,
        server_no_context_takeover: bool,
    ) -> Result<()> {
        let bits = |name: &str, b: u8| match b {
            0 => Ok(None),
            9..=15 => Ok(Some(b)),
            _ => Err(Error::invalid_argument(format!(
                "{name} must be 9 to 15, or 0 to leave it out (got {b})"
            ))),
        };
        self.deflate_offer = deflate::Offer {
            client_max_window_bits: bits("client_max_window_bits", client_max_window_bits)?,
            server_max_window_bits: bits("server_max_window_bits", server_max_window_bits)?,
            client_no_context_takeover,
            server_no_context_takeover,
        };
        Ok(())
    }

    /// `http://[user[:password]@]host[:port][/]`; "" removes the proxy.
    pub fn proxy(&mut self, url: &str) -> Result<()> {
        self.proxy = if url.is_empty() {
            None
        } else {
            Some(Proxy::parse(url)?)
        };
        Ok(())
    }
}

/// An HTTP proxy reached with CONNECT, parsed from
/// `http://[user[:password]@]host[:port][/]` (port 80 by default).
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Host as written, without IPv6 brackets, lower-cased.
    pub host: String,
    /// `Some` when the host is an IP literal (no DNS lookup).
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The `Proxy-Authorization` value (`Basic ...`) built from the user info.
    pub authorization: Option<String>,
}

impl fmt::Debug for Proxy {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("authority", &self.authority())
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
}

fn bad_proxy(shown: &str, why: &str) -> Error {
    Error::new(
        wsb_result::WSB_ERR_INVALID_URL,
        format!("invalid proxy URL {shown:?}: {why}"),
    )
}

impl Proxy {
    pub fn parse(url: &str) -> Result<Proxy> {
        // Never echo a password back in an error detail.
        let shown = match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
            _ => url.to_string(),
        };
        let shown: String = shown.chars().take(200).collect();
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad_proxy(
                &shown,
                "contains whitespace or control characters",
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad_proxy(&shown, "expected http://host:port"))?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(bad_proxy(
                &shown,
                "https:// proxies (TLS to the proxy) are not supported; use http://",
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad_proxy(
                &shown,
                &format!("scheme {scheme:?} is not supported (only http:// proxies)"),
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad_proxy(
                &shown,
                "a proxy URL has no path, query or fragment",
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let authorization = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user)
                    .ok_or_else(|| bad_proxy(&shown, "bad %-escape in the user name"))?;
                let pass = percent_decode(pass)
                    .ok_or_else(|| bad_proxy(&shown, "bad %-escape in the password"))?;
                if user.is_empty() {
                    return Err(bad_proxy(&shown, "empty user name"));
                }
                if user.contains(&b':') {
                    return Err(bad_proxy(&shown, "the user name contains ':'"));
                }
                let mut cred = user;
                cred.push(b':');
                cred.extend_from_slice(&pass);
                Some(format!("Basic {}", base64(&cred)))
            }
        };
        let (host, ip, port) = crate::connect::url::parse_host_port(hostport, 80)
            .map_err(|why| bad_proxy(&shown, &why))?;
        Ok(Proxy {
            host,
            ip,
            port,
            authorization,
        })
    }

    /// `host:port` of the proxy (IPv6 in brackets), for messages.
    pub fn authority(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// RFC 3986 percent-decoding; None on a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i:?}");
        }
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://127.0.0.1:3128").unwrap();
        assert_eq!(
            (p.authority(), p.authorization),
            ("127.0.0.1:3128".into(), None)
        );
        let p = Proxy::parse("HTTP://Proxy.Example:8080/").unwrap();
        assert_eq!(
            (p.host.as_str(), p.ip, p.port),
            ("proxy.example", None, 8080)
        );
        let p = Proxy::parse("http://[::1]").unwrap();
        assert_eq!(p.authority(), "[::1]:80");
        let p = Proxy::parse("http://us%40er:p%3Ass@h:1").unwrap();
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"us@er:p:ss")).as_str())
        );
        let p = Proxy::parse("http://user@h:1").unwrap();
        assert_eq!(
            p.authorization.unwrap(),
            format!("Basic {}", base64(b"user:"))
        );
        assert!(!format!("{:?}", Proxy::parse("http://u:secret@h:1").unwrap()).contains("secret"));
        for bad in [
            "127.0.0.1:3128",
            "https://h:443",
            "socks5://h:1080",
            "ws://h:1",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:x",
            "http://h:1/path",
            "http://h:1?q",
            "http://[::1",
            "http://[zz]:1",
            "http://h h:1",
            "http://ho$t:1",
            "http://:pw@h:1",
            "http://u%zz:pw@h:1",
        ] {
            let e = Proxy::parse(bad).unwrap_err();
            assert_eq!(e.code, wsb_result::WSB_ERR_INVALID_URL, "{bad}");
        }
        let e = Proxy::parse("http://u:topsecret@h:0").unwrap_err();
        assert!(!e.detail.contains("topsecret"), "{}", e.detail);
    }
}
