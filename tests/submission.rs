//! Submission through the real binary against the recording test server.
//! Every test checks three things: the exit code, the status shown on
//! stderr, and what reached the server. In require mode, a MAIL FROM must
//! never arrive unless every check passed.

use std::time::{Duration, Instant};

use crate::support::{
    Advertise, AuthConfig, Behaviour, CertKind, Output, Replies, StartTls, Step, TestServer,
    Tlsend, assert_exit, pki,
};

const MESSAGE: &str = "From: Alice <alice@example.org>\n\
To: Bob <bob@example.net>\n\
Subject: test\n\
Date: Sun, 22 Nov 2026 22:18:00 +0100\n\
Message-ID: <test.1@example.org>\n\
\n\
Hello Bob.\n";

fn server(behaviour: Behaviour) -> TestServer {
    TestServer::start(behaviour, pki())
}

fn server_for_test() -> TestServer {
    server(Behaviour::default())
}

/// Sends MESSAGE to bob@example.net from alice@example.org with `extra` flags.
fn send(server: &TestServer, extra: &[&str]) -> (Output, Tlsend) {
    send_message(server, extra, MESSAGE.as_bytes())
}

fn send_message(server: &TestServer, extra: &[&str], message: &[u8]) -> (Output, Tlsend) {
    let mut tlsend = Tlsend::to_server(server, pki());
    tlsend
        .args(["-f", "alice@example.org"])
        .args(extra)
        .arg("bob@example.net")
        .stdin(message);
    let output = tlsend.run();
    (output, tlsend)
}

/// Nothing of the message reached the server.
#[track_caller]
fn assert_nothing_sent(server: &TestServer) {
    assert!(
        !server.saw("MAIL"),
        "MAIL reached the server: {:?}",
        server.lines()
    );
    assert!(
        !server.saw("RCPT"),
        "RCPT reached the server: {:?}",
        server.lines()
    );
    assert!(
        !server.saw("DATA"),
        "DATA reached the server: {:?}",
        server.lines()
    );
    assert!(server.messages().is_empty());
}

#[track_caller]
fn assert_saved(tlsend: &Tlsend) {
    let saved = tlsend.dead_letter().expect("dead.letter was not written");
    assert!(saved.starts_with("From "), "{saved}");
    assert!(
        saved.contains("Hello Bob.") || saved.contains("Subject:"),
        "{saved}"
    );
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack
        .to_ascii_lowercase()
        .matches(&needle.to_ascii_lowercase())
        .count()
}

// covers: SUB3, SUB4, SUB5, SUB1
#[test]
fn sub4_require_mode_delivers_with_requiretls_on_mail_from_under_tls() {
    let server = server(Behaviour::default());
    let (output, tlsend) = send(&server, &["--require-tls"]);
    assert_exit(&output, 0, &[]);
    assert!(
        output.stderr.is_empty(),
        "a quiet success: {}",
        output.stderr
    );
    let commands = server.commands();
    let lines: Vec<&str> = commands.iter().map(|c| c.line.as_str()).collect();
    // The EHLO name is the host's FQDN, or [127.0.0.1] when it has none.
    assert!(
        lines[0].starts_with("EHLO ") && lines[1] == "STARTTLS",
        "{lines:?}"
    );
    // SUB5: EHLO again after TLS, and everything from there on under TLS.
    assert!(
        commands[2].line.starts_with("EHLO") && commands[2].tls,
        "{commands:?}"
    );
    let mail: Vec<_> = commands
        .iter()
        .filter(|c| c.line.starts_with("MAIL"))
        .collect();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
    assert!(
        mail[0].line.starts_with("MAIL FROM:<alice@example.org>"),
        "{}",
        mail[0].line
    );
    assert_eq!(
        mail[0].line.matches("REQUIRETLS").count(),
        1,
        "{}",
        mail[0].line
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    assert!(messages[0].text().contains("Hello Bob."));
    assert_eq!(count(&messages[0].text(), "TLS-Required"), 0);
    assert!(tlsend.dead_letter().is_none());
}

// covers: SUB3, FAIL1
#[test]
fn sub3_no_requiretls_after_tls_is_refused_with_5_7_30() {
    for (id, advertise) in [
        ("never", Advertise::Never),
        ("SUB5 only before TLS", Advertise::BeforeTlsOnly),
    ] {
        let server = server(Behaviour {
            requiretls: advertise,
            ..Behaviour::default()
        });
        let (output, tlsend) = send(&server, &["--require-tls"]);
        assert_exit(
            &output,
            69,
            &["5.7.30", "REQUIRETLS support required", "localhost:"],
        );
        assert_nothing_sent(&server);
        assert!(server.saw("QUIT"), "{id}: RFC 8689 4.2.1 asks for QUIT");
        assert_saved(&tlsend);
    }
}

// covers: SUB2, FAIL1
#[test]
fn sub2_no_tls_means_5_7_10_and_nothing_sent() {
    #[rustfmt::skip]
    let cases: &[(&str, StartTls, &[&str])] = &[
        ("STARTTLS not offered", StartTls::NotOffered, &["does not offer STARTTLS"]),
        ("STARTTLS stripped to XXXXXXXX", StartTls::Stripped, &["does not offer STARTTLS", "stripping"]),
        ("454 to STARTTLS", StartTls::Refuse454, &["454 4.7.0"]),
    ];
    for (id, starttls, needles) in cases {
        let server = server(Behaviour {
            starttls: starttls.clone(),
            ..Behaviour::default()
        });
        let (output, tlsend) = send(&server, &["--require-tls"]);
        assert_eq!(output.code, Some(69), "{id}: {}", output.stderr);
        assert!(
            output.stderr.contains("5.7.10 Encryption needed"),
            "{id}: {}",
            output.stderr
        );
        for needle in *needles {
            assert!(
                output.stderr.contains(needle),
                "{id}: lacks {needle:?}: {}",
                output.stderr
            );
        }
        assert_nothing_sent(&server);
        assert!(server.saw("QUIT"), "{id}");
        assert!(server.commands().iter().all(|c| !c.tls), "{id}");
        assert_saved(&tlsend);
    }
}

// covers: SUB7, FAIL1
#[test]
fn sub7_bytes_after_starttls_reply_abort_the_session() {
    let server = server(Behaviour {
        starttls: StartTls::InjectAfter220(b"250-injected\r\n250 REQUIRETLS\r\n".to_vec()),
        ..Behaviour::default()
    });
    let (output, tlsend) = send(&server, &["--require-tls"]);
    assert_exit(
        &output,
        69,
        &["5.7.10", "after its 220 reply to STARTTLS", "CVE-2011-0411"],
    );
    assert_nothing_sent(&server);
    let lines = server.lines();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("STARTTLS"),
        "nothing after the attack: {lines:?}"
    );
    assert_saved(&tlsend);
}

// covers: SUB7
#[test]
fn sub7_injection_is_refused_in_default_mode_too() {
    let server = server(Behaviour {
        starttls: StartTls::InjectAfter220(b"250 ok\r\n".to_vec()),
        ..Behaviour::default()
    });
    let (output, _) = send(&server, &[]);
    assert_exit(&output, 69, &["CVE-2011-0411"]);
    assert_nothing_sent(&server);
}

// covers: SUB2, FAIL1
#[test]
fn sub2_certificates_that_do_not_verify_mean_5_7_10() {
    #[rustfmt::skip]
    let cases: &[(CertKind, &str)] = &[
        (CertKind::WrongName, "not valid for the host name"),
        (CertKind::Expired, "outside its validity period"),
        (CertKind::SelfSigned, "not signed by"),
        (CertKind::UntrustedCa, "not signed by"),
    ];
    for (kind, reason) in cases {
        let server = server(Behaviour {
            cert: *kind,
            ..Behaviour::default()
        });
        let (output, tlsend) = send(&server, &["--require-tls"]);
        assert_eq!(output.code, Some(69), "{kind:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("5.7.10"),
            "{kind:?}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains("TLS handshake") && output.stderr.contains(reason),
            "{kind:?}: {}",
            output.stderr
        );
        assert_nothing_sent(&server);
        assert!(
            server.commands().iter().all(|c| !c.tls),
            "{kind:?}: a command arrived over the rejected TLS"
        );
        assert_saved(&tlsend);
    }
}

// covers: SUB2
#[test]
fn sub2_default_mode_verifies_the_certificate_as_well() {
    let server = server(Behaviour {
        cert: CertKind::SelfSigned,
        ..Behaviour::default()
    });
    let (output, _) = send(&server, &[]);
    assert_exit(&output, 69, &["5.7.10"]);
    assert_nothing_sent(&server);
}

