//! A scripted SMTP server (tokio + rustls) that records every command and
//! message it receives, with switchable misbehaviours. It runs on
//! 127.0.0.1 in a thread of its own, so a test can run the tlsend binary
//! against it and then assert what did, and did not, reach the server.
//!
//! The server is strict where a real one is (Postfix, mox): EHLO again after
//! STARTTLS, parameters only for advertised extensions, no MAIL inside a
//! transaction. Protocol faults by the client that a lenient server would
//! let pass (pipelining where it is not allowed, bare CR or LF, overlong
//! lines) are answered as usual but kept as [`Violation`]s, and a
//! `TestServer` that still holds any when dropped fails the test: a client
//! bug cannot hide behind a forgiving harness.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::certs::{CertKind, TestPki};

/// When the server advertises REQUIRETLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advertise {
    AfterTls,
    Never,
    BeforeTlsOnly,
    Always,
}

/// How the server handles STARTTLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartTls {
    Offer,
    NotOffered,
    /// A middlebox turned the keyword into XXXXXXXX; the verb is unknown.
    Stripped,
    Refuse454,
    /// These bytes follow the 220 in the same write, before the handshake.
    InjectAfter220(Vec<u8>),
}

/// From this step on, the server reads but never answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Greeting,
    AfterEhlo,
    Mail,
    Rcpt,
    Data,
    EndOfData,
}

/// Replies that replace the well-behaved defaults; each a full reply line
/// without CRLF, e.g. `451 4.3.0 try later`.
#[derive(Clone, Debug, Default)]
pub struct Replies {
    /// Instead of the 220. A 421 closes the connection; any other non-2xx
    /// greeting is followed by 503 to everything but QUIT (RFC 5321 3.1).
    pub greeting: Option<String>,
    pub mail: Option<String>,
    /// For every RCPT, unless `rcpt_for` names the address.
    pub rcpt: Option<String>,
    /// (address without brackets, reply)
    pub rcpt_for: Vec<(String, String)>,
    /// Instead of 354 to DATA.
    pub data: Option<String>,
    pub end_of_data: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Advertised after TLS only.
    pub mechanisms: Vec<String>,
    pub user: String,
    pub secret: String,
}

/// What the server does. `Default` is a well-behaved REQUIRETLS submission server.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub requiretls: Advertise,
    pub starttls: StartTls,
    /// TLS from the first byte (port 465 style).
    pub implicit_tls: bool,
    pub cert: CertKind,
    /// EHLO keywords besides STARTTLS, REQUIRETLS and AUTH.
    pub extensions: Vec<String>,
    pub auth: Option<AuthConfig>,
    pub replies: Replies,
    pub silent_at: Option<Step>,
    /// Advertise keywords in lower case (SUB8).
    pub lowercase_keywords: bool,
    /// Wait this long after the message before answering it.
    pub end_of_data_delay: Option<Duration>,
    /// After this many messages on one connection, answer MAIL with 421
    /// and close it (Exchange's default limit is 20).
    pub messages_per_connection: Option<usize>,
    /// Present this TLS configuration instead of `cert`'s (a minted
    /// certificate for an MX host name).
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
    /// Listen here instead of 127.0.0.1 on a free port (MX hosts share one
    /// port on several loopback addresses).
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            requiretls: Advertise::AfterTls,
            starttls: StartTls::Offer,
            implicit_tls: false,
            cert: CertKind::Valid,
            extensions: [
                "PIPELINING",
                "8BITMIME",
                "SMTPUTF8",
                "DSN",
                "ENHANCEDSTATUSCODES",
                "SIZE 10485760",
            ]
            .map(String::from)
            .to_vec(),
            auth: None,
            replies: Replies::default(),
            silent_at: None,
            lowercase_keywords: false,
            end_of_data_delay: None,
            messages_per_connection: None,
            tls_config: None,
            listen: None,
        }
    }
}

/// One line from the client as received, without its line ending: commands
/// and also the client's lines in an AUTH exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// 1 for the first connection.
    pub conn: usize,
    pub line: String,
    /// Whether it arrived inside TLS.
    pub tls: bool,
}

