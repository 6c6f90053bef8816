//! The delivery log (UX6): one line per message and recipient, to a file
//! (`logfile`) and to syslog (`syslog`, facility mail), and how such a line
//! is written. The app layer decides what happened and calls [`Log::write`];
//! this module owns the format and the destinations.
//!
//! A line is `key=value` fields in a fixed order. A value of plain
//! characters is written bare; any other is written in double quotes with
//! Go-style escapes (`\"`, `\\`, `\n`, `\x01`, `\u202e`), and `=` inside
//! quotes is written `\x3d`: every `=` of a line separates a key from its
//! value, so a server's reply text cannot forge a field, not even for a
//! plain `grep ' result=delivered'`. Text from elsewhere is cut to a few
//! hundred characters. No secret reaches a line: the fields are addresses,
//! names, the mode, the session's facts and the server's words.
//!
//! A destination that cannot be written is reported once on standard error
//! and otherwise ignored: logging never changes a delivery or the exit
//! status.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::outcome::SessionFacts;
use crate::policy::Mode;

/// Where log lines go; resolved from the configuration (an account's
/// `logfile` and `syslog` over the top-level ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub file: Option<PathBuf>,
    pub syslog: bool,
}

impl LogSettings {
    pub fn is_off(&self) -> bool {
        self.file.is_none() && !self.syslog
    }
}

/// What became of the message for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A server took it.
    Delivered,
    /// Put in the queue without trying (`-odq`).
    Queued,
    /// A temporary failure: queued for a later attempt, or (without a
    /// queue) returned to the caller with exit status 75.
    Deferred,
    /// A permanent failure reported to the caller.
    Failed,
    /// A queue run gave up for good: the sender is told (when asked).
    Bounced,
    /// The queue's lifetime ran out.
    Expired,
}

impl Disposition {
    fn name(self) -> &'static str {
        match self {
            Disposition::Delivered => "delivered",
            Disposition::Queued => "queued",
            Disposition::Deferred => "deferred",
            Disposition::Failed => "failed",
            Disposition::Bounced => "bounced",
            Disposition::Expired => "expired",
        }
    }

    /// RFC 5424 severity: info, warning or err.
    fn severity(self) -> u8 {
        match self {
            Disposition::Delivered => 6,
            Disposition::Queued | Disposition::Deferred => 4,
            Disposition::Failed | Disposition::Bounced | Disposition::Expired => 3,
        }
    }
}

/// One log line's facts.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    pub queue_id: Option<&'a str>,
    /// The envelope sender, without angle brackets; empty for `<>`.
    pub sender: &'a str,
    pub recipient: &'a str,
    pub account: Option<&'a str>,
    /// The TLS mode and why (the policy decision's reason), once decided.
    pub mode: Option<(Mode, &'a str)>,
    /// The server, as `host:port` or `mx.example[192.0.2.1]:25`.
    pub host: Option<&'a str>,
    pub session: Option<&'a SessionFacts>,
    pub result: Disposition,
    /// The enhanced status code, "2.0.0" when a server gave none.
    pub status: String,
    /// The reply code of the server's final answer, when there was one.
    pub smtp: Option<u16>,
    /// When a deferred recipient is tried next (Unix seconds).
    pub retry: Option<i64>,
    /// The server's reply text, or why the message was not delivered.
    pub detail: &'a str,
}

/// The longest piece of foreign text kept in a line, in characters.
const MAX_DETAIL: usize = 600;

impl Record<'_> {
    /// The fields, without a time stamp.
    pub fn fields(&self) -> String {
        let mut line = Fields::default();
        line.opt("queue_id", self.queue_id);
        line.add("from", &format!("<{}>", self.sender));
        line.add("to", &format!("<{}>", self.recipient));
        line.opt("account", self.account);
        if let Some((mode, why)) = self.mode {
            line.add("mode", &mode.to_string());
            line.add("why", why);
        }
        line.opt("host", self.host);
        if let Some(session) = self.session {
            match &session.tls {
                Some(tls) => {
                    line.add("tls", &tls.version.replace("TLS ", "TLSv"));
                    line.add("verify", tls.verification.as_str());
                }
                None => line.add("tls", "none"),
            }
            line.opt("mx", session.mx_name);
            line.add("requiretls", if session.requiretls { "yes" } else { "no" });
        }
        line.add("result", self.result.name());
        line.add("status", &self.status);
        line.opt("smtp", self.smtp.map(|c| c.to_string()).as_deref());
        if let Some(at) = self
            .retry
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        {
            let local = at.with_timezone(&chrono::Local);
            line.add("retry", &local.format("%Y-%m-%dT%H:%M:%S%z").to_string());
        }
        line.add("detail", &cut(self.detail, MAX_DETAIL));
        line.0
    }
}

#[derive(Default)]
struct Fields(String);

impl Fields {
    fn add(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(key);
        self.0.push('=');
        quote_into(&mut self.0, value);
    }

    fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.add(key, value);
        }
    }
}

/// Characters a value may have without quotes: nothing that separates
/// fields (space, `=`), quotes, escapes or needs a locale.
fn bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || "<>@.:_-+/[]()!#$%&'*,;?^`{|}~".contains(c)
}

fn quote_into(out: &mut String, value: &str) {
    if !value.is_empty() && value.chars().all(bare) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' => out.push_str("\\x3d"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_ascii() => out.push(c),
            // Line separators, bidirectional overrides and other
            // characters a terminal would not show as themselves.
            c if c.escape_debug().next() == Some('\\') => {
                if (c as u32) <= 0xFFFF {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// At most `max` characters of `text`, "..." marking a cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// The log of one run: open files and the syslog socket, kept for the
/// run's next line, and which destinations were reported broken.
pub struct Log {
    files: RefCell<HashMap<PathBuf, Option<File>>>,
    syslog: RefCell<Option<Option<UnixDatagram>>>,
    syslog_path: PathBuf,
    warned: RefCell<HashSet<String>>,
}

impl Default for Log {
    fn default() -> Log {
        Log::new()
    }
}

impl Log {
    pub fn new() -> Log {
        Log {
            files: RefCell::default(),
            syslog: RefCell::default(),
            syslog_path: PathBuf::from("/dev/log"),
            warned: RefCell::default(),
        }
    }

    /// Closes what is open, so that the next line opens the file again
    /// (a queue runner between passes: the file may have been rotated).
    /// A destination already reported broken is not reported again.
    pub fn reopen(&self) {
        self.files.borrow_mut().clear();
        self.syslog.borrow_mut().take();
    }

    /// Writes one line to each destination `settings` names.
    pub fn write(&self, settings: &LogSettings, record: &Record<'_>) {
        if settings.is_off() {
            return;
        }
        let fields = record.fields();
        if let Some(path) = &settings.file {
            let stamp = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%z");
            let line = format!("{stamp} tlsend[{}]: {fields}\n", std::process::id());
            if let Err(e) = self.append(path, line.as_bytes()) {
                self.warn_once(
                    &path.display().to_string(),
                    &format!("logfile {}", path.display()),
                    &e,
                );
            }
        }
        if settings.syslog
            && let Err(e) = self.send_syslog(record.result.severity(), &fields)
        {
            self.warn_once(
                "syslog",
                &format!("syslog ({})", self.syslog_path.display()),
                &e,
            );
        }
    }

    fn append(&self, path: &Path, line: &[u8]) -> io::Result<()> {
        let mut files = self.files.borrow_mut();
        let file = match files.get_mut(path) {
            Some(file) => file,
            None => {
                // An unwritable file is tried once per run.
                let opened = open_log_file(path);
                let error = opened
                    .as_ref()
                    .err()
                    .map(|e| io::Error::new(e.kind(), e.to_string()));
                files.insert(path.to_path_buf(), opened.ok());
                if let Some(e) = error {
                    return Err(e);
                }
                files
                    .get_mut(path)
                    .ok_or_else(|| io::Error::other("lost"))?
            }
        };
        match file {
            // One write of the whole line: with O_APPEND, lines of several
            // tlsend processes do not interleave.
            Some(file) => file.write_all(line),
            None => Err(io::Error::other("it could not be opened")),
        }
    }

    fn send_syslog(&self, severity: u8, fields: &str) -> io::Result<()> {
        let mut socket = self.syslog.borrow_mut();
        let socket = socket.get_or_insert_with(|| UnixDatagram::unbound().ok());
        let Some(socket) = socket else {
            return Err(io::Error::other("cannot make a datagram socket"));
        };
        let message = syslog_message(
            severity,
            &chrono::Local::now().format("%b %e %H:%M:%S").to_string(),
            std::process::id(),
            fields,
        );
        socket.send_to(message.as_bytes(), &self.syslog_path)?;
        Ok(())
    }

    fn warn_once(&self, key: &str, what: &str, error: &io::Error) {
        if self.warned.borrow_mut().insert(key.to_string()) {
            let _ = writeln!(
                io::stderr(),
                "tlsend: warning: cannot write to the {what}: {error}; going on without it"
            );
        }
    }
}

/// RFC 3164 as the local syslog socket takes it: `<PRI>Mmm dd hh:mm:ss
/// tlsend[PID]: text`, facility mail (2).
fn syslog_message(severity: u8, stamp: &str, pid: u32, fields: &str) -> String {
    const MAIL: u8 = 2;
    format!("<{}>{stamp} tlsend[{pid}]: {fields}", MAIL * 8 + severity)
}

/// Opens the log for appending, created 0600. In a directory someone else
/// may write to (/tmp, or Ubuntu's /var/log, root:syslog 0775, or another
/// user's), a symbolic link is not followed: that someone could have
/// planted it to make tlsend, perhaps running as root, write into another
/// file. A FIFO or other special file that would block is refused rather
/// than waited on.
fn open_log_file(path: &Path) -> io::Result<File> {
    let me = rustix::process::geteuid().as_raw();
    let shared_dir = path
        .parent()
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }
        })
        .and_then(|dir| std::fs::metadata(dir).ok())
        .is_none_or(|m| m.mode() & 0o022 != 0 || (m.uid() != me && m.uid() != 0));
    let mut flags = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    if shared_dir {
        flags |= rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    use std::os::unix::fs::FileTypeExt;
    if !(kind.is_file() || kind.is_char_device()) {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TlsFacts;
    use crate::tls::Verification;

    fn record<'a>(detail: &'a str, session: Option<&'a SessionFacts>) -> Record<'a> {
        Record {
            queue_id: None,
            sender: "alice@example.org",
            recipient: "bob@example.net",
            account: Some("work"),
            mode: Some((Mode::Require, "command-line flag --require-tls")),
            host: Some("smtp.example.org:587"),
            session,
            result: Disposition::Delivered,
            status: "2.0.0".into(),
            smtp: Some(250),
            retry: None,
            detail,
        }
    }

    /// Splits a line as a quote-aware reader would: key, raw value.
    fn parse(line: &str) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').expect("a key");
            let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                let mut end = 0;
                let bytes = quoted.as_bytes();
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                (&quoted[..end], quoted[end + 1..].trim_start())
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (&after[..end], after[end..].trim_start())
            };
            fields.push((key.to_string(), value.to_string()));
            rest = next;
        }
        fields
    }

    // covers: UX6
    #[test]
    fn a_line_has_every_fact_in_key_value_form() {
        let session = SessionFacts {
            tls: Some(TlsFacts {
                version: "TLS 1.3".into(),
                verification: Verification::CaFile,
            }),
            requiretls: true,
            mx_name: None,
        };
        let line = record("Ok: queued as 4Xyz", Some(&session)).fields();
        assert_eq!(
            line,
            "from=<alice@example.org> to=<bob@example.net> account=work mode=require \
             why=\"command-line flag --require-tls\" host=smtp.example.org:587 tls=TLSv1.3 \
             verify=ca-file requiretls=yes result=delivered status=2.0.0 smtp=250 \
             detail=\"Ok: queued as 4Xyz\""
        );
    }

    // covers: UX6
    #[test]
    fn a_reply_cannot_forge_a_field_or_a_line() {
        let hostile = "ok result=delivered status=2.0.0\r\nfrom=<x> \"q\" \\ \u{202e}\u{1b}[2J";
        let line = record(hostile, None).fields();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert!(!line.contains('\u{202e}'), "{line}");
        assert_eq!(line.matches(" result=").count(), 1, "{line}");
        assert_eq!(line.matches('=').count(), parse(&line).len(), "{line}");
        let fields = parse(&line);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "from", "to", "account", "mode", "why", "host", "result", "status", "smtp",
                "detail"
            ]
        );
        assert_eq!(
            fields.last().map(|(_, v)| v.as_str()),
            Some(
                "ok result\\x3ddelivered status\\x3d2.0.0\\r\\nfrom\\x3d<x> \\\"q\\\" \\\\ \\u202e\\x1b[2J"
            )
        );
    }

    #[test]
    fn long_text_is_cut_and_empty_values_are_quoted() {
        let long = "x".repeat(5000);
        let line = record(&long, None).fields();
        assert!(line.len() < 1000 && line.ends_with("x..."), "{line}");
        let mut null_sender = record("", None);
        null_sender.sender = "";
        let line = null_sender.fields();
        assert!(
            line.starts_with("from=<> ") && line.ends_with("detail=\"\""),
            "{line}"
        );
    }

    // covers: UX6
    #[test]
    fn syslog_messages_are_rfc3164_with_facility_mail() {
        assert_eq!(
            syslog_message(
                Disposition::Delivered.severity(),
                "Jan  2 03:04:05",
                42,
                "a=b"
            ),
            "<22>Jan  2 03:04:05 tlsend[42]: a=b"
        );
        assert_eq!(Disposition::Deferred.severity() + 16, 20);
        assert_eq!(Disposition::Failed.severity() + 16, 19);
    }

    // covers: UX6
    #[test]
    fn a_symlink_planted_in_a_shared_directory_is_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "").unwrap();
        let link = shared.join("tlsend.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_log_file(&link).is_err());
        // A group may write here (Ubuntu's /var/log is root:syslog 0775).
        let group = dir.path().join("group");
        std::fs::create_dir(&group).unwrap();
        std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o775)).unwrap();
        let link = group.join("tlsend.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_log_file(&link).is_err());
        // A private directory's link is the owner's choice.
        let own = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &own).unwrap();
        assert!(open_log_file(&own).is_ok());
        let fresh = dir.path().join("new.log");
        open_log_file(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
