//! The queue as a run of tlsend uses it: whether one is in service, keeping
//! what could not be delivered now (FAIL3), `-q` runs that deliver what is
//! due and tell senders of failures (FAIL4), `-bp` and `--remove-queued`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::rc::Rc;

use futures_util::stream::{self, StreamExt};

use super::{Halt, Keep, Prepared, Route, Undelivered, say, settled, transcript};
use crate::address::Address;
use crate::cli::{DeliveryMode, Invocation};
use crate::config::{self, QueueSettings};
use crate::deliver::{Job, SessionPool};
use crate::exit::{self, Sysexit};
use crate::fault;
use crate::interrupt::Interrupts;
use crate::log::{Disposition, Log, LogSettings, Record};
use crate::message::Input;
use crate::outcome::{Failure, Outcome, Progress};
use crate::policy::Mode;
use crate::queue::entry::{self, NotifyName};
use crate::queue::{self as spool, Entry, Locked, Queue, State};
use crate::request;
use crate::route::DOMAIN_CONCURRENCY;
use crate::smtp::{Envelope, Transcript};

/// What the queue keeps of a message: the envelope, the mode and why,
/// the route asked for, and the header as it is to be sent.
pub(super) struct Queueable {
    envelope: Envelope,
    mode: Mode,
    reason: String,
    account: Option<String>,
    direct: bool,
    /// The edited header and the empty line after it.
    head: Vec<u8>,
}

impl Queueable {
    pub fn new(prepared: &Prepared, invocation: &Invocation) -> Queueable {
        let mut head = Vec::with_capacity(prepared.header.len() + 2);
        prepared.header.write_to(&mut head);
        head.extend_from_slice(b"\r\n");
        Queueable {
            envelope: prepared.envelope.clone(),
            mode: prepared.decision.mode,
            reason: prepared.decision.reason.to_string(),
            account: prepared.request.account.clone(),
            direct: invocation.direct,
            head,
        }
    }
}

/// A queue that takes messages, and whose it is.
struct Target {
    queue: Queue,
    /// The system queue (a runner is expected) rather than the user's own.
    system: bool,
}

/// The system queue's place.
fn system_queue(settings: &QueueSettings) -> Queue {
    Queue::at(
        settings
            .dir
            .as_deref()
            .unwrap_or(std::path::Path::new(spool::SYSTEM_ROOT)),
    )
}

