//! The server side of SMTP (RFC 5321) over a byte stream, for `-bs`: the
//! caller's program speaks SMTP on tlsend's standard input and reads the
//! replies on its standard output, as with Postfix's and sendmail's
//! `sendmail -bs` (Symfony Mailer, Laravel and PHPMailer use it).
//!
//! This module owns the dialogue: reading command lines, their syntax and
//! parameters (SIZE, BODY, SMTPUTF8, REQUIRETLS, RET, ENVID, NOTIFY, ORCPT),
//! the order of commands, the reply codes with their enhanced status codes
//! (RFC 2034), and DATA transparency (RFC 5321 4.5.2). What happens to a
//! message is the [`Delivery`]'s business: it is handed each transaction
//! with a reader of its data, and returns the reply to the final dot.
//!
//! It is synchronous and generic over `BufRead` + `Write`: no runtime, no
//! configuration, nothing written anywhere but `output`, which carries
//! SMTP replies and nothing else.
//!
//! Extensions advertised, and why each is honest on this channel:
//! PIPELINING (replies are written in order, whatever arrives in one read),
//! SIZE (no fixed limit: the message is spooled to disk), 8BITMIME and
//! SMTPUTF8 (the delivery checks that the next hop takes what the message
//! needs, and refuses it otherwise), DSN (RET, ENVID and NOTIFY are
//! relayed), ENHANCEDSTATUSCODES, and REQUIRETLS. RFC 8689 section 2 lets
//! a client send REQUIRETLS only over a session with verified TLS, because
//! on a network the hop itself could be read or changed. Here there is no
//! network hop: the client is a local process that started tlsend itself
//! and talks to it over a pipe the kernel keeps private to the two, as
//! trusted as the command line from which `--require-tls` is taken. Every
//! onward hop is then held to REQUIRETLS by the delivery, so advertising it
//! is what lets a submitting program ask for it at all.

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::address::{Address, ReversePath};
use crate::smtp::{Notify, Ret};
use crate::status::EnhancedCode;

/// Longest command line accepted, CRLF included. RFC 5321 4.5.3.1.4 sets
/// 512 and lets extensions raise it; SMTPUTF8 addresses and parameters
/// need more, and Postfix's default (line_length_limit) is 2048.
pub const MAX_COMMAND_LINE: usize = 2048;

/// Most recipients one transaction takes (RFC 5321 4.5.3.1.8 asks for at
/// least 100; Postfix's smtpd_recipient_limit is 1000).
pub const MAX_RECIPIENTS: usize = 1000;

/// Longest ENVID (RFC 3461 4.4) and ORCPT (RFC 3461 4.2) values, as xtext.
const MAX_ENVID: usize = 100;
const MAX_ORCPT: usize = 500;

/// The body type declared with BODY= (RFC 6152).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// One recipient as RCPT gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub address: Address,
    /// ORCPT, xtext-decoded: `rfc822;bob@example.net`.
    pub orcpt: Option<String>,
}

/// One mail transaction, as MAIL and RCPT built it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub sender: ReversePath,
    /// SIZE, as declared (RFC 1870).
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    /// REQUIRETLS on MAIL FROM (RFC 8689).
    pub requiretls: bool,
    pub ret: Option<Ret>,
    /// ENVID, xtext-decoded.
    pub envid: Option<String>,
    /// NOTIFY, the same for every recipient (see [`Dialogue::rcpt`]).
    pub notify: Option<Notify>,
    pub recipients: Vec<Recipient>,
}

/// A reply: the code, the enhanced status code, one line of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Option<EnhancedCode>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, status: EnhancedCode, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: text.into(),
        }
    }

    fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            text: text.into(),
        }
    }
}

/// Longest reply text written, so that a line stays within RFC 5321's 512
/// octets with its code, its enhanced code and CRLF.
pub const MAX_REPLY_TEXT: usize = 480;

