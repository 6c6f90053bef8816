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

/// Appends `message` (the input exactly as read) to the mbox at `path`.
/// `sender` is the envelope sender (empty for `<>`), `date` the asctime-style
/// date of the separator line.
pub fn save(path: &Path, sender: &str, date: &str, message: impl Read) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // Several failing runs may append at once (cron at the full hour).
    file.lock()?;
    let result = write_entry(&mut file, sender, date, message);
    let unlocked = file.unlock();
    result?;
    unlocked
}

fn write_entry(
    file: &mut File,
    sender: &str,
    date: &str,
    mut message: impl Read,
) -> io::Result<()> {
    let sender = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        sender
    };
    let mut out = io::BufWriter::new(&mut *file);
    writeln!(out, "From {sender} {date}")?;
    let mut quoter = MboxQuoter::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut converted = Vec::with_capacity(chunk.len() + 1024);
    loop {
        let n = message.read(&mut chunk)?;
        if n == 0 {
            break;
        }
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

/// Streaming mboxrd quoting with CRLF -> LF. Keeps the start of a line
/// only while it might still turn out to be `>*From `.
#[derive(Default)]
struct MboxQuoter {
    /// Bytes of the current line not yet written.
    head: Vec<u8>,
    /// The current line's start has been decided (quoted or not).
    decided: bool,
    /// The previous byte was a CR not yet written (it may precede LF).
    pending_cr: bool,
    /// Nothing written yet, or the last byte written was LF.
    at_line_start: bool,
    started: bool,
}

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
        self.head.push(byte);
        let quotes = self.head.iter().take_while(|&&b| b == b'>').count();
        let rest = &self.head[quotes..];
        if rest.len() < 5 && b"From ".starts_with(rest) {
            return; // might still become `>*From `
        }
        if rest.starts_with(b"From ") {
            out.push(b'>');
        }
        self.flush_head(out);
        self.decided = true;
    }

    fn flush_head(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.head);
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
        save(
            &path,
            "alice@example.org",
            "Sun Nov 22 22:18:00 2026",
            &b"Subject: one\n\nbody\n"[..],
        )
        .unwrap();
        save(
            &path,
            "",
            "Sun Nov 22 22:19:00 2026",
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
