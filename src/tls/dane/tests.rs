//! DANE and opportunistic trust against a real rustls server over an
//! in-memory pipe, with rcgen certificates. Each table row is one case;
//! each test names the requirement it covers.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::tls::{Established, TlsClient, TlsError, Trust, provider};

const HOST: &str = "mx.example.net";

/// A certificate with its key.
struct Leaf {
    der: CertificateDer<'static>,
    key: KeyPair,
}

impl Leaf {
    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str, parent: Option<&Ca>, expired: bool) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    match parent {
        Some(parent) => CertifiedIssuer::signed_by(params, key, parent).expect("CA cert"),
        None => CertifiedIssuer::self_signed(params, key).expect("CA cert"),
    }
}

/// A server certificate for `names`, issued by `issuer` or self-signed.
fn leaf(names: &[&str], issuer: Option<&Ca>, expired: bool) -> Leaf {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer),
        None => params.self_signed(&key),
    }
    .expect("leaf cert");
    Leaf {
        der: cert.der().clone(),
        key,
    }
}

/// Every certificate the cases use.
struct Pki {
    root: Ca,
    inter: Ca,
    issued: Leaf,
    issued_expired: Leaf,
    old_root: Ca,
    old_inter: Ca,
    old_issued: Leaf,
    other_root: Ca,
    self_signed: Leaf,
    stale: Leaf,
    stranger: Leaf,
}

fn pki() -> Pki {
    let root = ca("Test Root", None, false);
    let inter = ca("Test Intermediate", Some(&root), false);
    let old_root = ca("Old Root", None, true);
    let old_inter = ca("Old Intermediate", Some(&old_root), false);
    Pki {
        issued: leaf(&[HOST], Some(&inter), false),
        issued_expired: leaf(&[HOST], Some(&inter), true),
        old_issued: leaf(&[HOST], Some(&old_inter), false),
        other_root: ca("Other Root", None, false),
        self_signed: leaf(&[HOST], None, false),
        stale: leaf(&["wrong.example.org"], None, true),
        stranger: leaf(&[HOST], None, false),
        root,
        inter,
        old_root,
        old_inter,
    }
}

/// What the server presents.
#[derive(Clone, Copy, Debug)]
enum Chain {
    SelfSigned,
    /// Wrong name and expired, self-signed.
    Stale,
    /// Leaf, intermediate, root.
    Issued,
    /// Leaf and intermediate; the root is left out.
    IssuedNoRoot,
    /// An expired leaf, intermediate, root.
    IssuedExpired,
    /// Leaf, intermediate and an expired root.
    OldRoot,
}

impl Pki {
    fn chain(&self, chain: Chain) -> (Vec<CertificateDer<'static>>, &Leaf) {
        let der = |c: &Ca| c.der().clone();
        match chain {
            Chain::SelfSigned => (vec![self.self_signed.der.clone()], &self.self_signed),
            Chain::Stale => (vec![self.stale.der.clone()], &self.stale),
            Chain::Issued => (
                vec![self.issued.der.clone(), der(&self.inter), der(&self.root)],
                &self.issued,
            ),
            Chain::IssuedNoRoot => (
                vec![self.issued.der.clone(), der(&self.inter)],
                &self.issued,
            ),
            Chain::IssuedExpired => (
                vec![
                    self.issued_expired.der.clone(),
                    der(&self.inter),
                    der(&self.root),
                ],
                &self.issued_expired,
            ),
            Chain::OldRoot => (
                vec![
                    self.old_issued.der.clone(),
                    der(&self.old_inter),
                    der(&self.old_root),
                ],
                &self.old_issued,
            ),
        }
    }
}

/// What a TLSA record names: a whole certificate, or a key (SPKI DER as
/// rcgen encodes it, independent of the x509-parser extraction under test).
enum Subject<'a> {
    Cert(&'a [u8]),
    Key(&'a KeyPair),
}

fn ca_subject(ca: &Ca) -> Subject<'_> {
    Subject::Cert(ca.der().as_ref())
}

