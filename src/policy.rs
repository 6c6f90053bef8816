//! The TLS mode of a message and the reason that chose it (POL1-POL6).
//!
//! Three modes exist (RFC 8689): **require** sends REQUIRETLS on MAIL FROM,
//! **optional** carries `TLS-Required: No` in the header, and **default** does
//! neither. Precedence, highest first: a command-line flag, the configuration,
//! a `TLS-Required: No` field already in the message, the built-in default.
//! A TLS-Required field that is not exactly "No", or more than one such field,
//! is refused whatever the mode, so that a sender who wrote
//! "TLS-Required: Yes" never believes TLS was required when it was not.
//!
//! Pure: no I/O. The caller applies the [`HeaderEdit`] it is given.

use std::fmt;

/// The TLS mode of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// REQUIRETLS: verified TLS on every hop, or the message is not sent.
    Require,
    /// `TLS-Required: No`: recipient TLS policies are to be ignored.
    Optional,
    /// Neither: opportunistic STARTTLS, recipient policies honoured.
    Default,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Require => "require",
            Mode::Optional => "optional",
            Mode::Default => "default",
        })
    }
}

/// A mode asked for by someone, with words that say who asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested {
    pub mode: Mode,
    /// For example `--require-tls`, `-O requiretls=no` or `account "work"`.
    pub source: String,
}

/// Why the mode is what it is; shown by `-v` (and later `--explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Flag(String),
    Config(String),
    Header,
    Default,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Flag(flag) => write!(f, "command-line flag {flag}"),
            Reason::Config(source) => write!(f, "configuration: {source}"),
            Reason::Header => write!(f, "the message has a \"TLS-Required: No\" header field"),
            Reason::Default => write!(f, "no flag, configuration or header field chose a mode"),
        }
    }
}

/// What must happen to TLS-Required fields before the message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Nothing to change.
    Keep,
    /// Require mode: the REQUIRETLS parameter wins over the header field
    /// (RFC 8689 4.1), which is removed with a warning (POL5).
    RemoveTlsRequired,
    /// Optional mode and no field yet: add exactly one `TLS-Required: No`
    /// (RFC 8689 4.3, POL6).
    InsertTlsRequiredNo,
}

/// The decided mode, the reason, and the header edit it implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub mode: Mode,
    pub reason: Reason,
    pub edit: HeaderEdit,
}

