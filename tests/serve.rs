//! `-bs` (IN13) through the real binary, driven by a real SMTP client
//! library: Python's smtplib talks to tlsend over a socket pair whose other
//! end is tlsend's standard input and output, and tlsend delivers to the
//! recording test server. Each test checks the replies the client saw,
//! what reached the server, and the exit status.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Advertise, Behaviour, Replies, TestServer, Tlsend, pki};

/// Defines `smtp` (an smtplib.SMTP on the socket, connected), `sock`,
/// `out(**fields)` (one JSON line to the test) and `message(subject,
/// extra_header)`.
const PRELUDE: &str = r#"
import json, smtplib, socket, sys
sock = socket.socket(fileno=0)
sock.settimeout(30)
class Pipe(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return sock
def out(**fields):
    print(json.dumps(fields), flush=True)
def message(subject, extra=""):
    return ("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
            + extra + "Subject: " + subject + "\r\n\r\nHello Bob.\r\n.leading dot\r\n")
def send(sender, recipients, msg, mail_options=(), rcpt_options=()):
    try:
        refused = smtp.sendmail(sender, recipients, msg, list(mail_options), list(rcpt_options))
        out(step="sent", code=250, reply=smtp.last_reply, refused=sorted(refused))
    except smtplib.SMTPDataError as e:
        out(step="sent", code=e.smtp_code, reply=e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        out(step="sent", code=0, refused=sorted(e.recipients))
def rest():
    # Whatever tlsend writes after QUIT's reply: nothing, then EOF.
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    out(step="rest", data=data.decode("latin-1"))
smtp = Pipe()
code, greeting = smtp.connect("tlsend", 25)
out(step="connect", code=code, greeting=greeting.decode())
orig_getreply = smtp.getreply
def getreply():
    code, text = orig_getreply()
    smtp.last_reply = "%d %s" % (code, text.decode())
    return code, text
smtp.getreply = getreply
"#;

/// What a dialogue produced: the client's JSON lines, and tlsend's exit
/// status and standard error.
struct Dialogue {
    steps: Vec<Value>,
    code: Option<i32>,
    stderr: String,
}

impl Dialogue {
    /// The steps named `name`, in order.
    fn steps(&self, name: &str) -> Vec<&Value> {
        self.steps.iter().filter(|s| s["step"] == name).collect()
    }

    /// The reply codes and texts of the messages sent.
    fn sent(&self) -> Vec<(i64, String)> {
        self.steps("sent")
            .iter()
            .map(|s| {
                (
                    s["code"].as_i64().unwrap_or(-1),
                    s["reply"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// Runs `script` (after [`PRELUDE`]) in python3 against `tlsend -bs`.
fn dialogue(tlsend: &mut Tlsend, script: &str) -> Dialogue {
    tlsend.arg("-bs");
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    let mut child = tlsend.spawn_on(theirs);
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(ours)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the -bs tests");
    let deadline = Instant::now() + Duration::from_secs(60);
    let python_status = loop {
        if let Some(status) = python.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = python.kill();
            let _ = child.kill();
            panic!("the smtplib client ran for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    python
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut python_err = String::new();
    python
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut python_err)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        python_status.success(),
        "the client failed: {python_err}\ntlsend's stderr: {stderr}"
    );
    let steps = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    Dialogue {
        steps,
        code: status.code(),
        stderr,
    }
}

fn server(behaviour: Behaviour) -> TestServer {
    TestServer::start(behaviour, pki())
}

fn relay_to(server: &TestServer) -> Tlsend {
    Tlsend::to_server(server, pki())
}

// covers: IN13
#[test]
fn in13_one_message_through_smtplib_is_delivered_and_answered_250() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
ehlo = smtp.ehlo("client.example")
out(step="ehlo", code=ehlo[0], features=sorted(smtp.esmtp_features))
send("alice@example.org", ["bob@example.net"], message("one"))
out(step="quit", code=smtp.docmd("QUIT")[0])
rest()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.steps("connect")[0]["code"], 220);
    let features = &run.steps("ehlo")[0]["features"];
    for keyword in [
        "pipelining",
        "size",
        "8bitmime",
        "smtputf8",
        "dsn",
        "enhancedstatuscodes",
        "requiretls",
    ] {
        assert!(
            features.as_array().unwrap().iter().any(|f| f == keyword),
            "{keyword} not in {features}"
        );
    }
    let sent = run.sent();
    assert_eq!(sent[0].0, 250);
    assert!(
        sent[0].1.contains("delivered to bob@example.net"),
        "{sent:?}"
    );
    assert_eq!(run.steps("quit")[0]["code"], 221);
    assert_eq!(run.steps("rest")[0]["data"], "", "only replies on stdout");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].mail_from.split(' ').next(), Some("MAIL"));
    assert!(
        messages[0]
            .mail_from
            .starts_with("MAIL FROM:<alice@example.org>")
    );
    assert_eq!(messages[0].rcpt_to, ["RCPT TO:<bob@example.net>"]);
    let text = messages[0].text();
    assert!(text.contains("Subject: one\r\n"), "{text}");
    // Dot-stuffing undone by tlsend, done again on the way out.
    assert!(text.contains("\r\n.leading dot\r\n"), "{text}");
    assert!(!messages[0].mail_from.contains("REQUIRETLS"));
    assert!(tlsend.dead_letter().is_none());
}

// covers: IN13
#[test]
fn in13_several_messages_and_rset_in_one_dialogue() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net"], message("first"))
# A transaction abandoned with RSET sends nothing.
smtp.mail("mallory@example.org")
smtp.rcpt("carol@example.net")
out(step="rset", code=smtp.rset()[0])
send("alice@example.org", ["bob@example.net", "dave@example.net"], message("second"))
send("<>", ["bob@example.net"], message("third"))
out(step="quit", code=smtp.quit()[0])
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.steps("rset")[0]["code"], 250);
    let codes: Vec<i64> = run.sent().iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [250, 250, 250], "{:?}", run.sent());
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    let subjects: Vec<bool> = ["first", "second", "third"]
        .iter()
        .zip(&messages)
        .map(|(s, m)| m.text().contains(&format!("Subject: {s}\r\n")))
        .collect();
    assert_eq!(subjects, [true, true, true]);
    assert_eq!(
        messages[1].rcpt_to,
        ["RCPT TO:<bob@example.net>", "RCPT TO:<dave@example.net>"]
    );
    assert!(messages[2].mail_from.starts_with("MAIL FROM:<>"));
    assert!(!server.lines().iter().any(|l| l.contains("mallory")));
    assert!(!server.lines().iter().any(|l| l.contains("carol")));
}

// covers: IN13
#[test]
fn in13_requiretls_on_mail_from_reaches_the_relay() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
# REQUIRETLS wins over the field (RFC 8689 4.1), which is removed.
send("alice@example.org", ["bob@example.net"], message("secret", "TLS-Required: No\r\n"),
     mail_options=["REQUIRETLS", "RET=FULL", "ENVID=abc+2B1"],
     rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;list+2Bops@example.org"])
smtp.quit()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.sent()[0].0, 250, "{:?} {}", run.sent(), run.stderr);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0].mail_from;
    assert!(mail.contains(" REQUIRETLS"), "{mail}");
    // RFC 8689 5: a REQUIRETLS message's bounce carries headers only.
    assert!(mail.contains(" RET=HDRS"), "{mail}");
    assert!(mail.contains(" ENVID=abc+2B1"), "{mail}");
    assert!(messages[0].tls);
    // RFC 3461 4.2: the client's ORCPT is relayed as it came.
    assert_eq!(
        messages[0].rcpt_to,
        ["RCPT TO:<bob@example.net> NOTIFY=FAILURE ORCPT=rfc822;list+2Bops@example.org"]
    );
    assert!(!messages[0].text().contains("TLS-Required"));
}

