//! DANE for SMTP (RFC 7672, on RFC 6698 and RFC 7671; usage names from
//! RFC 7218) and opportunistic TLS: the TLSA record and which records SMTP
//! can use, the certificate verifier that authenticates a server against
//! them, and the verifier that accepts any certificate for opportunistic
//! delivery.
//!
//! This module never queries DNS. The caller passes TLSA records that
//! DNSSEC has already authenticated, and the reference names that go with
//! them: the MX host name and the TLSA base domain (RFC 7672 2.2.3, 3.2).
//!
//! Only DANE-TA(2) and DANE-EE(3) records are used; PKIX-TA(0) and
//! PKIX-EE(1) would need the public CAs, which SMTP cannot rely on (RFC 7672
//! 3.1.3). A set with no usable record is refused when the verifier is
//! built: the caller then knows TLS is mandatory but the server cannot be
//! authenticated (RFC 7672 2.2, MX3).
//!
//! - DANE-EE(3): the end-entity certificate (selector 0) or its
//!   SubjectPublicKeyInfo (selector 1) must match; its names and dates are
//!   not checked (RFC 7672 3.1.1).
//! - DANE-TA(2): a certificate the server sent (or, for a `2 0 0` record,
//!   the certificate in the record) must match, and the end-entity
//!   certificate must chain to it as the only trust anchor and carry one of
//!   the reference names (RFC 7672 3.1.2, 3.2). Names are matched
//!   against DNS subjectAltNames only (webpki has no CN fallback).
//!   Expiry: the end-entity certificate and any intermediate below the
//!   anchor must be within their validity period, as in ordinary path
//!   validation; the anchor's own dates are not checked. The record asserts
//!   the anchor the way a root store does (a trust anchor is an input to
//!   path validation, RFC 5280 6.1.1), a `2 1 x` record names only a key,
//!   which has no dates, and treating `2 0 x` and `2 1 x` alike keeps a
//!   record's meaning independent of its selector.
//!
//! In both verifiers the handshake signatures are checked by the crypto
//! provider. A verifier that accepted any certificate and matched TLSA
//! records afterwards would let a man in the middle replay the server's
//! public certificate chain without holding its key.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor, verify_server_name,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, OtherError, RootCertStore};

use super::TlsSetupError;
use crate::text::printable;

#[cfg(test)]
mod tests;

const DANE_TA: u8 = 2;
const DANE_EE: u8 = 3;
const SELECTOR_CERT: u8 = 0;
const SELECTOR_SPKI: u8 = 1;
const MATCH_FULL: u8 = 0;
const MATCH_SHA256: u8 = 1;
const MATCH_SHA512: u8 = 2;

/// A TLSA record (RFC 6698 2.1): certificate usage, selector, matching
/// type and certificate association data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// Why a TLSA record cannot be used for SMTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// PKIX-TA(0) or PKIX-EE(1): not for SMTP (RFC 7672 3.1.3).
    PkixUsage(u8),
    UnknownUsage(u8),
    UnknownSelector(u8),
    UnknownMatching(u8),
    /// A digest of the wrong length for its matching type.
    DigestLength {
        expected: usize,
        found: usize,
    },
    /// Matching type Full(0) with no data.
    Empty,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::PkixUsage(u) => write!(
                f,
                "usage {} ({u}) is not used for SMTP (RFC 7672 3.1.3)",
                usage_name(*u)
            ),
            Unusable::UnknownUsage(u) => write!(f, "unknown certificate usage {u}"),
            Unusable::UnknownSelector(s) => write!(f, "unknown selector {s}"),
            Unusable::UnknownMatching(m) => write!(f, "unknown matching type {m}"),
            Unusable::DigestLength { expected, found } => {
                write!(f, "the digest is {found} bytes, not {expected}")
            }
            Unusable::Empty => write!(f, "the association data is empty"),
        }
    }
}

