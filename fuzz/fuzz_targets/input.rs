//! Reading the message from standard input (`message::read`).
//!
//! Controls: byte 0 bit 0 sets `dot_ends_input` (sendmail without -i);
//! byte 1 picks `memory_limit` (64-octet steps, 0 spills at once to the
//! temporary file); byte 2 picks `max_header` (16-octet steps, 0 for the
//! default); the rest are read sizes, 0 being a read interrupted by a
//! signal. Missing controls keep the defaults.
//!
//! Checks: nothing is lost: the stored bytes are the input, minus a
//! terminating lone-dot line; the result (problem, header block, body,
//! flags) does not depend on how the input was split into reads; stored =
//! header block + optional empty line + body; the header block stays within
//! `max_header` and parses as a header; memory stays within `memory_limit`;
//! a message without a problem has no NUL, bare CR, overlong line or non
//! UTF-8 header, and one with such a byte always has a problem.

#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use tlsend::message::{self, Header, Input, InputOptions, MAX_LINE};
use tlsend_fuzz::{ChunkedReader, crlf_lines, split_controls};

/// The input as the user meant it: up to a line that is exactly "." (LF,
/// CRLF, or at EOF without a line ending) when dots end input.
fn expected_stored(payload: &[u8], dot_ends_input: bool) -> &[u8] {
    if !dot_ends_input {
        return payload;
    }
    let mut start = 0;
    for line in payload.split_inclusive(|&b| b == b'\n') {
        if matches!(line, b"." | b".\n" | b".\r\n") {
            return &payload[..start];
        }
        start += line.len();
    }
    payload
}

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("spool reads back");
    out
}

/// Everything `read` decided, for comparing two ways of reading.
#[derive(Debug, PartialEq)]
struct Outcome {
    problem: Option<message::Problem>,
    header_block: Vec<u8>,
    has_separator: bool,
    eight_bit_header: bool,
    eight_bit_body: bool,
    stored: Vec<u8>,
    body: Vec<u8>,
    len: u64,
    body_len: u64,
    spilled: bool,
}

fn outcome(input: &Input) -> Outcome {
    let stored = read_all(input.raw_reader().unwrap());
    // A second reader sees the same bytes (IN11: retries re-read the spool).
    assert_eq!(read_all(input.raw_reader().unwrap()), stored);
    Outcome {
        problem: input.problem.clone(),
        header_block: input.header_block.clone(),
        has_separator: input.has_separator,
        eight_bit_header: input.eight_bit_header,
        eight_bit_body: input.eight_bit_body,
        body: read_all(input.body_reader().unwrap()),
        stored,
        len: input.len(),
        body_len: input.body_len(),
        spilled: input.spilled(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let defaults = InputOptions::default();
    let options = InputOptions {
        dot_ends_input: controls
            .first()
            .map_or(defaults.dot_ends_input, |c| c & 1 == 1),
        memory_limit: controls
            .get(1)
            .map_or(defaults.memory_limit, |&c| usize::from(c) * 64),
        max_header: match controls.get(2) {
            None | Some(0) => defaults.max_header,
            Some(&c) => usize::from(c) * 16,
        },
    };
    let read_sizes = controls.get(3..).unwrap_or_default();

    let whole = message::read(payload, &options).expect("reading from memory cannot fail");
    let split = message::read(ChunkedReader::new(payload, read_sizes), &options)
        .expect("reading from memory cannot fail");
    let got = outcome(&whole);
    assert_eq!(got, outcome(&split), "the result depends on the read sizes");

    // Nothing lost, nothing added.
    assert_eq!(
        got.stored,
        expected_stored(payload, options.dot_ends_input),
        "stored bytes"
    );
    assert_eq!(got.len, got.stored.len() as u64);
    assert_eq!(got.body_len, got.body.len() as u64);

    // Header block, the empty line if any, then the body: nothing in between.
    let head = got.stored.strip_prefix(&got.header_block[..]);
    let head = head.expect("the header block starts the stored bytes");
    let separator = &head[..head.len() - got.body.len()];
    assert!(head.ends_with(&got.body), "the body ends the stored bytes");
    match separator {
        b"" => assert!(!got.has_separator),
        b"\n" | b"\r\n" => assert!(got.has_separator),
        other => panic!("{other:?} between header and body"),
    }

    assert!(got.header_block.len() <= options.max_header);
    if !got.spilled {
        assert!(got.stored.len() <= options.memory_limit);
    }
    assert_eq!(got.eight_bit_header, !got.header_block.is_ascii());
    assert_eq!(got.eight_bit_body, !got.body.is_ascii());
    // What app.rs does next with the header block.
    if let Err(e) = Header::parse(&got.header_block) {
        panic!("the header block read does not parse: {e}");
    }

    let has_nul = got.stored.contains(&0);
    let has_bare_cr = crlf_lines(&got.stored).is_none();
    let has_long_line = got.stored.split(|&b| b == b'\n').any(|line| {
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        content.len() > MAX_LINE
    });
    if has_nul || has_bare_cr || has_long_line {
        assert!(got.problem.is_some(), "a problem went unnoticed");
    }
    if got.problem.is_none() {
        assert!(std::str::from_utf8(&got.header_block).is_ok());
    } else {
        let _ = got.problem.as_ref().map(ToString::to_string);
    }
});