/// The queue that takes this run's undelivered recipients, if one is in
/// service: `-odq` or `-odb`, else `queue = true | false`, else whether a
/// system queue is installed.
fn in_service(
    settings: &QueueSettings,
    delivery: Option<DeliveryMode>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<Target>, String> {
    let installed = system_queue(settings).installed();
    let wanted = match delivery {
        Some(DeliveryMode::Queue | DeliveryMode::Background) => true,
        _ => settings.enabled.unwrap_or(installed),
    };
    if !wanted {
        return Ok(None);
    }
    let target = serving(settings, env).ok_or_else(|| {
        "no system queue is installed and no home directory is known for a queue of your own"
            .to_string()
    })?;
    if !target.system {
        target
            .queue
            .create_private()
            .map_err(|e| format!("cannot make the queue {}: {e}", target.queue.root.display()))?;
    }
    Ok(Some(target))
}

/// Whether the message goes to the queue without a try: -odq, or
/// `queue = "always"` with the system queue installed (whatever -odi or
/// -odb a caller such as cron passes out of habit: the administrator
/// chose that only the queue runner sends).
pub(super) fn queued_without_trying(
    settings: &QueueSettings,
    delivery: Option<DeliveryMode>,
) -> bool {
    delivery == Some(DeliveryMode::Queue) || (settings.always && system_queue(settings).installed())
}

/// A queue entry made for a message's undelivered recipients.
pub(crate) struct Queued {
    pub id: String,
    /// The recipients it holds, as given.
    pub recipients: Vec<String>,
}

/// `-bs`: whether the reply to the final dot is to be 250 because a server
/// took the message for someone, or because the queue in service is to take
/// those that may still get it. Then the sender must hear of the permanent
/// failures by mail; otherwise the reply tells of them.
pub(super) fn answer_is_250(
    outcome: &Outcome,
    keep: &Keep,
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> bool {
    outcome.recipients.iter().any(|r| r.result.is_ok())
        || (outcome
            .undelivered()
            .any(|(_, failure)| failure.classified.is_temporary())
            && matches!(
                in_service(&keep.queue, invocation.delivery, env),
                Ok(Some(_))
            ))
}

/// FAIL3: after a run that did not deliver to everyone, queues the
/// recipients that may still get the message when a queue is in service.
/// Returns the exit status, the entry made if one was, and, unless the
/// queue took every recipient, those left for dead.letter.
pub(super) fn keep_for_later(
    invocation: &Invocation,
    input: &Input,
    keep: &Keep,
    exit: Sysexit,
    undelivered: Undelivered,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> (Sysexit, Option<Queued>, Option<Undelivered>) {
    // A panic is reported as one (FAIL7, exit 70), with the message in
    // dead.letter: the run that failed is not to be trusted with the queue.
    let Some(queueable) = &keep.queueable else {
        return (exit, None, Some(undelivered));
    };
    if exit == Sysexit::Software {
        return (exit, None, Some(undelivered));
    }
    let target = match in_service(&keep.queue, invocation.delivery, env) {
        Ok(Some(target)) => target,
        Ok(None) => return (exit, None, Some(undelivered)),
        Err(e) => {
            say(&format!("warning: the message cannot be queued: {e}"));
            return (exit, None, Some(undelivered));
        }
    };
    let (later, failed): (Undelivered, Undelivered) = undelivered
        .into_iter()
        .partition(|(_, failure)| failure.classified.is_temporary());
    // By their text, found in a map: a search per recipient would cost
    // the square of a large recipient list.
    let by_text: std::collections::HashMap<String, &Address> =
        keep.recipients.iter().map(|a| (a.to_string(), a)).collect();
    let recipients: Vec<(Address, &Failure)> = later
        .iter()
        .filter_map(|(text, failure)| by_text.get(text).map(|a| ((*a).clone(), failure)))
        .collect();
    if recipients.is_empty() || recipients.len() != later.len() {
        return (exit, None, Some(later.into_iter().chain(failed).collect()));
    }
    let queue_only = keep.queue_only;
    let now = fault::now();
    let queued = spool::new_id(now).and_then(|id| {
        let mut entry = Entry::new(
            id,
            now,
            &Envelope {
                recipients: recipients.iter().map(|(a, _)| a.clone()).collect(),
                ..queueable.envelope.clone()
            },
            queueable.mode,
            queueable.reason.clone(),
        );
        entry.account.clone_from(&queueable.account);
        entry.direct = queueable.direct;
        if !queue_only {
            for (recipient, (_, failure)) in entry.recipients.iter_mut().zip(&recipients) {
                record_failure(recipient, failure, now);
            }
        }
        let mut message = io::Cursor::new(&queueable.head).chain(input.body_reader()?);
        target.queue.drop_message(&entry, &mut message)?;
        Ok(entry.id)
    });
    match queued {
        Ok(id) => {
            // -odq is quiet, as sendmail's, unless nothing will run the
            // queue by itself.
            if !queue_only || invocation.verbose > 0 || !target.system {
                let names: Vec<&str> = later.iter().map(|(r, _)| r.as_str()).collect();
                let runner = if target.system {
                    "the queue runner will retry it"
                } else {
                    "`tlsend -q` will retry it"
                };
                say(&format!(
                    "queued as {id} in {} for {}{}; {runner}",
                    target.queue.root.display(),
                    names.join(", "),
                    if queue_only {
                        String::new()
                    } else {
                        format!(" ({})", later[0].1)
                    }
                ));
            }
            let exit = exit::for_outcomes(failed.iter().map(|(_, f)| Some(&f.classified)));
            let queued = Queued {
                id,
                recipients: later.into_iter().map(|(r, _)| r).collect(),
            };
            (exit, Some(queued), (!failed.is_empty()).then_some(failed))
        }
        Err(e) => {
            say(&format!(
                "the message could not be queued in {}: {e}",
                target.queue.root.display()
            ));
            (exit, None, Some(later.into_iter().chain(failed).collect()))
        }
    }
}

/// `-oem` (FAIL4): the recipients an interactive run failed for good are
/// reported to the sender in a delivery status notification, sent at once
/// through the same route; one that cannot go now is queued when a queue
/// is in service.
#[allow(clippy::too_many_arguments)]
pub(super) fn mail_back(
    runtime: &tokio::runtime::Runtime,
    interrupts: &mut Interrupts,
    route: &Route<'_>,
    keep: &Keep,
    input: &Input,
    outcome: &Outcome,
    invocation: &Invocation,
    host_name: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
    transcript: &Transcript,
) {
    let Some(queueable) = &keep.queueable else {
        return;
    };
    // An SMTP client (-bs) was told 250: every recipient no queue will
    // retry (a temporary failure without a queue, a 5.7.10) is failed now
    // and the sender told (RFC 5321 6.1). A piped run's exit status tells
    // its caller of those.
    let queue_retries = keep.answering
        && matches!(
            in_service(&keep.queue, invocation.delivery, env),
            Ok(Some(_))
        );
    let failed: Vec<(&Address, &Failure)> = outcome
        .undelivered()
        .filter(|(_, failure)| {
            if keep.answering {
                !(queue_retries && failure.classified.is_temporary())
            } else {
                fails_for_good(failure)
            }
        })
        .collect();
    if failed.is_empty() {
        return;
    }
    let now = fault::now();
    let made = (|| -> Result<Notice, String> {
        let id = spool::new_id(now).map_err(|e| e.to_string())?;
        let mut entry = Entry::new(
            id.clone(),
            now,
            &queueable.envelope,
            queueable.mode,
            queueable.reason.clone(),
        );
        entry.account.clone_from(&queueable.account);
        entry.direct = queueable.direct;
        let mut by_address = entry.recipients_by_address();
        for (address, failure) in &failed {
            if let Some(recipient) = by_address.get_mut(&address.to_string()) {
                record_failure(recipient, failure, now);
            }
        }
        if !entry.notify_on(NotifyName::Failure) {
            return Err(String::new());
        }
        let mut original = queueable.head.clone();
        input
            .body_reader()
            .and_then(|body| {
                body.take(crate::dsn::BOUNCE_SIZE_LIMIT as u64 + 1)
                    .read_to_end(&mut original)
            })
            .map_err(|e| format!("cannot read the message: {e}"))?;
        let lifetime = i64::try_from(keep.queue.lifetime.as_secs()).unwrap_or(0);
        let names: Vec<String> = failed.iter().map(|(a, _)| a.to_string()).collect();
        Notice::compose(
            &entry,
            &original,
            NotifyName::Failure,
            &names,
            now,
            host_name,
            lifetime,
            &format!("{id}-B1"),
        )
    })();
    let notice = match made {
        Ok(notice) => notice,
        // NOTIFY or an empty sender asked for none.
        Err(e) if e.is_empty() => return,
        Err(e) => {
            say(&format!("the failure could not be mailed back: {e}"));
            return;
        }
    };
    let envelope = notice.entry.envelope(notice.entry.due(now, true));
    let bytes = notice.bytes.clone();
    let open = move || -> io::Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(bytes.clone())))
    };
    let progress = Progress::default();
    let job = Job {
        envelope: &envelope,
        mode: notice.entry.mode(),
        bounce: true,
        open_message: &open,
        progress: &progress,
        pool: None,
    };
    let to = &notice.entry.recipients[0].address;
    let sent = runtime.block_on(interrupts.unless_interrupted(route.deliver(job, transcript)));
    let why = match sent {
        Ok(result) if result.all_accepted() => {
            say(&format!("the failure was mailed back to {to} (-oem)"));
            return;
        }
        Ok(result) => result
            .undelivered()
            .next()
            .map_or_else(String::new, |(_, f)| f.to_string()),
        Err(name) => format!("stopped by {name}"),
    };
    match in_service(&keep.queue, invocation.delivery, env) {
        Ok(Some(target)) => match target
            .queue
            .drop_message(&notice.entry, &mut &notice.bytes[..])
        {
            Ok(()) => say(&format!(
                "the failure notice to {to} could not be sent ({why}); it was queued as {}",
                notice.entry.id
            )),
            Err(e) => say(&format!(
                "the failure notice to {to} could not be sent ({why}) nor queued: {e}"
            )),
        },
        _ => say(&format!(
            "the failure notice to {to} could not be sent: {why}"
        )),
    }
}

/// A failed attempt on a recipient's record: counted, explained, and the
/// next attempt scheduled (or the recipient failed for good).
fn record_failure(recipient: &mut entry::Recipient, failure: &Failure, now: i64) {
    recipient.attempts = recipient.attempts.saturating_add(1);
    recipient.last_attempt = Some(now);
    recipient.status = Some(failure.classified.status.to_string());
    recipient.detail = Some(match &failure.hint {
        Some(hint) => format!("{}; {hint}", failure.detail),
        None => failure.detail.clone(),
    });
    recipient.server.clone_from(&failure.server);
    if fails_for_good(failure) {
        recipient.state = State::Failed;
    } else {
        recipient.next_attempt = now.saturating_add(entry::backoff(recipient.attempts));
    }
}

/// Puts `recipients` back to pending after their notification could not
/// be made: they are failed, and the sender told, on a later run.
fn keep_pending(locked: &mut Locked, recipients: &[String], now: i64) {
    say(&format!(
        "queue entry {}: kept, to tell the sender on a later run",
        locked.id()
    ));
    for recipient in locked.entry.recipients.iter_mut() {
        if recipients.contains(&recipient.address) {
            recipient.state = State::Pending;
            recipient.next_attempt = now.saturating_add(entry::backoff(recipient.attempts));
        }
    }
}

