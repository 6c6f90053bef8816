//! Test certificates from rcgen: a trusted CA, an untrusted one, and a
//! server certificate for each way a certificate can be wrong. Made once per
//! test process; the PEM files live under Cargo's test tmpdir so that the
//! tlsend binary (via SSL_CERT_FILE or ca_file) and node can read them.

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
    /// For `wrong.example` only.
    WrongName,
    /// Like `Valid`, but expired in 2021.
    Expired,
    /// For `localhost`, signed by itself.
    SelfSigned,
    /// For `localhost`, from a CA the client does not trust.
    UntrustedCa,
}

const KINDS: [CertKind; 5] = [
    CertKind::Valid,
    CertKind::WrongName,
    CertKind::Expired,
    CertKind::SelfSigned,
    CertKind::UntrustedCa,
];

struct Identity {
    kind: CertKind,
    der: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// The test PKI.
pub struct TestPki {
    dir: PathBuf,
    ca_file: PathBuf,
    identities: Vec<Identity>,
}

/// The process-wide test PKI.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::generate)
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

impl TestPki {
    fn generate() -> TestPki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tlsend-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trusted = ca("tlsend test CA");
        let untrusted = ca("tlsend untrusted CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, trusted.pem()).unwrap();

        let mut identities = Vec::new();
        for kind in KINDS {
            let key = KeyPair::generate().unwrap();
            let cert = match kind {
                CertKind::Valid => {
                    leaf_params(&["localhost", "127.0.0.1"]).signed_by(&key, &trusted)
                }
                CertKind::WrongName => leaf_params(&["wrong.example"]).signed_by(&key, &trusted),
                CertKind::Expired => {
                    let mut params = leaf_params(&["localhost", "127.0.0.1"]);
                    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
                    params.signed_by(&key, &trusted)
                }
                CertKind::SelfSigned => leaf_params(&["localhost", "127.0.0.1"]).self_signed(&key),
                CertKind::UntrustedCa => {
                    leaf_params(&["localhost", "127.0.0.1"]).signed_by(&key, &untrusted)
                }
            }
            .unwrap();
            let name = format!("{kind:?}").to_lowercase();
            let cert_file = dir.join(format!("{name}.crt.pem"));
            let key_file = dir.join(format!("{name}.key.pem"));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
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
        }
    }

    fn identity(&self, kind: CertKind) -> &Identity {
        self.identities.iter().find(|i| i.kind == kind).unwrap()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// PEM of the trusted test CA.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A rustls server configuration presenting `kind`, on the ring provider.
    pub fn server_config(&self, kind: CertKind) -> Arc<rustls::ServerConfig> {
        let identity = self.identity(kind);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![identity.der.clone()], key)
        .unwrap();
        Arc::new(config)
    }

    /// `sha256:AB:…` of the certificate, as `fingerprint` takes it.
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
