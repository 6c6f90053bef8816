//! The `_mta-sts.<domain>` TXT record (RFC 8461 3.1): whether the domain
//! announces a policy, and the `id` of the policy it announces.
//!
//! The caller looks the record up and passes its answer: one string per
//! TXT record, each record's character-strings already concatenated. This
//! module does no DNS.

use std::fmt;

use crate::text::printable;

/// Longest policy id (RFC 8461 3.1: `1*32(ALPHA / DIGIT)`).
pub const MAX_ID_LEN: usize = 32;

/// Why a TXT answer announces no policy. Every variant means the same to
/// the caller (RFC 8461 3.1: "senders MUST assume the recipient domain does
/// not have an available MTA-STS Policy"); a cached, unexpired policy still
/// applies (RFC 8461 3.3). The variants only say why, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// No record begins with `v=STSv1;`: the TXT records there are not
    /// MTA-STS records.
    NoStsRecord,
    /// More than one record begins with `v=STSv1;` (RFC 8461 3.1: the number
    /// left must be exactly one).
    Several(usize),
    /// The one record does not follow the RFC 8461 3.1 grammar.
    Syntax(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NoStsRecord => write!(f, "no TXT record there begins with v=STSv1"),
            RecordError::Several(n) => write!(
                f,
                "{n} TXT records begin with v=STSv1, and RFC 8461 requires exactly one"
            ),
            RecordError::Syntax(problem) => write!(f, "the MTA-STS TXT record {problem}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// The policy id announced by a `_mta-sts` TXT answer (RFC 8461 3.1).
///
/// Records not beginning with `v=STSv1` followed by `;` are discarded; if
/// the number left is not exactly one, or that one does not parse, there is
/// no policy. White space is allowed before the `;` (the grammar's
/// `sts-field-delim` allows it, see RFC 8461 erratum 6285). Fields are
/// case-sensitive (`%s"id="`). Extensions (other `name=value` fields) are
/// checked against the grammar and otherwise ignored; of a repeated field
/// only the first counts (RFC 8461 3.2, last paragraph).
pub fn parse_txt<S: AsRef<[u8]>>(records: &[S]) -> Result<String, RecordError> {
    // RFC 8461 3.1: "records that do not begin with "v=STSv1;" are discarded"
    let mut candidates = records
        .iter()
        .map(AsRef::as_ref)
        .filter(|record| is_sts_record(record));
    let Some(record) = candidates.next() else {
        return Err(RecordError::NoStsRecord);
    };
    let others = candidates.count();
    if others > 0 {
        // RFC 8461 3.1: "If the number of resulting records is not one"
        return Err(RecordError::Several(others + 1));
    }
    parse_record(record)
}

const VERSION: &[u8] = b"v=STSv1";

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `v=STSv1`, optional white space, then `;`.
fn is_sts_record(record: &[u8]) -> bool {
    record
        .strip_prefix(VERSION)
        .and_then(|rest| rest.iter().find(|&&b| !is_wsp(b)))
        == Some(&b';')
}

/// One record, known to begin with `v=STSv1` then `*WSP ";"`:
/// `sts-version 1*(sts-field-delim sts-field) [sts-field-delim]`.
fn parse_record(record: &[u8]) -> Result<String, RecordError> {
    let rest = record.strip_prefix(VERSION).unwrap_or(record);
    // Splitting at ";" leaves the white space of each delimiter at the ends
    // of the pieces; a field itself holds none (no production allows it).
    let mut pieces: Vec<&[u8]> = rest.split(|&b| b == b';').map(trim_wsp).collect();
    // The text before the first ";" is the delimiter's white space.
    if pieces.first().is_some_and(|p| !p.is_empty()) {
        return Err(syntax("has text between v=STSv1 and the first ;"));
    }
    pieces.remove(0);
    // A trailing delimiter leaves one empty piece at the end.
    if pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    let mut id = None;
    for field in pieces {
        if field.is_empty() {
            return Err(syntax(
                "has an empty field (two ; in a row, or none after them)",
            ));
        }
        let Some(eq) = field.iter().position(|&b| b == b'=') else {
            return Err(syntax(&format!("field {} has no =", shown(field))));
        };
        let (name, value) = (&field[..eq], &field[eq + 1..]);
        if name == b"id" {
            // RFC 8461 3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
            let valid = !value.is_empty()
                && value.len() <= MAX_ID_LEN
                && value.iter().all(u8::is_ascii_alphanumeric);
            if id.is_none() {
                if !valid {
                    return Err(syntax(&format!(
                        "has id {}, which is not 1 to {MAX_ID_LEN} letters and digits",
                        shown(value)
                    )));
                }
                id = Some(String::from_utf8_lossy(value).into_owned());
                continue;
            }
        }
        if !is_ext_name(name) || !is_ext_value(value) {
            return Err(syntax(&format!("field {} is malformed", shown(field))));
        }
    }
    id.ok_or_else(|| syntax("has no id"))
}

/// `sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`
/// (RFC 8461 3.1); a policy's `sts-policy-ext-name` (3.2) is the same rule.
pub(super) fn is_ext_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric()
                && rest.len() <= 31
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        None => false,
    }
}

