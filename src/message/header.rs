//! The header block: fields kept byte for byte (continuation lines
//! included), looked up by name, removed, appended, and written back with
//! CRLF line endings. Edits are only what the caller asks for; a field added
//! here can never carry a line break (header injection).

use std::fmt;

use super::addrlist::{self, AddressListError};
use crate::address::Address;

/// RFC 5322 2.1.1: a line is at most 998 octets before CRLF.
const MAX_LINE: usize = 998;

/// One header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The whole field with CRLF line endings, ending in CRLF.
    raw: Vec<u8>,
    /// Index of the colon that ends the name.
    colon: usize,
}

impl Field {
    /// The field name as written (obsolete white space before the colon removed).
    pub fn name(&self) -> &str {
        let name = self.raw[..self.colon].trim_ascii_end();
        // Names are checked to be printable ASCII when the field is made.
        std::str::from_utf8(name).unwrap_or_default()
    }

    /// True when the name is `name`, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }

    /// The bytes after the colon, up to the final CRLF; folding kept.
    pub fn raw_value(&self) -> &[u8] {
        &self.raw[self.colon + 1..self.raw.len() - 2]
    }

    /// The value with folding removed (RFC 5322 3.2.2) and outer white
    /// space trimmed.
    pub fn unfolded_value(&self) -> String {
        let value = String::from_utf8_lossy(self.raw_value());
        value.replace("\r\n", "").trim().to_string()
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// Why a header cannot be read or edited as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// A line of the block is neither a field nor a continuation.
    Malformed { line: usize },
    /// A name that is not printable ASCII without ":".
    BadName(String),
    /// A value with a control character or too long for one line.
    BadValue { name: String, reason: &'static str },
    /// An address field that does not parse (for -t).
    Addresses {
        field: String,
        error: AddressListError,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Malformed { line } => {
                write!(f, "header line {line} is not a header field")
            }
            HeaderError::BadName(name) => write!(f, "{name:?} is not a header field name"),
            HeaderError::BadValue { name, reason } => write!(f, "the {name} value {reason}"),
            HeaderError::Addresses { field, error } => write!(f, "the {field} field: {error}"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// The header fields of a message, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    fields: Vec<Field>,
}

impl Header {
    /// Reads a header block (LF or CRLF line endings). It checks structure
    /// only: NUL, bare CR and bad UTF-8 are the input scan's to refuse, so a
    /// caller must not send a message whose `Input::problem` is set.
    pub fn parse(block: &[u8]) -> Result<Header, HeaderError> {
        let mut fields: Vec<Field> = Vec::new();
        let mut lines = block.split(|&b| b == b'\n').peekable();
        let mut number = 0;
        while let Some(line) = lines.next() {
            number += 1;
            if line.is_empty() && lines.peek().is_none() {
                break; // after the final LF
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if matches!(line.first(), Some(b' ' | b'\t')) {
                let Some(field) = fields.last_mut() else {
                    return Err(HeaderError::Malformed { line: number });
                };
                field.raw.extend_from_slice(line);
                field.raw.extend_from_slice(b"\r\n");
                continue;
            }
            if !super::input::is_field_line(line) {
                return Err(HeaderError::Malformed { line: number });
            }
            let colon = line.iter().position(|&b| b == b':').unwrap_or_default();
            let mut raw = line.to_vec();
            raw.extend_from_slice(b"\r\n");
            fields.push(Field { raw, colon });
        }
        Ok(Header { fields })
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Every field called `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> {
        self.fields.iter().filter(move |f| f.is(name))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.all(name).next().is_some()
    }

    /// Removes every field called `name`; returns how many there were.
    pub fn remove_all(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|f| !f.is(name));
        before - self.fields.len()
    }

    /// Adds `name: value` at the end. The value must be one line.
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        let field = one_line_field(name, value)?;
        self.fields.push(field);
        Ok(())
    }

    /// Replaces the field at `index` (of [`Header::fields`]) with `name:
    /// value`, in the same place. The value must be one line.
    pub fn replace(&mut self, index: usize, name: &str, value: &str) -> Result<(), HeaderError> {
        let field = one_line_field(name, value)?;
        if let Some(slot) = self.fields.get_mut(index) {
            *slot = field;
        }
        Ok(())
    }

    /// Writes every field with CRLF line endings (no empty line after).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for field in &self.fields {
            out.extend_from_slice(&field.raw);
        }
    }

    /// Bytes `write_to` produces.
    pub fn len(&self) -> usize {
        self.fields.iter().map(|f| f.raw.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when the message was resent: it has a Resent-* field.
    pub fn is_resent(&self) -> bool {
        self.fields.iter().any(|f| {
            f.name()
                .get(..7)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("Resent-"))
        })
    }

    /// IN3: the addresses of every To, Cc and Bcc field, in order. A
    /// message that was resent (it has Resent-* fields, RFC 5322 3.6.6) goes
    /// to the Resent-To, Resent-Cc and Resent-Bcc addresses instead, as
    /// sendmail and Postfix's cleanup do.
    pub fn recipients(&self) -> Result<Vec<Address>, HeaderError> {
        let names: [&str; 3] = if self.is_resent() {
            ["Resent-To", "Resent-Cc", "Resent-Bcc"]
        } else {
            ["To", "Cc", "Bcc"]
        };
        let mut out = Vec::new();
        for field in self
            .fields
            .iter()
            .filter(|f| names.iter().any(|name| f.is(name)))
        {
            let list = addrlist::parse(&field.unfolded_value()).map_err(|error| {
                HeaderError::Addresses {
                    field: field.name().to_string(),
                    error,
                }
            })?;
            out.extend(list);
        }
        Ok(out)
    }
}

impl Header {
    /// Replaces the value of the field at `index` (of [`Header::fields`])
    /// with `raw_value`, the text after the colon folded as the caller
    /// wants: CRLF only where white space follows, no other control
    /// character, no line longer than the limit. The name is kept as written.
    pub fn replace_value(&mut self, index: usize, raw_value: &str) -> Result<(), HeaderError> {
        let Some(field) = self.fields.get_mut(index) else {
            return Ok(());
        };
        let name = field.name().to_string();
        let bad_value = |reason| HeaderError::BadValue {
            name: name.clone(),
            reason,
        };
        for (i, line) in raw_value.split("\r\n").enumerate() {
            if i > 0 && !line.starts_with([' ', '\t']) {
                return Err(bad_value("has a line break that does not fold the field"));
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad_value("contains a control character (CR, LF, NUL…)"));
            }
            let length = if i == 0 { field.colon + 1 } else { 0 } + line.len();
            if length > MAX_LINE {
                return Err(bad_value("has a line too long for a header"));
            }
        }
        let mut raw = field.raw[..=field.colon].to_vec();
        raw.extend_from_slice(raw_value.as_bytes());
        raw.extend_from_slice(b"\r\n");
        field.raw = raw;
        Ok(())
    }
}

/// A new field `name: value` on one line, refused if it could break the
/// header (a line break or control character) or the line limit.
fn one_line_field(name: &str, value: &str) -> Result<Field, HeaderError> {
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(HeaderError::BadName(name.to_string()));
    }
    let bad_value = |reason| HeaderError::BadValue {
        name: name.to_string(),
        reason,
    };
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad_value("contains a control character (CR, LF, NUL…)"));
    }
    let raw = format!("{name}: {value}\r\n").into_bytes();
    if raw.len() - 2 > MAX_LINE {
        return Err(bad_value("is too long for one header line"));
    }
    Ok(Field {
        raw,
        colon: name.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(header: &Header) -> String {
        let mut out = Vec::new();
        header.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keeps_fields_byte_for_byte_with_crlf() {
        let header = Header::parse(b"Subject: a\n  folded\nTo: x@y.example\r\nX-Odd :v\n").unwrap();
        assert_eq!(
            text(&header),
            "Subject: a\r\n  folded\r\nTo: x@y.example\r\nX-Odd :v\r\n"
        );
        let subject = &header.fields()[0];
        assert_eq!(subject.name(), "Subject");
        assert_eq!(subject.raw_value(), b" a\r\n  folded");
        assert_eq!(subject.unfolded_value(), "a  folded");
        assert_eq!(header.fields()[2].name(), "X-Odd");
        assert_eq!(header.len(), text(&header).len());
    }

    #[test]
    fn finds_and_removes_by_name_in_any_case() {
        let mut header =
            Header::parse(b"tls-required: No\nSubject: s\nTLS-REQUIRED: no\n").unwrap();
        assert_eq!(header.all("TLS-Required").count(), 2);
        assert_eq!(header.remove_all("TLS-Required"), 2);
        assert_eq!(text(&header), "Subject: s\r\n");
        assert!(!header.contains("tls-required"));
    }

    #[test]
    fn appended_fields_cannot_inject_lines() {
        let mut header = Header::default();
        header.append("TLS-Required", "No").unwrap();
        assert_eq!(text(&header), "TLS-Required: No\r\n");
        for value in ["a\r\nBcc: x@y.example", "a\nb", "a\0b"] {
            assert!(
                matches!(
                    header.append("From", value),
                    Err(HeaderError::BadValue { .. })
                ),
                "{value:?}"
            );
        }
        assert!(matches!(
            header.append("Bad Name", "v"),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            header.append("X", &"v".repeat(1000)),
            Err(HeaderError::BadValue { .. })
        ));
        assert_eq!(header.fields().len(), 1);
    }

    // covers: IN3
    #[test]
    fn in3_recipients_come_from_every_to_cc_and_bcc_field() {
        let header = Header::parse(
            b"To: a@x.example,\n  \"b c\"@x.example\nCc: team: d@x.example;\nBcc: e@x.example\nTo: f@x.example\nReply-To: no@x.example\n",
        )
        .unwrap();
        let found: Vec<String> = header
            .recipients()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            found,
            [
                "a@x.example",
                "\"b c\"@x.example",
                "d@x.example",
                "e@x.example",
                "f@x.example"
            ]
        );
        let bad = Header::parse(b"To: John Smith\n").unwrap();
        let error = bad.recipients().unwrap_err().to_string();
        assert!(
            error.contains("To") && error.contains("John Smith"),
            "{error}"
        );
    }

    // covers: IN3
    #[test]
    fn in3_a_resent_message_goes_to_its_resent_recipients() {
        let header = Header::parse(
            b"To: old@x.example\nResent-From: r@x.example\nResent-To: new@x.example\nResent-Bcc: hidden@x.example\n",
        )
        .unwrap();
        let found: Vec<String> = header
            .recipients()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(found, ["new@x.example", "hidden@x.example"]);
    }

    #[test]
    fn refuses_a_block_that_is_not_a_header() {
        assert_eq!(
            Header::parse(b" leading continuation\n"),
            Err(HeaderError::Malformed { line: 1 })
        );
        assert_eq!(
            Header::parse(b"A: 1\nnot a field\n"),
            Err(HeaderError::Malformed { line: 2 })
        );
        assert_eq!(Header::parse(b"").unwrap().fields().len(), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // covers: HARD2
            #[test]
            fn hard2_header_edits_never_break_a_field_into_lines(
                block in "([A-Za-z-]{1,8}:[ -~]{0,12}\n( [ -~]{0,8}\n)?){0,4}",
                name in "[ -~]{0,10}|\\PC{0,4}",
                value in "[ -~\t\r\n\u{0}\u{85}\u{2028}]{0,40}|\\PC{0,20}",
            ) {
                let mut header = Header::parse(block.as_bytes()).unwrap();
                let before = header.fields().len();
                let appended = header.append(&name, &value).is_ok();
                prop_assert_eq!(header.fields().len(), before + usize::from(appended));
                if appended {
                    let field = header.fields().last().unwrap();
                    let raw = field.raw();
                    // One line: its only CR and LF are the final CRLF.
                    prop_assert!(raw.ends_with(b"\r\n"));
                    let line = &raw[..raw.len() - 2];
                    prop_assert!(!line.iter().any(|&b| b == b'\r' || b == b'\n'));
                    prop_assert!(line.len() <= MAX_LINE);
                    prop_assert!(!value.chars().any(|c| c.is_control() && c != '\t'));
                }
                // What is written reads back as the same fields.
                let mut written = Vec::new();
                header.write_to(&mut written);
                prop_assert_eq!(Header::parse(&written).unwrap(), header.clone());
                let removed = header.remove_all(&name);
                prop_assert!(removed >= usize::from(appended));
                prop_assert!(!header.contains(&name) || name.is_empty());
            }
        }
    }
}
