//! The result of a delivery, one entry per recipient (the queue, DSNs and
//! the exit status all read it). A failure keeps its status code, its exit
//! status and the words that explain it, so it can be reported, saved or
//! bounced without the error object that caused it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crate::address::Address;
use crate::exit::{self, Classified, Sysexit};
use crate::smtp::{Reply, VerdictPending};
use crate::tls::Verification;

/// What happened to one recipient.
#[derive(Clone, Debug)]
pub struct RecipientOutcome {
    pub recipient: Address,
    pub result: Result<Accepted, Failure>,
}

/// The server took the message for this recipient.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub server: String,
    pub reply: Reply,
    /// The session that carried the message.
    pub session: SessionFacts,
}

/// What a log line says about the session that answered for a recipient
/// (UX6): its TLS, whether MAIL FROM carried REQUIRETLS, and for an MX
/// host how its name was shown to be the domain's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFacts {
    /// `None`: the session had no TLS.
    pub tls: Option<TlsFacts>,
    pub requiretls: bool,
    /// "dnssec", "mta-sts" or "mta-sts-testing"; `None` for a submission
    /// server or an MX name nothing vouched for.
    pub mx_name: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFacts {
    /// "TLS 1.3".
    pub version: String,
    pub verification: Verification,
}

/// Why this recipient did not get the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `host:port` when a server was involved.
    pub server: Option<String>,
    pub classified: Classified,
    /// What failed and where: "MAIL FROM: the server does not advertise …".
    pub detail: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// The session that refused, when one was set up (for the log).
    pub session: Option<Box<SessionFacts>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.classified.status;
        write!(f, "{status}")?;
        if let Some(name) = exit::status_name(status) {
            write!(f, " {name}")?;
        }
        write!(f, ": ")?;
        if let Some(server) = &self.server {
            write!(f, "{server}: ")?;
        }
        write!(f, "{}", self.detail)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Every recipient's outcome of one delivery.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub recipients: Vec<RecipientOutcome>,
}

impl Outcome {
    /// The same failure for every recipient (the session failed as a whole).
    pub fn all_failed(recipients: &[Address], failure: Failure) -> Outcome {
        Outcome {
            recipients: recipients
                .iter()
                .map(|r| RecipientOutcome {
                    recipient: r.clone(),
                    result: Err(failure.clone()),
                })
                .collect(),
        }
    }

    pub fn all_accepted(&self) -> bool {
        self.recipients.iter().all(|r| r.result.is_ok())
    }

    pub fn exit_status(&self) -> Sysexit {
        exit::for_outcomes(
            self.recipients
                .iter()
                .map(|r| r.result.as_ref().err().map(|f| &f.classified)),
        )
    }

    /// The recipients that did not get the message, with why.
    pub fn undelivered(&self) -> impl Iterator<Item = (&Address, &Failure)> {
        self.recipients
            .iter()
            .filter_map(|r| r.result.as_ref().err().map(|f| (&r.recipient, f)))
    }
}

/// Called with each result as it is recorded.
pub type RecordHook = Box<dyn Fn(&Outcome)>;

/// Results recorded while a delivery runs, as each server answers. When the
/// delivery is stopped before it finishes (FAIL7), what was recorded still
/// counts: a recipient whose server took the message is never resent.
#[derive(Default)]
pub struct Progress {
    recorded: RefCell<HashMap<Address, Result<Accepted, Failure>>>,
    verdict: VerdictPending,
    /// Set when the run is to stop (a signal) but waits for a pending
    /// verdict: no new connection is started meanwhile. Shared by the
    /// messages of one queue run.
    stop: std::rc::Rc<std::cell::Cell<bool>>,
    /// Told of every result as it is recorded (the queue makes it durable
    /// before the session goes on).
    hook: Option<RecordHook>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("recorded", &self.recorded)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// A progress that shares `other`'s verdict counter and stop flag (the
    /// messages of one queue run) and calls `hook` on every record.
    pub fn joined(other: &Progress, hook: RecordHook) -> Progress {
        Progress {
            recorded: RefCell::default(),
            verdict: other.verdict.clone(),
            stop: other.stop.clone(),
            hook: Some(hook),
        }
    }

    /// The flag the sessions of this delivery raise while a server's
    /// verdict on the whole message is pending.
    pub fn verdict(&self) -> &VerdictPending {
        &self.verdict
    }

    /// Asks the delivery to start nothing new (the run is stopping).
    pub fn request_stop(&self) {
        self.stop.set(true);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.get()
    }

    /// Records results, replacing earlier ones for the same recipients.
    pub fn record(&self, outcome: &Outcome) {
        {
            let mut recorded = self.recorded.borrow_mut();
            for r in &outcome.recipients {
                recorded.insert(r.recipient.clone(), r.result.clone());
            }
        }
        if let Some(hook) = &self.hook {
            hook(outcome);
        }
    }

    /// The outcome of a delivery that was stopped: what was recorded for
    /// each of `recipients`, and `stopped` for the rest.
    pub fn stopped(&self, recipients: &[Address], stopped: &Failure) -> Outcome {
        let recorded = self.recorded.borrow();
        let recipients = recipients
            .iter()
            .map(|recipient| RecipientOutcome {
                recipient: recipient.clone(),
                result: recorded
                    .get(recipient)
                    .cloned()
                    .unwrap_or_else(|| Err(stopped.clone())),
            })
            .collect();
        Outcome { recipients }
    }
}
