//! Envelope addresses: the RFC 5321 `Mailbox` (with RFC 6531 UTF-8 allowed)
//! and the reverse path, which may be null (`<>`).
//!
//! An [`Address`] is validated once, when it is made, so that everything
//! later can write it into a MAIL or RCPT command without re-checking: it
//! never holds a control character, CR, LF or an unbalanced quote, which is
//! what keeps a hostile `-f` or recipient from injecting SMTP commands.

use std::fmt;

/// Longest reverse or forward path, RFC 5321 4.5.3.1.3 (256 octets with the
/// angle brackets).
const MAX_PATH: usize = 254;

/// A validated envelope address. The local part is kept unquoted; the domain
/// is absent for a bare local name such as `root`, which must be qualified
/// before it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: Option<String>,
}

/// Why a string is not an envelope address. Each variant names the rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressError {
    Empty,
    ControlCharacter,
    Whitespace,
    UnbalancedQuote,
    EmptyLocalPart,
    BadLocalPart,
    BadDomain(String),
    TooLong(usize),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => write!(f, "the address is empty"),
            AddressError::ControlCharacter => {
                write!(
                    f,
                    "the address contains a control character (CR, LF, NUL, ...)"
                )
            }
            AddressError::Whitespace => {
                write!(f, "the address contains white space outside quotes")
            }
            AddressError::UnbalancedQuote => write!(f, "the address has an unbalanced quote"),
            AddressError::EmptyLocalPart => write!(f, "the part before '@' is empty"),
            AddressError::BadLocalPart => {
                write!(f, "the part before '@' is not a valid local part")
            }
            AddressError::BadDomain(d) => write!(f, "'{d}' is not a valid domain"),
            AddressError::TooLong(n) => {
                write!(
                    f,
                    "the address is {n} octets long; at most {MAX_PATH} are allowed"
                )
            }
        }
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// Parses an address as a user types it: `alice@example.org`,
    /// `<alice@example.org>`, `"a b"@example.org`, `alice@[192.0.2.1]` or a
    /// bare `root`. Display names are not accepted here; header address lists
    /// are parsed by the message module.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let text = text.trim();
        let text = match text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            Some(inner) => inner.trim(),
            None => text,
        };
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.chars().any(char::is_control) {
            return Err(AddressError::ControlCharacter);
        }
        let (local, domain) = split_at_domain(text)?;
        let local = unquote_local(local)?;
        Address::from_parts(&local, domain)
    }

    /// Builds an address from an unquoted local part and an optional domain,
    /// as a header parser hands them over.
    pub fn from_parts(local: &str, domain: Option<&str>) -> Result<Address, AddressError> {
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.chars().any(char::is_control) {
            return Err(AddressError::ControlCharacter);
        }
        // Quoted local parts may hold any printable character; unquoted
        // ones are checked when written (see `write_local`).
        let domain = match domain {
            Some(d) => Some(validate_domain(d)?),
            None => None,
        };
        let address = Address {
            local: local.to_string(),
            domain,
        };
        let len = address.to_string().len();
        if len > MAX_PATH {
            return Err(AddressError::TooLong(len));
        }
        Ok(address)
    }

    /// The local part, unquoted.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain, or `None` for an unqualified local name.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Appends `@domain` to an unqualified address (sendmail's `root` becomes
    /// `root@host.example`); a qualified address is returned unchanged.
    pub fn qualify(self, domain: &str) -> Result<Address, AddressError> {
        match self.domain {
            Some(_) => Ok(self),
            None => Address::from_parts(&self.local, Some(domain)),
        }
    }

    /// True when the address needs SMTPUTF8 (RFC 6531) to be sent.
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.as_deref().is_none_or(str::is_ascii)
    }
}

/// Writes the address as an RFC 5321 path body (without angle brackets),
/// quoting the local part when it is not a dot-string.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_local(&self.local, f)?;
        if let Some(domain) = &self.domain {
            write!(f, "@{domain}")?;
        }
        Ok(())
    }
}

/// The addresses in their first-seen order, each once: a set remembers
/// what was seen, so a list of 100,000 recipients costs no more than
/// 100,000 lookups (HARD1).
pub fn unique(addresses: impl IntoIterator<Item = Address>) -> Vec<Address> {
    let all: Vec<Address> = addresses.into_iter().collect();
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    let first: Vec<bool> = all.iter().map(|address| seen.insert(address)).collect();
    drop(seen);
    all.into_iter()
        .zip(first)
        .filter_map(|(address, first)| first.then_some(address))
        .collect()
}

