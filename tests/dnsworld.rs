//! Tests of the test DNS world itself (tests/support/dns.rs): the resolver
//! double answers the way a validating resolver does, the signed zones
//! carry a working chain of trust, and a real validator (unbound, and
//! hickory's own validation) classifies them Secure, Insecure and Bogus.
//! The delivery tests rely on all of this, so it is proven here, with a
//! plain hickory-net client and queries built by hand.
//!
//! The unbound tests need Debian's unbound (.ci/run installs it). Where it
//! is missing, they fail under CI (`CI` set) and are skipped with a printed
//! notice elsewhere.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};

use crate::support::dns::Transport::{Tcp, Udp};
use crate::support::dns::{
    Ask, Records, ResolverDouble, Security, SignedZones, Unbound, World, ZoneSet, answers, ask,
    require_unbound,
};

/// Every wait of a test ends by this.
const LIMIT: Duration = Duration::from_secs(20);

/// A plain recursive query, one with AD, one with DO (which implies EDNS).
fn plain() -> Ask {
    Ask::default()
}
fn with_ad() -> Ask {
    Ask {
        ad: true,
        ..Ask::default()
    }
}
fn with_do() -> Ask {
    Ask {
        dnssec_ok: true,
        ..Ask::default()
    }
}

async fn must_ask(
    server: std::net::SocketAddr,
    owner: &str,
    rtype: RecordType,
    how: Ask,
) -> Message {
    tokio::time::timeout(LIMIT, ask(server, owner, rtype, how))
        .await
        .unwrap_or_else(|_| panic!("{owner} {rtype}: no answer within {LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{owner} {rtype}: {e}"))
}

/// The world most tests use: a secure domain with MX, A and TLSA, an
/// insecure one, a bogus one, one that fails, and CNAMEs between them.
fn world() -> World {
    let mut world = World::new();
    world.zone("example.net", Security::Secure);
    world.mx("example.net", 10, "mx1.example.net");
    world.mx("example.net", 20, "mx2.example.net");
    world.a("mx1.example.net", "127.0.0.2");
    world.aaaa("mx1.example.net", "::1");
    world.tlsa("_25._tcp.mx1.example.net", 3, 1, 1, &[0xab; 32]);
    world.txt("_mta-sts.example.net", "v=STSv1; id=1");
    world.cname("alias.example.net", "mx1.example.net");
    world.cname("outside.example.net", "mx.plain.example");
    world.mx("plain.example", 10, "mx.plain.example");
    world.a("mx.plain.example", "127.0.0.3");
    // Names marked on their own: insecure in a secure zone, secure outside
    // any zone.
    world.a("unsigned.example.net", "127.0.0.4").insecure();
    world.mx("marked.example", 10, "mx.marked.example").secure();
    world.bogus("bad.example");
    world.mx("bad.example", 10, "mx.bad.example");
    world.mx("down.example", 10, "mx.down.example");
    world.servfail("down.example");
    world
}

// covers: MX8
#[tokio::test]
async fn mx8_double_sets_ad_for_a_secure_name_only_when_the_query_asks() {
    let dns = ResolverDouble::start(world());
    let answer = must_ask(dns.addr(), "example.net", RecordType::MX, plain()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        answers(&answer, RecordType::MX),
        ["10 mx1.example.net.", "20 mx2.example.net."]
    );
    assert!(
        !answer.metadata.authentic_data,
        "AD without AD or DO in the query"
    );
    assert!(
        answer.edns.is_none(),
        "an OPT record in answer to a query without one"
    );
    for how in [with_ad(), with_do()] {
        let answer = must_ask(dns.addr(), "example.net", RecordType::MX, how).await;
        assert!(
            answer.metadata.authentic_data,
            "{how:?}: no AD for a secure name"
        );
        assert_eq!(answers(&answer, RecordType::MX).len(), 2);
    }
    let answer = must_ask(
        dns.addr(),
        "_25._tcp.mx1.example.net",
        RecordType::TLSA,
        with_do(),
    )
    .await;
    assert!(answer.metadata.authentic_data);
    assert_eq!(answers(&answer, RecordType::TLSA).len(), 1);
    // A name marked secure on its own, outside any zone.
    let answer = must_ask(dns.addr(), "marked.example", RecordType::MX, with_ad()).await;
    assert!(answer.metadata.authentic_data);
    let answer = must_ask(dns.addr(), "mx.marked.example", RecordType::A, with_ad()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        !answer.metadata.authentic_data,
        "the mark covers its name only"
    );
    let dnssec_ok = must_ask(dns.addr(), "example.net", RecordType::MX, with_do()).await;
    assert!(
        dnssec_ok.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        "DO not echoed (RFC 3225 3)"
    );

    // The log holds each query's flags, which is how a delivery test proves
    // that tlsend asks for the AD bit.
    let seen = dns.queries_for("example.net", RecordType::MX);
    let flags: Vec<(bool, bool)> = seen.iter().map(|q| (q.ad, q.dnssec_ok)).collect();
    assert_eq!(
        flags,
        [(false, false), (true, false), (false, true), (false, true)]
    );
    assert_eq!(seen[2].edns, Some(1232));
    assert!(seen.iter().all(|q| q.rd && !q.cd));
}

