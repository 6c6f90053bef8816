//! The header fields tlsend adds to a message that lacks them (IN7): Date,
//! Message-ID and From. Pure: the caller passes the clock and the random
//! bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset};

use super::header::HeaderError;
use crate::address::Address;

/// RFC 5322 3.3 date-time, e.g. `Sun, 22 Nov 2026 22:18:00 +0100`.
pub fn date_value(now: DateTime<FixedOffset>) -> String {
    now.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// RFC 5322 3.6.4 msg-id: `<time.random@domain>`; the random part keeps
/// ids from two runs in the same second apart.
pub fn message_id_value(now: DateTime<FixedOffset>, random: &[u8], domain: &str) -> String {
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{}.{random}@{domain}>", now.format("%Y%m%d%H%M%S"))
}

/// `Full Name <address>`, or the bare address without a name. A name that
/// is not a plain phrase is quoted (RFC 5322 3.2.4); a non-ASCII one
/// becomes RFC 2047 encoded words.
pub fn from_value(full_name: Option<&str>, address: &Address) -> Result<String, HeaderError> {
    let name = full_name.map(str::trim).filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Ok(address.to_string());
    };
    if name.chars().any(char::is_control) {
        return Err(HeaderError::BadValue {
            name: "From".into(),
            reason: "full name contains a control character",
        });
    }
    let display = if !name.is_ascii() {
        encoded_words(name)
    } else if !name.contains("=?")
        && name
            .split(' ')
            .all(|word| !word.is_empty() && word.chars().all(is_atext))
    {
        name.to_string()
    } else {
        let escaped: String = name
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    };
    Ok(format!("{display} <{address}>"))
}

/// RFC 5322 3.2.3 atext.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// RFC 2047 base64 encoded words of at most 75 characters each, split on
/// character boundaries.
fn encoded_words(text: &str) -> String {
    const MAX_BYTES: usize = 45; // 60 base64 characters + 12 of framing
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    let encoded: Vec<String> = words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", BASE64.encode(w.as_bytes())))
        .collect();
    encoded.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-22T22:18:05+01:00").unwrap()
    }

    // covers: IN7
    #[test]
    fn in7_date_and_message_id_have_rfc5322_syntax() {
        assert_eq!(date_value(time()), "Sun, 22 Nov 2026 22:18:05 +0100");
        assert_eq!(
            message_id_value(time(), &[0xab, 0x01, 0xff], "example.org"),
            "<20261122221805.ab01ff@example.org>"
        );
    }

    // covers: IN7, IN4
    #[test]
    fn in7_from_quotes_or_encodes_the_full_name() {
        let a = Address::parse("cron@host.example").unwrap();
        #[rustfmt::skip]
        let cases: &[(Option<&str>, &str)] = &[
            (None, "cron@host.example"),
            (Some("  "), "cron@host.example"),
            (Some("CronDaemon"), "CronDaemon <cron@host.example>"),
            (Some("Cron Daemon"), "Cron Daemon <cron@host.example>"),
            (Some("Daemon, Cron"), "\"Daemon, Cron\" <cron@host.example>"),
            (Some("The \"Cron\""), "\"The \\\"Cron\\\"\" <cron@host.example>"),
            (Some("Jörg"), "=?UTF-8?B?SsO2cmc=?= <cron@host.example>"),
            // Not an encoded word, so it must not look like one.
            (Some("=?x?="), "\"=?x?=\" <cron@host.example>"),
        ];
        for (name, expected) in cases {
            assert_eq!(from_value(*name, &a).unwrap(), *expected, "{name:?}");
        }
        assert!(from_value(Some("a\r\nBcc: x@y.example"), &a).is_err());
    }

    #[test]
    fn long_non_ascii_names_become_several_short_words() {
        let a = Address::parse("a@b.example").unwrap();
        let value = from_value(Some(&"ü".repeat(60)), &a).unwrap();
        let words: Vec<&str> = value.split(' ').filter(|w| w.starts_with("=?")).collect();
        assert!(words.len() >= 3, "{value}");
        assert!(words.iter().all(|w| w.len() <= 75), "{value}");
        let decoded: String = words
            .iter()
            .map(|w| {
                let b64 = w.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
                String::from_utf8(BASE64.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, "ü".repeat(60));
    }
}
