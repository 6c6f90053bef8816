//! MTA-STS parsers: the policy file (`mtasts::Policy::parse`), MX matching
//! on a parsed policy (`Policy::matches`), and the `_mta-sts` TXT record
//! (`mtasts::record::parse_txt`).
//!
//! Payload: the policy body as fetched. The same bytes, split at LF, are
//! also the TXT answer (one record per line) and the host names matched.
//!
//! Checks: nothing panics; a policy has mx patterns unless its mode is
//! `none`, and a `max_age` of at most 31557600; its text (`Display`) parses
//! back to the same policy; each pattern matches the host it names (in any
//! letter case, with a trailing dot) and, for a wildcard, exactly one more
//! label and never the bare domain; an id from a TXT answer is 1 to 32
//! letters and digits, from a line starting `v=STSv1`; error texts
//! carry no control characters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::mtasts::policy::MAX_MAX_AGE;
use tlsend::mtasts::record::{self, RecordError};
use tlsend::mtasts::{Policy, PolicyMode};
use tlsend_fuzz::split_controls;

fn no_controls(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check_policy(policy: &Policy, hosts: &[&[u8]]) {
    assert!(policy.max_age <= MAX_MAX_AGE);
    assert!(policy.mode == PolicyMode::None || !policy.mx.is_empty());
    let text = policy.to_string();
    assert_eq!(
        Policy::parse(text.as_bytes()).as_ref(),
        Ok(policy),
        "{text:?}"
    );
    for pattern in &policy.mx {
        let written = pattern.to_string();
        let name = written.strip_prefix("*.").unwrap_or(&written);
        assert!(!name.is_empty() && name.is_ascii(), "{written:?}");
        let upper = name.to_ascii_uppercase();
        let dotted = format!("{name}.");
        if pattern.is_wildcard() {
            assert!(!pattern.matches(name), "{written} matches {name}");
            for host in [
                format!("x.{name}"),
                format!("X.{upper}."),
                format!("mx-1.{name}"),
            ] {
                assert!(pattern.matches(&host), "{written} must match {host}");
                assert!(policy.matches(&host));
            }
            assert!(!pattern.matches(&format!("a.b.{name}")), "{written}");
            assert!(!pattern.matches(&format!(".{name}")), "{written}");
        } else {
            for host in [name, upper.as_str(), dotted.as_str()] {
                assert!(pattern.matches(host), "{written} must match {host}");
                assert!(policy.matches(host));
            }
            assert!(!pattern.matches(&format!("x.{name}")), "{written}");
        }
    }
    for host in hosts {
        let host = String::from_utf8_lossy(host);
        let _ = policy.matches(&host);
    }
}

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let lines: Vec<&[u8]> = payload
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();

    match Policy::parse(payload) {
        Ok(policy) => check_policy(&policy, &lines),
        Err(e) => assert!(no_controls(&e.to_string()), "{e}"),
    }

    let sts_lines = lines.iter().filter(|l| l.starts_with(b"v=STSv1")).count();
    match record::parse_txt(&lines) {
        Ok(id) => {
            assert!((1..=record::MAX_ID_LEN).contains(&id.len()), "{id:?}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
            assert!(sts_lines >= 1, "a record begins with v=STSv1");
        }
        Err(RecordError::NoStsRecord) => {}
        Err(RecordError::Several(n)) => assert!(n >= 2 && n <= sts_lines, "{n} of {sts_lines}"),
        Err(e @ RecordError::Syntax(_)) => {
            assert!(sts_lines >= 1);
            assert!(no_controls(&e.to_string()), "{e}");
        }
    }
});
