//! Submission to a real Postfix: Debian 12's postfix 3.7 with SMTP AUTH
//! through Dovecot's auth service, started by each test as a private
//! instance on 127.0.0.1 (tests/support/postfix.rs, configuration in
//! tests/peers/postfix/). Postfix 3.7 does not implement REQUIRETLS, which
//! is the point: require mode must refuse it, the other modes must deliver
//! through it unchanged.
//!
//! The peer needs root and the postfix and dovecot-core packages (.ci/run
//! installs them). Where it cannot run, the tests fail under CI (`CI` set,
//! as .ci/run does) and are skipped with a printed notice elsewhere.
//!
//! Deviations of the peer the tests allow for, and nothing else:
//! - Postfix prepends one Received field; it is split off and checked
//!   (TLS version, ESMTPSA), and the rest must be what tlsend read.
//! - Postfix stores lines without their ending and pipe(8) writes them
//!   with LF, so the stored copy has LF where the wire had CRLF. That the
//!   wire had CRLF is proven by `smtpd_forbid_bare_newline = reject`: a
//!   bare LF would have had the message refused. A CR that tlsend failed
//!   to pair with LF (a CRLF input sent as CR CR LF) would reach the
//!   stored copy, as a space (Postfix replaces a bare CR), and fail the
//!   comparison.

use crate::support::postfix::{self, Postfix, split_received};
use crate::support::{Output, Tlsend, pki};

const RECIPIENT: &str = "bob@example.net";

/// True when the test should go on; prints why not otherwise.
fn require_peer(test: &str) -> bool {
    match postfix::unavailable() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: Postfix peer unavailable under CI: {why}")
        }
        Some(why) => {
            eprintln!(
                "NOTICE: {test} skipped: {why} (the Postfix peer needs root and \
                 `apt-get install postfix dovecot-core`)"
            );
            false
        }
    }
}

/// How tlsend reaches the instance.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hop {
    /// The STARTTLS port, with no `--tls` (STARTTLS is the default).
    StartTlsByDefault,
    /// The STARTTLS port with `--tls starttls`.
    StartTls,
    /// The wrapper-mode port with `--tls implicit`.
    Implicit,
}

/// A message that already has Date, Message-ID and From (so tlsend adds
/// nothing), a folded field, every line that dot-stuffing must protect
/// (a lone "." in the middle and as the last line, which `-oi` keeps),
/// a "From " line that nothing may quote, a line of the full 998 octets,
/// and a body of over 100 KB. LF line endings.
fn message() -> String {
    let mut text = String::from(
        "Date: Mon, 1 Jan 2024 12:00:00 +0000\n\
         Message-ID: <postfix-interop@example.org>\n\
         From: Alice <alice@example.org>\n\
         To: Bob <bob@example.net>\n\
         Subject: through Postfix: dots, line ends\n\
         \tand a long body\n\
         \n\
         .\n\
         ..\n\
         .leading dot\n\
         ...\n\
         . a dot and a space\n\
         From the start of a line\n\
         \n",
    );
    for i in 0..2000 {
        text.push_str(&format!(
            "line {i:04}: the quick brown fox jumps over the lazy dog{}\n",
            ".".repeat(i % 5)
        ));
        if i % 400 == 0 {
            text.push_str(".\n");
        }
    }
    text.push_str(&"x".repeat(998));
    text.push_str("\ntrailing spaces   \n\ttab first\n\n.\n");
    text
}

fn submit(postfix: &Postfix, hop: Hop, password: &str, flags: &[&str], input: &[u8]) -> Output {
    let mut tlsend = Tlsend::new();
    tlsend
        .args(["-C", "/dev/null", "--host", "localhost", "--timeout", "20"])
        .args([
            "--user",
            postfix::USER,
            "--password-env",
            "TLSEND_TEST_PASSWORD",
        ])
        .env("TLSEND_TEST_PASSWORD", password)
        .env("SSL_CERT_FILE", pki().ca_file());
    let port = match hop {
        Hop::StartTlsByDefault => postfix.starttls_port,
        Hop::StartTls => {
            tlsend.args(["--tls", "starttls"]);
            postfix.starttls_port
        }
        Hop::Implicit => {
            tlsend.args(["--tls", "implicit"]);
            postfix.implicit_port
        }
    };
    tlsend
        .arg("--port")
        .arg(port.to_string())
        .args(flags)
        .args(["-oi", "-f", postfix::USER, "--", RECIPIENT])
        .stdin(input);
    tlsend.run()
}

/// The header lines (up to the empty line) of an LF message.
fn header_lines(message: &str) -> Vec<&str> {
    message.lines().take_while(|l| !l.is_empty()).collect()
}

