//! Reading the message from standard input (IN1, IN2, IN9, IN10, IN11).
//!
//! [`read`] takes everything before returning, so no connection is held open
//! while a cron job is still writing. It keeps the exact bytes in a
//! [`Spool`], scans them once in fixed-size chunks, and records the first
//! problem with its line number without stopping: a refused message can
//! still be saved whole to dead.letter. It also splits the header from the
//! body the way Postfix does: the header is the leading run of header
//! fields; an empty line ends it, and so does the first line that is not a
//! field (`echo text | sendmail user` has a body and no header).

use std::fmt;
use std::io::{self, Read};

use super::spool::{Spool, SpoolReader, SpoolWriter};

/// RFC 5321 4.5.3.1.6: at most 998 octets before CRLF.
pub const MAX_LINE: usize = 998;

#[derive(Clone, Debug)]
pub struct InputOptions {
    /// A line with a single "." ends the input (sendmail without -i, IN2).
    pub dot_ends_input: bool,
    /// Bytes kept in memory before the spool moves to a temporary file.
    pub memory_limit: usize,
    /// Largest header block accepted.
    pub max_header: usize,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            dot_ends_input: true,
            memory_limit: 1 << 20,
            max_header: 1 << 20,
        }
    }
}

/// Why a message cannot be sent as it is. Lines count from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Nul { line: u64 },
    LineTooLong { line: u64, length: usize },
    BareCr { line: u64 },
    HeaderTooLarge { limit: usize },
    HeaderNotUtf8 { line: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Nul { line } => write!(
                f,
                "line {line} contains a NUL byte, which SMTP cannot carry; encode binary content \
                 as MIME (base64)"
            ),
            Problem::LineTooLong { line, length } => write!(
                f,
                "line {line} is {length} octets long; SMTP allows at most {MAX_LINE} (RFC 5321 \
                 4.5.3.1.6); wrap it or encode the content as MIME (quoted-printable or base64)"
            ),
            Problem::BareCr { line } => write!(
                f,
                "line {line} contains a carriage return that is not followed by a line feed; \
                 RFC 5322 allows CR only as part of CRLF"
            ),
            Problem::HeaderTooLarge { limit } => {
                write!(f, "the header is larger than {limit} octets")
            }
            Problem::HeaderNotUtf8 { line } => write!(
                f,
                "line {line} of the header has 8-bit bytes that are not UTF-8; encode them as \
                 RFC 2047 encoded words, or use UTF-8"
            ),
        }
    }
}

/// The message as read: its bytes, where its body starts, and what the scan found.
#[derive(Debug)]
pub struct Input {
    spool: Spool,
    body_offset: u64,
    /// The first problem found; `None` for a sendable message.
    pub problem: Option<Problem>,
    /// The header field lines exactly as read (LF or CRLF endings).
    pub header_block: Vec<u8>,
    /// The body's size on the wire with CRLF line endings (RFC 1870), for
    /// the SIZE parameter.
    pub body_wire_len: u64,
    /// Why the message was kept in memory instead of a temporary file.
    pub spool_fallback: Option<String>,
    /// An empty line separated header and body in the input.
    pub has_separator: bool,
    pub eight_bit_header: bool,
    pub eight_bit_body: bool,
}

impl Input {
    /// Bytes stored (the input minus a terminating lone-dot line).
    pub fn len(&self) -> u64 {
        self.spool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }

    pub fn body_len(&self) -> u64 {
        self.spool.len() - self.body_offset
    }

    /// True when the input was large enough to move to a temporary file.
    pub fn spilled(&self) -> bool {
        self.spool.is_file()
    }

    /// Every stored byte, from the start (for dead.letter).
    pub fn raw_reader(&self) -> io::Result<SpoolReader> {
        Ok(self.spool.reader(0))
    }

    /// Every stored byte after the header block (the separator line, if
    /// any, and the body).
    pub fn reader_after_header(&self) -> io::Result<SpoolReader> {
        Ok(self.spool.reader(self.header_block.len() as u64))
    }

    /// The body only, as stored.
    pub fn body_reader(&self) -> io::Result<SpoolReader> {
        Ok(self.spool.reader(self.body_offset))
    }
}

/// Reads the whole message (to EOF or a lone-dot line).
pub fn read(mut reader: impl Read, options: &InputOptions) -> io::Result<Input> {
    let mut scanner = Scanner::new(options.clone());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if scanner.feed(&chunk[..n])? == Flow::Stop {
            break;
        }
    }
    scanner.finish()
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

