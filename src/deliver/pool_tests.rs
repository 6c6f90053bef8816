//! The MX session pool and a queue run's batch on one connection, against
//! servers that misbehave in the ways found in review.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::address::{Address, ReversePath};
use crate::smtp::{Content, Dsn, Envelope, Timeouts};

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        sender: ReversePath::Address(Address::parse("sender@example.org").unwrap()),
        recipients: recipients
            .iter()
            .map(|r| Address::parse(r).unwrap())
            .collect(),
        content: Content::default(),
        size: None,
        dsn: Dsn::default(),
    }
}

/// A server on loopback, no PIPELINING, that answers in step, except that
/// the reply to the first message's final dot comes late (after the
/// client's end-of-data limit), just before the reply to the next command.
async fn slow_verdict_server(log: Arc<Mutex<Vec<String>>>, connections: Arc<Mutex<u32>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            *connections.lock().unwrap() += 1;
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 mx.test ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                let mut messages = 0;
                let mut late: Option<&str> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line.clone());
                    if in_data {
                        if line == "." {
                            in_data = false;
                            messages += 1;
                            if messages == 1 {
                                // The verdict comes after the client gave up on it.
                                late = Some("250 2.0.0 first message queued\r\n");
                            } else {
                                write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                            }
                        }
                        continue;
                    }
                    if let Some(reply) = late.take() {
                        write.write_all(reply.as_bytes()).await.unwrap();
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-mx.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL") || upper.starts_with("RSET") {
                        "250 2.0.0 ok\r\n"
                    } else if upper.starts_with("RCPT") && line.contains("nobody@") {
                        "550 5.1.1 no such user\r\n"
                    } else if upper.starts_with("RCPT") {
                        "250 2.1.5 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        "354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        "221 bye\r\n"
                    } else {
                        "500 what\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

/// A message whose verdict was not read (the end-of-data limit passed)
/// leaves the session out of step; the pool keeps it, and the next message
/// on it reads the late verdict as RSET's reply: every reply after that
/// belongs to the command before. Here a valid recipient is failed for
/// good with the 550 the server gave another recipient.
#[tokio::test]
async fn a_session_whose_verdict_timed_out_is_not_reused() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let port = slow_verdict_server(log.clone(), connections.clone()).await;
    let key = "mx.test|127.0.0.1|Opportunistic";
    let hop = Hop {
        name: "mx.test",
        address: Some("127.0.0.1".parse().unwrap()),
        port,
        security: Security::Plain,
        starttls: StartTlsUse::IfOffered,
        credentials: None,
        ehlo_name: Some("client.test"),
        connect_timeout: Duration::from_secs(2),
        timeouts: Timeouts {
            command: Duration::from_secs(2),
            end_of_data: Duration::from_millis(300),
        },
        reuse_key: Some(key),
        mx_name: None,
    };
    let pool = SessionPool::default();
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let first_env = envelope(&["a@mx.test"]);
    let first_progress = Progress::default();
    let first = attempt(
        &hop,
        None,
        Job {
            envelope: &first_env,
            mode: Mode::Default,
            bounce: false,
            open_message: &open,
            progress: &first_progress,
            pool: Some(&pool),
        },
        &Transcript::off(),
    )
    .await
    .expect("a transaction");
    assert!(first.recipients[0].result.is_err(), "the verdict timed out");
    // Give the late verdict time to arrive (a real server's slow milter).
    tokio::time::sleep(Duration::from_millis(100)).await;

    let second_env = envelope(&["nobody@mx.test", "valid@mx.test"]);
    let second_progress = Progress::default();
    let second = attempt(
        &hop,
        None,
        Job {
            envelope: &second_env,
            mode: Mode::Default,
            bounce: false,
            open_message: &open,
            progress: &second_progress,
            pool: Some(&pool),
        },
        &Transcript::off(),
    )
    .await;
    pool.close().await;
    eprintln!("server saw: {:?}", log.lock().unwrap());
    eprintln!("connections: {}", connections.lock().unwrap());
    if let Ok(outcome) = &second {
        for r in &outcome.recipients {
            eprintln!(
                "{}: {:?}",
                r.recipient,
                r.result
                    .as_ref()
                    .map(|a| a.reply.to_string())
                    .map_err(|f| f.to_string())
            );
        }
    }
    let second = second.expect("a transaction");
    assert!(
        !second.recipients[1]
            .result
            .as_ref()
            .is_err_and(|f| f.classified.status.is_permanent() && f.detail.contains("550")),
        "valid@ was failed for good with the 550 the server gave nobody@"
    );
    assert_eq!(
        *connections.lock().unwrap(),
        2,
        "a session whose verdict was never read must not carry another message"
    );
}

