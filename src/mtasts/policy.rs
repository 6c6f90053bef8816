//! The MTA-STS policy file (RFC 8461 3.2) and MX host matching (RFC 8461
//! 4.1).
//!
//! The parser is strict: a body that does not follow the RFC 8461 3.2
//! grammar is no policy at all, never a policy "repaired" by guessing. The
//! choices where the RFC leaves room:
//!
//! - Lines end in LF or CRLF, mixed freely (the grammar's `sts-policy-term`;
//!   erratum 6253). White space after the `:` and at the end of a line is
//!   allowed (`sts-policy-field-delim` and the `*WSP` after each field);
//!   none before the `:` or at the start of a line. Empty lines after the
//!   last field are accepted (an editor's trailing blank line); an empty
//!   line between fields is an error.
//! - Field names are case-sensitive (`%s"mode"`), as are the values
//!   `STSv1`, `enforce`, `testing` and `none`.
//! - A repeated field other than `mx`: the first counts and the others are
//!   ignored, as RFC 8461 3.2 says ("all entries except for the first SHALL
//!   be ignored"); they must still be well-formed lines.
//! - `max_age` is 1 to 10 digits (the grammar) and at most 31557600 (the
//!   text: "maximum value of 31557600"). A larger value makes the policy
//!   invalid rather than being capped: the RFC gives a maximum, a publisher
//!   beyond it is not following the RFC, and capping would mean caching a
//!   policy on terms its publisher did not state.
//! - `mx` values are `["*." ] Domain` (RFC 5321 4.1.2: letters, digits and
//!   hyphens), with no trailing dot; labels of at most 63 octets.
//! - Unknown fields are ignored (RFC 8461 3.2), but must still be
//!   `sts-policy-extension` lines: a name of letters, digits, `_`, `-`, `.`
//!   and a value without control characters.
//!
//! The body is limited to 64 KiB by the fetcher before it gets here; the
//! parser itself is linear in the input.

use std::fmt;

use crate::text::printable;

/// Longest `max_age` RFC 8461 3.2 allows, in seconds (about a year).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// What a sender does when a host fails the policy (RFC 8461 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyMode {
    /// Do not deliver to an MX that fails the policy.
    Enforce,
    /// Report failures, deliver anyway (tlsend reports; the caller decides).
    Testing,
    /// The domain has withdrawn its policy; nothing is checked.
    None,
}

impl PolicyMode {
    fn parse(value: &str) -> Option<PolicyMode> {
        // RFC 8461 3.2: sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none"
        match value {
            "enforce" => Some(PolicyMode::Enforce),
            "testing" => Some(PolicyMode::Testing),
            "none" => Some(PolicyMode::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Testing => "testing",
            PolicyMode::None => "none",
        }
    }
}

impl fmt::Display for PolicyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `mx` value: a host name, or `*.` and the domain whose direct
/// subdomains it stands for. Kept in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxPattern {
    wildcard: bool,
    domain: String,
}

impl MxPattern {
    /// Parses `["*."] Domain` (RFC 8461 3.2, `sts-policy-mx-value`).
    pub fn parse(value: &str) -> Option<MxPattern> {
        let (wildcard, domain) = match value.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        is_domain(domain).then(|| MxPattern {
            wildcard,
            domain: domain.to_ascii_lowercase(),
        })
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// RFC 8461 4.1: `host` (an MX host name) matches, in any letter case and
    /// with or without one trailing dot. A wildcard stands for exactly one
    /// label: `*.example.com` matches `mx.example.com`, but neither
    /// `example.com` nor `a.b.example.com`.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        if !self.wildcard {
            return host.eq_ignore_ascii_case(&self.domain);
        }
        match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest.eq_ignore_ascii_case(&self.domain),
            None => false,
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.domain)
    }
}

/// A parsed MTA-STS policy (RFC 8461 3.2). `version` is always `STSv1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: PolicyMode,
    /// The hosts mail for the domain may go to; empty only in mode `none`.
    pub mx: Vec<MxPattern>,
    /// How long the policy may be cached, in seconds (0 to [`MAX_MAX_AGE`]).
    pub max_age: u64,
}

impl Policy {
    /// Parses a policy body (RFC 8461 3.2); see the module documentation for
    /// what is accepted.
    pub fn parse(body: &[u8]) -> Result<Policy, PolicyError> {
        parse(body)
    }

    /// Whether `host` matches one of the `mx` patterns (RFC 8461 4.1). The
    /// mode is not considered: a `none` policy still has patterns, but the
    /// caller must not count a match under it (MX2).
    pub fn matches(&self, host: &str) -> bool {
        self.mx.iter().any(|p| p.matches(host))
    }
}

