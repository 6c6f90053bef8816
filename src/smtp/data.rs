//! SMTP DATA transparency (RFC 5321 4.5.2): every line ends in CRLF, a line
//! that starts with "." gets one more, and the data ends with ".\r\n".
//!
//! The encoder streams: it is fed chunks of any size and keeps only whether
//! it stands at the start of a line, so memory does not grow with the
//! message (IN10). Input lines may end in LF or CRLF (IN1). A CR that is not
//! part of CRLF is refused rather than passed on: the input module rejects
//! such messages already, and this second check keeps a bare CR from ever
//! reaching the wire, where it is the raw material of SMTP smuggling.

/// A CR not followed by LF was found in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BareCr;

impl std::fmt::Display for BareCr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the message contains a CR that is not followed by LF")
    }
}

impl std::error::Error for BareCr {}

/// Streaming DATA encoder.
#[derive(Debug)]
pub struct DataEncoder {
    at_line_start: bool,
    pending_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        DataEncoder::new()
    }
}

impl DataEncoder {
    pub fn new() -> DataEncoder {
        DataEncoder {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Appends the wire form of `input` to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BareCr> {
        out.reserve(input.len() + input.len() / 32 + 2);
        let mut rest = input;
        while !rest.is_empty() {
            if self.pending_cr {
                // The previous chunk ended in CR: only LF may follow.
                if rest[0] != b'\n' {
                    return Err(BareCr);
                }
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                rest = &rest[1..];
                continue;
            }
            if self.at_line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    out.extend_from_slice(rest);
                    self.at_line_start = false;
                    return Ok(());
                }
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    if rest[i] == b'\r' {
                        match rest.get(i + 1) {
                            Some(b'\n') => rest = &rest[i + 2..],
                            Some(_) => return Err(BareCr),
                            None => {
                                self.pending_cr = true;
                                self.at_line_start = false;
                                return Ok(());
                            }
                        }
                    } else {
                        rest = &rest[i + 1..];
                    }
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
            }
        }
        Ok(())
    }

    /// Ends the data: terminates an unterminated last line, then ".\r\n".
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), BareCr> {
        if self.pending_cr {
            return Err(BareCr);
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        Ok(())
    }
}

/// Encodes a whole message at once (tests and small inputs).
pub fn encode_all(input: &[u8]) -> Result<Vec<u8>, BareCr> {
    let mut out = Vec::new();
    let mut encoder = DataEncoder::new();
    encoder.encode(input, &mut out)?;
    encoder.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // covers: IN1
    #[test]
    fn in1_line_endings_become_crlf_and_dots_are_stuffed() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a\n", b"a\r\n.\r\n"),
            (b"a\r\nb\n", b"a\r\nb\r\n.\r\n"),
            (b"no newline", b"no newline\r\n.\r\n"),
            (b".\n", b"..\r\n.\r\n"),
            (b"..x\n.\r\n", b"...x\r\n..\r\n.\r\n"),
            (b"a.\n .b\n", b"a.\r\n .b\r\n.\r\n"),
            (b"\n\n", b"\r\n\r\n.\r\n"),
            // SMTP smuggling shapes: "\n.\n" can never end the data early.
            (
                b"x\n.\nMAIL FROM:<e@vil>\n",
                b"x\r\n..\r\nMAIL FROM:<e@vil>\r\n.\r\n",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                encode_all(input).unwrap(),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let input: &[u8] = b".a\r\n..b\nc\r\n.\r\n\r\nend";
        let whole = encode_all(input).unwrap();
        for split in 0..=input.len() {
            let mut out = Vec::new();
            let mut e = DataEncoder::new();
            e.encode(&input[..split], &mut out).unwrap();
            e.encode(&input[split..], &mut out).unwrap();
            e.finish(&mut out).unwrap();
            assert_eq!(out, whole, "split at {split}");
        }
        // Byte by byte too.
        let mut out = Vec::new();
        let mut e = DataEncoder::new();
        for b in input {
            e.encode(std::slice::from_ref(b), &mut out).unwrap();
        }
        e.finish(&mut out).unwrap();
        assert_eq!(out, whole);
    }

    #[test]
    fn bare_cr_is_refused_anywhere() {
        for input in [&b"a\rb\n"[..], b"a\r", b"\r.\r\n", b"x\r\r\n"] {
            assert_eq!(
                encode_all(input),
                Err(BareCr),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Split between CR and a non-LF byte.
        let mut out = Vec::new();
        let mut e = DataEncoder::new();
        e.encode(b"a\r", &mut out).unwrap();
        assert_eq!(e.encode(b"b", &mut out), Err(BareCr));
    }

    #[test]
    fn output_never_holds_a_bare_lf_or_cr() {
        let out = encode_all(b"a\nb\r\n\nc\n.\n..\n").unwrap();
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(out[i - 1], b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Undoes SMTP transparency as a server does: strips the final
        /// ".\r\n" and one leading dot from every line.
        fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
            let body = wire.strip_suffix(b".\r\n")?;
            let mut out = Vec::new();
            for line in body.split_inclusive(|&b| b == b'\n') {
                out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            }
            Some(out)
        }

        /// The input with every line ending made CRLF and a final one added.
        fn crlf(input: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for line in input.split_inclusive(|&b| b == b'\n') {
                let text = line.strip_suffix(b"\n").unwrap_or(line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            out
        }

        fn message() -> impl Strategy<Value = Vec<u8>> {
            // Lines of dots, letters and both line endings, no bare CR.
            proptest::collection::vec(
                prop_oneof![
                    Just(b"\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                    Just(b".".to_vec()),
                    Just(b"..".to_vec()),
                    Just(b"a".to_vec()),
                    Just(b" ".to_vec()),
                ],
                0..64,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            // covers: HARD2, IN1
            #[test]
            fn hard2_stuffing_round_trips_to_crlf_lines(input in message(), cut in 0usize..64) {
                let cut = cut.min(input.len());
                let mut wire = Vec::new();
                let mut encoder = DataEncoder::new();
                encoder.encode(&input[..cut], &mut wire).unwrap();
                encoder.encode(&input[cut..], &mut wire).unwrap();
                encoder.finish(&mut wire).unwrap();
                prop_assert_eq!(&wire, &encode_all(&input).unwrap());
                // No line of the data is the lone dot that would end it early.
                let body = &wire[..wire.len() - 3];
                prop_assert!(!body.split(|&b| b == b'\n').any(|l| l == b".\r"));
                prop_assert_eq!(unstuff(&wire), Some(crlf(&input)));
            }
        }
    }
}