impl fmt::Display for Reply {
    /// One reply line without CRLF. The text is made one printable line
    /// and cut to [`MAX_REPLY_TEXT`] octets: a server's reply quoted in it
    /// must not end the line or start another reply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        let text = one_line(&self.text, MAX_REPLY_TEXT);
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// `text` with every control character (CR, LF, TAB, NUL...) made a space,
/// cut at a character boundary to at most `limit` octets.
pub fn one_line(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > limit {
            break;
        }
        out.push(c);
    }
    out
}

/// What is done with each message.
pub trait Delivery {
    /// Takes the message of `transaction`, whose data `data` yields with
    /// dot-stuffing undone, and says what to reply to the final dot.
    ///
    /// `data` ends (`Ok(0)`) at the final dot; if the client goes away
    /// first it fails with `UnexpectedEof`, and whatever was read must then
    /// not be delivered: the client was told nothing. The delivery may stop
    /// reading early; the rest is read and dropped before the reply.
    fn deliver(&mut self, transaction: &Transaction, data: &mut dyn Read) -> Reply;

    /// Asked after each reply to a final dot: true ends the dialogue with
    /// 421 (tlsend was told to stop).
    fn stopping(&self) -> bool {
        false
    }
}

/// How a dialogue ended.
#[derive(Debug)]
pub enum End {
    /// The client sent QUIT and was answered.
    Quit,
    /// Standard input ended; `open` when a transaction was under way (after
    /// MAIL, before the reply to its final dot): that message was not sent.
    Eof { open: bool },
    /// [`Delivery::stopping`] said so; the client got a 421.
    Stopped,
    /// Reading a command or writing a reply failed.
    Io(io::Error),
}

/// The state of one dialogue.
struct Dialogue<'a> {
    host: &'a str,
    /// None until HELO or EHLO; true after EHLO (parameters allowed).
    greeted: Option<bool>,
    transaction: Option<Transaction>,
}

/// What a command asks the loop to do after its reply.
enum Next {
    Continue,
    /// DATA was accepted: read the message.
    Data,
    Quit,
}

/// Runs one SMTP dialogue: the greeting, then commands until QUIT or the
/// end of `input`. `host` names this machine in the greeting.
pub fn serve(
    mut input: impl BufRead,
    mut output: impl Write,
    host: &str,
    delivery: &mut dyn Delivery,
) -> End {
    let mut dialogue = Dialogue {
        host,
        greeted: None,
        transaction: None,
    };
    let greeting = Reply::plain(220, format!("{host} ESMTP tlsend"));
    if let Err(e) = write_reply(&mut output, &greeting) {
        return End::Io(e);
    }
    loop {
        let (line, crlf) = match read_command(&mut input) {
            Ok(Line::Command(line, crlf)) => (line, crlf),
            Ok(Line::TooLong) => {
                let reply = Reply::new(500, code(5, 5, 2), "line too long");
                if let Err(e) = write_reply(&mut output, &reply) {
                    return End::Io(e);
                }
                continue;
            }
            Ok(Line::Eof) => {
                return End::Eof {
                    open: dialogue.transaction.is_some(),
                };
            }
            Err(e) => return End::Io(e),
        };
        let (replies, next) = dialogue.command(&line);
        if let Err(e) = write_text(&mut output, &replies) {
            return End::Io(e);
        }
        match next {
            Next::Continue => {}
            Next::Quit => return End::Quit,
            Next::Data => {
                let Some(transaction) = dialogue.transaction.take() else {
                    continue;
                };
                // A client that ended DATA with CRLF ends the data with
                // CRLF.CRLF and nothing else: a bare LF is then content,
                // so "\n.\n" hidden in a message cannot end it early and
                // smuggle commands (Postfix's smtpd_forbid_bare_newline).
                // A client that writes bare LFs (a shell script) keeps them.
                let ends = if crlf {
                    LineEnds::Crlf
                } else {
                    LineEnds::AnyLf
                };
                let mut data = DataReader::new(&mut input, ends);
                let reply = delivery.deliver(&transaction, &mut data);
                // Whatever the delivery left unread is read now, so that
                // the next command is read where it starts.
                if let Err(e) = io::copy(&mut data, &mut io::sink()) {
                    return if e.kind() == io::ErrorKind::UnexpectedEof {
                        End::Eof { open: true }
                    } else {
                        End::Io(e)
                    };
                }
                if let Err(e) = write_reply(&mut output, &reply) {
                    return End::Io(e);
                }
                if delivery.stopping() {
                    let bye = Reply::new(
                        421,
                        code(4, 3, 0),
                        format!("{host} tlsend was told to stop; closing"),
                    );
                    let _ = write_reply(&mut output, &bye);
                    return End::Stopped;
                }
            }
        }
    }
}

