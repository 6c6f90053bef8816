//! A certificate verifier that accepts exactly one certificate, named by the
//! SHA-256 digest of its DER encoding (msmtp's `tls_fingerprint`).
//!
//! The handshake signatures are still checked by the crypto provider, so a
//! server that presents the pinned certificate must also hold its key: a
//! verifier that compared digests and skipped signatures could be fooled by
//! anyone replaying the server's public certificate.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, OtherError};

use super::fingerprint_text;

/// The presented certificate is not the pinned one.
#[derive(Debug)]
pub struct PinMismatch {
    pub pinned: [u8; 32],
    pub presented: [u8; 32],
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server certificate's fingerprint is {}, not the pinned {}",
            fingerprint_text(&self.presented),
            fingerprint_text(&self.pinned)
        )
    }
}

impl std::error::Error for PinMismatch {}

#[derive(Debug)]
pub(super) struct PinVerifier {
    pinned: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub(super) fn new(pinned: [u8; 32], provider: Arc<CryptoProvider>) -> PinVerifier {
        PinVerifier { pinned, provider }
    }
}

pub(super) fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = sha256(end_entity.as_ref());
        if presented == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch {
                pinned: self.pinned,
                presented,
            };
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(mismatch)),
            )))
        }
    }

    signatures_checked_by_provider!();
}
