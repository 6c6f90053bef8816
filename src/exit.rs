//! Exit statuses (sysexits.h, FAIL2), the enhanced status code of every
//! failure (FAIL1), and the stderr line format. This is the only place where
//! either is chosen: the layers below report what happened, this module
//! decides what it means for the user and the caller.

use std::fmt;

use crate::policy::Mode;
use crate::smtp::{self, ErrorKind, Missing, Step, Violation};
use crate::status::{EnhancedCode, codes};
use crate::tls::TlsError;

/// sysexits.h codes, as sendmail and Postfix use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sysexit {
    Ok = 0,
    /// Command-line usage error.
    Usage = 64,
    /// Malformed input message.
    DataErr = 65,
    /// A recipient was refused (5.1.x).
    NoUser = 67,
    /// The recipient's domain is unknown or has a null MX.
    NoHost = 68,
    /// Permanent refusal, including 5.7.30 and 5.7.10.
    Unavailable = 69,
    /// Internal software error.
    Software = 70,
    /// Local I/O error.
    IoErr = 74,
    /// Temporary failure: 4xx, connect or DNS failure, timeout.
    TempFail = 75,
    /// The server violated the protocol.
    Protocol = 76,
    /// Authentication failed.
    NoPerm = 77,
    /// Configuration error.
    Config = 78,
}

impl Sysexit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// How a failed delivery is reported: the status code, whether retrying
/// could help, and the exit status it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    pub status: EnhancedCode,
    pub exit: Sysexit,
}

impl Classified {
    pub fn is_temporary(&self) -> bool {
        self.exit == Sysexit::TempFail
    }
}

/// The RFC 3463 / RFC 8689 name of the codes tlsend assigns itself, shown
/// after the code ("5.7.30 REQUIRETLS support required").
pub fn status_name(status: EnhancedCode) -> Option<&'static str> {
    let name = match (status.subject, status.detail) {
        (7, 30) => "REQUIRETLS support required",
        (7, 10) => "Encryption needed",
        (6, 3) => "Conversion required but not supported",
        (6, 7) => "Non-ASCII addresses not permitted",
        (4, 1) => "No answer from host",
        (4, 2) => "Bad connection",
        (3, 4) => "Message too big for system",
        (5, 0) => "Protocol error",
        (3, 5) => "System incorrectly configured",
        _ => return None,
    };
    Some(name)
}

/// Classifies a failed session step. `mode` matters for TLS: in require
/// mode every failure to establish verified TLS is 5.7.10 (RFC 8689 4.2.1),
/// even a 454 reply to STARTTLS, because the sender asked for nothing less.
pub fn classify(error: &smtp::Error, mode: Mode) -> Classified {
    use Sysexit::*;
    let tls_step = matches!(error.step, Step::StartTls | Step::TlsHandshake);
    let (status, exit) = match &error.kind {
        ErrorKind::Io(_) | ErrorKind::Closed => (codes::BAD_CONNECTION, TempFail),
        ErrorKind::Timeout(_) => (codes::NO_ANSWER, TempFail),
        ErrorKind::Tls(TlsError::Io(_)) => (codes::BAD_CONNECTION, TempFail),
        ErrorKind::Tls(TlsError::Timeout(_)) => (codes::NO_ANSWER, TempFail),
        ErrorKind::Tls(TlsError::Setup(_)) => (codes::MISCONFIGURED, Config),
        ErrorKind::Tls(TlsError::Handshake { .. } | TlsError::ServerName(_)) => {
            (codes::ENCRYPTION_NEEDED, Unavailable)
        }
        // The STARTTLS injection attack: TLS could not be established.
        ErrorKind::Protocol(Violation::BytesAfterStartTls(_)) => {
            (codes::ENCRYPTION_NEEDED, Unavailable)
        }
        ErrorKind::Reply(_) if tls_step && mode == Mode::Require => {
            (codes::ENCRYPTION_NEEDED, Unavailable)
        }
        ErrorKind::Protocol(_) => (codes::PROTOCOL_ERROR, Protocol),
        ErrorKind::Missing(missing) => match missing {
            Missing::StartTls | Missing::VerifiedTls => (codes::ENCRYPTION_NEEDED, Unavailable),
            Missing::RequireTls => (codes::REQUIRETLS_NEEDED, Unavailable),
            Missing::EightBitMime => (codes::CONVERSION_NOT_SUPPORTED, DataErr),
            Missing::SmtpUtf8 => (codes::SMTPUTF8_NEEDED, DataErr),
            Missing::Auth | Missing::AuthMechanism { .. } => (EnhancedCode::new(5, 7, 0), NoPerm),
            Missing::Size { .. } => (EnhancedCode::new(5, 3, 4), Unavailable),
        },
        ErrorKind::Message(_) => (EnhancedCode::new(4, 3, 0), IoErr),
        ErrorKind::Stopped => (codes::STOPPED, TempFail),
        ErrorKind::Reply(reply) => {
            let status = reply.enhanced().unwrap_or_else(|| {
                let class = if reply.is_permanent() { 5 } else { 4 };
                EnhancedCode::new(class, 0, 0)
            });
            let exit = if reply.is_transient() {
                TempFail
            } else if error.step == Step::Auth || matches!(reply.code(), 530 | 535 | 538) {
                NoPerm
            } else if error.step == Step::Rcpt && status.subject == 1 {
                NoUser
            } else {
                Unavailable
            };
            (status, exit)
        }
    };
    Classified { status, exit }
}