/// The same in a submission batch: `submit_batch` counts a transaction
/// whose data phase broke the dialogue as completed and sends RSET and the
/// next message on the same connection.
#[tokio::test]
async fn submit_batch_does_not_go_on_after_a_verdict_timed_out() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let port = slow_verdict_server(log.clone(), connections.clone()).await;
    let plan = Submission {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        credentials: None,
        ehlo_name: Some("client.test".into()),
        connect_timeout: Duration::from_secs(2),
        timeouts: Timeouts {
            command: Duration::from_secs(2),
            end_of_data: Duration::from_millis(300),
        },
        names: Default::default(),
    };
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let first_env = envelope(&["a@mx.test"]);
    let second_env = envelope(&["nobody@mx.test", "valid@mx.test"]);
    let (p1, p2) = (Progress::default(), Progress::default());
    let job = |envelope, progress| Job {
        envelope,
        mode: Mode::Default,
        bounce: false,
        open_message: &open,
        progress,
        pool: None,
    };
    // A slow message: the server's verdict comes 100 ms after the limit,
    // while the client sends RSET.
    let outcomes = submit_batch(
        &plan,
        None,
        &[job(&first_env, &p1), job(&second_env, &p2)],
        &Transcript::off(),
    )
    .await;
    eprintln!("server saw: {:?}", log.lock().unwrap());
    for r in outcomes.iter().flat_map(|o| &o.recipients) {
        eprintln!(
            "{}: {:?}",
            r.recipient,
            r.result
                .as_ref()
                .map(|a| a.reply.to_string())
                .map_err(|f| f.to_string())
        );
    }
    assert!(
        !outcomes[1].recipients[1].result.as_ref().is_err_and(|f| f
            .classified
            .status
            .is_permanent()
            && f.detail.contains("550")),
        "valid@ was failed for good with the 550 the server gave nobody@"
    );
}

/// A server that refuses the first message's sender and then answers RSET
/// with a permanent reply.
async fn rset_refusing_server(log: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line.clone());
                    let upper = line.to_ascii_uppercase();
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-relay.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL") && line.contains("spammer@") {
                        "550 5.7.1 sender rejected\r\n"
                    } else if upper.starts_with("RSET") {
                        "554 5.5.1 too many errors\r\n"
                    } else if upper.starts_with("QUIT") {
                        "221 bye\r\n"
                    } else {
                        "250 ok\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

/// When RSET fails on a fresh connection after a refused message, every
/// other message of the batch is recorded with RSET's reply as its own
/// failure; a 5xx makes that a permanent failure (bounced by the queue)
/// for messages that were never offered to the server.
#[tokio::test]
async fn submit_batch_does_not_fail_for_good_messages_it_never_offered() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = rset_refusing_server(log.clone()).await;
    let plan = Submission {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        credentials: None,
        ehlo_name: Some("client.test".into()),
        connect_timeout: Duration::from_secs(2),
        timeouts: Timeouts::default(),
        names: Default::default(),
    };
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let mut first_env = envelope(&["a@example.net"]);
    first_env.sender = ReversePath::Address(Address::parse("spammer@example.org").unwrap());
    let second_env = envelope(&["b@example.net"]);
    let (p1, p2) = (Progress::default(), Progress::default());
    let job = |envelope, progress| Job {
        envelope,
        mode: Mode::Default,
        bounce: false,
        open_message: &open,
        progress,
        pool: None,
    };
    let outcomes = submit_batch(
        &plan,
        None,
        &[job(&first_env, &p1), job(&second_env, &p2)],
        &Transcript::off(),
    )
    .await;
    eprintln!("server saw: {:?}", log.lock().unwrap());
    let b = &outcomes[1].recipients[0];
    eprintln!(
        "{}: {:?}",
        b.recipient,
        b.result.as_ref().map_err(|f| f.to_string())
    );
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("b@example.net"))
            && b.result
                .as_ref()
                .is_err_and(|f| f.classified.is_temporary()),
        "a message never offered to the server must not fail for good"
    );
}

