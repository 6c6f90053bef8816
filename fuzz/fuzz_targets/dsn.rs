//! Delivery status notifications (`dsn::compose`): what a report takes
//! from elsewhere is the server's reply (Diagnostic-Code), the server's
//! name, the sender's ENVID and ORCPT, the original message or its header
//! and its Subject, and the addresses, all of them from a queue entry a
//! local user may have written, or from a remote server.
//!
//! Controls: byte 0 bit 0 a delay report (else a failure), bit 1 the whole
//! message returned (else its header), bit 2 an empty field is given as
//! `Some("")` (else `None`), bits 3-4 the number of recipients (1 to 3);
//! bytes 1-3 the status code (class, subject, detail); bytes 4-7 the
//! arrival, the report's date, the last attempt and the retry limit, each
//! a time (low nibble) and a UTC offset (high nibble) from the tables
//! below, the ends of what lettre and chrono take among them. Payload:
//! `subject NUL envid NUL remote-mta NUL orcpt NUL diagnostic NUL to NUL
//! recipient NUL original`, UTF-8 with invalid sequences replaced except
//! for the original, which is last so that it can hold any byte. A missing
//! field is `None`; an address that does not parse is replaced by a fixed
//! one.
//!
//! Checks: nothing panics; the same notification gives the same bytes; an
//! error is one the input can cause (a bad value it gave, a date outside
//! 1970 to 9999, an overlong line of the original, an address lettre
//! refuses), never a build failure. A report has CRLF lines of at most 998
//! octets; its top-level header is exactly the fields compose writes, in
//! order (so nothing from the input starts a field there); the body is
//! three parts between the boundary delimiters and no other line starts
//! with the boundary; each part's header is Content-Type and
//! Content-Transfer-Encoding; the delivery-status part is one group per
//! recipient after the per-message one, each made of the RFC 3464 fields in
//! order, with ENVID, ORCPT and Remote-MTA as given; the third part is the
//! original (or its header) with CRLF line endings, byte for byte.

#![no_main]

use chrono::{DateTime, FixedOffset, Utc};
use libfuzzer_sys::fuzz_target;
use tlsend::address::Address;
use tlsend::dsn::{
    self, BOUNCE_SIZE_LIMIT, DsnError, Kind, Notification, RecipientReport, Returned,
};
use tlsend::status::EnhancedCode;
use tlsend_fuzz::split_controls;

const REPORTING_MTA: &str = "host.example.org";
const MESSAGE_ID: &str = "<20261123080000.ab01@host.example.org>";

/// Unix times: realistic ones, the years 1970 and 10000 that lettre's Date
/// cannot cross, and chrono's own ends.
const TIMES: [i64; 15] = [
    1_795_996_400,
    0,
    -1,
    253_402_300_799,
    253_402_300_800,
    -62_135_596_800,
    DateTime::<Utc>::MAX_UTC.timestamp(),
    DateTime::<Utc>::MIN_UTC.timestamp(),
    1_795_996_400 + 86_399,
    951_782_400,
    2_147_483_647,
    4_102_444_800,
    -2_208_988_800,
    1_795_996_400 - 5 * 86_400,
    86_399,
];

/// UTC offsets in seconds, up to chrono's limit of a day.
const OFFSETS: [i32; 16] = [
    0, 3600, -3600, 86_399, -86_399, 19_800, -12_600, 50_400, -43_200, 1, -1, 59, 2700, 49_500,
    86_340, -86_340,
];

/// A time from a control byte; `None` for nibble 15. Made as the queue
/// runner makes its times: a Unix time, then shown in a time zone.
fn time(control: u8) -> Option<DateTime<FixedOffset>> {
    let t = *TIMES.get(usize::from(control & 15))?;
    let offset = FixedOffset::east_opt(OFFSETS[usize::from(control >> 4)])?;
    Some(DateTime::from_timestamp(t, 0)?.with_timezone(&offset))
}

fn fixed_time() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-11-23T09:00:00+01:00").expect("a time")
}

