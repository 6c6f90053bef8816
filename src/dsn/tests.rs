use mail_parser::{MessageParser, MessagePart, MimeHeaders};

use super::*;
use crate::status::codes;

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn time(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

/// The original, with LF lines as a local program hands it over; one body
/// line is longer than 76 octets, which lettre would quote-print.
fn original() -> Vec<u8> {
    let mut m = b"From: Alice <alice@example.org>\n\
To: bob@example.net, carol@example.com\n\
Subject: Quarterly report\n\
Message-ID: <q3@example.org>\n\
\n\
Hello Bob,\n\
"
    .to_vec();
    m.extend_from_slice(&[b'x'; 300]);
    m.extend_from_slice(b"\nThe numbers are attached.\n");
    m
}

fn original_header_crlf() -> Vec<u8> {
    b"From: Alice <alice@example.org>\r\n\
To: bob@example.net, carol@example.com\r\n\
Subject: Quarterly report\r\n\
Message-ID: <q3@example.org>\r\n"
        .to_vec()
}

struct Fixture {
    sender: Address,
    bob: Address,
    carol: Address,
    original: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            sender: address("alice@example.org"),
            bob: address("bob@example.net"),
            carol: address("carol@example.com"),
            original: original(),
        }
    }

    fn recipient<'a>(&'a self, who: &'a Address, status: EnhancedCode) -> RecipientReport<'a> {
        RecipientReport {
            recipient: who,
            original_recipient: None,
            status,
            remote_mta: None,
            diagnostic: None,
            last_attempt: None,
            will_retry_until: None,
        }
    }

    fn notification<'a>(
        &'a self,
        kind: Kind,
        recipients: &'a [RecipientReport<'a>],
        returned: Returned<'a>,
    ) -> Notification<'a> {
        Notification {
            kind,
            reporting_mta: "host.example.org",
            to: &self.sender,
            envid: Some("env-1"),
            arrival: time("2026-11-22T22:18:05+01:00"),
            now: time("2026-11-23T09:00:00+01:00"),
            message_id: "<20261123080000.ab01@host.example.org>",
            original_subject: Some("Quarterly report"),
            recipients,
            returned,
        }
    }
}

/// A parsed report with its three parts.
struct Parsed {
    raw: Vec<u8>,
}

impl Parsed {
    fn new(raw: Vec<u8>) -> Parsed {
        assert_lines_ok(&raw);
        Parsed { raw }
    }

    fn message(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Every line CRLF-terminated and at most 998 octets.
fn assert_lines_ok(raw: &[u8]) {
    assert!(raw.ends_with(b"\r\n"));
    for (i, line) in raw[..raw.len() - 1].split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| {
            panic!("line {} does not end in CRLF", i + 1);
        });
        assert!(!line.contains(&b'\r'), "bare CR on line {}", i + 1);
        assert!(line.len() <= 998, "line {} is {} octets", i + 1, line.len());
    }
}

fn content_type(part: &MessagePart<'_>) -> String {
    let ct = part.content_type().expect("a Content-Type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
}

fn encoding(part: &MessagePart<'_>) -> String {
    part.content_transfer_encoding()
        .unwrap_or("7bit")
        .to_ascii_lowercase()
}

/// The three parts of the report, in order, with their raw bodies as they
/// stand in the report (before any transfer decoding).
fn parts<'m>(message: &'m mail_parser::Message<'m>) -> Vec<(&'m MessagePart<'m>, &'m [u8])> {
    let root = message.root_part();
    let ids = root.sub_parts().expect("a multipart");
    ids.iter()
        .map(|&id| {
            let part = message.part(id).unwrap();
            let body = &message.raw_message()
                [part.raw_body_offset() as usize..part.raw_end_offset() as usize];
            (part, body)
        })
        .collect()
}

/// The delivery-status fields: unfolded, per-message group first, then one
/// group per recipient.
fn groups(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).unwrap();
    let text = text.trim_end_matches("\r\n");
    text.split("\r\n\r\n")
        .map(|group| {
            let unfolded = group.replace("\r\n ", " ").replace("\r\n\t", "\t");
            unfolded
                .split("\r\n")
                .map(|line| {
                    let (name, value) = line
                        .split_once(':')
                        .unwrap_or_else(|| panic!("not a field: {line:?}"));
                    (name.to_string(), value.trim().to_string())
                })
                .collect()
        })
        .collect()
}

