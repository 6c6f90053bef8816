use std::collections::HashMap;

use hickory_proto::rr::RecordType;

use super::*;
use crate::dns::fake::FakeResolver;

struct FakeSts(HashMap<String, StsFinding>);

impl StsSource for FakeSts {
    fn policy<'a>(
        &'a self,
        domain: &'a str,
    ) -> Pin<Box<dyn Future<Output = StsFinding> + Send + 'a>> {
        let finding = match self.0.get(domain) {
            Some(finding) => finding.clone(),
            None => StsFinding::NoPolicy("no TXT record".into()),
        };
        Box::pin(async move { finding })
    }
}

/// The policy lookup for `domain` failed (a TXT SERVFAIL, a failed fetch).
fn sts_unavailable(domain: &str) -> FakeSts {
    let finding = StsFinding::Unavailable("the fetch failed".into());
    FakeSts(HashMap::from([(domain.to_string(), finding)]))
}

fn policy(enforce: bool, mx: &[&str]) -> StsPolicy {
    let mode = if enforce { "enforce" } else { "testing" };
    let mx: String = mx.iter().map(|m| format!("mx: {m}\n")).collect();
    let text = format!("version: STSv1\nmode: {mode}\n{mx}max_age: 86400\n");
    StsPolicy {
        policy: mtasts::Policy::parse(text.as_bytes()).unwrap(),
        id: "20261129".into(),
        origin: "fetched".into(),
    }
}

fn sts(domain: &str, enforce: bool, mx: &[&str]) -> FakeSts {
    let policy = policy(enforce, mx);
    FakeSts(HashMap::from([(
        domain.to_string(),
        StsFinding::Policy(policy),
    )]))
}

fn no_sts() -> FakeSts {
    FakeSts(HashMap::new())
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn plan_for(world: &FakeResolver, sts: &FakeSts, mode: Mode, recipient: &str) -> DomainPlan {
    let recipients = vec![Address::parse(recipient).unwrap()];
    let mut plan = block_on(plan(&recipients, mode, 25, world, sts));
    plan.domains.remove(0)
}

/// What a test expects of a host: its TLS, or a skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Dane,
    WebPki,
    Encrypted,
    Opportunistic,
    Skip { temporary: bool, unverifiable: bool },
}

fn expect_of(host: &HostPlan) -> Expect {
    match &host.tls {
        Ok(HostTls::Dane(_)) => Expect::Dane,
        Ok(HostTls::WebPki) => Expect::WebPki,
        Ok(HostTls::Encrypted) => Expect::Encrypted,
        Ok(HostTls::Opportunistic { .. }) => Expect::Opportunistic,
        Err(skip) => Expect::Skip {
            temporary: skip.temporary,
            unverifiable: skip.unverifiable,
        },
    }
}

const EE: &[u8] = &[0xab; 32];

/// One zone per case: `mx.<domain>` is the only MX.
fn zone(domain: &str, mx_secure: bool, addr_secure: bool) -> FakeResolver {
    let host = format!("mx.{domain}");
    let mut world = FakeResolver::new()
        .mx(domain, 10, &host)
        .a(&host, "127.0.0.2");
    if mx_secure {
        world = world.secure(domain);
    }
    if addr_secure {
        // The zone is signed: the TLSA name's absence is proven too.
        world = world.secure(&host).secure(&format!("_25._tcp.{host}"));
    }
    world
}

