//! Saving a message that could not be sent (FAIL3 without a queue): it is
//! appended to `~/dead.letter` (or the configured file) as one mbox entry,
//! so that no run loses a message, even one refused as malformed.
//!
//! The entry is mboxrd: a `From ` separator line, then the message with LF
//! line endings, where a line matching `>*From ` gets one more `>`; readers
//! (mutt, mailx) undo that. The file is created mode 0600, locked while
//! written, and fsync'd before tlsend reports that the message is safe.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where dead letters go when nothing else is configured: `$HOME/dead.letter`.
pub fn default_path(home: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let home = home.filter(|h| !h.is_empty())?;
    Some(Path::new(home).join("dead.letter"))
}

/// What the mbox entry says about the message besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct Entry<'a> {
    /// The envelope sender as given (empty for `<>`); it is checked here
    /// before it reaches the separator line.
    pub sender: &'a str,
    /// The asctime-style date of the separator line.
    pub date: &'a str,
    /// The recipients that did not get the message, each with why (FAIL8);
    /// those that did are not named, so nobody resends to them.
    pub undelivered: Vec<(String, String)>,
    /// The message has no header of its own: an empty line then keeps its
    /// first line from being read as part of tlsend's fields.
    pub headerless: bool,
}

/// The field that names an undelivered recipient in a saved entry.
pub const UNDELIVERED_FIELD: &str = "X-Tlsend-Undelivered";

/// Appends `message` (the input exactly as read) to the mbox at `path`,
/// after one `X-Tlsend-Undelivered` field per undelivered recipient. A
/// failed write is cut off again, so the file never holds half an entry.
pub fn save(path: &Path, entry: &Entry<'_>, message: impl Read) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // Several failing runs may append at once (cron at the full hour).
    file.lock()?;
    let before = file.metadata()?.len();
    let result = write_entry(&mut file, entry, message);
    if result.is_err() {
        let _ = file.set_len(before);
    }
    let unlocked = file.unlock();
    result?;
    unlocked
}

fn write_entry(file: &mut File, entry: &Entry<'_>, mut message: impl Read) -> io::Result<()> {
    let mut out = io::BufWriter::new(&mut *file);
    writeln!(
        out,
        "From {} {}",
        separator_sender(entry.sender),
        entry.date
    )?;
    for (recipient, why) in &entry.undelivered {
        writeln!(
            out,
            "{UNDELIVERED_FIELD}: {} ({})",
            one_line(recipient, 300),
            one_line(why, 600)
        )?;
    }
    if entry.headerless && !entry.undelivered.is_empty() {
        writeln!(out)?;
    }
    let mut quoter = MboxQuoter::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut converted = Vec::with_capacity(chunk.len() + 1024);
    loop {
        let n = match message.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        converted.clear();
        quoter.feed(&chunk[..n], &mut converted);
        out.write_all(&converted)?;
    }
    converted.clear();
    quoter.finish(&mut converted);
    out.write_all(&converted)?;
    out.flush()?;
    drop(out);
    file.sync_all()
}

/// The header block without any `X-Tlsend-Undelivered` field it carried
/// (a resubmitted dead letter, or a forged one): only the fields this run
/// writes may name undelivered recipients.
pub fn without_own_fields(header_block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_block.len());
    let mut dropping = false;
    for line in header_block.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = line
                .get(..UNDELIVERED_FIELD.len() + 1)
                .is_some_and(|start| {
                    start[..UNDELIVERED_FIELD.len()]
                        .eq_ignore_ascii_case(UNDELIVERED_FIELD.as_bytes())
                        && matches!(start[UNDELIVERED_FIELD.len()], b':' | b' ' | b'\t')
                });
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The sender word of the `From ` line. Readers split that line at white
/// space, and a line break would start a forged entry, so anything that is
/// not one printable word is made into one.
fn separator_sender(sender: &str) -> String {
    if sender.is_empty() {
        return "MAILER-DAEMON".to_string();
    }
    let word: String = sender
        .chars()
        .take(254)
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    word
}

/// `text` as one header line of at most `max` characters: control
/// characters escaped, so no value can break the entry's structure.
fn one_line(text: &str, max: usize) -> String {
    let cut = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    crate::text::printable(&text[..cut])
}

/// Streaming mboxrd quoting with CRLF -> LF, in time and memory linear in
/// the input: while a line's start might still turn out to be `>*From `,
/// only the count of its leading `>` and how much of "From " matched are
/// kept, never the bytes themselves.
#[derive(Default)]
struct MboxQuoter {
    /// The current line's start has been decided (quoted or not).
    decided: bool,
    /// Leading `>` of the current line not yet written.
    quotes: usize,
    /// Bytes of "From " matched after them, not yet written.
    matched: usize,
    /// The previous byte was a CR not yet written (it may precede LF).
    pending_cr: bool,
    /// Nothing written yet, or the last byte written was LF.
    at_line_start: bool,
    started: bool,
}

const FROM_: &[u8] = b"From ";

