//! Walks a delivery plan: dials, runs the session steps in the order the
//! mode demands, and records one outcome per recipient. It does not parse
//! SMTP; that is the session's job.
//!
//! Require mode, in this order (RFC 8689 4.2.1): TLS established, the
//! certificate verified, REQUIRETLS seen in the EHLO after TLS; only then
//! AUTH and MAIL FROM with REQUIRETLS. A failed step sends QUIT while the
//! dialogue is in step, and nothing of the message.
//!
//! The plan is a submission server ([`submit`]) or, for direct delivery,
//! `route`'s plan of MX hosts ([`direct`]), whose hosts are tried in order
//! with [`attempt`] until one takes the message.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::address::Address;
use crate::exit::{self, Classified, Sysexit};
use crate::outcome::{
    Accepted, Failure, Outcome, Progress, RecipientOutcome, SessionFacts, TlsFacts,
};
use crate::policy::Mode;
use crate::smtp::{
    AuthChoice, Capabilities, Credentials, DataOutcome, Envelope, Error, ErrorKind, Missing,
    Session, SessionConfig, StartTlsFailure, Step, Timeouts, Transaction, Transcript, Violation,
};
use crate::status::EnhancedCode;
use crate::tls::{TlsClient, TlsError};

/// How the connection to the server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain connection, then STARTTLS (RFC 3207), usually port 587.
    StartTls,
    /// TLS from the first byte (RFC 8314), usually port 465.
    Implicit,
    /// No TLS at all; never allowed in require mode or with AUTH.
    Plain,
}

/// A configured submission server and how to talk to it.
#[derive(Clone, Debug)]
pub struct Submission {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(Credentials, AuthChoice)>,
    /// The EHLO name; `None` picks the host name or an address literal.
    pub ehlo_name: Option<String>,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
    /// How advice names these settings (UX5).
    pub names: SettingNames,
}

/// How advice names the settings of a submission server (UX5): as the
/// user gave them, a flag or a key in a file, or where one would go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingNames {
    /// Settings the user gave, by configuration key, as they would
    /// recognise them: `("tls", "--tls implicit")`, or
    /// `("tls", "tls = \"implicit\" in account \"work\" (/etc/tlsend.toml)")`.
    pub given: Vec<(&'static str, String)>,
    /// Where an unset key would go, `account "work" (/etc/tlsend.toml)`;
    /// `None`: on the command line.
    pub account: Option<String>,
}

impl SettingNames {
    /// How to refer to `key`: as given, else where it would be set.
    pub fn name(&self, key: &str) -> String {
        if let Some((_, text)) = self.given.iter().find(|(k, _)| *k == key) {
            return text.clone();
        }
        match &self.account {
            Some(account) => format!("{key} in {account}"),
            None => flag_name(key),
        }
    }

    /// How to set `key` to `value`: the flag when the command line gave it
    /// (or there is no account), else the key in the account's file.
    pub fn suggest(&self, key: &str, value: &str) -> String {
        let by_flag = self
            .given
            .iter()
            .any(|(k, text)| *k == key && text.starts_with("--"));
        match &self.account {
            Some(account) if !by_flag => format!("{key} = \"{value}\" in {account}"),
            _ => format!("{} {value}", flag_name(key)),
        }
    }
}

