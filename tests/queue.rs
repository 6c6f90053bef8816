//! The queue through the real binary (FAIL3-FAIL5, FAIL8, IN5 `-q`, `-bp`,
//! `-odq`, `-odb`): messages that meet a temporary failure are queued,
//! delivered by a queue run exactly once, and their senders told when they
//! fail for good. Each test has its own queue directory and servers that
//! record what reached them.

use std::path::{Path, PathBuf};

use crate::support::{Advertise, Behaviour, Replies, TestServer, Tlsend, assert_exit, pki};

fn message(n: usize) -> String {
    format!(
        "From: Alice <alice@example.org>\n\
         To: Bob <bob@example.net>\n\
         Subject: queued {n}\n\
         Message-ID: <queued.{n}@example.org>\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\n\
         \n\
         Body of message {n}.\n"
    )
}

/// A system queue (its maildrop exists) in a private directory, and
/// configurations that point at it.
struct Spool {
    dir: tempfile::TempDir,
}

impl Spool {
    fn new() -> Spool {
        let spool = Spool {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(spool.root().join("maildrop")).unwrap();
        spool
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A configuration file that submits to `server` (port) with `extra`
    /// top-level lines.
    fn config(&self, name: &str, server: &TestServer, extra: &str) -> PathBuf {
        let path = self.root().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "queue_dir = \"{}\"\n{extra}\n\
                 [account.default]\nhost = \"localhost\"\nport = {}\ntimeout = 5\n",
                self.root().display(),
                server.port
            ),
        )
        .unwrap();
        path
    }

    fn tlsend(&self, config: &Path) -> Tlsend {
        let mut t = Tlsend::new();
        t.arg("-C").arg(config);
        t.env("SSL_CERT_FILE", pki().ca_file());
        t
    }

    /// `tlsend -bp --json`, parsed.
    fn listing(&self, config: &Path) -> serde_json::Value {
        let output = self.tlsend(config).args(["-bp", "--json"]).run();
        assert_eq!(output.code, Some(0), "{}", output.stderr);
        serde_json::from_str(&output.stdout).unwrap()
    }

    fn entries(&self, config: &Path) -> Vec<serde_json::Value> {
        self.listing(config)["entries"].as_array().unwrap().clone()
    }
}

