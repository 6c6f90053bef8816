//! The queue through the real binary (FAIL3-FAIL5, FAIL8, IN5 `-q`, `-bp`,
//! `-odq`, `-odb`): messages that meet a temporary failure are queued,
//! delivered by a queue run exactly once, and their senders told when they
//! fail for good. Each test has its own queue directory and servers that
//! record what reached them.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let partly = TestServer::start(
        Behaviour {
            replies: Replies {
                rcpt_for: vec![("carol@example.com".into(), "450 4.2.1 mailbox busy".into())],
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    );
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
        let output = spool
            .tlsend(&config)
            .args(["-odq", "-f", "alice@example.org", "bob@example.net"])
            .stdin(message(n))
            .run();
        assert_exit(&output, 0, &[]);
        assert!(output.stderr.is_empty(), "-odq is quiet: {}", output.stderr);
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