/// Writes one reply and flushes: a pipelining client may be waiting for
/// it (RFC 2920 lets a server group replies, never hold them back).
fn write_reply(output: &mut impl Write, reply: &Reply) -> io::Result<()> {
    write_text(output, &format!("{reply}\r\n"))
}

fn write_text(output: &mut impl Write, text: &str) -> io::Result<()> {
    output.write_all(text.as_bytes())?;
    output.flush()
}

/// A multi-line reply without enhanced codes (EHLO, HELP): every line but
/// the last with `code-`, each ending in CRLF.
fn multiline(code: u16, lines: &[&str]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!(
            "{code}{sep}{}\r\n",
            one_line(line, MAX_REPLY_TEXT)
        ));
    }
    out
}

enum Line {
    /// A command, and whether its line ended in CRLF (not a bare LF).
    Command(String, bool),
    TooLong,
    Eof,
}

/// Reads one command line without its line ending (CRLF or a bare LF). A
/// line longer than [`MAX_COMMAND_LINE`] is read to its end and dropped. A
/// last line without a line ending is taken as a command.
fn read_command(input: &mut impl BufRead) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(Line::Eof);
            }
            break;
        }
        let (take, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if line.len() + take > MAX_COMMAND_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(&available[..take]);
            }
        }
        input.consume(take);
        if found {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong);
    }
    let mut crlf = false;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
            crlf = true;
        }
    }
    // Not UTF-8: replaced, so the command is refused as not understood.
    Ok(Line::Command(
        String::from_utf8_lossy(&line).into_owned(),
        crlf,
    ))
}

fn code(class: u8, subject: u16, detail: u16) -> EnhancedCode {
    EnhancedCode::new(class, subject, detail)
}

fn ok(text: &str) -> Reply {
    Reply::new(250, code(2, 0, 0), text)
}

fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, code(5, 5, 1), text)
}

fn syntax(text: impl Into<String>) -> Reply {
    Reply::new(501, code(5, 5, 4), text)
}