fn failing(reply: &str) -> TestServer {
    TestServer::start(
        Behaviour {
            replies: Replies {
                mail: Some(reply.into()),
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    )
}

/// A server that answers RCPT for `address` with `reply`, and takes the rest.
fn refusing(address: &str, reply: &str) -> TestServer {
    TestServer::start(
        Behaviour {
            replies: Replies {
                rcpt_for: vec![(address.into(), reply.into())],
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    )
}

fn good() -> TestServer {
    TestServer::start(Behaviour::default(), pki())
}

fn subjects(server: &TestServer) -> Vec<String> {
    let mut found: Vec<String> = server
        .messages()
        .iter()
        .filter_map(|m| {
            m.text()
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect();
    found.sort();
    found
}

// covers: FAIL3, FAIL2
#[test]
fn fail3_a_temporary_failure_is_queued_and_a_queue_run_delivers_it() {
    let spool = Spool::new();
    let down = failing("451 4.3.0 try again later");
    let up = good();
    let sending = spool.config("sending", &down, "");
    let running = spool.config("running", &up, "");
    let output = spool
        .tlsend(&sending)
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &["queued as ", "bob@example.net", "451"]);
    let entries = spool.entries(&sending);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let recipient = &entries[0]["recipients"][0];
    assert_eq!(recipient["state"], "pending");
    assert_eq!(recipient["attempts"], 1);
    assert_eq!(recipient["status"], "4.3.0");
    assert!(up.messages_so_far().is_empty());

    let run = spool.tlsend(&running).arg("-q").run();
    assert_exit(&run, 0, &[]);
    assert_eq!(subjects(&up), ["queued 1"]);
    let received = &up.messages()[0];
    assert!(
        received
            .mail_from
            .starts_with("MAIL FROM:<alice@example.org>")
    );
    assert_eq!(received.rcpt_to, ["RCPT TO:<bob@example.net>"]);
    assert!(received.text().contains("Body of message 1."));
    // Delivered: gone from the queue, and a second run sends nothing.
    let output = spool.tlsend(&running).arg("-bp").run();
    assert_eq!(output.stdout, "Mail queue is empty\n");
    spool.tlsend(&running).arg("-q").run();
    assert_eq!(up.messages().len(), 1);
}

// covers: FAIL3
#[test]
fn fail3_without_a_queue_in_service_a_failure_still_goes_to_dead_letter() {
    let down = failing("451 4.3.0 try again later");
    let spool = Spool::new();
    std::fs::remove_dir(spool.root().join("maildrop")).unwrap();
    let config = spool.config("sending", &down, "");
    let mut tlsend = spool.tlsend(&config);
    tlsend
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(message(1));
    let output = tlsend.run();
    assert_exit(&output, 75, &["dead.letter"]);
    assert!(tlsend.dead_letter().unwrap().contains("Body of message 1."));
    assert!(!spool.root().join("queue").exists());
    // queue = false turns an installed queue off, too.
    std::fs::create_dir(spool.root().join("maildrop")).unwrap();
    let off = spool.config("off", &down, "queue = false");
    let output = spool
        .tlsend(&off)
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(message(2))
        .run();
    assert_exit(&output, 75, &["dead.letter"]);
    assert_eq!(
        std::fs::read_dir(spool.root().join("maildrop"))
            .unwrap()
            .count(),
        0
    );
}

// covers: FAIL8, FAIL3
#[test]
fn fail8_only_the_recipients_that_did_not_get_the_message_are_queued_and_retried() {
    let spool = Spool::new();
    let partly = refusing("carol@example.com", "450 4.2.1 mailbox busy");
    let up = good();
    let sending = spool.config("sending", &partly, "");
    let running = spool.config("running", &up, "");
    let output = spool
        .tlsend(&sending)
        .args([
            "-f",
            "alice@example.org",
            "bob@example.net",
            "carol@example.com",
        ])
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &["queued as", "carol@example.com"]);
    assert_eq!(
        partly.messages()[0].rcpt_accepted,
        ["RCPT TO:<bob@example.net>"]
    );
    let entries = spool.entries(&sending);
    let recipients = entries[0]["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "only carol is queued: {recipients:?}");
    assert_eq!(recipients[0]["address"], "carol@example.com");
    spool.tlsend(&running).arg("-q").run();
    let received = up.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["RCPT TO:<carol@example.com>"]);
}

// covers: FAIL3, IN5
#[test]
fn odq_queues_without_trying_and_a_queue_run_uses_one_connection_for_all() {
    let spool = Spool::new();
    let up = good();
    let config = spool.config("config", &up, "");
    for n in 1..=3 {
        queue_one(&spool, &config, n);
    }
    assert_eq!(up.connections(), 0);
    let listing = spool.tlsend(&config).arg("-bp").run();
    assert_eq!(
        listing
            .stdout
            .lines()
            .filter(|l| !l.starts_with(' '))
            .count(),
        4
    );
    let last = listing.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("-- 3 entries, 3 recipients pending, "),
        "{last}"
    );
    let run = spool.tlsend(&config).arg("-q").run();
    assert_exit(&run, 0, &[]);
    assert_eq!(subjects(&up), ["queued 1", "queued 2", "queued 3"]);
    assert_eq!(up.connections(), 1, "one connection for the whole run");
    let rsets = up.commands().iter().filter(|c| c.line == "RSET").count();
    assert_eq!(rsets, 2, "RSET between the three transactions");
}

// covers: FAIL3, SUB6
#[test]
fn queue_always_hands_every_message_to_the_runner_which_alone_reads_the_password() {
    let spool = Spool::new();
    let up = good();
    // The callers' configuration names a password file they cannot read
    // (here: none at all): with queue = "always" they never need it.
    let callers = spool.root().join("callers.toml");
    std::fs::write(
        &callers,
        format!(
            "queue_dir = \"{}\"\nqueue = \"always\"\n\
             [account.default]\nhost = \"localhost\"\nport = {}\nuser = \"relay\"\n\
             password_file = \"{}\"\n",
            spool.root().display(),
            up.port,
            spool.root().join("no-such-password").display()
        ),
    )
    .unwrap();
    // Vixie cron's flags, -odi included: the configuration decides.
    let output = spool
        .tlsend(&callers)
        .args([
            "-FCronDaemon",
            "-odi",
            "-oem",
            "-oi",
            "-f",
            "cron@example.org",
        ])
        .arg("bob@example.net")
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &[]);
    assert_eq!(up.connections(), 0, "a caller connected");
    assert_eq!(spool.entries(&callers).len(), 1);
    // The runner's own configuration has what it takes.
    let runner = spool.config("runner", &up, "");
    assert_exit(&spool.tlsend(&runner).arg("-q").run(), 0, &[]);
    assert_eq!(subjects(&up), ["queued 1"]);

    // Without the system queue it is an ordinary send (nothing would run
    // a queue): the password is needed, and its absence said.
    std::fs::remove_dir(spool.root().join("maildrop")).unwrap();
    let output = spool
        .tlsend(&callers)
        .args(["-f", "cron@example.org", "bob@example.net"])
        .stdin(message(2))
        .run();
    assert_exit(&output, 78, &["no-such-password"]);
}

#[test]
fn queue_is_true_false_or_always() {
    let spool = Spool::new();
    let up = good();
    let config = spool.config("bad", &up, "queue = \"sometimes\"");
    let output = spool
        .tlsend(&config)
        .args(["-f", "a@example.org", "b@example.net"])
        .stdin(message(1))
        .run();
    assert_exit(&output, 78, &["bad.toml:2:", "true, false or \"always\""]);
}

/// A server that keeps bob waiting (450) and takes everything else.
fn bob_busy(requiretls: Advertise) -> TestServer {
    TestServer::start(
        Behaviour {
            requiretls,
            replies: Replies {
                rcpt_for: vec![("bob@example.net".into(), "450 4.2.1 mailbox busy".into())],
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    )
}

/// A received notification, taken apart: its MAIL command, the report's
/// content type, and each part's content type and body.
struct Report {
    mail_from: String,
    content_type: String,
    parts: Vec<(String, String)>,
}

fn report(received: &crate::support::smtp::ReceivedMessage) -> Report {
    use mail_parser::{MessageParser, MimeHeaders};
    let message = MessageParser::default()
        .parse(&received.data)
        .expect("a message");
    let kind = |ct: Option<&mail_parser::ContentType<'_>>| {
        ct.map(|c| {
            let mut text = format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""));
            if let Some(report) = c.attribute("report-type") {
                text.push_str(&format!("; report-type={report}"));
            }
            text
        })
        .unwrap_or_default()
    };
    let root = message.root_part();
    let parts = root
        .sub_parts()
        .expect("a multipart report")
        .iter()
        .map(|&id| {
            let part = message.part(id).unwrap();
            let body = &message.raw_message()
                [part.raw_body_offset() as usize..part.raw_end_offset() as usize];
            (
                kind(part.content_type()),
                String::from_utf8_lossy(body).into_owned(),
            )
        })
        .collect();
    Report {
        mail_from: received.mail_from.clone(),
        content_type: kind(root.content_type()),
        parts,
    }
}

/// Queues message `n` from alice to bob with -odq, untried (and quietly:
/// a system queue has a runner).
fn queue_one(spool: &Spool, config: &Path, n: usize) {
    let output = spool
        .tlsend(config)
        .args(["-odq", "-f", "alice@example.org", "bob@example.net"])
        .stdin(message(n))
        .run();
    assert_exit(&output, 0, &[]);
    assert!(output.stderr.is_empty(), "-odq is quiet: {}", output.stderr);
}

/// Sends message `n` to bob (and `more`) through `server`; bob is queued.
fn queue_for_bob(spool: &Spool, config: &Path, n: usize, flags: &[&str]) {
    let output = spool
        .tlsend(config)
        .args(["-f", "alice@example.org"])
        .args(flags)
        .arg("bob@example.net")
        .stdin(message(n))
        .run();
    assert_exit(&output, 0, &["queued as"]);
}

// covers: FAIL4, FAIL3
#[test]
fn fail4_an_expired_entry_is_returned_to_its_sender_in_a_delivery_status_notification() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "queue_lifetime = \"2d\"");
    queue_for_bob(&spool, &config, 1, &[]);
    // One day on: retried, still pending, no notification.
    let run = spool
        .tlsend(&config)
        .arg("-q")
        .env("TLSEND_CLOCK_OFFSET", "86400")
        .run();
    assert_exit(&run, 0, &[]);
    assert_eq!(spool.entries(&config)[0]["recipients"][0]["attempts"], 2);
    // Three days on: expired, and alice hears of it.
    let run = spool
        .tlsend(&config)
        .arg("-q")
        .env("TLSEND_CLOCK_OFFSET", "259200")
        .run();
    assert_exit(&run, 0, &["expired after 2 days"]);
    assert_eq!(
        spool.tlsend(&config).arg("-bp").run().stdout,
        "Mail queue is empty\n"
    );
    let messages = server.messages();
    let dsn = messages
        .iter()
        .find(|m| m.mail_from.starts_with("MAIL FROM:<>"))
        .expect("a notification reached the server");
    assert_eq!(dsn.rcpt_to, ["RCPT TO:<alice@example.org>"]);
    let report = report(dsn);
    assert_eq!(
        report.content_type,
        "multipart/report; report-type=delivery-status"
    );
    assert_eq!(report.parts.len(), 3);
    assert_eq!(report.parts[1].0, "message/delivery-status");
    let status = &report.parts[1].1;
    assert!(
        status.contains("Final-Recipient: rfc822; bob@example.net"),
        "{status}"
    );
    assert!(status.contains("Action: failed"), "{status}");
    assert!(status.contains("Status: 5.2.1"), "{status}");
    // A default-mode message comes back whole (RFC 3461 default).
    assert_eq!(report.parts[2].0, "message/rfc822");
    assert!(report.parts[2].1.contains("Body of message 1."));
    assert!(!report.mail_from.contains("REQUIRETLS"));
}

// covers: FAIL4, FAIL5
#[test]
fn fail4_a_require_mode_notification_has_headers_only_an_empty_sender_and_requiretls() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "queue_lifetime = \"1d\"");
    queue_for_bob(&spool, &config, 1, &["--require-tls", "-R", "full"]);
    let run = spool
        .tlsend(&config)
        .arg("-q")
        .env("TLSEND_CLOCK_OFFSET", "90000")
        .run();
    assert_exit(&run, 0, &["expired"]);
    let messages = server.messages();
    let dsn = messages
        .iter()
        .find(|m| m.mail_from.starts_with("MAIL FROM:<>"))
        .expect("a notification reached the server");
    assert!(dsn.mail_from.contains("REQUIRETLS"), "{}", dsn.mail_from);
    assert!(dsn.tls);
    let report = report(dsn);
    assert_eq!(report.parts[2].0, "text/rfc822-headers");
    assert!(report.parts[2].1.contains("Subject: queued 1"));
    assert!(!report.parts[2].1.contains("Body of message 1."));
}

// covers: FAIL4, FAIL1
#[test]
fn fail4_a_server_without_requiretls_fails_a_queued_require_mode_message_with_5_7_30() {
    let spool = Spool::new();
    let first = bob_busy(Advertise::AfterTls);
    let without = TestServer::start(
        Behaviour {
            requiretls: Advertise::Never,
            ..Behaviour::default()
        },
        pki(),
    );
    let sending = spool.config("sending", &first, "");
    let running = spool.config("running", &without, "");
    queue_for_bob(&spool, &sending, 1, &["--require-tls"]);
    let run = spool.tlsend(&running).arg("-q").run();
    assert_exit(&run, 0, &[]);
    let messages = without.messages();
    // The message itself never reached the server: only the notification,
    // sent without REQUIRETLS (RFC 8689 section 5) over verified TLS.
    assert_eq!(messages.len(), 1, "{messages:?}");
    let dsn = &messages[0];
    assert!(dsn.mail_from.starts_with("MAIL FROM:<>"));
    assert!(!dsn.mail_from.contains("REQUIRETLS"));
    assert!(dsn.tls);
    let report = report(dsn);
    let status = &report.parts[1].1;
    assert!(status.contains("Status: 5.7.30"), "{status}");
    assert!(status.contains("Action: failed"), "{status}");
    assert_eq!(report.parts[2].0, "text/rfc822-headers");
    assert_eq!(
        spool.tlsend(&running).arg("-bp").run().stdout,
        "Mail queue is empty\n"
    );
}

