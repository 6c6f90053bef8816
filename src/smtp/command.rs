//! The envelope and the MAIL and RCPT commands built from it, with their
//! parameters: REQUIRETLS (RFC 8689), BODY (RFC 6152), SMTPUTF8 (RFC 6531),
//! SIZE (RFC 1870), RET, ENVID, NOTIFY and ORCPT (RFC 3461, xtext-encoded).
//!
//! REQUIRETLS can only be written with a [`RequireTls`] proof, which can only
//! be made from a [`TlsVerified`] token and capabilities that advertise
//! REQUIRETLS: a code path that forgot a check does not compile.

use std::fmt::Write as _;

use super::ehlo::Capabilities;
use super::error::Missing;
use crate::address::{Address, ReversePath};
use crate::tls::TlsVerified;

/// What RFC 3461 RET asks a bounce to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// RFC 3461 NOTIFY: never, or any of success, failure, delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    Never,
    On {
        success: bool,
        failure: bool,
        delay: bool,
    },
}

/// Delivery status notification requests (`-N`, `-R`, `-V`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dsn {
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub notify: Option<Notify>,
    /// RFC 3461 4.2 ORCPT values, decoded (`rfc822;root@example.org`), of
    /// the recipients that have one of their own: the address the sender
    /// gave when an alias replaced it, or what an SMTP client (-bs) gave.
    /// The others are named by their own address.
    pub original_recipients: std::collections::HashMap<Address, String>,
}

impl Dsn {
    pub fn is_requested(&self) -> bool {
        self.ret.is_some() || self.envid.is_some() || self.notify.is_some()
    }
}

/// What the message content needs from the server (IN8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Content {
    /// Some byte of the header or body is 0x80 or above.
    pub eight_bit: bool,
    /// The header holds UTF-8 (RFC 6532), which needs SMTPUTF8.
    pub utf8_header: bool,
    /// The caller declared 8BITMIME (`-B 8BITMIME`) even if the bytes are 7-bit.
    pub declared_8bitmime: bool,
}

/// One message's envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub sender: ReversePath,
    pub recipients: Vec<Address>,
    pub content: Content,
    /// Message size in octets as sent, for the SIZE parameter.
    pub size: Option<u64>,
    pub dsn: Dsn,
}

impl Envelope {
    /// RFC 6531 3.4: UTF-8 in the envelope or the header needs SMTPUTF8.
    pub fn needs_smtputf8(&self) -> bool {
        self.content.utf8_header
            || !self.sender.is_ascii()
            || self.recipients.iter().any(|r| !r.is_ascii())
    }
}

/// Proof that this session may send REQUIRETLS: TLS is established with a
/// verified certificate and the post-TLS EHLO advertised REQUIRETLS
/// (RFC 8689 section 2). Only [`RequireTls::check`] makes one.
#[derive(Debug)]
pub struct RequireTls(());

impl RequireTls {
    /// The last checks before MAIL FROM in require mode. `verified` is `None`
    /// when the session has no TLS or TLS that did not authenticate the server.
    pub fn check(
        verified: Option<&TlsVerified>,
        caps: &Capabilities,
    ) -> Result<RequireTls, Missing> {
        if verified.is_none() {
            return Err(Missing::VerifiedTls);
        }
        if !caps.has("REQUIRETLS") {
            return Err(Missing::RequireTls);
        }
        Ok(RequireTls(()))
    }
}