// covers: IN13
#[test]
fn in13_requiretls_to_a_relay_without_it_sends_nothing_and_replies_5_7_30() {
    let server = server(Behaviour {
        requiretls: Advertise::Never,
        ..Behaviour::default()
    });
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net"], message("secret"), mail_options=["REQUIRETLS"])
smtp.quit()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (code, reply) = &run.sent()[0];
    assert_eq!(*code, 550, "{reply}");
    assert!(reply.starts_with("5.7.30 "), "{reply}");
    assert!(!server.saw("MAIL"), "{:?}", server.lines());
    assert!(server.messages().is_empty());
    // The client keeps the message: it was told.
    assert!(tlsend.dead_letter().is_none());
}

// covers: IN13
#[test]
fn in13_tls_required_no_field_makes_the_message_optional() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    tlsend.arg("-v");
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net"], message("relaxed", "TLS-Required: No\r\n"))
smtp.docmd("QUIT")
rest()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.sent()[0].0, 250);
    // -v writes the whole relay dialogue, to standard error only.
    assert!(run.stderr.contains("TLS mode optional"), "{}", run.stderr);
    assert_eq!(run.steps("rest")[0]["data"], "");
    let messages = server.messages();
    assert!(messages[0].text().contains("TLS-Required: No\r\n"));
    assert!(!messages[0].mail_from.contains("REQUIRETLS"));
}

