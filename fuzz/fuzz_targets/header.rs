//! The header block (`message::Header`): parse, lookup, removal, append,
//! recipients and writing back.
//!
//! Payload: `block [NUL name NUL value]`: the header block as read from the
//! message, then a field to append (tlsend appends TLS-Required, Date,
//! Message-ID and From; names and values can come from the command line and
//! the environment).
//!
//! Checks: a parsed block is written back byte for byte with CRLF line
//! endings and reads back the same; lookup and removal agree on which fields
//! have a name and keep the others in order; `append` either refuses and
//! leaves the header alone, or adds exactly one line, `name: value` CRLF,
//! with no other CR or LF, that reads back as one field (no header
//! injection); `recipients` terminates and gives addresses that re-parse.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::address::Address;
use tlsend::message::{Header, HeaderError};
use tlsend_fuzz::split_controls;

/// The block with each line's LF or CRLF ending made CRLF, as `write_to`
/// must give it back.
fn crlf_block(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
    if lines.last() == Some(&&b""[..]) {
        lines.pop(); // after the final LF
    }
    for line in lines {
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn written(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    header.write_to(&mut out);
    assert_eq!(out.len(), header.len());
    out
}

fn check_lookup(header: &Header, name: &str) {
    let matching: Vec<_> = header.fields().iter().filter(|f| f.is(name)).collect();
    assert_eq!(header.all(name).collect::<Vec<_>>(), matching);
    assert_eq!(header.contains(name), !matching.is_empty());
    let mut edited = header.clone();
    assert_eq!(edited.remove_all(name), matching.len());
    assert!(!edited.contains(name));
    let kept: Vec<_> = header.fields().iter().filter(|f| !f.is(name)).collect();
    assert_eq!(edited.fields().iter().collect::<Vec<_>>(), kept);
}

fn check_append(header: &Header, name: &str, value: &str) {
    let mut edited = header.clone();
    match edited.append(name, value) {
        Err(e) => {
            assert!(matches!(
                e,
                HeaderError::BadName(_) | HeaderError::BadValue { .. }
            ));
            assert_eq!(&edited, header, "a refused append changed the header");
        }
        Ok(()) => {
            assert_eq!(edited.fields()[..header.fields().len()], *header.fields());
            assert_eq!(edited.fields().len(), header.fields().len() + 1);
            let field = edited.fields().last().unwrap();
            assert_eq!(field.raw(), format!("{name}: {value}\r\n").as_bytes());
            let body = &field.raw()[..field.raw().len() - 2];
            assert!(
                !body.iter().any(|&b| b == b'\r' || b == b'\n'),
                "line break inside an appended field: {:?}",
                field.raw()
            );
            assert!(body.len() <= 998, "appended line of {} octets", body.len());
            assert!(field.is(name));
            // The appended field reads back as exactly one field.
            assert_eq!(Header::parse(&written(&edited)).as_ref(), Ok(&edited));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (_, payload) = split_controls(data);
    let mut parts = payload.splitn(3, |&b| b == 0);
    let block = parts.next().unwrap_or_default();
    let name = String::from_utf8_lossy(parts.next().unwrap_or(b"X-Fuzz"));
    let value = String::from_utf8_lossy(parts.next().unwrap_or_default());

    let header = match Header::parse(block) {
        Ok(header) => header,
        Err(e) => {
            let lines = block.split(|&b| b == b'\n').count();
            match e {
                HeaderError::Malformed { line } => assert!((1..=lines).contains(&line)),
                other => panic!("parse gave {other:?}"),
            }
            // The empty header still takes appends.
            check_append(&Header::default(), &name, &value);
            return;
        }
    };

    let out = written(&header);
    assert_eq!(out, crlf_block(block), "not written back as read");
    assert_eq!(Header::parse(&out).as_ref(), Ok(&header));
    for field in header.fields() {
        assert!(field.raw().ends_with(b"\r\n"));
        assert!(!field.name().is_empty() && field.is(field.name()));
        assert!(!field.unfolded_value().contains("\r\n"));
        let _ = field.raw_value();
    }

    let mut names: Vec<String> = ["To", "Cc", "Bcc", "TLS-Required", "tls-required"]
        .map(String::from)
        .to_vec();
    names.push(name.to_string());
    names.extend(header.fields().iter().take(8).map(|f| f.name().to_string()));
    for n in &names {
        check_lookup(&header, n);
    }
    check_append(&header, &name, &value);
    check_append(&header, "TLS-Required", &value);

    match header.recipients() {
        Ok(addresses) => {
            for address in addresses {
                assert_eq!(Address::parse(&address.to_string()).as_ref(), Ok(&address));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
