//! Test certificates from rcgen: a trusted CA, an untrusted one, and a
//! server certificate for each way a certificate can be wrong. All keys are
//! ECDSA P-256 (fast to make). The PEM files live under Cargo's test tmpdir
//! so that the tlsend binary (via SSL_CERT_FILE or ca_file) and node can
//! read them; `pki()` makes one set per test process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Which server certificate a test server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// For `localhost` and 127.0.0.1, from the trusted CA, valid now.
    Valid,
    /// For `wrong.example` only, from the trusted CA.
    WrongName,
    /// Like `Valid`, but expired in 2021.
    Expired,
    /// For `localhost` and 127.0.0.1, signed by itself.
    SelfSigned,
    /// For `localhost` and 127.0.0.1, from a CA that is not in `ca_file`.
    UntrustedCa,
}

impl CertKind {
    pub const ALL: [CertKind; 5] = [
        CertKind::Valid,
        CertKind::WrongName,
        CertKind::Expired,
        CertKind::SelfSigned,
        CertKind::UntrustedCa,
    ];
}

struct Identity {
    kind: CertKind,
    der: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// A trusted CA and one server identity per [`CertKind`], with PEM files.
pub struct TestPki {
    /// Removed when the `TestPki` is dropped (the shared one never is).
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    identities: Vec<Identity>,
    trusted: CertifiedIssuer<'static, KeyPair>,
    untrusted: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate minted for a test: for MX host names, or for DANE, where
/// the test needs its DER and its public key.
pub struct Minted {
    pub chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    /// The DER of the issuing CA's certificate (the DANE-TA anchor).
    pub issuer_der: CertificateDer<'static>,
}

/// How a minted certificate should be.
#[derive(Clone, Copy, Debug, Default)]
pub struct MintOptions {
    /// Valid in 2020 only.
    pub expired: bool,
    /// Signed by a CA that is not trusted.
    pub untrusted: bool,
    /// Signed by itself.
    pub self_signed: bool,
    /// Send the CA certificate after the end-entity certificate.
    pub with_issuer: bool,
}

impl Minted {
    pub fn der(&self) -> &[u8] {
        self.chain[0].as_ref()
    }

    /// The DER SubjectPublicKeyInfo of the end-entity certificate.
    pub fn spki(&self) -> Vec<u8> {
        use x509_parser::prelude::FromDer;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(self.der())
            .expect("a minted certificate parses");
        cert.tbs_certificate.subject_pki.raw.to_vec()
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), key)
        .expect("minted key matches its certificate");
        Arc::new(config)
    }
}

/// SHA-256 of `data`, for TLSA records with matching type 1.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// The process-wide test PKI, made on first use.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::new)
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    CertifiedIssuer::self_signed(params, key).expect("CA certificate")
}

/// End-entity parameters; rcgen makes names that parse as IP addresses
/// into IP SANs.
fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, &names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl TestPki {
    /// Generates a fresh PKI in its own directory.
    pub fn new() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("tlsend-pki-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("PKI directory");
        let trusted = ca("tlsend test CA");
        let untrusted = ca("tlsend untrusted CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, trusted.pem()).expect("write ca.pem");

        let mut identities = Vec::new();
        for kind in CertKind::ALL {
            let key = KeyPair::generate().expect("leaf key");
            let localhost = ["localhost", "127.0.0.1"];
            let cert = match kind {
                CertKind::Valid => leaf_params(&localhost).signed_by(&key, &trusted),
                CertKind::WrongName => leaf_params(&["wrong.example"]).signed_by(&key, &trusted),
                CertKind::Expired => {
                    let mut params = leaf_params(&localhost);
                    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
                    params.signed_by(&key, &trusted)
                }
                CertKind::SelfSigned => leaf_params(&localhost).self_signed(&key),
                CertKind::UntrustedCa => leaf_params(&localhost).signed_by(&key, &untrusted),
            }
            .expect("leaf certificate");
            let name = format!("{kind:?}").to_lowercase();
            let cert_file = dir.path().join(format!("{name}.crt.pem"));
            let key_file = dir.path().join(format!("{name}.key.pem"));
            std::fs::write(&cert_file, cert.pem()).expect("write certificate");
            std::fs::write(&key_file, key.serialize_pem()).expect("write key");
            identities.push(Identity {
                kind,
                der: cert.der().clone(),
                key_pkcs8: key.serialize_der(),
                cert_file,
                key_file,
            });
        }
        TestPki {
            dir,
            ca_file,
            identities,
            trusted,
            untrusted,
        }
    }

    /// A new certificate for `names` (an MX host name, say).
    pub fn mint(&self, names: &[&str], options: MintOptions) -> Minted {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = leaf_params(names);
        if options.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let issuer = if options.untrusted {
            &self.untrusted
        } else {
            &self.trusted
        };
        let cert = if options.self_signed {
            params.self_signed(&key)
        } else {
            params.signed_by(&key, issuer)
        }
        .expect("minted certificate");
        let mut chain = vec![cert.der().clone()];
        if options.with_issuer {
            chain.push(issuer.der().clone());
        }
        Minted {
            chain,
            key_pkcs8: key.serialize_der(),
            issuer_der: issuer.der().clone(),
        }
    }

    fn identity(&self, kind: CertKind) -> &Identity {
        self.identities
            .iter()
            .find(|i| i.kind == kind)
            .expect("every kind is generated")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PEM of the trusted test CA.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The chain (only the end-entity certificate) and key a server presents.
    pub fn server_identity(
        &self,
        kind: CertKind,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let identity = self.identity(kind);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
        (vec![identity.der.clone()], key)
    }

    /// A rustls server configuration presenting `kind`, on the ring provider.
    pub fn server_config(&self, kind: CertKind) -> Arc<rustls::ServerConfig> {
        let (chain, key) = self.server_identity(kind);
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("test key matches its certificate");
        Arc::new(config)
    }

    /// `sha256:AB:…` of the end-entity DER, as `--fingerprint` takes it.
    pub fn fingerprint(&self, kind: CertKind) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.identity(kind).der.as_ref());
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        format!("sha256:{}", hex.join(":"))
    }

    /// Certificate and key PEM files, for servers that are not in-process.
    pub fn pem_files(&self, kind: CertKind) -> (&Path, &Path) {
        let identity = self.identity(kind);
        (&identity.cert_file, &identity.key_file)
    }
}
