//! Queue entry state lines (`queue::Entry::parse`), the first line of every
//! file in `maildrop/` and `queue/`. Any local user can drop a file into
//! the maildrop, so a runner reads state written by someone else; what
//! `-bp` and `-q` then do with a parsed entry is called here too: the
//! scheduling rules, the envelope, the status codes and the listing.
//!
//! Controls: byte 0 picks `now`, byte 1 the queue lifetime, byte 2 the
//! delay warning (or none), each from values around the entry's own times
//! and the ends of the i64 range (see `time`); byte 3 bit 0 is `flush`
//! (`-qf`). Payload: the file as dropped; the state is the bytes before
//! the first line feed, as the store reads it.
//!
//! Checks: nothing panics or overflows; an entry that parses is written
//! back (`to_line`) as exactly one line that parses to the same entry, and
//! written again the same; its sender (unless empty) and every recipient
//! are addresses; `envelope(due(..))` is the envelope of what is due, and
//! what is due agrees with `next_attempt` and `flush`; without a delay
//! warning none is due; nobody is notified about a notification or with
//! an empty sender; the text listing of a queue holding the entry twice
//! has one line per entry and recipient and no control character; each
//! recipient is the one `recipients_by_address` finds for its address as `due`
//! gives it, so that a delivery or a failure is recorded on it (otherwise
//! a delivered recipient stays pending and is sent again on every run).

#![no_main]

use std::ptr;

use libfuzzer_sys::fuzz_target;
use tlsend::address::{Address, ReversePath};
use tlsend::queue::entry::NotifyName;
use tlsend::queue::{Entry, Listed, listing};
use tlsend::status::EnhancedCode;
use tlsend_fuzz::split_controls;

/// A time for the entry: control bits 0-2 choose a base (the entry's own
/// times, a realistic clock, the ends of the range), bits 3-7 a distance
/// from it of -16 to 15 seconds, or days when the base is 0.
fn time(control: u8, entry: &Entry) -> i64 {
    let base = match control & 7 {
        0 => 0,
        1 => entry.created,
        2 => entry.next_attempt().unwrap_or(entry.created),
        3 => i64::MAX,
        4 => i64::MIN,
        5 => 1_795_996_400,
        6 => entry
            .recipients
            .iter()
            .filter_map(|r| r.last_attempt)
            .max()
            .unwrap_or(-1),
        _ => entry.recipients.last().map_or(0, |r| r.next_attempt),
    };
    let distance = i64::from(control >> 3) - 16;
    let distance = if base == 0 {
        distance * 86_400
    } else {
        distance
    };
    base.saturating_add(distance)
}

fn check_line(entry: &Entry) {
    let line = entry.to_line();
    assert_eq!(line.last(), Some(&b'\n'), "no line feed at the end");
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "{:?} is not one line",
        String::from_utf8_lossy(&line)
    );
    let state = &line[..line.len() - 1];
    let back = match Entry::parse(state) {
        Ok(back) => back,
        Err(e) => panic!(
            "{:?} does not parse back: {e}",
            String::from_utf8_lossy(state)
        ),
    };
    assert_eq!(&back, entry, "read back differently");
    assert_eq!(back.to_line(), line, "written differently the second time");
}

