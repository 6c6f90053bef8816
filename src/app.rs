//! One run of tlsend. [`run`] parses the command line, reads the whole
//! message (IN11: before any connection), loads the configuration, decides
//! the TLS mode, edits the header, delivers, reports one line per failure,
//! and saves a message that was not sent to dead.letter (FAIL3), whatever
//! stopped it. It returns the exit status; `main` alone exits.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::address::{Address, ReversePath};
use crate::cli::{self, Action, CliError, Invocation};
use crate::config;
use crate::deadletter;
use crate::deliver::{self, Security};
use crate::exit::{Line, Sysexit};
use crate::message::{self, Header, Input, InputOptions, compose};
use crate::outcome::Outcome;
use crate::policy::{self, Decision, HeaderEdit, Mode};
use crate::request::{self, Request, RequestError};
use crate::smtp::{Content, Credentials, Envelope, Ret, Transcript};
use crate::tls::TlsClient;

/// Runs tlsend with these arguments (argv[0] included) and returns the exit status.
pub fn run(argv: Vec<OsString>) -> Sysexit {
    let invocation = match cli::parse_from(argv) {
        Ok(invocation) => invocation,
        Err(CliError::Help(text)) | Err(CliError::Version(text)) => {
            let _ = io::stdout().write_all(text.as_bytes());
            return Sysexit::Ok;
        }
        Err(CliError::Usage(text)) => {
            say(&text);
            return Sysexit::Usage;
        }
    };
    match invocation.action {
        Action::Send => send(&invocation, io::stdin().lock()),
        // tlsend keeps no queue yet: nothing is ever waiting in one.
        Action::ListQueue => {
            let _ = writeln!(io::stdout(), "Mail queue is empty");
            Sysexit::Ok
        }
        Action::FlushQueue | Action::InitAliases | Action::Nothing => Sysexit::Ok,
        Action::SmtpStdio => {
            say(
                "-bs (an SMTP dialogue on standard input) is not supported yet; pipe the message to tlsend instead",
            );
            Sysexit::Usage
        }
    }
}

/// Writes one `tlsend: …` line to stderr; a closed stderr is not an error
/// worth dying for.
fn say(text: &str) {
    let _ = writeln!(io::stderr(), "{}", Line(&text));
}

/// A stop before delivery: what to print and the exit status.
struct Stop {
    exit: Sysexit,
    message: String,
}

impl Stop {
    fn new(exit: Sysexit, message: impl Into<String>) -> Stop {
        Stop {
            exit,
            message: message.into(),
        }
    }
}

impl From<RequestError> for Stop {
    fn from(e: RequestError) -> Stop {
        match e {
            RequestError::Usage(text) => Stop::new(Sysexit::Usage, text),
            RequestError::Config(text) => Stop::new(Sysexit::Config, text),
        }
    }
}

/// The message, ready to go: envelope, edited header, mode.
struct Prepared {
    request: Request,
    envelope: Envelope,
    header: Header,
    decision: Decision,
}

fn send(invocation: &Invocation, stdin: impl Read) -> Sysexit {
    let options = InputOptions {
        dot_ends_input: invocation.dot_ends_input,
        ..InputOptions::default()
    };
    let input = match message::read(stdin, &options) {
        Ok(input) => input,
        Err(e) => {
            say(&format!(
                "reading the message from standard input failed: {e}; nothing was sent"
            ));
            return Sysexit::IoErr;
        }
    };
    let env = |key: &str| std::env::var_os(key);
    let host_name = gethostname::gethostname().to_string_lossy().into_owned();
    let verbose = invocation.verbose > 0;
    if verbose && !invocation.ignored.is_empty() {
        say(&format!(
            "accepted and ignored (sendmail compatibility): {}",
            invocation.ignored.join(" ")
        ));
    }

    let mut dead_letter = None;
    let (exit, sender) = match prepare(invocation, &input, &env, &host_name, &mut dead_letter) {
        Err(stop) => {
            say(&stop.message);
            (stop.exit, invocation.sender.clone().unwrap_or_default())
        }
        Ok(prepared) => {
            let sender = prepared.envelope.sender.to_string();
            match deliver_prepared(&prepared, &input, verbose) {
                Err(stop) => {
                    say(&stop.message);
                    (stop.exit, sender)
                }
                Ok(outcome) => {
                    report(&outcome, verbose);
                    (outcome.exit_status(), sender)
                }
            }
        }
    };
    if exit != Sysexit::Ok {
        save_dead_letter(&input, dead_letter, &sender, &env);
    }
    exit
}

