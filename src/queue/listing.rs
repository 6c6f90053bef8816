//! `-bp` (`mailq`): the queue as text for people and monitoring scripts,
//! or as JSON with `--json`. Pure: it formats what the store listed.
//!
//! The text format is stable (the README documents it):
//!
//! ```text
//! 00000FA03C9D1E22B7A4 1234 7260 require <alice@example.org>
//!     pending <bob@example.net> attempts=3 next=2026-11-30T03:00:00Z status=4.4.1 detail: mx.example.net: connection refused
//!     delivered <carol@example.com> attempts=1 status=2.0.0 detail: 250 2.0.0 Ok: queued
//! -- 1 entry, 1 recipient pending, 1234 bytes
//! ```
//!
//! An entry line holds the id, the size in octets, the age in seconds, the
//! TLS mode and the envelope sender in angle brackets (`<>` for none),
//! then `dropped` while it waits in the maildrop to be taken in. Each recipient line starts with four spaces and holds
//! the state (pending, delivered, failed), the address in angle brackets,
//! `key=value` fields, and last `detail: ` with the server's reply or the
//! last error up to the end of the line. An empty queue is the one line
//! `Mail queue is empty`.

use std::fmt::Write as _;

use serde::Serialize;

use super::entry::State;
use super::store::Listed;
use crate::text::printable as one_line;

/// The text listing.
pub fn text(listed: &[Listed], now: i64) -> String {
    if listed.is_empty() {
        return "Mail queue is empty\n".to_string();
    }
    let mut out = String::new();
    let (mut pending, mut bytes) = (0usize, 0u64);
    for l in listed {
        let e = &l.entry;
        let _ = write!(
            out,
            "{} {} {} {} <{}>",
            e.id,
            e.size,
            now.saturating_sub(e.created).max(0),
            crate::policy::Mode::from(e.mode),
            one_line(&e.sender)
        );
        if l.dropped {
            out.push_str(" dropped");
        }
        out.push('\n');
        bytes = bytes.saturating_add(e.size);
        for r in &e.recipients {
            if r.state == State::Pending {
                pending += 1;
            }
            let _ = write!(
                out,
                "    {} <{}> attempts={}",
                r.state,
                one_line(&r.address),
                r.attempts
            );
            if r.state == State::Pending {
                let _ = write!(out, " next={}", iso(r.next_attempt));
            }
            if let Some(status) = &r.status {
                let _ = write!(out, " status={}", one_line(status));
            }
            if let Some(detail) = &r.detail {
                let _ = write!(out, " detail: {}", one_line(detail));
            }
            out.push('\n');
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(
        out,
        "-- {}, {} pending, {bytes} bytes",
        plural(listed.len(), "entry").replace("entrys", "entries"),
        plural(pending, "recipient"),
    );
    out
}

#[derive(Serialize)]
struct JsonQueue<'a> {
    entries: Vec<JsonEntry<'a>>,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    id: &'a str,
    size: u64,
    created: String,
    age: i64,
    mode: String,
    reason: &'a str,
    sender: &'a str,
    owner: u32,
    dropped: bool,
    notification: bool,
    recipients: Vec<JsonRecipient<'a>>,
}

#[derive(Serialize)]
struct JsonRecipient<'a> {
    address: &'a str,
    state: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
}

/// The same as [`text`], as one JSON object: `{"entries": [...]}`.
pub fn json(listed: &[Listed], now: i64) -> String {
    let entries = listed
        .iter()
        .map(|l| {
            let e = &l.entry;
            JsonEntry {
                id: &e.id,
                size: e.size,
                created: iso(e.created),
                age: now.saturating_sub(e.created).max(0),
                mode: crate::policy::Mode::from(e.mode).to_string(),
                reason: &e.reason,
                sender: &e.sender,
                owner: l.owner,
                dropped: l.dropped,
                notification: e.bounce,
                recipients: e
                    .recipients
                    .iter()
                    .map(|r| JsonRecipient {
                        address: &r.address,
                        state: r.state.to_string(),
                        attempts: r.attempts,
                        next_attempt: (r.state == State::Pending).then(|| iso(r.next_attempt)),
                        last_attempt: r.last_attempt.map(iso),
                        status: r.status.as_deref(),
                        detail: r.detail.as_deref(),
                        server: r.server.as_deref(),
                    })
                    .collect(),
            }
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&JsonQueue { entries }).unwrap_or_default();
    out.push('\n');
    out
}

/// RFC 3339 in UTC, to the second.
pub fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{Address, ReversePath};
    use crate::policy::Mode;
    use crate::queue::entry::Entry;
    use crate::smtp::{Content, Dsn, Envelope};

    fn listed() -> Vec<Listed> {
        let envelope = Envelope {
            sender: ReversePath::parse("alice@example.org").unwrap(),
            recipients: vec![
                Address::parse("bob@example.net").unwrap(),
                Address::parse("carol@example.com").unwrap(),
            ],
            content: Content::default(),
            size: Some(1234),
            dsn: Dsn::default(),
        };
        let mut entry = Entry::new(
            "00000FA03C9D1E22B7A4".into(),
            1_795_996_400,
            &envelope,
            Mode::Require,
            "--require-tls".into(),
        );
        entry.recipients[0].attempts = 3;
        entry.recipients[0].next_attempt = 1_796_007_600;
        entry.recipients[0].status = Some("4.4.1".into());
        entry.recipients[0].detail = Some("mx.example.net: connection\r\nrefused".into());
        entry.recipients[1].state = State::Delivered;
        entry.recipients[1].attempts = 1;
        entry.recipients[1].status = Some("2.0.0".into());
        entry.recipients[1].detail = Some("250 2.0.0 Ok: queued".into());
        vec![Listed {
            entry,
            dropped: false,
            owner: 1000,
        }]
    }

    // covers: FAIL3
    #[test]
    fn the_text_listing_has_the_documented_shape() {
        let text = text(&listed(), 1_796_003_660);
        let expected = "\
00000FA03C9D1E22B7A4 1234 7260 require <alice@example.org>
    pending <bob@example.net> attempts=3 next=2026-11-30T03:00:00Z status=4.4.1 detail: mx.example.net: connection\\r\\nrefused
    delivered <carol@example.com> attempts=1 status=2.0.0 detail: 250 2.0.0 Ok: queued
-- 1 entry, 1 recipient pending, 1234 bytes
";
        assert_eq!(text, expected);
    }

    #[test]
    fn an_empty_queue_says_so_and_nothing_else() {
        assert_eq!(text(&[], 0), "Mail queue is empty\n");
        assert_eq!(json(&[], 0), "{\n  \"entries\": []\n}\n");
    }

    #[test]
    fn the_json_listing_holds_the_same_facts() {
        let json: serde_json::Value =
            serde_json::from_str(&json(&listed(), 1_796_003_660)).unwrap();
        let entry = &json["entries"][0];
        assert_eq!(entry["id"], "00000FA03C9D1E22B7A4");
        assert_eq!(entry["age"], 7260);
        assert_eq!(entry["mode"], "require");
        assert_eq!(entry["sender"], "alice@example.org");
        assert_eq!(entry["dropped"], false);
        assert_eq!(entry["recipients"][0]["state"], "pending");
        assert_eq!(
            entry["recipients"][0]["next_attempt"],
            "2026-11-30T03:00:00Z"
        );
        assert_eq!(entry["recipients"][1]["state"], "delivered");
        assert!(entry["recipients"][1].get("next_attempt").is_none());
    }
}
