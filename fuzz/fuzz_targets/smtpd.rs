//! The `-bs` SMTP server (`smtpd::serve`): command parsing, the order of
//! commands, parameters, and DATA transparency, with a fake delivery.
//!
//! Controls: [0] the input buffer's capacity (1 to 256 octets, 0: 8 KiB as
//! standard input's), [1] how many octets of each message the delivery
//! reads before it stops (0: all), [2..] the sizes of the reads the input
//! arrives in (see `chunks`). Payload: what the client writes.
//!
//! Checks: no panic; the output is nothing but reply lines (three digits,
//! then a space or a hyphen, at most 512 octets with CRLF, no other CR or
//! LF); a dialogue gives the same replies and hands the delivery the same
//! data whatever the read boundaries and buffer size; a message is
//! answered exactly when its data ended (and the reply to it, which holds
//! a CRLF and a fake "250", stays one line).

#![no_main]

use std::io::{BufReader, Read};

use libfuzzer_sys::fuzz_target;
use tlsend::smtpd::{self, Delivery, End, Reply, Transaction};
use tlsend::status::EnhancedCode;
use tlsend_fuzz::{ChunkedReader, split_controls};

struct Fake {
    limit: Option<u64>,
    /// Each message's data as read, and whether it ended properly.
    taken: Vec<(Vec<u8>, bool)>,
}

impl Delivery for Fake {
    fn deliver(&mut self, transaction: &Transaction, data: &mut dyn Read) -> Reply {
        assert!(!transaction.recipients.is_empty());
        let mut bytes = Vec::new();
        let result = match self.limit {
            Some(limit) => data.take(limit).read_to_end(&mut bytes),
            None => data.read_to_end(&mut bytes),
        };
        self.taken.push((bytes, result.is_ok()));
        match self.taken.len() % 3 {
            0 => Reply::new(250, EnhancedCode::new(2, 0, 0), "Ok: queued as X"),
            1 => Reply::new(550, EnhancedCode::new(5, 7, 30), "no\r\n250 smuggled"),
            _ => Reply::new(451, EnhancedCode::new(4, 4, 1), "later"),
        }
    }
}

type Run = (Vec<u8>, Vec<(Vec<u8>, bool)>, String);

fn run(payload: &[u8], capacity: usize, limit: Option<u64>, splits: &[u8]) -> Run {
    let input = BufReader::with_capacity(capacity, ChunkedReader::new(payload, splits));
    let mut output = Vec::new();
    let mut fake = Fake {
        limit,
        taken: Vec::new(),
    };
    let end = smtpd::serve(input, &mut output, "host.example", &mut fake);
    let end = match end {
        End::Io(e) => panic!("I/O error from in-memory streams: {e}"),
        other => format!("{other:?}"),
    };
    (output, fake.taken, end)
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let capacity = match controls.first() {
        None | Some(0) => 8192,
        Some(&c) => usize::from(c),
    };
    let limit = match controls.get(1) {
        None | Some(0) => None,
        Some(&c) => Some(u64::from(c)),
    };
    let splits = controls.get(2..).unwrap_or_default();

    let (output, taken, end) = run(payload, capacity, limit, splits);
    let (whole_output, whole_taken, whole_end) = run(payload, 8192, limit, &[]);
    assert_eq!(output, whole_output, "replies depend on read boundaries");
    assert_eq!(taken, whole_taken, "data depends on read boundaries");
    assert_eq!(end, whole_end);

    let text = &output[..];
    assert!(text.is_empty() || text.ends_with(b"\r\n"));
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").expect("every line ends in CRLF");
        assert!(!line.contains(&b'\r'), "CR inside a reply: {line:?}");
        assert!(
            line.len() + 2 <= 512,
            "reply line of {} octets",
            line.len() + 2
        );
        assert!(
            line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit),
            "{line:?}"
        );
        assert!(matches!(line.get(3), None | Some(b' ' | b'-')), "{line:?}");
    }

    let replies_to_dots = output
        .split(|&b| b == b'\n')
        .filter(|l| {
            l.starts_with(b"550 5.7.30 no  250 smuggled")
                || l.starts_with(b"451 4.4.1 later")
                || l.starts_with(b"250 2.0.0 Ok: queued as X")
        })
        .count();
    if limit.is_none() {
        // Each message whose data ended is answered, and no other.
        let ended = taken.iter().filter(|(_, ended)| *ended).count();
        assert_eq!(replies_to_dots, ended);
    } else {
        assert!(replies_to_dots <= taken.len());
    }
});