impl Dialogue<'_> {
    /// Answers one command line: the reply as written (CRLF included), and
    /// what comes next.
    fn command(&mut self, line: &str) -> (String, Next) {
        let one = |reply: Reply| (format!("{reply}\r\n"), Next::Continue);
        if line.contains(|c: char| c.is_control() || c == char::REPLACEMENT_CHARACTER) {
            return one(Reply::new(
                500,
                code(5, 5, 2),
                "command holds a control character or is not UTF-8",
            ));
        }
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb, argument),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" => {
                let extended = verb.eq_ignore_ascii_case("EHLO");
                let name = argument.trim();
                if name.is_empty() || name.contains(' ') {
                    return one(syntax(format!("use {} with one name", verb.to_uppercase())));
                }
                // EHLO and HELO end any transaction (RFC 5321 4.1.4).
                self.transaction = None;
                self.greeted = Some(extended);
                if !extended {
                    return one(Reply::plain(250, self.host));
                }
                (self.ehlo_reply(), Next::Continue)
            }
            "MAIL" => one(self.mail(argument)),
            "RCPT" => one(self.rcpt(argument)),
            "DATA" => {
                if !argument.is_empty() {
                    return one(syntax("DATA takes no argument"));
                }
                match &self.transaction {
                    None => one(bad_sequence("send MAIL FROM first")),
                    Some(t) if t.recipients.is_empty() => {
                        // RFC 2920 3.1 and RFC 5321 3.3: no valid recipients.
                        one(Reply::new(554, code(5, 5, 1), "no valid recipients"))
                    }
                    Some(_) => (
                        format!(
                            "{}\r\n",
                            Reply::plain(354, "end data with <CR><LF>.<CR><LF>")
                        ),
                        Next::Data,
                    ),
                }
            }
            "RSET" => {
                if !argument.trim().is_empty() {
                    return one(syntax("RSET takes no argument"));
                }
                self.transaction = None;
                one(ok("Ok"))
            }
            "NOOP" => one(ok("Ok")),
            "QUIT" => {
                if !argument.trim().is_empty() {
                    return one(syntax("QUIT takes no argument"));
                }
                let bye = Reply::new(221, code(2, 0, 0), format!("{} closing", self.host));
                (format!("{bye}\r\n"), Next::Quit)
            }
            "VRFY" => {
                if argument.trim().is_empty() {
                    return one(syntax("VRFY needs an argument"));
                }
                one(Reply::new(
                    252,
                    code(2, 5, 2),
                    "cannot VRFY, but will take the message and try to deliver it",
                ))
            }
            "HELP" => (
                multiline(
                    214,
                    &[
                        "2.0.0 tlsend -bs: each message goes the way of a message piped to tlsend",
                        "2.0.0 commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
                        "2.0.0 see tlsend(1)",
                    ],
                ),
                Next::Continue,
            ),
            "STARTTLS" | "AUTH" | "BDAT" | "EXPN" | "ETRN" | "TURN" | "ATRN" | "BURL" => {
                one(Reply::new(
                    502,
                    code(5, 5, 1),
                    format!("{} is not implemented", verb.to_ascii_uppercase()),
                ))
            }
            _ => one(Reply::new(500, code(5, 5, 2), "command not recognized")),
        }
    }

    fn ehlo_reply(&self) -> String {
        multiline(
            250,
            &[
                self.host,
                "PIPELINING",
                "SIZE",
                "8BITMIME",
                "SMTPUTF8",
                "DSN",
                "ENHANCEDSTATUSCODES",
                "REQUIRETLS",
            ],
        )
    }

    fn mail(&mut self, argument: &str) -> Reply {
        if self.transaction.is_some() {
            return bad_sequence("nested MAIL command");
        }
        let Some(rest) = strip_prefix_ignore_case(argument, "FROM:") else {
            return syntax("use MAIL FROM:<address>");
        };
        let Some((path, parameters)) = split_path(rest) else {
            return Reply::new(501, code(5, 1, 7), "bad sender address syntax");
        };
        // An empty path is the null sender only as "<>".
        if path.trim().is_empty() && !rest.trim_start().starts_with('<') {
            return Reply::new(501, code(5, 1, 7), "bad sender address syntax");
        }
        let sender = match ReversePath::parse(path) {
            Ok(sender) => sender,
            Err(e) => return Reply::new(501, code(5, 1, 7), format!("bad sender address: {e}")),
        };
        let mut transaction = Transaction {
            sender,
            size: None,
            body: None,
            smtputf8: false,
            requiretls: false,
            ret: None,
            envid: None,
            notify: None,
            recipients: Vec::new(),
        };
        let parameters = match self.parameters(parameters) {
            Ok(parameters) => parameters,
            Err(reply) => return reply,
        };
        for (keyword, value) in parameters {
            let applied = match keyword.as_str() {
                "SIZE" => parse_size(value).map(|n| transaction.size = Some(n)),
                "BODY" => parse_body(value).map(|body| transaction.body = Some(body)),
                "SMTPUTF8" => no_value(&keyword, value).map(|()| transaction.smtputf8 = true),
                "REQUIRETLS" => no_value(&keyword, value).map(|()| transaction.requiretls = true),
                "RET" => parse_ret(value).map(|ret| transaction.ret = Some(ret)),
                "ENVID" => parse_envid(value).map(|envid| transaction.envid = Some(envid)),
                _ => Err(unknown_parameter(&keyword)),
            };
            if let Err(reply) = applied {
                return reply;
            }
        }
        if !transaction.sender.is_ascii() && !transaction.smtputf8 {
            return non_ascii("sender");
        }
        self.transaction = Some(transaction);
        ok("Ok")
    }

    fn rcpt(&mut self, argument: &str) -> Reply {
        let extended = self.greeted == Some(true);
        let Some(transaction) = self.transaction.as_mut() else {
            return bad_sequence("send MAIL FROM first");
        };
        let Some(rest) = strip_prefix_ignore_case(argument, "TO:") else {
            return syntax("use RCPT TO:<address>");
        };
        let bad = |detail: String| Reply::new(501, code(5, 1, 3), detail);
        let Some((path, parameters)) = split_path(rest) else {
            return bad("bad recipient address syntax".into());
        };
        let address = match Address::parse(path) {
            Ok(address) => address,
            Err(e) => return bad(format!("bad recipient address: {e}")),
        };
        let parameters = match parameters_of(parameters, extended) {
            Ok(parameters) => parameters,
            Err(reply) => return reply,
        };
        let mut notify = None;
        let mut orcpt = None;
        for (keyword, value) in parameters {
            let applied = match keyword.as_str() {
                "NOTIFY" => parse_notify(value).map(|n| notify = Some(n)),
                "ORCPT" => parse_orcpt(value).map(|o| orcpt = Some(o)),
                _ => Err(unknown_parameter(&keyword)),
            };
            if let Err(reply) = applied {
                return reply;
            }
        }
        if !address.is_ascii() && !transaction.smtputf8 {
            return non_ascii("recipient");
        }
        if transaction.recipients.len() >= MAX_RECIPIENTS {
            return Reply::new(452, code(4, 5, 3), "too many recipients");
        }
        // tlsend's envelope carries one NOTIFY for the whole message. A
        // recipient that asks for another is deferred: RFC 5321 4.5.3.1.10
        // has the client send it in a later transaction.
        if !transaction.recipients.is_empty() && transaction.notify != notify {
            return Reply::new(
                452,
                code(4, 5, 3),
                "NOTIFY differs from this transaction's other recipients; \
                 send this recipient in another transaction",
            );
        }
        transaction.notify = notify;
        transaction.recipients.push(Recipient { address, orcpt });
        ok("Ok")
    }

    /// The parameters of MAIL, each keyword upper-cased once.
    fn parameters<'l>(&self, text: &'l str) -> Result<Vec<(String, Option<&'l str>)>, Reply> {
        parameters_of(text, self.greeted == Some(true))
    }
}

