//! `-bs` (IN13): an SMTP dialogue on standard input and output. The
//! dialogue itself is [`crate::smtpd`]'s; this file sends each message it
//! takes the way a piped message goes ([`super::send_message`]: the same
//! configuration, TLS policy, route, queue and reports), and turns what
//! became of it into the reply to the final dot.
//!
//! The reply tells the truth, and decides who keeps the message:
//! - 250 when a server took it for every recipient, or for some, or the
//!   queue took it ("queued as ID"). Some recipients delivered and others
//!   refused for good is also 250: a 4xx or 5xx would have the client send
//!   it again to those who already got it. The text names the refused
//!   recipients, and they are handled as a piped message's are: the sender
//!   is mailed a failure notice, as with -oem (the default here, because a
//!   server that said 250 must tell the sender, RFC 5321 6.1), and
//!   dead.letter keeps the message for them unless a queue took it. A
//!   temporary failure that no queue will retry is in that notice too:
//!   after a 250 nobody else would hear of it.
//! - Otherwise (no one got it, no queue took it) the failure's own code:
//!   5xx when retrying cannot help (the recipient, its domain or the
//!   message was refused for good, 5.7.30 REQUIRETLS included), 4xx for
//!   everything else, failures of this machine included (its
//!   configuration, its credentials, a signal), so that fixing them does
//!   not cost the client the message. With any temporary failure among
//!   them the reply is 4xx: a retry may still reach those. The message is
//!   then the client's: it is neither saved nor mailed back.
//!
//! Standard output carries nothing but SMTP replies; everything tlsend
//! says goes to standard error, as for a piped message.
//!
//! The exit status: 0 after QUIT (each message's fate was in its reply),
//! and 0 when standard input ends between transactions (no message was
//! left unanswered); 75 when it ends inside a transaction (after MAIL,
//! before the reply to its final dot: that message was not sent) or when a
//! signal ended the dialogue; 74 when standard input or output fails.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Sent, say, send_message};
use crate::cli::{self, Action, Invocation, TlsModeFlag};
use crate::exit::Sysexit;
use crate::interrupt::Interrupts;
use crate::outcome::Failure;
use crate::smtp::{Notify, Ret};
use crate::smtpd::{self, Body, Delivery, End, Reply, Transaction};
use crate::status::{EnhancedCode, codes};

/// Where the mode of a message with REQUIRETLS on its MAIL FROM comes
/// from, in messages and in the queue.
pub(crate) const REQUIRETLS_SOURCE: &str = "REQUIRETLS on MAIL FROM (-bs)";

/// Runs the dialogue; returns the exit status.
pub(super) fn run(base: &Invocation) -> Sysexit {
    let (short, full) = crate::local::full_host_name();
    let host = full.unwrap_or(short);
    let mut serving = Serving {
        base,
        watch: Watch::start(),
    };
    let end = smtpd::serve(io::stdin().lock(), io::stdout().lock(), &host, &mut serving);
    match end {
        End::Quit | End::Eof { open: false } => Sysexit::Ok,
        End::Eof { open: true } => {
            say(
                "standard input ended in the middle of an SMTP transaction (before the reply to \
                 its final dot); that message was not sent",
            );
            Sysexit::TempFail
        }
        End::Stopped => {
            let name = serving
                .watch
                .stop
                .lock()
                .map(|name| name.unwrap_or("a signal"))
                .unwrap_or("a signal");
            say(&format!(
                "{name} received while a message was in hand: its reply was given, and the \
                 SMTP dialogue ends"
            ));
            Sysexit::TempFail
        }
        End::Io(e) => {
            say(&format!(
                "the SMTP dialogue on standard input and output failed: {e}"
            ));
            Sysexit::IoErr
        }
    }
}

struct Serving<'a> {
    base: &'a Invocation,
    watch: Watch,
}

impl Delivery for Serving<'_> {
    fn deliver(&mut self, transaction: &Transaction, data: &mut dyn Read) -> Reply {
        let invocation = invocation_for(self.base, transaction);
        let data = Marking {
            data,
            busy: &self.watch.busy,
        };
        reply_for(&send_message(&invocation, data, true))
    }

    fn stopping(&self) -> bool {
        // The reply is out: from now on a signal may end the dialogue at once.
        self.watch.busy.store(false, Ordering::SeqCst);
        self.watch.stop.lock().map_or(true, |name| name.is_some())
    }
}

/// The data of a message; marks the dialogue busy once the final dot was
/// read, when the message becomes tlsend's to deliver.
struct Marking<'a, 'b> {
    data: &'a mut (dyn Read + 'b),
    busy: &'a AtomicBool,
}

