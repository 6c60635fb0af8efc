//! HTTPS served by hookd itself: the server certificate, reloaded without a restart when its
//! files change or on SIGHUP, and client certificates (WhatsApp's mutual TLS), which the
//! listener asks for and each source judges after the handshake.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};

use crate::config::TlsSettings;
use crate::metrics as m;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("TLS set-up: {0}")]
    Config(String),
}

fn file_error(path: &Path, problem: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key in PEM files, ready to serve.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| file_error(key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate would fail every handshake.
    certified
        .keys_match()
        .map_err(|e| file_error(key, format!("does not match {}: {e}", cert.display())))?;
    Ok(certified)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The server certificate, swapped in place when its files change. A new pair that does not
/// load leaves the one in service serving.
#[derive(Debug)]
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last loaded.
    loaded: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ServerCert {
    pub fn load(cert: &Path, key: &Path) -> Result<ServerCert, TlsError> {
        let provider = provider();
        let current = certified_key(cert, key, &provider)?;
        Ok(ServerCert {
            loaded: Mutex::new((modified(cert), modified(key))),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Loads the files again (SIGHUP). On error the current pair stays in service.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = (modified(&self.cert), modified(&self.key));
        let result = certified_key(&self.cert, &self.key, &self.provider);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(m::TLS_RELOADS, "outcome" => outcome).increment(1);
        let fresh = result?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        Ok(())
    }

    /// Reloads when either file changed since the last load; true when it tried.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let stamps = (modified(&self.cert), modified(&self.key));
        let changed = *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) != stamps;
        if !changed {
            return None;
        }
        let result = self.reload();
        if result.is_err() {
            // Tried once per change: a broken file is not reported again every poll.
            *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        }
        Some(result)
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reloads the server certificate when its files change (checked every `every`) and on
/// SIGHUP, logging what happened. Runs until the process ends.
pub async fn keep_fresh(cert: Arc<ServerCert>, every: Duration) {
    let report = |result: Result<(), TlsError>| match result {
        Ok(()) => tracing::info!(cert = %cert.cert.display(), "TLS certificate reloaded"),
        Err(e) => tracing::error!(
            error = %e,
            "the new TLS certificate or key does not load; the previous one keeps serving"
        ),
    };
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tick.tick() => {
                if let Some(result) = cert.reload_if_changed() {
                    report(result);
                }
            }
            Some(()) = hup => report(cert.reload()),
        }
    }
}

/// Asks every client for a certificate and accepts the handshake with or without one: the
/// proof that the client holds the certificate's key is checked here, whether the certificate
/// is trusted is for each source to decide ([`ClientIdentity`]), so sources that need no
/// client certificate share the listener.
#[derive(Debug)]
struct AskForClientCert {
    webpki: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AskForClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// What a connection's client certificate proves, judged once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// No certificate (or a plain-HTTP connection).
    None,
    /// Chains to the configured CA bundle; its subject's common name.
    Trusted { common_name: String },
    /// Presented but not trusted: why.
    Untrusted(String),
}

/// Why a source that requires a client certificate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertRefusal {
    Missing,
    Untrusted,
    WrongName,
}

impl ClientCertRefusal {
    /// The `reason` of the rejection and the ingress outcome label.
    pub fn reason(self) -> &'static str {
        match self {
            ClientCertRefusal::Missing => "client_certificate_missing",
            ClientCertRefusal::Untrusted => "client_certificate_untrusted",
            ClientCertRefusal::WrongName => "client_certificate_name",
        }
    }
}

impl ClientIdentity {
    /// Whether a source that requires a certificate with common name `expected` takes it.
    pub fn admits(&self, expected: &str) -> Result<(), ClientCertRefusal> {
        match self {
            ClientIdentity::None => Err(ClientCertRefusal::Missing),
            ClientIdentity::Untrusted(_) => Err(ClientCertRefusal::Untrusted),
            ClientIdentity::Trusted { common_name } if common_name == expected => Ok(()),
            ClientIdentity::Trusted { .. } => Err(ClientCertRefusal::WrongName),
        }
    }
}

/// The subject's common name of a DER certificate.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// Judges a presented chain against the CA bundle.
fn judge(webpki: &dyn ClientCertVerifier, chain: &[CertificateDer<'static>]) -> ClientIdentity {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return ClientIdentity::None;
    };
    match webpki.verify_client_cert(end_entity, intermediates, UnixTime::now()) {
        Ok(_) => match common_name(end_entity) {
            Some(common_name) => ClientIdentity::Trusted { common_name },
            None => ClientIdentity::Untrusted("the certificate has no common name".into()),
        },
        Err(e) => ClientIdentity::Untrusted(e.to_string()),
    }
}

/// A listener's TLS: the rustls configuration, the certificate it serves, and how client
/// certificates are judged.
pub struct Tls {
    pub config: ServerConfig,
    pub server_cert: Arc<ServerCert>,
    /// `None` when no client CA is configured (no client certificate is asked for).
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
}

impl Tls {
    pub fn new(settings: &TlsSettings) -> Result<Tls, TlsError> {
        let server_cert = Arc::new(ServerCert::load(&settings.cert, &settings.key)?);
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let client_ca = if settings.client_ca.as_os_str().is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            let path = &settings.client_ca;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
                roots
                    .add(cert.map_err(|e| file_error(path, e))?)
                    .map_err(|e| file_error(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_error(path, e))?;
            Some(verifier)
        };
        let builder = match &client_ca {
            Some(webpki) => builder.with_client_cert_verifier(Arc::new(AskForClientCert {
                webpki: webpki.clone(),
            })),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(server_cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config,
            server_cert,
            client_ca,
        })
    }

    /// For `HttpServer::on_connect`: stores what the connection's client certificate proves.
    pub fn on_connect(&self) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
        let client_ca = self.client_ca.clone();
        move |conn, data| {
            let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() else {
                return;
            };
            let (_, session) = tls.get_ref();
            let identity = match (session.peer_certificates(), &client_ca) {
                (Some(chain), Some(verifier)) => judge(verifier.as_ref(), chain),
                _ => ClientIdentity::None,
            };
            data.insert(identity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_takes_only_a_trusted_certificate_with_its_common_name() {
        let meta = "client.webhooks.fbcdn.net";
        let trusted = |cn: &str| ClientIdentity::Trusted {
            common_name: cn.into(),
        };
        assert_eq!(trusted(meta).admits(meta), Ok(()));
        assert_eq!(
            trusted("evil.example.com").admits(meta),
            Err(ClientCertRefusal::WrongName)
        );
        assert_eq!(
            ClientIdentity::None.admits(meta),
            Err(ClientCertRefusal::Missing)
        );
        assert_eq!(
            ClientIdentity::Untrusted("unknown issuer".into()).admits(meta),
            Err(ClientCertRefusal::Untrusted)
        );
    }
}