impl Tlsa {
    pub fn new(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    /// Whether SMTP can authenticate a server with this record, and if not, why.
    pub fn usability(&self) -> Result<(), Unusable> {
        match self.usage {
            DANE_TA | DANE_EE => {}
            0 | 1 => return Err(Unusable::PkixUsage(self.usage)),
            u => return Err(Unusable::UnknownUsage(u)),
        }
        if !matches!(self.selector, SELECTOR_CERT | SELECTOR_SPKI) {
            return Err(Unusable::UnknownSelector(self.selector));
        }
        let expected = match self.matching {
            MATCH_FULL if self.data.is_empty() => return Err(Unusable::Empty),
            MATCH_FULL => return Ok(()),
            MATCH_SHA256 => 32,
            MATCH_SHA512 => 64,
            m => return Err(Unusable::UnknownMatching(m)),
        };
        if self.data.len() != expected {
            return Err(Unusable::DigestLength {
                expected,
                found: self.data.len(),
            });
        }
        Ok(())
    }

    pub fn is_usable(&self) -> bool {
        self.usability().is_ok()
    }

    /// The record with its data cut to a few bytes, for messages.
    pub fn short(&self) -> String {
        const SHOWN: usize = 6;
        let shown = &self.data[..self.data.len().min(SHOWN)];
        let more = if self.data.len() > SHOWN { "…" } else { "" };
        format!(
            "{} {} {} {}{more}",
            self.usage,
            self.selector,
            self.matching,
            hex(shown)
        )
    }

    /// Whether `cert` is what this record's selector and matching type
    /// describe. A certificate that does not parse matches nothing.
    fn matches(&self, cert: &[u8]) -> bool {
        let selected = match self.selector {
            SELECTOR_CERT => cert,
            SELECTOR_SPKI => match spki(cert) {
                Some(spki) => spki,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            MATCH_FULL => selected == self.data.as_slice(),
            MATCH_SHA256 => digest(&ring::digest::SHA256, selected) == self.data.as_slice(),
            MATCH_SHA512 => digest(&ring::digest::SHA512, selected) == self.data.as_slice(),
            _ => false,
        }
    }
}

/// Presentation form (RFC 6698 2.2): `3 1 1 <hex>`.
impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            hex(&self.data)
        )
    }
}

/// The presentation form could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsaSyntax(String);

impl fmt::Display for TlsaSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a TLSA record in presentation form: {}", self.0)
    }
}

impl std::error::Error for TlsaSyntax {}

/// Reads `3 1 1 <hex>`; the hex may be split by white space, as zone files do.
impl FromStr for Tlsa {
    type Err = TlsaSyntax;

    fn from_str(s: &str) -> Result<Tlsa, TlsaSyntax> {
        let mut fields = s.split_whitespace();
        let mut number = |what: &str| {
            fields
                .next()
                .ok_or_else(|| TlsaSyntax(format!("the {what} is missing")))?
                .parse::<u8>()
                .map_err(|_| TlsaSyntax(format!("the {what} is not a number from 0 to 255")))
        };
        let usage = number("usage")?;
        let selector = number("selector")?;
        let matching = number("matching type")?;
        let text: String = fields.collect();
        let data = unhex(&text).ok_or_else(|| TlsaSyntax("the data is not hex".into()))?;
        Ok(Tlsa::new(usage, selector, matching, data))
    }
}

/// RFC 7218 names of the certificate usages.
fn usage_name(usage: u8) -> &'static str {
    match usage {
        0 => "PKIX-TA",
        1 => "PKIX-EE",
        DANE_TA => "DANE-TA",
        DANE_EE => "DANE-EE",
        _ => "unknown",
    }
}

/// The DANE verifier could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaneSetupError {
    /// No record is usable (or there are none): TLS is mandatory but the
    /// server cannot be authenticated (RFC 7672 2.2). The caller must not
    /// count a handshake with this host as verified.
    NoUsableRecords(Vec<(Tlsa, Unusable)>),
    /// DANE-TA records need a name to check the certificate against.
    NoReferenceNames,
    /// A reference name is not a DNS name.
    BadName(String),
}

impl fmt::Display for DaneSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaneSetupError::NoUsableRecords(unusable) if unusable.is_empty() => {
                write!(f, "no TLSA records to verify the server with")
            }
            DaneSetupError::NoUsableRecords(unusable) => {
                write!(f, "none of the {} TLSA records is usable (", unusable.len())?;
                for (i, (record, why)) in unusable.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{}: {why}", record.short())?;
                }
                write!(
                    f,
                    "), so TLS is mandatory but the server cannot be authenticated"
                )
            }
            DaneSetupError::NoReferenceNames => write!(
                f,
                "DANE-TA records need the MX host name or TLSA base domain to check the \
                 certificate against, and none was given"
            ),
            DaneSetupError::BadName(name) => {
                write!(
                    f,
                    "\"{}\" is not a DNS name a certificate can be checked against",
                    printable(name)
                )
            }
        }
    }
}