/// Whether retrying cannot help a recipient: a permanent refusal of the
/// recipient, its domain or the message (a 5xx reply, 5.7.30, content no
/// server on the path can take). A failure of this machine (a
/// file it cannot read, its configuration, its credentials) or of a
/// server's manners is retried, never bounced: fixing it must not have
/// cost the sender the message.
fn fails_for_good(failure: &Failure) -> bool {
    let status = failure.classified.status;
    status.is_permanent()
        && matches!(
            failure.classified.exit,
            Sysexit::NoUser | Sysexit::NoHost | Sysexit::Unavailable | Sysexit::DataErr
        )
        // No verified TLS (an expired certificate, a changed CA) is
        // usually fixed within days: retried until expiry, then 5.7.10.
        && status != crate::status::codes::ENCRYPTION_NEEDED
}

/// The queue `-q`, `-bp` and `--remove-queued` work on: the system queue
/// when one is installed, else the user's own.
fn serving(settings: &QueueSettings, env: &dyn Fn(&str) -> Option<OsString>) -> Option<Target> {
    let system = system_queue(settings);
    if system.installed() {
        return Some(Target {
            queue: system,
            system: true,
        });
    }
    spool::user_root(env).map(|root| Target {
        queue: Queue::at(&root),
        system: false,
    })
}

/// Loads the configuration for a queue command; `Err` is the exit status.
fn load_config(invocation: &Invocation) -> Result<config::Config, Sysexit> {
    config::load(invocation.config_file.as_deref()).map_err(|e| {
        say(&e.to_string());
        Sysexit::Config
    })
}

/// Explains a queue directory that cannot be read.
fn unreadable(queue: &Queue, e: &io::Error) -> Sysexit {
    if e.kind() == io::ErrorKind::PermissionDenied {
        say(&format!(
            "cannot read the queue in {}: {e}; a system queue is read and run by the account \
             that owns it (see \"System queue\" in tlsend(1))",
            queue.root.display()
        ));
        Sysexit::NoPerm
    } else {
        say(&format!(
            "cannot read the queue in {}: {e}",
            queue.root.display()
        ));
        Sysexit::IoErr
    }
}

/// `-bp` / `mailq`.
pub(super) fn list(invocation: &Invocation) -> Sysexit {
    let env = |key: &str| std::env::var_os(key);
    let config = match load_config(invocation) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let listed = match serving(&config.queue, &env).map(|t| t.queue) {
        None => Ok((Vec::new(), Vec::new())),
        Some(queue) => queue.list().map_err(|e| unreadable(&queue, &e)),
    };
    let (listed, problems) = match listed {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let now = fault::now();
    let text = if invocation.json {
        spool::listing::json(&listed, now)
    } else if listed.is_empty() && !problems.is_empty() {
        // Not "empty": it holds entries that could not be read.
        format!("-- 0 entries readable, {} not\n", problems.len())
    } else {
        spool::listing::text(&listed, now)
    };
    let _ = io::stdout().write_all(text.as_bytes());
    for (id, problem) in &problems {
        say(&format!("queue entry {id} cannot be read: {problem}"));
    }
    if problems.is_empty() {
        Sysexit::Ok
    } else {
        Sysexit::IoErr
    }
}

/// `--remove-queued ID`: deletes one entry without sending it.
pub(super) fn remove(invocation: &Invocation) -> Sysexit {
    let env = |key: &str| std::env::var_os(key);
    let config = match load_config(invocation) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let id = invocation.queue_run.id.clone().unwrap_or_default();
    if !entry::valid_id(&id) {
        say(&format!(
            "{id:?} is not a queue id; `tlsend -bp` lists them"
        ));
        return Sysexit::Usage;
    }
    let Some(queue) = serving(&config.queue, &env).map(|t| t.queue) else {
        say(&format!("no queue entry {id}: there is no queue"));
        return Sysexit::Usage;
    };
    if let Err(e) = queue.import(fault::now()) {
        return unreadable(&queue, &e);
    }
    match queue.lock(&id) {
        Ok(Some(mut locked)) => match locked.remove() {
            Ok(()) => {
                say(&format!("queue entry {id} removed; it will not be sent"));
                Sysexit::Ok
            }
            Err(e) => {
                say(&format!("queue entry {id} could not be removed: {e}"));
                Sysexit::IoErr
            }
        },
        Ok(None) if queue.entries_dir().join(&id).exists() => {
            say(&format!(
                "queue entry {id} is being delivered by a queue run now; try again when it ends"
            ));
            Sysexit::TempFail
        }
        Ok(None) => {
            say(&format!("no queue entry {id}; `tlsend -bp` lists them"));
            Sysexit::Usage
        }
        Err(e) => unreadable(&queue, &e),
    }
}

/// Why a queue pass ended early.
enum PassStop {
    Signal(&'static str),
    Exit(Sysexit),
}

/// `-q`, `-q<interval>`, `-qI<id>`, `-qR<domain>`.
pub(super) fn run(invocation: &Invocation) -> Sysexit {
    let env = |key: &str| std::env::var_os(key);
    let config = match load_config(invocation) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let Some(queue) = serving(&config.queue, &env).map(|t| t.queue) else {
        say(
            "there is no queue to run: no system queue is installed and no home directory is known",
        );
        return Sysexit::Config;
    };
    if !queue.maildrop_dir().is_dir() && !queue.entries_dir().is_dir() {
        // Nothing was ever queued here.
        if invocation.verbose > 0 {
            say(&format!(
                "no queue in {}: nothing to do",
                queue.root.display()
            ));
        }
        return Sysexit::Ok;
    }
    if let Err(e) = queue.create_entries_dir() {
        return unreadable(&queue, &e);
    }
    let runtime = match super::io_runtime() {
        Ok(runtime) => runtime,
        Err(stop) => {
            say(&stop.message);
            return stop.exit;
        }
    };
    let mut interrupts = {
        let _entered = runtime.enter();
        match Interrupts::watch() {
            Ok(interrupts) => interrupts,
            Err(e) => {
                say(&format!("cannot watch for signals: {e}"));
                return Sysexit::Software;
            }
        }
    };
    let entries_at_once = raise_open_file_limit();
    let (host_name, full_host_name) = crate::local::full_host_name();
    let runner = Runner {
        invocation,
        entries_at_once,
        config: &config,
        queue,
        host_name,
        full_host_name,
        transcript: transcript(invocation.verbose > 0),
        shared: Progress::default(),
        env: &env,
        log: Log::new(),
    };
    let interval = invocation.queue_run.interval;
    let mut status = Sysexit::Ok;
    loop {
        match runner.pass(&runtime, &mut interrupts, interval.is_none()) {
            Ok(exit) => status = status.max(exit),
            Err(PassStop::Signal(name)) => {
                say(&format!(
                    "{name} received: the queue run stopped; every entry is kept for the next run"
                ));
                let exit = if interval.is_some() {
                    Sysexit::Ok
                } else {
                    Sysexit::TempFail
                };
                runtime.shutdown_background();
                return exit;
            }
            Err(PassStop::Exit(exit)) => {
                runtime.shutdown_background();
                return exit;
            }
        }
        let Some(interval) = interval else {
            break;
        };
        let wait = async { tokio::time::sleep(interval).await };
        if let Err(name) = runtime.block_on(interrupts.unless_interrupted(wait)) {
            say(&format!("{name} received: the queue runner stopped"));
            break;
        }
    }
    runtime.shutdown_background();
    status
}

/// A queue run holds a file open per entry it delivers, and sockets:
/// the soft limit (often 1024) goes up to the hard one.
/// Returns how many entries to lock at once under the resulting limit.
fn raise_open_file_limit() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    match getrlimit(Resource::Nofile).current {
        Some(files) => usize::try_from(files / 4)
            .unwrap_or(ENTRIES_AT_ONCE)
            .clamp(4, ENTRIES_AT_ONCE),
        None => ENTRIES_AT_ONCE,
    }
}

/// One queue run's fixed parts.
struct Runner<'a> {
    invocation: &'a Invocation,
    entries_at_once: usize,
    config: &'a config::Config,
    queue: Queue,
    host_name: String,
    full_host_name: Option<String>,
    transcript: Transcript,
    /// The stop flag and verdict counter every message of the run shares.
    shared: Progress,
    env: &'a dyn Fn(&str) -> Option<OsString>,
    log: Log,
}

