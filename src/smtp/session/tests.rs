//! Session tests against a scripted server over an in-memory pipe: each test
//! states what the server says and checks both what the client concluded
//! and what the server received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::address::{Address, ReversePath};
use crate::smtp::command::{Content, Dsn};
use crate::tls::{TlsClient, Trust};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The server half of a test: reads lines, writes replies, records lines.
struct ScriptedServer {
    io: Box<dyn Io>,
    buffer: Vec<u8>,
    received: Arc<Mutex<Vec<String>>>,
    tls: Option<TlsAcceptor>,
}

impl ScriptedServer {
    async fn send(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// Reads one line (without CRLF), or None at EOF.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..i]).into_owned();
                self.buffer.drain(..i + 2);
                self.received.lock().unwrap().push(line.clone());
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    async fn expect(&mut self, prefix: &str) {
        let line = self.line().await.unwrap_or_default();
        assert!(
            line.starts_with(prefix),
            "server expected {prefix:?}, got {line:?}"
        );
    }

    async fn starttls(mut self) -> ScriptedServer {
        assert!(self.buffer.is_empty(), "client pipelined past STARTTLS");
        let acceptor = self.tls.take().unwrap();
        let stream = acceptor.accept(self.io).await.unwrap();
        ScriptedServer {
            io: Box::new(stream),
            buffer: Vec::new(),
            received: self.received,
            tls: None,
        }
    }

    /// Reads message data up to the lone dot; returns it as received.
    async fn data(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            if let Some(i) = find(&self.buffer, b"\r\n.\r\n")
                .or_else(|| self.buffer.starts_with(b".\r\n").then_some(usize::MAX))
            {
                let end = if i == usize::MAX { 0 } else { i + 2 };
                data.extend_from_slice(&self.buffer[..end]);
                let skip = if i == usize::MAX { 3 } else { i + 5 };
                self.buffer.drain(..skip);
                return data;
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "EOF in data");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Pki {
    acceptor: TlsAcceptor,
    client: TlsClient,
}

/// A self-signed certificate for localhost, trusted through a pin.
fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der: CertificateDer<'static> = cert.der().clone();
    let digest = crate::tls::certificate_fingerprint(der.as_ref());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    Pki {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        client: TlsClient::new(Trust::Pin(digest)).unwrap(),
    }
}

struct Harness {
    client_io: DuplexStream,
    server: ScriptedServer,
    received: Arc<Mutex<Vec<String>>>,
    transcript_lines: Arc<Mutex<Vec<String>>>,
    transcript: Transcript,
    pki: Pki,
}

fn harness() -> Harness {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let received = Arc::new(Mutex::new(Vec::new()));
    let pki = pki();
    let transcript_lines = Arc::new(Mutex::new(Vec::new()));
    let sink = transcript_lines.clone();
    Harness {
        client_io,
        server: ScriptedServer {
            io: Box::new(server_io),
            buffer: Vec::new(),
            received: received.clone(),
            tls: Some(pki.acceptor.clone()),
        },
        received,
        transcript: Transcript::new("", move |l| sink.lock().unwrap().push(l.to_string())),
        transcript_lines,
        pki,
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        ehlo_name: "client.example".into(),
        timeouts: Timeouts {
            command: Duration::from_secs(5),
            end_of_data: Duration::from_secs(5),
        },
        verdict: VerdictPending::default(),
    }
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        sender: ReversePath::parse("alice@example.org").unwrap(),
        recipients: recipients
            .iter()
            .map(|r| Address::parse(r).unwrap())
            .collect(),
        content: Content::default(),
        size: None,
        dsn: Dsn::default(),
    }
}

const EHLO_PLAIN: &str = "250-localhost\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const EHLO_TLS: &str =
    "250-localhost\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250 REQUIRETLS\r\n";

/// Greeting, EHLO, STARTTLS and EHLO again, server side.
async fn serve_until_tls(mut server: ScriptedServer, ehlo_after: &str) -> ScriptedServer {
    server.send("220 localhost ESMTP\r\n").await;
    server.expect("EHLO client.example").await;
    server.send(EHLO_PLAIN).await;
    server.expect("STARTTLS").await;
    server.send("220 2.0.0 go ahead\r\n").await;
    let mut server = server.starttls().await;
    server.expect("EHLO client.example").await;
    server.send(ehlo_after).await;
    server
}

async fn open_tls(
    client_io: DuplexStream,
    transcript: Transcript,
    client: &TlsClient,
) -> Session<tokio_rustls::client::TlsStream<DuplexStream>> {
    let session = Session::open(client_io, None, config(), transcript)
        .await
        .unwrap();
    match session.starttls(client, "localhost").await {
        Ok(s) => s,
        Err(StartTlsFailure::Refused { error, .. }) | Err(StartTlsFailure::Broken(error)) => {
            panic!("{error}")
        }
    }
}

// covers: SUB7
#[tokio::test]
async fn sub7_bytes_after_starttls_reply_abort_before_the_handshake() {
    let h = harness();
    let mut server = h.server;
    let received = h.received.clone();
    let server_task = tokio::spawn(async move {
        server.send("220 localhost ESMTP\r\n").await;
        server.expect("EHLO").await;
        server.send(EHLO_PLAIN).await;
        server.expect("STARTTLS").await;
        // The injected reply rides in the same write as the 220.
        server
            .send("220 2.0.0 go ahead\r\n250-INJECTED\r\n250 REQUIRETLS\r\n")
            .await;
        // The client must hang up instead of starting TLS or sending more.
        let after = server.line().await;
        (after, server.buffer.len())
    });
    let session = Session::open(h.client_io, None, config(), h.transcript.clone())
        .await
        .unwrap();
    let error = match session.starttls(&h.pki.client, "localhost").await {
        Err(StartTlsFailure::Broken(e)) => e,
        Err(StartTlsFailure::Refused { error, .. }) => panic!("refused, not broken: {error}"),
        Ok(_) => panic!("STARTTLS with injected bytes must fail"),
    };
    assert!(
        matches!(error.kind, ErrorKind::Protocol(Violation::BytesAfterStartTls(n)) if n > 0),
        "{error}"
    );
    assert_eq!(error.step, Step::StartTls);
    let (after, unread) = server_task.await.unwrap();
    assert_eq!(after, None, "client sent something after the injection");
    assert_eq!(unread, 0, "client started a TLS handshake");
    assert_eq!(
        *received.lock().unwrap(),
        ["EHLO client.example", "STARTTLS"]
    );
}

// covers: SUB5
#[tokio::test]
async fn sub5_capabilities_learned_before_tls_are_discarded() {
    let h = harness();
    let server = h.server;
    let server_task = tokio::spawn(async move {
        let mut server = server;
        server.send("220 localhost ESMTP\r\n").await;
        server.expect("EHLO client.example").await;
        // Before TLS: claims REQUIRETLS and AUTH (an attacker can write this).
        server
            .send("250-localhost\r\n250-REQUIRETLS\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n")
            .await;
        server.expect("STARTTLS").await;
        server.send("220 go ahead\r\n").await;
        let mut server = server.starttls().await;
        server.expect("EHLO client.example").await;
        server.send("250-localhost\r\n250 8BITMIME\r\n").await;
        server.expect("QUIT").await;
        server.send("221 bye\r\n").await;
    });
    let mut session = open_tls(h.client_io, h.transcript.clone(), &h.pki.client).await;
    assert!(session.capabilities().has("8BITMIME"));
    assert!(!session.capabilities().has("REQUIRETLS"));
    assert!(!session.capabilities().has("AUTH"));
    let error = session
        .send_message(&envelope(&["bob@example.net"]), &b""[..], true)
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::Missing(Missing::RequireTls)),
        "{error}"
    );
    session.quit().await;
    server_task.await.unwrap();
    let received = h.received.lock().unwrap();
    assert!(
        !received.iter().any(|l| l.starts_with("MAIL")),
        "{received:?}"
    );
}

