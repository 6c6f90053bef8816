//! Direct delivery through the real binary: MX hosts on loopback addresses
//! behind a resolver double that answers like a validating resolver. Each
//! test checks the exit status, the status on stderr, and what reached
//! every host; in require mode no MAIL FROM may reach a host that failed
//! any check.

use crate::support::certs::{MintOptions, Minted, sha256};
use crate::support::dns::{Records, Security, World};
use crate::support::mx::{MxWorld, host};
use crate::support::{Advertise, Behaviour, Output, StartTls, Step, assert_exit};

const MESSAGE: &str = "From: Alice <alice@example.org>\n\
To: Bob <bob@example.net>\n\
Subject: direct\n\
Date: Sun, 29 Nov 2026 23:30:00 +0100\n\
Message-ID: <direct.1@example.org>\n\
\n\
Hello Bob, directly.\n";

const MX1: &str = "127.0.0.2";
const MX2: &str = "127.0.0.3";

/// example.net with `mx1.example.net` (10) on MX1 and, if `two`,
/// `mx2.example.net` (20) on MX2; the zone as `security` says.
fn example_net(security: Security, two: bool) -> World {
    let mut world = World::new();
    world.zone("example.net", security);
    world.mx("example.net", 10, "mx1.example.net");
    world.a("mx1.example.net", MX1);
    if two {
        world.mx("example.net", 20, "mx2.example.net");
        world.a("mx2.example.net", MX2);
    }
    world
}

fn valid(name: &str) -> Behaviour {
    host(name, MintOptions::default()).0
}

fn send(world: &MxWorld, flags: &[&str]) -> Output {
    let mut tlsend = world.tlsend();
    tlsend.args(flags).arg("bob@example.net").stdin(MESSAGE);
    tlsend.run()
}

// covers: MX2, MX3
#[test]
fn mx3_secure_mx_with_webpki_and_requiretls_delivers() {
    let world = MxWorld::start(
        example_net(Security::Secure, false),
        vec![(MX1, valid("mx1.example.net"))],
    );
    let output = send(&world, &["--require-tls", "-v"]);
    assert_exit(
        &output,
        0,
        &[
            "MX answer DNSSEC secure",
            "name validated by DNSSEC",
            "REQUIRETLS advertised after TLS",
            "WebPKI",
        ],
    );
    let messages = world.server(MX1).messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].mail_from.contains("REQUIRETLS"), "{messages:?}");
    assert!(messages[0].tls);
    assert!(messages[0].text().contains("Hello Bob, directly."));
    // The resolver was asked in a way that lets it report authenticity.
    assert!(
        world.dns.queries().iter().all(|q| q.wants_ad()),
        "{:?}",
        world.dns.queries()
    );
}

// covers: MX2, MX5
#[test]
fn mx2_an_insecure_mx_is_refused_in_require_mode_and_used_in_default_mode() {
    let world = MxWorld::start(
        example_net(Security::Insecure, false),
        vec![(MX1, valid("mx1.example.net"))],
    );
    let refused = send(&world, &["--require-tls"]);
    assert_exit(
        &refused,
        69,
        &[
            "5.7.10",
            "neither DNSSEC secure nor listed in an MTA-STS policy",
        ],
    );
    assert_eq!(
        world.server(MX1).connections(),
        0,
        "a skipped host is never contacted"
    );

    let delivered = send(&world, &[]);
    assert_exit(&delivered, 0, &[]);
    let messages = world.server(MX1).messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls, "STARTTLS is used when offered");
    assert!(!messages[0].mail_from.contains("REQUIRETLS"));
}

// covers: MX4, FAIL1
#[test]
fn mx4_first_mx_lacks_requiretls_second_gets_the_message() {
    let no_requiretls = Behaviour {
        requiretls: Advertise::Never,
        ..valid("mx1.example.net")
    };
    let world = MxWorld::start(
        example_net(Security::Secure, true),
        vec![(MX1, no_requiretls), (MX2, valid("mx2.example.net"))],
    );
    let output = send(&world, &["--require-tls", "-v"]);
    assert_exit(&output, 0, &["REQUIRETLS not advertised after TLS"]);
    assert!(
        !world.server(MX1).saw("MAIL"),
        "the first host saw no MAIL FROM"
    );
    assert!(world.server(MX1).saw("QUIT"), "the first host got QUIT");
    assert_eq!(world.server(MX2).messages().len(), 1);
}