/// An entry taken for delivery in this pass.
struct Item {
    locked: Rc<RefCell<Locked>>,
    envelope: Envelope,
    mode: Mode,
    bounce: bool,
    progress: Progress,
    open: Box<dyn Fn() -> io::Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> + Sync>,
}

/// How many entries a queue run locks at once at most: each lock is an
/// open file. Fewer when the open-file limit is low (a quarter of it).
const ENTRIES_AT_ONCE: usize = 2048;

/// Messages up to this size are read into memory for each attempt.
const IN_MEMORY: u64 = 1 << 20;

impl Item {
    fn new(locked: Locked, due: Vec<Address>) -> Item {
        let entry = &locked.entry;
        let envelope = entry.envelope(due);
        let (mode, bounce) = (entry.mode(), entry.bounce);
        let message = locked.message_file();
        let size = locked.message_len();
        let open = Box::new(
            move || -> io::Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>> {
                let mut file = message.open()?;
                if size <= IN_MEMORY {
                    let mut bytes = Vec::with_capacity(size as usize);
                    file.read_to_end(&mut bytes)?;
                    Ok(Box::new(io::Cursor::new(bytes)))
                } else {
                    Ok(Box::new(tokio::fs::File::from_std(file)))
                }
            },
        );
        let locked = Rc::new(RefCell::new(locked));
        Item {
            progress: Progress::default(),
            locked,
            envelope,
            mode,
            bounce,
            open,
        }
    }
}

/// The items that go one route, and the route.
struct Group<'a> {
    route: Route<'a>,
    request: &'a request::Request,
    items: &'a [Item],
}

