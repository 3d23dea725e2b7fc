//! TLS of the admission listener: rustls with a certificate that is re-read when its files
//! change (cert-manager rotates the Secret; the kubelet updates the mounted files), and — unless
//! turned off on purpose — verification of the API server's client certificate, so that only
//! the API server can send reviews (whose namespace and pull-secret claims Gantry acts on).
//! The connections themselves are served by [`crate::listener::serve`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

/// How often the certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("certificate and key do not form a usable pair: {0}")]
    Key(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a PEM certificate chain and its private key.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no certificate in the file".to_string()));
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_err(key, format!("not a PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key_der, &provider)?;
    Ok(Arc::new(certified))
}

/// Serves the current certificate; [`ReloadingCert::watch`] swaps in a new one when the files
/// change. A bad new pair is logged and the old one kept: a half-written rotation must not
/// take the webhook down.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Loads the pair now (an error stops startup).
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<ReloadingCert>, TlsError> {
        let current = load(cert, key)?;
        Ok(Arc::new(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(current),
        }))
    }

    fn stamp(&self) -> Option<(SystemTime, SystemTime)> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.cert)?, m(&self.key)?))
    }

    /// Checks the files every few seconds until `stop` resolves.
    pub async fn watch(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let mut seen = self.stamp();
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            let now = self.stamp();
            if now.is_none() || now == seen {
                continue;
            }
            match load(&self.cert, &self.key) {
                Ok(fresh) => {
                    if let Ok(mut current) = self.current.write() {
                        *current = fresh;
                        seen = now;
                        tracing::info!(cert = %self.cert.display(), "admission certificate reloaded");
                    }
                }
                Err(e) => {
                    // Often the cert is written before the key: the next check sees both.
                    tracing::warn!(error = %e, "new admission certificate not usable yet; keeping the current one");
                }
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// Who may connect to the admission listener.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A client certificate signed by `ca` is required; with `names`, it must also carry one
    /// of them as a DNS subject alternative name.
    Verify { ca: PathBuf, names: Vec<String> },
    /// Any client (configured so on purpose).
    Anyone,
}

/// A TLS server config over `cert` (HTTP/1.1 only: what the API server's webhook client needs).
pub fn server_config(
    cert: Arc<ReloadingCert>,
    clients: &ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match clients {
        ClientAuth::Anyone => builder.with_no_client_auth(),
        ClientAuth::Verify { ca, names } => {
            let pem = read(ca)?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| TlsError::Pem {
                    path: ca.clone(),
                    message: format!("not a PEM certificate bundle: {e}"),
                })?;
                roots.add(c)?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: ca.clone(),
                    message: "no certificate in the file".to_string(),
                });
            }
            let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Pem {
                    path: ca.clone(),
                    message: format!("unusable client CA: {e}"),
                })?;
            builder.with_client_cert_verifier(Arc::new(NamedClients {
                inner,
                names: names.clone(),
            }))
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA's verdict on a client certificate, then the configured names. webpki checks DNS
/// subject alternative names only (not the CN), which is what certificates made today carry.
#[derive(Debug)]
struct NamedClients {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl ClientCertVerifier for NamedClients {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.names.is_empty() {
            return Ok(verified);
        }
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let named = self.names.iter().any(|n| {
            ServerName::try_from(n.as_str())
                .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
        });
        if named {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