impl std::error::Error for DaneSetupError {}

/// Which record authenticated the server, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaneMatch {
    pub record: Tlsa,
    pub matched: Matched,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    /// A DANE-EE record matched the end-entity certificate.
    EndEntity,
    /// A DANE-TA record matched `subject`, the end-entity certificate
    /// chains to it and is valid for `name`. `sent` is false when the
    /// anchor is the certificate in a `2 0 0` record and the server did not
    /// send it.
    TrustAnchor {
        subject: String,
        sent: bool,
        name: String,
    },
}

impl fmt::Display for DaneMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usage = usage_name(self.record.usage);
        match &self.matched {
            Matched::EndEntity => write!(
                f,
                "{usage} {} matched the end-entity certificate (name and expiry not checked)",
                self.record.short()
            ),
            Matched::TrustAnchor {
                subject,
                sent,
                name,
            } => {
                let origin = if *sent {
                    ""
                } else {
                    " (the certificate in the record; the server did not send it)"
                };
                write!(
                    f,
                    "{usage} {} matched \"{subject}\"{origin}; name {name}",
                    self.record.short()
                )
            }
        }
    }
}

/// The server's certificate matched none of the usable TLSA records. Each
/// reason names the record and what failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaneMismatch {
    pub reasons: Vec<String>,
}

impl fmt::Display for DaneMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server certificate matches none of the host's DNSSEC-signed TLSA records ({}); \
             the host's operator must fix its certificate or its TLSA records",
            self.reasons.join("; ")
        )
    }
}

impl std::error::Error for DaneMismatch {}

/// How many handshake results a verifier keeps for [`DaneVerifier::outcome`].
const KEPT_OUTCOMES: usize = 16;