// covers: SUB4, SUB7
#[tokio::test]
async fn sub4_require_mode_pipelines_mail_with_requiretls_after_verified_tls() {
    let h = harness();
    let server = h.server;
    let server_task =
        tokio::spawn(async move {
            let mut server = serve_until_tls(server, EHLO_TLS).await;
            server
                .expect("MAIL FROM:<alice@example.org> REQUIRETLS")
                .await;
            // PIPELINING: RCPT and DATA are already here, unanswered.
            assert!(server.buffer.starts_with(
                b"RCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n"
            ));
            server.expect("RCPT TO:<bob@example.net>").await;
            server.expect("RCPT TO:<carol@example.net>").await;
            server.expect("DATA").await;
            server
                .send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n")
                .await;
            let data = server.data().await;
            server.send("250 2.0.0 queued as X\r\n").await;
            server.expect("QUIT").await;
            server.send("221 bye\r\n").await;
            data
        });
    let mut session = open_tls(h.client_io, h.transcript.clone(), &h.pki.client).await;
    let message = b"Subject: hi\n\n.leading dot\nbody\n";
    let transaction = session
        .send_message(
            &envelope(&["bob@example.net", "carol@example.net"]),
            &message[..],
            true,
        )
        .await
        .unwrap();
    assert_eq!(transaction.recipients.len(), 2);
    assert!(transaction.recipients[0].is_positive());
    assert_eq!(
        transaction.recipients[1].to_string(),
        "550 5.1.1 no such user"
    );
    assert!(matches!(transaction.data, DataOutcome::Accepted(ref r) if r.code() == 250));
    session.quit().await;
    let data = server_task.await.unwrap();
    assert_eq!(data, b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n");
    let notes = h.transcript_lines.lock().unwrap();
    assert!(
        notes.iter().any(|l| l.contains("TLS established: TLS 1.3")),
        "{notes:?}"
    );
}

// covers: SUB3
#[tokio::test]
async fn sub3_no_requiretls_after_tls_means_no_mail_from() {
    let h = harness();
    let server = h.server;
    let server_task = tokio::spawn(async move {
        let mut server = serve_until_tls(server, "250-localhost\r\n250 PIPELINING\r\n").await;
        server.expect("QUIT").await;
        server.send("221 bye\r\n").await;
    });
    let mut session = open_tls(h.client_io, h.transcript.clone(), &h.pki.client).await;
    let error = session
        .send_message(&envelope(&["bob@example.net"]), &b"x\n"[..], true)
        .await
        .unwrap_err();
    assert!(matches!(
        error.kind,
        ErrorKind::Missing(Missing::RequireTls)
    ));
    assert!(error.dialogue_in_sync());
    session.quit().await;
    server_task.await.unwrap();
    assert_eq!(
        *h.received.lock().unwrap(),
        [
            "EHLO client.example",
            "STARTTLS",
            "EHLO client.example",
            "QUIT"
        ]
    );
}

// covers: SUB2
#[tokio::test]
async fn sub2_require_mode_refuses_a_plaintext_session() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost ESMTP\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 REQUIRETLS\r\n").await;
        server.line().await
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    let error = session
        .send_message(&envelope(&["bob@example.net"]), &b"x\n"[..], true)
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::Missing(Missing::VerifiedTls)),
        "{error}"
    );
    drop(session);
    assert_eq!(server_task.await.unwrap(), None);
}

