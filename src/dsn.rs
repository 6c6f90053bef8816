//! Delivery status notifications: the RFC 3464 report tlsend sends back to
//! the envelope sender when a message failed or is delayed.
//!
//! This module owns the *shape* of the notification and nothing else: a
//! `multipart/report; report-type=delivery-status` (RFC 3462) with three
//! parts, composed with lettre's message builder:
//!
//! 1. `text/plain`: what happened, in plain English, for a person;
//! 2. `message/delivery-status` (RFC 3464 section 2): the per-message and
//!    per-recipient fields, for programs. When an address or a diagnostic is
//!    not ASCII it is `message/global-delivery-status` with `utf-8` address
//!    types instead (RFC 6533 sections 3 and 6.2);
//! 3. the original: `text/rfc822-headers` for its header only, or
//!    `message/rfc822` for all of it (RFC 6533's `message/global-headers`
//!    and `message/global` when the header has UTF-8, RFC 6532 3.7).
//!
//! It decides no policy. Whether a notification is sent at all, to whom, for
//! which NOTIFY conditions, and how much of the original it carries are the
//! caller's choices: RET=HDRS or RET=FULL (RFC 3461 4.3) become
//! [`Returned::Headers`] or [`Returned::Full`]. For a message sent in
//! REQUIRETLS mode the caller passes `Returned::Headers` whatever RET said:
//! RFC 8689 section 5 asks that a bounce of such a message, which may travel
//! without the protection the original demanded, carry its header only
//! (FAIL4, FAIL5). Sending the report (null reverse path, TLS as required)
//! is the queue's business too.
//!
//! The one size rule applied here is [`BOUNCE_SIZE_LIMIT`]: a full original
//! larger than that is returned as its header, as Postfix does, because a
//! truncated `message/rfc822` would be a broken message.
//!
//! Pure: the clock, the Message-ID and the host names come from the caller,
//! and the same [`Notification`] always gives the same bytes.

use std::fmt;
use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::address::Address;
use crate::message::MAX_LINE;
use crate::message::compose::date_value;
use crate::status::EnhancedCode;

/// A full original larger than this many octets is returned as its header
/// only, and the text part says so. 50,000 is the default of Postfix's
/// `bounce_size_limit`, and Postfix too sends the header only rather than
/// cut a message in the middle (bounce_notify_util.c, `bounce_original`).
pub const BOUNCE_SIZE_LIMIT: usize = 50_000;

/// At most this many octets of a server's reply go into Diagnostic-Code, so
/// that the field stays well under the 998-octet line limit.
pub const DIAGNOSTIC_LIMIT: usize = 900;

/// How much of the original Subject the text part quotes.
const SUBJECT_LIMIT: usize = 200;

/// Longest ENVID or ORCPT value accepted (RFC 3461 4.2 and 4.4 allow 100
/// and 500 characters).
const VALUE_LIMIT: usize = 500;

/// Width the text part and folded status fields are wrapped to.
const WRAP: usize = 72;

/// What happened to the recipients of this report (RFC 3464 2.3.3 Action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Action: failed`: delivery has been given up.
    Failure,
    /// `Action: delayed`: delivery is still being retried.
    Delay,
}

impl Kind {
    fn action(self) -> &'static str {
        match self {
            Kind::Failure => "failed",
            Kind::Delay => "delayed",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Kind::Failure => "Undelivered Mail Returned to Sender",
            Kind::Delay => "Delayed Mail (still being retried)",
        }
    }
}

/// One recipient's per-recipient group (RFC 3464 2.3).
#[derive(Clone, Copy, Debug)]
pub struct RecipientReport<'a> {
    /// Final-Recipient: `rfc822;` for an ASCII address, `utf-8;` otherwise
    /// (RFC 6533 3).
    pub recipient: &'a Address,
    /// The ORCPT parameter as given, xtext-decoded: `rfc822;alice@example.org`.
    /// A value without an address type gets the recipient's type.
    pub original_recipient: Option<&'a str>,
    /// Status: the enhanced code (RFC 3463).
    pub status: EnhancedCode,
    /// Remote-MTA: a bare host name (`dns;` type), if a server was reached.
    pub remote_mta: Option<&'a str>,
    /// Diagnostic-Code: the server's reply text. It is made one line (control
    /// characters and line breaks become spaces) and cut to
    /// [`DIAGNOSTIC_LIMIT`] octets, so a hostile reply cannot add fields.
    pub diagnostic: Option<&'a str>,
    /// Last-Attempt-Date.
    pub last_attempt: Option<DateTime<FixedOffset>>,
    /// Will-Retry-Until; written for [`Kind::Delay`] only.
    pub will_retry_until: Option<DateTime<FixedOffset>>,
}

