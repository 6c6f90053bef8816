//! Server capabilities from an EHLO reply (RFC 5321 4.1.1.1).
//!
//! Every advertised keyword is kept, compared case-insensitively (SUB8), so
//! an extension this code does not know yet (REQUIRETLS was once one) is
//! never lost. A `Capabilities` value belongs to one EHLO: the session
//! replaces it after STARTTLS, never merges (RFC 3207 4.2, SUB5).

use super::reply::Reply;

/// The keywords of one EHLO reply with their parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The server's name from the first line.
    server_name: String,
    /// Upper-cased keyword and its parameter text, in the order advertised.
    keywords: Vec<(String, String)>,
}

impl Capabilities {
    /// Reads the keywords of a positive EHLO reply. The first line is the
    /// server's greeting; each later line is `keyword [params]`.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut lines = reply.lines().iter();
        let server_name = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        let keywords = lines
            .filter_map(|line| {
                let line = line.trim();
                let (keyword, params) = line.split_once([' ', '\t']).unwrap_or((line, ""));
                is_keyword(keyword)
                    .then(|| (keyword.to_ascii_uppercase(), params.trim().to_string()))
            })
            .collect();
        Capabilities {
            server_name,
            keywords,
        }
    }

    /// No extensions: what a server answering only HELO offers.
    pub fn none() -> Capabilities {
        Capabilities::default()
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// True when `keyword` was advertised, in any letter case.
    pub fn has(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameter text of `keyword`, `Some("")` when it has none.
    pub fn params(&self, keyword: &str) -> Option<&str> {
        self.keywords
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_str())
    }

    /// Every keyword as advertised (upper-cased), for the transcript.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(|(k, _)| k.as_str())
    }

    /// SASL mechanisms of the AUTH keyword, upper-cased.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.params("AUTH")
            .map(|p| p.split_whitespace().map(str::to_ascii_uppercase).collect())
            .unwrap_or_default()
    }

    /// The SIZE limit (RFC 1870); `None` when absent, unparsable or 0 (no
    /// fixed limit).
    pub fn size_limit(&self) -> Option<u64> {
        self.params("SIZE")?.parse().ok().filter(|&n| n > 0)
    }
}

/// RFC 5321: `ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
fn is_keyword(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply;

    fn caps(text: &str) -> Capabilities {
        let (r, _) = reply::parse(text.as_bytes()).unwrap().unwrap();
        Capabilities::from_ehlo(&r)
    }

    // covers: SUB8
    #[test]
    fn sub8_keywords_compare_case_insensitively_and_all_are_kept() {
        let c = caps(
            "250-mx.example Hello\r\n250-requiretls\r\n250-Size 1000\r\n250-X-UNKNOWN-EXT a b\r\n\
             250-auth plain Login\r\n250 8BITMIME\r\n",
        );
        assert_eq!(c.server_name(), "mx.example");
        assert!(c.has("REQUIRETLS") && c.has("requiretls"));
        assert_eq!(c.size_limit(), Some(1000));
        assert_eq!(c.params("x-unknown-ext"), Some("a b"));
        assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        assert_eq!(
            c.keywords().collect::<Vec<_>>(),
            ["REQUIRETLS", "SIZE", "X-UNKNOWN-EXT", "AUTH", "8BITMIME"]
        );
        assert!(!c.has("STARTTLS"));
    }

    #[test]
    fn ignores_lines_that_are_not_keywords() {
        // A stripping middlebox may replace STARTTLS with XXXXXXXX: that is a
        // keyword, just not STARTTLS; garbage without a keyword is skipped.
        let c = caps("250-mx\r\n250-XXXXXXXX\r\n250-=bad\r\n250 -dash\r\n");
        assert_eq!(c.keywords().collect::<Vec<_>>(), ["XXXXXXXX"]);
        assert!(!c.has("STARTTLS"));
    }

    #[test]
    fn size_zero_means_no_limit() {
        assert_eq!(caps("250-mx\r\n250 SIZE 0\r\n").size_limit(), None);
        assert_eq!(caps("250-mx\r\n250 SIZE\r\n").size_limit(), None);
    }
}
