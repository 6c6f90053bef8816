//! Local names and system mail (IN12): aliases, bare names qualified or
//! refused in the envelope and the header, From rewriting, the envelope
//! sender read from From, and `newaliases`.

use crate::support::{Behaviour, TestServer, Tlsend, assert_exit, pki};

/// What Debian's cron sends: a bare To and a From that is a bare name
/// with the daemon's name as a comment.
const CRON_MESSAGE: &str = "From: root (Cron Daemon)\n\
To: root\n\
Subject: Cron <root@vm> run-parts /etc/cron.daily\n\
\n\
output\n";

fn server() -> TestServer {
    TestServer::start(Behaviour::default(), pki())
}

/// Sends as the test user to `server` with this configuration.
fn tlsend(server: &TestServer, config: &str) -> Tlsend {
    let mut t = Tlsend::to_server(server, pki());
    t.config_file(config);
    t
}

/// The MAIL command names `expected` (parameters may follow).
fn assert_sender(mail_from: &str, expected: &str) {
    assert!(
        mail_from == expected || mail_from.starts_with(&format!("{expected} ")),
        "{mail_from}, not {expected}"
    );
}

fn header_of(text: &str) -> &str {
    text.split("\r\n\r\n").next().unwrap_or(text)
}

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root (a UTS namespace), and CI runs as root"
    );
    eprintln!("NOTICE: {test} skipped: it sets the host name in a namespace, which needs root");
    false
}

// covers: IN12
#[test]
fn in12_a_bare_name_with_no_domain_to_qualify_it_is_refused_before_anything_is_sent() {
    if !root_or_skip("the bare-name refusal test") {
        return;
    }
    for (host, why) in [
        (
            "nodomainbox",
            "this host's name \"nodomainbox\" is not a domain name",
        ),
        (
            "box.localdomain",
            "\"box.localdomain\" is a local-only name",
        ),
    ] {
        let server = server();
        let mut t = tlsend(&server, "aliases = \"\"\n");
        t.host_name(host)
            .args(["-f", "cron@example.org", "-t"])
            .stdin(CRON_MESSAGE);
        let output = t.run();
        assert_exit(&output, 78, &["recipient \"root\"", why, "qualify_domain"]);
        assert_eq!(server.connections(), 0, "{host}: nothing may be sent");
        assert!(t.dead_letter().is_some_and(|d| d.contains("output")));

        // Without -f the sender would be made up too: tester@<host>.
        let server = self::server();
        let mut t = tlsend(&server, "aliases = \"\"\n");
        t.host_name(host)
            .arg("alice@example.net")
            .stdin("Subject: s\n\nx\n");
        let output = t.run();
        assert_exit(&output, 78, &["login name \"tester\"", why, "-f ADDRESS"]);
        assert_eq!(server.connections(), 0);
    }
}

// covers: IN12
#[test]
fn in12_a_real_host_name_qualifies_bare_names() {
    if !root_or_skip("the host-name qualification test") {
        return;
    }
    let server = server();
    let mut t = tlsend(&server, "aliases = \"\"\n");
    t.host_name("box.example.net").arg("-t").stdin(CRON_MESSAGE);
    assert_exit(&t.run(), 0, &[]);
    let message = &server.messages()[0];
    assert_sender(&message.mail_from, "MAIL FROM:<tester@box.example.net>");
    assert_eq!(message.rcpt_to, ["RCPT TO:<root@box.example.net>"]);
}