/// What the report carries of the original message.
#[derive(Clone, Copy, Debug)]
pub enum Returned<'a> {
    /// The header (RET=HDRS, and always in REQUIRETLS mode). A whole message
    /// may be passed: only the part before the first empty line is used.
    Headers(&'a [u8]),
    /// The whole message (RET=FULL); its header only above
    /// [`BOUNCE_SIZE_LIMIT`] octets.
    Full(&'a [u8]),
}

/// Everything a notification says. Lines of the original may end in LF or
/// CRLF; the report has CRLF throughout.
#[derive(Clone, Copy, Debug)]
pub struct Notification<'a> {
    pub kind: Kind,
    /// Reporting-MTA (`dns;` type), and the domain of
    /// `From: Mail Delivery System <MAILER-DAEMON@...>`.
    pub reporting_mta: &'a str,
    /// The original envelope sender, to whom the report goes (To:).
    pub to: &'a Address,
    /// Original-Envelope-Id: the ENVID, xtext-decoded.
    pub envid: Option<&'a str>,
    /// Arrival-Date: when tlsend accepted the message.
    pub arrival: DateTime<FixedOffset>,
    /// The report's Date. lettre writes it in UTC (`+0000`).
    pub now: DateTime<FixedOffset>,
    /// The report's Message-ID, with angle brackets: `<id@host>`.
    pub message_id: &'a str,
    /// The original Subject (decoded), quoted in the text part.
    pub original_subject: Option<&'a str>,
    /// At least one.
    pub recipients: &'a [RecipientReport<'a>],
    pub returned: Returned<'a>,
}

/// Why a notification could not be composed. None of these is the
/// recipient's or the server's doing except [`DsnError::LineTooLong`]; the
/// caller should log the error and keep the message for the postmaster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DsnError {
    /// There is no recipient to report on; RFC 3464 needs at least one
    /// per-recipient group.
    NoRecipients,
    /// lettre refused the address for From or To, e.g. a name without a
    /// domain: qualify it first.
    Address {
        field: &'static str,
        address: String,
        reason: String,
    },
    /// A value the caller gave cannot be written into its field.
    BadValue {
        field: &'static str,
        reason: &'static str,
    },
    /// The report's date is before 1970 or after 9999, which lettre's Date
    /// field cannot hold.
    DateOutOfRange,
    /// A line of the original is longer than SMTP allows (RFC 5321
    /// 4.5.3.1.6), so it cannot be returned unencoded.
    LineTooLong { line: usize, length: usize },
    /// lettre refused to build the message.
    Build(String),
}

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DsnError::NoRecipients => write!(f, "a delivery status notification needs a recipient"),
            DsnError::Address {
                field,
                address,
                reason,
            } => write!(
                f,
                "{field}: the address {address:?} cannot be used: {reason}"
            ),
            DsnError::BadValue { field, reason } => write!(f, "{field}: {reason}"),
            DsnError::DateOutOfRange => {
                write!(
                    f,
                    "the notification's date is outside the years 1970 to 9999"
                )
            }
            DsnError::LineTooLong { line, length } => write!(
                f,
                "line {line} of the original message is {length} octets long; at most {MAX_LINE} can be returned"
            ),
            DsnError::Build(reason) => write!(f, "the notification could not be built: {reason}"),
        }
    }
}

impl std::error::Error for DsnError {}

/// The header of a raw message: everything before the first empty line,
/// with that last header line's line ending but without the empty line.
/// A message without an empty line is all header.
pub fn header_block(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = match message[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start + i + 1,
            None => message.len(),
        };
        let line = &message[start..end];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return &message[..start];
        }
        start = end;
    }
    message
}

