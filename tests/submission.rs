//! Submission through the real binary against the recording test server.
//! Every test checks three things: the exit code, the status shown on
//! stderr, and what reached the server. In require mode, a MAIL FROM must
//! never arrive unless every check passed.

use std::time::{Duration, Instant};

use crate::support::{
    Advertise, AuthConfig, Behaviour, CertKind, Output, Replies, StartTls, Step, TestServer,
    Tlsend, pki,
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

#[track_caller]
fn assert_exit(output: &Output, code: i32, needles: &[&str]) {
    assert_eq!(output.code, Some(code), "stderr: {}", output.stderr);
    for needle in needles {
        assert!(
            output.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            output.stderr
        );
    }
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

// covers: FAIL2
#[test]
fn fail2_one_refused_recipient_does_not_stop_the_others() {
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
    assert_exit(&output, 67, &["carol@example.net: 5.1.1"]);
    assert!(
        !output.stderr.contains("bob@example.net:"),
        "{}",
        output.stderr
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to.len(), 2);
    assert_saved(&tlsend);
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
            output.stderr.contains("4.4.1") && output.stderr.contains("no answer within 1 s"),
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
        ("Debian cron", &["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"], "RCPT TO:<root@"),
        ("PHP", &["-t", "-i"], "RCPT TO:<bob@example.net>"),
        ("mutt", &["-oem", "-oi", "--", "bob@example.net"], "RCPT TO:<bob@example.net>"),
    ];
    for (caller, args, rcpt) in cases {
        let server = server(Behaviour::default());
        let mut tlsend = Tlsend::to_server(&server, pki());
        tlsend
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
    let mut bs = Tlsend::new();
    bs.as_program("sendmail").arg("-bs");
    assert_exit(&bs.run(), 64, &["-bs"]);
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
    assert_exit(&output, 77, &["5.7.8", "AUTH", "password source"]);
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
        "bob@example.net: sent via localhost:",
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
        &["127.0.0.1:1", "connect", "check host and port"],
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
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["-t", "-i"])
        .stdin("To: bob@example.net\nSubject: from php\n\nhi\n")
        .as_program("sendmail");
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    let mail_from = &server.messages()[0].mail_from;
    assert!(
        mail_from.starts_with("MAIL FROM:<") && mail_from.contains('@'),
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
