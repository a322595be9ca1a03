//! TLS client configuration: rustls with the ring provider (set explicitly,
//! never the process default), webpki-roots plus roots added by option (and,
//! on request, the OS store via rustls-native-certs), and an opt-out verifier
//! for testing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use std::io;

use mio::net::TcpStream;

use super::{Stop, Waiter};
use crate::error::{wsb_result, Error, Result};
use crate::log::log;
use crate::options::Options;
use crate::stats::Stats;
use crate::transport::{read_raw, RxBuf, Transport};

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The default config (webpki roots only) is shared by every socket that adds
/// nothing, so a plain `wss://` connect does not rebuild the root store; the
/// same for webpki + the OS store.
fn shared_config(native: bool) -> Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static NATIVE: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let cell = if native { &NATIVE } else { &DEFAULT };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let c = build(&[], true, native)?;
    Ok(cell.get_or_init(|| c).clone())
}

/// The OS trust store, read once per process (at the first connect that asks
/// for it): the certificates found, and a one-line note if something could
/// not be read (reported in the detail of a TLS failure).
struct NativeRoots {
    certs: Vec<CertificateDer<'static>>,
    problem: Option<String>,
}

fn native_roots() -> &'static NativeRoots {
    static NATIVE: OnceLock<NativeRoots> = OnceLock::new();
    NATIVE.get_or_init(|| {
        // The loader may panic on odd store entries: contain it here.
        match catch_unwind(AssertUnwindSafe(rustls_native_certs::load_native_certs)) {
            Ok(r) => {
                let problem = r.errors.first().map(|e| {
                    let mut p = e.to_string();
                    if r.certs.is_empty() {
                        p.push_str(" (no certificate loaded)");
                    }
                    p
                });
                let problem = match problem {
                    None if r.certs.is_empty() => Some("the OS store has no certificate".into()),
                    p => p,
                };
                NativeRoots {
                    certs: r.certs,
                    problem,
                }
            }
            Err(_) => NativeRoots {
                certs: Vec::new(),
                problem: Some("reading the OS store panicked".into()),
            },
        }
    })
}

/// Why the OS store (wsb_options_set_native_roots) gave fewer certificates
/// than expected, if it did: appended to the detail of a TLS failure.
pub fn native_roots_problem() -> Option<&'static str> {
    native_roots().problem.as_deref()
}

fn build(
    extra_roots: &[CertificateDer<'static>],
    verify: bool,
    native: bool,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(wsb_result::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
    let mut config = if verify {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if native {
            // Entries that do not parse are skipped, as OpenSSL does.
            roots.add_parsable_certificates(native_roots().certs.iter().cloned());
        }
        for der in extra_roots {
            roots.add(der.clone()).map_err(|e| {
                Error::new(
                    wsb_result::WSB_ERR_TLS,
                    format!("bad root certificate: {e}"),
                )
            })?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::new(wsb_result::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Logged(webpki)))
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth()
    };
    // WebSocket over TLS never negotiates ALPN h2; leave ALPN empty.
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

pub fn client_config(opts: &Options) -> Result<Arc<ClientConfig>> {
    if opts.verify_tls && opts.extra_roots.is_empty() {
        shared_config(opts.native_roots)
    } else {
        build(&opts.extra_roots, opts.verify_tls, opts.native_roots)
    }
}

/// `ServerName` for the URL host: an IP literal gives an IP name (rustls then
/// sends no SNI), anything else a DNS name.
pub fn server_name(host: &str, ip: Option<std::net::IpAddr>) -> Result<ServerName<'static>> {
    match ip {
        Some(ip) => Ok(ServerName::IpAddress(ip.into())),
        None => ServerName::try_from(host.to_string()).map_err(|e| {
            Error::new(
                wsb_result::WSB_ERR_INVALID_URL,
                format!("bad TLS server name {host:?}: {e}"),
            )
        }),
    }
}

/// Accepts any certificate but still checks handshake signatures, so the
/// connection is encrypted even though the peer is not authenticated.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The verifier `with_root_certificates` would make (webpki, the same roots
/// and provider), which also logs the certificate it rejects: its subject,
/// issuer and validity (the failure itself is the socket's ERROR line). It
/// runs on the socket's I/O thread, which knows its socket.
#[derive(Debug)]
struct Logged(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Logged {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(e) = &verified {
            let socket = crate::notify::current_io_socket().unwrap_or(0);
            log!(
                Info,
                socket,
                "server certificate rejected ({e}): {}",
                describe_certificate(end_entity)
            );
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `subject "CN=example.com", issuer "CN=Some CA", valid 2026-01-01 to
/// 2027-01-01` (or why the certificate does not parse).
pub fn describe_certificate(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let validity = cert.validity();
            format!(
                "subject {:?}, issuer {:?}, valid {} to {}",
                cert.subject().to_string(),
                cert.issuer().to_string(),
                validity.not_before,
                validity.not_after
            )
        }
        Err(e) => format!("a certificate that does not parse ({e})"),
    }
}

/// Drive the TLS handshake on the connected `sock` to its end, waiting on
/// the Waiter (so close, shutdown and the connect timeout interrupt it).
pub(super) fn tls_handshake(
    sock: &TcpStream,
    t: &mut Transport,
    w: &mut Waiter<'_>,
    stats: &Stats,
) -> std::result::Result<(), Stop> {
    let mut buf = RxBuf::new();
    loop {
        match t.drive_tls_handshake() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(tls_error(e).into()),
        }
        loop {
            let r = read_raw(sock, &mut buf, stats).map_err(tls_error)?;
            if r.bytes > 0 || r.eof {
                t.supply(&mut buf, r.eof);
                break;
            }
            w.wait("TLS handshake")?;
        }
    }
}

pub(super) fn tls_error(e: io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Error::new(wsb_result::WSB_ERR_TLS, inner.to_string());
    }
    Error::new(wsb_result::WSB_ERR_TLS, format!("TLS handshake: {e}"))
}