/// Composes the whole notification, CRLF line endings, every line at most
/// 998 octets. The report is 8-bit exactly when it holds a byte above 127;
/// sending it then needs 8BITMIME, and SMTPUTF8 when an address or header
/// field in it is UTF-8 (RFC 6531, RFC 6533): the caller checks.
pub fn compose(n: &Notification<'_>) -> Result<Vec<u8>, DsnError> {
    if n.recipients.is_empty() {
        return Err(DsnError::NoRecipients);
    }
    let reporting_mta = host_name("Reporting-MTA", n.reporting_mta)?;
    let message_id = message_id(n.message_id)?;
    let date = system_time(n.now)?;

    let original = Original::new(n.returned)?;
    let status = delivery_status(n, reporting_mta)?;
    let text = human_readable(n, reporting_mta, original.what);

    let boundary = boundary(
        message_id,
        &[text.as_bytes(), status.as_bytes(), &original.bytes],
    );
    let eight_bit = !status.is_ascii() || !original.bytes.is_ascii();
    let status_type = if status.is_ascii() {
        "message/delivery-status"
    } else {
        "message/global-delivery-status"
    };

    let mut report = MultiPart::builder().header(content_type(&format!(
        "multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
    ))?);
    if eight_bit {
        // RFC 2045 6.4: a multipart holding 8-bit parts is labelled 8bit.
        report = report.header(ContentTransferEncoding::EightBit);
    }
    let report = report
        .build()
        // lettre picks 7bit, quoted-printable or base64 for the text.
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )
        // The status fields and the original are passed as they are: left
        // to itself lettre would quote-print a line of 76 octets or more,
        // and RFC 3464 2.1 wants the status readable (7bit), RFC 2046
        // 5.2.1 forbids any encoding but 7bit, 8bit or binary for
        // message/rfc822. Their lines are checked against 998 octets here.
        .singlepart(
            SinglePart::builder()
                .header(content_type(status_type)?)
                .body(unencoded(status.into_bytes())),
        )
        .singlepart(
            SinglePart::builder()
                .header(content_type(original.content_type())?)
                .body(unencoded(original.bytes)),
        );

    let from = Mailbox::new(
        Some("Mail Delivery System".into()),
        lettre::Address::new("MAILER-DAEMON", reporting_mta).map_err(|e| DsnError::Address {
            field: "From",
            address: format!("MAILER-DAEMON@{reporting_mta}"),
            reason: e.to_string(),
        })?,
    );
    // The report is never sent by lettre: the envelope only satisfies its
    // builder, which would otherwise derive one from To and refuse an
    // address it cannot take (a quoted local part, an address literal).
    let envelope = lettre::address::Envelope::new(None, vec![from.email.clone()])
        .map_err(|e| DsnError::Build(e.to_string()))?;
    let builder = Message::builder().from(from).envelope(envelope);
    let builder = match lettre_address("To", n.to) {
        Ok(to) => builder.to(Mailbox::new(None, to)),
        // Nobody to tell: a report needs somewhere to go.
        Err(e) if n.to.domain().is_none() => return Err(e),
        // An address lettre will not take (a domain literal with IPv6):
        // written as tlsend writes it, which RFC 5322 reads.
        Err(_) => builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("To"),
            format!("<{}>", n.to),
        )),
    };
    let message = builder
        .subject(n.kind.subject())
        .date(date)
        .message_id(Some(message_id.to_string()))
        // RFC 3834 5: a report is an automatic reply; it gets none back.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_string(),
        ))
        .multipart(report)
        .map_err(|e| DsnError::Build(e.to_string()))?;

    let out = message.formatted();
    // lettre folds its own fields and the parts' lines were checked, so
    // this holds; it is checked so that a surprise is an error, not a
    // message a server truncates.
    if let Some((line, length)) = first_long_line(&out) {
        return Err(DsnError::LineTooLong { line, length });
    }
    Ok(out)
}

/// Which form of the original the third part holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Headers,
    Full,
    /// The header only, because the message was above BOUNCE_SIZE_LIMIT.
    HeadersOfLarge,
}

/// The third part: the original (or its header), CRLF lines.
struct Original {
    what: What,
    bytes: Vec<u8>,
    utf8_header: bool,
}

