//! SMTP replies (RFC 5321 4.2) and their enhanced status codes (RFC 3463).
//!
//! [`parse`] is a pure, incremental parser over the bytes received so far: it
//! returns a complete reply and how many bytes it used, or `None` when more
//! bytes are needed. It refuses anything that is not a well-formed reply
//! instead of guessing, because a client that "repairs" replies can be made to
//! read an attacker's bytes as the server's answer.

use std::fmt;

use crate::status::EnhancedCode;

/// Longest reply line accepted, without its line ending. RFC 5321 4.5.3.1.5
/// allows 512 octets; real servers send longer EHLO lines, so allow more but
/// stay bounded.
pub const MAX_LINE: usize = 2048;
/// Most lines accepted in one multi-line reply.
pub const MAX_LINES: usize = 256;

/// A complete SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    /// Text of each line after the code and separator, with control
    /// characters escaped so that a reply can be printed safely.
    lines: Vec<String>,
}

/// Why bytes from the server are not a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not start with a three-digit code from 200 to 559
    /// followed by a space, a hyphen or the line end.
    Malformed(String),
    /// The lines of a multi-line reply carry different codes.
    InconsistentCode {
        first: u16,
        later: u16,
    },
    LineTooLong,
    TooManyLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed(line) => write!(f, "malformed reply line {line:?}"),
            ReplyError::InconsistentCode { first, later } => {
                write!(f, "multi-line reply mixes codes {first} and {later}")
            }
            ReplyError::LineTooLong => write!(f, "reply line longer than {MAX_LINE} octets"),
            ReplyError::TooManyLines => write!(f, "reply with more than {MAX_LINES} lines"),
        }
    }
}

impl std::error::Error for ReplyError {}

impl Reply {
    /// Builds a reply; used for tests and for local refusals shown in the
    /// shape of a server reply.
    pub fn new(code: u16, text: &str) -> Reply {
        let enhanced = enhanced_prefix(code, text).map(|(e, _)| e);
        Reply {
            code,
            enhanced,
            lines: vec![escape_controls(text.as_bytes())],
        }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code of the first line, when its class agrees
    /// with the reply code (RFC 3463 section 2).
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: do not try again.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The text of all lines without the enhanced code of the first, joined
    /// by " / ", as one line for messages.
    pub fn text(&self) -> String {
        let mut parts = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.iter().enumerate() {
            let text = if i == 0 {
                enhanced_prefix(self.code, line).map_or(line.as_str(), |(_, rest)| rest)
            } else {
                line.as_str()
            };
            if !text.is_empty() {
                parts.push(text);
            }
        }
        parts.join(" / ")
    }
}

/// `550 5.7.30 text / more text`: code, enhanced code, text.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Parses one reply from the start of `buf`. `Ok(None)`: incomplete, read more.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    ReplyParser::default().parse(buf)
}

/// An incremental reply parser for a receive buffer that grows at its end
/// between calls. It remembers the lines already parsed and how far it has
/// searched for the next line end, so each received byte is looked at once
/// however finely a server splits its reply: a reply trickled one byte at a
/// time costs no more than one sent whole (HARD1).
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// Bytes of the buffer taken by complete lines of this reply.
    pos: usize,
    /// Bytes after `pos` already known to hold no line end.
    searched: usize,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Parses on from where the last call stopped. `buf` must start with the
    /// bytes given before (more may follow). A complete reply comes back
    /// with the number of bytes it used, and the parser starts afresh for
    /// the bytes after those.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        loop {
            let rest = buf.get(self.pos..).unwrap_or_default();
            let unsearched = rest.get(self.searched..).unwrap_or_default();
            let Some(found) = unsearched.iter().position(|&b| b == b'\n') else {
                self.searched = rest.len();
                if rest.len() > MAX_LINE + 1 {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            let newline = self.searched + found;
            // Servers should end lines with CRLF; a bare LF is tolerated as
            // Postfix's client does, since it cannot change which bytes are
            // read as which reply.
            let line = rest[..newline]
                .strip_suffix(b"\r")
                .unwrap_or(&rest[..newline]);
            if line.len() > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            self.pos += newline + 1;
            self.searched = 0;
            let (line_code, more, text) = parse_line(line)?;
            match self.code {
                None => self.code = Some(line_code),
                Some(first) if first != line_code => {
                    return Err(ReplyError::InconsistentCode {
                        first,
                        later: line_code,
                    });
                }
                Some(_) => {}
            }
            self.lines.push(escape_controls(text));
            if self.lines.len() > MAX_LINES {
                return Err(ReplyError::TooManyLines);
            }
            if !more {
                let done = std::mem::take(self);
                let enhanced = done
                    .lines
                    .first()
                    .and_then(|l| enhanced_prefix(line_code, l))
                    .map(|(e, _)| e);
                let reply = Reply {
                    code: line_code,
                    enhanced,
                    lines: done.lines,
                };
                return Ok(Some((reply, done.pos)));
            }
        }
    }
}

