//! TLS for SMTP: the single crypto provider (ring) for the whole program, TLS
//! 1.2 and 1.3 only (RFC 9325, SUB8), the trust a server's certificate is
//! verified against (system roots, a CA file, a pinned fingerprint, DANE
//! TLSA records, or none for opportunistic TLS), and the [`TlsVerified`]
//! token that proves a handshake authenticated the server.
//!
//! Verification happens inside the handshake, through a rustls certificate
//! verifier, so the provider still checks the handshake signatures: a
//! certificate that verifies proves nothing unless the peer holds its key.
//! Only this module can make a `TlsVerified`, and require mode cannot build
//! a REQUIRETLS command without one (see `smtp::command::RequireTls`).
//! This module never queries DNS; DANE receives its DNSSEC-validated
//! records from the caller (see `dane.rs`, RFC 7672).

/// The handshake signature checks of a rustls `ServerCertVerifier`, left
/// to the crypto provider in `self.provider`. Every verifier here uses it:
/// a certificate that matches proves nothing unless the peer holds its key.
macro_rules! signatures_checked_by_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

mod dane;
mod pin;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

// Certificate text is the peer's: control characters are escaped before it
// reaches a terminal.
use crate::text::printable;

pub use dane::{
    DaneMatch, DaneMismatch, DaneSetupError, DaneVerifier, Matched, Tlsa, TlsaSyntax, Unusable,
};
pub use pin::PinMismatch;

/// The crypto provider used for every TLS configuration in tlsend.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What a server certificate must chain to or match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots (rustls-native-certs; honours SSL_CERT_FILE and
    /// SSL_CERT_DIR), checked against the host name (RFC 6125).
    SystemRoots,
    /// Only the CA certificates in this PEM file, checked against the host name.
    CaFile(PathBuf),
    /// Only the certificate whose DER has this SHA-256 digest. Name and
    /// expiry are not checked: the pin names the certificate itself.
    Pin([u8; 32]),
    /// DANE (RFC 7672): DNSSEC-validated TLSA records and the reference
    /// names, the MX host name and the TLSA base domain (may be the same).
    /// Unusable records are ignored; a set with none usable is refused by
    /// [`TlsClient::new`].
    Dane {
        records: Vec<Tlsa>,
        names: Vec<String>,
    },
    /// Opportunistic TLS: any certificate is accepted and the handshake
    /// never yields [`TlsVerified`]; `verified_by` says whether WebPKI
    /// with the system's roots would have accepted it. For default-mode
    /// delivery to MX hosts with no DANE or MTA-STS enforce policy.
    Opportunistic,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::SystemRoots => write!(f, "the system's trusted CAs"),
            Trust::CaFile(path) => write!(f, "the CAs in {}", path.display()),
            Trust::Pin(digest) => write!(f, "the pinned fingerprint {}", fingerprint_text(digest)),
            Trust::Dane { names, .. } if names.is_empty() => write!(f, "the DANE TLSA records"),
            Trust::Dane { names, .. } => {
                let names: Vec<String> = names.iter().map(|n| printable(n)).collect();
                write!(f, "the DANE TLSA records for {}", names.join(", "))
            }
            Trust::Opportunistic => {
                write!(f, "nothing (opportunistic TLS accepts any certificate)")
            }
        }
    }
}

/// Proof that a TLS handshake authenticated the server. Only this module
/// makes one, and only after a handshake through a verifying configuration.
#[derive(Debug)]
pub struct TlsVerified(());

impl TlsVerified {
    #[cfg(test)]
    pub(crate) fn for_tests() -> TlsVerified {
        TlsVerified(())
    }
}

/// A TLS client configured with one kind of trust.
#[derive(Clone)]
pub struct TlsClient {
    connector: Arc<LazyConnector>,
    trust: Trust,
    /// The chain the server presented in the last handshake, kept only by
    /// a client made with [`TlsClient::recording`].
    presented: Option<Presented>,
}

/// Where a recording client keeps the chain it was shown.
type Presented = Arc<Mutex<Vec<CertificateDer<'static>>>>;

/// The client configuration, built when first needed. The system's roots
/// are well over a hundred files: they are read on a blocking thread that
/// [`TlsClient::preload`] starts while the connection is being set up, and
/// never when no handshake happens (a connect failure, a refused STARTTLS).
type LazyConnector = tokio::sync::OnceCell<Result<Ready, TlsSetupError>>;

