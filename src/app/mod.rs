//! One run of tlsend. [`run`] parses the command line, reads the whole
//! message (IN11: before any connection), loads the configuration, decides
//! the TLS mode, edits the header, delivers, reports one line per
//! recipient when not all got the message (FAIL8), and saves a message that
//! was not delivered to everyone to dead.letter (FAIL3), naming the
//! recipients that did not get it, whatever stopped it: a refusal, a
//! signal or a panic (FAIL7). It returns the exit status; `main` alone exits.

mod check;
mod direct;
mod local;
mod queue;
mod serve;
mod submission;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use crate::address::{Address, ReversePath};
use crate::cli::{self, Action, CliError, Invocation};
use crate::config;
use crate::deadletter;
use crate::deliver::Job;
use crate::exit::{Classified, Line, Sysexit};
use crate::fault;
use crate::interrupt::Interrupts;
use crate::log::{Disposition, Log, LogSettings, Record};
use crate::message::{self, Header, Input, InputOptions, compose};
use crate::outcome::{Failure, Outcome, Progress};
use crate::policy::{self, Decision, HeaderEdit, Mode};
use crate::request::{self, Delivery, Request, RequestError};
use crate::smtp::{Content, Envelope, Ret, Transcript};
use crate::status::{EnhancedCode, codes};

/// Runs tlsend with these arguments (argv[0] included) and returns the exit status.
pub fn run(argv: Vec<OsString>) -> Sysexit {
    panic::set_hook(Box::new(|info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        say(&format!(
            "internal error (a bug in tlsend, please report it): {}{at}",
            text.escape_debug()
        ));
    }));
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
        Action::ListQueue => guarded(|| queue::list(&invocation)),
        Action::RunQueue => guarded(|| queue::run(&invocation)),
        Action::RemoveQueued => guarded(|| queue::remove(&invocation)),
        Action::InitAliases => guarded(|| local::check_aliases(&invocation)),
        Action::Nothing => Sysexit::Ok,
        Action::CheckConfig => guarded(|| check::check_config(&invocation)),
        Action::CheckServer => guarded(|| check::check_server(&invocation)),
        Action::SmtpStdio => serve::run(&invocation),
    }
}