// covers: IN12
#[test]
fn in12_bare_names_are_qualified_in_the_envelope_and_the_header() {
    let server = server();
    let mut t = tlsend(
        &server,
        "qualify_domain = \"example.org\"\naliases = \"\"\n",
    );
    t.args(["-t", "-i", "-FCronDaemon"]).stdin(
        "From: root (Cron Daemon)\nTo: root, Ops <ops>\nCc: carol@example.net\n\
         Subject: s\n\nbody\n",
    );
    assert_exit(&t.run(), 0, &[]);
    let message = &server.messages()[0];
    assert_sender(&message.mail_from, "MAIL FROM:<tester@example.org>");
    assert_eq!(
        message.rcpt_to,
        [
            "RCPT TO:<root@example.org>",
            "RCPT TO:<ops@example.org>",
            "RCPT TO:<carol@example.net>"
        ]
    );
    let text = message.text();
    let header = header_of(&text);
    // No account from: the From is qualified, its comment kept.
    assert!(
        header.contains("From: root@example.org (Cron Daemon)\r\n"),
        "{header}"
    );
    assert!(
        header.contains("To: root@example.org, Ops <ops@example.org>\r\n"),
        "{header}"
    );
    assert!(header.contains("Cc: carol@example.net\r\n"), "{header}");
}