// covers: SUB2
#[test]
fn sub2_a_ca_file_or_a_pin_replaces_the_system_roots() {
    // CA file, with SSL_CERT_FILE pointing nowhere useful.
    let server1 = server(Behaviour::default());
    let mut tlsend = Tlsend::to_server(&server1, pki());
    tlsend
        .env("SSL_CERT_FILE", "/nonexistent")
        .arg("--ca-file")
        .arg(pki().ca_file())
        .args([
            "--require-tls",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(MESSAGE);
    assert_exit(&tlsend.run(), 0, &[]);
    assert_eq!(server1.messages().len(), 1);

    // A pin accepts a self-signed certificate...
    let server2 = server(Behaviour {
        cert: CertKind::SelfSigned,
        ..Behaviour::default()
    });
    let (output, _) = send(
        &server2,
        &[
            "--require-tls",
            "--fingerprint",
            &pki().fingerprint(CertKind::SelfSigned),
        ],
    );
    assert_exit(&output, 0, &[]);
    assert_eq!(server2.messages().len(), 1);

    // ...and refuses any other certificate, showing both fingerprints.
    let server3 = server(Behaviour::default());
    let pinned = pki().fingerprint(CertKind::SelfSigned);
    let (output, _) = send(&server3, &["--require-tls", "--fingerprint", &pinned]);
    assert_exit(
        &output,
        69,
        &["5.7.10", &pinned, &pki().fingerprint(CertKind::Valid)],
    );
    assert_nothing_sent(&server3);
}

// covers: FAIL2, FAIL3
#[test]
fn fail2_server_refusals_at_each_step_map_to_exit_codes() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Replies, i32, &str, bool)> = vec![
        ("4xx at MAIL", Replies { mail: Some("451 4.3.0 try later".into()), ..Default::default() }, 75, "4.3.0", false),
        ("5xx at MAIL", Replies { mail: Some("550 5.7.1 sender rejected".into()), ..Default::default() }, 69, "5.7.1", false),
        ("5.1.1 at RCPT", Replies { rcpt: Some("550 5.1.1 no such user".into()), ..Default::default() }, 67, "5.1.1", false),
        ("4xx at RCPT", Replies { rcpt: Some("450 4.2.0 mailbox busy".into()), ..Default::default() }, 75, "4.2.0", false),
        ("5xx at DATA", Replies { data: Some("554 5.5.1 no valid recipients".into()), ..Default::default() }, 69, "5.5.1", false),
        ("4xx at DATA", Replies { data: Some("451 4.3.0 later".into()), ..Default::default() }, 75, "4.3.0", false),
        ("5xx at end of data", Replies { end_of_data: Some("554 5.6.0 content rejected".into()), ..Default::default() }, 69, "5.6.0", true),
        ("4xx at end of data", Replies { end_of_data: Some("452 4.3.1 out of space".into()), ..Default::default() }, 75, "4.3.1", true),
    ];
    for (id, replies, code, status, data_sent) in cases {
        let server = server(Behaviour {
            replies,
            ..Behaviour::default()
        });
        let (output, tlsend) = send(&server, &["--require-tls"]);
        assert_eq!(output.code, Some(code), "{id}: {}", output.stderr);
        assert!(output.stderr.contains(status), "{id}: {}", output.stderr);
        assert!(
            output.stderr.contains("bob@example.net"),
            "{id}: names the recipient: {}",
            output.stderr
        );
        assert_eq!(server.messages().len(), usize::from(data_sent), "{id}");
        assert_saved(&tlsend);
    }
}

// covers: FAIL2, FAIL8
#[test]
fn fail8_partial_delivery_reports_every_recipient_and_saves_only_the_undelivered() {
    let server = server(Behaviour {
        replies: Replies {
            rcpt_for: vec![("carol@example.net".into(), "550 5.1.1 unknown user".into())],
            ..Default::default()
        },
        ..Behaviour::default()
    });
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .args([
            "-f",
            "alice@example.org",
            "bob@example.net",
            "carol@example.net",
        ])
        .stdin(MESSAGE);
    let output = tlsend.run();
    // The exit status is the refused recipient's (67), as sendmail's.
    assert_exit(&output, 67, &[]);
    let lines: Vec<&str> = output.stderr.lines().collect();
    let bob = lines
        .iter()
        .find(|l| l.starts_with("tlsend: bob@example.net: delivered via localhost:"))
        .unwrap_or_else(|| panic!("no line for bob:\n{}", output.stderr));
    assert!(bob.contains("250 2.0.0"), "bob's line has the reply: {bob}");
    let carol = lines
        .iter()
        .find(|l| l.starts_with("tlsend: carol@example.net: not delivered: 5.1.1"))
        .unwrap_or_else(|| panic!("no line for carol:\n{}", output.stderr));
    assert!(carol.contains("550 5.1.1 unknown user"), "{carol}");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to.len(), 2, "both RCPTs were sent");
    let accepted: Vec<&str> = messages[0]
        .rcpt_accepted
        .iter()
        .map(String::as_str)
        .collect();
    assert!(
        accepted.len() == 1 && accepted[0].starts_with("RCPT TO:<bob@example.net>"),
        "only bob took the message: {accepted:?}"
    );
    // dead.letter names carol, and only carol, as undelivered.
    let saved = tlsend.dead_letter().expect("dead.letter was written");
    let named: Vec<&str> = saved
        .lines()
        .filter(|l| l.starts_with("X-Tlsend-Undelivered:"))
        .collect();
    assert_eq!(named.len(), 1, "{saved}");
    assert!(
        named[0].starts_with("X-Tlsend-Undelivered: carol@example.net (5.1.1"),
        "{saved}"
    );
    assert!(!saved.contains("Undelivered: bob"), "{saved}");
    assert!(saved.contains("Hello Bob."), "{saved}");
}

// covers: FAIL6
#[test]
fn fail6_a_silent_server_cannot_hang_tlsend() {
    for step in [Step::Greeting, Step::AfterEhlo, Step::Mail, Step::EndOfData] {
        let server = server(Behaviour {
            silent_at: Some(step),
            ..Behaviour::default()
        });
        let started = Instant::now();
        let (output, tlsend) = send(&server, &["--timeout", "1"]);
        let elapsed = started.elapsed();
        assert_eq!(output.code, Some(75), "{step:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("4.4.1")
                && output.stderr.contains("no complete reply within 1 s"),
            "{step:?}: {}",
            output.stderr
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{step:?} took {elapsed:?}"
        );
        assert!(
            !server.saw("QUIT"),
            "{step:?}: QUIT to a server that stopped answering"
        );
        assert_saved(&tlsend);
    }
}

// covers: POL6
#[test]
fn pol6_optional_mode_sends_exactly_one_tls_required_no() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &["--tls-optional"]);
    assert_exit(&output, 0, &[]);
    let message = &server.messages()[0];
    assert_eq!(
        count(&message.text(), "TLS-Required:"),
        1,
        "{}",
        message.text()
    );
    assert!(message.text().contains("TLS-Required: No\r\n"));
    assert!(!message.mail_from.contains("REQUIRETLS"));
}

// covers: POL2, POL6
#[test]
fn pol2_a_tls_required_no_field_selects_optional_and_stays_single() {
    let server = server(Behaviour::default());
    let input = format!("TLS-required:\n   nO \n{MESSAGE}");
    let (output, _) = send_message(&server, &["-v"], input.as_bytes());
    assert_exit(
        &output,
        0,
        &["TLS mode optional (the message has a \"TLS-Required: No\" header field)"],
    );
    let message = &server.messages()[0];
    assert_eq!(
        count(&message.text(), "TLS-Required:"),
        1,
        "{}",
        message.text()
    );
    assert!(!message.mail_from.contains("REQUIRETLS"));
}

// covers: POL5
#[test]
fn pol5_require_mode_removes_the_field_with_a_warning() {
    let server = server(Behaviour::default());
    let input = format!("TLS-Required: No\n{MESSAGE}");
    let (output, _) = send_message(&server, &["--require-tls"], input.as_bytes());
    assert_exit(&output, 0, &["warning", "TLS-Required", "RFC 8689 4.1"]);
    let message = &server.messages()[0];
    assert_eq!(
        count(&message.text(), "TLS-Required"),
        0,
        "{}",
        message.text()
    );
    assert!(
        message.mail_from.ends_with(" REQUIRETLS") || message.mail_from.contains(" REQUIRETLS ")
    );
}

// covers: POL3, POL4, FAIL3
#[test]
fn pol3_pol4_bad_tls_required_fields_are_refused_before_connecting() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("POL3 Yes", "TLS-Required: Yes\n", "TLS-Required: Yes"),
        ("POL3 Yes in require mode", "TLS-Required: yes\n", "RFC 8689"),
        ("POL4 twice", "TLS-Required: No\nTLS-Required: No\n", "2 TLS-Required"),
    ];
    for (id, field, needle) in cases {
        let server = server(Behaviour::default());
        let input = format!("{field}{MESSAGE}");
        let flags: &[&str] = if id.contains("require") {
            &["--require-tls"]
        } else {
            &[]
        };
        let (output, tlsend) = send_message(&server, flags, input.as_bytes());
        assert_eq!(output.code, Some(65), "{id}: {}", output.stderr);
        assert!(output.stderr.contains(needle), "{id}: {}", output.stderr);
        assert_eq!(server.connections(), 0, "{id}: connected anyway");
        assert_saved(&tlsend);
    }
}