/// Runs a queue command; a panic (reported by the hook) is exit 70, and
/// leaves every entry as it was on disk: locks die with their files.
fn guarded(command: impl FnOnce() -> Sysexit) -> Sysexit {
    panic::catch_unwind(AssertUnwindSafe(command)).unwrap_or(Sysexit::Software)
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
pub(crate) struct Prepared {
    request: Request,
    envelope: Envelope,
    header: Header,
    decision: Decision,
}

/// What is known about the message while it is being handled, so that it
/// can be saved whatever stops the run.
struct Keep {
    /// The envelope sender, as given with -f until one is decided.
    sender: String,
    dead_letter: Option<PathBuf>,
    /// The recipients, once they are known.
    recipients: Vec<Address>,
    /// Per-recipient results as servers answer.
    progress: Progress,
    /// The queue's settings, once the configuration is read.
    queue: config::QueueSettings,
    /// The message is queued without a try (-odq, `queue = "always"`).
    queue_only: bool,
    /// The message as it is to be sent, once it is: what the queue keeps.
    queueable: Option<queue::Queueable>,
    /// What the log lines of this run say, once the configuration is read.
    log: Option<LogContext>,
    /// An SMTP client (-bs) is told the outcome in the reply to its final
    /// dot: a message that no one got and no queue took stays the
    /// client's, so it is neither saved nor mailed back.
    answering: bool,
}

/// The parts of the log lines (UX6) that are the same for every recipient.
struct LogContext {
    settings: LogSettings,
    account: Option<String>,
    /// The submission server; MX hosts are named by each outcome.
    host: Option<String>,
    /// The mode and why, once decided.
    mode: Option<(Mode, String)>,
}

impl Keep {
    /// The undelivered recipients when the run stopped for `why`, with
    /// whatever servers had already answered kept: the command-line
    /// arguments as typed when no recipient list was made yet.
    fn undelivered(&self, invocation: &Invocation, why: &Failure) -> Undelivered {
        if self.recipients.is_empty() {
            return invocation
                .recipients
                .iter()
                .map(|r| (r.clone(), why.clone()))
                .collect();
        }
        undelivered(&self.progress.stopped(&self.recipients, why))
    }
}

/// The recipients that did not get the message, as given, each with why.
type Undelivered = Vec<(String, Failure)>;

fn undelivered(outcome: &Outcome) -> Undelivered {
    outcome
        .undelivered()
        .map(|(recipient, failure)| (recipient.to_string(), failure.clone()))
        .collect()
}

/// A failure of tlsend itself or of this run, not of a server.
fn local_failure(status: EnhancedCode, exit: Sysexit, detail: impl Into<String>) -> Failure {
    Failure {
        server: None,
        classified: Classified { status, exit },
        detail: detail.into(),
        hint: None,
        session: None,
    }
}

fn send(invocation: &Invocation, stdin: impl Read) -> Sysexit {
    send_message(invocation, stdin, false).exit
}

/// What became of one message.
pub(crate) struct Sent {
    /// The exit status a piped run ends with.
    pub exit: Sysexit,
    /// The recipients a server took the message for.
    pub delivered: Vec<String>,
    /// The queue entry that holds the message for the others, if one does.
    pub queued: Option<queue::Queued>,
    /// The recipients that neither got it nor are queued, each with why.
    pub undelivered: Undelivered,
}

/// Reads one message from `stdin` and delivers it (or queues it, or saves
/// it); `answering` for an SMTP client that is told the outcome.
fn send_message(invocation: &Invocation, stdin: impl Read, answering: bool) -> Sent {
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
            let why = local_failure(
                codes::STOPPED,
                Sysexit::IoErr,
                format!("the message could not be read: {e}"),
            );
            return Sent {
                exit: Sysexit::IoErr,
                delivered: Vec::new(),
                queued: None,
                undelivered: invocation
                    .recipients
                    .iter()
                    .map(|r| (r.clone(), why.clone()))
                    .collect(),
            };
        }
    };
    if let Some(note) = &input.spool_fallback {
        say(&format!("warning: {note}"));
    }
    let env = |key: &str| std::env::var_os(key);
    // From here on the message is in tlsend's hands: nothing may lose it.
    let mut keep = Keep {
        sender: invocation.sender.clone().unwrap_or_default(),
        dead_letter: None,
        recipients: Vec::new(),
        progress: Progress::default(),
        queue: config::QueueSettings::default(),
        queue_only: invocation.delivery == Some(cli::DeliveryMode::Queue),
        queueable: None,
        log: None,
        answering,
    };
    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
        handle(invocation, &input, &env, &mut keep)
    }));
    let (exit, undelivered) = match ran {
        Ok(finished) => finished,
        Err(_) => {
            // The hook has printed what went wrong.
            let why = local_failure(
                codes::STOPPED,
                Sysexit::Software,
                "tlsend stopped on an internal error",
            );
            (Sysexit::Software, keep.undelivered(invocation, &why))
        }
    };
    let log = Log::new();
    // A set: a message to 100,000 recipients must not cost their square.
    let not_delivered: std::collections::HashSet<&str> =
        undelivered.iter().map(|(u, _)| u.as_str()).collect();
    let delivered: Vec<String> = keep
        .recipients
        .iter()
        .map(|r| r.to_string())
        .filter(|r| !not_delivered.contains(r.as_str()))
        .collect();
    if exit == Sysexit::Ok {
        log_run(&log, &keep, &undelivered, None);
        return Sent {
            exit,
            delivered,
            queued: None,
            undelivered,
        };
    }
    let (exit, queued, left) =
        queue::keep_for_later(invocation, &input, &keep, exit, undelivered.clone(), &env);
    log_run(
        &log,
        &keep,
        &undelivered,
        queued.as_ref().map(|q| q.id.as_str()),
    );
    let told = answering && delivered.is_empty() && queued.is_none();
    if let Some(undelivered) = &left
        && !told
    {
        let undelivered = undelivered
            .iter()
            .map(|(recipient, failure)| (recipient.clone(), failure.to_string()))
            .collect();
        save_dead_letter(&input, &keep, undelivered, &env);
    }
    Sent {
        exit,
        delivered,
        queued,
        undelivered: left.unwrap_or_default(),
    }
}