fn prepare(
    invocation: &Invocation,
    input: &Input,
    env: &dyn Fn(&str) -> Option<OsString>,
    host_name: &str,
    dead_letter: &mut Option<PathBuf>,
) -> Result<Prepared, Stop> {
    // IN9 and friends: a malformed message is refused before anything else.
    if let Some(problem) = &input.problem {
        return Err(Stop::new(
            Sysexit::DataErr,
            format!("the message was refused: {problem}; nothing was sent"),
        ));
    }
    let config = config::load(invocation.config_file.as_deref())
        .map_err(|e| Stop::new(Sysexit::Config, e.to_string()))?;
    dead_letter.clone_from(&config.dead_letter);
    let request = request::build(invocation, &config, env, host_name)?;

    let mut header = Header::parse(&input.header_block).map_err(|e| {
        Stop::new(
            Sysexit::DataErr,
            format!("the message header was refused: {e}"),
        )
    })?;
    let tls_required: Vec<&[u8]> = header.all("TLS-Required").map(|f| f.raw_value()).collect();
    let decision = policy::decide(
        request.mode_flag.as_ref(),
        request.configured_mode.as_ref(),
        &tls_required,
    )
    .map_err(|e| Stop::new(Sysexit::DataErr, e.to_string()))?;

    let recipients = recipients(invocation, &header, &request.qualify_domain)?;

    // Bcc never leaves this machine (IN3; msmtp and Postfix do the same).
    header.remove_all("Bcc");
    match decision.edit {
        HeaderEdit::Keep => {}
        HeaderEdit::RemoveTlsRequired => {
            header.remove_all("TLS-Required");
            say(&format!(
                "warning: the message's TLS-Required field was removed: the mode is require ({}), \
                 and the REQUIRETLS parameter takes precedence over the field (RFC 8689 4.1)",
                decision.reason
            ));
        }
        HeaderEdit::InsertTlsRequiredNo => append(&mut header, "TLS-Required", "No")?,
    }
    add_missing_fields(&mut header, &request)?;

    let mut dsn = request.dsn.clone();
    if decision.mode == Mode::Require && dsn.ret == Some(Ret::Full) {
        // FAIL5, RFC 8689 section 5: a bounce of a REQUIRETLS message carries headers only.
        dsn.ret = Some(Ret::Hdrs);
        say(
            "warning: -R full was sent as RET=HDRS: bounces of require-mode messages carry headers only (RFC 8689 section 5)",
        );
    }
    let envelope = Envelope {
        sender: request.sender.clone(),
        recipients,
        content: Content {
            eight_bit: input.eight_bit_header || input.eight_bit_body,
            utf8_header: input.eight_bit_header,
            declared_8bitmime: request.declared_8bitmime,
        },
        size: Some(header.len() as u64 + 2 + input.body_len()),
        dsn,
    };
    Ok(Prepared {
        request,
        envelope,
        header,
        decision,
    })
}

/// Command-line recipients, plus those of To, Cc and Bcc with -t (IN3),
/// qualified and without duplicates.
fn recipients(
    invocation: &Invocation,
    header: &Header,
    qualify_domain: &str,
) -> Result<Vec<Address>, Stop> {
    let mut found = Vec::new();
    for argument in &invocation.recipients {
        let list = message::parse_address_list(argument)
            .map_err(|e| Stop::new(Sysexit::Usage, format!("recipient {argument:?}: {e}")))?;
        found.extend(list);
    }
    if invocation.extract_recipients {
        let list = header
            .recipients()
            .map_err(|e| Stop::new(Sysexit::DataErr, format!("-t: {e}")))?;
        found.extend(list);
    }
    let mut unique: Vec<Address> = Vec::with_capacity(found.len());
    for address in found {
        let address = address.qualify(qualify_domain).map_err(|e| {
            Stop::new(
                Sysexit::Config,
                format!("qualify_domain {qualify_domain:?}: {e}"),
            )
        })?;
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    if unique.is_empty() {
        return Err(if invocation.extract_recipients {
            Stop::new(
                Sysexit::DataErr,
                "-t: the message has no recipient in To, Cc or Bcc, and none was given",
            )
        } else {
            Stop::new(
                Sysexit::Usage,
                "no recipients: name them as arguments, or use -t to take them from the message",
            )
        });
    }
    Ok(unique)
}

/// IN7: Date, Message-ID and From for a message without them.
fn add_missing_fields(header: &mut Header, request: &Request) -> Result<(), Stop> {
    let now = chrono::Local::now().fixed_offset();
    if !header.contains("Date") {
        append(header, "Date", &compose::date_value(now))?;
    }
    let from_address = match &request.sender {
        ReversePath::Address(a) => a.clone(),
        ReversePath::Null => Address::from_parts("MAILER-DAEMON", Some(&request.qualify_domain))
            .map_err(|e| Stop::new(Sysexit::Config, format!("qualify_domain: {e}")))?,
    };
    if !header.contains("Message-ID") {
        let mut random = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
            |_| {
                Stop::new(
                    Sysexit::Software,
                    "the system's random number generator failed",
                )
            },
        )?;
        let domain = from_address.domain().unwrap_or(&request.qualify_domain);
        append(
            header,
            "Message-ID",
            &compose::message_id_value(now, &random, domain),
        )?;
    }
    if !header.contains("From") {
        let value = compose::from_value(request.full_name.as_deref(), &from_address)
            .map_err(|e| Stop::new(Sysexit::Usage, format!("-F: {e}")))?;
        append(header, "From", &value)?;
    }
    Ok(())
}

