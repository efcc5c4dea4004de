//! Which server certificates the CLI and the daemon trust: Mozilla's roots
//! (the `webpki-root-certs` list, as before) plus every certificate in the
//! PEM file named by `SSL_CERT_FILE`, the variable OpenSSL, Python and most
//! tools honour. Verification is never turned off.
//!
//! One list for both HTTP (ureq) and the WebSocket (tokio-tungstenite), so
//! the two cannot disagree about a server. The daemon reads `SSL_CERT_FILE`
//! from its own environment: the CLI passes its environment on when it
//! spawns the daemon; a systemd or launchd unit must set it itself.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// The variable naming an extra PEM file of trusted certificates.
pub const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

/// Why the trusted certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{var}={path}: {reason}")]
    CertFile {
        var: &'static str,
        path: String,
        reason: String,
    },
    #[error("TLS client configuration: {0}")]
    Config(String),
}

/// Mozilla's roots plus the certificates of `SSL_CERT_FILE` when it is set
/// (an unreadable file or one without a certificate is an error, not a
/// silent fall-back, so a typo does not look like a server problem).
pub fn trusted_roots() -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec();
    if let Some(path) = std::env::var_os(CERT_FILE_VAR).filter(|p| !p.is_empty()) {
        roots.extend(certs_from_file(&PathBuf::from(path))?);
    }
    Ok(roots)
}

fn certs_from_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::CertFile {
        var: CERT_FILE_VAR,
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// A rustls client configuration (ring, as ureq uses) trusting
/// [`trusted_roots`], for the daemon's WebSocket.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    // Mozilla's list has a few roots webpki cannot parse; skip those, but
    // a certificate of SSL_CERT_FILE that does not parse is the user's
    // problem to hear about.
    let roots = trusted_roots()?;
    let extra_from = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
    for (i, cert) in roots.into_iter().enumerate() {
        if let Err(e) = store.add(cert) {
            if i >= extra_from {
                return Err(TlsError::CertFile {
                    var: CERT_FILE_VAR,
                    path: std::env::var(CERT_FILE_VAR).unwrap_or_default(),
                    reason: format!("certificate {} is not usable: {e}", i - extra_from + 1),
                });
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// ureq's TLS settings from [`trusted_roots`], for the CLI's login and
/// the daemon's HTTP calls. A bad `SSL_CERT_FILE` falls back to Mozilla's
/// roots here; callers report it (the daemon at session start, the CLI
/// before logging in) so it is never silently ignored.
#[cfg(feature = "ureq")]
pub fn ureq_tls_config() -> ureq::tls::TlsConfig {
    let roots = match trusted_roots() {
        Ok(roots) => ureq::tls::RootCerts::new_with_certs(
            &roots
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>(),
        ),
        Err(_) => ureq::tls::RootCerts::WebPki,
    };
    ureq::tls::TlsConfig::builder().root_certs(roots).build()
}

/// The reason a certificate was refused, in words: rustls says
/// `invalid peer certificate: UnknownIssuer`; users read "certificate
/// signed by an unknown authority". `None` when `msg` is not about a
/// certificate.
pub fn explain_certificate_error(msg: &str) -> Option<&'static str> {
    let reasons = [
        (
            "UnknownIssuer",
            "certificate signed by an unknown authority",
        ),
        (
            "NotValidForName",
            "certificate is not valid for this host name",
        ),
        ("Expired", "certificate has expired"),
        ("NotValidYet", "certificate is not valid yet"),
        ("Revoked", "certificate has been revoked"),
        ("BadSignature", "certificate has a bad signature"),
    ];
    reasons
        .iter()
        .find(|(k, _)| msg.contains(k))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "not pem\n").unwrap();
        let e = certs_from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("SSL_CERT_FILE") && e.contains("empty.pem"),
            "{e}"
        );
        let e = certs_from_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }

    #[test]
    fn unknown_issuer_is_said_in_words() {
        assert_eq!(
            explain_certificate_error("invalid peer certificate: UnknownIssuer"),
            Some("certificate signed by an unknown authority")
        );
        assert_eq!(explain_certificate_error("connection refused"), None);
    }
}
