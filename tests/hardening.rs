//! The hardened core through the real binary (issue 9): hostile recipient
//! lists, signals and panics after the message was read, partial delivery,
//! header fields that must not leave the machine, and the values that reach
//! dead.letter. Each test checks the exit code, stderr, what reached the
//! server, and what was saved.

use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::{Behaviour, Step, TestServer, Tlsend, assert_exit, pki};

const MESSAGE: &str = "From: Alice <alice@example.org>\n\
To: Bob <bob@example.net>\n\
Subject: test\n\
Date: Sun, 22 Nov 2026 22:18:00 +0100\n\
Message-ID: <test.1@example.org>\n\
\n\
Hello Bob.\n";

/// A run that needs no server: it must stop before connecting.
fn offline() -> Tlsend {
    let mut t = Tlsend::new();
    t.args([
        "-C",
        "/dev/null",
        "--host",
        "localhost",
        "--port",
        "9",
        "--timeout",
        "5",
    ]);
    t.time_limit(Duration::from_secs(30));
    t
}

/// The one entry in dead.letter, which must hold the message.
#[track_caller]
fn saved_entry(tlsend: &Tlsend, body: &str) -> String {
    let saved = tlsend.dead_letter().expect("dead.letter was not written");
    assert!(saved.contains(body), "{saved}");
    let separators = saved.lines().filter(|l| l.starts_with("From ")).count();
    assert_eq!(separators, 1, "exactly one mbox separator:\n{saved}");
    saved
}

