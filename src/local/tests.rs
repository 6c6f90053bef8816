use std::path::Path;

use super::*;

fn header(text: &str) -> Header {
    Header::parse(text.as_bytes()).unwrap()
}

fn text(header: &Header) -> String {
    let mut out = Vec::new();
    header.write_to(&mut out);
    String::from_utf8(out).unwrap()
}

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn example_org() -> Qualification {
    Qualification::configured("example.org", "qualify_domain")
}

#[test]
fn a_short_host_name_is_completed_from_etc_hosts() {
    let hosts =
        "127.0.0.1 localhost\n127.0.1.1 mail.example.org mail # this host\n::1 ip6-localhost\n";
    assert_eq!(
        qualified_in_hosts("mail", hosts).as_deref(),
        Some("mail.example.org")
    );
    assert_eq!(
        qualified_in_hosts("MAIL", hosts).as_deref(),
        Some("mail.example.org")
    );
    assert_eq!(
        qualified_in_hosts("vm", "127.0.0.1 localhost\n127.0.0.1 vm\n"),
        None
    );
    assert_eq!(qualified_in_hosts("other", hosts), None);
    assert_eq!(
        qualified_in_hosts("mail", "# 127.0.1.1 mail.example.org mail\n"),
        None
    );
}

// covers: IN12
#[test]
fn in12_only_a_real_domain_qualifies() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("vm", None, None),
        ("vm", Some("vm.example.org"), Some("vm.example.org")),
        ("box", Some("box.localdomain"), None),
        ("box", Some("box.LOCAL"), None),
        ("box", Some("box.home.arpa"), None),
        ("box", Some("box.internal"), None),
        // Names home routers and installers hand out, which no DNS knows.
        ("box", Some("box.fritz.box"), None),
        ("box", Some("box.home"), None),
        ("box", Some("box.corp"), None),
        ("box", Some("box.example"), None),
        ("box", Some("box.onion"), None),
        ("box", Some("box.alt"), None),
        ("box", Some("box.168"), None),
        ("box", Some("box.example.com"), Some("box.example.com")),
        ("box", Some("box.home.example.org"), Some("box.home.example.org")),
        ("mail.example.org", Some("Mail.Example.org."), Some("mail.example.org")),
    ];
    for (short, full, expected) in cases {
        let q = Qualification::from_host(short, *full);
        assert_eq!(q.domain(), *expected, "{short} {full:?}");
    }
    let none = Qualification::from_host("vm", None);
    let error = none
        .qualify(address("root"), "recipient \"root\"")
        .unwrap_err();
    assert!(
        error.0.contains("\"vm\" is not a domain name") && error.0.contains("qualify_domain"),
        "{error}"
    );
    // A qualified address needs no domain.
    assert_eq!(
        none.qualify(address("a@example.net"), "x").unwrap(),
        address("a@example.net")
    );
}

// covers: IN12
#[test]
fn in12_recipients_are_expanded_then_qualified_or_refused() {
    let (aliases, warnings) = Aliases::parse(
        "root: admin, ops@example.net\nadmin: alice\n",
        Path::new("/etc/aliases"),
    );
    assert!(warnings.is_empty());
    let found: Vec<Found> = ["root", "bob", "alice@example.org", "carol@example.net"]
        .iter()
        .map(|a| Found {
            address: address(a),
            orcpt: (*a == "carol@example.net").then(|| "rfc822;carol@old.example".into()),
        })
        .collect();
    let out = recipients(&found, Some(&aliases), &example_org()).unwrap();
    let shown: Vec<String> = out.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        [
            "alice@example.org",
            "ops@example.net",
            "bob@example.org",
            "carol@example.net"
        ]
    );
    // RFC 3461: the targets of root keep the name the sender used (alice
    // first came through root); a given ORCPT stays; bob is himself.
    let orcpt = |a: &str| out.original.get(&address(a)).map(String::as_str);
    assert_eq!(orcpt("alice@example.org"), Some("rfc822;root@example.org"));
    assert_eq!(orcpt("ops@example.net"), Some("rfc822;root@example.org"));
    assert_eq!(orcpt("bob@example.org"), None);
    assert_eq!(orcpt("carol@example.net"), Some("rfc822;carol@old.example"));
    let error = recipients(
        &found,
        Some(&aliases),
        &Qualification::from_host("vm", None),
    )
    .unwrap_err()
    .0;
    assert!(
        error.contains("\"alice\" (no alias in /etc/aliases)")
            && error.contains("give alice an alias"),
        "{error}"
    );
}