// covers: FAIL4
#[test]
fn fail4_a_delay_warning_goes_once_and_the_entry_stays() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "delay_warning = \"4h\"");
    queue_for_bob(&spool, &config, 1, &[]);
    for _ in 0..2 {
        let run = spool
            .tlsend(&config)
            .arg("-q")
            .env("TLSEND_CLOCK_OFFSET", "18000")
            .run();
        assert_exit(&run, 0, &[]);
    }
    let warnings: Vec<_> = server
        .messages()
        .into_iter()
        .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning only");
    let report = report(&warnings[0]);
    let status = &report.parts[1].1;
    assert!(status.contains("Action: delayed"), "{status}");
    assert!(status.contains("Will-Retry-Until:"), "{status}");
    let entries = spool.entries(&config);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["recipients"][0]["state"], "pending");
}

// covers: FAIL4
#[test]
fn fail4_nobody_is_told_when_the_sender_is_empty_or_asked_never() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "queue_lifetime = \"1d\"");
    queue_for_bob(&spool, &config, 1, &["-N", "never"]);
    let output = spool
        .tlsend(&config)
        .args(["-f", "<>", "bob@example.net"])
        .stdin(message(2))
        .run();
    assert_exit(&output, 0, &["queued as"]);
    let run = spool
        .tlsend(&config)
        .arg("-q")
        .env("TLSEND_CLOCK_OFFSET", "90000")
        .run();
    assert_exit(&run, 0, &["expired"]);
    assert!(
        !server
            .messages()
            .iter()
            .any(|m| m.mail_from.starts_with("MAIL FROM:<>")
                && m.rcpt_to.iter().any(|r| r.contains("alice"))),
        "no notification"
    );
    assert_eq!(
        spool.tlsend(&config).arg("-bp").run().stdout,
        "Mail queue is empty\n"
    );
}

fn pending_attempts(spool: &Spool, config: &Path) -> Vec<u64> {
    spool
        .entries(config)
        .iter()
        .flat_map(|e| e["recipients"].as_array().unwrap().clone())
        .map(|r| r["attempts"].as_u64().unwrap())
        .collect()
}

// covers: FAIL3, IN5
#[test]
fn fail3_q_interval_honours_backoff_and_stops_cleanly_on_sigterm() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "");
    queue_for_bob(&spool, &config, 1, &[]);
    // Queued after attempt 1: the next is due in 5 minutes. A runner that
    // honours backoff leaves it alone now…
    let mut runner = spool.tlsend(&config);
    runner.arg("-q1h");
    let running = runner.start();
    std::thread::sleep(std::time::Duration::from_millis(700));
    running.signal(rustix::process::Signal::TERM);
    let output = running.finish();
    assert_exit(&output, 0, &["SIGTERM"]);
    assert_eq!(pending_attempts(&spool, &config), [1]);
    let mails = |server: &TestServer| {
        server
            .commands_so_far()
            .iter()
            .filter(|c| c.line.starts_with("MAIL FROM"))
            .count()
    };
    assert_eq!(mails(&server), 1, "only the first attempt so far");
    // …and takes it once its time has come (here: 6 minutes later).
    let mut runner = spool.tlsend(&config);
    runner.arg("-q1h").env("TLSEND_CLOCK_OFFSET", "360");
    let running = runner.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mails(&server) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal(rustix::process::Signal::TERM);
    assert_exit(&running.finish(), 0, &[]);
    assert_eq!(pending_attempts(&spool, &config), [2]);
    // Attempt 2 failed: the wait doubles to 10 minutes after it.
    let entry = &spool.entries(&config)[0]["recipients"][0];
    let next = entry["next_attempt"].as_str().unwrap().to_string();
    let last = entry["last_attempt"].as_str().unwrap().to_string();
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
    assert_eq!(parse(&next) - parse(&last), 600);
    // A plain -q tries every entry now, whatever its backoff.
    spool.tlsend(&config).arg("-q").run();
    assert_eq!(pending_attempts(&spool, &config), [3]);
}

// covers: FAIL3
#[test]
fn a_queue_run_opens_a_new_connection_when_the_server_limits_messages_per_connection() {
    let spool = Spool::new();
    let server = TestServer::start(
        Behaviour {
            messages_per_connection: Some(2),
            ..Behaviour::default()
        },
        pki(),
    );
    let config = spool.config("config", &server, "");
    for n in 1..=5 {
        queue_one(&spool, &config, n);
    }
    let run = spool.tlsend(&config).arg("-q").run();
    assert_exit(&run, 0, &[]);
    assert_eq!(
        subjects(&server),
        ["queued 1", "queued 2", "queued 3", "queued 4", "queued 5"]
    );
    assert_eq!(server.connections(), 3);
    assert!(spool.entries(&config).is_empty(), "none deferred");
}

// covers: FAIL3
#[test]
fn fail3_two_concurrent_queue_runs_deliver_each_message_once() {
    let spool = Spool::new();
    let server = TestServer::start(
        Behaviour {
            end_of_data_delay: Some(std::time::Duration::from_millis(30)),
            ..Behaviour::default()
        },
        pki(),
    );
    let config = spool.config("config", &server, "");
    for n in 0..12 {
        queue_one(&spool, &config, n);
    }
    let first = spool.tlsend(&config).arg("-q").start();
    let second = spool.tlsend(&config).arg("-q").start();
    assert_exit(&first.finish(), 0, &[]);
    assert_exit(&second.finish(), 0, &[]);
    let mut expected: Vec<String> = (0..12).map(|n| format!("queued {n}")).collect();
    expected.sort();
    assert_eq!(subjects(&server), expected, "each message exactly once");
    assert_eq!(
        spool.tlsend(&config).arg("-bp").run().stdout,
        "Mail queue is empty\n"
    );
}

// covers: FAIL3, IN5
#[test]
fn qi_delivers_one_entry_and_remove_queued_deletes_one() {
    let spool = Spool::new();
    let server = good();
    let config = spool.config("config", &server, "");
    let mut ids: Vec<String> = Vec::new();
    for n in 1..=3 {
        queue_one(&spool, &config, n);
        let entries = spool.entries(&config);
        // Nothing is taken in by a listing: a dropped entry shows as such.
        assert!(entries.iter().all(|e| e["dropped"] == true));
        let new = entries
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .find(|id| !ids.contains(id))
            .unwrap();
        ids.push(new);
    }
    let output = spool.tlsend(&config).arg(format!("-qI{}", ids[1])).run();
    assert_exit(&output, 0, &[]);
    assert_eq!(subjects(&server), ["queued 2"]);
    let output = spool
        .tlsend(&config)
        .args(["--remove-queued", &ids[0]])
        .run();
    assert_exit(&output, 0, &["removed"]);
    let output = spool
        .tlsend(&config)
        .args(["--remove-queued", &ids[0]])
        .run();
    assert_exit(&output, 64, &["no queue entry"]);
    let output = spool
        .tlsend(&config)
        .args(["--remove-queued", "../x"])
        .run();
    assert_exit(&output, 64, &["not a queue id"]);
    let left: Vec<String> = spool
        .entries(&config)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [ids[2].clone()]);
    spool.tlsend(&config).arg("-q").run();
    assert_eq!(subjects(&server), ["queued 2", "queued 3"]);
}

