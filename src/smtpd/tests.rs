//! The dialogue driven with scripted input and a recording delivery.

use super::*;

/// Records each transaction and its data; replies `reply`, after reading
/// at most `read_limit` octets of the data.
struct Recorder {
    taken: Vec<(Transaction, Vec<u8>, Option<io::ErrorKind>)>,
    reply: Reply,
    read_limit: Option<usize>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            taken: Vec::new(),
            reply: Reply::new(250, code(2, 0, 0), "delivered"),
            read_limit: None,
        }
    }
}

impl Delivery for Recorder {
    fn deliver(&mut self, transaction: &Transaction, data: &mut dyn Read) -> Reply {
        let mut bytes = Vec::new();
        let result = match self.read_limit {
            Some(limit) => data.take(limit as u64).read_to_end(&mut bytes),
            None => data.read_to_end(&mut bytes),
        };
        self.taken
            .push((transaction.clone(), bytes, result.err().map(|e| e.kind())));
        self.reply.clone()
    }
}

/// Runs a dialogue over `input`; returns the replies, one per line, and how it ended.
fn run(input: &str, delivery: &mut Recorder) -> (Vec<String>, End) {
    let mut output = Vec::new();
    let end = serve(input.as_bytes(), &mut output, "host.example", delivery);
    let text = String::from_utf8(output).unwrap();
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    let lines = text.split_terminator("\r\n").map(str::to_string).collect();
    (lines, end)
}

fn codes_of(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| &l[..3])
        .collect()
}

const MESSAGE: &str = "EHLO client.example\r\n\
MAIL FROM:<alice@example.org>\r\n\
RCPT TO:<bob@example.net>\r\n\
DATA\r\n\
Subject: hi\r\n\
\r\n\
..leading dot\r\n\
.\r\n\
QUIT\r\n";

// covers: IN13
#[test]
fn in13_one_message_with_greeting_ehlo_and_unstuffed_data() {
    let mut recorder = Recorder::new();
    let (lines, end) = run(MESSAGE, &mut recorder);
    assert!(matches!(end, End::Quit), "{end:?}");
    assert_eq!(lines[0], "220 host.example ESMTP tlsend");
    let ehlo: Vec<&str> = lines[1..9].iter().map(String::as_str).collect();
    assert_eq!(
        ehlo,
        [
            "250-host.example",
            "250-PIPELINING",
            "250-SIZE",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250-DSN",
            "250-ENHANCEDSTATUSCODES",
            "250 REQUIRETLS"
        ]
    );
    assert_eq!(
        lines[9..],
        [
            "250 2.0.0 Ok",
            "250 2.0.0 Ok",
            "354 end data with <CR><LF>.<CR><LF>",
            "250 2.0.0 delivered",
            "221 2.0.0 host.example closing"
        ]
    );
    let (transaction, data, error) = &recorder.taken[0];
    assert_eq!(error, &None);
    assert_eq!(data, b"Subject: hi\r\n\r\n.leading dot\r\n");
    assert_eq!(transaction.sender.to_string(), "alice@example.org");
    assert_eq!(
        transaction.recipients[0].address.to_string(),
        "bob@example.net"
    );
}

// covers: IN13
#[test]
fn in13_several_messages_bare_lf_and_rset() {
    let input = "EHLO c\n\
MAIL FROM:<a@x.example>\n\
RCPT TO:<b@y.example>\n\
RSET\n\
RCPT TO:<c@y.example>\n\
MAIL FROM:<> BODY=8BITMIME\n\
RCPT TO:<c@y.example>\n\
RCPT TO:<d@y.example>\n\
DATA\n\
one\n\
.\n\
MAIL FROM:<e@x.example>\n\
RCPT TO:<f@y.example>\n\
DATA\n\
two\r\n\
.\r\n\
QUIT\n";
    let mut recorder = Recorder::new();
    let (lines, end) = run(input, &mut recorder);
    assert!(matches!(end, End::Quit));
    assert_eq!(
        codes_of(&lines),
        [
            "220", "250", "250", "250", "250", "503", "250", "250", "250", "354", "250", "250",
            "250", "354", "250", "221"
        ]
    );
    assert_eq!(recorder.taken.len(), 2);
    let (first, data, _) = &recorder.taken[0];
    assert_eq!(first.sender, ReversePath::Null);
    assert_eq!(first.body, Some(Body::EightBitMime));
    assert_eq!(first.recipients.len(), 2);
    assert_eq!(data, b"one\n");
    assert_eq!(recorder.taken[1].1, b"two\r\n");
    assert_eq!(recorder.taken[1].0.body, None);
}