/// `sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII but `;` and `=`.
fn is_ext_value(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|&b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e))
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let Some((&b, rest)) = s.split_first()
        && is_wsp(b)
    {
        s = rest;
    }
    while let Some((&b, rest)) = s.split_last()
        && is_wsp(b)
    {
        s = rest;
    }
    s
}

fn syntax(problem: &str) -> RecordError {
    RecordError::Syntax(problem.to_string())
}

/// DNS text for a message: quoted, escaped, and cut short.
fn shown(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let more = if bytes.len() > MAX { "…" } else { "" };
    format!("\"{}{more}\"", printable(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Want<'a> {
        Id(&'a str),
        NoSts,
        Several(usize),
        Syntax,
    }

    fn want(result: &Result<String, RecordError>) -> Want<'_> {
        match result {
            Ok(id) => Want::Id(id),
            Err(RecordError::NoStsRecord) => Want::NoSts,
            Err(RecordError::Several(n)) => Want::Several(*n),
            Err(RecordError::Syntax(_)) => Want::Syntax,
        }
    }

    // covers: MX7
    #[test]
    fn mx7_txt_answers() {
        use Want::*;
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], Want)] = &[
            ("the RFC example", &["v=STSv1; id=20160831085700Z;"], Id("20160831085700Z")),
            ("no white space, no trailing ;", &["v=STSv1;id=abc"], Id("abc")),
            ("white space around ;", &["v=STSv1 ;\tid=abc ; "], Id("abc")),
            ("extensions ignored", &["v=STSv1; id=abc; ext=1; x.y-z_=a:b<c>"], Id("abc")),
            ("id after an extension", &["v=STSv1; ext=1; id=abc"], Id("abc")),
            ("first id counts", &["v=STSv1; id=abc; id=other"], Id("abc")),
            ("32 characters", &["v=STSv1; id=0123456789abcdef0123456789ABCDEF"], Id("0123456789abcdef0123456789ABCDEF")),
            ("other records discarded", &["v=spf1 -all", "v=STSv1; id=abc"], Id("abc")),
            ("no ; after version: discarded", &["v=STSv1id=abc", "v=STSv1; id=abc"], Id("abc")),
            ("v=STSv10 is not v=STSv1", &["v=STSv10; id=1", "v=STSv1; id=abc"], Id("abc")),
            ("no records", &[], NoSts),
            ("only other records", &["v=spf1 -all"], NoSts),
            ("case-sensitive version", &["V=STSv1; id=abc"], NoSts),
            ("leading white space", &[" v=STSv1; id=abc"], NoSts),
            ("two records", &["v=STSv1; id=abc", "v=STSv1; id=def"], Several(2)),
            ("two, one invalid", &["v=STSv1; id=abc", "v=STSv1; bad"], Several(2)),
            ("three records", &["v=STSv1; id=a", "v=STSv1; id=a", "v=STSv1 ; id=b"], Several(3)),
            ("no id", &["v=STSv1;"], Syntax),
            ("only an extension", &["v=STSv1; ext=1"], Syntax),
            ("id is case-sensitive", &["v=STSv1; ID=abc"], Syntax),
            ("empty id", &["v=STSv1; id="], Syntax),
            ("id with a hyphen", &["v=STSv1; id=abc-def"], Syntax),
            ("33 characters", &["v=STSv1; id=0123456789abcdef0123456789ABCDEFx"], Syntax),
            ("space inside the id", &["v=STSv1; id=a b"], Syntax),
            ("empty field", &["v=STSv1; id=abc;; ext=1"], Syntax),
            ("two trailing delimiters", &["v=STSv1; id=abc; ;"], Syntax),
            ("extension without =", &["v=STSv1; id=abc; ext"], Syntax),
            ("extension without a value", &["v=STSv1; id=abc; ext="], Syntax),
            ("extension name starts with _", &["v=STSv1; id=abc; _x=1"], Syntax),
            ("extension name of 33 characters", &["v=STSv1; id=abc; abcdefghijklmnopqrstuvwxyz0123456=1"], Syntax),
            ("= inside an extension value", &["v=STSv1; id=abc; e=a=b"], Syntax),
            ("non-ASCII extension value", &["v=STSv1; id=abc; e=\u{e9}"], Syntax),
            ("control character", &["v=STSv1; id=abc; e=\x01"], Syntax),
            ("non-ASCII id", &["v=STSv1; id=é"], Syntax),
        ];
        for (why, records, expected) in cases {
            let result = parse_txt(records);
            assert_eq!(want(&result), *expected, "{why}: {records:?} -> {result:?}");
        }
    }

    // covers: MX7
    #[test]
    fn mx7_txt_records_are_bytes() {
        // TXT data is not necessarily UTF-8; it is judged byte by byte.
        let records: [&[u8]; 2] = [b"\xff\xfe", b"v=STSv1; id=abc"];
        assert_eq!(parse_txt(&records), Ok("abc".to_string()));
        let records: [&[u8]; 1] = [b"v=STSv1; id=abc; e=\xff"];
        assert!(matches!(parse_txt(&records), Err(RecordError::Syntax(_))));
    }

    #[test]
    fn errors_show_network_text_safely() {
        let e = parse_txt(&["v=STSv1; id=\x1b[2J"]).unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text}");
        assert!(text.contains("id"), "{text}");
    }
}
