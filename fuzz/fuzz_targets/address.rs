//! RFC 5321 envelope addresses (`Address::parse`, `ReversePath::parse`):
//! `-f`, `-r`, recipient arguments, `from` in the configuration.
//!
//! Payload: the text as UTF-8 (invalid sequences replaced).
//!
//! Checks: an address that parses is written back (`to_string`, what goes
//! into MAIL FROM and RCPT TO) as text that parses to the same address, has
//! no control character, white space outside quotes or angle bracket, and
//! fits the RFC 5321 path limit; `from_parts` with its own parts gives it
//! back; the reverse path agrees with the address parser and round-trips
//! the same way.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::address::{Address, ReversePath};
use tlsend_fuzz::split_controls;

fn check_written(written: &str) {
    assert!(!written.chars().any(char::is_control), "{written:?}");
    assert!(written.len() <= 254, "{} octets", written.len());
    // Outside the quotes of a quoted local part (the domain never has one).
    let unquoted = match written.strip_prefix('"') {
        Some(_) => &written[written.rfind('"').unwrap_or(0) + 1..],
        None => written,
    };
    assert!(
        !unquoted
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>'),
        "white space or angle bracket outside quotes in {written:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let text = String::from_utf8_lossy(payload);

    let parsed = Address::parse(&text);
    if let Ok(address) = &parsed {
        let written = address.to_string();
        check_written(&written);
        assert_eq!(
            Address::parse(&written).as_ref(),
            Ok(address),
            "{text:?} was written as {written:?}"
        );
        assert_eq!(
            Address::from_parts(address.local_part(), address.domain()).as_ref(),
            Ok(address)
        );
        let _ = address.is_ascii();
    } else if let Err(e) = &parsed {
        let _ = e.to_string();
    }

    match ReversePath::parse(&text) {
        Ok(ReversePath::Null) => {
            assert!(matches!(text.trim(), "" | "<>"));
        }
        Ok(ReversePath::Address(address)) => {
            assert_eq!(parsed.as_ref(), Ok(&address));
            let path = ReversePath::Address(address);
            assert_eq!(ReversePath::parse(&path.to_string()).as_ref(), Ok(&path));
        }
        Err(e) => assert_eq!(parsed, Err(e)),
    }
});