// covers: IN12
#[test]
fn in12_aliases_expand_recursively_to_several_addresses() {
    let server = server();
    let mut t = Tlsend::to_server(&server, pki());
    let aliases = t.home().join("aliases");
    std::fs::write(
        &aliases,
        "# system accounts\npostmaster: root\nroot: admins, ops@example.net\n\
         admins: alice@example.org,\n  bob\nbob: bob, bob@example.com\n",
    )
    .unwrap();
    t.config_file(&format!(
        "qualify_domain = \"example.org\"\naliases = \"{}\"\n",
        aliases.display()
    ))
    .args([
        "-f",
        "cron@example.org",
        "-N",
        "failure",
        "postmaster",
        "carol",
    ])
    .stdin("To: postmaster\nSubject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    let message = &server.messages()[0];
    // Each target of an alias names, as ORCPT (RFC 3461 4.2), the address
    // the sender wrote; carol, who has no alias, is herself.
    assert_eq!(
        message.rcpt_to,
        [
            "RCPT TO:<alice@example.org> NOTIFY=FAILURE ORCPT=rfc822;postmaster@example.org",
            // bob names himself: delivered as bob, not expanded again.
            "RCPT TO:<bob@example.org> NOTIFY=FAILURE ORCPT=rfc822;postmaster@example.org",
            "RCPT TO:<bob@example.com> NOTIFY=FAILURE ORCPT=rfc822;postmaster@example.org",
            "RCPT TO:<ops@example.net> NOTIFY=FAILURE ORCPT=rfc822;postmaster@example.org",
            "RCPT TO:<carol@example.org> NOTIFY=FAILURE ORCPT=rfc822;carol@example.org",
        ]
    );
    // The header says what the sender wrote, qualified; aliases are
    // envelope business, as in Postfix.
    let text = message.text();
    assert!(
        header_of(&text).contains("To: postmaster@example.org\r\n"),
        "{text}"
    );
}

// covers: IN12
#[test]
fn in12_an_alias_loop_or_a_pipe_refuses_the_message_before_anything_is_sent() {
    for (file, expected) in [
        (
            "root: admin\nadmin: ops\nops: root, x@example.org\n",
            "root -> admin -> ops -> root",
        ),
        ("root: \"|/usr/bin/procmail\"\n", "\"|/usr/bin/procmail\""),
    ] {
        let server = server();
        let mut t = Tlsend::to_server(&server, pki());
        let aliases = t.home().join("aliases");
        std::fs::write(&aliases, file).unwrap();
        t.config_file(&format!(
            "qualify_domain = \"example.org\"\naliases = \"{}\"\n",
            aliases.display()
        ))
        .args(["-f", "cron@example.org", "root", "alice@example.net"])
        .stdin("Subject: s\n\nx\n");
        let output = t.run();
        assert_exit(&output, 78, &[expected, "nothing was sent"]);
        assert_eq!(server.connections(), 0, "{file}");
    }
}

// covers: IN12
#[test]
fn in12_an_aliases_file_that_is_named_but_missing_is_an_error() {
    let server = server();
    let mut t = tlsend(
        &server,
        "qualify_domain = \"example.org\"\naliases = \"/nonexistent/aliases\"\n",
    );
    t.args(["-f", "cron@example.org", "root"]).stdin("x\n");
    assert_exit(
        &t.run(),
        78,
        &["/nonexistent/aliases", "aliases = \"\" for none"],
    );
    assert_eq!(server.connections(), 0);
}

/// An account on `server` whose from is alerts@example.com, with `extra`
/// settings.
fn account(server: &TestServer, extra: &str) -> String {
    format!(
        "qualify_domain = \"example.org\"\naliases = \"\"\n\
         [account.relay]\nhost = \"localhost\"\nport = {}\nfrom = \"alerts@example.com\"\n{extra}",
        server.port
    )
}

// covers: IN12
#[test]
fn set_from_header_rewrites_system_mail_with_and_without_f() {
    #[rustfmt::skip]
    let cases: &[(&str, &[&str], &str, &str)] = &[
        // auto: the From of system mail gets the account's address, the
        // comment or display name kept...
        ("", &[], "From: root (Cron Daemon)", "From: alerts@example.com (Cron Daemon)\r\n"),
        ("", &[], "From: Web <www-data@localhost>", "From: Web <alerts@example.com>\r\n"),
        // ...or replaced with -F.
        ("", &["-FCron Job"], "From: root (Cron Daemon)", "From: Cron Job <alerts@example.com>\r\n"),
        // A real author is kept, -F or not.
        ("", &["-FCron Job"], "From: Alice <alice@example.net>", "From: Alice <alice@example.net>\r\n"),
        ("set_from_header = \"on\"\n", &[], "From: Alice <alice@example.net>", "From: Alice <alerts@example.com>\r\n"),
        ("set_from_header = \"off\"\n", &[], "From: root (Cron Daemon)", "From: root@example.org (Cron Daemon)\r\n"),
    ];
    for (settings, flags, from, expected) in cases {
        let server = server();
        let mut t = Tlsend::new();
        t.env("SSL_CERT_FILE", pki().ca_file())
            .config_file(&account(&server, settings))
            .args(*flags)
            .arg("bob@example.net")
            .stdin(format!("{from}\nSubject: s\n\nx\n"));
        assert_exit(&t.run(), 0, &[]);
        let message = &server.messages()[0];
        assert_sender(&message.mail_from, "MAIL FROM:<alerts@example.com>");
        let text = message.text();
        assert!(
            header_of(&text).contains(expected),
            "{settings}{flags:?} {from}: {text}"
        );
    }
}

// covers: IN7, IN12
#[test]
fn set_date_and_msgid_header_off_add_neither() {
    let server = server();
    let mut t = Tlsend::new();
    t.env("SSL_CERT_FILE", pki().ca_file())
        .config_file(&account(
            &server,
            "set_date_header = \"off\"\nset_msgid_header = \"off\"\nset_from_header = \"off\"\n",
        ))
        .arg("bob@example.net")
        .stdin("Subject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    let text = server.messages()[0].text();
    let header = header_of(&text);
    for field in ["Date:", "Message-ID:", "From:"] {
        assert!(!header.contains(field), "{field} added: {header}");
    }
    // By default all three are added.
    let server = self::server();
    let mut t = Tlsend::new();
    t.env("SSL_CERT_FILE", pki().ca_file())
        .config_file(&account(&server, ""))
        .arg("bob@example.net")
        .stdin("Subject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    let text = server.messages()[0].text();
    for field in ["Date:", "Message-ID:", "From: alerts@example.com"] {
        assert!(text.contains(field), "{field} missing: {text}");
    }
}

#[test]
fn set_from_header_on_needs_an_address() {
    let server = server();
    let mut t = Tlsend::new();
    t.config_file(&format!(
        "[account.relay]\nhost = \"localhost\"\nport = {}\nfrom = \"*@example.com\"\n\
         set_from_header = \"on\"\n",
        server.port
    ))
    .args(["-f", "a@example.com", "bob@example.net"])
    .stdin("x\n");
    assert_exit(&t.run(), 78, &["tlsend.toml:5:", "set_from_header"]);
}

#[test]
fn read_envelope_from_takes_the_sender_from_the_from_field() {
    let server = server();
    let mut t = tlsend(
        &server,
        "qualify_domain = \"example.org\"\naliases = \"\"\n",
    );
    t.args(["--read-envelope-from", "-t"])
        .stdin("From: \"Web App\" <app@example.com>\nTo: bob@example.net\nSubject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    assert_sender(
        &server.messages()[0].mail_from,
        "MAIL FROM:<app@example.com>",
    );

    // A bare From is qualified like any other local name.
    let server = self::server();
    let mut t = tlsend(
        &server,
        "qualify_domain = \"example.org\"\naliases = \"\"\n",
    );
    t.args(["--read-envelope-from", "bob@example.net"])
        .stdin("From: www-data\nSubject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    assert_sender(
        &server.messages()[0].mail_from,
        "MAIL FROM:<www-data@example.org>",
    );

    // A From that the account rewrites (system mail) gives the envelope
    // the rewritten address too: header and envelope agree.
    let server = self::server();
    let mut t = Tlsend::new();
    t.env("SSL_CERT_FILE", pki().ca_file())
        .config_file(&account(&server, ""))
        .args(["--read-envelope-from", "bob@example.net"])
        .stdin("From: root (Cron Daemon)\nSubject: s\n\nx\n");
    assert_exit(&t.run(), 0, &[]);
    let message = &server.messages()[0];
    assert_sender(&message.mail_from, "MAIL FROM:<alerts@example.com>");
    assert!(
        message
            .text()
            .contains("From: alerts@example.com (Cron Daemon)\r\n"),
        "{}",
        message.text()
    );

    // With -f, or with no single From, it is refused.
    let server = self::server();
    let mut t = tlsend(&server, "");
    t.args([
        "--read-envelope-from",
        "-f",
        "a@example.org",
        "bob@example.net",
    ])
    .stdin("From: a@example.com\n\nx\n");
    assert_exit(&t.run(), 64, &["--read-envelope-from and -f/-r"]);
    let mut t = tlsend(&server, "");
    t.args(["--read-envelope-from", "bob@example.net"])
        .stdin("From: a@example.com, b@example.com\n\nx\n");
    assert_exit(&t.run(), 65, &["names 2 addresses"]);
    assert_eq!(server.connections(), 0);
}

// covers: IN6, IN12
#[test]
fn newaliases_checks_the_file_and_has_nothing_to_build() {
    let mut t = Tlsend::new();
    let aliases = t.home().join("aliases");
    std::fs::write(
        &aliases,
        "postmaster: root\nroot: a@example.org\nloop1: loop2\nloop2: loop1\nbroken line\n\
         ops: a@example.org, Ops <oncall\n",
    )
    .unwrap();
    t.config_file(&format!("aliases = \"{}\"\n", aliases.display()))
        .as_program("newaliases");
    let output = t.run();
    assert_exit(
        &output,
        0,
        &[
            "aliases:5: not a \"name: address, …\" entry",
            "loop1 -> loop2 -> loop1",
            "mail to \"ops\" is refused",
            "5 aliases, 4 problems",
        ],
    );
    // A clean file: silent, exit 0; a missing one named in the
    // configuration: exit 78.
    std::fs::write(&aliases, "postmaster: root\n").unwrap();
    let output = t.run();
    assert_exit(&output, 0, &[]);
    assert_eq!(output.stderr, "");
    std::fs::remove_file(&aliases).unwrap();
    assert_exit(&t.run(), 78, &["cannot read the aliases file"]);
}