/// Lines ended by CRLF: a lone LF ends a line too, and a lone CR becomes a
/// space, as the report returns the original.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' => out.push(b' '),
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// What the third part must hold.
fn expected_original(returned: Returned<'_>) -> Vec<u8> {
    let (raw, whole) = match returned {
        Returned::Full(m) if m.len() <= BOUNCE_SIZE_LIMIT => (m, true),
        Returned::Full(m) | Returned::Headers(m) => (dsn::header_block(m), false),
    };
    assert!(
        returned_bytes(returned).starts_with(raw),
        "the header block is not the start of the message"
    );
    let mut out = crlf(raw);
    if !whole && !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    if !whole {
        assert!(
            !out.split(|&b| b == b'\n').any(|l| l == b"\r"),
            "an empty line in the header block"
        );
    }
    out
}

fn returned_bytes(returned: Returned<'_>) -> &[u8] {
    match returned {
        Returned::Full(m) | Returned::Headers(m) => m,
    }
}

/// The lines of a CRLF text, without their CRLF; the text must end in CRLF
/// and have no other CR or LF, and no line may exceed 998 octets.
fn crlf_lines(raw: &[u8]) -> Vec<&[u8]> {
    let text = raw.strip_suffix(b"\r\n").expect("the report ends in CRLF");
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1;
    for (i, line) in lines.iter_mut().enumerate() {
        // Every line but the last still has the CR of its CRLF.
        if i < last {
            *line = line
                .strip_suffix(b"\r")
                .unwrap_or_else(|| panic!("line {} ends in a bare LF", i + 1));
        }
        assert!(!line.contains(&b'\r'), "bare CR on line {}", i + 1);
        assert!(line.len() <= 998, "line {} is {} octets", i + 1, line.len());
    }
    lines
}

/// A header block's fields, unfolded: name and value (without the CRLFs
/// of folding). Every line must be a field or a continuation of one.
fn fields(lines: &[&[u8]]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in lines {
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            let (_, value) = out
                .last_mut()
                .unwrap_or_else(|| panic!("a continuation line first: {line:?}"));
            value.push_str(&line);
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a field: {line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
            "field name {name:?}"
        );
        out.push((name.to_string(), value.to_string()));
    }
    out
}

fn names(fields: &[(String, String)]) -> Vec<&str> {
    fields.iter().map(|(n, _)| n.as_str()).collect()
}

/// `got` is `order` with some fields left out, and has those of `required`.
fn in_order(got: &[&str], order: &[&str], required: &[&str]) {
    let mut rest = order.iter();
    for name in got {
        assert!(
            rest.any(|o| o == name),
            "{name} out of place in {got:?} (order {order:?})"
        );
    }
    for name in required {
        assert!(got.contains(name), "{name} missing from {got:?}");
    }
}

fn value<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The parts of a multipart body between the delimiter lines of
/// `boundary`; no other line may start with the boundary.
fn parts<'a>(lines: &[&'a [u8]], boundary: &str) -> Vec<Vec<&'a [u8]>> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&[u8]>> = None;
    let mut closed = false;
    for (i, &line) in lines.iter().enumerate() {
        assert!(!closed, "line {i} after the close delimiter: {line:?}");
        if line == open.as_bytes() || line == close.as_bytes() {
            if let Some(part) = current.take() {
                parts.push(part);
            } else {
                assert_eq!(i, 0, "a preamble before the first delimiter");
            }
            if line == close.as_bytes() {
                closed = true;
            } else {
                current = Some(Vec::new());
            }
            continue;
        }
        assert!(
            !line.starts_with(open.as_bytes()),
            "line {i} starts with the boundary: {:?}",
            String::from_utf8_lossy(line)
        );
        match &mut current {
            Some(part) => part.push(line),
            None => panic!("line {i} outside the parts"),
        }
    }
    assert!(closed, "no close delimiter");
    parts
}

/// A part's header fields and its body lines.
fn split_part<'a, 'p>(part: &'p [&'a [u8]]) -> (Vec<(String, String)>, &'p [&'a [u8]]) {
    let blank = part
        .iter()
        .position(|l| l.is_empty())
        .expect("a part header ends with an empty line");
    (fields(&part[..blank]), &part[blank + 1..])
}