// covers: FAIL1, MX4
#[test]
fn fail1_no_mx_with_requiretls_is_5_7_30_and_nothing_is_sent() {
    // The first host cannot give verified TLS, the second lacks
    // REQUIRETLS: some host gave verified TLS, so 5.7.30.
    let (self_signed, _) = host(
        "mx1.example.net",
        MintOptions {
            self_signed: true,
            ..MintOptions::default()
        },
    );
    let never = Behaviour {
        requiretls: Advertise::Never,
        ..valid("mx2.example.net")
    };
    let world = MxWorld::start(
        example_net(Security::Secure, true),
        vec![(MX1, self_signed), (MX2, never)],
    );
    let output = send(&world, &["--require-tls"]);
    assert_exit(
        &output,
        69,
        &["5.7.30", "mx1.example.net", "mx2.example.net"],
    );
    for address in [MX1, MX2] {
        assert!(
            !world.server(address).saw("MAIL"),
            "{address} saw MAIL FROM"
        );
    }
    assert!(output.stderr.contains("saved"), "{}", output.stderr);
}

// covers: FAIL1, MX3
#[test]
fn fail1_no_mx_with_a_valid_certificate_is_5_7_10() {
    let (self_signed, _) = host(
        "mx1.example.net",
        MintOptions {
            self_signed: true,
            ..MintOptions::default()
        },
    );
    let (expired, _) = host(
        "mx2.example.net",
        MintOptions {
            expired: true,
            ..MintOptions::default()
        },
    );
    let world = MxWorld::start(
        example_net(Security::Secure, true),
        vec![(MX1, self_signed), (MX2, expired)],
    );
    let output = send(&world, &["--require-tls"]);
    assert_exit(&output, 69, &["5.7.10"]);
    for address in [MX1, MX2] {
        assert!(
            !world.server(address).saw("MAIL"),
            "{address} saw MAIL FROM"
        );
    }
}

// covers: MX4
#[test]
fn mx4_an_unreachable_first_mx_is_passed_over() {
    // 127.0.0.9 has no server: the connection is refused.
    let mut zone = example_net(Security::Secure, false);
    zone.mx("example.net", 5, "down.example.net");
    zone.a("down.example.net", "127.0.0.9");
    zone.mx("example.net", 7, "silent.example.net");
    zone.a("silent.example.net", MX2);
    let silent = Behaviour {
        silent_at: Some(Step::Greeting),
        ..valid("silent.example.net")
    };
    let world = MxWorld::start(zone, vec![(MX1, valid("mx1.example.net")), (MX2, silent)]);
    let output = send(&world, &["--require-tls", "-v"]);
    assert_exit(&output, 0, &["127.0.0.9", "silent.example.net"]);
    assert_eq!(world.server(MX1).messages().len(), 1);
}

/// A host whose certificate is `minted` for `cert_name`, with TLSA records
/// in a secure zone.
fn dane_world(
    cert_name: &str,
    options: MintOptions,
    tlsa: impl Fn(&Minted) -> Vec<(u8, u8, u8, Vec<u8>)>,
    behaviour: impl Fn(Behaviour) -> Behaviour,
) -> MxWorld {
    let (server, minted) = host(cert_name, options);
    let mut zone = example_net(Security::Secure, false);
    for (usage, selector, matching, data) in tlsa(&minted) {
        zone.tlsa("_25._tcp.mx1.example.net", usage, selector, matching, &data);
    }
    MxWorld::start(zone, vec![(MX1, behaviour(server))])
}

type TlsaFor = fn(&Minted) -> Vec<(u8, u8, u8, Vec<u8>)>;

/// One DANE case: the certificate the host presents, its TLSA records,
/// how the host behaves, the flag tlsend gets, and what must happen.
struct DaneCase {
    id: &'static str,
    cert_name: &'static str,
    options: MintOptions,
    tlsa: TlsaFor,
    shape: fn(Behaviour) -> Behaviour,
    flag: &'static str,
    code: i32,
    delivered: bool,
}