/// Parses `KEYWORD[=VALUE]` words (RFC 5321 4.1.2 `esmtp-param`). Only
/// after EHLO: a client that said HELO was offered no extension.
fn parameters_of(text: &str, extended: bool) -> Result<Vec<(String, Option<&str>)>, Reply> {
    let mut out: Vec<(String, Option<&str>)> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let (keyword, value) = match word.split_once('=') {
            Some((keyword, value)) => (keyword, Some(value)),
            None => (word, None),
        };
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !keyword_ok || value.is_some_and(|v| v.is_empty() || v.contains('=')) {
            return Err(syntax(format!(
                "{:?} is not a parameter (KEYWORD or KEYWORD=VALUE)",
                one_line(word, 64)
            )));
        }
        if !extended {
            return Err(Reply::new(
                555,
                code(5, 5, 4),
                "parameters need EHLO: the client said HELO or nothing",
            ));
        }
        let keyword = keyword.to_ascii_uppercase();
        if out.iter().any(|(k, _)| *k == keyword) {
            return Err(syntax(format!("{keyword} given twice")));
        }
        out.push((keyword, value));
    }
    Ok(out)
}

fn unknown_parameter(keyword: &str) -> Reply {
    Reply::new(
        555,
        code(5, 5, 4),
        format!("{} is not supported", one_line(keyword, 64)),
    )
}

fn non_ascii(which: &str) -> Reply {
    Reply::new(
        553,
        code(5, 6, 7),
        format!("a non-ASCII {which} address needs the SMTPUTF8 parameter on MAIL FROM"),
    )
}

fn no_value(keyword: &str, value: Option<&str>) -> Result<(), Reply> {
    match value {
        None => Ok(()),
        Some(_) => Err(syntax(format!("{keyword} takes no value"))),
    }
}