impl Original {
    fn new(returned: Returned<'_>) -> Result<Original, DsnError> {
        let (what, raw) = match returned {
            Returned::Headers(m) => (What::Headers, header_block(m)),
            Returned::Full(m) if m.len() > BOUNCE_SIZE_LIMIT => {
                (What::HeadersOfLarge, header_block(m))
            }
            Returned::Full(m) => (What::Full, m),
        };
        let utf8_header = !header_block(raw).is_ascii();
        let mut bytes = crlf(raw);
        if what != What::Full && !bytes.is_empty() && !bytes.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        if let Some((line, length)) = first_long_line(&bytes) {
            return Err(DsnError::LineTooLong { line, length });
        }
        Ok(Original {
            what,
            bytes,
            utf8_header,
        })
    }

    fn content_type(&self) -> &'static str {
        match (self.what, self.utf8_header) {
            (What::Full, false) => "message/rfc822",
            (What::Full, true) => "message/global",
            (_, false) => "text/rfc822-headers",
            (_, true) => "message/global-headers",
        }
    }
}

/// The body of the message/delivery-status part (RFC 3464 2.1): the
/// per-message fields, then one group per recipient, each after an empty
/// line.
fn delivery_status(n: &Notification<'_>, reporting_mta: &str) -> Result<String, DsnError> {
    let mut out = String::new();
    push_field(&mut out, "Reporting-MTA", &format!("dns; {reporting_mta}"));
    if let Some(envid) = n.envid {
        let envid = value("Original-Envelope-Id", envid)?;
        push_field(&mut out, "Original-Envelope-Id", envid);
    }
    push_field(&mut out, "Arrival-Date", &date_value(n.arrival));
    for r in n.recipients {
        out.push_str("\r\n");
        if let Some(orcpt) = r.original_recipient {
            let orcpt = value("Original-Recipient", orcpt)?;
            let orcpt = if has_address_type(orcpt) {
                orcpt.to_string()
            } else {
                format!("{}; {orcpt}", address_type(orcpt))
            };
            push_field(&mut out, "Original-Recipient", &orcpt);
        }
        let recipient = r.recipient.to_string();
        push_field(
            &mut out,
            "Final-Recipient",
            &format!("{}; {recipient}", address_type(&recipient)),
        );
        push_field(&mut out, "Action", n.kind.action());
        push_field(&mut out, "Status", &r.status.to_string());
        if let Some(host) = r.remote_mta {
            let host = host_name("Remote-MTA", host)?;
            push_field(&mut out, "Remote-MTA", &format!("dns; {host}"));
        }
        if let Some(diagnostic) = r.diagnostic {
            let diagnostic = one_line(diagnostic, DIAGNOSTIC_LIMIT);
            if !diagnostic.is_empty() {
                push_field(&mut out, "Diagnostic-Code", &format!("smtp; {diagnostic}"));
            }
        }
        if let Some(when) = r.last_attempt {
            push_field(&mut out, "Last-Attempt-Date", &date_value(when));
        }
        if let (Kind::Delay, Some(until)) = (n.kind, r.will_retry_until) {
            push_field(&mut out, "Will-Retry-Until", &date_value(until));
        }
    }
    Ok(out)
}