// covers: MX3
#[test]
fn mx3_dane_records_decide_the_certificate() {
    let other = MintOptions {
        self_signed: true,
        expired: true,
        ..MintOptions::default()
    };
    let ee: TlsaFor = |m| vec![(3, 1, 1, sha256(&m.spki()))];
    let ee_wrong: TlsaFor = |_| vec![(3, 1, 1, vec![0x55; 32])];
    let ta: TlsaFor = |m| vec![(2, 0, 1, sha256(m.issuer_der.as_ref()))];
    let unusable: TlsaFor = |m| vec![(1, 1, 1, sha256(&m.spki()))];
    let with_issuer = MintOptions {
        with_issuer: true,
        ..MintOptions::default()
    };
    let same: fn(Behaviour) -> Behaviour = |b| b;
    let stripped: fn(Behaviour) -> Behaviour = |b| Behaviour {
        starttls: StartTls::Stripped,
        ..b
    };
    #[rustfmt::skip]
    let cases = [
        DaneCase { id: "DANE-EE match, wrong name and expired", cert_name: "other.example", options: other, tlsa: ee, shape: same, flag: "--require-tls", code: 0, delivered: true },
        DaneCase { id: "DANE-EE mismatch, require", cert_name: "mx1.example.net", options: MintOptions::default(), tlsa: ee_wrong, shape: same, flag: "--require-tls", code: 69, delivered: false },
        DaneCase { id: "DANE-EE mismatch, default: no fallback", cert_name: "mx1.example.net", options: MintOptions::default(), tlsa: ee_wrong, shape: same, flag: "-oi", code: 75, delivered: false },
        DaneCase { id: "DANE-TA, right name", cert_name: "mx1.example.net", options: with_issuer, tlsa: ta, shape: same, flag: "--require-tls", code: 0, delivered: true },
        DaneCase { id: "DANE-TA, wrong name", cert_name: "wrong.example", options: with_issuer, tlsa: ta, shape: same, flag: "--require-tls", code: 69, delivered: false },
        DaneCase { id: "only unusable records, require", cert_name: "mx1.example.net", options: MintOptions::default(), tlsa: unusable, shape: same, flag: "--require-tls", code: 69, delivered: false },
        DaneCase { id: "only unusable records, default: encrypted", cert_name: "mx1.example.net", options: MintOptions::default(), tlsa: unusable, shape: same, flag: "-oi", code: 0, delivered: true },
        DaneCase { id: "STARTTLS stripped on a DANE host", cert_name: "mx1.example.net", options: MintOptions::default(), tlsa: ee, shape: stripped, flag: "-oi", code: 75, delivered: false },
    ];
    for case in cases {
        let DaneCase {
            id,
            cert_name,
            options,
            tlsa,
            shape,
            flag,
            code,
            delivered,
        } = case;
        let world = dane_world(cert_name, options, tlsa, shape);
        let output = send(&world, &[flag, "-v"]);
        assert_eq!(output.code, Some(code), "{id}: {}", output.stderr);
        assert_eq!(
            world.server(MX1).saw("MAIL"),
            delivered,
            "{id}: {}",
            output.stderr
        );
        if delivered {
            assert!(world.server(MX1).messages()[0].tls, "{id}");
        }
    }
}

// covers: MX3
#[test]
fn mx3_tlsa_in_an_insecure_zone_is_ignored() {
    // A signed MX record naming a host in an unsigned zone, whose (wrong)
    // TLSA record must not be used: WebPKI decides.
    let mut zone = World::new();
    zone.zone("example.net", Security::Secure);
    zone.zone("hoster.example", Security::Insecure);
    zone.mx("example.net", 10, "mx1.hoster.example");
    zone.a("mx1.hoster.example", MX1);
    zone.tlsa("_25._tcp.mx1.hoster.example", 3, 1, 1, &[0x55; 32]);
    let world = MxWorld::start(zone, vec![(MX1, valid("mx1.hoster.example"))]);
    let output = send(&world, &["--require-tls", "-v"]);
    assert_exit(
        &output,
        0,
        &[
            "TLSA not looked up (the host's addresses are not DNSSEC secure)",
            "WebPKI",
        ],
    );
    assert_eq!(world.server(MX1).messages().len(), 1);
    assert!(
        world
            .dns
            .queries()
            .iter()
            .all(|q| q.rtype != hickory_proto::rr::RecordType::TLSA),
        "no TLSA query for an insecure host"
    );
}