// covers: MX2, MX3, MX5, MX6
#[test]
fn mx2_mx3_mx5_each_host_gets_the_tls_its_mode_and_dns_allow() {
    use Expect::*;
    let skip_policy = Skip {
        temporary: false,
        unverifiable: true,
    };
    let tlsa_name = "_25._tcp.mx.d.example";
    let with_ee = || {
        zone("d.example", true, true)
            .tlsa(tlsa_name, 3, 1, 1, EE)
            .secure(tlsa_name)
    };
    let with_unusable = || {
        zone("d.example", true, true)
            .tlsa(tlsa_name, 1, 1, 1, EE)
            .tlsa(tlsa_name, 3, 1, 1, &[1, 2, 3])
            .secure(tlsa_name)
    };
    // A secure TLSA name that is an alias into an unsigned zone.
    let insecure_tlsa = || {
        zone("d.example", true, true)
            .cname(tlsa_name, "tlsa.unsigned.example")
            .tlsa("tlsa.unsigned.example", 3, 1, 1, EE)
    };
    let tlsa_servfail = || {
        zone("d.example", true, true).fail(
            tlsa_name,
            RecordType::TLSA,
            LookupError::ServFail {
                name: tlsa_name.into(),
            },
        )
    };
    let in_insecure_zone = || zone("d.example", true, false).tlsa(tlsa_name, 3, 1, 1, EE);
    // The host's addresses are signed, its TLSA name's denial is not (a
    // validator proves some denials only insecure: NSEC3 opt-out).
    let unsigned_denial = || {
        FakeResolver::new()
            .mx("d.example", 10, "mx.d.example")
            .secure("d.example")
            .a("mx.d.example", "127.0.0.2")
            .secure("mx.d.example")
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, FakeResolver, FakeSts, Mode, Expect)> = vec![
        ("MX3 secure MX, no TLSA: WebPKI", zone("d.example", true, true), no_sts(), Mode::Require, WebPki),
        ("MX2 insecure MX, no MTA-STS: skipped", zone("d.example", false, false), no_sts(), Mode::Require, skip_policy),
        ("MX5 insecure MX, default: opportunistic", zone("d.example", false, false), no_sts(), Mode::Default, Opportunistic),
        ("MX2 MTA-STS enforce lists it", zone("d.example", false, false), sts("d.example", true, &["mx.d.example"]), Mode::Require, WebPki),
        ("MX2 MTA-STS testing lists it", zone("d.example", false, false), sts("d.example", false, &["*.d.example"]), Mode::Require, WebPki),
        ("MX2 MTA-STS does not list it", zone("d.example", false, false), sts("d.example", true, &["other.d.example"]), Mode::Require, skip_policy),
        ("MX5 MTA-STS enforce does not list it", zone("d.example", false, false), sts("d.example", true, &["other.d.example"]), Mode::Default, skip_policy),
        ("MX5 MTA-STS enforce lists it", zone("d.example", false, false), sts("d.example", true, &["mx.d.example"]), Mode::Default, WebPki),
        ("MX5 MTA-STS testing not listed: reported only", zone("d.example", false, false), sts("d.example", false, &["other.d.example"]), Mode::Default, Opportunistic),
        ("MX3 DANE-EE", with_ee(), no_sts(), Mode::Require, Dane),
        ("MX5 DANE-EE in default mode", with_ee(), no_sts(), Mode::Default, Dane),
        ("MX6 DANE ignored in optional mode", with_ee(), no_sts(), Mode::Optional, Opportunistic),
        ("MX6 MTA-STS ignored in optional mode", zone("d.example", false, false), sts("d.example", true, &["other.d.example"]), Mode::Optional, Opportunistic),
        ("MX3 all unusable, require", with_unusable(), no_sts(), Mode::Require, skip_policy),
        ("MX3 all unusable, default: encrypted", with_unusable(), no_sts(), Mode::Default, Encrypted),
        ("MX3 TLSA not secure: ignored", insecure_tlsa(), no_sts(), Mode::Require, WebPki),
        ("MX3 TLSA in an insecure zone: not looked up", in_insecure_zone(), no_sts(), Mode::Require, WebPki),
        ("MX3 TLSA SERVFAIL: skipped, never downgraded", tlsa_servfail(), no_sts(), Mode::Require, Skip { temporary: true, unverifiable: true }),
        ("MX3 TLSA SERVFAIL, default mode too", tlsa_servfail(), no_sts(), Mode::Default, Skip { temporary: true, unverifiable: true }),
        ("MX3 an insecure TLSA denial (NSEC3 opt-out) means no DANE", unsigned_denial(), no_sts(), Mode::Require, WebPki),
        ("MX3 an insecure TLSA denial, default mode", unsigned_denial(), no_sts(), Mode::Default, Opportunistic),
        ("MX2 secure MX that MTA-STS enforce does not list, require", zone("d.example", true, true), sts("d.example", true, &["other.d.example"]), Mode::Require, skip_policy),
        ("MX2 DANE before MTA-STS enforce, require", with_ee(), sts("d.example", true, &["other.d.example"]), Mode::Require, Dane),
        ("MX2 policy unavailable: a temporary skip", zone("d.example", false, false), sts_unavailable("d.example"), Mode::Require, Skip { temporary: true, unverifiable: true }),
        ("MX5 policy unavailable, default: opportunistic", zone("d.example", false, false), sts_unavailable("d.example"), Mode::Default, Opportunistic),
    ];
    for (id, world, sts, mode, expected) in cases {
        let domain = plan_for(&world, &sts, mode, "rcpt@d.example");
        let hosts = domain
            .hosts
            .as_ref()
            .unwrap_or_else(|f| panic!("{id}: {f}"));
        assert_eq!(hosts.len(), 1, "{id}");
        assert_eq!(expect_of(&hosts[0]), expected, "{id}\n{domain}");
    }
}