/// The exit status for a run that produced these per-recipient results:
/// 0 when every recipient got the message; otherwise the first permanent
/// failure's status, else temporary (75). One function decides, after all
/// recipients are known (ripgrep's single final status).
pub fn for_outcomes<'a>(results: impl IntoIterator<Item = Option<&'a Classified>>) -> Sysexit {
    let mut temporary = false;
    for classified in results.into_iter().flatten() {
        if classified.is_temporary() {
            temporary = true;
        } else {
            return classified.exit;
        }
    }
    if temporary {
        Sysexit::TempFail
    } else {
        Sysexit::Ok
    }
}

/// One stderr line: `tlsend: <text>`, as sendmail-style tools print.
pub struct Line<'a>(pub &'a dyn fmt::Display);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tlsend: {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::Error;
    use std::time::Duration;

    fn reply(step: Step, text: &str) -> Error {
        let (r, _) = smtp::reply::parse(text.as_bytes()).unwrap().unwrap();
        Error::new(step, ErrorKind::Reply(r))
    }

    fn handshake_error() -> Error {
        let kind = ErrorKind::Tls(TlsError::Handshake {
            error: rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            trust: "test".into(),
        });
        Error::new(Step::TlsHandshake, kind)
    }

    // covers: FAIL1, FAIL2
    #[test]
    fn fail1_fail2_each_failure_gets_its_status_and_exit() {
        use Sysexit::*;
        #[rustfmt::skip]
        let cases: Vec<(&str, Error, Mode, &str, Sysexit)> = vec![
            ("FAIL1 no REQUIRETLS", Error::new(Step::Mail, ErrorKind::Missing(Missing::RequireTls)), Mode::Require, "5.7.30", Unavailable),
            ("FAIL1 no STARTTLS", Error::new(Step::StartTls, ErrorKind::Missing(Missing::StartTls)), Mode::Require, "5.7.10", Unavailable),
            ("FAIL1 certificate", handshake_error(), Mode::Require, "5.7.10", Unavailable),
            ("FAIL1 certificate, default mode", handshake_error(), Mode::Default, "5.7.10", Unavailable),
            ("FAIL1 454 in require mode", reply(Step::StartTls, "454 4.7.0 TLS not available\r\n"), Mode::Require, "5.7.10", Unavailable),
            ("FAIL2 454 otherwise", reply(Step::StartTls, "454 4.7.0 TLS not available\r\n"), Mode::Default, "4.7.0", TempFail),
            ("FAIL1 injection", Error::new(Step::StartTls, ErrorKind::Protocol(Violation::BytesAfterStartTls(9))), Mode::Default, "5.7.10", Unavailable),
            ("FAIL2 4xx", reply(Step::Mail, "451 4.3.0 later\r\n"), Mode::Require, "4.3.0", TempFail),
            ("FAIL2 5xx", reply(Step::EndOfData, "554 5.6.0 content\r\n"), Mode::Default, "5.6.0", Unavailable),
            ("FAIL2 5.1.x at RCPT", reply(Step::Rcpt, "550 5.1.1 unknown\r\n"), Mode::Default, "5.1.1", NoUser),
            ("FAIL2 no enhanced code", reply(Step::Data, "554 no\r\n"), Mode::Default, "5.0.0", Unavailable),
            ("FAIL2 auth", reply(Step::Auth, "535 5.7.8 bad credentials\r\n"), Mode::Default, "5.7.8", NoPerm),
            ("FAIL2 auth required", reply(Step::Mail, "530 5.7.0 authentication required\r\n"), Mode::Default, "5.7.0", NoPerm),
            ("FAIL2 timeout", Error::new(Step::Greeting, ErrorKind::Timeout(Duration::from_secs(1))), Mode::Require, "4.4.1", TempFail),
            ("FAIL2 closed", Error::new(Step::Mail, ErrorKind::Closed), Mode::Default, "4.4.2", TempFail),
            ("FAIL2 garbled", Error::new(Step::Ehlo, ErrorKind::Protocol(Violation::Garbled(smtp::reply::ReplyError::LineTooLong))), Mode::Default, "5.5.0", Protocol),
            ("IN8 8BITMIME", Error::new(Step::Mail, ErrorKind::Missing(Missing::EightBitMime)), Mode::Default, "5.6.3", DataErr),
            ("IN8 SMTPUTF8", Error::new(Step::Mail, ErrorKind::Missing(Missing::SmtpUtf8)), Mode::Default, "5.6.7", DataErr),
        ];
        for (id, error, mode, status, exit) in cases {
            let c = classify(&error, mode);
            assert_eq!(
                (c.status.to_string().as_str(), c.exit),
                (status, exit),
                "{id}"
            );
        }
    }

    #[test]
    fn final_status_prefers_a_permanent_failure() {
        let temp = Classified {
            status: codes::BAD_CONNECTION,
            exit: Sysexit::TempFail,
        };
        let perm = Classified {
            status: codes::REQUIRETLS_NEEDED,
            exit: Sysexit::Unavailable,
        };
        assert_eq!(for_outcomes([None, None]), Sysexit::Ok);
        assert_eq!(for_outcomes([None, Some(&temp)]), Sysexit::TempFail);
        assert_eq!(
            for_outcomes([Some(&temp), Some(&perm)]),
            Sysexit::Unavailable
        );
    }
}