/// A rustls certificate verifier for DANE (RFC 7672): built from usable
/// TLSA records and the reference names, it accepts a server whose chain
/// matches one record. The handshake signatures are checked by the crypto
/// provider.
pub struct DaneVerifier {
    records: Vec<Tlsa>,
    names: Vec<(String, ServerName<'static>)>,
    provider: Arc<CryptoProvider>,
    /// The match of each recent handshake, keyed by the digest of the chain
    /// the server presented, so that a handshake reads its own result even
    /// when one client runs several at once.
    outcomes: Mutex<VecDeque<([u8; 32], DaneMatch)>>,
}

impl fmt::Debug for DaneVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaneVerifier")
            .field("records", &self.records)
            .field(
                "names",
                &self.names.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl DaneVerifier {
    /// A verifier for the usable records among `records`; unusable ones are
    /// ignored (RFC 7672 3.1.3). `names` are the MX host name and the TLSA
    /// base domain (they may be the same); DANE-TA records need at least one.
    pub fn new(
        records: &[Tlsa],
        names: &[String],
        provider: Arc<CryptoProvider>,
    ) -> Result<DaneVerifier, DaneSetupError> {
        let usable: Vec<Tlsa> = records.iter().filter(|r| r.is_usable()).cloned().collect();
        if usable.is_empty() {
            let unusable = records
                .iter()
                .filter_map(|r| r.usability().err().map(|why| (r.clone(), why)))
                .collect();
            return Err(DaneSetupError::NoUsableRecords(unusable));
        }
        let mut parsed = Vec::new();
        for name in names {
            let bare = name.strip_suffix('.').unwrap_or(name);
            match ServerName::try_from(bare.to_string()) {
                Ok(server_name @ ServerName::DnsName(_)) => {
                    parsed.push((bare.to_ascii_lowercase(), server_name))
                }
                _ => return Err(DaneSetupError::BadName(name.clone())),
            }
        }
        if parsed.is_empty() && usable.iter().any(|r| r.usage == DANE_TA) {
            return Err(DaneSetupError::NoReferenceNames);
        }
        Ok(DaneVerifier {
            records: usable,
            names: parsed,
            provider,
            outcomes: Mutex::new(VecDeque::new()),
        })
    }

    /// The usable records this verifier checks.
    pub fn records(&self) -> &[Tlsa] {
        &self.records
    }

    /// Checks a presented chain against the records, in order; the first
    /// record that authenticates it wins. `now` is the time certificates
    /// are checked at (DANE-TA only).
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<DaneMatch, DaneMismatch> {
        let mut reasons = Vec::new();
        for record in &self.records {
            let result = match record.usage {
                DANE_EE => self.check_end_entity(record, end_entity),
                _ => self.check_trust_anchor(record, end_entity, intermediates, now),
            };
            match result {
                Ok(matched) => {
                    return Ok(DaneMatch {
                        record: record.clone(),
                        matched,
                    });
                }
                Err(reason) => reasons.push(format!("{}: {reason}", record.short())),
            }
        }
        Err(DaneMismatch { reasons })
    }

    /// The match that authenticated the handshake whose server presented
    /// `chain` (end entity first, as `peer_certificates` gives it). A
    /// resumed session was not verified again; its result is recomputed if
    /// it is no longer kept.
    pub fn outcome(&self, chain: &[CertificateDer<'_>]) -> Option<DaneMatch> {
        let (end_entity, intermediates) = chain.split_first()?;
        let key = chain_key(end_entity, intermediates);
        let kept = self
            .outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| m.clone());
        kept.or_else(|| self.check(end_entity, intermediates, UnixTime::now()).ok())
    }

    fn remember(&self, key: [u8; 32], matched: DaneMatch) {
        let mut outcomes = self
            .outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        outcomes.retain(|(k, _)| *k != key);
        if outcomes.len() >= KEPT_OUTCOMES {
            outcomes.pop_front();
        }
        outcomes.push_back((key, matched));
    }

    /// DANE-EE(3): the certificate itself, no name or date (RFC 7672 3.1.1).
    fn check_end_entity(
        &self,
        record: &Tlsa,
        end_entity: &CertificateDer<'_>,
    ) -> Result<Matched, String> {
        if record.matches(end_entity.as_ref()) {
            Ok(Matched::EndEntity)
        } else {
            Err("does not match the end-entity certificate".into())
        }
    }

    /// DANE-TA(2): the matching certificate is the only trust anchor; the
    /// end entity must chain to it and carry a reference name (RFC 7672
    /// 3.1.2, 3.2).
    fn check_trust_anchor(
        &self,
        record: &Tlsa,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Matched, String> {
        let presented = || std::iter::once(end_entity).chain(intermediates);
        // A "2 0 0" record carries the anchor itself, so it works even when
        // the server leaves the anchor out of its chain (RFC 7671 5.2).
        let candidates: Vec<(CertificateDer<'_>, bool)> =
            if record.selector == SELECTOR_CERT && record.matching == MATCH_FULL {
                let sent = presented().any(|c| c.as_ref() == record.data.as_slice());
                vec![(CertificateDer::from(record.data.as_slice()), sent)]
            } else {
                presented()
                    .filter(|c| record.matches(c.as_ref()))
                    .map(|c| (c.clone(), true))
                    .collect()
            };
        if candidates.is_empty() {
            return Err("matches no certificate the server sent".into());
        }
        let leaf = ParsedCertificate::try_from(end_entity)
            .map_err(|e| format!("the end-entity certificate does not parse ({e})"))?;
        let mut last = String::new();
        for (anchor, sent) in candidates {
            let subject = subject(anchor.as_ref());
            match self.verify_chain(&leaf, &anchor, intermediates, now) {
                Ok(name) => {
                    return Ok(Matched::TrustAnchor {
                        subject,
                        sent,
                        name,
                    });
                }
                Err(why) => last = format!("matched \"{subject}\", but {why}"),
            }
        }
        Err(last)
    }

    /// Builds and verifies the path from `leaf` to `anchor`, then checks
    /// the reference names; returns the name that matched.
    fn verify_chain(
        &self,
        leaf: &ParsedCertificate<'_>,
        anchor: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<String, String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(anchor.clone())
            .map_err(|e| format!("it cannot serve as a trust anchor ({e})"))?;
        verify_server_cert_signed_by_trust_anchor(
            leaf,
            &roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )
        .map_err(|e| format!("the chain to it does not verify: {}", chain_problem(&e)))?;
        // RFC 7672 3.2: any one reference name suffices.
        self.names
            .iter()
            .find(|(_, name)| verify_server_name(leaf, name).is_ok())
            .map(|(text, _)| text.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = self.names.iter().map(|(n, _)| n.as_str()).collect();
                format!("the certificate is not valid for {}", names.join(" or "))
            })
    }
}

impl ServerCertVerifier for DaneVerifier {
    /// The SNI name rustls passes is not used: the reference names come
    /// from the DNSSEC-validated lookup the caller made (RFC 7672 3.2).
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, now) {
            Ok(matched) => {
                self.remember(chain_key(end_entity, intermediates), matched);
                Ok(ServerCertVerified::assertion())
            }
            Err(mismatch) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(mismatch)),
            ))),
        }
    }

    signatures_checked_by_provider!();
}

