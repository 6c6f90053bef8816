//! A scripted SMTP server (tokio + rustls) that records every command and
//! message it receives, with switchable misbehaviours. It runs on
//! 127.0.0.1 in a thread of its own, so a test can run the tlsend binary
//! against it and then assert what did, and did not, reach the server.

use std::io;
use std::sync::{Arc, Mutex};
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

/// Replies that replace the well-behaved defaults.
#[derive(Clone, Debug, Default)]
pub struct Replies {
    pub mail: Option<String>,
    /// For every RCPT, unless `rcpt_for` names the address.
    pub rcpt: Option<String>,
    pub rcpt_for: Vec<(String, String)>,
    /// Instead of 354 to DATA.
    pub data: Option<String>,
    pub end_of_data: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub mechanisms: Vec<String>,
    pub user: String,
    pub secret: String,
}

/// What the server does. `Default` is a well-behaved REQUIRETLS submission server.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub requiretls: Advertise,
    pub starttls: StartTls,
    pub implicit_tls: bool,
    pub cert: CertKind,
    pub extensions: Vec<String>,
    pub auth: Option<AuthConfig>,
    pub replies: Replies,
    pub silent_at: Option<Step>,
    pub lowercase_keywords: bool,
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
        }
    }
}

/// One command line as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub conn: usize,
    pub line: String,
    pub tls: bool,
}

/// One message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
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