// covers: MX8
#[tokio::test]
async fn mx8_double_never_sets_ad_for_an_insecure_name() {
    let dns = ResolverDouble::start(world());
    let both = Ask {
        ad: true,
        dnssec_ok: true,
        ..Ask::default()
    };
    for (owner, rtype) in [
        ("plain.example", RecordType::MX),
        ("mx.plain.example", RecordType::A),
        // Marked insecure inside a secure zone.
        ("unsigned.example.net", RecordType::A),
    ] {
        let answer = must_ask(dns.addr(), owner, rtype, both).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{owner}"
        );
        assert_eq!(answers(&answer, rtype).len(), 1, "{owner}");
        assert!(
            !answer.metadata.authentic_data,
            "{owner}: AD for an insecure name"
        );
        assert!(answer.metadata.recursion_available);
    }
}

// covers: MX8
#[tokio::test]
async fn mx8_double_answers_servfail_for_bogus_and_failing_names() {
    let dns = ResolverDouble::start(world());
    for (owner, rtype) in [
        ("bad.example", RecordType::MX),
        ("mx.bad.example", RecordType::A),
        ("nothing.bad.example", RecordType::TLSA),
        ("down.example", RecordType::MX),
    ] {
        let answer = must_ask(dns.addr(), owner, rtype, with_do()).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::ServFail,
            "{owner}"
        );
        assert!(
            answer.answers.is_empty() && !answer.metadata.authentic_data,
            "{owner}"
        );
    }
    // With checking disabled, a validating resolver hands out the bogus
    // data, never with AD (RFC 4035 3.2.2); a failing zone still fails.
    let cd = Ask {
        cd: true,
        dnssec_ok: true,
        ..Ask::default()
    };
    let answer = must_ask(dns.addr(), "bad.example", RecordType::MX, cd).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&answer, RecordType::MX), ["10 mx.bad.example."]);
    assert!(!answer.metadata.authentic_data && answer.metadata.checking_disabled);
    let answer = must_ask(dns.addr(), "down.example", RecordType::MX, cd).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