fn field<'g>(group: &'g [(String, String)], name: &str) -> Option<&'g str> {
    let mut found = group.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} appears twice in {group:?}");
    first
}

fn crlf_text(bytes: &[u8]) -> Vec<u8> {
    super::crlf(bytes)
}

// covers: FAIL4
#[test]
fn fail4_a_failure_for_two_recipients_is_a_three_part_report() {
    let f = Fixture::new();
    let recipients = [
        RecipientReport {
            original_recipient: Some("rfc822;bob@example.net"),
            remote_mta: Some("mx1.example.net"),
            diagnostic: Some("550 5.7.30 REQUIRETLS support required"),
            last_attempt: Some(time("2026-11-23T08:59:58+01:00")),
            ..f.recipient(&f.bob, codes::REQUIRETLS_NEEDED)
        },
        RecipientReport {
            remote_mta: Some("mx.example.com"),
            ..f.recipient(&f.carol, codes::ENCRYPTION_NEEDED)
        },
    ];
    let n = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();

    let ct = message.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert_eq!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("MAILER-DAEMON@host.example.org")
    );
    assert_eq!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name()),
        Some("Mail Delivery System")
    );
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("alice@example.org")
    );
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(
        message.message_id(),
        Some("20261123080000.ab01@host.example.org")
    );
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        message.header_raw("MIME-Version").map(str::trim),
        Some("1.0")
    );
    assert_eq!(
        message.header_raw("Date").map(str::trim),
        Some("Mon, 23 Nov 2026 08:00:00 +0000")
    );

    let parts = parts(&message);
    let types: Vec<String> = parts.iter().map(|(p, _)| content_type(p)).collect();
    assert_eq!(
        types,
        [
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ]
    );

    // Part 1: for a person.
    let text = parts[0].0.text_contents().unwrap();
    for expected in [
        "could not be delivered",
        "<bob@example.net>",
        "<carol@example.com>",
        "5.7.30",
        "5.7.10",
        "550 5.7.30 REQUIRETLS support required",
        "Quarterly report",
        "header of your message is attached",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // Part 2: RFC 3464 fields.
    assert_eq!(encoding(parts[1].0), "7bit");
    let groups = groups(parts[1].1);
    assert_eq!(groups.len(), 3, "{groups:?}");
    let names: Vec<&str> = groups[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Reporting-MTA", "Original-Envelope-Id", "Arrival-Date"]
    );
    assert_eq!(
        field(&groups[0], "Reporting-MTA"),
        Some("dns; host.example.org")
    );
    assert_eq!(field(&groups[0], "Original-Envelope-Id"), Some("env-1"));
    assert_eq!(
        field(&groups[0], "Arrival-Date"),
        Some("Sun, 22 Nov 2026 22:18:05 +0100")
    );
    let bob = &groups[1];
    let names: Vec<&str> = bob.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Original-Recipient",
            "Final-Recipient",
            "Action",
            "Status",
            "Remote-MTA",
            "Diagnostic-Code",
            "Last-Attempt-Date"
        ]
    );
    assert_eq!(
        field(bob, "Original-Recipient"),
        Some("rfc822;bob@example.net")
    );
    assert_eq!(
        field(bob, "Final-Recipient"),
        Some("rfc822; bob@example.net")
    );
    assert_eq!(field(bob, "Action"), Some("failed"));
    assert_eq!(field(bob, "Status"), Some("5.7.30"));
    assert_eq!(field(bob, "Remote-MTA"), Some("dns; mx1.example.net"));
    assert_eq!(
        field(bob, "Diagnostic-Code"),
        Some("smtp; 550 5.7.30 REQUIRETLS support required")
    );
    assert_eq!(
        field(bob, "Last-Attempt-Date"),
        Some("Mon, 23 Nov 2026 08:59:58 +0100")
    );
    assert_eq!(field(bob, "Will-Retry-Until"), None);
    let carol = &groups[2];
    assert_eq!(
        field(carol, "Final-Recipient"),
        Some("rfc822; carol@example.com")
    );
    assert_eq!(field(carol, "Action"), Some("failed"));
    assert_eq!(field(carol, "Status"), Some("5.7.10"));
    assert_eq!(field(carol, "Original-Recipient"), None);
    assert_eq!(field(carol, "Diagnostic-Code"), None);

    // Part 3: the original header, intact, and nothing of the body.
    assert_eq!(encoding(parts[2].0), "7bit");
    let returned = parts[2].1;
    assert_eq!(returned, original_header_crlf().as_slice());
    let body = String::from_utf8_lossy(returned);
    assert!(!body.contains("Hello Bob"), "{body}");
    assert!(!body.contains("xxxx"), "{body}");
    assert!(!report.text().contains("Hello Bob"));
}