/// Waits until the server has seen `verb` from the client.
#[track_caller]
fn wait_for(server: &TestServer, verb: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .commands_so_far()
        .iter()
        .any(|c| c.line.to_ascii_uppercase().starts_with(verb))
    {
        assert!(Instant::now() < deadline, "the client never sent {verb}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// covers: HARD1, FAIL3
#[test]
fn hard1_a_recipient_list_with_a_stray_parenthesis_is_refused_and_saved() {
    let mut t = offline();
    t.args(["-f", "form@example.org", "-t"])
        .stdin("To: Bob :) <bob@example.net>\nSubject: form\n\nHello\n");
    let output = t.run();
    assert_exit(&output, 65, &["To field", "')' closes nothing"]);
    saved_entry(&t, "Hello");

    let mut t = offline();
    t.args(["-f", "form@example.org", "bob@example.net)"])
        .stdin(MESSAGE);
    let output = t.run();
    assert_exit(&output, 64, &["bob@example.net)", "')' closes nothing"]);
    let saved = saved_entry(&t, "Hello Bob.");
    assert!(
        saved.contains("X-Tlsend-Undelivered: bob@example.net) ("),
        "the argument is named as given: {saved}"
    );
}

// covers: HARD1
#[test]
fn hard1_a_huge_list_of_colons_is_answered_at_once() {
    // 480,000 "a:" made the old parser rescan for minutes; folded into
    // lines of 400 so that only the parser can refuse the field.
    let folded = vec!["a:".repeat(400); 1_200].join("\n ");
    let mut t = offline();
    t.args(["-f", "a@example.org", "-t"])
        .stdin(format!("To: {folded}\n\nx\n"));
    let output = t.run();
    assert_exit(&output, 65, &["To field"]);
    assert!(
        output.stderr.len() < 2_000,
        "a bounded error: {}",
        output.stderr
    );
    saved_entry(&t, "\nx\n");
}

/// Whether this process runs with signal `number` ignored.
fn ignored_here(number: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
}

fn silent_at_data() -> TestServer {
    TestServer::start(
        Behaviour {
            silent_at: Some(Step::Data),
            ..Behaviour::default()
        },
        pki(),
    )
}

// covers: FAIL7, FAIL3
#[test]
fn fail7_a_signal_during_the_session_stops_it_and_saves_the_message() {
    for (signal, number, name) in [
        (Signal::TERM, 15, "SIGTERM"),
        (Signal::INT, 2, "SIGINT"),
        (Signal::HUP, 1, "SIGHUP"),
    ] {
        // tlsend inherits a signal this test runs with ignored (`nohup`, or
        // a background job of a non-interactive shell, which ignores
        // SIGINT), and rightly leaves it ignored (the next test).
        if ignored_here(number) {
            eprintln!("NOTICE: {name} is ignored in this test process; its case is skipped");
            continue;
        }
        let server = silent_at_data();
        let mut t = Tlsend::to_server(&server, pki());
        t.args([
            "-f",
            "alice@example.org",
            "--timeout",
            "60",
            "bob@example.net",
        ])
        .stdin(MESSAGE)
        .time_limit(Duration::from_secs(30));
        let running = t.start();
        wait_for(&server, "DATA");
        running.signal(signal);
        let output = running.finish();
        assert_exit(
            &output,
            75,
            &[
                &format!("{name} received"),
                "bob@example.net: not delivered",
                "the message was saved to",
            ],
        );
        let saved = saved_entry(&t, "Hello Bob.");
        assert!(
            saved.contains(&format!(
                "X-Tlsend-Undelivered: bob@example.net (4.3.0: tlsend was stopped by {name}"
            )),
            "{name}: {saved}"
        );
        assert!(
            server.messages().is_empty(),
            "{name}: nothing was delivered"
        );
    }
}

// covers: FAIL7
#[test]
fn fail7_a_signal_ignored_at_start_stays_ignored() {
    // As under nohup: SIGHUP must not stop the delivery; the server's
    // silence does, after the command timeout.
    let server = silent_at_data();
    let mut t = Tlsend::to_server(&server, pki());
    t.args([
        "-f",
        "alice@example.org",
        "--timeout",
        "3",
        "bob@example.net",
    ])
    .stdin(MESSAGE);
    let running = t.start_after("trap '' HUP");
    wait_for(&server, "DATA");
    running.signal(Signal::HUP);
    let output = running.finish();
    assert_exit(&output, 75, &["no complete reply within 3 s"]);
    assert!(!output.stderr.contains("SIGHUP"), "{}", output.stderr);
    saved_entry(&t, "Hello Bob.");
}

// covers: FAIL7, FAIL3
#[test]
fn fail7_a_panic_after_reading_saves_the_message_and_exits_70() {
    let server = TestServer::start(Behaviour::default(), pki());
    let mut t = Tlsend::to_server(&server, pki());
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .env("TLSEND_FAULT", "before-delivery")
        .stdin(MESSAGE);
    let output = t.run();
    assert_exit(
        &output,
        70,
        &["tlsend: internal error (a bug in tlsend", "before-delivery"],
    );
    assert!(
        !output.stderr.contains("RUST_BACKTRACE"),
        "{}",
        output.stderr
    );
    let saved = saved_entry(&t, "Hello Bob.");
    assert!(
        saved.contains("X-Tlsend-Undelivered: bob@example.net ("),
        "{saved}"
    );
    assert!(!server.saw("MAIL"), "nothing was sent");
}

// covers: IN3
#[test]
fn in3_resent_bcc_never_leaves_the_machine() {
    let message = "From: Alice <alice@example.org>\n\
To: old@example.net\n\
Resent-From: Alice <alice@example.org>\n\
Resent-To: new@example.net\n\
Resent-Bcc: hidden@example.net\n\
Bcc: also-hidden@example.net\n\
Subject: resent\n\
\n\
Hello again.\n";
    let server = TestServer::start(Behaviour::default(), pki());
    let mut t = Tlsend::to_server(&server, pki());
    t.args(["-f", "alice@example.org", "-t"]).stdin(message);
    let output = t.run();
    assert_exit(&output, 0, &[]);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let rcpts: Vec<&str> = messages[0].rcpt_to.iter().map(String::as_str).collect();
    assert_eq!(
        rcpts,
        ["RCPT TO:<new@example.net>", "RCPT TO:<hidden@example.net>"],
        "a resent message goes to its Resent-* recipients"
    );
    let text = messages[0].text().to_ascii_lowercase();
    assert!(!text.contains("resent-bcc"), "{text}");
    assert!(!text.contains("hidden@example.net"), "{text}");
    assert!(!text.contains("\r\nbcc:"), "{text}");
    assert!(text.contains("resent-to: new@example.net"), "{text}");
}

// covers: IN1
#[test]
fn size_counts_the_octets_sent_not_the_octets_stored() {
    // LF-only lines gain a CR each on the wire, an unterminated last line
    // gains CRLF; dot-stuffing is not counted (RFC 1870).
    let message = "From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: size\n\
Date: Sun, 22 Nov 2026 22:18:00 +0100\nMessage-ID: <size.1@example.org>\n\n\
line one\n.leading dot\n\nno newline at the end";
    let server = TestServer::start(Behaviour::default(), pki());
    let mut t = Tlsend::to_server(&server, pki());
    t.args(["-f", "alice@example.org", "-i", "bob@example.net"])
        .stdin(message);
    let output = t.run();
    assert_exit(&output, 0, &[]);
    let messages = server.messages();
    let received = &messages[0];
    let size: usize = received
        .mail_from
        .split_whitespace()
        .find_map(|p| p.strip_prefix("SIZE="))
        .expect("MAIL FROM carries SIZE")
        .parse()
        .expect("a number");
    assert_eq!(size, received.data.len(), "{}", received.mail_from);
}

// covers: FAIL3
#[test]
fn fail3_a_line_break_in_an_unusable_sender_cannot_forge_an_mbox_entry() {
    let mut t = offline();
    t.args([
        "-f",
        "alice@example.org\nFrom forged@evil.example Mon Jan  1 00:00:00 2026",
        "bob@example.net",
    ])
    .stdin(MESSAGE);
    let output = t.run();
    assert_exit(&output, 64, &["-f"]);
    let saved = saved_entry(&t, "Hello Bob.");
    let first = saved.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("From alice@example.org_From_forged@evil.example"),
        "{first}"
    );
}

// covers: IN4
#[test]
fn in4_a_full_name_too_long_for_a_header_line_is_a_usage_error() {
    let no_from = "To: bob@example.net\nSubject: x\n\nbody\n";
    let long = "N".repeat(1200);

    let mut t = offline();
    t.args(["-f", "alice@example.org", "-F", &long, "bob@example.net"])
        .stdin(no_from);
    let output = t.run();
    assert_exit(&output, 64, &["-F: cannot build the From field"]);
    saved_entry(&t, "body");

    let mut t = offline();
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .env("NAME", &long)
        .stdin(no_from);
    let output = t.run();
    assert_exit(
        &output,
        64,
        &["the NAME environment variable: cannot build the From field"],
    );
    assert!(!output.stderr.contains("-F"), "{}", output.stderr);
    saved_entry(&t, "body");
}

/// tlsend with the system roots pointed at an empty store.
fn with_no_roots(t: &mut Tlsend) {
    let empty_file = t.home().join("empty.pem");
    let empty_dir = t.home().join("certs");
    std::fs::write(&empty_file, "").expect("write empty.pem");
    std::fs::create_dir_all(&empty_dir).expect("create certs");
    t.env("SSL_CERT_FILE", &empty_file)
        .env("SSL_CERT_DIR", &empty_dir);
}

// covers: SUB2
#[test]
fn trust_roots_are_loaded_only_for_a_handshake() {
    // No server: the connection fails before any handshake, so the broken
    // trust store is never read and the failure is the connection's (75).
    let mut t = offline();
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    with_no_roots(&mut t);
    let output = t.run();
    assert_exit(&output, 75, &["Connection refused"]);
    assert!(!output.stderr.contains("trusted CA"), "{}", output.stderr);

    // A server: the handshake needs the roots, finds none, and says so (78).
    let server = TestServer::start(Behaviour::default(), pki());
    let mut t = Tlsend::to_server(&server, pki());
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    with_no_roots(&mut t);
    let output = t.run();
    assert_exit(&output, 78, &["no usable trusted CA certificates"]);
    assert!(!server.saw("MAIL"), "nothing was sent");
    saved_entry(&t, "Hello Bob.");
}

/// A plain-text SMTP server that does one thing at a time: it reads a
/// command, then writes its reply, blocking until the reply is written. It
/// stops reading while its replies back up, as simple servers do. Returns
/// its port and, when the session ends, the number of RCPTs it accepted.
fn one_at_a_time_server() -> (u16, std::sync::mpsc::Receiver<usize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = stream.set_nodelay(true);
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut rcpts = 0;
        let mut reply = |text: &str| writer.write_all(text.as_bytes()).is_ok();
        if !reply("220 one-at-a-time ESMTP\r\n") {
            return;
        }
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let ok = match verb.as_str() {
                "EHLO" => reply("250-one-at-a-time\r\n250 PIPELINING\r\n"),
                "RCPT" => {
                    rcpts += 1;
                    reply("250 2.1.5 recipient ok, and some words to make the reply longer\r\n")
                }
                "DATA" => {
                    let sent = reply("354 go ahead\r\n");
                    while sent && reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if line.ends_with("\r\n.\r\n") || line == ".\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    reply("250 2.0.0 queued\r\n")
                }
                "QUIT" => {
                    let _ = reply("221 bye\r\n");
                    break;
                }
                _ => reply("250 2.0.0 ok\r\n"),
            };
            if !ok {
                break;
            }
        }
        let _ = done.send(rcpts);
    });
    (port, result)
}

