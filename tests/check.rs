//! `--check-config` and `--check-server` (UX7), and the errors a new user
//! meets first (UX5), through the real binary and the recording test server.

use std::time::Duration;

use crate::support::{
    AuthConfig, Behaviour, CertKind, StartTls, TestServer, Tlsend, assert_exit, pki,
};

const MESSAGE: &str = "From: Alice <alice@example.org>\n\
To: Bob <bob@example.net>\n\
Subject: test\n\
\n\
Hello Bob.\n";

fn server(behaviour: Behaviour) -> TestServer {
    TestServer::start(behaviour, pki())
}

/// An account for `server` whose password command leaves a file behind
/// when it runs, and prints `secret`.
fn account_for(server: &TestServer, tlsend: &Tlsend, secret: &str) -> String {
    format!(
        "default_account = \"work\"\n\
         [account.work]\n\
         host = \"localhost\"\n\
         port = {}\n\
         user = \"alice\"\n\
         password_command = \"touch {}/ran; echo '{secret}'\"\n\
         timeout = 5\n\
         [account.other]\n\
         host = \"other.example\"\n",
        server.port,
        tlsend.home().display()
    )
}

fn auth_server() -> TestServer {
    server(Behaviour {
        auth: Some(AuthConfig {
            mechanisms: vec!["PLAIN".into()],
            user: "alice".into(),
            secret: "correct horse".into(),
        }),
        ..Behaviour::default()
    })
}

#[track_caller]
fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "lacks {needle:?}:\n{haystack}");
    }
}

// covers: UX7
#[test]
fn ux7_check_config_prints_the_resolved_request_and_runs_no_password_command() {
    let server = auth_server();
    let mut tlsend = Tlsend::new();
    let config = account_for(&server, &tlsend, "correct horse");
    tlsend
        .config(&config)
        .env("SSL_CERT_FILE", pki().ca_file())
        .arg("--check-config");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    let config_file = tlsend.home().join(".config/tlsend/config.toml");
    assert_contains(
        &output.stdout,
        &[
            &format!("configuration file: {}", config_file.display()),
            &format!("looked for: {}", config_file.display()),
            "account: work (default_account names it)",
            &format!("server: localhost:{}", server.port),
            "TLS: STARTTLS",
            "trust: the system's trusted CAs (SSL_CERT_FILE=",
            "credentials: user \"alice\", password from password_command",
            "(not run by --check-config)",
            "TLS mode: default",
            "domain for bare names: ",
            "aliases: /etc/aliases when it exists",
            "log: none",
        ],
    );
    assert!(
        !tlsend.home().join("ran").exists(),
        "the password command ran"
    );
    assert!(!output.stdout.contains("correct horse"));
    assert!(!output.stderr.contains("correct horse"));
    assert_eq!(server.connections(), 0, "--check-config connected");
}

// covers: UX7
#[test]
fn ux7_check_config_says_why_an_account_was_chosen() {
    let mut tlsend = Tlsend::new();
    tlsend
        .config(
            "[account.work]\nhost = \"smtp.example.org\"\ntls = \"implicit\"\nfrom = \"*@example.org\"\n\
             fingerprint = \"sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\"\n\
             [account.lists]\nhost = \"lists.example.net\"\nuser = \"bot\"\npassword_env = \"LISTS_PASSWORD\"\n",
        )
        .env("LISTS_PASSWORD", "not shown")
        .args(["-f", "alice@example.org", "--check-config"]);
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    assert_contains(
        &output.stdout,
        &[
            "account: work (the sender alice@example.org matches its from = \"*@example.org\")",
            "server: smtp.example.org:465",
            "TLS: implicit (TLS from the first byte), from tls = \"implicit\" in account \"work\"",
            "trust: the pinned fingerprint sha256:00:11:22",
            "credentials: none",
        ],
    );

    let mut lists = Tlsend::new();
    lists
        .config(
            "[account.work]\nhost = \"smtp.example.org\"\n\
             [account.lists]\nhost = \"lists.example.net\"\nuser = \"bot\"\npassword_env = \"LISTS_PASSWORD\"\n",
        )
        .env("LISTS_PASSWORD", "not shown")
        .args(["-a", "lists", "--check-config"]);
    let output = lists.run();
    assert_exit(&output, 0, &[]);
    assert_contains(
        &output.stdout,
        &[
            "account: lists (named with -a)",
            "password from password_env LISTS_PASSWORD",
        ],
    );
    assert!(!output.stdout.contains("not shown"), "{}", output.stdout);
}