fn joined(lines: &[&[u8]]) -> Vec<u8> {
    lines.join(&b"\r\n"[..])
}

/// A field as the input must show in it, unfolded.
fn check_value(fields: &[(String, String)], name: &str, expected: &str) {
    assert_eq!(
        value(fields, name),
        Some(format!(" {expected}").as_str()),
        "{name}"
    );
}

struct Input<'a> {
    subject: Option<String>,
    envid: Option<String>,
    remote_mta: Option<String>,
    orcpt: Option<String>,
    diagnostic: Option<String>,
    to: Address,
    recipient: Address,
    original: &'a [u8],
}

fn input(payload: &[u8], empty_is_some: bool) -> Input<'_> {
    let mut parts = payload.splitn(8, |&b| b == 0);
    let mut text = || {
        parts
            .next()
            .filter(|p| empty_is_some || !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
    };
    let subject = text();
    let envid = text();
    let remote_mta = text();
    let orcpt = text();
    let diagnostic = text();
    let address = |text: Option<String>, fallback: &str| {
        text.and_then(|t| Address::parse(&t).ok())
            .unwrap_or_else(|| Address::parse(fallback).expect("an address"))
    };
    let to = address(text(), "alice@example.org");
    let recipient = address(text(), "bob@example.net");
    Input {
        subject,
        envid,
        remote_mta,
        orcpt,
        diagnostic,
        to,
        recipient,
        original: parts.next().unwrap_or_default(),
    }
}