/// Panics, naming the first line that differs, unless `stored` is `expected`.
fn assert_same(what: &str, stored: &[u8], expected: &[u8]) {
    if stored == expected {
        return;
    }
    let stored_lines: Vec<&[u8]> = stored.split_inclusive(|&b| b == b'\n').collect();
    let expected_lines: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let line = (0..)
        .find(|&i| stored_lines.get(i) != expected_lines.get(i))
        .unwrap_or_default();
    let show = |lines: &[&[u8]]| {
        lines.get(line).map_or("(none)".into(), |l| {
            format!("{:?}", String::from_utf8_lossy(l))
        })
    };
    panic!(
        "{what}: the stored message ({} octets, {} lines) differs from what tlsend read \
         ({} octets, {} lines) first at line {}:\n  stored:   {}\n  expected: {}",
        stored.len(),
        stored_lines.len(),
        expected.len(),
        expected_lines.len(),
        line + 1,
        show(&stored_lines),
        show(&expected_lines),
    );
}

/// Sends `message()` with LF and with CRLF endings, in default and in
/// optional mode, over `hops` (one per send, reused in turn), and checks
/// what Postfix stored against what tlsend read.
fn delivers_byte_for_byte(hops: [Hop; 2]) {
    let mut postfix = Postfix::start();
    let lf = message();
    let crlf = lf.replace('\n', "\r\n");
    let runs = [
        (hops[0], "", &lf),
        (hops[1], "", &crlf),
        (hops[0], "--tls-optional", &lf),
        (hops[1], "--tls-optional", &crlf),
    ];
    for (hop, mode, input) in runs {
        let what = format!(
            "{hop:?}, {}, {} endings",
            if mode.is_empty() {
                "default mode"
            } else {
                mode
            },
            if input.contains('\r') { "CRLF" } else { "LF" }
        );
        let flags: Vec<&str> = [mode].into_iter().filter(|f| !f.is_empty()).collect();
        let output = submit(&postfix, hop, postfix::PASSWORD, &flags, input.as_bytes());
        assert_eq!(
            output.code,
            Some(0),
            "{what}: {}\n{}",
            output.stderr,
            postfix.diagnostics()
        );
        let delivered = postfix.next_message();
        assert_eq!(
            delivered.envelope,
            [
                format!("MAIL FROM:<{}>", postfix::USER),
                format!("RCPT TO:<{RECIPIENT}>")
            ],
            "{what}"
        );
        let (received, rest) = split_received(&delivered.message);
        let received = String::from_utf8_lossy(received);
        // ESMTPSA: ESMTP over TLS with AUTH (RFC 3848).
        assert!(
            received.contains("(using TLSv1.") && received.contains(" with ESMTPSA id "),
            "{what}: {received}"
        );
        let stored = String::from_utf8_lossy(rest);
        if mode.is_empty() {
            assert_same(&what, rest, lf.as_bytes());
        } else {
            // Exactly one "TLS-Required: No" in the header, and with it
            // taken out, the message as read.
            let header = header_lines(&stored);
            let fields: Vec<&&str> = header
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with("tls-required:"))
                .collect();
            assert_eq!(
                fields,
                [&"TLS-Required: No"],
                "{what}:\n{}",
                header.join("\n")
            );
            let without = stored.replacen("TLS-Required: No\n", "", 1);
            assert_same(&what, without.as_bytes(), lf.as_bytes());
        }
    }
    // Each session: EHLO, AUTH, one transaction, no pipelining error.
    let sessions = postfix.wait_for_sessions(runs.len());
    assert_eq!(sessions.len(), runs.len(), "{sessions:#?}");
    for session in &sessions {
        for counter in [" auth=1 ", " mail=1 ", " rcpt=1 ", " data=1 "] {
            assert!(session.contains(counter), "{counter}: {session}");
        }
        let starttls = session.contains(" starttls=1 ");
        assert_eq!(starttls, hops[0] != Hop::Implicit, "{session}");
    }
    let log = postfix.log();
    assert_eq!(
        log.matches(&format!("sasl_username={}", postfix::USER))
            .count(),
        runs.len(),
        "{log}"
    );
    assert!(!log.contains("improper command pipelining"), "{log}");
}

// covers: SUB1, SUB6, IN1, IN2, POL6, HARD2
#[test]
fn sub1_postfix_starttls_with_auth_delivers_default_and_optional_mode_byte_for_byte() {
    if !require_peer(
        "sub1_postfix_starttls_with_auth_delivers_default_and_optional_mode_byte_for_byte",
    ) {
        return;
    }
    delivers_byte_for_byte([Hop::StartTlsByDefault, Hop::StartTls]);
}

// covers: SUB1, SUB6, IN1, IN2, POL6, HARD2
#[test]
fn sub1_postfix_implicit_tls_with_auth_delivers_default_and_optional_mode_byte_for_byte() {
    if !require_peer(
        "sub1_postfix_implicit_tls_with_auth_delivers_default_and_optional_mode_byte_for_byte",
    ) {
        return;
    }
    delivers_byte_for_byte([Hop::Implicit, Hop::Implicit]);
}