/// Builds `MAIL FROM:<…>` with every parameter the envelope needs and the
/// server offers; refuses when the content needs an extension the server
/// lacks (IN8) or exceeds its SIZE limit.
pub fn mail_command(
    envelope: &Envelope,
    caps: &Capabilities,
    requiretls: Option<&RequireTls>,
) -> Result<String, Missing> {
    let mut line = format!("MAIL FROM:<{}>", envelope.sender);
    let content = envelope.content;
    if content.eight_bit && !caps.has("8BITMIME") {
        return Err(Missing::EightBitMime);
    }
    if (content.eight_bit || content.declared_8bitmime) && caps.has("8BITMIME") {
        line.push_str(" BODY=8BITMIME");
    }
    if envelope.needs_smtputf8() {
        if !caps.has("SMTPUTF8") {
            return Err(Missing::SmtpUtf8);
        }
        line.push_str(" SMTPUTF8");
    }
    if let Some(size) = envelope.size
        && caps.has("SIZE")
    {
        if let Some(limit) = caps.size_limit()
            && size > limit
        {
            return Err(Missing::Size { limit, size });
        }
        let _ = write!(line, " SIZE={size}");
    }
    if requiretls.is_some() {
        line.push_str(" REQUIRETLS");
    }
    if caps.has("DSN") {
        match envelope.dsn.ret {
            Some(Ret::Full) => line.push_str(" RET=FULL"),
            Some(Ret::Hdrs) => line.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = &envelope.dsn.envid {
            let _ = write!(line, " ENVID={}", xtext(envid));
        }
    }
    Ok(line)
}

/// Builds `RCPT TO:<…>` with NOTIFY and ORCPT when DSN was asked for (or
/// the recipient came with an ORCPT of its own) and the server offers it.
pub fn rcpt_command(recipient: &Address, envelope: &Envelope, caps: &Capabilities) -> String {
    let mut line = format!("RCPT TO:<{recipient}>");
    let given = envelope.dsn.original_recipients.get(recipient);
    // RFC 3461 4.2: an ORCPT that came with the message is passed on.
    if caps.has("DSN") && (envelope.dsn.is_requested() || given.is_some()) {
        if let Some(notify) = envelope.dsn.notify {
            line.push_str(" NOTIFY=");
            match notify {
                Notify::Never => line.push_str("NEVER"),
                Notify::On {
                    success,
                    failure,
                    delay,
                } => {
                    let words: Vec<&str> =
                        [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                            .into_iter()
                            .filter_map(|(on, word)| on.then_some(word))
                            .collect();
                    line.push_str(&words.join(","));
                }
            }
        }
        // RFC 3461 4.2; a UTF-8 address of tlsend's own would need RFC
        // 6533's utf-8 type, which servers rarely support, so it is left
        // out. A given ORCPT that cannot go as it is (too long as sent, or
        // not ASCII in a type that must be) is left out too, never
        // replaced by the recipient, which is not what the sender wrote.
        match given {
            Some(orcpt) => {
                if let Some(sent) = orcpt_as_sent(orcpt) {
                    let _ = write!(line, " ORCPT={sent}");
                }
            }
            None if recipient.is_ascii() => {
                let _ = write!(line, " ORCPT=rfc822;{}", xtext(&recipient.to_string()));
            }
            None => {}
        }
    }
    line
}

/// Whether `value` is a decoded ORCPT (RFC 3461 4.2) tlsend can keep and
/// pass on: `addr-type;address`, the type an atom, the whole one line of at
/// most 500 characters.
pub fn is_valid_orcpt(value: &str) -> bool {
    let Some((kind, address)) = value.split_once(';') else {
        return false;
    };
    value.len() <= 500
        && kind
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !address.is_empty()
        && !value.chars().any(char::is_control)
}

/// A decoded ORCPT as it goes on the RCPT line, if it can: xtext (RFC
/// 3461 4.2, which wants the address ASCII), or for the utf-8 type RFC
/// 6533's 7-bit `utf-8-addr-xtext` (each non-ASCII character, "+", "=",
/// space as `\x{HEX}`; a "\x{..}" already there stays as it is). At most
/// 500 characters, which bounds the command line.
fn orcpt_as_sent(orcpt: &str) -> Option<String> {
    let (kind, address) = orcpt.split_once(';')?;
    let sent = if kind.eq_ignore_ascii_case("utf-8") {
        let mut out = format!("{kind};");
        for c in address.chars() {
            if c.is_ascii_graphic() && c != '+' && c != '=' {
                out.push(c);
            } else {
                let _ = write!(out, "\\x{{{:02X}}}", u32::from(c));
            }
        }
        out
    } else if orcpt.is_ascii() {
        xtext(orcpt)
    } else {
        return None;
    };
    (sent.len() <= 500).then_some(sent)
}

/// RFC 3461 4: `xtext`; "+", "=", controls, space and non-ASCII become `+HH`.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
    out
}

/// Reverses [`xtext`]: `+HH` becomes the octet HH (upper- or lower-case
/// hex taken); `None` for text that is not xtext (a byte outside "!" to
/// "~", "=", a "+" without two hex digits) or does not decode to UTF-8.
pub fn xtext_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            b'!'..=b'~' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply;

    fn caps(keywords: &[&str]) -> Capabilities {
        let mut text = String::from("250-mx.example\r\n");
        for k in keywords {
            text.push_str(&format!("250-{k}\r\n"));
        }
        text.push_str("250 HELP\r\n");
        let (r, _) = reply::parse(text.as_bytes()).unwrap().unwrap();
        Capabilities::from_ehlo(&r)
    }

    fn envelope() -> Envelope {
        Envelope {
            sender: ReversePath::parse("alice@example.org").unwrap(),
            recipients: vec![Address::parse("bob@example.net").unwrap()],
            content: Content::default(),
            size: None,
            dsn: Dsn::default(),
        }
    }

    fn proof() -> RequireTls {
        RequireTls(())
    }

    // covers: SUB4
    #[test]
    fn sub4_requiretls_parameter_appears_once_and_only_with_proof() {
        let c = caps(&["REQUIRETLS"]);
        let with = mail_command(&envelope(), &c, Some(&proof())).unwrap();
        assert_eq!(with, "MAIL FROM:<alice@example.org> REQUIRETLS");
        assert_eq!(with.matches("REQUIRETLS").count(), 1);
        let without = mail_command(&envelope(), &c, None).unwrap();
        assert!(!without.contains("REQUIRETLS"));
    }

    // covers: SUB3
    #[test]
    fn sub3_proof_needs_verified_tls_and_the_keyword() {
        let verified = TlsVerified::for_tests();
        assert_eq!(
            RequireTls::check(None, &caps(&["REQUIRETLS"])).unwrap_err(),
            Missing::VerifiedTls
        );
        assert_eq!(
            RequireTls::check(Some(&verified), &caps(&[])).unwrap_err(),
            Missing::RequireTls
        );
        assert!(RequireTls::check(Some(&verified), &caps(&["requiretls"])).is_ok());
    }

    // covers: IN8
    #[test]
    fn in8_eight_bit_content_needs_8bitmime_and_utf8_header_needs_smtputf8() {
        let mut env = envelope();
        env.content.eight_bit = true;
        assert_eq!(
            mail_command(&env, &caps(&[]), None).unwrap_err(),
            Missing::EightBitMime
        );
        assert_eq!(
            mail_command(&env, &caps(&["8BITMIME"]), None).unwrap(),
            "MAIL FROM:<alice@example.org> BODY=8BITMIME"
        );
        env.content.utf8_header = true;
        assert_eq!(
            mail_command(&env, &caps(&["8BITMIME"]), None).unwrap_err(),
            Missing::SmtpUtf8
        );
        assert_eq!(
            mail_command(&env, &caps(&["8BITMIME", "SMTPUTF8"]), None).unwrap(),
            "MAIL FROM:<alice@example.org> BODY=8BITMIME SMTPUTF8"
        );
        // Declared 8BITMIME with 7-bit bytes: sent when offered, harmless when not (Debian cron).
        let mut declared = envelope();
        declared.content.declared_8bitmime = true;
        assert_eq!(
            mail_command(&declared, &caps(&[]), None).unwrap(),
            "MAIL FROM:<alice@example.org>"
        );
        // A UTF-8 recipient needs SMTPUTF8 even with an ASCII header.
        let mut utf8 = envelope();
        utf8.recipients = vec![Address::parse("jörg@example.net").unwrap()];
        assert_eq!(
            mail_command(&utf8, &caps(&[]), None).unwrap_err(),
            Missing::SmtpUtf8
        );
    }

    #[test]
    fn size_is_announced_and_checked() {
        let mut env = envelope();
        env.size = Some(5000);
        assert_eq!(
            mail_command(&env, &caps(&["SIZE"]), None).unwrap(),
            "MAIL FROM:<alice@example.org> SIZE=5000"
        );
        assert_eq!(
            mail_command(&env, &caps(&["SIZE 4000"]), None).unwrap_err(),
            Missing::Size {
                limit: 4000,
                size: 5000
            }
        );
        assert_eq!(
            mail_command(&env, &caps(&[]), None).unwrap(),
            "MAIL FROM:<alice@example.org>"
        );
    }

    #[test]
    fn dsn_parameters_only_when_offered() {
        let mut env = envelope();
        env.dsn = Dsn {
            ret: Some(Ret::Hdrs),
            envid: Some("id+1=x".into()),
            notify: Some(Notify::On {
                success: true,
                failure: true,
                delay: false,
            }),
            original_recipients: Default::default(),
        };
        let dsn = caps(&["DSN"]);
        assert_eq!(
            mail_command(&env, &dsn, None).unwrap(),
            "MAIL FROM:<alice@example.org> RET=HDRS ENVID=id+2B1+3Dx"
        );
        assert_eq!(
            rcpt_command(&env.recipients[0], &env, &dsn),
            "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net"
        );
        assert_eq!(
            rcpt_command(&env.recipients[0], &env, &caps(&[])),
            "RCPT TO:<bob@example.net>"
        );
        assert_eq!(
            mail_command(&env, &caps(&[]), None).unwrap(),
            "MAIL FROM:<alice@example.org>"
        );
    }

    // RFC 3461 4.2: a recipient's own ORCPT is passed on, with DSN asked
    // for or not, and only to a server that offers DSN.
    #[test]
    fn a_given_orcpt_is_passed_on() {
        let mut env = envelope();
        let bob = env.recipients[0].clone();
        env.dsn
            .original_recipients
            .insert(bob.clone(), "rfc822;root+x@example.org".into());
        assert_eq!(
            rcpt_command(&bob, &env, &caps(&["DSN"])),
            "RCPT TO:<bob@example.net> ORCPT=rfc822;root+2Bx@example.org"
        );
        assert_eq!(
            rcpt_command(&bob, &env, &caps(&[])),
            "RCPT TO:<bob@example.net>"
        );
        assert!(is_valid_orcpt("rfc822;root@example.org"));
        for bad in [
            "root@example.org",
            ";x",
            "rfc 822;x",
            "rfc822;",
            "rfc822;a\r\nb",
        ] {
            assert!(!is_valid_orcpt(bad), "{bad:?}");
        }
    }

    // RFC 3461 4.2: the ORCPT value is at most 500 characters as sent
    // (xtext): a decoded value full of "+" (a queue file, an alias name)
    // is left out rather than make an overlong RCPT line.
    #[test]
    fn an_orcpt_is_bounded_as_sent_not_as_decoded() {
        let plus = format!("rfc822;{}@example.org", "+".repeat(200));
        assert!(plus.len() <= 500 && xtext(&plus).len() > 500);
        let mut env = envelope();
        let bob = env.recipients[0].clone();
        env.dsn.original_recipients.insert(bob.clone(), plus);
        let line = rcpt_command(&bob, &env, &caps(&["DSN"]));
        assert!(line.len() < 512, "{line}");
    }

    // A given ORCPT that cannot go as it is is never replaced by the
    // recipient's own address (which would name the target, not the
    // original): a utf-8 one goes in RFC 6533's 7-bit form, an rfc822 one
    // that is not ASCII (RFC 3461 4.2 forbids it) is left out.
    #[test]
    fn a_given_orcpt_that_is_not_ascii() {
        let mut env = envelope();
        let bob = env.recipients[0].clone();
        env.dsn.original_recipients.insert(
            bob.clone(),
            "utf-8;j\u{f6}rg+x=\u{1f600}@b\u{fc}cher.example".into(),
        );
        assert_eq!(
            rcpt_command(&bob, &env, &caps(&["DSN"])),
            "RCPT TO:<bob@example.net> ORCPT=utf-8;j\\x{F6}rg\\x{2B}x\\x{3D}\\x{1F600}@b\\x{FC}cher.example"
        );
        env.dsn
            .original_recipients
            .insert(bob.clone(), "rfc822;j\u{f6}rg@example.org".into());
        assert_eq!(
            rcpt_command(&bob, &env, &caps(&["DSN"])),
            "RCPT TO:<bob@example.net>"
        );
    }

    #[test]
    fn null_sender_and_quoted_local_parts() {
        let mut env = envelope();
        env.sender = ReversePath::Null;
        assert_eq!(
            mail_command(&env, &caps(&[]), None).unwrap(),
            "MAIL FROM:<>"
        );
        let quoted = Address::from_parts("a b", Some("example.net")).unwrap();
        assert_eq!(
            rcpt_command(&quoted, &env, &caps(&[])),
            "RCPT TO:<\"a b\"@example.net>"
        );
    }

    #[test]
    fn xtext_encodes_rfc3461_specials() {
        let cases = [
            ("abc", "abc"),
            ("a+b", "a+2Bb"),
            ("a=b", "a+3Db"),
            ("a b", "a+20b"),
            ("é", "+C3+A9"),
        ];
        for (input, expected) in cases {
            assert_eq!(xtext(input), expected, "{input}");
            assert_eq!(xtext_decode(expected).as_deref(), Some(input), "{expected}");
        }
        assert_eq!(xtext_decode("a+2bb").as_deref(), Some("a+b"));
        for bad in ["a=b", "a b", "+2", "+G0", "+FF", "\u{e9}"] {
            assert_eq!(xtext_decode(bad), None, "{bad:?}");
        }
    }
}
