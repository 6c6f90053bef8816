//! The delivery log (UX6) through the real binary: the lines a logfile and
//! syslog get for a delivery, a refusal, the queue and direct delivery,
//! that a log that cannot be written changes nothing, and that no secret
//! reaches any output.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::support::{
    Advertise, AuthConfig, Behaviour, Output, Replies, TestServer, Tlsend, assert_exit, pki,
};

const MESSAGE: &str = "From: Alice <alice@example.org>\n\
To: Bob <bob@example.net>\n\
Subject: logged\n\
Date: Sun, 22 Nov 2026 22:18:00 +0100\n\
Message-ID: <log.1@example.org>\n\
\n\
Hello Bob.\n";

/// The fields of a log line as a quote-aware reader sees them, after the
/// time stamp and `tlsend[PID]:` of a logfile line or the syslog header.
fn fields(line: &str) -> Vec<(String, String)> {
    let rest = line.split_once("]: ").map_or(line, |(_, rest)| rest);
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        value.push('\\');
                        value.extend(chars.next());
                    }
                    c => value.push(c),
                }
            }
            chars.next_if_eq(&' ');
        } else {
            value = chars.by_ref().take_while(|&c| c != ' ').collect();
        }
        out.push((key, value));
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Asserts `key=value` for each pair, and no other `result`.
#[track_caller]
fn assert_fields(line: &str, expected: &[(&str, &str)]) {
    let found = fields(line);
    for (key, value) in expected {
        assert_eq!(field(&found, key), Some(*value), "{key} in {line}");
    }
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key twice: {line}");
}

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// tlsend with a configuration that submits to `server` over TLS checked
/// against the test CA file and logs to `$HOME/tlsend.log`; `extra` goes
/// at the top level.
fn configured(server: &TestServer, extra: &str) -> (Tlsend, PathBuf) {
    let mut tlsend = Tlsend::new();
    let log = tlsend.home().join("tlsend.log");
    tlsend.config(&format!(
        "logfile = \"{}\"\n{extra}\n[account.default]\nhost = \"localhost\"\nport = {}\n\
         ca_file = \"{}\"\ntimeout = 5\n",
        log.display(),
        server.port,
        pki().ca_file().display()
    ));
    tlsend.stdin(MESSAGE).args(["-f", "alice@example.org"]);
    (tlsend, log)
}

// covers: UX6
#[test]
fn ux6_a_delivery_over_verified_tls_with_requiretls_is_one_line_per_recipient() {
    // A reply that tries to forge a field and break the line.
    let server = TestServer::start(
        Behaviour {
            replies: Replies {
                end_of_data: Some("250 2.0.0 Ok: queued as X1 result=failed\tstatus=5.0.0".into()),
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    );
    let (mut tlsend, log) = configured(&server, "");
    tlsend.args(["--require-tls", "bob@example.net", "carol@example.net"]);
    let output = tlsend.run();
    assert_exit(&output, 0, &[]);
    assert_eq!(server.messages().len(), 1);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let host = format!("localhost:{}", server.port);
    for (line, to) in lines
        .iter()
        .zip(["<bob@example.net>", "<carol@example.net>"])
    {
        // 2026-11-22T22:18:00+0100 tlsend[1234]: from=…
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%z").is_ok(),
            "{line}"
        );
        assert!(rest.starts_with("tlsend["), "{line}");
        assert_fields(
            line,
            &[
                ("from", "<alice@example.org>"),
                ("to", to),
                ("account", "default"),
                ("mode", "require"),
                ("why", "command-line flag --require-tls"),
                ("host", &host),
                ("tls", "TLSv1.3"),
                ("verify", "ca-file"),
                ("requiretls", "yes"),
                ("result", "delivered"),
                ("status", "2.0.0"),
                ("smtp", "250"),
                (
                    "detail",
                    "Ok: queued as X1 result\\x3dfailed\\tstatus\\x3d5.0.0",
                ),
            ],
        );
        assert_eq!(line.matches("result=").count(), 1, "{line}");
        assert!(!line.contains('\t'), "{line}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the log is private: {mode:o}");
}

// covers: UX6, FAIL1
#[test]
fn ux6_a_require_mode_refusal_is_logged_with_5_7_30_and_the_session_it_met() {
    let server = TestServer::start(
        Behaviour {
            requiretls: Advertise::Never,
            ..Behaviour::default()
        },
        pki(),
    );
    let (mut tlsend, log) = configured(&server, "");
    tlsend.args(["--require-tls", "bob@example.net"]);
    assert_exit(&tlsend.run(), 69, &["5.7.30"]);
    assert!(server.messages().is_empty());
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            ("to", "<bob@example.net>"),
            ("mode", "require"),
            ("host", &format!("localhost:{}", server.port)),
            ("tls", "TLSv1.3"),
            ("verify", "ca-file"),
            ("requiretls", "no"),
            ("result", "failed"),
            ("status", "5.7.30"),
        ],
    );
    assert!(lines[0].contains("REQUIRETLS"), "{}", lines[0]);
}