// covers: MX3
#[test]
fn mx3_only_usable_records_are_kept_and_tlsa_is_not_asked_for_insecure_hosts() {
    let tlsa_name = "_25._tcp.mx.d.example";
    let world = zone("d.example", true, true)
        .tlsa(tlsa_name, 0, 0, 1, EE)
        .tlsa(tlsa_name, 2, 0, 1, EE)
        .tlsa(tlsa_name, 3, 1, 2, &[9; 64])
        .tlsa(tlsa_name, 3, 1, 1, &[9; 31])
        .secure(tlsa_name);
    let domain = plan_for(&world, &no_sts(), Mode::Require, "a@d.example");
    let host = &domain.hosts.unwrap()[0];
    let Ok(HostTls::Dane(records)) = &host.tls else {
        panic!("{host}")
    };
    let kept: Vec<(u8, u8, u8)> = records
        .iter()
        .map(|r| (r.usage, r.selector, r.matching))
        .collect();
    assert_eq!(kept, vec![(2, 0, 1), (3, 1, 2)]);

    let insecure = zone("d.example", true, false);
    let domain = plan_for(&insecure, &no_sts(), Mode::Require, "a@d.example");
    let host = &domain.hosts.unwrap()[0];
    assert!(matches!(host.tlsa, TlsaState::NotLooked(_)), "{host}");
}

// covers: MX1
#[test]
fn mx1_domains_that_fail_before_any_connection() {
    #[rustfmt::skip]
    let cases: Vec<(&str, FakeResolver, &str, Sysexit)> = vec![
        ("null MX", FakeResolver::new().mx("null.example", 0, ".").secure("null.example"), "5.1.10", Sysexit::NoHost),
        ("no such domain", FakeResolver::new(), "5.1.2", Sysexit::NoHost),
        ("no MX and no address", FakeResolver::new().txt("bare.example", "v=spf1 -all"), "5.1.2", Sysexit::NoHost),
        ("bogus MX answer", FakeResolver::new().bogus("bogus.example"), "4.4.3", Sysexit::TempFail),
    ];
    let domains = [
        "null.example",
        "gone.example",
        "bare.example",
        "bogus.example",
    ];
    for ((id, world, status, exit), domain) in cases.into_iter().zip(domains) {
        let plan = plan_for(&world, &no_sts(), Mode::Default, &format!("u@{domain}"));
        let failure = plan.hosts.expect_err(id);
        assert_eq!(
            (
                failure.classified.status.to_string().as_str(),
                failure.classified.exit
            ),
            (status, exit),
            "{id}: {failure}"
        );
    }
}

// covers: MX1
#[test]
fn mx1_implicit_mx_uses_the_domains_own_addresses() {
    let world = FakeResolver::new()
        .a("plain.example", "127.0.0.5")
        .aaaa("plain.example", "::1")
        .secure("plain.example");
    let domain = plan_for(&world, &no_sts(), Mode::Require, "u@plain.example");
    let hosts = domain.hosts.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].name, "plain.example");
    assert_eq!(hosts[0].preference, None);
    // IPv6 first, both tried.
    assert_eq!(
        hosts[0].addresses,
        vec![
            "::1".parse::<IpAddr>().unwrap(),
            "127.0.0.5".parse().unwrap()
        ]
    );
    assert_eq!(hosts[0].validated, NameValidation::Dnssec);
    assert_eq!(domain.mx_security, Some(Security::Secure));
}

// covers: MX1
#[test]
fn mx1_preference_order_with_equal_preferences_shuffled() {
    let world = FakeResolver::new()
        .mx("many.example", 20, "c.many.example")
        .mx("many.example", 10, "a.many.example")
        .mx("many.example", 10, "b.many.example")
        .mx("many.example", 5, ".")
        .a("a.many.example", "127.0.0.2")
        .a("b.many.example", "127.0.0.3")
        .a("c.many.example", "127.0.0.4");
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..64 {
        let domain = plan_for(&world, &no_sts(), Mode::Default, "u@many.example");
        let names: Vec<String> = domain.hosts.unwrap().into_iter().map(|h| h.name).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[2], "c.many.example", "{names:?}");
        firsts.insert(names[0].clone());
    }
    assert_eq!(
        firsts.len(),
        2,
        "both equal-preference hosts come first sometimes"
    );
}

// covers: MX1
#[test]
fn mx1_recipients_are_grouped_by_domain_in_order() {
    let recipients: Vec<Address> = ["a@x.example", "b@Y.example", "c@X.example"]
        .iter()
        .map(|a| Address::parse(a).unwrap())
        .collect();
    let groups = by_domain(&recipients);
    let shown: Vec<(String, usize)> = groups.iter().map(|(d, r)| (d.clone(), r.len())).collect();
    assert_eq!(
        shown,
        vec![("x.example".to_string(), 2), ("y.example".to_string(), 1)]
    );
}

// covers: MX2, MX7
#[test]
fn mx2_mta_sts_patterns_match_one_label_only() {
    let policy = policy(true, &["*.example.net", "mail.example.org"]);
    #[rustfmt::skip]
    let cases = [
        ("mx.example.net", true),
        ("MX.Example.NET.", true),
        ("a.b.example.net", false),
        ("example.net", false),
        (".example.net", false),
        ("mail.example.org", true),
        ("x.mail.example.org", false),
    ];
    for (host, expected) in cases {
        assert_eq!(policy.matches(host), expected, "{host}");
    }
}