// covers: IN13
#[test]
fn in13_pipelined_commands_are_answered_in_order() {
    // One write holding every command up to DATA, as a pipelining client sends.
    let input = "EHLO c\r\nMAIL FROM:<a@x.example> SIZE=12 REQUIRETLS RET=HDRS ENVID=id+2B1\r\n\
RCPT TO:<b@y.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+40y.example\r\n\
RCPT TO:<bad address@y.example>\r\nRCPT TO:<c@y.example> NOTIFY=FAILURE,DELAY\r\nDATA\r\n\
x\r\n.\r\nQUIT\r\n";
    let mut recorder = Recorder::new();
    let (lines, _) = run(input, &mut recorder);
    assert_eq!(
        codes_of(&lines),
        [
            "220", "250", "250", "250", "501", "250", "354", "250", "221"
        ]
    );
    let (t, _, _) = &recorder.taken[0];
    assert!(t.requiretls);
    assert_eq!(t.size, Some(12));
    assert_eq!(t.ret, Some(Ret::Hdrs));
    assert_eq!(t.envid.as_deref(), Some("id+1"));
    assert_eq!(
        t.notify,
        Some(Notify::On {
            success: false,
            failure: true,
            delay: true
        })
    );
    assert_eq!(t.recipients[0].orcpt.as_deref(), Some("rfc822;b@y.example"));
    assert_eq!(t.recipients.len(), 2);
}

// covers: IN13
#[test]
fn in13_sequence_errors_are_503_5_5_1() {
    let input = "RCPT TO:<b@y.example>\r\nDATA\r\nEHLO c\r\nMAIL FROM:<a@x.example>\r\n\
MAIL FROM:<a@x.example>\r\nDATA\r\nQUIT\r\n";
    let mut recorder = Recorder::new();
    let (lines, _) = run(input, &mut recorder);
    assert_eq!(lines[1], "503 5.5.1 send MAIL FROM first");
    assert_eq!(lines[2], "503 5.5.1 send MAIL FROM first");
    assert!(lines.contains(&"503 5.5.1 nested MAIL command".to_string()));
    assert!(lines.contains(&"554 5.5.1 no valid recipients".to_string()));
    assert!(recorder.taken.is_empty());
}

// covers: IN13
#[test]
fn in13_syntax_and_parameter_errors_have_their_codes() {
    let cases: &[(&str, &str)] = &[
        ("FOO", "500 5.5.2"),
        ("MAIL TO:<a@x.example>", "501 5.5.4"),
        ("MAIL FROM:<a@x.example", "501 5.1.7"),
        ("MAIL FROM:", "501 5.1.7"),
        ("MAIL FROM:<a b@x.example>", "501 5.1.7"),
        ("MAIL FROM:<a@x.example> AUTH=<>", "555 5.5.4"),
        ("MAIL FROM:<a@x.example> BODY=BINARYMIME", "501 5.5.4"),
        ("MAIL FROM:<a@x.example> SIZE=12x", "501 5.5.4"),
        (
            "MAIL FROM:<a@x.example> SIZE=123456789012345678901",
            "501 5.5.4",
        ),
        ("MAIL FROM:<a@x.example> RET=ALL", "501 5.5.4"),
        ("MAIL FROM:<a@x.example> ENVID=a=b", "501 5.5.4"),
        ("MAIL FROM:<a@x.example> ENVID=+0A", "501 5.5.4"),
        ("MAIL FROM:<a@x.example> REQUIRETLS=YES", "501 5.5.4"),
        ("MAIL FROM:<a@x.example> SMTPUTF8 SMTPUTF8", "501 5.5.4"),
        ("MAIL FROM:<jörg@x.example>", "553 5.6.7"),
        ("HELO", "501 5.5.4"),
        ("DATA now", "501 5.5.4"),
        ("VRFY", "501 5.5.4"),
        ("VRFY bob", "252 2.5.2"),
        ("EXPN list", "502 5.5.1"),
        ("STARTTLS", "502 5.5.1"),
        ("AUTH PLAIN", "502 5.5.1"),
        ("NOOP whatever", "250 2.0.0"),
        ("RSET now", "501 5.5.4"),
        ("MAIL FROM:<a@x.example>\0", "500 5.5.2"),
    ];
    for (command, expected) in cases {
        let mut recorder = Recorder::new();
        let (lines, _) = run(&format!("EHLO c\r\n{command}\r\nQUIT\r\n"), &mut recorder);
        let reply = &lines[lines.len() - 2];
        assert!(reply.starts_with(expected), "{command:?}: {reply}");
    }
}