#[derive(PartialEq, Eq)]
enum Phase {
    Header,
    Body,
}

struct Scanner {
    options: InputOptions,
    spool: SpoolWriter,
    phase: Phase,
    /// Number of the current line (1-based) and its start in the spool.
    line: u64,
    line_start: u64,
    /// Content bytes of the current line so far (line ending excluded).
    line_len: usize,
    line_has_8bit: bool,
    /// The current line's content so far is "" or ".".
    dot_candidate: bool,
    pending_cr: bool,
    /// The current line while in the header phase, to classify it.
    header_line: Vec<u8>,
    header_block: Vec<u8>,
    has_separator: bool,
    body_offset: Option<u64>,
    /// Octets the body's lines take on the wire, each ending in CRLF.
    body_wire_len: u64,
    problem: Option<Problem>,
    eight_bit_header: bool,
    eight_bit_body: bool,
}

impl Scanner {
    fn new(options: InputOptions) -> Scanner {
        Scanner {
            spool: SpoolWriter::new(options.memory_limit),
            options,
            phase: Phase::Header,
            line: 1,
            line_start: 0,
            line_len: 0,
            line_has_8bit: false,
            dot_candidate: true,
            pending_cr: false,
            header_line: Vec::new(),
            header_block: Vec::new(),
            has_separator: false,
            body_offset: None,
            body_wire_len: 0,
            problem: None,
            eight_bit_header: false,
            eight_bit_body: false,
        }
    }

    fn note(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<Flow> {
        while !data.is_empty() {
            let (segment, ends_line) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..=i], true),
                None => (data, false),
            };
            data = &data[segment.len()..];
            self.spool.write(segment)?;
            let content_end = segment.len() - usize::from(ends_line);
            if self.phase == Phase::Header {
                self.feed_header(segment, content_end);
            } else {
                self.scan(&segment[..content_end]);
            }
            if ends_line && self.end_line(true)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// A piece of a line (`content_end` excludes its LF) while in the
    /// header. The header may hold `max_header` octets of field lines; the
    /// byte that would go past that is where the problem lies, and what
    /// comes before it is scanned first, so the problem reported is the
    /// first in byte order however standard input was split into reads.
    fn feed_header(&mut self, segment: &[u8], content_end: usize) {
        let used = self.header_block.len() + self.header_line.len();
        let room = self.options.max_header.saturating_sub(used);
        if segment.len() <= room || self.may_end_header(segment) {
            self.header_line.extend_from_slice(segment);
            self.scan(&segment[..content_end]);
            return;
        }
        // `room` < `segment.len()`, so the head holds no LF.
        let (head, tail) = segment.split_at(room);
        self.scan(head);
        self.note(Problem::HeaderTooLarge {
            limit: self.options.max_header,
        });
        self.phase = Phase::Body;
        self.body_offset = Some(self.line_start);
        self.header_line.clear();
        self.scan(&tail[..content_end - room]);
    }

    /// The current line, with `more` appended, could still be the empty
    /// line that ends the header, or (without -i) the lone dot that ends
    /// the input: neither counts towards the header's size.
    fn may_end_header(&self, more: &[u8]) -> bool {
        let line = self.header_line.iter().chain(more).copied();
        let mut bytes = line.take(4).collect::<Vec<u8>>();
        if self.options.dot_ends_input && bytes.first() == Some(&b'.') {
            bytes.remove(0);
        }
        matches!(&bytes[..], [] | [b'\r'] | [b'\n'] | [b'\r', b'\n'])
    }

    /// Scans content bytes (no LF) of the current line.
    fn scan(&mut self, content: &[u8]) {
        for &byte in content {
            if self.pending_cr {
                // The CR was not followed by LF.
                self.pending_cr = false;
                self.note(Problem::BareCr { line: self.line });
                self.content_byte(b'\r');
            }
            match byte {
                b'\r' => self.pending_cr = true,
                0 => {
                    self.note(Problem::Nul { line: self.line });
                    self.content_byte(byte);
                }
                _ => self.content_byte(byte),
            }
        }
    }

    fn content_byte(&mut self, byte: u8) {
        self.line_len += 1;
        self.dot_candidate = self.line_len == 1 && byte == b'.';
        if byte >= 0x80 {
            self.line_has_8bit = true;
        }
    }