/// Everything after the message was read: the exit status, and the
/// recipients that did not get the message, each with why.
fn handle(
    invocation: &Invocation,
    input: &Input,
    env: &dyn Fn(&str) -> Option<OsString>,
    keep: &mut Keep,
) -> (Sysexit, Undelivered) {
    let runtime = match io_runtime() {
        Ok(runtime) => runtime,
        Err(stop) => return stopped(invocation, keep, stop),
    };
    let finished = handle_in(&runtime, invocation, input, env, keep);
    // A password command that hangs is left behind, not waited for: the
    // run is over and the message is to be saved.
    runtime.shutdown_background();
    finished
}

/// The single-threaded runtime every network step of a run uses.
fn io_runtime() -> Result<tokio::runtime::Runtime, Stop> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Stop::new(
                Sysexit::Software,
                format!("cannot start the I/O runtime: {e}"),
            )
        })
}

/// A stop before or outside delivery: said, and every recipient undelivered.
fn stopped(invocation: &Invocation, keep: &Keep, stop: Stop) -> (Sysexit, Undelivered) {
    say(&stop.message);
    let status = if stop.exit == Sysexit::TempFail {
        codes::STOPPED
    } else {
        codes::LOCAL_FAILURE
    };
    let why = local_failure(status, stop.exit, stop.message);
    (stop.exit, keep.undelivered(invocation, &why))
}

fn handle_in(
    runtime: &tokio::runtime::Runtime,
    invocation: &Invocation,
    input: &Input,
    env: &dyn Fn(&str) -> Option<OsString>,
    keep: &mut Keep,
) -> (Sysexit, Undelivered) {
    let stopped = |keep: &Keep, stop: Stop| stopped(invocation, keep, stop);
    // FAIL7: from now on these signals stop the delivery instead of the
    // process, so the message can be saved.
    let mut interrupts = {
        let _entered = runtime.enter();
        match Interrupts::watch() {
            Ok(interrupts) => interrupts,
            Err(e) => {
                let stop = Stop::new(Sysexit::Software, format!("cannot watch for signals: {e}"));
                return stopped(keep, stop);
            }
        }
    };
    let (host_name, full_host_name) = crate::local::full_host_name();
    let verbose = invocation.verbose > 0;
    if verbose && !invocation.ignored.is_empty() {
        say(&format!(
            "accepted and ignored (sendmail compatibility): {}",
            invocation.ignored.join(" ")
        ));
    }
    let host = (host_name.as_str(), full_host_name.as_deref());
    let prepared = match prepare(invocation, input, env, host, keep) {
        Ok(prepared) => prepared,
        Err(stop) => return stopped(keep, stop),
    };
    keep.sender = prepared.envelope.sender.to_string();
    keep.recipients.clone_from(&prepared.envelope.recipients);
    keep.queueable = Some(queue::Queueable::new(&prepared, invocation));
    fault::point("before-delivery");
    keep.queue_only = queue::queued_without_trying(&keep.queue, invocation.delivery);
    if keep.queue_only {
        // Queued without trying; `keep_for_later` does it.
        let why = local_failure(
            codes::STOPPED,
            Sysexit::TempFail,
            if invocation.delivery == Some(cli::DeliveryMode::Queue) {
                "not tried: -odq asks for the message to be queued"
            } else {
                "not tried: queue = \"always\" hands every message to the queue runner"
            },
        );
        return (
            Sysexit::TempFail,
            undelivered(&keep.progress.stopped(&keep.recipients, &why)),
        );
    }
    let transcript = transcript(verbose);
    if let (Some(name), Some(why)) = (&prepared.request.account, &prepared.request.account_why) {
        transcript.note(&format!("using account \"{name}\" ({why})"));
    }
    transcript.note(&format!(
        "TLS mode {} ({}); {}",
        prepared.decision.mode,
        prepared.decision.reason,
        describe_envelope(&prepared.envelope),
    ));
    let header = &prepared.header;
    let open = move || -> io::Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> {
        Ok(Box::new(message::message_reader(header, input)?))
    };
    let job = Job {
        envelope: &prepared.envelope,
        mode: prepared.decision.mode,
        bounce: false,
        open_message: &open,
        progress: &keep.progress,
        pool: None,
    };
    let route = match Route::ready(runtime, &mut interrupts, &prepared.request, &transcript) {
        Ok(route) => route,
        Err(Halt::Signal(name)) => {
            return interrupted(keep, name, Interrupted::BeforeConnecting, verbose);
        }
        Err(Halt::Stop(stop)) => return stopped(keep, stop),
    };
    let mut delivery = Box::pin(route.deliver(job, &transcript));
    let delivered = runtime.block_on(interrupts.unless_interrupted(&mut delivery));
    let name = match delivered {
        Ok(outcome) => {
            report(&outcome, verbose);
            drop(delivery);
            if invocation.error_mode == Some(cli::ErrorMode::Mail)
                && (!keep.answering || queue::answer_is_250(&outcome, keep, invocation, env))
            {
                queue::mail_back(
                    runtime,
                    &mut interrupts,
                    &route,
                    keep,
                    input,
                    &outcome,
                    invocation,
                    &host_name,
                    env,
                    &transcript,
                );
            }
            return (outcome.exit_status(), undelivered(&outcome));
        }
        Err(name) => name,
    };
    if !keep.progress.verdict().is_pending() {
        drop(delivery);
        return interrupted(keep, name, Interrupted::DuringDelivery, verbose);
    }
    // A server may already hold the whole message: dropping the connection
    // now would leave unknown whether it took it, and a resend could
    // deliver it twice. Wait for the pending verdicts (at most the
    // end-of-data timeout) and start nothing new; a second signal stops
    // even that.
    say(&format!(
        "{name} received while the server was taking the message: waiting for its verdict; \
         a second signal stops at once"
    ));
    keep.progress.request_stop();
    let verdicts = async {
        tokio::select! {
            outcome = &mut delivery => Some(outcome),
            () = settled(keep.progress.verdict()) => None,
        }
    };
    match runtime.block_on(interrupts.unless_interrupted(verdicts)) {
        Err(second) => {
            drop(delivery);
            interrupted(keep, second, Interrupted::AwaitingVerdict, verbose)
        }
        Ok(Some(outcome)) => {
            report(&outcome, verbose);
            (outcome.exit_status(), undelivered(&outcome))
        }
        Ok(None) => {
            // Every verdict is in and recorded; whatever else was under way
            // (another domain's hosts) is abandoned.
            drop(delivery);
            interrupted(keep, name, Interrupted::AfterVerdicts, verbose)
        }
    }
}

