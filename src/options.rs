//! Connection options: a plain config struct with builder-style setters that
//! validate their input. `wsb_connect` takes a snapshot (clone), so the
//! caller may free its options right after.

use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

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
}