#[tokio::test]
async fn stepwise_transaction_without_pipelining() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 8BITMIME\r\n").await;
        server.expect("MAIL FROM:<alice@example.org>").await;
        assert!(server.buffer.is_empty(), "pipelined without PIPELINING");
        server.send("250 ok\r\n").await;
        server.expect("RCPT TO:<bob@example.net>").await;
        server.send("250 ok\r\n").await;
        server.expect("DATA").await;
        server.send("354 go\r\n").await;
        let data = server.data().await;
        server.send("250 ok\r\n").await;
        data
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    let t = session
        .send_message(&envelope(&["bob@example.net"]), &b"a\r\nb"[..], false)
        .await
        .unwrap();
    assert!(matches!(t.data, DataOutcome::Accepted(_)));
    assert_eq!(server_task.await.unwrap(), b"a\r\nb\r\n");
}

#[tokio::test]
async fn all_recipients_refused_sends_no_data() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        server.expect("MAIL").await;
        server.expect("RCPT").await;
        server.expect("DATA").await;
        // A sloppy server accepts DATA anyway: the client must end it empty.
        server
            .send("250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n")
            .await;
        let data = server.data().await;
        server.send("554 5.5.1 no valid recipients\r\n").await;
        data
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    let t = session
        .send_message(&envelope(&["bob@example.net"]), &b"secret\n"[..], false)
        .await
        .unwrap();
    assert!(matches!(t.data, DataOutcome::NoRecipients));
    assert_eq!(t.recipients[0].code(), 550);
    assert_eq!(server_task.await.unwrap(), b"");
}

#[tokio::test]
async fn refusals_and_violations_are_told_apart() {
    // 554 greeting: a refusal, in sync.
    let h = harness();
    let mut server = h.server;
    tokio::spawn(async move { server.send("554 5.3.2 no service\r\n").await });
    let error = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .err()
        .unwrap();
    assert!(matches!(error.kind, ErrorKind::Reply(ref r) if r.code() == 554));
    assert_eq!(error.step, Step::Greeting);

    // Garbage: a violation, not in sync.
    let h = harness();
    let mut server = h.server;
    tokio::spawn(async move { server.send("hello there\r\n").await });
    let error = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error.kind, ErrorKind::Protocol(Violation::Garbled(_))),
        "{error}"
    );
    assert!(!error.dialogue_in_sync());
}