// covers: IN12
#[test]
fn in12_header_bare_names_are_qualified_keeping_names_and_comments() {
    let mut h = header(
        "From: root (Cron Daemon)\nTo: root, Bob <bob>,\n  carol@example.net\nSubject: root\n\
         Reply-To: \"Ops Team\" <ops>\nX-Other: root\n",
    );
    qualify_header(&mut h, &example_org()).unwrap();
    assert_eq!(
        text(&h),
        "From: root@example.org (Cron Daemon)\r\n\
         To: root@example.org, Bob <bob@example.org>,\r\n  carol@example.net\r\n\
         Subject: root\r\n\
         Reply-To: \"Ops Team\" <ops@example.org>\r\n\
         X-Other: root\r\n"
    );
    // Without a domain, the same header is refused, naming the field.
    let mut h = header("To: root\n");
    let error = qualify_header(&mut h, &Qualification::from_host("vm", None)).unwrap_err();
    assert!(error.0.contains("To field names \"root\""), "{error}");
    // A long folded field keeps its folding: unfolded, it would be over
    // the line limit and the message refused.
    let many: Vec<String> = (0..60).map(|i| format!("user{i}@example.net")).collect();
    let mut h = header(&format!(
        "To: root,\n {}\nCc: (\n ops) alice\n",
        many.join(",\n ")
    ));
    qualify_header(&mut h, &example_org()).unwrap();
    assert_eq!(
        text(&h),
        format!(
            "To: root@example.org,\r\n {}\r\nCc: (\r\n ops) alice@example.org\r\n",
            many.join(",\r\n ")
        )
    );
    // A field already qualified is kept byte for byte, folding and all.
    let mut h = header("To: a@example.org,\n\tb@example.org\n");
    qualify_header(&mut h, &Qualification::from_host("vm", None)).unwrap();
    assert_eq!(text(&h), "To: a@example.org,\r\n\tb@example.org\r\n");
}

fn policy<'a>(
    rewrite: FromRewrite,
    from: Option<&'a Address>,
    full_name: Option<&'a str>,
) -> FromPolicy<'a> {
    FromPolicy {
        rewrite,
        account_from: from,
        full_name,
        host_names: &["vm", "vm.example.org"],
    }
}

#[test]
fn from_rewriting_follows_set_from_header() {
    let from = address("alerts@example.com");
    #[rustfmt::skip]
    let cases: &[(FromRewrite, Option<&str>, &str, &str)] = &[
        // auto: system mail gets the account's address, display name kept.
        (FromRewrite::Auto, None, "From: root (Cron Daemon)", "From: alerts@example.com (Cron Daemon)"),
        (FromRewrite::Auto, None, "From: Web <www-data@vm>", "From: Web <alerts@example.com>"),
        (FromRewrite::Auto, None, "From: <daemon@LOCALHOST>", "From: <alerts@example.com>"),
        (FromRewrite::Auto, None, "From: Alice <alice@example.net>", "From: Alice <alice@example.net>"),
        // -F gives the display name of a rewritten From, never of a kept one.
        (FromRewrite::Auto, Some("Cron Job"), "From: root (Cron Daemon)", "From: Cron Job <alerts@example.com>"),
        (FromRewrite::Auto, Some("Cron Job"), "From: Alice <alice@example.net>", "From: Alice <alice@example.net>"),
        // on: every From.
        (FromRewrite::On, None, "From: Alice <alice@example.net>", "From: Alice <alerts@example.com>"),
        (FromRewrite::On, None, "From: a@example.net, b@example.net", "From: alerts@example.com"),
        // off: never.
        (FromRewrite::Off, None, "From: root (Cron Daemon)", "From: root (Cron Daemon)"),
    ];
    for (rewrite, full_name, before, after) in cases {
        let mut h = header(&format!("{before}\nSubject: s\n"));
        rewrite_from(&mut h, &policy(*rewrite, Some(&from), *full_name)).unwrap();
        assert_eq!(
            text(&h),
            format!("{after}\r\nSubject: s\r\n"),
            "{rewrite:?} {before}"
        );
    }
    // Without an account address nothing is rewritten.
    let mut h = header("From: root\n");
    assert!(!rewrite_from(&mut h, &policy(FromRewrite::On, None, None)).unwrap());
}