fn check_error(e: &DsnError, input: &Input<'_>, now: DateTime<FixedOffset>) {
    let _ = e.to_string();
    match e {
        DsnError::BadValue { field, .. } => {
            let given = match *field {
                "Original-Envelope-Id" => input.envid.is_some(),
                "Original-Recipient" => input.orcpt.is_some(),
                "Remote-MTA" => input.remote_mta.is_some(),
                _ => false,
            };
            assert!(given, "{field} refused, but the input gave none");
        }
        DsnError::DateOutOfRange => {
            assert!(!(0..253_402_300_800).contains(&now.timestamp()), "{now}");
        }
        DsnError::LineTooLong { length, .. } => assert!(*length > 998),
        DsnError::Address { .. } => {}
        DsnError::NoRecipients | DsnError::Build(_) => panic!("{e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let control = |i: usize| controls.get(i).copied().unwrap_or(0);
    let c0 = control(0);
    let input = input(payload, c0 & 4 != 0);

    let kind = if c0 & 1 == 1 {
        Kind::Delay
    } else {
        Kind::Failure
    };
    let returned = if c0 & 2 != 0 {
        Returned::Full(input.original)
    } else {
        Returned::Headers(input.original)
    };
    let wide = |c: u8| {
        if c == 0xff { u16::MAX } else { u16::from(c) }
    };
    let status = EnhancedCode::new(control(1), wide(control(2)), wide(control(3)));
    let arrival = time(control(4)).unwrap_or_else(fixed_time);
    let now = time(control(5)).unwrap_or_else(fixed_time);
    let last_attempt = time(control(6));
    let will_retry_until = time(control(7));

    let carol = Address::parse("carol@example.com").expect("an address");
    let full = RecipientReport {
        recipient: &input.recipient,
        original_recipient: input.orcpt.as_deref(),
        status,
        remote_mta: input.remote_mta.as_deref(),
        diagnostic: input.diagnostic.as_deref(),
        last_attempt,
        will_retry_until,
    };
    let bare = RecipientReport {
        recipient: &carol,
        original_recipient: None,
        remote_mta: None,
        diagnostic: None,
        last_attempt: None,
        will_retry_until: None,
        ..full
    };
    let count = 1 + usize::from((c0 >> 3) & 3) % 3;
    let recipients = [full, full, bare];
    let recipients = &recipients[..count];
    let n = Notification {
        kind,
        reporting_mta: REPORTING_MTA,
        to: &input.to,
        envid: input.envid.as_deref(),
        arrival,
        now,
        message_id: MESSAGE_ID,
        original_subject: input.subject.as_deref(),
        recipients,
        returned,
    };

    let result = dsn::compose(&n);
    assert_eq!(result, dsn::compose(&n), "not deterministic");
    let out = match result {
        Ok(out) => out,
        Err(e) => return check_error(&e, &input, now),
    };

    let lines = crlf_lines(&out);
    let blank = lines
        .iter()
        .position(|l| l.is_empty())
        .expect("an empty line after the header");
    let header = fields(&lines[..blank]);
    let body = &lines[blank + 1..];
    let eight_bit = !body.iter().all(|l| l.is_ascii());
    let mut expected = vec![
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    ];
    if eight_bit {
        expected.push("Content-Transfer-Encoding");
    }
    assert_eq!(names(&header), expected, "the report's header fields");

    let content_type = value(&header, "Content-Type").expect("Content-Type");
    let boundary = content_type
        .split_once("boundary=\"")
        .and_then(|(_, b)| b.split_once('"'))
        .map(|(b, _)| b)
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"));
    assert!(boundary.starts_with("=_tlsend_"), "{boundary:?}");

    let parts = parts(body, boundary);
    assert_eq!(parts.len(), 3, "three parts");
    let mut bodies = Vec::new();
    for part in &parts {
        let (fields, body) = split_part(part);
        assert_eq!(
            names(&fields),
            ["Content-Type", "Content-Transfer-Encoding"],
            "a part's header"
        );
        bodies.push(body);
    }

    // The delivery-status part: the per-message group, then one per
    // recipient, each of the fields RFC 3464 has, in compose's order.
    let status_body = joined(bodies[1]);
    let status_text = String::from_utf8_lossy(&status_body);
    let groups: Vec<Vec<(String, String)>> = status_text
        .split("\r\n\r\n")
        .map(|group| {
            let lines: Vec<&[u8]> = group
                .trim_end_matches("\r\n")
                .split("\r\n")
                .map(str::as_bytes)
                .collect();
            fields(&lines)
        })
        .collect();
    assert_eq!(groups.len(), 1 + count, "{status_text:?}");
    in_order(
        &names(&groups[0]),
        &["Reporting-MTA", "Original-Envelope-Id", "Arrival-Date"],
        &["Reporting-MTA", "Arrival-Date"],
    );
    check_value(
        &groups[0],
        "Reporting-MTA",
        &format!("dns; {REPORTING_MTA}"),
    );
    match &input.envid {
        Some(envid) => check_value(&groups[0], "Original-Envelope-Id", envid),
        None => assert_eq!(value(&groups[0], "Original-Envelope-Id"), None),
    }
    for (group, report) in groups[1..].iter().zip(recipients) {
        let got = names(group);
        in_order(
            &got,
            &[
                "Original-Recipient",
                "Final-Recipient",
                "Action",
                "Status",
                "Remote-MTA",
                "Diagnostic-Code",
                "Last-Attempt-Date",
                "Will-Retry-Until",
            ],
            &["Final-Recipient", "Action", "Status"],
        );
        let present = |name: &str| got.contains(&name);
        assert_eq!(
            present("Original-Recipient"),
            report.original_recipient.is_some()
        );
        if let Some(orcpt) = report.original_recipient {
            let written = value(group, "Original-Recipient").unwrap_or_default();
            assert!(written.ends_with(orcpt), "{written:?} for {orcpt:?}");
        }
        assert_eq!(present("Remote-MTA"), report.remote_mta.is_some());
        if let Some(host) = report.remote_mta {
            check_value(group, "Remote-MTA", &format!("dns; {host}"));
        }
        if present("Diagnostic-Code") {
            assert!(report.diagnostic.is_some());
            let written = value(group, "Diagnostic-Code").unwrap_or_default();
            assert!(written.starts_with(" smtp; "), "{written:?}");
        }
        assert_eq!(present("Last-Attempt-Date"), report.last_attempt.is_some());
        assert_eq!(
            present("Will-Retry-Until"),
            kind == Kind::Delay && report.will_retry_until.is_some()
        );
        check_value(group, "Status", &report.status.to_string());
    }

    // The original, as given but with CRLF lines.
    assert_eq!(
        joined(bodies[2]),
        expected_original(returned),
        "the returned original"
    );
});