#[tokio::test]
async fn falls_back_to_helo_when_ehlo_is_unknown() {
    let h = harness();
    let mut server = h.server;
    let task = tokio::spawn(async move {
        server.send("220 old\r\n").await;
        server.expect("EHLO client.example").await;
        server.send("502 5.5.1 what?\r\n").await;
        server.expect("HELO client.example").await;
        server.send("250 old\r\n").await;
    });
    let session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    assert_eq!(session.capabilities().keywords().count(), 0);
    task.await.unwrap();
}

// covers: FAIL6
#[tokio::test]
async fn fail6_a_silent_server_times_out_and_gets_no_quit() {
    let h = harness();
    let mut server = h.server;
    let received = h.received.clone();
    let task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250 localhost\r\n").await;
        server.expect("MAIL").await;
        // Silence, then see whether the client says anything more.
        server.line().await
    });
    let mut cfg = config();
    cfg.timeouts.command = Duration::from_millis(200);
    let mut session = Session::open(h.client_io, None, cfg, Transcript::off())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = session
        .send_message(&envelope(&["bob@example.net"]), &b""[..], false)
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
    session.quit().await;
    assert_eq!(task.await.unwrap(), None, "QUIT sent on a broken session");
    assert!(!received.lock().unwrap().iter().any(|l| l == "QUIT"));
}

// covers: SUB6, UX1
#[tokio::test]
async fn sub6_auth_secrets_never_reach_the_transcript() {
    for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::XOAuth2] {
        let h = harness();
        let server = h.server;
        let task = tokio::spawn(async move {
            let mut server = serve_until_tls(server, EHLO_TLS).await;
            match mechanism {
                Mechanism::Plain => {
                    server.expect("AUTH PLAIN AGFsaWNlAHMzY3JldA==").await;
                    server.send("235 2.7.0 ok\r\n").await;
                }
                Mechanism::Login => {
                    server.expect("AUTH LOGIN").await;
                    server.send("334 VXNlcm5hbWU6\r\n").await;
                    server.expect("YWxpY2U=").await;
                    server.send("334 UGFzc3dvcmQ6\r\n").await;
                    server.expect("czNjcmV0").await;
                    server.send("235 ok\r\n").await;
                }
                _ => {
                    server.expect("AUTH XOAUTH2 ").await;
                    server.send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n").await;
                    server.expect("").await;
                    server.send("535 5.7.8 bad token\r\n").await;
                }
            }
        });
        let mut session = open_tls(h.client_io, h.transcript.clone(), &h.pki.client).await;
        let credentials = Credentials::new("alice", "s3cret");
        let result = session
            .authenticate(
                &credentials,
                AuthChoice::Only(mechanism),
                ("localhost", 587),
            )
            .await;
        task.await.unwrap();
        if mechanism == Mechanism::XOAuth2 {
            let error = result.unwrap_err();
            assert!(
                matches!(error.kind, ErrorKind::Reply(ref r) if r.code() == 535),
                "{error}"
            );
        } else {
            result.unwrap();
        }
        let transcript = h.transcript_lines.lock().unwrap().join("\n");
        for secret in ["s3cret", "czNjcmV0", "AGFsaWNlAHMzY3JldA=="] {
            assert!(
                !transcript.contains(secret),
                "{mechanism:?} leaked {secret}:\n{transcript}"
            );
        }
        assert!(transcript.contains("<secret>"), "{transcript}");
    }
}

// covers: SUB7
#[tokio::test]
async fn sub7_a_long_envelope_is_pipelined_in_groups_whose_replies_fit_the_buffers() {
    // A 64 KiB pipe each way, like socket buffers, and a server that reads
    // a command only after its last reply was written: one group of 5000
    // RCPTs would fill both directions and leave each side waiting for the
    // other until the command timeout.
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut server = ScriptedServer {
        io: Box::new(server_io),
        buffer: Vec::new(),
        received: received.clone(),
        tls: None,
    };
    let recipients: Vec<String> = (0..5000).map(|i| format!("r{i}@example.net")).collect();
    let server_task = tokio::spawn(async move {
        server.send("220 localhost ESMTP\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        while let Some(line) = server.line().await {
            if line == "DATA" {
                server.send("354 go ahead\r\n").await;
                server.data().await;
                server.send("250 2.0.0 queued\r\n").await;
            } else if line == "QUIT" {
                server.send("221 bye\r\n").await;
                break;
            } else {
                server
                    .send("250 2.1.5 ok, with enough words to fill a buffer\r\n")
                    .await;
            }
        }
    });
    let mut session = Session::open(client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    let addresses: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let transaction = session
        .send_message(
            &envelope(&addresses),
            &b"Subject: x\r\n\r\nhi\r\n"[..],
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("the transaction failed: {e}"));
    assert_eq!(transaction.recipients.len(), 5000);
    assert!(transaction.recipients.iter().all(Reply::is_positive));
    assert!(matches!(transaction.data, DataOutcome::Accepted(_)));
    session.quit().await;
    server_task.await.unwrap();
    let rcpts = received
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("RCPT"))
        .count();
    assert_eq!(rcpts, 5000);
}