// covers: MX8
#[tokio::test]
async fn mx8_double_tells_nxdomain_from_nodata_with_the_zone_security() {
    let dns = ResolverDouble::start(world());
    // No such name in the secure zone: NXDOMAIN, authenticated, with the
    // zone's SOA.
    let answer = must_ask(dns.addr(), "nosuch.example.net", RecordType::A, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.metadata.authentic_data, "a secure denial has AD");
    let soa = &answer.authorities[0];
    assert_eq!(
        (soa.record_type(), soa.name.to_string().as_str()),
        (RecordType::SOA, "example.net.")
    );
    // The name exists with other types: NOERROR, no data.
    let answer = must_ask(dns.addr(), "mx1.example.net", RecordType::MX, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty() && answer.metadata.authentic_data);
    // An empty non-terminal (`_tcp.mx1.example.net` has only a name below
    // it) exists too (RFC 8020).
    let answer = must_ask(
        dns.addr(),
        "_tcp.mx1.example.net",
        RecordType::TLSA,
        with_do(),
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    // Outside any zone: NXDOMAIN, insecure, with the root's SOA.
    let answer = must_ask(dns.addr(), "nowhere.test", RecordType::MX, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(!answer.metadata.authentic_data);
    assert!(answer.authorities[0].name.is_root());
}

// covers: MX8
#[tokio::test]
async fn mx8_double_includes_cname_chains_and_their_security() {
    let dns = ResolverDouble::start(world());
    let answer = must_ask(dns.addr(), "alias.example.net", RecordType::A, with_do()).await;
    assert_eq!(answers(&answer, RecordType::CNAME), ["mx1.example.net."]);
    assert_eq!(answers(&answer, RecordType::A), ["127.0.0.2"]);
    assert_eq!(answer.answers[1].name.to_string(), "mx1.example.net.");
    assert!(answer.metadata.authentic_data, "a chain of secure names");
    // A secure CNAME to an insecure name: the answer is not authenticated.
    let answer = must_ask(dns.addr(), "outside.example.net", RecordType::A, with_do()).await;
    assert_eq!(answers(&answer, RecordType::A), ["127.0.0.3"]);
    assert!(
        !answer.metadata.authentic_data,
        "AD across an insecure link"
    );
    // Asking for the CNAME itself does not follow it.
    let answer = must_ask(
        dns.addr(),
        "alias.example.net",
        RecordType::CNAME,
        with_do(),
    )
    .await;
    assert_eq!(answer.answers.len(), 1);
    // A chain that ends nowhere: NXDOMAIN, with the chain.
    let mut world = World::new();
    world.cname("dangling.example", "gone.example");
    world.cname("loop1.example", "loop2.example");
    world.cname("loop2.example", "loop1.example");
    dns.update(|w| *w = world);
    let answer = must_ask(dns.addr(), "dangling.example", RecordType::A, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answers(&answer, RecordType::CNAME), ["gone.example."]);
    let answer = must_ask(dns.addr(), "loop1.example", RecordType::A, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

// covers: MX8
#[tokio::test]
async fn mx8_double_truncates_over_udp_and_answers_in_full_over_tcp() {
    let mut world = world();
    let policy = "v=STSv1; id=".to_string() + &"x".repeat(600);
    world.txt("big.example.net", &policy);
    let dns = ResolverDouble::start(world);
    // 512 octets without EDNS.
    let answer = must_ask(dns.addr(), "big.example.net", RecordType::TXT, with_ad()).await;
    assert!(
        answer.metadata.truncation,
        "no TC for an answer over 512 octets"
    );
    assert!(answer.answers.is_empty() && !answer.metadata.authentic_data);
    assert_eq!(
        answer.queries.len(),
        1,
        "the question stays in a truncated answer"
    );
    // The same over TCP: in full, authenticated.
    let tcp = Ask {
        tcp: true,
        ..with_ad()
    };
    let answer = must_ask(dns.addr(), "big.example.net", RecordType::TXT, tcp).await;
    assert!(!answer.metadata.truncation && answer.metadata.authentic_data);
    assert_eq!(answers(&answer, RecordType::TXT), [policy.as_str()]);
    // With EDNS the client's payload size is the limit; small answers fit.
    let edns = Ask {
        edns: Some(1232),
        ..with_ad()
    };
    let answer = must_ask(dns.addr(), "big.example.net", RecordType::TXT, edns).await;
    assert!(!answer.metadata.truncation);
    let transports: Vec<_> = dns
        .queries_for("big.example.net", RecordType::TXT)
        .iter()
        .map(|q| (q.transport, q.edns))
        .collect();
    assert_eq!(transports, [(Udp, None), (Tcp, None), (Udp, Some(1232))]);
    // The table can force TC whatever the client offers.
    dns.update(|w| {
        w.udp_limit(600);
    });
    let answer = must_ask(dns.addr(), "big.example.net", RecordType::TXT, edns).await;
    assert!(answer.metadata.truncation);
}

// covers: MX9
#[tokio::test]
async fn mx9_double_can_go_silent_and_logs_what_it_ignored() {
    let dns = ResolverDouble::start(world());
    dns.set_silent(true);
    let short = Ask {
        limit: Duration::from_millis(300),
        ..with_do()
    };
    let result =
        tokio::time::timeout(LIMIT, ask(dns.addr(), "example.net", RecordType::MX, short)).await;
    assert!(
        matches!(result, Ok(Err(_))),
        "a silent double answered: {result:?}"
    );
    assert!(!dns.queries_for("example.net", RecordType::MX).is_empty());
    dns.set_silent(false);
    let answer = must_ask(dns.addr(), "example.net", RecordType::MX, with_do()).await;
    assert!(answer.metadata.authentic_data);
    assert!(dns.addr().ip().is_loopback());
}

/// The signed world most tests use.
fn zones() -> SignedZones {
    let mut zones = ZoneSet::new();
    zones
        .zone("example", Security::Secure)
        .zone("plain", Security::Insecure)
        .zone("broken", Security::Bogus)
        // Two labels below the root, delegated from it (`net.` is an
        // empty non-terminal of the root zone).
        .zone("example.net", Security::Secure)
        // Nested: an unsigned child of a signed zone.
        .zone("sub.example", Security::Insecure);
    zones
        .mx("example", 10, "mx.example")
        .a("mx.example", "127.0.0.1")
        .tlsa("_25._tcp.mx.example", 3, 1, 1, &[0x5a; 32])
        .txt("_mta-sts.example", "v=STSv1; id=20240101")
        .mx("plain", 10, "mx.plain")
        .a("mx.plain", "127.0.0.1")
        .mx("broken", 10, "mx.broken")
        .a("mx.broken", "127.0.0.1")
        .mx("example.net", 10, "mx1.example.net")
        .aaaa("mx1.example.net", "::1")
        .mx("sub.example", 10, "mx.sub.example");
    SignedZones::start(zones)
}

fn has_rrsig(message: &Message, covering: RecordType) -> bool {
    message
        .answers
        .iter()
        .chain(&message.authorities)
        .any(|r| match &r.data {
            hickory_proto::rr::RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(
                sig,
            )) => sig.input().type_covered == covering,
            _ => false,
        })
}

// covers: MX8
#[tokio::test]
async fn mx8_signed_zones_serve_signatures_and_delegations() {
    let zones = zones();
    let server = zones.addr();
    let answer = must_ask(server, "example", RecordType::MX, with_do()).await;
    assert!(answer.metadata.authoritative);
    assert_eq!(answers(&answer, RecordType::MX), ["10 mx.example."]);
    assert!(
        has_rrsig(&answer, RecordType::MX),
        "no RRSIG over the MX: {answer:?}"
    );
    let answer = must_ask(server, ".", RecordType::DNSKEY, with_do()).await;
    assert_eq!(answers(&answer, RecordType::DNSKEY).len(), 1);
    // The DS of a child comes from the parent, signed by the parent.
    let answer = must_ask(server, "example", RecordType::DS, with_do()).await;
    assert_eq!(answers(&answer, RecordType::DS).len(), 1, "{answer:?}");
    assert!(has_rrsig(&answer, RecordType::DS));
    let answer = must_ask(server, "broken", RecordType::DS, with_do()).await;
    assert_eq!(answers(&answer, RecordType::DS).len(), 1);
    // An insecure delegation: no DS, and an NSEC that proves it.
    let answer = must_ask(server, "plain", RecordType::DS, with_do()).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
    assert!(
        has_rrsig(&answer, RecordType::NSEC),
        "no signed NSEC: {answer:?}"
    );
    // The unsigned zone has no signatures at all.
    let answer = must_ask(server, "plain", RecordType::MX, with_do()).await;
    assert_eq!(answers(&answer, RecordType::MX), ["10 mx.plain."]);
    assert!(!has_rrsig(&answer, RecordType::MX));
    // The trust anchor file holds the root key.
    let anchor = std::fs::read_to_string(zones.trust_anchor()).unwrap();
    assert!(anchor.starts_with(". 300 IN DNSKEY 257 3 13 "), "{anchor}");
    assert!(
        TrustAnchors::from_file(&zones.trust_anchor())
            .unwrap()
            .len()
            == 1
    );
    let ds = std::fs::read_to_string(zones.trust_anchor_ds()).unwrap();
    assert!(
        ds.starts_with(". 300 IN DS ") && ds.contains(" 13 2 "),
        "{ds}"
    );
}

// covers: MX8
#[tokio::test]
async fn mx8_unbound_over_signed_zones_sets_ad_for_secure_only() {
    if !require_unbound("mx8_unbound_over_signed_zones_sets_ad_for_secure_only") {
        return;
    }
    let zones = zones();
    let unbound = Unbound::start(&zones);
    let resolver = unbound.addr();
    let context = || unbound.diagnostics();

    let answer = must_ask(resolver, "example", RecordType::MX, with_ad()).await;
    assert_eq!(
        answers(&answer, RecordType::MX),
        ["10 mx.example."],
        "{}",
        context()
    );
    assert!(
        answer.metadata.authentic_data,
        "secure MX without AD\n{}",
        context()
    );
    let answer = must_ask(resolver, "_25._tcp.mx.example", RecordType::TLSA, with_do()).await;
    assert_eq!(answers(&answer, RecordType::TLSA).len(), 1, "{}", context());
    assert!(
        answer.metadata.authentic_data,
        "secure TLSA without AD\n{}",
        context()
    );
    // A secure denial (NSEC) is authenticated too.
    let answer = must_ask(resolver, "nosuch.example", RecordType::A, with_do()).await;
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::NXDomain,
        "{}",
        context()
    );
    assert!(
        answer.metadata.authentic_data,
        "secure NXDOMAIN without AD\n{}",
        context()
    );
    // unbound, too, leaves AD out for a client that did not ask.
    let answer = must_ask(resolver, "mx.example", RecordType::A, plain()).await;
    assert_eq!(answers(&answer, RecordType::A), ["127.0.0.1"]);
    assert!(
        !answer.metadata.authentic_data,
        "AD for a client that did not ask"
    );

    let answer = must_ask(resolver, "example.net", RecordType::MX, with_do()).await;
    assert_eq!(
        answers(&answer, RecordType::MX),
        ["10 mx1.example.net."],
        "{}",
        context()
    );
    assert!(answer.metadata.authentic_data, "{}", context());

    for (owner, mx) in [
        ("plain", "10 mx.plain."),
        ("sub.example", "10 mx.sub.example."),
    ] {
        let answer = must_ask(resolver, owner, RecordType::MX, with_do()).await;
        assert_eq!(answers(&answer, RecordType::MX), [mx], "{}", context());
        assert!(
            !answer.metadata.authentic_data,
            "AD for the unsigned {owner}"
        );
    }

    let answer = must_ask(resolver, "broken", RecordType::MX, with_do()).await;
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::ServFail,
        "{}",
        context()
    );
    assert!(answer.answers.is_empty());
    let log = unbound.log();
    assert!(log.contains("validation failure <broken. MX IN>"), "{log}");
}

/// What hickory's own validation concludes for `owner`/`rtype`.
async fn validate_locally(
    resolver: &Resolver<TokioRuntimeProvider>,
    owner: &str,
    rtype: RecordType,
) -> Result<Security, String> {
    let lookup = tokio::time::timeout(LIMIT, resolver.lookup(owner, rtype))
        .await
        .map_err(|_| format!("{owner} {rtype}: no answer within {LIMIT:?}"))?;
    match lookup {
        Ok(lookup) => {
            let proofs: Vec<Proof> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.proof)
                .collect();
            match proofs.as_slice() {
                [] => Err(format!("{owner} {rtype}: no records")),
                p if p.iter().all(|p| p.is_secure()) => Ok(Security::Secure),
                p if p.iter().all(|p| p.is_insecure()) => Ok(Security::Insecure),
                p => Err(format!("{owner} {rtype}: mixed proofs {p:?}")),
            }
        }
        Err(NetError::Dns(DnsError::DnssecBogus)) => Ok(Security::Bogus),
        Err(e) => Err(format!("{owner} {rtype}: {e}")),
    }
}

// covers: MX8
#[tokio::test]
async fn mx8_hickory_validates_signed_zones_locally_from_the_anchor_file() {
    let zones = zones();
    let mut server = NameServerConfig::udp_and_tcp(zones.addr().ip());
    for connection in &mut server.connections {
        connection.port = zones.port();
    }
    let anchors =
        TrustAnchors::from_file(&zones.trust_anchor()).expect("read the trust anchor file");
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::new(),
    )
    .with_trust_anchor(Arc::new(anchors));
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    let resolver = builder.build().expect("a validating resolver");
    for (owner, rtype, expected) in [
        ("example", RecordType::MX, Security::Secure),
        ("_25._tcp.mx.example", RecordType::TLSA, Security::Secure),
        ("mx1.example.net", RecordType::AAAA, Security::Secure),
        ("plain", RecordType::MX, Security::Insecure),
        ("sub.example", RecordType::MX, Security::Insecure),
        ("broken", RecordType::MX, Security::Bogus),
    ] {
        let got = validate_locally(&resolver, owner, rtype).await;
        assert_eq!(got, Ok(expected), "{owner} {rtype}");
    }
}
