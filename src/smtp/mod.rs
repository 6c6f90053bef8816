//! The SMTP client: reply and EHLO parsing, commands and their parameters,
//! DATA transparency, SASL, and the session that runs them over any stream
//! (`AsyncRead + AsyncWrite`) that someone else dialed.
//!
//! No DNS, no policy, no configuration: the caller says what to send, with
//! which TLS trust and in which mode; the session reports per step what
//! happened, in the shape of SMTP replies, so the caller can try another
//! host or report the failure.

pub mod auth;
pub mod command;
mod conn;
pub mod data;
pub mod ehlo;
pub mod error;
pub mod reply;
pub mod session;
pub mod transcript;

pub use auth::{AuthChoice, Credentials, Mechanism};
pub use command::{Content, Dsn, Envelope, Notify, Ret};
pub use conn::Timeouts;
pub(crate) use conn::deadline_after;
pub use ehlo::Capabilities;
pub use error::{Error, ErrorKind, Missing, Step, Violation};
pub use reply::Reply;
pub use session::{
    DataOutcome, Session, SessionConfig, StartTlsFailure, Transaction, VerdictPending,
};
pub use transcript::Transcript;
