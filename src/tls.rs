//! TLS client configuration: rustls with the ring provider (set explicitly,
//! never the process default), webpki-roots plus roots added by option, and an
//! opt-out verifier for testing.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Code, Error, Result};
use crate::options::Options;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The default config (webpki roots only) is shared by every socket that adds
/// nothing, so a plain `wss://` connect does not rebuild the root store.
fn default_config() -> Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = DEFAULT.get() {
        return Ok(c.clone());
    }
    let c = build(&[], true)?;
    Ok(DEFAULT.get_or_init(|| c).clone())
}

fn build(extra_roots: &[CertificateDer<'static>], verify: bool) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(Code::WSB_ERR_TLS, format!("TLS setup: {e}")))?;
    let mut config = if verify {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra_roots {
            roots
                .add(der.clone())
                .map_err(|e| Error::new(Code::WSB_ERR_TLS, format!("bad root certificate: {e}")))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
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
        default_config()
    } else {
        build(&opts.extra_roots, opts.verify_tls)
    }
}

/// `ServerName` for the URL host: an IP literal gives an IP name (rustls then
/// sends no SNI), anything else a DNS name.
pub fn server_name(host: &str, ip: Option<std::net::IpAddr>) -> Result<ServerName<'static>> {
    match ip {
        Some(ip) => Ok(ServerName::IpAddress(ip.into())),
        None => ServerName::try_from(host.to_string()).map_err(|e| {
            Error::new(
                Code::WSB_ERR_INVALID_URL,
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
