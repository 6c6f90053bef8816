//! Local names (`aliases::Aliases`, `local::qualify_header`,
//! `local::rewrite_from`): an aliases file, and a header whose bare names
//! are qualified and whose From is rewritten.
//!
//! Payload: `aliases file NUL header block`.
//!
//! Checks: parsing the file returns (warnings name lines of the file);
//! expanding every name and a few bare names returns (loops and depth are
//! errors, not hangs or stack overflows), each address at most once, and
//! no output is a name with an alias unless it names itself; qualifying
//! leaves no bare name in a field that parses, keeps every other field
//! byte for byte, and gives a header that reads back as itself; the From
//! rewrite keeps the header readable.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tlsend::address::Address;
use tlsend::aliases::Aliases;
use tlsend::local::{FromPolicy, FromRewrite, Qualification, qualify_header, rewrite_from};
use tlsend::message::{Header, parse_address_list};
use tlsend_fuzz::split_controls;

fn written(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    header.write_to(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let mut parts = payload.splitn(2, |&b| b == 0);
    let file = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let block = parts.next().unwrap_or_default();

    let (aliases, warnings) = Aliases::parse(&file, Path::new("aliases"));
    let lines = file.lines().count();
    for warning in &warnings {
        assert!((1..=lines).contains(&warning.line), "{warning}");
    }
    let mut names: Vec<String> = aliases.names().iter().map(|n| n.to_string()).collect();
    names.extend(["root", "postmaster", "a"].map(String::from));
    for name in &names {
        let Ok(address) = Address::from_parts(name, None) else {
            continue;
        };
        if let Ok(out) = aliases.expand(std::slice::from_ref(&address)) {
            let unique: HashSet<&Address> = out.iter().collect();
            assert_eq!(unique.len(), out.len(), "{out:?}");
            // Expanding the result again changes nothing: what is left
            // is addresses, names without an alias, and names in their
            // own lists (a `\name` is kept without looking it up, so a
            // file with one may expand further).
            if !file.contains('\\')
                && let Ok(again) = aliases.expand(&out)
            {
                assert_eq!(again, out);
            }
        }
    }

    let Ok(header) = Header::parse(block) else {
        return;
    };
    let qualification = Qualification::configured("example.org", "fuzz");
    let mut qualified = header.clone();
    if qualify_header(&mut qualified, &qualification).is_ok() {
        assert_eq!(qualified.fields().len(), header.fields().len());
        for (before, after) in header.fields().iter().zip(qualified.fields()) {
            assert!(before.is(after.name()));
            if before.raw() != after.raw() {
                let list = parse_address_list(&after.unfolded_value())
                    .expect("a qualified field still parses");
                assert!(list.iter().all(|a| a.domain().is_some()), "{list:?}");
            }
        }
        assert_eq!(Header::parse(&written(&qualified)).as_ref(), Ok(&qualified));
    }
    let from = Address::parse("alerts@example.com").expect("a valid address");
    let rewrite = match controls.first().map(|c| c % 3) {
        Some(0) => FromRewrite::On,
        Some(1) => FromRewrite::Off,
        _ => FromRewrite::Auto,
    };
    let policy = FromPolicy {
        rewrite,
        account_from: Some(&from),
        full_name: (controls.get(1).is_some_and(|c| c % 2 == 0)).then_some("Fuzz Name"),
        host_names: &["vm", "vm.example.org"],
    };
    let mut rewritten = header.clone();
    if rewrite_from(&mut rewritten, &policy).is_ok() {
        assert_eq!(rewritten.fields().len(), header.fields().len());
        assert_eq!(Header::parse(&written(&rewritten)).as_ref(), Ok(&rewritten));
    }
});