/// A built configuration and what `handshake` needs to describe the result.
#[derive(Clone)]
struct Ready {
    connector: TlsConnector,
    report: Report,
}

#[derive(Clone)]
enum Report {
    /// The text follows from the trust alone.
    Plain,
    /// The verifier keeps which record matched each handshake.
    Dane(Arc<DaneVerifier>),
    /// The WebPKI check that is reported but not enforced; an error if the
    /// system's roots could not be read.
    Opportunistic(Result<Arc<WebPkiServerVerifier>, TlsSetupError>),
}

/// The trust could not be set up; a configuration problem (exit 78),
/// except `Dane`: records that cannot authenticate the server are the
/// host's problem, and the caller decides what that means for delivery
/// (MX3, see [`DaneSetupError`]).
#[derive(Clone, Debug)]
pub enum TlsSetupError {
    CaFile { path: PathBuf, error: String },
    NoUsableRoots { source: String, detail: String },
    Rustls(String),
    Dane(DaneSetupError),
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::CaFile { path, error } => {
                write!(f, "cannot use CA file {}: {error}", path.display())
            }
            TlsSetupError::NoUsableRoots { source, detail } => write!(
                f,
                "no usable trusted CA certificates in {source}{detail}; install the system CA \
                 bundle (ca-certificates), set SSL_CERT_FILE, or configure ca_file"
            ),
            TlsSetupError::Rustls(e) => write!(f, "TLS setup failed: {e}"),
            TlsSetupError::Dane(e) => write!(f, "DANE: {e}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// The handshake failed. `Handshake` means TLS itself failed or the server
/// was not authenticated (5.7.10); `Io` and `Timeout` mean the connection
/// failed underneath and say nothing about the server's TLS.
#[derive(Debug)]
pub enum TlsError {
    Handshake {
        error: rustls::Error,
        trust: String,
    },
    Io(io::Error),
    Timeout(Duration),
    ServerName(String),
    /// The trust anchors could not be loaded when the handshake needed them.
    Setup(TlsSetupError),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Handshake { error, trust } => describe_handshake_error(f, error, trust),
            TlsError::Io(e) => write!(f, "connection failed during the TLS handshake: {e}"),
            TlsError::Timeout(d) => {
                write!(
                    f,
                    "the TLS handshake did not finish within {} s",
                    d.as_secs_f64()
                )
            }
            TlsError::ServerName(name) => {
                write!(f, "{name:?} is not a host name or address TLS can verify")
            }
            TlsError::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// What a finished handshake negotiated and how the server was verified.
#[derive(Debug)]
pub struct Established {
    pub protocol: String,
    pub cipher: String,
    pub certificate: Option<CertificateSummary>,
    /// Every certificate the server presented, its own first.
    pub chain: Vec<CertificateSummary>,
    /// How the certificate was checked, e.g. "WebPKI with the system's trusted CAs for smtp.example.org".
    pub verified_by: String,
    /// The same in a word, for a log line.
    pub method: Verification,
    verified: Option<TlsVerified>,
}

/// How a handshake checked the server's certificate, in a word (UX6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A pinned fingerprint matched.
    Pin,
    /// WebPKI with the CAs of a configured file.
    CaFile,
    /// WebPKI with the system's trusted CAs.
    SystemRoots,
    /// A DANE-EE TLSA record matched (RFC 7672).
    DaneEe,
    /// A DANE-TA TLSA record matched.
    DaneTa,
    /// DANE, for a resumed session (which record matched is not known).
    Dane,
    /// Opportunistic TLS: not verified.
    None,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pin => "pin",
            Verification::CaFile => "ca-file",
            Verification::SystemRoots => "system-roots",
            Verification::DaneEe => "dane-ee",
            Verification::DaneTa => "dane-ta",
            Verification::Dane => "dane",
            Verification::None => "none",
        }
    }
}

impl Established {
    /// The proof of authentication, if this handshake authenticated the server.
    pub fn verified(&self) -> Option<&TlsVerified> {
        self.verified.as_ref()
    }
}

impl fmt::Display for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, cipher {}", self.protocol, self.cipher)?;
        if let Some(cert) = &self.certificate {
            write!(f, "; certificate {cert}")?;
        }
        write!(f, "; verified by {}", self.verified_by)
    }
}