// covers: FAIL3 (a queue run's second message on one connection)
#[tokio::test]
async fn an_rset_before_the_next_transaction_goes_in_the_same_pipelined_group() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        for first in [true, false] {
            if !first {
                server.expect("RSET").await;
                // The rest of the group came with it: no round trip.
                assert!(
                    find(&server.buffer, b"MAIL FROM:").is_some(),
                    "RSET was sent alone"
                );
                server.send("250 ok\r\n").await;
            }
            server.expect("MAIL FROM:<alice@example.org>").await;
            server.expect("RCPT TO:<bob@example.net>").await;
            server.expect("DATA").await;
            server.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
            server.data().await;
            server.send("250 queued\r\n").await;
        }
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    for _ in 0..2 {
        let t = session
            .send_message(&envelope(&["bob@example.net"]), &b"a\r\n"[..], false)
            .await
            .unwrap();
        assert!(matches!(t.data, DataOutcome::Accepted(_)));
        session.reset_before_next();
    }
    server_task.await.unwrap();
}

#[tokio::test]
async fn a_refused_rset_ends_the_session_with_the_refusal() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        server.expect("RSET").await;
        server.send("421 4.7.0 closing\r\n").await;
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    session.reset_before_next();
    let error = session
        .send_message(&envelope(&["bob@example.net"]), &b"a\r\n"[..], false)
        .await
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(error.step, Step::Reset);
    assert!(
        matches!(&error.kind, ErrorKind::Reply(r) if r.code() == 421),
        "{error}"
    );
    server_task.await.unwrap();
}

// Found in review: a refused RCPT followed by a dropped connection (or a DATA
// reply that never comes) is reported as a refusal of MAIL with the RCPT's
// 550: every recipient, even the accepted one, fails for good.
#[tokio::test]
async fn a_refused_rcpt_then_a_close_is_not_a_refused_mail() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        server.expect("MAIL FROM:<alice@example.org>").await;
        server.expect("RCPT TO:<nobody@example.net>").await;
        server.expect("RCPT TO:<bob@example.net>").await;
        server.expect("DATA").await;
        // Postfix's hard error limit, or a crash: no reply to DATA.
        server
            .send("250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n")
            .await;
        drop(server);
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    let result = session
        .send_message(
            &envelope(&["nobody@example.net", "bob@example.net"]),
            &b"a\r\n"[..],
            false,
        )
        .await;
    server_task.await.unwrap();
    let error = result.map(|_| ()).expect_err("the connection closed");
    assert!(
        !(error.step == Step::Mail
            && matches!(&error.kind, ErrorKind::Reply(r) if r.code() == 550)),
        "a RCPT's refusal was reported as MAIL's: {error}"
    );
}

// Found in review, with RSET: the same after an RSET in the group.
#[tokio::test]
async fn a_refused_rcpt_after_rset_then_a_close_is_not_a_refused_mail() {
    let h = harness();
    let mut server = h.server;
    let server_task = tokio::spawn(async move {
        server.send("220 localhost\r\n").await;
        server.expect("EHLO").await;
        server.send("250-localhost\r\n250 PIPELINING\r\n").await;
        server.expect("RSET").await;
        server.expect("MAIL FROM:<alice@example.org>").await;
        server.expect("RCPT TO:<nobody@example.net>").await;
        server.expect("RCPT TO:<bob@example.net>").await;
        server.expect("DATA").await;
        server
            .send("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n421 4.7.0 too many errors\r\n")
            .await;
        drop(server);
    });
    let mut session = Session::open(h.client_io, None, config(), Transcript::off())
        .await
        .unwrap();
    session.reset_before_next();
    let result = session
        .send_message(
            &envelope(&["nobody@example.net", "bob@example.net"]),
            &b"a\r\n"[..],
            false,
        )
        .await;
    server_task.await.unwrap();
    let error = result.map(|_| ()).expect_err("the connection closed");
    let classified = crate::exit::classify(&error, crate::policy::Mode::Default);
    assert!(
        classified.is_temporary(),
        "bob@ was accepted, then the server closed: a permanent failure for all ({error})"
    );
}
