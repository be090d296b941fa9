//! TLS with rustls from PEM files. The certificate is served through a resolver whose key can be
//! swapped while running: `reload` (on SIGHUP) reads the files again and new handshakes use the
//! new certificate; established connections keep theirs, none is dropped. A reload that fails
//! (missing file, key not matching) keeps the old certificate and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("the private key in {path} is not usable: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// Loads a certificate chain and its key from PEM files.
///
/// # Errors
/// Unreadable files, no certificate or key in them, or an unsupported key type.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| TlsError::Read { path: p.to_path_buf(), source: e });
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut cert_pem.as_slice()).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_path_buf() });
    }
    let key_pem = read(key)?;
    let der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey { path: key.to_path_buf() })?;
    let signing =
        any_supported_type(&der).map_err(|e| TlsError::BadKey { path: key.to_path_buf(), reason: e.to_string() })?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| TlsError::BadKey { path: key.to_path_buf(), reason: e.to_string() })?;
    Ok(ck)
}

/// The certificate currently served, swappable.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// # Errors
    /// As `load_certified_key`.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Result<Arc<ReloadableCert>, TlsError> {
        let ck = load_certified_key(&cert_file, &key_file)?;
        Ok(Arc::new(ReloadableCert { cert_file, key_file, current: RwLock::new(Arc::new(ck)) }))
    }

    /// Reads the files again and serves the new certificate to new connections.
    ///
    /// # Errors
    /// As `load_certified_key`; the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = Arc::new(load_certified_key(&self.cert_file, &self.key_file)?);
        if let Ok(mut cur) = self.current.write() {
            *cur = ck;
        }
        Ok(())
    }

    /// The rustls server configuration that serves this certificate (HTTP/1.1).
    ///
    /// # Errors
    /// When rustls cannot build a configuration with the ring provider.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}
