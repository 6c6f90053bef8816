//! SMTP reply parser (`smtp::reply::ReplyParser`), driven the way the
//! session's connection drives it: bytes arrive in reads of any size, one
//! parser resumes after each read where it stopped, a complete reply's
//! bytes are drained and the rest (pipelined replies, or injected bytes) is
//! parsed by the fresh state the parser is left in.
//!
//! Checks: the replies, the error and the leftover bytes do not depend on
//! where the stream was split; `used` is within the buffer and not 0; the
//! bytes a reply used parse to the same reply; a reply written back in wire
//! form parses to the same reply; codes and enhanced codes are in range;
//! nothing printable from a reply carries a control character.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::smtp::reply::{self, MAX_LINE, MAX_LINES, Reply, ReplyError, ReplyParser};
use tlsend_fuzz::{chunks, split_controls};

#[derive(Debug, PartialEq)]
enum Event {
    Reply(Reply, usize),
    Error(ReplyError),
    /// The stream ended with this many bytes not yet a reply.
    Incomplete(usize),
}

fn incremental(pieces: &[&[u8]]) -> Vec<Event> {
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut parser = ReplyParser::default();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&buf) {
                Ok(Some((reply, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "used {used} of {}",
                        buf.len()
                    );
                    check_reply(&reply, &buf[..used]);
                    events.push(Event::Reply(reply, used));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => {
                    // The session gives up on the first garbled reply.
                    let _ = e.to_string();
                    events.push(Event::Error(e));
                    return events;
                }
            }
        }
    }
    events.push(Event::Incomplete(buf.len()));
    events
}

fn no_controls(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && c != '\t')
}

fn check_reply(reply: &Reply, wire: &[u8]) {
    // Exactly the bytes it used are one reply.
    assert_eq!(
        reply::parse(wire),
        Ok(Some((reply.clone(), wire.len()))),
        "re-parse of the used bytes"
    );
    assert!((200..=559).contains(&reply.code()), "{}", reply.code());
    assert!(!reply.lines().is_empty() && reply.lines().len() <= MAX_LINES);
    if let Some(e) = reply.enhanced() {
        assert_eq!(u16::from(e.class), reply.code() / 100);
    }
    // What is shown to the user cannot carry terminal escapes.
    for line in reply.lines() {
        assert!(no_controls(line), "{line:?}");
    }
    assert!(no_controls(&reply.text()));
    assert!(no_controls(&reply.to_string()));
    let _ = (
        reply.is_positive(),
        reply.is_intermediate(),
        reply.is_transient(),
        reply.is_permanent(),
    );

    // The reply written back as a server would send it reads the same.
    // Escaping can lengthen a line past the limit; those cannot be rebuilt.
    // ("250-" counts towards the line's length.)
    if reply.lines().iter().all(|l| l.len() + 4 <= MAX_LINE) {
        let mut rebuilt = Vec::new();
        let last = reply.lines().len() - 1;
        for (i, line) in reply.lines().iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            rebuilt.extend_from_slice(format!("{}{sep}{line}\r\n", reply.code()).as_bytes());
        }
        assert_eq!(
            reply::parse(&rebuilt),
            Ok(Some((reply.clone(), rebuilt.len()))),
            "rebuilt {:?}",
            String::from_utf8_lossy(&rebuilt)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let whole = incremental(&[payload]);
    let split = incremental(&chunks(payload, controls));
    assert_eq!(whole, split, "the result depends on the read boundaries");
});