fn append(header: &mut Header, name: &str, value: &str) -> Result<(), Stop> {
    header
        .append(name, value)
        .map_err(|e| Stop::new(Sysexit::Software, format!("adding {name}: {e}")))
}

fn deliver_prepared(prepared: &Prepared, input: &Input, verbose: bool) -> Result<Outcome, Stop> {
    let request = &prepared.request;
    let transcript = if verbose {
        Transcript::new("tlsend: ", |line: &str| {
            let _ = writeln!(io::stderr(), "{line}");
        })
    } else {
        Transcript::off()
    };
    transcript.note(&format!(
        "TLS mode {} ({}); {} via {}",
        prepared.decision.mode,
        prepared.decision.reason,
        describe_envelope(&prepared.envelope),
        request.submission.server()
    ));

    let tls = match (&request.trust, request.submission.security) {
        (Some(trust), Security::StartTls | Security::Implicit) => Some(
            TlsClient::new(trust.clone()).map_err(|e| Stop::new(Sysexit::Config, e.to_string()))?,
        ),
        _ => None,
    };
    let mut submission = request.submission.clone();
    if let Some(login) = &request.login {
        let secret = login
            .secret
            .fetch()
            .map_err(|e| Stop::new(Sysexit::Config, e.to_string()))?;
        submission.credentials = Some((
            Credentials::new(login.user.clone(), secret.expose()),
            login.choice,
        ));
    }

    let open = || -> io::Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> {
        Ok(Box::new(message::message_reader(&prepared.header, input)?))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Stop::new(
                Sysexit::Software,
                format!("cannot start the I/O runtime: {e}"),
            )
        })?;
    Ok(runtime.block_on(deliver::submit(
        &submission,
        tls.as_ref(),
        &prepared.envelope,
        prepared.decision.mode,
        &open,
        &transcript,
    )))
}

fn describe_envelope(envelope: &Envelope) -> String {
    let recipients: Vec<String> = envelope.recipients.iter().map(|r| r.to_string()).collect();
    format!("from <{}> to {}", envelope.sender, recipients.join(", "))
}

/// One line per distinct failure (FAIL2, UX5); with -v, one per delivery.
fn report(outcome: &Outcome, verbose: bool) {
    if verbose {
        for r in &outcome.recipients {
            if let Ok(accepted) = &r.result {
                say(&format!(
                    "{}: sent via {}: {}",
                    r.recipient, accepted.server, accepted.reply
                ));
            }
        }
    }
    for (failure, recipients) in outcome.grouped_failures() {
        say(&format!("{}: {failure}", deliver::list(&recipients)));
    }
}

/// FAIL3 without a queue: whatever stopped the message, keep it.
fn save_dead_letter(
    input: &Input,
    configured: Option<PathBuf>,
    sender: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) {
    let home = crate::user::home_dir(env);
    let Some(path) =
        configured.or_else(|| deadletter::default_path(home.as_deref().map(|h| h.as_os_str())))
    else {
        say(
            "the message could not be saved: no home directory is known and no dead_letter file is configured; it is lost",
        );
        return;
    };
    let date = chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string();
    let saved = input
        .raw_reader()
        .and_then(|reader| deadletter::save(&path, sender, &date, reader));
    match saved {
        Ok(()) => say(&format!("the message was saved to {}", path.display())),
        Err(e) => say(&format!(
            "the message could not be saved to {}: {e}; it is lost",
            path.display()
        )),
    }
}