/// One route's jobs (see [`Runner::deliver_groups`]), outcomes in order.
async fn deliver_group(
    route: &Route<'_>,
    jobs: &[Job<'_>],
    transcript: &Transcript,
) -> Vec<Outcome> {
    match route {
        Route::Submission(ready) => ready.deliver_batch(jobs, transcript).await,
        Route::Direct(_) => {
            let mut by_domains: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
            for (index, job) in jobs.iter().enumerate() {
                let mut domains: Vec<String> = job
                    .envelope
                    .recipients
                    .iter()
                    .map(|r| r.domain().unwrap_or("").to_ascii_lowercase())
                    .collect();
                domains.sort();
                domains.dedup();
                by_domains.entry(domains).or_default().push(index);
            }
            let done: Vec<Vec<(usize, Outcome)>> = stream::iter(by_domains.into_values())
                .map(|indices| async move {
                    let mut outcomes = Vec::with_capacity(indices.len());
                    for index in indices {
                        outcomes.push((index, route.deliver(jobs[index], transcript).await));
                    }
                    outcomes
                })
                .buffer_unordered(DOMAIN_CONCURRENCY)
                .collect()
                .await;
            let mut in_order: Vec<(usize, Outcome)> = done.into_iter().flatten().collect();
            in_order.sort_by_key(|(index, _)| *index);
            in_order.into_iter().map(|(_, outcome)| outcome).collect()
        }
    }
}

impl Item {
    /// Sends this message in require mode, and makes its notifications
    /// those of a require-mode message (headers only, RET=HDRS).
    fn require_tls(&mut self) {
        let mut locked = self.locked.borrow_mut();
        locked.entry.mode = entry::ModeName::Require;
        locked.entry.require_headers_only();
        self.mode = Mode::Require;
        self.envelope.dsn = locked.entry.dsn.to_dsn();
    }
}

/// RFC 1047: the moment a server has taken the message for some
/// recipients, that is made durable, before the session goes on.
fn record_acceptances(locked: &RefCell<Locked>, outcome: &Outcome) {
    let mut locked = locked.borrow_mut();
    let now = fault::now();
    let mut changed = false;
    let mut by_address = locked.entry.recipients_by_address();
    for r in &outcome.recipients {
        if let Ok(accepted) = &r.result
            && let Some(recipient) = by_address.get_mut(&r.recipient.to_string())
            && recipient.state == State::Pending
        {
            recipient.state = State::Delivered;
            recipient.attempts = recipient.attempts.saturating_add(1);
            recipient.last_attempt = Some(now);
            recipient.status = Some(
                accepted
                    .reply
                    .enhanced()
                    .map_or_else(|| "2.0.0".to_string(), |c| c.to_string()),
            );
            recipient.detail = Some(accepted.reply.text());
            recipient.server = Some(accepted.server.clone());
            changed = true;
        }
    }
    if changed {
        fault::pause("queue-accepted");
        if let Err(e) = locked.save() {
            say(&format!(
                "queue entry {}: the delivery could not be recorded: {e}; it may be sent again",
                locked.id()
            ));
        }
    }
}

impl Runner<'_> {
    /// Takes dropped messages in, then delivers every due entry once.
    fn pass(
        &self,
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        flush: bool,
    ) -> Result<Sysexit, PassStop> {
        let now = fault::now();
        self.log.reopen();
        let io_stop = |e: io::Error| PassStop::Exit(unreadable(&self.queue, &e));
        for rejected in self.queue.import(now).map_err(io_stop)? {
            say(&format!(
                "{} was left in the maildrop: {}",
                crate::text::printable(&rejected.path.display().to_string()),
                rejected.why
            ));
        }
        if let Err(e) = self.queue.tidy(now) {
            say(&format!("tidying the queue failed: {e}"));
        }
        let ids = match &self.invocation.queue_run.id {
            Some(id) => vec![id.clone()],
            None => self.queue.ids().map_err(io_stop)?,
        };
        let mut status = Sysexit::Ok;
        // A bounded number of entries is locked (and open) at a time.
        for chunk in ids.chunks(self.entries_at_once) {
            status = status.max(self.pass_over(runtime, interrupts, chunk, now, flush)?);
        }
        Ok(status)
    }

    /// Locks, delivers and records one chunk of entries.
    fn pass_over(
        &self,
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        ids: &[String],
        now: i64,
        flush: bool,
    ) -> Result<Sysexit, PassStop> {
        let mut status = Sysexit::Ok;
        let mut items = Vec::new();
        let mut notices = Vec::new();
        for id in ids {
            let locked = match self.queue.lock(id) {
                Ok(Some(locked)) => locked,
                Ok(None) => {
                    if self.invocation.queue_run.id.is_some() {
                        say(&format!(
                            "queue entry {id} is not there, or another queue run is delivering it"
                        ));
                        status = status.max(Sysexit::TempFail);
                    }
                    continue;
                }
                Err(e) => {
                    say(&format!("queue entry {id} cannot be read: {e}"));
                    status = status.max(Sysexit::IoErr);
                    continue;
                }
            };
            if let Some(item) = self.due(locked, now, flush, &mut notices) {
                items.push(item);
            }
        }
        status = status.max(self.deliver(runtime, interrupts, items)?);
        // Notifications of expiry and delay go out in this run too.
        status = status.max(self.deliver_notices(runtime, interrupts, notices)?);
        Ok(status)
    }

    /// Delivers the notifications this run queued, through the routes
    /// their messages took.
    fn deliver_notices(
        &self,
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        notices: Vec<String>,
    ) -> Result<Sysexit, PassStop> {
        if notices.is_empty() {
            return Ok(Sysexit::Ok);
        }
        let mut items = Vec::new();
        let mut more = Vec::new();
        for id in notices {
            if let Ok(Some(locked)) = self.queue.lock(&id)
                && let Some(item) = self.due(locked, fault::now(), true, &mut more)
            {
                items.push(item);
            }
        }
        self.deliver(runtime, interrupts, items)
    }

    /// Expiry and the delay warning, then the recipients due now.
    fn due(
        &self,
        mut locked: Locked,
        now: i64,
        flush: bool,
        notices: &mut Vec<String>,
    ) -> Option<Item> {
        let lifetime = i64::try_from(self.config.queue.lifetime.as_secs()).unwrap_or(i64::MAX);
        let warn_after = self
            .config
            .queue
            .delay_warning
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        if locked.entry.expired(now, lifetime) {
            notices.extend(self.expire(&mut locked, now, lifetime));
            return None;
        }
        if locked.entry.warning_due(now, warn_after) {
            notices.extend(self.warn(&mut locked, now));
        }
        let mut due = locked.entry.due(now, flush);
        if let Some(site) = &self.invocation.queue_run.site {
            due.retain(|a| a.domain().is_some_and(|d| d.eq_ignore_ascii_case(site)));
        }
        if due.is_empty() {
            return None;
        }
        let mut item = Item::new(locked, due);
        let hook_target = item.locked.clone();
        item.progress = Progress::joined(
            &self.shared,
            Box::new(move |outcome| record_acceptances(&hook_target, outcome)),
        );
        Some(item)
    }

    /// Delivers the items, grouped by route, every route at once (each
    /// submission server on one connection, MX hosts as below); records
    /// each outcome, then sends the notifications that queued.
    fn deliver(
        &self,
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        items: Vec<Item>,
    ) -> Result<Sysexit, PassStop> {
        let mut groups: BTreeMap<(Option<String>, bool, String), Vec<Item>> = BTreeMap::new();
        for item in items {
            let key = {
                let entry = &item.locked.borrow().entry;
                let account = entry
                    .account
                    .clone()
                    .filter(|name| self.config.accounts().iter().any(|a| &a.name == name));
                // Without a known account, the sender may select one; not
                // for another user's message, which goes through the
                // runner's default account.
                let sender = if account.is_none() && entry.owner.is_none() {
                    entry.sender.clone()
                } else {
                    String::new()
                };
                (account, entry.direct, sender)
            };
            groups.entry(key).or_default().push(item);
        }
        let mut status = Sysexit::Ok;
        let mut requests = Vec::new();
        for ((account, direct, sender), items) in groups {
            let mut invocation = self.invocation.clone();
            invocation.account = account;
            invocation.direct |= direct;
            // The group's messages keep their own senders; the request's
            // is not used (and may be unknown).
            invocation.sender = (!sender.is_empty()).then_some(sender);
            let host = (self.host_name.as_str(), self.full_host_name.as_deref());
            match request::build(&invocation, self.config, self.env, host) {
                Ok(request) => {
                    // The runner's account may require TLS for everything
                    // it sends: the stricter of that and the message's mode.
                    let mut items = items;
                    if request
                        .configured_mode
                        .as_ref()
                        .is_some_and(|r| r.mode == Mode::Require)
                    {
                        items.iter_mut().for_each(Item::require_tls);
                    }
                    requests.push((request, items));
                }
                Err(e) => {
                    let (request::RequestError::Usage(text) | request::RequestError::Config(text)) =
                        e;
                    say(&format!("{} queued message(s) kept: {text}", items.len()));
                    status = status.max(Sysexit::Config);
                }
            }
        }
        let mut routes = Vec::new();
        for (request, items) in &requests {
            match Route::ready(runtime, interrupts, request, &self.transcript) {
                Ok(route) => routes.push(Group {
                    route,
                    request,
                    items,
                }),
                Err(Halt::Signal(name)) => return Err(PassStop::Signal(name)),
                Err(Halt::Stop(stop)) => {
                    say(&format!(
                        "{} queued message(s) kept: {}",
                        items.len(),
                        stop.message
                    ));
                    status = status.max(stop.exit);
                }
            }
        }
        let outcomes = self.deliver_groups(runtime, interrupts, &routes)?;
        let mut notices = Vec::new();
        for (group, outcomes) in routes.iter().zip(outcomes) {
            notices.extend(self.finish(group.items, group.request, outcomes));
        }
        drop(routes);
        drop(requests);
        // Notifications go out in this run, through the same routes.
        status = status.max(self.deliver_notices(runtime, interrupts, notices)?);
        Ok(status)
    }

    /// Every group's messages at once: one connection for all of a
    /// group's to a submission server; to MX hosts, messages for the same
    /// domains one after another (each reusing the session the one before
    /// left open), up to [`DOMAIN_CONCURRENCY`] sets of domains at once.
    /// A signal stops new work; the verdicts already pending are awaited.
    fn deliver_groups(
        &self,
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        groups: &[Group<'_>],
    ) -> Result<Vec<Vec<Outcome>>, PassStop> {
        // Sessions to MX hosts wait here for the run's next message to the
        // same host (a submission server's one session is `deliver_batch`'s).
        let pool = SessionPool::default();
        let jobs: Vec<Vec<Job<'_>>> = groups
            .iter()
            .map(|group| {
                group
                    .items
                    .iter()
                    .map(|item| Job {
                        envelope: &item.envelope,
                        mode: item.mode,
                        bounce: item.bounce,
                        open_message: &*item.open,
                        progress: &item.progress,
                        pool: Some(&pool),
                    })
                    .collect()
            })
            .collect();
        let transcript = &self.transcript;
        let work = futures_util::future::join_all(
            groups
                .iter()
                .zip(&jobs)
                .map(|(group, jobs)| deliver_group(&group.route, jobs, transcript)),
        );
        let mut work = Box::pin(work);
        let name = match runtime.block_on(interrupts.unless_interrupted(&mut work)) {
            Ok(outcomes) => {
                drop(work);
                runtime.block_on(pool.close());
                return Ok(outcomes);
            }
            Err(name) => name,
        };
        // As in a single delivery (FAIL7): a server may hold a whole
        // message; its verdict is awaited, nothing new starts, and what
        // was accepted is already on disk.
        self.shared.request_stop();
        if self.shared.verdict().is_pending() {
            say(&format!(
                "{name} received while a server was taking a message: waiting for its verdict; \
                 a second signal stops at once"
            ));
            let verdicts = async {
                tokio::select! {
                    _ = &mut work => {},
                    () = settled(self.shared.verdict()) => {},
                }
            };
            let _ = runtime.block_on(interrupts.unless_interrupted(verdicts));
        }
        Err(PassStop::Signal(name))
    }

    /// Records each item's outcome; returns the notifications it queued.
    fn finish(
        &self,
        items: &[Item],
        request: &request::Request,
        outcomes: Vec<Outcome>,
    ) -> Vec<String> {
        let now = fault::now();
        let mut notices = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes) {
            let mut locked = item.locked.borrow_mut();
            let mut failed = Vec::new();
            // UX6: (result, retry) of each failed recipient, for the log.
            let mut logged = Vec::new();
            let mut by_address = locked.entry.recipients_by_address();
            for r in &outcome.recipients {
                let Err(failure) = &r.result else {
                    continue;
                };
                if let Some(recipient) = by_address.get_mut(&r.recipient.to_string())
                    && recipient.state == State::Pending
                {
                    record_failure(recipient, failure, now);
                    if recipient.state == State::Failed {
                        failed.push(recipient.address.clone());
                        logged.push((&r.recipient, Disposition::Bounced, None, failure));
                    } else {
                        let retry = Some(recipient.next_attempt);
                        logged.push((&r.recipient, Disposition::Deferred, retry, failure));
                    }
                }
            }
            self.log_attempt(&locked, request, &outcome, &logged);
            if self.invocation.verbose > 0 {
                for r in &outcome.recipients {
                    match &r.result {
                        Ok(a) => say(&format!(
                            "{}: {}: delivered via {}: {}",
                            locked.id(),
                            r.recipient,
                            a.server,
                            a.reply
                        )),
                        Err(f) => say(&format!(
                            "{}: {}: not delivered: {f}",
                            locked.id(),
                            r.recipient
                        )),
                    }
                }
            }
            for r in &outcome.recipients {
                if let Err(f) = &r.result
                    && failed.contains(&r.recipient.to_string())
                {
                    say(&format!(
                        "{}: {}: failed for good: {f}",
                        locked.id(),
                        r.recipient
                    ));
                }
            }
            match self.notify(&mut locked, dsn_kind::FAILURE, &failed, now) {
                Ok(Some(id)) => notices.push(id),
                Ok(None) => {}
                Err(NoticeFailed) => keep_pending(&mut locked, &failed, now),
            }
            if let Err(e) = locked.save() {
                say(&format!(
                    "queue entry {}: cannot record the attempt: {e}",
                    locked.id()
                ));
            }
        }
        notices
    }

    /// UX6: one log line per recipient of an attempt on a queue entry.
    fn log_attempt(
        &self,
        locked: &Locked,
        request: &request::Request,
        outcome: &Outcome,
        failed: &[(&Address, Disposition, Option<i64>, &Failure)],
    ) {
        if request.log.is_off() {
            return;
        }
        let entry = &locked.entry;
        let account = request.account.as_deref();
        for r in &outcome.recipients {
            let Ok(accepted) = &r.result else {
                continue;
            };
            let recipient = r.recipient.to_string();
            let text = accepted.reply.text();
            let status = accepted
                .reply
                .enhanced()
                .map_or_else(|| "2.0.0".to_string(), |c| c.to_string());
            self.log.write(
                &request.log,
                &Record {
                    host: Some(&accepted.server),
                    session: Some(&accepted.session),
                    status,
                    smtp: Some(accepted.reply.code()),
                    detail: &text,
                    ..queue_record(entry, account, &recipient, Disposition::Delivered)
                },
            );
        }
        for (address, result, retry, failure) in failed {
            let recipient = address.to_string();
            let detail = match &failure.hint {
                Some(hint) => format!("{}; {hint}", failure.detail),
                None => failure.detail.clone(),
            };
            self.log.write(
                &request.log,
                &Record {
                    host: failure.server.as_deref(),
                    session: failure.session.as_deref(),
                    status: failure.classified.status.to_string(),
                    retry: *retry,
                    detail: &detail,
                    ..queue_record(entry, account, &recipient, *result)
                },
            );
        }
    }

    /// Where lines about an entry go when no delivery was tried (expiry):
    /// its account's log, else the runner's default account's.
    fn log_settings_of(&self, entry: &Entry) -> LogSettings {
        let account = self
            .config
            .select(entry.account.as_deref(), None)
            .ok()
            .flatten();
        request::log_settings(self.config, account)
    }

    /// The entry is older than the queue's lifetime: every recipient still
    /// pending fails, and the sender is told.
    fn expire(&self, locked: &mut Locked, now: i64, lifetime: i64) -> Option<String> {
        let mut failed = Vec::new();
        for recipient in locked.entry.recipients.iter_mut() {
            if recipient.state != State::Pending {
                continue;
            }
            // The last temporary status, made final: 4.7.10 becomes 5.7.10.
            let status = recipient
                .status
                .as_deref()
                .and_then(|s| crate::status::EnhancedCode::parse_prefix(s).map(|(c, _)| c))
                .unwrap_or(crate::status::EnhancedCode::new(4, 4, 7))
                .with_class(5);
            recipient.status = Some(status.to_string());
            recipient.detail = Some(format!(
                "gave up after {} in the queue{}",
                human(lifetime),
                recipient
                    .detail
                    .as_deref()
                    .map(|d| format!("; last error: {d}"))
                    .unwrap_or_default()
            ));
            recipient.state = State::Failed;
            failed.push(recipient.address.clone());
        }
        let settings = self.log_settings_of(&locked.entry);
        for recipient in &locked.entry.recipients {
            if failed.contains(&recipient.address) {
                let account = locked.entry.account.as_deref();
                self.log.write(
                    &settings,
                    &Record {
                        host: recipient.server.as_deref(),
                        status: recipient.status.clone().unwrap_or_default(),
                        detail: recipient.detail.as_deref().unwrap_or_default(),
                        ..queue_record(
                            &locked.entry,
                            account,
                            &recipient.address,
                            Disposition::Expired,
                        )
                    },
                );
            }
        }
        say(&format!(
            "queue entry {} expired after {}: {} recipient(s) not delivered",
            locked.id(),
            human(lifetime),
            failed.len()
        ));
        let notice = match self.notify(locked, dsn_kind::FAILURE, &failed, now) {
            Ok(notice) => notice,
            Err(NoticeFailed) => {
                // Expired again, and the sender told, on the next run.
                keep_pending(locked, &failed, now);
                None
            }
        };
        if let Err(e) = locked.save() {
            say(&format!(
                "queue entry {}: cannot record the expiry: {e}",
                locked.id()
            ));
        }
        notice
    }

    /// The delay warning (once per entry).
    fn warn(&self, locked: &mut Locked, now: i64) -> Option<String> {
        let pending: Vec<String> = locked.entry.pending().map(|r| r.address.clone()).collect();
        let notice = match self.notify(locked, dsn_kind::DELAY, &pending, now) {
            Ok(notice) => notice,
            // Tried again on the next run.
            Err(NoticeFailed) => return None,
        };
        locked.entry.warned = true;
        if let Err(e) = locked.save() {
            say(&format!(
                "queue entry {}: cannot record the warning: {e}",
                locked.id()
            ));
        }
        notice
    }
}