    /// Ends the current line; `newline` is false for an unterminated last line.
    fn end_line(&mut self, newline: bool) -> io::Result<Flow> {
        // Input that ends in CR: that CR is text, and a bare one.
        let ends_in_cr = self.pending_cr && !newline;
        self.pending_cr = false;
        if ends_in_cr {
            self.note(Problem::BareCr { line: self.line });
        }
        // Only ".", ".\n" and ".\r\n" end the input; ".\r" at EOF is text.
        if self.options.dot_ends_input && self.dot_candidate && self.line_len == 1 && !ends_in_cr {
            // IN2: the lone dot ends the input and is not part of it.
            self.spool.truncate(self.line_start)?;
            if self.phase == Phase::Header {
                self.header_line.clear();
            }
            return Ok(Flow::Stop);
        }
        if self.line_len > MAX_LINE {
            self.note(Problem::LineTooLong {
                line: self.line,
                length: self.line_len,
            });
        }
        match self.phase {
            Phase::Header => self.classify_header_line(newline),
            Phase::Body => self.eight_bit_body |= self.line_has_8bit,
        }
        if self
            .body_offset
            .is_some_and(|offset| offset <= self.line_start)
        {
            // RFC 1870 counts the message as sent: every line ends in CRLF
            // (an LF-only or unterminated line gains octets), dot-stuffing
            // and the final dot excluded.
            self.body_wire_len += self.line_len as u64 + 2;
        }
        self.line += 1;
        self.line_start = self.spool.len();
        self.line_len = 0;
        self.line_has_8bit = false;
        self.dot_candidate = true;
        Ok(Flow::Continue)
    }

    /// `newline`: the line ended in LF. A CR is part of the line ending
    /// only before LF: "\r" at the end of input is text (a bare CR), not
    /// the empty line that ends the header.
    fn classify_header_line(&mut self, newline: bool) {
        let line = std::mem::take(&mut self.header_line);
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = if newline {
            content.strip_suffix(b"\r").unwrap_or(content)
        } else {
            content
        };
        let continuation =
            matches!(content.first(), Some(b' ' | b'\t')) && !self.header_block.is_empty();
        if content.is_empty() {
            self.phase = Phase::Body;
            self.has_separator = true;
            self.body_offset = Some(self.spool.len());
        } else if continuation || is_field_line(content) {
            if self.line_has_8bit {
                self.eight_bit_header = true;
                if std::str::from_utf8(content).is_err() {
                    self.note(Problem::HeaderNotUtf8 { line: self.line });
                }
            }
            self.header_block.extend_from_slice(&line);
        } else {
            self.phase = Phase::Body;
            self.body_offset = Some(self.line_start);
            self.eight_bit_body |= self.line_has_8bit;
        }
    }

    fn finish(mut self) -> io::Result<Input> {
        if self.line_len > 0 || self.pending_cr {
            self.end_line(false)?;
        }
        let spool_fallback = self.spool.fallback.clone();
        let spool = self.spool.finish()?;
        let body_offset = self.body_offset.unwrap_or(spool.len());
        Ok(Input {
            spool,
            body_offset,
            problem: self.problem,
            header_block: self.header_block,
            body_wire_len: self.body_wire_len,
            spool_fallback,
            has_separator: self.has_separator,
            eight_bit_header: self.eight_bit_header,
            eight_bit_body: self.eight_bit_body,
        })
    }
}

