//! TLS for the reference server: `--tls` makes a throw-away certificate
//! authority and a server certificate for `127.0.0.1` and `localhost` at
//! start (rcgen), or `--cert`/`--key` take PEM files; `--ca-out` writes the
//! CA certificate so clients can trust it with `SSL_CERT_FILE`.
//!
//! The handshake runs inside the connection ([`MaybeTls`]), not in the
//! accept loop, so one slow or refusing client never holds up the others.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

use crate::config::Config;

/// The server's TLS configuration from the flags, or `None` for plain HTTP.
pub fn server_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (chain, key) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
        (None, None) if config.tls => {
            let (ca_pem, chain, key) = throwaway_ca_and_cert()?;
            if let Some(out) = &config.ca_out {
                std::fs::write(out, ca_pem)
                    .with_context(|| format!("--ca-out {}: cannot write", out.display()))?;
            }
            (chain, key)
        }
        (None, None) => return Ok(None),
        _ => anyhow::bail!("--cert and --key go together"),
    };
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("--cert/--key: the key does not fit the certificate")?;
    Ok(Some(Arc::new(server)))
}

/// A fresh CA and a server certificate it signs for 127.0.0.1 and
/// localhost: (CA PEM, server chain, server key).
fn throwaway_ca_and_cert(
) -> anyhow::Result<(String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own per run: two throw-away CAs with one name would
    // look like one CA with a bad signature rather than an unknown one.
    ca.distinguished_name.push(
        DnType::CommonName,
        format!(
            "spec-kitty-refserver throw-away CA {:016x}",
            fastrand::u64(..)
        ),
    );
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    // rcgen makes "127.0.0.1" an IP-address name, which is what clients check.
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "spec-kitty-refserver");
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &ca)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(anyhow::Error::msg)?;
    Ok((ca.pem(), vec![cert.der().clone()], key))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--cert {}: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--cert {}: no PEM certificate in the file",
        path.display()
    );
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow::anyhow!("--key {}: no usable PEM private key ({e})", path.display()))
}

/// A connection that is plain, or TLS whose handshake finishes on first use.
pub enum MaybeTls<S> {
    Plain(S),
    Handshaking(Box<Accept<S>>),
    Tls(Box<TlsStream<S>>),
    Failed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    pub fn new(stream: S, tls: Option<&TlsAcceptor>) -> Self {
        match tls {
            Some(acceptor) => MaybeTls::Handshaking(Box::new(acceptor.accept(stream))),
            None => MaybeTls::Plain(stream),
        }
    }

    /// Drives the handshake; `Ready(Ok)` once the stream is usable.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let MaybeTls::Handshaking(accept) = self {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(tls)) => *self = MaybeTls::Tls(Box::new(tls)),
                Poll::Ready(Err(e)) => {
                    *self = MaybeTls::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self {
            MaybeTls::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut *self {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            _ => unreachable!("poll_ready returned Ok"),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut *self {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            _ => unreachable!("poll_ready returned Ok"),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut *self {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            _ => unreachable!("poll_ready returned Ok"),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            // Nothing was established: nothing to close politely.
            _ => Poll::Ready(Ok(())),
        }
    }
}