/// A server that takes messages and never answers QUIT.
async fn silent_at_quit_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 mx.test ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-mx.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        "354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        continue;
                    } else {
                        "250 ok\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

/// The pool is closed one session after another, each waiting for the
/// reply to QUIT for up to the command limit, and (in `deliver_groups`)
/// outside the signal watch: N idle sessions to hosts that do not answer
/// QUIT hold the run for N times the limit, where a single delivery would
/// not have waited at all (`quit_without_reply` after acceptance).
#[tokio::test]
async fn closing_the_pool_waits_for_one_quit_at_a_time() {
    let port = silent_at_quit_server().await;
    let limit = Duration::from_millis(500);
    let pool = SessionPool::default();
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let env = envelope(&["a@mx.test"]);
    for key in ["one", "two", "three", "four"] {
        let hop = Hop {
            name: "mx.test",
            address: Some("127.0.0.1".parse().unwrap()),
            port,
            security: Security::Plain,
            starttls: StartTlsUse::IfOffered,
            credentials: None,
            ehlo_name: Some("client.test"),
            connect_timeout: Duration::from_secs(2),
            timeouts: Timeouts {
                command: limit,
                end_of_data: limit,
            },
            reuse_key: Some(key),
            mx_name: None,
        };
        let progress = Progress::default();
        let outcome = attempt(
            &hop,
            None,
            Job {
                envelope: &env,
                mode: Mode::Default,
                bounce: false,
                open_message: &open,
                progress: &progress,
                pool: Some(&pool),
            },
            &Transcript::off(),
        )
        .await
        .unwrap();
        assert!(outcome.all_accepted());
    }
    let started = std::time::Instant::now();
    pool.close().await;
    let took = started.elapsed();
    eprintln!("pool.close() took {took:?} for 4 sessions, limit {limit:?}");
    assert!(took < 2 * limit, "closing took {took:?}");
}

/// A server that takes two messages per connection, then answers the next
/// MAIL with 421 and closes (as large providers limit messages per session).
async fn two_per_connection_server(connections: Arc<Mutex<u32>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            *connections.lock().unwrap() += 1;
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
                let (mut in_data, mut taken) = (false, 0);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            taken += 1;
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    if upper.starts_with("MAIL") && taken == 2 {
                        let _ = write
                            .write_all(b"421 4.7.0 too many messages in this session\r\n")
                            .await;
                        return;
                    }
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-relay.test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        "354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        "221 bye\r\n"
                    } else {
                        "250 ok\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

/// A 421 to MAIL ends the session, not the message: the batch goes on
/// on a new connection with the rest, and the message refused with 421
/// waits for the next run (a backoff) although it was never offered.
#[tokio::test]
async fn submit_batch_retries_a_message_refused_by_a_per_session_limit() {
    let connections = Arc::new(Mutex::new(0));
    let port = two_per_connection_server(connections.clone()).await;
    let plan = Submission {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        credentials: None,
        ehlo_name: Some("client.test".into()),
        connect_timeout: Duration::from_secs(2),
        timeouts: Timeouts::default(),
        names: Default::default(),
    };
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let envelopes: Vec<Envelope> = (0..5)
        .map(|n| envelope(&[format!("r{n}@example.net").as_str()]))
        .collect();
    let progresses: Vec<Progress> = (0..5).map(|_| Progress::default()).collect();
    let jobs: Vec<Job<'_>> = envelopes
        .iter()
        .zip(&progresses)
        .map(|(envelope, progress)| Job {
            envelope,
            mode: Mode::Default,
            bounce: false,
            open_message: &open,
            progress,
            pool: None,
        })
        .collect();
    let outcomes = submit_batch(&plan, None, &jobs, &Transcript::off()).await;
    let failed: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.undelivered())
        .map(|(a, f)| format!("{a}: {f}"))
        .collect();
    eprintln!(
        "{} connection(s); not delivered: {failed:#?}",
        connections.lock().unwrap()
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Found in review: a PIPELINING server that refuses one recipient and accepts
/// another, then drops the connection instead of answering DATA (a crash,
/// Postfix's hard error limit).
async fn drops_at_data_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-relay.test\r\n250 PIPELINING\r\n"
                    } else if upper.starts_with("RCPT") && line.contains("nobody@") {
                        "550 5.1.1 no such user\r\n"
                    } else if upper.starts_with("DATA") {
                        // Gone, no reply.
                        return;
                    } else {
                        "250 ok\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    port
}

/// Found in review: an interactive send. bob@ was accepted and the message
/// never reached the server; before 5c88a2b/b5659d0 this was a closed
/// connection (temporary, exit 75). Now the 550 given to nobody@ is
/// reported as MAIL FROM's refusal and bob@ fails for good.
#[tokio::test]
async fn an_accepted_recipient_does_not_fail_for_good_when_the_server_drops_at_data() {
    let port = drops_at_data_server().await;
    let plan = Submission {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        credentials: None,
        ehlo_name: Some("client.test".into()),
        connect_timeout: Duration::from_secs(2),
        timeouts: Timeouts::default(),
        names: Default::default(),
    };
    let open = || -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(Box::new(io::Cursor::new(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        )))
    };
    let env = envelope(&["nobody@example.net", "bob@example.net"]);
    let progress = Progress::default();
    let outcome = submit(
        &plan,
        None,
        Job {
            envelope: &env,
            mode: Mode::Default,
            bounce: false,
            open_message: &open,
            progress: &progress,
            pool: None,
        },
        &Transcript::off(),
    )
    .await;
    let bob = &outcome.recipients[1];
    let failure = bob.result.as_ref().expect_err("not delivered");
    assert!(
        failure.classified.is_temporary(),
        "bob@ was accepted and the server went away before DATA: {failure}"
    );
}