// covers: FAIL4, FAIL5
#[test]
fn fail5_headers_only_is_returned_even_from_a_whole_message() {
    // RFC 8689 section 5: the caller passes Returned::Headers for a
    // require-mode message, whatever RET asked for; given the whole
    // message, the report still holds its header alone.
    let f = Fixture::new();
    let recipients = [f.recipient(&f.bob, codes::REQUIRETLS_NEEDED)];
    let n = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    assert_eq!(content_type(parts[2].0), "text/rfc822-headers");
    assert_eq!(parts[2].1, original_header_crlf().as_slice());
    assert!(!report.text().contains("numbers are attached"));
}

// covers: FAIL4
#[test]
fn fail4_full_returns_the_whole_message_unencoded() {
    let f = Fixture::new();
    // An 8-bit (Latin-1) body line as well as the long one: message/rfc822
    // must still be 8bit, never base64 or quoted-printable.
    let mut original = f.original.clone();
    original.extend_from_slice(b"Gr\xfc\xdfe\n");
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))];
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    assert_eq!(content_type(parts[2].0), "message/rfc822");
    assert_eq!(encoding(parts[2].0), "8bit");
    assert_eq!(parts[2].1, crlf_text(&original).as_slice());
    assert!(parts[2].0.message().is_some());
    let text = report.text();
    assert!(!text.to_ascii_lowercase().contains("base64"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("quoted-printable"),
        "{text}"
    );
    assert!(text.contains(&format!("{}\r\n", "x".repeat(300))));
    assert!(
        parts[0]
            .0
            .text_contents()
            .unwrap()
            .contains("Your message is attached")
    );
    // The outer multipart holds an 8-bit part, so it says so.
    assert_eq!(
        message
            .content_transfer_encoding()
            .map(str::to_ascii_lowercase),
        Some("8bit".to_string())
    );
}

// covers: FAIL4
#[test]
fn fail4_full_over_the_size_limit_falls_back_to_the_header() {
    let f = Fixture::new();
    let mut large = f.original.clone();
    while large.len() <= BOUNCE_SIZE_LIMIT {
        large.extend_from_slice(b"padding padding padding padding padding padding\n");
    }
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 2, 2))];
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&large));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    assert_eq!(content_type(parts[2].0), "text/rfc822-headers");
    assert_eq!(parts[2].1, original_header_crlf().as_slice());
    assert!(!report.text().contains("padding"));
    let text = parts[0].0.text_contents().unwrap();
    assert!(
        text.contains("larger than 50000 octets") && text.contains("only its header"),
        "{text}"
    );

    // Exactly at the limit it is still returned whole.
    large.truncate(BOUNCE_SIZE_LIMIT);
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&large));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    assert_eq!(content_type(parts_of(&message, 2)), "message/rfc822");
}

fn parts_of<'m>(message: &'m mail_parser::Message<'m>, i: usize) -> &'m MessagePart<'m> {
    parts(message)[i].0
}

