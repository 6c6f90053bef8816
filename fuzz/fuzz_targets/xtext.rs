//! RFC 3461 xtext (`smtp::command::xtext`), the encoding of ENVID (`-V`)
//! and ORCPT (recipient addresses) on MAIL and RCPT lines.
//!
//! Payload: the text as UTF-8 (invalid sequences replaced).
//!
//! Checks: the output is xtext: printable ASCII from "!" to "~", where "+"
//! only starts a "+HH" pair of upper-case hex digits and "=" never appears
//! (so nothing can end or extend the command line); it decodes back to the
//! input's bytes; it is at most three times as long.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::smtp::command::xtext;
use tlsend_fuzz::split_controls;

fn decode(xtext: &str) -> Vec<u8> {
    let bytes = xtext.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3).expect("'+' followed by two digits");
                assert!(
                    hex.iter()
                        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
                    "'+' followed by {hex:?}"
                );
                let hex = std::str::from_utf8(hex).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'=' => panic!("'=' in xtext {xtext:?}"),
            b @ b'!'..=b'~' => {
                out.push(b);
                i += 1;
            }
            b => panic!("byte {b:#04x} in xtext {xtext:?}"),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let text = String::from_utf8_lossy(payload);
    let encoded = xtext(&text);
    assert!(encoded.len() <= 3 * text.len());
    assert_eq!(decode(&encoded), text.as_bytes());
});