fn record(usage: u8, selector: u8, matching: u8, subject: Subject<'_>) -> Tlsa {
    let selected = match (selector, subject) {
        (0, Subject::Cert(der)) => der.to_vec(),
        (1, Subject::Key(key)) => key.subject_public_key_info(),
        (1, Subject::Cert(der)) => spki(der).expect("test certificate parses").to_vec(),
        _ => panic!("selector {selector} needs a certificate"),
    };
    let data = match matching {
        0 => selected,
        1 => digest(&ring::digest::SHA256, &selected),
        2 => digest(&ring::digest::SHA512, &selected),
        _ => panic!("matching type {matching}"),
    };
    Tlsa::new(usage, selector, matching, data)
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Serves one handshake with `chain` and `key` (which need not belong to
/// the certificate), and runs the client with `trust` against it.
async fn handshake(
    trust: Trust,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Established, TlsError> {
    let client = TlsClient::new(trust).expect("client setup");
    handshake_with(&client, chain, key, versions).await
}

async fn handshake_with(
    client: &TlsClient,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Established, TlsError> {
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .expect("signing key");
    // Not with_single_cert: it refuses a key that does not belong to the
    // certificate, which the key-replay test needs.
    let resolver = Fixed(Arc::new(CertifiedKey::new(chain, signing_key)));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("server versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        // Its result is the client's to judge; a refused handshake fails here too.
        let _ = acceptor.accept(server_io).await;
    });
    let result = client
        .handshake(HOST, client_io, Duration::from_secs(10))
        .await
        .map(|(_, established)| established);
    server.abort();
    result
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[derive(Debug)]
enum Expect {
    /// Verified; `verified_by` contains this.
    Match(&'static str),
    /// Refused; the error text contains this.
    Reject(&'static str),
}

/// A row: what it checks, the records, the reference names, what the
/// server presents, and the outcome.
type Case = (
    &'static str,
    Vec<Tlsa>,
    &'static [&'static str],
    Chain,
    Expect,
);

// covers: MX3
#[tokio::test]
async fn mx3_dane_handshakes_match_the_records_rfc7672_describes() {
    let p = pki();
    let ss = || Subject::Cert(p.self_signed.der.as_ref());
    let ss_key = || Subject::Key(&p.self_signed.key);
    use Expect::{Match, Reject};
    let ta = |ca: &Ca| record(2, 0, 1, ca_subject(ca));
    let stranger = || Subject::Key(&p.stranger.key);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // DANE-EE(3), RFC 7672 3.1.1.
        ("MX3 EE 3 1 1", vec![record(3, 1, 1, ss_key())], &[HOST], Chain::SelfSigned, Match("DANE-EE 3 1 1 ")),
        ("MX3 EE 3 0 1", vec![record(3, 0, 1, ss())], &[HOST], Chain::SelfSigned, Match("DANE-EE 3 0 1 ")),
        ("MX3 EE 3 1 2", vec![record(3, 1, 2, ss_key())], &[HOST], Chain::SelfSigned, Match("DANE-EE 3 1 2 ")),
        ("MX3 EE 3 0 0", vec![record(3, 0, 0, ss())], &[HOST], Chain::SelfSigned, Match("DANE-EE 3 0 0 ")),
        ("MX3 EE 3 1 0", vec![record(3, 1, 0, ss_key())], &[HOST], Chain::SelfSigned, Match("matched the end-entity certificate")),
        ("MX3 EE mismatch", vec![record(3, 1, 1, stranger())], &[HOST], Chain::SelfSigned, Reject("does not match the end-entity certificate")),
        ("MX3 EE ignores a wrong name and expiry", vec![record(3, 1, 1, Subject::Key(&p.stale.key))], &[HOST], Chain::Stale, Match("DANE-EE 3 1 1 ")),
        ("MX3 EE needs no names", vec![record(3, 0, 1, ss())], &[], Chain::SelfSigned, Match("DANE-EE 3 0 1 ")),
        ("MX3 EE on a CA-issued leaf", vec![record(3, 1, 1, Subject::Key(&p.issued.key))], &[HOST], Chain::Issued, Match("DANE-EE 3 1 1 ")),
        // DANE-TA(2), RFC 7672 3.1.2 and 3.2.
        ("MX3 TA 2 0 1 on the intermediate", vec![ta(&p.inter)], &[HOST], Chain::Issued, Match("DANE-TA 2 0 1 ")),
        ("MX3 TA names the anchor and the name", vec![ta(&p.inter)], &[HOST], Chain::Issued, Match("matched \"CN=Test Intermediate\"; name mx.example.net")),
        ("MX3 TA 2 1 1 on the root", vec![record(2, 1, 1, ca_subject(&p.root))], &[HOST], Chain::Issued, Match("matched \"CN=Test Root\"")),
        ("MX3 TA 2 0 2 on the root", vec![record(2, 0, 2, ca_subject(&p.root))], &[HOST], Chain::Issued, Match("DANE-TA 2 0 2 ")),
        ("MX3 TA accepts any reference name", vec![ta(&p.inter)], &["example.net", HOST], Chain::Issued, Match("name mx.example.net")),
        ("MX3 TA with the wrong name", vec![ta(&p.inter)], &["mx.example.org", "example.org"], Chain::Issued, Reject("not valid for mx.example.org or example.org")),
        ("MX3 TA anchor not sent", vec![ta(&p.root)], &[HOST], Chain::IssuedNoRoot, Reject("matches no certificate the server sent")),
        ("MX3 TA 2 0 0 anchor not sent", vec![record(2, 0, 0, ca_subject(&p.root))], &[HOST], Chain::IssuedNoRoot, Match("the server did not send it")),
        ("MX3 TA 2 0 0 anchor sent", vec![record(2, 0, 0, ca_subject(&p.root))], &[HOST], Chain::Issued, Match("matched \"CN=Test Root\"; name")),
        ("MX3 TA of another CA", vec![ta(&p.other_root)], &[HOST], Chain::Issued, Reject("matches no certificate the server sent")),
        ("MX3 TA 2 0 0 of another CA", vec![record(2, 0, 0, ca_subject(&p.other_root))], &[HOST], Chain::Issued, Reject("no path leads to the anchor")),
        ("MX3 TA with an expired leaf", vec![ta(&p.inter)], &[HOST], Chain::IssuedExpired, Reject("a certificate has expired")),
        ("MX3 TA anchor's own dates are not checked", vec![ta(&p.old_root)], &[HOST], Chain::OldRoot, Match("matched \"CN=Old Root\"")),
        ("MX3 TA on a self-signed leaf", vec![record(2, 0, 1, ss())], &[HOST], Chain::SelfSigned, Match("DANE-TA 2 0 1 ")),
        ("MX3 TA on a self-signed leaf, wrong name", vec![record(2, 0, 1, ss())], &["mx.example.org"], Chain::SelfSigned, Reject("not valid for mx.example.org")),
        // Sets: unusable records are skipped, the first that matches is reported.
        ("MX3 mixed set", vec![record(0, 0, 1, ca_subject(&p.root)), record(3, 1, 1, stranger()), ta(&p.inter)], &[HOST], Chain::Issued, Match("DANE-TA 2 0 1 ")),
        ("MX3 every failure is named", vec![record(3, 1, 1, stranger()), ta(&p.other_root)], &[HOST], Chain::Issued, Reject("does not match the end-entity certificate; 2 0 1 ")),
    ];
    for (what, records, reference_names, chain, expect) in cases {
        let (chain, leaf) = p.chain(chain);
        let trust = Trust::Dane {
            records,
            names: names(reference_names),
        };
        let result = handshake(trust, chain, leaf.key_der(), BOTH).await;
        let label = format!("{what} ({expect:?})");
        match (&expect, result) {
            (Expect::Match(text), Ok(established)) => {
                assert!(established.verified().is_some(), "{label}: not verified");
                assert!(
                    established.verified_by.contains(text),
                    "{label}: verified_by {:?}",
                    established.verified_by
                );
            }
            (Expect::Reject(text), Err(error)) => {
                assert!(
                    matches!(error, TlsError::Handshake { .. }),
                    "{label}: {error:?}"
                );
                let message = error.to_string();
                assert!(message.contains(text), "{label}: error {message:?}");
                assert!(
                    message.contains("matches none of the host's DNSSEC-signed TLSA records"),
                    "{label}: error {message:?}"
                );
            }
            (_, Ok(established)) => panic!("{label}: accepted, {}", established.verified_by),
            (_, Err(error)) => panic!("{label}: refused, {error}"),
        }
    }
}

// covers: MX3
#[tokio::test]
async fn mx3_a_replayed_certificate_without_its_key_fails_the_handshake() {
    // The server presents the real certificate, which matches the records,
    // but signs the handshake with another key: only a verifier that leaves
    // the handshake signatures to the provider refuses it.
    let p = pki();
    let dane_ee = || Trust::Dane {
        records: vec![record(3, 1, 1, Subject::Key(&p.self_signed.key))],
        names: names(&[HOST]),
    };
    let dane_ta = || Trust::Dane {
        records: vec![record(2, 0, 1, ca_subject(&p.inter))],
        names: names(&[HOST]),
    };
    let (issued, _) = p.chain(Chain::Issued);
    let self_signed = || vec![p.self_signed.der.clone()];
    type Row<'a> = (
        &'a str,
        Trust,
        Vec<CertificateDer<'static>>,
        &'a [&'a SupportedProtocolVersion],
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("DANE-EE, TLS 1.3", dane_ee(), self_signed(), TLS13),
        ("DANE-EE, TLS 1.2", dane_ee(), self_signed(), TLS12),
        ("DANE-TA, TLS 1.3", dane_ta(), issued.clone(), TLS13),
        ("DANE-TA, TLS 1.2", dane_ta(), issued.clone(), TLS12),
        ("opportunistic, TLS 1.3", Trust::Opportunistic, self_signed(), TLS13),
        ("opportunistic, TLS 1.2", Trust::Opportunistic, self_signed(), TLS12),
    ];
    for (what, trust, chain, versions) in cases {
        // The control: the same server with the right key is accepted.
        let right_key = if chain.len() == 1 {
            p.self_signed.key_der()
        } else {
            p.issued.key_der()
        };
        let accepted = handshake(trust.clone(), chain.clone(), right_key, versions).await;
        assert!(
            accepted.is_ok(),
            "MX3 {what}: control refused: {accepted:?}"
        );

        let replayed = handshake(trust, chain, p.stranger.key_der(), versions).await;
        match replayed {
            Err(TlsError::Handshake { .. }) => {}
            other => panic!("MX3 {what}: a replayed certificate gave {other:?}"),
        }
    }
}

// covers: MX3
#[test]
fn mx3_a_set_with_no_usable_record_is_refused_at_build_time() {
    let sha256 = vec![0xab; 32];
    let sha512 = vec![0xcd; 64];
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Tlsa>)> = vec![
        ("MX3 empty set", vec![]),
        ("MX3 PKIX-TA", vec![Tlsa::new(0, 0, 1, sha256.clone())]),
        ("MX3 PKIX-EE", vec![Tlsa::new(1, 1, 1, sha256.clone())]),
        ("MX3 unknown usage", vec![Tlsa::new(4, 1, 1, sha256.clone())]),
        ("MX3 private usage", vec![Tlsa::new(255, 1, 1, sha256.clone())]),
        ("MX3 unknown selector", vec![Tlsa::new(3, 2, 1, sha256.clone())]),
        ("MX3 unknown matching", vec![Tlsa::new(3, 1, 3, sha256.clone())]),
        ("MX3 short SHA-256", vec![Tlsa::new(3, 1, 1, vec![0xab; 31])]),
        ("MX3 SHA-512 length for SHA-256", vec![Tlsa::new(3, 1, 1, sha512.clone())]),
        ("MX3 SHA-256 length for SHA-512", vec![Tlsa::new(2, 0, 2, sha256.clone())]),
        ("MX3 empty full data", vec![Tlsa::new(3, 0, 0, vec![])]),
        ("MX3 all of them", vec![
            Tlsa::new(0, 0, 1, sha256.clone()),
            Tlsa::new(1, 1, 1, sha256.clone()),
            Tlsa::new(4, 1, 1, sha256.clone()),
            Tlsa::new(3, 1, 1, vec![0xab; 31]),
            Tlsa::new(2, 1, 2, sha256.clone()),
        ]),
    ];
    for (what, records) in cases {
        for record in &records {
            assert!(!record.is_usable(), "{what}: {record} counted usable");
        }
        match DaneVerifier::new(&records, &names(&[HOST]), provider()) {
            Err(DaneSetupError::NoUsableRecords(unusable)) => {
                assert_eq!(unusable.len(), records.len(), "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
        // And through the client: the error comes before any connection.
        let client = TlsClient::new(Trust::Dane {
            records,
            names: names(&[HOST]),
        });
        assert!(
            matches!(
                client,
                Err(TlsSetupError::Dane(DaneSetupError::NoUsableRecords(_)))
            ),
            "{what}"
        );
    }
}

// covers: MX3
#[test]
fn mx3_each_unusable_record_says_why() {
    let length = |expected, found| Err(Unusable::DigestLength { expected, found });
    #[rustfmt::skip]
    let cases: Vec<(Tlsa, Result<(), Unusable>)> = vec![
        (Tlsa::new(3, 1, 1, vec![0; 32]), Ok(())),
        (Tlsa::new(2, 0, 2, vec![0; 64]), Ok(())),
        (Tlsa::new(2, 0, 0, vec![0x30]), Ok(())),
        (Tlsa::new(0, 1, 1, vec![0; 32]), Err(Unusable::PkixUsage(0))),
        (Tlsa::new(1, 1, 1, vec![0; 32]), Err(Unusable::PkixUsage(1))),
        (Tlsa::new(4, 1, 1, vec![0; 32]), Err(Unusable::UnknownUsage(4))),
        (Tlsa::new(3, 2, 1, vec![0; 32]), Err(Unusable::UnknownSelector(2))),
        (Tlsa::new(3, 1, 255, vec![0; 32]), Err(Unusable::UnknownMatching(255))),
        (Tlsa::new(3, 1, 2, vec![0; 32]), length(64, 32)),
        (Tlsa::new(3, 1, 1, vec![0; 64]), length(32, 64)),
        (Tlsa::new(3, 1, 0, vec![]), Err(Unusable::Empty)),
    ];
    for (record, expected) in cases {
        assert_eq!(record.usability(), expected, "MX3 {record}");
    }
}

// covers: MX3
#[test]
fn mx3_reference_names_are_checked_at_build_time() {
    let ta = vec![Tlsa::new(2, 0, 1, vec![0; 32])];
    let ee = vec![Tlsa::new(3, 1, 1, vec![0; 32])];
    let bad = |name: &str| Some(DaneSetupError::BadName(name.into()));
    type Row<'a> = (&'a str, &'a [Tlsa], Vec<String>, Option<DaneSetupError>);
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("MX3 TA needs a name", &ta, vec![], Some(DaneSetupError::NoReferenceNames)),
        ("MX3 EE needs none", &ee, vec![], None),
        ("MX3 a trailing dot is fine", &ta, names(&["mx.example.net."]), None),
        ("MX3 not a DNS name", &ta, names(&["mx example"]), bad("mx example")),
        ("MX3 an address is not a reference name", &ta, names(&["192.0.2.1"]), bad("192.0.2.1")),
    ];
    for (what, records, names, expected) in cases {
        let result = DaneVerifier::new(records, &names, provider());
        assert_eq!(result.err(), expected, "{what}");
    }
    // The name is the caller's, from DNS: shown escaped, once.
    let shown = DaneSetupError::BadName("mx\x1b[2J".into()).to_string();
    assert!(
        shown.starts_with("\"mx\\u{1b}[2J\" is not a DNS name"),
        "MX3 {shown}"
    );
}

// covers: MX3
#[test]
fn mx3_tlsa_presentation_form_round_trips() {
    let record = Tlsa::new(3, 1, 1, vec![0xab, 0x12, 0x00, 0xff]);
    assert_eq!(record.to_string(), "3 1 1 ab1200ff");
    assert_eq!("3 1 1 ab1200ff".parse::<Tlsa>(), Ok(record.clone()));
    // Zone files split long data and may use capitals.
    assert_eq!("3 1 1 AB12 00FF".parse::<Tlsa>(), Ok(record));
    for bad in [
        "",
        "3 1",
        "3 1 1 abc",
        "3 1 1 zz",
        "3 1 1 +f",
        "256 1 1 ab",
        "x 1 1 ab",
    ] {
        assert!(bad.parse::<Tlsa>().is_err(), "MX3 {bad:?} parsed");
    }
    let long = Tlsa::new(2, 0, 1, vec![0xab; 32]);
    assert_eq!(long.short(), "2 0 1 abababababab…");
}

// covers: MX3
#[tokio::test]
async fn mx3_each_handshake_reports_its_own_match() {
    // One client, two servers with different certificates, handshakes
    // running at the same time and one after the other: each reads the
    // record that matched its own chain.
    let p = pki();
    let a = record(3, 1, 1, Subject::Key(&p.self_signed.key));
    let b = record(3, 1, 1, Subject::Key(&p.stranger.key));
    let client = TlsClient::new(Trust::Dane {
        records: vec![a.clone(), b.clone()],
        names: names(&[HOST]),
    })
    .expect("client");
    let serve_a = || {
        handshake_with(
            &client,
            vec![p.self_signed.der.clone()],
            p.self_signed.key_der(),
            BOTH,
        )
    };
    let serve_b = || {
        handshake_with(
            &client,
            vec![p.stranger.der.clone()],
            p.stranger.key_der(),
            BOTH,
        )
    };
    let (first, second) = tokio::join!(serve_a(), serve_b());
    let third = serve_a().await;
    for (result, expected) in [(first, &a), (second, &b), (third, &a)] {
        let established = result.expect("handshake");
        assert!(
            established.verified_by.contains(&expected.short()),
            "MX3: {} does not name {}",
            established.verified_by,
            expected.short()
        );
    }
}

// covers: MX3
#[test]
fn mx3_outcomes_are_kept_per_chain() {
    // Two handshakes verified before either reads its result (as when one
    // client runs them at the same time): each reads its own, not the latest.
    let p = pki();
    let a = record(3, 1, 1, Subject::Key(&p.self_signed.key));
    let b = record(3, 1, 1, Subject::Key(&p.stranger.key));
    let verifier =
        DaneVerifier::new(&[a.clone(), b.clone()], &names(&[HOST]), provider()).expect("verifier");
    let host = ServerName::try_from(HOST).expect("host name");
    for leaf in [&p.self_signed, &p.stranger] {
        verifier
            .verify_server_cert(&leaf.der, &[], &host, &[], UnixTime::now())
            .expect("verified");
    }
    let read = |leaf: &Leaf| {
        verifier
            .outcome(std::slice::from_ref(&leaf.der))
            .map(|m| m.record)
    };
    assert_eq!(read(&p.self_signed), Some(a), "MX3 first handshake");
    assert_eq!(read(&p.stranger), Some(b), "MX3 second handshake");
}

// covers: MX3
#[test]
fn mx3_the_outcome_is_recomputed_when_not_kept() {
    // A resumed session skips the verifier; its chain is checked again.
    let p = pki();
    let verifier = DaneVerifier::new(
        &[record(3, 1, 1, Subject::Key(&p.self_signed.key))],
        &names(&[HOST]),
        provider(),
    )
    .expect("verifier");
    let found = verifier.outcome(std::slice::from_ref(&p.self_signed.der));
    assert_eq!(
        found.map(|m| m.matched),
        Some(Matched::EndEntity),
        "MX3 matching chain"
    );
    assert_eq!(
        verifier.outcome(std::slice::from_ref(&p.stranger.der)),
        None,
        "MX3 other chain"
    );
    assert_eq!(verifier.outcome(&[]), None, "MX3 no chain");
}

// covers: MX3
#[tokio::test]
async fn mx3_opportunistic_accepts_a_self_signed_certificate_unverified() {
    let p = pki();
    let established = handshake(
        Trust::Opportunistic,
        vec![p.self_signed.der.clone()],
        p.self_signed.key_der(),
        BOTH,
    )
    .await
    .expect("opportunistic handshake");
    assert!(
        established.verified().is_none(),
        "MX3: opportunistic gave a TlsVerified"
    );
    // Whether the machine has system roots or not, WebPKI cannot accept it.
    let text = &established.verified_by;
    assert!(
        text.starts_with("not verified (opportunistic); WebPKI would have rejected it")
            || text.starts_with("not verified (opportunistic); WebPKI check not possible"),
        "MX3: {text}"
    );
}

// covers: MX3
#[test]
fn mx3_opportunistic_reports_what_webpki_would_have_said() {
    let p = pki();
    let mut roots = RootCertStore::empty();
    roots.add(p.root.der().clone()).expect("test root");
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()));
    let host = ServerName::try_from(HOST).expect("host name");
    let other_host = ServerName::try_from("mx.example.org").expect("host name");
    let (issued, _) = p.chain(Chain::Issued);
    let (expired, _) = p.chain(Chain::IssuedExpired);
    let no_roots = Err(TlsSetupError::NoUsableRoots {
        source: "the system store".into(),
        detail: String::new(),
    });
    let ss = vec![p.self_signed.der.clone()];
    type Row<'a> = (
        &'a str,
        &'a Result<Arc<WebPkiServerVerifier>, TlsSetupError>,
        &'a [CertificateDer<'static>],
        &'a ServerName<'a>,
        &'a str,
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("MX3 chains to a root", &webpki, &issued, &host, "; WebPKI would have accepted it for mx.example.net"),
        ("MX3 self-signed", &webpki, &ss, &host, "; WebPKI would have rejected it: not signed by the system's trusted CAs"),
        ("MX3 other name", &webpki, &issued, &other_host, "; WebPKI would have rejected it: not valid for mx.example.org"),
        ("MX3 expired", &webpki, &expired, &host, "; WebPKI would have rejected it: a certificate has expired"),
        ("MX3 no roots", &no_roots, &issued, &host, "; WebPKI check not possible: no usable trusted CA"),
        ("MX3 no certificate", &webpki, &[], &host, "; the server sent no certificate"),
    ];
    for (what, webpki, chain, host, expected) in cases {
        let text = opportunistic_report(webpki, chain, host, UnixTime::now());
        assert!(
            text.starts_with("not verified (opportunistic)"),
            "{what}: {text}"
        );
        assert!(text.contains(expected), "{what}: {text}");
    }
}

// covers: MX3
#[test]
fn mx3_trust_says_dane_and_its_names() {
    let dane = Trust::Dane {
        records: vec![Tlsa::new(3, 1, 1, vec![0; 32])],
        names: names(&[HOST, "example.net"]),
    };
    assert_eq!(
        dane.to_string(),
        "the DANE TLSA records for mx.example.net, example.net"
    );
    assert!(Trust::Opportunistic.to_string().contains("opportunistic"));
}