// covers: FAIL3, IN6
#[test]
fn bp_and_mailq_list_the_queue_in_the_documented_format() {
    let spool = Spool::new();
    let server = bob_busy(Advertise::AfterTls);
    let config = spool.config("config", &server, "");
    let mut mailq = spool.tlsend(&config);
    mailq.as_program("mailq");
    let empty = mailq.run();
    assert_eq!(
        (empty.code, empty.stdout.as_str()),
        (Some(0), "Mail queue is empty\n")
    );
    queue_for_bob(&spool, &config, 1, &["--require-tls"]);
    let text = mailq.run().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let head: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(head.len(), 6, "{text}");
    assert_eq!(head[0].len(), 20);
    assert!(head[1].parse::<u64>().unwrap() > 100);
    assert!(head[2].parse::<u64>().unwrap() < 60);
    assert_eq!(&head[3..], ["require", "<alice@example.org>", "dropped"]);
    assert!(
        lines[1].starts_with("    pending <bob@example.net> attempts=1 next=20"),
        "{text}"
    );
    assert!(lines[1].contains(" status=4.2.1 detail: "), "{text}");
    assert!(lines[1].contains("450 4.2.1 mailbox busy"), "{text}");
    assert!(
        lines[2].starts_with("-- 1 entry, 1 recipient pending, "),
        "{text}"
    );
    let json = spool.listing(&config);
    let entry = &json["entries"][0];
    assert_eq!(entry["id"], head[0]);
    assert_eq!(entry["mode"], "require");
    assert_eq!(entry["reason"], "command-line flag --require-tls");
    assert_eq!(entry["recipients"][0]["status"], "4.2.1");
}

// covers: FAIL3
#[test]
fn fail3_queue_true_without_a_system_queue_uses_the_users_own_queue() {
    let spool = Spool::new();
    std::fs::remove_dir(spool.root().join("maildrop")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let down = failing("421 4.3.2 shutting down");
    let up = good();
    let sending = spool.config("sending", &down, "queue = true");
    let running = spool.config("running", &up, "");
    let output = spool
        .tlsend(&sending)
        .env("XDG_STATE_HOME", state.path())
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &["queued as", "tlsend -q"]);
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    let root = state.path().join("tlsend");
    assert_eq!(mode(&root.join("maildrop")), 0o700);
    assert_eq!(mode(&root.join("queue")), 0o700);
    let run = spool
        .tlsend(&running)
        .env("XDG_STATE_HOME", state.path())
        .arg("-q")
        .run();
    assert_exit(&run, 0, &[]);
    assert_eq!(subjects(&up), ["queued 1"]);
    // -odb queues on failure too, with no queue configured.
    let plain = spool.config("plain", &down, "");
    let output = spool
        .tlsend(&plain)
        .env("XDG_STATE_HOME", state.path())
        .args(["-odb", "-f", "alice@example.org", "bob@example.net"])
        .stdin(message(2))
        .run();
    assert_exit(&output, 0, &["queued as"]);
}

/// Runs `tlsend` until it pauses at `point` (a test-only hook between two
/// file-system steps), then kills it with SIGKILL.
fn killed_at(tlsend: &mut Tlsend, point: &str) {
    tlsend.env("TLSEND_PAUSE", point);
    let mut running = tlsend.start();
    let paused = running.wait_for_stderr(
        &format!("paused at {point}"),
        std::time::Duration::from_secs(30),
    );
    let output = running.kill();
    assert!(paused, "never paused at {point}: {}", output.stderr);
    assert_eq!(output.code, None, "killed by a signal");
}

fn deliveries_to(server: &TestServer, recipient: &str) -> usize {
    server
        .messages()
        .iter()
        .filter(|m| m.rcpt_accepted.iter().any(|r| r.contains(recipient)))
        .count()
}

// covers: FAIL3
#[test]
fn fail3_a_kill_while_queueing_leaves_the_complete_entry_or_nothing() {
    // (pause point, whether the entry exists after the kill)
    let cases = [
        ("queue-written", false),
        ("queue-synced", false),
        ("queue-dropped", true),
    ];
    for (point, exists) in cases {
        let spool = Spool::new();
        let server = good();
        let config = spool.config("config", &server, "");
        let mut sender = spool.tlsend(&config);
        sender
            .args(["-odq", "-f", "alice@example.org", "bob@example.net"])
            .stdin(message(1));
        killed_at(&mut sender, point);
        let entries = spool.entries(&config);
        assert_eq!(entries.len(), usize::from(exists), "{point}: {entries:?}");
        let run = spool.tlsend(&config).arg("-q").run();
        assert_exit(&run, 0, &[]);
        assert_eq!(
            deliveries_to(&server, "bob"),
            usize::from(exists),
            "{point}"
        );
        if exists {
            assert!(server.messages()[0].text().contains("Body of message 1."));
        }
        assert!(spool.entries(&config).is_empty(), "{point}");
    }
}

