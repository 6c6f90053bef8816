//! EHLO capabilities (`Capabilities::from_ehlo`) and their accessors.
//!
//! The payload is the server's reply bytes. When they do not parse as a
//! reply, each line is given a `250-`/`250 ` prefix instead, so that most
//! inputs reach `from_ehlo` rather than stopping in the reply parser (which
//! has its own target).
//!
//! Checks: the server name has no white space; every keyword kept is a valid
//! RFC 5321 ehlo-keyword, upper-cased, and found again by `has` and `params`
//! in any letter case; a line that is a keyword is never dropped; parameters
//! carry no outer white space; AUTH mechanisms are upper-case words; a SIZE
//! limit is never 0; a non-keyword is never reported as present.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::smtp::Capabilities;
use tlsend::smtp::reply::{self, Reply};
use tlsend_fuzz::split_controls;

fn as_ehlo_reply(payload: &[u8]) -> Option<Reply> {
    if let Ok(Some((reply, _))) = reply::parse(payload) {
        return Some(reply);
    }
    let lines: Vec<&[u8]> = payload
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let mut wire = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        wire.extend_from_slice(if i + 1 == lines.len() {
            b"250 "
        } else {
            b"250-"
        });
        wire.extend_from_slice(line);
        wire.extend_from_slice(b"\r\n");
    }
    // Still refused: too many or too long lines; the reply target covers those.
    reply::parse(&wire).ok().flatten().map(|(reply, _)| reply)
}

fn is_keyword(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let Some(reply) = as_ehlo_reply(payload) else {
        return;
    };
    let caps = Capabilities::from_ehlo(&reply);

    assert!(!caps.server_name().chars().any(char::is_whitespace));
    let keywords: Vec<&str> = caps.keywords().collect();
    assert!(keywords.len() < reply.lines().len().max(1));
    for keyword in &keywords {
        assert!(is_keyword(keyword), "{keyword:?}");
        assert_eq!(*keyword, keyword.to_ascii_uppercase());
        assert!(caps.has(keyword) && caps.has(&keyword.to_ascii_lowercase()));
        let params = caps.params(keyword).expect("advertised keyword");
        assert_eq!(params, params.trim(), "{keyword}");
    }
    // Every later line that starts with a keyword is kept (SUB8), in order.
    let expected: Vec<String> = reply.lines()[1..]
        .iter()
        .filter_map(|line| {
            let word = line.trim().split([' ', '\t']).next().unwrap_or_default();
            is_keyword(word).then(|| word.to_ascii_uppercase())
        })
        .collect();
    assert_eq!(keywords, expected);

    for name in [
        "STARTTLS",
        "REQUIRETLS",
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "DSN",
        "SIZE",
        "AUTH",
    ] {
        assert_eq!(caps.has(name), keywords.contains(&name), "{name}");
    }
    // Names that are not keywords can never be advertised.
    for name in ["", " ", "-X", "STARTTLS ", "AUTH=LOGIN"] {
        assert!(!caps.has(name), "{name:?}");
    }

    for mechanism in caps.auth_mechanisms() {
        assert!(!mechanism.is_empty());
        assert!(!mechanism.chars().any(char::is_whitespace));
        assert_eq!(mechanism, mechanism.to_ascii_uppercase());
    }
    if let Some(limit) = caps.size_limit() {
        assert!(limit > 0);
    }
    assert_eq!(caps, Capabilities::from_ehlo(&reply));
});