/// The text part: plain English, LF lines (lettre makes them CRLF).
fn human_readable(n: &Notification<'_>, reporting_mta: &str, what: What) -> String {
    let mut out = String::new();
    let mut para = |text: &str| {
        for line in wrap(text, "", WRAP) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    };
    para(&format!("This is the mail system at {reporting_mta}."));
    let several = n.recipients.len() > 1;
    let recipients = if several {
        "the recipients below"
    } else {
        "the recipient below"
    };
    match n.kind {
        Kind::Failure => para(&format!(
            "I'm sorry to tell you that your message could not be delivered to \
             {recipients}. Delivery has been given up: the message will not be \
             sent again."
        )),
        Kind::Delay => para(&format!(
            "Your message has not yet been delivered to {recipients}. Delivery \
             is still being tried, so nothing needs to be done yet. You will be \
             told again if it finally fails."
        )),
    }
    if let Some(subject) = n.original_subject {
        let subject = one_line(subject, SUBJECT_LIMIT);
        if !subject.is_empty() {
            para(&format!("Subject of your message: {subject}"));
        }
    }
    para(&format!("It was received on {}.", date_value(n.arrival)));

    for r in n.recipients {
        out.push_str(&format!("<{}>\n", r.recipient));
        let mut detail = |text: String| {
            for line in wrap(&text, "    ", WRAP) {
                out.push_str(&line);
                out.push('\n');
            }
        };
        detail(match describe(r.status) {
            Some(meaning) => format!("Status: {} ({meaning})", r.status),
            None => format!("Status: {}", r.status),
        });
        if let Some(host) = r.remote_mta {
            detail(format!("Server: {}", one_line(host, 255)));
        }
        if let Some(diagnostic) = r.diagnostic {
            let diagnostic = one_line(diagnostic, DIAGNOSTIC_LIMIT);
            if !diagnostic.is_empty() {
                detail(format!("The server said: {diagnostic}"));
            }
        }
        if let Some(when) = r.last_attempt {
            detail(format!("Last attempt: {}", date_value(when)));
        }
        if let (Kind::Delay, Some(until)) = (n.kind, r.will_retry_until) {
            detail(format!(
                "Delivery will be tried until {}.",
                date_value(until)
            ));
        }
        out.push('\n');
    }

    let mut para = |text: &str| {
        for line in wrap(text, "", WRAP) {
            out.push_str(&line);
            out.push('\n');
        }
    };
    match what {
        What::Full => para("Your message is attached."),
        What::Headers => para("The header of your message is attached."),
        What::HeadersOfLarge => para(&format!(
            "Your message was larger than {BOUNCE_SIZE_LIMIT} octets, so only \
             its header is attached."
        )),
    }
    out
}

/// A few words on the code: the named ones tlsend assigns itself, else
/// the RFC 3463 subject.
fn describe(code: EnhancedCode) -> Option<&'static str> {
    use crate::status::codes;
    let permanent = code.with_class(5);
    Some(match permanent {
        c if c == codes::REQUIRETLS_NEEDED => "the receiving server does not support REQUIRETLS",
        c if c == codes::ENCRYPTION_NEEDED => "a verified TLS connection could not be made",
        c if c == codes::SMTPUTF8_NEEDED => "the server does not accept non-ASCII addresses",
        c if c == codes::CONVERSION_NOT_SUPPORTED => "the server does not accept 8-bit content",
        _ => match code.subject {
            0 => "other or undefined status",
            1 => "addressing status",
            2 => "mailbox status",
            3 => "mail system status",
            4 => "network and routing status",
            5 => "mail delivery protocol status",
            6 => "message content or media status",
            7 => "security or policy status",
            _ => return None,
        },
    })
}

/// `field: value` CRLF, folded at spaces (RFC 5322 2.2.3) to about 78
/// octets where the value has spaces; unfolding gives the value back.
fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    for word in value.split(' ') {
        if line + 1 + word.len() > 78 && line > name.len() + 1 && !word.is_empty() {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(word);
        line += 1 + word.len();
    }
    out.push_str("\r\n");
}

/// `text` as lines of at most `width` octets where its words allow, each
/// starting with `indent`.
fn wrap(text: &str, indent: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from(indent);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::replace(&mut line, String::from(indent)));
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Text from elsewhere made one line: control characters and every kind of
/// line break or white space become single spaces, and the result is cut
/// to `limit` octets on a character boundary.
fn one_line(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit + 4));
    let mut cut = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
            if out.len() > limit {
                cut = true;
                break;
            }
        }
    }
    if cut {
        let mut at = limit.saturating_sub(3);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.truncate(at);
        out.truncate(out.trim_end().len());
        out.push_str("...");
    } else {
        out.truncate(out.trim_end().len());
    }
    out
}

/// A value given by the caller (ENVID, ORCPT): one line, not too long.
fn value<'a>(field: &'static str, text: &'a str) -> Result<&'a str, DsnError> {
    if text.chars().any(char::is_control) {
        return Err(DsnError::BadValue {
            field,
            reason: "contains a control character or line break",
        });
    }
    if text.trim().is_empty() {
        return Err(DsnError::BadValue {
            field,
            reason: "is empty",
        });
    }
    if text.len() > VALUE_LIMIT {
        return Err(DsnError::BadValue {
            field,
            reason: "is longer than 500 octets",
        });
    }
    Ok(text)
}