/// One reply line: code, whether more lines follow, and the text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let malformed = || ReplyError::Malformed(escape_controls(&line[..line.len().min(80)]));
    let digits = line.get(..3).ok_or_else(malformed)?;
    // RFC 5321 4.2: first digit 2-5, second 0-5, third 0-9.
    let valid = matches!(digits[0], b'2'..=b'5')
        && matches!(digits[1], b'0'..=b'5')
        && digits[2].is_ascii_digit();
    if !valid {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, false, &[])),
        Some(b' ') => Ok((code, false, &line[4..])),
        Some(b'-') => Ok((code, true, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

/// The enhanced code at the start of `text` if its class matches the reply
/// code's first digit.
fn enhanced_prefix(code: u16, text: &str) -> Option<(EnhancedCode, &str)> {
    let (enhanced, rest) = EnhancedCode::parse_prefix(text)?;
    (u16::from(enhanced.class) == code / 100).then_some((enhanced, rest))
}

/// Makes server text safe to print: control characters (terminal escapes
/// among them) and invalid UTF-8 become visible escapes.
fn escape_controls(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str) -> Reply {
        let (reply, used) = parse(input.as_bytes()).unwrap().unwrap();
        assert_eq!(used, input.len(), "{input:?}");
        reply
    }

    #[test]
    fn parses_single_and_multi_line_replies() {
        let r = one("250 2.0.0 Ok\r\n");
        assert_eq!(r.code(), 250);
        assert_eq!(r.enhanced(), Some(EnhancedCode::new(2, 0, 0)));
        assert_eq!(r.text(), "Ok");
        assert_eq!(r.to_string(), "250 2.0.0 Ok");

        let r = one("250-mx.example\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n");
        assert_eq!(r.lines(), ["mx.example", "PIPELINING", "REQUIRETLS"]);
        assert_eq!(r.enhanced(), None);

        let r = one("354\r\n");
        assert_eq!((r.code(), r.lines()), (354, &[String::new()][..]));
        assert!(r.is_intermediate());
    }

    #[test]
    fn waits_for_a_complete_reply() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"250-first\r\n"), Ok(None));
        assert_eq!(parse(b"250-first\r\n250 sec"), Ok(None));
    }

    #[test]
    fn leaves_following_bytes_unread() {
        // Bytes after the reply are the caller's to judge (SUB7 depends on it).
        let input = b"220 2.0.0 go ahead\r\n250 injected\r\n";
        let (reply, used) = parse(input).unwrap().unwrap();
        assert_eq!(reply.code(), 220);
        assert_eq!(&input[used..], b"250 injected\r\n");
    }

    #[test]
    fn enhanced_code_class_must_match() {
        assert_eq!(one("550 4.7.1 odd\r\n").enhanced(), None);
        assert_eq!(
            one("550 5.7.30 REQUIRETLS needed\r\n").enhanced(),
            Some(EnhancedCode::new(5, 7, 30))
        );
        assert_eq!(
            one("451 4.3.0 later\n").enhanced(),
            Some(EnhancedCode::new(4, 3, 0))
        );
    }

    #[test]
    fn refuses_what_is_not_a_reply() {
        type IsExpected = fn(&ReplyError) -> bool;
        let cases: &[(&[u8], IsExpected)] = &[
            (b"hello\r\n", |e| matches!(e, ReplyError::Malformed(_))),
            (b"25\r\n", |e| matches!(e, ReplyError::Malformed(_))),
            (b"250x\r\n", |e| matches!(e, ReplyError::Malformed(_))),
            (b"199 too low\r\n", |e| {
                matches!(e, ReplyError::Malformed(_))
            }),
            (b"600 too high\r\n", |e| {
                matches!(e, ReplyError::Malformed(_))
            }),
            (b"260 bad second digit\r\n", |e| {
                matches!(e, ReplyError::Malformed(_))
            }),
            (b"250-a\r\n550 b\r\n", |e| {
                matches!(
                    e,
                    ReplyError::InconsistentCode {
                        first: 250,
                        later: 550
                    }
                )
            }),
        ];
        for (input, check) in cases {
            let err = parse(input).unwrap_err();
            assert!(
                check(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        assert_eq!(parse(long.as_bytes()), Err(ReplyError::LineTooLong));
        let endless = "x".repeat(MAX_LINE + 10);
        assert_eq!(parse(endless.as_bytes()), Err(ReplyError::LineTooLong));
        let many = "250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(parse(many.as_bytes()), Err(ReplyError::TooManyLines));
    }

    /// Feeds `input` in pieces of `step` bytes, as a server trickling it.
    fn trickled(input: &[u8], step: usize) -> Result<Option<(Reply, usize)>, ReplyError> {
        let mut parser = ReplyParser::default();
        let mut end = 0;
        loop {
            end = (end + step).min(input.len());
            match parser.parse(&input[..end])? {
                Some(done) => return Ok(Some(done)),
                None if end == input.len() => return Ok(None),
                None => {}
            }
        }
    }

    #[test]
    fn any_split_gives_the_same_reply() {
        let inputs: &[&[u8]] = &[
            b"250-mx.example\r\n250-PIPELINING\r\n250 REQUIRETLS\r\nnext",
            b"550 5.7.30 REQUIRETLS needed\n",
            b"250-a\r\n550 b\r\n",
            b"hello\r\n",
            b"250-one\r\n250-two",
        ];
        for input in inputs {
            let whole = parse(input);
            for step in 1..=input.len() {
                assert_eq!(trickled(input, step), whole, "{input:?} in steps of {step}");
            }
        }
    }

    // covers: HARD1
    #[test]
    fn hard1_a_trickled_reply_is_scanned_once() {
        // The longest reply allowed, one byte at a time: the parser must
        // not start over after every byte. Counted as bytes searched.
        let line = format!("250-{}\r\n", "x".repeat(MAX_LINE - 4));
        let mut input = line.repeat(MAX_LINES - 1).into_bytes();
        input.extend_from_slice(b"250 end\r\n");
        // Each call searches from `pos + searched` on; after each call that
        // mark must stand at the end of what was given, so no byte is
        // searched twice.
        let mut parser = ReplyParser::default();
        let mut result = None;
        for end in 1..=input.len() {
            result = parser.parse(&input[..end]).unwrap();
            if result.is_none() {
                assert_eq!(parser.pos + parser.searched, end);
            }
        }
        let (reply, used) = result.unwrap();
        assert_eq!((reply.lines().len(), used), (MAX_LINES, input.len()));
    }

    #[test]
    fn escapes_terminal_control_sequences() {
        let r = one("550 \x1b[31mred\x07\r\n");
        assert_eq!(r.text(), "\\u{1b}[31mred\\u{7}");
        assert!(!r.to_string().contains('\x1b'));
    }
}
