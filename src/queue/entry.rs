//! One queue entry's state: the envelope, the TLS mode and why, and a state
//! per recipient. It is one line of JSON, so that a reader can find where
//! the state ends and the message begins without any other framing, and
//! so that it can be rewritten on its own when a recipient's state changes.
//!
//! The scheduling rules live here too, as pure functions of the state and
//! the time: which recipients are due, the exponential backoff, expiry and
//! the delay warning.

use serde::{Deserialize, Serialize};

use crate::address::{Address, ReversePath};
use crate::policy::Mode;
use crate::smtp::{Content, Dsn, Envelope, Notify, Ret};

/// The format's version; an entry with another is refused, never guessed at.
pub const VERSION: u32 = 1;

/// The longest state line read: a message with thousands of recipients
/// fits; a hostile drop file cannot make the runner read without end.
pub const MAX_STATE_LEN: usize = 4 << 20;

/// First retry after 5 minutes, doubling up to about an hour (Postfix's
/// minimal_backoff_time and maximal_backoff_time).
pub const MIN_BACKOFF_SECS: i64 = 300;
pub const MAX_BACKOFF_SECS: i64 = 4000;

/// A queue entry's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub version: u32,
    pub id: String,
    /// When the message was first queued, Unix seconds.
    pub created: i64,
    /// The user who queued it (set when a runner takes it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
    /// The envelope sender; empty for `<>`.
    pub sender: String,
    pub mode: ModeName,
    /// Why the mode was chosen ("--require-tls", "account \"work\"").
    pub reason: String,
    /// The account named with -a, if any; the runner's configuration says
    /// what it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--direct` was given.
    #[serde(default)]
    pub direct: bool,
    /// This entry is a delivery status notification: its sender is empty,
    /// and in require mode it still goes to a verified hop that lacks
    /// REQUIRETLS (RFC 8689 section 5).
    #[serde(default)]
    pub bounce: bool,
    #[serde(default)]
    pub dsn: DsnParams,
    #[serde(default)]
    pub content: ContentFlags,
    /// The message's size in octets as stored.
    pub size: u64,
    /// A delay warning was sent.
    #[serde(default)]
    pub warned: bool,
    /// Failure notifications queued so far (they are named after it).
    #[serde(default)]
    pub notices: u32,
    pub recipients: Vec<Recipient>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Require,
    Optional,
    Default,
}

impl From<Mode> for ModeName {
    fn from(mode: Mode) -> ModeName {
        match mode {
            Mode::Require => ModeName::Require,
            Mode::Optional => ModeName::Optional,
            Mode::Default => ModeName::Default,
        }
    }
}

impl From<ModeName> for Mode {
    fn from(mode: ModeName) -> Mode {
        match mode {
            ModeName::Require => Mode::Require,
            ModeName::Optional => Mode::Optional,
            ModeName::Default => Mode::Default,
        }
    }
}

/// RFC 3461 parameters as given with the message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsnParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<RetName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// `never`, or any of `success`, `failure`, `delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<NotifyName>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetName {
    Full,
    Hdrs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyName {
    Never,
    Success,
    Failure,
    Delay,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentFlags {
    #[serde(default)]
    pub eight_bit: bool,
    #[serde(default)]
    pub utf8_header: bool,
    #[serde(default)]
    pub declared_8bitmime: bool,
}

/// One recipient and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub address: String,
    pub state: State,
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (Unix seconds); pending recipients only.
    #[serde(default)]
    pub next_attempt: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<i64>,
    /// The enhanced status code of the last result ("4.4.1", "5.7.30").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The server's reply when delivered, the last error otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The server that answered last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// RFC 3461 ORCPT, decoded, when the recipient has one of its own (an
    /// alias's target, or given by an SMTP client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not delivered yet; to be tried.
    Pending,
    /// A server took the message for this recipient: never sent again.
    Delivered,
    /// Failed for good; the sender was told (or there was nobody to tell).
    Failed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Failed => "failed",
        })
    }
}

/// Why a state line could not be used.
#[derive(Debug)]
pub enum EntryError {
    /// Not JSON of this format.
    Format(String),
    /// Another format version.
    Version(u32),
    /// A field holds something no tlsend would have written.
    Invalid(String),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Format(e) => write!(f, "not a tlsend queue entry: {e}"),
            EntryError::Version(v) => write!(
                f,
                "queue entry format version {v}, this tlsend reads version {VERSION}"
            ),
            EntryError::Invalid(e) => write!(f, "invalid queue entry: {e}"),
        }
    }
}

