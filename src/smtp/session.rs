//! One SMTP client session over a stream someone else dialed (RFC 5321,
//! RFC 3207 STARTTLS, RFC 2920 PIPELINING, RFC 4954 AUTH, RFC 8689 REQUIRETLS).
//!
//! The order of the steps is carried by types:
//! - [`Session::open`] reads the greeting and sends EHLO;
//! - [`Session::starttls`] consumes a plaintext session and returns a session
//!   over TLS whose capabilities come only from the EHLO sent after the
//!   handshake: what the server said in plaintext cannot leak past it (SUB5);
//! - `authenticate` exists only for sessions over TLS (SUB6);
//! - [`Session::send_message`] in require mode builds MAIL FROM only with a
//!   `RequireTls` proof made from this session's TLS verification and its
//!   post-TLS capabilities (SUB2-SUB4).
//!
//! After a protocol violation, a timeout or a dead connection the session is
//! marked broken and [`Session::quit`] says nothing more (as mox's client
//! does when "botched").

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::auth::{self, AuthChoice, Credentials, Mechanism};
use super::command::{self, Envelope, RequireTls};
use super::conn::{Connection, Timeouts};
use super::data::DataEncoder;
use super::ehlo::Capabilities;
use super::error::{Error, ErrorKind, Missing, Step, Violation};
use super::reply::Reply;
use super::transcript::Transcript;
use crate::tls::{Established, TlsClient};

/// Most commands written in one pipelined group before their replies are
/// read. Their replies, some 40 KiB, fit in the socket buffers between a
/// client and a server that is not reading, so neither side can block the
/// other; and 1000 is Postfix's default recipient limit, so a usual
/// envelope still goes in one group.
const PIPELINE_GROUP: usize = 1000;

/// What a session needs to know besides the stream.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The name sent with EHLO: a domain, or an address literal like `[192.0.2.1]`.
    pub ehlo_name: String,
    pub timeouts: Timeouts,
    /// Raised while the server holds the whole message and its verdict is
    /// awaited, so that whoever might stop the session knows not to.
    pub verdict: VerdictPending,
}