impl Runner<'_> {
    /// Queues a notification to the entry's sender about `recipients`
    /// (FAIL4), when the sender asked for it (RFC 3461 NOTIFY) and has an
    /// address. A require-mode message's notification carries its header
    /// only, has an empty return path, and requires TLS like the message
    /// (RFC 8689 section 5). Returns the notification's queue id.
    fn notify(
        &self,
        locked: &mut Locked,
        kind: NotifyName,
        recipients: &[String],
        now: i64,
    ) -> Result<Option<String>, NoticeFailed> {
        if recipients.is_empty() || !locked.entry.notify_on(kind) {
            return Ok(None);
        }
        // Named after what it reports, so that making it again after a
        // crash is a no-op, and a later failure of others is a new notice.
        let id = match kind {
            NotifyName::Delay => format!("{}-W", locked.id()),
            _ => format!("{}-B{}", locked.id(), digest_of(recipients)),
        };
        match self.compose_notification(locked, kind, recipients, now, &id) {
            Ok(created) => {
                if kind != NotifyName::Delay {
                    locked.entry.notices = locked.entry.notices.saturating_add(1);
                }
                if created && self.invocation.verbose > 0 {
                    say(&format!(
                        "{}: notification {id} queued for the sender",
                        locked.id()
                    ));
                }
                Ok(Some(id))
            }
            // It would fail the same way every time: the recipients are
            // failed, and the sender cannot be told.
            Err(NoticeError::Compose(e)) => {
                say(&format!(
                    "queue entry {}: the sender cannot be told: {e}",
                    locked.id()
                ));
                Ok(None)
            }
            Err(NoticeError::Store(e)) => {
                say(&format!(
                    "queue entry {}: the notification to the sender could not be queued: {e}",
                    locked.id()
                ));
                Err(NoticeFailed)
            }
        }
    }

    fn compose_notification(
        &self,
        locked: &Locked,
        kind: NotifyName,
        recipients: &[String],
        now: i64,
        id: &str,
    ) -> Result<bool, NoticeError> {
        let original = locked
            .message_prefix(crate::dsn::BOUNCE_SIZE_LIMIT as u64 + 1)
            .map_err(|e| NoticeError::Store(format!("cannot read the message: {e}")))?;
        let lifetime = i64::try_from(self.config.queue.lifetime.as_secs()).unwrap_or(0);
        let notice = Notice::compose(
            &locked.entry,
            &original,
            kind,
            recipients,
            now,
            &self.host_name,
            lifetime,
            id,
        )
        .map_err(NoticeError::Compose)?;
        self.queue
            .create(&notice.entry, &notice.bytes)
            .map_err(|e| NoticeError::Store(format!("cannot queue it: {e}")))
    }
}