// covers: UX7
#[test]
fn ux7_check_config_without_a_server_shows_direct_delivery() {
    let mut tlsend = Tlsend::new();
    tlsend
        .config("[direct]\nresolver = \"127.0.0.1:5353\"\ndnssec = \"trust-resolver\"\n")
        .arg("--check-config");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    assert_contains(
        &output.stdout,
        &[
            "account: none (no accounts configured)",
            "delivery is direct to the recipients' MX hosts (no submission server is configured)",
            "[direct] port: 25",
            "[direct] resolver: 127.0.0.1:5353",
            "[direct] dnssec: trust-resolver",
        ],
    );
}

// covers: UX7, UX5
#[test]
fn ux7_check_config_fails_with_78_on_an_unusable_configuration() {
    // Several accounts and nothing to choose between them.
    let mut tlsend = Tlsend::new();
    tlsend
        .config("[account.a]\nhost = \"a.example\"\n[account.b]\nhost = \"b.example\"\n")
        .arg("--check-config");
    let output = tlsend.run();
    assert_exit(
        &output,
        78,
        &["2 accounts (a, b) and no default_account; pass -a NAME or set default_account"],
    );
    // A password variable that is not set: found without any secret.
    let mut unset = Tlsend::new();
    unset
        .config(
            "[account.a]\nhost = \"a.example\"\nuser = \"u\"\npassword_env = \"NOT_SET_HERE\"\n",
        )
        .arg("--check-config");
    let output = unset.run();
    assert_exit(
        &output,
        78,
        &["password_env NOT_SET_HERE: the variable is not set"],
    );
    // No file at all, and an account asked for: every file looked for.
    let mut none = Tlsend::new();
    none.args(["-a", "work", "--check-config"]);
    let output = none.run();
    let home = none.home().display().to_string();
    assert_exit(
        &output,
        78,
        &[
            "-a work: no such account: no configuration file was found (looked for ",
            &format!("{home}/.config/tlsend/config.toml and /etc/tlsend.toml)"),
        ],
    );
}

// covers: UX7
#[test]
fn ux7_check_server_shows_capabilities_and_chain_and_stops_before_auth() {
    let server = auth_server();
    let mut tlsend = Tlsend::new();
    let config = account_for(&server, &tlsend, "correct horse");
    tlsend
        .config(&config)
        .env("SSL_CERT_FILE", pki().ca_file())
        .arg("--check-server");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    assert_contains(
        &output.stdout,
        &[
            &format!("server: localhost:{} (STARTTLS", server.port),
            "TLS: TLS 1.3, cipher TLS13_",
            "verified by: WebPKI with the system's trusted CAs for localhost",
            "certificate 1 (the server's):",
            "  subject: CN=localhost",
            "  names: localhost, 127.0.0.1",
            "  issuer: CN=tlsend test CA",
            " UTC until ",
            &format!("  fingerprint: {}", pki().fingerprint(CertKind::Valid)),
            "capabilities (EHLO after TLS",
            "  AUTH PLAIN",
            "  SIZE 10485760",
            "REQUIRETLS: advertised after TLS",
        ],
    );
    let lines = server.lines();
    for verb in ["AUTH", "MAIL", "RCPT", "DATA"] {
        assert!(!server.saw(verb), "{verb} reached the server: {lines:?}");
    }
    assert_eq!(lines.last().map(String::as_str), Some("QUIT"), "{lines:?}");
    assert!(lines.iter().filter(|l| l.starts_with("EHLO")).count() == 2);
    assert!(
        !tlsend.home().join("ran").exists(),
        "the password command ran"
    );
}

// covers: UX7
#[test]
fn ux7_check_server_says_when_requiretls_is_missing() {
    let server = server(Behaviour {
        requiretls: crate::support::Advertise::Never,
        ..Behaviour::default()
    });
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend.arg("--check-server");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    assert_contains(&output.stdout, &["REQUIRETLS: NOT advertised"]);
    assert!(!server.saw("MAIL"));
}

// covers: UX7, UX5
#[test]
fn ux7_check_server_shows_a_certificate_that_fails_so_it_can_be_pinned() {
    let server = server(Behaviour {
        cert: CertKind::SelfSigned,
        ..Behaviour::default()
    });
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend.arg("--check-server");
    let output = tlsend.run();
    let fingerprint = pki().fingerprint(CertKind::SelfSigned);
    assert_exit(
        &output,
        69,
        &[
            "5.7.10",
            "not signed by",
            // The user gave --host and --port: advice names flags.
            "--ca-file",
            "--fingerprint",
        ],
    );
    assert_contains(
        &output.stdout,
        &[
            "the server presented (not accepted):",
            "  names: localhost, 127.0.0.1",
            &format!("  fingerprint: {fingerprint}"),
        ],
    );
    assert!(!server.saw("MAIL"));

    // The fingerprint shown is what --fingerprint takes.
    let mut pinned = Tlsend::to_server(&server, pki());
    pinned.args(["--fingerprint", &fingerprint, "--check-server"]);
    let output = pinned.run();
    assert_exit(&output, 0, &[]);
    assert_contains(&output.stdout, &["verified by: the pinned fingerprint"]);
}

