//! RFC 3463 enhanced mail system status codes (`class.subject.detail`), and
//! the named codes tlsend reports for failures it decides itself.
//!
//! A local refusal such as "the server does not offer REQUIRETLS" is given the
//! same shape as a server's reply (RFC 8689 4.2.1 names 5.7.30 and 5.7.10), so
//! that it reaches the user, the exit code and later the DSN by one path.

use std::fmt;

/// An enhanced status code such as `5.7.30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Reads a code at the start of `text` (RFC 3463 section 2: class is 2, 4
    /// or 5; subject and detail are 1 to 3 digits) followed by a space or the
    /// end. Returns the code and the rest of the text after the space.
    pub fn parse_prefix(text: &str) -> Option<(EnhancedCode, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let (code, rest) = text.split_at(end);
        let mut parts = code.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let number = |s: &str, max: usize| -> Option<u16> {
            if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        let code = EnhancedCode::new(class, number(subject, 3)?, number(detail, 3)?);
        Some((code, rest.strip_prefix(' ').unwrap_or(rest)))
    }

    /// True for class 5: retrying will not help.
    pub fn is_permanent(self) -> bool {
        self.class == 5
    }

    /// The same condition with another class, e.g. 5.7.10 as a temporary 4.7.10.
    pub fn with_class(self, class: u8) -> EnhancedCode {
        EnhancedCode { class, ..self }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The codes tlsend itself assigns (RFC 3463, RFC 5248 registry, RFC 8689).
pub mod codes {
    use super::EnhancedCode;

    /// 5.7.10 Encryption needed: TLS could not be established or verified
    /// (RFC 8689 4.2.1).
    pub const ENCRYPTION_NEEDED: EnhancedCode = EnhancedCode::new(5, 7, 10);
    /// 5.7.30 REQUIRETLS support required (RFC 8689 4.2.1, section 7).
    pub const REQUIRETLS_NEEDED: EnhancedCode = EnhancedCode::new(5, 7, 30);
    /// 5.6.3 Conversion required but not supported: 8-bit content for a
    /// server without 8BITMIME.
    pub const CONVERSION_NOT_SUPPORTED: EnhancedCode = EnhancedCode::new(5, 6, 3);
    /// 5.6.7 Non-ASCII addresses not permitted for that sender/recipient
    /// (RFC 6531): SMTPUTF8 needed but not offered.
    pub const SMTPUTF8_NEEDED: EnhancedCode = EnhancedCode::new(5, 6, 7);
    /// 5.7.8 Authentication credentials invalid.
    pub const AUTH_FAILED: EnhancedCode = EnhancedCode::new(5, 7, 8);
    /// 5.5.0 Other or undefined protocol status: the server broke SMTP.
    pub const PROTOCOL_ERROR: EnhancedCode = EnhancedCode::new(5, 5, 0);
    /// 4.4.1 No answer from host.
    pub const NO_ANSWER: EnhancedCode = EnhancedCode::new(4, 4, 1);
    /// 4.4.2 Bad connection.
    pub const BAD_CONNECTION: EnhancedCode = EnhancedCode::new(4, 4, 2);
    /// 5.3.0 Other or undefined mail system status (local failure).
    pub const LOCAL_FAILURE: EnhancedCode = EnhancedCode::new(5, 3, 0);
    /// 4.3.5 System incorrectly configured: no usable trust anchors here.
    pub const MISCONFIGURED: EnhancedCode = EnhancedCode::new(4, 3, 5);
    /// 4.3.0 Other or undefined mail system status, temporary: tlsend
    /// itself was stopped (a signal, an internal error).
    pub const STOPPED: EnhancedCode = EnhancedCode::new(4, 3, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_at_the_start_of_reply_text() {
        let cases: &[(&str, Option<(EnhancedCode, &str)>)] = &[
            (
                "5.7.30 REQUIRETLS needed",
                Some((EnhancedCode::new(5, 7, 30), "REQUIRETLS needed")),
            ),
            ("2.0.0 Ok", Some((EnhancedCode::new(2, 0, 0), "Ok"))),
            ("4.4.2", Some((EnhancedCode::new(4, 4, 2), ""))),
            (
                "5.1.1 <x@y>: unknown",
                Some((EnhancedCode::new(5, 1, 1), "<x@y>: unknown")),
            ),
            ("3.0.0 no such class", None),
            ("5.7 missing detail", None),
            ("5.7.1000 detail too long", None),
            ("5.7.1.2 too many parts", None),
            ("5.a.1 not a number", None),
            ("Ok", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(EnhancedCode::parse_prefix(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn displays_and_changes_class() {
        assert_eq!(codes::REQUIRETLS_NEEDED.to_string(), "5.7.30");
        assert_eq!(codes::ENCRYPTION_NEEDED.with_class(4).to_string(), "4.7.10");
        assert!(codes::ENCRYPTION_NEEDED.is_permanent());
        assert!(!codes::NO_ANSWER.is_permanent());
    }
}