/// Why a notification was not made: its content (it would fail again) or
/// the disk (it may work next time).
enum NoticeError {
    Compose(String),
    Store(String),
}

/// A log line's fields about a queue entry and one of its recipients.
fn queue_record<'a>(
    entry: &'a Entry,
    account: Option<&'a str>,
    recipient: &'a str,
    result: Disposition,
) -> Record<'a> {
    Record {
        queue_id: Some(&entry.id),
        sender: &entry.sender,
        recipient,
        account,
        mode: Some((entry.mode(), &entry.reason)),
        host: None,
        session: None,
        result,
        status: String::new(),
        smtp: None,
        retry: None,
        detail: "",
    }
}

/// Eight hexadecimal digits naming a set of addresses.
fn digest_of(addresses: &[String]) -> String {
    let mut sorted: Vec<&str> = addresses.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let digest = ring::digest::digest(&ring::digest::SHA256, sorted.join("\n").as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A delivery status notification about an entry, ready to deliver or
/// queue: its own entry (empty sender, one recipient) and its bytes.
pub(super) struct Notice {
    pub entry: Entry,
    pub bytes: Vec<u8>,
}

impl Notice {
    /// Composes the notification of `kind` about `recipients` of `entry`,
    /// whose message starts with `original` (at least its header). A
    /// require-mode message's notification carries its header only, has an
    /// empty return path, and requires TLS like the message (RFC 8689
    /// section 5; FAIL4, FAIL5).
    #[allow(clippy::too_many_arguments)]
    pub fn compose(
        entry: &Entry,
        original: &[u8],
        kind: NotifyName,
        recipients: &[String],
        now: i64,
        host_name: &str,
        lifetime: i64,
        id: &str,
    ) -> Result<Notice, String> {
        let sender = Address::parse(&entry.sender).map_err(|e| e.to_string())?;
        let require = entry.mode() == Mode::Require;
        // RFC 8689 section 5 and FAIL5: headers only for a require-mode
        // message, whatever RET asked; RET=HDRS is honoured too.
        let headers_only = require || entry.dsn.ret == Some(entry::RetName::Hdrs);
        let returned = if headers_only {
            crate::dsn::Returned::Headers(crate::dsn::header_block(original))
        } else {
            crate::dsn::Returned::Full(original)
        };
        let time = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|t| t.with_timezone(&chrono::Local).fixed_offset())
        };
        let now_time = time(now).ok_or("the clock is out of range")?;
        let by_address: std::collections::HashMap<&str, &entry::Recipient> = entry
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r))
            .collect();
        let addresses: Vec<(Address, &entry::Recipient)> = recipients
            .iter()
            .filter_map(|text| {
                let recipient = by_address.get(text.as_str())?;
                Some((Address::parse(text).ok()?, *recipient))
            })
            .collect();
        let reports: Vec<crate::dsn::RecipientReport<'_>> = addresses
            .iter()
            .map(|(address, r)| crate::dsn::RecipientReport {
                recipient: address,
                original_recipient: r.orcpt.as_deref(),
                status: r
                    .status
                    .as_deref()
                    .and_then(|s| crate::status::EnhancedCode::parse_prefix(s).map(|(c, _)| c))
                    .unwrap_or(if kind == NotifyName::Delay {
                        crate::status::EnhancedCode::new(4, 0, 0)
                    } else {
                        crate::status::EnhancedCode::new(5, 0, 0)
                    }),
                remote_mta: r.server.as_deref().map(remote_host),
                diagnostic: r.detail.as_deref(),
                last_attempt: r.last_attempt.and_then(time),
                will_retry_until: (kind == NotifyName::Delay)
                    .then(|| time(entry.created.saturating_add(lifetime)))
                    .flatten(),
            })
            .collect();
        let mut random = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| "the system's random number generator failed")?;
        // This machine's name as an address domain can take it (no trailing
        // dot); a name that cannot be one is no reason to tell nobody.
        let host_name = host_name.trim_end_matches('.');
        let host_name = if Address::from_parts("MAILER-DAEMON", Some(host_name)).is_ok() {
            host_name
        } else {
            "localhost"
        };
        let message_id = crate::message::compose::message_id_value(now_time, &random, host_name);
        let subject = subject_of(crate::dsn::header_block(original));
        let notification = crate::dsn::Notification {
            kind: if kind == NotifyName::Delay {
                crate::dsn::Kind::Delay
            } else {
                crate::dsn::Kind::Failure
            },
            reporting_mta: host_name,
            to: &sender,
            envid: entry.dsn.envid.as_deref(),
            arrival: time(entry.created).ok_or("the entry's time is out of range")?,
            now: now_time,
            message_id: &message_id,
            original_subject: subject.as_deref(),
            recipients: &reports,
            returned,
        };
        let bytes = crate::dsn::compose(&notification).map_err(|e| e.to_string())?;
        let envelope = Envelope {
            sender: crate::address::ReversePath::Null,
            recipients: vec![sender],
            content: crate::smtp::Content {
                eight_bit: bytes.iter().any(|&b| b >= 0x80),
                utf8_header: false,
                declared_8bitmime: false,
            },
            size: Some(bytes.len() as u64),
            dsn: crate::smtp::Dsn::default(),
        };
        let mut notice = Entry::new(
            id.to_string(),
            now,
            &envelope,
            // Require mode stays require mode (RFC 8689 section 5); other
            // notifications go as any message does.
            if require {
                Mode::Require
            } else {
                Mode::Default
            },
            format!("notification about {}", entry.id),
        );
        notice.bounce = true;
        notice.account.clone_from(&entry.account);
        notice.direct = entry.direct;
        Ok(Notice {
            entry: notice,
            bytes,
        })
    }
}