#[derive(Default)]
struct Record {
    commands: Vec<Received>,
    messages: Vec<ReceivedMessage>,
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

impl TestServer {
    /// Starts listening on 127.0.0.1 and returns once the port is known.
    pub fn start(behaviour: Behaviour, pki: &TestPki) -> TestServer {
        let record = Arc::new(Mutex::new(Record::default()));
        let acceptor = TlsAcceptor::from(pki.server_config(behaviour.cert));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = record.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let behaviour = Arc::new(behaviour);
                loop {
                    tokio::select! {
                        _ = &mut shutdown_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let conn = {
                                let mut r = shared.lock().unwrap();
                                r.connections += 1;
                                r.active += 1;
                                r.connections
                            };
                            let session = Session {
                                conn,
                                behaviour: behaviour.clone(),
                                acceptor: acceptor.clone(),
                                record: shared.clone(),
                                io: Box::new(stream),
                                buffer: Vec::new(),
                                tls: false,
                                silent: false,
                                has_mail: false,
                                recipients: 0,
                            };
                            let record = shared.clone();
                            tokio::spawn(async move {
                                let _ = session.run().await;
                                record.lock().unwrap().active -= 1;
                            });
                        }
                    }
                }
            });
            runtime.shutdown_background();
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("test server did not start");
        TestServer {
            port,
            record,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Waits (at most `limit`) until no connection is being served, so the
    /// record is complete after the client has gone.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.record.lock().unwrap().active > 0 {
            assert!(
                Instant::now() < deadline,
                "test server still busy after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every command line from every connection, in order.
    pub fn commands(&self) -> Vec<Received> {
        self.wait_idle(Duration::from_secs(10));
        self.record.lock().unwrap().commands.clone()
    }

    /// The command lines only.
    pub fn lines(&self) -> Vec<String> {
        self.commands().into_iter().map(|c| c.line).collect()
    }

    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.wait_idle(Duration::from_secs(10));
        self.record.lock().unwrap().messages.clone()
    }

    /// True if any command starts with `verb`, ignoring case.
    pub fn saw(&self, verb: &str) -> bool {
        self.commands()
            .iter()
            .any(|c| c.line.len() >= verb.len() && c.line[..verb.len()].eq_ignore_ascii_case(verb))
    }

    pub fn connections(&self) -> usize {
        self.record.lock().unwrap().connections
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
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const MAX_LINE: usize = 4096;
const MAX_MESSAGE: usize = 64 << 20;
/// A client that stops talking is dropped after this, never sooner.
const IDLE: Duration = Duration::from_secs(30);

struct Session {
    conn: usize,
    behaviour: Arc<Behaviour>,
    acceptor: TlsAcceptor,
    record: Arc<Mutex<Record>>,
    io: Box<dyn Io>,
    buffer: Vec<u8>,
    tls: bool,
    silent: bool,
    /// RFC 5321 transaction state: MAIL accepted, and how many RCPTs.
    has_mail: bool,
    recipients: usize,
}

impl Session {
    async fn run(mut self) -> io::Result<()> {
        if self.behaviour.implicit_tls {
            let stream = self.acceptor.accept(self.io).await?;
            self.io = Box::new(stream);
            self.tls = true;
        }
        if self.behaviour.silent_at == Some(Step::Greeting) {
            self.silent = true;
        } else {
            self.send("220 localhost ESMTP tlsend test server\r\n")
                .await?;
        }
        while let Some(line) = self.line().await? {
            self.record.lock().unwrap().commands.push(Received {
                conn: self.conn,
                line: line.clone(),
                tls: self.tls,
            });
            if self.silent {
                continue;
            }
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    let reply = self.ehlo_reply();
                    self.send(&reply).await?;
                    self.silence_at(Step::AfterEhlo);
                }
                "HELO" => self.send("250 localhost\r\n").await?,
                "STARTTLS" => {
                    if !self.starttls().await? {
                        return Ok(());
                    }
                }
                "AUTH" => self.auth(&line).await?,
                "MAIL" => {
                    self.silence_at(Step::Mail);
                    if !self.silent {
                        let reply = self
                            .behaviour
                            .replies
                            .mail
                            .clone()
                            .unwrap_or("250 2.1.0 Ok".into());
                        self.has_mail = reply.starts_with('2');
                        self.recipients = 0;
                        self.send(&format!("{reply}\r\n")).await?;
                    }
                }
                "RCPT" => {
                    self.silence_at(Step::Rcpt);
                    if !self.silent {
                        // Like a real server, RCPT needs an accepted MAIL.
                        let reply = if self.has_mail {
                            self.rcpt_reply(&line)
                        } else {
                            "503 5.5.1 Error: need MAIL command".into()
                        };
                        if reply.starts_with('2') {
                            self.recipients += 1;
                        }
                        self.send(&format!("{reply}\r\n")).await?;
                    }
                }
                "DATA" => {
                    if self.recipients == 0
                        && !self.silent
                        && self.behaviour.silent_at != Some(Step::Data)
                    {
                        self.send("503 5.5.1 Error: need RCPT command\r\n").await?;
                    } else {
                        self.data().await?;
                        self.has_mail = false;
                        self.recipients = 0;
                    }
                }
                "RSET" => {
                    self.has_mail = false;
                    self.recipients = 0;
                    self.send("250 2.0.0 Ok\r\n").await?;
                }
                "NOOP" => self.send("250 2.0.0 Ok\r\n").await?,
                "QUIT" => {
                    self.send("221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => {
                    self.send("500 5.5.2 Error: command not recognized\r\n")
                        .await?
                }
            }
        }
        Ok(())
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

    /// One line without its CRLF; `None` at EOF.
    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buffer.drain(..=i).collect();
                let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(Some(String::from_utf8_lossy(line).into_owned()));
            }
            if self.buffer.len() > MAX_LINE {
                return Err(io::Error::other("client line too long"));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
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

    fn ehlo_reply(&self) -> String {
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
        if let (true, Some(auth)) = (self.tls, &b.auth) {
            keywords.push(format!("AUTH {}", auth.mechanisms.join(" ")));
        }
        if b.lowercase_keywords {
            keywords = keywords.iter().map(|k| k.to_lowercase()).collect();
        }
        let mut reply = String::from("250-localhost greets you\r\n");
        for (i, keyword) in keywords.iter().enumerate() {
            let separator = if i + 1 == keywords.len() { ' ' } else { '-' };
            reply.push_str(&format!("250{separator}{keyword}\r\n"));
        }
        if keywords.is_empty() {
            reply = "250 localhost greets you\r\n".into();
        }
        reply
    }

    /// Returns false when the connection must end.
    async fn starttls(&mut self) -> io::Result<bool> {
        if self.tls {
            self.send("503 5.5.1 TLS already active\r\n").await?;
            return Ok(true);
        }
        match self.behaviour.starttls.clone() {
            StartTls::NotOffered | StartTls::Stripped => {
                self.send("502 5.5.1 Error: command not implemented\r\n")
                    .await?;
                Ok(true)
            }
            StartTls::Refuse454 => {
                self.send("454 4.7.0 TLS not available due to local problem\r\n")
                    .await?;
                Ok(true)
            }
            StartTls::InjectAfter220(extra) => {
                let mut bytes = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
                bytes.extend_from_slice(&extra);
                self.io.write_all(&bytes).await?;
                self.io.flush().await?;
                self.upgrade().await
            }
            StartTls::Offer => {
                self.send("220 2.0.0 Ready to start TLS\r\n").await?;
                self.upgrade().await
            }
        }
    }

    async fn upgrade(&mut self) -> io::Result<bool> {
        if !self.buffer.is_empty() {
            // The client pipelined past STARTTLS: record it and stop.
            let leftover = String::from_utf8_lossy(&self.buffer).into_owned();
            self.record.lock().unwrap().commands.push(Received {
                conn: self.conn,
                line: format!("(pipelined past STARTTLS) {leftover}"),
                tls: false,
            });
            return Ok(false);
        }
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
        match self.acceptor.accept(plain).await {
            Ok(stream) => {
                self.io = Box::new(stream);
                self.tls = true;
                Ok(true)
            }
            // The client refused the certificate or aborted: the session ends.
            Err(_) => Ok(false),
        }
    }

    async fn auth(&mut self, line: &str) -> io::Result<()> {
        let Some(auth) = self.behaviour.auth.clone() else {
            return self.send("502 5.5.1 AUTH not available\r\n").await;
        };
        if !self.tls {
            return self
                .send("538 5.7.11 Encryption required for AUTH\r\n")
                .await;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mechanism = words
            .get(1)
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_default();
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let ok = match mechanism.as_str() {
            "PLAIN" => {
                let response = match words.get(2) {
                    Some(r) => r.to_string(),
                    None => {
                        self.send("334 \r\n").await?;
                        self.line().await?.unwrap_or_default()
                    }
                };
                decode(&response) == format!("\0{}\0{}", auth.user, auth.secret)
            }
            "LOGIN" => {
                self.send("334 VXNlcm5hbWU6\r\n").await?;
                let user = decode(&self.line().await?.unwrap_or_default());
                self.send("334 UGFzc3dvcmQ6\r\n").await?;
                let secret = decode(&self.line().await?.unwrap_or_default());
                user == auth.user && secret == auth.secret
            }
            "XOAUTH2" => {
                let expected = format!("user={}\x01auth=Bearer {}\x01\x01", auth.user, auth.secret);
                let ok = words.get(2).map(|r| decode(r)) == Some(expected);
                if !ok {
                    self.send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n").await?;
                    let _ack = self.line().await?;
                }
                ok
            }
            _ => {
                return self
                    .send("504 5.5.4 Unrecognized authentication type\r\n")
                    .await;
            }
        };
        if ok {
            self.send("235 2.7.0 Authentication successful\r\n").await
        } else {
            self.send("535 5.7.8 Error: authentication failed\r\n")
                .await
        }
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
        let reply = self
            .behaviour
            .replies
            .data
            .clone()
            .unwrap_or("354 End data with <CR><LF>.<CR><LF>".into());
        self.send(&format!("{reply}\r\n")).await?;
        if !reply.starts_with("354") {
            return Ok(());
        }
        // Where to look for the end marker next: only bytes not yet searched.
        let mut searched: usize = 0;
        let raw = loop {
            if self.buffer.starts_with(b".\r\n") {
                self.buffer.drain(..3);
                break Vec::new();
            }
            let from = searched.saturating_sub(4);
            if let Some(i) = self.buffer[from..]
                .windows(5)
                .position(|w| w == b"\r\n.\r\n")
            {
                let end = from + i;
                let raw: Vec<u8> = self.buffer[..end + 2].to_vec();
                self.buffer.drain(..end + 5);
                break raw;
            }
            searched = self.buffer.len();
            if self.buffer.len() > MAX_MESSAGE {
                return Err(io::Error::other("message too large"));
            }
            if !self.fill().await? {
                return Ok(());
            }
        };
        let mut data = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|&b| b == b'\n') {
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        let (mail_from, rcpt_to) = {
            let record = self.record.lock().unwrap();
            let mine: Vec<&Received> = record
                .commands
                .iter()
                .filter(|c| c.conn == self.conn)
                .collect();
            let last_mail = mine
                .iter()
                .rposition(|c| c.line.to_ascii_uppercase().starts_with("MAIL"));
            let mail_from = last_mail.map(|i| mine[i].line.clone()).unwrap_or_default();
            let rcpt_to = mine[last_mail.unwrap_or(0)..]
                .iter()
                .filter(|c| c.line.to_ascii_uppercase().starts_with("RCPT"))
                .map(|c| c.line.clone())
                .collect();
            (mail_from, rcpt_to)
        };
        self.record.lock().unwrap().messages.push(ReceivedMessage {
            mail_from,
            rcpt_to,
            data,
            raw_data: raw,
            tls: self.tls,
        });
        self.silence_at(Step::EndOfData);
        if self.silent {
            return Ok(());
        }
        let reply = self
            .behaviour
            .replies
            .end_of_data
            .clone()
            .unwrap_or("250 2.0.0 Ok: queued as TEST".into());
        self.send(&format!("{reply}\r\n")).await
    }
}