// covers: MX1
#[test]
fn mx1_null_mx_and_unknown_domains_fail_at_once_with_68() {
    let mut zone = World::new();
    zone.zone("example.net", Security::Secure);
    zone.mx("example.net", 0, ".");
    let world = MxWorld::start(zone, vec![(MX1, valid("mx1.example.net"))]);
    let output = send(&world, &[]);
    assert_exit(&output, 68, &["5.1.10", "null MX"]);
    assert_eq!(world.server(MX1).connections(), 0);

    let mut tlsend = world.tlsend();
    tlsend.arg("bob@nowhere.example").stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(&output, 68, &["5.1.2", "does not exist"]);
}

// covers: MX1
#[test]
fn mx1_a_domain_without_mx_gets_mail_at_its_address() {
    let mut zone = World::new();
    zone.zone("example.net", Security::Secure);
    zone.a("example.net", MX1);
    let world = MxWorld::start(zone, vec![(MX1, valid("example.net"))]);
    let output = send(&world, &["--require-tls", "-v"]);
    assert_exit(&output, 0, &["no MX: the domain itself"]);
    assert_eq!(world.server(MX1).messages().len(), 1);
}

// covers: MX8, MX3
#[test]
fn mx8_a_bogus_answer_is_a_temporary_failure_and_the_message_is_kept() {
    let mut zone = example_net(Security::Secure, false);
    zone.bogus("example.net");
    let world = MxWorld::start(zone, vec![(MX1, valid("mx1.example.net"))]);
    let mut tlsend = world.tlsend();
    tlsend.arg("bob@example.net").stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(&output, 75, &["4.4.3", "SERVFAIL"]);
    assert_eq!(world.server(MX1).connections(), 0);
    let saved = tlsend.dead_letter().expect("the message is saved");
    assert!(saved.contains("Hello Bob, directly."));
}

// covers: MX6
#[test]
fn mx6_optional_mode_retries_in_plain_text_when_tls_fails() {
    let broken = Behaviour {
        starttls: StartTls::InjectAfter220(b"250 injected\r\n".to_vec()),
        ..valid("mx1.example.net")
    };
    let world = MxWorld::start(example_net(Security::Insecure, false), vec![(MX1, broken)]);
    let output = send(&world, &["--tls-optional", "-v"]);
    assert_exit(&output, 0, &["trying again in plain text"]);
    let messages = world.server(MX1).messages();
    assert_eq!(messages.len(), 1);
    assert!(!messages[0].tls);
    assert!(messages[0].text().contains("TLS-Required: No"));
    assert_eq!(world.server(MX1).connections(), 2);
}

// covers: MX1, FAIL2
#[test]
fn mx1_each_domain_gets_its_own_result() {
    let mut zone = example_net(Security::Secure, false);
    zone.zone("null.example", Security::Secure);
    zone.mx("null.example", 0, ".");
    let world = MxWorld::start(zone, vec![(MX1, valid("mx1.example.net"))]);
    let mut tlsend = world.tlsend();
    tlsend
        .args(["bob@example.net", "carol@null.example"])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        68,
        &[
            "bob@example.net: delivered via mx1.example.net[127.0.0.2]",
            "carol@null.example: not delivered: 5.1.10",
        ],
    );
    let messages = world.server(MX1).messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec!["RCPT TO:<bob@example.net>"]);
}

