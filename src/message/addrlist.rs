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
    /// A closing `)` or `]` with nothing open before it.
    Unopened(char),
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
            AddressListError::Unopened(c) => {
                write!(
                    f,
                    "{c:?} closes nothing; quote the display name if it holds {c:?}"
                )
            }
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
///
/// The work is linear in the input: the tokenizer consumes at least one
/// character on every turn of its loop, and the parser looks at each token
/// a bounded number of times (HARD1).
pub fn parse(text: &str) -> Result<Vec<Address>, AddressListError> {
    parse_counting_turns(text)
        .0
        .map(|found| found.into_iter().map(|l| l.address).collect())
}

/// An address of a list and where its addr-spec is in the text (byte
/// offsets), so that a field can be edited around it: its display name,
/// comments and the other addresses kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub address: Address,
    pub span: std::ops::Range<usize>,
}

/// [`parse`], with each address's place in `text`.
pub fn parse_located(text: &str) -> Result<Vec<Located>, AddressListError> {
    parse_counting_turns(text).0
}

/// [`parse_located`], and how many turns its loops took in all: the tests
/// hold it to a small multiple of the input length.
fn parse_counting_turns(text: &str) -> (Result<Vec<Located>, AddressListError>, usize) {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return (Err(AddressListError::ControlCharacter), 0);
    }
    let mut turns = 0;
    let (tokens, spans) = match tokenize(text, &mut turns) {
        Ok(tokenized) => tokenized,
        Err(e) => return (Err(e), turns),
    };
    let mut parser = Parser {
        tokens: &tokens,
        spans: &spans,
        pos: 0,
        turns,
    };
    let mut out = Vec::new();
    let result = parser.list(false, &mut out).map(|()| out);
    (result, parser.turns)
}

/// Characters that end an atom (RFC 5322 3.2.3 specials, and white space).
fn ends_atom(c: char) -> bool {
    c.is_whitespace() || "()<>[]:;@,.\"\\".contains(c)
}

/// Tokens, and the byte range each one covers in `text`.
type Tokenized = (Vec<Token>, Vec<std::ops::Range<usize>>);

fn tokenize(text: &str, turns: &mut usize) -> Result<Tokenized, AddressListError> {
    let mut tokens = Vec::new();
    let mut spans = Vec::new();
    let mut chars = text.char_indices().peekable();
    // Every arm consumes the character it matched (at least), so the loop
    // ends after at most one turn per character.
    while let Some((start, c)) = chars.next() {
        *turns += 1;
        let pushed = tokens.len();
        match c {
            c if c.is_whitespace() => {}
            '(' => {
                // RFC 5322 3.2.2: comments nest and may hold quoted pairs.
                let mut depth = 1u32;
                while depth > 0 {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("comment")),
                        Some((_, '\\')) => {
                            chars.next();
                        }
                        Some((_, '(')) => depth += 1,
                        Some((_, ')')) => depth -= 1,
                        Some(_) => {}
                    }
                }
            }
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("quoted string")),
                        Some((_, '\\')) => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => return Err(AddressListError::Unbalanced("quoted string")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                    }
                }
                tokens.push(Token::Word {
                    text: value,
                    quoted: true,
                });
            }
            '[' => {
                let mut value = String::from("[");
                loop {
                    match chars.next() {
                        None => return Err(AddressListError::Unbalanced("domain literal")),
                        Some((_, ']')) => break,
                        Some((_, c)) => value.push(c),
                    }
                }
                value.push(']');
                tokens.push(Token::DomainLiteral(value));
            }
            ')' | ']' => return Err(AddressListError::Unopened(c)),
            '<' | '>' | ':' | ';' | '@' | ',' | '.' => tokens.push(Token::Special(c)),
            // A backslash outside a quoted string is not RFC 5322 syntax;
            // it stays in the atom, where an address check refuses it.
            _ => {
                let mut atom = String::from(c);
                while let Some(&(_, next)) = chars.peek() {
                    if ends_atom(next) {
                        break;
                    }
                    atom.push(next);
                    chars.next();
                }
                tokens.push(Token::Word {
                    text: atom,
                    quoted: false,
                });
            }
        }
        if tokens.len() > pushed {
            let end = chars.peek().map_or(text.len(), |&(at, _)| at);
            spans.push(start..end);
        }
    }
    Ok((tokens, spans))
}