/// The flag for a configuration key (`connect_timeout` has none of its own).
fn flag_name(key: &str) -> String {
    match key {
        "connect_timeout" | "data_timeout" => "--timeout".to_string(),
        "password" => "--password-command (or --password-file, --password-env)".to_string(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

impl Submission {
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Whether STARTTLS must succeed, or is used when the server offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTlsUse {
    Required,
    /// Opportunistic (RFC 7435): no STARTTLS, or a refusal, means plain text.
    IfOffered,
}

/// One server to try: its name (for SNI, certificates and messages), where
/// to connect, and how to secure the connection.
#[derive(Clone, Copy, Debug)]
pub struct Hop<'a> {
    pub name: &'a str,
    /// Connect here; `None` resolves `name` with the system's resolver.
    pub address: Option<IpAddr>,
    pub port: u16,
    pub security: Security,
    pub starttls: StartTlsUse,
    pub credentials: Option<&'a (Credentials, AuthChoice)>,
    pub ehlo_name: Option<&'a str>,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
    /// Sessions opened for this hop may wait in a [`SessionPool`] under
    /// this key for the next message: the host, the address and the trust
    /// it was verified with, so that no message reuses a session whose
    /// checks were not its own. `None`: never reused.
    pub reuse_key: Option<&'a str>,
    /// How an MX host's name was shown to be the domain's, for the log.
    pub mx_name: Option<&'static str>,
}

impl Hop<'_> {
    /// `name:port`, or `name[address]:port` for an MX host.
    pub fn server(&self) -> String {
        match self.address {
            Some(address) if address.to_string() != self.name => {
                format!("{}[{address}]:{}", self.name, self.port)
            }
            _ => format!("{}:{}", self.name, self.port),
        }
    }

    fn peer(&self) -> Peer {
        Peer {
            server: self.server(),
            mx_name: self.mx_name,
        }
    }
}

/// The server a transaction runs on, as outcomes and the log name it.
struct Peer {
    server: String,
    mx_name: Option<&'static str>,
}

/// A session that failed for every recipient of a message: the failed
/// step, and what is known of the session if one was set up (the log).
#[derive(Debug)]
pub struct SessionError {
    pub error: Error,
    pub session: Option<SessionFacts>,
}

impl From<Error> for SessionError {
    fn from(error: Error) -> SessionError {
        SessionError {
            error,
            session: None,
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl Submission {
    /// The submission server as a hop.
    pub fn hop(&self) -> Hop<'_> {
        Hop {
            name: &self.host,
            address: None,
            port: self.port,
            security: self.security,
            starttls: StartTlsUse::Required,
            credentials: self.credentials.as_ref(),
            ehlo_name: self.ehlo_name.as_deref(),
            connect_timeout: self.connect_timeout,
            timeouts: self.timeouts,
            reuse_key: None,
            mx_name: None,
        }
    }
}

/// A source of the message bytes, opened once per attempt.
pub type OpenMessage<'a> = &'a (dyn Fn() -> io::Result<Box<dyn AsyncRead + Unpin + Send>> + Sync);

/// One message to deliver: its envelope, its mode, its bytes, and where
/// results are recorded as soon as a server has answered for them, so that
/// a delivery stopped half-way (a signal) still knows who got the message.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub envelope: &'a Envelope,
    pub mode: Mode,
    /// A delivery status notification (empty return path): in require mode
    /// it still needs verified TLS, but goes to a hop that lacks REQUIRETLS
    /// rather than being discarded (RFC 8689 section 5).
    pub bounce: bool,
    pub open_message: OpenMessage<'a>,
    pub progress: &'a Progress,
    /// Where sessions wait for the next message (a queue run); `None`:
    /// each session ends with its message.
    pub pool: Option<&'a SessionPool>,
}

/// Sessions a pool keeps open at most (each is a socket).
const MAX_IDLE: usize = 32;

/// Open sessions waiting for the next message of a queue run, each under
/// its hop's [`Hop::reuse_key`]. Single-threaded, like the runtime.
#[derive(Default)]
pub struct SessionPool {
    idle: std::cell::RefCell<Vec<(String, Secured)>>,
}

impl SessionPool {
    fn take(&self, key: &str) -> Option<Secured> {
        let mut idle = self.idle.borrow_mut();
        let at = idle.iter().position(|(k, _)| k == key)?;
        Some(idle.swap_remove(at).1)
    }

    /// Keeps `session` for the next message, or, with [`MAX_IDLE`]
    /// waiting already, gives back the one that waited longest.
    fn put(&self, key: &str, session: Secured) -> Option<Secured> {
        let mut idle = self.idle.borrow_mut();
        idle.push((key.to_string(), session));
        (idle.len() > MAX_IDLE).then(|| idle.remove(0).1)
    }

    /// Says QUIT on every waiting session, all at once and without waiting
    /// for the goodbyes: a silent host cannot hold the run.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.borrow_mut());
        futures_util::future::join_all(
            idle.into_iter()
                .map(|(_, session)| session.quit_without_reply()),
        )
        .await;
    }
}

/// Delivers one message through a submission server. `tls` is required
/// unless `plan.security` is `Plain`.
pub async fn submit(
    plan: &Submission,
    tls: Option<&TlsClient>,
    job: Job<'_>,
    transcript: &Transcript,
) -> Outcome {
    let hop = plan.hop();
    let transcript = transcript.with_prefix(format!("tlsend: {}: ", hop.server()));
    match attempt(&hop, tls, job, &transcript).await {
        // `transact` recorded it as soon as the server had answered.
        Ok(outcome) => outcome,
        Err(SessionError { error, session }) => {
            let outcome = Outcome::all_failed(
                &job.envelope.recipients,
                Failure {
                    session: session.map(Box::new),
                    ..submission_failure(plan, &error, job.mode)
                },
            );
            job.progress.record(&outcome);
            outcome
        }
    }
}

/// Delivers several messages through a submission server on one
/// connection (a queue run), RSET between transactions; a connection that
/// breaks is opened again for the messages still to go. One outcome per
/// job, in order; each is recorded in its job's progress as the server
/// answers.
pub async fn submit_batch(
    plan: &Submission,
    tls: Option<&TlsClient>,
    jobs: &[Job<'_>],
    transcript: &Transcript,
) -> Vec<Outcome> {
    let hop = plan.hop();
    let peer = hop.peer();
    let server = peer.server.clone();
    let transcript = transcript.with_prefix(format!("tlsend: {server}: "));
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
    let failed_in = |job: &Job<'_>, error: &Error, session: Option<SessionFacts>| {
        let outcome = Outcome::all_failed(
            &job.envelope.recipients,
            Failure {
                session: session.map(Box::new),
                ..submission_failure(plan, error, job.mode)
            },
        );
        job.progress.record(&outcome);
        outcome
    };
    let failed = |job: &Job<'_>, error: &Error| failed_in(job, error, None);
    while outcomes.len() < jobs.len() {
        let rest = &jobs[outcomes.len()..];
        if rest[0].progress.stop_requested() {
            let stopped = Error::new(Step::Connect, ErrorKind::Stopped);
            outcomes.extend(rest.iter().map(|job| failed(job, &stopped)));
            break;
        }
        let verdict = rest[0].progress.verdict().clone();
        let mut session = match open_secured(&hop, tls, verdict, &transcript).await {
            Ok(session) => session,
            Err(error) => {
                // Nothing of any message was sent: each fails as its mode says.
                outcomes.extend(rest.iter().map(|job| failed(job, &error)));
                break;
            }
        };
        let before = outcomes.len();
        // What broke this connection, if anything did.
        let mut broken: Option<Error> = None;
        let mut completed = 0;
        for job in rest {
            if job.mode == Mode::Require && hop.security == Security::Plain {
                let error = Error::new(Step::Connect, ErrorKind::Missing(Missing::VerifiedTls));
                outcomes.push(failed(job, &error));
                continue;
            }
            if outcomes.len() > before {
                session.reset_before_next();
            }
            match session.transact_on(*job, &peer).await {
                Ok(outcome) => {
                    completed += 1;
                    outcomes.push(outcome);
                    if session.is_broken() {
                        // The data phase broke: the next reply could be
                        // this one's late verdict. A new connection.
                        broken = Some(Error::new(Step::Mail, ErrorKind::Closed));
                        break;
                    }
                }
                // RSET failed: the session, not this message, is done with;
                // it goes on the next connection (or waits, below).
                Err(error) if error.step == Step::Reset => {
                    transcript.note(&format!("connection not reusable: {error}"));
                    broken = Some(error);
                    break;
                }
                // A server that takes so many messages per connection: this
                // one goes on the next connection, nothing of it was taken.
                Err(error) if completed > 0 && closing_before_mail(&error) => {
                    transcript.note(&format!("the server ends the connection: {error}"));
                    broken = Some(error);
                    break;
                }
                Err(error) => {
                    outcomes.push(failed_in(job, &error, Some(session.facts(*job, &peer))));
                    if !error.dialogue_in_sync() || session.is_broken() {
                        broken = Some(error);
                        break;
                    }
                }
            }
        }
        match broken {
            None => session.quit().await,
            // A fresh connection that broke before any transaction went
            // through would break again: the rest waits for the next run,
            // rather than costing a connection and a time-out each.
            Some(error) if completed == 0 => {
                // Not offered to the server: whatever broke, they wait.
                let not_tried = Failure {
                    server: Some(server.clone()),
                    classified: Classified {
                        status: crate::status::codes::BAD_CONNECTION,
                        exit: Sysexit::TempFail,
                    },
                    detail: format!(
                        "not tried: the connection failed on a message before: {error}"
                    ),
                    hint: None,
                    session: None,
                };
                for job in &jobs[outcomes.len()..] {
                    let outcome = Outcome::all_failed(&job.envelope.recipients, not_tried.clone());
                    job.progress.record(&outcome);
                    outcomes.push(outcome);
                }
            }
            Some(_) => {}
        }
    }
    outcomes
}

/// The server ends the session before MAIL FROM was accepted (421, as
/// servers with a limit of messages per connection answer, or the
/// connection gone): nothing of the message was taken.
fn closing_before_mail(error: &Error) -> bool {
    error.step == Step::Mail
        && match &error.kind {
            ErrorKind::Reply(reply) => reply.code() == 421,
            ErrorKind::Closed | ErrorKind::Io(_) => true,
            _ => false,
        }
}

/// An open session to a submission server, TLS and AUTH done.
enum Secured {
    Plain(Box<Session<TcpStream>>),
    Tls(Box<Session<TlsStream<TcpStream>>>),
}

impl Secured {
    /// One transaction; then, with `reuse`, the session waits in the pool
    /// while the dialogue is in step; otherwise it ends (QUIT, without
    /// waiting for the goodbye once a server has taken the message).
    async fn transact_then(
        mut self,
        job: Job<'_>,
        peer: &Peer,
        reuse: Option<(&SessionPool, &str)>,
    ) -> Result<Outcome, SessionError> {
        let result = self
            .transact_on(job, peer)
            .await
            .map_err(|error| SessionError {
                error,
                session: Some(self.facts(job, peer)),
            });
        // A data phase that broke leaves the dialogue out of step even
        // when the transaction reports per-recipient results.
        let usable = !self.is_broken()
            && match &result {
                Ok(_) => true,
                Err(failed) => {
                    failed.error.dialogue_in_sync() && !closing_before_mail(&failed.error)
                }
            };
        let accepted = result
            .as_ref()
            .is_ok_and(|outcome| outcome.recipients.iter().any(|r| r.result.is_ok()));
        match reuse {
            Some((pool, key)) if usable => {
                if let Some(oldest) = pool.put(key, self) {
                    oldest.quit_without_reply().await;
                }
            }
            // The reply to QUIT could only say goodbye, and waiting for it
            // costs a round trip (Postfix's `smtp_skip_quit_response`).
            None if accepted => self.quit_without_reply().await,
            _ => self.quit().await,
        }
        result
    }

    async fn transact_on(&mut self, job: Job<'_>, peer: &Peer) -> Result<Outcome, Error> {
        match self {
            Secured::Plain(session) => transact_on(session, job, peer).await,
            Secured::Tls(session) => transact_on(session, job, peer).await,
        }
    }

    fn facts(&self, job: Job<'_>, peer: &Peer) -> SessionFacts {
        match self {
            Secured::Plain(session) => session_facts(session, job, peer),
            Secured::Tls(session) => session_facts(session, job, peer),
        }
    }

    async fn reset(&mut self) -> Result<(), Error> {
        match self {
            Secured::Plain(session) => session.reset().await,
            Secured::Tls(session) => session.reset().await,
        }
    }

    fn reset_before_next(&mut self) {
        match self {
            Secured::Plain(session) => session.reset_before_next(),
            Secured::Tls(session) => session.reset_before_next(),
        }
    }

    fn is_broken(&self) -> bool {
        match self {
            Secured::Plain(session) => session.is_broken(),
            Secured::Tls(session) => session.is_broken(),
        }
    }

    /// QUIT without waiting for the goodbye.
    async fn quit_without_reply(self) {
        match self {
            Secured::Plain(session) => session.quit_without_reply().await,
            Secured::Tls(session) => session.quit_without_reply().await,
        }
    }

    async fn quit(self) {
        match self {
            Secured::Plain(session) => session.quit().await,
            Secured::Tls(session) => session.quit().await,
        }
    }
}

/// Connects to a submission server and runs TLS and AUTH (no message).
async fn open_secured(
    hop: &Hop<'_>,
    tls: Option<&TlsClient>,
    verdict: crate::smtp::VerdictPending,
    transcript: &Transcript,
) -> Result<Secured, Error> {
    // The mode only matters for an opportunistic hop; a submission
    // server's STARTTLS is always required.
    match connect(hop, tls, Mode::Default, verdict, transcript).await? {
        Secured::Tls(mut session) => {
            if let Some((credentials, choice)) = hop.credentials
                && let Err(error) = session
                    .authenticate(credentials, *choice, (hop.name, hop.port))
                    .await
            {
                session.quit().await;
                return Err(error);
            }
            Ok(Secured::Tls(session))
        }
        plain => Ok(plain),
    }
}

/// What `--check-server` learnt from a submission server (UX7).
#[derive(Debug)]
pub struct Probed {
    /// The capabilities of the last EHLO: after TLS when there is TLS.
    pub capabilities: Capabilities,
    /// The handshake, when the connection is secured.
    pub tls: Option<ProbedTls>,
}

/// A finished handshake as `--check-server` shows it.
#[derive(Debug)]
pub struct ProbedTls {
    pub protocol: String,
    pub cipher: String,
    pub chain: Vec<crate::tls::CertificateSummary>,
    pub verified_by: String,
}

/// Connects to the submission server, secures the session exactly as a
/// send would (STARTTLS or TLS from the first byte, the configured trust),
/// says EHLO after TLS and then QUIT: the session stops before AUTH and
/// MAIL FROM, so nothing is sent and no secret is used (`--check-server`).
pub async fn probe(
    plan: &Submission,
    tls: Option<&TlsClient>,
    transcript: &Transcript,
) -> Result<Probed, Error> {
    let mut hop = plan.hop();
    hop.credentials = None;
    let secured = connect(&hop, tls, Mode::Default, Default::default(), transcript).await?;
    let probed = match &secured {
        Secured::Plain(session) => Probed {
            capabilities: session.capabilities().clone(),
            tls: None,
        },
        Secured::Tls(session) => Probed {
            capabilities: session.capabilities().clone(),
            tls: session.tls().map(|established| ProbedTls {
                protocol: established.protocol.clone(),
                cipher: established.cipher.clone(),
                chain: established.chain.clone(),
                verified_by: established.verified_by.clone(),
            }),
        },
    };
    secured.quit().await;
    Ok(probed)
}

/// Connects to the hop and secures the session as it asks: TLS from the
/// first byte, or STARTTLS (going on in plain text only when the hop is
/// opportunistic and the mode allows it, RFC 7435), or none. No AUTH.
async fn connect(
    hop: &Hop<'_>,
    tls: Option<&TlsClient>,
    mode: Mode,
    verdict: crate::smtp::VerdictPending,
    transcript: &Transcript,
) -> Result<Secured, Error> {
    let tls = match (hop.security, tls) {
        (Security::Plain, _) => None,
        (_, Some(tls)) => Some(tls),
        (_, None) => {
            return Err(Error::new(
                Step::Connect,
                ErrorKind::Missing(Missing::VerifiedTls),
            ));
        }
    };
    if let Some(tls) = tls {
        // The trust anchors load while the connection is set up.
        tls.preload();
    }
    let stream = match hop.address {
        Some(address) => {
            dial_address(
                SocketAddr::new(address, hop.port),
                hop.connect_timeout,
                transcript,
            )
            .await?
        }
        None => dial(hop.name, hop.port, hop.connect_timeout, transcript).await?,
    };
    let config = SessionConfig {
        ehlo_name: hop
            .ehlo_name
            .map(str::to_string)
            .unwrap_or_else(|| default_ehlo_name(stream.local_addr().ok())),
        timeouts: hop.timeouts,
        verdict,
    };
    match (hop.security, tls) {
        (Security::Implicit, Some(tls)) => {
            let (stream, established) = tls
                .handshake(hop.name, stream, hop.timeouts.command)
                .await
                .map_err(|e| Error::new(Step::TlsHandshake, ErrorKind::Tls(e)))?;
            transcript.note(&format!("TLS established: {established}"));
            let session =
                Session::open(stream, Some(established), config, transcript.clone()).await?;
            Ok(Secured::Tls(Box::new(session)))
        }
        (Security::StartTls, Some(tls)) => {
            let session = Session::open(stream, None, config, transcript.clone()).await?;
            match session.starttls(tls, hop.name).await {
                Ok(session) => Ok(Secured::Tls(Box::new(session))),
                Err(StartTlsFailure::Refused { error, session })
                    if hop.starttls == StartTlsUse::IfOffered && mode != Mode::Require =>
                {
                    // RFC 7435 and RFC 8689 4.2.2: opportunistic TLS goes on
                    // in plain text when the server has none to offer.
                    transcript.note(&format!("continuing without TLS: {error}"));
                    Ok(Secured::Plain(session))
                }
                Err(StartTlsFailure::Refused { error, session }) => {
                    session.quit().await;
                    Err(error)
                }
                Err(StartTlsFailure::Broken(error)) => Err(error),
            }
        }
        _ => {
            let session = Session::open(stream, None, config, transcript.clone()).await?;
            Ok(Secured::Plain(Box::new(session)))
        }
    }
}

/// One attempt on one server. `Err` means the session failed for every
/// recipient; `Ok` carries per-recipient results.
pub async fn attempt(
    hop: &Hop<'_>,
    tls: Option<&TlsClient>,
    job: Job<'_>,
    transcript: &Transcript,
) -> Result<Outcome, SessionError> {
    let mode = job.mode;
    if mode == Mode::Require && hop.security == Security::Plain {
        // Refuse before connecting: nothing about this server could help.
        return Err(Error::new(Step::Connect, ErrorKind::Missing(Missing::VerifiedTls)).into());
    }
    let peer = hop.peer();
    let reuse = job.pool.zip(hop.reuse_key);
    if let Some((pool, key)) = reuse {
        while let Some(mut session) = pool.take(key) {
            // RSET proves the session still works before a message is
            // trusted to it; one the server closed meanwhile is dropped.
            if session.reset().await.is_ok() {
                transcript.note("reusing the open connection");
                match session.transact_then(job, &peer, reuse).await {
                    // Its limit of messages per connection: a new one may do.
                    Err(failed) if closing_before_mail(&failed.error) => {
                        transcript.note(&format!("the server ends the connection: {failed}"));
                    }
                    result => return result,
                }
            }
        }
    }
    let verdict = job.progress.verdict().clone();
    match connect(hop, tls, mode, verdict, transcript).await? {
        Secured::Tls(session) => secured(*session, hop, job, &peer, reuse).await,
        plain => plain.transact_then(job, &peer, reuse).await,
    }
}

/// After TLS: the require-mode checks, then AUTH, then the transaction.
async fn secured(
    mut session: Session<TlsStream<TcpStream>>,
    hop: &Hop<'_>,
    job: Job<'_>,
    peer: &Peer,
    reuse: Option<(&SessionPool, &str)>,
) -> Result<Outcome, SessionError> {
    let requiretls = if session.capabilities().has("REQUIRETLS") {
        "advertised"
    } else {
        "not advertised"
    };
    session
        .transcript()
        .note(&format!("REQUIRETLS {requiretls} after TLS"));
    if let Err(error) = requiretls_use(&session, job) {
        let session_facts = session_facts(&session, job, peer);
        session.quit().await;
        return Err(SessionError {
            error,
            session: Some(session_facts),
        });
    }
    if let Some((credentials, choice)) = hop.credentials
        && let Err(error) = session
            .authenticate(credentials, *choice, (hop.name, hop.port))
            .await
    {
        let session_facts = session_facts(&session, job, peer);
        session.quit().await;
        return Err(SessionError {
            error,
            session: Some(session_facts),
        });
    }
    Secured::Tls(Box::new(session))
        .transact_then(job, peer, reuse)
        .await
}

/// Whether MAIL FROM carries REQUIRETLS for `job` on this session, or why
/// the job must not be sent here (RFC 8689 4.2.1 steps 4-5).
fn requiretls_use<S: AsyncRead + AsyncWrite + Unpin>(
    session: &Session<S>,
    job: Job<'_>,
) -> Result<bool, Error> {
    if job.mode != Mode::Require {
        return Ok(false);
    }
    match session.require_tls_ready() {
        Ok(()) => Ok(true),
        // RFC 8689 section 5: a notification with an empty return path is
        // not discarded because the next hop lacks REQUIRETLS; it still
        // travels only over verified TLS.
        Err(error)
            if job.bounce && matches!(error.kind, ErrorKind::Missing(Missing::RequireTls)) =>
        {
            session.transcript().note(
                "a notification: sent without REQUIRETLS, over verified TLS (RFC 8689 section 5)",
            );
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// What the log says about this session for `job` (UX6): REQUIRETLS is
/// used when the mode asks for it and the session passed the checks.
fn session_facts<S: AsyncRead + AsyncWrite + Unpin>(
    session: &Session<S>,
    job: Job<'_>,
    peer: &Peer,
) -> SessionFacts {
    SessionFacts {
        tls: session.tls().map(|tls| TlsFacts {
            version: tls.protocol.clone(),
            verification: tls.method,
        }),
        requiretls: job.mode == Mode::Require && session.require_tls_ready().is_ok(),
        mx_name: peer.mx_name,
    }
}

/// One mail transaction on an open session, which stays open. `Err`: the
/// transaction failed as a whole (the caller decides about QUIT).
async fn transact_on<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<S>,
    job: Job<'_>,
    peer: &Peer,
) -> Result<Outcome, Error> {
    if job.progress.stop_requested() {
        // A signal came while this session was being set up (another
        // domain's verdict is awaited): nothing of the message goes out.
        return Err(Error::new(Step::Mail, ErrorKind::Stopped));
    }
    let require = requiretls_use(session, job)?;
    // Before MAIL FROM: the dialogue stays in step.
    let message =
        (job.open_message)().map_err(|e| Error::new(Step::Mail, ErrorKind::Message(e)))?;
    let transaction = session.send_message(job.envelope, message, require).await?;
    let outcome = transaction_outcome(job, transaction, peer, session_facts(session, job, peer));
    // The server has answered for every recipient: record that before
    // anything else can stop this run, QUIT included.
    job.progress.record(&outcome);
    Ok(outcome)
}

/// Each recipient's result from the replies to its RCPT and to the data.
fn transaction_outcome(
    job: Job<'_>,
    transaction: Transaction,
    peer: &Peer,
    session: SessionFacts,
) -> Outcome {
    let mode = job.mode;
    let server = peer.server.as_str();
    let failed = |error: &Error| Failure {
        session: Some(Box::new(session.clone())),
        ..failure(Some(server.to_string()), error, mode)
    };
    let recipients = job
        .envelope
        .recipients
        .iter()
        .zip(transaction.recipients)
        .map(|(recipient, rcpt_reply)| {
            let result = if !rcpt_reply.is_positive() {
                let error = Error::new(Step::Rcpt, ErrorKind::Reply(rcpt_reply));
                Err(failed(&error))
            } else {
                match &transaction.data {
                    DataOutcome::Accepted(reply) => Ok(Accepted {
                        server: server.to_string(),
                        reply: reply.clone(),
                        session: session.clone(),
                    }),
                    DataOutcome::Failed(error) => Err(failed(error)),
                    DataOutcome::NoRecipients => Err(Failure {
                        server: Some(server.to_string()),
                        classified: Classified {
                            status: EnhancedCode::new(5, 5, 0),
                            exit: Sysexit::Protocol,
                        },
                        detail: "the server accepted a recipient, then refused to take the message"
                            .into(),
                        hint: None,
                        session: Some(Box::new(session.clone())),
                    }),
                }
            };
            RecipientOutcome {
                recipient: recipient.clone(),
                result,
            }
        })
        .collect();
    Outcome { recipients }
}

/// Resolves and connects within `limit`, trying each address in turn.
async fn dial(
    host: &str,
    port: u16,
    limit: Duration,
    transcript: &Transcript,
) -> Result<TcpStream, Error> {
    let connect_error = |e: io::Error| Error::new(Step::Connect, ErrorKind::Io(e));
    let deadline = crate::smtp::deadline_after(limit);
    let addresses: Vec<SocketAddr> =
        match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(Error::new(Step::Connect, ErrorKind::Timeout(limit))),
            Ok(Err(e)) => {
                return Err(connect_error(io::Error::new(
                    e.kind(),
                    format!("cannot resolve {host}: {e}"),
                )));
            }
            Ok(Ok(addresses)) => addresses.collect(),
        };
    let mut last_error = None;
    for address in addresses {
        transcript.note(&format!("connecting to {address}"));
        match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
            Err(_) => return Err(Error::new(Step::Connect, ErrorKind::Timeout(limit))),
            Ok(Ok(stream)) => {
                no_delay(&stream, transcript);
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = Some(io::Error::new(e.kind(), format!("{address}: {e}"))),
        }
    }
    Err(connect_error(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
    })))
}

/// Connects to one address within `limit` (an MX host's address, which
/// route looked up with its DNSSEC status; never the system's resolver).
async fn dial_address(
    address: SocketAddr,
    limit: Duration,
    transcript: &Transcript,
) -> Result<TcpStream, Error> {
    transcript.note(&format!("connecting to {address}"));
    match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Err(_) => Err(Error::new(Step::Connect, ErrorKind::Timeout(limit))),
        Ok(Err(e)) => Err(Error::new(
            Step::Connect,
            ErrorKind::Io(io::Error::new(e.kind(), format!("{address}: {e}"))),
        )),
        Ok(Ok(stream)) => {
            no_delay(&stream, transcript);
            Ok(stream)
        }
    }
}

