//! RFC 5322 address lists (`message::parse_address_list`): To, Cc and Bcc
//! with -t, and every recipient argument on the command line.
//!
//! Payload: the list as UTF-8 (invalid sequences replaced, as a header value
//! is unfolded with `from_utf8_lossy`).
//!
//! Checks: it returns (libFuzzer's -timeout and -rss_limit_mb catch hangs
//! and runaway memory, linear work is checked by running with a large
//! -max_len); every address it gives is one an envelope can carry: it
//! re-parses to itself and its text has no control character or line break;
//! the addresses written back as a list read back as the same list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::address::Address;
use tlsend::message::parse_address_list;
use tlsend_fuzz::split_controls;

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let text = String::from_utf8_lossy(payload);
    let addresses = match parse_address_list(&text) {
        Ok(addresses) => addresses,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut list = String::new();
    for address in &addresses {
        let written = address.to_string();
        assert!(!written.chars().any(char::is_control), "{written:?}");
        assert_eq!(
            Address::parse(&written).as_ref(),
            Ok(address),
            "{written:?}"
        );
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(&written);
    }
    // What was found, written as a plain list, is found again.
    assert_eq!(
        parse_address_list(&list).as_ref(),
        Ok(&addresses),
        "{list:?}"
    );
});
