//! The message: reading it from standard input into a re-readable spool,
//! checking it, scanning and editing its header, extracting addresses, and
//! composing the fields tlsend adds. It decides no policy and knows no SMTP:
//! dot-stuffing and CRLF on the wire belong to `smtp::data`.

mod addrlist;
pub mod compose;
mod header;
mod input;
mod spool;

use std::io::{self, Cursor};

use tokio::io::{AsyncRead, AsyncReadExt};

pub use addrlist::{AddressListError, Located, parse as parse_address_list, parse_located};
pub use header::{Field, Header, HeaderError};
pub use input::{Input, InputOptions, MAX_LINE, Problem, read};
pub use spool::SpoolReader;

/// The message as it will be sent, before SMTP transparency: the header
/// fields (CRLF), one empty line, then the body exactly as stored.
pub fn message_reader(
    header: &Header,
    input: &Input,
) -> io::Result<impl AsyncRead + Unpin + Send + 'static> {
    let mut head = Vec::with_capacity(header.len() + 2);
    header.write_to(&mut head);
    head.extend_from_slice(b"\r\n");
    Ok(Cursor::new(head).chain(input.body_reader()?))
}