/// The envelope sender: an address, or the null reverse path `<>` used for
/// notifications (RFC 5321 4.5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReversePath {
    Null,
    Address(Address),
}

impl ReversePath {
    /// Parses `-f` style input, where an empty string or `<>` is the null path.
    pub fn parse(text: &str) -> Result<ReversePath, AddressError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "<>" {
            return Ok(ReversePath::Null);
        }
        Address::parse(trimmed).map(ReversePath::Address)
    }

    pub fn address(&self) -> Option<&Address> {
        match self {
            ReversePath::Null => None,
            ReversePath::Address(a) => Some(a),
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.address().is_none_or(Address::is_ascii)
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Address(a) => a.fmt(f),
        }
    }
}

/// Splits at the `@` that starts the domain: the last one outside quotes.
fn split_at_domain(text: &str) -> Result<(&str, Option<&str>), AddressError> {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut at = None;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '@' if !in_quotes => at = Some(i),
            c if c.is_whitespace() && !in_quotes => return Err(AddressError::Whitespace),
            _ => {}
        }
    }
    if in_quotes || escaped {
        return Err(AddressError::UnbalancedQuote);
    }
    Ok(match at {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    })
}

/// Removes RFC 5321 quoting from a local part: `"a\"b"` becomes `a"b`.
fn unquote_local(local: &str) -> Result<String, AddressError> {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        if local.contains('"') {
            return Err(AddressError::BadLocalPart);
        }
        if !is_dot_string(local) {
            return Err(AddressError::BadLocalPart);
        }
        return Ok(local.to_string());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => return Err(AddressError::UnbalancedQuote),
            },
            '"' => return Err(AddressError::UnbalancedQuote),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// RFC 5321 `atext`, widened by RFC 6531 to non-ASCII characters. Non-ASCII
/// white space (U+2002, U+3000…) is left out: every parser here reads it as
/// a separator, so a local part holding one must be written quoted to be
/// read back as the same address (HARD2).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
}

/// RFC 5321 `Dot-string`: atoms separated by single dots.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn write_local(local: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if is_dot_string(local) {
        return f.write_str(local);
    }
    f.write_str("\"")?;
    for c in local.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Accepts a domain name (ASCII LDH labels or UTF-8 U-labels) or an address