/// The policy as a policy file, with LF line ends; it parses back to the
/// same policy.
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version: STSv1")?;
        writeln!(f, "mode: {}", self.mode)?;
        for mx in &self.mx {
            writeln!(f, "mx: {mx}")?;
        }
        writeln!(f, "max_age: {}", self.max_age)
    }
}

/// Why a body is not a policy. The caller treats every variant alike: the
/// fetch failed (RFC 8461 3.3), and a cached, unexpired policy still applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The body is not UTF-8 text.
    NotUtf8,
    /// The body is empty.
    Empty,
    /// A line is not `name: value` as the grammar has it.
    Malformed { line: usize, text: String },
    /// A known field has a value the RFC does not allow.
    BadValue {
        line: usize,
        field: &'static str,
        value: String,
    },
    /// A required field is missing (`mx` only when the mode is not `none`).
    Missing(&'static str),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotUtf8 => write!(f, "the policy is not UTF-8 text"),
            PolicyError::Empty => write!(f, "the policy is empty"),
            PolicyError::Malformed { line, text } => {
                write!(f, "policy line {line} is not \"name: value\": {text}")
            }
            PolicyError::BadValue { line, field, value } => {
                let allowed = match *field {
                    "version" => "STSv1",
                    "mode" => "enforce, testing or none",
                    "max_age" => "a number of seconds from 0 to 31557600",
                    _ => "a host name, or *. and a domain",
                };
                write!(
                    f,
                    "policy line {line}: {field} is {value}, which is not {allowed}"
                )
            }
            PolicyError::Missing("mx") => {
                write!(
                    f,
                    "the policy has no mx line, required unless its mode is none"
                )
            }
            PolicyError::Missing(field) => write!(f, "the policy has no {field} line"),
        }
    }
}

impl std::error::Error for PolicyError {}

fn parse(body: &[u8]) -> Result<Policy, PolicyError> {
    let text = std::str::from_utf8(body).map_err(|_| PolicyError::NotUtf8)?;
    // RFC 8461 3.2: sts-policy-term = LF / CRLF. Empty lines at the end are
    // tolerated; the last field's terminator is optional.
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let used = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .ok_or(PolicyError::Empty)?;

    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (index, line) in lines[..=used].iter().enumerate() {
        let number = index + 1;
        let (name, value) = field(line).ok_or_else(|| PolicyError::Malformed {
            line: number,
            text: shown(line),
        })?;
        let bad = |field| PolicyError::BadValue {
            line: number,
            field,
            value: shown(value),
        };
        // RFC 8461 3.2: "If any non-repeated field -- i.e., all fields
        // excluding "mx" -- is duplicated, all entries except for the first
        // SHALL be ignored."
        match name {
            "version" if version.is_none() => {
                if value != "STSv1" {
                    return Err(bad("version"));
                }
                version = Some(());
            }
            "mode" if mode.is_none() => {
                mode = Some(PolicyMode::parse(value).ok_or_else(|| bad("mode"))?);
            }
            "max_age" if max_age.is_none() => {
                max_age = Some(parse_max_age(value).ok_or_else(|| bad("max_age"))?);
            }
            "mx" => mx.push(MxPattern::parse(value).ok_or_else(|| bad("mx"))?),
            // Unknown fields, and repeats, are ignored (RFC 8461 3.2).
            _ => {}
        }
    }
    version.ok_or(PolicyError::Missing("version"))?;
    let mode = mode.ok_or(PolicyError::Missing("mode"))?;
    let max_age = max_age.ok_or(PolicyError::Missing("max_age"))?;
    // RFC 8461 3.2: mx is "required at least once, except when mode is none".
    if mx.is_empty() && mode != PolicyMode::None {
        return Err(PolicyError::Missing("mx"));
    }
    Ok(Policy { mode, mx, max_age })
}

/// `name ":" *WSP value *WSP`, with the name an `sts-policy-ext-name` and
/// the value an `sts-policy-ext-value` (the known fields' values are
/// narrower and checked by the caller).
fn field(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.split_once(':')?;
    let value = rest.trim_matches([' ', '\t']);
    (super::record::is_ext_name(name.as_bytes()) && is_field_value(value)).then_some((name, value))
}

/// `sts-policy-ext-value`: visible characters (UTF-8 allowed) and inner
/// spaces, no control characters; the caller has removed outer white space.
fn is_field_value(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

/// RFC 8461 3.2: `sts-policy-max-age-value = 1*10(DIGIT)`, "maximum value
/// of 31557600".
fn parse_max_age(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|&n| n <= MAX_MAX_AGE)
}

/// RFC 5321 4.1.2 `Domain`: labels of letters, digits and inner hyphens,
/// here also at most 63 octets each and 253 in all.
pub(crate) fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-')
        })
}