/// The host name in a `host[address]:port` or `host:port` server name.
fn remote_host(server: &str) -> &str {
    let end = server
        .find('[')
        .or_else(|| server.rfind(':'))
        .unwrap_or(server.len());
    &server[..end]
}

/// The Subject of a header block, unfolded, for the notification's text.
fn subject_of(header: &[u8]) -> Option<String> {
    let parsed = crate::message::Header::parse(header).ok()?;
    let field = parsed.all("Subject").next()?;
    Some(field.unfolded_value().trim().to_string())
}

/// A notification that was due could not be made or queued; the
/// recipients it was about stay pending, so that nobody fails unheard.
#[derive(Debug)]
struct NoticeFailed;

/// A duration in the largest whole unit: "5 days", "4 hours".
fn human(seconds: i64) -> String {
    let units = [
        (86_400, "day"),
        (3600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    for (size, name) in units {
        if seconds >= size && seconds % size == 0 {
            let n = seconds / size;
            return format!("{n} {name}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{seconds} seconds")
}

/// The two kinds of notification the runner sends.
mod dsn_kind {
    pub const FAILURE: super::NotifyName = super::NotifyName::Failure;
    pub const DELAY: super::NotifyName = super::NotifyName::Delay;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry from `sender` whose one recipient, bob, failed for good
    /// with 5.1.1, and the notice about it composed on `host_name`.
    fn notice_about_bob(sender: Address, host_name: &str) -> Result<Notice, String> {
        let envelope = Envelope {
            sender: crate::address::ReversePath::Address(sender),
            recipients: vec![Address::parse("bob@example.net").unwrap()],
            content: crate::smtp::Content::default(),
            size: Some(10),
            dsn: crate::smtp::Dsn::default(),
        };
        let mut entry = Entry::new(
            "0000000000000000AAAA".into(),
            1_700_000_000,
            &envelope,
            Mode::Default,
            "x".into(),
        );
        entry.recipients[0].state = State::Failed;
        entry.recipients[0].status = Some("5.1.1".into());
        let line = entry.to_line();
        assert!(
            Entry::parse(&line[..line.len() - 1]).is_ok(),
            "{}",
            entry.sender
        );
        Notice::compose(
            &entry,
            b"Subject: x\r\n\r\nbody\r\n",
            NotifyName::Failure,
            &["bob@example.net".to_string()],
            1_700_000_100,
            host_name,
            432_000,
            "0000000000000000AAAA-B1",
        )
    }

    /// Found in review: every sender the queue's state check accepts can
    /// be told (lettre refused some, and the entry was kept for ever).
    #[test]
    fn fail4_every_sender_the_queue_accepts_can_be_notified() {
        let mut refused = Vec::new();
        for sender in [
            "alice@example.org",
            "\"alice smith\"@example.org",
            "\"a\\\\b\"@example.org",
            "alice@[192.0.2.1]",
            "alice@[IPv6:2001:db8::1]",
            "ålice@exämple.org",
            "a..b@example.org",
            "\"\"@example.org",
        ] {
            let Ok(address) = Address::parse(sender) else {
                continue;
            };
            if address.to_string() != sender {
                continue;
            }
            if let Err(e) = notice_about_bob(address, "host.example.org") {
                refused.push(format!("{sender}: {e}"));
            }
        }
        assert!(refused.is_empty(), "{refused:#?}");
    }

    /// A host name lettre will not put after MAILER-DAEMON@ (here a
    /// trailing dot) does not keep the sender from being told.
    #[test]
    fn fail4_a_host_name_with_a_trailing_dot_can_still_compose() {
        let alice = Address::parse("alice@example.org").unwrap();
        let composed = notice_about_bob(alice, "host.example.org.");
        assert!(composed.is_ok(), "{:?}", composed.err());
    }
}