// covers: SUB7, FAIL8
#[test]
fn sub7_a_long_recipient_list_is_pipelined_in_groups() {
    // More recipients than one pipelined group holds (1000 commands): the
    // groups follow one another and every reply is matched to its command,
    // with a server that reads one command at a time. (That the groups keep
    // both sides from blocking is shown in smtp/session/tests.rs over a
    // pipe whose buffers do not grow.)
    let recipients: Vec<String> = (0..2_500).map(|i| format!("r{i}@example.net")).collect();
    let (port, accepted) = one_at_a_time_server();
    let mut t = Tlsend::new();
    t.args(["-C", "/dev/null", "--host", "127.0.0.1", "--tls", "none"])
        .args(["--port", &port.to_string(), "--timeout", "10"])
        .args(["-f", "alice@example.org"])
        .args(&recipients)
        .stdin(MESSAGE)
        .time_limit(Duration::from_secs(120));
    let output = t.run();
    assert_exit(&output, 0, &[]);
    let accepted = accepted
        .recv_timeout(Duration::from_secs(30))
        .expect("the server finished");
    assert_eq!(accepted, recipients.len());
}

/// tlsend configured for `server` through a config file (for the keys that
/// have no flag), trusting the test CA.
fn configured(server: &TestServer, extra: &str) -> Tlsend {
    let mut t = Tlsend::new();
    t.config(&format!(
        "[account.test]\nhost = \"localhost\"\nport = {}\ntimeout = 10\n{extra}\n",
        server.port
    ))
    .env("SSL_CERT_FILE", pki().ca_file())
    .args(["-f", "alice@example.org", "bob@example.net"])
    .stdin(MESSAGE)
    .time_limit(Duration::from_secs(60));
    t
}