// covers: POL1
#[test]
fn pol1_contradictory_flags_are_a_usage_error() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &["--require-tls", "--tls-optional"]);
    assert_exit(&output, 64, &["contradict"]);
    assert_eq!(server.connections(), 0);
}

#[test]
fn default_mode_sends_neither_requiretls_nor_the_field() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &[]);
    assert_exit(&output, 0, &[]);
    let message = &server.messages()[0];
    assert!(!message.mail_from.contains("REQUIRETLS"));
    assert_eq!(count(&message.text(), "TLS-Required"), 0);
    assert!(message.tls, "default mode still submits over verified TLS");
}

// covers: IN3
#[test]
fn in3_t_reads_to_cc_and_bcc_and_removes_bcc() {
    let server = server(Behaviour::default());
    let input = "From: a@example.org\nTo: Bob <bob@example.net>\nCc: team: carol@example.net;\nBcc: \"dave smith\"@example.net\nSubject: t\n\nbody\n";
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .args(["-t", "-i", "-f", "a@example.org", "erin@example.net"])
        .stdin(input);
    assert_exit(&tlsend.run(), 0, &[]);
    let message = &server.messages()[0];
    let paths: Vec<&str> = message
        .rcpt_to
        .iter()
        .map(|r| &r[..=r.find('>').unwrap()])
        .collect();
    assert_eq!(
        paths,
        [
            "RCPT TO:<erin@example.net>",
            "RCPT TO:<bob@example.net>",
            "RCPT TO:<carol@example.net>",
            "RCPT TO:<\"dave smith\"@example.net>"
        ]
    );
    assert_eq!(count(&message.text(), "Bcc:"), 0, "{}", message.text());
    assert!(message.text().contains("Cc: team: carol@example.net;"));
}

// covers: IN2
#[test]
fn in2_a_lone_dot_ends_the_message_unless_i() {
    let input = "Subject: dots\n\nfirst\n.\nafter the dot\n";
    let server1 = server(Behaviour::default());
    let (output, _) = send_message(&server1, &[], input.as_bytes());
    assert_exit(&output, 0, &[]);
    let text = server1.messages()[0].text();
    assert!(
        text.contains("first") && !text.contains("after the dot"),
        "{text}"
    );

    let server2 = server(Behaviour::default());
    let (output, _) = send_message(&server2, &["-i"], input.as_bytes());
    assert_exit(&output, 0, &[]);
    let message = &server2.messages()[0];
    assert!(
        message.text().contains("first\r\n.\r\nafter the dot\r\n"),
        "{}",
        message.text()
    );
    // On the wire the dot was stuffed, so the message did not end early.
    assert!(String::from_utf8_lossy(&message.raw_data).contains("\r\n..\r\n"));
}

// covers: IN1
#[test]
fn in1_bare_lf_reaches_the_server_as_crlf() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &[]);
    assert_exit(&output, 0, &[]);
    let raw = &server.messages()[0].raw_data;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(raw[i - 1], b'\r', "bare LF at {i}");
        }
    }
    assert!(raw.ends_with(b"Hello Bob.\r\n"));
}

// covers: IN9, FAIL3
#[test]
fn in9_long_lines_and_nul_bytes_are_refused_naming_the_line() {
    let long = format!("Subject: x\n\nshort\n{}\n", "a".repeat(1200));
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("1200-octet line", long.into_bytes(), vec!["line 4", "1200 octets", "998"]),
        ("NUL byte", b"Subject: x\n\nnul \0 here\n".to_vec(), vec!["line 3", "NUL"]),
        ("bare CR", b"Subject: x\n\n10%\r20%\n".to_vec(), vec!["line 3", "carriage return"]),
    ];
    for (id, input, needles) in cases {
        let server = server(Behaviour::default());
        let (output, tlsend) = send_message(&server, &["--require-tls"], &input);
        assert_eq!(output.code, Some(65), "{id}: {}", output.stderr);
        for needle in needles {
            assert!(
                output.stderr.contains(needle),
                "{id}: lacks {needle}: {}",
                output.stderr
            );
        }
        assert_eq!(server.connections(), 0, "{id}");
        assert_saved(&tlsend);
    }
}

// covers: IN8
#[test]
fn in8_eight_bit_content_needs_the_servers_extensions() {
    let body8 = "Subject: x\n\nGrüße\n";
    let header8 = "Subject: Grüße\n\nplain\n";
    let without = |ext: &str| Behaviour {
        extensions: Behaviour::default()
            .extensions
            .into_iter()
            .filter(|e| e != ext)
            .collect(),
        ..Behaviour::default()
    };
    // Refused, never mangled, when the extension is missing.
    for (id, behaviour, input, needle) in [
        (
            "8-bit body without 8BITMIME",
            without("8BITMIME"),
            body8,
            "8BITMIME",
        ),
        (
            "UTF-8 header without SMTPUTF8",
            without("SMTPUTF8"),
            header8,
            "SMTPUTF8",
        ),
    ] {
        let server = server(behaviour);
        let (output, tlsend) = send_message(&server, &[], input.as_bytes());
        assert_eq!(output.code, Some(65), "{id}: {}", output.stderr);
        assert!(output.stderr.contains(needle), "{id}: {}", output.stderr);
        assert_nothing_sent(&server);
        assert_saved(&tlsend);
    }
    // Sent with the parameters when offered.
    let server = server(Behaviour::default());
    let (output, _) = send_message(&server, &[], header8.as_bytes());
    assert_exit(&output, 0, &[]);
    let message = &server.messages()[0];
    assert!(
        message.mail_from.contains("BODY=8BITMIME") && message.mail_from.contains("SMTPUTF8"),
        "{}",
        message.mail_from
    );
    assert!(message.text().contains("Subject: Grüße"));
}

