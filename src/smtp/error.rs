//! Why a session step failed, grouped by whose fault it is (as rustls groups
//! its errors): the network, the server's refusal, the server breaking the
//! protocol, TLS, a capability the message needs and the server lacks, or
//! our own message source. `exit.rs` maps each group to an enhanced status
//! code and an exit status in one place.

use std::fmt;
use std::io;
use std::time::Duration;

use super::reply::{Reply, ReplyError};
use crate::tls::TlsError;

/// The protocol step that failed, for messages ("smtp.example.org: STARTTLS: …").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Connect,
    TlsHandshake,
    Greeting,
    Ehlo,
    StartTls,
    EhloAfterTls,
    Auth,
    /// RSET between two transactions on one session.
    Reset,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    Quit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::TlsHandshake => "TLS handshake",
            Step::Greeting => "greeting",
            Step::Ehlo => "EHLO",
            Step::StartTls => "STARTTLS",
            Step::EhloAfterTls => "EHLO after TLS",
            Step::Auth => "AUTH",
            Step::Reset => "RSET",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::EndOfData => "end of data",
            Step::Quit => "QUIT",
        })
    }
}

/// Something the message or the user's settings need that the server does
/// not offer. Decided by tlsend before anything of the message is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No STARTTLS in the EHLO reply (perhaps stripped by a middlebox).
    StartTls,
    /// Require mode on a session without TLS that authenticated the server.
    VerifiedTls,
    /// No REQUIRETLS in the EHLO reply after TLS (RFC 8689 4.2.1 step 5).
    RequireTls,
    /// 8-bit content and no 8BITMIME (IN8).
    EightBitMime,
    /// UTF-8 header or address and no SMTPUTF8 (IN8).
    SmtpUtf8,
    /// Credentials are configured and the server offers no AUTH.
    Auth,
    /// The server offers AUTH, but not a mechanism the user allows.
    AuthMechanism {
        wanted: String,
        offered: Vec<String>,
    },
    /// The message is larger than the server's SIZE limit (RFC 1870).
    Size { limit: u64, size: u64 },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::StartTls => write!(
                f,
                "the server does not offer STARTTLS (if it normally does, something on the path \
                 may be stripping it)"
            ),
            Missing::VerifiedTls => write!(f, "the session is not protected by verified TLS"),
            Missing::RequireTls => {
                write!(
                    f,
                    "the server does not advertise REQUIRETLS in its EHLO reply after TLS"
                )
            }
            Missing::EightBitMime => write!(
                f,
                "the message has 8-bit content and the server does not offer 8BITMIME; \
                 encode the message as 7-bit MIME (quoted-printable or base64)"
            ),
            Missing::SmtpUtf8 => write!(
                f,
                "the message has UTF-8 in its header or addresses and the server does not offer \
                 SMTPUTF8; use RFC 2047 encoded words in the header and ASCII addresses"
            ),
            Missing::Auth => write!(
                f,
                "credentials are configured but the server offers no AUTH"
            ),
            Missing::AuthMechanism { wanted, offered } => write!(
                f,
                "the server offers AUTH {} but not {wanted}",
                offered.join(" ")
            ),
            Missing::Size { limit, size } => write!(
                f,
                "the message is {size} octets and the server accepts at most {limit}"
            ),
        }
    }
}

/// The server broke the protocol.
#[derive(Debug)]
pub enum Violation {
    /// Bytes that are not a well-formed reply.
    Garbled(ReplyError),
    /// Bytes arrived after the 220 to STARTTLS and before the handshake:
    /// a command-injection attack (CVE-2011-0411 class, SUB7).
    BytesAfterStartTls(usize),
    /// A well-formed reply of a class that makes no sense at this step
    /// (a 250 to DATA, a 354 to RCPT, a 3xx greeting).
    Unexpected {
        reply: Reply,
        expected: &'static str,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Garbled(e) => write!(f, "the server sent a {e}"),
            Violation::BytesAfterStartTls(n) => write!(
                f,
                "the server sent {n} bytes after its 220 reply to STARTTLS, before the TLS \
                 handshake; these could be injected replies (CVE-2011-0411), so the session was \
                 aborted"
            ),
            Violation::Unexpected { reply, expected } => {
                write!(f, "expected {expected}, the server replied \"{reply}\"")
            }
        }
    }
}

/// What went wrong.
#[derive(Debug)]
pub enum ErrorKind {
    /// The connection failed (reset, refused, unreachable).
    Io(io::Error),
    /// The server did not answer within the step's time limit (FAIL6).
    Timeout(Duration),
    /// The server closed the connection.
    Closed,
    /// The server refused with a 4xx or 5xx reply.
    Reply(Reply),
    Protocol(Violation),
    Tls(TlsError),
    Missing(Missing),
    /// Reading the message to send failed on our side.
    Message(io::Error),
    /// tlsend is stopping (a signal): the session ended before MAIL FROM.
    Stopped,
}

/// A failed step of a session.
#[derive(Debug)]
pub struct Error {
    pub step: Step,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(step: Step, kind: ErrorKind) -> Error {
        Error { step, kind }
    }

    /// True when the dialogue is still in step, so QUIT can be sent
    /// politely (RFC 8689 4.2.1 asks for QUIT before the next host). After a
    /// protocol violation, a timeout, a dead connection or a broken data
    /// stream nothing more is said.
    pub fn dialogue_in_sync(&self) -> bool {
        match self.kind {
            ErrorKind::Reply(_) | ErrorKind::Missing(_) => true,
            // The message could not be opened: nothing of it was sent.
            ErrorKind::Message(_) => self.step == Step::Mail,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.step)?;
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{e}"),
            // A tarpit trickles bytes to stay inside a per-read limit; the
            // limit is on the whole reply, so say so.
            ErrorKind::Timeout(d) if self.step == Step::Connect => {
                write!(f, "no connection within {} s", d.as_secs_f64())
            }
            ErrorKind::Timeout(d) => {
                write!(f, "no complete reply within {} s", d.as_secs_f64())
            }
            ErrorKind::Closed => write!(f, "the server closed the connection"),
            ErrorKind::Reply(r) => write!(f, "the server replied \"{r}\""),
            ErrorKind::Protocol(v) => write!(f, "{v}"),
            ErrorKind::Tls(e) => write!(f, "{e}"),
            ErrorKind::Missing(m) => write!(f, "{m}"),
            ErrorKind::Message(e) => write!(f, "reading the message failed: {e}"),
            ErrorKind::Stopped => write!(f, "tlsend was stopped before the transaction began"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) | ErrorKind::Message(e) => Some(e),
            ErrorKind::Tls(e) => Some(e),
            _ => None,
        }
    }
}