/// RFC 5322 2.2: `field-name ":"`, where the name is printable ASCII
/// without ":" (obsolete syntax allows white space before the colon).
pub(crate) fn is_field_line(content: &[u8]) -> bool {
    let Some(colon) = content.iter().position(|&b| b == b':') else {
        return false;
    };
    // Obsolete syntax allows space and tab before the colon, nothing else.
    let mut name = &content[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], dot_ends_input: bool) -> Input {
        let options = InputOptions {
            dot_ends_input,
            ..InputOptions::default()
        };
        read(input, &options).unwrap()
    }

    fn stored(input: &Input) -> Vec<u8> {
        let mut out = Vec::new();
        input.raw_reader().unwrap().read_to_end(&mut out).unwrap();
        out
    }

    fn body(input: &Input) -> Vec<u8> {
        let mut out = Vec::new();
        input.body_reader().unwrap().read_to_end(&mut out).unwrap();
        out
    }

    // covers: IN2
    #[test]
    fn in2_a_lone_dot_ends_input_unless_i() {
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], bool, &[u8])] = &[
            ("IN2 dot LF ends", b"S: x\n\nbody\n.\nafter\n", true, b"S: x\n\nbody\n"),
            ("IN2 dot CRLF ends", b"S: x\r\n\r\nbody\r\n.\r\nafter", true, b"S: x\r\n\r\nbody\r\n"),
            ("IN2 dot at EOF ends", b"S: x\n\nbody\n.", true, b"S: x\n\nbody\n"),
            ("IN2 -i keeps the dot", b"S: x\n\nbody\n.\nafter\n", false, b"S: x\n\nbody\n.\nafter\n"),
            ("IN2 two dots are text", b"S: x\n\n..\nend\n", true, b"S: x\n\n..\nend\n"),
            ("IN2 space dot is text", b"S: x\n\n .\n", true, b"S: x\n\n .\n"),
            ("IN2 dot with text is text", b"S: x\n\n.x\n", true, b"S: x\n\n.x\n"),
            ("IN2 dot in the header ends", b"S: x\n.\nT: y\n", true, b"S: x\n"),
        ];
        for (id, input, dot_ends, expected) in cases {
            let got = read_all(input, *dot_ends);
            assert_eq!(stored(&got), *expected, "{id}");
            assert_eq!(got.problem, None, "{id}");
        }
    }

    // covers: IN1
    #[test]
    fn in1_bare_lf_and_crlf_are_both_accepted_and_kept_as_read() {
        let input = read_all(b"Subject: a\nTo: b@c.example\r\n\nline1\r\nline2\n", true);
        assert_eq!(input.problem, None);
        assert_eq!(input.header_block, b"Subject: a\nTo: b@c.example\r\n");
        assert!(input.has_separator);
        assert_eq!(body(&input), b"line1\r\nline2\n");
    }

    // covers: IN9
    #[test]
    fn in9_long_lines_nul_bytes_and_bare_cr_are_found_with_their_line() {
        let ok_line = format!("S: x\n\n{}\n", "a".repeat(998));
        assert_eq!(read_all(ok_line.as_bytes(), true).problem, None);
        let ok_crlf = format!("S: x\r\n\r\n{}\r\n", "a".repeat(998));
        assert_eq!(read_all(ok_crlf.as_bytes(), true).problem, None);
        let long = format!("S: x\n\nfine\n{}\nmore\n", "a".repeat(1200));
        assert_eq!(
            read_all(long.as_bytes(), true).problem,
            Some(Problem::LineTooLong {
                line: 4,
                length: 1200
            })
        );
        let long_last = format!("S: x\n\n{}", "b".repeat(999));
        assert_eq!(
            read_all(long_last.as_bytes(), true).problem,
            Some(Problem::LineTooLong {
                line: 3,
                length: 999
            })
        );
        #[rustfmt::skip]
        let cases: &[(&[u8], Problem)] = &[
            (b"S: x\n\nab\0c\n", Problem::Nul { line: 3 }),
            (b"S: x\n\na\rb\n", Problem::BareCr { line: 3 }),
            (b"S: x\n\nprogress 10%\rprogress 20%\n", Problem::BareCr { line: 3 }),
            (b"S: x\n\nends in CR\r", Problem::BareCr { line: 3 }),
            // ".\r" at EOF is not a terminator: it is text with a bare CR.
            (b"S: x\n\nbody\n.\r", Problem::BareCr { line: 4 }),
            (b"\r", Problem::BareCr { line: 1 }),
            (b"S: x\n\r", Problem::BareCr { line: 2 }),
            (b"S: x\r\r\n\nbody\n", Problem::BareCr { line: 1 }),
            (b"S: \xff\xfe\n\nbody\n", Problem::HeaderNotUtf8 { line: 1 }),
        ];
        for (input, expected) in cases {
            assert_eq!(
                read_all(input, true).problem.as_ref(),
                Some(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The first problem wins and the whole input is still kept.
        let both = b"S: x\n\na\0\nb\rc\n";
        let input = read_all(both, true);
        assert_eq!(input.problem, Some(Problem::Nul { line: 3 }));
        assert_eq!(stored(&input), both);
    }

    #[test]
    fn problems_explain_themselves() {
        let text = Problem::LineTooLong {
            line: 4,
            length: 1200,
        }
        .to_string();
        assert!(
            text.contains("line 4") && text.contains("1200") && text.contains("998"),
            "{text}"
        );
    }

    #[test]
    fn splits_header_and_body_as_postfix_does() {
        // (id, input, header block, separator seen, body)
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], bool, &'a [u8]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("blank line", b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n", true, b"body\n"),
            ("folded field", b"A: 1\n  more\n\tmore\nB: 2\n\nx", b"A: 1\n  more\n\tmore\nB: 2\n", true, b"x"),
            ("no blank line", b"A: 1\nplain text\n", b"A: 1\n", false, b"plain text\n"),
            ("no header", b"just a body\n", b"", false, b"just a body\n"),
            ("mbox From line", b"From me Sun Nov 22\nA: 1\n", b"", false, b"From me Sun Nov 22\nA: 1\n"),
            ("leading blank", b"\nbody\n", b"", true, b"body\n"),
            ("header only", b"A: 1\nB: 2\n", b"A: 1\nB: 2\n", false, b""),
            ("header, no newline", b"A: 1", b"A: 1", false, b""),
            ("empty", b"", b"", false, b""),
            ("leading continuation", b" x: 1\n", b"", false, b" x: 1\n"),
            ("prose with a colon", b"Hello world: hi\n", b"", false, b"Hello world: hi\n"),
            ("obsolete space before colon", b"Subject : x\n\nb", b"Subject : x\n", true, b"b"),
            ("form feed before colon is not", b"Name\x0c: x\n", b"", false, b"Name\x0c: x\n"),
        ];
        for (id, input, header, separator, expected_body) in cases {
            let got = read_all(input, true);
            assert_eq!(got.header_block, *header, "{id}: header");
            assert_eq!(got.has_separator, *separator, "{id}: separator");
            assert_eq!(body(&got), *expected_body, "{id}: body");
            assert_eq!(got.problem, None, "{id}");
        }
    }

    // covers: IN8
    #[test]
    fn in8_eight_bit_content_is_noticed_where_it_is() {
        let input = read_all("Subject: Grüße\n\nplain\n".as_bytes(), true);
        assert!(input.eight_bit_header && !input.eight_bit_body);
        let input = read_all("Subject: x\n\nGrüße\n".as_bytes(), true);
        assert!(!input.eight_bit_header && input.eight_bit_body);
        // A non-field first line with 8-bit bytes belongs to the body.
        let input = read_all("Grüße\n".as_bytes(), true);
        assert!(!input.eight_bit_header && input.eight_bit_body);
    }

    // covers: IN10, IN11
    #[test]
    fn in10_large_input_moves_to_a_file_and_reads_back_the_same_twice() {
        let mut message = b"Subject: big\n\n".to_vec();
        for i in 0..20_000 {
            message.extend_from_slice(format!("line {i} of a long body\n").as_bytes());
        }
        let options = InputOptions {
            memory_limit: 4096,
            ..InputOptions::default()
        };
        // Feed it in odd-sized pieces to cross chunk boundaries everywhere.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = read(Trickle(&message), &options).unwrap();
        assert!(input.spilled());
        assert_eq!(input.problem, None);
        assert_eq!(stored(&input), message);
        assert_eq!(stored(&input), message);
        assert_eq!(body(&input), &message[14..]);
        assert_eq!(input.body_len(), message.len() as u64 - 14);
    }

    #[test]
    fn oversized_header_is_refused() {
        let options = InputOptions {
            max_header: 64,
            ..InputOptions::default()
        };
        let message = format!("X-Long: {}\n\nbody\n", "v".repeat(100));
        let input = read(message.as_bytes(), &options).unwrap();
        assert_eq!(input.problem, Some(Problem::HeaderTooLarge { limit: 64 }));
        assert_eq!(stored(&input), message.as_bytes());
    }

    /// Reads `input` in pieces of the given sizes (cycled).
    struct Pieces<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()].max(1);
            self.turn += 1;
            let n = self.data.len().min(buf.len()).min(size);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Found by the input fuzz target: a CR at the end of input was also
    /// taken for the empty line that ends the header.
    #[test]
    fn a_cr_at_the_end_of_input_is_not_an_empty_line() {
        for input in [&b"\r"[..], b"S: x\n\r"] {
            let read = read_all(input, true);
            assert!(!read.has_separator, "{input:?}");
            assert!(matches!(read.problem, Some(Problem::BareCr { .. })));
        }
    }

    // covers: IN9
    #[test]
    fn in9_a_header_of_exactly_the_limit_is_accepted() {
        let block = "X-A: 12345\nX-B: 67\r\n";
        for (separator, dot_ends_input) in [("\n", true), ("\r\n", false), ("\n", false)] {
            let message = format!("{block}{separator}body\n");
            let options = InputOptions {
                max_header: block.len(),
                dot_ends_input,
                ..InputOptions::default()
            };
            let input = read(message.as_bytes(), &options).unwrap();
            assert_eq!(input.problem, None, "{separator:?}");
            assert_eq!(input.header_block, block.as_bytes());
            let options = InputOptions {
                max_header: block.len() - 1,
                ..options
            };
            let input = read(message.as_bytes(), &options).unwrap();
            assert_eq!(
                input.problem,
                Some(Problem::HeaderTooLarge {
                    limit: block.len() - 1
                })
            );
        }
        // A header at its limit, then the lone dot that ends the input.
        let options = InputOptions {
            max_header: block.len(),
            ..InputOptions::default()
        };
        let input = read(format!("{block}.\n").as_bytes(), &options).unwrap();
        assert_eq!(input.problem, None);
    }

    // covers: IN9
    #[test]
    fn in9_the_problem_reported_does_not_depend_on_how_input_was_split() {
        // A NUL inside a header line that also goes past the limit.
        let message = format!("X-Big: {}\0{}\n\nbody\n", "a".repeat(40), "b".repeat(40));
        for limit in [20, 47, 48, 60] {
            let options = InputOptions {
                max_header: limit,
                ..InputOptions::default()
            };
            let whole = read(message.as_bytes(), &options).unwrap().problem;
            for size in 1..message.len() {
                let pieces = Pieces {
                    data: message.as_bytes(),
                    sizes: vec![size],
                    turn: 0,
                };
                let split = read(pieces, &options).unwrap().problem;
                assert_eq!(split, whole, "limit {limit}, reads of {size}");
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Up to 80 of `pieces`, joined.
        fn joined(pieces: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(0..pieces.len(), 0..80)
                .prop_map(move |picks| picks.into_iter().flat_map(|i| pieces[i]).copied().collect())
        }

        /// Every kind of byte the scan must judge, bad ones included.
        const ANY: &[&[u8]] = &[
            b"\n",
            b"\r\n",
            b"\r",
            b"\0",
            b".",
            b"X-A: ",
            b"ab",
            b" ",
            "ü".as_bytes(),
            b"\xff",
        ];
        /// Messages the scan accepts: no bare CR, NUL or invalid UTF-8.
        const SENDABLE: &[&[u8]] = &[b"\n", b"\r\n", b".", b"X-A: ", b"ab", b" "];

        fn message() -> impl Strategy<Value = Vec<u8>> {
            joined(ANY)
        }

        fn sendable() -> impl Strategy<Value = Vec<u8>> {
            joined(SENDABLE)
        }

        fn summary(input: &Input) -> (Option<Problem>, Vec<u8>, bool, Vec<u8>, u64, bool, bool) {
            (
                input.problem.clone(),
                input.header_block.clone(),
                input.has_separator,
                body(input),
                input.body_wire_len,
                input.eight_bit_header,
                input.eight_bit_body,
            )
        }

        proptest! {
            // covers: IN9, IN1
            #[test]
            fn in9_reads_of_any_size_give_the_same_message(
                data in message(),
                sizes in proptest::collection::vec(1usize..9, 1..5),
                max_header in 0usize..48,
                dot_ends_input: bool,
            ) {
                let options = InputOptions {
                    dot_ends_input,
                    max_header,
                    memory_limit: 16,
                };
                let whole = read(&data[..], &options).unwrap();
                let split = read(Pieces { data: &data, sizes, turn: 0 }, &options).unwrap();
                prop_assert_eq!(summary(&whole), summary(&split));
                prop_assert!(whole.header_block.len() <= max_header);
                if !dot_ends_input {
                    prop_assert_eq!(stored(&whole), data);
                }
            }

            // covers: IN1
            #[test]
            fn in1_the_size_estimate_is_the_body_as_sent(data in sendable()) {
                let input = read(&data[..], &InputOptions::default()).unwrap();
                prop_assert_eq!(&input.problem, &None);
                // CRLF-normalised, dot-stuffing and the final dot left out.
                let wire = crate::smtp::data::encode_all(&body(&input)).unwrap();
                let stuffed = wire
                    .split(|&b| b == b'\n')
                    .filter(|line| line.starts_with(b"."))
                    .count() as u64;
                prop_assert_eq!(input.body_wire_len, wire.len() as u64 - 3 - (stuffed - 1));
            }
        }
    }
}