// covers: UX7
#[test]
fn ux7_check_server_without_a_server_says_how_to_name_one() {
    let mut tlsend = Tlsend::new();
    tlsend.args(["-C", "/dev/null", "--check-server"]);
    let output = tlsend.run();
    assert_exit(
        &output,
        78,
        &["--check-server tests a submission server", "--host HOST"],
    );
}

// covers: UX5
#[test]
fn ux5_several_accounts_and_no_default_is_an_error_not_direct_delivery() {
    let mut tlsend = Tlsend::new();
    tlsend
        .config(
            "[account.work]\nhost = \"127.0.0.1\"\nport = 1\nfrom = \"*@work.example\"\n\
             [account.home]\nhost = \"127.0.0.1\"\nport = 1\nfrom = \"*@home.example\"\n",
        )
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        78,
        &[
            "2 accounts (work, home) and no default_account, and the sender alice@example.org matches no account's from; pass -a NAME or set default_account",
        ],
    );
    // Nothing was tried: no DNS, no connection.
    assert!(
        !output.stderr.contains("not delivered"),
        "{}",
        output.stderr
    );
}

// covers: UX5
#[test]
fn ux5_verbose_says_which_account_f_selected_and_why() {
    let server = server(Behaviour::default());
    let mut tlsend = Tlsend::new();
    tlsend
        .config(&format!(
            "[account.work]\nhost = \"localhost\"\nport = {}\nfrom = \"*@example.org\"\n\
             [account.home]\nhost = \"127.0.0.1\"\nport = 1\nfrom = \"*@home.example\"\n",
            server.port
        ))
        .env("SSL_CERT_FILE", pki().ca_file())
        .args(["-v", "-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        0,
        &[
            "using account \"work\" (the sender alice@example.org matches its from = \"*@example.org\")",
        ],
    );
}

// covers: UX5
#[test]
fn ux5_implicit_tls_against_a_starttls_port_says_so() {
    let server = server(Behaviour::default());
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .args([
            "--tls",
            "implicit",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        69,
        &[
            "answered in plain text (an SMTP greeting), not TLS",
            "--tls implicit asks for TLS from the first byte",
            "use --tls starttls (usually port 587)",
        ],
    );
    // The ClientHello looked like a bad command line to the server.
    server.take_violations();
    assert!(!server.saw("MAIL"));

    // The same from an account: the advice names the key and the file.
    let mut from_file = Tlsend::new();
    from_file
        .config(&format!(
            "[account.work]\nhost = \"localhost\"\nport = {}\ntls = \"implicit\"\ntimeout = 5\n",
            server.port
        ))
        .env("SSL_CERT_FILE", pki().ca_file())
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    let output = from_file.run();
    let file = from_file.home().join(".config/tlsend/config.toml");
    assert_exit(
        &output,
        69,
        &[
            &format!(
                "tls = \"implicit\" in account \"work\" ({})",
                file.display()
            ),
            &format!(
                "use tls = \"starttls\" in account \"work\" ({})",
                file.display()
            ),
        ],
    );
    server.take_violations();
}

// covers: UX5
#[test]
fn ux5_starttls_against_an_implicit_tls_port_says_so() {
    let server = server(Behaviour {
        implicit_tls: true,
        starttls: StartTls::NotOffered,
        ..Behaviour::default()
    });
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .args([
            "--timeout",
            "1",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(MESSAGE)
        .time_limit(Duration::from_secs(20));
    let output = tlsend.run();
    assert_exit(
        &output,
        75,
        &[
            "greeting: no complete reply within 1 s",
            "may expect TLS at once",
            "use --tls implicit",
        ],
    );
    assert!(!server.saw("MAIL"));
}

// covers: UX5
#[test]
fn ux5_certificate_names_and_dates_are_plain_text() {
    for (kind, needles) in [
        (
            CertKind::WrongName,
            &[
                "not valid for the host name tlsend connected to, localhost: it names wrong.example",
                "set --host localhost to a name the certificate carries",
            ][..],
        ),
        (
            CertKind::Expired,
            &["it expired on 2021-01-01 00:00:00 UTC; it is now 20"][..],
        ),
    ] {
        let server = server(Behaviour {
            cert: kind,
            ..Behaviour::default()
        });
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .args(["-f", "alice@example.org", "bob@example.net"])
            .stdin(MESSAGE);
        let output = tlsend.run();
        assert_exit(&output, 69, needles);
        for debug in ["DnsName", "IpAddress(", "(UNIX)", "Context"] {
            assert!(
                !output.stderr.contains(debug),
                "{kind:?}: {}",
                output.stderr
            );
        }
    }
}