impl Read for Marking<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.busy.store(true, Ordering::SeqCst);
        }
        Ok(n)
    }
}

/// The invocation of one transaction: the command line's, with the
/// envelope and the parameters of MAIL and RCPT.
fn invocation_for(base: &Invocation, transaction: &Transaction) -> Invocation {
    let mut invocation = base.clone();
    invocation.action = Action::Send;
    // The null sender is written as "" (what `-f ""` means).
    invocation.sender = Some(transaction.sender.to_string());
    // MAIL FROM names the sender; --read-envelope-from would replace it
    // with the From field's address, which the client did not ask for.
    invocation.read_envelope_from = false;
    invocation.recipients = transaction
        .recipients
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    // RFC 3461 4.2: the client's ORCPT goes on with the recipient.
    invocation.orcpt = transaction
        .recipients
        .iter()
        .filter_map(|r| Some((r.address.to_string(), r.orcpt.clone()?)))
        .collect();
    invocation.extract_recipients = false;
    // The dialogue has undone dot-stuffing already; a "." line that is
    // left is part of the message.
    invocation.dot_ends_input = false;
    // RFC 8689 4.1: REQUIRETLS on MAIL FROM tags the message, whatever
    // its TLS-Required field says; without it the field decides
    // (policy::decide), unless the command line or the account chose.
    if transaction.requiretls {
        invocation.tls_mode = Some((TlsModeFlag::Require, REQUIRETLS_SOURCE.to_string()));
    }
    if let Some(body) = transaction.body {
        invocation.body = Some(match body {
            Body::SevenBit => cli::BodyType::SevenBit,
            Body::EightBitMime => cli::BodyType::EightBitMime,
        });
    }
    if let Some(ret) = transaction.ret {
        invocation.ret = Some(match ret {
            Ret::Full => cli::Ret::Full,
            Ret::Hdrs => cli::Ret::Hdrs,
        });
    }
    if let Some(envid) = &transaction.envid {
        invocation.envid = Some(envid.clone());
    }
    if let Some(notify) = transaction.notify {
        invocation.notify = Some(match notify {
            Notify::Never => cli::Notify::Never,
            Notify::On {
                success,
                failure,
                delay,
            } => cli::Notify::Some {
                success,
                failure,
                delay,
            },
        });
    }
    // A server that said 250 must tell the sender of a later failure
    // (RFC 5321 6.1): -oem unless the command line chose another mode.
    if invocation.error_mode.is_none() {
        invocation.error_mode = Some(cli::ErrorMode::Mail);
    }
    invocation
}

