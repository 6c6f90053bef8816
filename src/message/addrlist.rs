//! RFC 5322 3.4 address lists (To, Cc, Bcc, and recipients on the command
//! line), reduced to the envelope addresses they name (IN3).
//!
//! Display names, comments and group names are dropped; what remains must
//! be an address, or the whole list is refused with the item that failed:
//! a recipient is never guessed. Handles quoted local parts (`"a b"@x`),
//! groups (`team: a@x, b@y;`), obsolete routes (`<@relay:a@x>`), domain
//! literals and bare local names (`root`, which sendmail qualifies).
//! Pure; no I/O.

use std::fmt;

use crate::address::{Address, AddressError};

/// Why an address list cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressListError {
    /// An unterminated quote, comment, angle bracket or domain literal.
    Unbalanced(&'static str),
    /// A control character (CR, LF, NUL…) in the list.
    ControlCharacter,
    /// An item that is not an address.
    NotAnAddress(String),
    /// An address that cannot go into an envelope.
    BadAddress { item: String, reason: AddressError },
}

impl fmt::Display for AddressListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressListError::Unbalanced(what) => write!(f, "unterminated {what}"),
            AddressListError::ControlCharacter => write!(f, "contains a control character"),
            AddressListError::NotAnAddress(item) => write!(f, "{item:?} is not an address"),
            AddressListError::BadAddress { item, reason } => write!(f, "{item:?}: {reason}"),
        }
    }
}

impl std::error::Error for AddressListError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// An atom, or the content of a quoted string.
    Word {
        text: String,
        quoted: bool,
    },
    DomainLiteral(String),
    Special(char),
}

/// Parses an address list into envelope addresses, in order.
pub fn parse(text: &str) -> Result<Vec<Address>, AddressListError> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(AddressListError::ControlCharacter);
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
    };
    let mut out = Vec::new();
    parser.list(false, &mut out)?;
    Ok(out)
}