/// The parts of the server certificate a user wants to see (UX1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    /// `2026-01-31 12:00:00 UTC`.
    pub not_before: String,
    pub not_after: String,
    /// `sha256:…` of the DER, ready to paste into `fingerprint`.
    pub fingerprint: String,
}

impl fmt::Display for CertificateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subject \"{}\"", self.subject)?;
        if !self.names.is_empty() {
            write!(f, " (names {})", self.names.join(", "))?;
        }
        write!(
            f,
            ", issuer \"{}\", valid until {}, {}",
            self.issuer, self.not_after, self.fingerprint
        )
    }
}

impl TlsClient {
    /// A client for `trust`. A CA file is read now, so that a bad one is
    /// reported before any connection, and DANE records with none usable
    /// are refused now; the system's roots are read only when a handshake
    /// needs them (see [`TlsClient::preload`]).
    pub fn new(trust: Trust) -> Result<TlsClient, TlsSetupError> {
        TlsClient::with(trust, None)
    }

    /// A client for `trust` that also keeps the chain each server presents,
    /// verified or not, for [`TlsClient::presented`]: `--check-server`
    /// shows the certificate a user may want to pin even when it fails.
    pub fn recording(trust: Trust) -> Result<TlsClient, TlsSetupError> {
        TlsClient::with(trust, Some(Presented::default()))
    }

    fn with(trust: Trust, presented: Option<Presented>) -> Result<TlsClient, TlsSetupError> {
        let ready = match trust {
            Trust::SystemRoots | Trust::Opportunistic => None,
            _ => Some(Ok(build_connector(&trust, presented.as_ref())?)),
        };
        Ok(TlsClient {
            connector: Arc::new(tokio::sync::OnceCell::new_with(ready)),
            trust,
            presented,
        })
    }

    /// The chain the server presented in the latest handshake of a
    /// recording client, its own certificate first; empty otherwise.
    pub fn presented(&self) -> Vec<CertificateSummary> {
        let Some(presented) = &self.presented else {
            return Vec::new();
        };
        let chain = presented
            .lock()
            .map(|chain| chain.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        chain.iter().filter_map(summarize).collect()
    }

    /// Starts reading the trust anchors in the background, if a handshake
    /// will need them. Call it within a tokio runtime, as soon as a
    /// connection is on its way.
    pub fn preload(&self) {
        if !self.connector.initialized() {
            let client = self.clone();
            tokio::spawn(async move {
                let _ = client.connector().await;
            });
        }
    }

    /// The connector, once the trust anchors are loaded (on a blocking
    /// thread: they are files). Callers at the same time share one load.
    async fn connector(&self) -> Result<Ready, TlsError> {
        let ready = self
            .connector
            .get_or_init(|| async {
                let trust = self.trust.clone();
                let presented = self.presented.clone();
                tokio::task::spawn_blocking(move || build_connector(&trust, presented.as_ref()))
                    .await
                    .unwrap_or_else(|e| {
                        Err(TlsSetupError::Rustls(format!(
                            "loading the trust anchors failed: {e}"
                        )))
                    })
            })
            .await;
        ready.clone().map_err(TlsError::Setup)
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Runs the handshake over `stream` for `server_name` (SNI and the name
    /// the certificate is checked against), within `timeout`.
    pub async fn handshake<S>(
        &self,
        server_name: &str,
        stream: S,
        timeout: Duration,
    ) -> Result<(TlsStream<S>, Established), TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        let ready = self.connector().await?;
        let handshake = ready.connector.connect(name.clone(), stream);
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Err(_) => return Err(TlsError::Timeout(timeout)),
            Ok(Err(e)) => return Err(self.classify(e)),
            Ok(Ok(stream)) => stream,
        };
        let connection = stream.get_ref().1;
        let protocol = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
            other => format!("{other:?}"),
        };
        let cipher = connection
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let chain = connection.peer_certificates().unwrap_or_default();
        let summaries: Vec<CertificateSummary> = chain.iter().filter_map(summarize).collect();
        let certificate = chain.first().and_then(summarize);
        let (verified_by, method) = match (&self.trust, &ready.report) {
            (Trust::Pin(_), _) => (
                format!("{} (name and expiry not checked)", self.trust),
                Verification::Pin,
            ),
            (_, Report::Dane(verifier)) => match verifier.outcome(chain) {
                Some(matched) => {
                    let method = match matched.matched {
                        dane::Matched::EndEntity => Verification::DaneEe,
                        dane::Matched::TrustAnchor { .. } => Verification::DaneTa,
                    };
                    (matched.to_string(), method)
                }
                // Only a resumed session whose certificates no longer match
                // gets here; it was verified when it was established.
                None => (
                    format!("{} (resumed session)", self.trust),
                    Verification::Dane,
                ),
            },
            (_, Report::Opportunistic(webpki)) => (
                dane::opportunistic_report(webpki, chain, &name, UnixTime::now()),
                Verification::None,
            ),
            (Trust::CaFile(_), _) => (
                format!("WebPKI with {} for {server_name}", self.trust),
                Verification::CaFile,
            ),
            _ => (
                format!("WebPKI with {} for {server_name}", self.trust),
                Verification::SystemRoots,
            ),
        };
        let established = Established {
            protocol,
            cipher,
            certificate,
            chain: summaries,
            verified_by,
            method,
            // Every trust kind but opportunistic authenticates the server;
            // the handshake finished, so the verifier accepted it.
            verified: match self.trust {
                Trust::Opportunistic => None,
                _ => Some(TlsVerified(())),
            },
        };
        Ok((stream, established))
    }