// covers: FAIL3, FAIL8
#[test]
fn fail3_a_kill_during_a_queue_run_never_loses_a_message_and_resends_only_in_the_rfc1047_window() {
    // (pause point in the runner, deliveries to bob in the end)
    let cases = [
        // After the server took it, before the queue recorded it: the
        // one window where a message can go twice (RFC 1047).
        ("queue-accepted", 2),
        // The entry file is gone, its state file not yet: not resent.
        ("queue-removed", 1),
    ];
    for (point, expected) in cases {
        let spool = Spool::new();
        let server = good();
        let config = spool.config("config", &server, "");
        queue_one(&spool, &config, 1);
        let mut runner = spool.tlsend(&config);
        runner.arg("-q");
        killed_at(&mut runner, point);
        let run = spool.tlsend(&config).arg("-q").run();
        assert_exit(&run, 0, &[]);
        assert_eq!(deliveries_to(&server, "bob"), expected, "{point}");
        assert!(spool.entries(&config).is_empty(), "{point}");
        let leftovers: Vec<String> = std::fs::read_dir(spool.root().join("queue"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    }
}

// covers: FAIL3, FAIL8
#[test]
fn fail3_a_kill_while_a_state_is_rewritten_leaves_the_old_state_whole() {
    let spool = Spool::new();
    let partly = refusing("carol@example.com", "450 4.2.1 busy");
    let up = good();
    let partial = spool.config("partial", &partly, "");
    let running = spool.config("running", &up, "");
    spool
        .tlsend(&partial)
        .args([
            "-odq",
            "-f",
            "alice@example.org",
            "bob@example.net",
            "carol@example.com",
        ])
        .stdin(message(1))
        .run();
    // bob is accepted; the runner dies while it writes that down.
    let mut runner = spool.tlsend(&partial);
    runner.arg("-q");
    killed_at(&mut runner, "queue-written");
    let entries = spool.entries(&partial);
    assert_eq!(entries.len(), 1);
    let states: Vec<&str> = entries[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["pending", "pending"],
        "the state before the run, whole"
    );
    spool.tlsend(&running).arg("-q").run();
    assert_eq!(deliveries_to(&up, "carol"), 1);
    assert_eq!(deliveries_to(&partly, "bob") + deliveries_to(&up, "bob"), 2);
    assert!(spool.entries(&running).is_empty());
}

/// Two unprivileged users (uid, gid), each with a group of its own.
const ALICE: (u32, u32) = (64_001, 64_001);
const BOB: (u32, u32) = (64_002, 64_002);

/// A system queue laid out as the README's install steps say: root runs
/// it; the maildrop is writable by all and readable by none (1733).
fn system_spool() -> Spool {
    use std::os::unix::fs::PermissionsExt;
    let spool = Spool::new();
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(spool.root(), 0o755).unwrap();
    mode(&spool.root().join("maildrop"), 0o1733).unwrap();
    spool
}

fn as_user(spool: &Spool, config: &Path, (uid, gid): (u32, u32)) -> Tlsend {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut t = spool.tlsend(config);
    t.as_user(uid, gid);
    t
}

/// Runs `sh -c script` as a user; true when it succeeded.
fn shell_as((uid, gid): (u32, u32), script: &str) -> bool {
    std::process::Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("NOTICE: {test} skipped: it switches users, which needs root (CI runs it)");
    false
}

// covers: FAIL3
#[test]
fn fail3_any_user_can_queue_and_no_user_can_read_or_remove_another_users_message() {
    if !root_or_skip("the maildrop permission test") {
        return;
    }
    let spool = system_spool();
    let server = good();
    let config = spool.config("config", &server, "");
    let drop = |user, n| {
        let output = as_user(&spool, &config, user)
            .args(["-odq", "-f", "alice@example.org", "bob@example.net"])
            .stdin(message(n))
            .run();
        assert_exit(&output, 0, &[]);
    };
    drop(ALICE, 1);
    drop(BOB, 2);
    let names: Vec<String> = std::fs::read_dir(spool.root().join("maildrop"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2);
    let alices = names
        .iter()
        .map(|n| spool.root().join("maildrop").join(n))
        .find(|p| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).unwrap().uid() == ALICE.0
        })
        .unwrap();
    let path = alices.display();
    assert!(
        !shell_as(BOB, &format!("cat {path}")),
        "bob read alice's message"
    );
    assert!(!shell_as(
        BOB,
        &format!("ls {}", spool.root().join("maildrop").display())
    ));
    assert!(!shell_as(BOB, &format!("rm -f {path} && test ! -e {path}")));
    assert!(!shell_as(BOB, &format!("echo x >> {path}")));
    assert!(alices.exists());
    // Neither can list the system queue; only its runner can.
    let listing = as_user(&spool, &config, BOB).arg("-bp").run();
    assert_exit(&listing, 77, &["cannot read the queue"]);
    assert!(!listing.stdout.contains("Mail queue is empty"));
    // Root's run takes both in (copies, now root's) and delivers them.
    let run = spool.tlsend(&config).arg("-q").run();
    assert_exit(&run, 0, &[]);
    assert_eq!(subjects(&server), ["queued 1", "queued 2"]);
    assert_eq!(
        std::fs::read_dir(spool.root().join("maildrop"))
            .unwrap()
            .count(),
        0
    );
}

// covers: FAIL3
#[test]
fn fail3_a_kill_while_another_users_message_is_taken_in_never_duplicates_it() {
    if !root_or_skip("the maildrop import crash test") {
        return;
    }
    for point in [
        "queue-synced",
        "queue-import-copied",
        "queue-import-unlinked",
    ] {
        let spool = system_spool();
        let server = good();
        let config = spool.config("config", &server, "");
        let output = as_user(&spool, &config, ALICE)
            .args(["-odq", "-f", "alice@example.org", "bob@example.net"])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let mut runner = spool.tlsend(&config);
        runner.arg("-q");
        killed_at(&mut runner, point);
        let run = spool.tlsend(&config).arg("-q").run();
        assert_exit(&run, 0, &[]);
        assert_eq!(deliveries_to(&server, "bob"), 1, "{point}");
        assert!(spool.entries(&config).is_empty(), "{point}");
        assert_eq!(
            std::fs::read_dir(spool.root().join("maildrop"))
                .unwrap()
                .count(),
            0
        );
    }
}

// covers: FAIL4, IN5
#[test]
fn fail4_oem_mails_a_permanent_failure_back_to_the_sender() {
    let server = refusing("bob@example.net", "550 5.1.1 no such user");
    let spool = Spool::new();
    std::fs::remove_dir(spool.root().join("maildrop")).unwrap();
    let config = spool.config("config", &server, "");
    // Without -oem the failure is only reported.
    let output = spool
        .tlsend(&config)
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(message(1))
        .run();
    assert_exit(&output, 67, &["5.1.1"]);
    assert_eq!(server.messages().len(), 0);
    // Debian's cron: -oem. The exit status still says what happened.
    let output = spool
        .tlsend(&config)
        .args(["-oem", "-oi", "-f", "alice@example.org", "bob@example.net"])
        .stdin(message(2))
        .run();
    assert_exit(&output, 67, &["5.1.1", "mailed back to alice@example.org"]);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].mail_from.starts_with("MAIL FROM:<>"));
    assert_eq!(messages[0].rcpt_to, ["RCPT TO:<alice@example.org>"]);
    let report = report(&messages[0]);
    assert!(
        report.parts[1].1.contains("Status: 5.1.1"),
        "{}",
        report.parts[1].1
    );
    assert!(report.parts[1].1.contains("Action: failed"));
    assert!(report.parts[2].1.contains("Body of message 2."));

    // Sent to an alias, the notice names the address the sender wrote
    // (RFC 3464 Original-Recipient, from the ORCPT kept for the target).
    let aliases = spool.root().join("aliases");
    std::fs::write(&aliases, "ops: bob@example.net\n").unwrap();
    let config = spool.config(
        "aliased",
        &server,
        &format!(
            "aliases = \"{}\"\nqualify_domain = \"example.org\"",
            aliases.display()
        ),
    );
    let output = spool
        .tlsend(&config)
        .args(["-oem", "-oi", "-f", "alice@example.org", "ops"])
        .stdin(message(3))
        .run();
    assert_exit(&output, 67, &["5.1.1", "mailed back to alice@example.org"]);
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    let aliased = self::report(&messages[1]);
    let fields = &aliased.parts[1].1;
    assert!(
        fields.contains("Original-Recipient: rfc822;ops@example.org")
            && fields.contains("Final-Recipient: rfc822; bob@example.net"),
        "{fields}"
    );
}

/// example.net, its zone signed, with one MX host at `address`.
fn example_net(address: &str, behaviour: Behaviour) -> crate::support::mx::MxWorld {
    use crate::support::dns::{Records, Security, World};
    let mut world = World::new();
    world.zone("example.net", Security::Secure);
    world.mx("example.net", 10, "mx1.example.net");
    world.a("mx1.example.net", address);
    crate::support::mx::MxWorld::start(world, vec![(address, behaviour)])
}

/// A configuration for direct delivery through `world`'s resolver and port.
fn direct_config(spool: &Spool, name: &str, world: &crate::support::mx::MxWorld) -> PathBuf {
    let path = spool.root().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "queue_dir = \"{}\"\n[direct]\nresolver = \"{}\"\nport = {}\n\
             lookup_timeout = 5\nconnect_timeout = 5\ntimeout = 5\n\
             ehlo_name = \"client.example.org\"\n",
            spool.root().display(),
            world.dns.addr(),
            world.port
        ),
    )
    .unwrap();
    path
}

fn mx1() -> Behaviour {
    crate::support::mx::host("mx1.example.net", Default::default()).0
}

// covers: FAIL3, MX4
#[test]
fn fail3_direct_delivery_queues_and_a_queue_run_delivers_to_the_mx_hosts() {
    let down = example_net(
        "127.0.0.2",
        Behaviour {
            replies: Replies {
                mail: Some("421 4.3.2 not now".into()),
                ..Replies::default()
            },
            ..mx1()
        },
    );
    let up = example_net("127.0.0.3", mx1());
    let spool = Spool::new();
    let sending = direct_config(&spool, "sending", &down);
    let running = direct_config(&spool, "running", &up);
    let output = spool
        .tlsend(&sending)
        .args([
            "--require-tls",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &["queued as"]);
    let entries = spool.entries(&sending);
    assert_eq!(entries[0]["mode"], "require");
    let run = spool.tlsend(&running).arg("-q").run();
    assert_exit(&run, 0, &[]);
    let messages = up.server("127.0.0.3").messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].mail_from.contains("REQUIRETLS"));
    assert!(messages[0].text().contains("Body of message 1."));
    assert!(spool.entries(&running).is_empty());
}

