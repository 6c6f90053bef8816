//! Local DNSSEC validation (`tlsend::dns::ValidatingResolver`, MX8)
//! against the signed test zones: the library is called directly, with
//! the root's key (or its DS) as the trust anchor and the zones' own
//! server (or unbound in front of it) as the upstream.
//!
//! Secure names must come back Secure, names under an insecure
//! delegation Insecure, names under a bogus one an error (never an empty
//! answer), and the trust anchor file must be read or refused with the
//! line named.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey as _};
use hickory_proto::rr::{Name, RecordType};
use tlsend::dns::{self, LookupError, Resolve, SetupError, ValidatingResolver};

use crate::support::dns::{
    Records, Security, SignedZones, Unbound, ZoneSet, name, require_unbound,
};

/// Every wait of a test ends by this.
const LIMIT: Duration = Duration::from_secs(20);

/// The resolver's own limit per lookup.
const LOOKUP: Duration = Duration::from_secs(10);

/// A secure zone with everything direct delivery asks for, an insecure
/// child of the root, a bogus one, and CNAMEs inside the secure zone and
/// from it into the insecure one.
fn zones() -> SignedZones {
    let mut zones = ZoneSet::new();
    zones
        .zone("example", Security::Secure)
        .zone("plain", Security::Insecure)
        .zone("broken", Security::Bogus);
    zones
        .mx("example", 10, "mx.example")
        .a("mx.example", "127.0.0.1")
        .aaaa("mx.example", "::1")
        .tlsa("_25._tcp.mx.example", 3, 1, 1, &[0x5a; 32])
        .txt("_mta-sts.example", "v=STSv1; id=20240101")
        .cname("www.example", "mx.example")
        .cname("outside.example", "mx.plain")
        .mx("plain", 10, "mx.plain")
        .a("mx.plain", "127.0.0.1")
        .tlsa("_25._tcp.mx.plain", 3, 1, 1, &[0x5b; 32])
        .txt("_mta-sts.plain", "v=STSv1; id=1")
        .mx("broken", 10, "mx.broken")
        .a("mx.broken", "127.0.0.1")
        .tlsa("_25._tcp.mx.broken", 3, 1, 1, &[0x5c; 32])
        .txt("_mta-sts.broken", "v=STSv1; id=2");
    SignedZones::start(zones)
}

async fn within<F: Future>(what: &str, work: F) -> F::Output {
    tokio::time::timeout(LIMIT, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {LIMIT:?}"))
}

async fn start(
    server: SocketAddr,
    anchor: Option<&Path>,
) -> Result<ValidatingResolver, SetupError> {
    within(
        "starting the validating resolver",
        ValidatingResolver::new(vec![server], anchor, LOOKUP),
    )
    .await
}

async fn validating(zones: &SignedZones, anchor: &Path) -> ValidatingResolver {
    start(zones.addr(), Some(anchor))
        .await
        .unwrap_or_else(|e| panic!("the validating resolver did not start: {e}"))
}

async fn query(
    resolver: &ValidatingResolver,
    owner: &str,
    rtype: RecordType,
) -> Result<dns::Response, LookupError> {
    within(
        &format!("{owner} {rtype}"),
        resolver.query(&name(owner), rtype),
    )
    .await
}

/// The security of an answer that must have records of `rtype`.
async fn security_of(
    resolver: &ValidatingResolver,
    owner: &str,
    rtype: RecordType,
) -> dns::Security {
    let response = query(resolver, owner, rtype)
        .await
        .unwrap_or_else(|e| panic!("{owner} {rtype}: {e:?}"));
    assert!(
        response.records.iter().any(|r| r.record_type() == rtype),
        "{owner} {rtype}: no records in {:?}",
        response.records
    );
    response.security
}

/// A fresh P-256 key that signs nothing in the zones.
fn stranger_key() -> DNSKEY {
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).expect("a key");
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).expect("the key");
    DNSKEY::from_key(&key.to_public_key().expect("its public key"))
}

