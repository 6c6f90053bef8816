//! Trust anchor files for `dnssec = "validate"` (DNSKEY and DS records in
//! zone-file form: comments, parentheses over several lines, continuation
//! lines): `dns::check_anchor_text`.
//!
//! Checks: no panic; an error names a line of the input (1 to the number
//! of lines); text that parses still parses, to the same counts, with a
//! comment line added in front (lines are counted, not bytes).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::dns::check_anchor_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match check_anchor_text(text) {
        Err((line, _)) => {
            let lines = text.split('\n').count().max(1);
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        }
        Ok(counts) => {
            let shifted = format!("; a comment\n{text}");
            assert_eq!(check_anchor_text(&shifted), Ok(counts));
        }
    }
});