// covers: IN13
#[test]
fn in13_a_recipient_the_relay_refuses() {
    let server = server(Behaviour {
        replies: Replies {
            rcpt_for: vec![("nobody@example.net".into(), "550 5.1.1 no such user".into())],
            ..Replies::default()
        },
        ..Behaviour::default()
    });
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["nobody@example.net"], message("alone"))
send("alice@example.org", ["bob@example.net", "nobody@example.net"], message("both"))
smtp.quit()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sent = run.sent();
    // The only recipient refused: the refusal is the reply.
    assert_eq!(sent[0].0, 550, "{sent:?}");
    assert!(sent[0].1.starts_with("5.1.1 "), "{sent:?}");
    // One of two refused: 250, naming the one who did not get it (a 5xx
    // would have the client send it again to bob).
    assert_eq!(sent[1].0, 250, "{sent:?}");
    assert!(
        sent[1].1.contains("delivered to bob@example.net")
            && sent[1]
                .1
                .contains("not delivered to nobody@example.net (5.1.1"),
        "{sent:?}"
    );
    // The sender is told by mail (-oem is the -bs default): the second
    // message, then the notice from <>.
    let messages = server.messages();
    let notices: Vec<_> = messages
        .iter()
        .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
        .collect();
    assert_eq!(notices.len(), 1, "{messages:?}");
    assert_eq!(notices[0].rcpt_to[0], "RCPT TO:<alice@example.org>");
    assert!(notices[0].text().contains("5.1.1"));
    let delivered: Vec<_> = messages
        .iter()
        .filter(|m| m.text().contains("Subject: both"))
        .collect();
    assert_eq!(delivered[0].rcpt_accepted, ["RCPT TO:<bob@example.net>"]);
}

// covers: IN13
#[test]
fn in13_a_failed_delivery_is_reported_at_the_final_dot_with_its_code() {
    for (refusal, code, status) in [
        ("554 5.7.1 message refused as spam", 554, "5.7.1 "),
        ("451 4.3.0 try again later", 451, "4.3.0 "),
    ] {
        let server = server(Behaviour {
            replies: Replies {
                end_of_data: Some(refusal.into()),
                ..Replies::default()
            },
            ..Behaviour::default()
        });
        let mut tlsend = relay_to(&server);
        let run = dialogue(
            &mut tlsend,
            r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net"], message("refused"))
smtp.quit()
"#,
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let (got, reply) = &run.sent()[0];
        // 554 from the relay is a 5.7.1: 550 or 554 both say "refused for good".
        if code == 554 {
            assert!(*got == 550 || *got == 554, "{got} {reply}");
        } else {
            assert_eq!(*got, code, "{reply}");
        }
        assert!(reply.starts_with(status), "{reply}");
        assert!(reply.contains(&refusal[10..]), "{reply}");
        // The client keeps the message: nothing saved, nothing mailed back.
        assert!(tlsend.dead_letter().is_none());
        assert_eq!(server.messages().len(), 1, "no notice was sent");
    }
}

// covers: IN13
#[test]
fn in13_pipelined_commands_get_their_replies_in_order() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
# RFC 2920: the whole envelope in one write, then the data after 354.
sock.sendall(b"MAIL FROM:<alice@example.org> BODY=8BITMIME SIZE=100\r\n"
             b"RCPT TO:<bob@example.net>\r\nRCPT TO:<bad address>\r\n"
             b"RCPT TO:<carol@example.net>\r\nDATA\r\n")
replies = [smtp.getreply() for _ in range(5)]
out(step="envelope", codes=[c for c, _ in replies])
sock.sendall(b"Subject: piped\r\n\r\nbody\r\n..\r\n.\r\nNOOP\r\nQUIT\r\n")
final = smtp.getreply()
out(step="sent", code=final[0], reply=final[1].decode())
out(step="noop", code=smtp.getreply()[0])
out(step="quit", code=smtp.getreply()[0])
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.steps("envelope")[0]["codes"],
        serde_json::json!([250, 250, 501, 250, 354])
    );
    assert_eq!(run.sent()[0].0, 250, "{:?}", run.sent());
    assert_eq!(run.steps("noop")[0]["code"], 250);
    assert_eq!(run.steps("quit")[0]["code"], 221);
    let messages = server.messages();
    assert_eq!(
        messages[0].rcpt_to,
        ["RCPT TO:<bob@example.net>", "RCPT TO:<carol@example.net>"]
    );
    // ".." in the data is a "." line of the message, not its end.
    assert!(
        messages[0].text().ends_with("body\r\n.\r\n"),
        "{:?}",
        messages[0].text()
    );
}