    /// tokio-rustls reports TLS failures as `io::Error`s wrapping a
    /// `rustls::Error`; unwrap those so they are not mistaken for network
    /// failures (which are temporary, where TLS failures are not).
    fn classify(&self, e: io::Error) -> TlsError {
        let is_rustls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
        if !is_rustls {
            return TlsError::Io(e);
        }
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(error)) => TlsError::Handshake {
                error: *error,
                trust: self.trust.to_string(),
            },
            _ => TlsError::Io(io::Error::other("TLS failure")),
        }
    }
}

/// Reads the trust anchors and builds the client configuration: the one
/// provider, TLS 1.3 and 1.2 only, the verifier for `trust` (keeping the
/// presented chain in `presented`, if given).
fn build_connector(trust: &Trust, presented: Option<&Presented>) -> Result<Ready, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let webpki = |roots: Arc<RootCertStore>| {
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))
    };
    let (verifier, report): (Arc<dyn ServerCertVerifier>, Report) = match trust {
        Trust::Pin(digest) => (
            Arc::new(pin::PinVerifier::new(*digest, provider.clone())),
            Report::Plain,
        ),
        Trust::SystemRoots | Trust::CaFile(_) => (webpki(load_roots(trust)?)?, Report::Plain),
        Trust::Dane { records, names } => {
            let verifier = Arc::new(
                DaneVerifier::new(records, names, provider.clone()).map_err(TlsSetupError::Dane)?,
            );
            (verifier.clone(), Report::Dane(verifier))
        }
        Trust::Opportunistic => {
            // Missing roots only make the report say so: opportunistic TLS
            // does not need them.
            let check = system_roots().and_then(webpki);
            (
                Arc::new(dane::OpportunisticVerifier::new(provider.clone())),
                Report::Opportunistic(check),
            )
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = match presented {
        Some(presented) => Arc::new(Recording {
            inner: verifier,
            presented: presented.clone(),
        }),
        None => verifier,
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Ready {
        connector: TlsConnector::from(Arc::new(config)),
        report,
    })
}

/// A verifier that keeps the chain it is shown, then lets `inner` decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    presented: Presented,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        match self.presented.lock() {
            Ok(mut kept) => *kept = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The system's trusted CAs (rustls-native-certs, which honours
/// SSL_CERT_FILE and SSL_CERT_DIR), read once per process and shared by
/// every client that needs them: direct delivery makes one [`TlsClient`]
/// per MX host, and the MTA-STS policy fetch uses the same store.
///
/// The first call reads files: call it on a blocking thread (as
/// `TlsClient` does), not on the async runtime's.
pub fn system_roots() -> Result<Arc<RootCertStore>, TlsSetupError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, TlsSetupError>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let certificates = system_root_certificates()?;
            let (_, _ignored) = roots.add_parsable_certificates(certificates.iter().cloned());
            if roots.is_empty() {
                return Err(TlsSetupError::NoUsableRoots {
                    source: "the system store".into(),
                    detail: " (none of its certificates is usable)".into(),
                });
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The system's root certificates as read (rustls-native-certs, which
/// honours SSL_CERT_FILE and SSL_CERT_DIR), once per process: for clients
/// that take certificates rather than a rustls store (the MTA-STS fetch).
/// The first call reads files, as [`system_roots`] does.
pub fn system_root_certificates() -> Result<Arc<Vec<CertificateDer<'static>>>, TlsSetupError> {
    static CERTIFICATES: OnceLock<Result<Arc<Vec<CertificateDer<'static>>>, TlsSetupError>> =
        OnceLock::new();
    CERTIFICATES
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() {
                let detail = loaded
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(TlsSetupError::NoUsableRoots {
                    source: "the system store".into(),
                    detail,
                });
            }
            Ok(Arc::new(loaded.certs))
        })
        .clone()
}