/// Resolves once no session of the delivery awaits a verdict.
async fn settled(verdict: &crate::smtp::VerdictPending) {
    while verdict.is_pending() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Why the run ends before delivery.
enum Halt {
    Signal(&'static str),
    Stop(Stop),
}

/// Where the message goes, ready to deliver.
enum Route<'a> {
    Submission(submission::Ready),
    Direct(direct::Wiring<'a>),
}

impl<'a> Route<'a> {
    /// The route the request names, ready to deliver: the submission
    /// server's TLS client and secret, or the resolver for direct delivery.
    fn ready(
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        request: &'a Request,
        transcript: &Transcript,
    ) -> Result<Route<'a>, Halt> {
        match &request.delivery {
            Delivery::Submission {
                submission,
                trust,
                login,
            } => {
                transcript.note(&format!("submitting to {}", submission.server()));
                submission::Ready::new(runtime, interrupts, submission, trust, login)
                    .map(Route::Submission)
            }
            Delivery::Direct(direct) => {
                transcript.note(&format!(
                    "delivering directly to the MX hosts ({})",
                    direct.reason
                ));
                let wiring = direct::Wiring::new(direct);
                match runtime.block_on(interrupts.unless_interrupted(wiring)) {
                    Ok(Ok(wiring)) => {
                        transcript.note(&format!(
                            "DNSSEC status from {}",
                            wiring.resolver.describe()
                        ));
                        Ok(Route::Direct(wiring))
                    }
                    Ok(Err(stop)) => Err(Halt::Stop(stop)),
                    Err(name) => Err(Halt::Signal(name)),
                }
            }
        }
    }

    async fn deliver(&self, job: Job<'_>, transcript: &Transcript) -> Outcome {
        match self {
            Route::Submission(ready) => ready.deliver(job, transcript).await,
            Route::Direct(wiring) => wiring.deliver(job, transcript).await,
        }
    }
}

/// Where a signal stopped the run.
enum Interrupted {
    BeforeConnecting,
    DuringDelivery,
    /// After the whole message was sent, before the server's verdict.
    AwaitingVerdict,
    /// After the pending verdicts came in.
    AfterVerdicts,
}

/// FAIL7: the run was stopped by `name`; what servers had answered for
/// stands, every other recipient did not get the message (or, after the
/// final dot, may have).
fn interrupted(
    keep: &Keep,
    name: &str,
    when: Interrupted,
    verbose: bool,
) -> (Sysexit, Undelivered) {
    let (said, detail) = match when {
        Interrupted::BeforeConnecting => (
            "nothing was sent",
            format!("tlsend was stopped by {name} before it connected"),
        ),
        Interrupted::DuringDelivery => (
            "the delivery was abandoned and the connection closed",
            format!("tlsend was stopped by {name} before the server took the message"),
        ),
        Interrupted::AwaitingVerdict => (
            "the connection was closed before the server's verdict",
            format!(
                "tlsend was stopped by {name} after sending the whole message and before the \
                 server's verdict: the server may have taken it"
            ),
        ),
        Interrupted::AfterVerdicts => (
            "the pending verdicts came in; the rest of the delivery was abandoned",
            format!("tlsend was stopped by {name} before a server took the message"),
        ),
    };
    let why = local_failure(codes::STOPPED, Sysexit::TempFail, detail);
    let outcome = keep.progress.stopped(&keep.recipients, &why);
    if outcome.all_accepted() {
        // The signal came too late to stop anything: every server answered.
        report(&outcome, verbose);
        return (Sysexit::Ok, Vec::new());
    }
    say(&format!("{name} received: {said}"));
    report(&outcome, verbose);
    (Sysexit::TempFail, undelivered(&outcome))
}

fn prepare(
    invocation: &Invocation,
    input: &Input,
    env: &dyn Fn(&str) -> Option<OsString>,
    host: (&str, Option<&str>),
    keep: &mut Keep,
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
    keep.dead_letter.clone_from(&config.dead_letter);
    keep.queue = config.queue.clone();

    let mut header = Header::parse(&input.header_block).map_err(|e| {
        Stop::new(
            Sysexit::DataErr,
            format!("the message header was refused: {e}"),
        )
    })?;
    let from_field = if invocation.read_envelope_from {
        Some(envelope_from_field(&header)?)
    } else {
        None
    };
    let with_from_field;
    let invocation = match &from_field {
        Some(field) => {
            with_from_field = field.with(invocation);
            &with_from_field
        }
        None => invocation,
    };
    let request = request::build(invocation, &config, env, host)?;
    let host_names: Vec<&str> = [Some(host.0), host.1].into_iter().flatten().collect();
    let from_policy = from_policy(&request, &host_names);
    let sender = match (&from_field, from_policy.account_from) {
        // The From that --read-envelope-from read is system mail the
        // account rewrites: the envelope takes the same address as the
        // header, not the local one.
        (Some(field), Some(account_from)) if from_policy.rewrites(&field.0) => {
            ReversePath::Address(account_from.clone())
        }
        _ => request.sender.clone()?,
    };
    keep.log = Some(LogContext {
        settings: request.log.clone(),
        account: request.account.clone(),
        host: match &request.delivery {
            Delivery::Submission { submission, .. } => Some(submission.server()),
            Delivery::Direct(_) => None,
        },
        mode: None,
    });

    let tls_required: Vec<&[u8]> = header.all("TLS-Required").map(|f| f.raw_value()).collect();
    let decision = policy::decide(
        request.mode_flag.as_ref(),
        request.configured_mode.as_ref(),
        &tls_required,
    )
    .map_err(|e| Stop::new(Sysexit::DataErr, e.to_string()))?;
    if let Some(log) = &mut keep.log {
        log.mode = Some((decision.mode, decision.reason.to_string()));
    }

    let crate::local::Recipients {
        addresses: recipients,
        original: original_recipients,
    } = recipients(invocation, &header, &request, &config)?;

    // Bcc and Resent-Bcc never leave this machine (IN3, RFC 5322 3.6.3 and
    // 3.6.6; msmtp and Postfix do the same), nor do the fields with which
    // a saved copy names its undelivered recipients.
    header.remove_all("Bcc");
    header.remove_all("Resent-Bcc");
    header.remove_all(deadletter::UNDELIVERED_FIELD);
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
    edit_addresses(&mut header, &request, &from_policy)?;
    add_missing_fields(&mut header, &request, &sender, host.0)?;

    let mut dsn = request.dsn.clone();
    dsn.original_recipients = original_recipients;
    if decision.mode == Mode::Require && dsn.ret == Some(Ret::Full) {
        // FAIL5, RFC 8689 section 5: a bounce of a REQUIRETLS message carries headers only.
        dsn.ret = Some(Ret::Hdrs);
        say(
            "warning: -R full was sent as RET=HDRS: bounces of require-mode messages carry headers only (RFC 8689 section 5)",
        );
    }
    let envelope = Envelope {
        sender,
        recipients,
        content: Content {
            eight_bit: input.eight_bit_header || input.eight_bit_body,
            utf8_header: input.eight_bit_header,
            declared_8bitmime: request.declared_8bitmime,
        },
        // RFC 1870: the octets sent, CRLF line endings included.
        size: Some(header.len() as u64 + 2 + input.body_wire_len),
        dsn,
    };
    Ok(Prepared {
        request,
        envelope,
        header,
        decision,
    })
}

/// `--read-envelope-from`: the address of the message's From field, as
/// the sender the invocation would have had with -f.
struct FromField(Address);

impl FromField {
    fn with(&self, invocation: &Invocation) -> Invocation {
        let mut invocation = invocation.clone();
        invocation.sender = Some(self.0.to_string());
        invocation
    }
}

fn envelope_from_field(header: &Header) -> Result<FromField, Stop> {
    let refused = |why: String| {
        Stop::new(
            Sysexit::DataErr,
            format!("--read-envelope-from: {why}; pass -f ADDRESS instead"),
        )
    };
    let mut fields = header.all("From");
    let (Some(field), None) = (fields.next(), fields.next()) else {
        return Err(refused(
            "the message needs exactly one From field to take the sender from".into(),
        ));
    };
    let found = message::parse_address_list(&field.unfolded_value())
        .map_err(|e| refused(format!("the From field: {e}")))?;
    match found.as_slice() {
        [one] => Ok(FromField(one.clone())),
        _ => Err(refused(format!(
            "the From field names {} addresses, not one",
            found.len()
        ))),
    }
}

/// How the account treats the From field (set_from_header).
fn from_policy<'a>(
    request: &'a Request,
    host_names: &'a [&'a str],
) -> crate::local::FromPolicy<'a> {
    crate::local::FromPolicy {
        rewrite: request.header.from,
        account_from: request.header.account_from.as_ref(),
        // -F names the sender of this message; NAME in the environment
        // is only a default for a From that is missing.
        full_name: request
            .full_name
            .as_ref()
            .filter(|n| n.source == "-F")
            .map(|n| n.text.as_str()),
        host_names,
    }
}