/// Every write here is a complete command group, a TLS flight or the end
/// of the message: Nagle's algorithm would only hold the second of two
/// such writes back for an acknowledgment, a round trip each time.
fn no_delay(stream: &TcpStream, transcript: &Transcript) {
    if let Err(e) = stream.set_nodelay(true) {
        transcript.note(&format!("cannot set TCP_NODELAY: {e}"));
    }
}

/// The host's fully qualified name, else an address literal of the local
/// end (RFC 5321 4.1.4 allows one when no name is meaningful). A short host
/// name is completed from /etc/hosts, as `hostname -f` does on Debian
/// (`127.0.1.1 host.example.org host`).
fn default_ehlo_name(local: Option<SocketAddr>) -> String {
    let usable = |name: &str| {
        name.contains('.') && crate::address::Address::from_parts("x", Some(name)).is_ok()
    };
    if let (_, Some(full)) = crate::local::full_host_name()
        && usable(&full)
    {
        return full;
    }
    match local {
        Some(SocketAddr::V4(a)) => format!("[{}]", a.ip()),
        Some(SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
        None => "localhost".to_string(),
    }
}

/// A failure for the report: classified, explained, with what to do next (UX5).
pub fn failure(server: Option<String>, error: &Error, mode: Mode) -> Failure {
    let classified = exit::classify(error, mode);
    Failure {
        server,
        classified,
        detail: error.to_string(),
        hint: hint(error, &classified, mode),
        session: None,
    }
}

/// A submission server's failure, its advice naming the settings as the
/// user gave them, and a port that speaks the other kind of TLS said so.
pub fn submission_failure(plan: &Submission, error: &Error, mode: Mode) -> Failure {
    let classified = exit::classify(error, mode);
    let names = &plan.names;
    let (detail, hint) = match mismatch(plan, error) {
        Some((detail, hint)) => (detail, Some(hint)),
        None => (
            error.to_string(),
            submission_hint(error, names, mode).or_else(|| hint(error, &classified, mode)),
        ),
    };
    Failure {
        server: Some(plan.server()),
        classified,
        detail,
        hint,
        session: None,
    }
}

/// The port speaks the other kind of TLS than `tls` asks for: implicit TLS
/// met a plain-text greeting, or STARTTLS met silence or a TLS record.
fn mismatch(plan: &Submission, error: &Error) -> Option<(String, String)> {
    let names = &plan.names;
    let port = plan.port;
    match (plan.security, error.step, &error.kind) {
        (
            Security::Implicit,
            Step::TlsHandshake,
            ErrorKind::Tls(TlsError::Handshake {
                error:
                    rustls::Error::InvalidMessage(_)
                    | rustls::Error::InappropriateMessage { .. }
                    | rustls::Error::InappropriateHandshakeMessage { .. },
                ..
            }),
        ) => Some((
            format!(
                "TLS handshake: port {port} answered in plain text (an SMTP greeting), not TLS: \
                 it expects STARTTLS, and {} asks for TLS from the first byte",
                names.name("tls")
            ),
            format!(
                "nothing was sent; use {} (usually port 587), or the port that speaks TLS at \
                 once (usually 465)",
                names.suggest("tls", "starttls")
            ),
        )),
        (Security::StartTls | Security::Plain, Step::Greeting, kind)
            if matches!(kind, ErrorKind::Timeout(_)) || is_tls_record(kind) =>
        {
            let what = if is_tls_record(kind) {
                format!("port {port} answered with TLS, not an SMTP greeting")
            } else {
                format!("{error}: no greeting arrived; port {port} may expect TLS at once")
            };
            Some((
                what,
                format!(
                    "if it speaks TLS at once (usually port 465), use {}; {} expects a plain-text \
                     greeting first",
                    names.suggest("tls", "implicit"),
                    names.name("tls")
                ),
            ))
        }
        _ => None,
    }
}

/// A greeting that is the start of a TLS record (handshake or alert).
fn is_tls_record(kind: &ErrorKind) -> bool {
    match kind {
        ErrorKind::Protocol(Violation::Garbled(crate::smtp::reply::ReplyError::Malformed(
            line,
        ))) => {
            let mut bytes = line.chars();
            matches!(
                (bytes.next(), bytes.next()),
                (Some('\u{15}' | '\u{16}'), Some('\u{3}'))
            )
        }
        _ => false,
    }
}

/// Advice that names the submission server's settings as the user gave them.
fn submission_hint(error: &Error, names: &SettingNames, mode: Mode) -> Option<String> {
    let text = match &error.kind {
        ErrorKind::Missing(Missing::StartTls) => format!(
            "nothing was sent; check that this port offers STARTTLS (use {} for port 465)",
            names.suggest("tls", "implicit")
        ),
        ErrorKind::Missing(Missing::VerifiedTls) if error.step == Step::Connect => format!(
            "nothing was sent; require mode needs TLS, and {} turns it off: use {} or implicit",
            names.name("tls"),
            names.suggest("tls", "starttls")
        ),
        ErrorKind::Missing(Missing::AuthMechanism { .. }) => {
            format!("change {}", names.name("auth"))
        }
        ErrorKind::Timeout(_) if error.step == Step::Connect => format!(
            "check {} and {}, or raise {}",
            names.name("host"),
            names.name("port"),
            names.name("connect_timeout")
        ),
        ErrorKind::Timeout(_) if error.step == Step::EndOfData => format!(
            "the server did not confirm the message in time; it may still deliver it; raise {}",
            names.name("data_timeout")
        ),
        ErrorKind::Timeout(_) => format!(
            "the server stopped answering; try again later, or raise {}",
            names.name("timeout")
        ),
        ErrorKind::Io(_) if error.step == Step::Connect => format!(
            "check {} and {}, and that the server is up",
            names.name("host"),
            names.name("port")
        ),
        ErrorKind::Tls(TlsError::Handshake {
            error: rustls::Error::InvalidCertificate(e),
            ..
        }) => match e {
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                format!(
                    "nothing was sent; for a private CA set {}, or pin the certificate with {} \
                     (tlsend --check-server shows its fingerprint)",
                    names.name("ca_file"),
                    names.name("fingerprint")
                )
            }
            rustls::CertificateError::Other(other)
                if other.0.downcast_ref::<crate::tls::PinMismatch>().is_some() =>
            {
                format!(
                    "nothing was sent; if the server changed its certificate on purpose, update {}",
                    names.name("fingerprint")
                )
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => format!(
                "nothing was sent; set {} to a name the certificate carries",
                names.name("host")
            ),
            _ => return None,
        },
        ErrorKind::Reply(_) | ErrorKind::Missing(Missing::Auth)
            if exit::classify(error, mode).exit == Sysexit::NoPerm =>
        {
            format!(
                "check {}, {} and {}",
                names.name("user"),
                names.name("auth"),
                names.name("password")
            )
        }
        _ => return None,
    };
    Some(text)
}

fn hint(error: &Error, classified: &Classified, mode: Mode) -> Option<String> {
    let text = match &error.kind {
        ErrorKind::Missing(Missing::RequireTls) => {
            "nothing was sent; use a server that advertises REQUIRETLS, or send without \
             --require-tls if the message may travel without it"
        }
        ErrorKind::Missing(Missing::StartTls) => {
            "nothing was sent; check that this port offers STARTTLS (use tls = \"implicit\" for port 465)"
        }
        ErrorKind::Missing(Missing::VerifiedTls) if error.step == Step::Connect => {
            "nothing was sent; require mode needs TLS, so this server needs tls = \"starttls\" or \"implicit\""
        }
        ErrorKind::Reply(_) if error.step == Step::StartTls && mode == Mode::Require => {
            "the server would not start TLS, so nothing was sent"
        }
        ErrorKind::Tls(TlsError::Handshake { .. })
        | ErrorKind::Protocol(Violation::BytesAfterStartTls(_)) => "nothing was sent",
        ErrorKind::Protocol(_) => {
            "the server broke the SMTP protocol, so the session was abandoned"
        }
        ErrorKind::Timeout(_) if error.step == Step::Connect => {
            "check host and port, or raise the time limit with --timeout"
        }
        ErrorKind::Timeout(_) => {
            "the server stopped answering; try again later, or raise the time limit with --timeout"
        }
        ErrorKind::Io(_) if error.step == Step::Connect => {
            "check host and port, and that the server is up"
        }
        _ if classified.exit == Sysexit::NoPerm => "check user, auth and the password source",
        _ if classified.is_temporary() => "this is temporary; try again later",
        _ => return None,
    };
    Some(text.to_string())
}

/// The addresses of a failed delivery, for a one-line report.
pub fn list(addresses: &[&Address]) -> String {
    let shown: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    shown.join(", ")
}

mod direct;

#[cfg(test)]
mod pool_tests;

pub use direct::{DirectSettings, TlsClients, direct};

#[cfg(test)]
mod advice_tests {
    use super::*;

    fn plan(names: SettingNames, security: Security, port: u16) -> Submission {
        Submission {
            host: "smtp.example.org".into(),
            port,
            security,
            credentials: None,
            ehlo_name: None,
            connect_timeout: Duration::from_secs(30),
            timeouts: Timeouts::default(),
            names,
        }
    }

    fn from_file() -> SettingNames {
        SettingNames {
            given: vec![(
                "tls",
                "tls = \"implicit\" in account \"work\" (/etc/tlsend.toml)".into(),
            )],
            account: Some("account \"work\" (/etc/tlsend.toml)".into()),
        }
    }

    fn from_flags() -> SettingNames {
        SettingNames {
            given: vec![
                ("tls", "--tls implicit".into()),
                ("timeout", "--timeout 5".into()),
            ],
            account: None,
        }
    }

    // covers: UX5
    #[test]
    fn ux5_advice_names_the_flag_or_the_key_and_file_the_user_used() {
        let timeout = Error::new(Step::Mail, ErrorKind::Timeout(Duration::from_secs(5)));
        let failure = submission_failure(
            &plan(from_flags(), Security::Implicit, 465),
            &timeout,
            Mode::Default,
        );
        assert_eq!(
            failure.hint.as_deref(),
            Some("the server stopped answering; try again later, or raise --timeout 5")
        );
        assert!(failure.detail.contains("no complete reply within 5 s"));
        let failure = submission_failure(
            &plan(from_file(), Security::Implicit, 465),
            &timeout,
            Mode::Default,
        );
        assert_eq!(
            failure.hint.as_deref(),
            Some(
                "the server stopped answering; try again later, or raise timeout in account \
                 \"work\" (/etc/tlsend.toml)"
            )
        );
        let no_starttls = Error::new(Step::StartTls, ErrorKind::Missing(Missing::StartTls));
        let failure = submission_failure(
            &plan(SettingNames::default(), Security::StartTls, 587),
            &no_starttls,
            Mode::Default,
        );
        assert!(
            failure
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("use --tls implicit for port 465")),
            "{failure}"
        );
    }

    // covers: UX5
    #[test]
    fn ux5_a_tls_record_instead_of_a_greeting_is_named() {
        let garbled = Error::new(
            Step::Greeting,
            ErrorKind::Protocol(Violation::Garbled(
                crate::smtp::reply::ReplyError::Malformed("\u{15}\u{3}\u{3}\0\u{2}\u{2}".into()),
            )),
        );
        let failure = submission_failure(
            &plan(from_file(), Security::StartTls, 465),
            &garbled,
            Mode::Default,
        );
        assert!(
            failure.detail.contains("port 465 answered with TLS"),
            "{failure}"
        );
        assert!(
            failure.hint.as_deref().is_some_and(
                |h| h.contains("use tls = \"implicit\" in account \"work\" (/etc/tlsend.toml)")
            ),
            "{failure}"
        );
    }
}