fn load_roots(trust: &Trust) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match trust {
        Trust::CaFile(path) => {
            let file_error = |error: String| TlsSetupError::CaFile {
                path: path.clone(),
                error,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| file_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(file_error("it holds no PEM certificate".into()));
            }
            let (_, ignored) = roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(file_error(format!(
                    "none of its {ignored} certificates is usable"
                )));
            }
        }
        Trust::SystemRoots | Trust::Opportunistic => return system_roots(),
        Trust::Pin(_) | Trust::Dane { .. } => {}
    }
    Ok(Arc::new(roots))
}

/// The subject, issuer, names and expiry of a DER certificate, if it parses.
fn summarize(der: &CertificateDer<'_>) -> Option<CertificateSummary> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    GeneralName::IPAddress(ip) => ip_text(ip),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertificateSummary {
        subject: printable(&cert.subject().to_string()),
        issuer: printable(&cert.issuer().to_string()),
        names: names.iter().map(|n| printable(n)).collect(),
        not_before: asn1_date(&cert.validity().not_before),
        not_after: asn1_date(&cert.validity().not_after),
        fingerprint: fingerprint_text(&certificate_fingerprint(der.as_ref())),
    })
}

/// A certificate time as a date in UTC.
fn asn1_date(time: &x509_parser::time::ASN1Time) -> String {
    unix_date(time.timestamp())
}

/// Seconds since 1970 as `2026-01-31 12:00:00 UTC`.
pub fn unix_date(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{seconds} seconds after 1970"))
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The SHA-256 digest of a DER certificate, as `fingerprint` pins it.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    pin::sha256(der)
}

/// `sha256:AB:CD:…`, the form users paste into `fingerprint`.
pub fn fingerprint_text(digest: &[u8; 32]) -> String {
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

/// A certificate problem in words, dates as dates (rustls's own text
/// gives UNIX seconds, and Rust debug names for the rest).
fn certificate_problem(e: &CertificateError) -> String {
    match e {
        CertificateError::ExpiredContext { time, not_after } => format!(
            "it expired on {}; it is now {}",
            unix_date(secs(not_after)),
            unix_date(secs(time))
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "it is valid only from {}; it is now {}",
            unix_date(secs(not_before)),
            unix_date(secs(time))
        ),
        CertificateError::Expired => "it has expired".into(),
        CertificateError::NotValidYet => "it is not valid yet".into(),
        CertificateError::NotValidForName => "it does not name that host".into(),
        CertificateError::NotValidForNameContext { .. }
        | CertificateError::InvalidPurposeContext { .. } => e.to_string(),
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadEncoding => "it is not a well-formed certificate".into(),
        CertificateError::UnhandledCriticalExtension => {
            "it has a critical extension tlsend does not know".into()
        }
        CertificateError::InvalidPurpose => "it is not meant for TLS servers".into(),
        CertificateError::Other(other) => other.to_string(),
        other => words(&format!("{other:?}")),
    }
}

fn secs(time: &UnixTime) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
}

/// `DnsName("mail.example.org")` or `IpAddress(192.0.2.1)`, as rustls-webpki
/// lists a certificate's names, as the name alone; other kinds are left out.
fn plain_name(presented: &str) -> Option<String> {
    let name = if let Some(rest) = presented.strip_prefix("DnsName(\"") {
        rest.strip_suffix("\")")?
    } else if let Some(rest) = presented.strip_prefix("IpAddress(") {
        rest.strip_suffix(')')?
    } else {
        return None;
    };
    Some(printable(name))
}