/// One message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The MAIL command line of the transaction, parameters included.
    pub mail_from: String,
    /// Every RCPT command line of the transaction, as sent, refused or not.
    pub rcpt_to: Vec<String>,
    /// The RCPT command lines the server answered with 2xx.
    pub rcpt_accepted: Vec<String>,
    /// With dot-stuffing undone, CRLF kept: what a mailbox would store.
    pub data: Vec<u8>,
    /// Exactly as received between the 354 and the final ".\r\n".
    pub raw_data: Vec<u8>,
    pub tls: bool,
}

impl ReceivedMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Something the client did that the SMTP RFCs forbid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub conn: usize,
    pub problem: String,
}

#[derive(Default)]
struct Record {
    commands: Vec<Received>,
    messages: Vec<ReceivedMessage>,
    violations: Vec<Violation>,
    connections: usize,
    active: usize,
}

/// A running server; stops when dropped.
pub struct TestServer {
    pub port: u16,
    record: Arc<Mutex<Record>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long `commands()` and `messages()` wait for connections to finish.
const SETTLE: Duration = Duration::from_secs(10);

fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    // A session that panicked leaves a consistent record behind: every
    // update is a single push or counter change.
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TestServer {
    /// Starts listening on 127.0.0.1 and returns once the port is known.
    pub fn start(behaviour: Behaviour, pki: &TestPki) -> TestServer {
        let listen = behaviour.listen;
        TestServer::try_start(behaviour, pki)
            .unwrap_or_else(|e| panic!("test server cannot listen on {listen:?}: {e}"))
    }

    /// [`TestServer::start`], or why it cannot listen where `behaviour` says.
    pub fn try_start(behaviour: Behaviour, pki: &TestPki) -> std::io::Result<TestServer> {
        let record = Arc::new(Mutex::new(Record::default()));
        let acceptor = TlsAcceptor::from(
            behaviour
                .tls_config
                .clone()
                .unwrap_or_else(|| pki.server_config(behaviour.cert)),
        );
        let listen = behaviour
            .listen
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = record.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test server runtime");
            runtime.block_on(async move {
                let listener = match TcpListener::bind(listen).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = port_tx.send(Err(e));
                        return;
                    }
                };
                let port = listener.local_addr().expect("local address").port();
                if port_tx.send(Ok(port)).is_err() {
                    return;
                }
                let behaviour = Arc::new(behaviour);
                loop {
                    tokio::select! {
                        _ = &mut shutdown_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let conn = {
                                let mut r = lock(&shared);
                                r.connections += 1;
                                r.active += 1;
                                r.connections
                            };
                            let session = Session::new(
                                conn,
                                behaviour.clone(),
                                acceptor.clone(),
                                shared.clone(),
                                Box::new(stream),
                            );
                            let record = shared.clone();
                            tokio::spawn(async move {
                                let _ = session.run().await;
                                lock(&record).active -= 1;
                            });
                        }
                    }
                }
            });
            runtime.shutdown_background();
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("test server did not start")?;
        Ok(TestServer {
            port,
            record,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// Waits (at most `limit`) until no connection is being served, so the
    /// record is complete after the client has gone; panics after `limit`.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while lock(&self.record).active > 0 {
            assert!(
                Instant::now() < deadline,
                "test server still serving a connection after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line from every connection, in order, once all connections
    /// have ended.
    pub fn commands(&self) -> Vec<Received> {
        self.wait_idle(SETTLE);
        lock(&self.record).commands.clone()
    }

    /// What has been recorded so far, without waiting: for a test that is
    /// itself still connected.
    pub fn commands_so_far(&self) -> Vec<Received> {
        lock(&self.record).commands.clone()
    }

    /// The command lines only.
    pub fn lines(&self) -> Vec<String> {
        self.commands().into_iter().map(|c| c.line).collect()
    }

    /// Every message from every connection, once all connections have ended.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.wait_idle(SETTLE);
        lock(&self.record).messages.clone()
    }

    /// The messages received so far, without waiting for the client to go.
    pub fn messages_so_far(&self) -> Vec<ReceivedMessage> {
        lock(&self.record).messages.clone()
    }

    /// True if any line starts with `verb`, ignoring ASCII case.
    pub fn saw(&self, verb: &str) -> bool {
        let verb = verb.as_bytes();
        self.commands().iter().any(|c| {
            let line = c.line.as_bytes();
            line.len() >= verb.len() && line[..verb.len()].eq_ignore_ascii_case(verb)
        })
    }

    pub fn connections(&self) -> usize {
        lock(&self.record).connections
    }

    /// The client's protocol violations so far, left in place.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.record).violations.clone()
    }

    /// Takes the violations once all connections have ended, so that a
    /// test that provokes them on purpose can assert them and drop the
    /// server without failing.
    pub fn take_violations(&self) -> Vec<Violation> {
        self.wait_idle(SETTLE);
        std::mem::take(&mut lock(&self.record).violations)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let violations = std::mem::take(&mut lock(&self.record).violations);
        // Never a second panic while a test is already failing.
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("the client broke the SMTP protocol: {violations:#?}");
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Longer than any command line (RFC 5321 4.5.3.1.4 allows 512 octets; an
/// AUTH line with an OAuth token can be longer).
const MAX_LINE: usize = 4096;
/// RFC 5321 4.5.3.1.6: 1000 octets with the CRLF.
const MAX_TEXT_LINE: usize = 998;
const MAX_MESSAGE: usize = 64 << 20;
/// A client that stops talking is dropped after this, never sooner.
const IDLE: Duration = Duration::from_secs(30);

/// The state of one open mail transaction (RFC 5321 3.3).
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    rcpt_accepted: Vec<String>,
}

struct Session {
    conn: usize,
    behaviour: Arc<Behaviour>,
    acceptor: TlsAcceptor,
    record: Arc<Mutex<Record>>,
    io: Box<dyn Io>,
    buffer: Vec<u8>,
    tls: bool,
    silent: bool,
    /// After a non-2xx greeting: 503 to all but QUIT.
    refusing: bool,
    /// Upper-case keywords of the last EHLO reply, `Some(empty)` after HELO,
    /// `None` before either; forgotten at STARTTLS (RFC 3207 4.2).
    keywords: Option<Vec<String>>,
    authenticated: bool,
    transaction: Option<Transaction>,
    /// Messages taken on this connection.
    taken: usize,
}

impl Session {
    fn new(
        conn: usize,
        behaviour: Arc<Behaviour>,
        acceptor: TlsAcceptor,
        record: Arc<Mutex<Record>>,
        io: Box<dyn Io>,
    ) -> Session {
        Session {
            conn,
            behaviour,
            acceptor,
            record,
            io,
            buffer: Vec::new(),
            tls: false,
            silent: false,
            refusing: false,
            keywords: None,
            authenticated: false,
            transaction: None,
            taken: 0,
        }
    }

    async fn run(mut self) -> io::Result<()> {
        if self.behaviour.implicit_tls {
            let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
            let stream = self.acceptor.accept(plain).await?;
            self.io = Box::new(stream);
            self.tls = true;
        }
        if self.behaviour.silent_at == Some(Step::Greeting) {
            self.silent = true;
        } else {
            let greeting = self
                .behaviour
                .replies
                .greeting
                .clone()
                .unwrap_or("220 localhost ESMTP tlsend test server".into());
            self.reply(&greeting).await?;
            if greeting.starts_with("421") {
                return Ok(());
            }
            self.refusing = !greeting.starts_with('2');
        }
        while let Some(line) = self.line().await? {
            // Bytes already buffered were sent before the client could
            // have seen the reply to this line.
            let pipelined = !self.buffer.is_empty();
            self.record_line(&line);
            if self.silent {
                continue;
            }
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if pipelined {
                self.check_pipelining(&verb);
            }
            if self.refusing && verb != "QUIT" {
                self.reply("503 5.5.1 Error: no SMTP service here").await?;
                continue;
            }
            match verb.as_str() {
                "EHLO" => {
                    let (reply, keywords) = self.ehlo_reply();
                    // RFC 5321 4.1.4: EHLO resets the transaction.
                    self.keywords = Some(keywords);
                    self.transaction = None;
                    self.send(&reply).await?;
                    self.silence_at(Step::AfterEhlo);
                }
                "HELO" => {
                    self.keywords = Some(Vec::new());
                    self.transaction = None;
                    self.reply("250 localhost").await?;
                }
                "STARTTLS" => {
                    if self.needs_ehlo(&verb).await? {
                        continue;
                    }
                    if !self.starttls().await? {
                        return Ok(());
                    }
                }
                "AUTH" => {
                    if self.needs_ehlo(&verb).await? {
                        continue;
                    }
                    self.auth(&line).await?;
                }
                "MAIL"
                    if self
                        .behaviour
                        .messages_per_connection
                        .is_some_and(|limit| self.taken >= limit) =>
                {
                    self.reply("421 4.7.0 Too many messages for this connection")
                        .await?;
                    return Ok(());
                }
                "MAIL" => self.mail(&line).await?,
                "RCPT" => self.rcpt(&line).await?,
                "DATA" => self.data().await?,
                "RSET" => {
                    self.transaction = None;
                    self.reply("250 2.0.0 Ok").await?;
                }
                "NOOP" => self.reply("250 2.0.0 Ok").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                _ => {
                    self.reply("500 5.5.2 Error: command not recognized")
                        .await?
                }
            }
        }
        Ok(())
    }

    fn record_line(&self, line: &str) {
        lock(&self.record).commands.push(Received {
            conn: self.conn,
            line: line.to_string(),
            tls: self.tls,
        });
    }

    fn violation(&self, problem: String) {
        lock(&self.record).violations.push(Violation {
            conn: self.conn,
            problem,
        });
    }

    fn advertised(&self, keyword: &str) -> bool {
        self.keywords
            .as_ref()
            .is_some_and(|k| k.iter().any(|k| k == keyword))
    }

    /// RFC 2920 3.1: pipelining only when advertised, and some commands
    /// must end a group. STARTTLS is checked by `upgrade`, which aborts.
    fn check_pipelining(&self, verb: &str) {
        if verb == "STARTTLS" {
            return;
        }
        if !self.advertised("PIPELINING") {
            self.violation(format!(
                "{verb} was followed by more input before its reply, \
                 without PIPELINING advertised (RFC 2920)"
            ));
        } else if matches!(
            verb,
            "EHLO" | "HELO" | "DATA" | "VRFY" | "EXPN" | "TURN" | "QUIT" | "NOOP" | "AUTH"
        ) {
            self.violation(format!(
                "{verb} must be the last command of a pipelined group \
                 (RFC 2920 3.1, RFC 4954 4)"
            ));
        }
    }

    /// 503 and a violation if there was no EHLO or HELO since the
    /// connection began or TLS started; true if so.
    async fn needs_ehlo(&mut self, verb: &str) -> io::Result<bool> {
        if self.keywords.is_some() {
            return Ok(false);
        }
        let after = if self.tls { " after TLS started" } else { "" };
        self.violation(format!(
            "{verb} without EHLO{after} (RFC 5321 4.1.4, RFC 3207 4.2)"
        ));
        self.reply("503 5.5.1 Error: send HELO/EHLO first").await?;
        Ok(true)
    }

    fn silence_at(&mut self, step: Step) {
        if self.behaviour.silent_at == Some(step) {
            self.silent = true;
        }
    }

    async fn send(&mut self, text: &str) -> io::Result<()> {
        self.io.write_all(text.as_bytes()).await?;
        self.io.flush().await
    }

    /// Sends one reply line, adding the CRLF.
    async fn reply(&mut self, line: &str) -> io::Result<()> {
        self.send(&format!("{line}\r\n")).await
    }

    /// One line without its line ending; `None` at EOF. Bare CR or LF and
    /// overlong lines are violations; an overlong line ends the session.
    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buffer.drain(..=i).collect();
                let line = &raw[..i];
                let line = match line.strip_suffix(b"\r") {
                    Some(line) => line,
                    None => {
                        self.violation(format!(
                            "line ended by a bare LF (RFC 5321 2.3.8): {:?}",
                            String::from_utf8_lossy(line)
                        ));
                        line
                    }
                };
                if line.contains(&b'\r') {
                    self.violation(format!(
                        "bare CR inside a line (RFC 5321 2.3.8): {:?}",
                        String::from_utf8_lossy(line)
                    ));
                }
                if line.len() > MAX_LINE {
                    return Err(self.too_long());
                }
                return Ok(Some(String::from_utf8_lossy(line).into_owned()));
            }
            if self.buffer.len() > MAX_LINE {
                return Err(self.too_long());
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    fn too_long(&self) -> io::Error {
        self.violation(format!("line longer than {MAX_LINE} octets"));
        io::Error::other("client line too long")
    }

    /// Reads more bytes; false at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(IDLE, self.io.read(&mut chunk)).await {
            Err(_) => Err(io::Error::other("client idle")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    /// The EHLO reply and the upper-case keywords it advertises.
    fn ehlo_reply(&self) -> (String, Vec<String>) {
        let b = &self.behaviour;
        let mut keywords = Vec::new();
        if !self.tls {
            match &b.starttls {
                StartTls::NotOffered => {}
                StartTls::Stripped => keywords.push("XXXXXXXX".to_string()),
                _ => keywords.push("STARTTLS".to_string()),
            }
        }
        keywords.extend(b.extensions.iter().cloned());
        let requiretls = match b.requiretls {
            Advertise::AfterTls => self.tls,
            Advertise::Never => false,
            Advertise::BeforeTlsOnly => !self.tls,
            Advertise::Always => true,
        };
        if requiretls {
            keywords.push("REQUIRETLS".to_string());
        }
        // RFC 4954 4: never offer AUTH where the secret would travel in clear.
        if let (true, Some(auth)) = (self.tls, &b.auth) {
            keywords.push(format!("AUTH {}", auth.mechanisms.join(" ")));
        }
        if b.lowercase_keywords {
            keywords = keywords.iter().map(|k| k.to_lowercase()).collect();
        }
        let mut reply = String::new();
        if keywords.is_empty() {
            reply.push_str("250 localhost greets you\r\n");
        } else {
            reply.push_str("250-localhost greets you\r\n");
        }
        for (i, keyword) in keywords.iter().enumerate() {
            let separator = if i + 1 == keywords.len() { ' ' } else { '-' };
            reply.push_str(&format!("250{separator}{keyword}\r\n"));
        }
        let names = keywords
            .iter()
            .filter_map(|k| k.split(' ').next())
            .map(|k| k.to_ascii_uppercase())
            .collect();
        (reply, names)
    }

    /// Returns false when the connection must end.
    async fn starttls(&mut self) -> io::Result<bool> {
        if self.tls {
            self.reply("503 5.5.1 TLS already active").await?;
            return Ok(true);
        }
        match self.behaviour.starttls.clone() {
            StartTls::NotOffered | StartTls::Stripped => {
                self.reply("502 5.5.1 Error: command not implemented")
                    .await?;
                Ok(true)
            }
            StartTls::Refuse454 => {
                self.reply("454 4.7.0 TLS not available due to local problem")
                    .await?;
                Ok(true)
            }
            StartTls::InjectAfter220(extra) => {
                // One write, so the client sees both in one read.
                let mut bytes = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
                bytes.extend_from_slice(&extra);
                self.io.write_all(&bytes).await?;
                self.io.flush().await?;
                self.upgrade().await
            }
            StartTls::Offer => {
                self.reply("220 2.0.0 Ready to start TLS").await?;
                self.upgrade().await
            }
        }
    }

    async fn upgrade(&mut self) -> io::Result<bool> {
        if !self.buffer.is_empty() {
            // The client pipelined past STARTTLS (RFC 3207 4): keep the
            // bytes as they came and stop.
            let leftover = String::from_utf8_lossy(&self.buffer).into_owned();
            self.record_line(&format!("(pipelined past STARTTLS) {leftover}"));
            self.violation(format!(
                "bytes sent after STARTTLS before its reply (RFC 3207 4): {leftover:?}"
            ));
            return Ok(false);
        }
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
        match self.acceptor.accept(plain).await {
            Ok(stream) => {
                self.io = Box::new(stream);
                self.tls = true;
                // RFC 3207 4.2: forget everything learned before TLS.
                self.keywords = None;
                self.transaction = None;
                self.authenticated = false;
                Ok(true)
            }
            // The client refused the certificate or aborted: the session ends.
            Err(_) => Ok(false),
        }
    }

    /// One client line inside an AUTH exchange, recorded like a command.
    async fn auth_response(&mut self) -> io::Result<String> {
        let line = self.line().await?.unwrap_or_default();
        self.record_line(&line);
        if !self.buffer.is_empty() {
            self.check_pipelining("AUTH");
        }
        Ok(line)
    }

    async fn auth(&mut self, line: &str) -> io::Result<()> {
        let Some(auth) = self.behaviour.auth.clone() else {
            return self.reply("502 5.5.1 AUTH not available").await;
        };
        if !self.tls {
            return self.reply("538 5.7.11 Encryption required for AUTH").await;
        }
        if self.authenticated {
            return self.reply("503 5.5.1 Error: already authenticated").await;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mechanism = words
            .get(1)
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_default();
        if !auth
            .mechanisms
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&mechanism))
        {
            return self
                .reply("504 5.5.4 Unrecognized authentication type")
                .await;
        }
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let mut cancelled = false;
        let ok = match mechanism.as_str() {
            "PLAIN" => {
                let response = match words.get(2) {
                    Some(r) => r.to_string(),
                    None => {
                        self.reply("334 ").await?;
                        self.auth_response().await?
                    }
                };
                cancelled = response == "*";
                decode(&response) == format!("\0{}\0{}", auth.user, auth.secret)
            }
            "LOGIN" => {
                self.reply("334 VXNlcm5hbWU6").await?;
                let user = self.auth_response().await?;
                cancelled = user == "*";
                if cancelled {
                    false
                } else {
                    self.reply("334 UGFzc3dvcmQ6").await?;
                    let secret = self.auth_response().await?;
                    cancelled = secret == "*";
                    decode(&user) == auth.user && decode(&secret) == auth.secret
                }
            }
            "XOAUTH2" => {
                let expected = format!("user={}\x01auth=Bearer {}\x01\x01", auth.user, auth.secret);
                let ok = words.get(2).map(|r| decode(r)) == Some(expected);
                if !ok {
                    // Google's XOAUTH2: an error challenge, the client
                    // answers with an empty line, then the failure.
                    self.reply("334 eyJzdGF0dXMiOiI0MDEifQ==").await?;
                    let _ack = self.auth_response().await?;
                }
                ok
            }
            _ => {
                return self
                    .reply("504 5.5.4 Unrecognized authentication type")
                    .await;
            }
        };
        if cancelled {
            // RFC 4954 4
            self.reply("501 5.7.0 Authentication cancelled").await
        } else if ok {
            self.authenticated = true;
            self.reply("235 2.7.0 Authentication successful").await
        } else {
            self.reply("535 5.7.8 Error: authentication failed").await
        }
    }

    /// ESMTP parameters after the `<path>` that the server did not
    /// advertise, as (parameter, extension) pairs.
    fn unadvertised_parameters(&self, line: &str, rcpt: bool) -> Vec<(String, &'static str)> {
        let parameters = line.find('>').map(|i| &line[i + 1..]).unwrap_or_default();
        let mut missing = Vec::new();
        for parameter in parameters.split(' ').filter(|p| !p.is_empty()) {
            let name = parameter
                .split('=')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let extension = match (rcpt, name.as_str()) {
                (false, "BODY") => "8BITMIME",
                (false, "SMTPUTF8") => "SMTPUTF8",
                (false, "REQUIRETLS") => "REQUIRETLS",
                (false, "RET" | "ENVID") | (true, "NOTIFY" | "ORCPT") => "DSN",
                (false, "SIZE") => "SIZE",
                (false, "AUTH") => "AUTH",
                _ => "(no extension defines it here)",
            };
            if !self.advertised(extension) {
                missing.push((parameter.to_string(), extension));
            }
        }
        missing
    }

    /// 555 and a violation for each parameter the server did not offer;
    /// true if there was one.
    async fn refuse_parameters(&mut self, line: &str, rcpt: bool) -> io::Result<bool> {
        let missing = self.unadvertised_parameters(line, rcpt);
        for (parameter, extension) in &missing {
            self.violation(format!(
                "parameter {parameter} without {extension} advertised (RFC 5321 4.1.1.11)"
            ));
        }
        if missing.is_empty() {
            return Ok(false);
        }
        self.reply("555 5.5.4 Unsupported option").await?;
        Ok(true)
    }

    async fn mail(&mut self, line: &str) -> io::Result<()> {
        self.silence_at(Step::Mail);
        if self.silent || self.needs_ehlo("MAIL").await? {
            return Ok(());
        }
        if self.transaction.is_some() {
            return self.reply("503 5.5.1 Error: nested MAIL command").await;
        }
        if self.refuse_parameters(line, false).await? {
            return Ok(());
        }
        let reply = self
            .behaviour
            .replies
            .mail
            .clone()
            .unwrap_or("250 2.1.0 Ok".into());
        if reply.starts_with('2') {
            self.transaction = Some(Transaction {
                mail_from: line.to_string(),
                rcpt_to: Vec::new(),
                rcpt_accepted: Vec::new(),
            });
        }
        self.reply(&reply).await
    }

    async fn rcpt(&mut self, line: &str) -> io::Result<()> {
        self.silence_at(Step::Rcpt);
        if self.silent {
            return Ok(());
        }
        // Like a real server, RCPT needs an accepted MAIL. With pipelining
        // this is how a refused MAIL reaches its RCPTs, so no violation.
        if self.transaction.is_none() {
            return self.reply("503 5.5.1 Error: need MAIL command").await;
        }
        if self.refuse_parameters(line, true).await? {
            return Ok(());
        }
        let reply = self.rcpt_reply(line);
        if let Some(transaction) = &mut self.transaction {
            transaction.rcpt_to.push(line.to_string());
            if reply.starts_with('2') {
                transaction.rcpt_accepted.push(line.to_string());
            }
        }
        self.reply(&reply).await
    }

    fn rcpt_reply(&self, line: &str) -> String {
        let replies = &self.behaviour.replies;
        for (address, reply) in &replies.rcpt_for {
            if line.contains(&format!("<{address}>")) {
                return reply.clone();
            }
        }
        replies.rcpt.clone().unwrap_or("250 2.1.5 Ok".into())
    }

    async fn data(&mut self) -> io::Result<()> {
        self.silence_at(Step::Data);
        if self.silent {
            return Ok(());
        }
        // RFC 2920 3.1: DATA with no accepted recipient is refused.
        let Some(transaction) = self.transaction.take_if(|t| !t.rcpt_accepted.is_empty()) else {
            return self.reply("503 5.5.1 Error: need RCPT command").await;
        };
        let reply = self
            .behaviour
            .replies
            .data
            .clone()
            .unwrap_or("354 End data with <CR><LF>.<CR><LF>".into());
        if !reply.starts_with("354") {
            self.transaction = Some(transaction);
            return self.reply(&reply).await;
        }
        self.reply(&reply).await?;
        let Some(raw) = self.read_data().await? else {
            return Ok(());
        };
        self.check_data(&raw);
        // RFC 5321 4.5.2: a leading dot is removed from every line.
        let mut data = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|&b| b == b'\n') {
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        lock(&self.record).messages.push(ReceivedMessage {
            mail_from: transaction.mail_from,
            rcpt_to: transaction.rcpt_to,
            rcpt_accepted: transaction.rcpt_accepted,
            data,
            raw_data: raw,
            tls: self.tls,
        });
        self.silence_at(Step::EndOfData);
        if self.silent {
            return Ok(());
        }
        if let Some(delay) = self.behaviour.end_of_data_delay {
            tokio::time::sleep(delay).await;
        }
        self.taken += 1;
        let reply = self
            .behaviour
            .replies
            .end_of_data
            .clone()
            .unwrap_or("250 2.0.0 Ok: queued as TEST".into());
        self.reply(&reply).await
    }

    /// The bytes up to the lone dot, which is consumed; `None` at EOF.
    async fn read_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        // Where to look for the end marker next: only bytes not yet searched.
        let mut searched: usize = 0;
        loop {
            if self.buffer.starts_with(b".\r\n") {
                self.buffer.drain(..3);
                return Ok(Some(Vec::new()));
            }
            let from = searched.saturating_sub(4);
            if let Some(i) = self.buffer[from..]
                .windows(5)
                .position(|w| w == b"\r\n.\r\n")
            {
                let end = from + i + 2;
                let raw = self.buffer[..end].to_vec();
                self.buffer.drain(..end + 3);
                return Ok(Some(raw));
            }
            searched = self.buffer.len();
            if self.buffer.len() > MAX_MESSAGE {
                self.violation(format!("message larger than {MAX_MESSAGE} octets"));
                return Err(io::Error::other("message too large"));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// RFC 5321 2.3.8 and 4.5.3.1.6: CRLF only, at most 998 octets a line.
    /// `raw` ends with CRLF (or is empty), so every piece ends with LF.
    fn check_data(&self, raw: &[u8]) {
        for (index, line) in raw.split_inclusive(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            let text = match line.strip_suffix(b"\r\n") {
                Some(text) => text,
                None => {
                    self.violation(format!("bare LF ends message line {number}"));
                    line.strip_suffix(b"\n").unwrap_or(line)
                }
            };
            if text.contains(&b'\r') {
                self.violation(format!("bare CR in message line {number}"));
            }
            if text.len() > MAX_TEXT_LINE {
                self.violation(format!(
                    "message line {number} has {} octets, more than {MAX_TEXT_LINE}",
                    text.len()
                ));
            }
        }
    }
}