// covers: MX1
#[test]
fn the_plan_prints_every_host_and_why() {
    let world = zone("p.example", true, true);
    let domain = plan_for(&world, &no_sts(), Mode::Require, "u@p.example");
    let text = domain.to_string();
    for part in [
        "p.example (for u@p.example)",
        "MX answer DNSSEC secure",
        "mx.p.example (MX 10): 127.0.0.2 (DNSSEC secure)",
        "name validated by DNSSEC",
        "no TLSA records",
        "certificate verified by WebPKI",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

// covers: MX3
#[test]
fn mx3_tlsa_at_the_end_of_a_secure_cname_chain_comes_first() {
    let target_tlsa = "_25._tcp.mx.hoster.example";
    let world = FakeResolver::new()
        .mx("d.example", 10, "mx.d.example")
        .secure("d.example")
        .cname("mx.d.example", "mx.hoster.example")
        .secure("mx.d.example")
        .a("mx.hoster.example", "127.0.0.2")
        .secure("mx.hoster.example")
        .tlsa(target_tlsa, 3, 1, 1, EE)
        .secure(target_tlsa)
        .secure("_25._tcp.mx.d.example");
    let domain = plan_for(&world, &no_sts(), Mode::Require, "a@d.example");
    let host = &domain.hosts.unwrap()[0];
    assert!(matches!(host.tls, Ok(HostTls::Dane(_))), "{host}");
    assert_eq!(host.tlsa_base.as_deref(), Some("mx.hoster.example"));
    assert!(host.to_string().contains("at mx.hoster.example"), "{host}");

    // No records at the target: the MX name's own records are used.
    let own = FakeResolver::new()
        .mx("d.example", 10, "mx.d.example")
        .secure("d.example")
        .cname("mx.d.example", "mx.hoster.example")
        .secure("mx.d.example")
        .a("mx.hoster.example", "127.0.0.2")
        .secure("mx.hoster.example")
        .secure(target_tlsa)
        .tlsa("_25._tcp.mx.d.example", 3, 1, 1, EE)
        .secure("_25._tcp.mx.d.example");
    let domain = plan_for(&own, &no_sts(), Mode::Require, "a@d.example");
    let host = &domain.hosts.unwrap()[0];
    assert!(matches!(host.tls, Ok(HostTls::Dane(_))), "{host}");
    assert_eq!(host.tlsa_base, None);
}

// covers: MX1, MX2
#[test]
fn mx1_an_implicit_mx_needs_a_secure_mx_denial_too() {
    // A signed A record, and an unsigned "no MX" (which could be forged to
    // send the mail to the domain's own address).
    let world = FakeResolver::new()
        .a("plain.example", "127.0.0.5")
        .secure("plain.example")
        .insecure_type("plain.example", RecordType::MX);
    let domain = plan_for(&world, &no_sts(), Mode::Require, "u@plain.example");
    let host = &domain.hosts.unwrap()[0];
    assert_eq!(host.validated, NameValidation::None, "{host}");
    assert!(host.tls.is_err(), "{host}");
}

// covers: MX1
#[test]
fn mx1_unicode_domains_are_looked_up_by_their_a_labels() {
    let world = FakeResolver::new()
        .mx("xn--bcher-kva.example", 10, "mx.xn--bcher-kva.example")
        .a("mx.xn--bcher-kva.example", "127.0.0.2");
    let domain = plan_for(&world, &no_sts(), Mode::Default, "u@bücher.example");
    let hosts = domain.hosts.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(hosts[0].name, "mx.xn--bcher-kva.example");

    // No MX: the implicit host is the domain by its A-labels too.
    let implicit = FakeResolver::new().a("xn--bcher-kva.example", "127.0.0.2");
    let domain = plan_for(&implicit, &no_sts(), Mode::Default, "u@bücher.example");
    let hosts = domain.hosts.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(hosts[0].name, "xn--bcher-kva.example");
}

// covers: MX1
#[test]
fn mx1_at_most_ten_mx_hosts_are_planned() {
    let mut world = FakeResolver::new();
    for i in 0..30u16 {
        let host = format!("mx{i}.many.example");
        world = world.mx("many.example", i, &host).a(&host, "127.0.0.2");
    }
    let domain = plan_for(&world, &no_sts(), Mode::Default, "u@many.example");
    let names: Vec<String> = domain.hosts.unwrap().into_iter().map(|h| h.name).collect();
    assert_eq!(names.len(), MAX_MX_HOSTS);
    assert_eq!(names[0], "mx0.many.example");
    assert_eq!(names[9], "mx9.many.example");
}