/// A TLS-Required field the policy cannot accept; the message is refused
/// (exit 65) and the sender must fix the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// POL3: the only value RFC 8689 section 3 defines is "No".
    NotNo { value: String },
    /// POL4: RFC 8689 section 3 forbids more than one TLS-Required field.
    Duplicate { count: usize },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotNo { value } => write!(
                f,
                "the message has \"TLS-Required: {value}\"; the only value RFC 8689 defines is \"No\". \
                 To require TLS use --require-tls (or -O requiretls=yes) and remove the field"
            ),
            PolicyError::Duplicate { count } => write!(
                f,
                "the message has {count} TLS-Required header fields; RFC 8689 allows one. \
                 Remove the extra fields"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Decides the mode of a message.
///
/// `flag` is what the command line asked for (POL1 exclusivity is the CLI's
/// job), `configured` what the configuration asked for, and `tls_required` the
/// raw values (bytes after the colon, folding included) of every
/// TLS-Required field in the input header.
pub fn decide(
    flag: Option<&Requested>,
    configured: Option<&Requested>,
    tls_required: &[&[u8]],
) -> Result<Decision, PolicyError> {
    // POL4 and POL3 first: a bad field is refused in every mode.
    if tls_required.len() > 1 {
        return Err(PolicyError::Duplicate {
            count: tls_required.len(),
        });
    }
    if let Some(value) = tls_required.first()
        && !is_no(value)
    {
        return Err(PolicyError::NotNo {
            value: printable(value),
        });
    }
    let header_says_no = !tls_required.is_empty();

    let (mode, reason) = if let Some(flag) = flag {
        (flag.mode, Reason::Flag(flag.source.clone()))
    } else if let Some(configured) = configured.filter(|c| c.mode != Mode::Default) {
        (configured.mode, Reason::Config(configured.source.clone()))
    } else if header_says_no {
        (Mode::Optional, Reason::Header)
    } else {
        (Mode::Default, Reason::Default)
    };

    let edit = match (mode, header_says_no) {
        (Mode::Require, true) => HeaderEdit::RemoveTlsRequired,
        (Mode::Optional, false) => HeaderEdit::InsertTlsRequiredNo,
        // Default mode with the field present cannot happen: the field
        // itself selects optional unless something higher chose require.
        _ => HeaderEdit::Keep,
    };
    Ok(Decision { mode, reason, edit })
}

/// POL2: "No", case-insensitive, with folding white space around it.
fn is_no(value: &[u8]) -> bool {
    value.trim_ascii().eq_ignore_ascii_case(b"no")
}

/// The field value as one line, for an error message.
fn printable(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let one_line: Vec<&str> = text.split_whitespace().collect();
    one_line.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(mode: Mode) -> Requested {
        Requested {
            mode,
            source: "--flag".into(),
        }
    }

    fn config(mode: Mode) -> Requested {
        Requested {
            mode,
            source: "account \"work\"".into(),
        }
    }

    struct Case {
        id: &'static str,
        flag: Option<Mode>,
        config: Option<Mode>,
        header: &'static [&'static [u8]],
        expect: Result<(Mode, HeaderEdit), PolicyError>,
    }

    #[test]
    fn decides_mode_and_header_edit() {
        use HeaderEdit::*;
        use Mode::*;
        #[rustfmt::skip]
        let cases = [
            // covers: POL1
            Case { id: "POL1 require flag", flag: Some(Require), config: None, header: &[], expect: Ok((Require, Keep)) },
            Case { id: "POL1 optional flag", flag: Some(Optional), config: None, header: &[], expect: Ok((Optional, InsertTlsRequiredNo)) },
            // covers: POL2
            Case { id: "POL2 header No", flag: None, config: None, header: &[b" No"], expect: Ok((Optional, Keep)) },
            Case { id: "POL2 case and FWS", flag: None, config: None, header: &[b"\r\n\t nO  \r\n "], expect: Ok((Optional, Keep)) },
            Case { id: "POL2 no space", flag: None, config: None, header: &[b"no"], expect: Ok((Optional, Keep)) },
            Case { id: "POL2 flag beats header", flag: Some(Require), config: None, header: &[b" No"], expect: Ok((Require, RemoveTlsRequired)) },
            Case { id: "POL2 config beats header", flag: None, config: Some(Require), header: &[b" No"], expect: Ok((Require, RemoveTlsRequired)) },
            Case { id: "POL2 config default does not beat header", flag: None, config: Some(Default), header: &[b" No"], expect: Ok((Optional, Keep)) },
            // covers: POL3
            Case { id: "POL3 Yes refused", flag: None, config: None, header: &[b" Yes"], expect: Err(PolicyError::NotNo { value: "Yes".into() }) },
            Case { id: "POL3 refused in require mode too", flag: Some(Require), config: None, header: &[b" yes"], expect: Err(PolicyError::NotNo { value: "yes".into() }) },
            Case { id: "POL3 comment refused", flag: None, config: None, header: &[b" No (really)"], expect: Err(PolicyError::NotNo { value: "No (really)".into() }) },
            Case { id: "POL3 empty refused", flag: None, config: None, header: &[b" "], expect: Err(PolicyError::NotNo { value: "".into() }) },
            // covers: POL4
            Case { id: "POL4 two fields refused", flag: None, config: None, header: &[b" No", b" No"], expect: Err(PolicyError::Duplicate { count: 2 }) },
            Case { id: "POL4 refused in require mode too", flag: Some(Require), config: None, header: &[b" No", b" No"], expect: Err(PolicyError::Duplicate { count: 2 }) },
            // covers: POL5
            Case { id: "POL5 require removes field", flag: Some(Require), config: None, header: &[b" No"], expect: Ok((Require, RemoveTlsRequired)) },
            // covers: POL6
            Case { id: "POL6 optional inserts one", flag: Some(Optional), config: None, header: &[], expect: Ok((Optional, InsertTlsRequiredNo)) },
            Case { id: "POL6 optional keeps existing one", flag: Some(Optional), config: None, header: &[b" No"], expect: Ok((Optional, Keep)) },
            Case { id: "default without header", flag: None, config: None, header: &[], expect: Ok((Default, Keep)) },
        ];
        for case in cases {
            let flag = case.flag.map(flag);
            let config = case.config.map(config);
            let got = decide(flag.as_ref(), config.as_ref(), case.header).map(|d| (d.mode, d.edit));
            assert_eq!(got, case.expect, "{}", case.id);
        }
    }

    #[test]
    fn reason_names_who_decided() {
        let f = flag(Mode::Require);
        let d = decide(Some(&f), Some(&config(Mode::Optional)), &[]).unwrap();
        assert_eq!(d.reason, Reason::Flag("--flag".into()));
        let d = decide(None, Some(&config(Mode::Optional)), &[b" No"]).unwrap();
        assert_eq!(d.reason, Reason::Config("account \"work\"".into()));
        let d = decide(None, None, &[b" No"]).unwrap();
        assert_eq!(d.reason, Reason::Header);
        assert!(d.reason.to_string().contains("TLS-Required: No"));
    }

    #[test]
    fn errors_tell_the_sender_what_to_do() {
        let e = decide(None, None, &[b" Yes"]).unwrap_err().to_string();
        assert!(
            e.contains("TLS-Required: Yes") && e.contains("--require-tls"),
            "{e}"
        );
        let e = decide(None, None, &[b"No", b"no", b"NO"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 TLS-Required"), "{e}");
    }
}