// covers: UX6, FAIL3
#[test]
fn ux6_deferred_queued_and_queue_run_results_are_logged_with_the_queue_id() {
    let spool = tempfile::tempdir().unwrap();
    std::fs::create_dir(spool.path().join("maildrop")).unwrap();
    let log = spool.path().join("tlsend.log");
    let config = |name: &str, server: &TestServer| -> PathBuf {
        let path = spool.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "queue_dir = \"{}\"\nlogfile = \"{}\"\n[account.default]\nhost = \"localhost\"\n\
                 port = {}\ntimeout = 5\n",
                spool.path().display(),
                log.display(),
                server.port
            ),
        )
        .unwrap();
        path
    };
    let run = |config: &Path, args: &[&str]| -> Output {
        let mut t = Tlsend::new();
        t.arg("-C").arg(config).args(args);
        t.env("SSL_CERT_FILE", pki().ca_file()).stdin(MESSAGE);
        t.run()
    };
    let busy = TestServer::start(
        Behaviour {
            replies: Replies {
                mail: Some("451 4.3.0 try again later".into()),
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    );
    let up = TestServer::start(
        Behaviour {
            replies: Replies {
                rcpt_for: vec![("nobody@example.net".into(), "550 5.1.1 no such user".into())],
                ..Replies::default()
            },
            ..Behaviour::default()
        },
        pki(),
    );
    let sending = config("sending", &busy);
    let running = config("running", &up);

    let output = run(&sending, &["-f", "alice@example.org", "bob@example.net"]);
    assert_exit(&output, 0, &["queued as "]);
    let output = run(
        &sending,
        &["-odq", "-f", "alice@example.org", "nobody@example.net"],
    );
    assert_exit(&output, 0, &[]);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first = fields(&lines[0]);
    let id = field(&first, "queue_id").expect("a queue id").to_string();
    assert_fields(
        &lines[0],
        &[
            ("to", "<bob@example.net>"),
            ("host", &format!("localhost:{}", busy.port)),
            ("tls", "TLSv1.3"),
            ("verify", "system-roots"),
            ("result", "deferred"),
            ("status", "4.3.0"),
        ],
    );
    assert!(output.stderr.is_empty(), "-odq is quiet: {}", output.stderr);
    assert_fields(
        &lines[1],
        &[("to", "<nobody@example.net>"), ("result", "queued")],
    );
    let queued = fields(&lines[1]);
    let other = field(&queued, "queue_id").expect("a queue id").to_string();
    assert_ne!(id, other);
    assert_eq!(field(&queued, "host"), None, "-odq tried no server");

    // A run against the busy server: both wait, each with its next attempt.
    assert_exit(&run(&sending, &["-q"]), 0, &[]);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines[2..] {
        assert_fields(line, &[("result", "deferred"), ("status", "4.3.0")]);
        let retry = field(&fields(line), "retry").map(str::to_string);
        assert!(
            retry.is_some_and(
                |r| chrono::DateTime::parse_from_str(&r, "%Y-%m-%dT%H:%M:%S%z").is_ok()
            ),
            "{line}"
        );
    }
    // A run against the good server: bob gets it, nobody's bounces.
    assert_exit(&run(&running, &["-q"]), 0, &[]);
    let lines = log_lines(&log);
    let last: Vec<&String> = lines[4..]
        .iter()
        .filter(|l| !l.contains("from=<>"))
        .collect();
    assert_eq!(last.len(), 2, "{lines:?}");
    let for_bob = last.iter().find(|l| l.contains("to=<bob@")).unwrap();
    assert_fields(
        for_bob,
        &[
            ("queue_id", &id),
            ("from", "<alice@example.org>"),
            ("mode", "default"),
            ("host", &format!("localhost:{}", up.port)),
            ("tls", "TLSv1.3"),
            ("requiretls", "no"),
            ("result", "delivered"),
            ("smtp", "250"),
        ],
    );
    let for_nobody = last.iter().find(|l| l.contains("to=<nobody@")).unwrap();
    assert_fields(
        for_nobody,
        &[
            ("queue_id", &other),
            ("result", "bounced"),
            ("status", "5.1.1"),
        ],
    );
}

// covers: UX6, MX2
#[test]
fn ux6_direct_delivery_names_the_mx_host_and_how_its_name_was_validated() {
    use crate::support::dns::{Records, Security, World};
    let mut world = World::new();
    world.zone("example.net", Security::Secure);
    world.mx("example.net", 10, "mx1.example.net");
    world.a("mx1.example.net", "127.0.0.2");
    let behaviour = crate::support::mx::host("mx1.example.net", Default::default()).0;
    let world = crate::support::mx::MxWorld::start(world, vec![("127.0.0.2", behaviour)]);
    let mut tlsend = Tlsend::new();
    let log = tlsend.home().join("tlsend.log");
    tlsend.config(&format!(
        "logfile = \"{}\"\n[direct]\nresolver = \"{}\"\nport = {}\nlookup_timeout = 5\n\
         connect_timeout = 5\ntimeout = 5\nehlo_name = \"client.example.org\"\n",
        log.display(),
        world.dns.addr(),
        world.port
    ));
    tlsend
        .env("SSL_CERT_FILE", pki().ca_file())
        .args([
            "--require-tls",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(MESSAGE);
    assert_exit(&tlsend.run(), 0, &[]);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            (
                "host",
                &format!("mx1.example.net[127.0.0.2]:{}", world.port),
            ),
            ("tls", "TLSv1.3"),
            ("verify", "system-roots"),
            ("mx", "dnssec"),
            ("requiretls", "yes"),
            ("result", "delivered"),
        ],
    );
    assert_eq!(field(&fields(&lines[0]), "account"), None);
}

// covers: UX6
#[test]
fn ux6_a_log_that_cannot_be_written_warns_once_and_changes_nothing() {
    let server = TestServer::start(Behaviour::default(), pki());
    let mut tlsend = Tlsend::new();
    tlsend.config(&format!(
        "logfile = \"/nonexistent/tlsend/tlsend.log\"\n[account.default]\nhost = \"localhost\"\n\
         port = {}\nca_file = \"{}\"\ntimeout = 5\n",
        server.port,
        pki().ca_file().display()
    ));
    tlsend
        .args([
            "-f",
            "alice@example.org",
            "bob@example.net",
            "carol@example.net",
        ])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(&output, 0, &["/nonexistent/tlsend/tlsend.log"]);
    assert_eq!(
        output.stderr.matches("cannot write to the logfile").count(),
        1,
        "{}",
        output.stderr
    );
    assert_eq!(server.messages().len(), 1);
    assert!(tlsend.dead_letter().is_none());

    // The same for a failure: its exit status stays 69.
    let refusing = TestServer::start(
        Behaviour {
            requiretls: Advertise::Never,
            ..Behaviour::default()
        },
        pki(),
    );
    let mut tlsend = Tlsend::new();
    tlsend.config(&format!(
        "logfile = \"/nonexistent/tlsend.log\"\n[account.default]\nhost = \"localhost\"\n\
         port = {}\nca_file = \"{}\"\ntimeout = 5\n",
        refusing.port,
        pki().ca_file().display()
    ));
    tlsend
        .args([
            "--require-tls",
            "-f",
            "alice@example.org",
            "bob@example.net",
        ])
        .stdin(MESSAGE);
    let output = tlsend.run();
    assert_exit(&output, 69, &["5.7.30", "cannot write to the logfile"]);
}

// covers: UX6
#[test]
fn ux6_a_relative_logfile_is_a_configuration_error_naming_the_line() {
    let mut tlsend = Tlsend::new();
    tlsend.config("dead_letter = \"~/dead\"\nlogfile = \"tlsend.log\"\n");
    tlsend
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    assert_exit(&tlsend.run(), 78, &["config.toml:2:", "absolute path"]);
}

/// A syslog socket of the test's own, seen by tlsend as /dev/log: tlsend
/// runs in a private mount namespace (`unshare --mount`) whose /dev is a
/// tmpfs with the few devices it needs and the socket bound over /dev/log.
/// `None` (the test is skipped) without root or mount namespaces.
struct Syslog {
    dir: tempfile::TempDir,
    socket: UnixDatagram,
}

impl Syslog {
    fn start(test: &str) -> Option<Syslog> {
        let usable = rustix::process::geteuid().is_root()
            && std::process::Command::new("unshare")
                .args(["--mount", "true"])
                .status()
                .is_ok_and(|s| s.success());
        if !usable {
            eprintln!("NOTICE: {test} skipped: it needs root and unshare --mount (CI runs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = UnixDatagram::bind(dir.path().join("log.sock")).unwrap();
        let script = format!(
            "set -e\n\
             d={dir}\n\
             mkdir -p \"$d/dev\"\n\
             mount --rbind /dev \"$d/dev\"\n\
             mount -t tmpfs -o mode=0755 tlsend-test-dev /dev\n\
             for n in null zero full random urandom; do\n\
               touch /dev/$n; mount --bind \"$d/dev/$n\" /dev/$n\n\
             done\n\
             ln -s /proc/self/fd /dev/fd\n\
             touch /dev/log\n\
             mount --bind \"$d/log.sock\" /dev/log\n\
             exec \"$@\"\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("setup.sh"), script).unwrap();
        Some(Syslog { dir, socket })
    }

    /// Runs `tlsend` with this socket as /dev/log.
    fn run(&self, tlsend: &Tlsend) -> Output {
        let prelude = format!(
            "exec unshare --mount --propagation private sh {} \"$0\" \"$@\"",
            self.dir.path().join("setup.sh").display()
        );
        tlsend.start_after(&prelude).finish()
    }

    /// The datagrams received so far.
    fn datagrams(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 65536];
        while let Ok(n) = self.socket.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        received
    }
}

/// `<PRI>Mmm dd hh:mm:ss tlsend[PID]: ` and the rest.
#[track_caller]
fn rfc3164(datagram: &str, pri: u8) -> &str {
    let rest = datagram
        .strip_prefix(&format!("<{pri}>"))
        .unwrap_or_else(|| panic!("PRI {pri}: {datagram}"));
    let (stamp, rest) = rest.split_at(15);
    assert!(
        chrono::NaiveTime::parse_from_str(&stamp[7..], "%H:%M:%S").is_ok()
            && stamp.as_bytes()[3] == b' '
            && stamp[4..6].trim().parse::<u8>().is_ok()
            && [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
            ]
            .contains(&&stamp[..3]),
        "{datagram}"
    );
    let rest = rest.strip_prefix(" tlsend[").expect(datagram);
    let (pid, rest) = rest.split_once("]: ").expect(datagram);
    assert!(pid.parse::<u32>().is_ok(), "{datagram}");
    rest
}

// covers: UX6
#[test]
fn ux6_syslog_gets_rfc3164_datagrams_with_facility_mail() {
    let Some(syslog) = Syslog::start("the syslog test") else {
        return;
    };
    let server = TestServer::start(Behaviour::default(), pki());
    let (mut tlsend, log) = configured(&server, "syslog = true");
    tlsend.args(["--require-tls", "bob@example.net"]);
    let output = syslog.run(&tlsend);
    assert_exit(&output, 0, &[]);
    assert!(output.stderr.is_empty(), "{}", output.stderr);
    let received = syslog.datagrams();
    assert_eq!(received.len(), 1, "{received:?}");
    // mail.info: 2 * 8 + 6.
    let text = rfc3164(&received[0], 22);
    assert!(text.starts_with("from=<alice@example.org> to=<bob@example.net> "));
    assert_fields(text, &[("result", "delivered"), ("requiretls", "yes")]);
    // The same fields as the logfile's line, after its time stamp.
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].ends_with(&format!("]: {text}")), "{lines:?}");

    // mail.err for a failure; an account may turn syslog off.
    let refusing = TestServer::start(
        Behaviour {
            requiretls: Advertise::Never,
            ..Behaviour::default()
        },
        pki(),
    );
    let (mut tlsend, _) = configured(&refusing, "syslog = true");
    tlsend.args(["--require-tls", "bob@example.net"]);
    assert_exit(&syslog.run(&tlsend), 69, &[]);
    let received = syslog.datagrams();
    assert_eq!(received.len(), 1, "{received:?}");
    let text = rfc3164(&received[0], 19);
    assert_fields(text, &[("result", "failed"), ("status", "5.7.30")]);

    let mut tlsend = Tlsend::new();
    tlsend.config(&format!(
        "syslog = true\n[account.quiet]\nhost = \"localhost\"\nport = {}\nca_file = \"{}\"\n\
         syslog = false\n",
        server.port,
        pki().ca_file().display()
    ));
    tlsend
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    assert_exit(&syslog.run(&tlsend), 0, &[]);
    assert!(syslog.datagrams().is_empty());
}

// covers: UX6, SUB6
#[test]
fn ux6_no_secret_reaches_the_logfile_syslog_stdout_or_stderr() {
    let Some(syslog) = Syslog::start("the secret test") else {
        return;
    };
    const SECRET: &str = "s3cret horse battery";
    for mechanism in ["PLAIN", "LOGIN"] {
        let server = TestServer::start(
            Behaviour {
                auth: Some(AuthConfig {
                    mechanisms: vec![mechanism.into()],
                    user: "alice".into(),
                    secret: SECRET.into(),
                }),
                ..Behaviour::default()
            },
            pki(),
        );
        let mut tlsend = Tlsend::new();
        let log = tlsend.home().join("tlsend.log");
        let password = tlsend.home().join("password");
        std::fs::write(&password, format!("{SECRET}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        tlsend.config(&format!(
            "logfile = \"{}\"\nsyslog = true\n[account.default]\nhost = \"localhost\"\n\
             port = {}\nca_file = \"{}\"\nuser = \"alice\"\npassword_file = \"{}\"\n",
            log.display(),
            server.port,
            pki().ca_file().display(),
            password.display()
        ));
        tlsend
            .args([
                "-v",
                "--require-tls",
                "-f",
                "alice@example.org",
                "bob@example.net",
            ])
            .stdin(MESSAGE);
        let output = syslog.run(&tlsend);
        assert_exit(&output, 0, &["AUTH"]);
        assert_eq!(server.messages().len(), 1);
        let b64 = |s: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let leaks = [
            SECRET.to_string(),
            b64(SECRET.as_bytes()),
            b64(format!("\0alice\0{SECRET}").as_bytes()),
            b64(format!("alice\0alice\0{SECRET}").as_bytes()),
        ];
        let logged = std::fs::read_to_string(&log).unwrap();
        let datagrams = syslog.datagrams().join("\n");
        assert!(!logged.is_empty() && !datagrams.is_empty());
        for (name, text) in [
            ("logfile", &logged),
            ("syslog", &datagrams),
            ("stdout", &output.stdout),
            ("stderr", &output.stderr),
        ] {
            for leak in &leaks {
                assert!(
                    !text.contains(leak.as_str()),
                    "{mechanism}: {name} has {leak:?}:\n{text}"
                );
            }
        }
    }
}