// covers: IN13
#[test]
fn in13_rcpt_parameters_and_limits() {
    let cases: &[(&str, &str)] = &[
        ("RCPT TO:<b@y.example> NOTIFY=NEVER", "250 2.0.0"),
        ("RCPT TO:<b@y.example> NOTIFY=NEVER,FAILURE", "501 5.5.4"),
        ("RCPT TO:<b@y.example> NOTIFY=SUCCESS,SUCCESS", "501 5.5.4"),
        ("RCPT TO:<b@y.example> ORCPT=rfc822", "501 5.5.4"),
        ("RCPT TO:<b@y.example> ORCPT=rfc822;a+zz", "501 5.5.4"),
        ("RCPT TO:<b@y.example> XFOO", "555 5.5.4"),
        ("RCPT TO:<>", "501 5.1.3"),
        ("RCPT TO:<jörg@y.example>", "553 5.6.7"),
        ("RCPT TO:<postmaster>", "250 2.0.0"),
        ("RCPT TO:<@relay.example:b@y.example>", "250 2.0.0"),
        ("RCPT TO: <b@y.example>", "250 2.0.0"),
        ("RCPT TO:b@y.example", "250 2.0.0"),
        ("RCPT TO:b@y.example NOTIFY=NEVER", "250 2.0.0"),
        ("rcpt to:<b@y.example>", "250 2.0.0"),
    ];
    for (command, expected) in cases {
        let mut recorder = Recorder::new();
        let input = format!("EHLO c\r\nMAIL FROM:<a@x.example>\r\n{command}\r\nQUIT\r\n");
        let (lines, _) = run(&input, &mut recorder);
        let reply = &lines[lines.len() - 2];
        assert!(reply.starts_with(expected), "{command:?}: {reply}");
    }
    // A different NOTIFY is deferred to another transaction.
    let input = "EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example> NOTIFY=NEVER\r\n\
RCPT TO:<c@y.example>\r\nQUIT\r\n";
    let (lines, _) = run(input, &mut Recorder::new());
    assert!(lines[lines.len() - 2].starts_with("452 4.5.3"), "{lines:?}");
    // UTF-8 addresses with SMTPUTF8.
    let input =
        "EHLO c\r\nMAIL FROM:<jörg@x.example> SMTPUTF8\r\nRCPT TO:<zoë@y.example>\r\nQUIT\r\n";
    let (lines, _) = run(input, &mut Recorder::new());
    assert_eq!(codes_of(&lines)[2..], ["250", "250", "221"], "{lines:?}");
    // Too many recipients.
    let mut input = String::from("EHLO c\r\nMAIL FROM:<a@x.example>\r\n");
    for i in 0..=MAX_RECIPIENTS {
        input.push_str(&format!("RCPT TO:<r{i}@y.example>\r\n"));
    }
    let (lines, _) = run(&input, &mut Recorder::new());
    assert!(lines.last().unwrap().starts_with("452 4.5.3"));
}

// covers: IN13
#[test]
fn in13_parameters_after_an_address_without_brackets_are_kept() {
    // Postfix and sendmail take a path without angle brackets; its
    // parameters, REQUIRETLS above all, must not be dropped or refused.
    let mut recorder = Recorder::new();
    let (lines, _) = run(
        "EHLO c\r\nMAIL FROM:a@x.example REQUIRETLS SIZE=5\r\nRCPT TO:b@y.example\r\nDATA\r\nx\r\n.\r\n",
        &mut recorder,
    );
    assert_eq!(
        codes_of(&lines)[2..],
        ["250", "250", "354", "250"],
        "{lines:?}"
    );
    let (t, _, _) = &recorder.taken[0];
    assert!(t.requiretls);
    assert_eq!(t.size, Some(5));
    assert_eq!(t.sender.to_string(), "a@x.example");
}

// covers: IN13
#[test]
fn in13_parameters_need_ehlo_but_mail_needs_no_greeting() {
    let (lines, _) = run(
        "MAIL FROM:<a@x.example>\r\nRSET\r\nHELO c\r\nMAIL FROM:<a@x.example> SIZE=1\r\n",
        &mut Recorder::new(),
    );
    assert_eq!(lines[1], "250 2.0.0 Ok");
    assert_eq!(lines[3], "250 host.example");
    assert!(lines[4].starts_with("555 5.5.4"), "{lines:?}");
}