/// RFC 6152 and RFC 1652: `BODY=7BIT` or `BODY=8BITMIME` (BINARYMIME
/// needs CHUNKING, which is not offered).
fn parse_body(value: Option<&str>) -> Result<Body, Reply> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        Some("7BIT") => Ok(Body::SevenBit),
        Some("8BITMIME") => Ok(Body::EightBitMime),
        _ => Err(syntax("BODY is 7BIT or 8BITMIME")),
    }
}

/// RFC 3461 4.3: `RET=FULL` or `RET=HDRS`.
fn parse_ret(value: Option<&str>) -> Result<Ret, Reply> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        Some("FULL") => Ok(Ret::Full),
        Some("HDRS") => Ok(Ret::Hdrs),
        _ => Err(syntax("RET is FULL or HDRS")),
    }
}

/// RFC 1870: `SIZE=` 1 to 20 digits.
fn parse_size(value: Option<&str>) -> Result<u64, Reply> {
    value
        .filter(|v| (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| syntax("SIZE is a number of octets"))
}

/// RFC 3461 4.4: xtext of printable ASCII, at most 100 characters.
fn parse_envid(value: Option<&str>) -> Result<String, Reply> {
    let wrong = || syntax("ENVID is xtext of at most 100 printable ASCII characters");
    let value = value.filter(|v| v.len() <= MAX_ENVID).ok_or_else(wrong)?;
    let decoded = crate::smtp::command::xtext_decode(value).ok_or_else(wrong)?;
    if decoded.is_empty() || !decoded.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(wrong());
    }
    Ok(decoded)
}

/// RFC 3461 4.1: `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY.
fn parse_notify(value: Option<&str>) -> Result<Notify, Reply> {
    let wrong = || syntax("NOTIFY is NEVER, or a list of SUCCESS, FAILURE and DELAY");
    let value = value.ok_or_else(wrong)?;
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for word in value.split(',') {
        let flag = match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => &mut success,
            "FAILURE" => &mut failure,
            "DELAY" => &mut delay,
            _ => return Err(wrong()),
        };
        if *flag {
            return Err(wrong());
        }
        *flag = true;
    }
    Ok(Notify::On {
        success,
        failure,
        delay,
    })
}

/// RFC 3461 4.2: `addr-type ";" xtext`, at most 500 characters.
fn parse_orcpt(value: Option<&str>) -> Result<String, Reply> {
    let wrong = || syntax("ORCPT is addr-type;xtext, for example rfc822;bob@example.net");
    let value = value.filter(|v| v.len() <= MAX_ORCPT).ok_or_else(wrong)?;
    let (kind, address) = value.split_once(';').ok_or_else(wrong)?;
    let kind_ok = kind
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !kind_ok || address.is_empty() {
        return Err(wrong());
    }
    // utf-8 addresses use RFC 6533's own encoding, which is xtext-shaped
    // but allows UTF-8 and \x{..}: taken as given, one line.
    let decoded = if kind.eq_ignore_ascii_case("utf-8") {
        Some(address.to_string())
    } else {
        crate::smtp::command::xtext_decode(address)
    };
    let decoded = decoded
        .filter(|d| !d.chars().any(char::is_control))
        .ok_or_else(wrong)?;
    Ok(format!("{kind};{decoded}"))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `<path> parameters` into the path's text (without the angle
/// brackets and any source route, RFC 5321 4.1.1.3 and appendix C) and
/// the parameters. Spaces after the colon are tolerated, and so is an
/// address without angle brackets (ending at the first space), as
/// Postfix and sendmail do. `None` when the brackets do not close.
fn split_path(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(' ');
    let (inner, rest) = match text.strip_prefix('<') {
        Some(after) => {
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = None;
            for (i, c) in after.char_indices() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match c {
                    '\\' if in_quotes => escaped = true,
                    '"' => in_quotes = !in_quotes,
                    '>' if !in_quotes => {
                        end = Some(i);
                        break;
                    }
                    '<' if !in_quotes => return None,
                    _ => {}
                }
            }
            let end = end?;
            (&after[..end], &after[end + 1..])
        }
        // The space stays with the parameters, which must start with one.
        None => text.split_at(text.find(' ').unwrap_or(text.len())),
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    // A source route ("@relay.example,@other.example:") is ignored.
    let inner = match inner.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => inner,
    };
    Some((inner, rest))
}