// covers: SUB3, FAIL1, FAIL2
#[test]
fn sub3_postfix_without_requiretls_refuses_require_mode_with_5_7_30_before_mail_from() {
    if !require_peer(
        "sub3_postfix_without_requiretls_refuses_require_mode_with_5_7_30_before_mail_from",
    ) {
        return;
    }
    let postfix = Postfix::start();
    let input = message();
    for hop in [Hop::StartTls, Hop::Implicit] {
        let output = submit(
            &postfix,
            hop,
            postfix::PASSWORD,
            &["--require-tls"],
            input.as_bytes(),
        );
        assert_eq!(output.code, Some(69), "{hop:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("5.7.30"),
            "{hop:?}: {}",
            output.stderr
        );
    }
    // Both sessions reached TLS and EHLO, and ended without MAIL.
    let sessions = postfix.wait_for_sessions(2);
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let starttls = sessions.iter().filter(|s| s.contains(" starttls=1 "));
    assert_eq!(starttls.count(), 1, "{sessions:#?}");
    for session in &sessions {
        assert!(
            !session.contains(" mail="),
            "MAIL reached Postfix: {session}"
        );
    }
    let log = postfix.log();
    assert_eq!(
        log.matches("TLS connection established from").count(),
        2,
        "{log}"
    );
    // smtpd logs "<queue id>: client=…" when it accepts MAIL.
    assert!(!log.contains(": client="), "{log}");
    assert!(postfix.messages().is_empty(), "{:?}", postfix.messages());
    assert!(
        postfix.queue_files().is_empty(),
        "{:?}",
        postfix.queue_files()
    );
}

// covers: FAIL2, SUB6
#[test]
fn fail2_postfix_auth_with_a_wrong_password_exits_77() {
    if !require_peer("fail2_postfix_auth_with_a_wrong_password_exits_77") {
        return;
    }
    let mut postfix = Postfix::start();
    let input = message();
    for hop in [Hop::StartTls, Hop::Implicit] {
        let output = submit(&postfix, hop, "not-the-password", &[], input.as_bytes());
        assert_eq!(output.code, Some(77), "{hop:?}: {}", output.stderr);
    }
    let sessions = postfix.wait_for_sessions(2);
    for session in &sessions {
        // One attempt, refused: no retry with another mechanism.
        assert!(session.contains(" auth=0/1 "), "{session}");
        assert!(
            !session.contains(" mail="),
            "MAIL reached Postfix: {session}"
        );
    }
    // Refused by Dovecot for the password, not for a broken setup.
    let log = postfix.wait_for_dovecot_log("two password mismatches", |log| {
        log.matches("Password mismatch").count() >= 2
    });
    assert_eq!(log.matches("Password mismatch").count(), 2, "{log}");
    assert!(postfix.messages().is_empty(), "{:?}", postfix.messages());
    // The same instance takes the right password.
    let output = submit(
        &postfix,
        Hop::StartTls,
        postfix::PASSWORD,
        &[],
        input.as_bytes(),
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    postfix.next_message();
}

// covers: MX5, MX1
#[test]
fn mx5_postfix_as_an_mx_host_stores_what_tlsend_read() {
    if !require_peer("mx5_postfix_as_an_mx_host_stores_what_tlsend_read") {
        return;
    }
    use crate::support::dns::{Records, ResolverDouble, Security, World};
    let mut postfix = Postfix::start();
    let mut world = World::new();
    world.zone("example.net", Security::Insecure);
    world.mx("example.net", 10, "mx.example.net");
    world.a("mx.example.net", "127.0.0.1");
    let dns = ResolverDouble::start(world);
    let input = message();
    let mut tlsend = crate::support::mx::direct_tlsend(dns.addr(), postfix.mx_port, "");
    tlsend
        .args(["-oi", "-v", "--", RECIPIENT])
        .stdin(input.as_bytes());
    let output = tlsend.run();
    assert_eq!(
        output.code,
        Some(0),
        "{}\n{}",
        output.stderr,
        postfix.diagnostics()
    );
    // Default mode, no DANE, no MTA-STS: opportunistic STARTTLS, and
    // Postfix 3.7 has no REQUIRETLS to offer.
    assert!(
        output.stderr.contains("not verified (opportunistic)"),
        "{}",
        output.stderr
    );
    let delivered = postfix.next_message();
    assert_eq!(
        delivered.envelope,
        [
            "MAIL FROM:<alice@example.org>".to_string(),
            format!("RCPT TO:<{RECIPIENT}>")
        ]
    );
    let (received, rest) = split_received(&delivered.message);
    let received = String::from_utf8_lossy(received);
    // ESMTPS: ESMTP over TLS, no AUTH (RFC 3848).
    assert!(
        received.contains("(using TLSv1.") && received.contains(" with ESMTPS id "),
        "{received}"
    );
    assert_same("Postfix as MX, default mode", rest, input.as_bytes());
}
