//! Certificate verification for HTTPS probes: the usual web PKI check (Mozilla's and the
//! system's roots, plus a `--cacert` bundle), and two additions curl and Hurl users expect.
//! A certificate given in the CA file that is byte for byte the server's own certificate is
//! accepted (pinning: the common `openssl req -x509` certificate is marked as a CA, which
//! the web PKI refuses as an end entity), with its dates and host name still checked. An
//! untrusted self-signed certificate is reported as such, with the way out.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::exit::{Code, CodedResult};

/// What an untrusted self-signed certificate fails with.
pub const SELF_SIGNED: &str = "self-signed certificate, not trusted: pass --cacert FILE with this certificate";

/// The certificates of a PEM file: a usage error (exit 2) when unreadable or empty.
pub fn read_pem(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display())).code(Code::Usage)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))
        .code(Code::Usage)?;
    if certs.is_empty() {
        return Err(crate::exit::error(Code::Usage, format!("{}: no certificate in file", path.display())));
    }
    Ok(certs)
}

/// A client TLS configuration (HTTP/2 and HTTP/1.1 by ALPN) that trusts the usual roots and
/// the certificates of `ca_file`, and accepts a server certificate found in `ca_file` itself.
pub fn client_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = base_roots().clone();
    let mut pinned = Vec::new();
    if let Some(path) = ca_file {
        for cert in read_pem(path)? {
            // A leaf-only or CA-marked self-signed certificate may not parse as a trust
            // anchor: it is still pinned.
            let _ = roots.add(cert.clone());
            pinned.push(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().context("TLS set-up")?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { inner, pinned }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Mozilla's roots and the system's, read once per process.
fn base_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let err = match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            check_pinned(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        // Expired or wrong-name errors say what is wrong already; "unknown issuer" or "bad
        // signature" for a self-signed certificate does not.
        let unclear = !matches!(
            err,
            Error::InvalidCertificate(
                rustls::CertificateError::Expired
                    | rustls::CertificateError::ExpiredContext { .. }
                    | rustls::CertificateError::NotValidYet
                    | rustls::CertificateError::NotValidYetContext { .. }
                    | rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )
        );
        if unclear && intermediates.is_empty() && self_signed(end_entity) {
            return Err(Error::General(SELF_SIGNED.into()));
        }
        Err(err)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A pinned certificate: still within its dates and made for this host name.
fn check_pinned(cert: &CertificateDer<'_>, name: &ServerName<'_>, now: UnixTime) -> Result<(), Error> {
    let bad = |e: rustls::CertificateError| Error::InvalidCertificate(e);
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = parsed.validity();
    if secs > validity.not_after.timestamp() {
        return Err(bad(rustls::CertificateError::Expired));
    }
    if secs < validity.not_before.timestamp() {
        return Err(bad(rustls::CertificateError::NotValidYet));
    }
    let ee = webpki::EndEntityCert::try_from(cert).map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
    ee.verify_is_valid_for_subject_name(name).map_err(|_| bad(rustls::CertificateError::NotValidForName))
}

/// Issuer and subject are the same name.
fn self_signed(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .is_ok_and(|(_, c)| c.tbs_certificate.issuer.as_raw() == c.tbs_certificate.subject.as_raw())
}