fn tokenize(text: &str) -> Result<Vec<Token>, AddressListError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                // RFC 5322 3.2.2: comments nest and may hold quoted pairs.
                chars.next();
                let mut depth = 1;
                while depth > 0 {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("comment")),
                        Some('\\') => {
                            chars.next();
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                    }
                }
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("quoted string")),
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err(AddressListError::Unbalanced("quoted string")),
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                    }
                }
                tokens.push(Token::Word {
                    text: value,
                    quoted: true,
                });
            }
            '[' => {
                chars.next();
                let mut value = String::from("[");
                loop {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("domain literal")),
                        Some(']') => break,
                        Some(c) => value.push(c),
                    }
                }
                value.push(']');
                tokens.push(Token::DomainLiteral(value));
            }
            '<' | '>' | ':' | ';' | '@' | ',' | '.' => {
                chars.next();
                tokens.push(Token::Special(c));
            }
            _ => {
                let mut atom = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()<>[]:;@,.\"".contains(c) {
                        break;
                    }
                    atom.push(c);
                    chars.next();
                }
                tokens.push(Token::Word {
                    text: atom,
                    quoted: false,
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn is_special(&self, c: char) -> bool {
        self.peek() == Some(&Token::Special(c))
    }

    /// `address *("," address)`, empty items allowed (obs-addr-list). In a
    /// group the list ends at ";".
    fn list(&mut self, in_group: bool, out: &mut Vec<Address>) -> Result<(), AddressListError> {
        while let Some(token) = self.peek() {
            match token {
                Token::Special(',') => self.pos += 1,
                Token::Special(';') if in_group => return Ok(()),
                _ => self.item(in_group, out)?,
            }
        }
        if in_group {
            // A group missing its ";" at the very end is accepted.
            return Ok(());
        }
        Ok(())
    }

    /// One mailbox or group.
    fn item(&mut self, in_group: bool, out: &mut Vec<Address>) -> Result<(), AddressListError> {
        let start = self.pos;
        let end = self.item_end(in_group);
        let first_structural = self.tokens[start..end]
            .iter()
            .position(|t| matches!(t, Token::Special('<' | ':' | '@')))
            .map(|i| (start + i, &self.tokens[start + i]));
        match first_structural {
            Some((at, Token::Special('<'))) => {
                self.pos = at + 1;
                self.angle_addr(out)?;
                // Anything after ">" up to the item's end (a comment was already dropped).
                if self.item_end(in_group) != self.pos {
                    return Err(AddressListError::NotAnAddress(render(
                        &self.tokens[start..self.item_end(in_group)],
                    )));
                }
                Ok(())
            }
            Some((at, Token::Special(':'))) if !in_group => {
                // A group: "name: members;".
                self.pos = at + 1;
                self.list(true, out)?;
                if self.is_special(';') {
                    self.pos += 1;
                }
                // After a group only "," or the end may follow: anything
                // else would otherwise be read as one more recipient.
                match self.peek() {
                    None | Some(Token::Special(',')) => Ok(()),
                    Some(_) => Err(AddressListError::NotAnAddress(render(
                        &self.tokens[start..],
                    ))),
                }
            }
            _ => {
                let address = addr_spec(&self.tokens[start..end])?;
                out.push(address);
                self.pos = end;
                Ok(())
            }
        }
    }

    /// Index of the "," or ";" that ends the current item (outside angle brackets).
    fn item_end(&self, in_group: bool) -> usize {
        let mut in_angle = false;
        for (i, token) in self.tokens.iter().enumerate().skip(self.pos) {
            match token {
                Token::Special('<') => in_angle = true,
                Token::Special('>') => in_angle = false,
                Token::Special(',') if !in_angle => return i,
                Token::Special(';') if !in_angle && in_group => return i,
                Token::Special(':') if !in_angle && !in_group => {
                    // A group's members belong to it, up to its ";".
                    if let Some(semi) = self.tokens[i..]
                        .iter()
                        .position(|t| *t == Token::Special(';'))
                    {
                        return i + semi + 1;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// After "<": `[obs-route] addr-spec ">"`; `<>` names no one.
    fn angle_addr(&mut self, out: &mut Vec<Address>) -> Result<(), AddressListError> {
        let Some(close) = self.tokens[self.pos..]
            .iter()
            .position(|t| *t == Token::Special('>'))
        else {
            return Err(AddressListError::Unbalanced("angle bracket"));
        };
        let mut inner = &self.tokens[self.pos..self.pos + close];
        // RFC 5322 4.4 obs-route "@a,@b:" is ignored, as RFC 5321 says.
        if inner.first() == Some(&Token::Special('@'))
            && let Some(colon) = inner.iter().position(|t| *t == Token::Special(':'))
        {
            inner = &inner[colon + 1..];
        }
        // "<>" (or a route with no address) names no recipient; refusing it
        // is safer than quietly sending to fewer people than written.
        if inner.is_empty() {
            return Err(AddressListError::NotAnAddress(render(
                &self.tokens[self.pos - 1..=self.pos + close],
            )));
        }
        out.push(addr_spec(inner)?);
        self.pos += close + 1;
        Ok(())
    }
}

/// `local-part ["@" domain]` from tokens.
fn addr_spec(tokens: &[Token]) -> Result<Address, AddressListError> {
    let item = render(tokens);
    let not_an_address = || AddressListError::NotAnAddress(render(tokens));
    let at = tokens.iter().rposition(|t| *t == Token::Special('@'));
    let (local_tokens, domain_tokens) = match at {
        Some(i) => (&tokens[..i], Some(&tokens[i + 1..])),
        None => (tokens, None),
    };
    let local = dotted_words(local_tokens).ok_or_else(not_an_address)?;
    let domain = match domain_tokens {
        None => None,
        Some([Token::DomainLiteral(literal)]) => Some(literal.clone()),
        Some(domain_tokens) => {
            let joined = dotted_words(domain_tokens).ok_or_else(not_an_address)?;
            if domain_tokens
                .iter()
                .any(|t| matches!(t, Token::Word { quoted: true, .. }))
            {
                return Err(not_an_address());
            }
            Some(joined)
        }
    };
    Address::from_parts(&local, domain.as_deref())
        .map_err(|reason| AddressListError::BadAddress { item, reason })
}

/// `word *("." word)` joined back with dots; `None` for anything else.
fn dotted_words(tokens: &[Token]) -> Option<String> {
    let mut out = String::new();
    let mut expect_word = true;
    for token in tokens {
        match (token, expect_word) {
            (Token::Word { text, .. }, true) => {
                out.push_str(text);
                expect_word = false;
            }
            (Token::Special('.'), false) => {
                out.push('.');
                expect_word = true;
            }
            _ => return None,
        }
    }
    (!expect_word).then_some(out)
}

/// Tokens back as text, for error messages.
fn render(tokens: &[Token]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Word { text, quoted: true } => {
                out.push('"');
                out.push_str(text);
                out.push('"');
            }
            Token::Word {
                text,
                quoted: false,
            } => {
                if out.ends_with(|c: char| c.is_alphanumeric()) {
                    out.push(' ');
                }
                out.push_str(text);
            }
            Token::DomainLiteral(text) => out.push_str(text),
            Token::Special(c) => out.push(*c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    // covers: IN3
    #[test]
    fn in3_extracts_every_address_form() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("a@b.example", &["a@b.example"]),
            ("a@b.example, c@d.example", &["a@b.example", "c@d.example"]),
            ("Bob <bob@x.example>", &["bob@x.example"]),
            ("\"Smith, Bob\" <bob@x.example>, c@d.example", &["bob@x.example", "c@d.example"]),
            ("\"john doe\"@example.org", &["\"john doe\"@example.org"]),
            ("\"a\\\"b\"@x.example", &["\"a\\\"b\"@x.example"]),
            ("first.last@x.example", &["first.last@x.example"]),
            ("a@b.example (Alice), (c) <c@d.example>", &["a@b.example", "c@d.example"]),
            ("team: a@b.example, Carol <c@d.example>;, z@y.example", &["a@b.example", "c@d.example", "z@y.example"]),
            ("undisclosed-recipients:;", &[]),
            ("root", &["root"]),
            ("<@relay.example,@other.example:a@b.example>", &["a@b.example"]),
            ("x@[192.0.2.1]", &["x@[192.0.2.1]"]),
            ("=?UTF-8?B?SsO2cmc=?= <j@x.example>", &["j@x.example"]),
            ("jörg@bücher.example", &["jörg@bücher.example"]),
            (",, a@b.example ,", &["a@b.example"]),
            ("", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(addresses(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn refuses_lists_that_name_no_clear_address() {
        type IsExpected = fn(&AddressListError) -> bool;
        #[rustfmt::skip]
        let cases: &[(&str, IsExpected)] = &[
            ("\"unterminated@x", |e| *e == AddressListError::Unbalanced("quoted string")),
            ("a@b.example (unterminated", |e| *e == AddressListError::Unbalanced("comment")),
            ("Bob <bob@x.example", |e| *e == AddressListError::Unbalanced("angle bracket")),
            ("John Smith", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("a@b..example", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("a@", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("Bob <bob@x.example> trailing", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("a@b.example\r\nBcc: evil@x.example", |e| *e == AddressListError::ControlCharacter),
            ("a@-bad-.example", |e| matches!(e, AddressListError::BadAddress { .. })),
            ("team: a@b.example; junk", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("team: a@b.example;c@d.example", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("<>", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("Bob <>", |e| matches!(e, AddressListError::NotAnAddress(_))),
            ("<@relay.example:>", |e| matches!(e, AddressListError::NotAnAddress(_))),
        ];
        for (text, check) in cases {
            let error = parse(text).unwrap_err();
            assert!(check(&error), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn error_names_the_item() {
        let text = parse("a@b.example, John Smith").unwrap_err().to_string();
        assert!(text.contains("John Smith"), "{text}");
    }
}