// covers: MX8, MX2
#[test]
fn mx8_tlsend_reads_the_ad_bit_of_a_real_validating_resolver() {
    use crate::support::dns::{SignedZones, Unbound, ZoneSet, require_unbound};
    use crate::support::mx::{MxHosts, direct_tlsend};
    if !require_unbound("mx8_tlsend_reads_the_ad_bit_of_a_real_validating_resolver") {
        return;
    }
    let mut zones = ZoneSet::new();
    zones
        .zone("example.net", Security::Secure)
        .zone("plain.example", Security::Insecure)
        .zone("broken.example", Security::Bogus);
    zones
        .mx("example.net", 10, "mx1.example.net")
        .a("mx1.example.net", MX1)
        .mx("plain.example", 10, "mx.plain.example")
        .a("mx.plain.example", MX2)
        .mx("broken.example", 10, "mx.broken.example")
        .a("mx.broken.example", MX2);
    let zones = SignedZones::start(zones);
    let unbound = Unbound::start(&zones);
    let hosts = MxHosts::start(vec![
        (MX1, valid("mx1.example.net")),
        (MX2, valid("mx.plain.example")),
    ]);
    let run = |recipient: &str| {
        let mut tlsend = direct_tlsend(unbound.addr(), hosts.port, "");
        tlsend
            .args(["--require-tls", "-v", recipient])
            .stdin(MESSAGE);
        tlsend.run()
    };
    let context = || unbound.diagnostics();

    let secure = run("bob@example.net");
    assert_eq!(secure.code, Some(0), "{}\n{}", secure.stderr, context());
    assert!(
        secure.stderr.contains("MX answer DNSSEC secure"),
        "{}",
        secure.stderr
    );
    assert_eq!(hosts.server(MX1).messages().len(), 1);

    let insecure = run("bob@plain.example");
    assert_eq!(
        insecure.code,
        Some(69),
        "{}\n{}",
        insecure.stderr,
        context()
    );
    assert!(insecure.stderr.contains("5.7.10"), "{}", insecure.stderr);

    let bogus = run("bob@broken.example");
    assert_eq!(bogus.code, Some(75), "{}\n{}", bogus.stderr, context());
    assert!(bogus.stderr.contains("SERVFAIL"), "{}", bogus.stderr);
    assert_eq!(
        hosts.server(MX2).connections(),
        0,
        "nothing reached the unvalidated host"
    );
}

/// An insecure example.net whose MX `mx_name` (on MX1) is vouched for, or
/// not, by an MTA-STS policy served over HTTPS on 127.0.0.1.
struct StsWorld {
    world: MxWorld,
    policy: crate::support::https::PolicyServer,
}

impl StsWorld {
    fn start(mx_name: &str, txt: &str, response: crate::support::https::HttpResponse) -> StsWorld {
        Self::start_with_cert("mta-sts.example.net", mx_name, txt, response)
    }

    fn start_with_cert(
        cert_name: &str,
        mx_name: &str,
        txt: &str,
        response: crate::support::https::HttpResponse,
    ) -> StsWorld {
        use crate::support::https::PolicyServer;
        let (_, minted) = host(cert_name, MintOptions::default());
        let policy = PolicyServer::start(
            "127.0.0.1:0".parse().expect("an address"),
            minted.server_config(),
            response,
        );
        let mut zone = World::new();
        zone.zone("example.net", Security::Insecure);
        zone.mx("example.net", 10, mx_name);
        zone.a(mx_name, MX1);
        zone.txt("_mta-sts.example.net", txt);
        zone.a("mta-sts.example.net", "127.0.0.1");
        let world = MxWorld::start(zone, vec![(MX1, valid(mx_name))]);
        StsWorld { world, policy }
    }

    fn tlsend(&self) -> crate::support::Tlsend {
        crate::support::mx::direct_tlsend(
            self.world.dns.addr(),
            self.world.port,
            &format!("mta_sts_port = {}\n", self.policy.addr.port()),
        )
    }

    /// Runs sharing one MTA-STS cache directory.
    fn tlsend_with_cache(&self, cache: &std::path::Path) -> crate::support::Tlsend {
        crate::support::mx::direct_tlsend(
            self.world.dns.addr(),
            self.world.port,
            &format!(
                "mta_sts_port = {}\nmta_sts_cache = \"{}\"\n",
                self.policy.addr.port(),
                cache.display()
            ),
        )
    }
}

fn enforce(mx: &[&str]) -> crate::support::https::HttpResponse {
    let mx: String = mx.iter().map(|m| format!("mx: {m}\r\n")).collect();
    crate::support::https::HttpResponse::policy(&format!(
        "version: STSv1\r\nmode: enforce\r\n{mx}max_age: 86400\r\n"
    ))
}

fn run(tlsend: &mut crate::support::Tlsend, flags: &[&str]) -> Output {
    tlsend.args(flags).arg("bob@example.net").stdin(MESSAGE);
    tlsend.run()
}

