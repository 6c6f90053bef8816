//! Helpers shared by the fuzz targets.
//!
//! Every target reads its input as a short control prefix followed by the
//! payload (the bytes the parser under test sees):
//!
//! ```text
//! [n] [n control bytes] [payload ...]      n = first byte % 16
//! ```
//!
//! The control bytes choose what the payload alone cannot: where a stream is
//! split into reads, and options such as `dot_ends_input`. Keeping them in
//! front of a plain payload means a seed is readable (`\0` followed by a
//! real EHLO reply is a valid seed that reads it in one piece), and the
//! fuzzer can mutate split points independently of the text.

use std::io::{self, Read};

/// Splits fuzz input into its control bytes and the payload.
pub fn split_controls(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    let n = usize::from(n % 16).min(rest.len());
    rest.split_at(n)
}

/// Chunk length chosen by one control byte: 0 to 127 octets for the
/// boundaries that matter (CR|LF, "." at a line start, mid-line), and
/// 512-octet steps up to 64 KiB so that a large input does not take
/// millions of tiny reads.
pub fn chunk_len(control: u8) -> usize {
    match control {
        0..=127 => usize::from(control),
        _ => usize::from(control - 127) * 512,
    }
}

/// The payload cut into consecutive pieces whose lengths cycle through
/// `controls`; one piece when there are no controls. Pieces may be empty
/// (a read that returned nothing new, an empty `encode` call). The pieces
/// always concatenate to the payload.
pub fn chunks<'a>(payload: &'a [u8], controls: &[u8]) -> Vec<&'a [u8]> {
    if controls.is_empty() || controls.iter().all(|&c| chunk_len(c) == 0) {
        return vec![payload];
    }
    let mut out = Vec::new();
    let mut rest = payload;
    for &control in controls.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(chunk_len(control).min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

/// A reader that returns the payload in the pieces [`chunks`] chooses, and
/// `Interrupted` where a piece is empty (a signal arrived), as a pipe from
/// cron or PHP may. Never returns 0 before the end, since that means EOF.
pub struct ChunkedReader<'a> {
    pieces: std::vec::IntoIter<&'a [u8]>,
    current: &'a [u8],
}

impl<'a> ChunkedReader<'a> {
    pub fn new(payload: &'a [u8], controls: &[u8]) -> ChunkedReader<'a> {
        ChunkedReader {
            pieces: chunks(payload, controls).into_iter(),
            current: &[],
        }
    }
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.pieces.next() {
                None => return Ok(0),
                Some([]) => return Err(io::ErrorKind::Interrupted.into()),
                Some(piece) => self.current = piece,
            }
        }
        let n = self.current.len().min(buf.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = &self.current[n..];
        Ok(n)
    }
}

/// Replaces a byte string's CRLF and lone LF line endings by CRLF.
/// Returns `None` when it holds a CR that is not part of CRLF.
pub fn crlf_lines(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 16);
    let mut i = 0;
    while i < input.len() {
        match (input[i], input.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            (b'\r', _) => return None,
            (b'\n', _) => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_payload() {
        let payload: Vec<u8> = (0..=255).cycle().take(5000).collect();
        for controls in [&[][..], &[0], &[1], &[0, 3, 200], &[128, 7]] {
            assert_eq!(chunks(&payload, controls).concat(), payload);
            let mut read = Vec::new();
            let mut reader = ChunkedReader::new(&payload, controls);
            loop {
                let mut buf = [0u8; 100];
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => read.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(read, payload);
        }
    }
}