// covers: FAIL4
#[test]
fn fail4_a_delay_says_delayed_and_until_when() {
    let f = Fixture::new();
    let recipients = [RecipientReport {
        remote_mta: Some("mx1.example.net"),
        diagnostic: Some("451 4.7.10 try again later"),
        last_attempt: Some(time("2026-11-23T08:59:58+01:00")),
        will_retry_until: Some(time("2026-11-27T22:18:05+01:00")),
        ..f.recipient(&f.bob, codes::ENCRYPTION_NEEDED.with_class(4))
    }];
    let n = f.notification(Kind::Delay, &recipients, Returned::Headers(&f.original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    assert_eq!(
        message.subject(),
        Some("Delayed Mail (still being retried)")
    );
    let parts = parts(&message);
    let groups = groups(parts[1].1);
    assert_eq!(field(&groups[1], "Action"), Some("delayed"));
    assert_eq!(field(&groups[1], "Status"), Some("4.7.10"));
    assert_eq!(
        field(&groups[1], "Will-Retry-Until"),
        Some("Fri, 27 Nov 2026 22:18:05 +0100")
    );
    let text = parts[0].0.text_contents().unwrap();
    for expected in [
        "not yet been delivered",
        "nothing needs to be done yet",
        "Fri, 27 Nov 2026 22:18:05 +0100",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

// covers: FAIL4
#[test]
fn fail4_a_failure_has_no_will_retry_until() {
    let f = Fixture::new();
    let recipients = [RecipientReport {
        will_retry_until: Some(time("2026-11-27T22:18:05+01:00")),
        ..f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))
    }];
    let n = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
    let report = Parsed::new(compose(&n).unwrap());
    assert!(!report.text().contains("Will-Retry-Until"));
}

// covers: FAIL4
#[test]
fn fail4_a_hostile_diagnostic_cannot_add_a_field() {
    let f = Fixture::new();
    let hostile = format!(
        "550 no\r\nAction: delivered\r\nStatus: 2.0.0\n\r\nFinal-Recipient: rfc822; x@evil.example\x1b[2J\t{}",
        "y ".repeat(2000)
    );
    let recipients = [RecipientReport {
        diagnostic: Some(&hostile),
        ..f.recipient(&f.bob, EnhancedCode::new(5, 0, 0))
    }];
    let n = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    let groups = groups(parts[1].1);
    assert_eq!(groups.len(), 2, "{groups:?}");
    let bob = &groups[1];
    // `field` asserts each name appears once.
    assert_eq!(field(bob, "Action"), Some("failed"));
    assert_eq!(field(bob, "Status"), Some("5.0.0"));
    assert_eq!(
        field(bob, "Final-Recipient"),
        Some("rfc822; bob@example.net")
    );
    let diagnostic = field(bob, "Diagnostic-Code").unwrap();
    assert!(
        diagnostic.starts_with("smtp; 550 no Action: delivered Status: 2.0.0 Final-Recipient:"),
        "{diagnostic}"
    );
    assert!(!diagnostic.contains('\x1b'));
    assert!(diagnostic.len() <= "smtp; ".len() + DIAGNOSTIC_LIMIT);
    assert!(diagnostic.ends_with("..."));
    // Every line of the part is a field or a fold of one.
    for line in std::str::from_utf8(parts[1].1).unwrap().split("\r\n") {
        let folded = line.starts_with(' ');
        let known = [
            "Reporting-MTA:",
            "Original-Envelope-Id:",
            "Arrival-Date:",
            "Final-Recipient:",
            "Action:",
            "Status:",
            "Diagnostic-Code:",
        ]
        .iter()
        .any(|name| line.starts_with(name));
        assert!(line.is_empty() || folded || known, "{line:?}");
    }
}

// covers: FAIL4
#[test]
fn fail4_a_utf8_recipient_uses_the_global_types() {
    let f = Fixture::new();
    let jorg = address("jörg@bücher.example");
    let mut original = "From: Jörg <jörg@bücher.example>\nSubject: Grüße\n\nHallo\n"
        .as_bytes()
        .to_vec();
    let recipients = [
        RecipientReport {
            original_recipient: Some("jörg@bücher.example"),
            diagnostic: Some("550 5.6.7 Adresse unbekannt: jörg"),
            ..f.recipient(&jorg, codes::SMTPUTF8_NEEDED)
        },
        f.recipient(&f.bob, codes::SMTPUTF8_NEEDED),
    ];
    let n = Notification {
        original_subject: Some("Grüße"),
        ..f.notification(Kind::Failure, &recipients, Returned::Headers(&original))
    };
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    assert_eq!(content_type(parts[1].0), "message/global-delivery-status");
    assert_eq!(encoding(parts[1].0), "8bit");
    let groups = groups(parts[1].1);
    assert_eq!(
        field(&groups[1], "Final-Recipient"),
        Some("utf-8; jörg@bücher.example")
    );
    assert_eq!(
        field(&groups[1], "Original-Recipient"),
        Some("utf-8; jörg@bücher.example")
    );
    assert_eq!(
        field(&groups[2], "Final-Recipient"),
        Some("rfc822; bob@example.net")
    );
    assert_eq!(content_type(parts[2].0), "message/global-headers");
    assert_eq!(encoding(parts[2].0), "8bit");
    assert_eq!(
        parts[2].1,
        "From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n".as_bytes()
    );
    let text = parts[0].0.text_contents().unwrap();
    assert!(
        text.contains("<jörg@bücher.example>") && text.contains("Grüße"),
        "{text}"
    );

    // Returned whole, a message with a UTF-8 header is message/global.
    original.extend_from_slice("Tschüß\n".as_bytes());
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    assert_eq!(content_type(parts_of(&message, 2)), "message/global");
}

// covers: FAIL4
#[test]
fn fail4_a_utf8_sender_is_written_as_utf8() {
    let f = Fixture::new();
    let sender = address("jörg@bücher.example");
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))];
    let n = Notification {
        to: &sender,
        ..f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original))
    };
    let report = Parsed::new(compose(&n).unwrap());
    assert!(report.text().contains("To: jörg@bücher.example\r\n"));
}