/// Whether a session of this delivery has sent the whole message (the
/// final dot is out) and waits for the server's verdict. Stopping then would
/// leave it unknown whether the server took the message (RFC 1047), so a
/// caller that wants to stop (a signal) waits for the verdict instead.
/// Clones share the count: with domains delivered concurrently, several
/// sessions may be waiting at once.
#[derive(Clone, Debug, Default)]
pub struct VerdictPending(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl VerdictPending {
    pub fn is_pending(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Counts one session as waiting until the guard is dropped (also when
    /// the session's future is dropped mid-wait).
    fn raise(&self) -> VerdictGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        VerdictGuard(self.0.clone())
    }
}

struct VerdictGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for VerdictGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An SMTP session after EHLO.
pub struct Session<S> {
    conn: Connection<S>,
    caps: Capabilities,
    tls: Option<Established>,
    config: SessionConfig,
    broken: bool,
    /// An RSET goes ahead of the next transaction's MAIL (see
    /// [`Session::reset_before_next`]).
    reset_pending: bool,
}

/// Why STARTTLS did not give a TLS session.
pub enum StartTlsFailure<S> {
    /// STARTTLS is not offered or the server refused it; the dialogue is
    /// still in step, so the caller can QUIT (or, where policy allows, go on
    /// in plain text).
    Refused {
        error: Error,
        session: Box<Session<S>>,
    },
    /// The connection cannot be used any more.
    Broken(Error),
}

/// The result of one mail transaction.
#[derive(Debug)]
pub struct Transaction {
    /// The reply to each RCPT, in envelope order.
    pub recipients: Vec<Reply>,
    pub data: DataOutcome,
}

/// What happened after the recipients were known.
#[derive(Debug)]
pub enum DataOutcome {
    /// The server took the message for every accepted recipient.
    Accepted(Reply),
    /// No recipient was accepted, so no message data was sent.
    NoRecipients,
    /// The data phase failed; every accepted recipient shares this error.
    Failed(Error),
}

/// How the server answered MAIL, the RCPTs and DATA.
struct Answered {
    recipients: Vec<Reply>,
    data: DataGate,
}

/// Whether the message data may follow.
enum DataGate {
    /// 354: send the message.
    Open,
    /// No recipient was accepted; nothing is sent.
    NoRecipients,
    Refused(Error),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Reads the greeting and says EHLO (HELO if EHLO is refused). `tls` is
    /// the handshake result when the stream is already TLS (port 465).
    pub async fn open(
        stream: S,
        tls: Option<Established>,
        config: SessionConfig,
        transcript: Transcript,
    ) -> Result<Session<S>, Error> {
        let mut conn = Connection::new(stream, config.timeouts, transcript);
        let greeting = conn.read_reply(Step::Greeting).await?;
        // RFC 5321 3.1: 220 is service ready; 554 (or 4xx) means no service.
        if greeting.code() != 220 {
            return Err(refusal_or_violation(Step::Greeting, greeting, "220"));
        }
        let mut session = Session {
            conn,
            caps: Capabilities::none(),
            tls,
            config,
            broken: false,
            reset_pending: false,
        };
        let step = if session.tls.is_some() {
            Step::EhloAfterTls
        } else {
            Step::Ehlo
        };
        session.hello(step).await?;
        Ok(session)
    }

    /// The capabilities of the latest EHLO.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The TLS handshake this session runs over, if any.
    pub fn tls(&self) -> Option<&Established> {
        self.tls.as_ref()
    }

    /// The transcript this session writes to.
    pub fn transcript(&self) -> &Transcript {
        &self.conn.transcript
    }

    async fn hello(&mut self, step: Step) -> Result<(), Error> {
        let ehlo = format!("EHLO {}", self.config.ehlo_name);
        self.command(step, &ehlo).await?;
        let reply = self.read(step).await?;
        if reply.is_positive() {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(());
        }
        // RFC 5321 4.1.4: a server that does not know EHLO answers 500/502;
        // fall back to HELO, which offers no extensions (so no STARTTLS).
        if reply.is_permanent() {
            let helo = format!("HELO {}", self.config.ehlo_name);
            self.command(step, &helo).await?;
            let reply = self.read(step).await?;
            if reply.is_positive() {
                self.caps = Capabilities::none();
                return Ok(());
            }
            return Err(self.fail(refusal_or_violation(step, reply, "250 to HELO")));
        }
        Err(self.fail(refusal_or_violation(step, reply, "250 to EHLO")))
    }

    /// Upgrades the session with STARTTLS (RFC 3207): checks the keyword,
    /// sends STARTTLS, requires a 220 and an empty receive buffer, runs the
    /// handshake against `client`'s trust for `server_name`, and says EHLO
    /// again. Capabilities learned before TLS are dropped with `self`.
    pub async fn starttls(
        mut self,
        client: &TlsClient,
        server_name: &str,
    ) -> Result<Session<TlsStream<S>>, StartTlsFailure<S>> {
        if !self.caps.has("STARTTLS") {
            let error = Error::new(Step::StartTls, ErrorKind::Missing(Missing::StartTls));
            return Err(StartTlsFailure::Refused {
                error,
                session: Box::new(self),
            });
        }
        let reply = match self.command(Step::StartTls, "STARTTLS").await {
            Ok(()) => self.read(Step::StartTls).await,
            Err(e) => Err(e),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return Err(StartTlsFailure::Broken(error)),
        };
        if reply.code() != 220 {
            let error = refusal_or_violation(Step::StartTls, reply, "220 to STARTTLS");
            if error.dialogue_in_sync() {
                return Err(StartTlsFailure::Refused {
                    error,
                    session: Box::new(self),
                });
            }
            return Err(StartTlsFailure::Broken(error));
        }
        // SUB7: nothing the server sent before the handshake may survive it.
        let (stream, timeouts, transcript) =
            self.conn.into_stream().map_err(StartTlsFailure::Broken)?;
        let (stream, established) = client
            .handshake(server_name, stream, timeouts.command)
            .await
            .map_err(|e| {
                StartTlsFailure::Broken(Error::new(Step::TlsHandshake, ErrorKind::Tls(e)))
            })?;
        transcript.note(&format!("TLS established: {established}"));
        let mut session = Session {
            conn: Connection::new(stream, timeouts, transcript),
            caps: Capabilities::none(),
            tls: Some(established),
            config: self.config,
            broken: false,
            reset_pending: false,
        };
        match session.hello(Step::EhloAfterTls).await {
            Ok(()) => Ok(session),
            Err(error) => {
                if error.dialogue_in_sync() {
                    session.quit().await;
                }
                Err(StartTlsFailure::Broken(error))
            }
        }
    }

    /// Runs one mail transaction: MAIL, RCPT for each recipient, DATA, the
    /// message, and the final reply. With `require_tls` the REQUIRETLS checks
    /// run first and MAIL FROM carries REQUIRETLS; if a check fails nothing
    /// of the transaction is sent. `message` yields the message as stored
    /// (LF or CRLF lines); SMTP transparency is applied here.
    pub async fn send_message<R>(
        &mut self,
        envelope: &Envelope,
        mut message: R,
        require_tls: bool,
    ) -> Result<Transaction, Error>
    where
        R: AsyncRead + Unpin,
    {
        if self.broken {
            return Err(Error::new(Step::Mail, ErrorKind::Closed));
        }
        let proof = if require_tls {
            let proof = self.require_tls_proof()?;
            self.conn
                .transcript
                .note("require mode: TLS verified and REQUIRETLS advertised after TLS");
            Some(proof)
        } else {
            None
        };
        if envelope.dsn.is_requested() && !self.caps.has("DSN") {
            self.conn
                .transcript
                .note("the server does not offer DSN (RFC 3461): -N, -R and -V are not passed on");
        }
        let mail = command::mail_command(envelope, &self.caps, proof.as_ref())
            .map_err(|m| Error::new(Step::Mail, ErrorKind::Missing(m)))?;
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| command::rcpt_command(r, envelope, &self.caps))
            .collect();

        let reset = std::mem::take(&mut self.reset_pending);
        let answered = if self.caps.has("PIPELINING") {
            self.pipelined_envelope(reset, mail, rcpts).await?
        } else {
            if reset {
                self.reset().await?;
            }
            self.stepwise_envelope(mail, rcpts).await?
        };
        let data = match answered.data {
            DataGate::NoRecipients => DataOutcome::NoRecipients,
            DataGate::Refused(error) => DataOutcome::Failed(error),
            DataGate::Open => match self.send_data(&mut message).await {
                Ok(reply) => DataOutcome::Accepted(reply),
                Err(error) => DataOutcome::Failed(error),
            },
        };
        Ok(Transaction {
            recipients: answered.recipients,
            data,
        })
    }

    /// The require-mode checks (RFC 8689 4.2.1 steps 4-5): TLS that
    /// authenticated the server, and REQUIRETLS in the EHLO reply after TLS.
    /// `send_message` runs them again right before MAIL FROM; calling this
    /// first lets the caller stop before AUTH exposes any credentials.
    pub fn require_tls_ready(&self) -> Result<(), Error> {
        self.require_tls_proof().map(|_| ())
    }

    fn require_tls_proof(&self) -> Result<RequireTls, Error> {
        let verified = self.tls.as_ref().and_then(Established::verified);
        RequireTls::check(verified, &self.caps).map_err(|missing| {
            let step = match missing {
                Missing::RequireTls => Step::EhloAfterTls,
                _ => Step::StartTls,
            };
            Error::new(step, ErrorKind::Missing(missing))
        })
    }

    /// MAIL, RCPTs and DATA in one write, then their replies in order
    /// (RFC 2920 3.1).
    async fn pipelined_envelope(
        &mut self,
        reset: bool,
        mail: String,
        rcpts: Vec<String>,
    ) -> Result<Answered, Error> {
        let count = rcpts.len();
        let mut commands = Vec::with_capacity(count + 3);
        // RFC 2920 3.1: RSET may stand anywhere in a group; it saves the
        // round trip a separate RSET would cost between transactions.
        if reset {
            commands.push((Step::Reset, "RSET".to_string()));
        }
        commands.push((Step::Mail, mail));
        commands.extend(rcpts.into_iter().map(|rcpt| (Step::Rcpt, rcpt)));
        commands.push((Step::Data, "DATA".to_string()));
        // Groups of bounded size: a client that writes a huge group without
        // reading can fill the server's send buffer with replies until the
        // server stops reading, and both wait forever (the deadlock RFC 2920
        // section 3.1 warns of).
        let mut replies = Vec::with_capacity(commands.len());
        for group in commands.chunks(PIPELINE_GROUP) {
            let lines: Vec<&str> = group.iter().map(|(_, line)| line.as_str()).collect();
            if let Err(e) = self.conn.send_batch(group[0].0, &lines).await {
                return Err(self.fail(e));
            }
            for (step, _) in group {
                let reply = match self.read(*step).await {
                    Ok(reply) => reply,
                    // A server that refused RSET or MAIL (421: it is
                    // closing) may close without answering the rest: the
                    // refusal is the news.
                    // Only RSET's and MAIL's replies: a refused RCPT says
                    // nothing about the other recipients.
                    Err(e) => {
                        let head = usize::from(reset) + 1;
                        let Some(at) = replies
                            .iter()
                            .take(head)
                            .position(|r: &Reply| !r.is_positive())
                        else {
                            return Err(e);
                        };
                        let (step, expected) = if reset && at == 0 {
                            (Step::Reset, "250 to RSET")
                        } else {
                            (Step::Mail, "250 to MAIL")
                        };
                        let refused = replies.swap_remove(at);
                        return Err(self.fail(refusal_or_violation(step, refused, expected)));
                    }
                };
                replies.push(reply);
            }
            if reset && !replies.is_empty() && !replies[0].is_positive() {
                // The replies to the rest of the group are not waited for:
                // the session cannot go on.
                let refused = replies.swap_remove(0);
                let error = refusal_or_violation(Step::Reset, refused, "250 to RSET");
                self.broken = true;
                return Err(error);
            }
            // A refused MAIL makes every later command pointless; stop
            // before DATA while every reply is accounted for.
            let mail_at = usize::from(reset);
            if replies.len() > mail_at
                && replies.len() < commands.len()
                && !replies[mail_at].is_positive()
            {
                let mail_reply = replies.swap_remove(mail_at);
                return Err(self.fail(refusal_or_violation(Step::Mail, mail_reply, "250 to MAIL")));
            }
        }
        if reset {
            replies.remove(0);
        }
        let data_reply = replies
            .pop()
            .ok_or_else(|| self.fail(Error::new(Step::Data, ErrorKind::Closed)))?;
        let mut replies = replies.into_iter();
        let Some(mail_reply) = replies.next() else {
            return Err(self.fail(Error::new(Step::Mail, ErrorKind::Closed)));
        };
        let replies = replies
            .map(|reply| self.check_rcpt(reply))
            .collect::<Result<Vec<Reply>, Error>>()?;
        let go_ahead = data_reply.code() == 354;
        let accepted = replies.iter().any(Reply::is_positive);
        if !mail_reply.is_positive() || !accepted {
            // The server should refuse DATA here; if it did not, end the
            // empty data at once so the dialogue stays in step.
            if go_ahead {
                self.abort_data().await?;
            }
            if !mail_reply.is_positive() {
                return Err(self.fail(refusal_or_violation(Step::Mail, mail_reply, "250 to MAIL")));
            }
            return Ok(Answered {
                recipients: replies,
                data: DataGate::NoRecipients,
            });
        }
        let data = self.data_gate(data_reply);
        Ok(Answered {
            recipients: replies,
            data,
        })
    }

    /// MAIL, each RCPT and DATA, one reply at a time.
    async fn stepwise_envelope(
        &mut self,
        mail: String,
        rcpts: Vec<String>,
    ) -> Result<Answered, Error> {
        self.command(Step::Mail, &mail).await?;
        let mail_reply = self.read(Step::Mail).await?;
        if !mail_reply.is_positive() {
            return Err(self.fail(refusal_or_violation(Step::Mail, mail_reply, "250 to MAIL")));
        }
        let mut replies = Vec::with_capacity(rcpts.len());
        for rcpt in &rcpts {
            self.command(Step::Rcpt, rcpt).await?;
            let reply = self.read(Step::Rcpt).await?;
            replies.push(self.check_rcpt(reply)?);
        }
        if !replies.iter().any(Reply::is_positive) {
            return Ok(Answered {
                recipients: replies,
                data: DataGate::NoRecipients,
            });
        }
        self.command(Step::Data, "DATA").await?;
        let data_reply = self.read(Step::Data).await?;
        let data = self.data_gate(data_reply);
        Ok(Answered {
            recipients: replies,
            data,
        })
    }

    /// 354 opens the data; anything else refuses it for every recipient.
    fn data_gate(&mut self, reply: Reply) -> DataGate {
        if reply.code() == 354 {
            DataGate::Open
        } else {
            DataGate::Refused(self.fail(refusal_or_violation(Step::Data, reply, "354 to DATA")))
        }
    }

    /// A RCPT reply is 2xx, 4xx or 5xx; anything else breaks the protocol.
    fn check_rcpt(&mut self, reply: Reply) -> Result<Reply, Error> {
        if reply.is_positive() || reply.is_transient() || reply.is_permanent() {
            return Ok(reply);
        }
        let violation = Violation::Unexpected {
            reply,
            expected: "a 2xx, 4xx or 5xx reply to RCPT",
        };
        Err(self.fail(Error::new(Step::Rcpt, ErrorKind::Protocol(violation))))
    }

    /// Streams the message with dot-stuffing and CRLF, ends it, and reads
    /// the final reply within the end-of-data limit. The last piece of the
    /// message and the final dot leave in one write, so the server can
    /// answer one flight earlier.
    async fn send_data<R: AsyncRead + Unpin>(&mut self, message: &mut R) -> Result<Reply, Error> {
        const WRITE_AT: usize = 64 * 1024;
        let mut encoder = DataEncoder::new();
        let mut input = vec![0u8; WRITE_AT];
        let mut output = Vec::with_capacity(2 * WRITE_AT + 1024);
        let mut total: u64 = 0;
        loop {
            let n = match message.read(&mut input).await {
                Ok(n) => n,
                Err(e) => return Err(self.fail(Error::new(Step::Data, ErrorKind::Message(e)))),
            };
            if n == 0 {
                break;
            }
            total += n as u64;
            if let Err(bare_cr) = encoder.encode(&input[..n], &mut output) {
                return Err(self.unsendable(bare_cr));
            }
            if output.len() >= WRITE_AT {
                if let Err(e) = self.conn.write_all(Step::Data, &output).await {
                    return Err(self.fail(e));
                }
                output.clear();
            }
        }
        if let Err(bare_cr) = encoder.finish(&mut output) {
            return Err(self.unsendable(bare_cr));
        }
        self.conn
            .transcript
            .sent(&format!("({total} octets of message data)"));
        self.conn.transcript.sent(".");
        // From the first byte of the final dot on, the server may hold the
        // whole message: its verdict is pending.
        let pending = self.config.verdict.raise();
        let reply = self.finish_data(&output).await;
        drop(pending);
        let reply = reply?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(self.fail(refusal_or_violation(
                Step::EndOfData,
                reply,
                "250 after the message",
            )))
        }
    }

    /// Writes the end of the data and reads the server's verdict within the
    /// end-of-data limit.
    async fn finish_data(&mut self, output: &[u8]) -> Result<Reply, Error> {
        if let Err(e) = self.conn.write_all(Step::EndOfData, output).await {
            return Err(self.fail(e));
        }
        if let Err(e) = self.conn.flush(Step::EndOfData).await {
            return Err(self.fail(e));
        }
        let limit = self.conn.timeouts.end_of_data;
        match self.conn.read_reply_within(Step::EndOfData, limit).await {
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The message holds a bare CR after all (the input check should have
    /// refused it): the data is left unterminated and the session broken,
    /// so the server discards what it got.
    fn unsendable(&mut self, bare_cr: super::data::BareCr) -> Error {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, bare_cr);
        self.fail(Error::new(Step::Data, ErrorKind::Message(e)))
    }

    /// Ends a DATA the server should not have accepted, sending no content.
    async fn abort_data(&mut self) -> Result<(), Error> {
        self.conn.transcript.sent(".");
        if let Err(e) = self.conn.write_all(Step::Data, b".\r\n").await {
            return Err(self.fail(e));
        }
        if let Err(e) = self.conn.flush(Step::Data).await {
            return Err(self.fail(e));
        }
        self.read(Step::Data).await.map(|_| ())
    }

    /// The dialogue fell out of step (a reply that never came, a broken data
    /// stream): nothing more may be said on this session.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Asks for an RSET ahead of the next transaction's MAIL, in the same
    /// pipelined group when the server offers PIPELINING.
    pub fn reset_before_next(&mut self) {
        self.reset_pending = true;
    }

    /// Resets the transaction so another can follow on this session.
    pub async fn reset(&mut self) -> Result<(), Error> {
        if self.broken {
            // A late reply would be read as RSET's.
            return Err(Error::new(Step::Reset, ErrorKind::Closed));
        }
        self.command(Step::Reset, "RSET").await?;
        let reply = self.read(Step::Reset).await?;
        if reply.is_positive() {
            Ok(())
        } else {
            Err(self.fail(refusal_or_violation(Step::Reset, reply, "250 to RSET")))
        }
    }

    /// Says QUIT and waits for the reply (RFC 5321 4.1.1.10), unless the
    /// session is broken; then just closes the connection.
    pub async fn quit(mut self) {
        if self.broken {
            return;
        }
        if self.command(Step::Quit, "QUIT").await.is_ok() {
            let _ = self.read(Step::Quit).await;
        }
    }

    /// Says QUIT and closes without waiting for the reply, once the server
    /// has taken the message: the reply could only say goodbye, and waiting
    /// for it costs a round trip (Postfix's `smtp_skip_quit_response`).
    pub async fn quit_without_reply(mut self) {
        if self.broken {
            return;
        }
        if self.command(Step::Quit, "QUIT").await.is_ok() {
            self.conn.shutdown().await;
        }
    }

    async fn command(&mut self, step: Step, line: &str) -> Result<(), Error> {
        let result = self.conn.send(step, line).await;
        result.map_err(|e| self.fail(e))
    }

    async fn read(&mut self, step: Step) -> Result<Reply, Error> {
        let result = self.conn.read_reply(step).await;
        result.map_err(|e| self.fail(e))
    }

    /// Records an error; one that leaves the dialogue out of step marks the
    /// session broken so that nothing more is sent.
    fn fail(&mut self, error: Error) -> Error {
        if !error.dialogue_in_sync() {
            self.broken = true;
        }
        error
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<TlsStream<S>> {
    /// SMTP AUTH (RFC 4954) with a mechanism the server offers and `choice`
    /// allows. Only sessions over TLS have this method (SUB6). `server` is
    /// the host and port, which OAUTHBEARER sends.
    pub async fn authenticate(
        &mut self,
        credentials: &Credentials,
        choice: AuthChoice,
        server: (&str, u16),
    ) -> Result<(), Error> {
        let mechanism = auth::choose(choice, &self.caps.auth_mechanisms())
            .map_err(|m| Error::new(Step::Auth, ErrorKind::Missing(m)))?;
        let reply = match mechanism {
            Mechanism::Plain => {
                let response = auth::plain_response(credentials);
                self.secret_command(&format!("AUTH PLAIN {response}"), "AUTH PLAIN <secret>")
                    .await?;
                let reply = self.read(Step::Auth).await?;
                if reply.code() == 334 {
                    // A server that ignores the initial response asks again.
                    self.secret_command(&response, "<secret>").await?;
                    self.read(Step::Auth).await?
                } else {
                    reply
                }
            }
            Mechanism::Login => {
                let (user, password) = auth::login_responses(credentials);
                self.command(Step::Auth, "AUTH LOGIN").await?;
                let reply = self.read(Step::Auth).await?;
                if reply.code() != 334 {
                    return Err(self.fail(refusal_or_violation(
                        Step::Auth,
                        reply,
                        "334 to AUTH LOGIN",
                    )));
                }
                self.secret_command(&user, "<user name>").await?;
                let reply = self.read(Step::Auth).await?;
                if reply.code() != 334 {
                    return Err(self.fail(refusal_or_violation(
                        Step::Auth,
                        reply,
                        "334 to the user name",
                    )));
                }
                self.secret_command(&password, "<secret>").await?;
                self.read(Step::Auth).await?
            }
            Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
                let response = if mechanism == Mechanism::XOAuth2 {
                    auth::xoauth2_response(credentials)
                } else {
                    auth::oauthbearer_response(credentials, server.0, server.1)
                };
                let name = mechanism.name();
                self.secret_command(
                    &format!("AUTH {name} {response}"),
                    &format!("AUTH {name} <secret>"),
                )
                .await?;
                let reply = self.read(Step::Auth).await?;
                if reply.code() == 334 {
                    // RFC 7628 3.2.2: the server reports the error as a
                    // challenge; acknowledge it to get the final reply.
                    if let Some(detail) = reply
                        .lines()
                        .first()
                        .and_then(|l| auth::decode_challenge(l))
                    {
                        self.conn
                            .transcript
                            .note(&format!("{name} error from the server: {detail}"));
                    }
                    self.command(Step::Auth, auth::token_failure_ack(mechanism))
                        .await?;
                    self.read(Step::Auth).await?
                } else {
                    reply
                }
            }
        };
        if reply.code() == 235 {
            return Ok(());
        }
        Err(self.fail(refusal_or_violation(Step::Auth, reply, "235 after AUTH")))
    }

    async fn secret_command(&mut self, line: &str, shown: &str) -> Result<(), Error> {
        let result = self.conn.send_masked(Step::Auth, line, shown).await;
        result.map_err(|e| self.fail(e))
    }
}

/// A 4xx/5xx reply is the server refusing; any other unwanted reply is a
/// protocol violation (rustls' `inappropriate_message`, in SMTP).
fn refusal_or_violation(step: Step, reply: Reply, expected: &'static str) -> Error {
    if reply.is_transient() || reply.is_permanent() {
        Error::new(step, ErrorKind::Reply(reply))
    } else {
        Error::new(
            step,
            ErrorKind::Protocol(Violation::Unexpected { reply, expected }),
        )
    }
}

#[cfg(test)]
mod tests;