impl std::error::Error for EntryError {}

/// Is `id` a name the queue could have given? Only these are ever used as
/// file names, so no id can reach outside the queue's directories.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.starts_with('-')
}

/// Is `name` one a sender gives a dropped file ([`super::new_id`]: 20
/// upper-case hexadecimal digits)? Notifications' ids add a suffix.
pub fn valid_drop_id(name: &str) -> bool {
    name.len() == 20
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl Entry {
    /// The entry as the runner keeps it for another user (`owner`): the
    /// envelope, the mode and why, and nothing else its owner wrote. Every
    /// recipient is pending and due now; no route, no notification flag, no
    /// creation time in the future.
    pub fn foreign(&self, owner: u32, now: i64) -> Entry {
        Entry {
            version: VERSION,
            id: self.id.clone(),
            // Its queueing is now: a time of the owner's choice could keep
            // it from expiring, or expire it at once.
            created: now,
            owner: Some(owner),
            sender: self.sender.clone(),
            mode: self.mode,
            reason: self.reason.clone(),
            account: None,
            direct: false,
            bounce: false,
            dsn: self.dsn.clone(),
            content: self.content,
            size: self.size,
            warned: false,
            notices: 0,
            recipients: self
                .recipients
                .iter()
                .map(|r| Recipient::pending(r.address.clone(), now))
                .collect(),
        }
    }

    /// A new entry for `envelope`, every recipient pending and due now.
    pub fn new(id: String, now: i64, envelope: &Envelope, mode: Mode, reason: String) -> Entry {
        Entry {
            version: VERSION,
            id,
            created: now,
            owner: None,
            sender: match &envelope.sender {
                ReversePath::Null => String::new(),
                ReversePath::Address(a) => a.to_string(),
            },
            mode: mode.into(),
            reason,
            account: None,
            direct: false,
            bounce: false,
            dsn: DsnParams::from(&envelope.dsn),
            content: ContentFlags {
                eight_bit: envelope.content.eight_bit,
                utf8_header: envelope.content.utf8_header,
                declared_8bitmime: envelope.content.declared_8bitmime,
            },
            size: envelope.size.unwrap_or(0),
            warned: false,
            notices: 0,
            recipients: envelope
                .recipients
                .iter()
                .map(|r| Recipient {
                    orcpt: envelope.dsn.original_recipients.get(r).cloned(),
                    ..Recipient::pending(r.to_string(), now)
                })
                .collect(),
        }
    }

    /// Reads a state line (without its line feed).
    pub fn parse(line: &[u8]) -> Result<Entry, EntryError> {
        if line.len() > MAX_STATE_LEN {
            return Err(EntryError::Invalid(format!(
                "the state is longer than {MAX_STATE_LEN} bytes"
            )));
        }
        // The version first, so that a newer format is named as such
        // rather than reported as garbage.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(line).map_err(|e| EntryError::Format(e.to_string()))?;
        if versioned.version != VERSION {
            return Err(EntryError::Version(versioned.version));
        }
        let mut entry: Entry =
            serde_json::from_slice(line).map_err(|e| EntryError::Format(e.to_string()))?;
        entry.check()?;
        entry.require_headers_only();
        Ok(entry)
    }

    /// The state as one line, line feed included.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// What a parsed entry must satisfy before anything acts on it.
    fn check(&self) -> Result<(), EntryError> {
        let invalid = |e: String| Err(EntryError::Invalid(e));
        if !valid_id(&self.id) {
            return invalid(format!("id {:?}", self.id));
        }
        // Addresses in the form tlsend writes them, so that a recipient
        // is found again by its address when a server has answered.
        let canonical = |text: &str| Address::parse(text).is_ok_and(|a| a.to_string() == text);
        if !self.sender.is_empty() && !canonical(&self.sender) {
            return invalid(format!("sender {:?}", self.sender));
        }
        if self.recipients.is_empty() {
            return invalid("no recipients".into());
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.recipients {
            match Address::parse(&r.address) {
                Err(e) => return invalid(format!("recipient {:?}: {e}", r.address)),
                Ok(address) if address.to_string() != r.address => {
                    return invalid(format!(
                        "recipient {:?} is not written as {address}",
                        r.address
                    ));
                }
                // One state per recipient, or a delivered one could stay
                // pending under its other name.
                Ok(address) if !seen.insert(address.to_string()) => {
                    return invalid(format!("recipient {:?} is listed twice", r.address));
                }
                Ok(_) => {}
            }
            if let Some(orcpt) = &r.orcpt
                && !crate::smtp::command::is_valid_orcpt(orcpt)
            {
                return invalid(format!("ORCPT {orcpt:?} of {:?}", r.address));
            }
        }
        if let Some(envid) = &self.dsn.envid
            && (envid.is_empty()
                || envid.len() > 100
                || !envid.bytes().all(|b| b.is_ascii_graphic()))
        {
            return invalid(format!("envid {envid:?}"));
        }
        if self.dsn.notify.as_ref().is_some_and(Vec::is_empty) {
            return invalid("an empty NOTIFY list".into());
        }
        if self.bounce && !self.sender.is_empty() {
            return invalid("a notification with a sender".into());
        }
        Ok(())
    }

    /// RFC 8689 section 5 and FAIL5: a require-mode message's bounce
    /// carries its header only, whatever RET asked.
    pub fn require_headers_only(&mut self) {
        if self.mode == ModeName::Require && self.dsn.ret == Some(RetName::Full) {
            self.dsn.ret = Some(RetName::Hdrs);
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode.into()
    }

    pub fn reverse_path(&self) -> ReversePath {
        if self.sender.is_empty() {
            ReversePath::Null
        } else {
            // Checked when parsed or made.
            Address::parse(&self.sender).map_or(ReversePath::Null, ReversePath::Address)
        }
    }

    /// The envelope for `recipients` (a subset of this entry's).
    pub fn envelope(&self, recipients: Vec<Address>) -> Envelope {
        let mut dsn = self.dsn.to_dsn();
        let given: std::collections::HashMap<&str, &String> = self
            .recipients
            .iter()
            .filter_map(|r| r.orcpt.as_ref().map(|o| (r.address.as_str(), o)))
            .collect();
        if !given.is_empty() {
            for address in &recipients {
                if let Some(orcpt) = given.get(address.to_string().as_str()) {
                    dsn.original_recipients
                        .insert(address.clone(), (*orcpt).clone());
                }
            }
        }
        Envelope {
            sender: self.reverse_path(),
            recipients,
            content: Content {
                eight_bit: self.content.eight_bit,
                utf8_header: self.content.utf8_header,
                declared_8bitmime: self.content.declared_8bitmime,
            },
            size: Some(self.size),
            dsn,
        }
    }

    /// Pending recipients whose time has come (all pending with `flush`).
    pub fn due(&self, now: i64, flush: bool) -> Vec<Address> {
        self.recipients
            .iter()
            .filter(|r| r.state == State::Pending && (flush || r.next_attempt <= now))
            .filter_map(|r| Address::parse(&r.address).ok())
            .collect()
    }

    pub fn pending(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients.iter().filter(|r| r.state == State::Pending)
    }

    /// Nothing is left to do: no recipient is pending.
    pub fn finished(&self) -> bool {
        self.pending().next().is_none()
    }

    /// The earliest time a pending recipient is due.
    pub fn next_attempt(&self) -> Option<i64> {
        self.pending().map(|r| r.next_attempt).min()
    }

    /// The entry has been queued longer than `lifetime` seconds.
    pub fn expired(&self, now: i64, lifetime: i64) -> bool {
        now.saturating_sub(self.created) >= lifetime
    }

    /// A delay warning is due: none was sent, the entry is older than
    /// `after` seconds, and some recipient still waits.
    pub fn warning_due(&self, now: i64, after: Option<i64>) -> bool {
        match after {
            Some(after) => {
                !self.warned
                    && !self.bounce
                    && !self.finished()
                    && now.saturating_sub(self.created) >= after
            }
            None => false,
        }
    }

    /// Whether the sender asked to hear about failures (RFC 3461 4.1: by
    /// default, failures and delays are reported). Nobody hears of a
    /// notification's failure, nor of a message with an empty sender.
    pub fn notify_on(&self, what: NotifyName) -> bool {
        if self.sender.is_empty() || self.bounce {
            return false;
        }
        match &self.dsn.notify {
            None => matches!(what, NotifyName::Failure | NotifyName::Delay),
            Some(list) => !list.contains(&NotifyName::Never) && list.contains(&what),
        }
    }

    /// Every recipient, by its address as written: for recording the
    /// results of a whole transaction without a search per recipient.
    pub fn recipients_by_address(&mut self) -> std::collections::HashMap<String, &mut Recipient> {
        self.recipients
            .iter_mut()
            .map(|r| (r.address.clone(), r))
            .collect()
    }
}

impl Recipient {
    pub fn pending(address: String, now: i64) -> Recipient {
        Recipient {
            address,
            state: State::Pending,
            attempts: 0,
            next_attempt: now,
            last_attempt: None,
            status: None,
            detail: None,
            server: None,
            orcpt: None,
        }
    }
}

/// How long to wait after the `attempts`-th failed attempt.
pub fn backoff(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    MIN_BACKOFF_SECS
        .saturating_mul(1i64 << doublings)
        .min(MAX_BACKOFF_SECS)
}

impl From<&Dsn> for DsnParams {
    fn from(dsn: &Dsn) -> DsnParams {
        DsnParams {
            ret: dsn.ret.map(|r| match r {
                Ret::Full => RetName::Full,
                Ret::Hdrs => RetName::Hdrs,
            }),
            envid: dsn.envid.clone(),
            notify: dsn.notify.map(|n| match n {
                Notify::Never => vec![NotifyName::Never],
                Notify::On {
                    success,
                    failure,
                    delay,
                } => [
                    (success, NotifyName::Success),
                    (failure, NotifyName::Failure),
                    (delay, NotifyName::Delay),
                ]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect(),
            }),
        }
    }
}

impl DsnParams {
    pub fn to_dsn(&self) -> Dsn {
        Dsn {
            original_recipients: Default::default(),
            ret: self.ret.map(|r| match r {
                RetName::Full => Ret::Full,
                RetName::Hdrs => Ret::Hdrs,
            }),
            envid: self.envid.clone(),
            notify: self.notify.as_ref().map(|list| {
                if list.contains(&NotifyName::Never) {
                    Notify::Never
                } else {
                    Notify::On {
                        success: list.contains(&NotifyName::Success),
                        failure: list.contains(&NotifyName::Failure),
                        delay: list.contains(&NotifyName::Delay),
                    }
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            sender: ReversePath::parse("alice@example.org").unwrap(),
            recipients: vec![
                Address::parse("bob@example.net").unwrap(),
                Address::parse("carol@example.com").unwrap(),
            ],
            content: Content::default(),
            size: Some(1234),
            dsn: Dsn {
                ret: Some(Ret::Hdrs),
                envid: Some("QQ314159".into()),
                notify: Some(Notify::On {
                    success: false,
                    failure: true,
                    delay: false,
                }),
                original_recipients: [(
                    Address::parse("carol@example.com").unwrap(),
                    "rfc822;root@example.com".to_string(),
                )]
                .into(),
            },
        }
    }

    // covers: FAIL3
    #[test]
    fn a_state_line_reads_back_as_written() {
        let entry = Entry::new(
            "0123ABCD".into(),
            1_000,
            &envelope(),
            Mode::Require,
            "--require-tls".into(),
        );
        let line = entry.to_line();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        let back = Entry::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.envelope(back.due(1_000, false)), envelope());
        assert_eq!(back.mode(), Mode::Require);
    }

    #[test]
    fn bad_state_lines_are_refused_with_the_reason() {
        let good = Entry::new("A1".into(), 0, &envelope(), Mode::Default, "default".into());
        let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&good).unwrap();
            f(&mut v);
            Entry::parse(&serde_json::to_vec(&v).unwrap())
        };
        let cases: Vec<(&str, Result<Entry, EntryError>)> = vec![
            ("not json", Entry::parse(b"From alice Mon Nov 30")),
            ("newer version", mutate(&|v| v["version"] = 2.into())),
            ("path in id", mutate(&|v| v["id"] = "../etc".into())),
            ("empty id", mutate(&|v| v["id"] = "".into())),
            ("bad sender", mutate(&|v| v["sender"] = "a b".into())),
            (
                "no recipients",
                mutate(&|v| v["recipients"] = serde_json::json!([])),
            ),
            (
                "bad recipient",
                mutate(&|v| v["recipients"][0]["address"] = "x\r\nRCPT TO:<y>".into()),
            ),
            ("unknown field", mutate(&|v| v["extra"] = 1.into())),
            ("bounce with sender", mutate(&|v| v["bounce"] = true.into())),
            (
                "envid with space",
                mutate(&|v| v["dsn"]["envid"] = "a b".into()),
            ),
            (
                "orcpt with a line break",
                mutate(&|v| v["recipients"][1]["orcpt"] = "rfc822;a\r\nRSET".into()),
            ),
            (
                "orcpt without a type",
                mutate(&|v| v["recipients"][0]["orcpt"] = "root@example.com".into()),
            ),
        ];
        for (why, result) in cases {
            match (why, result) {
                (_, Ok(_)) => panic!("{why}: accepted"),
                ("newer version", Err(e)) => assert!(matches!(e, EntryError::Version(2)), "{e}"),
                ("not json" | "unknown field", Err(e)) => {
                    assert!(matches!(e, EntryError::Format(_)), "{why}: {e}")
                }
                (_, Err(e)) => assert!(matches!(e, EntryError::Invalid(_)), "{why}: {e}"),
            }
        }
    }

    // covers: FAIL3
    #[test]
    fn backoff_doubles_from_five_minutes_to_about_an_hour() {
        let table = [
            (1, 300),
            (2, 600),
            (3, 1200),
            (4, 2400),
            (5, 4000),
            (40, 4000),
        ];
        for (attempts, wait) in table {
            assert_eq!(backoff(attempts), wait, "after {attempts} attempts");
        }
    }

    // covers: FAIL3, FAIL8
    #[test]
    fn only_pending_recipients_whose_time_came_are_due() {
        let mut entry = Entry::new("A1".into(), 0, &envelope(), Mode::Default, "x".into());
        entry.recipients[0].state = State::Delivered;
        entry.recipients[1].next_attempt = 600;
        assert!(entry.due(599, false).is_empty());
        assert_eq!(entry.due(600, false).len(), 1);
        assert_eq!(entry.due(0, true)[0].to_string(), "carol@example.com");
        assert_eq!(entry.next_attempt(), Some(600));
        entry.recipients[1].state = State::Failed;
        assert!(entry.finished());
        assert!(entry.due(0, true).is_empty());
    }

    // covers: FAIL4
    #[test]
    fn notifications_follow_notify_and_never_go_to_an_empty_sender() {
        let mut entry = Entry::new("A1".into(), 0, &envelope(), Mode::Default, "x".into());
        assert!(entry.notify_on(NotifyName::Failure));
        assert!(!entry.notify_on(NotifyName::Delay));
        entry.dsn.notify = None;
        assert!(entry.notify_on(NotifyName::Delay));
        assert!(!entry.notify_on(NotifyName::Success));
        entry.dsn.notify = Some(vec![NotifyName::Never]);
        assert!(!entry.notify_on(NotifyName::Failure));
        entry.dsn.notify = None;
        entry.sender = String::new();
        assert!(!entry.notify_on(NotifyName::Failure));
    }

    #[test]
    fn expiry_and_the_delay_warning_count_from_creation() {
        let entry = Entry::new("A1".into(), 100, &envelope(), Mode::Default, "x".into());
        assert!(!entry.expired(199, 100));
        assert!(entry.expired(200, 100));
        assert!(!entry.warning_due(10_000, None));
        assert!(!entry.warning_due(199, Some(100)));
        assert!(entry.warning_due(200, Some(100)));
        let warned = Entry {
            warned: true,
            ..entry
        };
        assert!(!warned.warning_due(200, Some(100)));
    }

    #[test]
    fn a_foreign_entry_keeps_the_envelope_and_nothing_else() {
        let mut forged = Entry::new("A1".into(), 5_000, &envelope(), Mode::Require, "x".into());
        forged.bounce = true;
        forged.account = Some("vip".into());
        forged.direct = true;
        forged.notices = u32::MAX;
        forged.warned = true;
        forged.recipients[0].state = State::Delivered;
        forged.recipients[1].next_attempt = i64::MAX;
        let taken = forged.foreign(1000, 2_000);
        assert_eq!(taken.created, 2_000, "queued when taken in");
        assert_eq!(taken.owner, Some(1000));
        assert!(!taken.bounce && !taken.direct && !taken.warned);
        assert_eq!((taken.account.as_deref(), taken.notices), (None, 0));
        assert_eq!(taken.due(2_000, false).len(), 2);
        assert_eq!(taken.mode, ModeName::Require);
        assert_eq!(taken.sender, forged.sender);
    }

    #[test]
    fn drop_ids_are_what_new_id_makes() {
        assert!(valid_drop_id("0123456789ABCDEF0123"));
        for bad in [
            "0123456789abcdef0123",
            "0123456789ABCDEF012",
            "0123456789ABCDEF0123-B1",
        ] {
            assert!(!valid_drop_id(bad), "{bad}");
        }
    }

    #[test]
    fn ids_never_name_another_directory() {
        for good in ["0123456789ABCDEF0123", "A1-B1", "x"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in ["", "..", "a/b", "-x", ".hidden", "a.state", &"A".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