/// IN12 in the header: the From of system mail as the account says
/// (set_from_header), then every bare name in an address field qualified.
fn edit_addresses(
    header: &mut Header,
    request: &Request,
    policy: &crate::local::FromPolicy<'_>,
) -> Result<(), Stop> {
    let config_error = |e: crate::local::LocalError| Stop::new(Sysexit::Config, e.to_string());
    crate::local::rewrite_from(header, policy).map_err(config_error)?;
    crate::local::qualify_header(header, &request.qualification).map_err(config_error)
}

/// Command-line recipients, plus those of To, Cc and Bcc with -t (IN3),
/// aliases expanded, qualified (IN12) and without duplicates.
fn recipients(
    invocation: &Invocation,
    header: &Header,
    request: &Request,
    config: &config::Config,
) -> Result<crate::local::Recipients, Stop> {
    let mut found = Vec::new();
    for argument in &invocation.recipients {
        let list = message::parse_address_list(argument)
            .map_err(|e| Stop::new(Sysexit::Usage, format!("recipient {argument:?}: {e}")))?;
        let orcpt = invocation.orcpt.get(argument);
        found.extend(list.into_iter().map(|address| crate::local::Found {
            address,
            orcpt: orcpt.cloned(),
        }));
    }
    if invocation.extract_recipients {
        let list = header
            .recipients()
            .map_err(|e| Stop::new(Sysexit::DataErr, format!("-t: {e}")))?;
        found.extend(list.into_iter().map(|address| crate::local::Found {
            address,
            orcpt: None,
        }));
    }
    // The aliases file is read only when a local name needs it.
    let aliases = if found.iter().any(|f| f.address.domain().is_none()) {
        local::load_aliases(&config.aliases)?
    } else {
        None
    };
    let unique = crate::local::recipients(&found, aliases.as_ref(), &request.qualification)
        .map_err(|e| Stop::new(Sysexit::Config, format!("{e}; nothing was sent")))?;
    if unique.addresses.is_empty() {
        return Err(if invocation.extract_recipients && header.is_resent() {
            Stop::new(
                Sysexit::DataErr,
                "-t: the message has Resent-* fields, so its recipients are those of Resent-To, \
                 Resent-Cc and Resent-Bcc (RFC 5322 3.6.6), and it has none, and none was given",
            )
        } else if invocation.extract_recipients {
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

/// IN7: Date, Message-ID and From for a message without them, unless the
/// account's set_*_header settings say not to.
fn add_missing_fields(
    header: &mut Header,
    request: &Request,
    sender: &ReversePath,
    host_name: &str,
) -> Result<(), Stop> {
    use crate::local::{AddField, FromRewrite};
    let now = chrono::Local::now().fixed_offset();
    let settings = &request.header;
    if settings.date == AddField::Auto && !header.contains("Date") {
        append(header, "Date", &compose::date_value(now))?;
    }
    let domain = request.qualification.domain().unwrap_or(host_name);
    let from_address = match sender {
        ReversePath::Address(a) => a.clone(),
        ReversePath::Null => Address::from_parts("MAILER-DAEMON", Some(domain)).map_err(|e| {
            Stop::new(
                Sysexit::Config,
                format!("the domain for MAILER-DAEMON: {e}"),
            )
        })?,
    };
    if settings.message_id == AddField::Auto && !header.contains("Message-ID") {
        let mut random = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
            |_| {
                Stop::new(
                    Sysexit::Software,
                    "the system's random number generator failed",
                )
            },
        )?;
        let domain = from_address.domain().unwrap_or(domain);
        append(
            header,
            "Message-ID",
            &compose::message_id_value(now, &random, domain),
        )?;
    }
    if settings.from != FromRewrite::Off && !header.contains("From") {
        let full_name = request.full_name.as_ref();
        let added = compose::from_value(full_name.map(|n| n.text.as_str()), &from_address)
            .and_then(|value| header.append("From", &value));
        if let Err(e) = added {
            // Only the full name can make the field unusable: the address
            // was checked when it was made.
            let source = full_name.map_or("the envelope sender", |n| n.source);
            return Err(Stop::new(
                Sysexit::Usage,
                format!("{source}: cannot build the From field for the message: {e}"),
            ));
        }
    }
    Ok(())
}

fn append(header: &mut Header, name: &str, value: &str) -> Result<(), Stop> {
    header
        .append(name, value)
        .map_err(|e| Stop::new(Sysexit::Software, format!("adding {name}: {e}")))
}

/// With -v, the dialogue and every decision on stderr.
fn transcript(verbose: bool) -> Transcript {
    if verbose {
        Transcript::new("tlsend: ", |line: &str| {
            let _ = writeln!(io::stderr(), "{line}");
        })
    } else {
        Transcript::off()
    }
}

fn describe_envelope(envelope: &Envelope) -> String {
    let recipients: Vec<String> = envelope.recipients.iter().map(|r| r.to_string()).collect();
    format!("from <{}> to {}", envelope.sender, recipients.join(", "))
}

/// FAIL8: when not every recipient got the message, one line for each
/// recipient, delivered or not, with the server's reply; with -v always.
/// A run where all went well stays quiet, as sendmail does.
fn report(outcome: &Outcome, verbose: bool) {
    if outcome.all_accepted() && !verbose {
        return;
    }
    for r in &outcome.recipients {
        match &r.result {
            Ok(accepted) => say(&format!(
                "{}: delivered via {}: {}",
                r.recipient, accepted.server, accepted.reply
            )),
            Err(failure) => say(&format!("{}: not delivered: {failure}", r.recipient)),
        }
    }
}

/// UX6: one log line per recipient of this run: delivered (what the
/// servers answered, kept in the progress), and for the others why not,
/// queued as `queued_as` when the queue took the temporary failures.
fn log_run(log: &Log, keep: &Keep, undelivered: &Undelivered, queued_as: Option<&str>) {
    let Some(context) = &keep.log else {
        // Stopped before the configuration said where the log is.
        return;
    };
    if context.settings.is_off() {
        return;
    }
    let placeholder = local_failure(codes::STOPPED, Sysexit::TempFail, "");
    for r in keep
        .progress
        .stopped(&keep.recipients, &placeholder)
        .recipients
    {
        if let Ok(accepted) = &r.result {
            let recipient = r.recipient.to_string();
            let text = accepted.reply.text();
            log.write(
                &context.settings,
                &Record {
                    host: Some(&accepted.server),
                    session: Some(&accepted.session),
                    status: accepted
                        .reply
                        .enhanced()
                        .map_or_else(|| "2.0.0".to_string(), |c| c.to_string()),
                    smtp: Some(accepted.reply.code()),
                    detail: &text,
                    ..base_record(context, &keep.sender, &recipient, Disposition::Delivered)
                },
            );
        }
    }
    let queue_only = keep.queue_only;
    for (recipient, failure) in undelivered {
        let temporary = failure.classified.is_temporary();
        let result = match (temporary, queued_as) {
            (true, Some(_)) if queue_only => Disposition::Queued,
            (true, _) => Disposition::Deferred,
            (false, _) => Disposition::Failed,
        };
        let detail = match &failure.hint {
            Some(hint) => format!("{}; {hint}", failure.detail),
            None => failure.detail.clone(),
        };
        log.write(
            &context.settings,
            &Record {
                queue_id: queued_as.filter(|_| temporary),
                // The route's server, unless -odq kept it from being tried.
                host: failure
                    .server
                    .as_deref()
                    .or(context.host.as_deref().filter(|_| !queue_only)),
                session: failure.session.as_deref(),
                status: failure.classified.status.to_string(),
                detail: &detail,
                ..base_record(context, &keep.sender, recipient, result)
            },
        );
    }
}

/// A log line's fields that are the same for every recipient of the run.
fn base_record<'a>(
    context: &'a LogContext,
    sender: &'a str,
    recipient: &'a str,
    result: Disposition,
) -> Record<'a> {
    Record {
        queue_id: None,
        sender,
        recipient,
        account: context.account.as_deref(),
        mode: context
            .mode
            .as_ref()
            .map(|(mode, why)| (*mode, why.as_str())),
        host: context.host.as_deref(),
        session: None,
        result,
        status: String::new(),
        smtp: None,
        retry: None,
        detail: "",
    }
}

/// FAIL3 without a queue: whatever stopped the message, keep it, naming
/// the recipients that did not get it.
fn save_dead_letter(
    input: &Input,
    keep: &Keep,
    undelivered: Vec<(String, String)>,
    env: &dyn Fn(&str) -> Option<OsString>,
) {
    let home = crate::user::home_dir(env);
    let Some(path) = keep
        .dead_letter
        .clone()
        .or_else(|| deadletter::default_path(home.as_deref().map(|h| h.as_os_str())))
    else {
        say(
            "the message could not be saved: no home directory is known and no dead_letter file is configured; it is lost",
        );
        return;
    };
    let date = chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string();
    let some_delivered = !keep.recipients.is_empty() && undelivered.len() < keep.recipients.len();
    let entry = deadletter::Entry {
        sender: &keep.sender,
        date: &date,
        undelivered,
        headerless: input.header_block.is_empty() && !input.has_separator,
    };
    // The header without fields of tlsend's own that came with the input,
    // then every other byte as read.
    let header = deadletter::without_own_fields(&input.header_block);
    let saved = input
        .reader_after_header()
        .and_then(|rest| deadletter::save(&path, &entry, io::Cursor::new(header).chain(rest)));
    match saved {
        Ok(()) if some_delivered => say(&format!(
            "the message was saved to {} for the recipients that did not get it (named in its {} fields); the others must not be sent it again",
            path.display(),
            deadletter::UNDELIVERED_FIELD
        )),
        Ok(()) => say(&format!("the message was saved to {}", path.display())),
        Err(e) => say(&format!(
            "the message could not be saved to {}: {e}; it is lost",
            path.display()
        )),
    }
}