// covers: FAIL8, FAIL3
#[test]
fn fail8_a_domain_that_deferred_is_queued_and_the_one_that_took_it_is_not_sent_again() {
    use crate::support::dns::{Records, Security, World};
    use crate::support::mx::MxWorld;
    let mut world = World::new();
    for (domain, address) in [("example.net", "127.0.0.2"), ("example.com", "127.0.0.3")] {
        world.zone(domain, Security::Secure);
        world.mx(domain, 10, &format!("mx1.{domain}"));
        world.a(&format!("mx1.{domain}"), address);
    }
    let busy = Behaviour {
        replies: Replies {
            mail: Some("451 4.3.0 try later".into()),
            ..Replies::default()
        },
        ..crate::support::mx::host("mx1.example.com", Default::default()).0
    };
    let world = MxWorld::start(world, vec![("127.0.0.2", mx1()), ("127.0.0.3", busy)]);
    let spool = Spool::new();
    let config = direct_config(&spool, "config", &world);
    let output = spool
        .tlsend(&config)
        .args([
            "-f",
            "alice@example.org",
            "bob@example.net",
            "carol@example.com",
        ])
        .stdin(message(1))
        .run();
    assert_exit(&output, 0, &["queued as", "carol@example.com"]);
    let entries = spool.entries(&config);
    let queued: Vec<&str> = entries[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(queued, ["carol@example.com"]);
    let run = spool.tlsend(&config).arg("-q").run();
    assert_exit(&run, 0, &[]);
    // example.net got it once, in the first run; example.com is still busy.
    assert_eq!(deliveries_to(world.server("127.0.0.2"), "bob"), 1);
    assert_eq!(spool.entries(&config)[0]["recipients"][0]["attempts"], 2);
}

// covers: FAIL3
#[test]
fn a_queue_run_reuses_one_connection_per_mx_host() {
    let world = example_net("127.0.0.2", mx1());
    let spool = Spool::new();
    let config = direct_config(&spool, "config", &world);
    for n in 1..=3 {
        let output = spool
            .tlsend(&config)
            .args([
                "-odq",
                "--require-tls",
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin(message(n))
            .run();
        assert_exit(&output, 0, &[]);
    }
    let run = spool.tlsend(&config).args(["-q", "-v"]).run();
    assert_exit(&run, 0, &["reusing the open connection"]);
    let server = world.server("127.0.0.2");
    assert_eq!(subjects(server), ["queued 1", "queued 2", "queued 3"]);
    assert_eq!(server.connections(), 1, "{}", run.stderr);
    // Each message passed the require-mode checks on the reused session.
    assert!(
        server
            .messages()
            .iter()
            .all(|m| m.mail_from.contains("REQUIRETLS") && m.tls)
    );
    assert!(server.saw("QUIT"));
}

// covers: FAIL3
#[test]
fn fail3_a_runner_short_of_open_files_loses_and_bounces_nothing() {
    let spool = Spool::new();
    let server = good();
    let config = spool.config("config", &server, "");
    for n in 0..60 {
        queue_one(&spool, &config, n);
    }
    // 40 open files, hard limit included: fewer than one per entry.
    let mut runner = spool.tlsend(&config);
    runner.arg("-q");
    let output = runner.start_after("ulimit -n 40").finish();
    assert!(matches!(output.code, Some(0 | 74)), "{}", output.stderr);
    spool.tlsend(&config).arg("-q").run();
    let mut expected: Vec<String> = (0..60).map(|n| format!("queued {n}")).collect();
    expected.sort();
    assert_eq!(
        subjects(&server),
        expected,
        "each message once: {}",
        output.stderr
    );
    assert!(
        !server
            .messages()
            .iter()
            .any(|m| m.mail_from.starts_with("MAIL FROM:<>"))
    );
    assert!(spool.entries(&config).is_empty());
}

// covers: FAIL3
#[test]
fn a_queue_run_delivers_to_different_servers_at_once() {
    let spool = Spool::new();
    let slow = TestServer::start(
        Behaviour {
            silent_at: Some(crate::support::Step::Mail),
            ..Behaviour::default()
        },
        pki(),
    );
    let fast = good();
    // Two accounts; the silent server's comes first in every order.
    let config = spool.root().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "queue_dir = \"{}\"\n\
             [account.a-silent]\nhost = \"localhost\"\nport = {}\ntimeout = 5\n\
             [account.b-fast]\nhost = \"localhost\"\nport = {}\ntimeout = 5\n",
            spool.root().display(),
            slow.port,
            fast.port
        ),
    )
    .unwrap();
    for (n, account) in [(1, "a-silent"), (2, "b-fast")] {
        let output = spool
            .tlsend(&config)
            .args([
                "-odq",
                "-a",
                account,
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin(message(n))
            .run();
        assert_exit(&output, 0, &[]);
    }
    let mut runner = spool.tlsend(&config);
    runner.arg("-q");
    let running = runner.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while fast.messages_so_far().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        fast.messages_so_far().len(),
        1,
        "the second server waited for the first one's time-out"
    );
    let output = running.finish();
    assert_exit(&output, 0, &[]);
    // The silent server's message stays queued.
    let entries = spool.entries(&config);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["recipients"][0]["state"], "pending");
}

// covers: FAIL3, FAIL7
#[test]
fn fail7_sigterm_during_a_queue_run_keeps_every_entry_and_the_next_run_resumes() {
    let spool = Spool::new();
    let slow = TestServer::start(
        Behaviour {
            end_of_data_delay: Some(std::time::Duration::from_millis(1500)),
            ..Behaviour::default()
        },
        pki(),
    );
    let config = spool.config("config", &slow, "");
    for n in 1..=3 {
        queue_one(&spool, &config, n);
    }
    let mut runner = spool.tlsend(&config);
    runner.arg("-q");
    let running = runner.start();
    // The first message is with the server, its verdict pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !slow.commands_so_far().iter().any(|c| c.line == "DATA")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    running.signal(rustix::process::Signal::TERM);
    let output = running.finish();
    assert_exit(
        &output,
        75,
        &[
            "SIGTERM",
            "waiting for its verdict",
            "kept for the next run",
        ],
    );
    // The verdict came in and was recorded; nothing else was started.
    assert_eq!(slow.messages().len(), 1);
    let entries = spool.entries(&config);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e["recipients"][0]["state"] == "pending")
    );
    spool.tlsend(&config).arg("-q").run();
    assert_eq!(subjects(&slow), ["queued 1", "queued 2", "queued 3"]);
    assert!(spool.entries(&config).is_empty());
}

// covers: FAIL3
#[test]
fn a_reused_mx_session_the_server_ends_gives_way_to_a_new_one() {
    let world = example_net(
        "127.0.0.2",
        Behaviour {
            messages_per_connection: Some(2),
            ..mx1()
        },
    );
    let spool = Spool::new();
    let config = direct_config(&spool, "config", &world);
    for n in 1..=3 {
        queue_one(&spool, &config, n);
    }
    let run = spool.tlsend(&config).arg("-q").run();
    assert_exit(&run, 0, &[]);
    let server = world.server("127.0.0.2");
    assert_eq!(subjects(server), ["queued 1", "queued 2", "queued 3"]);
    assert_eq!(server.connections(), 2);
    assert!(spool.entries(&config).is_empty(), "none deferred");
}

/// What a local user can do to a root runner by writing drop files of
/// their own making, and what the runner does about its own failures
/// (found in review: each of these failed before it was fixed).
mod hostile {
    use super::*;