// covers: IN7, IN4
#[test]
fn in7_missing_date_message_id_and_from_are_added() {
    let server = server(Behaviour::default());
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .args([
            "-f",
            "cron@host.example",
            "-F",
            "Cron Daemon",
            "bob@example.net",
        ])
        .stdin("Subject: report\n\nall good\n");
    assert_exit(&tlsend.run(), 0, &[]);
    let message = &server.messages()[0];
    let text = message.text();
    assert!(
        message
            .mail_from
            .starts_with("MAIL FROM:<cron@host.example>"),
        "{}",
        message.mail_from
    );
    assert!(
        text.contains("\r\nFrom: Cron Daemon <cron@host.example>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(
        text.contains("\r\nMessage-ID: <") && text.contains("@host.example>\r\n"),
        "{text}"
    );
    // A message that has them keeps its own.
    let complete = server_for_test();
    let (output, _) = send(&complete, &[]);
    assert_exit(&output, 0, &[]);
    let text = complete.messages()[0].text();
    assert_eq!(count(&text, "\nDate:"), 1);
    assert!(text.contains("Message-ID: <test.1@example.org>"));
}

// covers: IN5
#[test]
fn in5_real_callers_deliver() {
    #[rustfmt::skip]
    let cases: &[(&str, &[&str], &str)] = &[
        ("Vixie cron", &["-FCronDaemon", "-odi", "-oem", "-or0s", "-oi", "-t"], "RCPT TO:<bob@example.net>"),
        ("Debian cron", &["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"], "RCPT TO:<root@example.org>"),
        ("PHP", &["-t", "-i"], "RCPT TO:<bob@example.net>"),
        ("mutt", &["-oem", "-oi", "--", "bob@example.net"], "RCPT TO:<bob@example.net>"),
    ];
    for (caller, args, rcpt) in cases {
        let server = server(Behaviour::default());
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .config_file("qualify_domain = \"example.org\"\naliases = \"\"\n")
            .args(["-f", "cron@example.org"])
            .args(*args)
            .stdin(MESSAGE)
            .as_program("sendmail");
        let output = tlsend.run();
        assert_eq!(output.code, Some(0), "{caller}: {}", output.stderr);
        let message = &server.messages()[0];
        assert!(
            message.rcpt_to.iter().any(|r| r.starts_with(rcpt)),
            "{caller}: {:?}",
            message.rcpt_to
        );
    }
}

// covers: IN6
#[test]
fn in6_mailq_and_newaliases_behave_as_those_programs() {
    let mut mailq = Tlsend::new();
    mailq.as_program("mailq");
    let output = mailq.run();
    assert_eq!(
        (output.code, output.stdout.as_str()),
        (Some(0), "Mail queue is empty\n")
    );
    let mut newaliases = Tlsend::new();
    newaliases.as_program("newaliases");
    assert_eq!(newaliases.run().code, Some(0));
    let mut queue = Tlsend::new();
    queue.as_program("sendmail").arg("-q");
    assert_eq!(queue.run().code, Some(0));
    // -bs greets, and an empty standard input ends the dialogue (IN13).
    let mut bs = Tlsend::new();
    bs.as_program("sendmail").arg("-bs");
    let output = bs.run();
    assert_exit(&output, 0, &[]);
    assert!(output.stdout.starts_with("220 "), "{}", output.stdout);
}

// covers: SUB6, UX1
#[test]
fn sub6_auth_over_tls_and_the_secret_never_shown() {
    for mechanism in ["plain", "login"] {
        let server = server(Behaviour {
            auth: Some(AuthConfig {
                mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
                user: "alice".into(),
                secret: "correct horse".into(),
            }),
            ..Behaviour::default()
        });
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .args([
                "-v",
                "--require-tls",
                "--user",
                "alice",
                "--password-env",
                "SMTP_SECRET",
                "--auth",
                mechanism,
            ])
            .args(["-f", "alice@example.org", "bob@example.net"])
            .env("SMTP_SECRET", "correct horse")
            .stdin(MESSAGE);
        let output = tlsend.run();
        assert_exit(&output, 0, &["AUTH", "<secret>"]);
        for leak in [
            "correct horse",
            "Y29ycmVjdCBob3JzZQ==",
            "AGFsaWNlAGNvcnJlY3QgaG9yc2U=",
        ] {
            assert!(
                !output.stderr.contains(leak),
                "{mechanism}: leaked {leak}:\n{}",
                output.stderr
            );
        }
        let auth: Vec<_> = server
            .commands()
            .into_iter()
            .filter(|c| c.line.starts_with("AUTH"))
            .collect();
        assert!(
            !auth.is_empty() && auth.iter().all(|c| c.tls),
            "{mechanism}: {auth:?}"
        );
        assert_eq!(server.messages().len(), 1);
    }
}

// covers: SUB6, FAIL2
#[test]
fn sub6_failed_authentication_exits_77_before_mail() {
    let server = server(Behaviour {
        auth: Some(AuthConfig {
            mechanisms: vec!["PLAIN".into()],
            user: "alice".into(),
            secret: "right".into(),
        }),
        ..Behaviour::default()
    });
    let (output, tlsend) = {
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .args([
                "--user",
                "alice",
                "--password-command",
                "echo wrong",
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin(MESSAGE);
        (tlsend.run(), tlsend)
    };
    assert_exit(
        &output,
        77,
        &["5.7.8", "AUTH", "check --user alice", "--password-command"],
    );
    assert_nothing_sent(&server);
    assert_saved(&tlsend);
}

// covers: SUB6
#[test]
fn sub6_credentials_are_never_sent_without_tls() {
    let server = server(Behaviour::default());
    let (output, _) = send(
        &server,
        &["--tls", "none", "--user", "alice", "--password-env", "HOME"],
    );
    assert_exit(&output, 78, &["only ever sent over TLS"]);
    assert_eq!(server.connections(), 0);
}

// covers: SUB1
#[test]
fn sub1_implicit_tls_on_a_465_style_port() {
    let server = server(Behaviour {
        implicit_tls: true,
        starttls: StartTls::NotOffered,
        ..Behaviour::default()
    });
    let (output, _) = send(&server, &["--tls", "implicit", "--require-tls"]);
    assert_exit(&output, 0, &[]);
    let commands = server.commands();
    assert!(commands.iter().all(|c| c.tls), "{commands:?}");
    assert!(!commands.iter().any(|c| c.line == "STARTTLS"));
    assert!(server.messages()[0].mail_from.contains("REQUIRETLS"));
}

// covers: SUB8
#[test]
fn sub8_keywords_in_lower_case_still_count() {
    let server = server(Behaviour {
        lowercase_keywords: true,
        ..Behaviour::default()
    });
    let (output, _) = send(&server, &["--require-tls"]);
    assert_exit(&output, 0, &[]);
    assert!(server.messages()[0].mail_from.contains("REQUIRETLS"));
}

// covers: UX1, UX5
#[test]
fn ux1_verbose_shows_the_dialogue_and_every_tls_decision() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &["-v", "--require-tls"]);
    assert_exit(&output, 0, &[]);
    for needle in [
        "TLS mode require (command-line flag --require-tls)",
        "-> EHLO",
        "<- 250-localhost",
        "-> STARTTLS",
        "TLS established: TLS 1.3",
        "cipher TLS13_",
        "subject \"CN=localhost\"",
        "issuer \"CN=tlsend test CA\"",
        "verified by WebPKI with the system's trusted CAs for localhost",
        "require mode: TLS verified and REQUIRETLS advertised after TLS",
        "REQUIRETLS",
        "bob@example.net: delivered via localhost:",
        "250 2.0.0",
    ] {
        assert!(
            output.stderr.contains(needle),
            "lacks {needle:?}:\n{}",
            output.stderr
        );
    }
}

// covers: UX5
#[test]
fn ux5_connection_failures_name_host_step_and_remedy() {
    let mut tlsend = Tlsend::new();
    tlsend
        .args([
            "-C",
            "/dev/null",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "-f",
            "a@example.org",
            "b@example.net",
        ])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        75,
        &[
            "127.0.0.1:1",
            "connect",
            // UX5: the advice names the flags the user gave.
            "check --host 127.0.0.1 and --port 1",
        ],
    );
    assert_saved(&tlsend);
}

// covers: SUB2, SUB6
#[test]
fn configured_account_supplies_server_trust_mode_and_credentials() {
    let server = server(Behaviour {
        auth: Some(AuthConfig {
            mechanisms: vec!["PLAIN".into()],
            user: "alice".into(),
            secret: "from-file".into(),
        }),
        ..Behaviour::default()
    });
    let mut tlsend = Tlsend::new();
    let secret_file = tlsend.home().join("secret");
    std::fs::write(&secret_file, "from-file\n").unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    tlsend
        .config(&format!(
            "[account.work]\nhost = \"localhost\"\nport = {}\nfrom = \"alice@example.org\"\nuser = \"alice\"\n\
             password_file = \"~/secret\"\nca_file = \"{}\"\nmode = \"require\"\ntimeout = 5\n",
            server.port,
            pki().ca_file().display()
        ))
        .args(["-v", "bob@example.net"])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(
        &output,
        0,
        &["configuration: account \"work\" has mode = \"require\""],
    );
    let message = &server.messages()[0];
    assert!(
        message
            .mail_from
            .starts_with("MAIL FROM:<alice@example.org>")
            && message.mail_from.contains("REQUIRETLS")
    );
}

// covers: FAIL5
#[test]
fn fail5_require_mode_sends_ret_full_as_hdrs_with_a_warning() {
    let server = server(Behaviour::default());
    let (output, _) = send(
        &server,
        &[
            "--require-tls",
            "-R",
            "full",
            "-N",
            "failure",
            "-V",
            "env-1",
        ],
    );
    assert_exit(&output, 0, &["warning", "RET=HDRS"]);
    let message = &server.messages()[0];
    assert!(
        message.mail_from.contains(" RET=HDRS") && !message.mail_from.contains("RET=FULL"),
        "{}",
        message.mail_from
    );
    assert!(
        message.mail_from.contains(" ENVID=env-1"),
        "{}",
        message.mail_from
    );
    assert!(
        message.rcpt_to[0].contains(" NOTIFY=FAILURE"),
        "{:?}",
        message.rcpt_to
    );
    // Outside require mode RET=FULL is passed on as asked.
    let plain = server_for_test();
    let (output, _) = send(&plain, &["-R", "full"]);
    assert_exit(&output, 0, &[]);
    assert!(plain.messages()[0].mail_from.contains(" RET=FULL"));
}

// covers: IN11
#[test]
fn in11_standard_input_is_read_to_its_end_before_connecting() {
    use std::io::Write;
    let server = server(Behaviour::default());
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend.args(["-f", "alice@example.org", "bob@example.net"]);
    let mut child = tlsend.spawn();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"Subject: slow job\n\nfirst part\n")
        .unwrap();
    stdin.flush().unwrap();
    // A cron job still running: tlsend must not hold a session open meanwhile.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(server.connections(), 0, "connected before the input ended");
    stdin.write_all(b"second part\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        server.messages()[0]
            .text()
            .ends_with("first part\r\nsecond part\r\n")
    );
}