/// Opportunistic TLS (RFC 7435; RFC 7672 2.2 for MX hosts without DANE):
/// any certificate is accepted, so the connection is encrypted but the
/// server is not authenticated. The handshake signatures are still checked
/// by the provider, so the peer holds the key of the certificate it sent.
#[derive(Debug)]
pub(super) struct OpportunisticVerifier {
    provider: Arc<CryptoProvider>,
}

impl OpportunisticVerifier {
    pub(super) fn new(provider: Arc<CryptoProvider>) -> OpportunisticVerifier {
        OpportunisticVerifier { provider }
    }
}

impl ServerCertVerifier for OpportunisticVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signatures_checked_by_provider!();
}

/// `verified_by` for an opportunistic handshake: not verified, and whether
/// WebPKI with the system's roots would have accepted the chain for `host`,
/// so that `-v` and the log show what enforcing would have meant.
pub(super) fn opportunistic_report(
    webpki: &Result<Arc<WebPkiServerVerifier>, TlsSetupError>,
    chain: &[CertificateDer<'_>],
    host: &ServerName<'_>,
    now: UnixTime,
) -> String {
    const PREFIX: &str = "not verified (opportunistic)";
    let host_text = printable(&host.to_str());
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return format!("{PREFIX}; the server sent no certificate");
    };
    let verifier = match webpki {
        Ok(verifier) => verifier,
        Err(e) => return format!("{PREFIX}; WebPKI check not possible: {e}"),
    };
    match verifier.verify_server_cert(end_entity, intermediates, host, &[], now) {
        Ok(_) => format!("{PREFIX}; WebPKI would have accepted it for {host_text}"),
        Err(e) => format!(
            "{PREFIX}; WebPKI would have rejected it: {}",
            webpki_problem(&e, &host_text)
        ),
    }
}

/// A WebPKI failure in a few words.
fn webpki_problem(error: &rustls::Error, host: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "not signed by the system's trusted CAs".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("not valid for {host}"),
        _ => chain_problem(error),
    }
}

/// A chain failure in a few words; rustls's own text otherwise.
fn chain_problem(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "a certificate has expired".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "a certificate is not valid yet".into(),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "no path leads to the anchor".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            "a signature in the chain does not verify".into()
        }
        other => printable(&other.to_string()),
    }
}

/// The SubjectPublicKeyInfo of a DER certificate, with its outer SEQUENCE,
/// as selector 1 hashes it (RFC 6698 2.1.2).
fn spki(der: &[u8]) -> Option<&[u8]> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.tbs_certificate.subject_pki.raw)
}

/// The subject of a DER certificate, safe to print.
fn subject(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => printable(&cert.subject().to_string()),
        Err(_) => "an unparsable certificate".into(),
    }
}

fn digest(algorithm: &'static ring::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(algorithm, data).as_ref().to_vec()
}

/// Identifies a presented chain: SHA-256 over each certificate with its
/// length, so that no two different chains share a key by concatenation.
fn chain_key(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for cert in std::iter::once(end_entity).chain(intermediates) {
        context.update(&(cert.as_ref().len() as u64).to_be_bytes());
        context.update(cert.as_ref());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    // Checked first: from_str_radix alone would take a sign ("+f").
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