    /// Writes a drop file as `user` into the system maildrop: a state line
    /// of the user's choice, then the message.
    fn forge(spool: &Spool, user: (u32, u32), id: &str, state: &str, message: &str) {
        let tmp = spool.root().join(format!("forge-{id}"));
        std::fs::write(&tmp, format!("{state}\n{message}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        let target = spool.root().join("maildrop").join(id);
        assert!(shell_as(
            user,
            &format!(
                "cat {} > {}.part && mv {}.part {}",
                tmp.display(),
                spool
                    .root()
                    .join("maildrop")
                    .join(format!(".{id}"))
                    .display(),
                spool
                    .root()
                    .join("maildrop")
                    .join(format!(".{id}"))
                    .display(),
                target.display()
            )
        ));
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// A drop that says `bounce: true` is no notification: its
    /// require-mode message does not get the RFC 8689 section 5 relaxation
    /// and never goes to a hop without REQUIRETLS.
    // covers: FAIL3
    #[test]
    fn a_forged_bounce_flag_in_a_drop_gets_no_relaxation() {
        if !root_or_skip("the hostile-drop test: forged bounce") {
            return;
        }
        let spool = system_spool();
        let server = TestServer::start(
            Behaviour {
                requiretls: Advertise::Never,
                ..Behaviour::default()
            },
            pki(),
        );
        let config = spool.config("config", &server, "");
        let msg = "From: alice@example.org\r\nSubject: not a bounce\r\n\r\nsecret body\r\n";
        let state = format!(
            r#"{{"version":1,"id":"0000000000000000F00D","created":{},"sender":"","mode":"require","reason":"forged","bounce":true,"size":{},"recipients":[{{"address":"bob@example.net","state":"pending"}}]}}"#,
            now(),
            msg.len()
        );
        forge(&spool, ALICE, "0000000000000000F00D", &state, msg);
        let run = spool.tlsend(&config).args(["-q", "-v"]).run();
        assert!(
            server.messages().is_empty(),
            "a user's require-mode message went without REQUIRETLS because its drop file said bounce: true; MAIL: {:?}",
            server.messages().first().map(|m| m.mail_from.clone())
        );
        assert!(run.stderr.contains("5.7.30"), "{}", run.stderr);
    }

    /// The sender a user queues with does not select one of the runner's
    /// accounts: another user's message goes through the default one, and
    /// carries a Received field naming the user.
    // covers: FAIL3
    #[test]
    fn another_users_message_goes_through_the_runners_default_account() {
        if !root_or_skip("the hostile-drop test: account selection") {
            return;
        }
        let spool = system_spool();
        let ordinary = good();
        let vip = good();
        let config = spool.config("config", &ordinary, "");
        // root's configuration has a second account for the CEO's address.
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "[account.vip]\nhost = \"localhost\"\nport = {}\ntimeout = 5\nfrom = \"ceo@example.org\"\n",
            vip.port
        ));
        std::fs::write(&config, text).unwrap();
        // alice queues with -f ceo@example.org, with no configuration of
        // her own (she cannot read root's password anyway).
        let user_config = spool.root().join("alice.toml");
        std::fs::write(
            &user_config,
            format!("queue_dir = \"{}\"\n", spool.root().display()),
        )
        .unwrap();
        let output = as_user(&spool, &user_config, ALICE)
            .args(["-odq", "-f", "ceo@example.org", "bob@example.net"])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let run = spool.tlsend(&config).args(["-q"]).run();
        assert_exit(&run, 0, &[]);
        assert!(
            vip.messages().is_empty(),
            "alice's message went through root's vip account"
        );
        assert_eq!(ordinary.messages().len(), 1);
        // Stamped with the user it came from.
        let text = ordinary.messages()[0].text();
        assert!(text.contains(&format!("from userid {}", ALICE.0)), "{text}");
    }

    /// When the notification of a permanent failure cannot be queued (here
    /// its temporary file's name is taken; in life ENOSPC, EIO, EMFILE), the
    /// recipient stays pending and the entry stays: nobody fails unheard.
    // covers: FAIL3
    #[test]
    fn fail4_a_notification_that_cannot_be_queued_keeps_the_message() {
        let spool = Spool::new();
        let server = TestServer::start(
            Behaviour {
                replies: Replies {
                    rcpt_for: vec![("bob@example.net".into(), "550 5.1.1 no such user".into())],
                    ..Replies::default()
                },
                ..Behaviour::default()
            },
            pki(),
        );
        let config = spool.config("config", &server, "");
        let output = spool
            .tlsend(&config)
            .args(["-odq", "-v", "-f", "alice@example.org", "bob@example.net"])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let id = output
            .stderr
            .split("queued as ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let queue = spool.root().join("queue");
        std::fs::create_dir(&queue).unwrap();
        // The notification's temporary file cannot be made.
        let digest: String = crate::support::certs::sha256(b"bob@example.net")[..4]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        std::fs::create_dir(queue.join(format!(".{id}-B{digest}.tmp"))).unwrap();
        let run = spool.tlsend(&config).arg("-q").run();
        let entries = spool.entries(&config);
        let notices = server
            .messages()
            .iter()
            .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
            .count();
        assert_eq!(notices, 0);
        assert!(
            !entries.is_empty(),
            "bob failed for good, no notification went to alice and the entry is gone (exit {:?}): {}",
            run.code,
            run.stderr
        );
    }

    /// A problem of the runner's own, or of its relay's configuration (an
    /// expired certificate on the submission server, a changed password),
    /// defers the queue until it is fixed; it bounces nothing.
    // covers: FAIL3
    #[test]
    fn fail3_an_expired_relay_certificate_defers_the_queue_instead_of_bouncing_it() {
        let spool = Spool::new();
        let first = good();
        let config = spool.config("config", &first, "");
        for n in 1..=3 {
            queue_one(&spool, &config, n);
        }
        // The relay's certificate expires (or its CA changes) before the run.
        let expired = TestServer::start(
            Behaviour {
                cert: crate::support::CertKind::Expired,
                ..Behaviour::default()
            },
            pki(),
        );
        let broken = spool.config("broken", &expired, "");
        let run = spool.tlsend(&broken).args(["-q", "-v"]).run();
        assert_eq!(expired.messages().len(), 0);
        assert_eq!(
            spool.entries(&broken).len(),
            3,
            "default-mode messages were failed for good because the relay's certificate expired: {}",
            run.stderr
        );
    }

    // covers: FAIL3
    #[test]
    fn fail3_a_wrong_runner_password_defers_the_queue_instead_of_bouncing_it() {
        let spool = Spool::new();
        let server = TestServer::start(
            Behaviour {
                auth: Some(crate::support::smtp::AuthConfig {
                    mechanisms: vec!["PLAIN".into()],
                    user: "relay".into(),
                    secret: "right".into(),
                }),
                ..Behaviour::default()
            },
            pki(),
        );
        let config = spool.config("config", &server, "");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("user = \"relay\"\npassword_command = \"echo changed-yesterday\"\n");
        std::fs::write(&config, text).unwrap();
        for n in 1..=2 {
            queue_one(&spool, &config, n);
        }
        let run = spool.tlsend(&config).arg("-q").run();
        assert_eq!(
            spool.entries(&config).len(),
            2,
            "the runner's wrong password failed every queued message for good: {}",
            run.stderr
        );
    }

    /// A FIFO a user puts into the system maildrop is reported by root's
    /// `-bp` (mailq), which neither blocks on it nor follows links.
    // covers: FAIL3
    #[test]
    fn a_fifo_in_the_maildrop_cannot_hang_roots_mailq() {
        if !root_or_skip("the hostile-drop test: fifo") {
            return;
        }
        let spool = system_spool();
        let server = good();
        let config = spool.config("config", &server, "");
        let fifo = spool.root().join("maildrop").join("AAAAAAAAAAAAAAAAAAAA");
        assert!(shell_as(ALICE, &format!("mkfifo {}", fifo.display())));
        let mut bp = spool.tlsend(&config);
        bp.arg("-bp").time_limit(std::time::Duration::from_secs(5));
        let output = bp.run();
        assert!(
            output.code.is_some(),
            "root's -bp hung on alice's FIFO and was killed: {}",
            output.stderr
        );
    }

    /// A drop whose state lists one recipient twice is refused: one of the
    /// two could never be recorded as delivered, and would go again on
    /// every run.
    // covers: FAIL3
    #[test]
    fn a_drop_with_a_repeated_recipient_is_refused() {
        if !root_or_skip("the hostile-drop test: repeated recipient") {
            return;
        }
        let spool = system_spool();
        let server = good();
        let config = spool.config("config", &server, "");
        let msg = "From: alice@example.org\r\nSubject: again\r\n\r\nbody\r\n";
        let state = format!(
            r#"{{"version":1,"id":"0000000000000000D0D0","created":{},"sender":"alice@example.org","mode":"default","reason":"x","size":{},"recipients":[{{"address":"bob@example.net","state":"pending"}},{{"address":"bob@example.net","state":"pending"}}]}}"#,
            now(),
            msg.len()
        );
        forge(&spool, ALICE, "0000000000000000D0D0", &state, msg);
        let run = spool.tlsend(&config).arg("-q").run();
        assert!(run.stderr.contains("listed twice"), "{}", run.stderr);
        spool.tlsend(&config).arg("-q").run();
        assert_eq!(deliveries_to(&server, "bob"), 0, "refused, never sent");
    }

    // covers: FAIL3, IN9
    #[test]
    fn a_drop_whose_message_standard_input_would_refuse_is_refused() {
        if !root_or_skip("the hostile-drop test: bare CR") {
            return;
        }
        let spool = system_spool();
        let server = good();
        let config = spool.config("config", &server, "");
        // A bare CR that a server could take for a line end (SMTP smuggling).
        let msg = "From: alice@example.org\r\nSubject: x\r\n\r\nbody\r.\rMAIL FROM:<x@y>\r\n";
        let state = format!(
            r#"{{"version":1,"id":"0000000000000000C0C0","created":{},"sender":"alice@example.org","mode":"default","reason":"x","size":{},"recipients":[{{"address":"bob@example.net","state":"pending"}}]}}"#,
            now(),
            msg.len()
        );
        forge(&spool, ALICE, "0000000000000000C0C0", &state, msg);
        let run = spool.tlsend(&config).arg("-q").run();
        assert!(
            run.stderr.contains("was left in the maildrop"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("CR"), "{}", run.stderr);
        assert!(server.messages().is_empty());
        assert!(spool.root().join("maildrop/0000000000000000C0C0").exists());
    }

    /// A drop whose `created` lies before any time the clock can write is
    /// queued as of now: delivered, not expired at once and kept for ever.
    // covers: FAIL3, FAIL4
    #[test]
    fn a_drop_from_before_time_is_not_kept_for_ever() {
        if !root_or_skip("the hostile-drop test: created out of range") {
            return;
        }
        let spool = system_spool();
        let server = good();
        let config = spool.config("config", &server, "");
        let msg = "From: alice@example.org\r\nSubject: ancient\r\n\r\nbody\r\n";
        let state = format!(
            r#"{{"version":1,"id":"0000000000000000A0A0","created":-100000000000000,"sender":"alice@example.org","mode":"default","reason":"x","size":{},"recipients":[{{"address":"bob@example.net","state":"pending"}}]}}"#,
            msg.len()
        );
        forge(&spool, ALICE, "0000000000000000A0A0", &state, msg);
        let mut last = String::new();
        for _ in 0..3 {
            last = spool.tlsend(&config).arg("-q").run().stderr;
        }
        let told_or_sent = !server.messages().is_empty();
        assert!(
            told_or_sent || spool.entries(&config).is_empty(),
            "after three runs the message was neither sent nor returned, and it is still queued: {last}"
        );
    }

    /// A sender with a quoted local part (valid RFC 5321, accepted by -f)
    /// is told of a permanent failure like any other.
    // covers: FAIL4
    #[test]
    fn a_quoted_sender_is_told_of_a_permanent_failure() {
        let spool = Spool::new();
        let server = refusing("bob@example.net", "550 5.1.1 no such user");
        let config = spool.config("config", &server, "");
        let output = spool
            .tlsend(&config)
            .args([
                "-odq",
                "-f",
                "\"alice smith\"@example.org",
                "bob@example.net",
            ])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let mut last = String::new();
        for _ in 0..3 {
            last = spool.tlsend(&config).arg("-q").run().stderr;
        }
        let offered = server
            .lines()
            .iter()
            .filter(|l| {
                l.to_ascii_uppercase()
                    .starts_with("RCPT TO:<BOB@EXAMPLE.NET>")
            })
            .count();
        let notices = server
            .messages()
            .iter()
            .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
            .count();
        assert!(
            notices == 1 && offered == 1,
            "bob was refused for good {offered} times, {notices} notification(s): {last}"
        );
    }

    /// When root's account has mode = "require", the runner sends another
    /// user's default-mode message with REQUIRETLS and RET=HDRS (FAIL5),
    /// and its notification carries the header only (RFC 8689 section 5).
    // covers: FAIL4, FAIL5
    #[test]
    fn a_message_the_runner_required_tls_for_bounces_with_headers_only() {
        if !root_or_skip("the hostile-drop test: require_all") {
            return;
        }
        let spool = system_spool();
        let server = refusing("bob@example.net", "550 5.1.1 no such user");
        let config = spool.config("config", &server, "");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("mode = \"require\"\n");
        std::fs::write(&config, text).unwrap();
        let user_config = spool.root().join("alice.toml");
        std::fs::write(
            &user_config,
            format!("queue_dir = \"{}\"\n", spool.root().display()),
        )
        .unwrap();
        let output = as_user(&spool, &user_config, ALICE)
            .args([
                "-odq",
                "-R",
                "full",
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let run = spool.tlsend(&config).args(["-q", "-v"]).run();
        assert_exit(&run, 0, &[]);
        let messages = server.messages();
        let mails: Vec<String> = server
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("MAIL FROM:<alice"))
            .collect();
        let dsn = messages
            .iter()
            .find(|m| m.mail_from.starts_with("MAIL FROM:<>"))
            .expect("a notification reached the server");
        let report = report(dsn);
        assert!(
            mails
                .iter()
                .all(|m| !(m.contains("REQUIRETLS") && m.contains("RET=FULL"))),
            "FAIL5: {mails:?}"
        );
        assert_eq!(
            report.parts[2].0, "text/rfc822-headers",
            "a REQUIRETLS message came back whole"
        );
    }

    /// A notification is named after the recipients it reports: when the
    /// state could not be saved after one was queued (here its temporary
    /// file's name is taken; in life ENOSPC, EIO, or a crash in between),
    /// a later notification about other recipients is still made.
    // covers: FAIL4
    #[test]
    fn a_recipient_failed_in_a_later_run_is_told_even_after_a_state_save_failed() {
        let spool = Spool::new();
        let first = TestServer::start(
            Behaviour {
                replies: Replies {
                    rcpt_for: vec![
                        ("bob@example.net".into(), "550 5.1.1 no such user".into()),
                        ("carol@example.net".into(), "450 4.2.1 busy".into()),
                        // The notification to alice waits in the queue.
                        ("alice@example.org".into(), "450 4.2.1 busy".into()),
                    ],
                    ..Replies::default()
                },
                ..Behaviour::default()
            },
            pki(),
        );
        let second = TestServer::start(
            Behaviour {
                replies: Replies {
                    rcpt: Some("550 5.1.1 no such user".into()),
                    // Alice's mailbox is still busy in this run.
                    rcpt_for: vec![("alice@example.org".into(), "450 4.2.1 busy".into())],
                    ..Replies::default()
                },
                ..Behaviour::default()
            },
            pki(),
        );
        let config = spool.config("config", &first, "");
        let later = spool.config("later", &second, "");
        let output = spool
            .tlsend(&config)
            .args([
                "-odq",
                "-v",
                "-f",
                "alice@example.org",
                "bob@example.net",
                "carol@example.net",
            ])
            .stdin(message(1))
            .run();
        assert_exit(&output, 0, &[]);
        let id = output
            .stderr
            .split("queued as ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let queue = spool.root().join("queue");
        std::fs::create_dir(&queue).unwrap();
        let blocker = queue.join(format!(".{id}.state.tmp"));
        std::fs::create_dir(&blocker).unwrap();
        let run = spool.tlsend(&config).arg("-q").run();
        assert!(run.stderr.contains("cannot record"), "{}", run.stderr);
        std::fs::remove_dir(&blocker).unwrap();
        spool.tlsend(&later).arg("-q").run();
        // Alice's mailbox is free again: what is queued for her goes.
        let third = good();
        let last = spool.config("last", &third, "");
        spool.tlsend(&last).arg("-q").run();
        let told: Vec<String> = third
            .messages()
            .iter()
            .chain(first.messages().iter())
            .chain(second.messages().iter())
            .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
            .map(|m| m.text())
            .collect();
        let carol_told = told.iter().any(|t| t.contains("carol@example.net"));
        let carol_state = spool
            .entries(&last)
            .first()
            .map(|e| e["recipients"][1]["state"].to_string());
        assert!(
            carol_told || carol_state.as_deref() == Some("\"pending\""),
            "carol failed for good ({carol_state:?}) and no notification names her; {} notification(s)",
            told.len()
        );
    }
}