// covers: IN13
#[test]
fn in13_long_lines_are_refused_and_the_dialogue_goes_on() {
    let long = "x".repeat(MAX_COMMAND_LINE + 10);
    let (lines, _) = run(
        &format!("EHLO c\r\nNOOP {long}\r\nNOOP\r\n"),
        &mut Recorder::new(),
    );
    assert_eq!(
        lines[lines.len() - 2..],
        ["500 5.5.2 line too long", "250 2.0.0 Ok"]
    );
}

// covers: IN13
#[test]
fn in13_eof_in_data_fails_the_reader_and_gets_no_reply() {
    let input = "EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n\
Subject: cut\r\n\r\nhalf a line";
    let mut recorder = Recorder::new();
    let (lines, end) = run(input, &mut recorder);
    assert!(matches!(end, End::Eof { open: true }), "{end:?}");
    assert_eq!(lines.last().unwrap(), "354 end data with <CR><LF>.<CR><LF>");
    let (_, data, error) = &recorder.taken[0];
    assert_eq!(error, &Some(io::ErrorKind::UnexpectedEof));
    assert_eq!(data, b"Subject: cut\r\n\r\nhalf a line");
    // After MAIL only: open as well; after the reply to a dot: not open.
    let (_, end) = run("MAIL FROM:<a@x.example>\r\n", &mut Recorder::new());
    assert!(matches!(end, End::Eof { open: true }));
    let (_, end) = run(&MESSAGE.replace("QUIT\r\n", ""), &mut Recorder::new());
    assert!(matches!(end, End::Eof { open: false }));
    // ".\r" then EOF is not the end either.
    let mut recorder = Recorder::new();
    let (_, end) = run(
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nx\r\n.\r",
        &mut recorder,
    );
    assert!(matches!(end, End::Eof { open: true }));
    assert_eq!(recorder.taken[0].2, Some(io::ErrorKind::UnexpectedEof));
}

// covers: IN13
#[test]
fn in13_data_is_drained_when_the_delivery_stops_reading() {
    let mut recorder = Recorder::new();
    recorder.read_limit = Some(3);
    recorder.reply = Reply::new(554, code(5, 6, 0), "refused");
    let body = "line\r\n".repeat(10_000);
    let input = format!(
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n{body}.\r\nNOOP\r\nQUIT\r\n"
    );
    let (lines, end) = run(&input, &mut recorder);
    assert!(matches!(end, End::Quit));
    assert_eq!(
        lines[lines.len() - 3..],
        [
            "554 5.6.0 refused",
            "250 2.0.0 Ok",
            "221 2.0.0 host.example closing"
        ]
    );
    assert_eq!(recorder.taken[0].1, b"lin");
}

// covers: IN13
#[test]
fn in13_data_reader_in_every_split() {
    // The same data read through every buffer size ends at the same place
    // with the same bytes: dot states survive read boundaries.
    let wire = b"a\r\n..b\r\n.c\n.\rd\r\n..\r\n.\r\nNOOP\r\n";
    // A bare LF ends a line only for a client that writes bare LFs.
    for (ends, expected) in [
        (LineEnds::AnyLf, &b"a\r\n.b\r\nc\n\rd\r\n.\r\n"[..]),
        (LineEnds::Crlf, &b"a\r\n.b\r\nc\n.\rd\r\n.\r\n"[..]),
    ] {
        for capacity in 1..wire.len() {
            for out in [1, 2, 3, 7, 64] {
                let mut input = io::BufReader::with_capacity(capacity, &wire[..]);
                let mut reader = DataReader::new(&mut input, ends);
                let mut got = Vec::new();
                let mut buf = vec![0u8; out];
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(reader.finished());
                assert_eq!(
                    got, expected,
                    "{ends:?}, capacity {capacity}, reads of {out}"
                );
                let mut rest = String::new();
                input.read_to_string(&mut rest).unwrap();
                assert_eq!(rest, "NOOP\r\n");
            }
        }
    }
}