/// Waits until the server holds the whole message.
#[track_caller]
fn wait_for_message(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.messages_so_far().is_empty() {
        assert!(Instant::now() < deadline, "the message never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// covers: FAIL7, FAIL8
#[test]
fn fail7_a_signal_after_the_final_dot_waits_for_the_servers_verdict() {
    // The server holds the whole message and answers 2 s later: stopping
    // then would report as undelivered a message the server took.
    let server = TestServer::start(
        Behaviour {
            end_of_data_delay: Some(Duration::from_secs(2)),
            ..Behaviour::default()
        },
        pki(),
    );
    let t = configured(&server, "");
    let running = t.start();
    wait_for_message(&server);
    running.signal(Signal::TERM);
    let output = running.finish();
    assert_exit(
        &output,
        0,
        &["SIGTERM received while the server was taking the message: waiting for its verdict"],
    );
    assert!(
        t.dead_letter().is_none(),
        "a delivered message is not saved"
    );
    assert_eq!(server.messages().len(), 1);
}

// covers: FAIL7, FAIL8
#[test]
fn fail7_a_second_signal_stops_the_wait_and_says_the_outcome_is_unknown() {
    let server = TestServer::start(
        Behaviour {
            silent_at: Some(Step::EndOfData),
            ..Behaviour::default()
        },
        pki(),
    );
    let t = configured(&server, "data_timeout = 30");
    let running = t.start();
    wait_for_message(&server);
    running.signal(Signal::TERM);
    std::thread::sleep(Duration::from_millis(500));
    // A second SIGINT, or SIGTERM again where this test runs with SIGINT
    // ignored (and so does tlsend, rightly).
    let (second, name) = if ignored_here(2) {
        (Signal::TERM, "SIGTERM")
    } else {
        (Signal::INT, "SIGINT")
    };
    running.signal(second);
    let output = running.finish();
    assert_exit(
        &output,
        75,
        &[
            "waiting for its verdict",
            &format!("{name} received: the connection was closed before"),
        ],
    );
    let saved = saved_entry(&t, "Hello Bob.");
    assert!(saved.contains("the server may have taken it"), "{saved}");
}

// covers: FAIL7
#[test]
fn fail7_a_signal_stops_a_password_command_that_hangs() {
    let server = TestServer::start(Behaviour::default(), pki());
    // The command and what it started end with the run: the pipes they
    // share with tlsend close at once.
    let t = configured(
        &server,
        "user = \"alice\"\npassword_command = \"sleep 30; echo secret\"",
    );
    let running = t.start();
    std::thread::sleep(Duration::from_millis(500));
    running.signal(Signal::TERM);
    let started = Instant::now();
    let output = running.finish();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the command"
    );
    assert_exit(&output, 75, &["SIGTERM received: nothing was sent"]);
    saved_entry(&t, "Hello Bob.");
    assert!(!server.saw("MAIL"));
}

// covers: FAIL8, FAIL3
#[test]
fn fail8_only_this_runs_fields_name_undelivered_recipients() {
    // A resubmitted dead letter, or a form, brings its own fields: they are
    // neither sent nor kept as if they named undelivered recipients.
    let message = "X-Tlsend-Undelivered: ceo@example.net (4.4.2 stale)\n\
From: Alice <alice@example.org>\nSubject: again\n\nHello Bob.\n";
    let server = TestServer::start(
        Behaviour {
            replies: crate::support::Replies {
                rcpt_for: vec![("carol@example.net".into(), "550 5.1.1 unknown".into())],
                ..Default::default()
            },
            ..Behaviour::default()
        },
        pki(),
    );
    let mut t = Tlsend::to_server(&server, pki());
    t.args([
        "-f",
        "alice@example.org",
        "bob@example.net",
        "carol@example.net",
    ])
    .stdin(message);
    let output = t.run();
    assert_exit(&output, 67, &[]);
    let sent = server.messages()[0].text();
    assert!(!sent.contains("X-Tlsend"), "{sent}");
    let saved = saved_entry(&t, "Hello Bob.");
    let named: Vec<&str> = saved
        .lines()
        .filter(|l| l.starts_with("X-Tlsend-Undelivered"))
        .collect();
    assert_eq!(named.len(), 1, "{saved}");
    assert!(named[0].contains("carol@example.net"), "{saved}");

    // Output without a header: the fields end before its first line.
    let mut t = offline();
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .stdin("  indented cron output\n");
    let output = t.run();
    assert_exit(&output, 75, &[]);
    let saved = saved_entry(&t, "indented cron output");
    assert!(
        saved.contains(")\n\n  indented cron output\n"),
        "an empty line separates the fields: {saved}"
    );
}

// covers: FAIL3, IN11
#[test]
fn fail3_a_missing_temporary_directory_does_not_lose_a_large_message() {
    let body = "a line of the body that repeats\n".repeat(100_000);
    let server = TestServer::start(Behaviour::default(), pki());
    let mut t = Tlsend::to_server(&server, pki());
    t.args(["-f", "alice@example.org", "bob@example.net"])
        .env("TMPDIR", "/nonexistent")
        .stdin(format!("Subject: big\n\n{body}"));
    let output = t.run();
    assert_exit(&output, 0, &[]);
    assert_eq!(server.messages().len(), 1);
}