/// Policy text for a message: quoted, escaped, and cut short.
fn shown(text: &str) -> String {
    const MAX: usize = 64;
    let cut = text
        .char_indices()
        .nth(MAX)
        .map_or(text, |(end, _)| &text[..end]);
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("\"{}{more}\"", printable(cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

    fn policy(mode: PolicyMode, mx: &[&str], max_age: u64) -> Policy {
        Policy {
            mode,
            mx: mx.iter().map(|m| MxPattern::parse(m).unwrap()).collect(),
            max_age,
        }
    }

    /// What a case should give, by class.
    #[derive(Debug, PartialEq)]
    enum Want {
        /// Exactly `enforce`, `mx: mx.example.com`, `max_age: 86400`.
        Same,
        Valid,
        Empty,
        Malformed,
        Bad(&'static str),
        Missing(&'static str),
    }

    fn want(result: &Result<Policy, PolicyError>) -> Want {
        let same = policy(PolicyMode::Enforce, &["mx.example.com"], 86400);
        match result {
            Ok(p) if *p == same => Want::Same,
            Ok(_) => Want::Valid,
            Err(PolicyError::Empty) => Want::Empty,
            Err(PolicyError::Malformed { .. }) => Want::Malformed,
            Err(PolicyError::BadValue { field, .. }) => Want::Bad(field),
            Err(PolicyError::Missing(field)) => Want::Missing(field),
            Err(PolicyError::NotUtf8) => panic!("not UTF-8"),
        }
    }

    // covers: MX7
    #[test]
    fn mx7_policy_bodies() {
        use Want::*;
        #[rustfmt::skip]
        let cases: &[(&str, &str, Want)] = &[
            ("the RFC example, CRLF", GOOD, Valid),
            ("LF", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n", Same),
            ("mixed, no final line end", "version: STSv1\r\nmode: enforce\nmx: mx.example.com\r\nmax_age: 86400", Same),
            ("white space after : and at line end", "version:STSv1\nmode:\tenforce \nmx:  mx.example.com\t\nmax_age: 86400  ", Same),
            ("any order", "max_age: 86400\nmx: mx.example.com\nmode: enforce\nversion: STSv1\n", Same),
            ("trailing empty lines", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n\n\r\n", Same),
            ("unknown fields ignored", "version: STSv1\nfoo: bar baz\nmode: enforce\nx.y_z-1: é ü\nmx: mx.example.com\nmax_age: 86400\n", Same),
            ("first of a repeated field counts", "version: STSv1\nmode: enforce\nmode: none\nmx: mx.example.com\nmax_age: 86400\nmax_age: 5\nversion: STSv2\n", Same),
            ("a repeat is not judged", "version: STSv1\nmode: enforce\nmode: bogus\nmx: mx.example.com\nmax_age: 86400\n", Same),
            ("leading zeros, upper-case mx", "version: STSv1\nmode: enforce\nmx: MX.Example.COM\nmax_age: 0086400\n", Same),
            ("no mx in mode none", "version: STSv1\nmode: none\nmax_age: 86400\n", Valid),
            ("max_age 0", "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 0\n", Valid),
            ("max_age at the maximum", "version: STSv1\nmode: testing\nmx: a\nmax_age: 31557600\n", Valid),
            ("empty", "", Empty),
            ("only line ends", "\n\r\n", Empty),
            ("missing version", "mode: enforce\nmx: mx.example.com\nmax_age: 86400\n", Missing("version")),
            ("missing mode", "version: STSv1\nmx: mx.example.com\nmax_age: 86400\n", Missing("mode")),
            ("missing max_age", "version: STSv1\nmode: enforce\nmx: mx.example.com\n", Missing("max_age")),
            ("missing mx in enforce", "version: STSv1\nmode: enforce\nmax_age: 86400\n", Missing("mx")),
            ("missing mx in testing", "version: STSv1\nmode: testing\nmax_age: 86400\n", Missing("mx")),
            ("field names are case-sensitive", "Version: STSv1\nmode: enforce\nmx: a\nmax_age: 1\n", Missing("version")),
            ("version STSv2", "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", Bad("version")),
            ("version in lower case", "version: stsv1\nmode: enforce\nmx: a\nmax_age: 1\n", Bad("version")),
            ("mode in mixed case", "version: STSv1\nmode: Enforce\nmx: a\nmax_age: 1\n", Bad("mode")),
            ("draft mode report", "version: STSv1\nmode: report\nmx: a\nmax_age: 1\n", Bad("mode")),
            ("max_age too large", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n", Bad("max_age")),
            ("max_age of 11 digits", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 00000000001\n", Bad("max_age")),
            ("max_age with a unit", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1d\n", Bad("max_age")),
            ("negative max_age", "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n", Bad("max_age")),
            ("max_age with a sign", "version: STSv1\nmode: enforce\nmx: a\nmax_age: +5\n", Bad("max_age")),
            ("space inside max_age", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1 000\n", Bad("max_age")),
            ("mx with a trailing dot", "version: STSv1\nmode: enforce\nmx: mx.example.com.\nmax_age: 1\n", Bad("mx")),
            ("mx only *", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", Bad("mx")),
            ("draft-style suffix", "version: STSv1\nmode: enforce\nmx: .example.com\nmax_age: 1\n", Bad("mx")),
            ("inner wildcard", "version: STSv1\nmode: enforce\nmx: a.*.example.com\nmax_age: 1\n", Bad("mx")),
            ("underscore", "version: STSv1\nmode: enforce\nmx: mx_1.example.com\nmax_age: 1\n", Bad("mx")),
            ("leading hyphen", "version: STSv1\nmode: enforce\nmx: -mx.example.com\nmax_age: 1\n", Bad("mx")),
            ("two names on one line", "version: STSv1\nmode: enforce\nmx: mx.example.com mx2.example.com\nmax_age: 1\n", Bad("mx")),
            ("U-label", "version: STSv1\nmode: enforce\nmx: bücher.example\nmax_age: 1\n", Bad("mx")),
            ("empty line between fields", "version: STSv1\n\nmode: enforce\nmx: a\nmax_age: 1\n", Malformed),
            ("leading white space", " version: STSv1\nmode: enforce\nmx: a\nmax_age: 1\n", Malformed),
            ("white space before :", "version : STSv1\nmode: enforce\nmx: a\nmax_age: 1\n", Malformed),
            ("no colon", "version STSv1\nmode: enforce\nmx: a\nmax_age: 1\n", Malformed),
            ("empty value", "version: STSv1\nmode:\nmx: a\nmax_age: 1\n", Malformed),
            ("bare CR", "version: STSv1\nmode: enforce\rmx: a\nmax_age: 1\n", Malformed),
            ("control character in an unknown field", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1\nnote: a\x1bb\n", Malformed),
            ("bad field name", "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1\n_x: y\n", Malformed),
            ("an HTML page", "<html><body>Not found</body></html>\n", Malformed),
        ];
        for (why, body, expected) in cases {
            let result = Policy::parse(body.as_bytes());
            assert_eq!(want(&result), *expected, "{why}: {body:?} -> {result:?}");
        }
        assert_eq!(
            Policy::parse(b"version: STSv1\xff"),
            Err(PolicyError::NotUtf8)
        );
    }

    // covers: MX2, MX7
    #[test]
    fn mx2_mx_patterns_match_hosts() {
        let p = Policy::parse(GOOD.as_bytes()).unwrap();
        let cases: &[(&str, bool, &str)] = &[
            ("mail.example.com", true, "exact"),
            ("MAIL.Example.Com", true, "letter case"),
            ("mail.example.com.", true, "trailing dot"),
            ("mail.example.com..", false, "two trailing dots"),
            ("backupmx.example.com", true, "another exact pattern"),
            ("other.example.com", false, "not listed"),
            ("example.com", false, "the parent of an exact pattern"),
            ("x.mail.example.com", false, "a child of an exact pattern"),
            ("mx.example.net", true, "one label under the wildcard"),
            ("MX.EXAMPLE.NET.", true, "wildcard, case and trailing dot"),
            ("a.b.example.net", false, "two labels under the wildcard"),
            ("example.net", false, "the wildcard's own domain"),
            (".example.net", false, "an empty label"),
            ("mx.example.net.evil", false, "suffix appended"),
            ("mxexample.net", false, "no dot"),
            ("", false, "empty"),
            (".", false, "root"),
        ];
        for (host, expected, why) in cases {
            assert_eq!(p.matches(host), *expected, "{why}: {host:?}");
        }
    }

    #[test]
    fn display_is_the_policy_text() {
        let p = Policy::parse(GOOD.as_bytes()).unwrap();
        let text = p.to_string();
        assert_eq!(
            text,
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n"
        );
        assert_eq!(Policy::parse(text.as_bytes()), Ok(p));
        assert_eq!(PolicyMode::Testing.to_string(), "testing");
        let none = Policy::parse(b"version: STSv1\nmode: none\nmax_age: 1").unwrap();
        assert_eq!(Policy::parse(none.to_string().as_bytes()), Ok(none));
    }

    #[test]
    fn errors_show_network_text_safely() {
        let long = format!("version: STSv1\nmode: {}\x1b\n", "x".repeat(500));
        let e = Policy::parse(long.as_bytes()).unwrap_err().to_string();
        assert!(!e.chars().any(char::is_control), "{e}");
        assert!(e.len() < 200, "{e}");
        let e = Policy::parse(b"version: STSv1\nmode: strict\nmx: a\nmax_age: 1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "policy line 2: mode is \"strict\", which is not enforce, testing or none"
        );
    }
}