impl MboxQuoter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            if self.pending_cr {
                self.pending_cr = false;
                if byte != b'\n' {
                    self.push(b'\r', out);
                }
            }
            match byte {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.flush_head(out);
                    out.push(b'\n');
                    self.decided = false;
                    self.at_line_start = true;
                    self.started = true;
                }
                _ => self.push(byte, out),
            }
        }
    }

    fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        self.started = true;
        self.at_line_start = false;
        if self.decided {
            out.push(byte);
            return;
        }
        if byte == b'>' && self.matched == 0 {
            self.quotes += 1;
            return;
        }
        if byte == FROM_[self.matched] {
            self.matched += 1;
            if self.matched == FROM_.len() {
                // `>*From `: one more `>` (mboxrd).
                out.push(b'>');
                self.flush_head(out);
                self.decided = true;
            }
            return;
        }
        self.flush_head(out);
        out.push(byte);
        self.decided = true;
    }

    /// Writes the undecided start of the line as it was.
    fn flush_head(&mut self, out: &mut Vec<u8>) {
        out.resize(out.len() + self.quotes, b'>');
        out.extend_from_slice(&FROM_[..self.matched]);
        self.quotes = 0;
        self.matched = 0;
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.push(b'\r', out);
        }
        self.flush_head(out);
        if self.started && !self.at_line_start {
            out.push(b'\n');
        }
        // mbox entries are separated by an empty line.
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn quote(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut q = MboxQuoter::default();
        q.feed(input, &mut out);
        q.finish(&mut out);
        out
    }

    #[test]
    fn quotes_from_lines_mboxrd_style_and_uses_lf() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\nb\n", b"a\nb\n\n"),
            (b"From me\n", b">From me\n\n"),
            (b">From me\n", b">>From me\n\n"),
            (b">>From x\nFrom\n", b">>>From x\nFrom\n\n"),
            (b"Fromage\n>Fr\n", b"Fromage\n>Fr\n\n"),
            (b"no newline", b"no newline\n\n"),
            (b"", b"\n"),
            (b"x\rFrom y\n", b"x\rFrom y\n\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                quote(input),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn any_split_gives_the_same_result() {
        let input: &[u8] = b"From a\r\n>From b\nok\nFrom";
        let whole = quote(input);
        for split in 0..input.len() {
            let mut out = Vec::new();
            let mut q = MboxQuoter::default();
            q.feed(&input[..split], &mut out);
            q.feed(&input[split..], &mut out);
            q.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }

    // covers: FAIL3
    #[test]
    fn fail3_appends_private_entries_and_keeps_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.letter");
        let entry = |sender, date| Entry {
            sender,
            date,
            undelivered: Vec::new(),
            headerless: false,
        };
        save(
            &path,
            &entry("alice@example.org", "Sun Nov 22 22:18:00 2026"),
            &b"Subject: one\n\nbody\n"[..],
        )
        .unwrap();
        save(
            &path,
            &entry("", "Sun Nov 22 22:19:00 2026"),
            &b"Subject: two\r\n\r\nFrom here\r\n"[..],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "From alice@example.org Sun Nov 22 22:18:00 2026\nSubject: one\n\nbody\n\n\
             From MAILER-DAEMON Sun Nov 22 22:19:00 2026\nSubject: two\n\n>From here\n\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // covers: FAIL3
    #[test]
    fn fail3_no_sender_can_forge_a_separator_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.letter");
        let entry = Entry {
            sender: "x\n\nFrom forged@evil.example Mon Jan  1 00:00:00 2026\nSubject: forged",
            date: "Sun Nov 22 22:18:00 2026",
            undelivered: vec![("b@x.example".into(), "550 no\r\nFrom evil".into())],
            headerless: false,
        };
        save(&path, &entry, &b"Subject: real\n\nbody\n"[..]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let separators = text.lines().filter(|l| l.starts_with("From ")).count();
        assert_eq!(separators, 1, "{text}");
        assert!(
            text.starts_with("From x__From_forged@evil.example_Mon_Jan__1"),
            "{text}"
        );
        assert!(
            text.contains("X-Tlsend-Undelivered: b@x.example (550 no\\r\\nFrom evil)\n"),
            "{text}"
        );
    }

    // covers: HARD1
    #[test]
    fn hard1_a_line_of_quotes_is_quoted_in_one_pass() {
        for n in [1_000, 1_000_000] {
            let mut line = vec![b'>'; n];
            line.extend_from_slice(b"From x\n");
            let out = quote(&line);
            assert_eq!(out.len(), n + 1 + 7 + 1);
            assert_eq!(out[..n + 1], vec![b'>'; n + 1][..]);
        }
    }

    // covers: FAIL8
    #[test]
    fn fail8_only_this_runs_fields_name_undelivered_recipients() {
        let block = b"Subject: s\nX-Tlsend-Undelivered: ceo@x.example (stale)\n  folded\nx-tlsend-undelivered : b@x.example\nTo: t@x.example\nX-Tlsend-Undelivered-Not: kept\n";
        assert_eq!(
            without_own_fields(block),
            b"Subject: s\nTo: t@x.example\nX-Tlsend-Undelivered-Not: kept\n"
        );
        // A message without a header: an empty line after the fields.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.letter");
        let entry = Entry {
            sender: "a@x.example",
            date: "Sun Nov 22 22:18:00 2026",
            undelivered: vec![("b@x.example".into(), "4.4.2 gone".into())],
            headerless: true,
        };
        save(&path, &entry, &b"  indented output of a cron job\n"[..]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("X-Tlsend-Undelivered: b@x.example (4.4.2 gone)\n\n  indented output of a cron job\n\n"),
            "{text}"
        );
    }

    #[test]
    fn default_path_needs_a_home() {
        assert_eq!(default_path(None), None);
        assert_eq!(default_path(Some("".as_ref())), None);
        assert_eq!(
            default_path(Some("/home/u".as_ref())),
            Some(PathBuf::from("/home/u/dead.letter"))
        );
    }
}