fn check_schedule(entry: &Entry, now: i64, lifetime: i64, warn_after: Option<i64>, flush: bool) {
    let pending: Vec<Address> = entry
        .pending()
        .map(|r| Address::parse(&r.address).expect("a recipient is an address"))
        .collect();
    assert_eq!(
        entry.due(now, true),
        pending,
        "a flush is every pending one"
    );
    let due = entry.due(now, flush);
    assert!(due.len() <= pending.len());
    assert_eq!(entry.finished(), pending.is_empty());
    match entry.next_attempt() {
        None => assert!(pending.is_empty() && due.is_empty()),
        Some(next) => {
            assert!(entry.pending().any(|r| r.next_attempt == next));
            if !flush {
                assert_eq!(!due.is_empty(), next <= now, "due at {now}, next {next}");
            }
        }
    }

    let envelope = entry.envelope(due.clone());
    assert_eq!(envelope.recipients, due);
    assert_eq!(envelope.sender, entry.reverse_path());
    assert_eq!(envelope.size, Some(entry.size));
    assert_eq!(envelope.dsn.envid, entry.dsn.envid);
    let _ = (envelope.needs_smtputf8(), envelope.dsn.is_requested());

    let _ = entry.expired(now, lifetime);
    let _ = entry.expired(now, i64::MAX);
    let _ = entry.expired(now, i64::MIN);
    let warning = entry.warning_due(now, warn_after);
    assert!(!entry.warning_due(now, None));
    if warning {
        assert!(!entry.warned && !entry.bounce && !entry.finished());
    }
    for what in [
        NotifyName::Never,
        NotifyName::Success,
        NotifyName::Failure,
        NotifyName::Delay,
    ] {
        if entry.notify_on(what) {
            assert!(!entry.sender.is_empty() && !entry.bounce, "{what:?}");
        }
    }
}

fn check_listing(entry: &Entry, now: i64) {
    // A queue with this entry twice: once dropped, once taken in.
    let listed = [
        Listed {
            entry: entry.clone(),
            dropped: true,
            owner: 1000,
        },
        Listed {
            entry: entry.clone(),
            dropped: false,
            owner: 0,
        },
    ];
    let text = listing::text(&listed, now);
    assert!(text.ends_with('\n'));
    assert_eq!(
        text.lines().count(),
        2 * (1 + entry.recipients.len()) + 1,
        "{text:?}"
    );
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    let json = listing::json(&listed, now);
    assert!(json.starts_with('{') && json.ends_with("}\n"), "{json:?}");
    let _ = listing::iso(now);
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let state = payload.split(|&b| b == b'\n').next().unwrap_or_default();
    let entry = match Entry::parse(state) {
        Ok(entry) => entry,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    check_line(&entry);
    if !entry.sender.is_empty() {
        let sender = Address::parse(&entry.sender).expect("the sender is an address");
        assert_eq!(entry.reverse_path(), ReversePath::Address(sender));
    } else {
        assert_eq!(entry.reverse_path(), ReversePath::Null);
    }
    assert!(!entry.recipients.is_empty());
    for r in &entry.recipients {
        Address::parse(&r.address).expect("a recipient is an address");
        if let Some(status) = &r.status {
            // As an expiry and a notification read it.
            if let Some((code, _)) = EnhancedCode::parse_prefix(status) {
                let _ = (code.with_class(5).to_string(), code.is_permanent());
            }
        }
    }

    let control = |i: usize| controls.get(i).copied().unwrap_or(0);
    let now = time(control(0), &entry);
    let lifetime = time(control(1), &entry);
    let warn_after = (control(2) != 0xff).then(|| time(control(2), &entry));
    let flush = control(3) & 1 == 1;
    check_schedule(&entry, now, lifetime, warn_after, flush);
    check_listing(&entry, now);

    // A result is recorded on the recipient it is for: the address `due`
    // gives finds that very recipient again (not another, not none).
    let mut recorded = entry.clone();
    for i in 0..entry.recipients.len() {
        let address = Address::parse(&entry.recipients[i].address).expect("an address");
        let found = recorded
            .recipients_by_address()
            .get(&address.to_string())
            .map(|r| ptr::from_ref(&**r))
            .unwrap_or_else(|| {
                panic!(
                    "recipient {i}, {:?}, is not found by its address {address}",
                    entry.recipients[i].address
                )
            });
        assert!(
            ptr::eq(found, &recorded.recipients[i]),
            "recipient {i}, {:?}: its address finds another recipient",
            entry.recipients[i].address
        );
    }
});