/// A recursive-descent parser that only moves forward: each token is
/// looked at a bounded number of times, whatever the input.
struct Parser<'a> {
    tokens: &'a [Token],
    /// Where each token is in the text.
    spans: &'a [std::ops::Range<usize>],
    pos: usize,
    /// Loop turns so far, for the linearity tests.
    turns: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn is_special(&self, c: char) -> bool {
        self.peek() == Some(&Token::Special(c))
    }

    /// True at the end of an item: the end of input, ",", or ";" in a group.
    fn at_item_end(&self, in_group: bool) -> bool {
        match self.peek() {
            None | Some(Token::Special(',')) => true,
            Some(Token::Special(';')) => in_group,
            Some(_) => false,
        }
    }

    /// `address *("," address)`, empty items allowed (obs-addr-list). In a
    /// group the list ends at ";".
    fn list(&mut self, in_group: bool, out: &mut Vec<Located>) -> Result<(), AddressListError> {
        let tokens = self.tokens;
        while let Some(token) = tokens.get(self.pos) {
            self.turns += 1;
            match token {
                Token::Special(',') => self.pos += 1,
                Token::Special(';') if in_group => return Ok(()),
                // `item` consumes at least one token: the one peeked is
                // neither "," nor a group's ";", so it is part of the item.
                _ => self.item(in_group, out)?,
            }
        }
        // A group missing its ";" at the very end is accepted.
        Ok(())
    }

    /// One mailbox or group. Scans forward to the token that decides
    /// which: "<" (name-addr), ":" (a group's name ends), or the item's end
    /// (a bare addr-spec).
    fn item(&mut self, in_group: bool, out: &mut Vec<Located>) -> Result<(), AddressListError> {
        let start = self.pos;
        let tokens = self.tokens;
        let mut seen_at = false;
        loop {
            self.turns += 1;
            let token = match tokens.get(self.pos) {
                Some(token) if !self.at_item_end(in_group) => token,
                _ => {
                    out.push(self.located(start, self.pos)?);
                    return Ok(());
                }
            };
            match token {
                // "a@b <c@d>" names two addresses at once: refuse it (the
                // "<" then stays in the addr-spec, which fails).
                Token::Special('<') if !seen_at => {
                    self.pos += 1;
                    self.angle_addr(out)?;
                    // Only the item's end may follow ">" (comments are gone).
                    if !self.at_item_end(in_group) {
                        return Err(self.not_an_address(start));
                    }
                    return Ok(());
                }
                Token::Special(':') if !in_group && !seen_at => {
                    // A group: "name: members;".
                    self.pos += 1;
                    self.list(true, out)?;
                    if self.is_special(';') {
                        self.pos += 1;
                    }
                    // After a group only "," or the end may follow:
                    // anything else would be read as one more recipient.
                    if !self.at_item_end(false) {
                        return Err(self.not_an_address(start));
                    }
                    return Ok(());
                }
                token => {
                    seen_at |= *token == Token::Special('@');
                    self.pos += 1;
                }
            }
        }
    }

    /// After "<": `[obs-route] addr-spec ">"`; `<>` names no one.
    fn angle_addr(&mut self, out: &mut Vec<Located>) -> Result<(), AddressListError> {
        let open = self.pos - 1;
        let Some(close) = self.tokens[self.pos..]
            .iter()
            .position(|t| *t == Token::Special('>'))
        else {
            self.turns += self.tokens.len() - self.pos;
            return Err(AddressListError::Unbalanced("angle bracket"));
        };
        // The tokens up to ">" are looked at here once, and passed after.
        self.turns += close + 1;
        let mut first = self.pos;
        let inner = &self.tokens[self.pos..self.pos + close];
        // RFC 5322 4.4 obs-route "@a,@b:" is ignored, as RFC 5321 says.
        if inner.first() == Some(&Token::Special('@'))
            && let Some(colon) = inner.iter().position(|t| *t == Token::Special(':'))
        {
            first += colon + 1;
        }
        let inner = &self.tokens[first..self.pos + close];
        // "<>" (or a route with no address) names no recipient; refusing it
        // is safer than quietly sending to fewer people than written.
        if inner.is_empty() {
            return Err(AddressListError::NotAnAddress(render(
                &self.tokens[open..=self.pos + close],
            )));
        }
        out.push(self.located(first, self.pos + close)?);
        self.pos += close + 1;
        Ok(())
    }

    /// The addr-spec of tokens `from..to` (not empty), and where it is.
    fn located(&self, from: usize, to: usize) -> Result<Located, AddressListError> {
        let address = addr_spec(&self.tokens[from..to])?;
        let start = self.spans.get(from).map_or(0, |s| s.start);
        let end = self
            .spans
            .get(to.saturating_sub(1))
            .map_or(start, |s| s.end);
        Ok(Located {
            address,
            span: start..end,
        })
    }

    /// The item from `start` up to where the parser stopped, as an error.
    fn not_an_address(&self, start: usize) -> AddressListError {
        let end = (self.pos + 1).min(self.tokens.len());
        AddressListError::NotAnAddress(render(&self.tokens[start..end]))
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

/// Tokens back as text, for error messages; a long item is cut short so
/// that one bad field cannot make a megabyte of error text.
fn render(tokens: &[Token]) -> String {
    const SHOWN: usize = 200;
    let mut out = String::new();
    for token in tokens {
        if out.len() > SHOWN {
            break;
        }
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
    if out.len() > SHOWN {
        let mut cut = SHOWN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
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

    // covers: HARD1
    #[test]
    fn hard1_a_stray_closing_parenthesis_or_bracket_is_refused_not_looped_on() {
        #[rustfmt::skip]
        let cases: &[(&str, char)] = &[
            ("Bob :) <bob@example.net>", ')'),
            ("bob@example.net)", ')'),
            ("bob@example.net]", ']'),
            (")", ')'),
            ("a@b.example, ]c@d.example", ']'),
        ];
        for (text, stray) in cases {
            let (result, turns) = parse_counting_turns(text);
            assert_eq!(result, Err(AddressListError::Unopened(*stray)), "{text:?}");
            assert!(turns <= text.len(), "{text:?}: {turns} turns");
        }
    }

    /// Inputs built to be worst cases for a parser that rescans: the
    /// number of loop turns must grow with the input, not its square.
    // covers: HARD1
    #[test]
    fn hard1_loop_turns_stay_linear_on_hostile_lists() {
        let shapes: &[fn(usize) -> String] = &[
            |n| "a:".repeat(n),
            |n| format!("{}b@c.example", "a:".repeat(n)),
            |n| "<".repeat(n),
            |n| "<a@b.example>".repeat(n),
            |n| "a@b.example, ".repeat(n),
            |n| "g: a@b.example; ".repeat(n),
            |n| format!("{}>", "a <".repeat(n)),
            |n| "\"x\" ".repeat(n),
            |n| "(".repeat(n) + &")".repeat(n),
            |n| "a.".repeat(n),
            |n| "@".repeat(n),
        ];
        for (i, shape) in shapes.iter().enumerate() {
            for n in [1_000, 10_000] {
                let text = shape(n);
                let (_, turns) = parse_counting_turns(&text);
                assert!(
                    turns <= 3 * (text.len() + 1),
                    "shape {i} with n={n}: {turns} turns for {} characters",
                    text.len()
                );
            }
        }
    }

    #[test]
    fn spans_cover_each_addr_spec_and_nothing_around_it() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("root", &["root"]),
            ("root (Cron Daemon)", &["root"]),
            ("Cron Daemon <root>", &["root"]),
            ("\"a b\"@x.example, Bob <bob@y.example>", &["\"a b\"@x.example", "bob@y.example"]),
            ("g: u, v@w.example;", &["u", "v@w.example"]),
            ("<@relay.example:a@b.example>", &["a@b.example"]),
            ("jörg (x) <jörg>", &["jörg"]),
        ];
        for (text, expected) in cases {
            let spans: Vec<&str> = parse_located(text)
                .unwrap()
                .iter()
                .map(|l| &text[l.span.clone()])
                .collect();
            assert_eq!(spans, *expected, "{text:?}");
        }
    }

    #[test]
    fn error_text_is_bounded() {
        let text = format!("{}@", "a".repeat(60_000));
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.len() < 400, "{} octets", error.len());
    }

    #[test]
    fn error_names_the_item() {
        let text = parse("a@b.example, John Smith").unwrap_err().to_string();
        assert!(text.contains("John Smith"), "{text}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Pieces that matter to the grammar, so random lists are hostile.
        const PIECES: &[&str] = &[
            "a",
            "b.c",
            "@",
            ".",
            ",",
            ";",
            ":",
            "<",
            ">",
            "(",
            ")",
            "[",
            "]",
            "\"",
            "\\",
            " ",
            "\t",
            "x@y.example",
            "\u{2002}",
            "ü",
        ];

        /// Balanced pieces only, so the parser, not the tokenizer, decides.
        const BALANCED: &[&str] = &[
            "a",
            "b.c",
            "@",
            ".",
            ",",
            ";",
            ":",
            "<",
            ">",
            "(c)",
            "[192.0.2.1]",
            "\"q r\"",
            " ",
            "x@y.example",
            "\u{2002}",
            "ü",
            "Name <n@x.example>",
            "g:",
            ";",
        ];

        /// Up to `max` pieces, picked by index (cheap to generate at 64 KiB).
        fn joined(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
            proptest::collection::vec(0..pieces.len(), 0..max)
                .prop_map(move |picks| picks.into_iter().map(|i| pieces[i]).collect())
        }

        fn hostile(max: usize) -> impl Strategy<Value = String> {
            joined(PIECES, max)
        }

        fn balanced(max: usize) -> impl Strategy<Value = String> {
            joined(BALANCED, max)
        }

        /// Linear turns, and whatever parsed writes back and parses to the
        /// same list (HARD2).
        fn linear_and_round_trips(text: &str) -> Result<(), TestCaseError> {
            let (result, turns) = parse_counting_turns(text);
            prop_assert!(
                turns <= 3 * (text.len() + 1),
                "{} turns for {} octets",
                turns,
                text.len()
            );
            if let Ok(found) = result {
                // Each span holds exactly the address found there.
                for located in &found {
                    let text = text.get(located.span.clone());
                    prop_assert!(text.is_some(), "span {:?} is not in the text", located.span);
                    let alone = parse(text.unwrap_or_default());
                    prop_assert_eq!(alone, Ok(vec![located.address.clone()]));
                }
                let addresses: Vec<Address> = found.into_iter().map(|l| l.address).collect();
                let written: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                prop_assert_eq!(parse(&written.join(", ")), Ok(addresses));
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            // covers: HARD1, HARD2
            #[test]
            fn hard1_any_list_parses_or_fails_in_linear_turns(text in hostile(16_384)) {
                prop_assume!(text.len() <= 64 * 1024);
                linear_and_round_trips(&text)?;
            }

            // covers: HARD1, HARD2
            #[test]
            fn hard1_balanced_lists_reach_the_parser(text in balanced(2_000)) {
                linear_and_round_trips(&text)?;
            }

            // covers: HARD1
            #[test]
            fn hard1_short_lists_too(text in hostile(40)) {
                linear_and_round_trips(&text)?;
            }
        }
    }
}