// covers: IN13: SMTP smuggling. A message whose content holds "\n.\n"
// (a library that dot-stuffs only after CRLF passes it on) does not end
// early: what follows is content, not commands of the dialogue.
#[test]
fn in13_a_bare_lf_dot_cannot_end_the_data_of_a_crlf_client() {
    let mut recorder = Recorder::new();
    let input = "EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n\
                 Subject: s\r\n\r\nhi\n.\nMAIL FROM:<evil@x.example>\n.\r\nRCPT TO:<c@z.example>\r\n\
                 .\r\nQUIT\r\n";
    let (lines, end) = run(input, &mut recorder);
    assert!(matches!(end, End::Quit), "{lines:?}");
    assert_eq!(recorder.taken.len(), 1, "{lines:?}");
    let body = String::from_utf8_lossy(&recorder.taken[0].1).into_owned();
    assert!(
        body.ends_with("hi\n.\nMAIL FROM:<evil@x.example>\n.\r\nRCPT TO:<c@z.example>\r\n"),
        "{body:?}"
    );
    // An LF-only client still ends its data with a bare-LF dot.
    let mut recorder = Recorder::new();
    let input = "HELO c\nMAIL FROM:<a@x.example>\nRCPT TO:<b@y.example>\nDATA\nhi\n.\nQUIT\n";
    let (lines, end) = run(input, &mut recorder);
    assert!(matches!(end, End::Quit), "{lines:?}");
    assert_eq!(recorder.taken[0].1, b"hi\n");
}

#[test]
fn replies_are_one_line_and_bounded() {
    let reply = Reply::new(550, code(5, 1, 1), format!("a\r\n250 b{}", "é".repeat(400)));
    let text = reply.to_string();
    assert!(text.starts_with("550 5.1.1 a  250 b"));
    assert!(!text.contains(['\r', '\n']));
    assert!(text.len() <= 512 - 2, "{}", text.len());
}

/// Stops after the first message.
struct Stopper(Recorder);

impl Delivery for Stopper {
    fn deliver(&mut self, transaction: &Transaction, data: &mut dyn Read) -> Reply {
        self.0.deliver(transaction, data)
    }
    fn stopping(&self) -> bool {
        true
    }
}

// covers: IN13
#[test]
fn in13_stopping_closes_with_421_after_the_reply() {
    let mut output = Vec::new();
    let mut stopper = Stopper(Recorder::new());
    let end = serve(MESSAGE.as_bytes(), &mut output, "h", &mut stopper);
    assert!(matches!(end, End::Stopped));
    let text = String::from_utf8(output).unwrap();
    assert!(
        text.ends_with("250 2.0.0 delivered\r\n421 4.3.0 h tlsend was told to stop; closing\r\n")
    );
}

// covers: IN13: the data reader agrees with a plain model of RFC 5321
// 4.5.2 (lines split at CRLF, or at any LF for an LF-only client; the
// first line that is "." ends; a leading dot of any other line dropped),
// whatever the input and however it is split into reads.
mod data_reader_model {
    use super::*;
    use proptest::prelude::*;

    /// The bytes passed on and the length of the data on the wire, or
    /// `None` when the input ends before the final dot.
    fn model(wire: &[u8], ends: LineEnds) -> Option<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < wire.len() {
            let mut end = start;
            let line_end = loop {
                let i = end + wire[end..].iter().position(|&b| b == b'\n')?;
                if ends == LineEnds::AnyLf || (i > start && wire[i - 1] == b'\r') {
                    break i + 1;
                }
                end = i + 1;
            };
            let line = &wire[start..line_end];
            if line == b".\r\n" || (ends == LineEnds::AnyLf && line == b".\n") {
                return Some((out, line_end));
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            start = line_end;
        }
        None
    }

    proptest! {
        #[test]
        fn matches_the_model(
            wire in proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')], 0..40),
            capacity in 1usize..9,
            out in 1usize..9,
            crlf in any::<bool>(),
        ) {
            let ends = if crlf { LineEnds::Crlf } else { LineEnds::AnyLf };
            let mut input = io::BufReader::with_capacity(capacity, &wire[..]);
            let mut reader = DataReader::new(&mut input, ends);
            let mut got = Vec::new();
            let mut buf = vec![0u8; out];
            let result = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break Err(e.kind()),
                }
            };
            let finished = reader.finished();
            let mut rest = Vec::new();
            input.read_to_end(&mut rest).unwrap();
            match model(&wire, ends) {
                Some((expected, used)) => {
                    prop_assert_eq!(result, Ok(()));
                    prop_assert!(finished);
                    prop_assert_eq!(got, expected);
                    prop_assert_eq!(&rest[..], &wire[used..]);
                }
                None => prop_assert_eq!(result, Err(io::ErrorKind::UnexpectedEof)),
            }
        }
    }
}