// covers: FAIL4
#[test]
fn fail4_no_line_is_longer_than_998_octets_at_the_limits() {
    let f = Fixture::new();
    let long_local = format!("{}@example.net", "l".repeat(240));
    let long = address(&long_local);
    let orcpt = format!("rfc822;{long_local}");
    let diagnostic = "z".repeat(5000);
    let recipients = [RecipientReport {
        original_recipient: Some(&orcpt),
        remote_mta: Some(&"m".repeat(255)),
        diagnostic: Some(&diagnostic),
        ..f.recipient(&long, EnhancedCode::new(5, 999, 999))
    }];
    let mut original = f.original.clone();
    original.extend_from_slice(&[b'w'; 998]);
    original.push(b'\n');
    let n = Notification {
        original_subject: Some(&"s".repeat(3000)),
        ..f.notification(Kind::Failure, &recipients, Returned::Full(&original))
    };
    // Parsed::new asserts every line.
    let report = Parsed::new(compose(&n).unwrap());
    // The 998-octet line of the original is returned as it was.
    let message = report.message();
    assert_eq!(content_type(parts_of(&message, 2)), "message/rfc822");
    assert!(
        report
            .text()
            .contains(&format!("\r\n{}\r\n", "w".repeat(998)))
    );
}

#[test]
fn the_same_notification_gives_the_same_bytes() {
    let f = Fixture::new();
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))];
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&f.original));
    assert_eq!(compose(&n).unwrap(), compose(&n).unwrap());
}

#[test]
fn the_boundary_is_not_found_in_the_returned_message() {
    let f = Fixture::new();
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))];
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&f.original));
    let first = boundary(n.message_id, &[]);
    let mut original = f.original.clone();
    original.extend_from_slice(format!("--{first}\n--{first}--\n").as_bytes());
    let n = f.notification(Kind::Failure, &recipients, Returned::Full(&original));
    let report = Parsed::new(compose(&n).unwrap());
    let message = report.message();
    let parts = parts(&message);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].1, crlf_text(&original).as_slice());
}

#[test]
fn refuses_what_it_cannot_write_without_panicking() {
    let f = Fixture::new();
    let recipients = [f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))];
    let base = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
    let root = address("root");
    let long_line = [b"Subject: x\n\n".as_slice(), &[b'a'; 999], b"\n"].concat();
    type Check = fn(&DsnError) -> bool;
    let cases: Vec<(Notification<'_>, Check)> = vec![
        (
            Notification {
                recipients: &[],
                ..base
            },
            |e| *e == DsnError::NoRecipients,
        ),
        (Notification { to: &root, ..base }, |e| {
            matches!(e, DsnError::Address { field: "To", .. })
        }),
        (
            Notification {
                message_id: "no-brackets@x",
                ..base
            },
            |e| {
                matches!(
                    e,
                    DsnError::BadValue {
                        field: "Message-ID",
                        ..
                    }
                )
            },
        ),
        (
            Notification {
                message_id: "<a b@x>",
                ..base
            },
            |e| {
                matches!(
                    e,
                    DsnError::BadValue {
                        field: "Message-ID",
                        ..
                    }
                )
            },
        ),
        (
            Notification {
                reporting_mta: "host\r\nX: y",
                ..base
            },
            |e| {
                matches!(
                    e,
                    DsnError::BadValue {
                        field: "Reporting-MTA",
                        ..
                    }
                )
            },
        ),
        (
            Notification {
                envid: Some("env\r\nAction: delivered"),
                ..base
            },
            |e| {
                matches!(
                    e,
                    DsnError::BadValue {
                        field: "Original-Envelope-Id",
                        ..
                    }
                )
            },
        ),
        (
            Notification {
                now: time("1969-12-31T23:59:59+00:00"),
                ..base
            },
            |e| *e == DsnError::DateOutOfRange,
        ),
        (
            Notification {
                returned: Returned::Full(&long_line),
                ..base
            },
            |e| {
                matches!(
                    e,
                    DsnError::LineTooLong {
                        line: 3,
                        length: 999
                    }
                )
            },
        ),
    ];
    for (n, expected) in cases {
        let error = compose(&n).unwrap_err();
        assert!(expected(&error), "{error:?}");
        assert!(!error.to_string().is_empty());
    }
    let far = time("9999-12-31T23:59:59+00:00");
    assert!(compose(&Notification { now: far, ..base }).is_ok());
    let too_far = DateTime::from_timestamp(253_402_300_800, 0)
        .unwrap()
        .fixed_offset();
    assert_eq!(
        compose(&Notification {
            now: too_far,
            ..base
        }),
        Err(DsnError::DateOutOfRange)
    );
    let bad_orcpt = [RecipientReport {
        original_recipient: Some("rfc822;a@b\nStatus: 2.0.0"),
        ..f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))
    }];
    assert!(matches!(
        compose(&Notification {
            recipients: &bad_orcpt,
            ..base
        }),
        Err(DsnError::BadValue {
            field: "Original-Recipient",
            ..
        })
    ));
    let bad_remote = [RecipientReport {
        remote_mta: Some("mx.example.net; x"),
        ..f.recipient(&f.bob, EnhancedCode::new(5, 1, 1))
    }];
    assert!(matches!(
        compose(&Notification {
            recipients: &bad_remote,
            ..base
        }),
        Err(DsnError::BadValue {
            field: "Remote-MTA",
            ..
        })
    ));
}