// covers: MX2, MX7
#[test]
fn mx2_an_mta_sts_policy_vouches_for_an_insecure_mx_in_require_mode() {
    let sts = StsWorld::start(
        "mx1.example.net",
        "v=STSv1; id=20261129;",
        enforce(&["*.example.net"]),
    );
    let output = run(&mut sts.tlsend(), &["--require-tls", "-v"]);
    assert_exit(
        &output,
        0,
        &[
            "MTA-STS policy for example.net (id 20261129, fetched",
            "name listed in MTA-STS policy 20261129 (enforce)",
        ],
    );
    assert_eq!(sts.world.server(MX1).messages().len(), 1);
    assert_eq!(
        sts.policy.requests(),
        vec!["GET /.well-known/mta-sts.txt HTTP/1.1 host=mta-sts.example.net"]
    );
}

// covers: MX5, MX2
#[test]
fn mx5_mta_sts_enforce_skips_an_mx_it_does_not_list() {
    // `*.example.net` matches one label only: not a.b.example.net.
    let sts = StsWorld::start(
        "a.b.example.net",
        "v=STSv1; id=1;",
        enforce(&["*.example.net"]),
    );
    let output = run(&mut sts.tlsend(), &["-v"]);
    assert_exit(&output, 75, &["does not list it"]);
    assert_eq!(sts.world.server(MX1).connections(), 0);
}

// covers: MX7
#[test]
fn mx7_a_cached_policy_is_reused_until_the_txt_id_changes() {
    let sts = StsWorld::start(
        "mx1.example.net",
        "v=STSv1; id=1;",
        enforce(&["mx1.example.net"]),
    );
    let cache = tempfile::tempdir().expect("a cache directory");
    let mut first = sts.tlsend_with_cache(cache.path());
    assert_exit(&run(&mut first, &["--require-tls"]), 0, &[]);
    assert_eq!(sts.policy.requests().len(), 1);

    // The policy host now fails; the cached policy (same id) still applies.
    sts.policy
        .set_response(crate::support::https::HttpResponse::status(404, &[]));
    let mut second = sts.tlsend_with_cache(cache.path());
    let output = run(&mut second, &["--require-tls", "-v"]);
    assert_exit(&output, 0, &["from the cache"]);
    assert_eq!(
        sts.policy.requests().len(),
        1,
        "no fetch for an unchanged id"
    );

    // A new id: fetched again, and the new policy no longer lists the host.
    sts.world.dns.update(|w| {
        w.remove("_mta-sts.example.net", hickory_proto::rr::RecordType::TXT);
        w.txt("_mta-sts.example.net", "v=STSv1; id=2;");
    });
    sts.policy.set_response(enforce(&["other.example.net"]));
    let mut third = sts.tlsend_with_cache(cache.path());
    let output = run(&mut third, &["-v"]);
    assert_exit(&output, 75, &["does not list it"]);
    assert_eq!(sts.policy.requests().len(), 2);
    assert_eq!(sts.world.server(MX1).messages().len(), 2);
}

// covers: MX7, MX2
#[test]
fn mx7_a_policy_that_cannot_be_fetched_safely_counts_for_nothing() {
    use crate::support::https::HttpResponse;
    // A due fetch that fails leaves it unknown whether a policy is in
    // force: the host waits (75, 4.7.10) rather than being ruled out for
    // good; a policy in mode none rules nothing in (69, 5.7.10).
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, HttpResponse, &str, i32, &str)> = vec![
        ("wrong certificate name", "www.example.net", enforce(&["mx1.example.net"]), "mta-sts.example.net", 75, "4.7.10"),
        ("404", "mta-sts.example.net", HttpResponse::status(404, &[]), "404", 75, "4.7.10"),
        ("redirect", "mta-sts.example.net", HttpResponse::status(301, &[("Location", "https://mta-sts.example.net/elsewhere")]), "301", 75, "4.7.10"),
        ("over 64 KiB", "mta-sts.example.net", HttpResponse::policy(&format!("version: STSv1\nmode: enforce\nmx: mx1.example.net\nmax_age: 86400\n{}", "x: y\n".repeat(14000))), "65536", 75, "4.7.10"),
        ("not text/plain", "mta-sts.example.net", HttpResponse { headers: vec![("Content-Type".into(), "text/html".into())], ..enforce(&["mx1.example.net"]) }, "text/html", 75, "4.7.10"),
        ("mode none", "mta-sts.example.net", HttpResponse::policy("version: STSv1\nmode: none\nmax_age: 86400\n"), "mode none", 69, "5.7.10"),
    ];
    for (id, cert_name, response, needle, code, status) in cases {
        let sts =
            StsWorld::start_with_cert(cert_name, "mx1.example.net", "v=STSv1; id=1;", response);
        let output = run(&mut sts.tlsend(), &["--require-tls", "-v"]);
        assert_eq!(output.code, Some(code), "{id}: {}", output.stderr);
        assert!(
            output.stderr.contains(needle),
            "{id}: {needle:?} missing: {}",
            output.stderr
        );
        assert!(output.stderr.contains(status), "{id}: {}", output.stderr);
        assert_eq!(sts.world.server(MX1).connections(), 0, "{id}");
        assert!(
            sts.policy.requests().len() <= 1,
            "{id}: {:?}",
            sts.policy.requests()
        );
    }
}