/// What ends a line of the data, for the final dot and dot-stuffing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnds {
    /// CRLF only (RFC 5321 2.3.8); a bare LF is part of the line.
    Crlf,
    /// CRLF or a bare LF, for clients that write only LF.
    AnyLf,
}

/// Where the reader stands in the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// At the start of a line.
    LineStart,
    /// After a "." at the start of a line.
    Dot,
    /// After "." and CR at the start of a line.
    DotCr,
    /// Inside a line.
    Inside,
    /// The final dot was read.
    End,
}

/// The data of one message, read from the dialogue's input up to the line
/// holding a single "." (CRLF or a bare LF ends a line), with the leading
/// dot of every other line that has one removed (RFC 5321 4.5.2). Lines
/// are passed on with their line endings as received; a CR that does not
/// end a line is passed on too (the message reader refuses it). It ends
/// (`Ok(0)`) after the final dot, and fails with `UnexpectedEof` when the
/// input ends before it.
pub struct DataReader<'a, R: BufRead> {
    input: &'a mut R,
    at: At,
    ends: LineEnds,
    /// The last byte passed on was a CR (a CRLF may span two reads).
    after_cr: bool,
}

impl<'a, R: BufRead> DataReader<'a, R> {
    pub fn new(input: &'a mut R, ends: LineEnds) -> DataReader<'a, R> {
        DataReader {
            input,
            at: At::LineStart,
            ends,
            after_cr: false,
        }
    }

    /// True once the final dot was read.
    pub fn finished(&self) -> bool {
        self.at == At::End
    }
}

impl<R: BufRead> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.at != At::End {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The error comes again on the next call, after these bytes.
                Err(_) if n > 0 => return Ok(n),
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if n > 0 {
                    return Ok(n);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the SMTP client closed its end before the final dot",
                ));
            }
            let mut used = 0;
            while used < available.len() && n < buf.len() && self.at != At::End {
                let b = available[used];
                match self.at {
                    At::LineStart if b == b'.' => {
                        self.at = At::Dot;
                        used += 1;
                    }
                    At::LineStart => self.at = At::Inside,
                    At::Dot => match b {
                        b'\r' => {
                            self.at = At::DotCr;
                            used += 1;
                        }
                        b'\n' if self.ends == LineEnds::AnyLf => {
                            self.at = At::End;
                            used += 1;
                        }
                        // The stuffed dot is dropped; the line goes on.
                        _ => {
                            self.at = At::Inside;
                            self.after_cr = false;
                        }
                    },
                    At::DotCr => {
                        if b == b'\n' {
                            self.at = At::End;
                            used += 1;
                        } else {
                            // ".\r" and more: the dot dropped, the CR kept.
                            buf[n] = b'\r';
                            n += 1;
                            self.at = At::Inside;
                            self.after_cr = true;
                        }
                    }
                    At::Inside => {
                        let rest = &available[used..];
                        let room = (buf.len() - n).min(rest.len());
                        let (take, line_ends) = match rest[..room].iter().position(|&c| c == b'\n')
                        {
                            Some(i) => {
                                let cr_before = if i == 0 {
                                    self.after_cr
                                } else {
                                    rest[i - 1] == b'\r'
                                };
                                (i + 1, cr_before || self.ends == LineEnds::AnyLf)
                            }
                            None => (room, false),
                        };
                        buf[n..n + take].copy_from_slice(&rest[..take]);
                        n += take;
                        used += take;
                        self.after_cr = take > 0 && rest[take - 1] == b'\r';
                        if line_ends {
                            self.at = At::LineStart;
                        }
                    }
                    At::End => {}
                }
            }
            self.input.consume(used);
        }
        Ok(n)
    }
}