#[test]
fn header_block_stops_at_the_first_empty_line() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", b"A: 1\r\nB: 2\r\n"),
        (b"A: 1\nB: 2\n\nbody\n\nmore\n", b"A: 1\nB: 2\n"),
        (b"A: 1\n folded\n\nbody\n", b"A: 1\n folded\n"),
        (b"A: 1\nB: 2\n", b"A: 1\nB: 2\n"),
        (b"A: 1\nB: 2", b"A: 1\nB: 2"),
        (b"A: 1\r\n\r", b"A: 1\r\n"),
        (b"\r\nbody\r\n", b""),
        (b"\nbody\n", b""),
        (b"", b""),
    ];
    for (message, header) in cases {
        assert_eq!(
            header_block(message),
            *header,
            "{:?}",
            String::from_utf8_lossy(message)
        );
    }
}

#[test]
fn one_line_makes_text_safe_for_a_field() {
    assert_eq!(one_line("a\r\nb\tc\x00d  e ", 100), "a b c d e");
    assert_eq!(one_line("\r\n", 100), "");
    assert_eq!(one_line("a\u{2028}b\u{85}c", 100), "a b c");
    assert_eq!(one_line(&"x".repeat(20), 10), "xxxxxxx...");
    // Cut on a character boundary.
    let cut = one_line(&"ü".repeat(20), 10);
    assert!(cut.len() <= 10 && cut.ends_with("..."), "{cut}");
}

#[test]
fn folded_fields_unfold_to_the_value() {
    let value = (0..40)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::new();
    push_field(&mut out, "Diagnostic-Code", &value);
    assert!(out.lines().count() > 1);
    assert!(out.split("\r\n").all(|l| l.len() <= 78), "{out}");
    assert_eq!(
        out.trim_end_matches("\r\n").replace("\r\n", ""),
        format!("Diagnostic-Code: {value}")
    );
}

// covers: FAIL4
#[test]
fn fail4_every_sender_the_queue_accepts_can_be_told() {
    for sender in [
        "\"alice smith\"@example.org",
        "alice@[192.0.2.1]",
        "alice@[IPv6:2001:db8::1]",
        "\"a@b\"@example.org",
    ] {
        let mut f = Fixture::new();
        f.sender = address(sender);
        let recipients = [f.recipient(&f.bob, codes::ENCRYPTION_NEEDED)];
        let n = f.notification(Kind::Failure, &recipients, Returned::Headers(&f.original));
        let report = compose(&n).unwrap_or_else(|e| panic!("{sender}: {e}"));
        let text = String::from_utf8_lossy(&report).into_owned();
        assert!(
            text.lines()
                .any(|l| l.starts_with("To: ") && l.contains(sender)),
            "{sender}: {text}"
        );
    }
}