// covers: IN10, IN11
#[test]
fn in10_a_large_message_is_streamed_intact() {
    let server = server(Behaviour::default());
    let mut body = String::from("Subject: big\n\n");
    let line = format!("{}\n", "0123456789".repeat(9));
    while body.len() < 8 << 20 {
        body.push_str(&line);
    }
    body.push_str(".leading dot survives\n");
    let (output, _) = send_message(&server, &["-i"], body.as_bytes());
    assert_exit(&output, 0, &[]);
    let message = &server.messages()[0];
    let sent_body = &message.data[find(&message.data, b"\r\n\r\n").unwrap() + 4..];
    let expected = body["Subject: big\n\n".len()..].replace('\n', "\r\n");
    assert_eq!(sent_body.len(), expected.len());
    assert!(
        sent_body == expected.as_bytes(),
        "the body changed on the way"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// covers: IN5, IN4
#[test]
fn in5_php_with_a_cleared_environment_still_has_a_sender() {
    let server = server(Behaviour::default());
    let mut tlsend = Tlsend::to_server(&server, pki());
    tlsend
        .config_file("qualify_domain = \"example.org\"\n")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["-t", "-i"])
        .stdin("To: bob@example.net\nSubject: from php\n\nhi\n")
        .as_program("sendmail");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    let mail_from = &server.messages()[0].mail_from;
    assert!(
        mail_from.starts_with("MAIL FROM:<") && mail_from.contains("@example.org>"),
        "{mail_from}"
    );
}

// covers: SUB2
#[test]
fn sub2_require_mode_never_connects_to_a_server_set_to_plain_text() {
    let server = server(Behaviour::default());
    let (output, tlsend) = send(&server, &["--tls", "none", "--require-tls"]);
    assert_exit(&output, 69, &["5.7.10", "require mode needs TLS"]);
    assert_eq!(server.connections(), 0);
    assert_saved(&tlsend);
}

// covers: UX5
#[test]
fn ux5_a_bad_ehlo_name_is_a_configuration_error() {
    let server = server(Behaviour::default());
    let (output, _) = send(&server, &["--ehlo-name", "bad name"]);
    assert_exit(&output, 78, &["ehlo", "bad name"]);
    assert_eq!(server.connections(), 0);
}

// covers: FAIL3, FAIL6, UX5
#[test]
fn fail3_an_absurd_timeout_is_refused_without_losing_the_message() {
    let mut tlsend = Tlsend::new();
    tlsend
        .config("[account.a]\nhost = \"localhost\"\nconnect_timeout = 9223372036854775807\n")
        .args(["-f", "a@example.org", "b@example.net"])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(&output, 78, &["config.toml:3:", "connect_timeout", "86400"]);
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert_saved(&tlsend);
}

/// Proof that the harness itself tells the truth: a raw client drives the
/// test server byte by byte, and the certificates are checked with the
/// WebPKI verifier tlsend uses. If the server swallowed a command, answered
/// out of order or presented the wrong certificate, these fail.
mod harness_self_test {
    use std::future::Future;
    use std::io;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, RootCertStore};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;

    use crate::support::{
        Advertise, AuthConfig, Behaviour, CertKind, Received, Replies, StartTls, Step, TestPki,
        TestServer, Tlsend, Violation, pki,
    };

    /// The bound on every single wait for the server.
    const WAIT: Duration = Duration::from_secs(5);
    /// How long "the server does not answer" is watched for.
    const SILENCE: Duration = Duration::from_millis(400);

    /// Runs `test` on a fresh runtime, failing after 30 s instead of hanging.
    fn block_on<F: Future>(test: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), test).await })
            .expect("self-test took more than 30 s")
    }

    fn roots(pki: &TestPki) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(pki.ca_file()).expect("ca_file") {
            roots.add(cert.expect("PEM certificate")).expect("CA");
        }
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn connector(pki: &TestPki) -> TlsConnector {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots(pki))
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

    /// A deliberately dumb SMTP client: writes what it is told, reads
    /// whole replies, and never waits without a limit.
    struct Client {
        io: Box<dyn Stream>,
        buffer: Vec<u8>,
        /// The server's certificate chain, once TLS is up.
        peer: Vec<CertificateDer<'static>>,
    }

    impl Client {
        async fn connect(server: &TestServer) -> Client {
            let stream = tokio::time::timeout(WAIT, TcpStream::connect(("127.0.0.1", server.port)))
                .await
                .expect("connect timed out")
                .expect("connect");
            Client {
                io: Box::new(stream),
                buffer: Vec::new(),
                peer: Vec::new(),
            }
        }

        /// Connects and reads the greeting.
        async fn greeted(server: &TestServer) -> Client {
            let mut client = Client::connect(server).await;
            let greeting = client.reply().await;
            assert!(greeting.starts_with("220 "), "{greeting}");
            client
        }

        async fn write(&mut self, bytes: &[u8]) {
            tokio::time::timeout(WAIT, async {
                self.io.write_all(bytes).await?;
                self.io.flush().await
            })
            .await
            .expect("write timed out")
            .expect("write");
        }

        /// Reads once more; 0 means EOF. `None` if nothing came in time.
        async fn read_for(&mut self, limit: Duration) -> Option<usize> {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(limit, self.io.read(&mut chunk)).await {
                Err(_) => None,
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Some(0),
                Ok(Err(e)) => panic!("read: {e}"),
                Ok(Ok(n)) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    Some(n)
                }
            }
        }

        /// The bytes of exactly one read.
        async fn read_once(&mut self) -> Vec<u8> {
            assert!(self.buffer.is_empty(), "unread: {:?}", self.buffer);
            self.read_for(WAIT).await.expect("no answer in time");
            std::mem::take(&mut self.buffer)
        }

        /// One whole reply, every line with its CRLF.
        async fn reply(&mut self) -> String {
            loop {
                let mut end = 0;
                for line in self.buffer.split_inclusive(|&b| b == b'\n') {
                    if !line.ends_with(b"\n") {
                        break;
                    }
                    end += line.len();
                    // RFC 5321 4.2.1: the last line has a space after the code.
                    if line.get(3) == Some(&b' ') || line.len() == 5 {
                        let reply = self.buffer.drain(..end).collect::<Vec<u8>>();
                        return String::from_utf8(reply).expect("ASCII reply");
                    }
                }
                let n = self.read_for(WAIT).await.expect("no reply in time");
                assert!(n > 0, "connection closed; partial: {:?}", self.buffer);
            }
        }

        async fn command(&mut self, line: &str) -> String {
            self.write(format!("{line}\r\n").as_bytes()).await;
            self.reply().await
        }

        /// True if neither a byte nor EOF arrives for `SILENCE`.
        async fn stays_silent(&mut self) -> bool {
            self.read_for(SILENCE).await.is_none() && self.buffer.is_empty()
        }

        /// True if the server closes the connection (within `WAIT`).
        async fn closed(&mut self) -> bool {
            self.read_for(WAIT).await == Some(0)
        }

        /// The TLS handshake for `name` over this connection.
        async fn tls(self, pki: &TestPki, name: &str) -> Result<Client, io::Error> {
            assert!(self.buffer.is_empty(), "unread: {:?}", self.buffer);
            let name = ServerName::try_from(name.to_string()).expect("server name");
            let stream = tokio::time::timeout(WAIT, connector(pki).connect(name, self.io))
                .await
                .expect("handshake timed out")?;
            let peer = stream.get_ref().1.peer_certificates().unwrap_or_default();
            let peer = peer.iter().map(|c| c.clone().into_owned()).collect();
            Ok(Client {
                io: Box::new(stream),
                buffer: Vec::new(),
                peer,
            })
        }

        /// EHLO, STARTTLS, handshake for `localhost`, EHLO again; returns
        /// the client and the EHLO replies before and after TLS.
        async fn secured(server: &TestServer) -> (Client, String, String) {
            let mut client = Client::greeted(server).await;
            let before = client.command("EHLO client.example").await;
            let ready = client.command("STARTTLS").await;
            assert!(ready.starts_with("220 "), "{ready}");
            let mut client = client.tls(pki(), "localhost").await.expect("handshake");
            let after = client.command("EHLO client.example").await;
            (client, before, after)
        }
    }

    fn code(reply: &str) -> &str {
        reply.get(..3).unwrap_or(reply)
    }

    fn lines_of(commands: &[Received]) -> Vec<(&str, bool)> {
        commands.iter().map(|c| (c.line.as_str(), c.tls)).collect()
    }

    fn problems(violations: &[Violation]) -> String {
        let all: Vec<&str> = violations.iter().map(|v| v.problem.as_str()).collect();
        all.join("\n")
    }

    /// True if an EHLO reply lists `keyword` as a keyword (not as a
    /// substring of another line).
    fn offers(ehlo: &str, keyword: &str) -> bool {
        ehlo.lines().skip(1).any(|line| {
            line.get(4..)
                .and_then(|k| k.split(' ').next())
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }

    fn auth_server() -> TestServer {
        TestServer::start(
            Behaviour {
                auth: Some(AuthConfig {
                    mechanisms: vec!["PLAIN".into(), "LOGIN".into(), "XOAUTH2".into()],
                    user: "alice".into(),
                    secret: "s3cret".into(),
                }),
                ..Behaviour::default()
            },
            pki(),
        )
    }

    fn b64(text: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    // covers: SUB5, SUB4 (the server side every submission test relies on)
    #[test]
    fn commands_are_recorded_in_order_with_their_tls_flag() {
        let server = auth_server();
        block_on(async {
            let (mut client, before, after) = Client::secured(&server).await;
            assert!(before.starts_with("250-localhost"), "{before}");
            assert!(offers(&before, "STARTTLS"), "{before}");
            assert!(!offers(&before, "REQUIRETLS"), "{before}");
            assert!(!offers(&before, "AUTH"), "AUTH before TLS: {before}");
            assert!(offers(&after, "REQUIRETLS"), "{after}");
            assert!(offers(&after, "AUTH"), "{after}");
            assert!(!offers(&after, "STARTTLS"), "{after}");
            let mail = client.command("MAIL FROM:<a@example.org> REQUIRETLS").await;
            assert_eq!(code(&mail), "250", "{mail}");
            assert_eq!(code(&client.command("QUIT").await), "221");
            assert!(client.closed().await, "QUIT must close");
        });
        let commands = server.commands();
        assert_eq!(
            lines_of(&commands),
            [
                ("EHLO client.example", false),
                ("STARTTLS", false),
                ("EHLO client.example", true),
                ("MAIL FROM:<a@example.org> REQUIRETLS", true),
                ("QUIT", true),
            ]
        );
        assert!(commands.iter().all(|c| c.conn == 1));
        assert_eq!(server.connections(), 1);
        assert!(server.saw("mail from"), "saw() ignores case");
        assert!(!server.saw("RCPT"));
    }

    // covers: SUB3, SUB5
    #[test]
    fn requiretls_is_advertised_as_each_mode_says() {
        #[rustfmt::skip]
        let cases = [
            // (mode, before TLS, after TLS)
            (Advertise::AfterTls, false, true),
            (Advertise::Never, false, false),
            (Advertise::BeforeTlsOnly, true, false),
            (Advertise::Always, true, true),
        ];
        for (mode, before_tls, after_tls) in cases {
            let server = TestServer::start(
                Behaviour {
                    requiretls: mode,
                    ..Behaviour::default()
                },
                pki(),
            );
            let (before, after) = block_on(async {
                let (_client, before, after) = Client::secured(&server).await;
                (before, after)
            });
            assert_eq!(
                offers(&before, "REQUIRETLS"),
                before_tls,
                "{mode:?}: {before}"
            );
            assert_eq!(offers(&after, "REQUIRETLS"), after_tls, "{mode:?}: {after}");
        }
    }

    // covers: SUB5
    #[test]
    fn after_starttls_the_client_must_ehlo_again() {
        let server = TestServer::start(Behaviour::default(), pki());
        block_on(async {
            let mut client = Client::greeted(&server).await;
            client.command("EHLO client.example").await;
            client.command("STARTTLS").await;
            let mut client = client.tls(pki(), "localhost").await.expect("handshake");
            let mail = client.command("MAIL FROM:<a@example.org>").await;
            assert_eq!(code(&mail), "503", "{mail}");
            client.command("EHLO client.example").await;
            let mail = client.command("MAIL FROM:<a@example.org>").await;
            assert_eq!(code(&mail), "250", "{mail}");
        });
        let violations = server.take_violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0]
                .problem
                .contains("MAIL without EHLO after TLS"),
            "{violations:?}"
        );
    }

    // covers: SUB7
    #[test]
    fn injected_bytes_arrive_in_the_same_read_as_the_220() {
        let injected = b"250-injected\r\n250 REQUIRETLS\r\n".to_vec();
        let server = TestServer::start(
            Behaviour {
                starttls: StartTls::InjectAfter220(injected.clone()),
                ..Behaviour::default()
            },
            pki(),
        );
        block_on(async {
            let mut client = Client::greeted(&server).await;
            client.command("EHLO client.example").await;
            client.write(b"STARTTLS\r\n").await;
            let mut expected = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
            expected.extend_from_slice(&injected);
            assert_eq!(
                String::from_utf8_lossy(&client.read_once().await),
                String::from_utf8_lossy(&expected)
            );
        });
    }

    // covers: SUB2, SUB7
    #[test]
    fn starttls_misbehaviours_show_in_ehlo_and_the_reply() {
        #[rustfmt::skip]
        let cases = [
            // (mode, keyword shown, keyword absent, reply code to STARTTLS)
            (StartTls::Offer, "STARTTLS", "XXXXXXXX", "220"),
            (StartTls::Stripped, "XXXXXXXX", "STARTTLS", "502"),
            (StartTls::NotOffered, "PIPELINING", "STARTTLS", "502"),
            (StartTls::Refuse454, "STARTTLS", "XXXXXXXX", "454"),
        ];
        for (mode, shown, absent, expected) in cases {
            let server = TestServer::start(
                Behaviour {
                    starttls: mode.clone(),
                    ..Behaviour::default()
                },
                pki(),
            );
            block_on(async {
                let mut client = Client::greeted(&server).await;
                let ehlo = client.command("EHLO client.example").await;
                assert!(offers(&ehlo, shown), "{mode:?}: {ehlo}");
                assert!(!offers(&ehlo, absent), "{mode:?}: {ehlo}");
                let reply = client.command("STARTTLS").await;
                assert_eq!(code(&reply), expected, "{mode:?}: {reply}");
            });
        }
    }

    // covers: SUB2
    #[test]
    fn each_certificate_kind_verifies_only_where_intended() {
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots(pki()), provider())
                .build()
                .expect("verifier");
        let now = UnixTime::now();
        // Inside Expired's validity (2020-01-01 to 2021-01-01).
        let in_2020 = UnixTime::since_unix_epoch(Duration::from_secs(1_590_969_600));
        #[rustfmt::skip]
        let cases: &[(CertKind, &str, UnixTime, Option<&str>)] = &[
            (CertKind::Valid, "localhost", now, None),
            (CertKind::Valid, "127.0.0.1", now, None),
            (CertKind::Valid, "wrong.example", now, Some("name")),
            (CertKind::WrongName, "localhost", now, Some("name")),
            (CertKind::WrongName, "wrong.example", now, None), // trusted; only the name is wrong
            (CertKind::Expired, "localhost", now, Some("expired")),
            (CertKind::Expired, "localhost", in_2020, None), // only the date is wrong
            (CertKind::SelfSigned, "localhost", now, Some("issuer")),
            (CertKind::UntrustedCa, "localhost", now, Some("issuer")),
        ];
        for (kind, name, when, expected) in cases {
            let (chain, _) = pki().server_identity(*kind);
            assert_eq!(chain.len(), 1, "{kind:?}: the leaf alone");
            let server_name = ServerName::try_from(name.to_string()).expect("name");
            let result = verifier.verify_server_cert(&chain[0], &[], &server_name, &[], *when);
            let outcome = match result {
                Ok(_) => None,
                Err(rustls::Error::InvalidCertificate(error)) => Some(match error {
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. } => "name",
                    CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                        "expired"
                    }
                    CertificateError::UnknownIssuer => "issuer",
                    other => panic!("{kind:?} for {name}: unexpected {other:?}"),
                }),
                Err(other) => panic!("{kind:?} for {name}: unexpected {other:?}"),
            };
            assert_eq!(outcome, *expected, "{kind:?} for {name}");
        }
    }

    // covers: SUB2, SUB1
    #[test]
    fn the_server_presents_the_configured_certificate_and_its_fingerprint() {
        for kind in CertKind::ALL {
            let server = TestServer::start(
                Behaviour {
                    implicit_tls: true,
                    cert: kind,
                    ..Behaviour::default()
                },
                pki(),
            );
            block_on(async {
                let client = Client::connect(&server).await;
                let handshake = client.tls(pki(), "localhost").await;
                match (kind, handshake) {
                    (CertKind::Valid, Ok(mut client)) => {
                        let (chain, _) = pki().server_identity(kind);
                        assert_eq!(client.peer, chain, "the leaf alone, as configured");
                        // Implicit TLS: the greeting comes inside TLS.
                        assert!(client.reply().await.starts_with("220 "));
                        let digest = ring::digest::digest(&ring::digest::SHA256, &client.peer[0]);
                        let hex: String =
                            digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
                        let fingerprint = pki().fingerprint(kind);
                        assert_eq!(fingerprint.len(), "sha256:".len() + 32 * 3 - 1);
                        assert_eq!(
                            fingerprint
                                .strip_prefix("sha256:")
                                .map(|f| f.replace(':', "")),
                            Some(hex)
                        );
                    }
                    (CertKind::Valid, Err(e)) => panic!("Valid refused: {e}"),
                    (_, Ok(_)) => panic!("{kind:?} was accepted for localhost"),
                    (_, Err(e)) => {
                        let rustls_error =
                            e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
                        assert!(
                            matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_))),
                            "{kind:?}: {e}"
                        );
                    }
                }
            });
        }
        let fingerprints: std::collections::HashSet<String> = CertKind::ALL
            .iter()
            .map(|k| pki().fingerprint(*k))
            .collect();
        assert_eq!(
            fingerprints.len(),
            CertKind::ALL.len(),
            "one certificate per kind"
        );
    }

    // covers: SUB7
    #[test]
    fn pipelined_mail_rcpt_data_get_three_replies_in_order() {
        let server = TestServer::start(Behaviour::default(), pki());
        block_on(async {
            let (mut client, _, after) = Client::secured(&server).await;
            assert!(offers(&after, "PIPELINING"));
            client
                .write(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
                .await;
            assert!(client.reply().await.starts_with("250 2.1.0"));
            assert!(client.reply().await.starts_with("250 2.1.5"));
            assert!(client.reply().await.starts_with("354 "));
            client.write(b"Subject: x\r\n\r\nhi\r\n.\r\n").await;
            assert!(client.reply().await.starts_with("250 2.0.0"));
        });
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].mail_from, "MAIL FROM:<a@example.org>");
        assert_eq!(messages[0].rcpt_to, ["RCPT TO:<b@example.net>"]);
        assert!(messages[0].tls);
        assert_eq!(server.take_violations(), [], "PIPELINING was offered");
    }

    // covers: SUB7
    #[test]
    fn pipelining_where_it_is_not_allowed_is_a_violation() {
        #[rustfmt::skip]
        let cases: &[(&str, Vec<String>, &[u8], &str)] = &[
            ("not offered", vec![], b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n", "without PIPELINING"),
            ("after EHLO", Behaviour::default().extensions, b"EHLO again.example\r\nNOOP\r\n", "EHLO must be the last"),
            ("body before 354", Behaviour::default().extensions, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nhi\r\n.\r\n", "DATA must be the last"),
        ];
        for (id, extensions, burst, expected) in cases {
            let server = TestServer::start(
                Behaviour {
                    extensions: extensions.clone(),
                    ..Behaviour::default()
                },
                pki(),
            );
            block_on(async {
                let mut client = Client::greeted(&server).await;
                client.command("EHLO client.example").await;
                client.write(burst).await;
                // Answered as usual, one reply per command.
                client.reply().await;
                client.reply().await;
            });
            let violations = server.take_violations();
            assert!(
                problems(&violations).contains(expected),
                "{id}: {violations:?}"
            );
        }
    }

    // covers: SUB7
    #[test]
    fn bytes_pipelined_past_starttls_end_the_session() {
        let server = TestServer::start(Behaviour::default(), pki());
        block_on(async {
            let mut client = Client::greeted(&server).await;
            client.command("EHLO client.example").await;
            client
                .write(b"STARTTLS\r\nMAIL FROM:<a@example.org>\r\n")
                .await;
            assert!(client.reply().await.starts_with("220 "));
            assert!(client.closed().await, "no handshake after an injection");
        });
        let lines = server.lines();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("(pipelined past STARTTLS) MAIL FROM:<a@example.org>\r\n")
        );
        assert!(server.messages().is_empty());
        let violations = server.take_violations();
        assert!(
            problems(&violations).contains("after STARTTLS"),
            "{violations:?}"
        );
    }

    // covers: IN1, IN2
    #[test]
    fn data_is_unstuffed_and_raw_data_is_kept_exactly() {
        struct Case {
            id: &'static str,
            /// Written one after the other, after the 354.
            writes: &'static [&'static [u8]],
            raw: &'static [u8],
            data: &'static [u8],
            /// Part of the violation expected, or "" for none.
            violation: &'static str,
        }
        #[rustfmt::skip]
        let cases = [
            Case { id: "stuffed dots", writes: &[b"Subject: x\r\n\r\n..dot\r\n...\r\n.\r\n"],
                raw: b"Subject: x\r\n\r\n..dot\r\n...\r\n", data: b"Subject: x\r\n\r\n.dot\r\n..\r\n", violation: "" },
            Case { id: "empty message", writes: &[b".\r\n"], raw: b"", data: b"", violation: "" },
            Case { id: "end marker split over three writes", writes: &[b"a\r\n", b"b\r\n.", b"\r\n"],
                raw: b"a\r\nb\r\n", data: b"a\r\nb\r\n", violation: "" },
            Case { id: "bare LF kept in raw_data", writes: &[b"a\nb\r\n.\r\n"],
                raw: b"a\nb\r\n", data: b"a\nb\r\n", violation: "bare LF" },
            Case { id: "bare CR kept in raw_data", writes: &[b"a\rb\r\n.\r\n"],
                raw: b"a\rb\r\n", data: b"a\rb\r\n", violation: "bare CR" },
        ];
        for Case {
            id,
            writes,
            raw,
            data,
            violation,
        } in cases
        {
            let server = TestServer::start(Behaviour::default(), pki());
            block_on(async {
                let mut client = Client::greeted(&server).await;
                client.command("EHLO client.example").await;
                client.command("MAIL FROM:<a@example.org>").await;
                client.command("RCPT TO:<b@example.net>").await;
                assert!(client.command("DATA").await.starts_with("354 "));
                for bytes in writes {
                    client.write(bytes).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                assert!(client.reply().await.starts_with("250 "), "{id}");
                let noop = client.command("NOOP").await;
                assert_eq!(code(&noop), "250", "{id}: back in command mode");
            });
            let messages = server.messages();
            assert_eq!(messages.len(), 1, "{id}");
            assert_eq!(messages[0].raw_data, raw, "{id}");
            assert_eq!(messages[0].data, data, "{id}");
            let violations = server.take_violations();
            if violation.is_empty() {
                assert_eq!(violations, [], "{id}");
            } else {
                assert!(
                    problems(&violations).contains(violation),
                    "{id}: {violations:?}"
                );
            }
        }
    }

    // covers: FAIL6
    #[test]
    fn silent_at_each_step_really_does_not_answer() {
        const EHLO: &str = "EHLO client.example";
        const MAIL: &str = "MAIL FROM:<a@example.org>";
        const RCPT: &str = "RCPT TO:<b@example.net>";
        #[rustfmt::skip]
        let cases: &[(Step, &[&str], &str)] = &[
            // (step, answered dialogue after the greeting, the first line left unanswered)
            (Step::Greeting, &[], EHLO),
            (Step::AfterEhlo, &[EHLO], "NOOP"),
            (Step::Mail, &[EHLO], MAIL),
            (Step::Rcpt, &[EHLO, MAIL], RCPT),
            (Step::Data, &[EHLO, MAIL, RCPT], "DATA"),
            (Step::EndOfData, &[EHLO, MAIL, RCPT, "DATA"], "hi\r\n."),
        ];
        for (step, answered, unanswered) in cases {
            let server = TestServer::start(
                Behaviour {
                    silent_at: Some(*step),
                    ..Behaviour::default()
                },
                pki(),
            );
            block_on(async {
                let mut client = Client::connect(&server).await;
                if *step == Step::Greeting {
                    assert!(client.stays_silent().await, "a greeting");
                } else {
                    assert!(client.reply().await.starts_with("220 "));
                }
                for line in *answered {
                    client.command(line).await;
                }
                client.write(format!("{unanswered}\r\n").as_bytes()).await;
                assert!(client.stays_silent().await, "{step:?}: answered");
                client.write(b"QUIT\r\n").await;
                assert!(client.stays_silent().await, "{step:?}: answered QUIT");
            });
            // It kept reading what the client sent.
            assert!(server.saw("QUIT"), "{step:?}");
            let messages = usize::from(*step == Step::EndOfData);
            assert_eq!(server.messages().len(), messages, "{step:?}");
        }
    }

    // covers: SUB6
    #[test]
    fn auth_mechanisms_accept_the_right_secret_only() {
        let plain = b64("\0alice\0s3cret");
        let wrong = b64("\0alice\0guess");
        let oauth = b64("user=alice\x01auth=Bearer s3cret\x01\x01");
        let bad_oauth = b64("user=alice\x01auth=Bearer expired\x01\x01");
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<String>, &str)> = vec![
            // (id, client lines, each answered, final code)
            ("PLAIN initial response", vec![format!("AUTH PLAIN {plain}")], "235"),
            ("PLAIN after 334", vec!["AUTH PLAIN".into(), plain.clone()], "235"),
            ("PLAIN wrong secret", vec![format!("AUTH PLAIN {wrong}")], "535"),
            ("LOGIN", vec!["AUTH LOGIN".into(), b64("alice"), b64("s3cret")], "235"),
            ("LOGIN wrong secret", vec!["AUTH LOGIN".into(), b64("alice"), b64("guess")], "535"),
            ("LOGIN cancelled", vec!["AUTH LOGIN".into(), "*".into()], "501"),
            ("XOAUTH2", vec![format!("AUTH XOAUTH2 {oauth}")], "235"),
            ("XOAUTH2 refused", vec![format!("AUTH XOAUTH2 {bad_oauth}"), String::new()], "535"),
            ("mechanism not offered", vec!["AUTH CRAM-MD5".into()], "504"),
        ];
        for (id, lines, expected) in cases {
            let server = auth_server();
            block_on(async {
                let (mut client, _, _) = Client::secured(&server).await;
                let mut reply = String::new();
                for line in &lines {
                    reply = client.command(line).await;
                }
                assert_eq!(code(&reply), expected, "{id}: {reply}");
            });
            let commands = server.commands();
            let auth: Vec<(&str, bool)> = lines_of(&commands[3..]);
            let sent: Vec<(&str, bool)> = lines.iter().map(|l| (l.as_str(), true)).collect();
            assert_eq!(auth, sent, "{id}: every AUTH line is recorded");
        }
        // Before TLS, AUTH is neither offered nor accepted.
        let server = auth_server();
        block_on(async {
            let mut client = Client::greeted(&server).await;
            let ehlo = client.command("EHLO client.example").await;
            assert!(!offers(&ehlo, "AUTH"), "{ehlo}");
            let reply = client.command(&format!("AUTH PLAIN {plain}")).await;
            assert_eq!(code(&reply), "538", "{reply}");
        });
    }

    // covers: FAIL2
    #[test]
    fn replies_can_be_overridden_at_each_step() {
        let server = TestServer::start(
            Behaviour {
                replies: Replies {
                    rcpt_for: vec![("carol@example.net".into(), "550 5.1.1 unknown".into())],
                    end_of_data: Some("554 5.6.0 content rejected".into()),
                    ..Replies::default()
                },
                ..Behaviour::default()
            },
            pki(),
        );
        block_on(async {
            let mut client = Client::greeted(&server).await;
            client.command("EHLO client.example").await;
            client.command("MAIL FROM:<a@example.org>").await;
            let bob = client.command("RCPT TO:<bob@example.net>").await;
            let carol = client.command("RCPT TO:<carol@example.net>").await;
            assert_eq!(
                (code(&bob), carol.as_str()),
                ("250", "550 5.1.1 unknown\r\n")
            );
            client.command("DATA").await;
            let end = client.command("hi\r\n.").await;
            assert_eq!(end, "554 5.6.0 content rejected\r\n");
        });
        let message = &server.messages()[0];
        assert_eq!(message.rcpt_to.len(), 2);
        assert_eq!(message.rcpt_accepted, ["RCPT TO:<bob@example.net>"]);

        const EHLO: &str = "EHLO client.example";
        const MAIL: &str = "MAIL FROM:<a@example.org>";
        const RCPT: &str = "RCPT TO:<b@example.net>";
        const DATA: &str = "DATA";
        let with = |change: fn(&mut Replies)| {
            let mut replies = Replies::default();
            change(&mut replies);
            replies
        };
        #[rustfmt::skip]
        let cases: &[(&str, Replies, &[&str], &str)] = &[
            // (id, overrides, dialogue after the greeting, the last command's expected reply)
            ("greeting 554, then 503", with(|r| r.greeting = Some("554 5.3.2 go away".into())), &[EHLO], "503"),
            ("MAIL", with(|r| r.mail = Some("451 4.3.0 try later".into())), &[EHLO, MAIL], "451 4.3.0 try later"),
            ("RCPT for all", with(|r| r.rcpt = Some("450 4.2.0 busy".into())), &[EHLO, MAIL, RCPT], "450 4.2.0 busy"),
            ("DATA", with(|r| r.data = Some("451 4.3.0 later".into())), &[EHLO, MAIL, RCPT, DATA], "451 4.3.0 later"),
            ("RCPT without MAIL", Replies::default(), &[EHLO, RCPT], "503"),
            ("DATA without an accepted RCPT", with(|r| r.rcpt = Some("550 5.1.1 no".into())), &[EHLO, MAIL, RCPT, DATA], "503"),
            ("nested MAIL", Replies::default(), &[EHLO, MAIL, MAIL], "503"),
            ("MAIL again after RSET", Replies::default(), &[EHLO, MAIL, "RSET", MAIL], "250"),
        ];
        for (id, replies, dialogue, expected) in cases {
            let server = TestServer::start(
                Behaviour {
                    replies: replies.clone(),
                    ..Behaviour::default()
                },
                pki(),
            );
            block_on(async {
                let mut client = Client::connect(&server).await;
                let greeting = client.reply().await;
                assert_eq!(
                    greeting.starts_with("554"),
                    replies.greeting.is_some(),
                    "{id}"
                );
                let mut reply = String::new();
                for line in *dialogue {
                    reply = client.command(line).await;
                }
                assert!(reply.starts_with(expected), "{id}: {reply}");
                assert_eq!(code(&client.command("QUIT").await), "221", "{id}");
            });
        }
        // A 421 greeting closes the connection.
        let server = TestServer::start(
            Behaviour {
                replies: Replies {
                    greeting: Some("421 4.3.2 shutting down".into()),
                    ..Default::default()
                },
                ..Behaviour::default()
            },
            pki(),
        );
        block_on(async {
            let mut client = Client::connect(&server).await;
            assert!(client.reply().await.starts_with("421 "));
            assert!(client.closed().await);
        });
    }

    // covers: SUB8, FAIL6
    #[test]
    fn plain_commands_keywords_and_limits() {
        let server = TestServer::start(
            Behaviour {
                lowercase_keywords: true,
                ..Behaviour::default()
            },
            pki(),
        );
        block_on(async {
            let mut client = Client::greeted(&server).await;
            assert_eq!(
                client.command("HELO client.example").await,
                "250 localhost\r\n"
            );
            let ehlo = client.command("EHLO client.example").await;
            assert!(ehlo.contains("250-starttls\r\n"), "{ehlo}");
            assert!(ehlo.contains("250 size 10485760\r\n"), "{ehlo}");
            assert_eq!(code(&client.command("NOOP").await), "250");
            assert_eq!(code(&client.command("RSET").await), "250");
            assert_eq!(code(&client.command("BDAT 10 LAST").await), "500");
            // A parameter of an extension the server did not offer.
            let mail = client.command("MAIL FROM:<a@example.org> REQUIRETLS").await;
            assert_eq!(code(&mail), "555", "no REQUIRETLS before TLS: {mail}");
            // A line past the limit: the server hangs up rather than waits.
            client.write(&[b'A'; 5000]).await;
            assert!(client.closed().await, "overlong line");
        });
        let violations = server.take_violations();
        assert!(
            problems(&violations).contains("REQUIRETLS without REQUIRETLS"),
            "{violations:?}"
        );
        assert!(
            problems(&violations).contains("line longer than"),
            "{violations:?}"
        );
    }

    #[test]
    fn a_server_left_with_violations_fails_the_test() {
        let server = TestServer::start(Behaviour::default(), pki());
        block_on(async {
            let mut client = Client::greeted(&server).await;
            client.write(b"NOOP\nQUIT\r\n").await;
            client.reply().await;
            client.reply().await;
        });
        server.wait_idle(WAIT);
        assert!(problems(&server.violations()).contains("bare LF"));
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(server)));
        let message = dropped.expect_err("drop must fail the test");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("broke the SMTP protocol"), "{message}");
    }

    #[test]
    fn the_runner_feeds_stdin_and_isolates_home_and_config() {
        let mut tlsend = Tlsend::new();
        tlsend
            .config("bogus = [\n")
            .args(["-f", "alice@example.org", "bob@example.net"])
            .stdin("Subject: runner\n\nbody\n");
        let output = tlsend.run();
        assert_eq!(output.code, Some(78), "EX_CONFIG: {}", output.stderr);
        let config = tlsend.home().join(".config/tlsend/config.toml");
        assert!(
            output.stderr.contains(&format!("{}:1:", config.display())),
            "XDG_CONFIG_HOME points into the temporary HOME: {}",
            output.stderr
        );
        let saved = tlsend
            .dead_letter()
            .expect("dead.letter in the temporary HOME");
        assert!(saved.contains("Subject: runner"), "{saved}");
    }

    #[test]
    fn the_runner_kills_a_binary_that_outlives_its_limit() {
        let server = TestServer::start(
            Behaviour {
                silent_at: Some(Step::Greeting),
                ..Behaviour::default()
            },
            pki(),
        );
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .args([
                "--timeout",
                "60",
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin("Subject: x\n\nhi\n")
            .time_limit(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tlsend.run()));
        assert!(killed.is_err(), "run() returned for a hung binary");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }
}

// covers: SUB6, UX5: a password source that fails is a configuration
// error naming it (78), never an internal error, and nothing is sent.
#[test]
fn sub6_a_password_source_that_fails_is_a_configuration_error() {
    for (flag, value, said) in [
        (
            "--password-command",
            "exit 3",
            "password_command (running \"exit\") failed",
        ),
        (
            "--password-file",
            "/nonexistent/password",
            "/nonexistent/password",
        ),
        (
            "--password-env",
            "TLSEND_TEST_UNSET_PASSWORD",
            "TLSEND_TEST_UNSET_PASSWORD",
        ),
    ] {
        let server = server_for_test();
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
            .args(["--user", "alice", flag, value])
            .args(["-f", "alice@example.org", "bob@example.net"])
            .stdin(MESSAGE);
        let output = tlsend.run();
        assert_exit(&output, 78, &[said]);
        assert!(
            !output.stderr.contains("internal error"),
            "{}",
            output.stderr
        );
        assert_eq!(server.connections(), 0, "{flag}");
    }
}
