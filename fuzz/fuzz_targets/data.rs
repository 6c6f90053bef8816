//! SMTP DATA transparency (`smtp::data::DataEncoder`): dot-stuffing and
//! CRLF line endings on the wire.
//!
//! Controls: the sizes of the chunks the body is encoded in (as the spool
//! reader hands them over; 0 is an empty chunk). Payload: the message.
//!
//! Checks: encoding in chunks gives the same bytes, or the same refusal, as
//! encoding the whole; a message is refused exactly when it holds a CR that
//! is not part of CRLF; the output has no bare CR or LF, ends the data with
//! the only "CRLF . CRLF" in it (no SMTP smuggling), and un-stuffed it gives
//! back the input with CRLF line endings (and a final CRLF).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsend::smtp::data::{BareCr, DataEncoder};
use tlsend_fuzz::{chunks, crlf_lines, split_controls};

fn encode(pieces: &[&[u8]]) -> Result<Vec<u8>, BareCr> {
    let mut out = Vec::new();
    let mut encoder = DataEncoder::new();
    for piece in pieces {
        encoder.encode(piece, &mut out)?;
    }
    encoder.finish(&mut out)?;
    Ok(out)
}

/// The server's side of RFC 5321 4.5.2: lines up to "." alone, with one
/// leading dot removed from the others. `None` if the data never ends or
/// bytes follow its end.
fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            return rest.is_empty().then_some(out);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let whole = encode(&[payload]);
    assert_eq!(
        whole,
        encode(&chunks(payload, controls)),
        "depends on chunking"
    );

    let Some(mut expected) = crlf_lines(payload) else {
        assert_eq!(whole, Err(BareCr), "a bare CR was let through");
        return;
    };
    let wire = whole.expect("a message without bare CR is encoded");
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    assert!(
        crlf_lines(&wire).is_some_and(|w| w == wire),
        "bare CR or LF on the wire"
    );
    assert_eq!(unstuff(&wire), Some(expected), "un-stuffed data differs");
});