// covers: IN13
#[test]
fn in13_eof_in_the_middle_of_data_delivers_nothing() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
smtp.mail("alice@example.org")
smtp.rcpt("bob@example.net")
code, _ = smtp.docmd("DATA")
out(step="data", code=code)
sock.sendall(b"Subject: cut short\r\n\r\nthe first half")
sock.shutdown(socket.SHUT_WR)
rest()
"#,
    );
    assert_eq!(run.steps("data")[0]["code"], 354);
    assert_eq!(
        run.steps("rest")[0]["data"],
        "",
        "no reply to a dot never sent"
    );
    assert_eq!(run.code, Some(75), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    assert!(!server.saw("MAIL"), "{:?}", server.lines());
    assert!(tlsend.dead_letter().is_none());
}

// covers: IN13
#[test]
fn in13_eof_between_transactions_is_a_clean_end() {
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net"], message("then gone"))
sock.shutdown(socket.SHUT_WR)
rest()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(server.messages().len(), 1);
}

// covers: IN13
#[test]
fn in13_a_hand_written_dialogue_over_a_pipe() {
    // The way a shell script or `sendmail -bs < file` talks: no client
    // library, bare LF line ends, no EHLO.
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    tlsend.arg("-bs").stdin(
        "MAIL FROM:<alice@example.org>\nRCPT TO:<bob@example.net>\nDATA\nSubject: script\n\nhi\n.\nQUIT\n",
    );
    let output = tlsend.run();
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let lines: Vec<&str> = output.stdout.split_terminator("\r\n").collect();
    assert!(lines[0].starts_with("220 "), "{lines:?}");
    assert_eq!(
        lines[1..4],
        [
            "250 2.0.0 Ok",
            "250 2.0.0 Ok",
            "354 end data with <CR><LF>.<CR><LF>"
        ]
    );
    assert!(
        lines[4].starts_with("250 2.0.0 Ok: delivered to bob@example.net"),
        "{lines:?}"
    );
    assert!(lines[5].starts_with("221 2.0.0 "), "{lines:?}");
    assert_eq!(lines.len(), 6);
    assert!(server.messages()[0].text().contains("Subject: script\r\n"));
}

// covers: IN13
#[test]
fn in13_a_signal_between_messages_ends_the_dialogue() {
    // After a first delivery (whose runtime caught SIGTERM for its own
    // use), a SIGTERM while tlsend waits for the next command still ends it.
    use std::io::{BufRead, BufReader, Write};
    let server = server(Behaviour::default());
    let mut tlsend = relay_to(&server);
    tlsend.arg("-bs");
    let mut child = tlsend.spawn();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin
        .write_all(
            b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n\
              Subject: before the signal\r\n\r\nhi\r\n.\r\n",
        )
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "tlsend closed stdout"
        );
        if line.starts_with("250 2.0.0 Ok: delivered") {
            break;
        }
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tlsend -bs outlived SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    drop(stdin);
    assert_eq!(server.messages().len(), 1);
}

// covers: IN13, FAIL4
#[test]
fn in13_a_250_with_a_recipient_neither_delivered_nor_queued_tells_the_sender() {
    // The reply is 250 because bob got the message; carol met a temporary
    // failure and no queue is in service, so nothing will retry her: after
    // a 250 the sender must hear of it by mail (RFC 5321 6.1), or the
    // message is lost for her without anyone being told.
    let server = server(Behaviour {
        replies: Replies {
            rcpt_for: vec![("carol@example.net".into(), "451 4.2.0 mailbox busy".into())],
            ..Replies::default()
        },
        ..Behaviour::default()
    });
    let mut tlsend = relay_to(&server);
    tlsend.config_file("queue = false\n");
    let run = dialogue(
        &mut tlsend,
        r#"
smtp.ehlo("client.example")
send("alice@example.org", ["bob@example.net", "carol@example.net"], message("both"))
smtp.quit()
"#,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sent = run.sent();
    assert_eq!(sent[0].0, 250, "{sent:?}");
    assert!(
        sent[0]
            .1
            .contains("not delivered to carol@example.net (4.2.0"),
        "{sent:?}"
    );
    let messages = server.messages();
    let notices: Vec<_> = messages
        .iter()
        .filter(|m| m.mail_from.starts_with("MAIL FROM:<>"))
        .collect();
    assert_eq!(notices.len(), 1, "{messages:?}\n{}", run.stderr);
    assert_eq!(notices[0].rcpt_to[0], "RCPT TO:<alice@example.org>");
    let text = notices[0].text();
    assert!(text.contains("carol@example.net"), "{text}");
    assert!(!text.contains("Final-Recipient: rfc822;bob@"), "{text}");
}