/// `HandshakeFailure` as "handshake failure": a Rust name in words.
fn words(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Words for a failed handshake: what failed, then what the user can do.
fn describe_handshake_error(
    f: &mut fmt::Formatter<'_>,
    error: &rustls::Error,
    trust: &str,
) -> fmt::Result {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            if let Some(mismatch) = other.0.downcast_ref::<PinMismatch>() {
                write!(f, "{mismatch}")
            } else if let Some(mismatch) = other.0.downcast_ref::<DaneMismatch>() {
                write!(f, "{mismatch}")
            } else {
                write!(f, "the server certificate was rejected: {other}")
            }
        }
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => write!(
            f,
            "the server certificate is not signed by {trust} (self-signed, or from another CA)"
        ),
        rustls::Error::InvalidCertificate(e @ CertificateError::NotValidForName) => write!(
            f,
            "the server certificate is not valid for the host name tlsend connected to ({})",
            certificate_problem(e)
        ),
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            presented,
        }) => {
            let names: Vec<String> = presented.iter().filter_map(|n| plain_name(n)).collect();
            write!(
                f,
                "the server certificate is not valid for the host name tlsend connected to, {}: \
                 it names {}",
                printable(&expected.to_str()),
                if names.is_empty() {
                    "no host name".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
        rustls::Error::InvalidCertificate(
            e @ (CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. }),
        ) => write!(
            f,
            "the server certificate is outside its validity period ({}); the server's operator \
             must renew it, or check this machine's clock",
            certificate_problem(e)
        ),
        rustls::Error::InvalidCertificate(e) => {
            write!(
                f,
                "the server certificate was rejected: {}",
                certificate_problem(e)
            )
        }
        rustls::Error::AlertReceived(alert) => write!(
            f,
            "the server ended the TLS handshake with the alert \"{}\" (it may not support TLS \
             1.2 or newer, or it refused the name tlsend asked for)",
            words(&format!("{alert:?}"))
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => write!(
            f,
            "the server sent data that is not a valid TLS handshake ({error}); something on the \
             path may be interfering"
        ),
        rustls::Error::PeerIncompatible(_) => write!(
            f,
            "the server offers no TLS version or cipher tlsend accepts (TLS 1.2 or newer): {error}"
        ),
        _ => write!(f, "the TLS handshake failed: {error}"),
    }
}

#[cfg(test)]
mod wording_tests {
    use super::*;

    fn shown(error: CertificateError) -> String {
        TlsError::Handshake {
            error: rustls::Error::InvalidCertificate(error),
            trust: "the system's trusted CAs".into(),
        }
        .to_string()
    }

    // covers: UX5
    #[test]
    fn ux5_certificate_names_are_listed_plainly() {
        let text = shown(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("smtp.example.org").unwrap(),
            presented: vec![
                "DnsName(\"mail.example.org\")".into(),
                "DnsName(\"*.example.org\")".into(),
                "IpAddress(192.0.2.1)".into(),
                "DirectoryName".into(),
            ],
        });
        assert_eq!(
            text,
            "the server certificate is not valid for the host name tlsend connected to, \
             smtp.example.org: it names mail.example.org, *.example.org, 192.0.2.1"
        );
    }

    // covers: UX5
    #[test]
    fn ux5_certificate_dates_are_dates() {
        let expired = shown(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_609_459_200)),
        });
        assert!(
            expired.contains(
                "it expired on 2021-01-01 00:00:00 UTC; it is now 2027-01-15 08:00:00 UTC"
            ),
            "{expired}"
        );
        let early = shown(CertificateError::NotValidYetContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_609_459_200)),
            not_before: UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
        });
        assert!(
            early.contains("it is valid only from 2027-01-15 08:00:00 UTC"),
            "{early}"
        );
        for text in [expired, early, shown(CertificateError::Revoked)] {
            assert!(
                !text.contains("UNIX") && !text.contains("Context"),
                "{text}"
            );
        }
        let alert = TlsError::Handshake {
            error: rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
            trust: String::new(),
        }
        .to_string();
        assert!(alert.contains("alert \"handshake failure\""), "{alert}");
    }
}