/// literal such as `[192.0.2.1]` or `[IPv6:2001:db8::1]`; returns it as given.
fn validate_domain(domain: &str) -> Result<String, AddressError> {
    let bad = || AddressError::BadDomain(domain.to_string());
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = match literal.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(domain.to_string())
        } else {
            Err(bad())
        };
    }
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() || name.len() > 253 {
        return Err(bad());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '-'
                    || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
            });
        if !ok {
            return Err(bad());
        }
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("alice@example.org", "alice", Some("example.org")),
            ("<alice@example.org>", "alice", Some("example.org")),
            ("  alice@example.org  ", "alice", Some("example.org")),
            ("\"a b\"@example.org", "a b", Some("example.org")),
            ("\"a\\\"b\"@example.org", "a\"b", Some("example.org")),
            ("root", "root", None),
            ("user@[192.0.2.1]", "user", Some("[192.0.2.1]")),
            (
                "user@[IPv6:2001:db8::1]",
                "user",
                Some("[IPv6:2001:db8::1]"),
            ),
            ("jörg@bücher.example", "jörg", Some("bücher.example")),
            ("a.b+tag@example.org.", "a.b+tag", Some("example.org")),
        ];
        for (input, local, domain) in cases {
            let a = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(a.local_part(), *local, "{input}");
            assert_eq!(a.domain(), *domain, "{input}");
        }
    }

    #[test]
    fn refuses_what_could_inject_or_mislead() {
        let cases: &[(&str, AddressError)] = &[
            ("", AddressError::Empty),
            ("<>", AddressError::Empty),
            (
                "a@b.example\r\nRCPT TO:<x@y>",
                AddressError::ControlCharacter,
            ),
            ("a\0@b.example", AddressError::ControlCharacter),
            ("a b@example.org", AddressError::Whitespace),
            ("\"ab@example.org", AddressError::UnbalancedQuote),
            ("@example.org", AddressError::BadLocalPart),
            ("a..b@example.org", AddressError::BadLocalPart),
            (
                "a@-bad.example",
                AddressError::BadDomain("-bad.example".into()),
            ),
            ("a@exa mple.org", AddressError::Whitespace),
            (
                "a@[300.1.1.1]",
                AddressError::BadDomain("[300.1.1.1]".into()),
            ),
            ("a@b..example", AddressError::BadDomain("b..example".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(Address::parse(input).as_ref(), Err(expected), "{input:?}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::TooLong(_))
        ));
    }

    #[test]
    fn writes_quoted_local_parts_back_quoted() {
        let a = Address::from_parts("john doe", Some("example.org")).unwrap();
        assert_eq!(a.to_string(), "\"john doe\"@example.org");
        let b = Address::from_parts("a\"b", Some("example.org")).unwrap();
        assert_eq!(b.to_string(), "\"a\\\"b\"@example.org");
        assert_eq!(Address::parse(&b.to_string()).unwrap(), b);
    }

    #[test]
    fn unique_keeps_the_first_of_each_in_order() {
        let list = [
            "b@x.example",
            "a@x.example",
            "b@x.example",
            "c@x.example",
            "a@x.example",
        ]
        .map(|a| Address::parse(a).unwrap());
        let kept: Vec<String> = unique(list).iter().map(|a| a.to_string()).collect();
        assert_eq!(kept, ["b@x.example", "a@x.example", "c@x.example"]);
    }

    #[test]
    fn qualifies_bare_names_only() {
        let root = Address::parse("root")
            .unwrap()
            .qualify("host.example")
            .unwrap();
        assert_eq!(root.to_string(), "root@host.example");
        let full = Address::parse("a@b.example")
            .unwrap()
            .qualify("host.example")
            .unwrap();
        assert_eq!(full.to_string(), "a@b.example");
    }

    #[test]
    fn reverse_path_accepts_the_null_path() {
        assert_eq!(ReversePath::parse("").unwrap(), ReversePath::Null);
        assert_eq!(ReversePath::parse("<>").unwrap(), ReversePath::Null);
        assert_eq!(
            ReversePath::parse("a@b.example").unwrap().to_string(),
            "a@b.example"
        );
    }

    // covers: HARD2
    #[test]
    fn hard2_a_non_ascii_space_in_a_local_part_is_written_quoted() {
        let a = Address::parse("\"a\u{2002}b\"@example.org").unwrap();
        assert_eq!(a.local_part(), "a\u{2002}b");
        assert_eq!(a.to_string(), "\"a\u{2002}b\"@example.org");
        assert_eq!(Address::parse(&a.to_string()), Ok(a));
        assert!(matches!(
            Address::parse("a@b\u{2002}c.example"),
            Err(AddressError::Whitespace)
        ));
        assert!(matches!(
            Address::from_parts("a", Some("b\u{3000}c.example")),
            Err(AddressError::BadDomain(_))
        ));
    }

    mod properties {
        use super::super::*;
        use crate::message::parse_address_list;
        use proptest::prelude::*;

        fn local_part() -> impl Strategy<Value = String> {
            // Printable characters of every kind, ASCII specials, quotes,
            // backslashes and Unicode white space among them.
            prop_oneof![
                "[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,20}",
                "[ -~]{1,20}",
                "\\PC{1,12}",
                "[a \u{2002}\u{3000}\u{a0}\"\\\\@.]{1,12}",
            ]
        }

        fn domain() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some("example.org".to_string())),
                Just(Some("bücher.example".to_string())),
                Just(Some("[192.0.2.1]".to_string())),
                Just(Some("[IPv6:2001:db8::1]".to_string())),
                "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z]{2,6}){0,3}".prop_map(Some),
            ]
        }

        proptest! {
            // covers: HARD2
            #[test]
            fn hard2_writing_and_parsing_gives_the_same_address(
                local in local_part(),
                domain in domain(),
            ) {
                if let Ok(address) = Address::from_parts(&local, domain.as_deref()) {
                    let written = address.to_string();
                    prop_assert_eq!(Address::parse(&written), Ok(address.clone()), "{}", written);
                    prop_assert_eq!(parse_address_list(&written), Ok(vec![address.clone()]));
                    let in_angles = format!("Name <{written}>");
                    prop_assert_eq!(parse_address_list(&in_angles), Ok(vec![address]));
                }
            }

            // covers: HARD2
            #[test]
            fn hard2_whatever_parses_reparses_to_itself(text in "\\PC{0,40}") {
                if let Ok(address) = Address::parse(&text) {
                    prop_assert_eq!(Address::parse(&address.to_string()), Ok(address));
                }
            }
        }
    }

    #[test]
    fn knows_when_smtputf8_is_needed() {
        assert!(Address::parse("a@b.example").unwrap().is_ascii());
        assert!(!Address::parse("jörg@b.example").unwrap().is_ascii());
        assert!(!Address::parse("a@bücher.example").unwrap().is_ascii());
    }
}
