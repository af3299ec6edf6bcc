//! TLS with rustls: termination on a listener (certificates from files, chosen by SNI, ALPN
//! `h2` and `http/1.1`, reloaded when the files change without touching open connections) and
//! the client configuration for TLS to upstream instances.
//!
//! A reload that fails (a file missing, not PEM, a key that does not match its certificate)
//! keeps the certificates in use and is reported as the listener's problem until the files
//! change again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use switchyard_core::manifest::app::{ListenerTls, UpstreamTls};
use tokio_rustls::TlsAcceptor;

/// Why TLS files could not be used; names the file and what is wrong with it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    #[error("{path}: cannot be read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {what}")]
    Content { path: PathBuf, what: String },
    #[error("{cert} and {key}: {what}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        what: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// *ring*: a lean build (aws-lc-rs would add post-quantum key exchange and a C toolchain
/// build of its own). rustls marks the *ring* provider deprecated for that reason only.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let content = |what: String| TlsError::Content {
        path: path.to_owned(),
        what,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            "no certificate (`BEGIN CERTIFICATE`) in the file".into(),
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Content {
        path: path.to_owned(),
        what: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })
}

/// The certificates of a listener, each with its key, checked to belong together.
fn certified_keys(files: &ListenerTls) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    let provider = provider();
    files
        .certificates
        .as_slice()
        .iter()
        .map(|f| {
            let chain = certificates(f.cert.as_path())?;
            let key = private_key(f.key.as_path())?;
            CertifiedKey::from_der(chain, key, &provider)
                .map(Arc::new)
                .map_err(|e| TlsError::Pair {
                    cert: f.cert.as_path().to_owned(),
                    key: f.key.as_path().to_owned(),
                    what: describe(&e),
                })
        })
        .collect()
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => "the key does not belong to the certificate".into(),
        other => other.to_string(),
    }
}

/// Picks the first certificate valid for the name the client asked for (SNI), else the first.
#[derive(Debug)]
struct BySni(Vec<Arc<CertifiedKey>>);

impl BySni {
    fn for_name(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = ServerName::try_from(name).ok()?;
        self.0.iter().find(|c| {
            c.end_entity_cert().is_ok_and(|der| {
                webpki::EndEntityCert::try_from(der)
                    .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
            })
        })
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = match hello.server_name() {
            Some(name) if self.0.len() > 1 => self.for_name(name),
            _ => None,
        };
        chosen.or_else(|| self.0.first()).cloned()
    }
}

/// A server configuration for `files`.
///
/// # Errors
/// [`TlsError`] naming the file that is missing or wrong.
pub fn server_config(files: &ListenerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let keys = certified_keys(files)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(keys)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that trusts the roots in `tls.ca`.
///
/// # Errors
/// [`TlsError`] naming the CA file when it has no usable certificate.
pub fn client_config(tls: &UpstreamTls) -> Result<ClientConfig, TlsError> {
    let path = tls.ca.as_path();
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::Content {
            path: path.to_owned(),
            what: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // ALPN is left to the connector (HTTP/1.1).
    config.alpn_protocols = Vec::new();
    Ok(config)
}

/// What a file looked like when it was last read: a changed stamp means reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, SystemTime, u64)>>);

impl Stamp {
    fn of(files: &ListenerTls) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let paths = files
            .certificates
            .as_slice()
            .iter()
            .flat_map(|f| [f.cert.as_path(), f.key.as_path()]);
        Stamp(
            paths
                .map(|p| {
                    let m = std::fs::metadata(p).ok()?;
                    Some((m.len(), m.modified().ok()?, m.ino()))
                })
                .collect(),
        )
    }
}

/// TLS termination of one listener: the acceptor in force, swapped when the files change.
pub struct Termination {
    files: Mutex<ListenerTls>,
    acceptor: ArcSwap<TlsAcceptor>,
    /// The files as last read, successfully or not.
    seen: Mutex<Stamp>,
    /// Why the last reload failed, while the previous certificates serve.
    problem: Mutex<Option<String>>,
}

impl std::fmt::Debug for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Termination")
            .field("files", &*lock(&self.files))
            .field("problem", &*lock(&self.problem))
            .finish_non_exhaustive()
    }
}

impl Termination {
    /// Loads `files`, and checks them for changes every `interval` while the termination lives.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be used.
    pub fn load(files: &ListenerTls, interval: Duration) -> Result<Arc<Self>, TlsError> {
        let seen = Stamp::of(files);
        let config = server_config(files)?;
        let t = Arc::new(Termination {
            files: Mutex::new(files.clone()),
            acceptor: ArcSwap::from_pointee(TlsAcceptor::from(config)),
            seen: Mutex::new(seen),
            problem: Mutex::new(None),
        });
        tokio::spawn(watch(Arc::downgrade(&t), interval));
        Ok(t)
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        self.acceptor.load_full()
    }

    /// Serves `files` from now on, if they load; otherwise keeps the certificates in use.
    ///
    /// # Errors
    /// [`TlsError`] when the new files cannot be used (also kept as [`Termination::problem`]).
    pub fn replace(&self, files: &ListenerTls) -> Result<(), TlsError> {
        let same = *lock(&self.files) == *files;
        if same {
            return Ok(());
        }
        *lock(&self.files) = files.clone();
        self.reload()
    }

    /// Why the files in force are not the ones configured (a failed reload), if they are not.
    pub fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }

    /// Reloads when a file changed since it was last read.
    fn check(&self) {
        let files = lock(&self.files).clone();
        let stamp = Stamp::of(&files);
        if *lock(&self.seen) == stamp {
            return;
        }
        let _ = self.reload();
    }

    fn reload(&self) -> Result<(), TlsError> {
        let files = lock(&self.files).clone();
        *lock(&self.seen) = Stamp::of(&files);
        match server_config(&files) {
            Ok(config) => {
                self.acceptor.store(Arc::new(TlsAcceptor::from(config)));
                *lock(&self.problem) = None;
                tracing::info!("TLS certificates loaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificates not reloaded; the previous ones stay in use");
                *lock(&self.problem) = Some(format!(
                    "TLS certificates not reloaded (the previous ones serve): {e}"
                ));
                Err(e)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn watch(termination: Weak<Termination>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(t) = termination.upgrade() else {
            return;
        };
        // Reading files blocks: off the request threads' schedulers.
        let _ = tokio::task::spawn_blocking(move || t.check()).await;
    }
}