/// Names of recipients for a reply: at most three, then how many more.
fn names<'a>(list: impl IntoIterator<Item = &'a String>) -> String {
    let list: Vec<&String> = list.into_iter().collect();
    let shown: Vec<&str> = list.iter().take(3).map(|s| s.as_str()).collect();
    match list.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

/// The reply to the final dot for what became of the message.
fn reply_for(sent: &Sent) -> Reply {
    if sent.delivered.is_empty() && sent.queued.is_none() {
        // A temporary failure first: a retry may still reach that one.
        let chosen = sent
            .undelivered
            .iter()
            .find(|(_, failure)| !fails_for_good(failure))
            .or(sent.undelivered.first());
        return match chosen {
            Some((_, failure)) => failure_reply(failure),
            None => Reply::new(
                451,
                codes::STOPPED,
                format!(
                    "the message was not sent (exit status {})",
                    sent.exit.code()
                ),
            ),
        };
    }
    let mut parts = Vec::new();
    if !sent.delivered.is_empty() {
        parts.push(format!("delivered to {}", names(&sent.delivered)));
    }
    if !sent.undelivered.is_empty() {
        let (first, failure) = &sent.undelivered[0];
        let mut text = format!(
            "not delivered to {} ({}",
            names(sent.undelivered.iter().map(|(r, _)| r)),
            failure.classified.status
        );
        if sent.undelivered.len() == 1 || sent.undelivered.iter().all(|(_, f)| f == failure) {
            text.push_str(&format!(": {}", smtpd::one_line(&failure.detail, 120)));
        } else {
            text.push_str(&format!(" for {first}, and others"));
        }
        text.push(')');
        parts.push(text);
    }
    if let Some(queued) = &sent.queued {
        // Last, in Postfix's words, where clients look for the id.
        parts.push(format!(
            "queued as {} for {}",
            queued.id,
            names(&queued.recipients)
        ));
    }
    Reply::new(
        250,
        EnhancedCode::new(2, 0, 0),
        format!("Ok: {}", parts.join("; ")),
    )
}

/// Whether retrying cannot help: the recipient, its domain or the message
/// was refused for good. Failures of this machine and of the way there
/// (configuration, credentials, TLS, a signal) are temporary here: once
/// fixed, the client's retry goes through.
fn fails_for_good(failure: &Failure) -> bool {
    matches!(
        failure.classified.exit,
        Sysexit::NoUser
            | Sysexit::NoHost
            | Sysexit::Unavailable
            | Sysexit::DataErr
            | Sysexit::Usage
    ) && failure.classified.status.is_permanent()
}

/// A failure as a reply to the final dot (RFC 5321 4.3.2 lists 450, 451,
/// 452, 550, 552 and 554 there).
fn failure_reply(failure: &Failure) -> Reply {
    let mut status = failure.classified.status;
    if failure.classified.exit == Sysexit::DataErr && status == codes::LOCAL_FAILURE {
        // The message itself was refused (a NUL, a bare CR, a bad
        // TLS-Required field): 5.6.0, other media error.
        status = EnhancedCode::new(5, 6, 0);
    }
    let permanent = fails_for_good(failure);
    let status = status.with_class(if permanent { 5 } else { 4 });
    let code = match (permanent, status.subject, status.detail) {
        (true, 1 | 7, _) => 550,
        (true, 3, 4) | (true, 2, 2 | 3) => 552,
        (true, _, _) => 554,
        (false, 2, 2) | (false, 3, 1) => 452,
        (false, _, _) => 451,
    };
    let mut text = failure.detail.clone();
    if let Some(server) = &failure.server {
        text = format!("{server}: {text}");
    }
    if let Some(hint) = &failure.hint {
        text = format!("{text}; {hint}");
    }
    Reply::new(code, status, text)
}

/// Watches SIGTERM, SIGINT and SIGHUP for the whole dialogue. A signal
/// while no message is in tlsend's hands ends the process at once (75):
/// every message so far was answered, and one whose final dot was not read
/// yet was not accepted. While a message is being delivered the delivery
/// stops itself (FAIL7) and the dialogue ends after the reply, with 421.
/// Without this, the handlers the first delivery installs would leave
/// these signals caught for the rest of the process.
struct Watch {
    /// From the final dot to the reply: the message is tlsend's.
    busy: Arc<AtomicBool>,
    /// The signal that came while busy.
    stop: Arc<Mutex<Option<&'static str>>>,
}

impl Watch {
    fn start() -> Watch {
        let watch = Watch {
            busy: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(Mutex::new(None)),
        };
        let (busy, stop) = (watch.busy.clone(), watch.stop.clone());
        let (ready, watching) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start its runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut interrupts = match Interrupts::watch() {
                        Ok(interrupts) => interrupts,
                        Err(e) => {
                            let _ = ready.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    loop {
                        let name = interrupts.received().await;
                        if busy.load(Ordering::SeqCst) {
                            if let Ok(mut stop) = stop.lock() {
                                stop.get_or_insert(name);
                            }
                            continue;
                        }
                        say(&format!(
                            "{name} received: the SMTP dialogue ends; every message it took was \
                             answered"
                        ));
                        std::process::exit(i32::from(Sysexit::TempFail.code()));
                    }
                });
            });
        let problem = match started {
            Err(e) => Some(e.to_string()),
            Ok(_) => match watching.recv() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("it ended".to_string()),
            },
        };
        if let Some(problem) = problem {
            say(&format!(
                "warning: signals are not watched during the dialogue: {problem}"
            ));
        }
        watch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{Address, ReversePath};
    use crate::app::queue::Queued;
    use crate::exit::Classified;
    use crate::smtpd::Recipient;

    fn failure(status: EnhancedCode, exit: Sysexit, detail: &str) -> Failure {
        Failure {
            server: Some("mx.example:25".into()),
            classified: Classified { status, exit },
            detail: detail.into(),
            hint: None,
            session: None,
        }
    }

    fn sent(delivered: &[&str], queued: Option<&str>, undelivered: Vec<(&str, Failure)>) -> Sent {
        Sent {
            exit: Sysexit::Ok,
            delivered: delivered.iter().map(|s| s.to_string()).collect(),
            queued: queued.map(|id| Queued {
                id: id.into(),
                recipients: vec!["q@example.net".into()],
            }),
            undelivered: undelivered
                .into_iter()
                .map(|(r, f)| (r.to_string(), f))
                .collect(),
        }
    }

    // covers: IN13
    #[test]
    fn in13_final_dot_reply_tells_the_outcome() {
        let refused = failure(
            EnhancedCode::new(5, 1, 1),
            Sysexit::NoUser,
            "RCPT TO: no such user",
        );
        let later = failure(EnhancedCode::new(4, 4, 1), Sysexit::TempFail, "no answer");
        let requiretls = failure(
            codes::REQUIRETLS_NEEDED,
            Sysexit::Unavailable,
            "the server does not advertise REQUIRETLS",
        );
        let config = failure(codes::LOCAL_FAILURE, Sysexit::Config, "no such account");
        let data = failure(codes::LOCAL_FAILURE, Sysexit::DataErr, "line 2 holds a NUL");

        let all = reply_for(&sent(&["a@example.net"], None, vec![]));
        assert_eq!(all.to_string(), "250 2.0.0 Ok: delivered to a@example.net");
        let queued = reply_for(&sent(&[], Some("0ABC"), vec![]));
        assert_eq!(
            queued.to_string(),
            "250 2.0.0 Ok: queued as 0ABC for q@example.net"
        );
        let partial = reply_for(&sent(
            &["a@example.net"],
            None,
            vec![("b@example.net", refused.clone())],
        ));
        assert_eq!(
            partial.to_string(),
            "250 2.0.0 Ok: delivered to a@example.net; not delivered to b@example.net \
             (5.1.1: RCPT TO: no such user)"
        );
        let cases = [
            (
                vec![("b@example.net", refused.clone())],
                "550 5.1.1 mx.example:25: RCPT TO",
            ),
            (
                vec![("b@example.net", requiretls)],
                "550 5.7.30 mx.example:25: the server",
            ),
            (
                vec![("b@example.net", refused), ("c@example.net", later)],
                "451 4.4.1 mx.example:25: no answer",
            ),
            (vec![("b@example.net", config)], "451 4.3.0 "),
            (vec![("b@example.net", data)], "554 5.6.0 "),
        ];
        for (undelivered, expected) in cases {
            let reply = reply_for(&sent(&[], None, undelivered)).to_string();
            assert!(reply.starts_with(expected), "{reply}");
        }
        let many: Vec<String> = (0..5).map(|i| format!("r{i}@example.net")).collect();
        assert_eq!(
            names(&many),
            "r0@example.net, r1@example.net, r2@example.net and 2 more"
        );
    }

    // covers: IN13
    #[test]
    fn in13_transaction_parameters_reach_the_invocation() {
        let base = cli::parse_from([
            "sendmail",
            "-bs",
            "--tls-optional",
            "-R",
            "full",
            "--read-envelope-from",
        ])
        .unwrap();
        let transaction = Transaction {
            sender: ReversePath::Null,
            size: Some(10),
            body: Some(Body::EightBitMime),
            smtputf8: false,
            requiretls: true,
            ret: None,
            envid: Some("id 1".into()),
            notify: Some(Notify::Never),
            recipients: vec![Recipient {
                address: Address::parse("\"a b\"@example.net").unwrap(),
                orcpt: None,
            }],
        };
        let invocation = invocation_for(&base, &transaction);
        assert_eq!(invocation.action, Action::Send);
        assert_eq!(invocation.sender.as_deref(), Some(""));
        // MAIL FROM is the envelope sender, not the message's From field.
        assert!(!invocation.read_envelope_from);
        assert_eq!(invocation.recipients, ["\"a b\"@example.net"]);
        assert!(!invocation.dot_ends_input);
        assert_eq!(
            invocation.tls_mode,
            Some((TlsModeFlag::Require, REQUIRETLS_SOURCE.to_string()))
        );
        assert_eq!(invocation.body, Some(cli::BodyType::EightBitMime));
        assert_eq!(
            invocation.ret,
            Some(cli::Ret::Full),
            "the command line's when MAIL has none"
        );
        assert_eq!(invocation.envid.as_deref(), Some("id 1"));
        assert_eq!(invocation.notify, Some(cli::Notify::Never));
        assert_eq!(invocation.error_mode, Some(cli::ErrorMode::Mail));
        // Without REQUIRETLS the command line's mode stands.
        let plain = Transaction {
            requiretls: false,
            ..transaction
        };
        assert_eq!(
            invocation_for(&base, &plain).tls_mode,
            Some((TlsModeFlag::Optional, "--tls-optional".to_string()))
        );
    }
}