fn write(dir: &Path, file: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the anchor file");
    path
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_secure_zone_answers_are_secure() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor()).await;
    for (owner, rtype) in [
        ("example", RecordType::MX),
        ("mx.example", RecordType::A),
        ("mx.example", RecordType::AAAA),
        ("_25._tcp.mx.example", RecordType::TLSA),
        ("_mta-sts.example", RecordType::TXT),
    ] {
        assert_eq!(
            security_of(&resolver, owner, rtype).await,
            dns::Security::Secure,
            "{owner} {rtype}"
        );
    }
    // Through the typed helpers too, as route uses them.
    let mx = within("MX", dns::mx(&resolver, &name("example")))
        .await
        .unwrap();
    assert_eq!(mx.records.len(), 1);
    assert_eq!(
        (mx.records[0].exchange.as_str(), mx.security),
        ("mx.example", dns::Security::Secure)
    );
    let tlsa = within("TLSA", dns::tlsa(&resolver, &name("mx.example"), 25))
        .await
        .unwrap();
    assert_eq!(
        (tlsa.records.len(), tlsa.security),
        (1, dns::Security::Secure)
    );
    let txt = within("TXT", dns::txt(&resolver, &name("_mta-sts.example")))
        .await
        .unwrap();
    assert_eq!(txt.records, ["v=STSv1; id=20240101"]);
    assert_eq!(txt.security, dns::Security::Secure);
    let describe = resolver.describe();
    assert!(
        describe.starts_with("local DNSSEC validation with the trust anchor in ")
            && describe.contains(&zones.trust_anchor().display().to_string())
            && describe.ends_with(&format!("(upstream {})", zones.addr())),
        "{describe}"
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_insecure_delegation_answers_are_insecure() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor()).await;
    for (owner, rtype) in [
        ("plain", RecordType::MX),
        ("mx.plain", RecordType::A),
        ("_25._tcp.mx.plain", RecordType::TLSA),
        ("_mta-sts.plain", RecordType::TXT),
    ] {
        assert_eq!(
            security_of(&resolver, owner, rtype).await,
            dns::Security::Insecure,
            "{owner} {rtype}"
        );
    }
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_bogus_answers_are_errors_never_empty() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor()).await;
    for (owner, rtype) in [
        ("broken", RecordType::MX),
        ("mx.broken", RecordType::A),
        ("_25._tcp.mx.broken", RecordType::TLSA),
        ("_mta-sts.broken", RecordType::TXT),
        // Negative answers from the bogus zone are bogus too: NODATA and
        // NXDOMAIN.
        ("mx.broken", RecordType::MX),
        ("nosuch.broken", RecordType::A),
    ] {
        match query(&resolver, owner, rtype).await {
            Err(LookupError::Bogus { name, reason }) => {
                assert_eq!(name, owner);
                assert!(!reason.is_empty());
            }
            other => panic!("{owner} {rtype}: {other:?}, not Bogus"),
        }
    }
    let mx = within("MX", dns::mx(&resolver, &name("broken"))).await;
    assert!(matches!(mx, Err(LookupError::Bogus { .. })), "{mx:?}");
    let addresses = within("addresses", dns::addresses(&resolver, &name("mx.broken"))).await;
    assert!(
        matches!(addresses, Err(LookupError::Bogus { .. })),
        "{addresses:?}"
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_nxdomain_and_nodata_carry_the_denial_security() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor()).await;
    // No such name in the secure zone: NXDOMAIN, proven by NSEC.
    let nx = query(&resolver, "nosuch.example", RecordType::A).await;
    assert_eq!(
        nx.unwrap_err(),
        LookupError::NxDomain {
            name: "nosuch.example".into(),
            security: dns::Security::Secure
        }
    );
    // The name exists with other types: NODATA, an empty answer.
    let nodata = query(&resolver, "mx.example", RecordType::MX)
        .await
        .unwrap();
    assert!(nodata.records.is_empty(), "{:?}", nodata.records);
    assert_eq!(nodata.security, dns::Security::Secure);
    let none = query(&resolver, "_25._tcp.mx.example", RecordType::TXT)
        .await
        .unwrap();
    assert!(none.records.is_empty());
    // The same under the insecure delegation: not proven.
    let nx = query(&resolver, "nosuch.plain", RecordType::A).await;
    assert_eq!(
        nx.unwrap_err(),
        LookupError::NxDomain {
            name: "nosuch.plain".into(),
            security: dns::Security::Insecure
        }
    );
    let nodata = query(&resolver, "mx.plain", RecordType::MX).await.unwrap();
    assert!(nodata.records.is_empty());
    assert_eq!(nodata.security, dns::Security::Insecure);
    // Through the helpers: no TLSA name is a secure NXDOMAIN (RFC 7672
    // 2.2: then DANE does not apply), and stays an error, not an answer.
    let tlsa = within("TLSA", dns::tlsa(&resolver, &name("mx.example"), 587)).await;
    assert_eq!(
        tlsa.unwrap_err(),
        LookupError::NxDomain {
            name: "_587._tcp.mx.example".into(),
            security: dns::Security::Secure
        }
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_cnames_are_kept_and_the_weakest_link_wins() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor()).await;
    // Inside the secure zone.
    let response = query(&resolver, "www.example", RecordType::A)
        .await
        .unwrap();
    assert!(
        response
            .records
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME),
        "the CNAME is not kept: {:?}",
        response.records
    );
    let inside = within("addresses", dns::addresses(&resolver, &name("www.example")))
        .await
        .unwrap();
    assert_eq!(inside.canonical, "mx.example");
    assert_eq!(inside.records.len(), 2);
    assert_eq!(inside.security, dns::Security::Secure);
    // From the secure zone into the insecure one.
    let response = query(&resolver, "outside.example", RecordType::A)
        .await
        .unwrap();
    assert!(
        response
            .records
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME)
    );
    assert_eq!(response.security, dns::Security::Insecure);
    let typed = within(
        "typed",
        dns::typed(&resolver, &name("outside.example"), RecordType::A, |data| {
            Some(data.to_string())
        }),
    )
    .await
    .unwrap();
    assert_eq!(typed.records, ["127.0.0.1"]);
    assert_eq!(typed.canonical, "mx.plain");
    assert_eq!(typed.security, dns::Security::Insecure);
    let across = within(
        "addresses",
        dns::addresses(&resolver, &name("outside.example")),
    )
    .await
    .unwrap();
    assert_eq!(
        across.records,
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(across.security, dns::Security::Insecure);
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_takes_the_anchor_as_a_ds_record() {
    let zones = zones();
    let resolver = validating(&zones, &zones.trust_anchor_ds()).await;
    assert_eq!(
        security_of(&resolver, "example", RecordType::MX).await,
        dns::Security::Secure
    );
    assert_eq!(
        security_of(&resolver, "plain", RecordType::MX).await,
        dns::Security::Insecure
    );
    let bogus = query(&resolver, "broken", RecordType::MX).await;
    assert!(matches!(bogus, Err(LookupError::Bogus { .. })), "{bogus:?}");
    // Both forms in one file, with comments and a multi-line record.
    let dnskey = std::fs::read_to_string(zones.trust_anchor()).unwrap();
    let ds = std::fs::read_to_string(zones.trust_anchor_ds()).unwrap();
    let ds = ds.trim_end().replacen(" 13 2 ", " 13 2 (\n\t", 1) + " )\n";
    let both = write(
        zones.dir(),
        "both.anchor",
        &format!("; the root\n{dnskey}\n{ds}; the end\n"),
    );
    let resolver = validating(&zones, &both).await;
    assert_eq!(
        security_of(&resolver, "example", RecordType::MX).await,
        dns::Security::Secure
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_with_a_wrong_anchor_makes_secure_names_bogus() {
    let zones = zones();
    let other = stranger_key();
    let wrong = write(
        zones.dir(),
        "wrong.key",
        &format!(". 300 IN DNSKEY {other}\n"),
    );
    let resolver = validating(&zones, &wrong).await;
    for (owner, rtype) in [("example", RecordType::MX), ("mx.example", RecordType::A)] {
        let answer = query(&resolver, owner, rtype).await;
        assert!(
            matches!(answer, Err(LookupError::Bogus { .. })),
            "{owner} {rtype} with a wrong anchor: {answer:?}"
        );
    }
    // A DS of another key matches none the root serves: refused at start.
    let ds = DS::from_key(other.public_key(), &Name::root(), DigestType::SHA256).unwrap();
    let wrong_ds = write(zones.dir(), "wrong.ds", &format!(". 300 IN DS {ds}\n"));
    let refused = start(zones.addr(), Some(&wrong_ds)).await;
    match refused {
        Err(e @ SetupError::NoMatch { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&wrong_ds.display().to_string()) && message.contains("line 1"),
                "{message}"
            );
            assert!(!e.is_temporary());
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("started with a DS that matches no key"),
    }
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_refuses_a_malformed_or_missing_anchor_file() {
    let zones = zones();
    let good = std::fs::read_to_string(zones.trust_anchor()).unwrap();
    let bad = write(
        zones.dir(),
        "bad.key",
        &format!("{good}; fine so far\n. 300 IN DS 1234 13 2 NOT-HEX\n"),
    );
    let message = match start(zones.addr(), Some(&bad)).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a malformed anchor file was accepted"),
    };
    assert!(
        message.contains(&format!("{}, line 3:", bad.display())) && message.contains("NOT-HEX"),
        "{message}"
    );
    let empty = write(zones.dir(), "empty.key", "; nothing here\n");
    let message = match start(zones.addr(), Some(&empty)).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an empty anchor file was accepted"),
    };
    assert!(
        message.contains("no usable DNSKEY or DS record"),
        "{message}"
    );
    let missing = zones.dir().join("missing.key");
    let message = match start(zones.addr(), Some(&missing)).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a missing anchor file was accepted"),
    };
    assert!(
        message.starts_with(&format!(
            "cannot read the trust anchor file {}",
            missing.display()
        )),
        "{message}"
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_through_a_validating_recursive_resolver() {
    if !require_unbound("mx8_validate_through_a_validating_recursive_resolver") {
        return;
    }
    let zones = zones();
    let unbound = Unbound::start(&zones);
    let resolver = start(unbound.addr(), Some(&zones.trust_anchor()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", unbound.diagnostics()));
    assert_eq!(
        security_of(&resolver, "example", RecordType::MX).await,
        dns::Security::Secure,
        "{}",
        unbound.diagnostics()
    );
    assert_eq!(
        security_of(&resolver, "_25._tcp.mx.example", RecordType::TLSA).await,
        dns::Security::Secure
    );
    assert_eq!(
        security_of(&resolver, "plain", RecordType::MX).await,
        dns::Security::Insecure
    );
    // unbound answers SERVFAIL for the bogus zone before hickory sees it:
    // a failure either way, never an empty answer.
    let bogus = query(&resolver, "broken", RecordType::MX).await;
    assert!(
        matches!(
            bogus,
            Err(LookupError::ServFail { .. } | LookupError::Bogus { .. })
        ),
        "{bogus:?}"
    );
    // A DS anchor is checked against the keys fetched through unbound.
    let resolver = start(unbound.addr(), Some(&zones.trust_anchor_ds()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        security_of(&resolver, "example", RecordType::MX).await,
        dns::Security::Secure
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_validate_reports_a_silent_upstream_as_a_timeout() {
    // A UDP socket that never answers, and no TCP listener.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap();
    let zones = zones();
    let resolver = within(
        "start",
        ValidatingResolver::new(
            vec![server],
            Some(&zones.trust_anchor()),
            Duration::from_secs(1),
        ),
    )
    .await
    .unwrap();
    let answer = query(&resolver, "example", RecordType::MX).await;
    assert!(
        matches!(answer, Err(LookupError::Timeout { .. })),
        "{answer:?}"
    );
    // A DS anchor cannot be checked without an answer: a temporary failure.
    let refused = within(
        "start",
        ValidatingResolver::new(
            vec![server],
            Some(&zones.trust_anchor_ds()),
            Duration::from_secs(1),
        ),
    )
    .await;
    match refused {
        Err(e) => assert!(e.is_temporary(), "{e}"),
        Ok(_) => panic!("started without checking the DS anchor"),
    }
}