/// A host name for a `dns;` field: printable ASCII without spaces or
/// semicolons (an A-label name, or an address literal).
fn host_name<'a>(field: &'static str, host: &'a str) -> Result<&'a str, DsnError> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_graphic() && b != b';');
    if ok {
        Ok(host)
    } else {
        Err(DsnError::BadValue {
            field,
            reason: "is not a host name (printable ASCII, no spaces, at most 255 octets)",
        })
    }
}

/// `<id-left@id-right>` in printable ASCII (RFC 5322 3.6.4).
fn message_id(id: &str) -> Result<&str, DsnError> {
    let inner = id.strip_prefix('<').and_then(|i| i.strip_suffix('>'));
    let ok = inner.is_some_and(|inner| {
        inner.len() <= 900
            && inner
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
            && inner
                .split_once('@')
                .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
    });
    if ok {
        Ok(id)
    } else {
        Err(DsnError::BadValue {
            field: "Message-ID",
            reason: "is not <left@right> in printable ASCII",
        })
    }
}

/// RFC 3461 4.2 `addr-type ";"` at the start of an ORCPT value.
fn has_address_type(orcpt: &str) -> bool {
    orcpt.split_once(';').is_some_and(|(kind, _)| {
        !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// `rfc822` for ASCII, `utf-8` otherwise (RFC 6533 3).
fn address_type(address: &str) -> &'static str {
    if address.is_ascii() {
        "rfc822"
    } else {
        "utf-8"
    }
}

/// The address as lettre takes it: our local part, quoted as written, and
/// the domain. lettre checks both again.
fn lettre_address(field: &'static str, address: &Address) -> Result<lettre::Address, DsnError> {
    let written = address.to_string();
    let refused = |reason: String| DsnError::Address {
        field,
        address: written.clone(),
        reason,
    };
    let domain = address
        .domain()
        .ok_or_else(|| refused("it has no domain".into()))?;
    let local = &written[..written.len() - domain.len() - 1];
    lettre::Address::new(local, domain).map_err(|e| refused(e.to_string()))
}

fn content_type(text: &str) -> Result<ContentType, DsnError> {
    ContentType::parse(text).map_err(|e| DsnError::Build(format!("Content-Type {text}: {e}")))
}

/// A part body lettre writes as it is, labelled 7bit or 8bit by content
/// (never binary: the lines are CRLF and at most 998 octets).
fn unencoded(bytes: Vec<u8>) -> Body {
    let encoding = if bytes.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(bytes, encoding)
}

/// lettre's Date field goes through `httpdate`, which panics outside the
/// years 1970 to 9999; such a date is refused here instead.
fn system_time(now: DateTime<FixedOffset>) -> Result<SystemTime, DsnError> {
    const YEAR_10000: i64 = 253_402_300_800;
    if (0..YEAR_10000).contains(&now.timestamp()) {
        Ok(SystemTime::from(now))
    } else {
        Err(DsnError::DateOutOfRange)
    }
}

/// Lines ended by CRLF: a lone LF or a lone CR ends a line too.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            // A lone CR ends no line: as a line end it would split a
            // header field into a header and a body (found by fuzzing).
            b'\r' => out.push(b' '),
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The first line (1-based) longer than MAX_LINE octets before its CRLF.
fn first_long_line(bytes: &[u8]) -> Option<(usize, usize)> {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .enumerate()
        .find(|&(_, length)| length > MAX_LINE)
        .map(|(i, length)| (i + 1, length))
}

/// A MIME boundary found in none of the parts. `=_` cannot occur in
/// quoted-printable or base64 text, and the raw parts are searched; the
/// seed keeps it the same for the same report.
fn boundary(seed: &str, parts: &[&[u8]]) -> String {
    // FNV-1a: a stable hash, not a secret.
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut n = 0u32;
    loop {
        let candidate = format!("=_tlsend_{hash:016x}_{n}");
        let found = parts.iter().any(|part| {
            part.windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        });
        if !found {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests;