// covers: MX7, MX5
#[test]
fn mx7_testing_mode_is_reported_and_never_enforced() {
    use crate::support::https::HttpResponse;
    let testing = HttpResponse::policy(
        "version: STSv1\nmode: testing\nmx: other.example.net\nmax_age: 86400\n",
    );
    let sts = StsWorld::start("mx1.example.net", "v=STSv1; id=7;", testing);
    let output = run(&mut sts.tlsend(), &["-v"]);
    assert_exit(&output, 0, &["mode testing"]);
    assert_eq!(sts.world.server(MX1).messages().len(), 1);
}

// covers: MX8, MX9
#[test]
fn mx8_local_validation_from_a_configured_trust_anchor() {
    use crate::support::dns::{SignedZones, ZoneSet};
    use crate::support::mx::{MxHosts, direct_tlsend};
    let mut zones = ZoneSet::new();
    zones
        .zone("example.net", Security::Secure)
        .zone("broken.example", Security::Bogus);
    zones
        .mx("example.net", 10, "mx1.example.net")
        .a("mx1.example.net", MX1)
        .mx("broken.example", 10, "mx.broken.example")
        .a("mx.broken.example", MX1);
    let zones = SignedZones::start(zones);
    let hosts = MxHosts::start(vec![(MX1, valid("mx1.example.net"))]);
    let run = |recipient: &str| {
        let extra = format!(
            "dnssec = \"validate\"\ntrust_anchor = \"{}\"\n",
            zones.trust_anchor().display()
        );
        let mut tlsend = direct_tlsend(zones.addr(), hosts.port, &extra);
        tlsend
            .args(["--require-tls", "-v", recipient])
            .stdin(MESSAGE);
        tlsend.run()
    };
    let secure = run("bob@example.net");
    assert_exit(
        &secure,
        0,
        &["local DNSSEC validation", "MX answer DNSSEC secure"],
    );
    assert_eq!(hosts.server(MX1).messages().len(), 1);

    let bogus = run("bob@broken.example");
    assert_exit(&bogus, 75, &["bogus"]);
    assert_eq!(
        hosts.server(MX1).messages().len(),
        1,
        "nothing more arrived"
    );
}

// covers: FAIL7, MX1
#[test]
fn fail7_a_signal_waits_for_pending_verdicts_and_starts_nothing_new() {
    use std::time::{Duration, Instant};
    // example.net's host answers the message 3 s late; other.example's
    // first host never greets (1 s limit), its second would deliver.
    let slow = Behaviour {
        end_of_data_delay: Some(Duration::from_secs(3)),
        ..valid("mx1.example.net")
    };
    let silent = Behaviour {
        silent_at: Some(Step::Greeting),
        ..valid("a.other.example")
    };
    let mut zone = example_net(Security::Secure, false);
    zone.zone("other.example", Security::Secure);
    zone.mx("other.example", 10, "a.other.example");
    zone.a("a.other.example", MX2);
    zone.mx("other.example", 20, "b.other.example");
    zone.a("b.other.example", "127.0.0.4");
    let world = MxWorld::start(
        zone,
        vec![
            (MX1, slow),
            (MX2, silent),
            ("127.0.0.4", valid("b.other.example")),
        ],
    );
    let mut tlsend =
        crate::support::mx::direct_tlsend(world.dns.addr(), world.port, "timeout = 1\n");
    tlsend
        .args(["-v", "bob@example.net", "carol@other.example"])
        .stdin(MESSAGE);
    let running = tlsend.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.server(MX1).messages_so_far().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal(rustix::process::Signal::TERM);
    let output = running.finish();
    assert!(
        !world.server(MX1).messages_so_far().is_empty(),
        "the message never arrived: {}",
        output.stderr
    );
    assert_exit(
        &output,
        75,
        &[
            "waiting for its verdict",
            "bob@example.net: delivered via mx1.example.net",
            "carol@other.example: not delivered: 4.3.0",
        ],
    );
    assert_eq!(
        world.server("127.0.0.4").connections(),
        0,
        "no new host is tried once the run is stopping"
    );
    let saved = tlsend.dead_letter().expect("the message is saved");
    assert!(
        saved.contains("X-Tlsend-Undelivered: carol@other.example"),
        "{saved}"
    );
    assert!(!saved.contains("X-Tlsend-Undelivered: bob@"), "{saved}");
}

// covers: MX1, MX4
#[test]
fn mx4_a_host_with_many_dead_addresses_is_not_tried_forever() {
    // One MX host with twelve addresses where nothing listens.
    let mut zone = World::new();
    zone.zone("example.net", Security::Secure);
    zone.mx("example.net", 10, "mx1.example.net");
    for i in 20..32 {
        zone.a("mx1.example.net", &format!("127.0.0.{i}"));
    }
    let world = MxWorld::start(zone, vec![(MX1, valid("unused.example.net"))]);
    let output = send(&world, &["-v"]);
    assert_exit(
        &output,
        75,
        &["10 addresses of this domain were tried first"],
    );
    assert!(output.stderr.contains("127.0.0.29"), "{}", output.stderr);
    assert!(
        !output.stderr.contains("connecting to 127.0.0.30"),
        "{}",
        output.stderr
    );
}

/// The README's quick start, as written: the message file it sends (shipped
/// in the repository) and its flags.
fn quick_start() -> (Vec<u8>, Vec<String>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Quick start section");
    let line = section
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("the quick start runs `cargo run --release -- FLAGS < FILE`");
    let (flags, file) = line["cargo run --release -- ".len()..]
        .split_once(" < ")
        .expect("… < FILE: the message comes from a shipped file");
    let message = std::fs::read(root.join(file.trim()))
        .unwrap_or_else(|e| panic!("the quick start sends {file}, which must be shipped: {e}"));
    let flags = flags.split_whitespace().map(str::to_string).collect();
    (message, flags)
}

// covers: MX3 (and issue 12: the README's quick start cannot rot)
#[test]
fn the_readme_quick_start_delivers_as_written() {
    let (message, flags) = quick_start();
    let recipient = flags.last().expect("a recipient").clone();
    let domain = recipient.rsplit('@').next().unwrap_or_default().to_string();
    let mut world = World::new();
    world.zone(&domain, Security::Secure);
    world.mx(&domain, 10, &format!("mx1.{domain}"));
    world.a(&format!("mx1.{domain}"), MX1);
    let world = MxWorld::start(world, vec![(MX1, valid(&format!("mx1.{domain}")))]);
    let mut tlsend = crate::support::Tlsend::new();
    tlsend.config(&format!(
        "[direct]\nresolver = \"{}\"\nport = {}\nlookup_timeout = 5\nconnect_timeout = 5\n\
         timeout = 5\nehlo_name = \"client.example.org\"\n",
        world.dns.addr(),
        world.port
    ));
    tlsend.env("SSL_CERT_FILE", crate::support::pki().ca_file());
    tlsend.args(&flags).stdin(message.clone());
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    let received = world.server(MX1).messages();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].mail_from.contains("REQUIRETLS"),
        "{:?}",
        received[0]
    );
    let text = received[0].text();
    let body = String::from_utf8_lossy(&message).into_owned();
    let last_line = body.lines().last().unwrap_or_default();
    assert!(text.contains(last_line), "{text}");
}
